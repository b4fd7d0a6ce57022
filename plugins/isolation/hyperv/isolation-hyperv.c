/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hyperv isolation driver: one qemu microvm per sandbox, with
 * berth-agent as the guest's init, driven over the agent protocol
 * (docs/hyperv.md, docs/agent-protocol.md).
 *
 * Threads: the shim's thread calls the ops; one relay thread per sandbox
 * owns the VM's ports. Ops queue a request under the sandbox's mutex, wake
 * the relay (an eventfd) and wait on the condition variable for the reply.
 * The relay reads both ports, copies stdin from the shim's fds to the agent
 * (within the agent's credit) and output from the agent to the shim's fds
 * (granting credit back once written), and completes `wait` replies by
 * signalling the process's eventfd. qemu's QMP monitor (pause/resume) is
 * not the relay's: the ops' thread talks to it directly, under qmp_mu.
 *
 * The VM starts at container_create, not at sandbox_create: qemu's 9p
 * backend opens the shared directory once at start and keeps that fd, so
 * the container's rootfs must already be mounted on it when qemu starts (a
 * mount made later would be hidden behind the fd). One container per
 * sandbox, then, which is all berth-shim creates.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/isolation.h>
#include <berth/plugin.h>
#include <berth/types.h>

#include <seccomp.h>

#include "../../storage/overlay/storage-overlay-mount.h"
#include "../process/process-internal.h"
#include "agent-proto.h"
#include "base64.h"
#include "hyperv-kernel.h"
#include "hyperv-net.h"
#include "hyperv-probe.h"
#include "hyperv-vm.h"

#ifndef HYPERV_DEFAULT_DIR
#define HYPERV_DEFAULT_DIR "/usr/local/lib/berth/hyperv"
#endif

/* The agent's hello under TCG on two shared cores takes 3-4 s; leave room for a loaded host. */
#define HV_BOOT_TIMEOUT_MS 60000
/* Any other request is answered at once by a live agent. */
#define HV_REQ_TIMEOUT_MS 30000
#define HV_STOP_GRACE_MS  5000
#define HV_MEM_DEFAULT    256u
/* berth's own guest kernel, where the build installs it. */
#define HV_KERNEL_DEFAULT HYPERV_DEFAULT_DIR "/vmlinux"
/* qemu answers QMP at once (stop/cont pause and start vCPUs synchronously). */
#define HV_QMP_TIMEOUT_MS 10000
/* An orphaned qemu (its shim was killed) is SIGKILLed already: it only has to finish exiting. */
#define HV_ORPHAN_EXIT_MS 10000
/* What the sandbox keeps in its state_dir for sandbox_open. */
#define HV_STATE_FILE "vm.json"
/* A guest KVM can run says hello well within a second; a loaded host gets some slack. */
#define HV_PROBE_TIMEOUT_MS 5000
/*
 * The heartbeat (docs/hyperv.md, "Faults"): a `ping` every 2 s once the
 * agent said hello. It costs the guest one wakeup and two small frames, so
 * an idle VM stays idle; a silent agent is found within the interval plus
 * the timeout. The agent answers between two ops: measured under TCG on two
 * loaded shared cores, with execs and a guest busy on all its CPUs, every
 * ping came back within 200 ms; the default leaves seconds beyond that for
 * a host that stalls.
 */
#define HV_PING_INTERVAL_MS      2000
#define HV_AGENT_TIMEOUT_DEFAULT 5000
/* After a port closed, how long qemu gets to be seen exiting (its end says more than the port's). */
#define HV_EXIT_SETTLE_MS 2000
/* What of the console log an error quotes: its last lines, each cut short. */
#define HV_CONSOLE_TAIL_BYTES 16384
#define HV_CONSOLE_LINES      4
#define HV_CONSOLE_LINE_MAX   100

struct hv_priv {
    const berth_host_api_t *host;
    berth_host_t *ctx;
    char *kernel, *initrd, *accel, *qemu;
    char *tc; /* "tc" / BERTH_HYPERV_TC; "" to look for iproute2's */
    /* Where accel came from (for `berth info`), and what auto resolved to (accel_resolve). */
    const char *accel_source;
    int accel_resolved;
    char accel_used[8];
    char accel_why[320];
    char *kernel_args;    /* "kernel_args": appended to the guest's command line; NULL: none */
    int agent_timeout_ms; /* "agent_timeout_ms": how long a ping may go unanswered */
    int snapshots;        /* "snapshots": restore VMs from a snapshot taken at hello (vm_boot) */
    char bad_config[256]; /* a bad setting: every sandbox_create fails with it */
};

struct hv_sandbox;

struct hv_proc {
    struct hv_sandbox *sb;
    char exec_id[65]; /* "" for a container's init */
    int evfd;         /* readable once the wait reply (or the VM's end) came */
    int done;         /* under sb->mu */
    berth_exit_status_t st;
};

/* A pending control request. */
struct hv_req {
    json_int_t id;
    json_t *reply; /* set by the relay; NULL on the VM's end */
    int done;
    struct hv_proc *proc; /* a wait: completed by the relay, nobody blocks on it */
    struct hv_req *next;
};

/* One direction of one process's stdio. */
struct hv_stream {
    uint32_t sid;
    int fd;                /* ours (a dup of the shim's), -1 once closed */
    int input;             /* host → agent */
    agent_credit_t credit; /* input: what the agent still takes */
    struct hv_stream *next;
};

struct hv_sandbox {
    struct hv_priv *p;
    char *state_dir, *rootfs_dir, *console;
    unsigned mem_mib, vcpus;
    hv_vm_t vm;
    int started; /* the VM and the relay run */
    int wakefd;  /* eventfd: the relay has something to write or a new stream */
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    agent_writer_t ctl_w, io_w;
    agent_reader_t ctl_r, io_r;
    struct hv_req *reqs;
    struct hv_stream *streams;
    json_int_t next_id;
    uint32_t next_sid;
    int dead;     /* qemu exited or a port closed */
    int stopping; /* the relay must exit */
    char dead_why[256];
    char kernel_release[128];
    struct hv_ctr *ctr;
    char *binds_dir; /* <state_dir>/binds: the container's bind mount sources, shared */
    int share_binds; /* the VM gets binds_dir (the container has bind mounts) */
    /*
     * Pause: the VM's vCPUs stopped and started through QMP (qemu's
     * monitor on vm.qmp_fd), by the ops' thread only, under qmp_mu.
     */
    pthread_mutex_t qmp_mu;
    int qmp_ready;  /* the greeting was read and qmp_capabilities answered */
    int qmp_skip;   /* an overlong line is being dropped */
    size_t qmp_len; /* bytes in qmp_buf */
    char qmp_buf[4096];
    int paused;                 /* under mu: the vCPUs are stopped; the agent can't answer */
    json_t *paused_stats;       /* under mu: the stats read just before the pause */
    struct hv_pending *pending; /* under mu: signals held back while paused */
    /* Reopened by sandbox_open (its shim is gone): the qemu it recorded, if any. */
    int reopened;
    pid_t orphan_pid;
    unsigned long long orphan_start; /* its start time (/proc/PID/stat field 22) */
    char *netns;                     /* <state>/netns when the sandbox is on networks, else NULL */
    hv_net_t net;      /* the tap and the guest's interface config, from container_create */
    int agent_net;     /* the agent listed the "net" cap: it configures the guest's interface */
    int traced_output; /* the first output frame was traced (hv_trace) */
    /* Faults (under mu): */
    char ctr_id[13]; /* the container's short id, for messages */
    int quitting;    /* shutdown was asked for: the VM's end is expected */
    int heartbeat;   /* the agent said hello: pings run */
    /*
     * paused (above), set by pause and cleared by resume under mu, then
     * wake(): while it is set no ping goes out and an unanswered one is
     * forgotten, because a stopped VM answers nothing; after resume the
     * pings start over.
     */
    json_int_t ping_id;               /* the ping in flight */
    int64_t ping_sent_ms, ping_ok_ms; /* CLOCK_MONOTONIC: when it went out (0: none), last answer */
    char dead_msg[BERTH_ERR_MSG_MAX]; /* for users: which VM ended, why, the console's last lines */
    int agent_seccomp;   /* the agent listed "seccomp_bpf": create may carry the compiled filter */
    uint32_t agent_arch; /* its "seccomp_arch": the AUDIT_ARCH_* its filters are for */
    int agent_trace;     /* the agent listed "trace": create and start may ask for their steps */
    int agent_reseed;    /* the agent listed "reseed": it takes the host's entropy and clock */
};

/* A signal to deliver once the VM runs again, as a frozen cgroup holds it. */
struct hv_pending {
    char exec_id[65]; /* "" for the init */
    int sig;
    struct hv_pending *next;
};

