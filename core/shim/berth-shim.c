/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-shim: the per-container monitor (design.md, "Processes";
 * docs/shim-protocol.md). One process per container, started detached by
 * berth__shim_spawn(): it loads the container's isolation driver, creates
 * the sandbox and the container, is the parent of the container's init,
 * owns its stdio and json-file log, serves the control socket, records the
 * exit in the store, cleans up and exits.
 *
 * It is a single-threaded libuv loop. Nothing in it depends on the process
 * that started it. To stay small it loads only its own driver module, keeps
 * no store open while idle (opening the LMDB environment per transition
 * costs about 0.1 ms, measured) and allocates buffers only while data
 * flows.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "berth-build-config.h"

#include "container-storage.h"
#include "containers.h"
#include "engine-internal.h"
#include "lifecycle.h"
#include "networks.h"
#include "ocispec.h"
#include "plugins.h"
#include "shim-client.h"
#include "shim-log.h"
#include "store.h"
#include "util.h"
#include "volumes.h"

/* A client whose unsent output passes this is dropped: the loop never waits for one. */
#define CLIENT_QUEUE_MAX (1024 * 1024)
/* Stdin bytes queued for the container before we stop reading from the client. */
#define STDIN_QUEUE_MAX (1024 * 1024)
#define READ_CHUNK      8192

#define HAS_OP(s, m) BERTH_OPS_HAS((s)->ops, berth_isolation_ops_t, m)

struct shim;
struct exec;

/* One output stream of a process (a pipe's read end or a pty master). */
struct ostream {
    uv_poll_t poll;
    int fd;
    int stream; /* BERTH_FRAME_STDOUT / _STDERR */
    int open;
    struct shim *s;
    struct exec *ex; /* NULL: the container's init */
};

/* An exec'd process, kept after it ended so exec_state can answer. */
struct exec {
    struct exec *next;
    char *id;
    void *proc;
    int running;
    int exit_code;
    int tty;
    pid_t pid;
    struct ostream out[2];
    uv_pipe_t in;
    int in_open;
    uv_poll_t waith;
    int has_waith;
    struct client *client;
};

struct client {
    uv_pipe_t h;
    uv_timer_t timer;
    struct shim *s;
    struct client *next, *prev;
    char *buf; /* request bytes not yet processed */
    size_t len;
    int refs; /* handles still open (h, timer) */
    int stream_mode;
    int want_out, want_err, want_in;
    struct exec *ex; /* stream of an exec, NULL: the init's */
    int waiting;
    int eof;
    int closing;
    int reading_paused;
};

struct shim {
    uv_loop_t loop;
    const char *id, *root, *runroot, *config_path, *plugin_path;
    int wait_start;
    int ready_fd;
    /* --record-fd: the record came from the engine, which is still committing it; until it says
     * it did (committed 1), nothing may be written to the store. */
    int record_fd;
    int committed;
    uv_poll_t record_poll;
    int record_polling;
    int commit_known;   /* the engine's answer is in */
    char commit_answer; /* the answer, when it came with the record; 0 until then */

    berth_engine_t *engine;
    const berth_config_t *cfg;
    berth_registry_t *reg;
    berth_driver_t *drv;
    const berth_isolation_ops_t *ops;
    json_t *record;
    char store_dir[PATH_MAX];
    char bundle[PATH_MAX];
    char persist[PATH_MAX];
    char sock_path[PATH_MAX];
    const char *seccomp_note;

    void *sandbox, *container, *init;
    berth_netsetup_t *net; /* endpoints, reserved ports; NULL until set up */
    uint32_t status;       /* BERTH_ST_* as this shim knows it */
    pid_t pid;
    int64_t started_ns; /* when the init started (for die's execDuration) */
    int exited, exit_code, oom;
    int tty, open_stdin, stdin_once;

    struct ostream out[2];
    uv_pipe_t in;
    int in_open;
    berth_log_t log;
    int logging;

    uv_pipe_t server;
    int server_open;
    uv_signal_t sigchld;
    uv_poll_t waith;
    int has_waith;
    int sigchld_open;
    int failed;
    struct client *clients;
    struct exec *execs;
};

static void check_processes(struct shim *s);
static int await_commit(struct shim *s);
static void client_close(struct client *c);
static void client_finish(struct client *c);
static void client_process(struct client *c);
static void on_wait_timeout(uv_timer_t *t);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf);

/* ---- store access: opened per transition, so an idle shim maps none of it ---- */

static int store_open(struct shim *s, berth_store_t **ret, berth_err_t *err)
{
    /* The events bound of the config the engine uses, so the monitor prunes as it does. */
    berth_store_opts_t so = { .events_max = s->cfg ? s->cfg->events_max : 0 };
    return berth__store_open(s->store_dir, &so, ret, err);
}

static int transition(struct shim *s, berth_lc_op_t op, uint32_t to, json_t *patch,
                      const char *action, json_t *attrs, berth_err_t *err)
{
    berth_store_t *st = NULL;
    int r = store_open(s, &st, err);
    if (r == 0)
        r = berth__lc_transition(st, s->id, op, to, patch, action, attrs, NULL, err);
    berth__store_close(st);
    /* Give back what the store's open and the JSON round trip left in the heap. */
    malloc_trim(0);
    return r;
}

/*
 * Events that change no record (kill, oom, exec_*): one transaction in a
 * briefly opened store, the attributes from the record (or, when it is gone,
 * from the one this monitor started with). A failure is logged, never fatal:
 * the container's life does not depend on its event log.
 */
static void record_events(struct shim *s, size_t n, const char *const *actions,
                          json_t *const *extras)
{
    berth_store_t *st = NULL;
    berth_err_t err = { 0 };
    int r = store_open(s, &st, &err);

    if (r == 0)
        r = berth__container_events(st, s->id, s->record, n, actions, extras, &err);
    berth__store_close(st);
    malloc_trim(0);
    if (r < 0)
        fprintf(stderr, "berth-shim: recording event %s: %s\n", actions[0], err.msg);
}

static void record_event(struct shim *s, const char *action, json_t *extra)
{
    record_events(s, 1, &action, &extra);
}

/* host->emit_event for the driver: one transaction in a briefly opened store. */
static int emit_event(void *userdata, const char *type, const char *action, const char *id,
                      const char *attrs_json, berth_err_t *err)
{
    struct shim *s = userdata;
    _cleanup_json_ json_t *attrs = NULL;
    berth_store_t *st = NULL;
    berth_txn_t *txn = NULL;
    int r;

    if (attrs_json && !json_is_object(attrs = json_loads(attrs_json, 0, NULL)))
        return berth_err_set(err, -EINVAL, "emit_event: attributes are not a JSON object");
    if ((r = store_open(s, &st, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(st, 1, &txn, err)) == 0) {
        r = berth__store_event_append(txn, type, action, id, attrs, NULL, err);
        if (r == 0)
            r = berth__store_txn_commit(txn, err);
        else
            berth__store_txn_abort(txn);
    }
    berth__store_close(st);
    return r;
}

/* ---- small helpers ---- */

/* snprintf for paths: a path that does not fit is an error, never a silent truncation. */
static BERTH_PRINTF(4, 5) int pathf(berth_err_t *err, char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        return berth_err_set(err, -ENAMETOOLONG, "path too long: %s", buf);
    return 0;
}

/* The pid behind a pidfd, from /proc/self/fdinfo; 0 when it is not one. */
static pid_t pidfd_pid(int fd)
{
    char path[64], line[128];
    pid_t pid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    if (!(f = fopen(path, "re")))
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Pid:\t%d", &pid) == 1)
            break;
    fclose(f);
    return pid > 0 ? pid : 0;
}

static void write_ready(struct shim *s, json_t *j)
{
    char *text;
    if (s->ready_fd < 0 || !j)
        return;
    if ((text = json_dumps(j, JSON_COMPACT))) {
        size_t n = strlen(text);
        text[n] = '\n';
        /* A vanished starter is no reason to fail: nothing depends on it. */
        if (write(s->ready_fd, text, n + 1) < 0)
            text[n] = '\0';
        free(text);
    }
    close(s->ready_fd);
    s->ready_fd = -1;
}

static int exit_code_for(int code)
{
    /* Docker's convention for a command that can't run: 127 not found, 126 not executable. */
    if (code == -ENOENT)
        return 127;
    if (code == -EACCES || code == -ENOEXEC)
        return 126;
    return 125;
}

static const char *isolation_name(struct shim *s)
{
    const char *n = json_string_value(json_object_get(s->record, "isolation"));
    return n && *n ? n : s->cfg->default_isolation;
}

/* ---- client output ---- */

struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct client *c = req->handle->data;
    free(req);
    /* A peer that went away (EPIPE) gets no more output queued. Write callbacks run before
     * the close callback, so the client is still allocated here. */
    if (status < 0 && status != UV_ECANCELED)
        client_close(c);
}

static void client_send(struct client *c, int stream, const void *data, size_t len)
{
    struct wreq *w;
    size_t hdr = stream ? 8 : 0;
    uv_buf_t b;

    if (c->closing)
        return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->h) + len > CLIENT_QUEUE_MAX) {
        /* A slow reader loses its connection, never the container its progress. */
        client_close(c);
        return;
    }
    if (!(w = malloc(sizeof(*w) + hdr + len))) {
        client_close(c);
        return;
    }
    if (stream) {
        w->data[0] = (char)stream;
        w->data[1] = w->data[2] = w->data[3] = 0;
        w->data[4] = (char)(len >> 24);
        w->data[5] = (char)(len >> 16);
        w->data[6] = (char)(len >> 8);
        w->data[7] = (char)len;
    }
    memcpy(w->data + hdr, data, len);
    b = uv_buf_init(w->data, (unsigned)(hdr + len));
    if (uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, on_written) < 0) {
        free(w);
        client_close(c);
    }
}

