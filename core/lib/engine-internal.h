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
/* The plugin registry, or NULL when opened with BERTH_ENGINE_F_NO_PLUGINS. */
berth_registry_t *berth__engine_registry(berth_engine_t *e);
/* The effective configuration. */
const berth_config_t *berth__engine_config(berth_engine_t *e);

#endif /* BERTH_ENGINE_INTERNAL_H */
