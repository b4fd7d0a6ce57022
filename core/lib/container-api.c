/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public container calls of berth/engine.h that work on records alone:
 * create, list, inspect, remove. Each mutation is one write transaction
 * (containers.c, lifecycle.c); everything a user can get wrong is checked
 * before the record is written, so a refused create leaves no trace.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <berth/engine.h>
#include <berth/isolation.h>

#include "container-storage.h"
#include "container-body.h"
#include "containers.h"
#include "content.h"
#include "engine-internal.h"
#include "image-import.h"
#include "images.h"
#include "lifecycle.h"
#include "network-api.h"
#include "networks.h"
#include "ocispec.h"
#include "shim-client.h"
#include "util.h"
#include "volume-api.h"
#include "volumes.h"

/* Docker-style generated names: an adjective and a noun from the harbour. */
static const char *const adjectives[] = {
    "brave", "calm",   "eager",  "fond",    "gentle", "happy",  "keen",   "lucid",
    "merry", "noble",  "proud",  "quiet",   "rapid",  "steady", "swift",  "tidy",
    "bold",  "clever", "daring", "festive", "jolly",  "modest", "serene", "vivid",
};
static const char *const nouns[] = {
    "anchor", "beacon", "bollard",  "buoy",  "capstan", "dock",   "ferry",    "galley",
    "harbor", "hull",   "jetty",    "keel",  "lantern", "marina", "mooring",  "pier",
    "quay",   "rudder", "schooner", "skiff", "tug",     "wharf",  "windlass", "yawl",
};

/*
 * The 576 pairs run out long before a host's containers do: after @retry
 * names already taken, a number follows the pair (below 10, as Docker's
 * first retry, then below 100, ..., at most 10,000), so the space grows
 * with the crowding instead of failing the create.
 */
static int random_name(char *buf, size_t len, int retry)
{
    static const unsigned bound[] = { 1, 10, 100, 1000, 10000 };
    unsigned char r[2];
    uint32_t n;

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r) ||
        getrandom(&n, sizeof(n), 0) != (ssize_t)sizeof(n))
        return -EIO;
    if (retry <= 0)
        snprintf(buf, len, "%s_%s", adjectives[r[0] % BERTH_ARRAY_SIZE(adjectives)],
                 nouns[r[1] % BERTH_ARRAY_SIZE(nouns)]);
    else
        snprintf(buf, len, "%s_%s%u", adjectives[r[0] % BERTH_ARRAY_SIZE(adjectives)],
                 nouns[r[1] % BERTH_ARRAY_SIZE(nouns)], n % bound[retry < 4 ? retry : 4]);
    return 0;
}

static int check_isolation(berth_engine_t *e, const char *name, berth_err_t *err)
{
    berth_registry_t *reg;
    char loaded[256] = "";
    size_t off = 0;

    if (berth__engine_driver(e, BERTH_KIND_ISOLATION, name) || !(reg = berth__engine_registry(e)))
        return 0;
    for (size_t i = 0; i < berth__registry_count(reg); i++) {
        berth_driver_t *d = berth__registry_driver(reg, i);
        int n;
        if (d->kind != BERTH_KIND_ISOLATION)
            continue;
        n = snprintf(loaded + off, sizeof(loaded) - off, "%s%s", off ? ", " : "", d->desc->name);
        if (n > 0 && (size_t)n < sizeof(loaded) - off)
            off += (size_t)n;
    }
    return berth_err_set(err, -EINVAL,
                         "invalid isolation \"%s\": no such isolation driver is loaded "
                         "(available: %s)",
                         name, off ? loaded : "none");
}

/* Drop the snapshot of a record that is not (or no longer) stored; best effort. */
static void release_storage(berth_engine_t *e, json_t *doc)
{
    if (doc && json_object_get(doc, "storage"))
        berth__container_storage_release(berth__engine_loaded(e),
                                         berth__engine_config(e)->plugin_dirs, doc, NULL);
}

/*
 * An image-backed root filesystem: resolve the image, merge its config into
 * @config and prepare the container's snapshot. *ret_storage gets the
 * record's "storage" member; the caller releases the snapshot if the record
 * is not written after all.
 */
