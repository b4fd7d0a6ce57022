/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata store on LMDB (contract in store.h, on-disk formats in
 * docs/store-format.md).
 *
 * Keys are stored as their bytes without the NUL, so LMDB's default memcmp
 * order is string order and prefix walks are one MDB_SET_RANGE. Values are
 * compact JSON without a NUL. The events database uses 8-byte big-endian
 * keys: memcmp order is numeric order, which MDB_APPEND relies on.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "store.h"
#include "util.h"

const char *const berth__store_db_names[BERTH_DB__COUNT] = {
    [BERTH_DB_META] = "meta",           [BERTH_DB_CONTAINERS] = "containers",
    [BERTH_DB_NAMES] = "names",         [BERTH_DB_IMAGES] = "images",
    [BERTH_DB_TAGS] = "tags",           [BERTH_DB_LAYERS] = "layers",
    [BERTH_DB_BLOBS] = "blobs",         [BERTH_DB_NETWORKS] = "networks",
    [BERTH_DB_ENDPOINTS] = "endpoints", [BERTH_DB_VOLUMES] = "volumes",
    [BERTH_DB_EVENTS] = "events",
};

/*
 * Address space only: LMDB maps this much but the file grows with the data
 * (sparse), so a large default costs nothing and avoids MDB_MAP_FULL and the
 * remap dance of mdb_env_set_mapsize() for any realistic host.
 */
#define DEFAULT_MAP_SIZE ((size_t)8 << 30)

/* Key of the schema record in the meta database. */
#define SCHEMA_KEY "schema"

/* Longest key text we hand to callbacks: LMDB's default maximum is 511 bytes. */
#define KEY_BUF 512

/* The built-in migration table: schema 1 is the first, nothing to migrate yet. */
static const berth_store_migration_t builtin_migrations[] = {
    { 0, NULL, NULL },
};

struct berth_store {
    MDB_env *env;
    MDB_dbi dbi[BERTH_DB__COUNT];
    char *dir;
    uint32_t schema;
    int read_only;

    /* Entry in the process-wide list of open stores (one open per directory). */
    dev_t dev;
    ino_t ino;
    pid_t pid;
    int registered;
    struct berth_store *next;

    /*
     * LMDB's writer lock is a non-recursive mutex: a thread that begins a
     * second write transaction on the same store would deadlock on itself.
     * Remember the writing thread so that mistake becomes -EDEADLK.
     */
    pthread_mutex_t writer_lock;
    pthread_t writer;
    int writing;

    /* Data file size last seen by store_grow(); only ever a lower bound. */
    off_t file_size;

    uint64_t events_max; /* retention of the events database */
};

struct berth_txn {
    berth_store_t *store;
    MDB_txn *txn;
    int write;
};

/* Process-wide list of open stores, keyed by the directory's st_dev/st_ino. */
static pthread_mutex_t open_stores_lock = PTHREAD_MUTEX_INITIALIZER;
static berth_store_t *open_stores;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * Hold the list lock across fork() so a child never inherits it locked by a
 * thread that does not exist in the child. Entries the child inherits carry
 * the parent's pid and are ignored there: the child may open the same
 * directory itself (it holds none of the parent's LMDB locks).
 */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&open_stores_lock);
}

static void atfork_release(void)
{
    pthread_mutex_unlock(&open_stores_lock);
}

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

static int registry_add(berth_store_t *store)
{
    pid_t pid = getpid();
    int ret = 0;

    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&open_stores_lock);
    for (berth_store_t *s = open_stores; s; s = s->next) {
        if (s->pid == pid && s->dev == store->dev && s->ino == store->ino) {
            ret = -EBUSY;
            break;
        }
    }
    if (ret == 0) {
        store->pid = pid;
        store->next = open_stores;
        open_stores = store;
        store->registered = 1;
    }
    pthread_mutex_unlock(&open_stores_lock);
    return ret;
}

static void registry_remove(berth_store_t *store)
{
    pthread_mutex_lock(&open_stores_lock);
    for (berth_store_t **p = &open_stores; *p; p = &(*p)->next) {
        if (*p == store) {
            *p = store->next;
            break;
        }
    }
    store->registered = 0;
    pthread_mutex_unlock(&open_stores_lock);
}

/* LMDB's own codes are negative and errno values positive; berth wants -errno. */
static int mdb_errno(int rc)
{
    switch (rc) {
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return -E2BIG;
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
        return -EAGAIN;
    case MDB_DBS_FULL:
        return -EMFILE;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return -EUCLEAN;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID:
    case MDB_INCOMPATIBLE:
        return -EPROTO;
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
        return -EINVAL;
    default:
        return rc > 0 ? -rc : -EIO;
    }
}

/* "store DIR: WHAT: MDB_XXX: text" and the matching -errno. */
static BERTH_PRINTF(4, 5) int mdb_fail(const char *dir, int rc, berth_err_t *err, const char *fmt,
                                       ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return berth_err_set(err, mdb_errno(rc), "store %s: %s: %s", dir, what, mdb_strerror(rc));
}

static void cursor_closep(MDB_cursor **cur)
{
    if (*cur)
        mdb_cursor_close(*cur);
}
#define _cleanup_cursor_ _cleanup_(cursor_closep)

static void be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/*
 * The key text of a record for callbacks and messages: the decimal sequence
 * number in the events database, else the bytes as stored. Returns -EBADMSG
 * for keys no berth writer produces (a NUL inside, a short event key).
 */
