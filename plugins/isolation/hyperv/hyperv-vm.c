/* SPDX-License-Identifier: Apache-2.0 */
/* qemu microvm: command line, start, supervision, end (hyperv-vm.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hyperv-vm.h"

/*
 * Where the ports' sockets sit in qemu: right after stdio; then the QMP
 * monitor's socket, if any, at 5 and a tap's fd, if any, at 6.
 */
enum { CHILD_CONTROL_FD = 3, CHILD_STDIO_FD = 4, CHILD_QMP_FD = 5, CHILD_TAP_FD = 6 };

struct argv_buf {
    char **v;
    size_t n, cap;
    int oom;
};

static void add(struct argv_buf *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 48;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (!v) {
            a->oom = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        a->oom = 1;
        s = NULL;
    }
    va_end(ap);
    if (s) {
        a->v[a->n++] = s;
        a->v[a->n] = NULL;
    }
}

/*
 * @s with its commas doubled: qemu splits option values at single commas
 * (",," is a literal one), so a path with a comma would otherwise add or
 * change options. The caller frees it.
 */
static char *qemu_escape(const char *s)
{
    size_t n = 0;
    char *out, *p;

    for (const char *c = s; *c; c++)
        n += *c == ',' ? 2 : 1;
    if (!(out = malloc(n + 1)))
        return NULL;
    for (p = out; *s; s++) {
        *p++ = *s;
        if (*s == ',')
            *p++ = ',';
    }
    *p = '\0';
    return out;
}

void hv_vm_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

