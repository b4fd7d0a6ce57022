/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting and talking to berth-shim (shim-client.h). The shim is started
 * in its own session and forks once more itself (--detach), so that it is
 * nobody's child but init's (or a subreaper's): killing the CLI or the
 * daemon that started it never reaches it, and the caller has no child to
 * reap later. The caller spawns it with posix_spawn (vfork and exec): a
 * fork of the caller would copy the page tables of every library the CLI
 * or daemon has mapped, which costs a container start about a millisecond.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-build-config.h"

#include "engine-internal.h"
#include "shim-client.h"
#include "util.h"

static int write_all(int fd, const void *buf, size_t len, berth_err_t *err);

const char *berth__shim_path(void)
{
    const char *p = getenv("BERTH_SHIM_PATH");
    return p && *p ? p : BERTH_LIBEXECDIR "/berth-shim";
}

int berth__shim_socket_path(berth_engine_t *e, const char *id, char *buf, size_t len,
                            berth_err_t *err)
{
    int n = snprintf(buf, len, "%s/containers/%s/shim.sock", berth_engine_runroot(e), id);
    if (n < 0 || (size_t)n >= len)
        return berth_err_set(err, -ENAMETOOLONG, "shim socket path too long");
    return 0;
}

int berth__unix_sockaddr(const char *path, struct sockaddr_un *sa, int *ret_dirfd, berth_err_t *err)
{
    char dir[PATH_MAX];
    const char *slash;
    int fd;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) < sizeof(sa->sun_path)) {
        memcpy(sa->sun_path, path, strlen(path) + 1);
        *ret_dirfd = -1;
        return 0;
    }
    /* sun_path holds 108 bytes; the kernel resolves the magic link instead. */
    slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= sizeof(dir) || strlen(slash) > 64)
        return berth_err_set(err, -ENAMETOOLONG, "socket path too long: %s", path);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    fd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "%s: %s", dir, strerror(errno));
    snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d%s", fd, slash);
    *ret_dirfd = fd;
    return 0;
}

/* Read one line (without the newline) into @buf with a deadline; 0, or -errno. */
static int read_ready_line(int fd, char *buf, size_t len, int timeout_ms, berth_err_t *err)
{
    int64_t deadline = berth__mono_ns() + (int64_t)timeout_ms * 1000000;
    size_t n = 0;

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int64_t left = (deadline - berth__mono_ns()) / 1000000;
        ssize_t r;
        char *nl;

        if (left <= 0)
            return berth_err_set(err, -ETIMEDOUT, "berth-shim did not report readiness in %d s",
                                 timeout_ms / 1000);
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return berth_err_set(err, -errno, "poll: %s", strerror(errno));
        if (r == 0)
            continue;
        r = read(fd, buf + n, len - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return berth_err_set(err, -errno, "read from berth-shim: %s", strerror(errno));
        if (r == 0)
            return berth_err_set(err, -EIO, "berth-shim exited without reporting readiness");
        n += (size_t)r;
        buf[n] = '\0';
        if ((nl = memchr(buf, '\n', n))) {
            *nl = '\0';
            return 0;
        }
        if (n == len - 1)
            return berth_err_set(err, -EPROTO, "berth-shim readiness line too long");
    }
}

/*
 * posix_spawn @path in a new session with stdin, stdout and stderr on
 * /dev/null, @ready_fd as fd 3, @record_fd (unless -1) as fd 4 and no other fd, every signal at its default
 * disposition and none blocked: the caller may block or ignore signals (a
 * daemon, a CLI ignoring SIGPIPE), and exec would pass both on to the shim
 * and the container it starts. Returns 0 or an errno value.
 */