struct hv_ctr {
    struct hv_sandbox *sb;
    char id[65];
    int mounted;
    struct hv_proc init;
    unsigned n_binds; /* <binds_dir>/0 .. n_binds-1 are mounted */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * BERTH_HYPERV_TRACE=FILE: each step of a sandbox's life appended to FILE
 * as "<CLOCK_REALTIME ns> <step>", for bench/hyperv-bench.sh to split a
 * run's time (docs/benchmarks.md). Off unless set; any thread may call it
 * (one O_APPEND write per line).
 */
static void hv_trace(const char *step)
{
    const char *path = getenv("BERTH_HYPERV_TRACE");
    int fd;

    if (!path || !*path || (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return;
    dprintf(fd, "%lld %s\n", (long long)now_ns(), step);
    close(fd);
}

/*
 * The steps of an op in the guest (its reply's "trace" member: [step, ns
 * since the request arrived], the last one "reply"), as trace lines
 * "<ns> agent-OP:STEP". The guest's clock is not the host's: each step is
 * placed at the reply's arrival minus its distance to the reply (the time
 * the reply took to come back counts as the guest's last step).
 */
static void hv_trace_agent(const char *op, json_t *reply)
{
    const char *path = getenv("BERTH_HYPERV_TRACE");
    json_t *steps = json_object_get(reply, "trace"), *last, *st;
    int64_t now = now_ns(), end;
    size_t i;
    int fd;

    last = json_array_get(steps, json_array_size(steps) - 1);
    if (!path || !*path || !json_is_integer(json_array_get(last, 1)) ||
        (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return;
    end = (int64_t)json_integer_value(json_array_get(last, 1));
    json_array_foreach (steps, i, st) {
        const char *name = json_string_value(json_array_get(st, 0));
        json_t *ns = json_array_get(st, 1);
        /* One word per step name: the file is "<ns> <step>" lines. */
        if (name && json_is_integer(ns) && !strpbrk(name, " \t\n") && strlen(name) < 64)
            dprintf(fd, "%lld agent-%s:%s\n",
                    (long long)(now - (end - (int64_t)json_integer_value(ns))), op, name);
    }
    close(fd);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hv_log(struct hv_priv *p, uint32_t level, const char *fmt, const char *a, const char *b)
{
    if (p && p->host && p->host->log)
        p->host->log(p->ctx, level, fmt, a, b);
}

static void wake(struct hv_sandbox *sb)
{
    uint64_t one = 1;
    if (write(sb->wakefd, &one, sizeof(one)) < 0) {
        /* The counter is saturated only when the relay is already due to run. */
    }
}

static void proc_complete(struct hv_proc *pr, int code, int sig, int64_t fin)
{
    uint64_t one = 1;
    if (pr->done)
        return;
    pr->st.struct_size = sizeof(pr->st);
    pr->st.exit_code = code;
    pr->st.signal = sig;
    pr->st.finished_ns = fin ? fin : now_ns();
    pr->done = 1;
    if (write(pr->evfd, &one, sizeof(one)) < 0) {
        /* An eventfd write fails only on overflow, which a single write can't reach. */
    }
}

/*
 * The console log's last HV_CONSOLE_LINES non-empty lines, joined by
 * " | ", into @buf (cut to fit); each line cut to HV_CONSOLE_LINE_MAX,
 * control characters and non-ASCII bytes as '?' (a line cut in the middle
 * of a UTF-8 sequence would not be text any more). With @ret_panic (may be NULL): the text after the
 * last "Kernel panic - not syncing: " in the tail, "" when there is none.
 * Returns 1 when the tail shows a kernel panic.
 */
static int console_tail(const char *path, char *buf, size_t len, char *ret_panic, size_t plen)
{
    static const char mark[] = "Kernel panic - not syncing: ";
    char *text, *lines[HV_CONSOLE_LINES], *p, *end;
    int fd, nl = 0, panic = 0;
    off_t size;
    ssize_t got;
    size_t used = 0;

    buf[0] = '\0';
    if (ret_panic)
        ret_panic[0] = '\0';
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    size = lseek(fd, 0, SEEK_END);
    if (size < 0 || !(text = malloc(HV_CONSOLE_TAIL_BYTES + 1))) {
        close(fd);
        return 0;
    }
    got = pread(fd, text, HV_CONSOLE_TAIL_BYTES,
                size > HV_CONSOLE_TAIL_BYTES ? size - HV_CONSOLE_TAIL_BYTES : 0);
    close(fd);
    if (got < 0)
        got = 0;
    text[got] = '\0';
    /* NULs (a torn write) would end the text early: the console has none of its own. */
    for (ssize_t i = 0; i < got; i++)
        if (text[i] == '\0' || text[i] == '\r')
            text[i] = ' ';
    for (p = text; (p = strstr(p, mark)); p += sizeof(mark) - 1) {
        panic = 1;
        if (ret_panic)
            snprintf(ret_panic, plen, "%.*s", (int)strcspn(p + sizeof(mark) - 1, "\n"),
                     p + sizeof(mark) - 1);
    }
    /* The last lines, from the end backwards. */
    end = text + got;
    while (nl < HV_CONSOLE_LINES && end > text) {
        char *start = end;
        while (start > text && start[-1] != '\n')
            start--;
        /* Blanks at either end (a \r became one) are noise in a one-line message. */
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        *end = '\0';
        for (p = start; *p == ' ' || *p == '\t'; p++) {
        }
        if (*p)
            lines[nl++] = p;
        end = start > text ? start - 1 : text;
    }
    for (int i = nl - 1; i >= 0 && used + 1 < len; i--) {
        int n = snprintf(buf + used, len - used, "%s%.*s", used ? " | " : "", HV_CONSOLE_LINE_MAX,
                         lines[i]);
        if (n < 0)
            break;
        used = (size_t)n >= len - used ? len - 1 : used + (size_t)n;
    }
    for (unsigned char *c = (unsigned char *)buf; *c; c++)
        if (*c < 0x20 || *c >= 0x7f)
            *c = '?';
    if (ret_panic) {
        size_t n = strlen(ret_panic);
        while (n > 0 && ret_panic[n - 1] == ' ')
            ret_panic[--n] = '\0';
        for (unsigned char *c = (unsigned char *)ret_panic; *c; c++)
            if (*c < 0x20 || *c >= 0x7f)
                *c = '?';
    }
    free(text);
    return panic;
}

/* A process ended with its VM: as SIGKILL would end it, with the VM's end as its error. */
static void proc_lost(struct hv_sandbox *sb, struct hv_proc *pr)
{
    if (pr->done)
        return;
    snprintf(pr->st.error, sizeof(pr->st.error), "%s", sb->dead_msg);
    proc_complete(pr, 128 + SIGKILL, SIGKILL, 0);
}

/*
 * The VM is gone: every waiter learns it (under mu). Unless it was asked
 * to go (stopping, quitting), @why becomes the users' error, with the
 * console's last lines, and the host's log says it too.
 */
static void mark_dead(struct hv_sandbox *sb, const char *why)
{
    if (!sb->dead) {
        sb->dead = 1;
        snprintf(sb->dead_why, sizeof(sb->dead_why), "%s", why);
        if (!sb->stopping && !sb->quitting) {
            char tail[BERTH_ERR_MSG_MAX / 2];
            console_tail(sb->console, tail, sizeof(tail), NULL, 0);
            snprintf(sb->dead_msg, sizeof(sb->dead_msg), "the VM of container %s ended: %s%s%s",
                     sb->ctr_id[0] ? sb->ctr_id : "(none yet)", why,
                     tail[0] ? "; last console lines: " : "; the console is empty", tail);
            hv_log(sb->p, BERTH_LOG_ERR, "hyperv: %s (console log: %s)", sb->dead_msg, sb->console);
        }
    }
    for (struct hv_req *q = sb->reqs; q; q = q->next) {
        q->done = 1;
        if (q->proc)
            /* Killed with its VM: report it as SIGKILL would be. */
            proc_lost(sb, q->proc);
    }
    for (struct hv_stream *s = sb->streams; s; s = s->next) {
        if (s->fd >= 0) {
            close(s->fd);
            s->fd = -1;
        }
    }
    pthread_cond_broadcast(&sb->cv);
}

static struct hv_stream *stream_find(struct hv_sandbox *sb, uint32_t sid, int input)
{
    for (struct hv_stream *s = sb->streams; s; s = s->next)
        if (s->sid == sid && s->input == input)
            return s;
    return NULL;
}

/* Write all of @len bytes to a possibly non-blocking fd; -errno when the reader is gone. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                poll(&pfd, 1, 1000);
                continue;
            }
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void on_control(struct hv_sandbox *sb, const uint8_t *payload, uint32_t len)
{
    json_t *obj = NULL;
    char why[128];
    json_int_t id;

    if (agent_json_decode(payload, len, &obj, why, sizeof(why)) < 0) {
        hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: bad control frame from the agent: %s%s", why, "");
        return;
    }
    id = json_integer_value(json_object_get(obj, "id"));
    if (sb->ping_sent_ms && id == sb->ping_id) {
        int64_t now = mono_ms();
        if (now - sb->ping_sent_ms > HV_PING_INTERVAL_MS) {
            char ms[32];
            snprintf(ms, sizeof(ms), "%lld", (long long)(now - sb->ping_sent_ms));
            hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: the agent took %s ms to answer a ping%s", ms,
                   "");
        }
        sb->ping_sent_ms = 0;
        sb->ping_ok_ms = now;
        json_decref(obj);
        return;
    }
    for (struct hv_req **pp = &sb->reqs; *pp; pp = &(*pp)->next) {
        struct hv_req *q = *pp;
        if (q->id != id)
            continue;
        if (q->proc) {
            /* A wait: nobody blocks on the request itself, so it goes here. */
            hv_trace(q->proc->exec_id[0] ? "exec-exited" : "exited");
            if (json_is_true(json_object_get(obj, "ok"))) {
                /*
                 * The end is timed here, not by the agent's finished_ns: the
                 * guest's wall clock comes from qemu's RTC, read once at boot
                 * to the second, and drifts from the host's after.
                 */
                proc_complete(q->proc, (int)json_integer_value(json_object_get(obj, "exit_code")),
                              (int)json_integer_value(json_object_get(obj, "signal")), 0);
                if (json_is_true(json_object_get(obj, "oom_killed")))
                    q->proc->st.flags |= BERTH_EXIT_F_OOM_KILLED;
            } else {
                hv_log(sb->p, BERTH_LOG_ERR, "hyperv: wait failed: %s%s",
                       json_string_value(json_object_get(obj, "error")) ?: "?", "");
                proc_complete(q->proc, 128 + SIGKILL, SIGKILL, 0);
            }
            *pp = q->next;
            free(q);
            json_decref(obj);
            pthread_cond_broadcast(&sb->cv);
            return;
        }
        q->reply = obj;
        q->done = 1;
        pthread_cond_broadcast(&sb->cv);
        return;
    }
    json_decref(obj);
}

static void on_stdio(struct hv_sandbox *sb, const uint8_t *payload, uint32_t len)
{
    agent_stdio_frame_t f;
    struct hv_stream *s;

    if (agent_stdio_decode(payload, len, &f) < 0)
        return;
    if (f.type == AGENT_STDIO_CREDIT) {
        if ((s = stream_find(sb, f.stream, 1)))
            agent_credit_grant(&s->credit, f.credit);
        return;
    }
    s = stream_find(sb, f.stream, 0);
    if (!s)
        return;
    if (f.type == AGENT_STDIO_EOF) {
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        return;
    }
    if (!sb->traced_output) {
        sb->traced_output = 1;
        hv_trace("first-output");
    }
    /* Output: written (or dropped when the reader is gone), then granted back. */
    if (s->fd >= 0 && write_all(s->fd, f.data, f.len) < 0) {
        close(s->fd);
        s->fd = -1;
    }
    agent_stdio_put_credit(&sb->io_w, f.stream, f.len);
}

static int drain_port(struct hv_sandbox *sb, int fd, agent_reader_t *r, int control)
{
    long n = agent_reader_fill(r, fd);
    const uint8_t *payload;
    uint32_t len;
    int k;

    if (n == -EAGAIN || n == -EINTR)
        return 0;
    if (n <= 0)
        return -1;
    while ((k = agent_reader_next(r, &payload, &len)) == 1) {
        if (control)
            on_control(sb, payload, len);
        else
            on_stdio(sb, payload, len);
    }
    return k < 0 ? -1 : 0;
}

#define HV_POLL_MAX 64

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/*
 * PIDFD_GET_INFO (Linux 6.15, <linux/pidfd.h>; older headers lack it): with
 * PIDFD_INFO_EXIT, a reaped process's wait status. The first version of
 * the struct (64 bytes), which every kernel with the ioctl takes.
 */
struct hv_pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define HV_PIDFD_GET_INFO  _IOWR(0xFF, 11, struct hv_pidfd_info)
#define HV_PIDFD_INFO_EXIT (1ull << 3)

/*
 * qemu's wait status without reaping it, into *ret_status: 1 when known.
 * berth-shim reaps every child it has as a subreaper, qemu included, and
 * may have done so already; then only the pidfd still knows the status,
 * on kernels that keep it (6.15 on).
 */
static int qemu_status(struct hv_sandbox *sb, int *ret_status)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid((idtype_t)P_PIDFD, (id_t)sb->vm.pidfd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid != 0) {
        *ret_status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) : si.si_status;
        return 1;
    }
    /* The reaper stores the status as it finishes: give one that is at it a moment. */
    for (int i = 0; i < 10; i++) {
        struct hv_pidfd_info info = { .mask = HV_PIDFD_INFO_EXIT };
        if (ioctl(sb->vm.pidfd, HV_PIDFD_GET_INFO, &info) == 0) {
            if (info.mask & HV_PIDFD_INFO_EXIT) {
                *ret_status = info.exit_code;
                return 1;
            }
        } else if (errno != ESRCH) {
            return 0; /* an older kernel: no such ioctl */
        }
        usleep(10000);
    }
    return 0;
}

/*
 * How qemu ended, for users (not under mu: it may wait): a port closing
 * comes a moment before qemu's exit shows on its pidfd, so that is waited
 * for first. A guest kernel panic (panic=-1 and -no-reboot turn it into
 * qemu's exit) is told from the console log. qemu is not reaped here: the
 * status is peeked (WNOWAIT), hv_vm_stop() reaps it.
 */
static void vm_end_reason(struct hv_sandbox *sb, const char *port, char *buf, size_t len)
{
    struct pollfd p = { .fd = sb->vm.pidfd, .events = POLLIN };
    char tail[8], panic[160];
    int r, status;

    do
        r = poll(&p, 1, HV_EXIT_SETTLE_MS);
    while (r < 0 && errno == EINTR);
    if (console_tail(sb->console, tail, sizeof(tail), panic, sizeof(panic))) {
        snprintf(buf, len, "guest kernel panic (%s)", panic);
        return;
    }
    if (r <= 0) {
        /* qemu runs on without the port: the VM is of no use any more; vm_halt() ends it. */
        snprintf(buf, len, "the agent's %s port closed while qemu still ran", port);
        return;
    }
    if (!qemu_status(sb, &status))
        snprintf(buf, len, "qemu exited or was killed (its exit status is unknown)");
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "qemu was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) == 0)
        snprintf(buf, len, "qemu exited: the guest rebooted without being asked to");
    else
        snprintf(buf, len, "qemu exited with status %d", WEXITSTATUS(status));
}

/* The VM's end seen by the relay (under mu, which it drops while it finds out why). */
static void vm_ended(struct hv_sandbox *sb, const char *port)
{
    char why[256];

    if (sb->quitting || sb->stopping) {
        /* Asked for: nobody needs to know why, and teardown should not wait for it. */
        mark_dead(sb, "shut down");
        return;
    }
    pthread_mutex_unlock(&sb->mu);
    vm_end_reason(sb, port, why, sizeof(why));
    pthread_mutex_lock(&sb->mu);
    mark_dead(sb, why);
}

/*
 * The heartbeat's part of a relay round (under mu): send a ping when one is
 * due, end the VM when one went unanswered for the timeout. Returns the
 * poll timeout until the next thing to do, -1 for none.
 */
static int heartbeat_tick(struct hv_sandbox *sb)
{
    int64_t now = mono_ms(), due;
    int timeout = sb->p->agent_timeout_ms;

    if (!sb->heartbeat || sb->dead || sb->stopping || sb->quitting)
        return -1;
    if (sb->paused) {
        /* A stopped VM answers nothing: forget the ping in flight, start over at resume. */
        sb->ping_sent_ms = 0;
        sb->ping_ok_ms = now;
        return -1;
    }
    if (sb->ping_sent_ms) {
        due = sb->ping_sent_ms + timeout;
        if (now < due)
            return (int)(due - now);
        /* An answer may be waiting unread (a host too busy to run this thread): look first. */
        if (drain_port(sb, sb->vm.control_fd, &sb->ctl_r, 1) == 0 && !sb->ping_sent_ms)
            return heartbeat_tick(sb);
        {
            char why[160];
            snprintf(why, sizeof(why),
                     "the agent did not answer a ping within %d ms (the guest hangs or was "
                     "stopped); the VM was killed",
                     timeout);
            /* By the pidfd: the pid may have been reaped and reused meanwhile. */
            if (syscall(SYS_pidfd_send_signal, sb->vm.pidfd, SIGKILL, NULL, 0) < 0 &&
                errno != ESRCH)
                hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: killing qemu: %s%s", strerror(errno), "");
            mark_dead(sb, why);
        }
        return -1;
    }
    due = sb->ping_ok_ms + HV_PING_INTERVAL_MS;
    if (now < due)
        return (int)(due - now);
    {
        json_t *ping = json_pack("{s:s, s:I}", "op", "ping", "id", (json_int_t)sb->next_id);
        if (!ping || agent_json_put(&sb->ctl_w, ping) < 0) {
            /* Out of memory: try again next interval rather than end a healthy VM. */
            json_decref(ping);
            sb->ping_ok_ms = now;
            return HV_PING_INTERVAL_MS;
        }
        json_decref(ping);
    }
    sb->ping_id = sb->next_id++;
    sb->ping_sent_ms = now;
    return timeout;
}

static void *relay(void *arg)
{
    struct hv_sandbox *sb = arg;
    uint8_t buf[AGENT_STDIO_DATA_MAX];

    pthread_mutex_lock(&sb->mu);
    while (!sb->stopping) {
        struct pollfd pfd[HV_POLL_MAX];
        struct hv_stream *in[HV_POLL_MAX];
        nfds_t n = 0;
        int ni, timeout;

        /* Ended streams go (execs come and go: health checks); only this thread frees them. */
        for (struct hv_stream **pp = &sb->streams; *pp;) {
            struct hv_stream *s = *pp;
            if (s->fd < 0) {
                *pp = s->next;
                free(s);
            } else {
                pp = &s->next;
            }
        }
        timeout = heartbeat_tick(sb);
        if (!sb->dead) {
            agent_writer_flush(&sb->ctl_w, sb->vm.control_fd);
            agent_writer_flush(&sb->io_w, sb->vm.stdio_fd);
        }
        pfd[n++] = (struct pollfd){ .fd = sb->wakefd, .events = POLLIN };
        ni = (int)n;
        if (!sb->dead) {
            pfd[n++] = (struct pollfd){ .fd = sb->vm.pidfd, .events = POLLIN };
            pfd[n++] =
                (struct pollfd){ .fd = sb->vm.control_fd,
                                 .events =
                                     POLLIN | (agent_writer_pending(&sb->ctl_w) ? POLLOUT : 0) };
            pfd[n++] = (struct pollfd){ .fd = sb->vm.stdio_fd,
                                        .events = POLLIN |
                                                  (agent_writer_pending(&sb->io_w) ? POLLOUT : 0) };
            ni = (int)n;
            for (struct hv_stream *s = sb->streams; s && n < HV_POLL_MAX; s = s->next) {
                /* Input is read only while the agent has room for it. */
                if (!s->input || s->fd < 0 || !agent_credit_allow(&s->credit, 1))
                    continue;
                in[n] = s;
                pfd[n++] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
            }
        }
        pthread_mutex_unlock(&sb->mu);
        while (poll(pfd, n, timeout) < 0 && errno == EINTR) {
        }
        pthread_mutex_lock(&sb->mu);
        if (pfd[0].revents) {
            uint64_t v;
            if (read(sb->wakefd, &v, sizeof(v)) < 0) {
                /* Non-blocking: nothing to clear. */
            }
        }
        if (sb->dead || sb->stopping)
            continue;
        if (pfd[1].revents) {
            vm_ended(sb, "control");
            continue;
        }
        if ((pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) &&
            drain_port(sb, sb->vm.control_fd, &sb->ctl_r, 1) < 0) {
            vm_ended(sb, "control");
            continue;
        }
        if ((pfd[3].revents & (POLLIN | POLLHUP | POLLERR)) &&
            drain_port(sb, sb->vm.stdio_fd, &sb->io_r, 0) < 0) {
            vm_ended(sb, "stdio");
            continue;
        }
        for (nfds_t i = (nfds_t)ni; i < n; i++) {
            struct hv_stream *s = in[i];
            uint32_t want;
            ssize_t got;

            if (!pfd[i].revents || s->fd < 0)
                continue;
            want = agent_credit_allow(&s->credit, sizeof(buf));
            got = read(s->fd, buf, want);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got <= 0) {
                agent_stdio_put_eof(&sb->io_w, s->sid);
                close(s->fd);
                s->fd = -1;
                continue;
            }
            agent_credit_take(&s->credit, (uint32_t)got);
            agent_stdio_put_data(&sb->io_w, s->sid, buf, (size_t)got);
        }
    }
    pthread_mutex_unlock(&sb->mu);
    return NULL;
}

