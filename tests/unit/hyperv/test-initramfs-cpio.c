/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the hyperv initramfs writer (initramfs-cpio.h) and its
 * command, berth-mkinitramfs. Archives are read back by a newc parser of the
 * test's own (checking magic, alignment, fields, trailer), after inflating
 * the gzip ones with zlib, and by GNU cpio when it is installed.
 *
 * argv[1]: the berth-mkinitramfs binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "initramfs-cpio.h"

static const char *mkinitramfs_path;

/* One entry as read back from an archive; data points into the archive buffer. */
struct entry {
    char name[256];
    uint32_t ino, mode, uid, gid, nlink, mtime, size, rmajor, rminor;
    const unsigned char *data;
};

struct archive {
    unsigned char *buf;
    size_t len;
    struct entry e[64];
    size_t n;
};

static uint32_t hex8(const unsigned char *p)
{
    char s[9];
    memcpy(s, p, 8);
    s[8] = '\0';
    for (int i = 0; i < 8; i++)
        assert_non_null(strchr("0123456789ABCDEFabcdef", s[i]));
    return (uint32_t)strtoul(s, NULL, 16);
}

/* Parse a whole newc archive, asserting its framing; the trailer is not stored. */
static void parse(struct archive *a)
{
    size_t off = 0;
    a->n = 0;
    for (;;) {
        assert_int_equal(off % 4, 0);
        assert_true(off + 110 <= a->len);
        const unsigned char *h = a->buf + off;
        assert_memory_equal(h, "070701", 6);
        struct entry e = { 0 };
        uint32_t f[13];
        for (int i = 0; i < 13; i++)
            f[i] = hex8(h + 6 + 8 * i);
        e.ino = f[0], e.mode = f[1], e.uid = f[2], e.gid = f[3], e.nlink = f[4];
        e.mtime = f[5], e.size = f[6], e.rmajor = f[9], e.rminor = f[10];
        uint32_t namesize = f[11];
        assert_int_equal(f[12], 0); /* check field: 0 in newc */
        assert_true(namesize >= 2 && namesize <= sizeof(e.name));
        assert_true(off + 110 + namesize <= a->len);
        assert_int_equal(h[110 + namesize - 1], '\0');
        memcpy(e.name, h + 110, namesize);
        off += 110 + namesize;
        off = (off + 3) & ~(size_t)3;
        assert_true(off + e.size <= a->len);
        e.data = a->buf + off;
        off += e.size;
        off = (off + 3) & ~(size_t)3;
        if (strcmp(e.name, "TRAILER!!!") == 0)
            break;
        assert_true(a->n < sizeof(a->e) / sizeof(a->e[0]));
        a->e[a->n++] = e;
    }
    /* Nothing after the trailer but its padding. */
    assert_int_equal(off, a->len);
}

static const struct entry *find(const struct archive *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->e[i].name, name) == 0)
            return &a->e[i];
    return NULL;
}

static void read_all(int fd, struct archive *a)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    a->len = (size_t)st.st_size;
    a->buf = malloc(a->len ? a->len : 1);
    assert_non_null(a->buf);
    assert_int_equal(pread(fd, a->buf, a->len, 0), (ssize_t)a->len);
}