int hv_vm_argv(const hv_vm_spec_t *spec, int control_fd, int stdio_fd, char ***ret_argv,
               berth_err_t *err)
{
    struct argv_buf a = { 0 };
    char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
    int kvm;

    if (!spec->kernel || !*spec->kernel)
        return berth_err_set(err, -EINVAL, "hyperv: no guest kernel");
    if (!spec->accel || (strcmp(spec->accel, "kvm") != 0 && strcmp(spec->accel, "tcg") != 0))
        return berth_err_set(err, -EINVAL, "hyperv: accelerator \"%s\": want kvm or tcg",
                             spec->accel ? spec->accel : "");
    if (spec->vcpus < 1 || spec->vcpus > 255)
        return berth_err_set(err, -EINVAL, "hyperv: %u vCPUs: want 1 to 255", spec->vcpus);
    if (spec->mem_mib < 32)
        return berth_err_set(err, -EINVAL, "hyperv: %u MiB of memory: want at least 32",
                             spec->mem_mib);
    if (spec->share_dir && spec->block_path)
        return berth_err_set(err, -EINVAL, "hyperv: a shared directory or a disk, not both");
    if (spec->qmp_fd < 0 || (spec->qmp_fd > 0 && spec->qmp_fd < 3))
        return berth_err_set(err, -EINVAL, "hyperv: QMP fd %d: want 3 or more", spec->qmp_fd);
    if (spec->append && strchr(spec->append, '\n'))
        return berth_err_set(err, -EINVAL, "hyperv: a newline in the kernel command line");
    if (spec->incoming && (!*spec->incoming || strpbrk(spec->incoming, "'\n")))
        return berth_err_set(err, -EINVAL, "hyperv: snapshot path \"%s\": empty or has a quote",
                             spec->incoming);
    kvm = strcmp(spec->accel, "kvm") == 0;

    add(&a, "%s", spec->qemu && *spec->qemu ? spec->qemu : "qemu-system-x86_64");
    /*
     * microvm: virtio-mmio devices only, no PCI, no firmware, no option ROMs;
     * the ISA serial port is the console (the guest's early output and panics
     * land in the log). acpi=off for berth's kernel, which has no ACPI, and
     * only then does qemu list the virtio-mmio devices on the kernel command
     * line, where the guest finds them.
     *
     * rtc=on although nothing in the guest wants a clock chip: x86 Linux
     * reads the CMOS clock at boot whatever its config, and without one every
     * read says "update in progress", so it retries 100 times 10 ms apart.
     * With the TSC calibrated (most boots) that is a whole second of boot;
     * with the chip the read is immediate and the guest's wall clock is the
     * host's (to the second) instead of 1970.
     */
    add(&a, "-M");
    add(&a, "microvm,x-option-roms=off,isa-serial=on,rtc=on,acpi=%s", spec->acpi ? "on" : "off");
    add(&a, "-accel");
    add(&a, "%s", spec->accel);
    /*
     * KVM: the host's CPU as is. TCG: every feature qemu emulates (`max`:
     * x86-64-v3 with qemu 7.2), since images built for x86-64-v2 and up
     * (the RHEL 9 family's glibc refuses to start below v2) would die on
     * qemu's default model, which is plain x86-64. Without ERMS, though:
     * with it the guest kernel copies and clears memory with rep movsb and
     * rep stosb, which TCG runs a byte at a time (0.17 s more per start).
     */
    add(&a, "-cpu");
    add(&a, "%s", kvm ? "host" : "max,-erms");
    add(&a, "-smp");
    add(&a, "%u", spec->vcpus);
    add(&a, "-m");
    add(&a, "%u", spec->mem_mib);
    add(&a, "-nodefaults");
    add(&a, "-no-user-config");
    add(&a, "-display");
    add(&a, "none");
    /* The guest rebooting or panicking (panic=-1) ends qemu instead of a new boot. */
    add(&a, "-no-reboot");
    /* The console goes to stdout, which the child points at the console log. */
    add(&a, "-serial");
    add(&a, "stdio");
    add(&a, "-kernel");
    add(&a, "%s", spec->kernel);
    if (spec->initrd && *spec->initrd) {
        add(&a, "-initrd");
        add(&a, "%s", spec->initrd);
    }
    /*
     * reboot=t: without ACPI a guest's power-off spins; a triple-fault reboot
     * is how the agent ends the VM (-no-reboot turns it into qemu's exit).
     *
     * Under TCG the vCPU has no TSC-deadline timer, so the kernel would
     * calibrate its local APIC timer against the PIT and then verify it:
     * 100 ms of ticks each, a fifth of a boot here. noapictimer leaves the
     * ticks to the PIT (broadcast to the other vCPUs), and no_timer_check
     * skips the 40 ms check that the timer interrupt arrives at all. Under
     * KVM the host's CPU has the deadline timer and neither wait happens.
     */
    add(&a, "-append");
    add(&a, "console=ttyS0 quiet panic=-1 reboot=t%s%s%s", kvm ? "" : " noapictimer no_timer_check",
        spec->append ? " " : "", spec->append ? spec->append : "");
    add(&a, "-device");
    add(&a, "virtio-serial-device,max_ports=4");
    add(&a, "-chardev");
    add(&a, "socket,id=ctl,fd=%d", control_fd);
    add(&a, "-device");
    add(&a, "virtserialport,chardev=ctl,name=" HV_PORT_CONTROL);
    add(&a, "-chardev");
    add(&a, "socket,id=io,fd=%d", stdio_fd);
    add(&a, "-device");
    add(&a, "virtserialport,chardev=io,name=" HV_PORT_STDIO);
    if (spec->qmp_fd > 0) {
        /* A connected socket: no file, and the monitor's peer is gone exactly when qemu is. */
        add(&a, "-chardev");
        add(&a, "socket,id=qmp,fd=%d", spec->qmp_fd);
        add(&a, "-mon");
        add(&a, "chardev=qmp,mode=control");
    }
    if (spec->share_dir) {
        if (!(e1 = qemu_escape(spec->share_dir)))
            a.oom = 1;
        add(&a, "-fsdev");
        add(&a, "local,id=fs0,path=%s,security_model=passthrough", e1 ? e1 : "");
        add(&a, "-device");
        add(&a, "virtio-9p-device,fsdev=fs0,mount_tag=" HV_9P_TAG);
    }
    if (spec->binds_dir) {
        if (!(e4 = qemu_escape(spec->binds_dir)))
            a.oom = 1;
        add(&a, "-fsdev");
        add(&a, "local,id=fs1,path=%s,security_model=passthrough,multidevs=remap", e4 ? e4 : "");
        add(&a, "-device");
        add(&a, "virtio-9p-device,fsdev=fs1,mount_tag=" HV_9P_BINDS_TAG);
    }
    if (spec->block_path) {
        if (!(e2 = qemu_escape(spec->block_path)))
            a.oom = 1;
        add(&a, "-drive");
        add(&a, "id=disk0,file=%s,format=raw,if=none,cache=none,aio=threads", e2 ? e2 : "");
        add(&a, "-device");
        add(&a, "virtio-blk-device,drive=disk0");
    }
    if (spec->tap || spec->tap_fd > 0) {
        add(&a, "-netdev");
        if (spec->tap_fd > 0) {
            add(&a, "tap,id=net0,fd=%d", CHILD_TAP_FD);
        } else {
            if (!(e3 = qemu_escape(spec->tap)))
                a.oom = 1;
            add(&a, "tap,id=net0,ifname=%s,script=no,downscript=no", e3 ? e3 : "");
        }
        add(&a, "-device");
        if (spec->mac)
            add(&a, "virtio-net-device,netdev=net0,mac=%s", spec->mac);
        else
            add(&a, "virtio-net-device,netdev=net0");
    }
    if (spec->incoming) {
        /* qemu 7.2 reads a migration stream from a pipe or socket, not from a file's fd. */
        add(&a, "-incoming");
        add(&a, "exec:cat '%s'", spec->incoming);
    }
    free(e1);
    free(e2);
    free(e3);
    free(e4);
    if (a.oom) {
        hv_vm_argv_free(a.v);
        return berth_err_set(err, -ENOMEM, "hyperv: out of memory");
    }
    *ret_argv = a.v;
    return 0;
}