/* Queue a request (under mu); it is answered on @q. */
static int queue_req(struct hv_sandbox *sb, json_t *req, struct hv_req *q)
{
    q->id = sb->next_id++;
    json_object_set_new(req, "id", json_integer(q->id));
    if (agent_json_put(&sb->ctl_w, req) < 0)
        return -ENOMEM;
    q->next = sb->reqs;
    sb->reqs = q;
    wake(sb);
    return 0;
}

static void unlink_req(struct hv_sandbox *sb, struct hv_req *q)
{
    for (struct hv_req **pp = &sb->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            return;
        }
    }
}

/*
 * Send @req (stolen) and wait for its reply. Returns 0 with *ret_reply (a
 * new reference, may be NULL when not wanted) when the agent said ok.
 */
static int request(struct hv_sandbox *sb, json_t *req, int timeout_ms, json_t **ret_reply,
                   berth_err_t *err)
{
    struct hv_req q = { 0 };
    const char *op = json_string_value(json_object_get(req, "op"));
    struct timespec dl;
    char opname[32];
    int r = 0;

    snprintf(opname, sizeof(opname), "%s", op ? op : "?");
    if (!req)
        return berth_err_set(err, -ENOMEM, "out of memory");
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&sb->mu);
    if (sb->dead) {
        r = berth_err_set(err, -EPIPE, "hyperv: %s", sb->dead_msg[0] ? sb->dead_msg : sb->dead_why);
        goto out;
    }
    if (queue_req(sb, req, &q) < 0) {
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    while (!q.done) {
        if (pthread_cond_timedwait(&sb->cv, &sb->mu, &dl) == ETIMEDOUT)
            break;
    }
    unlink_req(sb, &q);
    if (!q.done) {
        r = berth_err_set(err, -ETIMEDOUT, "hyperv: the agent did not answer %s within %d s",
                          opname, timeout_ms / 1000);
    } else if (!q.reply) {
        r = berth_err_set(err, -EPIPE, "hyperv: %s (during %s)",
                          sb->dead_msg[0] ? sb->dead_msg : sb->dead_why, opname);
    } else if (!json_is_true(json_object_get(q.reply, "ok"))) {
        int e = (int)json_integer_value(json_object_get(q.reply, "errno"));
        r = berth_err_set(err, -(e > 0 ? e : EPROTO), "hyperv: agent: %s: %s", opname,
                          json_string_value(json_object_get(q.reply, "error")) ?: "failed");
    } else if (ret_reply) {
        *ret_reply = json_incref(q.reply);
    }
out:
    pthread_mutex_unlock(&sb->mu);
    json_decref(q.reply);
    json_decref(req);
    return r;
}

/* ---- QMP: qemu's monitor, for pause ---- */

/*
 * The next message qemu sent on the monitor (one JSON object a line),
 * within the time left until @deadline_ms (CLOCK_MONOTONIC): 0 with *ret
 * (a new reference), or -errno (-ETIMEDOUT, -EPIPE once qemu is gone).
 * Under qmp_mu.
 */
static int qmp_next(struct hv_sandbox *sb, int64_t deadline_ms, json_t **ret)
{
    for (;;) {
        char *nl = memchr(sb->qmp_buf, '\n', sb->qmp_len);
        struct pollfd pfd = { .fd = sb->vm.qmp_fd, .events = POLLIN };
        struct timespec ts;
        int64_t left;
        ssize_t n;

        if (nl) {
            size_t len = (size_t)(nl - sb->qmp_buf) + 1;
            json_t *o = sb->qmp_skip ? NULL : json_loadb(sb->qmp_buf, len, 0, NULL);
            memmove(sb->qmp_buf, sb->qmp_buf + len, sb->qmp_len - len);
            sb->qmp_len -= len;
            sb->qmp_skip = 0;
            if (json_is_object(o)) {
                *ret = o;
                return 0;
            }
            json_decref(o);
            continue;
        }
        if (sb->qmp_len == sizeof(sb->qmp_buf)) {
            /* Only events grow that long; none of them matters here. */
            sb->qmp_len = 0;
            sb->qmp_skip = 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        left = deadline_ms - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (left <= 0)
            return -ETIMEDOUT;
        n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0)
            continue;
        n = read(sb->vm.qmp_fd, sb->qmp_buf + sb->qmp_len, sizeof(sb->qmp_buf) - sb->qmp_len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        sb->qmp_len += (size_t)n;
    }
}

/*
 * Send QMP command @what with @args (borrowed; NULL: none) and wait for its
 * answer; events in between are skipped. *ret (NULL: not wanted) gets the
 * answer's "return" (a new reference).
 */
static int qmp_call(struct hv_sandbox *sb, const char *what, json_t *args, int64_t deadline,
                    json_t **ret, berth_err_t *err)
{
    json_t *cmd = json_pack("{s:s}", "execute", what), *m;
    char *line = NULL;
    int r;

    if (cmd && args)
        json_object_set(cmd, "arguments", args);
    line = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
    json_decref(cmd);
    if (!line)
        return berth_err_set(err, -ENOMEM, "out of memory");
    r = write_all(sb->vm.qmp_fd, (const uint8_t *)line, strlen(line));
    free(line);
    if (r == 0)
        r = write_all(sb->vm.qmp_fd, (const uint8_t *)"\n", 1);
    if (r < 0)
        return berth_err_set(err, r, "hyperv: qemu's monitor: %s: %s", what, strerror(-r));
    for (;;) {
        if ((r = qmp_next(sb, deadline, &m)) < 0)
            return berth_err_set(err, r, "hyperv: qemu's monitor: %s: %s", what, strerror(-r));
        if (json_object_get(m, "return")) {
            if (ret)
                *ret = json_incref(json_object_get(m, "return"));
            json_decref(m);
            return 0;
        }
        if (json_object_get(m, "error")) {
            r = berth_err_set(
                err, -EIO, "hyperv: qemu's monitor: %s: %s", what,
                json_string_value(json_object_get(json_object_get(m, "error"), "desc"))
                    ?: "failed");
            json_decref(m);
            return r;
        }
        json_decref(m);
    }
}

/*
 * Run QMP command @cmd and check its answer. The first call reads qemu's
 * greeting and leaves capability negotiation, the only command qemu takes
 * before that. Under qmp_mu.
 */
static int qmp_exec_args(struct hv_sandbox *sb, const char *cmd, json_t *args, json_t **ret,
                         berth_err_t *err)
{
    struct timespec ts;
    int64_t deadline;
    json_t *m = NULL;
    int r;

    if (sb->vm.qmp_fd < 0)
        return berth_err_set(err, -ENOTSUP, "hyperv: the VM has no monitor");
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + HV_QMP_TIMEOUT_MS;
    if (!sb->qmp_ready) {
        /* {"QMP": {...}} comes first, unasked. */
        do {
            json_decref(m);
            if ((r = qmp_next(sb, deadline, &m)) < 0)
                return berth_err_set(err, r, "hyperv: qemu's monitor: no greeting: %s",
                                     strerror(-r));
        } while (!json_object_get(m, "QMP"));
        json_decref(m);
        if ((r = qmp_call(sb, "qmp_capabilities", NULL, deadline, NULL, err)) < 0)
            return r;
        sb->qmp_ready = 1;
    }
    return qmp_call(sb, cmd, args, deadline, ret, err);
}

static int qmp_exec(struct hv_sandbox *sb, const char *cmd, berth_err_t *err)
{
    return qmp_exec_args(sb, cmd, NULL, NULL, err);
}

/*
 * Start a paused VM's vCPUs again (under qmp_mu). The signals held back
 * while it was paused go to *ret_pending in the order they came (NULL:
 * they are dropped).
 */
static int vm_cont(struct hv_sandbox *sb, struct hv_pending **ret_pending, berth_err_t *err)
{
    struct hv_pending *list, *rev = NULL;
    int r = qmp_exec(sb, "cont", err);

    if (r < 0)
        return r;
    pthread_mutex_lock(&sb->mu);
    sb->paused = 0;
    list = sb->pending;
    sb->pending = NULL;
    json_decref(sb->paused_stats);
    sb->paused_stats = NULL;
    pthread_mutex_unlock(&sb->mu);
    wake(sb); /* the heartbeat starts over */
    while (list) {
        struct hv_pending *q = list;
        list = q->next;
        q->next = rev;
        rev = q;
    }
    if (ret_pending)
        *ret_pending = rev;
    else
        while (rev) {
            struct hv_pending *q = rev;
            rev = q->next;
            free(q);
        }
    return 0;
}

/*
 * Before a teardown that needs the agent: a paused VM runs again (held-back
 * signals are dropped: what they were for is ending). 0 when the VM is not
 * paused (any more); otherwise the agent can't answer and the caller skips it.
 */
static int unpause_for_end(struct hv_sandbox *sb)
{
    int r = 0;

    pthread_mutex_lock(&sb->qmp_mu);
    if (sb->paused && (r = vm_cont(sb, NULL, NULL)) < 0)
        hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: resuming the VM to end it failed (%s)%s",
               strerror(-r), "");
    pthread_mutex_unlock(&sb->qmp_mu);
    return r;
}

/* ---- configuration ---- */

static char *config_str(json_t *cfg, const char *key, const char *env, const char *dflt)
{
    const char *v = json_string_value(json_object_get(cfg, key));
    const char *e = env ? getenv(env) : NULL;
    if (e && *e)
        v = e;
    return strdup(v && *v ? v : dflt);
}

static void priv_free(struct hv_priv *p)
{
    free(p->kernel);
    free(p->initrd);
    free(p->accel);
    free(p->qemu);
    free(p->tc);
    free(p->kernel_args);
    free(p);
}

static int hv_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                   berth_err_t *err)
{
    struct hv_priv *p = calloc(1, sizeof(*p));
    const char *text = host && host->config ? host->config(ctx) : NULL;
    json_t *cfg = text ? json_loads(text, 0, NULL) : NULL;
    json_t *timeout = json_object_get(cfg, "agent_timeout_ms");
    json_t *kargs = json_object_get(cfg, "kernel_args");

    if (!p) {
        json_decref(cfg);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    /*
     * A bad value is refused rather than replaced (a fault detector set wrong is worse than
     * none), by sandbox_create: a driver whose init fails is not loaded, and a user would only
     * learn that "hyperv" does not exist.
     */
    p->agent_timeout_ms = HV_AGENT_TIMEOUT_DEFAULT;
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 100 ||
                    json_integer_value(timeout) > 3600000))
        snprintf(p->bad_config, sizeof(p->bad_config),
                 "drivers.hyperv.agent_timeout_ms must be an integer from 100 to 3600000 (ms)");
    else if (timeout)
        p->agent_timeout_ms = (int)json_integer_value(timeout);
    p->snapshots = 1;
    if (json_object_get(cfg, "snapshots") && !json_is_boolean(json_object_get(cfg, "snapshots")))
        snprintf(p->bad_config, sizeof(p->bad_config),
                 "drivers.hyperv.snapshots must be true or false");
    else if (json_is_false(json_object_get(cfg, "snapshots")))
        p->snapshots = 0;
    if (kargs && (!json_is_string(kargs) || strchr(json_string_value(kargs), '\n')))
        snprintf(p->bad_config, sizeof(p->bad_config),
                 "drivers.hyperv.kernel_args must be a string (kernel parameters, one line)");
    else if (kargs && *json_string_value(kargs) &&
             !(p->kernel_args = strdup(json_string_value(kargs)))) {
        json_decref(cfg);
        priv_free(p);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    p->host = host;
    p->ctx = ctx;
    /* A path, or "distro" for the distribution's kernel (guest_select()). */
    p->kernel = config_str(cfg, "kernel", "BERTH_HYPERV_KERNEL", HV_KERNEL_DEFAULT);
    p->initrd = config_str(cfg, "initrd", "BERTH_HYPERV_INITRD", HYPERV_DEFAULT_DIR "/initrd.cpio");
    /* auto: KVM when the probe (hyperv-probe.h) boots the guest under it, else TCG. */
    p->accel = config_str(cfg, "accel", "BERTH_HYPERV_ACCEL", "auto");
    p->accel_source = getenv("BERTH_HYPERV_ACCEL") && *getenv("BERTH_HYPERV_ACCEL")
                          ? "BERTH_HYPERV_ACCEL"
                      : json_string_value(json_object_get(cfg, "accel")) ? "hyperv.accel"
                                                                         : "the default";
    p->qemu = config_str(cfg, "qemu", "BERTH_HYPERV_QEMU", "qemu-system-x86_64");
    p->tc = config_str(cfg, "tc", "BERTH_HYPERV_TC", "");
    json_decref(cfg);
    if (!p->kernel || !p->initrd || !p->accel || !p->qemu || !p->tc) {
        priv_free(p);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    /* Filters compiled for create's "seccomp", kept as the process driver keeps its own. */
    {
        const char *state = host && host->path ? host->path(ctx, BERTH_PATH_STATE) : NULL;
        char dir[PATH_MAX];
        if (state && snprintf(dir, sizeof(dir), "%s/seccomp", state) < (int)sizeof(dir))
            process_seccomp_set_cache_dir(dir);
    }
    *ret_priv = p;
    return 0;
}

static void hv_fini(void *priv)
{
    struct hv_priv *p = priv;
    process_seccomp_set_cache_dir(NULL);
    if (p)
        priv_free(p);
}

static int have_program(const char *name)
{
    char buf[PATH_MAX];
    return hv_find_program(name, NULL, buf, sizeof(buf));
}

static int accel_valid(const char *a)
{
    return strcmp(a, "kvm") == 0 || strcmp(a, "tcg") == 0 || strcmp(a, "auto") == 0;
}

/*
 * The accelerator VMs use, "kvm" or "tcg", and why (p->accel_why). A forced
 * one is taken as it is; auto asks the probe once per process, whose answer
 * is cached under this driver's state dir (<root>/drivers/isolation/hyperv),
 * so only the first VM of a root (or of a new kernel, initramfs or qemu)
 * pays for a KVM boot attempt. Anything that keeps the probe from running
 * means TCG, which boots everywhere.
 */
/*
 * Whether VMs boot the distribution's kernel (guest_select()): asked for
 * with kernel "distro", or berth's own is not installed where the build
 * puts it.
 */
static int wants_distro(const struct hv_priv *p)
{
    return strcmp(p->kernel, "distro") == 0 ||
           (strcmp(p->kernel, HV_KERNEL_DEFAULT) == 0 && access(p->kernel, R_OK) != 0);
}

static const char *accel_resolve(struct hv_priv *p)
{
    const char *dir = p->host && p->host->path ? p->host->path(p->ctx, BERTH_PATH_STATE) : NULL;
    char qemu[PATH_MAX], cache[PATH_MAX];
    hv_accel_probe_t res;
    berth_err_t err = { 0 };

    if (p->accel_resolved)
        return p->accel_used;
    p->accel_resolved = 1;
    if (strcmp(p->accel, "auto") != 0) {
        snprintf(p->accel_used, sizeof(p->accel_used), "%s", p->accel);
        snprintf(p->accel_why, sizeof(p->accel_why), "set by %s", p->accel_source);
        return p->accel_used;
    }
    snprintf(p->accel_used, sizeof(p->accel_used), "tcg");
    if (!dir || snprintf(cache, sizeof(cache), "%s/kvm-probe.json", dir) >= (int)sizeof(cache)) {
        snprintf(p->accel_why, sizeof(p->accel_why),
                 "auto: no state dir for the KVM probe's answer");
        return p->accel_used;
    }
    if (!hv_find_program(p->qemu, NULL, qemu, sizeof(qemu))) {
        snprintf(p->accel_why, sizeof(p->accel_why), "auto: %s not found", p->qemu);
        return p->accel_used;
    }
    /* The probe boots berth's kernel (no ACPI, no modules); set accel to use KVM with another. */
    if (wants_distro(p)) {
        snprintf(p->accel_why, sizeof(p->accel_why),
                 "auto: the KVM probe needs berth's guest kernel; the distribution's is in use");
        return p->accel_used;
    }
    if (hv_probe_accel(qemu, p->kernel, p->initrd, HV_PROBE_TIMEOUT_MS, cache, &res, &err) < 0) {
        snprintf(p->accel_why, sizeof(p->accel_why), "auto: the KVM probe could not run: %.256s",
                 err.msg);
        return p->accel_used;
    }
    if (res.kvm)
        snprintf(p->accel_used, sizeof(p->accel_used), "kvm");
    snprintf(p->accel_why, sizeof(p->accel_why), "auto: %s%s",
             res.kvm ? "KVM boots the guest" : "KVM probe: ", res.kvm ? "" : res.reason);
    if (res.cached)
        snprintf(p->accel_why + strlen(p->accel_why), sizeof(p->accel_why) - strlen(p->accel_why),
                 " (cached)");
    return p->accel_used;
}

static int hv_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    struct hv_priv *p = priv;

    if (!accel_valid(p->accel))
        return berth_err_set(err, -EINVAL, "hyperv: accel \"%s\" (from %s): want kvm, tcg or auto",
                             p->accel, p->accel_source);
    if (!have_program(p->qemu))
        return berth_err_set(err, BERTH_DECLINED, "hyperv: %s not found (install qemu-system-x86)",
                             p->qemu);
    if (access(p->kernel, R_OK) < 0)
        return berth_err_set(err, BERTH_DECLINED,
                             "hyperv: no guest kernel at %s (set BERTH_HYPERV_KERNEL or the "
                             "driver's \"kernel\")",
                             p->kernel);
    if (access(p->initrd, R_OK) < 0)
        return berth_err_set(err, BERTH_DECLINED,
                             "hyperv: no agent initramfs at %s (set BERTH_HYPERV_INITRD or the "
                             "driver's \"initrd\")",
                             p->initrd);
    if (ret_caps)
        *ret_caps = BERTH_ISOLATION_CAP_VM | BERTH_ISOLATION_CAP_LINUX | BERTH_ISOLATION_CAP_EXEC |
                    BERTH_ISOLATION_CAP_TTY | BERTH_ISOLATION_CAP_PAUSE |
                    BERTH_ISOLATION_CAP_STATS |
                    /* Networks go through tc redirects: no tc, only --network none. */
                    (hv_net_find_tc(p->tc) ? BERTH_ISOLATION_CAP_NET_NETNS : 0);
    return 0;
}

