/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LMDB metadata store: records in every database, transactions,
 * several processes at once, crashes, schema migrations, the one-open rule
 * and damaged records. Each test gets its own temporary directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "containers.h"
#include "store.h"
#include "store-test.h"
#include "util.h"

/* Fail with the call, its return code and the error text. */
#define assert_ok(call, err)                                                                       \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s = %d (%s)", #call, rc_, (err).msg);                                       \
    } while (0)

static berth_store_t *open_store(const char *dir, const berth_store_opts_t *opts)
{
    berth_store_t *store = NULL;
    berth_err_t err = { 0 };

    assert_ok(berth__store_open(dir, opts, &store, &err), err);
    return store;
}

static void put_one(berth_store_t *store, berth_db_t db, const char *key, json_t *doc)
{
    berth_txn_t *txn;
    berth_err_t err = { 0 };

    assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
    assert_ok(berth__store_put(txn, db, key, doc, 0, &err), err);
    assert_ok(berth__store_txn_commit(txn, &err), err);
}

/* Read @key; returns the get() code and the document (or NULL). */
static int get_one(berth_store_t *store, berth_db_t db, const char *key, json_t **ret_doc)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    berth_err_t err = { 0 };

    *ret_doc = NULL;
    assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);
    return berth__store_get(txn, db, key, ret_doc, &err);
}

static uint64_t count_of(berth_store_t *store, berth_db_t db)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    berth_err_t err = { 0 };
    uint64_t n = 0;

    assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);
    assert_ok(berth__store_count(txn, db, &n, &err), err);
    return n;
}

static json_int_t int_member(json_t *doc, const char *key)
{
    json_t *v = json_object_get(doc, key);

    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* ---- 1. records in every database ---- */

static void test_store_crud_every_db(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    berth_err_t err = { 0 };

    assert_int_equal(berth__store_schema(store), BERTH_STORE_SCHEMA);
    assert_string_equal(berth__store_dir(store), d->store);
    for (int db = 0; db < BERTH_DB__COUNT; db++) {
        const char *key = db == BERTH_DB_EVENTS ? "7" : "some-key";
        uint64_t before = count_of(store, (berth_db_t)db);
        json_t *doc = json_pack("{s:i, s:s}", "x", 1, "db", berth__store_db_names[db]);
        json_t *got = NULL;
        berth_txn_t *txn;

        /* create */
        assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
        assert_ok(berth__store_put(txn, db, key, doc, BERTH_PUT_NOOVERWRITE, &err), err);
        assert_int_equal(berth__store_put(txn, db, key, doc, BERTH_PUT_NOOVERWRITE, &err), -EEXIST);
        assert_ok(berth__store_txn_commit(txn, &err), err);
        /* put() adds "v" to what it stores, not to the caller's document */
        assert_null(json_object_get(doc, "v"));

        /* read */
        assert_int_equal(get_one(store, db, key, &got), 0);
        assert_int_equal(int_member(got, "x"), 1);
        assert_int_equal(int_member(got, "v"), 1);
        assert_string_equal(json_string_value(json_object_get(got, "db")),
                            berth__store_db_names[db]);
        json_decref(got);
        assert_int_equal(count_of(store, db), before + 1);

        /* update */
        json_object_set_new(doc, "x", json_integer(2));
        json_object_set_new(doc, "v", json_integer(3));
        put_one(store, db, key, doc);
        assert_int_equal(get_one(store, db, key, &got), 0);
        assert_int_equal(int_member(got, "x"), 2);
        assert_int_equal(int_member(got, "v"), 3);
        json_decref(got);
        assert_int_equal(count_of(store, db), before + 1);

        /* delete */
        assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
        assert_ok(berth__store_del(txn, db, key, &err), err);
        assert_int_equal(berth__store_del(txn, db, key, &err), -ENOENT);
        assert_ok(berth__store_txn_commit(txn, &err), err);
        assert_int_equal(count_of(store, db), before);

        /* missing key */
        {
            _cleanup_txn_ berth_txn_t *rtxn = NULL;

            assert_ok(berth__store_txn_begin(store, 0, &rtxn, &err), err);
            got = NULL;
            assert_int_equal(berth__store_get(rtxn, db, key, &got, &err), -ENOENT);
            assert_null(got);
            assert_int_equal(err.code, -ENOENT);
            assert_non_null(strstr(err.msg, berth__store_db_names[db]));
        }
        json_decref(doc);
    }
    berth__store_close(store);
}

struct seen {
    char keys[16][32];
    int n;
    int stop_after;
};

static int collect(const char *key, json_t *doc, void *userdata)
{
    struct seen *s = userdata;

    assert_true(json_is_object(doc));
    assert_true(s->n < 16);
    snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", key);
    if (s->stop_after && s->n == s->stop_after)
        return 42;
    return 0;
}

static void test_store_walk_prefix_and_keys(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    const char *keys[] = { "b1", "a2", "ab", "a", "a1", "c" };
    json_t *doc = json_object();
    berth_err_t err = { 0 };
    _cleanup_txn_ berth_txn_t *txn = NULL;
    struct seen s;
    char **list = NULL;

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(keys); i++)
        put_one(store, BERTH_DB_IMAGES, keys[i], doc);
    json_decref(doc);
    assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);

    memset(&s, 0, sizeof(s));
    assert_ok(berth__store_walk(txn, BERTH_DB_IMAGES, "a", collect, &s, &err), err);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.keys[0], "a");
    assert_string_equal(s.keys[1], "a1");
    assert_string_equal(s.keys[2], "a2");
    assert_string_equal(s.keys[3], "ab");

    memset(&s, 0, sizeof(s));
    assert_ok(berth__store_walk(txn, BERTH_DB_IMAGES, NULL, collect, &s, &err), err);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.keys[5], "c");

    memset(&s, 0, sizeof(s));
    assert_ok(berth__store_walk(txn, BERTH_DB_IMAGES, "zz", collect, &s, &err), err);
    assert_int_equal(s.n, 0);
    assert_ok(berth__store_walk(txn, BERTH_DB_IMAGES, "a3", collect, &s, &err), err);
    assert_int_equal(s.n, 0);

    /* the callback's non-zero return stops the walk and comes back */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    assert_int_equal(berth__store_walk(txn, BERTH_DB_IMAGES, "", collect, &s, &err), 42);
    assert_int_equal(s.n, 2);

    assert_ok(berth__store_keys(txn, BERTH_DB_IMAGES, "a", 0, &list, &err), err);
    assert_int_equal(berth__strv_len(list), 4);
    berth__strv_free(list);
    assert_ok(berth__store_keys(txn, BERTH_DB_IMAGES, "a", 2, &list, &err), err);
    assert_int_equal(berth__strv_len(list), 2);
    assert_string_equal(list[1], "a1");
    berth__strv_free(list);
    assert_ok(berth__store_keys(txn, BERTH_DB_IMAGES, "q", 0, &list, &err), err);
    assert_int_equal(berth__strv_len(list), 0);
    berth__strv_free(list);

    /* events: no prefix walks */
    assert_int_equal(berth__store_walk(txn, BERTH_DB_EVENTS, "1", collect, &s, &err), -EINVAL);
    berth__store_txn_abort(TAKE_PTR(txn));
    berth__store_close(store);
}

