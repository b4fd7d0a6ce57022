/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hyperv driver's qemu launcher (plugins/isolation/hyperv/hyperv-vm.h):
 * the command line it builds (microvm, direct kernel boot, the two
 * virtio-serial ports and the optional QMP monitor on inherited sockets,
 * paths with commas kept whole),
 * what it refuses, and with the real qemu-system-x86_64 (skipped when it
 * is missing): a qemu that fails (no such kernel) is seen to exit with its
 * reason in the console log, with nothing left (no process, no
 * descriptor). A tap's fd reaches qemu as fd 6 (a script in qemu's place
 * lists what it inherited), and nothing else of the caller's does. The
 * shape key that names a VM's snapshot, and the restore's command line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hyperv-vm.h"

static const hv_vm_spec_t base = {
    .kernel = "/k/vmlinux",
    .initrd = "/k/initrd.cpio",
    .accel = "tcg",
    .vcpus = 2,
    .mem_mib = 160,
    .console_log = "/dev/null",
};

/* Index of @arg in @argv, or -1. */
static int find(char **argv, const char *arg)
{
    for (int i = 0; argv[i]; i++)
        if (strcmp(argv[i], arg) == 0)
            return i;
    return -1;
}

/* The value after option @opt (its first occurrence); fails the test when missing. */
static const char *value_of(char **argv, const char *opt)
{
    int i = find(argv, opt);

    assert_true(i >= 0);
    assert_non_null(argv[i + 1]);
    return argv[i + 1];
}

static void test_argv_basic(void **state)
{
    char **argv = NULL;
    berth_err_t err = { 0 };
    (void)state;

    assert_int_equal(hv_vm_argv(&base, 3, 4, &argv, &err), 0);
    assert_string_equal(argv[0], "qemu-system-x86_64");
    assert_string_equal(value_of(argv, "-M"),
                        "microvm,x-option-roms=off,isa-serial=on,rtc=on,acpi=off");
    assert_string_equal(value_of(argv, "-accel"), "tcg");
    /* TCG: every feature qemu emulates but ERMS (hv_vm_argv()) */
    assert_string_equal(value_of(argv, "-cpu"), "max,-erms");
    assert_string_equal(value_of(argv, "-smp"), "2");
    assert_string_equal(value_of(argv, "-m"), "160");
    assert_string_equal(value_of(argv, "-kernel"), "/k/vmlinux");
    assert_string_equal(value_of(argv, "-initrd"), "/k/initrd.cpio");
    assert_true(find(argv, "-nodefaults") > 0 && find(argv, "-no-reboot") > 0);
    /* TCG: the timer waits skipped (hv_vm_argv()); KVM has none to skip (below). */
    assert_string_equal(value_of(argv, "-append"),
                        "console=ttyS0 quiet panic=-1 reboot=t noapictimer no_timer_check");
    /* The ports, on the inherited descriptors, by the names the agent looks for. */
    assert_true(find(argv, "socket,id=ctl,fd=3") > 0);
    assert_true(find(argv, "virtserialport,chardev=ctl,name=berth.control") > 0);
    assert_true(find(argv, "socket,id=io,fd=4") > 0);
    assert_true(find(argv, "virtserialport,chardev=io,name=berth.stdio") > 0);
    /* No root filesystem, no network asked for: none given. */
    assert_int_equal(find(argv, "-fsdev"), -1);
    assert_int_equal(find(argv, "-drive"), -1);
    assert_int_equal(find(argv, "-netdev"), -1);
    /* No monitor unless asked for. */
    assert_int_equal(find(argv, "-mon"), -1);
    hv_vm_argv_free(argv);
}

