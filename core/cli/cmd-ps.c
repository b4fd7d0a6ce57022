/* SPDX-License-Identifier: Apache-2.0 */
/* berth ps: list containers, Docker's columns. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] = "Usage: berth ps [OPTIONS]\n"
                            "\n"
                            "List containers (running ones unless --all).\n"
                            "\n"
                            "Options:\n"
                            "  -a, --all            show all containers\n"
                            "  -q, --quiet          only ids\n"
                            "      --no-trunc       don't truncate ids and commands\n"
                            "  -f, --format FORMAT  table (default) or json\n"
                            "  -h, --help           show this help\n";

int cmd_ps(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },      { "quiet", no_argument, NULL, 'q' },
        { "no-trunc", no_argument, NULL, 'T' }, { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },     { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    int all = 0, quiet = 0, notrunc = 0, c, r;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *list = NULL, *item;
    size_t i, image_w = strlen("IMAGE"), ports_w = strlen("PORTS");

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+aqf:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'T':
            notrunc = 1;
            break;
        case 'f':
            if (cli_parse_format("ps", optarg, &fmt) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        default:
            cli_error("ps: bad option '%s' (see 'berth ps --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("ps: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    /* The detail (image, ports) costs a second look at each listed record only. */
    r = berth_container_list(engine, (all ? BERTH_LIST_ALL : 0) | (quiet ? 0 : BERTH_LIST_DETAIL),
                             &list, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("ps: %s", err.msg);
        return CLI_EXIT_FAIL;
    }
    if (fmt == CLI_FORMAT_JSON) {
        r = cli_print_json(list);
        json_decref(list);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    /* IMAGE and PORTS vary most: as wide as their longest entry, like docker's table. */
    json_array_foreach (list, i, item) {
        char ports[512];
        size_t n = strlen(json_string_value(json_object_get(item, "Image")) ?: "");

        image_w = n > image_w ? n : image_w;
        if (cli_ports_column(json_object_get(item, "Ports"), ports, sizeof(ports)) == 0)
            ports_w = strlen(ports) > ports_w ? strlen(ports) : ports_w;
    }
    if (!quiet)
        printf("%-12s   %-*s   %-22s   %-24s   %-24s   %-10s   %-*s   %s\n", "CONTAINER ID",
               (int)image_w, "IMAGE", "COMMAND", "CREATED", "STATUS", "ISOLATION", (int)ports_w,
               "PORTS", "NAMES");
    json_array_foreach (list, i, item) {
        const char *id = json_string_value(json_object_get(item, "Id"));
        const char *cmd = json_string_value(json_object_get(item, "Command"));
        const char *name = json_string_value(json_array_get(json_object_get(item, "Names"), 0));
        const char *image = json_string_value(json_object_get(item, "Image"));
        char created[64], quoted[64], ports[512];
        long long age =
            (long long)time(NULL) - (long long)json_integer_value(json_object_get(item, "Created"));

        if (quiet) {
            printf("%.*s\n", notrunc ? 64 : 12, id);
            continue;
        }
        berth_human_duration(age * 1000000000ll, created, sizeof(created));
        strncat(created, " ago", sizeof(created) - strlen(created) - 1);
        if (notrunc || strlen(cmd) <= 20)
            snprintf(quoted, sizeof(quoted), "\"%s\"", cmd);
        else
            snprintf(quoted, sizeof(quoted), "\"%.19s…\"", cmd);
        if (cli_ports_column(json_object_get(item, "Ports"), ports, sizeof(ports)) < 0)
            ports[0] = '\0';
        printf("%-12.*s   %-*s   %-22s   %-24s   %-24s   %-10s   %-*s   %s\n", notrunc ? 64 : 12,
               id, (int)image_w, image ? image : "", quoted, created,
               json_string_value(json_object_get(item, "Status")),
               json_string_value(json_object_get(item, "Isolation")), (int)ports_w, ports,
               name ? name + 1 : "");
    }
    json_decref(list);
    return CLI_EXIT_OK;
}