static void test_store_rejects_bad_input(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    json_t *arr = json_array(), *badv = json_pack("{s:s}", "v", "one"), *ok = json_object();
    berth_err_t err = { 0 };
    _cleanup_txn_ berth_txn_t *txn = NULL;
    char longkey[600];

    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
    assert_int_equal(berth__store_put(txn, BERTH_DB_TAGS, "k", arr, 0, &err), -EINVAL);
    assert_int_equal(berth__store_put(txn, BERTH_DB_TAGS, "k", badv, 0, &err), -EINVAL);
    assert_int_equal(berth__store_put(txn, BERTH_DB_TAGS, "", ok, 0, &err), -EINVAL);
    assert_int_equal(berth__store_put(txn, BERTH_DB_TAGS, NULL, ok, 0, &err), -EINVAL);
    assert_int_equal(berth__store_put(txn, BERTH_DB_TAGS, longkey, ok, 0, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "too long"));
    assert_int_equal(berth__store_put(txn, BERTH_DB_EVENTS, "x1", ok, 0, &err), -EINVAL);
    assert_int_equal(berth__store_put(txn, BERTH_DB_EVENTS, "0", ok, 0, &err), -EINVAL);
    assert_int_equal(berth__store_put(txn, BERTH_DB__COUNT, "k", ok, 0, &err), -EINVAL);
    assert_int_equal(berth__store_event_append(txn, "", "x", NULL, NULL, NULL, &err), -EINVAL);
    assert_int_equal(berth__store_event_append(txn, "t", "a", NULL, arr, NULL, &err), -EINVAL);
    berth__store_txn_abort(TAKE_PTR(txn));

    /* a read transaction cannot write */
    assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);
    assert_int_equal(berth__store_put(txn, BERTH_DB_TAGS, "k", ok, 0, &err), -EROFS);
    assert_int_equal(berth__store_del(txn, BERTH_DB_TAGS, "k", &err), -EROFS);
    assert_int_equal(berth__store_event_append(txn, "t", "a", NULL, NULL, NULL, &err), -EROFS);
    berth__store_txn_abort(TAKE_PTR(txn));

    json_decref(arr);
    json_decref(badv);
    json_decref(ok);
    berth__store_close(store);
}

struct ev_seen {
    uint64_t seqs[8];
    int n;
};

static int collect_event(const char *key, json_t *ev, void *userdata)
{
    struct ev_seen *s = userdata;
    char expect[24];

    snprintf(expect, sizeof(expect), "%lld", (long long)int_member(ev, "seq"));
    assert_string_equal(key, expect);
    s->seqs[s->n++] = (uint64_t)int_member(ev, "seq");
    return 0;
}

