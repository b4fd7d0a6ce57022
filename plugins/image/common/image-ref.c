/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references as the docker CLI normalises them. Drivers never link
 * the core, so this is a small copy of the rules in core/lib/reference.h:
 * a first component is a registry domain only when it holds '.' or ':' or is
 * "localhost"; Docker Hub names get "docker.io" and, with one component,
 * "library/"; no tag and no digest means ":latest".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "image-common.h"

static int path_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
           c == '/';
}

static int tag_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Split a name (without digest) into domain, path and tag; all borrowed from @work. */
static int split(char *work, const char **domain, const char **path, const char **tag)
{
    char *slash = strchr(work, '/'), *colon, *last;

    *domain = NULL;
    if (slash) {
        *slash = '\0';
        if (strchr(work, '.') || strchr(work, ':') || strcmp(work, "localhost") == 0) {
            *domain = work;
            *path = slash + 1;
        } else {
            *slash = '/';
            *path = work;
        }
    } else {
        *path = work;
    }
    last = strrchr(*path, '/');
    colon = strchr(last ? last : *path, ':');
    *tag = NULL;
    if (colon) {
        *colon = '\0';
        *tag = colon + 1;
    }
    return 0;
}

int image_ref_normalize(const char *ref, char *buf, size_t len)
{
    char work[IMAGE_REF_MAX];
    const char *domain, *path, *tag, *digest = NULL;
    char *at;
    size_t i;
    int n;

    if (!ref || !*ref || strlen(ref) >= sizeof(work) || image_digest_check(ref, NULL) == 0)
        return -EINVAL;
    memcpy(work, ref, strlen(ref) + 1);
    at = strchr(work, '@');
    if (at) {
        *at = '\0';
        digest = at + 1;
        if (image_digest_check(digest, NULL) < 0)
            return -EINVAL;
    }
    split(work, &domain, &path, &tag);
    if (!*path || path[0] == '/' || path[strlen(path) - 1] == '/' || strstr(path, "//"))
        return -EINVAL;
    for (i = 0; path[i]; i++)
        if (!path_char_ok(path[i]))
            return -EINVAL;
    if (tag) {
        if (!*tag || strlen(tag) > 128 || tag[0] == '.' || tag[0] == '-')
            return -EINVAL;
        for (i = 0; tag[i]; i++)
            if (!tag_char_ok(tag[i]))
                return -EINVAL;
    }
    if (!domain || strcmp(domain, "index.docker.io") == 0)
        domain = "docker.io";
    n = snprintf(buf, len, "%s/%s%s%s%s%s%s", domain,
                 strcmp(domain, "docker.io") == 0 && !strchr(path, '/') ? "library/" : "", path,
                 tag || !digest ? ":" : "", tag ? tag : (!digest ? "latest" : ""),
                 digest ? "@" : "", digest ? digest : "");
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}

int image_ref_familiar(const char *full, char *buf, size_t len)
{
    static const char lib[] = "docker.io/library/";
    const char *s = full, *rest = NULL;

    /*
     * Walk by hand: gcc 12 with -fsanitize misjudges strchr/memchr on
     * s + 18 after the strncmp as reading from a zero-sized region.
     */
    if (strncmp(s, lib, sizeof(lib) - 1) == 0) {
        rest = s + sizeof(lib) - 1;
        for (const char *p = rest; *p; p++)
            if (*p == '/')
                rest = NULL;
    }
    if (rest)
        s = rest;
    else if (strncmp(s, "docker.io/", 10) == 0)
        s += 10;
    if ((size_t)snprintf(buf, len, "%s", s) >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* The offset of the ':' of the tag in @full, or -1. */
static long tag_colon(const char *full)
{
    const char *at = strchr(full, '@');
    size_t end = at ? (size_t)(at - full) : strlen(full);
    long slash = -1, colon = -1;

    for (size_t i = 0; i < end; i++) {
        if (full[i] == '/')
            slash = (long)i, colon = -1;
        else if (full[i] == ':')
            colon = (long)i;
    }
    /* A ':' before the first '/' is a registry port, not a tag. */
    return slash < 0 && strchr(full, '/') ? -1 : colon;
}

int image_ref_tag(const char *full, char *buf, size_t len)
{
    long c = tag_colon(full);
    const char *at = strchr(full, '@');
    size_t n;

    if (c < 0) {
        buf[0] = '\0';
        return 0;
    }
    n = at ? (size_t)(at - full) - (size_t)c - 1 : strlen(full + c + 1);
    if (n >= len)
        return -ENAMETOOLONG;
    memcpy(buf, full + c + 1, n);
    buf[n] = '\0';
    return 0;
}

int image_ref_repo(const char *full, int familiar, char *buf, size_t len)
{
    char tmp[IMAGE_REF_MAX];
    long c = tag_colon(full);
    const char *at = strchr(full, '@');
    size_t n = c >= 0 ? (size_t)c : at ? (size_t)(at - full) : strlen(full);

    if (n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, full, n);
    tmp[n] = '\0';
    if (familiar)
        return image_ref_familiar(tmp, buf, len);
    if (n >= len)
        return -ENAMETOOLONG;
    memcpy(buf, tmp, n + 1);
    return 0;
}

const char *image_ref_digest(const char *ref)
{
    const char *at;
    if (!ref)
        return NULL;
    if (image_digest_check(ref, NULL) == 0)
        return ref;
    at = strrchr(ref, '@');
    if (at && image_digest_check(at + 1, NULL) == 0)
        return at + 1;
    return NULL;
}

int image_ref_equal(const char *ref, const char *name)
{
    char a[IMAGE_REF_MAX], b[IMAGE_REF_MAX];
    if (!ref || !name)
        return 0;
    if (strcmp(ref, name) == 0)
        return 1;
    return image_ref_normalize(ref, a, sizeof(a)) == 0 &&
           image_ref_normalize(name, b, sizeof(b)) == 0 && strcmp(a, b) == 0;
}
