/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth stop, kill, wait, pause, unpause: one operation over each named
 * container, each reported on its own; the exit status says whether any
 * failed. They differ only in options and in the engine call.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct control {
    const char *name;
    const char *usage;
    const char *optstring;
    const struct option *longopts;
};

static const struct option time_opts[] = {
    { "time", required_argument, NULL, 't' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};
static const struct option signal_opts[] = {
    { "signal", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};
static const struct option help_opts[] = {
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int run_control(const struct cli_globals *g, int argc, char **argv,
                       const struct control *ctl)
{
    berth_engine_t *engine = NULL;
    int timeout = -1, sig = 9, failed = 0, c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ctl->optstring, ctl->longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 't':
            timeout = (int)strtol(optarg, &end, 10);
            if (end == optarg || *end || timeout < -1) {
                cli_error("%s: invalid --time value '%s'", ctl->name, optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 's':
            sig = berth_parse_signal(optarg);
            if (sig < 0) {
                cli_error("%s: invalid signal '%s'", ctl->name, optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(ctl->usage, stdout);
            return CLI_EXIT_OK;
        default:
            cli_error("%s: bad option '%s' (see 'berth %s --help')", ctl->name, argv[optind - 1],
                      ctl->name);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("%s: name at least one container (see 'berth %s --help')", ctl->name, ctl->name);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        int r, code = 0;
        if (strcmp(ctl->name, "stop") == 0)
            r = berth_container_stop(engine, argv[i], timeout, &err);
        else if (strcmp(ctl->name, "kill") == 0)
            r = berth_container_kill(engine, argv[i], sig, &err);
        else if (strcmp(ctl->name, "wait") == 0)
            r = berth_container_wait(engine, argv[i], -1, &code, &err);
        else if (strcmp(ctl->name, "pause") == 0)
            r = berth_container_pause(engine, argv[i], &err);
        else
            r = berth_container_unpause(engine, argv[i], &err);
        if (r < 0) {
            cli_error("%s", err.msg);
            failed = 1;
            continue;
        }
        if (strcmp(ctl->name, "wait") == 0)
            printf("%d\n", code);
        else
            printf("%s\n", argv[i]);
    }
    berth_engine_close(engine);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cmd_stop(const struct cli_globals *g, int argc, char **argv)
{
    static const struct control ctl = {
        "stop",
        "Usage: berth stop [OPTIONS] CONTAINER [CONTAINER...]\n\n"
        "Stop containers: their stop signal, then SIGKILL after the timeout.\n\n"
        "Options:\n"
        "  -t, --time SECS  seconds to wait before SIGKILL (default: the container's, 10)\n"
        "  -h, --help       show this help\n",
        "+t:h",
        time_opts,
    };
    return run_control(g, argc, argv, &ctl);
}

int cmd_kill(const struct cli_globals *g, int argc, char **argv)
{
    static const struct control ctl = {
        "kill",
        "Usage: berth kill [OPTIONS] CONTAINER [CONTAINER...]\n\n"
        "Send a signal to containers' processes.\n\n"
        "Options:\n"
        "  -s, --signal SIG  signal name or number (default KILL)\n"
        "  -h, --help        show this help\n",
        "+s:h",
        signal_opts,
    };
    return run_control(g, argc, argv, &ctl);
}

int cmd_wait(const struct cli_globals *g, int argc, char **argv)
{
    static const struct control ctl = {
        "wait",
        "Usage: berth wait CONTAINER [CONTAINER...]\n\n"
        "Wait until containers stop, then print their exit codes.\n\n"
        "Options:\n"
        "  -h, --help  show this help\n",
        "+h",
        help_opts,
    };
    return run_control(g, argc, argv, &ctl);
}

int cmd_pause(const struct cli_globals *g, int argc, char **argv)
{
    static const struct control ctl = {
        "pause",
        "Usage: berth pause CONTAINER [CONTAINER...]\n\n"
        "Freeze every process of containers.\n\n"
        "Options:\n"
        "  -h, --help  show this help\n",
        "+h",
        help_opts,
    };
    return run_control(g, argc, argv, &ctl);
}

int cmd_unpause(const struct cli_globals *g, int argc, char **argv)
{
    static const struct control ctl = {
        "unpause",
        "Usage: berth unpause CONTAINER [CONTAINER...]\n\n"
        "Thaw paused containers.\n\n"
        "Options:\n"
        "  -h, --help  show this help\n",
        "+h",
        help_opts,
    };
    return run_control(g, argc, argv, &ctl);
}
