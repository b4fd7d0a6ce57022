/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-shim end to end with the in-memory fake isolation driver: spawning
 * through berth__shim_spawn, the control protocol, exit recording and
 * cleanup, surviving the starter's SIGKILL, AutoRemove, a missing driver,
 * and the idle monitor's memory (printed, never asserted).
 *
 * The test process makes itself a child subreaper, so the detached shims
 * are reparented to it: "the shim is gone" is then checked by reaping it
 * (and its exit status), independent of what the sandbox's pid 1 does.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "containers.h"
#include "engine-internal.h"
#include "lifecycle.h"
#include "shim-client.h"
#include "store.h"
#include "util.h"

struct fx {
    char base[256];
    char root[300], runroot[300], rootfs[300];
    berth_engine_t *e;
    /* Every shim spawned, so that a failed assertion never leaves one running. */
    pid_t shims[32];
    int n_shims;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    berth_engine_opts_t o = { .struct_size = sizeof(o) };
    berth_err_t err = { 0 };

    snprintf(f->base, sizeof(f->base), "%s/berth-shim-test-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->base));
    snprintf(f->root, sizeof(f->root), "%s/root", f->base);
    snprintf(f->runroot, sizeof(f->runroot), "%s/run", f->base);
    snprintf(f->rootfs, sizeof(f->rootfs), "%s/rootfs", f->base);
    assert_int_equal(mkdir(f->rootfs, 0755), 0);
    o.root = f->root;
    o.runroot = f->runroot;
    if (berth_engine_open(&o, &f->e, &err) < 0)
        fail_msg("engine: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < f->n_shims; i++) {
        if (waitpid(f->shims[i], NULL, WNOHANG) == 0) {
            kill(f->shims[i], SIGKILL);
            waitpid(f->shims[i], NULL, 0);
        }
    }
    berth_engine_close(f->e);
    assert_int_equal(berth__rm_rf(f->base), 0);
    free(f);
    return 0;
}

/* A container record as the create path writes it; @hc is stolen. */
static void make_container(struct fx *f, const char *isolation, json_t *hc, char id[65])
{
    berth_err_t err = { 0 };
    json_t *doc;
    char name[32];

    assert_int_equal(berth__container_id_new(id, NULL), 0);
    snprintf(name, sizeof(name), "c-%.8s", id);
    doc = json_pack("{s:s, s:s, s:s, s:s, s:{s:[s]}, s:o, s:{s:s}}", "id", id, "name", name,
                    "isolation", isolation, "rootfs", f->rootfs, "config", "Cmd", "x",
                    "host_config", hc ? hc : json_object(), "state", "Status", "created");
    if (berth__container_create(berth__engine_store(f->e), doc, NULL, NULL, &err) < 0)
        fail_msg("create: %s", err.msg);
    json_decref(doc);
}

static json_t *record_state(struct fx *f, const char *id)
{
    json_t *doc = NULL, *st;
    berth_err_t err = { 0 };
    if (berth__container_get(berth__engine_store(f->e), id, &doc, &err) < 0)
        return NULL;
    st = json_incref(json_object_get(doc, "state"));
    json_decref(doc);
    return st;
}

static const char *status_of(json_t *st)
{
    return json_string_value(json_object_get(st, "Status"));
}

static json_int_t int_of(json_t *st, const char *k)
{
    return json_integer_value(json_object_get(st, k));
}

/* Spawn and check the readiness line; returns the shim's pid. */
static pid_t spawn(struct fx *f, const char *id, uint32_t flags, const char *want_status)
{
    json_t *ready = NULL;
    berth_err_t err = { 0 };
    pid_t pid;

    if (berth__shim_spawn(f->e, id, flags, &ready, &err) < 0)
        fail_msg("spawn: %s", err.msg);
    assert_true(json_is_true(json_object_get(ready, "ok")));
    assert_string_equal(json_string_value(json_object_get(ready, "status")), want_status);
    pid = (pid_t)json_integer_value(json_object_get(ready, "shim_pid"));
    assert_true(pid > 0);
    if (f->n_shims < (int)BERTH_ARRAY_SIZE(f->shims))
        f->shims[f->n_shims++] = pid;
    json_decref(ready);
    return pid;
}

/* Reap the shim (we are its subreaper); returns its wait status or -1 after 10 s. */
static int reap_shim(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        usleep(10000);
    }
    return -1;
}

