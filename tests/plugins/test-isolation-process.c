/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process isolation driver against real containers: a busybox rootfs
 * (tests/fixtures/make-busybox-rootfs.sh), OCI specs built here, the ops
 * table driven directly (the static implementation is linked in). Needs
 * root; skips otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <berth/sdk.h>

const berth_plugin_desc_t *berth_plugin_entry(void);

/* snprintf into an array, failing the test instead of truncating. */
#define FMT(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static const berth_isolation_ops_t *ops;
static char base[PATH_MAX], rootfs[PATH_MAX];
static int is_root, counter;

#define SKIP_UNLESS_ROOT()                                                                         \
    do {                                                                                           \
        if (!is_root) {                                                                            \
            print_message("skipped: needs root\n");                                                \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- spec building ---- */

static json_t *strv(const char *first, ...)
{
    json_t *a = json_array();
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        json_array_append_new(a, json_string(s));
    va_end(ap);
    return a;
}

static json_t *docker_caps(void)
{
    return strv("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL);
}

static json_t *mnt(const char *dest, const char *type, const char *src, json_t *opts)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", src,
                     "options", opts);
}

/* A spec shaped like the one Docker's defaults give runc. */
static json_t *base_spec(const char *root, json_t *args)
{
    json_t *caps =
        json_pack("{s:o, s:o, s:o, s:o}", "bounding", docker_caps(), "effective", docker_caps(),
                  "permitted", docker_caps(), "inheritable", docker_caps());
    json_t *process = json_pack(
        "{s:o, s:o, s:s, s:{s:i, s:i}, s:o, s:[{s:s, s:I, s:I}], s:b}", "args", args, "env",
        strv("PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "FOO=bar", NULL), "cwd", "/",
        "user", "uid", 0, "gid", 0, "capabilities", caps, "rlimits", "type", "RLIMIT_NOFILE",
        "soft", (json_int_t)1048576, "hard", (json_int_t)1048576, "noNewPrivileges", 1);
    json_t *mounts = json_array();
    json_array_append_new(mounts, mnt("/proc", "proc", "proc", json_array()));
    json_array_append_new(mounts,
                          mnt("/dev", "tmpfs", "tmpfs",
                              strv("nosuid", "strictatime", "mode=755", "size=65536k", NULL)));
    json_array_append_new(mounts, mnt("/dev/pts", "devpts", "devpts",
                                      strv("nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                           "mode=0620", "gid=5", NULL)));
    json_array_append_new(mounts,
                          mnt("/dev/shm", "tmpfs", "shm",
                              strv("nosuid", "noexec", "nodev", "mode=1777", "size=512m", NULL)));
    json_array_append_new(
        mounts, mnt("/dev/mqueue", "mqueue", "mqueue", strv("nosuid", "noexec", "nodev", NULL)));
    json_array_append_new(
        mounts, mnt("/sys", "sysfs", "sysfs", strv("nosuid", "noexec", "nodev", "ro", NULL)));
    return json_pack(
        "{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:{s:[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}], s:o, s:o}}",
        "ociVersion", "1.0.2", "process", process, "root", "path", root, "readonly", 0, "hostname",
        "berthtest", "mounts", mounts, "linux", "namespaces", "type", "pid", "type", "ipc", "type",
        "uts", "type", "mount", "type", "network", "maskedPaths",
        strv("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", NULL),
        "readonlyPaths",
        strv("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL));
}

static json_t *sh(const char *script)
{
    return strv("sh", "-c", script, NULL);
}

static json_t *spec_sh(const char *script)
{
    return base_spec(rootfs, sh(script));
}

/* ---- running ---- */

struct ctr {
    char id[65], sdir[PATH_MAX], cdir[PATH_MAX];
    void *sb, *ctr;
    int out[2], err[2];
    berth_stdio_t stdio;
};

struct result {
    int create_r, start_r;
    berth_err_t err;
    berth_exit_status_t st;
    char out[16384], errout[4096];
};

static void ctr_create(struct ctr *c, json_t *spec, uint32_t stdio_flags, struct result *res)
{
    berth_sandbox_spec_t ss = { .struct_size = sizeof(ss),
                                .config_json = "{\"network\":\"none\"}" };
    berth_container_spec_t cs = { .struct_size = sizeof(cs) };
    char *text = json_dumps(spec, 0);

    memset(c, 0, sizeof(*c));
    FMT(c->id, "%056x%08x", (unsigned)getpid(), (unsigned)++counter);
    FMT(c->sdir, "%s/s%d", base, counter);
    FMT(c->cdir, "%s/c%d", base, counter);
    assert_int_equal(mkdir(c->sdir, 0711), 0);
    assert_int_equal(mkdir(c->cdir, 0711), 0);
    c->out[0] = c->out[1] = c->err[0] = c->err[1] = -1;
    c->stdio = (berth_stdio_t){ .struct_size = sizeof(c->stdio),
                                .flags = stdio_flags,
                                .in = -1,
                                .out = -1,
                                .err = -1,
                                .tty_master = -1,
                                .tty_cols = 80,
                                .tty_rows = 24 };
    if (!(stdio_flags & BERTH_STDIO_F_TTY)) {
        assert_int_equal(pipe2(c->out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(c->err, O_CLOEXEC), 0);
        c->stdio.out = c->out[1];
        c->stdio.err = c->err[1];
    }
    ss.id = c->id;
    ss.state_dir = c->sdir;
    assert_int_equal(ops->sandbox_create(NULL, &ss, 0, &c->sb, &res->err), 0);
    cs.id = c->id;
    cs.state_dir = c->cdir;
    cs.oci_spec_json = text;
    cs.stdio = &c->stdio;
    res->create_r = ops->container_create(NULL, c->sb, &cs, 0, &c->ctr, &res->err);
    free(text);
    json_decref(spec);
    /* Our copies of the write ends must go, or reading never sees EOF. */
    if (c->out[1] >= 0)
        close(c->out[1]);
    if (c->err[1] >= 0)
        close(c->err[1]);
    c->out[1] = c->err[1] = -1;
}

/* Read both pipes (or the terminal) until EOF. */
static void drain(struct ctr *c, struct result *res)
{
    size_t lo = 0, le = 0;
    int open_fds;
    struct pollfd p[2] = { { .fd = c->out[0], .events = POLLIN },
                           { .fd = c->err[0], .events = POLLIN } };

    if (c->stdio.flags & BERTH_STDIO_F_TTY) {
        p[0].fd = (int)c->stdio.tty_master;
        p[1].fd = -1;
    }
    open_fds = (p[0].fd >= 0) + (p[1].fd >= 0);
    while (open_fds > 0 && poll(p, 2, 20000) > 0) {
        for (int i = 0; i < 2; i++) {
            char *buf = i ? res->errout : res->out;
            size_t *len = i ? &le : &lo, size = i ? sizeof(res->errout) : sizeof(res->out);
            ssize_t n;
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            n = read(p[i].fd, buf + *len, size - 1 - *len);
            if (n <= 0) { /* EOF, or EIO from a terminal whose slave closed */
                p[i].fd = -1;
                open_fds--;
                continue;
            }
            *len += (size_t)n;
        }
    }
    res->out[lo] = '\0';
    res->errout[le] = '\0';
}

static void ctr_destroy(struct ctr *c)
{
    berth_err_t err = { 0 };
    if (c->ctr)
        assert_int_equal(ops->container_delete(NULL, c->ctr, BERTH_DELETE_FORCE, &err), 0);
    assert_int_equal(ops->sandbox_destroy(NULL, c->sb, 0, &err), 0);
    if (c->stdio.tty_master >= 0)
        close((int)c->stdio.tty_master);
    if (c->out[0] >= 0)
        close(c->out[0]);
    if (c->err[0] >= 0)
        close(c->err[0]);
    rmdir(c->cdir);
    rmdir(c->sdir);
}

/* Create, start, collect output and exit status, delete. */
static void run_flags(json_t *spec, uint32_t stdio_flags, struct result *res)
{
    struct ctr c;
    memset(res, 0, sizeof(*res));
    res->st.struct_size = sizeof(res->st);
    ctr_create(&c, spec, stdio_flags, res);
    if (res->create_r == 0) {
        res->start_r = ops->container_start(NULL, c.ctr, 0, &res->err);
        if (res->start_r == 0)
            drain(&c, res);
        void *init = ops->container_init_process(NULL, c.ctr);
        assert_int_equal(ops->process_wait(NULL, init, 0, &res->st, &res->err), 0);
    } else {
        c.ctr = NULL;
    }
    ctr_destroy(&c);
}

static void run(json_t *spec, struct result *res)
{
    run_flags(spec, 0, res);
}

static void run_ok(json_t *spec, struct result *res)
{
    run(spec, res);
    if (res->create_r || res->start_r)
        print_message("error: %s\n", res->err.msg);
    assert_int_equal(res->create_r, 0);
    assert_int_equal(res->start_r, 0);
}

/* ---- tests: namespaces, rootfs, exit status ---- */

static void test_isolation_process_pid1(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    run_ok(spec_sh("echo $$"), &r);
    assert_string_equal(r.out, "1\n");
    assert_int_equal(r.st.exit_code, 0);
}

static void test_isolation_process_host_pids_invisible(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    run_ok(spec_sh("ls /proc | grep -c '^[0-9]'"), &r);
    /* sh, ls and grep at most. */
    assert_true(atoi(r.out) >= 1 && atoi(r.out) <= 3);
}

static void test_isolation_process_hostname_env_cwd(void **state)
{
    struct result r;
    json_t *spec = spec_sh("hostname; echo $FOO; pwd; ulimit -n");
    SKIP_UNLESS_ROOT();
    json_object_set_new(json_object_get(spec, "process"), "cwd", json_string("/tmp"));
    run_ok(spec, &r);
    /* The 1048576 asked for is clamped to the host's hard limit instead of failing. */
    {
        struct rlimit rl;
        char want[256];
        getrlimit(RLIMIT_NOFILE, &rl);
        FMT(want, "berthtest\nbar\n/tmp\n%llu\n",
            (unsigned long long)(rl.rlim_max < 1048576 ? rl.rlim_max : 1048576));
        assert_string_equal(r.out, want);
    }
}

static void test_isolation_process_exit_codes(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    run_ok(spec_sh("exit 3"), &r);
    assert_int_equal(r.st.exit_code, 3);
    assert_int_equal(r.st.signal, 0);
    /* Killed from outside (pid 1 of a namespace can't SIGKILL itself). */
    {
        struct ctr c;
        berth_err_t err = { 0 };
        void *init;
        memset(&r, 0, sizeof(r));
        r.st.struct_size = sizeof(r.st);
        ctr_create(&c, base_spec(rootfs, strv("sleep", "1000", NULL)), 0, &r);
        assert_int_equal(r.create_r, 0);
        assert_int_equal(ops->container_start(NULL, c.ctr, 0, &err), 0);
        init = ops->container_init_process(NULL, c.ctr);
        assert_int_equal(ops->process_signal(NULL, init, SIGKILL, 0, &err), 0);
        assert_int_equal(ops->process_wait(NULL, init, 0, &r.st, &err), 0);
        assert_int_equal(r.st.exit_code, 137);
        assert_int_equal(r.st.signal, SIGKILL);
        /* Once collected, it can't be signalled: the pid may belong to someone else now. */
        assert_int_equal(ops->process_signal(NULL, init, SIGTERM, 0, &err), -ESRCH);
        ctr_destroy(&c);
    }
}

static void test_isolation_process_stdio_pipes(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    run_ok(spec_sh("echo to-out; echo to-err >&2"), &r);
    assert_string_equal(r.out, "to-out\n");
    assert_string_equal(r.errout, "to-err\n");
}

static void test_isolation_process_only_stdio_fds(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    /* ls itself holds one more fd for the directory it reads. */
    run_ok(base_spec(rootfs, strv("ls", "/proc/self/fd", NULL)), &r);
    assert_string_equal(r.out, "0\n1\n2\n3\n");
}

static void test_isolation_process_no_sys_admin(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    run_ok(spec_sh("mount -t tmpfs none /mnt 2>/dev/null && echo mounted; echo done"), &r);
    assert_string_equal(r.out, "done\n");
}

static void test_isolation_process_readonly_root_and_masks(void **state)
{
    struct result r;
    json_t *spec = spec_sh("touch /newfile 2>/dev/null && echo wrote; wc -c < /proc/keys; "
                           "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys; "
                           "echo ok");
    SKIP_UNLESS_ROOT();
    json_object_set_new(json_object_get(spec, "root"), "readonly", json_true());
    run_ok(spec, &r);
    assert_string_equal(r.out, "0\nok\n");
}

static void test_isolation_process_bind_and_tmpfs(void **state)
{
    struct result r;
    char src[PATH_MAX], file[PATH_MAX];
    json_t *spec = spec_sh("cat /data/hello; touch /data/x 2>/dev/null && echo rw; "
                           "touch /scratch/y && echo tmpfs");
    FILE *f;
    SKIP_UNLESS_ROOT();
    FMT(src, "%s/bindsrc", base);
    mkdir(src, 0755);
    FMT(file, "%s/hello", src);
    f = fopen(file, "w");
    fputs("hi\n", f);
    fclose(f);
    json_array_append_new(json_object_get(spec, "mounts"),
                          mnt("/data", "bind", src, strv("rbind", "ro", NULL)));
    json_array_append_new(json_object_get(spec, "mounts"),
                          mnt("/scratch", "tmpfs", "tmpfs", strv("size=1m", NULL)));
    run_ok(spec, &r);
    assert_string_equal(r.out, "hi\ntmpfs\n");
    unlink(file);
    rmdir(src);
}

static void test_isolation_process_user_switch(void **state)
{
    struct result r;
    json_t *spec = spec_sh("id -u; id -g");
    SKIP_UNLESS_ROOT();
    json_object_set_new(json_object_get(spec, "process"), "user",
                        json_pack("{s:i, s:i}", "uid", 1000, "gid", 1000));
    run_ok(spec, &r);
    assert_string_equal(r.out, "1000\n1000\n");

    spec = spec_sh("id");
    json_object_set_new(json_object_get(spec, "process"), "user",
                        json_pack("{s:i, s:i, s:s}", "uid", 0, "gid", 0, "username", "app:app"));
    run_ok(spec, &r);
    assert_non_null(strstr(r.out, "uid=1000(app) gid=1000(app)"));
    assert_non_null(strstr(r.out, "2000(extra)"));

    spec = spec_sh("id");
    json_object_set_new(json_object_get(spec, "process"), "user",
                        json_pack("{s:i, s:i, s:s}", "uid", 0, "gid", 0, "username", "nosuch"));
    run(spec, &r);
    assert_int_equal(r.create_r, -ENOENT);
    assert_non_null(strstr(r.err.msg, "nosuch"));
}

static void test_isolation_process_seccomp(void **state)
{
    struct result r;
    json_t *spec = spec_sh("mkdir /tmp/d 2>/dev/null; echo rc=$?; touch /tmp/f && echo touched");
    SKIP_UNLESS_ROOT();
    json_object_set_new(json_object_get(spec, "linux"), "seccomp",
                        json_pack("{s:s, s:[s], s:[{s:[s, s], s:s, s:i}]}", "defaultAction",
                                  "SCMP_ACT_ALLOW", "architectures", "SCMP_ARCH_X86_64", "syscalls",
                                  "names", "mkdir", "mkdirat", "action", "SCMP_ACT_ERRNO",
                                  "errnoRet", EPERM));
    run_ok(spec, &r);
    assert_string_equal(r.out, "rc=1\ntouched\n");

    /* Without no_new_privs the filter goes in before the switch to uid 1000. */
    spec = spec_sh("mkdir /tmp/d 2>/dev/null; echo rc=$?; id -u");
    json_object_set_new(json_object_get(spec, "process"), "noNewPrivileges", json_false());
    json_object_set_new(json_object_get(spec, "process"), "user",
                        json_pack("{s:i, s:i}", "uid", 1000, "gid", 1000));
    json_object_set_new(json_object_get(spec, "linux"), "seccomp",
                        json_pack("{s:s, s:[{s:[s, s], s:s, s:i}]}", "defaultAction",
                                  "SCMP_ACT_ALLOW", "syscalls", "names", "mkdir", "mkdirat",
                                  "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM));
    run_ok(spec, &r);
    assert_string_equal(r.out, "rc=1\n1000\n");
}

static void test_isolation_process_seccomp_default_profile(void **state)
{
    struct result r;
    json_error_t jerr;
    json_t *profile, *spec = spec_sh("mkdir /tmp/d && echo made; "
                                     "mount -t tmpfs none /mnt 2>/dev/null || echo denied");
    const char *path = getenv("SECCOMP_DEFAULT");
    SKIP_UNLESS_ROOT();
    if (!path) {
        json_decref(spec);
        skip();
    }
    profile = json_load_file(path, 0, &jerr);
    assert_non_null(profile);
    json_object_set_new(json_object_get(spec, "linux"), "seccomp", profile);
    run_ok(spec, &r);
    assert_string_equal(r.out, "made\ndenied\n");
}

static void test_isolation_process_exec_errors(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    run(base_spec(rootfs, strv("no-such-program", NULL)), &r);
    assert_int_equal(r.create_r, 0);
    assert_int_equal(r.start_r, -ENOENT);
    assert_string_equal(r.err.msg, "exec: \"no-such-program\": executable file not found in $PATH");

    run(base_spec(rootfs, strv("/etc/passwd", NULL)), &r);
    assert_int_equal(r.start_r, -EACCES);
}

static void test_isolation_process_bad_rootfs(void **state)
{
    struct result r;
    int before;
    char line[4096];
    FILE *f;
    SKIP_UNLESS_ROOT();
    f = fopen("/proc/self/mountinfo", "r");
    for (before = 0; fgets(line, sizeof(line), f);)
        before++;
    fclose(f);
    run(base_spec("/nonexistent/rootfs", sh("true")), &r);
    assert_true(r.create_r < 0);
    if (!strstr(r.err.msg, "rootfs"))
        fprintf(stderr, "create failed with: %s\n", r.err.msg);
    assert_non_null(strstr(r.err.msg, "rootfs"));
    f = fopen("/proc/self/mountinfo", "r");
    int after = 0;
    while (fgets(line, sizeof(line), f))
        after++;
    fclose(f);
    assert_int_equal(before, after);
}

/* ---- security ---- */

static void symlink_escape(void)
{
    char root2[PATH_MAX], cmd[PATH_MAX * 2], src[PATH_MAX], inside[PATH_MAX], host[PATH_MAX];
    struct result r;
    json_t *spec;
    struct stat st;
    SKIP_UNLESS_ROOT();
    FMT(root2, "%s/evilroot", base);
    FMT(cmd, "cp -a '%s' '%s' && rmdir '%s/mnt' && ln -s / '%s/mnt'", rootfs, root2, root2, root2);
    assert_int_equal(system(cmd), 0);
    FMT(src, "%s/escsrc", base);
    mkdir(src, 0755);
    FMT(host, "/berth-escape-%d", (int)getpid());
    FMT(inside, "%s%s", root2, host);
    spec = base_spec(root2, sh("ls -d /berth-escape-* && echo ok"));
    FMT(cmd, "/mnt%s", host);
    json_array_append_new(json_object_get(spec, "mounts"),
                          mnt(cmd, "bind", src, strv("rbind", NULL)));
    run_ok(spec, &r);
    assert_true(strstr(r.out, "ok") != NULL);
    /* The target landed inside the rootfs, never on the host's /. */
    assert_int_equal(stat(host, &st), -1);
    assert_int_equal(stat(inside, &st), 0);
    rmdir(src);
    FMT(cmd, "rm -rf '%s'", root2);
    assert_int_equal(system(cmd), 0);
}

static void test_isolation_process_symlink_mount_target_stays_inside(void **state)
{
    SKIP_UNLESS_ROOT();
    symlink_escape();
    /* The same through the component walk used where the kernel has no openat2. */
    setenv("BERTH_PROCESS_NO_OPENAT2", "1", 1);
    symlink_escape();
    unsetenv("BERTH_PROCESS_NO_OPENAT2");
}

static void test_isolation_process_host_binaries_unreachable(void **state)
{
    char script[PATH_MAX * 3], self[PATH_MAX];
    struct result r;
    ssize_t n;
    SKIP_UNLESS_ROOT();
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    /*
     * The host's binaries are not in the container's view, and the init's
     * /proc/1/exe is the container's own program, not a berth binary.
     */
    snprintf(script, sizeof(script),
             "test -e '%s' && echo visible; readlink /proc/1/exe; "
             "for p in /proc/[0-9]*; do echo x >> $p/exe 2>/dev/null && echo wrote; done; "
             "echo end",
             self);
    run_ok(spec_sh(script), &r);
    assert_string_equal(r.out, "/bin/busybox\nend\n");
}

static void test_isolation_process_no_host_fd_as_cwd(void **state)
{
    struct result r;
    char cwd[64];
    int dirfd;
    SKIP_UNLESS_ROOT();
    /* A host directory open in the caller, as a leaked cgroup dir fd was in CVE-2024-21626. */
    assert_int_equal(access("/etc/debian_version", F_OK), 0);
    dirfd = open("/", O_RDONLY | O_DIRECTORY);
    assert_true(dirfd >= 0);
    for (int fd = 3; fd <= dirfd + 3; fd++) {
        json_t *spec = spec_sh("test -e etc/debian_version && echo HOST; echo end");
        FMT(cwd, "/proc/self/fd/%d", fd);
        json_object_set_new(json_object_get(spec, "process"), "cwd", json_string(cwd));
        run(spec, &r);
        /* Either the cwd doesn't resolve, or it is not the host's root. */
        if (r.create_r == 0 && r.start_r == 0)
            assert_string_equal(r.out, "end\n");
    }
    close(dirfd);
}

static void test_isolation_process_overlay_rootfs(void **state)
{
    char upper[PATH_MAX], work[PATH_MAX], opt_lower[PATH_MAX + 16], opt_upper[PATH_MAX + 16],
        opt_work[PATH_MAX + 16], probe[PATH_MAX], cmd[PATH_MAX + 16];
    const char *opts[3] = { opt_lower, opt_upper, opt_work };
    berth_mount_t m = { .struct_size = sizeof(m),
                        .type = "overlay",
                        .source = "overlay",
                        .target = "/",
                        .options = opts,
                        .n_options = 3 };
    berth_mount_list_t list = { .struct_size = sizeof(list), .n_mounts = 1, .mounts = &m };
    berth_sandbox_spec_t ss = { .struct_size = sizeof(ss), .config_json = "{}" };
    berth_container_spec_t cs = { .struct_size = sizeof(cs) };
    berth_stdio_t io = { .struct_size = sizeof(io), .in = -1, .out = -1, .err = -1 };
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    struct stat sb_;
    void *sb, *ctr;
    char *text;
    json_t *spec;
    SKIP_UNLESS_ROOT();
    FMT(upper, "%s/ovl-upper", base);
    FMT(work, "%s/ovl-work", base);
    mkdir(upper, 0755);
    mkdir(work, 0755);
    FMT(opt_lower, "lowerdir=%s", rootfs);
    FMT(opt_upper, "upperdir=%s", upper);
    FMT(opt_work, "workdir=%s", work);
    FMT(cmd, "%s/ovl-s", base);
    mkdir(cmd, 0711);
    ss.id = cs.id = "00000000000000000000000000000000000000000000000000000000000000aa";
    ss.state_dir = cmd;
    assert_int_equal(ops->sandbox_create(NULL, &ss, 0, &sb, &err), 0);
    FMT(cmd, "%s/ovl-c", base);
    mkdir(cmd, 0711);
    cs.state_dir = cmd;
    /* root.path is ignored when the storage driver gave mounts. */
    spec = base_spec("/nonexistent", sh("touch /written-in-upper"));
    text = json_dumps(spec, 0);
    json_decref(spec);
    cs.oci_spec_json = text;
    cs.rootfs = &list;
    cs.stdio = &io;
    if (ops->container_create(NULL, sb, &cs, 0, &ctr, &err) != 0)
        fail_msg("create: %s", err.msg);
    free(text);
    assert_int_equal(ops->container_start(NULL, ctr, 0, &err), 0);
    assert_int_equal(ops->process_wait(NULL, ops->container_init_process(NULL, ctr), 0, &st, &err),
                     0);
    assert_int_equal(st.exit_code, 0);
    assert_int_equal(ops->container_delete(NULL, ctr, 0, &err), 0);
    assert_int_equal(ops->sandbox_destroy(NULL, sb, 0, &err), 0);
    FMT(probe, "%s/written-in-upper", upper);
    assert_int_equal(stat(probe, &sb_), 0);
    FMT(probe, "%s/written-in-upper", rootfs);
    assert_int_equal(stat(probe, &sb_), -1);
    FMT(cmd, "rm -rf '%s' '%s'", upper, work);
    assert_int_equal(system(cmd), 0);
}

static void test_isolation_process_reopen(void **state)
{
    struct ctr c;
    struct result r = { 0 };
    berth_err_t err = { 0 };
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_container_spec_t cs = { .struct_size = sizeof(cs) };
    berth_sandbox_spec_t ss = { .struct_size = sizeof(ss) };
    berth_net_attach_t a1 = { .struct_size = sizeof(a1) }, a2 = { .struct_size = sizeof(a2) };
    berth_blob_t *stats = NULL;
    berth_handle_t h;
    void *again, *sb2, *p2, *init;
    SKIP_UNLESS_ROOT();
    ctr_create(&c, base_spec(rootfs, strv("sleep", "1000", NULL)), 0, &r);
    assert_int_equal(r.create_r, 0);
    assert_int_equal(ops->container_start(NULL, c.ctr, 0, &err), 0);

    /* What another process (a restarted shim, `berth` as an OCI runtime) would do. */
    ss.id = c.id;
    ss.state_dir = c.sdir;
    assert_int_equal(ops->sandbox_open(NULL, &ss, 0, &sb2, &err), 0);
    assert_int_equal(ops->sandbox_network(NULL, c.sb, 0, &a1, &err), 0);
    assert_int_equal(ops->sandbox_network(NULL, sb2, 0, &a2, &err), 0);
    assert_int_equal(a1.type, BERTH_NET_ATTACH_NETNS);
    assert_string_equal(a1.path, a2.path);
    cs.id = c.id;
    cs.state_dir = c.cdir;
    assert_int_equal(ops->container_open(NULL, sb2, &cs, 0, &again, &err), 0);
    p2 = ops->container_init_process(NULL, again);
    assert_int_equal(ops->process_wait_handle(NULL, p2, &h, &err), 0);
    assert_true(h >= 0);
    assert_int_equal(ops->process_wait(NULL, p2, BERTH_WAIT_NOHANG, &st, &err), -EAGAIN);
    assert_int_equal(ops->container_pause(NULL, again, 0, &err), 0);
    assert_int_equal(ops->container_resume(NULL, again, 0, &err), 0);
    assert_int_equal(ops->container_stats(NULL, again, 0, &stats, &err), 0);
    berth_blob_release(stats);
    assert_int_equal(ops->process_signal(NULL, p2, SIGKILL, 0, &err), 0);
    /* Only the parent collects the status. */
    init = ops->container_init_process(NULL, c.ctr);
    assert_int_equal(ops->process_wait(NULL, init, 0, &st, &err), 0);
    assert_int_equal(st.exit_code, 137);
    assert_int_equal(ops->process_wait(NULL, p2, 0, &st, &err), -ECHILD);
    ops->container_release(NULL, again);
    ops->sandbox_release(NULL, sb2);
    ctr_destroy(&c);
}

/* ---- exec, tty ---- */

static void test_isolation_process_exec(void **state)
{
    struct ctr c;
    struct result r = { 0 };
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    int out[2];
    char buf[256] = "";
    ssize_t n;
    void *proc, *init;
    berth_stdio_t io = { .struct_size = sizeof(io), .in = -1, .err = -1, .tty_master = -1 };
    berth_process_spec_t ps = {
        .struct_size = sizeof(ps),
        .id = "exec1",
        .process_json = "{\"args\":[\"sh\",\"-c\",\"echo exec-$FOO $$; "
                        "ls /proc | grep -c '^[0-9]'; exit 4\"],"
                        "\"env\":[\"PATH=/bin\",\"FOO=x\"],\"cwd\":\"/tmp\"}",
        .stdio = &io,
    };
    SKIP_UNLESS_ROOT();
    ctr_create(&c, base_spec(rootfs, strv("sleep", "1000", NULL)), 0, &r);
    assert_int_equal(r.create_r, 0);
    assert_int_equal(ops->container_start(NULL, c.ctr, 0, &err), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    io.out = out[1];
    if (ops->process_exec(NULL, c.ctr, &ps, 0, &proc, &err) != 0)
        fail_msg("exec: %s", err.msg);
    close(out[1]);
    for (size_t len = 0; (n = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0;)
        len += (size_t)n, buf[len] = '\0';
    close(out[0]);
    assert_int_equal(ops->process_wait(NULL, proc, 0, &st, &err), 0);
    assert_int_equal(st.exit_code, 4);
    /* Not pid 1, and the sleep, the sh, ls and grep are what it sees. */
    assert_true(strncmp(buf, "exec-x ", 7) == 0);
    assert_true(atoi(buf + 7) > 1);
    ops->process_release(NULL, proc);

    init = ops->container_init_process(NULL, c.ctr);
    assert_int_equal(ops->process_wait(NULL, init, BERTH_WAIT_NOHANG, &st, &err), -EAGAIN);
    assert_int_equal(ops->process_signal(NULL, init, SIGKILL, 0, &err), 0);
    assert_int_equal(ops->process_wait(NULL, init, 0, &st, &err), 0);
    assert_int_equal(st.exit_code, 137);
    ctr_destroy(&c);
}

static void test_isolation_process_tty(void **state)
{
    struct result r;
    SKIP_UNLESS_ROOT();
    run_flags(spec_sh("tty; stty size"), BERTH_STDIO_F_TTY, &r);
    assert_int_equal(r.create_r, 0);
    assert_non_null(strstr(r.out, "/dev/pts/0"));
    assert_int_equal(r.st.exit_code, 0);
}

static void test_isolation_process_exec_tty_resize(void **state)
{
    struct ctr c;
    struct result r = { 0 };
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    berth_stdio_t io = { .struct_size = sizeof(io),
                         .flags = BERTH_STDIO_F_TTY,
                         .in = -1,
                         .out = -1,
                         .err = -1,
                         .tty_master = -1,
                         .tty_cols = 80,
                         .tty_rows = 24 };
    berth_process_spec_t ps = {
        .struct_size = sizeof(ps),
        .id = "exec-tty",
        .process_json = "{\"args\":[\"sh\",\"-c\",\"stty size; read x; stty size; tty\"],"
                        "\"env\":[\"PATH=/bin\"],\"cwd\":\"/\",\"terminal\":true}",
        .stdio = &io,
    };
    char buf[512] = "";
    size_t len = 0;
    ssize_t n;
    void *proc;
    SKIP_UNLESS_ROOT();
    ctr_create(&c, base_spec(rootfs, strv("sleep", "1000", NULL)), 0, &r);
    assert_int_equal(r.create_r, 0);
    assert_int_equal(ops->container_start(NULL, c.ctr, 0, &err), 0);
    if (ops->process_exec(NULL, c.ctr, &ps, 0, &proc, &err) != 0)
        fail_msg("exec: %s", err.msg);
    assert_true(io.tty_master >= 0);
    /* First size, then resize, then let it print the new one. */
    while (!strstr(buf, "24 80") &&
           (n = read((int)io.tty_master, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n, buf[len] = '\0';
    assert_int_equal(ops->process_resize(NULL, proc, 100, 40, 0, &err), 0);
    assert_int_equal(write((int)io.tty_master, "\n", 1), 1);
    while ((n = read((int)io.tty_master, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n, buf[len] = '\0';
    assert_non_null(strstr(buf, "40 100"));
    assert_non_null(strstr(buf, "/dev/pts/"));
    assert_int_equal(ops->process_wait(NULL, proc, 0, &st, &err), 0);
    assert_int_equal(st.exit_code, 0);
    ops->process_release(NULL, proc);
    close((int)io.tty_master);
    ctr_destroy(&c);
}

static void test_isolation_process_oom_score_adj(void **state)
{
    struct result r;
    json_t *spec = spec_sh("cat /proc/self/oom_score_adj");
    SKIP_UNLESS_ROOT();
    json_object_set_new(json_object_get(spec, "process"), "oomScoreAdj", json_integer(500));
    run_ok(spec, &r);
    assert_string_equal(r.out, "500\n");
}

/* ---- cgroups ---- */

static void test_isolation_process_pause_stats(void **state)
{
    struct ctr c;
    struct result r = { 0 };
    berth_err_t err = { 0 };
    berth_blob_t *stats = NULL;
    json_t *j;
    json_error_t jerr;
    SKIP_UNLESS_ROOT();
    ctr_create(&c, base_spec(rootfs, strv("sleep", "1000", NULL)), 0, &r);
    assert_int_equal(r.create_r, 0);
    assert_int_equal(ops->container_start(NULL, c.ctr, 0, &err), 0);
    assert_int_equal(ops->container_pause(NULL, c.ctr, 0, &err), 0);
    assert_int_equal(ops->container_resume(NULL, c.ctr, 0, &err), 0);
    assert_int_equal(ops->container_stats(NULL, c.ctr, 0, &stats, &err), 0);
    j = json_loads(stats->data, 0, &jerr);
    assert_non_null(j);
    assert_true(json_is_object(json_object_get(j, "pids")));
    json_decref(j);
    berth_blob_release(stats);
    ctr_destroy(&c);
}

static void test_isolation_process_oom(void **state)
{
    struct result r;
    json_t *spec = base_spec(
        rootfs, strv("dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=200", NULL));
    SKIP_UNLESS_ROOT();
    json_object_set_new(json_object_get(spec, "linux"), "resources",
                        json_pack("{s:{s:I, s:I}}", "memory", "limit", (json_int_t)64 << 20, "swap",
                                  (json_int_t)64 << 20));
    run_ok(spec, &r);
    assert_int_equal(r.st.exit_code, 137);
    assert_int_equal(r.st.signal, SIGKILL);
    assert_true(r.st.flags & BERTH_EXIT_F_OOM_KILLED);
}

static void test_isolation_process_pids_limit(void **state)
{
    struct result r;
    json_t *spec = spec_sh("sh -c 'for i in $(seq 1 40); do sleep 30 & done' 2>/dev/null; "
                           "set -- /proc/[0-9]*; echo $#");
    SKIP_UNLESS_ROOT();
    /*
     * The bomb runs in a child shell (ash gives up at the first failed fork)
     * and the count uses builtins only: at the limit nothing else can fork.
     */
    json_object_set_new(json_object_get(spec, "linux"), "resources",
                        json_pack("{s:{s:i}}", "pids", "limit", 20));
    run_ok(spec, &r);
    assert_true(atoi(r.out) > 1);
    assert_true(atoi(r.out) <= 20);
}

/* ---- user namespaces ---- */

static void test_isolation_process_userns(void **state)
{
    struct result r;
    json_t *spec = spec_sh("id -u; cat /proc/self/uid_map");
    json_t *map = json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", 100000, "size", 65536);
    SKIP_UNLESS_ROOT();
    json_object_set(json_object_get(spec, "linux"), "uidMappings", map);
    json_object_set(json_object_get(spec, "linux"), "gidMappings", map);
    run_ok(spec, &r);
    assert_non_null(strstr(r.out, "0\n"));
    assert_non_null(strstr(r.out, "100000"));

    /* exec joins the user namespace too. */
    {
        struct ctr c;
        berth_err_t err = { 0 };
        berth_exit_status_t st = { .struct_size = sizeof(st) };
        berth_stdio_t io = { .struct_size = sizeof(io), .in = -1, .err = -1, .tty_master = -1 };
        berth_process_spec_t ps = {
            .struct_size = sizeof(ps),
            .id = "exec-userns",
            .process_json = "{\"args\":[\"sh\",\"-c\",\"id -u; cat /proc/self/uid_map\"],"
                            "\"cwd\":\"/\"}",
            .stdio = &io,
        };
        int out[2];
        char buf[256] = "";
        size_t len = 0;
        ssize_t n;
        void *proc;

        spec = base_spec(rootfs, strv("sleep", "1000", NULL));
        json_object_set(json_object_get(spec, "linux"), "uidMappings", map);
        json_object_set(json_object_get(spec, "linux"), "gidMappings", map);
        memset(&r, 0, sizeof(r));
        ctr_create(&c, spec, 0, &r);
        assert_int_equal(r.create_r, 0);
        assert_int_equal(ops->container_start(NULL, c.ctr, 0, &err), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        io.out = out[1];
        if (ops->process_exec(NULL, c.ctr, &ps, 0, &proc, &err) != 0)
            fail_msg("exec: %s", err.msg);
        close(out[1]);
        while ((n = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0)
            len += (size_t)n, buf[len] = '\0';
        close(out[0]);
        assert_int_equal(ops->process_wait(NULL, proc, 0, &st, &err), 0);
        assert_int_equal(st.exit_code, 0);
        assert_true(strncmp(buf, "0\n", 2) == 0);
        assert_non_null(strstr(buf, "100000"));
        ops->process_release(NULL, proc);
        ctr_destroy(&c);
    }
    json_decref(map);
}

/* ---- no leaks ---- */

/*
 * Mounts of this namespace under this test's directory: what a container
 * could leave on the host's side (its state dirs and rootfs are there).
 * Not all of mountinfo: other tests running meanwhile mount and unmount
 * elsewhere in the same namespace.
 */
static int count_own_mounts(void)
{
    char line[4096];
    int n = 0;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, base) != NULL;
    fclose(f);
    return n;
}

/* Entries of @path whose names start with @prefix (NULL: all but dot files). */
static int count_dir_prefix(const char *path, const char *prefix)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (!prefix || !strncmp(e->d_name, prefix, strlen(prefix))))
            n++;
    closedir(d);
    return n;
}

static int count_dir(const char *path)
{
    return count_dir_prefix(path, NULL);
}

/*
 * This process's containers' cgroups (ctr_create's ids start with our pid):
 * other berths on the machine make theirs in the same berth/ parent.
 */
static int count_own_cgroups(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%056x", (unsigned)getpid());
    return count_dir_prefix("/sys/fs/cgroup/pids/berth", prefix);
}

static void test_isolation_process_cycles_leave_nothing(void **state)
{
    int mounts, fds, cgroups;
    SKIP_UNLESS_ROOT();
    mounts = count_own_mounts();
    fds = count_dir("/proc/self/fd");
    cgroups = count_own_cgroups();
    for (int i = 0; i < 50; i++) {
        struct ctr c;
        struct result r = { 0 };
        berth_err_t err = { 0 };
        berth_exit_status_t st = { .struct_size = sizeof(st) };
        void *init;
        ctr_create(&c, base_spec(rootfs, strv("sleep", "1000", NULL)), 0, &r);
        assert_int_equal(r.create_r, 0);
        assert_int_equal(ops->container_start(NULL, c.ctr, 0, &err), 0);
        init = ops->container_init_process(NULL, c.ctr);
        assert_int_equal(ops->process_signal(NULL, init, SIGKILL, 0, &err), 0);
        assert_int_equal(ops->process_wait(NULL, init, 0, &st, &err), 0);
        assert_int_equal(st.exit_code, 137);
        ctr_destroy(&c);
    }
    assert_int_equal(count_own_mounts(), mounts);
    assert_int_equal(count_dir("/proc/self/fd"), fds);
    assert_int_equal(count_own_cgroups(), cgroups);
    /* No zombies: nothing is left to reap. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static int group_setup(void **state)
{
    const char *script = getenv("MAKE_ROOTFS");
    char cmd[PATH_MAX * 2];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    ops = berth_plugin_entry()->ops;
    is_root = geteuid() == 0;
    if (!is_root)
        return 0;
    FMT(base, "%s/berth-process-test-XXXXXX", tmp);
    if (!mkdtemp(base))
        return -1;
    /* Searchable, so a container's root mapped to another uid can reach its rootfs. */
    chmod(base, 0711);
    FMT(rootfs, "%s/rootfs", base);
    FMT(cmd, "sh '%s' '%s'", script ? script : "tests/fixtures/make-busybox-rootfs.sh", rootfs);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    if (!is_root)
        return 0;
    FMT(cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolation_process_pid1),
        cmocka_unit_test(test_isolation_process_host_pids_invisible),
        cmocka_unit_test(test_isolation_process_hostname_env_cwd),
        cmocka_unit_test(test_isolation_process_exit_codes),
        cmocka_unit_test(test_isolation_process_stdio_pipes),
        cmocka_unit_test(test_isolation_process_only_stdio_fds),
        cmocka_unit_test(test_isolation_process_no_sys_admin),
        cmocka_unit_test(test_isolation_process_readonly_root_and_masks),
        cmocka_unit_test(test_isolation_process_bind_and_tmpfs),
        cmocka_unit_test(test_isolation_process_user_switch),
        cmocka_unit_test(test_isolation_process_seccomp),
        cmocka_unit_test(test_isolation_process_seccomp_default_profile),
        cmocka_unit_test(test_isolation_process_exec_errors),
        cmocka_unit_test(test_isolation_process_bad_rootfs),
        cmocka_unit_test(test_isolation_process_symlink_mount_target_stays_inside),
        cmocka_unit_test(test_isolation_process_host_binaries_unreachable),
        cmocka_unit_test(test_isolation_process_no_host_fd_as_cwd),
        cmocka_unit_test(test_isolation_process_overlay_rootfs),
        cmocka_unit_test(test_isolation_process_reopen),
        cmocka_unit_test(test_isolation_process_exec),
        cmocka_unit_test(test_isolation_process_tty),
        cmocka_unit_test(test_isolation_process_exec_tty_resize),
        cmocka_unit_test(test_isolation_process_oom_score_adj),
        cmocka_unit_test(test_isolation_process_pause_stats),
        cmocka_unit_test(test_isolation_process_oom),
        cmocka_unit_test(test_isolation_process_pids_limit),
        cmocka_unit_test(test_isolation_process_userns),
        cmocka_unit_test(test_isolation_process_cycles_leave_nothing),
    };
    return cmocka_run_group_tests_name("isolation-process", tests, group_setup, group_teardown);
}
