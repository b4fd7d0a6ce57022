/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth events: the engine's event log as `docker events` shows it, past
 * events between --since and --until, then (without --until, or with one
 * still ahead) new ones as any process on the root commits them, until
 * interrupted.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "Usage: berth events [OPTIONS]\n"
    "\n"
    "Show the engine's events: containers, images and the rest, made by any\n"
    "process on this root (berth, berthd, the containers' monitors). Without\n"
    "--until, new events are shown as they happen until interrupted.\n"
    "\n"
    "Options:\n"
    "      --since TIME      events from this time on\n"
    "      --until TIME      events up to this time, then exit\n"
    "  -f, --filter K=V      only matching events (type, event, container, image,\n"
    "                        label, volume, network, scope, ...); may repeat\n"
    "      --format FORMAT   text (default) or json: one JSON object per line\n"
    "  -h, --help            show this help\n"
    "\n"
    "TIME: RFC 3339 (2026-11-28T15:00:00Z), a date, Unix seconds[.nanos], or a\n"
    "duration before now (10m, 1h30m).\n";

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* docker's line: "<time, 9 digits> <Type> <Action> <Actor.ID> (k=v, ... sorted by key)". */
static void print_text(json_t *msg)
{
    json_t *actor = json_object_get(msg, "Actor"), *attrs = json_object_get(actor, "Attributes");
    int64_t ns = json_integer_value(json_object_get(msg, "timeNano"));
    time_t sec = (time_t)(ns / 1000000000);
    size_t n = json_object_size(attrs), i = 0;
    const char **keys = n ? calloc(n, sizeof(*keys)) : NULL;
    struct tm tm;
    char when[40];
    const char *k;
    json_t *v;

    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    printf("%s.%09lldZ %s %s %s", when, (long long)(ns % 1000000000),
           json_string_value(json_object_get(msg, "Type")),
           json_string_value(json_object_get(msg, "Action")),
           json_string_value(json_object_get(actor, "ID")));
    if (keys) {
        json_object_foreach (attrs, k, v)
            keys[i++] = k;
        qsort(keys, n, sizeof(*keys), cmp_str);
        printf(" (");
        for (i = 0; i < n; i++)
            printf("%s%s=%s", i ? ", " : "", keys[i],
                   json_string_value(json_object_get(attrs, keys[i])));
        printf(")");
        free(keys);
    }
    putchar('\n');
}

static void print_events(json_t *events, int as_json)
{
    size_t i;
    json_t *msg;

    json_array_foreach (events, i, msg) {
        if (as_json) {
            char *text = json_dumps(msg, JSON_COMPACT);
            if (text)
                puts(text);
            free(text);
        } else {
            print_text(msg);
        }
    }
    /* Whoever reads a pipe sees each event as it comes. */
    fflush(stdout);
}

