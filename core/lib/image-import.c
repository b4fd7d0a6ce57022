/* SPDX-License-Identifier: Apache-2.0 */
/* Importing an image from a source session (see image-import.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "content.h"
#include "digest.h"
#include "engine-internal.h"
#include "image-import.h"
#include "images.h"
#include "layer.h"
#include "util.h"

/* Manifests, indexes and configs are small; refuse anything that isn't. */
#define METADATA_MAX (8u << 20)
/* Attempts per blob: the first try plus resumes after a failed read. */
#define FETCH_ATTEMPTS 4
/* Layers downloaded at once when the source allows parallel streams. */
#define PARALLEL_DOWNLOADS 3

#define MT_OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_V2    "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_V1    "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1S   "application/vnd.docker.distribution.manifest.v1+prettyjws"

struct import {
    berth_engine_t *e;
    const berth_import_req_t *req;
    const berth_image_ops_t *sops;
    berth_content_t *cs;
    berth_driver_t *stg;
    const berth_storage_ops_t *tops;
    uint64_t stg_caps;
    pthread_mutex_t lock;     /* serialises source calls (not stream reads) and progress */
    pthread_mutex_t stg_lock; /* serialises storage driver calls from the layer workers */
    /* layer_sync(): one syncfs() at a time, and when the last one that worked began. */
    pthread_mutex_t sync_lock;
    int64_t synced_from_ns; /* 0: none yet */
    dev_t synced_dev;
};

void berth__host_platform(const char **ret_os, const char **ret_arch, const char **ret_variant)
{
    static const struct {
        const char *machine, *arch, *variant;
    } map[] = {
        { "x86_64", "amd64", "" },    { "aarch64", "arm64", "v8" }, { "armv7l", "arm", "v7" },
        { "armv6l", "arm", "v6" },    { "i686", "386", "" },        { "i386", "386", "" },
        { "ppc64le", "ppc64le", "" }, { "s390x", "s390x", "" },     { "riscv64", "riscv64", "" },
    };
    static char machine[65];
    struct utsname u;

    *ret_os = "linux";
    *ret_arch = "amd64";
    *ret_variant = "";
    if (uname(&u) < 0)
        return;
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(map); i++) {
        if (strcmp(u.machine, map[i].machine) == 0) {
            *ret_arch = map[i].arch;
            *ret_variant = map[i].variant;
            return;
        }
    }
    snprintf(machine, sizeof(machine), "%s", u.machine);
    *ret_arch = machine;
}

static void progress(struct import *im, const char *id, const char *status, int64_t cur,
                     int64_t total)
{
    const berth_image_opts_t *o = im->req->opts;
    berth_progress_t ev = { id, status, cur, total };

    if (!o || !o->progress)
        return;
    pthread_mutex_lock(&im->lock);
    o->progress(o->progress_userdata, &ev);
    pthread_mutex_unlock(&im->lock);
}

/* Loads report "Loading layer" where pulls report "Downloading", as docker does. */
static int is_load(const struct import *im)
{
    return im->req->action && strcmp(im->req->action, "load") == 0;
}

static void short_id(const char *digest, char out[13])
{
    snprintf(out, 13, "%.12s", strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest);
}

static int desc_from_json(json_t *j, berth_descriptor_t *d, const char *what, berth_err_t *err)
{
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    const char *dg = json_string_value(json_object_get(j, "digest"));
    json_t *size = json_object_get(j, "size");

    memset(d, 0, sizeof(*d));
    d->struct_size = sizeof(*d);
    if (!dg || !berth__digest_valid(dg))
        return berth_err_set(err, -EBADMSG, "%s: missing or unsupported digest \"%.80s\"", what,
                             dg ? dg : "");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return berth_err_set(err, -EBADMSG, "%s: missing or negative size", what);
    if (mt && strlen(mt) >= sizeof(d->media_type))
        return berth_err_set(err, -EBADMSG, "%s: media type too long", what);
    snprintf(d->media_type, sizeof(d->media_type), "%s", mt ? mt : "");
    snprintf(d->digest, sizeof(d->digest), "%s", dg);
    d->size = json_integer_value(size);
    return 0;
}

static json_t *desc_to_json(const berth_descriptor_t *d)
{
    return json_pack("{sssssI}", "mediaType", d->media_type, "digest", d->digest, "size",
                     (json_int_t)d->size);
}

/* Is this a transient failure worth resuming? */
static int retryable(int r)
{
    return r == -EIO || r == -ECONNRESET || r == -ETIMEDOUT || r == -EPIPE || r == -EAGAIN ||
           r == -ECONNABORTED || r == -EHOSTUNREACH || r == -ENETUNREACH || r == -EPROTO;
}

/*
 * Get blob @d into the content store: nothing when it's there, else fetch it,
 * resuming from the partial bytes of an earlier attempt when the source can.
 */
