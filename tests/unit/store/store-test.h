/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the store unit tests: a private temporary directory per
 * test, and raw LMDB access to look at (or damage) a store the way the code
 * under test never would. Header-only so each test binary stays one file.
 */
#ifndef BERTH_STORE_TEST_H
#define BERTH_STORE_TEST_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

/* Per-test state: the temporary directory and the store directory inside it. */
struct test_dir {
    char root[256];
    char store[300];
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int test_dir_setup(void **state)
{
    struct test_dir *d = calloc(1, sizeof(*d));
    const char *tmp = getenv("TMPDIR");

    if (!d)
        return -1;
    snprintf(d->root, sizeof(d->root), "%s/berth-store-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->root)) {
        free(d);
        return -1;
    }
    snprintf(d->store, sizeof(d->store), "%s/store", d->root);
    *state = d;
    return 0;
}

static inline int test_dir_teardown(void **state)
{
    struct test_dir *d = *state;
    int rc = nftw(d->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);

    free(d);
    return rc;
}

/*
 * Open the store's LMDB environment directly. Only while this process has
 * no berth store open on the same directory (LMDB's one-open-per-process rule).
 */
static inline MDB_env *raw_open(const char *dir, unsigned flags)
{
    MDB_env *env = NULL;

    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
        mdb_env_open(env, dir, flags | MDB_NOTLS, 0600)) {
        if (env)
            mdb_env_close(env);
        return NULL;
    }
    return env;
}

/* The id of the last committed transaction: counts the write transactions. */
static inline uint64_t raw_last_txnid(const char *dir)
{
    MDB_env *env = raw_open(dir, MDB_RDONLY);
    MDB_envinfo info;

    if (!env)
        return 0;
    mdb_env_info(env, &info);
    mdb_env_close(env);
    return info.me_last_txnid;
}

/* Write raw bytes as the value of @key in named database @db. */
static inline int raw_put(const char *dir, const char *db, const char *key, const void *val,
                          size_t len)
{
    MDB_env *env = raw_open(dir, 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { strlen(key), (void *)key }, v = { len, (void *)val };
    int rc;

    if (!env)
        return -1;
    rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, db, 0, &dbi);
        if (rc == 0)
            rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return rc;
}

struct reader_scan {
    pid_t pid;
    int found;
};

static int reader_line(const char *msg, void *ctx)
{
    struct reader_scan *r = ctx;
    int pid;

    if (sscanf(msg, "%d", &pid) == 1 && pid == r->pid)
        r->found++;
    return 0;
}

/* Number of reader-table slots held by @pid (-1 when the env cannot be opened). */
static inline int raw_reader_slots(const char *dir, pid_t pid)
{
    MDB_env *env = raw_open(dir, MDB_RDONLY);
    struct reader_scan r = { pid, 0 };

    if (!env)
        return -1;
    mdb_reader_list(env, reader_line, &r);
    mdb_env_close(env);
    return r.found;
}

#endif /* BERTH_STORE_TEST_H */