static int key_text(const berth_store_t *store, berth_db_t db, const MDB_val *k, char out[KEY_BUF],
                    berth_err_t *err)
{
    if (db == BERTH_DB_EVENTS) {
        if (k->mv_size != 8)
            return berth_err_set(err, -EBADMSG, "store %s: events: key of %zu bytes, expected 8",
                                 store->dir, k->mv_size);
        snprintf(out, KEY_BUF, "%" PRIu64, be64_get(k->mv_data));
        return 0;
    }
    if (k->mv_size >= KEY_BUF || memchr(k->mv_data, '\0', k->mv_size))
        return berth_err_set(err, -EBADMSG, "store %s: %s: key of %zu bytes is not a string",
                             store->dir, berth__store_db_names[db], k->mv_size);
    memcpy(out, k->mv_data, k->mv_size);
    out[k->mv_size] = '\0';
    return 0;
}

/* Turn a caller's key into an MDB_val; @buf holds the encoded events key. */
static int key_encode(const berth_store_t *store, berth_db_t db, const char *key, uint8_t buf[8],
                      MDB_val *ret_k, berth_err_t *err)
{
    size_t len;

    if ((unsigned)db >= BERTH_DB__COUNT)
        return berth_err_set(err, -EINVAL, "store %s: no database %d", store->dir, (int)db);
    if (!key || !*key)
        return berth_err_set(err, -EINVAL, "store %s: %s: empty key", store->dir,
                             berth__store_db_names[db]);
    if (db == BERTH_DB_EVENTS) {
        char *end;
        unsigned long long seq;

        errno = 0;
        seq = strtoull(key, &end, 10);
        if (*key < '0' || *key > '9' || *end || errno || seq == 0)
            return berth_err_set(err, -EINVAL,
                                 "store %s: events: key \"%s\" is not a sequence number",
                                 store->dir, key);
        be64_put(buf, seq);
        *ret_k = (MDB_val){ .mv_size = 8, .mv_data = buf };
        return 0;
    }
    len = strlen(key);
    if (len > (size_t)mdb_env_get_maxkeysize(store->env))
        return berth_err_set(err, -EINVAL, "store %s: %s: key of %zu bytes is too long (max %d)",
                             store->dir, berth__store_db_names[db], len,
                             mdb_env_get_maxkeysize(store->env));
    *ret_k = (MDB_val){ .mv_size = len, .mv_data = (void *)key };
    return 0;
}

static json_t *parse(const MDB_val *v, json_error_t *jerr)
{
    /* jansson leaves the error untouched when it fails before parsing. */
    memset(jerr, 0, sizeof(*jerr));
    return json_loadb(v->mv_data, v->mv_size, 0, jerr);
}

/* Parse a stored value; every failure names the database and the key. */
static int doc_decode(const berth_store_t *store, berth_db_t db, const char *key, const MDB_val *v,
                      json_t **ret_doc, berth_err_t *err)
{
    json_error_t jerr;
    json_t *doc, *ver;

    doc = parse(v, &jerr);
    /*
     * An allocation failure says nothing about the record, but jansson
     * reports it as json_error_out_of_memory, as nothing (before the first
     * token: empty text), or as a syntax error (a token it could not copy).
     * A damaged record fails the same way every time; so parse once more
     * before blaming the record. Only memory that stays exhausted can still
     * be mistaken for damage; nothing acts on -EBADMSG but the reader.
     */
    if (!doc) {
        json_error_t again;

        doc = parse(v, &again);
        if (!doc && (jerr.position != again.position || strcmp(jerr.text, again.text) != 0 ||
                     json_error_code(&again) == json_error_out_of_memory || !again.text[0]))
            return berth_err_set(err, -ENOMEM, "store %s: %s/%s: out of memory while parsing",
                                 store->dir, berth__store_db_names[db], key);
    }
    if (!doc)
        return berth_err_set(err, -EBADMSG, "store %s: %s/%s: invalid JSON at byte %d: %s",
                             store->dir, berth__store_db_names[db], key, jerr.position, jerr.text);
    ver = json_object_get(doc, "v");
    if (!json_is_object(doc) || !json_is_integer(ver)) {
        json_decref(doc);
        return berth_err_set(err, -EBADMSG,
                             "store %s: %s/%s: not a JSON object with an integer \"v\"", store->dir,
                             berth__store_db_names[db], key);
    }
    *ret_doc = doc;
    return 0;
}

/* Room for a typical record on the stack; bigger ones go to the heap. */
#define DUMP_STACK 4096

/*
 * Compact JSON of @doc into @stack (DUMP_STACK bytes) when it fits, else into
 * *ret_heap (the caller frees it); *ret_v points at the text. Not json_dumps():
 * jansson 2.14 ignores a failed write of an object key there and can return
 * truncated JSON when an allocation fails. json_dumpb's buffer writer cannot
 * fail, so any failure is reported as 0.
 */
static int dump_compact(json_t *doc, char *stack, char **ret_heap, MDB_val *ret_v)
{
    size_t len = json_dumpb(doc, stack, DUMP_STACK, JSON_COMPACT);
    char *heap;

    if (len == 0)
        return -ENOMEM;
    if (len <= DUMP_STACK) {
        *ret_v = (MDB_val){ .mv_size = len, .mv_data = stack };
        return 0;
    }
    heap = malloc(len);
    if (!heap)
        return -ENOMEM;
    if (json_dumpb(doc, heap, len, JSON_COMPACT) != len) {
        free(heap);
        return -ENOMEM;
    }
    *ret_heap = heap;
    *ret_v = (MDB_val){ .mv_size = len, .mv_data = heap };
    return 0;
}