static int fetch_blob(struct import *im, const berth_descriptor_t *d, const char *pid,
                      berth_err_t *err)
{
    int64_t last_report = 0;
    int r = 0;

    for (int attempt = 0; attempt < FETCH_ATTEMPTS; attempt++) {
        berth_content_writer_t *w = NULL;
        berth_stream_t *s = NULL;
        char buf[1 << 16];
        int64_t off = 0, n;
        berth_err_t e2 = { 0 };

        r = berth__content_writer_open(im->cs, d->digest, d->size, &w, &off, err);
        if (r == -EEXIST)
            return 0;
        if (r == -EAGAIN)
            continue;
        if (r < 0)
            return r;
        pthread_mutex_lock(&im->lock);
        r = im->sops->fetch(im->req->source->priv, im->req->session, d, off, 0, &s, &e2);
        pthread_mutex_unlock(&im->lock);
        if (r == -ESPIPE && off > 0) {
            /* The source can't resume: start this blob again from its first byte. */
            berth__content_writer_close(w, 0);
            attempt--;
            continue;
        }
        if (r < 0) {
            berth__content_writer_close(w, 1);
            if (err)
                *err = e2;
            if (retryable(r) && attempt + 1 < FETCH_ATTEMPTS)
                continue;
            return berth_err_prefix(err, r, d->digest);
        }
        if (pid && off > 0)
            progress(im, pid, is_load(im) ? "Loading layer" : "Downloading", off, d->size);
        while ((n = s->read(s, buf, sizeof(buf), &e2)) > 0) {
            if ((r = berth__content_writer_write(w, buf, (size_t)n, err)) < 0)
                break;
            off += n;
            if (pid && (off - last_report >= (256 << 10) || off == d->size)) {
                progress(im, pid, is_load(im) ? "Loading layer" : "Downloading", off, d->size);
                last_report = off;
            }
        }
        s->close(s);
        if (r < 0) {
            berth__content_writer_close(w, 0);
            return r;
        }
        if (n < 0) {
            /* Keep what arrived: the next attempt resumes after it. */
            berth__content_writer_close(w, 1);
            r = (int)n;
            if (err)
                *err = e2;
            if (retryable(r) && attempt + 1 < FETCH_ATTEMPTS)
                continue;
            return berth_err_prefix(err, r, d->digest);
        }
        if (pid)
            progress(im, pid, "Verifying Checksum", off, d->size);
        r = berth__content_writer_commit(w, err);
        berth__content_writer_close(w, 0);
        if (r < 0)
            return r;
        if (pid)
            progress(im, pid, "Download complete", off, d->size);
        return 0;
    }
    return r < 0 ? r
                 : berth_err_set(err, -EIO, "%s: gave up after %d attempts", d->digest,
                                 FETCH_ATTEMPTS);
}

static int load_json(struct import *im, const berth_descriptor_t *d, json_t **ret, berth_err_t *err)
{
    _cleanup_free_ char *buf = NULL;
    json_error_t je;
    size_t len;
    json_t *j;
    int r;

    if (d->size > (int64_t)METADATA_MAX)
        return berth_err_set(err, -EFBIG, "%s: %" PRId64 " bytes is too large for a %s", d->digest,
                             d->size, d->media_type[0] ? d->media_type : "manifest");
    if ((r = fetch_blob(im, d, NULL, err)) < 0)
        return r;
    if ((r = berth__content_read_all(im->cs, d->digest, METADATA_MAX, &buf, &len, err)) < 0)
        return r;
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return berth_err_set(err, -EBADMSG, "%s: not a JSON object: %s", d->digest, je.text);
    }
    *ret = j;
    return 0;
}

static int is_index(const char *mt)
{
    return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

static int is_manifest(const char *mt)
{
    return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_V2) == 0;
}

/* A descriptor without a media type (some sources don't know it): the document's own. */
static void sniff_media_type(berth_descriptor_t *d, json_t *doc)
{
    const char *mt = json_string_value(json_object_get(doc, "mediaType"));
    if (d->media_type[0])
        return;
    if (mt)
        snprintf(d->media_type, sizeof(d->media_type), "%s", mt);
    else if (json_object_get(doc, "manifests"))
        snprintf(d->media_type, sizeof(d->media_type), MT_OCI_INDEX);
    else if (json_object_get(doc, "layers"))
        snprintf(d->media_type, sizeof(d->media_type), MT_OCI_MANIFEST);
}

static int parse_platform(const char *p, char os[32], char arch[32], char variant[32],
                          berth_err_t *err)
{
    const char *hos, *harch, *hvar;
    char tmp[96];
    char *a, *v;

    berth__host_platform(&hos, &harch, &hvar);
    if (!p || !*p) {
        snprintf(os, 32, "%s", hos);
        snprintf(arch, 32, "%s", harch);
        snprintf(variant, 32, "%s", hvar);
        return 0;
    }
    if (strlen(p) >= sizeof(tmp))
        return berth_err_set(err, -EINVAL, "invalid platform \"%s\"", p);
    snprintf(tmp, sizeof(tmp), "%s", p);
    a = strchr(tmp, '/');
    if (!a || a == tmp || !a[1])
        return berth_err_set(err, -EINVAL, "invalid platform \"%s\": want os/arch[/variant]", p);
    *a++ = '\0';
    v = strchr(a, '/');
    if (v)
        *v++ = '\0';
    if (strlen(tmp) >= 32 || strlen(a) >= 32 || (v && strlen(v) >= 32))
        return berth_err_set(err, -EINVAL, "invalid platform \"%s\"", p);
    snprintf(os, 32, "%s", tmp);
    snprintf(arch, 32, "%s", a);
    snprintf(variant, 32, "%s", v ? v : "");
    return 0;
}

/* Pick the manifest for the wanted platform from an index. */
static int pick_platform(struct import *im, json_t *index, berth_descriptor_t *ret,
                         berth_err_t *err)
{
    char os[32], arch[32], variant[32];
    json_t *best = NULL, *m;
    size_t i;
    int r;

    if ((r = parse_platform(im->req->opts ? im->req->opts->platform : NULL, os, arch, variant,
                            err)) < 0)
        return r;
    json_array_foreach (json_object_get(index, "manifests"), i, m) {
        json_t *p = json_object_get(m, "platform");
        const char *mos = json_string_value(json_object_get(p, "os"));
        const char *march = json_string_value(json_object_get(p, "architecture"));
        const char *mvar = json_string_value(json_object_get(p, "variant"));
        if (!mos || !march || strcmp(mos, os) != 0 || strcmp(march, arch) != 0)
            continue;
        /* An asked-for variant must match; without one, the first entry wins. */
        if (variant[0] && mvar && strcmp(mvar, variant) != 0)
            continue;
        best = m;
        break;
    }
    if (!best)
        return berth_err_set(err, -ENOENT,
                             "no matching manifest for %s/%s%s%s in the manifest list entries", os,
                             arch, variant[0] ? "/" : "", variant);
    return desc_from_json(best, ret, "index entry", err);
}

