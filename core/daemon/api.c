/* SPDX-License-Identifier: Apache-2.0 */
/* Docker Engine API routes (api.h). */
#include <errno.h>
#include <regex.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "berth-build-config.h"

#include "api.h"

/* Set @key on @o to @v when it is missing (@v stolen either way). */
static void set_default(json_t *o, const char *key, json_t *v)
{
    if (json_is_object(o) && !json_object_get(o, key) && v)
        json_object_set_new(o, key, v);
    else
        json_decref(v);
}

/* ---- system ---- */

static void ping(bd_conn_t *c)
{
    static const char extra[] = "Cache-Control: no-cache, no-store, must-revalidate\r\n"
                                "Pragma: no-cache\r\n"
                                "Builder-Version: 1\r\n"
                                "Swarm: inactive\r\n";
    bd_respond(c, 200, "text/plain; charset=utf-8", extra, "OK", 2);
}

static const char *go_arch(const char *machine)
{
    if (!strcmp(machine, "x86_64"))
        return "amd64";
    if (!strcmp(machine, "aarch64"))
        return "arm64";
    return machine;
}

static void version(bd_conn_t *c)
{
    struct utsname u;
    json_t *j;

    uname(&u);
    j = json_pack("{s:{s:s}, s:[{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}}], s:s, s:s, s:s, s:s, s:s, "
                  "s:s, s:s, s:s, s:s}",
                  "Platform", "Name", "berth", "Components", "Name", "Engine", "Version",
                  berth_version(), "Details", "ApiVersion", BD_API_MAX, "MinAPIVersion", BD_API_MIN,
                  "Os", "linux", "Arch", go_arch(u.machine), "KernelVersion", u.release, "Version",
                  berth_version(), "ApiVersion", BD_API_MAX, "MinAPIVersion", BD_API_MIN,
                  "GitCommit", "", "GoVersion", "", "Os", "linux", "Arch", go_arch(u.machine),
                  "KernelVersion", u.release, "BuildTime", "");
    bd_respond_json(c, 200, j);
}

/* PRETTY_NAME from /etc/os-release, or "Linux". */
static void os_name(char *buf, size_t len)
{
    char line[512];
    FILE *f = fopen("/etc/os-release", "re");

    snprintf(buf, len, "Linux");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
            char *v = line + 12;
            v[strcspn(v, "\n")] = '\0';
            if (*v == '"') {
                v++;
                v[strcspn(v, "\"")] = '\0';
            }
            snprintf(buf, len, "%s", v);
            break;
        }
    }
    if (f)
        fclose(f);
}

static void info(bd_conn_t *c, berth_engine_t *e)
{
    json_t *ei = NULL, *list = NULL, *images = NULL, *o;
    berth_err_t err = { 0 };
    int running = 0, paused = 0, stopped = 0, r;
    struct sysinfo si;
    struct utsname u;
    char host[256] = "", os[512];
    const char *cg, *storage;
    size_t i;

    if ((r = berth_engine_info(e, &ei, &err)) < 0 ||
        (r = berth_container_list(e, BERTH_LIST_ALL, &list, &err)) < 0 ||
        (r = berth_image_list(e, 0, &images, &err)) < 0) {
        json_decref(ei);
        json_decref(list);
        bd_respond_err(c, r, &err);
        return;
    }
    json_array_foreach (list, i, o) {
        const char *st = json_string_value(json_object_get(o, "State"));
        if (st && !strcmp(st, "running"))
            running++;
        else if (st && !strcmp(st, "paused"))
            paused++;
        else
            stopped++;
    }
    uname(&u);
    sysinfo(&si);
    gethostname(host, sizeof(host) - 1);
    os_name(os, sizeof(os));
    cg = json_string_value(json_object_get(json_object_get(ei, "host"), "cgroup_mode"));
    storage = json_string_value(
        json_object_get(json_object_get(json_object_get(ei, "drivers"), "storage"), "default"));
    bd_respond_json(
        c, 200,
        json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:[], s:{s:[s], s:[], s:[s]}, "
                  "s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:s, s:s, s:{s:{s:s}}, s:s, s:[s], "
                  "s:{s:s}, s:[], s:s}",
                  "ID", "", "Name", host, "Containers", (int)json_array_size(list),
                  "ContainersRunning", running, "ContainersPaused", paused, "ContainersStopped",
                  stopped, "Images", (int)json_array_size(images), "ServerVersion", berth_version(),
                  "Driver", storage ? storage : "overlay", "DriverStatus", "Plugins", "Volume",
                  "local", "Network", "Log", "json-file", "OSType", "linux", "OperatingSystem", os,
                  "KernelVersion", u.release, "Architecture", u.machine, "NCPU",
                  (int)sysconf(_SC_NPROCESSORS_ONLN), "MemTotal",
                  (json_int_t)si.totalram * (json_int_t)si.mem_unit, "DockerRootDir",
                  berth_engine_root(e), "CgroupDriver", "cgroupfs", "CgroupVersion",
                  cg && !strcmp(cg, "v2") ? "2" : "1", "LoggingDriver", "json-file", "Runtimes",
                  "berth", "path", "berth-shim", "DefaultRuntime", "berth", "SecurityOptions",
                  "name=seccomp,profile=builtin", "Swarm", "LocalNodeState", "inactive", "Warnings",
                  "Isolation", "process"));
    json_decref(ei);
    json_decref(list);
    json_decref(images);
}

/* ---- containers ---- */

/*
 * Inspect's NetworkSettings with every member the docker CLI and scripts
 * read, for whatever the engine left out (it fills them from the
 * container's endpoints): Ports and Networks (`docker port` reads the
 * first unchecked), each network's endpoint fields, and the top-level
 * address fields of the primary network.
 */
static void network_settings_fill(json_t *insp)
{
    static const char *const str_keys[] = { "IPAddress", "Gateway", "MacAddress", "NetworkID",
                                            "EndpointID" };
    json_t *ns = json_object_get(insp, "NetworkSettings"), *ep;
    const char *k;

    if (!json_is_object(ns)) {
        ns = json_object();
        json_object_set_new(insp, "NetworkSettings", ns);
    }
    set_default(ns, "Ports", json_object());
    set_default(ns, "Networks", json_object());
    json_object_foreach (json_object_get(ns, "Networks"), k, ep) {
        for (size_t i = 0; i < sizeof(str_keys) / sizeof(str_keys[0]); i++)
            set_default(ep, str_keys[i], json_string(""));
        set_default(ep, "IPPrefixLen", json_integer(0));
        set_default(ep, "Aliases", json_null());
    }
    for (size_t i = 0; i < 3; i++)
        set_default(ns, str_keys[i], json_string(""));
    set_default(ns, "IPPrefixLen", json_integer(0));
}

/*
 * Docker's ?filters=: JSON {"key": {"value": true, ...}} (or the old
 * {"key": ["value", ...]}), made here into {"key": ["value", ...]}. Values
 * of one key are alternatives; keys must all match. NULL when malformed.
 */
static json_t *query_filters(const bd_request_t *req)
{
    char *raw = malloc(BD_URL_MAX);
    json_t *in, *out = json_object(), *v, *w;
    const char *k, *kk;
    size_t i;
    int r = raw ? bd_query(req, "filters", raw, BD_URL_MAX) : -1;

    if (r == 0 || (r == 1 && !raw[0])) {
        free(raw);
        return out;
    }
    in = r == 1 ? json_loads(raw, 0, NULL) : NULL;
    free(raw);
    if (!json_is_object(in) || !out)
        goto bad;
    json_object_foreach (in, k, v) {
        json_t *vals = json_array();
        json_object_set_new(out, k, vals);
        if (json_is_object(v)) {
            json_object_foreach (v, kk, w)
                if (json_is_true(w))
                    json_array_append_new(vals, json_string(kk));
        } else if (json_is_array(v)) {
            json_array_foreach (v, i, w) {
                if (!json_is_string(w))
                    goto bad;
                json_array_append(vals, w);
            }
        } else {
            goto bad;
        }
    }
    json_decref(in);
    return out;
bad:
    json_decref(in);
    json_decref(out);
    return NULL;
}