/*
 * Serialise @doc (see dump_compact), adding "v":1 in front when missing; the
 * caller's document is not modified.
 */
static int doc_encode(const berth_store_t *store, berth_db_t db, const char *key, json_t *doc,
                      char *stack, char **ret_heap, MDB_val *ret_v, berth_err_t *err)
{
    _cleanup_json_ json_t *copy = NULL;
    json_t *ver;

    if (!json_is_object(doc))
        return berth_err_set(err, -EINVAL, "store %s: %s/%s: document is not a JSON object",
                             store->dir, berth__store_db_names[db], key);
    ver = json_object_get(doc, "v");
    if (ver && !json_is_integer(ver))
        return berth_err_set(err, -EINVAL, "store %s: %s/%s: \"v\" is not an integer", store->dir,
                             berth__store_db_names[db], key);
    if (!ver) {
        copy = json_pack("{s:i}", "v", 1);
        if (!copy || json_object_update(copy, doc) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        doc = copy;
    }
    if (dump_compact(doc, stack, ret_heap, ret_v) < 0)
        return berth_err_set(err, -ENOMEM, "store %s: %s/%s: cannot serialise document", store->dir,
                             berth__store_db_names[db], key);
    return 0;
}

/* ---- transactions ---- */

/*
 * Keep written (not sparse, not fallocated) blocks past the last used page.
 *
 * LMDB grows its data file by writing new pages past the end. Then the
 * commit's fdatasync must also flush the file's new size and block mapping,
 * an ext4 journal commit, and costs 1.5 to 2.5 times a flush of data over
 * allocated blocks (docs/benchmarks.md). fallocate() would not help: writing
 * into an unwritten extent converts it, which is again metadata. So, with
 * the writer lock held (called at the start of every write transaction),
 * when less than GROW_LOW is left past the last used page, zeros are written
 * from the end of the file to a quarter of the used size (GROW_STEP to
 * GROW_MAX) beyond that page, and made durable once.
 *
 * Only space past EOF is written. No page there is part of any committed
 * tree: LMDB writes every page it commits, so a page past EOF was never
 * written (the end of the file can lag the last page number when the last
 * allocated pages were freed again before commit). No other process writes
 * the file while we hold the writer lock, and our own transaction's pages
 * reach the file at commit, after this.
 *
 * Durability does not depend on it: any failure just leaves the file as LMDB
 * would have it. Cost: up to GROW_MAX of disk beyond the data, and one write
 * transaction in a few hundred pays the zeroing (about 3 ms per MiB here).
 * The smallest step is small because a new store pays it in its first write
 * transaction, inside the first command run on a fresh root (a first pull,
 * a first `run`): 8 MiB cost that command about 27 ms, 2 MiB about 7.
 */
#define GROW_STEP  ((off_t)2 << 20)
#define GROW_MAX   ((off_t)64 << 20)
#define GROW_LOW   ((off_t)1 << 20)
#define GROW_ALIGN ((off_t)1 << 20)

static void store_grow(berth_store_t *store)
{
    static const char zeros[64 << 10];
    MDB_envinfo info;
    MDB_stat st;
    struct stat fst;
    mdb_filehandle_t fd;
    off_t used, step, want, pos;

    if (mdb_env_info(store->env, &info) != 0 || mdb_env_stat(store->env, &st) != 0)
        return;
    used = (off_t)(info.me_last_pgno + 1) * (off_t)st.ms_psize;
    if (store->file_size >= used + GROW_LOW)
        return;
    if (mdb_env_get_fd(store->env, &fd) != 0 || fstat(fd, &fst) < 0)
        return;
    store->file_size = fst.st_size;
    if (fst.st_size >= used + GROW_LOW)
        return;
    step = used / 4 < GROW_STEP ? GROW_STEP : used / 4 > GROW_MAX ? GROW_MAX : used / 4;
    want = used + step;
    want = (want + GROW_ALIGN - 1) / GROW_ALIGN * GROW_ALIGN;
    if (want > (off_t)info.me_mapsize)
        want = (off_t)info.me_mapsize;
    for (pos = fst.st_size; pos < want;) {
        size_t len = want - pos < (off_t)sizeof(zeros) ? (size_t)(want - pos) : sizeof(zeros);
        ssize_t n = pwrite(fd, zeros, len, pos);

        if (n <= 0)
            break;
        pos += n;
    }
    if (pos > fst.st_size && fdatasync(fd) == 0)
        store->file_size = pos;
}

static void writer_release(berth_store_t *store)
{
    pthread_mutex_lock(&store->writer_lock);
    store->writing = 0;
    pthread_mutex_unlock(&store->writer_lock);
}

int berth__store_txn_begin(berth_store_t *store, int write, berth_txn_t **ret_txn, berth_err_t *err)
{
    _cleanup_free_ berth_txn_t *txn = NULL;
    int rc;

    if (write && store->read_only)
        return berth_err_set(err, -EROFS, "store %s: opened read-only", store->dir);
    txn = calloc(1, sizeof(*txn));
    if (!txn)
        return berth_err_set(err, -ENOMEM, "out of memory");
    txn->store = store;
    txn->write = !!write;

    if (write) {
        int mine;

        pthread_mutex_lock(&store->writer_lock);
        mine = store->writing && pthread_equal(store->writer, pthread_self());
        pthread_mutex_unlock(&store->writer_lock);
        if (mine)
            return berth_err_set(
                err, -EDEADLK, "store %s: this thread already has a write transaction", store->dir);
    }
    rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &txn->txn);
    /*
     * MDB_MAP_RESIZED: another process opened with a larger map_size and
     * filled the file beyond our map. Adopting it (mdb_env_set_mapsize(env,
     * 0)) remaps under the feet of this process's other threads' read
     * transactions, so it is left to a reopen; with the 8 GiB default on
     * every berth process it does not happen.
     */
    if (rc == MDB_MAP_RESIZED)
        return berth_err_set(err, -EAGAIN,
                             "store %s: mdb_txn_begin: %s; reopen the store with a larger map",
                             store->dir, mdb_strerror(rc));
    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_txn_begin");
    if (write) {
        pthread_mutex_lock(&store->writer_lock);
        store->writer = pthread_self();
        store->writing = 1;
        pthread_mutex_unlock(&store->writer_lock);
        store_grow(store);
    }
    *ret_txn = TAKE_PTR(txn);
    return 0;
}

