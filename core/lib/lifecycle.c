/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container state machine (lifecycle.h). The table below is the whole
 * policy: which states each operation accepts, and what a refusal says.
 * Messages follow Docker's wording, since users and scripts know it.
 */
#include <errno.h>
#include <string.h>

#include "containers.h"
#include "lifecycle.h"
#include "util.h"
#include "volumes.h"

static const struct {
    uint32_t bit;
    const char *name;
} state_names[] = {
    { BERTH_ST_CREATED, "created" },   { BERTH_ST_RUNNING, "running" },
    { BERTH_ST_PAUSED, "paused" },     { BERTH_ST_EXITED, "exited" },
    { BERTH_ST_REMOVING, "removing" },
};

const char *berth__state_name(uint32_t state)
{
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(state_names); i++)
        if (state_names[i].bit == state)
            return state_names[i].name;
    return NULL;
}

uint32_t berth__state_parse(const char *name)
{
    for (size_t i = 0; name && i < BERTH_ARRAY_SIZE(state_names); i++)
        if (strcmp(state_names[i].name, name) == 0)
            return state_names[i].bit;
    return 0;
}

uint32_t berth__record_state(json_t *doc)
{
    return berth__state_parse(
        json_string_value(json_object_get(json_object_get(doc, "state"), "Status")));
}

/* The states each operation accepts. */
static uint32_t accepted(berth_lc_op_t op)
{
    switch (op) {
    case BERTH_OP_START:
        return BERTH_ST_CREATED | BERTH_ST_EXITED;
    case BERTH_OP_PAUSE:
        return BERTH_ST_RUNNING;
    case BERTH_OP_UNPAUSE:
        return BERTH_ST_PAUSED;
    case BERTH_OP_STOP:
    case BERTH_OP_KILL:
    case BERTH_OP_EXIT:
        return BERTH_ST_RUNNING | BERTH_ST_PAUSED;
    case BERTH_OP_EXEC:
        return BERTH_ST_RUNNING;
    case BERTH_OP_ATTACH:
        return BERTH_ST_CREATED | BERTH_ST_RUNNING | BERTH_ST_PAUSED;
    case BERTH_OP_REMOVE:
        return BERTH_ST_CREATED | BERTH_ST_EXITED;
    case BERTH_OP_REMOVE_FORCE:
        return BERTH_ST_CREATED | BERTH_ST_RUNNING | BERTH_ST_PAUSED | BERTH_ST_EXITED |
               BERTH_ST_REMOVING;
    }
    return 0;
}

int berth__lc_check(json_t *doc, berth_lc_op_t op, berth_err_t *err)
{
    uint32_t st = berth__record_state(doc);
    const char *id = json_string_value(json_object_get(doc, "id"));
    char shortid[BERTH_CONTAINER_SHORT_ID_LEN + 1] = "?";

    if (st & accepted(op))
        return 0;
    if (id)
        snprintf(shortid, sizeof(shortid), "%s", id);
    if (st == 0)
        return berth_err_set(err, -EINVAL, "container %s has no valid state", shortid);
    if (st == BERTH_ST_REMOVING)
        return berth_err_set(err, -EINVAL, "container %s is being removed", shortid);

    switch (op) {
    case BERTH_OP_START:
        return berth_err_set(err, -EINVAL, "container %s is already %s", shortid,
                             berth__state_name(st));
    case BERTH_OP_PAUSE:
        if (st == BERTH_ST_PAUSED)
            return berth_err_set(err, -EINVAL, "container %s is already paused", shortid);
        return berth_err_set(err, -EINVAL, "container %s is not running", shortid);
    case BERTH_OP_UNPAUSE:
        return berth_err_set(err, -EINVAL, "container %s is not paused", shortid);
    case BERTH_OP_STOP:
    case BERTH_OP_KILL:
    case BERTH_OP_EXIT:
        return berth_err_set(err, -EINVAL, "container %s is not running", shortid);
    case BERTH_OP_EXEC:
        if (st == BERTH_ST_PAUSED)
            return berth_err_set(
                err, -EINVAL, "container %s is paused, unpause the container before exec", shortid);
        return berth_err_set(err, -EINVAL, "container %s is not running", shortid);
    case BERTH_OP_ATTACH:
        return berth_err_set(err, -EINVAL,
                             "you cannot attach to a stopped container, start it first");
    case BERTH_OP_REMOVE:
        return berth_err_set(err, -EBUSY,
                             "cannot remove container %s: container is %s: stop the container "
                             "before removing or force remove",
                             shortid, berth__state_name(st));
    case BERTH_OP_REMOVE_FORCE:
        break;
    }
    return berth_err_set(err, -EINVAL, "container %s: operation not allowed while %s", shortid,
                         berth__state_name(st));
}

static int transition_in(berth_txn_t *txn, const char *ref, berth_lc_op_t op, uint32_t to_state,
                         json_t *state_patch, const char *action, json_t *attrs,
                         json_t **ret_stored, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    json_t *state;
    int r;

    /* Checked against what the store holds now, inside the writer lock. */
    if ((r = berth__container_get_in(txn, ref, &doc, err)) < 0)
        return r;
    if ((r = berth__lc_check(doc, op, err)) < 0)
        return r;
    state = json_object_get(doc, "state");
    if (!json_is_object(state)) {
        state = json_object();
        if (!state || json_object_set_new(doc, "state", state) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    if (state_patch && json_object_update(state, state_patch) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (to_state &&
        json_object_set_new(state, "Status", json_string(berth__state_name(to_state))) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__container_update_in(txn, doc, action ? action : "update", attrs, ret_stored,
                                        err)) < 0)
        return r;
    /* Docker's volume events: "mount" as the container starts, "unmount" as it ends. */
    if (op == BERTH_OP_START && to_state == BERTH_ST_RUNNING)
        return berth__volume_mount_events_in(txn, doc, "mount", err);
    if (op == BERTH_OP_EXIT)
        return berth__volume_mount_events_in(txn, doc, "unmount", err);
    return 0;
}

int berth__lc_transition(berth_store_t *store, const char *ref, berth_lc_op_t op, uint32_t to_state,
                         json_t *state_patch, const char *action, json_t *attrs, json_t **ret_doc,
                         berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *stored = NULL;
    int r;

    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    if ((r = transition_in(txn, ref, op, to_state, state_patch, action, attrs, &stored, err)) < 0)
        return r;
    if ((r = berth__store_txn_commit(TAKE_PTR(txn), err)) < 0)
        return r;
    if (ret_doc)
        *ret_doc = TAKE_PTR(stored);
    return 0;
}

int berth__lc_exit_remove(berth_store_t *store, const char *ref, json_t *state_patch,
                          json_t *die_attrs, json_t *removed_volumes, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *old = NULL;
    int r;

    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    if ((r = transition_in(txn, ref, BERTH_OP_EXIT, BERTH_ST_EXITED, state_patch, "die", die_attrs,
                           NULL, err)) < 0 ||
        (r = berth__container_delete_in(txn, ref, NULL, &old, err)) < 0)
        return r;
    if (removed_volumes &&
        (r = berth__volume_remove_anonymous_in(txn, old, removed_volumes, err)) < 0)
        return r;
    return berth__store_txn_commit(TAKE_PTR(txn), err);
}
