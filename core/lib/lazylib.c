/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dlopen on first use of libarchive and libcrypto (lazylib.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "berth-build-config.h"

#include "lazylib.h"

struct berth_archive_syms berth__archive_syms;
struct berth_crypto_syms berth__crypto_syms;
#ifdef BERTH_HAVE_ISAL
struct berth_isal_syms berth__isal_syms;
#endif

struct lazylib {
    pthread_once_t once;
    const char *soname;
    const char *const *names;
    unsigned char *slots; /* the table: one function pointer per name, in order */
    size_t n;
    char error[BERTH_ERR_MSG_MAX];
};

#define BERTH_LAZY_NAME(f) #f,
static const char *const archive_names[] = { BERTH_ARCHIVE_SYMBOLS(BERTH_LAZY_NAME) };
static const char *const crypto_names[] = { BERTH_CRYPTO_SYMBOLS(BERTH_LAZY_NAME) };
#ifdef BERTH_HAVE_ISAL
static const char *const isal_names[] = { BERTH_ISAL_SYMBOLS(BERTH_LAZY_NAME) };
#endif
#undef BERTH_LAZY_NAME

/* The tables are structs of function pointers only, each the size of dlsym's void *. */
_Static_assert(sizeof(struct berth_archive_syms) ==
                   sizeof(archive_names) / sizeof(archive_names[0]) * sizeof(void *),
               "one slot per libarchive name");
_Static_assert(sizeof(struct berth_crypto_syms) ==
                   sizeof(crypto_names) / sizeof(crypto_names[0]) * sizeof(void *),
               "one slot per libcrypto name");

static struct lazylib archive_lib = {
    PTHREAD_ONCE_INIT,
    BERTH_LIBARCHIVE_SONAME,
    archive_names,
    (unsigned char *)&berth__archive_syms,
    sizeof(archive_names) / sizeof(archive_names[0]),
    "",
};
static struct lazylib crypto_lib = {
    PTHREAD_ONCE_INIT,
    BERTH_LIBCRYPTO_SONAME,
    crypto_names,
    (unsigned char *)&berth__crypto_syms,
    sizeof(crypto_names) / sizeof(crypto_names[0]),
    "",
};

#ifdef BERTH_HAVE_ISAL
static struct lazylib isal_lib = {
    PTHREAD_ONCE_INIT,
    BERTH_LIBISAL_SONAME,
    isal_names,
    (unsigned char *)&berth__isal_syms,
    sizeof(isal_names) / sizeof(isal_names[0]),
    "",
};
#endif

static void lazy_open(struct lazylib *l)
{
    /* Never closed: the functions stay in use until the process ends. */
    void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        snprintf(l->error, sizeof(l->error), "%s", dlerror());
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        void *sym = dlsym(h, l->names[i]);
        if (!sym) {
            snprintf(l->error, sizeof(l->error), "%s: no symbol %s", l->soname, l->names[i]);
            return;
        }
        /* POSIX makes dlsym's result convertible to a function pointer; memcpy keeps it
         * clear of aliasing rules. */
        memcpy(l->slots + i * sizeof(sym), &sym, sizeof(sym));
    }
}

static void archive_once(void)
{
    lazy_open(&archive_lib);
}

static void crypto_once(void)
{
    lazy_open(&crypto_lib);
}

static int lazy_result(struct lazylib *l, berth_err_t *err)
{
    if (l->error[0])
        return berth_err_set(err, -ENOENT, "cannot use %s: %s", l->soname, l->error);
    return 0;
}

int berth__archive_load(berth_err_t *err)
{
    pthread_once(&archive_lib.once, archive_once);
    return lazy_result(&archive_lib, err);
}

int berth__crypto_load(berth_err_t *err)
{
    pthread_once(&crypto_lib.once, crypto_once);
    return lazy_result(&crypto_lib, err);
}

#ifdef BERTH_HAVE_ISAL
static void isal_once(void)
{
    lazy_open(&isal_lib);
}

int berth__isal_load(berth_err_t *err)
{
    pthread_once(&isal_lib.once, isal_once);
    return lazy_result(&isal_lib, err);
}
#endif
