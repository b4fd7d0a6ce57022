/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-agent as PID 1 of a VM: the mounts the process driver and the
 * container need, finding the virtio-serial ports by name, mounting the
 * container's root filesystem from a 9p share or a block device,
 * configuring the guest's network interface, and reaping orphans (the
 * kernel reparents them to PID 1).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <net/route.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "agent.h"

struct guest_mount {
    const char *source, *target, *type, *data;
    unsigned long flags;
};

static const struct guest_mount guest_mounts[] = {
    { "proc", "/proc", "proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC },
    { "sysfs", "/sys", "sysfs", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC },
    { "devtmpfs", "/dev", "devtmpfs", "mode=0755", MS_NOSUID },
    { "devpts", "/dev/pts", "devpts", "mode=0620,ptmxmode=0666", MS_NOSUID | MS_NOEXEC },
    { "tmpfs", "/dev/shm", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV },
    { "tmpfs", "/tmp", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV },
    { "tmpfs", "/run", "tmpfs", "mode=0755", MS_NOSUID | MS_NODEV },
    { "cgroup2", "/sys/fs/cgroup", "cgroup2", "nsdelegate", MS_NOSUID | MS_NODEV | MS_NOEXEC },
};

/* Bring the loopback interface up: no one else will in a guest whose PID 1 is the agent. */
static void loopback_up(void)
{
    struct ifreq ifr = { 0 };
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
            agent_log("lo up: %s", strerror(errno));
    }
    close(fd);
}

/*
 * Leave the initramfs for a tmpfs of our own, as switch_root does: the
 * kernel's rootfs can't be unmounted, so pivot_root(), which the process
 * driver uses to enter every container's root, refuses to run from it
 * (EINVAL). A tmpfs moved over "/" has a parent mount, and pivot_root()
 * works from there. The agent keeps running from its mapped binary; its
 * file in the initramfs goes, to give the memory back. Only when "/" is
 * that in-memory rootfs: the PID 1 tests on a host run on its disk.
 */
static int leave_initramfs(void)
{
    struct statfs sf;

    if (statfs("/", &sf) < 0 || (sf.f_type != RAMFS_MAGIC && sf.f_type != TMPFS_MAGIC))
        return 0;
    unlink("/init");
    if (mkdir("/.root", 0755) < 0 && errno != EEXIST)
        return -errno;
    if (mount("tmpfs", "/.root", "tmpfs", MS_NOSUID, "mode=0755") < 0 || chdir("/.root") < 0 ||
        mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
        int e = errno;
        agent_log("leaving the initramfs: %s", strerror(e));
        return -e;
    }
    return 0;
}

/*
 * The distribution's kernel has the guest's drivers as modules: its
 * initramfs then carries them and lists them, in load order, in
 * /etc/berth-modules (hyperv-kernel.h). Load each (a module the kernel
 * has already is fine), then delete the files: they stay in memory
 * otherwise. A module that fails is logged and skipped; what needs it
 * fails later with its own error (a missing port names itself).
 */
#define MODULES_LIST "/etc/berth-modules"
#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif
static void load_modules(void)
{
    struct statfs sf;
    char line[PATH_MAX];
    FILE *f;

    /* Only from an initramfs: the PID 1 tests on a host must never load or delete a thing. */
    if (statfs("/", &sf) < 0 || (sf.f_type != RAMFS_MAGIC && sf.f_type != TMPFS_MAGIC) ||
        !(f = fopen(MODULES_LIST, "re")))
        return;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\n");
        int fd, flags = 0;
        line[n] = '\0';
        if (!n)
            continue;
        if (n > 3 && strcmp(line + n - 3, ".ko") != 0)
            flags = MODULE_INIT_COMPRESSED_FILE; /* .ko.xz, .ko.zst: the kernel inflates them */
        if ((fd = open(line, O_RDONLY | O_CLOEXEC)) < 0 ||
            (syscall(SYS_finit_module, fd, "", flags) < 0 && errno != EEXIST))
            agent_log("module %s: %s", line, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(line);
    }
    fclose(f);
    unlink(MODULES_LIST);
}