static int image_rootfs(berth_engine_t *e, const char *id, const char *image, json_t *config,
                        json_t **ret_storage, char ret_image_id[72], berth_err_t *err)
{
    _cleanup_json_ json_t *img = NULL, *cfg = NULL;
    _cleanup_free_ char *buf = NULL;
    berth_txn_t *txn = NULL;
    berth_content_t *cs;
    berth_mount_list_t *mounts = NULL;
    const berth_storage_ops_t *ops;
    const char *sname, *parent = NULL, *cd;
    berth_driver_t *d;
    json_t *layers, *mj;
    json_error_t je;
    size_t len;
    int r;

    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__image_get_in(txn, image, &img, err);
    berth__store_txn_abort(txn);
    if (r < 0)
        return r;
    cd = json_string_value(json_object_get(json_object_get(img, "config"), "digest"));
    if ((r = berth__engine_content(e, &cs, err)) < 0 ||
        (r = berth__content_read_all(cs, cd, 8u << 20, &buf, &len, err)) < 0)
        return berth_err_prefix(err, r, "image config");
    cfg = json_loadb(buf, len, 0, &je);
    if (!cfg)
        return berth_err_set(err, -EBADMSG, "image config %s: %s", cd, je.text);
    berth__create_merge_image_config(config, json_object_get(cfg, "config"));

    sname = json_string_value(json_object_get(img, "storage"));
    d = berth__engine_driver(e, BERTH_KIND_STORAGE, sname);
    if (!d)
        return berth_err_set(err, -ENOENT, "image %s: its storage driver \"%s\" is not loaded",
                             image, sname ? sname : "");
    ops = d->ops;
    layers = json_object_get(img, "layers");
    if (json_array_size(layers) > 0)
        parent = json_string_value(
            json_object_get(json_array_get(layers, json_array_size(layers) - 1), "chain_id"));
    if ((r = ops->prepare(d->priv, id, parent, NULL, 0, &mounts, err)) < 0)
        return berth_err_prefix(err, r, sname);
    mj = berth__mounts_to_json(mounts);
    berth_mount_list_free(mounts);
    *ret_storage = mj ? json_pack("{ssssso}", "driver", sname, "key", id, "mounts", mj) : NULL;
    if (!*ret_storage) {
        ops->remove(d->priv, id, 0, NULL);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    snprintf(ret_image_id, 72, "%s", json_string_value(json_object_get(img, "id")));
    return 0;
}

/*
 * A new record from a create body; validated as far as anything can be
 * before running. The translation itself is container-body.c's; here is
 * what needs the engine: the isolation driver, the rootfs on disk, the
 * image and its snapshot.
 */
static int record_from_body(berth_engine_t *e, const char *id, const char *name, json_t *body,
                            json_t **ret_doc, berth_err_t *err)
{
    const berth_config_t *cfg = berth__engine_config(e);
    _cleanup_json_ json_t *config = NULL, *storage = NULL, *mounts = NULL;
    const char *isolation, *rootfs, *image;
    char image_id[72] = "";
    struct stat st;
    int r;

    if ((r = berth__create_body_parse(body, cfg->default_isolation, &config, &isolation, &rootfs,
                                      &image, err)) < 0)
        return r;
    if ((r = check_isolation(e, isolation, err)) < 0)
        return r;
    if (rootfs) {
        if (stat(rootfs, &st) < 0)
            return berth_err_set(err, -errno, "rootfs %s: %s", rootfs, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return berth_err_set(err, -ENOTDIR, "rootfs %s is not a directory", rootfs);
    } else if ((r = image_rootfs(e, id, image, config, &storage, image_id, err)) < 0) {
        return r;
    }
    /* Volumes and binds, planned: nothing is made before the whole request is checked. */
    if ((r = berth__container_mounts_plan(e, json_object_get(body, "HostConfig"), config, &mounts,
                                          err)) == 0)
        r = berth__create_record_build(id, name, isolation, config,
                                       json_object_get(body, "HostConfig"), rootfs, storage,
                                       storage ? image_id : NULL, mounts, ret_doc, err);
    /* Networks: resolved (the default one made on first use) before anything else is made. */
    if (r == 0 && (r = berth__container_networks_plan(e, body, *ret_doc, err)) < 0) {
        json_decref(*ret_doc);
        *ret_doc = NULL;
    }
    /* The volumes, and their copy of the image's files, before the record names them. */
    if (r == 0 && (r = berth__container_volumes_make(e, *ret_doc, err)) < 0) {
        json_decref(*ret_doc);
        *ret_doc = NULL;
    }
    if (r < 0 && storage) {
        /* The snapshot was made for a record that will not exist. */
        _cleanup_json_ json_t *tmp = json_pack("{sO}", "storage", storage);
        release_storage(e, tmp);
    }
    return r;
}

/*
 * A create makes the container's snapshot before it commits the record that
 * names it: a process killed in between leaves a snapshot no record names.
 * Every create holds <root>/create.lock shared from the snapshot to the
 * commit, and berth_container_storage_sweep() holds it exclusively, so that
 * what it finds without a record is such a leftover and never a create in
 * flight. Returns the locked descriptor (closing it unlocks).
 */
static int create_lock(berth_engine_t *e, int exclusive, int *ret_fd, berth_err_t *err)
{
    char path[PATH_MAX];
    int fd;

    if (snprintf(path, sizeof(path), "%s/create.lock", berth__engine_config(e)->root) >=
        (int)sizeof(path))
        return berth_err_set(err, -ENAMETOOLONG, "root path too long");
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return berth_err_set(err, -errno, "%s: %s", path, strerror(errno));
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
        if (errno != EINTR) {
            int r = -errno;
            close(fd);
            return berth_err_set(err, r, "%s: lock: %s", path, strerror(-r));
        }
    }
    *ret_fd = fd;
    return 0;
}

struct sweep {
    char (*keys)[BERTH_CONTAINER_ID_LEN + 1];
    size_t n, cap;
};

/* Writable snapshots keyed by a container id: those a create makes. */
static int collect_container_snapshot(const char *name, const berth_snapshot_info_t *info,
                                      void *userdata)
{
    struct sweep *sw = userdata;

    if (info->kind != BERTH_SNAPSHOT_KIND_ACTIVE || !berth__container_id_is_valid(name))
        return 0;
    if (sw->n == sw->cap) {
        size_t cap = sw->cap ? 2 * sw->cap : 64;
        void *p = realloc(sw->keys, cap * sizeof(sw->keys[0]));
        if (!p)
            return -ENOMEM;
        sw->keys = p;
        sw->cap = cap;
    }
    memcpy(sw->keys[sw->n++], name, BERTH_CONTAINER_ID_LEN + 1);
    return 0;
}

BERTH_API int berth_container_storage_sweep(berth_engine_t *e, unsigned *ret_removed,
                                            berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    struct sweep sw = { 0 };
    _cleanup_close_ int lock = -1;
    berth_driver_t *d;
    const berth_storage_ops_t *ops;
    unsigned removed = 0;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__engine_storage(e, &d, err)) < 0)
        return r;
    ops = d->ops;
    if ((r = create_lock(e, 1, &lock, err)) < 0)
        return r;
    if ((r = ops->walk(d->priv, 0, collect_container_snapshot, &sw, err)) < 0) {
        free(sw.keys);
        return r == -ENOMEM ? berth_err_set(err, r, "out of memory") : r;
    }
    for (size_t i = 0; i < sw.n; i++) {
        _cleanup_json_ json_t *doc = NULL;
        if (berth__container_get(store, sw.keys[i], &doc, NULL) != -ENOENT)
            continue;
        if (ops->remove(d->priv, sw.keys[i], 0, NULL) == 0)
            removed++;
    }
    free(sw.keys);
    if (ret_removed)
        *ret_removed = removed;
    return 0;
}