static int connect_shim(struct fx *f, const char *id)
{
    berth_err_t err = { 0 };
    int fd = -1;
    if (berth__shim_connect(f->e, id, &fd, &err) < 0)
        fail_msg("connect: %s", err.msg);
    return fd;
}

/* One request on a fresh connection; returns the code and fills *ret (may be NULL). */
static int request(struct fx *f, const char *id, const char *text, json_t **ret, berth_err_t *err)
{
    json_t *req = json_loads(text, 0, NULL);
    int fd = connect_shim(f, id), r;
    assert_non_null(req);
    r = berth__shim_request(fd, req, ret, err);
    json_decref(req);
    close(fd);
    return r;
}

static void request_ok(struct fx *f, const char *id, const char *text)
{
    berth_err_t err = { 0 };
    if (request(f, id, text, NULL, &err) < 0)
        fail_msg("%s: %s", text, err.msg);
}

struct ev_find {
    const char *id, *action;
    int found;
    char exit_code[16];
};

static int ev_cb(const char *key, json_t *doc, void *userdata)
{
    struct ev_find *q = userdata;
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *action = json_string_value(json_object_get(doc, "action"));
    if (id && action && strcmp(id, q->id) == 0 && strcmp(action, q->action) == 0) {
        const char *ec =
            json_string_value(json_object_get(json_object_get(doc, "attributes"), "exitCode"));
        q->found++;
        snprintf(q->exit_code, sizeof(q->exit_code), "%s", ec ? ec : "");
    }
    return 0;
}

static struct ev_find find_event(struct fx *f, const char *id, const char *action)
{
    struct ev_find q = { .id = id, .action = action };
    berth_txn_t *txn = NULL;
    assert_int_equal(berth__store_txn_begin(berth__engine_store(f->e), 0, &txn, NULL), 0);
    assert_int_equal(berth__store_event_walk(txn, 0, ev_cb, &q, NULL), 0);
    berth__store_txn_abort(txn);
    return q;
}

static int path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* No process in /proc has @pid as its parent. */
static int has_children(pid_t pid)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "grep -qs '^PPid:[[:space:]]*%d$' /proc/[0-9]*/status", (int)pid);
    return system(cmd) == 0;
}

static void test_shim_run_and_signal(void **state)
{
    struct fx *f = *state;
    char id[65], bundle[1024];
    json_t *st, *resp = NULL;
    berth_err_t err = { 0 };
    pid_t shim;
    int status;

    make_container(f, "fake", NULL, id);
    shim = spawn(f, id, 0, "running");
    st = record_state(f, id);
    assert_string_equal(status_of(st), "running");
    assert_int_equal(int_of(st, "ShimPid"), shim);
    assert_true(int_of(st, "StartedAt") > 0);
    json_decref(st);
    snprintf(bundle, sizeof(bundle), "%s/containers/%s", f->runroot, id);
    assert_true(path_exists(bundle));
    assert_int_equal(find_event(f, id, "start").found, 1);

    assert_int_equal(request(f, id, "{\"op\":\"state\"}", &resp, &err), 0);
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "running");
    json_decref(resp);

    /* Bad requests get an error line and leave the container alone. */
    assert_int_equal(request(f, id, "{\"op\":\"signal\",\"signal\":99}", NULL, &err), -EINVAL);
    assert_int_equal(request(f, id, "{\"op\":\"nope\"}", NULL, &err), -EINVAL);
    assert_int_equal(request(f, id, "{\"op\":\"stats\"}", NULL, &err), -ENOTSUP);
    assert_int_equal(request(f, id,
                             "{\"op\":\"exec\",\"id\":\"e1\",\"process\":{\"args\":[\"x\"]}}", NULL,
                             &err),
                     -ENOTSUP);

    request_ok(f, id, "{\"op\":\"signal\",\"signal\":15}");
    status = reap_shim(shim);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_false(has_children(shim));

    st = record_state(f, id);
    assert_string_equal(status_of(st), "exited");
    assert_int_equal(int_of(st, "ExitCode"), 143);
    assert_int_equal(int_of(st, "Pid"), 0);
    assert_true(int_of(st, "FinishedAt") > 0);
    json_decref(st);
    {
        struct ev_find q = find_event(f, id, "die");
        assert_int_equal(q.found, 1);
        assert_string_equal(q.exit_code, "143");
    }
    assert_false(path_exists(bundle));
    /* The log stays with the record. */
    snprintf(bundle, sizeof(bundle), "%s/containers/%s/%s-json.log", f->root, id, id);
    assert_true(path_exists(bundle));
    /* No monitor answers any more. */
    {
        int fd = -1;
        assert_true(berth__shim_connect(f->e, id, &fd, &err) < 0);
    }
}

