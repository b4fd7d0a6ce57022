/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-testkit: conformance tests for a driver module, for driver authors
 * and for berth's own drivers.
 *
 *   berth-testkit [--rootfs DIR] MODULE.so
 *
 * The module is loaded by berth's real loader (so every load-time check
 * applies) into a scratch root, and then the suite for its kind runs
 * against the ops table: the behaviour every driver of that kind must show
 * whatever it does inside (error codes for absent and duplicate objects,
 * handles freed, streams that end, results that parse). Drivers that need
 * a real root filesystem (isolation) get --rootfs.
 *
 * Output is cmocka's; the exit status is the number of failed tests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include <berth/sdk.h>

#include "plugins.h"
#include "util.h"

/* How the process isolation driver mounts overlay snapshots (any number of layers). */
#include "../../plugins/storage/overlay/storage-overlay-mount.h"

struct kit {
    berth_registry_t *reg;
    berth_driver_t *drv;
    char scratch[PATH_MAX];
    const char *rootfs;
    int rootfs_given; /* --rootfs: the driver runs real processes from it */
};

static struct kit kit;

#define OPS(type) ((const type *)kit.drv->ops)
/* snprintf into a fixed buffer, failing the test instead of truncating. */
#define PJOIN(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* ---- every kind ---- */

static void test_kit_descriptor_is_sane(void **state)
{
    const berth_plugin_desc_t *d = kit.drv->desc;
    assert_int_equal(d->abi_major, BERTH_ABI_MAJOR);
    assert_true(d->abi_minor <= BERTH_ABI_MINOR);
    assert_true(berth__driver_name_valid(d->name));
    assert_non_null(d->version);
    assert_true(strlen(d->version) > 0);
    assert_non_null(d->license);
    /* The entry returns the same static descriptor every time. */
    assert_ptr_equal(berth__registry_driver(kit.reg, 0)->desc, d);
}

/* probe: 0 or BERTH_DECLINED, and never claims capabilities the driver doesn't declare. */
static void test_kit_probe_is_consistent(void **state)
{
    int (*probe)(void *, uint32_t, uint64_t *, berth_err_t *) = NULL;
    const berth_ops_header_t *h = kit.drv->ops;
    uint64_t caps = 0;
    berth_err_t err = { 0 };
    int r;

    /* probe is the first slot of every kind's table. */
    if (h->struct_size >= 8 + sizeof(void *))
        memcpy(&probe, (const char *)h + 8, sizeof(probe));
    if (!probe)
        skip();
    r = probe(kit.drv->priv, 0, &caps, &err);
    if (r == BERTH_DECLINED) {
        assert_true(strlen(err.msg) > 0); /* a declining driver says why */
        return;
    }
    assert_int_equal(r, 0);
    assert_int_equal(caps & ~kit.drv->desc->capabilities, 0);
}

/* ---- storage ---- */

/*
 * What the storage tests learn once: the capabilities the driver reports
 * here, whether its mounts are real (the fake driver returns type "fake"),
 * and whether this process can mount them (root, in a private mount
 * namespace of its own so nothing is ever seen, or left, on the host).
 */
static struct {
    uint64_t caps;
    int declined; /* probe said no: the engine wouldn't use the driver here */
    int real;
    int can_mount;
    char why[BERTH_ERR_MSG_MAX + 64];
} kst;

#define SOPS  OPS(berth_storage_ops_t)
#define SPRIV (kit.drv->priv)