/*
 * berth_container_create and, with @run, berth_container_create_run: pick a
 * name (a generated one that is taken is picked again, a few times), build
 * the record and commit it; with @run, the monitor starts setting the
 * container up from the record while it is committed.
 */
static int create_container(berth_engine_t *e, const char *name, json_t *body, int run,
                            char ret_id[65], berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    char id[BERTH_CONTAINER_ID_LEN + 1], gen[64];
    _cleanup_close_ int lock = -1;
    int r, tries = 0;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (name && *name == '/')
        name++;
    if (name && !berth__container_name_is_valid(name))
        return berth_err_set(err, -EINVAL,
                             "invalid container name \"%s\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                             "allowed",
                             name);
    if ((r = berth__container_id_new(id, err)) < 0)
        return r;
    if ((r = create_lock(e, 0, &lock, err)) < 0)
        return r;
    for (;;) {
        _cleanup_json_ json_t *doc = NULL;
        berth_shim_pending_t pending;
        const char *use = name;
        if (!use) {
            if (random_name(gen, sizeof(gen), tries) < 0)
                return berth_err_set(err, -EIO, "could not generate a name");
            use = gen;
        }
        if ((r = record_from_body(e, id, use, body, &doc, err)) < 0)
            return r;
        /*
         * The monitor sets the container up from the record we hand it while
         * the record is written (a durable commit: two disk flushes); it runs
         * nothing until told the commit happened, and undoes everything if
         * it did not.
         */
        if (run &&
            (r = berth__shim_spawn_pending(e, id, BERTH_SHIM_WAIT_START, doc, &pending, err)) < 0) {
            release_storage(e, doc);
            berth__container_volumes_undo(e, doc);
            return r;
        }
        r = berth__container_create(store, doc, NULL, NULL, err);
        if (r < 0) {
            if (run)
                berth__shim_pending_finish(&pending, 0, NULL, NULL);
            release_storage(e, doc);
            berth__container_volumes_undo(e, doc);
            if (r == -EEXIST && !name && ++tries < 16)
                continue;
            return r;
        }
        memcpy(ret_id, id, sizeof(id));
        /* The container exists now: a failed setup is in its record, as with start. */
        return run ? berth__shim_pending_finish(&pending, 1, NULL, err) : 0;
    }
}

