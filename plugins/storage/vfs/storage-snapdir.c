/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapdir: snapshot directories with crash-safe metadata, shared by the vfs
 * and overlay drivers. See storage-snapdir.h for the layout and the rules.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage-snapdir.h"

#define META_MAGIC "berth-snapshot-meta 1"
#define META_MAX   (SNAPDIR_CHAIN_MAX + 2048)

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/*
 * rename that never replaces. Callers hold the exclusive lock, so where the
 * filesystem lacks RENAME_NOREPLACE (EINVAL) a check before a plain rename
 * is as good: no berth process can create @newname in between.
 */
static int xrename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname)
{
    if (renameat2(olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL)
        return -1;
    if (faccessat(newdirfd, newname, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(olddirfd, oldname, newdirfd, newname);
}

int64_t storage_snapdir_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int storage_snapdir_random_id(char *buf, size_t len)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[64];

    if (len > sizeof(rnd))
        return -EINVAL;
    if (getrandom(rnd, len, 0) != (ssize_t)len)
        return -errno ? -errno : -EIO;
    /* A slight bias towards the first letters is harmless: ids are only made unique. */
    for (size_t i = 0; i < len; i++)
        buf[i] = set[rnd[i] % (sizeof(set) - 1)];
    return 0;
}

/* ---- names ---- */

static int name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.' || c == '_' || c == '-';
}

int storage_snapdir_encode(const struct snapdir *sd, const char *name,
                           char enc[SNAPDIR_NAME_MAX + 1], berth_err_t *err)
{
    size_t n;

    if (!name || !*name)
        return berth_err_set(err, -EINVAL, "%s: empty snapshot name", sd->drv);
    n = strnlen(name, SNAPDIR_NAME_MAX + 1);
    if (n > SNAPDIR_NAME_MAX)
        return berth_err_set(err, -EINVAL, "%s: snapshot name longer than %d bytes", sd->drv,
                             SNAPDIR_NAME_MAX);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return berth_err_set(err, -EINVAL, "%s: invalid snapshot name \"%s\"", sd->drv, name);
    for (size_t i = 0; i < n; i++) {
        if (!name_char_ok(name[i]))
            return berth_err_set(err, -EINVAL,
                                 "%s: invalid snapshot name \"%.64s\" (allowed: [A-Za-z0-9:._-])",
                                 sd->drv, name);
        /* ':' is legal in names but special in overlay's lowerdir: '+' is never in a name. */
        enc[i] = name[i] == ':' ? '+' : name[i];
    }
    enc[n] = '\0';
    return 0;
}

int storage_snapdir_decode(const char *enc, char name[SNAPDIR_NAME_MAX + 1])
{
    size_t n = strnlen(enc, SNAPDIR_NAME_MAX + 1);

    if (n == 0 || n > SNAPDIR_NAME_MAX || strcmp(enc, ".") == 0 || strcmp(enc, "..") == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (enc[i] == ':' || (enc[i] != '+' && !name_char_ok(enc[i])))
            return -EINVAL;
        name[i] = enc[i] == '+' ? ':' : enc[i];
    }
    name[n] = '\0';
    return 0;
}

/* ---- small files ---- */

int storage_snapdir_write_file(struct snapdir *sd, int dirfd, const char *name, const char *data,
                               size_t len, int sync, berth_err_t *err)
{
    char tmp[NAME_MAX + 1];
    size_t done = 0;
    int fd;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp))
        return berth_err_set(err, -ENAMETOOLONG, "%s: file name %s too long", sd->drv, name);
    /* Writers hold the exclusive lock, so a fixed temp name can't be raced. */
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return berth_err_set(err, -errno, "%s: create %s: %s", sd->drv, tmp, strerror(errno));
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            unlinkat(dirfd, tmp, 0);
            return berth_err_set(err, -e, "%s: write %s: %s", sd->drv, tmp, strerror(e));
        }
        done += (size_t)n;
    }
    if (sync && fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return berth_err_set(err, -e, "%s: fsync %s: %s", sd->drv, tmp, strerror(e));
    }
    close(fd);
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        int e = errno;
        unlinkat(dirfd, tmp, 0);
        return berth_err_set(err, -e, "%s: rename %s: %s", sd->drv, tmp, strerror(e));
    }
    return 0;
}

