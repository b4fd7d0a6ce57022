/* SPDX-License-Identifier: Apache-2.0 */
/* Location and reference parsing for the registry driver (see registry-ref.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "registry-ref.h"

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

int image_registry_digest_valid(const char *s)
{
    if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != REG_DIGEST_LEN)
        return 0;
    for (s += 7; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int image_registry_tag_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > REG_TAG_MAX || !(is_alnum(s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* One repository component: [a-z0-9]+ joined by '.', '_', "__" or runs of '-'. */
static int component_valid(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return 0;
    while (i < n) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return 0;
        }
        /* A separator is always followed by an alnum. */
        if (i >= n || !is_lower_alnum(s[i]))
            return 0;
    }
    return 1;
}

static int path_valid(const char *s)
{
    const char *p = s;

    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!component_valid(p, n))
            return 0;
        if (!slash)
            return 1;
        p = slash + 1;
    }
}

/*
 * Split a domain "host[:port]" or "[v6]:port" into host (no brackets),
 * checking its characters. Returns 0 or -EINVAL.
 */
static int split_domain(const char *d, char *host, size_t hostlen)
{
    const char *end, *port = NULL;
    size_t n;

    if (d[0] == '[') {
        unsigned char buf[16];
        end = strchr(d, ']');
        if (!end || (end[1] != '\0' && end[1] != ':'))
            return -EINVAL;
        n = (size_t)(end - d - 1);
        if (n == 0 || n >= hostlen)
            return -EINVAL;
        memcpy(host, d + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, buf) != 1)
            return -EINVAL;
        port = end[1] == ':' ? end + 2 : NULL;
        if (end[1] == ':' && *port == '\0')
            return -EINVAL;
    } else {
        const char *colon = strchr(d, ':');
        n = colon ? (size_t)(colon - d) : strlen(d);
        if (n == 0 || n >= hostlen || d[0] == '-' || d[0] == '.' || d[n - 1] == '-' ||
            d[n - 1] == '.')
            return -EINVAL;
        for (size_t i = 0; i < n; i++)
            if (!(is_alnum(d[i]) || d[i] == '-' || d[i] == '.'))
                return -EINVAL;
        memcpy(host, d, n);
        host[n] = '\0';
        if (colon) {
            port = colon + 1;
            if (*port == '\0')
                return -EINVAL;
        }
    }
    if (port) {
        if (strlen(port) > 5)
            return -EINVAL;
        for (const char *q = port; *q; q++)
            if (*q < '0' || *q > '9')
                return -EINVAL;
    }
    return 0;
}

static int is_hub(const char *domain)
{
    return strcasecmp(domain, "docker.io") == 0 || strcasecmp(domain, "index.docker.io") == 0 ||
           strcasecmp(domain, REG_HUB_API_HOST) == 0;
}

#define BAD(why) berth_err_set(err, -EINVAL, "invalid reference \"%.300s\": %s", s, why)

int image_registry_parse_location(const char *s, reg_location_t *ret_loc, berth_err_t *err)
{
    reg_location_t loc = { 0 };
    char rest[2 * REG_NAME_MAX + 2];
    const char *slash;
    char *at, *colon, *lastslash;
    size_t n;

    if (!s || !*s)
        return berth_err_set(err, -EINVAL, "invalid reference \"\": empty");
    if (strlen(s) >= sizeof(rest))
        return BAD("too long");
    slash = strchr(s, '/');
    n = slash ? (size_t)(slash - s) : 0;
    if (slash && (memchr(s, '.', n) || memchr(s, ':', n) || s[0] == '[' ||
                  (n == 9 && strncmp(s, "localhost", 9) == 0))) {
        if (n > REG_NAME_MAX)
            return BAD("domain too long");
        memcpy(loc.domain, s, n);
        loc.domain[n] = '\0';
        if (split_domain(loc.domain, loc.host, sizeof(loc.host)) < 0)
            return BAD("bad registry domain");
        loc.explicit_domain = 1;
        snprintf(rest, sizeof(rest), "%s", slash + 1);
    } else {
        snprintf(loc.domain, sizeof(loc.domain), "%s", REG_HUB_DOMAIN);
        snprintf(rest, sizeof(rest), "%s", s);
    }

    at = strchr(rest, '@');
    if (at) {
        *at = '\0';
        if (!image_registry_digest_valid(at + 1))
            return BAD("digest is not sha256: and 64 lowercase hex digits");
        memcpy(loc.digest, at + 1, REG_DIGEST_LEN + 1);
    } else {
        lastslash = strrchr(rest, '/');
        colon = strrchr(lastslash ? lastslash : rest, ':');
        if (colon) {
            *colon = '\0';
            if (!image_registry_tag_valid(colon + 1))
                return BAD("bad tag");
            snprintf(loc.tag, sizeof(loc.tag), "%s", colon + 1);
        }
    }
    if (!path_valid(rest))
        return BAD("repository name must be lowercase [a-z0-9] components separated by '/'");
    if (strlen(rest) > REG_NAME_MAX)
        return BAD("name longer than 255 bytes");
    memcpy(loc.written, rest, strlen(rest) + 1);

    if (is_hub(loc.domain)) {
        snprintf(loc.domain, sizeof(loc.domain), "%s", REG_HUB_DOMAIN);
        snprintf(loc.api_host, sizeof(loc.api_host), "%s", REG_HUB_API_HOST);
        snprintf(loc.host, sizeof(loc.host), "%s", REG_HUB_API_HOST);
        if (!strchr(rest, '/')) {
            if (strlen(rest) + 8 > REG_NAME_MAX)
                return BAD("name too long");
            memcpy(loc.repo, "library/", 8);
            memcpy(loc.repo + 8, rest, strlen(rest) + 1);
        } else {
            memcpy(loc.repo, rest, strlen(rest) + 1);
        }
    } else {
        memcpy(loc.api_host, loc.domain, sizeof(loc.api_host));
        memcpy(loc.repo, rest, strlen(rest) + 1);
    }
    if (strlen(loc.domain) + 1 + strlen(loc.repo) > REG_NAME_MAX)
        return BAD("name longer than 255 bytes");
    *ret_loc = loc;
    return 0;
}

