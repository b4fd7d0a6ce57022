/* SPDX-License-Identifier: Apache-2.0 */
/* berthd's supervisor: restart policies (supervise.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
#include "supervise.h"

#define SCAN_MS        1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 60000
#define RAN_LONG_MS    10000 /* a run this long resets the back-off */

struct watch {
    bd_supervisor_t *s;
    char id[65];
    char policy[16]; /* "no", "always", "unless-stopped", "on-failure" */
    long long max;   /* on-failure's MaximumRetryCount; 0: no maximum */
    char state[16];  /* as the last scan saw it */
    char handled[48];
    int fd;
    int polling, delaying, startup;
    uint64_t backoff_ms, started_at;
    int mark;
    uv_poll_t *poll; /* one per wait: each wait has a descriptor of its own */
    int has_health;
    bd_health_t *health; /* probes while it runs */
    uv_timer_t delay;
    struct watch *next;
};

struct bd_supervisor {
    uv_loop_t *loop;
    berth_engine_t *e;
    uv_timer_t scan;
    int first;
    struct watch *watches;
};

static void evaluate(struct watch *w, int startup);

static struct watch *watch_find(bd_supervisor_t *s, const char *id)
{
    for (struct watch *w = s->watches; w; w = w->next)
        if (!strcmp(w->id, id))
            return w;
    return NULL;
}

static void delay_closed(uv_handle_t *h)
{
    free(h->data);
}

static void poll_closed(uv_handle_t *h)
{
    free(h);
}

/* Stop polling: the handle closes before its descriptor, which libuv must not see closed. */
static int poll_end(struct watch *w)
{
    int fd = w->fd;

    if (w->poll)
        uv_close((uv_handle_t *)w->poll, poll_closed);
    w->poll = NULL;
    w->polling = 0;
    w->fd = -1;
    return fd;
}

