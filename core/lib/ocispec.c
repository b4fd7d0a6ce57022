/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI runtime spec generation with Docker's defaults (ocispec.h). The
 * defaults are facts about what a Docker container gets: its capability
 * set, its standard mounts, the /proc and /sys paths it masks, and the
 * environment it adds. They are stated here as data tables.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ocispec.h"
#include "util.h"

/* Every Linux capability, by number (capability.h), without the CAP_ prefix. */
static const char *const all_caps[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};

/* Docker's default capability set. */
static const char *const default_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE",
};

/* Paths Docker hides from containers (bind /dev/null, or an empty read-only tmpfs for dirs). */
static const char *const masked_paths[] = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};

/* Paths Docker makes read-only. */
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int berth__cap_normalise(const char *name, char *buf, size_t len, berth_err_t *err)
{
    const char *bare = name;

    if (!name || !*name)
        return berth_err_set(err, -EINVAL, "empty capability name");
    if (strcasecmp(name, "ALL") == 0) {
        snprintf(buf, len, "ALL");
        return 0;
    }
    if (strncasecmp(bare, "CAP_", 4) == 0)
        bare += 4;
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(all_caps); i++) {
        if (strcasecmp(bare, all_caps[i]) == 0) {
            snprintf(buf, len, "CAP_%s", all_caps[i]);
            return 0;
        }
    }
    return berth_err_set(err, -EINVAL, "unknown capability: \"%s\"", name);
}

int berth__parse_bytes(const char *text, int64_t *ret_bytes, berth_err_t *err)
{
    static const char units[] = "bkmgtp";
    char *end = NULL;
    double v;
    const char *u;

    if (!text || !*text)
        return berth_err_set(err, -EINVAL, "invalid size: empty");
    errno = 0;
    v = strtod(text, &end);
    if (end == text || errno || v < 0 || !isfinite(v))
        return berth_err_set(err, -EINVAL, "invalid size: '%s'", text);
    /* Suffixes: none, b, or one of k m g t p optionally followed by "b" or "ib". */
    if (*end) {
        u = strchr(units, tolower((unsigned char)*end));
        if (!u)
            return berth_err_set(err, -EINVAL, "invalid size: '%s'", text);
        for (long i = 0; i < u - units; i++)
            v *= 1024;
        end++;
        if (u != units && (strcasecmp(end, "b") == 0 || strcasecmp(end, "ib") == 0))
            end += strlen(end);
        if (*end)
            return berth_err_set(err, -EINVAL, "invalid size: '%s'", text);
    }
    if (v > 9.2e18)
        return berth_err_set(err, -EINVAL, "invalid size: '%s' is too large", text);
    *ret_bytes = (int64_t)v;
    return 0;
}

int berth__parse_cpus(const char *text, int64_t *ret_nanocpus, berth_err_t *err)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = text ? strtod(text, &end) : 0;
    if (!text || end == text || *end || errno || !isfinite(v) || v <= 0 || v > 1e6)
        return berth_err_set(err, -EINVAL, "invalid --cpus value: '%s'", text ? text : "");
    *ret_nanocpus = (int64_t)llround(v * 1e9);
    return 0;
}

static const char *cfg_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : NULL;
}

static json_int_t cfg_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* process.args: Entrypoint followed by Cmd, as Docker combines them. */
static int build_args(json_t *config, json_t *process, berth_err_t *err)
{
    json_t *args = json_array(), *v;
    size_t i;

    json_array_foreach (json_object_get(config, "Entrypoint"), i, v) {
        json_array_append(args, v);
    }
    json_array_foreach (json_object_get(config, "Cmd"), i, v) {
        json_array_append(args, v);
    }
    if (json_array_size(args) == 0) {
        json_decref(args);
        return berth_err_set(err, -EINVAL, "no command specified");
    }
    json_array_foreach (args, i, v) {
        if (!json_is_string(v)) {
            json_decref(args);
            return berth_err_set(err, -EINVAL, "command arguments must be strings");
        }
    }
    json_object_set_new(process, "args", args);
    return 0;
}

