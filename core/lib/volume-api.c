/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public volume calls of berth/engine.h over the records of volumes.c,
 * and the volume part of the container calls (volume-api.h): a container's
 * mounts resolved at create time, its anonymous volumes made, filled from
 * the image (copy-up) and, with docker rm -v, removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/engine.h>

#include "containers.h"
#include "engine-internal.h"
#include "util.h"
#include "volume-api.h"
#include "volumes.h"

#define ANON_LABEL "com.docker.volume.anonymous"

static int need_store(berth_engine_t *e, berth_err_t *err)
{
    return berth__engine_store(e)
               ? 0
               : berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
}

static const char *root_of(berth_engine_t *e)
{
    return berth__engine_config(e)->root;
}

/* A record in the shape of Docker's Volume object (new reference). */
json_t *berth__volume_to_api(json_t *doc)
{
    char created[48];
    json_t *labels = json_object_get(doc, "labels"), *opts = json_object_get(doc, "options");

    berth__format_time(json_integer_value(json_object_get(doc, "created_ns")), created,
                       sizeof(created));
    return json_pack("{s:O, s:O, s:O, s:s, s:O, s:O, s:s}", "Name", json_object_get(doc, "name"),
                     "Driver", json_object_get(doc, "driver"), "Mountpoint",
                     json_object_get(doc, "mountpoint"), "CreatedAt", created, "Labels",
                     json_object_size(labels) ? labels : json_null(), "Options",
                     json_object_size(opts) ? opts : json_null(), "Scope", "local");
}

