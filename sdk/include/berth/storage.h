/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/storage.h
 * @brief Storage drivers: layered snapshots keyed by ChainID, and container
 *        root filesystems described as mounts.
 *
 * A storage driver knows nothing about images. The core unpacks layer diffs
 * (it owns tar handling and hostile-input checks) into a *writable snapshot*
 * the driver prepares, then asks the driver to *commit* it under a name, which
 * for image layers is the layer's ChainID ("sha256:<hex>"). A container's
 * root filesystem is one more writable snapshot on top of the image's top
 * ChainID, keyed by the container ID.
 *
 * Snapshot names and keys are opaque strings of at most 255 bytes from the
 * set [A-Za-z0-9:._-]; drivers must not turn them into paths without
 * mapping them (e.g. short link ids, as overlay needs for 125+ layers).
 *
 * Whiteouts: the driver declares how deletions are represented in an
 * unpacked diff through capabilities: BERTH_STORAGE_CAP_WHITEOUT_OVERLAY
 * (character device 0/0 and the trusted.overlay.opaque xattr, applied by
 * the kernel at mount) or neither (the core applies deletions directly in
 * the writable snapshot, as vfs needs).
 */
#ifndef BERTH_STORAGE_H
#define BERTH_STORAGE_H

#include <berth/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_STORAGE_CAP_WHITEOUT_OVERLAY (1ull << 0) /**< diffs keep overlay-style whiteouts */
#define BERTH_STORAGE_CAP_QUOTA            (1ull << 1) /**< honours a size limit on prepare */
#define BERTH_STORAGE_CAP_SHARED_LAYERS    (1ull << 2) /**< layers are shared, not copied */

/** Flags for prepare. */
#define BERTH_SNAPSHOT_READONLY 0x1u /**< a read-only view of @p parent (key is still needed) */

/** Facts about one snapshot. Caller-allocated. */
#define BERTH_SNAPSHOT_KIND_COMMITTED 1u
#define BERTH_SNAPSHOT_KIND_ACTIVE    2u /**< prepared, writable, not committed */
typedef struct berth_snapshot_info {
    uint32_t struct_size;
    uint32_t kind;       /**< BERTH_SNAPSHOT_KIND_* */
    char parent[256];    /**< parent's name, "" for a base snapshot */
    uint64_t size_bytes; /**< bytes this snapshot alone uses on disk */
    uint64_t inodes;     /**< inodes this snapshot alone uses */
    int64_t created_ns;  /**< wall clock, ns since the epoch */
} berth_snapshot_info_t;

/** Options for prepare; borrowed for the call. */
typedef struct berth_snapshot_opts {
    uint32_t struct_size;
    uint32_t reserved;
    uint64_t size_limit_bytes; /**< 0: none; needs BERTH_STORAGE_CAP_QUOTA */
    const char *labels_json;   /**< JSON object text or NULL; kept with the snapshot */
} berth_snapshot_opts_t;

/** Callback for walk: return 0 to go on, non-zero to stop (walk returns that value). */
typedef int (*berth_snapshot_walk_fn)(const char *name, const berth_snapshot_info_t *info,
                                      void *userdata);

typedef struct berth_storage_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* ABI 1.0 */

    /** Whether the driver works on the filesystem under its state dir (optional). */
    int (*probe)(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err);
    /**
     * Create the writable snapshot @p key on top of committed snapshot
     * @p parent (NULL or "" for an empty base) and describe how to mount it
     * (required). -EEXIST when @p key exists; -ENOENT when @p parent doesn't.
     * @param opts may be NULL.
     * @param[out] ret_mounts owned by the caller (berth_mount_list_free).
     */
    int (*prepare)(void *priv, const char *key, const char *parent,
                   const berth_snapshot_opts_t *opts, uint32_t flags,
                   berth_mount_list_t **ret_mounts, berth_err_t *err);
    /** The mounts of an existing active snapshot @p key again (required). */
    int (*mounts)(void *priv, const char *key, uint32_t flags, berth_mount_list_t **ret_mounts,
                  berth_err_t *err);
    /**
     * Turn active snapshot @p key into the committed, read-only snapshot
     * @p name (required). -EEXIST when @p name exists (the core treats that as
     * "already unpacked" and removes @p key).
     */
    int (*commit)(void *priv, const char *name, const char *key, uint32_t flags, berth_err_t *err);
    /** Remove a snapshot; -EBUSY while it has children, -ENOENT when absent (required). */
    int (*remove)(void *priv, const char *name, uint32_t flags, berth_err_t *err);
    /** Facts about one snapshot; -ENOENT when absent (required). */
    int (*stat)(void *priv, const char *name, uint32_t flags, berth_snapshot_info_t *ret_info,
                berth_err_t *err);
    /** Call @p fn for every snapshot, in no particular order (required). */
    int (*walk)(void *priv, uint32_t flags, berth_snapshot_walk_fn fn, void *userdata,
                berth_err_t *err);
    /**
     * Directory of an active snapshot the core may write a diff into, when the
     * mounts are not a plain directory the core can reach (e.g. overlay's
     * upper dir). Owned by the driver, valid until commit/remove (optional:
     * without it the core mounts the snapshot to apply diffs).
     */
    const char *(*diff_dir)(void *priv, const char *key);
} berth_storage_ops_t;

#define BERTH_STORAGE_OPS_SIZE_1_0                                                                 \
    (offsetof(berth_storage_ops_t, diff_dir) + sizeof(void (*)(void)))

#ifdef __cplusplus
}
#endif

#endif /* BERTH_STORAGE_H */