static int regex_matches(const char *pattern, const char *text)
{
    regex_t re;
    int m;

    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    m = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

/* label=KEY or label=KEY=VALUE against @labels. */
static int label_matches(json_t *labels, const char *want)
{
    const char *eq = strchr(want, '=');
    char key[256];
    json_t *v;

    if (!eq)
        return json_object_get(labels, want) != NULL;
    snprintf(key, sizeof(key), "%.*s", (int)(eq - want), want);
    v = json_object_get(labels, key);
    return json_is_string(v) && !strcmp(json_string_value(v), eq + 1);
}

static int health_of(const char *status, const char *want)
{
    if (!strcmp(want, "none"))
        return !strstr(status, "(health") && !strstr(status, "healthy)");
    if (!strcmp(want, "starting"))
        return strstr(status, "(health: starting)") != NULL;
    if (!strcmp(want, "healthy"))
        return strstr(status, "(healthy)") != NULL;
    return !strcmp(want, "unhealthy") && strstr(status, "(unhealthy)") != NULL;
}

/*
 * The place of a container in the engine's list of every container, newest
 * first (-1: none): before and since compare places, as creation times in
 * seconds can't tell apart containers made within one second. @places maps
 * ids to places, filled on first use from one listing, and caches each
 * reference resolved ("ref:" + @ref_or_id), so a filter costs one listing,
 * not one per row.
 */
static long place_of(berth_engine_t *e, json_t *places, const char *ref_or_id, int is_id)
{
    json_t *o, *cached;
    char key[300];
    long place;
    size_t i;

    if (json_object_size(places) == 0) {
        json_t *list = NULL;
        if (berth_container_list(e, BERTH_LIST_ALL, &list, NULL) == 0)
            json_array_foreach (list, i, o)
                json_object_set_new(places, json_string_value(json_object_get(o, "Id")),
                                    json_integer((json_int_t)i));
        json_decref(list);
        /* A marker, so that an empty engine is not listed again. */
        json_object_set_new(places, "", json_integer(-1));
    }
    if (is_id) {
        cached = json_object_get(places, ref_or_id);
        return cached ? (long)json_integer_value(cached) : -1;
    }
    snprintf(key, sizeof(key), "ref:%s", ref_or_id);
    if (!(cached = json_object_get(places, key))) {
        json_t *insp = NULL;
        const char *id = berth_container_inspect(e, ref_or_id, &insp, NULL) == 0
                             ? json_string_value(json_object_get(insp, "Id"))
                             : NULL;
        o = id ? json_object_get(places, id) : NULL;
        place = o ? (long)json_integer_value(o) : -1;
        json_decref(insp);
        json_object_set_new(places, key, json_integer(place));
        return place;
    }
    return (long)json_integer_value(cached);
}

/* Whether summary @s passes filter @key's value @v. */
static int filter_one(berth_engine_t *e, json_t *places, json_t *s, const char *key, const char *v)
{
    const char *id = json_string_value(json_object_get(s, "Id"));
    const char *state = json_string_value(json_object_get(s, "State"));
    const char *status = json_string_value(json_object_get(s, "Status"));
    const char *image = json_string_value(json_object_get(s, "Image"));
    const char *image_id = json_string_value(json_object_get(s, "ImageID"));
    json_t *names = json_object_get(s, "Names"), *m;
    size_t i;

    if (!strcmp(key, "id"))
        return !strncmp(id, v, strlen(v));
    if (!strcmp(key, "name")) {
        json_array_foreach (names, i, m) {
            const char *n = json_string_value(m);
            if (n && (regex_matches(v, n) || (n[0] == '/' && regex_matches(v, n + 1))))
                return 1;
        }
        return 0;
    }
    if (!strcmp(key, "label"))
        return label_matches(json_object_get(s, "Labels"), v);
    if (!strcmp(key, "status"))
        return !strcmp(state, v);
    if (!strcmp(key, "exited")) {
        int code;
        return !strcmp(state, "exited") && sscanf(status, "Exited (%d)", &code) == 1 &&
               code == atoi(v);
    }
    if (!strcmp(key, "ancestor")) {
        size_t n = strlen(v);
        return !strcmp(image, v) || (!strncmp(image, v, n) && !strcmp(image + n, ":latest")) ||
               (!strncmp(image_id, v, n) && n >= 4) ||
               (!strncmp(image_id, "sha256:", 7) && !strncmp(image_id + 7, v, n) && n >= 4);
    }
    if (!strcmp(key, "health"))
        return !strcmp(state, "running") && health_of(status, v);
    if (!strcmp(key, "isolation"))
        return !strcmp(json_string_value(json_object_get(s, "Isolation")) ?: "", v);
    if (!strcmp(key, "volume")) {
        json_array_foreach (json_object_get(s, "Mounts"), i, m) {
            const char *n = json_string_value(json_object_get(m, "Name"));
            const char *d = json_string_value(json_object_get(m, "Destination"));
            if ((n && !strcmp(n, v)) || (d && !strcmp(d, v)))
                return 1;
        }
        return 0;
    }
    if (!strcmp(key, "before") || !strcmp(key, "since")) {
        long ref = place_of(e, places, v, 0), mine = place_of(e, places, id, 1);
        /* Newest first: made before it means a later place. */
        return ref >= 0 && mine >= 0 && (key[0] == 'b' ? mine > ref : mine < ref);
    }
    return 0;
}

static const char *const ps_filters[] = { "id",     "name",     "label",  "status",
                                          "exited", "ancestor", "health", "isolation",
                                          "volume", "before",   "since" };

static void containers_list(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    json_t *list = NULL, *out, *o, *filters = query_filters(req), *vals, *v;
    json_t *places;
    berth_err_t err = { 0 };
    const char *key;
    char lim[16];
    long limit = -1;
    size_t i, j;
    int all = bd_query_bool(req, "all"), r;

    if (!filters) {
        bd_respond_error(c, 400, "invalid filters: not Docker's filter JSON");
        return;
    }
    json_object_foreach (filters, key, vals) {
        size_t k;
        for (k = 0; k < sizeof(ps_filters) / sizeof(ps_filters[0]); k++)
            if (!strcmp(key, ps_filters[k]))
                break;
        if (k == sizeof(ps_filters) / sizeof(ps_filters[0])) {
            bd_respond_error(c, 400, "invalid filter '%s'", key); /* before @key goes */
            json_decref(filters);
            return;
        }
    }
    /* A status filter looks at every container, as Docker does. */
    if (json_object_get(filters, "status"))
        all = 1;
    if (bd_query(req, "limit", lim, sizeof(lim)) == 1 && lim[0])
        limit = atol(lim);
    if (limit > 0)
        all = 1; /* docker ps -n N and -l: the newest, whatever their state */
    /* The engine fills Docker's whole summary in one pass over the store. */
    r = berth_container_list(e, (all ? BERTH_LIST_ALL : 0) | BERTH_LIST_DETAIL, &list, &err);
    if (r < 0) {
        json_decref(filters);
        bd_respond_err(c, r, &err);
        return;
    }
    out = json_array();
    places = json_object();
    json_array_foreach (list, i, o) {
        int keep = 1;
        if (limit > 0 && (long)json_array_size(out) >= limit)
            break;
        json_object_foreach (filters, key, vals) {
            int any = json_array_size(vals) == 0;
            json_array_foreach (vals, j, v)
                if (filter_one(e, places, o, key, json_string_value(v)))
                    any = 1;
            keep = keep && any;
        }
        if (keep)
            json_array_append(out, o);
    }
    json_decref(list);
    json_decref(filters);
    json_decref(places);
    bd_respond_json(c, 200, out);
}

static void container_inspect(bd_conn_t *c, berth_engine_t *e, const char *ref)
{
    json_t *j = NULL;
    berth_err_t err = { 0 };
    int r = berth_container_inspect(e, ref, &j, &err);

    if (r < 0) {
        bd_respond_lookup(c, r, &err, "container", ref);
        return;
    }
    /* What the docker CLI dereferences without checking (docs/daemon.md). */
    set_default(j, "Config", json_object());
    set_default(j, "HostConfig", json_object());
    network_settings_fill(j);
    set_default(j, "Mounts", json_array());
    set_default(j, "RestartCount", json_integer(0));
    set_default(j, "Platform", json_string("linux"));
    set_default(j, "Image", json_string(""));
    bd_respond_json(c, 200, j);
}

/* The record's state name ("running", ...), or NULL when there is no such container. */
static char *state_of(berth_engine_t *e, const char *ref, json_t **ret_doc)
{
    json_t *j = NULL;
    char *st;

    if (berth_container_inspect(e, ref, &j, NULL) < 0)
        return NULL;
    st = strdup(json_string_value(json_object_get(json_object_get(j, "State"), "Status"))
                    ?: "unknown");
    if (ret_doc)
        *ret_doc = j;
    else
        json_decref(j);
    return st;
}

static int container_exists(berth_engine_t *e, const char *ref)
{
    char *st = state_of(e, ref, NULL);
    int found = st != NULL;
    free(st);
    return found;
}

static void container_create(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    char name[256] = "", id[65];
    berth_err_t err = { 0 };
    json_error_t jerr;
    json_t *body;
    int r;

    if (bd_query(req, "name", name, sizeof(name)) < 0) {
        bd_respond_error(c, 400, "container name too long");
        return;
    }
    body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        bd_respond_error(c, 400, "invalid JSON in the request body: %s", jerr.text);
        return;
    }
    r = berth_container_create(e, name[0] ? name : NULL, body, id, &err);
    json_decref(body);
    if (r < 0) {
        /* 404 makes the docker CLI pull the image and try again. */
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 201, json_pack("{s:s, s:[]}", "Id", id, "Warnings"));
}

static void kick_pending(berth_engine_t *e, const char *ref);

static bd_supervisor_t *supervisor;

void bd_api_set_supervisor(bd_supervisor_t *s)
{
    supervisor = s;
}

/* A container just started here: its restart policy applies from now on. */
static void supervise(berth_engine_t *e, const char *ref)
{
    json_t *doc = NULL;
    const char *id;

    if (!supervisor)
        return;
    if (berth_container_inspect(e, ref, &doc, NULL) == 0 &&
        (id = json_string_value(json_object_get(doc, "Id"))))
        bd_supervisor_watch(supervisor, id);
    json_decref(doc);
}

static void container_start(bd_conn_t *c, berth_engine_t *e, const char *ref)
{
    berth_err_t err = { 0 };
    char *st = state_of(e, ref, NULL);
    int r;

    if (!st) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    if (!strcmp(st, "running") || !strcmp(st, "paused")) {
        free(st);
        bd_respond(c, 304, NULL, NULL, NULL, 0);
        return;
    }
    free(st);
    if ((r = berth_container_start(e, ref, 0, &err)) < 0) {
        bd_respond_error(c, r == -ENOENT || r == -EACCES ? 400 : bd_status_of(r), "%s",
                         err.msg[0] ? err.msg : strerror(-r));
        return;
    }
    bd_respond(c, 204, NULL, NULL, NULL, 0);
    /* Waits made before the start (docker run's) can ask the monitor now. */
    kick_pending(e, ref);
    supervise(e, ref);
}

static void container_kill(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                           const char *ref)
{
    char name[32] = "", *st;
    berth_err_t err = { 0 };
    int sig = SIGKILL, r;

    if (bd_query(req, "signal", name, sizeof(name)) == 1 && name[0] &&
        (sig = berth_parse_signal(name)) <= 0) {
        bd_respond_error(c, 400, "invalid signal: %s", name);
        return;
    }
    if (!(st = state_of(e, ref, NULL))) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    r = strcmp(st, "running") && strcmp(st, "paused") ? -EINVAL : 0;
    free(st);
    if (r < 0 || (r = berth_container_kill(e, ref, sig, &err)) < 0) {
        bd_respond_error(c, 409, "Cannot kill container: %s: %s", ref,
                         err.msg[0] ? err.msg : "the container is not running");
        return;
    }
    bd_respond(c, 204, NULL, NULL, NULL, 0);
}

static void container_pause(bd_conn_t *c, berth_engine_t *e, const char *ref, int pause)
{
    berth_err_t err = { 0 };
    int r = pause ? berth_container_pause(e, ref, &err) : berth_container_unpause(e, ref, &err);

    if (r == -ENOENT && !container_exists(e, ref)) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    if (r < 0) {
        bd_respond_error(c, r == -EINVAL ? 409 : bd_status_of(r), "%s",
                         err.msg[0] ? err.msg : strerror(-r));
        return;
    }
    bd_respond(c, 204, NULL, NULL, NULL, 0);
}

static void container_remove(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                             const char *ref)
{
    berth_err_t err = { 0 };
    uint32_t flags = (bd_query_bool(req, "force") ? BERTH_REMOVE_FORCE : 0) |
                     (bd_query_bool(req, "v") ? BERTH_REMOVE_VOLUMES : 0);
    int r = berth_container_remove(e, ref, flags, &err);

    if (r < 0) {
        bd_respond_lookup(c, r, &err, "container", ref);
        return;
    }
    bd_respond(c, 204, NULL, NULL, NULL, 0);
}

/*
 * Waiting without blocking the loop: wait and stop hold the request open
 * (bd_defer) and learn of the exit from the container's monitor, whose
 * answer makes a socket readable (berth_container_wait_begin).
 */
enum wait_kind {
    WAIT_RESPOND, /* wait: answer {"StatusCode"} */
    WAIT_STOP,    /* stop: SIGKILL at the deadline, answer 204 */
    WAIT_RESTART, /* restart: as stop, then start it again */
};

enum wait_cond {
    COND_NOT_RUNNING,
    COND_NEXT_EXIT,
    COND_REMOVED,
};

struct waiter {
    bd_conn_t *c;
    berth_engine_t *e;
    enum wait_kind kind;
    enum wait_cond cond;
    char id[65];
    int fd;
    int code;
    int polling, timing, poll_inited; /* poll_inited: never again (a handle is set up once) */
    int poll_open;                    /* the poll handle is to be closed */
    unsigned ticks;                   /* removal re-checks so far */
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_timer_t timer;  /* stop: the deadline; wait: re-checks (not started yet, removal) */
    int closes;        /* handles still closing */
    int freeing;       /* waiter_free ran: the last close frees */
    char finished[48]; /* the record's FinishedAt when the wait began: a new one is the next exit */
    int exited;        /* the exit is known; a removal may still be awaited */
    struct waiter *next_pending, **prev_pending; /* in `pending` until the container starts */
};

