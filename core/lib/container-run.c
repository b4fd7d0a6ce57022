/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public container calls that need a running monitor: start, kill,
 * stop, wait, pause, unpause, attach, resize, exec. Each one checks the
 * record's state first (so a refusal has Docker's wording and touches
 * nothing), then talks to the container's berth-shim over its control
 * socket (docs/shim-protocol.md). The shim records state changes in the
 * store itself, in one transaction each.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <berth/engine.h>

#include "containers.h"
#include "engine-internal.h"
#include "lifecycle.h"
#include "ocispec.h"
#include "shim-client.h"
#include "util.h"

/* The record for @ref, checked against @op. */
static int load_checked(berth_engine_t *e, const char *ref, berth_lc_op_t op, json_t **ret_doc,
                        berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *doc = NULL;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__container_get(store, ref, &doc, err)) < 0)
        return r;
    if ((r = berth__lc_check(doc, op, err)) < 0)
        return r;
    *ret_doc = TAKE_PTR(doc);
    return 0;
}

static const char *id_of(json_t *doc)
{
    return json_string_value(json_object_get(doc, "id"));
}

/* One request to the container's shim; *ret_resp may be NULL. */
static int shim_call(berth_engine_t *e, const char *id, json_t *req, json_t **ret_resp,
                     berth_err_t *err)
{
    _cleanup_close_ int fd = -1;
    int r;

    if ((r = berth__shim_connect(e, id, &fd, err)) < 0) {
        char shortid[13];
        snprintf(shortid, sizeof(shortid), "%s", id);
        return berth_err_set(err, r, "container %s: its monitor does not answer (%s)", shortid,
                             strerror(-r));
    }
    return berth__shim_request(fd, req, ret_resp, err);
}

static int parse_signal(const char *name);

/* The signal a stop sends: the image's or create's StopSignal, else SIGTERM. */
static int stop_signal(json_t *doc)
{
    int sig = parse_signal(
        json_string_value(json_object_get(json_object_get(doc, "config"), "StopSignal")));
    return sig > 0 ? sig : SIGTERM;
}

/*
 * Restart-policy bookkeeping in the record's state: ManualStop (a stop or a
 * kill asked for the end, so no policy brings it back until the next start
 * by hand) and RestartCount (starts by the policy since the last by hand).
 * Written only when they change, so the common start pays no extra commit.
 */
static int policy_patch(berth_engine_t *e, json_t *doc, berth_lc_op_t op, json_t *patch,
                        berth_err_t *err)
{
    int r;

    if (!patch)
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* The transition borrows the patch. */
    r = berth__lc_transition(berth__engine_store(e), id_of(doc), op, 0, patch, NULL, NULL, NULL,
                             err);
    json_decref(patch);
    return r;
}

static int mark_manual_stop(berth_engine_t *e, json_t *doc, berth_err_t *err)
{
    if (json_is_true(json_object_get(json_object_get(doc, "state"), "ManualStop")))
        return 0;
    return policy_patch(e, doc, BERTH_OP_KILL, json_pack("{s:b}", "ManualStop", 1), err);
}

static int start_bookkeeping(berth_engine_t *e, json_t *doc, uint32_t flags, berth_err_t *err)
{
    json_t *state = json_object_get(doc, "state");
    json_int_t count = json_integer_value(json_object_get(state, "RestartCount"));

    if (flags & BERTH_START_POLICY)
        return policy_patch(e, doc, BERTH_OP_START,
                            json_pack("{s:I, s:b}", "RestartCount", count + 1, "ManualStop", 0),
                            err);
    if (count == 0 && !json_is_true(json_object_get(state, "ManualStop")))
        return 0;
    return policy_patch(e, doc, BERTH_OP_START,
                        json_pack("{s:I, s:b}", "RestartCount", (json_int_t)0, "ManualStop", 0),
                        err);
}

