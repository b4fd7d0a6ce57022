/* SPDX-License-Identifier: Apache-2.0 */
/* Health checks run by berthd (health.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "health.h"

#define OUTPUT_MAX 4096
#define LOG_KEEP   5
#define MS         1000000LL /* ns per ms */

struct bd_health {
    uv_loop_t *loop;
    berth_engine_t *e;
    char id[65];
    json_t *argv;
    uint64_t interval_ms, timeout_ms, start_period_ms, start_interval_ms;
    long long retries;
    uint64_t began; /* uv_now when the container started */
    json_t *health; /* what was last recorded */
    uv_timer_t timer;
    int stopped;
    /* The probe in flight. */
    uv_pipe_t *pipe;
    int64_t probe_start_ns;
    char out[OUTPUT_MAX];
    size_t out_len;
    unsigned char hdr[8];
    size_t hdr_len, left;
    int stream;
    char exit_json[64];
    size_t exit_len;
};

static void on_timer(uv_timer_t *t);

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t duration_ms(json_t *hc, const char *key, uint64_t def)
{
    json_int_t ns = json_integer_value(json_object_get(hc, key));
    return ns > 0 ? (uint64_t)(ns / MS) : def;
}

/* The command to run, or NULL when there is no check. */
static json_t *test_argv(json_t *hc)
{
    json_t *test = json_object_get(hc, "Test"), *argv;
    const char *kind = json_string_value(json_array_get(test, 0));

    if (!kind || json_array_size(test) < 2)
        return NULL;
    if (!strcmp(kind, "CMD-SHELL"))
        return json_pack("[s, s, O]", "/bin/sh", "-c", json_array_get(test, 1));
    if (strcmp(kind, "CMD"))
        return NULL; /* NONE, or something Docker does not know */
    argv = json_array();
    for (size_t i = 1; i < json_array_size(test); i++)
        json_array_append(argv, json_array_get(test, i));
    return argv;
}

static void record(bd_health_t *h)
{
    berth_err_t err = { 0 };
    if (berth_container_set_health(h->e, h->id, h->health, &err) < 0 && err.msg[0])
        fprintf(stderr, "berthd: health of %.12s not recorded: %s\n", h->id, err.msg);
}

static uint64_t next_delay(bd_health_t *h)
{
    int starting = !strcmp(json_string_value(json_object_get(h->health, "Status")), "starting");
    if (starting && uv_now(h->loop) - h->began < h->start_period_ms)
        return h->start_interval_ms;
    return h->interval_ms;
}

static void pipe_closed(uv_handle_t *p)
{
    free(p);
}

static void timer_closed(uv_handle_t *t)
{
    bd_health_t *h = t->data;
    json_decref(h->argv);
    json_decref(h->health);
    free(h);
}