int storage_snapdir_read_file(int dirfd, const char *name, size_t max, char **ret_data,
                              size_t *ret_len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    size_t len = 0, cap = 256;
    char *buf;

    if (fd < 0)
        return -errno;
    buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t n;
        if (len + 1 >= cap) {
            char *grown;
            if (cap >= max + 1) {
                free(buf);
                close(fd);
                return -EFBIG;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = grown;
        }
        n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *ret_data = buf;
    if (ret_len)
        *ret_len = len;
    return 0;
}

/* ---- meta ---- */

int storage_snapdir_write_meta(struct snapdir *sd, int dirfd, const char *file,
                               const struct snapdir_meta *m, berth_err_t *err)
{
    char buf[META_MAX];
    int n = snprintf(
        buf, sizeof(buf),
        META_MAGIC "\nname=%s\nparent=%s\nkind=%s\nflags=%" PRIu32 "\ncreated_ns=%" PRId64 "\n",
        m->name, m->parent, m->kind == BERTH_SNAPSHOT_KIND_COMMITTED ? "committed" : "active",
        m->flags, m->created_ns);
    if (m->link[0] && n > 0 && (size_t)n < sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "link=%s\n", m->link);
    if (m->chain[0] && n > 0 && (size_t)n < sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "chain=%s\n", m->chain);
    if (m->has_usage && n > 0 && (size_t)n < sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      "size_bytes=%" PRIu64 "\ninodes=%" PRIu64 "\n", m->size_bytes, m->inodes);
    /* Last: a file cut short anywhere lacks it. */
    if (n > 0 && (size_t)n < sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "end\n");
    if (n < 0 || (size_t)n >= sizeof(buf))
        return berth_err_set(err, -EOVERFLOW, "%s: metadata of %s too long", sd->drv, m->name);
    /*
     * Synced for committed snapshots (image layers) only. An active one is
     * a container's writable layer, whose files are never synced either:
     * after a power failure it may be gone or read as damaged (no end
     * marker), and is then removed with its container. Not syncing it saves
     * every container start a flush (about 0.4 ms here).
     */
    return storage_snapdir_write_file(sd, dirfd, file, buf, (size_t)n,
                                      m->kind == BERTH_SNAPSHOT_KIND_COMMITTED, err);
}

static int parse_u64(const char *s, uint64_t *ret)
{
    char *end;
    unsigned long long v;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *ret = v;
    return 0;
}

static int parse_meta(char *text, struct snapdir_meta *m)
{
    char *line, *save = NULL;
    int have_name = 0, have_kind = 0, have_size = 0, have_inodes = 0, have_end = 0;

    memset(m, 0, sizeof(*m));
    line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, META_MAGIC) != 0)
        return -EBADMSG;
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *eq = strchr(line, '=');
        const char *v;
        uint64_t u;
        if (have_end)
            return -EBADMSG;
        if (strcmp(line, "end") == 0) {
            have_end = 1;
            continue;
        }
        if (!eq)
            return -EBADMSG;
        *eq = '\0';
        v = eq + 1;
        if (strcmp(line, "name") == 0) {
            if (strlen(v) > SNAPDIR_NAME_MAX || !*v)
                return -EBADMSG;
            strcpy(m->name, v);
            have_name = 1;
        } else if (strcmp(line, "parent") == 0) {
            if (strlen(v) > SNAPDIR_NAME_MAX)
                return -EBADMSG;
            strcpy(m->parent, v);
        } else if (strcmp(line, "kind") == 0) {
            if (strcmp(v, "committed") == 0)
                m->kind = BERTH_SNAPSHOT_KIND_COMMITTED;
            else if (strcmp(v, "active") == 0)
                m->kind = BERTH_SNAPSHOT_KIND_ACTIVE;
            else
                return -EBADMSG;
            have_kind = 1;
        } else if (strcmp(line, "flags") == 0) {
            if (parse_u64(v, &u) < 0 || u > UINT32_MAX)
                return -EBADMSG;
            m->flags = (uint32_t)u;
        } else if (strcmp(line, "created_ns") == 0) {
            if (parse_u64(v, &u) < 0 || u > INT64_MAX)
                return -EBADMSG;
            m->created_ns = (int64_t)u;
        } else if (strcmp(line, "link") == 0) {
            if (strlen(v) >= sizeof(m->link) || strchr(v, '/') || strcmp(v, ".") == 0 ||
                strcmp(v, "..") == 0)
                return -EBADMSG;
            strcpy(m->link, v);
        } else if (strcmp(line, "chain") == 0) {
            if (strlen(v) >= sizeof(m->chain))
                return -EBADMSG;
            strcpy(m->chain, v);
        } else if (strcmp(line, "size_bytes") == 0) {
            if (parse_u64(v, &m->size_bytes) < 0)
                return -EBADMSG;
            have_size = 1;
        } else if (strcmp(line, "inodes") == 0) {
            if (parse_u64(v, &m->inodes) < 0)
                return -EBADMSG;
            have_inodes = 1;
        }
        /* Unknown keys are from a newer driver version: ignored, not an error. */
    }
    if (!have_name || !have_kind || !have_end)
        return -EBADMSG;
    m->has_usage = have_size && have_inodes;
    return 0;
}

int storage_snapdir_read_meta_at(int dirfd, const char *file, struct snapdir_meta *m)
{
    char *text = NULL;
    int r = storage_snapdir_read_file(dirfd, file, META_MAX, &text, NULL);
    if (r < 0)
        return r == -EFBIG ? -EBADMSG : r;
    r = parse_meta(text, m);
    free(text);
    return r;
}

int storage_snapdir_get(struct snapdir *sd, const char *enc, struct snapdir_meta *ret_meta,
                        int *ret_dirfd, berth_err_t *err)
{
    char name[SNAPDIR_NAME_MAX + 1];
    int fd, r;

    fd = openat(sd->snapfd, enc, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return berth_err_set(err, -ENOENT, "%s: no snapshot %s", sd->drv,
                                 storage_snapdir_decode(enc, name) == 0 ? name : enc);
        return berth_err_set(err, -errno, "%s: open snapshot %s: %s", sd->drv, enc,
                             strerror(errno));
    }
    r = storage_snapdir_read_meta_at(fd, "meta", ret_meta);
    if (r == 0 && (storage_snapdir_decode(enc, name) < 0 || strcmp(name, ret_meta->name) != 0))
        r = -EBADMSG;
    if (r < 0) {
        close(fd);
        if (r == -ENOENT || r == -EBADMSG)
            return berth_err_set(err, -EBADMSG, "%s: snapshot %s: damaged metadata", sd->drv, enc);
        return berth_err_set(err, r, "%s: snapshot %s: reading metadata: %s", sd->drv, enc,
                             strerror(-r));
    }
    if (ret_dirfd)
        *ret_dirfd = fd;
    else
        close(fd);
    return 0;
}

