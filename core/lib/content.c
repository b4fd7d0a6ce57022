/* SPDX-License-Identifier: Apache-2.0 */
/* The content store (see content.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content.h"
#include "engine-internal.h"
#include "image-import.h"
#include "lazylib.h"
#include "digest.h"
#include "util.h"

struct berth_content {
    char dir[PATH_MAX];    /* <root>/content */
    char blobs[PATH_MAX];  /* <root>/content/blobs/sha256 */
    char ingest[PATH_MAX]; /* <root>/content/ingest */
};

struct berth_content_writer {
    berth_content_t *cs;
    char digest[72];
    char partial[PATH_MAX];
    int fd;
    int64_t size;    /* expected, -1 unknown */
    int64_t written; /* bytes in the partial file */
    berth_sha256_t sha;
    int committed;
};

#define JOIN(buf, ...) (snprintf(buf, sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf) ? -1 : 0)

static int check_digest(const char *digest, berth_err_t *err)
{
    if (!berth__digest_valid(digest))
        return berth_err_set(err, -EINVAL, "invalid digest \"%.80s\"", digest ? digest : "");
    return 0;
}

int berth__content_open(const char *root, berth_content_t **ret_cs, berth_err_t *err)
{
    _cleanup_free_ berth_content_t *cs = calloc(1, sizeof(*cs));
    int r;

    if (!cs)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (JOIN(cs->dir, "%s/content", root) < 0 || JOIN(cs->blobs, "%s/blobs/sha256", cs->dir) < 0 ||
        JOIN(cs->ingest, "%s/ingest", cs->dir) < 0)
        return berth_err_set(err, -ENAMETOOLONG, "content store: path too long under %s", root);
    if ((r = berth__mkdir_p(cs->blobs, 0700, err)) < 0 ||
        (r = berth__mkdir_p(cs->ingest, 0700, err)) < 0)
        return berth_err_prefix(err, r, "content store");
    *ret_cs = TAKE_PTR(cs);
    return 0;
}

void berth__content_close(berth_content_t *cs)
{
    free(cs);
}

const char *berth__content_dir(const berth_content_t *cs)
{
    return cs->dir;
}

int berth__content_path(berth_content_t *cs, const char *digest, char *buf, size_t len,
                        berth_err_t *err)
{
    int r;

    if ((r = check_digest(digest, err)) < 0)
        return r;
    if (snprintf(buf, len, "%s/%s", cs->blobs, digest + 7) >= (int)len)
        return berth_err_set(err, -ENAMETOOLONG, "content store: path too long");
    return 0;
}

int berth__content_stat(berth_content_t *cs, const char *digest, int64_t *ret_size,
                        berth_err_t *err)
{
    char path[PATH_MAX];
    struct stat st;
    int r;

    if ((r = berth__content_path(cs, digest, path, sizeof(path), err)) < 0)
        return r;
    if (stat(path, &st) < 0)
        return berth_err_set(err, -errno, "blob %s: %s", digest, strerror(errno));
    if (ret_size)
        *ret_size = st.st_size;
    return 0;
}

/* ---- reading ---- */

struct file_stream {
    berth_stream_t s;
    int fd;
    char digest[72];
};

