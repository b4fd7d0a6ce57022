/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli-template.h"
#include "cli.h"

void cli_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One line, whatever a driver's message held. */
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    fprintf(stderr, "berth: %s\n", msg);
}

static const char *level_tag(uint32_t level)
{
    switch (level) {
    case BERTH_LOG_ERR:
        return "error";
    case BERTH_LOG_WARNING:
        return "warning";
    case BERTH_LOG_NOTICE:
        return "notice";
    case BERTH_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* Driver and engine log lines reach stderr only at warning and above, unless --debug. */
static void cli_log(void *userdata, uint32_t level, const char *source, const char *msg)
{
    const struct cli_globals *g = userdata;
    if (level <= BERTH_LOG_WARNING || g->debug)
        fprintf(stderr, "berth: %s: %s: %s\n", level_tag(level), source, msg);
}

int cli_open_engine(const struct cli_globals *g, uint32_t flags, berth_engine_t **ret_engine)
{
    berth_engine_opts_t opts = {
        .struct_size = sizeof(opts),
        .flags = flags,
        .config_path = g->config,
        .root = g->root,
        .runroot = g->runroot,
        .log = cli_log,
        .log_userdata = (void *)g,
    };
    berth_err_t err = { 0 };
    int r = berth_engine_open(&opts, ret_engine, &err);

    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return r;
    }
    return 0;
}

int cli_parse_format(const char *cmd, const char *value, enum cli_format *ret)
{
    if (strcmp(value, "json") == 0) {
        *ret = CLI_FORMAT_JSON;
    } else if (strcmp(value, "text") == 0 || strcmp(value, "table") == 0) {
        *ret = CLI_FORMAT_TEXT;
    } else {
        cli_error("%s: unknown format '%s' (use text or json)", cmd, value);
        return -1;
    }
    return 0;
}

int cli_print_json(json_t *j)
{
    if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
        return -1;
    fputc('\n', stdout);
    return fflush(stdout) == 0 ? 0 : -1;
}

int cli_parse_simple(int argc, char **argv, const char *usage, int with_format,
                     enum cli_format *ret_format)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    if (ret_format)
        *ret_format = CLI_FORMAT_TEXT;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, with_format ? "+hf:" : "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'f':
            if (!with_format)
                goto unknown;
            if (cli_parse_format(argv[0], optarg, ret_format) < 0)
                return -1;
            break;
        default:
        unknown:
            if (optopt && optopt != 'f')
                cli_error("%s: unknown option '-%c' (see 'berth %s --help')", argv[0], optopt,
                          argv[0]);
            else if (optopt == 'f')
                cli_error("%s: --format needs a value (see 'berth %s --help')", argv[0], argv[0]);
            else
                cli_error("%s: unknown option '%s' (see 'berth %s --help')", argv[0],
                          argv[optind - 1], argv[0]);
            return -1;
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s' (see 'berth %s --help')", argv[0], argv[optind],
                  argv[0]);
        return -1;
    }
    return 0;
}

int cli_parse_simple_args(int argc, char **argv, const char *usage)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        }
        cli_bad_option(argv, optind, NULL);
        return -1;
    }
    return 0;
}

int cli_check_inspect_format(const char *cmd, const char *format)
{
    char err[512];

    if (!format || !strcmp(format, "json") || cli_template_check(format, err, sizeof(err)) == 0)
        return 0;
    cli_error("%s: %s", cmd, err);
    return -1;
}

int cli_parse_inspect_args(int argc, char **argv, const char *usage, const char **ret_format)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *ret_format = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            *ret_format = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            cli_bad_option(argv, optind, optopt == 'f' ? "--format" : NULL);
            return -1;
        }
    }
    return cli_check_inspect_format(argv[0], *ret_format);
}

int cli_print_inspect(const char *cmd, json_t *arr, const char *format)
{
    char err[512];
    size_t i;
    json_t *e;

    if (!format || !strcmp(format, "json"))
        return cli_print_json(arr);
    json_array_foreach (arr, i, e) {
        char *text = cli_template_render(format, e, err, sizeof(err));
        if (!text) {
            cli_error("%s: %s", cmd, err);
            return -1;
        }
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
    return fflush(stdout) == 0 ? 0 : -1;
}

int cli_format_template(const char *cmd, const char *format)
{
    const char *t = format;
    char err[512];

    if (!strcmp(format, "json") || !strcmp(format, "table") || !strcmp(format, "text"))
        return 0;
    if (!strncmp(t, "table ", 6))
        t += 6;
    if (cli_template_check(t, err, sizeof(err)) < 0) {
        cli_error("%s: %s", cmd, err);
        return -1;
    }
    return 1;
}

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += ((unsigned char)s[i] & 0xC0) != 0x80;
    return w;
}

