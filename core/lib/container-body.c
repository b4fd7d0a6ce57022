/* SPDX-License-Identifier: Apache-2.0 */
/* A Docker create body into a container record, without the engine (container-body.h). */
#include <errno.h>
#include <string.h>

#include "container-body.h"
#include "ocispec.h"
#include "util.h"

/* Members of a Docker create body that berth keeps in the record's "config". */
static const char *const config_keys[] = {
    "Cmd",        "Entrypoint",  "Env",         "WorkingDir",   "User",
    "Hostname",   "Tty",         "OpenStdin",   "StdinOnce",    "Labels",
    "StopSignal", "StopTimeout", "AttachStdin", "AttachStdout", "AttachStderr",
    "Image",      "Healthcheck", "Volumes",     "ExposedPorts", "Domainname",
};

/*
 * HostConfig.RestartPolicy as Docker accepts it: Name "", "no", "always",
 * "unless-stopped" or "on-failure"; MaximumRetryCount only with on-failure;
 * none with AutoRemove (a container that removes itself can't be restarted).
 */
static int check_restart_policy(json_t *hc, berth_err_t *err)
{
    json_t *rp = json_object_get(hc, "RestartPolicy"), *max;
    const char *name;

    if (!rp || json_is_null(rp))
        return 0;
    if (!json_is_object(rp))
        return berth_err_set(err, -EINVAL, "RestartPolicy must be an object");
    name = json_string_value(json_object_get(rp, "Name"));
    max = json_object_get(rp, "MaximumRetryCount");
    if (max && !json_is_null(max) && (!json_is_integer(max) || json_integer_value(max) < 0))
        return berth_err_set(err, -EINVAL,
                             "invalid restart policy: maximum retry count must be "
                             "a positive integer");
    if (!name || !*name || !strcmp(name, "no")) {
        name = "no";
    } else if (strcmp(name, "always") && strcmp(name, "unless-stopped") &&
               strcmp(name, "on-failure")) {
        return berth_err_set(err, -EINVAL, "invalid restart policy \"%s\"", name);
    }
    if (strcmp(name, "on-failure") && json_integer_value(max) > 0)
        return berth_err_set(err, -EINVAL,
                             "invalid restart policy: maximum retry count can only "
                             "be used with 'on-failure'");
    if (strcmp(name, "no") && json_is_true(json_object_get(hc, "AutoRemove")))
        return berth_err_set(err, -EINVAL,
                             "conflicting options: cannot specify both "
                             "--restart and --rm");
    return 0;
}