/*
 * A key for a snapshot the import unpacks into: "import-<pid>-<random>". The
 * pid lets a later import tell the snapshots of a killed one (see
 * reclaim_stale()).
 */
static int random_key(char *buf, size_t len)
{
    uint8_t b[12];
    size_t n = 0;

    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return -EIO;
    n = (size_t)snprintf(buf, len, "import-%ld-", (long)getpid());
    for (size_t i = 0; i < sizeof(b) && n + 2 < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%02x", b[i]);
    return 0;
}

struct stale {
    char (*names)[72];
    size_t n, cap;
};

static int collect_stale(const char *name, const berth_snapshot_info_t *info, void *userdata)
{
    struct stale *st = userdata;
    char *end;
    long pid;

    if (info->kind != BERTH_SNAPSHOT_KIND_ACTIVE || strncmp(name, "import-", 7) != 0 ||
        strlen(name) >= sizeof(st->names[0]))
        return 0;
    errno = 0;
    pid = strtol(name + 7, &end, 10);
    if (errno || end == name + 7 || *end != '-' || pid <= 0 || pid == (long)getpid())
        return 0;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
        return 0;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 8;
        void *p = realloc(st->names, cap * sizeof(st->names[0]));
        if (!p)
            return 1;
        st->names = p;
        st->cap = cap;
    }
    snprintf(st->names[st->n++], sizeof(st->names[0]), "%s", name);
    return 0;
}

/*
 * Remove the snapshots a killed import left: an import unpacks a layer while
 * it downloads, so an interrupted pull usually leaves one, and a snapshot
 * prepared on a layer keeps the collector from removing that layer. Only
 * snapshots whose import process is gone (the pid in the key, see
 * random_key()) are touched. Best effort: failures change nothing else.
 */
static void reclaim_stale(struct import *im)
{
    struct stale st = { 0 };

    if (im->tops->walk(im->stg->priv, 0, collect_stale, &st, NULL) >= 0)
        for (size_t i = 0; i < st.n; i++)
            im->tops->remove(im->stg->priv, st.names[i], 0, NULL);
    free(st.names);
}

/* ---- layers ---- */

struct layer {
    berth_descriptor_t desc;
    char diff_id[72];
    char chain_id[72];
    char pid[13];
    int present; /* unpacked snapshot already there */
    int done;    /* committed with its record (rc 0), or failed */
    int rc;
    uint64_t size; /* unpacked bytes, once done */
    berth_err_t err;
};

/*
 * Each layer is downloaded and unpacked by one worker thread (several when
 * the source's streams may be read in parallel, else one): the unpacker
 * reads the bytes as they arrive while they are also written to the content
 * store, so a layer costs max(download, unpack) rather than their sum.
 * Snapshots are committed in layer order (a child's snapshot names its
 * committed parent); see pull_layer() for how a layer whose parent is not
 * committed yet is unpacked meanwhile.
 */
struct pipeline {
    struct import *im;
    struct layer *layers;
    size_t n, next;
    int stop;             /* a layer failed: take no more */
    pthread_mutex_t lock; /* the fields above and every layer's done/rc/err/size */
    pthread_cond_t done;  /* a layer was committed or failed */
};

/* 1 when layer @i can be prepared on its parent now (no parent, or it is committed). */
static int parent_ready(struct pipeline *q, size_t i)
{
    int ready;

    if (i == 0)
        return 1;
    pthread_mutex_lock(&q->lock);
    ready = q->layers[i - 1].done && q->layers[i - 1].rc == 0;
    pthread_mutex_unlock(&q->lock);
    return ready;
}

/* Wait until layer @i's parent is committed: 0, or -ECANCELED when it failed. */
static int wait_parent(struct pipeline *q, size_t i)
{
    int rc;

    if (i == 0)
        return 0;
    pthread_mutex_lock(&q->lock);
    while (!q->layers[i - 1].done)
        pthread_cond_wait(&q->done, &q->lock);
    rc = q->layers[i - 1].rc;
    pthread_mutex_unlock(&q->lock);
    return rc < 0 ? -ECANCELED : 0;
}

/* Does storage already hold this layer's snapshot? */
static int layer_present(struct import *im, const char *chain_id)
{
    berth_snapshot_info_t info = { .struct_size = sizeof(info) };
    return im->tops->stat(im->stg->priv, chain_id, 0, &info, NULL) == 0 &&
           info.kind == BERTH_SNAPSHOT_KIND_COMMITTED;
}

/*
 * Make what was written to @fd's filesystem up to @written_ns durable. A
 * syncfs() flushes everything dirty when it starts, so one that began
 * after @written_ns and succeeded (they run one at a time: holding the lock
 * means it is over) covers this layer too: layers that finish unpacking
 * together share a flush instead of each paying one.
 */
static int layer_sync(struct import *im, int fd, int64_t written_ns, berth_err_t *err)
{
    struct stat st;
    int64_t start;
    int r = 0;

    if (fstat(fd, &st) < 0)
        return berth_err_set(err, -errno, "unpacked layer: %s", strerror(errno));
    pthread_mutex_lock(&im->sync_lock);
    if (im->synced_from_ns > written_ns && im->synced_dev == st.st_dev) {
        pthread_mutex_unlock(&im->sync_lock);
        return 0;
    }
    start = berth__mono_ns();
    if (syncfs(fd) < 0) {
        r = berth_err_set(err, -errno, "syncing the unpacked layer: %s", strerror(errno));
    } else {
        im->synced_from_ns = start;
        im->synced_dev = st.st_dev;
    }
    pthread_mutex_unlock(&im->sync_lock);
    return r;
}