/* Skip the calling test when the driver declines to work here. */
#define NEED_USABLE()                                                                              \
    do {                                                                                           \
        if (kst.declined) {                                                                        \
            print_message("skipped: %s\n", kst.why);                                               \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* Skip the calling test unless snapshots can really be mounted here. */
#define NEED_MOUNTS()                                                                              \
    do {                                                                                           \
        if (kst.declined || !kst.real || !kst.can_mount) {                                         \
            print_message("skipped: %s\n", kst.why);                                               \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void kit_prepare(const char *key, const char *parent, uint32_t flags,
                        berth_mount_list_t **ret_mounts)
{
    berth_mount_list_t *m = NULL;
    berth_err_t err = { 0 };
    int r = SOPS->prepare(SPRIV, key, parent, NULL, flags, &m, &err);
    if (r != 0)
        fail_msg("prepare %s on %s: %d (%s)", key, parent ? parent : "(none)", r, err.msg);
    assert_non_null(m);
    if (ret_mounts)
        *ret_mounts = m;
    else
        berth_mount_list_free(m);
}

static void kit_commit(const char *name, const char *key)
{
    berth_err_t err = { 0 };
    int r = SOPS->commit(SPRIV, name, key, 0, &err);
    if (r != 0)
        fail_msg("commit %s as %s: %d (%s)", key, name, r, err.msg);
}

static void kit_remove(const char *name)
{
    berth_err_t err = { 0 };
    int r = SOPS->remove(SPRIV, name, 0, &err);
    if (r != 0)
        fail_msg("remove %s: %d (%s)", name, r, err.msg);
}

static void kit_stat(const char *name, berth_snapshot_info_t *info)
{
    berth_err_t err = { 0 };
    int r;
    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    r = SOPS->stat(SPRIV, name, 0, info, &err);
    if (r != 0)
        fail_msg("stat %s: %d (%s)", name, r, err.msg);
}

/* Mount one mount of a driver's list on @where, the way an isolation driver does. */
static int kit_mount_one(const berth_mount_t *m, const char *where, char *why, size_t whylen)
{
    unsigned long flags = (m->flags & BERTH_MOUNT_F_READONLY) ? MS_RDONLY : 0;
    char data[STORAGE_OVERLAY_LEGACY_MAX] = "";
    int bind = strcmp(m->type, "bind") == 0;
    size_t len = 0;

    if (strcmp(m->type, "overlay") == 0)
        return storage_overlay_mount(m, where, why, whylen);
    for (uint32_t i = 0; i < m->n_options; i++) {
        const char *o = m->options[i];
        if (strcmp(o, "ro") == 0)
            flags |= MS_RDONLY;
        else if (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0)
            bind = 1;
        else if (strcmp(o, "rw") != 0)
            len += (size_t)snprintf(data + len, len < sizeof(data) ? sizeof(data) - len : 0, "%s%s",
                                    len ? "," : "", o);
    }
    if (len >= sizeof(data)) {
        snprintf(why, whylen, "%s: options longer than a page", m->type);
        return -E2BIG;
    }
    if (bind) {
        if (mount(m->source, where, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            ((flags & MS_RDONLY) &&
             mount(NULL, where, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)) {
            snprintf(why, whylen, "bind %s: %s", m->source, strerror(errno));
            return -errno;
        }
        return 0;
    }
    if (mount(m->source, where, m->type, flags, data[0] ? data : NULL) < 0) {
        snprintf(why, whylen, "mount %s (%s): %s", m->source, m->type, strerror(errno));
        return -errno;
    }
    return 0;
}

/* Mount @list (the rootfs entry first) on a new dir under the scratch dir, named in @dir. */
static void kit_mount_list(const berth_mount_list_t *list, char dir[PATH_MAX])
{
    char why[BERTH_ERR_MSG_MAX] = "";

    assert_true(snprintf(dir, PATH_MAX, "%s/mnt-XXXXXX", kit.scratch) < PATH_MAX);
    assert_non_null(mkdtemp(dir));
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < list->n_mounts; i++) {
            const berth_mount_t *m = &list->mounts[i];
            int is_root = !m->target[0] || strcmp(m->target, "/") == 0;
            char where[PATH_MAX];
            if (is_root != (pass == 0))
                continue;
            PJOIN(where, "%s/%s", dir, m->target);
            if (!is_root)
                assert_int_equal(berth__mkdir_p(where, 0755, NULL), 0);
            if (kit_mount_one(m, where, why, sizeof(why)) < 0)
                fail_msg("mounting the snapshot: %s", why);
        }
    }
}

/* Mount what the driver's mounts() gives for @key. */
static void kit_mount_key(const char *key, char dir[PATH_MAX])
{
    berth_mount_list_t *m = NULL;
    berth_err_t err = { 0 };
    int r = SOPS->mounts(SPRIV, key, 0, &m, &err);
    if (r != 0)
        fail_msg("mounts %s: %d (%s)", key, r, err.msg);
    kit_mount_list(m, dir);
    berth_mount_list_free(m);
}

static void kit_umount(const char *dir)
{
    /* Nested mounts (several in one list) go with the rootfs one. */
    if (umount2(dir, 0) < 0 && umount2(dir, MNT_DETACH) < 0)
        fail_msg("umount %s: %s", dir, strerror(errno));
    assert_int_equal(rmdir(dir), 0);
}

/*
 * A directory to write snapshot @key's files in: diff_dir() when the driver
 * has it (what the core uses), otherwise the mounted snapshot.
 */
struct kit_wdir {
    int fd;
    char mnt[PATH_MAX]; /* "" unless mounted */
    char path[PATH_MAX];
};

static void kit_wdir_open(const char *key, struct kit_wdir *w)
{
    const char *d = NULL;

    memset(w, 0, sizeof(*w));
    if (BERTH_OPS_HAS(SOPS, berth_storage_ops_t, diff_dir))
        d = SOPS->diff_dir(SPRIV, key);
    if (d) {
        PJOIN(w->path, "%s", d);
    } else {
        kit_mount_key(key, w->mnt);
        PJOIN(w->path, "%s", w->mnt);
    }
    w->fd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->fd < 0)
        fail_msg("open %s: %s", w->path, strerror(errno));
}

static void kit_wdir_close(struct kit_wdir *w)
{
    close(w->fd);
    if (w->mnt[0])
        kit_umount(w->mnt);
}

/* Replace @name with a file holding @text, as unpacking a layer does (never through a link). */
static void kit_put(int dirfd, const char *name, const char *text, mode_t mode)
{
    size_t len = strlen(text);
    int fd;

    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
        fail_msg("unlink %s: %s", name, strerror(errno));
    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        fail_msg("create %s: %s", name, strerror(errno));
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* A directory entry of a layer: an existing directory (vfs copies the parent's) is kept. */
static void kit_mkdir(int dirfd, const char *name, mode_t mode)
{
    if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", name, strerror(errno));
    assert_int_equal(fchmodat(dirfd, name, mode, 0), 0);
}

/* Assert that @name in @dirfd holds exactly @text. */
static void kit_expect(int dirfd, const char *name, const char *text)
{
    char buf[256];
    ssize_t n;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        fail_msg("%s: %s (expected \"%s\")", name, strerror(errno), text);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    if (strcmp(buf, text) != 0)
        fail_msg("%s holds \"%s\", expected \"%s\"", name, buf, text);
}

static void kit_expect_absent(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        fail_msg("%s is visible, expected it hidden", name);
    assert_int_equal(errno, ENOENT);
}

static int kit_open_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail_msg("open %s: %s", dir, strerror(errno));
    return fd;
}

/* Create layer @name on @parent with the files @put(dirfd, arg) writes. */
static void kit_layer(const char *name, const char *parent, void (*put)(int, const void *),
                      const void *arg)
{
    char key[300];
    struct kit_wdir w;

    PJOIN(key, "kit-active-%s", strchr(name, ':') ? strchr(name, ':') + 1 : name);
    kit_prepare(key, parent, 0, NULL);
    if (put) {
        kit_wdir_open(key, &w);
        put(w.fd, arg);
        kit_wdir_close(&w);
    }
    kit_commit(name, key);
}

static int storage_setup(void **state)
{
    int (*probe)(void *, uint32_t, uint64_t *, berth_err_t *) = SOPS->probe;
    berth_mount_list_t *m = NULL;
    berth_err_t err = { 0 };

    kst.caps = kit.drv->desc->capabilities;
    kst.real = 1;
    snprintf(kst.why, sizeof(kst.why), "mount tests need root");
    if (probe && probe(SPRIV, 0, &kst.caps, &err) != 0) {
        kst.declined = 1;
        snprintf(kst.why, sizeof(kst.why), "the driver declines here: %s", err.msg);
        kst.caps = kit.drv->desc->capabilities;
        return 0;
    }
    if (SOPS->prepare(SPRIV, "kit-setup", NULL, NULL, 0, &m, &err) == 0) {
        /* The fake driver describes snapshots without anything to mount. */
        if (m->n_mounts > 0 && strcmp(m->mounts[0].type, "fake") == 0) {
            kst.real = 0;
            snprintf(kst.why, sizeof(kst.why), "the driver's mounts are not real (type \"fake\")");
        }
        berth_mount_list_free(m);
        SOPS->remove(SPRIV, "kit-setup", 0, &err);
    }
    if (kst.real && geteuid() == 0) {
        if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
            kst.can_mount = 1;
        else
            snprintf(kst.why, sizeof(kst.why), "no private mount namespace: %s", strerror(errno));
    }
    return 0;
}

static void test_kit_storage_snapshot_lifecycle(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    berth_mount_list_t *m = NULL;
    berth_snapshot_info_t info = { .struct_size = sizeof(info) };
    berth_err_t err = { 0 };
    void *p = kit.drv->priv;

    NEED_USABLE();

    assert_int_equal(ops->prepare(p, "kit-base-active", NULL, NULL, 0, &m, &err), 0);
    assert_non_null(m);
    assert_true(m->n_mounts >= 1);
    for (uint32_t i = 0; i < m->n_mounts; i++) {
        assert_non_null(m->mounts[i].type);
        assert_non_null(m->mounts[i].source);
        assert_non_null(m->mounts[i].target);
    }
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->stat(p, "kit-base-active", 0, &info, &err), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_ACTIVE);
    assert_string_equal(info.parent, "");
    assert_true(info.created_ns > 0);

    kit_commit("sha256:kit-base", "kit-base-active");
    assert_int_equal(ops->stat(p, "sha256:kit-base", 0, &info, &err), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_COMMITTED);
    assert_int_equal(ops->stat(p, "kit-base-active", 0, &info, &err), -ENOENT);
    /* A committed snapshot is not mountable as such, nor a diff target. */
    assert_int_equal(ops->mounts(p, "sha256:kit-base", 0, &m, &err), -ENOENT);
    assert_null(m);
    if (BERTH_OPS_HAS(ops, berth_storage_ops_t, diff_dir))
        assert_null(ops->diff_dir(p, "sha256:kit-base"));

    assert_int_equal(ops->prepare(p, "kit-ctr", "sha256:kit-base", NULL, 0, &m, &err), 0);
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->mounts(p, "kit-ctr", 0, &m, &err), 0);
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->stat(p, "kit-ctr", 0, &info, &err), 0);
    assert_string_equal(info.parent, "sha256:kit-base");
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_ACTIVE);

    /* A parent with children can't go; children first. */
    assert_int_equal(ops->remove(p, "sha256:kit-base", 0, &err), -EBUSY);
    kit_remove("kit-ctr");
    kit_remove("sha256:kit-base");
    assert_int_equal(ops->remove(p, "sha256:kit-base", 0, &err), -ENOENT);
}