static int64_t file_stream_read(berth_stream_t *s, void *buf, size_t len, berth_err_t *err)
{
    struct file_stream *fs = s->priv;
    ssize_t n;

    do
        n = read(fs->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return berth_err_set(err, -errno, "blob %s: read: %s", fs->digest, strerror(errno));
    return n;
}

static void file_stream_close(berth_stream_t *s)
{
    struct file_stream *fs = s->priv;
    close(fs->fd);
    free(fs);
}

int berth__content_reader(berth_content_t *cs, const char *digest, berth_stream_t **ret_stream,
                          berth_err_t *err)
{
    char path[PATH_MAX];
    struct file_stream *fs;
    struct stat st;
    int fd, r;

    if ((r = berth__content_path(cs, digest, path, sizeof(path), err)) < 0)
        return r;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "blob %s: %s", digest, strerror(errno));
    if (fstat(fd, &st) < 0 || !(fs = calloc(1, sizeof(*fs)))) {
        r = errno ? -errno : -ENOMEM;
        close(fd);
        return berth_err_set(err, r, "blob %s: %s", digest, strerror(-r));
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    fs->fd = fd;
    memcpy(fs->digest, digest, sizeof(fs->digest));
    fs->s.struct_size = sizeof(fs->s);
    fs->s.size = st.st_size;
    fs->s.read = file_stream_read;
    fs->s.close = file_stream_close;
    fs->s.priv = fs;
    *ret_stream = &fs->s;
    return 0;
}

int berth__content_read_all(berth_content_t *cs, const char *digest, size_t max, char **ret_buf,
                            size_t *ret_len, berth_err_t *err)
{
    char path[PATH_MAX];
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *buf = NULL;
    struct stat st;
    size_t have = 0;
    int r;

    if ((r = berth__content_path(cs, digest, path, sizeof(path), err)) < 0)
        return r;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
        return berth_err_set(err, -errno, "blob %s: %s", digest, strerror(errno));
    if ((uint64_t)st.st_size > max)
        return berth_err_set(err, -EFBIG, "blob %s: %" PRId64 " bytes, more than the %zu allowed",
                             digest, (int64_t)st.st_size, max);
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    while (have < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return berth_err_set(err, n < 0 ? -errno : -EIO, "blob %s: short read", digest);
        have += (size_t)n;
    }
    buf[have] = '\0';
    if (ret_len)
        *ret_len = have;
    *ret_buf = TAKE_PTR(buf);
    return 0;
}

int berth__content_remove(berth_content_t *cs, const char *digest, berth_err_t *err)
{
    char path[PATH_MAX];
    int r;

    if ((r = berth__content_path(cs, digest, path, sizeof(path), err)) < 0)
        return r;
    if (unlink(path) < 0 && errno != ENOENT)
        return berth_err_set(err, -errno, "remove blob %s: %s", digest, strerror(errno));
    return 0;
}

int berth__content_walk(berth_content_t *cs, berth_content_walk_fn fn, void *userdata,
                        berth_err_t *err)
{
    DIR *d = opendir(cs->blobs);
    struct dirent *de;
    int r = 0;

    if (!d)
        return berth_err_set(err, -errno, "content store %s: %s", cs->blobs, strerror(errno));
    while ((de = readdir(d))) {
        char digest[72];
        struct stat st;
        if (snprintf(digest, sizeof(digest), "sha256:%s", de->d_name) >= (int)sizeof(digest) ||
            !berth__digest_valid(digest))
            continue; /* "." "..", and nothing else lives here */
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if ((r = fn(digest, st.st_size,
                    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, userdata)))
            break;
    }
    closedir(d);
    return r;
}

int berth__content_ingest_prune(berth_content_t *cs, int64_t older_than_ns, uint64_t *ret_count,
                                uint64_t *ret_bytes, berth_err_t *err)
{
    DIR *d = opendir(cs->ingest);
    struct dirent *de;
    uint64_t count = 0, bytes = 0;

    if (!d)
        return berth_err_set(err, -errno, "content store %s: %s", cs->ingest, strerror(errno));
    while ((de = readdir(d))) {
        struct stat st;
        int fd;
        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec >= older_than_ns)
            continue;
        /* A writer still holding the file keeps it. */
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(dirfd(d), de->d_name, 0) == 0) {
            count++;
            bytes += (uint64_t)st.st_size;
        }
        close(fd);
    }
    closedir(d);
    if (ret_count)
        *ret_count = count;
    if (ret_bytes)
        *ret_bytes = bytes;
    return 0;
}

/* ---- writing ---- */

