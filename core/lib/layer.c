/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layer unpacker (layer.h).
 *
 * Two threads per call. The helper ("producer") reads the blob, inflates it
 * (zlib or libzstd) straight into one of a few large chunks and hands the
 * chunk over; the calling thread ("consumer") gives the chunks to libarchive
 * as its input blocks, so file data goes from the decompressor's output to
 * write() without another copy, and extracts every entry itself with *at()
 * calls. A third thread takes the sha256 of the decompressed chunks, so the
 * scheduler can spread the three stages over the cores.
 * This mirrors `tar -xzf`, where gzip runs as a second process, and is what
 * lets the unpacker keep up with it on two cores.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "digest.h"
#include "layer.h"
#include "lazylib.h"
#include "util.h"

/* ---------------------------------------------------------------------------
 * The bounded buffer between the threads.
 * ------------------------------------------------------------------------- */

/*
 * 1 MiB chunks: large writes for large files and few hand-overs; 8 of them
 * let the producer run ahead while the consumer creates many small files.
 */
#define CHUNK_SIZE (1u << 20)
#define NCHUNKS    8u
#define INBUF_SIZE (256u << 10)
#define HEAD_SIZE  512u

enum compression { COMP_NONE, COMP_GZIP, COMP_ZSTD };

/*
 * A ring of NCHUNKS chunks with three stages: the producer fills chunk
 * number `produced`; the consumer (libarchive and the extraction) reads them
 * in order, and so does the hasher thread. A chunk is filled again only when
 * both are done with it. Counters only grow; chunk n lives in buf[n % NCHUNKS].
 */
struct pipe {
    pthread_mutex_t lock;
    pthread_cond_t filled; /* the consumer and the hasher wait on it */
    pthread_cond_t freed;  /* the producer waits on it */
    unsigned char *buf[NCHUNKS];
    size_t len[NCHUNKS];
    uint64_t produced; /* chunks published */
    uint64_t consumed; /* chunks the consumer has released */
    uint64_t hashed;   /* chunks the hasher is done with */
    int held;          /* the consumer holds chunk `consumed` (libarchive reads from it) */
    int done;          /* the producer has finished; status and err are final */
    int abort;         /* the consumer gave up: the producer and the hasher stop */
    int status;        /* the producer's result */
    berth_err_t err;

    /* Set before the threads start, then owned by the producer until joined. */
    berth_stream_t *in;
    enum compression comp;
    unsigned char head[HEAD_SIZE]; /* the sniffed first bytes of the blob */
    size_t head_len;
    int in_eof; /* the blob ended while sniffing */
    uint64_t in_bytes, out_bytes;

    berth_sha256_t sha; /* the hasher's, read after it is joined */
};

/* Producer: wait for a free chunk. NULL when the consumer aborted. */
static unsigned char *pipe_acquire(struct pipe *p)
{
    unsigned char *b = NULL;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        uint64_t oldest = p->consumed < p->hashed ? p->consumed : p->hashed;

        if (p->abort || p->produced - oldest < NCHUNKS)
            break;
        pthread_cond_wait(&p->freed, &p->lock);
    }
    if (!p->abort)
        b = p->buf[p->produced % NCHUNKS];
    pthread_mutex_unlock(&p->lock);
    return b;
}

