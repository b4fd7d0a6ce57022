/* SPDX-License-Identifier: Apache-2.0 */
/* Image, tag and layer records (see images.h). */
#include <errno.h>
#include <string.h>

#include "images.h"
#include "reference.h"
#include "util.h"

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return n > 0;
}

int berth__image_get_id_in(berth_txn_t *txn, const char *id, json_t **ret_doc, berth_err_t *err)
{
    int r = berth__store_get(txn, BERTH_DB_IMAGES, id, ret_doc, err);
    if (r == -ENOENT)
        return berth_err_set(err, -ENOENT, "no such image: %s", id);
    return r;
}

/* Find the image whose repo_digests holds @want ("repo@sha256:..."). */
struct digest_find {
    const char *want;
    json_t *found;
};

static int digest_visit(const char *key, json_t *doc, void *userdata)
{
    struct digest_find *f = userdata;
    size_t i;
    json_t *v;

    json_array_foreach (json_object_get(doc, "repo_digests"), i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), f->want) == 0) {
            f->found = json_incref(doc);
            return 1;
        }
    }
    return 0;
}

int berth__image_get_in(berth_txn_t *txn, const char *ref, json_t **ret_doc, berth_err_t *err)
{
    char key[80], full[2 * BERTH_REF_NAME_MAX + 80];
    _cleanup_strv_ char **keys = NULL;
    _cleanup_json_ json_t *tag = NULL;
    berth_ref_t r;
    const char *hex = ref;
    size_t len;
    int rc;

    if (!ref || !*ref)
        return berth_err_set(err, -EINVAL, "empty image reference");
    if (strncmp(ref, "sha256:", 7) == 0)
        hex = ref + 7;
    len = strlen(hex);
    /* A full id, with or without its algorithm. */
    if (len == 64 && is_lower_hex(hex, len)) {
        snprintf(key, sizeof(key), "sha256:%s", hex);
        rc = berth__store_get(txn, BERTH_DB_IMAGES, key, ret_doc, err);
        if (rc != -ENOENT)
            return rc;
    }
    /* A name. */
    if (berth__ref_parse(ref, &r, NULL) == 0) {
        if (r.digest[0] && !r.tag[0]) {
            struct digest_find f = { full, NULL };
            if (berth__ref_full(&r, full, sizeof(full)) < 0)
                return berth_err_set(err, -EINVAL, "image reference too long");
            rc = berth__store_walk(txn, BERTH_DB_IMAGES, NULL, digest_visit, &f, err);
            if (rc < 0)
                return rc;
            if (f.found) {
                *ret_doc = f.found;
                return 0;
            }
        } else {
            r.digest[0] = '\0';
            berth__ref_default_tag(&r);
            if (berth__ref_full(&r, full, sizeof(full)) < 0)
                return berth_err_set(err, -EINVAL, "image reference too long");
            rc = berth__store_get(txn, BERTH_DB_TAGS, full, &tag, err);
            if (rc == 0) {
                const char *id = json_string_value(json_object_get(tag, "id"));
                if (!id)
                    return berth_err_set(err, -EBADMSG, "tags/%s: no \"id\"", full);
                return berth__image_get_id_in(txn, id, ret_doc, err);
            }
            if (rc != -ENOENT)
                return rc;
        }
    }
    /* A unique id prefix. */
    if (len < 64 && is_lower_hex(hex, len)) {
        snprintf(key, sizeof(key), "sha256:%.*s", (int)len, hex);
        rc = berth__store_keys(txn, BERTH_DB_IMAGES, key, 2, &keys, err);
        if (rc < 0)
            return rc;
        if (keys[0] && keys[1])
            return berth_err_set(err, -EINVAL, "image reference \"%s\" is ambiguous", ref);
        if (keys[0])
            return berth__store_get(txn, BERTH_DB_IMAGES, keys[0], ret_doc, err);
    }
    return berth_err_set(err, -ENOENT, "no such image: %s", ref);
}

/* Remove string @s from array member @member of @doc; 1 when it was there. */
static int array_remove(json_t *doc, const char *member, const char *s)
{
    json_t *arr = json_object_get(doc, member);
    size_t i;
    json_t *v;

    json_array_foreach (arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) {
            json_array_remove(arr, i);
            return 1;
        }
    }
    return 0;
}