/* One probe's outcome: the log, the streak, the status; then the next probe. */
static void finish(bd_health_t *h, int code, const char *output)
{
    json_t *log = json_object_get(h->health, "Log"), *entry;
    long long streak = json_integer_value(json_object_get(h->health, "FailingStreak"));
    const char *status = json_string_value(json_object_get(h->health, "Status"));
    char start[64], end[64];

    if (h->pipe) {
        uv_close((uv_handle_t *)h->pipe, pipe_closed);
        h->pipe = NULL;
    }
    uv_timer_stop(&h->timer);
    berth_format_time(h->probe_start_ns, start, sizeof(start));
    berth_format_time(now_ns(), end, sizeof(end));
    entry = json_pack("{s:s, s:s, s:i, s:s}", "Start", start, "End", end, "ExitCode", code,
                      "Output", output);
    if (entry) {
        json_array_append_new(log, entry);
        while (json_array_size(log) > LOG_KEEP)
            json_array_remove(log, 0);
    }
    if (code == 0) {
        status = "healthy";
        streak = 0;
    } else if (strcmp(status, "starting") || uv_now(h->loop) - h->began >= h->start_period_ms) {
        /* Failures within the start period don't count. */
        if (++streak >= h->retries)
            status = "unhealthy";
    }
    json_object_set_new(h->health, "Status", json_string(status));
    json_object_set_new(h->health, "FailingStreak", json_integer(streak));
    record(h);
    if (!h->stopped)
        uv_timer_start(&h->timer, on_timer, next_delay(h), 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    (void)handle;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

/* The probe's stream: frames of stdout/stderr (kept, up to 4 KiB), then the exit. */
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    bd_health_t *h = st->data;
    const unsigned char *p = (const unsigned char *)b->base;
    size_t len = n > 0 ? (size_t)n : 0;

    while (len > 0) {
        size_t take;
        if (h->left == 0) {
            take = sizeof(h->hdr) - h->hdr_len < len ? sizeof(h->hdr) - h->hdr_len : len;
            memcpy(h->hdr + h->hdr_len, p, take);
            h->hdr_len += take;
            p += take;
            len -= take;
            if (h->hdr_len < sizeof(h->hdr))
                break;
            h->hdr_len = 0;
            h->stream = h->hdr[0];
            h->left = (size_t)h->hdr[4] << 24 | (size_t)h->hdr[5] << 16 | (size_t)h->hdr[6] << 8 |
                      h->hdr[7];
            if (h->stream == 3 && h->left == 0)
                break;
            continue;
        }
        take = h->left < len ? h->left : len;
        if (h->stream == 3) {
            size_t room = sizeof(h->exit_json) - 1 - h->exit_len;
            memcpy(h->exit_json + h->exit_len, p, take < room ? take : room);
            h->exit_len += take < room ? take : room;
        } else {
            size_t room = sizeof(h->out) - 1 - h->out_len;
            memcpy(h->out + h->out_len, p, take < room ? take : room);
            h->out_len += take < room ? take : room;
        }
        p += take;
        len -= take;
        h->left -= take;
        if (h->stream == 3 && h->left == 0) {
            json_t *x;
            int code = -1;
            h->exit_json[h->exit_len] = '\0';
            if ((x = json_loads(h->exit_json, 0, NULL)) != NULL)
                code = (int)json_integer_value(json_object_get(x, "exit_code"));
            json_decref(x);
            h->out[h->out_len] = '\0';
            free(b->base);
            finish(h, code, h->out);
            return;
        }
    }
    free(b->base);
    if (n < 0) {
        h->out[h->out_len] = '\0';
        finish(h, -1, h->out_len ? h->out : "health check ended without an exit status");
    }
}

static void probe(bd_health_t *h)
{
    berth_err_t err = { 0 };
    json_t *opts = json_pack("{s:O, s:b, s:b, s:b}", "Cmd", h->argv, "AttachStdout", 1,
                             "AttachStderr", 1, "Detach", 0);
    int fd = -1, r;

    h->probe_start_ns = now_ns();
    h->out_len = h->hdr_len = h->left = h->exit_len = 0;
    r = opts ? berth_container_exec(h->e, h->id, opts, NULL, &fd, &err) : -ENOMEM;
    json_decref(opts);
    if (r < 0) {
        finish(h, -1, err.msg[0] ? err.msg : strerror(-r));
        return;
    }
    if (!(h->pipe = malloc(sizeof(*h->pipe))) || uv_pipe_init(h->loop, h->pipe, 0) < 0 ||
        uv_pipe_open(h->pipe, fd) < 0) {
        free(h->pipe);
        h->pipe = NULL;
        close(fd);
        finish(h, -1, "cannot read the health check's output");
        return;
    }
    h->pipe->data = h;
    uv_read_start((uv_stream_t *)h->pipe, on_alloc, on_read);
    uv_timer_start(&h->timer, on_timer, h->timeout_ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    bd_health_t *h = t->data;
    char msg[96];

    if (h->pipe) {
        snprintf(msg, sizeof(msg), "Health check exceeded timeout (%llus)",
                 (unsigned long long)(h->timeout_ms / 1000));
        finish(h, -1, msg);
        return;
    }
    probe(h);
}

bd_health_t *bd_health_start(uv_loop_t *loop, berth_engine_t *e, const char *id, json_t *inspect)
{
    json_t *hc = json_object_get(json_object_get(inspect, "Config"), "Healthcheck");
    json_t *argv = test_argv(hc);
    bd_health_t *h;
    json_int_t retries;

    if (!argv)
        return NULL;
    if (!(h = calloc(1, sizeof(*h)))) {
        json_decref(argv);
        return NULL;
    }
    h->loop = loop;
    h->e = e;
    h->argv = argv;
    snprintf(h->id, sizeof(h->id), "%s", id);
    h->interval_ms = duration_ms(hc, "Interval", 30000);
    h->timeout_ms = duration_ms(hc, "Timeout", 30000);
    h->start_period_ms = duration_ms(hc, "StartPeriod", 0);
    h->start_interval_ms = duration_ms(hc, "StartInterval", 5000);
    retries = json_integer_value(json_object_get(hc, "Retries"));
    h->retries = retries > 0 ? retries : 3;
    h->began = uv_now(loop);
    h->health = json_pack("{s:s, s:i, s:[]}", "Status", "starting", "FailingStreak", 0, "Log");
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    record(h);
    uv_timer_start(&h->timer, on_timer, next_delay(h), 0);
    return h;
}

void bd_health_stop(bd_health_t *h)
{
    if (!h)
        return;
    h->stopped = 1;
    if (h->pipe) {
        uv_close((uv_handle_t *)h->pipe, pipe_closed);
        h->pipe = NULL;
    }
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}