static void gunzip(struct archive *a)
{
    z_stream zs = { 0 };
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    size_t cap = 1 << 20, len = 0;
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = a->buf;
    zs.avail_in = (uInt)a->len;
    int zr;
    do {
        if (len == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        zs.next_out = out + len;
        zs.avail_out = (uInt)(cap - len);
        zr = inflate(&zs, Z_NO_FLUSH);
        assert_true(zr == Z_OK || zr == Z_STREAM_END);
        len = cap - zs.avail_out;
    } while (zr != Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0); /* one gzip member, nothing after it */
    inflateEnd(&zs);
    free(a->buf);
    a->buf = out;
    a->len = len;
}

static int tmpfile_fd(void)
{
    char path[] = "/tmp/berth-cpio-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* A host file of @p len bytes of a pattern, for hv_cpio_add_file(). */
static void make_host_file(char *path, size_t pathlen, const char *dir, const char *name,
                           size_t len, mode_t mode)
{
    snprintf(path, pathlen, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)(i * 7 + len);
        assert_int_equal(write(fd, &b, 1), 1);
    }
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void check_pattern(const struct entry *e, size_t len)
{
    assert_int_equal(e->size, len);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(e->data[i], (unsigned char)(i * 7 + len));
}

struct fixture {
    char dir[64];
    char big[128], odd[128], empty[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/berth-cpio-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    make_host_file(f->big, sizeof(f->big), f->dir, "big", 200001, 0750);
    make_host_file(f->odd, sizeof(f->odd), f->dir, "odd", 5, 0644);
    make_host_file(f->empty, sizeof(f->empty), f->dir, "empty", 0, 0600);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    int r = system(cmd);
    free(f);
    return r == 0 ? 0 : -1;
}

/* The same entries for the plain and gzip runs: every kind, sizes 0..3 mod 4. */
static void write_sample(struct fixture *f, int fd, uint32_t flags)
{
    hv_cpio_t *c = NULL;
    berth_err_t err = { 0 };
    assert_int_equal(hv_cpio_new(fd, flags, &c, &err), 0);
    assert_int_equal(hv_cpio_add_dir(c, "/dev", 0755, &err), 0);
    assert_int_equal(hv_cpio_add_node(c, "/dev/console", 'c', 0600, 5, 1, &err), 0);
    assert_int_equal(hv_cpio_add_file(c, "/init", f->big, HV_CPIO_MODE_HOST, &err), 0);
    assert_int_equal(hv_cpio_add_file(c, "//etc//odd", f->odd, 0444, &err), 0);
    assert_int_equal(hv_cpio_add_file(c, "etc/empty", f->empty, 0640, &err), 0);
    assert_int_equal(hv_cpio_add_data(c, "/etc/hostname", "guest\n", 6, 0644, &err), 0);
    assert_int_equal(hv_cpio_add_data(c, "/etc/seven", "1234567", 7, 0644, &err), 0);
    assert_int_equal(hv_cpio_add_symlink(c, "/bin/sh", "busybox", &err), 0);
    assert_int_equal(hv_cpio_add_dir(c, "/proc/", 0555, &err), 0);
    /* A directory again (after its implicit creation): a new mode, no error. */
    assert_int_equal(hv_cpio_add_dir(c, "/etc", 0700, &err), 0);
    assert_int_equal(hv_cpio_add_node(c, "/dev/vda", 'b', 0660, 254, 0, &err), 0);
    assert_int_equal(hv_cpio_finish(c, &err), 0);
    hv_cpio_free(c);
}

static void check_sample(struct archive *a)
{
    parse(a);
    const char *order[] = { "dev",       "dev/console",  "init",      "etc", "etc/odd",
                            "etc/empty", "etc/hostname", "etc/seven", "bin", "bin/sh",
                            "proc",      "etc",          "dev/vda" };
    assert_int_equal(a->n, sizeof(order) / sizeof(order[0]));
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->e[i].name, order[i]);
        assert_int_equal(a->e[i].uid, 0);
        assert_int_equal(a->e[i].gid, 0);
        assert_int_equal(a->e[i].mtime, 0);
        assert_true(a->e[i].ino != 0);
        for (size_t j = 0; j < i; j++)
            assert_true(a->e[i].ino != a->e[j].ino);
    }
    const struct entry *e = find(a, "dev/console");
    assert_int_equal(e->mode, S_IFCHR | 0600);
    assert_int_equal(e->rmajor, 5);
    assert_int_equal(e->rminor, 1);
    assert_int_equal(e->size, 0);
    e = &a->e[12];
    assert_int_equal(e->mode, S_IFBLK | 0660);
    assert_int_equal(e->rmajor, 254);
    e = find(a, "init");
    assert_int_equal(e->mode, S_IFREG | 0750); /* the host file's bits */
    check_pattern(e, 200001);
    e = find(a, "etc/odd");
    assert_int_equal(e->mode, S_IFREG | 0444);
    check_pattern(e, 5);
    assert_int_equal(find(a, "etc/empty")->size, 0);
    e = find(a, "etc/hostname");
    assert_int_equal(e->size, 6);
    assert_memory_equal(e->data, "guest\n", 6);
    assert_memory_equal(find(a, "etc/seven")->data, "1234567", 7);
    e = find(a, "bin/sh");
    assert_int_equal(e->mode, S_IFLNK | 0777);
    assert_int_equal(e->size, 7);
    assert_memory_equal(e->data, "busybox", 7);
    /* Implicit parents are 0755 directories; the explicit ones keep their modes. */
    assert_int_equal(a->e[3].mode, S_IFDIR | 0755);
    assert_int_equal(find(a, "bin")->mode, S_IFDIR | 0755);
    assert_int_equal(find(a, "proc")->mode, S_IFDIR | 0555);
    assert_int_equal(a->e[11].mode, S_IFDIR | 0700);
}

static void test_initramfs_cpio_plain(void **state)
{
    int fd = tmpfile_fd();
    write_sample(*state, fd, 0);
    struct archive a = { 0 };
    read_all(fd, &a);
    check_sample(&a);
    free(a.buf);
    close(fd);
}

static void test_initramfs_cpio_gzip(void **state)
{
    int plain = tmpfile_fd(), gz = tmpfile_fd();
    write_sample(*state, plain, 0);
    write_sample(*state, gz, HV_CPIO_GZIP);
    struct archive a = { 0 }, b = { 0 };
    read_all(plain, &a);
    read_all(gz, &b);
    assert_memory_equal(b.buf, "\x1f\x8b", 2);
    assert_true(b.len < a.len);
    gunzip(&b);
    /* The same archive, byte for byte, inside the gzip framing. */
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.buf, b.buf, a.len);
    check_sample(&b);
    free(a.buf);
    free(b.buf);
    close(plain);
    close(gz);
}