static int spawn_detached(const char *path, const char **argv, int ready_fd, int record_fd,
                          pid_t *ret_pid)
{
    extern char **environ;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t all, none;
    int r;

    if ((r = posix_spawn_file_actions_init(&fa)) != 0)
        return r;
    if ((r = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return r;
    }
    sigfillset(&all);
    sigemptyset(&none);
    if ((r = posix_spawn_file_actions_adddup2(&fa, ready_fd, 3)) == 0 &&
        (record_fd < 0 || (r = posix_spawn_file_actions_adddup2(&fa, record_fd, 4)) == 0) &&
        (r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0)) == 0 &&
        (r = posix_spawn_file_actions_adddup2(&fa, 0, 1)) == 0 &&
        (r = posix_spawn_file_actions_adddup2(&fa, 0, 2)) == 0 &&
        (r = posix_spawn_file_actions_addclosefrom_np(&fa, record_fd < 0 ? 4 : 5)) == 0 &&
        (r = posix_spawnattr_setsigdefault(&at, &all)) == 0 &&
        (r = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
        (r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                               POSIX_SPAWN_SETSIGMASK)) == 0)
        r = posix_spawn(ret_pid, path, &fa, &at, (char *const *)argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

int berth__shim_spawn_pending(berth_engine_t *e, const char *id, uint32_t flags, json_t *record,
                              berth_shim_pending_t *ret, berth_err_t *err)
{
    const berth_config_t *cfg = berth__engine_config(e);
    const char *shim = berth__shim_path();
    _cleanup_free_ char *plugin_path = NULL;
    _cleanup_free_ char *text = NULL;
    const char *argv[20];
    size_t argc = 0, plen = 0;
    int pipefd[2], recfd[2] = { -1, -1 }, status, r;
    pid_t pid;

    if (flags & ~BERTH_SHIM_WAIT_START)
        return berth_err_set(err, -EINVAL, "berth__shim_spawn: unknown flags 0x%x", flags);
    if (record && !(flags & BERTH_SHIM_WAIT_START))
        return berth_err_set(err, -EINVAL,
                             "berth__shim_spawn: a record needs BERTH_SHIM_WAIT_START");
    if (record && !(text = json_dumps(record, JSON_COMPACT)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; cfg->plugin_dirs && cfg->plugin_dirs[i]; i++)
        plen += strlen(cfg->plugin_dirs[i]) + 1;
    plugin_path = calloc(1, plen + 1);
    if (!plugin_path)
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; cfg->plugin_dirs && cfg->plugin_dirs[i]; i++) {
        if (i)
            strcat(plugin_path, ":");
        strcat(plugin_path, cfg->plugin_dirs[i]);
    }
    argv[argc++] = shim;
    argv[argc++] = "--id";
    argv[argc++] = id;
    argv[argc++] = "--root";
    argv[argc++] = cfg->root;
    argv[argc++] = "--runroot";
    argv[argc++] = cfg->runroot;
    if (cfg->path) {
        argv[argc++] = "--config";
        argv[argc++] = cfg->path;
    }
    if (*plugin_path) {
        argv[argc++] = "--plugin-path";
        argv[argc++] = plugin_path;
    }
    if (flags & BERTH_SHIM_WAIT_START)
        argv[argc++] = "--wait-start";
    if (record)
        argv[argc++] = "--record-fd=4";
    argv[argc++] = "--detach";
    argv[argc] = NULL;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return berth_err_set(err, -errno, "pipe: %s", strerror(errno));
    /* A socket, not a pipe: a send to a shim that died fails with EPIPE instead of a SIGPIPE. */
    if (record && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, recfd) < 0) {
        r = -errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return berth_err_set(err, r, "socketpair: %s", strerror(-r));
    }
    r = spawn_detached(shim, argv, pipefd[1], recfd[1], &pid);
    close(pipefd[1]);
    if (recfd[1] >= 0)
        close(recfd[1]);
    if (r != 0) {
        close(pipefd[0]);
        if (recfd[0] >= 0)
            close(recfd[0]);
        return berth_err_set(err, -r, "cannot execute %s: %s", shim, strerror(r));
    }
    /* The shim's first process exits as soon as it has forked; reap it so the caller keeps no
     * zombie. */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* The record, then a NUL: the shim reads it first thing. */
    if (record && (write_all(recfd[0], text, strlen(text) + 1, NULL) < 0)) {
        /* It died on the way: its readiness line (or its absence) tells why. */
        close(recfd[0]);
        recfd[0] = -1;
    }
    ret->ready_fd = pipefd[0];
    ret->record_fd = recfd[0];
    return 0;
}

int berth__shim_pending_finish(berth_shim_pending_t *p, int committed, json_t **ret_ready,
                               berth_err_t *err)
{
    _cleanup_json_ json_t *ready = NULL;
    char line[4096];
    json_error_t jerr;
    int r;

    if (p->record_fd >= 0) {
        /*
         * "1": the record is durable, go on. "0" (or nothing): undo everything
         * and exit; the shim closes its end when it is done, so that the
         * caller can release the container's storage after us.
         */
        if (send(p->record_fd, committed ? "1" : "0", 1, MSG_NOSIGNAL) != 1)
            committed = 0;
        if (!committed) {
            char c;
            struct pollfd pf = { .fd = p->record_fd, .events = POLLIN };
            shutdown(p->record_fd, SHUT_WR);
            while (poll(&pf, 1, BERTH_SHIM_READY_TIMEOUT_MS) > 0 && read(p->record_fd, &c, 1) > 0)
                ;
        }
        close(p->record_fd);
        p->record_fd = -1;
    }
    r = read_ready_line(p->ready_fd, line, sizeof(line), BERTH_SHIM_READY_TIMEOUT_MS, err);
    close(p->ready_fd);
    p->ready_fd = -1;
    if (r < 0)
        return r;
    if (!committed)
        return 0;
    ready = json_loads(line, 0, &jerr);
    if (!json_is_object(ready))
        return berth_err_set(err, -EPROTO, "berth-shim: malformed readiness line");
    if (json_object_get(ready, "error")) {
        json_int_t code = json_integer_value(json_object_get(ready, "code"));
        json_int_t ec = json_integer_value(json_object_get(ready, "exit_code"));
        const char *msg = json_string_value(json_object_get(ready, "error"));
        if (ec == 127)
            code = -ENOENT;
        else if (ec == 126)
            code = -EACCES;
        else if (code >= 0 || code < -4095)
            code = -EIO;
        return berth_err_set(err, (int)code, "%s", msg ? msg : "berth-shim failed");
    }
    if (!json_is_true(json_object_get(ready, "ok")))
        return berth_err_set(err, -EPROTO, "berth-shim: malformed readiness line");
    if (ret_ready)
        *ret_ready = TAKE_PTR(ready);
    return 0;
}

int berth__shim_spawn(berth_engine_t *e, const char *id, uint32_t flags, json_t **ret_ready,
                      berth_err_t *err)
{
    berth_shim_pending_t p;
    int r = berth__shim_spawn_pending(e, id, flags, NULL, &p, err);
    return r < 0 ? r : berth__shim_pending_finish(&p, 1, ret_ready, err);
}

int berth__shim_connect(berth_engine_t *e, const char *id, int *ret_fd, berth_err_t *err)
{
    struct sockaddr_un sa;
    char path[PATH_MAX];
    _cleanup_close_ int fd = -1;
    _cleanup_close_ int dirfd = -1;
    int r;

    if ((r = berth__shim_socket_path(e, id, path, sizeof(path), err)) < 0)
        return r;
    if ((r = berth__unix_sockaddr(path, &sa, &dirfd, err)) < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return berth_err_set(err, -errno, "socket: %s", strerror(errno));
    while ((r = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        r = -errno;
        return berth_err_set(err, r, "container %.12s: no monitor at %s: %s", id, path,
                             strerror(-r));
    }
    *ret_fd = fd;
    fd = -1;
    return 0;
}

static int write_all(int fd, const void *buf, size_t len, berth_err_t *err)
{
    const char *p = buf;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return berth_err_set(err, -errno, "write to berth-shim: %s", strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Read exactly @len bytes; 1 when done, 0 at EOF before the first byte, -errno. */
static int read_exact(int fd, void *buf, size_t len, berth_err_t *err)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, p + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return berth_err_set(err, -errno, "read from berth-shim: %s", strerror(errno));
        if (r == 0) {
            if (got == 0)
                return 0;
            return berth_err_set(err, -EPROTO, "berth-shim: truncated frame");
        }
        got += (size_t)r;
    }
    return 1;
}

int berth__shim_send(int fd, json_t *req, berth_err_t *err)
{
    _cleanup_free_ char *text = json_dumps(req, JSON_COMPACT);
    int r;

    if (!text)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (strlen(text) + 1 > BERTH_SHIM_LINE_MAX)
        return berth_err_set(err, -E2BIG, "request larger than %d bytes", BERTH_SHIM_LINE_MAX);
    if ((r = write_all(fd, text, strlen(text), err)) < 0 || (r = write_all(fd, "\n", 1, err)) < 0)
        return r;
    return 0;
}

int berth__shim_receive(int fd, json_t **ret_resp, berth_err_t *err)
{
    _cleanup_free_ char *line = NULL;
    _cleanup_json_ json_t *resp = NULL;
    json_error_t jerr;
    size_t n = 0, cap = 256;
    json_t *msg;

    if (!(line = malloc(cap)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* Byte by byte: in stream mode the frames follow the response directly. */
    for (;;) {
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return berth_err_set(err, -errno, "read from berth-shim: %s", strerror(errno));
        if (got == 0)
            return berth_err_set(err, -ECONNRESET, "berth-shim closed the connection");
        if (c == '\n')
            break;
        if (n + 2 > cap) {
            char *grown;
            if (cap >= BERTH_SHIM_LINE_MAX)
                return berth_err_set(err, -EPROTO, "berth-shim response too long");
            grown = realloc(line, cap * 2);
            if (!grown)
                return berth_err_set(err, -ENOMEM, "out of memory");
            line = grown;
            cap *= 2;
        }
        line[n++] = c;
    }
    line[n] = '\0';
    resp = json_loads(line, 0, &jerr);
    if (!json_is_object(resp))
        return berth_err_set(err, -EPROTO, "berth-shim: malformed response");
    if ((msg = json_object_get(resp, "error"))) {
        json_int_t code = json_integer_value(json_object_get(resp, "code"));
        if (code >= 0 || code < -4095)
            code = -EIO;
        return berth_err_set(err, (int)code, "%s",
                             json_string_value(msg) ? json_string_value(msg) : "error");
    }
    if (ret_resp)
        *ret_resp = TAKE_PTR(resp);
    return 0;
}

int berth__shim_request(int fd, json_t *req, json_t **ret_resp, berth_err_t *err)
{
    int r = berth__shim_send(fd, req, err);
    return r < 0 ? r : berth__shim_receive(fd, ret_resp, err);
}

int berth__frame_write(int fd, uint8_t stream, const void *buf, size_t len, berth_err_t *err)
{
    uint8_t hdr[8] = { stream, 0, 0, 0 };
    int r;

    if (len > UINT32_MAX)
        return berth_err_set(err, -E2BIG, "frame too large");
    hdr[4] = (uint8_t)(len >> 24);
    hdr[5] = (uint8_t)(len >> 16);
    hdr[6] = (uint8_t)(len >> 8);
    hdr[7] = (uint8_t)len;
    if ((r = write_all(fd, hdr, sizeof(hdr), err)) < 0)
        return r;
    return len ? write_all(fd, buf, len, err) : 0;
}

int berth__frame_read(int fd, uint8_t *ret_stream, char **ret_buf, size_t *ret_len,
                      berth_err_t *err)
{
    _cleanup_free_ char *buf = NULL;
    uint8_t hdr[8];
    size_t len;
    int r;

    if ((r = read_exact(fd, hdr, sizeof(hdr), err)) <= 0)
        return r;
    len = (size_t)hdr[4] << 24 | (size_t)hdr[5] << 16 | (size_t)hdr[6] << 8 | hdr[7];
    if (len > BERTH_FRAME_MAX)
        return berth_err_set(err, -EPROTO, "berth-shim: frame of %zu bytes", len);
    if (!(buf = malloc(len + 1)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (len && (r = read_exact(fd, buf, len, err)) <= 0)
        return r == 0 ? berth_err_set(err, -EPROTO, "berth-shim: truncated frame") : r;
    buf[len] = '\0';
    *ret_stream = hdr[0];
    *ret_len = len;
    *ret_buf = TAKE_PTR(buf);
    return 1;
}
