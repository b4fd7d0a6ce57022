/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vfs and overlay storage drivers beyond the conformance suite: what
 * lives on disk between processes. The module (argv[1]) is loaded with
 * berth's loader into a scratch root; closing and reopening the registry is
 * a restart, and the "crashes" are the on-disk states a process killed at
 * each step of prepare, commit and remove leaves behind, made by hand.
 * Also: two instances on one state dir (CLI and daemon) and the flock
 * between them, vfs's copy fidelity, overlay's layout and probe cache.
 *
 *   test-storage-driver MODULE.so
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/capability.h>

#include <berth/sdk.h>

#include "plugins.h"
#include "util.h"

#define PJOIN(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static const char *module;
static char scratch[PATH_MAX], state_dir[PATH_MAX];
static berth_registry_t *reg;
static berth_driver_t *drv;
static int is_overlay, is_root;

#define OPS  ((const berth_storage_ops_t *)drv->ops)
#define PRIV (drv->priv)

static berth_registry_t *open_instance(berth_driver_t **ret_drv)
{
    static char root[PATH_MAX];
    berth_plugin_env_t env = { 0 };
    berth_registry_t *r = NULL;
    berth_err_t err = { 0 };

    PJOIN(root, "%s/root", scratch);
    env.root = root;
    env.runroot = root;
    if (berth__registry_new(&env, &r, &err) < 0 || berth__registry_load_file(r, module, &err) < 0)
        fail_msg("loading %s: %s", module, err.msg);
    *ret_drv = berth__registry_driver(r, 0);
    return r;
}

/* A restart: the driver's fini, then a fresh init on the same state dir. */
static void reopen(void)
{
    berth__registry_free(reg);
    reg = open_instance(&drv);
}

static int setup(void **state)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(scratch, sizeof(scratch), "%s/berth-storage-XXXXXX", base);
    assert_non_null(mkdtemp(scratch));
    reg = open_instance(&drv);
    PJOIN(state_dir, "%s/root/drivers/storage/%s", scratch, drv->desc->name);
    return 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    berth__registry_free(reg);
    reg = NULL;
    PJOIN(cmd, "rm -rf '%s'", scratch);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- helpers ---- */

static void prepare(const char *key, const char *parent, uint32_t flags,
                    berth_mount_list_t **ret_mounts)
{
    berth_mount_list_t *m = NULL;
    berth_err_t err = { 0 };
    int r = OPS->prepare(PRIV, key, parent, NULL, flags, &m, &err);
    if (r != 0)
        fail_msg("prepare %s: %d (%s)", key, r, err.msg);
    if (ret_mounts)
        *ret_mounts = m;
    else
        berth_mount_list_free(m);
}

static void commit(const char *name, const char *key)
{
    berth_err_t err = { 0 };
    int r = OPS->commit(PRIV, name, key, 0, &err);
    if (r != 0)
        fail_msg("commit %s: %d (%s)", name, r, err.msg);
}

static int stat_snap(const char *name, berth_snapshot_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    return OPS->stat(PRIV, name, 0, info, NULL);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;
    PJOIN(path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX], buf[256] = "";
    FILE *f;
    size_t n;
    PJOIN(path, "%s/%s", dir, name);
    f = fopen(path, "r");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_string_equal(buf, text);
}

static int exists(const char *fmt, ...) BERTH_PRINTF(1, 2);
static int exists(const char *fmt, ...)
{
    char path[PATH_MAX];
    struct stat st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return lstat(path, &st) == 0;
}

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* The key=value @key of snapshot dir @enc's meta, into @buf. */
static void meta_value(const char *enc, const char *key, char *buf, size_t len)
{
    char path[PATH_MAX], line[256];
    size_t klen = strlen(key);
    FILE *f;
    PJOIN(path, "%s/snapshots/%s/meta", state_dir, enc);
    f = fopen(path, "r");
    assert_non_null(f);
    buf[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(buf, len, "%.*s", (int)(len - 1), line + klen + 1);
        }
    }
    fclose(f);
}

