/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sha256 digests and ChainIDs (digest.h).
 */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "digest.h"
#include "lazylib.h"

#define PREFIX     "sha256:"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

int berth__sha256_init(berth_sha256_t *s)
{
    s->failed = 0;
    s->ctx = NULL;
    /* The caller's error says "sha256"; berth__crypto_load(err) first gives the library's words. */
    if (berth__crypto_load(NULL) < 0)
        return -ENOENT;
    s->ctx = BERTH_EVP(EVP_MD_CTX_new)();
    if (!s->ctx)
        return -ENOMEM;
    if (BERTH_EVP(EVP_DigestInit_ex)(s->ctx, BERTH_EVP(EVP_sha256)(), NULL) != 1) {
        BERTH_EVP(EVP_MD_CTX_free)(s->ctx);
        s->ctx = NULL;
        return -EIO;
    }
    return 0;
}

void berth__sha256_update(berth_sha256_t *s, const void *buf, size_t len)
{
    /* EVP_DigestUpdate only fails on a broken context; remember it for final. */
    if (!s->ctx || BERTH_EVP(EVP_DigestUpdate)(s->ctx, buf, len) != 1)
        s->failed = 1;
}

int berth__sha256_final(berth_sha256_t *s, char ret_digest[BERTH_DIGEST_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok;

    ok = s->ctx && !s->failed && BERTH_EVP(EVP_DigestFinal_ex)(s->ctx, md, &n) == 1 && n == 32;
    berth__sha256_free(s);
    if (!ok) {
        ret_digest[0] = '\0';
        return -EIO;
    }
    memcpy(ret_digest, PREFIX, PREFIX_LEN);
    for (unsigned int i = 0; i < 32; i++) {
        ret_digest[PREFIX_LEN + 2 * i] = hex[md[i] >> 4];
        ret_digest[PREFIX_LEN + 2 * i + 1] = hex[md[i] & 0xf];
    }
    ret_digest[BERTH_DIGEST_LEN] = '\0';
    return 0;
}

void berth__sha256_free(berth_sha256_t *s)
{
    if (s && s->ctx) {
        BERTH_EVP(EVP_MD_CTX_free)(s->ctx);
        s->ctx = NULL;
    }
}

int berth__sha256_buf(const void *buf, size_t len, char ret_digest[BERTH_DIGEST_SIZE])
{
    berth_sha256_t s;
    char out[BERTH_DIGEST_SIZE];
    int r;

    if ((r = berth__sha256_init(&s)) < 0)
        return r;
    berth__sha256_update(&s, buf, len);
    if ((r = berth__sha256_final(&s, out)) < 0)
        return r;
    memcpy(ret_digest, out, sizeof(out));
    return 0;
}

int berth__digest_valid(const char *digest)
{
    if (!digest || strncmp(digest, PREFIX, PREFIX_LEN) != 0)
        return 0;
    for (size_t i = PREFIX_LEN; i < BERTH_DIGEST_LEN; i++) {
        char c = digest[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0; /* also stops at an early NUL */
    }
    return digest[BERTH_DIGEST_LEN] == '\0';
}

const char *berth__digest_hex(const char *digest)
{
    return berth__digest_valid(digest) ? digest + PREFIX_LEN : NULL;
}

int berth__chain_id_next(const char *parent_chain_id, const char *diff_id,
                         char ret_chain_id[BERTH_DIGEST_SIZE], berth_err_t *err)
{
    berth_sha256_t s;
    char out[BERTH_DIGEST_SIZE];
    int r;

    if (!berth__digest_valid(diff_id))
        return berth_err_set(err, -EINVAL, "chain id: invalid diff id \"%.80s\"",
                             diff_id ? diff_id : "");
    if (!parent_chain_id) {
        memmove(ret_chain_id, diff_id, BERTH_DIGEST_SIZE);
        return 0;
    }
    if (!berth__digest_valid(parent_chain_id))
        return berth_err_set(err, -EINVAL, "chain id: invalid parent chain id \"%.80s\"",
                             parent_chain_id);
    if ((r = berth__sha256_init(&s)) < 0)
        return berth_err_set(err, r, "chain id: sha256: %s", strerror(-r));
    berth__sha256_update(&s, parent_chain_id, BERTH_DIGEST_LEN);
    berth__sha256_update(&s, " ", 1);
    berth__sha256_update(&s, diff_id, BERTH_DIGEST_LEN);
    if ((r = berth__sha256_final(&s, out)) < 0)
        return berth_err_set(err, r, "chain id: sha256 failed");
    /* Written last so @ret_chain_id may be the parent's buffer. */
    memcpy(ret_chain_id, out, sizeof(out));
    return 0;
}

int berth__chain_id(const char *const *diff_ids, size_t n, char ret_chain_id[BERTH_DIGEST_SIZE],
                    berth_err_t *err)
{
    char cur[BERTH_DIGEST_SIZE];
    int r;

    if (n == 0 || !diff_ids)
        return berth_err_set(err, -EINVAL, "chain id: no layers");
    for (size_t i = 0; i < n; i++) {
        if ((r = berth__chain_id_next(i == 0 ? NULL : cur, diff_ids[i], cur, err)) < 0)
            return r;
    }
    memcpy(ret_chain_id, cur, sizeof(cur));
    return 0;
}
