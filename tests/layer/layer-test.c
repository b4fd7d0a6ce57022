/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the layer tests (layer-test.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "layer-test.h"
#include "util.h"

void tbuf_free(struct tbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void tbuf_append(struct tbuf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + len)
            cap *= 2;
        b->data = realloc(b->data, cap);
        assert_non_null(b->data);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static la_ssize_t tar_write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
    tbuf_append(ud, buf, len);
    return (la_ssize_t)len;
}

struct tbuf make_tar(layer_fn fn, enum tfilter filter)
{
    return make_tar_padded(fn, filter, 1);
}

struct tbuf make_tar_padded(layer_fn fn, enum tfilter filter, int pad)
{
    struct tbuf b = { 0 };
    struct archive *a = archive_write_new();
    int r;

    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
    if (!pad)
        assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    switch (filter) {
    case TF_GZIP:
        r = archive_write_add_filter_gzip(a);
        break;
    case TF_ZSTD:
        r = archive_write_add_filter_zstd(a);
        break;
    case TF_XZ:
        r = archive_write_add_filter_xz(a);
        break;
    default:
        r = archive_write_add_filter_none(a);
        break;
    }
    if (r != ARCHIVE_OK)
        fail_msg("libarchive filter: %s", archive_error_string(a));
    assert_int_equal(archive_write_open(a, &b, NULL, tar_write_cb, NULL), ARCHIVE_OK);
    fn(a);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return b;
}

struct tbuf decompress_ref(const struct tbuf *blob)
{
    struct tbuf out = { 0 };
    unsigned char buf[65536];
    size_t pos = 0;

    /* Members/frames one after the other, up to the writer's zero padding. */
    while (pos < blob->len && blob->data[pos] != 0) {
        if (blob->data[pos] == 0x1f) {
            z_stream z = { 0 };
            int r;

            assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
            z.next_in = blob->data + pos;
            z.avail_in = (uInt)(blob->len - pos);
            do {
                z.next_out = buf;
                z.avail_out = sizeof(buf);
                r = inflate(&z, Z_NO_FLUSH);
                assert_true(r == Z_OK || r == Z_STREAM_END);
                tbuf_append(&out, buf, sizeof(buf) - z.avail_out);
            } while (r != Z_STREAM_END);
            pos = blob->len - z.avail_in;
            inflateEnd(&z);
        } else {
            ZSTD_DCtx *d = ZSTD_createDCtx();
            ZSTD_inBuffer in = { blob->data + pos, blob->len - pos, 0 };
            size_t r;

            do {
                ZSTD_outBuffer o = { buf, sizeof(buf), 0 };
                r = ZSTD_decompressStream(d, &o, &in);
                assert_false(ZSTD_isError(r));
                tbuf_append(&out, buf, o.pos);
            } while (r != 0);
            pos += in.pos;
            ZSTD_freeDCtx(d);
        }
    }
    return out;
}

void t_entry(struct archive *a, const struct tentry *t)
{
    struct archive_entry *e = archive_entry_new();
    mode_t type = t->type ? t->type : AE_IFREG;
    int r;

    archive_entry_set_pathname(e, t->name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, t->perm ? t->perm : (type == AE_IFDIR ? 0755 : 0644));
    archive_entry_set_uid(e, t->uid);
    archive_entry_set_gid(e, t->gid);
    archive_entry_set_mtime(e, t->mtime ? t->mtime : 1000000000, t->mtime_ns);
    if (t->atime)
        archive_entry_set_atime(e, t->atime, 0);
    if (t->symlink)
        archive_entry_set_symlink(e, t->symlink);
    if (t->hardlink)
        archive_entry_set_hardlink(e, t->hardlink);
    if (type == AE_IFCHR || type == AE_IFBLK) {
        archive_entry_set_rdevmajor(e, t->rdev_major);
        archive_entry_set_rdevminor(e, t->rdev_minor);
    }
    for (int i = 0; i < 4 && t->xattr_name[i]; i++)
        archive_entry_xattr_add_entry(e, t->xattr_name[i], t->xattr_value[i],
                                      strlen(t->xattr_value[i]));
    archive_entry_set_size(
        e, type == AE_IFREG && !t->hardlink ? (t->size > 0 ? t->size : (int64_t)t->len) : 0);
    /* After the size: libarchive drops regions beyond it. */
    if (t->sparse_len)
        archive_entry_sparse_add_entry(e, t->sparse_off, t->sparse_len);
    r = archive_write_header(a, e);
    /* WARN: names the C locale cannot convert are still written as bytes. */
    if (r < ARCHIVE_WARN)
        fail_msg("write header %s: %s", t->name, archive_error_string(a));
    if (t->len && archive_write_data(a, t->data, t->len) != (la_ssize_t)t->len)
        fail_msg("write data %s: %s", t->name, archive_error_string(a));
    archive_entry_free(e);
}

void t_file(struct archive *a, const char *name, const char *content)
{
    struct tentry t = { .name = name, .data = content, .len = strlen(content) };
    t_entry(a, &t);
}

void t_dir(struct archive *a, const char *name)
{
    struct tentry t = { .name = name, .type = AE_IFDIR };
    t_entry(a, &t);
}

void t_symlink(struct archive *a, const char *name, const char *target)
{
    struct tentry t = { .name = name, .type = AE_IFLNK, .perm = 0777, .symlink = target };
    t_entry(a, &t);
}

void t_hardlink(struct archive *a, const char *name, const char *target)
{
    struct tentry t = { .name = name, .hardlink = target };
    t_entry(a, &t);
}

struct mem {
    unsigned char *data;
    size_t len, pos, max_read;
    int64_t fail_after;
};

static int64_t mem_read(berth_stream_t *s, void *buf, size_t len, berth_err_t *err)
{
    struct mem *m = s->priv;
    size_t n = m->len - m->pos;

    if (m->fail_after >= 0 && m->pos >= (size_t)m->fail_after)
        return berth_err_set(err, -EIO, "test stream: injected read error");
    if (n > len)
        n = len;
    if (m->max_read && n > m->max_read)
        n = m->max_read;
    if (m->fail_after >= 0 && m->pos + n > (size_t)m->fail_after)
        n = (size_t)m->fail_after - m->pos;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int64_t)n;
}