/* ---- trees ---- */

/* Delete the entries of directory @fd (borrowed); 0 or the first -errno. */
static int empty_dir(int fd)
{
    int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
    struct dirent *e;
    DIR *d;

    if (dup_fd < 0)
        return -errno;
    if (!(d = fdopendir(dup_fd))) {
        r = -errno;
        close(dup_fd);
        return r;
    }
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* d_type saves a failed unlink per directory; DT_UNKNOWN takes the long way. */
        if (e->d_type == DT_DIR || unlinkat(fd, e->d_name, 0) < 0) {
            if ((r = storage_snapdir_rmtree(fd, e->d_name)) < 0)
                break;
        }
    }
    closedir(d);
    return r;
}

int storage_snapdir_rmtree(int dirfd, const char *name)
{
    int fd, r;

    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    /* Removing while reading may skip entries: rmdir tells, and then it goes again. */
    for (int pass = 0;; pass++) {
        if ((r = empty_dir(fd)) < 0)
            break;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            r = 0;
            break;
        }
        if (errno != ENOTEMPTY || pass >= 8) {
            r = -errno;
            break;
        }
    }
    close(fd);
    return r;
}

/* Inodes with more than one link, seen once (open addressing on dev/ino). */
struct inode_set {
    struct {
        dev_t dev;
        ino_t ino;
        int used;
    } * slots;
    size_t cap, n;
};

/* 1 when newly added, 0 when seen before, -ENOMEM. */
static int inode_set_add(struct inode_set *s, dev_t dev, ino_t ino)
{
    size_t h;
    if (s->n * 2 >= s->cap) {
        struct inode_set grown = { .cap = s->cap ? s->cap * 2 : 64 };
        grown.slots = calloc(grown.cap, sizeof(*grown.slots));
        if (!grown.slots)
            return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i].used)
                inode_set_add(&grown, s->slots[i].dev, s->slots[i].ino);
        free(s->slots);
        *s = grown;
    }
    h = ((size_t)ino * 0x9E3779B97F4A7C15ull ^ (size_t)dev) & (s->cap - 1);
    while (s->slots[h].used) {
        if (s->slots[h].dev == dev && s->slots[h].ino == ino)
            return 0;
        h = (h + 1) & (s->cap - 1);
    }
    s->slots[h].used = 1;
    s->slots[h].dev = dev;
    s->slots[h].ino = ino;
    s->n++;
    return 1;
}

struct usage {
    uint64_t bytes, inodes;
    struct inode_set links;
};

static int usage_add(struct usage *u, const struct stat *st)
{
    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
        int r = inode_set_add(&u->links, st->st_dev, st->st_ino);
        if (r <= 0)
            return r;
    }
    u->bytes += (uint64_t)st->st_blocks * 512u;
    u->inodes++;
    return 0;
}

static int usage_dir(struct usage *u, int dirfd)
{
    DIR *d = fdopendir(dirfd);
    struct dirent *e;
    int r = 0;

    if (!d) {
        r = -errno;
        close(dirfd);
        return r;
    }
    while ((e = readdir(d))) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            r = -errno;
            break;
        }
        if ((r = usage_add(u, &st)) < 0)
            break;
        if (S_ISDIR(st.st_mode)) {
            int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                r = -errno;
                break;
            }
            if ((r = usage_dir(u, fd)) < 0)
                break;
        }
    }
    closedir(d);
    return r;
}

int storage_snapdir_usage(struct snapdir *sd, int dirfd, const char *name, uint64_t *ret_bytes,
                          uint64_t *ret_inodes, berth_err_t *err)
{
    struct usage u = { 0 };
    struct stat st;
    int fd, r;

    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        return berth_err_set(err, r, "%s: usage of %s: %s", sd->drv, name, strerror(-r));
    }
    r = usage_add(&u, &st);
    if (r == 0)
        r = usage_dir(&u, fd);
    else
        close(fd);
    free(u.links.slots);
    if (r < 0)
        return berth_err_set(err, r, "%s: usage of %s: %s", sd->drv, name, strerror(-r));
    *ret_bytes = u.bytes;
    *ret_inodes = u.inodes;
    return 0;
}

/* ---- lock ---- */