BERTH_API int berth_container_set_health(berth_engine_t *e, const char *ref, json_t *health,
                                         berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *patch = NULL, *attrs = NULL;
    const char *status = json_string_value(json_object_get(health, "Status")), *old;
    char action[64];
    int r;

    if (!status || (strcmp(status, "starting") && strcmp(status, "healthy") &&
                    strcmp(status, "unhealthy") && strcmp(status, "none")))
        return berth_err_set(err, -EINVAL,
                             "health: Status must be starting, healthy, unhealthy or none");
    if (!json_is_integer(json_object_get(health, "FailingStreak")) ||
        !json_is_array(json_object_get(health, "Log")))
        return berth_err_set(err, -EINVAL, "health: FailingStreak and Log are required");
    /* Only a container with a process has a health to record. */
    if ((r = load_checked(e, ref, BERTH_OP_KILL, &doc, err)) < 0)
        return r;
    old = json_string_value(
        json_object_get(json_object_get(json_object_get(doc, "state"), "Health"), "Status"));
    snprintf(action, sizeof(action), "health_status: %s", status);
    patch = json_pack("{s:O}", "Health", health);
    attrs = json_pack("{s:s}", "name", json_string_value(json_object_get(doc, "name")) ?: "");
    if (!patch || !attrs)
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* An event when the status changes, as Docker's health_status. */
    return berth__lc_transition(berth__engine_store(e), id_of(doc), BERTH_OP_KILL, 0, patch,
                                old && !strcmp(old, status) ? NULL : action, attrs, NULL, err);
}

/*
 * The monitor of the container's last run records the exit before it
 * tears down (so waiters learn of it at once), and the teardown removes
 * the runtime directory a new monitor would create: a start right after a
 * stop waits for the old monitor to be gone (a few ms; at most 5 s). The
 * process is recognised by its command line naming the container.
 */
void berth__await_monitor(json_t *doc)
{
    pid_t pid =
        (pid_t)json_integer_value(json_object_get(json_object_get(doc, "state"), "ShimPid"));
    const char *id = id_of(doc);
    char path[64], cmd[4096];

    if (pid <= 0 || !id)
        return;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    for (int i = 0; i < 5000; i++) {
        struct timespec ts = { 0, 1000000 };
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return;
        n = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (n <= 0 || !memmem(cmd, (size_t)n, id, strlen(id)))
            return; /* gone, a zombie, or another process by now */
        nanosleep(&ts, NULL);
    }
}

/*
 * Whether a monitor already waits to start container @id (started with
 * BERTH_START_WAIT by an attach whose start never came: the client or the
 * daemon went away in between).
 */
static int monitor_waits(berth_engine_t *e, const char *id)
{
    _cleanup_json_ json_t *req = json_pack("{s:s}", "op", "state"), *resp = NULL;
    _cleanup_close_ int fd = -1;

    if (!req || berth__shim_connect(e, id, &fd, NULL) < 0 ||
        berth__shim_request(fd, req, &resp, NULL) < 0)
        return 0;
    return !strcmp(json_string_value(json_object_get(resp, "status")) ?: "", "created");
}

BERTH_API int berth_container_start(berth_engine_t *e, const char *ref, uint32_t flags,
                                    berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *ready = NULL, *req = NULL;
    const char *id;
    int r, fd = -1;

    if ((r = load_checked(e, ref, BERTH_OP_START, &doc, err)) < 0)
        return r;
    if ((r = start_bookkeeping(e, doc, flags, err)) < 0)
        return r;
    id = id_of(doc);
    /* A monitor already waiting (started with BERTH_START_WAIT): tell it to go. */
    if ((berth__record_state(doc) & (BERTH_ST_CREATED | BERTH_ST_EXITED)) &&
        !(flags & BERTH_START_WAIT) && berth__shim_connect(e, id, &fd, NULL) == 0) {
        req = json_pack("{s:s}", "op", "start");
        r = berth__shim_request(fd, req, NULL, err);
        close(fd);
        return r;
    }
    /* Waiting to start already: that monitor holds the streams, and a second one would find its
     * sandbox taken. */
    if ((berth__record_state(doc) & (BERTH_ST_CREATED | BERTH_ST_EXITED)) &&
        (flags & BERTH_START_WAIT) && monitor_waits(e, id))
        return 0;
    if (berth__record_state(doc) & BERTH_ST_EXITED)
        berth__await_monitor(doc);
    return berth__shim_spawn(e, id, (flags & BERTH_START_WAIT) ? BERTH_SHIM_WAIT_START : 0, &ready,
                             err);
}

/*
 * Send @sig to the container of record @doc. A paused one is thawed right
 * after a signal that ends it (SIGKILL or its stop signal), as Docker
 * does: a frozen process can't run its handler (and under cgroup v1 can't
 * even die), so `stop` of a paused container still lets it exit cleanly.
 * Other signals stay pending until the unpause, as on a frozen task.
 */