/* Write a request line without reading the answer. */
static void send_line(int fd, const char *text)
{
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(write(fd, "\n", 1), 1);
}

static json_t *read_line(int fd)
{
    char buf[4096];
    size_t n = 0;
    while (n < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            return NULL;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return json_loads(buf, 0, NULL);
}

static void test_shim_wait_start_and_wait(void **state)
{
    struct fx *f = *state;
    char id[65];
    json_t *st, *resp = NULL;
    berth_err_t err = { 0 };
    pid_t shim;
    int waiter;

    make_container(f, "fake", NULL, id);
    shim = spawn(f, id, BERTH_SHIM_WAIT_START, "created");
    st = record_state(f, id);
    assert_string_equal(status_of(st), "created");
    json_decref(st);
    assert_int_equal(request(f, id, "{\"op\":\"state\"}", &resp, &err), 0);
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "created");
    json_decref(resp);
    /* A client may attach before anything runs. */
    {
        int fd = connect_shim(f, id);
        json_t *req = json_pack("{s:s, s:b, s:b}", "op", "attach", "stdout", 1, "stderr", 1);
        assert_int_equal(berth__shim_request(fd, req, &resp, &err), 0);
        assert_false(json_is_true(json_object_get(resp, "tty")));
        json_decref(resp);
        json_decref(req);
        close(fd);
    }

    request_ok(f, id, "{\"op\":\"start\"}");
    st = record_state(f, id);
    assert_string_equal(status_of(st), "running");
    assert_int_equal(int_of(st, "ShimPid"), shim);
    json_decref(st);
    assert_int_equal(request(f, id, "{\"op\":\"start\"}", NULL, &err), -EINVAL);

    /* A bounded wait times out while the container runs. */
    assert_int_equal(request(f, id, "{\"op\":\"wait\",\"timeout_ms\":100}", NULL, &err),
                     -ETIMEDOUT);
    assert_string_equal(err.msg, "timed out");

    /* An unbounded one is answered at the exit. */
    waiter = connect_shim(f, id);
    send_line(waiter, "{\"op\":\"wait\"}");
    usleep(50000);
    request_ok(f, id, "{\"op\":\"signal\",\"signal\":9}");
    resp = read_line(waiter);
    assert_non_null(resp);
    assert_true(json_is_true(json_object_get(resp, "ok")));
    assert_int_equal(json_integer_value(json_object_get(resp, "exit_code")), 137);
    assert_false(json_is_true(json_object_get(resp, "oom_killed")));
    json_decref(resp);
    close(waiter);
    assert_int_equal(reap_shim(shim), 0);
    st = record_state(f, id);
    assert_string_equal(status_of(st), "exited");
    assert_int_equal(int_of(st, "ExitCode"), 137);
    json_decref(st);
}

