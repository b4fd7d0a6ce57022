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
