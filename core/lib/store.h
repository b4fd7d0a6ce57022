/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata store: one LMDB environment under <root>/store holding named
 * databases of versioned JSON documents.
 *
 * Contract:
 *  - Every mutation the engine makes is one write transaction; the event that
 *    describes it is appended in the same transaction. Listings use read-only
 *    transactions. LMDB serialises writers across processes, so the CLI and
 *    the daemon may share a root.
 *  - Default durability: commit returns after the data is on disk (no
 *    MDB_NOSYNC, no MDB_NOMETASYNC). After a crash the store holds every
 *    committed transaction and nothing of an uncommitted one.
 *  - A process opens a given store directory at most once (LMDB's rule: a
 *    second open in one process would drop the first one's locks).
 *    berth__store_open() enforces it with -EBUSY.
 *  - Never use a store, or any transaction of it, in a child after fork().
 *  - Values are JSON objects with an integer "v" member, the record format
 *    version (docs/store-format.md). put() adds "v" when it is missing.
 *
 * All functions return 0 or a negative errno with a one-line reason in err
 * (NULL allowed). Keys are NUL-terminated strings except in the events
 * database, whose keys are 8-byte big-endian sequence numbers.
 * In the events database the record functions below (get, put, del) take the
 * sequence number in decimal as the key, and walks allow no prefix; events
 * are normally written with berth__store_event_append() only, put and del
 * being for pruning and repair (keep the newest event: the next number is
 * the last one plus 1).
 */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

/* The schema version this build writes. */
#define BERTH_STORE_SCHEMA 1

/* Named databases (design.md). Values index berth__store_db_names[]. */
typedef enum berth_db {
    BERTH_DB_META = 0,
    BERTH_DB_CONTAINERS,
    BERTH_DB_NAMES,
    BERTH_DB_IMAGES,
    BERTH_DB_TAGS,
    BERTH_DB_LAYERS,
    BERTH_DB_BLOBS,
    BERTH_DB_NETWORKS,
    BERTH_DB_ENDPOINTS,
    BERTH_DB_VOLUMES,
    BERTH_DB_EVENTS,
    BERTH_DB__COUNT
} berth_db_t;

extern const char *const berth__store_db_names[BERTH_DB__COUNT];

typedef struct berth_store berth_store_t;
typedef struct berth_txn berth_txn_t;

/*
 * One migration step: turns a store at schema `from` into `from + 1` inside
 * the write transaction @txn. Steps run in order in one transaction; if any
 * fails, nothing is changed.
 */
typedef struct berth_store_migration {
    uint32_t from;
    const char *what; /* one line, for logs and errors */
    int (*run)(berth_txn_t *txn, berth_err_t *err);
} berth_store_migration_t;

/* Open options; NULL means defaults. */
typedef struct berth_store_opts {
    size_t map_size; /* 0: default (8 GiB of address space, sparse on disk) */
    uint32_t schema; /* 0: BERTH_STORE_SCHEMA; tests open older/newer schemas */
    /* Migration table ending with {0, NULL, NULL}; NULL: the built-in one. */
    const berth_store_migration_t *migrations;
    int read_only; /* open MDB_RDONLY: no creation, no migration */
    /*
     * Retention of the events database: each append deletes the events more
     * than this many sequence numbers older than the new one, in the same
     * transaction (0: BERTH_STORE_EVENTS_MAX). Every writer prunes to its own
     * bound, so processes sharing a root should agree (they read one config).
     */
    uint64_t events_max;
} berth_store_opts_t;

/* Default events retention: the newest 10,000 (Docker keeps 1,000, in memory only). */
#define BERTH_STORE_EVENTS_MAX 10000

/*
 * Open (creating when needed) the store in directory @dir, creating @dir with
 * mode 0700. Runs migrations from the stored schema to opts->schema in one
 * write transaction; a store written by a newer schema is refused (-EPROTO,
 * "store schema 3 is newer than this berth's 2"). Clears stale reader slots
 * left by crashed processes (mdb_reader_check).
 */
int berth__store_open(const char *dir, const berth_store_opts_t *opts, berth_store_t **ret_store,
                      berth_err_t *err);
/*
 * Clear reader slots of processes that died inside a read transaction
 * (mdb_reader_check); *ret_cleared (may be NULL) gets how many. open() does it
 * once; a long-running daemon calls it periodically, because a stale slot
 * pins old pages and makes the file grow.
 */
int berth__store_reader_check(berth_store_t *store, int *ret_cleared, berth_err_t *err);
/* Close; the store must have no open transaction. NULL allowed. */
void berth__store_close(berth_store_t *store);
/* Directory the store lives in; owned by the store. */
const char *berth__store_dir(const berth_store_t *store);
/* The schema version recorded in the store. */
uint32_t berth__store_schema(const berth_store_t *store);

/*
 * Transactions. One per thread at a time. A write transaction blocks until
 * no other writer (in any process) holds one; never keep one open across a
 * fork/exec, a network call or a wait on another process.
 */
int berth__store_txn_begin(berth_store_t *store, int write, berth_txn_t **ret_txn,
                           berth_err_t *err);
/* Commit and free the transaction, also on failure. */
int berth__store_txn_commit(berth_txn_t *txn, berth_err_t *err);
/* Abort and free; NULL allowed. Nothing the transaction did stays. */
void berth__store_txn_abort(berth_txn_t *txn);
static inline void berth__store_txn_abortp(berth_txn_t **txn)
{
    berth__store_txn_abort(*txn);
}
#define _cleanup_txn_ __attribute__((cleanup(berth__store_txn_abortp)))
/* The store a transaction belongs to. */
berth_store_t *berth__store_txn_store(berth_txn_t *txn);

/* Flags for put. */
#define BERTH_PUT_NOOVERWRITE 0x1u /* -EEXIST when the key exists */

/* Store @doc (not stolen) under @key. */
int berth__store_put(berth_txn_t *txn, berth_db_t db, const char *key, json_t *doc, uint32_t flags,
                     berth_err_t *err);
/* Read the document under @key into *ret_doc (a new reference); -ENOENT when absent. */
int berth__store_get(berth_txn_t *txn, berth_db_t db, const char *key, json_t **ret_doc,
                     berth_err_t *err);
/* Delete @key; -ENOENT when absent. */
int berth__store_del(berth_txn_t *txn, berth_db_t db, const char *key, berth_err_t *err);
/* Number of records in @db. */
int berth__store_count(berth_txn_t *txn, berth_db_t db, uint64_t *ret_count, berth_err_t *err);

/*
 * Call @fn for each record whose key starts with @prefix ("" or NULL: all), in
 * key order. @doc is borrowed for the call. A non-zero return from @fn stops
 * the walk and is returned. A record that does not parse fails the walk
 * with -EBADMSG naming the database and key. In a write transaction @fn may
 * put and delete records, also of @db and the current key (migrations rewrite
 * records this way); the walk continues with the next key in order.
 */
typedef int (*berth_store_walk_fn)(const char *key, json_t *doc, void *userdata);
int berth__store_walk(berth_txn_t *txn, berth_db_t db, const char *prefix, berth_store_walk_fn fn,
                      void *userdata, berth_err_t *err);

/*
 * Like berth__store_walk(), without parsing: @fn gets each value's bytes
 * (compact JSON, not NUL-terminated), borrowed from LMDB's map for the call
 * only. Nothing is checked: the caller validates what it reads, and reports
 * a damaged record like the walk does (-EBADMSG naming database and key).
 * For listings that need a few members of every record and cannot afford
 * building a jansson tree per record (containers.h, summaries).
 */
typedef int (*berth_store_walk_raw_fn)(const char *key, const void *data, size_t len,
                                       void *userdata);
int berth__store_walk_raw(berth_txn_t *txn, berth_db_t db, const char *prefix,
                          berth_store_walk_raw_fn fn, void *userdata, berth_err_t *err);

/*
 * The keys of @db starting with @prefix ("" or NULL: all), in key order, at
 * most @max of them (0: no limit), as a NULL-terminated strv in *ret_keys
 * (free with berth__strv_free). Values are not parsed, so this is the cheap
 * way to resolve an id prefix.
 */
int berth__store_keys(berth_txn_t *txn, berth_db_t db, const char *prefix, size_t max,
                      char ***ret_keys, berth_err_t *err);

/*
 * Append an event in @txn: {"v":1, "seq", "time_ns", "type", "action", "id",
 * "attributes"}; @attrs may be NULL (not stolen). Sequence numbers grow by one
 * per event across processes. *ret_seq (may be NULL) gets the new number.
 * Retention: events with seq <= new - events_max are deleted in the same
 * transaction, oldest first from the front of the database, so a commit
 * deletes one event in the steady state and never scans the rest.
 */
int berth__store_event_append(berth_txn_t *txn, const char *type, const char *action,
                              const char *id, json_t *attrs, uint64_t *ret_seq, berth_err_t *err);
/* Call @fn for each event with seq > @after, oldest first (key is the seq in decimal). */
int berth__store_event_walk(berth_txn_t *txn, uint64_t after, berth_store_walk_fn fn,
                            void *userdata, berth_err_t *err);
/* The newest event's sequence number, 0 when there is none. */
int berth__store_event_last(berth_txn_t *txn, uint64_t *ret_seq, berth_err_t *err);
/* The retention bound this store was opened with (events_max, resolved). */
uint64_t berth__store_events_max(const berth_store_t *store);

#endif /* BERTH_STORE_H */