/* ---- sandboxes ---- */

static char *path_join(const char *a, const char *b)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static void sandbox_free(struct hv_sandbox *sb)
{
    struct hv_stream *s;

    while ((s = sb->streams)) {
        sb->streams = s->next;
        if (s->fd >= 0)
            close(s->fd);
        free(s);
    }
    agent_writer_clear(&sb->ctl_w);
    agent_writer_clear(&sb->io_w);
    agent_reader_clear(&sb->ctl_r);
    agent_reader_clear(&sb->io_r);
    if (sb->wakefd >= 0)
        close(sb->wakefd);
    while (sb->pending) {
        struct hv_pending *q = sb->pending;
        sb->pending = q->next;
        free(q);
    }
    json_decref(sb->paused_stats);
    pthread_mutex_destroy(&sb->mu);
    pthread_mutex_destroy(&sb->qmp_mu);
    pthread_cond_destroy(&sb->cv);
    free(sb->state_dir);
    free(sb->rootfs_dir);
    free(sb->console);
    free(sb->binds_dir);
    free(sb->netns);
    hv_net_clear(&sb->net);
    free(sb);
}

/*
 * VM size from OCI linux.resources (borrowed, may be NULL): memory = the
 * limit + the guest's own overhead (kernel, agent, page tables), vCPUs =
 * the CPU quota rounded up. The limit is also set on the container's
 * cgroup in the guest, so the OOM killer acts as with process isolation.
 */
#define HV_MEM_OVERHEAD_MIB 128u
static void size_vm(struct hv_sandbox *sb, json_t *res)
{
    json_int_t limit = json_integer_value(json_object_get(json_object_get(res, "memory"), "limit"));
    json_t *cpu = json_object_get(res, "cpu");
    json_int_t quota = json_integer_value(json_object_get(cpu, "quota"));
    json_int_t period = json_integer_value(json_object_get(cpu, "period"));

    if (limit > 0)
        sb->mem_mib = (unsigned)((limit + (1 << 20) - 1) >> 20) + HV_MEM_OVERHEAD_MIB;
    if (quota > 0 && period > 0)
        sb->vcpus = (unsigned)((quota + period - 1) / period);
}