static int record_layer(struct import *im, const struct layer *l, const char *parent, uint64_t size,
                        berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(im->e);
    _cleanup_json_ json_t *doc = NULL;
    berth_txn_t *txn = NULL;
    int r;

    doc = json_pack("{sisssssssIss}", "v", 1, "chain_id", l->chain_id, "diff_id", l->diff_id,
                    "parent", parent ? parent : "", "size", (json_int_t)size, "driver",
                    im->stg->desc->name);
    if (!doc)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    if ((r = berth__layer_record_put_in(txn, doc, err)) < 0) {
        berth__store_txn_abort(txn);
        return r;
    }
    return berth__store_txn_commit(txn, err);
}

/*
 * The stream the unpacker reads while the blob downloads: first the bytes an
 * earlier attempt left in the ingest file, then the source's, each chunk
 * written to the content writer (which hashes it) before the unpacker gets
 * it. A transient failure of the source is resumed here with a fetch from
 * the writer's offset, unseen by the unpacker. Nothing here is verified: the
 * writer's commit checks size and digest once the unpacker is done, before
 * the snapshot is committed.
 */
struct tee {
    berth_stream_t s;
    struct import *im;
    struct pipeline *q;
    const struct layer *l;
    berth_content_writer_t *w;
    berth_stream_t *src;
    int64_t replay, replay_end; /* the ingest file's bytes still to hand over */
    int64_t last_report;
    int resumes;
    int src_failed; /* the source failed for good: keep the partial bytes */
};

static int64_t tee_read(berth_stream_t *s, void *buf, size_t len, berth_err_t *err)
{
    struct tee *t = s->priv;
    const berth_descriptor_t *d = &t->l->desc;
    berth_err_t e2 = { 0 };
    int64_t n;
    int r;

    if (__atomic_load_n(&t->q->stop, __ATOMIC_RELAXED)) {
        /* An earlier layer failed: stop downloading; what arrived stays for a resume. */
        t->src_failed = 1;
        return berth_err_set(err, -ECANCELED, "%s: cancelled after an earlier layer failed",
                             d->digest);
    }
    if (t->replay < t->replay_end) {
        n = berth__content_writer_read_at(t->w, buf, len, t->replay, err);
        if (n == 0)
            n = berth_err_set(err, -EIO, "ingest %s: shorter than written", d->digest);
        if (n > 0)
            t->replay += n;
        return n;
    }
    while ((n = t->src->read(t->src, buf, len, &e2)) < 0) {
        int64_t off = berth__content_writer_offset(t->w);
        if (!retryable((int)n) || ++t->resumes >= FETCH_ATTEMPTS) {
            t->src_failed = 1;
            if (err)
                *err = e2;
            return berth_err_prefix(err, (int)n, d->digest);
        }
        t->src->close(t->src);
        t->src = NULL;
        pthread_mutex_lock(&t->im->lock);
        r = t->im->sops->fetch(t->im->req->source->priv, t->im->req->session, d, off, 0, &t->src,
                               &e2);
        pthread_mutex_unlock(&t->im->lock);
        if (r < 0) {
            /* -ESPIPE too: the unpacker has the bytes before @off, a restart can't help. */
            t->src_failed = 1;
            if (err)
                *err = e2;
            return berth_err_prefix(err, r, d->digest);
        }
    }
    if (n > 0) {
        if ((r = berth__content_writer_write(t->w, buf, (size_t)n, err)) < 0)
            return r;
        /* Written and hashed: now the unpacker may have it. */
        int64_t off = berth__content_writer_offset(t->w);
        if (off - t->last_report >= (256 << 10) || off == d->size) {
            progress(t->im, t->l->pid, is_load(t->im) ? "Loading layer" : "Downloading", off,
                     d->size);
            t->last_report = off;
        }
    }
    return n;
}

static void tee_close(berth_stream_t *s)
{
    (void)s; /* the tee lives on pull_layer's stack and is taken apart there */
}

/*
 * Move what was unpacked into the directory @src into the empty directory
 * @dst of the same filesystem: every entry by rename, then what the layer
 * set on the root itself (xattrs such as an opaque marker always; owner,
 * mode and times only when the layer had a root entry, else @dst keeps what
 * the driver gave it from the parent). @st is @src's stat from before the
 * renames changed its times.
 */
static int move_tree(int src, int dst, const struct stat *st, int root_entry, berth_err_t *err)
{
    _cleanup_free_ char *names = NULL;
    ssize_t len;
    int moved;

    do {
        DIR *d;
        struct dirent *de;
        int fd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || !(d = fdopendir(fd))) {
            if (fd >= 0)
                close(fd);
            return berth_err_set(err, -errno, "unpacked layer: %s", strerror(errno));
        }
        /* Renaming while reading the directory may hide entries: read it again until empty. */
        moved = 0;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (renameat2(src, de->d_name, dst, de->d_name, RENAME_NOREPLACE) < 0) {
                int e = errno;
                closedir(d);
                return berth_err_set(err, -e, "unpacked layer: moving %s: %s", de->d_name,
                                     strerror(e));
            }
            moved = 1;
        }
        closedir(d);
    } while (moved);

    len = flistxattr(src, NULL, 0);
    if (len > 0 && (names = malloc((size_t)len)) &&
        (len = flistxattr(src, names, (size_t)len)) > 0) {
        for (char *k = names; k < names + len; k += strlen(k) + 1) {
            _cleanup_free_ char *v = NULL;
            ssize_t vl = fgetxattr(src, k, NULL, 0);
            if (vl < 0 || !(v = malloc(vl ? (size_t)vl : 1)) ||
                (vl = fgetxattr(src, k, v, (size_t)vl)) < 0 ||
                fsetxattr(dst, k, v, (size_t)vl, 0) < 0)
                return berth_err_set(err, errno ? -errno : -ENOMEM, "unpacked layer: xattr %s: %s",
                                     k, strerror(errno ? errno : ENOMEM));
        }
    } else if (len < 0 && errno != ENOTSUP) {
        return berth_err_set(err, -errno, "unpacked layer: xattrs: %s", strerror(errno));
    }
    if (root_entry) {
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (fchown(dst, st->st_uid, st->st_gid) < 0 || fchmod(dst, st->st_mode & 07777) < 0 ||
            futimens(dst, ts) < 0)
            return berth_err_set(err, -errno, "unpacked layer: root directory: %s",
                                 strerror(errno));
    }
    return 0;
}