static void test_shim_pause_resume(void **state)
{
    struct fx *f = *state;
    char id[65];
    json_t *st;
    pid_t shim;

    make_container(f, "fake", NULL, id);
    shim = spawn(f, id, 0, "running");
    request_ok(f, id, "{\"op\":\"pause\"}");
    st = record_state(f, id);
    assert_string_equal(status_of(st), "paused");
    json_decref(st);
    assert_int_equal(find_event(f, id, "pause").found, 1);
    request_ok(f, id, "{\"op\":\"resume\"}");
    st = record_state(f, id);
    assert_string_equal(status_of(st), "running");
    json_decref(st);
    assert_int_equal(find_event(f, id, "unpause").found, 1);
    request_ok(f, id, "{\"op\":\"signal\",\"signal\":9}");
    assert_int_equal(reap_shim(shim), 0);
}

static void test_shim_attach_exit_frame(void **state)
{
    struct fx *f = *state;
    char id[65], *buf = NULL;
    json_t *req, *resp = NULL, *payload;
    berth_err_t err = { 0 };
    uint8_t stream = 0;
    size_t len = 0;
    pid_t shim;
    int fd, r;

    make_container(f, "fake", NULL, id);
    shim = spawn(f, id, 0, "running");
    fd = connect_shim(f, id);
    req = json_pack("{s:s, s:b, s:b, s:b}", "op", "attach", "stdin", 0, "stdout", 1, "stderr", 1);
    assert_int_equal(berth__shim_request(fd, req, &resp, &err), 0);
    json_decref(req);
    json_decref(resp);
    request_ok(f, id, "{\"op\":\"signal\",\"signal\":15}");
    /* The fake's streams carry nothing: the first frame is the exit. */
    r = berth__frame_read(fd, &stream, &buf, &len, &err);
    assert_int_equal(r, 1);
    assert_int_equal(stream, BERTH_FRAME_EXIT);
    payload = json_loadb(buf, len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(payload, "exit_code")), 143);
    json_decref(payload);
    free(buf);
    assert_int_equal(berth__frame_read(fd, &stream, &buf, &len, &err), 0);
    close(fd);
    assert_int_equal(reap_shim(shim), 0);
}

static void test_shim_survives_starter_kill(void **state)
{
    struct fx *f = *state;
    char id[65];
    json_t *resp = NULL;
    berth_err_t err = { 0 };
    int pfd[2], status;
    pid_t starter, shim = 0;

    make_container(f, "fake", NULL, id);
    assert_int_equal(pipe(pfd), 0);
    starter = fork();
    assert_true(starter >= 0);
    if (starter == 0) {
        /* A CLI of its own: never touch the parent's store after fork. */
        berth_engine_opts_t o = { .struct_size = sizeof(o),
                                  .flags = BERTH_ENGINE_F_NO_STORE | BERTH_ENGINE_F_NO_PLUGINS,
                                  .root = f->root,
                                  .runroot = f->runroot };
        berth_engine_t *e = NULL;
        json_t *ready = NULL;
        int pid = 0;
        if (berth_engine_open(&o, &e, NULL) == 0 && berth__shim_spawn(e, id, 0, &ready, NULL) == 0)
            pid = (int)json_integer_value(json_object_get(ready, "shim_pid"));
        if (write(pfd[1], &pid, sizeof(pid)) != sizeof(pid))
            _exit(1);
        for (;;)
            pause();
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &shim, sizeof(shim)), (ssize_t)sizeof(shim));
    close(pfd[0]);
    assert_true(shim > 0);
    f->shims[f->n_shims++] = shim;
    assert_int_equal(kill(starter, SIGKILL), 0);
    assert_int_equal(waitpid(starter, &status, 0), starter);
    assert_true(WIFSIGNALED(status));
    usleep(100000);

    assert_int_equal(kill(shim, 0), 0);
    assert_int_equal(request(f, id, "{\"op\":\"state\"}", &resp, &err), 0);
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "running");
    json_decref(resp);
    request_ok(f, id, "{\"op\":\"signal\",\"signal\":15}");
    assert_int_equal(reap_shim(shim), 0);
}

