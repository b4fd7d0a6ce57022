/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sha256 digests as OCI writes them ("sha256:" + 64 lowercase hex) and the
 * ChainID of a layer stack (OCI image-spec config.md, "Layer ChainID").
 *
 * Hashing goes through OpenSSL libcrypto's EVP interface, which picks the
 * SHA-NI / AVX2 implementation the CPU supports.
 *
 * Sizes: a digest string is BERTH_DIGEST_LEN characters plus the NUL, so
 * char[BERTH_DIGEST_SIZE] (72) holds one; the core passes digests around as
 * char[72] everywhere.
 */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H

#include <stddef.h>

#include <berth/types.h>

#define BERTH_DIGEST_LEN  71 /* strlen("sha256:") + 64 */
#define BERTH_DIGEST_SIZE 72 /* BERTH_DIGEST_LEN + NUL */

struct evp_md_ctx_st; /* OpenSSL's EVP_MD_CTX, kept out of this header */

/*
 * A streaming sha256. Owned by the caller (usually embedded in a larger
 * struct). Lifecycle: berth__sha256_init() -> any number of
 * berth__sha256_update() -> berth__sha256_final(), which also releases the
 * context. berth__sha256_free() releases a context that is abandoned before
 * final; it is a no-op after final or on a zeroed struct, so calling it
 * unconditionally on cleanup paths is safe. A released context may be
 * initialised again.
 */
typedef struct berth_sha256 {
    struct evp_md_ctx_st *ctx; /* NULL when released */
    int failed;                /* an EVP call failed: final reports it */
} berth_sha256_t;

/* Start a hash. Returns 0 or -ENOMEM. */
int berth__sha256_init(berth_sha256_t *s);

/*
 * Feed @len bytes of @buf (@len may be 0). Cannot fail from the caller's
 * point of view: an internal failure is remembered and reported by final.
 */
void berth__sha256_update(berth_sha256_t *s, const void *buf, size_t len);

/*
 * Finish: write "sha256:<hex>" into @ret_digest and release the context.
 * Returns 0, or -EIO if hashing failed inside libcrypto (or the context was
 * never initialised); @ret_digest is then the empty string, which never
 * compares equal to a valid digest.
 */
int berth__sha256_final(berth_sha256_t *s, char ret_digest[BERTH_DIGEST_SIZE]);

/* Release a context that was not finalised; NULL-safe and idempotent. */
void berth__sha256_free(berth_sha256_t *s);

/* One-shot digest of a buffer. Returns 0, -ENOMEM or -EIO (see final). */
int berth__sha256_buf(const void *buf, size_t len, char ret_digest[BERTH_DIGEST_SIZE]);

/* 1 when @digest is exactly "sha256:" + 64 lowercase hex digits, else 0 (NULL gives 0). */
int berth__digest_valid(const char *digest);

/*
 * The 64 hex digits of a valid digest: a pointer into @digest (borrowed,
 * valid as long as @digest is), or NULL when @digest is not valid.
 */
const char *berth__digest_hex(const char *digest);

/*
 * One step of a ChainID: with @parent_chain_id NULL, ChainID(L0) = DiffID(L0)
 * (copied); otherwise sha256(parent_chain_id + " " + diff_id).
 * Returns 0, -EINVAL (a digest is not valid; err names it), -ENOMEM or -EIO.
 * @ret_chain_id may alias @parent_chain_id.
 */
int berth__chain_id_next(const char *parent_chain_id, const char *diff_id,
                         char ret_chain_id[BERTH_DIGEST_SIZE], berth_err_t *err);

/*
 * The ChainID of the stack @diff_ids[0] (bottom) .. @diff_ids[n - 1] (top).
 * Returns 0, -EINVAL (n == 0 or an invalid DiffID, named in err), -ENOMEM or
 * -EIO. @ret_chain_id is written only on success.
 */
int berth__chain_id(const char *const *diff_ids, size_t n, char ret_chain_id[BERTH_DIGEST_SIZE],
                    berth_err_t *err);

#endif /* BERTH_DIGEST_H */
