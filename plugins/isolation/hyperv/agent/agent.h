/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-agent's internal structures, shared by its files: the event loop and
 * the op handlers (berth-agent.c), the guest setup as PID 1 (agent-guest.c).
 */
#ifndef BERTH_AGENT_H
#define BERTH_AGENT_H

#include <limits.h>
#include <stdint.h>

#include <berth/sdk.h>

#include "agent-proto.h"

/* A byte stream from a process to the host (stdout, stderr, a terminal's output). */
struct out_stream {
    struct out_stream *next;
    uint32_t sid;
    int fd;      /* read end; -1 once EOF was queued */
    int discard; /* nobody listens (a terminal without stdout): read and drop, no frames */
    agent_credit_t credit;
};

/* A byte stream from the host to a process (stdin, a terminal's input). */
struct in_stream {
    struct in_stream *next;
    uint32_t sid;
    int fd; /* write end; -1 once closed */
    uint8_t *buf;
    size_t len; /* bytes received, not yet written: ≤ AGENT_STDIO_WINDOW by the credit rule */
    int eof;    /* the host sent EOF: close fd once buf is written */
};

struct ctr;

/* A container's init or an exec'd process. */
struct proc {
    struct proc *next; /* in the container's exec list */
    struct ctr *ctr;
    char *exec_id; /* NULL for the init */
    void *h;       /* the driver's process handle */
    int wait_fd;   /* borrowed from the driver: readable when it ended */
    pid_t pid;
    int exited;
    int waited;        /* a wait was answered: an exec is forgotten once its output ended too */
    int64_t exited_ms; /* monotonic, when the exit was seen */
    berth_exit_status_t st;
    json_int_t *waits; /* ids of wait requests to answer at exit */
    size_t n_waits;
    struct out_stream *out[2]; /* stdout, stderr: borrowed from the global list */
    struct in_stream *in;
    int tty_master; /* the terminal's master, kept for the driver's resize; -1 without */
};

struct ctr {
    struct ctr *next;
    char *id;
    char state_dir[PATH_MAX];
    char mnt_dir[PATH_MAX]; /* where a 9p or block rootfs is mounted, "" for a path */
    void *h;
    int started;
    struct proc init;
    struct proc *execs;
    char binds_dir[PATH_MAX]; /* where the share of bind mount sources is mounted, "" for none */
};

/* agent-guest.c: as PID 1 in a VM. */
/* Mount /proc, /sys, /dev, /tmp, /run, cgroup2; returns 0 or -errno (logged). */
int agent_guest_setup(void);
/* Find the virtio-serial port named @name; opens it read-write into *ret_fd. */
int agent_guest_open_port(const char *name, int *ret_fd);
/*
 * The same, waiting up to @timeout_ms for the port to appear: the host
 * adds ports through the device's control queue once its driver is up,
 * which can be after init starts (seen under TCG). -ENOENT after the wait.
 */
int agent_guest_wait_port(const char *name, int timeout_ms, int *ret_fd);
/* How long PID 1 waits for each port. */
#define PORT_WAIT_MS 10000
/* Mount a 9p tag or a block device at @dir (created). */
int agent_guest_mount_rootfs(json_t *desc, const char *dir, char *why, size_t why_size);
/*
 * Configure the guest's network from create's "network" member
 * (docs/agent-protocol.md): each interface found by its MAC gets its MTU
 * and IPv4 addresses and goes up, then the routes are added. Returns 0, or
 * -errno with @why filled.
 */
int agent_guest_net_config(json_t *net, char *why, size_t why_size);
/* Reap children that are none of ours (orphans reparented to PID 1). */
void agent_guest_reap_orphans(const struct ctr *ctrs);

void agent_log(const char *fmt, ...) BERTH_PRINTF(1, 2);

#endif /* BERTH_AGENT_H */
