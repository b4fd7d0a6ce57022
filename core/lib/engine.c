/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine object behind berth/engine.h: ties the config, the store and the
 * plugin registry together and serves the host API's sinks (logs, events).
 * Core code never prints; log lines go to the embedder's sink.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "berth-build-config.h"
#include <berth/engine.h>

#include "config.h"
#include "engine-internal.h"
#include "image-import.h"
#include "hostinfo.h"
#include "plugins.h"
#include "store.h"
#include "util.h"

struct berth_engine {
    berth_config_t *cfg;
    berth_store_t *store;
    berth_registry_t *reg;
    int scanned; /* every module of the plugin dirs loaded (berth__engine_registry) */
    berth_log_fn log;
    void *log_userdata;
    berth_content_t *content; /* opened on first use (images) */
    /* How to close it: set by whoever opened it, so that linking the engine (the monitor does)
     * does not pull in the content store and the hashing library behind it. */
    void (*content_close)(berth_content_t *cs);
    berth_driver_t *storage; /* chosen on first use (berth__engine_storage) */
    char *events_path;       /* the store's data file, made on first use */
};

BERTH_API const char *berth_version(void)
{
    return BERTH_VERSION;
}

BERTH_API void berth_abi_version(uint32_t *ret_major, uint32_t *ret_minor)
{
    if (ret_major)
        *ret_major = BERTH_ABI_MAJOR;
    if (ret_minor)
        *ret_minor = BERTH_ABI_MINOR;
}

/* Drivers' log lines, filtered by the configured level before the embedder sees them. */
static void engine_log_sink(void *userdata, uint32_t level, const char *source, const char *msg)
{
    berth_engine_t *e = userdata;
    if (e->log && level <= e->cfg->log_level)
        e->log(e->log_userdata, level, source, msg);
}

/* A driver's event: one write transaction of its own, like any other mutation. */
static int engine_event_sink(void *userdata, const char *type, const char *action, const char *id,
                             const char *attrs_json, berth_err_t *err)
{
    berth_engine_t *e = userdata;
    _cleanup_json_ json_t *attrs = NULL;
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int r;

    if (!e->store)
        return berth_err_set(err, -ENOTSUP, "emit_event: the engine was opened without a store");
    if (attrs_json) {
        json_error_t jerr;
        attrs = json_loads(attrs_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!attrs || !json_is_object(attrs))
            return berth_err_set(err, -EINVAL, "emit_event: attributes are not a JSON object");
    }
    if ((r = berth__store_txn_begin(e->store, 1, &txn, err)) < 0)
        return r;
    if ((r = berth__store_event_append(txn, type, action, id, attrs, NULL, err)) < 0)
        return r;
    return berth__store_txn_commit(TAKE_PTR(txn), err);
}