static int signal_container(berth_engine_t *e, json_t *doc, int sig, berth_err_t *err)
{
    _cleanup_json_ json_t *req = json_pack("{s:s, s:i}", "op", "signal", "signal", sig);
    _cleanup_json_ json_t *resume = NULL;
    int r;

    if (!req)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = shim_call(e, id_of(doc), req, NULL, err)) < 0)
        return r;
    if ((sig == SIGKILL || sig == stop_signal(doc)) &&
        berth__record_state(doc) == BERTH_ST_PAUSED &&
        (resume = json_pack("{s:s}", "op", "resume"))) {
        /* It may have died already (SIGKILL through a v2 freezer): then nothing to thaw. */
        shim_call(e, id_of(doc), resume, NULL, NULL);
    }
    return 0;
}

BERTH_API int berth_container_kill(berth_engine_t *e, const char *ref, int sig, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    int r;

    if (sig <= 0 || sig >= 65)
        return berth_err_set(err, -EINVAL, "invalid signal %d", sig);
    if ((r = load_checked(e, ref, BERTH_OP_KILL, &doc, err)) < 0)
        return r;
    /* A kill that ends the container is a stop by hand, as in Docker; a SIGHUP is not. */
    if (sig == SIGKILL || sig == stop_signal(doc)) {
        if ((r = mark_manual_stop(e, doc, err)) < 0)
            return r;
    }
    return signal_container(e, doc, sig, err);
}

/* The exit code a record holds. */
static int recorded_exit(json_t *doc)
{
    return (int)json_integer_value(json_object_get(json_object_get(doc, "state"), "ExitCode"));
}

BERTH_API int berth_container_wait(berth_engine_t *e, const char *ref, int64_t timeout_ms,
                                   int *ret_exit_code, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *doc = NULL, *req = NULL, *resp = NULL;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__container_get(store, ref, &doc, err)) < 0)
        return r;
    if (berth__record_state(doc) & (BERTH_ST_RUNNING | BERTH_ST_PAUSED | BERTH_ST_CREATED)) {
        req = json_pack("{s:s, s:I}", "op", "wait", "timeout_ms", (json_int_t)timeout_ms);
        r = shim_call(e, id_of(doc), req, &resp, err);
        if (r == 0) {
            if (ret_exit_code)
                *ret_exit_code = (int)json_integer_value(json_object_get(resp, "exit_code"));
            return 0;
        }
        if (r == -ETIMEDOUT)
            return r;
        /* The monitor may have finished between our read and the call: the store knows. */
        json_decref(doc);
        doc = NULL;
        if (berth__container_get(store, ref, &doc, NULL) < 0 ||
            !(berth__record_state(doc) & BERTH_ST_EXITED))
            return r;
    }
    if (ret_exit_code)
        *ret_exit_code = recorded_exit(doc);
    return 0;
}

BERTH_API int berth_container_wait_begin(berth_engine_t *e, const char *ref, int *ret_fd,
                                         int *ret_exit_code, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *doc = NULL, *req = NULL;
    _cleanup_close_ int fd = -1;
    int r;

    *ret_fd = -1;
    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__container_get(store, ref, &doc, err)) < 0)
        return r;
    if (!(berth__record_state(doc) & (BERTH_ST_RUNNING | BERTH_ST_PAUSED | BERTH_ST_CREATED)) ||
        berth__shim_connect(e, id_of(doc), &fd, NULL) < 0) {
        *ret_exit_code = recorded_exit(doc);
        return 1;
    }
    req = json_pack("{s:s, s:I}", "op", "wait", "timeout_ms", (json_int_t)-1);
    if ((r = berth__shim_send(fd, req, err)) < 0)
        return r;
    *ret_fd = fd;
    fd = -1;
    return 0;
}

BERTH_API int berth_container_wait_end(berth_engine_t *e, const char *ref, int fd,
                                       int *ret_exit_code, berth_err_t *err)
{
    _cleanup_json_ json_t *resp = NULL, *doc = NULL;
    int r = berth__shim_receive(fd, &resp, err);

    close(fd);
    if (r == 0) {
        *ret_exit_code = (int)json_integer_value(json_object_get(resp, "exit_code"));
        return 0;
    }
    /* The monitor went away first (a --rm container is gone): the store knows, if anyone. */
    if (berth__engine_store(e) &&
        berth__container_get(berth__engine_store(e), ref, &doc, NULL) == 0 &&
        (berth__record_state(doc) & BERTH_ST_EXITED)) {
        *ret_exit_code = recorded_exit(doc);
        return 0;
    }
    return r;
}

