/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mounting an overlay berth_mount_t ({type "overlay", options
 * "lowerdir=a:b:c", "upperdir=...", ...}) whatever its number of layers.
 *
 * mount(2) hands a filesystem at most one page of options, which 125 or so
 * lower layers under an ordinary state dir already exceed. The new mount
 * API takes options one at a time: fsopen("overlay"), fsconfig() per option
 * and "lowerdir+" per lower layer (Linux 6.8), FSCONFIG_CMD_CREATE, fsmount()
 * and move_mount() onto the target. fsconfig() copies at most 256 bytes of a
 * value, so a longer path is opened O_PATH and passed as /proc/self/fd/N.
 * Without the new API (ENOSYS), or without "lowerdir+" (older kernels), the
 * options go to mount(2) when they fit in a page; otherwise the error says
 * how many layers did not fit.
 *
 * Header-only and free of malloc, so that it can run in a freshly cloned
 * child of a threaded process (the process isolation driver mounts a
 * container's rootfs there); used there, in berth-testkit and in the
 * storage tests and benchmark. Include it after <berth/types.h>.
 *
 * lowerdir values use overlay's escaping: entries separated by ':', a '\'
 * makes the next character literal. upperdir/workdir values are passed on
 * unchanged (the kernel unescapes those itself).
 */
#ifndef BERTH_STORAGE_OVERLAY_MOUNT_H
#define BERTH_STORAGE_OVERLAY_MOUNT_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <berth/types.h>

/* What mount(2) copies of the data argument: one page. */
#define STORAGE_OVERLAY_LEGACY_MAX 4096
/* What fsconfig() copies of a string value, the NUL included. */
#define STORAGE_OVERLAY_VALUE_MAX 256

/* Options that are mount flags, not overlay's own: 1 when @opt is one (and is applied). */
static inline int storage_overlay_flag_opt(const char *opt, unsigned long *ms, unsigned int *attr)
{
    static const struct {
        const char *name;
        unsigned long ms;
        unsigned int attr;
    } flags[] = {
        { "ro", MS_RDONLY, MOUNT_ATTR_RDONLY },     { "rw", 0, 0 },
        { "nosuid", MS_NOSUID, MOUNT_ATTR_NOSUID }, { "nodev", MS_NODEV, MOUNT_ATTR_NODEV },
        { "noexec", MS_NOEXEC, MOUNT_ATTR_NOEXEC }, { "noatime", MS_NOATIME, MOUNT_ATTR_NOATIME },
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strcmp(opt, flags[i].name) == 0) {
            *ms |= flags[i].ms;
            *attr |= flags[i].attr;
            return 1;
        }
    }
    return 0;
}

/*
 * The next entry of lowerdir value @p, unescaped into @buf. Returns where the
 * following entry starts (NULL after the last), or sets *ret_err.
 */
static inline const char *storage_overlay_next_lower(const char *p, char *buf, size_t len,
                                                     int *ret_err)
{
    size_t n = 0;
    for (; *p && *p != ':'; p++) {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 >= len) {
            *ret_err = -ENAMETOOLONG;
            return NULL;
        }
        buf[n++] = *p;
    }
    buf[n] = '\0';
    return *p == ':' ? p + 1 : NULL;
}

/* Number of layers in a lowerdir value. */
static inline uint32_t storage_overlay_count_lowers(const char *v)
{
    uint32_t n = *v ? 1 : 0;
    for (; *v; v++) {
        if (*v == '\\' && v[1])
            v++;
        else if (*v == ':')
            n++;
    }
    return n;
}

/* The layers of @m's lowerdir option, 0 when it has none. */
static inline uint32_t storage_overlay_layers(const berth_mount_t *m)
{
    for (uint32_t i = 0; i < m->n_options; i++)
        if (strncmp(m->options[i], "lowerdir=", 9) == 0)
            return storage_overlay_count_lowers(m->options[i] + 9);
    return 0;
}