int berth__store_txn_commit(berth_txn_t *txn, berth_err_t *err)
{
    berth_store_t *store = txn->store;
    int write = txn->write;
    /* mdb_txn_commit frees the LMDB transaction whatever it returns. */
    int rc = mdb_txn_commit(txn->txn);

    if (write)
        writer_release(store);
    free(txn);
    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_txn_commit");
    return 0;
}

void berth__store_txn_abort(berth_txn_t *txn)
{
    if (!txn)
        return;
    mdb_txn_abort(txn->txn);
    if (txn->write)
        writer_release(txn->store);
    free(txn);
}

berth_store_t *berth__store_txn_store(berth_txn_t *txn)
{
    return txn->store;
}

/* ---- records ---- */

int berth__store_put(berth_txn_t *txn, berth_db_t db, const char *key, json_t *doc, uint32_t flags,
                     berth_err_t *err)
{
    berth_store_t *store = txn->store;
    _cleanup_free_ char *heap = NULL;
    char stack[DUMP_STACK];
    uint8_t kbuf[8];
    MDB_val k, v;
    int rc;

    if (!txn->write)
        return berth_err_set(err, -EROFS, "store %s: put in a read-only transaction", store->dir);
    rc = key_encode(store, db, key, kbuf, &k, err);
    if (rc < 0)
        return rc;
    rc = doc_encode(store, db, key, doc, stack, &heap, &v, err);
    if (rc < 0)
        return rc;
    rc = mdb_put(txn->txn, store->dbi[db], &k, &v,
                 (flags & BERTH_PUT_NOOVERWRITE) ? MDB_NOOVERWRITE : 0);
    if (rc == MDB_KEYEXIST)
        return berth_err_set(err, -EEXIST, "store %s: %s/%s: already exists", store->dir,
                             berth__store_db_names[db], key);
    if (rc)
        return mdb_fail(store->dir, rc, err, "put %s/%s", berth__store_db_names[db], key);
    return 0;
}

int berth__store_get(berth_txn_t *txn, berth_db_t db, const char *key, json_t **ret_doc,
                     berth_err_t *err)
{
    berth_store_t *store = txn->store;
    uint8_t kbuf[8];
    MDB_val k, v;
    int rc;

    rc = key_encode(store, db, key, kbuf, &k, err);
    if (rc < 0)
        return rc;
    rc = mdb_get(txn->txn, store->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND)
        return berth_err_set(err, -ENOENT, "store %s: %s/%s: not found", store->dir,
                             berth__store_db_names[db], key);
    if (rc)
        return mdb_fail(store->dir, rc, err, "get %s/%s", berth__store_db_names[db], key);
    return doc_decode(store, db, key, &v, ret_doc, err);
}

