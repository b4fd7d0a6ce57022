/* SPDX-License-Identifier: Apache-2.0 */
/* berth exec: run another process in a running container. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] = "Usage: berth exec [OPTIONS] CONTAINER COMMAND [ARG...]\n"
                            "\n"
                            "Run a command in a running container; exits with its status.\n"
                            "\n"
                            "Options:\n"
                            "  -d, --detach             run in the background\n"
                            "  -i, --interactive        keep stdin open\n"
                            "  -t, --tty                allocate a terminal\n"
                            "  -e, --env NAME=VALUE     set an environment variable\n"
                            "  -w, --workdir DIR        working directory\n"
                            "  -u, --user USER[:GROUP]  user and group\n"
                            "  -h, --help               show this help\n";

int cmd_exec(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "detach", no_argument, NULL, 'd' },        { "interactive", no_argument, NULL, 'i' },
        { "tty", no_argument, NULL, 't' },           { "env", required_argument, NULL, 'e' },
        { "workdir", required_argument, NULL, 'w' }, { "user", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
    };
    json_t *opts = json_pack("{s:[], s:[]}", "Cmd", "Env"), *info = NULL;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    char exec_id[65];
    int detach = 0, interactive = 0, tty = 0, fd = -1, c, r;

    if (cli_args_utf8(argc, argv) < 0) {
        json_decref(opts);
        return CLI_EXIT_USAGE;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+dite:w:u:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            detach = 1;
            break;
        case 'i':
            interactive = 1;
            break;
        case 't':
            tty = 1;
            break;
        case 'e':
            json_array_append_new(json_object_get(opts, "Env"), json_string(optarg));
            break;
        case 'w':
            json_object_set_new(opts, "WorkingDir", json_string(optarg));
            break;
        case 'u':
            json_object_set_new(opts, "User", json_string(optarg));
            break;
        case 'h':
            fputs(usage, stdout);
            json_decref(opts);
            return CLI_EXIT_OK;
        default:
            cli_error("exec: bad option '%s' (see 'berth exec --help')", argv[optind - 1]);
            json_decref(opts);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind < 2) {
        cli_error("exec: name a container and a command (see 'berth exec --help')");
        json_decref(opts);
        return CLI_EXIT_USAGE;
    }
    for (int i = optind + 1; i < argc; i++)
        json_array_append_new(json_object_get(opts, "Cmd"), json_string(argv[i]));
    json_object_set_new(opts, "Tty", json_boolean(tty));
    json_object_set_new(opts, "AttachStdin", json_boolean(interactive));
    json_object_set_new(opts, "Detach", json_boolean(detach));
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0) {
        json_decref(opts);
        return 125;
    }
    /* Settle the container first, so -ENOENT below can only mean the command. */
    if ((r = berth_container_inspect(engine, argv[optind], &info, &err)) < 0) {
        cli_error("%s", err.msg);
        json_decref(opts);
        berth_engine_close(engine);
        return CLI_EXIT_FAIL;
    }
    json_decref(info);
    r = berth_container_exec(engine, argv[optind], opts, exec_id, detach ? NULL : &fd, &err);
    json_decref(opts);
    if (r < 0) {
        cli_error("%s", err.msg);
        berth_engine_close(engine);
        /* docker: 126/127 when the command can't run, 1 when the engine refused. */
        return r == -ENOENT ? 127 : r == -EACCES ? 126 : CLI_EXIT_FAIL;
    }
    if (detach) {
        berth_engine_close(engine);
        return CLI_EXIT_OK;
    }
    r = cli_attach_pump(engine, argv[optind], exec_id, fd, tty, interactive);
    close(fd);
    berth_engine_close(engine);
    if (r == CLI_DETACHED)
        return CLI_EXIT_OK;
    if (r < 0) {
        cli_error("exec: the stream ended before the process did");
        return 125;
    }
    return r;
}