static int env_has(json_t *env, const char *name)
{
    size_t i, len = strlen(name);
    json_t *v;
    json_array_foreach (env, i, v) {
        const char *s = json_string_value(v);
        if (s && strncmp(s, name, len) == 0 && s[len] == '=')
            return 1;
    }
    return 0;
}

static json_t *build_env(json_t *config, const char *hostname)
{
    json_t *env = json_array(), *v;
    char buf[300];
    size_t i;

    /* Docker adds PATH when the image and user give none, HOSTNAME always, TERM with a tty. */
    if (!env_has(json_object_get(config, "Env"), "PATH"))
        json_array_append_new(env, json_string(DEFAULT_PATH));
    snprintf(buf, sizeof(buf), "HOSTNAME=%s", hostname);
    json_array_append_new(env, json_string(buf));
    if (json_is_true(json_object_get(config, "Tty")) &&
        !env_has(json_object_get(config, "Env"), "TERM"))
        json_array_append_new(env, json_string("TERM=xterm"));
    json_array_foreach (json_object_get(config, "Env"), i, v) {
        const char *s = json_string_value(v);
        /* "NAME" alone (docker run -e NAME with NAME unset) means: leave it out. */
        if (s && strchr(s, '='))
            json_array_append(env, v);
    }
    return env;
}

/*
 * "uid", "uid:gid", "name", "name:group": numeric parts go into uid/gid,
 * names into "username" for the driver to resolve in the container's
 * /etc/passwd and /etc/group after pivot_root.
 */
static int build_user(const char *user, json_t *process, berth_err_t *err)
{
    json_t *u = json_object();
    char *end;
    const char *colon;
    int numeric_uid, numeric_gid = 1;
    unsigned long uid = 0, gid = 0;

    json_object_set_new(process, "user", u);
    if (!user || !*user) {
        json_object_set_new(u, "uid", json_integer(0));
        json_object_set_new(u, "gid", json_integer(0));
        return 0;
    }
    colon = strchr(user, ':');
    if (colon == user || (colon && !colon[1]))
        return berth_err_set(err, -EINVAL, "invalid user: '%s'", user);
    errno = 0;
    uid = strtoul(user, &end, 10);
    numeric_uid = end != user && (end == colon || !*end) && !errno && uid < 0xffffffffUL;
    if (colon) {
        errno = 0;
        gid = strtoul(colon + 1, &end, 10);
        numeric_gid = end != colon + 1 && !*end && !errno && gid < 0xffffffffUL;
    }
    if (numeric_uid && numeric_gid) {
        json_object_set_new(u, "uid", json_integer((json_int_t)uid));
        json_object_set_new(u, "gid", json_integer((json_int_t)gid));
        return 0;
    }
    for (const char *p = user; *p; p++)
        if (isspace((unsigned char)*p) || *p == '/')
            return berth_err_set(err, -EINVAL, "invalid user: '%s'", user);
    json_object_set_new(u, "uid", json_integer(0));
    json_object_set_new(u, "gid", json_integer(0));
    json_object_set_new(u, "username", json_string(user));
    return 0;
}

