/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oci-layout: images in an OCI image layout (image-spec image-layout.md),
 * either a directory or a tar holding one (an "oci-archive").
 *
 * Reading indexes the tar once at open (plain or gzip; see README.md) and
 * streams blobs with pread(); index.json and the indexes it nests are read
 * once at open to resolve names. Writing stages blobs next to the location
 * and makes them visible at commit: a new directory is renamed into place, an
 * existing layout gets its blobs directly and a new index.json by rename(), a
 * ".tar" location (or any, with the write option {"archive": true}) is
 * written as a tar and renamed over.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <dirent.h>

#include "image-common.h"

struct session {
    int write;
    /* read sessions */
    image_loc_t *loc;
    image_oci_index_t *idx;
    /* write sessions */
    char *target;
    int tar;                  /* the location is an oci-archive tar */
    int in_place;             /* adding to an existing layout directory */
    char stage_dir[PATH_MAX]; /* our staging directory, "" when writing in place */
    image_stage_t *stage;
    json_t *entries; /* index entries this session adds */
    int committed;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int empty = 1;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

/* A regular file @name inside directory @dir. */
static int dir_has(const char *dir, const char *name)
{
    char p[PATH_MAX];
    struct stat sb;
    return (size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) < sizeof(p) && stat(p, &sb) == 0 &&
           S_ISREG(sb.st_mode);
}

struct tar_seen {
    int layout, index, manifest;
};

static int seen_member(void *ud, const char *name, int kind, berth_err_t *err)
{
    struct tar_seen *s = ud;
    if (kind != IMAGE_TAR_FILE && kind != IMAGE_TAR_LINK && kind != IMAGE_TAR_SYMLINK)
        return 0;
    if (strcmp(name, "oci-layout") == 0)
        s->layout = 1;
    else if (strcmp(name, "index.json") == 0)
        s->index = 1;
    else if (strcmp(name, "manifest.json") == 0)
        s->manifest = 1;
    /* A docker save tar is docker-archive's even if it is a layout too: stop there. */
    return s->manifest;
}

static int layout_match(void *priv, const char *location, uint32_t flags)
{
    struct tar_seen seen = { 0 };
    struct stat sb;

    if (!location || !*location)
        return BERTH_DECLINED;
    if (flags & BERTH_IMAGE_OPEN_WRITE) {
        /* Files (".tar" included) are docker-archive's when no transport is given. */
        if (stat(location, &sb) < 0)
            return errno == ENOENT && ends_with(location, "/") ? 0 : BERTH_DECLINED;
        if (!S_ISDIR(sb.st_mode))
            return BERTH_DECLINED;
        return dir_is_empty(location) ||
                       (dir_has(location, "oci-layout") && dir_has(location, "index.json"))
                   ? 0
                   : BERTH_DECLINED;
    }
    if (stat(location, &sb) < 0)
        return BERTH_DECLINED;
    if (S_ISDIR(sb.st_mode))
        return dir_has(location, "oci-layout") && dir_has(location, "index.json") ? 0
                                                                                  : BERTH_DECLINED;
    if (!S_ISREG(sb.st_mode) || image_tar_walk_path(location, seen_member, &seen, NULL) < 0)
        return BERTH_DECLINED;
    return seen.layout && seen.index && !seen.manifest ? 0 : BERTH_DECLINED;
}

static void session_free(struct session *s)
{
    if (!s)
        return;
    image_oci_index_free(s->idx);
    image_loc_free(s->loc);
    /* Without a commit the stage undoes what it created; with one it keeps it. */
    image_stage_free(s->stage);
    if (s->stage_dir[0])
        image_rmtree(s->stage_dir);
    json_decref(s->entries);
    free(s->target);
    free(s);
}

static int check_layout_file(image_loc_t *loc, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    const char *v;
    int r = image_loc_read_json(loc, "oci-layout", &doc, err);

    if (r == -ENOENT)
        return berth_err_set(err, -EINVAL, "%s is not an OCI image layout (no oci-layout file)",
                             image_loc_path(loc));
    if (r < 0)
        return berth_err_prefix(err, r, image_loc_path(loc));
    v = json_string_value(json_object_get(doc, "imageLayoutVersion"));
    if (!v || strncmp(v, "1.", 2) != 0)
        return berth_err_set(err, -ENOTSUP, "%s: unsupported imageLayoutVersion %s",
                             image_loc_path(loc), v ? v : "(none)");
    return 0;
}

static int open_read(struct session *s, const char *location, berth_err_t *err)
{
    int r = image_loc_open(location, &s->loc, err);
    if (r < 0)
        return r;
    r = check_layout_file(s->loc, err);
    if (r < 0)
        return r;
    return image_oci_index_load(s->loc, &s->idx, err);
}

/*
 * Options of a write session: {"archive": true} writes a tar whatever the
 * name, {"archive": false} a directory; without it a ".tar" suffix decides.
 */
static int open_write(struct session *s, const char *location, const char *options,
                      berth_err_t *err)
{
    const char *root;
    struct stat sb;
    json_t *opts, *archive;
    int r;

    s->target = strdup(location);
    s->entries = json_array();
    if (!s->target || !s->entries)
        return berth_err_set(err, -ENOMEM, "out of memory");
    s->tar = ends_with(location, ".tar");
    opts = options ? json_loads(options, 0, NULL) : NULL;
    archive = json_object_get(opts, "archive");
    if (json_is_boolean(archive))
        s->tar = json_is_true(archive);
    json_decref(opts);
    if (stat(location, &sb) == 0) {
        if (s->tar && S_ISDIR(sb.st_mode))
            return berth_err_set(err, -EISDIR, "%s is a directory, not a tar file", location);
        if (!s->tar && !S_ISDIR(sb.st_mode))
            return berth_err_set(err, -ENOTDIR, "%s exists and is not a directory", location);
        if (!s->tar && !dir_is_empty(location)) {
            if (!dir_has(location, "oci-layout") || !dir_has(location, "index.json"))
                return berth_err_set(err, -EEXIST, "%s exists and is not an OCI image layout",
                                     location);
            s->in_place = 1;
        }
    } else if (errno != ENOENT) {
        return berth_err_set(err, -errno, "stat %s: %s", location, strerror(errno));
    }
    if (s->in_place) {
        image_loc_t *loc;
        /* Refuse a layout we could not read back before writing into it. */
        r = image_loc_open(location, &loc, err);
        if (r == 0)
            r = check_layout_file(loc, err);
        image_loc_free(loc);
        if (r < 0)
            return r;
        root = location;
    } else {
        r = image_stage_dir_new(location, s->stage_dir, sizeof(s->stage_dir), err);
        if (r < 0)
            return r;
        root = s->stage_dir;
    }
    return image_stage_new(root, &s->stage, err);
}

static int layout_open(void *priv, const berth_image_location_t *loc, uint32_t flags,
                       void **ret_session, berth_err_t *err)
{
    struct session *s;
    int r;

    if (!loc || !loc->location || !*loc->location)
        return berth_err_set(err, -EINVAL, "oci-layout: no location given");
    s = calloc(1, sizeof(*s));
    if (!s)
        return berth_err_set(err, -ENOMEM, "oci-layout: out of memory");
    s->write = ((flags | loc->flags) & BERTH_IMAGE_OPEN_WRITE) != 0;
    r = s->write ? open_write(s, loc->location, loc->options_json, err)
                 : open_read(s, loc->location, err);
    if (r < 0) {
        session_free(s);
        return berth_err_prefix(err, r, "oci-layout");
    }
    *ret_session = s;
    return 0;
}

static void layout_close(void *priv, void *session)
{
    session_free(session);
}

static int need_read(struct session *s, berth_err_t *err)
{
    return s->write ? berth_err_set(err, -EBADF, "oci-layout: session is open for writing") : 0;
}

static int need_write(struct session *s, berth_err_t *err)
{
    if (!s->write)
        return berth_err_set(err, -EBADF, "oci-layout: session is open for reading");
    if (s->committed)
        return berth_err_set(err, -EINVAL, "oci-layout: session is already committed");
    return 0;
}

static int layout_resolve(void *priv, void *session, const char *reference, uint32_t flags,
                          berth_descriptor_t *ret_desc, berth_err_t *err)
{
    struct session *s = session;
    berth_descriptor_t d;
    int r = need_read(s, err);

    if (r < 0)
        return r;
    r = image_oci_resolve(s->idx, image_loc_path(s->loc), reference, &d, err);
    if (r < 0)
        return berth_err_prefix(err, r, "oci-layout");
    *ret_desc = d;
    return 0;
}

static int layout_fetch(void *priv, void *session, const berth_descriptor_t *desc, int64_t offset,
                        uint32_t flags, berth_stream_t **ret_stream, berth_err_t *err)
{
    struct session *s = session;
    int r = need_read(s, err);

    if (r < 0)
        return r;
    r = image_loc_fetch_blob(s->loc, desc, offset, ret_stream, err);
    return r < 0 ? berth_err_prefix(err, r, "oci-layout") : 0;
}

static int layout_list(void *priv, void *session, uint32_t flags, berth_image_list_fn fn,
                       void *userdata, berth_err_t *err)
{
    struct session *s = session;
    int r = need_read(s, err);
    return r < 0 ? r : image_oci_list(s->idx, fn, userdata);
}

static int layout_put_blob(void *priv, void *session, const berth_descriptor_t *desc,
                           berth_stream_t *content, uint32_t flags, berth_err_t *err)
{
    struct session *s = session;
    int r = need_write(s, err);

    if (r == 0)
        r = image_stage_put(s->stage, desc, content, err);
    return r < 0 ? berth_err_prefix(err, r, "oci-layout") : 0;
}

/* Whether existing index entry @e is replaced by a new entry named @full with tag @tag. */
static int replaced_by(const json_t *e, const char *full, const char *tag, const char *digest)
{
    const json_t *ann = json_object_get(e, "annotations");
    const char *name = json_string_value(json_object_get(ann, IMAGE_ANNOT_IMAGE_NAME));
    const char *ref = json_string_value(json_object_get(ann, IMAGE_ANNOT_REF_NAME));

    if (!full) /* a new unnamed entry replaces only an unnamed one with the same digest */
        return !name && !ref &&
               strcmp(json_string_value(json_object_get(e, "digest")) ?: "", digest) == 0;
    if (name)
        return image_ref_equal(full, name);
    /* Entries written with only a tag: the new image takes the tag over, as skopeo does. */
    return ref && (strcmp(ref, tag) == 0 || image_ref_equal(full, ref));
}

static int layout_put_ref(void *priv, void *session, const char *reference,
                          const berth_descriptor_t *desc, uint32_t flags, berth_err_t *err)
{
    struct session *s = session;
    char full[IMAGE_REF_MAX], tag[160] = "";
    json_t *e, *ann;
    size_t i;
    int r = need_write(s, err);

    if (r < 0)
        return r;
    if (!image_stage_has(s->stage, desc->digest))
        return berth_err_set(err, -ENOENT, "oci-layout: manifest %s was not put", desc->digest);
    if (reference) {
        if (image_ref_normalize(reference, full, sizeof(full)) < 0)
            return berth_err_set(err, -EINVAL, "oci-layout: invalid reference \"%.200s\"",
                                 reference);
        image_ref_tag(full, tag, sizeof(tag));
    }
    e = image_desc_to_json(desc);
    if (!e)
        return berth_err_set(err, -ENOMEM, "oci-layout: out of memory");
    if (reference) {
        ann = json_object();
        if (!ann || json_object_set_new(e, "annotations", ann) < 0 ||
            json_object_set_new(ann, IMAGE_ANNOT_IMAGE_NAME, json_string(full)) < 0 ||
            (tag[0] && json_object_set_new(ann, IMAGE_ANNOT_REF_NAME, json_string(tag)) < 0)) {
            json_decref(e);
            return berth_err_set(err, -ENOMEM, "oci-layout: out of memory");
        }
    }
    /* A later put_ref of the same name wins within the session too. */
    for (i = 0; i < json_array_size(s->entries);) {
        if (replaced_by(json_array_get(s->entries, i), reference ? full : NULL, tag, desc->digest))
            json_array_remove(s->entries, i);
        else
            i++;
    }
    if (json_array_append_new(s->entries, e) < 0)
        return berth_err_set(err, -ENOMEM, "oci-layout: out of memory");
    return 0;
}

/* The index.json to write: the existing one minus the entries ours replace, plus ours. */
static int build_index(struct session *s, json_t **ret_doc, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    json_t *manifests, *e;
    size_t i, j;
    int r;

    if (s->in_place) {
        image_loc_t *loc;
        r = image_loc_open(s->target, &loc, err);
        if (r < 0)
            return r;
        r = image_loc_read_json(loc, "index.json", &doc, err);
        image_loc_free(loc);
        if (r < 0)
            return berth_err_prefix(err, r, s->target);
        manifests = json_object_get(doc, "manifests");
        if (!json_is_object(doc) || !json_is_array(manifests))
            return berth_err_set(err, -EINVAL, "%s/index.json has no manifests array", s->target);
        for (i = 0; i < json_array_size(manifests);) {
            int gone = 0;
            json_array_foreach (s->entries, j, e) {
                const json_t *ann = json_object_get(e, "annotations");
                const char *full = json_string_value(json_object_get(ann, IMAGE_ANNOT_IMAGE_NAME));
                const char *tag = json_string_value(json_object_get(ann, IMAGE_ANNOT_REF_NAME));
                if (replaced_by(json_array_get(manifests, i), full, tag ? tag : "",
                                json_string_value(json_object_get(e, "digest")))) {
                    gone = 1;
                    break;
                }
            }
            if (gone)
                json_array_remove(manifests, i);
            else
                i++;
        }
    } else {
        doc = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", IMAGE_MT_OCI_INDEX,
                        "manifests");
        if (!doc)
            return berth_err_set(err, -ENOMEM, "out of memory");
        manifests = json_object_get(doc, "manifests");
    }
    if (json_array_extend(manifests, s->entries) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_doc = TAKE_PTR(doc);
    return 0;
}

static int layout_commit(void *priv, void *session, uint32_t flags, berth_err_t *err)
{
    struct session *s = session;
    _cleanup_json_ json_t *index = NULL;
    const char *root;
    int r = need_write(s, err);

    if (r < 0)
        return r;
    root = image_stage_root(s->stage);
    r = build_index(s, &index, err);
    if (r == 0 && !s->in_place)
        r = image_write_file(root, "oci-layout", IMAGE_OCI_LAYOUT_TEXT "\n",
                             strlen(IMAGE_OCI_LAYOUT_TEXT) + 1, err);
    if (r == 0)
        r = image_write_json(root, "index.json", index, err);
    if (r < 0)
        return berth_err_prefix(err, r, "oci-layout: commit");
    if (s->tar) {
        image_tar_list_t list = { 0 };
        r = image_tar_list_add_blobs(&list, s->stage, err);
        if (r == 0) {
            char p1[PATH_MAX], p2[PATH_MAX];
            snprintf(p1, sizeof(p1), "%s/index.json", root);
            snprintf(p2, sizeof(p2), "%s/oci-layout", root);
            r = image_tar_list_add(&list, "index.json", 0, p1, NULL, 0, err);
            if (r == 0)
                r = image_tar_list_add(&list, "oci-layout", 0, p2, NULL, 0, err);
        }
        if (r == 0)
            r = image_tar_write(s->target, list.items, list.n, err);
        image_tar_list_release(&list);
        /* The staging directory goes in close(); the tar is what stays. */
    } else if (!s->in_place) {
        /* rename() also replaces an empty directory at the location. */
        if (rename(s->stage_dir, s->target) < 0)
            r = berth_err_set(err, -errno, "rename %s to %s: %s", s->stage_dir, s->target,
                              strerror(errno));
        else
            s->stage_dir[0] = '\0';
    }
    if (r < 0)
        return berth_err_prefix(err, r, "oci-layout: commit");
    image_stage_keep(s->stage);
    s->committed = 1;
    return 0;
}

/* Streams are pread() on their own descriptor, so they may be read from several threads. */
#define LAYOUT_CAPS                                                                                \
    (BERTH_IMAGE_CAP_PULL | BERTH_IMAGE_CAP_PUSH | BERTH_IMAGE_CAP_LIST |                          \
     BERTH_IMAGE_CAP_PARALLEL_STREAMS)

/* Files and tars need nothing from the host: always usable. */
static int layout_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    *ret_caps = LAYOUT_CAPS;
    return 0;
}

static int layout_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                       berth_err_t *err)
{
    *ret_priv = NULL;
    return 0;
}

static const berth_image_ops_t layout_ops = {
    BERTH_OPS_INIT(berth_image_ops_t),
    .probe = layout_probe,
    .match = layout_match,
    .open = layout_open,
    .close = layout_close,
    .resolve = layout_resolve,
    .fetch = layout_fetch,
    .list = layout_list,
    .put_blob = layout_put_blob,
    .put_ref = layout_put_ref,
    .commit = layout_commit,
};

static const berth_plugin_desc_t layout_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_IMAGE,
    .name = "oci-layout",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "OCI image layouts: directories and oci-archive tars",
    .capabilities = LAYOUT_CAPS,
    .init = layout_init,
    .ops = &layout_ops,
};

BERTH_PLUGIN_DEFINE(layout_desc)
