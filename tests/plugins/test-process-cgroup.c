/* SPDX-License-Identifier: Apache-2.0 */
/*
 * process-cgroup.c against the host's real cgroups (root only). Every cgroup
 * lives under "berth-test-<pid>" so no real container is touched, and the
 * group teardown removes whatever a failed test left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "process-cgroup.h"

#define CG  "/sys/fs/cgroup"
#define MiB (1024 * 1024)

static char parent[64];

/* "<parent>/<leaf>" into a static-sized buffer. */
static void cg_name(char *buf, size_t size, const char *leaf)
{
    assert_true(snprintf(buf, size, "%s/%s", parent, leaf) < (int)size);
}

static int is_v2(void)
{
    return strcmp(pcg_host_mode(), "v2") == 0;
}

/* Directory of @name for controller @ctrl ("memory"), or in the v2 tree. */
static void ctrl_path(char *buf, size_t size, const char *ctrl, const char *name)
{
    if (is_v2())
        assert_true(snprintf(buf, size, CG "/%s", name) < (int)size);
    else
        assert_true(snprintf(buf, size, CG "/%s/%s", ctrl, name) < (int)size);
}

static int read_str(const char *dir, const char *file, char *buf, size_t size)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static long long read_ll(const char *dir, const char *file)
{
    char buf[128];

    assert_int_equal(read_str(dir, file, buf, sizeof(buf)), 0);
    return strtoll(buf, NULL, 10);
}

/* Whether controller @ctrl is usable here (v1 mount, or offered by the v2 root). */
static int have_ctrl(const char *ctrl)
{
    char buf[256], path[PATH_MAX];

    if (!is_v2()) {
        snprintf(path, sizeof(path), CG "/%s/cgroup.procs", ctrl);
        return access(path, F_OK) == 0;
    }
    if (read_str(CG, "cgroup.controllers", buf, sizeof(buf)) < 0)
        return 0;
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " "))
        if (strcmp(t, ctrl) == 0)
            return 1;
    return 0;
}

/* Number of hierarchies (entries of /sys/fs/cgroup, or the v2 root) holding @name. */
static int count_dirs(const char *name)
{
    char path[PATH_MAX];
    struct dirent *de;
    struct stat st;
    int n = 0;
    DIR *d;

    if (is_v2()) {
        snprintf(path, sizeof(path), CG "/%s", name);
        return stat(path, &st) == 0;
    }
    d = opendir(CG);
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), CG "/%s/%s", de->d_name, name);
        n += stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    }
    closedir(d);
    return n;
}

static void skip_unless(int cond, const char *why)
{
    if (!cond) {
        print_message("skipped: %s\n", why);
        skip();
    }
}

static void need_root(void)
{
    skip_unless(geteuid() == 0, "needs root");
    skip_unless(strcmp(pcg_host_mode(), "none") != 0, "no cgroups mounted");
}

/* ---- children ---- */

typedef void (*child_fn)(void);

/* Fork a child that waits until it is in @cg, then runs @fn and exits 0. */
static pid_t spawn_in(pcg_t *cg, child_fn fn)
{
    int p[2];
    char c = 0;
    pid_t pid;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        if (read(p[0], &c, 1) != 1)
            _exit(99);
        fn();
        _exit(0);
    }
    close(p[0]);
    assert_int_equal(pcg_enter(cg, pid, NULL), 0);
    assert_int_equal(write(p[1], &c, 1), 1);
    close(p[1]);
    return pid;
}

static void child_pause(void)
{
    for (;;)
        pause();
}

static void child_busy(void)
{
    for (volatile unsigned long i = 0;; i++)
        ;
}

/* Exit 42 when a fork fails with EAGAIN (pids.max reached), 0 when all 16 forks worked. */
static void child_forker(void)
{
    for (int i = 0; i < 16; i++) {
        pid_t pid = fork();

        if (pid == 0)
            child_pause();
        if (pid < 0)
            _exit(errno == EAGAIN ? 42 : 1);
    }
    _exit(0);
}

/* Touch twice the 32 MiB limit, page by page. */
static void child_hog(void)
{
    size_t len = 64 * MiB;
    char *p = malloc(len);

    if (!p)
        _exit(2);
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    _exit(0);
}