static void client_send_json(struct client *c, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!text) {
        client_close(c);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\n';
    client_send(c, 0, text, n + 1);
    free(text);
}

static void reply_ok(struct client *c, json_t *extra)
{
    json_t *j = extra ? extra : json_object();
    json_object_set_new(j, "ok", json_true());
    client_send_json(c, j);
    json_decref(j);
}

static void reply_err(struct client *c, int code, const char *msg)
{
    json_t *j = json_pack("{s:s, s:i}", "error", msg && *msg ? msg : strerror(-code), "code", code);
    client_send_json(c, j);
    json_decref(j);
}

static void exit_frame(struct client *c, int code)
{
    char payload[48];
    int n = snprintf(payload, sizeof(payload), "{\"exit_code\":%d}", code);
    client_send(c, BERTH_FRAME_EXIT, payload, (size_t)n);
}

/* ---- output streams ---- */

static void deliver(struct shim *s, struct exec *ex, int stream, const char *data, size_t len)
{
    if (ex) {
        /* Exec output is not logged (Docker doesn't either); it goes to its client only. */
        if (ex->client &&
            ((stream == 1 && ex->client->want_out) || (stream == 2 && ex->client->want_err)))
            client_send(ex->client, stream, data, len);
        return;
    }
    if (s->logging) {
        berth_err_t err = { 0 };
        if (berth__log_write(&s->log, stream, data, len, berth__now_ns(), &err) < 0) {
            /* A full disk must not stop the container: keep serving, stop logging. */
            s->logging = 0;
        }
    }
    for (struct client *c = s->clients, *next; c; c = next) {
        next = c->next;
        if (c->stream_mode && !c->ex && !c->closing &&
            ((stream == 1 && c->want_out) || (stream == 2 && c->want_err)))
            client_send(c, stream, data, len);
    }
}

static void ostream_close(struct ostream *o)
{
    if (!o->open)
        return;
    o->open = 0;
    if (!o->ex && o->s->logging)
        berth__log_flush(&o->s->log, o->stream, berth__now_ns(), NULL);
    /* uv_close takes the fd out of epoll at once, so closing it right after is safe. */
    uv_close((uv_handle_t *)&o->poll, NULL);
    close(o->fd);
    o->fd = -1;
}

/* Read what is there now; @drain: until EAGAIN, otherwise a bounded number of chunks. */
static void ostream_read(struct ostream *o, int drain)
{
    char buf[READ_CHUNK];

    for (int i = 0; o->open && (drain || i < 8); i++) {
        ssize_t n = read(o->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            /* EOF, or EIO from a pty master whose last slave closed. */
            ostream_close(o);
            return;
        }
        deliver(o->s, o->ex, o->stream, buf, (size_t)n);
    }
}

static void on_output(uv_poll_t *h, int status, int events)
{
    struct ostream *o = h->data;
    if (status < 0) {
        ostream_close(o);
        return;
    }
    ostream_read(o, 0);
}

static int ostream_open(struct shim *s, struct ostream *o, struct exec *ex, int fd, int stream)
{
    o->s = s;
    o->ex = ex;
    o->fd = fd;
    o->stream = stream;
    if (fd < 0)
        return 0;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (uv_poll_init(&s->loop, &o->poll, fd) < 0)
        return -EINVAL;
    o->poll.data = o;
    o->open = 1;
    uv_poll_start(&o->poll, UV_READABLE | UV_DISCONNECT, on_output);
    return 0;
}

/* ---- stdin ---- */

static void on_stdin_written(uv_write_t *req, int status)
{
    uv_stream_t *in = req->handle;
    struct shim *s = in->data;

    free(req);
    /* Once the container consumed half the queue, resume the clients paused for it. (No client
     * pointer is kept in the request: the client may be gone by now.) */
    if (!s || uv_is_closing((uv_handle_t *)in) ||
        uv_stream_get_write_queue_size(in) > STDIN_QUEUE_MAX / 2)
        return;
    for (struct client *c = s->clients, *next; c; c = next) {
        next = c->next;
        if (c->reading_paused && !c->closing) {
            c->reading_paused = 0;
            uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
            client_process(c);
        }
    }
}

static void stdin_close(uv_pipe_t *in, int *open)
{
    if (*open) {
        *open = 0;
        uv_close((uv_handle_t *)in, NULL);
    }
}

/* Copy client bytes to the container's (or exec's) stdin; 1 when the client must pause. */
static int stdin_feed(struct client *c, const char *data, size_t len)
{
    uv_pipe_t *in = c->ex ? &c->ex->in : &c->s->in;
    int open = c->ex ? c->ex->in_open : c->s->in_open;
    struct wreq *w;
    uv_buf_t b;

    if (!c->want_in || !open || len == 0)
        return 0;
    if (!(w = malloc(sizeof(*w) + len)))
        return 0;
    memcpy(w->data, data, len);
    b = uv_buf_init(w->data, (unsigned)len);
    in->data = c->s;
    if (uv_write(&w->req, (uv_stream_t *)in, &b, 1, on_stdin_written) < 0) {
        free(w);
        return 0;
    }
    return uv_stream_get_write_queue_size((uv_stream_t *)in) > STDIN_QUEUE_MAX;
}

/* ---- exit handling ---- */

static void answer_waiters(struct shim *s)
{
    for (struct client *c = s->clients, *next; c; c = next) {
        next = c->next;
        if (!c->waiting || c->closing)
            continue;
        c->waiting = 0;
        uv_timer_stop(&c->timer);
        reply_ok(c, json_pack("{s:i, s:b}", "exit_code", s->exit_code, "oom_killed", s->oom));
        if (c->eof)
            client_finish(c);
        else
            client_process(c);
    }
}

static void exec_release(struct shim *s, struct exec *ex)
{
    if (ex->has_waith) {
        ex->has_waith = 0;
        uv_close((uv_handle_t *)&ex->waith, NULL);
    }
    if (ex->proc && HAS_OP(s, process_release))
        s->ops->process_release(s->drv->priv, ex->proc);
    ex->proc = NULL;
}

/*
 * The driver's word on why a process ended (berth_exit_status_t.error, ABI
 * 1.2: a VM that died, a guest panic), "" when it has none. The caller
 * zeroed the status before the wait, so a driver that says nothing leaves
 * it empty.
 */
static const char *exit_error(const berth_exit_status_t *st)
{
    if (st->struct_size < offsetof(berth_exit_status_t, error) + sizeof(st->error))
        return "";
    return memchr(st->error, '\0', sizeof(st->error)) ? st->error : "";
}

/*
 * Tell whoever reads the process's output that the driver ended it, as one
 * line after its own output: "berth: the VM of container ... ended: ...".
 * With a terminal there is only one stream, and the line needs a CR.
 */
static void deliver_exit_error(struct shim *s, struct exec *ex, int tty, const char *msg)
{
    char line[BERTH_ERR_MSG_MAX + 16];
    int n;

    if (!*msg)
        return;
    n = snprintf(line, sizeof(line), "berth: %s%s", msg, tty ? "\r\n" : "\n");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    deliver(s, ex, tty ? 1 : 2, line, (size_t)n);
}

static void exec_exited(struct shim *s, struct exec *ex, const berth_exit_status_t *st)
{
    char code[16];
    json_t *a;

    ex->running = 0;
    ex->exit_code = st->exit_code;
    snprintf(code, sizeof(code), "%d", ex->exit_code);
    a = json_pack("{s:s, s:s}", "execID", ex->id, "exitCode", code);
    record_event(s, "exec_die", a);
    json_decref(a);
    ostream_read(&ex->out[0], 1);
    ostream_read(&ex->out[1], 1);
    deliver_exit_error(s, ex, ex->tty, exit_error(st));
    ostream_close(&ex->out[0]);
    ostream_close(&ex->out[1]);
    stdin_close(&ex->in, &ex->in_open);
    /* The exit code is recorded before the stream ends, so exec_state agrees with the frame. */
    if (ex->client) {
        exit_frame(ex->client, ex->exit_code);
        client_finish(ex->client);
        ex->client->ex = NULL;
        ex->client = NULL;
    }
    exec_release(s, ex);
}

static void remove_bundle(struct shim *s)
{
    if (s->bundle[0])
        berth__rm_rf(s->bundle);
}

/*
 * Detach the networks and forget their endpoints, while the sandbox's netns
 * still exists (the driver cleans inside it too). Not while another thread
 * has the store open: LMDB allows one environment per file per process.
 */
static void net_teardown(struct shim *s)
{
    berth_store_t *stp = NULL;
    berth_err_t err = { 0 };

    if (!s->net)
        return;
    if (store_open(s, &stp, &err) < 0)
        fprintf(stderr, "berth-shim: opening the store to detach networks: %s\n", err.msg);
    berth__netsetup_teardown(s->net, stp);
    berth__store_close(stp);
    s->net = NULL;
}

/* Undo what setup created; used on failures and after the exit. */
static void teardown_container(struct shim *s, int force)
{
    berth_err_t err = { 0 };

    if (s->has_waith) {
        s->has_waith = 0;
        uv_close((uv_handle_t *)&s->waith, NULL);
    }
    for (struct exec *ex = s->execs; ex; ex = ex->next) {
        ostream_close(&ex->out[0]);
        ostream_close(&ex->out[1]);
        stdin_close(&ex->in, &ex->in_open);
        exec_release(s, ex);
    }
    if (s->container) {
        /* delete frees the handle even when it fails; the bundle removal below follows anyway. */
        s->ops->container_delete(s->drv->priv, s->container, force ? BERTH_DELETE_FORCE : 0, &err);
        s->container = NULL;
        s->init = NULL;
    }
    net_teardown(s);
    if (s->sandbox) {
        s->ops->sandbox_destroy(s->drv->priv, s->sandbox, BERTH_DELETE_FORCE, &err);
        s->sandbox = NULL;
    }
}

