/* SPDX-License-Identifier: Apache-2.0 */
/*
 * docker-archive: `docker save` / `docker load` tars (moby image/tarexport).
 *
 * Reading follows moby's loader order: manifest.json when present, else
 * index.json (the tar is then read as an OCI layout), else the pre-1.10
 * "repositories" form, which is refused with a reason. manifest.json names
 * files in the tar, not blobs, so each image needs a manifest:
 *  - Engine >= 25 tars are also OCI layouts: the manifest in blobs/ whose
 *    config is the entry's Config is used, so digests stay those of the
 *    image as it was saved;
 *  - otherwise (the legacy form skopeo and older engines write) a Docker
 *    schema 2 manifest is synthesised: config and layer descriptors come from
 *    hashing their members once per session (members named
 *    blobs/<alg>/<hex> are taken by name; the core verifies every byte it
 *    fetches anyway), layer media types from sniffing gzip/zstd.
 * fetch() serves the synthesised manifest from memory and everything else
 * from the tar with pread().
 *
 * Writing produces the Engine >= 25 form: oci-layout, index.json, blobs/,
 * plus manifest.json and repositories as moby writes them (see README.md).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "image-common.h"

/* One entry of manifest.json. */
struct image {
    char *config;  /* member path, normalised */
    char **layers; /* member paths, base first */
    size_t n_layers;
    char **tags; /* RepoTags as written */
    size_t n_tags;
    int have_target;
    berth_descriptor_t config_desc;
    berth_descriptor_t target; /* the manifest resolve() returns */
    char *manifest;            /* its bytes when synthesised, else NULL (a blob in the tar) */
    size_t manifest_len;
};

/* A member whose digest is known: hashed, or named blobs/<alg>/<hex>. */
struct member {
    char *path;
    char digest[80];
    uint64_t size;
    int comp;
};

/* An index.json manifest and the config digest it names (Engine >= 25 tars). */
struct oci_manifest {
    berth_descriptor_t desc;
    char config[80];
};

struct ref {
    char *full; /* NULL for an unnamed entry */
    berth_descriptor_t desc;
};

struct session {
    int write;
    /* read sessions */
    image_loc_t *loc;
    struct image *images; /* from manifest.json; none when the tar is read as a layout */
    size_t n_images;
    int has_manifest_json;
    image_oci_index_t *idx; /* index.json, when present and valid */
    struct oci_manifest *oci;
    size_t n_oci;
    int oci_scanned;
    struct member *members;
    size_t n_members;
    /* write sessions */
    char *target;
    char stage_dir[PATH_MAX];
    image_stage_t *stage;
    struct ref *refs;
    size_t n_refs;
    int committed;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void session_free(struct session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_images; i++) {
        struct image *im = &s->images[i];
        free(im->config);
        strv_free(im->layers, im->n_layers);
        strv_free(im->tags, im->n_tags);
        free(im->manifest);
    }
    free(s->images);
    for (size_t i = 0; i < s->n_members; i++)
        free(s->members[i].path);
    free(s->members);
    free(s->oci);
    image_oci_index_free(s->idx);
    image_loc_free(s->loc);
    image_stage_free(s->stage);
    if (s->stage_dir[0])
        image_rmtree(s->stage_dir);
    for (size_t i = 0; i < s->n_refs; i++)
        free(s->refs[i].full);
    free(s->refs);
    free(s->target);
    free(s);
}

/* ---- match ---- */

static int seen_member(void *ud, const char *name, int kind, berth_err_t *err)
{
    int *found = ud;
    if (strcmp(name, "manifest.json") == 0 || strcmp(name, "repositories") == 0)
        *found = 1;
    return *found;
}

static int archive_match(void *priv, const char *location, uint32_t flags)
{
    struct stat sb;
    int found = 0;

    if (!location || !*location)
        return BERTH_DECLINED;
    if (flags & BERTH_IMAGE_OPEN_WRITE) {
        /* Any file path: `docker save -o x` need not end in .tar. Directories are oci-layout's. */
        if (ends_with(location, "/"))
            return BERTH_DECLINED;
        return stat(location, &sb) == 0 && S_ISDIR(sb.st_mode) ? BERTH_DECLINED : 0;
    }
    if (stat(location, &sb) < 0 || !S_ISREG(sb.st_mode) ||
        image_tar_walk_path(location, seen_member, &found, NULL) < 0)
        return BERTH_DECLINED;
    return found ? 0 : BERTH_DECLINED;
}

