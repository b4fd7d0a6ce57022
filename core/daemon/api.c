/* SPDX-License-Identifier: Apache-2.0 */
/* Docker Engine API routes (api.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "api.h"

/* Docker's status for an engine error code. */
static int status_of(int r)
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

static void respond_err(bd_conn_t *c, int r, const berth_err_t *err)
{
    bd_respond_error(c, status_of(r), "%s", err->msg[0] ? err->msg : strerror(-r));
}

/* Docker's query booleans: "", 0, no, false, none (any case) are false. */
static int query_bool(const bd_request_t *req, const char *name)
{
    char v[16];
    if (bd_query(req, name, v, sizeof(v)) != 1)
        return 0;
    return !(v[0] == '\0' || !strcasecmp(v, "0") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "false") || !strcasecmp(v, "none"));
}

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
        respond_err(c, r, &err);
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

/* Docker's container summary from berth's, with the image from the record. */
static void summary_fill(berth_engine_t *e, json_t *s)
{
    json_t *insp = NULL;
    const char *id = json_string_value(json_object_get(s, "Id"));

    if (id && berth_container_inspect(e, id, &insp, NULL) == 0) {
        json_t *cfg = json_object_get(insp, "Config");
        const char *image = json_string_value(json_object_get(cfg, "Image"));
        const char *image_id = json_string_value(json_object_get(insp, "Image"));
        set_default(s, "Image", json_string(image ? image : ""));
        set_default(s, "ImageID", json_string(image_id ? image_id : ""));
        set_default(s, "Labels", json_incref(json_object_get(cfg, "Labels")));
        set_default(s, "HostConfig",
                    json_pack("{s:s}", "NetworkMode",
                              json_string_value(json_object_get(json_object_get(insp, "HostConfig"),
                                                                "NetworkMode"))
                                  ?: "none"));
        json_decref(insp);
    }
    set_default(s, "Image", json_string(""));
    set_default(s, "ImageID", json_string(""));
    set_default(s, "Labels", json_object());
    set_default(s, "Ports", json_array());
    set_default(s, "Mounts", json_array());
    set_default(s, "HostConfig", json_pack("{s:s}", "NetworkMode", "none"));
    set_default(s, "NetworkSettings", json_pack("{s:{}}", "Networks"));
}

static void containers_list(bd_conn_t *c, const bd_request_t *req, berth_engine_t *e)
{
    json_t *list = NULL, *o;
    berth_err_t err = { 0 };
    size_t i;
    int r = berth_container_list(e, query_bool(req, "all") ? BERTH_LIST_ALL : 0, &list, &err);

    if (r < 0) {
        respond_err(c, r, &err);
        return;
    }
    json_array_foreach (list, i, o)
        summary_fill(e, o);
    bd_respond_json(c, 200, list);
}

static void container_inspect(bd_conn_t *c, berth_engine_t *e, const char *ref)
{
    json_t *j = NULL;
    berth_err_t err = { 0 };
    int r = berth_container_inspect(e, ref, &j, &err);

    if (r == -ENOENT) {
        bd_respond_error(c, 404, "No such container: %s", ref);
        return;
    }
    if (r < 0) {
        respond_err(c, r, &err);
        return;
    }
    /* What the docker CLI dereferences without checking (docs/daemon.md). */
    set_default(j, "Config", json_object());
    set_default(j, "HostConfig", json_object());
    set_default(j, "NetworkSettings", json_pack("{s:{}, s:{}}", "Ports", "Networks"));
    set_default(j, "Mounts", json_array());
    set_default(j, "RestartCount", json_integer(0));
    set_default(j, "Platform", json_string("linux"));
    set_default(j, "Image", json_string(""));
    bd_respond_json(c, 200, j);
}

/* ---- images ---- */

static void images_list(bd_conn_t *c, berth_engine_t *e)
{
    json_t *list = NULL, *o;
    berth_err_t err = { 0 };
    size_t i;
    int r = berth_image_list(e, 0, &list, &err);

    if (r < 0) {
        respond_err(c, r, &err);
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

    if (r == -ENOENT) {
        bd_respond_error(c, 404, "No such image: %s", ref);
        return;
    }
    if (r < 0) {
        respond_err(c, r, &err);
        return;
    }
    /* The client parses Created as a time: an image without one gets Go's zero time. */
    if (!json_string_value(json_object_get(j, "Created")) ||
        !*json_string_value(json_object_get(j, "Created")))
        json_object_set_new(j, "Created", json_string("0001-01-01T00:00:00Z"));
    bd_respond_json(c, 200, j);
}

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
    if (get && !strcmp(path, "/info")) {
        info(c, e);
        return;
    }
    if (get && !strcmp(path, "/containers/json")) {
        containers_list(c, req, e);
        return;
    }
    if (get && match_id(path, "/containers/", "/json", ref, sizeof(ref))) {
        container_inspect(c, e, ref);
        return;
    }
    if (get && !strcmp(path, "/images/json")) {
        images_list(c, e);
        return;
    }
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