int berth__content_writer_open(berth_content_t *cs, const char *digest, int64_t size,
                               berth_content_writer_t **ret_w, int64_t *ret_offset,
                               berth_err_t *err)
{
    _cleanup_free_ berth_content_writer_t *w = NULL;
    struct stat st;
    char buf[1 << 16];
    int r;

    if ((r = check_digest(digest, err)) < 0)
        return r;
    if (berth__content_stat(cs, digest, NULL, NULL) == 0)
        return berth_err_set(err, -EEXIST, "blob %s is already stored", digest);
    w = calloc(1, sizeof(*w));
    if (!w)
        return berth_err_set(err, -ENOMEM, "out of memory");
    w->cs = cs;
    w->size = size;
    memcpy(w->digest, digest, sizeof(w->digest));
    if (JOIN(w->partial, "%s/%s.partial", cs->ingest, digest + 7) < 0)
        return berth_err_set(err, -ENAMETOOLONG, "content store: path too long");
    w->fd = open(w->partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->fd < 0)
        return berth_err_set(err, -errno, "ingest %s: %s", w->partial, strerror(errno));
    /* Another process ingesting the same blob: wait for it, then look again. */
    if (flock(w->fd, LOCK_EX) < 0) {
        r = -errno;
        close(w->fd);
        return berth_err_set(err, r, "ingest %s: lock: %s", digest, strerror(-r));
    }
    if (berth__content_stat(cs, digest, NULL, NULL) == 0) {
        close(w->fd);
        return berth_err_set(err, -EEXIST, "blob %s is already stored", digest);
    }
    /* The file may have been published and unlinked while we waited for the lock. */
    if (fstat(w->fd, &st) < 0 || st.st_nlink == 0) {
        close(w->fd);
        return berth_err_set(err, -EAGAIN, "ingest %s: raced with another writer", digest);
    }
    if ((r = berth__crypto_load(err)) < 0 || (r = berth__sha256_init(&w->sha)) < 0) {
        close(w->fd);
        return r == -ENOENT ? r : berth_err_set(err, r, "sha256: %s", strerror(-r));
    }
    if (size >= 0 && st.st_size > size) {
        /* Longer than the blob can be: start again. */
        if (ftruncate(w->fd, 0) < 0)
            goto fail_io;
        st.st_size = 0;
    }
    /* Re-hash what a previous attempt left so the digest covers every byte. */
    while (w->written < st.st_size) {
        ssize_t n = pread(w->fd, buf, sizeof(buf), w->written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail_io;
        berth__sha256_update(&w->sha, buf, (size_t)n);
        w->written += n;
    }
    if (lseek(w->fd, w->written, SEEK_SET) < 0)
        goto fail_io;
    *ret_offset = w->written;
    *ret_w = TAKE_PTR(w);
    return 0;
fail_io:
    r = errno ? -errno : -EIO;
    berth__sha256_free(&w->sha);
    close(w->fd);
    return berth_err_set(err, r, "ingest %s: %s", digest, strerror(-r));
}

int berth__content_writer_write(berth_content_writer_t *w, const void *buf, size_t len,
                                berth_err_t *err)
{
    const char *p = buf;

    if (w->size >= 0 && w->written + (int64_t)len > w->size)
        return berth_err_set(err, -EFBIG, "blob %s: more than the %" PRId64 " bytes announced",
                             w->digest, w->size);
    berth__sha256_update(&w->sha, buf, len);
    while (len > 0) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_err_set(err, -errno, "blob %s: write: %s", w->digest, strerror(errno));
        p += n;
        len -= (size_t)n;
        w->written += n;
    }
    return 0;
}

int64_t berth__content_writer_offset(const berth_content_writer_t *w)
{
    return w->written;
}

int64_t berth__content_writer_read_at(berth_content_writer_t *w, void *buf, size_t len,
                                      int64_t offset, berth_err_t *err)
{
    ssize_t n;

    if (offset >= w->written)
        return 0;
    if ((int64_t)len > w->written - offset)
        len = (size_t)(w->written - offset);
    do
        n = pread(w->fd, buf, len, offset);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return berth_err_set(err, -errno, "ingest %s: read: %s", w->digest, strerror(errno));
    return n;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        r = -errno;
    close(fd);
    return r;
}

