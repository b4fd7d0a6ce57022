/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public image API (berth/engine.h, "images"): pull, load, save, list,
 * inspect, history, tag, rmi, prune, system df, login and logout.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "berth-build-config.h"
#include <berth/engine.h>

#include "content.h"
#include "credentials.h"
#include "engine-internal.h"
#include "image-import.h"
#include "images.h"
#include "reference.h"
#include "util.h"
#include "volume-api.h"

#define FULL_MAX (2 * BERTH_REF_NAME_MAX + 80)

static berth_driver_t *image_driver(berth_engine_t *e, const char *name)
{
    return berth__engine_driver(e, BERTH_KIND_IMAGE, name);
}

/* The config's "drivers": {"registry": {...}} section, or NULL. */
static json_t *registry_cfg(berth_engine_t *e)
{
    return json_object_get(berth__engine_config(e)->drivers, "registry");
}

static int need_store(berth_engine_t *e, berth_err_t *err)
{
    if (!berth__engine_store(e))
        return berth_err_set(err, -ENOTSUP, "engine opened without a store");
    return 0;
}

static void emit(const berth_image_opts_t *o, const char *id, const char *status)
{
    berth_progress_t ev = { id, status, -1, -1 };
    if (o && o->progress)
        o->progress(o->progress_userdata, &ev);
}

/* ---- pull ---- */

/* docker's closing lines of a pull: the digest pulled, and whether anything was new. */
static void emit_pull_status(berth_engine_t *e, const berth_image_opts_t *opts, const char *id,
                             const char *full, int downloaded)
{
    char fam[2 * BERTH_REF_NAME_MAX + 80], msg[2 * BERTH_REF_NAME_MAX + 160];
    _cleanup_json_ json_t *img = NULL;
    berth_txn_t *txn = NULL;

    if (!opts || !opts->progress)
        return;
    berth__ref_familiar(full, fam, sizeof(fam));
    if (berth__store_txn_begin(berth__engine_store(e), 0, &txn, NULL) == 0) {
        if (berth__image_get_id_in(txn, id, &img, NULL) == 0) {
            snprintf(msg, sizeof(msg), "Digest: %s",
                     json_string_value(json_object_get(json_object_get(img, "target"), "digest")));
            emit(opts, NULL, msg);
        }
        berth__store_txn_abort(txn);
    }
    snprintf(msg, sizeof(msg), "Status: %s for %s",
             downloaded ? "Downloaded newer image" : "Image is up to date", fam);
    emit(opts, NULL, msg);
}

/*
 * Images shipped with berth (the demo image) are OCI layouts under
 * BERTH_IMAGESDIR/<name> ($BERTH_IMAGES_DIR overrides it for uninstalled
 * builds). A pull of docker.io/library/<name> finds them there first, so
 * they run with no network, the way Windows hosts carry their base images.
 */
static int bundled_layout(const berth_ref_t *ref, char *buf, size_t len)
{
    const char *dir = getenv("BERTH_IMAGES_DIR");
    const char *name;
    struct stat st;

    if (strcmp(ref->domain, "docker.io") != 0 || strncmp(ref->path, "library/", 8) != 0 ||
        ref->digest[0])
        return 0;
    name = ref->path + 8;
    if (snprintf(buf, len, "%s/%s", dir && *dir ? dir : BERTH_IMAGESDIR, name) >= (int)len)
        return 0;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode);
}

BERTH_API int berth_image_pull(berth_engine_t *e, const char *name, const berth_image_opts_t *opts,
                               char ret_id[72], berth_err_t *err)
{
    char repo[FULL_MAX], full[FULL_MAX], fam[FULL_MAX], msg[2 * FULL_MAX + 64];
    char bundled[PATH_MAX];
    _cleanup_free_ char *options = NULL;
    berth_image_location_t loc = { .struct_size = sizeof(loc), .options_json = "{}" };
    const berth_image_ops_t *ops;
    berth_import_req_t req = { .action = "pull", .opts = opts };
    berth_driver_t *drv = NULL;
    char *tags[2] = { NULL, NULL };
    void *session = NULL;
    berth_ref_t ref;
    char id[72];
    int r, downloaded = 0;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__ref_parse(name, &ref, err)) < 0)
        return r;
    berth__ref_default_tag(&ref);
    berth__ref_repo(&ref, repo, sizeof(repo));
    berth__ref_full(&ref, full, sizeof(full));
    berth__ref_familiar(full, fam, sizeof(fam));
    req.src_ref = ref.digest[0] ? ref.digest : ref.tag;
    /* A pull by digest names no tag. */
    if (!ref.digest[0])
        tags[0] = full;
    req.tags = tags;
    req.ret_downloaded = &downloaded;

    /* The image shipped with berth, or the registry. */
    if (bundled_layout(&ref, bundled, sizeof(bundled)) &&
        (drv = image_driver(e, "oci-layout")) != NULL) {
        loc.location = bundled;
        snprintf(msg, sizeof(msg), "Using the image bundled with berth");
    } else {
        drv = image_driver(e, "registry");
        if (!drv)
            return berth_err_set(err, -ENOTSUP, "the registry image driver is not loaded");
        if ((r = berth__registry_options(ref.domain, opts ? opts->auth_json : NULL,
                                         opts ? opts->platform : NULL, registry_cfg(e), &options,
                                         err)) < 0)
            return r;
        loc.location = repo;
        loc.options_json = options;
        req.repo = repo;
        snprintf(msg, sizeof(msg), "%s: Pulling from %s", req.src_ref, fam);
    }
    ops = drv->ops;
    if ((r = ops->open(drv->priv, &loc, 0, &session, err)) < 0)
        return r;
    req.source = drv;
    req.session = session;
    emit(opts, NULL, msg);
    r = berth__image_import(e, &req, id, err);
    ops->close(drv->priv, session);
    if (r < 0)
        return r;
    emit_pull_status(e, opts, id, full, downloaded);
    if (ret_id)
        memcpy(ret_id, id, 72);
    return 0;
}

