/* SPDX-License-Identifier: Apache-2.0 */
/*
 * overlay: snapshots as overlayfs layers. A snapshot's files are its own
 * diff/ directory only; its mount stacks the diff/ of every ancestor as
 * lower layers, so layers are shared by every image and container above
 * them, and a container's writes land in its own diff/ (the upper dir).
 *
 * Layout under the state dir (the store itself is storage-snapdir.c):
 *
 *   snapshots/<name>/diff/   the layer's files, overlay whiteouts included
 *   snapshots/<name>/work/   overlay's work dir for the upper
 *   snapshots/<name>/meta    kind, parent, times, `link` (the short id) and
 *                            `chain` (the ancestors' ids, top first), all in
 *                            the one file written with fsync
 *   l/<ID>                   -> ../snapshots/<name>/diff, ID 8 chars of [A-Z0-9]
 *   empty/                   the lower layer of a base snapshot
 *   probe                    the probe's result, per kernel release
 *
 * Lower layers are named l/<ID> rather than by their snapshot path (which
 * holds a 71-byte ChainID), so that each costs len(state dir) + 11 bytes of
 * mount options. That is still too long for 125+ layers in the one page
 * mount(2) takes: isolation drivers pass layers one at a time with the new
 * mount API's "lowerdir+" (the process driver does, see process-init.c).
 *
 * Mount options and why:
 *  - index=off: the inode index ties a lower layer to one upper; shared
 *    lowers under many containers would be refused ("in use") or tied.
 *  - redirect_dir=off: a renamed lower directory is then copied up whole
 *    instead of leaving a redirect xattr, so diff/ stays a plain layer diff
 *    a tar of it describes completely (commit, export).
 *  - metacopy=off: likewise every changed file's data is in diff/, never
 *    only its metadata with the data left in a lower layer; it is also the
 *    feature that trusts xattrs in lower layers, which hold image content.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <berth/sdk.h>

#include "storage-snapdir.h"

#define OVL_ID_LEN 8
/* overlayfs stacks at most 500 lower layers (OVL_MAX_STACK). */
#define OVL_MAX_LOWERS 500
#define OVL_CAPS       (BERTH_STORAGE_CAP_WHITEOUT_OVERLAY | BERTH_STORAGE_CAP_SHARED_LAYERS)

struct ovl {
    struct snapdir sd;
    int lfd; /* l/ */
    /* Why the state dir can't carry overlay mounts ("" when it can). */
    char unusable[256];
};

/* ---- l/ links ---- */