/* Prepare snapshot @key on @parent (NULL: a base) and open its diff directory. */
static int prepare_snapshot(struct import *im, const char *key, const char *parent, int *ret_fd,
                            berth_err_t *err)
{
    berth_mount_list_t *mounts = NULL;
    const char *dir;
    int fd, r;

    pthread_mutex_lock(&im->stg_lock);
    r = im->tops->prepare(im->stg->priv, key, parent, NULL, 0, &mounts, err);
    berth_mount_list_free(mounts);
    if (r < 0) {
        pthread_mutex_unlock(&im->stg_lock);
        return berth_err_prefix(err, r, im->stg->desc->name);
    }
    dir = BERTH_OPS_HAS(im->tops, berth_storage_ops_t, diff_dir)
              ? im->tops->diff_dir(im->stg->priv, key)
              : NULL;
    if (!dir) {
        r = berth_err_set(err, -ENOTSUP, "storage driver %s gives no directory to unpack into",
                          im->stg->desc->name);
    } else if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        r = berth_err_set(err, -errno, "%s: %s", dir, strerror(errno));
    } else {
        *ret_fd = fd;
        r = 0;
    }
    if (r < 0)
        im->tops->remove(im->stg->priv, key, 0, NULL);
    pthread_mutex_unlock(&im->stg_lock);
    return r;
}

static void remove_snapshot(struct import *im, const char *key)
{
    pthread_mutex_lock(&im->stg_lock);
    im->tops->remove(im->stg->priv, key, 0, NULL);
    pthread_mutex_unlock(&im->stg_lock);
}

/*
 * Download, verify, unpack and commit layer @i, recording it.
 *
 * With a driver whose diffs don't depend on the parent's files (overlay
 * whiteouts: the diff is the layer alone), a layer above the first is
 * unpacked into a base snapshot of its own while it downloads, whatever its
 * parent's state, and moved into a snapshot prepared on the parent once both
 * are verified and the parent is committed. So layers unpack in parallel,
 * and an interrupted pull leaves no half-unpacked child on a committed layer
 * (which would keep the collector from removing that layer). Other drivers
 * (vfs: the diff is applied onto a copy of the parent) unpack onto the
 * committed parent; while it is not committed yet, the blob is downloaded
 * into the store and unpacked from there afterwards.
 * Both the blob's digest and the DiffID are checked before the snapshot is
 * committed; a failure removes the snapshot, and a blob that does not match
 * its digest leaves no bytes behind.
 */
