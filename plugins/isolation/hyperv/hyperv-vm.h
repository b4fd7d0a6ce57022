/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One qemu microvm per hyperv sandbox: its command line, its start and its
 * end (issue 7; docs/hyperv.md). The VM boots the guest kernel directly
 * (no firmware) with berth-agent as its init, and reaches the host through
 * two virtio-serial ports, "berth.control" and "berth.stdio"
 * (docs/agent-protocol.md), whose host ends are socketpairs made here and
 * handed to qemu as inherited descriptors: there is no socket file to
 * clean up, and a port's peer is gone exactly when qemu is.
 *
 * qemu is a child of the process that calls hv_vm_start() and dies with it
 * (PR_SET_PDEATHSIG): call it from the thread that lives as long as the VM
 * (berth-shim's main thread), since the signal follows the forking thread.
 * Nothing here is thread-safe; one hv_vm_t belongs to one caller.
 */
#ifndef BERTH_HYPERV_VM_H
#define BERTH_HYPERV_VM_H

#include <stddef.h>
#include <sys/types.h>

#include <berth/types.h>

/* The names the agent finds its ports by (/sys/class/virtio-ports/NAME). */
#define HV_PORT_CONTROL "berth.control"
#define HV_PORT_STDIO   "berth.stdio"
/* The virtio-9p tag a shared root filesystem is mounted from in the guest. */
#define HV_9P_TAG "rootfs"
/* The virtio-9p tag of the directory holding the container's bind mount sources. */
#define HV_9P_BINDS_TAG "binds"

/* What a VM is made of. Borrowed for the call. */
typedef struct hv_vm_spec {
    const char *qemu;   /* qemu-system-x86_64 (a path; NULL: found on $PATH) */
    const char *kernel; /* vmlinux (PVH entry) or bzImage */
    const char *initrd; /* the initramfs with berth-agent as /init; NULL: none */
    const char *append; /* more kernel command line after berth's own; NULL: none */
    const char *accel;  /* "kvm" or "tcg" */
    unsigned vcpus;     /* >= 1 */
    unsigned mem_mib;   /* >= 32 */
    /* At most one root filesystem source: */
    const char *share_dir;   /* a host directory shared by virtio-9p as HV_9P_TAG */
    const char *block_path;  /* a raw image given as a virtio-blk disk */
    const char *tap;         /* a tap device (in the caller's netns) for virtio-net; NULL: none */
    const char *mac;         /* its guest MAC ("02:..."); NULL: qemu's default */
    const char *console_log; /* the serial console and qemu's own stderr go here (appended) */
    /*
     * A host directory shared by virtio-9p as HV_9P_BINDS_TAG; NULL: none.
     * Its entries may be mount points of different filesystems (the
     * container's bind mounts): qemu remaps their inode numbers so that
     * two files never look alike to the guest.
     */
    const char *binds_dir;
    /*
     * 1: describe the devices in ACPI tables instead of on the kernel
     * command line (a distribution kernel finds virtio-mmio devices only
     * there; hyperv-kernel.h); 0: berth's own kernel, which has no ACPI.
     */
    int acpi;
    /*
     * A QMP monitor (pause/resume: `stop`, `cont`) on a third socketpair:
     * for hv_vm_argv(), the child's fd of its socket (> 2; 0: no monitor);
     * hv_vm_start() makes the socket itself when this is nonzero and puts
     * its host end in hv_vm_t.qmp_fd.
     */
    int qmp_fd;
    /*
     * An open tap device for virtio-net, handed to qemu (-netdev tap,fd=N)
     * and still the caller's to close; > 0 to use it, which takes
     * precedence over @tap. The tap may live in any network namespace (its
     * fd carries it), so qemu itself stays in the caller's.
     */
    int tap_fd;
    /*
     * Restore the VM from this file instead of booting it: a qemu migration
     * stream saved (QMP migrate) from a running VM whose hv_vm_shape_key() was
     * the same. NULL: boot. The path may not hold a single quote (qemu reads
     * it through `cat` in a shell).
     */
    const char *incoming;
} hv_vm_spec_t;

/* A running VM. */
typedef struct hv_vm {
    pid_t pid;
    int pidfd;      /* readable when qemu has exited (poll it); -1 when not started */
    int control_fd; /* the host end of "berth.control": a stream socket */
    int stdio_fd;   /* the host end of "berth.stdio" */
    int qmp_fd;     /* the host end of the QMP monitor (spec's qmp_fd nonzero), else -1 */
} hv_vm_t;

/*
 * Find the program @name: a path with a slash as it is, else the first
 * executable @name in @dirs (a colon list searched first, for programs
 * Debian keeps in sbin, which the shim's $PATH may lack; NULL: none) or in
 * $PATH (/usr/local/bin:/usr/bin:/bin without one). 1 with its path in
 * @buf, 0 when there is none. The drivers' one lookup: qemu, tc.
 */
int hv_find_program(const char *name, const char *dirs, char *buf, size_t len);

/*
 * qemu's argv for @spec, with the ports' sockets at @control_fd and
 * @stdio_fd in the child, as a NULL-terminated array (free with
 * hv_vm_argv_free()). Values that qemu parses as option lists have their
 * commas doubled, so any path works. -EINVAL names what is wrong with @spec.
 */
int hv_vm_argv(const hv_vm_spec_t *spec, int control_fd, int stdio_fd, char ***ret_argv,
               berth_err_t *err);
void hv_vm_argv_free(char **argv);

/*
 * Start the VM: the socketpairs, then qemu, which the caller then owns in
 * @vm (all fds close-on-exec; the QMP socket is the child's fd 5). Returns once qemu runs, not once the guest
 * has booted: the agent's hello on control_fd says that. On failure
 * nothing is left (no process, no fd) and err says why.
 */
int hv_vm_start(const hv_vm_spec_t *spec, hv_vm_t *vm, berth_err_t *err);

/*
 * The identity of the VM @spec describes, for keeping snapshots of it: 32
 * hex digits in @out. Two specs get the same key when qemu would be given
 * the same machine: the command line hv_vm_argv() builds with the per-VM
 * paths (shared directories) left out, and the qemu binary, kernel and
 * initramfs files by device, inode, size and modification time (a rebuilt
 * kernel is another machine). A NIC or a disk make a VM of its own (their
 * addresses and sizes live in the device state): -EINVAL for those.
 */
int hv_vm_shape_key(const hv_vm_spec_t *spec, char out[33], berth_err_t *err);

/*
 * Whether qemu has exited, without waiting: 1 and its wait status in
 * *ret_status (may be NULL) when it has (it is reaped then), 0 while it
 * runs, negative errno on error.
 */
int hv_vm_exited(hv_vm_t *vm, int *ret_status);

/*
 * End the VM: wait up to @grace_ms for qemu to exit by itself (the guest
 * was told to shut down), then SIGKILL it; reap it and close every fd of
 * @vm. Safe on a VM that has exited or was never started. Returns qemu's
 * wait status, or -1 when there was no process.
 */
int hv_vm_stop(hv_vm_t *vm, int grace_ms);

#endif /* BERTH_HYPERV_VM_H */