/* Waits for containers not started yet; berthd's start kicks them (so do the re-checks). */
static struct waiter *pending;

static void pending_add(struct waiter *w)
{
    w->next_pending = pending;
    if (pending)
        pending->prev_pending = &w->next_pending;
    w->prev_pending = &pending;
    pending = w;
}

static void pending_del(struct waiter *w)
{
    if (!w->prev_pending)
        return;
    *w->prev_pending = w->next_pending;
    if (w->next_pending)
        w->next_pending->prev_pending = w->prev_pending;
    w->prev_pending = NULL;
    w->next_pending = NULL;
}

static void waiter_closed(uv_handle_t *h)
{
    struct waiter *w = h->data;
    if (--w->closes == 0 && w->freeing)
        free(w);
}

/*
 * Close the poll handle before its fd goes: libuv's close of a poll handle
 * removes the handle's fd number from its epoll set, and once the fd is
 * closed that number can already be another connection's, whose events
 * would then stop (and libuv aborts when it next modifies that watcher).
 */
static void waiter_close_poll(struct waiter *w)
{
    if (!w->poll_open)
        return;
    if (w->polling)
        uv_poll_stop(&w->poll);
    w->polling = 0;
    w->poll_open = 0;
    w->closes++;
    uv_close((uv_handle_t *)&w->poll, waiter_closed);
}

/* Drop everything; the reply (if any) is sent already. */
static void waiter_free(struct waiter *w)
{
    pending_del(w);
    bd_on_gone(w->c, NULL, NULL);
    bd_conn_unref(w->c);
    w->freeing = 1;
    /* The poll goes before its fd: libuv must not watch a closed descriptor. */
    waiter_close_poll(w);
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->closes++;
    uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

static void waiter_gone(void *ud)
{
    waiter_free(ud);
}

/* docker restart, once the stop (if any) is over: start by hand, as docker restart does. */
static void restart_after_stop(bd_conn_t *c, berth_engine_t *e, const char *id)
{
    berth_err_t err = { 0 };
    int r = berth_container_start(e, id, 0, &err);

    if (r < 0) {
        bd_respond_error(c, r == -ENOENT || r == -EACCES ? 400 : bd_status_of(r), "%s",
                         err.msg[0] ? err.msg : strerror(-r));
        return;
    }
    bd_respond(c, 204, NULL, NULL, NULL, 0);
    kick_pending(e, id);
    supervise(e, id);
}

static void waiter_answer(struct waiter *w)
{
    if (w->kind == WAIT_STOP) {
        berth_container_record_stop(w->e, w->id, NULL); /* the stop event, as Docker's */
        bd_respond(w->c, 204, NULL, NULL, NULL, 0);
    } else if (w->kind == WAIT_RESTART) {
        restart_after_stop(w->c, w->e, w->id);
    } else {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"StatusCode\":%d}\n", w->code);
        bd_stream_write(w->c, body, (size_t)n);
        bd_stream_end(w->c);
    }
    waiter_free(w);
}

static void on_wait_timer(uv_timer_t *t);

/* The exit is known (w->code): answer, or first wait for the record to go (removed). */
static void after_exit(struct waiter *w)
{
    w->exited = 1;
    pending_del(w);
    if (w->timing) {
        uv_timer_stop(&w->timer);
        w->timing = 0;
    }
    if (w->kind == WAIT_RESPOND && w->cond == COND_REMOVED) {
        w->timing = 1;
        uv_timer_start(&w->timer, on_wait_timer, 2, 2);
        return;
    }
    waiter_answer(w);
}

static void on_wait_fd(uv_poll_t *p, int status, int events)
{
    struct waiter *w = p->data;
    (void)p;
    (void)status;
    (void)events;
    /* wait_end closes the fd: the handle goes first (waiter_close_poll). */
    waiter_close_poll(w);
    if (berth_container_wait_end(w->e, w->id, w->fd, &w->code, NULL) < 0)
        w->code = -1;
    w->fd = -1;
    after_exit(w);
}

/* Ask the monitor; 0 when now polling, 1 when there is none to ask (w->code then recorded). */
static int waiter_begin(struct waiter *w)
{
    int r = berth_container_wait_begin(w->e, w->id, &w->fd, &w->code, NULL);
    if (r != 0)
        return 1;
    if (w->poll_inited || uv_poll_init(w->loop, &w->poll, w->fd) < 0) {
        close(w->fd);
        w->fd = -1;
        return 1;
    }
    w->poll_inited = 1;
    w->poll_open = 1;
    w->poll.data = w;
    w->polling = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, on_wait_fd) == 0;
    return w->polling ? 0 : 1;
}

/* The container runs now (berthd started it, or a re-check saw it): ask its monitor. */
static void waiter_started(struct waiter *w)
{
    pending_del(w);
    if (w->timing) {
        uv_timer_stop(&w->timer);
        w->timing = 0;
    }
    if (waiter_begin(w) != 0)
        after_exit(w);
}

static void kick_pending(berth_engine_t *e, const char *ref)
{
    json_t *doc = NULL;
    const char *id;

    if (!pending)
        return;

    if (berth_container_inspect(e, ref, &doc, NULL) == 0 &&
        (id = json_string_value(json_object_get(doc, "Id"))))
        for (struct waiter *w = pending, *next; w; w = next) {
            next = w->next_pending;
            if (!strcmp(w->id, id))
                waiter_started(w);
        }
    json_decref(doc);
}

static void on_wait_timer(uv_timer_t *t)
{
    struct waiter *w = t->data;
    json_t *doc = NULL;
    const char *fin;
    char *st;

    if (w->kind == WAIT_STOP || w->kind == WAIT_RESTART) {
        /* The stop timeout passed: SIGKILL, and keep waiting for the exit. */
        uv_timer_stop(t);
        w->timing = 0;
        berth_container_kill(w->e, w->id, SIGKILL, NULL);
        return;
    }
    st = state_of(w->e, w->id, &doc);
    if (w->exited) {
        /* After the exit: answer once the record is gone (at most ~5 s of looking). */
        if (!st || ++w->ticks > 2500) {
            uv_timer_stop(t);
            w->timing = 0;
            waiter_answer(w);
        }
    } else if (!st) {
        /* Gone before we saw it run. */
        after_exit(w);
    } else if (!strcmp(st, "running") || !strcmp(st, "paused")) {
        waiter_started(w);
    } else if (!strcmp(st, "exited") &&
               (fin = json_string_value(
                    json_object_get(json_object_get(doc, "State"), "FinishedAt"))) &&
               strcmp(fin, w->finished) != 0) {
        /* It ran and ended between two looks. */
        w->code =
            (int)json_integer_value(json_object_get(json_object_get(doc, "State"), "ExitCode"));
        after_exit(w);
    }
    free(st);
    json_decref(doc);
}

static struct waiter *waiter_new(bd_conn_t *c, berth_engine_t *e, const char *id,
                                 enum wait_kind kind)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->c = bd_defer(c);
    w->e = e;
    w->kind = kind;
    w->fd = -1;
    w->loop = bd_conn_loop(c);
    snprintf(w->id, sizeof(w->id), "%s", id);
    uv_timer_init(w->loop, &w->timer);
    w->timer.data = w;
    bd_on_gone(c, waiter_gone, w);
    return w;
}

static void container_wait(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                           const char *ref)
{
    char cond[32] = "not-running", *st;
    json_t *doc = NULL, *state;
    struct waiter *w;
    const char *id;

    if (bd_query(req, "condition", cond, sizeof(cond)) < 0 ||
        (strcmp(cond, "not-running") && strcmp(cond, "next-exit") && strcmp(cond, "removed"))) {
        bd_respond_error(c, 400, "invalid condition: \"%s\"", cond);
        return;
    }
    if (!(st = state_of(e, ref, &doc))) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    id = json_string_value(json_object_get(doc, "Id"));
    if (!(w = waiter_new(c, e, id ? id : ref, WAIT_RESPOND))) {
        free(st);
        json_decref(doc);
        bd_respond_error(c, 500, "out of memory");
        return;
    }
    w->cond = !strcmp(cond, "removed")     ? COND_REMOVED
              : !strcmp(cond, "next-exit") ? COND_NEXT_EXIT
                                           : COND_NOT_RUNNING;
    state = json_object_get(doc, "State");
    w->code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    snprintf(w->finished, sizeof(w->finished), "%s",
             json_string_value(json_object_get(state, "FinishedAt")) ?: "");
    json_decref(doc);
    /* Headers now: the docker CLI's wait call returns on them, then reads the body. */
    bd_stream_begin(c, 200, "application/json");
    if (!strcmp(st, "running") || !strcmp(st, "paused")) {
        if (waiter_begin(w) != 0)
            after_exit(w);
    } else if (w->cond == COND_NOT_RUNNING) {
        waiter_answer(w);
    } else if (!strcmp(st, "created") && waiter_begin(w) == 0) {
        /* A monitor already waits to start it (docker run attached first): it will tell. */
    } else {
        /* Not started yet: berthd's start kicks this; re-checks catch a start made elsewhere. */
        pending_add(w);
        w->timing = 1;
        uv_timer_start(&w->timer, on_wait_timer, 5, 5);
    }
    free(st);
}

/* stop (@kind WAIT_STOP) and restart (WAIT_RESTART, which then starts it again). */
static void stop_then(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *ref,
                      enum wait_kind kind)
{
    char t[16], name[32], *st;
    json_t *doc = NULL, *cfg;
    struct waiter *w;
    const char *id;
    int sig = SIGTERM, timeout = 10;

    if (!(st = state_of(e, ref, &doc))) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    if (strcmp(st, "running") && strcmp(st, "paused")) {
        free(st);
        json_decref(doc);
        if (kind == WAIT_RESTART)
            restart_after_stop(c, e, ref);
        else
            bd_respond(c, 304, NULL, NULL, NULL, 0);
        return;
    }
    cfg = json_object_get(doc, "Config");
    if (json_string_value(json_object_get(cfg, "StopSignal")))
        sig = berth_parse_signal(json_string_value(json_object_get(cfg, "StopSignal")));
    if (json_is_integer(json_object_get(cfg, "StopTimeout")))
        timeout = (int)json_integer_value(json_object_get(cfg, "StopTimeout"));
    if (bd_query(req, "signal", name, sizeof(name)) == 1 && name[0])
        sig = berth_parse_signal(name);
    if (bd_query(req, "t", t, sizeof(t)) == 1 && t[0])
        timeout = atoi(t);
    /* A paused container is thawed after its stop signal (berth_container_kill), as in Docker. */
    if (sig <= 0)
        sig = SIGKILL;
    free(st);
    id = json_string_value(json_object_get(doc, "Id"));
    w = waiter_new(c, e, id ? id : ref, kind);
    json_decref(doc);
    if (!w) {
        bd_respond_error(c, 500, "out of memory");
        return;
    }
    berth_container_kill(e, w->id, sig, NULL);
    if (waiter_begin(w) != 0) {
        waiter_answer(w);
        return;
    }
    if (timeout >= 0) {
        w->timing = 1;
        uv_timer_start(&w->timer, on_wait_timer, (uint64_t)timeout * 1000, 0);
    }
}

static void container_stop(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                           const char *ref)
{
    stop_then(c, req, e, ref, WAIT_STOP);
}

