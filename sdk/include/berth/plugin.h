/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/plugin.h
 * @brief The plugin descriptor, the one exported entry symbol, and the
 *        host-API table the core hands to every driver.
 *
 * A berth plugin is a loadable module (`.so`, `.dll`) that exports exactly
 * one symbol, `berth_plugin_entry`, returning a pointer to a static
 * berth_plugin_desc_t. Everything else in the module stays hidden
 * (build with -fvisibility=hidden; BERTH_PLUGIN_DEFINE() marks the entry).
 *
 * Loading, in order (the first failing check refuses the module, with a
 * one-line reason, and the process carries on):
 *  1. the module opens (otherwise: "not a loadable module");
 *  2. it exports `berth_plugin_entry` and the entry returns non-NULL;
 *  3. `abi_major == BERTH_ABI_MAJOR` and `abi_minor <= core's BERTH_ABI_MINOR`;
 *  4. `struct_size` covers at least the ABI 1.0 descriptor, `kind` is known,
 *     `name` is a valid driver name and `ops` covers the kind's 1.0 table;
 *  5. no driver of the same kind and name is already loaded;
 *  6. `init` returns 0.
 * Modules are never unloaded once `init` has run. `fini` is called when the
 * engine closes, in reverse load order.
 *
 * Threads: the core calls `init` on the thread that opens the engine, before
 * any event loop or worker thread exists. Drivers document which of their
 * ops are thread-safe via capabilities; by default the core serialises calls
 * into one driver instance.
 */
#ifndef BERTH_PLUGIN_H
#define BERTH_PLUGIN_H

#include <berth/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI this header describes. Major changes break drivers; minor ones only append. */
#define BERTH_ABI_MAJOR 1u
#define BERTH_ABI_MINOR 2u

/** Driver kinds (values are ABI: never renumbered). */
#define BERTH_KIND_ISOLATION 1u
#define BERTH_KIND_STORAGE   2u
#define BERTH_KIND_NETWORK   3u
#define BERTH_KIND_IMAGE     4u

/** Longest driver name, excluding the NUL. Names match [a-z0-9][a-z0-9_.-]*. */
#define BERTH_DRIVER_NAME_MAX 32u

/** The exported symbol's name, for loaders. */
#define BERTH_PLUGIN_ENTRY_SYMBOL "berth_plugin_entry"

/** Opaque per-driver handle the core passes to init and to every host-API call. */
typedef struct berth_host berth_host_t;

/** Which path berth_host_api_t.path() returns. */
#define BERTH_PATH_ROOT    1u /**< the engine's root dir (persistent metadata and storage) */
#define BERTH_PATH_RUNROOT 2u /**< the engine's runroot (sockets, pid files; gone at reboot) */
#define BERTH_PATH_STATE                                                                           \
    3u /**< this driver's persistent dir: <root>/drivers/<kind>/<name>, created */
#define BERTH_PATH_RUNSTATE                                                                        \
    4u /**< this driver's runtime dir: <runroot>/drivers/<kind>/<name>, created */
#define BERTH_PATH_PLUGIN 5u /**< the module file this driver was loaded from */

/**
 * Core services for drivers. The table is static and outlives every driver;
 * @p host arguments are the handle given to init. All functions may be called
 * from any thread.
 */
