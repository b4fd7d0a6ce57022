/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Applying one image layer diff (OCI image-spec layer.md) to a directory,
 * confined to that directory, and computing its DiffID on the way.
 *
 * Input. The layer blob exactly as stored: gzip (1f 8b, concatenated members
 * allowed), zstd (28 b5 2f fd, or a skippable frame; concatenated frames
 * allowed) or an uncompressed tar (first block has a ustar/GNU magic or is a
 * zero block). Any other start, xz and bzip2 included, is refused with
 * "unsupported layer compression". Decompression happens in-process (zlib,
 * libzstd) in a helper thread that feeds the tar reader through a bounded
 * ring of 8 MiB, and a second helper thread hashes the same chunks; both are
 * always joined before the call returns.
 * Zero bytes after the last complete gzip member or zstd frame are accepted
 * and ignored (block padding, as bsdtar writes it; GNU gzip does the same);
 * any other trailing data is an error. They are not part of the DiffID,
 * which is taken over the decompressed bytes.
 * The tar is read by libarchive (ustar, pax, GNU); entries are created here
 * with *at() calls relative to the root fd.
 *
 * DiffID. sha256 over the whole decompressed stream, end-of-archive blocks
 * and any bytes after them included: the stream is always read to its end.
 * A truncated or corrupt compressed stream fails the call even when the tar
 * inside already ended.
 *
 * Applying. Member names are taken relative to the root: a leading "/" is
 * dropped (tar writers strip it too; "/etc/x" is the layer's etc/x), "." and
 * empty components are dropped, and ".." is resolved textually; a ".." that
 * would climb above the root is an error. If an entry and the existing path
 * are both directories, the directory's attributes are updated; otherwise
 * the existing path (recursively for a directory) is removed and the entry
 * created. Missing parent directories are created with mode 0755, owned by
 * the caller (root). Kept per entry: mode (with setuid, setgid, sticky), uid/gid numbers,
 * atime/mtime (atime = mtime when the tar has none; directory times are set
 * after the last entry, since creating entries changes them), xattrs, symlink
 * and hard-link targets. Regular files (sparse ones too), directories,
 * symlinks, hard links (to any non-directory), fifos and the character
 * devices below are supported.
 *
 * Xattrs. All xattrs the tar carries are set, except `trusted.overlay.*` and
 * `user.overlay.*` (overlayfs metadata, in its privileged and "userxattr"
 * forms), which are silently dropped: an image must never inject overlay
 * metadata such as redirects or opaque markers. On symlinks, fifos and
 * device nodes the kernel refuses `user.*` xattrs, so those are skipped;
 * other namespaces are set there through /proc/self/fd (needs /proc). A
 * filesystem that does not support xattrs at all (ENOTSUP) makes them
 * silently skipped, as Docker does.
 *
 * Whiteouts. `.wh.NAME` removes NAME of the lower layers and `.wh..wh..opq`
 * makes its directory opaque (all lower-layer children hidden), wherever the
 * marker appears among that directory's entries. Entries of this same layer
 * are never hidden by its own markers. The markers themselves are never
 * created. Any other `.wh.`-prefixed name (".wh." alone, ".wh..wh.plnk",
 * ".wh.." , a `.wh.` directory in a parent component) is an error.
 *  - Without BERTH__LAYER_WHITEOUT_OVERLAY (a "vfs" tree: root_dirfd already
 *    holds the lower layers' files): NAME is deleted recursively; for an
 *    opaque directory every child that this layer did not create is deleted.
 *  - With BERTH__LAYER_WHITEOUT_OVERLAY (root_dirfd is an empty overlayfs
 *    upper directory, lower layers elsewhere): NAME becomes a character
 *    device 0/0, an opaque directory gets trusted.overlay.opaque="y", and a
 *    directory that replaces a whiteout of this same layer is made opaque.
 *
 * Confinement. Nothing outside root_dirfd is ever created, changed or
 * removed, whatever the tar holds:
 *  - the parent directory of every entry is opened with openat2()
 *    RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: symlinks that stay inside the
 *    root are followed, an absolute symlink or one that climbs out fails the
 *    call ("path escapes the layer root"), a loop fails with ELOOP. Without
 *    openat2 (ENOSYS) the parent is walked one component at a time with
 *    O_NOFOLLOW, so any symlink in a parent path fails (stricter);
 *  - the final component is never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW,
 *    O_CREAT | O_EXCL after removing what was there);
 *  - a hard link's target is resolved with RESOLVE_BENEATH |
 *    RESOLVE_NO_SYMLINKS and the inode itself is linked (never a path);
 *  - device policy: fifos and character devices 0/0 (whiteouts), null 1:3,
 *    zero 1:5, full 1:7, random 1:8, urandom 1:9, tty 5:0, console 5:1 and
 *    ptmx 5:2 are created; every block device and every other character
 *    device is refused (error naming the entry and major:minor). A container
 *    never needs other nodes from its image: the runtime creates /dev;
 *  - names longer than PATH_MAX - 1 bytes or with a component longer than
 *    NAME_MAX, uids/gids that are not valid ids, entry types libarchive does
 *    not map to one of the supported types, and members whose data ends
 *    before their declared size are errors.
 * Names reach this code as C strings from libarchive, which ends a name at
 * its first NUL (a NUL inside a pax "path" record cuts the name there); the
 * shortened name is then checked like any other, so it cannot escape.
 *
 * Errors. Each failure is one line in err, starting "layer: "; a failure
 * tied to an entry names it: `layer: member "../../etc/x": path escapes the
 * layer root`. Control characters in quoted names are shown as '?'. On
 * failure the tree under root_dirfd is left as it is (the caller discards the
 * whole snapshot).
 *
 * Privileges. Creating devices, setting owners and trusted.* xattrs needs
 * root (CAP_MKNOD, CAP_CHOWN, CAP_FOWNER, CAP_SYS_ADMIN for trusted.*).
 */
#ifndef BERTH_LAYER_H
#define BERTH_LAYER_H

#include <stdint.h>

#include <berth/types.h>

#include "digest.h"

/* Keep deletions as overlay whiteouts (char 0/0, trusted.overlay.opaque=y); see above. */
#define BERTH__LAYER_WHITEOUT_OVERLAY 0x1u
/*
 * Start each regular file's writeback when it is written (sync_file_range,
 * not waited for), so that the caller's later syncfs() of the layer's
 * filesystem, which makes the layer durable, finds little left to write.
 */
#define BERTH__LAYER_WRITEBACK 0x2u
/*
 * For tests: resolve paths with the component-by-component O_NOFOLLOW walk
 * used when openat2() is missing, even where it exists.
 */
#define BERTH__LAYER_NO_OPENAT2 0x80000000u

struct berth__layer_result {
    char diff_id[BERTH_DIGEST_SIZE]; /* "sha256:<hex>" of the uncompressed tar */
    uint64_t uncompressed_size;      /* bytes of the uncompressed tar (what diff_id covers) */
    uint64_t compressed_size;        /* bytes read from the input stream */
    int root_entry; /* the layer set the root directory's own attributes ("./" entry) */
};

/*
 * Apply the layer read from @in to the directory @root_dirfd.
 *
 * @in          the layer blob; read until it returns 0. Borrowed: the caller
 *              closes it. Read from a helper thread (never concurrently).
 * @root_dirfd  the directory to apply into (O_PATH is fine). Borrowed.
 * @flags       BERTH__LAYER_* bits; unknown bits give -EINVAL.
 * @ret_result  on success, the DiffID and sizes (may be NULL).
 * @err         one-line reason on failure (may be NULL).
 *
 * Returns 0, or a negative errno: -EINVAL (bad tar, hostile member),
 * -ENOTSUP (unsupported compression or entry type), -EXDEV (path escaping
 * the root), -ELOOP (symlink loop, or a symlink where none is allowed),
 * -ENAMETOOLONG, -EPERM (refused device), -EBADMSG (truncated or corrupt
 * compressed stream or tar), -ENOMEM, or what the failing system call or the
 * input stream returned.
 * Not async-signal-safe; safe to call from several threads at once on
 * different roots. The calling thread's locale is switched to "C" for the
 * duration of the call (so libarchive hands names over as raw bytes).
 */
int berth__layer_apply(berth_stream_t *in, int root_dirfd, uint32_t flags,
                       struct berth__layer_result *ret_result, berth_err_t *err);

#endif /* BERTH_LAYER_H */
