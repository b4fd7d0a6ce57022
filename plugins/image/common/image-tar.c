/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small tar header reader (ustar, pax extended headers, GNU long names,
 * base-256 sizes). Its own rather than libarchive's because fetch() needs
 * each member's data offset in the file, which libarchive does not report;
 * the data of a member is contiguous in an uncompressed tar, so the index
 * built here lets every blob be streamed with pread() without unpacking.
 *
 * The same walker serves match(), which reads plain or gzip input through
 * zlib's gzFile (transparent for uncompressed files) and keeps nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "image-common.h"

#define BLOCK           512u
#define PAX_MAX         (1u << 20) /* one extended header */
#define LONGNAME_MAX    PATH_MAX
#define MEMBERS_MAX     (1u << 20)
#define LINK_FOLLOW_MAX 16

/* Input for the walker: read exactly or up to n bytes, skip n bytes. */
struct tar_input {
    /* Returns bytes read (fewer only at the end) or a negative errno. */
    ssize_t (*read)(struct tar_input *in, void *buf, size_t n, berth_err_t *err);
    int (*skip)(struct tar_input *in, uint64_t n, berth_err_t *err);
    uint64_t pos; /* offset of the next byte in the (decompressed) tar */
    int fd;
    gzFile gz;
};

static ssize_t fd_read(struct tar_input *in, void *buf, size_t n, berth_err_t *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(in->fd, (char *)buf + got, n - got, (off_t)(in->pos + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return berth_err_set(err, -errno, "read: %s", strerror(errno));
        if (r == 0)
            break;
        got += (size_t)r;
    }
    in->pos += got;
    return (ssize_t)got;
}

static int fd_skip(struct tar_input *in, uint64_t n, berth_err_t *err)
{
    in->pos += n;
    return 0;
}

static ssize_t gz_read(struct tar_input *in, void *buf, size_t n, berth_err_t *err)
{
    int r = gzread(in->gz, buf, (unsigned)n), e;

    if (r < 0 || (size_t)r < n) {
        gzerror(in->gz, &e);
        /* Z_BUF_ERROR: the compressed input ended early. */
        if (e != Z_OK && e != Z_BUF_ERROR)
            return berth_err_set(err, -EINVAL, "not a valid gzip stream (%s)",
                                 e == Z_DATA_ERROR ? "corrupt data" : "read error");
        if (r < 0)
            r = 0;
    }
    in->pos += (uint64_t)r;
    return r;
}

static int gz_skip(struct tar_input *in, uint64_t n, berth_err_t *err)
{
    char buf[8192];
    while (n > 0) {
        size_t want = n < sizeof(buf) ? (size_t)n : sizeof(buf);
        ssize_t r = gz_read(in, buf, want, err);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return 0; /* the next header read reports the end */
        n -= (uint64_t)r;
    }
    return 0;
}

/* A numeric header field: octal text, or base-256 when the top bit is set. */
static int parse_num(const unsigned char *f, size_t len, uint64_t *ret)
{
    uint64_t v = 0;
    size_t i = 0;

    if (f[0] & 0x80) {
        /* Base-256: the remaining bits of the first byte, then whole bytes. Negative is invalid. */
        if (f[0] & 0x40)
            return -EINVAL;
        v = f[0] & 0x3f;
        for (i = 1; i < len; i++) {
            if (v >> 55)
                return -EOVERFLOW;
            v = (v << 8) | f[i];
        }
        *ret = v;
        return 0;
    }
    while (i < len && f[i] == ' ')
        i++;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60)
            return -EOVERFLOW;
        v = v * 8 + (uint64_t)(f[i] - '0');
    }
    for (; i < len; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return -EINVAL;
    *ret = v;
    return 0;
}

static int checksum_ok(const unsigned char *h)
{
    uint64_t stored;
    unsigned long usum = 0;
    long ssum = 0;

    if (parse_num(h + 148, 8, &stored) < 0)
        return 0;
    for (size_t i = 0; i < BLOCK; i++) {
        unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
        usum += c;
        ssum += (signed char)c;
    }
    /* Some old writers summed signed chars; accept either. */
    return stored == usum || (long)stored == ssum;
}

