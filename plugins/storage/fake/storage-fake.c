/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake: an in-memory storage driver for the core's tests. Snapshots are list
 * entries with a parent; the mounts it returns name the snapshot chain
 * ("fake" type, one option per layer) so tests can check what the core asked
 * for without mounting anything.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <berth/sdk.h>

struct snap {
    struct snap *next;
    char *name;
    char *parent;
    uint32_t kind;
    int64_t created_ns;
};

struct fake {
    struct snap *snaps;
};

static struct snap *find(struct fake *f, const char *name)
{
    for (struct snap *s = f->snaps; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static int fake_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                     berth_err_t *err)
{
    struct fake *f = calloc(1, sizeof(*f));
    if (!f)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    *ret_priv = f;
    return 0;
}

static void fake_fini(void *priv)
{
    struct fake *f = priv;
    while (f->snaps) {
        struct snap *s = f->snaps;
        f->snaps = s->next;
        free(s->name);
        free(s->parent);
        free(s);
    }
    free(f);
}

struct fake_mounts {
    berth_mount_list_t list;
    berth_mount_t mount;
    char **opts;
    uint32_t n;
};

static void fake_mounts_release(berth_mount_list_t *list)
{
    struct fake_mounts *m = list->priv;
    for (uint32_t i = 0; i < m->n; i++)
        free(m->opts[i]);
    free(m->opts);
    free(m);
}

static int make_mounts(struct fake *f, struct snap *top, berth_mount_list_t **ret, berth_err_t *err)
{
    struct fake_mounts *m = calloc(1, sizeof(*m));
    if (!m)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    /* One option per snapshot in the chain, topmost first. */
    for (struct snap *s = top; s; s = s->parent ? find(f, s->parent) : NULL) {
        char **grown = realloc(m->opts, (m->n + 1) * sizeof(char *));
        if (!grown || !(grown[m->n] = strdup(s->name))) {
            m->opts = grown ? grown : m->opts;
            fake_mounts_release(&(berth_mount_list_t){ .priv = m });
            return berth_err_set(err, -ENOMEM, "fake: out of memory");
        }
        m->opts = grown;
        m->n++;
    }
    m->mount.struct_size = sizeof(m->mount);
    m->mount.type = "fake";
    m->mount.source = top->name;
    m->mount.target = "";
    m->mount.options = (const char *const *)m->opts;
    m->mount.n_options = m->n;
    m->list.struct_size = sizeof(m->list);
    m->list.n_mounts = 1;
    m->list.mounts = &m->mount;
    m->list.release = fake_mounts_release;
    m->list.priv = m;
    *ret = &m->list;
    return 0;
}

static int fake_prepare(void *priv, const char *key, const char *parent,
                        const berth_snapshot_opts_t *opts, uint32_t flags,
                        berth_mount_list_t **ret_mounts, berth_err_t *err)
{
    struct fake *f = priv;
    struct snap *s;
    struct timespec ts;
    int r;

    if (find(f, key))
        return berth_err_set(err, -EEXIST, "fake: snapshot %s exists", key);
    if (parent && *parent) {
        struct snap *p = find(f, parent);
        if (!p || p->kind != BERTH_SNAPSHOT_KIND_COMMITTED)
            return berth_err_set(err, -ENOENT, "fake: no committed snapshot %s", parent);
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(key)) || (parent && *parent && !(s->parent = strdup(parent)))) {
        if (s)
            free(s->name);
        free(s);
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    s->kind = BERTH_SNAPSHOT_KIND_ACTIVE;
    s->created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    s->next = f->snaps;
    f->snaps = s;
    r = make_mounts(f, s, ret_mounts, err);
    return r;
}

static int fake_mounts(void *priv, const char *key, uint32_t flags, berth_mount_list_t **ret_mounts,
                       berth_err_t *err)
{
    struct snap *s = find(priv, key);
    if (!s || s->kind != BERTH_SNAPSHOT_KIND_ACTIVE)
        return berth_err_set(err, -ENOENT, "fake: no active snapshot %s", key);
    return make_mounts(priv, s, ret_mounts, err);
}

static int fake_commit(void *priv, const char *name, const char *key, uint32_t flags,
                       berth_err_t *err)
{
    struct fake *f = priv;
    struct snap *s = find(f, key);
    char *copy;
    if (find(f, name))
        return berth_err_set(err, -EEXIST, "fake: snapshot %s exists", name);
    if (!s || s->kind != BERTH_SNAPSHOT_KIND_ACTIVE)
        return berth_err_set(err, -ENOENT, "fake: no active snapshot %s", key);
    if (!(copy = strdup(name)))
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    free(s->name);
    s->name = copy;
    s->kind = BERTH_SNAPSHOT_KIND_COMMITTED;
    return 0;
}

static int fake_remove(void *priv, const char *name, uint32_t flags, berth_err_t *err)
{
    struct fake *f = priv;
    for (struct snap *s = f->snaps; s; s = s->next)
        if (s->parent && strcmp(s->parent, name) == 0)
            return berth_err_set(err, -EBUSY, "fake: snapshot %s has children", name);
    for (struct snap **pp = &f->snaps; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct snap *s = *pp;
            *pp = s->next;
            free(s->name);
            free(s->parent);
            free(s);
            return 0;
        }
    }
    return berth_err_set(err, -ENOENT, "fake: no snapshot %s", name);
}

static void fill_info(const struct snap *s, berth_snapshot_info_t *info)
{
    info->kind = s->kind;
    snprintf(info->parent, sizeof(info->parent), "%s", s->parent ? s->parent : "");
    info->size_bytes = 0;
    info->inodes = 0;
    info->created_ns = s->created_ns;
}

static int fake_stat(void *priv, const char *name, uint32_t flags, berth_snapshot_info_t *ret_info,
                     berth_err_t *err)
{
    struct snap *s = find(priv, name);
    if (!s)
        return berth_err_set(err, -ENOENT, "fake: no snapshot %s", name);
    fill_info(s, ret_info);
    return 0;
}

static int fake_walk(void *priv, uint32_t flags, berth_snapshot_walk_fn fn, void *userdata,
                     berth_err_t *err)
{
    struct fake *f = priv;
    for (struct snap *s = f->snaps; s; s = s->next) {
        berth_snapshot_info_t info = { .struct_size = sizeof(info) };
        int r;
        fill_info(s, &info);
        if ((r = fn(s->name, &info, userdata)) != 0)
            return r;
    }
    return 0;
}

static const berth_storage_ops_t fake_ops = {
    BERTH_OPS_INIT(berth_storage_ops_t),
    .prepare = fake_prepare,
    .mounts = fake_mounts,
    .commit = fake_commit,
    .remove = fake_remove,
    .stat = fake_stat,
    .walk = fake_walk,
};

static const berth_plugin_desc_t fake_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_STORAGE,
    .name = "fake",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "in-memory storage driver for tests",
    .capabilities = BERTH_STORAGE_CAP_SHARED_LAYERS,
    .init = fake_init,
    .fini = fake_fini,
    .ops = &fake_ops,
};

BERTH_PLUGIN_DEFINE(fake_desc)