static int pull_layer(struct pipeline *q, size_t i, berth_err_t *err)
{
    struct import *im = q->im;
    struct layer *l = &q->layers[i];
    const char *parent = i ? q->layers[i - 1].chain_id : NULL;
    int independent = (im->stg_caps & BERTH_STORAGE_CAP_WHITEOUT_OVERLAY) != 0;
    int staged = independent && i > 0, fd = -1, r;
    struct tee t = { .im = im, .q = q, .l = l };
    struct berth__layer_result res = { 0 };
    berth_stream_t *in = NULL;
    berth_err_t e2 = { 0 };
    char key[64], key2[64];
    struct stat st;

    if (!independent && !parent_ready(q, i)) {
        if ((r = fetch_blob(im, &l->desc, l->pid, err)) < 0)
            return r;
        if ((r = wait_parent(q, i)) < 0)
            return r;
    }

    /* The input: the network, through the content writer, or the stored blob. */
    r = berth__content_writer_open(im->cs, l->desc.digest, l->desc.size, &t.w, &t.replay_end, err);
    if (r == 0) {
        pthread_mutex_lock(&im->lock);
        r = im->sops->fetch(im->req->source->priv, im->req->session, &l->desc, t.replay_end, 0,
                            &t.src, &e2);
        pthread_mutex_unlock(&im->lock);
        if (r < 0) {
            /* fetch_blob below retries, restarts a source that can't resume, and reports. */
            berth__content_writer_close(t.w, 1);
            t.w = NULL;
        }
    } else if (r != -EEXIST && r != -EAGAIN) {
        return r;
    }
    if (t.w) {
        t.s.struct_size = sizeof(t.s);
        t.s.size = l->desc.size;
        t.s.read = tee_read;
        t.s.close = tee_close;
        t.s.priv = &t;
        t.last_report = t.replay_end;
        in = &t.s;
    } else {
        if ((r = fetch_blob(im, &l->desc, l->pid, err)) < 0 ||
            (r = berth__content_reader(im->cs, l->desc.digest, &in, err)) < 0)
            return r;
    }

    if (random_key(key, sizeof(key)) < 0) {
        r = berth_err_set(err, -EIO, "getrandom failed");
        goto out_input;
    }
    if ((r = prepare_snapshot(im, key, staged ? NULL : parent, &fd, err)) < 0)
        goto out_input;
    if (!t.w)
        progress(im, l->pid, "Extracting", 0, l->desc.size);
    r = berth__layer_apply(
        in, fd, BERTH__LAYER_WRITEBACK | (independent ? BERTH__LAYER_WHITEOUT_OVERLAY : 0), &res,
        err);
    if (r < 0)
        berth_err_prefix(err, r, l->pid);

    if (t.w) {
        /*
         * The blob's digest is checked even when the unpacker stopped early:
         * a corrupt blob fails as one (that is the cause), and a good one
         * is kept as a verified blob, as when it was downloaded first.
         */
        char buf[1 << 16];
        berth_err_t e3 = { 0 };
        int64_t n = 0;

        if (r < 0 && !t.src_failed) {
            t.replay = t.replay_end;
            while ((n = tee_read(&t.s, buf, sizeof(buf), &e3)) > 0)
                ;
        }
        if (t.src)
            t.src->close(t.src);
        t.src = NULL;
        if (!t.src_failed && n == 0) {
            int rc;
            progress(im, l->pid, "Verifying Checksum", l->desc.size, l->desc.size);
            if ((rc = berth__content_writer_commit(t.w, &e3)) < 0) {
                if (err)
                    *err = e3;
                r = rc;
            } else {
                progress(im, l->pid, "Download complete", l->desc.size, l->desc.size);
            }
        }
        /* Bytes the source failed to finish are kept for the next attempt. */
        berth__content_writer_close(t.w, t.src_failed);
        t.w = NULL;
    } else {
        in->close(in);
    }
    in = NULL;
    if (r < 0)
        goto fail;
    if (strcmp(res.diff_id, l->diff_id) != 0) {
        r = berth_err_set(err, -EBADMSG,
                          "layer %zu (%s): content has DiffID %s but the config says %s", i,
                          l->desc.digest, res.diff_id, l->diff_id);
        goto fail;
    }
    /*
     * The layer's files and directories on disk before its snapshot is
     * committed and recorded: a committed layer is reused by every later
     * pull without being unpacked again, so after a power loss it must not
     * miss data. Most of it is on its way already (BERTH__LAYER_WRITEBACK);
     * a staged layer syncs here, while it would only wait for its parent.
     */
    if ((r = layer_sync(im, fd, berth__mono_ns(), err)) < 0) {
        berth_err_prefix(err, r, l->pid);
        goto fail;
    }

    if (staged) {
        int fd2 = -1;
        if ((r = wait_parent(q, i)) < 0)
            goto fail;
        if (fstat(fd, &st) < 0) {
            r = berth_err_set(err, -errno, "unpacked layer: %s", strerror(errno));
            goto fail;
        }
        if (random_key(key2, sizeof(key2)) < 0) {
            r = berth_err_set(err, -EIO, "getrandom failed");
            goto fail;
        }
        if ((r = prepare_snapshot(im, key2, parent, &fd2, err)) < 0)
            goto fail;
        r = move_tree(fd, fd2, &st, res.root_entry, err);
        /* The moved entries' new names (their contents were synced above). */
        if (r == 0 && fsync(fd2) < 0)
            r = berth_err_set(err, -errno, "%s: syncing the layer's directory: %s", l->pid,
                              strerror(errno));
        close(fd2);
        remove_snapshot(im, key);
        memcpy(key, key2, sizeof(key));
        if (r < 0)
            goto fail;
    }
    close(fd);
    fd = -1;

    pthread_mutex_lock(&im->stg_lock);
    r = im->tops->commit(im->stg->priv, l->chain_id, key, 0, err);
    if (r == -EEXIST) {
        /* Another import unpacked the same layer meanwhile: use that one. */
        im->tops->remove(im->stg->priv, key, 0, NULL);
        r = 0;
    }
    if (r == 0) {
        berth_snapshot_info_t info = { .struct_size = sizeof(info) };
        l->size = im->tops->stat(im->stg->priv, l->chain_id, 0, &info, NULL) == 0 && info.size_bytes
                      ? info.size_bytes
                      : res.uncompressed_size;
    }
    pthread_mutex_unlock(&im->stg_lock);
    if (r < 0) {
        berth_err_prefix(err, r, im->stg->desc->name);
        remove_snapshot(im, key);
        return r;
    }
    if ((r = record_layer(im, l, parent, l->size, err)) < 0)
        return r;
    progress(im, l->pid, is_load(im) ? "Load complete" : "Pull complete", l->desc.size,
             l->desc.size);
    return 0;

out_input:
    if (t.w) {
        if (t.src)
            t.src->close(t.src);
        berth__content_writer_close(t.w, 1);
    } else if (in) {
        in->close(in);
    }
    return r;
fail:
    if (fd >= 0)
        close(fd);
    remove_snapshot(im, key);
    return r;
}

static void *layer_worker(void *arg)
{
    struct pipeline *q = arg;

    for (;;) {
        struct layer *l;
        berth_err_t e2 = { 0 };
        size_t i;
        int rc;

        pthread_mutex_lock(&q->lock);
        while (q->next < q->n && q->layers[q->next].done)
            q->next++;
        i = q->next++;
        l = !q->stop && i < q->n ? &q->layers[i] : NULL;
        pthread_mutex_unlock(&q->lock);
        if (!l)
            return NULL;
        rc = pull_layer(q, i, &e2);
        pthread_mutex_lock(&q->lock);
        l->rc = rc;
        l->err = e2;
        l->done = 1;
        if (rc < 0)
            __atomic_store_n(&q->stop, 1, __ATOMIC_RELAXED); /* also read by the streams */
        pthread_cond_broadcast(&q->done);
        pthread_mutex_unlock(&q->lock);
    }
}

