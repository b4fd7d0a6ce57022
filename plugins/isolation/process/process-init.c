/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The code that runs in a container's init (and in exec'd processes) from the
 * clone until execve. It is never a re-exec of a host binary: the caller's
 * image is only ever replaced by the container's own program, so nothing in
 * the container can reach a berth binary through /proc/<pid>/exe
 * (CVE-2019-5736). Until execve the process is not dumpable, and by then it
 * shows the container's program.
 *
 * Errors are sent to the caller on the sync socket as one message and the
 * child exits; the caller turns them into the op's return value.
 *
 * Mount targets are resolved inside the rootfs with openat2(RESOLVE_IN_ROOT)
 * and mounted through /proc/self/fd/N of the resolved O_PATH fd, so a
 * symlink in the image (mnt -> /) can never point a mount at the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>

#include "process-cgroup.h"
#include "process-internal.h"

/* Overlay rootfs mounts of any number of layers (new mount API, mount(2) fallback). */
#include "../../storage/overlay/storage-overlay-mount.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* State of the child between setup and exec (the child is single-threaded). */
struct child {
    const struct process_child_args *a;
    int devnull;
    int tty_slave;
    uid_t uid;
    gid_t gid;
    gid_t groups[NGROUPS_MAX > 256 ? 256 : NGROUPS_MAX];
    size_t n_groups;
};

int process_msg_send(int fd, const struct process_msg *m, int pass_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    if (pass_fd >= 0) {
        struct cmsghdr *c;
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    do
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*m) ? 0 : -EIO;
}

int process_msg_recv(int fd, struct process_msg *m, int *ret_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)
    };
    struct cmsghdr *c;
    ssize_t n;

    if (ret_fd)
        *ret_fd = -1;
    memset(m, 0, sizeof(*m));
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int passed;
            memcpy(&passed, CMSG_DATA(c), sizeof(int));
            if (ret_fd)
                *ret_fd = passed;
            else
                close(passed);
        }
    }
    if (n == 0)
        return 0;
    return n == (ssize_t)sizeof(*m) ? 1 : -EIO;
}

static _Noreturn BERTH_PRINTF(3, 4) void die(struct child *c, int code, const char *fmt, ...)
{
    struct process_msg m = { .type = PROCESS_MSG_ERROR, .code = code < 0 ? code : -code };
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m.text, sizeof(m.text), fmt, ap);
    va_end(ap);
    process_msg_send(c->a->sync_fd, &m, -1);
    _exit(1);
}

static void wait_go(struct child *c)
{
    struct process_msg m;
    /* EOF: the caller gave up on this process (deleted before start, or died). */
    if (process_msg_recv(c->a->sync_fd, &m, NULL) <= 0 || m.type != PROCESS_MSG_GO)
        _exit(1);
}

/* ---- paths inside the rootfs ---- */

/* Set in the child from process_child_args: resolve without openat2 (old kernels, tests). */
static int force_walk;

/*
 * The fallback for kernels without openat2: walk @path one component at a
 * time from @rootfd with O_NOFOLLOW, expanding symlinks by hand so that an
 * absolute target restarts at the rootfs and ".." never climbs above it.
 * `resolved` only ever holds components checked not to be symlinks.
 */
