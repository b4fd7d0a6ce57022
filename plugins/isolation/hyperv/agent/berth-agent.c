/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-agent: PID 1 of a hyperv-isolated container's VM (or, in host mode,
 * a plain process on the host for tests). It serves the agent protocol
 * (docs/agent-protocol.md) on two channels, control and stdio, and runs the
 * container with the process isolation driver linked in, so the guest's
 * containers behave exactly as process-isolated ones on a host.
 *
 * One thread, one poll() loop: requests never block it (a `wait` is
 * answered when the process ends, from its pidfd), process output is read
 * only while the host has granted credit for it, and host input is queued
 * per stream (at most one window) and written when the process reads, so a
 * stalled stream never holds up the others or the control channel.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/random.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

#include "agent.h"
#include "base64.h"
#include "process-internal.h"

#define AGENT_VERSION "0.1.0"
/* Stop reading process output while this much is queued for the stdio port. */
#define STDIO_QUEUE_HIGH (1024u * 1024)
/* How long a wait reply waits for the process's output streams to end after it exited. */
#define DRAIN_GRACE_MS 1000
/* How long the last replies and EOFs may take to go out when the agent quits. */
#define QUIT_FLUSH_MS 2000

/* The process driver, linked in from isolation_process_impl. */
const berth_plugin_desc_t *berth_plugin_entry(void);

static struct {
    int pid1;
    int ctl_in, ctl_out, io_in, io_out;
    agent_reader_t ctl_rd, io_rd;
    agent_writer_t ctl_wr, io_wr;
    int hello_done;
    uint32_t version;
    int quit;      /* leave the loop once the control queue is flushed */
    int exit_code; /* with quit */
    int sigfd;     /* read end of the SIGCHLD self-pipe (PID 1 only) */
    /* Short enough that every path built from it fits PATH_MAX (checked at startup). */
    char state_dir[256];
    const berth_plugin_desc_t *desc;
    const berth_isolation_ops_t *ops;
    void *priv;
    void *sandbox;
    char sandbox_dir[PATH_MAX];
    const char *network;
    struct ctr *ctrs;
    struct out_stream *outs;
    struct in_stream *ins;
} A = { .ctl_in = -1, .ctl_out = -1, .io_in = -1, .io_out = -1, .sigfd = -1 };

void agent_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("berth-agent: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The trace of one create or start that asked for it ("trace": true,
 * docs/agent-protocol.md): its steps with their CLOCK_MONOTONIC times,
 * answered as offsets from the request's arrival. The process driver adds
 * its own steps through process_trace_hook while the op runs. Off, it
 * costs a clock read per request.
 */
#define TRACE_MAX 24
static struct {
    int on;
    int64_t t0; /* when the request's frame was taken from the port */
    unsigned n;
    struct {
        const char *step; /* static */
        int64_t ns;
    } at[TRACE_MAX];
} trace;

static void trace_step(const char *step)
{
    if (trace.on && trace.n < TRACE_MAX) {
        trace.at[trace.n].step = step;
        trace.at[trace.n++].ns = mono_ns();
    }
}

/* Start tracing the op of request @o when it asks for it. */
static void trace_begin(json_t *o)
{
    if (!json_is_true(json_object_get(o, "trace")))
        return;
    trace.on = 1;
    trace.n = 0;
    process_trace_hook = trace_step;
    trace_step("decoded");
}

/* Stop tracing; the steps so far as the reply's "trace" member of @reply (NULL: none). */
static json_t *trace_end(json_t *reply)
{
    json_t *a;

    if (!trace.on)
        return reply;
    trace_step("reply");
    trace.on = 0;
    process_trace_hook = NULL;
    if (!reply)
        reply = json_object();
    a = json_array();
    for (unsigned i = 0; a && i < trace.n; i++)
        json_array_append_new(
            a, json_pack("[s,I]", trace.at[i].step, (json_int_t)(trace.at[i].ns - trace.t0)));
    if (reply && a)
        json_object_set_new(reply, "trace", a);
    else
        json_decref(a);
    return reply;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* ---- the host API the driver sees ---- */

static void host_log(berth_host_t *h, uint32_t level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    agent_log("driver: %s", line);
}

static void *host_alloc(berth_host_t *h, size_t size)
{
    return malloc(size);
}

static void *host_realloc(berth_host_t *h, void *p, size_t size)
{
    return realloc(p, size);
}

static void host_free(berth_host_t *h, void *p)
{
    free(p);
}

static char path_state[PATH_MAX], path_runstate[PATH_MAX];

static const char *host_path(berth_host_t *h, uint32_t which)
{
    switch (which) {
    case BERTH_PATH_ROOT:
    case BERTH_PATH_RUNROOT:
        return A.state_dir;
    case BERTH_PATH_STATE:
        return path_state;
    case BERTH_PATH_RUNSTATE:
        return path_runstate;
    default:
        return NULL;
    }
}

static const char *host_config(berth_host_t *h)
{
    return "{}";
}

static int host_emit_event(berth_host_t *h, const char *type, const char *action, const char *id,
                           const char *attrs, berth_err_t *err)
{
    /* Events are the host engine's business; the agent has no event log. */
    return 0;
}

static const berth_host_api_t host_api = {
    .struct_size = sizeof(berth_host_api_t),
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .log = host_log,
    .alloc = host_alloc,
    .realloc = host_realloc,
    .free = host_free,
    .path = host_path,
    .config = host_config,
    .emit_event = host_emit_event,
};

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(tmp, mode) < 0 && errno != EEXIST ? -errno : 0;
}

static int driver_init(void)
{
    berth_err_t err = { 0 };
    int r;
    A.desc = berth_plugin_entry();
    if (!A.desc || A.desc->kind != BERTH_KIND_ISOLATION || A.desc->abi_major != BERTH_ABI_MAJOR) {
        agent_log("the linked process driver has an unexpected descriptor");
        return -EINVAL;
    }
    A.ops = A.desc->ops;
    snprintf(path_state, sizeof(path_state), "%s/driver", A.state_dir);
    snprintf(path_runstate, sizeof(path_runstate), "%s/driver", A.state_dir);
    if ((r = mkdir_p(path_state, 0700)) < 0) {
        agent_log("mkdir %s: %s", path_state, strerror(-r));
        return r;
    }
    if (A.desc->init && (r = A.desc->init(&host_api, NULL, &A.priv, &err)) < 0) {
        agent_log("process driver init: %s", err.msg);
        return r;
    }
    return 0;
}

/* ---- streams ---- */

static struct out_stream *out_find(uint32_t sid)
{
    for (struct out_stream *s = A.outs; s; s = s->next)
        if (s->sid == sid && !s->discard)
            return s;
    return NULL;
}

static struct in_stream *in_find(uint32_t sid)
{
    for (struct in_stream *s = A.ins; s; s = s->next)
        if (s->sid == sid)
            return s;
    return NULL;
}

static struct out_stream *out_new(uint32_t sid, int fd)
{
    struct out_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->sid = sid;
    s->fd = fd;
    agent_credit_init(&s->credit);
    s->next = A.outs;
    A.outs = s;
    return s;
}

static struct in_stream *in_new(uint32_t sid, int fd)
{
    struct in_stream *s = calloc(1, sizeof(*s));
    if (!s || !(s->buf = malloc(AGENT_STDIO_WINDOW))) {
        free(s);
        return NULL;
    }
    s->sid = sid;
    s->fd = fd;
    s->next = A.ins;
    A.ins = s;
    return s;
}

/* Queue EOF for an output stream whose fd ended (or is abandoned) and close it. */
static void out_finish(struct out_stream *s)
{
    if (s->fd < 0)
        return;
    close_fd(&s->fd);
    if (!s->discard && agent_stdio_put_eof(&A.io_wr, s->sid) < 0)
        agent_log("stdio: out of memory queueing EOF for stream %u", s->sid);
}