/* ---- reading manifest.json ---- */

static int path_list(const json_t *arr, const char *what, char ***ret, size_t *ret_n,
                     berth_err_t *err)
{
    char norm[PATH_MAX];
    size_t i, n = json_array_size(arr);
    char **v;
    json_t *p;
    int r;

    if (!json_is_array(arr))
        return berth_err_set(err, -EINVAL, "%s is not an array", what);
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return berth_err_set(err, -ENOMEM, "out of memory");
    json_array_foreach (arr, i, p) {
        if (!json_is_string(p)) {
            strv_free(v, i);
            return berth_err_set(err, -EINVAL, "%s[%zu] is not a string", what, i);
        }
        r = image_path_normalize(json_string_value(p), norm, sizeof(norm), err);
        if (r < 0) {
            strv_free(v, i);
            return berth_err_prefix(err, r, what);
        }
        v[i] = strdup(norm);
        if (!v[i]) {
            strv_free(v, i);
            return berth_err_set(err, -ENOMEM, "out of memory");
        }
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static int load_manifest_json(struct session *s, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    char norm[PATH_MAX], what[64];
    size_t i;
    json_t *e;
    int r;

    r = image_loc_read_json(s->loc, "manifest.json", &doc, err);
    if (r < 0)
        return r;
    if (!json_is_array(doc))
        return berth_err_set(err, -EINVAL, "manifest.json is not an array");
    s->images = calloc(json_array_size(doc) + 1, sizeof(*s->images));
    if (!s->images)
        return berth_err_set(err, -ENOMEM, "out of memory");
    json_array_foreach (doc, i, e) {
        struct image *im = &s->images[i];
        const json_t *tags = json_object_get(e, "RepoTags");
        const char *config = json_string_value(json_object_get(e, "Config"));

        s->n_images = i + 1;
        snprintf(what, sizeof(what), "manifest.json[%zu]", i);
        if (!json_is_object(e))
            return berth_err_set(err, -EINVAL, "%s is not an object", what);
        if (!config)
            return berth_err_set(err, -EINVAL, "%s has no Config", what);
        r = image_path_normalize(config, norm, sizeof(norm), err);
        if (r < 0) {
            berth_err_prefix(err, r, "Config");
            return berth_err_prefix(err, r, what);
        }
        im->config = strdup(norm);
        if (!im->config)
            return berth_err_set(err, -ENOMEM, "out of memory");
        r = path_list(json_object_get(e, "Layers"), "Layers", &im->layers, &im->n_layers, err);
        if (r < 0)
            return berth_err_prefix(err, r, what);
        if (tags && !json_is_null(tags)) {
            size_t k;
            json_t *t;
            if (!json_is_array(tags))
                return berth_err_set(err, -EINVAL, "%s: RepoTags is not an array", what);
            im->tags = calloc(json_array_size(tags) + 1, sizeof(*im->tags));
            if (!im->tags)
                return berth_err_set(err, -ENOMEM, "out of memory");
            json_array_foreach (tags, k, t) {
                if (!json_is_string(t))
                    return berth_err_set(err, -EINVAL, "%s: RepoTags[%zu] is not a string", what,
                                         k);
                im->tags[k] = strdup(json_string_value(t));
                if (!im->tags[k])
                    return berth_err_set(err, -ENOMEM, "out of memory");
                im->n_tags = k + 1;
            }
        }
    }
    return 0;
}

static int open_read(struct session *s, const char *location, berth_err_t *err)
{
    berth_err_t ierr = { 0 };
    int r = image_loc_open(location, &s->loc, err);

    if (r < 0)
        return r;
    if (image_loc_exists(s->loc, "manifest.json")) {
        s->has_manifest_json = 1;
        r = load_manifest_json(s, err);
        if (r < 0)
            return berth_err_prefix(err, r, location);
        /*
         * An Engine >= 25 tar is a layout too; its manifests keep the saved
         * digests. manifest.json is authoritative, so a broken index.json
         * only means manifests are synthesised instead.
         */
        if (image_loc_exists(s->loc, "index.json"))
            image_oci_index_load(s->loc, &s->idx, &ierr);
        return 0;
    }
    if (image_loc_exists(s->loc, "index.json"))
        return image_oci_index_load(s->loc, &s->idx, err);
    if (image_loc_exists(s->loc, "repositories"))
        return berth_err_set(err, -ENOTSUP,
                             "%s is in the pre-1.10 docker save format (repositories without "
                             "manifest.json), which is not supported; save it again with a newer "
                             "engine",
                             location);
    return berth_err_set(err, -EINVAL,
                         "%s is not a docker save archive (no manifest.json, index.json or "
                         "repositories)",
                         location);
}

/* ---- digests of members ---- */

static const struct member *member_by_digest(const struct session *s, const char *digest)
{
    for (size_t i = 0; i < s->n_members; i++)
        if (strcmp(s->members[i].digest, digest) == 0)
            return &s->members[i];
    return NULL;
}

/* Digest, size and compression of member @path, hashing it the first time only. */
static int member_info(struct session *s, const char *path, const struct member **ret,
                       berth_err_t *err)
{
    _cleanup_close_ int fd = -1;
    struct member m = { 0 }, *grown;
    uint8_t head[8];
    uint64_t off;
    int r;

    for (size_t i = 0; i < s->n_members; i++)
        if (strcmp(s->members[i].path, path) == 0) {
            *ret = &s->members[i];
            return 0;
        }
    r = image_loc_open_member(s->loc, path, &fd, &off, &m.size, err);
    if (r < 0)
        return r;
    if (strncmp(path, "blobs/", 6) == 0 && strchr(path + 6, '/')) {
        /* An OCI blob is named by its digest; a lie shows when the core verifies it. */
        const char *slash = strchr(path + 6, '/');
        snprintf(m.digest, sizeof(m.digest), "%.*s:%s", (int)(slash - path - 6), path + 6,
                 slash + 1);
    }
    if (m.digest[0] && image_digest_check(m.digest, NULL) == 0) {
        memset(head, 0, sizeof(head));
        if (pread(fd, head, sizeof(head), (off_t)off) < 0)
            return berth_err_set(err, -errno, "read %s: %s", path, strerror(errno));
    } else {
        r = image_hash_range(fd, off, m.size, m.digest, head, sizeof(head), err);
        if (r < 0)
            return berth_err_prefix(err, r, path);
    }
    m.comp = image_sniff_compression(head, sizeof(head));
    m.path = strdup(path);
    grown = m.path ? realloc(s->members, (s->n_members + 1) * sizeof(*grown)) : NULL;
    if (!grown) {
        free(m.path);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    s->members = grown;
    s->members[s->n_members] = m;
    *ret = &s->members[s->n_members++];
    return 0;
}

/* The manifests index.json holds and their config digests, parsed once. */
static int scan_oci(struct session *s, berth_err_t *err)
{
    if (s->oci_scanned || !s->idx)
        return 0;
    s->oci = calloc(s->idx->n + 1, sizeof(*s->oci));
    if (!s->oci)
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < s->idx->n; i++) {
        const berth_descriptor_t *d = &s->idx->entries[i].desc;
        _cleanup_free_ char *buf = NULL;
        _cleanup_json_ json_t *doc = NULL;
        berth_descriptor_t cfg;
        size_t len;

        if (!image_mt_is_manifest(d->media_type))
            continue;
        /* Unreadable or malformed manifests are skipped: manifest.json is what counts. */
        if (image_loc_read_blob(s->loc, d, &buf, &len, NULL) < 0)
            continue;
        doc = json_loadb(buf, len, 0, NULL);
        if (!doc || image_desc_from_json(json_object_get(doc, "config"), &cfg, NULL) < 0)
            continue;
        s->oci[s->n_oci].desc = *d;
        snprintf(s->oci[s->n_oci].config, sizeof(s->oci[0].config), "%s", cfg.digest);
        s->n_oci++;
    }
    s->oci_scanned = 1;
    return 0;
}

static const char *layer_media_type(int comp)
{
    switch (comp) {
    case IMAGE_COMP_NONE:
        return IMAGE_MT_DOCKER_LAYER;
    case IMAGE_COMP_GZIP:
        return IMAGE_MT_DOCKER_LAYER_GZ;
    case IMAGE_COMP_ZSTD:
        return IMAGE_MT_OCI_LAYER_ZSTD;
    default:
        return NULL;
    }
}

/* Work out the manifest image @im resolves to: the saved one, or a synthesised one. */
static int image_target(struct session *s, struct image *im, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *layers = NULL;
    const struct member *m;
    char *text;
    int r;

    if (im->have_target)
        return 0;
    r = member_info(s, im->config, &m, err);
    if (r < 0)
        return berth_err_prefix(err, r, "Config");
    im->config_desc.struct_size = sizeof(im->config_desc);
    snprintf(im->config_desc.media_type, sizeof(im->config_desc.media_type), "%s",
             IMAGE_MT_DOCKER_CONFIG);
    snprintf(im->config_desc.digest, sizeof(im->config_desc.digest), "%s", m->digest);
    im->config_desc.size = (int64_t)m->size;

    r = scan_oci(s, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < s->n_oci; i++)
        if (strcmp(s->oci[i].config, im->config_desc.digest) == 0) {
            im->target = s->oci[i].desc;
            im->have_target = 1;
            return 0;
        }

    layers = json_array();
    if (!layers)
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < im->n_layers; i++) {
        const char *mt;
        r = member_info(s, im->layers[i], &m, err);
        if (r < 0)
            return berth_err_prefix(err, r, "Layers");
        mt = layer_media_type(m->comp);
        if (!mt)
            return berth_err_set(err, -ENOTSUP, "layer %s is compressed with xz or bzip2",
                                 im->layers[i]);
        if (json_array_append_new(layers, json_pack("{s:s,s:I,s:s}", "mediaType", mt, "size",
                                                    (json_int_t)m->size, "digest", m->digest)) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    doc = json_pack("{s:i,s:s,s:{s:s,s:I,s:s},s:O}", "schemaVersion", 2, "mediaType",
                    IMAGE_MT_DOCKER_MANIFEST, "config", "mediaType", IMAGE_MT_DOCKER_CONFIG, "size",
                    (json_int_t)im->config_desc.size, "digest", im->config_desc.digest, "layers",
                    layers);
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!text)
        return berth_err_set(err, -ENOMEM, "out of memory");
    im->target.struct_size = sizeof(im->target);
    snprintf(im->target.media_type, sizeof(im->target.media_type), "%s", IMAGE_MT_DOCKER_MANIFEST);
    r = image_hash_buf(text, strlen(text), im->target.digest, err);
    if (r < 0) {
        free(text);
        return r;
    }
    im->manifest = text;
    im->manifest_len = strlen(text);
    im->target.size = (int64_t)im->manifest_len;
    im->have_target = 1;
    return 0;
}

/* ---- ops ---- */

static int need_read(struct session *s, berth_err_t *err)
{
    return s->write ? berth_err_set(err, -EBADF, "docker-archive: session is open for writing") : 0;
}

static int resolve_image(struct session *s, struct image *im, berth_descriptor_t *ret_desc,
                         berth_err_t *err)
{
    int r = image_target(s, im, err);
    if (r < 0)
        return berth_err_prefix(err, r, image_loc_path(s->loc));
    *ret_desc = im->target;
    return 0;
}

static int archive_resolve(void *priv, void *session, const char *reference, uint32_t flags,
                           berth_descriptor_t *ret_desc, berth_err_t *err)
{
    struct session *s = session;
    const char *where, *digest;
    berth_descriptor_t d;
    int r = need_read(s, err);

    if (r < 0)
        return r;
    where = image_loc_path(s->loc);
    if (!s->has_manifest_json) {
        r = image_oci_resolve(s->idx, where, reference, &d, err);
        if (r < 0)
            return berth_err_prefix(err, r, "docker-archive");
        *ret_desc = d;
        return 0;
    }
    if (!reference) {
        if (s->n_images == 1)
            return resolve_image(s, &s->images[0], ret_desc, err);
        if (s->n_images == 0)
            return berth_err_set(err, -ENOENT, "docker-archive: %s holds no images", where);
        return berth_err_set(err, -EINVAL, "docker-archive: %s holds %zu images; name one", where,
                             s->n_images);
    }
    /* "@N": the N-th entry of manifest.json, as containers/image spells it. */
    if (reference[0] == '@' && reference[1] >= '0' && reference[1] <= '9') {
        char *end;
        unsigned long n = strtoul(reference + 1, &end, 10);
        if (*end || n >= s->n_images)
            return berth_err_set(err, -ENOENT, "docker-archive: no image %s in %s (%zu images)",
                                 reference, where, s->n_images);
        return resolve_image(s, &s->images[n], ret_desc, err);
    }
    digest = image_ref_digest(reference);
    for (size_t i = 0; i < s->n_images; i++) {
        struct image *im = &s->images[i];
        if (digest) {
            /* The image id (config digest) or the manifest digest. */
            r = image_target(s, im, err);
            if (r < 0)
                return berth_err_prefix(err, r, where);
            if (strcmp(digest, im->config_desc.digest) == 0 ||
                strcmp(digest, im->target.digest) == 0)
                return resolve_image(s, im, ret_desc, err);
            continue;
        }
        for (size_t t = 0; t < im->n_tags; t++)
            if (image_ref_equal(reference, im->tags[t]))
                return resolve_image(s, im, ret_desc, err);
    }
    return berth_err_set(err, -ENOENT, "docker-archive: no image %s in %s", reference, where);
}

static int archive_fetch(void *priv, void *session, const berth_descriptor_t *desc, int64_t offset,
                         uint32_t flags, berth_stream_t **ret_stream, berth_err_t *err)
{
    struct session *s = session;
    const struct member *m;
    char path[200];
    int r = need_read(s, err);

    if (r < 0)
        return r;
    r = image_digest_check(desc->digest, err);
    if (r < 0)
        return berth_err_prefix(err, r, "docker-archive");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->n_images; i++) {
            const struct image *im = &s->images[i];
            if (im->manifest && strcmp(im->target.digest, desc->digest) == 0) {
                if (offset < 0 || (uint64_t)offset > im->manifest_len)
                    return berth_err_set(err, -EINVAL, "docker-archive: offset %lld is outside %s",
                                         (long long)offset, desc->digest);
                return image_stream_from_mem(im->manifest + offset,
                                             im->manifest_len - (size_t)offset, ret_stream, err);
            }
        }
        m = member_by_digest(s, desc->digest);
        if (m) {
            if (desc->size >= 0 && (uint64_t)desc->size != m->size)
                return berth_err_set(
                    err, -EIO, "docker-archive: %s is %llu bytes, its descriptor says %lld",
                    desc->digest, (unsigned long long)m->size, (long long)desc->size);
            r = image_loc_stream(s->loc, m->path, offset, ret_stream, err);
            return r < 0 ? berth_err_prefix(err, r, "docker-archive") : 0;
        }
        image_digest_path(desc->digest, path, sizeof(path), NULL);
        if (image_loc_exists(s->loc, path)) {
            r = image_loc_fetch_blob(s->loc, desc, offset, ret_stream, err);
            return r < 0 ? berth_err_prefix(err, r, "docker-archive") : 0;
        }
        /* Not seen yet: work out every image's manifest (hashing its members), then look again. */
        for (size_t i = 0; pass == 0 && i < s->n_images; i++) {
            r = image_target(s, &s->images[i], err);
            if (r < 0)
                return berth_err_prefix(err, r, "docker-archive");
        }
    }
    return berth_err_set(err, -ENOENT, "docker-archive: blob %s is not in %s", desc->digest,
                         image_loc_path(s->loc));
}