static void test_store_events_append_and_walk(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    json_t *attrs = json_pack("{s:s}", "image", "busybox"), *ev = NULL;
    berth_err_t err = { 0 };
    berth_txn_t *txn;
    struct ev_seen s = { 0 };
    uint64_t seq = 0;

    assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
    for (int i = 0; i < 5; i++) {
        assert_ok(berth__store_event_append(txn, "container", "create", "abc",
                                            i == 0 ? attrs : NULL, &seq, &err),
                  err);
        assert_int_equal(seq, (uint64_t)i + 1);
    }
    assert_ok(berth__store_txn_commit(txn, &err), err);
    /* seq 256 would sort before 2 as a little-endian or decimal key */
    assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
    for (int i = 5; i < 300; i++)
        assert_ok(berth__store_event_append(txn, "image", "pull", NULL, NULL, &seq, &err), err);
    assert_int_equal(seq, 300);
    assert_ok(berth__store_txn_commit(txn, &err), err);

    assert_int_equal(get_one(store, BERTH_DB_EVENTS, "1", &ev), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "container");
    assert_string_equal(json_string_value(json_object_get(ev, "action")), "create");
    assert_string_equal(json_string_value(json_object_get(ev, "id")), "abc");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "attributes"), "image")), "busybox");
    assert_true(int_member(ev, "time_ns") > 0);
    assert_int_equal(int_member(ev, "v"), 1);
    json_decref(ev);
    assert_int_equal(get_one(store, BERTH_DB_EVENTS, "300", &ev), 0);
    assert_true(json_is_null(json_object_get(ev, "id")));
    assert_true(json_is_object(json_object_get(ev, "attributes")));
    json_decref(ev);

    assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);
    assert_ok(berth__store_event_walk(txn, 295, collect_event, &s, &err), err);
    assert_int_equal(s.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(s.seqs[i], 296 + i);
    s.n = 0;
    assert_ok(berth__store_event_walk(txn, 300, collect_event, &s, &err), err);
    assert_ok(berth__store_event_walk(txn, UINT64_MAX, collect_event, &s, &err), err);
    assert_int_equal(s.n, 0);
    berth__store_txn_abort(txn);
    json_decref(attrs);
    berth__store_close(store);
}

/* ---- 2. aborted transactions ---- */

static void test_store_abort_leaves_nothing(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    json_t *doc = json_pack("{s:s}", "name", "x"), *got = NULL;
    berth_err_t err = { 0 };
    berth_txn_t *txn, *other;
    uint64_t txnid;

    put_one(store, BERTH_DB_VOLUMES, "kept", doc);
    /* explicit abort */
    assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
    assert_ok(berth__store_put(txn, BERTH_DB_VOLUMES, "gone", doc, 0, &err), err);
    assert_ok(berth__store_del(txn, BERTH_DB_VOLUMES, "kept", &err), err);
    assert_ok(berth__store_event_append(txn, "volume", "create", "gone", NULL, NULL, &err), err);
    /* the same thread cannot start a second writer: LMDB would deadlock on itself */
    assert_int_equal(berth__store_txn_begin(store, 1, &other, &err), -EDEADLK);
    berth__store_txn_abort(txn);
    berth__store_txn_abort(NULL);

    /* dropped by the cleanup attribute without commit */
    {
        _cleanup_txn_ berth_txn_t *scoped = NULL;

        assert_ok(berth__store_txn_begin(store, 1, &scoped, &err), err);
        assert_ok(berth__store_put(scoped, BERTH_DB_NETWORKS, "n1", doc, 0, &err), err);
        assert_ok(berth__store_event_append(scoped, "network", "create", "n1", NULL, NULL, &err),
                  err);
    }

    assert_int_equal(get_one(store, BERTH_DB_VOLUMES, "gone", &got), -ENOENT);
    assert_int_equal(get_one(store, BERTH_DB_NETWORKS, "n1", &got), -ENOENT);
    assert_int_equal(get_one(store, BERTH_DB_VOLUMES, "kept", &got), 0);
    json_decref(got);
    assert_int_equal(count_of(store, BERTH_DB_EVENTS), 0);

    /* the writer lock was released: a new write transaction works and commits */
    put_one(store, BERTH_DB_VOLUMES, "after", doc);
    assert_int_equal(get_one(store, BERTH_DB_VOLUMES, "after", &got), 0);
    json_decref(got);
    berth__store_close(store);

    /* the aborted transactions never reached the file: three commits (open, "kept", "after") */
    txnid = raw_last_txnid(d->store);
    assert_int_equal(txnid, 3);
    json_decref(doc);
}

/* ---- 3. several processes ---- */

#define PROCS      4
#define PER_PROC   40
#define CHILD_FAIL 99

/* In a child: a fresh open (never the parent's store), K container creates, exit. */
static int child_create_containers(const char *dir, int child)
{
    berth_store_t *store = NULL;
    berth_err_t err = { 0 };

    if (berth__store_open(dir, NULL, &store, &err) < 0) {
        fprintf(stderr, "child %d: %s\n", child, err.msg);
        return CHILD_FAIL;
    }
    for (int i = 0; i < PER_PROC; i++) {
        char id[BERTH_CONTAINER_ID_LEN + 1], name[32];
        json_t *doc;
        int rc;

        snprintf(name, sizeof(name), "c%d-%d", child, i);
        if (berth__container_id_new(id, &err) < 0)
            return CHILD_FAIL;
        doc = json_pack("{s:s, s:s, s:i}", "id", id, "name", name, "child", child);
        rc = berth__container_create(store, doc, NULL, NULL, &err);
        json_decref(doc);
        if (rc < 0) {
            fprintf(stderr, "child %d: %s\n", child, err.msg);
            return CHILD_FAIL;
        }
    }
    berth__store_close(store);
    return 0;
}

struct seq_check {
    uint64_t next;
    berth_txn_t *txn;
};

static int check_event(const char *key, json_t *ev, void *userdata)
{
    struct seq_check *c = userdata;
    const char *id = json_string_value(json_object_get(ev, "id"));
    json_t *doc = NULL;
    berth_err_t err = { 0 };

    assert_int_equal(int_member(ev, "seq"), c->next);
    c->next++;
    assert_string_equal(json_string_value(json_object_get(ev, "action")), "create");
    /* each event names a container that exists */
    assert_ok(berth__store_get(c->txn, BERTH_DB_CONTAINERS, id, &doc, &err), err);
    json_decref(doc);
    return 0;
}

