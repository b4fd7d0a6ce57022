/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the layer tests: tars built in memory with libarchive's writer
 * (so any name, however hostile, can be written), a berth_stream_t over a
 * buffer, temporary directories and a hash of a whole tree.
 */
#ifndef BERTH_LAYER_TEST_H
#define BERTH_LAYER_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <archive.h>
#include <archive_entry.h>

#include "digest.h"
#include "layer.h"

struct tbuf {
    unsigned char *data;
    size_t len, cap;
};

void tbuf_free(struct tbuf *b);
void tbuf_append(struct tbuf *b, const void *data, size_t len);

enum tfilter { TF_NONE, TF_GZIP, TF_ZSTD, TF_XZ };

/* Adds a layer's entries to an open writer. */
typedef void (*layer_fn)(struct archive *a);

/*
 * The tar written by @fn, through @filter. Full pax (not pax_restricted) so
 * sub-second times are recorded. Aborts the test on failure.
 */
struct tbuf make_tar(layer_fn fn, enum tfilter filter);
/*
 * The same; with @pad 0 the output ends where the last filter's does,
 * without libarchive's zero padding to its 10240-byte block.
 */
struct tbuf make_tar_padded(layer_fn fn, enum tfilter filter, int pad);

/*
 * The uncompressed bytes of a gzip or zstd blob, decoded here with zlib and
 * libzstd directly (independently of the unpacker): the DiffID reference.
 */
struct tbuf decompress_ref(const struct tbuf *blob);

/* One entry; zero fields mean: regular file, 0644, root, mtime 1e9. */
struct tentry {
    const char *name;
    mode_t type; /* AE_IFREG, AE_IFDIR, ... */
    mode_t perm;
    int64_t uid, gid;
    int64_t mtime;
    long mtime_ns;
    int64_t atime; /* 0: not set */
    const void *data;
    size_t len;
    int64_t size; /* declared size when >= 0 and != len; -1 / 0: len */
    const char *symlink;
    const char *hardlink;
    unsigned rdev_major, rdev_minor;
    int64_t sparse_off, sparse_len; /* one data region of a sparse file; data is the whole file */
    const char *xattr_name[4];
    const char *xattr_value[4];
};

void t_entry(struct archive *a, const struct tentry *t);
void t_file(struct archive *a, const char *name, const char *content);
void t_dir(struct archive *a, const char *name);
void t_symlink(struct archive *a, const char *name, const char *target);
void t_hardlink(struct archive *a, const char *name, const char *target);

/*
 * A stream over a copy of @len bytes of @data handing out at most @max_read
 * bytes per read (0: any); when @fail_after >= 0, a read past that many bytes
 * fails with -EIO.
 */
berth_stream_t *mem_stream(const void *data, size_t len, size_t max_read, int64_t fail_after);

/* Apply @b to @rootfd through a mem_stream of odd-sized reads. */
int apply_buf(int rootfd, const struct tbuf *b, uint32_t flags, struct berth__layer_result *res,
              berth_err_t *err);

/* mkdtemp under $TMPDIR or /tmp into @path (PATH_MAX). Aborts on failure. */
void make_tmpdir(char *path);
/* rm -rf, unmounting nothing: callers unmount first. */
void remove_tree(const char *path);

/*
 * sha256 over a whole tree at @path: for each entry in name order its
 * relative name, type, mode, owner, size, mtime, rdev, content, link target
 * and xattrs.
 */
void tree_hash(const char *path, char out[BERTH_DIGEST_SIZE]);

/* Small checks relative to a directory fd; they fail the test with the path. */
void expect_file(int dirfd, const char *path, const char *content, mode_t perm);
void expect_missing(int dirfd, const char *path);
int path_exists(int dirfd, const char *path);

/* 1 when running as root (the layer tests need it); prints why not otherwise. */
int have_root(void);

#endif /* BERTH_LAYER_TEST_H */