static void close_server(struct shim *s)
{
    if (s->server_open) {
        s->server_open = 0;
        uv_close((uv_handle_t *)&s->server, NULL);
    }
}

static void close_sigchld(struct shim *s)
{
    if (s->sigchld_open) {
        s->sigchld_open = 0;
        uv_signal_stop(&s->sigchld);
        uv_close((uv_handle_t *)&s->sigchld, NULL);
    }
}

/* Reap zombies nobody else claims (reparented to us as the subreaper). */
static void reap_orphans(struct shim *s)
{
    for (;;) {
        siginfo_t si = { 0 };
        pid_t pid;

        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return;
        pid = si.si_pid;
        /* Give the driver the first chance: it may be waiting for this very child. */
        check_processes(s);
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            waitpid(pid, NULL, WNOHANG);
    }
}

/* The exit and removal of a self-removing container, recorded on a thread of its own. */
struct removal {
    struct shim *s;
    json_t *patch, *attrs;
    json_t *volumes; /* the anonymous volumes whose records went with the container's */
    int removed;
};

static void *record_removal(void *arg)
{
    struct removal *rm = arg;
    struct shim *s = rm->s;
    berth_store_t *stp = NULL;
    berth_err_t err = { 0 };

    rm->removed = store_open(s, &stp, &err) == 0 &&
                  berth__lc_exit_remove(stp, s->id, rm->patch, rm->attrs, rm->volumes, &err) == 0;
    berth__store_close(stp);
    if (!rm->removed) {
        fprintf(stderr, "berth-shim: removing the container: %s\n", err.msg);
        /* At least the exit must be on record. */
        if (transition(s, BERTH_OP_EXIT, BERTH_ST_EXITED, rm->patch, "die", rm->attrs, &err) < 0)
            fprintf(stderr, "berth-shim: recording the exit: %s\n", err.msg);
    }
    return NULL;
}

static void init_exited(struct shim *s, const berth_exit_status_t *st)
{
    berth_err_t err = { 0 };
    json_t *patch, *attrs;
    char code[16];
    int autoremove;

    if (s->exited)
        return;
    s->exited = 1;
    s->exit_code = st->exit_code;
    s->oom = !!(st->flags & BERTH_EXIT_F_OOM_KILLED);

    /* Output first: whatever the process wrote belongs before its exit. */
    ostream_read(&s->out[0], 1);
    ostream_read(&s->out[1], 1);
    /* Then the driver's word on why it ended, if any: in the log and to attached clients. */
    deliver_exit_error(s, NULL, s->tty, exit_error(st));
    ostream_close(&s->out[0]);
    ostream_close(&s->out[1]);
    stdin_close(&s->in, &s->in_open);

    /* A driver's text that is not UTF-8 is no JSON string: the error is then only in the log. */
    patch =
        json_pack("{s:i, s:b, s:I, s:i, s:o*}", "ExitCode", s->exit_code, "OOMKilled", s->oom,
                  "FinishedAt", (json_int_t)(st->finished_ns ? st->finished_ns : berth__now_ns()),
                  "Pid", 0, "Error", json_string(exit_error(st)));
    snprintf(code, sizeof(code), "%d", s->exit_code);
    attrs = json_pack("{s:s}", "exitCode", code);
    if (s->started_ns &&
        json_object_set_new(
            attrs, "execDuration",
            json_sprintf("%lld", (long long)((berth__now_ns() - s->started_ns) / 1000000000))) < 0)
        fprintf(stderr, "berth-shim: out of memory\n");
    /* Docker tells of the OOM kill before the exit it caused. */
    if (s->oom)
        record_event(s, "oom", NULL);
    autoremove =
        json_is_true(json_object_get(json_object_get(s->record, "host_config"), "AutoRemove"));
    /*
     * A container that removes itself records its exit together with its
     * removal, once it is torn down (one durable commit instead of two, on
     * the path `run --rm` waits for); waiters and attached clients learn
     * the exit code from us meanwhile.
     */
    if (!autoremove && transition(s, BERTH_OP_EXIT, BERTH_ST_EXITED, patch, "die", attrs, &err) < 0)
        fprintf(stderr, "berth-shim: recording the exit: %s\n", err.msg);
    s->status = BERTH_ST_EXITED;

    answer_waiters(s);
    for (struct client *c = s->clients, *next; c; c = next) {
        next = c->next;
        if (c->stream_mode && !c->ex)
            exit_frame(c, s->exit_code);
        if (!c->closing)
            client_finish(c);
    }
    close_server(s);
    /*
     * A self-removing container's record goes while it is torn down: the
     * durable commit (two disk flushes) and the teardown (killing what is
     * left, cgroups, mounts, the bundle) overlap. Clients see the stream
     * close only after both, when this function has returned.
     */
    struct removal rm = { .s = s, .patch = patch, .attrs = attrs, .volumes = json_array() };
    pthread_t remover;
    /* Before the remover opens the store on its thread. */
    if (autoremove)
        net_teardown(s);
    int removing = autoremove && pthread_create(&remover, NULL, record_removal, &rm) == 0;
    /* The init is gone: whatever else still runs in the container goes with it, as in Docker. */
    teardown_container(s, 1);
    remove_bundle(s);

    if (autoremove) {
        if (removing)
            pthread_join(remover, NULL);
        else
            record_removal(&rm);
        if (rm.removed)
            berth__container_storage_release(s->reg, s->cfg->plugin_dirs, s->record, &err);
        /* run --rm: the anonymous volumes' data goes once nothing has them mounted. */
        if (rm.removed) {
            json_t *v;
            size_t i;
            json_array_foreach (rm.volumes, i, v)
                berth__volume_discard(s->cfg->root, json_string_value(v));
        }
        malloc_trim(0);
        if (s->logging) {
            berth__log_close(&s->log);
            s->logging = 0;
        }
        berth__rm_rf(s->persist);
    }
    json_decref(rm.volumes);
    json_decref(patch);
    json_decref(attrs);
    close_sigchld(s);
    reap_orphans(s);
}

static void check_processes(struct shim *s)
{
    berth_exit_status_t st;

    for (struct exec *ex = s->execs; ex; ex = ex->next) {
        if (!ex->running || !ex->proc)
            continue;
        memset(&st, 0, sizeof(st));
        st.struct_size = sizeof(st);
        if (s->ops->process_wait(s->drv->priv, ex->proc, BERTH_WAIT_NOHANG, &st, NULL) == 0)
            exec_exited(s, ex, &st);
    }
    if (!s->exited && s->init && (s->status & (BERTH_ST_RUNNING | BERTH_ST_PAUSED))) {
        memset(&st, 0, sizeof(st));
        st.struct_size = sizeof(st);
        if (s->ops->process_wait(s->drv->priv, s->init, BERTH_WAIT_NOHANG, &st, NULL) == 0)
            init_exited(s, &st);
    }
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    struct shim *s = h->data;
    check_processes(s);
    reap_orphans(s);
}

static void on_waith(uv_poll_t *h, int status, int events)
{
    struct shim *s = h->data;
    uv_poll_stop(h);
    check_processes(s);
}

/* Watch @proc's wait handle when the driver offers one; returns the pid behind it or 0. */
static pid_t watch_process(struct shim *s, void *proc, uv_poll_t *poll, int *has)
{
    berth_handle_t hd = BERTH_HANDLE_NONE;

    if (!HAS_OP(s, process_wait_handle) ||
        s->ops->process_wait_handle(s->drv->priv, proc, &hd, NULL) < 0 || hd < 0)
        return 0;
    if (uv_poll_init(&s->loop, poll, (int)hd) < 0)
        return 0;
    poll->data = s;
    uv_poll_start(poll, UV_READABLE, on_waith);
    *has = 1;
    return pidfd_pid((int)hd);
}

/* ---- failures before the container ran ---- */

/* Record a failed start, report it to the starter, undo everything; the caller exits. */
static void fail_start(struct shim *s, int code, int exit_code, const char *why)
{
    berth_err_t err = { 0 };
    char ec[16], msg[BERTH_ERR_MSG_MAX];
    json_t *j;

    /* As JSON text, or the record and the starter would get no reason at all. */
    snprintf(msg, sizeof(msg), "%s", why ? why : "");
    berth_utf8_fix(msg);

    /* A record the engine did not commit is not ours to write to. */
    if (s->record && await_commit(s)) {
        json_t *patch = json_pack("{s:i, s:s, s:i, s:I}", "ExitCode", exit_code, "Error", msg,
                                  "Pid", 0, "FinishedAt", (json_int_t)berth__now_ns());
        json_t *attrs;
        snprintf(ec, sizeof(ec), "%d", exit_code);
        attrs = json_pack("{s:s}", "exitCode", ec);
        transition(s, BERTH_OP_START, BERTH_ST_EXITED, patch, "die", attrs, &err);
        json_decref(patch);
        json_decref(attrs);
    }
    /* Undo everything before answering, so the starter finds a consistent host. */
    for (struct client *c = s->clients; c; c = c->next)
        client_finish(c);
    close_server(s);
    teardown_container(s, 1);
    remove_bundle(s);
    j = json_pack("{s:s, s:i, s:i}", "error", msg, "exit_code", exit_code, "code", code);
    write_ready(s, j);
    json_decref(j);
    if (s->logging) {
        berth__log_close(&s->log);
        s->logging = 0;
    }
    close_sigchld(s);
    s->failed = 1;
    ostream_close(&s->out[0]);
    ostream_close(&s->out[1]);
    stdin_close(&s->in, &s->in_open);
}

/*
 * The engine could not commit the record it gave us (a name taken
 * meanwhile, a full disk): the container never existed. Undo everything,
 * the log and its directory too, and let the loop end.
 */