static void container_restart(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                              const char *ref)
{
    stop_then(c, req, e, ref, WAIT_RESTART);
}

/*
 * Attach: the hijacked connection relays the container's streams. The
 * monitor speaks frames (8-byte header, stream 1 stdout, 2 stderr, 3 the
 * exit); the client wants Docker's: the same frames for streams 1 and 2
 * without a terminal, the bare bytes with one. Stream 3 ends the attach:
 * Docker's client takes a stream-3 frame as an error, and learns the exit
 * code from wait.
 */
struct exec_rec;
static void exec_exited(struct exec_rec *x, const char *payload);
static void exec_held(struct exec_rec *x);
static void exec_released(struct exec_rec *x);

struct relay {
    bd_conn_t *c;
    uv_pipe_t shim;
    struct exec_rec *exec; /* an exec's stream: its exit code is recorded from the exit frame */
    char exit_json[256];
    size_t exit_len;
    int tty;
    int shim_open, shim_eof;
    unsigned char hdr[8];
    size_t hdr_len;
    size_t left; /* payload bytes of the current frame still to come */
    int stream;
};

static void relay_shim_closed(uv_handle_t *h)
{
    struct relay *r = h->data;
    if (r->exec)
        exec_released(r->exec);
    free(r);
}

/* End both sides; frees the relay once its handle has closed. */
static void relay_end(struct relay *r)
{
    bd_conn_t *c = r->c;
    if (c) {
        r->c = NULL;
        bd_on_gone(c, NULL, NULL);
        bd_raw_close(c);
        bd_conn_unref(c);
    }
    if (r->shim_open) {
        r->shim_open = 0;
        uv_close((uv_handle_t *)&r->shim, relay_shim_closed);
    }
}

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

static void relay_from_shim(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct relay *r = st->data;
    const unsigned char *p = (const unsigned char *)b->base;
    size_t len = n > 0 ? (size_t)n : 0;

    while (len > 0 && r->c) {
        if (r->left == 0) {
            size_t take = sizeof(r->hdr) - r->hdr_len < len ? sizeof(r->hdr) - r->hdr_len : len;
            memcpy(r->hdr + r->hdr_len, p, take);
            r->hdr_len += take;
            p += take;
            len -= take;
            if (r->hdr_len < sizeof(r->hdr))
                break;
            r->hdr_len = 0;
            r->stream = r->hdr[0];
            r->left = (size_t)r->hdr[4] << 24 | (size_t)r->hdr[5] << 16 | (size_t)r->hdr[6] << 8 |
                      r->hdr[7];
            if (r->stream == 3 && r->left == 0) {
                /* The exit, without detail: the stream is over. */
                free(b->base);
                relay_end(r);
                return;
            }
            if (r->stream != 3 && !r->tty && r->left > 0)
                bd_raw_write(r->c, r->hdr, sizeof(r->hdr));
            continue;
        }
        {
            size_t take = r->left < len ? r->left : len;
            if (r->stream == 3) {
                /* The exit: {"exit_code":N}; recorded (exec) before the client sees the end. */
                size_t room = sizeof(r->exit_json) - 1 - r->exit_len;
                memcpy(r->exit_json + r->exit_len, p, take < room ? take : room);
                r->exit_len += take < room ? take : room;
            } else {
                bd_raw_write(r->c, p, take);
            }
            p += take;
            len -= take;
            r->left -= take;
            if (r->stream == 3 && r->left == 0) {
                r->exit_json[r->exit_len] = '\0';
                if (r->exec)
                    exec_exited(r->exec, r->exit_json);
                free(b->base);
                relay_end(r);
                return;
            }
        }
    }
    free(b->base);
    if (n < 0)
        relay_end(r);
}

struct shim_write {
    uv_write_t req;
    char *data;
};

static void relay_written(uv_write_t *req, int status)
{
    struct shim_write *w = (struct shim_write *)req;
    (void)status;
    free(w->data);
    free(w);
}

static void relay_from_client(void *ud, const char *buf, size_t n)
{
    struct relay *r = ud;
    struct shim_write *w = NULL;
    uv_buf_t b;

    if (!r->shim_open || !(w = calloc(1, sizeof(*w))) || !(w->data = malloc(n))) {
        free(w);
        return;
    }
    memcpy(w->data, buf, n);
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&r->shim, &b, 1, relay_written) < 0) {
        free(w->data);
        free(w);
    }
}

