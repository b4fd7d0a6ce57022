/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plugin loader and driver registry.
 *
 * Modules are found by scanning directories for files with the platform's
 * module extension (".so", ".dll"), in name order per directory, and opened
 * with libltdl. Each module goes through the checks listed in
 * berth/plugin.h; the first failing check refuses it with a one-line
 * reason, recorded in the registry, and loading carries on with the next
 * file. Loaded modules are made resident and never unloaded (a driver may
 * have started threads or registered atexit handlers); refused modules are
 * closed unless their init ran.
 *
 * Load on the main thread before any event loop or worker thread starts:
 * module constructors and init run with no locks held.
 */
#ifndef BERTH_PLUGINS_H
#define BERTH_PLUGINS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/sdk.h>

/* What the host-API table needs from the engine; copied into the registry. */
typedef struct berth_plugin_env {
    const char *root;       /* borrowed: must outlive the registry */
    const char *runroot;    /* borrowed: must outlive the registry */
    json_t *drivers_config; /* borrowed object of per-driver sections, may be NULL */
    /* Log sink for drivers' lines; source is "<kind>/<name>". May be NULL. */
    void (*log)(void *userdata, uint32_t level, const char *source, const char *msg);
    void *log_userdata;
    /* Event sink behind host->emit_event; NULL makes emit_event fail with -ENOTSUP. */
    int (*emit_event)(void *userdata, const char *type, const char *action, const char *id,
                      const char *attrs_json, berth_err_t *err);
    void *event_userdata;
} berth_plugin_env_t;

typedef struct berth_driver berth_driver_t;
typedef struct berth_registry berth_registry_t;

/* A loaded driver; owned by the registry. */
struct berth_driver {
    uint32_t kind;
    const berth_plugin_desc_t *desc; /* static in the module */
    const void *ops;                 /* desc->ops, already checked against the kind's 1.0 size */
    void *priv;                      /* what init stored */
    char *path;                      /* module file */
    uint64_t caps;                   /* desc->capabilities */
    struct berth_host *host;         /* the handle given to init */
};

typedef struct berth_refusal {
    char *path;
    char *reason;
} berth_refusal_t;

/*
 * Ask a driver whether it works here (the probe slot every kind's table
 * starts with): 0 yes (ret_caps, may be NULL, gets the capabilities it
 * reports, or its static ones without a probe), BERTH_DECLINED or a negative
 * errno no, with the reason in @err.
 */
int berth__driver_probe(berth_driver_t *d, uint64_t *ret_caps, berth_err_t *err);

/* Create an empty registry. */
int berth__registry_new(const berth_plugin_env_t *env, berth_registry_t **ret_reg,
                        berth_err_t *err);

/*
 * Load every module in each directory of @dirs (a NULL-terminated list), in
 * order. Directories that don't exist are noted in the search path and
 * skipped. A file reached twice (same device and inode) loads once.
 * Returns 0 unless memory ran out; refusals are not failures.
 */
int berth__registry_load_dirs(berth_registry_t *reg, char *const *dirs, berth_err_t *err);

/*
 * Load one module file. Returns 0 when it loaded, otherwise a negative errno
 * with the reason in @err, the same reason also recorded as a refusal
 * (except -ENOMEM).
 */
int berth__registry_load_file(berth_registry_t *reg, const char *path, berth_err_t *err);

/*
 * Load the module of the @kind driver @name by its conventional file name,
 * <dir>/<kind>-<name><module extension> (isolation-process.so), from the
 * first directory of @dirs that has one; a file already loaded (or refused)
 * is not tried again. Returns the driver, or NULL when no such file gives
 * it (the caller may then fall back to berth__registry_load_dirs, which
 * also finds drivers in modules named otherwise).
 */
berth_driver_t *berth__registry_load_named(berth_registry_t *reg, char *const *dirs, uint32_t kind,
                                           const char *name);

/* Finalise drivers in reverse load order and free the registry. NULL allowed. */
void berth__registry_free(berth_registry_t *reg);

/* The loaded driver of @kind named @name, or NULL. */
berth_driver_t *berth__registry_find(berth_registry_t *reg, uint32_t kind, const char *name);

/* Iterate loaded drivers (0 .. count-1), in load order. */
size_t berth__registry_count(const berth_registry_t *reg);
berth_driver_t *berth__registry_driver(berth_registry_t *reg, size_t i);
size_t berth__registry_refused_count(const berth_registry_t *reg);
const berth_refusal_t *berth__registry_refused(const berth_registry_t *reg, size_t i);

/* {"search_path", "drivers", "refused"} as documented in berth_engine_plugins(). */
json_t *berth__registry_to_json(const berth_registry_t *reg);

/* "isolation", "storage", "network", "image", or NULL for an unknown kind. */
const char *berth__kind_name(uint32_t kind);
/* BERTH_KIND_* for a name, 0 when unknown. */
uint32_t berth__kind_parse(const char *name);
/* The names of the capability bits set in @caps for @kind, as a JSON array (new reference). */
json_t *berth__caps_to_json(uint32_t kind, uint64_t caps);
/* Whether @name is a valid driver name: [a-z0-9][a-z0-9_.-]*, at most BERTH_DRIVER_NAME_MAX. */
int berth__driver_name_valid(const char *name);

#endif /* BERTH_PLUGINS_H */