static int array_add_unique(json_t *doc, const char *member, const char *s)
{
    json_t *arr = json_object_get(doc, member);
    size_t i;
    json_t *v;

    if (!json_is_array(arr)) {
        arr = json_array();
        if (!arr || json_object_set_new(doc, member, arr) < 0)
            return -ENOMEM;
    }
    json_array_foreach (arr, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 0;
    return json_array_append_new(arr, json_string(s)) < 0 ? -ENOMEM : 0;
}

/* Point @full_ref at @id, taking it from the image that had it. */
static int tag_point(berth_txn_t *txn, const char *id, const char *full_ref, berth_err_t *err)
{
    _cleanup_json_ json_t *old = NULL;
    _cleanup_json_ json_t *val = NULL;
    int r;

    r = berth__store_get(txn, BERTH_DB_TAGS, full_ref, &old, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (r == 0) {
        const char *old_id = json_string_value(json_object_get(old, "id"));
        if (old_id && strcmp(old_id, id) != 0) {
            _cleanup_json_ json_t *img = NULL;
            if (berth__store_get(txn, BERTH_DB_IMAGES, old_id, &img, NULL) == 0 &&
                array_remove(img, "repo_tags", full_ref) &&
                (r = berth__store_put(txn, BERTH_DB_IMAGES, old_id, img, 0, err)) < 0)
                return r;
        }
    }
    val = json_pack("{siss}", "v", 1, "id", id);
    if (!val)
        return berth_err_set(err, -ENOMEM, "out of memory");
    return berth__store_put(txn, BERTH_DB_TAGS, full_ref, val, 0, err);
}

/* An image event's attributes: "name", the reference in its familiar form as Docker gives it. */
static json_t *event_attrs(const char *name)
{
    char fam[BERTH_REF_NAME_MAX + 200];

    if (!name)
        return NULL;
    if (berth__ref_familiar(name, fam, sizeof(fam)) < 0)
        return json_pack("{ss}", "name", name);
    return json_pack("{ss}", "name", fam);
}

int berth__image_put_in(berth_txn_t *txn, json_t *doc, const char *action, berth_err_t *err)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *first = NULL;
    _cleanup_json_ json_t *attrs = NULL;
    size_t i;
    json_t *v;
    int r;

    if (!id || strlen(id) != 71 || strncmp(id, "sha256:", 7) != 0 || !is_lower_hex(id + 7, 64))
        return berth_err_set(err, -EINVAL, "image record without a valid \"id\"");
    if (!json_object_get(doc, "v"))
        json_object_set_new(doc, "v", json_integer(BERTH_IMAGE_RECORD_V));
    if (!json_is_array(json_object_get(doc, "repo_tags")))
        json_object_set_new(doc, "repo_tags", json_array());
    json_array_foreach (json_object_get(doc, "repo_tags"), i, v) {
        if (!json_is_string(v))
            return berth_err_set(err, -EINVAL, "image %s: repo_tags must be strings", id);
        if ((r = tag_point(txn, id, json_string_value(v), err)) < 0)
            return r;
        if (!first)
            first = json_string_value(v);
    }
    if ((r = berth__store_put(txn, BERTH_DB_IMAGES, id, doc, 0, err)) < 0)
        return r;
    attrs = event_attrs(first);
    return berth__store_event_append(txn, "image", action, id, attrs, NULL, err);
}

int berth__image_tag_in(berth_txn_t *txn, const char *id, const char *full_ref, berth_err_t *err)
{
    _cleanup_json_ json_t *img = NULL;
    _cleanup_json_ json_t *attrs = NULL;
    int r;

    if ((r = berth__image_get_id_in(txn, id, &img, err)) < 0)
        return r;
    if ((r = tag_point(txn, id, full_ref, err)) < 0)
        return r;
    if (array_add_unique(img, "repo_tags", full_ref) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_put(txn, BERTH_DB_IMAGES, id, img, 0, err)) < 0)
        return r;
    attrs = event_attrs(full_ref);
    return berth__store_event_append(txn, "image", "tag", id, attrs, NULL, err);
}

