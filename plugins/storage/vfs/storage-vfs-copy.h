/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vfs tree copy: the whole of a snapshot's tree, as faithfully as the
 * filesystem allows, for prepare on a parent.
 */
#ifndef BERTH_STORAGE_VFS_COPY_H
#define BERTH_STORAGE_VFS_COPY_H

#include <berth/sdk.h>

/*
 * Copy the directory @srcfd (borrowed, opened O_DIRECTORY) to the new
 * directory @dstname in @dstparentfd (which must not exist): every file
 * type (regular, directory, symlink, device, fifo, socket), owners, modes
 * (setuid and sticky included), timestamps, all xattrs (security.capability,
 * trusted.*, ACLs), hard links within the tree, and holes of sparse files.
 * File data is reflinked (FICLONE) where the filesystem can, otherwise
 * copied in the kernel (copy_file_range), otherwise read and written.
 * @drv names the driver in messages. On failure the partial copy is left
 * for the caller to delete, and @err says which file failed.
 */
int storage_vfs_copy_tree(const char *drv, int srcfd, int dstparentfd, const char *dstname,
                          berth_err_t *err);

#endif /* BERTH_STORAGE_VFS_COPY_H */
