/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public container calls that need a running monitor: start, kill,
 * stop, wait, pause, unpause, attach, resize, exec. Each one checks the
 * record's state first (so a refusal has Docker's wording and touches
 * nothing), then talks to the container's berth-shim over its control
 * socket (docs/shim-protocol.md). The shim records state changes in the
 * store itself, in one transaction each.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

BERTH_API int berth_container_start(berth_engine_t *e, const char *ref, uint32_t flags,
                                    berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *ready = NULL, *req = NULL;
    const char *id;
    int r, fd = -1;

    if ((r = load_checked(e, ref, BERTH_OP_START, &doc, err)) < 0)
        return r;
    id = id_of(doc);
    /* A monitor already waiting (created with BERTH_START_WAIT): tell it to go. */
    if (berth__record_state(doc) == BERTH_ST_CREATED && !(flags & BERTH_START_WAIT) &&
        berth__shim_connect(e, id, &fd, NULL) == 0) {
        req = json_pack("{s:s}", "op", "start");
        r = berth__shim_request(fd, req, NULL, err);
        close(fd);
        return r;
    }
    return berth__shim_spawn(e, id, (flags & BERTH_START_WAIT) ? BERTH_SHIM_WAIT_START : 0, &ready,
                             err);
}

BERTH_API int berth_container_kill(berth_engine_t *e, const char *ref, int sig, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *req = NULL;
    int r;

    if (sig <= 0 || sig >= 65)
        return berth_err_set(err, -EINVAL, "invalid signal %d", sig);
    if ((r = load_checked(e, ref, BERTH_OP_KILL, &doc, err)) < 0)
        return r;
    req = json_pack("{s:s, s:i}", "op", "signal", "signal", sig);
    return shim_call(e, id_of(doc), req, NULL, err);
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
        *ret_exit_code =
            (int)json_integer_value(json_object_get(json_object_get(doc, "state"), "ExitCode"));
    return 0;
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
    _cleanup_json_ json_t *doc = NULL, *req = NULL;
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
    /* A paused container can't act on its stop signal: SIGKILL goes through a frozen cgroup. */
    if (berth__record_state(doc) == BERTH_ST_PAUSED)
        sig = SIGKILL;
    req = json_pack("{s:s, s:i}", "op", "signal", "signal", sig);
    if ((r = shim_call(e, id_of(doc), req, NULL, err)) < 0)
        return r;
    r = berth_container_wait(e, id_of(doc), (int64_t)timeout_s * 1000, NULL, err);
    if (r != -ETIMEDOUT)
        return r;
    /* Past the timeout: SIGKILL, and this time wait for it. */
    json_decref(req);
    req = json_pack("{s:s, s:i}", "op", "signal", "signal", SIGKILL);
    if ((r = shim_call(e, id_of(doc), req, NULL, err)) < 0 && r != -ECONNREFUSED && r != -ENOENT)
        return r;
    return berth_container_wait(e, id_of(doc), -1, NULL, err);
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

    if ((r = load_checked(e, ref, BERTH_OP_ATTACH, &doc, err)) < 0)
        return r;
    if ((r = berth__shim_connect(e, id_of(doc), &fd, err)) < 0)
        return r;
    req = json_pack("{s:s, s:b, s:b, s:b}", "op", "attach", "stdin",
                    (flags & BERTH_ATTACH_STDIN) != 0, "stdout", 1, "stderr", 1);
    if ((r = berth__shim_request(fd, req, &resp, err)) < 0)
        return r;
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
    return shim_call(e, id_of(doc), req, NULL, err);
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
    if ((r = berth__container_id_new(exec_id, err)) < 0)
        return r;
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
