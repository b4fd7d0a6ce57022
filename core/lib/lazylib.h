/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Libraries only some commands need, opened on first use.
 *
 * libarchive (layer unpacking) and OpenSSL's libcrypto (sha256) serve image
 * pulls and loads, but linking them into libberth made every process that
 * uses the engine map and relocate them and their dependencies at start:
 * libarchive brings libxml2, ICU and libstdc++ on Debian. That cost 1.9 ms
 * of every `berth` command (measured: 2.0 ms for an empty program linked
 * with libarchive and libcrypto against 0.7 ms without; docs/benchmarks.md).
 * So the few functions berth calls are looked up with dlopen/dlsym the first
 * time an image operation needs them.
 *
 * Calls go through a table, checked against the libraries' own headers
 * (each slot has the type of the function it holds):
 *
 *     if ((r = berth__archive_load(err)) < 0)
 *         return r;
 *     a = BERTH_AR(archive_read_new)();
 *
 * The load functions are thread-safe and cheap after the first call.
 */
#ifndef BERTH_LAZYLIB_H
#define BERTH_LAZYLIB_H

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#ifdef BERTH_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include <berth/types.h>

#define BERTH_ARCHIVE_SYMBOLS(X)                                                                   \
    X(archive_entry_atime)                                                                         \
    X(archive_entry_atime_is_set)                                                                  \
    X(archive_entry_atime_nsec)                                                                    \
    X(archive_entry_filetype)                                                                      \
    X(archive_entry_gid)                                                                           \
    X(archive_entry_hardlink)                                                                      \
    X(archive_entry_mode)                                                                          \
    X(archive_entry_mtime)                                                                         \
    X(archive_entry_mtime_is_set)                                                                  \
    X(archive_entry_mtime_nsec)                                                                    \
    X(archive_entry_pathname)                                                                      \
    X(archive_entry_rdevmajor)                                                                     \
    X(archive_entry_rdevminor)                                                                     \
    X(archive_entry_size)                                                                          \
    X(archive_entry_symlink)                                                                       \
    X(archive_entry_uid)                                                                           \
    X(archive_entry_xattr_next)                                                                    \
    X(archive_entry_xattr_reset)                                                                   \
    X(archive_error_string)                                                                        \
    X(archive_read_data_block)                                                                     \
    X(archive_read_free)                                                                           \
    X(archive_read_new)                                                                            \
    X(archive_read_next_header)                                                                    \
    X(archive_read_open)                                                                           \
    X(archive_read_support_format_tar)                                                             \
    X(archive_set_error)

#define BERTH_CRYPTO_SYMBOLS(X)                                                                    \
    X(EVP_DigestFinal_ex)                                                                          \
    X(EVP_DigestInit_ex)                                                                           \
    X(EVP_DigestUpdate)                                                                            \
    X(EVP_MD_CTX_free)                                                                             \
    X(EVP_MD_CTX_new)                                                                              \
    X(EVP_sha256)

#define BERTH_ISAL_SYMBOLS(X)                                                                      \
    X(isal_inflate)                                                                                \
    X(isal_inflate_init)                                                                           \
    X(isal_inflate_reset)

#define BERTH_LAZY_SLOT(f) __typeof__(&f) f;
struct berth_archive_syms {
    BERTH_ARCHIVE_SYMBOLS(BERTH_LAZY_SLOT)
};
struct berth_crypto_syms {
    BERTH_CRYPTO_SYMBOLS(BERTH_LAZY_SLOT)
};
#ifdef BERTH_HAVE_ISAL
struct berth_isal_syms {
    BERTH_ISAL_SYMBOLS(BERTH_LAZY_SLOT)
};
extern struct berth_isal_syms berth__isal_syms;
#define BERTH_ISAL(f) (berth__isal_syms.f)
/* ISA-L (optional, for gzip): like the others, but callers fall back to zlib on failure. */
int berth__isal_load(berth_err_t *err);
#endif
#undef BERTH_LAZY_SLOT

/* Filled by the load functions; read only after one of them returned 0. */
extern struct berth_archive_syms berth__archive_syms;
extern struct berth_crypto_syms berth__crypto_syms;

#define BERTH_AR(f)  (berth__archive_syms.f)
#define BERTH_EVP(f) (berth__crypto_syms.f)

/*
 * Open libarchive / libcrypto (their sonames fixed at build time) and look
 * up every symbol of the list; once per process. 0, or -ENOENT with what
 * failed (the library or a symbol, dlerror's words) in @err, the same
 * answer on every later call.
 */
int berth__archive_load(berth_err_t *err);
int berth__crypto_load(berth_err_t *err);

#endif /* BERTH_LAZYLIB_H */
