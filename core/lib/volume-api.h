/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The volume side of containers (volume-api.c), for container-api.c and
 * image-api.c. A container record's "mounts" is the array of Docker's
 * MountPoint objects (Type, Name, Source, Destination, Driver, Mode, RW,
 * Propagation) the OCI spec's bind mounts are built from (ocispec.c), a
 * parent before what is mounted inside it.
 */
#ifndef BERTH_VOLUME_API_H
#define BERTH_VOLUME_API_H

#include <jansson.h>

#include <berth/engine.h>

/* A volume record in the shape of Docker's Volume object (new reference, NULL on ENOMEM). */
json_t *berth__volume_to_api(json_t *doc);

/*
 * The mounts a create asks for, from HostConfig @hc (Binds, Mounts) and the
 * merged @config's Volumes (the CLI's -v /path and the image's VOLUME
 * entries: an anonymous volume each where no other mount is), checked,
 * with every volume named (anonymous ones get a new random name) and its
 * Source set, in mount order. Nothing is made yet. -EINVAL for a bad entry
 * or a destination given twice ("Duplicate mount point: /x").
 */
int berth__container_mounts_plan(berth_engine_t *e, json_t *hc, json_t *config, json_t **ret_mounts,
                                 berth_err_t *err);
/*
 * Make the volumes the planned "mounts" of record @doc name (a named one
 * that exists is used as it is) and fill each still-empty one with what the
 * container's root filesystem has at its destination (copy-up, unless
 * NoCopy). Then drops the planning members from the entries. On failure the
 * anonymous volumes made so far are removed again.
 */
int berth__container_volumes_make(berth_engine_t *e, json_t *doc, berth_err_t *err);
/* Drop the planning members ("_anonymous", "_nocopy", "_labels") from @doc's mounts. */
void berth__container_mounts_finish(json_t *doc);
/* Remove the anonymous volumes of @doc that no container uses (a failed create). */
void berth__container_volumes_undo(berth_engine_t *e, json_t *doc);

/* GET /system/df's Volumes: each volume with "UsageData": {"Size", "RefCount"}. */
int berth__volume_df(berth_engine_t *e, json_t **ret_json, berth_err_t *err);

#endif /* BERTH_VOLUME_API_H */