/* ---- load ---- */

struct list_ctx {
    char **refs;
};

static int list_visit(const char *reference, const berth_descriptor_t *desc, void *userdata)
{
    struct list_ctx *c = userdata;
    return berth__strv_push(&c->refs, reference) < 0 ? -ENOMEM : 0;
}

BERTH_API int berth_image_load(berth_engine_t *e, const char *path, const berth_image_opts_t *opts,
                               json_t **ret_json, berth_err_t *err)
{
    static const char *const order[] = { "docker-archive", "oci-layout" };
    berth_image_location_t loc = { .struct_size = sizeof(loc),
                                   .location = path,
                                   .options_json = "{}" };
    _cleanup_json_ json_t *out = json_array();
    struct list_ctx lc = { berth__strv_new() };
    const berth_image_ops_t *ops = NULL;
    berth_driver_t *drv = NULL;
    void *session = NULL;
    struct stat st;
    int r;

    if ((r = need_store(e, err)) < 0)
        goto out;
    if (!out || !lc.refs) {
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (stat(path, &st) < 0) {
        r = berth_err_set(err, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(order) && !drv; i++) {
        berth_driver_t *d = image_driver(e, order[i]);
        if (d && ((const berth_image_ops_t *)d->ops)->match(d->priv, path, 0) == 0)
            drv = d;
    }
    if (!drv) {
        r = berth_err_set(err, -EINVAL,
                          "%s: not an image archive (neither a docker save tar nor an OCI layout)",
                          path);
        goto out;
    }
    ops = drv->ops;
    if ((r = ops->open(drv->priv, &loc, 0, &session, err)) < 0)
        goto out;
    if (BERTH_OPS_HAS(ops, berth_image_ops_t, list) &&
        (r = ops->list(drv->priv, session, 0, list_visit, &lc, err)) < 0)
        goto out;
    if (!lc.refs[0]) {
        /* An archive without names: its only image, untagged. */
        berth_import_req_t req = {
            .source = drv, .session = session, .action = "load", .opts = opts
        };
        char id[72];
        if ((r = berth__image_import(e, &req, id, err)) < 0)
            goto out;
        json_array_append_new(out, json_pack("{ssso}", "id", id, "name", json_null()));
    }
    for (char **p = lc.refs; *p; p++) {
        char full[FULL_MAX], fam[FULL_MAX], id[72];
        char *tags[2] = { full, NULL };
        berth_import_req_t req = { .source = drv,
                                   .session = session,
                                   .src_ref = *p,
                                   .tags = tags,
                                   .action = "load",
                                   .opts = opts };
        berth_ref_t ref;

        /* A bare tag of an OCI layout ("latest") is not a repository name. */
        if (strpbrk(*p, "/:@") && berth__ref_parse(*p, &ref, NULL) == 0) {
            berth__ref_default_tag(&ref);
            ref.digest[0] = '\0';
            berth__ref_full(&ref, full, sizeof(full));
        } else {
            /* A bare tag of an OCI layout ("latest"): keep the image, untagged. */
            req.tags = NULL;
            full[0] = '\0';
        }
        if ((r = berth__image_import(e, &req, id, err)) < 0) {
            berth_err_prefix(err, r, *p);
            goto out;
        }
        berth__ref_familiar(full, fam, sizeof(fam));
        json_array_append_new(out, full[0] ? json_pack("{ssss}", "id", id, "name", fam)
                                           : json_pack("{ssso}", "id", id, "name", json_null()));
    }
    if (ret_json)
        *ret_json = TAKE_PTR(out);
    r = 0;
out:
    if (session)
        ops->close(drv->priv, session);
    berth__strv_free(lc.refs);
    return r;
}

/* ---- save ---- */

/* A descriptor as image records keep it ({"mediaType","digest","size"}). */
static void desc_from_record(json_t *j, berth_descriptor_t *d)
{
    memset(d, 0, sizeof(*d));
    d->struct_size = sizeof(*d);
    snprintf(d->media_type, sizeof(d->media_type), "%s",
             json_string_value(json_object_get(j, "mediaType")) ?: "");
    snprintf(d->digest, sizeof(d->digest), "%s",
             json_string_value(json_object_get(j, "digest")) ?: "");
    d->size = json_integer_value(json_object_get(j, "size"));
}

static int put_content(berth_engine_t *e, berth_driver_t *drv, void *session, json_t *desc,
                       berth_err_t *err)
{
    const berth_image_ops_t *ops = drv->ops;
    berth_descriptor_t d;
    berth_content_t *cs;
    berth_stream_t *s = NULL;
    int r;

    desc_from_record(desc, &d);
    if ((r = berth__engine_content(e, &cs, err)) < 0)
        return r;
    if ((r = berth__content_reader(cs, d.digest, &s, err)) < 0)
        return r;
    r = ops->put_blob(drv->priv, session, &d, s, 0, err);
    s->close(s);
    return r;
}

/*
 * One "save" event per image written, as Docker logs them (the image id,
 * attribute name: the reference as given, familiar), in one transaction. The
 * archive is written whatever happens here: a failure is not the save's.
 */
static void save_events(berth_engine_t *e, json_t *images, const char *const *refs, size_t n)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;

    if (berth__store_txn_begin(berth__engine_store(e), 1, &txn, NULL) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(images, i), "id"));
        _cleanup_json_ json_t *attrs = NULL;
        char fam[FULL_MAX];

        if (berth__ref_familiar(refs[i], fam, sizeof(fam)) < 0)
            snprintf(fam, sizeof(fam), "%s", refs[i]);
        attrs = json_pack("{s:s}", "name", fam);
        if (!id || berth__store_event_append(txn, "image", "save", id, attrs, NULL, NULL) < 0)
            return;
    }
    berth__store_txn_commit(TAKE_PTR(txn), NULL);
}

