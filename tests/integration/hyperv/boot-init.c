/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test-only /init for the hyperv guest kernel (test-hyperv-boot.py),
 * linked statically because the initramfs holds nothing else. It does the
 * least a guest agent will do: mounts proc, sysfs and devtmpfs, reports on
 * the serial console, talks over the virtio-serial port named on its
 * command line (the agent's channel), and reboots, which with `reboot=t`
 * and qemu's -no-reboot makes qemu exit.
 *
 * Console lines, all starting "berth-boot:":
 *   release R          uname -r, read from /proc/sys/kernel/osrelease
 *   cpus N             CPUs online
 *   port ok            the port round trip worked (else "port error: ...")
 *   done               the marker the test waits for, last before reboot
 * On the port: it writes "hello R\n", reads one line L, writes "echo L\n".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The port's name comes as "berth_port=NAME" on the kernel command line: the
 * kernel hands unknown parameters with a value (and no dot) to init's
 * environment.
 */
#define PORT_ENV "berth_port"

static void say(const char *fmt, const char *arg)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "berth-boot: ");
    n += snprintf(line + n, sizeof(line) - (size_t)n, fmt, arg);
    if (n >= (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(1, line, (size_t)n);
    (void)w;
}

static void mount_fs(const char *type, const char *dir)
{
    mkdir(dir, 0755);
    if (mount(type, dir, type, 0, NULL) < 0 && errno != EBUSY)
        say("mount error: %s", dir);
}

static int read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* /dev/vportNpM of the port called @p name (sysfs names it; there is no udev for the symlink). */
static int open_port(const char *name)
{
    DIR *d = opendir("/sys/class/virtio-ports");
    if (!d)
        return -1;
    int fd = -1;
    struct dirent *de;
    while (fd < 0 && (de = readdir(d))) {
        char path[300], got[128];
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
        if (read_line(path, got, sizeof(got)) == 0 && strcmp(got, name) == 0) {
            snprintf(path, sizeof(path), "/dev/%s", de->d_name);
            fd = open(path, O_RDWR | O_CLOEXEC);
        }
    }
    closedir(d);
    return fd;
}

static const char *port_roundtrip(const char *name, const char *release)
{
    /*
     * Ports and their names arrive from the host as control messages that
     * the kernel handles after boot, so the port may show up only after init
     * has started: look for it for up to 10 s.
     */
    int fd = -1;
    for (int i = 0; i < 1000 && fd < 0; i++) {
        fd = open_port(name);
        if (fd < 0)
            usleep(10000);
    }
    if (fd < 0)
        return "no such port";
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "hello %s\n", release);
    const char *res = NULL;
    if (write(fd, buf, (size_t)n) != n)
        res = "write failed";
    size_t got = 0;
    while (!res && (got == 0 || buf[got - 1] != '\n')) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 30000) <= 0)
            res = "no line from the host";
        else {
            ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0 || (got += (size_t)r) >= sizeof(buf) - 1)
                res = "read failed";
        }
    }
    if (!res) {
        char out[300];
        buf[got - 1] = '\0';
        n = snprintf(out, sizeof(out), "echo %s\n", buf);
        if (write(fd, out, (size_t)n) != n)
            res = "write failed";
    }
    close(fd);
    return res;
}

int main(void)
{
    mount_fs("proc", "/proc");
    mount_fs("sysfs", "/sys");
    mount_fs("devtmpfs", "/dev");
    /* Without a console in the initramfs the kernel gives init no stdio. */
    if (fcntl(1, F_GETFD) < 0) {
        int fd = open("/dev/console", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
    }

    char release[128] = "?", cpus[64];
    read_line("/proc/sys/kernel/osrelease", release, sizeof(release));
    say("release %s", release);
    snprintf(cpus, sizeof(cpus), "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    say("cpus %s", cpus);

    const char *port = getenv(PORT_ENV);
    if (port) {
        const char *e = port_roundtrip(port, release);
        if (e)
            say("port error: %s", e);
        else
            say("port ok%s", "");
    }
    say("done%s", "");
    sync();
    reboot(RB_AUTOBOOT);
    /* reboot() returns only on failure; exiting makes the kernel panic, and panic=-1 reboots. */
    return 1;
}
