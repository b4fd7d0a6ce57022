/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's root filesystem when it runs from an image: a writable
 * snapshot of the storage driver keyed by the container id, on top of the
 * image's top layer (ChainID). The record keeps
 *   "storage": {"driver": "overlay", "key": "<id>", "mounts": [...]}
 * where "mounts" is the list prepare returned, so the monitor (which loads
 * no storage driver, to stay small) can mount it: each mount is
 * {"type","source","target","options":[...],"flags"}.
 */
#ifndef BERTH_CONTAINER_STORAGE_H
#define BERTH_CONTAINER_STORAGE_H

#include <jansson.h>

#include <berth/sdk.h>

#include "plugins.h"

/* A mount list as JSON (a new array). NULL on out of memory. */
json_t *berth__mounts_to_json(const berth_mount_list_t *list);
/* A mount list from JSON made by berth__mounts_to_json(); free with berth_mount_list_free(). */
int berth__mounts_from_json(json_t *arr, berth_mount_list_t **ret_list, berth_err_t *err);

/*
 * Remove the container's snapshot named by @doc's "storage" (nothing to do
 * without one; an absent snapshot is success). The driver is looked up in
 * @reg; when it is not loaded there, its module is loaded from @plugin_dirs
 * (the monitor's case).
 */
int berth__container_storage_release(berth_registry_t *reg, char *const *plugin_dirs, json_t *doc,
                                     berth_err_t *err);

#endif /* BERTH_CONTAINER_STORAGE_H */
