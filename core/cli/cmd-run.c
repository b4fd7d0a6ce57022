/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth run and berth start. run = create + start, attached unless -d: the
 * monitor is started waiting, the CLI attaches, then lets the container run,
 * so no output is lost. The exit status is the container's (125 when berth
 * itself failed, 126/127 when the command can't be run, as with docker).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char run_usage[] =
    "Usage: berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "       berth run [OPTIONS] --rootfs DIR COMMAND [ARG...]\n"
    "\n"
    "Create a container and run it. An image that is not here yet is pulled first.\n"
    "\n"
    "Options:\n";

/*
 * After the exit frame, wait (up to 10 s) for the monitor to close the
 * stream: it does so only once the container is torn down and, with --rm,
 * removed, so `run --rm` returns when the container is gone without polling
 * the store.
 */
static void wait_stream_end(int fd)
{
    const int timeout_ms = 10000;
    char buf[4096];

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || read(fd, buf, sizeof(buf)) <= 0)
            return;
    }
}

/*
 * Start @ref attached; returns the process exit status to use. @waiting: its
 * monitor already waits (berth_container_create_run).
 */
static int start_attached(berth_engine_t *e, const char *ref, int with_stdin, int wait_end,
                          int waiting)
{
    berth_err_t err = { 0 };
    int fd = -1, tty = 0, r, code;

    if (!waiting && (r = berth_container_start(e, ref, BERTH_START_WAIT, &err)) < 0) {
        cli_error("%s", err.msg);
        return cli_start_exit_code(r);
    }
    /* Its monitor waits to start it, whatever the record says (created, or exited for start -a). */
    if ((r = berth_container_attach(e, ref,
                                    (with_stdin ? BERTH_ATTACH_STDIN : 0) | BERTH_ATTACH_WAITING,
                                    &fd, &tty, &err)) < 0) {
        cli_error("%s", err.msg);
        berth_container_kill(e, ref, 9, NULL);
        return 125;
    }
    if ((r = berth_container_start(e, ref, 0, &err)) < 0) {
        cli_error("%s", err.msg);
        close(fd);
        return cli_start_exit_code(r);
    }
    code = cli_attach_pump(e, ref, NULL, fd, tty, with_stdin);
    if (wait_end && code >= 0)
        wait_stream_end(fd);
    close(fd);
    if (code == CLI_DETACHED)
        return CLI_DETACHED;
    if (code < 0) {
        /* The stream broke before the exit frame: the store has the truth. */
        if (berth_container_wait(e, ref, 5000, &code, &err) < 0) {
            cli_error("lost the container's stream: %s", err.msg);
            return 125;
        }
    }
    return code;
}

int cmd_run(const struct cli_globals *g, int argc, char **argv)
{
    struct cli_create c;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    char id[65];
    int r = cli_parse_create(argc, argv, 1, run_usage, &c);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : 125;
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(c.body);
        return 125;
    }
    r = cli_create_container(engine, &c, 1, id);
    json_decref(c.body);
    if (r < 0) {
        /* It exists but its monitor failed (the record says why): --rm holds for it too. */
        if (id[0] && c.auto_remove)
            berth_container_remove(engine, id, BERTH_REMOVE_FORCE, NULL);
        berth_engine_close(engine);
        return id[0] ? cli_start_exit_code(r) : 125;
    }
    if (c.detach) {
        r = berth_container_start(engine, id, 0, &err);
        if (r < 0) {
            cli_error("%s", err.msg);
            /* --rm holds for a container that never ran, too. */
            if (c.auto_remove)
                berth_container_remove(engine, id, BERTH_REMOVE_FORCE, NULL);
            berth_engine_close(engine);
            return cli_start_exit_code(r);
        }
        printf("%s\n", id);
        berth_engine_close(engine);
        return CLI_EXIT_OK;
    }
    r = start_attached(engine, id, c.interactive, c.auto_remove, 1);
    if (r == CLI_DETACHED) {
        berth_engine_close(engine);
        return CLI_EXIT_OK;
    }
    /*
     * --rm: like docker, return once the container is gone. Its monitor
     * removes it after cleaning up (give it a few seconds); one that never
     * ran, or whose monitor is gone, is ours to remove.
     */
    if (c.auto_remove) {
        struct timespec tick = { 0, 2 * 1000000 };
        for (int i = 0; i < 2500; i++) {
            json_t *j = NULL;
            const char *started;
            int never_ran;
            if (berth_container_inspect(engine, id, &j, NULL) == -ENOENT)
                break;
            started = json_string_value(json_object_get(json_object_get(j, "State"), "StartedAt"));
            never_ran = !started || strncmp(started, "0001-", 5) == 0;
            json_decref(j);
            if (never_ran || i == 2499) {
                berth_container_remove(engine, id, BERTH_REMOVE_FORCE, NULL);
                break;
            }
            nanosleep(&tick, NULL);
        }
    }
    berth_engine_close(engine);
    return r;
}

static const char start_usage[] =
    "Usage: berth start [OPTIONS] CONTAINER [CONTAINER...]\n"
    "\n"
    "Start created or stopped containers.\n"
    "\n"
    "Options:\n"
    "  -a, --attach       attach to the output and wait for the exit\n"
    "  -i, --interactive  attach stdin too\n"
    "  -h, --help         show this help\n";

int cmd_start(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "attach", no_argument, NULL, 'a' },
        { "interactive", no_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    int attach = 0, interactive = 0, failed = 0, c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+aih", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            attach = 1;
            break;
        case 'i':
            interactive = 1;
            break;
        case 'h':
            fputs(start_usage, stdout);
            return CLI_EXIT_OK;
        default:
            cli_error("start: bad option '%s' (see 'berth start --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("start: name at least one container (see 'berth start --help')");
        return CLI_EXIT_USAGE;
    }
    if ((attach || interactive) && argc - optind > 1) {
        cli_error("start: you cannot attach to several containers at once");
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    if (attach || interactive) {
        int code = start_attached(engine, argv[optind], interactive, 0, 0);
        berth_engine_close(engine);
        return code == CLI_DETACHED ? CLI_EXIT_OK : code;
    }
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        if (berth_container_start(engine, argv[i], 0, &err) < 0) {
            cli_error("%s", err.msg);
            failed = 1;
            continue;
        }
        printf("%s\n", argv[i]);
    }
    berth_engine_close(engine);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