static void test_kit_storage_errors(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    berth_mount_list_t *m = NULL;
    berth_err_t err = { 0 };
    void *p = kit.drv->priv;

    NEED_USABLE();

    assert_int_equal(ops->prepare(p, "kit-orphan", "sha256:kit-absent", NULL, 0, &m, &err),
                     -ENOENT);
    assert_null(m);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(ops->prepare(p, "kit-dup", NULL, NULL, 0, &m, &err), 0);
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->prepare(p, "kit-dup", NULL, NULL, 0, &m, &err), -EEXIST);
    assert_null(m);
    /* Only committed snapshots can be parents. */
    assert_int_equal(ops->prepare(p, "kit-on-active", "kit-dup", NULL, 0, &m, &err), -ENOENT);
    assert_null(m);
    assert_int_equal(ops->commit(p, "sha256:kit-x", "kit-absent", 0, &err), -ENOENT);
    assert_int_equal(ops->mounts(p, "kit-absent", 0, &m, &err), -ENOENT);
    assert_int_equal(
        ops->stat(p, "kit-absent", 0,
                  &(berth_snapshot_info_t){ .struct_size = sizeof(berth_snapshot_info_t) }, &err),
        -ENOENT);
    /* Committing onto a name that exists: "already unpacked" for the core. */
    assert_int_equal(ops->prepare(p, "kit-dup2", NULL, NULL, 0, &m, &err), 0);
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->commit(p, "kit-dup", "kit-dup2", 0, &err), -EEXIST);
    kit_remove("kit-dup2");
    kit_remove("kit-dup");
}

/* Names are opaque but never paths: what isn't [A-Za-z0-9:._-]{1,255} is refused. */
static void test_kit_storage_names(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    char longest[256], too_long[257];
    const char *bad[] = { "",    ".",     "..", "../kit-escape", "a/b", "/abs",
                          "x y", "tab\t", "ü",  too_long };
    berth_snapshot_info_t info = { .struct_size = sizeof(info) };
    berth_mount_list_t *m = NULL;
    berth_err_t err = { 0 };

    NEED_USABLE();

    if (!kst.real) {
        print_message("skipped: %s (it only keeps names in memory)\n", kst.why);
        skip();
    }
    memset(longest, 'a', 255);
    longest[255] = '\0';
    memset(too_long, 'b', 256);
    too_long[256] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (ops->prepare(SPRIV, bad[i], NULL, NULL, 0, &m, &err) != -EINVAL)
            fail_msg("prepare \"%.20s\" was not refused with -EINVAL", bad[i]);
        assert_null(m);
        assert_true(strlen(err.msg) > 0);
        assert_int_equal(ops->stat(SPRIV, bad[i], 0, &info, &err), -EINVAL);
        assert_int_equal(ops->remove(SPRIV, bad[i], 0, &err), -EINVAL);
    }
    kit_prepare(longest, NULL, 0, NULL);
    assert_int_equal(ops->commit(SPRIV, "../kit-escape", longest, 0, &err), -EINVAL);
    kit_commit("sha256:kit:names.all_-chars", longest);
    kit_stat("sha256:kit:names.all_-chars", &info);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_COMMITTED);
    kit_prepare(longest, "sha256:kit:names.all_-chars", 0, NULL);
    kit_stat(longest, &info);
    assert_string_equal(info.parent, "sha256:kit:names.all_-chars");
    kit_remove(longest);
    kit_remove("sha256:kit:names.all_-chars");
}

static int count_snap(const char *name, const berth_snapshot_info_t *info, void *ud)
{
    if (strncmp(name, "kit-walk-", 9) == 0)
        (*(int *)ud)++;
    return 0;
}

static int stop_walk(const char *name, const berth_snapshot_info_t *info, void *ud)
{
    return 42;
}

/* What walk reports must be what stat says, for each snapshot, once. */
struct walk_seen {
    const char *names[4];
    int seen[4];
};

static int check_walk_entry(const char *name, const berth_snapshot_info_t *info, void *ud)
{
    struct walk_seen *w = ud;
    berth_snapshot_info_t st;
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, w->names[i]) != 0)
            continue;
        w->seen[i]++;
        kit_stat(name, &st);
        assert_int_equal(info->kind, st.kind);
        assert_string_equal(info->parent, st.parent);
        assert_int_equal(info->created_ns, st.created_ns);
        assert_int_equal(info->inodes, st.inodes);
    }
    return 0;
}

static void test_kit_storage_walk(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    struct walk_seen w = {
        .names = { "sha256:kit-walk-base", "sha256:kit-walk-mid", "kit-walk-a", "kit-walk-b" },
    };
    berth_err_t err = { 0 };
    void *p = kit.drv->priv;
    int n = 0;

    NEED_USABLE();

    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof(key), "kit-walk-%d", i);
        kit_prepare(key, NULL, 0, NULL);
    }
    assert_int_equal(ops->walk(p, 0, count_snap, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ops->walk(p, 0, stop_walk, NULL, &err), 42);
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof(key), "kit-walk-%d", i);
        kit_remove(key);
    }

    /* A chain: committed and active snapshots all show, with their parents. */
    kit_layer(w.names[0], NULL, NULL, NULL);
    kit_layer(w.names[1], w.names[0], NULL, NULL);
    kit_prepare(w.names[2], w.names[1], 0, NULL);
    kit_prepare(w.names[3], w.names[0], 0, NULL);
    assert_int_equal(ops->walk(p, 0, check_walk_entry, &w, &err), 0);
    for (int i = 0; i < 4; i++)
        if (w.seen[i] != 1)
            fail_msg("walk reported %s %d times", w.names[i], w.seen[i]);
    kit_remove(w.names[2]);
    kit_remove(w.names[3]);
    kit_remove(w.names[1]);
    kit_remove(w.names[0]);
}

static void test_kit_storage_remove_busy(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    berth_err_t err = { 0 };

    NEED_USABLE();

    kit_layer("sha256:kit-rb", NULL, NULL, NULL);
    kit_prepare("kit-rb-a", "sha256:kit-rb", 0, NULL);
    kit_prepare("kit-rb-b", "sha256:kit-rb", 0, NULL);
    kit_layer("sha256:kit-rb-c", "sha256:kit-rb", NULL, NULL);
    kit_prepare("kit-rb-c-ctr", "sha256:kit-rb-c", 0, NULL);

    assert_int_equal(ops->remove(SPRIV, "sha256:kit-rb", 0, &err), -EBUSY);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(ops->remove(SPRIV, "sha256:kit-rb-c", 0, &err), -EBUSY);
    kit_remove("kit-rb-a");
    assert_int_equal(ops->remove(SPRIV, "sha256:kit-rb", 0, &err), -EBUSY);
    kit_remove("kit-rb-b");
    /* A committed child counts as much as active ones. */
    assert_int_equal(ops->remove(SPRIV, "sha256:kit-rb", 0, &err), -EBUSY);
    kit_remove("kit-rb-c-ctr");
    kit_remove("sha256:kit-rb-c");
    kit_remove("sha256:kit-rb");
    assert_int_equal(
        ops->stat(SPRIV, "sha256:kit-rb", 0,
                  &(berth_snapshot_info_t){ .struct_size = sizeof(berth_snapshot_info_t) }, &err),
        -ENOENT);
}

