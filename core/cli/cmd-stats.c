/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth stats: CPU, memory and process counts of running containers. CPU
 * percent needs two readings, so each round reads every container twice,
 * a second apart, as docker stats does.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"

static const char usage[] = "Usage: berth stats [OPTIONS] CONTAINER [CONTAINER...]\n"
                            "\n"
                            "Show containers' resource usage.\n"
                            "\n"
                            "Options:\n"
                            "      --no-stream      print one reading and exit\n"
                            "  -f, --format FORMAT  table (default) or json\n"
                            "  -h, --help           show this help\n";

static json_int_t num(json_t *stats, const char *group, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(stats, group), key));
}

static void human_bytes(json_int_t v, char *buf, size_t len)
{
    const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.2f%s" : "%.0f%s", d, units[u]);
}

int cmd_stats(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "no-stream", no_argument, NULL, 'n' },
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    berth_engine_t *engine = NULL;
    int no_stream = 0, c, failed = 0;
    int n;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            no_stream = 1;
            break;
        case 'f':
            if (cli_parse_format("stats", optarg, &fmt) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        default:
            cli_error("stats: bad option '%s' (see 'berth stats --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    n = argc - optind;
    if (n <= 0) {
        cli_error("stats: name at least one container (see 'berth stats --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    do {
        json_t **first = calloc((size_t)n, sizeof(*first)), *out = json_array();
        struct timespec second = { 1, 0 };

        for (int i = 0; i < n; i++) {
            berth_err_t err = { 0 };
            if (berth_container_stats(engine, argv[optind + i], &first[i], &err) < 0) {
                cli_error("%s", err.msg);
                failed = 1;
            }
        }
        nanosleep(&second, NULL);
        if (fmt == CLI_FORMAT_TEXT)
            printf("%-12s   %-20s %-8s %-22s %-8s %s\n", "CONTAINER ID", "NAME", "CPU %",
                   "MEM USAGE / LIMIT", "MEM %", "PIDS");
        for (int i = 0; i < n; i++) {
            json_t *now = NULL;
            double cpu = 0, mem_pct = 0;
            json_int_t used, limit;
            char u[32], l[32];
            if (!first[i] || berth_container_stats(engine, argv[optind + i], &now, NULL) < 0) {
                json_decref(first[i]);
                continue;
            }
            cpu = 100.0 * (double)(num(now, "cpu", "usage_ns") - num(first[i], "cpu", "usage_ns")) /
                  (double)(json_integer_value(json_object_get(now, "read_ns")) -
                           json_integer_value(json_object_get(first[i], "read_ns")));
            used = num(now, "memory", "usage");
            limit = num(now, "memory", "limit");
            if (limit > 0)
                mem_pct = 100.0 * (double)used / (double)limit;
            if (fmt == CLI_FORMAT_JSON) {
                json_object_set_new(now, "cpu_percent", json_real(cpu));
                json_array_append(out, now);
            } else {
                human_bytes(used, u, sizeof(u));
                if (limit > 0)
                    human_bytes(limit, l, sizeof(l));
                else
                    snprintf(l, sizeof(l), "unlimited");
                printf("%-12.12s   %-20s %6.2f%%  %9s / %-10s %6.2f%%  %lld\n",
                       json_string_value(json_object_get(now, "id")),
                       json_string_value(json_object_get(now, "name")), cpu, u, l, mem_pct,
                       (long long)num(now, "pids", "current"));
            }
            json_decref(now);
            json_decref(first[i]);
        }
        if (fmt == CLI_FORMAT_JSON)
            cli_print_json(out);
        json_decref(out);
        free(first);
        fflush(stdout);
    } while (!no_stream && !failed);
    berth_engine_close(engine);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