BERTH_API int berth_image_save(berth_engine_t *e, const char *const *refs, size_t n,
                               const char *path, const char *format, const berth_image_opts_t *opts,
                               berth_err_t *err)
{
    const char *dname = "docker-archive";
    char target[PATH_MAX];
    berth_image_location_t loc = { .struct_size = sizeof(loc),
                                   .location = target,
                                   .options_json = "{}" };
    _cleanup_json_ json_t *images = json_array();
    const berth_image_ops_t *ops;
    berth_driver_t *drv;
    berth_txn_t *txn = NULL;
    void *session = NULL;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if (n == 0)
        return berth_err_set(err, -EINVAL, "no image to save");
    if (format && strcmp(format, "docker-archive") != 0) {
        if (strcmp(format, "oci-archive") != 0 && strcmp(format, "oci-dir") != 0)
            return berth_err_set(
                err, -EINVAL, "unknown save format \"%s\" (docker-archive, oci-archive, oci-dir)",
                format);
        dname = "oci-layout";
    }
    /* oci-layout chooses tar or directory by the name unless told. */
    snprintf(target, sizeof(target), "%s", path);
    if (format && strcmp(format, "oci-archive") == 0)
        loc.options_json = "{\"archive\": true}";
    else if (format && strcmp(format, "oci-dir") == 0)
        loc.options_json = "{\"archive\": false}";
    drv = image_driver(e, dname);
    if (!drv)
        return berth_err_set(err, -ENOTSUP, "the %s image driver is not loaded", dname);
    ops = drv->ops;
    if (!BERTH_OPS_HAS(ops, berth_image_ops_t, put_blob) ||
        !BERTH_OPS_HAS(ops, berth_image_ops_t, commit))
        return berth_err_set(err, -ENOTSUP, "the %s image driver can't write", dname);

    /* Resolve every name first: nothing is written for a typo. */
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        json_t *img = NULL;
        if ((r = berth__image_get_in(txn, refs[i], &img, err)) < 0) {
            berth__store_txn_abort(txn);
            return r;
        }
        json_array_append_new(images, img);
    }
    berth__store_txn_abort(txn);

    if ((r = ops->open(drv->priv, &loc, BERTH_IMAGE_OPEN_WRITE, &session, err)) < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        json_t *img = json_array_get(images, i), *l, *mdesc = json_object_get(img, "manifest");
        berth_descriptor_t d;
        berth_ref_t ref;
        char full[FULL_MAX];
        const char *name = NULL;
        size_t k;

        emit(opts, NULL, refs[i]);
        json_array_foreach (json_object_get(img, "layers"), k, l) {
            if ((r = put_content(e, drv, session, l, err)) < 0)
                goto out;
        }
        if ((r = put_content(e, drv, session, json_object_get(img, "config"), err)) < 0 ||
            (r = put_content(e, drv, session, mdesc, err)) < 0)
            goto out;
        desc_from_record(mdesc, &d);
        /* A name keeps its tag; an id saves the image untagged, as docker save does. */
        if (berth__ref_parse(refs[i], &ref, NULL) == 0 && !ref.digest[0] &&
            strncmp(refs[i], "sha256:", 7) != 0) {
            berth__ref_default_tag(&ref);
            berth__ref_full(&ref, full, sizeof(full));
            json_t *v;
            json_array_foreach (json_object_get(img, "repo_tags"), k, v) {
                if (strcmp(json_string_value(v), full) == 0)
                    name = full;
            }
        }
        if ((r = ops->put_ref(drv->priv, session, name, &d, 0, err)) < 0)
            goto out;
    }
    r = ops->commit(drv->priv, session, 0, err);
    if (r == 0)
        save_events(e, images, refs, n);