static void put_da1(int d, const void *arg)
{
    kit_put(d, "hello", "layer one\n", 0644);
    kit_mkdir(d, "dir", 0755);
    kit_mkdir(d, "dir/sub", 0700);
    kit_put(d, "dir/sub/file", "deep\n", 0600);
    assert_int_equal(symlinkat("hello", d, "link"), 0);
    assert_int_equal(linkat(d, "hello", d, "hello-again", 0), 0);
    assert_int_equal(mkfifoat(d, "fifo", 0600), 0);
    kit_put(d, "setuid", "#!/bin/true\n", 04755);
    kit_put(d, "owned", "theirs\n", 0640);
    assert_int_equal(fchownat(d, "owned", 1000, 1000, AT_SYMLINK_NOFOLLOW), 0);
}

static void put_da2(int d, const void *arg)
{
    kit_put(d, "hello", "changed\n", 0644);
    kit_put(d, "child", "layer two\n", 0644);
}

/* Files written into a snapshot, committed, show through its children's mounts. */
static void test_kit_storage_diff_apply(void **state)
{
    char dir[PATH_MAX], link[64];
    struct stat a, b;
    ssize_t n;
    int d;

    NEED_MOUNTS();
    kit_layer("sha256:kit-da-1", NULL, put_da1, NULL);
    kit_layer("sha256:kit-da-2", "sha256:kit-da-1", put_da2, NULL);

    kit_prepare("kit-da-view1", "sha256:kit-da-1", 0, NULL);
    kit_mount_key("kit-da-view1", dir);
    d = kit_open_dir(dir);
    kit_expect(d, "hello", "layer one\n");
    /* Hard links in a layer stay one inode. */
    assert_int_equal(fstatat(d, "hello", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(fstatat(d, "hello-again", &b, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    assert_int_equal(a.st_nlink, 2);
    close(d);
    kit_umount(dir);

    kit_prepare("kit-da-ctr", "sha256:kit-da-2", 0, NULL);
    kit_mount_key("kit-da-ctr", dir);
    d = kit_open_dir(dir);
    kit_expect(d, "hello", "changed\n");
    kit_expect(d, "hello-again", "layer one\n");
    kit_expect(d, "child", "layer two\n");
    kit_expect(d, "dir/sub/file", "deep\n");
    assert_int_equal(fstatat(d, "dir/sub", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(a.st_mode & 07777, 0700);
    assert_int_equal(fstatat(d, "dir/sub/file", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(a.st_mode & 07777, 0600);
    n = readlinkat(d, "link", link, sizeof(link) - 1);
    assert_int_equal(n, 5);
    link[n] = '\0';
    assert_string_equal(link, "hello");
    assert_int_equal(fstatat(d, "fifo", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISFIFO(a.st_mode));
    assert_int_equal(fstatat(d, "setuid", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(a.st_mode & 07777, 04755);
    assert_int_equal(fstatat(d, "owned", &a, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(a.st_uid, 1000);
    assert_int_equal(a.st_gid, 1000);
    assert_int_equal(a.st_mode & 07777, 0640);
    close(d);
    kit_umount(dir);

    kit_remove("kit-da-ctr");
    kit_remove("kit-da-view1");
    kit_remove("sha256:kit-da-2");
    kit_remove("sha256:kit-da-1");
}

static void put_wo1(int d, const void *arg)
{
    kit_put(d, "gone", "x\n", 0644);
    kit_put(d, "keep", "k\n", 0644);
    kit_mkdir(d, "opq", 0755);
    kit_put(d, "opq/a", "a\n", 0644);
    kit_put(d, "opq/b", "b\n", 0644);
    kit_mkdir(d, "plain", 0755);
    kit_put(d, "plain/c", "c\n", 0644);
}

/* The child layer deletes "gone" and replaces the contents of "opq". */
static void put_wo2(int d, const void *arg)
{
    const char *path = arg; /* the dir @d names, for setxattr */
    char opq[PATH_MAX];

    if (kst.caps & BERTH_STORAGE_CAP_WHITEOUT_OVERLAY) {
        /* The driver keeps overlay-style whiteouts: what the core writes for deletions. */
        assert_int_equal(mknodat(d, "gone", S_IFCHR | 0, makedev(0, 0)), 0);
        kit_mkdir(d, "opq", 0755);
        PJOIN(opq, "%s/opq", path);
        assert_int_equal(setxattr(opq, "trusted.overlay.opaque", "y", 1, 0), 0);
    } else {
        /* Otherwise the core deletes in the snapshot itself. */
        assert_int_equal(unlinkat(d, "gone", 0), 0);
        assert_int_equal(unlinkat(d, "opq/a", 0), 0);
        assert_int_equal(unlinkat(d, "opq/b", 0), 0);
    }
    kit_put(d, "opq/new", "new\n", 0644);
}

static void test_kit_storage_whiteouts(void **state)
{
    struct kit_wdir w;
    char dir[PATH_MAX];
    int d;

    NEED_MOUNTS();
    if ((kst.caps & BERTH_STORAGE_CAP_WHITEOUT_OVERLAY) &&
        !BERTH_OPS_HAS(SOPS, berth_storage_ops_t, diff_dir))
        fail_msg("a driver with overlay whiteouts needs diff_dir: a mount can't hold them");
    kit_layer("sha256:kit-wo-1", NULL, put_wo1, NULL);
    kit_prepare("kit-active-wo-2", "sha256:kit-wo-1", 0, NULL);
    kit_wdir_open("kit-active-wo-2", &w);
    put_wo2(w.fd, w.path);
    kit_wdir_close(&w);
    kit_commit("sha256:kit-wo-2", "kit-active-wo-2");

    kit_prepare("kit-wo-ctr", "sha256:kit-wo-2", 0, NULL);
    kit_mount_key("kit-wo-ctr", dir);
    d = kit_open_dir(dir);
    kit_expect_absent(d, "gone");
    kit_expect(d, "keep", "k\n");
    kit_expect_absent(d, "opq/a");
    kit_expect_absent(d, "opq/b");
    kit_expect(d, "opq/new", "new\n");
    kit_expect(d, "plain/c", "c\n");
    close(d);
    kit_umount(dir);

    /* The parent layer is as it was. */
    kit_prepare("kit-wo-ctr1", "sha256:kit-wo-1", 0, NULL);
    kit_mount_key("kit-wo-ctr1", dir);
    d = kit_open_dir(dir);
    kit_expect(d, "gone", "x\n");
    kit_expect(d, "opq/a", "a\n");
    kit_expect_absent(d, "opq/new");
    close(d);
    kit_umount(dir);

    kit_remove("kit-wo-ctr1");
    kit_remove("kit-wo-ctr");
    kit_remove("sha256:kit-wo-2");
    kit_remove("sha256:kit-wo-1");
}

static void put_rf1(int d, const void *arg)
{
    kit_mkdir(d, "etc", 0755);
    kit_put(d, "etc/os", "one\n", 0644);
    kit_mkdir(d, "bin", 0755);
    kit_put(d, "bin/tool", "t1\n", 0755);
}

static void put_rf2(int d, const void *arg)
{
    kit_mkdir(d, "etc", 0755);
    kit_put(d, "etc/os", "two\n", 0644);
    kit_mkdir(d, "lib", 0755);
    kit_put(d, "lib/x", "x\n", 0644);
}

static void put_rf3(int d, const void *arg)
{
    kit_put(d, "app", "app\n", 0755);
}

/* Check what a fresh container on the three layers must see. */
static void expect_rf_layers(int d)
{
    kit_expect(d, "etc/os", "two\n");
    kit_expect(d, "bin/tool", "t1\n");
    kit_expect(d, "lib/x", "x\n");
    kit_expect(d, "app", "app\n");
}

/* A container's rootfs: prepare on a 3-layer image, write, release; the image is untouched. */
static void test_kit_storage_rootfs(void **state)
{
    const char *ctr = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *ctr2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    berth_mount_list_t *m = NULL;
    char dir[PATH_MAX];
    int d;

    NEED_MOUNTS();
    kit_layer("sha256:kit-rf-1", NULL, put_rf1, NULL);
    kit_layer("sha256:kit-rf-2", "sha256:kit-rf-1", put_rf2, NULL);
    kit_layer("sha256:kit-rf-3", "sha256:kit-rf-2", put_rf3, NULL);

    /* The mounts prepare returns are the container's rootfs as they are. */
    kit_prepare(ctr, "sha256:kit-rf-3", 0, &m);
    kit_mount_list(m, dir);
    berth_mount_list_free(m);
    d = kit_open_dir(dir);
    expect_rf_layers(d);
    kit_put(d, "app-data", "mine\n", 0644);
    {
        int fd = openat(d, "etc/os", O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "edited\n", 7), 7);
        close(fd);
    }
    assert_int_equal(unlinkat(d, "lib/x", 0), 0);
    kit_mkdir(d, "var", 0755);
    close(d);
    kit_umount(dir);

    /* Mounted again (mounts()), the container's changes are there. */
    kit_mount_key(ctr, dir);
    d = kit_open_dir(dir);
    kit_expect(d, "app-data", "mine\n");
    kit_expect(d, "etc/os", "edited\n");
    kit_expect_absent(d, "lib/x");
    kit_expect(d, "bin/tool", "t1\n");
    close(d);
    kit_umount(dir);
    kit_remove(ctr);

    /* The layers didn't change: a new container sees the image as it was. */
    kit_prepare(ctr2, "sha256:kit-rf-3", 0, NULL);
    kit_mount_key(ctr2, dir);
    d = kit_open_dir(dir);
    expect_rf_layers(d);
    kit_expect_absent(d, "app-data");
    kit_expect_absent(d, "var");
    close(d);
    kit_umount(dir);
    kit_remove(ctr2);
    kit_remove("sha256:kit-rf-3");
    kit_remove("sha256:kit-rf-2");
    kit_remove("sha256:kit-rf-1");
}

static void put_ro(int d, const void *arg)
{
    kit_put(d, "f", "base\n", 0644);
}

/* A read-only prepare shows the parent and refuses writes. */
static void test_kit_storage_readonly(void **state)
{
    berth_mount_list_t *m = NULL;
    char dir[PATH_MAX];
    int d, fd;

    NEED_MOUNTS();
    kit_layer("sha256:kit-ro", NULL, put_ro, NULL);
    kit_prepare("kit-ro-view", "sha256:kit-ro", BERTH_SNAPSHOT_READONLY, &m);
    kit_mount_list(m, dir);
    berth_mount_list_free(m);
    d = kit_open_dir(dir);
    kit_expect(d, "f", "base\n");
    fd = openat(d, "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        fail_msg("a read-only snapshot's mount took a new file");
    assert_int_equal(errno, EROFS);
    close(d);
    kit_umount(dir);
    kit_remove("kit-ro-view");
    kit_remove("sha256:kit-ro");
}

/* Usage: what a snapshot alone holds, each inode once. */
static void test_kit_storage_usage(void **state)
{
    berth_snapshot_info_t s0, s1, s2, s3;
    struct kit_wdir w;
    char *big;
    const size_t mib = 1024 * 1024;
    int fd;

    NEED_USABLE();

    if (!kst.real || (!BERTH_OPS_HAS(SOPS, berth_storage_ops_t, diff_dir) && !kst.can_mount)) {
        print_message("skipped: %s\n", kst.why);
        skip();
    }
    kit_prepare("kit-usage", NULL, 0, NULL);
    kit_stat("kit-usage", &s0);
    kit_wdir_open("kit-usage", &w);
    big = malloc(mib);
    assert_non_null(big);
    for (size_t i = 0; i < mib; i++)
        big[i] = (char)('a' + i % 26);
    fd = openat(w.fd, "big", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, big, mib), (ssize_t)mib);
    assert_int_equal(fsync(fd), 0);
    close(fd);
    free(big);
    kit_mkdir(w.fd, "u", 0755);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof(name), "u/f%d", i);
        kit_put(w.fd, name, "0123456789", 0644);
    }
    kit_wdir_close(&w);
    kit_stat("kit-usage", &s1);
    /* One big file, one dir, ten small files. */
    assert_int_equal(s1.inodes - s0.inodes, 12);
    assert_true(s1.size_bytes >= s0.size_bytes + mib);
    assert_true(s1.size_bytes <= s0.size_bytes + mib + 256 * 1024);

    /* A second name for the big file adds no inode and no data. */
    kit_wdir_open("kit-usage", &w);
    assert_int_equal(linkat(w.fd, "big", w.fd, "big-link", 0), 0);
    kit_wdir_close(&w);
    kit_stat("kit-usage", &s2);
    assert_int_equal(s2.inodes, s1.inodes);
    assert_true(s2.size_bytes < s1.size_bytes + 64 * 1024);

    kit_commit("sha256:kit-usage", "kit-usage");
    kit_stat("sha256:kit-usage", &s3);
    assert_int_equal(s3.inodes, s2.inodes);
    assert_int_equal(s3.size_bytes, s2.size_bytes);
    kit_remove("sha256:kit-usage");
}

#define KIT_MANY_LAYERS 130

static void put_many(int d, const void *arg)
{
    int i = *(const int *)arg;
    char name[32], text[32];
    snprintf(name, sizeof(name), "layer-%03d", i);
    snprintf(text, sizeof(text), "%d\n", i);
    kit_put(d, name, text, 0644);
    kit_put(d, "shared", text, 0644);
    if (i == 1)
        kit_put(d, "bottom", "bottom\n", 0644);
    if (i == KIT_MANY_LAYERS)
        kit_put(d, "top", "top\n", 0644);
}

/*
 * 130 layers: more than mount(2)'s one page of options holds for overlay's
 * lowerdir. The chain must still mount and show the bottom and the top.
 */
static void test_kit_storage_many_layers(void **state)
{
    char name[64], parent[64] = "", dir[PATH_MAX], text[32];
    int d;

    NEED_USABLE();

    for (int i = 1; i <= KIT_MANY_LAYERS; i++) {
        snprintf(name, sizeof(name), "sha256:kit-ml-%03d", i);
        kit_layer(name, parent[0] ? parent : NULL, kst.real && kst.can_mount ? put_many : NULL, &i);
        snprintf(parent, sizeof(parent), "%s", name);
    }
    kit_prepare("kit-ml-ctr", parent, 0, NULL);
    if (kst.real && kst.can_mount) {
        kit_mount_key("kit-ml-ctr", dir);
        d = kit_open_dir(dir);
        kit_expect(d, "bottom", "bottom\n");
        kit_expect(d, "top", "top\n");
        kit_expect(d, "layer-001", "1\n");
        kit_expect(d, "layer-065", "65\n");
        snprintf(text, sizeof(text), "%d\n", KIT_MANY_LAYERS);
        kit_expect(d, "shared", text);
        close(d);
        kit_umount(dir);
    } else {
        print_message("mount check skipped: %s\n", kst.why);
    }
    kit_remove("kit-ml-ctr");
    for (int i = KIT_MANY_LAYERS; i >= 1; i--) {
        snprintf(name, sizeof(name), "sha256:kit-ml-%03d", i);
        kit_remove(name);
    }
}

/* ---- network ---- */

static void test_kit_network_attach_detach(void **state)
{
    const berth_network_ops_t *ops = OPS(berth_network_ops_t);
    berth_network_spec_t net = {
        .struct_size = sizeof(net),
        .id = "0000000000000000000000000000000000000000000000000000000000000001",
        .name = "kit",
        .config_json = "{}",
    };
    berth_net_attach_t attach = { .struct_size = sizeof(attach), .type = BERTH_NET_ATTACH_NONE };
    berth_endpoint_spec_t ep = {
        .struct_size = sizeof(ep),
        .network = &net,
        .container_id = net.id,
        .ifname = "eth0",
        .attach = &attach,
        .request_json = "{}",
    };
    berth_blob_t *state_blob = NULL, *result = NULL;
    berth_err_t err = { 0 };
    json_error_t jerr;
    json_t *parsed;

    assert_int_equal(ops->network_create(kit.drv->priv, &net, 0, &state_blob, &err), 0);
    if (state_blob) {
        parsed = json_loads(state_blob->data, 0, &jerr);
        assert_non_null(parsed);
        json_decref(parsed);
        berth_blob_release(state_blob);
    }
    assert_int_equal(ops->endpoint_attach(kit.drv->priv, &ep, 0, &result, &err), 0);
    assert_non_null(result);
    /* Results are CNI-format JSON the core stores and hands back. */
    parsed = json_loads(result->data, 0, &jerr);
    assert_non_null(parsed);
    assert_true(json_is_string(json_object_get(parsed, "cniVersion")));
    json_decref(parsed);
    assert_int_equal(strlen(result->data), result->len);
    assert_int_equal(ops->endpoint_detach(kit.drv->priv, &ep, result->data, 0, &err), 0);
    /* Detach must also work when the result was lost. */
    assert_int_equal(ops->endpoint_detach(kit.drv->priv, &ep, NULL, 0, &err), 0);
    berth_blob_release(result);
    assert_int_equal(ops->network_delete(kit.drv->priv, &net, 0, &err), 0);
    /* Deleting what is already gone is not an error. */
    assert_int_equal(ops->network_delete(kit.drv->priv, &net, 0, &err), 0);
}

/* ---- image ---- */

static void test_kit_image_resolve_and_fetch(void **state)
{
    const berth_image_ops_t *ops = OPS(berth_image_ops_t);
    const char *loc_env = getenv("BERTH_TESTKIT_IMAGE_LOCATION");
    berth_image_location_t loc = {
        .struct_size = sizeof(loc),
        .location = loc_env ? loc_env : "fake",
        .options_json = "{}",
    };
    berth_descriptor_t desc = { .struct_size = sizeof(desc) };
    berth_stream_t *s = NULL;
    berth_err_t err = { 0 };
    void *session = NULL;
    char buf[4096];
    int64_t total = 0, n;

    assert_int_equal(ops->match(kit.drv->priv, loc.location, 0), 0);
    assert_int_equal(ops->open(kit.drv->priv, &loc, 0, &session, &err), 0);
    assert_int_equal(ops->resolve(kit.drv->priv, session, NULL, 0, &desc, &err), 0);
    assert_true(strlen(desc.media_type) > 0);
    assert_true(strncmp(desc.digest, "sha256:", 7) == 0);
    assert_int_equal(ops->fetch(kit.drv->priv, session, &desc, 0, 0, &s, &err), 0);
    while ((n = s->read(s, buf, sizeof(buf), &err)) > 0)
        total += n;
    assert_int_equal(n, 0);
    if (desc.size >= 0)
        assert_int_equal(total, desc.size);
    s->close(s);
    /* A reference the source does not hold is -ENOENT, with a reason. */
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(kit.drv->priv, session, "kit/absent:none", 0, &desc, &err),
                     -ENOENT);
    assert_true(strlen(err.msg) > 0);
    ops->close(kit.drv->priv, session);
}

/* ---- isolation ---- */

static void make_id(char id[65], int n)
{
    snprintf(id, 65, "%064x", n);
}

static void test_kit_isolation_sandbox(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    char id[65], dir[PATH_MAX];
    berth_sandbox_spec_t spec = { .struct_size = sizeof(spec), .config_json = "{}" };
    berth_net_attach_t attach = { .struct_size = sizeof(attach) };
    berth_err_t err = { 0 };
    void *sb = NULL;

    make_id(id, 1);
    PJOIN(dir, "%s/sandbox-1", kit.scratch);
    assert_int_equal(berth__mkdir_p(dir, 0700, NULL), 0);
    spec.id = id;
    spec.state_dir = dir;
    assert_int_equal(ops->sandbox_create(kit.drv->priv, &spec, 0, &sb, &err), 0);
    assert_non_null(sb);
    assert_int_equal(ops->sandbox_network(kit.drv->priv, sb, 0, &attach, &err), 0);
    assert_true(attach.type <= BERTH_NET_ATTACH_TAP);
    if (attach.type != BERTH_NET_ATTACH_NONE)
        assert_true(strlen(attach.path) > 0);
    assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, 0, &err), 0);
}

static void test_kit_isolation_container_lifecycle(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    char id[65], sdir[PATH_MAX], cdir[PATH_MAX], spec_json[PATH_MAX + 256];
    berth_sandbox_spec_t sspec = { .struct_size = sizeof(sspec), .config_json = "{}" };
    berth_mount_t root = { .struct_size = sizeof(root), .type = "bind", .target = "" };
    berth_mount_list_t rootfs = { .struct_size = sizeof(rootfs), .n_mounts = 1, .mounts = &root };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio), .in = -1, .out = -1, .err = -1 };
    berth_container_spec_t cspec = { .struct_size = sizeof(cspec) };
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    void *sb = NULL, *ctr = NULL, *proc;

    make_id(id, 2);
    PJOIN(sdir, "%s/sandbox-2", kit.scratch);
    PJOIN(cdir, "%s/container-2", kit.scratch);
    assert_int_equal(berth__mkdir_p(sdir, 0700, NULL), 0);
    assert_int_equal(berth__mkdir_p(cdir, 0700, NULL), 0);
    root.source = kit.rootfs;
    /* A process that runs until signalled, as `sleep` in any rootfs would. */
    snprintf(spec_json, sizeof(spec_json),
             "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"/bin/sleep\",\"1000\"],"
             "\"cwd\":\"/\",\"env\":[\"PATH=/bin:/usr/bin\"]},\"root\":{\"path\":\"%s\"}}",
             kit.rootfs);
    sspec.id = id;
    sspec.state_dir = sdir;
    cspec.id = id;
    cspec.state_dir = cdir;
    cspec.oci_spec_json = spec_json;
    cspec.rootfs = &rootfs;
    cspec.stdio = &stdio;

    assert_int_equal(ops->sandbox_create(kit.drv->priv, &sspec, 0, &sb, &err), 0);
    assert_int_equal(ops->container_create(kit.drv->priv, sb, &cspec, 0, &ctr, &err), 0);
    assert_int_equal(ops->container_start(kit.drv->priv, ctr, 0, &err), 0);
    proc = ops->container_init_process(kit.drv->priv, ctr);
    assert_non_null(proc);
    assert_int_equal(ops->process_wait(kit.drv->priv, proc, BERTH_WAIT_NOHANG, &st, &err), -EAGAIN);
    if (BERTH_OPS_HAS(ops, berth_isolation_ops_t, container_pause) &&
        (kit.drv->caps & BERTH_ISOLATION_CAP_PAUSE)) {
        assert_int_equal(ops->container_pause(kit.drv->priv, ctr, 0, &err), 0);
        assert_int_equal(ops->container_resume(kit.drv->priv, ctr, 0, &err), 0);
    }
    assert_int_equal(ops->process_signal(kit.drv->priv, proc, SIGKILL, 0, &err), 0);
    /* The kill lands asynchronously in real drivers: a blocking wait collects it. */
    assert_int_equal(ops->process_wait(kit.drv->priv, proc, 0, &st, &err), 0);
    assert_int_equal(st.signal, SIGKILL);
    assert_int_equal(st.exit_code, 128 + SIGKILL);
    assert_int_equal(ops->container_delete(kit.drv->priv, ctr, 0, &err), 0);
    assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, 0, &err), 0);
}

/* ---- isolation, with a real rootfs: what a process sees and returns ---- */

/*
 * Create and start a container running @args (a JSON array text) with
 * stdout on a pipe; returns the read end in *ret_out and the handles.
 */
static void start_with_pipe(const char *args, int n, void **ret_sb, void **ret_ctr, int *ret_out)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    char id[65], sdir[PATH_MAX], cdir[PATH_MAX], spec_json[2 * PATH_MAX];
    berth_sandbox_spec_t sspec = { .struct_size = sizeof(sspec), .config_json = "{}" };
    static berth_mount_t root = { .struct_size = sizeof(root), .type = "bind", .target = "" };
    static const char *const rbind[] = { "rbind" };
    berth_mount_list_t rootfs = { .struct_size = sizeof(rootfs), .n_mounts = 1, .mounts = &root };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio), .in = -1, .err = -1 };
    berth_container_spec_t cspec = { .struct_size = sizeof(cspec) };
    berth_err_t err = { 0 };
    int p[2];

    make_id(id, n);
    PJOIN(sdir, "%s/sandbox-%d", kit.scratch, n);
    PJOIN(cdir, "%s/container-%d", kit.scratch, n);
    assert_int_equal(berth__mkdir_p(sdir, 0700, NULL), 0);
    assert_int_equal(berth__mkdir_p(cdir, 0700, NULL), 0);
    root.source = kit.rootfs;
    root.options = rbind;
    root.n_options = 1;
    PJOIN(spec_json,
          "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":%s,\"cwd\":\"/\","
          "\"env\":[\"PATH=/bin:/usr/bin\"]},\"root\":{\"path\":\"%s\"},"
          "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"}],"
          "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}]}}",
          args, kit.rootfs);
    assert_int_equal(pipe(p), 0);
    stdio.out = p[1];
    sspec.id = id;
    sspec.state_dir = sdir;
    cspec.id = id;
    cspec.state_dir = cdir;
    cspec.oci_spec_json = spec_json;
    cspec.rootfs = &rootfs;
    cspec.stdio = &stdio;
    assert_int_equal(ops->sandbox_create(kit.drv->priv, &sspec, 0, ret_sb, &err), 0);
    if (ops->container_create(kit.drv->priv, *ret_sb, &cspec, 0, ret_ctr, &err) != 0)
        fail_msg("container_create: %s", err.msg);
    /* The driver duplicated what it needed: our write end must not keep the pipe open. */
    close(p[1]);
    if (ops->container_start(kit.drv->priv, *ret_ctr, 0, &err) != 0)
        fail_msg("container_start: %s", err.msg);
    *ret_out = p[0];
}