static int parse_signal(const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {
        { "HUP", SIGHUP },   { "INT", SIGINT },     { "QUIT", SIGQUIT }, { "KILL", SIGKILL },
        { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },   { "TERM", SIGTERM }, { "STOP", SIGSTOP },
        { "CONT", SIGCONT }, { "WINCH", SIGWINCH },
    };
    char *end;
    long n;

    if (!name || !*name)
        return SIGTERM;
    n = strtol(name, &end, 10);
    if (end != name && !*end)
        return n > 0 && n < 65 ? (int)n : -1;
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(sigs); i++)
        if (strcmp(name, sigs[i].name) == 0)
            return sigs[i].sig;
    return -1;
}

BERTH_API int berth_parse_signal(const char *name)
{
    return parse_signal(name);
}

BERTH_API int berth_container_stop(berth_engine_t *e, const char *ref, int timeout_s,
                                   berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    json_t *config;
    int sig, r;

    if (!berth__engine_store(e))
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__container_get(berth__engine_store(e), ref, &doc, err)) < 0)
        return r;
    /* Stopping a container that is not running is not an error, as in Docker. */
    if (!(berth__record_state(doc) & (BERTH_ST_RUNNING | BERTH_ST_PAUSED)))
        return 0;
    config = json_object_get(doc, "config");
    sig = parse_signal(json_string_value(json_object_get(config, "StopSignal")));
    if (sig < 0)
        sig = SIGTERM;
    if (timeout_s < 0)
        timeout_s = json_is_integer(json_object_get(config, "StopTimeout"))
                        ? (int)json_integer_value(json_object_get(config, "StopTimeout"))
                        : 10;
    if ((r = mark_manual_stop(e, doc, err)) < 0)
        return r;
    /* A paused container gets its stop signal and is thawed to act on it (signal_container). */
    if ((r = signal_container(e, doc, sig, err)) < 0)
        return r;
    r = berth_container_wait(e, id_of(doc), (int64_t)timeout_s * 1000, NULL, err);
    if (r == -ETIMEDOUT) {
        /* Past the timeout: SIGKILL, and this time wait for it. */
        if ((r = signal_container(e, doc, SIGKILL, err)) < 0 && r != -ECONNREFUSED && r != -ENOENT)
            return r;
        r = berth_container_wait(e, id_of(doc), -1, NULL, err);
    }
    if (r < 0)
        return r;
    /* The monitor recorded kill and die; "stop" is the caller's (a --rm container may be gone). */
    berth__container_event(berth__engine_store(e), id_of(doc), doc, "stop", NULL, NULL);
    return 0;
}

BERTH_API int berth_container_record_stop(berth_engine_t *e, const char *ref, berth_err_t *err)
{
    if (!berth__engine_store(e))
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    return berth__container_event(berth__engine_store(e), ref, NULL, "stop", NULL, err);
}

static int simple_op(berth_engine_t *e, const char *ref, berth_lc_op_t op, const char *name,
                     berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *req = NULL;
    int r;
    if ((r = load_checked(e, ref, op, &doc, err)) < 0)
        return r;
    req = json_pack("{s:s}", "op", name);
    return shim_call(e, id_of(doc), req, NULL, err);
}

BERTH_API int berth_container_pause(berth_engine_t *e, const char *ref, berth_err_t *err)
{
    return simple_op(e, ref, BERTH_OP_PAUSE, "pause", err);
}

BERTH_API int berth_container_unpause(berth_engine_t *e, const char *ref, berth_err_t *err)
{
    return simple_op(e, ref, BERTH_OP_UNPAUSE, "resume", err);
}

BERTH_API int berth_container_attach(berth_engine_t *e, const char *ref, uint32_t flags,
                                     int *ret_fd, int *ret_tty, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *req = NULL, *resp = NULL;
    _cleanup_close_ int fd = -1;
    int r;

    if (flags & ~(BERTH_ATTACH_STDIN | BERTH_ATTACH_WAITING))
        return berth_err_set(err, -EINVAL, "attach: unknown flags 0x%x", flags);
    /* A monitor waiting to start serves attaches whatever the record says (created, exited). */
    if (flags & BERTH_ATTACH_WAITING) {
        if (!berth__engine_store(e))
            return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
        if ((r = berth__container_get(berth__engine_store(e), ref, &doc, err)) < 0)
            return r;
    } else if ((r = load_checked(e, ref, BERTH_OP_ATTACH, &doc, err)) < 0) {
        return r;
    }
    if ((r = berth__shim_connect(e, id_of(doc), &fd, err)) < 0)
        return r;
    req = json_pack("{s:s, s:b, s:b, s:b}", "op", "attach", "stdin",
                    (flags & BERTH_ATTACH_STDIN) != 0, "stdout", 1, "stderr", 1);
    if ((r = berth__shim_request(fd, req, &resp, err)) < 0)
        return r;
    /* Attached: the event is a record of it, so its failure fails nothing. */
    berth__container_event(berth__engine_store(e), id_of(doc), doc, "attach", NULL, NULL);
    if (ret_tty)
        *ret_tty = json_is_true(json_object_get(resp, "tty"));
    *ret_fd = fd;
    fd = -1;
    return 0;
}

