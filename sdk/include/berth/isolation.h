/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/isolation.h
 * @brief Isolation drivers: build sandboxes and run containers and processes in them.
 *
 * The model follows the Host Compute Service, Kata and LCOW: a *sandbox* is the
 * isolation boundary (a set of namespaces, or a VM with its own kernel); a
 * *container* is a root filesystem plus an init process inside a sandbox;
 * *processes* are the container's init and anything exec'd into it.
 * `process` isolation has one container per sandbox; `lcow` puts several
 * containers in one utility VM (BERTH_ISOLATION_CAP_MULTI_CONTAINER).
 *
 * What runs is described by an OCI runtime spec (config.json text), so the
 * same driver serves berth's own engine and berth as an OCI runtime. Driver
 * state for a sandbox or container lives in the `state_dir` the core gives
 * it, so that another process (a restarted shim, `berth` invoked as an OCI
 * runtime) can reopen it with sandbox_open/container_open. A state_dir is
 * under the runroot (a tmpfs, normally /run/berth): it lasts until the host
 * reboots, so it never needs fsync (what it describes ends with the boot).
 *
 * Handles: `void *` sandbox, container and process handles are the driver's;
 * they stay valid until the matching destroy/delete/release op returns.
 * Every op takes `priv`, the state init stored, first; a `flags` argument
 * that must be 0 unless a flag is documented; and an optional `err` last.
 */
#ifndef BERTH_ISOLATION_H
#define BERTH_ISOLATION_H

#include <berth/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Capability bits (berth_plugin_desc_t.capabilities, probe's ret_caps). */
#define BERTH_ISOLATION_CAP_VM              (1ull << 0)  /**< containers get their own kernel */
#define BERTH_ISOLATION_CAP_MULTI_CONTAINER (1ull << 1)  /**< several containers per sandbox */
#define BERTH_ISOLATION_CAP_EXEC            (1ull << 2)  /**< exec */
#define BERTH_ISOLATION_CAP_TTY             (1ull << 3)  /**< terminals and resize */
#define BERTH_ISOLATION_CAP_PAUSE           (1ull << 4)  /**< pause/resume */
#define BERTH_ISOLATION_CAP_STATS           (1ull << 5)  /**< stats */
#define BERTH_ISOLATION_CAP_USERNS          (1ull << 6)  /**< user namespace remapping */
#define BERTH_ISOLATION_CAP_NET_NETNS       (1ull << 7)  /**< attaches to networks by netns */
#define BERTH_ISOLATION_CAP_NET_TAP         (1ull << 8)  /**< attaches to networks by tap device */
#define BERTH_ISOLATION_CAP_LINUX           (1ull << 9)  /**< runs Linux containers */
#define BERTH_ISOLATION_CAP_WINDOWS         (1ull << 10) /**< runs Windows containers */

/** What a sandbox is built from. Borrowed for the call. */
typedef struct berth_sandbox_spec {
    uint32_t struct_size;
    uint32_t flags;
    const char *id; /**< 64 hex chars */
    /** Exists, private to this sandbox; the core removes it after destroy. */
    const char *state_dir;
    /**
     * Sandbox settings as a JSON object text: "hostname", "resources" (OCI
     * linux.resources form; a VM driver sizes memory and vCPUs from it),
     * "network" ("none", "host", or "netns"), "annotations". Unknown keys are
     * ignored, so the object can grow without an ABI change.
     */
    const char *config_json;
} berth_sandbox_spec_t;

/** How a network driver reaches a sandbox. Caller-allocated, filled by the driver. */
#define BERTH_NET_ATTACH_NONE  0u /**< no network (or the host's): nothing to attach */
#define BERTH_NET_ATTACH_NETNS 1u /**< path is a network namespace file */
#define BERTH_NET_ATTACH_TAP   2u /**< path is a tap device's name inside the netns below */
typedef struct berth_net_attach {
    uint32_t struct_size; /**< set by the caller */
    uint32_t type;        /**< BERTH_NET_ATTACH_* */
    char path[256];       /**< see type; NUL-terminated */
    char netns[256];      /**< for TAP: the netns the tap lives in, "" for the host's */
} berth_net_attach_t;

