/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container state machine: every operation against every state, the
 * messages refusals carry, and transitions that are one transaction each
 * (a refused one leaves record and event log untouched).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "containers.h"
#include "lifecycle.h"
#include "store.h"
#include "util.h"

struct fx {
    char dir[256];
    berth_store_t *store;
    char id[65];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    json_t *doc;

    snprintf(f->dir, sizeof(f->dir), "%s/berth-lc-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(berth__store_open(f->dir, NULL, &f->store, NULL), 0);
    assert_int_equal(berth__container_id_new(f->id, NULL), 0);
    doc =
        json_pack("{s:s, s:s, s:{s:s}}", "id", f->id, "name", "web", "state", "Status", "created");
    assert_int_equal(berth__container_create(f->store, doc, NULL, NULL, NULL), 0);
    json_decref(doc);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[300];
    berth__store_close(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static json_t *record(uint32_t st)
{
    return json_pack("{s:s, s:{s:s}}", "id",
                     "3f2a0000000000000000000000000000000000000000000000000000000000aa", "state",
                     "Status", berth__state_name(st));
}

static void expect(uint32_t st, berth_lc_op_t op, int want, const char *needle)
{
    json_t *doc = record(st);
    berth_err_t err = { 0 };
    int r = berth__lc_check(doc, op, &err);
    json_decref(doc);
    if (r != want)
        fail_msg("op %d in state %s: got %d, want %d (%s)", op, berth__state_name(st), r, want,
                 err.msg);
    if (needle && !strstr(err.msg, needle))
        fail_msg("op %d in state %s: message '%s' lacks '%s'", op, berth__state_name(st), err.msg,
                 needle);
}

static void test_lifecycle_table(void **state)
{
    expect(BERTH_ST_CREATED, BERTH_OP_START, 0, NULL);
    expect(BERTH_ST_EXITED, BERTH_OP_START, 0, NULL);
    expect(BERTH_ST_RUNNING, BERTH_OP_START, -EINVAL, "container 3f2a00000000 is already running");
    expect(BERTH_ST_PAUSED, BERTH_OP_START, -EINVAL, "already paused");

    expect(BERTH_ST_RUNNING, BERTH_OP_PAUSE, 0, NULL);
    expect(BERTH_ST_PAUSED, BERTH_OP_PAUSE, -EINVAL, "already paused");
    expect(BERTH_ST_EXITED, BERTH_OP_PAUSE, -EINVAL, "is not running");
    expect(BERTH_ST_PAUSED, BERTH_OP_UNPAUSE, 0, NULL);
    expect(BERTH_ST_RUNNING, BERTH_OP_UNPAUSE, -EINVAL, "is not paused");

    expect(BERTH_ST_RUNNING, BERTH_OP_STOP, 0, NULL);
    expect(BERTH_ST_PAUSED, BERTH_OP_KILL, 0, NULL);
    expect(BERTH_ST_CREATED, BERTH_OP_KILL, -EINVAL, "is not running");
    expect(BERTH_ST_EXITED, BERTH_OP_EXIT, -EINVAL, "is not running");

    expect(BERTH_ST_RUNNING, BERTH_OP_EXEC, 0, NULL);
    expect(BERTH_ST_EXITED, BERTH_OP_EXEC, -EINVAL, "is not running");
    expect(BERTH_ST_PAUSED, BERTH_OP_EXEC, -EINVAL, "unpause the container before exec");

    expect(BERTH_ST_CREATED, BERTH_OP_REMOVE, 0, NULL);
    expect(BERTH_ST_EXITED, BERTH_OP_REMOVE, 0, NULL);
    expect(BERTH_ST_RUNNING, BERTH_OP_REMOVE, -EBUSY,
           "cannot remove container 3f2a00000000: container is running: stop the container "
           "before removing or force remove");
    expect(BERTH_ST_PAUSED, BERTH_OP_REMOVE, -EBUSY, "container is paused");
    expect(BERTH_ST_RUNNING, BERTH_OP_REMOVE_FORCE, 0, NULL);
    expect(BERTH_ST_REMOVING, BERTH_OP_START, -EINVAL, "is being removed");

    expect(BERTH_ST_EXITED, BERTH_OP_ATTACH, -EINVAL, "start it first");
}

static void test_lifecycle_state_names(void **state)
{
    assert_string_equal(berth__state_name(BERTH_ST_PAUSED), "paused");
    assert_int_equal(berth__state_parse("exited"), BERTH_ST_EXITED);
    assert_int_equal(berth__state_parse("dead"), 0);
    assert_null(berth__state_name(0x80));
}

static uint64_t events(berth_store_t *s)
{
    berth_txn_t *txn = NULL;
    uint64_t n = 0;
    assert_int_equal(berth__store_txn_begin(s, 0, &txn, NULL), 0);
    assert_int_equal(berth__store_count(txn, BERTH_DB_EVENTS, &n, NULL), 0);
    berth__store_txn_abort(txn);
    return n;
}

static void test_lifecycle_transitions_persist_with_events(void **state)
{
    struct fx *f = *state;
    json_t *doc = NULL, *patch = json_pack("{s:i}", "Pid", 4242);
    berth_err_t err = { 0 };
    uint64_t before = events(f->store);

    assert_int_equal(berth__lc_transition(f->store, "web", BERTH_OP_START, BERTH_ST_RUNNING, patch,
                                          "start", NULL, &doc, &err),
                     0);
    json_decref(patch);
    assert_int_equal(berth__record_state(doc), BERTH_ST_RUNNING);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "state"), "Pid")),
                     4242);
    json_decref(doc);
    assert_int_equal(events(f->store), before + 1);

    /* Persisted: a fresh read sees it. */
    assert_int_equal(berth__container_get(f->store, f->id, &doc, NULL), 0);
    assert_int_equal(berth__record_state(doc), BERTH_ST_RUNNING);
    json_decref(doc);

    /* Refused: nothing changes, no event. */
    assert_int_equal(berth__lc_transition(f->store, "web", BERTH_OP_START, BERTH_ST_RUNNING, NULL,
                                          "start", NULL, NULL, &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "already running"));
    assert_int_equal(
        berth__lc_transition(f->store, "web", BERTH_OP_REMOVE, 0, NULL, NULL, NULL, NULL, &err),
        -EBUSY);
    assert_int_equal(events(f->store), before + 1);

    assert_int_equal(berth__lc_transition(f->store, f->id, BERTH_OP_PAUSE, BERTH_ST_PAUSED, NULL,
                                          "pause", NULL, NULL, &err),
                     0);
    patch = json_pack("{s:i, s:b}", "ExitCode", 137, "OOMKilled", 1);
    assert_int_equal(berth__lc_transition(f->store, f->id, BERTH_OP_EXIT, BERTH_ST_EXITED, patch,
                                          "die", NULL, &doc, &err),
                     0);
    json_decref(patch);
    assert_int_equal(berth__record_state(doc), BERTH_ST_EXITED);
    assert_true(json_is_true(json_object_get(json_object_get(doc, "state"), "OOMKilled")));
    /* Earlier state members survive a patch that doesn't name them. */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "state"), "Pid")),
                     4242);
    json_decref(doc);
    assert_int_equal(events(f->store), before + 3);

    /* Unknown references fail cleanly. */
    assert_int_equal(berth__lc_transition(f->store, "nosuch", BERTH_OP_START, BERTH_ST_RUNNING,
                                          NULL, "start", NULL, NULL, &err),
                     -ENOENT);
}