static int build_caps(json_t *hc, json_t *process, berth_err_t *err)
{
    _cleanup_json_ json_t *set = json_array();
    json_t *v, *caps;
    char name[64];
    size_t i;
    int all_added = 0, all_dropped = 0, r;

    json_array_foreach (json_object_get(hc, "CapAdd"), i, v) {
        if ((r = berth__cap_normalise(json_string_value(v), name, sizeof(name), err)) < 0)
            return r;
        all_added |= strcmp(name, "ALL") == 0;
    }
    json_array_foreach (json_object_get(hc, "CapDrop"), i, v) {
        if ((r = berth__cap_normalise(json_string_value(v), name, sizeof(name), err)) < 0)
            return r;
        all_dropped |= strcmp(name, "ALL") == 0;
    }
    /* Start from Docker's set (or every cap for --cap-add ALL, none for --cap-drop ALL). */
    if (all_added) {
        for (size_t k = 0; k < BERTH_ARRAY_SIZE(all_caps); k++) {
            snprintf(name, sizeof(name), "CAP_%s", all_caps[k]);
            json_array_append_new(set, json_string(name));
        }
    } else if (!all_dropped) {
        for (size_t k = 0; k < BERTH_ARRAY_SIZE(default_caps); k++)
            json_array_append_new(set, json_string(default_caps[k]));
    }
    /* Explicit drops win over the base set; explicit adds win over drop ALL. */
    json_array_foreach (json_object_get(hc, "CapDrop"), i, v) {
        size_t j;
        json_t *c;
        berth__cap_normalise(json_string_value(v), name, sizeof(name), NULL);
        json_array_foreach (set, j, c) {
            if (strcmp(json_string_value(c), name) == 0) {
                json_array_remove(set, j);
                break;
            }
        }
    }
    json_array_foreach (json_object_get(hc, "CapAdd"), i, v) {
        size_t j;
        json_t *c;
        int present = 0;
        berth__cap_normalise(json_string_value(v), name, sizeof(name), NULL);
        if (strcmp(name, "ALL") == 0)
            continue;
        json_array_foreach (set, j, c) {
            present |= strcmp(json_string_value(c), name) == 0;
        }
        if (!present)
            json_array_append_new(set, json_string(name));
    }
    caps = json_pack("{s:O, s:O, s:O, s:[]}", "bounding", set, "effective", set, "permitted", set,
                     "inheritable");
    if (!caps)
        return berth_err_set(err, -ENOMEM, "out of memory");
    json_object_set_new(process, "capabilities", caps);
    return 0;
}

static json_t *mount_obj(const char *dest, const char *type, const char *source,
                         const char *const *options)
{
    json_t *m = json_pack("{s:s, s:s, s:s, s:[]}", "destination", dest, "type", type, "source",
                          source, "options");
    for (size_t i = 0; m && options && options[i]; i++)
        json_array_append_new(json_object_get(m, "options"), json_string(options[i]));
    return m;
}

