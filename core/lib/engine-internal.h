/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What libberth's own modules (the lifecycle layer, berth-shim) reach inside
 * an engine. Not part of the public API.
 */
#ifndef BERTH_ENGINE_INTERNAL_H
#define BERTH_ENGINE_INTERNAL_H

#include <berth/engine.h>

#include "config.h"
#include "plugins.h"
#include "store.h"

/* The store, or NULL when the engine was opened with BERTH_ENGINE_F_NO_STORE. */
berth_store_t *berth__engine_store(berth_engine_t *e);
/*
 * The plugin registry with every module of the plugin directories loaded
 * (the first call scans them), or NULL when opened with
 * BERTH_ENGINE_F_NO_PLUGINS. For listing drivers; to use one, prefer
 * berth__engine_driver, which loads only what it needs.
 */
berth_registry_t *berth__engine_registry(berth_engine_t *e);
/*
 * The @kind driver called @name, loading its module on first use: by its
 * conventional file name (<kind>-<name>.so) first, then by scanning every
 * module. NULL when no module provides it or the engine has no plugins.
 */
berth_driver_t *berth__engine_driver(berth_engine_t *e, uint32_t kind, const char *name);
/* The registry as loaded so far, without scanning (NULL without plugins). */
berth_registry_t *berth__engine_loaded(berth_engine_t *e);
/*
 * Where the engine keeps its content store; @close_fn closes it with the
 * engine. For berth__engine_content (content.c), which opens it on first
 * use: the engine itself never links the content store.
 */
typedef struct berth_content berth_content_t;
berth_content_t **berth__engine_content_slot(berth_engine_t *e,
                                             void (*close_fn)(berth_content_t *cs));
/* The file whose writes mean a commit (berth_events_watch_path); NULL without a store. */
const char *berth__engine_events_path(berth_engine_t *e);
/* The effective configuration. */
const berth_config_t *berth__engine_config(berth_engine_t *e);

#endif /* BERTH_ENGINE_INTERNAL_H */