static int is_zero_block(const unsigned char *h)
{
    for (size_t i = 0; i < BLOCK; i++)
        if (h[i])
            return 0;
    return 1;
}

int image_path_normalize(const char *in, char *buf, size_t len, berth_err_t *err)
{
    size_t o = 0;
    const char *p = in;

    if (in[0] == '/')
        return berth_err_set(err, -EINVAL, "path \"%.200s\" is absolute", in);
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);

        if (n == 2 && p[0] == '.' && p[1] == '.')
            return berth_err_set(err, -EINVAL, "path \"%.200s\" leaves its root (..)", in);
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o + n + 2 > len)
                return berth_err_set(err, -ENAMETOOLONG, "path \"%.200s\" is too long", in);
            if (o)
                buf[o++] = '/';
            memcpy(buf + o, p, n);
            o += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    if (o == 0)
        return berth_err_set(err, -EINVAL, "empty path \"%.200s\"", in);
    buf[o] = '\0';
    return 0;
}

/* pax records "<len> key=value\n": take path, linkpath and size. */
static int parse_pax(const char *rec, size_t len, char **path, char **link, int64_t *size,
                     berth_err_t *err)
{
    size_t i = 0;
    while (i < len) {
        char *end, *eq;
        unsigned long n = strtoul(rec + i, &end, 10);
        if (end == rec + i || *end != ' ' || n == 0 || n > len - i)
            return berth_err_set(err, -EINVAL, "malformed pax extended header");
        eq = memchr(end + 1, '=', rec + i + n - (end + 1));
        if (!eq || rec[i + n - 1] != '\n')
            return berth_err_set(err, -EINVAL, "malformed pax extended header");
        size_t klen = (size_t)(eq - (end + 1)), vlen = (size_t)(rec + i + n - 1 - (eq + 1));
        char **dst = NULL;
        if (klen == 4 && memcmp(end + 1, "path", 4) == 0)
            dst = path;
        else if (klen == 8 && memcmp(end + 1, "linkpath", 8) == 0)
            dst = link;
        if (dst) {
            free(*dst);
            *dst = strndup(eq + 1, vlen);
            if (!*dst)
                return berth_err_set(err, -ENOMEM, "out of memory");
        } else if (klen == 4 && memcmp(end + 1, "size", 4) == 0) {
            char num[32];
            if (vlen == 0 || vlen >= sizeof(num))
                return berth_err_set(err, -EINVAL, "malformed pax size");
            memcpy(num, eq + 1, vlen);
            num[vlen] = '\0';
            errno = 0;
            long long v = strtoll(num, &end, 10);
            if (errno || *end || v < 0)
                return berth_err_set(err, -EINVAL, "malformed pax size");
            *size = v;
        }
        i += n;
    }
    return 0;
}

/* Read a member's data (a pax header or GNU long name) into a new NUL-terminated buffer. */
static int read_meta(struct tar_input *in, uint64_t size, size_t max, char **ret, berth_err_t *err)
{
    uint64_t padded = (size + BLOCK - 1) / BLOCK * BLOCK;
    char *buf;
    ssize_t n;

    if (size > max)
        return berth_err_set(err, -EINVAL, "tar extended header of %llu bytes is too large",
                             (unsigned long long)size);
    buf = malloc((size_t)padded + 1);
    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    n = in->read(in, buf, (size_t)padded, err);
    if (n < 0 || (uint64_t)n < size) {
        free(buf);
        return n < 0 ? (int)n : berth_err_set(err, -EINVAL, "tar is truncated in a header");
    }
    buf[size] = '\0';
    *ret = buf;
    return 0;
}

/* Called with each member; @off is the data offset. */
typedef int (*member_fn)(void *ud, const char *name, int kind, const char *link, uint64_t off,
                         uint64_t size, berth_err_t *err);