static int archive_list(void *priv, void *session, uint32_t flags, berth_image_list_fn fn,
                        void *userdata, berth_err_t *err)
{
    struct session *s = session;
    char full[IMAGE_REF_MAX];
    int r = need_read(s, err);

    if (r < 0)
        return r;
    if (!s->has_manifest_json)
        return image_oci_list(s->idx, fn, userdata);
    for (size_t i = 0; i < s->n_images; i++) {
        struct image *im = &s->images[i];
        if (im->n_tags == 0)
            continue;
        r = image_target(s, im, err);
        if (r < 0)
            return berth_err_prefix(err, r, image_loc_path(s->loc));
        for (size_t t = 0; t < im->n_tags; t++) {
            const char *name =
                image_ref_normalize(im->tags[t], full, sizeof(full)) == 0 ? full : im->tags[t];
            if (fn(name, &im->target, userdata) != 0)
                return 0;
        }
    }
    return 0;
}

/* ---- writing ---- */

static int open_write(struct session *s, const char *location, berth_err_t *err)
{
    struct stat sb;
    int r;

    if (stat(location, &sb) == 0 && S_ISDIR(sb.st_mode))
        return berth_err_set(err, -EISDIR, "%s is a directory; docker-archive writes a tar file",
                             location);
    s->target = strdup(location);
    if (!s->target)
        return berth_err_set(err, -ENOMEM, "out of memory");
    r = image_stage_dir_new(location, s->stage_dir, sizeof(s->stage_dir), err);
    if (r < 0)
        return r;
    return image_stage_new(s->stage_dir, &s->stage, err);
}