static void relay_shutdown_done(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* The client's stdin ended: so does the container's (the monitor decides what that means). */
static void relay_client_eof(void *ud)
{
    struct relay *r = ud;
    uv_shutdown_t *req = calloc(1, sizeof(*req));
    if (req &&
        (!r->shim_open || uv_shutdown(req, (uv_stream_t *)&r->shim, relay_shutdown_done) < 0))
        free(req);
}

static void relay_client_gone(void *ud)
{
    struct relay *r = ud;
    bd_conn_t *c = r->c;
    /* Detaching (or a killed CLI) leaves the container running, as in Docker. */
    r->c = NULL;
    if (c)
        bd_conn_unref(c);
    relay_end(r);
}

/*
 * Hijack @c and relay the monitor's stream on @fd (taken over) to it:
 * attach's, or an exec's (@exec, whose exit code the exit frame records).
 */
static void relay_start(bd_conn_t *c, const bd_request_t *req, int fd, int tty,
                        struct exec_rec *exec)
{
    struct relay *r = calloc(1, sizeof(*r));

    if (!r) {
        close(fd);
        bd_respond_error(c, 500, "out of memory");
        return;
    }
    r->tty = tty;
    r->exec = exec;
    if (exec)
        exec_held(exec);
    uv_pipe_init(bd_conn_loop(c), &r->shim, 0);
    r->shim.data = r;
    if (uv_pipe_open(&r->shim, fd) < 0) {
        close(fd);
        uv_close((uv_handle_t *)&r->shim, relay_shim_closed);
        bd_respond_error(c, 500, "cannot relay the container's streams");
        return;
    }
    r->shim_open = 1;
    /* 101 for a client that asked to upgrade; old clients get 200 and the same stream. */
    r->c = bd_hijack(c, bd_header(req, "Upgrade") ? 101 : 200,
                     tty ? "application/vnd.docker.raw-stream"
                         : "application/vnd.docker.multiplexed-stream",
                     relay_from_client, relay_client_eof, relay_client_gone, r);
    uv_read_start((uv_stream_t *)&r->shim, relay_alloc, relay_from_shim);
}

static void container_attach(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                             const char *ref)
{
    berth_err_t err = { 0 };
    char *st;
    int fd = -1, tty = 0, rc, waiting;

    if (!(st = state_of(e, ref, NULL))) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    /*
     * docker run and start -a attach before they start: a monitor waiting to start (a created
     * container may have one already) holds the streams until the start.
     */
    waiting = !strcmp(st, "created") || !strcmp(st, "exited");
    if (waiting && (rc = berth_container_start(e, ref, BERTH_START_WAIT, &err)) < 0 &&
        !strstr(err.msg, "already")) {
        free(st);
        bd_respond_error(c, bd_status_of(rc) == 500 ? 409 : bd_status_of(rc), "%s", err.msg);
        return;
    }
    free(st);
    memset(&err, 0, sizeof(err));
    rc = berth_container_attach(e, ref,
                                (bd_query_bool(req, "stdin") ? BERTH_ATTACH_STDIN : 0) |
                                    (waiting ? BERTH_ATTACH_WAITING : 0),
                                &fd, &tty, &err);
    if (rc < 0) {
        bd_respond_error(c, rc == -EINVAL ? 409 : bd_status_of(rc), "%s",
                         err.msg[0] ? err.msg : strerror(-rc));
        return;
    }
    relay_start(c, req, fd, tty, NULL);
}

static void container_resize(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                             const char *ref)
{
    char h[16] = "", w[16] = "";
    berth_err_t err = { 0 };
    int rows, cols, r;

    bd_query(req, "h", h, sizeof(h));
    bd_query(req, "w", w, sizeof(w));
    rows = atoi(h);
    cols = atoi(w);
    if (rows < 1 || cols < 1 || rows > 65535 || cols > 65535) {
        bd_respond_error(c, 400, "invalid terminal size %sx%s", w, h);
        return;
    }
    if ((r = berth_container_resize(e, ref, NULL, (uint16_t)cols, (uint16_t)rows, &err)) < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond(c, 200, NULL, NULL, NULL, 0);
}

/*
 * Logs: Docker's frames, or the bare text for a container with a terminal.
 * With follow=1 the reply is chunked and stays open while the container
 * runs: an inotify watch on the log directory says when to read again, the
 * monitor's wait socket says when the container is gone (then one last
 * read), and a 1 s timer covers a watch that could not be set up.
 */
struct logbuf {
    char *data;
    size_t len, cap;
    int tty, timestamps, want_out, want_err;
    int64_t since_ns, until_ns; /* 0: no bound */
    int past_until;
};

static int log_line(void *ud, int stream, int64_t time_ns, const char *data, size_t len)
{
    struct logbuf *lb = ud;
    char ts[64] = "";
    size_t tl = 0, need;

    if ((stream == 1 && !lb->want_out) || (stream == 2 && !lb->want_err))
        return 0;
    if (lb->since_ns && time_ns < lb->since_ns)
        return 0;
    if (lb->until_ns && time_ns > lb->until_ns) {
        lb->past_until = 1;
        return 0;
    }
    if (lb->timestamps) {
        berth_format_time(time_ns, ts, sizeof(ts) - 1);
        tl = strlen(ts);
        ts[tl++] = ' ';
    }
    need = lb->len + 8 + tl + len;
    if (need > lb->cap) {
        size_t cap = lb->cap ? lb->cap : 4096;
        char *d;
        while (cap < need)
            cap *= 2;
        if (!(d = realloc(lb->data, cap)))
            return -ENOMEM;
        lb->data = d;
        lb->cap = cap;
    }
    if (!lb->tty) {
        uint32_t n = (uint32_t)(tl + len);
        unsigned char h[8] = { (unsigned char)stream,
                               0,
                               0,
                               0,
                               (unsigned char)(n >> 24),
                               (unsigned char)(n >> 16),
                               (unsigned char)(n >> 8),
                               (unsigned char)n };
        memcpy(lb->data + lb->len, h, 8);
        lb->len += 8;
    }
    memcpy(lb->data + lb->len, ts, tl);
    lb->len += tl;
    memcpy(lb->data + lb->len, data, len);
    lb->len += len;
    return 0;
}

/*
 * Docker's time arguments (since, until): Unix seconds with an optional
 * fraction, as the CLI sends them after resolving "10m" or RFC 3339 itself.
 * 0 when absent; -1 when malformed.
 */
static int64_t query_time(const bd_request_t *req, const char *name)
{
    char buf[64], *end;
    long long sec;
    int64_t ns = 0, scale = 100000000;
    const char *p;

    if (bd_query(req, name, buf, sizeof(buf)) != 1 || !buf[0])
        return 0;
    errno = 0;
    sec = strtoll(buf, &end, 10);
    if (errno || end == buf || sec < 0 || sec > INT64_MAX / 1000000000 - 1)
        return -1;
    if (*end == '.') {
        for (p = end + 1; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ns += (*p - '0') * scale;
        if (p == end + 1 || *p)
            return -1;
    } else if (*end) {
        return -1;
    }
    return (int64_t)sec * 1000000000 + ns;
}

struct follower {
    bd_conn_t *c;
    berth_engine_t *e;
    berth_log_reader_t *rd;
    struct logbuf lb;
    char id[65];
    int fd; /* the monitor's wait socket */
    int watching, polling;
    int closes;  /* handles still closing */
    int freeing; /* follower_free ran: the last close frees */
    uv_fs_event_t watch;
    uv_poll_t poll;
    uv_timer_t timer;
};

static void follower_closed(uv_handle_t *h)
{
    struct follower *f = h->data;
    if (--f->closes == 0 && f->freeing) {
        if (f->fd >= 0)
            close(f->fd);
        free(f->lb.data);
        berth_log_reader_close(f->rd);
        free(f);
    }
}

static void follower_free(struct follower *f)
{
    bd_on_gone(f->c, NULL, NULL);
    bd_conn_unref(f->c);
    f->freeing = 1;
    f->closes += 1 + f->watching + f->polling;
    if (f->watching)
        uv_close((uv_handle_t *)&f->watch, follower_closed);
    if (f->polling)
        uv_close((uv_handle_t *)&f->poll, follower_closed);
    uv_close((uv_handle_t *)&f->timer, follower_closed);
}

static void follower_gone(void *ud)
{
    follower_free(ud);
}

/* Read what is new and send it; 1 when the stream should end (error, past until). */
static int follower_flush(struct follower *f)
{
    int r = berth_log_reader_read(f->rd, log_line, &f->lb, NULL);
    if (f->lb.len) {
        bd_stream_write(f->c, f->lb.data, f->lb.len);
        f->lb.len = 0;
    }
    return r != 0 || f->lb.past_until;
}

static void follower_end(struct follower *f)
{
    follower_flush(f);
    bd_stream_end(f->c);
    follower_free(f);
}

static void on_follow_change(uv_fs_event_t *h, const char *file, int events, int status)
{
    struct follower *f = h->data;
    (void)file;
    (void)events;
    (void)status;
    if (follower_flush(f))
        follower_end(f);
}

static void on_follow_exit(uv_poll_t *p, int status, int events)
{
    struct follower *f = p->data;
    int code;
    (void)status;
    (void)events;
    /*
     * Closed before wait_end closes its fd: a later close would remove the
     * fd's number from libuv's epoll set when it may be another's already.
     */
    f->polling = 0;
    f->closes++;
    uv_close((uv_handle_t *)p, follower_closed);
    berth_container_wait_end(f->e, f->id, f->fd, &code, NULL);
    f->fd = -1;
    follower_end(f);
}

static void on_follow_timer(uv_timer_t *t)
{
    struct follower *f = t->data;
    char *st = state_of(f->e, f->id, NULL);
    int alive = st && (!strcmp(st, "running") || !strcmp(st, "paused"));

    free(st);
    if (!alive || follower_flush(f))
        follower_end(f);
}

static void follow(bd_conn_t *c, berth_engine_t *e, const char *id, berth_log_reader_t *rd,
                   const struct logbuf *lb)
{
    struct follower *f = calloc(1, sizeof(*f));
    uv_loop_t *loop = bd_conn_loop(c);
    uint64_t period = 1000;
    int code;

    if (!f) {
        berth_log_reader_close(rd);
        bd_stream_end(c);
        return;
    }
    f->c = bd_defer(c);
    f->e = e;
    f->rd = rd;
    f->lb = *lb;
    f->fd = -1;
    snprintf(f->id, sizeof(f->id), "%s", id);
    bd_on_gone(c, follower_gone, f);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    /* The monitor answers on this socket when the container exits; 1: it is not running. */
    if (berth_container_wait_begin(e, id, &f->fd, &code, NULL) != 0) {
        follower_end(f);
        return;
    }
    if (uv_poll_init(loop, &f->poll, f->fd) == 0) {
        f->polling = 1;
        f->poll.data = f;
        uv_poll_start(&f->poll, UV_READABLE | UV_DISCONNECT, on_follow_exit);
    }
    if (uv_fs_event_init(loop, &f->watch) == 0) {
        f->watching = 1;
        f->watch.data = f;
        if (uv_fs_event_start(&f->watch, on_follow_change, berth_log_reader_dir(rd), 0) < 0)
            period = 100; /* no watch: look often instead */
    }
    uv_timer_start(&f->timer, on_follow_timer, period, period);
}

static void container_logs(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                           const char *ref)
{
    struct logbuf lb = { 0 };
    berth_log_reader_t *rd = NULL;
    json_t *insp = NULL;
    berth_err_t err = { 0 };
    char tail[16] = "all", id[65];
    const char *ctype;
    int r;

    if ((r = berth_container_inspect(e, ref, &insp, &err)) < 0) {
        bd_respond_lookup(c, r, &err, "container", ref);
        return;
    }
    lb.tty = json_is_true(json_object_get(json_object_get(insp, "Config"), "Tty"));
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(insp, "Id")) ?: ref);
    json_decref(insp);
    lb.timestamps = bd_query_bool(req, "timestamps");
    lb.want_out = bd_query_bool(req, "stdout");
    lb.want_err = bd_query_bool(req, "stderr");
    if (!lb.want_out && !lb.want_err) {
        bd_respond_error(c, 400, "you must choose at least one stream");
        return;
    }
    if ((lb.since_ns = query_time(req, "since")) < 0 ||
        (lb.until_ns = query_time(req, "until")) < 0) {
        bd_respond_error(c, 400, "invalid time value for since or until");
        return;
    }
    bd_query(req, "tail", tail, sizeof(tail));
    r = berth_log_reader_open(e, id, strcmp(tail, "all") && tail[0] ? atoll(tail) : -1, &rd, &err);
    if (r == 0)
        r = berth_log_reader_read(rd, log_line, &lb, &err);
    if (r < 0) {
        berth_log_reader_close(rd);
        free(lb.data);
        bd_respond_err(c, r, &err);
        return;
    }
    ctype =
        lb.tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
    if (!bd_query_bool(req, "follow") || lb.past_until) {
        berth_log_reader_close(rd);
        bd_respond(c, 200, ctype, NULL, lb.data ? lb.data : "", lb.len);
        free(lb.data);
        return;
    }
    /* Headers at once: the client shows lines as they come. */
    bd_stream_begin(c, 200, ctype);
    if (lb.len)
        bd_stream_write(c, lb.data, lb.len);
    lb.len = 0;
    follow(c, e, id, rd, &lb);
}

/*
 * Stats in Docker's shape (the docker CLI computes CPU % from the change of
 * cpu_stats over precpu_stats against system_cpu_usage, and memory use as
 * usage minus inactive file pages). stream=1: one object a second, chunked.
 * stream=0: two readings a second apart, so precpu is filled, as Docker
 * does; with one-shot=1 a single reading.
 */
static int64_t system_cpu_ns(void)
{
    unsigned long long v[8] = { 0 };
    long hz = sysconf(_SC_CLK_TCK);
    int64_t sum = 0;
    FILE *f = fopen("/proc/stat", "re");

    if (!f)
        return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) < 4)
        memset(v, 0, sizeof(v));
    fclose(f);
    for (int i = 0; i < 8; i++)
        sum += (int64_t)v[i];
    return hz > 0 ? sum * (1000000000 / hz) : 0;
}

static json_t *cpu_stats(json_int_t usage_ns, int64_t system_ns)
{
    return json_pack("{s:{s:I, s:I, s:I}, s:I, s:i, s:{s:i, s:i, s:i}}", "cpu_usage", "total_usage",
                     usage_ns, "usage_in_kernelmode", (json_int_t)0, "usage_in_usermode",
                     (json_int_t)0, "system_cpu_usage", (json_int_t)system_ns, "online_cpus",
                     (int)sysconf(_SC_NPROCESSORS_ONLN), "throttling_data", "periods", 0,
                     "throttled_periods", 0, "throttled_time", 0);
}

/* One reading as Docker gives it; @prev (may be NULL) is the last one's cpu_stats. */
static json_t *stats_reading(berth_engine_t *e, const char *id, const char *name, json_t *prev)
{
    json_t *s = NULL, *mem, *out;
    json_int_t usage = 0, limit = -1, pids = 0, pids_limit = 0, cpu = 0;
    struct sysinfo si;
    char read[64];

    if (berth_container_stats(e, id, &s, NULL) == 0) {
        mem = json_object_get(s, "memory");
        usage = json_integer_value(json_object_get(mem, "usage"));
        limit = json_integer_value(json_object_get(mem, "limit"));
        cpu = json_integer_value(json_object_get(json_object_get(s, "cpu"), "usage_ns"));
        pids = json_integer_value(json_object_get(json_object_get(s, "pids"), "current"));
        pids_limit = json_integer_value(json_object_get(json_object_get(s, "pids"), "limit"));
    }
    json_decref(s);
    /* No limit: Docker reports the host's memory. */
    if (limit <= 0 && sysinfo(&si) == 0)
        limit = (json_int_t)si.totalram * si.mem_unit;
    berth_format_time((int64_t)time(NULL) * 1000000000, read, sizeof(read));
    out = json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:o?}, s:{}, s:i, s:{}, s:o, s:O?, s:{s:I, "
                    "s:I, s:{s:I}}}",
                    "id", id, "name", name, "read", read, "preread", "0001-01-01T00:00:00Z",
                    "pids_stats", "current", pids, "limit",
                    pids_limit > 0 ? json_integer(pids_limit) : NULL, "blkio_stats", "num_procs", 0,
                    "storage_stats", "cpu_stats", cpu_stats(cpu, system_cpu_ns()), "precpu_stats",
                    prev, "memory_stats", "usage", usage, "limit", limit, "stats", "inactive_file",
                    (json_int_t)0);
    if (out && !prev)
        json_object_set_new(out, "precpu_stats", cpu_stats(0, 0));
    return out;
}

struct stats_req {
    bd_conn_t *c;
    berth_engine_t *e;
    char id[65], name[256];
    int stream;
    json_t *prev;
    uv_timer_t timer;
};

static void stats_closed(uv_handle_t *h)
{
    struct stats_req *sr = h->data;
    json_decref(sr->prev);
    free(sr);
}

static void stats_free(struct stats_req *sr)
{
    bd_on_gone(sr->c, NULL, NULL);
    bd_conn_unref(sr->c);
    uv_close((uv_handle_t *)&sr->timer, stats_closed);
}

static void stats_gone(void *ud)
{
    stats_free(ud);
}

static void on_stats_timer(uv_timer_t *t)
{
    struct stats_req *sr = t->data;
    json_t *r = stats_reading(sr->e, sr->id, sr->name, sr->prev);
    char *st = state_of(sr->e, sr->id, NULL);
    int running = st && !strcmp(st, "running");
    char *text;

    free(st);
    if (!sr->stream) {
        bd_respond_json(sr->c, 200, r);
        stats_free(sr);
        return;
    }
    json_decref(sr->prev);
    sr->prev = json_incref(json_object_get(r, "cpu_stats"));
    text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    if (text) {
        bd_stream_write(sr->c, text, strlen(text));
        bd_stream_write(sr->c, "\n", 1);
    }
    free(text);
    if (!running) {
        bd_stream_end(sr->c);
        stats_free(sr);
    }
}

