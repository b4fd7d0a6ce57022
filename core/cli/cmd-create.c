/* SPDX-License-Identifier: Apache-2.0 */
/* berth create: make a container without starting it; prints its id. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth create [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "       berth create [OPTIONS] --rootfs DIR COMMAND [ARG...]\n"
    "\n"
    "Create a container (state \"created\") and print its id. An image that is not\n"
    "here yet is pulled first.\n"
    "\n"
    "Options:\n";

int cmd_create(const struct cli_globals *g, int argc, char **argv)
{
    struct cli_create c;
    berth_engine_t *engine = NULL;
    char id[65];
    int r = cli_parse_create(argc, argv, 0, usage, &c);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(c.body);
        return CLI_EXIT_FAIL;
    }
    r = cli_create_container(engine, &c, 0, id);
    json_decref(c.body);
    berth_engine_close(engine);
    if (r < 0)
        return CLI_EXIT_FAIL;
    printf("%s\n", id);
    return CLI_EXIT_OK;
}
