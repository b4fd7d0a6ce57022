/* SPDX-License-Identifier: Apache-2.0 */
/* berth pull: fetch an image from its registry, with docker's progress display. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth %s [OPTIONS] NAME[:TAG|@DIGEST]\n"
    "\n"
    "Download an image from a registry (Docker Hub unless NAME names another).\n"
    "\n"
    "Options:\n"
    "      --platform OS/ARCH[/VARIANT]  pick this platform from a multi-platform image\n"
    "                                    (default: the host's)\n"
    "  -q, --quiet                       print only the image's name\n"
    "      --auth-stdin                  read the registry credentials from stdin as JSON\n"
    "                                    ({\"username\", \"password\"} or {\"identitytoken\"}),\n"
    "                                    not from the credentials file (berthd passes\n"
    "                                    docker's X-Registry-Auth this way)\n"
    "  -h, --help                        show this help\n";

int cmd_pull(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_PLATFORM = 256, OPT_AUTH_STDIN };
    static const struct option longopts[] = {
        { "platform", required_argument, NULL, OPT_PLATFORM },
        { "auth-stdin", no_argument, NULL, OPT_AUTH_STDIN },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *platform = NULL;
    berth_engine_t *engine = NULL;
    char full[600], auth[65536];
    int quiet = 0, auth_stdin = 0, c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_PLATFORM:
            platform = optarg;
            break;
        case OPT_AUTH_STDIN:
            auth_stdin = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            printf(usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, NULL);
        }
    }
    if (argc - optind != 1) {
        cli_error("%s: name exactly one image (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (auth_stdin) {
        /* Not on the command line, where every user's ps would show it. */
        size_t n = fread(auth, 1, sizeof(auth) - 1, stdin);
        auth[n] = '\0';
        if (n == sizeof(auth) - 1 || !n) {
            cli_error("%s: --auth-stdin: %s credentials on stdin", argv[0], n ? "too long" : "no");
            return CLI_EXIT_USAGE;
        }
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = cli_pull(engine, argv[optind], platform, auth_stdin ? auth : NULL, stdout,
                 quiet ? CLI_PULL_F_QUIET : CLI_PULL_F_DEFAULT_TAG, NULL);
    berth_engine_close(engine);
    if (r < 0)
        return CLI_EXIT_FAIL;
    /* Docker ends with the full name, the one line -q prints. */
    if (cli_image_names(argv[optind], full, sizeof(full), NULL, 0, NULL) == 0)
        printf("%s\n", full);
    return CLI_EXIT_OK;
}
