/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth save: write images to a docker save archive or an OCI layout tar.
 * To stdout the archive is written to a spool file first (the engine
 * renames a finished archive into place, which a pipe can't take), then
 * copied out.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth %s [OPTIONS] IMAGE [IMAGE...]\n"
    "\n"
    "Save images to a tar archive (to stdout unless -o is given).\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE  write to FILE\n"
    "      --format FMT   docker-archive (default, what docker load reads) or\n"
    "                     oci-archive (an OCI image layout in a tar)\n"
    "  -h, --help         show this help\n";

/*
 * As docker checks -o before any work: the directory must exist, and what
 * is there already must be a regular file (the archive replaces it).
 */
static int check_output(const char *cmd, const char *path)
{
    char *copy = strdup(path), *slash;
    struct stat st;
    int r = 0;

    if (!copy) {
        cli_error("%s: out of memory", cmd);
        return -1;
    }
    slash = strrchr(copy, '/');
    if (slash) {
        *(slash == copy ? slash + 1 : slash) = '\0';
        if (stat(copy, &st) < 0 || !S_ISDIR(st.st_mode)) {
            cli_error("%s: invalid output path: directory \"%s\" does not exist", cmd, copy);
            r = -1;
        }
    }
    if (r == 0 && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        cli_error("%s: invalid output path: \"%s\" is not a regular file", cmd, path);
        r = -1;
    }
    free(copy);
    return r;
}

/* Save into a spool file and copy it to stdout. */
static int save_to_stdout(berth_engine_t *e, const char *cmd, const char *const *refs, size_t n,
                          const char *format)
{
    char dir[PATH_MAX], path[PATH_MAX];
    berth_err_t err = { 0 };
    int fd, in = 0, r;

    if (cli_spool_create(e, "save", dir, sizeof(dir)) < 0)
        return -1;
    /* ".tar": the OCI layout driver writes a tar, not a directory, to such a path. */
    if (snprintf(path, sizeof(path), "%s/image.tar", dir) >= (int)sizeof(path)) {
        cli_error("%s: spool path too long", cmd);
        cli_spool_remove();
        return -1;
    }
    r = berth_image_save(e, refs, n, path, format, NULL, &err);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        cli_spool_remove();
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_error("%s: %s: %s", cmd, path, strerror(errno));
        cli_spool_remove();
        return -1;
    }
    r = cli_copy_fd(fd, STDOUT_FILENO, &in);
    close(fd);
    cli_spool_remove();
    if (r < 0) {
        cli_error("%s: %s: %s", cmd, in ? "reading the archive" : "writing to stdout",
                  strerror(-r));
        return -1;
    }
    return 0;
}

int cmd_save(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FORMAT = 256 };
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'o' },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *output = NULL, *format = "docker-archive";
    berth_engine_t *engine = NULL;
    int c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "docker-archive") != 0 && strcmp(optarg, "oci-archive") != 0) {
                cli_error("%s: unknown format '%s' (use docker-archive or oci-archive)", argv[0],
                          optarg);
                return CLI_EXIT_USAGE;
            }
            format = optarg;
            break;
        case 'h':
            printf(usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            if (optopt == 'o' || optopt == OPT_FORMAT)
                cli_error("%s: option '%s' needs a value (see 'berth %s --help')", argv[0],
                          argv[optind - 1], argv[0]);
            else
                cli_error("%s: bad option '%s' (see 'berth %s --help')", argv[0], argv[optind - 1],
                          argv[0]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("%s: name at least one image (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (!output && isatty(STDOUT_FILENO)) {
        cli_error("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        return CLI_EXIT_FAIL;
    }
    if (output && check_output(argv[0], output) < 0)
        return CLI_EXIT_FAIL;
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    if (output) {
        berth_err_t err = { 0 };
        r = berth_image_save(engine, (const char *const *)(argv + optind), (size_t)(argc - optind),
                             output, format, NULL, &err);
        if (r < 0)
            cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
    } else {
        r = save_to_stdout(engine, argv[0], (const char *const *)(argv + optind),
                           (size_t)(argc - optind), format);
    }
    berth_engine_close(engine);
    return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