/* Producer: hand the acquired chunk over with @len bytes. */
static int pipe_publish(struct pipe *p, size_t len)
{
    int r = 0;

    if (len == 0)
        return 0;
    p->out_bytes += len;
    pthread_mutex_lock(&p->lock);
    if (p->abort) {
        r = -ECANCELED;
    } else {
        p->len[p->produced % NCHUNKS] = len;
        p->produced++;
        pthread_cond_broadcast(&p->filled);
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

static void pipe_finish(struct pipe *p, int status)
{
    pthread_mutex_lock(&p->lock);
    p->done = 1;
    p->status = status;
    pthread_cond_broadcast(&p->filled);
    pthread_mutex_unlock(&p->lock);
}

/*
 * Consumer: release the chunk it held and take the next one.
 * Returns 1 with a chunk, 0 at the end of the stream, or the producer's
 * negative status.
 */
static int pipe_next(struct pipe *p, const void **ret_buf, size_t *ret_len)
{
    int r;

    pthread_mutex_lock(&p->lock);
    if (p->held) {
        p->consumed++;
        p->held = 0;
        pthread_cond_signal(&p->freed);
    }
    while (p->consumed == p->produced && !p->done)
        pthread_cond_wait(&p->filled, &p->lock);
    if (p->consumed == p->produced) {
        r = p->status;
        pthread_mutex_unlock(&p->lock);
        return r;
    }
    p->held = 1;
    *ret_buf = p->buf[p->consumed % NCHUNKS];
    *ret_len = p->len[p->consumed % NCHUNKS];
    pthread_mutex_unlock(&p->lock);
    return 1;
}

/*
 * The hasher: sha256 of every chunk, in order. A thread of its own so that
 * the scheduler can give its work to whichever core has time: the producer's
 * when zstd decompresses faster than files get written, the consumer's when
 * gzip's inflate is the slow stage.
 */
static void *hasher_main(void *arg)
{
    struct pipe *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        uint64_t n;

        while (p->hashed == p->produced && !p->done && !p->abort)
            pthread_cond_wait(&p->filled, &p->lock);
        if (p->abort || p->hashed == p->produced)
            break;
        n = p->hashed;
        pthread_mutex_unlock(&p->lock);
        berth__sha256_update(&p->sha, p->buf[n % NCHUNKS], p->len[n % NCHUNKS]);
        pthread_mutex_lock(&p->lock);
        p->hashed++;
        pthread_cond_signal(&p->freed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pipe_abort(struct pipe *p)
{
    pthread_mutex_lock(&p->lock);
    p->abort = 1;
    pthread_cond_broadcast(&p->freed);
    pthread_cond_broadcast(&p->filled);
    pthread_mutex_unlock(&p->lock);
}

/* The producer's error, when it has finished with one (0 otherwise). */
static int pipe_error(struct pipe *p, berth_err_t *copy)
{
    int r = 0;

    pthread_mutex_lock(&p->lock);
    if (p->done && p->status < 0) {
        r = p->status;
        *copy = p->err;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

/* ---------------------------------------------------------------------------
 * The producer: sniffing, reading and decompressing.
 * ------------------------------------------------------------------------- */

/* Read up to @len bytes of the blob; 0 at its end. */
static int64_t read_in(struct pipe *p, void *buf, size_t len)
{
    berth_err_t e = { 0 };
    int64_t n;

    for (;;) {
        n = p->in->read(p->in, buf, len, &e);
        if (n != -EINTR)
            break;
    }
    if (n < 0)
        return berth_err_set(&p->err, (int)n, "layer: reading the blob: %s",
                             e.msg[0] ? e.msg : strerror((int)-n));
    if ((uint64_t)n > len)
        return berth_err_set(&p->err, -EIO, "layer: reading the blob: stream returned too much");
    p->in_bytes += (uint64_t)n;
    return n;
}

static int produce_plain(struct pipe *p)
{
    unsigned char *b = pipe_acquire(p);
    size_t off;
    int64_t n;
    int r;

    if (!b)
        return -ECANCELED;
    memcpy(b, p->head, p->head_len);
    off = p->head_len;
    for (int eof = p->in_eof;;) {
        /* Fill whole chunks: fewer hand-overs and larger file writes. */
        while (!eof && off < CHUNK_SIZE) {
            if ((n = read_in(p, b + off, CHUNK_SIZE - off)) < 0)
                return (int)n;
            eof = n == 0;
            off += (size_t)n;
        }
        if ((r = pipe_publish(p, off)) < 0)
            return r;
        if (eof)
            return 0;
        off = 0;
        if (!(b = pipe_acquire(p)))
            return -ECANCELED;
    }
}

/* Check that @len bytes after the compressed stream's end are zeros. */
static int skip_padding(struct pipe *p, int *padding, const unsigned char *b, size_t len,
                        const char *what)
{
    *padding = 1;
    for (size_t i = 0; i < len; i++) {
        if (b[i] != 0)
            return berth_err_set(&p->err, -EBADMSG, "layer: trailing data after the %s stream",
                                 what);
    }
    return 0;
}

static int produce_gzip(struct pipe *p)
{
    z_stream z = { 0 };
    _cleanup_free_ unsigned char *in = malloc(INBUF_SIZE);
    unsigned char *out;
    int in_member = 1, padding = 0, eof = p->in_eof, zr, r = 0;
    unsigned members = 1;

    if (!in)
        return berth_err_set(&p->err, -ENOMEM, "layer: out of memory");
    /* 16 + MAX_WBITS: gzip wrapper only (no zlib or raw deflate). */
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return berth_err_set(&p->err, -ENOMEM, "layer: gzip: cannot initialise zlib");
    z.next_in = p->head;
    z.avail_in = (uInt)p->head_len;
    if (!(out = pipe_acquire(p))) {
        r = -ECANCELED;
        goto out;
    }
    z.next_out = out;
    z.avail_out = CHUNK_SIZE;
    for (;;) {
        if (!in_member && z.avail_in > 0) {
            /*
             * After a member's trailer: another member, or zero bytes up to
             * the end (block padding, as bsdtar writes it; GNU gzip accepts
             * it too). Nothing else.
             */
            if (z.next_in[0] == 0 || padding) {
                if ((r = skip_padding(p, &padding, z.next_in, z.avail_in, "gzip")) < 0)
                    goto out;
                z.avail_in = 0;
            } else {
                inflateReset(&z);
                in_member = 1;
                members++;
            }
        }
        if (in_member) {
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr == Z_STREAM_END) {
                in_member = 0;
            } else if (zr == Z_MEM_ERROR) {
                r = berth_err_set(&p->err, -ENOMEM, "layer: gzip: out of memory");
                goto out;
            } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
                r = berth_err_set(&p->err, -EBADMSG, "layer: corrupt gzip stream (member %u): %s",
                                  members, z.msg ? z.msg : "bad data");
                goto out_partial;
            }
        }
        if (z.avail_out == 0) {
            if ((r = pipe_publish(p, CHUNK_SIZE)) < 0)
                goto out;
            if (!(out = pipe_acquire(p))) {
                r = -ECANCELED;
                goto out;
            }
            z.next_out = out;
            z.avail_out = CHUNK_SIZE;
            continue;
        }
        if (z.avail_in == 0) {
            int64_t n;

            if (eof)
                break;
            if ((n = read_in(p, in, INBUF_SIZE)) < 0) {
                r = (int)n;
                goto out;
            }
            eof = n == 0;
            z.next_in = in;
            z.avail_in = (uInt)n;
        }
    }
    /* Input exhausted and all output flushed (avail_out > 0 above). */
    if (in_member) {
        r = berth_err_set(&p->err, -EBADMSG, "layer: truncated gzip stream");
        goto out_partial;
    }
    r = pipe_publish(p, CHUNK_SIZE - z.avail_out);
    goto out;
out_partial:
    /* Hand over what was decoded, so the error names the member it cut. */
    (void)pipe_publish(p, CHUNK_SIZE - z.avail_out);
out:
    inflateEnd(&z);
    return r;
}

#ifdef BERTH_HAVE_ISAL
/*
 * gzip with Intel's ISA-L (igzip): its inflate is several times faster than
 * zlib's on x86 (16 MiB of half text, half random bytes: 10 ms against 70 ms
 * for gzip -d here), and gzip's inflate is the slowest stage of a pull. The
 * same rules and messages as produce_gzip below, which serves when berth is
 * built without ISA-L, or with BERTH_LAYER_ZLIB=1 in the environment (tests
 * run both).
 */
static const char *isal_error(int ret)
{
    switch (ret) {
    case ISAL_INVALID_BLOCK:
        return "invalid block";
    case ISAL_INVALID_SYMBOL:
        return "invalid symbol";
    case ISAL_INVALID_LOOKBACK:
        return "invalid distance too far back";
    case ISAL_INVALID_WRAPPER:
        return "incorrect header";
    case ISAL_UNSUPPORTED_METHOD:
        return "unknown compression method";
    case ISAL_INCORRECT_CHECKSUM:
        return "incorrect data check";
    case ISAL_NEED_DICT:
        return "needs a dictionary";
    default:
        return "bad data";
    }
}

static int produce_gzip_isal(struct pipe *p)
{
    _cleanup_free_ struct inflate_state *z = malloc(sizeof(*z));
    _cleanup_free_ unsigned char *in = malloc(INBUF_SIZE);
    unsigned char *out;
    int in_member = 1, padding = 0, eof = p->in_eof, zr, r = 0;
    unsigned members = 1;

    if (!in || !z)
        return berth_err_set(&p->err, -ENOMEM, "layer: out of memory");
    BERTH_ISAL(isal_inflate_init)(z);
    z->crc_flag = ISAL_GZIP;
    z->next_in = p->head;
    z->avail_in = (uint32_t)p->head_len;
    if (!(out = pipe_acquire(p)))
        return -ECANCELED;
    z->next_out = out;
    z->avail_out = CHUNK_SIZE;
    for (;;) {
        if (!in_member && z->avail_in > 0) {
            /* After a member: another member, or zero bytes up to the end (see produce_gzip). */
            if (z->next_in[0] == 0 || padding) {
                if ((r = skip_padding(p, &padding, z->next_in, z->avail_in, "gzip")) < 0)
                    return r;
                z->avail_in = 0;
            } else {
                uint8_t *next = z->next_in;
                uint32_t avail = z->avail_in;
                BERTH_ISAL(isal_inflate_reset)(z);
                z->crc_flag = ISAL_GZIP;
                z->next_in = next;
                z->avail_in = avail;
                in_member = 1;
                members++;
            }
        }
        if (in_member) {
            uint32_t before_in = z->avail_in, before_out = z->avail_out;
            zr = BERTH_ISAL(isal_inflate)(z);
            /* It returns when the input is used up or the output full; anything else is bad. */
            if (zr == ISAL_DECOMP_OK && z->block_state != ISAL_BLOCK_FINISH &&
                z->avail_in == before_in && z->avail_out == before_out && before_in > 0 &&
                before_out > 0)
                zr = ISAL_INVALID_BLOCK;
            if (zr < 0 || zr == ISAL_NEED_DICT) {
                r = berth_err_set(&p->err, -EBADMSG, "layer: corrupt gzip stream (member %u): %s",
                                  members, isal_error(zr));
                (void)pipe_publish(p, CHUNK_SIZE - z->avail_out);
                return r;
            }
            if (z->block_state == ISAL_BLOCK_FINISH)
                in_member = 0;
        }
        if (z->avail_out == 0) {
            if ((r = pipe_publish(p, CHUNK_SIZE)) < 0)
                return r;
            if (!(out = pipe_acquire(p)))
                return -ECANCELED;
            z->next_out = out;
            z->avail_out = CHUNK_SIZE;
            continue;
        }
        if (z->avail_in == 0) {
            int64_t n;

            if (eof)
                break;
            if ((n = read_in(p, in, INBUF_SIZE)) < 0)
                return (int)n;
            eof = n == 0;
            z->next_in = in;
            z->avail_in = (uint32_t)n;
        }
    }
    if (in_member) {
        r = berth_err_set(&p->err, -EBADMSG, "layer: truncated gzip stream");
        (void)pipe_publish(p, CHUNK_SIZE - z->avail_out);
        return r;
    }
    return pipe_publish(p, CHUNK_SIZE - z->avail_out);
}
#endif

static int produce_zstd(struct pipe *p)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    _cleanup_free_ unsigned char *in = malloc(INBUF_SIZE);
    ZSTD_inBuffer ib = { p->head, p->head_len, 0 };
    ZSTD_outBuffer ob = { NULL, CHUNK_SIZE, 0 };
    size_t last = 1; /* 0 once a frame is complete and flushed */
    int eof = p->in_eof, pending = 0, padding = 0, r = 0;

    if (!d || !in) {
        r = berth_err_set(&p->err, -ENOMEM, "layer: out of memory");
        goto out;
    }
    /*
     * libzstd's default window limit (128 MiB) stays: a frame may not make
     * us allocate more than that, whatever its header claims.
     */
    if (!(ob.dst = pipe_acquire(p))) {
        r = -ECANCELED;
        goto out;
    }
    for (;;) {
        /* A zero byte cannot start a frame: zero padding after the last one (see gzip). */
        if (last == 0 && !pending && ib.pos < ib.size &&
            (padding || ((const unsigned char *)ib.src)[ib.pos] == 0)) {
            if ((r = skip_padding(p, &padding, (const unsigned char *)ib.src + ib.pos,
                                  ib.size - ib.pos, "zstd")) < 0)
                goto out;
            ib.pos = ib.size;
        }
        if (ib.pos < ib.size || pending) {
            size_t zr = ZSTD_decompressStream(d, &ob, &ib);

            if (ZSTD_isError(zr)) {
                r = berth_err_set(&p->err, -EBADMSG, "layer: corrupt zstd stream: %s",
                                  ZSTD_getErrorName(zr));
                goto out_partial;
            }
            last = zr;
            /* A full output buffer may hide more output for the same input. */
            pending = ob.pos == ob.size;
        }
        if (ob.pos == ob.size) {
            if ((r = pipe_publish(p, ob.pos)) < 0)
                goto out;
            if (!(ob.dst = pipe_acquire(p))) {
                r = -ECANCELED;
                goto out;
            }
            ob.pos = 0;
            continue;
        }
        if (ib.pos == ib.size && !pending) {
            int64_t n;

            if (eof)
                break;
            if ((n = read_in(p, in, INBUF_SIZE)) < 0) {
                r = (int)n;
                goto out;
            }
            eof = n == 0;
            ib.src = in;
            ib.size = (size_t)n;
            ib.pos = 0;
        }
    }
    if (last != 0) {
        r = berth_err_set(&p->err, -EBADMSG, "layer: truncated zstd stream");
        goto out_partial;
    }
    r = pipe_publish(p, ob.pos);
    goto out;
out_partial:
    (void)pipe_publish(p, ob.pos); /* as for gzip */
out:
    ZSTD_freeDCtx(d);
    return r;
}

static void *producer_main(void *arg)
{
    struct pipe *p = arg;
    int r;

    switch (p->comp) {
    case COMP_GZIP:
#ifdef BERTH_HAVE_ISAL
        if (!getenv("BERTH_LAYER_ZLIB") && berth__isal_load(NULL) == 0) {
            r = produce_gzip_isal(p);
            break;
        }
#endif
        r = produce_gzip(p);
        break;
    case COMP_ZSTD:
        r = produce_zstd(p);
        break;
    default:
        r = produce_plain(p);
        break;
    }
    if (r == -ECANCELED && !p->err.msg[0])
        berth_err_set(&p->err, r, "layer: cancelled");
    pipe_finish(p, r < 0 ? r : 0);
    return NULL;
}

/* Read the first bytes and decide how the blob is compressed. */
static int sniff(struct pipe *p, berth_err_t *err)
{
    const unsigned char *h = p->head;
    int64_t n;

    while (p->head_len < HEAD_SIZE) {
        if ((n = read_in(p, p->head + p->head_len, HEAD_SIZE - p->head_len)) < 0) {
            *err = p->err;
            return (int)n;
        }
        if (n == 0) {
            p->in_eof = 1;
            break;
        }
        p->head_len += (size_t)n;
    }
    if (p->head_len >= 2 && h[0] == 0x1f && h[1] == 0x8b) {
        p->comp = COMP_GZIP;
        return 0;
    }
    /* A zstd frame, or a skippable frame (magic 0x184D2A5?) in front of one. */
    if (p->head_len >= 4 &&
        ((h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd) ||
         ((h[0] & 0xf0) == 0x50 && h[1] == 0x2a && h[2] == 0x4d && h[3] == 0x18))) {
        p->comp = COMP_ZSTD;
        return 0;
    }
    if (p->head_len == HEAD_SIZE) {
        size_t zeros = 0;

        while (zeros < HEAD_SIZE && h[zeros] == 0)
            zeros++;
        /* POSIX "ustar\0" + "00", GNU "ustar  \0"; or an empty archive. */
        if (zeros == HEAD_SIZE || memcmp(h + 257, "ustar", 5) == 0) {
            p->comp = COMP_NONE;
            return 0;
        }
    }
    if (p->head_len >= 6 && memcmp(h,
                                   "\xfd"
                                   "7zXZ\0",
                                   6) == 0)
        return berth_err_set(err, -ENOTSUP, "layer: unsupported layer compression (xz)");
    if (p->head_len >= 3 && memcmp(h, "BZh", 3) == 0)
        return berth_err_set(err, -ENOTSUP, "layer: unsupported layer compression (bzip2)");
    if (p->head_len >= 4 && memcmp(h, "\x04\x22\x4d\x18", 4) == 0)
        return berth_err_set(err, -ENOTSUP, "layer: unsupported layer compression (lz4)");
    if (p->head_len == 0)
        return berth_err_set(err, -EINVAL, "layer: the blob is empty");
    return berth_err_set(err, -ENOTSUP,
                         "layer: unsupported layer compression (not gzip, zstd or a tar archive)");
}

/* ---------------------------------------------------------------------------
 * Paths: normalising member names and remembering what this layer created.
 * ------------------------------------------------------------------------- */

#define WH_PREFIX     ".wh."
#define WH_PREFIX_LEN (sizeof(WH_PREFIX) - 1)
#define WH_OPAQUE     ".wh..wh..opq"
#define WH_META       ".wh..wh."

/* Flags of a path in the set. */
#define P_CREATED  0x1u /* an entry of this layer */
#define P_ANCESTOR 0x2u /* a parent of such an entry */
#define P_WHITEOUT 0x4u /* an overlay whiteout this layer made */

struct pathset {
    char **keys;
    uint8_t *flags;
    size_t cap; /* power of two */
    size_t n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t set_slot(const struct pathset *set, const char *key)
{
    size_t i = (size_t)hash_str(key) & (set->cap - 1);

    while (set->keys[i] && strcmp(set->keys[i], key) != 0)
        i = (i + 1) & (set->cap - 1);
    return i;
}

static unsigned set_get(const struct pathset *set, const char *key)
{
    size_t i;

    if (!set->cap)
        return 0;
    i = set_slot(set, key);
    return set->keys[i] ? set->flags[i] : 0;
}

static int set_grow(struct pathset *set)
{
    struct pathset bigger = { 0 };

    bigger.cap = set->cap ? set->cap * 2 : 1024;
    bigger.keys = calloc(bigger.cap, sizeof(*bigger.keys));
    bigger.flags = calloc(bigger.cap, sizeof(*bigger.flags));
    if (!bigger.keys || !bigger.flags) {
        free(bigger.keys);
        free(bigger.flags);
        return -ENOMEM;
    }
    for (size_t i = 0; i < set->cap; i++) {
        if (set->keys[i]) {
            size_t j = set_slot(&bigger, set->keys[i]);
            bigger.keys[j] = set->keys[i];
            bigger.flags[j] = set->flags[i];
        }
    }
    bigger.n = set->n;
    free(set->keys);
    free(set->flags);
    *set = bigger;
    return 0;
}

/* OR @flags into @key's flags. Returns the flags it had before (0 if new), or -ENOMEM. */
static int set_add(struct pathset *set, const char *key, unsigned flags)
{
    size_t i;
    int prev;

    if ((set->n + 1) * 2 > set->cap && set_grow(set) < 0)
        return -ENOMEM;
    i = set_slot(set, key);
    if (set->keys[i]) {
        prev = set->flags[i];
        set->flags[i] |= (uint8_t)flags;
        return prev;
    }
    if (!(set->keys[i] = strdup(key)))
        return -ENOMEM;
    set->flags[i] = (uint8_t)flags;
    set->n++;
    return 0;
}

static void set_clear_flag(struct pathset *set, const char *key, unsigned flags)
{
    size_t i;

    if (!set->cap)
        return;
    i = set_slot(set, key);
    if (set->keys[i])
        set->flags[i] &= (uint8_t)~flags;
}

static void set_free(struct pathset *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->keys[i]);
    free(set->keys);
    free(set->flags);
}

/* Mark @path created (@flags) and all its parents as ancestors. */
static int set_mark(struct pathset *set, const char *path, unsigned flags)
{
    char buf[PATH_MAX];
    char *slash;
    int r;

    if ((r = set_add(set, path, flags)) < 0)
        return r;
    snprintf(buf, sizeof(buf), "%s", path);
    /* Stop at the first parent already marked: its own parents are too. */
    while ((slash = strrchr(buf, '/'))) {
        *slash = '\0';
        if ((r = set_add(set, buf, P_ANCESTOR)) < 0)
            return r;
        if (r & (P_CREATED | P_ANCESTOR))
            break;
    }
    return 0;
}

/*
 * Normalise a member name into @out (PATH_MAX bytes): relative, components
 * joined by one '/', no "." and no "..". "" is the root itself.
 * Returns 0, -EXDEV (climbs above the root) or -ENAMETOOLONG.
 */
static int normalize(const char *name, char *out)
{
    size_t len = 0, nlen = strlen(name);
    const char *p = name;

    if (nlen >= PATH_MAX)
        return -ENAMETOOLONG;
    out[0] = '\0';
    while (*p) {
        const char *c = p;
        size_t clen;

        while (*p && *p != '/')
            p++;
        clen = (size_t)(p - c);
        while (*p == '/')
            p++;
        if (clen == 0 || (clen == 1 && c[0] == '.'))
            continue;
        if (clen > NAME_MAX)
            return -ENAMETOOLONG;
        if (clen == 2 && c[0] == '.' && c[1] == '.') {
            char *slash;

            if (len == 0)
                return -EXDEV;
            slash = strrchr(out, '/');
            len = slash ? (size_t)(slash - out) : 0;
            out[len] = '\0';
            continue;
        }
        /* The result is never longer than the name, which fits. */
        if (len > 0)
            out[len++] = '/';
        memcpy(out + len, c, clen);
        len += clen;
        out[len] = '\0';
    }
    return 0;
}

/* @s quoted for a one-line message: control bytes become '?', long names are cut. */
static const char *quote(const char *s, char *buf, size_t size)
{
    size_t i = 0;

    for (; *s && i + 4 < size; s++)
        buf[i++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    if (*s) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* ---------------------------------------------------------------------------
 * The extraction context.
 * ------------------------------------------------------------------------- */

struct dirtime {
    char *path;
    struct timespec ts[2];
};

struct ctx {
    int root;
    uint32_t flags;
    int use_openat2;
    struct archive *a;
    struct pipe *pipe;
    berth_err_t *err;

    char name[PATH_MAX]; /* the current entry, normalised */
    char qname[200];     /* the current member name as the tar spells it, quoted */
    int in_entry;

    /* The last parent directory resolved, kept open: most entries share it. */
    char cache_path[PATH_MAX];
    int cache_fd;

    struct pathset set;
    struct dirtime *dirs;
    size_t ndirs, dircap;
    int root_entry; /* the layer had an entry for its root directory */
};

static BERTH_PRINTF(3, 4) int fail(struct ctx *c, int code, const char *fmt, ...)
{
    char msg[BERTH_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->in_entry)
        return berth_err_set(c->err, code, "layer: member \"%s\": %s", c->qname, msg);
    return berth_err_set(c->err, code, "layer: %s", msg);
}

/* A path-resolution errno in words. */
static const char *resolve_reason(int e)
{
    switch (e) {
    case EXDEV:
        return "path escapes the layer root (through a symlink)";
    case ELOOP:
        return "symlink loop, or a symlink where none is allowed";
    case ENOTDIR:
        return "a parent is not a directory";
    case ENAMETOOLONG:
        return "name too long";
    default:
        return strerror(e);
    }
}

static void cache_drop(struct ctx *c)
{
    if (c->cache_fd >= 0)
        close(c->cache_fd);
    c->cache_fd = -1;
    c->cache_path[0] = '\0';
}

/*
 * Open @rel (relative to the root, normalised, not "") beneath the root.
 * @oflags for the final open (O_PATH, O_DIRECTORY, O_NOFOLLOW...);
 * @resolve the RESOLVE_* flags (RESOLVE_BENEATH is always added).
 * Returns the fd or -errno.
 */
static int open_beneath(struct ctx *c, const char *rel, int oflags, uint64_t resolve)
{
    char buf[PATH_MAX];
    char *comp, *next;
    int fd, nfd;

    if (c->use_openat2) {
        struct open_how how = { 0 };

        how.flags = (uint64_t)(oflags | O_CLOEXEC);
        how.resolve = resolve | RESOLVE_BENEATH;
        do
            fd = (int)syscall(SYS_openat2, c->root, rel, &how, sizeof(how));
        while (fd < 0 && errno == EAGAIN);
        if (fd >= 0 || errno != ENOSYS)
            return fd >= 0 ? fd : -errno;
        c->use_openat2 = 0;
    }
    /*
     * Without openat2: one component at a time, never following a symlink
     * (O_PATH | O_NOFOLLOW opens a symlink itself; O_DIRECTORY then fails).
     */
    snprintf(buf, sizeof(buf), "%s", rel);
    if ((fd = openat(c->root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    for (comp = buf; comp; comp = next) {
        int last;

        next = strchr(comp, '/');
        if (next)
            *next++ = '\0';
        last = next == NULL;
        nfd = openat(fd, comp,
                     last ? (oflags | O_NOFOLLOW | O_CLOEXEC)
                          : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (nfd < 0) {
            int e = errno;
            struct stat st;

            /* Report a symlink in the way as RESOLVE_NO_SYMLINKS would. */
            if ((e == ENOTDIR || e == ELOOP) && fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode) && !(last && (oflags & O_NOFOLLOW) && (oflags & O_PATH)))
                e = ELOOP;
            close(fd);
            return -e;
        }
        close(fd);
        fd = nfd;
    }
    return fd;
}

/*
 * The directory @rel (normalised; "" is the root) as an O_PATH fd, creating
 * missing directories (0755, root) when @create. The fd is borrowed from the
 * cache: valid until the next resolve or cache_drop(). Returns it or -errno.
 */
static int resolve_dir(struct ctx *c, const char *rel, int create)
{
    char prefix[PATH_MAX];
    int fd;

    if (rel[0] == '\0')
        return c->root;
    if (c->cache_fd >= 0 && strcmp(c->cache_path, rel) == 0)
        return c->cache_fd;
    cache_drop(c);
    fd = open_beneath(c, rel, O_PATH | O_DIRECTORY, RESOLVE_NO_MAGICLINKS);
    if (fd == -ENOENT && create) {
        /* Create what is missing, re-resolving each prefix under the same rules. */
        size_t len = strlen(rel);

        for (size_t i = 0; i <= len; i++) {
            int pfd, r;
            const char *base;

            if (rel[i] != '/' && rel[i] != '\0')
                continue;
            memcpy(prefix, rel, i);
            prefix[i] = '\0';
            base = strrchr(prefix, '/');
            if (base) {
                char parent[PATH_MAX];

                memcpy(parent, prefix, (size_t)(base - prefix));
                parent[base - prefix] = '\0';
                base++;
                pfd = open_beneath(c, parent, O_PATH | O_DIRECTORY, RESOLVE_NO_MAGICLINKS);
                if (pfd < 0)
                    return pfd;
            } else {
                base = prefix;
                pfd = -1;
            }
            r = mkdirat(pfd >= 0 ? pfd : c->root, base, 0755);
            r = r < 0 && errno != EEXIST ? -errno : 0;
            if (pfd >= 0)
                close(pfd);
            if (r < 0)
                return r;
        }
        fd = open_beneath(c, rel, O_PATH | O_DIRECTORY, RESOLVE_NO_MAGICLINKS);
    }
    if (fd < 0)
        return fd;
    c->cache_fd = fd;
    snprintf(c->cache_path, sizeof(c->cache_path), "%s", rel);
    return fd;
}

/* Split "a/b/c" into parent "a/b" (in @parent, PATH_MAX) and base "c". */
static const char *split(const char *path, char *parent)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        parent[0] = '\0';
        return path;
    }
    memcpy(parent, path, (size_t)(slash - path));
    parent[slash - path] = '\0';
    return slash + 1;
}

/* ---------------------------------------------------------------------------
 * Removal.
 * ------------------------------------------------------------------------- */

/* Names in directory @dfd, excluding "." and "..", as a NULL-terminated vector. */
static int list_dir(int dfd, char ***ret_names)
{
    DIR *d;
    struct dirent *de;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_strv_ char **names = NULL;

    if (fd < 0)
        return -errno;
    if (!(d = fdopendir(fd))) {
        close(fd);
        return -errno;
    }
    if (!(names = berth__strv_new())) {
        closedir(d);
        return -ENOMEM;
    }
    for (;;) {
        errno = 0;
        if (!(de = readdir(d)))
            break;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (berth__strv_push(&names, de->d_name) < 0) {
            closedir(d);
            return -ENOMEM;
        }
    }
    if (errno) {
        int e = errno;
        closedir(d);
        return -e;
    }
    closedir(d);
    *ret_names = TAKE_PTR(names);
    return 0;
}

/*
 * rm -rf of @name in @dfd, never following symlinks. A missing @name is
 * success. The names of a directory are read before descending, so one fd
 * is open per level.
 */
static int rm_tree(int dfd, const char *name)
{
    _cleanup_strv_ char **names = NULL;
    _cleanup_close_ int fd = -1;
    int r;

    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR)
        return -errno;
    if (unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
        return 0;
    if (errno != ENOTEMPTY && errno != EEXIST)
        return -errno;
    if ((fd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -errno;
    if ((r = list_dir(fd, &names)) < 0)
        return r;
    for (char **n = names; *n; n++) {
        if ((r = rm_tree(fd, *n)) < 0)
            return r;
    }
    return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/*
 * Remove what the lower layers have at @rel (the entry @name in @dfd),
 * keeping everything this layer created: a path that neither is nor holds
 * an entry of this layer goes entirely; a directory of this layer (or one
 * holding its entries) stays and loses its lower-layer children.
 */
static int remove_lower(struct ctx *c, int dfd, const char *name, char *rel)
{
    _cleanup_strv_ char **names = NULL;
    _cleanup_close_ int fd = -1;
    size_t len = strlen(rel);
    struct stat st;
    int r;

    if (!(set_get(&c->set, rel) & (P_CREATED | P_ANCESTOR)))
        return rm_tree(dfd, name);
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return 0;
    if ((fd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -errno;
    if ((r = list_dir(fd, &names)) < 0)
        return r;
    for (char **n = names; *n; n++) {
        if (len + 1 + strlen(*n) >= PATH_MAX)
            return -ENAMETOOLONG;
        snprintf(rel + len, PATH_MAX - len, "%s%s", len ? "/" : "", *n);
        r = remove_lower(c, fd, *n, rel);
        rel[len] = '\0';
        if (r < 0)
            return r;
    }
    return 0;
}

/* Make room for a new non-directory @base in @pfd: remove what is there. */
static int clear_path(struct ctx *c, int pfd, const char *base)
{
    /*
     * A removed directory may be (a parent of) the cached one, unless the
     * cached one is @pfd itself: then @pfd stays valid for the caller.
     */
    if (c->cache_fd != pfd)
        cache_drop(c);
    return rm_tree(pfd, base);
}

/* ---------------------------------------------------------------------------
 * Attributes.
 * ------------------------------------------------------------------------- */

static int overlay_xattr(const char *name)
{
    return strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "user.overlay.", 13) == 0;
}

/*
 * Set the entry's xattrs on @fd (a real fd), or when @fd < 0 on @base in
 * @pfd through /proc/self/fd without following it (symlinks, device nodes).
 */
static int set_xattrs(struct ctx *c, struct archive_entry *e, int fd, int pfd, const char *base)
{
    const char *name;
    const void *value;
    size_t size;
    char path[64 + NAME_MAX];

    if (BERTH_AR(archive_entry_xattr_reset)(e) == 0)
        return 0;
    if (fd < 0)
        snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", pfd, base);
    while (BERTH_AR(archive_entry_xattr_next)(e, &name, &value, &size) == ARCHIVE_OK) {
        int r;

        if (!name || !name[0] || overlay_xattr(name))
            continue;
        /* The kernel allows user.* only on regular files and directories. */
        if (fd < 0 && strncmp(name, "user.", 5) == 0)
            continue;
        r = fd >= 0 ? fsetxattr(fd, name, value, size, 0) : lsetxattr(path, name, value, size, 0);
        if (r < 0 && errno != ENOTSUP) {
            char q[80];
            return fail(c, -errno, "set xattr \"%s\": %s", quote(name, q, sizeof(q)),
                        strerror(errno));
        }
    }
    return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
    ts[1].tv_sec = BERTH_AR(archive_entry_mtime)(e);
    ts[1].tv_nsec =
        BERTH_AR(archive_entry_mtime_is_set)(e) ? BERTH_AR(archive_entry_mtime_nsec)(e) : 0;
    if (BERTH_AR(archive_entry_atime_is_set)(e)) {
        ts[0].tv_sec = BERTH_AR(archive_entry_atime)(e);
        ts[0].tv_nsec = BERTH_AR(archive_entry_atime_nsec)(e);
    } else {
        ts[0] = ts[1];
    }
    if (ts[0].tv_nsec < 0 || ts[0].tv_nsec >= 1000000000)
        ts[0].tv_nsec = 0;
    if (ts[1].tv_nsec < 0 || ts[1].tv_nsec >= 1000000000)
        ts[1].tv_nsec = 0;
}

static int entry_owner(struct ctx *c, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
    la_int64_t u = BERTH_AR(archive_entry_uid)(e), g = BERTH_AR(archive_entry_gid)(e);

    /* (uid_t)-1 means "leave unchanged" to chown(): not a valid owner. */
    if (u < 0 || u >= (la_int64_t)UINT32_MAX || g < 0 || g >= (la_int64_t)UINT32_MAX)
        return fail(c, -EINVAL, "invalid owner %" PRId64 ":%" PRId64, (int64_t)u, (int64_t)g);
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return 0;
}

/*
 * Owner, mode and xattrs of an open regular file or directory. The owner and
 * mode are changed only where fstat() shows they differ (most files are
 * created right already: one cheap call instead of two that write the
 * inode). chown comes first: it clears setuid and setgid.
 */
static int set_fd_attrs(struct ctx *c, struct archive_entry *e, int fd)
{
    mode_t mode = BERTH_AR(archive_entry_mode)(e) & 07777;
    struct stat st;
    int chmod_needed;
    uid_t uid;
    gid_t gid;
    int r;

    if ((r = entry_owner(c, e, &uid, &gid)) < 0)
        return r;
    if (fstat(fd, &st) < 0)
        return fail(c, -errno, "stat: %s", strerror(errno));
    chmod_needed = (st.st_mode & 07777) != mode;
    if (st.st_uid != uid || st.st_gid != gid) {
        if (fchown(fd, uid, gid) < 0)
            return fail(c, -errno, "chown: %s", strerror(errno));
        chmod_needed = 1;
    }
    if (chmod_needed && fchmod(fd, mode) < 0)
        return fail(c, -errno, "chmod: %s", strerror(errno));
    return set_xattrs(c, e, fd, -1, NULL);
}

/* Owner, mode, xattrs and times of a symlink or device node @base in @pfd. */
static int set_node_attrs(struct ctx *c, struct archive_entry *e, int pfd, const char *base,
                          int is_symlink)
{
    struct timespec ts[2];
    uid_t uid;
    gid_t gid;
    int r;

    if ((r = entry_owner(c, e, &uid, &gid)) < 0)
        return r;
    if (fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(c, -errno, "chown: %s", strerror(errno));
    /* Symlinks have no mode of their own; a node we just made is not a symlink. */
    if (!is_symlink && fchmodat(pfd, base, BERTH_AR(archive_entry_mode)(e) & 07777, 0) < 0)
        return fail(c, -errno, "chmod: %s", strerror(errno));
    if ((r = set_xattrs(c, e, -1, pfd, base)) < 0)
        return r;
    entry_times(e, ts);
    if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(c, -errno, "set times: %s", strerror(errno));
    return 0;
}

static int set_opaque(struct ctx *c, int dirfd)
{
    if (fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
        return fail(c, -errno, "set trusted.overlay.opaque: %s", strerror(errno));
    return 0;
}

/* ---------------------------------------------------------------------------
 * Entries.
 * ------------------------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* An error from libarchive while reading the current entry's data. */
static int data_error(struct ctx *c)
{
    berth_err_t perr;
    int r = pipe_error(c->pipe, &perr);
    const char *m;

    if (r < 0)
        return fail(c, r, "%s", perr.msg + (strncmp(perr.msg, "layer: ", 7) == 0 ? 7 : 0));
    m = BERTH_AR(archive_error_string)(c->a);
    return fail(c, -EBADMSG, "truncated or corrupt archive: %s", m ? m : "read error");
}

static int apply_file(struct ctx *c, struct archive_entry *e, int pfd, const char *base)
{
    /* Created with its final mode (umask permitting): usually no chmod afterwards. */
    mode_t mode = BERTH_AR(archive_entry_mode)(e) & 07777;
    _cleanup_close_ int fd = -1;
    struct timespec ts[2];
    la_int64_t size = BERTH_AR(archive_entry_size)(e), pos = 0, off;
    const void *buf;
    size_t len;
    int r;

    fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        if ((r = clear_path(c, pfd, base)) < 0)
            return fail(c, r, "removing the existing path: %s", strerror(-r));
        fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    }
    if (fd < 0)
        return fail(c, -errno, "create: %s", strerror(errno));
    for (;;) {
        r = BERTH_AR(archive_read_data_block)(c->a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return data_error(c);
        if (off != pos && lseek(fd, off, SEEK_SET) < 0) /* a hole of a sparse file */
            return fail(c, -errno, "seek: %s", strerror(errno));
        if ((r = write_all(fd, buf, len)) < 0)
            return fail(c, r, "write: %s", strerror(-r));
        pos = off + (la_int64_t)len;
    }
    if (pos < size && ftruncate(fd, size) < 0) /* a trailing hole */
        return fail(c, -errno, "truncate: %s", strerror(errno));
    if ((r = set_fd_attrs(c, e, fd)) < 0)
        return r;
    entry_times(e, ts);
    if (futimens(fd, ts) < 0)
        return fail(c, -errno, "set times: %s", strerror(errno));
    /*
     * Queue the data for the disk now, while the next files unpack, rather
     * than all at once in the syncfs() that commits the layer. Best effort:
     * that syncfs() is what guarantees it.
     */
    if ((c->flags & BERTH__LAYER_WRITEBACK) && pos > 0)
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    r = close(fd);
    fd = -1;
    if (r < 0)
        return fail(c, -errno, "close: %s", strerror(errno));
    return 0;
}

static int record_dir_times(struct ctx *c, struct archive_entry *e)
{
    struct dirtime *d;

    if (c->ndirs == c->dircap) {
        size_t cap = c->dircap ? c->dircap * 2 : 256;
        struct dirtime *n = realloc(c->dirs, cap * sizeof(*n));
        if (!n)
            return fail(c, -ENOMEM, "out of memory");
        c->dirs = n;
        c->dircap = cap;
    }
    d = &c->dirs[c->ndirs];
    if (!(d->path = strdup(c->name)))
        return fail(c, -ENOMEM, "out of memory");
    entry_times(e, d->ts);
    c->ndirs++;
    return 0;
}

static int apply_dir(struct ctx *c, struct archive_entry *e, int pfd, const char *base)
{
    _cleanup_close_ int fd = -1;
    int r, was_whiteout = set_get(&c->set, c->name) & P_WHITEOUT;

    if (c->name[0] == '\0') {
        fd = openat(c->root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        if (mkdirat(pfd, base, 0700) < 0) {
            struct stat st;

            if (errno != EEXIST)
                return fail(c, -errno, "mkdir: %s", strerror(errno));
            if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fail(c, -errno, "stat: %s", strerror(errno));
            if (!S_ISDIR(st.st_mode)) {
                if ((r = clear_path(c, pfd, base)) < 0)
                    return fail(c, r, "removing the existing path: %s", strerror(-r));
                if (mkdirat(pfd, base, 0700) < 0)
                    return fail(c, -errno, "mkdir: %s", strerror(errno));
            }
        }
        fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return fail(c, -errno, "open directory: %s", strerror(errno));
    if ((r = set_fd_attrs(c, e, fd)) < 0)
        return r;
    /* Overlay: "remove it, then create a directory" hides the lower one's children. */
    if (was_whiteout && (c->flags & BERTH__LAYER_WHITEOUT_OVERLAY) && (r = set_opaque(c, fd)) < 0)
        return r;
    return record_dir_times(c, e);
}

static int apply_symlink(struct ctx *c, struct archive_entry *e, int pfd, const char *base)
{
    const char *target = BERTH_AR(archive_entry_symlink)(e);
    int r;

    if (!target || !target[0])
        return fail(c, -EINVAL, "symlink without a target");
    if (symlinkat(target, pfd, base) < 0) {
        if (errno != EEXIST)
            return fail(c, -errno, "symlink: %s", strerror(errno));
        if ((r = clear_path(c, pfd, base)) < 0)
            return fail(c, r, "removing the existing path: %s", strerror(-r));
        if (symlinkat(target, pfd, base) < 0)
            return fail(c, -errno, "symlink: %s", strerror(errno));
    }
    return set_node_attrs(c, e, pfd, base, 1);
}

static int apply_hardlink(struct ctx *c, const char *target, int pfd, const char *base)
{
    char rel[PATH_MAX], qt[200], proc[64];
    _cleanup_close_ int tfd = -1;
    struct stat st;
    int r;

    r = normalize(target, rel);
    if (r == -EXDEV)
        return fail(c, -EXDEV, "hard link target \"%s\" escapes the layer root",
                    quote(target, qt, sizeof(qt)));
    if (r < 0 || rel[0] == '\0')
        return fail(c, -EINVAL, "invalid hard link target \"%s\"", quote(target, qt, sizeof(qt)));
    /* The inode at the target, reached without any symlink; a final symlink is linked itself. */
    tfd = open_beneath(c, rel, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (tfd < 0)
        return fail(c, tfd, "hard link target \"%s\": %s", quote(target, qt, sizeof(qt)),
                    resolve_reason(-tfd));
    if (fstat(tfd, &st) < 0)
        return fail(c, -errno, "stat hard link target: %s", strerror(errno));
    if (S_ISDIR(st.st_mode))
        return fail(c, -EPERM, "hard link to directory \"%s\"", quote(target, qt, sizeof(qt)));
    if ((r = clear_path(c, pfd, base)) < 0)
        return fail(c, r, "removing the existing path: %s", strerror(-r));
    if (linkat(tfd, "", pfd, base, AT_EMPTY_PATH) == 0)
        return 0;
    /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH on older kernels: go through procfs. */
    if (errno != ENOENT && errno != EPERM)
        return fail(c, -errno, "link: %s", strerror(errno));
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tfd);
    if (linkat(AT_FDCWD, proc, pfd, base, AT_SYMLINK_FOLLOW) < 0)
        return fail(c, -errno, "link: %s", strerror(errno));
    return 0;
}

static int device_allowed(unsigned maj, unsigned min)
{
    static const unsigned char allowed[][2] = {
        { 0, 0 }, { 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 }, { 1, 9 }, { 5, 0 }, { 5, 1 }, { 5, 2 },
    };

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(allowed); i++) {
        if (allowed[i][0] == maj && allowed[i][1] == min)
            return 1;
    }
    return 0;
}

static int apply_node(struct ctx *c, struct archive_entry *e, int pfd, const char *base,
                      mode_t type)
{
    dev_t dev = 0;
    int r;

    if (type == S_IFBLK)
        return fail(c, -EPERM, "block device %u:%u not allowed",
                    (unsigned)BERTH_AR(archive_entry_rdevmajor)(e),
                    (unsigned)BERTH_AR(archive_entry_rdevminor)(e));
    if (type == S_IFCHR) {
        unsigned maj = (unsigned)BERTH_AR(archive_entry_rdevmajor)(e);
        unsigned min = (unsigned)BERTH_AR(archive_entry_rdevminor)(e);

        if (!device_allowed(maj, min))
            return fail(c, -EPERM, "character device %u:%u not allowed", maj, min);
        dev = makedev(maj, min);
    }
    if (mknodat(pfd, base, type | 0600, dev) < 0) {
        if (errno != EEXIST)
            return fail(c, -errno, "mknod: %s", strerror(errno));
        if ((r = clear_path(c, pfd, base)) < 0)
            return fail(c, r, "removing the existing path: %s", strerror(-r));
        if (mknodat(pfd, base, type | 0600, dev) < 0)
            return fail(c, -errno, "mknod: %s", strerror(errno));
    }
    return set_node_attrs(c, e, pfd, base, 0);
}

/* `.wh.NAME` in directory @parent. */
static int apply_whiteout(struct ctx *c, const char *parent, const char *victim)
{
    char rel[PATH_MAX];
    unsigned fl;
    int pfd, r;

    /* Shorter than the member name, so it fits; checked all the same. */
    if (snprintf(rel, sizeof(rel), "%s%s%s", parent, parent[0] ? "/" : "", victim) >=
        (int)sizeof(rel))
        return fail(c, -ENAMETOOLONG, "name too long");
    fl = set_get(&c->set, rel);
    if (!(c->flags & BERTH__LAYER_WHITEOUT_OVERLAY)) {
        pfd = resolve_dir(c, parent, 0);
        if (pfd == -ENOENT)
            return 0; /* nothing below to hide */
        if (pfd < 0)
            return fail(c, pfd, "%s", resolve_reason(-pfd));
        r = remove_lower(c, pfd, victim, rel);
        cache_drop(c);
        if (r < 0)
            return fail(c, r, "removing the whited-out path: %s", strerror(-r));
        return 0;
    }
    if ((pfd = resolve_dir(c, parent, 1)) < 0)
        return fail(c, pfd, "%s", resolve_reason(-pfd));
    if (fl & (P_CREATED | P_ANCESTOR)) {
        /* This layer's own path stays; a directory of it hides the lower one's children. */
        _cleanup_close_ int fd =
            openat(pfd, victim, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd >= 0 ? set_opaque(c, fd) : 0;
    }
    if (mknodat(pfd, victim, S_IFCHR, makedev(0, 0)) < 0) {
        if (errno != EEXIST)
            return fail(c, -errno, "creating the whiteout: %s", strerror(errno));
        if ((r = clear_path(c, pfd, victim)) < 0)
            return fail(c, r, "removing the whited-out path: %s", strerror(-r));
        if ((pfd = resolve_dir(c, parent, 1)) < 0)
            return fail(c, pfd, "%s", resolve_reason(-pfd));
        if (mknodat(pfd, victim, S_IFCHR, makedev(0, 0)) < 0)
            return fail(c, -errno, "creating the whiteout: %s", strerror(errno));
    }
    if ((r = set_add(&c->set, rel, P_WHITEOUT)) < 0)
        return fail(c, r, "out of memory");
    return 0;
}

/* `.wh..wh..opq` in directory @dir. */
static int apply_opaque(struct ctx *c, const char *dir)
{
    char rel[PATH_MAX];
    _cleanup_close_ int fd = -1;
    int dfd, r;

    if (!(c->flags & BERTH__LAYER_WHITEOUT_OVERLAY)) {
        _cleanup_strv_ char **names = NULL;
        size_t len = strlen(dir);

        dfd = resolve_dir(c, dir, 0);
        if (dfd == -ENOENT)
            return 0;
        if (dfd < 0)
            return fail(c, dfd, "%s", resolve_reason(-dfd));
        fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        cache_drop(c);
        if (fd < 0)
            return fail(c, -errno, "dup: %s", strerror(errno));
        if ((r = list_dir(fd, &names)) < 0)
            return fail(c, r, "listing the directory: %s", strerror(-r));
        snprintf(rel, sizeof(rel), "%s", dir);
        for (char **n = names; *n; n++) {
            if (len + 1 + strlen(*n) >= PATH_MAX)
                return fail(c, -ENAMETOOLONG, "name too long");
            snprintf(rel + len, sizeof(rel) - len, "%s%s", len ? "/" : "", *n);
            r = remove_lower(c, fd, *n, rel);
            rel[len] = '\0';
            if (r < 0) {
                char q[200];
                return fail(c, r, "removing \"%s\": %s", quote(*n, q, sizeof(q)), strerror(-r));
            }
        }
        return 0;
    }
    if ((dfd = resolve_dir(c, dir, 1)) < 0)
        return fail(c, dfd, "%s", resolve_reason(-dfd));
    if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fail(c, -errno, "open the directory: %s", strerror(errno));
    if ((r = set_opaque(c, fd)) < 0)
        return r;
    if (dir[0] && (r = set_mark(&c->set, dir, P_ANCESTOR)) < 0)
        return fail(c, r, "out of memory");
    return 0;
}

static int apply_entry(struct ctx *c, struct archive_entry *e)
{
    const char *raw = BERTH_AR(archive_entry_pathname)(e),
               *hardlink = BERTH_AR(archive_entry_hardlink)(e);
    char parent[PATH_MAX];
    const char *base;
    mode_t type = BERTH_AR(archive_entry_filetype)(e);
    int pfd, r;

    if (!raw)
        return fail(c, -EINVAL, "member without a name");
    r = normalize(raw, c->name);
    if (r == -EXDEV)
        return fail(c, r, "path escapes the layer root");
    if (r < 0)
        return fail(c, r, "name too long");
    base = split(c->name, parent);

    /* No directory on the way may be a whiteout: such names cannot exist. */
    for (const char *s = parent; *s;) {
        if (strncmp(s, WH_PREFIX, WH_PREFIX_LEN) == 0)
            return fail(c, -EINVAL, "whiteout name used as a directory");
        s = strchr(s, '/');
        s = s ? s + 1 : "";
    }
    if (strncmp(base, WH_PREFIX, WH_PREFIX_LEN) == 0) {
        const char *victim = base + WH_PREFIX_LEN;

        if (strcmp(base, WH_OPAQUE) == 0)
            return apply_opaque(c, parent);
        if (strncmp(base, WH_META, strlen(WH_META)) == 0 || victim[0] == '\0' ||
            strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
            return fail(c, -EINVAL, "unsupported whiteout name");
        return apply_whiteout(c, parent, victim);
    }

    if (c->name[0] == '\0' && (hardlink || type != AE_IFDIR))
        return fail(c, -EINVAL, "only a directory can replace the layer root");
    if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFCHR &&
        type != AE_IFBLK && type != AE_IFIFO)
        return fail(c, -ENOTSUP, "unsupported entry type 0%o", (unsigned)type);

    if ((pfd = resolve_dir(c, parent, 1)) < 0)
        return fail(c, pfd, "%s", resolve_reason(-pfd));
    if (hardlink)
        r = apply_hardlink(c, hardlink, pfd, base);
    else if (type == AE_IFREG)
        r = apply_file(c, e, pfd, base);
    else if (type == AE_IFDIR)
        r = apply_dir(c, e, pfd, base);
    else if (type == AE_IFLNK)
        r = apply_symlink(c, e, pfd, base);
    else
        r = apply_node(c, e, pfd, base, type);
    if (r < 0)
        return r;
    if (!c->name[0])
        c->root_entry = 1;
    if (c->name[0]) {
        set_clear_flag(&c->set, c->name, P_WHITEOUT);
        if ((r = set_mark(&c->set, c->name, P_CREATED)) < 0)
            return fail(c, r, "out of memory");
    }
    return 0;
}

/* Directory times, once nothing will be created in them any more. */
static int apply_dir_times(struct ctx *c)
{
    for (size_t i = 0; i < c->ndirs; i++) {
        struct dirtime *d = &c->dirs[i];
        char parent[PATH_MAX], q[200];
        const char *base = split(d->path, parent);
        int fd, pfd;

        /* The same resolution as when the directory was created. */
        if (d->path[0] == '\0') {
            fd = openat(c->root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else if ((pfd = resolve_dir(c, parent, 0)) >= 0) {
            fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            errno = -pfd;
            fd = -1;
        }
        if (fd < 0) {
            /* Replaced or removed by a later entry of this layer: no directory there now. */
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV)
                continue;
            return berth_err_set(c->err, -errno, "layer: directory \"%s\": set times: %s",
                                 quote(d->path, q, sizeof(q)), strerror(errno));
        }
        if (futimens(fd, d->ts) < 0) {
            int e = errno;
            close(fd);
            return berth_err_set(c->err, -e, "layer: directory \"%s\": set times: %s",
                                 quote(d->path, q, sizeof(q)), strerror(e));
        }
        close(fd);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * The call.
 * ------------------------------------------------------------------------- */

static la_ssize_t tar_read(struct archive *a, void *userdata, const void **ret_buf)
{
    struct pipe *p = userdata;
    size_t len = 0;
    int r = pipe_next(p, ret_buf, &len);

    if (r < 0) {
        /* The producer's message is picked up by whoever reports the failure. */
        BERTH_AR(archive_set_error)(a, -r, "decompression failed");
        return ARCHIVE_FATAL;
    }
    return r == 0 ? 0 : (la_ssize_t)len;
}

/* The tar reader failed outside an entry's data: say why in one line. */
static int header_error(struct ctx *c, const char *prev)
{
    berth_err_t perr;
    int r = pipe_error(c->pipe, &perr);
    const char *m = BERTH_AR(archive_error_string)(c->a);

    if (r < 0 && prev)
        return berth_err_set(c->err, r, "layer: after member \"%s\": %s", prev,
                             perr.msg + (strncmp(perr.msg, "layer: ", 7) == 0 ? 7 : 0));
    if (r < 0)
        return berth_err_set(c->err, r, "%s", perr.msg);
    if (!prev)
        return berth_err_set(c->err, -EBADMSG, "layer: not a valid tar archive: %s",
                             m ? m : "read error");
    return berth_err_set(c->err, -EBADMSG, "layer: after member \"%s\": %s", prev,
                         m ? m : "read error");
}

static int extract(struct ctx *c)
{
    struct archive_entry *e;
    char *prev = NULL;
    int r = 0;

    for (;;) {
        r = BERTH_AR(archive_read_next_header)(c->a, &e);
        if (r == ARCHIVE_EOF) {
            r = 0;
            break;
        }
        /* ARCHIVE_WARN: a name libarchive could not convert to the locale; the bytes are kept. */
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            r = header_error(c, prev);
            break;
        }
        quote(BERTH_AR(archive_entry_pathname)(e) ? BERTH_AR(archive_entry_pathname)(e) : "",
              c->qname, sizeof(c->qname));
        c->in_entry = 1;
        r = apply_entry(c, e);
        c->in_entry = 0;
        if (r < 0)
            break;
        free(prev);
        if (!(prev = strdup(c->qname))) {
            r = berth_err_set(c->err, -ENOMEM, "layer: out of memory");
            break;
        }
    }
    free(prev);
    return r;
}

/* Read what follows the end-of-archive blocks, so the DiffID covers all of it. */
static int drain(struct ctx *c)
{
    const void *buf;
    size_t len;
    int r;

    while ((r = pipe_next(c->pipe, &buf, &len)) > 0)
        ;
    if (r < 0) {
        berth_err_t perr;
        pipe_error(c->pipe, &perr);
        return berth_err_set(c->err, r, "%s", perr.msg);
    }
    return 0;
}

static void pipe_free(struct pipe *p)
{
    for (unsigned i = 0; i < NCHUNKS; i++)
        free(p->buf[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->filled);
    pthread_cond_destroy(&p->freed);
    berth__sha256_free(&p->sha);
    free(p);
}

static int run(struct ctx *c, struct pipe *p, struct berth__layer_result *res)
{
    pthread_t producer, hasher;
    int r;

    for (unsigned i = 0; i < NCHUNKS; i++) {
        if (!(p->buf[i] = malloc(CHUNK_SIZE)))
            return berth_err_set(c->err, -ENOMEM, "layer: out of memory");
    }
    if ((r = sniff(p, c->err)) < 0)
        return r;
    if ((r = berth__sha256_init(&p->sha)) < 0)
        return berth_err_set(c->err, r, "layer: sha256: %s", strerror(-r));

    /* archive_read_open() reads the first block: the producer must be running. */
    if ((r = -pthread_create(&producer, NULL, producer_main, p)) < 0)
        return berth_err_set(c->err, r, "layer: start thread: %s", strerror(-r));
    if ((r = -pthread_create(&hasher, NULL, hasher_main, p)) < 0) {
        pipe_abort(p);
        pthread_join(producer, NULL);
        return berth_err_set(c->err, r, "layer: start thread: %s", strerror(-r));
    }
    /* From here on, every path joins both threads. */
    if (!(c->a = BERTH_AR(archive_read_new)())) {
        r = berth_err_set(c->err, -ENOMEM, "layer: out of memory");
    } else if (BERTH_AR(archive_read_support_format_tar)(c->a) != ARCHIVE_OK ||
               BERTH_AR(archive_read_open)(c->a, p, NULL, tar_read, NULL) != ARCHIVE_OK) {
        /* ustar, pax and GNU tar only; decompression is ours, so no filters. */
        r = header_error(c, NULL);
    } else {
        r = extract(c);
        if (r == 0)
            r = drain(c);
    }
    if (r < 0)
        pipe_abort(p); /* wakes threads waiting for a free or a new chunk */
    pthread_join(producer, NULL);
    pthread_join(hasher, NULL);
    if (r < 0)
        return r;
    if (p->status < 0)
        return berth_err_set(c->err, p->status, "%s", p->err.msg);
    if ((r = apply_dir_times(c)) < 0)
        return r;
    if (berth__sha256_final(&p->sha, res->diff_id) < 0)
        return berth_err_set(c->err, -EIO, "layer: sha256 failed");
    res->uncompressed_size = p->out_bytes;
    res->compressed_size = p->in_bytes;
    res->root_entry = c->root_entry;
    return 0;
}

int berth__layer_apply(berth_stream_t *in, int root_dirfd, uint32_t flags,
                       struct berth__layer_result *ret_result, berth_err_t *err)
{
    struct berth__layer_result res = { 0 };
    struct ctx c = { 0 };
    struct pipe *p;
    locale_t cloc, old;
    int r;

    if (!in || !in->read || root_dirfd < 0)
        return berth_err_set(err, -EINVAL, "layer: no input stream or root directory");
    if (flags & ~(BERTH__LAYER_WHITEOUT_OVERLAY | BERTH__LAYER_WRITEBACK | BERTH__LAYER_NO_OPENAT2))
        return berth_err_set(err, -EINVAL, "layer: unknown flags 0x%x", flags);
    if ((r = berth__archive_load(err)) < 0 || (r = berth__crypto_load(err)) < 0)
        return berth_err_prefix(err, r, "layer");
    if (!(p = calloc(1, sizeof(*p))))
        return berth_err_set(err, -ENOMEM, "layer: out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->filled, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->in = in;

    c.root = root_dirfd;
    c.flags = flags;
    c.use_openat2 = !(flags & BERTH__LAYER_NO_OPENAT2);
    c.pipe = p;
    c.err = err;
    c.cache_fd = -1;

    /*
     * libarchive converts pax names from UTF-8 to the locale's charset; in
     * the "C" locale it keeps the bytes, which is what a layer means.
     */
    cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    old = cloc ? uselocale(cloc) : (locale_t)0;

    r = run(&c, p, &res);

    if (cloc) {
        uselocale(old);
        freelocale(cloc);
    }
    if (c.a)
        BERTH_AR(archive_read_free)(c.a);
    cache_drop(&c);
    set_free(&c.set);
    for (size_t i = 0; i < c.ndirs; i++)
        free(c.dirs[i].path);
    free(c.dirs);
    pipe_free(p);
    if (r < 0)
        return r;
    if (ret_result)
        *ret_result = res;
    return 0;
}
