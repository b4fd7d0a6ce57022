/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plugin loader: find modules, check them against the ABI, run their init,
 * and give each driver its host-API handle. See plugins.h for the contract
 * and berth/plugin.h for the order of checks.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ltdl.h>

#include "berth-build-config.h"
#include "plugins.h"
#include "util.h"

/* The per-driver handle behind berth_host_t. */
struct berth_host {
    berth_registry_t *reg;
    berth_driver_t *drv;
    char *state_dir;
    char *run_dir;
    char *config_json;
    char source[64]; /* "<kind>/<name>" for log lines */
};

struct berth_registry {
    berth_plugin_env_t env;
    char **search_path;
    berth_driver_t **drivers;
    size_t n_drivers;
    berth_refusal_t *refused;
    size_t n_refused;
    /* Identities of files already seen, so a dir listed twice loads once. */
    struct {
        dev_t dev;
        ino_t ino;
    } * seen;
    size_t n_seen;
    int ltdl_ready;
};

static const char *const kind_names[] = {
    [BERTH_KIND_ISOLATION] = "isolation",
    [BERTH_KIND_STORAGE] = "storage",
    [BERTH_KIND_NETWORK] = "network",
    [BERTH_KIND_IMAGE] = "image",
};

const char *berth__kind_name(uint32_t kind)
{
    if (kind >= BERTH_ARRAY_SIZE(kind_names))
        return NULL;
    return kind_names[kind];
}

uint32_t berth__kind_parse(const char *name)
{
    for (uint32_t k = 1; k < BERTH_ARRAY_SIZE(kind_names); k++)
        if (kind_names[k] && strcmp(kind_names[k], name) == 0)
            return k;
    return 0;
}

/* Capability names per kind, indexed by bit number; the ABI fixes the bits. */
static const char *const isolation_caps[] = {
    "vm",     "multi-container", "exec",    "tty",   "pause",   "stats",
    "userns", "net-netns",       "net-tap", "linux", "windows",
};
static const char *const storage_caps[] = { "whiteout-overlay", "quota", "shared-layers" };
static const char *const network_caps[] = { "netns", "tap", "ports", "dns", "multihost" };
static const char *const image_caps[] = { "pull", "push", "list", "remote" };

json_t *berth__caps_to_json(uint32_t kind, uint64_t caps)
{
    const char *const *names = NULL;
    size_t n = 0;
    json_t *arr = json_array();

    if (!arr)
        return NULL;
    switch (kind) {
    case BERTH_KIND_ISOLATION:
        names = isolation_caps, n = BERTH_ARRAY_SIZE(isolation_caps);
        break;
    case BERTH_KIND_STORAGE:
        names = storage_caps, n = BERTH_ARRAY_SIZE(storage_caps);
        break;
    case BERTH_KIND_NETWORK:
        names = network_caps, n = BERTH_ARRAY_SIZE(network_caps);
        break;
    case BERTH_KIND_IMAGE:
        names = image_caps, n = BERTH_ARRAY_SIZE(image_caps);
        break;
    }
    for (unsigned bit = 0; bit < 64; bit++) {
        char buf[16];
        if (!(caps & (1ull << bit)))
            continue;
        /* A bit from a newer ABI minor than ours still shows, by number. */
        if (bit < n) {
            json_array_append_new(arr, json_string(names[bit]));
        } else {
            snprintf(buf, sizeof(buf), "bit%u", bit);
            json_array_append_new(arr, json_string(buf));
        }
    }
    return arr;
}