static int check_name(const char *key, json_t *entry, void *userdata)
{
    berth_txn_t *txn = userdata;
    json_t *doc = NULL;
    berth_err_t err = { 0 };

    assert_ok(berth__store_get(txn, BERTH_DB_CONTAINERS,
                               json_string_value(json_object_get(entry, "id")), &doc, &err),
              err);
    assert_string_equal(json_string_value(json_object_get(doc, "name")), key);
    json_decref(doc);
    return 0;
}

static void test_store_concurrent_processes_lose_nothing(void **state)
{
    struct test_dir *d = *state;
    /* The parent keeps its own store open the whole time: children must still open theirs. */
    berth_store_t *store = open_store(d->store, NULL);
    pid_t pids[PROCS];
    berth_err_t err = { 0 };
    _cleanup_txn_ berth_txn_t *txn = NULL;
    struct seq_check c = { .next = 1 };

    fflush(NULL);
    for (int i = 0; i < PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(child_create_containers(d->store, i));
    }
    for (int i = 0; i < PROCS; i++) {
        int status;

        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }

    assert_int_equal(count_of(store, BERTH_DB_CONTAINERS), PROCS * PER_PROC);
    assert_int_equal(count_of(store, BERTH_DB_NAMES), PROCS * PER_PROC);
    assert_int_equal(count_of(store, BERTH_DB_EVENTS), PROCS * PER_PROC);
    assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);
    /* names: every one maps to a container carrying that name (so they are unique) */
    assert_ok(berth__store_walk(txn, BERTH_DB_NAMES, NULL, check_name, txn, &err), err);
    /* events: 1..N*K, contiguous, no duplicates */
    c.txn = txn;
    assert_ok(berth__store_event_walk(txn, 0, check_event, &c, &err), err);
    assert_int_equal(c.next, PROCS * PER_PROC + 1);
    berth__store_txn_abort(TAKE_PTR(txn));
    berth__store_close(store);
}

/* ---- 4. crashes ---- */

static void write_all(int fd, const void *buf, size_t len)
{
    if (write(fd, buf, len) != (ssize_t)len)
        _exit(CHILD_FAIL);
}

/* Victim: one committed record, then a reader and an open writer with many records; waits to die. */
static void victim(const char *dir, int ready_fd)
{
    berth_store_t *store = NULL;
    berth_txn_t *reader = NULL, *writer = NULL;
    json_t *doc = json_pack("{s:s}", "state", "committed");
    berth_err_t err = { 0 };

    if (berth__store_open(dir, NULL, &store, &err) < 0)
        _exit(CHILD_FAIL);
    if (berth__store_txn_begin(store, 1, &writer, &err) < 0 ||
        berth__store_put(writer, BERTH_DB_LAYERS, "committed", doc, 0, &err) < 0 ||
        berth__store_txn_commit(writer, &err) < 0)
        _exit(CHILD_FAIL);
    /* A read transaction holds a reader slot that the crash leaves behind. */
    if (berth__store_txn_begin(store, 0, &reader, &err) < 0 ||
        berth__store_txn_begin(store, 1, &writer, &err) < 0)
        _exit(CHILD_FAIL);
    json_object_set_new(doc, "state", json_string("uncommitted"));
    for (int i = 0; i < 2000; i++) {
        char key[32];

        snprintf(key, sizeof(key), "pending-%05d", i);
        if (berth__store_put(writer, BERTH_DB_LAYERS, key, doc, 0, &err) < 0)
            _exit(CHILD_FAIL);
    }
    write_all(ready_fd, "x", 1);
    for (;;)
        pause();
}

/* Holder: keeps the environment open so the reader table survives (a sole opener resets it). */
static void holder(const char *dir, int ready_fd, int quit_fd)
{
    berth_store_t *store = NULL;
    berth_err_t err = { 0 };
    char c;

    if (berth__store_open(dir, NULL, &store, &err) < 0)
        _exit(CHILD_FAIL);
    write_all(ready_fd, "h", 1);
    (void)!read(quit_fd, &c, 1);
    berth__store_close(store);
    _exit(0);
}

static pid_t spawn(void (*fn)(const char *, int, int), const char *dir, int a, int b)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* never outlive a test that failed before it could kill or release us */
        alarm(120);
        fn(dir, a, b);
        _exit(0);
    }
    return pid;
}

static void victim3(const char *dir, int ready_fd, int unused)
{
    victim(dir, ready_fd);
}

static void test_store_sigkill_mid_transaction(void **state)
{
    struct test_dir *d = *state;
    int ready[2], quit[2], status, cleared = -1;
    pid_t h, v;
    berth_store_t *store;
    berth_err_t err = { 0 };
    json_t *doc = NULL, *fresh = json_object();
    char c;

    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(quit), 0);
    /* create the store first so both children open an existing one */
    berth__store_close(open_store(d->store, NULL));
    h = spawn(holder, d->store, ready[1], quit[0]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'h');
    v = spawn(victim3, d->store, ready[1], 0);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'x');
    assert_int_equal(kill(v, SIGKILL), 0);
    assert_int_equal(waitpid(v, &status, 0), v);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* the dead victim still owns a reader slot */
    assert_int_equal(raw_reader_slots(d->store, v), 1);

    store = open_store(d->store, NULL);
    /* open() already cleared it */
    assert_ok(berth__store_reader_check(store, &cleared, &err), err);
    assert_int_equal(cleared, 0);
    assert_int_equal(get_one(store, BERTH_DB_LAYERS, "committed", &doc), 0);
    json_decref(doc);
    assert_int_equal(get_one(store, BERTH_DB_LAYERS, "pending-00000", &doc), -ENOENT);
    assert_int_equal(get_one(store, BERTH_DB_LAYERS, "pending-01999", &doc), -ENOENT);
    assert_int_equal(count_of(store, BERTH_DB_LAYERS), 1);
    /* the writer lock the victim died holding is recovered (robust mutex) */
    put_one(store, BERTH_DB_LAYERS, "after-crash", fresh);
    assert_int_equal(count_of(store, BERTH_DB_LAYERS), 2);
    berth__store_close(store);
    assert_int_equal(raw_reader_slots(d->store, v), 0);

    assert_int_equal(write(quit[1], "q", 1), 1);
    assert_int_equal(waitpid(h, &status, 0), h);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);
    close(ready[1]);
    close(quit[0]);
    close(quit[1]);
    json_decref(fresh);
}

