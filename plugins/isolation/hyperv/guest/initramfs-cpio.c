/* SPDX-License-Identifier: Apache-2.0 */
/*
 * newc cpio writer (initramfs-cpio.h). The format, as the kernel reads it
 * (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a
 * 110-byte header, "070701" then 13 fields of 8 hex digits (ino, mode, uid,
 * gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
 * namesize, check), the NUL-terminated name padded to a multiple of 4 bytes
 * counted from the header's start, then the data padded to 4 bytes. The
 * archive ends with an entry named "TRAILER!!!".
 */
#include "initramfs-cpio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <zlib.h>

#define NEWC_HDR_LEN 110
#define IO_CHUNK     (64 * 1024)

/* One added path: duplicates are refused, parents are emitted once. */
struct seen {
    char *path;
    bool dir;
};

struct hv_cpio {
    int fd;
    bool gzip;
    bool finished;
    bool failed;
    z_stream zs;
    uint64_t offset; /* uncompressed bytes written, for the 4-byte padding */
    uint32_t next_ino;
    struct seen *seen;
    size_t nseen, capseen;
    unsigned char *zbuf;
};

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Push compressed output of deflate(flush) to the fd until zlib has no more. */
static int deflate_out(hv_cpio_t *c, int flush, berth_err_t *err)
{
    do {
        c->zs.next_out = c->zbuf;
        c->zs.avail_out = IO_CHUNK;
        int zr = deflate(&c->zs, flush);
        if (zr == Z_STREAM_ERROR)
            return berth_err_set(err, -EIO, "initramfs: deflate failed");
        int r = write_all(c->fd, c->zbuf, IO_CHUNK - c->zs.avail_out);
        if (r < 0)
            return berth_err_set(err, r, "initramfs: write: %s", strerror(-r));
    } while (c->zs.avail_out == 0);
    return 0;
}

static int emit(hv_cpio_t *c, const void *buf, size_t len, berth_err_t *err)
{
    if (c->gzip) {
        c->zs.next_in = (unsigned char *)buf;
        c->zs.avail_in = (uInt)len;
        int r = deflate_out(c, Z_NO_FLUSH, err);
        if (r < 0)
            return r;
    } else {
        int r = write_all(c->fd, buf, len);
        if (r < 0)
            return berth_err_set(err, r, "initramfs: write: %s", strerror(-r));
    }
    c->offset += len;
    return 0;
}

static int pad4(hv_cpio_t *c, berth_err_t *err)
{
    static const char zeros[4];
    size_t n = (size_t)((4 - c->offset % 4) % 4);
    return n ? emit(c, zeros, n, err) : 0;
}

static int emit_header(hv_cpio_t *c, const char *name, uint32_t mode, uint32_t nlink,
                       uint32_t filesize, uint32_t rmajor, uint32_t rminor, berth_err_t *err)
{
    char hdr[NEWC_HDR_LEN + 1];
    size_t namesize = strlen(name) + 1;
    /* ino, mode, uid, gid, nlink, mtime, filesize, dev maj/min, rdev maj/min, namesize, check */
    snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
             c->next_ino++, mode, 0u, 0u, nlink, 0u, filesize, 0u, 0u, rmajor, rminor,
             (uint32_t)namesize, 0u);
    int r = emit(c, hdr, NEWC_HDR_LEN, err);
    if (r == 0)
        r = emit(c, name, namesize, err);
    if (r == 0)
        r = pad4(c, err);
    return r;
}

/*
 * Canonical guest path into @p out (no leading, trailing or double slashes);
 * -EINVAL for an empty path or a "." or ".." component.
 */
static int normalize(const char *in, char *out, size_t outlen, berth_err_t *err)
{
    size_t o = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return berth_err_set(err, -EINVAL, "initramfs: \"%s\": . and .. are not allowed", in);
        if (o + (o > 0) + n + 1 > outlen)
            return berth_err_set(err, -ENAMETOOLONG, "initramfs: \"%s\": path too long", in);
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, p, n);
        o += n;
        p = e;
    }
    if (o == 0)
        return berth_err_set(err, -EINVAL, "initramfs: \"%s\": empty path", in);
    out[o] = '\0';
    return 0;
}

static struct seen *find_seen(hv_cpio_t *c, const char *path)
{
    for (size_t i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i].path, path) == 0)
            return &c->seen[i];
    return NULL;
}