static const char *option(const berth_mount_t *m, const char *prefix)
{
    for (uint32_t i = 0; i < m->n_options; i++)
        if (strncmp(m->options[i], prefix, strlen(prefix)) == 0)
            return m->options[i];
    return NULL;
}

/* ---- restarts and crashes ---- */

static void test_storage_persists_across_restart(void **state)
{
    berth_snapshot_info_t info;
    berth_mount_list_t *m = NULL;
    const char *diff;

    prepare("p-layer", NULL, 0, NULL);
    put(OPS->diff_dir(PRIV, "p-layer"), "kept", "across\n");
    commit("sha256:p1", "p-layer");
    prepare("p-ctr", "sha256:p1", 0, NULL);
    reopen();
    assert_int_equal(stat_snap("sha256:p1", &info), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_COMMITTED);
    assert_int_equal(stat_snap("p-ctr", &info), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_ACTIVE);
    assert_string_equal(info.parent, "sha256:p1");
    assert_int_equal(OPS->mounts(PRIV, "p-ctr", 0, &m, NULL), 0);
    berth_mount_list_free(m);
    /* The layer's file: in the container's copy (vfs) or the committed layer (overlay). */
    if (is_overlay) {
        expect_file(state_dir, "snapshots/sha256+p1/diff/kept", "across\n");
    } else {
        assert_non_null(diff = OPS->diff_dir(PRIV, "p-ctr"));
        expect_file(diff, "kept", "across\n");
    }
    assert_int_equal(OPS->remove(PRIV, "p-ctr", 0, NULL), 0);
    assert_int_equal(OPS->remove(PRIV, "sha256:p1", 0, NULL), 0);
}

/* Killed in prepare: the new snapshot was still under tmp/ (and, for overlay, linked). */
static void test_storage_recovers_half_prepared(void **state)
{
    char path[PATH_MAX], target[64];
    berth_snapshot_info_t info;

    PJOIN(path, "%s/tmp/new-CRASHEDPREP1", state_dir);
    assert_int_equal(mkdir(path, 0700), 0);
    PJOIN(path, "%s/tmp/new-CRASHEDPREP1/%s", state_dir, is_overlay ? "diff" : "fs");
    assert_int_equal(mkdir(path, 0755), 0);
    put(path, "partial", "half\n");
    if (is_overlay) {
        /* prepare writes the meta naming the id, then the link, then publishes. */
        PJOIN(path, "%s/tmp/new-CRASHEDPREP1", state_dir);
        put(path, "meta",
            "berth-snapshot-meta 1\nname=half\nparent=\nkind=active\nflags=0\n"
            "created_ns=1\nlink=CRASHED1\nend\n");
        PJOIN(path, "%s/l/CRASHED1", state_dir);
        PJOIN(target, "../snapshots/half/diff");
        assert_int_equal(symlink(target, path), 0);
    }
    reopen();
    PJOIN(path, "%s/tmp", state_dir);
    assert_int_equal(dir_entries(path), 0);
    assert_false(exists("%s/l/CRASHED1", state_dir));
    assert_int_equal(stat_snap("half", &info), -ENOENT);
}

/* Killed in remove, after the snapshot left snapshots/ and before its files went. */
static void test_storage_recovers_half_removed(void **state)
{
    char from[PATH_MAX], to[PATH_MAX], id[16] = "";
    berth_snapshot_info_t info;

    prepare("doomed", NULL, 0, NULL);
    if (is_overlay) {
        meta_value("doomed", "link", id, sizeof(id));
        assert_int_equal(strlen(id), 8);
        assert_true(exists("%s/l/%s", state_dir, id));
    }
    PJOIN(from, "%s/snapshots/doomed", state_dir);
    PJOIN(to, "%s/tmp/rm-CRASHEDRM0001", state_dir);
    assert_int_equal(rename(from, to), 0);
    reopen();
    assert_int_equal(stat_snap("doomed", &info), -ENOENT);
    assert_false(exists("%s", to));
    if (is_overlay)
        assert_false(exists("%s/l/%s", state_dir, id));
}

