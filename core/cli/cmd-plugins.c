/* SPDX-License-Identifier: Apache-2.0 */
/* berth plugins: loaded drivers and refused modules with their reasons. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth plugins [--format text|json]\n"
    "\n"
    "List the driver plugins berth loaded (kind, name, version, ABI, capabilities)\n"
    "and the module files it refused, with the reason for each.\n"
    "Plugins are searched in the config's plugin_dirs, then in $BERTH_PLUGIN_PATH.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  text (default) or json\n"
    "  -h, --help           show this help\n";

static void print_caps(json_t *caps, char *buf, size_t len)
{
    size_t i, off = 0;
    json_t *c;

    buf[0] = '\0';
    json_array_foreach (caps, i, c) {
        int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", json_string_value(c));
        if (n < 0 || (size_t)n >= len - off)
            break;
        off += (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, len, "-");
}

static void print_text(json_t *j)
{
    json_t *drivers = json_object_get(j, "drivers"), *refused = json_object_get(j, "refused");
    json_t *d;
    size_t i;

    printf("%-10s %-16s %-10s %-5s %-32s %s\n", "KIND", "NAME", "VERSION", "ABI", "CAPABILITIES",
           "PATH");
    json_array_foreach (drivers, i, d) {
        char caps[256];
        print_caps(json_object_get(d, "capabilities"), caps, sizeof(caps));
        printf("%-10s %-16s %-10s %-5s %-32s %s\n", json_string_value(json_object_get(d, "kind")),
               json_string_value(json_object_get(d, "name")),
               json_string_value(json_object_get(d, "version")),
               json_string_value(json_object_get(d, "abi")), caps,
               json_string_value(json_object_get(d, "path")));
    }
    if (json_array_size(refused) > 0) {
        printf("\nRefused:\n");
        json_array_foreach (refused, i, d) {
            printf("  %s: %s\n", json_string_value(json_object_get(d, "path")),
                   json_string_value(json_object_get(d, "reason")));
        }
    }
    if (json_array_size(drivers) == 0) {
        json_t *dir;
        printf("\nNo drivers loaded. Searched:");
        json_array_foreach (json_object_get(j, "search_path"), i, dir) {
            printf(" %s", json_string_value(dir));
        }
        printf("\n");
    }
}

int cmd_plugins(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    enum cli_format fmt;
    json_t *j = NULL;
    int r = cli_parse_simple(argc, argv, usage, 1, &fmt);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    /* Listing plugins needs no store, so it works before a root exists. */
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_STORE, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_engine_plugins(engine, &j, &err);
    if (r < 0) {
        cli_error("plugins: %s", err.msg);
        berth_engine_close(engine);
        return CLI_EXIT_FAIL;
    }
    if (fmt == CLI_FORMAT_JSON)
        r = cli_print_json(j);
    else
        print_text(j);
    json_decref(j);
    berth_engine_close(engine);
    return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
