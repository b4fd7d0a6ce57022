/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine configuration: built-in defaults, one JSON file, BERTH_* variables
 * and explicit overrides, in that order (config.h has the contract,
 * docs/configuration.md the user's reference).
 *
 * Every key the file may hold is one row of `schema` below: its dotted
 * path, the kind of value it takes and the berth_config_t member it fills.
 * Validation, filling the struct, freeing it and writing it back out
 * (to_json) all walk that table, so adding a key is adding a row, plus the
 * member and, when it is not zero/NULL, its default in config_new_defaults().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "berth-build-config.h"
#include "config.h"
#include "util.h"

/* A config file is a few hundred bytes; refuse to slurp something absurd (a device, a log). */
#define CONFIG_MAX_BYTES (4u << 20)

enum key_kind {
    KEY_SECTION,       /* object whose members are themselves rows of the schema */
    KEY_STRING,        /* non-empty string */
    KEY_PATH,          /* absolute path */
    KEY_ENUM,          /* string, one of allowed[] */
    KEY_LOG_LEVEL,     /* like KEY_ENUM over log level names, stored as BERTH_LOG_* */
    KEY_PATH_LIST,     /* array of absolute paths */
    KEY_LISTENER_LIST, /* array of "unix:///path" or "tcp://host:port" */
    KEY_OBJECT_MAP,    /* object of free-form objects (per-driver sections) */
    KEY_COUNT,         /* integer from 1 to 2^53, stored as uint64_t */
    KEY_POOLS,         /* array of {"base": "A.B.C.D/N", "size": M}, stored as json_t * */
};

#define NO_SLOT      ((size_t)-1)
#define SLOT(member) offsetof(berth_config_t, member)

typedef struct config_key {
    const char *path; /* dotted; no component contains '.' */
    enum key_kind kind;
    const char *const *allowed; /* KEY_ENUM, KEY_LOG_LEVEL: NULL-terminated */
    size_t slot;                /* offset of the member it fills, NO_SLOT for sections */
} config_key_t;

/* Consecutive BERTH_LOG_* values, lowest first: level = BERTH_LOG_ERR + index. */
static const char *const log_levels[] = { "error", "warning", "notice", "info", "debug", NULL };
static const char *const log_formats[] = { "text", "json", NULL };

static const config_key_t schema[] = {
    { "root", KEY_PATH, NULL, SLOT(root) },
    { "runroot", KEY_PATH, NULL, SLOT(runroot) },
    { "plugin_dirs", KEY_PATH_LIST, NULL, SLOT(plugin_dirs) },
    { "defaults", KEY_SECTION, NULL, NO_SLOT },
    { "defaults.isolation", KEY_STRING, NULL, SLOT(default_isolation) },
    { "defaults.storage", KEY_STRING, NULL, SLOT(default_storage) },
    { "defaults.network", KEY_STRING, NULL, SLOT(default_network) },
    { "log", KEY_SECTION, NULL, NO_SLOT },
    { "log.level", KEY_LOG_LEVEL, log_levels, SLOT(log_level) },
    { "log.format", KEY_ENUM, log_formats, SLOT(log_format) },
    { "api", KEY_SECTION, NULL, NO_SLOT },
    { "api.listeners", KEY_LISTENER_LIST, NULL, SLOT(api_listeners) },
    { "api.tls", KEY_SECTION, NULL, NO_SLOT },
    { "api.tls.ca", KEY_PATH, NULL, SLOT(tls_ca) },
    { "api.tls.cert", KEY_PATH, NULL, SLOT(tls_cert) },
    { "api.tls.key", KEY_PATH, NULL, SLOT(tls_key) },
    { "drivers", KEY_OBJECT_MAP, NULL, SLOT(drivers) },
    { "events", KEY_SECTION, NULL, NO_SLOT },
    { "events.max", KEY_COUNT, NULL, SLOT(events_max) },
    { "networks", KEY_SECTION, NULL, NO_SLOT },
    { "networks.address_pools", KEY_POOLS, NULL, SLOT(address_pools) },
};

#define SLOT_PTR(cfg, key, type) ((type *)(void *)((char *)(cfg) + (key)->slot))

int berth__log_level_parse(const char *name, uint32_t *ret_level)
{
    for (size_t i = 0; name && log_levels[i]; i++)
        if (strcmp(name, log_levels[i]) == 0) {
            *ret_level = BERTH_LOG_ERR + (uint32_t)i;
            return 0;
        }
    return -EINVAL;
}

const char *berth__log_level_name(uint32_t level)
{
    /* Clamp rather than return NULL: syslog's emerg..crit read as "error", so a caller can print
     * any level a driver hands it. */
    if (level < BERTH_LOG_ERR)
        level = BERTH_LOG_ERR;
    if (level > BERTH_LOG_DEBUG)
        level = BERTH_LOG_DEBUG;
    return log_levels[level - BERTH_LOG_ERR];
}

void berth__config_free(berth_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(schema); i++) {
        const config_key_t *key = &schema[i];

        switch (key->kind) {
        case KEY_SECTION:
        case KEY_LOG_LEVEL:
        case KEY_COUNT:
            break;
        case KEY_STRING:
        case KEY_PATH:
        case KEY_ENUM:
            free(*SLOT_PTR(cfg, key, char *));
            break;
        case KEY_PATH_LIST:
        case KEY_LISTENER_LIST:
            berth__strv_free(*SLOT_PTR(cfg, key, char **));
            break;
        case KEY_OBJECT_MAP:
        case KEY_POOLS:
            json_decref(*SLOT_PTR(cfg, key, json_t *));
            break;
        }
    }
    free(cfg);
}

