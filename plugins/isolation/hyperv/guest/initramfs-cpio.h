/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A writer of initramfs archives for the hyperv guest: the "newc" cpio
 * format (magic 070701, ASCII-hex header fields) that the Linux kernel
 * unpacks into its rootfs at boot, optionally gzip-compressed (the guest
 * kernel has RD_GZIP).
 *
 * Entries are added one at a time and written at once, so an archive of any
 * size needs no memory beyond one buffer. Paths are guest paths ("/init",
 * "dev/console"): leading and repeated slashes are dropped, and "." or ".."
 * components are refused. Every missing parent directory is emitted first
 * (mode 0755, owner 0:0), because the kernel's unpacker creates nothing on
 * its own. A path may be added once, except that a directory may be added
 * again (the kernel then applies the later mode). All entries are owned by
 * 0:0 and dated 0 (the epoch) so that the same inputs give the same bytes.
 *
 * Functions return 0 or a negative errno, with a one-line reason in `err`
 * (may be NULL). After a failure the archive is incomplete: free it and
 * discard what was written.
 */
#ifndef BERTH_HYPERV_INITRAMFS_CPIO_H
#define BERTH_HYPERV_INITRAMFS_CPIO_H

#include <stddef.h>
#include <stdint.h>

#include <berth/types.h>

typedef struct hv_cpio hv_cpio_t;

/** hv_cpio_new() flag: gzip the archive (deflate, gzip framing, mtime 0). */
#define HV_CPIO_GZIP 0x1u

/** hv_cpio_add_file() mode: take the permission bits of the host file. */
#define HV_CPIO_MODE_HOST UINT32_MAX

/**
 * Start an archive written to @p fd (borrowed: the caller keeps it open
 * until hv_cpio_free() and closes it; writes start at its current offset).
 * @param flags 0 or HV_CPIO_GZIP; other bits give -EINVAL.
 * @param ret_cpio set on success to the new writer, freed with hv_cpio_free().
 */
int hv_cpio_new(int fd, uint32_t flags, hv_cpio_t **ret_cpio, berth_err_t *err);

/**
 * Add the regular file @p host_path (read now, up to 4 GiB - 1: newc sizes are
 * 32-bit) as @p guest_path with permission bits @p mode (07777, or
 * HV_CPIO_MODE_HOST for the host file's own). Symlinks on the host are
 * followed; anything but a regular file gives -EINVAL.
 */
int hv_cpio_add_file(hv_cpio_t *c, const char *guest_path, const char *host_path, uint32_t mode,
                     berth_err_t *err);

/** Add a regular file holding @p len bytes of @p data (borrowed for the call). */
int hv_cpio_add_data(hv_cpio_t *c, const char *guest_path, const void *data, size_t len,
                     uint32_t mode, berth_err_t *err);

/** Add a directory. */
int hv_cpio_add_dir(hv_cpio_t *c, const char *guest_path, uint32_t mode, berth_err_t *err);

/** Add a symbolic link to @p target (stored as given, not resolved). */
int hv_cpio_add_symlink(hv_cpio_t *c, const char *guest_path, const char *target, berth_err_t *err);

/**
 * Add a device node: @p type is 'c' (character) or 'b' (block). The guest's
 * /dev/console (c 5 1) is the usual one: the kernel opens it for init's stdio
 * before init can mount devtmpfs.
 */
int hv_cpio_add_node(hv_cpio_t *c, const char *guest_path, char type, uint32_t mode, uint32_t major,
                     uint32_t minor, berth_err_t *err);

/**
 * Write the trailer (and the gzip end), completing the archive. Nothing can
 * be added afterwards. The caller still fsyncs and closes the fd.
 */
int hv_cpio_finish(hv_cpio_t *c, berth_err_t *err);

/** Free the writer (NULL is allowed); does not close the fd. */
void hv_cpio_free(hv_cpio_t *c);

#endif
