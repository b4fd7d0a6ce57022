/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references as Docker spells them: "busybox", "busybox:1.36",
 * "localhost:5000/team/app@sha256:<hex>", "docker.io/library/busybox:latest".
 *
 * Parsing normalises the way the docker CLI does: a first path component is a
 * registry domain only when it contains '.' or ':' or is "localhost";
 * otherwise the domain is "docker.io", and a single-component Docker Hub name
 * gets the "library/" namespace. Repository path components are lowercase
 * [a-z0-9] separated by '.', '_', "__" or runs of '-', joined by '/'; a tag
 * is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; a digest is "sha256:" + 64 lowercase
 * hex (distribution-spec). The whole name is at most 255 bytes.
 *
 * The full form ("docker.io/library/busybox:latest") is what the store keys
 * tags by; the familiar form ("busybox:latest") is what users see.
 */
#ifndef BERTH_REFERENCE_H
#define BERTH_REFERENCE_H

#include <stddef.h>

#include <berth/types.h>

#define BERTH_REF_NAME_MAX 255

typedef struct berth_ref {
    char domain[BERTH_REF_NAME_MAX + 1]; /* "docker.io", "localhost:5000" */
    char path[BERTH_REF_NAME_MAX + 1];   /* "library/busybox" */
    char tag[129];                       /* "" when none was given */
    char digest[72];                     /* "" when none was given */
} berth_ref_t;

/*
 * Parse @s into *ret. -EINVAL with "invalid reference format: ..." saying
 * what is wrong. Neither a tag nor a digest is added: see
 * berth__ref_default_tag().
 */
int berth__ref_parse(const char *s, berth_ref_t *ret, berth_err_t *err);

/* Give @ref the tag "latest" when it has neither a tag nor a digest. */
void berth__ref_default_tag(berth_ref_t *ref);

/* "domain/path" (no tag, no digest), as repositories are named in the store. */
int berth__ref_repo(const berth_ref_t *ref, char *buf, size_t len);

/*
 * The full form: "domain/path[:tag][@digest]". Returns 0, or -ENAMETOOLONG
 * when @len is too small.
 */
int berth__ref_full(const berth_ref_t *ref, char *buf, size_t len);

/*
 * The familiar form of a full name (or of anything berth__ref_parse
 * accepts): "docker.io/library/busybox:latest" -> "busybox:latest",
 * "docker.io/team/app" -> "team/app"; other registries keep their domain.
 */
int berth__ref_familiar(const char *name, char *buf, size_t len);

/* 1 when @s is a valid tag, else 0. */
int berth__ref_tag_valid(const char *s);

#endif /* BERTH_REFERENCE_H */