static void test_shim_autoremove(void **state)
{
    struct fx *f = *state;
    char id[65], dir[400];
    json_t *doc = NULL;
    pid_t shim;

    make_container(f, "fake", json_pack("{s:b}", "AutoRemove", 1), id);
    shim = spawn(f, id, 0, "running");
    snprintf(dir, sizeof(dir), "%s/containers/%s", f->root, id);
    assert_true(path_exists(dir));
    request_ok(f, id, "{\"op\":\"signal\",\"signal\":15}");
    assert_int_equal(reap_shim(shim), 0);
    assert_int_equal(berth__container_get(berth__engine_store(f->e), id, &doc, NULL), -ENOENT);
    assert_int_equal(find_event(f, id, "destroy").found, 1);
    assert_false(path_exists(dir));
}

static void test_shim_missing_driver(void **state)
{
    struct fx *f = *state;
    char id[65], bundle[400];
    berth_err_t err = { 0 };
    json_t *ready = NULL, *st;
    int r;

    make_container(f, "nope", NULL, id);
    r = berth__shim_spawn(f->e, id, 0, &ready, &err);
    assert_true(r < 0);
    assert_null(ready);
    assert_non_null(strstr(err.msg, "isolation driver \"nope\" is not available (loaded: "));
    assert_non_null(strstr(err.msg, "fake"));
    st = record_state(f, id);
    assert_string_equal(status_of(st), "exited");
    assert_int_equal(int_of(st, "ExitCode"), 125);
    assert_string_equal(json_string_value(json_object_get(st, "Error")), err.msg);
    json_decref(st);
    assert_int_equal(find_event(f, id, "die").found, 1);
    snprintf(bundle, sizeof(bundle), "%s/containers/%s", f->runroot, id);
    assert_false(path_exists(bundle));
    /* The failed shim exits on its own; reap whatever it left us. */
    for (int i = 0; i < 500 && waitpid(-1, NULL, WNOHANG) >= 0; i++)
        usleep(10000);
}

static void smaps_rollup(pid_t pid, long *ret_pss, long *ret_rss);

/* argv[2]: the script that builds a busybox rootfs; set by main. */
static const char *busybox_script;

/* A busybox rootfs for the real process driver, or skip when it can't run here. */
static void process_rootfs(struct fx *f)
{
    char cmd[700];
    berth_registry_t *reg = berth__engine_registry(f->e);

    if (!reg || !berth__registry_find(reg, BERTH_KIND_ISOLATION, "process") || !busybox_script ||
        access("/bin/busybox", X_OK) != 0) {
        printf("# process driver or busybox-static missing: skipped\n");
        skip();
    }
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null", busybox_script, f->rootfs);
    assert_int_equal(system(cmd), 0);
}

/* @flags: config members set to true ("Tty", "OpenStdin", "StdinOnce"), NULL-terminated. */
static void make_process_container_with(struct fx *f, const char *script, const char *const *flags,
                                        char id[65])
{
    berth_err_t err = { 0 };
    json_t *doc;
    char name[32];

    assert_int_equal(berth__container_id_new(id, NULL), 0);
    snprintf(name, sizeof(name), "p-%.8s", id);
    doc = json_pack("{s:s, s:s, s:s, s:s, s:{s:[s, s, s]}, s:{}, s:{s:s}}", "id", id, "name", name,
                    "isolation", "process", "rootfs", f->rootfs, "config", "Cmd", "/bin/sh", "-c",
                    script, "host_config", "state", "Status", "created");
    for (size_t i = 0; flags && flags[i]; i++)
        json_object_set_new(json_object_get(doc, "config"), flags[i], json_true());
    if (berth__container_create(berth__engine_store(f->e), doc, NULL, NULL, &err) < 0)
        fail_msg("create: %s", err.msg);
    json_decref(doc);
}

