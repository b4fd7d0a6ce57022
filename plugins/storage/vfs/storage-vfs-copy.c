/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vfs tree copy. The walk is fd-relative (openat with O_NOFOLLOW from the
 * copy's own directory fds) so no path built from file names is ever
 * resolved from the root, and a symlink in a layer is copied, never
 * followed.
 *
 * Metadata is applied in the order that keeps it: owner first (chown clears
 * setuid bits and security.capability), then xattrs, then the mode, then the
 * times (last, since writing and creating children change them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <linux/fs.h>

#include "storage-vfs-copy.h"

#define COPY_BUF (256 * 1024)

/* First copy of an inode with several links: later links point at it. */
struct link_ent {
    dev_t dev;
    ino_t ino;
    char *rel; /* path in the new tree, relative to its root */
};

struct copy {
    const char *drv;
    int dstroot;        /* the new tree's root directory */
    char rel[PATH_MAX]; /* the directory being copied, relative to the roots ("" at the top) */
    size_t rel_len;
    struct link_ent *links;
    size_t n_links, cap_links;
    char *buf;    /* read/write fallback buffer */
    int no_clone; /* FICLONE isn't supported here */
    int no_cfr;   /* copy_file_range isn't either */
    int not_root; /* chown to other owners will fail: tolerated */
    berth_err_t *err;
};

static int fail(struct copy *c, int code, const char *what, const char *name)
{
    return berth_err_set(c->err, code, "%s: copy %s%s%s: %s: %s", c->drv, c->rel,
                         c->rel_len ? "/" : "", name ? name : "", what, strerror(-code));
}

static struct link_ent *link_find(struct copy *c, const struct stat *st)
{
    for (size_t i = 0; i < c->n_links; i++)
        if (c->links[i].ino == st->st_ino && c->links[i].dev == st->st_dev)
            return &c->links[i];
    return NULL;
}

static int link_add(struct copy *c, const struct stat *st, const char *name)
{
    char rel[PATH_MAX];
    if ((size_t)snprintf(rel, sizeof(rel), "%s%s%s", c->rel, c->rel_len ? "/" : "", name) >=
        sizeof(rel))
        return fail(c, -ENAMETOOLONG, "path of a hard link", name);
    if (c->n_links == c->cap_links) {
        size_t cap = c->cap_links ? c->cap_links * 2 : 16;
        struct link_ent *grown = realloc(c->links, cap * sizeof(*grown));
        if (!grown)
            return fail(c, -ENOMEM, "remembering a hard link", name);
        c->links = grown;
        c->cap_links = cap;
    }
    if (!(c->links[c->n_links].rel = strdup(rel)))
        return fail(c, -ENOMEM, "remembering a hard link", name);
    c->links[c->n_links].dev = st->st_dev;
    c->links[c->n_links].ino = st->st_ino;
    c->n_links++;
    return 0;
}

/* ---- xattrs ---- */

/*
 * Copy every xattr. With fds (regular files, directories) the f* calls are
 * used; other types can't be opened safely (a fifo blocks, a device may act
 * on open), so they are named through /proc/self/fd/<dir>/<name> with the
 * l* calls, which don't follow the final symlink.
 */
static int copy_xattrs(struct copy *c, int sfd, int dfd, int sdir, int ddir, const char *name)
{
    char spath[64 + NAME_MAX], dpath[64 + NAME_MAX];
    char *list = NULL, *val = NULL;
    ssize_t n;
    size_t vcap = 0;
    int r = 0;

    if (sfd < 0)
        snprintf(spath, sizeof(spath), "/proc/self/fd/%d/%s", sdir, name);
    if (dfd < 0)
        snprintf(dpath, sizeof(dpath), "/proc/self/fd/%d/%s", ddir, name);
    for (;;) {
        n = sfd >= 0 ? flistxattr(sfd, NULL, 0) : llistxattr(spath, NULL, 0);
        if (n < 0) {
            if (errno == ENOTSUP)
                return 0; /* the source can't have any */
            return fail(c, -errno, "listing xattrs", name);
        }
        if (n == 0)
            return 0;
        free(list);
        if (!(list = malloc((size_t)n)))
            return fail(c, -ENOMEM, "listing xattrs", name);
        n = sfd >= 0 ? flistxattr(sfd, list, (size_t)n) : llistxattr(spath, list, (size_t)n);
        if (n >= 0)
            break;
        if (errno != ERANGE) { /* ERANGE: one was added meanwhile, ask again */
            r = fail(c, -errno, "listing xattrs", name);
            goto out;
        }
    }
    for (char *k = list; k < list + n; k += strlen(k) + 1) {
        ssize_t len;
        do {
            /* The size, then the value; ERANGE: it grew in between, ask again. */
            len = sfd >= 0 ? fgetxattr(sfd, k, NULL, 0) : lgetxattr(spath, k, NULL, 0);
            if (len >= 0 && (size_t)len >= vcap) {
                free(val);
                vcap = (size_t)len + 1;
                if (!(val = malloc(vcap))) {
                    r = fail(c, -ENOMEM, k, name);
                    goto out;
                }
            }
            if (len >= 0)
                len = sfd >= 0 ? fgetxattr(sfd, k, val, vcap) : lgetxattr(spath, k, val, vcap);
        } while (len < 0 && errno == ERANGE);
        if (len < 0 && errno == ENODATA)
            continue; /* removed meanwhile */
        if (len < 0) {
            r = fail(c, -errno, k, name);
            goto out;
        }
        if ((dfd >= 0 ? fsetxattr(dfd, k, val, (size_t)len, 0)
                      : lsetxattr(dpath, k, val, (size_t)len, 0)) < 0) {
            r = fail(c, -errno, k, name);
            goto out;
        }
    }
out:
    free(list);
    free(val);
    return r;
}

/*
 * Owner, xattrs, mode and times of a copied entry. With fds (@sfd/@dfd >= 0)
 * everything goes through them; otherwise through @ddir + @name.
 */
static int copy_meta(struct copy *c, const struct stat *st, int sfd, int dfd, int sdir, int ddir,
                     const char *name)
{
    const struct timespec times[2] = { st->st_atim, st->st_mtim };
    int r;

    r = dfd >= 0 ? fchown(dfd, st->st_uid, st->st_gid)
                 : fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
    /* Without root only one's own files can be handed over: the copy stays ours. */
    if (r < 0 && !(errno == EPERM && c->not_root))
        return fail(c, -errno, "chown", name);
    if ((r = copy_xattrs(c, sfd, dfd, sdir, ddir, name)) < 0)
        return r;
    if (!S_ISLNK(st->st_mode)) {
        r = dfd >= 0 ? fchmod(dfd, st->st_mode & 07777)
                     : fchmodat(ddir, name, st->st_mode & 07777, 0);
        if (r < 0)
            return fail(c, -errno, "chmod", name);
    }
    r = dfd >= 0 ? futimens(dfd, times) : utimensat(ddir, name, times, AT_SYMLINK_NOFOLLOW);
    if (r < 0)
        return fail(c, -errno, "setting times", name);
    return 0;
}

/* ---- file data ---- */

static int copy_range(struct copy *c, int in, int out, off_t off, off_t len, const char *name)
{
    while (len > 0) {
        size_t want = len > (off_t)COPY_BUF ? COPY_BUF : (size_t)len;
        ssize_t n, w = 0;

        if (!c->no_cfr) {
            off_t ioff = off, ooff = off;
            n = copy_file_range(in, &ioff, out, &ooff, (size_t)len, 0);
            if (n > 0) {
                off += n;
                len -= n;
                continue;
            }
            if (n == 0)
                return 0; /* the source got shorter: what's there is copied */
            if (errno == EINTR)
                continue;
            if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
                return fail(c, -errno, "copy_file_range", name);
            c->no_cfr = 1;
        }
        n = pread(in, c->buf, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(c, -errno, "read", name);
        if (n == 0)
            return 0;
        while (w < n) {
            ssize_t m = pwrite(out, c->buf + w, (size_t)(n - w), off + w);
            if (m < 0 && errno == EINTR)
                continue;
            if (m < 0)
                return fail(c, -errno, "write", name);
            w += m;
        }
        off += n;
        len -= n;
    }
    return 0;
}

static int copy_data(struct copy *c, int in, int out, off_t size, const char *name)
{
    off_t pos = 0;

    if (!c->no_clone) {
        if (ioctl(out, FICLONE, in) == 0)
            return 0;
        /* Not a filesystem with reflinks (ext4, tmpfs): don't ask for every file. */
        if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EXDEV || errno == ENOSYS)
            c->no_clone = 1;
    }
    if (size == 0)
        return 0;
    /* The size first, then only the data extents: holes stay holes. */
    if (ftruncate(out, size) < 0)
        return fail(c, -errno, "truncate", name);
    while (pos < size) {
        off_t data = lseek(in, pos, SEEK_DATA), hole;
        int r;
        if (data < 0) {
            if (errno == ENXIO)
                break;  /* a hole up to the end */
            data = pos; /* no SEEK_DATA here: copy everything */
            hole = size;
        } else {
            hole = lseek(in, data, SEEK_HOLE);
            if (hole < 0 || hole > size)
                hole = size;
        }
        if (data >= size)
            break;
        if ((r = copy_range(c, in, out, data, hole - data, name)) < 0)
            return r;
        pos = hole;
    }
    return 0;
}

static int copy_file(struct copy *c, int sdir, int ddir, const char *name, const struct stat *st)
{
    int in, out, r;

    in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (in < 0)
        return fail(c, -errno, "open", name);
    out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        r = fail(c, -errno, "create", name);
        close(in);
        return r;
    }
    r = copy_data(c, in, out, st->st_size, name);
    if (r == 0)
        r = copy_meta(c, st, in, out, sdir, ddir, name);
    close(in);
    close(out);
    return r;
}

/* ---- the walk ---- */

static int copy_dir(struct copy *c, int sdir, int ddir);

static int copy_entry(struct copy *c, int sdir, int ddir, const char *name)
{
    struct stat st;
    int r;

    if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(c, -errno, "stat", name);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        struct link_ent *l = link_find(c, &st);
        if (l) {
            if (linkat(c->dstroot, l->rel, ddir, name, 0) < 0)
                return fail(c, -errno, "hard link", name);
            return 0;
        }
        if ((r = link_add(c, &st, name)) < 0)
            return r;
    }
    switch (st.st_mode & S_IFMT) {
    case S_IFREG:
        return copy_file(c, sdir, ddir, name, &st);
    case S_IFDIR: {
        size_t save = c->rel_len;
        int s, d;
        if (mkdirat(ddir, name, 0700) < 0)
            return fail(c, -errno, "mkdir", name);
        s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0)
            return fail(c, -errno, "open", name);
        d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0) {
            r = fail(c, -errno, "open the copy of", name);
            close(s);
            return r;
        }
        if (save + strlen(name) + 2 > sizeof(c->rel)) {
            close(s);
            close(d);
            return fail(c, -ENAMETOOLONG, "path", name);
        }
        c->rel_len += (size_t)sprintf(c->rel + save, "%s%s", save ? "/" : "", name);
        r = copy_dir(c, s, d); /* closes s */
        c->rel_len = save;
        c->rel[save] = '\0';
        if (r == 0)
            r = copy_meta(c, &st, -1, d, sdir, ddir, name);
        close(d);
        return r;
    }
    case S_IFLNK: {
        char target[PATH_MAX];
        ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
        if (n < 0)
            return fail(c, -errno, "readlink", name);
        target[n] = '\0';
        if (symlinkat(target, ddir, name) < 0)
            return fail(c, -errno, "symlink", name);
        break;
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
        if (mknodat(ddir, name, (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0)
            return fail(c, -errno, "mknod", name);
        break;
    default:
        return fail(c, -EINVAL, "unknown file type", name);
    }
    return copy_meta(c, &st, -1, -1, sdir, ddir, name);
}

/* Copy the entries of @sdir (owned: closed here) into @ddir (borrowed). */
static int copy_dir(struct copy *c, int sdir, int ddir)
{
    DIR *d = fdopendir(sdir);
    struct dirent *e;
    int r = 0;

    if (!d) {
        r = fail(c, -errno, "opendir", NULL);
        close(sdir);
        return r;
    }
    while (r == 0) {
        errno = 0;
        if (!(e = readdir(d))) {
            if (errno)
                r = fail(c, -errno, "readdir", NULL);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        r = copy_entry(c, dirfd(d), ddir, e->d_name);
    }
    closedir(d);
    return r;
}

int storage_vfs_copy_tree(const char *drv, int srcfd, int dstparentfd, const char *dstname,
                          berth_err_t *err)
{
    struct copy c = { .drv = drv, .err = err, .not_root = geteuid() != 0 };
    struct stat st;
    int s = -1, r;

    c.dstroot = -1;
    if (fstat(srcfd, &st) < 0)
        return berth_err_set(err, -errno, "%s: copy: stat the source: %s", drv, strerror(errno));
    if (!(c.buf = malloc(COPY_BUF)))
        return berth_err_set(err, -ENOMEM, "%s: out of memory", drv);
    if (mkdirat(dstparentfd, dstname, 0700) < 0) {
        r = berth_err_set(err, -errno, "%s: copy: mkdir %s: %s", drv, dstname, strerror(errno));
        goto out;
    }
    c.dstroot = openat(dstparentfd, dstname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    s = openat(srcfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c.dstroot < 0 || s < 0) {
        r = berth_err_set(err, -errno, "%s: copy: open %s: %s", drv, dstname, strerror(errno));
        if (s >= 0)
            close(s);
        goto out;
    }
    r = copy_dir(&c, s, c.dstroot); /* closes s */
    if (r == 0)
        r = copy_meta(&c, &st, srcfd, c.dstroot, -1, -1, ".");
out:
    if (c.dstroot >= 0)
        close(c.dstroot);
    for (size_t i = 0; i < c.n_links; i++)
        free(c.links[i].rel);
    free(c.links);
    free(c.buf);
    return r;
}