BERTH_API int berth_container_create(berth_engine_t *e, const char *name, json_t *body,
                                     char ret_id[65], berth_err_t *err)
{
    return create_container(e, name, body, 0, ret_id, err);
}

BERTH_API int berth_container_create_run(berth_engine_t *e, const char *name, json_t *body,
                                         char ret_id[65], berth_err_t *err)
{
    return create_container(e, name, body, 1, ret_id, err);
}

/* Docker's inspect times: Go's zero time for "never", else RFC3339Nano. */
static void format_time(int64_t ns, char *buf, size_t len)
{
    if (ns <= 0)
        snprintf(buf, len, "0001-01-01T00:00:00Z");
    else
        berth__format_time(ns, buf, len);
}

BERTH_API void berth_format_time(int64_t ns, char *buf, size_t len)
{
    berth__format_time(ns, buf, len);
}

BERTH_API void berth_human_duration(int64_t ns, char *buf, size_t len)
{
    int64_t s = ns / 1000000000;
    if (s < 1)
        snprintf(buf, len, "Less than a second");
    else if (s == 1)
        snprintf(buf, len, "1 second");
    else if (s < 60)
        snprintf(buf, len, "%lld seconds", (long long)s);
    else if (s / 60 == 1)
        snprintf(buf, len, "About a minute");
    else if (s < 3600)
        snprintf(buf, len, "%lld minutes", (long long)(s / 60));
    else if (s / 3600 == 1)
        snprintf(buf, len, "About an hour");
    else if (s < 48 * 3600)
        snprintf(buf, len, "%lld hours", (long long)(s / 3600));
    else if (s < 14 * 86400)
        snprintf(buf, len, "%lld days", (long long)(s / 86400));
    else if (s < 90 * 86400)
        snprintf(buf, len, "%lld weeks", (long long)(s / (7 * 86400)));
    else if (s < 365 * 86400)
        snprintf(buf, len, "%lld months", (long long)(s / (30 * 86400)));
    else
        snprintf(buf, len, "%lld years", (long long)(s / (365 * 86400)));
}

static json_int_t state_int(json_t *doc, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(doc, "state"), key));
}

/* The human Status column of `ps`. */
static void status_text(const berth_container_summary_t *c, char *buf, size_t len)
{
    char dur[64];
    int64_t now = berth__now_ns();
    uint32_t st = berth__state_parse(c->state);

    switch (st) {
    case BERTH_ST_RUNNING:
    case BERTH_ST_PAUSED:
        berth_human_duration(now - c->started_ns, dur, sizeof(dur));
        /* Docker's order: the health, then the pause. */
        snprintf(buf, len, "Up %s%s%s%s%s", dur, c->health[0] ? " (" : "",
                 !strcmp(c->health, "starting") ? "health: starting" : c->health,
                 c->health[0] ? ")" : "", st == BERTH_ST_PAUSED ? " (Paused)" : "");
        break;
    case BERTH_ST_EXITED:
        berth_human_duration(now - c->finished_ns, dur, sizeof(dur));
        snprintf(buf, len, "Exited (%lld) %s ago", (long long)c->exit_code, dur);
        break;
    case BERTH_ST_REMOVING:
        snprintf(buf, len, "Removal In Progress");
        break;
    default:
        snprintf(buf, len, "Created");
    }
}

static json_t *args_of(json_t *doc)
{
    json_t *config = json_object_get(doc, "config"), *all = json_array(), *v;
    size_t i;
    json_array_foreach (json_object_get(config, "Entrypoint"), i, v) {
        json_array_append(all, v);
    }
    json_array_foreach (json_object_get(config, "Cmd"), i, v) {
        json_array_append(all, v);
    }
    return all;
}

static int newest_first(const void *a, const void *b)
{
    const berth_container_summary_t *ca = *(const berth_container_summary_t *const *)a;
    const berth_container_summary_t *cb = *(const berth_container_summary_t *const *)b;
    return ca->created_ns < cb->created_ns ? 1 : ca->created_ns > cb->created_ns ? -1 : 0;
}

/*
 * Docker's list Ports from inspect's NetworkSettings.Ports: one {IP,
 * PrivatePort, PublicPort, Type} per host binding, and {PrivatePort, Type}
 * for a port exposed but not published, as `docker ps` lists them.
 */
