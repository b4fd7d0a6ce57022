/* SPDX-License-Identifier: Apache-2.0 */
/* Standard base64 (see base64.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t berth__base64_encoded_len(size_t len)
{
    if (len / 3 >= (SIZE_MAX - 1) / 4)
        return 0;
    return (len + 2) / 3 * 4;
}

size_t berth__base64_encode_to(const void *data, size_t len, char *out)
{
    const uint8_t *in = data;
    char *o = out;

    for (size_t i = 0; i < len; i += 3) {
        size_t n = len - i < 3 ? len - i : 3;
        uint32_t v = (uint32_t)in[i] << 16;

        if (n > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (n > 2)
            v |= in[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = n > 1 ? alphabet[(v >> 6) & 63] : '=';
        *o++ = n > 2 ? alphabet[v & 63] : '=';
    }
    *o = '\0';
    return (size_t)(o - out);
}

char *berth__base64_encode(const void *data, size_t len)
{
    size_t n = berth__base64_encoded_len(len);
    char *out;

    if ((len && !n) || !(out = malloc(n + 1)))
        return NULL;
    berth__base64_encode_to(data, len, out);
    return out;
}

static int value_of(char c)
{
    /* strchr() would find the terminating NUL: test it first. */
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

static int decode_strict(const char *text, size_t tlen, uint8_t *out, size_t *ret_n)
{
    size_t n = 0;

    if (tlen % 4)
        return -EINVAL;
    for (size_t i = 0; i < tlen; i += 4) {
        int last = i + 4 == tlen;
        int pad = last ? (text[i + 3] == '=') + (text[i + 3] == '=' && text[i + 2] == '=') : 0;
        uint32_t w = 0;

        for (int k = 0; k < 4; k++) {
            int v = k >= 4 - pad ? 0 : value_of(text[i + k]);
            if (v < 0)
                return -EINVAL;
            w = w << 6 | (uint32_t)v;
        }
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return -EINVAL;
        out[n++] = (uint8_t)(w >> 16);
        if (pad < 2)
            out[n++] = (uint8_t)(w >> 8);
        if (pad < 1)
            out[n++] = (uint8_t)w;
    }
    *ret_n = n;
    return 0;
}

static int decode_lenient(const char *text, size_t tlen, uint8_t *out, size_t *ret_n)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < tlen && text[i] != '='; i++) {
        int v = value_of(text[i]);
        if (v < 0)
            return -EINVAL;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    *ret_n = n;
    return 0;
}

int berth__base64_decode(const char *text, int mode, uint8_t **ret_data, size_t *ret_len)
{
    size_t tlen, n = 0;
    uint8_t *out;
    int r;

    if (!text)
        return -EINVAL;
    tlen = strlen(text);
    /* 3 bytes per 4 characters, and one more for the NUL. */
    if (!(out = malloc(tlen / 4 * 3 + 3)))
        return -ENOMEM;
    r = mode == BERTH__BASE64_LENIENT ? decode_lenient(text, tlen, out, &n)
                                      : decode_strict(text, tlen, out, &n);
    if (r < 0) {
        free(out);
        return r;
    }
    out[n] = '\0';
    *ret_data = out;
    if (ret_len)
        *ret_len = n;
    return 0;
}