int berth__content_writer_commit(berth_content_writer_t *w, berth_err_t *err)
{
    char got[72], path[PATH_MAX];
    int r;

    if (w->size >= 0 && w->written != w->size) {
        (void)ftruncate(w->fd, 0);
        return berth_err_set(err, -EBADMSG,
                             "blob %s: size mismatch: expected %" PRId64 " bytes, got %" PRId64,
                             w->digest, w->size, w->written);
    }
    if ((r = berth__sha256_final(&w->sha, got)) < 0)
        return berth_err_set(err, r, "blob %s: sha256 failed", w->digest);
    if (strcmp(got, w->digest) != 0) {
        /* Nothing of it can be trusted: the next attempt starts from zero. */
        (void)ftruncate(w->fd, 0);
        w->written = 0;
        (void)berth__sha256_init(&w->sha);
        return berth_err_set(err, -EBADMSG, "blob digest mismatch: expected %s, got %s", w->digest,
                             got);
    }
    if (fchmod(w->fd, 0444) < 0 || fdatasync(w->fd) < 0)
        return berth_err_set(err, -errno, "blob %s: %s", w->digest, strerror(errno));
    if ((r = berth__content_path(w->cs, w->digest, path, sizeof(path), err)) < 0)
        return r;
    if (rename(w->partial, path) < 0)
        return berth_err_set(err, -errno, "blob %s: publish: %s", w->digest, strerror(errno));
    if ((r = fsync_dir(w->cs->blobs)) < 0)
        return berth_err_set(err, r, "blob %s: fsync %s: %s", w->digest, w->cs->blobs,
                             strerror(-r));
    w->committed = 1;
    return 0;
}

void berth__content_writer_close(berth_content_writer_t *w, int keep_partial)
{
    if (!w)
        return;
    if (!w->committed) {
        berth__sha256_free(&w->sha);
        if (!keep_partial || w->written == 0)
            (void)unlink(w->partial);
    }
    close(w->fd); /* drops the flock */
    free(w);
}

int berth__content_ingest(berth_content_t *cs, const char *digest, int64_t size,
                          berth_stream_t *src, berth_err_t *err)
{
    berth_content_writer_t *w = NULL;
    int64_t offset = 0, n;
    char buf[1 << 16];
    int r;

    r = berth__content_writer_open(cs, digest, size, &w, &offset, err);
    if (r == -EEXIST)
        return 0;
    if (r < 0)
        return r;
    if (offset > 0) {
        /* The source restarts from zero: so does the blob. */
        berth__content_writer_close(w, 0);
        if ((r = berth__content_writer_open(cs, digest, size, &w, &offset, err)) < 0)
            return r == -EEXIST ? 0 : r;
    }
    while ((n = src->read(src, buf, sizeof(buf), err)) > 0)
        if ((r = berth__content_writer_write(w, buf, (size_t)n, err)) < 0)
            goto out;
    if (n < 0) {
        r = (int)n;
        goto out;
    }
    r = berth__content_writer_commit(w, err);
out:
    berth__content_writer_close(w, 0);
    return r;
}

int berth__content_lock(berth_content_t *cs, int exclusive, int *ret_fd, berth_err_t *err)
{
    char path[PATH_MAX];
    int fd;

    if (JOIN(path, "%s/gc.lock", cs->dir) < 0)
        return berth_err_set(err, -ENAMETOOLONG, "content store: path too long");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return berth_err_set(err, -errno, "%s: %s", path, strerror(errno));
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
        if (errno != EINTR) {
            int r = -errno;
            close(fd);
            return berth_err_set(err, r, "%s: lock: %s", path, strerror(-r));
        }
    }
    *ret_fd = fd;
    return 0;
}

void berth__content_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int berth__engine_content(berth_engine_t *e, berth_content_t **ret_cs, berth_err_t *err)
{
    berth_content_t **slot = berth__engine_content_slot(e, berth__content_close);
    int r;

    if (!*slot && (r = berth__content_open(berth__engine_config(e)->root, slot, err)) < 0)
        return r;
    *ret_cs = *slot;
    return 0;
}
