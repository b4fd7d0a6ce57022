/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth port CONTAINER [PORT]: the host addresses a container's ports are
 * published on, as `docker port` prints them, read from the container's
 * inspect (NetworkSettings.Ports), so ephemeral ports the engine chose show
 * up as they were bound.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth port CONTAINER [PORT[/PROTO]]\n"
    "\n"
    "List a container's published ports (\"80/tcp -> 0.0.0.0:32768\"), or the host\n"
    "addresses of one port.\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help\n";

int cmd_port(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *insp = NULL;
    char msg[256];
    int r;

    if ((r = cli_parse_simple_args(argc, argv, usage)) != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (optind >= argc) {
        cli_error("port: name a container (see 'berth port --help')");
        return CLI_EXIT_USAGE;
    }
    if (argc - optind > 2) {
        cli_error("port: unexpected argument '%s' (see 'berth port --help')", argv[optind + 2]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_container_inspect(engine, argv[optind], &insp, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    r = cli_port_print(json_object_get(json_object_get(insp, "NetworkSettings"), "Ports"),
                       optind + 1 < argc ? argv[optind + 1] : NULL, stdout, msg, sizeof(msg));
    json_decref(insp);
    if (r < 0) {
        cli_error("%s for %s", msg, argv[optind]);
        return CLI_EXIT_FAIL;
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
