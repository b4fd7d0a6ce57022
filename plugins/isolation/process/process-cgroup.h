/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup management for the process isolation driver, on cgroup v1, v2 and
 * hybrid hosts (v1 controllers under /sys/fs/cgroup/<controller> with an
 * empty v2 tree at /sys/fs/cgroup/unified, as on berth's build machines).
 *
 * A container's cgroup is named by a relative path ("berth/<id>"; no empty,
 * "." or ".." components). The name resolves from the root of each hierarchy
 * (/sys/fs/cgroup/memory/berth/<id>, /sys/fs/cgroup/berth/<id> on v2), not
 * from the caller's own cgroup, so every process finds the same cgroup for
 * the same name. On v1 it
 * is created in every mounted controller hierarchy berth uses (cpu, cpuacct,
 * memory, pids, freezer, devices, blkio, cpuset where present); on v2 in the
 * unified tree, enabling the controllers it needs in each ancestor's
 * cgroup.subtree_control. On hybrid hosts, v1 controllers do the limiting
 * and the v2 tree (when mounted) also gets the cgroup so that tools that
 * look there find the processes; failures in that tree are ignored and show
 * as "unified": false in pcg_stats().
 *
 * The layout is detected once per process (pcg_host_mode()); functions are
 * safe to call from several threads on different handles.
 *
 * Resources come as the OCI runtime spec's linux.resources object (memory
 * limit/swap, cpu quota/period/shares, pids limit), so the driver hands the
 * spec's section over unchanged. Unknown members are ignored.
 *
 * All functions return 0 or a negative errno with a one-line reason in err.
 */
#ifndef BERTH_PROCESS_CGROUP_H
#define BERTH_PROCESS_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include <berth/types.h>

typedef struct pcg pcg_t;

/* The host's layout: "v1", "v2", "hybrid" (see core's hostinfo), detected once. */
const char *pcg_host_mode(void);

/*
 * Create the cgroup @name (relative, e.g. "berth/<64 hex>") and apply
 * @resources (OCI linux.resources, may be NULL). -EEXIST when it already
 * exists and holds processes. A memory limit sets memory.limit_in_bytes and
 * memory.memsw.limit_in_bytes (v1, when swap accounting exists) or
 * memory.max and memory.swap.max (v2); memory.swap "-1" means unlimited
 * swap; swap == limit means no swap. cpu quota/period go to cpu.cfs_* (v1)
 * or cpu.max (v2); shares to cpu.shares (v1) or cpu.weight (v2, converted);
 * pids limit to pids.max; cpu.cpus/mems to cpuset.cpus/mems.
 *
 * OCI's "not set" values are skipped: shares, quota, period or pids limit 0,
 * memory limit -1. -EINVAL (before anything is created) when a member is not
 * an integer, swap is below the limit, or swap is set without a limit.
 * Without swap accounting (no memory.memsw.* / memory.swap.max), swap -1 or
 * swap == limit are accepted (nothing beyond the memory limit is asked) and
 * any other swap value fails with -EOPNOTSUPP, since it cannot be enforced.
 * A limit whose controller is absent fails with -EOPNOTSUPP (v1) or the
 * write's error (v2). On any failure every directory this call created is
 * removed again; a pre-existing, empty leaf is reused and left in place.
 */
int pcg_create(const char *name, json_t *resources, pcg_t **ret_cg, berth_err_t *err);

/*
 * Open an existing cgroup @name (another process created it), in the
 * hierarchies where it exists. -ENOENT when it is in none of them.
 */
int pcg_open(const char *name, pcg_t **ret_cg, berth_err_t *err);

/*
 * Move @pid into the cgroup in every hierarchy. The first migration of a
 * burst can take 10-20 ms on v1 (the kernel waits for an RCU grace period);
 * callers that care overlap it with other start-up work.
 */
int pcg_enter(pcg_t *cg, pid_t pid, berth_err_t *err);

/* Only the v2 part of pcg_enter (nothing without a v2 directory). */
int pcg_enter_v2(pcg_t *cg, pid_t pid, berth_err_t *err);

/*
 * Join @cg's v1 cgroups from inside the process being placed, which must
 * have one thread: 0 written to each hierarchy's tasks file moves the
 * calling thread, and the kernel moves a thread that names itself without
 * taking its global threadgroup lock, whose first writer in a while waits
 * for an RCU grace period (4-15 ms here). Moving another process (pcg_enter)
 * always takes that lock. Only open/write/close: safe in a child right
 * after clone. Returns 0 or -errno with *ret_dir the cgroup that refused.
 * Needs root in the host's user namespace (tasks files belong to it).
 */
int pcg_enter_self_v1(const pcg_t *cg, const char **ret_dir);

/*
 * An O_PATH descriptor of @cg's v2 directory, for clone3's
 * CLONE_INTO_CGROUP (which puts the child there without the lock either),
 * or -errno; -ENOENT when @cg has no v2 directory.
 */
int pcg_v2_fd(const pcg_t *cg);

/*
 * Freeze / thaw every process (v1 freezer.state when the freezer hierarchy is
 * mounted, else v2 cgroup.freeze). Freezing waits until the kernel reports
 * the cgroup frozen, at most 2 s, then thaws again and returns -ETIMEDOUT.
 */
int pcg_freeze(pcg_t *cg, berth_err_t *err);
int pcg_thaw(pcg_t *cg, berth_err_t *err);

/*
 * Whether the OOM killer killed a process in this cgroup since creation
 * (v2 memory.events oom_kill, v1 memory.oom_control oom_kill). Kernels older
 * than 4.13 have no v1 kill counter: then a kill is reported when an OOM is
 * under way or memory.failcnt > 0, which over-reports when reclaim succeeded.
 * -EOPNOTSUPP without a memory controller.
 */
int pcg_oom_killed(pcg_t *cg, int *ret_killed, berth_err_t *err);

/* Number of processes in the cgroup. */
int pcg_count_procs(pcg_t *cg, uint64_t *ret_n, berth_err_t *err);

/*
 * Send @sig to every process in the cgroup. For SIGKILL, retried until the
 * cgroup is empty (at most 3 s, else -EBUSY): v2 writes cgroup.kill; v1
 * freezes while listing and signalling (no fork escapes), then thaws so the
 * kills land, which also empties a cgroup left frozen (it ends thawed).
 * Other signals go out once; a frozen cgroup gets them when thawed.
 */
int pcg_kill_all(pcg_t *cg, int sig, berth_err_t *err);

/*
 * Usage as JSON (new reference): {"memory": {"usage", "limit", "max_usage"},
 * "cpu": {"usage_ns"}, "pids": {"current", "limit"}} with what the host has
 * (a member or section whose file is absent is left out; max_usage needs
 * memory.peak, Linux 5.19, on v2). Limits are -1 when unlimited. Also
 * "mode" (pcg_host_mode()) and, on hybrid hosts, "unified": whether the
 * cgroup exists in the v2 tree.
 */
int pcg_stats(pcg_t *cg, json_t **ret_stats, berth_err_t *err);

/*
 * Remove the cgroup from every hierarchy. Processes still inside are killed
 * first (SIGKILL) and waited for (bounded, a few seconds); -EBUSY if they
 * don't go. Parents named in @name ("berth") are removed too when empty; a
 * parent holding other cgroups stays. Frees @cg, also on failure.
 */
int pcg_destroy(pcg_t *cg, berth_err_t *err);

/* Free the handle without touching the cgroup. NULL allowed. */
void pcg_free(pcg_t *cg);

#endif /* BERTH_PROCESS_CGROUP_H */