static void out_free(struct out_stream *s)
{
    struct out_stream **pp;
    if (!s)
        return;
    out_finish(s);
    for (pp = &A.outs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    free(s);
}

static void in_free(struct in_stream *s)
{
    struct in_stream **pp;
    if (!s)
        return;
    close_fd(&s->fd);
    for (pp = &A.ins; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    free(s->buf);
    free(s);
}

/* Read what the process wrote, as far as credit and the queue allow. */
static void out_readable(struct out_stream *s)
{
    uint8_t buf[AGENT_STDIO_DATA_MAX];
    uint32_t want = s->discard ? sizeof(buf) : agent_credit_allow(&s->credit, sizeof(buf));
    ssize_t n;
    if (want == 0)
        return;
    do
        n = read(s->fd, buf, want);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    /* EIO: a terminal whose last slave fd closed, the terminal's end of file. */
    if (n <= 0) {
        out_finish(s);
        return;
    }
    /* Nobody listens, or the stdio channel is gone: the output is dropped, never queued. */
    if (s->discard || A.io_out < 0)
        return;
    agent_credit_take(&s->credit, (uint32_t)n);
    if (agent_stdio_put_data(&A.io_wr, s->sid, buf, (size_t)n) < 0)
        agent_log("stdio: out of memory: %zd bytes of stream %u lost", n, s->sid);
}

/* Write queued host input to the process; grant the host what was written. */
static void in_writable(struct in_stream *s)
{
    ssize_t n;
    if (s->fd < 0)
        return;
    if (s->len > 0) {
        do
            n = write(s->fd, s->buf, s->len);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            /* The reader went away (EPIPE): discard, but keep granting so the host isn't stuck. */
            n = (ssize_t)s->len;
            close_fd(&s->fd);
        }
        memmove(s->buf, s->buf + n, s->len - (size_t)n);
        s->len -= (size_t)n;
        agent_stdio_put_credit(&A.io_wr, s->sid, (uint32_t)n);
    }
    if (s->len == 0 && s->eof)
        close_fd(&s->fd);
}

/* ---- processes ---- */

static void proc_answer_waits(struct proc *p)
{
    json_t *o;
    for (size_t i = 0; i < p->n_waits; i++) {
        o = json_pack("{s:i, s:i, s:b, s:I}", "exit_code", p->st.exit_code, "signal", p->st.signal,
                      "oom_killed", (p->st.flags & BERTH_EXIT_F_OOM_KILLED) != 0, "finished_ns",
                      (json_int_t)p->st.finished_ns);
        agent_reply_ok(&A.ctl_wr, p->waits[i], o);
    }
    if (p->n_waits)
        p->waited = 1;
    free(p->waits);
    p->waits = NULL;
    p->n_waits = 0;
}

/* True when the exited process's output has all been queued (or the grace ran out). */
static int proc_drained(const struct proc *p)
{
    for (int i = 0; i < 2; i++)
        if (p->out[i] && p->out[i]->fd >= 0 && mono_ms() - p->exited_ms < DRAIN_GRACE_MS)
            return 0;
    return 1;
}

static void proc_collect(struct proc *p)
{
    berth_err_t err = { 0 };
    if (p->exited)
        return;
    p->st.struct_size = sizeof(p->st);
    int r = A.ops->process_wait(A.priv, p->h, BERTH_WAIT_NOHANG, &p->st, &err);
    if (r == -EAGAIN)
        return;
    if (r < 0) {
        /* Not collectable (never happens for our own children): report it as killed. */
        agent_log("wait for %s%s%s: %s", p->ctr->id, p->exec_id ? "/" : "",
                  p->exec_id ? p->exec_id : "", err.msg);
        memset(&p->st, 0, sizeof(p->st));
        p->st.exit_code = 128 + SIGKILL;
        p->st.signal = SIGKILL;
    }
    p->exited = 1;
    p->exited_ms = mono_ms();
}

static int proc_add_wait(struct proc *p, json_int_t id)
{
    json_int_t *n = realloc(p->waits, (p->n_waits + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    p->waits = n;
    p->waits[p->n_waits++] = id;
    return 0;
}

/* Drop a process's streams (EOF to the host for outputs that hadn't ended). */
static void proc_streams_free(struct proc *p)
{
    for (int i = 0; i < 2; i++) {
        if (p->out[i] && (i == 0 || p->out[i] != p->out[0]))
            out_free(p->out[i]);
        p->out[i] = NULL;
    }
    in_free(p->in);
    p->in = NULL;
    close_fd(&p->tty_master);
}

/*
 * Make the pipes or the terminal for a process from a stdio request object
 * ({"tty", "cols", "rows", "stdin", "stdout", "stderr"}). On success
 * @io holds the child's ends (closed by the caller after create/exec).
 */
struct stdio_req {
    int tty;
    uint16_t cols, rows;
    int has[3];
    uint32_t sid[3];
    int mine[3]; /* the agent's ends of the pipes */
};

static int parse_sid(json_t *v, int *has, uint32_t *sid, char *why, size_t wsz, const char *name)
{
    *has = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX) {
        snprintf(why, wsz, "stdio.%s must be a stream id (u32) or null", name);
        return -EINVAL;
    }
    *has = 1;
    *sid = (uint32_t)json_integer_value(v);
    return 0;
}

static int stdio_prepare(json_t *o, struct stdio_req *q, berth_stdio_t *io, char *why, size_t wsz)
{
    static const char *const names[3] = { "stdin", "stdout", "stderr" };
    int r;
    memset(q, 0, sizeof(*q));
    q->mine[0] = q->mine[1] = q->mine[2] = -1;
    io->struct_size = sizeof(*io);
    io->in = io->out = io->err = io->tty_master = BERTH_HANDLE_NONE;
    if (o && !json_is_object(o)) {
        snprintf(why, wsz, "stdio must be an object");
        return -EINVAL;
    }
    q->tty = json_is_true(json_object_get(o, "tty"));
    q->cols = (uint16_t)json_integer_value(json_object_get(o, "cols"));
    q->rows = (uint16_t)json_integer_value(json_object_get(o, "rows"));
    for (int i = 0; i < 3; i++)
        if ((r = parse_sid(json_object_get(o, names[i]), &q->has[i], &q->sid[i], why, wsz,
                           names[i])) < 0)
            return r;
    if (q->tty && q->has[2]) {
        snprintf(why, wsz, "a terminal has no separate stderr stream");
        return -EINVAL;
    }
    for (int i = 0; i < 3; i++) {
        if (!q->has[i])
            continue;
        if (i == 0 ? in_find(q->sid[i]) != NULL : out_find(q->sid[i]) != NULL) {
            snprintf(why, wsz, "stream %u is already in use", q->sid[i]);
            return -EEXIST;
        }
        if (i == 2 && q->has[1] && q->sid[1] == q->sid[2]) {
            snprintf(why, wsz, "stdout and stderr need different streams");
            return -EINVAL;
        }
    }
    if (q->tty) {
        io->flags = BERTH_STDIO_F_TTY;
        io->tty_cols = q->cols ? q->cols : 80;
        io->tty_rows = q->rows ? q->rows : 24;
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        int p[2];
        if (!q->has[i])
            continue;
        if (pipe2(p, O_CLOEXEC) < 0) {
            snprintf(why, wsz, "pipe: %s", strerror(errno));
            return -errno;
        }
        /* stdin: the child reads p[0]; outputs: the child writes p[1]. */
        q->mine[i] = i == 0 ? p[1] : p[0];
        set_nonblock(q->mine[i]);
        if (i == 0)
            io->in = p[0];
        else if (i == 1)
            io->out = p[1];
        else
            io->err = p[1];
    }
    return 0;
}

/* Close the child's ends (the driver duplicated them) and, on failure, ours too. */
static void stdio_release(struct stdio_req *q, berth_stdio_t *io, int failed)
{
    berth_handle_t *h[3] = { &io->in, &io->out, &io->err };
    for (int i = 0; i < 3; i++) {
        if (*h[i] >= 0)
            close((int)*h[i]);
        *h[i] = BERTH_HANDLE_NONE;
        if (failed)
            close_fd(&q->mine[i]);
    }
    if (failed && io->tty_master >= 0) {
        close((int)io->tty_master);
        io->tty_master = BERTH_HANDLE_NONE;
    }
}

/* Attach the agent's ends to streams of @p (after a successful create/exec). */
static int stdio_attach(struct proc *p, struct stdio_req *q, berth_stdio_t *io)
{
    if (q->tty) {
        int m = (int)io->tty_master, d;
        io->tty_master = BERTH_HANDLE_NONE;
        /*
         * The driver keeps this fd number for resize: it stays open, in the
         * proc, until the process is forgotten; the streams get their own
         * duplicates, closed when they end, so resize never hits a number
         * reused by another fd.
         */
        p->tty_master = m;
        set_nonblock(m);
        /* One terminal, both ways: input is written to it, output read from it. */
        if (q->has[0]) {
            if ((d = fcntl(m, F_DUPFD_CLOEXEC, 3)) < 0)
                return -errno;
            if (!(p->in = in_new(q->sid[0], d))) {
                close(d);
                return -ENOMEM;
            }
        }
        if ((d = fcntl(m, F_DUPFD_CLOEXEC, 3)) < 0)
            return -errno;
        /*
         * Without a stdout stream nobody reads the terminal: it is drained
         * anyway (discard), or the process blocks once its buffer is full.
         */
        if (!(p->out[0] = out_new(q->has[1] ? q->sid[1] : 0, d))) {
            close(d);
            return -ENOMEM;
        }
        p->out[0]->discard = !q->has[1];
        return 0;
    }
    if (q->has[0] && !(p->in = in_new(q->sid[0], q->mine[0])))
        return -ENOMEM;
    q->mine[0] = -1;
    for (int i = 1; i < 3; i++) {
        if (q->has[i] && !(p->out[i - 1] = out_new(q->sid[i], q->mine[i])))
            return -ENOMEM;
        q->mine[i] = -1;
    }
    return 0;
}

static void proc_init_handles(struct proc *p)
{
    berth_handle_t h = BERTH_HANDLE_NONE;
    char path[64], line[128];
    FILE *f;
    p->wait_fd = -1;
    if (A.ops->process_wait_handle(A.priv, p->h, &h, NULL) == 0)
        p->wait_fd = (int)h;
    /* The pid, for the orphan reaper: the pidfd's fdinfo has it. */
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", p->wait_fd);
    if (p->wait_fd >= 0 && (f = fopen(path, "re"))) {
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "Pid: %d", &p->pid) == 1)
                break;
        fclose(f);
    }
}