static int walk(struct tar_input *in, member_fn fn, void *ud, berth_err_t *err)
{
    unsigned char h[BLOCK];
    char *pax_path = NULL, *pax_link = NULL, *gnu_name = NULL, *gnu_link = NULL;
    int64_t pax_size = -1;
    char raw[LONGNAME_MAX + 256], name[LONGNAME_MAX], link[LONGNAME_MAX];
    int r = 0;

    for (;;) {
        uint64_t hdr_at = in->pos, size;
        ssize_t n = in->read(in, h, BLOCK, err);
        int kind;

        if (n < 0) {
            r = (int)n;
            break;
        }
        /* The end: a zero block, or (tolerated) the end of input at a header boundary. */
        if (n == 0 || is_zero_block(h))
            break;
        if ((size_t)n < BLOCK) {
            r = berth_err_set(err, -EINVAL, "tar is truncated: partial header at offset %llu",
                              (unsigned long long)hdr_at);
            break;
        }
        if (!checksum_ok(h)) {
            r = berth_err_set(err, -EINVAL, "not a tar: bad header checksum at offset %llu",
                              (unsigned long long)hdr_at);
            break;
        }
        if (parse_num(h + 124, 12, &size) < 0) {
            r = berth_err_set(err, -EINVAL, "bad size field in tar header at offset %llu",
                              (unsigned long long)hdr_at);
            break;
        }
        char type = (char)h[156];
        if (type == 'x' || type == 'L' || type == 'K') {
            char *meta = NULL;
            r = read_meta(in, size, type == 'x' ? PAX_MAX : LONGNAME_MAX, &meta, err);
            if (r < 0)
                break;
            if (type == 'x') {
                r = parse_pax(meta, (size_t)size, &pax_path, &pax_link, &pax_size, err);
                free(meta);
                if (r < 0)
                    break;
            } else {
                char **dst = type == 'L' ? &gnu_name : &gnu_link;
                free(*dst);
                *dst = meta;
            }
            continue;
        }
        if (type == 'g') {
            /* Global pax headers carry defaults we do not use (mtime, charset). */
            r = in->skip(in, (size + BLOCK - 1) / BLOCK * BLOCK, err);
            if (r < 0)
                break;
            continue;
        }
        if (pax_size >= 0)
            size = (uint64_t)pax_size;

        if (pax_path || gnu_name) {
            snprintf(raw, sizeof(raw), "%s", pax_path ? pax_path : gnu_name);
        } else if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345]) {
            /* POSIX ustar: prefix "/" name (GNU keeps other data in the prefix area). */
            snprintf(raw, sizeof(raw), "%.155s/%.100s", (const char *)h + 345, (const char *)h + 0);
        } else {
            snprintf(raw, sizeof(raw), "%.100s", (const char *)h);
        }
        if (pax_link || gnu_link)
            snprintf(link, sizeof(link), "%s", pax_link ? pax_link : gnu_link);
        else
            snprintf(link, sizeof(link), "%.100s", (const char *)h + 157);

        switch (type) {
        case '0':
        case '\0':
        case '7':
            kind = IMAGE_TAR_FILE;
            break;
        case '1':
            kind = IMAGE_TAR_LINK;
            break;
        case '2':
            kind = IMAGE_TAR_SYMLINK;
            break;
        case '5':
            kind = IMAGE_TAR_DIR;
            break;
        default:
            kind = IMAGE_TAR_OTHER;
            break;
        }
        /* Links, devices, fifos and directories have no data whatever the size field says. */
        if (type >= '1' && type <= '6')
            size = 0;

        uint64_t data_at = in->pos;
        /* "./" alone (the archive's root entry) names nothing. */
        int root_only = 1;
        for (const char *p = raw; *p; p++)
            if (*p != '.' && *p != '/')
                root_only = 0;
        if (!root_only || raw[0] == '\0' || strstr(raw, "..")) {
            r = image_path_normalize(raw, name, sizeof(name), err);
            if (r < 0) {
                berth_err_prefix(err, r, "tar member");
                break;
            }
            r = fn(ud, name, kind, link, data_at, size, err);
            if (r != 0)
                break;
        }
        free(pax_path);
        free(pax_link);
        free(gnu_name);
        free(gnu_link);
        pax_path = pax_link = gnu_name = gnu_link = NULL;
        pax_size = -1;
        r = in->skip(in, (size + BLOCK - 1) / BLOCK * BLOCK, err);
        if (r < 0)
            break;
    }
    free(pax_path);
    free(pax_link);
    free(gnu_name);
    free(gnu_link);
    return r < 0 ? r : 0;
}