#undef BAD

int image_registry_parse_target(const reg_location_t *loc, const char *reference, char *ret_tag,
                                char *ret_digest, berth_err_t *err)
{
    const char *r = reference;
    reg_location_t other;
    int same, rc;

    if (!r) {
        if (loc->digest[0]) {
            ret_tag[0] = '\0';
            memcpy(ret_digest, loc->digest, REG_DIGEST_LEN + 1);
        } else {
            snprintf(ret_tag, REG_TAG_MAX + 1, "%s", loc->tag[0] ? loc->tag : "latest");
            ret_digest[0] = '\0';
        }
        return 0;
    }
    if (r[0] == '@' || strncmp(r, "sha256:", 7) == 0) {
        const char *d = r[0] == '@' ? r + 1 : r;
        if (!image_registry_digest_valid(d))
            return berth_err_set(err, -EINVAL,
                                 "invalid reference \"%.300s\": digest is not sha256: and 64 "
                                 "lowercase hex digits",
                                 r);
        ret_tag[0] = '\0';
        memcpy(ret_digest, d, REG_DIGEST_LEN + 1);
        return 0;
    }
    if (image_registry_tag_valid(r)) {
        snprintf(ret_tag, REG_TAG_MAX + 1, "%s", r);
        ret_digest[0] = '\0';
        return 0;
    }
    rc = image_registry_parse_location(r, &other, err);
    if (rc < 0)
        return rc;
    if (other.explicit_domain)
        same = strcasecmp(other.domain, loc->domain) == 0 && strcmp(other.repo, loc->repo) == 0;
    else if (strcmp(loc->domain, REG_HUB_DOMAIN) == 0)
        same = strcmp(other.repo, loc->repo) == 0;
    else
        same = strcmp(other.written, loc->repo) == 0;
    if (!same)
        return berth_err_set(err, -ENOENT, "registry %s: %.300s: not found (this session reads %s)",
                             loc->domain, r, loc->repo);
    if (other.digest[0]) {
        ret_tag[0] = '\0';
        memcpy(ret_digest, other.digest, REG_DIGEST_LEN + 1);
    } else {
        snprintf(ret_tag, REG_TAG_MAX + 1, "%s", other.tag[0] ? other.tag : "latest");
        ret_digest[0] = '\0';
    }
    return 0;
}

int image_registry_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int image_registry_host_listed(const reg_location_t *loc, const char *const *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = entries[i];
        if (!e)
            continue;
        if (strcasecmp(e, loc->domain) == 0 || strcasecmp(e, loc->api_host) == 0)
            return 1;
        /* "host" without a port: any port of that host. */
        if (!strchr(e, ':') || (e[0] == '[' && !strstr(e, "]:"))) {
            size_t m = strlen(e);
            if (e[0] == '[' && m >= 2 && e[m - 1] == ']' && strlen(loc->host) == m - 2 &&
                strncasecmp(e + 1, loc->host, m - 2) == 0)
                return 1;
            if (strcasecmp(e, loc->host) == 0)
                return 1;
        }
    }
    return 0;
}
