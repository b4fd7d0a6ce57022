/* SPDX-License-Identifier: Apache-2.0 */
/* berth inspect: containers as JSON, in the shape of docker inspect. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char usage[] = "Usage: berth inspect CONTAINER [CONTAINER...]\n"
                            "\n"
                            "Show containers as a JSON array, in the shape docker inspect uses.\n"
                            "\n"
                            "Options:\n"
                            "  -h, --help  show this help\n";

int cmd_inspect(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    json_t *out;
    int failed = 0, r = cli_parse_simple_args(argc, argv, usage);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (optind >= argc) {
        cli_error("inspect: name at least one container (see 'berth inspect --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    out = json_array();
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        json_t *j = NULL;
        if (berth_container_inspect(engine, argv[i], &j, &err) < 0) {
            cli_error("%s", err.msg);
            failed = 1;
            continue;
        }
        json_array_append_new(out, j);
    }
    berth_engine_close(engine);
    /* Like docker: what was found is printed even when something wasn't. */
    r = cli_print_json(out);
    json_decref(out);
    return failed || r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