out:
    ops->close(drv->priv, session);
    return r;
}

/* ---- list, inspect, history ---- */

static int64_t created_seconds(const char *rfc3339)
{
    struct tm tm = { 0 };
    const char *end;

    if (!rfc3339 || !*rfc3339)
        return 0;
    end = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    return (int64_t)timegm(&tm);
}

static json_t *familiar_array(json_t *arr)
{
    json_t *out = json_array(), *v;
    size_t i;

    json_array_foreach (arr, i, v) {
        char fam[FULL_MAX];
        berth__ref_familiar(json_string_value(v), fam, sizeof(fam));
        json_array_append_new(out, json_string(fam));
    }
    return out;
}

struct count_ctx {
    json_t *counts; /* image id -> number of containers */
};

static int count_visit(const char *key, json_t *doc, void *userdata)
{
    struct count_ctx *c = userdata;
    const char *img = json_string_value(json_object_get(doc, "image_id"));
    if (img) {
        json_int_t n = json_integer_value(json_object_get(c->counts, img));
        json_object_set_new(c->counts, img, json_integer(n + 1));
    }
    return 0;
}

/* Every image record, and in @cc how many containers use each (one read transaction). */
static int images_and_users(berth_engine_t *e, json_t **ret_imgs, struct count_ctx *cc,
                            berth_err_t *err)
{
    berth_txn_t *txn = NULL;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__image_list_in(txn, ret_imgs, err);
    if (r == 0)
        r = berth__store_walk(txn, BERTH_DB_CONTAINERS, NULL, count_visit, cc, err);
    berth__store_txn_abort(txn);
    return r;
}

static int load_config(berth_engine_t *e, json_t *img, json_t **ret, berth_err_t *err)
{
    const char *cd = json_string_value(json_object_get(json_object_get(img, "config"), "digest"));
    _cleanup_free_ char *buf = NULL;
    berth_content_t *cs;
    json_error_t je;
    size_t len;
    int r;

    if ((r = berth__engine_content(e, &cs, err)) < 0)
        return r;
    if ((r = berth__content_read_all(cs, cd, 8u << 20, &buf, &len, err)) < 0)
        return berth_err_prefix(err, r, "image config");
    *ret = json_loadb(buf, len, 0, &je);
    if (!*ret)
        return berth_err_set(err, -EBADMSG, "image config %s: %s", cd, je.text);
    return 0;
}

BERTH_API int berth_image_list(berth_engine_t *e, uint32_t flags, json_t **ret_json,
                               berth_err_t *err)
{
    _cleanup_json_ json_t *imgs = NULL, *out = json_array();
    struct count_ctx cc = { json_object() };
    json_t *img;
    size_t i;
    int r;

    if ((r = images_and_users(e, &imgs, &cc, err)) < 0)
        goto out;
    json_array_foreach (imgs, i, img) {
        const char *id = json_string_value(json_object_get(img, "id"));
        _cleanup_json_ json_t *cfg = NULL;
        json_t *labels = NULL;
        if (load_config(e, img, &cfg, NULL) == 0)
            labels = json_object_get(json_object_get(cfg, "config"), "Labels");
        json_array_append_new(
            out, json_pack("{sssssososIsIsIsOsI}", "Id", id, "ParentId", "", "RepoTags",
                           familiar_array(json_object_get(img, "repo_tags")), "RepoDigests",
                           familiar_array(json_object_get(img, "repo_digests")), "Created",
                           (json_int_t)created_seconds(
                               json_string_value(json_object_get(img, "created"))),
                           "Size", json_integer_value(json_object_get(img, "size")), "SharedSize",
                           (json_int_t)-1, "Labels", json_is_object(labels) ? labels : json_null(),
                           "Containers", json_integer_value(json_object_get(cc.counts, id))));
    }
    *ret_json = TAKE_PTR(out);
    r = 0;
out:
    json_decref(cc.counts);
    return r;
}

