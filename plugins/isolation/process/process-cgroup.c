/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup management for the process driver (contract in process-cgroup.h).
 *
 * The layout is detected once per process (statfs for the mode, the same test
 * core/lib/hostinfo.c does, plus one read of /proc/self/mountinfo for the v1
 * hierarchies) because container start cost matters: after that, creating and
 * entering a cgroup is only mkdir, open, write and close.
 *
 * Names resolve from the root of each hierarchy, so every process (daemon,
 * CLI, shim) finds the same cgroup for the same name, whatever cgroup it
 * itself runs in (docker's cgroupfs driver does the same with "/docker/<id>").
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "process-cgroup.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define CG_ROOT "/sys/fs/cgroup"

/* v1 controllers berth uses; a hierarchy may carry several (cpu,cpuacct). */
enum {
    C_CPU = 1u << 0,
    C_CPUACCT = 1u << 1,
    C_CPUSET = 1u << 2,
    C_MEMORY = 1u << 3,
    C_DEVICES = 1u << 4,
    C_FREEZER = 1u << 5,
    C_BLKIO = 1u << 6,
    C_PIDS = 1u << 7,
};

static const struct {
    const char *name;
    unsigned bit;
} v1_ctrls[] = {
    { "cpu", C_CPU },       { "cpuacct", C_CPUACCT }, { "cpuset", C_CPUSET },
    { "memory", C_MEMORY }, { "devices", C_DEVICES }, { "freezer", C_FREEZER },
    { "blkio", C_BLKIO },   { "pids", C_PIDS },
};

#define MAX_HIER 8

/* The host's layout, filled once by detect_layout(). */
static struct {
    const char *mode; /* "v1", "v2", "hybrid" or "none" */
    int n_v1;
    struct {
        char mnt[128];
        unsigned ctrls;
    } v1[MAX_HIER];
    /* The cgroup2 tree (CG_ROOT on v2, CG_ROOT/unified on hybrid), "" when none. */
    char v2[128];
    /* v2 controllers berth wants that the v2 root offers ("cpu memory pids ..."). */
    char v2_ctrls[64];
} layout;

static pthread_once_t layout_once = PTHREAD_ONCE_INIT;

struct pcg {
    char *name;
    /* Directory of the cgroup in each v1 hierarchy (index as layout.v1), NULL when absent. */
    char *v1[MAX_HIER];
    /* Directory in the cgroup2 tree, NULL when absent (hybrid: creation failed or no mount). */
    char *v2;
    /* 1 when v2 is where the limits live (pure v2 host); 0 on hybrid, where v2 is informational. */
    int v2_limits;
};

/* ---- small file helpers: open/write/close, no stdio, so each costs three syscalls ---- */

static int write_file(const char *path, const char *buf)
{
    size_t len = strlen(buf);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, buf, len);
    if (n < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    close(fd);
    return (size_t)n == len ? 0 : -EIO;
}

static int write_at(const char *dir, const char *file, const char *buf)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    return write_file(path, buf);
}

/* Read up to size-1 bytes of @dir/@file into @buf, NUL-terminated; returns length or -errno. */
static ssize_t read_at(const char *dir, const char *file, char *buf, size_t size)
{
    char path[PATH_MAX];
    size_t len = 0;
    int fd;

    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (len < size - 1) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

static int file_exists(const char *dir, const char *file)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
        return 0;
    return access(path, F_OK) == 0;
}