/* Two runs over the same inputs give the same bytes (no times, no host owners). */
static void test_initramfs_cpio_reproducible(void **state)
{
    int x = tmpfile_fd(), y = tmpfile_fd();
    write_sample(*state, x, HV_CPIO_GZIP);
    struct fixture *f = *state;
    /* A later mtime on the host must not change the archive. */
    assert_int_equal(utimensat(AT_FDCWD, f->big, NULL, 0), 0);
    write_sample(*state, y, HV_CPIO_GZIP);
    struct archive a = { 0 }, b = { 0 };
    read_all(x, &a);
    read_all(y, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.buf, b.buf, a.len);
    free(a.buf);
    free(b.buf);
    close(x);
    close(y);
}

static void expect_fail(struct fixture *f, int want,
                        int (*add)(hv_cpio_t *, struct fixture *, berth_err_t *))
{
    int fd = tmpfile_fd();
    hv_cpio_t *c = NULL;
    berth_err_t err = { 0 };
    assert_int_equal(hv_cpio_new(fd, 0, &c, &err), 0);
    assert_int_equal(hv_cpio_add_data(c, "/etc/file", "x", 1, 0644, &err), 0);
    assert_int_equal(add(c, f, &err), want);
    assert_int_equal(err.code, want);
    assert_true(strlen(err.msg) > 0 && strncmp(err.msg, "initramfs: ", 11) == 0);
    hv_cpio_free(c);
    close(fd);
}

static int add_dotdot(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_data(c, "/etc/../x", "", 0, 0644, e);
}
static int add_dot(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_dir(c, "./x", 0755, e);
}
static int add_empty(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_dir(c, "//", 0755, e);
}
static int add_twice(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_file(c, "etc/file", f->odd, 0644, e);
}
static int add_dir_over_file(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_dir(c, "/etc/file", 0755, e);
}
static int add_under_file(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_data(c, "/etc/file/x", "", 0, 0644, e);
}
static int add_missing(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_file(c, "/init", "/nonexistent/berth-agent", 0755, e);
}
static int add_host_dir(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_file(c, "/init", f->dir, 0755, e);
}
static int add_bad_mode(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_dir(c, "/x", 010755, e);
}
static int add_bad_node(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_node(c, "/dev/x", 'p', 0600, 1, 1, e);
}
static int add_bad_link(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    return hv_cpio_add_symlink(c, "/x", "", e);
}
static int add_after_finish(hv_cpio_t *c, struct fixture *f, berth_err_t *e)
{
    assert_int_equal(hv_cpio_finish(c, e), 0);
    return hv_cpio_add_dir(c, "/x", 0755, e);
}