static void finish_container(void *sb, void *ctr)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    berth_err_t err = { 0 };
    assert_int_equal(ops->container_delete(kit.drv->priv, ctr, 0, &err), 0);
    assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, 0, &err), 0);
}

/* Host processes whose command line contains @marker (the container's, seen from the host). */
static int count_marked_processes(const char *marker)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d))) {
        char path[300], buf[512];
        ssize_t len;
        int fd;
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue; /* zombies have no command line: they are being reaped */
        for (ssize_t i = 0; i < len; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[len] = '\0';
        if (strstr(buf, marker))
            n++;
    }
    closedir(d);
    return n;
}

/* Whether @path is @dir or below it. */
static int path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return dir[0] && strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/*
 * The mounts in this mount namespace on the kit's scratch dir or the given
 * rootfs, or below them: what a driver under test can leave. Not every
 * mount of the namespace: other processes on the host mount and unmount
 * at the same time.
 */
static int count_kit_mounts(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[8192], target[PATH_MAX];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        /* id parent major:minor root mount-point ...; octal escapes don't matter here. */
        if (sscanf(line, "%*s %*s %*s %*s %4095s", target) == 1 &&
            (path_under(target, kit.scratch) || (kit.rootfs && path_under(target, kit.rootfs))))
            n++;
    }
    fclose(f);
    return n;
}