int berth__store_del(berth_txn_t *txn, berth_db_t db, const char *key, berth_err_t *err)
{
    berth_store_t *store = txn->store;
    uint8_t kbuf[8];
    MDB_val k;
    int rc;

    if (!txn->write)
        return berth_err_set(err, -EROFS, "store %s: delete in a read-only transaction",
                             store->dir);
    rc = key_encode(store, db, key, kbuf, &k, err);
    if (rc < 0)
        return rc;
    rc = mdb_del(txn->txn, store->dbi[db], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return berth_err_set(err, -ENOENT, "store %s: %s/%s: not found", store->dir,
                             berth__store_db_names[db], key);
    if (rc)
        return mdb_fail(store->dir, rc, err, "delete %s/%s", berth__store_db_names[db], key);
    return 0;
}

int berth__store_count(berth_txn_t *txn, berth_db_t db, uint64_t *ret_count, berth_err_t *err)
{
    berth_store_t *store = txn->store;
    MDB_stat st;
    int rc;

    if ((unsigned)db >= BERTH_DB__COUNT)
        return berth_err_set(err, -EINVAL, "store %s: no database %d", store->dir, (int)db);
    rc = mdb_stat(txn->txn, store->dbi[db], &st);
    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_stat %s", berth__store_db_names[db]);
    *ret_count = st.ms_entries;
    return 0;
}

/*
 * Position @cur on the first key >= @start (or the first key) and visit keys
 * while they start with @prefix. Shared by walk, keys and event_walk.
 * @visit returns non-zero to stop; that value is returned.
 */
typedef int (*visit_fn)(const char *key, const MDB_val *v, void *ctx);

static int scan(berth_txn_t *txn, berth_db_t db, const MDB_val *start, const char *prefix,
                visit_fn visit, void *ctx, berth_err_t *err)
{
    berth_store_t *store = txn->store;
    _cleanup_cursor_ MDB_cursor *cur = NULL;
    size_t plen = prefix ? strlen(prefix) : 0;
    MDB_val k = { 0 }, v;
    char key[KEY_BUF];
    int rc;

    rc = mdb_cursor_open(txn->txn, store->dbi[db], &cur);
    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_cursor_open %s", berth__store_db_names[db]);
    if (start)
        k = *start;
    /*
     * The cursor is tracked by LMDB in a write transaction, so @visit may
     * put or delete records of @db (even the current one) and MDB_NEXT still
     * moves to the following key.
     */
    for (rc = mdb_cursor_get(cur, &k, &v, start ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int r;

        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            return 0;
        r = key_text(store, db, &k, key, err);
        if (r)
            return r;
        r = visit(key, &v, ctx);
        if (r)
            return r;
    }
    if (rc != MDB_NOTFOUND)
        return mdb_fail(store->dir, rc, err, "walk %s", berth__store_db_names[db]);
    return 0;
}

struct walk_ctx {
    berth_store_t *store;
    berth_db_t db;
    berth_store_walk_fn fn;
    void *userdata;
    berth_err_t *err;
};

static int walk_visit(const char *key, const MDB_val *v, void *ctx)
{
    struct walk_ctx *w = ctx;
    json_t *doc;
    int r;

    r = doc_decode(w->store, w->db, key, v, &doc, w->err);
    if (r < 0)
        return r;
    r = w->fn(key, doc, w->userdata);
    json_decref(doc);
    return r;
}

int berth__store_walk(berth_txn_t *txn, berth_db_t db, const char *prefix, berth_store_walk_fn fn,
                      void *userdata, berth_err_t *err)
{
    struct walk_ctx w = { txn->store, db, fn, userdata, err };
    MDB_val start;

    if ((unsigned)db >= BERTH_DB__COUNT)
        return berth_err_set(err, -EINVAL, "store %s: no database %d", txn->store->dir, (int)db);
    if (!prefix || !*prefix)
        return scan(txn, db, NULL, NULL, walk_visit, &w, err);
    if (db == BERTH_DB_EVENTS)
        return berth_err_set(err, -EINVAL,
                             "store %s: events: prefix walks are not supported, use event_walk",
                             txn->store->dir);
    start = (MDB_val){ .mv_size = strlen(prefix), .mv_data = (void *)prefix };
    return scan(txn, db, &start, prefix, walk_visit, &w, err);
}

struct walk_raw_ctx {
    berth_store_walk_raw_fn fn;
    void *userdata;
};

static int walk_raw_visit(const char *key, const MDB_val *v, void *ctx)
{
    struct walk_raw_ctx *w = ctx;

    return w->fn(key, v->mv_data, v->mv_size, w->userdata);
}

int berth__store_walk_raw(berth_txn_t *txn, berth_db_t db, const char *prefix,
                          berth_store_walk_raw_fn fn, void *userdata, berth_err_t *err)
{
    struct walk_raw_ctx w = { fn, userdata };
    MDB_val start;

    if ((unsigned)db >= BERTH_DB__COUNT || (db == BERTH_DB_EVENTS && prefix && *prefix))
        return berth_err_set(err, -EINVAL, "store %s: walk: bad database or prefix",
                             txn->store->dir);
    if (!prefix || !*prefix)
        return scan(txn, db, NULL, NULL, walk_raw_visit, &w, err);
    start = (MDB_val){ .mv_size = strlen(prefix), .mv_data = (void *)prefix };
    return scan(txn, db, &start, prefix, walk_raw_visit, &w, err);
}

struct keys_ctx {
    char **keys;
    size_t max;
    size_t n;
};

static int keys_visit(const char *key, const MDB_val *v, void *ctx)
{
    struct keys_ctx *c = ctx;

    if (c->max && c->n >= c->max)
        return 1;
    if (berth__strv_push(&c->keys, key) < 0)
        return -ENOMEM;
    c->n++;
    return 0;
}

int berth__store_keys(berth_txn_t *txn, berth_db_t db, const char *prefix, size_t max,
                      char ***ret_keys, berth_err_t *err)
{
    struct keys_ctx c = { .max = max };
    MDB_val start;
    int rc;

    if ((unsigned)db >= BERTH_DB__COUNT || (db == BERTH_DB_EVENTS && prefix && *prefix))
        return berth_err_set(err, -EINVAL, "store %s: keys: bad database or prefix",
                             txn->store->dir);
    c.keys = berth__strv_new();
    if (!c.keys)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (prefix && *prefix) {
        start = (MDB_val){ .mv_size = strlen(prefix), .mv_data = (void *)prefix };
        rc = scan(txn, db, &start, prefix, keys_visit, &c, err);
    } else {
        rc = scan(txn, db, NULL, NULL, keys_visit, &c, err);
    }
    if (rc == -ENOMEM)
        berth_err_set(err, rc, "out of memory");
    if (rc < 0) {
        berth__strv_free(c.keys);
        return rc;
    }
    *ret_keys = c.keys;
    return 0;
}

/* ---- events ---- */

/*
 * Delete the events with seq <= @through from the front of the database.
 * The keys are in numeric order, so this visits only what it deletes: one
 * event per append once the bound is reached, more only when the bound was
 * lowered (then the excess goes at once, and the bound holds again).
 */
static int events_prune(berth_store_t *store, MDB_cursor *cur, uint64_t through, berth_err_t *err)
{
    MDB_val k, v;
    int rc;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) {
        if (k.mv_size != 8 || be64_get(k.mv_data) > through)
            return 0;
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            return mdb_fail(store->dir, rc, err, "prune events");
    }
    if (rc != MDB_NOTFOUND)
        return mdb_fail(store->dir, rc, err, "prune events");
    return 0;
}

int berth__store_event_append(berth_txn_t *txn, const char *type, const char *action,
                              const char *id, json_t *attrs, uint64_t *ret_seq, berth_err_t *err)
{
    berth_store_t *store = txn->store;
    _cleanup_cursor_ MDB_cursor *cur = NULL;
    _cleanup_json_ json_t *ev = NULL;
    _cleanup_free_ char *heap = NULL;
    char stack[DUMP_STACK];
    uint8_t kbuf[8];
    uint64_t seq = 1;
    MDB_val k, v;
    int rc;

    if (!txn->write)
        return berth_err_set(err, -EROFS, "store %s: event in a read-only transaction", store->dir);
    if (!type || !*type || !action || !*action || (attrs && !json_is_object(attrs)))
        return berth_err_set(err, -EINVAL,
                             "store %s: event needs a type, an action and"
                             " object attributes",
                             store->dir);
    rc = mdb_cursor_open(txn->txn, store->dbi[BERTH_DB_EVENTS], &cur);
    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_cursor_open events");
    /*
     * The last key is read inside the write transaction, which LMDB
     * serialises across processes, so two writers can never pick one number.
     */
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0) {
        if (k.mv_size != 8)
            return berth_err_set(err, -EBADMSG, "store %s: events: last key has %zu bytes",
                                 store->dir, k.mv_size);
        seq = be64_get(k.mv_data) + 1;
    } else if (rc != MDB_NOTFOUND) {
        return mdb_fail(store->dir, rc, err, "read last event");
    }
    ev = json_pack("{s:i, s:I, s:I, s:s, s:s, s:s?, s:O?}", "v", 1, "seq", (json_int_t)seq,
                   "time_ns", (json_int_t)berth__now_ns(), "type", type, "action", action, "id", id,
                   "attributes", attrs);
    if (!ev)
        return berth_err_set(err, -ENOMEM, "store %s: cannot build event", store->dir);
    if (!attrs && json_object_set_new(ev, "attributes", json_object()) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (dump_compact(ev, stack, &heap, &v) < 0)
        return berth_err_set(err, -ENOMEM, "store %s: cannot serialise event", store->dir);
    be64_put(kbuf, seq);
    k = (MDB_val){ .mv_size = 8, .mv_data = kbuf };
    /* MDB_APPEND: the key is the largest, so LMDB fills leaf pages completely. */
    rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
    if (rc)
        return mdb_fail(store->dir, rc, err, "append event %" PRIu64, seq);
    if (seq > store->events_max &&
        (rc = events_prune(store, cur, seq - store->events_max, err)) < 0)
        return rc;
    if (ret_seq)
        *ret_seq = seq;
    return 0;
}

int berth__store_event_last(berth_txn_t *txn, uint64_t *ret_seq, berth_err_t *err)
{
    berth_store_t *store = txn->store;
    _cleanup_cursor_ MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(txn->txn, store->dbi[BERTH_DB_EVENTS], &cur);
    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_cursor_open events");
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        *ret_seq = 0;
        return 0;
    }
    if (rc)
        return mdb_fail(store->dir, rc, err, "read last event");
    if (k.mv_size != 8)
        return berth_err_set(err, -EBADMSG, "store %s: events: last key has %zu bytes", store->dir,
                             k.mv_size);
    *ret_seq = be64_get(k.mv_data);
    return 0;
}