static void test_initramfs_cpio_rejects(void **state)
{
    expect_fail(*state, -EINVAL, add_dotdot);
    expect_fail(*state, -EINVAL, add_dot);
    expect_fail(*state, -EINVAL, add_empty);
    expect_fail(*state, -EEXIST, add_twice);
    expect_fail(*state, -EEXIST, add_dir_over_file);
    expect_fail(*state, -ENOTDIR, add_under_file);
    expect_fail(*state, -ENOENT, add_missing);
    expect_fail(*state, -EINVAL, add_host_dir);
    expect_fail(*state, -EINVAL, add_bad_mode);
    expect_fail(*state, -EINVAL, add_bad_node);
    expect_fail(*state, -EINVAL, add_bad_link);
    expect_fail(*state, -EINVAL, add_after_finish);

    hv_cpio_t *c = NULL;
    berth_err_t err = { 0 };
    assert_int_equal(hv_cpio_new(1, 0x2, &c, &err), -EINVAL);
    assert_null(c);
    hv_cpio_free(NULL);
}

static int run(const char *cmd)
{
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* What GNU cpio, an independent reader, makes of berth-mkinitramfs's output. */
static void test_initramfs_cpio_mkinitramfs(void **state)
{
    struct fixture *f = *state;
    char cmd[2048], path[256];
    snprintf(cmd, sizeof(cmd),
             "'%s' -z -o '%s/initrd.img' file /init '%s' - file '/etc/odd' '%s' 0600 "
             "dir /proc 0555 slink /bin/sh busybox nod /dev/null 0666 c 1 3",
             mkinitramfs_path, f->dir, f->big, f->odd);
    assert_int_equal(run(cmd), 0);

    /* Our own reader first. */
    snprintf(path, sizeof(path), "%s/initrd.img", f->dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct archive a = { 0 };
    read_all(fd, &a);
    close(fd);
    gunzip(&a);
    parse(&a);
    check_pattern(find(&a, "init"), 200001);
    assert_int_equal(find(&a, "init")->mode, S_IFREG | 0750);
    assert_int_equal(find(&a, "etc/odd")->mode, S_IFREG | 0600);
    assert_int_equal(find(&a, "dev/null")->mode, S_IFCHR | 0666);
    assert_int_equal(find(&a, "dev/null")->rminor, 3);
    free(a.buf);

    /* Usage errors exit 2 and leave no output behind; failed entries exit 1. */
    snprintf(cmd, sizeof(cmd), "'%s' -o '%s/bad.img' file /init 2>/dev/null", mkinitramfs_path,
             f->dir);
    assert_int_equal(run(cmd), 2);
    snprintf(cmd, sizeof(cmd), "'%s' -o '%s/bad.img' dir /x 9 2>/dev/null", mkinitramfs_path,
             f->dir);
    assert_int_equal(run(cmd), 1);
    snprintf(cmd, sizeof(cmd), "'%s' -o '%s/bad.img' file /init /nonexistent - 2>/dev/null",
             mkinitramfs_path, f->dir);
    assert_int_equal(run(cmd), 1);
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls '%s' | grep bad)\"", f->dir);
    assert_int_equal(run(cmd), 0);

    if (run("command -v cpio >/dev/null") != 0) {
        skip(); /* GNU cpio not installed: our own reader has checked the archive. */
        return;
    }
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && gzip -dc initrd.img | cpio -t --quiet | tr '\\n' ' ' > list", f->dir);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "test \"$(cat '%s/list')\" = 'init etc etc/odd proc bin bin/sh dev dev/null '",
             f->dir);
    assert_int_equal(run(cmd), 0);
    /* Extract the regular files and compare them with their sources. */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && mkdir out && cd out && gzip -dc ../initrd.img | "
             "cpio -idm --quiet --no-absolute-filenames init etc/odd bin/sh && "
             "cmp init '%s' && cmp etc/odd '%s' && test \"$(readlink bin/sh)\" = busybox && "
             "test \"$(stat -c %%a init etc/odd)\" = \"$(printf '750\\n600')\"",
             f->dir, f->big, f->odd);
    assert_int_equal(run(cmd), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test-initramfs-cpio BERTH-MKINITRAMFS\n");
        return 2;
    }
    mkinitramfs_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_initramfs_cpio_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initramfs_cpio_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initramfs_cpio_reproducible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initramfs_cpio_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initramfs_cpio_mkinitramfs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
