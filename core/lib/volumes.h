/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Volumes: directories the engine owns under <root>/volumes/<name>/_data (the
 * "local" driver's layout, as Docker has it), each described by one record in
 * the store's `volumes` database (key: the name):
 *
 *   {"v": 1, "name", "driver": "local", "mountpoint": "<root>/volumes/<name>/_data",
 *    "created_ns", "labels": {...}, "options": {...}, "anonymous": true|false}
 *
 * Every mutation is one write transaction with its event (type "volume",
 * action "create" or "destroy", id = the name) appended in it. The directory
 * and the record are kept in step across crashes this way:
 *  - create: the record is written inside the write transaction, after the
 *    directory was made (still inside it, so the writer lock orders it with
 *    every other create, remove and prune); a crash before the commit leaves
 *    a directory without a record, which the next create of that name
 *    replaces and the next prune removes;
 *  - remove: the record goes in one commit, then the directory is renamed
 *    to volumes/.trash-<name>-<random> and deleted; a crash after the
 *    commit leaves a directory without a record (or a .trash one), which
 *    the next create of that name or the next prune removes. Names never
 *    start with '.', so no volume can collide with a .trash directory.
 *
 * A container uses a volume when its record's "mounts" array (Docker's
 * inspect MountPoint objects: Type, Name, Source, Destination, Driver, Mode,
 * RW, Propagation) has an entry of Type "volume" with that Name, whatever the
 * container's state. Functions return 0 or a negative errno with a one-line
 * reason in err; ret_ out-parameters are new references set on success.
 */
#ifndef BERTH_VOLUMES_H
#define BERTH_VOLUMES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

#include "store.h"

#define BERTH_VOLUME_NAME_MAX 255
/* The volume record format this build writes ("v"). */
#define BERTH_VOLUME_RECORD_V 1

/*
 * 1 when @name follows Docker's rule for volume names, [a-zA-Z0-9][a-zA-Z0-9_.-]+
 * (at least two characters, at most BERTH_VOLUME_NAME_MAX), else 0. Such a
 * name is always one path component other than "." and "..".
 */
int berth__volume_name_is_valid(const char *name);

/*
 * Create volume @name (NULL: an anonymous volume with a random 64-hex name)
 * under @root with @labels (object or NULL, not stolen). An existing name is
 * no error: the existing record is returned unchanged, as Docker does, and
 * *ret_created (may be NULL) says 0; a new one says 1. -EINVAL for a bad
 * name or labels. *ret_doc (may be NULL): the record.
 */
int berth__volume_create(berth_store_t *store, const char *root, const char *name, json_t *labels,
                         int anonymous, json_t **ret_doc, int *ret_created, berth_err_t *err);

/* The record of @name in *ret_doc; -ENOENT ("no such volume: X") when there is none. */
int berth__volume_get(berth_store_t *store, const char *name, json_t **ret_doc, berth_err_t *err);

/* Every record, in name order, as a new array. */
int berth__volume_list(berth_store_t *store, json_t **ret_array, berth_err_t *err);

/*
 * The ids of containers whose mounts use volume @name, as a new array of
 * strings (empty when unused), inside @txn; and every volume's use count as
 * a new object {name: count} (volumes no container uses are absent).
 */
int berth__volume_users_in(berth_txn_t *txn, const char *name, json_t **ret_ids, berth_err_t *err);
int berth__volume_refcounts_in(berth_txn_t *txn, json_t **ret_counts, berth_err_t *err);

/* Flags for berth__volume_remove(). */
#define BERTH__VOLUME_RM_FORCE     0x1u /* remove even when containers use it */
#define BERTH__VOLUME_RM_ANON_ONLY 0x2u /* leave a named volume alone (returns 1) */

/*
 * Remove volume @name: its record (event "destroy") and then its directory.
 * -ENOENT when there is none; -EBUSY ("volume is in use - [ids]") while a
 * container uses it, unless FORCE. Returns 1 without doing anything for a
 * named volume under ANON_ONLY. *ret_size (may be NULL) gets the bytes its
 * files held.
 */
