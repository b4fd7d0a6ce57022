/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Docker Engine API's volume routes (api.h): GET /volumes, POST
 * /volumes/create, GET and DELETE /volumes/{name}, POST /volumes/prune,
 * over berth_volume_*(). Replies have the shapes the docker CLI reads:
 * {"Volumes": [...], "Warnings": []} for the list, a Volume object for
 * create (201) and inspect, {"VolumesDeleted", "SpaceReclaimed"} for prune.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"

static void volumes_list(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    berth_err_t err = { 0 };
    json_t *filters, *list = NULL;
    int r;

    if (bd_query_filters(c, req, &filters) < 0)
        return;
    r = berth_volume_list(e, filters, &list, &err);
    json_decref(filters);
    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 200, json_pack("{s:o, s:[]}", "Volumes", list, "Warnings"));
}

static void volume_create(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    berth_err_t err = { 0 };
    json_error_t jerr;
    json_t *body = NULL, *out = NULL;
    int r;

    if (req->body_len > 0) {
        body = json_loadb(req->body, req->body_len, 0, &jerr);
        if (!json_is_object(body)) {
            json_decref(body);
            bd_respond_error(c, 400, "invalid JSON in the request body: %s", jerr.text);
            return;
        }
    }
    r = berth_volume_create(e, body, &out, &err);
    json_decref(body);
    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 201, out);
}

static void volume_inspect(bd_conn_t *c, berth_engine_t *e, const char *name)
{
    berth_err_t err = { 0 };
    json_t *out = NULL;
    int r = berth_volume_inspect(e, name, &out, &err);

    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 200, out);
}

static void volume_remove(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                          const char *name)
{
    berth_err_t err = { 0 };
    char v[16];
    int force =
        bd_query(req, "force", v, sizeof(v)) == 1 && (!strcmp(v, "1") || !strcasecmp(v, "true"));
    int r = berth_volume_remove(e, name, force ? BERTH_VOLUME_RM_FORCE : 0, &err);

    /* Docker: removing a missing volume with force is no error. */
    if (r == -ENOENT && force)
        r = 0;
    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond(c, 204, NULL, NULL, NULL, 0);
}

static void volumes_prune(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    berth_err_t err = { 0 };
    json_t *filters, *out = NULL;
    int r;

    if (bd_query_filters(c, req, &filters) < 0)
        return;
    r = berth_volume_prune(e, filters, &out, &err);
    json_decref(filters);
    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 200, out);
}

int bd_api_volumes(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *path)
{
    const char *m = req->method, *name;

    if (strcmp(path, "/volumes") == 0 && !strcmp(m, "GET")) {
        volumes_list(c, req, e);
        return 1;
    }
    if (strcmp(path, "/volumes/create") == 0 && !strcmp(m, "POST")) {
        volume_create(c, req, e);
        return 1;
    }
    if (strcmp(path, "/volumes/prune") == 0 && !strcmp(m, "POST")) {
        volumes_prune(c, req, e);
        return 1;
    }
    if (strncmp(path, "/volumes/", 9) != 0 || !path[9] || strchr(path + 9, '/'))
        return 0;
    name = path + 9;
    if (!strcmp(m, "GET")) {
        volume_inspect(c, e, name);
        return 1;
    }
    if (!strcmp(m, "DELETE")) {
        volume_remove(c, req, e, name);
        return 1;
    }
    return 0;
}
