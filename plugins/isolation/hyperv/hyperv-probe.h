/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Does KVM boot the hyperv guest on this host? (issue 7; docs/hyperv.md)
 *
 * A host can have /dev/kvm and still not run this guest under KVM: these
 * machines' nested KVM (kvm_pvm) needs guest kernels built for it and stops
 * the stock one early in boot. So the only reliable answer is to boot the
 * guest once with -accel kvm and wait a short time for the agent's hello.
 * The answer is cached in a file, keyed by the qemu binary, the kernel and
 * the initramfs (path, size and modification time of each), so it is
 * probed again only when one of them changes.
 */
#ifndef BERTH_HYPERV_PROBE_H
#define BERTH_HYPERV_PROBE_H

#include <berth/types.h>

typedef struct hv_accel_probe {
    int kvm;          /* 1: KVM boots the guest; 0: use TCG */
    int cached;       /* 1 when the answer came from the cache file */
    char reason[256]; /* why not KVM ("" when it works), one line */
} hv_accel_probe_t;

/*
 * Probe (or read the cached answer from @cache_path, a file whose directory
 * exists; written atomically). @qemu: qemu-system-x86_64's path (NULL: from
 * $PATH); @kernel, @initrd: the guest's; @timeout_ms: how long the boot may
 * take under KVM (a KVM boot takes well under a second; TCG is not tried).
 * The VM started for the probe is gone when this returns. Returns 0 with
 * *ret filled, or a negative errno when the probe itself could not run
 * (no kernel, no qemu, no memory): err says why.
 */
int hv_probe_accel(const char *qemu, const char *kernel, const char *initrd, int timeout_ms,
                   const char *cache_path, hv_accel_probe_t *ret, berth_err_t *err);

#endif /* BERTH_HYPERV_PROBE_H */