/* First integer of @dir/@file; "max" reads as -1. */
static int read_i64(const char *dir, const char *file, int64_t *ret)
{
    char buf[64];
    ssize_t n = read_at(dir, file, buf, sizeof(buf));
    char *end;
    long long v;

    if (n < 0)
        return (int)n;
    if (strncmp(buf, "max", 3) == 0) {
        *ret = -1;
        return 0;
    }
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno || end == buf)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* Value of "key N" in a flat keyed file (memory.events, memory.oom_control, cpu.stat). */
static int read_key(const char *dir, const char *file, const char *key, int64_t *ret)
{
    char buf[4096];
    size_t klen = strlen(key);
    ssize_t n = read_at(dir, file, buf, sizeof(buf));
    char *p = buf;

    if (n < 0)
        return (int)n;
    while (p && *p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
            *ret = strtoll(p + klen + 1, NULL, 10);
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -ENOENT;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- layout detection ---- */

static unsigned long fs_magic(const char *path)
{
    struct statfs sfs;

    if (statfs(path, &sfs) < 0)
        return 0;
    return (unsigned long)sfs.f_type;
}

/* Controllers berth uses named in a v1 mount's super options ("rw,cpu,cpuacct"). */
static unsigned parse_ctrls(char *opts)
{
    unsigned mask = 0;
    char *save = NULL;

    for (char *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save))
        for (size_t i = 0; i < sizeof(v1_ctrls) / sizeof(v1_ctrls[0]); i++)
            if (strcmp(t, v1_ctrls[i].name) == 0)
                mask |= v1_ctrls[i].bit;
    return mask;
}

/* One /proc/self/mountinfo line: record cgroup mounts under CG_ROOT. */
static void layout_add_mount(char *line)
{
    char *field[10] = { 0 };
    char *save = NULL, *dash, *fstype, *superopts;
    int n = 0;

    dash = strstr(line, " - ");
    if (!dash)
        return;
    *dash = '\0';
    for (char *t = strtok_r(line, " ", &save); t && n < 10; t = strtok_r(NULL, " ", &save))
        field[n++] = t;
    if (n < 5)
        return;
    save = NULL;
    fstype = strtok_r(dash + 3, " ", &save);
    (void)strtok_r(NULL, " ", &save); /* source */
    superopts = strtok_r(NULL, " ", &save);
    if (!fstype || !superopts || strncmp(field[4], CG_ROOT, strlen(CG_ROOT)) != 0)
        return;
    if (strcmp(fstype, "cgroup") == 0) {
        unsigned mask = parse_ctrls(superopts);

        if (!mask || layout.n_v1 >= MAX_HIER || strlen(field[4]) >= sizeof(layout.v1[0].mnt))
            return;
        /* Skip mounts hidden under a later one (a v2 tree mounted over the tmpfs). */
        if (fs_magic(field[4]) != CGROUP_SUPER_MAGIC)
            return;
        /* A hierarchy mounted twice (bind mounts) is still one hierarchy. */
        for (int i = 0; i < layout.n_v1; i++)
            if (layout.v1[i].ctrls == mask)
                return;
        snprintf(layout.v1[layout.n_v1].mnt, sizeof(layout.v1[0].mnt), "%s", field[4]);
        layout.v1[layout.n_v1].ctrls = mask;
        layout.n_v1++;
    }
}

/* v2 controllers berth wants that the root offers, as "+cpu +memory ..." for subtree_control. */
static void detect_v2_ctrls(void)
{
    /* "io" is v2's blkio. */
    static const char *const want[] = { "cpu", "cpuset", "memory", "pids", "io" };
    char avail[256];
    size_t off = 0;

    if (read_at(layout.v2, "cgroup.controllers", avail, sizeof(avail)) < 0)
        return;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        size_t wl = strlen(want[i]);

        /* Whole words only: "cpu" must not match inside "cpuset". */
        for (char *p = avail; (p = strstr(p, want[i])); p += wl) {
            if ((p == avail || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\n' || !p[wl])) {
                off += (size_t)snprintf(layout.v2_ctrls + off, sizeof(layout.v2_ctrls) - off,
                                        "%s+%s", off ? " " : "", want[i]);
                break;
            }
        }
    }
}

/* The v1 hierarchies, from one read of /proc/self/mountinfo. */
static void detect_v1_mounts(void)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return;
    for (;;) {
        ssize_t n;

        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb)
                break;
            buf = nb;
            cap += 65536;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!buf)
        return;
    buf[len] = '\0';
    for (char *line = buf, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        layout_add_mount(line);
    }
    free(buf);
}

static void detect_layout(void)
{
    unsigned long magic = fs_magic(CG_ROOT);

    layout.mode = "none";
    /* The same tests as core's hostinfo, so both name the layout alike. */
    if (magic == CGROUP2_SUPER_MAGIC) {
        /* A pure v2 host: no v1 controllers berth could use, so mountinfo is not read. */
        layout.mode = "v2";
        snprintf(layout.v2, sizeof(layout.v2), "%s", CG_ROOT);
        detect_v2_ctrls();
        return;
    }
    detect_v1_mounts();
    if (magic == TMPFS_MAGIC && fs_magic(CG_ROOT "/unified") == CGROUP2_SUPER_MAGIC) {
        layout.mode = "hybrid";
        snprintf(layout.v2, sizeof(layout.v2), "%s", CG_ROOT "/unified");
    } else if (layout.n_v1 > 0) {
        layout.mode = "v1";
    }
}

static void ensure_layout(void)
{
    pthread_once(&layout_once, detect_layout);
}

const char *pcg_host_mode(void)
{
    ensure_layout();
    return layout.mode;
}

/* Directory of @cg in the v1 hierarchy carrying @ctrl, NULL when none. */
static const char *v1_dir(const pcg_t *cg, unsigned ctrl)
{
    for (int i = 0; i < layout.n_v1; i++)
        if ((layout.v1[i].ctrls & ctrl) && cg->v1[i])
            return cg->v1[i];
    return NULL;
}

/* The directory whose cgroup.procs lists the processes: memory, pids, any v1, then v2. */
static const char *procs_dir(const pcg_t *cg)
{
    const char *d;

    if (cg->v2_limits)
        return cg->v2;
    if ((d = v1_dir(cg, C_MEMORY)) || (d = v1_dir(cg, C_PIDS)))
        return d;
    for (int i = 0; i < layout.n_v1; i++)
        if (cg->v1[i])
            return cg->v1[i];
    return cg->v2;
}

/* ---- names and directories ---- */

/* Relative, no empty, "." or ".." components, printable: it becomes a path in sysfs. */
static int valid_name(const char *name)
{
    const char *c = name;

    if (!name || !*name || *name == '/' || strlen(name) > 200)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isgraph((unsigned char)*p))
            return 0;
    while (*c) {
        size_t l = strcspn(c, "/");

        if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        c += l;
        if (*c == '/')
            c++;
        if (!*c && c[-1] == '/')
            return 0;
    }
    return 1;
}

static char *join(const char *root, const char *name)
{
    char *s;

    if (asprintf(&s, "%s/%s", root, name) < 0)
        return NULL;
    return s;
}

static int name_depth(const char *name)
{
    int d = 1;

    for (const char *p = name; *p; p++)
        d += *p == '/';
    return d;
}

