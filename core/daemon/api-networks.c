/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Docker Engine API's network routes (api.h): GET /networks, GET
 * /networks/{id}, POST /networks/create, DELETE /networks/{id}, POST
 * /networks/{id}/connect and /disconnect, POST /networks/prune, over
 * berth_network_*(). Replies have the shapes the docker CLI reads: an array
 * of networks, one network, {"Id", "Warning"} (201) for create,
 * {"NetworksDeleted"} for prune, and no body for the rest.
 *
 * Status codes are Docker's for networks, which differ from the other
 * objects': removing a pre-defined network or one with endpoints is 403
 * (moby's Forbidden errors), and so is connecting a container twice
 * ("endpoint ... already exists"); a duplicate name on create is 409.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"

/* The request body as a JSON object (an empty one when there is none); answers 400 itself. */
static int body_object(bd_conn_t *c, const bd_request_t *req, json_t **ret)
{
    json_error_t jerr;
    json_t *body;

    *ret = NULL;
    if (req->body_len == 0) {
        *ret = json_object();
        return 0;
    }
    body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        bd_respond_error(c, 400, "invalid JSON in the request body: %s", jerr.text);
        return -1;
    }
    *ret = body;
    return 0;
}

/* Docker's 403 for the network errors it calls Forbidden, else the shared mapping. */
static void net_err(bd_conn_t *c, int r, const berth_err_t *err)
{
    if (r == -EPERM || r == -EBUSY)
        bd_respond_error(c, 403, "%s", err->msg[0] ? err->msg : strerror(-r));
    else
        bd_respond_err(c, r, err);
}

static void networks_list(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    berth_err_t err = { 0 };
    json_t *filters, *list = NULL;
    int r;

    if (bd_query_filters(c, req, &filters) < 0)
        return;
    r = berth_network_list(e, filters, &list, &err);
    json_decref(filters);
    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 200, list);
}

static void network_create(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    berth_err_t err = { 0 };
    json_t *body, *out = NULL;
    int r;

    if (body_object(c, req, &body) < 0)
        return;
    r = berth_network_create(e, body, &out, &err);
    json_decref(body);
    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    if (!json_object_get(out, "Warning"))
        json_object_set_new(out, "Warning", json_string(""));
    bd_respond_json(c, 201, out);
}

static void network_inspect(bd_conn_t *c, berth_engine_t *e, const char *ref)
{
    berth_err_t err = { 0 };
    json_t *out = NULL;
    int r = berth_network_inspect(e, ref, &out, &err);

    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 200, out);
}

static void network_remove(bd_conn_t *c, berth_engine_t *e, const char *ref)
{
    berth_err_t err = { 0 };
    int r = berth_network_remove(e, ref, &err);

    if (r < 0) {
        net_err(c, r, &err);
        return;
    }
    bd_respond(c, 204, NULL, NULL, NULL, 0);
}

/* POST /networks/{id}/connect {"Container", "EndpointConfig"} and /disconnect {"Container", "Force"}. */
static void network_attach(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                           const char *ref, int connect)
{
    berth_err_t err = { 0 };
    const char *container;
    json_t *body, *ep;
    int r;

    if (body_object(c, req, &body) < 0)
        return;
    container = json_string_value(json_object_get(body, "Container"));
    if (!container || !*container) {
        json_decref(body);
        bd_respond_error(c, 400, "no container given: the body needs \"Container\"");
        return;
    }
    if (connect) {
        ep = json_object_get(body, "EndpointConfig");
        r = berth_network_connect(e, ref, container, json_is_object(ep) ? ep : NULL, &err);
        /* moby: "endpoint with name X already exists in network Y" is Forbidden. */
        if (r == -EEXIST) {
            bd_respond_error(c, 403, "%s", err.msg[0] ? err.msg : strerror(-r));
            json_decref(body);
            return;
        }
    } else {
        r = berth_network_disconnect(e, ref, container,
                                     json_is_true(json_object_get(body, "Force")), &err);
    }
    json_decref(body);
    if (r < 0) {
        net_err(c, r, &err);
        return;
    }
    bd_respond(c, 200, NULL, NULL, NULL, 0);
}

static void networks_prune(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    berth_err_t err = { 0 };
    json_t *filters, *out = NULL;
    int r;

    if (bd_query_filters(c, req, &filters) < 0)
        return;
    r = berth_network_prune(e, filters, &out, &err);
    json_decref(filters);
    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    /* The docker CLI ranges over NetworksDeleted: an array, even an empty one. */
    if (!json_is_array(json_object_get(out, "NetworksDeleted")))
        json_object_set_new(out, "NetworksDeleted", json_array());
    bd_respond_json(c, 200, out);
}

int bd_api_networks(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *path)
{
    const char *m = req->method, *id, *slash;
    char ref[256];
    size_t n;

    if (strcmp(path, "/networks") == 0 && !strcmp(m, "GET")) {
        networks_list(c, req, e);
        return 1;
    }
    if (strcmp(path, "/networks/create") == 0 && !strcmp(m, "POST")) {
        network_create(c, req, e);
        return 1;
    }
    if (strcmp(path, "/networks/prune") == 0 && !strcmp(m, "POST")) {
        networks_prune(c, req, e);
        return 1;
    }
    if (strncmp(path, "/networks/", 10) != 0 || !path[10])
        return 0;
    id = path + 10;
    slash = strchr(id, '/');
    n = slash ? (size_t)(slash - id) : strlen(id);
    if (n == 0 || n >= sizeof(ref))
        return 0;
    memcpy(ref, id, n);
    ref[n] = '\0';
    if (!slash) {
        if (!strcmp(m, "GET")) {
            network_inspect(c, e, ref);
            return 1;
        }
        if (!strcmp(m, "DELETE")) {
            network_remove(c, e, ref);
            return 1;
        }
        return 0;
    }
    if (!strcmp(m, "POST") && !strcmp(slash, "/connect")) {
        network_attach(c, req, e, ref, 1);
        return 1;
    }
    if (!strcmp(m, "POST") && !strcmp(slash, "/disconnect")) {
        network_attach(c, req, e, ref, 0);
        return 1;
    }
    return 0;
}