int storage_snapdir_lock(struct snapdir *sd, int exclusive, berth_err_t *err)
{
    if (sd->lock_depth++ > 0)
        return 0;
    while (flock(sd->lockfd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
        if (errno == EINTR)
            continue;
        sd->lock_depth--;
        return berth_err_set(err, -errno, "%s: lock %s/lock: %s", sd->drv, sd->root,
                             strerror(errno));
    }
    return 0;
}

void storage_snapdir_unlock(struct snapdir *sd)
{
    if (sd->lock_depth > 0 && --sd->lock_depth == 0)
        flock(sd->lockfd, LOCK_UN);
}

/* ---- creating, committing and removing ---- */

int storage_snapdir_begin(struct snapdir *sd, char ret_tmpname[32], int *ret_dirfd,
                          berth_err_t *err)
{
    char name[32];
    int fd;

    for (int tries = 0;; tries++) {
        memcpy(name, "new-", 4);
        if (storage_snapdir_random_id(name + 4, 12) < 0)
            return berth_err_set(err, -EIO, "%s: getrandom failed", sd->drv);
        name[16] = '\0';
        if (mkdirat(sd->tmpfd, name, 0700) == 0)
            break;
        if (errno != EEXIST || tries > 8)
            return berth_err_set(err, -errno, "%s: mkdir %s/tmp/%s: %s", sd->drv, sd->root, name,
                                 strerror(errno));
    }
    fd = openat(sd->tmpfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        unlinkat(sd->tmpfd, name, AT_REMOVEDIR);
        return berth_err_set(err, -e, "%s: open %s/tmp/%s: %s", sd->drv, sd->root, name,
                             strerror(e));
    }
    memcpy(ret_tmpname, name, 17);
    *ret_dirfd = fd;
    return 0;
}

int storage_snapdir_publish(struct snapdir *sd, const char *tmpname, const char *enc,
                            berth_err_t *err)
{
    if (xrename_noreplace(sd->tmpfd, tmpname, sd->snapfd, enc) < 0)
        return berth_err_set(err, -errno, "%s: publish snapshot %s: %s", sd->drv, enc,
                             strerror(errno));
    return 0;
}

static void discard_tmp_entry(struct snapdir *sd, const char *tmpname)
{
    int fd = openat(sd->tmpfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        if (sd->discard)
            sd->discard(sd, fd, sd->ud);
        close(fd);
    }
    storage_snapdir_rmtree(sd->tmpfd, tmpname);
}

void storage_snapdir_discard(struct snapdir *sd, const char *tmpname)
{
    discard_tmp_entry(sd, tmpname);
}

/* Finish (the rename happened) or undo (it didn't) the commit described by intent @text. */
static int resolve_commit(struct snapdir *sd, char *text, berth_err_t *err)
{
    char *key = text, *name = strchr(text, '\n'), *end;
    int fd;

    if (!name)
        return 0;
    *name++ = '\0';
    if ((end = strchr(name, '\n')))
        *end = '\0';
    if (!*key || !*name || strchr(key, '/') || strchr(name, '/'))
        return 0;
    /*
     * meta.commit only ever exists in the directory being committed: found
     * under the new name, the rename happened and the rest is finished here.
     * The renamed hook is idempotent, so running it again is harmless.
     */
    fd = openat(sd->snapfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        int r = 0;
        if (renameat(fd, "meta.commit", fd, "meta") < 0 && errno != ENOENT)
            r = berth_err_set(err, -errno, "%s: finishing the commit of %s: %s", sd->drv, name,
                              strerror(errno));
        if (r == 0 && sd->renamed)
            r = sd->renamed(sd, name, fd, sd->ud, err);
        close(fd);
        if (r < 0)
            return r;
    }
    /* Under the old name: the rename never happened; drop the prepared meta. */
    fd = openat(sd->snapfd, key, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        unlinkat(fd, "meta.commit", 0);
        unlinkat(fd, "meta.commit.tmp", 0);
        close(fd);
    }
    return 0;
}

int storage_snapdir_commit(struct snapdir *sd, const char *key_enc, const char *name_enc,
                           const struct snapdir_meta *m, berth_err_t *err)
{
    char intent[2 * SNAPDIR_NAME_MAX + 4], iname[32] = "commit-";
    int keyfd, r, n;

    keyfd = openat(sd->snapfd, key_enc, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (keyfd < 0)
        return berth_err_set(err, -errno, "%s: open snapshot %s: %s", sd->drv, key_enc,
                             strerror(errno));
    /* The intent goes first so that recovery can tell a half-done commit from junk. */
    n = snprintf(intent, sizeof(intent), "%s\n%s\n", key_enc, name_enc);
    if ((r = storage_snapdir_random_id(iname + 7, 12)) < 0) {
        close(keyfd);
        return berth_err_set(err, r, "%s: getrandom failed", sd->drv);
    }
    iname[19] = '\0';
    if ((r = storage_snapdir_write_file(sd, sd->tmpfd, iname, intent, (size_t)n, 1, err)) < 0) {
        close(keyfd);
        return r;
    }
    if ((r = storage_snapdir_write_meta(sd, keyfd, "meta.commit", m, err)) < 0)
        goto undo;
    if (xrename_noreplace(sd->snapfd, key_enc, sd->snapfd, name_enc) < 0) {
        r = berth_err_set(err, -errno, "%s: rename snapshot %s to %s: %s", sd->drv, key_enc,
                          name_enc, strerror(errno));
        goto undo;
    }
    /* keyfd still names the directory, now at its new place. */
    if (renameat(keyfd, "meta.commit", keyfd, "meta") < 0) {
        r = berth_err_set(err, -errno, "%s: snapshot %s: installing metadata: %s", sd->drv,
                          name_enc, strerror(errno));
        close(keyfd);
        return r; /* the intent stays: recovery finishes it */
    }
    if (sd->renamed && (r = sd->renamed(sd, name_enc, keyfd, sd->ud, err)) < 0) {
        close(keyfd);
        return r;
    }
    if (fsync(keyfd) < 0 || fsync(sd->snapfd) < 0) {
        r = berth_err_set(err, -errno, "%s: fsync after committing %s: %s", sd->drv, name_enc,
                          strerror(errno));
        close(keyfd);
        return r;
    }
    close(keyfd);
    unlinkat(sd->tmpfd, iname, 0);
    return 0;

undo:
    unlinkat(keyfd, "meta.commit", 0);
    close(keyfd);
    unlinkat(sd->tmpfd, iname, 0);
    return r;
}

int storage_snapdir_remove(struct snapdir *sd, const char *enc, berth_err_t *err)
{
    char tmpname[32] = "rm-";

    if (storage_snapdir_random_id(tmpname + 3, 12) < 0)
        return berth_err_set(err, -EIO, "%s: getrandom failed", sd->drv);
    tmpname[15] = '\0';
    if (renameat(sd->snapfd, enc, sd->tmpfd, tmpname) < 0) {
        if (errno == ENOENT)
            return berth_err_set(err, -ENOENT, "%s: no snapshot %s", sd->drv, enc);
        return berth_err_set(err, -errno, "%s: remove snapshot %s: %s", sd->drv, enc,
                             strerror(errno));
    }
    /*
     * The snapshot is gone for everyone now; if deleting its files fails
     * (a mount still inside), the leftover is retried when the store opens.
     */
    discard_tmp_entry(sd, tmpname);
    return 0;
}

/* ---- listing ---- */

int storage_snapdir_each(struct snapdir *sd, snapdir_each_fn fn, void *ud, berth_err_t *err)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *d;
    int fd, r = 0;

    fd = openat(sd->snapfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !(d = fdopendir(fd))) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        return berth_err_set(err, r, "%s: list %s/snapshots: %s", sd->drv, sd->root, strerror(-r));
    }
    /* Names first, so that @fn runs with the directory stream closed. */
    while ((e = readdir(d))) {
        char name[SNAPDIR_NAME_MAX + 1];
        if (storage_snapdir_decode(e->d_name, name) < 0)
            continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*names));
            if (!grown) {
                r = -ENOMEM;
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (r < 0)
        berth_err_set(err, r, "%s: out of memory", sd->drv);
    for (size_t i = 0; i < n && r == 0; i++) {
        struct snapdir_meta m;
        /* Gone meanwhile, or damaged: not a snapshot anyone can use. */
        if (storage_snapdir_get(sd, names[i], &m, NULL, NULL) < 0)
            continue;
        r = fn(sd, names[i], &m, ud);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

static int child_of(struct snapdir *sd, const char *enc, const struct snapdir_meta *m, void *ud)
{
    return strcmp(m->parent, (const char *)ud) == 0;
}

int storage_snapdir_has_children(struct snapdir *sd, const char *name, berth_err_t *err)
{
    return storage_snapdir_each(sd, child_of, (void *)name, err);
}

/* ---- paths handed out ---- */

const char *storage_snapdir_path(struct snapdir *sd, const char *key, const char *enc,
                                 const char *sub)
{
    struct snapdir_path *p;
    size_t len;

    for (p = sd->paths; p; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p->path;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    len = strlen(sd->root) + strlen(enc) + strlen(sub) + 16;
    p->key = strdup(key);
    p->path = malloc(len);
    if (!p->key || !p->path) {
        free(p->key);
        free(p->path);
        free(p);
        return NULL;
    }
    snprintf(p->path, len, "%s/snapshots/%s/%s", sd->root, enc, sub);
    p->next = sd->paths;
    sd->paths = p;
    return p->path;
}

void storage_snapdir_forget(struct snapdir *sd, const char *key)
{
    for (struct snapdir_path **pp = &sd->paths; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            struct snapdir_path *p = *pp;
            *pp = p->next;
            free(p->key);
            free(p->path);
            free(p);
            return;
        }
    }
}

/* ---- open, recover, close ---- */

/* Resolve what a crash left in tmp/: half-made or half-removed snapshots, commits. */
static int recover(struct snapdir *sd, berth_err_t *err)
{
    int fd = openat(sd->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *e;
    DIR *d;
    int r = 0;

    if (fd < 0 || !(d = fdopendir(fd))) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        return berth_err_set(err, r, "%s: list %s/tmp: %s", sd->drv, sd->root, strerror(-r));
    }
    while ((e = readdir(d)) && r == 0) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strncmp(e->d_name, "commit-", 7) == 0 && !strstr(e->d_name, ".tmp")) {
            char *text = NULL;
            if (storage_snapdir_read_file(sd->tmpfd, e->d_name, 1024, &text, NULL) == 0) {
                r = resolve_commit(sd, text, err);
                free(text);
            }
            if (r == 0)
                fsync(sd->snapfd);
            if (r == 0)
                unlinkat(sd->tmpfd, e->d_name, 0);
            continue;
        }
        discard_tmp_entry(sd, e->d_name);
    }
    closedir(d);
    return r;
}