/* Write snapshot @enc's meta.commit as commit would: its meta, renamed and committed. */
static void write_meta_commit(const char *enc, const char *new_name)
{
    char path[PATH_MAX], line[1024];
    FILE *in, *out;

    PJOIN(path, "%s/snapshots/%s/meta", state_dir, enc);
    in = fopen(path, "r");
    PJOIN(path, "%s/snapshots/%s/meta.commit", state_dir, enc);
    out = fopen(path, "w");
    assert_non_null(in);
    assert_non_null(out);
    while (fgets(line, sizeof(line), in)) {
        if (strncmp(line, "name=", 5) == 0)
            fprintf(out, "name=%s\n", new_name);
        else if (strncmp(line, "kind=", 5) == 0)
            fputs("kind=committed\n", out);
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
}

/* Killed in commit right after the rename: recovery finishes the commit. */
static void test_storage_recovers_commit_after_rename(void **state)
{
    char from[PATH_MAX], to[PATH_MAX], id[16] = "", link[PATH_MAX];
    berth_snapshot_info_t info;
    ssize_t n;

    prepare("c-key", NULL, 0, NULL);
    put(OPS->diff_dir(PRIV, "c-key"), "f", "committed\n");
    if (is_overlay)
        meta_value("c-key", "link", id, sizeof(id));
    PJOIN(to, "%s/tmp", state_dir);
    put(to, "commit-CRASHEDCOMM1", "c-key\nsha256+c-name\n");
    write_meta_commit("c-key", "sha256:c-name");
    PJOIN(from, "%s/snapshots/c-key", state_dir);
    PJOIN(to, "%s/snapshots/sha256+c-name", state_dir);
    assert_int_equal(rename(from, to), 0);
    reopen();
    assert_int_equal(stat_snap("c-key", &info), -ENOENT);
    assert_int_equal(stat_snap("sha256:c-name", &info), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_COMMITTED);
    assert_false(exists("%s/tmp/commit-CRASHEDCOMM1", state_dir));
    if (is_overlay) {
        /* The short link follows the snapshot to its new name. */
        PJOIN(from, "%s/l/%s", state_dir, id);
        n = readlink(from, link, sizeof(link) - 1);
        assert_true(n > 0);
        link[n] = '\0';
        assert_string_equal(link, "../snapshots/sha256+c-name/diff");
    }
    prepare("c-child", "sha256:c-name", 0, NULL);
    assert_int_equal(OPS->remove(PRIV, "c-child", 0, NULL), 0);
    assert_int_equal(OPS->remove(PRIV, "sha256:c-name", 0, NULL), 0);
}

/* Killed in commit before the rename: recovery undoes it, the snapshot stays active. */
static void test_storage_recovers_commit_before_rename(void **state)
{
    char path[PATH_MAX];
    berth_snapshot_info_t info;

    prepare("u-key", NULL, 0, NULL);
    PJOIN(path, "%s/tmp", state_dir);
    put(path, "commit-CRASHEDCOMM2", "u-key\nsha256+u-name\n");
    write_meta_commit("u-key", "sha256:u-name");
    reopen();
    assert_int_equal(stat_snap("u-key", &info), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_ACTIVE);
    assert_int_equal(stat_snap("sha256:u-name", &info), -ENOENT);
    assert_false(exists("%s/snapshots/u-key/meta.commit", state_dir));
    assert_false(exists("%s/tmp/commit-CRASHEDCOMM2", state_dir));
    commit("sha256:u-name", "u-key");
    assert_int_equal(OPS->remove(PRIV, "sha256:u-name", 0, NULL), 0);
}

static int count_walk(const char *name, const berth_snapshot_info_t *info, void *ud)
{
    if (strcmp(name, "damaged") == 0)
        (*(int *)ud)++;
    return 0;
}

/* A snapshot whose meta did not survive is not used, and can be removed. */
static void test_storage_damaged_meta(void **state)
{
    char path[PATH_MAX];
    berth_snapshot_info_t info;
    int seen = 0;

    prepare("damaged", NULL, 0, NULL);
    PJOIN(path, "%s/snapshots/damaged/meta", state_dir);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(OPS->walk(PRIV, 0, count_walk, &seen, NULL), 0);
    assert_int_equal(seen, 0);
    assert_int_equal(stat_snap("damaged", &info), -EBADMSG);
    assert_int_equal(OPS->remove(PRIV, "damaged", 0, NULL), 0);
    assert_false(exists("%s/snapshots/damaged", state_dir));
}

/* ---- two processes on one state dir ---- */

/* Whether /proc/locks shows @pid waiting for a flock. */
static int waits_for_flock(pid_t pid)
{
    char line[256], needle[32];
    FILE *f = fopen("/proc/locks", "r");
    int found = 0;
    assert_non_null(f);
    snprintf(needle, sizeof(needle), " %d ", (int)pid);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "-> FLOCK") && strstr(line, needle))
            found = 1;
    fclose(f);
    return found;
}