int berth__create_body_parse(json_t *body, const char *default_isolation, json_t **ret_config,
                             const char **ret_isolation, const char **ret_rootfs,
                             const char **ret_image, berth_err_t *err)
{
    _cleanup_json_ json_t *config = NULL;
    json_t *hc = json_object_get(body, "HostConfig");
    const char *isolation, *rootfs, *image;
    int r;

    if (!json_is_object(body))
        return berth_err_set(err, -EINVAL, "the create request must be a JSON object");
    if (hc && !json_is_object(hc))
        return berth_err_set(err, -EINVAL, "HostConfig must be an object");
    if ((r = check_restart_policy(hc, err)) < 0)
        return r;
    if (!(config = json_object()))
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(config_keys); i++) {
        json_t *v = json_object_get(body, config_keys[i]);
        if (v && !json_is_null(v) && json_object_set(config, config_keys[i], v) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    /* Docker's "default" isolation means the daemon's default. */
    isolation = json_string_value(json_object_get(hc, "Isolation"));
    if (!isolation || !*isolation || strcmp(isolation, "default") == 0)
        isolation = default_isolation;
    rootfs = json_string_value(json_object_get(body, "Rootfs"));
    image = json_string_value(json_object_get(body, "Image"));
    if (rootfs && rootfs[0] != '/')
        return berth_err_set(err, -EINVAL, "rootfs \"%s\" is not an absolute path", rootfs);
    if (!rootfs && (!image || !*image))
        return berth_err_set(err, -EINVAL, "no root filesystem: give an image or --rootfs DIR");
    *ret_config = TAKE_PTR(config);
    *ret_isolation = isolation;
    *ret_rootfs = rootfs;
    *ret_image = rootfs ? NULL : image;
    return 0;
}

void berth__create_merge_image_config(json_t *config, json_t *img)
{
    json_t *cmd = json_object_get(config, "Cmd");
    json_t *ep = json_object_get(config, "Entrypoint");
    json_t *ienv = json_object_get(img, "Env"), *env = json_object_get(config, "Env");
    const char *scalars[] = { "WorkingDir", "User", "StopSignal" };
    const char *copied[] = { "ExposedPorts", "Volumes", "Healthcheck", "OnBuild" };
    json_t *v, *labels;
    const char *k;
    size_t i;

    if (!ep || json_is_null(ep)) {
        json_object_set(config, "Entrypoint", json_object_get(img, "Entrypoint"));
        if (!cmd || json_is_null(cmd))
            json_object_set(config, "Cmd", json_object_get(img, "Cmd"));
    }
    /* An --entrypoint given without a command clears the image's command, as in Docker. */
    for (i = 0; i < BERTH_ARRAY_SIZE(scalars); i++) {
        const char *c = json_string_value(json_object_get(config, scalars[i]));
        v = json_object_get(img, scalars[i]);
        if ((!c || !*c) && json_is_string(v))
            json_object_set(config, scalars[i], v);
    }
    for (i = 0; i < BERTH_ARRAY_SIZE(copied); i++)
        if (!json_object_get(config, copied[i]) && json_object_get(img, copied[i]))
            json_object_set(config, copied[i], json_object_get(img, copied[i]));
    /* The image's VOLUME paths and EXPOSE ports add to the container's own (-v /path, --expose). */
    for (i = 0; i < 2; i++) {
        const char *key = i ? "ExposedPorts" : "Volumes";
        v = json_object_get(img, key);
        if (json_is_object(v) && json_object_get(config, key) != v) {
            json_t *merged = json_deep_copy(json_object_get(config, key));
            if (!json_is_object(merged)) {
                json_decref(merged);
                merged = json_object();
            }
            json_object_update_missing(merged, v);
            json_object_set_new(config, key, merged);
        }
    }
    if (json_is_array(ienv)) {
        /* The image's variables first; the container's replace those with the same name. */
        json_t *merged = json_deep_copy(ienv);
        json_array_foreach (env, i, v) {
            const char *e = json_string_value(v), *eq;
            size_t n, j;
            json_t *w;
            if (!e)
                continue;
            eq = strchr(e, '=');
            n = eq ? (size_t)(eq - e) : strlen(e);
            json_array_foreach (merged, j, w) {
                const char *we = json_string_value(w);
                if (we && strncmp(we, e, n) == 0 && (we[n] == '=' || we[n] == '\0')) {
                    json_array_remove(merged, j);
                    break;
                }
            }
            json_array_append(merged, v);
        }
        json_object_set_new(config, "Env", merged);
    }
    labels = json_object_get(img, "Labels");
    if (json_is_object(labels)) {
        json_t *mine = json_object_get(config, "Labels");
        json_t *merged = json_deep_copy(labels);
        json_object_foreach (mine, k, v)
            json_object_set(merged, k, v);
        json_object_set_new(config, "Labels", merged);
    }
}

int berth__create_record_build(const char *id, const char *name, const char *isolation,
                               json_t *config, json_t *host_config, const char *rootfs,
                               json_t *storage, const char *image_id, json_t *mounts,
                               json_t **ret_doc, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *spec = NULL;
    json_t *hc;
    const char *nm;
    int r;

    doc = json_pack("{s:s, s:s, s:s, s:O, s:o, s:{s:s, s:i, s:i, s:b, s:s, s:i, s:i}}", "id", id,
                    "name", name, "isolation", isolation, "config", config, "host_config",
                    host_config ? json_deep_copy(host_config) : json_object(), "state", "Status",
                    "created", "Pid", 0, "ExitCode", 0, "OOMKilled", 0, "Error", "", "StartedAt", 0,
                    "FinishedAt", 0);
    if (!doc || (rootfs && json_object_set_new(doc, "rootfs", json_string(rootfs)) < 0) ||
        (storage &&
         (json_object_set(doc, "storage", storage) < 0 ||
          json_object_set_new(doc, "image_id", json_string(image_id ? image_id : "")) < 0)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* Docker's "default" network, as its isolation, means the engine's default. */
    hc = json_object_get(doc, "host_config");
    nm = json_string_value(json_object_get(hc, "NetworkMode"));
    if (nm && strcmp(nm, "default") == 0)
        json_object_del(hc, "NetworkMode");
    if (mounts && json_object_set(doc, "mounts", mounts) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* Everything the spec builder would refuse at start is refused now. */
    if ((r = berth__oci_spec_build(doc, NULL, &spec, err)) < 0)
        return r;
    *ret_doc = TAKE_PTR(doc);
    return 0;
}