uint64_t berth__store_events_max(const berth_store_t *store)
{
    return store->events_max;
}

int berth__store_event_walk(berth_txn_t *txn, uint64_t after, berth_store_walk_fn fn,
                            void *userdata, berth_err_t *err)
{
    struct walk_ctx w = { txn->store, BERTH_DB_EVENTS, fn, userdata, err };
    uint8_t kbuf[8];
    MDB_val start = { .mv_size = 8, .mv_data = kbuf };

    if (after == UINT64_MAX)
        return 0;
    be64_put(kbuf, after + 1);
    return scan(txn, BERTH_DB_EVENTS, &start, NULL, walk_visit, &w, err);
}

/* ---- open, schema and migrations ---- */

/* Read the schema record: *ret_schema is 0 when there is none. */
static int schema_read(berth_store_t *store, MDB_txn *t, uint32_t *ret_schema, json_t **ret_doc,
                       berth_err_t *err)
{
    MDB_val k = { .mv_size = strlen(SCHEMA_KEY), .mv_data = SCHEMA_KEY }, v;
    json_t *doc, *s;
    int rc;

    rc = mdb_get(t, store->dbi[BERTH_DB_META], &k, &v);
    if (rc == MDB_NOTFOUND) {
        *ret_schema = 0;
        *ret_doc = NULL;
        return 0;
    }
    if (rc)
        return mdb_fail(store->dir, rc, err, "read schema");
    rc = doc_decode(store, BERTH_DB_META, SCHEMA_KEY, &v, &doc, err);
    if (rc < 0)
        return rc;
    s = json_object_get(doc, "schema");
    if (!json_is_integer(s) || json_integer_value(s) < 1 || json_integer_value(s) > UINT32_MAX) {
        json_decref(doc);
        return berth_err_set(err, -EBADMSG, "store %s: meta/schema: no valid \"schema\" number",
                             store->dir);
    }
    *ret_schema = (uint32_t)json_integer_value(s);
    *ret_doc = doc;
    return 0;
}