static void test_storage_two_instances_share_and_lock(void **state)
{
    berth_driver_t *other_drv;
    berth_registry_t *other;
    berth_snapshot_info_t info = { .struct_size = sizeof(info) };
    char path[PATH_MAX], c;
    int go[2], ready[2], lockfd, status;
    pid_t pid;

    /* What one instance (the daemon) makes, another (the CLI) sees at once. */
    other = open_instance(&other_drv);
    prepare("shared-view", NULL, 0, NULL);
    assert_int_equal(((const berth_storage_ops_t *)other_drv->ops)
                         ->stat(other_drv->priv, "shared-view", 0, &info, NULL),
                     0);
    berth__registry_free(other);
    assert_int_equal(OPS->remove(PRIV, "shared-view", 0, NULL), 0);

    /* A mutation waits for the lock another process holds. */
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        berth_driver_t *d;
        berth_registry_t *r = open_instance(&d);
        int ok;
        close(go[1]);
        close(ready[0]);
        if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(3);
        ok = ((const berth_storage_ops_t *)d->ops)
                 ->prepare(d->priv, "locked", NULL, NULL, 0, &(berth_mount_list_t *){ NULL },
                           NULL) == 0;
        berth__registry_free(r);
        _exit(ok ? 0 : 4);
    }
    close(go[0]);
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    PJOIN(path, "%s/lock", state_dir);
    lockfd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(lockfd >= 0);
    assert_int_equal(flock(lockfd, LOCK_EX), 0);
    assert_int_equal(write(go[1], "g", 1), 1);
    /* Until the child shows up waiting on the lock; if it finished instead, it didn't wait. */
    while (!waits_for_flock(pid)) {
        assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
        usleep(1000);
    }
    flock(lockfd, LOCK_UN);
    close(lockfd);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(go[1]);
    close(ready[0]);
    assert_int_equal(stat_snap("locked", &info), 0);
    assert_int_equal(OPS->remove(PRIV, "locked", 0, NULL), 0);
}

/* ---- vfs ---- */