/* v1 cpuset: a new level starts with empty cpus/mems, which makes entering fail (ENOSPC). */
static int copy_cpuset(const char *dir)
{
    char parent[PATH_MAX], buf[1024];
    const char *files[] = { "cpuset.cpus", "cpuset.mems" };
    char *slash;
    int r;

    snprintf(parent, sizeof(parent), "%s", dir);
    slash = strrchr(parent, '/');
    if (!slash)
        return -EINVAL;
    *slash = '\0';
    for (int i = 0; i < 2; i++) {
        ssize_t n = read_at(dir, files[i], buf, sizeof(buf));

        /* Already set (the level existed or clone_children did it): leave it. */
        if (n > 0 && buf[0] != '\n')
            continue;
        n = read_at(parent, files[i], buf, sizeof(buf));
        if (n < 0)
            return (int)n;
        r = write_at(dir, files[i], buf);
        if (r < 0)
            return r;
    }
    return 0;
}

/*
 * mkdir -p @root/@name. *created_levels is how many levels, counted up from the
 * leaf, this call created (all levels below the first new one are new), so a
 * rollback walks up exactly that far. @cpuset copies cpus/mems into each level;
 * @subtree (pure v2) is what each parent enables for its children.
 */
static int make_path(const char *root, const char *name, int cpuset, const char *subtree,
                     int *created_levels)
{
    char path[PATH_MAX];
    size_t rl = strlen(root);
    int depth = name_depth(name), first_new = -1, restarts = 0, k, r = 0;
    const char *c;

restart:
    memcpy(path, root, rl + 1);
    for (c = name, k = 0; *c; k++) {
        size_t l = strcspn(c, "/");
        size_t pl = strlen(path);

        /* v2's rule: a parent must delegate the controllers before the child can use them. */
        if (subtree && subtree[0] && (r = write_at(path, "cgroup.subtree_control", subtree)) < 0)
            break;
        path[pl] = '/';
        memcpy(path + pl + 1, c, l);
        path[pl + 1 + l] = '\0';
        if (mkdir(path, 0755) == 0) {
            if (first_new < 0)
                first_new = k;
        } else if (errno == ENOENT && k > 0 && restarts++ < 3) {
            /* A concurrent destroy removed an empty shared parent ("berth") under us. */
            goto restart;
        } else if (errno != EEXIST) {
            r = -errno;
            break;
        }
        if (cpuset && (r = copy_cpuset(path)) < 0)
            break;
        c += l;
        if (*c == '/')
            c++;
    }
    *created_levels = first_new < 0 ? 0 : depth - first_new;
    return r;
}

