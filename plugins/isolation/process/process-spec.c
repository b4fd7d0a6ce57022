/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsing the OCI runtime spec (config.json) into the structs the child
 * uses, and compiling linux.seccomp with libseccomp. Everything here runs in
 * the caller, before the fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/capability.h>
#include <seccomp.h>

#include "process-internal.h"

static const char *const cap_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

static const struct {
    const char *name;
    int resource;
} rlimit_names[] = {
    { "RLIMIT_CPU", RLIMIT_CPU },           { "RLIMIT_FSIZE", RLIMIT_FSIZE },
    { "RLIMIT_DATA", RLIMIT_DATA },         { "RLIMIT_STACK", RLIMIT_STACK },
    { "RLIMIT_CORE", RLIMIT_CORE },         { "RLIMIT_RSS", RLIMIT_RSS },
    { "RLIMIT_NPROC", RLIMIT_NPROC },       { "RLIMIT_NOFILE", RLIMIT_NOFILE },
    { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },   { "RLIMIT_AS", RLIMIT_AS },
    { "RLIMIT_LOCKS", RLIMIT_LOCKS },       { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
    { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
    { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },     { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

/* Mount options that are flags; everything else goes to the filesystem as data. */
static const struct {
    const char *name;
    int clear;
    unsigned long flag;
} mount_flags[] = {
    { "ro", 0, MS_RDONLY },
    { "rw", 1, MS_RDONLY },
    { "nosuid", 0, MS_NOSUID },
    { "suid", 1, MS_NOSUID },
    { "nodev", 0, MS_NODEV },
    { "dev", 1, MS_NODEV },
    { "noexec", 0, MS_NOEXEC },
    { "exec", 1, MS_NOEXEC },
    { "sync", 0, MS_SYNCHRONOUS },
    { "async", 1, MS_SYNCHRONOUS },
    { "dirsync", 0, MS_DIRSYNC },
    { "remount", 0, MS_REMOUNT },
    { "mand", 0, MS_MANDLOCK },
    { "nomand", 1, MS_MANDLOCK },
    { "atime", 1, MS_NOATIME },
    { "noatime", 0, MS_NOATIME },
    { "diratime", 1, MS_NODIRATIME },
    { "nodiratime", 0, MS_NODIRATIME },
    { "relatime", 0, MS_RELATIME },
    { "norelatime", 1, MS_RELATIME },
    { "strictatime", 0, MS_STRICTATIME },
    { "nostrictatime", 1, MS_STRICTATIME },
};

static const struct {
    const char *name;
    unsigned long flag;
} propagation_flags[] = {
    { "private", MS_PRIVATE },       { "rprivate", MS_PRIVATE | MS_REC },
    { "shared", MS_SHARED },         { "rshared", MS_SHARED | MS_REC },
    { "slave", MS_SLAVE },           { "rslave", MS_SLAVE | MS_REC },
    { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* A JSON array of strings as a NULL-terminated vector; NULL array gives an empty vector. */
static int strv_from_json(json_t *arr, const char *what, char ***ret, size_t *ret_n,
                          berth_err_t *err)
{
    size_t n = arr ? json_array_size(arr) : 0, i;
    char **v;

    if (arr && !json_is_array(arr))
        return berth_err_set(err, -EINVAL, "process: %s must be an array of strings", what);
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s) {
            free_strv(v);
            return berth_err_set(err, -EINVAL, "process: %s[%zu] must be a string", what, i);
        }
        v[i] = strdup(s);
        if (!v[i]) {
            free_strv(v);
            return berth_err_set(err, -ENOMEM, "process: out of memory");
        }
    }
    *ret = v;
    if (ret_n)
        *ret_n = n;
    return 0;
}

static int caps_from_json(json_t *arr, const char *what, uint64_t *ret, berth_err_t *err)
{
    uint64_t caps = 0;
    size_t i, c;
    json_t *v;

    if (!arr) {
        *ret = 0;
        return 0;
    }
    if (!json_is_array(arr))
        return berth_err_set(err, -EINVAL, "process: capabilities.%s must be an array", what);
    json_array_foreach (arr, i, v) {
        const char *name = json_string_value(v);
        if (!name)
            return berth_err_set(err, -EINVAL, "process: capabilities.%s has a non-string", what);
        for (c = 0; c < sizeof(cap_names) / sizeof(cap_names[0]); c++)
            if (strcasecmp(name, cap_names[c]) == 0 ||
                (strncasecmp(name, "CAP_", 4) != 0 && strcasecmp(name, cap_names[c] + 4) == 0))
                break;
        /* Capabilities this kernel doesn't know are skipped, as runc does, so a newer spec runs. */
        if (c < sizeof(cap_names) / sizeof(cap_names[0]) && c <= CAP_LAST_CAP)
            caps |= 1ull << c;
    }
    *ret = caps;
    return 0;
}

static int rlimits_from_json(json_t *arr, struct process_proc *p, berth_err_t *err)
{
    size_t i, k;
    json_t *v;

    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return berth_err_set(err, -EINVAL, "process: process.rlimits must be an array");
    p->rlimits = calloc(json_array_size(arr) + 1, sizeof(*p->rlimits));
    if (!p->rlimits)
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    json_array_foreach (arr, i, v) {
        const char *type = json_string_value(json_object_get(v, "type"));
        json_t *soft = json_object_get(v, "soft"), *hard = json_object_get(v, "hard");
        for (k = 0; type && k < sizeof(rlimit_names) / sizeof(rlimit_names[0]); k++)
            if (strcmp(type, rlimit_names[k].name) == 0)
                break;
        if (!type || k == sizeof(rlimit_names) / sizeof(rlimit_names[0]))
            return berth_err_set(err, -EINVAL, "process: unknown rlimit type \"%s\"",
                                 type ? type : "(none)");
        if (!json_is_integer(soft) || !json_is_integer(hard))
            return berth_err_set(err, -EINVAL, "process: rlimit %s needs soft and hard", type);
        p->rlimits[p->n_rlimits].resource = rlimit_names[k].resource;
        /* JSON has no unsigned 64-bit: -1 (as Docker writes it) means unlimited. */
        p->rlimits[p->n_rlimits].soft =
            json_integer_value(soft) < 0 ? RLIM_INFINITY : (rlim_t)json_integer_value(soft);
        p->rlimits[p->n_rlimits].hard =
            json_integer_value(hard) < 0 ? RLIM_INFINITY : (rlim_t)json_integer_value(hard);
        p->n_rlimits++;
    }
    return 0;
}

int process_proc_parse(json_t *obj, struct process_proc *p, berth_err_t *err)
{
    json_t *user, *caps, *gids;
    const char *cwd;
    int r;

    memset(p, 0, sizeof(*p));
    if (!json_is_object(obj))
        return berth_err_set(err, -EINVAL, "process: the spec has no \"process\" object");
    r = strv_from_json(json_object_get(obj, "args"), "process.args", &p->args, NULL, err);
    if (r < 0)
        goto fail;
    if (!p->args[0]) {
        r = berth_err_set(err, -EINVAL, "process: process.args is empty");
        goto fail;
    }
    r = strv_from_json(json_object_get(obj, "env"), "process.env", &p->env, NULL, err);
    if (r < 0)
        goto fail;
    cwd = json_string_value(json_object_get(obj, "cwd"));
    if (cwd && cwd[0] != '/') {
        r = berth_err_set(err, -EINVAL, "process: process.cwd \"%s\" is not absolute", cwd);
        goto fail;
    }
    p->cwd = strdup(cwd ? cwd : "/");
    if (!p->cwd) {
        r = berth_err_set(err, -ENOMEM, "process: out of memory");
        goto fail;
    }
    p->terminal = json_is_true(json_object_get(obj, "terminal"));
    p->no_new_privs = json_is_true(json_object_get(obj, "noNewPrivileges"));
    if (json_is_integer(json_object_get(obj, "oomScoreAdj"))) {
        p->has_oom_score_adj = 1;
        p->oom_score_adj = (int)json_integer_value(json_object_get(obj, "oomScoreAdj"));
    }
    user = json_object_get(obj, "user");
    if (user) {
        json_t *v;
        size_t i;
        p->uid = (uid_t)json_integer_value(json_object_get(user, "uid"));
        p->gid = (gid_t)json_integer_value(json_object_get(user, "gid"));
        p->username = dup_or_null(json_string_value(json_object_get(user, "username")));
        gids = json_object_get(user, "additionalGids");
        if (json_is_array(gids) && json_array_size(gids) > 0) {
            p->groups = calloc(json_array_size(gids), sizeof(gid_t));
            if (!p->groups) {
                r = berth_err_set(err, -ENOMEM, "process: out of memory");
                goto fail;
            }
            json_array_foreach (gids, i, v)
                p->groups[p->n_groups++] = (gid_t)json_integer_value(v);
        }
    }
    caps = json_object_get(obj, "capabilities");
    if (json_is_object(caps)) {
        p->has_caps = 1;
        if ((r = caps_from_json(json_object_get(caps, "bounding"), "bounding", &p->cap_bounding,
                                err)) < 0 ||
            (r = caps_from_json(json_object_get(caps, "effective"), "effective", &p->cap_effective,
                                err)) < 0 ||
            (r = caps_from_json(json_object_get(caps, "permitted"), "permitted", &p->cap_permitted,
                                err)) < 0 ||
            (r = caps_from_json(json_object_get(caps, "inheritable"), "inheritable",
                                &p->cap_inheritable, err)) < 0 ||
            (r = caps_from_json(json_object_get(caps, "ambient"), "ambient", &p->cap_ambient,
                                err)) < 0)
            goto fail;
    }
    r = rlimits_from_json(json_object_get(obj, "rlimits"), p, err);
    if (r < 0)
        goto fail;
    return 0;
fail:
    process_proc_clear(p);
    return r;
}

void process_proc_clear(struct process_proc *p)
{
    free_strv(p->args);
    free_strv(p->env);
    free(p->cwd);
    free(p->username);
    free(p->groups);
    free(p->rlimits);
    memset(p, 0, sizeof(*p));
}

/* Append "opt" to a comma-separated string. */
static int data_append(char **data, const char *opt)
{
    size_t old = *data ? strlen(*data) : 0, n = strlen(opt);
    char *d = realloc(*data, old + n + 2);
    if (!d)
        return -ENOMEM;
    if (old)
        d[old++] = ',';
    memcpy(d + old, opt, n + 1);
    *data = d;
    return 0;
}

static int mount_from_json(json_t *m, struct process_mount *pm, berth_err_t *err)
{
    const char *dest = json_string_value(json_object_get(m, "destination"));
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *source = json_string_value(json_object_get(m, "source"));
    json_t *opts = json_object_get(m, "options"), *o;
    size_t i, k;

    if (!dest || dest[0] != '/')
        return berth_err_set(err, -EINVAL, "process: mount destination must be absolute");
    pm->destination = strdup(dest);
    pm->type = strdup(type ? type : "none");
    pm->source = strdup(source ? source : "none");
    if (!pm->destination || !pm->type || !pm->source)
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    if (strcmp(pm->type, "bind") == 0)
        pm->bind = 1;
    json_array_foreach (opts, i, o) {
        const char *s = json_string_value(o);
        int done = 0;
        if (!s)
            continue;
        if (strcmp(s, "bind") == 0 || strcmp(s, "rbind") == 0) {
            pm->bind = 1;
            pm->flags |= MS_BIND | (s[0] == 'r' ? MS_REC : 0);
            continue;
        }
        for (k = 0; !done && k < sizeof(mount_flags) / sizeof(mount_flags[0]); k++) {
            if (strcmp(s, mount_flags[k].name) == 0) {
                if (mount_flags[k].clear)
                    pm->flags &= ~mount_flags[k].flag;
                else
                    pm->flags |= mount_flags[k].flag;
                done = 1;
            }
        }
        for (k = 0; !done && k < sizeof(propagation_flags) / sizeof(propagation_flags[0]); k++) {
            if (strcmp(s, propagation_flags[k].name) == 0) {
                pm->propagation = propagation_flags[k].flag;
                done = 1;
            }
        }
        if (!done && data_append(&pm->data, s) < 0)
            return berth_err_set(err, -ENOMEM, "process: out of memory");
    }
    if (pm->bind) {
        pm->flags |= MS_BIND;
        /* Flags other than MS_BIND|MS_REC are ignored by a bind: they need a remount. */
        if (pm->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC))
            pm->readonly_bind = 1;
    }
    return 0;
}

static void mount_clear(struct process_mount *pm)
{
    free(pm->destination);
    free(pm->type);
    free(pm->source);
    free(pm->data);
}

/* uidMappings/gidMappings as the text uid_map expects. */
static int idmap_from_json(json_t *arr, char **ret, berth_err_t *err)
{
    size_t i, len = 0;
    json_t *v;
    char *s;

    s = calloc(1, json_array_size(arr) * 64 + 1);
    if (!s)
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    json_array_foreach (arr, i, v) {
        len += (size_t)snprintf(s + len, 64, "%lld %lld %lld\n",
                                (long long)json_integer_value(json_object_get(v, "containerID")),
                                (long long)json_integer_value(json_object_get(v, "hostID")),
                                (long long)json_integer_value(json_object_get(v, "size")));
    }
    *ret = s;
    return 0;
}

int process_cfg_parse(const char *text, struct process_cfg *cfg, berth_err_t *err)
{
    json_error_t jerr;
    json_t *root, *linux_, *mounts, *v, *root_obj, *ns;
    size_t i;
    int r;

    memset(cfg, 0, sizeof(*cfg));
    if (!text)
        return berth_err_set(err, -EINVAL, "process: no OCI spec given");
    root = json_loads(text, 0, &jerr);
    if (!root)
        return berth_err_set(err, -EINVAL, "process: OCI spec: %s (line %d)", jerr.text, jerr.line);
    r = process_proc_parse(json_object_get(root, "process"), &cfg->proc, err);
    if (r < 0)
        goto out;
    r = -ENOMEM;
    root_obj = json_object_get(root, "root");
    cfg->root_path = dup_or_null(json_string_value(json_object_get(root_obj, "path")));
    cfg->root_readonly = json_is_true(json_object_get(root_obj, "readonly"));
    cfg->hostname = dup_or_null(json_string_value(json_object_get(root, "hostname")));

    mounts = json_object_get(root, "mounts");
    if (json_array_size(mounts) > 0) {
        cfg->mounts = calloc(json_array_size(mounts), sizeof(*cfg->mounts));
        if (!cfg->mounts)
            goto oom;
        json_array_foreach (mounts, i, v) {
            r = mount_from_json(v, &cfg->mounts[cfg->n_mounts++], err);
            if (r < 0)
                goto out;
        }
    }

    linux_ = json_object_get(root, "linux");
    if ((r = strv_from_json(json_object_get(linux_, "maskedPaths"), "linux.maskedPaths",
                            &cfg->masked, &cfg->n_masked, err)) < 0 ||
        (r = strv_from_json(json_object_get(linux_, "readonlyPaths"), "linux.readonlyPaths",
                            &cfg->readonly, &cfg->n_readonly, err)) < 0)
        goto out;
    cfg->cgroups_path = dup_or_null(json_string_value(json_object_get(linux_, "cgroupsPath")));
    cfg->resources = json_incref(json_object_get(linux_, "resources"));
    json_array_foreach (json_object_get(linux_, "namespaces"), i, ns) {
        const char *type = json_string_value(json_object_get(ns, "type"));
        if (type && strcmp(type, "network") == 0) {
            cfg->net_listed = 1;
            cfg->net_path = dup_or_null(json_string_value(json_object_get(ns, "path")));
        }
    }
    if (json_array_size(json_object_get(linux_, "uidMappings")) > 0) {
        cfg->userns = 1;
        r = idmap_from_json(json_object_get(linux_, "uidMappings"), &cfg->uid_map, err);
        if (r < 0)
            goto out;
        r = idmap_from_json(json_object_get(linux_, "gidMappings"), &cfg->gid_map, err);
        if (r < 0)
            goto out;
    }
    v = json_object_get(linux_, "sysctl");
    if (json_object_size(v) > 0) {
        const char *key;
        json_t *val;
        cfg->sysctl = calloc(json_object_size(v), sizeof(*cfg->sysctl));
        if (!cfg->sysctl)
            goto oom;
        json_object_foreach (v, key, val) {
            struct process_sysctl *s = &cfg->sysctl[cfg->n_sysctl];
            if (!json_is_string(val) || strstr(key, "..")) {
                r = berth_err_set(err, -EINVAL, "process: bad sysctl \"%s\"", key);
                goto out;
            }
            s->key = strdup(key);
            s->value = strdup(json_string_value(val));
            cfg->n_sysctl++;
            if (!s->key || !s->value)
                goto oom;
        }
    }
    cfg->root_propagation = MS_PRIVATE | MS_REC;
    v = json_object_get(linux_, "rootfsPropagation");
    if (json_is_string(v)) {
        for (i = 0; i < sizeof(propagation_flags) / sizeof(propagation_flags[0]); i++)
            if (strcmp(json_string_value(v), propagation_flags[i].name) == 0)
                cfg->root_propagation = propagation_flags[i].flag | MS_REC;
    }
    v = json_object_get(linux_, "seccomp");
    if (v || process_seccomp_preset_set()) {
        r = process_seccomp_compile(v, &cfg->seccomp, err);
        if (r < 0)
            goto out;
    }
    r = 0;
    goto out;
oom:
    r = berth_err_set(err, -ENOMEM, "process: out of memory");
out:
    json_decref(root);
    if (r < 0)
        process_cfg_clear(cfg);
    return r;
}

void process_cfg_clear(struct process_cfg *cfg)
{
    size_t i;

    process_proc_clear(&cfg->proc);
    free(cfg->root_path);
    free(cfg->hostname);
    for (i = 0; i < cfg->n_mounts; i++)
        mount_clear(&cfg->mounts[i]);
    free(cfg->mounts);
    free_strv(cfg->masked);
    free_strv(cfg->readonly);
    for (i = 0; i < cfg->n_sysctl; i++) {
        free(cfg->sysctl[i].key);
        free(cfg->sysctl[i].value);
    }
    free(cfg->sysctl);
    free(cfg->cgroups_path);
    json_decref(cfg->resources);
    free(cfg->net_path);
    free(cfg->uid_map);
    free(cfg->gid_map);
    free(cfg->seccomp.filter);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- seccomp ---- */

static int seccomp_compile_uncached(json_t *sc, struct sock_fprog *prog, berth_err_t *err);

/* mkdir that accepts an existing directory. */
static int mkdir_one(const char *dir)
{
    return mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int seccomp_action(const char *name, json_t *errno_ret, uint32_t *ret)
{
    int e = json_is_integer(errno_ret) ? (int)json_integer_value(errno_ret) : EPERM;

    if (!name)
        return -EINVAL;
    if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
        *ret = SCMP_ACT_ALLOW;
    else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
        *ret = SCMP_ACT_ERRNO(e);
    else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
        *ret = SCMP_ACT_KILL;
    else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
        *ret = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
        *ret = SCMP_ACT_TRAP;
    else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
        *ret = SCMP_ACT_TRACE(e);
    else if (strcmp(name, "SCMP_ACT_LOG") == 0)
        *ret = SCMP_ACT_LOG;
    else
        return -EINVAL;
    return 0;
}

static int seccomp_op(const char *name, enum scmp_compare *ret)
{
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = {
        { "SCMP_CMP_NE", SCMP_CMP_NE },
        { "SCMP_CMP_LT", SCMP_CMP_LT },
        { "SCMP_CMP_LE", SCMP_CMP_LE },
        { "SCMP_CMP_EQ", SCMP_CMP_EQ },
        { "SCMP_CMP_GE", SCMP_CMP_GE },
        { "SCMP_CMP_GT", SCMP_CMP_GT },
        { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
    };
    for (size_t i = 0; name && i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(name, ops[i].name) == 0) {
            *ret = ops[i].op;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *seccomp_arch_name(const char *oci)
{
    /* OCI writes "SCMP_ARCH_X86_64"; libseccomp's resolver wants "x86_64". */
    static const struct {
        const char *oci, *lib;
    } map[] = {
        { "SCMP_ARCH_X86", "x86" },         { "SCMP_ARCH_X86_64", "x86_64" },
        { "SCMP_ARCH_X32", "x32" },         { "SCMP_ARCH_ARM", "arm" },
        { "SCMP_ARCH_AARCH64", "aarch64" }, { "SCMP_ARCH_PPC64LE", "ppc64le" },
        { "SCMP_ARCH_S390X", "s390x" },     { "SCMP_ARCH_RISCV64", "riscv64" },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(oci, map[i].oci) == 0)
            return map[i].lib;
    return NULL;
}

static int seccomp_add_rule(scmp_filter_ctx ctx, json_t *rule, uint32_t def, berth_err_t *err)
{
    json_t *names = json_object_get(rule, "names"), *args = json_object_get(rule, "args"), *v;
    const char *single = json_string_value(json_object_get(rule, "name"));
    struct scmp_arg_cmp cmps[6];
    unsigned int n_cmps = 0;
    uint32_t action;
    size_t i;
    int r;

    if (seccomp_action(json_string_value(json_object_get(rule, "action")),
                       json_object_get(rule, "errnoRet"), &action) < 0)
        return berth_err_set(err, -EINVAL, "process: seccomp: unknown action \"%s\"",
                             json_string_value(json_object_get(rule, "action")));
    if (action == def)
        return 0; /* libseccomp refuses rules that repeat the default */
    json_array_foreach (args, i, v) {
        enum scmp_compare op;
        if (n_cmps == 6 || seccomp_op(json_string_value(json_object_get(v, "op")), &op) < 0)
            return berth_err_set(err, -EINVAL, "process: seccomp: bad argument condition");
        cmps[n_cmps].arg = (unsigned int)json_integer_value(json_object_get(v, "index"));
        cmps[n_cmps].op = op;
        cmps[n_cmps].datum_a = (scmp_datum_t)json_integer_value(json_object_get(v, "value"));
        cmps[n_cmps].datum_b = (scmp_datum_t)json_integer_value(json_object_get(v, "valueTwo"));
        n_cmps++;
    }
    for (i = 0; i < json_array_size(names) || (single && i == 0); i++) {
        const char *name = single ? single : json_string_value(json_array_get(names, i));
        int nr = name ? seccomp_syscall_resolve_name(name) : __NR_SCMP_ERROR;
        /* Syscalls unknown to this libseccomp/arch are skipped, so one profile fits all hosts. */
        if (nr == __NR_SCMP_ERROR)
            continue;
        r = seccomp_rule_add_array(ctx, action, nr, n_cmps, cmps);
        if (r < 0 && r != -EEXIST)
            return berth_err_set(err, r, "process: seccomp: rule for %s: %s", name, strerror(-r));
        if (single)
            break;
    }
    return 0;
}

/*
 * Compiled filters are cached on disk: libseccomp takes 10-15 ms to compile
 * Docker's default profile, more than the rest of a container start, and
 * every start (each in a fresh monitor process) compiles the same profile.
 * A cache file holds a magic, the exact canonical text it was compiled from
 * (profile, libseccomp version, native arch) and the BPF; it is used only
 * when that text matches byte for byte, so a hash collision can't pick a
 * wrong filter. Files are written to a temporary name and renamed.
 */
static char *seccomp_cache_dir;

void process_seccomp_set_cache_dir(const char *dir)
{
    free(seccomp_cache_dir);
    seccomp_cache_dir = dir ? strdup(dir) : NULL;
}

#define CACHE_MAGIC "BERTHBPF1"

static char *seccomp_cache_key(json_t *sc)
{
    const struct scmp_version *v = seccomp_version();
    char *dump = json_dumps(sc, JSON_COMPACT | JSON_SORT_KEYS), *text = NULL;
    if (!dump)
        return NULL;
    if (asprintf(&text, "libseccomp %u.%u.%u arch %u\n%s", v->major, v->minor, v->micro,
                 seccomp_arch_native(), dump) < 0)
        text = NULL;
    free(dump);
    return text;
}

static void seccomp_cache_path(const char *text, char *buf, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(buf, len, "%s/%016llx.bpf", seccomp_cache_dir, (unsigned long long)h);
}

static int seccomp_cache_load(const char *text, struct sock_fprog *prog)
{
    char path[4096];
    size_t tlen = strlen(text), magic = sizeof(CACHE_MAGIC) - 1;
    struct stat st;
    char *buf = NULL;
    int fd, ok = 0;

    seccomp_cache_path(text, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size > magic + tlen &&
        ((size_t)st.st_size - magic - tlen) % sizeof(struct sock_filter) == 0 &&
        (buf = malloc((size_t)st.st_size)) && read(fd, buf, (size_t)st.st_size) == st.st_size &&
        memcmp(buf, CACHE_MAGIC, magic) == 0 && memcmp(buf + magic, text, tlen) == 0) {
        size_t blen = (size_t)st.st_size - magic - tlen;
        prog->filter = malloc(blen);
        if (prog->filter) {
            memcpy(prog->filter, buf + magic + tlen, blen);
            prog->len = (unsigned short)(blen / sizeof(struct sock_filter));
            ok = 1;
        }
    }
    free(buf);
    close(fd);
    return ok;
}

static void seccomp_cache_store(const char *text, const struct sock_fprog *prog)
{
    char path[4096], tmp[4200];
    int fd;
    size_t blen = prog->len * sizeof(struct sock_filter);

    if (mkdir_one(seccomp_cache_dir) < 0)
        return;
    seccomp_cache_path(text, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    /* A cache is only an optimisation: any failure just leaves no file. */
    if (write(fd, CACHE_MAGIC, sizeof(CACHE_MAGIC) - 1) == (ssize_t)(sizeof(CACHE_MAGIC) - 1) &&
        write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
        write(fd, prog->filter, blen) == (ssize_t)blen && close(fd) == 0) {
        if (rename(tmp, path) < 0)
            unlink(tmp);
        return;
    }
    close(fd);
    unlink(tmp);
}

static struct sock_fprog seccomp_preset;

int process_seccomp_preset(const struct sock_filter *filter, size_t len)
{
    struct sock_filter *copy;

    if (!filter || len == 0 || len > BPF_MAXINSNS)
        return -EINVAL;
    if (!(copy = malloc(len * sizeof(*copy))))
        return -ENOMEM;
    memcpy(copy, filter, len * sizeof(*copy));
    process_seccomp_preset_clear();
    seccomp_preset.filter = copy;
    seccomp_preset.len = (unsigned short)len;
    return 0;
}

int process_seccomp_preset_set(void)
{
    return seccomp_preset.filter != NULL;
}

void process_seccomp_preset_clear(void)
{
    free(seccomp_preset.filter);
    seccomp_preset.filter = NULL;
    seccomp_preset.len = 0;
}

int process_seccomp_compile(json_t *sc, struct sock_fprog *prog, berth_err_t *err)
{
    char *key;
    int r;

    if (seccomp_preset.filter) {
        size_t size = seccomp_preset.len * sizeof(struct sock_filter);
        if (!(prog->filter = malloc(size)))
            return berth_err_set(err, -ENOMEM, "process: out of memory");
        memcpy(prog->filter, seccomp_preset.filter, size);
        prog->len = seccomp_preset.len;
        return 0;
    }
    key = (seccomp_cache_dir && json_is_object(sc)) ? seccomp_cache_key(sc) : NULL;

    if (key && seccomp_cache_load(key, prog)) {
        free(key);
        return 0;
    }
    r = seccomp_compile_uncached(sc, prog, err);
    if (r == 0 && key)
        seccomp_cache_store(key, prog);
    free(key);
    return r;
}

static int seccomp_compile_uncached(json_t *sc, struct sock_fprog *prog, berth_err_t *err)
{
    scmp_filter_ctx ctx = NULL;
    uint32_t def;
    json_t *v;
    size_t i;
    int r, mfd = -1;
    off_t size;
    void *buf = NULL;

    if (!json_is_object(sc))
        return berth_err_set(err, -EINVAL, "process: linux.seccomp must be an object");
    if (seccomp_action(json_string_value(json_object_get(sc, "defaultAction")),
                       json_object_get(sc, "defaultErrnoRet"), &def) < 0)
        return berth_err_set(err, -EINVAL, "process: seccomp: bad defaultAction");
    ctx = seccomp_init(def);
    if (!ctx)
        return berth_err_set(err, -ENOMEM, "process: seccomp: init failed");
    /* The child sets no_new_privs itself when the spec asks for it. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    json_array_foreach (json_object_get(sc, "architectures"), i, v) {
        const char *name = json_string_value(v) ? seccomp_arch_name(json_string_value(v)) : NULL;
        uint32_t arch = name ? seccomp_arch_resolve_name(name) : 0;
        if (arch && arch != seccomp_arch_native()) {
            r = seccomp_arch_add(ctx, arch);
            if (r < 0 && r != -EEXIST) {
                r = berth_err_set(err, r, "process: seccomp: arch %s: %s", name, strerror(-r));
                goto out;
            }
        }
    }
    json_array_foreach (json_object_get(sc, "syscalls"), i, v) {
        r = seccomp_add_rule(ctx, v, def, err);
        if (r < 0)
            goto out;
    }
    /* Export the BPF now, so the child only has to hand it to the kernel. */
    mfd = memfd_create("berth-seccomp", MFD_CLOEXEC);
    if (mfd < 0) {
        r = berth_err_set(err, -errno, "process: seccomp: memfd: %s", strerror(errno));
        goto out;
    }
    r = seccomp_export_bpf(ctx, mfd);
    if (r < 0) {
        r = berth_err_set(err, r, "process: seccomp: export: %s", strerror(-r));
        goto out;
    }
    size = lseek(mfd, 0, SEEK_END);
    buf = size > 0 ? malloc((size_t)size) : NULL;
    if (!buf || pread(mfd, buf, (size_t)size, 0) != size) {
        r = berth_err_set(err, -EIO, "process: seccomp: could not read the compiled filter");
        goto out;
    }
    prog->filter = buf;
    prog->len = (unsigned short)((size_t)size / sizeof(struct sock_filter));
    buf = NULL;
    r = 0;
out:
    free(buf);
    if (mfd >= 0)
        close(mfd);
    seccomp_release(ctx);
    return r;
}