static void test_vfs_copy_is_faithful(void **state)
{
    const struct timespec old[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };
    struct vfs_cap_data cap = { .magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE };
    char d[PATH_MAX], p[PATH_MAX], q[PATH_MAX], buf[64];
    const char *child;
    struct stat st, st2;
    ssize_t n;
    int fd;

    if (is_overlay)
        skip();
    if (!is_root) {
        print_message("skipped: owners, devices and security.capability need root\n");
        skip();
    }
    cap.data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
    prepare("fid-layer", NULL, 0, NULL);
    PJOIN(d, "%s", OPS->diff_dir(PRIV, "fid-layer"));
    put(d, "plain", "data\n");
    PJOIN(p, "%s/plain", d);
    assert_int_equal(chown(p, 1234, 5678), 0);
    assert_int_equal(chmod(p, 04750), 0);
    assert_int_equal(setxattr(p, "user.kit", "u-value", 7, 0), 0);
    assert_int_equal(setxattr(p, "trusted.kit", "t-value", 7, 0), 0);
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    put(d, "capped", "ping\n");
    PJOIN(p, "%s/capped", d);
    assert_int_equal(setxattr(p, "security.capability", &cap, XATTR_CAPS_SZ_2, 0), 0);
    PJOIN(p, "%s/plain", d);
    PJOIN(q, "%s/link2", d);
    assert_int_equal(link(p, q), 0);
    PJOIN(p, "%s/symlink", d);
    assert_int_equal(symlink("plain", p), 0);
    assert_int_equal(lchown(p, 42, 43), 0);
    assert_int_equal(utimensat(AT_FDCWD, p, old, AT_SYMLINK_NOFOLLOW), 0);
    PJOIN(p, "%s/null", d);
    assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
    assert_int_equal(chmod(p, 0666), 0); /* past the umask */
    PJOIN(p, "%s/fifo", d);
    assert_int_equal(mkfifo(p, 0640), 0);
    PJOIN(p, "%s/sock", d);
    assert_int_equal(mknod(p, S_IFSOCK | 0755, 0), 0);
    PJOIN(p, "%s/sticky", d);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(chmod(p, 01777), 0);
    PJOIN(p, "%s/ro-dir", d);
    assert_int_equal(mkdir(p, 0555), 0);
    put(p, "inside", "x\n");
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    /* 64 MiB with one 4 KiB block of data in the middle. */
    PJOIN(p, "%s/sparse", d);
    fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "middle", 6, 32 << 20), 6);
    assert_int_equal(ftruncate(fd, 64 << 20), 0);
    close(fd);
    commit("sha256:fid", "fid-layer");

    prepare("fid-ctr", "sha256:fid", 0, NULL);
    child = OPS->diff_dir(PRIV, "fid-ctr");
    assert_non_null(child);
    PJOIN(p, "%s/plain", child);
    expect_file(child, "plain", "data\n");
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_equal(st.st_mode & 07777, 04750);
    assert_int_equal(st.st_mtim.tv_sec, old[1].tv_sec);
    assert_int_equal(st.st_mtim.tv_nsec, old[1].tv_nsec);
    assert_int_equal(st.st_nlink, 2);
    assert_int_equal(getxattr(p, "user.kit", buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "u-value", 7);
    assert_int_equal(getxattr(p, "trusted.kit", buf, sizeof(buf)), 7);
    PJOIN(d, "%s/link2", child);
    assert_int_equal(lstat(d, &st2), 0);
    assert_int_equal(st2.st_ino, st.st_ino);
    PJOIN(p, "%s/capped", child);
    assert_int_equal(getxattr(p, "security.capability", buf, sizeof(buf)), XATTR_CAPS_SZ_2);
    assert_memory_equal(buf, &cap, XATTR_CAPS_SZ_2);
    PJOIN(p, "%s/symlink", child);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(st.st_uid, 42);
    assert_int_equal(st.st_mtim.tv_sec, old[1].tv_sec);
    n = readlink(p, buf, sizeof(buf) - 1);
    assert_int_equal(n, 5);
    PJOIN(p, "%s/null", child);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(1, 3));
    assert_int_equal(st.st_mode & 07777, 0666);
    PJOIN(p, "%s/fifo", child);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    PJOIN(p, "%s/sock", child);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    PJOIN(p, "%s/sticky", child);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 01777);
    PJOIN(p, "%s/ro-dir", child);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(st.st_mtim.tv_sec, old[1].tv_sec);
    expect_file(p, "inside", "x\n");
    PJOIN(p, "%s/sparse", child);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_size, 64 << 20);
    /* The holes stayed holes: far less than the size is allocated. */
    assert_true((uint64_t)st.st_blocks * 512 < (1u << 20));
    fd = open(p, O_RDONLY | O_CLOEXEC);
    assert_int_equal(pread(fd, buf, 6, 32 << 20), 6);
    assert_memory_equal(buf, "middle", 6);
    close(fd);
    assert_int_equal(OPS->remove(PRIV, "fid-ctr", 0, NULL), 0);
    assert_int_equal(OPS->remove(PRIV, "sha256:fid", 0, NULL), 0);
}