static json_t *list_ports(json_t *ports)
{
    json_t *out = json_array(), *bindings, *b;
    const char *k;
    size_t i;

    json_object_foreach (ports, k, bindings) {
        const char *slash = strchr(k, '/');
        json_int_t private_port = strtol(k, NULL, 10);
        const char *type = slash ? slash + 1 : "tcp";
        if (json_array_size(bindings) == 0) {
            json_array_append_new(
                out, json_pack("{s:I, s:s}", "PrivatePort", private_port, "Type", type));
            continue;
        }
        json_array_foreach (bindings, i, b) {
            const char *ip = json_string_value(json_object_get(b, "HostIp"));
            const char *hp = json_string_value(json_object_get(b, "HostPort"));
            json_array_append_new(
                out, json_pack("{s:s, s:I, s:I, s:s}", "IP", ip && *ip ? ip : "0.0.0.0",
                               "PrivatePort", private_port, "PublicPort",
                               (json_int_t)(hp ? strtol(hp, NULL, 10) : 0), "Type", type));
        }
    }
    return out;
}

/* One member's value from its bytes in the record (NULL when missing or unreadable). */
static json_t *span_json(const char *data, size_t len)
{
    return data ? json_loadb(data, len, JSON_DECODE_ANY, NULL) : NULL;
}

/*
 * BERTH_LIST_DETAIL's members for the container whose record is @c->raw,
 * read in @txn (the listing's, which the raw bytes belong to). Only the few
 * members needed are parsed, each from its own bytes: a full record parse
 * per row is what made listing 1,000 containers slow.
 */
static int list_detail(berth_txn_t *txn, const berth_container_summary_t *c, json_t *o,
                       berth_err_t *err)
{
    berth_container_detail_t d;
    _cleanup_json_ json_t *doc = NULL, *cfg = NULL, *hc = NULL, *ns = NULL;
    json_t *image, *image_id, *labels, *mounts, *mode;
    int r;

    if ((r = berth__container_detail_scan(c->raw, c->raw_len, &d, err)) < 0) {
        char what[32];
        snprintf(what, sizeof(what), "container %.12s", c->id);
        return berth_err_prefix(err, r, what);
    }
    image = span_json(d.image.data, d.image.len);
    image_id = span_json(d.image_id.data, d.image_id.len);
    labels = span_json(d.labels.data, d.labels.len);
    mounts = span_json(d.mounts.data, d.mounts.len);
    mode = span_json(d.network_mode.data, d.network_mode.len);
    /* What NetworkSettings reads of a record, and nothing else. */
    cfg = json_pack("{s:o*}", "ExposedPorts", span_json(d.exposed_ports.data, d.exposed_ports.len));
    hc = json_pack("{s:O*}", "NetworkMode", mode);
    doc = json_pack("{s:s, s:O, s:o*, s:O}", "id", c->id, "config", cfg, "networks",
                    span_json(d.networks.data, d.networks.len), "host_config", hc);
    ns = doc ? berth__container_network_settings_in(txn, doc) : NULL;
    r = json_object_set_new(o, "Image", json_is_string(image) ? image : json_string("")) |
        json_object_set_new(o, "ImageID", json_is_string(image_id) ? image_id : json_string("")) |
        json_object_set_new(o, "Labels", json_is_object(labels) ? labels : json_object()) |
        json_object_set_new(o, "Mounts", json_is_array(mounts) ? mounts : json_array()) |
        json_object_set_new(o, "HostConfig",
                            json_pack("{s:s}", "NetworkMode",
                                      json_is_string(mode) ? json_string_value(mode) : "none")) |
        json_object_set_new(o, "Ports", list_ports(json_object_get(ns, "Ports"))) |
        json_object_set_new(
            o, "NetworkSettings",
            json_pack("{s:O}", "Networks", json_object_get(ns, "Networks") ?: json_object()));
    /* set_new took the values it kept; the wrong-typed ones are dropped here. */
    if (!json_is_string(image))
        json_decref(image);
    if (!json_is_string(image_id))
        json_decref(image_id);
    if (!json_is_object(labels))
        json_decref(labels);
    if (!json_is_array(mounts))
        json_decref(mounts);
    json_decref(mode);
    return r < 0 || !ns ? berth_err_set(err, -ENOMEM, "out of memory") : 0;
}

