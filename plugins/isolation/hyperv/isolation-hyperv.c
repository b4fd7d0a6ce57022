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
 * signalling the process's eventfd.
 *
 * The VM starts at container_create, not at sandbox_create: qemu's 9p
 * backend opens the shared directory once at start and keeps that fd, so
 * the container's rootfs must already be mounted on it when qemu starts (a
 * mount made later would be hidden behind the fd). One container per
 * sandbox, then, which is all berth-shim creates.
 */
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/isolation.h>
#include <berth/plugin.h>
#include <berth/types.h>

#include "../../storage/overlay/storage-overlay-mount.h"
#include "agent-proto.h"
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
    char *kernel_args;    /* "kernel_args": appended to the guest's command line; NULL: none */
    int agent_timeout_ms; /* "agent_timeout_ms": how long a ping may go unanswered */
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
    /* Faults (under mu): */
    char ctr_id[13]; /* the container's short id, for messages */
    int quitting;    /* shutdown was asked for: the VM's end is expected */
    int heartbeat;   /* the agent said hello: pings run */
    /*
     * Set by pause (and cleared by resume) under mu, then wake(): while it
     * is set no ping goes out and an unanswered one is forgotten, because a
     * stopped VM answers nothing; after resume the pings start over.
     */
    int paused;
    json_int_t ping_id;               /* the ping in flight */
    int64_t ping_sent_ms, ping_ok_ms; /* CLOCK_MONOTONIC: when it went out (0: none), last answer */
    char dead_msg[BERTH_ERR_MSG_MAX]; /* for users: which VM ended, why, the console's last lines */
};

struct hv_ctr {
    struct hv_sandbox *sb;
    char id[65];
    int mounted;
    struct hv_proc init;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
            if (json_is_true(json_object_get(obj, "ok"))) {
                proc_complete(q->proc, (int)json_integer_value(json_object_get(obj, "exit_code")),
                              (int)json_integer_value(json_object_get(obj, "signal")),
                              json_integer_value(json_object_get(obj, "finished_ns")));
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
    p->kernel = config_str(cfg, "kernel", "BERTH_HYPERV_KERNEL", HYPERV_DEFAULT_DIR "/vmlinux");
    p->initrd = config_str(cfg, "initrd", "BERTH_HYPERV_INITRD", HYPERV_DEFAULT_DIR "/initrd.cpio");
    /* KVM does not boot this guest on the machines berth is built on yet: TCG until a probe says so. */
    p->accel = config_str(cfg, "accel", "BERTH_HYPERV_ACCEL", "tcg");
    p->qemu = config_str(cfg, "qemu", "BERTH_HYPERV_QEMU", "qemu-system-x86_64");
    json_decref(cfg);
    if (!p->kernel || !p->initrd || !p->accel || !p->qemu) {
        priv_free(p);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    *ret_priv = p;
    return 0;
}

static void hv_fini(void *priv)
{
    struct hv_priv *p = priv;
    if (p)
        priv_free(p);
}

/* Whether @name runs: an executable path, or one on $PATH. */
static int have_program(const char *name)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];

    if (strchr(name, '/'))
        return access(name, X_OK) == 0;
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name) < (int)sizeof(buf) &&
            access(buf, X_OK) == 0)
            return 1;
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