static void abort_uncommitted(struct shim *s)
{
    for (struct client *c = s->clients; c; c = c->next)
        client_finish(c);
    close_server(s);
    teardown_container(s, 1);
    remove_bundle(s);
    if (s->logging) {
        berth__log_close(&s->log);
        s->logging = 0;
    }
    berth__rm_rf(s->persist);
    close_sigchld(s);
    s->failed = 1;
    ostream_close(&s->out[0]);
    ostream_close(&s->out[1]);
    stdin_close(&s->in, &s->in_open);
    /* Done: the engine, waiting for this, may now release the container's storage. */
    if (s->record_fd >= 0) {
        close(s->record_fd);
        s->record_fd = -1;
    }
}

/*
 * The container is being removed while this monitor waits to start it
 * (docker run attaches before it starts; a client or daemon that went away
 * in between leaves the monitor waiting). Undo the setup (init, sandbox,
 * cgroups, mounts, bundle), close the log, answer @asker once all that is
 * done, so the remover deletes the record and the storage after us, and let
 * the loop end. The record and its log directory are the remover's.
 */
static void cancel_waiting(struct shim *s, struct client *asker)
{
    close_server(s);
    teardown_container(s, 1);
    remove_bundle(s);
    if (s->logging) {
        berth__log_close(&s->log);
        s->logging = 0;
    }
    if (s->record_polling) {
        s->record_polling = 0;
        uv_poll_stop(&s->record_poll);
        uv_close((uv_handle_t *)&s->record_poll, NULL);
    }
    if (s->record_fd >= 0) {
        close(s->record_fd);
        s->record_fd = -1;
    }
    reply_ok(asker, NULL);
    for (struct client *c = s->clients; c; c = c->next)
        client_finish(c);
    close_sigchld(s);
    ostream_close(&s->out[0]);
    ostream_close(&s->out[1]);
    stdin_close(&s->in, &s->in_open);
}

static void on_record_fd(uv_poll_t *h, int status, int events)
{
    struct shim *s = h->data;
    (void)status;
    (void)events;
    if (!await_commit(s))
        abort_uncommitted(s);
}

/* ---- setup ---- */

static int load_driver(struct shim *s, berth_err_t *err)
{
    const char *name = isolation_name(s);
    berth_plugin_env_t env = {
        .root = s->cfg->root,
        .runroot = s->cfg->runroot,
        .drivers_config = s->cfg->drivers,
        .emit_event = emit_event,
        .event_userdata = s,
    };
    char path[PATH_MAX];
    int r;

    if (!name || !berth__driver_name_valid(name))
        return berth_err_set(err, -EINVAL, "invalid isolation driver name \"%s\"",
                             name ? name : "");
    if ((r = berth__registry_new(&env, &s->reg, err)) < 0)
        return r;
    /* Only our own module: every other driver would cost its pages in every shim. */
    for (size_t i = 0; s->cfg->plugin_dirs && s->cfg->plugin_dirs[i]; i++) {
        snprintf(path, sizeof(path), "%s/isolation-%s%s", s->cfg->plugin_dirs[i], name,
                 BERTH_MODULE_EXT);
        if (access(path, R_OK) == 0 && berth__registry_load_file(s->reg, path, NULL) == 0 &&
            berth__registry_find(s->reg, BERTH_KIND_ISOLATION, name))
            break;
    }
    /* A module named differently from its driver is still found, by a full scan. */
    if (!berth__registry_find(s->reg, BERTH_KIND_ISOLATION, name) &&
        (r = berth__registry_load_dirs(s->reg, s->cfg->plugin_dirs, err)) < 0)
        return r;
    s->drv = berth__registry_find(s->reg, BERTH_KIND_ISOLATION, name);
    if (!s->drv) {
        char loaded[256] = "";
        size_t n = 0;
        for (size_t i = 0; i < berth__registry_count(s->reg); i++) {
            berth_driver_t *d = berth__registry_driver(s->reg, i);
            if (d->kind == BERTH_KIND_ISOLATION && n < sizeof(loaded))
                n += (size_t)snprintf(loaded + n, sizeof(loaded) - n, "%s%s", n ? ", " : "",
                                      d->desc->name);
        }
        return berth_err_set(err, -ENOENT, "isolation driver \"%s\" is not available (loaded: %s)",
                             name, n ? loaded : "none");
    }
    s->ops = s->drv->ops;
    return 0;
}

/*
 * The root filesystem as mount descriptors: for an image, the storage
 * driver's list recorded at create time (container-storage.h); for --rootfs
 * DIR, one rbind of the directory.
 */
struct rootfs_list {
    berth_mount_list_t list;
    berth_mount_t mount;
    const char *options[1];
    char *source;
};

static void rootfs_release(berth_mount_list_t *list)
{
    struct rootfs_list *rl = list->priv;
    free(rl->source);
    free(rl);
}

