/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Descriptors in JSON and the walk of an image layout's index.json
 * (image-spec image-layout.md, image-index.md, annotations.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "image-common.h"

#define ENTRIES_MAX 65536u

int image_desc_from_json(const json_t *obj, berth_descriptor_t *ret, berth_err_t *err)
{
    const char *mt, *digest;
    json_t *size;
    int r;

    if (!json_is_object(obj))
        return berth_err_set(err, -EINVAL, "descriptor is not an object");
    mt = json_string_value(json_object_get(obj, "mediaType"));
    if (!mt || !*mt)
        return berth_err_set(err, -EINVAL, "descriptor has no mediaType");
    if (strlen(mt) >= sizeof(ret->media_type))
        return berth_err_set(err, -EINVAL, "descriptor mediaType is too long");
    digest = json_string_value(json_object_get(obj, "digest"));
    r = image_digest_check(digest, err);
    if (r < 0)
        return berth_err_prefix(err, r, "descriptor");
    size = json_object_get(obj, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return berth_err_set(err, -EINVAL, "descriptor %s has no valid size", digest);
    memset(ret, 0, sizeof(*ret));
    ret->struct_size = sizeof(*ret);
    snprintf(ret->media_type, sizeof(ret->media_type), "%s", mt);
    snprintf(ret->digest, sizeof(ret->digest), "%s", digest);
    ret->size = (int64_t)json_integer_value(size);
    return 0;
}

json_t *image_desc_to_json(const berth_descriptor_t *desc)
{
    return json_pack("{s:s,s:s,s:I}", "mediaType", desc->media_type, "digest", desc->digest, "size",
                     (json_int_t)desc->size);
}

void image_oci_index_free(image_oci_index_t *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->n; i++) {
        free(idx->entries[i].ref_name);
        free(idx->entries[i].image_name);
    }
    free(idx->entries);
    free(idx);
}

static int annotation(const json_t *desc, const char *key, char **ret, berth_err_t *err)
{
    json_t *v = json_object_get(json_object_get(desc, "annotations"), key);
    *ret = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return berth_err_set(err, -EINVAL, "annotation %s is not a string", key);
    if (json_string_length(v) == 0)
        return 0;
    *ret = strdup(json_string_value(v));
    return *ret ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}

/*
 * Add the descriptors of @manifests (an index's "manifests") and, below them,
 * those of nested indexes. @in_named: an ancestor carries a name, so nothing
 * below it is an image of its own. *ret_named counts the images found.
 */
static int load_level(image_loc_t *loc, image_oci_index_t *idx, const json_t *manifests, int depth,
                      int in_named, size_t *ret_named, berth_err_t *err)
{
    size_t k, named_here = 0;
    json_t *d;
    int r;

    if (!json_is_array(manifests))
        return berth_err_set(err, -EINVAL, "index has no \"manifests\" array");
    json_array_foreach (manifests, k, d) {
        image_oci_entry_t *e;
        size_t i = idx->n;
        int named;

        if (idx->n == ENTRIES_MAX)
            return berth_err_set(err, -E2BIG, "indexes hold more than %u descriptors", ENTRIES_MAX);
        e = realloc(idx->entries, (idx->n + 1) * sizeof(*e));
        if (!e)
            return berth_err_set(err, -ENOMEM, "out of memory");
        idx->entries = e;
        e = &idx->entries[i];
        memset(e, 0, sizeof(*e));
        idx->n++;
        r = image_desc_from_json(d, &e->desc, err);
        if (r == 0)
            r = annotation(d, IMAGE_ANNOT_REF_NAME, &e->ref_name, err);
        if (r == 0)
            r = annotation(d, IMAGE_ANNOT_IMAGE_NAME, &e->image_name, err);
        if (r < 0) {
            char what[48];
            snprintf(what, sizeof(what), "manifests[%zu]", k);
            return berth_err_prefix(err, r, what);
        }
        named = e->ref_name || e->image_name;
        if (named && !in_named) {
            e->image = 1;
            named_here++;
        }
        if (image_mt_is_index(e->desc.media_type)) {
            _cleanup_free_ char *buf = NULL;
            _cleanup_json_ json_t *sub = NULL;
            berth_descriptor_t sd = e->desc;
            json_error_t jerr;
            size_t len, sub_named = 0;

            if (depth + 1 >= IMAGE_INDEX_DEPTH_MAX)
                return berth_err_set(err, -ELOOP, "indexes nest more than %d deep",
                                     IMAGE_INDEX_DEPTH_MAX);
            r = image_loc_read_blob(loc, &sd, &buf, &len, err);
            if (r == -ENOENT) {
                /* Blobs may be absent from a layout; the index is then opaque. */
                if (!named && !in_named && depth == 0)
                    idx->entries[i].image = 1;
                continue;
            }
            if (r < 0)
                return berth_err_prefix(err, r, "nested index");
            sub = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
            if (!sub)
                return berth_err_set(err, -EINVAL, "nested index %s: malformed JSON: %s", sd.digest,
                                     jerr.text);
            r = load_level(loc, idx, json_object_get(sub, "manifests"), depth + 1,
                           in_named || named, &sub_named, err);
            if (r < 0)
                return berth_err_prefix(err, r, sd.digest);
            named_here += sub_named;
            /* An unnamed top-level index that names nothing below is one (multi-platform) image. */
            if (!named && !in_named && depth == 0 && sub_named == 0)
                idx->entries[i].image = 1;
        } else if (!named && !in_named && depth == 0) {
            e->image = 1;
        }
    }
    *ret_named = named_here;
    return 0;
}

int image_oci_index_load(image_loc_t *loc, image_oci_index_t **ret_index, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    image_oci_index_t *idx;
    size_t named = 0;
    int r;

    r = image_loc_read_json(loc, "index.json", &doc, err);
    if (r < 0)
        return berth_err_prefix(err, r, image_loc_path(loc));
    idx = calloc(1, sizeof(*idx));
    if (!idx)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (!json_is_object(doc))
        r = berth_err_set(err, -EINVAL, "not an object");
    else
        r = load_level(loc, idx, json_object_get(doc, "manifests"), 0, 0, &named, err);
    if (r < 0) {
        image_oci_index_free(idx);
        berth_err_prefix(err, r, "index.json");
        return berth_err_prefix(err, r, image_loc_path(loc));
    }
    *ret_index = idx;
    return 0;
}

/* A ref name without '/' or ':' is a bare tag ("latest"), compared as text only. */
static int bare_tag(const char *s)
{
    return !strchr(s, '/') && !strchr(s, ':') && !strchr(s, '@');
}

static int strict_match(const image_oci_entry_t *e, const char *ref)
{
    if (e->image_name && image_ref_equal(ref, e->image_name))
        return 1;
    if (e->ref_name)
        return bare_tag(e->ref_name) ? strcmp(ref, e->ref_name) == 0
                                     : image_ref_equal(ref, e->ref_name);
    return 0;
}

/* Pick the match among @idx entries flagged in @hit; several distinct digests are ambiguous. */
static int pick(const image_oci_index_t *idx, const unsigned char *hit, const char *where,
                const char *ref, berth_descriptor_t *ret_desc, berth_err_t *err)
{
    const image_oci_entry_t *first = NULL;
    size_t distinct = 0;

    for (size_t i = 0; i < idx->n; i++) {
        if (!hit[i])
            continue;
        if (!first) {
            first = &idx->entries[i];
            distinct = 1;
        } else if (strcmp(first->desc.digest, idx->entries[i].desc.digest) != 0) {
            distinct++;
        }
    }
    if (!first)
        return 0;
    if (distinct > 1)
        return berth_err_set(err, -EINVAL, "%s names %zu different images in %s; use a full name",
                             ref, distinct, where);
    *ret_desc = first->desc;
    return 1;
}

int image_oci_resolve(const image_oci_index_t *idx, const char *where, const char *ref,
                      berth_descriptor_t *ret_desc, berth_err_t *err)
{
    _cleanup_free_ unsigned char *hit = NULL;
    char full[IMAGE_REF_MAX], tag[160];
    const char *digest;
    size_t n = 0;
    int r;

    if (!ref) {
        const image_oci_entry_t *only = NULL;
        /* Images are counted by digest: one manifest under two tags is one image. */
        for (size_t i = 0; i < idx->n; i++) {
            const image_oci_entry_t *e = &idx->entries[i];
            size_t j;
            if (!e->image)
                continue;
            for (j = 0; j < i; j++)
                if (idx->entries[j].image &&
                    strcmp(idx->entries[j].desc.digest, e->desc.digest) == 0)
                    break;
            if (j < i)
                continue;
            only = e;
            n++;
        }
        if (n == 0)
            return berth_err_set(err, -ENOENT, "%s holds no images", where);
        if (n > 1)
            return berth_err_set(err, -EINVAL, "%s holds %zu images; name one", where, n);
        *ret_desc = only->desc;
        return 0;
    }
    digest = image_ref_digest(ref);
    if (digest) {
        for (size_t i = 0; i < idx->n; i++)
            if (strcmp(idx->entries[i].desc.digest, digest) == 0) {
                *ret_desc = idx->entries[i].desc;
                return 0;
            }
        return berth_err_set(err, -ENOENT, "no image %s in %s", ref, where);
    }
    hit = calloc(idx->n + 1, 1);
    if (!hit)
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < idx->n; i++)
        hit[i] = (unsigned char)strict_match(&idx->entries[i], ref);
    r = pick(idx, hit, where, ref, ret_desc, err);
    if (r != 0)
        return r < 0 ? r : 0;
    /*
     * A layout written with only a tag ("latest", no full name) is found by
     * the tag of a full reference ("busybox:latest" -> "latest"), the way
     * image-layout readers take "oci:dir:latest".
     */
    if (image_ref_normalize(ref, full, sizeof(full)) == 0 &&
        image_ref_tag(full, tag, sizeof(tag)) == 0 && tag[0]) {
        for (size_t i = 0; i < idx->n; i++) {
            const image_oci_entry_t *e = &idx->entries[i];
            hit[i] = (unsigned char)(!e->image_name && e->ref_name && bare_tag(e->ref_name) &&
                                     strcmp(e->ref_name, tag) == 0);
        }
        r = pick(idx, hit, where, ref, ret_desc, err);
        if (r != 0)
            return r < 0 ? r : 0;
    }
    return berth_err_set(err, -ENOENT, "no image %s in %s", ref, where);
}

int image_oci_list(const image_oci_index_t *idx, berth_image_list_fn fn, void *userdata)
{
    for (size_t i = 0; i < idx->n; i++) {
        const image_oci_entry_t *e = &idx->entries[i];
        const char *name = e->image_name ? e->image_name : e->ref_name;
        if (e->image && name && fn(name, &e->desc, userdata) != 0)
            break;
    }
    return 0;
}
