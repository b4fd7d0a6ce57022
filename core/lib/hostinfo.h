/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host feature detection for `berth info` and for drivers' probes: cgroup
 * layout, overlayfs, user namespaces, KVM. Reads /proc, /sys and /dev only;
 * never changes the host.
 */
#ifndef BERTH_HOSTINFO_H
#define BERTH_HOSTINFO_H

#include <jansson.h>

#include <berth/types.h>

typedef struct berth_hostinfo {
    char cgroup_mode[8]; /* "v2", "v1", "hybrid" (v1 controllers + a v2 tree at unified/), "none" */
    int overlayfs;       /* 1 when the kernel lists overlay in /proc/filesystems */
    int userns;          /* 1 when user namespaces can be created (max_user_namespaces > 0) */
    int kvm;             /* 1 when /dev/kvm opens and KVM_CREATE_VM succeeds */
    char kvm_detail[160]; /* one line: why not, or what was checked ("boot not probed") */
    char kernel[65];      /* uname release */
    char arch[32];        /* uname machine */
    /* 1 when unprivileged users may create them too: userns and Debian's
     * /proc/sys/kernel/unprivileged_userns_clone is not 0 (absent counts as allowed) */
    int userns_unprivileged;
} berth_hostinfo_t;

/* Fill @ret from the running host; never fails (unknown facts read as absent). */
void berth__hostinfo_detect(berth_hostinfo_t *ret);

/*
 * The cgroup layout mounted at @cgroup_root ("/sys/fs/cgroup" normally):
 * "v2" when it is a cgroup2 mount, "hybrid" when it is a tmpfs holding v1
 * controllers and a cgroup2 mount at unified/, "v1" for a tmpfs of v1
 * controllers only, "none" otherwise. Returns a static string.
 * Decided by statfs magic only: a tmpfs with cgroup2 at unified/ reads
 * "hybrid" whatever sits beside it (systemd mounts unified/ only in its
 * hybrid layout); "v1" needs at least one direct subdirectory that is a
 * cgroup v1 mount. Nothing is followed below that depth.
 */
const char *berth__cgroup_mode_at(const char *cgroup_root);

/*
 * The facts as a JSON object (new reference), NULL on allocation failure:
 * {"cgroup_mode", "overlayfs": bool, "userns": bool, "userns_unprivileged": bool,
 *  "kvm": bool, "kvm_detail", "kernel", "arch"}.
 */
json_t *berth__hostinfo_to_json(const berth_hostinfo_t *info);

#endif /* BERTH_HOSTINFO_H */