static int walk_in_root(int rootfd, const char *path, int flags)
{
    char resolved[PATH_MAX] = "", todo[PATH_MAX], link[PATH_MAX], tmp[PATH_MAX];
    size_t rlen = 0;
    int links = 0;

    if (strlen(path) >= sizeof(todo)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(todo, path);
    while (todo[0]) {
        char comp[NAME_MAX + 1], *p = todo, *end;
        struct stat st;
        size_t clen, save = rlen;
        int fd;

        while (*p == '/')
            p++;
        end = p + strcspn(p, "/");
        clen = (size_t)(end - p);
        if (clen > NAME_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, clen);
        comp[clen] = '\0';
        memmove(todo, end, strlen(end) + 1);
        if (!clen || strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            char *slash = strrchr(resolved, '/');
            rlen = slash ? (size_t)(slash - resolved) : 0;
            resolved[rlen] = '\0';
            continue;
        }
        if (rlen + clen + 2 >= sizeof(resolved)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        resolved[rlen++] = '/';
        memcpy(resolved + rlen, comp, clen + 1);
        rlen += clen;
        fd = openat(rootfd, resolved + 1, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        if (fstat(fd, &st) < 0) {
            close(fd);
            return -1;
        }
        if (!S_ISLNK(st.st_mode)) {
            close(fd);
            continue;
        }
        {
            ssize_t n = readlinkat(fd, "", link, sizeof(link) - 1);
            close(fd);
            if (n < 0)
                return -1;
            link[n] = '\0';
        }
        if (++links > 40) {
            errno = ELOOP;
            return -1;
        }
        /* Replace the link by its target: absolute ones start again at the rootfs. */
        rlen = link[0] == '/' ? 0 : save;
        resolved[rlen] = '\0';
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", link, todo) >= sizeof(tmp)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(todo, tmp);
    }
    return openat(rootfd, rlen ? resolved + 1 : ".", O_PATH | O_NOFOLLOW | O_CLOEXEC | flags);
}

static int open_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(O_PATH | O_CLOEXEC | flags),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    int fd;

    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    if (force_walk)
        return walk_in_root(rootfd, path, flags);
    fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        force_walk = 1;
        return walk_in_root(rootfd, path, flags);
    }
    return fd;
}

/*
 * Resolve @path inside @rootfd, creating missing components (directories, or
 * an empty file for the last one when @file), and return an O_PATH fd.
 * Each created component is made relative to an fd that was itself resolved
 * in the root, so a symlink swapped in between can only lead inside it.
 */
static int mkpath_in_root(int rootfd, const char *path, int file)
{
    char prefix[PATH_MAX];
    size_t len = 0;
    const char *p = path;
    int fd, parent;

    fd = open_in_root(rootfd, path, 0);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    parent = dup(rootfd);
    if (parent < 0)
        return -1;
    while (*p) {
        const char *start, *end;
        while (*p == '/')
            p++;
        if (!*p)
            break;
        start = p;
        end = strchr(start, '/');
        if (!end)
            end = start + strlen(start);
        if (len + (size_t)(end - start) + 2 >= sizeof(prefix)) {
            close(parent);
            errno = ENAMETOOLONG;
            return -1;
        }
        prefix[len++] = '/';
        memcpy(prefix + len, start, (size_t)(end - start));
        len += (size_t)(end - start);
        prefix[len] = '\0';
        fd = open_in_root(rootfd, prefix, 0);
        if (fd < 0 && errno == ENOENT) {
            char name[NAME_MAX + 1];
            size_t nlen = (size_t)(end - start);
            if (nlen > NAME_MAX) {
                close(parent);
                errno = ENAMETOOLONG;
                return -1;
            }
            memcpy(name, start, nlen);
            name[nlen] = '\0';
            if (file && !*end) {
                int f = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                               0644);
                if (f >= 0)
                    close(f);
            } else {
                mkdirat(parent, name, 0755);
            }
            fd = open_in_root(rootfd, prefix, 0);
        }
        close(parent);
        if (fd < 0)
            return -1;
        parent = fd;
        p = end;
    }
    return parent;
}

/*
 * Close every inherited fd but the ones the child needs: the caller's other
 * fds (a state directory, a cgroup dir) must never be reachable, not even
 * through a cwd of /proc/self/fd/N set before the final close (CVE-2024-21626).
 */