int berth__driver_name_valid(const char *name)
{
    size_t len;
    if (!name)
        return 0;
    len = strlen(name);
    if (len == 0 || len > BERTH_DRIVER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '_' || c == '.' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

/* ---- the host API handed to drivers ---- */

static void host_log(berth_host_t *host, uint32_t level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!host || !host->reg->env.log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One line per call: a driver's stray newline must not forge a second log line. */
    msg[strcspn(msg, "\n")] = '\0';
    host->reg->env.log(host->reg->env.log_userdata, level, host->source, msg);
}

static void *host_alloc(berth_host_t *host, size_t size)
{
    return malloc(size ? size : 1);
}

static void *host_realloc(berth_host_t *host, void *ptr, size_t size)
{
    return realloc(ptr, size ? size : 1);
}

static void host_free(berth_host_t *host, void *ptr)
{
    free(ptr);
}

static const char *host_path(berth_host_t *host, uint32_t which)
{
    /* The driver's own dirs are created on first use, so drivers that keep
     * no state leave nothing behind in the root. */
    switch (which) {
    case BERTH_PATH_ROOT:
        return host->reg->env.root;
    case BERTH_PATH_RUNROOT:
        return host->reg->env.runroot;
    case BERTH_PATH_STATE:
        return berth__mkdir_p(host->state_dir, 0700, NULL) == 0 ? host->state_dir : NULL;
    case BERTH_PATH_RUNSTATE:
        return berth__mkdir_p(host->run_dir, 0700, NULL) == 0 ? host->run_dir : NULL;
    case BERTH_PATH_PLUGIN:
        return host->drv->path;
    default:
        return NULL;
    }
}

static const char *host_config(berth_host_t *host)
{
    return host->config_json;
}

static int host_emit_event(berth_host_t *host, const char *type, const char *action, const char *id,
                           const char *attrs_json, berth_err_t *err)
{
    const berth_plugin_env_t *env = &host->reg->env;
    if (!type || !action || !id)
        return berth_err_set(err, -EINVAL, "emit_event: type, action and id are required");
    if (!env->emit_event)
        return berth_err_set(err, -ENOTSUP, "emit_event: this engine keeps no event log");
    return env->emit_event(env->event_userdata, type, action, id, attrs_json, err);
}

static const berth_host_api_t host_api = {
    .struct_size = sizeof(berth_host_api_t),
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .log = host_log,
    .alloc = host_alloc,
    .realloc = host_realloc,
    .free = host_free,
    .path = host_path,
    .config = host_config,
    .emit_event = host_emit_event,
};

/* ---- registry ---- */

int berth__registry_new(const berth_plugin_env_t *env, berth_registry_t **ret_reg, berth_err_t *err)
{
    berth_registry_t *reg = calloc(1, sizeof(*reg));

    if (!reg || !(reg->search_path = berth__strv_new())) {
        free(reg);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    if (env)
        reg->env = *env;
    /* lt_dlinit is reference-counted; berth__registry_free balances it. */
    if (lt_dlinit() != 0) {
        berth__strv_free(reg->search_path);
        free(reg);
        return berth_err_set(err, -EIO, "libltdl: %s", lt_dlerror());
    }
    reg->ltdl_ready = 1;
    *ret_reg = reg;
    return 0;
}

static int refuse(berth_registry_t *reg, const char *path, berth_err_t *err, int code,
                  const char *fmt, ...) BERTH_PRINTF(5, 6);

/* Record a refusal and fill err with "PATH: reason"; returns code. */
static int refuse(berth_registry_t *reg, const char *path, berth_err_t *err, int code,
                  const char *fmt, ...)
{
    char reason[BERTH_ERR_MSG_MAX];
    berth_refusal_t *grown;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    reason[strcspn(reason, "\n")] = '\0';

    grown = realloc(reg->refused, (reg->n_refused + 1) * sizeof(*grown));
    if (!grown)
        return berth_err_set(err, -ENOMEM, "out of memory");
    reg->refused = grown;
    grown[reg->n_refused].path = strdup(path);
    grown[reg->n_refused].reason = strdup(reason);
    if (!grown[reg->n_refused].path || !grown[reg->n_refused].reason) {
        free(grown[reg->n_refused].path);
        free(grown[reg->n_refused].reason);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    reg->n_refused++;
    return berth_err_set(err, code, "%s: %s", path, reason);
}

/* The 1.0 size of each kind's ops table and its required slots, for checks. */
struct required_op {
    const char *name;
    size_t offset;
};
#define REQ(type, m)                                                                               \
    {                                                                                              \
#m, offsetof(type, m)                                                                      \
    }

static const struct required_op isolation_required[] = {
    REQ(berth_isolation_ops_t, sandbox_create),
    REQ(berth_isolation_ops_t, sandbox_network),
    REQ(berth_isolation_ops_t, sandbox_destroy),
    REQ(berth_isolation_ops_t, sandbox_release),
    REQ(berth_isolation_ops_t, container_create),
    REQ(berth_isolation_ops_t, container_start),
    REQ(berth_isolation_ops_t, container_delete),
    REQ(berth_isolation_ops_t, container_release),
    REQ(berth_isolation_ops_t, container_init_process),
    REQ(berth_isolation_ops_t, process_signal),
    REQ(berth_isolation_ops_t, process_wait),
};
static const struct required_op storage_required[] = {
    REQ(berth_storage_ops_t, prepare), REQ(berth_storage_ops_t, mounts),
    REQ(berth_storage_ops_t, commit),  REQ(berth_storage_ops_t, remove),
    REQ(berth_storage_ops_t, stat),    REQ(berth_storage_ops_t, walk),
};
static const struct required_op network_required[] = {
    REQ(berth_network_ops_t, network_create),
    REQ(berth_network_ops_t, network_delete),
    REQ(berth_network_ops_t, endpoint_attach),
    REQ(berth_network_ops_t, endpoint_detach),
};
static const struct required_op image_required[] = {
    REQ(berth_image_ops_t, match),   REQ(berth_image_ops_t, open),  REQ(berth_image_ops_t, close),
    REQ(berth_image_ops_t, resolve), REQ(berth_image_ops_t, fetch),
};

struct kind_rules {
    size_t min_ops_size;
    const struct required_op *required;
    size_t n_required;
};

static const struct kind_rules *rules_for(uint32_t kind)
{
    static const struct kind_rules rules[] = {
        [BERTH_KIND_ISOLATION] = { BERTH_ISOLATION_OPS_SIZE_1_0, isolation_required,
                                   BERTH_ARRAY_SIZE(isolation_required) },
        [BERTH_KIND_STORAGE] = { BERTH_STORAGE_OPS_SIZE_1_0, storage_required,
                                 BERTH_ARRAY_SIZE(storage_required) },
        [BERTH_KIND_NETWORK] = { BERTH_NETWORK_OPS_SIZE_1_0, network_required,
                                 BERTH_ARRAY_SIZE(network_required) },
        [BERTH_KIND_IMAGE] = { BERTH_IMAGE_OPS_SIZE_1_0, image_required,
                               BERTH_ARRAY_SIZE(image_required) },
    };
    if (kind == 0 || kind >= BERTH_ARRAY_SIZE(rules))
        return NULL;
    return &rules[kind];
}

/* The least descriptor a 1.0 core reads: everything up to and including ops. */
#define DESC_SIZE_1_0 (offsetof(berth_plugin_desc_t, ops) + sizeof(const void *))

/*
 * Check a descriptor before anything in it is called. Returns NULL when it is
 * acceptable, otherwise the reason (written into buf).
 */
static const char *check_desc(const berth_plugin_desc_t *d, char *buf, size_t len)
{
    const struct kind_rules *rules;
    const berth_ops_header_t *ops;

    /* ABI first: a descriptor from another major may not even be this struct. */
    if (d->abi_major != BERTH_ABI_MAJOR) {
        snprintf(buf, len, "built for driver ABI %u.%u; this berth implements ABI %u.%u",
                 d->abi_major, d->abi_minor, BERTH_ABI_MAJOR, BERTH_ABI_MINOR);
        return buf;
    }
    if (d->abi_minor > BERTH_ABI_MINOR) {
        snprintf(buf, len, "built for newer driver ABI %u.%u; this berth implements ABI %u.%u",
                 d->abi_major, d->abi_minor, BERTH_ABI_MAJOR, BERTH_ABI_MINOR);
        return buf;
    }
    if (d->struct_size < DESC_SIZE_1_0) {
        snprintf(buf, len, "descriptor struct_size %u is smaller than ABI 1.0's %zu",
                 d->struct_size, (size_t)DESC_SIZE_1_0);
        return buf;
    }
    rules = rules_for(d->kind);
    if (!rules) {
        snprintf(buf, len, "unknown driver kind %u", d->kind);
        return buf;
    }
    if (!berth__driver_name_valid(d->name)) {
        snprintf(buf, len, "invalid driver name (want [a-z0-9][a-z0-9_.-]*, at most %u chars)",
                 BERTH_DRIVER_NAME_MAX);
        return buf;
    }
    if (!d->version || !*d->version) {
        snprintf(buf, len, "%s driver '%s' has no version", berth__kind_name(d->kind), d->name);
        return buf;
    }
    if (!d->license || !*d->license) {
        snprintf(buf, len, "%s driver '%s' has no license", berth__kind_name(d->kind), d->name);
        return buf;
    }
    ops = d->ops;
    if (!ops) {
        snprintf(buf, len, "%s driver '%s' has no ops table", berth__kind_name(d->kind), d->name);
        return buf;
    }
    if (ops->struct_size < rules->min_ops_size) {
        snprintf(buf, len, "%s driver '%s': ops struct_size %u is smaller than ABI 1.0's %zu",
                 berth__kind_name(d->kind), d->name, ops->struct_size, rules->min_ops_size);
        return buf;
    }
    for (size_t i = 0; i < rules->n_required; i++) {
        void (*const *slot)(void) =
            (void (*const *)(void))((const char *)ops + rules->required[i].offset);
        if (*slot == NULL) {
            snprintf(buf, len, "%s driver '%s' lacks required op '%s'", berth__kind_name(d->kind),
                     d->name, rules->required[i].name);
            return buf;
        }
    }
    return NULL;
}

static int seen_before(berth_registry_t *reg, const struct stat *st)
{
    for (size_t i = 0; i < reg->n_seen; i++)
        if (reg->seen[i].dev == st->st_dev && reg->seen[i].ino == st->st_ino)
            return 1;
    return 0;
}

static int remember(berth_registry_t *reg, const struct stat *st)
{
    void *grown = realloc(reg->seen, (reg->n_seen + 1) * sizeof(*reg->seen));
    if (!grown)
        return -ENOMEM;
    reg->seen = grown;
    reg->seen[reg->n_seen].dev = st->st_dev;
    reg->seen[reg->n_seen].ino = st->st_ino;
    reg->n_seen++;
    return 0;
}

static void host_free_handle(struct berth_host *h)
{
    if (!h)
        return;
    free(h->state_dir);
    free(h->run_dir);
    free(h->config_json);
    free(h);
}

static void driver_free(berth_driver_t *drv)
{
    if (!drv)
        return;
    host_free_handle(drv->host);
    free(drv->path);
    free(drv);
}

/* Build the driver record and its host handle; nothing is called in the module. */
static int driver_new(berth_registry_t *reg, const char *path, const berth_plugin_desc_t *d,
                      berth_driver_t **ret)
{
    berth_driver_t *drv = calloc(1, sizeof(*drv));
    struct berth_host *h = calloc(1, sizeof(*h));
    const char *kind = berth__kind_name(d->kind);
    json_t *section = NULL;

    if (!drv || !h)
        goto oom;
    drv->host = h;
    drv->kind = d->kind;
    drv->desc = d;
    drv->ops = d->ops;
    drv->caps = d->capabilities;
    if (!(drv->path = strdup(path)))
        goto oom;
    h->reg = reg;
    h->drv = drv;
    snprintf(h->source, sizeof(h->source), "%s/%s", kind, d->name);
    if (asprintf(&h->state_dir, "%s/drivers/%s/%s", reg->env.root ? reg->env.root : "", kind,
                 d->name) < 0) {
        h->state_dir = NULL;
        goto oom;
    }
    if (asprintf(&h->run_dir, "%s/drivers/%s/%s", reg->env.runroot ? reg->env.runroot : "", kind,
                 d->name) < 0) {
        h->run_dir = NULL;
        goto oom;
    }
    if (reg->env.drivers_config)
        section = json_object_get(reg->env.drivers_config, d->name);
    h->config_json = section ? json_dumps(section, JSON_COMPACT) : strdup("{}");
    if (!h->config_json)
        goto oom;
    *ret = drv;
    return 0;
oom:
    if (drv)
        driver_free(drv);
    else
        host_free_handle(h);
    return -ENOMEM;
}

int berth__registry_load_file(berth_registry_t *reg, const char *path, berth_err_t *err)
{
    lt_dladvise advise = NULL;
    lt_dlhandle handle;
    berth_plugin_entry_fn entry;
    const berth_plugin_desc_t *d;
    berth_driver_t *drv = NULL, **grown;
    berth_err_t init_err = { 0 };
    char reason[BERTH_ERR_MSG_MAX];
    const char *why;
    int r;

    /* Symbols stay local to each module: two drivers' helpers never clash. */
    if (lt_dladvise_init(&advise) != 0 || lt_dladvise_local(&advise) != 0) {
        lt_dladvise_destroy(&advise);
        return berth_err_set(err, -ENOMEM, "libltdl: %s", lt_dlerror());
    }
    handle = lt_dlopenadvise(path, advise);
    lt_dladvise_destroy(&advise);
    if (!handle) {
        const char *e = lt_dlerror();
        return refuse(reg, path, err, -ENOEXEC, "not a loadable module: %s",
                      e ? e : "unknown error");
    }

    entry = (berth_plugin_entry_fn)lt_dlsym(handle, BERTH_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        lt_dlclose(handle);
        return refuse(reg, path, err, -ENOENT, "no %s symbol (not a berth plugin)",
                      BERTH_PLUGIN_ENTRY_SYMBOL);
    }
    d = entry();
    if (!d) {
        lt_dlclose(handle);
        return refuse(reg, path, err, -EINVAL, "%s returned no descriptor",
                      BERTH_PLUGIN_ENTRY_SYMBOL);
    }
    /* The descriptor lives in the module: decide everything before closing it. */
    if ((why = check_desc(d, reason, sizeof(reason)))) {
        int code = d->abi_major != BERTH_ABI_MAJOR ? -EPROTO : -EINVAL;
        lt_dlclose(handle);
        return refuse(reg, path, err, code, "%s", why);
    }
    if (berth__registry_find(reg, d->kind, d->name)) {
        const berth_driver_t *other = berth__registry_find(reg, d->kind, d->name);
        snprintf(reason, sizeof(reason), "duplicate %s driver '%s' (already loaded from %s)",
                 berth__kind_name(d->kind), d->name, other->path);
        lt_dlclose(handle);
        return refuse(reg, path, err, -EEXIST, "%s", reason);
    }

    if (driver_new(reg, path, d, &drv) < 0) {
        lt_dlclose(handle);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    grown = realloc(reg->drivers, (reg->n_drivers + 1) * sizeof(*grown));
    if (!grown) {
        driver_free(drv);
        lt_dlclose(handle);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    reg->drivers = grown;

    if (d->init) {
        void *priv = NULL;
        r = d->init(&host_api, drv->host, &priv, &init_err);
        if (r != 0) {
            /* init may have left threads or handlers behind: keep the module mapped. */
            lt_dlmakeresident(handle);
            if (r > 0)
                r = -EINVAL;
            driver_free(drv);
            return refuse(reg, path, err, r, "%s driver '%s': init failed: %s",
                          berth__kind_name(d->kind), d->name,
                          init_err.msg[0] ? init_err.msg : strerror(-r));
        }
        drv->priv = priv;
    }
    /* Loaded drivers are never unloaded, even by a last lt_dlexit(). */
    lt_dlmakeresident(handle);
    reg->drivers[reg->n_drivers++] = drv;
    return 0;
}

static int module_file(const char *name)
{
    size_t n = strlen(name), e = strlen(BERTH_MODULE_EXT);
    return n > e && strcmp(name + n - e, BERTH_MODULE_EXT) == 0 && name[0] != '.';
}

int berth__registry_load_dirs(berth_registry_t *reg, char *const *dirs, berth_err_t *err)
{
    for (size_t i = 0; dirs && dirs[i]; i++) {
        struct dirent **names = NULL;
        int n;

        if (!berth__strv_contains(reg->search_path, dirs[i]) &&
            berth__strv_push(&reg->search_path, dirs[i]) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        n = scandir(dirs[i], &names, NULL, alphasort);
        if (n < 0)
            continue; /* a missing dir is normal (uninstalled build, empty config) */
        for (int j = 0; j < n; j++) {
            char path[PATH_MAX];
            struct stat st;
            int r = 0;

            if (module_file(names[j]->d_name) &&
                snprintf(path, sizeof(path), "%s/%s", dirs[i], names[j]->d_name) <
                    (int)sizeof(path) &&
                stat(path, &st) == 0 && S_ISREG(st.st_mode) && !seen_before(reg, &st)) {
                r = remember(reg, &st);
                if (r == 0)
                    r = berth__registry_load_file(reg, path, NULL);
            }
            free(names[j]);
            if (r == -ENOMEM) {
                for (int k = j + 1; k < n; k++)
                    free(names[k]);
                free(names);
                return berth_err_set(err, -ENOMEM, "out of memory");
            }
        }
        free(names);
    }
    return 0;
}

berth_driver_t *berth__registry_load_named(berth_registry_t *reg, char *const *dirs, uint32_t kind,
                                           const char *name)
{
    berth_driver_t *d = berth__registry_find(reg, kind, name);

    if (d || !berth__driver_name_valid(name) || !berth__kind_name(kind))
        return d;
    for (size_t i = 0; dirs && dirs[i] && !d; i++) {
        char path[PATH_MAX];
        struct stat st;

        if (snprintf(path, sizeof(path), "%s/%s-%s%s", dirs[i], berth__kind_name(kind), name,
                     BERTH_MODULE_EXT) >= (int)sizeof(path) ||
            stat(path, &st) < 0 || !S_ISREG(st.st_mode) || seen_before(reg, &st) ||
            remember(reg, &st) < 0)
            continue;
        if (berth__registry_load_file(reg, path, NULL) == 0)
            d = berth__registry_find(reg, kind, name);
    }
    return d;
}

void berth__registry_free(berth_registry_t *reg)
{
    if (!reg)
        return;
    for (size_t i = reg->n_drivers; i-- > 0;) {
        berth_driver_t *drv = reg->drivers[i];
        if (drv->desc->fini)
            drv->desc->fini(drv->priv);
        driver_free(drv);
    }
    free(reg->drivers);
    for (size_t i = 0; i < reg->n_refused; i++) {
        free(reg->refused[i].path);
        free(reg->refused[i].reason);
    }
    free(reg->refused);
    free(reg->seen);
    berth__strv_free(reg->search_path);
    if (reg->ltdl_ready)
        lt_dlexit();
    free(reg);
}

berth_driver_t *berth__registry_find(berth_registry_t *reg, uint32_t kind, const char *name)
{
    for (size_t i = 0; i < reg->n_drivers; i++)
        if (reg->drivers[i]->kind == kind && strcmp(reg->drivers[i]->desc->name, name) == 0)
            return reg->drivers[i];
    return NULL;
}

size_t berth__registry_count(const berth_registry_t *reg)
{
    return reg->n_drivers;
}

berth_driver_t *berth__registry_driver(berth_registry_t *reg, size_t i)
{
    return i < reg->n_drivers ? reg->drivers[i] : NULL;
}

size_t berth__registry_refused_count(const berth_registry_t *reg)
{
    return reg->n_refused;
}

const berth_refusal_t *berth__registry_refused(const berth_registry_t *reg, size_t i)
{
    return i < reg->n_refused ? &reg->refused[i] : NULL;
}

json_t *berth__registry_to_json(const berth_registry_t *reg)
{
    json_t *root = json_object(), *dirs = json_array(), *drivers = json_array(),
           *refused = json_array();

    if (!root || !dirs || !drivers || !refused)
        goto oom;
    for (size_t i = 0; reg->search_path[i]; i++)
        json_array_append_new(dirs, json_string(reg->search_path[i]));
    for (size_t i = 0; i < reg->n_drivers; i++) {
        const berth_driver_t *drv = reg->drivers[i];
        const berth_plugin_desc_t *d = drv->desc;
        char abi[32];
        json_t *o;

        snprintf(abi, sizeof(abi), "%u.%u", d->abi_major, d->abi_minor);
        o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:o, s:s}", "kind",
                      berth__kind_name(drv->kind), "name", d->name, "version", d->version,
                      "license", d->license, "description", d->description, "abi", abi,
                      "capabilities", berth__caps_to_json(drv->kind, drv->caps), "path", drv->path);
        if (!o || json_array_append_new(drivers, o) < 0)
            goto oom;
    }
    for (size_t i = 0; i < reg->n_refused; i++) {
        json_t *o =
            json_pack("{s:s, s:s}", "path", reg->refused[i].path, "reason", reg->refused[i].reason);
        if (!o || json_array_append_new(refused, o) < 0)
            goto oom;
    }
    json_object_set_new(root, "search_path", dirs);
    json_object_set_new(root, "drivers", drivers);
    json_object_set_new(root, "refused", refused);
    return root;
oom:
    json_decref(root);
    json_decref(dirs);
    json_decref(drivers);
    json_decref(refused);
    return NULL;
}

/* Every kind's ops table starts with the header and then probe (ABI 1.0). */
typedef int (*probe_fn)(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err);
struct probe_table {
    uint32_t struct_size;
    uint32_t reserved;
    probe_fn probe;
};

int berth__driver_probe(berth_driver_t *d, uint64_t *ret_caps, berth_err_t *err)
{
    const struct probe_table *t = d->ops;
    uint64_t caps = d->caps;
    int r;

    if (BERTH_OPS_HAS(t, struct probe_table, probe)) {
        r = t->probe(d->priv, 0, &caps, err);
        if (r == BERTH_DECLINED && err && !err->msg[0])
            berth_err_set(err, -ENOTSUP, "%s: declined", d->desc->name);
        if (r != 0)
            return r;
    }
    if (ret_caps)
        *ret_caps = caps;
    return 0;
}