static void make_process_container(struct fx *f, const char *script, char id[65])
{
    make_process_container_with(f, script, NULL, id);
}

/* Attach (created with --wait-start), optionally send @input then SHUT_WR, start, collect. */
static int attach_and_run(struct fx *f, const char *id, const char *input, char *out, size_t outlen)
{
    berth_err_t err = { 0 };
    json_t *req, *resp = NULL;
    uint8_t stream;
    char *buf;
    size_t len;
    int fd = connect_shim(f, id), r, exit_code = -1;

    req = json_pack("{s:s, s:b, s:b, s:b}", "op", "attach", "stdin", input != NULL, "stdout", 1,
                    "stderr", 1);
    if (berth__shim_request(fd, req, &resp, &err) < 0)
        fail_msg("attach: %s", err.msg);
    json_decref(req);
    json_decref(resp);
    if (request(f, id, "{\"op\":\"start\"}", NULL, &err) < 0)
        fail_msg("start: %s", err.msg);
    if (input) {
        assert_int_equal(write(fd, input, strlen(input)), (ssize_t)strlen(input));
        shutdown(fd, SHUT_WR);
    }
    out[0] = '\0';
    while ((r = berth__frame_read(fd, &stream, &buf, &len, &err)) == 1) {
        if (stream == BERTH_FRAME_EXIT) {
            json_t *p = json_loadb(buf, len, 0, NULL);
            exit_code = (int)json_integer_value(json_object_get(p, "exit_code"));
            json_decref(p);
        } else {
            snprintf(out + strlen(out), outlen - strlen(out), "%d:%s", stream, buf);
        }
        free(buf);
    }
    assert_int_equal(r, 0);
    close(fd);
    return exit_code;
}

