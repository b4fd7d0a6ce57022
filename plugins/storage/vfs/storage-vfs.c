/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vfs: the storage driver that works on any filesystem. Every snapshot is a
 * full directory tree (snapshots/<name>/fs); prepare on a parent copies the
 * parent's tree (reflinks where the filesystem has them), and a rootfs is a
 * bind mount of the tree. No layer is shared, no whiteouts are kept: the
 * core applies a diff's deletions directly in the tree diff_dir() names.
 *
 * The store itself (names, metadata, locking, crash recovery) is
 * storage-snapdir.c, shared with the overlay driver.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/sdk.h>

#include "storage-snapdir.h"
#include "storage-vfs-copy.h"

#define VFS_TREE "fs"

struct vfs {
    struct snapdir sd;
};

static int vfs_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                    berth_err_t *err)
{
    struct vfs *v = calloc(1, sizeof(*v));
    int r;

    if (!v)
        return berth_err_set(err, -ENOMEM, "vfs: out of memory");
    r = storage_snapdir_open(&v->sd, "vfs", host->path(ctx, BERTH_PATH_STATE), NULL, NULL, NULL,
                             err);
    if (r == 0)
        r = storage_snapdir_recover(&v->sd, err);
    if (r < 0) {
        storage_snapdir_close(&v->sd);
        free(v);
        return r;
    }
    *ret_priv = v;
    return 0;
}

static void vfs_fini(void *priv)
{
    struct vfs *v = priv;
    storage_snapdir_close(&v->sd);
    free(v);
}

/* Plain directories work everywhere: the state dir opened and locked is all it takes. */
static int vfs_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    struct vfs *v = priv;
    int r = storage_snapdir_lock(&v->sd, 0, err);
    if (r < 0)
        return r;
    storage_snapdir_unlock(&v->sd);
    *ret_caps = 0;
    return 0;
}

static int make_mounts(struct vfs *v, const char *enc, uint32_t flags,
                       berth_mount_list_t **ret_mounts, berth_err_t *err)
{
    int ro = (flags & BERTH_SNAPSHOT_READONLY) != 0;
    const char *opts[] = { "rbind", ro ? "ro" : "rw" };
    char *src;
    int r;

    if (asprintf(&src, "%s/snapshots/%s/" VFS_TREE, v->sd.root, enc) < 0)
        return berth_err_set(err, -ENOMEM, "vfs: out of memory");
    r = storage_snapdir_mount_list("bind", src, ro ? BERTH_MOUNT_F_READONLY : 0, opts, 2,
                                   ret_mounts);
    free(src);
    if (r < 0)
        return berth_err_set(err, r, "vfs: out of memory");
    return 0;
}

static int vfs_prepare(void *priv, const char *key, const char *parent,
                       const berth_snapshot_opts_t *opts, uint32_t flags,
                       berth_mount_list_t **ret_mounts, berth_err_t *err)
{
    struct vfs *v = priv;
    struct snapdir_prep prep;
    berth_mount_list_t *mounts = NULL;
    int r;

    r = storage_snapdir_prepare_begin(&v->sd, key, parent, opts, flags, &prep, err);
    if (r < 0)
        return r;
    if (prep.parentfd >= 0) {
        int src = openat(prep.parentfd, VFS_TREE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (src < 0) {
            r = berth_err_set(err, -errno, "vfs: snapshot %s: open its tree: %s", parent,
                              strerror(errno));
        } else {
            r = storage_vfs_copy_tree("vfs", src, prep.dirfd, VFS_TREE, err);
            close(src);
        }
    } else if (mkdirat(prep.dirfd, VFS_TREE, 0755) < 0) {
        r = berth_err_set(err, -errno, "vfs: snapshot %s: mkdir: %s", key, strerror(errno));
    }
    if (r == 0)
        r = make_mounts(v, prep.key_enc, flags, &mounts, err);
    r = storage_snapdir_prepare_end(&v->sd, &prep, r, err);
    if (r < 0) {
        berth_mount_list_free(mounts);
        return r;
    }
    *ret_mounts = mounts;
    return 0;
}

static int vfs_mounts(void *priv, const char *key, uint32_t flags, berth_mount_list_t **ret_mounts,
                      berth_err_t *err)
{
    struct vfs *v = priv;
    char enc[SNAPDIR_NAME_MAX + 1];
    struct snapdir_meta m;
    int r;

    if ((r = storage_snapdir_lock(&v->sd, 0, err)) < 0)
        return r;
    r = storage_snapdir_get_active(&v->sd, key, enc, &m, NULL, err);
    if (r == 0)
        r = make_mounts(v, enc, m.flags, ret_mounts, err);
    storage_snapdir_unlock(&v->sd);
    return r;
}

static int vfs_commit(void *priv, const char *name, const char *key, uint32_t flags,
                      berth_err_t *err)
{
    struct vfs *v = priv;
    return storage_snapdir_op_commit(&v->sd, name, key, VFS_TREE, err);
}

static int vfs_remove(void *priv, const char *name, uint32_t flags, berth_err_t *err)
{
    struct vfs *v = priv;
    return storage_snapdir_op_remove(&v->sd, name, err);
}

static int vfs_stat(void *priv, const char *name, uint32_t flags, berth_snapshot_info_t *ret_info,
                    berth_err_t *err)
{
    struct vfs *v = priv;
    return storage_snapdir_op_stat(&v->sd, name, VFS_TREE, ret_info, err);
}

static int vfs_walk(void *priv, uint32_t flags, berth_snapshot_walk_fn fn, void *userdata,
                    berth_err_t *err)
{
    struct vfs *v = priv;
    return storage_snapdir_op_walk(&v->sd, VFS_TREE, fn, userdata, err);
}

/* The tree itself: what the core writes there is what the rootfs shows. */
static const char *vfs_diff_dir(void *priv, const char *key)
{
    struct vfs *v = priv;
    return storage_snapdir_op_diff_dir(&v->sd, key, VFS_TREE);
}

static const berth_storage_ops_t vfs_ops = {
    BERTH_OPS_INIT(berth_storage_ops_t),
    .probe = vfs_probe,
    .prepare = vfs_prepare,
    .mounts = vfs_mounts,
    .commit = vfs_commit,
    .remove = vfs_remove,
    .stat = vfs_stat,
    .walk = vfs_walk,
    .diff_dir = vfs_diff_dir,
};

static const berth_plugin_desc_t vfs_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_STORAGE,
    .name = "vfs",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "full copies of every snapshot; works on any filesystem",
    .capabilities = 0,
    .init = vfs_init,
    .fini = vfs_fini,
    .ops = &vfs_ops,
};

BERTH_PLUGIN_DEFINE(vfs_desc)