/* FNV-1a over @len bytes, from @h. A cache key among root's own files, not a defence. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int hv_vm_shape_key(const hv_vm_spec_t *spec, char out[33], berth_err_t *err)
{
    hv_vm_spec_t s = *spec;
    char **argv = NULL, qemu[4096];
    const char *files[3];
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;
    int r;

    if (spec->block_path || spec->tap || spec->tap_fd > 0)
        return berth_err_set(err, -EINVAL, "hyperv: a VM with a disk or a NIC has no shape key");
    /* Only whether they are there is the machine's: where they point is the VM's. */
    s.share_dir = spec->share_dir ? "/share" : NULL;
    s.binds_dir = spec->binds_dir ? "/binds" : NULL;
    s.console_log = NULL;
    s.incoming = NULL;
    s.qmp_fd = spec->qmp_fd ? CHILD_QMP_FD : 0;
    if ((r = hv_vm_argv(&s, CHILD_CONTROL_FD, CHILD_STDIO_FD, &argv, err)) < 0)
        return r;
    for (char **a = argv; *a; a++) {
        h1 = fnv1a(h1, *a, strlen(*a) + 1);
        h2 = fnv1a(h2, *a, strlen(*a) + 1);
    }
    if (!hv_find_program(argv[0], NULL, qemu, sizeof(qemu)))
        snprintf(qemu, sizeof(qemu), "%s", argv[0]);
    hv_vm_argv_free(argv);
    files[0] = qemu;
    files[1] = spec->kernel;
    files[2] = spec->initrd;
    for (size_t i = 0; i < 3; i++) {
        struct stat st;
        uint64_t id[5] = { 0 };

        if (files[i] && stat(files[i], &st) == 0) {
            id[0] = (uint64_t)st.st_dev;
            id[1] = (uint64_t)st.st_ino;
            id[2] = (uint64_t)st.st_size;
            id[3] = (uint64_t)st.st_mtim.tv_sec;
            id[4] = (uint64_t)st.st_mtim.tv_nsec;
        } else if (files[i]) {
            return berth_err_set(err, -errno, "hyperv: %s: %s", files[i], strerror(errno));
        }
        h1 = fnv1a(h1, id, sizeof(id));
        h2 = fnv1a(h2, id, sizeof(id));
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
    return 0;
}

/* Look for @name in the colon list @list; 1 with its path in @buf. */
static int find_in(const char *list, const char *name, char *buf, size_t len)
{
    while (list && *list) {
        size_t n = strcspn(list, ":");
        if (n > 0 && snprintf(buf, len, "%.*s/%s", (int)n, list, name) < (int)len &&
            access(buf, X_OK) == 0)
            return 1;
        list += n;
        if (*list == ':')
            list++;
    }
    return 0;
}