/*
 * What docker's list formatters run: @format without "table ", trimmed of
 * spaces, its written \t and \n made a tab and a newline (a shell's
 * '...\t...' passes them as two characters).
 */
static char *list_template(const char *format)
{
    const char *t = !strncmp(format, "table ", 6) ? format + 6 : format;
    char *out = malloc(strlen(t) + 1), *o = out;

    if (!out)
        return NULL;
    while (*t == ' ')
        t++;
    for (; *t; t++) {
        if (t[0] == '\\' && (t[1] == 't' || t[1] == 'n')) {
            *o++ = t[1] == 't' ? '\t' : '\n';
            t++;
        } else {
            *o++ = *t;
        }
    }
    while (o > out && o[-1] == ' ')
        o--;
    *o = '\0';
    return out;
}

int cli_print_rows(const char *cmd, const char *format, json_t *header, json_t *rows)
{
    int table = !strncmp(format, "table ", 6);
    char *tmpl = list_template(format);
    size_t n = json_array_size(rows) + (table ? 1 : 0), cols = 0, *width = NULL, i;
    char **lines = calloc(n ? n : 1, sizeof(*lines)), err[512];
    int r = 0;

    if (!lines || !tmpl) {
        free(lines);
        free(tmpl);
        cli_error("%s: out of memory", cmd);
        return -1;
    }
    for (i = 0; i < n && r == 0; i++) {
        json_t *data = table ? (i ? json_array_get(rows, i - 1) : header) : json_array_get(rows, i);
        if (!(lines[i] = cli_template_render(tmpl, data, err, sizeof(err)))) {
            cli_error("%s: %s", cmd, err);
            r = -1;
        }
    }
    /* docker's tabwriter: each column as wide as its widest cell plus 3, at least 10. */
    for (i = 0; table && r == 0 && i < n; i++) {
        size_t c = 0;
        for (const char *p = lines[i];; c++) {
            size_t len = strcspn(p, "\t"), w = text_width(p, len) + 3;
            if (c >= cols) {
                size_t *grown = realloc(width, (c + 1) * sizeof(*width));
                if (!grown) {
                    r = -1;
                    break;
                }
                width = grown;
                width[cols++] = 10;
            }
            width[c] = w > width[c] ? w : width[c];
            if (!p[len])
                break;
            p += len + 1;
        }
    }
    for (i = 0; r == 0 && i < n; i++) {
        if (!table) {
            printf("%s\n", lines[i]);
            continue;
        }
        for (const char *p = lines[i], *cell;; p++) {
            size_t len = strcspn(cell = p, "\t"), c = 0;
            for (const char *q = lines[i]; q < cell; q++)
                c += *q == '\t';
            fwrite(cell, 1, len, stdout);
            if (!cell[len])
                break;
            printf("%*s", (int)(width[c] - text_width(cell, len)), "");
            p = cell + len;
        }
        putchar('\n');
    }
    for (i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(width);
    free(tmpl);
    return r == 0 && fflush(stdout) == 0 ? 0 : -1;
}

int cli_args_utf8(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char shown[256];
        if (berth_utf8_valid(argv[i]))
            continue;
        snprintf(shown, sizeof(shown), "%s", argv[i]);
        berth_utf8_fix(shown);
        cli_error("%s: argument %d (\"%s\") is not valid UTF-8, which berth can't pass on", argv[0],
                  i, shown);
        return -1;
    }
    return 0;
}

int cli_bad_option(char **argv, int optind, const char *needs_value)
{
    if (needs_value)
        cli_error("%s: %s needs a value (see 'berth %s --help')", argv[0], needs_value, argv[0]);
    else
        cli_error("%s: bad option '%s' (see 'berth %s --help')", argv[0], argv[optind - 1],
                  argv[0]);
    return CLI_EXIT_USAGE;
}