static int rootfs_prepare(struct shim *s, berth_mount_list_t **ret, berth_err_t *err)
{
    const char *dir = json_string_value(json_object_get(s->record, "rootfs"));
    json_t *storage = json_object_get(s->record, "storage");
    struct rootfs_list *rl;
    struct stat st;

    /* From an image: the mounts the storage driver gave at create time. */
    if (storage) {
        int r = berth__mounts_from_json(json_object_get(storage, "mounts"), ret, err);
        if (r < 0)
            return r;
        /*
         * A writable layer is not synced (nor is anything a container writes):
         * after a power failure it can be gone. Say so, rather than let a
         * mount fail on a missing directory.
         */
        for (size_t i = 0; i < (*ret)->n_mounts; i++) {
            const berth_mount_t *m = &(*ret)->mounts[i];
            for (size_t k = 0; k < m->n_options; k++) {
                const char *o = m->options[k], *eq = strchr(o, '=');
                if (eq && (!strncmp(o, "upperdir=", 9) || !strncmp(o, "workdir=", 8)) &&
                    stat(eq + 1, &st) < 0) {
                    const char *key = json_string_value(json_object_get(storage, "key"));
                    berth_mount_list_free(*ret);
                    *ret = NULL;
                    /* Not ENOENT: that means "command not found" (exit 127) to callers. */
                    return berth_err_set(err, -EUCLEAN,
                                         "the container's writable layer %s is gone (lost in a "
                                         "power failure?): remove the container",
                                         key ? key : "");
                }
            }
        }
        return 0;
    }

    if (!dir || dir[0] != '/')
        return berth_err_set(err, -EINVAL, "container has no root filesystem");
    if (stat(dir, &st) < 0)
        return berth_err_set(err, -errno, "rootfs %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return berth_err_set(err, -ENOTDIR, "rootfs %s is not a directory", dir);
    if (!(rl = calloc(1, sizeof(*rl))) || !(rl->source = strdup(dir))) {
        free(rl);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    rl->options[0] = "rbind";
    rl->mount = (berth_mount_t){ .struct_size = sizeof(berth_mount_t),
                                 .type = "bind",
                                 .source = rl->source,
                                 .target = "",
                                 .options = rl->options,
                                 .n_options = 1 };
    rl->list = (berth_mount_list_t){ .struct_size = sizeof(berth_mount_list_t),
                                     .n_mounts = 1,
                                     .mounts = &rl->mount,
                                     .release = rootfs_release,
                                     .priv = rl };
    *ret = &rl->list;
    return 0;
}

/* The seccomp profile the container runs with (new reference), or NULL for none. */
static int seccomp_load(struct shim *s, json_t **ret, berth_err_t *err)
{
    json_t *secopt = json_object_get(json_object_get(s->record, "host_config"), "SecurityOpt");
    const char *file = NULL, *env = getenv("BERTH_SECCOMP_PROFILE");
    json_t *v, *prof, *inner;
    json_error_t jerr;
    size_t i;

    json_array_foreach (secopt, i, v) {
        const char *o = json_string_value(v);
        if (o && strcmp(o, "seccomp=unconfined") == 0) {
            s->seccomp_note = "unconfined";
            *ret = NULL;
            return 0;
        }
        if (o && strncmp(o, "seccomp=", 8) == 0)
            file = o + 8;
    }
    if (!file && access(BERTH_SYSCONFDIR "/seccomp-default.json", R_OK) == 0)
        file = BERTH_SYSCONFDIR "/seccomp-default.json";
    if (!file && env && *env && access(env, R_OK) == 0)
        file = env;
    if (!file) {
        s->seccomp_note = "none: no default profile installed";
        *ret = NULL;
        return 0;
    }
    prof = json_load_file(file, 0, &jerr);
    if (!json_is_object(prof)) {
        json_decref(prof);
        return berth_err_set(err, -EINVAL, "seccomp profile %s: %s", file, jerr.text);
    }
    /* A whole OCI spec fragment is accepted too: take its linux.seccomp. */
    inner = json_object_get(json_object_get(prof, "linux"), "seccomp");
    if (json_is_object(inner)) {
        json_incref(inner);
        json_decref(prof);
        prof = inner;
    }
    s->seccomp_note = "profile";
    *ret = prof;
    return 0;
}

static int write_file(const char *path, const char *text, berth_err_t *err)
{
    size_t len = strlen(text), off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return berth_err_set(err, -errno, "%s: %s", path, strerror(errno));
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int r = -errno;
            close(fd);
            return berth_err_set(err, r, "%s: %s", path, strerror(-r));
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

static void on_connection(uv_stream_t *server, int status);

static int listen_socket(struct shim *s, berth_err_t *err)
{
    struct sockaddr_un sa;
    int dirfd = -1, fd, r;

    if ((r = pathf(err, s->sock_path, sizeof(s->sock_path), "%s/shim.sock", s->bundle)) < 0)
        return r;
    if ((r = berth__unix_sockaddr(s->sock_path, &sa, &dirfd, err)) < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = berth_err_set(err, -errno, "socket: %s", strerror(errno));
        goto out;
    }
    unlink(s->sock_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(s->sock_path, 0600) < 0 ||
        listen(fd, 64) < 0) {
        r = berth_err_set(err, -errno, "%s: %s", s->sock_path, strerror(errno));
        close(fd);
        goto out;
    }
    uv_pipe_init(&s->loop, &s->server, 0);
    if ((r = uv_pipe_open(&s->server, fd)) < 0) {
        close(fd);
        r = berth_err_set(err, r, "control socket: %s", uv_strerror(r));
        goto out;
    }
    s->server_open = 1;
    s->server.data = s;
    if ((r = uv_listen((uv_stream_t *)&s->server, 64, on_connection)) < 0)
        r = berth_err_set(err, r, "control socket: %s", uv_strerror(r));
out:
    if (dirfd >= 0)
        close(dirfd);
    return r;
}

/* Close what is open of three pipe pairs (-1 marks a closed end). */
static void close_pipes(int inp[2], int outp[2], int errp[2])
{
    for (int i = 0; i < 2; i++) {
        if (inp[i] >= 0)
            close(inp[i]);
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
}

/* --record-fd: the record the engine is committing, JSON up to a NUL. */
static int read_record(struct shim *s, berth_err_t *err)
{
    char *buf = NULL, *nul = NULL;
    size_t len = 0, cap = 0;
    json_error_t jerr;

    for (;;) {
        ssize_t n;
        if (len + 4096 > cap) {
            char *grown = realloc(buf, cap = cap ? 2 * cap : 16384);
            if (!grown || cap > BERTH_SHIM_LINE_MAX * 16) {
                free(grown ? grown : buf);
                return berth_err_set(err, -E2BIG, "the container record is too large");
            }
            buf = grown;
        }
        n = read(s->record_fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return berth_err_set(err, n < 0 ? -errno : -EPIPE,
                                 "the engine went away before sending the container record");
        }
        len += (size_t)n;
        if ((nul = memchr(buf + len - (size_t)n, '\0', (size_t)n)))
            break;
    }
    /* A slow start can find the engine's answer already behind the record. */
    if (nul + 1 < buf + len)
        s->commit_answer = nul[1];
    s->record = json_loads(buf, 0, &jerr);
    free(buf);
    if (!json_is_object(s->record) || !json_string_value(json_object_get(s->record, "id")) ||
        strcmp(json_string_value(json_object_get(s->record, "id")), s->id) != 0)
        return berth_err_set(err, -EPROTO, "bad container record from the engine: %s",
                             s->record ? "wrong id" : jerr.text);
    return 0;
}

/*
 * Whether the engine committed the record (it writes "1", or closes
 * without). Blocks until it says; later calls repeat the answer.
 */
static int await_commit(struct shim *s)
{
    char c = 0;
    ssize_t n = 0;

    if (s->record_polling) {
        s->record_polling = 0;
        uv_poll_stop(&s->record_poll);
        uv_close((uv_handle_t *)&s->record_poll, NULL);
    }
    if (s->record_fd < 0 || s->commit_known)
        return s->committed;
    if ((c = s->commit_answer) == 0)
        while ((n = read(s->record_fd, &c, 1)) < 0 && errno == EINTR)
            ;
    s->commit_known = 1;
    s->committed = c == '1';
    /* Not committed: the engine waits for this end to close, after abort_uncommitted. */
    if (s->committed) {
        close(s->record_fd);
        s->record_fd = -1;
    }
    return s->committed;
}

static int setup(struct shim *s, int *ret_exit_code, berth_err_t *err)
{
    berth_engine_opts_t opts = {
        .struct_size = sizeof(opts),
        /* The store and the drivers are handled here, so that only one driver loads. */
        .flags = BERTH_ENGINE_F_NO_STORE | BERTH_ENGINE_F_NO_PLUGINS,
        .config_path = s->config_path,
        .root = s->root,
        .runroot = s->runroot,
        .plugin_path = s->plugin_path,
    };
    _cleanup_json_ json_t *sandbox_cfg = NULL;
    _cleanup_json_ json_t *seccomp = NULL;
    _cleanup_json_ json_t *spec = NULL;
    _cleanup_free_ char *spec_text = NULL;
    _cleanup_free_ char *cfg_text = NULL;
    berth_mount_list_t *rootfs = NULL;
    berth_net_attach_t attach = { .struct_size = sizeof(attach) };
    berth_oci_opts_t oci = { 0 };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio) };
    json_t *config, *hc, *logcfg;
    const char *netmode, *hostname;
    char path[PATH_MAX], hn[16];
    int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
    uint64_t max_size;
    unsigned max_files;
    berth_store_t *st = NULL;
    int r;

    *ret_exit_code = 125;
    if ((r = berth_engine_open(&opts, &s->engine, err)) < 0)
        return r;
    s->cfg = berth__engine_config(s->engine);
    if ((r = pathf(err, s->store_dir, sizeof(s->store_dir), "%s/store", s->cfg->root)) < 0)
        return r;
    if (s->record_fd >= 0) {
        r = read_record(s, err);
    } else {
        if ((r = store_open(s, &st, err)) == 0)
            r = berth__container_get(st, s->id, &s->record, err);
        berth__store_close(st);
    }
    if (r < 0)
        return r;
    /* A full id from here on, whatever reference we were given. */
    s->id = json_string_value(json_object_get(s->record, "id"));
    if ((r = berth__lc_check(s->record, BERTH_OP_START, err)) < 0)
        return r;
    config = json_object_get(s->record, "config");
    hc = json_object_get(s->record, "host_config");
    s->tty = json_is_true(json_object_get(config, "Tty"));
    s->open_stdin = json_is_true(json_object_get(config, "OpenStdin"));
    s->stdin_once = json_is_true(json_object_get(config, "StdinOnce"));

    if ((r = pathf(err, s->bundle, sizeof(s->bundle), "%s/containers/%s", s->cfg->runroot, s->id)) <
            0 ||
        (r = pathf(err, s->persist, sizeof(s->persist), "%s/containers/%s", s->cfg->root, s->id)) <
            0)
        return r;
    berth__rm_rf(s->bundle); /* a crashed predecessor's leftovers */
    if ((r = berth__mkdir_p(s->bundle, 0700, err)) < 0 ||
        (r = berth__mkdir_p(s->persist, 0700, err)) < 0)
        return r;
    /*
     * Search-only for others on the bundle and its parent (whatever the
     * umask): a user-namespaced container's root, an unprivileged uid on the
     * host, must pass through them to reach its rootfs mount point.
     */
    {
        char parent[sizeof(s->bundle)];
        snprintf(parent, sizeof(parent), "%s", s->bundle);
        *strrchr(parent, '/') = '\0';
        if (chmod(parent, 0711) < 0 || chmod(s->bundle, 0711) < 0)
            return berth_err_set(err, -errno, "chmod %s: %s", s->bundle, strerror(errno));
    }

    if ((r = load_driver(s, err)) < 0)
        return r;

    /* Sandbox: the isolation boundary, then how networks reach it. */
    netmode = json_string_value(json_object_get(hc, "NetworkMode"));
    if (!netmode || !*netmode)
        netmode = "none";
    hostname = json_string_value(json_object_get(config, "Hostname"));
    if (!hostname || !*hostname) {
        snprintf(hn, sizeof(hn), "%.12s", s->id);
        hostname = hn;
    }
    /* A sandbox on networks gets an empty netns of its own, which the network drivers fill. */
    sandbox_cfg = json_pack("{s:s, s:s}", "hostname", hostname, "network",
                            berth__network_is_pseudo(netmode) ? netmode : "netns");
    cfg_text = sandbox_cfg ? json_dumps(sandbox_cfg, JSON_COMPACT) : NULL;
    if (!cfg_text)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = pathf(err, path, sizeof(path), "%s/sandbox", s->bundle)) < 0 ||
        (r = berth__mkdir_p(path, 0700, err)) < 0)
        return r;
    {
        berth_sandbox_spec_t sb = {
            .struct_size = sizeof(sb), .id = s->id, .state_dir = path, .config_json = cfg_text
        };
        if ((r = s->ops->sandbox_create(s->drv->priv, &sb, 0, &s->sandbox, err)) < 0)
            return r;
    }
    if ((r = s->ops->sandbox_network(s->drv->priv, s->sandbox, 0, &attach, err)) < 0)
        return r;

    /* Networks: ports reserved, endpoints attached, /etc/hosts and friends written. */
    {
        berth_store_t *stp = NULL;
        char etc[PATH_MAX];
        if ((r = pathf(err, etc, sizeof(etc), "%s/etc", s->bundle)) < 0 ||
            (r = store_open(s, &stp, err)) < 0)
            return r;
        r = berth__netsetup(stp, s->reg, s->cfg->plugin_dirs, s->record, &attach, hostname, etc,
                            &s->net, err);
        berth__store_close(stp);
        if (r < 0)
            return r;
        /*
         * Not under a user namespace yet: the process driver resolves bind
         * sources as the mapped root, which can't reach the runroot.
         */
        if (!json_string_value(json_object_get(hc, "UsernsMode")) ||
            !*json_string_value(json_object_get(hc, "UsernsMode")))
            oci.etc_dir = etc;
        if ((r = seccomp_load(s, &seccomp, err)) < 0)
            return r;
        if (attach.type == BERTH_NET_ATTACH_NETNS && attach.path[0])
            oci.netns_path = attach.path;
        oci.host_network = strcmp(netmode, "host") == 0;
        oci.seccomp = seccomp;
        if ((r = berth__oci_spec_build(s->record, &oci, &spec, err)) < 0)
            return r;
    }
    if (!(spec_text = json_dumps(spec, JSON_INDENT(2))))
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = pathf(err, path, sizeof(path), "%s/config.json", s->bundle)) < 0 ||
        (r = write_file(path, spec_text, err)) < 0)
        return r;

    /* Logs before the container exists: output must never find the log missing. */
    logcfg = json_object_get(hc, "LogConfig");
    s->logging = !json_string_value(json_object_get(logcfg, "Type")) ||
                 strcmp(json_string_value(json_object_get(logcfg, "Type")), "none") != 0;
    if (s->logging) {
        if ((r = berth__log_parse_opts(json_object_get(logcfg, "Config"), &max_size, &max_files,
                                       err)) < 0)
            return r;
        if ((r = pathf(err, path, sizeof(path), "%s/%s-json.log", s->persist, s->id)) < 0)
            return r;
        if ((r = berth__log_open(&s->log, path, max_size, max_files, err)) < 0)
            return r;
    }

    /* Stdio: the driver duplicates the child ends; ours are closed right after create. */
    stdio.in = stdio.out = stdio.err = stdio.tty_master = BERTH_HANDLE_NONE;
    if (s->tty) {
        stdio.flags = BERTH_STDIO_F_TTY;
        stdio.tty_cols = 80;
        stdio.tty_rows = 24;
    } else {
        if ((s->open_stdin && pipe2(inp, O_CLOEXEC) < 0) || pipe2(outp, O_CLOEXEC) < 0 ||
            pipe2(errp, O_CLOEXEC) < 0) {
            r = berth_err_set(err, -errno, "pipe: %s", strerror(errno));
            goto close_pipes;
        }
        stdio.in = inp[0];
        stdio.out = outp[1];
        stdio.err = errp[1];
    }
    if ((r = rootfs_prepare(s, &rootfs, err)) < 0)
        goto close_pipes;
    if ((r = pathf(err, path, sizeof(path), "%s/container", s->bundle)) < 0 ||
        (r = berth__mkdir_p(path, 0700, err)) < 0)
        goto close_pipes;
    {
        berth_container_spec_t cs = { .struct_size = sizeof(cs),
                                      .id = s->id,
                                      .state_dir = path,
                                      .oci_spec_json = spec_text,
                                      .rootfs = rootfs,
                                      .stdio = &stdio };
        r = s->ops->container_create(s->drv->priv, s->sandbox, &cs, 0, &s->container, err);
    }
    berth_mount_list_free(rootfs);
    if (r < 0) {
        *ret_exit_code = exit_code_for(r);
        goto close_pipes;
    }
    s->init = s->ops->container_init_process(s->drv->priv, s->container);
    if (s->tty) {
        if (stdio.tty_master >= 0) {
            ostream_open(s, &s->out[0], NULL, (int)stdio.tty_master, 1);
            int wfd = dup((int)stdio.tty_master);
            uv_pipe_init(&s->loop, &s->in, 0);
            if (wfd >= 0 && uv_pipe_open(&s->in, wfd) == 0)
                s->in_open = 1;
            else {
                uv_close((uv_handle_t *)&s->in, NULL);
                if (wfd >= 0)
                    close(wfd);
            }
        }
    } else {
        close(outp[1]);
        close(errp[1]);
        ostream_open(s, &s->out[0], NULL, outp[0], 1);
        ostream_open(s, &s->out[1], NULL, errp[0], 2);
        if (inp[0] >= 0) {
            close(inp[0]);
            uv_pipe_init(&s->loop, &s->in, 0);
            if (uv_pipe_open(&s->in, inp[1]) == 0)
                s->in_open = 1;
        }
    }
    if ((r = listen_socket(s, err)) < 0)
        return r;
    s->status = BERTH_ST_CREATED;
    s->pid = watch_process(s, s->init, &s->waith, &s->has_waith);
    return 0;