/** Standard streams of a process. Caller-allocated. */
#define BERTH_STDIO_F_TTY 0x1u /**< allocate a terminal; in/out/err are ignored */
typedef struct berth_stdio {
    uint32_t struct_size;
    uint32_t flags; /**< BERTH_STDIO_F_* */
    /** Handles the driver duplicates for the process; the caller keeps (and closes) its own. */
    berth_handle_t in, out, err;
    /** Out, with BERTH_STDIO_F_TTY: the terminal's master side, owned by the caller afterwards. */
    berth_handle_t tty_master;
    uint16_t tty_cols, tty_rows; /**< initial window size with a terminal */
    uint32_t reserved;
} berth_stdio_t;

/** A container to create inside a sandbox. Borrowed for the call. */
typedef struct berth_container_spec {
    uint32_t struct_size;
    uint32_t flags;
    const char *id; /**< 64 hex chars */
    /** Exists, private to this container; the core removes it after delete. */
    const char *state_dir;
    /** OCI runtime spec (config.json) text: process, mounts, hostname, linux.* sections. */
    const char *oci_spec_json;
    /** The root filesystem as the storage driver described it; borrowed for the call. */
    const berth_mount_list_t *rootfs;
    /** Streams of the init process; filled by the driver for the terminal case. */
    berth_stdio_t *stdio;
} berth_container_spec_t;

/** A process to exec in a running container. Borrowed for the call. */
typedef struct berth_process_spec {
    uint32_t struct_size;
    uint32_t flags;
    const char *id; /**< exec id, unique within the container */
    /** An OCI "process" object as JSON text (args, env, cwd, user, terminal, capabilities). */
    const char *process_json;
    berth_stdio_t *stdio;
} berth_process_spec_t;

/** How a process ended. Caller-allocated. */
#define BERTH_EXIT_F_OOM_KILLED 0x1u /**< the kernel's OOM killer ended it */
typedef struct berth_exit_status {
    uint32_t struct_size;
    uint32_t flags;      /**< BERTH_EXIT_F_* */
    int32_t exit_code;   /**< 0-255, or 128 + signal when killed (the shell's convention) */
    int32_t signal;      /**< the killing signal, 0 when it exited */
    int64_t finished_ns; /**< wall clock, ns since the epoch */
    /* ABI 1.2 */
    /**
     * Why the process ended when it was not its own doing nor a signal sent
     * through the driver (the sandbox failed: a VM that died, a guest kernel
     * panic, an agent that stopped answering): one line for users, without
     * the container's own words. "" when there is nothing to say. The core
     * records it as the container's error and writes it to its log. A
     * driver writes it only when struct_size covers it; the caller zeroes it.
     */
    char error[BERTH_ERR_MSG_MAX];
} berth_exit_status_t;

/** Flags for wait. */
#define BERTH_WAIT_NOHANG 0x1u /**< return -EAGAIN at once when the process still runs */
/** Flags for delete/destroy. */
#define BERTH_DELETE_FORCE 0x1u /**< kill whatever still runs first */

/**
 * The isolation ops table. Slots marked "required" must be non-NULL in a
 * 1.0 driver; optional ones may be NULL (the core reports -ENOTSUP).
 */
