/* SPDX-License-Identifier: Apache-2.0 */
/* berth rmi (and image rm): untag images, and delete those left without a tag. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth %s [OPTIONS] IMAGE [IMAGE...]\n"
    "\n"
    "Remove images: untag the name given, and delete the image when no tag is left.\n"
    "\n"
    "Options:\n"
    "  -f, --force  remove an image with several tags by id, or one containers use\n"
    "               (only its tag goes then)\n"
    "  -h, --help   show this help\n";

int cmd_rmi(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    int force = 0, failed = 0, c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            force = 1;
            break;
        case 'h':
            printf(usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, NULL);
        }
    }
    if (optind >= argc) {
        cli_error("%s: name at least one image (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    /* Plugins: deleting an image removes its unpacked layers through the storage driver. */
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        json_t *out = NULL, *item;
        size_t k;
        int r = berth_image_remove(engine, argv[i], force ? BERTH_IMAGE_RM_FORCE : 0, &out, &err);
        if (r < 0) {
            cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
            failed = 1;
            continue;
        }
        json_array_foreach (out, k, item) {
            const char *what;
            if ((what = json_string_value(json_object_get(item, "Untagged"))))
                printf("Untagged: %s\n", what);
            else if ((what = json_string_value(json_object_get(item, "Deleted"))))
                printf("Deleted: %s\n", what);
        }
        json_decref(out);
    }
    berth_engine_close(engine);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
