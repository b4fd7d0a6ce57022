/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Applying layers (core/lib/layer.h): everything a tar can carry reproduced
 * exactly from plain, gzip and zstd layers; DiffIDs over the uncompressed
 * bytes; whiteouts and opaque directories in vfs mode (two layers applied
 * into one tree) and in overlay mode, checked through a real overlayfs mount.
 * Tars are written in-process by libarchive's writer. Needs root.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "layer-test.h"

#define assert_ok(call, err)                                                                       \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s = %d (%s)", #call, rc_, (err).msg);                                       \
    } while (0)

struct fixture {
    char base[PATH_MAX];
    char root[PATH_MAX + 16];
    int rootfd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    make_tmpdir(f->base);
    snprintf(f->root, sizeof(f->root), "%s/root", f->base);
    if (mkdir(f->root, 0755) < 0)
        return -1;
    /* O_PATH, as a storage driver may hand it over. */
    f->rootfd = open(f->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (f->rootfd < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char merged[PATH_MAX + 16];

    close(f->rootfd);
    /* A failed overlay test may have left its mount (in this process's namespace). */
    snprintf(merged, sizeof(merged), "%s/merged", f->base);
    (void)umount2(merged, MNT_DETACH);
    remove_tree(f->base);
    free(f);
    return 0;
}

/* Deterministic bytes for large files. */
static unsigned char *pattern(size_t len, uint32_t seed)
{
    unsigned char *p = malloc(len);

    assert_non_null(p);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (unsigned char)(seed >> 24);
    }
    return p;
}

#define BIG_LEN    ((size_t)3 * 1024 * 1024 + 4321) /* spans several 1 MiB chunks */
#define SPARSE_LEN ((size_t)3 * 1024 * 1024)        /* holes around 4 KiB of data, and at the end */

static void full_layer(struct archive *a)
{
    unsigned char *big = pattern(BIG_LEN, 7);
    char *sparse;
    struct tentry t;

    t = (struct tentry){
        .name = "./", .type = AE_IFDIR, .perm = 0751, .mtime = 1600000000, .mtime_ns = 42
    };
    t_entry(a, &t);
    t = (struct tentry){ .name = "etc/",
                         .type = AE_IFDIR,
                         .perm = 0750,
                         .uid = 1234,
                         .gid = 4321,
                         .mtime = 1500000000,
                         .mtime_ns = 123456789,
                         .xattr_name = { "user.dirattr" },
                         .xattr_value = { "d" } };
    t_entry(a, &t);
    t = (struct tentry){ .name = "etc/passwd",
                         .data = "root:x:0:0\n",
                         .len = 11,
                         .uid = 1234,
                         .gid = 99,
                         .mtime = 1400000000,
                         .mtime_ns = 5,
                         .atime = 1300000000,
                         .xattr_name = { "user.test", "user.other", "trusted.overlay.redirect" },
                         .xattr_value = { "hello", "x", "/elsewhere" } };
    t_entry(a, &t);
    t = (struct tentry){ .name = "etc/empty", .perm = 0600 };
    t_entry(a, &t);
    t = (struct tentry){ .name = "bin/", .type = AE_IFDIR, .mtime = 1200000000 };
    t_entry(a, &t);
    t = (struct tentry){ .name = "bin/busybox", .data = big, .len = BIG_LEN, .perm = 0755 };
    t_entry(a, &t);
    t = (struct tentry){ .name = "bin/su", .data = "su\n", .len = 3, .perm = 04755 };
    t_entry(a, &t);
    t = (struct tentry){ .name = "bin/wall", .data = "wall\n", .len = 5, .perm = 02755, .gid = 5 };
    t_entry(a, &t);
    t = (struct tentry){ .name = "bin/sh",
                         .type = AE_IFLNK,
                         .perm = 0777,
                         .symlink = "busybox",
                         .uid = 1234,
                         .gid = 1234,
                         .mtime = 1100000000 };
    t_entry(a, &t);
    t_hardlink(a, "bin/ls", "bin/busybox");
    t_hardlink(a, "bin/sh.hard", "bin/sh"); /* a hard link to the symlink itself */
    sparse = calloc(1, SPARSE_LEN);
    assert_non_null(sparse);
    memset(sparse + SPARSE_LEN / 3, 'S', 4096);
    t = (struct tentry){ .name = "var/sparse",
                         .data = sparse,
                         .len = SPARSE_LEN,
                         .sparse_off = SPARSE_LEN / 3,
                         .sparse_len = 4096 };
    t_entry(a, &t);
    free(sparse);
    t = (struct tentry){ .name = "tmp/", .type = AE_IFDIR, .perm = 01777 };
    t_entry(a, &t);
    t = (struct tentry){ .name = "dev/", .type = AE_IFDIR };
    t_entry(a, &t);
    t = (struct tentry){ .name = "dev/null",
                         .type = AE_IFCHR,
                         .perm = 0666,
                         .rdev_major = 1,
                         .rdev_minor = 3,
                         .mtime = 1000000001 };
    t_entry(a, &t);
    t = (struct tentry){ .name = "dev/initctl", .type = AE_IFIFO, .perm = 0600, .uid = 7 };
    t_entry(a, &t);
    /* Leading "/" and "./" are taken relative to the root. */
    t_file(a, "/abs/file", "abs");
    t_file(a, "./dot/./file", "dot");
    /* A UTF-8 name, kept as bytes. */
    t_file(a, "caf\xc3\xa9", "utf8");
    free(big);
}

static void check_stat(int dirfd, const char *path, mode_t mode, uid_t uid, gid_t gid,
                       int64_t mtime, long nsec)
{
    struct stat st;

    if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    if (st.st_mode != mode)
        fail_msg("%s: mode 0%o, expected 0%o", path, st.st_mode, mode);
    if (st.st_uid != uid || st.st_gid != gid)
        fail_msg("%s: owner %u:%u, expected %u:%u", path, st.st_uid, st.st_gid, uid, gid);
    if (mtime && (st.st_mtim.tv_sec != mtime || st.st_mtim.tv_nsec != nsec))
        fail_msg("%s: mtime %lld.%09ld, expected %lld.%09ld", path, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec, (long long)mtime, nsec);
}

static void check_xattr(const char *path, const char *name, const char *value)
{
    char buf[256];
    ssize_t n = lgetxattr(path, name, buf, sizeof(buf) - 1);

    if (!value) {
        if (n >= 0 || errno != ENODATA)
            fail_msg("%s: xattr %s present, must not be", path, name);
        return;
    }
    if (n < 0)
        fail_msg("%s: xattr %s: %s", path, name, strerror(errno));
    buf[n] = '\0';
    assert_string_equal(buf, value);
}

static void check_full_layer(struct fixture *f)
{
    char path[PATH_MAX + 32], target[64];
    unsigned char *big = pattern(BIG_LEN, 7), *got = malloc(BIG_LEN + 1);
    struct stat a, b;
    ssize_t n;
    int fd;

    check_stat(f->rootfd, ".", S_IFDIR | 0751, 0, 0, 1600000000, 42);
    check_stat(f->rootfd, "etc", S_IFDIR | 0750, 1234, 4321, 1500000000, 123456789);
    check_stat(f->rootfd, "etc/passwd", S_IFREG | 0644, 1234, 99, 1400000000, 5);
    /* Before reading it: a read updates the atime. */
    assert_int_equal(fstatat(f->rootfd, "etc/passwd", &a, 0), 0);
    assert_int_equal(a.st_atim.tv_sec, 1300000000);
    expect_file(f->rootfd, "etc/passwd", "root:x:0:0\n", 0644);
    expect_file(f->rootfd, "etc/empty", "", 0600);
    check_stat(f->rootfd, "bin", S_IFDIR | 0755, 0, 0, 1200000000, 0);
    check_stat(f->rootfd, "bin/su", S_IFREG | 04755, 0, 0, 1000000000, 0);
    check_stat(f->rootfd, "bin/wall", S_IFREG | 02755, 0, 5, 1000000000, 0);
    check_stat(f->rootfd, "bin/sh", S_IFLNK | 0777, 1234, 1234, 1100000000, 0);
    check_stat(f->rootfd, "tmp", S_IFDIR | 01777, 0, 0, 1000000000, 0);
    check_stat(f->rootfd, "dev/null", S_IFCHR | 0666, 0, 0, 1000000001, 0);
    check_stat(f->rootfd, "dev/initctl", S_IFIFO | 0600, 7, 0, 1000000000, 0);
    assert_int_equal(fstatat(f->rootfd, "dev/null", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(major(a.st_rdev), 1);
    assert_int_equal(minor(a.st_rdev), 3);

    n = readlinkat(f->rootfd, "bin/sh", target, sizeof(target));
    assert_int_equal(n, 7);
    assert_memory_equal(target, "busybox", 7);

    /* The large file, byte for byte, and its hard link: one inode. */
    fd = openat(f->rootfd, "bin/busybox", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    n = 0;
    for (ssize_t k; (k = read(fd, got + n, BIG_LEN + 1 - (size_t)n)) > 0;)
        n += k;
    close(fd);
    assert_int_equal(n, BIG_LEN);
    assert_memory_equal(got, big, BIG_LEN);
    assert_int_equal(fstatat(f->rootfd, "bin/busybox", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(fstatat(f->rootfd, "bin/ls", &b, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    assert_int_equal(a.st_nlink, 2);

    /* The hard link to the symlink is that symlink's inode. */
    assert_int_equal(fstatat(f->rootfd, "bin/sh", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(fstatat(f->rootfd, "bin/sh.hard", &b, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISLNK(b.st_mode));
    assert_int_equal(a.st_ino, b.st_ino);

    /* The sparse file: right size and bytes, holes left unallocated. */
    fd = openat(f->rootfd, "var/sparse", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(a.st_size, SPARSE_LEN);
    assert_true(a.st_blocks * 512 < 512 * 1024);
    n = 0;
    for (ssize_t k; (k = read(fd, got + n, BIG_LEN + 1 - (size_t)n)) > 0;)
        n += k;
    close(fd);
    assert_int_equal(n, SPARSE_LEN);
    for (size_t i = 0; i < SPARSE_LEN; i++) {
        char want = i >= SPARSE_LEN / 3 && i < SPARSE_LEN / 3 + 4096 ? 'S' : 0;
        if (got[i] != (unsigned char)want)
            fail_msg("var/sparse: byte %zu is %d, expected %d", i, got[i], want);
    }

    snprintf(path, sizeof(path), "%s/etc/passwd", f->root);
    check_xattr(path, "user.test", "hello");
    check_xattr(path, "user.other", "x");
    check_xattr(path, "trusted.overlay.redirect", NULL); /* dropped */
    snprintf(path, sizeof(path), "%s/etc", f->root);
    check_xattr(path, "user.dirattr", "d");

    expect_file(f->rootfd, "abs/file", "abs", 0644);
    expect_file(f->rootfd, "dot/file", "dot", 0644);
    expect_file(f->rootfd, "caf\xc3\xa9", "utf8", 0644);
    free(big);
    free(got);
}

static void run_full(void **state, enum tfilter filter, uint32_t flags)
{
    struct fixture *f = *state;
    struct tbuf blob = make_tar(full_layer, filter);
    struct tbuf plain = filter == TF_NONE ? blob : decompress_ref(&blob);
    struct berth__layer_result res = { 0 };
    berth_err_t err = { 0 };
    char expect[BERTH_DIGEST_SIZE];

    if (filter == TF_GZIP)
        assert_memory_equal(blob.data, "\x1f\x8b", 2);
    if (filter == TF_ZSTD)
        assert_memory_equal(blob.data, "\x28\xb5\x2f\xfd", 4);
    assert_ok(apply_buf(f->rootfd, &blob, flags, &res, &err), err);
    check_full_layer(f);
    /* The DiffID is the sha256 of the uncompressed tar, padding included. */
    assert_int_equal(berth__sha256_buf(plain.data, plain.len, expect), 0);
    assert_string_equal(res.diff_id, expect);
    assert_int_equal(res.uncompressed_size, plain.len);
    assert_int_equal(res.compressed_size, blob.len);
    if (filter != TF_NONE)
        tbuf_free(&plain);
    tbuf_free(&blob);
}

static void test_layer_plain(void **state)
{
    run_full(state, TF_NONE, 0);
}

static void test_layer_gzip(void **state)
{
    run_full(state, TF_GZIP, 0);
}

static void test_layer_zstd(void **state)
{
    run_full(state, TF_ZSTD, 0);
}

/* The portable resolver (no openat2) gives the same tree. */
static void test_layer_no_openat2(void **state)
{
    run_full(state, TF_GZIP, BERTH__LAYER_NO_OPENAT2);
}

/* The same layer applied twice: every existing path is replaced or updated in place. */
static void test_layer_reapply(void **state)
{
    run_full(state, TF_ZSTD, 0);
    run_full(state, TF_ZSTD, 0);
}

/* Bytes after the end-of-archive blocks count towards the DiffID. */
static void test_layer_trailing_bytes(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(full_layer, TF_NONE);
    struct berth__layer_result res = { 0 };
    berth_err_t err = { 0 };
    char expect[BERTH_DIGEST_SIZE];
    static const char junk[7777];

    tbuf_append(&b, junk, sizeof(junk));
    tbuf_append(&b, "trailing", 8);
    assert_ok(apply_buf(f->rootfd, &b, 0, &res, &err), err);
    assert_int_equal(berth__sha256_buf(b.data, b.len, expect), 0);
    assert_string_equal(res.diff_id, expect);
    assert_int_equal(res.uncompressed_size, b.len);
    tbuf_free(&b);
}

static void gzip_member(struct tbuf *out, const unsigned char *data, size_t len)
{
    z_stream z = { 0 };
    unsigned char buf[65536];
    int r;

    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    do {
        z.next_out = buf;
        z.avail_out = sizeof(buf);
        r = deflate(&z, Z_FINISH);
        assert_true(r == Z_OK || r == Z_STREAM_END);
        tbuf_append(out, buf, sizeof(buf) - z.avail_out);
    } while (r != Z_STREAM_END);
    deflateEnd(&z);
}

static void zstd_frame(struct tbuf *out, const unsigned char *data, size_t len)
{
    size_t cap = ZSTD_compressBound(len), n;
    void *buf = malloc(cap);

    assert_non_null(buf);
    n = ZSTD_compress(buf, cap, data, len, 3);
    assert_false(ZSTD_isError(n));
    tbuf_append(out, buf, n);
    free(buf);
}

/* Several gzip members or zstd frames (parallel compressors write them) form one stream. */
static void test_layer_multi_member(void **state)
{
    struct fixture *f = *state;
    struct tbuf plain = make_tar(full_layer, TF_NONE);
    struct berth__layer_result res = { 0 };
    berth_err_t err = { 0 };
    char expect[BERTH_DIGEST_SIZE];
    size_t cut1 = 12345, cut2 = plain.len / 2 + 777;

    assert_int_equal(berth__sha256_buf(plain.data, plain.len, expect), 0);
    for (int kind = 0; kind < 2; kind++) {
        struct tbuf blob = { 0 };
        void (*part)(struct tbuf *, const unsigned char *, size_t) =
            kind ? zstd_frame : gzip_member;

        part(&blob, plain.data, cut1);
        part(&blob, plain.data + cut1, cut2 - cut1);
        part(&blob, plain.data + cut2, plain.len - cut2);
        assert_ok(apply_buf(f->rootfd, &blob, 0, &res, &err), err);
        check_full_layer(f);
        assert_string_equal(res.diff_id, expect);
        assert_int_equal(res.compressed_size, blob.len);
        tbuf_free(&blob);
    }
    tbuf_free(&plain);
}

static void empty_layer(struct archive *a)
{
}

/* An empty tar (only end-of-archive blocks) applies nothing and still has a DiffID. */
static void test_layer_empty_tar(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(empty_layer, TF_NONE);
    struct berth__layer_result res = { 0 };
    berth_err_t err = { 0 };
    char expect[BERTH_DIGEST_SIZE];

    assert_ok(apply_buf(f->rootfd, &b, 0, &res, &err), err);
    assert_int_equal(berth__sha256_buf(b.data, b.len, expect), 0);
    assert_string_equal(res.diff_id, expect);
    tbuf_free(&b);
}

/* A failing input stream fails the call with the stream's reason. */
static void test_layer_stream_error(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(full_layer, TF_GZIP);
    berth_stream_t *s = mem_stream(b.data, b.len, 4096, (int64_t)b.len / 2);
    berth_err_t err = { 0 };
    struct berth__layer_result res = { .uncompressed_size = 99 };
    int r = berth__layer_apply(s, f->rootfd, 0, &res, &err);

    s->close(s);
    assert_true(r < 0);
    assert_int_equal(err.code, r);
    assert_non_null(strstr(err.msg, "injected read error"));
    assert_int_equal(res.uncompressed_size, 99); /* untouched on failure */
    tbuf_free(&b);
}

/* ---- vfs mode: two layers into one tree ---- */

static void vfs_layer1(struct archive *a)
{
    struct tentry t;

    t_file(a, "keep", "keep");
    t_file(a, "gone.txt", "gone");
    t_dir(a, "gonedir/");
    t_file(a, "gonedir/inner", "inner");
    t_dir(a, "opq/");
    t_file(a, "opq/old1", "old1");
    t_dir(a, "opq/olddir/");
    t_file(a, "opq/olddir/deep", "deep");
    t_file(a, "f2d", "a file");
    t_dir(a, "d2f/");
    t_file(a, "d2f/child", "child");
    t_symlink(a, "sym", "keep");
    t_dir(a, "wd/");
    t_file(a, "wd/lower", "lower");
    t = (struct tentry){ .name = "opq2/", .type = AE_IFDIR };
    t_entry(a, &t);
    t_file(a, "opq2/old", "old");
}

static void vfs_layer2(struct archive *a)
{
    struct tentry t;

    t_file(a, ".wh.gone.txt", "");
    t_file(a, ".wh.gonedir", "");
    t_file(a, ".wh.nothing-there", "");
    t = (struct tentry){ .name = "opq/", .type = AE_IFDIR, .perm = 0700, .mtime = 1234567890 };
    t_entry(a, &t);
    t_file(a, "opq/new_before", "before");
    t_file(a, "opq/.wh..wh..opq", "");
    t_file(a, "opq/new_after", "after");
    t_file(a, "opq/olddir/newfile", "new");
    t_dir(a, "f2d/");
    t_file(a, "f2d/inside", "inside");
    t_file(a, "d2f", "now a file");
    t_file(a, "sym", "no longer a link");
    /* A file of this layer survives its own whiteout; a dir of it loses its lower children. */
    t_file(a, "same", "same layer");
    t_file(a, ".wh.same", "");
    t_file(a, "wd/upper", "upper");
    t_file(a, ".wh.wd", "");
    /* The opaque marker first, then the entries. */
    t_file(a, "opq2/.wh..wh..opq", "");
    t_file(a, "opq2/fresh", "fresh");
}

static void test_layer_vfs_whiteouts(void **state)
{
    struct fixture *f = *state;
    struct tbuf l1 = make_tar(vfs_layer1, TF_GZIP), l2 = make_tar(vfs_layer2, TF_ZSTD);
    berth_err_t err = { 0 };
    struct stat st;

    assert_ok(apply_buf(f->rootfd, &l1, 0, NULL, &err), err);
    assert_ok(apply_buf(f->rootfd, &l2, 0, NULL, &err), err);

    expect_file(f->rootfd, "keep", "keep", 0644);
    expect_missing(f->rootfd, "gone.txt");
    expect_missing(f->rootfd, "gonedir");
    expect_missing(f->rootfd, "nothing-there");
    expect_missing(f->rootfd, ".wh.gone.txt");
    expect_missing(f->rootfd, "opq/.wh..wh..opq");
    /* Opaque: lower children gone, this layer's kept (before and after the marker). */
    expect_missing(f->rootfd, "opq/old1");
    expect_missing(f->rootfd, "opq/olddir/deep");
    expect_file(f->rootfd, "opq/new_before", "before", 0644);
    expect_file(f->rootfd, "opq/new_after", "after", 0644);
    expect_file(f->rootfd, "opq/olddir/newfile", "new", 0644);
    check_stat(f->rootfd, "opq", S_IFDIR | 0700, 0, 0, 1234567890, 0);
    expect_missing(f->rootfd, "opq2/old");
    expect_file(f->rootfd, "opq2/fresh", "fresh", 0644);
    /* Replacements both ways, and a symlink replaced without being followed. */
    assert_int_equal(fstatat(f->rootfd, "f2d", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISDIR(st.st_mode));
    expect_file(f->rootfd, "f2d/inside", "inside", 0644);
    expect_file(f->rootfd, "d2f", "now a file", 0644);
    expect_file(f->rootfd, "sym", "no longer a link", 0644);
    expect_file(f->rootfd, "keep", "keep", 0644);
    expect_file(f->rootfd, "same", "same layer", 0644);
    expect_missing(f->rootfd, "wd/lower");
    expect_file(f->rootfd, "wd/upper", "upper", 0644);
    tbuf_free(&l1);
    tbuf_free(&l2);
}

/* ---- overlay mode ---- */

static void ovl_layer1(struct archive *a)
{
    t_file(a, "a", "a");
    t_dir(a, "d/");
    t_file(a, "d/x", "x");
    t_file(a, "d/y", "y");
    t_dir(a, "o/");
    t_file(a, "o/p", "p");
    t_dir(a, "o/sub/");
    t_file(a, "o/sub/q", "q");
    t_dir(a, "r/");
    t_file(a, "r/old", "old");
}

static void ovl_layer2(struct archive *a)
{
    t_file(a, ".wh.a", "");
    t_dir(a, "d/");
    t_file(a, "d/.wh.x", "");
    t_dir(a, "o/");
    t_file(a, "o/new1", "new1");
    t_file(a, "o/.wh..wh..opq", "");
    t_file(a, "o/new2", "new2");
    /* Whiteout, then a new directory of the same name: it must hide r/old. */
    t_file(a, ".wh.r", "");
    t_dir(a, "r/");
    t_file(a, "r/new", "new");
}

static void check_whiteout(int dirfd, const char *path)
{
    struct stat st;

    if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        fail_msg("whiteout %s: %s", path, strerror(errno));
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0))
        fail_msg("%s is not a 0/0 character device", path);
}

static void test_layer_overlay_whiteouts(void **state)
{
    struct fixture *f = *state;
    struct tbuf l1 = make_tar(ovl_layer1, TF_NONE), l2 = make_tar(ovl_layer2, TF_GZIP);
    char l1dir[PATH_MAX + 8], l2dir[PATH_MAX + 8], merged[PATH_MAX + 8], opts[3 * PATH_MAX];
    char path[PATH_MAX + 32];
    berth_err_t err = { 0 };
    int fd1, fd2, mfd, r;

    snprintf(l1dir, sizeof(l1dir), "%s/l1", f->base);
    snprintf(l2dir, sizeof(l2dir), "%s/l2", f->base);
    snprintf(merged, sizeof(merged), "%s/merged", f->base);
    assert_int_equal(mkdir(l1dir, 0755), 0);
    assert_int_equal(mkdir(l2dir, 0755), 0);
    assert_int_equal(mkdir(merged, 0755), 0);
    fd1 = open(l1dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    fd2 = open(l2dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd1 >= 0 && fd2 >= 0);
    assert_ok(apply_buf(fd1, &l1, BERTH__LAYER_WHITEOUT_OVERLAY, NULL, &err), err);
    assert_ok(apply_buf(fd2, &l2, BERTH__LAYER_WHITEOUT_OVERLAY, NULL, &err), err);

    /* The upper layer holds overlayfs's markers, never the tar's. */
    check_whiteout(fd2, "a");
    check_whiteout(fd2, "d/x");
    expect_missing(fd2, ".wh.a");
    expect_missing(fd2, "d/.wh.x");
    expect_missing(fd2, "o/.wh..wh..opq");
    snprintf(path, sizeof(path), "%s/o", l2dir);
    check_xattr(path, "trusted.overlay.opaque", "y");
    snprintf(path, sizeof(path), "%s/r", l2dir);
    check_xattr(path, "trusted.overlay.opaque", "y");
    snprintf(path, sizeof(path), "%s/d", l2dir);
    check_xattr(path, "trusted.overlay.opaque", NULL);

    /* A real overlayfs, in a mount namespace of our own so nothing leaks. */
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        fprintf(stderr, "SKIP part: no mount namespace: %s\n", strerror(errno));
        close(fd1);
        close(fd2);
        tbuf_free(&l1);
        tbuf_free(&l2);
        skip();
    }
    snprintf(opts, sizeof(opts), "lowerdir=%s:%s", l2dir, l1dir);
    r = mount("overlay", merged, "overlay", MS_RDONLY, opts);
    if (r < 0 && (errno == ENODEV || errno == EPERM)) {
        fprintf(stderr, "SKIP part: overlayfs mount: %s\n", strerror(errno));
        close(fd1);
        close(fd2);
        tbuf_free(&l1);
        tbuf_free(&l2);
        skip();
    }
    if (r < 0)
        fail_msg("mount overlay: %s", strerror(errno));
    mfd = open(merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(mfd >= 0);
    expect_missing(mfd, "a");
    expect_missing(mfd, "d/x");
    expect_file(mfd, "d/y", "y", 0644);
    expect_missing(mfd, "o/p");
    expect_missing(mfd, "o/sub");
    expect_file(mfd, "o/new1", "new1", 0644);
    expect_file(mfd, "o/new2", "new2", 0644);
    expect_missing(mfd, "r/old");
    expect_file(mfd, "r/new", "new", 0644);
    close(mfd);
    assert_int_equal(umount2(merged, 0), 0);
    close(fd1);
    close(fd2);
    tbuf_free(&l1);
    tbuf_free(&l2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layer_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_zstd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_no_openat2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_reapply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_trailing_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_multi_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_empty_tar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_stream_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_vfs_whiteouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_overlay_whiteouts, setup, teardown),
    };

    if (!have_root())
        return 77;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