typedef struct berth_isolation_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* ABI 1.0 */

    /**
     * Whether this host can run the driver (a VM driver checks its hypervisor,
     * a process driver its kernel features). Optional.
     * @param[out] ret_caps the usable capability bits (may narrow the static ones).
     * @return 0 usable, BERTH_DECLINED not usable here (reason in err), or -errno.
     */
    int (*probe)(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err);

    /** Build a sandbox (required). *ret_sandbox is set only on success. */
    int (*sandbox_create)(void *priv, const berth_sandbox_spec_t *spec, uint32_t flags,
                          void **ret_sandbox, berth_err_t *err);
    /** Reopen a sandbox created earlier, possibly by another process, from its state_dir (optional). */
    int (*sandbox_open)(void *priv, const berth_sandbox_spec_t *spec, uint32_t flags,
                        void **ret_sandbox, berth_err_t *err);
    /** Where network drivers attach this sandbox (required). */
    int (*sandbox_network)(void *priv, void *sandbox, uint32_t flags,
                           berth_net_attach_t *ret_attach, berth_err_t *err);
    /**
     * Tear the sandbox down (BERTH_DELETE_FORCE: kill what still runs) and
     * free the handle, also on failure (required).
     */
    int (*sandbox_destroy)(void *priv, void *sandbox, uint32_t flags, berth_err_t *err);
    /** Drop a sandbox handle without touching the sandbox (required). */
    void (*sandbox_release)(void *priv, void *sandbox);

    /** Create a container and its init process, not yet running (required). */
    int (*container_create)(void *priv, void *sandbox, const berth_container_spec_t *spec,
                            uint32_t flags, void **ret_container, berth_err_t *err);
    /** Reopen a container from its state_dir (optional; spec->oci_spec_json may be NULL). */
    int (*container_open)(void *priv, void *sandbox, const berth_container_spec_t *spec,
                          uint32_t flags, void **ret_container, berth_err_t *err);
    /** Start the init process (required). */
    int (*container_start)(void *priv, void *container, uint32_t flags, berth_err_t *err);
    /** Freeze / thaw every process of the container (optional, BERTH_ISOLATION_CAP_PAUSE). */
    int (*container_pause)(void *priv, void *container, uint32_t flags, berth_err_t *err);
    int (*container_resume)(void *priv, void *container, uint32_t flags, berth_err_t *err);
    /**
     * Resource usage as a JSON object text in *ret_stats ("cpu", "memory",
     * "pids", "blkio", "net" as available), owned by the caller (optional).
     */
    int (*container_stats)(void *priv, void *container, uint32_t flags, berth_blob_t **ret_stats,
                           berth_err_t *err);
    /**
     * Remove the container (its init must have exited unless
     * BERTH_DELETE_FORCE) and free the handle, also on failure (required).
     */
    int (*container_delete)(void *priv, void *container, uint32_t flags, berth_err_t *err);
    /** Drop a container handle without touching the container (required). */
    void (*container_release)(void *priv, void *container);
    /** The container's init process as a process handle owned by the container (required). */
    void *(*container_init_process)(void *priv, void *container);

    /** Start another process in a running container (optional, BERTH_ISOLATION_CAP_EXEC). */
    int (*process_exec)(void *priv, void *container, const berth_process_spec_t *spec,
                        uint32_t flags, void **ret_process, berth_err_t *err);
    /** Send a signal (POSIX number; drivers for Windows map SIGTERM/SIGKILL) (required). */
    int (*process_signal)(void *priv, void *process, int32_t signal, uint32_t flags,
                          berth_err_t *err);
    /**
     * Wait for the process to end (blocks unless BERTH_WAIT_NOHANG). Returns 0
     * with *ret_exit filled, -EAGAIN with NOHANG while it runs (required).
     */
    int (*process_wait)(void *priv, void *process, uint32_t flags, berth_exit_status_t *ret_exit,
                        berth_err_t *err);
    /**
     * A handle that becomes readable when the process ends (a pidfd, an
     * eventfd, a Windows process handle), for event loops; owned by the
     * process handle, valid until it is released (optional).
     */
    int (*process_wait_handle)(void *priv, void *process, berth_handle_t *ret_handle,
                               berth_err_t *err);
    /** Change the terminal size (optional, BERTH_ISOLATION_CAP_TTY). */
    int (*process_resize)(void *priv, void *process, uint16_t cols, uint16_t rows, uint32_t flags,
                          berth_err_t *err);
    /** Free an exec'd process handle (not the init's) after it ended or to forget it (optional). */
    void (*process_release)(void *priv, void *process);

    /* ABI 1.2 */

    /**
     * What this driver uses on this host, for `berth info` (optional): a JSON
     * object text in *ret_info, owned by the caller (berth_blob_release).
     * Its keys are the driver's own, with string, number or boolean values
     * (a VM driver: its accelerator and why, its guest kernel). It may take as
     * long as a probe (it may run one), but starts no sandbox that outlives it.
     * @return 0, or -errno with a reason in err.
     */
    int (*info)(void *priv, uint32_t flags, berth_blob_t **ret_info, berth_err_t *err);
} berth_isolation_ops_t;

/** Size of the ABI 1.0 table: the least a loader accepts. */
#define BERTH_ISOLATION_OPS_SIZE_1_0                                                               \
    (offsetof(berth_isolation_ops_t, process_release) + sizeof(void (*)(void)))
/** Size of the ABI 1.2 table (1.1 added nothing here). */
#define BERTH_ISOLATION_OPS_SIZE_1_2                                                               \
    (offsetof(berth_isolation_ops_t, info) + sizeof(void (*)(void)))

#ifdef __cplusplus
}
#endif

#endif /* BERTH_ISOLATION_H */
