/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /events: the engine's event log as Docker streams it, one JSON
 * message per line, past events first (between since and until), then new
 * ones until the client goes or until passes.
 *
 * Every client shares one hub: one watch on the store's data file
 * (berth_events_watch_path, written by LMDB on every commit of any
 * process), one read cursor, and each event read once and handed to every
 * client whose filters and times it passes. The hub reads with a
 * read-only transaction, which never waits for a writer, so the loop never
 * blocks on the CLI or a monitor committing. The watch exists only while
 * some client does: an idle berthd is not woken by commits.
 *
 * A client's past events (up to events.max of them) are read by the client
 * itself, a batch per loop turn, before it takes new ones from the hub: a
 * `docker events --since 24h` never holds the loop for the whole log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <berth/engine.h>

#include "api.h"

/* Past events are sent this many examined per loop turn, so a long log never holds the loop. */
#define CATCHUP_BATCH 256

/* One client of GET /events. */
struct ev_client {
    struct ev_client *next, **prevp; /* in hub.clients while listed */
    berth_engine_t *e;
    bd_conn_t *c; /* our reference, dropped once both timers are closed */
    berth_event_filter_t *filter;
    int64_t since, until;  /* ns, 0: unbounded */
    uint64_t sent_through; /* sequence number this client's own reads got to */
    int live;              /* new events are wanted (no until, or one ahead) */
    int catching_up;       /* still reading the past itself; the hub leaves it alone */
    int closes;
    uv_timer_t timer;   /* ends the stream at until */
    uv_timer_t catchup; /* the next batch of past events */
};

static struct {
    berth_engine_t *e;
    uv_loop_t *loop;
    uv_fs_event_t *watch; /* NULL when no client listens */
    uv_timer_t *poll;     /* instead of the watch when inotify can't be had */
    uv_timer_t *settle;   /* the second look after a notification (see on_store_write) */
    int settle_stage;
    uint64_t cursor; /* the last event handed out */
    struct ev_client *clients;
} hub;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void send_msg(struct ev_client *cl, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    size_t n;

    if (!text)
        return;
    n = strlen(text);
    text[n] = '\n';
    bd_stream_write(cl->c, text, n + 1);
    free(text);
}

static int wanted(const struct ev_client *cl, json_t *msg)
{
    int64_t ns = json_integer_value(json_object_get(msg, "timeNano"));

    if ((cl->since && ns < cl->since) || (cl->until && ns > cl->until))
        return 0;
    return berth_event_filter_match(cl->filter, msg);
}

/*
 * Hand every event committed since the last pump to the clients. One event
 * per read, so that each comes with its sequence number: a client whose
 * past events already covered it is not sent it twice.
 */
static void hub_pump(void)
{
    for (;;) {
        json_t *events = NULL;
        uint64_t last = hub.cursor;

        if (berth_events_read(hub.e, hub.cursor, 0, 0, NULL, 1, &events, &last, NULL) < 0 ||
            last == hub.cursor) {
            json_decref(events);
            return;
        }
        hub.cursor = last;
        for (struct ev_client *cl = hub.clients; cl; cl = cl->next) {
            json_t *msg = json_array_get(events, 0);
            if (msg && !cl->catching_up && last > cl->sent_through && wanted(cl, msg))
                send_msg(cl, msg);
        }
        json_decref(events);
    }
}

static void on_settle(uv_timer_t *t)
{
    hub_pump();
    if (hub.settle_stage++ == 0)
        uv_timer_start(t, on_settle, 1000, 0);
}

/*
 * A commit wrote the data file. LMDB publishes the transaction to readers
 * just after its last write, so the notification can come an instant
 * early: read now, and look again 50 ms and 1 s later.
 */
static void on_store_write(uv_fs_event_t *h, const char *file, int events, int status)
{
    (void)h;
    (void)file;
    (void)events;
    (void)status;
    hub_pump();
    if (hub.settle) {
        hub.settle_stage = 0;
        uv_timer_start(hub.settle, on_settle, 50, 0);
    }
}