BERTH_API int berth_container_list(berth_engine_t *e, uint32_t flags, json_t **ret_json,
                                   berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;
    berth_container_summary_t *items = NULL;
    const berth_container_summary_t **order = NULL;
    _cleanup_json_ json_t *out = json_array();
    size_t n = 0, kept = 0;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    /*
     * Summaries read only what ps shows, without parsing whole records, in
     * one read transaction that stays open for the detail's second look at
     * the records kept.
     */
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0)
        return r;
    if ((r = berth__container_summaries_in(txn, &items, &n, err)) < 0)
        return r;
    order = calloc(n + 1, sizeof(*order));
    if (!order || !out) {
        free(order);
        berth__container_summaries_free(items);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t st = berth__state_parse(items[i].state);
        if ((flags & BERTH_LIST_ALL) || (st & (BERTH_ST_RUNNING | BERTH_ST_PAUSED)))
            order[kept++] = &items[i];
    }
    qsort(order, kept, sizeof(*order), newest_first);
    for (size_t i = 0; i < kept; i++) {
        const berth_container_summary_t *c = order[i];
        char status[96], name[BERTH_CONTAINER_NAME_MAX + 2];
        json_t *o;

        status_text(c, status, sizeof(status));
        snprintf(name, sizeof(name), "/%s", c->name);
        o = json_pack("{s:s, s:[s], s:s, s:I, s:s, s:s, s:s, s:I}", "Id", c->id, "Names", name,
                      "Command", c->command, "Created", (json_int_t)(c->created_ns / 1000000000),
                      "State", c->state[0] ? c->state : "unknown", "Status", status, "Isolation",
                      c->isolation, "Pid", (json_int_t)c->pid);
        if (!o || json_array_append_new(out, o) < 0) {
            r = berth_err_set(err, -ENOMEM, "out of memory");
            break;
        }
        if ((flags & BERTH_LIST_DETAIL) && (r = list_detail(txn, c, o, err)) < 0)
            break;
    }
    free(order);
    berth__container_summaries_free(items);
    if (r < 0)
        return r;
    *ret_json = TAKE_PTR(out);
    return 0;
}

/*
 * Docker's GraphDriver for a container from an image: the storage driver's
 * name and, from the overlay mount it gave, LowerDir, UpperDir and WorkDir.
 */
static json_t *graph_driver(json_t *storage)
{
    static const struct {
        const char *opt, *key;
    } dirs[] = { { "lowerdir=", "LowerDir" },
                 { "upperdir=", "UpperDir" },
                 { "workdir=", "WorkDir" } };
    json_t *data = json_object(), *m, *o;
    size_t i, k;

    json_array_foreach (json_object_get(storage, "mounts"), i, m) {
        json_array_foreach (json_object_get(m, "options"), k, o) {
            const char *opt = json_string_value(o);
            for (size_t d = 0; opt && d < BERTH_ARRAY_SIZE(dirs); d++)
                if (strncmp(opt, dirs[d].opt, strlen(dirs[d].opt)) == 0)
                    json_object_set_new(data, dirs[d].key, json_string(opt + strlen(dirs[d].opt)));
        }
    }
    return json_pack("{s:O*, s:o}", "Name", json_object_get(storage, "driver"), "Data", data);
}

BERTH_API int berth_container_inspect(berth_engine_t *e, const char *ref, json_t **ret_json,
                                      berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *doc = NULL, *args = NULL;
    json_t *out, *state;
    char created[48], started[48], finished[48], name[300];
    uint32_t st;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__container_get(store, ref, &doc, err)) < 0)
        return r;
    st = berth__record_state(doc);
    format_time(json_integer_value(json_object_get(doc, "created_ns")), created, sizeof(created));
    format_time(state_int(doc, "StartedAt"), started, sizeof(started));
    format_time(state_int(doc, "FinishedAt"), finished, sizeof(finished));
    snprintf(name, sizeof(name), "/%s", json_string_value(json_object_get(doc, "name")));
    args = args_of(doc);
    state =
        json_pack("{s:s, s:b, s:b, s:b, s:b, s:b, s:I, s:I, s:I, s:s, s:s, s:s}", "Status",
                  berth__state_name(st) ? berth__state_name(st) : "unknown", "Running",
                  st == BERTH_ST_RUNNING || st == BERTH_ST_PAUSED, "Paused", st == BERTH_ST_PAUSED,
                  "Restarting", 0, "OOMKilled",
                  json_is_true(json_object_get(json_object_get(doc, "state"), "OOMKilled")), "Dead",
                  0, "Pid", state_int(doc, "Pid"), "ShimPid", state_int(doc, "ShimPid"), "ExitCode",
                  state_int(doc, "ExitCode"), "Error",
                  json_string_value(json_object_get(json_object_get(doc, "state"), "Error"))
                      ? json_string_value(json_object_get(json_object_get(doc, "state"), "Error"))
                      : "",
                  "StartedAt", started, "FinishedAt", finished);
    if (state && json_is_object(json_object_get(json_object_get(doc, "state"), "Health")))
        json_object_set(state, "Health", json_object_get(json_object_get(doc, "state"), "Health"));
    /* berth's own: a stop by hand, which no restart policy undoes (berthd's supervisor reads it). */
    if (state)
        json_object_set_new(state, "ManualStop",
                            json_boolean(json_is_true(
                                json_object_get(json_object_get(doc, "state"), "ManualStop"))));
    /* Rootfs only for --rootfs containers; Image and GraphDriver only for those from images. */
    out = json_pack(
        "{s:O, s:s, s:o, s:O, s:o, s:s, s:O, s:O, s:O, s:O*, s:O*}", "Id",
        json_object_get(doc, "id"), "Created", created, "Path",
        json_array_size(args) ? json_incref(json_array_get(args, 0)) : json_string(""), "Args",
        args, "State", state, "Name", name, "Config", json_object_get(doc, "config"), "HostConfig",
        json_object_get(doc, "host_config"), "Isolation", json_object_get(doc, "isolation"),
        "Rootfs", json_object_get(doc, "rootfs"), "Image", json_object_get(doc, "image_id"));
    if (!out)
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* Args excludes the path, as in Docker. */
    json_array_remove(json_object_get(out, "Args"), 0);
    json_object_set_new(out, "RestartCount", json_integer(state_int(doc, "RestartCount")));
    if (json_object_get(doc, "storage"))
        json_object_set_new(out, "GraphDriver", graph_driver(json_object_get(doc, "storage")));
    json_object_set_new(out, "NetworkSettings", berth__container_network_settings(e, doc));
    /* Docker's MountPoint objects, as recorded at create time. */
    json_object_set_new(out, "Mounts",
                        json_is_array(json_object_get(doc, "mounts"))
                            ? json_deep_copy(json_object_get(doc, "mounts"))
                            : json_array());
    *ret_json = out;
    return 0;
}