static void container_stats(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                            const char *ref)
{
    json_t *doc = NULL;
    struct stats_req *sr;
    char *st = state_of(e, ref, &doc), v[16];

    if (!st) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    if (!(sr = calloc(1, sizeof(*sr)))) {
        free(st);
        json_decref(doc);
        bd_respond_error(c, 500, "out of memory");
        return;
    }
    snprintf(sr->id, sizeof(sr->id), "%s", json_string_value(json_object_get(doc, "Id")) ?: ref);
    snprintf(sr->name, sizeof(sr->name), "%s",
             json_string_value(json_object_get(doc, "Name")) ?: "");
    json_decref(doc);
    sr->e = e;
    /* Docker streams unless told stream=0. */
    sr->stream = bd_query(req, "stream", v, sizeof(v)) != 1 || bd_query_bool(req, "stream");
    if ((!sr->stream && bd_query_bool(req, "one-shot")) || strcmp(st, "running")) {
        /* One reading: asked for, or nothing will change. */
        bd_respond_json(c, 200, stats_reading(e, sr->id, sr->name, NULL));
        free(sr);
        free(st);
        return;
    }
    free(st);
    sr->c = bd_defer(c);
    bd_on_gone(c, stats_gone, sr);
    uv_timer_init(bd_conn_loop(c), &sr->timer);
    sr->timer.data = sr;
    if (sr->stream) {
        /* The first reading at once (from the loop, which may end the stream), then every second. */
        bd_stream_begin(c, 200, "application/json");
        uv_timer_start(&sr->timer, on_stats_timer, 0, 1000);
    } else {
        json_t *first = stats_reading(e, sr->id, sr->name, NULL);
        sr->prev = json_incref(json_object_get(first, "cpu_stats"));
        json_decref(first);
        uv_timer_start(&sr->timer, on_stats_timer, 1000, 0);
    }
}

/*
 * Exec instances: docker exec creates one, starts it (attached through the
 * HTTP upgrade, or detached), then reads its exit code. They live in
 * berthd's memory until it restarts.
 */
struct exec_rec {
    char id[65];
    char container[65];
    char berth_id[65]; /* the engine's id for it, once started */
    json_t *opts;
    int started, running, exit_code;
    int held; /* a relay points at it */
    uv_loop_t *loop;
    uint64_t last_ms; /* made, or ended (loop time) */
    struct exec_rec *next;
};

static struct exec_rec *execs;

/*
 * Exec records are dropped as Docker's daemon drops them: 5 minutes after
 * the exec ended (or was made and never started, or ran detached), once
 * nothing points at them, and at once when their container is gone. Swept
 * when a new one is made.
 */
#define EXEC_KEEP_MS (5 * 60 * 1000)

static void exec_held(struct exec_rec *x)
{
    x->held = 1;
}

static void exec_released(struct exec_rec *x)
{
    x->held = 0;
}

static void exec_sweep(berth_engine_t *e, uint64_t now)
{
    for (struct exec_rec **p = &execs; *p;) {
        struct exec_rec *x = *p;
        json_t *insp = NULL;
        int gone = 0;
        if (!x->held && now - x->last_ms >= EXEC_KEEP_MS)
            gone = 1;
        else if (!x->held && berth_container_inspect(e, x->container, &insp, NULL) == -ENOENT)
            gone = 1;
        json_decref(insp);
        if (!gone) {
            p = &x->next;
            continue;
        }
        *p = x->next;
        json_decref(x->opts);
        free(x);
    }
}

static struct exec_rec *exec_find(const char *id)
{
    for (struct exec_rec *x = execs; x; x = x->next)
        if (!strcmp(x->id, id))
            return x;
    return NULL;
}

static void exec_exited(struct exec_rec *x, const char *payload)
{
    json_t *j = json_loads(payload, 0, NULL);
    x->running = 0;
    x->last_ms = uv_now(x->loop);
    x->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
    json_decref(j);
}

static void exec_create(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *ref)
{
    static const char hex[] = "0123456789abcdef";
    json_t *body, *insp = NULL, *cmd;
    unsigned char rnd[32];
    struct exec_rec *x;
    json_error_t jerr;
    const char *st, *cid;

    body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        bd_respond_error(c, 400, "invalid JSON in the request body: %s", jerr.text);
        return;
    }
    cmd = json_object_get(body, "Cmd");
    if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
        json_decref(body);
        bd_respond_error(c, 400, "No exec command specified");
        return;
    }
    if (berth_container_inspect(e, ref, &insp, NULL) < 0) {
        json_decref(body);
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    st = json_string_value(json_object_get(json_object_get(insp, "State"), "Status"));
    cid = json_string_value(json_object_get(insp, "Id"));
    if (!st || strcmp(st, "running") || !cid) {
        bd_respond_error(c, 409, "Container %s is not running", ref);
        json_decref(insp);
        json_decref(body);
        return;
    }
    if (!(x = calloc(1, sizeof(*x))) || getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        free(x);
        json_decref(insp);
        json_decref(body);
        bd_respond_error(c, 500, "cannot make an exec id");
        return;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x->id[2 * i] = hex[rnd[i] >> 4];
        x->id[2 * i + 1] = hex[rnd[i] & 15];
    }
    snprintf(x->container, sizeof(x->container), "%s", cid);
    x->opts = body;
    x->loop = bd_conn_loop(c);
    x->last_ms = uv_now(x->loop);
    exec_sweep(e, x->last_ms);
    x->next = execs;
    execs = x;
    json_decref(insp);
    bd_respond_json(c, 201, json_pack("{s:s}", "Id", x->id));
}

static void exec_start(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *id)
{
    struct exec_rec *x = exec_find(id);
    json_t *body, *opts;
    berth_err_t err = { 0 };
    int detach, tty, fd = -1, rc;

    if (!x) {
        bd_respond_error(c, 404, "No such exec instance: %s", id);
        return;
    }
    if (x->started) {
        bd_respond_error(c, 409, "Exec %s has already started", id);
        return;
    }
    body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : json_object();
    if (!json_is_object(body)) {
        json_decref(body);
        bd_respond_error(c, 400, "invalid JSON in the request body");
        return;
    }
    detach = json_is_true(json_object_get(body, "Detach"));
    tty =
        json_is_true(json_object_get(body, "Tty")) || json_is_true(json_object_get(x->opts, "Tty"));
    json_decref(body);
    opts = json_deep_copy(x->opts);
    json_object_set_new(opts, "Detach", json_boolean(detach));
    json_object_set_new(opts, "Tty", json_boolean(tty));
    json_object_set_new(opts, "ID", json_string(x->id)); /* events name the id docker has */
    rc = berth_container_exec(e, x->container, opts, x->berth_id, detach ? NULL : &fd, &err);
    json_decref(opts);
    if (rc < 0) {
        bd_respond_error(c, rc == -EINVAL || rc == -ESRCH ? 409 : bd_status_of(rc), "%s",
                         err.msg[0] ? err.msg : strerror(-rc));
        return;
    }
    x->started = 1;
    x->running = 1;
    if (detach) {
        bd_respond(c, 200, NULL, NULL, NULL, 0);
        return;
    }
    relay_start(c, req, fd, tty, x);
}

static void exec_inspect(bd_conn_t *c, const char *id)
{
    struct exec_rec *x = exec_find(id);

    if (!x) {
        bd_respond_error(c, 404, "No such exec instance: %s", id);
        return;
    }
    bd_respond_json(
        c, 200,
        json_pack("{s:s, s:b, s:o, s:s, s:i, s:b, s:b, s:b, s:b, s:s, s:{s:s, s:O}}", "ID", x->id,
                  "Running", x->running, "ExitCode",
                  x->started && !x->running ? json_integer(x->exit_code) : json_null(),
                  "ContainerID", x->container, "Pid", 0, "OpenStdin",
                  json_is_true(json_object_get(x->opts, "AttachStdin")), "OpenStdout", 1,
                  "OpenStderr", 1, "CanRemove", 0, "DetachKeys", "", "ProcessConfig", "entrypoint",
                  json_string_value(json_array_get(json_object_get(x->opts, "Cmd"), 0)) ?: "",
                  "arguments", json_object_get(x->opts, "Cmd")));
}

