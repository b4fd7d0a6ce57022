/* SPDX-License-Identifier: Apache-2.0 */
/* Image-backed container root filesystems (see container-storage.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth-build-config.h"

#include "container-storage.h"
#include "util.h"

json_t *berth__mounts_to_json(const berth_mount_list_t *list)
{
    json_t *arr = json_array();

    for (uint32_t i = 0; arr && list && i < list->n_mounts; i++) {
        const berth_mount_t *m = &list->mounts[i];
        json_t *opts = json_array();
        for (uint32_t k = 0; opts && k < m->n_options; k++)
            json_array_append_new(opts, json_string(m->options[k]));
        if (!opts || json_array_append_new(arr, json_pack("{sssssssosI}", "type", m->type ?: "",
                                                          "source", m->source ?: "", "target",
                                                          m->target ?: "", "options", opts, "flags",
                                                          (json_int_t)m->flags)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* One allocation per list: the mounts, then option pointers, then strings. */
struct json_mounts {
    berth_mount_list_t list;
    json_t *src; /* keeps the strings alive */
};

static void json_mounts_release(berth_mount_list_t *list)
{
    struct json_mounts *jm = list->priv;
    for (uint32_t i = 0; i < list->n_mounts; i++)
        free((void *)list->mounts[i].options);
    free(list->mounts);
    json_decref(jm->src);
    free(jm);
}

int berth__mounts_from_json(json_t *arr, berth_mount_list_t **ret_list, berth_err_t *err)
{
    struct json_mounts *jm;
    size_t n = json_array_size(arr), i;
    json_t *m;

    if (!json_is_array(arr) || n == 0 || n > 64)
        return berth_err_set(err, -EINVAL, "container record: bad storage mount list");
    jm = calloc(1, sizeof(*jm));
    if (!jm || !(jm->list.mounts = calloc(n, sizeof(berth_mount_t)))) {
        free(jm);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    jm->src = json_incref(arr);
    jm->list.struct_size = sizeof(jm->list);
    jm->list.release = json_mounts_release;
    jm->list.priv = jm;
    json_array_foreach (arr, i, m) {
        berth_mount_t *bm = &jm->list.mounts[i];
        json_t *opts = json_object_get(m, "options"), *o;
        size_t k;
        const char **ov = calloc(json_array_size(opts) + 1, sizeof(char *));

        jm->list.n_mounts = (uint32_t)i + 1;
        if (!ov) {
            berth_mount_list_free(&jm->list);
            return berth_err_set(err, -ENOMEM, "out of memory");
        }
        bm->struct_size = sizeof(*bm);
        bm->flags = (uint32_t)json_integer_value(json_object_get(m, "flags"));
        bm->type = json_string_value(json_object_get(m, "type"));
        bm->source = json_string_value(json_object_get(m, "source"));
        bm->target = json_string_value(json_object_get(m, "target"));
        bm->options = ov;
        json_array_foreach (opts, k, o)
            ov[k] = json_string_value(o);
        bm->n_options = (uint32_t)json_array_size(opts);
        if (!bm->type || !bm->source || !bm->target) {
            berth_mount_list_free(&jm->list);
            return berth_err_set(err, -EINVAL, "container record: storage mount %zu is incomplete",
                                 i);
        }
    }
    *ret_list = &jm->list;
    return 0;
}

int berth__container_storage_release(berth_registry_t *reg, char *const *plugin_dirs, json_t *doc,
                                     berth_err_t *err)
{
    json_t *st = json_object_get(doc, "storage");
    const char *name = json_string_value(json_object_get(st, "driver"));
    const char *key = json_string_value(json_object_get(st, "key"));
    const berth_storage_ops_t *ops;
    berth_driver_t *d;
    int r;

    if (!st)
        return 0;
    if (!name || !key || !berth__driver_name_valid(name))
        return berth_err_set(err, -EINVAL, "container record: bad \"storage\"");
    d = reg ? berth__registry_load_named(reg, plugin_dirs, BERTH_KIND_STORAGE, name) : NULL;
    if (!d)
        return berth_err_set(err, -ENOENT, "storage driver \"%s\" is not available", name);
    ops = d->ops;
    r = ops->remove(d->priv, key, 0, err);
    return r == -ENOENT ? 0 : r;
}