BERTH_API int berth_image_inspect(berth_engine_t *e, const char *ref, json_t **ret_json,
                                  berth_err_t *err)
{
    _cleanup_json_ json_t *img = NULL, *cfg = NULL, *layers = json_array();
    berth_txn_t *txn = NULL;
    json_t *l;
    size_t i;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__image_get_in(txn, ref, &img, err);
    berth__store_txn_abort(txn);
    if (r < 0)
        return r;
    if ((r = load_config(e, img, &cfg, err)) < 0)
        return r;
    json_array_foreach (json_object_get(img, "layers"), i, l)
        json_array_append(layers, json_object_get(l, "diff_id"));
    {
        json_t *o = json_object(), *v;
        json_int_t size = json_integer_value(json_object_get(img, "size"));
        const char *str[][2] = {
            { "Parent", "" },
            { "Comment", json_string_value(json_object_get(cfg, "comment")) },
            { "Created", json_string_value(json_object_get(img, "created")) },
            { "Author", json_string_value(json_object_get(cfg, "author")) },
            { "Architecture", json_string_value(json_object_get(img, "architecture")) },
            { "Variant", json_string_value(json_object_get(img, "variant")) },
            { "Os", json_string_value(json_object_get(img, "os")) },
        };
        if (!o)
            return berth_err_set(err, -ENOMEM, "out of memory");
        json_object_set(o, "Id", json_object_get(img, "id"));
        json_object_set_new(o, "RepoTags", familiar_array(json_object_get(img, "repo_tags")));
        json_object_set_new(o, "RepoDigests", familiar_array(json_object_get(img, "repo_digests")));
        for (i = 0; i < BERTH_ARRAY_SIZE(str); i++)
            json_object_set_new(o, str[i][0], json_string(str[i][1] ? str[i][1] : ""));
        /* A time the docker client parses: none is Go's zero time, as Docker writes it. */
        if (!*json_string_value(json_object_get(o, "Created")))
            json_object_set_new(o, "Created", json_string("0001-01-01T00:00:00Z"));
        v = json_object_get(cfg, "config");
        json_object_set_new(o, "Config", json_is_object(v) ? json_incref(v) : json_object());
        json_object_set_new(o, "Size", json_integer(size));
        json_object_set_new(o, "VirtualSize", json_integer(size));
        json_object_set_new(o, "GraphDriver",
                            json_pack("{sssn}", "Name",
                                      json_string_value(json_object_get(img, "storage")) ?: "",
                                      "Data"));
        json_object_set_new(o, "RootFS", json_pack("{sssO}", "Type", "layers", "Layers", layers));
        json_object_set_new(o, "Metadata",
                            json_pack("{ss}", "LastTagTime", "0001-01-01T00:00:00Z"));
        *ret_json = o;
    }
    json_object_set(*ret_json, "Descriptor", json_object_get(img, "manifest"));
    return 0;
}

BERTH_API int berth_image_history(berth_engine_t *e, const char *ref, json_t **ret_json,
                                  berth_err_t *err)
{
    _cleanup_json_ json_t *img = NULL, *cfg = NULL, *out = json_array();
    berth_txn_t *txn = NULL;
    json_t *layers, *h;
    size_t i, li = 0;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__image_get_in(txn, ref, &img, err);
    if (r == 0) {
        if ((r = load_config(e, img, &cfg, err)) == 0) {
            layers = json_object_get(img, "layers");
            json_array_foreach (json_object_get(cfg, "history"), i, h) {
                int64_t size = 0;
                if (!json_is_true(json_object_get(h, "empty_layer"))) {
                    _cleanup_json_ json_t *lr = NULL;
                    const char *cid = json_string_value(
                        json_object_get(json_array_get(layers, li++), "chain_id"));
                    if (cid && berth__layer_record_get_in(txn, cid, &lr, NULL) == 0)
                        size = json_integer_value(json_object_get(lr, "size"));
                }
                json_array_insert_new(
                    out, 0,
                    json_pack("{sssIsssosIss}", "Id", "<missing>", "Created",
                              (json_int_t)created_seconds(
                                  json_string_value(json_object_get(h, "created"))),
                              "CreatedBy",
                              json_string_value(json_object_get(h, "created_by")) ?: "", "Tags",
                              json_null(), "Size", (json_int_t)size, "Comment",
                              json_string_value(json_object_get(h, "comment")) ?: ""));
            }
            /* The newest entry is the image itself. */
            if (json_array_size(out) > 0) {
                json_t *top = json_array_get(out, 0);
                json_object_set(top, "Id", json_object_get(img, "id"));
                json_object_set_new(top, "Tags", familiar_array(json_object_get(img, "repo_tags")));
            }
        }
    }
    berth__store_txn_abort(txn);
    if (r < 0)
        return r;
    *ret_json = TAKE_PTR(out);
    return 0;
}

/* ---- tag ---- */

BERTH_API int berth_image_tag(berth_engine_t *e, const char *ref, const char *target,
                              berth_err_t *err)
{
    _cleanup_json_ json_t *img = NULL;
    char full[FULL_MAX];
    berth_txn_t *txn = NULL;
    berth_ref_t t;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__ref_parse(target, &t, err)) < 0)
        return r;
    if (t.digest[0])
        return berth_err_set(err, -EINVAL, "refusing to create a tag with a digest reference");
    berth__ref_default_tag(&t);
    berth__ref_full(&t, full, sizeof(full));
    if ((r = berth__store_txn_begin(berth__engine_store(e), 1, &txn, err)) < 0)
        return r;
    if ((r = berth__image_get_in(txn, ref, &img, err)) < 0 ||
        (r = berth__image_tag_in(txn, json_string_value(json_object_get(img, "id")), full, err)) <
            0) {
        berth__store_txn_abort(txn);
        return r;
    }
    return berth__store_txn_commit(txn, err);
}

/* ---- removal and garbage collection ---- */

