/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `image` and `system` command groups, as docker has them: `image ls`
 * and friends reach the same code as `images`, `rmi` and the rest; `image
 * inspect`, `image prune` and `system df` live here.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct subcommand {
    const char *name;
    const char *alias;
    cli_cmd_fn fn;
    const char *summary;
};

static const struct subcommand image_cmds[] = {
    { "history", NULL, cmd_history, "Show the history of an image" },
    { "inspect", NULL, cmd_image_inspect, "Show images in detail (JSON)" },
    { "load", NULL, cmd_load, "Load images from a tar archive or an OCI layout" },
    { "ls", "list", cmd_images, "List images" },
    { "prune", NULL, cmd_image_prune, "Remove unused images" },
    { "pull", NULL, cmd_pull, "Download an image from a registry" },
    { "rm", "remove", cmd_rmi, "Remove images" },
    { "save", NULL, cmd_save, "Save images to a tar archive" },
    { "tag", NULL, cmd_tag, "Give an image another name" },
};

static const struct subcommand system_cmds[] = {
    { "df", NULL, cmd_system_df, "Show disk usage" },
};

static void group_usage(FILE *out, const char *group, const char *what,
                        const struct subcommand *cmds, size_t n)
{
    fprintf(out,
            "Usage: berth %s COMMAND [ARG...]\n"
            "\n"
            "%s\n"
            "\n"
            "Commands:\n",
            group, what);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(out, "\nRun 'berth %s COMMAND --help' for more about a command.\n", group);
}

/* Run the subcommand argv[1] with argv[0] "<group> <name>", so its messages name it in full. */
static int dispatch(const struct cli_globals *g, int argc, char **argv, const char *what,
                    const struct subcommand *cmds, size_t n)
{
    const char *group = argv[0];

    if (argc < 2) {
        cli_error("%s: name a command (see 'berth %s --help')", group, group);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        group_usage(stdout, group, what, cmds, n);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0 ||
            (cmds[i].alias && strcmp(argv[1], cmds[i].alias) == 0)) {
            char name[64];
            char **sub = malloc((size_t)argc * sizeof(*sub));
            int r;
            if (!sub) {
                cli_error("out of memory");
                return CLI_EXIT_FAIL;
            }
            snprintf(name, sizeof(name), "%s %s", group, cmds[i].name);
            sub[0] = name;
            memcpy(sub + 1, argv + 2, (size_t)(argc - 2) * sizeof(*sub));
            sub[argc - 1] = NULL;
            r = cmds[i].fn(g, argc - 1, sub);
            free(sub);
            return r;
        }
    }
    cli_error("%s: unknown command '%s' (see 'berth %s --help')", group, argv[1], group);
    return CLI_EXIT_USAGE;
}

int cmd_image(const struct cli_globals *g, int argc, char **argv)
{
    return dispatch(g, argc, argv, "Manage images.", image_cmds,
                    sizeof(image_cmds) / sizeof(image_cmds[0]));
}

int cmd_system(const struct cli_globals *g, int argc, char **argv)
{
    return dispatch(g, argc, argv, "Manage berth.", system_cmds,
                    sizeof(system_cmds) / sizeof(system_cmds[0]));
}

/* ---- image inspect ---- */

static const char inspect_usage[] =
    "Usage: berth %s [OPTIONS] IMAGE [IMAGE...]\n"
    "\n"
    "Show images as a JSON array, in the shape docker inspect uses.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  a template for each ({{.Id}}, {{json .Config.Env}}), or json\n"
    "  -h, --help           show this help\n";