/* Writer loop: commit key N, then report N on the pipe; forever. */
static void committer(const char *dir, int ack_fd, int unused)
{
    berth_store_t *store = NULL;
    berth_txn_t *txn;
    berth_err_t err = { 0 };
    uint64_t n = 0;
    json_t *doc = json_object();

    if (berth__store_open(dir, NULL, &store, &err) < 0)
        _exit(CHILD_FAIL);
    if (berth__store_txn_begin(store, 0, &txn, &err) < 0 ||
        berth__store_count(txn, BERTH_DB_BLOBS, &n, &err) < 0)
        _exit(CHILD_FAIL);
    berth__store_txn_abort(txn);
    for (uint32_t i = (uint32_t)n + 1;; i++) {
        char key[32];

        snprintf(key, sizeof(key), "k%08u", i);
        json_object_set_new(doc, "i", json_integer(i));
        if (berth__store_txn_begin(store, 1, &txn, &err) < 0 ||
            berth__store_put(txn, BERTH_DB_BLOBS, key, doc, BERTH_PUT_NOOVERWRITE, &err) < 0 ||
            berth__store_event_append(txn, "blob", "add", key, NULL, NULL, &err) < 0 ||
            berth__store_txn_commit(txn, &err) < 0)
            _exit(CHILD_FAIL);
        write_all(ack_fd, &i, sizeof(i));
    }
}

struct contiguous {
    uint32_t next;
};

static int check_contiguous(const char *key, json_t *doc, void *userdata)
{
    struct contiguous *c = userdata;
    char expect[32];

    snprintf(expect, sizeof(expect), "k%08u", c->next);
    assert_string_equal(key, expect);
    assert_int_equal(int_member(doc, "i"), c->next);
    c->next++;
    return 0;
}

static void test_store_sigkill_keeps_acknowledged_commits(void **state)
{
    struct test_dir *d = *state;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    uint32_t acked_total = 0;

    print_message("seed %u\n", seed);
    srand(seed);
    berth__store_close(open_store(d->store, NULL));
    for (int round = 0; round < 6; round++) {
        int ack[2], status;
        uint32_t last = acked_total, got, target = acked_total + 1 + (uint32_t)(rand() % 150);
        pid_t pid;
        berth_store_t *store;
        berth_err_t err = { 0 };
        _cleanup_txn_ berth_txn_t *txn = NULL;
        struct contiguous c = { 1 };
        uint64_t n;

        assert_int_equal(pipe(ack), 0);
        pid = spawn(committer, d->store, ack[1], 0);
        close(ack[1]);
        while (last < target && read(ack[0], &got, sizeof(got)) == sizeof(got))
            last = got;
        assert_true(last >= target);
        /* land the kill anywhere in the next commits, not just between them */
        usleep((useconds_t)(rand() % 3000));
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        /* acknowledgements written before the kill */
        while (read(ack[0], &got, sizeof(got)) == sizeof(got))
            last = got;
        close(ack[0]);

        store = open_store(d->store, NULL);
        n = count_of(store, BERTH_DB_BLOBS);
        /* every acknowledged commit is there; at most one more committed but unacknowledged */
        assert_true(n == last || n == (uint64_t)last + 1);
        assert_int_equal(count_of(store, BERTH_DB_EVENTS), n);
        assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);
        assert_ok(berth__store_walk(txn, BERTH_DB_BLOBS, "k", check_contiguous, &c, &err), err);
        assert_int_equal(c.next, n + 1);
        berth__store_txn_abort(TAKE_PTR(txn));
        berth__store_close(store);
        acked_total = (uint32_t)n;
    }
}

/* ---- 5. schema migrations ---- */

static int migration_calls;
static int step2_calls;

struct mig_ctx {
    berth_txn_t *txn;
    berth_err_t *err;
};

/* 1 -> 2: containers {"Name": x} become {"v": 2, "name": x}. */
static int rewrite_one(const char *key, json_t *doc, void *userdata)
{
    struct mig_ctx *m = userdata;
    json_t *name = json_object_get(doc, "Name");
    json_t *nd;
    int rc;

    if (!name)
        return 0;
    nd = json_pack("{s:i, s:O}", "v", 2, "name", name);
    rc = berth__store_put(m->txn, BERTH_DB_CONTAINERS, key, nd, 0, m->err);
    json_decref(nd);
    return rc;
}

static int migrate_1_2(berth_txn_t *txn, berth_err_t *err)
{
    struct mig_ctx m = { txn, err };

    migration_calls++;
    return berth__store_walk(txn, BERTH_DB_CONTAINERS, NULL, rewrite_one, &m, err);
}

