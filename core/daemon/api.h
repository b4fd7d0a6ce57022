/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Docker Engine API routes berthd serves (docs/daemon.md lists them),
 * over the engine's public API (berth/engine.h): the same store, so
 * containers and images made with `berth` appear to the docker CLI and the
 * reverse.
 *
 * Paths are accepted with and without a /v1.NN prefix; a version outside
 * [BD_API_MIN, BD_API_MAX] gets 400 as Docker answers it. Errors are
 * {"message"} JSON with Docker's status codes: 404 for what does not
 * exist, 400 for bad input, 409 for conflicts, 500 otherwise.
 */
#ifndef BERTH_DAEMON_API_H
#define BERTH_DAEMON_API_H

#include <berth/engine.h>

#include "http.h"
#include "supervise.h"

#define BD_API_MAX "1.50"
#define BD_API_MIN "1.24"

/* ---- shared by the route files (api-util.c) ---- */

/*
 * Docker's status for an engine error code: 404 for -ENOENT, 400 for bad
 * input (-EINVAL, -ENAMETOOLONG, -E2BIG), 409 for conflicts (-EEXIST,
 * -EBUSY), 501 for -ENOTSUP, 500 otherwise.
 */
int bd_status_of(int r);
/* The engine's error as Docker's {"message"} with bd_status_of's status. */
void bd_respond_err(bd_conn_t *c, int r, const berth_err_t *err);
/* A lookup's failure: Docker's 404 "No such <what>: <ref>" for a missing one, else as above. */
void bd_respond_lookup(bd_conn_t *c, int r, const berth_err_t *err, const char *what,
                       const char *ref);
/*
 * ?filters=<JSON> as a new object in Docker's shape {"key": {"value": true}}
 * (*ret NULL when absent; the older {"key": ["value"]} is turned into it).
 * Answers 400 itself and returns -1 when malformed.
 */
int bd_query_filters(bd_conn_t *c, const bd_request_t *req, json_t **ret);
/* Docker's query booleans: absent, "", 0, no, false, none (any case) are false. */
int bd_query_bool(const bd_request_t *req, const char *name);

/* The config file berthd was given (NULL: the default), for the helper processes. */
void bd_api_set_config(const char *config_path);

/* The supervisor berthd runs (NULL: none): containers the API starts are watched at once. */
void bd_api_set_supervisor(bd_supervisor_t *s);

/* bd_server_set_spool's question: docker load's archive goes to a file, whatever its size. */
int bd_api_spool_wanted(const char *method, const char *path);

/* GET /events (api-events.c): the event log, streamed. */
void bd_api_events(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e);

/* The handler berthd's server calls; @userdata is the engine. */
void bd_api_handle(bd_conn_t *c, const bd_request_t *req, void *userdata);

/*
 * The volume routes (api-volumes.c): answers and returns 1 when @path (the
 * version prefix stripped) is one of them, else returns 0.
 */
int bd_api_volumes(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *path);

/*
 * The network routes (api-networks.c), the same way: GET /networks, POST
 * /networks/create and /networks/prune, GET and DELETE /networks/{id},
 * POST /networks/{id}/connect and /disconnect.
 */
int bd_api_networks(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *path);

#endif /* BERTH_DAEMON_API_H */