static void test_vfs_mounts_are_binds(void **state)
{
    berth_mount_list_t *m = NULL;
    char src[PATH_MAX];

    if (is_overlay)
        skip();
    prepare("bind-ctr", NULL, 0, &m);
    assert_int_equal(m->n_mounts, 1);
    assert_string_equal(m->mounts[0].type, "bind");
    PJOIN(src, "%s/snapshots/bind-ctr/fs", state_dir);
    assert_string_equal(m->mounts[0].source, src);
    assert_string_equal(OPS->diff_dir(PRIV, "bind-ctr"), src);
    assert_non_null(option(&m->mounts[0], "rbind"));
    assert_non_null(option(&m->mounts[0], "rw"));
    berth_mount_list_free(m);
    commit("sha256:bind", "bind-ctr");
    prepare("bind-ro", "sha256:bind", BERTH_SNAPSHOT_READONLY, &m);
    assert_non_null(option(&m->mounts[0], "ro"));
    assert_true(m->mounts[0].flags & BERTH_MOUNT_F_READONLY);
    berth_mount_list_free(m);
    assert_int_equal(OPS->remove(PRIV, "bind-ro", 0, NULL), 0);
    assert_int_equal(OPS->remove(PRIV, "sha256:bind", 0, NULL), 0);
}

/* ---- overlay ---- */

/* l/<ID> must lead to snapshot @enc's diff. */
static void expect_link(const char *lower_entry, const char *enc)
{
    char want[PATH_MAX], got[PATH_MAX], prefix[PATH_MAX];
    ssize_t n;

    PJOIN(prefix, "%s/l/", state_dir);
    assert_true(strncmp(lower_entry, prefix, strlen(prefix)) == 0);
    assert_int_equal(strlen(lower_entry + strlen(prefix)), 8);
    n = readlink(lower_entry, got, sizeof(got) - 1);
    assert_true(n > 0);
    got[n] = '\0';
    PJOIN(want, "../snapshots/%s/diff", enc);
    assert_string_equal(got, want);
}

static void test_overlay_layout(void **state)
{
    berth_mount_list_t *m = NULL;
    char want[PATH_MAX], lower[PATH_MAX], path[PATH_MAX];
    const berth_mount_t *mt;
    char *colon;

    if (!is_overlay)
        skip();
    prepare("ov-base", NULL, 0, &m);
    mt = &m->mounts[0];
    assert_int_equal(m->n_mounts, 1);
    assert_string_equal(mt->type, "overlay");
    assert_string_equal(mt->target, "");
    /* A base snapshot stacks on the empty dir. */
    PJOIN(want, "lowerdir=%s/empty", state_dir);
    assert_string_equal(option(mt, "lowerdir="), want);
    PJOIN(want, "upperdir=%s/snapshots/ov-base/diff", state_dir);
    assert_string_equal(option(mt, "upperdir="), want);
    assert_string_equal(OPS->diff_dir(PRIV, "ov-base"), want + strlen("upperdir="));
    PJOIN(want, "workdir=%s/snapshots/ov-base/work", state_dir);
    assert_string_equal(option(mt, "workdir="), want);
    assert_non_null(option(mt, "index=off"));
    assert_non_null(option(mt, "redirect_dir=off"));
    assert_non_null(option(mt, "metacopy=off"));
    berth_mount_list_free(m);
    commit("sha256:ov-1", "ov-base");
    prepare("ov-mid", "sha256:ov-1", 0, NULL);
    commit("sha256:ov-2", "ov-mid");

    /* Two layers, top first, each through its short link. */
    prepare("ov-ctr", "sha256:ov-2", 0, &m);
    PJOIN(lower, "%s", option(&m->mounts[0], "lowerdir=") + strlen("lowerdir="));
    berth_mount_list_free(m);
    colon = strchr(lower, ':');
    assert_non_null(colon);
    *colon = '\0';
    expect_link(lower, "sha256+ov-2");
    expect_link(colon + 1, "sha256+ov-1");

    /* Without the chain in its meta: the same answer from the parents' metas. */
    PJOIN(path, "sed -i '/^chain=/d' '%s/snapshots/ov-ctr/meta'", state_dir);
    assert_int_equal(system(path), 0);
    meta_value("ov-ctr", "chain", want, sizeof(want));
    assert_string_equal(want, "");
    assert_int_equal(OPS->mounts(PRIV, "ov-ctr", 0, &m, NULL), 0);
    *colon = ':';
    assert_string_equal(option(&m->mounts[0], "lowerdir=") + strlen("lowerdir="), lower);
    berth_mount_list_free(m);

    /* Read-only: no upper, its own (empty) diff on top of the layers, two lowers at least. */
    prepare("ov-ro", "sha256:ov-1", BERTH_SNAPSHOT_READONLY, &m);
    mt = &m->mounts[0];
    assert_null(option(mt, "upperdir="));
    assert_null(option(mt, "workdir="));
    assert_non_null(option(mt, "ro"));
    assert_true(mt->flags & BERTH_MOUNT_F_READONLY);
    PJOIN(lower, "%s", option(mt, "lowerdir=") + strlen("lowerdir="));
    colon = strchr(lower, ':');
    assert_non_null(colon);
    *colon = '\0';
    expect_link(lower, "ov-ro");
    expect_link(colon + 1, "sha256+ov-1");
    berth_mount_list_free(m);

    /* Removing a snapshot takes its link along. */
    assert_int_equal(OPS->remove(PRIV, "ov-ro", 0, NULL), 0);
    assert_false(exists("%s", lower));
    assert_int_equal(OPS->remove(PRIV, "ov-ctr", 0, NULL), 0);
    assert_int_equal(OPS->remove(PRIV, "sha256:ov-2", 0, NULL), 0);
    assert_int_equal(OPS->remove(PRIV, "sha256:ov-1", 0, NULL), 0);
    PJOIN(path, "%s/l", state_dir);
    assert_int_equal(dir_entries(path), 0);
}