static void close_inherited(const struct process_child_args *a)
{
    int keep[7] = {
        a->sync_fd, a->netns_fd, a->stdio[0], a->stdio[1], a->stdio[2], a->enter_fd, -1
    };
    int n = 6, lo = 0;

    /* Sort the (at most six) fds to keep, then close the gaps between them. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && keep[j] < keep[j - 1]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (keep[i] < lo)
            continue;
        if (keep[i] > lo)
            syscall(SYS_close_range, (unsigned)lo, (unsigned)keep[i] - 1, 0U);
        lo = keep[i] + 1;
    }
    syscall(SYS_close_range, (unsigned)lo, ~0U, 0U);
}

static void fdpath(char buf[64], int fd)
{
    snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

/* ---- mounts ---- */

static void mount_at(struct child *c, int rootfd, const char *dest, const char *source,
                     const char *type, unsigned long flags, const char *data, int bind,
                     int readonly_bind, unsigned long propagation)
{
    char p[64];
    int fd, file = 0;
    struct stat st;

    if (bind) {
        if (stat(source, &st) < 0)
            die(c, -errno, "mount %s: source %s: %s", dest, source, strerror(errno));
        file = !S_ISDIR(st.st_mode);
    }
    fd = mkpath_in_root(rootfd, dest, file);
    if (fd < 0)
        die(c, -errno, "mount %s: resolving the target in the rootfs: %s", dest, strerror(errno));
    fdpath(p, fd);
    if (bind) {
        if (mount(source, p, NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
            die(c, -errno, "mount %s on %s: %s", source, dest, strerror(errno));
    } else if (mount(source, p, type, flags & ~(unsigned long)MS_REMOUNT, data) < 0) {
        die(c, -errno, "mount %s (%s) on %s: %s", source, type, dest, strerror(errno));
    }
    close(fd);
    if (!readonly_bind && !propagation)
        return;
    /* The fd above names the covered directory: reopen to reach the new mount. */
    fd = open_in_root(rootfd, dest, 0);
    if (fd < 0)
        die(c, -errno, "mount %s: reopening: %s", dest, strerror(errno));
    fdpath(p, fd);
    if (readonly_bind &&
        mount(NULL, p, NULL,
              MS_BIND | MS_REMOUNT | (flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)),
              NULL) < 0)
        die(c, -errno, "remount %s: %s", dest, strerror(errno));
    if (propagation && mount(NULL, p, NULL, propagation, NULL) < 0)
        die(c, -errno, "mount propagation of %s: %s", dest, strerror(errno));
    close(fd);
}

static void setup_dev(struct child *c, int rootfd)
{
    static const struct {
        const char *name;
        unsigned int major, minor;
    } devs[] = {
        { "null", 1, 3 },   { "zero", 1, 5 },    { "full", 1, 7 },
        { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
    };
    static const struct {
        const char *target, *name;
    } links[] = {
        { "/proc/self/fd", "fd" },       { "/proc/self/fd/0", "stdin" },
        { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
        { "pts/ptmx", "ptmx" },
    };
    int devfd = open_in_root(rootfd, "/dev", O_DIRECTORY);
    size_t i;

    if (devfd < 0)
        die(c, -errno, "open /dev in the rootfs: %s", strerror(errno));
    /* O_PATH fds can't be used for mknodat: reopen the directory for real. */
    {
        char p[64];
        int d;
        fdpath(p, devfd);
        d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(devfd);
        if (d < 0)
            die(c, -errno, "open /dev in the rootfs: %s", strerror(errno));
        devfd = d;
    }
    for (i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
        char src[32];
        if (!c->a->cfg->userns) {
            if (mknodat(devfd, devs[i].name, S_IFCHR | 0666,
                        makedev(devs[i].major, devs[i].minor)) < 0 &&
                errno != EEXIST)
                die(c, -errno, "mknod /dev/%s: %s", devs[i].name, strerror(errno));
            fchmodat(devfd, devs[i].name, 0666, 0);
            continue;
        }
        /* A user namespace may not create devices: bind the host's. */
        snprintf(src, sizeof(src), "/dev/%s", devs[i].name);
        mount_at(c, rootfd, src, src, NULL, 0, NULL, 1, 0, 0);
    }
    for (i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        if (symlinkat(links[i].target, devfd, links[i].name) < 0 && errno != EEXIST)
            die(c, -errno, "symlink /dev/%s: %s", links[i].name, strerror(errno));
    close(devfd);
}

static int dev_is_tmpfs(const struct process_mount *m)
{
    return strcmp(m->destination, "/dev") == 0 && strcmp(m->type, "tmpfs") == 0;
}

static void mount_rootfs(struct child *c, int *ret_rootfd)
{
    const struct process_child_args *a = c->a;
    int rootfd;
    uint32_t i;

    if (a->rootfs && a->rootfs->n_mounts > 0) {
        /* The entry for "/" first, then the ones below it. */
        for (int pass = 0; pass < 2; pass++) {
            for (i = 0; i < a->rootfs->n_mounts; i++) {
                const berth_mount_t *m = &a->rootfs->mounts[i];
                const char *t = m->target ? m->target : "";
                int is_root = !t[0] || strcmp(t, "/") == 0;
                char data[STORAGE_OVERLAY_LEGACY_MAX] = "";
                size_t len = 0;
                unsigned long flags = (m->flags & BERTH_MOUNT_F_READONLY) ? MS_RDONLY : 0;
                int bind = m->type && strcmp(m->type, "bind") == 0;

                if (is_root != (pass == 0))
                    continue;
                if (m->type && strcmp(m->type, "overlay") == 0) {
                    /*
                     * Always the new mount API when the kernel has it: options
                     * one at a time, a layer per "lowerdir+", so images of
                     * 125+ layers mount as small ones do (mount(2) takes one
                     * page), and a failure names the layer the kernel refused.
                     * mount(2) remains the fallback for older kernels.
                     */
                    char why[BERTH_ERR_MSG_MAX], p[64];
                    const char *where = a->rootfs_dir;
                    int fd = -1, r;

                    if (!is_root) {
                        rootfd = open(a->rootfs_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (rootfd < 0)
                            die(c, -errno, "rootfs: %s", strerror(errno));
                        fd = mkpath_in_root(rootfd, t, 0);
                        if (fd < 0)
                            die(c, -errno, "mount %s: resolving the target in the rootfs: %s", t,
                                strerror(errno));
                        close(rootfd);
                        fdpath(p, fd);
                        where = p;
                    }
                    r = storage_overlay_mount(m, where, why, sizeof(why));
                    if (fd >= 0)
                        close(fd);
                    if (r < 0)
                        die(c, r, "rootfs: %s", why);
                    continue;
                }
                for (uint32_t o = 0; o < m->n_options; o++) {
                    const char *opt = m->options[o];
                    if (strcmp(opt, "ro") == 0) {
                        flags |= MS_RDONLY;
                        continue;
                    }
                    if (strcmp(opt, "rw") == 0 || strcmp(opt, "bind") == 0 ||
                        strcmp(opt, "rbind") == 0) {
                        bind |= opt[0] != 'r' || opt[1] == 'b';
                        continue;
                    }
                    len += (size_t)snprintf(data + len, sizeof(data) - len, "%s%s", len ? "," : "",
                                            opt);
                    /* mount(2) passes one page of options; only overlay has a way around. */
                    if (len >= sizeof(data))
                        die(c, -E2BIG, "rootfs: %s mount options are longer than %zu bytes",
                            m->type ? m->type : "the", sizeof(data) - 1);
                }
                if (is_root) {
                    if (bind) {
                        if (mount(m->source, a->rootfs_dir, NULL, MS_BIND | MS_REC, NULL) < 0)
                            die(c, -errno, "rootfs: bind %s: %s", m->source, strerror(errno));
                        if ((flags & MS_RDONLY) &&
                            mount(NULL, a->rootfs_dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY,
                                  NULL) < 0)
                            die(c, -errno, "rootfs: read-only remount: %s", strerror(errno));
                    } else if (mount(m->source ? m->source : "none", a->rootfs_dir,
                                     m->type ? m->type : "none", flags,
                                     data[0] ? data : NULL) < 0) {
                        die(c, -errno, "rootfs: mount %s (%s): %s", m->source, m->type,
                            strerror(errno));
                    }
                    continue;
                }
                rootfd = open(a->rootfs_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (rootfd < 0)
                    die(c, -errno, "rootfs: %s", strerror(errno));
                mount_at(c, rootfd, t, m->source, m->type, flags | (bind ? MS_REC : 0),
                         data[0] ? data : NULL, bind, bind && (flags & MS_RDONLY), 0);
                close(rootfd);
            }
        }
    } else {
        const char *root = a->cfg->root_path;
        if (!root || root[0] != '/')
            die(c, -EINVAL, "rootfs: root.path must be an absolute path");
        if (mount(root, a->rootfs_dir, NULL, MS_BIND | MS_REC, NULL) < 0)
            die(c, -errno, "rootfs: bind %s: %s", root, strerror(errno));
    }
    rootfd = open(a->rootfs_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        die(c, -errno, "rootfs: %s", strerror(errno));
    *ret_rootfd = rootfd;
}

static void do_pivot_root(struct child *c)
{
    if (chdir(c->a->rootfs_dir) < 0)
        die(c, -errno, "chdir to the rootfs: %s", strerror(errno));
    /* pivot_root(".", "."): the old root ends up on top of the new one, then goes. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die(c, -errno, "pivot_root: %s", strerror(errno));
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        die(c, -errno, "making the old root a slave: %s", strerror(errno));
    if (umount2(".", MNT_DETACH) < 0)
        die(c, -errno, "detaching the old root: %s", strerror(errno));
    if (chdir("/") < 0)
        die(c, -errno, "chdir /: %s", strerror(errno));
}

static void mask_paths(struct child *c)
{
    const struct process_cfg *cfg = c->a->cfg;
    struct stat st;
    char p[64];
    size_t i;
    int nullfd = -1;

    for (i = 0; i < cfg->n_masked; i++) {
        if (lstat(cfg->masked[i], &st) < 0) {
            if (errno == ENOENT)
                continue;
            die(c, -errno, "masked path %s: %s", cfg->masked[i], strerror(errno));
        }
        if (S_ISDIR(st.st_mode)) {
            if (mount("tmpfs", cfg->masked[i], "tmpfs", MS_RDONLY, "size=0") < 0)
                die(c, -errno, "masking %s: %s", cfg->masked[i], strerror(errno));
            continue;
        }
        if (nullfd < 0) {
            struct stat ns;
            /* Only a real /dev/null: the image could have put anything at that name. */
            nullfd = open("/dev/null", O_PATH | O_CLOEXEC | O_NOFOLLOW);
            if (nullfd < 0 || fstat(nullfd, &ns) < 0 || !S_ISCHR(ns.st_mode) ||
                ns.st_rdev != makedev(1, 3))
                die(c, -EPERM, "masked paths: /dev/null in the container is not the null device");
        }
        fdpath(p, nullfd);
        if (mount(p, cfg->masked[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
            die(c, -errno, "masking %s: %s", cfg->masked[i], strerror(errno));
    }
    if (nullfd >= 0)
        close(nullfd);
    for (i = 0; i < cfg->n_readonly; i++) {
        if (mount(cfg->readonly[i], cfg->readonly[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            die(c, -errno, "read-only path %s: %s", cfg->readonly[i], strerror(errno));
        }
        if (mount(NULL, cfg->readonly[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) <
            0)
            die(c, -errno, "read-only path %s: %s", cfg->readonly[i], strerror(errno));
    }
}

static void write_sysctls(struct child *c)
{
    const struct process_cfg *cfg = c->a->cfg;
    for (size_t i = 0; i < cfg->n_sysctl; i++) {
        char path[PATH_MAX];
        struct statfs sfs;
        int fd;
        size_t k, len = strlen(cfg->sysctl[i].value);

        snprintf(path, sizeof(path), "/proc/sys/%s", cfg->sysctl[i].key);
        for (k = strlen("/proc/sys/"); path[k]; k++)
            if (path[k] == '.')
                path[k] = '/';
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        /* Writes go only to procfs, never to a file the image placed there. */
        if (fd < 0 || fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC ||
            write(fd, cfg->sysctl[i].value, len) != (ssize_t)len)
            die(c, errno ? -errno : -EIO, "sysctl %s: %s", cfg->sysctl[i].key, strerror(errno));
        close(fd);
    }
}

static void set_rlimits(struct child *c)
{
    const struct process_proc *p = c->a->proc;
    for (size_t i = 0; i < p->n_rlimits; i++) {
        struct rlimit cur, want;
        if (getrlimit(p->rlimits[i].resource, &cur) < 0)
            die(c, -errno, "getrlimit: %s", strerror(errno));
        want.rlim_max = p->rlimits[i].hard;
        want.rlim_cur = p->rlimits[i].soft;
        /* Never fail over a limit above what the host allows: clamp to its hard limit. */
        if (cur.rlim_max != RLIM_INFINITY) {
            if (want.rlim_max == RLIM_INFINITY || want.rlim_max > cur.rlim_max)
                want.rlim_max = cur.rlim_max;
        }
        if (want.rlim_cur == RLIM_INFINITY ||
            (want.rlim_max != RLIM_INFINITY && want.rlim_cur > want.rlim_max))
            want.rlim_cur = want.rlim_cur == RLIM_INFINITY && want.rlim_max == RLIM_INFINITY
                                ? RLIM_INFINITY
                                : (want.rlim_cur > want.rlim_max ? want.rlim_max : want.rlim_cur);
        if (setrlimit(p->rlimits[i].resource, &want) < 0)
            die(c, -errno, "setrlimit %d: %s", p->rlimits[i].resource, strerror(errno));
    }
}

/* ---- users ---- */

/* Read a small file of the container into @buf (NUL-terminated). */
static int read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n;

    if (fd < 0)
        return -errno;
    while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    return 0;
}

/* Field @idx (0-based) of a ':'-separated line, copied into @out. */
static void field(const char *line, int idx, char *out, size_t size)
{
    const char *p = line, *end;
    size_t n;

    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    if (!p) {
        out[0] = '\0';
        return;
    }
    end = p + strcspn(p, ":\n");
    n = (size_t)(end - p) < size - 1 ? (size_t)(end - p) : size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/*
 * process.user.username (a berth extension, as `docker run --user`): "name",
 * "name:group", "uid:gid" looked up in the container's /etc/passwd and
 * /etc/group after pivot_root, so the image's users count, never the host's.
 */
static void resolve_user(struct child *c)
{
    static char passwd[65536], group[65536];
    const struct process_proc *p = c->a->proc;
    char user[256], grp[256] = "", f[256], members[4096];
    const char *line, *colon;
    int have_group = 0, found = 0;

    c->uid = p->uid;
    c->gid = p->gid;
    c->n_groups = 0;
    for (size_t i = 0; i < p->n_groups && c->n_groups < sizeof(c->groups) / sizeof(gid_t); i++)
        c->groups[c->n_groups++] = p->groups[i];
    if (!p->username || !p->username[0])
        return;
    colon = strchr(p->username, ':');
    snprintf(user, sizeof(user), "%.*s", colon ? (int)(colon - p->username) : 255, p->username);
    if (colon) {
        snprintf(grp, sizeof(grp), "%s", colon + 1);
        have_group = 1;
    }
    if (read_small("/etc/passwd", passwd, sizeof(passwd)) < 0)
        passwd[0] = '\0';
    if (read_small("/etc/group", group, sizeof(group)) < 0)
        group[0] = '\0';
    for (line = passwd; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        field(line, 0, f, sizeof(f));
        if (strcmp(f, user) == 0) {
            field(line, 2, f, sizeof(f));
            c->uid = (uid_t)strtoul(f, NULL, 10);
            field(line, 3, f, sizeof(f));
            c->gid = (gid_t)strtoul(f, NULL, 10);
            found = 1;
            break;
        }
        if (is_number(user)) {
            field(line, 2, f, sizeof(f));
            if (strcmp(f, user) == 0) {
                field(line, 3, f, sizeof(f));
                c->gid = (gid_t)strtoul(f, NULL, 10);
                c->uid = (uid_t)strtoul(user, NULL, 10);
                found = 1;
                break;
            }
        }
    }
    if (!found) {
        if (!is_number(user))
            die(c, -ENOENT, "unable to find user %s: no matching entries in passwd file", user);
        c->uid = (uid_t)strtoul(user, NULL, 10);
        /* A bare uid without an entry runs with gid 0, as Docker does. */
        c->gid = 0;
    }
    if (have_group) {
        found = 0;
        for (line = group; *line && !is_number(grp);
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
            field(line, 0, f, sizeof(f));
            if (strcmp(f, grp) == 0) {
                field(line, 2, f, sizeof(f));
                c->gid = (gid_t)strtoul(f, NULL, 10);
                found = 1;
                break;
            }
        }
        if (is_number(grp)) {
            c->gid = (gid_t)strtoul(grp, NULL, 10);
            found = 1;
        }
        if (!found)
            die(c, -ENOENT, "unable to find group %s: no matching entries in group file", grp);
    }
    /* Supplementary groups: those that list the user as a member. */
    for (line = group; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        char *tok, *save = NULL;
        field(line, 3, members, sizeof(members));
        for (tok = strtok_r(members, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (strcmp(tok, user) == 0 && c->n_groups < sizeof(c->groups) / sizeof(gid_t)) {
                field(line, 2, f, sizeof(f));
                c->groups[c->n_groups++] = (gid_t)strtoul(f, NULL, 10);
            }
        }
    }
}

/* ---- terminal and stdio ---- */

static int open_tty(struct child *c)
{
    int master, unlock = 0;
    struct winsize ws = { .ws_col = c->a->cols, .ws_row = c->a->rows };

    /* The container's own devpts instance: /dev/ptmx points into it. */
    master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        die(c, -errno, "open /dev/ptmx in the container: %s", strerror(errno));
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
        die(c, -errno, "unlockpt: %s", strerror(errno));
    c->tty_slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (c->tty_slave < 0)
        die(c, -errno, "opening the terminal's slave: %s", strerror(errno));
    if (ws.ws_col && ws.ws_row)
        ioctl(c->tty_slave, TIOCSWINSZ, &ws);
    return master;
}

static void setup_stdio(struct child *c)
{
    int fds[3];

    if (setsid() < 0 && errno != EPERM)
        die(c, -errno, "setsid: %s", strerror(errno));
    if (c->tty_slave >= 0) {
        if (ioctl(c->tty_slave, TIOCSCTTY, 0) < 0)
            die(c, -errno, "making the terminal controlling: %s", strerror(errno));
        for (int i = 0; i < 3; i++)
            if (dup2(c->tty_slave, i) < 0)
                die(c, -errno, "dup2: %s", strerror(errno));
        if (c->tty_slave > 2)
            close(c->tty_slave);
        return;
    }
    /* Move every source out of 0..2 first, so one dup2 never clobbers another's source. */
    for (int i = 0; i < 3; i++) {
        int src = c->a->stdio[i] >= 0 ? c->a->stdio[i] : c->devnull;
        fds[i] = fcntl(src, F_DUPFD_CLOEXEC, 3);
        if (fds[i] < 0)
            die(c, -errno, "dup stdio: %s", strerror(errno));
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(fds[i], i) < 0)
            die(c, -errno, "dup2: %s", strerror(errno));
        close(fds[i]);
    }
}

/* ---- credentials, capabilities, seccomp ---- */

static void load_seccomp(struct child *c)
{
    const struct sock_fprog *prog = &c->a->cfg->seccomp;
    if (!prog->filter)
        return;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
        die(c, -errno, "loading the seccomp filter: %s", strerror(errno));
}

static void set_caps(struct child *c, int phase)
{
    const struct process_proc *p = c->a->proc;
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[2];

    if (!p->has_caps)
        return;
    if (phase == 0) {
        /* Before the uid switch, while CAP_SETPCAP is still effective. */
        for (unsigned long cap = 0; cap < 64; cap++) {
            if (p->cap_bounding & (1ull << cap))
                continue;
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                if (errno == EINVAL)
                    break; /* past the kernel's last capability */
                die(c, -errno, "dropping capability %lu from the bounding set: %s", cap,
                    strerror(errno));
            }
        }
        return;
    }
    data[0].effective = (uint32_t)p->cap_effective;
    data[1].effective = (uint32_t)(p->cap_effective >> 32);
    data[0].permitted = (uint32_t)p->cap_permitted;
    data[1].permitted = (uint32_t)(p->cap_permitted >> 32);
    data[0].inheritable = (uint32_t)p->cap_inheritable;
    data[1].inheritable = (uint32_t)(p->cap_inheritable >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0)
        die(c, -errno, "capset: %s", strerror(errno));
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (unsigned long cap = 0; cap < 64; cap++)
        if ((p->cap_ambient & (1ull << cap)) &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            die(c, -errno, "raising ambient capability %lu: %s", cap, strerror(errno));
}

static void switch_user(struct child *c)
{
    if (c->a->proc->has_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        die(c, -errno, "keepcaps: %s", strerror(errno));
    if (setgroups(c->n_groups, c->groups) < 0 && !(errno == EPERM && c->a->cfg->userns))
        die(c, -errno, "setgroups: %s", strerror(errno));
    if (setresgid(c->gid, c->gid, c->gid) < 0)
        die(c, -errno, "setgid %u: %s", (unsigned)c->gid, strerror(errno));
    if (setresuid(c->uid, c->uid, c->uid) < 0)
        die(c, -errno, "setuid %u: %s", (unsigned)c->uid, strerror(errno));
}

/* ---- exec ---- */

static const char *env_path(char *const *env)
{
    for (; env && *env; env++)
        if (strncmp(*env, "PATH=", 5) == 0)
            return *env + 5;
    return DEFAULT_PATH;
}

static _Noreturn void do_exec(struct child *c)
{
    const struct process_proc *p = c->a->proc;
    const char *name = p->args[0];
    char path[PATH_MAX];
    int saw_eacces = 0;

    if (strchr(name, '/')) {
        execve(name, p->args, p->env);
        if (errno == ENOENT || errno == ENOTDIR)
            die(c, -ENOENT, "exec: \"%s\": stat %s: no such file or directory", name, name);
        if (errno == EACCES)
            die(c, -EACCES, "exec: \"%s\": permission denied", name);
        die(c, -errno, "exec: \"%s\": %s", name, strerror(errno));
    }
    for (const char *dir = env_path(p->env); dir;) {
        const char *end = strchr(dir, ':');
        size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
        struct stat st;

        snprintf(path, sizeof(path), "%.*s/%s", (int)dlen, dlen ? dir : ".", name);
        dir = end ? end + 1 : NULL;
        if (stat(path, &st) < 0 || S_ISDIR(st.st_mode))
            continue;
        execve(path, p->args, p->env);
        if (errno == EACCES) {
            saw_eacces = 1;
            continue;
        }
        if (errno != ENOENT && errno != ENOTDIR)
            die(c, -errno, "exec: \"%s\": %s", name, strerror(errno));
    }
    if (saw_eacces)
        die(c, -EACCES, "exec: \"%s\": permission denied", name);
    die(c, -ENOENT, "exec: \"%s\": executable file not found in $PATH", name);
}

/*
 * The program starts as under Docker or runc: every signal at its default
 * action and none blocked. execve() resets handlers but keeps ignored
 * signals and the mask, and the caller's would otherwise be passed on
 * (berth-shim ignores SIGPIPE, so `yes | head` in a container would see
 * EPIPE instead of dying of SIGPIPE). glibc's sigaction() refuses the two
 * signals it reserves for itself (32 and 33), so those go through the
 * system call, whose struct is the generic one on the architectures below.
 */
static void reset_signals(void)
{
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigset_t none;

    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
#if defined(__x86_64__) || defined(__aarch64__)
    {
        struct {
            void (*handler)(int);
            unsigned long flags;
            void (*restorer)(void);
            uint64_t mask;
        } k = { .handler = SIG_DFL };
        for (int sig = 32; sig < SIGRTMIN; sig++)
            syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
    }
#endif
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* After the caller's second GO: everything that drops privileges, then execve. */
static _Noreturn void finish_and_exec(struct child *c)
{
    const struct process_proc *p = c->a->proc;

    /* Before the seccomp filter, which might not allow it. */
    reset_signals();
    setup_stdio(c);
    /* Only 0, 1 and 2 may reach the program (CVE-2024-21626); the sync socket is CLOEXEC. */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = 3; fd < 65536; fd++)
            if (fd != c->a->sync_fd)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    /* Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: do it now. */
    if (!p->no_new_privs)
        load_seccomp(c);
    set_caps(c, 0);
    switch_user(c);
    set_caps(c, 1);
    if (p->no_new_privs) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            die(c, -errno, "no_new_privs: %s", strerror(errno));
        load_seccomp(c);
    }
    umask(022);
    do_exec(c);
}

/*
 * Only cgroup v2 can be mounted as one filesystem; on v1 and hybrid hosts
 * the container goes without /sys/fs/cgroup. Mounted after the cgroup
 * namespace exists, so the container sees its own cgroup as the root.
 */
static void mount_cgroup(int rootfd, const struct process_mount *m)
{
    int fd = mkpath_in_root(rootfd, m->destination, 0);
    char p[64];

    if (fd >= 0) {
        fdpath(p, fd);
        mount("cgroup2", p, "cgroup2", m->flags, NULL);
        close(fd);
    }
}

/* Steps shared by init and exec once inside the container's root. */
static void setup_process(struct child *c)
{
    struct process_msg m = { .type = PROCESS_MSG_READY };
    int master = -1;

    set_rlimits(c);
    if (c->a->proc->has_oom_score_adj) {
        char buf[16];
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        int len = snprintf(buf, sizeof(buf), "%d", c->a->proc->oom_score_adj);
        if (fd < 0 || write(fd, buf, (size_t)len) != len)
            die(c, errno ? -errno : -EIO, "oom_score_adj: %s", strerror(errno));
        close(fd);
    }
    resolve_user(c);
    if (chdir(c->a->proc->cwd) < 0)
        die(c, -errno, "chdir to cwd \"%s\": %s", c->a->proc->cwd, strerror(errno));
    if (c->a->tty)
        master = open_tty(c);
    if (process_msg_send(c->a->sync_fd, &m, master) < 0)
        _exit(1);
    if (master >= 0)
        close(master);
    wait_go(c);
    finish_and_exec(c);
}

_Noreturn void process_child_init(const struct process_child_args *a)
{
    struct child c = { .a = a, .tty_slave = -1 };
    const struct process_cfg *cfg = a->cfg;
    int rootfd, dev_tmpfs = 0, early;

    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    close_inherited(a);
    force_walk = a->no_openat2;
    c.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (c.devnull < 0)
        die(&c, -errno, "open /dev/null: %s", strerror(errno));
    /*
     * Without a user namespace we join the container's v1 cgroups ourselves
     * (clone3 already put us in its v2 one): a thread moving itself costs
     * microseconds, where the caller moving us would first wait for an RCU
     * grace period. First of all, so nothing of ours runs outside them.
     */
    if (a->join_v1) {
        const char *dir = "";
        int r = pcg_enter_self_v1(a->join_v1, &dir);
        if (r < 0)
            die(&c, r, "cgroup: joining %s: %s", dir, strerror(-r));
    }
    /*
     * Otherwise the caller moves us into the container's cgroup and says go.
     * Without a user namespace the mounts are made meanwhile: nothing before
     * the go forks or execs, and the cgroup namespace and cgroup mounts,
     * which depend on the move, come after it. With a user namespace nothing
     * can be done before the caller writes the id maps.
     */
    early = !cfg->userns;
    if (!early)
        wait_go(&c);
    if (cfg->userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
        die(&c, -errno, "becoming root in the user namespace: %s", strerror(errno));
    if (a->netns_fd >= 0 && setns(a->netns_fd, CLONE_NEWNET) < 0)
        die(&c, -errno, "joining the network namespace: %s", strerror(errno));
    if (!early && unshare(CLONE_NEWCGROUP) < 0)
        die(&c, -errno, "cgroup namespace: %s", strerror(errno));
    if (mount(NULL, "/", NULL, cfg->root_propagation, NULL) < 0)
        die(&c, -errno, "making / private: %s", strerror(errno));
    umask(0);
    mount_rootfs(&c, &rootfd);
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        const struct process_mount *m = &cfg->mounts[i];
        const char *type = m->type;
        if (strcmp(type, "cgroup") == 0) {
            if (!early)
                mount_cgroup(rootfd, m);
            continue;
        }
        if (strcmp(type, "sysfs") == 0 && cfg->userns && a->joined_netns) {
            /* sysfs needs a netns owned by our userns: bind the host's, read-only. */
            mount_at(&c, rootfd, m->destination, "/sys", NULL, MS_REC | MS_RDONLY | MS_NOSUID, NULL,
                     1, 1, 0);
            continue;
        }
        mount_at(&c, rootfd, m->destination, m->source, type, m->flags, m->data, m->bind,
                 m->readonly_bind, m->propagation);
        if (dev_is_tmpfs(m))
            dev_tmpfs = 1;
    }
    if (dev_tmpfs)
        setup_dev(&c, rootfd);
    close(rootfd);
    do_pivot_root(&c);
    mask_paths(&c);
    write_sysctls(&c);
    if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
        die(&c, -errno, "sethostname: %s", strerror(errno));
    if (early) {
        wait_go(&c);
        /* Now that we are in the container's cgroup, it becomes the namespace's root. */
        if (unshare(CLONE_NEWCGROUP) < 0)
            die(&c, -errno, "cgroup namespace: %s", strerror(errno));
        rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
            die(&c, -errno, "open /: %s", strerror(errno));
        for (size_t i = 0; i < cfg->n_mounts; i++)
            if (strcmp(cfg->mounts[i].type, "cgroup") == 0)
                mount_cgroup(rootfd, &cfg->mounts[i]);
        close(rootfd);
    }
    if (cfg->root_readonly && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        die(&c, -errno, "read-only root: %s", strerror(errno));
    setup_process(&c);
    _exit(1);
}

_Noreturn void process_child_exec_helper(const struct process_child_args *a)
{
    struct child c = { .a = a, .tty_slave = -1 };
    struct process_msg m = { .type = PROCESS_MSG_PID };
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                CLONE_NEWCGROUP | (a->enter_userns ? CLONE_NEWUSER : 0);
    /* With CLONE_PARENT the kernel wants exit_signal 0: the child inherits ours, SIGCHLD. */
    struct clone_args ca = { .flags = CLONE_PARENT };
    long pid;

    /* Not dumpable before entering: nothing in the container may ptrace or open us. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    close_inherited(a);
    c.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (c.devnull < 0)
        die(&c, -errno, "open /dev/null: %s", strerror(errno));
    if (setns(a->enter_fd, flags) < 0)
        die(&c, -errno, "joining the container's namespaces: %s", strerror(errno));
    /* A pid namespace applies to children only: the process to run is a sibling of us. */
    pid = syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid < 0)
        die(&c, -errno, "clone: %s", strerror(errno));
    if (pid > 0) {
        m.code = (int32_t)pid;
        process_msg_send(a->sync_fd, &m, -1);
        _exit(0);
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    wait_go(&c);
    if (a->enter_userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
        die(&c, -errno, "becoming root in the user namespace: %s", strerror(errno));
    setup_process(&c);
    _exit(1);
}
