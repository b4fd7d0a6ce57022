/* SPDX-License-Identifier: Apache-2.0 */
/* berth info: the engine's configuration, store, drivers and host features. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth info [--format text|json]\n"
    "\n"
    "Show berth's configuration, its metadata store (path, schema, record counts),\n"
    "the drivers loaded per kind with the configured defaults, and the host features\n"
    "berth detected (cgroup v1/v2/hybrid, overlayfs, user namespaces, KVM).\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  text (default) or json\n"
    "  -h, --help           show this help\n";

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static const char *yesno(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

/* What drivers said about themselves ("details": {driver: {key: value}}), one line per key. */
static void print_details(json_t *details)
{
    const char *drv, *key;
    json_t *o, *v;

    json_object_foreach (details, drv, o) {
        json_object_foreach (o, key, v) {
            printf("    %s %s: ", drv, key);
            if (json_is_string(v))
                printf("%s\n", json_string_value(v));
            else if (json_is_integer(v))
                printf("%lld\n", (long long)json_integer_value(v));
            else if (json_is_boolean(v))
                printf("%s\n", json_is_true(v) ? "yes" : "no");
            else
                printf("-\n");
        }
    }
}

static void print_text(json_t *j)
{
    json_t *store = json_object_get(j, "store"), *drivers = json_object_get(j, "drivers");
    json_t *host = json_object_get(j, "host"), *plugins = json_object_get(j, "plugins");
    const char *kind;
    json_t *v;

    printf("Version:         %s (driver ABI %s)\n", str(j, "version"), str(j, "abi"));
    printf("Config file:     %s\n", json_is_string(json_object_get(j, "config_file"))
                                        ? str(j, "config_file")
                                        : "(none: built-in defaults)");
    printf("Root:            %s\n", str(j, "root"));
    printf("Runroot:         %s\n", str(j, "runroot"));
    if (store) {
        json_t *records = json_object_get(store, "records");
        const char *db;
        int first = 1;
        printf("Store:           %s (schema %lld)\n", str(store, "path"),
               (long long)json_integer_value(json_object_get(store, "schema")));
        printf("  Records:      ");
        json_object_foreach (records, db, v) {
            printf("%s %s %lld", first ? "" : ",", db, (long long)json_integer_value(v));
            first = 0;
        }
        printf("\n");
    }
    printf("Drivers:\n");
    json_object_foreach (drivers, kind, v) {
        json_t *loaded = json_object_get(v, "loaded"), *name;
        size_t i;
        printf("  %-14s ", kind);
        if (json_array_size(loaded) == 0)
            printf("(none)");
        json_array_foreach (loaded, i, name) {
            printf("%s%s", i ? ", " : "", json_string_value(name));
        }
        if (json_object_get(v, "default"))
            printf("; default %s%s", str(v, "default"),
                   json_is_true(json_object_get(v, "default_loaded")) ? "" : " (not loaded)");
        printf("\n");
        print_details(json_object_get(v, "details"));
    }
    printf("Plugins:         %lld loaded, %lld refused (see 'berth plugins')\n",
           (long long)json_integer_value(json_object_get(plugins, "loaded")),
           (long long)json_integer_value(json_object_get(plugins, "refused")));
    printf("Host:\n");
    printf("  Kernel:        %s %s\n", str(host, "kernel"), str(host, "arch"));
    printf("  Cgroups:       %s\n", str(host, "cgroup_mode"));
    printf("  Overlayfs:     %s\n", yesno(host, "overlayfs"));
    printf("  User ns:       %s\n", yesno(host, "userns"));
    printf("  KVM:           %s, %s\n", yesno(host, "kvm"), str(host, "kvm_detail"));
}

int cmd_info(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    enum cli_format fmt;
    json_t *j = NULL;
    int r = cli_parse_simple(argc, argv, usage, 1, &fmt);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_engine_info(engine, &j, &err);
    if (r < 0) {
        cli_error("info: %s", err.msg);
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
