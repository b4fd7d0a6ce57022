/* SPDX-License-Identifier: Apache-2.0 */
/* berth images (and image ls): docker's image table, one row per repository tag. */
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth %s [OPTIONS] [REPOSITORY[:TAG]]\n"
    "\n"
    "List images; with REPOSITORY[:TAG] (wildcards allowed) only those it names.\n"
    "\n"
    "Options:\n"
    "  -a, --all        show all images (berth keeps no intermediate ones)\n"
    "  -q, --quiet      only image ids\n"
    "      --no-trunc   don't truncate image ids\n"
    "      --digests    show digests\n"
    "      --format FMT table (default), json, or a template: '{{.Repository}}:{{.Tag}}',\n"
    "                   'table {{.ID}}\\t{{.Size}}' (.ID .Repository .Tag .Digest\n"
    "                   .CreatedSince .CreatedAt .Size)\n"
    "  -h, --help       show this help\n";

/* Newest first, as docker lists them; ids break ties so the order is stable. */
static int by_created(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t cx = json_integer_value(json_object_get(x, "Created"));
    json_int_t cy = json_integer_value(json_object_get(y, "Created"));

    if (cx != cy)
        return cx > cy ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "Id")) ?: "",
                  json_string_value(json_object_get(y, "Id")) ?: "");
}

/* Does "repo:tag" or "repo@digest" @ref match @pattern, by its repository or as a whole? */
static int ref_matches(const char *pattern, const char *ref)
{
    char repo[600];
    const char *tag;
    const char *at = strchr(ref, '@');

    if (at)
        snprintf(repo, sizeof(repo), "%.*s", (int)(at - ref), ref);
    else
        cli_split_repo_tag(ref, repo, sizeof(repo), &tag);
    return fnmatch(pattern, repo, FNM_PATHNAME) == 0 || fnmatch(pattern, ref, FNM_PATHNAME) == 0;
}

/* Keep the names @pattern matches, as docker's reference filter does. */
static json_t *filter_names(json_t *names, const char *pattern)
{
    json_t *out = json_array(), *v;
    size_t i;

    json_array_foreach (names, i, v) {
        const char *s = json_string_value(v);
        if (s && ref_matches(pattern, s))
            json_array_append(out, v);
    }
    return out;
}

/*
 * The images to show, sorted: with a pattern, only those with a matching
 * name, and only their matching names.
 */
static json_t *select_images(json_t *list, const char *pattern)
{
    json_t *out = json_array(), *img;
    json_t **v;
    size_t i, n = json_array_size(list), k = 0;

    v = calloc(n ? n : 1, sizeof(*v));
    if (!out || !v) {
        free(v);
        json_decref(out);
        return NULL;
    }
    json_array_foreach (list, i, img) {
        if (pattern) {
            json_t *tags = filter_names(json_object_get(img, "RepoTags"), pattern);
            json_t *digests = filter_names(json_object_get(img, "RepoDigests"), pattern);
            if (json_array_size(tags) == 0 && json_array_size(digests) == 0) {
                json_decref(tags);
                json_decref(digests);
                continue;
            }
            img = json_copy(img);
            json_object_set_new(img, "RepoTags", tags);
            json_object_set_new(img, "RepoDigests", digests);
        } else {
            json_incref(img);
        }
        v[k++] = img;
    }
    qsort(v, k, sizeof(*v), by_created);
    for (i = 0; i < k; i++)
        json_array_append_new(out, v[i]);
    free(v);
    return out;
}

/* The digests of @repo among "repo@sha256:..." names. */
static json_t *digests_of(json_t *repo_digests, const char *repo)
{
    json_t *out = json_array(), *v;
    size_t i, n = strlen(repo);

    json_array_foreach (repo_digests, i, v) {
        const char *s = json_string_value(v);
        if (s && strncmp(s, repo, n) == 0 && s[n] == '@')
            json_array_append_new(out, json_string(s + n + 1));
    }
    return out;
}

struct row_ctx {
    struct cli_table *t;
    json_t *rows; /* with a --format template: the rows as its fields, not the table */
    int digests, notrunc, quiet;
    const char *id, *created, *created_at, *size;
};

static int add_row(struct row_ctx *c, const char *repo, const char *tag, const char *digest)
{
    char id[80];
    const char *cells[6];
    size_t n = 0;

    snprintf(id, sizeof(id), "%.*s", c->notrunc ? 71 : 12,
             c->notrunc || strncmp(c->id, "sha256:", 7) != 0 ? c->id : c->id + 7);
    if (c->rows)
        return json_array_append_new(
            c->rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", id, "Repository", repo,
                               "Tag", tag, "Digest", digest, "CreatedSince", c->created,
                               "CreatedAt", c->created_at, "Size", c->size));
    if (c->quiet) {
        cells[0] = id;
        return cli_table_add(c->t, cells);
    }
    cells[n++] = repo;
    cells[n++] = tag;
    if (c->digests)
        cells[n++] = digest;
    cells[n++] = id;
    cells[n++] = c->created;
    cells[n++] = c->size;
    return cli_table_add(c->t, cells);
}

/*
 * Docker's rows for one image: one per repository tag (times its digests
 * with --digests), then one per repository known only by digest; an image
 * with neither is "<none> <none>".
 */
