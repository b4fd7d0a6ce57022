/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host feature detection (hostinfo.h). Each probe reads one well-known file
 * or asks the kernel one question and reports exactly what it checked: a
 * feature that cannot be read counts as absent, and nothing is claimed
 * beyond the check (KVM_CREATE_VM working says nothing about booting a
 * guest, see docs/machine-notes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <linux/kvm.h>
#include <linux/magic.h>

#include "hostinfo.h"
#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* The KVM API has been frozen at 12 since Linux 2.6.22; anything else is not the KVM we know. */
#define KVM_EXPECTED_API_VERSION 12

/* statfs f_type of @path, or 0 when it can't be read (0 is no filesystem's magic). */
static unsigned long fs_magic(const char *path)
{
    struct statfs sfs;

    if (statfs(path, &sfs) < 0)
        return 0;
    return (unsigned long)sfs.f_type;
}

/* 1 when some directory directly under @root is a cgroup v1 mount. */
static int has_v1_mounts(const char *root)
{
    DIR *d = opendir(root);
    struct dirent *de;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (de = readdir(d))) {
        _cleanup_free_ char *sub = NULL;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        /* statfs follows the cpu -> cpu,cpuacct style symlinks, which is what we want. */
        if (asprintf(&sub, "%s/%s", root, de->d_name) < 0) {
            sub = NULL;
            break;
        }
        found = fs_magic(sub) == CGROUP_SUPER_MAGIC;
    }
    closedir(d);
    return found;
}

const char *berth__cgroup_mode_at(const char *cgroup_root)
{
    _cleanup_free_ char *unified = NULL;
    unsigned long magic = fs_magic(cgroup_root);

    if (magic == CGROUP2_SUPER_MAGIC)
        return "v2";
    if (magic != TMPFS_MAGIC)
        return "none";
    /* systemd's hybrid layout: v1 controllers on a tmpfs, plus a cgroup2 tree at unified/
     * (which may have no controllers at all, as on the build machines). */
    if (asprintf(&unified, "%s/unified", cgroup_root) < 0)
        return "none";
    if (fs_magic(unified) == CGROUP2_SUPER_MAGIC)
        return "hybrid";
    return has_v1_mounts(cgroup_root) ? "v1" : "none";
}

/* The first integer in @path, or @fallback when it can't be read. */
static long read_long(const char *path, long fallback)
{
    FILE *f = fopen(path, "re");
    long v;

    if (!f)
        return fallback;
    if (fscanf(f, "%ld", &v) != 1)
        v = fallback;
    fclose(f);
    return v;
}

/* /proc/filesystems lines are "nodev\toverlay" or "\text4": the name is the last field. */
static int kernel_has_fs(const char *name)
{
    FILE *f = fopen("/proc/filesystems", "re");
    char line[128];
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f)) {
        char *fs = strrchr(line, '\t');

        fs = fs ? fs + 1 : line;
        fs[strcspn(fs, "\n")] = '\0';
        found = strcmp(fs, name) == 0;
    }
    fclose(f);
    return found;
}

static void probe_kvm(berth_hostinfo_t *info)
{
    _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int version, vm;

    info->kvm = 0;
    if (kvm < 0) {
        snprintf(info->kvm_detail, sizeof(info->kvm_detail), "/dev/kvm: %s", strerror(errno));
        return;
    }
    version = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (version < 0) {
        snprintf(info->kvm_detail, sizeof(info->kvm_detail), "KVM_GET_API_VERSION: %s",
                 strerror(errno));
        return;
    }
    if (version != KVM_EXPECTED_API_VERSION) {
        snprintf(info->kvm_detail, sizeof(info->kvm_detail), "KVM API version %d, expected %d",
                 version, KVM_EXPECTED_API_VERSION);
        return;
    }
    /* A VM that can be created may still be unable to run a stock guest (nested, pagetable-based
     * KVM on the build machines), so this is as far as a cheap probe can honestly go. */
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        snprintf(info->kvm_detail, sizeof(info->kvm_detail), "KVM_CREATE_VM: %s", strerror(errno));
        return;
    }
    close(vm);
    info->kvm = 1;
    snprintf(info->kvm_detail, sizeof(info->kvm_detail),
             "KVM_CREATE_VM works; guest boot not probed (the hyperv driver probes it)");
}

void berth__hostinfo_detect(berth_hostinfo_t *ret)
{
    struct utsname u;
    long unpriv;

    memset(ret, 0, sizeof(*ret));
    snprintf(ret->cgroup_mode, sizeof(ret->cgroup_mode), "%s",
             berth__cgroup_mode_at("/sys/fs/cgroup"));
    ret->overlayfs = kernel_has_fs("overlay");
    ret->userns = read_long("/proc/sys/user/max_user_namespaces", 0) > 0;
    /* Debian's knob only restricts unprivileged users; where it is absent nothing does. */
    unpriv = read_long("/proc/sys/kernel/unprivileged_userns_clone", 1);
    ret->userns_unprivileged = ret->userns && unpriv > 0;
    probe_kvm(ret);
    if (uname(&u) == 0) {
        snprintf(ret->kernel, sizeof(ret->kernel), "%s", u.release);
        /* Machine names are short ("x86_64", "aarch64"); utsname merely allows 64 bytes. */
        snprintf(ret->arch, sizeof(ret->arch), "%.*s", (int)sizeof(ret->arch) - 1, u.machine);
    }
}

json_t *berth__hostinfo_to_json(const berth_hostinfo_t *info)
{
    return json_pack("{s:s, s:b, s:b, s:b, s:b, s:s, s:s, s:s}", "cgroup_mode", info->cgroup_mode,
                     "overlayfs", info->overlayfs, "userns", info->userns, "userns_unprivileged",
                     info->userns_unprivileged, "kvm", info->kvm, "kvm_detail", info->kvm_detail,
                     "kernel", info->kernel, "arch", info->arch);
}
