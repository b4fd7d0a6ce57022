/* SPDX-License-Identifier: Apache-2.0 */
/* berth version: the CLI's and libberth's versions and the driver ABI. */
#include <stdio.h>

#include "berth-build-config.h"
#include "cli.h"

static const char usage[] = "Usage: berth version [--format text|json]\n"
                            "\n"
                            "Show berth's version and the driver ABI it implements.\n"
                            "\n"
                            "Options:\n"
                            "  -f, --format FORMAT  text (default) or json\n"
                            "  -h, --help           show this help\n";

int cmd_version(const struct cli_globals *g, int argc, char **argv)
{
    enum cli_format fmt;
    uint32_t major, minor;
    int r = cli_parse_simple(argc, argv, usage, 1, &fmt);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    berth_abi_version(&major, &minor);
    if (fmt == CLI_FORMAT_JSON) {
        char abi[32];
        json_t *j;
        snprintf(abi, sizeof(abi), "%u.%u", major, minor);
        j = json_pack("{s:s, s:s, s:s}", "client", BERTH_VERSION, "library", berth_version(), "abi",
                      abi);
        r = j ? cli_print_json(j) : -1;
        json_decref(j);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    printf("berth version %s (libberth %s, driver ABI %u.%u)\n", BERTH_VERSION, berth_version(),
           major, minor);
    return CLI_EXIT_OK;
}
