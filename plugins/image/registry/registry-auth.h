/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Authentication pieces of the registry driver that do no I/O: the
 * WWW-Authenticate parser, the token reply parser, Basic credentials and
 * the per-scope token cache. The requests themselves are in
 * image-registry.c.
 */
#ifndef IMAGE_REGISTRY_AUTH_H
#define IMAGE_REGISTRY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <berth/types.h>

#define REG_AUTH_NONE   0
#define REG_AUTH_BASIC  1
#define REG_AUTH_BEARER 2

/* The challenge the driver answers; strings are NUL-terminated and may be "". */
typedef struct reg_challenge {
    int scheme; /* REG_AUTH_BASIC or REG_AUTH_BEARER */
    char realm[1024];
    char service[256];
    char scope[512];
    char error[64]; /* Bearer error="...", e.g. "insufficient_scope" */
} reg_challenge_t;

/*
 * Parse the value of one or more WWW-Authenticate headers (several headers
 * joined with ", ", as HTTP allows) per RFC 9110 §11.6.1: challenges
 * separated by commas, auth-params as token=token or token="quoted string"
 * (backslash escapes, commas inside quotes), token68 forms skipped, scheme
 * and parameter names case-insensitive. Picks the first Bearer challenge
 * that has a realm, else the first Basic one.
 * Returns 0 with *ret_chal set; -ENOTSUP with the schemes seen in @err when
 * neither is offered; -EINVAL with the reason when the value is malformed
 * or a parameter is longer than its field. *ret_chal is written only on
 * success.
 */
int image_registry_parse_challenge(const char *value, reg_challenge_t *ret_chal, berth_err_t *err);

/*
 * Parse a token server's JSON reply: "token" or "access_token" (printable
 * ASCII, at most 16 KiB) and "expires_in" (seconds; 60 when absent or not
 * positive, as the token spec says). On success *ret_token is a malloc'd
 * copy the caller frees (wipe it first), *ret_expires_in set.
 * Returns 0, -EPROTO when the reply has no usable token, -ENOMEM.
 */
int image_registry_parse_token_reply(const char *body, size_t len, char **ret_token,
                                     int64_t *ret_expires_in, berth_err_t *err);

/*
 * The one-line message a registry or token server put in an error body
 * ({"errors":[{"code","message"}]}, or "details", "error_description",
 * "message", "error"), control characters replaced, at most @len - 1
 * bytes, into @buf; "" when there is none. @code (may be NULL) receives the
 * first error's "code" ("MANIFEST_UNKNOWN"), "" when absent.
 */
void image_registry_error_message(const char *body, size_t len, char *buf, size_t buflen,
                                  char *code, size_t codelen);

/*
 * "Authorization: Basic <base64(user:password)>" in a malloc'd string
 * the caller wipes and frees; NULL when out of memory.
 */
char *image_registry_basic_header(const char *user, const char *password);

/* Fill @p with zeros in a way the compiler keeps, then free it; NULL allowed. */
void image_registry_wipe_free(char *p);

/*
 * Tokens by scope, with their expiry on CLOCK_MONOTONIC. Not locked: the
 * session guards it.
 */
#define REG_TOKEN_CACHE_MAX 16

typedef struct reg_token {
    char *scope; /* "" for the scope-less login token */
    char *token;
    int64_t expires_ms; /* monotonic ms */
} reg_token_t;

typedef struct reg_token_cache {
    reg_token_t t[REG_TOKEN_CACHE_MAX];
    size_t n;
} reg_token_cache_t;

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t image_registry_now_ms(void);

/*
 * The unexpired token for @scope, borrowed until the next call that changes
 * the cache; NULL when none. A token counts as expired a little before its
 * end (a tenth of its life, at most 5 s), so it does not lapse in flight.
 */
const char *image_registry_token_get(reg_token_cache_t *c, const char *scope, int64_t now_ms);

/*
 * Store @token for @scope (both copied), valid for @expires_in seconds from
 * @now_ms, replacing an older one; when full, the entry closest to expiry
 * goes. Returns 0 or -ENOMEM.
 */
int image_registry_token_put(reg_token_cache_t *c, const char *scope, const char *token,
                             int64_t expires_in, int64_t now_ms);

/* Forget the token for @scope (after the registry refused it). */
void image_registry_token_drop(reg_token_cache_t *c, const char *scope);

/* Wipe and free every token. */
void image_registry_token_clear(reg_token_cache_t *c);

#endif /* IMAGE_REGISTRY_AUTH_H */