/* ---- walking for match() ---- */

struct visit_ctx {
    image_tar_visit_fn fn;
    void *ud;
};

static int visit_member(void *ud, const char *name, int kind, const char *link, uint64_t off,
                        uint64_t size, berth_err_t *err)
{
    struct visit_ctx *v = ud;
    return v->fn(v->ud, name, kind, err);
}

int image_tar_walk_path(const char *path, image_tar_visit_fn fn, void *userdata, berth_err_t *err)
{
    struct tar_input in = { .read = gz_read, .skip = gz_skip, .fd = -1 };
    struct visit_ctx v = { fn, userdata };
    struct stat stb;
    int fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return berth_err_set(err, -errno, "open %s: %s", path, strerror(errno));
    if (fstat(fd, &stb) < 0 || !S_ISREG(stb.st_mode)) {
        close(fd);
        return berth_err_set(err, -EINVAL, "%s is not a regular file", path);
    }
    /* gzdopen reads uncompressed files transparently, so one walker serves both. */
    in.gz = gzdopen(fd, "rb");
    if (!in.gz) {
        close(fd);
        return berth_err_set(err, -ENOMEM, "gzdopen %s: out of memory", path);
    }
    r = walk(&in, visit_member, &v, err);
    gzclose(in.gz);
    return r;
}

/* ---- the index ---- */

struct member {
    char *name;
    char *link; /* target for links, else NULL */
    uint64_t off, size;
    int kind;
};

struct image_tar {
    struct member *m;
    size_t n, cap;
    uint64_t file_size;
};

static int add_member(void *ud, const char *name, int kind, const char *link, uint64_t off,
                      uint64_t size, berth_err_t *err)
{
    image_tar_t *t = ud;
    struct member *m;

    if (kind == IMAGE_TAR_FILE && off + size > t->file_size)
        return berth_err_set(err, -EINVAL,
                             "tar is truncated: member %.200s needs %llu bytes past the end", name,
                             (unsigned long long)(off + size - t->file_size));
    if (t->n == MEMBERS_MAX)
        return berth_err_set(err, -E2BIG, "tar has more than %u members", MEMBERS_MAX);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        m = realloc(t->m, cap * sizeof(*m));
        if (!m)
            return berth_err_set(err, -ENOMEM, "out of memory");
        t->m = m;
        t->cap = cap;
    }
    m = &t->m[t->n];
    memset(m, 0, sizeof(*m));
    m->name = strdup(name);
    if (kind == IMAGE_TAR_LINK || kind == IMAGE_TAR_SYMLINK)
        m->link = strdup(link);
    if (!m->name || ((kind == IMAGE_TAR_LINK || kind == IMAGE_TAR_SYMLINK) && !m->link)) {
        free(m->name);
        free(m->link);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    m->kind = kind;
    m->off = off;
    m->size = size;
    t->n++;
    return 0;
}

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    /* Equal names keep archive order (offsets grow), so the later entry sorts last. */
    if (c == 0)
        c = x->off < y->off ? -1 : x->off > y->off;
    return c;
}

void image_tar_free(image_tar_t *tar)
{
    if (!tar)
        return;
    for (size_t i = 0; i < tar->n; i++) {
        free(tar->m[i].name);
        free(tar->m[i].link);
    }
    free(tar->m);
    free(tar);
}

int image_tar_index(int fd, image_tar_t **ret_tar, berth_err_t *err)
{
    struct tar_input in = { .read = fd_read, .skip = fd_skip, .fd = fd };
    image_tar_t *t;
    struct stat stb;
    int r;

    if (fstat(fd, &stb) < 0)
        return berth_err_set(err, -errno, "stat: %s", strerror(errno));
    t = calloc(1, sizeof(*t));
    if (!t)
        return berth_err_set(err, -ENOMEM, "out of memory");
    t->file_size = (uint64_t)stb.st_size;
    r = walk(&in, add_member, t, err);
    if (r == 0 && t->n == 0)
        r = berth_err_set(err, -EINVAL, "not a tar archive, or an empty one");
    if (r < 0) {
        image_tar_free(t);
        return r;
    }
    if (t->n > 1)
        qsort(t->m, t->n, sizeof(*t->m), member_cmp);
    /*
     * Two members with one name would make the content depend on which the
     * reader picks (tar extracts the last; we would serve one): refuse,
     * except for repeated directory entries, which are harmless.
     */
    for (size_t i = 1; i < t->n; i++) {
        if (strcmp(t->m[i - 1].name, t->m[i].name) == 0 &&
            !(t->m[i - 1].kind == IMAGE_TAR_DIR && t->m[i].kind == IMAGE_TAR_DIR)) {
            r = berth_err_set(err, -EINVAL, "tar has member %.200s twice", t->m[i].name);
            image_tar_free(t);
            return r;
        }
    }
    *ret_tar = t;
    return 0;
}

