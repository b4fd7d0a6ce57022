/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth inspect: containers or images as JSON, in the shape of docker
 * inspect. As docker does, a name is looked up among containers first,
 * then among images, unless --type says which.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth inspect [OPTIONS] NAME|ID [NAME|ID...]\n"
    "\n"
    "Show containers or images as a JSON array, in the shape docker inspect uses.\n"
    "A name is looked up among containers first, then among images.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  a template for each (docker's: {{.State.Pid}},\n"
    "                       {{json .Config}}, {{range .Mounts}}...{{end}}), or json\n"
    "      --type TYPE      only look for this type: container or image\n"
    "  -h, --help           show this help\n";

enum { TYPE_ANY, TYPE_CONTAINER, TYPE_IMAGE };

int cmd_inspect(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_TYPE = 256 };
    static const struct option longopts[] = {
        { "type", required_argument, NULL, OPT_TYPE },
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    int type = TYPE_ANY, failed = 0, c, r;
    const char *format = NULL;
    json_t *out;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case OPT_TYPE:
            if (strcmp(optarg, "container") == 0) {
                type = TYPE_CONTAINER;
            } else if (strcmp(optarg, "image") == 0) {
                type = TYPE_IMAGE;
            } else {
                cli_error("inspect: unknown type '%s' (use container or image)", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        default:
            if (optopt == OPT_TYPE || optopt == 'f')
                cli_error("inspect: %s needs a value (see 'berth inspect --help')",
                          optopt == 'f' ? "--format" : "--type");
            else
                cli_error("inspect: bad option '%s' (see 'berth inspect --help')",
                          argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("inspect: name at least one container or image (see 'berth inspect --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_check_inspect_format("inspect", format) < 0)
        return CLI_EXIT_USAGE;
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    out = json_array();
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        json_t *j = NULL;

        r = -ENOENT;
        if (type != TYPE_IMAGE)
            r = berth_container_inspect(engine, argv[i], &j, &err);
        if (r == -ENOENT && type != TYPE_CONTAINER) {
            /* Not a container: perhaps an image. Its error is the one to show then. */
            memset(&err, 0, sizeof(err));
            r = berth_image_inspect(engine, argv[i], &j, &err);
            /* A container name need not be a valid image reference: not found either. */
            if (r == -EINVAL && type == TYPE_ANY)
                r = -ENOENT;
        }
        if (r == -ENOENT && type == TYPE_ANY) {
            cli_error("no such container: %s (nor image)", argv[i]);
            failed = 1;
            continue;
        }
        if (r < 0) {
            cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
            failed = 1;
            continue;
        }
        json_array_append_new(out, j);
    }
    berth_engine_close(engine);
    /* Like docker: what was found is printed even when something wasn't. */
    r = cli_print_inspect("inspect", out, format);
    json_decref(out);
    return failed || r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