static int remember(hv_cpio_t *c, const char *path, bool dir, berth_err_t *err)
{
    if (c->nseen == c->capseen) {
        size_t cap = c->capseen ? c->capseen * 2 : 16;
        struct seen *s = realloc(c->seen, cap * sizeof(*s));
        if (!s)
            return berth_err_set(err, -ENOMEM, "initramfs: out of memory");
        c->seen = s;
        c->capseen = cap;
    }
    char *dup = strdup(path);
    if (!dup)
        return berth_err_set(err, -ENOMEM, "initramfs: out of memory");
    c->seen[c->nseen++] = (struct seen){ .path = dup, .dir = dir };
    return 0;
}

/*
 * Everything that must happen before an entry for @p path (already
 * normalised) is written: the writer is usable, the path is new (or a
 * directory again, when @p dir), and its parents exist in the archive.
 */
static int prepare(hv_cpio_t *c, const char *path, bool dir, berth_err_t *err)
{
    if (c->finished || c->failed)
        return berth_err_set(err, -EINVAL, "initramfs: archive already %s",
                             c->finished ? "finished" : "failed");
    struct seen *s = find_seen(c, path);
    if (s && !(s->dir && dir))
        return berth_err_set(err, -EEXIST, "initramfs: \"%s\" added twice", path);
    char parent[PATH_MAX];
    for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
        size_t n = (size_t)(slash - path);
        memcpy(parent, path, n);
        parent[n] = '\0';
        struct seen *ps = find_seen(c, parent);
        if (ps && !ps->dir)
            return berth_err_set(err, -ENOTDIR, "initramfs: \"%s\": \"%s\" is not a directory",
                                 path, parent);
        if (ps)
            continue;
        int r = remember(c, parent, true, err);
        if (r == 0)
            r = emit_header(c, parent, S_IFDIR | 0755, 2, 0, 0, 0, err);
        if (r < 0)
            return r;
    }
    return s ? 0 : remember(c, path, dir, err);
}

/* Wrap an add: on failure the archive is marked failed, later adds refuse. */
static int done(hv_cpio_t *c, int r)
{
    if (r < 0)
        c->failed = true;
    return r;
}

static int check_mode(uint32_t mode, const char *path, berth_err_t *err)
{
    if (mode & ~07777u)
        return berth_err_set(err, -EINVAL, "initramfs: \"%s\": mode %o is more than 07777", path,
                             mode);
    return 0;
}

int hv_cpio_new(int fd, uint32_t flags, hv_cpio_t **ret_cpio, berth_err_t *err)
{
    if (fd < 0 || (flags & ~HV_CPIO_GZIP) || !ret_cpio)
        return berth_err_set(err, -EINVAL, "initramfs: bad arguments");
    hv_cpio_t *c = calloc(1, sizeof(*c));
    if (!c)
        return berth_err_set(err, -ENOMEM, "initramfs: out of memory");
    c->fd = fd;
    c->next_ino = 1; /* 0 means "no inode" to some readers */
    if (flags & HV_CPIO_GZIP) {
        c->zbuf = malloc(IO_CHUNK);
        /* 15 + 16: a 32 KiB window with gzip framing (header mtime 0). */
        if (!c->zbuf || deflateInit2(&c->zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                                     Z_DEFAULT_STRATEGY) != Z_OK) {
            free(c->zbuf);
            free(c);
            return berth_err_set(err, -ENOMEM, "initramfs: cannot start gzip");
        }
        c->gzip = true;
    }
    *ret_cpio = c;
    return 0;
}

int hv_cpio_add_data(hv_cpio_t *c, const char *guest_path, const void *data, size_t len,
                     uint32_t mode, berth_err_t *err)
{
    char path[PATH_MAX];
    int r = normalize(guest_path, path, sizeof(path), err);
    if (r == 0)
        r = check_mode(mode, guest_path, err);
    if (r == 0 && len > UINT32_MAX)
        r = berth_err_set(err, -EFBIG, "initramfs: \"%s\": over 4 GiB", guest_path);
    if (r < 0)
        return r;
    r = prepare(c, path, false, err);
    if (r == 0)
        r = emit_header(c, path, S_IFREG | mode, 1, (uint32_t)len, 0, 0, err);
    if (r == 0 && len)
        r = emit(c, data, len, err);
    if (r == 0)
        r = pad4(c, err);
    return done(c, r);
}