static const struct member *lookup(const image_tar_t *t, const char *name)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, t->m[mid].name);
        if (c == 0)
            return &t->m[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Resolve symlink @target, relative to the directory of @from, inside the archive. */
static int resolve_symlink(const char *from, const char *target, char *buf, size_t len,
                           berth_err_t *err)
{
    char joined[LONGNAME_MAX * 2];
    char *parts[LONGNAME_MAX / 2];
    size_t np = 0, o = 0;
    const char *slash = strrchr(from, '/');

    if (target[0] == '/')
        return berth_err_set(err, -EINVAL, "tar member %.200s links outside the archive (%.200s)",
                             from, target);
    if ((size_t)snprintf(joined, sizeof(joined), "%.*s%s%s", slash ? (int)(slash - from) : 0, from,
                         slash ? "/" : "", target) >= sizeof(joined))
        return berth_err_set(err, -ENAMETOOLONG, "link target too long");
    /* Lexical resolution: ".." pops a component and may never pop past the root. */
    for (char *save = NULL, *p = strtok_r(joined, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (strcmp(p, ".") == 0)
            continue;
        if (strcmp(p, "..") == 0) {
            if (np == 0)
                return berth_err_set(err, -EINVAL,
                                     "tar member %.200s links outside the archive (%.200s)", from,
                                     target);
            np--;
            continue;
        }
        if (np == sizeof(parts) / sizeof(parts[0]))
            return berth_err_set(err, -ENAMETOOLONG, "link target too long");
        parts[np++] = p;
    }
    if (np == 0)
        return berth_err_set(err, -EINVAL, "tar member %.200s links to the archive root", from);
    for (size_t i = 0; i < np; i++) {
        size_t n = strlen(parts[i]);
        if (o + n + 2 > len)
            return berth_err_set(err, -ENAMETOOLONG, "link target too long");
        if (i)
            buf[o++] = '/';
        memcpy(buf + o, parts[i], n);
        o += n;
    }
    buf[o] = '\0';
    return 0;
}

int image_tar_find(const image_tar_t *tar, const char *name, uint64_t *ret_off, uint64_t *ret_size,
                   berth_err_t *err)
{
    char cur[LONGNAME_MAX], next[LONGNAME_MAX];
    int r = image_path_normalize(name, cur, sizeof(cur), err);

    if (r < 0)
        return r;
    for (int hops = 0; hops <= LINK_FOLLOW_MAX; hops++) {
        const struct member *m = lookup(tar, cur);
        if (!m)
            return berth_err_set(err, -ENOENT, "%.200s is not in the archive", cur);
        switch (m->kind) {
        case IMAGE_TAR_FILE:
            *ret_off = m->off;
            *ret_size = m->size;
            return 0;
        case IMAGE_TAR_LINK:
            /* Hard link names are archive paths. */
            r = image_path_normalize(m->link, next, sizeof(next), err);
            if (r < 0)
                return berth_err_prefix(err, r, "tar hard link");
            break;
        case IMAGE_TAR_SYMLINK:
            r = resolve_symlink(m->name, m->link, next, sizeof(next), err);
            if (r < 0)
                return r;
            break;
        default:
            return berth_err_set(err, -EINVAL, "%.200s in the archive is not a regular file", cur);
        }
        memcpy(cur, next, sizeof(cur));
    }
    return berth_err_set(err, -ELOOP, "%.200s: too many links in the archive", name);
}
