/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which kernel a hyperv guest boots (issue 7; docs/hyperv-guest.md).
 *
 * The kernel berth builds (guest/build-kernel.sh) has everything the guest
 * needs built in and finds microvm's virtio-mmio devices on its command
 * line. When it is not installed, the distribution's kernel
 * (linux-image-amd64) is the fallback. That kernel differs in two ways the
 * VM must follow: its virtio, 9p and overlay drivers are modules, and it
 * finds virtio-mmio devices only through ACPI (Debian does not set
 * VIRTIO_MMIO_CMDLINE_DEVICES). So it boots with ACPI on, and with an
 * initramfs that carries those modules: the agent's initramfs followed by
 * a second archive holding the modules, their dependencies and
 * /etc/berth-modules, the list the agent loads in order before anything
 * else. The kernel unpacks concatenated archives one after the other.
 */
#ifndef BERTH_HYPERV_KERNEL_H
#define BERTH_HYPERV_KERNEL_H

#include <limits.h>

#include <berth/types.h>

/* The list of modules (guest paths, one per line, in load order) in the second archive. */
#define HV_MODULES_LIST "/etc/berth-modules"

typedef struct hv_kernel {
    char path[PATH_MAX]; /* the kernel image */
    char release[128];   /* its `uname -r` (the directory under the modules dir) */
} hv_kernel_t;

/*
 * The newest distribution kernel: @boot_dir/vmlinuz-R whose modules are
 * installed (@modules_dir/R/modules.dep exists), by version order of R.
 * -ENOENT with a message naming the package to install when there is none.
 */
int hv_kernel_find_distro(const char *boot_dir, const char *modules_dir, hv_kernel_t *ret,
                          berth_err_t *err);

/*
 * The initramfs to boot distribution kernel @k with: @agent_initrd (an
 * uncompressed newc archive) followed by an archive of the modules the
 * guest needs (virtio-mmio, console, 9p, overlay, net, blk) with every
 * module they depend on (from @modules_dir/R/modules.dep), and
 * HV_MODULES_LIST. Made at @cache_dir/initrd-R.cpio and reused while it is
 * newer than the agent's initramfs and modules.dep; made under a temporary
 * name and renamed, so concurrent callers never see half a file. The path
 * goes to @ret_path.
 */
int hv_kernel_distro_initrd(const hv_kernel_t *k, const char *modules_dir, const char *agent_initrd,
                            const char *cache_dir, char *ret_path, size_t size, berth_err_t *err);

/*
 * The host's TSC frequency in kHz, measured against CLOCK_MONOTONIC over
 * about 10 ms; 0 where there is no TSC to read (not x86). Under TCG the
 * guest's TSC is the host's, and a distribution kernel on microvm has
 * nothing to calibrate it against that works on a loaded host (its PIT
 * calibration fails and there is no HPET or ACPI PM timer): without
 * `tsc_early_khz=` it waits for timer ticks that never come.
 */
unsigned long hv_host_tsc_khz(void);

#endif /* BERTH_HYPERV_KERNEL_H */