int berth__volume_remove(berth_store_t *store, const char *root, const char *name, uint32_t flags,
                         uint64_t *ret_size, berth_err_t *err);

/*
 * The anonymous volumes a removed container @record used (its "mounts"),
 * removed unless another container uses them (docker rm -v, run --rm).
 * Best effort: returns the first failure, after trying every volume.
 */
int berth__volume_remove_anonymous_of(berth_store_t *store, const char *root, json_t *record,
                                      berth_err_t *err);

/*
 * The same inside a caller's write transaction, for a container removed in
 * it (berth__lc_exit_remove: run --rm): the records go (events "destroy")
 * and their names are appended to @removed; the caller deletes their
 * directories with berth__volume_discard() once the transaction committed
 * and nothing has them mounted any more.
 */
int berth__volume_remove_anonymous_in(berth_txn_t *txn, json_t *record, json_t *removed,
                                      berth_err_t *err);
/*
 * Append Docker's volume event @action ("mount", "unmount") in @txn for
 * each volume container @record mounts: id the volume's name, attributes
 * container, destination, driver, propagation and read/write.
 */
int berth__volume_mount_events_in(berth_txn_t *txn, json_t *record, const char *action,
                                  berth_err_t *err);

/* Delete the directory of volume @name, whose record is gone. */
void berth__volume_discard(const char *root, const char *name);

/*
 * Directories under <root>/volumes that no record names (crash leftovers,
 * .trash-*) are removed. Called by prune inside its write transaction.
 */
int berth__volume_sweep_in(berth_txn_t *txn, const char *root, berth_err_t *err);

/* Bytes held by the files below @path (st_size of each non-directory, not following links). */
uint64_t berth__dir_size(const char *path);

/*
 * Parse one HostConfig.Binds entry "SRC:DST[:MODE]" into a MountPoint object
 * (new reference): a SRC starting with '/' is a host path (Type "bind",
 * Source SRC, Propagation "rprivate"), anything else a volume name (Type
 * "volume", Name SRC, Driver "local"). MODE: "ro", "rw" or nothing. DST must
 * be absolute without "..". -EINVAL with the entry named otherwise.
 */
int berth__mount_parse_bind(const char *spec, json_t **ret_mount, berth_err_t *err);
/*
 * The same from one HostConfig.Mounts object {Type: "volume"|"bind", Source,
 * Target, ReadOnly, VolumeOptions: {NoCopy, Labels}}. A volume without a
 * Source is anonymous (Name null). "NoCopy": true is kept as "_nocopy", and
 * VolumeOptions.Labels as "_labels" (both dropped before the record is written).
 */
int berth__mount_parse_api(json_t *m, json_t **ret_mount, berth_err_t *err);

/*
 * Copy what a container's root filesystem holds at @path (absolute, no "..")
 * into the empty directory @dst, the first time a volume is mounted there
 * (Docker's copy-up). The root filesystem is given as its layers, top first
 * (@layers, @n: directories; one for a plain tree), merged the way overlayfs
 * merges them: a whiteout (character device 0:0) hides what lies below, a
 * directory with xattr trusted.overlay.opaque="y" hides the lower layers'
 * directory. Owners, modes, times and xattrs (but overlay's own) are kept;
 * symbolic links are copied as links. Nothing is ever followed: a path
 * whose components include a symbolic link copies nothing (returns 0), so
 * neither the layers nor @dst can be escaped. Directory @dst itself takes
 * the owner and mode of @path. 0 when @path is missing or not a directory
 * (nothing to copy).
 */
int berth__volume_copy_up(const char *const *layers, size_t n, const char *path, const char *dst,
                          berth_err_t *err);

/*
 * The layers of a container's root filesystem for berth__volume_copy_up(),
 * top first, from its record: the storage mounts' overlay upperdir and
 * lowerdir entries, a bind's source, or "rootfs". *ret_layers: strv.
 */
int berth__rootfs_layers(json_t *record, char ***ret_layers, berth_err_t *err);

#endif /* BERTH_VOLUMES_H */