close_pipes:
    close_pipes(inp, outp, errp);
    return r;
}

static int do_start(struct shim *s, int *ret_exit_code, berth_err_t *err)
{
    _cleanup_json_ json_t *patch = NULL;
    int r;

    *ret_exit_code = 125;
    if ((r = s->ops->container_start(s->drv->priv, s->container, 0, err)) < 0) {
        *ret_exit_code = exit_code_for(r);
        return r;
    }
    if (!s->pid && s->has_waith) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&s->waith, &fd) == 0)
            s->pid = pidfd_pid(fd);
    }
    s->started_ns = berth__now_ns();
    patch = json_pack("{s:i, s:i, s:I, s:i, s:s, s:s}", "Pid", (int)s->pid, "ShimPid",
                      (int)getpid(), "StartedAt", (json_int_t)s->started_ns, "ExitCode", 0, "Error",
                      "", "Seccomp", s->seccomp_note ? s->seccomp_note : "none");
    if ((r = transition(s, BERTH_OP_START, BERTH_ST_RUNNING, patch, "start", NULL, err)) < 0) {
        /* The record refused the start (someone else changed it): don't leave it running. */
        s->ops->process_signal(s->drv->priv, s->init, SIGKILL, 0, NULL);
        return r;
    }
    s->status = BERTH_ST_RUNNING;
    return 0;
}

/* ---- control requests ---- */

static struct exec *exec_find(struct shim *s, const char *id)
{
    for (struct exec *ex = s->execs; id && ex; ex = ex->next)
        if (strcmp(ex->id, id) == 0)
            return ex;
    return NULL;
}

/*
 * exec_create and exec_start, as Docker names them ("exec_start: sh -c ls",
 * attribute execID), in one transaction once the process runs: berth
 * creates and starts an exec in one request, so both are recorded here,
 * before any exec_die. The command is the process's arguments.
 */
static void exec_started_events(struct shim *s, struct exec *ex, json_t *proc)
{
    _cleanup_free_ char *create = NULL, *start = NULL;
    size_t i, len = 0;
    json_t *v, *a;
    char *cmd;

    json_array_foreach (json_object_get(proc, "args"), i, v)
        len += strlen(json_string_value(v) ? json_string_value(v) : "") + 1;
    if (!(cmd = calloc(1, len + 1)))
        return;
    json_array_foreach (json_object_get(proc, "args"), i, v) {
        if (i)
            strcat(cmd, " ");
        strcat(cmd, json_string_value(v) ? json_string_value(v) : "");
    }
    if (asprintf(&create, "exec_create: %s", cmd) < 0)
        create = NULL;
    if (asprintf(&start, "exec_start: %s", cmd) < 0)
        start = NULL;
    free(cmd);
    a = json_pack("{s:s}", "execID", ex->id);
    if (create && start && a) {
        const char *actions[] = { create, start };
        json_t *extras[] = { a, a };
        record_events(s, 2, actions, extras);
    }
    json_decref(a);
}