static int check_layer_type(const char *mt, size_t i, berth_err_t *err)
{
    static const char *const ok[] = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    };
    for (size_t k = 0; k < BERTH_ARRAY_SIZE(ok); k++)
        if (strcmp(mt, ok[k]) == 0)
            return 0;
    return berth_err_set(err, -ENOTSUP, "layer %zu has unsupported media type \"%s\"", i, mt);
}

/* Merge what the store already knows of image @id (tags, digests) into @doc. */
static void merge_existing(berth_txn_t *txn, const char *id, json_t *doc)
{
    _cleanup_json_ json_t *old = NULL;
    const char *members[] = { "repo_tags", "repo_digests" };
    size_t i;
    json_t *v;

    if (berth__store_get(txn, BERTH_DB_IMAGES, id, &old, NULL) < 0)
        return;
    for (size_t m = 0; m < 2; m++) {
        json_t *dst = json_object_get(doc, members[m]);
        json_array_foreach (json_object_get(old, members[m]), i, v) {
            size_t k;
            json_t *w;
            int dup = 0;
            json_array_foreach (dst, k, w)
                dup |= json_equal(v, w);
            if (!dup)
                json_array_append(dst, v);
        }
    }
    json_object_set(doc, "loaded_ns", json_object_get(old, "loaded_ns"));
}