/* Unlink and free @w (its timer closes first). */
static void watch_drop(struct watch *w)
{
    bd_supervisor_t *s = w->s;
    int fd;

    for (struct watch **p = &s->watches; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    if ((fd = poll_end(w)) >= 0)
        close(fd);
    bd_health_stop(w->health);
    w->health = NULL;
    uv_close((uv_handle_t *)&w->delay, delay_closed);
}

static void read_policy(struct watch *w, json_t *insp)
{
    json_t *rp = json_object_get(json_object_get(insp, "HostConfig"), "RestartPolicy");
    const char *name = json_string_value(json_object_get(rp, "Name"));

    json_t *test =
        json_object_get(json_object_get(json_object_get(insp, "Config"), "Healthcheck"), "Test");
    const char *kind = json_string_value(json_array_get(test, 0));

    snprintf(w->policy, sizeof(w->policy), "%s", name && *name ? name : "no");
    w->max = (long long)json_integer_value(json_object_get(rp, "MaximumRetryCount"));
    w->has_health = kind && (!strcmp(kind, "CMD") || !strcmp(kind, "CMD-SHELL"));
}

/* Whether berthd has anything to do for this container: a policy to apply or checks to run. */
static int wanted(const struct watch *w)
{
    return strcmp(w->policy, "no") != 0 || w->has_health;
}

static struct watch *watch_add(bd_supervisor_t *s, const char *id)
{
    struct watch *w = calloc(1, sizeof(*w));
    json_t *insp = NULL;

    if (!w)
        return NULL;
    if (berth_container_inspect(s->e, id, &insp, NULL) < 0) {
        free(w);
        return NULL;
    }
    w->s = s;
    w->fd = -1;
    snprintf(w->id, sizeof(w->id), "%s", id);
    read_policy(w, insp);
    json_decref(insp);
    uv_timer_init(s->loop, &w->delay);
    w->delay.data = w;
    w->next = s->watches;
    s->watches = w;
    return w;
}

static void on_exit_readable(uv_poll_t *p, int status, int events)
{
    struct watch *w = p->data;
    int code, fd;
    (void)status;
    (void)events;
    fd = poll_end(w);
    berth_container_wait_end(w->s->e, w->id, fd, &code, NULL);
    bd_health_stop(w->health);
    w->health = NULL;
    evaluate(w, 0);
}

/* Ask the monitor to tell us of the exit; when there is nothing to wait for, look at the record. */
static void watch_begin(struct watch *w)
{
    int code;

    if (w->polling || w->delaying || !wanted(w))
        return;
    if (berth_container_wait_begin(w->s->e, w->id, &w->fd, &code, NULL) != 0) {
        w->fd = -1;
        evaluate(w, 0);
        return;
    }
    if (!(w->poll = malloc(sizeof(*w->poll))) || uv_poll_init(w->s->loop, w->poll, w->fd) < 0) {
        free(w->poll);
        w->poll = NULL;
        close(w->fd);
        w->fd = -1;
        return; /* the next scan tries again */
    }
    w->poll->data = w;
    if (!w->started_at)
        w->started_at = uv_now(w->s->loop);
    w->polling = uv_poll_start(w->poll, UV_READABLE | UV_DISCONNECT, on_exit_readable) == 0;
    if (w->polling && w->has_health && !w->health) {
        json_t *insp = NULL;
        if (berth_container_inspect(w->s->e, w->id, &insp, NULL) == 0)
            w->health = bd_health_start(w->s->loop, w->s->e, w->id, insp);
        json_decref(insp);
    }
}

static void on_delay(uv_timer_t *t)
{
    struct watch *w = t->data;
    berth_err_t err = { 0 };
    json_t *insp = NULL;
    const char *st;
    int r;

    w->delaying = 0;
    if (berth_container_inspect(w->s->e, w->id, &insp, NULL) < 0) {
        watch_drop(w); /* removed meanwhile */
        return;
    }
    st = json_string_value(json_object_get(json_object_get(insp, "State"), "Status"));
    /* Started or stopped by hand meanwhile: that wins. */
    if (!st || strcmp(st, "exited") ||
        (!w->startup &&
         json_is_true(json_object_get(json_object_get(insp, "State"), "ManualStop")))) {
        json_decref(insp);
        return;
    }
    json_decref(insp);
    r = berth_container_start(w->s->e, w->id, BERTH_START_POLICY, &err);
    if (r < 0) {
        fprintf(stderr, "berthd: restart of %.12s failed: %s\n", w->id, err.msg);
        evaluate(w, 0); /* the failed start is an exit of its own, backed off */
        return;
    }
    fprintf(stderr, "berthd: restarted %.12s (restart policy %s)\n", w->id, w->policy);
    w->started_at = uv_now(w->s->loop);
    snprintf(w->state, sizeof(w->state), "running");
    watch_begin(w);
}

/*
 * The container is not running: restart it if its policy says so. @startup:
 * berthd's first look, where Docker's daemon-start rules apply.
 */
static void evaluate(struct watch *w, int startup)
{
    json_t *insp = NULL, *state;
    const char *st, *fin;
    long long count;
    int code, manual, restart;
    uint64_t delay, now = uv_now(w->s->loop);

    if (berth_container_inspect(w->s->e, w->id, &insp, NULL) < 0) {
        watch_drop(w);
        return;
    }
    read_policy(w, insp);
    state = json_object_get(insp, "State");
    st = json_string_value(json_object_get(state, "Status"));
    fin = json_string_value(json_object_get(state, "FinishedAt"));
    if (!st || strcmp(st, "exited") || !fin || !strcmp(fin, w->handled)) {
        json_decref(insp);
        return; /* running again, created, or an exit already dealt with */
    }
    snprintf(w->handled, sizeof(w->handled), "%s", fin);
    snprintf(w->state, sizeof(w->state), "exited");
    code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    manual = json_is_true(json_object_get(state, "ManualStop"));
    count = (long long)json_integer_value(json_object_get(insp, "RestartCount"));
    json_decref(insp);

    if (!strcmp(w->policy, "always"))
        restart = startup || !manual;
    else if (!strcmp(w->policy, "unless-stopped"))
        restart = !manual;
    else if (!strcmp(w->policy, "on-failure"))
        restart = !manual && code != 0 && (w->max == 0 || count < w->max);
    else
        restart = 0;
    if (!restart)
        return;
    if (startup) {
        delay = 0;
    } else {
        if (w->started_at && now - w->started_at >= RAN_LONG_MS)
            w->backoff_ms = 0;
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (w->backoff_ms > BACKOFF_MAX_MS)
            w->backoff_ms = BACKOFF_MAX_MS;
        delay = w->backoff_ms;
    }
    w->startup = startup;
    w->delaying = 1;
    uv_timer_start(&w->delay, on_delay, delay, 0);
}

static void on_scan(uv_timer_t *t)
{
    bd_supervisor_t *s = t->data;
    json_t *list = NULL, *c;
    size_t i;
    int first = s->first;

    s->first = 0;
    if (berth_container_list(s->e, BERTH_LIST_ALL, &list, NULL) < 0)
        return;
    for (struct watch *w = s->watches; w; w = w->next)
        w->mark = 0;
    json_array_foreach (list, i, c) {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *st = json_string_value(json_object_get(c, "State"));
        struct watch *w;

        if (!id || !st)
            continue;
        if (!(w = watch_find(s, id)) && !(w = watch_add(s, id)))
            continue;
        w->mark = 1;
        if (!wanted(w) || w->polling || w->delaying) {
            snprintf(w->state, sizeof(w->state), "%s", st);
            continue;
        }
        if (!strcmp(st, "running") || !strcmp(st, "paused"))
            watch_begin(w);
        else if (!strcmp(st, "exited") && (first || strcmp(w->state, "exited")))
            evaluate(w, first);
        snprintf(w->state, sizeof(w->state), "%s", st);
    }
    json_decref(list);
    /* Gone from the store: stop watching. */
    for (struct watch *w = s->watches, *next; w; w = next) {
        next = w->next;
        if (!w->mark && !w->polling)
            watch_drop(w);
    }
}

int bd_supervisor_new(uv_loop_t *loop, berth_engine_t *e, bd_supervisor_t **ret)
{
    bd_supervisor_t *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->e = e;
    s->first = 1;
    uv_timer_init(loop, &s->scan);
    s->scan.data = s;
    uv_timer_start(&s->scan, on_scan, 0, SCAN_MS);
    *ret = s;
    return 0;
}

void bd_supervisor_watch(bd_supervisor_t *s, const char *id)
{
    struct watch *w;

    if (!s)
        return;
    if (!(w = watch_find(s, id)) && !(w = watch_add(s, id)))
        return;
    w->started_at = uv_now(s->loop);
    snprintf(w->state, sizeof(w->state), "running");
    watch_begin(w);
}

static void scan_closed(uv_handle_t *h)
{
    free(h->data);
}

void bd_supervisor_close(bd_supervisor_t *s)
{
    if (!s)
        return;
    while (s->watches)
        watch_drop(s->watches);
    uv_close((uv_handle_t *)&s->scan, scan_closed);
}
