/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Moving bytes between the terminal and an attach or exec stream: stdin to
 * the container, frames back to stdout/stderr, the local terminal in raw
 * mode with its size followed, and (without a terminal) the signals the
 * CLI receives forwarded to the container, as docker's --sig-proxy does.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Whether the detach sequence ctrl-p ctrl-q completes in @buf; @state
 * carries a ctrl-p seen at the end of the previous read.
 */
static int detach_seen(const char *buf, size_t len, int *state)
{
    for (size_t i = 0; i < len; i++) {
        if (*state && buf[i] == 0x11)
            return 1;
        *state = buf[i] == 0x10;
    }
    return 0;
}

static void send_size(berth_engine_t *e, const char *ref, const char *exec_id)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        berth_container_resize(e, ref, exec_id, ws.ws_col, ws.ws_row, NULL);
}

int cli_attach_pump(berth_engine_t *e, const char *ref, const char *exec_id, int fd, int tty,
                    int with_stdin)
{
    struct termios saved, raw;
    int raw_mode = 0, exit_code = -1, stdin_open = with_stdin, sfd, detach_state = 0;
    sigset_t mask, old;

    /* Signals arrive as reads on a descriptor, so the loop below sees them in order. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGWINCH);
    if (!tty) {
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGQUIT);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGUSR2);
    }
    sigprocmask(SIG_BLOCK, &mask, &old);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
        raw = saved;
        cfmakeraw(&raw);
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            raw_mode = 1;
        send_size(e, ref, exec_id);
    }

    for (;;) {
        struct pollfd p[3] = {
            { .fd = fd, .events = POLLIN },
            { .fd = sfd, .events = POLLIN },
            { .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGWINCH)
                    send_size(e, ref, exec_id);
                else if (!exec_id)
                    berth_container_kill(e, ref, (int)si.ssi_signo, NULL);
            }
        }
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[32768];
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n > 0 && tty && detach_seen(buf, (size_t)n, &detach_state)) {
                /* Docker's detach keys (ctrl-p ctrl-q): leave it running. */
                exit_code = CLI_DETACHED;
                break;
            }
            if (n > 0) {
                if (write_all(fd, buf, (size_t)n) < 0)
                    stdin_open = 0;
            } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                /* End of our input: the container's stdin closes too. */
                shutdown(fd, SHUT_WR);
                stdin_open = 0;
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char *buf = NULL;
            size_t len = 0;
            int stream = 0;
            int r = berth_stream_read(fd, &stream, &buf, &len, NULL);
            if (r <= 0) {
                free(buf);
                break;
            }
            if (stream == 3) {
                json_t *j = json_loads(buf, 0, NULL);
                exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
                json_decref(j);
                free(buf);
                break;
            }
            write_all(stream == 2 ? STDERR_FILENO : STDOUT_FILENO, buf, len);
            free(buf);
        }
    }
    if (raw_mode)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    if (sfd >= 0)
        close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return exit_code;
}

int cli_start_exit_code(int r)
{
    /* Docker's convention: 127 no such command, 126 can't execute, 125 the engine failed. */
    return r == -ENOENT ? 127 : r == -EACCES ? 126 : 125;
}