static void on_poll(uv_timer_t *t)
{
    (void)t;
    hub_pump();
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Watch the store while there are clients; the cursor starts at the newest event. */
static int hub_start(berth_engine_t *e, uv_loop_t *loop)
{
    const char *path = berth_events_watch_path(e);

    if (hub.watch || hub.poll)
        return 0;
    hub.e = e;
    hub.loop = loop;
    if (berth_events_last_seq(e, &hub.cursor, NULL) < 0)
        return -1;
    hub.watch = path ? calloc(1, sizeof(*hub.watch)) : NULL;
    hub.settle = path ? calloc(1, sizeof(*hub.settle)) : NULL;
    if (hub.watch && hub.settle) {
        uv_fs_event_init(loop, hub.watch);
        uv_timer_init(loop, hub.settle);
        if (uv_fs_event_start(hub.watch, on_store_write, path, 0) == 0)
            return 0;
        uv_close((uv_handle_t *)hub.settle, free_handle);
        uv_close((uv_handle_t *)hub.watch, free_handle);
    } else {
        free(hub.watch);
        free(hub.settle);
    }
    hub.watch = NULL;
    hub.settle = NULL;
    /* No inotify (its limits reached): look once a second instead. */
    if (!(hub.poll = calloc(1, sizeof(*hub.poll))))
        return -1;
    uv_timer_init(loop, hub.poll);
    uv_timer_start(hub.poll, on_poll, 1000, 1000);
    return 0;
}

static void hub_stop_if_idle(void)
{
    if (hub.clients)
        return;
    if (hub.watch)
        uv_close((uv_handle_t *)hub.watch, free_handle);
    if (hub.poll)
        uv_close((uv_handle_t *)hub.poll, free_handle);
    if (hub.settle)
        uv_close((uv_handle_t *)hub.settle, free_handle);
    hub.watch = NULL;
    hub.poll = NULL;
    hub.settle = NULL;
}

static void client_closed(uv_handle_t *h)
{
    struct ev_client *cl = h->data;

    if (--cl->closes > 0)
        return;
    bd_conn_unref(cl->c);
    berth_event_filter_free(cl->filter);
    free(cl);
}

static void client_remove(struct ev_client *cl)
{
    if (cl->closes)
        return;
    if (cl->prevp) {
        *cl->prevp = cl->next;
        if (cl->next)
            cl->next->prevp = cl->prevp;
        cl->prevp = NULL;
    }
    bd_on_gone(cl->c, NULL, NULL);
    cl->closes = 2;
    uv_close((uv_handle_t *)&cl->timer, client_closed);
    uv_close((uv_handle_t *)&cl->catchup, client_closed);
    hub_stop_if_idle();
}

/* The client went away: it costs nothing from now on. */
static void client_gone(void *ud)
{
    client_remove(ud);
}

static void client_end(struct ev_client *cl)
{
    bd_stream_end(cl->c);
    client_remove(cl);
}

/* until has come: what was committed up to it is sent, then the stream ends. */
static void on_until(uv_timer_t *t)
{
    struct ev_client *cl = t->data;

    /* Still reading the past: that read ends the stream when it is done. */
    cl->live = 0;
    if (cl->catching_up)
        return;
    hub_pump();
    client_end(cl);
}

/* One batch of the past; then the next turn of the loop, or the live stream, or the end. */
static void on_catchup(uv_timer_t *t)
{
    struct ev_client *cl = t->data;
    json_t *events = NULL, *msg;
    uint64_t last = cl->sent_through;
    size_t i;

    if (berth_events_read(cl->e, cl->sent_through, cl->since, cl->until, cl->filter, CATCHUP_BATCH,
                          &events, &last, NULL) < 0) {
        client_end(cl);
        return;
    }
    json_array_foreach (events, i, msg)
        send_msg(cl, msg);
    json_decref(events);
    if (last != cl->sent_through) {
        cl->sent_through = last;
        uv_timer_start(t, on_catchup, 0, 0);
        return;
    }
    /* The end of the log: from here on the hub hands this client what comes. */
    cl->catching_up = 0;
    if (!cl->live)
        client_end(cl);
}

/* A since/until query value (docker sends Unix seconds[.nanos]); 0 when absent. */
static int query_time(bd_conn_t *c, const bd_request_t *req, const char *name, int64_t now,
                      int64_t *ret_ns)
{
    char v[128];
    berth_err_t err = { 0 };
    int r = bd_query(req, name, v, sizeof(v));

    *ret_ns = 0;
    if (r == 0 || (r == 1 && !v[0]))
        return 0;
    if (r < 0 || berth_parse_time(v, now, ret_ns, &err) < 0) {
        bd_respond_error(c, 400, "invalid %s: %s", name, r < 0 ? "too long" : err.msg);
        return -1;
    }
    return 0;
}

void bd_api_events(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    char filters[4096], since_q[128] = "", until_q[128] = "";
    berth_event_filter_t *filter = NULL;
    berth_err_t err = { 0 };
    int64_t now = now_ns(), since, until;
    uint64_t newest = 0;
    struct ev_client *cl;
    int r, live;

    if (query_time(c, req, "since", now, &since) < 0 ||
        query_time(c, req, "until", now, &until) < 0)
        return;
    bd_query(req, "since", since_q, sizeof(since_q));
    bd_query(req, "until", until_q, sizeof(until_q));
    if (until && since && until < since) {
        bd_respond_error(c, 400, "`since` time (%s) cannot be after `until` time (%s)", since_q,
                         until_q);
        return;
    }
    r = bd_query(req, "filters", filters, sizeof(filters));
    if (r < 0) {
        bd_respond_error(c, 400, "filters too long");
        return;
    }
    if (berth_event_filter_new(r == 1 ? filters : NULL, &filter, &err) < 0) {
        bd_respond_error(c, 400, "%s", err.msg);
        return;
    }
    live = !until || until > now;
    /* The hub starts before this client's first read, so nothing falls in between. */
    if ((live && hub_start(e, bd_conn_loop(c)) < 0) ||
        berth_events_last_seq(e, &newest, &err) < 0 || !(cl = calloc(1, sizeof(*cl)))) {
        berth_event_filter_free(filter);
        hub_stop_if_idle();
        bd_respond_error(c, 500, "cannot read the event log%s%s", err.msg[0] ? ": " : "", err.msg);
        return;
    }
    cl->e = e;
    cl->filter = filter;
    cl->since = since;
    cl->until = until;
    cl->live = live;
    /* As Docker: past events only when a time bound was given, else only new ones. */
    cl->catching_up = since || until;
    cl->sent_through = cl->catching_up ? 0 : newest;
    uv_timer_init(bd_conn_loop(c), &cl->timer);
    uv_timer_init(bd_conn_loop(c), &cl->catchup);
    cl->timer.data = cl->catchup.data = cl;
    cl->c = bd_defer(c);
    bd_on_gone(c, client_gone, cl);
    bd_stream_begin(c, 200, "application/json");
    if (live) {
        cl->next = hub.clients;
        if (hub.clients)
            hub.clients->prevp = &cl->next;
        hub.clients = cl;
        cl->prevp = &hub.clients;
        if (until)
            uv_timer_start(&cl->timer, on_until, (uint64_t)((until - now) / 1000000) + 1, 0);
    }
    if (cl->catching_up)
        uv_timer_start(&cl->catchup, on_catchup, 0, 0);
}