BERTH_API int berth_container_resize(berth_engine_t *e, const char *ref, const char *exec_id,
                                     uint16_t cols, uint16_t rows, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *req = NULL;
    int r;
    if ((r = load_checked(e, ref, BERTH_OP_EXEC, &doc, err)) < 0)
        return r;
    req = json_pack("{s:s, s:i, s:i}", "op", "resize", "cols", cols, "rows", rows);
    if (exec_id)
        json_object_set_new(req, "exec_id", json_string(exec_id));
    if ((r = shim_call(e, id_of(doc), req, NULL, err)) < 0)
        return r;
    /* Docker records the container's resizes, not an exec's. */
    if (!exec_id) {
        _cleanup_json_ json_t *a = NULL;
        char h[8], w[8];
        snprintf(h, sizeof(h), "%u", rows);
        snprintf(w, sizeof(w), "%u", cols);
        a = json_pack("{s:s, s:s}", "height", h, "width", w);
        berth__container_event(berth__engine_store(e), id_of(doc), doc, "resize", a, NULL);
    }
    return 0;
}

BERTH_API int berth_container_exec(berth_engine_t *e, const char *ref, json_t *opts,
                                   char ret_exec_id[65], int *ret_fd, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *spec = NULL, *req = NULL, *rec = NULL;
    _cleanup_close_ int fd = -1;
    json_t *process, *cmd = json_object_get(opts, "Cmd"), *v;
    char exec_id[BERTH_CONTAINER_ID_LEN + 1];
    int detach = json_is_true(json_object_get(opts, "Detach")), r;
    size_t i;

    if (!json_is_array(cmd) || json_array_size(cmd) == 0)
        return berth_err_set(err, -EINVAL, "exec: no command specified");
    if ((r = load_checked(e, ref, BERTH_OP_EXEC, &doc, err)) < 0)
        return r;
    /*
     * The exec'd process gets what the container's init got (capabilities,
     * seccomp, no_new_privs, environment), with the exec's own command,
     * user, directory and extra variables on top.
     */
    rec = json_deep_copy(doc);
    json_object_set(json_object_get(rec, "config"), "Cmd", cmd);
    json_object_del(json_object_get(rec, "config"), "Entrypoint");
    json_object_set_new(json_object_get(rec, "config"), "Tty",
                        json_boolean(json_is_true(json_object_get(opts, "Tty"))));
    if (json_string_value(json_object_get(opts, "User")))
        json_object_set(json_object_get(rec, "config"), "User", json_object_get(opts, "User"));
    if (json_string_value(json_object_get(opts, "WorkingDir")))
        json_object_set(json_object_get(rec, "config"), "WorkingDir",
                        json_object_get(opts, "WorkingDir"));
    if (!json_is_array(json_object_get(json_object_get(rec, "config"), "Env")))
        json_object_set_new(json_object_get(rec, "config"), "Env", json_array());
    json_array_foreach (json_object_get(opts, "Env"), i, v) {
        json_array_append(json_object_get(json_object_get(rec, "config"), "Env"), v);
    }
    if ((r = berth__oci_spec_build(rec, NULL, &spec, err)) < 0)
        return r;
    process = json_object_get(spec, "process");
    /* A caller that names its execs (berthd: the id docker was given) keeps its id in events. */
    if (json_is_string(json_object_get(opts, "ID"))) {
        const char *want = json_string_value(json_object_get(opts, "ID"));
        if (!berth__container_id_is_valid(want))
            return berth_err_set(err, -EINVAL, "exec: ID must be 64 lowercase hex digits");
        memcpy(exec_id, want, sizeof(exec_id));
    } else if ((r = berth__container_id_new(exec_id, err)) < 0) {
        return r;
    }
    req = json_pack("{s:s, s:s, s:O, s:b, s:b, s:b}", "op", "exec", "id", exec_id, "process",
                    process, "tty", json_is_true(json_object_get(opts, "Tty")), "stdin",
                    json_is_true(json_object_get(opts, "AttachStdin")), "detach", detach);
    if ((r = berth__shim_connect(e, id_of(doc), &fd, err)) < 0)
        return r;
    if ((r = berth__shim_request(fd, req, NULL, err)) < 0)
        return r;
    if (ret_exec_id)
        memcpy(ret_exec_id, exec_id, sizeof(exec_id));
    if (ret_fd && !detach) {
        *ret_fd = fd;
        fd = -1;
    }
    return 0;
}