static void test_overlay_probe_is_cached_per_kernel(void **state)
{
    char path[PATH_MAX], text[512];
    struct utsname u;
    uint64_t caps = 0;
    berth_err_t err = { 0 };
    int r;

    if (!is_overlay)
        skip();
    if (!is_root) {
        print_message("skipped: overlay's probe mounts, which needs root\n");
        skip();
    }
    assert_int_equal(uname(&u), 0);
    PJOIN(path, "%s", state_dir);
    /* A cached "no" for this kernel is believed without mounting. */
    PJOIN(text, "%s\nno cached verdict\n", u.release);
    put(path, "probe", text);
    r = OPS->probe(PRIV, 0, &caps, &err);
    assert_int_equal(r, BERTH_DECLINED);
    assert_non_null(strstr(err.msg, "cached verdict"));
    /* One for another kernel is not: the probe mounts again and records its answer. */
    put(path, "probe", "0.0.0-other\nno stale\n");
    memset(&err, 0, sizeof(err));
    r = OPS->probe(PRIV, 0, &caps, &err);
    if (r == BERTH_DECLINED) {
        print_message("skipped: overlay does not work here: %s\n", err.msg);
        skip();
    }
    assert_int_equal(r, 0);
    assert_int_equal(caps, BERTH_STORAGE_CAP_WHITEOUT_OVERLAY | BERTH_STORAGE_CAP_SHARED_LAYERS);
    PJOIN(text, "%s\nok\n", u.release);
    expect_file(path, "probe", text);
    /* Its test mount left nothing behind. */
    PJOIN(path, "%s/tmp", state_dir);
    assert_int_equal(dir_entries(path), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_storage_persists_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_recovers_half_prepared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_recovers_half_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_recovers_commit_after_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_recovers_commit_before_rename, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_storage_damaged_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_two_instances_share_and_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfs_copy_is_faithful, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfs_mounts_are_binds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_probe_is_cached_per_kernel, setup, teardown),
    };
    const char *name;

    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE.so\n", argv[0]);
        return 2;
    }
    module = argv[1];
    name = strrchr(module, '/') ? strrchr(module, '/') + 1 : module;
    is_overlay = strncmp(name, "storage-overlay", 15) == 0;
    is_root = geteuid() == 0;
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}
