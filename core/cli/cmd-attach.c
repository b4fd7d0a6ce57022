/* SPDX-License-Identifier: Apache-2.0 */
/* berth attach: connect the terminal to a running container again. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth attach [OPTIONS] CONTAINER\n"
    "\n"
    "Attach to a running container's output (and input, when it keeps stdin open).\n"
    "Detach with ctrl-p ctrl-q when it has a terminal; it keeps running.\n"
    "\n"
    "Options:\n"
    "      --no-stdin  do not send input\n"
    "  -h, --help      show this help\n";

int cmd_attach(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "no-stdin", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *info = NULL;
    int no_stdin = 0, fd = -1, tty = 0, with_stdin, c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == 'n') {
            no_stdin = 1;
        } else if (c == 'h') {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        } else {
            cli_error("attach: bad option '%s' (see 'berth attach --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        cli_error("attach: name exactly one container (see 'berth attach --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    if ((r = berth_container_inspect(engine, argv[optind], &info, &err)) < 0) {
        cli_error("%s", err.msg);
        berth_engine_close(engine);
        return CLI_EXIT_FAIL;
    }
    /* Input only goes to a container that keeps its stdin open (-i). */
    with_stdin =
        !no_stdin && json_is_true(json_object_get(json_object_get(info, "Config"), "OpenStdin"));
    json_decref(info);
    if ((r = berth_container_attach(engine, argv[optind], with_stdin ? BERTH_ATTACH_STDIN : 0, &fd,
                                    &tty, &err)) < 0) {
        cli_error("%s", err.msg);
        berth_engine_close(engine);
        return CLI_EXIT_FAIL;
    }
    r = cli_attach_pump(engine, argv[optind], NULL, fd, tty, with_stdin);
    close(fd);
    berth_engine_close(engine);
    if (r == CLI_DETACHED)
        return CLI_EXIT_OK;
    return r < 0 ? CLI_EXIT_FAIL : r;
}
