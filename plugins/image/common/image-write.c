/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The write side: a blob store that can undo itself, atomic small files, and
 * the tar writer (libarchive) for archives made at commit.
 *
 * Every file appears under its final name only by rename() after fsync(),
 * so a crash leaves either the old state or the new one plus hidden
 * ".tmp-" / ".berth-" leftovers, never a half-written blob or index.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "image-common.h"

#define COPY_CHUNK (1u << 20)

int image_stage_dir_new(const char *target, char *ret_dir, size_t len, berth_err_t *err)
{
    char t[PATH_MAX], tmpl[PATH_MAX];
    const char *base, *dir;
    size_t n = strlen(target);
    char *slash;

    if (n == 0 || n >= sizeof(t))
        return berth_err_set(err, -EINVAL, "invalid location \"%.200s\"", target);
    memcpy(t, target, n + 1);
    while (n > 1 && t[n - 1] == '/')
        t[--n] = '\0';
    slash = strrchr(t, '/');
    if (slash) {
        *slash = '\0';
        dir = slash == t ? "/" : t;
        base = slash + 1;
    } else {
        dir = ".";
        base = t;
    }
    if ((size_t)snprintf(tmpl, sizeof(tmpl), "%s/.%s.berth-XXXXXX", dir, base) >= sizeof(tmpl))
        return berth_err_set(err, -ENAMETOOLONG, "location %.200s is too long", target);
    if (!mkdtemp(tmpl))
        return berth_err_set(err, -errno, "create a staging directory in %s: %s", dir,
                             strerror(errno));
    if (strlen(tmpl) >= len) {
        rmdir(tmpl);
        return berth_err_set(err, -ENAMETOOLONG, "location %.200s is too long", target);
    }
    memcpy(ret_dir, tmpl, strlen(tmpl) + 1);
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

void image_rmtree(const char *dir)
{
    /* FTW_PHYS: never follow a symlink out of the tree being removed. */
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

struct image_stage {
    char *root;
    char **created; /* files and directories this session made, in order */
    size_t n_created;
    int keep;
};

static int remember(image_stage_t *st, const char *path, berth_err_t *err)
{
    char **c = realloc(st->created, (st->n_created + 1) * sizeof(*c));
    if (!c)
        return berth_err_set(err, -ENOMEM, "out of memory");
    st->created = c;
    c[st->n_created] = strdup(path);
    if (!c[st->n_created])
        return berth_err_set(err, -ENOMEM, "out of memory");
    st->n_created++;
    return 0;
}

int image_stage_new(const char *root, image_stage_t **ret_stage, berth_err_t *err)
{
    image_stage_t *st = calloc(1, sizeof(*st));
    if (!st)
        return berth_err_set(err, -ENOMEM, "out of memory");
    st->root = strdup(root);
    if (!st->root) {
        free(st);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    *ret_stage = st;
    return 0;
}

const char *image_stage_root(const image_stage_t *st)
{
    return st->root;
}

void image_stage_keep(image_stage_t *st)
{
    st->keep = 1;
}

void image_stage_free(image_stage_t *st)
{
    if (!st)
        return;
    /* Undo in reverse: files before the directories that hold them. */
    for (size_t i = st->n_created; i-- > 0;) {
        if (!st->keep)
            remove(st->created[i]);
        free(st->created[i]);
    }
    free(st->created);
    free(st->root);
    free(st);
}

static int ensure_dir(image_stage_t *st, const char *path, berth_err_t *err)
{
    if (mkdir(path, 0755) == 0)
        return remember(st, path, err);
    if (errno == EEXIST) {
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            return 0;
        return berth_err_set(err, -ENOTDIR, "%s exists and is not a directory", path);
    }
    return berth_err_set(err, -errno, "mkdir %s: %s", path, strerror(errno));
}

static int blob_path(const image_stage_t *st, const char *digest, char *buf, size_t len,
                     berth_err_t *err)
{
    char rel[200];
    int r = image_digest_path(digest, rel, sizeof(rel), err);
    if (r < 0)
        return r;
    if ((size_t)snprintf(buf, len, "%s/%s", st->root, rel) >= len)
        return berth_err_set(err, -ENAMETOOLONG, "path too long under %s", st->root);
    return 0;
}

int image_stage_has(image_stage_t *st, const char *digest)
{
    char path[PATH_MAX];
    struct stat sb;
    return blob_path(st, digest, path, sizeof(path), NULL) == 0 && lstat(path, &sb) == 0 &&
           S_ISREG(sb.st_mode);
}

static int drain(berth_stream_t *s, berth_err_t *err)
{
    char buf[65536];
    int64_t n;
    while ((n = s->read(s, buf, sizeof(buf), err)) > 0)
        ;
    return (int)n;
}

static int write_all(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, (const char *)buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        done += (size_t)w;
    }
    return 0;
}

int image_stage_put(image_stage_t *st, const berth_descriptor_t *desc, berth_stream_t *content,
                    berth_err_t *err)
{
    char path[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
    _cleanup_free_ char *buf = NULL;
    _cleanup_close_ int fd = -1;
    uint64_t total = 0;
    int64_t n;
    int r;

    r = blob_path(st, desc->digest, path, sizeof(path), err);
    if (r < 0)
        return r;
    if (image_stage_has(st, desc->digest)) {
        /* Content-addressed: what is there is the same bytes. The stream is still consumed. */
        r = drain(content, err);
        return r < 0 ? berth_err_prefix(err, r, desc->digest) : 0;
    }
    snprintf(dir, sizeof(dir), "%s/blobs", st->root);
    r = ensure_dir(st, dir, err);
    if (r == 0) {
        snprintf(dir, sizeof(dir), "%s/blobs/%.6s", st->root, desc->digest);
        r = ensure_dir(st, dir, err);
    }
    if (r < 0)
        return r;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp-%.16s-XXXXXX", dir, desc->digest + 7) >=
        sizeof(tmp))
        return berth_err_set(err, -ENAMETOOLONG, "path too long under %s", dir);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "create %s: %s", tmp, strerror(errno));
    buf = malloc(COPY_CHUNK);
    if (!buf) {
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    while ((n = content->read(content, buf, COPY_CHUNK, err)) > 0) {
        total += (uint64_t)n;
        if (desc->size >= 0 && total > (uint64_t)desc->size) {
            r = berth_err_set(err, -EIO, "blob %s: more than the %lld bytes announced",
                              desc->digest, (long long)desc->size);
            goto fail;
        }
        r = write_all(fd, buf, (size_t)n);
        if (r < 0) {
            r = berth_err_set(err, r, "write %s: %s", tmp, strerror(-r));
            goto fail;
        }
    }
    if (n < 0) {
        r = berth_err_prefix(err, (int)n, desc->digest);
        goto fail;
    }
    if (desc->size >= 0 && total != (uint64_t)desc->size) {
        r = berth_err_set(err, -EIO, "blob %s: %llu bytes, %lld announced", desc->digest,
                          (unsigned long long)total, (long long)desc->size);
        goto fail;
    }
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        r = berth_err_set(err, -errno, "sync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        r = berth_err_set(err, -errno, "rename %s: %s", path, strerror(errno));
        goto fail;
    }
    return remember(st, path, err);
fail:
    unlink(tmp);
    return r;
}

int image_stage_read(image_stage_t *st, const char *digest, char **ret_buf, size_t *ret_len,
                     berth_err_t *err)
{
    char path[PATH_MAX];
    _cleanup_close_ int fd = -1;
    struct stat sb;
    size_t got = 0;
    char *buf;
    int r = blob_path(st, digest, path, sizeof(path), err);

    if (r < 0)
        return r;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return berth_err_set(err, errno == ENOENT ? -ENOENT : -errno, "blob %s: %s", digest,
                             errno == ENOENT ? "was not put" : strerror(errno));
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)IMAGE_JSON_MAX)
        return berth_err_set(err, -EFBIG, "blob %s is not a document to parse", digest);
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return berth_err_set(err, -EIO, "read blob %s", digest);
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *ret_buf = buf;
    *ret_len = got;
    return 0;
}