static void test_argv_devices(void **state)
{
    hv_vm_spec_t s = base;
    char **argv = NULL;
    berth_err_t err = { 0 };
    (void)state;

    s.qemu = "/opt/q/qemu";
    s.accel = "kvm";
    s.append = "berth.agent=debug";
    s.share_dir = "/run/b,erth/rootfs,readonly=on";
    s.tap = "tap0";
    s.mac = "02:42:ac:11:00:02";
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), 0);
    assert_string_equal(argv[0], "/opt/q/qemu");
    assert_string_equal(value_of(argv, "-cpu"), "host");
    assert_string_equal(value_of(argv, "-append"),
                        "console=ttyS0 quiet panic=-1 reboot=t berth.agent=debug");
    /* A comma in a path is doubled: it can't end the path and add an option. */
    assert_string_equal(value_of(argv, "-fsdev"),
                        "local,id=fs0,path=/run/b,,erth/rootfs,,readonly=on,"
                        "security_model=passthrough");
    assert_true(find(argv, "virtio-9p-device,fsdev=fs0,mount_tag=rootfs") > 0);
    assert_string_equal(value_of(argv, "-netdev"),
                        "tap,id=net0,ifname=tap0,script=no,downscript=no");
    assert_true(find(argv, "virtio-net-device,netdev=net0,mac=02:42:ac:11:00:02") > 0);
    hv_vm_argv_free(argv);

    s = base;
    s.block_path = "/var/b/root.img";
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), 0);
    assert_string_equal(value_of(argv, "-drive"),
                        "id=disk0,file=/var/b/root.img,format=raw,if=none,cache=none,aio=threads");
    assert_true(find(argv, "virtio-blk-device,drive=disk0") > 0);
    hv_vm_argv_free(argv);

    /* QMP (pause/resume) on an inherited socket, like the ports. */
    s = base;
    s.qmp_fd = 5;
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), 0);
    assert_true(find(argv, "socket,id=qmp,fd=5") > 0);
    assert_string_equal(value_of(argv, "-mon"), "chardev=qmp,mode=control");
    hv_vm_argv_free(argv);

    /* A tap's fd takes precedence over its name: qemu gets it at fd 6. */
    s = base;
    s.tap = "tap0";
    s.tap_fd = 17;
    s.mac = "02:42:ac:11:00:03";
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), 0);
    assert_string_equal(value_of(argv, "-netdev"), "tap,id=net0,fd=6");
    assert_true(find(argv, "virtio-net-device,netdev=net0,mac=02:42:ac:11:00:03") > 0);
    hv_vm_argv_free(argv);
}

static void test_argv_refused(void **state)
{
    hv_vm_spec_t s;
    char **argv = NULL;
    berth_err_t err = { 0 };
    (void)state;

    s = base;
    s.kernel = NULL;
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "kernel"));
    s = base;
    s.accel = "hvf";
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "hvf"));
    s = base;
    s.vcpus = 0;
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    s = base;
    s.mem_mib = 16;
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    s = base;
    s.share_dir = "/a";
    s.block_path = "/b";
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    s = base;
    s.qmp_fd = 2; /* stdio's, not a socket of its own */
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    s = base;
    s.append = "a\nb";
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    s = base;
    s.incoming = "/snap/it's"; /* qemu would hand it to a shell */
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "snapshot"));
    assert_null(argv);
}

/* A snapshot is read through cat, from a pipe: qemu 7.2 can't load one from a file's fd. */
static void test_argv_incoming(void **state)
{
    hv_vm_spec_t s = base;
    char **argv = NULL;
    berth_err_t err = { 0 };
    (void)state;

    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), 0);
    assert_int_equal(find(argv, "-incoming"), -1);
    hv_vm_argv_free(argv);
    s.incoming = "/state/snapshots/k.vmstate";
    assert_int_equal(hv_vm_argv(&s, 3, 4, &argv, &err), 0);
    assert_string_equal(value_of(argv, "-incoming"), "exec:cat '/state/snapshots/k.vmstate'");
    hv_vm_argv_free(argv);
}

/*
 * The shape key: the same for VMs that differ only in their own paths,
 * another one for anything qemu builds differently (memory, vCPUs, a
 * second share, the command line) and for a kernel file that changed; none
 * for a VM with a NIC or a disk. Real files stand in for the kernel and
 * initramfs (their identity is part of the key).
 */