/* An absolute path with no ".." component: mount targets are resolved inside the rootfs. */
static int dest_is_valid(const char *d)
{
    if (!d || d[0] != '/')
        return 0;
    for (const char *p = d; (p = strstr(p, "..")); p += 2)
        if ((p == d || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return 0;
    return 1;
}

static int build_mounts(json_t *record, json_t *hc, const char *etc_dir, json_t *spec,
                        berth_err_t *err)
{
    static const char *const proc_o[] = { "nosuid", "noexec", "nodev", NULL };
    static const char *const dev_o[] = { "nosuid", "strictatime", "mode=755", "size=65536k", NULL };
    static const char *const pts_o[] = { "nosuid",    "noexec", "newinstance", "ptmxmode=0666",
                                         "mode=0620", "gid=5",  NULL };
    static const char *const sys_o[] = { "nosuid", "noexec", "nodev", "ro", NULL };
    static const char *const cg_o[] = { "nosuid", "noexec", "nodev", "relatime", "ro", NULL };
    static const char *const mq_o[] = { "nosuid", "noexec", "nodev", NULL };
    static const char *const shm_o[] = { "nosuid",    "noexec",      "nodev",
                                         "mode=1777", "size=65536k", NULL };
    json_t *mounts = json_array(), *v;
    const char *dest;
    size_t i;

    json_object_set_new(spec, "mounts", mounts);
    json_array_append_new(mounts, mount_obj("/proc", "proc", "proc", proc_o));
    json_array_append_new(mounts, mount_obj("/dev", "tmpfs", "tmpfs", dev_o));
    json_array_append_new(mounts, mount_obj("/dev/pts", "devpts", "devpts", pts_o));
    json_array_append_new(mounts, mount_obj("/sys", "sysfs", "sysfs", sys_o));
    json_array_append_new(mounts, mount_obj("/sys/fs/cgroup", "cgroup", "cgroup", cg_o));
    json_array_append_new(mounts, mount_obj("/dev/mqueue", "mqueue", "mqueue", mq_o));
    json_array_append_new(mounts, mount_obj("/dev/shm", "tmpfs", "shm", shm_o));

    /* Before the user's binds, so that -v over /etc/hosts wins as in Docker. */
    if (etc_dir) {
        static const char *const files[] = { "hosts", "hostname", "resolv.conf" };
        const char *bo[] = { "rbind", "rprivate", NULL };
        for (size_t k = 0; k < BERTH_ARRAY_SIZE(files); k++) {
            char src[PATH_MAX], dst[64];
            snprintf(src, sizeof(src), "%s/%s", etc_dir, files[k]);
            snprintf(dst, sizeof(dst), "/etc/%s", files[k]);
            json_array_append_new(mounts, mount_obj(dst, "bind", src, bo));
        }
    }
    /*
     * Binds and volumes as resolved at create time (volume-api.h): each a
     * bind of its Source, a volume's being its _data directory.
     */
    json_array_foreach (json_object_get(record, "mounts"), i, v) {
        const char *src = json_string_value(json_object_get(v, "Source"));
        const char *opts[4] = { "rbind", "rprivate", NULL, NULL };
        dest = json_string_value(json_object_get(v, "Destination"));
        if (!src || src[0] != '/' || !dest_is_valid(dest))
            return berth_err_set(err, -EINVAL, "container record: bad mount %zu", i);
        if (json_is_false(json_object_get(v, "RW")))
            opts[2] = "ro";
        json_array_append_new(mounts, mount_obj(dest, "bind", src, opts));
    }
    /* -v SRC:DST[:ro|rw] of a record made before "mounts" existed. */
    json_array_foreach (
        json_is_array(json_object_get(record, "mounts")) ? NULL : json_object_get(hc, "Binds"), i,
        v) {
        const char *b = json_string_value(v);
        _cleanup_free_ char *copy = b ? strdup(b) : NULL;
        char *src, *dst, *mode;
        const char *opts[4] = { "rbind", "rprivate", NULL, NULL };
        if (!copy)
            return berth_err_set(err, -EINVAL, "invalid bind mount");
        src = copy;
        dst = strchr(src, ':');
        if (!dst)
            return berth_err_set(err, -EINVAL, "invalid bind mount '%s': want SRC:DST[:ro]", b);
        *dst++ = '\0';
        mode = strchr(dst, ':');
        if (mode)
            *mode++ = '\0';
        if (src[0] != '/')
            return berth_err_set(err, -EINVAL,
                                 "invalid bind mount '%s': the source must be an absolute path", b);
        if (!dest_is_valid(dst))
            return berth_err_set(err, -EINVAL,
                                 "invalid bind mount '%s': the destination must be an absolute "
                                 "path without '..'",
                                 b);
        if (mode && strcmp(mode, "ro") == 0)
            opts[2] = "ro";
        else if (mode && *mode && strcmp(mode, "rw") != 0)
            return berth_err_set(err, -EINVAL, "invalid bind mount '%s': unknown mode '%s'", b,
                                 mode);
        json_array_append_new(mounts, mount_obj(dst, "bind", src, opts));
    }
    /* --tmpfs DST[:OPTS] arrives as {"DST": "OPTS"} */
    json_object_foreach (json_object_get(hc, "Tmpfs"), dest, v) {
        const char *o = json_string_value(v);
        json_t *m;
        static const char *const base[] = { "nosuid", "nodev", "noexec", NULL };
        if (!dest_is_valid(dest))
            return berth_err_set(err, -EINVAL,
                                 "invalid tmpfs mount '%s': the destination must be an absolute "
                                 "path without '..'",
                                 dest);
        m = mount_obj(dest, "tmpfs", "tmpfs", base);
        if (o && *o) {
            _cleanup_free_ char *copy = strdup(o);
            for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                json_array_append_new(json_object_get(m, "options"), json_string(tok));
        }
        json_array_append_new(mounts, m);
    }
    return 0;
}

static json_t *build_resources(json_t *hc)
{
    json_t *res = json_object();
    json_int_t mem = cfg_int(hc, "Memory"), swap = cfg_int(hc, "MemorySwap");
    json_int_t nano = cfg_int(hc, "NanoCpus"), shares = cfg_int(hc, "CpuShares");
    json_int_t pids = cfg_int(hc, "PidsLimit");

    if (mem > 0) {
        /* Docker: MemorySwap unset (0) means as much swap as memory; -1 unlimited. */
        json_int_t total = swap == 0 ? 2 * mem : swap;
        json_object_set_new(res, "memory", json_pack("{s:I, s:I}", "limit", mem, "swap", total));
    }
    if (nano > 0 || shares > 0) {
        json_t *cpu = json_object();
        if (nano > 0) {
            json_object_set_new(cpu, "period", json_integer(100000));
            json_object_set_new(cpu, "quota", json_integer(nano * 100000 / 1000000000));
        }
        if (shares > 0)
            json_object_set_new(cpu, "shares", json_integer(shares));
        json_object_set_new(res, "cpu", cpu);
    }
    if (pids > 0)
        json_object_set_new(res, "pids", json_pack("{s:I}", "limit", pids));
    return res;
}

/*
 * --userns C:H:N[,C:H:N...]: the same map for uids and gids, each entry
 * mapping N ids from container id C to host id H. Adds the user namespace.
 */
static int build_userns(json_t *hc, json_t *linux_, json_t *ns, berth_err_t *err)
{
    const char *mode = cfg_str(hc, "UsernsMode");
    _cleanup_free_ char *copy = NULL;
    json_t *maps;
    char *save = NULL;

    if (!mode || strcmp(mode, "host") == 0)
        return 0;
    if (!(copy = strdup(mode)) || !(maps = json_array()))
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned long c, h, n;
        char tail;
        if (sscanf(tok, "%lu:%lu:%lu%c", &c, &h, &n, &tail) != 3 || n == 0 || c > 0xfffffffeUL ||
            h > 0xfffffffeUL || n > 0xffffffffUL - c || n > 0xffffffffUL - h) {
            json_decref(maps);
            return berth_err_set(
                err, -EINVAL, "invalid --userns '%s': want CONTAINER_ID:HOST_ID:COUNT[,...]", mode);
        }
        json_array_append_new(maps, json_pack("{s:I, s:I, s:I}", "containerID", (json_int_t)c,
                                              "hostID", (json_int_t)h, "size", (json_int_t)n));
    }
    if (json_array_size(maps) == 0) {
        json_decref(maps);
        return berth_err_set(err, -EINVAL, "invalid --userns '%s'", mode);
    }
    json_object_set(linux_, "uidMappings", maps);
    json_object_set_new(linux_, "gidMappings", maps);
    json_array_append_new(ns, json_pack("{s:s}", "type", "user"));
    return 0;
}

static int has_secopt(json_t *hc, const char *opt)
{
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(hc, "SecurityOpt"), i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), opt) == 0)
            return 1;
    }
    return 0;
}