BERTH_API int berth_stream_read(int fd, int *ret_stream, char **ret_buf, size_t *ret_len,
                                berth_err_t *err)
{
    uint8_t stream = 0;
    int r = berth__frame_read(fd, &stream, ret_buf, ret_len, err);
    if (r > 0 && ret_stream)
        *ret_stream = stream;
    return r;
}

BERTH_API int berth_container_stats(berth_engine_t *e, const char *ref, json_t **ret_json,
                                    berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *req = NULL, *resp = NULL;
    json_t *stats;
    int r;

    if ((r = load_checked(e, ref, BERTH_OP_KILL, &doc, err)) < 0)
        return r;
    req = json_pack("{s:s}", "op", "stats");
    if ((r = shim_call(e, id_of(doc), req, &resp, err)) < 0)
        return r;
    stats = json_object_get(resp, "stats");
    if (!json_is_object(stats))
        return berth_err_set(err, -EPROTO, "stats: the monitor sent no stats");
    json_object_set(stats, "id", json_object_get(doc, "id"));
    json_object_set(stats, "name", json_object_get(doc, "name"));
    json_object_set_new(stats, "read_ns", json_integer(berth__now_ns()));
    *ret_json = json_incref(stats);
    return 0;
}

/* The pid namespace of @pid as "pid:[inode]", or "" when it can't be read. */
static void pidns_of(long pid, char *buf, size_t len)
{
    char path[64];
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/%ld/ns/pid", pid);
    n = readlink(path, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
}

BERTH_API int berth_container_top(berth_engine_t *e, const char *ref, json_t **ret_json,
                                  berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *procs = json_array();
    char ns[64], other[64];
    long init;
    DIR *d;
    struct dirent *de;
    int r;

    if ((r = load_checked(e, ref, BERTH_OP_KILL, &doc, err)) < 0)
        return r;
    init = (long)json_integer_value(json_object_get(json_object_get(doc, "state"), "Pid"));
    if (init <= 0)
        return berth_err_set(err, -ENOTSUP, "top: the container's driver reports no host pid");
    pidns_of(init, ns, sizeof(ns));
    if (!ns[0])
        return berth_err_set(err, -ESRCH, "top: process %ld is gone", init);
    if (!(d = opendir("/proc")))
        return berth_err_set(err, -errno, "top: /proc: %s", strerror(errno));
    /* Every host process in the container's pid namespace, as docker top lists them. */
    while ((de = readdir(d))) {
        char path[300], cmd[4096] = "", line[256];
        long pid = strtol(de->d_name, NULL, 10), ppid = 0, uid = -1;
        FILE *f;
        size_t n = 0;

        if (pid <= 0)
            continue;
        pidns_of(pid, other, sizeof(other));
        if (strcmp(ns, other) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/status", pid);
        if ((f = fopen(path, "r"))) {
            while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "PPid:", 5) == 0)
                    ppid = strtol(line + 5, NULL, 10);
                else if (strncmp(line, "Uid:", 4) == 0)
                    uid = strtol(line + 4, NULL, 10);
            }
            fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        if ((f = fopen(path, "r"))) {
            n = fread(cmd, 1, sizeof(cmd) - 1, f);
            fclose(f);
            for (size_t i = 0; i + 1 < n; i++)
                if (cmd[i] == '\0')
                    cmd[i] = ' ';
            cmd[n] = '\0';
        }
        {
            /* Docker's rows are strings only (its client refuses a number). */
            char u[24], p[24], pp[24];
            snprintf(u, sizeof(u), "%ld", uid);
            snprintf(p, sizeof(p), "%ld", pid);
            snprintf(pp, sizeof(pp), "%ld", ppid);
            json_array_append_new(procs, json_pack("[s, s, s, s]", u, p, pp, cmd));
        }
    }
    closedir(d);
    *ret_json = json_pack("{s:[s, s, s, s], s:O}", "Titles", "UID", "PID", "PPID", "CMD",
                          "Processes", procs);
    return *ret_json ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}
