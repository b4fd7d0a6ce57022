/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `volume` command group as docker has it: create, ls, inspect, rm and
 * prune, over berth_volume_*() (berth/engine.h). Output follows the docker
 * CLI's, so scripts written for one work with the other.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char create_usage[] =
    "Usage: berth %s [OPTIONS] [NAME]\n"
    "\n"
    "Create a volume (local driver) and print its name; without NAME, a generated\n"
    "one. A volume that exists already is left as it is.\n"
    "\n"
    "Options:\n"
    "  -l, --label KEY=VALUE  set a label\n"
    "  -h, --help             show this help\n";

static const char ls_usage[] =
    "Usage: berth %s [OPTIONS]\n"
    "\n"
    "List volumes.\n"
    "\n"
    "Options:\n"
    "  -q, --quiet          only print the names\n"
    "  -f, --filter K=V     dangling=true|false, name=PART, label=KEY[=VALUE], driver=local\n"
    "      --format FMT     table (default) or json\n"
    "  -h, --help           show this help\n";

static const char inspect_usage[] =
    "Usage: berth volume inspect [OPTIONS] NAME [NAME...]\n"
    "\n"
    "Show volumes as a JSON array, in the shape docker uses.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  a template for each ({{.Mountpoint}}), or json\n"
    "  -h, --help           show this help\n";

static const char rm_usage[] = "Usage: berth %s [OPTIONS] NAME [NAME...]\n"
                               "\n"
                               "Remove volumes and their data. A volume a container uses (even a\n"
                               "stopped one) is refused.\n"
                               "\n"
                               "Options:\n"
                               "  -f, --force  remove even volumes in use\n"
                               "  -h, --help   show this help\n";

static const char prune_usage[] =
    "Usage: berth %s [OPTIONS]\n"
    "\n"
    "Remove the anonymous volumes no container uses, or with -a every unused\n"
    "volume.\n"
    "\n"
    "Options:\n"
    "  -a, --all          remove named volumes too, not just anonymous ones\n"
    "      --filter K=V   label=KEY[=VALUE] or label!=KEY[=VALUE]\n"
    "  -f, --force        don't ask for confirmation\n"
    "  -h, --help         show this help\n";

/* K=V as Docker's filter object {"K": {"V": true}}. */
static int add_filter(json_t *filters, const char *cmd, const char *text)
{
    const char *eq = strchr(text, '=');
    char key[64];
    json_t *vals;

    if (!eq || eq == text || (size_t)(eq - text) >= sizeof(key)) {
        cli_error("%s: bad filter '%s': want KEY=VALUE", cmd, text);
        return -1;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - text), text);
    /* "label!=x" arrives as key "label!" */
    vals = json_object_get(filters, key);
    if (!vals) {
        vals = json_object();
        json_object_set_new(filters, key, vals);
    }
    json_object_set_new(vals, eq + 1, json_true());
    return 0;
}

static int fail(const berth_err_t *err, int r)
{
    cli_error("%s", err->msg[0] ? err->msg : strerror(-r));
    return CLI_EXIT_FAIL;
}