struct chain_ctx {
    json_t *keep; /* chain ids some image still uses */
};

static int keep_visit(const char *key, json_t *doc, void *userdata)
{
    struct chain_ctx *c = userdata;
    json_t *l;
    size_t i;

    json_array_foreach (json_object_get(doc, "layers"), i, l)
        json_object_set_new(c->keep, json_string_value(json_object_get(l, "chain_id")),
                            json_true());
    return 0;
}

static int layer_collect(const char *key, json_t *doc, void *userdata)
{
    struct chain_ctx *c = userdata;
    if (!json_object_get(c->keep, key))
        json_object_set_new(json_object_get(c->keep, ""), key,
                            json_deep_copy(json_object_get(doc, "parent")));
    return 0;
}

/*
 * Remove the unpacked layers no image uses, children before parents, and
 * their records. Containers' snapshots are children of image layers, and
 * images in use by containers are never deleted, so their layers stay.
 */
static int gc_layers(berth_engine_t *e, uint64_t *ret_bytes, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    struct chain_ctx c = { json_object() };
    berth_driver_t *stg = NULL;
    berth_txn_t *txn = NULL;
    json_t *dead = json_object();
    uint64_t bytes = 0;
    int r, progress = 1;

    json_object_set_new(c.keep, "", dead);
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0)
        goto out;
    r = berth__store_walk(txn, BERTH_DB_IMAGES, NULL, keep_visit, &c, err);
    if (r == 0)
        r = berth__store_walk(txn, BERTH_DB_LAYERS, NULL, layer_collect, &c, err);
    berth__store_txn_abort(txn);
    if (r < 0)
        goto out;
    if (json_object_size(dead) == 0)
        goto out;
    if ((r = berth__engine_storage(e, &stg, err)) < 0)
        goto out;
    /* A layer is removable once no dead layer names it as parent. */
    while (progress && json_object_size(dead) > 0) {
        const char *k;
        json_t *v, *tmp;
        progress = 0;
        json_object_foreach_safe (dead, tmp, k, v) {
            const char *k2;
            json_t *v2;
            int has_child = 0;
            json_object_foreach (dead, k2, v2)
                has_child |= json_is_string(v2) && strcmp(json_string_value(v2), k) == 0;
            if (has_child)
                continue;
            berth_snapshot_info_t info = { .struct_size = sizeof(info) };
            const berth_storage_ops_t *ops = stg->ops;
            if (ops->stat(stg->priv, k, 0, &info, NULL) == 0)
                bytes += info.size_bytes;
            r = ops->remove(stg->priv, k, 0, err);
            if (r < 0 && r != -ENOENT)
                goto out; /* -EBUSY: a container's snapshot still sits on it */
            if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
                goto out;
            if ((r = berth__layer_record_del_in(txn, k, err)) < 0) {
                berth__store_txn_abort(txn);
                goto out;
            }
            if ((r = berth__store_txn_commit(txn, err)) < 0)
                goto out;
            json_object_del(dead, k);
            progress = 1;
        }
    }
    r = 0;
out:
    if (ret_bytes)
        *ret_bytes = bytes;
    json_decref(c.keep);
    return r;
}

struct blob_ctx {
    json_t *keep;
    berth_content_t *cs;
    uint64_t bytes;
    int rc;
};

static int blob_keep_visit(const char *key, json_t *doc, void *userdata)
{
    struct blob_ctx *c = userdata;
    const char *members[] = { "target", "manifest", "config" };
    json_t *l;
    size_t i;

    for (i = 0; i < BERTH_ARRAY_SIZE(members); i++) {
        const char *d =
            json_string_value(json_object_get(json_object_get(doc, members[i]), "digest"));
        if (d)
            json_object_set_new(c->keep, d, json_true());
    }
    json_array_foreach (json_object_get(doc, "layers"), i, l) {
        const char *d = json_string_value(json_object_get(l, "digest"));
        if (d)
            json_object_set_new(c->keep, d, json_true());
    }
    return 0;
}

static int blob_sweep(const char *digest, int64_t size, int64_t mtime_ns, void *userdata)
{
    struct blob_ctx *c = userdata;
    if (json_object_get(c->keep, digest))
        return 0;
    if (berth__content_remove(c->cs, digest, NULL) == 0)
        c->bytes += (uint64_t)size;
    return 0;
}

/* Remove blobs no image names (under the exclusive gc lock) and stale ingests. */
static int gc_blobs(berth_engine_t *e, uint64_t *ret_bytes, berth_err_t *err)
{
    struct blob_ctx c = { json_object(), NULL, 0, 0 };
    berth_txn_t *txn = NULL;
    uint64_t ib = 0;
    int lockfd = -1, r;

    if ((r = berth__engine_content(e, &c.cs, err)) < 0)
        goto out;
    if ((r = berth__content_lock(c.cs, 1, &lockfd, err)) < 0)
        goto out;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        goto out;
    r = berth__store_walk(txn, BERTH_DB_IMAGES, NULL, blob_keep_visit, &c, err);
    berth__store_txn_abort(txn);
    if (r < 0)
        goto out;
    if ((r = berth__content_walk(c.cs, blob_sweep, &c, err)) < 0)
        goto out;
    /* With the lock held exclusively no import runs: every partial is a leftover. */
    r = berth__content_ingest_prune(c.cs, INT64_MAX, NULL, &ib, err);
out:
    berth__content_unlock(lockfd);
    if (ret_bytes)
        *ret_bytes = c.bytes + ib;
    json_decref(c.keep);
    return r;
}