/* ---- containers ---- */

static struct ctr *ctr_find(const char *id)
{
    for (struct ctr *c = A.ctrs; id && c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static struct proc *proc_find(struct ctr *c, const char *exec_id)
{
    if (!exec_id)
        return &c->init;
    for (struct proc *p = c->execs; p; p = p->next)
        if (strcmp(p->exec_id, exec_id) == 0)
            return p;
    return NULL;
}

static int valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

static int sandbox_ensure(char *why, size_t wsz)
{
    berth_sandbox_spec_t ss = { .struct_size = sizeof(ss) };
    berth_err_t err = { 0 };
    char cfg[128];
    int r;
    if (A.sandbox)
        return 0;
    snprintf(A.sandbox_dir, sizeof(A.sandbox_dir), "%s/sandbox", A.state_dir);
    if ((r = mkdir_p(A.sandbox_dir, 0711)) < 0) {
        snprintf(why, wsz, "mkdir %.300s: %s", A.sandbox_dir, strerror(-r));
        return r;
    }
    /*
     * In the guest the VM's network is the container's: the sandbox uses
     * it as is ("host"); a spec listing a network namespace without a
     * path still gets a new one from the driver.
     */
    snprintf(cfg, sizeof(cfg), "{\"network\":\"%s\"}", A.network);
    ss.id = "0000000000000000000000000000000000000000000000000000000000000001";
    ss.state_dir = A.sandbox_dir;
    ss.config_json = cfg;
    if ((r = A.ops->sandbox_create(A.priv, &ss, 0, &A.sandbox, &err)) < 0) {
        snprintf(why, wsz, "%s", err.msg);
        rmdir(A.sandbox_dir);
        return r;
    }
    return 0;
}

static void ctr_unlink(struct ctr *c)
{
    for (struct ctr **pp = &A.ctrs; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
}

/* Free what the agent holds for @c after the driver's handle is gone. */
static void ctr_free(struct ctr *c)
{
    proc_streams_free(&c->init);
    free(c->init.waits);
    if (c->mnt_dir[0]) {
        if (umount2(c->mnt_dir, MNT_DETACH) < 0 && errno != EINVAL)
            agent_log("umount %s: %s", c->mnt_dir, strerror(errno));
        rmdir(c->mnt_dir);
    }
    if (c->binds_dir[0]) {
        if (umount2(c->binds_dir, MNT_DETACH) < 0 && errno != EINVAL)
            agent_log("umount %s: %s", c->binds_dir, strerror(errno));
        rmdir(c->binds_dir);
    }
    if (rmdir(c->state_dir) < 0 && errno != ENOENT)
        agent_log("rmdir %s: %s", c->state_dir, strerror(errno));
    free(c->id);
    free(c);
}

/* ---- ops ---- */

struct req {
    json_int_t id;
    json_t *o;
    char why[BERTH_ERR_MSG_MAX];
};

#define FAIL(q, code, ...)                                                                         \
    do {                                                                                           \
        snprintf((q)->why, sizeof((q)->why), __VA_ARGS__);                                         \
        return -(code);                                                                            \
    } while (0)

static const char *str(struct req *q, const char *key)
{
    return json_string_value(json_object_get(q->o, key));
}

static int op_hello(struct req *q)
{
    struct utsname u;
    uint32_t v;
    int r = agent_negotiate(q->o, AGENT_PROTO_VERSION_MIN, AGENT_PROTO_VERSION_MAX, &v);
    if (r == -EBADMSG)
        FAIL(q, EINVAL, "hello: \"versions\" must be an array of positive integers");
    if (r < 0) {
        /* Nothing to talk about: answer, then close (the loop quits once the reply is out). */
        A.quit = 1;
        A.exit_code = 1;
        FAIL(q, EPROTONOSUPPORT, "hello: no common protocol version (agent speaks %u..%u)",
             AGENT_PROTO_VERSION_MIN, AGENT_PROTO_VERSION_MAX);
    }
    A.version = v;
    A.hello_done = 1;
    uname(&u);
    agent_reply_ok(&A.ctl_wr, q->id,
                   json_pack("{s:i, s:[s,s,s,s,s,s,s,s,s,s], s:s, s:s, s:b, s:I}", "version",
                             (int)v, "caps", "exec", "tty", "stats", "pause", "resize", "oom",
                             "net", "seccomp_bpf", "trace", "reseed", "agent_version",
                             AGENT_VERSION, "kernel", u.release, "pid1", A.pid1, "seccomp_arch",
                             (json_int_t)seccomp_arch_native()));
    return 0;
}

/*
 * reseed: the host's entropy into the kernel's pool, and the random
 * generator rekeyed from it at once; then the host's wall clock. A VM
 * restored from a snapshot starts with the random state and the clock its
 * snapshot had, shared with every other VM restored from it: nothing may
 * run in it before this (the host sends it right after hello).
 */
static int op_reseed(struct req *q)
{
    const char *text = str(q, "entropy");
    json_t *rt = json_object_get(q->o, "realtime");
    struct {
        struct rand_pool_info info;
        uint8_t buf[AGENT_RESEED_MAX];
    } pool;
    struct timespec ts;
    uint8_t *data = NULL;
    size_t len = 0;
    int fd, r;

    /* The host's clock and pool are not the agent's to change when it runs on a host (tests). */
    if (!A.pid1)
        FAIL(q, EPERM, "reseed: only as the guest's PID 1");
    if (!text || berth__base64_decode(text, BERTH__BASE64_STRICT, &data, &len) < 0 ||
        len < AGENT_RESEED_MIN || len > AGENT_RESEED_MAX) {
        free(data);
        FAIL(q, EINVAL, "reseed: \"entropy\" must be base64 of %d to %d bytes", AGENT_RESEED_MIN,
             AGENT_RESEED_MAX);
    }
    if (!json_is_array(rt) || json_array_size(rt) != 2 || !json_is_integer(json_array_get(rt, 0)) ||
        !json_is_integer(json_array_get(rt, 1)) || json_integer_value(json_array_get(rt, 0)) < 0 ||
        json_integer_value(json_array_get(rt, 1)) < 0 ||
        json_integer_value(json_array_get(rt, 1)) > 999999999) {
        explicit_bzero(data, len);
        free(data);
        FAIL(q, EINVAL, "reseed: \"realtime\" must be [seconds, nanoseconds] since the epoch");
    }
    pool.info.entropy_count = (int)(len * 8);
    pool.info.buf_size = (int)len;
    memcpy(pool.buf, data, len);
    explicit_bzero(data, len);
    free(data);
    fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    r = fd < 0 || ioctl(fd, RNDADDENTROPY, &pool) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0 ? -errno : 0;
    explicit_bzero(&pool, sizeof(pool));
    if (fd >= 0)
        close(fd);
    if (r < 0)
        FAIL(q, -r, "reseed: the kernel's random generator: %s", strerror(-r));
    ts.tv_sec = (time_t)json_integer_value(json_array_get(rt, 0));
    ts.tv_nsec = (long)json_integer_value(json_array_get(rt, 1));
    if (clock_settime(CLOCK_REALTIME, &ts) < 0)
        FAIL(q, errno, "reseed: setting the clock: %s", strerror(errno));
    agent_reply_ok(&A.ctl_wr, q->id, NULL);
    return 0;
}

static int rootfs_list(struct req *q, struct ctr *c, json_t *desc, berth_mount_t *m,
                       berth_mount_list_t *list)
{
    const char *type = json_string_value(json_object_get(desc, "type"));
    memset(m, 0, sizeof(*m));
    memset(list, 0, sizeof(*list));
    m->struct_size = sizeof(*m);
    m->type = "bind";
    m->target = "/";
    list->struct_size = sizeof(*list);
    list->n_mounts = 1;
    list->mounts = m;
    if (!json_is_object(desc))
        FAIL(q, EINVAL, "create: \"rootfs\" must be an object");
    if (type && strcmp(type, "path") == 0) {
        m->source = json_string_value(json_object_get(desc, "path"));
        if (!m->source || m->source[0] != '/')
            FAIL(q, EINVAL, "create: rootfs path must be absolute");
        return 0;
    }
    /* 9p and block: mounted by the agent, then bound like a path. */
    /* state_dir is <state_dir (< 256)>/c-<id (≤ 64)>: the suffix always fits. */
    snprintf(c->mnt_dir, sizeof(c->mnt_dir), "%.400s/mnt", c->state_dir);
    int r = agent_guest_mount_rootfs(desc, c->mnt_dir, q->why, sizeof(q->why));
    if (r < 0) {
        c->mnt_dir[0] = '\0';
        return r;
    }
    m->source = c->mnt_dir;
    return 0;
}

/* Whether OCI mount @m is a bind mount (by its type or its options). */
static int mount_is_bind(json_t *m)
{
    const char *type = json_string_value(json_object_get(m, "type"));
    size_t i;
    json_t *o;

    if (type && strcmp(type, "bind") == 0)
        return 1;
    json_array_foreach (json_object_get(m, "options"), i, o) {
        const char *s = json_string_value(o);
        if (s && (strcmp(s, "bind") == 0 || strcmp(s, "rbind") == 0))
            return 1;
    }
    return 0;
}

/*
 * The host's share of the container's bind mount sources (@desc, like a
 * 9p rootfs): mounted under the container's state dir, and every bind
 * mount in @config whose source is relative ("N", an entry of the share)
 * rewritten to the entry's path. Without a share, a relative source is
 * refused: it would be resolved against the agent's own cwd.
 */
static int binds_share(struct req *q, struct ctr *c, json_t *desc, json_t *config)
{
    char path[PATH_MAX];
    size_t i;
    json_t *m;
    int r;

    if (desc) {
        snprintf(c->binds_dir, sizeof(c->binds_dir), "%.400s/binds", c->state_dir);
        char why[sizeof(q->why)];
        if ((r = agent_guest_mount_rootfs(desc, c->binds_dir, why, sizeof(why))) < 0) {
            c->binds_dir[0] = '\0';
            /* Its messages speak of a rootfs: this is the other share. */
            FAIL(q, -r, "create: the binds share (%.200s)", why);
        }
    }
    json_array_foreach (json_object_get(config, "mounts"), i, m) {
        const char *src = json_string_value(json_object_get(m, "source"));
        if (!src || src[0] == '/' || !mount_is_bind(m))
            continue;
        if (!c->binds_dir[0] || !src[0] || strspn(src, "0123456789") != strlen(src))
            FAIL(q, EINVAL,
                 "create: mount source \"%.200s\" is not absolute nor an entry of the binds share",
                 src);
        snprintf(path, sizeof(path), "%.400s/%.20s", c->binds_dir, src);
        json_object_set_new(m, "source", json_string(path));
    }
    return 0;
}

/*
 * create's "seccomp": the filter the host compiled from the container's
 * seccomp profile ({"arch": AUDIT_ARCH_*, "bpf": base64 of the
 * sock_filter array}), handed to the process driver as the container's
 * filter instead of compiling a profile in the guest (the host then leaves
 * linux.seccomp out of the config). 1 when set (handle_control() clears it
 * after the create, whatever its outcome); 0 when it is for another
 * architecture and the config has the profile, which is then compiled here
 * as without the member; else -errno.
 */
static int seccomp_from_host(struct req *q, json_t *sc, json_t *config)
{
    json_t *arch = json_object_get(sc, "arch");
    const char *text = json_string_value(json_object_get(sc, "bpf"));
    uint8_t *bpf;
    size_t len;
    int r;

    if (!json_is_object(sc) || !json_is_integer(arch) || !text)
        FAIL(q, EINVAL, "create: \"seccomp\" must be {\"arch\": N, \"bpf\": base64}");
    if ((uint32_t)json_integer_value(arch) != seccomp_arch_native()) {
        if (!json_object_get(json_object_get(config, "linux"), "seccomp"))
            FAIL(q, EINVAL,
                 "create: the seccomp filter is for arch 0x%x, this guest's is 0x%x, and the "
                 "config has no profile to compile",
                 (unsigned)json_integer_value(arch), seccomp_arch_native());
        agent_log("create: the host's seccomp filter is for arch 0x%x, this guest's is 0x%x: "
                  "compiling the profile here",
                  (unsigned)json_integer_value(arch), seccomp_arch_native());
        return 0;
    }
    if (berth__base64_decode(text, BERTH__BASE64_STRICT, &bpf, &len) < 0)
        FAIL(q, EINVAL, "create: \"seccomp\": \"bpf\" is not base64");
    if (len == 0 || len % sizeof(struct sock_filter) ||
        len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        free(bpf);
        FAIL(q, EINVAL, "create: \"seccomp\": \"bpf\" is not 1 to %d BPF instructions",
             BPF_MAXINSNS);
    }
    r = process_seccomp_preset((const struct sock_filter *)bpf, len / sizeof(struct sock_filter));
    free(bpf);
    if (r < 0)
        FAIL(q, -r, "create: \"seccomp\": %s", strerror(-r));
    trace_step("seccomp-from-host");
    return 1;
}

static int op_create(struct req *q)
{
    const char *id = str(q, "container");
    json_t *config = json_object_get(q->o, "config");
    berth_container_spec_t cs = { .struct_size = sizeof(cs) };
    berth_stdio_t io = { 0 };
    struct stdio_req sq;
    berth_mount_t m;
    berth_mount_list_t list;
    berth_err_t err = { 0 };
    struct ctr *c;
    char *spec;
    int r;

    if (!valid_id(id))
        FAIL(q, EINVAL, "create: \"container\" must be 1-64 of [A-Za-z0-9_.-]");
    if (ctr_find(id))
        FAIL(q, EEXIST, "create: container %s exists", id);
    if (!json_is_object(config))
        FAIL(q, EINVAL, "create: \"config\" must be an OCI config object");
    if ((r = sandbox_ensure(q->why, sizeof(q->why))) < 0)
        return r;
    trace_step("sandbox");
    /*
     * The VM's network, which its containers share: only as PID 1 of a
     * guest (in host mode it would reconfigure the host's interfaces).
     */
    if (json_object_get(q->o, "network")) {
        if (!A.pid1)
            FAIL(q, ENOTSUP, "create: \"network\" is for the agent in a VM only");
        if ((r = agent_guest_net_config(json_object_get(q->o, "network"), q->why, sizeof(q->why))) <
            0)
            return r;
    }
    if (!(c = calloc(1, sizeof(*c))) || !(c->id = strdup(id))) {
        free(c);
        FAIL(q, ENOMEM, "out of memory");
    }
    c->init.ctr = c;
    c->init.wait_fd = -1;
    c->init.tty_master = -1;
    snprintf(c->state_dir, sizeof(c->state_dir), "%s/c-%s", A.state_dir, id);
    if (mkdir(c->state_dir, 0711) < 0) {
        snprintf(q->why, sizeof(q->why), "mkdir %.300s: %s", c->state_dir, strerror(errno));
        free(c->id);
        free(c);
        return -EIO;
    }
    if ((r = rootfs_list(q, c, json_object_get(q->o, "rootfs"), &m, &list)) < 0 ||
        (r = binds_share(q, c, json_object_get(q->o, "binds"), config)) < 0) {
        ctr_free(c);
        return r;
    }
    trace_step("rootfs");
    if (json_object_get(q->o, "seccomp") &&
        (r = seccomp_from_host(q, json_object_get(q->o, "seccomp"), config)) < 0) {
        ctr_free(c);
        return r;
    }
    /* Also on failure, stdio_prepare leaves sq and io fit for stdio_release. */
    if ((r = stdio_prepare(json_object_get(q->o, "stdio"), &sq, &io, q->why, sizeof(q->why))) < 0) {
        stdio_release(&sq, &io, 1);
        ctr_free(c);
        return r;
    }
    if (!(spec = json_dumps(config, JSON_COMPACT))) {
        stdio_release(&sq, &io, 1);
        ctr_free(c);
        FAIL(q, ENOMEM, "out of memory");
    }
    cs.id = c->id;
    cs.state_dir = c->state_dir;
    cs.oci_spec_json = spec;
    cs.rootfs = &list;
    cs.stdio = &io;
    r = A.ops->container_create(A.priv, A.sandbox, &cs, 0, &c->h, &err);
    free(spec);
    if (r < 0) {
        stdio_release(&sq, &io, 1);
        ctr_free(c);
        FAIL(q, -r, "%s", err.msg);
    }
    c->init.h = A.ops->container_init_process(A.priv, c->h);
    proc_init_handles(&c->init);
    r = stdio_attach(&c->init, &sq, &io);
    stdio_release(&sq, &io, r < 0);
    c->next = A.ctrs;
    A.ctrs = c;
    if (r < 0)
        FAIL(q, ENOMEM, "out of memory attaching streams");
    agent_reply_ok(&A.ctl_wr, q->id, trace_end(json_pack("{s:i}", "pid", (int)c->init.pid)));
    return 0;
}

static int need_ctr(struct req *q, struct ctr **ret)
{
    const char *id = str(q, "container");
    if (!id)
        FAIL(q, EINVAL, "%s: \"container\" missing", str(q, "op"));
    if (!(*ret = ctr_find(id)))
        FAIL(q, ENOENT, "no such container: %s", id);
    return 0;
}

static int need_proc(struct req *q, struct ctr **ret_c, struct proc **ret_p)
{
    const char *exec_id = str(q, "exec");
    int r = need_ctr(q, ret_c);
    if (r < 0)
        return r;
    if (!(*ret_p = proc_find(*ret_c, exec_id)))
        FAIL(q, ENOENT, "no such exec in %s: %s", (*ret_c)->id, exec_id);
    return 0;
}

static int op_start(struct req *q)
{
    struct ctr *c;
    berth_err_t err = { 0 };
    int r = need_ctr(q, &c);
    if (r < 0)
        return r;
    if (c->started)
        FAIL(q, EALREADY, "container %s was started already", c->id);
    if ((r = A.ops->container_start(A.priv, c->h, 0, &err)) < 0)
        FAIL(q, -r, "%s", err.msg);
    c->started = 1;
    agent_reply_ok(&A.ctl_wr, q->id, trace_end(NULL));
    return 0;
}

static int op_exec(struct req *q)
{
    const char *exec_id = str(q, "exec");
    json_t *process = json_object_get(q->o, "process");
    berth_process_spec_t ps = { .struct_size = sizeof(ps) };
    berth_stdio_t io = { 0 };
    berth_err_t err = { 0 };
    struct stdio_req sq;
    struct proc *p;
    struct ctr *c;
    char *text;
    int r = need_ctr(q, &c);
    if (r < 0)
        return r;
    if (!valid_id(exec_id))
        FAIL(q, EINVAL, "exec: \"exec\" must be 1-64 of [A-Za-z0-9_.-]");
    if (proc_find(c, exec_id))
        FAIL(q, EEXIST, "exec %s exists in %s", exec_id, c->id);
    if (!json_is_object(process))
        FAIL(q, EINVAL, "exec: \"process\" must be an OCI process object");
    if (!c->started || c->init.exited)
        FAIL(q, EINVAL, "exec: container %s is not running", c->id);
    if ((r = stdio_prepare(json_object_get(q->o, "stdio"), &sq, &io, q->why, sizeof(q->why))) < 0) {
        stdio_release(&sq, &io, 1);
        return r;
    }
    if (!(p = calloc(1, sizeof(*p))) || !(p->exec_id = strdup(exec_id)) ||
        !(text = json_dumps(process, JSON_COMPACT))) {
        if (p)
            free(p->exec_id);
        free(p);
        stdio_release(&sq, &io, 1);
        FAIL(q, ENOMEM, "out of memory");
    }
    p->ctr = c;
    p->wait_fd = -1;
    p->tty_master = -1;
    ps.id = p->exec_id;
    ps.process_json = text;
    ps.stdio = &io;
    r = A.ops->process_exec(A.priv, c->h, &ps, 0, &p->h, &err);
    free(text);
    if (r < 0) {
        stdio_release(&sq, &io, 1);
        free(p->exec_id);
        free(p);
        FAIL(q, -r, "%s", err.msg);
    }
    proc_init_handles(p);
    r = stdio_attach(p, &sq, &io);
    stdio_release(&sq, &io, r < 0);
    p->next = c->execs;
    c->execs = p;
    if (r < 0)
        FAIL(q, ENOMEM, "out of memory attaching streams");
    agent_reply_ok(&A.ctl_wr, q->id, json_pack("{s:i}", "pid", (int)p->pid));
    return 0;
}

static int op_signal(struct req *q)
{
    json_t *sig = json_object_get(q->o, "signal");
    berth_err_t err = { 0 };
    struct proc *p;
    struct ctr *c;
    int r = need_proc(q, &c, &p);
    if (r < 0)
        return r;
    if (!json_is_integer(sig) || json_integer_value(sig) <= 0 || json_integer_value(sig) > 64)
        FAIL(q, EINVAL, "signal: \"signal\" must be a signal number");
    if (p->exited)
        FAIL(q, ESRCH, "the process has exited");
    if ((r = A.ops->process_signal(A.priv, p->h, (int32_t)json_integer_value(sig), 0, &err)) < 0)
        FAIL(q, -r, "%s", err.msg);
    agent_reply_ok(&A.ctl_wr, q->id, NULL);
    return 0;
}

static int op_wait(struct req *q)
{
    struct proc *p;
    struct ctr *c;
    int r = need_proc(q, &c, &p);
    if (r < 0)
        return r;
    /* Answered by the loop once the process ended and its output is out. */
    if (proc_add_wait(p, q->id) < 0)
        FAIL(q, ENOMEM, "out of memory");
    return 0;
}

static int op_resize(struct req *q)
{
    json_int_t cols = json_integer_value(json_object_get(q->o, "cols"));
    json_int_t rows = json_integer_value(json_object_get(q->o, "rows"));
    berth_err_t err = { 0 };
    struct proc *p;
    struct ctr *c;
    int r = need_proc(q, &c, &p);
    if (r < 0)
        return r;
    if (cols <= 0 || cols > UINT16_MAX || rows <= 0 || rows > UINT16_MAX)
        FAIL(q, EINVAL, "resize: \"cols\" and \"rows\" must be 1-65535");
    if ((r = A.ops->process_resize(A.priv, p->h, (uint16_t)cols, (uint16_t)rows, 0, &err)) < 0)
        FAIL(q, -r, "%s", err.msg);
    agent_reply_ok(&A.ctl_wr, q->id, NULL);
    return 0;
}

static int op_stats(struct req *q)
{
    berth_blob_t *b = NULL;
    berth_err_t err = { 0 };
    json_t *st;
    struct ctr *c;
    int r = need_ctr(q, &c);
    if (r < 0)
        return r;
    if ((r = A.ops->container_stats(A.priv, c->h, 0, &b, &err)) < 0)
        FAIL(q, -r, "%s", err.msg);
    st = json_loadb(b->data, b->len, 0, NULL);
    berth_blob_release(b);
    if (!st)
        FAIL(q, EIO, "stats: the driver returned malformed JSON");
    agent_reply_ok(&A.ctl_wr, q->id, json_pack("{s:o}", "stats", st));
    return 0;
}

static int op_pause_resume(struct req *q, int pause)
{
    berth_err_t err = { 0 };
    struct ctr *c;
    int r = need_ctr(q, &c);
    if (r < 0)
        return r;
    r = pause ? A.ops->container_pause(A.priv, c->h, 0, &err)
              : A.ops->container_resume(A.priv, c->h, 0, &err);
    if (r < 0)
        FAIL(q, -r, "%s", err.msg);
    agent_reply_ok(&A.ctl_wr, q->id, NULL);
    return 0;
}

/*
 * Remove a container: with @force kill what runs; collect every status
 * (answering pending waits), release the execs, delete through the driver.
 */
static int ctr_delete(struct ctr *c, int force, char *why, size_t wsz)
{
    berth_err_t err = { 0 };
    struct proc *p, *next;
    int r;
    if (!force && c->started && !c->init.exited)
        proc_collect(&c->init);
    if (!force && c->started && !c->init.exited) {
        snprintf(why, wsz, "container %s is running (delete with force)", c->id);
        return -EBUSY;
    }
    if (force && c->started) {
        /* A frozen cgroup can't die: thaw it first (harmless when not paused). */
        A.ops->container_resume(A.priv, c->h, 0, NULL);
    }
    for (p = c->execs; p; p = next) {
        next = p->next;
        if (!p->exited) {
            A.ops->process_signal(A.priv, p->h, SIGKILL, 0, NULL);
            p->st.struct_size = sizeof(p->st);
            if (A.ops->process_wait(A.priv, p->h, 0, &p->st, NULL) < 0)
                p->st.exit_code = 128 + SIGKILL, p->st.signal = SIGKILL;
            p->exited = 1;
        }
        proc_answer_waits(p);
        proc_streams_free(p);
        A.ops->process_release(A.priv, p->h);
        free(p->exec_id);
        free(p);
    }
    c->execs = NULL;
    if (c->started && !c->init.exited) {
        A.ops->process_signal(A.priv, c->init.h, SIGKILL, 0, NULL);
        c->init.st.struct_size = sizeof(c->init.st);
        if (A.ops->process_wait(A.priv, c->init.h, 0, &c->init.st, NULL) == 0)
            c->init.exited = 1;
    }
    if (c->init.exited)
        proc_answer_waits(&c->init);
    else if (c->init.n_waits) {
        /* Never started: there is no exit status to give. */
        for (size_t i = 0; i < c->init.n_waits; i++)
            agent_reply_err(&A.ctl_wr, c->init.waits[i], ECANCELED,
                            "the container was deleted before it started");
        c->init.n_waits = 0;
    }
    proc_streams_free(&c->init);
    r = A.ops->container_delete(A.priv, c->h, BERTH_DELETE_FORCE, &err);
    if (r < 0)
        snprintf(why, wsz, "%s", err.msg);
    ctr_unlink(c);
    ctr_free(c);
    return r;
}

static int op_delete(struct req *q)
{
    struct ctr *c;
    int r = need_ctr(q, &c);
    if (r < 0)
        return r;
    if ((r = ctr_delete(c, json_is_true(json_object_get(q->o, "force")), q->why, sizeof(q->why))) <
        0)
        return r;
    agent_reply_ok(&A.ctl_wr, q->id, NULL);
    return 0;
}

static void teardown(void)
{
    char why[BERTH_ERR_MSG_MAX];
    berth_err_t err = { 0 };
    while (A.ctrs)
        if (ctr_delete(A.ctrs, 1, why, sizeof(why)) < 0)
            agent_log("delete: %s", why);
    if (A.sandbox) {
        if (A.ops->sandbox_destroy(A.priv, A.sandbox, BERTH_DELETE_FORCE, &err) < 0)
            agent_log("sandbox: %s", err.msg);
        A.sandbox = NULL;
        rmdir(A.sandbox_dir);
    }
}

static int op_shutdown(struct req *q)
{
    teardown();
    sync();
    agent_reply_ok(&A.ctl_wr, q->id, NULL);
    A.quit = 1;
    A.exit_code = 0;
    return 0;
}

static void handle_control(const uint8_t *payload, uint32_t len)
{
    struct req q = { .id = -1 };
    json_t *idv;
    const char *op;
    int r;

    trace.t0 = mono_ns();
    if (agent_json_decode(payload, len, &q.o, q.why, sizeof(q.why)) < 0) {
        agent_log("control: %s", q.why);
        agent_reply_err(&A.ctl_wr, -1, EBADMSG, q.why);
        return;
    }
    idv = json_object_get(q.o, "id");
    op = json_string_value(json_object_get(q.o, "op"));
    if (!json_is_integer(idv) || json_integer_value(idv) < 0) {
        agent_reply_err(&A.ctl_wr, -1, EINVAL, "a request needs a non-negative integer \"id\"");
        json_decref(q.o);
        return;
    }
    q.id = json_integer_value(idv);
    if (!op)
        r = -EINVAL, snprintf(q.why, sizeof(q.why), "a request needs an \"op\"");
    else if (strcmp(op, "hello") == 0)
        r = op_hello(&q);
    else if (!A.hello_done)
        r = -EPROTO, snprintf(q.why, sizeof(q.why), "hello first");
    else if (strcmp(op, "reseed") == 0)
        r = op_reseed(&q);
    else if (strcmp(op, "ping") == 0)
        r = agent_reply_ok(&A.ctl_wr, q.id, NULL) < 0 ? -ENOMEM : 0;
    else if (strcmp(op, "create") == 0) {
        trace_begin(q.o);
        r = op_create(&q);
        /* The host's filter was for this container only, whatever became of it. */
        process_seccomp_preset_clear();
    } else if (strcmp(op, "start") == 0) {
        trace_begin(q.o);
        r = op_start(&q);
    } else if (strcmp(op, "exec") == 0)
        r = op_exec(&q);
    else if (strcmp(op, "signal") == 0)
        r = op_signal(&q);
    else if (strcmp(op, "wait") == 0)
        r = op_wait(&q);
    else if (strcmp(op, "resize") == 0)
        r = op_resize(&q);
    else if (strcmp(op, "stats") == 0)
        r = op_stats(&q);
    else if (strcmp(op, "pause") == 0)
        r = op_pause_resume(&q, 1);
    else if (strcmp(op, "resume") == 0)
        r = op_pause_resume(&q, 0);
    else if (strcmp(op, "delete") == 0)
        r = op_delete(&q);
    else if (strcmp(op, "shutdown") == 0)
        r = op_shutdown(&q);
    else
        r = -ENOSYS, snprintf(q.why, sizeof(q.why), "unknown op \"%s\"", op);
    if (r < 0) {
        if (!q.why[0])
            snprintf(q.why, sizeof(q.why), "%s", strerror(-r));
        agent_reply_err(&A.ctl_wr, q.id, -r, q.why);
    }
    /* A failed op's trace is dropped with it (its reply carries none). */
    json_decref(trace_end(NULL));
    json_decref(q.o);
}

static void handle_stdio(const uint8_t *payload, uint32_t len)
{
    agent_stdio_frame_t f;
    struct in_stream *in;
    struct out_stream *out;
    if (agent_stdio_decode(payload, len, &f) < 0) {
        agent_log("stdio: malformed frame of %u bytes ignored", len);
        return;
    }
    switch (f.type) {
    case AGENT_STDIO_CREDIT:
        if ((out = out_find(f.stream)) && agent_credit_grant(&out->credit, f.credit) < 0)
            agent_log("stdio: stream %u: credit beyond the window ignored", f.stream);
        break;
    case AGENT_STDIO_DATA:
        if (!(in = in_find(f.stream)) || in->eof)
            break; /* a stream that ended or never was: dropped, like a write to a closed pipe */
        if (f.len > AGENT_STDIO_WINDOW - in->len) {
            agent_log("stdio: stream %u: %u bytes beyond the credit dropped", f.stream, f.len);
            break;
        }
        if (in->fd < 0) {
            /* The process closed its input: consume and grant, so the host never stalls. */
            agent_stdio_put_credit(&A.io_wr, in->sid, f.len);
            break;
        }
        memcpy(in->buf + in->len, f.data, f.len);
        in->len += f.len;
        in_writable(in);
        break;
    case AGENT_STDIO_EOF:
        if ((in = in_find(f.stream))) {
            in->eof = 1;
            in_writable(in);
        }
        break;
    }
}

/* Read and dispatch everything available on a channel; -1 when it closed or broke. */
static int drain_channel(int fd, agent_reader_t *rd, int control)
{
    const uint8_t *payload;
    uint32_t len;
    long n = agent_reader_fill(rd, fd);
    int r;
    if (n == -EAGAIN)
        return 0;
    if (n <= 0) {
        if (n < 0)
            agent_log("%s channel: %s", control ? "control" : "stdio", strerror((int)-n));
        return -1;
    }
    while ((r = agent_reader_next(rd, &payload, &len)) == 1) {
        if (control)
            handle_control(payload, len);
        else
            handle_stdio(payload, len);
        if (A.quit)
            return 0;
    }
    if (r < 0) {
        agent_log("%s channel: a frame longer than %u bytes: protocol error, dropping the channel",
                  control ? "control" : "stdio", rd->max);
        return -1;
    }
    return 0;
}

/* ---- the loop ---- */

enum { K_CTL_IN, K_CTL_OUT, K_IO_IN, K_IO_OUT, K_OUT, K_IN, K_PROC, K_SIG };

struct slot {
    int kind;
    void *ptr;
};

/* True when none of @p's output streams can produce more. */
static int proc_outputs_ended(const struct proc *p)
{
    return (!p->out[0] || p->out[0]->fd < 0) && (!p->out[1] || p->out[1]->fd < 0);
}

static void check_exits(void)
{
    for (struct ctr *c = A.ctrs; c; c = c->next) {
        struct proc *p = &c->init, **pp;
        for (int first = 1; p; p = first ? c->execs : p->next, first = 0) {
            if (p->exited && p->n_waits && proc_drained(p))
                proc_answer_waits(p);
        }
        /*
         * An exec whose exit was reported and whose output has ended is
         * forgotten (health checks exec all the time: the agent must not
         * keep them all). A later wait or signal for it gets ENOENT.
         */
        for (pp = &c->execs; *pp;) {
            p = *pp;
            if (p->exited && p->waited && !p->n_waits && proc_outputs_ended(p)) {
                *pp = p->next;
                proc_streams_free(p);
                A.ops->process_release(A.priv, p->h);
                free(p->exec_id);
                free(p);
            } else {
                pp = &p->next;
            }
        }
    }
}

/* The poll set, rebuilt each round; kept across rounds and freed by main (any return path). */
static struct pollfd *pfd;
static struct slot *slots;

static int loop(void)
{
    size_t cap = 0;
    int64_t quit_deadline = 0;

    for (;;) {
        size_t n = 0, need = 8;
        int timeout = -1, r;
        for (struct out_stream *s = A.outs; s; s = s->next)
            need++;
        for (struct in_stream *s = A.ins; s; s = s->next)
            need++;
        for (struct ctr *c = A.ctrs; c; c = c->next) {
            need++;
            for (struct proc *p = c->execs; p; p = p->next)
                need++;
        }
        if (need > cap) {
            free(pfd);
            free(slots);
            cap = need * 2;
            pfd = calloc(cap, sizeof(*pfd));
            slots = calloc(cap, sizeof(*slots));
            if (!pfd || !slots) {
                agent_log("out of memory");
                return 1;
            }
        }
#define ADD(fd_, ev_, kind_, ptr_)                                                                 \
    do {                                                                                           \
        pfd[n].fd = (fd_);                                                                         \
        pfd[n].events = (short)(ev_);                                                              \
        pfd[n].revents = 0;                                                                        \
        slots[n].kind = (kind_);                                                                   \
        slots[n].ptr = (ptr_);                                                                     \
        n++;                                                                                       \
    } while (0)
        if (A.quit) {
            /*
             * Flush the last replies and the streams' EOFs, but don't wait
             * for ever on a host that stopped reading.
             */
            int ctl_left = A.ctl_out >= 0 && agent_writer_pending(&A.ctl_wr);
            int io_left = A.io_out >= 0 && agent_writer_pending(&A.io_wr);
            if (!quit_deadline)
                quit_deadline = mono_ms() + QUIT_FLUSH_MS;
            if ((!ctl_left && !io_left) || mono_ms() > quit_deadline)
                break;
            if (ctl_left)
                ADD(A.ctl_out, POLLOUT, K_CTL_OUT, NULL);
            if (io_left)
                ADD(A.io_out, POLLOUT, K_IO_OUT, NULL);
            timeout = 100;
        } else {
            ADD(A.ctl_in, POLLIN, K_CTL_IN, NULL);
            if (agent_writer_pending(&A.ctl_wr))
                ADD(A.ctl_out, POLLOUT, K_CTL_OUT, NULL);
            if (A.io_in >= 0)
                ADD(A.io_in, POLLIN, K_IO_IN, NULL);
            if (A.io_out >= 0 && agent_writer_pending(&A.io_wr))
                ADD(A.io_out, POLLOUT, K_IO_OUT, NULL);
            for (struct out_stream *s = A.outs; s; s = s->next)
                if (s->fd >= 0 &&
                    (s->discard || A.io_out < 0 ||
                     (s->credit.avail > 0 && agent_writer_pending(&A.io_wr) < STDIO_QUEUE_HIGH)))
                    ADD(s->fd, POLLIN, K_OUT, s);
            for (struct in_stream *s = A.ins; s; s = s->next)
                if (s->fd >= 0 && s->len > 0)
                    ADD(s->fd, POLLOUT, K_IN, s);
            for (struct ctr *c = A.ctrs; c; c = c->next) {
                struct proc *p = &c->init;
                for (int first = 1; p; p = first ? c->execs : p->next, first = 0) {
                    if (!p->exited && p->wait_fd >= 0 && (p->exec_id || c->started))
                        ADD(p->wait_fd, POLLIN, K_PROC, p);
                    if (p->exited && p->n_waits)
                        timeout = 50;
                }
            }
            if (A.sigfd >= 0)
                ADD(A.sigfd, POLLIN, K_SIG, NULL);
        }
#undef ADD
        r = poll(pfd, n, timeout);
        if (r < 0 && errno != EINTR) {
            agent_log("poll: %s", strerror(errno));
            return 1;
        }
        /* Streams and exits first: the control channel may free what they point to. */
        for (size_t i = 0; r > 0 && i < n; i++) {
            if (!pfd[i].revents)
                continue;
            switch (slots[i].kind) {
            case K_OUT:
                out_readable(slots[i].ptr);
                break;
            case K_IN: {
                struct in_stream *s = slots[i].ptr;
                if (pfd[i].revents & (POLLERR | POLLHUP) && !(pfd[i].revents & POLLOUT)) {
                    /* The reader is gone: discard what was queued and let the host go on. */
                    agent_stdio_put_credit(&A.io_wr, s->sid, (uint32_t)s->len);
                    s->len = 0;
                    close_fd(&s->fd);
                } else {
                    in_writable(s);
                }
                break;
            }
            case K_PROC:
                proc_collect(slots[i].ptr);
                break;
            case K_SIG: {
                char buf[64];
                while (read(A.sigfd, buf, sizeof(buf)) > 0)
                    ;
                agent_guest_reap_orphans(A.ctrs);
                break;
            }
            case K_IO_OUT:
                if (agent_writer_flush(&A.io_wr, A.io_out) < 0) {
                    agent_log("stdio channel: write failed; output is dropped from now on");
                    A.io_out = -1;
                }
                break;
            case K_IO_IN:
                if (drain_channel(A.io_in, &A.io_rd, 0) < 0) {
                    /* Without stdio the containers still run; control carries on. */
                    if (A.io_in == A.io_out)
                        A.io_out = -1;
                    close_fd(&A.io_in);
                }
                break;
            }
        }
        for (size_t i = 0; r > 0 && i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (slots[i].kind == K_CTL_OUT) {
                if (agent_writer_flush(&A.ctl_wr, A.ctl_out) < 0) {
                    agent_log("control channel: write failed");
                    return A.quit ? A.exit_code : 1;
                }
            } else if (slots[i].kind == K_CTL_IN && !A.quit) {
                if (drain_channel(A.ctl_in, &A.ctl_rd, 1) < 0) {
                    /* No control, no host: stop everything (the VM is useless without it). */
                    agent_log("control channel closed: tearing down");
                    teardown();
                    return 1;
                }
            }
        }
        check_exits();
        /* Replies are written eagerly: most fit in the socket buffer at once. */
        if (agent_writer_pending(&A.ctl_wr) && agent_writer_flush(&A.ctl_wr, A.ctl_out) < 0)
            return 1;
        if (A.io_out >= 0 && agent_writer_pending(&A.io_wr) &&
            agent_writer_flush(&A.io_wr, A.io_out) < 0)
            A.io_out = -1;
    }
    return A.exit_code;
}

/* ---- setup ---- */

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int sigchld_pipe = -1;

static void on_sigchld(int sig)
{
    int e = errno;
    /* A full pipe already holds a wake-up: the write may fail. */
    if (sigchld_pipe >= 0 && write(sigchld_pipe, "", 1) < 0)
        errno = e;
    errno = e;
}

static void on_sigpipe(int sig)
{
    /* Nothing: EPIPE from the write is what the loop acts on. */
}

/*
 * Start from default signal dispositions and an empty mask, whatever the
 * agent inherited: the process driver's children inherit both, and execve
 * keeps ignored signals and the mask, so anything here would leak into
 * every container. SIGPIPE gets a no-op handler rather than SIG_IGN for
 * the same reason (handlers are reset by execve).
 */
static void signals_reset(void)
{
    struct sigaction sa = { .sa_handler = on_sigpipe };
    sigset_t none;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

static void usage(FILE *f)
{
    fputs("usage: berth-agent                       (as PID 1 in a VM: virtio-serial ports)\n"
          "       berth-agent --control-fd N --stdio-fd M [--state-dir DIR] [--network MODE]\n"
          "       berth-agent --control-socket PATH --stdio-socket PATH [...]\n",
          f);
}

#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004 /* Linux 5.6: never blocks, even before the CRNG is ready */
#endif

/*
 * Seed jansson's hash tables without reading /dev/urandom: jansson reads it
 * on its first object, and in a fresh guest the kernel (5.18+) then makes
 * the reader generate entropy itself until its CRNG is ready, which under
 * TCG took about a second before the agent could answer hello
 * (docs/benchmarks.md, hyperv). The seed only spreads hash buckets, and the
 * JSON comes from the host driving this VM: early randomness is enough.
 */
static void seed_json(void)
{
    uint32_t seed = 0;

    if (getrandom(&seed, sizeof(seed), GRND_INSECURE | GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    json_object_seed(seed ? seed : 1);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "control-fd", required_argument, NULL, 'c' },
        { "stdio-fd", required_argument, NULL, 's' },
        { "control-socket", required_argument, NULL, 'C' },
        { "stdio-socket", required_argument, NULL, 'S' },
        { "state-dir", required_argument, NULL, 'd' },
        { "network", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int o, r, ctl = -1, io = -1;
    const char *ctl_path = NULL, *io_path = NULL;

    A.pid1 = getpid() == 1;
    A.network = "host";
    snprintf(A.state_dir, sizeof(A.state_dir), "/run/berth-agent");
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            ctl = atoi(optarg);
            break;
        case 's':
            io = atoi(optarg);
            break;
        case 'C':
            ctl_path = optarg;
            break;
        case 'S':
            io_path = optarg;
            break;
        case 'd':
            if (optarg[0] != '/' || strlen(optarg) >= sizeof(A.state_dir)) {
                agent_log("--state-dir: an absolute path shorter than %zu bytes",
                          sizeof(A.state_dir));
                return 2;
            }
            snprintf(A.state_dir, sizeof(A.state_dir), "%s", optarg);
            break;
        case 'n':
            A.network = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    seed_json();
    signals_reset();
    if (A.pid1) {
        if (agent_guest_setup() < 0)
            goto fatal;
        /*
         * Channels given on the command line win over the ports: that runs
         * the PID 1 paths in a pid namespace on a host, for tests.
         */
        if (ctl < 0 && ctl_path)
            ctl = connect_unix(ctl_path);
        if (io < 0 && io_path)
            io = connect_unix(io_path);
        if ((ctl < 0 && (r = agent_guest_wait_port("berth.control", PORT_WAIT_MS, &ctl)) < 0) ||
            (io < 0 && (r = agent_guest_wait_port("berth.stdio", PORT_WAIT_MS, &io)) < 0)) {
            agent_log("virtio-serial ports berth.control and berth.stdio: %s", strerror(-r));
            goto fatal;
        }
        /*
         * SIGCHLD through a self-pipe, not a signalfd: a signalfd needs
         * SIGCHLD blocked, and the blocked mask survives execve into every
         * container process. A handler is reset by execve.
         */
        int sp[2];
        if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) == 0) {
            struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART };
            sigchld_pipe = sp[1];
            A.sigfd = sp[0];
            sigemptyset(&sa.sa_mask);
            sigaction(SIGCHLD, &sa, NULL);
        }
    } else {
        if (ctl_path && (ctl = connect_unix(ctl_path)) < 0) {
            agent_log("connect %s: %s", ctl_path, strerror(-ctl));
            return 1;
        }
        if (io_path && (io = connect_unix(io_path)) < 0) {
            agent_log("connect %s: %s", io_path, strerror(-io));
            return 1;
        }
        if (ctl < 0 || io < 0) {
            usage(stderr);
            return 2;
        }
    }
    if (fcntl(ctl, F_GETFD) < 0 || fcntl(io, F_GETFD) < 0) {
        agent_log("--control-fd/--stdio-fd: not open");
        return 2;
    }
    fcntl(ctl, F_SETFD, FD_CLOEXEC);
    fcntl(io, F_SETFD, FD_CLOEXEC);
    set_nonblock(ctl);
    set_nonblock(io);
    A.ctl_in = A.ctl_out = ctl;
    A.io_in = A.io_out = io;
    agent_reader_init(&A.ctl_rd, AGENT_CONTROL_MAX);
    agent_reader_init(&A.io_rd, AGENT_STDIO_MAX);
    agent_writer_init(&A.ctl_wr);
    agent_writer_init(&A.io_wr);
    if ((r = mkdir_p(A.state_dir, 0711)) < 0) {
        agent_log("mkdir %s: %s", A.state_dir, strerror(-r));
        goto fatal;
    }
    if (driver_init() < 0)
        goto fatal;
    r = loop();
    free(pfd);
    free(slots);
    if (A.desc->fini)
        A.desc->fini(A.priv);
    /* The driver's and the agent's own dirs: removed when empty (they are when all went well). */
    rmdir(path_state);
    if (!A.pid1)
        rmdir(A.state_dir);
    agent_reader_clear(&A.ctl_rd);
    agent_reader_clear(&A.io_rd);
    agent_writer_clear(&A.ctl_wr);
    agent_writer_clear(&A.io_wr);
    close_fd(&ctl);
    close_fd(&io);
    if (A.pid1) {
        /* qemu runs with -no-reboot: a reboot ends the VM. PID 1 must never exit. */
        sync();
        reboot(RB_AUTOBOOT);
        for (;;)
            pause();
    }
    return r;
fatal:
    if (A.pid1) {
        sync();
        reboot(RB_AUTOBOOT);
        for (;;)
            pause();
    }
    return 1;
}