BERTH_API int berth_engine_open(const berth_engine_opts_t *opts, berth_engine_t **ret_engine,
                                berth_err_t *err)
{
    berth_config_overrides_t ov = { 0 };
    berth_engine_t *e;
    uint32_t flags = 0;
    int r;

    if (opts && opts->struct_size < offsetof(berth_engine_opts_t, log_userdata) + sizeof(void *))
        return berth_err_set(err, -EINVAL, "berth_engine_opts_t.struct_size %u is too small",
                             opts->struct_size);
    if (opts) {
        flags = opts->flags;
        ov.config_path = opts->config_path;
        ov.root = opts->root;
        ov.runroot = opts->runroot;
        ov.plugin_path = opts->plugin_path;
        ov.ignore_env = !!(flags & BERTH_ENGINE_F_IGNORE_ENV);
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (opts) {
        e->log = opts->log;
        e->log_userdata = opts->log_userdata;
    }
    if ((r = berth__config_load(&ov, &e->cfg, err)) < 0)
        goto fail;

    if (!(flags & BERTH_ENGINE_F_NO_STORE)) {
        _cleanup_free_ char *store_dir = NULL;
        if ((r = berth__mkdir_p(e->cfg->root, 0700, err)) < 0) {
            berth_err_prefix(err, r, "root");
            goto fail;
        }
        {
            struct stat st;
            int existed = stat(e->cfg->runroot, &st) == 0;
            if ((r = berth__mkdir_p(e->cfg->runroot, 0700, err)) < 0) {
                berth_err_prefix(err, r, "runroot");
                goto fail;
            }
            /*
             * A runroot berth creates is search-only for others: the root of a
             * user-namespaced container is an unprivileged host uid that must
             * pass through it to its bundle. Nothing in it can be listed.
             */
            if (!existed)
                chmod(e->cfg->runroot, 0711);
        }
        if (asprintf(&store_dir, "%s/store", e->cfg->root) < 0) {
            store_dir = NULL;
            r = berth_err_set(err, -ENOMEM, "out of memory");
            goto fail;
        }
        berth_store_opts_t so = { .events_max = e->cfg->events_max };
        if ((r = berth__store_open(store_dir, &so, &e->store, err)) < 0)
            goto fail;
    }

    if (!(flags & BERTH_ENGINE_F_NO_PLUGINS)) {
        berth_plugin_env_t env = {
            .root = e->cfg->root,
            .runroot = e->cfg->runroot,
            .drivers_config = e->cfg->drivers,
            .log = engine_log_sink,
            .log_userdata = e,
            .emit_event = e->store ? engine_event_sink : NULL,
            .event_userdata = e,
        };
        if ((r = berth__registry_new(&env, &e->reg, err)) < 0)
            goto fail;
        /*
         * Modules load when first needed (berth__engine_driver): a container
         * start needs one or two of them, and the image sources alone bring
         * libcurl and a TLS stack whose loading and initialisation cost
         * every command milliseconds.
         */
    }
    *ret_engine = e;
    return 0;
fail:
    berth_engine_close(e);
    return r;
}

BERTH_API void berth_engine_close(berth_engine_t *e)
{
    if (!e)
        return;
    if (e->content && e->content_close)
        e->content_close(e->content);
    /* Drivers first: their fini may still emit events into the store. */
    berth__registry_free(e->reg);
    berth__store_close(e->store);
    berth__config_free(e->cfg);
    free(e->events_path);
    free(e);
}

BERTH_API const char *berth_engine_root(const berth_engine_t *e)
{
    return e->cfg->root;
}

BERTH_API const char *berth_engine_runroot(const berth_engine_t *e)
{
    return e->cfg->runroot;
}

BERTH_API json_t *berth_engine_config(const berth_engine_t *e)
{
    return berth__config_to_json(e->cfg);
}

/* An empty registry's listing, for engines opened without plugins. */
static json_t *no_plugins_json(const berth_engine_t *e)
{
    json_t *dirs = json_array();
    for (size_t i = 0; e->cfg->plugin_dirs && e->cfg->plugin_dirs[i]; i++)
        json_array_append_new(dirs, json_string(e->cfg->plugin_dirs[i]));
    return json_pack("{s:o, s:[], s:[]}", "search_path", dirs, "drivers", "refused");
}

BERTH_API int berth_engine_plugins(berth_engine_t *e, json_t **ret_json, berth_err_t *err)
{
    berth_registry_t *reg = berth__engine_registry(e);
    json_t *j = reg ? berth__registry_to_json(reg) : no_plugins_json(e);
    if (!j)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_json = j;
    return 0;
}

static json_t *store_info(berth_engine_t *e, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *counts = json_object();
    json_t *o;

    if (!counts)
        return NULL;
    if (berth__store_txn_begin(e->store, 0, &txn, err) < 0)
        return NULL;
    for (int db = 0; db < BERTH_DB__COUNT; db++) {
        uint64_t n = 0;
        if (db == BERTH_DB_META)
            continue;
        if (berth__store_count(txn, db, &n, err) < 0)
            return NULL;
        json_object_set_new(counts, berth__store_db_names[db], json_integer((json_int_t)n));
    }
    o = json_pack("{s:s, s:i, s:O}", "path", berth__store_dir(e->store), "schema",
                  (int)berth__store_schema(e->store), "records", counts);
    return o;
}

/*
 * What isolation driver @d says it uses on this host (its optional `info`
 * op, ABI 1.2): a new object, or NULL when it has nothing to say. A driver
 * that fails says why under "error": `berth info` still reports the rest.
 */
static json_t *isolation_details(berth_driver_t *d)
{
    const berth_isolation_ops_t *ops = d->ops;
    berth_blob_t *blob = NULL;
    berth_err_t err = { 0 };
    json_t *o;

    if (!BERTH_OPS_HAS(ops, berth_isolation_ops_t, info))
        return NULL;
    if (ops->info(d->priv, 0, &blob, &err) < 0)
        return json_pack("{s:s}", "error", err.msg[0] ? err.msg : "info failed");
    o = blob && blob->data ? json_loads(blob->data, 0, NULL) : NULL;
    berth_blob_release(blob);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return json_pack("{s:s}", "error", "info: not a JSON object");
    }
    return o;
}