typedef struct berth_host_api {
    uint32_t struct_size;
    uint32_t abi_major; /**< the core's ABI version, for drivers that adapt */
    uint32_t abi_minor;
    uint32_t reserved;

    /* ABI 1.0 */

    /** Log one line (no trailing newline needed) at @p level (BERTH_LOG_*). */
    void (*log)(berth_host_t *host, uint32_t level, const char *fmt, ...) BERTH_PRINTF(3, 4);
    /** Allocate memory the core will free with free() below; NULL when out of memory. */
    void *(*alloc)(berth_host_t *host, size_t size);
    void *(*realloc)(berth_host_t *host, void *ptr, size_t size);
    /** Free memory from alloc/realloc, or memory the core documents as freed this way; NULL ok. */
    void (*free)(berth_host_t *host, void *ptr);
    /**
     * One of the BERTH_PATH_* directories. The string is owned by the core and
     * valid until fini returns. Returns NULL for an unknown @p which.
     */
    const char *(*path)(berth_host_t *host, uint32_t which);
    /**
     * This driver's section of the engine config ("drivers": {"<name>": {...}})
     * as JSON text, "{}" when absent. Owned by the core, valid until fini returns.
     */
    const char *(*config)(berth_host_t *host);
    /**
     * Record an event ("type", "action", object "id", optional attributes as a
     * JSON object text) in the engine's event log, where `berth events` and the
     * Docker API's /events see it. Returns 0 or a negative errno.
     */
    int (*emit_event)(berth_host_t *host, const char *type, const char *action, const char *id,
                      const char *attrs_json, berth_err_t *err);
} berth_host_api_t;

/**
 * The descriptor a module's entry returns. It must stay valid (normally it is
 * static const) for as long as the module is loaded.
 */
typedef struct berth_plugin_desc {
    uint32_t abi_major;   /**< BERTH_ABI_MAJOR the driver was built against */
    uint32_t abi_minor;   /**< BERTH_ABI_MINOR the driver was built against */
    uint32_t struct_size; /**< sizeof(berth_plugin_desc_t) when built */
    uint32_t kind;        /**< BERTH_KIND_* */

    /* ABI 1.0 */
    const char *name;        /**< driver name, unique per kind ("process", "overlay") */
    const char *version;     /**< the driver's own version ("1.2.0") */
    const char *license;     /**< SPDX identifier */
    const char *description; /**< one line, may be NULL */
    /** Static capability bits of the kind (BERTH_<KIND>_CAP_*); probe may narrow them. */
    uint64_t capabilities;
    /**
     * Set the driver up. @p host and @p ctx stay valid until fini returns.
     * On success store the driver's private state in *ret_priv (passed back as
     * `priv` to every op and to fini) and return 0; on failure return a
     * negative errno with a reason in @p err, and release everything.
     * May be NULL (no state).
     */
    int (*init)(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv, berth_err_t *err);
    /** Release the private state. May be NULL. */
    void (*fini)(void *priv);
    /** The kind's ops table (berth_isolation_ops_t, ...), starting with its struct_size. */
    const void *ops;
} berth_plugin_desc_t;

/** Every ops table starts like this; the core reads struct_size before anything else. */
typedef struct berth_ops_header {
    uint32_t struct_size;
    uint32_t reserved;
} berth_ops_header_t;

/** Initialise the size field of an ops table in a designated initialiser. */
#define BERTH_OPS_INIT(type) .struct_size = sizeof(type)

/** True when slot @p member of ops table @p ops is present in its struct_size and non-NULL. */
#define BERTH_OPS_HAS(ops, type, member)                                                           \
    (BERTH_HAS_MEMBER(ops, type, member) && (ops)->member != NULL)

#if defined(_WIN32)
#define BERTH_PLUGIN_EXPORT __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define BERTH_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BERTH_PLUGIN_EXPORT
#endif

/** Prototype of the entry symbol. */
typedef const berth_plugin_desc_t *(*berth_plugin_entry_fn)(void);

/**
 * Define the module's entry returning @p desc (a static berth_plugin_desc_t).
 * Use once per module, at file scope.
 */
#define BERTH_PLUGIN_DEFINE(desc)                                                                  \
    BERTH_PLUGIN_EXPORT const berth_plugin_desc_t *berth_plugin_entry(void);                       \
    BERTH_PLUGIN_EXPORT const berth_plugin_desc_t *berth_plugin_entry(void)                        \
    {                                                                                              \
        return &(desc);                                                                            \
    }

#ifdef __cplusplus
}
#endif

#endif /* BERTH_PLUGIN_H */