/* Collect the actions of the events after sequence @after, comma-separated. */
static int action_of(const char *key, json_t *doc, void *userdata)
{
    char *buf = userdata;
    const char *a = json_string_value(json_object_get(doc, "action"));
    (void)key;
    snprintf(buf + strlen(buf), 256 - strlen(buf), "%s%s", *buf ? "," : "", a ? a : "?");
    return 0;
}

static void actions_after(berth_store_t *s, uint64_t after, char buf[256])
{
    berth_txn_t *txn = NULL;
    buf[0] = '\0';
    assert_int_equal(berth__store_txn_begin(s, 0, &txn, NULL), 0);
    assert_int_equal(berth__store_event_walk(txn, after, action_of, buf, NULL), 0);
    berth__store_txn_abort(txn);
}

/* --rm: the exit and the removal in one transaction, both events, in order. */
static void test_lifecycle_exit_remove_is_one_transaction(void **state)
{
    struct fx *f = *state;
    json_t *doc = NULL, *patch = json_pack("{s:i}", "ExitCode", 3);
    json_t *attrs = json_pack("{s:s}", "exitCode", "3");
    berth_err_t err = { 0 };
    uint64_t before;
    char acts[256];

    /* Not running: refused, and the record and the log stay as they were. */
    before = events(f->store);
    assert_int_equal(berth__lc_exit_remove(f->store, f->id, patch, attrs, NULL, &err), -EINVAL);
    assert_int_equal(berth__container_get(f->store, f->id, &doc, NULL), 0);
    assert_int_equal(berth__record_state(doc), BERTH_ST_CREATED);
    json_decref(doc);
    assert_int_equal(events(f->store), before);

    assert_int_equal(berth__lc_transition(f->store, f->id, BERTH_OP_START, BERTH_ST_RUNNING, NULL,
                                          "start", NULL, NULL, &err),
                     0);
    before = events(f->store);
    assert_int_equal(berth__lc_exit_remove(f->store, "web", patch, attrs, NULL, &err), 0);
    assert_int_equal(berth__container_get(f->store, f->id, NULL, NULL), -ENOENT);
    assert_int_equal(events(f->store), before + 2);
    actions_after(f->store, before, acts);
    assert_string_equal(acts, "die,destroy");
    /* The name is free again. */
    assert_int_equal(berth__container_get(f->store, "web", NULL, NULL), -ENOENT);
    assert_int_equal(berth__lc_exit_remove(f->store, f->id, patch, attrs, NULL, &err), -ENOENT);
    json_decref(patch);
    json_decref(attrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_table),
        cmocka_unit_test(test_lifecycle_state_names),
        cmocka_unit_test_setup_teardown(test_lifecycle_exit_remove_is_one_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_transitions_persist_with_events, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}
