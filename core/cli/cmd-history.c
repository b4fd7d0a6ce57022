/* SPDX-License-Identifier: Apache-2.0 */
/* berth history (and image history): the steps that built an image, newest first. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] = "Usage: berth %s [OPTIONS] IMAGE\n"
                            "\n"
                            "Show the history of an image: what made each layer, newest first.\n"
                            "\n"
                            "Options:\n"
                            "  -q, --quiet       only ids\n"
                            "      --no-trunc    don't truncate ids and commands\n"
                            "      --format FMT  table (default) or json\n"
                            "  -h, --help        show this help\n";

/* Docker shows a step's command on one line, tabs and newlines turned to blanks. */
static void one_line(const char *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s);
    for (char *p = buf; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r')
            *p = ' ';
}

int cmd_history(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_NO_TRUNC = 256, OPT_FORMAT };
    static const struct option longopts[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "no-trunc", no_argument, NULL, OPT_NO_TRUNC },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    struct cli_table t;
    json_t *list = NULL, *h;
    int quiet = 0, notrunc = 0, c, r = 0;
    size_t i;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = 1;
            break;
        case OPT_NO_TRUNC:
            notrunc = 1;
            break;
        case OPT_FORMAT:
            if (cli_parse_format(argv[0], optarg, &fmt) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            printf(usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, optopt == OPT_FORMAT ? "--format" : NULL);
        }
    }
    if (argc - optind != 1) {
        cli_error("%s: name exactly one image (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_image_history(engine, argv[optind], &list, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    if (fmt == CLI_FORMAT_JSON) {
        r = cli_print_json(list);
        json_decref(list);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    cli_table_init(&t, quiet ? 1 : 5);
    if (!quiet) {
        static const char *const head[] = { "IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT" };
        r = cli_table_add(&t, head);
    }
    json_array_foreach (list, i, h) {
        const char *id = json_string_value(json_object_get(h, "Id")) ?: "<missing>";
        char shown_id[80], created[64], by[4096], cut[256], size[32];
        const char *cells[5];

        /* "<missing>": a step of a base image whose own id is unknown here. */
        snprintf(shown_id, sizeof(shown_id), "%.*s", notrunc ? 71 : 12,
                 notrunc || strncmp(id, "sha256:", 7) != 0 ? id : id + 7);
        if (strcmp(id, "<missing>") == 0)
            snprintf(shown_id, sizeof(shown_id), "<missing>");
        cli_created_since(json_integer_value(json_object_get(h, "Created")), (int64_t)time(NULL),
                          created, sizeof(created));
        one_line(json_string_value(json_object_get(h, "CreatedBy")) ?: "", by, sizeof(by));
        cli_human_size(json_integer_value(json_object_get(h, "Size")), 3, size, sizeof(size));
        cells[0] = shown_id;
        cells[1] = created;
        cells[2] = notrunc ? by : cli_ellipsis(by, 45, cut, sizeof(cut));
        cells[3] = size;
        cells[4] = json_string_value(json_object_get(h, "Comment")) ?: "";
        r |= cli_table_add(&t, cells);
    }
    json_decref(list);
    if (r < 0) {
        cli_table_release(&t);
        cli_error("%s: out of memory", argv[0]);
        return CLI_EXIT_FAIL;
    }
    cli_table_print(&t, stdout);
    cli_table_release(&t);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
