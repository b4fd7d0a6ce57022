/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for core/lib/hostinfo.c. The cgroup layout detection runs on
 * real mount trees the test builds in a private mount namespace of a child
 * process (root only), so the host's own mounts are never touched; the
 * detection of this host is checked against facts the test reads itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/magic.h>

#include "hostinfo.h"
#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* Exit status of a child that could not build its tree for lack of privilege or kernel
 * support: the test is skipped, not failed (automake's convention). */
#define CHILD_SKIP 77

enum layout {
    LAYOUT_TMPFS_UNIFIED,    /* tmpfs + cgroup2 at unified/ */
    LAYOUT_TMPFS_V1,         /* tmpfs + a v1 named hierarchy at x/ */
    LAYOUT_TMPFS_V1_UNIFIED, /* both */
    LAYOUT_CGROUP2,          /* cgroup2 mounted at the dir itself */
    LAYOUT_TMPFS_EMPTY,      /* a tmpfs and nothing else */
};

static void child_report(int fd, const char *text)
{
    ssize_t n = write(fd, text, strlen(text));
    (void)n;
}

/* In the child: build @layout at @dir, write the detected mode (or "error: ...") to @fd. */
static int build_and_detect(enum layout layout, const char *dir, int fd)
{
    char sub[512], msg[600];
    int v1 = layout == LAYOUT_TMPFS_V1 || layout == LAYOUT_TMPFS_V1_UNIFIED;
    int unified = layout == LAYOUT_TMPFS_UNIFIED || layout == LAYOUT_TMPFS_V1_UNIFIED;

    if (unshare(CLONE_NEWNS) < 0) {
        snprintf(msg, sizeof(msg), "unshare(CLONE_NEWNS): %s", strerror(errno));
        child_report(fd, msg);
        return errno == EPERM ? CHILD_SKIP : 1;
    }
    /* Keep every mount below inside this namespace: it dies with the child. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        snprintf(msg, sizeof(msg), "error: make / private: %s", strerror(errno));
        child_report(fd, msg);
        return 1;
    }
    if (layout == LAYOUT_CGROUP2) {
        if (mount("cgroup2", dir, "cgroup2", 0, NULL) < 0) {
            snprintf(msg, sizeof(msg), "mount cgroup2: %s", strerror(errno));
            child_report(fd, msg);
            return CHILD_SKIP;
        }
    } else if (mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=64k") < 0) {
        snprintf(msg, sizeof(msg), "error: mount tmpfs: %s", strerror(errno));
        child_report(fd, msg);
        return 1;
    }
    if (unified) {
        snprintf(sub, sizeof(sub), "%s/unified", dir);
        if (mkdir(sub, 0755) < 0 || mount("cgroup2", sub, "cgroup2", 0, NULL) < 0) {
            snprintf(msg, sizeof(msg), "mount cgroup2 at %s: %s", sub, strerror(errno));
            child_report(fd, msg);
            return CHILD_SKIP;
        }
    }
    if (v1) {
        /* A named hierarchy with no controllers: it can be mounted beside the host's own
         * controllers and vanishes with its last mount. */
        snprintf(sub, sizeof(sub), "%s/x", dir);
        if (mkdir(sub, 0755) < 0 || mount("cgroup", sub, "cgroup", 0, "none,name=berthtest") < 0) {
            snprintf(msg, sizeof(msg), "mount cgroup v1 (name=berthtest) at %s: %s", sub,
                     strerror(errno));
            child_report(fd, msg);
            return CHILD_SKIP;
        }
    }
    child_report(fd, berth__cgroup_mode_at(dir));
    return 0;
}