static void exec_resize(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *id)
{
    struct exec_rec *x = exec_find(id);
    char h[16] = "", w[16] = "";
    berth_err_t err = { 0 };
    int r;

    if (!x) {
        bd_respond_error(c, 404, "No such exec instance: %s", id);
        return;
    }
    bd_query(req, "h", h, sizeof(h));
    bd_query(req, "w", w, sizeof(w));
    if (atoi(h) < 1 || atoi(w) < 1 || atoi(h) > 65535 || atoi(w) > 65535) {
        bd_respond_error(c, 400, "invalid terminal size %sx%s", w, h);
        return;
    }
    if ((r = berth_container_resize(e, x->container, x->berth_id, (uint16_t)atoi(w),
                                    (uint16_t)atoi(h), &err)) < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond(c, 200, NULL, NULL, NULL, 0);
}

/* ---- images ---- */

static void images_list(bd_conn_t *c, berth_engine_t *e)
{
    json_t *list = NULL, *o;
    berth_err_t err = { 0 };
    size_t i;
    int r = berth_image_list(e, 0, &list, &err);

    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    json_array_foreach (list, i, o) {
        set_default(o, "ParentId", json_string(""));
        set_default(o, "SharedSize", json_integer(-1));
        set_default(o, "Containers", json_integer(-1));
        set_default(o, "Labels", json_object());
        set_default(o, "RepoTags", json_array());
        set_default(o, "RepoDigests", json_array());
    }
    bd_respond_json(c, 200, list);
}

static void image_inspect(bd_conn_t *c, berth_engine_t *e, const char *ref)
{
    json_t *j = NULL;
    berth_err_t err = { 0 };
    int r = berth_image_inspect(e, ref, &j, &err);

    if (r < 0) {
        bd_respond_lookup(c, r, &err, "image", ref);
        return;
    }
    bd_respond_json(c, 200, j);
}

/* POST /images/{name}/tag?repo=&tag= */
static void image_tag(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *ref)
{
    char repo[512] = "", tag[256] = "", target[800];
    berth_err_t err = { 0 };
    int r;

    if (bd_query(req, "repo", repo, sizeof(repo)) != 1 || !repo[0]) {
        bd_respond_error(c, 400, "repository name must have at least one component");
        return;
    }
    bd_query(req, "tag", tag, sizeof(tag));
    snprintf(target, sizeof(target), "%s%s%s", repo, tag[0] ? ":" : "", tag);
    if ((r = berth_image_tag(e, ref, target, &err)) < 0) {
        bd_respond_lookup(c, r, &err, "image", ref);
        return;
    }
    bd_respond(c, 201, NULL, NULL, NULL, 0);
}

/* DELETE /images/{name}?force= */
static void image_remove(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *ref)
{
    berth_err_t err = { 0 };
    json_t *out = NULL;
    int r = berth_image_remove(e, ref, bd_query_bool(req, "force") ? BERTH_IMAGE_RM_FORCE : 0, &out,
                               &err);

    if (r < 0) {
        bd_respond_lookup(c, r, &err, "image", ref);
        return;
    }
    bd_respond_json(c, 200, out ? out : json_array());
}

/* POST /images/prune?filters={"dangling":{"false":true}} (-a) */
static void images_prune(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    char filters[512] = "";
    berth_err_t err = { 0 };
    json_t *out = NULL;
    uint32_t flags = 0;
    int r;

    if (bd_query(req, "filters", filters, sizeof(filters)) == 1 &&
        strstr(filters, "\"dangling\"") && strstr(filters, "\"false\""))
        flags |= BERTH_IMAGE_PRUNE_ALL;
    if ((r = berth_image_prune(e, flags, &out, &err)) < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 200, out);
}

/* POST /containers/prune: every container that is not running. */
static void containers_prune(bd_conn_t *c, berth_engine_t *e)
{
    json_t *list = NULL, *o, *deleted = json_array();
    berth_err_t err = { 0 };
    size_t i;
    int r;

    if ((r = berth_container_list(e, BERTH_LIST_ALL, &list, &err)) < 0) {
        json_decref(deleted);
        bd_respond_err(c, r, &err);
        return;
    }
    json_array_foreach (list, i, o) {
        const char *st = json_string_value(json_object_get(o, "State"));
        const char *id = json_string_value(json_object_get(o, "Id"));
        if (id && st && (!strcmp(st, "exited") || !strcmp(st, "created") || !strcmp(st, "dead")) &&
            berth_container_remove(e, id, 0, NULL) == 0)
            json_array_append_new(deleted, json_string(id));
    }
    json_decref(list);
    bd_respond_json(c, 200,
                    json_pack("{s:o, s:i}", "ContainersDeleted", deleted, "SpaceReclaimed", 0));
}

static void container_top(bd_conn_t *c, berth_engine_t *e, const char *ref)
{
    berth_err_t err = { 0 };
    json_t *out = NULL;
    int r = berth_container_top(e, ref, &out, &err);

    if (r == -ENOENT && !container_exists(e, ref)) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    if (r < 0) {
        bd_respond_error(c, r == -EINVAL || r == -ESRCH ? 409 : bd_status_of(r), "%s",
                         err.msg[0] ? err.msg : strerror(-r));
        return;
    }
    bd_respond_json(c, 200, out);
}

static void system_df(bd_conn_t *c, berth_engine_t *e)
{
    berth_err_t err = { 0 };
    json_t *out = NULL;
    int r = berth_system_df(e, &out, &err);

    if (r < 0) {
        bd_respond_err(c, r, &err);
        return;
    }
    bd_respond_json(c, 200, out);
}

/*
 * Pull, load and save run in a `berth` process of their own, on the same
 * root: the loop never waits for a download or an unpack, and untrusted
 * image bytes are decompressed and unpacked outside the daemon, so a crash
 * there costs one request. Its output lines become Docker's JSON messages.
 */
static const char *cli_config;

void bd_api_set_config(const char *config_path)
{
    cli_config = config_path;
}

static const char *cli_path(void)
{
    const char *p = getenv("BERTH_CLI_PATH");
    return p && *p ? p : BERTH_BINDIR "/berth";
}

enum job_kind { JOB_PULL, JOB_LOAD, JOB_SAVE };

struct job {
    bd_conn_t *c;
    enum job_kind kind;
    uv_process_t proc;
    uv_pipe_t out, err; /* its stdout and stderr: lines from both become messages */
    char line[4096];
    size_t line_len;
    char last[4096]; /* the last line: the error, when it fails */
    char tmp[4200];  /* load's input, save's output */
    int closes;
};

static void job_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    if (--j->closes == 0) {
        if (j->tmp[0])
            unlink(j->tmp);
        free(j);
    }
}

static void job_line(struct job *j, const char *line)
{
    json_t *msg;
    char *text;

    if (!*line)
        return;
    snprintf(j->last, sizeof(j->last), "%s", line);
    if (j->kind == JOB_SAVE)
        return;
    if (j->kind == JOB_LOAD) {
        char withnl[4200];
        snprintf(withnl, sizeof(withnl), "%s\n", line);
        msg = json_pack("{s:s}", "stream", withnl);
    } else {
        msg = json_pack("{s:s}", "status", line);
    }
    if (msg && (text = json_dumps(msg, JSON_COMPACT))) {
        size_t n = strlen(text);
        text[n] = '\n';
        bd_stream_write(j->c, text, n + 1);
        free(text);
    }
    json_decref(msg);
}

static void job_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

static void job_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct job *j = st->data;

    for (ssize_t i = 0; i < n; i++) {
        char ch = b->base[i];
        if (ch == '\n' || ch == '\r' || j->line_len + 1 >= sizeof(j->line)) {
            j->line[j->line_len] = '\0';
            job_line(j, j->line);
            j->line_len = 0;
            if (ch == '\n' || ch == '\r')
                continue;
        }
        j->line[j->line_len++] = ch;
    }
    free(b->base);
    if (n < 0)
        uv_read_stop(st);
}

static void job_exit(uv_process_t *p, int64_t status, int signum)
{
    struct job *j = p->data;

    (void)signum;
    /* What the pipe still holds came before the exit. */
    j->line[j->line_len] = '\0';
    job_line(j, j->line);
    j->line_len = 0;
    if (j->kind == JOB_SAVE) {
        FILE *f = status == 0 ? fopen(j->tmp, "rb") : NULL;
        char *data = NULL;
        long len = 0;
        if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
            fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)len + 1)) &&
            fread(data, 1, (size_t)len, f) == (size_t)len)
            bd_respond(j->c, 200, "application/x-tar", NULL, data, (size_t)len);
        else
            bd_respond_error(j->c,
                             strstr(j->last, "No such") || strstr(j->last, "no such") ? 404 : 500,
                             "%s", j->last[0] ? j->last : "save failed");
        free(data);
        if (f)
            fclose(f);
    } else {
        if (status != 0) {
            json_t *msg = json_pack("{s:{s:s}, s:s}", "errorDetail", "message",
                                    j->last[0] ? j->last : "failed", "error",
                                    j->last[0] ? j->last : "failed");
            char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
            if (text) {
                size_t n = strlen(text);
                text[n] = '\n';
                bd_stream_write(j->c, text, n + 1);
                free(text);
            }
            json_decref(msg);
        }
        bd_stream_end(j->c);
    }
    bd_on_gone(j->c, NULL, NULL);
    bd_conn_unref(j->c);
    j->c = NULL;
    j->closes = 3;
    uv_close((uv_handle_t *)&j->out, job_closed);
    uv_close((uv_handle_t *)&j->err, job_closed);
    uv_close((uv_handle_t *)&j->proc, job_closed);
}

/* The client went away: the job finishes anyway (a pull half done is resumed next time). */
static void job_client_gone(void *ud)
{
    (void)ud;
}

/* Run `berth ARGS...` for @c; @args ends with NULL; @input (may be NULL) is its stdin. */
static void job_run(bd_conn_t *c, berth_engine_t *e, enum job_kind kind, const char **args,
                    const char *tmp, const char *input)
{
    int in[2] = { -1, -1 };
    const char *argv[64];
    uv_process_options_t o = { 0 };
    uv_stdio_container_t stdio[3];
    struct job *j = calloc(1, sizeof(*j));
    size_t n = 0;
    int r;

    if (!j) {
        bd_respond_error(c, 500, "out of memory");
        return;
    }
    j->kind = kind;
    if (tmp)
        snprintf(j->tmp, sizeof(j->tmp), "%s", tmp);
    argv[n++] = cli_path();
    argv[n++] = "--root";
    argv[n++] = berth_engine_root(e);
    argv[n++] = "--runroot";
    argv[n++] = berth_engine_runroot(e);
    if (cli_config) {
        argv[n++] = "--config";
        argv[n++] = cli_config;
    }
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    uv_pipe_init(bd_conn_loop(c), &j->out, 0);
    j->out.data = j;
    stdio[0].flags = UV_IGNORE;
    /* A few KiB at most (credentials): the pipe's buffer takes them without waiting. */
    if (input && pipe2(in, O_CLOEXEC) == 0) {
        size_t len = strlen(input);
        if (write(in[1], input, len) == (ssize_t)len) {
            stdio[0].flags = UV_INHERIT_FD;
            stdio[0].data.fd = in[0];
        }
        close(in[1]);
    }
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&j->out;
    uv_pipe_init(bd_conn_loop(c), &j->err, 0);
    j->err.data = j;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&j->err;
    o.file = argv[0];
    o.args = (char **)argv;
    o.exit_cb = job_exit;
    o.stdio = stdio;
    o.stdio_count = 3;
    j->proc.data = j;
    r = uv_spawn(bd_conn_loop(c), &j->proc, &o);
    if (in[0] >= 0)
        close(in[0]);
    if (r < 0) {
        j->closes = 2;
        uv_close((uv_handle_t *)&j->out, job_closed);
        uv_close((uv_handle_t *)&j->err, job_closed);
        bd_respond_error(c, 500, "cannot run %s: %s", argv[0], uv_strerror(r));
        return;
    }
    j->c = bd_defer(c);
    bd_on_gone(c, job_client_gone, j);
    if (kind != JOB_SAVE)
        bd_stream_begin(c, 200, "application/json");
    uv_read_start((uv_stream_t *)&j->out, job_alloc, job_read);
    uv_read_start((uv_stream_t *)&j->err, job_alloc, job_read);
}

