/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read access to a location: a layout directory or a tar file, behind one
 * "find member by relative path" interface.
 *
 * Directories are read with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
 * below the directory's descriptor, so neither ".." nor a symlink inside the
 * layout reaches a file outside it. Kernels without openat2 (before 5.6) fall
 * back to openat() with O_NOFOLLOW on the last component after the path was
 * checked lexically.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <zlib.h>

#include "image-common.h"

struct image_loc {
    char *path;
    int fd;           /* the directory, or the (decompressed) tar file */
    image_tar_t *tar; /* NULL for a directory */
};

int image_loc_is_tar(const image_loc_t *loc)
{
    return loc->tar != NULL;
}

const char *image_loc_path(const image_loc_t *loc)
{
    return loc->path;
}

void image_loc_free(image_loc_t *loc)
{
    if (!loc)
        return;
    image_tar_free(loc->tar);
    if (loc->fd >= 0)
        close(loc->fd);
    free(loc->path);
    free(loc);
}

/* An unlinked temporary file under $TMPDIR: nothing is left behind whatever happens. */
static int tmpfile_fd(berth_err_t *err)
{
    const char *dir = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    int fd;

    if (!dir || !*dir)
        dir = "/tmp";
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    /* Filesystems without O_TMPFILE: create and unlink at once. */
    if ((size_t)snprintf(tmpl, sizeof(tmpl), "%s/berth-image-XXXXXX", dir) >= sizeof(tmpl))
        return berth_err_set(err, -ENAMETOOLONG, "TMPDIR is too long");
    fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "create a temporary file in %s: %s", dir,
                             strerror(errno));
    unlink(tmpl);
    return fd;
}

/* Decompress gzip @fd into a new temporary file; returns its descriptor. */
static int gunzip_to_tmp(int fd, const char *path, berth_err_t *err)
{
    _cleanup_free_ char *buf = malloc(1u << 17);
    int out, dfd, e, r = 0;
    gzFile gz;

    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    out = tmpfile_fd(err);
    if (out < 0)
        return out;
    dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    gz = dfd >= 0 ? gzdopen(dfd, "rb") : NULL;
    if (!gz) {
        if (dfd >= 0)
            close(dfd);
        close(out);
        return berth_err_set(err, -ENOMEM, "gzip %s: cannot open the stream", path);
    }
    for (;;) {
        int n = gzread(gz, buf, 1u << 17);
        if (n <= 0) {
            /* A stream cut short ends with Z_BUF_ERROR (zlib's own text names the fd). */
            gzerror(gz, &e);
            if (e == Z_BUF_ERROR)
                r = berth_err_set(err, -EINVAL, "%s: the gzip stream is truncated", path);
            else if (n < 0 || e != Z_OK)
                r = berth_err_set(err, -EINVAL, "%s: not a valid gzip stream", path);
            break;
        }
        for (int done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                r = berth_err_set(err, -errno, "%s: write the decompressed tar: %s", path,
                                  strerror(errno));
                break;
            }
            done += (int)w;
        }
        if (r < 0)
            break;
    }
    gzclose(gz);
    if (r < 0) {
        close(out);
        return r;
    }
    return out;
}