int berth__image_import(berth_engine_t *e, const berth_import_req_t *req, char ret_id[72],
                        berth_err_t *err)
{
    struct import im = { .e = e,
                         .req = req,
                         .lock = PTHREAD_MUTEX_INITIALIZER,
                         .stg_lock = PTHREAD_MUTEX_INITIALIZER,
                         .sync_lock = PTHREAD_MUTEX_INITIALIZER };
    berth_descriptor_t target = { .struct_size = sizeof(target) };
    berth_descriptor_t mdesc, cdesc;
    _cleanup_json_ json_t *top = NULL, *manifest = NULL, *config = NULL, *doc = NULL;
    _cleanup_free_ struct layer *layers = NULL;
    berth_store_t *store = berth__engine_store(e);
    json_t *jlayers, *diff_ids, *jl;
    berth_txn_t *txn = NULL;
    uint64_t total_size = 0;
    struct pipeline q = { .lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };
    pthread_t th[PARALLEL_DOWNLOADS];
    size_t n, i, nth = 0, want;
    int lockfd = -1, r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "engine opened without a store");
    im.sops = req->source->ops;
    if ((r = berth__engine_content(e, &im.cs, err)) < 0 ||
        (r = berth__engine_storage(e, &im.stg, err)) < 0)
        return r;
    im.tops = im.stg->ops;
    if ((r = berth__driver_probe(im.stg, &im.stg_caps, err)) != 0)
        return r < 0 ? r : berth_err_set(err, -ENOTSUP, "storage driver declined");
    reclaim_stale(&im);
    /* Blobs we fetch belong to no image until the end: keep the collector out. */
    if ((r = berth__content_lock(im.cs, 0, &lockfd, err)) < 0)
        return r;

    r = im.sops->resolve(req->source->priv, req->session, req->src_ref, 0, &target, err);
    if (r < 0)
        goto out;
    if ((r = load_json(&im, &target, &top, err)) < 0)
        goto out;
    sniff_media_type(&target, top);
    if (strcmp(target.media_type, MT_DOCKER_V1) == 0 ||
        strcmp(target.media_type, MT_DOCKER_V1S) == 0) {
        r = berth_err_set(err, -ENOTSUP, "%s: schema 1 manifests are not supported",
                          req->src_ref ? req->src_ref : target.digest);
        goto out;
    }
    if (is_index(target.media_type)) {
        if ((r = pick_platform(&im, top, &mdesc, err)) < 0)
            goto out;
        if ((r = load_json(&im, &mdesc, &manifest, err)) < 0)
            goto out;
        sniff_media_type(&mdesc, manifest);
    } else {
        mdesc = target;
        manifest = json_incref(top);
    }
    if (!is_manifest(mdesc.media_type)) {
        r = berth_err_set(err, -ENOTSUP, "%s: unsupported manifest media type \"%s\"", mdesc.digest,
                          mdesc.media_type);
        goto out;
    }
    if (json_integer_value(json_object_get(manifest, "schemaVersion")) != 2) {
        r = berth_err_set(err, -EBADMSG, "manifest %s: schemaVersion is not 2", mdesc.digest);
        goto out;
    }
    if ((r = desc_from_json(json_object_get(manifest, "config"), &cdesc, "manifest config", err)) <
        0)
        goto out;
    if (strcmp(cdesc.media_type, "application/vnd.oci.image.config.v1+json") != 0 &&
        strcmp(cdesc.media_type, "application/vnd.docker.container.image.v1+json") != 0) {
        r = berth_err_set(err, -ENOTSUP, "not a container image: config media type \"%s\"",
                          cdesc.media_type);
        goto out;
    }
    if ((r = load_json(&im, &cdesc, &config, err)) < 0)
        goto out;

    jlayers = json_object_get(manifest, "layers");
    diff_ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
    if (!json_is_array(jlayers) || !json_is_array(diff_ids)) {
        r = berth_err_set(err, -EBADMSG, "image %s: no layers or no rootfs.diff_ids", cdesc.digest);
        goto out;
    }
    n = json_array_size(jlayers);
    if (n != json_array_size(diff_ids)) {
        r = berth_err_set(err, -EBADMSG,
                          "image %s: the manifest has %zu layers but the config %zu DiffIDs",
                          cdesc.digest, n, json_array_size(diff_ids));
        goto out;
    }
    if (n > 4096) {
        r = berth_err_set(err, -E2BIG, "image %s: %zu layers is too many", cdesc.digest, n);
        goto out;
    }
    layers = calloc(n ? n : 1, sizeof(*layers));
    if (!layers) {
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach (jlayers, i, jl) {
        struct layer *l = &layers[i];
        const char *did = json_string_value(json_array_get(diff_ids, i));
        char what[32];
        snprintf(what, sizeof(what), "layer %zu", i);
        if ((r = desc_from_json(jl, &l->desc, what, err)) < 0 ||
            (r = check_layer_type(l->desc.media_type, i, err)) < 0)
            goto out;
        if (!did || !berth__digest_valid(did)) {
            r = berth_err_set(err, -EBADMSG, "image %s: invalid DiffID %zu", cdesc.digest, i);
            goto out;
        }
        snprintf(l->diff_id, sizeof(l->diff_id), "%s", did);
        if (i == 0)
            snprintf(l->chain_id, sizeof(l->chain_id), "%s", did);
        else
            berth__chain_id_next(layers[i - 1].chain_id, did, l->chain_id, NULL);
        short_id(l->desc.digest, l->pid);
        l->present = layer_present(&im, l->chain_id);
        if (!l->present && req->ret_downloaded)
            *req->ret_downloaded = 1;
        progress(&im, l->pid, l->present ? "Already exists" : "Pulling fs layer", -1, -1);
    }
    /* Layers already unpacked: a snapshot without its record (a crash between the two) gets it now. */
    for (i = 0; i < n; i++) {
        struct layer *l = &layers[i];
        _cleanup_json_ json_t *rec = NULL;

        if (!l->present)
            continue;
        if (berth__store_txn_begin(store, 0, &txn, NULL) == 0) {
            berth__layer_record_get_in(txn, l->chain_id, &rec, NULL);
            berth__store_txn_abort(txn);
            txn = NULL;
        }
        if (rec) {
            l->size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
        } else {
            berth_snapshot_info_t info = { .struct_size = sizeof(info) };
            im.tops->stat(im.stg->priv, l->chain_id, 0, &info, NULL);
            l->size = info.size_bytes;
            if ((r = record_layer(&im, l, i ? layers[i - 1].chain_id : NULL, l->size, err)) < 0)
                goto out;
        }
        l->done = 1;
    }
    r = 0;
    q.im = &im;
    q.layers = layers;
    q.n = n;
    want = (req->source->caps & BERTH_IMAGE_CAP_PARALLEL_STREAMS) ? PARALLEL_DOWNLOADS : 1;
    for (i = 0; i < want && i < n; i++) {
        if (pthread_create(&th[nth], NULL, layer_worker, &q) != 0)
            break;
        nth++;
    }
    if (nth == 0)
        layer_worker(&q); /* no thread: every layer in turn, here */
    for (size_t t = 0; t < nth; t++)
        pthread_join(th[t], NULL);
    /* The first failure in layer order; layers after it may only have given up (-ECANCELED). */
    for (i = 0; i < n; i++) {
        struct layer *l = &layers[i];
        if (l->done && l->rc < 0 && (r == 0 || (r == -ECANCELED && l->rc != -ECANCELED))) {
            r = l->rc;
            if (err)
                *err = l->err;
        }
        if (r == 0 && !l->done)
            r = berth_err_set(err, -EIO, "layer %zu was not unpacked", i);
        total_size += l->size;
    }
    if (r < 0)
        goto out;

    /* The image record, its tags and the event: one transaction. */
    {
        json_t *tags = json_array(), *digests = json_array(), *ldocs = json_array();
        const char *cfg_os = json_string_value(json_object_get(config, "os"));
        const char *cfg_arch = json_string_value(json_object_get(config, "architecture"));
        const char *cfg_var = json_string_value(json_object_get(config, "variant"));
        const char *created = json_string_value(json_object_get(config, "created"));

        doc = json_pack("{sisssosososssssssssIsssI}", "v", BERTH_IMAGE_RECORD_V, "id", cdesc.digest,
                        "layers", ldocs, "repo_tags", tags, "repo_digests", digests, "os",
                        cfg_os ? cfg_os : "", "architecture", cfg_arch ? cfg_arch : "", "variant",
                        cfg_var ? cfg_var : "", "created", created ? created : "", "size",
                        (json_int_t)total_size, "storage", im.stg->desc->name, "loaded_ns",
                        (json_int_t)berth__now_ns());
        if (!doc) {
            r = berth_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        json_object_set_new(doc, "target", desc_to_json(&target));
        json_object_set_new(doc, "manifest", desc_to_json(&mdesc));
        json_object_set_new(doc, "config", desc_to_json(&cdesc));
        for (i = 0; i < n; i++) {
            json_t *ld = desc_to_json(&layers[i].desc);
            json_object_set_new(ld, "diff_id", json_string(layers[i].diff_id));
            json_object_set_new(ld, "chain_id", json_string(layers[i].chain_id));
            json_array_append_new(ldocs, ld);
        }
        for (char *const *t = req->tags; t && *t; t++)
            json_array_append_new(tags, json_string(*t));
        if (req->repo) {
            char rd[600];
            snprintf(rd, sizeof(rd), "%s@%s", req->repo, target.digest);
            json_array_append_new(digests, json_string(rd));
        }
    }
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        goto out;
    merge_existing(txn, cdesc.digest, doc);
    if ((r = berth__image_put_in(txn, doc, req->action ? req->action : "pull", err)) < 0) {
        berth__store_txn_abort(txn);
        goto out;
    }
    if ((r = berth__store_txn_commit(txn, err)) < 0)
        goto out;
    if (ret_id)
        memcpy(ret_id, cdesc.digest, 72); /* a valid digest is 71 bytes and its NUL */
    r = 0;
out:
    berth__content_unlock(lockfd);
    return r;
}
