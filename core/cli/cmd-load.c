/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth load: import the images of a `docker save` tar or an OCI layout
 * (directory or tar). From stdin the archive is spooled to a file first:
 * the archive drivers need to seek in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth %s [OPTIONS]\n"
    "\n"
    "Load images from a docker save archive or an OCI layout (a directory or a tar).\n"
    "\n"
    "Options:\n"
    "  -i, --input FILE  read FILE instead of stdin\n"
    "  -q, --quiet       no progress, only the loaded images' names\n"
    "  -h, --help        show this help\n";

/* Print docker's lines for what was loaded. */
static void print_loaded(json_t *list)
{
    json_t *item;
    size_t i;

    json_array_foreach (list, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (name)
            printf("Loaded image: %s\n", name);
        else
            printf("Loaded image ID: %s\n", json_string_value(json_object_get(item, "id")));
    }
}

/* Copy stdin into a file in a fresh spool directory; the caller removes the spool. */
static int spool_stdin(berth_engine_t *e, const char *cmd, char *ret_path, size_t len)
{
    char dir[PATH_MAX];
    int fd, in = 0, r;

    if (cli_spool_create(e, "load", dir, sizeof(dir)) < 0)
        return -1;
    if (snprintf(ret_path, len, "%s/stdin.tar", dir) >= (int)len) {
        cli_error("%s: spool path too long", cmd);
        return -1;
    }
    fd = open(ret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error("%s: %s: %s", cmd, ret_path, strerror(errno));
        return -1;
    }
    r = cli_copy_fd(STDIN_FILENO, fd, &in);
    if (r == 0 && close(fd) < 0)
        r = -errno;
    else if (r < 0)
        close(fd);
    if (r < 0) {
        cli_error("%s: %s %s: %s", cmd, in ? "reading" : "spooling", in ? "stdin" : ret_path,
                  strerror(-r));
        return -1;
    }
    return 0;
}

int cmd_load(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "input", required_argument, NULL, 'i' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_image_opts_t opts = { 0 };
    struct cli_progress *p = NULL;
    const char *input = NULL;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    char spooled[PATH_MAX];
    json_t *loaded = NULL;
    int quiet = 0, c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+i:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            input = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            printf(usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            if (optopt == 'i')
                cli_error("%s: -i needs a file (see 'berth %s --help')", argv[0], argv[0]);
            else
                cli_error("%s: bad option '%s' (see 'berth %s --help')", argv[0], argv[optind - 1],
                          argv[0]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s' (see 'berth %s --help')", argv[0], argv[optind],
                  argv[0]);
        return CLI_EXIT_USAGE;
    }
    /* Docker's wording: a terminal is taken as no archive at all, rather than waited on. */
    if (!input && isatty(STDIN_FILENO)) {
        cli_error("requested load from stdin, but stdin is empty");
        return CLI_EXIT_FAIL;
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    if (!input) {
        if (spool_stdin(engine, argv[0], spooled, sizeof(spooled)) < 0) {
            cli_spool_remove();
            berth_engine_close(engine);
            return CLI_EXIT_FAIL;
        }
        input = spooled;
    }
    /* Docker shows layer progress only to a terminal. */
    if (!quiet && isatty(STDOUT_FILENO)) {
        p = cli_progress_new(stdout);
        opts.progress = p ? cli_progress_event : NULL;
        opts.progress_userdata = p;
    }
    r = berth_image_load(engine, input, &opts, &loaded, &err);
    cli_progress_free(p);
    cli_spool_remove();
    berth_engine_close(engine);
    if (r < 0) {
        const char *at = input == spooled ? strstr(err.msg, spooled) : NULL;
        /* The spool file is ours, not the user's: call it stdin. */
        if (at)
            cli_error("%.*sstdin%s", (int)(at - err.msg), err.msg, at + strlen(spooled));
        else
            cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    print_loaded(loaded);
    json_decref(loaded);
    return CLI_EXIT_OK;
}