/*
 * Cleanup: force-deleting a running container ends its process, and
 * deleting container and sandbox leaves no mount behind in the caller's
 * mount namespace (for a VM driver only the latter: its processes are the
 * guest's).
 */
static void test_kit_isolation_cleanup(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    berth_err_t err = { 0 };
    void *sb = NULL, *ctr = NULL;
    char marker[32], args[160];
    int out, mounts_before, left = -1;

    if (!kit.rootfs_given) {
        skip(); /* needs a rootfs with /bin/sh and /bin/sleep */
        return;
    }
    /* A sleep length no other process on the host has. */
    snprintf(marker, sizeof(marker), "%d", 900000 + (int)(getpid() % 99999));
    snprintf(args, sizeof(args), "[\"/bin/sleep\",\"%s\"]", marker);
    mounts_before = count_kit_mounts();
    start_with_pipe(args, 9, &sb, &ctr, &out);
    close(out);
    /*
     * A VM driver's processes run in its guest, invisible here: only what
     * it leaves on the host (mounts) can be checked from outside.
     */
    if (kit.drv->caps & BERTH_ISOLATION_CAP_VM) {
        assert_int_equal(ops->container_delete(kit.drv->priv, ctr, BERTH_DELETE_FORCE, &err), 0);
        assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, BERTH_DELETE_FORCE, &err), 0);
        assert_int_equal(count_kit_mounts(), mounts_before);
        return;
    }
    for (int i = 0; i < 100 && count_marked_processes(marker) < 1; i++)
        usleep(20000);
    assert_int_equal(count_marked_processes(marker), 1);
    assert_int_equal(ops->container_delete(kit.drv->priv, ctr, BERTH_DELETE_FORCE, &err), 0);
    assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, BERTH_DELETE_FORCE, &err), 0);
    /* Killed processes are reaped asynchronously by whoever is their parent now. */
    for (int i = 0; i < 50 && left != 0; i++) {
        left = count_marked_processes(marker);
        if (left)
            usleep(20000);
    }
    assert_int_equal(left, 0);
    assert_int_equal(count_kit_mounts(), mounts_before);
}