/*
 * The monitor of a running container is gone (SIGKILLed, crashed): reopen
 * the container through its isolation driver from the state the driver kept
 * under the runroot, and force-delete it there, which kills what still runs
 * and removes its cgroup, then drop the runtime directory.
 */
static int reap_orphan(berth_engine_t *e, json_t *doc, berth_err_t *err)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *iso = json_string_value(json_object_get(doc, "isolation"));
    berth_driver_t *d = berth__engine_driver(e, BERTH_KIND_ISOLATION, iso);
    char bundle[PATH_MAX], sbdir[PATH_MAX], ctrdir[PATH_MAX];
    const berth_isolation_ops_t *ops;
    void *sb = NULL, *ctr = NULL;
    int r;

    if (!d)
        return berth_err_set(err, -ENOENT, "isolation driver \"%s\" is not loaded", iso ? iso : "");
    ops = d->ops;
    if (snprintf(bundle, sizeof(bundle), "%s/containers/%s", berth_engine_runroot(e), id) >=
            (int)sizeof(bundle) ||
        snprintf(sbdir, sizeof(sbdir), "%s/sandbox", bundle) >= (int)sizeof(sbdir) ||
        snprintf(ctrdir, sizeof(ctrdir), "%s/container", bundle) >= (int)sizeof(ctrdir))
        return berth_err_set(err, -ENAMETOOLONG, "runroot path too long");
    if (access(ctrdir, F_OK) < 0)
        return 0; /* nothing was left behind */
    if (!BERTH_OPS_HAS(ops, berth_isolation_ops_t, container_open))
        return berth_err_set(err, -ENOTSUP,
                             "container %.12s: its monitor is gone and the %s driver can't reopen "
                             "it",
                             id, iso);
    if (BERTH_OPS_HAS(ops, berth_isolation_ops_t, sandbox_open)) {
        berth_sandbox_spec_t sspec = {
            .struct_size = sizeof(sspec), .id = id, .state_dir = sbdir, .config_json = "{}"
        };
        if (ops->sandbox_open(d->priv, &sspec, 0, &sb, NULL) < 0)
            sb = NULL;
    }
    {
        berth_container_spec_t cspec = { .struct_size = sizeof(cspec),
                                         .id = id,
                                         .state_dir = ctrdir };
        r = ops->container_open(d->priv, sb, &cspec, 0, &ctr, err);
    }
    if (r == 0)
        r = ops->container_delete(d->priv, ctr, BERTH_DELETE_FORCE, err);
    if (sb)
        ops->sandbox_destroy(d->priv, sb, BERTH_DELETE_FORCE, NULL);
    if (r < 0)
        return berth_err_prefix(err, r, "removing the orphaned container");
    berth__rm_rf(bundle);
    /* Its addresses and port rules: the monitor that held them is gone. */
    return berth__endpoints_release(berth__engine_store(e), berth__engine_loaded(e),
                                    berth__engine_config(e)->plugin_dirs, id, err);
}

/*
 * A monitor may wait to start a created (or exited) container: docker run
 * and start -a attach before they start, and a client or daemon that went
 * away in between leaves it waiting. Deleting the record under it would
 * orphan it with its init, sandbox, mounts and cgroups, so ask it to undo
 * its setup and end first; it answers once that is done. Best effort: no
 * monitor, or one that is not waiting (ending after an exit), is fine.
 */