BERTH_API int berth_volume_create(berth_engine_t *e, json_t *body, json_t **ret_json,
                                  berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    const char *name = json_string_value(json_object_get(body, "Name"));
    const char *driver = json_string_value(json_object_get(body, "Driver"));
    json_t *dopts = json_object_get(body, "DriverOpts"), *labels = json_object_get(body, "Labels");
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if (body && !json_is_object(body))
        return berth_err_set(err, -EINVAL, "the volume create request must be a JSON object");
    if (driver && *driver && strcmp(driver, "local") != 0)
        return berth_err_set(err, -EINVAL, "volume driver \"%s\" is not supported (only local)",
                             driver);
    if (json_object_size(dopts) > 0)
        return berth_err_set(err, -EINVAL, "the local volume driver takes no options here");
    if (json_is_null(labels))
        labels = NULL;
    if ((r = berth__volume_create(berth__engine_store(e), root_of(e), name && *name ? name : NULL,
                                  labels, 0, &doc, NULL, err)) < 0)
        return r;
    if (ret_json && !(*ret_json = berth__volume_to_api(doc)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

BERTH_API int berth_volume_inspect(berth_engine_t *e, const char *name, json_t **ret_json,
                                   berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    int r;

    if ((r = need_store(e, err)) < 0 ||
        (r = berth__volume_get(berth__engine_store(e), name, &doc, err)) < 0)
        return r;
    if (!(*ret_json = berth__volume_to_api(doc)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

BERTH_API int berth_volume_remove(berth_engine_t *e, const char *name, uint32_t flags,
                                  berth_err_t *err)
{
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    return berth__volume_remove(berth__engine_store(e), root_of(e), name,
                                flags & BERTH_VOLUME_RM_FORCE ? BERTH__VOLUME_RM_FORCE : 0, NULL,
                                err);
}

/*
 * The values of filter @key in Docker's filter object, whichever of its two
 * forms ({"v": true} or ["v"]), as a new array of strings; NULL when absent.
 */
static json_t *filter_values(json_t *filters, const char *key)
{
    json_t *f = json_object_get(filters, key), *out, *v;
    const char *k;
    size_t i;

    if (!f)
        return NULL;
    out = json_array();
    if (json_is_object(f)) {
        json_object_foreach (f, k, v)
            if (json_is_true(v))
                json_array_append_new(out, json_string(k));
    } else {
        json_array_foreach (f, i, v)
            if (json_is_string(v))
                json_array_append(out, v);
    }
    return out;
}

static int check_filters(json_t *filters, const char *const *known, berth_err_t *err)
{
    const char *k;
    json_t *v;

    if (filters && !json_is_object(filters))
        return berth_err_set(err, -EINVAL, "filters must be a JSON object");
    json_object_foreach (filters, k, v) {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            ok |= strcmp(known[i], k) == 0;
        if (!ok)
            return berth_err_set(err, -EINVAL, "invalid filter '%s'", k);
        if (!json_is_object(v) && !json_is_array(v))
            return berth_err_set(err, -EINVAL, "invalid filter '%s': bad value", k);
    }
    return 0;
}

/* Docker's label filter: every "key" or "key=value" given must match. */
static int labels_match(json_t *labels, json_t *wanted)
{
    json_t *w;
    size_t i;

    json_array_foreach (wanted, i, w) {
        const char *s = json_string_value(w), *eq = strchr(s, '=');
        _cleanup_free_ char *key = eq ? strndup(s, (size_t)(eq - s)) : strdup(s);
        json_t *have = key ? json_object_get(labels, key) : NULL;
        if (!have || (eq && strcmp(json_string_value(have) ?: "", eq + 1) != 0))
            return 0;
    }
    return 1;
}

/* Docker's boolean filter values. */
static int value_true(const char *v)
{
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

BERTH_API int berth_volume_list(berth_engine_t *e, json_t *filters, json_t **ret_json,
                                berth_err_t *err)
{
    static const char *const known[] = { "name", "label", "driver", "dangling", NULL };
    _cleanup_json_ json_t *docs = NULL, *counts = NULL, *out = json_array();
    _cleanup_json_ json_t *names = NULL, *labels = NULL, *drivers = NULL, *dangling = NULL;
    berth_txn_t *txn = NULL;
    json_t *doc;
    size_t i;
    int r;

    if ((r = need_store(e, err)) < 0 || (r = check_filters(filters, known, err)) < 0)
        return r;
    if (!out)
        return berth_err_set(err, -ENOMEM, "out of memory");
    names = filter_values(filters, "name");
    labels = filter_values(filters, "label");
    drivers = filter_values(filters, "driver");
    dangling = filter_values(filters, "dangling");
    for (i = 0; i < json_array_size(dangling); i++) {
        const char *v = json_string_value(json_array_get(dangling, i));
        if (!value_true(v) && strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
            return berth_err_set(err, -EINVAL, "invalid filter 'dangling=%s'", v);
    }
    if ((r = berth__volume_list(berth__engine_store(e), &docs, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__volume_refcounts_in(txn, &counts, err);
    berth__store_txn_abort(txn);
    if (r < 0)
        return r;
    json_array_foreach (docs, i, doc) {
        const char *name = json_string_value(json_object_get(doc, "name"));
        int used = json_object_get(counts, name) != NULL, keep = 1;
        size_t k;
        json_t *v;
        if (names) {
            keep = 0;
            json_array_foreach (names, k, v)
                keep |= strstr(name, json_string_value(v)) != NULL;
        }
        if (drivers) {
            int any = 0;
            json_array_foreach (drivers, k, v)
                any |= strcmp(json_string_value(v), "local") == 0;
            keep &= any;
        }
        if (labels)
            keep &= labels_match(json_object_get(doc, "labels"), labels);
        json_array_foreach (dangling, k, v)
            keep &= value_true(json_string_value(v)) ? !used : used;
        if (keep && json_array_append_new(out, berth__volume_to_api(doc)) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    *ret_json = TAKE_PTR(out);
    return 0;
}

BERTH_API int berth_volume_prune(berth_engine_t *e, json_t *filters, json_t **ret_json,
                                 berth_err_t *err)
{
    static const char *const known[] = { "all", "label", "label!", NULL };
    _cleanup_json_ json_t *docs = NULL, *deleted = json_array(), *all = NULL;
    _cleanup_json_ json_t *labels = NULL, *nlabels = NULL;
    _cleanup_txn_ berth_txn_t *txn = NULL;
    berth_store_t *store = berth__engine_store(e);
    uint64_t reclaimed = 0;
    int every = 0, r;
    json_t *doc;
    size_t i;

    if ((r = need_store(e, err)) < 0 || (r = check_filters(filters, known, err)) < 0)
        return r;
    if (!deleted)
        return berth_err_set(err, -ENOMEM, "out of memory");
    all = filter_values(filters, "all");
    for (i = 0; i < json_array_size(all); i++) {
        const char *v = json_string_value(json_array_get(all, i));
        if (!value_true(v) && strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
            return berth_err_set(err, -EINVAL, "invalid filter 'all=%s'", v);
        every |= value_true(v);
    }
    labels = filter_values(filters, "label");
    nlabels = filter_values(filters, "label!");
    if ((r = berth__volume_list(store, &docs, err)) < 0)
        return r;
    json_array_foreach (docs, i, doc) {
        const char *name = json_string_value(json_object_get(doc, "name"));
        json_t *lab = json_object_get(doc, "labels");
        uint64_t size = 0;
        if (!every && !json_is_true(json_object_get(doc, "anonymous")))
            continue;
        if ((labels && !labels_match(lab, labels)) ||
            (json_array_size(nlabels) && labels_match(lab, nlabels)))
            continue;
        /* In use is checked again inside the removal's transaction: a new user wins. */
        r = berth__volume_remove(store, root_of(e), name, 0, &size, NULL);
        if (r == 0) {
            json_array_append_new(deleted, json_string(name));
            reclaimed += size;
        }
    }
    /* Leftovers of interrupted creates and removals, under the writer lock (volumes.h). */
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0 ||
        (r = berth__volume_sweep_in(txn, root_of(e), err)) < 0)
        return r;
    berth__store_txn_abort(TAKE_PTR(txn));
    if (ret_json && !(*ret_json = json_pack("{s:O, s:I}", "VolumesDeleted", deleted,
                                            "SpaceReclaimed", (json_int_t)reclaimed)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

int berth__volume_df(berth_engine_t *e, json_t **ret_json, berth_err_t *err)
{
    _cleanup_json_ json_t *docs = NULL, *counts = NULL, *out = json_array();
    berth_txn_t *txn = NULL;
    json_t *doc;
    size_t i;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__volume_list(berth__engine_store(e), &docs, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__volume_refcounts_in(txn, &counts, err);
    berth__store_txn_abort(txn);
    if (r < 0)
        return r;
    json_array_foreach (docs, i, doc) {
        const char *name = json_string_value(json_object_get(doc, "name"));
        json_t *v = berth__volume_to_api(doc);
        uint64_t size = berth__dir_size(json_string_value(json_object_get(doc, "mountpoint")));
        if (!v ||
            json_object_set_new(v, "UsageData",
                                json_pack("{s:I, s:I}", "Size", (json_int_t)size, "RefCount",
                                          json_integer_value(json_object_get(counts, name)))) < 0 ||
            json_array_append_new(out, v) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    *ret_json = TAKE_PTR(out);
    return 0;
}

/* ---- a container's mounts ---- */

static int covered(json_t *mounts, const char *dest)
{
    json_t *m;
    size_t i;
    json_array_foreach (mounts, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "Destination")), dest) == 0)
            return 1;
    }
    return 0;
}

static int add_mount(json_t *mounts, json_t *m, berth_err_t *err)
{
    const char *dest = json_string_value(json_object_get(m, "Destination"));

    if (covered(mounts, dest)) {
        /* The message first: @dest lives in @m. */
        int r = berth_err_set(err, -EINVAL, "Duplicate mount point: %s", dest);
        json_decref(m);
        return r;
    }
    if (json_array_append_new(mounts, m) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

static size_t depth_of(json_t *m)
{
    const char *d = json_string_value(json_object_get(m, "Destination"));
    size_t n = 0;
    for (; d && *d; d++)
        n += *d == '/' && d[1];
    return n;
}

static int by_depth(const void *a, const void *b)
{
    size_t da = depth_of(*(json_t *const *)a), db = depth_of(*(json_t *const *)b);
    return da < db ? -1 : da > db;
}

int berth__container_mounts_plan(berth_engine_t *e, json_t *hc, json_t *config, json_t **ret_mounts,
                                 berth_err_t *err)
{
    _cleanup_json_ json_t *mounts = json_array(), *sorted = NULL;
    json_t *v, **items;
    const char *dest;
    size_t i, n;
    int r;

    if (!mounts)
        return berth_err_set(err, -ENOMEM, "out of memory");
    json_array_foreach (json_object_get(hc, "Binds"), i, v) {
        json_t *m = NULL;
        if ((r = berth__mount_parse_bind(json_string_value(v), &m, err)) < 0 ||
            (r = add_mount(mounts, m, err)) < 0)
            return r;
    }
    json_array_foreach (json_object_get(hc, "Mounts"), i, v) {
        json_t *m = NULL;
        const char *src;
        struct stat st;
        if ((r = berth__mount_parse_api(v, &m, err)) < 0)
            return r;
        /* Docker: --mount type=bind wants an existing source (-v makes a missing one). */
        src = json_string_value(json_object_get(m, "Source"));
        if (!strcmp(json_string_value(json_object_get(m, "Type")), "bind") && stat(src, &st) < 0) {
            r = berth_err_set(err, -EINVAL,
                              "invalid mount config for type \"bind\": bind source "
                              "path does not exist: %s",
                              src);
            json_decref(m);
            return r;
        }
        if ((r = add_mount(mounts, m, err)) < 0)
            return r;
    }
    /* -v /path and the image's VOLUME entries: an anonymous volume where nothing else is. */
    json_object_foreach (json_object_get(config, "Volumes"), dest, v) {
        _cleanup_free_ char *spec = NULL;
        json_t *m = NULL;
        if (covered(mounts, dest))
            continue;
        if (asprintf(&spec, "anonymous:%s", dest) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        if ((r = berth__mount_parse_bind(spec, &m, err)) < 0)
            return berth_err_set(err, r,
                                 "invalid volume \"%s\": must be an absolute path "
                                 "without '..'",
                                 dest);
        json_object_set_new(m, "Name", json_null());
        json_object_set_new(m, "Mode", json_string(""));
        json_array_append_new(mounts, m);
    }
    /* Every volume gets its name and source now (an anonymous one a new name). */
    json_array_foreach (mounts, i, v) {
        char name[65], src[PATH_MAX];
        if (strcmp(json_string_value(json_object_get(v, "Type")), "volume") != 0)
            continue;
        if (json_is_null(json_object_get(v, "Name"))) {
            if ((r = berth__container_id_new(name, err)) < 0)
                return r;
            json_object_set_new(v, "Name", json_string(name));
            json_object_set_new(v, "_anonymous", json_true());
        }
        if (snprintf(src, sizeof(src), "%s/volumes/%s/_data", root_of(e),
                     json_string_value(json_object_get(v, "Name"))) >= (int)sizeof(src))
            return berth_err_set(err, -ENAMETOOLONG, "volume path too long");
        json_object_set_new(v, "Source", json_string(src));
    }
    /* A parent before what is mounted inside it. */
    n = json_array_size(mounts);
    if (!(items = calloc(n + 1, sizeof(*items))))
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (i = 0; i < n; i++)
        items[i] = json_array_get(mounts, i);
    qsort(items, n, sizeof(*items), by_depth);
    sorted = json_array();
    for (i = 0; sorted && i < n; i++)
        json_array_append(sorted, items[i]);
    free(items);
    if (!sorted)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_mounts = TAKE_PTR(sorted);
    return 0;
}

static int dir_is_empty(const char *path)
{
    int empty = 1;
    DIR *d = opendir(path);
    struct dirent *de;

    if (!d)
        return 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

int berth__container_volumes_make(berth_engine_t *e, json_t *doc, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_strv_ char **layers = NULL;
    json_t *m;
    size_t i;
    int r;

    json_array_foreach (json_object_get(doc, "mounts"), i, m) {
        const char *name = json_string_value(json_object_get(m, "Name"));
        const char *dest = json_string_value(json_object_get(m, "Destination"));
        const char *src = json_string_value(json_object_get(m, "Source"));
        int anon = json_is_true(json_object_get(m, "_anonymous"));
        _cleanup_json_ json_t *labels =
            anon ? json_pack("{s:s}", ANON_LABEL, "") : json_incref(json_object_get(m, "_labels"));
        int nocopy = json_is_true(json_object_get(m, "_nocopy"));

        if (strcmp(json_string_value(json_object_get(m, "Type")), "volume") != 0)
            continue;
        if ((r = berth__volume_create(store, root_of(e), name, labels, anon, NULL, NULL, err)) < 0)
            goto fail;
        /*
         * Docker's copy-up: a volume still empty gets what the image has at
         * its path. The lock on the volume's directory makes "still empty"
         * and the copy one step for two creates over the same fresh volume.
         */
        if (nocopy)
            continue;
        {
            _cleanup_free_ char *vdir = strdup(src);
            _cleanup_close_ int lk = -1;
            char *slash = vdir ? strrchr(vdir, '/') : NULL;
            if (slash)
                *slash = '\0';
            lk = vdir ? open(vdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
            if (lk < 0 || flock(lk, LOCK_EX) < 0) {
                r = berth_err_set(err, -errno, "volume %s: %s", name, strerror(errno));
                goto fail;
            }
            if (!dir_is_empty(src))
                continue;
            if (!layers && (r = berth__rootfs_layers(doc, &layers, err)) < 0)
                goto fail;
            if ((r = berth__volume_copy_up((const char *const *)layers, berth__strv_len(layers),
                                           dest, src, err)) < 0) {
                r = berth_err_prefix(err, r, dest);
                goto fail;
            }
        }
    }
    berth__container_mounts_finish(doc);
    return 0;
fail:
    berth__container_volumes_undo(e, doc);
    return r;
}

void berth__container_mounts_finish(json_t *doc)
{
    json_t *m;
    size_t i;
    json_array_foreach (json_object_get(doc, "mounts"), i, m) {
        json_object_del(m, "_nocopy");
        json_object_del(m, "_labels");
        json_object_del(m, "_anonymous");
    }
}

void berth__container_volumes_undo(berth_engine_t *e, json_t *doc)
{
    berth__volume_remove_anonymous_of(berth__engine_store(e), root_of(e), doc, NULL);
}
