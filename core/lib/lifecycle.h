/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container lifecycle: the state machine every container follows and the
 * one-transaction transitions that move a record through it.
 *
 *     created --start--> running <--pause/unpause--> paused
 *        |                  |                          |
 *        |                  +-------- exit ------------+--> exited --start--> running
 *        +--remove-->  (gone)                              exited --remove--> (gone)
 *
 * A transition re-reads the record inside the write transaction, checks the
 * operation against the state it finds there (so two processes racing on one
 * container cannot both win), writes the new state and appends the event,
 * all in that one transaction. A refused operation fails with Docker's
 * wording ("container 3f2a... is not running") and changes nothing.
 *
 * The record's "state" object uses Docker's inspect names: Status, Pid,
 * ShimPid, ExitCode, OOMKilled, Error, StartedAt, FinishedAt (ns since the
 * epoch as integers; the API layer formats them).
 */
#ifndef BERTH_LIFECYCLE_H
#define BERTH_LIFECYCLE_H

#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

#include "store.h"

/* States as a bit set, so operations can name the states they accept. */
#define BERTH_ST_CREATED  0x01u
#define BERTH_ST_RUNNING  0x02u
#define BERTH_ST_PAUSED   0x04u
#define BERTH_ST_EXITED   0x08u
#define BERTH_ST_REMOVING 0x10u

/* "created", "running", ... (Docker's State.Status); NULL for anything else. */
const char *berth__state_name(uint32_t state);
/* The state bit for a name, 0 when unknown. */
uint32_t berth__state_parse(const char *name);
/* The state of a container record (its state.Status), 0 when missing or unknown. */
uint32_t berth__record_state(json_t *doc);

/* Operations whose validity depends on the state. */
typedef enum berth_lc_op {
    BERTH_OP_START,        /* created|exited -> running */
    BERTH_OP_PAUSE,        /* running -> paused */
    BERTH_OP_UNPAUSE,      /* paused -> running */
    BERTH_OP_STOP,         /* running|paused: ask the process to end */
    BERTH_OP_KILL,         /* running|paused: signal the process */
    BERTH_OP_EXIT,         /* running|paused -> exited (the monitor records the exit) */
    BERTH_OP_EXEC,         /* running: start another process */
    BERTH_OP_ATTACH,       /* created|running|paused: connect to the streams */
    BERTH_OP_REMOVE,       /* created|exited -> gone */
    BERTH_OP_REMOVE_FORCE, /* any -> gone (the caller kills first) */
} berth_lc_op_t;

/*
 * Whether @op is allowed for container record @doc. 0 when it is; otherwise
 * -EINVAL (or -EBUSY for removing a running container) with Docker's message
 * naming the container.
 */
int berth__lc_check(json_t *doc, berth_lc_op_t op, berth_err_t *err);

/*
 * In one write transaction: resolve @ref, check @op against the stored
 * state, set state.Status to @to_state (0: keep it) and merge @state_patch
 * (may be NULL, not stolen) into the record's "state" object, write it, and
 * append event @action (NULL: none; "start", "pause", "die", ...). *ret_doc
 * (may be NULL) gets the new record.
 */
int berth__lc_transition(berth_store_t *store, const char *ref, berth_lc_op_t op, uint32_t to_state,
                         json_t *state_patch, const char *action, json_t *attrs, json_t **ret_doc,
                         berth_err_t *err);

/*
 * A container that removes itself when it ends (AutoRemove, docker run
 * --rm): record the exit as berth__lc_transition(BERTH_OP_EXIT,
 * BERTH_ST_EXITED, @state_patch, "die", @die_attrs) would, then remove the
 * record with its "destroy" event, in one write transaction: one durable
 * commit where two would be, on the path every `run --rm` waits for.
 * With @removed_volumes (an array, or NULL), the container's anonymous
 * volumes no other container uses go in the same transaction, as Docker
 * removes them with the container; their names are appended there, for the
 * caller to delete their directories (berth__volume_discard()).
 */
int berth__lc_exit_remove(berth_store_t *store, const char *ref, json_t *state_patch,
                          json_t *die_attrs, json_t *removed_volumes, berth_err_t *err);

#endif /* BERTH_LIFECYCLE_H */