static void cancel_waiting_monitor(berth_engine_t *e, const char *id)
{
    _cleanup_json_ json_t *req = json_pack("{s:s}", "op", "cancel");
    _cleanup_close_ int fd = -1;

    if (req && berth__shim_connect(e, id, &fd, NULL) == 0)
        berth__shim_request(fd, req, NULL, NULL);
}

BERTH_API int berth_container_remove(berth_engine_t *e, const char *ref, uint32_t flags,
                                     berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *dir = NULL;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    /*
     * Outside the write transaction: a monitor waiting to start is told to
     * undo its setup and end, and one ending after an exit is waited for,
     * so that its networks, mounts and cgroups are gone first.
     */
    if (berth__container_get(store, ref, &doc, NULL) == 0 &&
        (berth__record_state(doc) & (BERTH_ST_CREATED | BERTH_ST_EXITED))) {
        cancel_waiting_monitor(e, json_string_value(json_object_get(doc, "id")));
        berth__await_monitor(doc);
    }
    json_decref(TAKE_PTR(doc));
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    if ((r = berth__container_get_in(txn, ref, &doc, err)) < 0)
        return r;
    if ((r = berth__lc_check(doc, BERTH_OP_REMOVE, err)) < 0) {
        if (!(flags & BERTH_REMOVE_FORCE) || r != -EBUSY)
            return r;
        /* Force: kill through the monitor, outside the write transaction. */
        berth__store_txn_abort(TAKE_PTR(txn));
        r = berth_container_kill(e, ref, SIGKILL, err);
        if (r == 0)
            r = berth_container_wait(e, ref, 10000, NULL, err);
        if (r == -ECONNREFUSED || r == -ENOENT) {
            /* No monitor answers: the container may still run without one. */
            if ((r = reap_orphan(e, doc, err)) < 0)
                return r;
        } else if (r < 0) {
            return r;
        } else {
            berth__await_monitor(doc);
        }
        json_decref(doc);
        doc = NULL;
        if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
            return r;
        /* AutoRemove may have removed it already. */
        if ((r = berth__container_get_in(txn, ref, &doc, err)) < 0)
            return r == -ENOENT ? 0 : r;
    }
    if ((r = berth__container_delete_in(txn, json_string_value(json_object_get(doc, "id")), NULL,
                                        NULL, err)) < 0)
        return r;
    if ((r = berth__store_txn_commit(TAKE_PTR(txn), err)) < 0)
        return r;
    /* The record is gone; its snapshot and logs go after it (leftovers are harmless). */
    release_storage(e, doc);
    /* Endpoints a dead monitor left (a live one detaches before the exit is recorded). */
    berth__endpoints_release(store, berth__engine_loaded(e), berth__engine_config(e)->plugin_dirs,
                             json_string_value(json_object_get(doc, "id")), NULL);
    if (asprintf(&dir, "%s/containers/%s", berth__engine_config(e)->root,
                 json_string_value(json_object_get(doc, "id"))) < 0)
        dir = NULL;
    else
        berth__rm_rf(dir);
    /* docker rm -v: the anonymous volumes go too (named ones never do). */
    if (flags & BERTH_REMOVE_VOLUMES)
        return berth__volume_remove_anonymous_of(store, berth__engine_config(e)->root, doc, err);
    return 0;
}

/*
 * The length of the well-formed UTF-8 sequence at @p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if none starts
 * there. @p is NUL-terminated, so a truncated sequence stops at the NUL.
 */
static size_t utf8_seq_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, lo = p[0] == 0xE0 ? 0xA0 : 0x80, hi = p[0] == 0xED ? 0x9F : 0xBF;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, lo = p[0] == 0xF0 ? 0x90 : 0x80, hi = p[0] == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

BERTH_API int berth_utf8_valid(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n;

    while (*p) {
        if (!(n = utf8_seq_len(p)))
            return 0;
        p += n;
    }
    return 1;
}

BERTH_API size_t berth_utf8_fix(char *text)
{
    unsigned char *p = (unsigned char *)text;
    size_t n, fixed = 0;

    while (*p) {
        if ((n = utf8_seq_len(p))) {
            p += n;
        } else {
            *p++ = '?';
            fixed++;
        }
    }
    return fixed;
}

BERTH_API int berth_parse_bytes(const char *text, int64_t *ret_bytes, berth_err_t *err)
{
    return berth__parse_bytes(text, ret_bytes, err);
}

BERTH_API int berth_parse_cpus(const char *text, int64_t *ret_nanocpus, berth_err_t *err)
{
    return berth__parse_cpus(text, ret_nanocpus, err);
}