static int wait_status(pid_t pid)
{
    int st = 0;

    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

/* utime (clock ticks) of @pid from /proc/<pid>/stat, field 14. */
static unsigned long long utime_of(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0;
    char *p;
    int i;

    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    assert_int_equal(read_str(path, "stat", buf, sizeof(buf)), 0);
    p = strrchr(buf, ')');
    assert_non_null(p);
    /* Each space after ")" starts the next field: 3 (state) up to 14 (utime). */
    for (i = 2; i < 14 && p; i++)
        p = strchr(p + 1, ' ');
    assert_non_null(p);
    sscanf(p, "%llu", &ut);
    return ut;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* ---- tests ---- */

static void test_process_cgroup_create_applies_limits(void **state)
{
    char name[128], dir[PATH_MAX], buf[128];
    json_t *res;
    pcg_t *cg = NULL;
    berth_err_t err = { 0 };
    int cpuset;

    need_root();
    skip_unless(have_ctrl("memory") && have_ctrl("cpu") && have_ctrl("pids"),
                "needs the memory, cpu and pids controllers");
    cpuset = have_ctrl("cpuset");
    cg_name(name, sizeof(name), "limits");
    res =
        json_pack("{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:{s:I}}", "memory", "limit",
                  (json_int_t)64 * MiB, "swap", (json_int_t)64 * MiB, "reservation",
                  (json_int_t)32 * MiB, "cpu", "shares", (json_int_t)512, "quota",
                  (json_int_t)50000, "period", (json_int_t)100000, "pids", "limit", (json_int_t)32);
    assert_non_null(res);
    if (cpuset) {
        json_object_set_new(json_object_get(res, "cpu"), "cpus", json_string("0"));
        json_object_set_new(json_object_get(res, "cpu"), "mems", json_string("0"));
    }
    if (pcg_create(name, res, &cg, &err) != 0)
        fail_msg("create: %s", err.msg);
    json_decref(res);

    if (is_v2()) {
        ctrl_path(dir, sizeof(dir), "", name);
        assert_int_equal(read_ll(dir, "memory.max"), 64 * MiB);
        if (read_str(dir, "memory.swap.max", buf, sizeof(buf)) == 0)
            assert_string_equal(buf, "0");
        assert_int_equal(read_ll(dir, "memory.low"), 32 * MiB);
        /* 1 + (512 - 2) * 9999 / 262142 */
        assert_int_equal(read_ll(dir, "cpu.weight"), 20);
        assert_int_equal(read_str(dir, "cpu.max", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "50000 100000");
        assert_int_equal(read_ll(dir, "pids.max"), 32);
    } else {
        ctrl_path(dir, sizeof(dir), "memory", name);
        assert_int_equal(read_ll(dir, "memory.limit_in_bytes"), 64 * MiB);
        if (read_str(dir, "memory.memsw.limit_in_bytes", buf, sizeof(buf)) == 0)
            assert_int_equal(strtoll(buf, NULL, 10), 64 * MiB);
        assert_int_equal(read_ll(dir, "memory.soft_limit_in_bytes"), 32 * MiB);
        ctrl_path(dir, sizeof(dir), "cpu", name);
        assert_int_equal(read_ll(dir, "cpu.shares"), 512);
        assert_int_equal(read_ll(dir, "cpu.cfs_quota_us"), 50000);
        assert_int_equal(read_ll(dir, "cpu.cfs_period_us"), 100000);
        ctrl_path(dir, sizeof(dir), "pids", name);
        assert_int_equal(read_ll(dir, "pids.max"), 32);
        if (strcmp(pcg_host_mode(), "hybrid") == 0) {
            /* The v2 copy exists for v2-aware tools; no controllers to read back here. */
            snprintf(dir, sizeof(dir), CG "/unified/%s", name);
            assert_int_equal(access(dir, F_OK), 0);
        }
    }
    if (cpuset) {
        ctrl_path(dir, sizeof(dir), "cpuset", name);
        assert_int_equal(read_str(dir, "cpuset.cpus", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "0");
    }
    assert_int_equal(pcg_destroy(cg, &err), 0);
    assert_int_equal(count_dirs(name), 0);
}

static void test_process_cgroup_enter_and_count(void **state)
{
    char name[128], path[64], buf[4096], want[160];
    uint64_t n = 99;
    pcg_t *cg = NULL;
    pid_t pid;

    need_root();
    cg_name(name, sizeof(name), "enter");
    assert_int_equal(pcg_create(name, NULL, &cg, NULL), 0);
    assert_int_equal(pcg_count_procs(cg, &n, NULL), 0);
    assert_int_equal(n, 0);
    pid = spawn_in(cg, child_pause);
    assert_int_equal(pcg_count_procs(cg, &n, NULL), 0);
    assert_int_equal(n, 1);

    /* Every line of /proc/<pid>/cgroup names the cgroup (read_str keeps only one line). */
    {
        int fd;
        ssize_t len;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(len > 0);
        buf[len] = '\0';
    }
    snprintf(want, sizeof(want), "/%s\n", name);
    assert_non_null(strstr(buf, want));
    if (strcmp(pcg_host_mode(), "hybrid") == 0) {
        snprintf(want, sizeof(want), "0::/%s\n", name);
        assert_non_null(strstr(buf, want));
    }

    assert_int_equal(pcg_kill_all(cg, SIGKILL, NULL), 0);
    assert_true(WIFSIGNALED(wait_status(pid)));
    assert_int_equal(pcg_count_procs(cg, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pcg_destroy(cg, NULL), 0);
}

static void test_process_cgroup_open(void **state)
{
    char name[128];
    pcg_t *cg = NULL, *cg2 = NULL;
    berth_err_t err = { 0 };
    uint64_t n = 9;
    pid_t pid;

    need_root();
    cg_name(name, sizeof(name), "open");
    assert_int_equal(pcg_open(name, &cg2, &err), -ENOENT);
    assert_int_equal(err.code, -ENOENT);
    assert_null(cg2);
    assert_int_equal(pcg_create(name, NULL, &cg, NULL), 0);
    pid = spawn_in(cg, child_pause);
    /* A second create of a cgroup with processes is refused and leaves it alone. */
    assert_int_equal(pcg_create(name, NULL, &cg2, &err), -EEXIST);
    assert_true(count_dirs(name) > 0);
    assert_int_equal(pcg_open(name, &cg2, NULL), 0);
    assert_int_equal(pcg_count_procs(cg2, &n, NULL), 0);
    assert_int_equal(n, 1);
    pcg_free(cg2);
    pcg_free(NULL);
    assert_int_equal(pcg_destroy(cg, NULL), 0);
    assert_int_equal(WTERMSIG(wait_status(pid)), SIGKILL);
}

static void test_process_cgroup_freeze_thaw(void **state)
{
    char name[128];
    unsigned long long t0, t1, t2;
    pcg_t *cg = NULL;
    berth_err_t err = { 0 };
    pid_t pid;

    need_root();
    skip_unless(is_v2() || have_ctrl("freezer"), "no freezer");
    cg_name(name, sizeof(name), "freeze");
    assert_int_equal(pcg_create(name, NULL, &cg, NULL), 0);
    pid = spawn_in(cg, child_busy);
    sleep_ms(50);
    if (pcg_freeze(cg, &err) != 0)
        fail_msg("freeze: %s", err.msg);
    t0 = utime_of(pid);
    sleep_ms(200);
    t1 = utime_of(pid);
    assert_true(t1 - t0 <= 1);
    assert_int_equal(pcg_thaw(cg, NULL), 0);
    /* Resumed: give it up to 2 s on a loaded machine to gain a few ticks. */
    for (int i = 0; i < 20 && (t2 = utime_of(pid)) <= t1 + 2; i++)
        sleep_ms(100);
    print_message("utime frozen %llu -> %llu over 200 ms, thawed -> %llu\n", t0, t1, t2);
    assert_true(t2 > t1 + 2);

    /* kill_all also empties a frozen cgroup. */
    assert_int_equal(pcg_freeze(cg, NULL), 0);
    assert_int_equal(pcg_kill_all(cg, SIGKILL, NULL), 0);
    assert_int_equal(WTERMSIG(wait_status(pid)), SIGKILL);
    assert_int_equal(pcg_destroy(cg, NULL), 0);
}

static void test_process_cgroup_kill_all_frozen(void **state)
{
    char name[128];
    pid_t pids[3];
    uint64_t n = 9;
    pcg_t *cg = NULL;

    need_root();
    skip_unless(is_v2() || have_ctrl("freezer"), "no freezer");
    cg_name(name, sizeof(name), "killall");
    assert_int_equal(pcg_create(name, NULL, &cg, NULL), 0);
    pids[0] = spawn_in(cg, child_pause);
    pids[1] = spawn_in(cg, child_pause);
    pids[2] = spawn_in(cg, child_busy);
    assert_int_equal(pcg_freeze(cg, NULL), 0);
    assert_int_equal(pcg_kill_all(cg, SIGKILL, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(WTERMSIG(wait_status(pids[i])), SIGKILL);
    assert_int_equal(pcg_count_procs(cg, &n, NULL), 0);
    assert_int_equal(n, 0);
    /* The cgroup is usable again: thawed by kill_all. */
    pids[0] = spawn_in(cg, child_pause);
    assert_int_equal(pcg_kill_all(cg, SIGTERM, NULL), 0);
    assert_int_equal(WTERMSIG(wait_status(pids[0])), SIGTERM);
    assert_int_equal(pcg_destroy(cg, NULL), 0);
}

static void test_process_cgroup_pids_limit(void **state)
{
    char name[128];
    json_t *res;
    pcg_t *cg = NULL;
    pid_t pid;
    int st;

    need_root();
    skip_unless(have_ctrl("pids"), "no pids controller");
    cg_name(name, sizeof(name), "pids");
    res = json_pack("{s:{s:i}}", "pids", "limit", 5);
    assert_int_equal(pcg_create(name, res, &cg, NULL), 0);
    json_decref(res);
    pid = spawn_in(cg, child_forker);
    st = wait_status(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 42);
    /* The forked grandchildren stay in the cgroup; destroy kills them (we are their reaper). */
    assert_int_equal(pcg_destroy(cg, NULL), 0);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void test_process_cgroup_memory_oom(void **state)
{
    char name[128];
    json_t *res;
    pcg_t *cg = NULL;
    int killed = -1, st;
    pid_t pid;

    need_root();
    skip_unless(have_ctrl("memory"), "no memory controller");
    cg_name(name, sizeof(name), "oom");
    /* swap == limit: no swap, so the hog is killed rather than swapped out. */
    res = json_pack("{s:{s:I, s:I}}", "memory", "limit", (json_int_t)32 * MiB, "swap",
                    (json_int_t)32 * MiB);
    assert_int_equal(pcg_create(name, res, &cg, NULL), 0);
    json_decref(res);
    assert_int_equal(pcg_oom_killed(cg, &killed, NULL), 0);
    assert_int_equal(killed, 0);
    pid = spawn_in(cg, child_hog);
    st = wait_status(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_int_equal(pcg_oom_killed(cg, &killed, NULL), 0);
    assert_int_equal(killed, 1);
    assert_int_equal(pcg_destroy(cg, NULL), 0);
}

static void test_process_cgroup_destroy_removes_all(void **state)
{
    char name[128], path[PATH_MAX];
    pcg_t *cg = NULL;
    pid_t pid;
    int n;

    need_root();
    /* Its own parent, so the test can check the empty parent goes too. */
    snprintf(name, sizeof(name), "%s-destroy/c", parent);
    assert_int_equal(pcg_create(name, NULL, &cg, NULL), 0);
    n = count_dirs(name);
    assert_true(n >= 1);
    if (!is_v2()) {
        /* Every controller hierarchy berth uses that is here has the cgroup. */
        const char *ctrls[] = { "cpu",     "cpuacct", "memory", "pids",
                                "freezer", "devices", "blkio",  "cpuset" };
        for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
            if (!have_ctrl(ctrls[i]))
                continue;
            snprintf(path, sizeof(path), CG "/%s/%s", ctrls[i], name);
            assert_int_equal(access(path, F_OK), 0);
        }
    }
    pid = spawn_in(cg, child_pause);
    assert_int_equal(pcg_destroy(cg, NULL), 0);
    assert_int_equal(WTERMSIG(wait_status(pid)), SIGKILL);
    assert_int_equal(count_dirs(name), 0);
    snprintf(name, sizeof(name), "%s-destroy", parent);
    assert_int_equal(count_dirs(name), 0);
}

static void test_process_cgroup_partial_failure_cleans_up(void **state)
{
    char name[192], top[128];
    json_t *res;
    pcg_t *cg = NULL;
    berth_err_t err = { 0 };
    int r;

    need_root();

    snprintf(top, sizeof(top), "%s-pf", parent);
    snprintf(name, sizeof(name), "%s/a/b", top);
    /* 10 us is below the kernel's 1 ms minimum quota: the write fails after every mkdir. */
    res = json_pack("{s:{s:I, s:I}}", "cpu", "quota", (json_int_t)10, "period", (json_int_t)100000);
    r = pcg_create(name, res, &cg, &err);
    json_decref(res);
    assert_null(cg);
    /* Without a cpu controller (v2 tree without controllers) the write fails with ENOENT. */
    assert_int_equal(r, have_ctrl("cpu") ? -EINVAL : -ENOENT);
    assert_int_equal(err.code, r);
    assert_non_null(strstr(err.msg, "cpu"));
    assert_int_equal(count_dirs(name), 0);
    assert_int_equal(count_dirs(top), 0);

    /* Rejected before anything is made: swap below the limit, a non-integer, a bad name. */
    res = json_pack("{s:{s:I, s:I}}", "memory", "limit", (json_int_t)64 * MiB, "swap",
                    (json_int_t)32 * MiB);
    assert_int_equal(pcg_create(name, res, &cg, &err), -EINVAL);
    json_decref(res);
    res = json_pack("{s:{s:s}}", "pids", "limit", "ten");
    assert_int_equal(pcg_create(name, res, &cg, &err), -EINVAL);
    json_decref(res);
    assert_int_equal(pcg_create("../escape", NULL, &cg, &err), -EINVAL);
    assert_int_equal(pcg_create("/abs", NULL, &cg, &err), -EINVAL);
    assert_int_equal(count_dirs(top), 0);
}

static void test_process_cgroup_stats(void **state)
{
    char name[128];
    json_t *res, *st = NULL, *v;
    pcg_t *cg = NULL;
    pid_t pid;

    need_root();
    cg_name(name, sizeof(name), "stats");
    /* Limits only where the controller is, so the rest runs on a v2 tree without controllers. */
    res = json_object();
    if (have_ctrl("memory"))
        json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)64 * MiB));
    if (have_ctrl("pids"))
        json_object_set_new(res, "pids", json_pack("{s:i}", "limit", 32));
    assert_int_equal(pcg_create(name, res, &cg, NULL), 0);
    json_decref(res);
    pid = spawn_in(cg, child_busy);
    sleep_ms(30);
    assert_int_equal(pcg_stats(cg, &st, NULL), 0);
    assert_non_null(st);
    if (have_ctrl("memory")) {
        v = json_object_get(st, "memory");
        assert_true(json_is_integer(json_object_get(v, "usage")));
        assert_int_equal(json_integer_value(json_object_get(v, "limit")), 64 * MiB);
        if (!is_v2())
            assert_true(json_is_integer(json_object_get(v, "max_usage")));
    }
    if (have_ctrl(is_v2() ? "cpu" : "cpuacct"))
        assert_true(json_integer_value(json_object_get(json_object_get(st, "cpu"), "usage_ns")) >
                    0);
    if (have_ctrl("pids")) {
        v = json_object_get(st, "pids");
        assert_int_equal(json_integer_value(json_object_get(v, "current")), 1);
        assert_int_equal(json_integer_value(json_object_get(v, "limit")), 32);
    }
    assert_string_equal(json_string_value(json_object_get(st, "mode")), pcg_host_mode());
    if (strcmp(pcg_host_mode(), "hybrid") == 0)
        assert_true(json_is_true(json_object_get(st, "unified")));
    json_decref(st);
    assert_int_equal(pcg_destroy(cg, NULL), 0);
    assert_int_equal(WTERMSIG(wait_status(pid)), SIGKILL);
}

/* ---- cleanup of anything a failed test left ---- */

static int rm_cgroup(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    char buf[4096];

    if (type != FTW_DP)
        return 0;
    /* Thaw, kill what is inside, then remove the (empty) directory. */
    {
        char f[PATH_MAX];
        int fd;

        snprintf(f, sizeof(f), "%s/freezer.state", path);
        fd = open(f, O_WRONLY);
        if (fd >= 0) {
            (void)!write(fd, "THAWED", 6);
            close(fd);
        }
    }
    for (int tries = 0; tries < 50; tries++) {
        if (read_str(path, "cgroup.procs", buf, sizeof(buf)) < 0 || !buf[0])
            break;
        kill((pid_t)atoi(buf), SIGKILL);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        sleep_ms(10);
    }
    rmdir(path);
    return 0;
}

static int group_teardown(void **state)
{
    const char *suffix[] = { "", "-destroy", "-pf" };
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d;

    if (geteuid() != 0)
        return 0;
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(path, sizeof(path), CG "/%s%s", parent, suffix[i]);
        nftw(path, rm_cgroup, 16, FTW_DEPTH | FTW_PHYS);
        d = opendir(CG);
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), CG "/%s/%s%s", de->d_name, parent, suffix[i]);
            nftw(path, rm_cgroup, 16, FTW_DEPTH | FTW_PHYS);
        }
        if (d)
            closedir(d);
    }
    return 0;
}

static int group_setup(void **state)
{
    snprintf(parent, sizeof(parent), "berth-test-%d", (int)getpid());
    /* Grandchildren of the pids test are re-parented to us, so we can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_cgroup_create_applies_limits),
        cmocka_unit_test(test_process_cgroup_enter_and_count),
        cmocka_unit_test(test_process_cgroup_open),
        cmocka_unit_test(test_process_cgroup_freeze_thaw),
        cmocka_unit_test(test_process_cgroup_kill_all_frozen),
        cmocka_unit_test(test_process_cgroup_pids_limit),
        cmocka_unit_test(test_process_cgroup_memory_oom),
        cmocka_unit_test(test_process_cgroup_destroy_removes_all),
        cmocka_unit_test(test_process_cgroup_partial_failure_cleans_up),
        cmocka_unit_test(test_process_cgroup_stats),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