static int req_exec(struct client *c, json_t *req, berth_err_t *err)
{
    struct shim *s = c->s;
    const char *id = json_string_value(json_object_get(req, "id"));
    json_t *proc = json_object_get(req, "process");
    int tty = json_is_true(json_object_get(req, "tty"));
    int want_in = json_is_true(json_object_get(req, "stdin"));
    int detach = json_is_true(json_object_get(req, "detach"));
    berth_stdio_t stdio = { .struct_size = sizeof(stdio) };
    int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
    _cleanup_free_ char *proc_text = NULL;
    struct exec *ex;
    int r;

    if (!HAS_OP(s, process_exec))
        return berth_err_set(err, -ENOTSUP, "isolation driver \"%s\" does not support exec",
                             s->drv->desc->name);
    if (s->status != BERTH_ST_RUNNING)
        return berth_err_set(err, -EINVAL, "container %.12s is not running", s->id);
    if (!id || !*id || strlen(id) > 128 || !json_is_object(proc))
        return berth_err_set(err, -EINVAL, "exec needs an \"id\" and a \"process\" object");
    if (exec_find(s, id))
        return berth_err_set(err, -EEXIST, "exec id \"%s\" is already in use", id);
    if (!(proc_text = json_dumps(proc, JSON_COMPACT)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (!(ex = calloc(1, sizeof(*ex))) || !(ex->id = strdup(id))) {
        free(ex);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    ex->tty = tty;
    ex->out[0].fd = ex->out[1].fd = -1;
    stdio.in = stdio.out = stdio.err = stdio.tty_master = BERTH_HANDLE_NONE;
    if (tty && !detach) {
        stdio.flags = BERTH_STDIO_F_TTY;
        stdio.tty_cols = 80;
        stdio.tty_rows = 24;
    } else if (!detach) {
        if ((want_in && pipe2(inp, O_CLOEXEC) < 0) || pipe2(outp, O_CLOEXEC) < 0 ||
            pipe2(errp, O_CLOEXEC) < 0) {
            r = berth_err_set(err, -errno, "pipe: %s", strerror(errno));
            goto fail;
        }
        stdio.in = inp[0];
        stdio.out = outp[1];
        stdio.err = errp[1];
    }
    {
        berth_process_spec_t ps = {
            .struct_size = sizeof(ps), .id = id, .process_json = proc_text, .stdio = &stdio
        };
        r = s->ops->process_exec(s->drv->priv, s->container, &ps, 0, &ex->proc, err);
    }
    if (r < 0)
        goto fail;
    ex->running = 1;
    if (stdio.tty_master >= 0) {
        int wfd = dup((int)stdio.tty_master);
        ostream_open(s, &ex->out[0], ex, (int)stdio.tty_master, 1);
        uv_pipe_init(&s->loop, &ex->in, 0);
        if (wfd >= 0 && uv_pipe_open(&ex->in, wfd) == 0)
            ex->in_open = 1;
        else {
            uv_close((uv_handle_t *)&ex->in, NULL);
            if (wfd >= 0)
                close(wfd);
        }
    } else if (!detach) {
        close(outp[1]);
        close(errp[1]);
        ostream_open(s, &ex->out[0], ex, outp[0], 1);
        ostream_open(s, &ex->out[1], ex, errp[0], 2);
        if (inp[0] >= 0) {
            close(inp[0]);
            uv_pipe_init(&s->loop, &ex->in, 0);
            if (uv_pipe_open(&ex->in, inp[1]) == 0)
                ex->in_open = 1;
        }
    }
    exec_started_events(s, ex, proc);
    ex->pid = watch_process(s, ex->proc, &ex->waith, &ex->has_waith);
    ex->next = s->execs;
    s->execs = ex;
    reply_ok(c, json_pack("{s:i}", "pid", (int)ex->pid));
    if (!detach) {
        c->stream_mode = 1;
        c->ex = ex;
        c->want_out = c->want_err = 1;
        c->want_in = want_in;
        ex->client = c;
    }
    /* A process that ended at once (or a driver without wait handles) is noticed now. */
    check_processes(s);
    return 0;

fail:
    close_pipes(inp, outp, errp);
    free(ex->id);
    free(ex);
    return r;
}

static int req_stats(struct client *c, berth_err_t *err)
{
    struct shim *s = c->s;
    berth_blob_t *blob = NULL;
    json_t *stats;
    int r;

    if (!HAS_OP(s, container_stats))
        return berth_err_set(err, -ENOTSUP, "isolation driver \"%s\" does not report stats",
                             s->drv->desc->name);
    if (s->exited)
        return berth_err_set(err, -EINVAL, "container %.12s is not running", s->id);
    if ((r = s->ops->container_stats(s->drv->priv, s->container, 0, &blob, err)) < 0)
        return r;
    stats = blob && blob->data ? json_loadb(blob->data, blob->len, 0, NULL) : NULL;
    berth_blob_release(blob);
    if (!stats)
        return berth_err_set(err, -EPROTO, "isolation driver returned malformed stats");
    reply_ok(c, json_pack("{s:o}", "stats", stats));
    return 0;
}

/* Handle one request line. 0 after a reply was sent (or a wait was queued), else -errno. */
static int handle(struct client *c, json_t *req, berth_err_t *err)
{
    struct shim *s = c->s;
    const char *op = json_string_value(json_object_get(req, "op"));
    int r, ec;

    if (!op)
        return berth_err_set(err, -EINVAL, "request without \"op\"");
    if (strcmp(op, "state") == 0) {
        json_t *j =
            json_pack("{s:s, s:i}", "status", berth__state_name(s->status), "pid", (int)s->pid);
        if (s->exited)
            json_object_set_new(j, "exit_code", json_integer(s->exit_code));
        reply_ok(c, j);
        return 0;
    }
    if (strcmp(op, "start") == 0) {
        if (s->status != BERTH_ST_CREATED)
            return berth_err_set(err, -EINVAL, "container %.12s is already %s", s->id,
                                 berth__state_name(s->status));
        if (!await_commit(s)) {
            reply_err(c, -ENOENT, "the container was not created");
            abort_uncommitted(s);
            return 0;
        }
        if ((r = do_start(s, &ec, err)) < 0) {
            reply_err(c, r, err->msg);
            fail_start(s, r, ec, err->msg);
            return 0;
        }
        reply_ok(c, json_pack("{s:i}", "pid", (int)s->pid));
        check_processes(s);
        return 0;
    }
    /* docker network connect/disconnect of a running container. */
    if (strcmp(op, "net-connect") == 0 || strcmp(op, "net-disconnect") == 0) {
        json_t *net = json_object_get(req, "network");
        berth_store_t *stp = NULL;
        if (!(s->status & (BERTH_ST_RUNNING | BERTH_ST_PAUSED)) || s->exited)
            return berth_err_set(err, -EINVAL, "container %.12s is not running", s->id);
        if (!json_is_object(net) || !json_string_value(json_object_get(net, "id")))
            return berth_err_set(err, -EINVAL, "%s without a network record", op);
        if ((r = store_open(s, &stp, err)) < 0)
            return r;
        if (strcmp(op, "net-connect") == 0)
            r = berth__netsetup_connect(s->net, stp, net, json_object_get(req, "want"), err);
        else
            r = berth__netsetup_disconnect(s->net, stp,
                                           json_string_value(json_object_get(net, "id")), err);
        berth__store_close(stp);
        if (r < 0)
            return r;
        reply_ok(c, NULL);
        return 0;
    }
    if (strcmp(op, "cancel") == 0) {
        if (!s->wait_start || s->status != BERTH_ST_CREATED)
            return berth_err_set(err, -EINVAL, "container %.12s is %s: nothing waits to start",
                                 s->id, berth__state_name(s->status));
        cancel_waiting(s, c);
        return 0;
    }
    if (strcmp(op, "signal") == 0) {
        json_int_t sig = json_integer_value(json_object_get(req, "signal"));
        if (!json_is_integer(json_object_get(req, "signal")) || sig < 1 || sig > 64)
            return berth_err_set(err, -EINVAL, "invalid signal %lld", (long long)sig);
        if (!(s->status & (BERTH_ST_RUNNING | BERTH_ST_PAUSED)) || s->exited)
            return berth_err_set(err, -EINVAL, "container %.12s is not running", s->id);
        if ((r = s->ops->process_signal(s->drv->priv, s->init, (int32_t)sig, 0, err)) < 0)
            return r;
        {
            /* Before any exit it causes is noticed (that is on this loop too): kill, then die. */
            char num[16];
            json_t *a;
            snprintf(num, sizeof(num), "%d", (int)sig);
            a = json_pack("{s:s}", "signal", num);
            record_event(s, "kill", a);
            json_decref(a);
        }
        reply_ok(c, NULL);
        /* Drivers without a wait handle or SIGCHLD (the fake) end processes synchronously. */
        check_processes(s);
        return 0;
    }
    if (strcmp(op, "pause") == 0 || strcmp(op, "resume") == 0) {
        int pause = op[0] == 'p';
        if (pause ? !HAS_OP(s, container_pause) : !HAS_OP(s, container_resume))
            return berth_err_set(err, -ENOTSUP, "isolation driver \"%s\" cannot pause",
                                 s->drv->desc->name);
        if (s->status != (pause ? BERTH_ST_RUNNING : BERTH_ST_PAUSED))
            return berth_err_set(err, -EINVAL, "container %.12s is %s", s->id,
                                 pause ? "not running" : "not paused");
        r = pause ? s->ops->container_pause(s->drv->priv, s->container, 0, err)
                  : s->ops->container_resume(s->drv->priv, s->container, 0, err);
        if (r < 0)
            return r;
        if ((r = transition(s, pause ? BERTH_OP_PAUSE : BERTH_OP_UNPAUSE,
                            pause ? BERTH_ST_PAUSED : BERTH_ST_RUNNING, NULL,
                            pause ? "pause" : "unpause", NULL, err)) < 0) {
            /* Keep the container as the store says it is. */
            if (pause)
                s->ops->container_resume(s->drv->priv, s->container, 0, NULL);
            else
                s->ops->container_pause(s->drv->priv, s->container, 0, NULL);
            return r;
        }
        s->status = pause ? BERTH_ST_PAUSED : BERTH_ST_RUNNING;
        reply_ok(c, NULL);
        return 0;
    }
    if (strcmp(op, "stats") == 0)
        return req_stats(c, err);
    if (strcmp(op, "wait") == 0) {
        json_t *t = json_object_get(req, "timeout_ms");
        json_int_t ms = json_is_integer(t) ? json_integer_value(t) : -1;
        if (s->exited) {
            reply_ok(c, json_pack("{s:i, s:b}", "exit_code", s->exit_code, "oom_killed", s->oom));
            return 0;
        }
        c->waiting = 1;
        if (ms >= 0)
            uv_timer_start(&c->timer, on_wait_timeout, (uint64_t)ms, 0);
        return 0;
    }
    if (strcmp(op, "resize") == 0) {
        json_int_t cols = json_integer_value(json_object_get(req, "cols"));
        json_int_t rows = json_integer_value(json_object_get(req, "rows"));
        const char *eid = json_string_value(json_object_get(req, "exec_id"));
        struct exec *ex = exec_find(s, eid);
        void *proc = eid ? (ex && ex->running ? ex->proc : NULL) : s->init;
        if (cols < 1 || rows < 1 || cols > 65535 || rows > 65535)
            return berth_err_set(err, -EINVAL, "invalid terminal size %lldx%lld", (long long)cols,
                                 (long long)rows);
        if (!proc || s->exited)
            return berth_err_set(err, -ENOENT, "no such process%s%s", eid ? " " : "",
                                 eid ? eid : "");
        if (!HAS_OP(s, process_resize))
            return berth_err_set(err, -ENOTSUP, "isolation driver \"%s\" has no terminals",
                                 s->drv->desc->name);
        if ((r = s->ops->process_resize(s->drv->priv, proc, (uint16_t)cols, (uint16_t)rows, 0,
                                        err)) < 0)
            return r;
        reply_ok(c, NULL);
        return 0;
    }
    if (strcmp(op, "attach") == 0) {
        if (s->exited)
            return berth_err_set(err, -EINVAL,
                                 "you cannot attach to a stopped container, start it first");
        c->want_in = json_is_true(json_object_get(req, "stdin"));
        c->want_out = json_is_true(json_object_get(req, "stdout"));
        c->want_err = json_is_true(json_object_get(req, "stderr"));
        reply_ok(c, json_pack("{s:b}", "tty", s->tty));
        c->stream_mode = 1;
        return 0;
    }
    if (strcmp(op, "exec") == 0)
        return req_exec(c, req, err);
    if (strcmp(op, "exec_state") == 0) {
        struct exec *ex = exec_find(s, json_string_value(json_object_get(req, "id")));
        if (!ex)
            return berth_err_set(err, -ENOENT, "no such exec");
        json_t *j = json_pack("{s:b, s:i}", "running", ex->running, "pid", (int)ex->pid);
        if (!ex->running)
            json_object_set_new(j, "exit_code", json_integer(ex->exit_code));
        reply_ok(c, j);
        return 0;
    }
    return berth_err_set(err, -EINVAL, "unknown op \"%s\"", op);
}

/* Work through buffered bytes: request lines, or stdin in stream mode. */
static void client_process(struct client *c)
{
    while (c->len > 0 && !c->closing && !c->waiting && !c->reading_paused) {
        char *nl;
        size_t linelen;
        json_t *req;
        berth_err_t err = { 0 };
        int r;

        if (c->stream_mode) {
            size_t n = c->len;
            c->len = 0;
            if (stdin_feed(c, c->buf, n))
                c->reading_paused = 1;
            break;
        }
        if (!(nl = memchr(c->buf, '\n', c->len))) {
            if (c->len >= BERTH_SHIM_LINE_MAX) {
                reply_err(c, -E2BIG, "request line longer than 64 KiB");
                client_finish(c);
            }
            break;
        }
        linelen = (size_t)(nl - c->buf);
        *nl = '\0';
        req = json_loads(c->buf, 0, NULL);
        memmove(c->buf, nl + 1, c->len - linelen - 1);
        c->len -= linelen + 1;
        if (!json_is_object(req)) {
            reply_err(c, -EINVAL, "request is not a JSON object");
        } else if ((r = handle(c, req, &err)) < 0) {
            reply_err(c, r, err.msg);
        }
        json_decref(req);
    }
    if (c->reading_paused && !c->closing)
        uv_read_stop((uv_stream_t *)&c->h);
    if (!c->len && c->buf && !c->stream_mode) {
        free(c->buf);
        c->buf = NULL;
    }
    if (c->eof && !c->waiting && !c->stream_mode && !c->closing)
        client_finish(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *c = h->data;
    size_t want = c->len + READ_CHUNK;
    char *grown;

    /* Read straight into the request buffer; its size is bounded by the line limit. */
    if (want > BERTH_SHIM_LINE_MAX + READ_CHUNK || !(grown = realloc(c->buf, want))) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    c->buf = grown;
    *buf = uv_buf_init(c->buf + c->len, READ_CHUNK);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = h->data;

    if (n < 0) {
        uv_read_stop(h);
        c->eof = 1;
        if (n != UV_EOF) {
            client_close(c);
            return;
        }
        if (c->stream_mode) {
            /*
             * The client's SHUT_WR: close the container's stdin when it asked
             * for StdinOnce. Not with a terminal: there the end of a client is
             * a detach (ctrl-p ctrl-q), and the next attach must still type.
             */
            if (c->want_in && !c->ex && c->s->stdin_once && !c->s->tty)
                stdin_close(&c->s->in, &c->s->in_open);
            if (c->want_in && c->ex)
                stdin_close(&c->ex->in, &c->ex->in_open);
            return;
        }
        client_process(c);
        return;
    }
    if (n == 0 && !buf->base) {
        reply_err(c, -E2BIG, "request line longer than 64 KiB");
        client_finish(c);
        return;
    }
    c->len += (size_t)n;
    client_process(c);
}

static void on_client_handle_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    if (--c->refs > 0)
        return;
    free(c->buf);
    free(c);
}

static void client_close(struct client *c)
{
    struct shim *s = c->s;
    if (c->closing)
        return;
    c->closing = 1;
    c->waiting = 0;
    if (c->ex && c->ex->client == c)
        c->ex->client = NULL;
    /* Unlink now so no further output is queued for it. */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->h, on_client_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct client *c = req->data;
    free(req);
    client_close(c);
}

/* Close after everything queued for the client was written. */
static void client_finish(struct client *c)
{
    uv_shutdown_t *req;

    if (c->closing)
        return;
    uv_read_stop((uv_stream_t *)&c->h);
    c->waiting = 0;
    if (!(req = malloc(sizeof(*req)))) {
        client_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->h, on_shutdown) < 0) {
        free(req);
        client_close(c);
    }
}

static void on_wait_timeout(uv_timer_t *t)
{
    struct client *c = t->data;
    if (!c->waiting || c->closing)
        return;
    c->waiting = 0;
    reply_err(c, -ETIMEDOUT, "timed out");
    client_process(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct shim *s = server->data;
    struct client *c;

    if (status < 0 || !(c = calloc(1, sizeof(*c))))
        return;
    c->s = s;
    uv_pipe_init(&s->loop, &c->h, 0);
    c->h.data = c;
    c->refs = 1;
    if (uv_accept(server, (uv_stream_t *)&c->h) < 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->h, on_client_handle_closed);
        return;
    }
    uv_timer_init(&s->loop, &c->timer);
    c->timer.data = c;
    c->refs = 2;
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
}

/* ---- main ---- */

/*
 * Read by LeakSanitizer only. Loaded driver modules stay resident by design
 * (plugins.c), so libltdl's records of them live until exit; with libltdl
 * linked statically its own allocator frames are what LSan sees.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:lt__malloc\nleak:lt__zalloc\nleak:lt__strdup\nleak:lt__realloc\n";
}

static void usage(FILE *f)
{
    fprintf(f, "usage: berth-shim --id ID --root DIR --runroot DIR [--config FILE]\n"
               "                  [--plugin-path DIRS] [--wait-start] [--record-fd=N] [--detach]\n"
               "The per-container monitor; started by the berth engine, not by hand.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "id", required_argument, NULL, 'i' },
        { "root", required_argument, NULL, 'r' },
        { "runroot", required_argument, NULL, 'R' },
        { "config", required_argument, NULL, 'c' },
        { "plugin-path", required_argument, NULL, 'p' },
        { "wait-start", no_argument, NULL, 'w' },
        { "detach", no_argument, NULL, 'd' },
        { "record-fd", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct shim *s = calloc(1, sizeof(*s));
    berth_err_t err = { 0 };
    int opt, r, ec, detach = 0;

    if (!s)
        return 1;
    s->ready_fd = -1;
    s->record_fd = -1;
    s->out[0].fd = s->out[1].fd = -1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            s->id = optarg;
            break;
        case 'r':
            s->root = optarg;
            break;
        case 'R':
            s->runroot = optarg;
            break;
        case 'c':
            s->config_path = optarg;
            break;
        case 'p':
            s->plugin_path = optarg;
            break;
        case 'w':
            s->wait_start = 1;
            break;
        case 'd':
            detach = 1;
            break;
        case 'f':
            s->record_fd = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!s->id || !s->root || !s->runroot || (s->record_fd >= 0 && !s->wait_start) ||
        s->record_fd == 0 || (s->record_fd > 0 && s->record_fd < 3)) {
        usage(stderr);
        return 2;
    }
    s->committed = s->record_fd < 0;
    if (s->record_fd >= 0)
        fcntl(s->record_fd, F_SETFD, FD_CLOEXEC);
    /*
     * --detach: the engine spawned us in a new session and waits for this
     * process. Fork once and let it return at once: the monitor is then
     * nobody's child (init or a subreaper adopts it) and, not being a
     * session leader, can never get a controlling terminal by opening a pty.
     */
    if (detach) {
        pid_t pid = fork();
        if (pid < 0) {
            int e = errno;
            dprintf(3, "{\"error\":\"berth-shim: fork: %s\",\"exit_code\":125,\"code\":%d}\n",
                    strerror(e), -e);
            return 1;
        }
        if (pid > 0)
            _exit(0);
    }
    /* fd 3 is the readiness pipe when the engine started us. */
    if (fcntl(3, F_GETFD) >= 0) {
        s->ready_fd = 3;
        fcntl(3, F_SETFD, FD_CLOEXEC);
    }
    signal(SIGPIPE, SIG_IGN);
    /* Every process of the container tree that loses its parent becomes ours to reap. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    umask(027);
    if (chdir("/") < 0)
        return 1;

    uv_loop_init(&s->loop);
    uv_signal_init(&s->loop, &s->sigchld);
    s->sigchld.data = s;
    uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD);
    s->sigchld_open = 1;

    if ((r = setup(s, &ec, &err)) < 0) {
        fail_start(s, r, ec, err.msg);
        goto out_fail;
    }
    if (!s->wait_start) {
        if ((r = do_start(s, &ec, &err)) < 0) {
            fail_start(s, r, ec, err.msg);
            goto out_fail;
        }
    }
    {
        json_t *j = json_pack("{s:b, s:i, s:i, s:s, s:s}", "ok", 1, "pid", (int)s->pid, "shim_pid",
                              (int)getpid(), "status", berth__state_name(s->status), "seccomp",
                              s->seccomp_note ? s->seccomp_note : "none");
        write_ready(s, j);
        json_decref(j);
    }
    /* Told whether the engine committed the record, on fd 4, as soon as it knows. */
    if (s->record_fd >= 0 && uv_poll_init(&s->loop, &s->record_poll, s->record_fd) == 0) {
        s->record_poll.data = s;
        if (uv_poll_start(&s->record_poll, UV_READABLE | UV_DISCONNECT, on_record_fd) == 0)
            s->record_polling = 1;
        else
            uv_close((uv_handle_t *)&s->record_poll, NULL);
    }
    /* A process that ended before the loop ran (or a driver with neither pidfd nor SIGCHLD). */
    check_processes(s);
    /* Setup's transient allocations (config parsing, module loading, the spec) go back now. */
    malloc_trim(0);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    r = s->failed ? 1 : 0;
    goto out;

out_fail:
    uv_run(&s->loop, UV_RUN_DEFAULT);
    r = 1;
out:
    uv_loop_close(&s->loop);
    if (s->logging)
        berth__log_close(&s->log);
    for (struct exec *ex = s->execs, *next; ex; ex = next) {
        next = ex->next;
        free(ex->id);
        free(ex);
    }
    json_decref(s->record);
    berth__registry_free(s->reg);
    berth_engine_close(s->engine);
    free(s);
    return r;
}