static void test_shape_key(void **state)
{
    char dir[] = "/tmp/hv-key-XXXXXX", kernel[64], initrd[64], k1[33], k2[33];
    struct timespec later[2] = { { 0, UTIME_OMIT }, { 12345, 0 } };
    hv_vm_spec_t s = base, t;
    berth_err_t err = { 0 };
    FILE *f;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(kernel, sizeof(kernel), "%s/vmlinux", dir);
    snprintf(initrd, sizeof(initrd), "%s/initrd", dir);
    assert_non_null(f = fopen(kernel, "w"));
    fclose(f);
    assert_non_null(f = fopen(initrd, "w"));
    fclose(f);
    s.qemu = "/bin/sh"; /* any file: only its identity counts */
    s.kernel = kernel;
    s.initrd = initrd;
    s.share_dir = "/run/berth/c1/rootfs";
    s.console_log = "/run/berth/c1/console";
    s.qmp_fd = 1;
    assert_int_equal(hv_vm_shape_key(&s, k1, &err), 0);
    assert_int_equal(strlen(k1), 32);
    t = s;
    t.share_dir = "/run/berth/c2/rootfs";
    t.console_log = "/run/berth/c2/console";
    t.incoming = "/state/snapshots/x.vmstate";
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), 0);
    assert_string_equal(k1, k2);

    t = s;
    t.mem_mib = 512;
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), 0);
    assert_string_not_equal(k1, k2);
    t = s;
    t.vcpus = 1;
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), 0);
    assert_string_not_equal(k1, k2);
    t = s;
    t.binds_dir = "/run/berth/c1/binds";
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), 0);
    assert_string_not_equal(k1, k2);
    t = s;
    t.append = "loglevel=7";
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), 0);
    assert_string_not_equal(k1, k2);
    t = s;
    t.accel = "kvm";
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), 0);
    assert_string_not_equal(k1, k2);

    /* The same kernel path, another kernel. */
    assert_int_equal(utimensat(AT_FDCWD, kernel, later, 0), 0);
    assert_int_equal(hv_vm_shape_key(&s, k2, &err), 0);
    assert_string_not_equal(k1, k2);

    t = s;
    t.tap_fd = 7;
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), -EINVAL);
    t = s;
    t.share_dir = NULL;
    t.block_path = "/disk.img";
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), -EINVAL);
    t = s;
    t.kernel = "/nonexistent/vmlinux";
    assert_int_equal(hv_vm_shape_key(&t, k2, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/vmlinux"));

    unlink(kernel);
    unlink(initrd);
    rmdir(dir);
}

/* Open descriptors of this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *qemu_path(void)
{
    static char path[512];
    return hv_find_program("qemu-system-x86_64", NULL, path, sizeof(path)) ? path : NULL;
}

/* Wait up to @ms for qemu to exit; its wait status. */
static int wait_exit(hv_vm_t *vm, int ms)
{
    struct pollfd p = { .fd = vm->pidfd, .events = POLLIN };
    int status = 0;

    assert_int_equal(poll(&p, 1, ms), 1);
    assert_int_equal(hv_vm_exited(vm, &status), 1);
    return status;
}

static void test_qemu_fails_clearly(void **state)
{
    char dir[] = "/tmp/berth-hvvm-XXXXXX", log[256], buf[4096];
    hv_vm_spec_t s = base;
    hv_vm_t vm;
    berth_err_t err = { 0 };
    int fds = count_fds(), status, fd;
    ssize_t n;
    (void)state;

    if (!qemu_path())
        skip();
    assert_non_null(mkdtemp(dir));
    snprintf(log, sizeof(log), "%s/console.log", dir);
    s.qemu = qemu_path();
    s.kernel = "/nonexistent/vmlinux";
    s.initrd = NULL;
    s.console_log = log;
    s.qmp_fd = 1; /* a monitor too: its socket must not leak either */
    assert_int_equal(hv_vm_start(&s, &vm, &err), 0);
    assert_true(vm.qmp_fd >= 0);
    status = wait_exit(&vm, 30000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    /* qemu's own reason is in the log, for the container's error. */
    fd = open(log, O_RDONLY);
    assert_true(fd >= 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "/nonexistent/vmlinux"));
    /* The ports' peer is gone with qemu: reads see the end. */
    assert_int_equal(read(vm.control_fd, buf, 1), 0);
    /* The monitor may have greeted before qemu gave up: its end comes after that. */
    while ((n = read(vm.qmp_fd, buf, sizeof(buf))) > 0) {
    }
    assert_int_equal(n, 0);
    assert_int_equal(hv_vm_stop(&vm, 0), -1);
    assert_int_equal(count_fds(), fds);
    unlink(log);
    rmdir(dir);
}

/*
 * qemu's inherited fds with a tap: a script in qemu's place lists them. The
 * tap (a pipe end here: any fd will do) is at 6; 0-4 are stdio and the
 * ports; 5 and a stray fd of ours without close-on-exec are not there. The
 * pipe's fds are low (3, 4 in this process): where the ports go in the child.
 */
static void test_tap_fd_reaches_qemu(void **state)
{
    char dir[] = "/tmp/berth-hvvm-XXXXXX", log[256], script[256], buf[4096];
    hv_vm_spec_t s = base;
    hv_vm_t vm;
    berth_err_t err = { 0 };
    int p[2], stray, status;
    FILE *f;
    ssize_t n;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(log, sizeof(log), "%s/console.log", dir);
    snprintf(script, sizeof(script), "%s/qemu", dir);
    assert_non_null(f = fopen(script, "w"));
    fputs("#!/bin/sh\ncd /proc/$$/fd && for i in *; do [ -e \"$i\" ] && echo \"fd $i $(readlink "
          "$i)\"; done\n",
          f);
    fclose(f);
    assert_int_equal(chmod(script, 0755), 0);
    assert_int_equal(pipe(p), 0);
    stray = dup(p[0]); /* not close-on-exec: the launcher must close it all the same */
    s.qemu = script;
    s.console_log = log;
    s.tap_fd = p[1];
    assert_int_equal(hv_vm_start(&s, &vm, &err), 0);
    status = wait_exit(&vm, 30000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    hv_vm_stop(&vm, 0);
    assert_non_null(f = fopen(log, "r"));
    n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n > 0 ? n : 0] = '\0';
    {
        char want[64], *line;
        struct stat st;
        assert_int_equal(fstat(p[1], &st), 0);
        snprintf(want, sizeof(want), "fd 6 pipe:[%lu]", (unsigned long)st.st_ino);
        assert_non_null(strstr(buf, want));
        assert_null(strstr(buf, "fd 5 "));
        /* Only 0-4, 6 and the shell's own directory fd (from cd; above 9) may be open. */
        for (line = buf; (line = strstr(line, "fd ")); line += 3) {
            int k = atoi(line + 3);
            assert_true(k <= 4 || k == 6 || k >= 10);
        }
    }
    close(p[0]);
    close(p[1]);
    close(stray);
    unlink(script);
    unlink(log);
    rmdir(dir);
}

/* hv_find_program: the given dirs before $PATH, a path with a slash as it is, none. */
static void test_find_program(void **state)
{
    char dir[] = "/tmp/berth-find-XXXXXX", prog[600], buf[600];
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    int fd;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(prog, sizeof(prog), "%s/sh", dir);
    assert_true((fd = open(prog, O_WRONLY | O_CREAT, 0755)) >= 0);
    close(fd);
    /* "sh" is on $PATH too: the dirs win. */
    assert_int_equal(hv_find_program("sh", dir, buf, sizeof(buf)), 1);
    assert_string_equal(buf, prog);
    setenv("PATH", "/nonexistent", 1);
    assert_int_equal(hv_find_program("sh", NULL, buf, sizeof(buf)), 0);
    assert_int_equal(hv_find_program("sh", "/nonexistent:", buf, sizeof(buf)), 0);
    assert_int_equal(hv_find_program(prog, NULL, buf, sizeof(buf)), 1);
    assert_string_equal(buf, prog);
    chmod(prog, 0644); /* not executable: not found */
    assert_int_equal(hv_find_program(prog, NULL, buf, sizeof(buf)), 0);
    assert_int_equal(hv_find_program("sh", dir, buf, sizeof(buf)), 0);
    if (saved)
        setenv("PATH", saved, 1);
    free(saved);
    unlink(prog);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_basic),          cmocka_unit_test(test_argv_devices),
        cmocka_unit_test(test_argv_refused),        cmocka_unit_test(test_qemu_fails_clearly),
        cmocka_unit_test(test_tap_fd_reaches_qemu), cmocka_unit_test(test_find_program),
        cmocka_unit_test(test_argv_incoming),       cmocka_unit_test(test_shape_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