int hv_cpio_add_file(hv_cpio_t *c, const char *guest_path, const char *host_path, uint32_t mode,
                     berth_err_t *err)
{
    char path[PATH_MAX];
    int r = normalize(guest_path, path, sizeof(path), err);
    if (r == 0 && mode != HV_CPIO_MODE_HOST)
        r = check_mode(mode, guest_path, err);
    if (r < 0)
        return r;
    int fd = open(host_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "initramfs: open %s: %s", host_path, strerror(errno));
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) < 0) {
        r = berth_err_set(err, -errno, "initramfs: stat %s: %s", host_path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = berth_err_set(err, -EINVAL, "initramfs: %s is not a regular file", host_path);
        goto out;
    }
    if ((uint64_t)st.st_size > UINT32_MAX) {
        r = berth_err_set(err, -EFBIG, "initramfs: %s: over 4 GiB", host_path);
        goto out;
    }
    if (mode == HV_CPIO_MODE_HOST)
        mode = st.st_mode & 07777;
    buf = malloc(IO_CHUNK);
    if (!buf) {
        r = berth_err_set(err, -ENOMEM, "initramfs: out of memory");
        goto out;
    }
    r = prepare(c, path, false, err);
    if (r == 0)
        r = emit_header(c, path, S_IFREG | mode, 1, (uint32_t)st.st_size, 0, 0, err);
    /* The header has promised st_size bytes: a file that changes size under us is an error. */
    for (off_t left = st.st_size; r == 0 && left > 0;) {
        ssize_t n = read(fd, buf, left < IO_CHUNK ? (size_t)left : IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = berth_err_set(err, -errno, "initramfs: read %s: %s", host_path, strerror(errno));
        else if (n == 0)
            r = berth_err_set(err, -EIO, "initramfs: %s shrank while being read", host_path);
        else {
            r = emit(c, buf, (size_t)n, err);
            left -= n;
        }
    }
    if (r == 0)
        r = pad4(c, err);
out:
    free(buf);
    close(fd);
    return done(c, r);
}

int hv_cpio_add_dir(hv_cpio_t *c, const char *guest_path, uint32_t mode, berth_err_t *err)
{
    char path[PATH_MAX];
    int r = normalize(guest_path, path, sizeof(path), err);
    if (r == 0)
        r = check_mode(mode, guest_path, err);
    if (r < 0)
        return r;
    r = prepare(c, path, true, err);
    if (r == 0)
        r = emit_header(c, path, S_IFDIR | mode, 2, 0, 0, 0, err);
    return done(c, r);
}

int hv_cpio_add_symlink(hv_cpio_t *c, const char *guest_path, const char *target, berth_err_t *err)
{
    char path[PATH_MAX];
    int r = normalize(guest_path, path, sizeof(path), err);
    if (r < 0)
        return r;
    size_t len = strlen(target);
    if (len == 0 || len >= PATH_MAX)
        return berth_err_set(err, -EINVAL, "initramfs: \"%s\": bad symlink target", guest_path);
    r = prepare(c, path, false, err);
    /* A symlink's data is its target, without a NUL. */
    if (r == 0)
        r = emit_header(c, path, S_IFLNK | 0777, 1, (uint32_t)len, 0, 0, err);
    if (r == 0)
        r = emit(c, target, len, err);
    if (r == 0)
        r = pad4(c, err);
    return done(c, r);
}

int hv_cpio_add_node(hv_cpio_t *c, const char *guest_path, char type, uint32_t mode, uint32_t major,
                     uint32_t minor, berth_err_t *err)
{
    char path[PATH_MAX];
    int r = normalize(guest_path, path, sizeof(path), err);
    if (r == 0)
        r = check_mode(mode, guest_path, err);
    if (r == 0 && type != 'c' && type != 'b')
        r = berth_err_set(err, -EINVAL, "initramfs: \"%s\": node type must be c or b", guest_path);
    if (r < 0)
        return r;
    r = prepare(c, path, false, err);
    if (r == 0)
        r = emit_header(c, path, (type == 'c' ? S_IFCHR : S_IFBLK) | mode, 1, 0, major, minor, err);
    return done(c, r);
}

int hv_cpio_finish(hv_cpio_t *c, berth_err_t *err)
{
    if (c->finished || c->failed)
        return berth_err_set(err, -EINVAL, "initramfs: archive already %s",
                             c->finished ? "finished" : "failed");
    int r = emit_header(c, "TRAILER!!!", 0, 1, 0, 0, 0, err);
    if (r == 0 && c->gzip) {
        c->zs.next_in = NULL;
        c->zs.avail_in = 0;
        r = deflate_out(c, Z_FINISH, err);
    }
    if (r < 0)
        return done(c, r);
    c->finished = true;
    return 0;
}

void hv_cpio_free(hv_cpio_t *c)
{
    if (!c)
        return;
    if (c->gzip)
        deflateEnd(&c->zs);
    for (size_t i = 0; i < c->nseen; i++)
        free(c->seen[i].path);
    free(c->seen);
    free(c->zbuf);
    free(c);
}