static int put_ref(struct session *s, const char *reference, const berth_descriptor_t *desc,
                   berth_err_t *err)
{
    char full[IMAGE_REF_MAX];
    struct ref *grown;
    char *copy = NULL;

    if (!image_stage_has(s->stage, desc->digest))
        return berth_err_set(err, -ENOENT, "manifest %s was not put", desc->digest);
    if (!image_mt_is_manifest(desc->media_type) && !image_mt_is_index(desc->media_type))
        return berth_err_set(err, -EINVAL, "%s is a %s, not a manifest or an index", desc->digest,
                             desc->media_type);
    if (reference) {
        if (image_ref_normalize(reference, full, sizeof(full)) < 0)
            return berth_err_set(err, -EINVAL, "invalid reference \"%.200s\"", reference);
        copy = strdup(full);
        if (!copy)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    /* One entry per name (a later put_ref moves it) and per unnamed manifest. */
    for (size_t i = 0; i < s->n_refs; i++) {
        struct ref *f = &s->refs[i];
        if ((copy && f->full && strcmp(f->full, copy) == 0) ||
            (!copy && !f->full && strcmp(f->desc.digest, desc->digest) == 0)) {
            free(f->full);
            f->full = copy;
            f->desc = *desc;
            return 0;
        }
    }
    grown = realloc(s->refs, (s->n_refs + 1) * sizeof(*grown));
    if (!grown) {
        free(copy);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    s->refs = grown;
    s->refs[s->n_refs].full = copy;
    s->refs[s->n_refs].desc = *desc;
    s->n_refs++;
    return 0;
}

/* Parse staged manifest @digest into *ret_doc, checking it is one. */
static int staged_manifest(struct session *s, const char *digest, json_t **ret_doc,
                           berth_err_t *err)
{
    _cleanup_free_ char *buf = NULL;
    json_error_t jerr;
    json_t *doc;
    size_t len;
    int r = image_stage_read(s->stage, digest, &buf, &len, err);

    if (r < 0)
        return r;
    doc = json_loadb(buf, len, 0, &jerr);
    if (!doc)
        return berth_err_set(err, -EINVAL, "%s: malformed JSON: %s", digest, jerr.text);
    *ret_doc = doc;
    return 0;
}

/*
 * The manifest.json entry for image @desc: its config and layers as blob
 * paths. For an index, the first manifest of it whose blobs were all put
 * (the core puts the platform it pulled).
 */
static int manifest_item(struct session *s, const berth_descriptor_t *desc, json_t **ret_item,
                         char *ret_top_layer, size_t top_len, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *item = NULL;
    berth_descriptor_t cfg, l;
    char path[200];
    json_t *layers, *d;
    size_t i;
    int r;

    r = staged_manifest(s, desc->digest, &doc, err);
    if (r < 0)
        return r;
    if (image_mt_is_index(desc->media_type)) {
        json_array_foreach (json_object_get(doc, "manifests"), i, d) {
            berth_descriptor_t child;
            if (image_desc_from_json(d, &child, NULL) == 0 &&
                image_mt_is_manifest(child.media_type) && image_stage_has(s->stage, child.digest) &&
                manifest_item(s, &child, ret_item, ret_top_layer, top_len, NULL) == 0)
                return 0;
        }
        return berth_err_set(err, -ENOENT, "index %s: none of its manifests was put whole",
                             desc->digest);
    }
    r = image_desc_from_json(json_object_get(doc, "config"), &cfg, err);
    if (r < 0)
        return berth_err_prefix(err, r, desc->digest);
    item = json_object();
    layers = json_array();
    if (!item || !layers || json_object_set_new(item, "Layers", layers) < 0) {
        json_decref(layers);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    if (!image_stage_has(s->stage, cfg.digest))
        return berth_err_set(err, -ENOENT, "manifest %s: config %s was not put", desc->digest,
                             cfg.digest);
    image_digest_path(cfg.digest, path, sizeof(path), NULL);
    if (json_object_set_new(item, "Config", json_string(path)) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    ret_top_layer[0] = '\0';
    json_array_foreach (json_object_get(doc, "layers"), i, d) {
        r = image_desc_from_json(d, &l, err);
        if (r < 0)
            return berth_err_prefix(err, r, desc->digest);
        if (!image_stage_has(s->stage, l.digest))
            return berth_err_set(err, -ENOENT, "manifest %s: layer %s was not put", desc->digest,
                                 l.digest);
        image_digest_path(l.digest, path, sizeof(path), NULL);
        if (json_array_append_new(layers, json_string(path)) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        snprintf(ret_top_layer, top_len, "%s", l.digest + 7);
    }
    *ret_item = TAKE_PTR(item);
    return 0;
}

/* index.json, manifest.json and repositories for what was put. */
static int build_toc(struct session *s, json_t *index, json_t *manifest, json_t *repos,
                     berth_err_t *err)
{
    json_t *manifests = json_object_get(index, "manifests");
    int r;

    for (size_t i = 0; i < s->n_refs; i++) {
        const struct ref *f = &s->refs[i];
        json_t *e = image_desc_to_json(&f->desc);
        char tag[160] = "";

        if (!e || json_array_append_new(manifests, e) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        if (f->full) {
            image_ref_tag(f->full, tag, sizeof(tag));
            /* As moby annotates: the full name, and the tag as the OCI ref name. */
            json_t *ann = json_pack("{s:s}", IMAGE_ANNOT_IMAGE_NAME, f->full);
            if (!ann ||
                (tag[0] && json_object_set_new(ann, IMAGE_ANNOT_REF_NAME, json_string(tag)) < 0) ||
                json_object_set_new(e, "annotations", ann) < 0)
                return berth_err_set(err, -ENOMEM, "out of memory");
        }
    }
    /* manifest.json: one entry per image, in the order images were first named. */
    for (size_t i = 0; i < s->n_refs; i++) {
        _cleanup_json_ json_t *item = NULL;
        json_t *tags;
        char top[140];
        int seen = 0;

        for (size_t j = 0; j < i; j++)
            if (strcmp(s->refs[j].desc.digest, s->refs[i].desc.digest) == 0)
                seen = 1;
        if (seen)
            continue;
        r = manifest_item(s, &s->refs[i].desc, &item, top, sizeof(top), err);
        if (r < 0)
            return r;
        tags = json_array();
        if (!tags || json_object_set_new(item, "RepoTags", tags) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        for (size_t j = i; j < s->n_refs; j++) {
            const struct ref *f = &s->refs[j];
            char fam[IMAGE_REF_MAX], repo[IMAGE_REF_MAX], tag[160];
            json_t *per;

            if (!f->full || strcmp(f->desc.digest, s->refs[i].desc.digest) != 0)
                continue;
            /* Digest-only names ("repo@sha256:...") are not RepoTags, as in moby. */
            image_ref_tag(f->full, tag, sizeof(tag));
            if (!tag[0] || strchr(f->full, '@'))
                continue;
            image_ref_familiar(f->full, fam, sizeof(fam));
            image_ref_repo(f->full, 1, repo, sizeof(repo));
            if (json_array_append_new(tags, json_string(fam)) < 0)
                return berth_err_set(err, -ENOMEM, "out of memory");
            /*
             * repositories maps each tag to the image's top layer ID. moby (>= 25)
             * writes the hex of the top layer blob's name, which is what we write
             * too; an image without layers has no entry, as in moby.
             */
            if (!top[0])
                continue;
            per = json_object_get(repos, repo);
            if (!per && json_object_set_new(repos, repo, per = json_object()) < 0)
                return berth_err_set(err, -ENOMEM, "out of memory");
            if (!per || json_object_set_new(per, tag, json_string(top)) < 0)
                return berth_err_set(err, -ENOMEM, "out of memory");
        }
        if (json_array_append(manifest, item) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

static char *dump_line(const json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT), *line;
    size_t n;
    if (!text)
        return NULL;
    n = strlen(text);
    line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

static int commit_write(struct session *s, berth_err_t *err)
{
    _cleanup_json_ json_t *index = NULL, *manifest = NULL, *repos = NULL;
    _cleanup_free_ char *t_index = NULL, *t_manifest = NULL, *t_repos = NULL;
    image_tar_list_t list = { 0 };
    int r;

    index = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", IMAGE_MT_OCI_INDEX,
                      "manifests");
    manifest = json_array();
    repos = json_object();
    if (!index || !manifest || !repos)
        return berth_err_set(err, -ENOMEM, "out of memory");
    r = build_toc(s, index, manifest, repos, err);
    if (r < 0)
        return r;
    t_index = dump_line(index);
    t_manifest = dump_line(manifest);
    t_repos = dump_line(repos);
    if (!t_index || !t_manifest || !t_repos)
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* Members in name order, as moby's tar of its export directory. */
    r = image_tar_list_add_blobs(&list, s->stage, err);
    if (r == 0)
        r = image_tar_list_add(&list, "index.json", 0, NULL, t_index, strlen(t_index), err);
    if (r == 0)
        r = image_tar_list_add(&list, "manifest.json", 0, NULL, t_manifest, strlen(t_manifest),
                               err);
    if (r == 0)
        r = image_tar_list_add(&list, "oci-layout", 0, NULL, IMAGE_OCI_LAYOUT_TEXT,
                               strlen(IMAGE_OCI_LAYOUT_TEXT), err);
    if (r == 0 && json_object_size(repos) > 0)
        r = image_tar_list_add(&list, "repositories", 0, NULL, t_repos, strlen(t_repos), err);
    if (r == 0)
        r = image_tar_write(s->target, list.items, list.n, err);
    image_tar_list_release(&list);
    return r;
}

static int archive_open(void *priv, const berth_image_location_t *loc, uint32_t flags,
                        void **ret_session, berth_err_t *err)
{
    struct session *s;
    int r;

    if (!loc || !loc->location || !*loc->location)
        return berth_err_set(err, -EINVAL, "docker-archive: no location given");
    s = calloc(1, sizeof(*s));
    if (!s)
        return berth_err_set(err, -ENOMEM, "docker-archive: out of memory");
    s->write = ((flags | loc->flags) & BERTH_IMAGE_OPEN_WRITE) != 0;
    r = s->write ? open_write(s, loc->location, err) : open_read(s, loc->location, err);
    if (r < 0) {
        session_free(s);
        return berth_err_prefix(err, r, "docker-archive");
    }
    *ret_session = s;
    return 0;
}

static void archive_close(void *priv, void *session)
{
    session_free(session);
}

static int need_write(struct session *s, berth_err_t *err)
{
    if (!s->write)
        return berth_err_set(err, -EBADF, "docker-archive: session is open for reading");
    if (s->committed)
        return berth_err_set(err, -EINVAL, "docker-archive: session is already committed");
    return 0;
}

static int archive_put_blob(void *priv, void *session, const berth_descriptor_t *desc,
                            berth_stream_t *content, uint32_t flags, berth_err_t *err)
{
    struct session *s = session;
    int r = need_write(s, err);

    if (r == 0)
        r = image_stage_put(s->stage, desc, content, err);
    return r < 0 ? berth_err_prefix(err, r, "docker-archive") : 0;
}

static int archive_put_ref(void *priv, void *session, const char *reference,
                           const berth_descriptor_t *desc, uint32_t flags, berth_err_t *err)
{
    struct session *s = session;
    int r = need_write(s, err);

    if (r == 0)
        r = put_ref(s, reference, desc, err);
    return r < 0 ? berth_err_prefix(err, r, "docker-archive") : 0;
}

static int archive_commit(void *priv, void *session, uint32_t flags, berth_err_t *err)
{
    struct session *s = session;
    int r = need_write(s, err);

    if (r == 0)
        r = commit_write(s, err);
    if (r < 0)
        return berth_err_prefix(err, r, "docker-archive: commit");
    s->committed = 1;
    return 0;
}

/* Streams are pread() on their own descriptor, so they may be read from several threads. */
#define ARCHIVE_CAPS                                                                               \
    (BERTH_IMAGE_CAP_PULL | BERTH_IMAGE_CAP_PUSH | BERTH_IMAGE_CAP_LIST |                          \
     BERTH_IMAGE_CAP_PARALLEL_STREAMS)

/* Files and tars need nothing from the host: always usable. */
static int archive_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    *ret_caps = ARCHIVE_CAPS;
    return 0;
}

static int archive_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                        berth_err_t *err)
{
    *ret_priv = NULL;
    return 0;
}

static const berth_image_ops_t archive_ops = {
    BERTH_OPS_INIT(berth_image_ops_t),
    .probe = archive_probe,
    .match = archive_match,
    .open = archive_open,
    .close = archive_close,
    .resolve = archive_resolve,
    .fetch = archive_fetch,
    .list = archive_list,
    .put_blob = archive_put_blob,
    .put_ref = archive_put_ref,
    .commit = archive_commit,
};

static const berth_plugin_desc_t archive_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_IMAGE,
    .name = "docker-archive",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "docker save / docker load tars (legacy and Engine >= 25 forms)",
    .capabilities = ARCHIVE_CAPS,
    .init = archive_init,
    .ops = &archive_ops,
};

BERTH_PLUGIN_DEFINE(archive_desc)