static json_t *drivers_info(berth_engine_t *e)
{
    static const uint32_t kinds[] = { BERTH_KIND_ISOLATION, BERTH_KIND_STORAGE, BERTH_KIND_NETWORK,
                                      BERTH_KIND_IMAGE };
    berth_registry_t *reg = berth__engine_registry(e);
    json_t *out = json_object();

    if (!out)
        return NULL;
    for (size_t k = 0; k < BERTH_ARRAY_SIZE(kinds); k++) {
        const char *def = NULL;
        json_t *names = json_array(), *o;

        switch (kinds[k]) {
        case BERTH_KIND_ISOLATION:
            def = e->cfg->default_isolation;
            break;
        case BERTH_KIND_STORAGE:
            def = e->cfg->default_storage;
            break;
        case BERTH_KIND_NETWORK:
            def = e->cfg->default_network;
            break;
        }
        json_t *details = json_object();

        for (size_t i = 0; reg && i < berth__registry_count(reg); i++) {
            berth_driver_t *d = berth__registry_driver(reg, i);
            json_t *det;
            if (d->kind != kinds[k])
                continue;
            json_array_append_new(names, json_string(d->desc->name));
            if (kinds[k] == BERTH_KIND_ISOLATION && (det = isolation_details(d)))
                json_object_set_new(details, d->desc->name, det);
        }
        o = json_pack("{s:o}", "loaded", names);
        /* Only drivers with something to say appear under "details". */
        if (o && json_object_size(details) > 0)
            json_object_set(o, "details", details);
        json_decref(details);
        if (o && def) {
            json_object_set_new(o, "default", json_string(def));
            json_object_set_new(
                o, "default_loaded",
                json_boolean(reg && berth__registry_find(reg, kinds[k], def) != NULL));
        }
        json_object_set_new(out, berth__kind_name(kinds[k]), o);
    }
    return out;
}

BERTH_API int berth_engine_info(berth_engine_t *e, json_t **ret_json, berth_err_t *err)
{
    _cleanup_json_ json_t *info = NULL;
    berth_registry_t *reg = berth__engine_registry(e);
    berth_hostinfo_t host;
    char abi[32];
    json_t *store = NULL;

    if (e->store && !(store = store_info(e, err)))
        return err && err->code ? err->code : berth_err_set(err, -ENOMEM, "out of memory");
    berth__hostinfo_detect(&host);
    snprintf(abi, sizeof(abi), "%u.%u", BERTH_ABI_MAJOR, BERTH_ABI_MINOR);
    info = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:o?, s:o, s:o, s:{s:i, s:i}}", "version",
                     BERTH_VERSION, "abi", abi, "config_file", e->cfg->path, "root", e->cfg->root,
                     "runroot", e->cfg->runroot, "store", store, "drivers", drivers_info(e), "host",
                     berth__hostinfo_to_json(&host), "plugins", "loaded",
                     (int)(reg ? berth__registry_count(reg) : 0), "refused",
                     (int)(reg ? berth__registry_refused_count(reg) : 0));
    if (!info)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_json = TAKE_PTR(info);
    return 0;
}

