/* SPDX-License-Identifier: Apache-2.0 */
/* Image reference parsing and normalisation (see reference.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reference.h"

#define DOCKER_DOMAIN  "docker.io"
#define LIBRARY_PREFIX "library/"

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_hex(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

/* One repository path component: alnum runs joined by '.', '_', "__" or '-'+. */
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
        if (s[i] == '.' || (s[i] == '_' && s[i + 1] != '_')) {
            i++;
        } else if (s[i] == '_') {
            i += 2;
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

/* A registry host: DNS labels or an IPv6 literal in brackets, with an optional port. */
static int domain_valid(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0)
        return 0;
    if (s[0] == '[') {
        while (i < n && s[i] != ']')
            i++;
        if (i >= n)
            return 0;
        i++;
    } else {
        for (; i < n && s[i] != ':'; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.'))
                return 0;
        }
        if (i == 0 || s[0] == '-' || s[0] == '.' || s[i - 1] == '-' || s[i - 1] == '.')
            return 0;
    }
    if (i < n) {
        if (s[i] != ':' || i + 1 >= n)
            return 0;
        for (i++; i < n; i++)
            if (s[i] < '0' || s[i] > '9')
                return 0;
    }
    return 1;
}

int berth__ref_tag_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int word =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!word && (i == 0 || (c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

static int digest_valid(const char *s)
{
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 71)
        return 0;
    for (size_t i = 7; i < 71; i++)
        if (!is_hex(s[i]))
            return 0;
    return 1;
}

int berth__ref_parse(const char *s, berth_ref_t *ret, berth_err_t *err)
{
    berth_ref_t r;
    char name[2 * BERTH_REF_NAME_MAX + 2];
    const char *at, *slash, *colon, *rest;
    size_t n;

    memset(&r, 0, sizeof(r));
    if (!s || !*s)
        return berth_err_set(err, -EINVAL, "invalid reference format: empty name");
    if (strlen(s) >= sizeof(name))
        return berth_err_set(err, -EINVAL, "invalid reference format: name too long");

    at = strchr(s, '@');
    if (at) {
        if (!digest_valid(at + 1))
            return berth_err_set(err, -EINVAL,
                                 "invalid reference format: \"%s\": digest must be sha256:<64 "
                                 "lowercase hex>",
                                 s);
        memcpy(r.digest, at + 1, 72);
        n = (size_t)(at - s);
    } else {
        n = strlen(s);
    }
    memcpy(name, s, n);
    name[n] = '\0';

    /* A tag is after the last ':' that follows the last '/'. */
    slash = strrchr(name, '/');
    colon = strrchr(slash ? slash : name, ':');
    if (colon) {
        if (!berth__ref_tag_valid(colon + 1))
            return berth_err_set(err, -EINVAL, "invalid reference format: \"%s\": bad tag", s);
        snprintf(r.tag, sizeof(r.tag), "%s", colon + 1);
        name[colon - name] = '\0';
    }

    /* The domain, when the first component looks like one. */
    slash = strchr(name, '/');
    rest = name;
    if (slash) {
        size_t dn = (size_t)(slash - name);
        if (memchr(name, '.', dn) || memchr(name, ':', dn) ||
            (dn == 9 && strncmp(name, "localhost", 9) == 0)) {
            if (!domain_valid(name, dn) || dn > BERTH_REF_NAME_MAX)
                return berth_err_set(err, -EINVAL,
                                     "invalid reference format: \"%s\": bad registry host", s);
            memcpy(r.domain, name, dn);
            r.domain[dn] = '\0';
            rest = slash + 1;
        }
    }
    if (!r.domain[0])
        snprintf(r.domain, sizeof(r.domain), "%s", DOCKER_DOMAIN);

    /* Path components. */
    for (const char *p = rest;;) {
        const char *e = strchr(p, '/');
        size_t cn = e ? (size_t)(e - p) : strlen(p);
        if (!component_valid(p, cn)) {
            for (size_t i = 0; i < cn; i++)
                if (p[i] >= 'A' && p[i] <= 'Z')
                    return berth_err_set(err, -EINVAL,
                                         "invalid reference format: \"%s\": repository name "
                                         "must be lowercase",
                                         s);
            return berth_err_set(err, -EINVAL, "invalid reference format: \"%s\"", s);
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (strcmp(r.domain, DOCKER_DOMAIN) == 0 && !strchr(rest, '/')) {
        if (snprintf(r.path, sizeof(r.path), LIBRARY_PREFIX "%s", rest) >= (int)sizeof(r.path))
            return berth_err_set(err, -EINVAL, "invalid reference format: name too long");
    } else if (snprintf(r.path, sizeof(r.path), "%s", rest) >= (int)sizeof(r.path)) {
        return berth_err_set(err, -EINVAL, "invalid reference format: name too long");
    }
    if (strlen(r.domain) + 1 + strlen(r.path) > BERTH_REF_NAME_MAX)
        return berth_err_set(err, -EINVAL, "invalid reference format: name too long");
    *ret = r;
    return 0;
}

void berth__ref_default_tag(berth_ref_t *ref)
{
    if (!ref->tag[0] && !ref->digest[0])
        snprintf(ref->tag, sizeof(ref->tag), "latest");
}

int berth__ref_repo(const berth_ref_t *ref, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", ref->domain, ref->path);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int berth__ref_full(const berth_ref_t *ref, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s%s%s%s%s", ref->domain, ref->path, ref->tag[0] ? ":" : "",
                     ref->tag, ref->digest[0] ? "@" : "", ref->digest);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int berth__ref_familiar(const char *name, char *buf, size_t len)
{
    berth_ref_t r;
    const char *path;
    int n;

    if (berth__ref_parse(name, &r, NULL) < 0) {
        n = snprintf(buf, len, "%s", name);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
    }
    path = r.path;
    if (strcmp(r.domain, DOCKER_DOMAIN) == 0) {
        if (strncmp(path, LIBRARY_PREFIX, strlen(LIBRARY_PREFIX)) == 0 &&
            !strchr(path + strlen(LIBRARY_PREFIX), '/'))
            path += strlen(LIBRARY_PREFIX);
        n = snprintf(buf, len, "%s", path);
    } else {
        n = snprintf(buf, len, "%s/%s", r.domain, path);
    }
    if (n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "%s%s%s%s", r.tag[0] ? ":" : "", r.tag,
                      r.digest[0] ? "@" : "", r.digest);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