static int hv_sandbox_create(void *priv, const berth_sandbox_spec_t *spec, uint32_t flags,
                             void **ret_sandbox, berth_err_t *err)
{
    struct hv_sandbox *sb;
    json_t *cfg = spec->config_json ? json_loads(spec->config_json, 0, NULL) : NULL;
    const char *net = json_string_value(json_object_get(cfg, "network"));
    struct hv_priv *p = priv;
    int on_net = net && strcmp(net, "netns") == 0;
    int r;

    hv_trace("sandbox-create");
    if (p->bad_config[0]) {
        json_decref(cfg);
        return berth_err_set(err, -EINVAL, "hyperv: %s", p->bad_config);
    }
    if (net && strcmp(net, "none") != 0 && !on_net) {
        /* net is borrowed from cfg: the message first. */
        r = berth_err_set(err, -ENOTSUP,
                          "hyperv: network \"%s\" is not possible for a VM (it has a kernel of "
                          "its own): use a network, or --network none",
                          net);
        json_decref(cfg);
        return r;
    }
    if (!(sb = calloc(1, sizeof(*sb)))) {
        json_decref(cfg);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    sb->p = priv;
    sb->vm.pidfd = sb->vm.control_fd = sb->vm.stdio_fd = sb->vm.qmp_fd = -1;
    sb->wakefd = -1;
    sb->mem_mib = HV_MEM_DEFAULT;
    sb->vcpus = 1;
    hv_net_init(&sb->net);
    size_vm(sb, json_object_get(cfg, "resources"));
    json_decref(cfg);
    pthread_mutex_init(&sb->mu, NULL);
    pthread_mutex_init(&sb->qmp_mu, NULL);
    pthread_cond_init(&sb->cv, NULL);
    agent_writer_init(&sb->ctl_w);
    agent_writer_init(&sb->io_w);
    agent_reader_init(&sb->ctl_r, AGENT_CONTROL_MAX);
    agent_reader_init(&sb->io_r, AGENT_STDIO_MAX);
    sb->next_sid = 1;
    sb->state_dir = strdup(spec->state_dir);
    sb->rootfs_dir = path_join(spec->state_dir, "rootfs");
    sb->console = path_join(spec->state_dir, "console.log");
    sb->binds_dir = path_join(spec->state_dir, "binds");
    if (on_net)
        sb->netns = path_join(spec->state_dir, "netns");
    if (!sb->state_dir || !sb->rootfs_dir || !sb->console || !sb->binds_dir ||
        (on_net && !sb->netns)) {
        sandbox_free(sb);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    if ((sb->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        r = berth_err_set(err, -errno, "eventfd: %s", strerror(errno));
        sandbox_free(sb);
        return r;
    }
    if (mkdir(sb->rootfs_dir, 0755) < 0 && errno != EEXIST) {
        r = berth_err_set(err, -errno, "mkdir %s: %s", sb->rootfs_dir, strerror(errno));
        sandbox_free(sb);
        return r;
    }
    /*
     * On networks: an empty namespace of the sandbox's own, which the
     * network drivers fill as for process isolation; container_create then
     * redirects its eth0 to the VM's tap (hyperv-net.h).
     */
    if (sb->netns && (r = hv_net_netns_create(sb->netns, err)) < 0) {
        rmdir(sb->rootfs_dir);
        sandbox_free(sb);
        return r;
    }
    *ret_sandbox = sb;
    return 0;
}

/*
 * The start time of process @pid (/proc/PID/stat field 22, clock ticks
 * since boot): with the pid, it names one process even after the pid is
 * reused. 0 when there is no such process.
 */
static unsigned long long pid_start_time(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long start = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    if (!(p = strrchr(buf, ')')))
        return 0;
    p++;
    /* Fields 3 (state) to 21, then 22. */
    for (int f = 3; f < 22 && p; f++)
        p = strchr(p + 1, ' ');
    if (!p || sscanf(p, " %llu", &start) != 1)
        return 0;
    return start;
}

/*
 * Record what sandbox_open needs to clean up after a shim that was killed:
 * qemu's pid and start time (so that a reused pid is never killed). The
 * rootfs mount point is always <state_dir>/rootfs.
 */
static int save_state(struct hv_sandbox *sb, berth_err_t *err)
{
    json_t *st = json_pack("{s:i, s:I}", "qemu_pid", (int)sb->vm.pid, "qemu_start_time",
                           (json_int_t)pid_start_time(sb->vm.pid));
    char *path = path_join(sb->state_dir, HV_STATE_FILE),
         *tmp = path_join(sb->state_dir, ".vm.json.tmp");
    int r = 0;

    if (!st || !path || !tmp)
        r = berth_err_set(err, -ENOMEM, "out of memory");
    else if (json_dump_file(st, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0)
        r = berth_err_set(err, -EIO, "hyperv: writing %s failed", path);
    json_decref(st);
    free(path);
    free(tmp);
    return r;
}

/*
 * A pidfd for the qemu a reopened sandbox recorded while it is still that
 * process (the pidfd pins the pid, so the start time checked after opening
 * it can't go stale); -1 when it is gone.
 */
static int orphan_pidfd(struct hv_sandbox *sb)
{
    int fd;

    if (sb->orphan_pid <= 0 || !sb->orphan_start)
        return -1;
    if ((fd = (int)syscall(SYS_pidfd_open, sb->orphan_pid, 0)) < 0)
        return -1;
    if (pid_start_time(sb->orphan_pid) != sb->orphan_start) {
        close(fd);
        return -1;
    }
    return fd;
}

static int orphan_alive(struct hv_sandbox *sb)
{
    int fd = orphan_pidfd(sb);
    struct pollfd p = { .fd = fd, .events = POLLIN };

    if (fd < 0)
        return 0;
    /* A pidfd is readable once the process has exited (a zombie is gone for us). */
    poll(&p, 1, 0);
    close(fd);
    return !(p.revents & POLLIN);
}

/*
 * The qemu a killed shim left: PR_SET_PDEATHSIG has SIGKILLed it already,
 * but it may still be exiting (and holding the rootfs open); make sure of
 * the kill and wait until it is gone.
 */
static int kill_orphan(struct hv_sandbox *sb, berth_err_t *err)
{
    int fd = orphan_pidfd(sb), n;
    struct pollfd p = { .fd = fd, .events = POLLIN };

    if (fd < 0)
        return 0;
    syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
    do
        n = poll(&p, 1, HV_ORPHAN_EXIT_MS);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return berth_err_set(err, -ETIMEDOUT, "hyperv: qemu (pid %d) did not exit after SIGKILL",
                             (int)sb->orphan_pid);
    sb->orphan_pid = 0;
    return 0;
}

/*
 * Unmount whatever is still on the rootfs mount point: what a killed shim
 * left, or a container handle released while its container ran.
 */
static int unmount_left(struct hv_sandbox *sb, berth_err_t *err)
{
    for (int i = 0; i < 16; i++) {
        if (umount2(sb->rootfs_dir, MNT_DETACH) == 0)
            continue; /* a mount below may show through: once more */
        if (errno == EINVAL || errno == ENOENT)
            return 0; /* not (or no longer) a mount point */
        return berth_err_set(err, -errno, "hyperv: umount %s: %s", sb->rootfs_dir, strerror(errno));
    }
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/*
 * The kernel and initramfs the VM boots (hyperv-kernel.h): the configured
 * kernel, else berth's own where it is installed, else (or with kernel
 * "distro") the distribution's newest, with ACPI and an initramfs of the
 * agent's plus the modules, cached in the driver's state dir. @k and
 * @initrd hold what @vs then points at.
 */
static int guest_select(struct hv_priv *p, hv_vm_spec_t *vs, hv_kernel_t *k, char *initrd,
                        size_t size, char *append, size_t append_size, berth_err_t *err)
{
    const char *dir;
    unsigned long khz;
    int r;

    if (!wants_distro(p))
        return 0; /* vs has the configured kernel and initramfs already */
    if ((r = hv_kernel_find_distro("/boot", "/lib/modules", k, err)) < 0)
        return r;
    dir = p->host && p->host->path ? p->host->path(p->ctx, BERTH_PATH_STATE) : NULL;
    if (!dir)
        return berth_err_set(err, -ENOENT, "hyperv: no state dir for the guest's initramfs");
    if ((r = hv_kernel_distro_initrd(k, "/lib/modules", p->initrd, dir, initrd, size, err)) < 0)
        return r;
    vs->kernel = k->path;
    vs->initrd = initrd;
    vs->acpi = 1;
    /*
     * Under TCG its clock needs the TSC's rate given (hv_host_tsc_khz());
     * kernel_args after. hv_vm_argv() adds no_timer_check under TCG.
     */
    if (strcmp(vs->accel, "tcg") == 0 && (khz = hv_host_tsc_khz()) > 0) {
        if (snprintf(append, append_size, "tsc_early_khz=%lu%s%s", khz, vs->append ? " " : "",
                     vs->append ? vs->append : "") >= (int)append_size)
            return berth_err_set(err, -E2BIG, "hyperv: kernel_args too long");
        vs->append = append;
    }
    return 0;
}

/* ---- snapshots: a VM saved just after its agent said hello, restored instead of a boot ---- */

/* Loading one (a 256 MiB guest's ~40 MB here: 0.15 s), and saving one, at the most. */
#define HV_RESTORE_TIMEOUT_MS 10000
#define HV_SAVE_TIMEOUT_MS    20000
/*
 * Snapshots kept per root: each memory size, vCPU count or kernel makes one
 * (~40 MB for 256 MiB of guest), so the least recently used go beyond this.
 */
#define HV_SNAPSHOTS_MAX 8

/* Where a root's snapshots are: <the driver's state dir>/snapshots. 0, or -1 without one. */
static int snapshots_dir(struct hv_priv *p, char *buf, size_t size)
{
    const char *state = p->host && p->host->path ? p->host->path(p->ctx, BERTH_PATH_STATE) : NULL;
    return state && snprintf(buf, size, "%s/snapshots", state) < (int)size ? 0 : -1;
}

static int has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

/*
 * After a save into @dir: keep the HV_SNAPSHOTS_MAX most recently used
 * snapshots (a restore touches its file) and remove temporary files older
 * than a save may take (a shim killed while saving). Best effort.
 */
static void snapshots_trim(const char *dir)
{
    struct snap {
        char name[64];
        struct timespec used;
    } keep[HV_SNAPSHOTS_MAX + 1];
    size_t n = 0;
    struct dirent *de;
    struct timespec now;
    DIR *d = opendir(dir);
    int dfd;

    if (!d)
        return;
    dfd = dirfd(d);
    clock_gettime(CLOCK_REALTIME, &now);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        struct stat st;
        size_t i;

        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (has_suffix(de->d_name, ".tmp")) {
            if (now.tv_sec - st.st_mtim.tv_sec > 3 * HV_SAVE_TIMEOUT_MS / 1000)
                unlinkat(dfd, de->d_name, 0);
            continue;
        }
        if (!has_suffix(de->d_name, ".vmstate") || len >= sizeof(keep[0].name))
            continue;
        /* Insertion into keep[], newest first; what falls off the end goes. */
        for (i = n; i > 0 && (keep[i - 1].used.tv_sec < st.st_mtim.tv_sec ||
                              (keep[i - 1].used.tv_sec == st.st_mtim.tv_sec &&
                               keep[i - 1].used.tv_nsec < st.st_mtim.tv_nsec));
             i--)
            keep[i] = keep[i - 1];
        snprintf(keep[i].name, sizeof(keep[i].name), "%s", de->d_name);
        keep[i].used = st.st_mtim;
        if (n < HV_SNAPSHOTS_MAX)
            n++;
        else
            unlinkat(dfd, keep[HV_SNAPSHOTS_MAX].name, 0);
    }
    closedir(d);
}

/*
 * Where the snapshot of the machine @vs describes is kept: 1 with its path
 * in @buf; 0 when such a VM gets none: snapshots are off, the accelerator
 * is KVM (its boot is already short, and no KVM here boots a guest to test
 * a restore under it), or the VM has a NIC or a disk (hv_vm_shape_key()).
 */
static int snapshot_path(struct hv_priv *p, const hv_vm_spec_t *vs, char *buf, size_t size)
{
    char key[33], dir[PATH_MAX];

    if (!p->snapshots || strcmp(vs->accel, "tcg") != 0 || hv_vm_shape_key(vs, key, NULL) < 0 ||
        snapshots_dir(p, dir, sizeof(dir)) < 0)
        return 0;
    /* Guest memory, the guest kernel's secrets in it: root's alone. */
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return 0;
    return snprintf(buf, size, "%s/%s.vmstate", dir, key) < (int)size && !strpbrk(buf, "'\n");
}

/* The VM's state as qemu says it ("running", "inmigrate", ...) in @buf. Under qmp_mu. */
static int vm_status(struct hv_sandbox *sb, char *buf, size_t size, berth_err_t *err)
{
    json_t *st = NULL;
    int r = qmp_exec_args(sb, "query-status", NULL, &st, err);

    if (r == 0)
        snprintf(buf, size, "%s", json_string_value(json_object_get(st, "status")) ?: "");
    json_decref(st);
    return r;
}

/*
 * Wait until qemu has loaded the snapshot, and see the VM run. An unreadable
 * or mismatched stream ends qemu ("load of migration failed"): -EPIPE here.
 * Under qmp_mu.
 */
static int restore_wait(struct hv_sandbox *sb, berth_err_t *err)
{
    int64_t deadline = mono_ms() + HV_RESTORE_TIMEOUT_MS;
    char st[32];
    int r;

    for (;;) {
        if ((r = vm_status(sb, st, sizeof(st), err)) < 0)
            return r;
        if (strcmp(st, "inmigrate") != 0)
            break;
        if (mono_ms() > deadline)
            return berth_err_set(err, -ETIMEDOUT, "hyperv: loading the snapshot took over %d ms",
                                 HV_RESTORE_TIMEOUT_MS);
        usleep(2000);
    }
    if (strcmp(st, "running") == 0)
        return 0;
    /* A stream saved from a stopped VM loads stopped. */
    if (strcmp(st, "paused") == 0 || strcmp(st, "postmigrate") == 0)
        return qmp_exec(sb, "cont", err);
    return berth_err_set(err, -EIO, "hyperv: the restored VM is %s", st);
}

/*
 * Save the running VM to @path for the next VMs of its shape, and let it
 * run on. Called just after hello and reseed: nothing of a container is in
 * it yet. qemu writes the stream through `cat` into a temporary file, which
 * is renamed once it is complete and on disk, so a reader never finds half
 * of one. Under qmp_mu. A failed save leaves no file and is only logged;
 * a VM that can't be run again afterwards is an error.
 */
static int vm_snapshot(struct hv_sandbox *sb, const char *path, berth_err_t *err)
{
    int64_t deadline = mono_ms() + HV_SAVE_TIMEOUT_MS;
    char tmp[PATH_MAX], uri[PATH_MAX + 32], st[32];
    berth_err_t e2 = { 0 };
    json_t *args, *m = NULL;
    int r, fd;

    if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp) ||
        snprintf(uri, sizeof(uri), "exec:cat > '%s'", tmp) >= (int)sizeof(uri))
        return 0;
    /* qemu's default, 32 MiB/s, is for live migration over a network: a second here. */
    args = json_pack("{s:I}", "max-bandwidth", (json_int_t)1 << 40);
    r = args ? qmp_exec_args(sb, "migrate-set-parameters", args, NULL, &e2)
             : berth_err_set(&e2, -ENOMEM, "out of memory");
    json_decref(args);
    if (r == 0) {
        args = json_pack("{s:s}", "uri", uri);
        r = args ? qmp_exec_args(sb, "migrate", args, NULL, &e2)
                 : berth_err_set(&e2, -ENOMEM, "out of memory");
        json_decref(args);
    }
    while (r == 0) {
        const char *ms;

        json_decref(m);
        m = NULL;
        if ((r = qmp_exec_args(sb, "query-migrate", NULL, &m, &e2)) < 0)
            break;
        ms = json_string_value(json_object_get(m, "status"));
        if (ms && strcmp(ms, "completed") == 0)
            break;
        if (ms && (strcmp(ms, "failed") == 0 || strcmp(ms, "cancelled") == 0)) {
            r = berth_err_set(&e2, -EIO, "the save %s: %s", ms,
                              json_string_value(json_object_get(m, "error-desc")) ?: "");
        } else if (mono_ms() > deadline) {
            qmp_exec(sb, "migrate_cancel", NULL);
            r = berth_err_set(&e2, -ETIMEDOUT, "the save took over %d ms", HV_SAVE_TIMEOUT_MS);
        } else {
            usleep(2000);
        }
    }
    json_decref(m);
    /* A completed save leaves the VM stopped ("postmigrate"); a failed one may too. */
    if (vm_status(sb, st, sizeof(st), err) < 0 ||
        (strcmp(st, "running") != 0 && qmp_exec(sb, "cont", err) < 0)) {
        unlink(tmp);
        return berth_err_prefix(err, -EIO, "hyperv: running the VM again after its snapshot");
    }
    if (r == 0) {
        fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fdatasync(fd) < 0 || rename(tmp, path) < 0)
            r = berth_err_set(&e2, -errno, "%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (r == 0) {
        char dir[PATH_MAX];

        if (snapshots_dir(sb->p, dir, sizeof(dir)) == 0)
            snapshots_trim(dir);
    }
    if (r < 0) {
        unlink(tmp);
        hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: no snapshot of the VM kept: %s%s", e2.msg, "");
    }
    return 0;
}

/*
 * The host's entropy and wall clock for the guest (the agent's "reseed"):
 * every VM restored from one snapshot starts with its random state and its
 * clock, and a booted one gets a clock finer than the RTC's second.
 */
static int vm_reseed(struct hv_sandbox *sb, berth_err_t *err)
{
    uint8_t seed[AGENT_RESEED_MIN];
    struct timespec now;
    char *text;
    int r;

    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        return berth_err_set(err, -EIO, "hyperv: getrandom: %s", strerror(errno));
    text = berth__base64_encode(seed, sizeof(seed));
    explicit_bzero(seed, sizeof(seed));
    if (!text)
        return berth_err_set(err, -ENOMEM, "out of memory");
    clock_gettime(CLOCK_REALTIME, &now);
    r = request(sb,
                json_pack("{s:s, s:s, s:[I,I]}", "op", "reseed", "entropy", text, "realtime",
                          (json_int_t)now.tv_sec, (json_int_t)now.tv_nsec),
                sb->p->agent_timeout_ms, NULL, err);
    explicit_bzero(text, strlen(text));
    free(text);
    return r;
}

/*
 * Start qemu, the relay, and say hello. On failure nothing runs.
 *
 * Under TCG a VM without a NIC or a disk starts from a snapshot when there
 * is one for its shape (snapshot_path()): qemu loads the memory and devices
 * of a VM saved just after its agent said hello, which takes a fifth of a
 * boot. The first VM of a shape boots and is saved (vm_snapshot(), about
 * 0.2 s more); a snapshot that fails to load is removed and the VM boots.
 * Every VM, restored or booted, then gets the host's entropy and clock
 * (vm_reseed()) before anything else runs in it. docs/hyperv.md, "Starting
 * from a snapshot", says what restored VMs share.
 */
static int vm_boot(struct hv_sandbox *sb, berth_err_t *err)
{
    struct hv_priv *p = sb->p;
    hv_vm_spec_t vs = {
        .qemu = p->qemu,
        .kernel = p->kernel,
        .initrd = p->initrd,
        .accel = accel_resolve(p),
        .vcpus = sb->vcpus,
        .mem_mib = sb->mem_mib,
        .share_dir = sb->rootfs_dir,
        .console_log = sb->console,
        .binds_dir = sb->share_binds ? sb->binds_dir : NULL,
        .qmp_fd = 1, /* any nonzero value: hv_vm_start() places it */
        .tap_fd = sb->net.tap_fd,
        .mac = sb->net.tap_fd >= 0 ? sb->net.mac : NULL,
        .append = p->kernel_args,
    };
    json_t *hello = NULL;
    hv_kernel_t k;
    char initrd[PATH_MAX], append[1024], snap[PATH_MAX];
    const char *rel;
    int r, snap_ok = 0, restored = 0;

    /* The shim may skip probe: the setting is checked again where it is used. */
    if (!accel_valid(p->accel))
        return berth_err_set(err, -EINVAL, "hyperv: accel \"%s\" (from %s): want kvm, tcg or auto",
                             p->accel, p->accel_source);
    hv_trace("qemu-start");
    if ((r = guest_select(p, &vs, &k, initrd, sizeof(initrd), append, sizeof(append), err)) < 0)
        return r;
    if ((snap_ok = snapshot_path(p, &vs, snap, sizeof(snap))) && access(snap, R_OK) == 0)
        vs.incoming = snap;
    if ((r = hv_vm_start(&vs, &sb->vm, err)) < 0)
        return r;
    hv_trace("qemu-started");
    /* qemu holds the tap now; when it ends, the tap (not persistent) and its filters go. */
    if (sb->net.tap_fd >= 0) {
        close(sb->net.tap_fd);
        sb->net.tap_fd = -1;
    }
    /* Before anything can fail: a shim killed from here on leaves a qemu to find. */
    if ((r = save_state(sb, err)) < 0) {
        hv_vm_stop(&sb->vm, 0);
        return r;
    }
    if (vs.incoming) {
        berth_err_t e2 = { 0 };

        pthread_mutex_lock(&sb->qmp_mu);
        r = restore_wait(sb, &e2);
        pthread_mutex_unlock(&sb->qmp_mu);
        if (r < 0) {
            /* Whatever is wrong with it, the next VMs would hit it too: a boot makes a new one. */
            hv_log(p, BERTH_LOG_WARNING, "hyperv: restoring %s failed, booting instead: %s", snap,
                   e2.msg);
            hv_vm_stop(&sb->vm, 0);
            sb->qmp_ready = sb->qmp_skip = 0;
            sb->qmp_len = 0;
            unlink(snap);
            vs.incoming = NULL;
            if ((r = hv_vm_start(&vs, &sb->vm, err)) < 0)
                return r;
            if ((r = save_state(sb, err)) < 0) {
                hv_vm_stop(&sb->vm, 0);
                return r;
            }
        } else {
            restored = 1;
            hv_trace("restored");
            /* Its mtime says when it was last used (snapshots_trim()). */
            utimensat(AT_FDCWD, snap, NULL, 0);
        }
    }
    if (set_nonblock(sb->vm.control_fd) < 0 || set_nonblock(sb->vm.stdio_fd) < 0) {
        r = berth_err_set(err, -errno, "fcntl: %s", strerror(errno));
        hv_vm_stop(&sb->vm, 0);
        return r;
    }
    if ((r = pthread_create(&sb->thr, NULL, relay, sb)) != 0) {
        hv_vm_stop(&sb->vm, 0);
        return berth_err_set(err, -r, "pthread_create: %s", strerror(r));
    }
    sb->started = 1;
    r = request(sb,
                json_pack("{s:s, s:[i], s:[]}", "op", "hello", "versions",
                          (int)AGENT_PROTO_VERSION_MAX, "caps"),
                HV_BOOT_TIMEOUT_MS, &hello, err);
    if (r < 0) {
        if (restored)
            unlink(snap);
        return r;
    }
    hv_trace("hello");
    rel = json_string_value(json_object_get(hello, "kernel"));
    snprintf(sb->kernel_release, sizeof(sb->kernel_release), "%s", rel ? rel : "");
    {
        size_t i;
        json_t *c;
        json_array_foreach (json_object_get(hello, "caps"), i, c) {
            if (!json_is_string(c))
                continue;
            if (strcmp(json_string_value(c), "net") == 0)
                sb->agent_net = 1;
            else if (strcmp(json_string_value(c), "seccomp_bpf") == 0)
                sb->agent_seccomp = 1;
            else if (strcmp(json_string_value(c), "trace") == 0)
                sb->agent_trace = 1;
            else if (strcmp(json_string_value(c), "reseed") == 0)
                sb->agent_reseed = 1;
        }
    }
    sb->agent_arch = (uint32_t)json_integer_value(json_object_get(hello, "seccomp_arch"));
    json_decref(hello);
    if (sb->agent_reseed && (r = vm_reseed(sb, err)) < 0) {
        if (restored)
            unlink(snap);
        return r;
    }
    if (restored && !sb->agent_reseed) {
        /* Not from us (we save only agents that reseed): its random state is another VM's. */
        unlink(snap);
        return berth_err_set(err, -EPROTO, "hyperv: the VM restored from %s can't be reseeded",
                             snap);
    }
    hv_trace("reseeded");
    if (snap_ok && !restored && sb->agent_reseed && access(snap, F_OK) < 0) {
        pthread_mutex_lock(&sb->qmp_mu);
        r = vm_snapshot(sb, snap, err);
        pthread_mutex_unlock(&sb->qmp_mu);
        if (r < 0)
            return r;
        hv_trace("snapshot-saved");
    }
    /* The boot had its own timeout; from now on the agent answers pings. */
    pthread_mutex_lock(&sb->mu);
    sb->heartbeat = 1;
    sb->ping_ok_ms = mono_ms();
    pthread_mutex_unlock(&sb->mu);
    wake(sb);
    return 0;
}

/*
 * Stop the relay, then qemu; close every fd (the VM may already be gone).
 * The relay goes first: it uses the VM's fds (qemu's pidfd to tell how it
 * ended), which hv_vm_stop() closes. It never blocks on a port (they are
 * non-blocking); the shim's fds it writes to are read or closed by then.
 */
static void vm_halt(struct hv_sandbox *sb, int grace_ms)
{
    if (!sb->started)
        return;
    pthread_mutex_lock(&sb->mu);
    sb->stopping = 1;
    mark_dead(sb, "stopped");
    pthread_mutex_unlock(&sb->mu);
    wake(sb);
    pthread_join(sb->thr, NULL);
    hv_vm_stop(&sb->vm, grace_ms);
    sb->started = 0;
}

/*
 * The network drivers attach the sandbox's namespace as they would a
 * process sandbox's (BERTH_NET_ATTACH_NETNS): CNI leaves eth0 there, which
 * container_create then joins to the VM. Reporting BERTH_NET_ATTACH_TAP
 * instead would need the core (which attaches only namespaces) and every
 * network driver to learn taps, and the CNI plugins can't put a tap on a
 * bridge anyway; the redirect between the two belongs to the VM's driver.
 */
static int hv_sandbox_network(void *priv, void *sandbox, uint32_t flags,
                              berth_net_attach_t *ret_attach, berth_err_t *err)
{
    struct hv_sandbox *sb = sandbox;

    ret_attach->type = BERTH_NET_ATTACH_NONE;
    ret_attach->path[0] = '\0';
    ret_attach->netns[0] = '\0';
    if (!sb->netns)
        return 0;
    if (strlen(sb->netns) >= sizeof(ret_attach->path))
        return berth_err_set(err, -ENAMETOOLONG, "hyperv: netns path too long: %s", sb->netns);
    ret_attach->type = BERTH_NET_ATTACH_NETNS;
    strcpy(ret_attach->path, sb->netns);
    return 0;
}

static void unshare_binds(struct hv_sandbox *sb);

static int hv_sandbox_destroy(void *priv, void *sandbox, uint32_t flags, berth_err_t *err)
{
    struct hv_sandbox *sb = sandbox;
    int r = 0;

    hv_trace("sandbox-destroy");
    if (sb->started) {
        /* shutdown deletes what still runs; the agent then ends the VM by itself, as expected. */
        pthread_mutex_lock(&sb->mu);
        sb->quitting = 1;
        pthread_mutex_unlock(&sb->mu);
        r = unpause_for_end(sb);
        if (r == 0)
            r = request(sb, json_pack("{s:s}", "op", "shutdown"), HV_REQ_TIMEOUT_MS, NULL, NULL);
        hv_trace("shutdown-answered");
        vm_halt(sb, r < 0 ? 0 : HV_STOP_GRACE_MS);
        hv_trace("qemu-gone");
        r = 0;
    }
    /* Reopened after its shim was killed: the qemu it left first, then any mount. */
    if ((sb->reopened && (r = kill_orphan(sb, err)) < 0) || (r = unmount_left(sb, err)) < 0) {
        sandbox_free(sb);
        return r;
    }
    unshare_binds(sb);
    if (rmdir(sb->rootfs_dir) < 0 && errno != ENOENT)
        r = berth_err_set(err, -errno, "rmdir %s: %s", sb->rootfs_dir, strerror(errno));
    /* qemu is gone, so is the tap; the network drivers have detached by now. */
    hv_net_clear(&sb->net);
    if (sb->netns) {
        int r2 = hv_net_netns_remove(sb->netns, r < 0 ? NULL : err);
        if (r == 0)
            r = r2;
    }
    sandbox_free(sb);
    return r;
}

static void hv_sandbox_release(void *priv, void *sandbox)
{
    struct hv_sandbox *sb = sandbox;
    vm_halt(sb, 0);
    sandbox_free(sb);
}

/* ---- containers ---- */

/*
 * A VM has one network stack, the guest's, and one container: the container
 * shares it. On networks the agent sets it up from create's "network"
 * member; with --network none the VM has no NIC and the guest has only its
 * loopback (up from boot), the same view a namespace of its own would give,
 * without the 30-60 ms that cloning one costs under TCG. The spec's network
 * namespace (the host's sandbox namespace, or a new one) goes. A driver
 * hosting several containers in one VM (lcow) must keep them apart instead.
 */
static void guest_share_netns(json_t *oci)
{
    json_t *nss = json_object_get(json_object_get(oci, "linux"), "namespaces");
    size_t i = 0;

    while (i < json_array_size(nss)) {
        const char *t = json_string_value(json_object_get(json_array_get(nss, i), "type"));
        if (t && strcmp(t, "network") == 0)
            json_array_remove(nss, i);
        else
            i++;
    }
}

/* Mount the storage driver's rootfs on @dir: the entry for "/" only (what overlay gives). */
static int mount_rootfs(const berth_mount_list_t *ml, const char *dir, berth_err_t *err)
{
    const berth_mount_t *m = NULL;
    char why[BERTH_ERR_MSG_MAX];
    unsigned long fl = 0;
    int r;

    if (!ml || ml->n_mounts == 0)
        return berth_err_set(err, -EINVAL, "hyperv: the container has no root filesystem");
    for (uint32_t i = 0; i < ml->n_mounts; i++) {
        const char *t = ml->mounts[i].target ? ml->mounts[i].target : "";
        if (t[0] && strcmp(t, "/") != 0)
            return berth_err_set(err, -ENOTSUP,
                                 "hyperv: rootfs mounts below / (%s) are not supported yet", t);
        m = &ml->mounts[i];
    }
    if (m->flags & BERTH_MOUNT_F_READONLY)
        fl |= MS_RDONLY;
    if (m->type && strcmp(m->type, "overlay") == 0) {
        if ((r = storage_overlay_mount(m, dir, why, sizeof(why))) < 0)
            return berth_err_set(err, r, "hyperv: rootfs: %s", why);
        return 0;
    }
    if (m->type && strcmp(m->type, "bind") == 0) {
        if (mount(m->source, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
            return berth_err_set(err, -errno, "hyperv: rootfs: bind %s: %s", m->source,
                                 strerror(errno));
        return 0;
    }
    return berth_err_set(err, -ENOTSUP, "hyperv: rootfs of type %s is not supported yet",
                         m->type ? m->type : "(none)");
}

/* Whether OCI mount @m has option @opt. */
static int has_option(json_t *m, const char *opt)
{
    size_t k;
    json_t *o;

    json_array_foreach (json_object_get(m, "options"), k, o) {
        const char *s = json_string_value(o);
        if (s && strcmp(s, opt) == 0)
            return 1;
    }
    return 0;
}

static int is_bind(json_t *m)
{
    const char *type = json_string_value(json_object_get(m, "type"));
    return (type && strcmp(type, "bind") == 0) || has_option(m, "bind") || has_option(m, "rbind");
}

/*
 * Undo share_binds(): every entry of binds_dir unmounted and removed, then
 * the directory. By what is there, not by what this process bound: a
 * sandbox reopened after its shim was killed cleans up the same way. An
 * entry that stays mounted is never removed through (rmdir and unlink
 * refuse a mount point).
 */
static void unshare_binds(struct hv_sandbox *sb)
{
    DIR *d = opendir(sb->binds_dir);
    struct dirent *de;
    char path[PATH_MAX];

    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", sb->binds_dir, de->d_name);
        if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: umount %s: %s", path, strerror(errno));
        if (remove(path) < 0 && errno != ENOENT)
            hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: remove %s: %s", path, strerror(errno));
    }
    if (d)
        closedir(d);
    if (rmdir(sb->binds_dir) < 0 && errno != ENOENT)
        hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: rmdir %s: %s", sb->binds_dir, strerror(errno));
    sb->share_binds = 0;
}

/*
 * The container's bind mounts (the shim's /etc/hosts and friends, volumes,
 * -v): their sources are host paths, which mean nothing in the guest. Each
 * source is bound at <binds_dir>/N, a directory qemu shares as
 * HV_9P_BINDS_TAG, and the spec the agent gets names it by the relative
 * path "N" (the agent resolves it against where it mounted the share;
 * docs/agent-protocol.md). Everything is bound before qemu starts, since
 * qemu's 9p backend would not see a later mount below its share (see the
 * top). A read-only mount is made read-only here too: the guest's kernel
 * is not trusted with the host's files. Only directories and regular
 * files: a socket or a device node would mean something else on the far
 * side of 9p.
 */
static int share_binds(struct hv_ctr *c, json_t *spec, berth_err_t *err)
{
    struct hv_sandbox *sb = c->sb;
    char path[PATH_MAX], name[16];
    size_t i;
    json_t *m;
    int r;

    json_array_foreach (json_object_get(spec, "mounts"), i, m) {
        const char *src = json_string_value(json_object_get(m, "source"));
        const char *dst = json_string_value(json_object_get(m, "destination"));
        struct stat st;
        int fd;

        if (!is_bind(m))
            continue;
        if (!src || src[0] != '/') {
            r = berth_err_set(err, -EINVAL, "hyperv: bind mount on %s: the source must be absolute",
                              dst ? dst : "?");
            goto fail;
        }
        if (stat(src, &st) < 0) {
            r = berth_err_set(err, -errno, "hyperv: bind mount source %s: %s", src,
                              strerror(errno));
            goto fail;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
            r = berth_err_set(err, -ENOTSUP,
                              "hyperv: bind mount source %s: only directories and regular files "
                              "can be shared with the VM",
                              src);
            goto fail;
        }
        if (c->n_binds == 0 && mkdir(sb->binds_dir, 0700) < 0 && errno != EEXIST) {
            r = berth_err_set(err, -errno, "hyperv: mkdir %s: %s", sb->binds_dir, strerror(errno));
            goto fail;
        }
        snprintf(path, sizeof(path), "%s/%u", sb->binds_dir, c->n_binds);
        if (S_ISDIR(st.st_mode))
            r = mkdir(path, 0755);
        else if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) >= 0)
            r = close(fd);
        else
            r = -1;
        if (r < 0) {
            r = berth_err_set(err, -errno, "hyperv: %s: %s", path, strerror(errno));
            goto fail;
        }
        if (mount(src, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
            r = berth_err_set(err, -errno, "hyperv: bind %s: %s", src, strerror(errno));
            remove(path);
            goto fail;
        }
        c->n_binds++;
        if (has_option(m, "ro") &&
            mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
            r = berth_err_set(err, -errno, "hyperv: read-only bind of %s: %s", src,
                              strerror(errno));
            goto fail;
        }
        snprintf(name, sizeof(name), "%u", c->n_binds - 1);
        json_object_set_new(m, "source", json_string(name));
    }
    sb->share_binds = c->n_binds > 0;
    return 0;
fail:
    unshare_binds(sb);
    c->n_binds = 0;
    return r;
}

/* The spec the agent runs (the agent ignores root.path for a 9p root). */
static json_t *guest_spec(const char *text, berth_err_t *err)
{
    json_error_t je;
    json_t *spec = json_loads(text ? text : "", 0, &je);

    if (!spec)
        berth_err_set(err, -EINVAL, "hyperv: bad OCI spec: %s", je.text);
    return spec;
}

/*
 * Relay host fd @h (duplicated) as stream @sid (0: a new id) in one
 * direction; its id goes into @stdio under @key (null without a handle).
 */
static int add_stream(struct hv_sandbox *sb, berth_handle_t h, int input, uint32_t sid,
                      json_t *stdio, const char *key, berth_err_t *err)
{
    struct hv_stream *s;
    int fd;

    if (h < 0) {
        json_object_set_new(stdio, key, json_null());
        return 0;
    }
    if ((fd = fcntl((int)h, F_DUPFD_CLOEXEC, 3)) < 0)
        return berth_err_set(err, -errno, "hyperv: dup %s: %s", key, strerror(errno));
    if (!(s = calloc(1, sizeof(*s)))) {
        close(fd);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    s->fd = fd;
    s->input = input;
    agent_credit_init(&s->credit);
    pthread_mutex_lock(&sb->mu);
    s->sid = sid ? sid : sb->next_sid++;
    s->next = sb->streams;
    sb->streams = s;
    pthread_mutex_unlock(&sb->mu);
    json_object_set_new(stdio, key, json_integer(s->sid));
    return 0;
}

/*
 * A terminal: the guest's process gets a terminal of its own (the agent's);
 * here a host pty carries its bytes, raw, so that only the guest's line
 * discipline acts on them. The caller gets the master; the relay copies
 * the slave both ways as one stream id.
 */
static int add_tty(struct hv_sandbox *sb, berth_stdio_t *io, json_t *stdio, berth_err_t *err)
{
    struct termios t;
    struct winsize ws = { .ws_col = io->tty_cols, .ws_row = io->tty_rows };
    char name[128];
    int m, sl, r;
    uint32_t sid;

    if ((m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
        return berth_err_set(err, -errno, "hyperv: posix_openpt: %s", strerror(errno));
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0 ||
        (sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
        r = berth_err_set(err, -errno, "hyperv: pty: %s", strerror(errno));
        close(m);
        return r;
    }
    if (tcgetattr(sl, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(sl, TCSANOW, &t);
    }
    if (ws.ws_col && ws.ws_row)
        ioctl(m, TIOCSWINSZ, &ws);
    pthread_mutex_lock(&sb->mu);
    sid = sb->next_sid++;
    pthread_mutex_unlock(&sb->mu);
    json_object_set_new(stdio, "tty", json_true());
    json_object_set_new(stdio, "cols", json_integer(io->tty_cols ? io->tty_cols : 80));
    json_object_set_new(stdio, "rows", json_integer(io->tty_rows ? io->tty_rows : 24));
    json_object_set_new(stdio, "stderr", json_null());
    if ((r = add_stream(sb, sl, 1, sid, stdio, "stdin", err)) < 0 ||
        (r = add_stream(sb, sl, 0, sid, stdio, "stdout", err)) < 0) {
        close(sl);
        close(m);
        return r;
    }
    close(sl);
    io->tty_master = m;
    return 0;
}

/* The "stdio" member of create/exec for @io, with the relay's streams set up. */
static int stdio_json(struct hv_sandbox *sb, berth_stdio_t *io, json_t **ret, berth_err_t *err)
{
    json_t *stdio = json_pack("{s:b}", "tty", 0);
    int r;

    if (!stdio)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (io && (io->flags & BERTH_STDIO_F_TTY))
        r = add_tty(sb, io, stdio, err);
    else if ((r = add_stream(sb, io ? io->in : -1, 1, 0, stdio, "stdin", err)) >= 0 &&
             (r = add_stream(sb, io ? io->out : -1, 0, 0, stdio, "stdout", err)) >= 0)
        r = add_stream(sb, io ? io->err : -1, 0, 0, stdio, "stderr", err);
    if (r < 0) {
        json_decref(stdio);
        return r;
    }
    *ret = stdio;
    return 0;
}

static void ctr_free(struct hv_ctr *c)
{
    if (c->init.evfd >= 0)
        close(c->init.evfd);
    free(c);
}

static void ctr_unmount(struct hv_ctr *c)
{
    unshare_binds(c->sb);
    c->n_binds = 0;
    if (c->mounted && umount2(c->sb->rootfs_dir, MNT_DETACH) < 0)
        hv_log(c->sb->p, BERTH_LOG_WARNING, "hyperv: umount %s: %s", c->sb->rootfs_dir,
               strerror(errno));
    c->mounted = 0;
}

/*
 * The container's seccomp profile (linux.seccomp of @oci) compiled here, as
 * the process driver does on a host (its code, and its cache of compiled
 * filters under this driver's state dir), for create's "seccomp" member: a
 * new object, or NULL when the spec has no profile or it does not compile
 * here (the agent then compiles it, and reports what is wrong with it).
 * Compiling in the guest costs 0.1 s and more under TCG, every VM's cache
 * being empty; here it is a cache hit.
 */
static json_t *seccomp_member(json_t *oci)
{
    json_t *sc = json_object_get(json_object_get(oci, "linux"), "seccomp"), *m = NULL;
    struct sock_fprog prog = { 0 };
    char *b64;

    if (!sc || process_seccomp_compile(sc, &prog, NULL) < 0)
        return NULL;
    if ((b64 = berth__base64_encode(prog.filter, prog.len * sizeof(struct sock_filter))))
        m = json_pack("{s:I, s:s}", "arch", (json_int_t)seccomp_arch_native(), "bpf", b64);
    free(b64);
    free(prog.filter);
    return m;
}

static int hv_container_create(void *priv, void *sandbox, const berth_container_spec_t *spec,
                               uint32_t flags, void **ret_container, berth_err_t *err)
{
    struct hv_sandbox *sb = sandbox;
    struct hv_ctr *c;
    json_t *oci, *stdio, *req, *seccomp = NULL, *reply = NULL;
    berth_stdio_t *io = spec->stdio;
    int r;

    if (sb->ctr)
        return berth_err_set(err, -ENOTSUP, "hyperv: one container per sandbox");
    if (!(oci = guest_spec(spec->oci_spec_json, err)))
        return -EINVAL;
    if (!(c = calloc(1, sizeof(*c)))) {
        json_decref(oci);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    c->sb = sb;
    c->init.sb = sb;
    /* The agent takes 1-64 characters: the id's first 64 are the whole id. */
    snprintf(c->id, sizeof(c->id), "%.64s", spec->id);
    snprintf(sb->ctr_id, sizeof(sb->ctr_id), "%.12s", spec->id);
    if ((c->init.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        r = berth_err_set(err, -errno, "eventfd: %s", strerror(errno));
        goto fail;
    }
    hv_trace("container-create");
    if ((r = mount_rootfs(spec->rootfs, sb->rootfs_dir, err)) < 0)
        goto fail;
    c->mounted = 1;
    hv_trace("rootfs-mounted");
    if ((r = share_binds(c, oci, err)) < 0)
        goto fail;
    hv_trace("binds-shared");
    /* The sandbox's eth0, redirected to a tap for the VM, before qemu starts (it takes the tap). */
    if (sb->netns) {
        if ((r = hv_net_attach(sb->netns, "eth0", hv_net_find_tc(sb->p->tc), &sb->net, err)) < 0)
            goto fail;
    }
    guest_share_netns(oci);
    /* Before the boot, so the filter is ready at hello (a cache hit takes ~1 ms). */
    seccomp = seccomp_member(oci);
    hv_trace("seccomp-compiled");
    /* The VM boots here (see the top): sized by the container's own limits. */
    size_vm(sb, json_object_get(json_object_get(oci, "linux"), "resources"));
    if ((r = vm_boot(sb, err)) < 0)
        goto fail;
    if (sb->net.config && !sb->agent_net) {
        r = berth_err_set(err, -ENOTSUP,
                          "hyperv: the guest's agent can't configure networks (no \"net\" "
                          "cap): an older initramfs?");
        goto fail;
    }
    if ((r = stdio_json(sb, io, &stdio, err)) < 0)
        goto fail;
    /*
     * The filter goes instead of the profile (fewer bytes through the port
     * and to parse) when the agent takes filters for this architecture;
     * otherwise the profile alone, compiled in the guest.
     */
    if (seccomp && sb->agent_seccomp && sb->agent_arch == seccomp_arch_native())
        json_object_del(json_object_get(oci, "linux"), "seccomp");
    else {
        json_decref(seccomp);
        seccomp = NULL;
    }
    req = json_pack("{s:s, s:s, s:O, s:{s:s, s:s}, s:o}", "op", "create", "container", c->id,
                    "config", oci, "rootfs", "type", "9p", "tag", HV_9P_TAG, "stdio", stdio);
    if (req && c->n_binds)
        json_object_set_new(req, "binds",
                            json_pack("{s:s, s:s}", "type", "9p", "tag", HV_9P_BINDS_TAG));
    if (req && sb->net.config)
        json_object_set(req, "network", sb->net.config);
    if (req && seccomp)
        json_object_set(req, "seccomp", seccomp);
    if (req && sb->agent_trace && getenv("BERTH_HYPERV_TRACE"))
        json_object_set_new(req, "trace", json_true());
    if ((r = request(sb, req, HV_REQ_TIMEOUT_MS, &reply, err)) < 0)
        goto fail;
    hv_trace_agent("create", reply);
    json_decref(reply);
    json_decref(seccomp);
    hv_trace("created");
    wake(sb); /* the relay polls the new input streams */
    json_decref(oci);
    sb->ctr = c;
    *ret_container = c;
    return 0;
fail:
    json_decref(oci);
    json_decref(seccomp);
    vm_halt(sb, 0);
    hv_net_clear(&sb->net);
    ctr_unmount(c);
    ctr_free(c);
    return r;
}

/* Ask for @pr's end; the reply completes its eventfd whenever it comes. */
static int queue_wait(struct hv_sandbox *sb, const char *ctr_id, struct hv_proc *pr,
                      berth_err_t *err)
{
    struct hv_req *w = calloc(1, sizeof(*w));
    json_t *req;
    int r = 0;

    if (!w)
        return berth_err_set(err, -ENOMEM, "out of memory");
    w->proc = pr;
    req = json_pack("{s:s, s:s}", "op", "wait", "container", ctr_id);
    if (req && pr->exec_id[0])
        json_object_set_new(req, "exec", json_string(pr->exec_id));
    pthread_mutex_lock(&sb->mu);
    if (sb->dead) {
        proc_lost(sb, pr);
        free(w);
    } else if (!req || queue_req(sb, req, w) < 0) {
        free(w);
        r = berth_err_set(err, -ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&sb->mu);
    json_decref(req);
    return r;
}

/* Forget the pending waits of @pr (under mu): it is going away. */
static void forget_waits(struct hv_sandbox *sb, struct hv_proc *pr)
{
    for (struct hv_req **pp = &sb->reqs; *pp;) {
        struct hv_req *q = *pp;
        if (q->proc == pr) {
            *pp = q->next;
            free(q);
        } else {
            pp = &q->next;
        }
    }
}

static int hv_container_start(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;
    json_t *req = json_pack("{s:s, s:s}", "op", "start", "container", c->id), *reply = NULL;
    int r;

    hv_trace("start");
    if (req && sb->agent_trace && getenv("BERTH_HYPERV_TRACE"))
        json_object_set_new(req, "trace", json_true());
    if ((r = request(sb, req, HV_REQ_TIMEOUT_MS, &reply, err)) < 0)
        return r;
    hv_trace_agent("start", reply);
    json_decref(reply);
    hv_trace("started");
    return queue_wait(sb, c->id, &c->init, err);
}

static void hv_container_release(void *priv, void *container);

static int hv_container_delete(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;
    int r = 0;

    hv_trace("container-delete");
    if (sb->reopened) {
        /* Its shim is gone, and the VM was all of the container: end what it left. */
        if (!(flags & BERTH_DELETE_FORCE) && orphan_alive(sb))
            r = berth_err_set(err, -EBUSY, "hyperv: container %.12s: its VM still runs", c->id);
        else if ((r = kill_orphan(sb, err)) == 0)
            r = unmount_left(sb, err);
    } else if (sb->started && !sb->dead && unpause_for_end(sb) == 0) {
        r = request(sb,
                    json_pack("{s:s, s:s, s:b}", "op", "delete", "container", c->id, "force",
                              (flags & BERTH_DELETE_FORCE) != 0),
                    HV_REQ_TIMEOUT_MS, NULL, err);
    }
    if (r == -EBUSY) {
        /* It still runs, and stays; the handle goes all the same, as the ABI says. */
        hv_container_release(priv, c);
        return r;
    }
    /* The guest no longer uses the share; it can go even if the agent failed. */
    ctr_unmount(c);
    pthread_mutex_lock(&sb->mu);
    proc_complete(&c->init, 128 + SIGKILL, SIGKILL, 0);
    /* A wait request still pending points at the init: forget it. */
    forget_waits(sb, &c->init);
    pthread_mutex_unlock(&sb->mu);
    sb->ctr = NULL;
    ctr_free(c);
    return r;
}

static void hv_container_release(void *priv, void *container)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;

    pthread_mutex_lock(&sb->mu);
    forget_waits(sb, &c->init);
    pthread_mutex_unlock(&sb->mu);
    sb->ctr = NULL;
    ctr_free(c);
}

static void *hv_container_init_process(void *priv, void *container)
{
    struct hv_ctr *c = container;
    return &c->init;
}

/* Signal @exec_id ("" for the init) in the guest. */
static int send_signal(struct hv_sandbox *sb, const char *exec_id, int sig, berth_err_t *err)
{
    json_t *req =
        json_pack("{s:s, s:s, s:i}", "op", "signal", "container", sb->ctr->id, "signal", sig);
    if (req && exec_id[0])
        json_object_set_new(req, "exec", json_string(exec_id));
    return request(sb, req, HV_REQ_TIMEOUT_MS, NULL, err);
}

static int hv_process_signal(void *priv, void *process, int32_t sig, uint32_t flags,
                             berth_err_t *err)
{
    struct hv_proc *pr = process;
    struct hv_sandbox *sb = pr->sb;
    int r = 0;

    if (!sb->ctr)
        return berth_err_set(err, -ESRCH, "hyperv: no such container");
    pthread_mutex_lock(&sb->qmp_mu);
    if (sb->paused && sig == SIGKILL && !pr->exec_id[0]) {
        /*
         * Killing a paused container: a frozen cgroup lets SIGKILL through,
         * and Docker unpauses what it kills; here the agent has to run to
         * send it, and the VM ends with the container anyway.
         */
        r = vm_cont(sb, NULL, err);
    } else if (sb->paused) {
        /* Held back until the VM runs again, as a frozen cgroup holds a pending signal. */
        struct hv_pending *q = calloc(1, sizeof(*q));
        if (!q) {
            r = berth_err_set(err, -ENOMEM, "out of memory");
        } else {
            snprintf(q->exec_id, sizeof(q->exec_id), "%s", pr->exec_id);
            q->sig = (int)sig;
            pthread_mutex_lock(&sb->mu);
            q->next = sb->pending;
            sb->pending = q;
            pthread_mutex_unlock(&sb->mu);
            r = 1;
        }
    }
    pthread_mutex_unlock(&sb->qmp_mu);
    if (r != 0)
        return r < 0 ? r : 0;
    return send_signal(sb, pr->exec_id, (int)sig, err);
}

static int is_paused(struct hv_sandbox *sb)
{
    int paused;

    pthread_mutex_lock(&sb->mu);
    paused = sb->paused;
    pthread_mutex_unlock(&sb->mu);
    return paused;
}

static int hv_process_wait(void *priv, void *process, uint32_t flags, berth_exit_status_t *ret_exit,
                           berth_err_t *err)
{
    struct hv_proc *pr = process;
    struct hv_sandbox *sb = pr->sb;

    pthread_mutex_lock(&sb->mu);
    while (!pr->done && !(flags & BERTH_WAIT_NOHANG))
        pthread_cond_wait(&sb->cv, &sb->mu);
    if (!pr->done) {
        pthread_mutex_unlock(&sb->mu);
        return -EAGAIN;
    }
    {
        /* Only what the caller's struct holds (an older core's is shorter); its size stays. */
        uint32_t size = ret_exit->struct_size;
        memcpy(ret_exit, &pr->st, size && size < sizeof(pr->st) ? size : sizeof(pr->st));
        if (size)
            ret_exit->struct_size = size;
    }
    pthread_mutex_unlock(&sb->mu);
    return 0;
}

static int hv_process_wait_handle(void *priv, void *process, berth_handle_t *ret_handle,
                                  berth_err_t *err)
{
    struct hv_proc *pr = process;
    *ret_handle = pr->evfd;
    return 0;
}

static int hv_process_resize(void *priv, void *process, uint16_t cols, uint16_t rows,
                             uint32_t flags, berth_err_t *err)
{
    struct hv_proc *pr = process;
    struct hv_sandbox *sb = pr->sb;
    json_t *req;

    if (!sb->ctr)
        return berth_err_set(err, -ESRCH, "hyperv: no such container");
    if (is_paused(sb))
        return berth_err_set(err, -EAGAIN, "hyperv: the container is paused");
    req = json_pack("{s:s, s:s, s:i, s:i}", "op", "resize", "container", sb->ctr->id, "cols",
                    (int)cols, "rows", (int)rows);
    if (req && pr->exec_id[0])
        json_object_set_new(req, "exec", json_string(pr->exec_id));
    return request(sb, req, HV_REQ_TIMEOUT_MS, NULL, err);
}

static int hv_process_exec(void *priv, void *container, const berth_process_spec_t *spec,
                           uint32_t flags, void **ret_process, berth_err_t *err)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;
    berth_stdio_t *io = spec->stdio;
    struct hv_proc *pr;
    json_error_t je;
    json_t *proc, *stdio, *req;
    int r;

    if (!spec->id || strlen(spec->id) > 64)
        return berth_err_set(err, -EINVAL, "hyperv: exec ids are 1-64 characters");
    if (is_paused(sb))
        return berth_err_set(err, -EBUSY,
                             "hyperv: container %.12s is paused, unpause the container before exec",
                             c->id);
    if (!(proc = json_loads(spec->process_json ? spec->process_json : "", 0, &je)))
        return berth_err_set(err, -EINVAL, "hyperv: bad process object: %s", je.text);
    if (!(pr = calloc(1, sizeof(*pr)))) {
        json_decref(proc);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    pr->sb = sb;
    snprintf(pr->exec_id, sizeof(pr->exec_id), "%s", spec->id);
    if ((pr->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        r = berth_err_set(err, -errno, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if ((r = stdio_json(sb, io, &stdio, err)) < 0)
        goto fail;
    req = json_pack("{s:s, s:s, s:s, s:O, s:o}", "op", "exec", "container", c->id, "exec",
                    pr->exec_id, "process", proc, "stdio", stdio);
    if ((r = request(sb, req, HV_REQ_TIMEOUT_MS, NULL, err)) < 0)
        goto fail;
    wake(sb);
    if ((r = queue_wait(sb, c->id, pr, err)) < 0)
        goto fail;
    json_decref(proc);
    *ret_process = pr;
    return 0;
fail:
    /* Streams already added end with the sandbox (their fds stay ours until then). */
    json_decref(proc);
    if (pr->evfd >= 0)
        close(pr->evfd);
    free(pr);
    return r;
}

static void hv_process_release(void *priv, void *process)
{
    struct hv_proc *pr = process;
    struct hv_sandbox *sb = pr->sb;

    if (!pr->exec_id[0])
        return; /* the init belongs to its container */
    pthread_mutex_lock(&sb->mu);
    forget_waits(sb, pr);
    pthread_mutex_unlock(&sb->mu);
    close(pr->evfd);
    free(pr);
}

/* ---- pause, stats ---- */

/*
 * The container's stats from the agent (the process driver's object, read
 * from the container's cgroup in the guest), as a new object: a container
 * without a memory limit is limited by its VM, so the limit is the VM's
 * memory then; "vm" tells the VM's size.
 */
static int fetch_stats(struct hv_ctr *c, json_t **ret, berth_err_t *err)
{
    struct hv_sandbox *sb = c->sb;
    json_t *reply = NULL, *st, *mem, *lim;
    json_int_t vm_bytes = (json_int_t)sb->mem_mib << 20;
    int r;

    if ((r = request(sb, json_pack("{s:s, s:s}", "op", "stats", "container", c->id),
                     HV_REQ_TIMEOUT_MS, &reply, err)) < 0)
        return r;
    st = json_object_get(reply, "stats");
    if (!json_is_object(st)) {
        json_decref(reply);
        return berth_err_set(err, -EPROTO, "hyperv: the agent's stats are not an object");
    }
    st = json_deep_copy(st);
    json_decref(reply);
    if (!st)
        return berth_err_set(err, -ENOMEM, "out of memory");
    mem = json_object_get(st, "memory");
    lim = json_object_get(mem, "limit");
    if (json_is_object(mem) && (!json_is_integer(lim) || json_integer_value(lim) < 0))
        json_object_set_new(mem, "limit", json_integer(vm_bytes));
    json_object_set_new(st, "vm",
                        json_pack("{s:I, s:i}", "memory", vm_bytes, "vcpus", (int)sb->vcpus));
    *ret = st;
    return 0;
}

/* ---- berth info ---- */

/*
 * A bzImage's release: its x86 boot protocol header ("HdrS" at 0x202) has
 * at 0x20e the offset (from 0x200) of a "RELEASE (builder) #n ..." string.
 * 1 when found.
 */
static int bzimage_release(int fd, char *buf, size_t len)
{
    unsigned char hdr[0x210];
    char s[128];
    unsigned off;

    if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || memcmp(hdr + 0x202, "HdrS", 4))
        return 0;
    off = (unsigned)hdr[0x20e] | (unsigned)hdr[0x20f] << 8;
    if (!off || pread(fd, s, sizeof(s) - 1, 0x200 + (off_t)off) <= 0)
        return 0;
    s[sizeof(s) - 1] = '\0';
    s[strcspn(s, " ")] = '\0';
    snprintf(buf, len, "%s", s);
    return buf[0] != '\0';
}

/*
 * The release (`uname -r` in the guest) of the kernel at @path: the
 * kernel.release the build writes beside it; else a bzImage's header; else
 * the "Linux version X" banner an uncompressed vmlinux carries in .rodata.
 */
static void kernel_release(const char *path, char *buf, size_t len)
{
    static const char banner[] = "Linux version ";
    const char *slash = strrchr(path, '/');
    char side[PATH_MAX], chunk[65536 + sizeof(banner)];
    size_t keep = 0;
    ssize_t n;
    FILE *f;
    int fd;

    buf[0] = '\0';
    if (snprintf(side, sizeof(side), "%.*s/kernel.release", slash ? (int)(slash - path) : 1,
                 slash ? path : ".") < (int)sizeof(side) &&
        (f = fopen(side, "re"))) {
        if (fgets(buf, (int)len, f))
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
        if (buf[0])
            return;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    if (bzimage_release(fd, buf, len)) {
        close(fd);
        return;
    }
    /* Chunks overlap by the banner's length so that one split between two is still found. */
    while ((n = read(fd, chunk + keep, sizeof(chunk) - keep - 1)) > 0) {
        char *hit;
        size_t have = keep + (size_t)n;
        chunk[have] = '\0';
        hit = memmem(chunk, have, banner, sizeof(banner) - 1);
        if (hit && (size_t)(chunk + have - hit) > sizeof(banner) + 64) {
            char *v = hit + sizeof(banner) - 1;
            size_t k = strcspn(v, " ");
            snprintf(buf, len, "%.*s", (int)(k < len ? k : len - 1), v);
            break;
        }
        /* A hit too near the end is read again with what follows it. */
        keep = hit ? (size_t)(chunk + have - hit) : sizeof(banner) - 1;
        if (keep > have)
            keep = have;
        memmove(chunk, chunk + have - keep, keep);
    }
    close(fd);
}

static void blob_release(berth_blob_t *b)
{
    if (!b)
        return;
    free(b->data);
    free(b);
}

/* @o (taken; NULL means out of memory) as a blob of its JSON text in *ret. */
static int json_blob(json_t *o, berth_blob_t **ret, berth_err_t *err)
{
    berth_blob_t *b = o ? calloc(1, sizeof(*b)) : NULL;

    if (b)
        b->data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!b || !b->data) {
        free(b);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    b->struct_size = sizeof(*b);
    b->len = strlen(b->data);
    b->release = blob_release;
    *ret = b;
    return 0;
}

static int hv_container_stats(void *priv, void *container, uint32_t flags, berth_blob_t **ret_stats,
                              berth_err_t *err)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;
    json_t *st = NULL;
    int r = 0;

    if (!sb->started)
        return berth_err_set(err, -ESRCH, "hyperv: the VM is not running");
    /* Under qmp_mu: the VM is not paused or resumed meanwhile. */
    pthread_mutex_lock(&sb->qmp_mu);
    if (is_paused(sb)) {
        /* Nothing changes in a stopped VM, and its agent can't answer: what was read at the pause. */
        pthread_mutex_lock(&sb->mu);
        st = sb->paused_stats ? json_deep_copy(sb->paused_stats) : NULL;
        pthread_mutex_unlock(&sb->mu);
        if (!st)
            r = berth_err_set(err, -EAGAIN, "hyperv: the VM is paused: no stats");
    } else {
        r = fetch_stats(c, &st, err);
    }
    pthread_mutex_unlock(&sb->qmp_mu);
    if (r < 0)
        return r;
    return json_blob(st, ret_stats, err);
}

/*
 * Pause = the VM's vCPUs stop (QMP "stop"): the guest's clocks, the agent
 * and every process of the container stand still, and nothing in the guest
 * can tell. The stats are read first, for stats while paused.
 */
static int hv_container_pause(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;
    json_t *st = NULL;
    int r = 0;

    if (!sb->started)
        return berth_err_set(err, -ESRCH, "hyperv: the VM is not running");
    pthread_mutex_lock(&sb->qmp_mu);
    if (!is_paused(sb)) {
        if (fetch_stats(c, &st, NULL) < 0)
            st = NULL;
        if ((r = qmp_exec(sb, "stop", err)) == 0) {
            pthread_mutex_lock(&sb->mu);
            sb->paused = 1;
            json_decref(sb->paused_stats);
            sb->paused_stats = st;
            st = NULL;
            pthread_mutex_unlock(&sb->mu);
            wake(sb); /* no ping while the VM stands still */
        }
    }
    pthread_mutex_unlock(&sb->qmp_mu);
    json_decref(st);
    return r;
}

/* Resume = QMP "cont"; then the signals sent while paused reach their processes. */
static int hv_container_resume(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;
    struct hv_pending *list = NULL;
    int r = 0;

    if (!sb->started)
        return berth_err_set(err, -ESRCH, "hyperv: the VM is not running");
    pthread_mutex_lock(&sb->qmp_mu);
    if (is_paused(sb))
        r = vm_cont(sb, &list, err);
    pthread_mutex_unlock(&sb->qmp_mu);
    while (list) {
        struct hv_pending *q = list;
        berth_err_t e = { 0 };
        list = q->next;
        /* The process may have ended meanwhile (a SIGKILL before it): not the resume's failure. */
        if (send_signal(sb, q->exec_id, q->sig, &e) < 0)
            hv_log(sb->p, BERTH_LOG_WARNING, "hyperv: a signal held during the pause: %s%s", e.msg,
                   "");
        free(q);
    }
    return r;
}

/* ---- reopening (the core reaps a container whose shim was killed) ---- */

/*
 * A handle on a sandbox whose shim is gone, from what vm_boot() recorded in
 * its state_dir: no relay and no VM of its own; it only serves
 * container_open and a (forced) delete and destroy, which kill the qemu
 * left behind if it is still the one recorded, unmount the rootfs and
 * remove the mount point.
 */
static int hv_sandbox_open(void *priv, const berth_sandbox_spec_t *spec, uint32_t flags,
                           void **ret_sandbox, berth_err_t *err)
{
    /* With no settings, create builds nothing outside the state dir: only the handle. */
    berth_sandbox_spec_t s = { .struct_size = sizeof(s), .config_json = "{}" };
    struct hv_sandbox *sb;
    char *path;
    json_t *st;
    int r;

    if (!spec || !spec->state_dir)
        return berth_err_set(err, -EINVAL, "hyperv: sandbox_open needs a state_dir");
    s.id = spec->id;
    s.state_dir = spec->state_dir;
    if ((r = hv_sandbox_create(priv, &s, 0, (void **)&sb, err)) < 0)
        return r;
    sb->reopened = 1;
    /* A sandbox on networks left its netns file mounted: destroy unmounts it (netns is NULL). */
    if ((path = path_join(spec->state_dir, "netns")) && access(path, F_OK) == 0)
        sb->netns = path;
    else
        free(path);
    if (!(path = path_join(spec->state_dir, HV_STATE_FILE))) {
        sandbox_free(sb);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    /* No file: the shim died before qemu started, and there is no VM to look for. */
    st = json_load_file(path, 0, NULL);
    free(path);
    sb->orphan_pid = (pid_t)json_integer_value(json_object_get(st, "qemu_pid"));
    sb->orphan_start =
        (unsigned long long)json_integer_value(json_object_get(st, "qemu_start_time"));
    json_decref(st);
    *ret_sandbox = sb;
    return 0;
}

static int hv_container_open(void *priv, void *sandbox, const berth_container_spec_t *spec,
                             uint32_t flags, void **ret_container, berth_err_t *err)
{
    struct hv_sandbox *sb = sandbox;
    struct hv_ctr *c;

    if (!sb || !sb->reopened)
        return berth_err_set(err, -EINVAL,
                             "hyperv: a container is reopened with its sandbox, reopened first");
    if (sb->ctr)
        return berth_err_set(err, -ENOTSUP, "hyperv: one container per sandbox");
    if (!spec || !spec->id)
        return berth_err_set(err, -EINVAL, "hyperv: container_open needs the container's id");
    if (!(c = calloc(1, sizeof(*c))))
        return berth_err_set(err, -ENOMEM, "out of memory");
    c->sb = sb;
    c->init.sb = sb;
    snprintf(c->id, sizeof(c->id), "%.64s", spec->id);
    if ((c->init.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        int r = berth_err_set(err, -errno, "eventfd: %s", strerror(errno));
        free(c);
        return r;
    }
    /* The VM was all of the container: with its qemu gone, the init is gone (as if killed). */
    if (!orphan_alive(sb))
        proc_complete(&c->init, 128 + SIGKILL, SIGKILL, 0);
    sb->ctr = c;
    *ret_container = c;
    return 0;
}

/* Snapshots: off, or on and how many a root keeps now (snapshot_path()). */
static void snapshots_info(struct hv_priv *p, char *buf, size_t size)
{
    char dir[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int n = 0;

    if (!p->snapshots) {
        snprintf(buf, size, "off (hyperv.snapshots)");
        return;
    }
    if (snapshots_dir(p, dir, sizeof(dir)) == 0 && (d = opendir(dir))) {
        while ((de = readdir(d)))
            n += has_suffix(de->d_name, ".vmstate");
        closedir(d);
    }
    snprintf(buf, size, "on under TCG for VMs without NIC or disk: %d kept (at most %d)", n,
             HV_SNAPSHOTS_MAX);
}

/* The accelerator in use and why, the guest kernel (path, release), the initramfs, qemu. */
static int hv_info(void *priv, uint32_t flags, berth_blob_t **ret_info, berth_err_t *err)
{
    struct hv_priv *p = priv;
    char release[128], qemu[PATH_MAX], snaps[128];
    const char *accel = accel_valid(p->accel) ? accel_resolve(p) : "-";
    json_t *o;

    const char *kernel = p->kernel, *source = "berth's guest kernel";
    hv_kernel_t k;
    berth_err_t kerr = { 0 };

    if (wants_distro(p)) {
        source = "the distribution's (fallback; hyperv-guest.md)";
        if (hv_kernel_find_distro("/boot", "/lib/modules", &k, &kerr) == 0) {
            kernel = k.path;
            snprintf(release, sizeof(release), "%s", k.release);
        } else {
            kernel = "none";
            snprintf(release, sizeof(release), "%.120s", kerr.msg);
        }
    } else {
        kernel_release(p->kernel, release, sizeof(release));
    }
    snapshots_info(p, snaps, sizeof(snaps));
    o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "accelerator", accel, "accelerator_why",
        accel_valid(p->accel) ? p->accel_why : "invalid hyperv.accel", "accelerator_setting",
        p->accel, "kernel", kernel, "kernel_source", source, "kernel_release",
        release[0] ? release : "unknown (not readable)", "initrd", p->initrd, "qemu",
        hv_find_program(p->qemu, NULL, qemu, sizeof(qemu)) ? qemu : p->qemu, "snapshots", snaps);
    return json_blob(o, ret_info, err);
}

static const berth_isolation_ops_t hv_ops = {
    BERTH_OPS_INIT(berth_isolation_ops_t),
    .probe = hv_probe,
    .sandbox_create = hv_sandbox_create,
    .sandbox_open = hv_sandbox_open,
    .sandbox_network = hv_sandbox_network,
    .sandbox_destroy = hv_sandbox_destroy,
    .sandbox_release = hv_sandbox_release,
    .container_create = hv_container_create,
    .container_open = hv_container_open,
    .container_start = hv_container_start,
    .container_pause = hv_container_pause,
    .container_resume = hv_container_resume,
    .container_stats = hv_container_stats,
    .container_delete = hv_container_delete,
    .container_release = hv_container_release,
    .container_init_process = hv_container_init_process,
    .process_signal = hv_process_signal,
    .process_wait = hv_process_wait,
    .process_wait_handle = hv_process_wait_handle,
    .process_exec = hv_process_exec,
    .process_release = hv_process_release,
    .process_resize = hv_process_resize,
    .info = hv_info,
};

static const berth_plugin_desc_t hv_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_ISOLATION,
    .name = "hyperv",
    .version = "0.1.0",
    .license = "Apache-2.0",
    .description = "each container in a qemu microvm with its own kernel (berth-agent inside)",
    .capabilities = BERTH_ISOLATION_CAP_VM | BERTH_ISOLATION_CAP_LINUX | BERTH_ISOLATION_CAP_EXEC |
                    BERTH_ISOLATION_CAP_TTY | BERTH_ISOLATION_CAP_PAUSE |
                    BERTH_ISOLATION_CAP_STATS | BERTH_ISOLATION_CAP_NET_NETNS,
    .init = hv_init,
    .fini = hv_fini,
    .ops = &hv_ops,
};

BERTH_PLUGIN_DEFINE(hv_desc)
