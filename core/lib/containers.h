/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container records in the metadata store: the `containers` database (key:
 * the 64-hex id) kept consistent with the `names` index (key: the name,
 * value {"v":1,"id":...}), each mutation with its event in the same write
 * transaction (docs/store-format.md).
 *
 * A container document is a JSON object with at least
 *   "v": 1                 record format (added when missing)
 *   "id": 64 lowercase hex
 *   "name": [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 255 bytes, stored without
 *           Docker's leading '/' (one leading '/' is accepted and stripped)
 *   "created_ns": integer, wall clock (added when missing)
 * Every other member belongs to the caller (the lifecycle layer) and is stored
 * as given.
 *
 * References (get, delete) resolve like Docker: the full id, then an exact
 * name, then a unique id prefix of at least one hex digit. Several matches
 * are -EINVAL ("... is ambiguous ..."); none is -ENOENT ("no such container:
 * X").
 *
 * Each function without _in is one transaction of its own: a mutation is one
 * durable write transaction, a read one read-only transaction. The _in
 * variants work inside a caller's write transaction so that the lifecycle
 * layer can combine a container change with others; when one of them fails,
 * the caller must abort the transaction (it may hold part of the change).
 *
 * Documents are never stolen; *ret_doc out-parameters (all may be NULL) are
 * new references, set only on success. Events carry type "container", the
 * container id, and attributes as berth__container_event_attrs() makes them
 * with the caller's @attrs (may be NULL, not stolen) as the extra ones.
 */
#ifndef BERTH_CONTAINERS_H
#define BERTH_CONTAINERS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

#include "store.h"

#define BERTH_CONTAINER_ID_LEN       64
#define BERTH_CONTAINER_SHORT_ID_LEN 12
#define BERTH_CONTAINER_NAME_MAX     255
/* The container record format this build writes ("v"). */
#define BERTH_CONTAINER_RECORD_V 1

/* A new random id: 64 lowercase hex digits from getrandom(2) (32 bytes) and a NUL. */
int berth__container_id_new(char ret_id[BERTH_CONTAINER_ID_LEN + 1], berth_err_t *err);
/* 1 when @id is 64 lowercase hex digits, else 0. */
int berth__container_id_is_valid(const char *id);
/* 1 when @name (without a leading '/') follows Docker's rule, else 0. */
int berth__container_name_is_valid(const char *name);

/*
 * Create: validate @doc, refuse a name in use (-EEXIST, "name \"x\" is
 * already in use by container <12 hex>") or an existing id (-EEXIST), store
 * the record and its name, append event "create". *ret_doc gets the stored
 * document (with "v", "created_ns" and the bare name).
 */
int berth__container_create(berth_store_t *store, json_t *doc, json_t *attrs, json_t **ret_doc,
                            berth_err_t *err);
int berth__container_create_in(berth_txn_t *txn, json_t *doc, json_t *attrs, json_t **ret_doc,
                               berth_err_t *err);

/* Resolve @ref (see above) to the full id, copied into ret_id. */
int berth__container_resolve_in(berth_txn_t *txn, const char *ref,
                                char ret_id[BERTH_CONTAINER_ID_LEN + 1], berth_err_t *err);
/* The document @ref designates, in *ret_doc (required). */
int berth__container_get(berth_store_t *store, const char *ref, json_t **ret_doc, berth_err_t *err);
int berth__container_get_in(berth_txn_t *txn, const char *ref, json_t **ret_doc, berth_err_t *err);

/*
 * Replace the record whose "id" is @doc's (-ENOENT when there is none) with
 * @doc. A changed "name" moves the names entry (-EEXIST when the new name is
 * taken by another container). "created_ns" is kept from the old record when
 * @doc has none. The event's action is @action, or when NULL "rename" for a
 * changed name (attribute "oldName" added) and "update" otherwise.
 */
int berth__container_update(berth_store_t *store, json_t *doc, const char *action, json_t *attrs,
                            json_t **ret_doc, berth_err_t *err);
int berth__container_update_in(berth_txn_t *txn, json_t *doc, const char *action, json_t *attrs,
                               json_t **ret_doc, berth_err_t *err);

/* Delete the container @ref designates and its name; event "destroy". *ret_doc: the old record. */
int berth__container_delete(berth_store_t *store, const char *ref, json_t *attrs, json_t **ret_doc,
                            berth_err_t *err);
int berth__container_delete_in(berth_txn_t *txn, const char *ref, json_t *attrs, json_t **ret_doc,
                               berth_err_t *err);

/*
 * A container event's attributes as Docker gives them: the container's
 * labels (config.Labels), "image" (config.Image, the name it was created
 * from; absent for a rootfs container), "name" (without '/'), then @extra's
 * members (may be NULL, not stolen) over those. *ret_attrs: a new object.
 */
int berth__container_event_attrs(json_t *doc, json_t *extra, json_t **ret_attrs, berth_err_t *err);
/* Append event @action for container record @doc in @txn, attributes as above. */
int berth__container_event_in(berth_txn_t *txn, json_t *doc, const char *action, json_t *extra,
                              berth_err_t *err);
/*
 * The same in a write transaction of its own, for events that change no
 * record (kill, stop, attach, resize, exec_*, oom): the attributes come
 * from the record @ref designates now, or from @fallback (may be NULL)
 * when it is gone, so that an event about a container that removed itself
 * meanwhile still names it.
 */
int berth__container_event(berth_store_t *store, const char *ref, json_t *fallback,
                           const char *action, json_t *extra, berth_err_t *err);
/* @n events in that one transaction: @actions[i] with @extras[i] (@extras may be NULL). */
int berth__container_events(berth_store_t *store, const char *ref, json_t *fallback, size_t n,
                            const char *const *actions, json_t *const *extras, berth_err_t *err);

/* Every container document, in id order, as a new JSON array (read-only transaction). */
int berth__container_list(berth_store_t *store, json_t **ret_array, berth_err_t *err);
int berth__container_list_in(berth_txn_t *txn, json_t **ret_array, berth_err_t *err);
/* Number of containers. */
int berth__container_count(berth_store_t *store, uint64_t *ret_count, berth_err_t *err);

/*
 * Summaries: what `ps` and GET /containers/json show, for every container,
 * without building a jansson tree per record. Each record's bytes are read
 * once by the strict scanner (jscan.h), which checks the whole document as
 * the store's parser would and decodes only the members below; so listing
 * 10,000 containers costs milliseconds, not the ~40 us per record of
 * berth__container_list() (docs/benchmarks.md).
 *
 * Members, from the record (missing or null members, and members of another
 * type than the one named, give "" or 0 like jansson's json_*_value()):
 */
#define BERTH_CONTAINER_STATE_MAX     16  /* state.Status, e.g. "running" */
#define BERTH_CONTAINER_ISOLATION_MAX 32  /* "isolation" */
#define BERTH_CONTAINER_COMMAND_MAX   256 /* Entrypoint + Cmd, like Docker's ps column */

typedef struct berth_container_summary {
    char id[BERTH_CONTAINER_ID_LEN + 1];     /* "id", 64 lowercase hex */
    char name[BERTH_CONTAINER_NAME_MAX + 1]; /* "name", without a leading '/' */
    char state[BERTH_CONTAINER_STATE_MAX];   /* state.Status; "" when missing */
    char isolation[BERTH_CONTAINER_ISOLATION_MAX];
    /*
     * config.Entrypoint then config.Cmd, each an array of strings (anything
     * else adds nothing; an element that is not a string adds ""), joined
     * by single spaces. Cut at the last whole UTF-8 character that fits;
     * command_truncated is then 1.
     */
    char command[BERTH_CONTAINER_COMMAND_MAX];
    int command_truncated;
    int64_t created_ns;  /* "created_ns" */
    int64_t started_ns;  /* state.StartedAt, ns since the epoch */
    int64_t finished_ns; /* state.FinishedAt */
    int64_t exit_code;   /* state.ExitCode */
    int64_t pid;         /* state.Pid */
    char health[16];     /* state.Health.Status ("starting", "healthy", ...); "" when none */
    /*
     * The record's bytes, borrowed from the store's map: valid only for
     * berth__container_summaries_in(), until its (read-only) transaction
     * ends, for a second look at the records a listing keeps
     * (berth__container_detail_scan()). NULL from the other functions.
     */
    const void *raw;
    size_t raw_len;
} berth_container_summary_t;

/*
 * Every container's summary, in id order (the order of berth__container_list),
 * as one array of *ret_n items in *ret_items (free it with
 * berth__container_summaries_free(); NULL when there are none). A record
 * that is not valid JSON, not an object with an integer "v", or has no valid
 * "id" or "name" fails the listing with -EBADMSG naming the store and key,
 * as berth__container_list() does; strings too long for their member are
 * cut as described above. One read-only transaction; _in works in the
 * caller's.
 */
int berth__container_summaries(berth_store_t *store, berth_container_summary_t **ret_items,
                               size_t *ret_n, berth_err_t *err);
int berth__container_summaries_in(berth_txn_t *txn, berth_container_summary_t **ret_items,
                                  size_t *ret_n, berth_err_t *err);
/* NULL allowed. */
void berth__container_summaries_free(berth_container_summary_t *items);

/*
 * One summary from a record's bytes (@data, @len: a stored value), the way
 * the listing reads it, into the caller's @sum (written in place, so that a
 * listing fills its array without copies; its contents are unspecified on
 * failure). err says "invalid JSON at byte N: ..." or which member is
 * wrong. And the same from a parsed record @doc, with jansson (*ret_summary
 * set on success only): the two agree on every record (the unit tests check
 * it), so callers that hold a document already need not serialise it.
 */
int berth__container_summary_parse(const void *data, size_t len, berth_container_summary_t *sum,
                                   berth_err_t *err);
int berth__container_summary_from_doc(json_t *doc, berth_container_summary_t *ret_summary,
                                      berth_err_t *err);

/*
 * The members Docker's container list shows beyond the summary, as the
 * bytes of their values in a record (compact JSON, borrowed from @data;
 * NULL when the member is missing): config.Image, config.Labels,
 * config.ExposedPorts, image_id, mounts, networks, host_config.NetworkMode.
 * Each is one whole JSON value, so json_loadb(..., JSON_DECODE_ANY) reads
 * it. A later duplicate member replaces an earlier one, as in jansson.
 */
typedef struct berth_container_detail {
    struct {
        const char *data;
        size_t len;
    } image, labels, exposed_ports, image_id, mounts, networks, network_mode;
} berth_container_detail_t;

/* Scan record @data (@len bytes) for them; -EBADMSG (err says where) on bad JSON. */
int berth__container_detail_scan(const void *data, size_t len, berth_container_detail_t *d,
                                 berth_err_t *err);

#endif /* BERTH_CONTAINERS_H */