/* Build @layout in a child's private mount namespace and check the mode it reads. */
static void check_layout(enum layout layout, const char *want)
{
    char dir[] = "/tmp/berth-test-cgroup-XXXXXX";
    char got[600] = "";
    int fds[2], status;
    ssize_t n, len = 0;
    pid_t pid;

    if (geteuid() != 0) {
        print_message("skipped: mounting test cgroup trees needs root\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        _exit(build_and_detect(layout, dir, fds[1]));
    }
    close(fds[1]);
    while ((n = read(fds[0], got + len, sizeof(got) - 1 - (size_t)len)) > 0)
        len += n;
    got[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* The child's mounts went with its namespace, so the dir is empty again. */
    assert_int_equal(rmdir(dir), 0);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == CHILD_SKIP) {
        print_message("skipped: %s (root with CAP_SYS_ADMIN and cgroup support needed)\n", got);
        skip();
    }
    if (WEXITSTATUS(status) != 0)
        fail_msg("child failed: %s", got);
    assert_string_equal(got, want);
}

static void test_hostinfo_cgroup_hybrid(void **state)
{
    check_layout(LAYOUT_TMPFS_UNIFIED, "hybrid");
}

static void test_hostinfo_cgroup_hybrid_with_v1(void **state)
{
    check_layout(LAYOUT_TMPFS_V1_UNIFIED, "hybrid");
}

static void test_hostinfo_cgroup_v1(void **state)
{
    check_layout(LAYOUT_TMPFS_V1, "v1");
}

static void test_hostinfo_cgroup_v2(void **state)
{
    check_layout(LAYOUT_CGROUP2, "v2");
}

static void test_hostinfo_cgroup_none(void **state)
{
    check_layout(LAYOUT_TMPFS_EMPTY, "none");
}

static void test_hostinfo_cgroup_missing_dir(void **state)
{
    assert_string_equal(berth__cgroup_mode_at("/nonexistent/berth/cgroup"), "none");
}

static unsigned long magic_of(const char *path)
{
    struct statfs sfs;
    return statfs(path, &sfs) == 0 ? (unsigned long)sfs.f_type : 0;
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;

    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int proc_filesystems_lists(const char *name)
{
    _cleanup_free_ char *needle = NULL;
    char buf[8192];
    size_t len;
    FILE *f = fopen("/proc/filesystems", "re");

    if (!f)
        return 0;
    len = fread(buf, 1, sizeof(buf) - 1, f);
    buf[len] = '\0';
    fclose(f);
    assert_true(asprintf(&needle, "\t%s\n", name) > 0);
    return strstr(buf, needle) != NULL;
}

static void test_hostinfo_detect_this_host(void **state)
{
    static const char *const modes[] = { "v2", "v1", "hybrid", "none" };
    unsigned long root_magic = magic_of("/sys/fs/cgroup");
    int expect_hybrid =
        root_magic == TMPFS_MAGIC && magic_of("/sys/fs/cgroup/unified") == CGROUP2_SUPER_MAGIC;
    berth_hostinfo_t info;
    int known = 0;

    memset(&info, 0xa5, sizeof(info)); /* detect must fill every field */
    berth__hostinfo_detect(&info);

    assert_true(info.kernel[0] != '\0');
    assert_non_null(memchr(info.kernel, '\0', sizeof(info.kernel)));
    assert_true(info.arch[0] != '\0');
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(modes); i++)
        known |= strcmp(info.cgroup_mode, modes[i]) == 0;
    if (!known)
        fail_msg("unexpected cgroup mode \"%.8s\"", info.cgroup_mode);
    /* Expectations computed here with statfs, independently of hostinfo.c. */
    assert_int_equal(strcmp(info.cgroup_mode, "hybrid") == 0, expect_hybrid);
    assert_int_equal(strcmp(info.cgroup_mode, "v2") == 0, root_magic == CGROUP2_SUPER_MAGIC);

    assert_int_equal(info.overlayfs, proc_filesystems_lists("overlay"));
    assert_int_equal(info.userns, read_long("/proc/sys/user/max_user_namespaces") > 0);
    if (!info.userns)
        assert_int_equal(info.userns_unprivileged, 0);
    if (read_long("/proc/sys/kernel/unprivileged_userns_clone") == 0)
        assert_int_equal(info.userns_unprivileged, 0);

    /* KVM: never more than was checked. */
    assert_non_null(memchr(info.kvm_detail, '\0', sizeof(info.kvm_detail)));
    assert_true(info.kvm_detail[0] != '\0');
    assert_null(strchr(info.kvm_detail, '\n'));
    if (info.kvm)
        assert_non_null(strstr(info.kvm_detail, "guest boot not probed"));
    if (access("/dev/kvm", F_OK) < 0)
        assert_int_equal(info.kvm, 0);
    print_message("host: cgroup %s, overlayfs %d, userns %d, kvm %d (%s)\n", info.cgroup_mode,
                  info.overlayfs, info.userns, info.kvm, info.kvm_detail);
}

static void test_hostinfo_to_json(void **state)
{
    _cleanup_json_ json_t *j = NULL;
    berth_hostinfo_t info;

    berth__hostinfo_detect(&info);
    j = berth__hostinfo_to_json(&info);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "cgroup_mode")), info.cgroup_mode);
    assert_string_equal(json_string_value(json_object_get(j, "kernel")), info.kernel);
    assert_string_equal(json_string_value(json_object_get(j, "arch")), info.arch);
    assert_string_equal(json_string_value(json_object_get(j, "kvm_detail")), info.kvm_detail);
    assert_true(json_is_boolean(json_object_get(j, "overlayfs")));
    assert_true(json_is_boolean(json_object_get(j, "userns")));
    assert_true(json_is_boolean(json_object_get(j, "userns_unprivileged")));
    assert_int_equal(json_is_true(json_object_get(j, "kvm")), info.kvm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostinfo_cgroup_hybrid),
        cmocka_unit_test(test_hostinfo_cgroup_hybrid_with_v1),
        cmocka_unit_test(test_hostinfo_cgroup_v1),
        cmocka_unit_test(test_hostinfo_cgroup_v2),
        cmocka_unit_test(test_hostinfo_cgroup_none),
        cmocka_unit_test(test_hostinfo_cgroup_missing_dir),
        cmocka_unit_test(test_hostinfo_detect_this_host),
        cmocka_unit_test(test_hostinfo_to_json),
    };

    return cmocka_run_group_tests_name("hostinfo", tests, NULL, NULL);
}