int image_write_file(const char *dir, const char *name, const void *data, size_t len,
                     berth_err_t *err)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    int fd, r;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-XXXXXX", dir, name) >= sizeof(tmp))
        return berth_err_set(err, -ENAMETOOLONG, "path too long under %s", dir);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "create %s: %s", tmp, strerror(errno));
    r = write_all(fd, data, len);
    if (r == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        r = -errno;
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return berth_err_set(err, r, "write %s: %s", path, strerror(-r));
    }
    return 0;
}

int image_write_json(const char *dir, const char *name, const json_t *doc, berth_err_t *err)
{
    _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
    _cleanup_free_ char *line = NULL;
    size_t n;

    if (!text)
        return berth_err_set(err, -ENOMEM, "out of memory");
    n = strlen(text);
    line = malloc(n + 2);
    if (!line)
        return berth_err_set(err, -ENOMEM, "out of memory");
    memcpy(line, text, n);
    line[n] = '\n';
    return image_write_file(dir, name, line, n + 1, err);
}

static int tar_copy_file(struct archive *a, const char *src, char *buf, berth_err_t *err)
{
    _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n;

    if (fd < 0)
        return berth_err_set(err, -errno, "open %s: %s", src, strerror(errno));
    while ((n = read(fd, buf, COPY_CHUNK)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_err_set(err, -errno, "read %s: %s", src, strerror(errno));
        if (archive_write_data(a, buf, (size_t)n) != n)
            return berth_err_set(err, -EIO, "tar: %s", archive_error_string(a));
    }
    return 0;
}

int image_tar_write(const char *out_path, const image_tar_item_t *items, size_t n, berth_err_t *err)
{
    char tmp[PATH_MAX];
    _cleanup_free_ char *buf = malloc(COPY_CHUNK);
    struct archive *a = NULL;
    int fd = -1, r = 0;

    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.berth-XXXXXX", out_path) >= sizeof(tmp))
        return berth_err_set(err, -ENAMETOOLONG, "path %.200s is too long", out_path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "create %s: %s", tmp, strerror(errno));
    a = archive_write_new();
    if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        r = berth_err_set(err, -ENOMEM, "tar: %s", a ? archive_error_string(a) : "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        const image_tar_item_t *it = &items[i];
        struct archive_entry *e = archive_entry_new();
        uint64_t size = 0;

        if (!e) {
            r = berth_err_set(err, -ENOMEM, "out of memory");
            break;
        }
        if (!it->is_dir && it->src_path) {
            struct stat sb;
            if (stat(it->src_path, &sb) < 0) {
                r = berth_err_set(err, -errno, "stat %s: %s", it->src_path, strerror(errno));
                archive_entry_free(e);
                break;
            }
            size = (uint64_t)sb.st_size;
        } else if (!it->is_dir) {
            size = it->len;
        }
        archive_entry_set_pathname(e, it->name);
        archive_entry_set_filetype(e, it->is_dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e, it->is_dir ? 0755 : 0644);
        archive_entry_set_size(e, (la_int64_t)size);
        /* Fixed owner and times: the same content gives the same archive bytes. */
        archive_entry_set_mtime(e, 0, 0);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK)
            r = berth_err_set(err, -EIO, "tar %s: %s", it->name, archive_error_string(a));
        else if (!it->is_dir && it->src_path)
            r = tar_copy_file(a, it->src_path, buf, err);
        else if (!it->is_dir && it->len &&
                 archive_write_data(a, it->data, it->len) != (la_ssize_t)it->len)
            r = berth_err_set(err, -EIO, "tar %s: %s", it->name, archive_error_string(a));
        archive_entry_free(e);
    }
    if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
        r = berth_err_set(err, -EIO, "tar: %s", archive_error_string(a));
    if (r == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        r = berth_err_set(err, -errno, "sync %s: %s", tmp, strerror(errno));
    if (r == 0 && rename(tmp, out_path) < 0)
        r = berth_err_set(err, -errno, "rename to %s: %s", out_path, strerror(errno));
out:
    if (a)
        archive_write_free(a);
    close(fd);
    if (r < 0)
        unlink(tmp);
    return r;
}

int image_tar_list_add(image_tar_list_t *list, const char *name, int is_dir, const char *src_path,
                       const char *data, size_t len, berth_err_t *err)
{
    image_tar_item_t *it;
    char *copy = NULL;
    char **owned;

    if (strlen(name) >= sizeof(it->name))
        return berth_err_set(err, -ENAMETOOLONG, "tar member name %.200s is too long", name);
    if (src_path) {
        copy = strdup(src_path);
        owned = copy ? realloc(list->owned, (list->n_owned + 1) * sizeof(*owned)) : NULL;
        if (!owned) {
            free(copy);
            return berth_err_set(err, -ENOMEM, "out of memory");
        }
        list->owned = owned;
        owned[list->n_owned++] = copy;
    }
    it = realloc(list->items, (list->n + 1) * sizeof(*it));
    if (!it)
        return berth_err_set(err, -ENOMEM, "out of memory");
    list->items = it;
    it = &list->items[list->n++];
    memset(it, 0, sizeof(*it));
    snprintf(it->name, sizeof(it->name), "%s", name);
    it->is_dir = is_dir;
    it->src_path = copy;
    it->data = data;
    it->len = len;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int image_tar_list_add_blobs(image_tar_list_t *list, image_stage_t *st, berth_err_t *err)
{
    static const char *const algs[] = { "sha256", "sha512" };
    char dir[PATH_MAX], name[200], src[PATH_MAX];
    int r = image_tar_list_add(list, "blobs/", 1, NULL, NULL, 0, err);

    for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]) && r == 0; a++) {
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/blobs/%s", st->root, algs[a]);
        d = opendir(dir);
        if (!d) {
            if (errno == ENOENT)
                continue;
            return berth_err_set(err, -errno, "open %s: %s", dir, strerror(errno));
        }
        while ((de = readdir(d)) != NULL) {
            char **nn, digest[200];
            /* Only finished blobs: temporaries and anything else are left out. */
            snprintf(digest, sizeof(digest), "%s:%.150s", algs[a], de->d_name);
            if (image_digest_check(digest, NULL) < 0)
                continue;
            nn = realloc(names, (n + 1) * sizeof(*nn));
            if (!nn || !(nn[n] = strdup(de->d_name))) {
                names = nn ? nn : names;
                r = berth_err_set(err, -ENOMEM, "out of memory");
                break;
            }
            names = nn;
            n++;
        }
        closedir(d);
        if (r == 0 && n > 1)
            qsort(names, n, sizeof(*names), name_cmp);
        snprintf(name, sizeof(name), "blobs/%s/", algs[a]);
        if (r == 0)
            r = image_tar_list_add(list, name, 1, NULL, NULL, 0, err);
        for (size_t i = 0; i < n; i++) {
            if (r == 0) {
                if ((size_t)snprintf(name, sizeof(name), "blobs/%s/%s", algs[a], names[i]) >=
                        sizeof(name) ||
                    (size_t)snprintf(src, sizeof(src), "%s/%s", dir, names[i]) >= sizeof(src))
                    r = berth_err_set(err, -ENAMETOOLONG, "path too long under %s", dir);
                else
                    r = image_tar_list_add(list, name, 0, src, NULL, 0, err);
            }
            free(names[i]);
        }
        free(names);
    }
    return r;
}

void image_tar_list_release(image_tar_list_t *list)
{
    for (size_t i = 0; i < list->n_owned; i++)
        free(list->owned[i]);
    free(list->owned);
    free(list->items);
    memset(list, 0, sizeof(*list));
}
