/* SPDX-License-Identifier: Apache-2.0 */
/* What every route file shares (api.h): status codes, error replies, query booleans. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "api.h"

int bd_status_of(int r)
{
    switch (-r) {
    case ENOENT:
        return 404;
    case EINVAL:
    case ENAMETOOLONG:
    case E2BIG:
        return 400;
    case EEXIST:
    case EBUSY:
        return 409;
    case ENOTSUP:
        return 501;
    default:
        return 500;
    }
}

void bd_respond_err(bd_conn_t *c, int r, const berth_err_t *err)
{
    bd_respond_error(c, bd_status_of(r), "%s", err->msg[0] ? err->msg : strerror(-r));
}

void bd_respond_lookup(bd_conn_t *c, int r, const berth_err_t *err, const char *what,
                       const char *ref)
{
    if (r == -ENOENT)
        bd_respond_error(c, 404, "No such %s: %s", what, ref);
    else
        bd_respond_err(c, r, err);
}

int bd_query_bool(const bd_request_t *req, const char *name)
{
    char v[16];
    if (bd_query(req, name, v, sizeof(v)) != 1)
        return 0;
    return !(v[0] == '\0' || !strcasecmp(v, "0") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "false") || !strcasecmp(v, "none"));
}

/*
 * ?filters=<JSON> as a new object in Docker's shape {"key": {"value":
 * true}} (NULL when absent); the older {"key": ["value"]} is turned into
 * it. Answers 400 itself and returns -1 when malformed.
 */
int bd_query_filters(bd_conn_t *c, const bd_request_t *req, json_t **ret)
{
    char buf[4096];
    json_error_t jerr;
    json_t *f, *v, *w;
    const char *k;
    size_t i;
    int q = bd_query(req, "filters", buf, sizeof(buf));

    *ret = NULL;
    if (q == 0 || (q == 1 && !buf[0]))
        return 0;
    if (q < 0) {
        bd_respond_error(c, 400, "filters too long");
        return -1;
    }
    f = json_loads(buf, 0, &jerr);
    if (!json_is_object(f)) {
        json_decref(f);
        bd_respond_error(c, 400, "invalid filters: %s", jerr.text);
        return -1;
    }
    json_object_foreach (f, k, v) {
        json_t *set;
        if (json_is_object(v))
            continue;
        if (!json_is_array(v) || !(set = json_object())) {
            json_decref(f);
            bd_respond_error(c, 400, "invalid filter '%s'", k);
            return -1;
        }
        json_array_foreach (v, i, w)
            if (json_is_string(w))
                json_object_set_new(set, json_string_value(w), json_true());
        json_object_set_new(f, k, set);
    }
    *ret = f;
    return 0;
}