/* A terminal, and stdin that closes with the client's SHUT_WR (StdinOnce). */
static void test_shim_process_tty_and_stdin(void **state)
{
    static const char *const tty[] = { "Tty", NULL };
    static const char *const in[] = { "OpenStdin", "StdinOnce", NULL };
    struct fx *f = *state;
    char id[65], out[512];
    pid_t shim;

    process_rootfs(f);
    make_process_container_with(f, "echo tty-hello; test -t 1", tty, id);
    shim = spawn(f, id, BERTH_SHIM_WAIT_START, "created");
    assert_int_equal(attach_and_run(f, id, NULL, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1:tty-hello\r\n"));
    assert_int_equal(reap_shim(shim), 0);

    make_process_container_with(f, "cat; echo done", in, id);
    shim = spawn(f, id, BERTH_SHIM_WAIT_START, "created");
    assert_int_equal(attach_and_run(f, id, "abc\n", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1:abc\n"));
    assert_non_null(strstr(out, "done"));
    assert_int_equal(reap_shim(shim), 0);
}

/* With the real process driver: output reaches attached clients and the log, the exit its code. */
static void test_shim_process_driver(void **state)
{
    struct fx *f = *state;
    char id[65], path[1024], *buf = NULL, out[256] = "", *log = NULL;
    json_t *req, *resp = NULL, *st;
    berth_err_t err = { 0 };
    uint8_t stream;
    size_t len, loglen = 0;
    pid_t shim;
    int fd, r, exit_code = -1;
    FILE *fp;

    process_rootfs(f);
    make_process_container(f, "echo hello; echo oops >&2; exit 3", id);
    shim = spawn(f, id, BERTH_SHIM_WAIT_START, "created");
    fd = connect_shim(f, id);
    req = json_pack("{s:s, s:b, s:b}", "op", "attach", "stdout", 1, "stderr", 1);
    assert_int_equal(berth__shim_request(fd, req, &resp, &err), 0);
    json_decref(req);
    json_decref(resp);
    if (request(f, id, "{\"op\":\"start\"}", NULL, &err) < 0)
        fail_msg("start: %s", err.msg);
    while ((r = berth__frame_read(fd, &stream, &buf, &len, &err)) == 1) {
        if (stream == BERTH_FRAME_EXIT) {
            json_t *p = json_loadb(buf, len, 0, NULL);
            exit_code = (int)json_integer_value(json_object_get(p, "exit_code"));
            json_decref(p);
        } else {
            snprintf(out + strlen(out), sizeof(out) - strlen(out), "%d:%s", stream, buf);
        }
        free(buf);
    }
    assert_int_equal(r, 0);
    close(fd);
    assert_int_equal(exit_code, 3);
    assert_non_null(strstr(out, "1:hello\n"));
    assert_non_null(strstr(out, "2:oops\n"));
    assert_int_equal(reap_shim(shim), 0);
    assert_false(has_children(shim));
    st = record_state(f, id);
    assert_string_equal(status_of(st), "exited");
    assert_int_equal(int_of(st, "ExitCode"), 3);
    json_decref(st);
    snprintf(path, sizeof(path), "%s/containers/%s/%s-json.log", f->root, id, id);
    fp = fopen(path, "re");
    assert_non_null(fp);
    assert_true(getdelim(&log, &loglen, '\0', fp) > 0);
    fclose(fp);
    assert_non_null(strstr(log, "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\""));
    assert_non_null(strstr(log, "{\"log\":\"oops\\n\",\"stream\":\"stderr\",\"time\":\""));
    free(log);

    /* A command that does not exist: 127, with the driver's message in the record. */
    make_process_container(f, "x", id);
    {
        json_t *doc = NULL;
        assert_int_equal(berth__container_get(berth__engine_store(f->e), id, &doc, NULL), 0);
        json_array_set_new(json_object_get(json_object_get(doc, "config"), "Cmd"), 0,
                           json_string("/no/such/binary"));
        assert_int_equal(
            berth__container_update(berth__engine_store(f->e), doc, NULL, NULL, NULL, NULL), 0);
        json_decref(doc);
    }
    assert_int_equal(berth__shim_spawn(f->e, id, 0, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/no/such/binary"));
    st = record_state(f, id);
    assert_string_equal(status_of(st), "exited");
    assert_int_equal(int_of(st, "ExitCode"), 127);
    assert_string_equal(json_string_value(json_object_get(st, "Error")), err.msg);
    json_decref(st);

    /* An idle monitor of a real container, for the report. */
    make_process_container(f, "exec sleep 60", id);
    shim = spawn(f, id, 0, "running");
    st = record_state(f, id);
    assert_true(int_of(st, "Pid") > 0);
    json_decref(st);
    usleep(200000);
    {
        long pss, rss;
        smaps_rollup(shim, &pss, &rss);
        printf("# idle berth-shim (process driver, sleep): Pss %ld kB, Rss %ld kB\n", pss, rss);
    }
    assert_int_equal(request(f, id, "{\"op\":\"wait\",\"timeout_ms\":50}", NULL, &err), -ETIMEDOUT);
    /* stats and an exec with its output and exit code. */
    assert_int_equal(request(f, id, "{\"op\":\"stats\"}", &resp, &err), 0);
    assert_true(json_is_object(json_object_get(resp, "stats")));
    json_decref(resp);
    fd = connect_shim(f, id);
    req = json_pack("{s:s, s:s, s:{s:[s, s, s], s:[s], s:s}, s:b, s:b}", "op", "exec", "id", "e1",
                    "process", "args", "/bin/sh", "-c", "echo hi; echo ho >&2; exit 5", "env",
                    "PATH=/bin", "cwd", "/", "tty", 0, "stdin", 0);
    if (berth__shim_request(fd, req, &resp, &err) < 0)
        fail_msg("exec: %s", err.msg);
    json_decref(req);
    json_decref(resp);
    out[0] = '\0';
    exit_code = -1;
    while ((r = berth__frame_read(fd, &stream, &buf, &len, &err)) == 1) {
        if (stream == BERTH_FRAME_EXIT) {
            json_t *p = json_loadb(buf, len, 0, NULL);
            exit_code = (int)json_integer_value(json_object_get(p, "exit_code"));
            json_decref(p);
        } else {
            snprintf(out + strlen(out), sizeof(out) - strlen(out), "%d:%s", stream, buf);
        }
        free(buf);
    }
    close(fd);
    assert_int_equal(exit_code, 5);
    assert_non_null(strstr(out, "1:hi\n"));
    assert_non_null(strstr(out, "2:ho\n"));
    assert_int_equal(request(f, id, "{\"op\":\"exec_state\",\"id\":\"e1\"}", &resp, &err), 0);
    assert_false(json_is_true(json_object_get(resp, "running")));
    assert_int_equal(json_integer_value(json_object_get(resp, "exit_code")), 5);
    json_decref(resp);
    request_ok(f, id, "{\"op\":\"pause\"}");
    request_ok(f, id, "{\"op\":\"resume\"}");
    request_ok(f, id, "{\"op\":\"signal\",\"signal\":9}");
    assert_int_equal(reap_shim(shim), 0);
    assert_false(has_children(shim));
    st = record_state(f, id);
    assert_int_equal(int_of(st, "ExitCode"), 137);
    json_decref(st);
    for (int i = 0; i < 500 && waitpid(-1, NULL, WNOHANG) >= 0; i++)
        usleep(10000);
}

static void smaps_rollup(pid_t pid, long *ret_pss, long *ret_rss)
{
    char path[64], line[256];
    FILE *fp;

    *ret_pss = *ret_rss = -1;
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    fp = fopen(path, "re");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
        sscanf(line, "Pss: %ld kB", ret_pss);
        sscanf(line, "Rss: %ld kB", ret_rss);
    }
    fclose(fp);
}

/*
 * PSS and RSS of idle shims, printed for the report (never asserted): one
 * alone (it pays for every shared page itself), then the average over
 * several, which is what each further container costs the host.
 */
static void test_shim_idle_memory(void **state)
{
    enum { N = 8 };
    struct fx *f = *state;
    char ids[N][65];
    pid_t shims[N];
    long pss, rss, sum_pss = 0, sum_rss = 0;

    for (int i = 0; i < N; i++) {
        make_container(f, "fake", NULL, ids[i]);
        shims[i] = spawn(f, ids[i], 0, "running");
        request_ok(f, ids[i], "{\"op\":\"state\"}");
        if (i == 0) {
            usleep(100000);
            smaps_rollup(shims[0], &pss, &rss);
            printf("# one idle berth-shim (fake driver): Pss %ld kB, Rss %ld kB\n", pss, rss);
        }
    }
    usleep(100000);
    for (int i = 0; i < N; i++) {
        smaps_rollup(shims[i], &pss, &rss);
        sum_pss += pss;
        sum_rss += rss;
    }
    printf("# %d idle berth-shims (fake driver): Pss %ld kB, Rss %ld kB each on average\n", N,
           sum_pss / N, sum_rss / N);
    for (int i = 0; i < N; i++) {
        request_ok(f, ids[i], "{\"op\":\"signal\",\"signal\":9}");
        assert_int_equal(reap_shim(shims[i]), 0);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shim_run_and_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_wait_start_and_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_attach_exit_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_survives_starter_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_autoremove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_missing_driver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_idle_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_process_driver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_process_tty_and_stdin, setup, teardown),
    };
    /* argv[1]: the source tree's default seccomp profile, when it exists. */
    if (argc > 1 && access(argv[1], R_OK) == 0)
        setenv("BERTH_SECCOMP_PROFILE", argv[1], 1);
    if (argc > 2)
        busybox_script = argv[2];
    if (geteuid() != 0) {
        printf("1..0 # SKIP berth-shim tests run as root\n");
        return 77;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