/* Remove the last @levels components of @dir (deepest first); stops at the first failure. */
static int remove_levels(const char *dir, int levels)
{
    char path[PATH_MAX];
    int r = 0;

    snprintf(path, sizeof(path), "%s", dir);
    for (int i = 0; i < levels; i++) {
        char *slash;

        if (rmdir(path) < 0 && errno != ENOENT) {
            r = -errno;
            break;
        }
        slash = strrchr(path, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    return r;
}

/* ---- resources ---- */

typedef struct {
    int has_limit, has_swap, has_resv, has_shares, has_quota, has_period, has_pids;
    int64_t limit, swap, resv, quota, pids;
    uint64_t shares, period;
    const char *cpus, *mems;
} limits_t;

/* Integer member @key of @obj into @ret; 0 when absent, -EINVAL when not an integer. */
static int get_int(json_t *obj, const char *key, int *has, int64_t *ret, berth_err_t *err,
                   const char *what)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;

    *has = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return berth_err_set(err, -EINVAL, "cgroup: %s.%s is not an integer", what, key);
    *ret = json_integer_value(v);
    *has = 1;
    return 0;
}

static int parse_limits(json_t *res, limits_t *l, berth_err_t *err)
{
    json_t *mem, *cpu, *pids, *v;
    int64_t tmp = 0;
    int r;

    memset(l, 0, sizeof(*l));
    if (!res || json_is_null(res))
        return 0;
    if (!json_is_object(res))
        return berth_err_set(err, -EINVAL, "cgroup: resources is not an object");
    mem = json_object_get(res, "memory");
    cpu = json_object_get(res, "cpu");
    pids = json_object_get(res, "pids");
    if ((r = get_int(mem, "limit", &l->has_limit, &l->limit, err, "memory")) < 0 ||
        (r = get_int(mem, "swap", &l->has_swap, &l->swap, err, "memory")) < 0 ||
        (r = get_int(mem, "reservation", &l->has_resv, &l->resv, err, "memory")) < 0 ||
        (r = get_int(cpu, "shares", &l->has_shares, &tmp, err, "cpu")) < 0)
        return r;
    /* shares and period are unsigned in OCI: a negative one is a caller's bug, not "huge". */
    if (l->has_shares && tmp < 0)
        return berth_err_set(err, -EINVAL, "cgroup: cpu.shares %" PRId64 " is negative", tmp);
    l->shares = (uint64_t)tmp;
    if ((r = get_int(cpu, "quota", &l->has_quota, &l->quota, err, "cpu")) < 0 ||
        (r = get_int(cpu, "period", &l->has_period, &tmp, err, "cpu")) < 0)
        return r;
    if (l->has_period && tmp < 0)
        return berth_err_set(err, -EINVAL, "cgroup: cpu.period %" PRId64 " is negative", tmp);
    l->period = (uint64_t)tmp;
    if ((r = get_int(pids, "limit", &l->has_pids, &l->pids, err, "pids")) < 0)
        return r;
    if (cpu && (v = json_object_get(cpu, "cpus")) && json_is_string(v) && json_string_length(v))
        l->cpus = json_string_value(v);
    if (cpu && (v = json_object_get(cpu, "mems")) && json_is_string(v) && json_string_length(v))
        l->mems = json_string_value(v);

    /* OCI: 0 means "not set" for shares, quota and period; pids 0 means no limit set. */
    l->has_shares = l->has_shares && l->shares != 0;
    l->has_quota = l->has_quota && l->quota != 0;
    l->has_period = l->has_period && l->period != 0;
    l->has_pids = l->has_pids && l->pids != 0;
    if ((l->has_limit && l->limit < -1) || (l->has_swap && l->swap < -1) ||
        (l->has_resv && l->resv < -1))
        return berth_err_set(err, -EINVAL, "cgroup: memory values must be -1 or >= 0");
    if (l->has_limit && l->limit == -1)
        l->has_limit = 0; /* -1 is the default, unlimited */
    if (l->has_swap && l->swap != -1) {
        if (!l->has_limit)
            return berth_err_set(err, -EINVAL, "cgroup: memory.swap needs memory.limit");
        if (l->swap < l->limit)
            return berth_err_set(err, -EINVAL,
                                 "cgroup: memory.swap %" PRId64 " is below memory.limit %" PRId64
                                 " (it counts memory plus swap)",
                                 l->swap, l->limit);
    }
    return 0;
}

static void fmt_i64(char *buf, size_t size, int64_t v, const char *unlimited)
{
    if (v < 0)
        snprintf(buf, size, "%s", unlimited);
    else
        snprintf(buf, size, "%" PRId64, v);
}

/* Write @val to @dir/@file, with "cgroup: <file>: <why>" on failure. */
static int set(const char *dir, const char *file, const char *val, berth_err_t *err)
{
    int r = write_at(dir, file, val);

    if (r < 0)
        return berth_err_set(err, r, "cgroup: write %s=%s: %s", file, val, strerror(-r));
    return 0;
}

/*
 * v1 rule: memory.memsw.limit_in_bytes >= memory.limit_in_bytes at every
 * moment. The limit goes first (the usual case: a new, unlimited cgroup, or a
 * lowered limit); when raising above the current memsw, that write fails with
 * EINVAL and memsw has to go first instead.
 */
static int apply_memory_v1(const char *dir, const limits_t *l, berth_err_t *err)
{
    char lim[32], sw[32];
    int has_memsw, r;

    if (!l->has_limit && !l->has_swap)
        return 0;
    has_memsw = file_exists(dir, "memory.memsw.limit_in_bytes");
    fmt_i64(lim, sizeof(lim), l->has_limit ? l->limit : -1, "-1");
    fmt_i64(sw, sizeof(sw), l->has_swap ? l->swap : -1, "-1");
    if (!has_memsw) {
        /*
         * Swap accounting is off (swapaccount=0): "-1" and "swap == limit" (no
         * swap beyond memory, what docker sends for --memory alone) are asked
         * with nothing the kernel can enforce beyond the memory limit, so they
         * pass; a real swap allowance cannot be honoured and fails.
         */
        if (l->has_swap && l->swap != -1 && l->swap != l->limit)
            return berth_err_set(err, -EOPNOTSUPP,
                                 "cgroup: memory.swap needs swap accounting (swapaccount=1)");
        return l->has_limit ? set(dir, "memory.limit_in_bytes", lim, err) : 0;
    }
    if (!l->has_swap) {
        /* OCI leaves swap unlimited when unset, and memsw must never be below the limit. */
        snprintf(sw, sizeof(sw), "-1");
    }
    r = write_at(dir, "memory.limit_in_bytes", lim);
    if (r == -EINVAL) {
        if ((r = set(dir, "memory.memsw.limit_in_bytes", sw, err)) < 0)
            return r;
        return set(dir, "memory.limit_in_bytes", lim, err);
    }
    if (r < 0)
        return berth_err_set(err, r, "cgroup: write memory.limit_in_bytes=%s: %s", lim,
                             strerror(-r));
    return set(dir, "memory.memsw.limit_in_bytes", sw, err);
}

static int apply_memory_v2(const char *dir, const limits_t *l, berth_err_t *err)
{
    char buf[32];
    int r;

    if (l->has_limit) {
        fmt_i64(buf, sizeof(buf), l->limit, "max");
        if ((r = set(dir, "memory.max", buf, err)) < 0)
            return r;
    }
    if (l->has_swap) {
        /* OCI's swap is memory + swap; v2's memory.swap.max is the swap part alone. */
        if (l->swap == -1)
            snprintf(buf, sizeof(buf), "max");
        else
            fmt_i64(buf, sizeof(buf), l->swap - l->limit, "max");
        if (!file_exists(dir, "memory.swap.max")) {
            if (l->swap != -1 && l->swap != l->limit)
                return berth_err_set(err, -EOPNOTSUPP,
                                     "cgroup: memory.swap needs swap accounting (memory.swap.max)");
        } else if ((r = set(dir, "memory.swap.max", buf, err)) < 0) {
            return r;
        }
    }
    if (l->has_resv) {
        fmt_i64(buf, sizeof(buf), l->resv, "max");
        if ((r = set(dir, "memory.low", buf, err)) < 0)
            return r;
    }
    return 0;
}

static int apply_limits(pcg_t *cg, const limits_t *l, berth_err_t *err)
{
    char buf[64];
    const char *d = NULL;
    int r;

    if (cg->v2_limits) {
        d = cg->v2;
        if ((r = apply_memory_v2(d, l, err)) < 0)
            return r;
        if (l->has_shares) {
            /* OCI/kernel mapping of shares [2, 262144] onto weight [1, 10000]. */
            uint64_t s = l->shares < 2 ? 2 : l->shares > 262144 ? 262144 : l->shares;
            snprintf(buf, sizeof(buf), "%" PRIu64, 1 + ((s - 2) * 9999) / 262142);
            if ((r = set(d, "cpu.weight", buf, err)) < 0)
                return r;
        }
        if (l->has_quota || l->has_period) {
            char q[32];
            fmt_i64(q, sizeof(q), l->has_quota ? l->quota : -1, "max");
            snprintf(buf, sizeof(buf), "%s %" PRIu64, q, l->has_period ? l->period : 100000);
            if ((r = set(d, "cpu.max", buf, err)) < 0)
                return r;
        }
        if (l->has_pids) {
            fmt_i64(buf, sizeof(buf), l->pids, "max");
            if ((r = set(d, "pids.max", buf, err)) < 0)
                return r;
        }
        if (l->cpus && (r = set(d, "cpuset.cpus", l->cpus, err)) < 0)
            return r;
        if (l->mems && (r = set(d, "cpuset.mems", l->mems, err)) < 0)
            return r;
        return 0;
    }

    if ((l->has_limit || l->has_swap || l->has_resv) && !(d = v1_dir(cg, C_MEMORY)))
        return berth_err_set(err, -EOPNOTSUPP, "cgroup: memory limits need the memory controller");
    if (l->has_limit || l->has_swap || l->has_resv) {
        if ((r = apply_memory_v1(d, l, err)) < 0)
            return r;
        if (l->has_resv) {
            fmt_i64(buf, sizeof(buf), l->resv, "-1");
            if ((r = set(d, "memory.soft_limit_in_bytes", buf, err)) < 0)
                return r;
        }
    }
    if (l->has_shares || l->has_quota || l->has_period) {
        if (!(d = v1_dir(cg, C_CPU)))
            return berth_err_set(err, -EOPNOTSUPP, "cgroup: cpu limits need the cpu controller");
        if (l->has_shares) {
            snprintf(buf, sizeof(buf), "%" PRIu64, l->shares);
            if ((r = set(d, "cpu.shares", buf, err)) < 0)
                return r;
        }
        /* Period first: the kernel checks the quota against the period in force. */
        if (l->has_period) {
            snprintf(buf, sizeof(buf), "%" PRIu64, l->period);
            if ((r = set(d, "cpu.cfs_period_us", buf, err)) < 0)
                return r;
        }
        if (l->has_quota) {
            fmt_i64(buf, sizeof(buf), l->quota, "-1");
            if ((r = set(d, "cpu.cfs_quota_us", buf, err)) < 0)
                return r;
        }
    }
    if (l->has_pids) {
        if (!(d = v1_dir(cg, C_PIDS)))
            return berth_err_set(err, -EOPNOTSUPP, "cgroup: pids.limit needs the pids controller");
        fmt_i64(buf, sizeof(buf), l->pids, "max");
        if ((r = set(d, "pids.max", buf, err)) < 0)
            return r;
    }
    if (l->cpus || l->mems) {
        if (!(d = v1_dir(cg, C_CPUSET)))
            return berth_err_set(err, -EOPNOTSUPP,
                                 "cgroup: cpu.cpus/mems need the cpuset controller");
        if (l->cpus && (r = set(d, "cpuset.cpus", l->cpus, err)) < 0)
            return r;
        if (l->mems && (r = set(d, "cpuset.mems", l->mems, err)) < 0)
            return r;
    }
    return 0;
}

/* ---- create / open / free ---- */

void pcg_free(pcg_t *cg)
{
    if (!cg)
        return;
    for (int i = 0; i < MAX_HIER; i++)
        free(cg->v1[i]);
    free(cg->v2);
    free(cg->name);
    free(cg);
}

static pcg_t *pcg_alloc(const char *name)
{
    pcg_t *cg = calloc(1, sizeof(*cg));

    if (!cg)
        return NULL;
    cg->name = strdup(name);
    if (!cg->name) {
        free(cg);
        return NULL;
    }
    return cg;
}

/* Number of processes listed in @dir/cgroup.procs (counting lines, any file size). */
static int count_lines(const char *dir, uint64_t *ret)
{
    char path[PATH_MAX], buf[4096];
    uint64_t n = 0;
    ssize_t len;
    int fd;

    if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while ((len = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < len; i++)
            n += buf[i] == '\n';
    if (len < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    close(fd);
    *ret = n;
    return 0;
}

int pcg_create(const char *name, json_t *resources, pcg_t **ret_cg, berth_err_t *err)
{
    int created[MAX_HIER] = { 0 }, v2_created = 0, oom = 0, r = 0;
    uint64_t n = 0;
    const char *pd;
    limits_t lim;
    pcg_t *cg;

    if (!valid_name(name))
        return berth_err_set(err, -EINVAL, "cgroup: invalid name \"%s\"", name ? name : "");
    ensure_layout();
    if (strcmp(layout.mode, "none") == 0)
        return berth_err_set(err, -EOPNOTSUPP, "cgroup: no cgroup hierarchy under %s", CG_ROOT);
    if ((r = parse_limits(resources, &lim, err)) < 0)
        return r;
    cg = pcg_alloc(name);
    if (!cg)
        return berth_err_set(err, -ENOMEM, "cgroup: out of memory");

    for (int i = 0; i < layout.n_v1; i++)
        oom |= !(cg->v1[i] = join(layout.v1[i].mnt, name));
    if (layout.v2[0]) {
        oom |= !(cg->v2 = join(layout.v2, name));
        cg->v2_limits = strcmp(layout.mode, "v2") == 0;
    }
    if (oom) {
        r = berth_err_set(err, -ENOMEM, "cgroup: out of memory");
        goto fail;
    }
    /* Reusing an empty leftover is fine; one with processes belongs to someone. This costs one
     * failing open() for a new name and is checked before anything is created. */
    pd = procs_dir(cg);
    if (pd && count_lines(pd, &n) == 0 && n > 0) {
        r = berth_err_set(err, -EEXIST, "cgroup: %s exists and holds %" PRIu64 " processes", name,
                          n);
        goto fail;
    }

    for (int i = 0; i < layout.n_v1; i++) {
        r = make_path(layout.v1[i].mnt, name, !!(layout.v1[i].ctrls & C_CPUSET), NULL, &created[i]);
        if (r < 0) {
            berth_err_set(err, r, "cgroup: create %s: %s", cg->v1[i], strerror(-r));
            goto fail;
        }
    }
    if (cg->v2) {
        r = make_path(layout.v2, name, 0, cg->v2_limits ? layout.v2_ctrls : NULL, &v2_created);
        if (r < 0 && cg->v2_limits) {
            berth_err_set(err, r, "cgroup: create %s: %s", cg->v2, strerror(-r));
            goto fail;
        }
        if (r < 0) {
            /* Hybrid: the v2 copy only serves v2-aware tools; go on without it. */
            remove_levels(cg->v2, v2_created);
            v2_created = 0;
            free(cg->v2);
            cg->v2 = NULL;
            r = 0;
        }
    }
    if ((r = apply_limits(cg, &lim, err)) < 0)
        goto fail;
    *ret_cg = cg;
    return 0;

fail:
    /* Undo exactly what this call created, deepest level first. */
    for (int i = 0; i < layout.n_v1; i++)
        if (cg->v1[i] && created[i])
            remove_levels(cg->v1[i], created[i]);
    if (cg->v2 && v2_created)
        remove_levels(cg->v2, v2_created);
    pcg_free(cg);
    return r;
}

int pcg_open(const char *name, pcg_t **ret_cg, berth_err_t *err)
{
    struct stat st;
    int found = 0;
    pcg_t *cg;

    if (!valid_name(name))
        return berth_err_set(err, -EINVAL, "cgroup: invalid name \"%s\"", name ? name : "");
    ensure_layout();
    cg = pcg_alloc(name);
    if (!cg)
        return berth_err_set(err, -ENOMEM, "cgroup: out of memory");
    for (int i = 0; i < layout.n_v1; i++) {
        char *p = join(layout.v1[i].mnt, name);

        if (p && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            cg->v1[i] = p;
            found = 1;
        } else {
            free(p);
        }
    }
    if (layout.v2[0]) {
        char *p = join(layout.v2, name);

        cg->v2_limits = strcmp(layout.mode, "v2") == 0;
        if (p && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            cg->v2 = p;
            found |= cg->v2_limits;
        } else {
            free(p);
            cg->v2_limits = 0;
        }
    }
    if (!found) {
        pcg_free(cg);
        return berth_err_set(err, -ENOENT, "cgroup: %s does not exist", name);
    }
    *ret_cg = cg;
    return 0;
}

/* ---- processes ---- */

int pcg_enter(pcg_t *cg, pid_t pid, berth_err_t *err)
{
    char buf[24];
    int r;

    snprintf(buf, sizeof(buf), "%d", (int)pid);
    for (int i = 0; i < layout.n_v1; i++) {
        if (!cg->v1[i])
            continue;
        r = write_at(cg->v1[i], "cgroup.procs", buf);
        if (r < 0)
            return berth_err_set(err, r, "cgroup: move %d into %s: %s", (int)pid, cg->v1[i],
                                 strerror(-r));
    }
    return pcg_enter_v2(cg, pid, err);
}

int pcg_enter_v2(pcg_t *cg, pid_t pid, berth_err_t *err)
{
    char buf[24];
    int r;

    if (!cg->v2)
        return 0;
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    r = write_at(cg->v2, "cgroup.procs", buf);
    if (r < 0 && cg->v2_limits)
        return berth_err_set(err, r, "cgroup: move %d into %s: %s", (int)pid, cg->v2, strerror(-r));
    return 0;
}

int pcg_enter_self_v1(const pcg_t *cg, const char **ret_dir)
{
    for (int i = 0; i < layout.n_v1; i++) {
        int r;
        if (!cg->v1[i])
            continue;
        if ((r = write_at(cg->v1[i], "tasks", "0")) < 0) {
            *ret_dir = cg->v1[i];
            return r;
        }
    }
    return 0;
}

int pcg_v2_fd(const pcg_t *cg)
{
    int fd;

    if (!cg->v2)
        return -ENOENT;
    fd = open(cg->v2, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int pcg_count_procs(pcg_t *cg, uint64_t *ret_n, berth_err_t *err)
{
    const char *d = procs_dir(cg);
    uint64_t n;
    int r;

    if (!d)
        return berth_err_set(err, -ENOENT, "cgroup: %s has no directory", cg->name);
    r = count_lines(d, &n);
    if (r < 0)
        return berth_err_set(err, r, "cgroup: read %s/cgroup.procs: %s", d, strerror(-r));
    *ret_n = n;
    return 0;
}

/* Freeze (@on=1) or thaw, waiting up to @timeout_ms for FROZEN. */
static int set_frozen(pcg_t *cg, int on, long timeout_ms, berth_err_t *err)
{
    const char *fz = v1_dir(cg, C_FREEZER);
    int64_t deadline = now_ms() + timeout_ms;
    long nap = 1;
    char buf[64];
    int r;

    if (fz) {
        if ((r = set(fz, "freezer.state", on ? "FROZEN" : "THAWED", err)) < 0)
            return r;
        if (!on)
            return 0;
        /* The write returns while tasks are still FREEZING; poll with a growing nap. */
        for (;;) {
            if (read_at(fz, "freezer.state", buf, sizeof(buf)) > 0 &&
                strncmp(buf, "FROZEN", 6) == 0)
                return 0;
            if (now_ms() >= deadline)
                break;
            /* Re-asserting FROZEN makes the kernel retry tasks that were busy. */
            write_at(fz, "freezer.state", "FROZEN");
            sleep_ms(nap);
            nap = nap < 16 ? nap * 2 : nap;
        }
        write_at(fz, "freezer.state", "THAWED");
        return berth_err_set(err, -ETIMEDOUT, "cgroup: %s did not freeze within %ld ms", cg->name,
                             timeout_ms);
    }
    if (cg->v2) {
        int64_t frozen = 0;

        if ((r = set(cg->v2, "cgroup.freeze", on ? "1" : "0", err)) < 0)
            return r;
        if (!on)
            return 0;
        for (;;) {
            if (read_key(cg->v2, "cgroup.events", "frozen", &frozen) == 0 && frozen == 1)
                return 0;
            if (now_ms() >= deadline)
                break;
            sleep_ms(nap);
            nap = nap < 16 ? nap * 2 : nap;
        }
        write_at(cg->v2, "cgroup.freeze", "0");
        return berth_err_set(err, -ETIMEDOUT, "cgroup: %s did not freeze within %ld ms", cg->name,
                             timeout_ms);
    }
    return berth_err_set(err, -EOPNOTSUPP, "cgroup: no freezer for %s", cg->name);
}

int pcg_freeze(pcg_t *cg, berth_err_t *err)
{
    return set_frozen(cg, 1, 2000, err);
}

int pcg_thaw(pcg_t *cg, berth_err_t *err)
{
    return set_frozen(cg, 0, 0, err);
}

/* Signal every pid listed in @dir/cgroup.procs; *ret_n is how many were listed. */
static int signal_listed(const char *dir, int sig, uint64_t *ret_n)
{
    char path[PATH_MAX], buf[4096];
    char num[16];
    size_t nl = 0;
    uint64_t n = 0;
    ssize_t len;
    int fd;

    if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while ((len = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < len; i++) {
            if (buf[i] != '\n') {
                if (nl < sizeof(num) - 1)
                    num[nl++] = buf[i];
                continue;
            }
            num[nl] = '\0';
            nl = 0;
            pid_t pid = (pid_t)strtol(num, NULL, 10);
            /* Never signal pid <= 0: kill() would hit a whole process group. */
            if (pid > 0) {
                n++;
                kill(pid, sig);
            }
        }
    }
    close(fd);
    *ret_n = n;
    return 0;
}

int pcg_kill_all(pcg_t *cg, int sig, berth_err_t *err)
{
    const char *d = procs_dir(cg);
    const char *fz = v1_dir(cg, C_FREEZER);
    int64_t deadline = now_ms() + 3000;
    uint64_t n = 0;
    long nap = 1;
    int r;

    if (!d)
        return berth_err_set(err, -ENOENT, "cgroup: %s has no directory", cg->name);
    if (sig != SIGKILL) {
        /* Frozen processes get the signal when thawed; the freeze state is the caller's. */
        r = signal_listed(d, sig, &n);
        if (r < 0)
            return berth_err_set(err, r, "cgroup: read %s/cgroup.procs: %s", d, strerror(-r));
        return 0;
    }
    /* v2 (5.14+) kills the whole cgroup, frozen or not, without racing forks. */
    if (cg->v2 && cg->v2_limits)
        write_at(cg->v2, "cgroup.kill", "1");
    for (;;) {
        /*
         * v1: freeze so nothing forks between reading the list and the kill,
         * signal, then thaw so the pending SIGKILLs land (a frozen task does not
         * die until thawed). Also handles a cgroup the caller left frozen.
         */
        if (fz)
            set_frozen(cg, 1, 200, NULL);
        else if (cg->v2)
            write_at(cg->v2, "cgroup.freeze", "0");
        r = signal_listed(d, SIGKILL, &n);
        if (fz)
            write_at(fz, "freezer.state", "THAWED");
        if (r < 0)
            return berth_err_set(err, r, "cgroup: read %s/cgroup.procs: %s", d, strerror(-r));
        if (n == 0)
            return 0;
        if (now_ms() >= deadline)
            break;
        sleep_ms(nap);
        nap = nap < 32 ? nap * 2 : nap;
    }
    return berth_err_set(err, -EBUSY, "cgroup: %" PRIu64 " processes in %s survive SIGKILL", n,
                         cg->name);
}

int pcg_oom_killed(pcg_t *cg, int *ret_killed, berth_err_t *err)
{
    const char *d;
    int64_t v = 0, under = 0, failcnt = 0;
    int r;

    if (cg->v2_limits) {
        r = read_key(cg->v2, "memory.events", "oom_kill", &v);
        if (r < 0)
            return berth_err_set(err, r, "cgroup: read %s/memory.events: %s", cg->v2, strerror(-r));
        *ret_killed = v > 0;
        return 0;
    }
    d = v1_dir(cg, C_MEMORY);
    if (!d)
        return berth_err_set(err, -EOPNOTSUPP, "cgroup: no memory controller for %s", cg->name);
    r = read_key(d, "memory.oom_control", "oom_kill", &v);
    if (r == 0) {
        *ret_killed = v > 0;
        return 0;
    }
    /*
     * Before 4.13 there is no kill counter: report a kill when an OOM is in
     * progress or the limit was ever hit. The latter over-reports (reclaim may
     * have succeeded), which is the safer side for "why did it die".
     */
    if (read_key(d, "memory.oom_control", "under_oom", &under) < 0 ||
        (r = read_i64(d, "memory.failcnt", &failcnt)) < 0)
        return berth_err_set(err, r < 0 ? r : -EIO, "cgroup: read OOM state of %s", d);
    *ret_killed = under > 0 || failcnt > 0;
    return 0;
}

/* ---- stats ---- */

/* v1 reports "unlimited" as a huge page-rounded number; JSON says -1. */
static json_int_t norm_limit(int64_t v)
{
    return (v < 0 || v >= (INT64_C(1) << 62)) ? -1 : (json_int_t)v;
}

static void put(json_t *obj, const char *key, json_int_t v)
{
    json_object_set_new(obj, key, json_integer(v));
}

int pcg_stats(pcg_t *cg, json_t **ret_stats, berth_err_t *err)
{
    json_t *st = json_object(), *mem = json_object(), *cpu = json_object(), *pids = json_object();
    const char *d;
    int64_t v;

    if (!st || !mem || !cpu || !pids) {
        json_decref(st);
        json_decref(mem);
        json_decref(cpu);
        json_decref(pids);
        return berth_err_set(err, -ENOMEM, "cgroup: out of memory");
    }
    if (cg->v2_limits) {
        d = cg->v2;
        if (read_i64(d, "memory.current", &v) == 0)
            put(mem, "usage", v);
        if (read_i64(d, "memory.max", &v) == 0)
            put(mem, "limit", norm_limit(v));
        if (read_i64(d, "memory.peak", &v) == 0) /* 5.19+ */
            put(mem, "max_usage", v);
        if (read_key(d, "cpu.stat", "usage_usec", &v) == 0)
            put(cpu, "usage_ns", v * 1000);
        if (read_i64(d, "pids.current", &v) == 0)
            put(pids, "current", v);
        if (read_i64(d, "pids.max", &v) == 0)
            put(pids, "limit", norm_limit(v));
    } else {
        if ((d = v1_dir(cg, C_MEMORY))) {
            if (read_i64(d, "memory.usage_in_bytes", &v) == 0)
                put(mem, "usage", v);
            if (read_i64(d, "memory.limit_in_bytes", &v) == 0)
                put(mem, "limit", norm_limit(v));
            if (read_i64(d, "memory.max_usage_in_bytes", &v) == 0)
                put(mem, "max_usage", v);
        }
        if ((d = v1_dir(cg, C_CPUACCT)) && read_i64(d, "cpuacct.usage", &v) == 0)
            put(cpu, "usage_ns", v);
        if ((d = v1_dir(cg, C_PIDS))) {
            if (read_i64(d, "pids.current", &v) == 0)
                put(pids, "current", v);
            if (read_i64(d, "pids.max", &v) == 0)
                put(pids, "limit", norm_limit(v));
        }
    }
    /* Only what the host has: an empty section is left out. */
    if (json_object_size(mem))
        json_object_set(st, "memory", mem);
    if (json_object_size(cpu))
        json_object_set(st, "cpu", cpu);
    if (json_object_size(pids))
        json_object_set(st, "pids", pids);
    json_decref(mem);
    json_decref(cpu);
    json_decref(pids);
    json_object_set_new(st, "mode", json_string(layout.mode));
    if (strcmp(layout.mode, "hybrid") == 0)
        json_object_set_new(st, "unified", json_boolean(cg->v2 != NULL));
    *ret_stats = st;
    return 0;
}

/* ---- destroy ---- */

int pcg_destroy(pcg_t *cg, berth_err_t *err)
{
    int depth = name_depth(cg->name), r = 0;
    const char *d = procs_dir(cg);
    uint64_t n = 0;

    if (d && count_lines(d, &n) == 0 && n > 0) {
        r = pcg_kill_all(cg, SIGKILL, err);
        if (r < 0) {
            pcg_free(cg);
            return r;
        }
    }
    /* The leaf must go; empty parents (the shared "berth") go too, others' never: rmdir of a
     * cgroup with children fails, and the first failure stops the walk up. */
    for (int i = 0; i <= layout.n_v1; i++) {
        const char *dir = i < layout.n_v1 ? cg->v1[i] : cg->v2;
        int e;

        if (!dir)
            continue;
        /* Killed tasks leave the cgroup a moment after cgroup.procs stops listing them. */
        for (int tries = 0; (e = rmdir(dir) < 0 ? errno : 0) == EBUSY && tries < 50; tries++)
            sleep_ms(10);
        if (e && e != ENOENT) {
            /* A hybrid v2 copy that lingers hurts nobody's limits; report only real trees. */
            if (i == layout.n_v1 && !cg->v2_limits)
                continue;
            if (!r)
                r = berth_err_set(err, -e, "cgroup: remove %s: %s", dir, strerror(e));
            continue;
        }
        if (depth > 1) {
            char parent[PATH_MAX];
            char *slash;

            snprintf(parent, sizeof(parent), "%s", dir);
            slash = strrchr(parent, '/');
            if (slash) {
                *slash = '\0';
                remove_levels(parent, depth - 1);
            }
        }
    }
    pcg_free(cg);
    return r;
}
