/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the process isolation driver shared by its files.
 *
 * The OCI spec is parsed in the caller (process-spec.c) into plain structs
 * before any fork, so that the child only reads memory and makes system
 * calls: the caller may be multithreaded (the shim runs a libuv loop), and
 * a forked child of a threaded process should not depend on locks another
 * thread may have held at fork time. process-init.c is the code that runs in
 * the child, from the clone until execve.
 */
#ifndef BERTH_PROCESS_INTERNAL_H
#define BERTH_PROCESS_INTERNAL_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <jansson.h>
#include <linux/filter.h>

#include <berth/sdk.h>

/* One rlimit from process.rlimits. */
struct process_rlimit {
    int resource;
    rlim_t soft, hard;
};

/* An OCI "process" object, parsed. Strings and arrays are owned by the struct. */
struct process_proc {
    char **args;    /* NULL-terminated */
    char **env;     /* NULL-terminated */
    char *cwd;      /* absolute, inside the container */
    char *username; /* "name" or "name:group" (berth extension), or NULL */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t n_groups;
    int terminal;
    int has_caps; /* process.capabilities present: otherwise capabilities are left alone */
    uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
    struct process_rlimit *rlimits;
    size_t n_rlimits;
    int no_new_privs;
    int has_oom_score_adj;
    int oom_score_adj;
};

/* One entry of mounts[]. */
struct process_mount {
    char *destination;
    char *type;
    char *source;
    char *data; /* filesystem-specific options, comma-separated, or NULL */
    unsigned long flags;
    unsigned long propagation; /* MS_PRIVATE, MS_SLAVE, ... or 0 */
    int bind;                  /* bind or rbind */
    int readonly_bind;         /* bind that needs a read-only remount */
};

/* One key=value for linux.sysctl. */
struct process_sysctl {
    char *key, *value;
};

/* The parts of a container's config.json the driver acts on. */
struct process_cfg {
    struct process_proc proc;
    char *root_path;
    int root_readonly;
    char *hostname;
    struct process_mount *mounts;
    size_t n_mounts;
    char **masked;
    size_t n_masked;
    char **readonly;
    size_t n_readonly;
    struct process_sysctl *sysctl;
    size_t n_sysctl;
    char *cgroups_path;      /* linux.cgroupsPath, or NULL */
    json_t *resources;       /* linux.resources (new reference) or NULL */
    int net_listed;          /* linux.namespaces has "network" */
    char *net_path;          /* ... and its path */
    int userns;              /* linux.uidMappings present */
    char *uid_map, *gid_map; /* "inside outside count\n" lines */
    unsigned long root_propagation;
    struct sock_fprog seccomp; /* compiled linux.seccomp; filter NULL when none */
};

/* process-spec.c */
int process_proc_parse(json_t *obj, struct process_proc *proc, berth_err_t *err);
void process_proc_clear(struct process_proc *proc);
int process_cfg_parse(const char *json, struct process_cfg *cfg, berth_err_t *err);
void process_cfg_clear(struct process_cfg *cfg);
/* Compile an OCI linux.seccomp object into a BPF program (caller frees prog->filter). */
int process_seccomp_compile(json_t *seccomp, struct sock_fprog *prog, berth_err_t *err);
/* Where compiled filters are cached (the driver's state dir); NULL turns caching off. */
void process_seccomp_set_cache_dir(const char *dir);
/*
 * A filter compiled elsewhere, for the containers created until it is
 * cleared: process_cfg_parse() takes a copy of it as the container's
 * compiled filter, whether the spec has a linux.seccomp or not, and
 * compiles no profile. For berth-agent, whose host compiled the
 * container's profile and sent the filter instead (docs/agent-protocol.md,
 * create's "seccomp"); never set in a shim. The agent sets it just before
 * its container_create and clears it right after: the driver is
 * single-threaded there. @filter is copied; @len instructions, 1 to
 * BPF_MAXINSNS. process_seccomp_preset() returns 0, -EINVAL or -ENOMEM.
 */
int process_seccomp_preset(const struct sock_filter *filter, size_t len);
int process_seccomp_preset_set(void); /* 1 while a filter is set */
void process_seccomp_preset_clear(void);

/*
 * Steps of container_create and container_start as they happen, for
 * berth-agent's trace of a create (docs/agent-protocol.md, "trace"):
 * called with a static step name when set, NULL (the default) otherwise.
 * Only the caller's side: the child's setup (mounts, pivot_root) is one
 * step, "child-ready".
 */
extern void (*process_trace_hook)(const char *step);
#define PROCESS_TRACE(step)                                                                        \
    do {                                                                                           \
        if (process_trace_hook)                                                                    \
            process_trace_hook(step);                                                              \
    } while (0)

/* Messages on the sync socket between the caller and the child. */
#define PROCESS_MSG_GO    1 /* caller -> child: carry on */
#define PROCESS_MSG_READY 2 /* child -> caller: set up, waiting to exec (may carry a tty fd) */
#define PROCESS_MSG_ERROR 3 /* child -> caller: failed; code and text follow */
#define PROCESS_MSG_PID   4 /* exec helper -> caller: the pid of the process it started */

struct process_msg {
    int32_t type;
    int32_t code; /* negative errno with ERROR, pid with PID */
    char text[BERTH_ERR_MSG_MAX];
};

/* What the child needs besides the parsed config. */
struct process_child_args {
    const struct process_cfg *cfg;   /* container config (mounts, seccomp), NULL-free */
    const struct process_proc *proc; /* what to run */
    const char *rootfs_dir;          /* <state_dir>/rootfs */
    const berth_mount_list_t *rootfs;
    int sync_fd;      /* the child's end of the sync socket */
    int netns_fd;     /* netns to join, or -1 */
    int joined_netns; /* the container uses a netns it didn't create */
    int stdio[3];     /* fds for 0,1,2 or -1 */
    int tty;          /* allocate a terminal */
    uint16_t cols, rows;
    int is_exec;  /* joined an existing container: no rootfs setup */
    int enter_fd; /* exec: pidfd of the container's init to setns into */
    int enter_userns;
    int no_openat2; /* resolve mount targets by walking (BERTH_PROCESS_NO_OPENAT2=1, tests) */
    /* init: join these v1 cgroups itself before anything else (pcg_enter_self_v1), or NULL */
    const struct pcg *join_v1;
};

/* process-init.c: never return; exit the child with status 1 after reporting errors. */
_Noreturn void process_child_init(const struct process_child_args *a);
_Noreturn void process_child_exec_helper(const struct process_child_args *a);

/* Send a message (with an optional fd) on the sync socket. */
int process_msg_send(int fd, const struct process_msg *m, int pass_fd);
/* Receive one; *ret_fd gets a passed fd or -1. 0 on EOF (returns 0 and type 0). */
int process_msg_recv(int fd, struct process_msg *m, int *ret_fd);

#endif /* BERTH_PROCESS_INTERNAL_H */
