/* SPDX-License-Identifier: Apache-2.0 */
/* berth ps: list containers, Docker's columns. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth ps [OPTIONS]\n"
    "\n"
    "List containers (running ones unless --all).\n"
    "\n"
    "Options:\n"
    "  -a, --all            show all containers\n"
    "  -q, --quiet          only ids\n"
    "      --no-trunc       don't truncate ids and commands\n"
    "  -f, --format FORMAT  table (default), json, or a template:\n"
    "                       '{{.Names}} {{.Status}}', 'table {{.ID}}\\t{{.Image}}'\n"
    "                       (.ID .Image .Command .CreatedAt .RunningFor .Ports\n"
    "                       .State .Status .Names .Labels .Mounts .Networks\n"
    "                       .Isolation)\n"
    "  -h, --help           show this help\n";

/* The column titles of docker's ps template fields (its "table" header). */
static json_t *ps_header(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID",
                     "CONTAINER ID", "Image", "IMAGE", "Command", "COMMAND", "CreatedAt",
                     "CREATED AT", "RunningFor", "CREATED", "Ports", "PORTS", "State", "STATE",
                     "Status", "STATUS", "Size", "SIZE", "Names", "NAMES", "Labels", "LABELS",
                     "Mounts", "MOUNTS", "Networks", "NETWORKS", "Isolation", "ISOLATION");
}

/* @parts joined by ','. */
static void join_into(char *buf, size_t len, const char *const *parts, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", parts[i]);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The CREATED, COMMAND and PORTS cells of @item, as docker's table shows them. */
static void ps_cells(json_t *item, int notrunc, char since[64], char quoted[128], char ports[512])
{
    const char *cmd = json_string_value(json_object_get(item, "Command")) ?: "";
    long long age =
        (long long)time(NULL) - (long long)json_integer_value(json_object_get(item, "Created"));

    berth_human_duration(age * 1000000000ll, since, 64);
    strncat(since, " ago", 64 - strlen(since) - 1);
    if (notrunc || strlen(cmd) <= 20)
        snprintf(quoted, 128, "\"%s\"", cmd);
    else
        snprintf(quoted, 128, "\"%.19s…\"", cmd);
    if (cli_ports_column(json_object_get(item, "Ports"), ports, 512) < 0)
        ports[0] = '\0';
}

/* One container as docker's ps template sees it: strings, as its table shows them. */
static json_t *ps_row(json_t *item, int notrunc)
{
    const char *id = json_string_value(json_object_get(item, "Id")) ?: "";
    json_t *names = json_object_get(item, "Names"), *labels = json_object_get(item, "Labels");
    json_t *mounts = json_object_get(item, "Mounts"), *v;
    json_t *nets = json_object_get(json_object_get(item, "NetworkSettings"), "Networks");
    const char *parts[64], *key;
    char created_at[64], since[64], quoted[128], ports[512], names_s[512], labels_s[1024],
        mounts_s[1024], nets_s[512], kv[64][128];
    time_t created = (time_t)json_integer_value(json_object_get(item, "Created"));
    struct tm tm;
    size_t n = 0, i;

    localtime_r(&created, &tm);
    strftime(created_at, sizeof(created_at), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
    ps_cells(item, notrunc, since, quoted, ports);
    json_array_foreach (names, i, v)
        if (n < 64 && json_string_value(v))
            parts[n++] = json_string_value(v) + (json_string_value(v)[0] == '/');
    join_into(names_s, sizeof(names_s), parts, n);
    n = 0;
    json_object_foreach (labels, key, v)
        if (n < 64) {
            snprintf(kv[n], sizeof(kv[n]), "%s=%s", key, json_string_value(v) ?: "");
            parts[n] = kv[n];
            n++;
        }
    qsort(parts, n, sizeof(*parts), cmp_str);
    join_into(labels_s, sizeof(labels_s), parts, n);
    n = 0;
    json_array_foreach (mounts, i, v)
        if (n < 64)
            parts[n++] = json_string_value(json_object_get(v, "Name"))
                             ?: json_string_value(json_object_get(v, "Source")) ?: "";
    join_into(mounts_s, sizeof(mounts_s), parts, n);
    n = 0;
    json_object_foreach (nets, key, v)
        if (n < 64)
            parts[n++] = key;
    qsort(parts, n, sizeof(*parts), cmp_str);
    join_into(nets_s, sizeof(nets_s), parts, n);
#define STR(k) (json_string_value(json_object_get(item, k)) ?: "")
    return json_pack("{s:s%, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                     "ID", id, (size_t)(notrunc ? strlen(id) : strnlen(id, 12)), "Image",
                     STR("Image"), "Command", quoted, "CreatedAt", created_at, "RunningFor", since,
                     "Ports", ports, "State", STR("State"), "Status", STR("Status"), "Size", "",
                     "Names", names_s, "Labels", labels_s, "Mounts", mounts_s, "Networks", nets_s,
                     "Isolation", STR("Isolation"));
#undef STR
}

int cmd_ps(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },      { "quiet", no_argument, NULL, 'q' },
        { "no-trunc", no_argument, NULL, 'T' }, { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },     { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    const char *tmpl = NULL;
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
            if ((r = cli_format_template("ps", optarg)) < 0)
                return CLI_EXIT_USAGE;
            if (r)
                tmpl = optarg;
            else if (cli_parse_format("ps", optarg, &fmt) < 0)
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
    if (tmpl && !quiet) {
        json_t *rows = json_array(), *header = ps_header();
        json_array_foreach (list, i, item)
            json_array_append_new(rows, ps_row(item, notrunc));
        r = rows && header ? cli_print_rows("ps", tmpl, header, rows) : -1;
        json_decref(rows);
        json_decref(header);
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
        const char *name = json_string_value(json_array_get(json_object_get(item, "Names"), 0));
        const char *image = json_string_value(json_object_get(item, "Image"));
        char created[64], quoted[128], ports[512];

        if (quiet) {
            printf("%.*s\n", notrunc ? 64 : 12, id);
            continue;
        }
        ps_cells(item, notrunc, created, quoted, ports);
        printf("%-12.*s   %-*s   %-22s   %-24s   %-24s   %-10s   %-*s   %s\n", notrunc ? 64 : 12,
               id, (int)image_w, image ? image : "", quoted, created,
               json_string_value(json_object_get(item, "Status")),
               json_string_value(json_object_get(item, "Isolation")), (int)ports_w, ports,
               name ? name + 1 : "");
    }
    json_decref(list);
    return CLI_EXIT_OK;
}