static int migrate_2_3(berth_txn_t *txn, berth_err_t *err)
{
    json_t *doc = json_object();
    int rc = berth__store_put(txn, BERTH_DB_META, "step3", doc, 0, err);

    json_decref(doc);
    step2_calls++;
    return rc;
}

/* Writes, then fails: none of it may stay. */
static int migrate_fails(berth_txn_t *txn, berth_err_t *err)
{
    json_t *doc = json_pack("{s:s}", "name", "half-done");

    berth__store_put(txn, BERTH_DB_CONTAINERS, "c1", doc, 0, err);
    berth__store_put(txn, BERTH_DB_CONTAINERS, "junk", doc, 0, err);
    json_decref(doc);
    return berth_err_set(err, -EIO, "disk on fire");
}

static const berth_store_migration_t table_none[] = { { 0, NULL, NULL } };
static const berth_store_migration_t table_12[] = {
    { 1, "rename Name to name", migrate_1_2 },
    { 0, NULL, NULL },
};
static const berth_store_migration_t table_123[] = {
    { 2, "add step3", migrate_2_3 },
    { 1, "rename Name to name", migrate_1_2 },
    { 0, NULL, NULL },
};
static const berth_store_migration_t table_fail[] = {
    { 1, "always fails", migrate_fails },
    { 0, NULL, NULL },
};
static const berth_store_migration_t table_12_fail[] = {
    { 1, "rename Name to name", migrate_1_2 },
    { 2, "always fails", migrate_fails },
    { 0, NULL, NULL },
};

/* A schema-1 store with three containers in the old format. */
static void make_schema1(const char *dir)
{
    berth_store_opts_t o1 = { .schema = 1, .migrations = table_none };
    berth_store_t *store = open_store(dir, &o1);

    assert_int_equal(berth__store_schema(store), 1);
    for (int i = 1; i <= 3; i++) {
        char key[8], name[16];
        json_t *doc;

        snprintf(key, sizeof(key), "c%d", i);
        snprintf(name, sizeof(name), "old-%d", i);
        doc = json_pack("{s:i, s:s}", "v", 1, "Name", name);
        put_one(store, BERTH_DB_CONTAINERS, key, doc);
        json_decref(doc);
    }
    berth__store_close(store);
}

static void assert_schema1_records(berth_store_t *store)
{
    for (int i = 1; i <= 3; i++) {
        char key[8], name[16];
        json_t *doc;

        snprintf(key, sizeof(key), "c%d", i);
        snprintf(name, sizeof(name), "old-%d", i);
        assert_int_equal(get_one(store, BERTH_DB_CONTAINERS, key, &doc), 0);
        assert_int_equal(int_member(doc, "v"), 1);
        assert_string_equal(json_string_value(json_object_get(doc, "Name")), name);
        json_decref(doc);
    }
    assert_int_equal(count_of(store, BERTH_DB_CONTAINERS), 3);
}

static void test_store_migration_runs_once_in_one_txn(void **state)
{
    struct test_dir *d = *state;
    berth_store_opts_t o2 = { .schema = 2, .migrations = table_12 };
    berth_store_t *store;
    json_t *doc, *hist;
    uint64_t before;

    make_schema1(d->store);
    before = raw_last_txnid(d->store);
    migration_calls = 0;
    store = open_store(d->store, &o2);
    assert_int_equal(migration_calls, 1);
    assert_int_equal(berth__store_schema(store), 2);
    for (int i = 1; i <= 3; i++) {
        char key[8], name[16];

        snprintf(key, sizeof(key), "c%d", i);
        snprintf(name, sizeof(name), "old-%d", i);
        assert_int_equal(get_one(store, BERTH_DB_CONTAINERS, key, &doc), 0);
        assert_int_equal(int_member(doc, "v"), 2);
        assert_string_equal(json_string_value(json_object_get(doc, "name")), name);
        assert_null(json_object_get(doc, "Name"));
        json_decref(doc);
    }
    /* the version and the step are recorded */
    assert_int_equal(get_one(store, BERTH_DB_META, "schema", &doc), 0);
    assert_int_equal(int_member(doc, "schema"), 2);
    hist = json_object_get(doc, "history");
    assert_int_equal(json_array_size(hist), 1);
    assert_int_equal(int_member(json_array_get(hist, 0), "from"), 1);
    assert_int_equal(int_member(json_array_get(hist, 0), "to"), 2);
    json_decref(doc);
    berth__store_close(store);
    /* all of it in one write transaction */
    assert_int_equal(raw_last_txnid(d->store), before + 1);

    /* reopening at the same schema migrates nothing and writes nothing */
    store = open_store(d->store, &o2);
    assert_int_equal(migration_calls, 1);
    berth__store_close(store);
    assert_int_equal(raw_last_txnid(d->store), before + 1);
}

static void test_store_migration_chain_is_one_txn(void **state)
{
    struct test_dir *d = *state;
    berth_store_opts_t o3 = { .schema = 3, .migrations = table_123 };
    berth_store_t *store;
    json_t *doc;
    uint64_t before;

    make_schema1(d->store);
    before = raw_last_txnid(d->store);
    migration_calls = step2_calls = 0;
    store = open_store(d->store, &o3);
    /* run in order although the table is not sorted */
    assert_int_equal(migration_calls, 1);
    assert_int_equal(step2_calls, 1);
    assert_int_equal(berth__store_schema(store), 3);
    assert_int_equal(get_one(store, BERTH_DB_META, "step3", &doc), 0);
    json_decref(doc);
    berth__store_close(store);
    assert_int_equal(raw_last_txnid(d->store), before + 1);
}

