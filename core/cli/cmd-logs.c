/* SPDX-License-Identifier: Apache-2.0 */
/* berth logs: a container's output, from its json-file logs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth logs [OPTIONS] CONTAINER\n"
    "\n"
    "Print a container's output (stdout to stdout, stderr to stderr).\n"
    "\n"
    "Options:\n"
    "  -f, --follow      keep printing new output until the container stops\n"
    "  -n, --tail N      only the last N lines (default: all)\n"
    "  -t, --timestamps  prefix each line with its time\n"
    "  -h, --help        show this help\n";

struct out {
    int timestamps;
};

static int print_line(void *userdata, int stream, int64_t time_ns, const char *data, size_t len)
{
    const struct out *o = userdata;
    FILE *f = stream == 2 ? stderr : stdout;

    if (o->timestamps) {
        char ts[64];
        berth_format_time(time_ns, ts, sizeof(ts));
        fprintf(f, "%s ", ts);
    }
    fwrite(data, 1, len, f);
    /* Followers see lines as they come, not when a buffer fills. */
    fflush(f);
    return 0;
}

int cmd_logs(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "follow", no_argument, NULL, 'f' },
        { "tail", required_argument, NULL, 'n' },
        { "timestamps", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    struct out o = { 0 };
    uint32_t flags = 0;
    long long tail = -1;
    int c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+fn:th", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'f':
            flags |= BERTH_LOGS_FOLLOW;
            break;
        case 'n':
            if (strcmp(optarg, "all") == 0)
                break;
            tail = strtoll(optarg, &end, 10);
            if (end == optarg || *end || tail < 0) {
                cli_error("logs: invalid --tail value '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 't':
            o.timestamps = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        default:
            cli_error("logs: bad option '%s' (see 'berth logs --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        cli_error("logs: name exactly one container (see 'berth logs --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_container_logs(engine, argv[optind], flags, tail, print_line, &o, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
