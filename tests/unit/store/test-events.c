/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event log as readers see it (events.h, berth/engine.h): Docker's
 * message shape, Docker's filters and times, retention in the store, reads
 * through an engine, and the wake-up a commit gives a watcher.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "containers.h"
#include "engine-internal.h"
#include "events.h"
#include "store.h"
#include "util.h"

#include "store-test.h"

#define assert_ok(expr, err)                                                                       \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s = %d: %s", #expr, rc_, (err).msg);                                        \
    } while (0)

static json_t *stored_event(const char *type, const char *action, const char *id, json_t *attrs,
                            int64_t ns)
{
    json_t *ev = json_pack("{s:i, s:i, s:I, s:s, s:s, s:s, s:o}", "v", 1, "seq", 1, "time_ns",
                           (json_int_t)ns, "type", type, "action", action, "id", id, "attributes",
                           attrs ? attrs : json_object());
    assert_non_null(ev);
    return ev;
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

/* ---- Docker's shape ---- */

static void test_events_docker_shape_container(void **state)
{
    json_t *ev = stored_event(
        "container", "die", "abc",
        json_pack("{s:s, s:s, s:s, s:i}", "image", "demo", "name", "web", "exitCode", "3", "n", 7),
        1700000000123456789LL);
    json_t *msg = berth__event_to_docker(ev);

    (void)state;
    assert_non_null(msg);
    assert_string_equal(str_at(msg, "Type", NULL), "container");
    assert_string_equal(str_at(msg, "Action", NULL), "die");
    assert_string_equal(str_at(json_object_get(msg, "Actor"), "ID", NULL), "abc");
    assert_string_equal(str_at(json_object_get(msg, "Actor"), "Attributes", "exitCode"), "3");
    /* Docker's attributes are strings only. */
    assert_string_equal(str_at(json_object_get(msg, "Actor"), "Attributes", "n"), "7");
    assert_string_equal(str_at(msg, "scope", NULL), "local");
    assert_int_equal(json_integer_value(json_object_get(msg, "time")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(msg, "timeNano")), 1700000000123456789LL);
    /* The deprecated members moby fills for containers. */
    assert_string_equal(str_at(msg, "status", NULL), "die");
    assert_string_equal(str_at(msg, "id", NULL), "abc");
    assert_string_equal(str_at(msg, "from", NULL), "demo");
    json_decref(msg);
    json_decref(ev);
}

static void test_events_docker_shape_others(void **state)
{
    json_t *img = stored_event("image", "tag", "sha256:x", json_pack("{s:s}", "name", "a:1"), 5);
    json_t *vol = stored_event("volume", "create", "v1", NULL, 5);
    json_t *bad = json_pack("{s:s, s:s}", "type", "container", "action", "start");
    json_t *msg;

    (void)state;
    msg = berth__event_to_docker(img);
    assert_string_equal(str_at(msg, "status", NULL), "tag");
    assert_null(json_object_get(msg, "from"));
    json_decref(msg);
    msg = berth__event_to_docker(vol);
    assert_string_equal(str_at(msg, "Type", NULL), "volume");
    assert_null(json_object_get(msg, "status"));
    assert_null(json_object_get(msg, "id"));
    json_decref(msg);
    /* No time: not an event this build can show. */
    assert_null(berth__event_to_docker(bad));
    json_decref(img);
    json_decref(vol);
    json_decref(bad);
}

/* ---- filters ---- */

static json_t *docker_msg(const char *type, const char *action, const char *id, json_t *attrs)
{
    json_t *ev = stored_event(type, action, id, attrs, 1000);
    json_t *msg = berth__event_to_docker(ev);
    json_decref(ev);
    assert_non_null(msg);
    return msg;
}

static int passes(const char *filters_json, json_t *msg)
{
    berth_event_filter_t *f = NULL;
    berth_err_t err = { 0 };
    int r;

    assert_ok(berth_event_filter_new(filters_json, &f, &err), err);
    r = berth_event_filter_match(f, msg);
    berth_event_filter_free(f);
    return r;
}

static void test_events_filter_parse(void **state)
{
    berth_event_filter_t *f = NULL;
    berth_err_t err = { 0 };

    (void)state;
    assert_ok(berth_event_filter_new(NULL, &f, &err), err);
    berth_event_filter_free(f);
    assert_ok(berth_event_filter_new("{\"type\":{\"container\":true}}", &f, &err), err);
    berth_event_filter_free(f);
    assert_ok(berth_event_filter_new("{\"type\":[\"container\"]}", &f, &err), err);
    assert_ok(berth_event_filter_add(f, "event=die", &err), err);
    assert_int_equal(berth_event_filter_add(f, "nokey", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "name=value"));
    assert_int_equal(berth_event_filter_add(f, "colour=red", &err), -EINVAL);
    assert_string_equal(err.msg, "invalid filter 'colour'");
    berth_event_filter_free(f);
    f = NULL;
    assert_int_equal(berth_event_filter_new("{\"type\":", &f, &err), -EINVAL);
    assert_int_equal(berth_event_filter_new("[1]", &f, &err), -EINVAL);
    assert_int_equal(berth_event_filter_new("{\"type\":5}", &f, &err), -EINVAL);
    assert_int_equal(berth_event_filter_new("{\"type\":[5]}", &f, &err), -EINVAL);
    assert_int_equal(berth_event_filter_new("{\"bogus\":[\"x\"]}", &f, &err), -EINVAL);
    assert_string_equal(err.msg, "invalid filter 'bogus'");
    assert_null(f);
}

static void test_events_filter_match(void **state)
{
    const char *id = "4e6c1e1b2314d6260206cceb41167144a30631075d26a18211fde8ceb12fd2e7";
    json_t *die = docker_msg("container", "die", id,
                             json_pack("{s:s, s:s, s:s, s:s}", "image", "busybox:1.36", "name",
                                       "web", "exitCode", "0", "tier", "front"));
    json_t *exec = docker_msg("container", "exec_start: sh -c ls", id,
                              json_pack("{s:s, s:s}", "image", "demo", "name", "web"));
    json_t *tag = docker_msg("image", "tag", "sha256:aa", json_pack("{s:s}", "name", "app:2"));

    (void)state;
    assert_true(passes(NULL, die));
    assert_true(passes("{\"type\":[\"container\"]}", die));
    assert_false(passes("{\"type\":[\"image\"]}", die));
    /* Values of one key are alternatives. */
    assert_true(passes("{\"type\":[\"image\",\"container\"]}", die));
    assert_true(passes("{\"event\":{\"die\":true}}", die));
    assert_false(passes("{\"event\":{\"start\":true}}", die));
    /* A value without ':' stands for the actions it starts, as moby's exec_* filters. */
    assert_true(passes("{\"event\":[\"exec_start\"]}", exec));
    assert_false(passes("{\"event\":[\"exec\"]}", exec));
    assert_true(passes("{\"event\":[\"exec_start: sh -c ls\"]}", exec));
    /* Containers: the exact name or an id prefix. */
    assert_true(passes("{\"container\":[\"web\"]}", die));
    assert_false(passes("{\"container\":[\"we\"]}", die));
    assert_true(passes("{\"container\":[\"4e6c1e\"]}", die));
    assert_false(passes("{\"container\":[\"other\"]}", tag));
    /* Images: the id, the name, with or without the tag. */
    assert_true(passes("{\"image\":[\"busybox\"]}", die));
    assert_true(passes("{\"image\":[\"busybox:1.36\"]}", die));
    assert_false(passes("{\"image\":[\"busybox:1.35\"]}", die));
    assert_true(passes("{\"image\":[\"app\"]}", tag));
    assert_true(passes("{\"image\":[\"sha256:aa\"]}", tag));
    /* Labels: every value must hold, key alone or key=value. */
    assert_true(passes("{\"label\":[\"tier\"]}", die));
    assert_true(passes("{\"label\":[\"tier=front\"]}", die));
    assert_false(passes("{\"label\":[\"tier=back\"]}", die));
    assert_false(passes("{\"label\":[\"tier\",\"zone\"]}", die));
    /* Keys must all match. */
    assert_true(
        passes("{\"type\":[\"container\"],\"event\":[\"die\"],\"scope\":[\"local\"]}", die));
    assert_false(passes("{\"type\":[\"container\"],\"event\":[\"start\"]}", die));
    assert_false(passes("{\"scope\":[\"swarm\"]}", die));
    assert_false(passes("{\"volume\":[\"v\"]}", die));
    json_decref(die);
    json_decref(exec);
    json_decref(tag);
}

/* ---- times ---- */

static void test_events_parse_time(void **state)
{
    const int64_t now = 1800000000LL * 1000000000;
    berth_err_t err = { 0 };
    int64_t ns = 0;

    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    assert_ok(berth_parse_time("10m", now, &ns, &err), err);
    assert_int_equal(ns, now - 600LL * 1000000000);
    assert_ok(berth_parse_time("1h30m", now, &ns, &err), err);
    assert_int_equal(ns, now - 5400LL * 1000000000);
    assert_ok(berth_parse_time("1.5s", now, &ns, &err), err);
    assert_int_equal(ns, now - 1500000000LL);
    assert_ok(berth_parse_time("300ms", now, &ns, &err), err);
    assert_int_equal(ns, now - 300000000LL);
    assert_ok(berth_parse_time("-2h", now, &ns, &err), err);
    assert_int_equal(ns, now + 7200LL * 1000000000);
    assert_ok(berth_parse_time("0", now, &ns, &err), err);
    assert_int_equal(ns, now);
    /* Unix seconds, as the docker CLI sends them. */
    assert_ok(berth_parse_time("1700000000", now, &ns, &err), err);
    assert_int_equal(ns, 1700000000LL * 1000000000);
    assert_ok(berth_parse_time("1700000000.000000005", now, &ns, &err), err);
    assert_int_equal(ns, 1700000000LL * 1000000000 + 5);
    assert_ok(berth_parse_time("1700000000.5", now, &ns, &err), err);
    assert_int_equal(ns, 1700000000LL * 1000000000 + 500000000);
    /* RFC 3339 and the shorter forms. */
    assert_ok(berth_parse_time("2023-11-14T22:13:20Z", now, &ns, &err), err);
    assert_int_equal(ns, 1700000000LL * 1000000000);
    assert_ok(berth_parse_time("2023-11-14T22:13:20.25Z", now, &ns, &err), err);
    assert_int_equal(ns, 1700000000LL * 1000000000 + 250000000);
    assert_ok(berth_parse_time("2023-11-14T23:13:20+01:00", now, &ns, &err), err);
    assert_int_equal(ns, 1700000000LL * 1000000000);
    assert_ok(berth_parse_time("2023-11-14T22:13:20", now, &ns, &err), err);
    assert_int_equal(ns, 1700000000LL * 1000000000);
    assert_ok(berth_parse_time("2023-11-14", now, &ns, &err), err);
    assert_int_equal(ns, 1699920000LL * 1000000000);
    /* Anything else is one line naming the value. */
    assert_int_equal(berth_parse_time("10", now, &ns, NULL), 0); /* seconds, not a duration */
    assert_int_equal(berth_parse_time("yesterday", now, &ns, &err), -EINVAL);
    assert_string_equal(err.msg, "failed to parse value as time or duration: \"yesterday\"");
    assert_int_equal(berth_parse_time("10x", now, &ns, &err), -EINVAL);
    assert_int_equal(berth_parse_time("", now, &ns, &err), -EINVAL);
    assert_int_equal(berth_parse_time("1.", now, &ns, &err), -EINVAL);
    assert_int_equal(berth_parse_time("2023-11-14T22:13:20+1", now, &ns, &err), -EINVAL);
    assert_int_equal(berth_parse_time("2023-13-45", now, &ns, &err), -EINVAL);
}

/* ---- retention ---- */

static uint64_t first_seq(berth_store_t *st)
{
    berth_txn_t *txn = NULL;
    char **keys = NULL;
    uint64_t seq;

    assert_int_equal(berth__store_txn_begin(st, 0, &txn, NULL), 0);
    assert_int_equal(berth__store_keys(txn, BERTH_DB_EVENTS, NULL, 1, &keys, NULL), 0);
    seq = keys[0] ? strtoull(keys[0], NULL, 10) : 0;
    berth__strv_free(keys);
    berth__store_txn_abort(txn);
    return seq;
}

static uint64_t event_count(berth_store_t *st)
{
    berth_txn_t *txn = NULL;
    uint64_t n = 0;

    assert_int_equal(berth__store_txn_begin(st, 0, &txn, NULL), 0);
    assert_int_equal(berth__store_count(txn, BERTH_DB_EVENTS, &n, NULL), 0);
    berth__store_txn_abort(txn);
    return n;
}

static void append_events(berth_store_t *st, int n)
{
    for (int i = 0; i < n; i++) {
        berth_txn_t *txn = NULL;
        berth_err_t err = { 0 };
        assert_ok(berth__store_txn_begin(st, 1, &txn, &err), err);
        assert_ok(berth__store_event_append(txn, "container", "start", "x", NULL, NULL, &err), err);
        assert_ok(berth__store_txn_commit(txn, &err), err);
    }
}

static void test_events_retention(void **state)
{
    struct test_dir *d = *state;
    berth_store_opts_t opts = { .events_max = 5 };
    berth_store_t *st = NULL;
    berth_txn_t *txn = NULL;
    berth_err_t err = { 0 };
    uint64_t last = 0;

    assert_ok(berth__store_open(d->store, &opts, &st, &err), err);
    assert_int_equal(berth__store_events_max(st), 5);
    append_events(st, 4);
    assert_int_equal(event_count(st), 4);
    append_events(st, 8);
    /* The newest five, numbered on: pruning never reuses a number. */
    assert_int_equal(event_count(st), 5);
    assert_int_equal(first_seq(st), 8);
    assert_ok(berth__store_txn_begin(st, 0, &txn, &err), err);
    assert_ok(berth__store_event_last(txn, &last, &err), err);
    berth__store_txn_abort(txn);
    assert_int_equal(last, 12);
    /* Several events in one transaction: the bound holds at the commit. */
    assert_ok(berth__store_txn_begin(st, 1, &txn, &err), err);
    for (int i = 0; i < 7; i++)
        assert_ok(berth__store_event_append(txn, "image", "tag", "y", NULL, NULL, &err), err);
    assert_ok(berth__store_txn_commit(txn, &err), err);
    assert_int_equal(event_count(st), 5);
    assert_int_equal(first_seq(st), 15);
    berth__store_close(st);

    /* A lower bound (the config changed): the next append brings the log down to it. */
    opts.events_max = 2;
    assert_ok(berth__store_open(d->store, &opts, &st, &err), err);
    assert_int_equal(event_count(st), 5);
    append_events(st, 1);
    assert_int_equal(event_count(st), 2);
    assert_int_equal(first_seq(st), 19);
    berth__store_close(st);

    /* The default. */
    assert_ok(berth__store_open(d->store, NULL, &st, &err), err);
    assert_int_equal(berth__store_events_max(st), BERTH_STORE_EVENTS_MAX);
    berth__store_close(st);
}

static int parse_text(const char *text, berth_config_t **ret, berth_err_t *err)
{
    return berth__config_parse(text, strlen(text), NULL, ret, err);
}

static void test_events_config_max(void **state)
{
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };
    json_t *j;

    (void)state;
    assert_ok(parse_text("{}", &cfg, &err), err);
    assert_int_equal(cfg->events_max, 10000);
    berth__config_free(cfg);
    assert_ok(parse_text("{\"events\":{\"max\":250}}", &cfg, &err), err);
    assert_int_equal(cfg->events_max, 250);
    j = berth__config_to_json(cfg);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "events"), "max")), 250);
    json_decref(j);
    berth__config_free(cfg);
    cfg = NULL;
    assert_int_equal(parse_text("{\"events\":{\"max\":0}}", &cfg, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "events.max"));
    assert_int_equal(parse_text("{\"events\":{\"max\":\"9\"}}", &cfg, &err), -EINVAL);
    assert_int_equal(parse_text("{\"events\":{\"keep\":9}}", &cfg, &err), -EINVAL);
    assert_null(cfg);
}