static void test_store_failed_migration_changes_nothing(void **state)
{
    struct test_dir *d = *state;
    berth_store_opts_t o1 = { .schema = 1, .migrations = table_none };
    berth_store_opts_t bad = { .schema = 2, .migrations = table_fail };
    berth_store_opts_t bad_second = { .schema = 3, .migrations = table_12_fail };
    berth_store_opts_t missing = { .schema = 3, .migrations = table_12 };
    berth_store_t *store = NULL;
    berth_err_t err = { 0 };
    json_t *doc;
    uint64_t before;

    make_schema1(d->store);
    before = raw_last_txnid(d->store);

    assert_int_equal(berth__store_open(d->store, &bad, &store, &err), -EIO);
    assert_null(store);
    assert_non_null(strstr(err.msg, "migration from schema 1 to 2 (always fails)"));
    assert_non_null(strstr(err.msg, "disk on fire"));
    assert_non_null(strstr(err.msg, d->store));
    assert_null(strchr(err.msg, '\n'));

    /* the first step succeeds, the second fails: the first one's writes go too */
    migration_calls = 0;
    assert_int_equal(berth__store_open(d->store, &bad_second, &store, &err), -EIO);
    assert_int_equal(migration_calls, 1);
    assert_non_null(strstr(err.msg, "schema 2 to 3"));

    /* no step from 2 */
    assert_int_equal(berth__store_open(d->store, &missing, &store, &err), -EPROTO);
    assert_non_null(strstr(err.msg, "no migration from schema 2 to 3"));

    assert_int_equal(raw_last_txnid(d->store), before);
    store = open_store(d->store, &o1);
    assert_int_equal(berth__store_schema(store), 1);
    assert_schema1_records(store);
    assert_int_equal(get_one(store, BERTH_DB_CONTAINERS, "junk", &doc), -ENOENT);
    assert_int_equal(get_one(store, BERTH_DB_META, "schema", &doc), 0);
    assert_int_equal(int_member(doc, "schema"), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "history")), 0);
    json_decref(doc);
    berth__store_close(store);
}

static void test_store_newer_schema_refused(void **state)
{
    struct test_dir *d = *state;
    berth_store_opts_t o3 = { .schema = 3, .migrations = table_none };
    berth_store_opts_t o2 = { .schema = 2, .migrations = table_12 };
    berth_store_opts_t ro = { .read_only = 1 };
    berth_store_t *store = NULL;
    berth_err_t err = { 0 };
    char expect[64];

    berth__store_close(open_store(d->store, &o3));
    assert_int_equal(berth__store_open(d->store, &o2, &store, &err), -EPROTO);
    assert_null(store);
    assert_non_null(strstr(err.msg, "store schema 3 is newer than this berth's 2"));
    assert_int_equal(berth__store_open(d->store, NULL, &store, &err), -EPROTO);
    snprintf(expect, sizeof(expect), "newer than this berth's %d", BERTH_STORE_SCHEMA);
    assert_non_null(strstr(err.msg, expect));
    assert_int_equal(berth__store_open(d->store, &ro, &store, &err), -EPROTO);
    /* a refused open leaves the directory free for the next one */
    berth__store_close(open_store(d->store, &o3));
}

/* ---- 6. one open per process ---- */

static void test_store_open_twice_busy(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *a = open_store(d->store, NULL), *b = NULL, *again = NULL;
    berth_err_t err = { 0 };
    char other[400], alias[400];

    assert_int_equal(berth__store_open(d->store, NULL, &again, &err), -EBUSY);
    assert_null(again);
    assert_non_null(strstr(err.msg, "already open"));
    /* the same directory under another path is the same store */
    snprintf(alias, sizeof(alias), "%s/../store/.", d->store);
    assert_int_equal(berth__store_open(alias, NULL, &again, &err), -EBUSY);

    snprintf(other, sizeof(other), "%s/other", d->root);
    b = open_store(other, NULL);
    berth__store_close(a);
    a = open_store(alias, NULL);
    berth__store_close(a);
    berth__store_close(b);
    berth__store_close(NULL);
}

static void test_store_read_only(void **state)
{
    struct test_dir *d = *state;
    berth_store_opts_t ro = { .read_only = 1 };
    berth_store_t *store = NULL;
    berth_err_t err = { 0 };
    berth_txn_t *txn = NULL;
    json_t *doc = json_object(), *got;

    assert_true(berth__store_open(d->store, &ro, &store, &err) < 0);
    store = open_store(d->store, NULL);
    put_one(store, BERTH_DB_ENDPOINTS, "e1", doc);
    berth__store_close(store);

    store = open_store(d->store, &ro);
    assert_int_equal(get_one(store, BERTH_DB_ENDPOINTS, "e1", &got), 0);
    json_decref(got);
    assert_int_equal(berth__store_txn_begin(store, 1, &txn, &err), -EROFS);
    berth__store_close(store);
    json_decref(doc);
}

static void test_store_map_full_is_enospc(void **state)
{
    struct test_dir *d = *state;
    berth_store_opts_t small = { .map_size = 1 << 20 };
    berth_store_t *store = open_store(d->store, &small);
    json_t *doc = json_object();
    berth_err_t err = { 0 };
    berth_txn_t *txn;
    char big[8192];
    int rc = 0;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_object_set_new(doc, "blob", json_string(big));
    assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
    for (int i = 0; i < 1000 && rc == 0; i++) {
        char key[16];

        snprintf(key, sizeof(key), "b%d", i);
        rc = berth__store_put(txn, BERTH_DB_BLOBS, key, doc, 0, &err);
    }
    assert_int_equal(rc, -ENOSPC);
    assert_non_null(strstr(err.msg, "MDB_MAP_FULL"));
    assert_non_null(strstr(err.msg, d->store));
    berth__store_txn_abort(txn);
    json_decref(doc);
    berth__store_close(store);
}

