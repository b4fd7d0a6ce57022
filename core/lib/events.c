/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event log as readers see it (events.h, berth/engine.h): Docker's
 * message shape, Docker's filters, Docker's time syntax, and the wake-up
 * for long-lived readers.
 *
 * Why the LMDB data file is the wake-up: every writer of the log (the CLI,
 * berthd, every container's monitor, a plugin through the host API) already
 * commits through LMDB, which writes the data file with pwrite on each
 * commit, last of all the meta page that makes the commit visible. So an
 * inotify watch on it fires after every commit, from any process, with
 * nothing for the writers to do, and no old writer can forget to. A reader
 * woken early (by a commit's first pages) finds nothing new and is woken
 * again by the meta page write; the writer publishes the new transaction
 * id in the lock file just after that write, so a reader woken by it can
 * still be an instant early, and looks once more shortly after (tested:
 * without that second look, one follower in three missed an event).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <berth/engine.h>

#include "engine-internal.h"
#include "events.h"
#include "store.h"
#include "util.h"

/* ---- Docker's message shape ---- */

json_t *berth__event_to_docker(json_t *stored)
{
    const char *type = json_string_value(json_object_get(stored, "type"));
    const char *action = json_string_value(json_object_get(stored, "action"));
    const char *id = json_string_value(json_object_get(stored, "id"));
    json_t *t = json_object_get(stored, "time_ns"), *attrs = json_object_get(stored, "attributes");
    _cleanup_json_ json_t *msg = NULL, *a = json_object();
    const char *k;
    json_int_t ns;
    json_t *v;

    if (!type || !action || !json_is_integer(t) || !a)
        return NULL;
    ns = json_integer_value(t);
    json_object_foreach (attrs, k, v) {
        json_t *s;
        if (json_is_string(v)) {
            s = json_incref(v);
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            s = text ? json_string(text) : NULL;
            free(text);
        }
        if (!s || json_object_set_new(a, k, s) < 0)
            return NULL;
    }
    msg = json_pack("{s:s, s:s, s:{s:s, s:O}, s:s, s:I, s:I}", "Type", type, "Action", action,
                    "Actor", "ID", id ? id : "", "Attributes", a, "scope", "local", "time",
                    (json_int_t)(ns / 1000000000), "timeNano", ns);
    if (!msg)
        return NULL;
    /* moby fills the deprecated members for these two types only. */
    if (!strcmp(type, "container") || !strcmp(type, "image")) {
        if (json_object_set_new(msg, "status", json_string(action)) < 0 ||
            json_object_set_new(msg, "id", json_string(id ? id : "")) < 0)
            return NULL;
        if (!strcmp(type, "container") && json_string_value(json_object_get(a, "image")) &&
            json_object_set(msg, "from", json_object_get(a, "image")) < 0)
            return NULL;
    }
    return TAKE_PTR(msg);
}

/* ---- filters ---- */

struct berth_event_filter {
    json_t *args; /* {"key": ["value", ...]} */
};

/* What moby's /events accepts (daemon/events/filter.go, router/system). */
static const char *const filter_keys[] = {
    "config", "container", "daemon", "event",  "image",   "label", "network",
    "node",   "plugin",    "scope",  "secret", "service", "type",  "volume",
};

static int filter_put(berth_event_filter_t *f, const char *key, const char *value, berth_err_t *err)
{
    json_t *vals;
    int known = 0;

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(filter_keys); i++)
        known |= !strcmp(key, filter_keys[i]);
    if (!known)
        return berth_err_set(err, -EINVAL, "invalid filter '%s'", key);
    vals = json_object_get(f->args, key);
    if (!vals) {
        vals = json_array();
        if (!vals || json_object_set_new(f->args, key, vals) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    if (json_array_append_new(vals, json_string(value)) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

BERTH_API int berth_event_filter_new(const char *filters_json, berth_event_filter_t **ret_filter,
                                     berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    berth_event_filter_t *f;
    json_error_t jerr;
    const char *k;
    json_t *v;
    int r = 0;

    if (filters_json && *filters_json) {
        doc = json_loads(filters_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(doc))
            return berth_err_set(err, -EINVAL, "invalid filters: %s",
                                 doc ? "not a JSON object" : jerr.text);
    }
    if (!(f = calloc(1, sizeof(*f))) || !(f->args = json_object())) {
        free(f);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    /* {"key": {"value": true}} since API 1.22, {"key": ["value"]} before: moby reads both. */
    json_object_foreach (doc, k, v) {
        const char *val;
        json_t *m;
        size_t i;

        if (json_is_object(v)) {
            json_object_foreach (v, val, m) {
                if (!json_is_true(m))
                    continue;
                if ((r = filter_put(f, k, val, err)) < 0)
                    break;
            }
        } else if (json_is_array(v)) {
            json_array_foreach (v, i, m) {
                if (!json_is_string(m)) {
                    r = berth_err_set(err, -EINVAL,
                                      "invalid filters: values of '%s' must be strings", k);
                    break;
                }
                if ((r = filter_put(f, k, json_string_value(m), err)) < 0)
                    break;
            }
        } else {
            r = berth_err_set(err, -EINVAL, "invalid filters: '%s' must be an object or an array",
                              k);
        }
        if (r < 0)
            break;
    }
    if (r < 0) {
        berth_event_filter_free(f);
        return r;
    }
    *ret_filter = f;
    return 0;
}

BERTH_API int berth_event_filter_add(berth_event_filter_t *f, const char *key_value,
                                     berth_err_t *err)
{
    const char *eq = key_value ? strchr(key_value, '=') : NULL;
    char key[64];

    if (!eq || eq == key_value || (size_t)(eq - key_value) >= sizeof(key))
        return berth_err_set(err, -EINVAL, "bad format of filter '%s' (expected name=value)",
                             key_value ? key_value : "");
    memcpy(key, key_value, (size_t)(eq - key_value));
    key[eq - key_value] = '\0';
    return filter_put(f, key, eq + 1, err);
}

BERTH_API void berth_event_filter_free(berth_event_filter_t *f)
{
    if (!f)
        return;
    json_decref(f->args);
    free(f);
}

/* moby's ExactMatch: no values for @key match everything; else one must equal @s. */
static int exact(const berth_event_filter_t *f, const char *key, const char *s)
{
    json_t *vals = json_object_get(f->args, key), *v;
    size_t i;

    if (json_array_size(vals) == 0)
        return 1;
    json_array_foreach (vals, i, v)
        if (s && !strcmp(json_string_value(v), s))
            return 1;
    return 0;
}

/* moby's FuzzyMatch: exact, or @s starts with a value. */
static int fuzzy(const berth_event_filter_t *f, const char *key, const char *s)
{
    json_t *vals = json_object_get(f->args, key), *v;
    size_t i;

    if (exact(f, key, s))
        return 1;
    json_array_foreach (vals, i, v) {
        const char *p = json_string_value(v);
        if (s && *p && !strncmp(s, p, strlen(p)))
            return 1;
    }
    return 0;
}

/* A name matches exactly, an id by prefix (moby's fuzzyMatchName). */
static int fuzzy_name(const berth_event_filter_t *f, const char *key, const char *id,
                      const char *name)
{
    return exact(f, key, name) || fuzzy(f, key, id);
}

/* "busybox:1.36" -> "busybox", "localhost:5000/app@sha256:..." -> "localhost:5000/app". */
static void strip_tag(const char *image, char *buf, size_t len)
{
    const char *slash, *colon;
    char *at;

    snprintf(buf, len, "%s", image ? image : "");
    if ((at = strchr(buf, '@')))
        *at = '\0';
    slash = strrchr(buf, '/');
    colon = strrchr(buf, ':');
    if (colon && (!slash || colon > slash))
        buf[colon - buf] = '\0';
}

static int match_event(const berth_event_filter_t *f, const char *action)
{
    json_t *vals = json_object_get(f->args, "event"), *v;
    size_t i;

    if (json_array_size(vals) == 0)
        return 1;
    json_array_foreach (vals, i, v) {
        const char *p = json_string_value(v);
        size_t n = strlen(p);
        if (!strcmp(p, action))
            return 1;
        /* "exec_start" stands for every "exec_start: <command>" (moby #25798). */
        if (!strchr(p, ':') && !strncmp(action, p, n) && action[n] == ':')
            return 1;
    }
    return 0;
}

static int match_labels(const berth_event_filter_t *f, json_t *attrs)
{
    json_t *vals = json_object_get(f->args, "label"), *v;
    size_t i;

    /* Every label value must hold (moby's MatchKVList), unlike the other keys. */
    json_array_foreach (vals, i, v) {
        const char *p = json_string_value(v), *eq = strchr(p, '=');
        char key[256];
        const char *have;

        snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - p) : (int)strlen(p), p);
        have = json_string_value(json_object_get(attrs, key));
        if (!have || (eq && strcmp(have, eq + 1) != 0))
            return 0;
    }
    return 1;
}

static int match_image(const berth_event_filter_t *f, const char *type, const char *id,
                       json_t *attrs)
{
    const char *name = json_string_value(
        json_object_get(attrs, type && !strcmp(type, "image") ? "name" : "image"));
    char id_bare[512], name_bare[512];

    strip_tag(id, id_bare, sizeof(id_bare));
    strip_tag(name, name_bare, sizeof(name_bare));
    return exact(f, "image", id) || exact(f, "image", name ? name : "") ||
           exact(f, "image", id_bare) || exact(f, "image", name_bare);
}

int berth__event_filter_match(const berth_event_filter_t *f, json_t *msg)
{
    static const char *const by_name[] = { "container", "daemon",  "plugin", "volume", "network",
                                           "node",      "service", "secret", "config" };
    json_t *actor = json_object_get(msg, "Actor"), *attrs = json_object_get(actor, "Attributes");
    const char *type = json_string_value(json_object_get(msg, "Type"));
    const char *action = json_string_value(json_object_get(msg, "Action"));
    const char *id = json_string_value(json_object_get(actor, "ID"));
    const char *name = json_string_value(json_object_get(attrs, "name"));

    if (!f)
        return 1;
    if (!match_event(f, action ? action : "") || !exact(f, "type", type) ||
        !exact(f, "scope", json_string_value(json_object_get(msg, "scope"))))
        return 0;
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(by_name); i++)
        if (!fuzzy_name(f, by_name[i], id ? id : "", name ? name : ""))
            return 0;
    return match_image(f, type, id ? id : "", attrs) && match_labels(f, attrs);
}

BERTH_API int berth_event_filter_match(const berth_event_filter_t *f, json_t *msg)
{
    return berth__event_filter_match(f, msg);
}

/* ---- reading ---- */

struct read_ctx {
    int64_t since, until;
    const berth_event_filter_t *filter;
    size_t max, seen;
    uint64_t last;
    json_t *out;
};

static int read_one(const char *key, json_t *doc, void *userdata)
{
    struct read_ctx *c = userdata;
    json_int_t ns = json_integer_value(json_object_get(doc, "time_ns"));
    _cleanup_json_ json_t *msg = NULL;

    if (c->max && c->seen >= c->max)
        return 1;
    c->seen++;
    c->last = strtoull(key, NULL, 10);
    if ((c->since && ns < c->since) || (c->until && ns > c->until))
        return 0;
    /* An event this build can't show (a newer writer's, damaged) is skipped, not fatal. */
    if (!(msg = berth__event_to_docker(doc)))
        return 0;
    if (!berth__event_filter_match(c->filter, msg))
        return 0;
    return json_array_append(c->out, msg) < 0 ? -ENOMEM : 0;
}

static int need_store(berth_engine_t *e, berth_err_t *err)
{
    return berth__engine_store(e)
               ? 0
               : berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
}

BERTH_API int berth_events_read(berth_engine_t *e, uint64_t after_seq, int64_t since_ns,
                                int64_t until_ns, const berth_event_filter_t *filter, size_t max,
                                json_t **ret_events, uint64_t *ret_last_seq, berth_err_t *err)
{
    _cleanup_json_ json_t *out = json_array();
    _cleanup_txn_ berth_txn_t *txn = NULL;
    struct read_ctx c = { .since = since_ns,
                          .until = until_ns,
                          .filter = filter,
                          .max = max,
                          .last = after_seq,
                          .out = out };
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if (!out)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__store_event_walk(txn, after_seq, read_one, &c, err);
    if (r == -ENOMEM)
        return berth_err_set(err, r, "out of memory");
    if (r < 0)
        return r;
    *ret_events = TAKE_PTR(out);
    if (ret_last_seq)
        *ret_last_seq = c.last;
    return 0;
}

BERTH_API int berth_events_last_seq(berth_engine_t *e, uint64_t *ret_seq, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    return berth__store_event_last(txn, ret_seq, err);
}

/* ---- waking readers ---- */

BERTH_API const char *berth_events_watch_path(berth_engine_t *e)
{
    return berth__engine_events_path(e);
}

BERTH_API int berth_events_watch_open(berth_engine_t *e, int *ret_fd, berth_err_t *err)
{
    const char *path = berth__engine_events_path(e);
    int fd;

    if (!path)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return berth_err_set(err, -errno, "inotify: %s", strerror(errno));
    if (inotify_add_watch(fd, path, IN_MODIFY) < 0) {
        int r = -errno;
        close(fd);
        return berth_err_set(err, r, "inotify watch %s: %s", path, strerror(-r));
    }
    *ret_fd = fd;
    return 0;
}

BERTH_API void berth_events_watch_drain(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* ---- times ---- */

int berth__parse_duration(const char *text, int64_t *ret_ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {
        { "ns", 1 },  { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "ms", 1e6 },
        { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
    };
    const char *p = text;
    double total = 0;
    int neg = 0;

    if (!p || !*p)
        return -EINVAL;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!strcmp(p, "0")) {
        *ret_ns = 0;
        return 0;
    }
    if (!*p)
        return -EINVAL;
    while (*p) {
        char *end;
        double n;
        size_t best = 0, ulen = 0;

        if (!isdigit((unsigned char)*p) && *p != '.')
            return -EINVAL;
        n = strtod(p, &end);
        if (end == p)
            return -EINVAL;
        p = end;
        /* The longest unit that fits: "ms" before "m". */
        for (size_t i = 0; i < BERTH_ARRAY_SIZE(units); i++) {
            size_t l = strlen(units[i].unit);
            if (!strncmp(p, units[i].unit, l) && l > ulen) {
                best = i;
                ulen = l;
            }
        }
        if (!ulen)
            return -EINVAL;
        total += n * units[best].ns;
        p += ulen;
    }
    if (total > 9.2e18)
        return -ERANGE;
    *ret_ns = (int64_t)(neg ? -total : total);
    return 0;
}

/* "123" or "123.456" as ns; -EINVAL for anything else. */
static int parse_unix(const char *text, int64_t *ret_ns)
{
    const char *p = text, *dot;
    int64_t sec = 0, frac = 0;
    int digits = 0;

    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (sec > (INT64_MAX / 1000000000 - 10) / 10)
            return -ERANGE;
        sec = sec * 10 + (*p - '0');
    }
    dot = p;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 9)
                frac = frac * 10 + (*p - '0');
        if (p == dot + 1)
            return -EINVAL;
        for (int d = digits; d < 9; d++)
            frac *= 10;
    }
    if (*p)
        return -EINVAL;
    *ret_ns = sec * 1000000000 + frac;
    return 0;
}

/* RFC 3339 and the shorter forms docker accepts; no zone means local time. */
static int parse_rfc3339(const char *text, int64_t *ret_ns)
{
    static const char *const forms[] = { "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H",
                                         "%Y-%m-%d" };
    struct tm tm;
    const char *p = NULL;
    int64_t frac = 0, off = 0;
    time_t t;
    int zone = 0;

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(forms) && !p; i++) {
        memset(&tm, 0, sizeof(tm));
        p = strptime(text, forms[i], &tm);
        /* A form that stops before a 'T' or ':' took too little: try the next. */
        if (p && i < 3 && *p && *p != '.' && *p != 'Z' && *p != 'z' && *p != '+' && *p != '-')
            p = NULL;
    }
    if (!p)
        return -EINVAL;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 9)
                frac = frac * 10 + (*p - '0');
        if (!digits)
            return -EINVAL;
        for (int d = digits; d < 9; d++)
            frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        zone = 1;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, hh, mm, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || hh > 23 || mm > 59)
            return -EINVAL;
        off = sign * (hh * 3600 + mm * 60);
        zone = 1;
        p += 6;
    }
    if (*p)
        return -EINVAL;
    if (zone) {
        t = timegm(&tm);
        t -= (time_t)off;
    } else {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    *ret_ns = (int64_t)t * 1000000000 + frac;
    return 0;
}

BERTH_API int berth_parse_time(const char *text, int64_t now_ns, int64_t *ret_ns, berth_err_t *err)
{
    int64_t ns;

    if (text && berth__parse_duration(text, &ns) == 0) {
        *ret_ns = now_ns - ns;
        return 0;
    }
    if (text && (parse_unix(text, &ns) == 0 || parse_rfc3339(text, &ns) == 0)) {
        *ret_ns = ns;
        return 0;
    }
    return berth_err_set(err, -EINVAL, "failed to parse value as time or duration: \"%s\"",
                         text ? text : "");
}