static int dbs_open(berth_store_t *store, MDB_txn *t, unsigned flags, berth_err_t *err)
{
    for (int i = 0; i < BERTH_DB__COUNT; i++) {
        int rc = mdb_dbi_open(t, berth__store_db_names[i], flags, &store->dbi[i]);
        if (rc)
            return mdb_fail(store->dir, rc, err, "open database %s", berth__store_db_names[i]);
    }
    return 0;
}

static int schema_newer(const berth_store_t *store, uint32_t found, uint32_t target,
                        berth_err_t *err)
{
    return berth_err_set(err, -EPROTO,
                         "store %s: store schema %" PRIu32 " is newer than this berth's %" PRIu32,
                         store->dir, found, target);
}

static int has_records(berth_store_t *store, MDB_txn *t, int *ret, berth_err_t *err)
{
    for (int i = 0; i < BERTH_DB__COUNT; i++) {
        MDB_stat st;
        int rc = mdb_stat(t, store->dbi[i], &st);
        if (rc)
            return mdb_fail(store->dir, rc, err, "mdb_stat %s", berth__store_db_names[i]);
        if (st.ms_entries) {
            *ret = 1;
            return 0;
        }
    }
    *ret = 0;
    return 0;
}

/*
 * Inside the open's write transaction: initialise a new store, or run every
 * step from the stored schema to @target. Any failure leaves the caller to
 * abort, so the store stays exactly as it was.
 */
