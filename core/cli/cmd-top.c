/* SPDX-License-Identifier: Apache-2.0 */
/* berth top: the processes running in a container. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char usage[] = "Usage: berth top CONTAINER\n"
                            "\n"
                            "List the processes running in a container.\n"
                            "\n"
                            "Options:\n"
                            "  -h, --help  show this help\n";

int cmd_top(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *j = NULL, *row;
    size_t i;
    int r = cli_parse_simple_args(argc, argv, usage);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (optind != argc - 1) {
        cli_error("top: name exactly one container (see 'berth top --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_container_top(engine, argv[optind], &j, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    printf("%-8s %-8s %-8s %s\n", "UID", "PID", "PPID", "CMD");
    json_array_foreach (json_object_get(j, "Processes"), i, row) {
        printf("%-8s %-8s %-8s %s\n", json_string_value(json_array_get(row, 0)),
               json_string_value(json_array_get(row, 1)), json_string_value(json_array_get(row, 2)),
               json_string_value(json_array_get(row, 3)));
    }
    json_decref(j);
    return CLI_EXIT_OK;
}