/* Append the kernel's own messages about the fs context @fsfd (read from it) to @why. */
static inline void storage_overlay_kernel_log(int fsfd, char *why, size_t whylen)
{
    char msg[256];
    ssize_t n;
    size_t len = strlen(why);

    while (len + 4 < whylen && (n = read(fsfd, msg, sizeof(msg) - 1)) > 0) {
        msg[n] = '\0';
        msg[strcspn(msg, "\n")] = '\0';
        /* "e overlay: ..." (error), "w ..." (warning), "i ..." (info). */
        len += (size_t)snprintf(why + len, whylen - len, " [%s]", msg[1] == ' ' ? msg + 2 : msg);
    }
}

/*
 * fsconfig(@key=@val); a path value too long for fsconfig is opened and
 * passed as /proc/self/fd/N. The fd goes into *@ret_fd (-1 when none): the
 * caller closes it after FSCONFIG_CMD_CREATE (an older kernel resolves paths
 * only then).
 */
static inline int storage_overlay_set(int fsfd, const char *key, const char *val, int *ret_fd)
{
    char proc[64];
    *ret_fd = -1;
    if (strlen(val) >= STORAGE_OVERLAY_VALUE_MAX) {
        int fd = open(val, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        val = proc;
        *ret_fd = fd;
    }
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, key, val, 0) < 0)
        return -errno;
    return 0;
}

/*
 * The new mount API. Returns 0, or a negative errno with @why filled; sets
 * *ret_fallback to 1 when the kernel lacks what is needed here (fsopen, or
 * "lowerdir+"), to 2 when creating the mount failed in a way an older
 * kernel's fails on lowerdir+: mount(2) may do instead.
 */
static inline int storage_overlay_mount_new(const berth_mount_t *m, const char *target, char *why,
                                            size_t whylen, int *ret_fallback)
{
    unsigned long ms = 0;
    unsigned int attr = (m->flags & BERTH_MOUNT_F_READONLY) ? MOUNT_ATTR_RDONLY : 0;
    int fsfd, mfd, keep[8], n_keep = 0, r = 0, used_plus = 0;

    *ret_fallback = 0;
    fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fsfd < 0) {
        r = -errno;
        *ret_fallback = r == -ENOSYS;
        snprintf(why, whylen, "overlay: fsopen: %s", strerror(-r));
        return r;
    }
    for (uint32_t i = 0; i < m->n_options && r == 0; i++) {
        const char *opt = m->options[i], *eq = strchr(opt, '=');
        char key[64];
        int fd = -1;

        if (storage_overlay_flag_opt(opt, &ms, &attr))
            continue;
        if (strncmp(opt, "lowerdir=", 9) == 0) {
            char path[PATH_MAX];
            const char *p = opt + 9;
            uint32_t layer = 0;
            /* One fsconfig per layer: no limit on their number but overlay's own. */
            while (p && r == 0) {
                p = storage_overlay_next_lower(p, path, sizeof(path), &r);
                if (r < 0) {
                    snprintf(why, whylen, "overlay: lower layer %u: path too long", layer + 1);
                    break;
                }
                r = storage_overlay_set(fsfd, "lowerdir+", path, &fd);
                if (fd >= 0)
                    close(fd); /* kernels with lowerdir+ resolve it at once */
                if (r == -EINVAL) {
                    /* No lowerdir+ before Linux 6.8 (or, before 6.5, a full page of them). */
                    *ret_fallback = 1;
                    snprintf(why, whylen, "overlay: lower layer %u: lowerdir+: %s", layer + 1,
                             strerror(-r));
                    storage_overlay_kernel_log(fsfd, why, whylen);
                } else if (r < 0) {
                    snprintf(why, whylen, "overlay: lower layer %u (%s): %s", layer + 1, path,
                             strerror(-r));
                    storage_overlay_kernel_log(fsfd, why, whylen);
                }
                layer++;
                used_plus = 1;
            }
            continue;
        }
        if (eq) {
            size_t klen = (size_t)(eq - opt);
            if (klen >= sizeof(key)) {
                r = -EINVAL;
                snprintf(why, whylen, "overlay: option %.40s...: name too long", opt);
                break;
            }
            memcpy(key, opt, klen);
            key[klen] = '\0';
            r = storage_overlay_set(fsfd, key, eq + 1, &fd);
            if (fd >= 0 && n_keep < (int)(sizeof(keep) / sizeof(keep[0])))
                keep[n_keep++] = fd;
            else if (fd >= 0)
                close(fd);
        } else if (fsconfig(fsfd, FSCONFIG_SET_FLAG, opt, NULL, 0) < 0) {
            r = -errno;
        }
        if (r < 0) {
            snprintf(why, whylen, "overlay: option %.*s: %s", (int)(eq ? eq - opt : 64), opt,
                     strerror(-r));
            storage_overlay_kernel_log(fsfd, why, whylen);
        }
    }
    if (r == 0 && fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        r = -errno;
        /* Before 6.5 overlay took options only as mount(2) text: lowerdir+ fails here. */
        *ret_fallback = used_plus && r == -EINVAL ? 2 : 0;
        snprintf(why, whylen, "overlay: creating the mount: %s", strerror(-r));
        storage_overlay_kernel_log(fsfd, why, whylen);
    }
    for (int i = 0; i < n_keep; i++)
        close(keep[i]);
    if (r < 0) {
        close(fsfd);
        return r;
    }
    mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, attr);
    if (mfd < 0) {
        r = -errno;
        snprintf(why, whylen, "overlay: fsmount: %s", strerror(-r));
        storage_overlay_kernel_log(fsfd, why, whylen);
        close(fsfd);
        return r;
    }
    close(fsfd);
    if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
        r = -errno;
        snprintf(why, whylen, "overlay: attaching the mount on %.256s: %s", target, strerror(-r));
    }
    close(mfd);
    return r;
}