static int schema_upgrade(berth_store_t *store, berth_txn_t *txn, uint32_t target,
                          const berth_store_migration_t *table, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    json_t *history;
    uint32_t found;
    int64_t now = berth__now_ns();
    int rc;

    rc = schema_read(store, txn->txn, &found, &doc, err);
    if (rc < 0)
        return rc;
    if (found > target)
        return schema_newer(store, found, target, err);
    if (found == target) {
        store->schema = found;
        return 0;
    }
    if (found == 0) {
        int any;

        rc = has_records(store, txn->txn, &any, err);
        if (rc < 0)
            return rc;
        /* Records without a schema are not ours to guess about. */
        if (any)
            return berth_err_set(err, -EBADMSG, "store %s: holds records but no schema record",
                                 store->dir);
        /* A new store starts at the target schema: there is nothing to migrate. */
        doc = json_pack("{s:i, s:I, s:I, s:[]}", "v", 1, "schema", (json_int_t)target, "created_ns",
                        (json_int_t)now, "history");
        if (!doc)
            return berth_err_set(err, -ENOMEM, "out of memory");
    } else {
        for (uint32_t s = found; s < target; s++) {
            const berth_store_migration_t *m = table;
            berth_err_t merr = { 0 };
            json_t *entry;

            while (m->run && m->from != s)
                m++;
            if (!m->run)
                return berth_err_set(err, -EPROTO,
                                     "store %s: no migration from schema %" PRIu32 " to %" PRIu32,
                                     store->dir, s, s + 1);
            rc = m->run(txn, &merr);
            if (rc != 0) {
                if (rc > 0)
                    rc = -EINVAL;
                return berth_err_set(err, rc,
                                     "store %s: migration from schema %" PRIu32 " to %" PRIu32
                                     " (%s) failed, store left at schema %" PRIu32 ": %s",
                                     store->dir, s, s + 1, m->what ? m->what : "?", found,
                                     merr.msg[0] ? merr.msg : strerror(-rc));
            }
            history = json_object_get(doc, "history");
            if (!json_is_array(history)) {
                history = json_array();
                if (!history || json_object_set_new(doc, "history", history) < 0)
                    return berth_err_set(err, -ENOMEM, "out of memory");
            }
            entry =
                json_pack("{s:I, s:I, s:s, s:I}", "from", (json_int_t)s, "to", (json_int_t)(s + 1),
                          "what", m->what ? m->what : "", "time_ns", (json_int_t)berth__now_ns());
            if (!entry || json_array_append_new(history, entry) < 0)
                return berth_err_set(err, -ENOMEM, "out of memory");
        }
        if (json_object_set_new(doc, "schema", json_integer(target)) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    rc = berth__store_put(txn, BERTH_DB_META, SCHEMA_KEY, doc, 0, err);
    if (rc < 0)
        return rc;
    store->schema = target;
    return 0;
}

/*
 * Open the database handles and settle the schema. The common case (every
 * database exists, schema current) only needs a read transaction, so an open
 * never waits for another process's writer; anything else is decided again
 * under the writer lock, because another process may have done it meanwhile.
 */
static int store_setup(berth_store_t *store, uint32_t target, const berth_store_migration_t *table,
                       berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    berth_txn_t *txn = NULL;
    berth_err_t rerr = { 0 };
    MDB_txn *t;
    uint32_t found = 0;
    int rc;

    rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &t);
    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_txn_begin");
    /* A missing database is no failure here (new store), hence the local error. */
    rc = dbs_open(store, t, 0, &rerr);
    if (rc == 0)
        rc = schema_read(store, t, &found, &doc, &rerr);
    if (rc == 0 && found == target) {
        /* Committing a read transaction keeps the handles it opened. */
        rc = mdb_txn_commit(t);
        if (rc)
            return mdb_fail(store->dir, rc, err, "mdb_txn_commit");
        store->schema = found;
        return 0;
    }
    mdb_txn_abort(t);
    if (rc < 0 && rc != -ENOENT) {
        if (err)
            *err = rerr;
        return rc;
    }
    if (found > target)
        return schema_newer(store, found, target, err);
    if (store->read_only) {
        if (rc == -ENOENT || found == 0)
            return berth_err_set(err, -ENOENT, "store %s: not initialised", store->dir);
        return berth_err_set(err, -EPROTO,
                             "store %s: store schema %" PRIu32
                             " is older than this berth's %" PRIu32
                             "; open it read-write once to migrate",
                             store->dir, found, target);
    }

    rc = berth__store_txn_begin(store, 1, &txn, err);
    if (rc < 0)
        return rc;
    rc = dbs_open(store, txn->txn, MDB_CREATE, err);
    if (rc == 0)
        rc = schema_upgrade(store, txn, target, table, err);
    if (rc < 0) {
        /* Also closes the handles opened in this transaction. */
        berth__store_txn_abort(txn);
        return rc;
    }
    return berth__store_txn_commit(txn, err);
}

int berth__store_reader_check(berth_store_t *store, int *ret_cleared, berth_err_t *err)
{
    int dead = 0;
    int rc = mdb_reader_check(store->env, &dead);

    if (rc)
        return mdb_fail(store->dir, rc, err, "mdb_reader_check");
    if (ret_cleared)
        *ret_cleared = dead;
    return 0;
}

static void store_closep(berth_store_t **store)
{
    berth__store_close(*store);
}

int berth__store_open(const char *dir, const berth_store_opts_t *opts, berth_store_t **ret_store,
                      berth_err_t *err)
{
    _cleanup_(store_closep) berth_store_t *store = NULL;
    size_t map_size = opts && opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    uint32_t target = opts && opts->schema ? opts->schema : BERTH_STORE_SCHEMA;
    const berth_store_migration_t *table =
        opts && opts->migrations ? opts->migrations : builtin_migrations;
    int read_only = opts && opts->read_only;
    /*
     * MDB_NOTLS: reader slots belong to the transaction, not the thread, so a
     * read transaction may be handed between threads (libuv's threadpool) and
     * a thread may hold several. MDB_NORDAHEAD: lookups touch a few random
     * pages; readahead would only evict useful cache when the file outgrows RAM.
     */
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (read_only ? MDB_RDONLY : 0);
    struct stat st;
    int rc;

    if (!dir || !*dir)
        return berth_err_set(err, -EINVAL, "store: no directory");
    if (!read_only) {
        rc = berth__mkdir_p(dir, 0700, err);
        if (rc < 0)
            return berth_err_prefix(err, rc, "store");
    }
    if (stat(dir, &st) < 0)
        return berth_err_set(err, -errno, "store %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return berth_err_set(err, -ENOTDIR, "store %s: not a directory", dir);

    store = calloc(1, sizeof(*store));
    if (!store)
        return berth_err_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&store->writer_lock, NULL);
    store->dir = strdup(dir);
    if (!store->dir)
        return berth_err_set(err, -ENOMEM, "out of memory");
    store->read_only = read_only;
    store->events_max = opts && opts->events_max ? opts->events_max : BERTH_STORE_EVENTS_MAX;
    store->dev = st.st_dev;
    store->ino = st.st_ino;
    if (registry_add(store) < 0)
        return berth_err_set(err, -EBUSY, "store %s: already open in this process", dir);

    rc = mdb_env_create(&store->env);
    if (rc)
        return mdb_fail(dir, rc, err, "mdb_env_create");
    rc = mdb_env_set_maxdbs(store->env, BERTH_DB__COUNT);
    if (rc == 0)
        rc = mdb_env_set_mapsize(store->env, map_size);
    if (rc)
        return mdb_fail(dir, rc, err, "configure environment");
    rc = mdb_env_open(store->env, dir, flags, 0600);
    if (rc)
        return mdb_fail(dir, rc, err, "mdb_env_open");
    /* A process that died inside a read transaction keeps its slot, pinning old pages. */
    rc = mdb_reader_check(store->env, NULL);
    if (rc)
        return mdb_fail(dir, rc, err, "mdb_reader_check");

    rc = store_setup(store, target, table, err);
    if (rc < 0)
        return rc;
    *ret_store = TAKE_PTR(store);
    return 0;
}

void berth__store_close(berth_store_t *store)
{
    if (!store)
        return;
    if (store->env)
        mdb_env_close(store->env);
    if (store->registered)
        registry_remove(store);
    pthread_mutex_destroy(&store->writer_lock);
    free(store->dir);
    free(store);
}

const char *berth__store_dir(const berth_store_t *store)
{
    return store->dir;
}

uint32_t berth__store_schema(const berth_store_t *store)
{
    return store->schema;
}