static void config_freep(berth_config_t **cfg)
{
    berth__config_free(*cfg);
}
#define _cleanup_config_ _cleanup_(config_freep)

/*
 * Lexical normalisation of an absolute path: collapse "//", drop ".", let ".."
 * eat the previous component, no trailing slash. Symlinks are not resolved on
 * purpose: the directory need not exist yet (the engine creates root/runroot).
 */
static char *path_normalise(const char *path)
{
    size_t n = strlen(path);
    char *out = malloc(n + 2);
    size_t o = 0;

    if (!out)
        return NULL;
    for (const char *p = path; *p;) {
        const char *end;
        size_t len;

        while (*p == '/')
            p++;
        end = strchrnul(p, '/');
        len = (size_t)(end - p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
            /* nothing to add */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the slash before the component that ".." removed */
        } else {
            out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p = end;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

/* @path made absolute against the cwd when relative, then normalised. */
static int path_absolute(const char *path, char **ret, berth_err_t *err)
{
    _cleanup_free_ char *cwd = NULL;
    _cleanup_free_ char *joined = NULL;
    char *norm;

    if (path[0] != '/') {
        cwd = getcwd(NULL, 0);
        if (!cwd)
            return berth_err_set(err, -errno, "cannot make %s absolute: current directory: %s",
                                 path, strerror(errno));
        if (asprintf(&joined, "%s/%s", cwd, path) < 0) {
            joined = NULL;
            return berth_err_set(err, -ENOMEM, "out of memory");
        }
        path = joined;
    }
    norm = path_normalise(path);
    if (!norm)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret = norm;
    return 0;
}

/* "an integer", "an array": the JSON type of @v with its article, for messages. */
static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

/* Keys and values are echoed in one-line messages: bound them and hide control characters. */
static const char *shown(const char *s, char buf[static 72])
{
    size_t i = 0;

    for (; s[i] && i < 64; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    if (s[i])
        strcpy(buf + i, "...");
    return buf;
}

typedef struct parse_ctx {
    const char *origin;
    berth_config_t *cfg;
    berth_err_t *err;
} parse_ctx_t;

static int bad_type(parse_ctx_t *ctx, const char *path, const char *want, const json_t *v)
{
    char b[72];
    return berth_err_set(ctx->err, -EINVAL, "%s: '%s' must be %s, not %s", ctx->origin,
                         shown(path, b), want, type_name(v));
}

static int oom(parse_ctx_t *ctx)
{
    return berth_err_set(ctx->err, -ENOMEM, "%s: out of memory", ctx->origin);
}

/* A string that is non-empty and, for paths, absolute; @path names it in errors. */
static int check_string(parse_ctx_t *ctx, const char *path, const json_t *v, int want_abs)
{
    char b1[72], b2[72];
    const char *s;

    if (!json_is_string(v))
        return bad_type(ctx, path, "a string", v);
    s = json_string_value(v);
    if (s[0] == '\0')
        return berth_err_set(ctx->err, -EINVAL, "%s: '%s' must not be empty", ctx->origin,
                             shown(path, b1));
    if (want_abs && s[0] != '/')
        return berth_err_set(ctx->err, -EINVAL, "%s: '%s' must be an absolute path, not \"%s\"",
                             ctx->origin, shown(path, b1), shown(s, b2));
    return 0;
}

static int check_enum(parse_ctx_t *ctx, const config_key_t *key, const json_t *v)
{
    char list[160] = "", b1[72], b2[72];
    size_t used = 0;
    const char *s;
    int r = check_string(ctx, key->path, v, 0);

    if (r < 0)
        return r;
    s = json_string_value(v);
    for (size_t i = 0; key->allowed[i]; i++)
        if (strcmp(s, key->allowed[i]) == 0)
            return 0;
    for (size_t i = 0; key->allowed[i] && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 key->allowed[i]);
    return berth_err_set(ctx->err, -EINVAL, "%s: '%s' must be one of %s, not \"%s\"", ctx->origin,
                         shown(key->path, b1), list, shown(s, b2));
}

/* "unix://" + absolute path, or "tcp://" + host + ":" + port 1..65535 (host may be "[v6]"). */
static int listener_valid(const char *s)
{
    const char *host, *colon;
    char *end;
    long port;

    if (strncmp(s, "unix://", 7) == 0)
        return s[7] == '/' && s[8] != '\0';
    if (strncmp(s, "tcp://", 6) != 0)
        return 0;
    host = s + 6;
    colon = strrchr(host, ':');
    if (!colon || colon == host)
        return 0;
    if (host[0] == '[' && colon[-1] != ']')
        return 0;
    if (colon[1] < '0' || colon[1] > '9')
        return 0;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

/* Arrays of strings: every element checked, then copied into a fresh strv. */
static int take_string_list(parse_ctx_t *ctx, const config_key_t *key, const json_t *v)
{
    _cleanup_strv_ char **list = berth__strv_new();
    char path[128], b1[72], b2[72];
    size_t i;
    int r;

    if (!list)
        return oom(ctx);
    if (!json_is_array(v))
        return bad_type(ctx, key->path, "an array of strings", v);
    for (i = 0; i < json_array_size(v); i++) {
        _cleanup_free_ char *norm = NULL;
        const json_t *item = json_array_get(v, i);
        const char *s;

        snprintf(path, sizeof(path), "%s[%zu]", key->path, i);
        r = check_string(ctx, path, item, key->kind == KEY_PATH_LIST);
        if (r < 0)
            return r;
        s = json_string_value(item);
        if (key->kind == KEY_LISTENER_LIST && !listener_valid(s))
            return berth_err_set(ctx->err, -EINVAL,
                                 "%s: '%s' must be unix:///ABSOLUTE/PATH or tcp://HOST:PORT, "
                                 "not \"%s\"",
                                 ctx->origin, shown(path, b1), shown(s, b2));
        if (key->kind == KEY_PATH_LIST) {
            norm = path_normalise(s);
            if (!norm)
                return oom(ctx);
            s = norm;
        }
        if (berth__strv_push(&list, s) < 0)
            return oom(ctx);
    }
    berth__strv_free(*SLOT_PTR(ctx->cfg, key, char **));
    *SLOT_PTR(ctx->cfg, key, char **) = TAKE_PTR(list);
    return 0;
}

static int walk_section(parse_ctx_t *ctx, const char *prefix, json_t *obj);

/* Validate one value against its schema row and store it into the config. */
static int take_value(parse_ctx_t *ctx, const config_key_t *key, json_t *v)
{
    char b[72];
    char *copy;
    int r;

    switch (key->kind) {
    case KEY_SECTION:
        if (!json_is_object(v))
            return bad_type(ctx, key->path, "an object", v);
        return walk_section(ctx, key->path, v);
    case KEY_STRING:
    case KEY_PATH:
    case KEY_ENUM:
        r = key->kind == KEY_ENUM ? check_enum(ctx, key, v)
                                  : check_string(ctx, key->path, v, key->kind == KEY_PATH);
        if (r < 0)
            return r;
        copy = key->kind == KEY_PATH ? path_normalise(json_string_value(v))
                                     : strdup(json_string_value(v));
        if (!copy)
            return oom(ctx);
        free(*SLOT_PTR(ctx->cfg, key, char *));
        *SLOT_PTR(ctx->cfg, key, char *) = copy;
        return 0;
    case KEY_LOG_LEVEL:
        r = check_enum(ctx, key, v);
        if (r < 0)
            return r;
        return berth__log_level_parse(json_string_value(v), SLOT_PTR(ctx->cfg, key, uint32_t));
    case KEY_PATH_LIST:
    case KEY_LISTENER_LIST:
        return take_string_list(ctx, key, v);
    case KEY_COUNT:
        if (!json_is_integer(v))
            return bad_type(ctx, key->path, "an integer", v);
        if (json_integer_value(v) < 1 || json_integer_value(v) > ((json_int_t)1 << 53))
            return berth_err_set(ctx->err, -EINVAL, "%s: '%s' must be at least 1, not %lld",
                                 ctx->origin, shown(key->path, b),
                                 (long long)json_integer_value(v));
        *SLOT_PTR(ctx->cfg, key, uint64_t) = (uint64_t)json_integer_value(v);
        return 0;
    case KEY_POOLS: {
        json_t *p;
        size_t i;
        if (!json_is_array(v) || json_array_size(v) == 0)
            return bad_type(ctx, key->path, "a non-empty array", v);
        json_array_foreach (v, i, p) {
            const char *base = json_string_value(json_object_get(p, "base"));
            const char *slash = base ? strchr(base, '/') : NULL;
            json_int_t size = json_integer_value(json_object_get(p, "size"));
            struct in_addr a;
            char ip[20];
            int plen = slash ? atoi(slash + 1) : -1;
            if (slash && (size_t)(slash - base) < sizeof(ip)) {
                memcpy(ip, base, (size_t)(slash - base));
                ip[slash - base] = '\0';
            } else {
                ip[0] = '\0';
            }
            if (!json_is_object(p) || !base || inet_pton(AF_INET, ip, &a) != 1 || plen < 8 ||
                plen > 30 || size < plen || size > 30)
                return berth_err_set(ctx->err, -EINVAL,
                                     "%s: '%s' entry %zu: want {\"base\": \"A.B.C.D/N\", "
                                     "\"size\": M} with 8 <= N <= M <= 30",
                                     ctx->origin, shown(key->path, b), i);
        }
        json_decref(*SLOT_PTR(ctx->cfg, key, json_t *));
        *SLOT_PTR(ctx->cfg, key, json_t *) = json_incref(v);
        return 0;
    }
    case KEY_OBJECT_MAP:
        if (!json_is_object(v))
            return bad_type(ctx, key->path, "an object", v);
        for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
            const char *name = json_object_iter_key(it);
            json_t *member = json_object_iter_value(it);
            char path[128];

            snprintf(path, sizeof(path), "%s.%s", key->path, name);
            if (name[0] == '\0')
                return berth_err_set(ctx->err, -EINVAL, "%s: '%s' has an empty name", ctx->origin,
                                     shown(key->path, b));
            if (!json_is_object(member))
                return bad_type(ctx, path, "an object", member);
        }
        json_decref(*SLOT_PTR(ctx->cfg, key, json_t *));
        *SLOT_PTR(ctx->cfg, key, json_t *) = json_incref(v);
        return 0;
    }
    return -EINVAL;
}

static const config_key_t *schema_find(const char *path)
{
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(schema); i++)
        if (strcmp(schema[i].path, path) == 0)
            return &schema[i];
    return NULL;
}

static int walk_section(parse_ctx_t *ctx, const char *prefix, json_t *obj)
{
    /* Members are visited in file order (jansson keeps it), so the first mistake is the one
     * reported. */
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *name = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        const config_key_t *key = NULL;
        char path[128], b[72];
        int n, r;

        n = prefix ? snprintf(path, sizeof(path), "%s.%s", prefix, name)
                   : snprintf(path, sizeof(path), "%s", name);
        /* A key holding '.' or '[' could otherwise pose as a nested path ("log.level" at the
         * top); one too long to fit is no key of ours either. */
        if (n >= 0 && (size_t)n < sizeof(path) && !strpbrk(name, ".["))
            key = schema_find(path);
        if (!key && strchr(name, '.'))
            return berth_err_set(ctx->err, -EINVAL,
                                 "%s: unknown key '%s' (a key never holds a dot: nest it as an "
                                 "object)",
                                 ctx->origin, shown(path, b));
        if (!key)
            return berth_err_set(ctx->err, -EINVAL, "%s: unknown key '%s'", ctx->origin,
                                 shown(path, b));
        r = take_value(ctx, key, v);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Rules across keys: mutual TLS is all or nothing, and the TCP API exists only with it. */
static int check_cross_keys(parse_ctx_t *ctx)
{
    const berth_config_t *cfg = ctx->cfg;
    int n_tls = !!cfg->tls_ca + !!cfg->tls_cert + !!cfg->tls_key;

    if (n_tls != 0 && n_tls != 3)
        return berth_err_set(ctx->err, -EINVAL,
                             "%s: 'api.tls' needs ca, cert and key together (mutual TLS); "
                             "'api.tls.%s' is missing",
                             ctx->origin,
                             !cfg->tls_ca     ? "ca"
                             : !cfg->tls_cert ? "cert"
                                              : "key");
    for (size_t i = 0; n_tls == 0 && cfg->api_listeners && cfg->api_listeners[i]; i++)
        if (strncmp(cfg->api_listeners[i], "tcp://", 6) == 0)
            return berth_err_set(ctx->err, -EINVAL,
                                 "%s: 'api.listeners[%zu]' is a TCP listener, which needs "
                                 "mutual TLS: set 'api.tls' (ca, cert, key)",
                                 ctx->origin, i);
    return 0;
}

static berth_config_t *config_new_defaults(void)
{
    _cleanup_config_ berth_config_t *cfg = calloc(1, sizeof(*cfg));

    if (!cfg)
        return NULL;
    cfg->root = strdup(BERTH_DEFAULT_ROOT);
    cfg->runroot = strdup(BERTH_DEFAULT_RUNROOT);
    cfg->plugin_dirs = berth__strv_new();
    cfg->default_isolation = strdup("process");
    cfg->default_storage = strdup("overlay");
    cfg->default_network = strdup("cni");
    cfg->log_level = BERTH_LOG_INFO;
    cfg->events_max = BERTH_CONFIG_EVENTS_MAX;
    cfg->log_format = strdup("text");
    cfg->drivers = json_object();
    /* api_listeners stays NULL: it is derived from the runroot once that is final. */
    if (!cfg->root || !cfg->runroot || !cfg->plugin_dirs || !cfg->default_isolation ||
        !cfg->default_storage || !cfg->default_network || !cfg->log_format || !cfg->drivers)
        return NULL;
    if (berth__strv_push(&cfg->plugin_dirs, BERTH_PLUGINSDIR) < 0)
        return NULL;
    return TAKE_PTR(cfg);
}

/* The default listener follows the runroot, so instances with different runroots never share a
 * socket by accident. */
static int derive_listeners(berth_config_t *cfg)
{
    _cleanup_strv_ char **list = berth__strv_new();
    _cleanup_free_ char *url = NULL;
    const char *sep = strcmp(cfg->runroot, "/") == 0 ? "" : "/";

    if (!list || asprintf(&url, "unix://%s%sberth.sock", cfg->runroot, sep) < 0)
        return -ENOMEM;
    if (berth__strv_push(&list, url) < 0)
        return -ENOMEM;
    berth__strv_free(cfg->api_listeners);
    cfg->api_listeners = TAKE_PTR(list);
    return 0;
}

/* Line and column (1-based) of the first non-blank character: where the document starts. */
static void text_start(const char *text, size_t len, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r') {
            (*col)++;
        } else {
            return;
        }
    }
}

static int config_parse(const char *text, size_t len, const char *origin, berth_config_t **ret_cfg,
                        int *ret_listeners_set, berth_err_t *err)
{
    _cleanup_config_ berth_config_t *cfg = NULL;
    _cleanup_json_ json_t *doc = NULL;
    const char *path = origin;
    json_error_t jerr;
    parse_ctx_t ctx;
    int r;

    if (!origin)
        origin = "<config>";
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (jerr.line < 0)
            return berth_err_set(err, -EINVAL, "%s: invalid JSON: %s", origin, jerr.text);
        return berth_err_set(err, -EINVAL, "%s:%d:%d: invalid JSON: %s", origin, jerr.line,
                             jerr.column, jerr.text);
    }
    if (!json_is_object(doc)) {
        int line, col;

        text_start(text, len, &line, &col);
        return berth_err_set(err, -EINVAL,
                             "%s:%d:%d: invalid JSON: the top level must be an object, not %s",
                             origin, line, col, type_name(doc));
    }
    cfg = config_new_defaults();
    if (!cfg)
        return berth_err_set(err, -ENOMEM, "%s: out of memory", origin);
    ctx = (parse_ctx_t){ .origin = origin, .cfg = cfg, .err = err };
    r = walk_section(&ctx, NULL, doc);
    if (r < 0)
        return r;
    r = check_cross_keys(&ctx);
    if (r < 0)
        return r;
    *ret_listeners_set = json_object_get(json_object_get(doc, "api"), "listeners") != NULL;
    if (!*ret_listeners_set && derive_listeners(cfg) < 0)
        return oom(&ctx);
    if (path && !(cfg->path = strdup(path)))
        return oom(&ctx);
    *ret_cfg = TAKE_PTR(cfg);
    return 0;
}

int berth__config_parse(const char *text, size_t len, const char *origin, berth_config_t **ret_cfg,
                        berth_err_t *err)
{
    int listeners_set;
    return config_parse(text, len, origin, ret_cfg, &listeners_set, err);
}

static int read_file(const char *path, char **ret_text, size_t *ret_len, berth_err_t *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;
    struct stat st;

    if (fd < 0)
        return berth_err_set(err, -errno, "config file %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0)
        return berth_err_set(err, -errno, "config file %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return berth_err_set(err, -EISDIR, "config file %s: %s", path, strerror(EISDIR));
    for (;;) {
        ssize_t n;

        if (len == cap) {
            char *grown;

            if (cap >= CONFIG_MAX_BYTES)
                return berth_err_set(err, -EFBIG, "config file %s: larger than %u bytes", path,
                                     CONFIG_MAX_BYTES);
            cap = cap ? cap * 2 : 4096;
            grown = realloc(buf, cap + 1);
            if (!grown)
                return berth_err_set(err, -ENOMEM, "config file %s: out of memory", path);
            buf = grown;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_err_set(err, -errno, "config file %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *ret_text = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

/* An environment variable, or NULL when unset, empty or ignored. */
static const char *env_get(const berth_config_overrides_t *ov, const char *name)
{
    const char *v;

    if (ov->ignore_env)
        return NULL;
    v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* Replace *slot with @value made absolute; @what names the source in errors. */
static int set_dir(char **slot, const char *value, const char *what, berth_err_t *err)
{
    char *abs;
    int r;

    if (value[0] == '\0')
        return berth_err_set(err, -EINVAL, "%s: empty path", what);
    r = path_absolute(value, &abs, err);
    if (r < 0)
        return berth_err_prefix(err, r, what);
    free(*slot);
    *slot = abs;
    return 0;
}

/* Append the colon-separated dirs of @list after the config's, skipping empties and repeats. */
static int append_plugin_path(berth_config_t *cfg, const char *list, const char *what,
                              berth_err_t *err)
{
    _cleanup_free_ char *copy = strdup(list);
    char *save = NULL;

    if (!copy)
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        _cleanup_free_ char *abs = NULL;
        int r = path_absolute(dir, &abs, err);

        if (r < 0)
            return berth_err_prefix(err, r, what);
        if (!berth__strv_contains(cfg->plugin_dirs, abs) &&
            berth__strv_push(&cfg->plugin_dirs, abs) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

int berth__config_load(const berth_config_overrides_t *ov, berth_config_t **ret_cfg,
                       berth_err_t *err)
{
    static const berth_config_overrides_t no_overrides;
    _cleanup_config_ berth_config_t *cfg = NULL;
    _cleanup_free_ char *text = NULL;
    const char *file, *v;
    size_t len = 0;
    int explicit_file, listeners_set = 0, r;

    if (!ov)
        ov = &no_overrides;

    file = ov->config_path ? ov->config_path : env_get(ov, "BERTH_CONFIG");
    explicit_file = file != NULL;
    if (!file && !ov->no_default_file)
        file = BERTH_SYSCONFDIR "/berth.json";
    if (file) {
        r = read_file(file, &text, &len, err);
        /* Only the default file may be absent; one the user named must be there. */
        if (r == -ENOENT && !explicit_file)
            file = NULL;
        else if (r < 0)
            return r;
    }
    if (file) {
        r = config_parse(text, len, file, &cfg, &listeners_set, err);
        if (r < 0)
            return r;
        free(cfg->path);
        cfg->path = NULL;
        r = path_absolute(file, &cfg->path, err);
        if (r < 0)
            return r;
    } else {
        cfg = config_new_defaults();
        if (!cfg)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }

    /* Environment over the file, then explicit overrides over both. */
    if ((v = env_get(ov, "BERTH_ROOT")) && (r = set_dir(&cfg->root, v, "BERTH_ROOT", err)) < 0)
        return r;
    if ((v = env_get(ov, "BERTH_RUNROOT")) &&
        (r = set_dir(&cfg->runroot, v, "BERTH_RUNROOT", err)) < 0)
        return r;
    if (ov->root && (r = set_dir(&cfg->root, ov->root, "root", err)) < 0)
        return r;
    if (ov->runroot && (r = set_dir(&cfg->runroot, ov->runroot, "runroot", err)) < 0)
        return r;
    r = 0;
    /* The override's plugin path replaces $BERTH_PLUGIN_PATH, as --root replaces $BERTH_ROOT;
     * either is searched after the config's own dirs. */
    if (ov->plugin_path)
        r = append_plugin_path(cfg, ov->plugin_path, "plugin path", err);
    else if ((v = env_get(ov, "BERTH_PLUGIN_PATH")))
        r = append_plugin_path(cfg, v, "BERTH_PLUGIN_PATH", err);
    if (r < 0)
        return r;

    if (!listeners_set && derive_listeners(cfg) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_cfg = TAKE_PTR(cfg);
    return 0;
}

/* The object at the parent of dotted @path inside @doc, created on the way (borrowed). */
static json_t *parent_section(json_t *doc, const char *path)
{
    char part[64];

    for (const char *dot; (dot = strchr(path, '.')); path = dot + 1) {
        size_t n = (size_t)(dot - path);
        json_t *sub;

        if (n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        sub = json_object_get(doc, part);
        if (!sub) {
            sub = json_object();
            if (json_object_set_new(doc, part, sub) < 0)
                return NULL;
        }
        doc = sub;
    }
    return doc;
}

static json_t *strv_to_json(char *const *strv)
{
    json_t *a = json_array();

    for (size_t i = 0; a && strv && strv[i]; i++)
        if (json_array_append_new(a, json_string(strv[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *berth__config_to_json(const berth_config_t *cfg)
{
    _cleanup_json_ json_t *doc = json_object();

    if (!doc || !cfg)
        return NULL;
    /* Same table as parsing, so whatever this writes parses back to the same config. */
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(schema); i++) {
        const config_key_t *key = &schema[i];
        const char *name = strrchr(key->path, '.');
        json_t *parent, *v = NULL;

        name = name ? name + 1 : key->path;
        switch (key->kind) {
        case KEY_SECTION:
            continue; /* created when a member is written, so an unset api.tls stays absent */
        case KEY_STRING:
        case KEY_PATH:
        case KEY_ENUM:
            if (!*SLOT_PTR(cfg, key, char *const))
                continue;
            v = json_string(*SLOT_PTR(cfg, key, char *const));
            break;
        case KEY_LOG_LEVEL:
            v = json_string(berth__log_level_name(*SLOT_PTR(cfg, key, const uint32_t)));
            break;
        case KEY_PATH_LIST:
        case KEY_LISTENER_LIST:
            v = strv_to_json(*SLOT_PTR(cfg, key, char **const));
            break;
        case KEY_COUNT:
            v = json_integer((json_int_t)*SLOT_PTR(cfg, key, const uint64_t));
            break;
        case KEY_OBJECT_MAP:
            v = *SLOT_PTR(cfg, key, json_t *const)
                    ? json_deep_copy(*SLOT_PTR(cfg, key, json_t *const))
                    : json_object();
            break;
        case KEY_POOLS:
            if (!*SLOT_PTR(cfg, key, json_t *const))
                continue;
            v = json_deep_copy(*SLOT_PTR(cfg, key, json_t *const));
            break;
        }
        parent = parent_section(doc, key->path);
        if (!v || !parent) {
            json_decref(v);
            return NULL;
        }
        if (json_object_set_new(parent, name, v) < 0)
            return NULL;
    }
    return TAKE_PTR(doc);
}
