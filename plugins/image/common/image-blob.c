/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Digests, media types, sha256 and the byte streams fetch() hands out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "image-common.h"

int image_digest_check(const char *digest, berth_err_t *err)
{
    size_t want, i;
    const char *hex;

    if (!digest)
        return berth_err_set(err, -EINVAL, "missing digest");
    if (strncmp(digest, "sha256:", 7) == 0)
        want = 64;
    else if (strncmp(digest, "sha512:", 7) == 0)
        want = 128;
    else
        return berth_err_set(err, -EINVAL,
                             "invalid digest \"%.80s\": not sha256: or sha512:", digest);
    hex = digest + 7;
    /* Lowercase hex only: anything else (/, ., NUL, uppercase) never reaches a path. */
    for (i = 0; hex[i]; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return berth_err_set(err, -EINVAL, "invalid digest \"%.80s\": not lowercase hex",
                                 digest);
    if (i != want)
        return berth_err_set(err, -EINVAL, "invalid digest \"%.80s\": %zu hex digits, want %zu",
                             digest, i, want);
    return 0;
}

int image_digest_path(const char *digest, char *buf, size_t len, berth_err_t *err)
{
    int r = image_digest_check(digest, err);
    if (r < 0)
        return r;
    /* "sha256:<hex>" -> "blobs/sha256/<hex>" */
    if ((size_t)snprintf(buf, len, "blobs/%.6s/%s", digest, digest + 7) >= len)
        return berth_err_set(err, -ENAMETOOLONG, "blob path too long");
    return 0;
}

int image_mt_is_index(const char *mt)
{
    return mt && (strcmp(mt, IMAGE_MT_OCI_INDEX) == 0 || strcmp(mt, IMAGE_MT_DOCKER_LIST) == 0);
}

int image_mt_is_manifest(const char *mt)
{
    return mt &&
           (strcmp(mt, IMAGE_MT_OCI_MANIFEST) == 0 || strcmp(mt, IMAGE_MT_DOCKER_MANIFEST) == 0);
}

struct image_hash {
    EVP_MD_CTX *ctx;
};

int image_hash_new(image_hash_t **ret, berth_err_t *err)
{
    image_hash_t *h = calloc(1, sizeof(*h));
    if (!h)
        return berth_err_set(err, -ENOMEM, "out of memory");
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        image_hash_free(h);
        return berth_err_set(err, -ENOMEM, "sha256: cannot set up a digest context");
    }
    *ret = h;
    return 0;
}

int image_hash_update(image_hash_t *h, const void *buf, size_t len)
{
    return EVP_DigestUpdate(h->ctx, buf, len) == 1 ? 0 : -EIO;
}

void image_hash_finish(image_hash_t *h, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    EVP_DigestFinal_ex(h->ctx, md, &n);
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    image_hash_free(h);
}