/* Whether the space-separated list @list has @word. */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || isspace((unsigned char)p[-1])) &&
            (p[n] == '\0' || isspace((unsigned char)p[n])))
            return 1;
    return 0;
}

int agent_guest_setup(void)
{
    int fd;

    /* From the initramfs, before leaving it: the modules are files there. */
    load_modules();
    if ((fd = leave_initramfs()) < 0)
        return fd;
    for (size_t i = 0; i < sizeof(guest_mounts) / sizeof(guest_mounts[0]); i++) {
        const struct guest_mount *m = &guest_mounts[i];
        mkdir(m->target, 0755);
        if (mount(m->source, m->target, m->type, m->flags, m->data) < 0 && errno != EBUSY) {
            int e = errno;
            agent_log("mount %s on %s: %s", m->type, m->target, strerror(e));
            /* /proc, /sys and /dev are essential; the rest only degrades features. */
            if (i < 3)
                return -e;
        }
    }
    /* The console may not have been opened by the kernel when the initramfs lacked /dev/console. */
    if (fcntl(2, F_GETFD) < 0 && (fd = open("/dev/console", O_RDWR | O_CLOEXEC)) >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    loopback_up();
    /*
     * Delegate the controllers to children, so the process driver's
     * container cgroups can limit memory, cpu and pids. Only those the
     * kernel has (cgroup.controllers): berth's guest kernel has no io or
     * cpuset, and asking for them put two errors on every VM's console.
     * One write each, so one failure doesn't stop the rest.
     */
    static const char *const ctls[] = { "memory", "cpu", "pids", "io", "cpuset" };
    char have[256] = "";
    if ((fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY | O_CLOEXEC)) >= 0) {
        ssize_t n = read(fd, have, sizeof(have) - 1);
        have[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    for (size_t i = 0; i < sizeof(ctls) / sizeof(ctls[0]); i++) {
        char word[16];
        if (!has_word(have, ctls[i]))
            continue;
        snprintf(word, sizeof(word), "+%s", ctls[i]);
        fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        if (write(fd, word, strlen(word)) < 0)
            agent_log("cgroup controller %s: %s", ctls[i], strerror(errno));
        close(fd);
    }
    return 0;
}

int agent_guest_open_port(const char *name, int *ret_fd)
{
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *de;
    int ret = -ENOENT;
    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        char path[PATH_MAX], buf[128] = "";
        FILE *f;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
        if (!(f = fopen(path, "re")))
            continue;
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\n")] = '\0';
        if (strcmp(buf, name) != 0)
            continue;
        /* devtmpfs names the node after the port: /dev/vportNpM. */
        snprintf(path, sizeof(path), "/dev/%s", de->d_name);
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        ret = fd < 0 ? -errno : 0;
        if (fd >= 0)
            *ret_fd = fd;
        break;
    }
    closedir(d);
    return ret;
}

int agent_guest_mount_rootfs(json_t *desc, const char *dir, char *why, size_t why_size)
{
    const char *type = json_string_value(json_object_get(desc, "type"));
    int r;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(why, why_size, "mkdir %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (type && strcmp(type, "9p") == 0) {
        const char *tag = json_string_value(json_object_get(desc, "tag"));
        if (!tag) {
            snprintf(why, why_size, "rootfs: 9p needs a \"tag\"");
            return -EINVAL;
        }
        /* msize: the kernel's 8 KiB default makes 9p I/O slow; 512 KiB is what virtio takes. */
        r = mount(tag, dir, "9p", 0, "trans=virtio,version=9p2000.L,cache=mmap,msize=524288");
    } else if (type && strcmp(type, "block") == 0) {
        const char *dev = json_string_value(json_object_get(desc, "device"));
        const char *fstype = json_string_value(json_object_get(desc, "fstype"));
        if (!dev || !fstype) {
            snprintf(why, why_size, "rootfs: block needs \"device\" and \"fstype\"");
            return -EINVAL;
        }
        r = mount(dev, dir, fstype, 0, NULL);
    } else {
        snprintf(why, why_size, "rootfs: unknown type \"%s\"", type ? type : "(none)");
        return -EINVAL;
    }
    if (r < 0) {
        r = -errno;
        snprintf(why, why_size, "rootfs: mount %s: %s", type, strerror(errno));
        rmdir(dir);
    }
    return r;
}

static int is_ours(const struct ctr *ctrs, pid_t pid)
{
    for (const struct ctr *c = ctrs; c; c = c->next) {
        if (c->init.pid == pid)
            return 1;
        for (const struct proc *p = c->execs; p; p = p->next)
            if (p->pid == pid)
                return 1;
    }
    return 0;
}

void agent_guest_reap_orphans(const struct ctr *ctrs)
{
    /*
     * waitpid(-1) would also collect the exit statuses the process driver
     * waits for by pid: look for zombies whose parent is us and reap only
     * those the driver doesn't own.
     */
    DIR *d = opendir("/proc");
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d))) {
        char path[64], buf[512], *p;
        pid_t pid = (pid_t)strtol(de->d_name, &p, 10);
        int ppid = 0;
        char state = 0;
        FILE *f;
        if (*p || pid <= 1)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (!(f = fopen(path, "re")))
            continue;
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        /* comm may contain spaces and parentheses: parse after the last ')'. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (state == 'Z' && ppid == getpid() && !is_ours(ctrs, pid))
            waitpid(pid, NULL, WNOHANG);
    }
    closedir(d);
}

int agent_guest_wait_port(const char *name, int timeout_ms, int *ret_fd)
{
    struct timespec pause = { .tv_nsec = 2 * 1000 * 1000 }, now, end;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    for (;;) {
        r = agent_guest_open_port(name, ret_fd);
        if (r != -ENOENT)
            return r;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            return r;
        nanosleep(&pause, NULL);
    }
}

/* The guest's interface whose MAC is @mac (case-insensitive) into @name; -ENODEV when none. */
static int iface_by_mac(const char *mac, char name[IFNAMSIZ])
{
    DIR *d = opendir("/sys/class/net");
    struct dirent *e;
    int r = -ENODEV;

    if (!d)
        return -errno;
    while (r < 0 && (e = readdir(d))) {
        char path[300], addr[32] = "";
        FILE *f;
        if (e->d_name[0] == '.' || strlen(e->d_name) >= IFNAMSIZ)
            continue;
        snprintf(path, sizeof(path), "/sys/class/net/%s/address", e->d_name);
        if (!(f = fopen(path, "re")))
            continue;
        if (fgets(addr, sizeof(addr), f) && strncasecmp(addr, mac, 17) == 0) {
            snprintf(name, IFNAMSIZ, "%s", e->d_name);
            r = 0;
        }
        fclose(f);
    }
    closedir(d);
    return r;
}

/* "A.B.C.D/P" into an address and its netmask. */
static int parse_cidr(const char *s, struct sockaddr_in *addr, struct sockaddr_in *mask)
{
    char a[INET_ADDRSTRLEN];
    const char *slash = s ? strchr(s, '/') : NULL;
    unsigned long p;
    char *end;

    if (!slash || (size_t)(slash - s) >= sizeof(a))
        return -EINVAL;
    memcpy(a, s, (size_t)(slash - s));
    a[slash - s] = '\0';
    p = strtoul(slash + 1, &end, 10);
    if (*end || p > 32)
        return -EINVAL;
    memset(addr, 0, sizeof(*addr));
    memset(mask, 0, sizeof(*mask));
    addr->sin_family = mask->sin_family = AF_INET;
    if (inet_pton(AF_INET, a, &addr->sin_addr) != 1)
        return -EINVAL;
    mask->sin_addr.s_addr = p ? htonl(~0u << (32 - p)) : 0;
    return 0;
}

#define NET_FAIL(e, ...)                                                                           \
    do {                                                                                           \
        snprintf(why, why_size, __VA_ARGS__);                                                      \
        r = -(e);                                                                                  \
        goto out;                                                                                  \
    } while (0)

int agent_guest_net_config(json_t *net, char *why, size_t why_size)
{
    json_t *ifc, *rt, *a;
    size_t i, k;
    int s, r = 0;

    if (!json_is_object(net))
        return snprintf(why, why_size, "create: \"network\" must be an object"), -EINVAL;
    if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return snprintf(why, why_size, "socket: %s", strerror(errno)), -errno;
    json_array_foreach (json_object_get(net, "interfaces"), i, ifc) {
        const char *mac = json_string_value(json_object_get(ifc, "mac"));
        json_int_t mtu = json_integer_value(json_object_get(ifc, "mtu"));
        struct ifreq ifr = { 0 };
        char name[IFNAMSIZ];

        /* qemu gave the virtio-net device the host interface's MAC: that finds it. */
        if (!mac || iface_by_mac(mac, name) < 0)
            NET_FAIL(ENODEV, "network: no interface with MAC %s", mac ? mac : "(none)");
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (mtu > 0) {
            ifr.ifr_mtu = (int)mtu;
            if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
                NET_FAIL(errno, "network: %s: MTU %d: %s", name, (int)mtu, strerror(errno));
        }
        json_array_foreach (json_object_get(ifc, "addresses"), k, a) {
            struct sockaddr_in ad, mk;
            struct ifreq ar = { 0 };
            if (parse_cidr(json_string_value(a), &ad, &mk) < 0)
                NET_FAIL(EINVAL, "network: bad address %s", json_string_value(a) ?: "?");
            /* The first address is the interface's; more go on labels, as ifconfig's aliases. */
            if (k == 0)
                snprintf(ar.ifr_name, sizeof(ar.ifr_name), "%s", name);
            else
                snprintf(ar.ifr_name, sizeof(ar.ifr_name), "%.10s:%u", name, (unsigned)(k % 1000));
            memcpy(&ar.ifr_addr, &ad, sizeof(ad));
            if (ioctl(s, SIOCSIFADDR, &ar) < 0)
                NET_FAIL(errno, "network: %s: address %s: %s", ar.ifr_name, json_string_value(a),
                         strerror(errno));
            memcpy(&ar.ifr_netmask, &mk, sizeof(mk));
            if (ioctl(s, SIOCSIFNETMASK, &ar) < 0)
                NET_FAIL(errno, "network: %s: netmask: %s", ar.ifr_name, strerror(errno));
        }
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
            NET_FAIL(errno, "network: %s: %s", name, strerror(errno));
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            NET_FAIL(errno, "network: %s up: %s", name, strerror(errno));
    }
    /* After the addresses: a gateway must be on a connected subnet to be accepted. */
    json_array_foreach (json_object_get(net, "routes"), i, rt) {
        const char *dst = json_string_value(json_object_get(rt, "dst"));
        const char *gw = json_string_value(json_object_get(rt, "gateway"));
        struct sockaddr_in d, m, g = { .sin_family = AF_INET };
        struct rtentry re = { 0 };

        if (parse_cidr(dst, &d, &m) < 0 || (gw && inet_pton(AF_INET, gw, &g.sin_addr) != 1))
            NET_FAIL(EINVAL, "network: bad route %s via %s", dst ? dst : "?", gw ? gw : "-");
        memcpy(&re.rt_dst, &d, sizeof(d));
        memcpy(&re.rt_genmask, &m, sizeof(m));
        memcpy(&re.rt_gateway, &g, sizeof(g));
        re.rt_flags = RTF_UP | (gw ? RTF_GATEWAY : 0);
        if (ioctl(s, SIOCADDRT, &re) < 0 && errno != EEXIST)
            NET_FAIL(errno, "network: route %s via %s: %s", dst, gw ? gw : "-", strerror(errno));
    }
out:
    close(s);
    return r;
}
