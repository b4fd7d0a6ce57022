/* SPDX-License-Identifier: Apache-2.0 */
/* berth tag: give an image another name. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] = "Usage: berth %s SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n"
                            "\n"
                            "Name the image SOURCE_IMAGE refers to TARGET_IMAGE too.\n"
                            "\n"
                            "Options:\n"
                            "  -h, --help  show this help\n";

int cmd_tag(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    char help[512];
    int r;

    snprintf(help, sizeof(help), usage, argv[0]);
    r = cli_parse_simple_args(argc, argv, help);
    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (argc - optind != 2) {
        cli_error("%s: name a source and a target image (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_image_tag(engine, argv[optind], argv[optind + 1], &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