void image_hash_free(image_hash_t *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int image_hash_buf(const void *buf, size_t len, char *out, berth_err_t *err)
{
    image_hash_t *h;
    int r = image_hash_new(&h, err);
    if (r < 0)
        return r;
    if (image_hash_update(h, buf, len) < 0) {
        image_hash_free(h);
        return berth_err_set(err, -EIO, "sha256 failed");
    }
    image_hash_finish(h, out);
    return 0;
}

int image_hash_range(int fd, uint64_t off, uint64_t len, char *ret_digest, uint8_t *head,
                     size_t head_len, berth_err_t *err)
{
    static const size_t chunk = 1u << 20;
    _cleanup_free_ uint8_t *buf = malloc(chunk);
    image_hash_t *h = NULL;
    uint64_t done = 0;
    int r;

    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (head)
        memset(head, 0, head_len);
    r = image_hash_new(&h, err);
    if (r < 0)
        return r;
    while (done < len) {
        size_t want = len - done < chunk ? (size_t)(len - done) : chunk;
        ssize_t n = pread(fd, buf, want, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            image_hash_free(h);
            return n < 0 ? berth_err_set(err, -errno, "read: %s", strerror(errno))
                         : berth_err_set(err, -EIO, "read: file ends %llu bytes early",
                                         (unsigned long long)(len - done));
        }
        if (head && done < head_len)
            memcpy(head + done, buf, head_len - done < (size_t)n ? head_len - done : (size_t)n);
        if (image_hash_update(h, buf, (size_t)n) < 0) {
            image_hash_free(h);
            return berth_err_set(err, -EIO, "sha256 failed");
        }
        done += (uint64_t)n;
    }
    image_hash_finish(h, ret_digest);
    return 0;
}

int image_sniff_compression(const uint8_t *head, size_t len)
{
    if (len >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        return IMAGE_COMP_GZIP;
    if (len >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
        return IMAGE_COMP_ZSTD;
    if (len >= 6 && memcmp(head,
                           "\xfd"
                           "7zXZ\0",
                           6) == 0)
        return IMAGE_COMP_XZ;
    if (len >= 3 && memcmp(head, "BZh", 3) == 0)
        return IMAGE_COMP_BZIP;
    return IMAGE_COMP_NONE;
}

/* ---- streams ---- */

struct fd_stream {
    berth_stream_t s;
    int fd;
    uint64_t off, end;
};

static int64_t fd_stream_read(berth_stream_t *s, void *buf, size_t len, berth_err_t *err)
{
    struct fd_stream *st = s->priv;
    ssize_t n;

    if (st->off >= st->end)
        return 0;
    if (len > st->end - st->off)
        len = (size_t)(st->end - st->off);
    do
        n = pread(st->fd, buf, len, (off_t)st->off);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return berth_err_set(err, -errno, "read: %s", strerror(errno));
    /* The file was cut short after the location was opened. */
    if (n == 0)
        return berth_err_set(err, -EIO, "read: file ends %llu bytes early",
                             (unsigned long long)(st->end - st->off));
    st->off += (uint64_t)n;
    return n;
}

static void fd_stream_close(berth_stream_t *s)
{
    struct fd_stream *st = s->priv;
    close(st->fd);
    free(st);
}

int image_stream_from_fd(int fd, uint64_t off, uint64_t len, berth_stream_t **ret_stream,
                         berth_err_t *err)
{
    struct fd_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return berth_err_set(err, -ENOMEM, "out of memory");
    st->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (st->fd < 0) {
        int e = errno;
        free(st);
        return berth_err_set(err, -e, "dup: %s", strerror(e));
    }
    st->off = off;
    st->end = off + len;
    st->s.struct_size = sizeof(st->s);
    st->s.size = (int64_t)len;
    st->s.read = fd_stream_read;
    st->s.close = fd_stream_close;
    st->s.priv = st;
    *ret_stream = &st->s;
    return 0;
}

struct mem_stream {
    berth_stream_t s;
    size_t off, len;
    char data[];
};

static int64_t mem_stream_read(berth_stream_t *s, void *buf, size_t len, berth_err_t *err)
{
    struct mem_stream *st = s->priv;
    if (len > st->len - st->off)
        len = st->len - st->off;
    memcpy(buf, st->data + st->off, len);
    st->off += len;
    return (int64_t)len;
}

static void mem_stream_close(berth_stream_t *s)
{
    free(s->priv);
}

int image_stream_from_mem(const void *data, size_t len, berth_stream_t **ret_stream,
                          berth_err_t *err)
{
    struct mem_stream *st = calloc(1, sizeof(*st) + len);
    if (!st)
        return berth_err_set(err, -ENOMEM, "out of memory");
    memcpy(st->data, data, len);
    st->len = len;
    st->s.struct_size = sizeof(st->s);
    st->s.size = (int64_t)len;
    st->s.read = mem_stream_read;
    st->s.close = mem_stream_close;
    st->s.priv = st;
    *ret_stream = &st->s;
    return 0;
}