static void mem_close(berth_stream_t *s)
{
    struct mem *m = s->priv;
    free(m->data);
    free(m);
    free(s);
}

berth_stream_t *mem_stream(const void *data, size_t len, size_t max_read, int64_t fail_after)
{
    berth_stream_t *s = calloc(1, sizeof(*s));
    struct mem *m = calloc(1, sizeof(*m));

    assert_non_null(s);
    assert_non_null(m);
    m->data = malloc(len ? len : 1);
    assert_non_null(m->data);
    memcpy(m->data, data, len);
    m->len = len;
    m->max_read = max_read;
    m->fail_after = fail_after;
    s->struct_size = sizeof(*s);
    s->size = (int64_t)len;
    s->read = mem_read;
    s->close = mem_close;
    s->priv = m;
    return s;
}

int apply_buf(int rootfd, const struct tbuf *b, uint32_t flags, struct berth__layer_result *res,
              berth_err_t *err)
{
    /* An odd read size, so chunk and header boundaries fall anywhere. */
    berth_stream_t *s = mem_stream(b->data, b->len, 100003, -1);
    int r = berth__layer_apply(s, rootfd, flags, res, err);

    s->close(s);
    return r;
}

void make_tmpdir(char *path)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(path, PATH_MAX, "%s/berth-layer-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(path))
        fail_msg("mkdtemp %s: %s", path, strerror(errno));
}

void remove_tree(const char *path)
{
    if (berth__rm_rf(path) < 0)
        fail_msg("rm -rf %s failed", path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void hash_fmt(berth_sha256_t *s, const char *fmt, ...) BERTH_PRINTF(2, 3);
static void hash_fmt(berth_sha256_t *s, const char *fmt, ...)
{
    char line[PATH_MAX + 256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    berth__sha256_update(s, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void hash_tree(berth_sha256_t *s, const char *root, const char *rel)
{
    char path[2 * PATH_MAX + 2], sub[PATH_MAX], buf[65536], xl[4096];
    char *names[4096];
    size_t n = 0;
    DIR *d;
    struct dirent *de;

    snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
    assert_non_null(d = opendir(path));
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            assert_true(n < 4096);
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        ssize_t xlen;

        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        snprintf(path, sizeof(path), "%s/%s", root, sub);
        assert_int_equal(lstat(path, &st), 0);
        hash_fmt(s, "%s %o %u:%u %lld %lld.%ld %u:%u\n", sub, st.st_mode, st.st_uid, st.st_gid,
                 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                 major(st.st_rdev), minor(st.st_rdev));
        xlen = llistxattr(path, xl, sizeof(xl));
        if (xlen > 0)
            berth__sha256_update(s, xl, (size_t)xlen);
        if (S_ISLNK(st.st_mode)) {
            ssize_t l = readlink(path, buf, sizeof(buf));
            assert_true(l >= 0);
            berth__sha256_update(s, buf, (size_t)l);
        } else if (S_ISREG(st.st_mode)) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            ssize_t l;
            assert_true(fd >= 0);
            while ((l = read(fd, buf, sizeof(buf))) > 0)
                berth__sha256_update(s, buf, (size_t)l);
            close(fd);
        } else if (S_ISDIR(st.st_mode)) {
            hash_tree(s, root, sub);
        }
        free(names[i]);
    }
}

void tree_hash(const char *path, char out[BERTH_DIGEST_SIZE])
{
    berth_sha256_t s;

    assert_int_equal(berth__sha256_init(&s), 0);
    hash_tree(&s, path, "");
    assert_int_equal(berth__sha256_final(&s, out), 0);
}

void expect_file(int dirfd, const char *path, const char *content, mode_t perm)
{
    char buf[4096];
    struct stat st;
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    assert_int_equal(fstat(fd, &st), 0);
    if (!S_ISREG(st.st_mode))
        fail_msg("%s is not a regular file (mode %o)", path, st.st_mode);
    if (perm && (st.st_mode & 07777) != perm)
        fail_msg("%s: mode %o, expected %o", path, st.st_mode & 07777, perm);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    if (strcmp(buf, content) != 0)
        fail_msg("%s: content \"%s\", expected \"%s\"", path, buf, content);
}

int path_exists(int dirfd, const char *path)
{
    struct stat st;
    return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void expect_missing(int dirfd, const char *path)
{
    if (path_exists(dirfd, path))
        fail_msg("%s exists but should not", path);
}

int have_root(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: the layer tests need root (mknod, chown, trusted.* xattrs)\n");
        return 0;
    }
    return 1;
}