int berth__image_untag_in(berth_txn_t *txn, const char *full_ref, berth_err_t *err)
{
    _cleanup_json_ json_t *tag = NULL;
    _cleanup_json_ json_t *img = NULL;
    _cleanup_json_ json_t *attrs = NULL;
    const char *id;
    int r;

    r = berth__store_get(txn, BERTH_DB_TAGS, full_ref, &tag, err);
    if (r == -ENOENT)
        return berth_err_set(err, -ENOENT, "no such image: %s", full_ref);
    if (r < 0)
        return r;
    id = json_string_value(json_object_get(tag, "id"));
    if ((r = berth__store_del(txn, BERTH_DB_TAGS, full_ref, err)) < 0)
        return r;
    if (id && berth__store_get(txn, BERTH_DB_IMAGES, id, &img, NULL) == 0 &&
        array_remove(img, "repo_tags", full_ref)) {
        /* A repo digest goes with the repository's last tag, as in Docker. */
        if ((r = berth__store_put(txn, BERTH_DB_IMAGES, id, img, 0, err)) < 0)
            return r;
    }
    attrs = event_attrs(full_ref);
    return berth__store_event_append(txn, "image", "untag", id ? id : full_ref, attrs, NULL, err);
}

int berth__image_delete_in(berth_txn_t *txn, const char *id, berth_err_t *err)
{
    _cleanup_json_ json_t *img = NULL, *attrs = NULL;
    size_t i;
    json_t *v;
    int r;

    if ((r = berth__image_get_id_in(txn, id, &img, err)) < 0)
        return r;
    json_array_foreach (json_object_get(img, "repo_tags"), i, v) {
        _cleanup_json_ json_t *tag_attrs = event_attrs(json_string_value(v));
        r = berth__store_del(txn, BERTH_DB_TAGS, json_string_value(v), err);
        if (r < 0 && r != -ENOENT)
            return r;
        /* Docker untags each name before the delete. */
        if ((r = berth__store_event_append(txn, "image", "untag", id, tag_attrs, NULL, err)) < 0)
            return r;
    }
    if ((r = berth__store_del(txn, BERTH_DB_IMAGES, id, err)) < 0)
        return r;
    attrs = json_pack("{ss}", "name", id);
    return berth__store_event_append(txn, "image", "delete", id, attrs, NULL, err);
}

static int list_add(const char *key, json_t *doc, void *userdata)
{
    return json_array_append(userdata, doc) < 0 ? -ENOMEM : 0;
}

int berth__image_list_in(berth_txn_t *txn, json_t **ret_array, berth_err_t *err)
{
    _cleanup_json_ json_t *arr = json_array();
    int r;

    if (!arr)
        return berth_err_set(err, -ENOMEM, "out of memory");
    r = berth__store_walk(txn, BERTH_DB_IMAGES, NULL, list_add, arr, err);
    if (r == -ENOMEM)
        return berth_err_set(err, r, "out of memory");
    if (r < 0)
        return r;
    *ret_array = TAKE_PTR(arr);
    return 0;
}

int berth__layer_record_get_in(berth_txn_t *txn, const char *chain_id, json_t **ret_doc,
                               berth_err_t *err)
{
    return berth__store_get(txn, BERTH_DB_LAYERS, chain_id, ret_doc, err);
}

int berth__layer_record_put_in(berth_txn_t *txn, json_t *doc, berth_err_t *err)
{
    const char *id = json_string_value(json_object_get(doc, "chain_id"));
    if (!id)
        return berth_err_set(err, -EINVAL, "layer record without \"chain_id\"");
    return berth__store_put(txn, BERTH_DB_LAYERS, id, doc, 0, err);
}

int berth__layer_record_del_in(berth_txn_t *txn, const char *chain_id, berth_err_t *err)
{
    int r = berth__store_del(txn, BERTH_DB_LAYERS, chain_id, err);
    return r == -ENOENT ? 0 : r;
}

struct users {
    const char *id;
    json_t *ids;
};

static int users_visit(const char *key, json_t *doc, void *userdata)
{
    struct users *u = userdata;
    const char *img = json_string_value(json_object_get(doc, "image_id"));
    if (img && strcmp(img, u->id) == 0)
        return json_array_append_new(u->ids, json_string(key)) < 0 ? -ENOMEM : 0;
    return 0;
}

int berth__image_users_in(berth_txn_t *txn, const char *id, json_t **ret_ids, berth_err_t *err)
{
    struct users u = { id, json_array() };
    int r;

    if (!u.ids)
        return berth_err_set(err, -ENOMEM, "out of memory");
    r = berth__store_walk(txn, BERTH_DB_CONTAINERS, NULL, users_visit, &u, err);
    if (r < 0) {
        json_decref(u.ids);
        return r == -ENOMEM ? berth_err_set(err, r, "out of memory") : r;
    }
    *ret_ids = u.ids;
    return 0;
}