static int image_rows(struct row_ctx *c, json_t *img)
{
    json_t *tags = json_object_get(img, "RepoTags"), *rd = json_object_get(img, "RepoDigests");
    json_t *done = json_object(), *v;
    size_t i;
    int r = 0;

    if (json_array_size(tags) == 0 && json_array_size(rd) == 0) {
        json_decref(done);
        return add_row(c, "<none>", "<none>", "<none>");
    }
    json_array_foreach (tags, i, v) {
        char repo[600];
        const char *tag;
        json_t *ds;
        cli_split_repo_tag(json_string_value(v) ?: "", repo, sizeof(repo), &tag);
        json_object_set_new(done, repo, json_true());
        ds = c->digests ? digests_of(rd, repo) : json_array();
        if (json_array_size(ds) == 0) {
            r |= add_row(c, repo, tag, "<none>");
        } else {
            size_t k;
            json_t *d;
            json_array_foreach (ds, k, d)
                r |= add_row(c, repo, tag, json_string_value(d));
        }
        json_decref(ds);
    }
    json_array_foreach (rd, i, v) {
        const char *s = json_string_value(v) ?: "", *at = strchr(s, '@');
        char repo[600];
        snprintf(repo, sizeof(repo), "%.*s", at ? (int)(at - s) : (int)strlen(s), s);
        /* A tagged repository's digests were shown with its tags. */
        if (json_object_get(done, repo))
            continue;
        /* Without --digests, one row per repository; with it, one per digest. */
        if (!c->digests)
            json_object_set_new(done, repo, json_true());
        r |= add_row(c, repo, "<none>", c->digests && at ? at + 1 : "<none>");
    }
    json_decref(done);
    return r;
}

int cmd_images(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_NO_TRUNC = 256, OPT_DIGESTS, OPT_FORMAT };
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },
        { "quiet", no_argument, NULL, 'q' },
        { "no-trunc", no_argument, NULL, OPT_NO_TRUNC },
        { "digests", no_argument, NULL, OPT_DIGESTS },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    const char *tmpl = NULL;
    struct cli_table t;
    struct row_ctx rc = { 0 };
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *list = NULL, *shown, *img;
    const char *pattern = NULL;
    int c, r;
    size_t i;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+aqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            break; /* every image berth has is a top-level one */
        case 'q':
            rc.quiet = 1;
            break;
        case OPT_NO_TRUNC:
            rc.notrunc = 1;
            break;
        case OPT_DIGESTS:
            rc.digests = 1;
            break;
        case OPT_FORMAT:
            if ((r = cli_format_template(argv[0], optarg)) < 0)
                return CLI_EXIT_USAGE;
            if (r)
                tmpl = optarg;
            else if (cli_parse_format(argv[0], optarg, &fmt) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            printf(usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, optopt == OPT_FORMAT ? "--format" : NULL);
        }
    }
    if (argc - optind > 1) {
        cli_error("%s: at most one REPOSITORY[:TAG] (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (optind < argc)
        pattern = argv[optind];
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_image_list(engine, 0, &list, &err);
    berth_engine_close(engine);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    shown = select_images(list, pattern);
    json_decref(list);
    if (!shown) {
        cli_error("%s: out of memory", argv[0]);
        return CLI_EXIT_FAIL;
    }
    if (fmt == CLI_FORMAT_JSON) {
        r = cli_print_json(shown);
        json_decref(shown);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    cli_table_init(&t, rc.quiet ? 1 : rc.digests ? 6 : 5);
    rc.t = &t;
    if (tmpl && !rc.quiet)
        rc.rows = json_array();
    if (!rc.quiet && !rc.rows) {
        static const char *const head[] = { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE" };
        static const char *const head_d[] = { "REPOSITORY", "TAG",     "DIGEST",
                                              "IMAGE ID",   "CREATED", "SIZE" };
        r = cli_table_add(&t, rc.digests ? head_d : head);
    }
    json_array_foreach (shown, i, img) {
        char created[64], created_at[64], size[32];
        time_t when = (time_t)json_integer_value(json_object_get(img, "Created"));
        struct tm tm;
        cli_created_since(json_integer_value(json_object_get(img, "Created")), (int64_t)time(NULL),
                          created, sizeof(created));
        localtime_r(&when, &tm);
        strftime(created_at, sizeof(created_at), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
        rc.created_at = created_at;
        cli_human_size(json_integer_value(json_object_get(img, "Size")), 3, size, sizeof(size));
        rc.id = json_string_value(json_object_get(img, "Id")) ?: "";
        rc.created = created;
        rc.size = size;
        r |= image_rows(&rc, img);
    }
    json_decref(shown);
    if (r < 0) {
        cli_table_release(&t);
        json_decref(rc.rows);
        cli_error("%s: out of memory", argv[0]);
        return CLI_EXIT_FAIL;
    }
    if (rc.rows) {
        json_t *header =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", "IMAGE ID", "Repository",
                      "REPOSITORY", "Tag", "TAG", "Digest", "DIGEST", "CreatedSince", "CREATED",
                      "CreatedAt", "CREATED AT", "Size", "SIZE");
        r = header ? cli_print_rows(argv[0], tmpl, header, rc.rows) : -1;
        json_decref(header);
        json_decref(rc.rows);
        cli_table_release(&t);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    cli_table_print(&t, stdout);
    cli_table_release(&t);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