/* The size of @dir's data.mdb, after checking it is all written blocks (zeros, not a sparse tail). */
static off_t data_file_size(const char *dir)
{
    char path[400];
    struct stat st;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true((off_t)st.st_blocks * 512 >= st.st_size);
    return st.st_size;
}

/*
 * The data file keeps written headroom past LMDB's last page (store_grow), so
 * commits overwrite allocated blocks; the records stay readable after reopen.
 */
static void test_store_data_file_has_written_headroom(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    json_t *doc = json_pack("{s:s}", "pad", "0123456789abcdef0123456789abcdef");
    berth_err_t err = { 0 };
    berth_txn_t *txn;

    assert_ok(berth__store_txn_begin(store, 1, &txn, &err), err);
    for (int i = 0; i < 3000; i++) {
        char key[16];

        snprintf(key, sizeof(key), "n%05d", i);
        assert_ok(berth__store_put(txn, BERTH_DB_NETWORKS, key, doc, 0, &err), err);
    }
    assert_ok(berth__store_txn_commit(txn, &err), err);
    /* the next write transaction tops the headroom up again */
    put_one(store, BERTH_DB_NETWORKS, "last", doc);
    berth__store_close(store);

    assert_true(data_file_size(d->store) >= (off_t)2 << 20);

    store = open_store(d->store, NULL);
    assert_int_equal(count_of(store, BERTH_DB_NETWORKS), 3001);
    berth__store_close(store);
    json_decref(doc);
}

/*
 * A new store's first write transaction pays for the first headroom, inside
 * the first command run on a fresh root: it stays small (2 MiB and the
 * alignment), while still leaving written room past the last page.
 */
static void test_store_new_store_headroom_is_small(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    json_t *doc = json_pack("{s:s}", "k", "v");
    off_t size;

    put_one(store, BERTH_DB_NETWORKS, "one", doc);
    berth__store_close(store);
    json_decref(doc);

    size = data_file_size(d->store);
    assert_true(size >= (off_t)1 << 20);
    assert_true(size <= (off_t)4 << 20);
}

/* ---- 7. damaged records ---- */

static int count_cb(const char *key, json_t *doc, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static void test_store_bad_json_is_ebadmsg(void **state)
{
    struct test_dir *d = *state;
    berth_store_t *store = open_store(d->store, NULL);
    json_t *doc = json_object(), *got = NULL;
    berth_err_t err = { 0 };
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int n = 0;

    put_one(store, BERTH_DB_CONTAINERS, "a", doc);
    put_one(store, BERTH_DB_CONTAINERS, "c", doc);
    berth__store_close(store);
    assert_int_equal(raw_put(d->store, "containers", "b", "not json{", 9), 0);
    assert_int_equal(raw_put(d->store, "images", "arr", "[1,2]", 5), 0);
    assert_int_equal(raw_put(d->store, "images", "nov", "{\"x\":1}", 7), 0);

    store = open_store(d->store, NULL);
    assert_ok(berth__store_txn_begin(store, 0, &txn, &err), err);
    assert_int_equal(berth__store_walk(txn, BERTH_DB_CONTAINERS, NULL, count_cb, &n, &err),
                     -EBADMSG);
    assert_int_equal(n, 1); /* "a" came before the damage */
    assert_int_equal(err.code, -EBADMSG);
    assert_non_null(strstr(err.msg, "containers/b"));
    assert_non_null(strstr(err.msg, d->store));
    /* the good records around it are fine on their own */
    assert_ok(berth__store_walk(txn, BERTH_DB_CONTAINERS, "c", count_cb, &n, &err), err);
    assert_int_equal(berth__store_get(txn, BERTH_DB_CONTAINERS, "b", &got, &err), -EBADMSG);
    assert_null(got);
    /* valid JSON that is not a versioned object is damage too */
    assert_int_equal(berth__store_get(txn, BERTH_DB_IMAGES, "arr", &got, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "images/arr"));
    assert_int_equal(berth__store_get(txn, BERTH_DB_IMAGES, "nov", &got, &err), -EBADMSG);
    berth__store_txn_abort(TAKE_PTR(txn));
    json_decref(doc);
    berth__store_close(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_dir_setup, test_dir_teardown)
        T(test_store_crud_every_db),
        T(test_store_walk_prefix_and_keys),
        T(test_store_rejects_bad_input),
        T(test_store_events_append_and_walk),
        T(test_store_abort_leaves_nothing),
        T(test_store_concurrent_processes_lose_nothing),
        T(test_store_sigkill_mid_transaction),
        T(test_store_sigkill_keeps_acknowledged_commits),
        T(test_store_migration_runs_once_in_one_txn),
        T(test_store_migration_chain_is_one_txn),
        T(test_store_failed_migration_changes_nothing),
        T(test_store_newer_schema_refused),
        T(test_store_open_twice_busy),
        T(test_store_read_only),
        T(test_store_map_full_is_enospc),
        T(test_store_data_file_has_written_headroom),
        T(test_store_new_store_headroom_is_small),
        T(test_store_bad_json_is_ebadmsg),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