int berth__oci_spec_build(json_t *record, const berth_oci_opts_t *opts, json_t **ret_spec,
                          berth_err_t *err)
{
    json_t *config = json_object_get(record, "config");
    json_t *hc = json_object_get(record, "host_config");
    const char *id = json_string_value(json_object_get(record, "id"));
    _cleanup_json_ json_t *spec = NULL;
    json_t *process, *linux_, *ns, *arr, *v;
    char hostname[65], cgpath[128];
    size_t i;
    int r;

    if (!id || strlen(id) < 12 || !json_is_object(config))
        return berth_err_set(err, -EINVAL, "container record lacks id or config");
    snprintf(hostname, sizeof(hostname), "%s",
             cfg_str(config, "Hostname") ? cfg_str(config, "Hostname") : id);
    if (!cfg_str(config, "Hostname"))
        hostname[12] = '\0';

    spec = json_pack("{s:s, s:{s:s, s:b}, s:s}", "ociVersion", "1.0.2", "root", "path",
                     opts && opts->rootfs_path ? opts->rootfs_path : "rootfs", "readonly",
                     json_is_true(json_object_get(hc, "ReadonlyRootfs")), "hostname", hostname);
    process = json_object();
    if (!spec || !process)
        return berth_err_set(err, -ENOMEM, "out of memory");
    json_object_set_new(spec, "process", process);
    json_object_set_new(process, "terminal",
                        json_boolean(json_is_true(json_object_get(config, "Tty"))));
    if ((r = build_user(cfg_str(config, "User"), process, err)) < 0)
        return r;
    if ((r = build_args(config, process, err)) < 0)
        return r;
    json_object_set_new(process, "env", build_env(config, hostname));
    json_object_set_new(
        process, "cwd",
        json_string(cfg_str(config, "WorkingDir") ? cfg_str(config, "WorkingDir") : "/"));
    if (cfg_str(config, "WorkingDir") && cfg_str(config, "WorkingDir")[0] != '/')
        return berth_err_set(err, -EINVAL, "the working directory '%s' is not an absolute path",
                             cfg_str(config, "WorkingDir"));
    if ((r = build_caps(hc, process, err)) < 0)
        return r;
    json_object_set_new(process, "noNewPrivileges",
                        json_boolean(has_secopt(hc, "no-new-privileges") ||
                                     has_secopt(hc, "no-new-privileges:true")));
    arr = json_array();
    json_array_foreach (json_object_get(hc, "Ulimits"), i, v) {
        char type[64];
        const char *name = json_string_value(json_object_get(v, "Name"));
        if (!name)
            continue;
        snprintf(type, sizeof(type), "RLIMIT_%s", name);
        for (char *p = type; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "type", type, "soft",
                                             cfg_int(v, "Soft"), "hard", cfg_int(v, "Hard")));
    }
    json_object_set_new(process, "rlimits", arr);

    if ((r = build_mounts(record, hc, opts ? opts->etc_dir : NULL, spec, err)) < 0)
        return r;

    linux_ = json_object();
    json_object_set_new(spec, "linux", linux_);
    ns = json_pack("[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}]", "type", "pid", "type", "ipc", "type",
                   "uts", "type", "mount", "type", "cgroup");
    if (opts && opts->netns_path)
        json_array_append_new(ns,
                              json_pack("{s:s, s:s}", "type", "network", "path", opts->netns_path));
    else if (!opts || !opts->host_network)
        json_array_append_new(ns, json_pack("{s:s}", "type", "network"));
    json_object_set_new(linux_, "namespaces", ns);
    if ((r = build_userns(hc, linux_, ns, err)) < 0)
        return r;
    json_object_set_new(linux_, "resources", build_resources(hc));
    snprintf(cgpath, sizeof(cgpath), "berth/%s", id);
    json_object_set_new(linux_, "cgroupsPath", json_string(cgpath));
    arr = json_array();
    for (i = 0; i < BERTH_ARRAY_SIZE(masked_paths); i++)
        json_array_append_new(arr, json_string(masked_paths[i]));
    json_object_set_new(linux_, "maskedPaths", arr);
    arr = json_array();
    for (i = 0; i < BERTH_ARRAY_SIZE(readonly_paths); i++)
        json_array_append_new(arr, json_string(readonly_paths[i]));
    json_object_set_new(linux_, "readonlyPaths", arr);
    if (opts && opts->seccomp && !has_secopt(hc, "seccomp=unconfined"))
        json_object_set(linux_, "seccomp", opts->seccomp);

    *ret_spec = TAKE_PTR(spec);
    return 0;
}