int hv_find_program(const char *name, const char *dirs, char *buf, size_t len)
{
    const char *path = getenv("PATH");

    if (!name || !*name)
        return 0;
    if (strchr(name, '/'))
        return snprintf(buf, len, "%s", name) < (int)len && access(name, X_OK) == 0;
    return find_in(dirs, name, buf, len) ||
           find_in(path && *path ? path : "/usr/local/bin:/usr/bin:/bin", name, buf, len);
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Close fds @lo..@hi (async-signal-safe). */
static void close_fds(unsigned lo, unsigned hi)
{
    if (syscall(SYS_close_range, lo, hi, 0) < 0) {
        for (unsigned fd = lo; fd <= hi && fd < 1024; fd++)
            close((int)fd);
    }
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child(char **argv, int control, int io, int qmp, int tap, int log_fd, pid_t parent)
{
    int devnull;

    /* Die with the parent (the shim): a VM must never outlive its container's monitor. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(127);
    /* Own process group: a terminal's ^C to the shim's group does not reach qemu. */
    setpgid(0, 0);
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
        _exit(127);
    /*
     * The two sockets to their fixed places, by way of fds above them: 3 and
     * 4 may hold either socket already, and dup2() onto the same number
     * would keep close-on-exec set.
     */
    control = fcntl(control, F_DUPFD_CLOEXEC, 10);
    io = fcntl(io, F_DUPFD_CLOEXEC, 10);
    if (qmp >= 0 && (qmp = fcntl(qmp, F_DUPFD_CLOEXEC, 10)) < 0)
        _exit(127);
    /* The tap too, before anything lands on 3 to 5, where it may sit. */
    if (tap > 0 && (tap = fcntl(tap, F_DUPFD_CLOEXEC, 10)) < 0)
        _exit(127);
    if (control < 0 || io < 0 || dup2(control, CHILD_CONTROL_FD) < 0 ||
        dup2(io, CHILD_STDIO_FD) < 0 || (qmp >= 0 && dup2(qmp, CHILD_QMP_FD) < 0))
        _exit(127);
    close_fds(qmp >= 0 ? CHILD_QMP_FD + 1 : CHILD_STDIO_FD + 1, 9);
    if (tap > 0 && dup2(tap, CHILD_TAP_FD) < 0)
        _exit(127);
    /* Everything else goes: qemu holds nothing of the shim's. */
    close_fds(10, ~0u);
    {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    execvp(argv[0], argv);
    _exit(127);
}

int hv_vm_start(const hv_vm_spec_t *spec, hv_vm_t *vm, berth_err_t *err)
{
    int ctl[2] = { -1, -1 }, io[2] = { -1, -1 }, qmp[2] = { -1, -1 }, log_fd = -1, r;
    char **argv = NULL;
    pid_t parent = getpid(), pid;
    hv_vm_spec_t s = *spec;

    vm->pid = -1;
    vm->pidfd = vm->control_fd = vm->stdio_fd = vm->qmp_fd = -1;
    if (!spec->console_log)
        return berth_err_set(err, -EINVAL, "hyperv: no console log path");
    if (s.qmp_fd)
        s.qmp_fd = CHILD_QMP_FD;
    if ((r = hv_vm_argv(&s, CHILD_CONTROL_FD, CHILD_STDIO_FD, &argv, err)) < 0)
        return r;
    log_fd = open(spec->console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        r = berth_err_set(err, -errno, "hyperv: %s: %s", spec->console_log, strerror(errno));
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, io) < 0 ||
        (s.qmp_fd && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) < 0)) {
        r = berth_err_set(err, -errno, "hyperv: socketpair: %s", strerror(errno));
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        r = berth_err_set(err, -errno, "hyperv: fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0)
        child(argv, ctl[1], io[1], qmp[1], spec->tap_fd, log_fd, parent);
    vm->pid = pid;
    vm->pidfd = pidfd_open_(pid);
    if (vm->pidfd < 0) {
        r = berth_err_set(err, -errno, "hyperv: pidfd_open: %s", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        vm->pid = -1;
        goto fail;
    }
    close(ctl[1]);
    close(io[1]);
    if (qmp[1] >= 0)
        close(qmp[1]);
    close(log_fd);
    vm->control_fd = ctl[0];
    vm->stdio_fd = io[0];
    vm->qmp_fd = qmp[0];
    hv_vm_argv_free(argv);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (ctl[i] >= 0)
            close(ctl[i]);
        if (io[i] >= 0)
            close(io[i]);
        if (qmp[i] >= 0)
            close(qmp[i]);
    }
    if (log_fd >= 0)
        close(log_fd);
    hv_vm_argv_free(argv);
    return r;
}

int hv_vm_exited(hv_vm_t *vm, int *ret_status)
{
    int status;
    pid_t w;

    if (vm->pid <= 0)
        return -ECHILD;
    do
        w = waitpid(vm->pid, &status, WNOHANG);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    if (w == 0)
        return 0;
    vm->pid = -1;
    if (ret_status)
        *ret_status = status;
    return 1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int hv_vm_stop(hv_vm_t *vm, int grace_ms)
{
    int status = -1;

    if (vm->pid > 0) {
        struct pollfd p = { .fd = vm->pidfd, .events = POLLIN };
        int r;

        if (vm->pidfd >= 0 && grace_ms > 0) {
            do
                r = poll(&p, 1, grace_ms);
            while (r < 0 && errno == EINTR);
        }
        if (hv_vm_exited(vm, &status) == 0) {
            kill(vm->pid, SIGKILL);
            while (waitpid(vm->pid, &status, 0) < 0 && errno == EINTR)
                ;
            vm->pid = -1;
        }
    }
    close_fd(&vm->pidfd);
    close_fd(&vm->control_fd);
    close_fd(&vm->stdio_fd);
    close_fd(&vm->qmp_fd);
    return status;
}