static int cmd_volume_create(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "label", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    json_t *body = json_object(), *labels = json_object(), *out = NULL;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    int c, r;

    json_object_set_new(body, "Labels", labels);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': {
            const char *eq = strchr(optarg, '=');
            char *key = eq ? strndup(optarg, (size_t)(eq - optarg)) : strdup(optarg);
            json_object_set_new(labels, key, json_string(eq ? eq + 1 : ""));
            free(key);
            break;
        }
        case 'h':
            printf(create_usage, argv[0]);
            json_decref(body);
            return CLI_EXIT_OK;
        default:
            json_decref(body);
            return cli_bad_option(argv, optind, optopt == 'l' ? "--label" : NULL);
        }
    }
    if (argc - optind > 1) {
        cli_error("%s: at most one name (see 'berth %s --help')", argv[0], argv[0]);
        json_decref(body);
        return CLI_EXIT_USAGE;
    }
    if (optind < argc)
        json_object_set_new(body, "Name", json_string(argv[optind]));
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(body);
        return CLI_EXIT_FAIL;
    }
    r = berth_volume_create(engine, body, &out, &err);
    berth_engine_close(engine);
    json_decref(body);
    if (r < 0)
        return fail(&err, r);
    printf("%s\n", json_string_value(json_object_get(out, "Name")));
    json_decref(out);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int cmd_volume_ls(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FORMAT = 256 };
    static const struct option longopts[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "filter", required_argument, NULL, 'f' },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    json_t *filters = json_object(), *list = NULL, *v;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    struct cli_table t;
    int quiet = 0, c, r;
    size_t i;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+qf:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = 1;
            break;
        case 'f':
            if (add_filter(filters, argv[0], optarg) < 0) {
                json_decref(filters);
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_FORMAT:
            if (cli_parse_format(argv[0], optarg, &fmt) < 0) {
                json_decref(filters);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            printf(ls_usage, argv[0]);
            json_decref(filters);
            return CLI_EXIT_OK;
        default:
            json_decref(filters);
            return cli_bad_option(argv, optind,
                                  optopt == 'f'          ? "--filter"
                                  : optopt == OPT_FORMAT ? "--format"
                                                         : NULL);
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s' (see 'berth %s --help')", argv[0], argv[optind],
                  argv[0]);
        json_decref(filters);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(filters);
        return CLI_EXIT_FAIL;
    }
    r = berth_volume_list(engine, filters, &list, &err);
    berth_engine_close(engine);
    json_decref(filters);
    if (r < 0)
        return fail(&err, r);
    if (fmt == CLI_FORMAT_JSON) {
        r = cli_print_json(list);
        json_decref(list);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (quiet) {
        json_array_foreach (list, i, v)
            printf("%s\n", json_string_value(json_object_get(v, "Name")));
        json_decref(list);
        return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    cli_table_init(&t, 2);
    {
        static const char *const head[] = { "DRIVER", "VOLUME NAME" };
        r |= cli_table_add(&t, head);
    }
    json_array_foreach (list, i, v) {
        const char *row[] = { json_string_value(json_object_get(v, "Driver")) ?: "",
                              json_string_value(json_object_get(v, "Name")) ?: "" };
        r |= cli_table_add(&t, row);
    }
    if (r == 0)
        cli_table_print(&t, stdout);
    cli_table_release(&t);
    json_decref(list);
    if (r < 0) {
        cli_error("%s: out of memory", argv[0]);
        return CLI_EXIT_FAIL;
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int cmd_volume_inspect(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    json_t *all = json_array();
    const char *format;
    int failed = 0, r;

    if ((r = cli_parse_inspect_args(argc, argv, inspect_usage, &format)) != 0) {
        json_decref(all);
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    if (optind >= argc) {
        cli_error("%s: name at least one volume (see 'berth %s --help')", argv[0], argv[0]);
        json_decref(all);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(all);
        return CLI_EXIT_FAIL;
    }
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        json_t *v = NULL;
        if ((r = berth_volume_inspect(engine, argv[i], &v, &err)) < 0) {
            fail(&err, r);
            failed = 1;
            continue;
        }
        json_array_append_new(all, v);
    }
    berth_engine_close(engine);
    r = cli_print_inspect(argv[0], all, format);
    json_decref(all);
    return failed || r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int cmd_volume_rm(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    uint32_t flags = 0;
    int failed = 0, c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            flags |= BERTH_VOLUME_RM_FORCE;
            break;
        case 'h':
            printf(rm_usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, NULL);
        }
    }
    if (optind >= argc) {
        cli_error("%s: name at least one volume (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        int r = berth_volume_remove(engine, argv[i], flags, &err);
        if (r < 0) {
            fail(&err, r);
            failed = 1;
            continue;
        }
        printf("%s\n", argv[i]);
    }
    berth_engine_close(engine);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int cmd_volume_prune(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FILTER = 256 };
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },
        { "force", no_argument, NULL, 'f' },
        { "filter", required_argument, NULL, OPT_FILTER },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    json_t *filters = json_object(), *report = NULL, *v;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    int all = 0, force = 0, c, r;
    char space[32];
    size_t i;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+afh", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = 1;
            break;
        case 'f':
            force = 1;
            break;
        case OPT_FILTER:
            if (add_filter(filters, argv[0], optarg) < 0) {
                json_decref(filters);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            printf(prune_usage, argv[0]);
            json_decref(filters);
            return CLI_EXIT_OK;
        default:
            json_decref(filters);
            return cli_bad_option(argv, optind, optopt == OPT_FILTER ? "--filter" : NULL);
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s' (see 'berth %s --help')", argv[0], argv[optind],
                  argv[0]);
        json_decref(filters);
        return CLI_EXIT_USAGE;
    }
    if (all)
        json_object_set_new(filters, "all", json_pack("{s:b}", "true", 1));
    if (!force && !cli_confirm(all ? "WARNING! This will remove all local volumes not used by at "
                                     "least one container."
                                   : "WARNING! This will remove anonymous local volumes not used "
                                     "by at least one container.")) {
        json_decref(filters);
        return CLI_EXIT_OK;
    }
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(filters);
        return CLI_EXIT_FAIL;
    }
    r = berth_volume_prune(engine, filters, &report, &err);
    berth_engine_close(engine);
    json_decref(filters);
    if (r < 0)
        return fail(&err, r);
    if (json_array_size(json_object_get(report, "VolumesDeleted")) > 0) {
        printf("Deleted Volumes:\n");
        json_array_foreach (json_object_get(report, "VolumesDeleted"), i, v)
            printf("%s\n", json_string_value(v));
        putchar('\n');
    }
    cli_human_size(json_integer_value(json_object_get(report, "SpaceReclaimed")), 4, space,
                   sizeof(space));
    printf("Total reclaimed space: %s\n", space);
    json_decref(report);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static const struct {
    const char *name, *alias;
    cli_cmd_fn fn;
    const char *summary;
} volume_cmds[] = {
    { "create", NULL, cmd_volume_create, "Create a volume" },
    { "inspect", NULL, cmd_volume_inspect, "Show volumes in detail (JSON)" },
    { "ls", "list", cmd_volume_ls, "List volumes" },
    { "prune", NULL, cmd_volume_prune, "Remove unused volumes" },
    { "rm", "remove", cmd_volume_rm, "Remove volumes" },
};

int cmd_volume(const struct cli_globals *g, int argc, char **argv)
{
    char name[64];
    size_t n = sizeof(volume_cmds) / sizeof(volume_cmds[0]);

    if (argc < 2) {
        cli_error("volume: name a command (see 'berth volume --help')");
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        printf("Usage: berth volume COMMAND [ARG...]\n\nManage volumes.\n\nCommands:\n");
        for (size_t i = 0; i < n; i++)
            printf("  %-8s %s\n", volume_cmds[i].name, volume_cmds[i].summary);
        printf("\nRun 'berth volume COMMAND --help' for more about a command.\n");
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], volume_cmds[i].name) != 0 &&
            !(volume_cmds[i].alias && strcmp(argv[1], volume_cmds[i].alias) == 0))
            continue;
        /* argv[1] becomes "volume NAME", so messages name the command in full. */
        snprintf(name, sizeof(name), "volume %s", volume_cmds[i].name);
        argv[1] = name;
        return volume_cmds[i].fn(g, argc - 1, argv + 1);
    }
    cli_error("volume: unknown command '%s' (see 'berth volume --help')", argv[1]);
    return CLI_EXIT_USAGE;
}