/* Delete image @img entirely; appends {"Deleted": id} to @out. */
static int delete_image(berth_engine_t *e, const char *id, json_t *out, berth_err_t *err)
{
    berth_txn_t *txn = NULL;
    json_t *tags = NULL;
    _cleanup_json_ json_t *img = NULL;
    json_t *v;
    size_t i;
    int r;

    if ((r = berth__store_txn_begin(berth__engine_store(e), 1, &txn, err)) < 0)
        return r;
    if ((r = berth__image_get_id_in(txn, id, &img, err)) < 0 ||
        (r = berth__image_delete_in(txn, id, err)) < 0) {
        berth__store_txn_abort(txn);
        return r;
    }
    if ((r = berth__store_txn_commit(txn, err)) < 0)
        return r;
    tags = json_object_get(img, "repo_tags");
    json_array_foreach (tags, i, v) {
        char fam[FULL_MAX];
        berth__ref_familiar(json_string_value(v), fam, sizeof(fam));
        json_array_append_new(out, json_pack("{ss}", "Untagged", fam));
    }
    json_array_append_new(out, json_pack("{ss}", "Deleted", id));
    return 0;
}

BERTH_API int berth_image_remove(berth_engine_t *e, const char *ref, uint32_t flags,
                                 json_t **ret_json, berth_err_t *err)
{
    _cleanup_json_ json_t *img = NULL, *users = NULL, *out = json_array();
    int force = (flags & BERTH_IMAGE_RM_FORCE) != 0;
    char full[FULL_MAX], id[72];
    berth_txn_t *txn = NULL;
    berth_ref_t parsed;
    const char *by_name = NULL;
    size_t ntags;
    int r;

    if ((r = need_store(e, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(berth__engine_store(e), 1, &txn, err)) < 0)
        return r;
    if ((r = berth__image_get_in(txn, ref, &img, err)) < 0 ||
        (r = berth__image_users_in(txn, json_string_value(json_object_get(img, "id")), &users,
                                   err)) < 0) {
        berth__store_txn_abort(txn);
        return r;
    }
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(img, "id")));
    ntags = json_array_size(json_object_get(img, "repo_tags"));
    /* Was it named by one of its tags? */
    if (berth__ref_parse(ref, &parsed, NULL) == 0 && !parsed.digest[0]) {
        json_t *v;
        size_t i;
        berth__ref_default_tag(&parsed);
        berth__ref_full(&parsed, full, sizeof(full));
        json_array_foreach (json_object_get(img, "repo_tags"), i, v)
            if (strcmp(json_string_value(v), full) == 0)
                by_name = full;
    }
    if (by_name && (ntags > 1 || (force && json_array_size(users) > 0))) {
        /* Docker: other tags (or a forced removal under a container) only untag. */
        char fam[FULL_MAX];
        if ((r = berth__image_untag_in(txn, by_name, err)) < 0) {
            berth__store_txn_abort(txn);
            return r;
        }
        if ((r = berth__store_txn_commit(txn, err)) < 0)
            return r;
        berth__ref_familiar(by_name, fam, sizeof(fam));
        json_array_append_new(out, json_pack("{ss}", "Untagged", fam));
        goto done;
    }
    berth__store_txn_abort(txn);
    if (json_array_size(users) > 0) {
        char cid[13];
        snprintf(cid, sizeof(cid), "%s", json_string_value(json_array_get(users, 0)));
        return berth_err_set(err, -EBUSY,
                             "conflict: unable to remove image %s (%s) - container %s is using "
                             "it",
                             ref, force ? "a container still uses it" : "must force", cid);
    }
    if (!by_name && ntags > 1 && !force)
        return berth_err_set(err, -EBUSY,
                             "conflict: unable to delete %.19s (must be forced) - image is "
                             "referenced in multiple repositories",
                             id + 7);
    if ((r = delete_image(e, id, out, err)) < 0)
        return r;
    /* The record is gone; space comes back now, best effort (prune retries). */
    gc_layers(e, NULL, NULL);
    gc_blobs(e, NULL, NULL);
done:
    if (ret_json)
        *ret_json = TAKE_PTR(out);
    return 0;
}