/* mount(2) with the options joined, when they fit a page. */
static inline int storage_overlay_mount_legacy(const berth_mount_t *m, const char *target,
                                               char *why, size_t whylen)
{
    char data[STORAGE_OVERLAY_LEGACY_MAX];
    unsigned long ms = (m->flags & BERTH_MOUNT_F_READONLY) ? MS_RDONLY : 0;
    unsigned int attr = 0;
    size_t len = 0;

    data[0] = '\0';
    for (uint32_t i = 0; i < m->n_options; i++) {
        const char *opt = m->options[i];
        size_t olen = strlen(opt);
        if (storage_overlay_flag_opt(opt, &ms, &attr))
            continue;
        if (len + olen + 2 > sizeof(data)) {
            snprintf(why, whylen,
                     "overlay: %u layers do not fit the mount options of this kernel "
                     "(more than %d bytes; the new mount API with lowerdir+ needs Linux 6.8)",
                     storage_overlay_layers(m), STORAGE_OVERLAY_LEGACY_MAX);
            return -E2BIG;
        }
        if (len)
            data[len++] = ',';
        memcpy(data + len, opt, olen + 1);
        len += olen;
    }
    if (mount(m->source ? m->source : "overlay", target, "overlay", ms, data) < 0) {
        int e = errno;
        snprintf(why, whylen, "overlay: mount on %.256s: %s", target, strerror(e));
        return -e;
    }
    return 0;
}

/*
 * Mount overlay @m on @target (a path; a /proc/self/fd/N of a resolved
 * directory works). Returns 0, or a negative errno with a one-line reason in
 * @why.
 */
static inline int storage_overlay_mount(const berth_mount_t *m, const char *target, char *why,
                                        size_t whylen)
{
    char first[BERTH_ERR_MSG_MAX];
    int fallback = 0, r, q;

    r = storage_overlay_mount_new(m, target, why, whylen, &fallback);
    if (r == 0 || !fallback)
        return r;
    snprintf(first, sizeof(first), "%s", why);
    q = storage_overlay_mount_legacy(m, target, why, whylen);
    /* mount(2) failing too after a failed create: the kernel's words from then say more. */
    if (q < 0 && q != -E2BIG && fallback == 2)
        snprintf(why, whylen, "%s", first);
    return q;
}

#endif /* BERTH_STORAGE_OVERLAY_MOUNT_H */
