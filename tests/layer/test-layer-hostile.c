/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile layers (core/lib/layer.h, "Confinement"): each test applies one
 * malicious tar and checks that the call fails, that the message names the
 * member, and that a canary tree next to the root (files, a subdirectory and
 * a symlink) is bit-for-bit unchanged and nothing new appeared beside it.
 * Needs root.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "layer-test.h"

struct fixture {
    char base[PATH_MAX];
    char root[PATH_MAX + 16];
    char canary_hash[BERTH_DIGEST_SIZE];
    char base_hash[BERTH_DIGEST_SIZE];
    int rootfd;
};

/* Absolute path of the canary, for layers that aim at it. */
static char canary[PATH_MAX + 16];
/* A symlink target or name built at run time. */
static char scratch[PATH_MAX * 2];

static void write_file(const char *dir, const char *name, const char *content, mode_t mode)
{
    char path[PATH_MAX * 2];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

/* The names directly in base (root and canary), hashed: nothing may appear beside them. */
static void base_listing(const char *base, char out[BERTH_DIGEST_SIZE])
{
    berth_sha256_t s;
    DIR *d = opendir(base);
    struct dirent *de;
    char names[16][256];
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d))) {
        assert_true(n < 16);
        snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    assert_int_equal(berth__sha256_init(&s), 0);
    for (int i = 0; i < n; i++)
        berth__sha256_update(&s, names[i], strlen(names[i]) + 1);
    assert_int_equal(berth__sha256_final(&s, out), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char sub[PATH_MAX + 32];

    if (!f)
        return -1;
    make_tmpdir(f->base);
    snprintf(f->root, sizeof(f->root), "%s/root", f->base);
    snprintf(canary, sizeof(canary), "%s/canary", f->base);
    snprintf(sub, sizeof(sub), "%s/sub", canary);
    if (mkdir(f->root, 0755) < 0 || mkdir(canary, 0755) < 0 || mkdir(sub, 0700) < 0)
        return -1;
    write_file(canary, "a.txt", "canary a\n", 0644);
    write_file(canary, "secret", "do not touch\n", 0600);
    write_file(sub, "b.txt", "canary b\n", 0644);
    snprintf(sub, sizeof(sub), "%s/link", canary);
    if (symlink("a.txt", sub) < 0)
        return -1;
    tree_hash(canary, f->canary_hash);
    base_listing(f->base, f->base_hash);
    f->rootfd = open(f->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (f->rootfd < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    close(f->rootfd);
    remove_tree(f->base);
    free(f);
    return 0;
}

static void expect_canary_intact(struct fixture *f)
{
    char now[BERTH_DIGEST_SIZE];

    tree_hash(canary, now);
    if (strcmp(now, f->canary_hash) != 0)
        fail_msg("the canary tree next to the root changed");
    base_listing(f->base, now);
    if (strcmp(now, f->base_hash) != 0)
        fail_msg("something appeared next to the root");
}

/*
 * Apply @b; expect failure with @code (0: any negative), a message naming
 * @member (NULL: no member) and containing @what, and an intact canary.
 */
static void expect_refused(struct fixture *f, const struct tbuf *b, uint32_t flags, int code,
                           const char *member, const char *what)
{
    struct berth__layer_result res = { .compressed_size = 4242 };
    berth_err_t err = { 0 };
    char want[PATH_MAX + 32];
    int r = apply_buf(f->rootfd, b, flags, &res, &err);

    if (r >= 0)
        fail_msg("the hostile layer was applied (expected \"%s\")", what);
    print_message("refused (%d): %s\n", r, err.msg);
    if (code && r != code)
        fail_msg("returned %d (%s), expected %d", r, err.msg, code);
    assert_int_equal(err.code, r);
    assert_non_null(strchr(err.msg, ' '));
    assert_null(strchr(err.msg, '\n'));
    if (member) {
        snprintf(want, sizeof(want), "member \"%s\"", member);
        if (!strstr(err.msg, want))
            fail_msg("message \"%s\" does not name %s", err.msg, want);
    }
    if (!strstr(err.msg, what))
        fail_msg("message \"%s\" does not say \"%s\"", err.msg, what);
    assert_int_equal(res.compressed_size, 4242);
    expect_canary_intact(f);
}

static void refuse_fl(void **state, layer_fn fn, enum tfilter filter, uint32_t flags, int code,
                      const char *member, const char *what)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(fn, filter);

    expect_refused(f, &b, flags, code, member, what);
    tbuf_free(&b);
}

static void refuse(void **state, layer_fn fn, enum tfilter filter, int code, const char *member,
                   const char *what)
{
    refuse_fl(state, fn, filter, 0, code, member, what);
}

/* ---- names ---- */

static void l_dotdot(struct archive *a)
{
    t_file(a, "ok", "fine");
    t_file(a, "../canary/evil", "x");
}

static void test_hostile_dotdot(void **state)
{
    refuse(state, l_dotdot, TF_NONE, -EXDEV, "../canary/evil", "escapes the layer root");
}

static void l_dotdot_deep(struct archive *a)
{
    t_file(a, "a/b/../../../canary/a.txt", "pwned");
}

static void test_hostile_dotdot_inner(void **state)
{
    refuse(state, l_dotdot_deep, TF_GZIP, -EXDEV, "a/b/../../../canary/a.txt",
           "escapes the layer root");
}

static void l_absolute(struct archive *a)
{
    t_file(a, "/../canary/a.txt", "pwned");
}

static void test_hostile_absolute(void **state)
{
    refuse(state, l_absolute, TF_NONE, -EXDEV, "/../canary/a.txt", "escapes the layer root");
}

static void l_long_name(struct archive *a)
{
    char name[5001];

    for (int i = 0; i < 5000; i++)
        name[i] = i % 100 == 99 ? '/' : 'n';
    name[5000] = '\0';
    t_file(a, name, "long");
}

static void test_hostile_long_name(void **state)
{
    refuse(state, l_long_name, TF_NONE, -ENAMETOOLONG, NULL, "name too long");
}

static void l_long_component(struct archive *a)
{
    memset(scratch, 'c', 300);
    scratch[300] = '\0';
    t_file(a, scratch, "long");
}

static void test_hostile_long_component(void **state)
{
    refuse(state, l_long_component, TF_NONE, -ENAMETOOLONG, NULL, "name too long");
}

static void l_bad_whiteout(struct archive *a)
{
    t_dir(a, ".wh..wh.plnk/");
}

static void l_whiteout_parent(struct archive *a)
{
    t_file(a, "x/.wh.dir/file", "x");
}

static void test_hostile_whiteout_names(void **state)
{
    refuse(state, l_bad_whiteout, TF_NONE, -EINVAL, ".wh..wh.plnk/", "unsupported whiteout");
    refuse(state, l_whiteout_parent, TF_NONE, -EINVAL, "x/.wh.dir/file", "whiteout name");
}

static void l_root_file(struct archive *a)
{
    t_file(a, ".", "not a dir");
}

static void test_hostile_root_replaced(void **state)
{
    refuse(state, l_root_file, TF_NONE, -EINVAL, ".", "layer root");
}

static void l_bad_owner(struct archive *a)
{
    struct tentry t = { .name = "owned", .uid = 4294967296ll, .data = "x", .len = 1 };
    t_entry(a, &t);
}

static void test_hostile_owner(void **state)
{
    refuse(state, l_bad_owner, TF_NONE, -EINVAL, "owned", "invalid owner");
}

/* ---- symlinks ---- */

static void l_symlink_root(struct archive *a)
{
    t_symlink(a, "link", "/");
    snprintf(scratch, sizeof(scratch), "link%s/a.txt", canary);
    t_file(a, scratch, "pwned");
}

static void test_hostile_symlink_to_root(void **state)
{
    refuse(state, l_symlink_root, TF_NONE, -EXDEV, NULL, "escapes the layer root");
}

static void l_symlink_abs(struct archive *a)
{
    t_symlink(a, "link", canary);
    t_file(a, "link/a.txt", "pwned");
}

static void test_hostile_symlink_absolute(void **state)
{
    refuse(state, l_symlink_abs, TF_GZIP, -EXDEV, "link/a.txt", "escapes the layer root");
}

/* "up" -> "../.." is the directory holding the test's base: aim at the canary through it. */
static void l_symlink_up(struct archive *a)
{
    char base[PATH_MAX + 16];
    const char *name;

    snprintf(base, sizeof(base), "%s", canary);
    *strrchr(base, '/') = '\0';
    name = strrchr(base, '/') + 1;
    t_symlink(a, "up", "../..");
    snprintf(scratch, sizeof(scratch), "up/%s/canary/a.txt", name);
    t_file(a, scratch, "pwned");
}

static void test_hostile_symlink_dotdot(void **state)
{
    refuse(state, l_symlink_up, TF_ZSTD, -EXDEV, NULL, "escapes the layer root");
}

static void l_symlink_canary(struct archive *a)
{
    t_symlink(a, "dir/up", "../../canary");
    t_file(a, "dir/up/a.txt", "pwned");
}

static void test_hostile_symlink_relative(void **state)
{
    refuse(state, l_symlink_canary, TF_NONE, -EXDEV, "dir/up/a.txt", "escapes the layer root");
}

/* A symlink made by an earlier layer is just as dangerous. */
static void l_link_only(struct archive *a)
{
    t_symlink(a, "etc", canary);
}

static void l_through_existing(struct archive *a)
{
    t_file(a, "etc/a.txt", "pwned");
}

static void test_hostile_symlink_from_lower_layer(void **state)
{
    struct fixture *f = *state;
    struct tbuf l1 = make_tar(l_link_only, TF_NONE), l2 = make_tar(l_through_existing, TF_NONE);
    berth_err_t err = { 0 };

    assert_int_equal(apply_buf(f->rootfd, &l1, 0, NULL, &err), 0);
    expect_refused(f, &l2, 0, -EXDEV, "etc/a.txt", "escapes the layer root");
    tbuf_free(&l1);
    tbuf_free(&l2);
}

/* Whiteouts and opaque markers through a symlink would delete outside. */
static void l_whiteout_through(struct archive *a)
{
    t_symlink(a, "link", canary);
    t_file(a, "link/.wh.a.txt", "");
}

static void l_opaque_through(struct archive *a)
{
    t_symlink(a, "link", canary);
    t_file(a, "link/.wh..wh..opq", "");
}

static void test_hostile_whiteout_through_symlink(void **state)
{
    refuse(state, l_whiteout_through, TF_NONE, -EXDEV, "link/.wh.a.txt", "escapes");
    refuse(state, l_opaque_through, TF_NONE, -EXDEV, "link/.wh..wh..opq", "escapes");
}

static void test_hostile_whiteout_through_symlink_overlay(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(l_opaque_through, TF_NONE);

    expect_refused(f, &b, BERTH__LAYER_WHITEOUT_OVERLAY, -EXDEV, "link/.wh..wh..opq", "escapes");
    tbuf_free(&b);
    b = make_tar(l_whiteout_through, TF_NONE);
    expect_refused(f, &b, BERTH__LAYER_WHITEOUT_OVERLAY, -EXDEV, "link/.wh.a.txt", "escapes");
    tbuf_free(&b);
}

static void l_loop(struct archive *a)
{
    t_symlink(a, "l1", "l2");
    t_symlink(a, "l2", "l1");
    t_file(a, "l1/x", "x");
}

static void test_hostile_symlink_loop(void **state)
{
    refuse(state, l_loop, TF_NONE, -ELOOP, "l1/x", "loop");
}

/* The portable resolver refuses every symlink in a parent, and the same escapes. */
static void test_hostile_no_openat2(void **state)
{
    uint32_t fl = BERTH__LAYER_NO_OPENAT2;

    refuse_fl(state, l_symlink_abs, TF_NONE, fl, 0, "link/a.txt", "symlink");
    refuse_fl(state, l_symlink_up, TF_NONE, fl, 0, NULL, "symlink");
    refuse_fl(state, l_loop, TF_NONE, fl, 0, "l1/x", "symlink");
    refuse_fl(state, l_dotdot, TF_NONE, fl, -EXDEV, "../canary/evil", "escapes the layer root");
    refuse_fl(state, l_whiteout_through, TF_NONE, fl, 0, "link/.wh.a.txt", "symlink");
}

/* ---- hard links ---- */

static void l_hardlink_out(struct archive *a)
{
    t_hardlink(a, "hl", "../canary/secret");
}

static void test_hostile_hardlink_escape(void **state)
{
    refuse(state, l_hardlink_out, TF_NONE, -EXDEV, "hl", "escapes the layer root");
}

static void l_hardlink_via_symlink(struct archive *a)
{
    t_symlink(a, "link", canary);
    t_hardlink(a, "hl", "link/secret");
}

static void test_hostile_hardlink_through_symlink(void **state)
{
    refuse(state, l_hardlink_via_symlink, TF_GZIP, -ELOOP, "hl", "symlink");
}

static void l_hardlink_abs(struct archive *a)
{
    snprintf(scratch, sizeof(scratch), "%s/secret", canary);
    t_hardlink(a, "hl", scratch); /* leading "/" is the layer root: no such file there */
}

static void test_hostile_hardlink_absolute(void **state)
{
    refuse(state, l_hardlink_abs, TF_NONE, -ENOENT, "hl", "hard link target");
}

/* ---- devices ---- */

static void l_block(struct archive *a)
{
    struct tentry t = { .name = "dev/sda", .type = AE_IFBLK, .rdev_major = 8, .rdev_minor = 0 };
    t_entry(a, &t);
}

static void test_hostile_block_device(void **state)
{
    refuse(state, l_block, TF_NONE, -EPERM, "dev/sda", "block device 8:0");
}

static void l_char80(struct archive *a)
{
    struct tentry t = { .name = "dev/c80", .type = AE_IFCHR, .rdev_major = 8, .rdev_minor = 0 };
    t_entry(a, &t);
}

static void l_mem(struct archive *a)
{
    struct tentry t = { .name = "dev/mem", .type = AE_IFCHR, .rdev_major = 1, .rdev_minor = 1 };
    t_entry(a, &t);
}

static void test_hostile_char_device(void **state)
{
    refuse(state, l_char80, TF_NONE, -EPERM, "dev/c80", "character device 8:0");
    refuse(state, l_mem, TF_ZSTD, -EPERM, "dev/mem", "character device 1:1");
}

/* ---- truncation and formats ---- */

static void l_big(struct archive *a)
{
    static char data[300000];
    struct tentry t = { .name = "big", .data = data, .len = sizeof(data) };
    uint32_t x = 99;

    /* Incompressible, so a cut in the middle of the blob is a cut in big's data. */
    for (size_t i = 0; i < sizeof(data); i++) {
        x = x * 1664525u + 1013904223u;
        data[i] = (char)(x >> 24);
    }
    t_file(a, "first", "first");
    t_entry(a, &t);
}

static void test_hostile_size_beyond_data(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(l_big, TF_NONE);

    /* Cut in the middle of big's data: its header promises far more. */
    b.len = 4 * 512 + 100000;
    expect_refused(f, &b, 0, -EBADMSG, "big", "truncated");
    tbuf_free(&b);
}

static void test_hostile_truncated_gzip(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar_padded(l_big, TF_GZIP, 0);
    size_t len = b.len;

    b.len = len / 2;
    expect_refused(f, &b, 0, -EBADMSG, "big", "truncated gzip stream");
    /* Only the trailer missing: the tar inside is complete, the blob is not. */
    b.len = len - 4;
    expect_refused(f, &b, 0, -EBADMSG, NULL, "truncated gzip stream");
    tbuf_free(&b);
}

static void test_hostile_truncated_zstd(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar_padded(l_big, TF_ZSTD, 0);
    size_t len = b.len;

    b.len = len / 2;
    expect_refused(f, &b, 0, -EBADMSG, "big", "truncated zstd stream");
    b.len = len - 3;
    expect_refused(f, &b, 0, -EBADMSG, NULL, "truncated zstd stream");
    tbuf_free(&b);
}

static void test_hostile_corrupt_gzip(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(l_big, TF_GZIP);

    for (size_t i = 40; i < 80; i++)
        b.data[i] ^= 0x5a;
    expect_refused(f, &b, 0, 0, NULL, "gzip");
    tbuf_free(&b);
}

/* Zero padding after the stream is accepted (bsdtar writes it); anything else is not. */
static void test_hostile_trailing_garbage(void **state)
{
    struct fixture *f = *state;

    for (int z = 0; z < 2; z++) {
        struct tbuf b = make_tar_padded(l_big, z ? TF_ZSTD : TF_GZIP, 0);
        static const char zeros[3000], tail[] = "\0\0\0junk";

        tbuf_append(&b, zeros, sizeof(zeros));
        tbuf_append(&b, tail, sizeof(tail) - 1);
        expect_refused(f, &b, 0, -EBADMSG, NULL, "trailing data after the");
        tbuf_free(&b);
    }
}

static void test_hostile_xz(void **state)
{
    refuse(state, l_big, TF_XZ, -ENOTSUP, NULL, "unsupported layer compression (xz)");
}

static void test_hostile_garbage(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = { 0 };
    char junk[4096];

    memset(junk, 'g', sizeof(junk));
    tbuf_append(&b, junk, sizeof(junk));
    expect_refused(f, &b, 0, -ENOTSUP, NULL, "unsupported layer compression");
    b.len = 0;
    expect_refused(f, &b, 0, -EINVAL, NULL, "empty");
    /* A ustar magic but a broken header. */
    memset(junk, 0, sizeof(junk));
    memcpy(junk, "name", 4);
    memcpy(junk + 257, "ustar", 6);
    tbuf_append(&b, junk, sizeof(junk));
    expect_refused(f, &b, 0, -EBADMSG, NULL, "not a valid tar archive");
    tbuf_free(&b);
}

/* ---- overlay metadata ---- */

static void l_overlay_xattrs(struct archive *a)
{
    struct tentry t = { .name = "d/",
                        .type = AE_IFDIR,
                        .xattr_name = { "trusted.overlay.redirect", "trusted.overlay.opaque",
                                        "user.overlay.origin", "user.kept" },
                        .xattr_value = { "/etc", "y", "x", "kept" } };
    t_entry(a, &t);
    t = (struct tentry){ .name = "f",
                         .data = "f",
                         .len = 1,
                         .xattr_name = { "trusted.overlay.metacopy" },
                         .xattr_value = { "" } };
    t_entry(a, &t);
}

/*
 * Overlay metadata in a tar is dropped, not applied: the call succeeds (this
 * case is not an error) but no trusted.overlay.* / user.overlay.* xattr
 * reaches the tree, in either mode.
 */
static void test_hostile_overlay_xattrs_dropped(void **state)
{
    struct fixture *f = *state;
    struct tbuf b = make_tar(l_overlay_xattrs, TF_NONE);
    const char *dropped[] = { "trusted.overlay.redirect", "trusted.overlay.opaque",
                              "user.overlay.origin", "trusted.overlay.metacopy" };
    berth_err_t err = { 0 };
    char path[PATH_MAX + 32], val[64];

    for (int mode = 0; mode < 2; mode++) {
        uint32_t fl = mode ? BERTH__LAYER_WHITEOUT_OVERLAY : 0;

        if (apply_buf(f->rootfd, &b, fl, NULL, &err) != 0)
            fail_msg("apply: %s", err.msg);
        for (int i = 0; i < 4; i++) {
            snprintf(path, sizeof(path), "%s/%s", f->root, i < 3 ? "d" : "f");
            if (lgetxattr(path, dropped[i], val, sizeof(val)) >= 0 || errno != ENODATA)
                fail_msg("%s carries %s", path, dropped[i]);
        }
        snprintf(path, sizeof(path), "%s/d", f->root);
        assert_int_equal(lgetxattr(path, "user.kept", val, sizeof(val)), 4);
        expect_canary_intact(f);
    }
    tbuf_free(&b);
}

/* ---- failure while the decompressor is far ahead ---- */

static void l_bad_then_data(struct archive *a)
{
    static char data[1 << 20];
    char name[32];

    t_file(a, "../escape", "x");
    for (int i = 0; i < 24; i++) {
        for (size_t k = 0; k < sizeof(data); k++)
            data[k] = (char)(k * 31 + (size_t)i);
        snprintf(name, sizeof(name), "f%d", i);
        struct tentry t = { .name = name, .data = data, .len = sizeof(data) };
        t_entry(a, &t);
    }
}

/* The helper thread is stopped and joined (ASan/LSan see every path). */
static void test_hostile_early_failure(void **state)
{
    refuse(state, l_bad_then_data, TF_GZIP, -EXDEV, "../escape", "escapes");
    refuse(state, l_bad_then_data, TF_ZSTD, -EXDEV, "../escape", "escapes");
    refuse(state, l_bad_then_data, TF_NONE, -EXDEV, "../escape", "escapes");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_hostile_dotdot),
        T(test_hostile_dotdot_inner),
        T(test_hostile_absolute),
        T(test_hostile_long_name),
        T(test_hostile_long_component),
        T(test_hostile_whiteout_names),
        T(test_hostile_root_replaced),
        T(test_hostile_owner),
        T(test_hostile_symlink_to_root),
        T(test_hostile_symlink_absolute),
        T(test_hostile_symlink_dotdot),
        T(test_hostile_symlink_relative),
        T(test_hostile_symlink_from_lower_layer),
        T(test_hostile_whiteout_through_symlink),
        T(test_hostile_whiteout_through_symlink_overlay),
        T(test_hostile_symlink_loop),
        T(test_hostile_no_openat2),
        T(test_hostile_hardlink_escape),
        T(test_hostile_hardlink_through_symlink),
        T(test_hostile_hardlink_absolute),
        T(test_hostile_block_device),
        T(test_hostile_char_device),
        T(test_hostile_size_beyond_data),
        T(test_hostile_truncated_gzip),
        T(test_hostile_truncated_zstd),
        T(test_hostile_corrupt_gzip),
        T(test_hostile_trailing_garbage),
        T(test_hostile_xz),
        T(test_hostile_garbage),
        T(test_hostile_overlay_xattrs_dropped),
        T(test_hostile_early_failure),
    };
#undef T

    if (!have_root())
        return 77;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
