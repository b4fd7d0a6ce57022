/* SPDX-License-Identifier: Apache-2.0 */
/* berth rm: remove containers. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char usage[] = "Usage: berth rm [OPTIONS] CONTAINER [CONTAINER...]\n"
                            "\n"
                            "Remove containers and their logs.\n"
                            "\n"
                            "Options:\n"
                            "  -f, --force    kill running containers first\n"
                            "  -v, --volumes  also remove their anonymous volumes\n"
                            "  -h, --help     show this help\n";

int cmd_rm(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "force", no_argument, NULL, 'f' },
        { "volumes", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    uint32_t flags = 0;
    int failed = 0, c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+fvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            flags |= BERTH_REMOVE_FORCE;
            break;
        case 'v':
            flags |= BERTH_REMOVE_VOLUMES;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        default:
            cli_error("rm: bad option '%s' (see 'berth rm --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("rm: name at least one container (see 'berth rm --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        if (berth_container_remove(engine, argv[i], flags, &err) < 0) {
            cli_error("%s", err.msg);
            failed = 1;
            continue;
        }
        printf("%s\n", argv[i]);
    }
    berth_engine_close(engine);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