static int hv_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    struct hv_priv *p = priv;

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
                    BERTH_ISOLATION_CAP_TTY;
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
    pthread_mutex_destroy(&sb->mu);
    pthread_cond_destroy(&sb->cv);
    free(sb->state_dir);
    free(sb->rootfs_dir);
    free(sb->console);
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
    int r;

    if (p->bad_config[0]) {
        json_decref(cfg);
        return berth_err_set(err, -EINVAL, "hyperv: %s", p->bad_config);
    }
    if (net && strcmp(net, "none") != 0) {
        /* net is borrowed from cfg: the message first. */
        r = berth_err_set(err, -ENOTSUP,
                          "hyperv: networks are not supported yet (network \"%s\"): use "
                          "--network none",
                          net);
        json_decref(cfg);
        return r;
    }
    if (!(sb = calloc(1, sizeof(*sb)))) {
        json_decref(cfg);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    sb->p = priv;
    sb->vm.pidfd = sb->vm.control_fd = sb->vm.stdio_fd = -1;
    sb->wakefd = -1;
    sb->mem_mib = HV_MEM_DEFAULT;
    sb->vcpus = 1;
    size_vm(sb, json_object_get(cfg, "resources"));
    json_decref(cfg);
    pthread_mutex_init(&sb->mu, NULL);
    pthread_cond_init(&sb->cv, NULL);
    agent_writer_init(&sb->ctl_w);
    agent_writer_init(&sb->io_w);
    agent_reader_init(&sb->ctl_r, AGENT_CONTROL_MAX);
    agent_reader_init(&sb->io_r, AGENT_STDIO_MAX);
    sb->next_sid = 1;
    sb->state_dir = strdup(spec->state_dir);
    sb->rootfs_dir = path_join(spec->state_dir, "rootfs");
    sb->console = path_join(spec->state_dir, "console.log");
    if (!sb->state_dir || !sb->rootfs_dir || !sb->console) {
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
    *ret_sandbox = sb;
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* Start qemu, the relay, and say hello. On failure nothing runs. */
static int vm_boot(struct hv_sandbox *sb, berth_err_t *err)
{
    struct hv_priv *p = sb->p;
    hv_vm_spec_t vs = {
        .qemu = p->qemu,
        .kernel = p->kernel,
        .initrd = p->initrd,
        .accel = p->accel,
        .vcpus = sb->vcpus,
        .mem_mib = sb->mem_mib,
        .share_dir = sb->rootfs_dir,
        .console_log = sb->console,
        .append = p->kernel_args,
    };
    json_t *hello = NULL;
    const char *rel;
    int r;

    if ((r = hv_vm_start(&vs, &sb->vm, err)) < 0)
        return r;
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
    if (r < 0)
        return r;
    rel = json_string_value(json_object_get(hello, "kernel"));
    snprintf(sb->kernel_release, sizeof(sb->kernel_release), "%s", rel ? rel : "");
    json_decref(hello);
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

static int hv_sandbox_network(void *priv, void *sandbox, uint32_t flags,
                              berth_net_attach_t *ret_attach, berth_err_t *err)
{
    ret_attach->type = BERTH_NET_ATTACH_NONE;
    ret_attach->path[0] = '\0';
    ret_attach->netns[0] = '\0';
    return 0;
}

static int hv_sandbox_destroy(void *priv, void *sandbox, uint32_t flags, berth_err_t *err)
{
    struct hv_sandbox *sb = sandbox;
    int r = 0;

    if (sb->started) {
        /* shutdown deletes what still runs; the agent then ends the VM by itself, as expected. */
        pthread_mutex_lock(&sb->mu);
        sb->quitting = 1;
        pthread_mutex_unlock(&sb->mu);
        r = request(sb, json_pack("{s:s}", "op", "shutdown"), HV_REQ_TIMEOUT_MS, NULL, NULL);
        vm_halt(sb, r < 0 ? 0 : HV_STOP_GRACE_MS);
        r = 0;
    }
    if (rmdir(sb->rootfs_dir) < 0 && errno != ENOENT)
        r = berth_err_set(err, -errno, "rmdir %s: %s", sb->rootfs_dir, strerror(errno));
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

/*
 * The spec the agent runs: host paths mean nothing in the guest, so bind
 * mounts (the shim's /etc files, volumes) are left out until they are
 * shared too, and the agent ignores root.path for a 9p root.
 */
static json_t *guest_spec(const char *text, berth_err_t *err)
{
    json_error_t je;
    json_t *spec = json_loads(text ? text : "", 0, &je);
    json_t *mounts, *keep;
    size_t i;
    json_t *m;

    if (!spec) {
        berth_err_set(err, -EINVAL, "hyperv: bad OCI spec: %s", je.text);
        return NULL;
    }
    mounts = json_object_get(spec, "mounts");
    keep = json_array();
    json_array_foreach (mounts, i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        int bind = type && strcmp(type, "bind") == 0;
        size_t k;
        json_t *o;
        json_array_foreach (json_object_get(m, "options"), k, o) {
            const char *s = json_string_value(o);
            if (s && (strcmp(s, "bind") == 0 || strcmp(s, "rbind") == 0))
                bind = 1;
        }
        if (!bind)
            json_array_append(keep, m);
    }
    json_object_set_new(spec, "mounts", keep);
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
    if (c->mounted && umount2(c->sb->rootfs_dir, MNT_DETACH) < 0)
        hv_log(c->sb->p, BERTH_LOG_WARNING, "hyperv: umount %s: %s", c->sb->rootfs_dir,
               strerror(errno));
    c->mounted = 0;
}

static int hv_container_create(void *priv, void *sandbox, const berth_container_spec_t *spec,
                               uint32_t flags, void **ret_container, berth_err_t *err)
{
    struct hv_sandbox *sb = sandbox;
    struct hv_ctr *c;
    json_t *oci, *stdio, *req;
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
    if ((r = mount_rootfs(spec->rootfs, sb->rootfs_dir, err)) < 0)
        goto fail;
    c->mounted = 1;
    /* The VM boots here (see the top): sized by the container's own limits. */
    size_vm(sb, json_object_get(json_object_get(oci, "linux"), "resources"));
    if ((r = vm_boot(sb, err)) < 0)
        goto fail;
    if ((r = stdio_json(sb, io, &stdio, err)) < 0)
        goto fail;
    req = json_pack("{s:s, s:s, s:O, s:{s:s, s:s}, s:o}", "op", "create", "container", c->id,
                    "config", oci, "rootfs", "type", "9p", "tag", HV_9P_TAG, "stdio", stdio);
    if ((r = request(sb, req, HV_REQ_TIMEOUT_MS, NULL, err)) < 0)
        goto fail;
    wake(sb); /* the relay polls the new input streams */
    json_decref(oci);
    sb->ctr = c;
    *ret_container = c;
    return 0;
fail:
    json_decref(oci);
    vm_halt(sb, 0);
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
    int r;

    if ((r = request(sb, json_pack("{s:s, s:s}", "op", "start", "container", c->id),
                     HV_REQ_TIMEOUT_MS, NULL, err)) < 0)
        return r;
    return queue_wait(sb, c->id, &c->init, err);
}

static int hv_container_delete(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct hv_ctr *c = container;
    struct hv_sandbox *sb = c->sb;
    int r = 0;

    if (sb->started && !sb->dead)
        r = request(sb,
                    json_pack("{s:s, s:s, s:b}", "op", "delete", "container", c->id, "force",
                              (flags & BERTH_DELETE_FORCE) != 0),
                    HV_REQ_TIMEOUT_MS, NULL, err);
    if (r == -EBUSY)
        return r;
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

static int hv_process_signal(void *priv, void *process, int32_t sig, uint32_t flags,
                             berth_err_t *err)
{
    struct hv_proc *pr = process;
    struct hv_sandbox *sb = pr->sb;

    if (!sb->ctr)
        return berth_err_set(err, -ESRCH, "hyperv: no such container");
    return request(
        sb,
        json_pack("{s:s, s:s, s:i}", "op", "signal", "container", sb->ctr->id, "signal", (int)sig),
        HV_REQ_TIMEOUT_MS, NULL, err);
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

static const berth_isolation_ops_t hv_ops = {
    BERTH_OPS_INIT(berth_isolation_ops_t),
    .probe = hv_probe,
    .sandbox_create = hv_sandbox_create,
    .sandbox_network = hv_sandbox_network,
    .sandbox_destroy = hv_sandbox_destroy,
    .sandbox_release = hv_sandbox_release,
    .container_create = hv_container_create,
    .container_start = hv_container_start,
    .container_delete = hv_container_delete,
    .container_release = hv_container_release,
    .container_init_process = hv_container_init_process,
    .process_signal = hv_process_signal,
    .process_wait = hv_process_wait,
    .process_wait_handle = hv_process_wait_handle,
    .process_exec = hv_process_exec,
    .process_release = hv_process_release,
    .process_resize = hv_process_resize,
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
                    BERTH_ISOLATION_CAP_TTY,
    .init = hv_init,
    .fini = hv_fini,
    .ops = &hv_ops,
};

BERTH_PLUGIN_DEFINE(hv_desc)
