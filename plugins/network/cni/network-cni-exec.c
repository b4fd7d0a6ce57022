/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plugin execution (network-cni-exec.h). No shell is involved: the binary is
 * spawned directly with a minimal environment, its stdio on fresh pipes and
 * every other descriptor closed, because berthd holds sockets, store files
 * and container pipes that a long-lived helper a plugin might leave behind
 * must never keep open.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "network-cni-exec.h"

/* A plugin's result is a few KiB; anything past these is kept out of memory. */
#define OUT_MAX (1u << 20)
#define ERR_MAX (64u << 10)

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct buf {
    char *data;
    size_t len, cap, max;
};

static int buf_read(struct buf *b, int fd)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR) ? 1 : 0;
    if (b->len + (size_t)n + 1 > b->cap && b->len < b->max) {
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    /* Past the cap the rest is drained and dropped, so the child never blocks on a full pipe. */
    if (b->len + (size_t)n + 1 <= b->cap) {
        memcpy(b->data + b->len, tmp, (size_t)n);
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct child_result {
    struct buf out, err;
    int status;
    int timed_out;
};

/*
 * Spawn @p path and feed it @p input (NULL: empty stdin), collecting stdout
 * and stderr until it exits or the deadline passes (then SIGKILL). Returns 0
 * when the child ran (whatever its status) or a negative errno when it could
 * not be started or the plumbing failed.
 */
static int spawn_capture(const char *path, char *const argv[], char *const envp[],
                         const char *input, unsigned timeout_s, struct child_result *res)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    size_t in_len = input ? strlen(input) : 0, in_off = 0;
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    pid_t pid;
    int r;

    memset(res, 0, sizeof(*res));
    res->out.max = OUT_MAX;
    res->err.max = ERR_MAX;
    /*
     * stdin is a socket so that writing to a plugin that exited without
     * reading fails with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE in
     * the daemon; plugins read it like any file.
     */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
        return -errno;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        r = -errno;
        goto close_all;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[1], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    /* Descriptors the caller opened without O_CLOEXEC must not reach the plugin either. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    /* The daemon may block or catch signals; the plugin starts with defaults. */
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    r = -posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r < 0)
        goto close_all;
    close(in[1]);
    close(out[1]);
    close(errp[1]);
    in[1] = out[1] = errp[1] = -1;
    fcntl(in[0], F_SETFL, O_NONBLOCK);
    if (in_len == 0) {
        close(in[0]);
        in[0] = -1;
    }

    while (in[0] >= 0 || out[0] >= 0 || errp[0] >= 0) {
        struct pollfd pfd[3] = {
            { .fd = in[0], .events = POLLOUT },
            { .fd = out[0], .events = POLLIN },
            { .fd = errp[0], .events = POLLIN },
        };
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            res->timed_out = 1;
            break;
        }
        if (poll(pfd, 3, (int)(left > 1000 ? 1000 : left)) < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (in[0] >= 0 && pfd[0].revents) {
            ssize_t n = send(in[0], input + in_off, in_len - in_off, MSG_NOSIGNAL);
            if (n > 0)
                in_off += (size_t)n;
            /* Done, or the plugin stopped reading: either way it has all it will take. */
            if (in_off == in_len || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                close(in[0]);
                in[0] = -1;
            }
        }
        if (out[0] >= 0 && pfd[1].revents) {
            int k = buf_read(&res->out, out[0]);
            if (k <= 0) {
                close(out[0]);
                out[0] = -1;
                if (k < 0)
                    r = -ENOMEM;
            }
        }
        if (errp[0] >= 0 && pfd[2].revents) {
            int k = buf_read(&res->err, errp[0]);
            if (k <= 0) {
                close(errp[0]);
                errp[0] = -1;
                if (k < 0)
                    r = -ENOMEM;
            }
        }
    }
    /*
     * The pipes are closed (or the deadline passed); the child normally
     * exits right away, but one that closed its stdio and hangs is killed at
     * the deadline all the same.
     */
    if (res->timed_out || r < 0)
        kill(pid, SIGKILL);
    for (;;) {
        pid_t w = waitpid(pid, &res->status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* Reaped elsewhere (SIGCHLD set to SIG_IGN): the status is lost, stdout decides. */
            res->status = 0;
            break;
        }
        if (!res->timed_out && now_ms() >= deadline) {
            res->timed_out = 1;
            kill(pid, SIGKILL);
        }
        struct timespec ts = { 0, 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
close_all:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (r < 0) {
        free(res->out.data);
        free(res->err.data);
        memset(&res->out, 0, sizeof(res->out));
        memset(&res->err, 0, sizeof(res->err));
    }
    return r;
}

char *network_cni_find_plugin(const char *cni_path, const char *type)
{
    const char *p = cni_path;

    /* A type is a file name, never a path: a conflist cannot run arbitrary binaries. */
    if (!type || !*type || strchr(type, '/') || strcmp(type, ".") == 0 || strcmp(type, "..") == 0)
        return NULL;
    while (p && *p) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *file;
        if (n > 0 && asprintf(&file, "%.*s/%s", (int)n, p, type) >= 0) {
            if (access(file, X_OK) == 0)
                return file;
            free(file);
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* The last non-empty line of @p text, trimmed, into @p dst. */
static void last_line(const char *text, char *dst, size_t size)
{
    const char *end, *start;
    dst[0] = '\0';
    if (!text)
        return;
    end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    start = end;
    while (start > text && start[-1] != '\n')
        start--;
    snprintf(dst, size, "%.*s", (int)(end - start), start);
}

static int set_failure(const cni_invocation_t *inv, struct child_result *res, berth_err_t *err)
{
    char line[256];
    json_t *o;

    if (res->timed_out)
        return berth_err_set(err, -ETIMEDOUT, "cni: plugin %s %s: timed out after %u s (killed)",
                             inv->type, inv->command, inv->timeout_s);
    /* CNI plugins report failures as {"code","msg","details"} on stdout. */
    o = res->out.data ? json_loads(res->out.data, 0, NULL) : NULL;
    if (json_is_object(o) && json_is_string(json_object_get(o, "msg"))) {
        const char *msg = json_string_value(json_object_get(o, "msg"));
        const char *details = json_string_value(json_object_get(o, "details"));
        long long code = json_integer_value(json_object_get(o, "code"));
        int r = berth_err_set(err, -EIO, "cni: plugin %s %s: %s%s%s (code %lld)", inv->type,
                              inv->command, msg, details && *details ? ": " : "",
                              details ? details : "", code);
        json_decref(o);
        return r;
    }
    json_decref(o);
    last_line(res->err.data, line, sizeof(line));
    if (!line[0])
        last_line(res->out.data, line, sizeof(line));
    if (WIFSIGNALED(res->status))
        return berth_err_set(err, -EIO, "cni: plugin %s %s: killed by signal %d%s%s", inv->type,
                             inv->command, WTERMSIG(res->status), line[0] ? ": " : "", line);
    return berth_err_set(err, -EIO, "cni: plugin %s %s: exit status %d%s%s", inv->type,
                         inv->command, WEXITSTATUS(res->status), line[0] ? ": " : "", line);
}

int network_cni_exec(const cni_invocation_t *inv, char **ret_stdout, berth_err_t *err)
{
    struct child_result res;
    char *path, *env[8] = { 0 };
    const char *sys_path = getenv("PATH");
    char *argv[2];
    int r = -ENOMEM, n = 0;

    path = network_cni_find_plugin(inv->cni_path, inv->type);
    if (!path)
        return berth_err_set(err, -ENOENT, "cni: plugin %s %s: not found in %s", inv->type,
                             inv->command, inv->cni_path);
    /*
     * Only the CNI variables and PATH (plugins run iptables and ip): the
     * daemon's own environment, perhaps a stray CNI_ARGS, stays out.
     */
    if (asprintf(&env[n++], "CNI_COMMAND=%s", inv->command) < 0 ||
        asprintf(&env[n++], "CNI_CONTAINERID=%s", inv->container_id) < 0 ||
        asprintf(&env[n++], "CNI_NETNS=%s", inv->netns ? inv->netns : "") < 0 ||
        asprintf(&env[n++], "CNI_IFNAME=%s", inv->ifname) < 0 ||
        asprintf(&env[n++], "CNI_PATH=%s", inv->cni_path) < 0 ||
        asprintf(&env[n++], "PATH=%s",
                 inv->path_env           ? inv->path_env
                 : sys_path && *sys_path ? sys_path
                                         : DEFAULT_PATH) < 0) {
        env[n - 1] = NULL;
        berth_err_set(err, r, "cni: out of memory");
        goto out;
    }
    argv[0] = (char *)inv->type;
    argv[1] = NULL;
    r = spawn_capture(path, argv, env, inv->config, inv->timeout_s, &res);
    if (r < 0) {
        berth_err_set(err, r, "cni: plugin %s %s: cannot run %s: %s", inv->type, inv->command, path,
                      strerror(-r));
        goto out;
    }
    if (res.timed_out || !WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
        r = set_failure(inv, &res, err);
    } else {
        if (ret_stdout) {
            *ret_stdout = res.out.data ? res.out.data : strdup("");
            res.out.data = NULL;
            if (!*ret_stdout)
                r = berth_err_set(err, -ENOMEM, "cni: out of memory");
        }
    }
    free(res.out.data);
    free(res.err.data);
out:
    for (int i = 0; i < n; i++)
        free(env[i]);
    free(path);
    return r;
}

int network_cni_run(char *const argv[], unsigned timeout_s, char **ret_stdout, berth_err_t *err)
{
    return network_cni_run_input(argv, NULL, timeout_s, ret_stdout, err);
}

int network_cni_run_input(char *const argv[], const char *input, unsigned timeout_s,
                          char **ret_stdout, berth_err_t *err)
{
    struct child_result res;
    const char *sys_path = getenv("PATH");
    char *env[2] = { NULL, NULL };
    char line[256];
    int r;

    if (asprintf(&env[0], "PATH=%s", sys_path && *sys_path ? sys_path : DEFAULT_PATH) < 0)
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    r = spawn_capture(argv[0], argv, env, input, timeout_s, &res);
    free(env[0]);
    if (r < 0)
        return berth_err_set(err, r, "cni: cannot run %s: %s", argv[0], strerror(-r));
    if (res.timed_out) {
        r = berth_err_set(err, -ETIMEDOUT, "cni: %s timed out after %u s (killed)", argv[0],
                          timeout_s);
    } else if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
        last_line(res.err.data, line, sizeof(line));
        r = berth_err_set(err, -EIO, "cni: %s failed%s%s", argv[0], line[0] ? ": " : "", line);
    } else if (ret_stdout) {
        *ret_stdout = res.out.data ? res.out.data : strdup("");
        res.out.data = NULL;
        if (!*ret_stdout)
            r = berth_err_set(err, -ENOMEM, "cni: out of memory");
    }
    free(res.out.data);
    free(res.err.data);
    return r;
}