static void test_kit_isolation_stdio_and_exit_code(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    void *sb = NULL, *ctr = NULL;
    char buf[256] = "";
    ssize_t n, got = 0;
    int out;

    if (!kit.rootfs_given) {
        print_message("skipped: needs --rootfs DIR (a driver that runs real processes)\n");
        skip();
    }
    start_with_pipe("[\"/bin/sh\",\"-c\",\"echo conformant; exit 3\"]", 3, &sb, &ctr, &out);
    while ((n = read(out, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += n;
    close(out);
    assert_string_equal(buf, "conformant\n");
    assert_int_equal(ops->process_wait(kit.drv->priv,
                                       ops->container_init_process(kit.drv->priv, ctr), 0, &st,
                                       &err),
                     0);
    assert_int_equal(st.exit_code, 3);
    assert_int_equal(st.signal, 0);
    finish_container(sb, ctr);
}

static void test_kit_isolation_exec(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio), .in = -1, .err = -1 };
    berth_process_spec_t ps = { .struct_size = sizeof(ps) };
    berth_err_t err = { 0 };
    void *sb = NULL, *ctr = NULL, *proc = NULL;
    char buf[256] = "";
    ssize_t n, got = 0;
    int out, p[2];

    if (!kit.rootfs_given || !(kit.drv->caps & BERTH_ISOLATION_CAP_EXEC) ||
        !BERTH_OPS_HAS(ops, berth_isolation_ops_t, process_exec)) {
        print_message("skipped: needs --rootfs DIR and a driver with the exec capability\n");
        skip();
    }
    start_with_pipe("[\"/bin/sleep\",\"1000\"]", 4, &sb, &ctr, &out);
    close(out);
    assert_int_equal(pipe(p), 0);
    stdio.out = p[1];
    ps.id = "kit-exec";
    ps.process_json = "{\"args\":[\"/bin/sh\",\"-c\",\"echo from-exec; exit 4\"],\"cwd\":\"/\","
                      "\"env\":[\"PATH=/bin\"]}";
    ps.stdio = &stdio;
    if (ops->process_exec(kit.drv->priv, ctr, &ps, 0, &proc, &err) != 0)
        fail_msg("process_exec: %s", err.msg);
    close(p[1]);
    while ((n = read(p[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += n;
    close(p[0]);
    assert_string_equal(buf, "from-exec\n");
    assert_int_equal(ops->process_wait(kit.drv->priv, proc, 0, &st, &err), 0);
    assert_int_equal(st.exit_code, 4);
    if (BERTH_OPS_HAS(ops, berth_isolation_ops_t, process_release))
        ops->process_release(kit.drv->priv, proc);
    /* Deleting with FORCE ends what still runs (the sleep). */
    assert_int_equal(ops->process_signal(kit.drv->priv,
                                         ops->container_init_process(kit.drv->priv, ctr), SIGKILL,
                                         0, &err),
                     0);
    assert_int_equal(ops->process_wait(kit.drv->priv,
                                       ops->container_init_process(kit.drv->priv, ctr), 0, &st,
                                       &err),
                     0);
    finish_container(sb, ctr);
}

static int run_suites(void)
{
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_kit_descriptor_is_sane),
        cmocka_unit_test(test_kit_probe_is_consistent),
    };
    const struct CMUnitTest storage[] = {
        cmocka_unit_test(test_kit_storage_snapshot_lifecycle),
        cmocka_unit_test(test_kit_storage_errors),
        cmocka_unit_test(test_kit_storage_names),
        cmocka_unit_test(test_kit_storage_walk),
        cmocka_unit_test(test_kit_storage_remove_busy),
        cmocka_unit_test(test_kit_storage_diff_apply),
        cmocka_unit_test(test_kit_storage_whiteouts),
        cmocka_unit_test(test_kit_storage_rootfs),
        cmocka_unit_test(test_kit_storage_readonly),
        cmocka_unit_test(test_kit_storage_usage),
        cmocka_unit_test(test_kit_storage_many_layers),
    };
    const struct CMUnitTest network[] = {
        cmocka_unit_test(test_kit_network_attach_detach),
    };
    const struct CMUnitTest image[] = {
        cmocka_unit_test(test_kit_image_resolve_and_fetch),
    };
    const struct CMUnitTest isolation[] = {
        cmocka_unit_test(test_kit_isolation_sandbox),
        cmocka_unit_test(test_kit_isolation_container_lifecycle),
        cmocka_unit_test(test_kit_isolation_stdio_and_exit_code),
        cmocka_unit_test(test_kit_isolation_exec),
        cmocka_unit_test(test_kit_isolation_cleanup),
    };
    int failed = cmocka_run_group_tests_name("common", common, NULL, NULL);

    switch (kit.drv->kind) {
    case BERTH_KIND_STORAGE:
        failed += cmocka_run_group_tests_name("storage", storage, storage_setup, NULL);
        break;
    case BERTH_KIND_NETWORK:
        failed += cmocka_run_group_tests_name("network", network, NULL, NULL);
        break;
    case BERTH_KIND_IMAGE:
        failed += cmocka_run_group_tests_name("image", image, NULL, NULL);
        break;
    case BERTH_KIND_ISOLATION:
        failed += cmocka_run_group_tests_name("isolation", isolation, NULL, NULL);
        break;
    }
    return failed;
}

static void usage(FILE *out)
{
    fputs("Usage: berth-testkit [--rootfs DIR] MODULE\n"
          "\n"
          "Load a berth driver module with berth's loader and run the conformance\n"
          "suite for its kind. Exit status: the number of failed tests (2 when the\n"
          "module does not load).\n"
          "\n"
          "  --rootfs DIR  root filesystem for isolation drivers' containers\n"
          "                (needs /bin/sleep); default: an empty scratch dir\n"
          "  -h, --help    show this help\n"
          "\n"
          "Image sources are opened at $BERTH_TESTKIT_IMAGE_LOCATION (default \"fake\").\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "rootfs", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    berth_plugin_env_t env = { 0 };
    berth_err_t err = { 0 };
    int c, failed;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            kit.rootfs = optarg;
            kit.rootfs_given = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    snprintf(kit.scratch, sizeof(kit.scratch), "%s/berth-testkit-XXXXXX", base);
    if (!mkdtemp(kit.scratch)) {
        fprintf(stderr, "berth-testkit: mkdtemp %s: %s\n", kit.scratch, strerror(errno));
        return 2;
    }
    if (!kit.rootfs)
        kit.rootfs = kit.scratch;
    env.root = kit.scratch;
    env.runroot = kit.scratch;
    if (berth__registry_new(&env, &kit.reg, &err) < 0 ||
        berth__registry_load_file(kit.reg, argv[optind], &err) < 0) {
        fprintf(stderr, "berth-testkit: %s\n", err.msg);
        berth__registry_free(kit.reg);
        return 2;
    }
    kit.drv = berth__registry_driver(kit.reg, 0);
    printf("berth-testkit: %s driver '%s' %s from %s\n", berth__kind_name(kit.drv->kind),
           kit.drv->desc->name, kit.drv->desc->version, argv[optind]);
    failed = run_suites();
    berth__registry_free(kit.reg);
    /*
     * Not across mounts: a driver whose test failed half-way may leave its
     * rootfs mounted in the scratch dir, a bind of --rootfs DIR, and
     * `rm -rf` would empty that directory through it.
     */
    if (berth__rm_rf(kit.scratch) != 0)
        fprintf(stderr, "berth-testkit: could not remove %s (a mount left in it?)\n", kit.scratch);
    return failed;
}