/* POST /images/create?fromImage=&tag= (docker pull) */
/* Base64, standard or URL-safe alphabet, padded or not; NULL when malformed. */
static unsigned char *b64_decode(const char *text, size_t *ret_len)
{
    size_t n = strlen(text), len = 0;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    unsigned acc = 0;
    int bits = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n && text[i] != '='; i++) {
        const char ch = text[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '+' || ch == '-' ? 62
                : ch == '/' || ch == '_' ? 63
                                         : -1;
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    out[len] = '\0';
    *ret_len = len;
    return out;
}

/*
 * docker pull's X-Registry-Auth: base64url JSON {"username", "password",
 * "serveraddress"} or {"identitytoken"}, "{}" or absent when the client has
 * none. *ret_json gets what the registry driver takes, or NULL to use the
 * daemon's stored credentials. -1 when the header is malformed.
 */
static int registry_auth(const bd_request_t *req, char **ret_json)
{
    const char *h = bd_header(req, "X-Registry-Auth");
    unsigned char *raw;
    json_t *in, *out = NULL;
    const char *user, *pass, *token;
    size_t len;

    *ret_json = NULL;
    if (!h || !*h)
        return 0;
    if (!(raw = b64_decode(h, &len)))
        return -1;
    in = json_loadb((const char *)raw, len, 0, NULL);
    free(raw);
    if (!json_is_object(in)) {
        json_decref(in);
        return -1;
    }
    user = json_string_value(json_object_get(in, "username"));
    pass = json_string_value(json_object_get(in, "password"));
    token = json_string_value(json_object_get(in, "identitytoken"));
    if (token && *token)
        out = json_pack("{s:s}", "identitytoken", token);
    else if (user && *user)
        out = json_pack("{s:s, s:s}", "username", user, "password", pass ? pass : "");
    json_decref(in);
    if (out) {
        *ret_json = json_dumps(out, JSON_COMPACT);
        json_decref(out);
    }
    return 0;
}

static void image_pull(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    char from[512] = "", tag[256] = "", ref[800], *auth = NULL;
    const char *args[4];
    int r;

    if (bd_query(req, "fromImage", from, sizeof(from)) != 1 || !from[0]) {
        bd_respond_error(c, 400,
                         "fromImage is required (importing from a source is not supported)");
        return;
    }
    bd_query(req, "tag", tag, sizeof(tag));
    snprintf(ref, sizeof(ref), "%s%s%s", from,
             !tag[0]                       ? ""
             : !strncmp(tag, "sha256:", 7) ? "@"
                                           : ":",
             tag);
    if ((r = registry_auth(req, &auth)) < 0) {
        bd_respond_error(c, 400, "invalid X-Registry-Auth header");
        return;
    }
    args[0] = "pull";
    args[1] = auth ? "--auth-stdin" : ref;
    args[2] = auth ? ref : NULL;
    args[3] = NULL;
    job_run(c, e, JOB_PULL, args, NULL, auth);
    free(auth);
}

/* POST /images/load: the tar body into a file, then `berth load -i`. */
static void image_load(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    char tmp[4200];
    const char *args[5];
    FILE *f;
    int fd;

    args[0] = "load";
    args[1] = "-q";
    args[2] = "-i";
    args[4] = NULL;
    if (req->body_path) {
        /* Spooled by the server as it arrived (bd_api_spool_wanted): the job removes it. */
        snprintf(tmp, sizeof(tmp), "%s", req->body_path);
        args[3] = tmp;
        job_run(c, e, JOB_LOAD, args, tmp, NULL);
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s/load-XXXXXX", berth_engine_runroot(e));
    if ((fd = mkstemp(tmp)) < 0 || !(f = fdopen(fd, "wb"))) {
        if (fd >= 0)
            close(fd);
        bd_respond_error(c, 500, "cannot spool the archive: %s", strerror(errno));
        return;
    }
    if (fwrite(req->body, 1, req->body_len, f) != req->body_len || fclose(f) != 0) {
        unlink(tmp);
        bd_respond_error(c, 500, "cannot spool the archive: %s", strerror(errno));
        return;
    }
    args[3] = tmp;
    job_run(c, e, JOB_LOAD, args, tmp, NULL);
}

int bd_api_spool_wanted(const char *method, const char *path)
{
    unsigned major, minor;
    int n = 0;

    if (strcmp(method, "POST") != 0)
        return 0;
    if (sscanf(path, "/v%u.%u%n", &major, &minor, &n) == 2 && path[n] == '/')
        path += n;
    return strcmp(path, "/images/load") == 0;
}

/* GET /images/get?names=a&names=b (docker save) */
static void image_save(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    const char *args[40];
    char tmp[4200], names[32][512];
    size_t n = 0, k = 0;
    const char *q = req->query;
    int fd;

    /* names= may repeat: take each. */
    while (q && *q && k < 32) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (len > 6 && !strncmp(q, "names=", 6)) {
            bd_request_t one = { .query = "" };
            char buf[600];
            snprintf(buf, sizeof(buf), "%.*s", (int)len, q);
            one.query = buf;
            if (bd_query(&one, "names", names[k], sizeof(names[k])) == 1 && names[k][0])
                k++;
        }
        q = end ? end + 1 : NULL;
    }
    if (k == 0) {
        bd_respond_error(c, 400, "no image names given");
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s/save-XXXXXX", berth_engine_runroot(e));
    if ((fd = mkstemp(tmp)) < 0) {
        bd_respond_error(c, 500, "cannot make a spool file: %s", strerror(errno));
        return;
    }
    close(fd);
    args[n++] = "save";
    args[n++] = "-o";
    args[n++] = tmp;
    for (size_t i = 0; i < k; i++)
        args[n++] = names[i];
    args[n] = NULL;
    job_run(c, e, JOB_SAVE, args, tmp, NULL);
}

/* ---- routes on one container or exec: METHOD /prefix/<id>/suffix ---- */

typedef void (*id_route_fn)(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                            const char *id);

static void route_inspect(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *id)
{
    (void)req;
    container_inspect(c, e, id);
}

static void route_start(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *id)
{
    (void)req;
    container_start(c, e, id);
}

static void route_pause(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *id)
{
    (void)req;
    container_pause(c, e, id, 1);
}

static void route_unpause(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *id)
{
    (void)req;
    container_pause(c, e, id, 0);
}

static void route_top(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e, const char *id)
{
    (void)req;
    container_top(c, e, id);
}

static void route_exec_inspect(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e,
                               const char *id)
{
    (void)req;
    (void)e;
    exec_inspect(c, id);
}

static const struct {
    const char *method, *prefix, *suffix;
    id_route_fn fn;
} id_routes[] = {
    { "POST", "/containers/", "/start", route_start },
    { "POST", "/containers/", "/stop", container_stop },
    { "POST", "/containers/", "/restart", container_restart },
    { "POST", "/containers/", "/kill", container_kill },
    { "POST", "/containers/", "/wait", container_wait },
    { "POST", "/containers/", "/attach", container_attach },
    { "POST", "/containers/", "/resize", container_resize },
    { "POST", "/containers/", "/exec", exec_create },
    { "POST", "/containers/", "/pause", route_pause },
    { "POST", "/containers/", "/unpause", route_unpause },
    { "POST", "/exec/", "/start", exec_start },
    { "POST", "/exec/", "/resize", exec_resize },
    { "GET", "/exec/", "/json", route_exec_inspect },
    { "GET", "/containers/", "/json", route_inspect },
    { "GET", "/containers/", "/logs", container_logs },
    { "GET", "/containers/", "/top", route_top },
    { "GET", "/containers/", "/stats", container_stats },
    { "DELETE", "/containers/", "", container_remove },
};

/* ---- routing ---- */

/*
 * Strip a "/v<major>.<minor>" prefix from @path; 0 when there is none or it
 * is within range, -1 (answered) when out of range or malformed.
 */
static int strip_version(bd_conn_t *c, const char **path)
{
    const char *p = *path;
    unsigned major, minor;
    int n = 0;

    if (strncmp(p, "/v", 2) != 0 || !(p[2] >= '0' && p[2] <= '9'))
        return 0;
    if (sscanf(p, "/v%u.%u%n", &major, &minor, &n) != 2 || (p[n] != '/' && p[n] != '\0')) {
        bd_respond_error(c, 400, "malformed API version in %s", p);
        return -1;
    }
    if (major != 1 || minor > 50) {
        bd_respond_error(c, 400,
                         "client version %u.%u is too new. Maximum supported API version is %s",
                         major, minor, BD_API_MAX);
        return -1;
    }
    if (minor < 24) {
        bd_respond_error(c, 400,
                         "client version %u.%u is too old. Minimum supported API version is %s, "
                         "please upgrade your client to a newer version",
                         major, minor, BD_API_MIN);
        return -1;
    }
    *path = p + n;
    return 0;
}

/*
 * If @path is @prefix followed by one path segment and then @suffix (e.g.
 * "/containers/" + ID + "/json"), copy the segment into @buf; 1 on a match.
 */
static int match_id(const char *path, const char *prefix, const char *suffix, char *buf, size_t len)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), idl;
    const char *id;

    if (strncmp(path, prefix, pl) != 0)
        return 0;
    id = path + pl;
    idl = strlen(id);
    if (idl <= sl || strcmp(id + idl - sl, suffix) != 0)
        return 0;
    idl -= sl;
    if (idl == 0 || idl >= len || memchr(id, '/', idl))
        return 0;
    memcpy(buf, id, idl);
    buf[idl] = '\0';
    return 1;
}

void bd_api_handle(bd_conn_t *c, const bd_request_t *req, void *userdata)
{
    berth_engine_t *e = userdata;
    const char *path = req->path;
    int get = !strcmp(req->method, "GET"), head = !strcmp(req->method, "HEAD");
    char ref[512];

    if (strip_version(c, &path) < 0)
        return;
    if (!strcmp(path, "/_ping")) {
        if (get || head)
            ping(c);
        else
            bd_respond_error(c, 405, "%s /_ping is not allowed", req->method);
        return;
    }
    if (get && !strcmp(path, "/version")) {
        version(c);
        return;
    }
    if (get && !strcmp(path, "/events")) {
        bd_api_events(c, req, e);
        return;
    }
    if (get && !strcmp(path, "/info")) {
        info(c, e);
        return;
    }
    if (get && !strcmp(path, "/containers/json")) {
        containers_list(c, req, e);
        return;
    }
    if (!strcmp(req->method, "POST") && !strcmp(path, "/containers/create")) {
        container_create(c, req, e);
        return;
    }
    for (size_t i = 0; i < sizeof(id_routes) / sizeof(id_routes[0]); i++)
        if (!strcmp(req->method, id_routes[i].method) &&
            match_id(path, id_routes[i].prefix, id_routes[i].suffix, ref, sizeof(ref))) {
            id_routes[i].fn(c, req, e, ref);
            return;
        }
    if (!strcmp(req->method, "POST") && !strcmp(path, "/containers/prune")) {
        containers_prune(c, e);
        return;
    }
    if (!strcmp(req->method, "POST") && !strcmp(path, "/images/create")) {
        image_pull(c, req, e);
        return;
    }
    if (!strcmp(req->method, "POST") && !strcmp(path, "/images/load")) {
        image_load(c, req, e);
        return;
    }
    if (get && !strcmp(path, "/images/get")) {
        image_save(c, req, e);
        return;
    }
    if (!strcmp(req->method, "POST") && !strcmp(path, "/images/prune")) {
        images_prune(c, req, e);
        return;
    }
    /* Build cache: berth has none; docker system prune asks all the same. */
    if (!strcmp(req->method, "POST") && !strcmp(path, "/build/prune")) {
        bd_respond_json(c, 200, json_pack("{s:[], s:i}", "CachesDeleted", "SpaceReclaimed", 0));
        return;
    }
    if (get && !strcmp(path, "/system/df")) {
        system_df(c, e);
        return;
    }
    /* Image names have slashes: /images/<name>/tag and DELETE /images/<name>. */
    if (!strcmp(req->method, "POST") && !strncmp(path, "/images/", 8) && strlen(path) > 12 &&
        !strcmp(path + strlen(path) - 4, "/tag") && strlen(path) - 12 < sizeof(ref)) {
        memcpy(ref, path + 8, strlen(path) - 12);
        ref[strlen(path) - 12] = '\0';
        image_tag(c, req, e, ref);
        return;
    }
    if (!strcmp(req->method, "DELETE") && !strncmp(path, "/images/", 8) && path[8] &&
        strlen(path + 8) < sizeof(ref)) {
        snprintf(ref, sizeof(ref), "%s", path + 8);
        image_remove(c, req, e, ref);
        return;
    }
    if (get && !strcmp(path, "/images/json")) {
        images_list(c, e);
        return;
    }
    if (bd_api_volumes(c, req, e, path))
        return;
    if (bd_api_networks(c, req, e, path))
        return;
    /* Image names have slashes: everything between /images/ and /json. */
    if (get && !strncmp(path, "/images/", 8) && strlen(path) > 13 &&
        !strcmp(path + strlen(path) - 5, "/json")) {
        size_t n = strlen(path) - 13;
        if (n < sizeof(ref)) {
            memcpy(ref, path + 8, n);
            ref[n] = '\0';
            image_inspect(c, e, ref);
            return;
        }
    }
    bd_respond_error(c, 404, "page not found");
}