int cmd_image_inspect(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    const char *format = NULL;
    json_t *out;
    int failed = 0, c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (cli_check_inspect_format(argv[0], optarg) < 0)
                return CLI_EXIT_USAGE;
            format = optarg;
            break;
        case 'h':
            printf(inspect_usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, optopt == 'f' ? "--format" : NULL);
        }
    }
    if (optind >= argc) {
        cli_error("%s: name at least one image (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    out = json_array();
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        json_t *j = NULL;
        if ((r = berth_image_inspect(engine, argv[i], &j, &err)) < 0) {
            cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
            failed = 1;
            continue;
        }
        json_array_append_new(out, j);
    }
    berth_engine_close(engine);
    /* Like docker: what was found is printed even when something wasn't. */
    r = cli_print_inspect(argv[0], out, format);
    json_decref(out);
    return failed || r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- image prune ---- */

static const char prune_usage[] =
    "Usage: berth %s [OPTIONS]\n"
    "\n"
    "Remove dangling images (those without a tag), or with -a every image no\n"
    "container uses, and the layers and blobs nothing needs any more.\n"
    "\n"
    "Options:\n"
    "  -a, --all    remove all unused images, not just dangling ones\n"
    "  -f, --force  don't ask for confirmation\n"
    "  -h, --help   show this help\n";

int cli_confirm(const char *warning)
{
    char line[64];
    const char *p;

    printf("%s\nAre you sure you want to continue? [y/N] ", warning);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        line[0] = '\0';
    /* A terminal echoes the answer and its newline; off one, end the prompt's line. */
    if (!isatty(STDIN_FILENO))
        putchar('\n');
    for (p = line; *p == ' ' || *p == '\t'; p++)
        ;
    return (p[0] == 'y' || p[0] == 'Y') && strspn(p + 1, " \t\r\n") == strlen(p + 1);
}

int cmd_image_prune(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *report = NULL, *deleted, *item;
    char space[32];
    int all = 0, force = 0, c, r;
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
        case 'h':
            printf(prune_usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, NULL);
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s' (see 'berth %s --help')", argv[0], argv[optind],
                  argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (!force && !cli_confirm(all ? "WARNING! This will remove all images without at least one "
                                     "container associated to them."
                                   : "WARNING! This will remove all dangling images."))
        return CLI_EXIT_OK;
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_image_prune(engine, all ? BERTH_IMAGE_PRUNE_ALL : 0, &report, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    deleted = json_object_get(report, "ImagesDeleted");
    if (json_array_size(deleted) > 0) {
        printf("Deleted Images:\n");
        json_array_foreach (deleted, i, item) {
            const char *what;
            if ((what = json_string_value(json_object_get(item, "Untagged"))))
                printf("untagged: %s\n", what);
            else if ((what = json_string_value(json_object_get(item, "Deleted"))))
                printf("deleted: %s\n", what);
        }
        putchar('\n');
    }
    cli_human_size(json_integer_value(json_object_get(report, "SpaceReclaimed")), 4, space,
                   sizeof(space));
    printf("Total reclaimed space: %s\n", space);
    json_decref(report);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ---- system df ---- */

static const char df_usage[] = "Usage: berth %s [OPTIONS]\n"
                               "\n"
                               "Show the disk space images, containers and volumes use.\n"
                               "\n"
                               "Options:\n"
                               "  -v, --verbose     list every image and container\n"
                               "      --format FMT  table (default) or json\n"
                               "  -h, --help        show this help\n";

/* docker's RECLAIMABLE cell: "1.2MB (40%)" when there is a total to compare with. */
static void reclaimable(int64_t part, int64_t total, char *buf, size_t len)
{
    char s[32];
    cli_human_size(part, 4, s, sizeof(s));
    if (total > 0)
        snprintf(buf, len, "%s (%d%%)", s, (int)(part * 100 / total));
    else
        snprintf(buf, len, "%s", s);
}

static int df_summary(json_t *df)
{
    json_t *images = json_object_get(df, "Images"), *ctrs = json_object_get(df, "Containers");
    int64_t layers = json_integer_value(json_object_get(df, "LayersSize")), used = 0;
    int64_t ctr_size = 0, ctr_idle = 0;
    char csize_s[32], crec_s[64];
    size_t nimg = json_array_size(images), nctr = json_array_size(ctrs), active = 0, running = 0;
    char total_s[32], rec_s[64], n1[32], n2[32], n3[32], n4[32], n5[32], n6[32];
    struct cli_table t;
    json_t *v;
    size_t i;
    int r = 0;

    json_array_foreach (images, i, v) {
        if (json_integer_value(json_object_get(v, "Containers")) > 0) {
            active++;
            used += json_integer_value(json_object_get(v, "Size"));
        }
    }
    json_array_foreach (ctrs, i, v) {
        const char *st = json_string_value(json_object_get(v, "State")) ?: "";
        int up = strcmp(st, "running") == 0 || strcmp(st, "paused") == 0;
        int64_t rw = json_integer_value(json_object_get(v, "SizeRw"));
        running += up;
        ctr_size += rw;
        if (!up)
            ctr_idle += rw;
    }
    cli_table_init(&t, 5);
    {
        static const char *const head[] = { "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE" };
        r |= cli_table_add(&t, head);
    }
    cli_human_size(layers, 4, total_s, sizeof(total_s));
    reclaimable(layers - used > 0 ? layers - used : 0, layers, rec_s, sizeof(rec_s));
    snprintf(n1, sizeof(n1), "%zu", nimg);
    snprintf(n2, sizeof(n2), "%zu", active);
    {
        const char *row[] = { "Images", n1, n2, total_s, rec_s };
        r |= cli_table_add(&t, row);
    }
    /* Containers: their writable layers; reclaimable is what stopped ones hold. */
    snprintf(n3, sizeof(n3), "%zu", nctr);
    snprintf(n4, sizeof(n4), "%zu", running);
    cli_human_size(ctr_size, 4, csize_s, sizeof(csize_s));
    reclaimable(ctr_idle, ctr_size, crec_s, sizeof(crec_s));
    {
        const char *row[] = { "Containers", n3, n4, csize_s, crec_s };
        r |= cli_table_add(&t, row);
    }
    snprintf(n5, sizeof(n5), "%zu", json_array_size(json_object_get(df, "Volumes")));
    snprintf(n6, sizeof(n6), "%zu", json_array_size(json_object_get(df, "BuildCache")));
    {
        /* Volumes: reclaimable is what the ones no container uses hold. */
        int64_t vsize = 0, vidle = 0;
        size_t vactive = 0;
        char vs[32], vr[64], va[32];
        json_array_foreach (json_object_get(df, "Volumes"), i, v) {
            json_t *u = json_object_get(v, "UsageData");
            int64_t sz = json_integer_value(json_object_get(u, "Size"));
            vsize += sz;
            if (json_integer_value(json_object_get(u, "RefCount")) > 0)
                vactive++;
            else
                vidle += sz;
        }
        cli_human_size(vsize, 4, vs, sizeof(vs));
        reclaimable(vidle, vsize, vr, sizeof(vr));
        snprintf(va, sizeof(va), "%zu", vactive);
        const char *vol[] = { "Local Volumes", n5, va, vs, vr };
        const char *bc[] = { "Build Cache", n6, "0", "0B", "0B" };
        r |= cli_table_add(&t, vol);
        r |= cli_table_add(&t, bc);
    }
    if (r == 0)
        cli_table_print(&t, stdout);
    cli_table_release(&t);
    return r;
}

static int df_verbose(json_t *df)
{
    int64_t now = (int64_t)time(NULL);
    struct cli_table t;
    json_t *v;
    size_t i;
    int r = 0;

    printf("Images space usage:\n\n");
    cli_table_init(&t, 6);
    {
        static const char *const head[] = { "REPOSITORY", "TAG",  "IMAGE ID",
                                            "CREATED",    "SIZE", "CONTAINERS" };
        r |= cli_table_add(&t, head);
    }
    json_array_foreach (json_object_get(df, "Images"), i, v) {
        const char *id = json_string_value(json_object_get(v, "Id")) ?: "";
        json_t *tags = json_object_get(v, "RepoTags");
        char created[64], size[32], nctr[32], repo[600], shown[16];
        const char *tag = "<none>";
        snprintf(shown, sizeof(shown), "%.12s", strncmp(id, "sha256:", 7) == 0 ? id + 7 : id);
        if (json_array_size(tags) > 0)
            cli_split_repo_tag(json_string_value(json_array_get(tags, 0)) ?: "", repo, sizeof(repo),
                               &tag);
        else
            snprintf(repo, sizeof(repo), "<none>");
        cli_created_since(json_integer_value(json_object_get(v, "Created")), now, created,
                          sizeof(created));
        cli_human_size(json_integer_value(json_object_get(v, "Size")), 4, size, sizeof(size));
        snprintf(nctr, sizeof(nctr), "%lld",
                 (long long)json_integer_value(json_object_get(v, "Containers")));
        const char *row[] = { repo, tag, shown, created, size, nctr };
        r |= cli_table_add(&t, row);
    }
    if (r == 0)
        cli_table_print(&t, stdout);
    cli_table_release(&t);

    printf("\nContainers space usage:\n\n");
    cli_table_init(&t, 5);
    {
        static const char *const head[] = { "CONTAINER ID", "COMMAND", "CREATED", "STATUS",
                                            "NAMES" };
        r |= cli_table_add(&t, head);
    }
    json_array_foreach (json_object_get(df, "Containers"), i, v) {
        const char *id = json_string_value(json_object_get(v, "Id")) ?: "";
        const char *name = json_string_value(json_array_get(json_object_get(v, "Names"), 0));
        char shown[16], created[64], cmd[256], cut[128];
        snprintf(shown, sizeof(shown), "%.12s", id);
        snprintf(cmd, sizeof(cmd), "\"%s\"",
                 json_string_value(json_object_get(v, "Command")) ?: "");
        cli_created_since(json_integer_value(json_object_get(v, "Created")), now, created,
                          sizeof(created));
        const char *row[] = { shown, cli_ellipsis(cmd, 20, cut, sizeof(cut)), created,
                              json_string_value(json_object_get(v, "Status")) ?: "",
                              name && *name == '/' ? name + 1
                              : name               ? name
                                                   : "" };
        r |= cli_table_add(&t, row);
    }
    if (r == 0)
        cli_table_print(&t, stdout);
    cli_table_release(&t);

    printf("\nLocal Volumes space usage:\n\n");
    cli_table_init(&t, 3);
    {
        static const char *const head[] = { "VOLUME NAME", "LINKS", "SIZE" };
        r |= cli_table_add(&t, head);
    }
    json_array_foreach (json_object_get(df, "Volumes"), i, v) {
        json_t *u = json_object_get(v, "UsageData");
        char links[32], size[32];
        snprintf(links, sizeof(links), "%lld",
                 (long long)json_integer_value(json_object_get(u, "RefCount")));
        cli_human_size(json_integer_value(json_object_get(u, "Size")), 3, size, sizeof(size));
        const char *row[] = { json_string_value(json_object_get(v, "Name")) ?: "", links, size };
        r |= cli_table_add(&t, row);
    }
    if (r == 0)
        cli_table_print(&t, stdout);
    cli_table_release(&t);
    printf("\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   "
           "USAGE     SHARED\n");
    return r;
}

int cmd_system_df(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FORMAT = 256 };
    static const struct option longopts[] = {
        { "verbose", no_argument, NULL, 'v' },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *df = NULL;
    int verbose = 0, c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'v':
            verbose = 1;
            break;
        case OPT_FORMAT:
            if (cli_parse_format(argv[0], optarg, &fmt) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            printf(df_usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, optopt == OPT_FORMAT ? "--format" : NULL);
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s' (see 'berth %s --help')", argv[0], argv[optind],
                  argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_system_df(engine, &df, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    if (fmt == CLI_FORMAT_JSON) {
        r = cli_print_json(df);
        json_decref(df);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    r = verbose ? df_verbose(df) : df_summary(df);
    json_decref(df);
    if (r < 0) {
        cli_error("%s: out of memory", argv[0]);
        return CLI_EXIT_FAIL;
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