berth_store_t *berth__engine_store(berth_engine_t *e)
{
    return e->store;
}

berth_registry_t *berth__engine_registry(berth_engine_t *e)
{
    if (e->reg && !e->scanned) {
        e->scanned = 1;
        /* Only memory can fail a scan; what loaded still serves. */
        berth__registry_load_dirs(e->reg, e->cfg->plugin_dirs, NULL);
        /* Refusals never fail a command; `berth plugins` lists them, and the log has them for a
         * daemon's operator. */
        for (size_t i = 0; i < berth__registry_refused_count(e->reg); i++) {
            const berth_refusal_t *rf = berth__registry_refused(e->reg, i);
            char line[BERTH_ERR_MSG_MAX + 64];
            snprintf(line, sizeof(line), "refused plugin %s: %s", rf->path, rf->reason);
            engine_log_sink(e, BERTH_LOG_NOTICE, "plugins", line);
        }
    }
    return e->reg;
}

const char *berth__engine_events_path(berth_engine_t *e)
{
    /* LMDB's name for the data file of an environment directory. */
    if (!e->events_path && e->store &&
        asprintf(&e->events_path, "%s/data.mdb", berth__store_dir(e->store)) < 0)
        e->events_path = NULL;
    return e->events_path;
}

berth_registry_t *berth__engine_loaded(berth_engine_t *e)
{
    return e->reg;
}

berth_driver_t *berth__engine_driver(berth_engine_t *e, uint32_t kind, const char *name)
{
    berth_driver_t *d;

    if (!e->reg || !name)
        return NULL;
    if ((d = berth__registry_load_named(e->reg, e->cfg->plugin_dirs, kind, name)) || e->scanned)
        return d;
    /* A module named otherwise may still hold it. */
    return berth__registry_find(berth__engine_registry(e), kind, name);
}

const berth_config_t *berth__engine_config(berth_engine_t *e)
{
    return e->cfg;
}

berth_content_t **berth__engine_content_slot(berth_engine_t *e,
                                             void (*close_fn)(berth_content_t *cs))
{
    e->content_close = close_fn;
    return &e->content;
}

int berth__engine_storage(berth_engine_t *e, berth_driver_t **ret_drv, berth_err_t *err)
{
    const char *want = e->cfg->default_storage ? e->cfg->default_storage : "overlay";
    berth_err_t perr = { 0 };
    berth_driver_t *d;

    if (e->storage) {
        *ret_drv = e->storage;
        return 0;
    }
    if (!e->reg)
        return berth_err_set(err, -ENOTSUP, "engine opened without plugins: no storage driver");
    d = berth__engine_driver(e, BERTH_KIND_STORAGE, want);
    if (!d)
        return berth_err_set(err, -ENOENT, "storage driver \"%s\" is not loaded", want);
    if (berth__driver_probe(d, NULL, &perr) != 0) {
        berth_driver_t *vfs = berth__engine_driver(e, BERTH_KIND_STORAGE, "vfs");
        /* overlayfs can't work on every filesystem; vfs is the portable fallback. */
        if (strcmp(want, "overlay") != 0 || !vfs || berth__driver_probe(vfs, NULL, NULL) != 0)
            return berth_err_set(err, -ENOTSUP, "storage driver \"%s\" can't work here: %s", want,
                                 perr.msg);
        d = vfs;
    }
    e->storage = d;
    *ret_drv = d;
    return 0;
}