static int id_ok(const char *s, size_t len)
{
    if (len != OVL_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* Point l/<id> at snapshots/<enc>/diff: a new link renamed over the old one. */
static int link_point(struct ovl *o, const char *id, const char *enc, berth_err_t *err)
{
    char target[SNAPDIR_NAME_MAX + 32], tmp[32];

    snprintf(target, sizeof(target), "../snapshots/%s/diff", enc);
    snprintf(tmp, sizeof(tmp), "%s.n", id);
    unlinkat(o->lfd, tmp, 0);
    if (symlinkat(target, o->lfd, tmp) < 0 || renameat(o->lfd, tmp, o->lfd, id) < 0) {
        int e = errno;
        unlinkat(o->lfd, tmp, 0);
        return berth_err_set(err, -e, "overlay: link l/%s: %s", id, strerror(e));
    }
    return 0;
}

/* Whether l/<id> is the link of a live snapshot (whose meta names that id). */
static int link_is_live(struct ovl *o, const char *id)
{
    char target[PATH_MAX];
    struct snapdir_meta m;
    ssize_t n = readlinkat(o->lfd, id, target, sizeof(target) - 1);
    char *enc, *end;

    if (n < 0)
        return 0;
    target[n] = '\0';
    if (strncmp(target, "../snapshots/", 13) != 0)
        return 0;
    enc = target + 13;
    if (!(end = strchr(enc, '/')) || strcmp(end, "/diff") != 0)
        return 0;
    *end = '\0';
    return storage_snapdir_get(&o->sd, enc, &m, NULL, NULL) == 0 && strcmp(m.link, id) == 0;
}

/*
 * snapdir hook: a dropped snapshot (removed, or a failed prepare) takes its
 * link along. prepare writes the meta (with the id) before the link, so a
 * link made is always named in a meta.
 */
static void ovl_discard(struct snapdir *sd, int dirfd, void *ud)
{
    struct ovl *o = ud;
    struct snapdir_meta m;

    if (storage_snapdir_read_meta_at(dirfd, "meta", &m) < 0 || !id_ok(m.link, strlen(m.link)))
        return;
    /* A snapshot made since may have taken the id: only a dead link goes. */
    if (!link_is_live(o, m.link))
        unlinkat(o->lfd, m.link, 0);
}

/* snapdir hook: a commit renamed the snapshot dir; repoint its link. */
static int ovl_renamed(struct snapdir *sd, const char *enc, int dirfd, void *ud, berth_err_t *err)
{
    struct ovl *o = ud;
    struct snapdir_meta m;
    int r;

    if (storage_snapdir_read_meta_at(dirfd, "meta", &m) < 0 || !m.link[0])
        return 0;
    if ((r = link_point(o, m.link, enc, err)) < 0)
        return r;
    if (fsync(o->lfd) < 0)
        return berth_err_set(err, -errno, "overlay: fsync l/: %s", strerror(errno));
    return 0;
}

/* ---- the ancestors' ids ---- */

/* Whether @chain is "ID:ID:..." of @ret_n valid ids. */
static int chain_parse(const char *chain, uint32_t *ret_n)
{
    size_t len = strlen(chain);
    uint32_t n = len ? (uint32_t)((len + 1) / (OVL_ID_LEN + 1)) : 0;

    if (len && (len + 1) % (OVL_ID_LEN + 1) != 0)
        return -EBADMSG;
    for (uint32_t i = 0; i < n; i++) {
        const char *id = chain + (size_t)i * (OVL_ID_LEN + 1);
        if (!id_ok(id, OVL_ID_LEN) || (i + 1 < n && id[OVL_ID_LEN] != ':'))
            return -EBADMSG;
    }
    *ret_n = n;
    return 0;
}

/*
 * Ids of @m's ancestors, top first, colon-separated, into *ret_ids (malloc):
 * the chain recorded in its meta, or, when that is missing (a parent but no
 * chain), rebuilt from the parents' metas.
 */
static int chain_ids(struct ovl *o, const struct snapdir_meta *m, char **ret_ids, uint32_t *ret_n,
                     berth_err_t *err)
{
    char *ids = NULL, parent[SNAPDIR_NAME_MAX + 1];
    size_t len = 0;
    uint32_t n = 0;

    if ((m->chain[0] || !m->parent[0]) && chain_parse(m->chain, &n) == 0) {
        if (!(*ret_ids = strdup(m->chain)))
            return berth_err_set(err, -ENOMEM, "overlay: out of memory");
        *ret_n = n;
        return 0;
    }
    n = 0;
    snprintf(parent, sizeof(parent), "%s", m->parent);
    if (!(ids = strdup("")))
        return berth_err_set(err, -ENOMEM, "overlay: out of memory");
    while (parent[0]) {
        char enc[SNAPDIR_NAME_MAX + 1];
        struct snapdir_meta pm;
        char *grown;
        int r;

        if (++n > OVL_MAX_LOWERS) {
            free(ids);
            return berth_err_set(err, -ELOOP, "overlay: snapshot %s: parent chain too long",
                                 m->name);
        }
        if ((r = storage_snapdir_encode(&o->sd, parent, enc, err)) < 0 ||
            (r = storage_snapdir_get(&o->sd, enc, &pm, NULL, err)) < 0) {
            free(ids);
            return berth_err_prefix(err, r, "overlay: reading the layer chain");
        }
        if (!id_ok(pm.link, strlen(pm.link))) {
            free(ids);
            return berth_err_set(err, -EBADMSG, "overlay: snapshot %s has no link id", parent);
        }
        if (!(grown = realloc(ids, len + OVL_ID_LEN + 2))) {
            free(ids);
            return berth_err_set(err, -ENOMEM, "overlay: out of memory");
        }
        ids = grown;
        len += (size_t)sprintf(ids + len, "%s%s", len ? ":" : "", pm.link);
        snprintf(parent, sizeof(parent), "%s", pm.parent);
    }
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

/* ---- mounts ---- */

static int make_mounts(struct ovl *o, const char *enc, const struct snapdir_meta *m,
                       berth_mount_list_t **ret_mounts, berth_err_t *err)
{
    const char *root = o->sd.root;
    int ro = (m->flags & BERTH_SNAPSHOT_READONLY) != 0;
    char *ids = NULL, *lower = NULL, *upper = NULL, *work = NULL, *p;
    const char *opts[7];
    uint32_t n = 0, n_opts = 0, n_lowers;
    size_t each = strlen(root) + 3 + OVL_ID_LEN + 1;
    int r;

    if ((r = chain_ids(o, m, &ids, &n, err)) < 0)
        return r;
    /*
     * Overlay needs a lower layer, and without an upper two of them: a base
     * snapshot gets the empty dir; a read-only view shows its own diff on
     * top of its ancestors (or of the empty dir).
     */
    n_lowers = n + (uint32_t)ro + (n == 0);
    if (!(lower = malloc(strlen("lowerdir=") + (size_t)n_lowers * each + strlen(root) + 16))) {
        r = berth_err_set(err, -ENOMEM, "overlay: out of memory");
        goto out;
    }
    p = stpcpy(lower, "lowerdir=");
    if (ro)
        p += sprintf(p, "%s/l/%s:", root, m->link);
    for (char *id = ids; n && *id; id += OVL_ID_LEN + (id[OVL_ID_LEN] == ':'))
        p += sprintf(p, "%s/l/%.*s:", root, OVL_ID_LEN, id);
    if (n == 0)
        p += sprintf(p, "%s/empty:", root);
    p[-1] = '\0';
    opts[n_opts++] = lower;
    if (!ro) {
        if (asprintf(&upper, "upperdir=%s/snapshots/%s/diff", root, enc) < 0)
            upper = NULL;
        if (upper && asprintf(&work, "workdir=%s/snapshots/%s/work", root, enc) < 0)
            work = NULL;
        if (!upper || !work) {
            r = berth_err_set(err, -ENOMEM, "overlay: out of memory");
            goto out;
        }
        opts[n_opts++] = upper;
        opts[n_opts++] = work;
    }
    opts[n_opts++] = "index=off";
    opts[n_opts++] = "redirect_dir=off";
    opts[n_opts++] = "metacopy=off";
    if (ro)
        opts[n_opts++] = "ro";
    r = storage_snapdir_mount_list("overlay", "overlay", ro ? BERTH_MOUNT_F_READONLY : 0, opts,
                                   n_opts, ret_mounts);
    if (r < 0)
        berth_err_set(err, r, "overlay: out of memory");
out:
    free(ids);
    free(lower);
    free(upper);
    free(work);
    return r;
}

static int check_usable(struct ovl *o, berth_err_t *err)
{
    if (o->unusable[0])
        return berth_err_set(err, -EINVAL, "overlay: %s", o->unusable);
    return 0;
}

/* ---- ops ---- */

static int ovl_prepare(void *priv, const char *key, const char *parent,
                       const berth_snapshot_opts_t *opts, uint32_t flags,
                       berth_mount_list_t **ret_mounts, berth_err_t *err)
{
    struct ovl *o = priv;
    struct snapdir_prep prep;
    berth_mount_list_t *mounts = NULL;
    int r;

    if ((r = check_usable(o, err)) < 0)
        return r;
    r = storage_snapdir_prepare_begin(&o->sd, key, parent, opts, flags, &prep, err);
    if (r < 0)
        return r;
    /* The ancestors: the parent's own id on top of the parent's chain. */
    if (prep.parentfd >= 0) {
        char *pids = NULL;
        uint32_t pn = 0;
        r = chain_ids(o, &prep.parent_meta, &pids, &pn, err);
        if (r == 0 && pn + 1 + ((flags & BERTH_SNAPSHOT_READONLY) != 0) > OVL_MAX_LOWERS)
            r = berth_err_set(err, -E2BIG, "overlay: %u layers are more than overlayfs stacks (%d)",
                              pn + 1, OVL_MAX_LOWERS);
        if (r == 0)
            snprintf(prep.meta.chain, sizeof(prep.meta.chain), "%s%s%s", prep.parent_meta.link,
                     pn ? ":" : "", pids);
        free(pids);
    }
    if (r == 0 && (mkdirat(prep.dirfd, "diff", 0755) < 0 || mkdirat(prep.dirfd, "work", 0700) < 0))
        r = berth_err_set(err, -errno, "overlay: snapshot %s: mkdir: %s", key, strerror(errno));
    /*
     * The merged root shows the upper dir's owner and mode: start from the
     * parent's, so that a layer which changed "/" keeps it in every child.
     */
    if (r == 0 && prep.parentfd >= 0) {
        struct stat st;
        if (fstatat(prep.parentfd, "diff", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchownat(prep.dirfd, "diff", st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(prep.dirfd, "diff", st.st_mode & 07777, 0) < 0)
            r = berth_err_set(err, -errno, "overlay: snapshot %s: root dir from %s: %s", key,
                              parent, strerror(errno));
    }
    /*
     * A fresh id whose l/ link is ours alone (symlinkat fails on a taken
     * one). The meta naming it is written first: after a crash, a link is
     * always found through the (discarded) snapshot that made it.
     */
    for (int tries = 0; r == 0; tries++) {
        char target[SNAPDIR_NAME_MAX + 32];
        if ((r = storage_snapdir_random_id(prep.meta.link, OVL_ID_LEN)) < 0) {
            r = berth_err_set(err, r, "overlay: getrandom failed");
            break;
        }
        prep.meta.link[OVL_ID_LEN] = '\0';
        if ((r = storage_snapdir_prepare_write_meta(&o->sd, &prep, err)) < 0)
            break;
        snprintf(target, sizeof(target), "../snapshots/%s/diff", prep.key_enc);
        if (symlinkat(target, o->lfd, prep.meta.link) == 0)
            break;
        if (errno != EEXIST || tries > 16)
            r = berth_err_set(err, -errno, "overlay: link l/%s: %s", prep.meta.link,
                              strerror(errno));
    }
    if (r == 0)
        r = make_mounts(o, prep.key_enc, &prep.meta, &mounts, err);
    /* On failure prepare_end discards the dir, and the discard hook the link. */
    r = storage_snapdir_prepare_end(&o->sd, &prep, r, err);
    if (r < 0) {
        berth_mount_list_free(mounts);
        return r;
    }
    *ret_mounts = mounts;
    return 0;
}

static int ovl_mounts(void *priv, const char *key, uint32_t flags, berth_mount_list_t **ret_mounts,
                      berth_err_t *err)
{
    struct ovl *o = priv;
    char enc[SNAPDIR_NAME_MAX + 1];
    struct snapdir_meta m;
    int r;

    if ((r = check_usable(o, err)) < 0)
        return r;
    if ((r = storage_snapdir_lock(&o->sd, 0, err)) < 0)
        return r;
    r = storage_snapdir_get_active(&o->sd, key, enc, &m, NULL, err);
    if (r == 0)
        r = make_mounts(o, enc, &m, ret_mounts, err);
    storage_snapdir_unlock(&o->sd);
    return r;
}

static int ovl_commit(void *priv, const char *name, const char *key, uint32_t flags,
                      berth_err_t *err)
{
    struct ovl *o = priv;
    return storage_snapdir_op_commit(&o->sd, name, key, "diff", err);
}

static int ovl_remove(void *priv, const char *name, uint32_t flags, berth_err_t *err)
{
    struct ovl *o = priv;
    return storage_snapdir_op_remove(&o->sd, name, err);
}

static int ovl_stat(void *priv, const char *name, uint32_t flags, berth_snapshot_info_t *ret_info,
                    berth_err_t *err)
{
    struct ovl *o = priv;
    return storage_snapdir_op_stat(&o->sd, name, "diff", ret_info, err);
}

static int ovl_walk(void *priv, uint32_t flags, berth_snapshot_walk_fn fn, void *userdata,
                    berth_err_t *err)
{
    struct ovl *o = priv;
    return storage_snapdir_op_walk(&o->sd, "diff", fn, userdata, err);
}

/* The upper dir: the core writes the layer there, whiteouts as overlay keeps them. */
static const char *ovl_diff_dir(void *priv, const char *key)
{
    struct ovl *o = priv;
    return storage_snapdir_op_diff_dir(&o->sd, key, "diff");
}

/* ---- probe ---- */

/*
 * The probe's test, in a child in its own mount namespace so that nothing
 * of it is ever visible on the host, even if it dies half-way: two lower
 * layers, an upper with a whiteout and an opaque dir, and the options
 * mounts() gives. Exit 0 when overlay behaves; otherwise a reason on @fd.
 * Only system calls from here on (the parent may have threads).
 */
static _Noreturn void probe_child(const char *dir, int fd)
{
    int dirfd;
    char opts[PATH_MAX * 4 + 128], merged[PATH_MAX + 8], msg[256];
    const char *step = "unshare";
    struct stat st;
    int n;

    if (unshare(CLONE_NEWNS) < 0)
        goto fail;
    step = "making mounts private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        goto fail;
    /* An fd opened before unshare walks the old namespace's mounts: open it anew. */
    step = "opening the test directory";
    if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        goto fail;
    step = "setting up the test layers";
    if (mkdirat(dirfd, "lower1", 0755) < 0 || mkdirat(dirfd, "lower2", 0755) < 0 ||
        mkdirat(dirfd, "upper", 0755) < 0 || mkdirat(dirfd, "work", 0700) < 0 ||
        mkdirat(dirfd, "merged", 0755) < 0 || mkdirat(dirfd, "lower1/d", 0755) < 0 ||
        mknodat(dirfd, "lower1/gone", S_IFREG | 0644, 0) < 0 ||
        mknodat(dirfd, "lower1/d/hidden", S_IFREG | 0644, 0) < 0 ||
        mknodat(dirfd, "lower2/kept", S_IFREG | 0644, 0) < 0 || mkdirat(dirfd, "upper/d", 0755) < 0)
        goto fail;
    step = "creating a whiteout (mknod c 0 0) in the upper dir";
    if (mknodat(dirfd, "upper/gone", S_IFCHR | 0, makedev(0, 0)) < 0)
        goto fail;
    n = snprintf(opts, sizeof(opts), "%s/upper/d", dir);
    step = "setting trusted.overlay.opaque (needs trusted xattrs)";
    if (n < 0 || (size_t)n >= sizeof(opts) ||
        setxattr(opts, "trusted.overlay.opaque", "y", 1, 0) < 0)
        goto fail;
    n = snprintf(opts, sizeof(opts),
                 "lowerdir=%s/lower2:%s/lower1,upperdir=%s/upper,workdir=%s/work,"
                 "index=off,redirect_dir=off,metacopy=off",
                 dir, dir, dir, dir);
    snprintf(merged, sizeof(merged), "%s/merged", dir);
    step = "mount";
    if (n < 0 || (size_t)n >= sizeof(opts)) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    if (mount("overlay", merged, "overlay", 0, opts) < 0)
        goto fail;
    step = "a whiteout did not hide the lower file";
    if (fstatat(dirfd, "merged/gone", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EINVAL;
        goto fail;
    }
    step = "an opaque dir did not hide the lower dir's files";
    if (fstatat(dirfd, "merged/d/hidden", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EINVAL;
        goto fail;
    }
    step = "a file of the second lower layer is missing";
    if (fstatat(dirfd, "merged/kept", &st, AT_SYMLINK_NOFOLLOW) < 0)
        goto fail;
    step = "writing through the mount";
    if (mknodat(dirfd, "merged/new", S_IFREG | 0644, 0) < 0 ||
        fstatat(dirfd, "upper/new", &st, AT_SYMLINK_NOFOLLOW) < 0)
        goto fail;
    umount2(merged, MNT_DETACH);
    _exit(0);
fail:
    n = snprintf(msg, sizeof(msg), "%s: %s", step, strerror(errno));
    if (n > 0 && write(fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1) < 0)
        _exit(2);
    _exit(1);
}

static int probe_run(struct ovl *o, char *why, size_t whylen)
{
    char tmpname[32], dir[PATH_MAX];
    int dirfd, p[2], status = 0, r = 0;
    ssize_t n = 0;
    pid_t pid;

    why[0] = '\0';
    if (storage_snapdir_begin(&o->sd, tmpname, &dirfd, NULL) < 0) {
        snprintf(why, whylen, "creating a test directory in %s/tmp failed", o->sd.root);
        return -EIO;
    }
    snprintf(dir, sizeof(dir), "%s/tmp/%s", o->sd.root, tmpname);
    if (pipe2(p, O_CLOEXEC) < 0) {
        r = -errno;
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        probe_child(dir, p[1]);
    }
    close(p[1]);
    if (pid < 0) {
        r = -errno;
        snprintf(why, whylen, "fork: %s", strerror(errno));
        close(p[0]);
        goto out;
    }
    while ((n = read(p[0], why, whylen - 1)) < 0 && errno == EINTR)
        ;
    why[n > 0 ? n : 0] = '\0';
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (!why[0])
            snprintf(why, whylen, "the test mount's process failed");
        r = 1; /* a clean "no" */
    }
out:
    close(dirfd);
    storage_snapdir_rmtree(o->sd.tmpfd, tmpname);
    return r;
}

static int ovl_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    struct ovl *o = priv;
    char *cached = NULL, why[256], text[512];
    struct utsname u;
    int r;

    if (o->unusable[0]) {
        berth_err_set(err, -ENOTSUP, "overlay: %s", o->unusable);
        return BERTH_DECLINED;
    }
    if (geteuid() != 0) {
        berth_err_set(err, -ENOTSUP, "overlay: mounting overlayfs needs root (euid is %u)",
                      (unsigned)geteuid());
        return BERTH_DECLINED;
    }
    if (uname(&u) < 0)
        return berth_err_set(err, -errno, "overlay: uname: %s", strerror(errno));
    if ((r = storage_snapdir_lock(&o->sd, 1, err)) < 0)
        return r;
    /* The answer only changes with the kernel (the filesystem is the state dir's). */
    if (storage_snapdir_read_file(o->sd.rootfd, "probe", 1024, &cached, NULL) == 0) {
        size_t rl = strlen(u.release);
        if (strncmp(cached, u.release, rl) == 0 && cached[rl] == '\n') {
            const char *res = cached + rl + 1;
            if (strcmp(res, "ok\n") == 0) {
                r = 0;
                goto done;
            }
            if (strncmp(res, "no ", 3) == 0) {
                snprintf(why, sizeof(why), "%.*s", (int)strcspn(res + 3, "\n"), res + 3);
                r = 1;
                goto done;
            }
        }
    }
    r = probe_run(o, why, sizeof(why));
    if (r >= 0) {
        int n = snprintf(text, sizeof(text), "%s\n%s%s\n", u.release, r == 0 ? "ok" : "no ",
                         r == 0 ? "" : why);
        /* A cache that can't be written only means probing again next time. */
        storage_snapdir_write_file(&o->sd, o->sd.rootfd, "probe", text,
                                   n > 0 && (size_t)n < sizeof(text) ? (size_t)n : 0, 1, NULL);
    }
done:
    free(cached);
    storage_snapdir_unlock(&o->sd);
    if (r < 0)
        return berth_err_set(err, r, "overlay: probe: %s", why);
    if (r > 0) {
        berth_err_set(err, -ENOTSUP, "overlay: does not work on %s (kernel %s): %s", o->sd.root,
                      u.release, why);
        return BERTH_DECLINED;
    }
    *ret_caps = OVL_CAPS;
    return 0;
}

/* ---- init ---- */

static int ovl_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                    berth_err_t *err)
{
    struct ovl *o = calloc(1, sizeof(*o));
    int r;

    if (!o)
        return berth_err_set(err, -ENOMEM, "overlay: out of memory");
    o->lfd = -1;
    r = storage_snapdir_open(&o->sd, "overlay", host->path(ctx, BERTH_PATH_STATE), ovl_discard,
                             ovl_renamed, o, err);
    if (r < 0)
        goto fail;
    /* Mount options separate with ',' (and lowerdir entries with ':'), escaping with '\'. */
    if (strpbrk(o->sd.root, ",:\\"))
        snprintf(o->unusable, sizeof(o->unusable),
                 "the state dir %s has ',', ':' or '\\' in its path, which overlay mount options "
                 "can't carry",
                 o->sd.root);
    if ((mkdirat(o->sd.rootfd, "l", 0700) < 0 && errno != EEXIST) ||
        (mkdirat(o->sd.rootfd, "empty", 0755) < 0 && errno != EEXIST)) {
        r = berth_err_set(err, -errno, "overlay: mkdir in %s: %s", o->sd.root, strerror(errno));
        goto fail;
    }
    o->lfd = openat(o->sd.rootfd, "l", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (o->lfd < 0) {
        r = berth_err_set(err, -errno, "overlay: open %s/l: %s", o->sd.root, strerror(errno));
        goto fail;
    }
    if ((r = storage_snapdir_recover(&o->sd, err)) < 0)
        goto fail;
    *ret_priv = o;
    return 0;

fail:
    if (o->lfd >= 0)
        close(o->lfd);
    storage_snapdir_close(&o->sd);
    free(o);
    return r;
}

static void ovl_fini(void *priv)
{
    struct ovl *o = priv;
    close(o->lfd);
    storage_snapdir_close(&o->sd);
    free(o);
}

static const berth_storage_ops_t ovl_ops = {
    BERTH_OPS_INIT(berth_storage_ops_t),
    .probe = ovl_probe,
    .prepare = ovl_prepare,
    .mounts = ovl_mounts,
    .commit = ovl_commit,
    .remove = ovl_remove,
    .stat = ovl_stat,
    .walk = ovl_walk,
    .diff_dir = ovl_diff_dir,
};

static const berth_plugin_desc_t ovl_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_STORAGE,
    .name = "overlay",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "overlayfs layers shared between images and containers",
    .capabilities = OVL_CAPS,
    .init = ovl_init,
    .fini = ovl_fini,
    .ops = &ovl_ops,
};

BERTH_PLUGIN_DEFINE(ovl_desc)