BERTH_API int berth_image_prune(berth_engine_t *e, uint32_t flags, json_t **ret_json,
                                berth_err_t *err)
{
    _cleanup_json_ json_t *imgs = NULL, *deleted = json_array();
    struct count_ctx cc = { json_object() };
    uint64_t lb = 0, bb = 0;
    json_t *img;
    size_t i;
    int r;

    if ((r = images_and_users(e, &imgs, &cc, err)) < 0)
        goto out;
    json_array_foreach (imgs, i, img) {
        const char *id = json_string_value(json_object_get(img, "id"));
        int dangling = json_array_size(json_object_get(img, "repo_tags")) == 0;
        if (json_object_get(cc.counts, id))
            continue;
        if (!dangling && !(flags & BERTH_IMAGE_PRUNE_ALL))
            continue;
        if ((r = delete_image(e, id, deleted, err)) < 0)
            goto out;
    }
    if ((r = gc_layers(e, &lb, err)) < 0 || (r = gc_blobs(e, &bb, err)) < 0)
        goto out;
    if (ret_json) {
        *ret_json =
            json_pack("{sOsI}", "ImagesDeleted", deleted, "SpaceReclaimed", (json_int_t)(lb + bb));
        if (!*ret_json)
            r = berth_err_set(err, -ENOMEM, "out of memory");
    }
out:
    json_decref(cc.counts);
    return r;
}

static int layer_size_visit(const char *key, json_t *doc, void *userdata)
{
    *(json_int_t *)userdata += json_integer_value(json_object_get(doc, "size"));
    return 0;
}

BERTH_API int berth_system_df(berth_engine_t *e, json_t **ret_json, berth_err_t *err)
{
    _cleanup_json_ json_t *images = NULL, *containers = NULL, *volumes = NULL;
    json_int_t layers_size = 0;
    berth_driver_t *stg = NULL;
    berth_txn_t *txn = NULL;
    json_t *c;
    size_t i;
    int r;

    if ((r = berth_image_list(e, 0, &images, err)) < 0)
        return r;
    if ((r = berth_container_list(e, BERTH_LIST_ALL, &containers, err)) < 0)
        return r;
    /* Each unpacked layer once, however many images share it. */
    if ((r = berth__store_txn_begin(berth__engine_store(e), 0, &txn, err)) < 0)
        return r;
    r = berth__store_walk(txn, BERTH_DB_LAYERS, NULL, layer_size_visit, &layers_size, err);
    berth__store_txn_abort(txn);
    if (r < 0)
        return r;
    /* A container's writable layer is the snapshot keyed by its id (none for --rootfs). */
    if (berth__engine_storage(e, &stg, NULL) < 0)
        stg = NULL;
    json_array_foreach (containers, i, c) {
        const char *id = json_string_value(json_object_get(c, "Id"));
        berth_snapshot_info_t info = { .struct_size = sizeof(info) };
        json_int_t size = 0;
        if (stg && id &&
            ((const berth_storage_ops_t *)stg->ops)->stat(stg->priv, id, 0, &info, NULL) == 0)
            size = (json_int_t)info.size_bytes;
        json_object_set_new(c, "SizeRw", json_integer(size));
        /* Its mounts: docker system df -v counts the local volumes among them. */
        {
            json_t *insp = NULL;
            if (id && berth_container_inspect(e, id, &insp, NULL) == 0)
                json_object_set(c, "Mounts", json_object_get(insp, "Mounts"));
            json_decref(insp);
        }
    }
    if ((r = berth__volume_df(e, &volumes, err)) < 0)
        return r;
    *ret_json = json_pack("{sIsOsOsOs[]}", "LayersSize", layers_size, "Images", images,
                          "Containers", containers, "Volumes", volumes, "BuildCache");
    return *ret_json ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}

/* ---- login / logout ---- */

BERTH_API int berth_registry_login(berth_engine_t *e, const char *server, const char *username,
                                   const char *password, berth_err_t *err)
{
    berth_image_location_t loc = { .struct_size = sizeof(loc) };
    _cleanup_free_ char *options = NULL;
    _cleanup_json_ json_t *auth = NULL;
    const char *host = server && *server ? server : "docker.io";
    berth_driver_t *drv = image_driver(e, "registry");
    const berth_image_ops_t *ops;
    char location[BERTH_REF_NAME_MAX + 32];
    void *session = NULL;
    int r;

    if (!drv)
        return berth_err_set(err, -ENOTSUP, "the registry image driver is not loaded");
    if (!username || !*username || !password)
        return berth_err_set(err, -EINVAL, "login needs a username and a password");
    ops = drv->ops;
    auth = json_pack("{ssss}", "username", username, "password", password);
    _cleanup_free_ char *auth_text = auth ? json_dumps(auth, JSON_COMPACT) : NULL;
    if (!auth_text)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__registry_options(host, auth_text, NULL, registry_cfg(e), &options, err)) < 0)
        return r;
    /* Opening a session with credentials checks them (the driver pings /v2/). */
    snprintf(location, sizeof(location), "%s/library/login-check", host);
    loc.location = location;
    loc.options_json = options;
    if ((r = ops->open(drv->priv, &loc, 0, &session, err)) < 0)
        return r;
    ops->close(drv->priv, session);
    return berth__credentials_store(host, username, password, err);
}

BERTH_API int berth_registry_logout(berth_engine_t *e, const char *server, berth_err_t *err)
{
    return berth__credentials_erase(server && *server ? server : "docker.io", err);
}
