/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Locations and references as the registry driver accepts them. Pure
 * functions with no I/O, linked into the unit test as they are.
 *
 * A location is "[DOMAIN/]REPO[:TAG|@DIGEST]":
 *  - DOMAIN is the first path component when it contains '.' or ':' or is
 *    "localhost" (docker's rule): DNS labels or an IPv4 address or an IPv6
 *    literal in brackets, with an optional ":PORT". Without one the image
 *    is on Docker Hub: domain "docker.io", API host "registry-1.docker.io"
 *    ("index.docker.io" and "registry-1.docker.io" are the same), and a
 *    one-component REPO gets the "library/" namespace.
 *  - REPO is lowercase components [a-z0-9]+ joined inside by '.', '_',
 *    "__" or runs of '-', separated by '/' (distribution-spec); DOMAIN/REPO
 *    is at most 255 bytes.
 *  - TAG is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; DIGEST is "sha256:" and 64
 *    lowercase hex digits (the only algorithm accepted).
 *
 * A reference given to resolve is one of:
 *  - NULL: the location's TAG or DIGEST, else "latest";
 *  - a TAG ("latest");
 *  - a DIGEST, with or without a leading '@' ("@sha256:...", "sha256:...");
 *  - a full reference "[DOMAIN/]REPO[:TAG|@DIGEST]" naming the session's
 *    repository (with no DOMAIN the REPO is compared as written, so
 *    "test/img:v1" names 127.0.0.1:5000/test/img; on Docker Hub "busybox"
 *    also names library/busybox). Another repository is -ENOENT: a session
 *    reads one repository.
 */
#ifndef IMAGE_REGISTRY_REF_H
#define IMAGE_REGISTRY_REF_H

#include <berth/types.h>

#define REG_NAME_MAX   255
#define REG_TAG_MAX    128
#define REG_DIGEST_LEN 71 /* "sha256:" + 64 hex */

#define REG_HUB_DOMAIN   "docker.io"
#define REG_HUB_API_HOST "registry-1.docker.io"

typedef struct reg_location {
    char domain[REG_NAME_MAX + 1];   /* as the user sees it: "docker.io", "127.0.0.1:5000" */
    char api_host[REG_NAME_MAX + 1]; /* host[:port] in URLs: "registry-1.docker.io", "[::1]:5000" */
    char host[REG_NAME_MAX + 1];     /* api_host without brackets and port: "::1" */
    char repo[REG_NAME_MAX + 1];     /* normalised: "library/busybox" */
    char written[REG_NAME_MAX + 1];  /* the repository as written: "busybox" */
    char tag[REG_TAG_MAX + 1];       /* "" when none */
    char digest[REG_DIGEST_LEN + 1]; /* "" when none */
    int explicit_domain;             /* the location named its domain */
} reg_location_t;

/* 1 when @s is "sha256:" + 64 lowercase hex digits, else 0. */
int image_registry_digest_valid(const char *s);

/* 1 when @s is a valid tag, else 0. */
int image_registry_tag_valid(const char *s);

/*
 * Parse a location (see above) into *ret_loc. Returns 0, or -EINVAL with
 * "invalid reference ...: <why>" in @err. *ret_loc is written only on success.
 */
int image_registry_parse_location(const char *s, reg_location_t *ret_loc, berth_err_t *err);

/*
 * What @reference (see above, may be NULL) asks of the session at @loc:
 * exactly one of ret_tag (REG_TAG_MAX + 1 bytes) and ret_digest
 * (REG_DIGEST_LEN + 1 bytes) is set non-empty, the other to "".
 * Returns 0; -EINVAL for a malformed reference; -ENOENT when it names
 * another repository. Outputs are written only on success.
 */
int image_registry_parse_target(const reg_location_t *loc, const char *reference, char *ret_tag,
                                char *ret_digest, berth_err_t *err);

/* 1 when @host (no port, no brackets) is "localhost", in 127.0.0.0/8 or "::1". */
int image_registry_host_is_loopback(const char *host);

/*
 * 1 when @loc is listed in @entries (@n strings "host" or "host:port",
 * compared case-insensitively): "host:port" matches that domain exactly,
 * "host" matches the host on any port.
 */
int image_registry_host_listed(const reg_location_t *loc, const char *const *entries, size_t n);

#endif /* IMAGE_REGISTRY_REF_H */