/* ---- container attributes ---- */

static void test_events_container_attrs(void **state)
{
    json_t *doc =
        json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s, s:i}}}", "id", "x", "name", "web", "config",
                  "Image", "demo", "Labels", "tier", "front", "name", "label-loses", "bad", 1);
    json_t *extra = json_pack("{s:s}", "exitCode", "3"), *a = NULL;
    berth_err_t err = { 0 };

    (void)state;
    assert_ok(berth__container_event_attrs(doc, extra, &a, &err), err);
    assert_string_equal(json_string_value(json_object_get(a, "tier")), "front");
    assert_string_equal(json_string_value(json_object_get(a, "image")), "demo");
    /* The container's name wins over a label of that name, as in Docker. */
    assert_string_equal(json_string_value(json_object_get(a, "name")), "web");
    assert_string_equal(json_string_value(json_object_get(a, "exitCode")), "3");
    assert_null(json_object_get(a, "bad"));
    json_decref(a);
    json_decref(extra);
    extra = json_array();
    assert_int_equal(berth__container_event_attrs(doc, extra, &a, &err), -EINVAL);
    json_decref(doc);
    json_decref(extra);
}

/* ---- reading through an engine, and the watch ---- */

static void test_events_read_and_watch(void **state)
{
    struct test_dir *d = *state;
    berth_engine_opts_t o = { .struct_size = sizeof(o),
                              .flags = BERTH_ENGINE_F_NO_PLUGINS | BERTH_ENGINE_F_IGNORE_ENV };
    char root[400], run[400];
    berth_event_filter_t *f = NULL;
    berth_engine_t *e = NULL;
    berth_err_t err = { 0 };
    berth_txn_t *txn = NULL;
    json_t *evs = NULL, *attrs = json_pack("{s:s}", "name", "one");
    uint64_t last = 0, seq = 0;
    int64_t mid;
    int fd = -1;
    struct pollfd pfd;

    snprintf(root, sizeof(root), "%s/root", d->root);
    snprintf(run, sizeof(run), "%s/run", d->root);
    o.root = root;
    o.runroot = run;
    assert_ok(berth_engine_open(&o, &e, &err), err);
    assert_ok(berth_events_last_seq(e, &last, &err), err);
    assert_int_equal(last, 0);
    assert_non_null(strstr(berth_events_watch_path(e), "/store/data.mdb"));
    assert_ok(berth_events_watch_open(e, &fd, &err), err);
    berth_events_watch_drain(fd);

    assert_ok(berth__store_txn_begin(berth__engine_store(e), 1, &txn, &err), err);
    assert_ok(berth__store_event_append(txn, "container", "create", "c1", attrs, NULL, &err), err);
    assert_ok(berth__store_event_append(txn, "image", "tag", "sha256:i", NULL, NULL, &err), err);
    assert_ok(berth__store_txn_commit(txn, &err), err);
    /* The commit woke the watcher. */
    pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    berth_events_watch_drain(fd);
    pfd.revents = 0;
    assert_int_equal(poll(&pfd, 1, 0), 0);
    mid = berth__now_ns();
    usleep(2000);
    assert_ok(berth__store_txn_begin(berth__engine_store(e), 1, &txn, &err), err);
    assert_ok(berth__store_event_append(txn, "container", "die", "c1", NULL, NULL, &err), err);
    assert_ok(berth__store_txn_commit(txn, &err), err);
    assert_int_equal(poll(&pfd, 1, 2000), 1);

    /* Everything, in order. */
    assert_ok(berth_events_read(e, 0, 0, 0, NULL, 0, &evs, &seq, &err), err);
    assert_int_equal(json_array_size(evs), 3);
    assert_int_equal(seq, 3);
    assert_string_equal(str_at(json_array_get(evs, 0), "Action", NULL), "create");
    assert_string_equal(str_at(json_array_get(evs, 2), "Action", NULL), "die");
    json_decref(evs);
    /* After a sequence number, bounded work per call. */
    assert_ok(berth_events_read(e, 1, 0, 0, NULL, 1, &evs, &seq, &err), err);
    assert_int_equal(json_array_size(evs), 1);
    assert_int_equal(seq, 2);
    assert_string_equal(str_at(json_array_get(evs, 0), "Type", NULL), "image");
    json_decref(evs);
    assert_ok(berth_events_read(e, 3, 0, 0, NULL, 0, &evs, &seq, &err), err);
    assert_int_equal(json_array_size(evs), 0);
    assert_int_equal(seq, 3);
    json_decref(evs);
    /* Times: since and until are inclusive bounds on the commit time. */
    assert_ok(berth_events_read(e, 0, mid, 0, NULL, 0, &evs, &seq, &err), err);
    assert_int_equal(json_array_size(evs), 1);
    json_decref(evs);
    assert_ok(berth_events_read(e, 0, 0, mid, NULL, 0, &evs, &seq, &err), err);
    assert_int_equal(json_array_size(evs), 2);
    assert_int_equal(seq, 3); /* examined all the same */
    json_decref(evs);
    /* Filters. */
    assert_ok(berth_event_filter_new("{\"type\":{\"container\":true}}", &f, &err), err);
    assert_ok(berth_events_read(e, 0, 0, 0, f, 0, &evs, &seq, &err), err);
    assert_int_equal(json_array_size(evs), 2);
    json_decref(evs);
    berth_event_filter_free(f);

    close(fd);
    json_decref(attrs);
    berth_engine_close(e);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_dir_setup, test_dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_events_docker_shape_container),
        T(test_events_docker_shape_others),
        T(test_events_filter_parse),
        T(test_events_filter_match),
        T(test_events_parse_time),
        T(test_events_retention),
        T(test_events_config_max),
        T(test_events_container_attrs),
        T(test_events_read_and_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
