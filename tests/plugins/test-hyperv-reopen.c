/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hyperv driver reopening a sandbox whose berth-shim was killed
 * (sandbox_open/container_open, as the core's orphan reaping calls them),
 * without a VM: a child process stands in for the qemu the state_dir
 * records, a tmpfs for the rootfs mount. A forced delete kills the
 * recorded process and unmounts the rootfs; a plain delete refuses while
 * it runs; a recorded pid whose start time differs (the pid was reused)
 * is never signalled; a state_dir without a record (the shim died before
 * qemu started) is cleaned all the same. Root (mounts); skips otherwise.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <berth/isolation.h>
#include <berth/plugin.h>

const berth_plugin_desc_t *berth_plugin_entry(void);

static const berth_isolation_ops_t *ops;
static void *priv;
static char base[PATH_MAX];

#define FMT(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* Field 22 of /proc/PID/stat, read independently of the driver. */
static unsigned long long start_time(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long v = 0;
    FILE *f;
    size_t n;

    FMT(path, "/proc/%d/stat", (int)pid);
    assert_non_null(f = fopen(path, "r"));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_non_null(p = strrchr(buf, ')'));
    for (int field = 2; field < 22; field++)
        assert_non_null(p = strchr(p + 1, ' '));
    assert_int_equal(sscanf(p, " %llu", &v), 1);
    return v;
}

/* A process standing in for an orphaned qemu. */
static pid_t spawn(void)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

/* A sandbox state dir under base: rootfs/ with a tmpfs on it, and vm.json when @pid > 0. */
static void make_state(const char *name, pid_t pid, unsigned long long start, char *sdir,
                       size_t len, char *cdir, size_t clen)
{
    char path[PATH_MAX];
    FILE *f;

    assert_true(snprintf(sdir, len, "%s/%s/sandbox", base, name) < (int)len);
    assert_true(snprintf(cdir, clen, "%s/%s/container", base, name) < (int)clen);
    FMT(path, "%s/%s", base, name);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(mkdir(sdir, 0700), 0);
    assert_int_equal(mkdir(cdir, 0700), 0);
    FMT(path, "%s/rootfs", sdir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(mount("tmpfs", path, "tmpfs", 0, "size=1m"), 0);
    if (pid > 0) {
        FMT(path, "%s/vm.json", sdir);
        assert_non_null(f = fopen(path, "w"));
        fprintf(f, "{\"qemu_pid\":%d,\"qemu_start_time\":%llu}\n", (int)pid, start);
        fclose(f);
    }
}

static void open_both(const char *sdir, const char *cdir, void **ret_sb, void **ret_ctr)
{
    berth_sandbox_spec_t ss = {
        .struct_size = sizeof(ss), .id = "0123", .state_dir = sdir, .config_json = "{}"
    };
    berth_container_spec_t cs = { .struct_size = sizeof(cs), .id = "0123", .state_dir = cdir };
    berth_err_t err = { 0 };

    assert_int_equal(ops->sandbox_open(priv, &ss, 0, ret_sb, &err), 0);
    assert_int_equal(ops->container_open(priv, *ret_sb, &cs, 0, ret_ctr, &err), 0);
}

/* Nothing is mounted on @sdir/rootfs, and the directory is gone. */
static void assert_cleaned(const char *sdir)
{
    char path[PATH_MAX];
    struct stat st;

    FMT(path, "%s/rootfs", sdir);
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_reopen_kills_the_recorded_qemu(void **state)
{
    char sdir[PATH_MAX], cdir[PATH_MAX];
    pid_t pid = spawn();
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    void *sb, *ctr;
    int status;
    (void)state;

    make_state("alive", pid, start_time(pid), sdir, sizeof(sdir), cdir, sizeof(cdir));
    open_both(sdir, cdir, &sb, &ctr);
    /* Still running: its init has not ended, and a plain delete refuses (the handle goes). */
    assert_int_equal(ops->process_wait(priv, ops->container_init_process(priv, ctr),
                                       BERTH_WAIT_NOHANG, &st, &err),
                     -EAGAIN);
    assert_int_equal(ops->container_delete(priv, ctr, 0, &err), -EBUSY);
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
    {
        berth_container_spec_t cs = { .struct_size = sizeof(cs), .id = "0123", .state_dir = cdir };
        assert_int_equal(ops->container_open(priv, sb, &cs, 0, &ctr, &err), 0);
    }
    assert_int_equal(ops->container_delete(priv, ctr, BERTH_DELETE_FORCE, &err), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(ops->sandbox_destroy(priv, sb, BERTH_DELETE_FORCE, &err), 0);
    assert_cleaned(sdir);
}

static void test_reopen_spares_a_reused_pid(void **state)
{
    char sdir[PATH_MAX], cdir[PATH_MAX];
    pid_t pid = spawn();
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    void *sb, *ctr;
    int status;
    (void)state;

    /* The recorded start time is not this process's: the pid was given to another. */
    make_state("reused", pid, start_time(pid) + 1, sdir, sizeof(sdir), cdir, sizeof(cdir));
    open_both(sdir, cdir, &sb, &ctr);
    /* Its qemu is gone, and with it the container's init. */
    assert_int_equal(ops->process_wait(priv, ops->container_init_process(priv, ctr),
                                       BERTH_WAIT_NOHANG, &st, &err),
                     0);
    assert_int_equal(st.exit_code, 128 + SIGKILL);
    assert_int_equal(ops->container_delete(priv, ctr, 0, &err), 0);
    assert_int_equal(ops->sandbox_destroy(priv, sb, BERTH_DELETE_FORCE, &err), 0);
    assert_cleaned(sdir);
    /* Not signalled. */
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_reopen_without_a_record(void **state)
{
    char sdir[PATH_MAX], cdir[PATH_MAX];
    berth_err_t err = { 0 };
    void *sb, *ctr;
    (void)state;

    /* The shim died before qemu started: the mount is all there is. */
    make_state("norecord", 0, 0, sdir, sizeof(sdir), cdir, sizeof(cdir));
    open_both(sdir, cdir, &sb, &ctr);
    assert_int_equal(ops->container_delete(priv, ctr, BERTH_DELETE_FORCE, &err), 0);
    assert_int_equal(ops->sandbox_destroy(priv, sb, BERTH_DELETE_FORCE, &err), 0);
    assert_cleaned(sdir);
}

static int group_setup(void **state)
{
    const berth_plugin_desc_t *d = berth_plugin_entry();
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    berth_err_t err = { 0 };
    (void)state;

    ops = d->ops;
    if (d->init(NULL, NULL, &priv, &err) < 0)
        return -1;
    if (snprintf(base, sizeof(base), "%s/berth-hvreopen-XXXXXX", tmp) >= (int)sizeof(base) ||
        !mkdtemp(base))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[PATH_MAX + 32];
    (void)state;

    berth_plugin_entry()->fini(priv);
    /* Each test removed its rootfs mount point; nothing mounted is left to cross. */
    snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_kills_the_recorded_qemu),
        cmocka_unit_test(test_reopen_spares_a_reused_pid),
        cmocka_unit_test(test_reopen_without_a_record),
    };

    if (geteuid() != 0) {
        printf("skipped: needs root (mounts)\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