int image_loc_open(const char *path, image_loc_t **ret_loc, berth_err_t *err)
{
    image_loc_t *loc;
    struct stat stb;
    uint8_t head[8] = { 0 };
    int r;

    loc = calloc(1, sizeof(*loc));
    if (!loc)
        return berth_err_set(err, -ENOMEM, "out of memory");
    loc->fd = -1;
    loc->path = strdup(path);
    if (!loc->path) {
        free(loc);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    loc->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (loc->fd < 0) {
        r = berth_err_set(err, -errno, "open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(loc->fd, &stb) < 0) {
        r = berth_err_set(err, -errno, "stat %s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(stb.st_mode)) {
        *ret_loc = loc;
        return 0;
    }
    if (!S_ISREG(stb.st_mode)) {
        r = berth_err_set(err, -EINVAL, "%s is neither a directory nor a file", path);
        goto fail;
    }
    if (pread(loc->fd, head, sizeof(head), 0) < 0) {
        r = berth_err_set(err, -errno, "read %s: %s", path, strerror(errno));
        goto fail;
    }
    switch (image_sniff_compression(head, sizeof(head))) {
    case IMAGE_COMP_GZIP: {
        int tfd = gunzip_to_tmp(loc->fd, path, err);
        if (tfd < 0) {
            r = tfd;
            goto fail;
        }
        close(loc->fd);
        loc->fd = tfd;
        break;
    }
    case IMAGE_COMP_ZSTD:
    case IMAGE_COMP_XZ:
    case IMAGE_COMP_BZIP:
        r = berth_err_set(err, -ENOTSUP,
                          "%s is compressed with zstd, xz or bzip2; only gzip is read: "
                          "decompress it first",
                          path);
        goto fail;
    default:
        break;
    }
    r = image_tar_index(loc->fd, &loc->tar, err);
    if (r < 0) {
        berth_err_prefix(err, r, path);
        goto fail;
    }
    *ret_loc = loc;
    return 0;
fail:
    image_loc_free(loc);
    return r;
}

static int open_beneath(int dirfd, const char *name)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
    if (fd >= 0 || errno != ENOSYS)
        return fd;
    return openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
}

int image_loc_open_member(image_loc_t *loc, const char *name, int *ret_fd, uint64_t *ret_off,
                          uint64_t *ret_size, berth_err_t *err)
{
    char norm[PATH_MAX];
    uint64_t off, size;
    struct stat stb;
    int r, fd;

    r = image_path_normalize(name, norm, sizeof(norm), err);
    if (r < 0)
        return r;
    if (loc->tar) {
        r = image_tar_find(loc->tar, norm, &off, &size, err);
        if (r < 0)
            return r;
        fd = fcntl(loc->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return berth_err_set(err, -errno, "dup: %s", strerror(errno));
        *ret_fd = fd;
        *ret_off = off;
        *ret_size = size;
        return 0;
    }
    fd = open_beneath(loc->fd, norm);
    if (fd < 0) {
        if (errno == ENOENT)
            return berth_err_set(err, -ENOENT, "%s is not in %s", norm, loc->path);
        if (errno == EXDEV || errno == ELOOP)
            return berth_err_set(err, -EINVAL, "%s/%s links outside the layout", loc->path, norm);
        return berth_err_set(err, -errno, "open %s/%s: %s", loc->path, norm, strerror(errno));
    }
    if (fstat(fd, &stb) < 0 || !S_ISREG(stb.st_mode)) {
        close(fd);
        return berth_err_set(err, -EINVAL, "%s/%s is not a regular file", loc->path, norm);
    }
    *ret_fd = fd;
    *ret_off = 0;
    *ret_size = (uint64_t)stb.st_size;
    return 0;
}

int image_loc_exists(image_loc_t *loc, const char *name)
{
    uint64_t off, size;
    int fd;

    if (image_loc_open_member(loc, name, &fd, &off, &size, NULL) < 0)
        return 0;
    close(fd);
    return 1;
}

static int read_range(int fd, uint64_t off, size_t len, char *buf, berth_err_t *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_err_set(err, -errno, "read: %s", strerror(errno));
        if (n == 0)
            return berth_err_set(err, -EIO, "read: file ends early");
        got += (size_t)n;
    }
    return 0;
}

int image_loc_read(image_loc_t *loc, const char *name, size_t max, char **ret_buf, size_t *ret_len,
                   berth_err_t *err)
{
    _cleanup_close_ int fd = -1;
    uint64_t off, size;
    char *buf;
    int r;

    r = image_loc_open_member(loc, name, &fd, &off, &size, err);
    if (r < 0)
        return r;
    if (size > max)
        return berth_err_set(err, -EFBIG, "%s in %s is %llu bytes, more than the %zu allowed", name,
                             loc->path, (unsigned long long)size, max);
    buf = malloc((size_t)size + 1);
    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    r = read_range(fd, off, (size_t)size, buf, err);
    if (r < 0) {
        free(buf);
        return berth_err_prefix(err, r, name);
    }
    buf[size] = '\0';
    *ret_buf = buf;
    *ret_len = (size_t)size;
    return 0;
}

int image_loc_read_json(image_loc_t *loc, const char *name, json_t **ret_json, berth_err_t *err)
{
    _cleanup_free_ char *buf = NULL;
    json_error_t jerr;
    json_t *doc;
    size_t len;
    int r;

    r = image_loc_read(loc, name, IMAGE_JSON_MAX, &buf, &len, err);
    if (r < 0)
        return r;
    doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return berth_err_set(err, -EINVAL, "%s: malformed JSON at line %d: %s", name, jerr.line,
                             jerr.text);
    *ret_json = doc;
    return 0;
}

int image_loc_stream(image_loc_t *loc, const char *name, int64_t offset,
                     berth_stream_t **ret_stream, berth_err_t *err)
{
    _cleanup_close_ int fd = -1;
    uint64_t off, size;
    int r;

    r = image_loc_open_member(loc, name, &fd, &off, &size, err);
    if (r < 0)
        return r;
    if (offset < 0 || (uint64_t)offset > size)
        return berth_err_set(err, -EINVAL, "offset %lld is outside %s (%llu bytes)",
                             (long long)offset, name, (unsigned long long)size);
    return image_stream_from_fd(fd, off + (uint64_t)offset, size - (uint64_t)offset, ret_stream,
                                err);
}

static int blob_open(image_loc_t *loc, const berth_descriptor_t *desc, int *ret_fd,
                     uint64_t *ret_off, uint64_t *ret_size, berth_err_t *err)
{
    char path[200];
    int r = image_digest_path(desc->digest, path, sizeof(path), err);

    if (r < 0)
        return r;
    r = image_loc_open_member(loc, path, ret_fd, ret_off, ret_size, err);
    if (r == -ENOENT)
        return berth_err_set(err, -ENOENT, "blob %s is not in %s", desc->digest, loc->path);
    if (r < 0)
        return r;
    if (desc->size >= 0 && (uint64_t)desc->size != *ret_size) {
        close(*ret_fd);
        return berth_err_set(err, -EIO, "blob %s in %s is %llu bytes, its descriptor says %lld",
                             desc->digest, loc->path, (unsigned long long)*ret_size,
                             (long long)desc->size);
    }
    return 0;
}

int image_loc_fetch_blob(image_loc_t *loc, const berth_descriptor_t *desc, int64_t offset,
                         berth_stream_t **ret_stream, berth_err_t *err)
{
    _cleanup_close_ int fd = -1;
    uint64_t off, size;
    int r = blob_open(loc, desc, &fd, &off, &size, err);

    if (r < 0)
        return r;
    if (offset < 0 || (uint64_t)offset > size)
        return berth_err_set(err, -EINVAL, "offset %lld is outside blob %s (%llu bytes)",
                             (long long)offset, desc->digest, (unsigned long long)size);
    return image_stream_from_fd(fd, off + (uint64_t)offset, size - (uint64_t)offset, ret_stream,
                                err);
}

int image_loc_read_blob(image_loc_t *loc, const berth_descriptor_t *desc, char **ret_buf,
                        size_t *ret_len, berth_err_t *err)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *buf = NULL;
    char got[80];
    uint64_t off, size;
    int r = blob_open(loc, desc, &fd, &off, &size, err);

    if (r < 0)
        return r;
    if (size > IMAGE_JSON_MAX)
        return berth_err_set(err, -EFBIG, "blob %s is %llu bytes, too large to parse", desc->digest,
                             (unsigned long long)size);
    buf = malloc((size_t)size + 1);
    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    r = read_range(fd, off, (size_t)size, buf, err);
    if (r < 0)
        return berth_err_prefix(err, r, desc->digest);
    buf[size] = '\0';
    /* What is parsed to resolve references is verified first (sha256 only). */
    if (strncmp(desc->digest, "sha256:", 7) != 0)
        return berth_err_set(err, -ENOTSUP, "cannot verify %s: only sha256 documents are read",
                             desc->digest);
    r = image_hash_buf(buf, (size_t)size, got, err);
    if (r < 0)
        return r;
    if (strcmp(got, desc->digest) != 0)
        return berth_err_set(err, -EBADMSG, "blob %s in %s has digest %s", desc->digest, loc->path,
                             got);
    *ret_buf = TAKE_PTR(buf);
    *ret_len = (size_t)size;
    return 0;
}
