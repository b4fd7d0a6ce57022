/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standard base64 (RFC 4648 section 4: the "+/" alphabet, "=" padding), one
 * implementation for libberth (docker's credentials file), the registry
 * plugin (Basic authorization) and the hyperv driver and its guest agent
 * (binary members of the agent protocol). A small static library with no
 * dependencies, so that the static agent can link it too.
 */
#ifndef BERTH_BASE64_H
#define BERTH_BASE64_H

#include <stddef.h>
#include <stdint.h>

/*
 * Characters in the padded text of @len bytes (4 per started group of 3),
 * without the terminating NUL; 0 when that would not fit a size_t.
 */
size_t berth__base64_encoded_len(size_t len);

/*
 * Write the padded text of @len bytes at @data to @out, which has room for
 * berth__base64_encoded_len(@len) + 1 bytes; NUL-terminated. Returns the
 * characters written (not counting the NUL). @data may be NULL when @len is 0.
 */
size_t berth__base64_encode_to(const void *data, size_t len, char *out);

/* The padded text of @len bytes, malloc'd; NULL when out of memory. */
char *berth__base64_encode(const void *data, size_t len);

enum {
    /*
     * Only canonical text: a multiple of 4 characters, padding only at the
     * end, unused bits of the last group zero (so each byte string has one
     * text). For what berth's own peers send (the agent protocol).
     */
    BERTH__BASE64_STRICT = 0,
    /*
     * Padding optional: decoding stops at the first "=" and the bits left
     * over are dropped. For text other programs wrote (docker's
     * config.json). A character outside the alphabet is refused either way.
     */
    BERTH__BASE64_LENIENT = 1,
};

/*
 * Decode @text. 0 with *ret_data (malloc'd, the caller frees; never NULL,
 * also for "") holding *ret_len bytes followed by a NUL that is not counted,
 * so text can be used as a string; -EINVAL when @text is NULL or not base64
 * under @mode; -ENOMEM. @ret_len may be NULL.
 */
int berth__base64_decode(const char *text, int mode, uint8_t **ret_data, size_t *ret_len);

#endif /* BERTH_BASE64_H */