static int mkdir_open(struct snapdir *sd, const char *name, int *ret_fd, berth_err_t *err)
{
    int fd;
    if (mkdirat(sd->rootfd, name, 0700) < 0 && errno != EEXIST)
        return berth_err_set(err, -errno, "%s: mkdir %s/%s: %s", sd->drv, sd->root, name,
                             strerror(errno));
    fd = openat(sd->rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "%s: open %s/%s: %s", sd->drv, sd->root, name,
                             strerror(errno));
    *ret_fd = fd;
    return 0;
}

int storage_snapdir_open(struct snapdir *sd, const char *drv, const char *root,
                         snapdir_discard_fn discard, snapdir_renamed_fn renamed, void *ud,
                         berth_err_t *err)
{
    int r;

    memset(sd, 0, sizeof(*sd));
    sd->drv = drv;
    sd->rootfd = sd->snapfd = sd->tmpfd = sd->lockfd = -1;
    sd->discard = discard;
    sd->renamed = renamed;
    sd->ud = ud;
    if (!root)
        return berth_err_set(err, -EINVAL, "%s: the host gave no state directory", drv);
    /* Canonical and absolute: mount options carry it, and must not depend on the cwd. */
    sd->root = realpath(root, NULL);
    if (!sd->root)
        return berth_err_set(err, -errno, "%s: state directory %s: %s", drv, root, strerror(errno));
    sd->rootfd = open(sd->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sd->rootfd < 0) {
        r = berth_err_set(err, -errno, "%s: open %s: %s", drv, sd->root, strerror(errno));
        goto fail;
    }
    if ((r = mkdir_open(sd, "snapshots", &sd->snapfd, err)) < 0 ||
        (r = mkdir_open(sd, "tmp", &sd->tmpfd, err)) < 0)
        goto fail;
    sd->lockfd = openat(sd->rootfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (sd->lockfd < 0) {
        r = berth_err_set(err, -errno, "%s: open %s/lock: %s", drv, sd->root, strerror(errno));
        goto fail;
    }
    return 0;

fail:
    storage_snapdir_close(sd);
    return r;
}

int storage_snapdir_recover(struct snapdir *sd, berth_err_t *err)
{
    int r = storage_snapdir_lock(sd, 1, err);
    if (r < 0)
        return r;
    r = recover(sd, err);
    storage_snapdir_unlock(sd);
    return r;
}

void storage_snapdir_close(struct snapdir *sd)
{
    int *fds[] = { &sd->rootfd, &sd->snapfd, &sd->tmpfd, &sd->lockfd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    while (sd->paths)
        storage_snapdir_forget(sd, sd->paths->key);
    free(sd->root);
    sd->root = NULL;
}

/* ---- the storage ops both drivers share ---- */

int storage_snapdir_prepare_begin(struct snapdir *sd, const char *key, const char *parent,
                                  const berth_snapshot_opts_t *opts, uint32_t flags,
                                  struct snapdir_prep *prep, berth_err_t *err)
{
    char parent_enc[SNAPDIR_NAME_MAX + 1];
    int has_parent = parent && *parent, r;

    memset(prep, 0, sizeof(*prep));
    prep->dirfd = prep->parentfd = -1;
    if ((r = storage_snapdir_encode(sd, key, prep->key_enc, err)) < 0)
        return r;
    if (has_parent && (r = storage_snapdir_encode(sd, parent, parent_enc, err)) < 0)
        return r;
    if (BERTH_HAS_MEMBER(opts, berth_snapshot_opts_t, size_limit_bytes) &&
        opts->size_limit_bytes != 0)
        return berth_err_set(err, -ENOTSUP, "%s: size limits are not supported", sd->drv);
    if ((r = storage_snapdir_lock(sd, 1, err)) < 0)
        return r;
    if (faccessat(sd->snapfd, prep->key_enc, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        r = berth_err_set(err, -EEXIST, "%s: snapshot %s exists", sd->drv, key);
        goto fail;
    }
    if (has_parent) {
        r = storage_snapdir_get(sd, parent_enc, &prep->parent_meta, &prep->parentfd, err);
        if (r == 0 && prep->parent_meta.kind != BERTH_SNAPSHOT_KIND_COMMITTED)
            r = -ENOENT;
        if (r == -ENOENT || r == -EBADMSG) {
            r = berth_err_set(err, -ENOENT, "%s: no committed snapshot %s", sd->drv, parent);
            goto fail;
        }
        if (r < 0)
            goto fail;
    }
    if ((r = storage_snapdir_begin(sd, prep->tmpname, &prep->dirfd, err)) < 0)
        goto fail;
    if (BERTH_HAS_MEMBER(opts, berth_snapshot_opts_t, labels_json) && opts->labels_json &&
        (r = storage_snapdir_write_file(sd, prep->dirfd, "labels", opts->labels_json,
                                        strlen(opts->labels_json), 1, err)) < 0) {
        close(prep->dirfd);
        prep->dirfd = -1;
        storage_snapdir_discard(sd, prep->tmpname);
        goto fail;
    }
    snprintf(prep->meta.name, sizeof(prep->meta.name), "%s", key);
    snprintf(prep->meta.parent, sizeof(prep->meta.parent), "%s", has_parent ? parent : "");
    prep->meta.kind = BERTH_SNAPSHOT_KIND_ACTIVE;
    prep->meta.flags = flags & BERTH_SNAPSHOT_READONLY;
    prep->meta.created_ns = storage_snapdir_now_ns();
    return 0;

fail:
    if (prep->parentfd >= 0)
        close(prep->parentfd);
    prep->parentfd = -1;
    storage_snapdir_unlock(sd);
    return r;
}

int storage_snapdir_prepare_write_meta(struct snapdir *sd, struct snapdir_prep *prep,
                                       berth_err_t *err)
{
    int r = storage_snapdir_write_meta(sd, prep->dirfd, "meta", &prep->meta, err);
    if (r == 0)
        prep->meta_written = 1;
    return r;
}

int storage_snapdir_prepare_end(struct snapdir *sd, struct snapdir_prep *prep, int r,
                                berth_err_t *err)
{
    /* The meta is written and synced last: a snapshot dir with a good meta is complete. */
    if (r == 0 && !prep->meta_written)
        r = storage_snapdir_write_meta(sd, prep->dirfd, "meta", &prep->meta, err);
    if (r == 0)
        r = storage_snapdir_publish(sd, prep->tmpname, prep->key_enc, err);
    if (prep->dirfd >= 0)
        close(prep->dirfd);
    if (prep->parentfd >= 0)
        close(prep->parentfd);
    prep->dirfd = prep->parentfd = -1;
    if (r < 0)
        storage_snapdir_discard(sd, prep->tmpname);
    storage_snapdir_unlock(sd);
    return r;
}

int storage_snapdir_get_active(struct snapdir *sd, const char *key,
                               char ret_enc[SNAPDIR_NAME_MAX + 1], struct snapdir_meta *ret_meta,
                               int *ret_dirfd, berth_err_t *err)
{
    int fd = -1, r;

    if ((r = storage_snapdir_encode(sd, key, ret_enc, err)) < 0)
        return r;
    r = storage_snapdir_get(sd, ret_enc, ret_meta, ret_dirfd ? &fd : NULL, err);
    if (r == 0 && ret_meta->kind != BERTH_SNAPSHOT_KIND_ACTIVE) {
        if (fd >= 0)
            close(fd);
        r = -ENOENT;
    }
    if (r == -ENOENT || r == -EBADMSG)
        return berth_err_set(err, -ENOENT, "%s: no active snapshot %s", sd->drv, key);
    if (r == 0 && ret_dirfd)
        *ret_dirfd = fd;
    return r;
}

int storage_snapdir_op_commit(struct snapdir *sd, const char *name, const char *key,
                              const char *payload, berth_err_t *err)
{
    char name_enc[SNAPDIR_NAME_MAX + 1], key_enc[SNAPDIR_NAME_MAX + 1];
    struct snapdir_meta m;
    int fd = -1, r;

    if ((r = storage_snapdir_encode(sd, name, name_enc, err)) < 0 ||
        (r = storage_snapdir_encode(sd, key, key_enc, err)) < 0)
        return r;
    if ((r = storage_snapdir_lock(sd, 1, err)) < 0)
        return r;
    if (faccessat(sd->snapfd, name_enc, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        r = berth_err_set(err, -EEXIST, "%s: snapshot %s exists", sd->drv, name);
        goto out;
    }
    if ((r = storage_snapdir_get_active(sd, key, key_enc, &m, &fd, err)) < 0)
        goto out;
    /* A committed tree never changes again: its usage is measured once, here. */
    r = storage_snapdir_usage(sd, fd, payload, &m.size_bytes, &m.inodes, err);
    close(fd);
    if (r < 0)
        goto out;
    m.has_usage = 1;
    m.kind = BERTH_SNAPSHOT_KIND_COMMITTED;
    snprintf(m.name, sizeof(m.name), "%s", name);
    r = storage_snapdir_commit(sd, key_enc, name_enc, &m, err);
    if (r == 0)
        storage_snapdir_forget(sd, key);
out:
    storage_snapdir_unlock(sd);
    return r;
}

int storage_snapdir_op_remove(struct snapdir *sd, const char *name, berth_err_t *err)
{
    char enc[SNAPDIR_NAME_MAX + 1];
    struct snapdir_meta m;
    int r;

    if ((r = storage_snapdir_encode(sd, name, enc, err)) < 0)
        return r;
    if ((r = storage_snapdir_lock(sd, 1, err)) < 0)
        return r;
    r = storage_snapdir_get(sd, enc, &m, NULL, err);
    /* A damaged snapshot can still be removed: that is how it gets cleaned up. */
    if (r == -EBADMSG) {
        r = 0;
        m.kind = BERTH_SNAPSHOT_KIND_COMMITTED;
        snprintf(m.name, sizeof(m.name), "%s", name);
    }
    if (r < 0)
        goto out;
    /* Only committed snapshots can be parents: active ones skip the scan. */
    if (m.kind == BERTH_SNAPSHOT_KIND_COMMITTED) {
        r = storage_snapdir_has_children(sd, name, err);
        if (r > 0)
            r = berth_err_set(err, -EBUSY, "%s: snapshot %s has children", sd->drv, name);
        if (r < 0)
            goto out;
    }
    r = storage_snapdir_remove(sd, enc, err);
    if (r == 0)
        storage_snapdir_forget(sd, name);
out:
    storage_snapdir_unlock(sd);
    return r;
}

static int fill_info(struct snapdir *sd, const char *enc, const struct snapdir_meta *m,
                     const char *payload, berth_snapshot_info_t *info, berth_err_t *err)
{
    info->kind = m->kind;
    snprintf(info->parent, sizeof(info->parent), "%s", m->parent);
    info->created_ns = m->created_ns;
    if (m->has_usage) {
        info->size_bytes = m->size_bytes;
        info->inodes = m->inodes;
        return 0;
    } else {
        int fd = openat(sd->snapfd, enc, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;
        if (fd < 0)
            return berth_err_set(err, -errno, "%s: open snapshot %s: %s", sd->drv, enc,
                                 strerror(errno));
        r = storage_snapdir_usage(sd, fd, payload, &info->size_bytes, &info->inodes, err);
        close(fd);
        return r;
    }
}

int storage_snapdir_op_stat(struct snapdir *sd, const char *name, const char *payload,
                            berth_snapshot_info_t *ret_info, berth_err_t *err)
{
    char enc[SNAPDIR_NAME_MAX + 1];
    berth_snapshot_info_t info = { .struct_size = sizeof(info) };
    struct snapdir_meta m;
    int r;

    if ((r = storage_snapdir_encode(sd, name, enc, err)) < 0)
        return r;
    if ((r = storage_snapdir_lock(sd, 0, err)) < 0)
        return r;
    r = storage_snapdir_get(sd, enc, &m, NULL, err);
    if (r == 0)
        r = fill_info(sd, enc, &m, payload, &info, err);
    storage_snapdir_unlock(sd);
    if (r < 0)
        return r;
    /* Only what the caller's struct has room for (it has had every member since 1.0). */
    {
        const size_t from = offsetof(berth_snapshot_info_t, kind);
        size_t size = ret_info->struct_size;
        if (size == 0 || size > sizeof(info))
            size = sizeof(info);
        if (size > from)
            memcpy((char *)ret_info + from, (char *)&info + from, size - from);
    }
    return 0;
}

struct walk_ent {
    char name[SNAPDIR_NAME_MAX + 1];
    berth_snapshot_info_t info;
};

struct walk_acc {
    const char *payload;
    struct walk_ent *ents;
    size_t n, cap;
    berth_err_t *err;
};

static int walk_collect(struct snapdir *sd, const char *enc, const struct snapdir_meta *m, void *ud)
{
    struct walk_acc *a = ud;
    struct walk_ent *e;
    int r;

    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        struct walk_ent *grown = realloc(a->ents, cap * sizeof(*grown));
        if (!grown)
            return berth_err_set(a->err, -ENOMEM, "%s: out of memory", sd->drv);
        a->ents = grown;
        a->cap = cap;
    }
    e = &a->ents[a->n];
    memset(e, 0, sizeof(*e));
    e->info.struct_size = sizeof(e->info);
    snprintf(e->name, sizeof(e->name), "%s", m->name);
    r = fill_info(sd, enc, m, a->payload, &e->info, a->err);
    if (r == -ENOENT)
        return 0; /* removed by another process between the listing and now */
    if (r < 0)
        return r;
    a->n++;
    return 0;
}

int storage_snapdir_op_walk(struct snapdir *sd, const char *payload, berth_snapshot_walk_fn fn,
                            void *userdata, berth_err_t *err)
{
    struct walk_acc a = { .payload = payload, .err = err };
    int r;

    if ((r = storage_snapdir_lock(sd, 0, err)) < 0)
        return r;
    r = storage_snapdir_each(sd, walk_collect, &a, err);
    storage_snapdir_unlock(sd);
    /* The callback runs unlocked: it may call the driver, even remove what it sees. */
    for (size_t i = 0; i < a.n && r == 0; i++)
        r = fn(a.ents[i].name, &a.ents[i].info, userdata);
    free(a.ents);
    return r;
}

const char *storage_snapdir_op_diff_dir(struct snapdir *sd, const char *key, const char *payload)
{
    char enc[SNAPDIR_NAME_MAX + 1];
    struct snapdir_meta m;
    const char *path = NULL;

    if (storage_snapdir_lock(sd, 0, NULL) < 0)
        return NULL;
    if (storage_snapdir_get_active(sd, key, enc, &m, NULL, NULL) == 0)
        path = storage_snapdir_path(sd, key, enc, payload);
    storage_snapdir_unlock(sd);
    return path;
}

struct mlist {
    berth_mount_list_t list;
    berth_mount_t mount;
    const char **options;
};

static void mlist_release(berth_mount_list_t *list)
{
    free(list->priv);
}

int storage_snapdir_mount_list(const char *type, const char *source, uint32_t flags,
                               const char *const *options, uint32_t n_options,
                               berth_mount_list_t **ret_list)
{
    size_t len =
        sizeof(struct mlist) + n_options * sizeof(char *) + strlen(type) + strlen(source) + 3;
    struct mlist *m;
    char *p;

    for (uint32_t i = 0; i < n_options; i++)
        len += strlen(options[i]) + 1;
    /* One block: the list, the option pointers, then the strings. */
    if (!(m = calloc(1, len)))
        return -ENOMEM;
    m->options = (const char **)(m + 1);
    p = (char *)(m->options + n_options);
    for (uint32_t i = 0; i < n_options; i++) {
        m->options[i] = p;
        p = stpcpy(p, options[i]) + 1;
    }
    m->mount.type = p;
    p = stpcpy(p, type) + 1;
    m->mount.source = p;
    p = stpcpy(p, source) + 1;
    m->mount.target = p; /* "" */
    m->mount.struct_size = sizeof(m->mount);
    m->mount.flags = flags;
    m->mount.options = m->options;
    m->mount.n_options = n_options;
    m->list.struct_size = sizeof(m->list);
    m->list.n_mounts = 1;
    m->list.mounts = &m->mount;
    m->list.release = mlist_release;
    m->list.priv = m;
    *ret_list = &m->list;
    return 0;
}