int cmd_events(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_SINCE = 256, OPT_UNTIL, OPT_FORMAT };
    static const struct option longopts[] = {
        { "since", required_argument, NULL, OPT_SINCE },
        { "until", required_argument, NULL, OPT_UNTIL },
        { "filter", required_argument, NULL, 'f' },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *since_arg = NULL, *until_arg = NULL;
    berth_event_filter_t *filter = NULL;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    int64_t since = 0, until = 0, start = now_ns();
    uint64_t cursor = 0;
    json_t *events = NULL;
    struct sigaction sa = { .sa_handler = on_signal };
    sigset_t block, waiting;
    int c, as_json = 0, watch = -1, settle = 0, ret = CLI_EXIT_FAIL;

    if (berth_event_filter_new(NULL, &filter, &err) < 0) {
        cli_error("events: %s", err.msg);
        return CLI_EXIT_FAIL;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SINCE:
            since_arg = optarg;
            break;
        case OPT_UNTIL:
            until_arg = optarg;
            break;
        case 'f':
            if (berth_event_filter_add(filter, optarg, &err) < 0) {
                cli_error("events: %s", err.msg);
                ret = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case OPT_FORMAT:
            /* docker's {{json .}} is what json means here. */
            if (!strcmp(optarg, "json") || !strcmp(optarg, "{{json .}}"))
                as_json = 1;
            else if (!strcmp(optarg, "text"))
                as_json = 0;
            else {
                cli_error("events: unknown --format '%s' (text or json)", optarg);
                ret = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            ret = CLI_EXIT_OK;
            goto out;
        default:
            ret = cli_bad_option(argv, optind,
                                 optopt == 'f'          ? "--filter"
                                 : optopt == OPT_SINCE  ? "--since"
                                 : optopt == OPT_UNTIL  ? "--until"
                                 : optopt == OPT_FORMAT ? "--format"
                                                        : NULL);
            goto out;
        }
    }
    if (optind != argc) {
        cli_error("events: takes no arguments (see 'berth events --help')");
        ret = CLI_EXIT_USAGE;
        goto out;
    }
    if ((since_arg && berth_parse_time(since_arg, start, &since, &err) < 0) ||
        (until_arg && berth_parse_time(until_arg, start, &until, &err) < 0)) {
        cli_error("events: %s", err.msg);
        ret = CLI_EXIT_USAGE;
        goto out;
    }
    if (until_arg && since_arg && until < since) {
        cli_error("events: --since (%s) is after --until (%s)", since_arg, until_arg);
        ret = CLI_EXIT_USAGE;
        goto out;
    }
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        goto out;
    /*
     * Interrupting a follow is how it ends: exit 0, as docker does. The
     * signals stay blocked but while ppoll waits, so one that comes between
     * the check of the flag and the wait is not lost.
     */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &waiting);
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Watch before reading, so nothing committed in between goes unnoticed. */
    if (!until_arg || until > start)
        berth_events_watch_open(engine, &watch, NULL);
    /* Like docker: past events only when a time bound was given, else only new ones. */
    if (since_arg || until_arg) {
        if (berth_events_read(engine, 0, since, until, filter, 0, &events, &cursor, &err) < 0) {
            cli_error("events: %s", err.msg);
            goto out;
        }
        print_events(events, as_json);
        json_decref(events);
        events = NULL;
    } else if (berth_events_last_seq(engine, &cursor, &err) < 0) {
        cli_error("events: %s", err.msg);
        goto out;
    }
    while (!stopping && (!until_arg || until > start)) {
        struct pollfd pfd = { .fd = watch, .events = POLLIN };
        int64_t left = until_arg ? (until - now_ns()) / 1000000 + 1 : -1;
        /*
         * Without a watch (inotify exhausted), look once a second. With one,
         * look again 50 ms and 1 s after a notification: it may come an
         * instant before LMDB publishes the commit to readers.
         */
        int timeout = watch < 0 ? 1000 : settle == 1 ? 50 : settle == 2 ? 1000 : -1;
        int n;

        if (until_arg && left <= 0)
            break;
        if (left >= 0 && (timeout < 0 || left < timeout))
            timeout = left > 1000000 ? 1000000 : (int)left;
        struct timespec ts = { .tv_sec = timeout / 1000, .tv_nsec = (timeout % 1000) * 1000000L };
        n = ppoll(&pfd, watch >= 0 ? 1 : 0, timeout < 0 ? NULL : &ts, &waiting);
        if (n < 0 && errno != EINTR)
            break;
        if (stopping)
            break;
        if (n > 0) {
            berth_events_watch_drain(watch);
            settle = 1;
        } else if (n == 0 && settle) {
            settle = settle == 1 ? 2 : 0;
        }
        if (berth_events_read(engine, cursor, since, until, filter, 0, &events, &cursor, &err) <
            0) {
            cli_error("events: %s", err.msg);
            goto out;
        }
        print_events(events, as_json);
        json_decref(events);
        events = NULL;
    }
    /* What was committed up to --until, including just before it passed. */
    if (until_arg && !stopping &&
        berth_events_read(engine, cursor, since, until, filter, 0, &events, &cursor, NULL) == 0)
        print_events(events, as_json);
    ret = CLI_EXIT_OK;
out:
    json_decref(events);
    if (watch >= 0)
        close(watch);
    berth_engine_close(engine);
    berth_event_filter_free(filter);
    return ret;
}
