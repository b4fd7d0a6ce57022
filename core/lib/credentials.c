/* SPDX-License-Identifier: Apache-2.0 */
/* Registry credentials in the docker-style credentials file (see credentials.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "credentials.h"
#include "util.h"

#define HUB_KEY "https://index.docker.io/v1/"

static int config_path(char *buf, size_t len, berth_err_t *err)
{
    const char *dir = getenv("DOCKER_CONFIG");
    const char *home = getenv("HOME");
    int n;

    if (dir && *dir)
        n = snprintf(buf, len, "%s/config.json", dir);
    else if (home && *home)
        n = snprintf(buf, len, "%s/.docker/config.json", home);
    else
        return berth_err_set(err, -ENOENT,
                             "no credentials file: neither DOCKER_CONFIG nor HOME "
                             "is set");
    if (n < 0 || (size_t)n >= len)
        return berth_err_set(err, -ENAMETOOLONG, "credentials file path too long");
    return 0;
}

static const char *server_key(const char *server)
{
    if (strcmp(server, "docker.io") == 0 || strcmp(server, "index.docker.io") == 0 ||
        strcmp(server, "registry-1.docker.io") == 0 || strcmp(server, HUB_KEY) == 0)
        return HUB_KEY;
    return server;
}

/* The file's document, or a new empty object when it does not exist. */
static int config_load(const char *path, json_t **ret, berth_err_t *err)
{
    json_error_t je;
    json_t *doc;

    if (access(path, F_OK) < 0) {
        *ret = json_object();
        return *ret ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
    }
    doc = json_load_file(path, 0, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return berth_err_set(err, -EBADMSG, "credentials file %s: %s", path,
                             doc ? "not a JSON object" : je.text);
    }
    *ret = doc;
    return 0;
}

static int config_save(const char *path, json_t *doc, berth_err_t *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    char *slash;
    int fd, r;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        if (*dir && (r = berth__mkdir_p(dir, 0700, err)) < 0)
            return r;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return berth_err_set(err, -ENAMETOOLONG, "credentials file path too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return berth_err_set(err, -errno, "%s: %s", tmp, strerror(errno));
    r = json_dumpfd(doc, fd, JSON_INDENT(1)) < 0 || write(fd, "\n", 1) != 1 || fsync(fd) < 0;
    close(fd);
    if (r || rename(tmp, path) < 0) {
        r = errno ? -errno : -EIO;
        unlink(tmp);
        return berth_err_set(err, r, "write %s: %s", path, strerror(-r));
    }
    return 0;
}

int berth__credentials_store(const char *server, const char *username, const char *password,
                             berth_err_t *err)
{
    char path[PATH_MAX];
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *pair = NULL, *enc = NULL;
    json_t *auths;
    int r;

    if ((r = config_path(path, sizeof(path), err)) < 0 || (r = config_load(path, &doc, err)) < 0)
        return r;
    if (asprintf(&pair, "%s:%s", username, password) < 0 ||
        !(enc = berth__base64_encode(pair, strlen(pair))))
        return berth_err_set(err, -ENOMEM, "out of memory");
    auths = json_object_get(doc, "auths");
    if (!json_is_object(auths)) {
        auths = json_object();
        json_object_set_new(doc, "auths", auths);
    }
    json_object_set_new(auths, server_key(server), json_pack("{ss}", "auth", enc));
    return config_save(path, doc, err);
}

int berth__credentials_erase(const char *server, berth_err_t *err)
{
    char path[PATH_MAX];
    _cleanup_json_ json_t *doc = NULL;
    json_t *auths;
    int r;

    if ((r = config_path(path, sizeof(path), err)) < 0 || (r = config_load(path, &doc, err)) < 0)
        return r;
    auths = json_object_get(doc, "auths");
    if (!json_object_get(auths, server_key(server)))
        return berth_err_set(err, -ENOENT, "not logged in to %s", server);
    json_object_del(auths, server_key(server));
    return config_save(path, doc, err);
}

int berth__credentials_lookup(const char *server, char **ret_json, berth_err_t *err)
{
    char path[PATH_MAX];
    _cleanup_json_ json_t *doc = NULL, *out = NULL;
    _cleanup_free_ uint8_t *dec = NULL;
    const char *enc;
    char *colon;
    int r;

    *ret_json = NULL;
    if (config_path(path, sizeof(path), NULL) < 0)
        return 0;
    if ((r = config_load(path, &doc, err)) < 0)
        return r;
    enc = json_string_value(json_object_get(
        json_object_get(json_object_get(doc, "auths"), server_key(server)), "auth"));
    if (!enc)
        return 0;
    r = berth__base64_decode(enc, BERTH__BASE64_LENIENT, &dec, NULL);
    if (r == -ENOMEM)
        return berth_err_set(err, r, "out of memory");
    if (r < 0 || !(colon = strchr((char *)dec, ':')))
        return berth_err_set(err, -EBADMSG, "credentials file %s: bad \"auth\" for %s", path,
                             server);
    *colon = '\0';
    out = json_pack("{ssss}", "username", (char *)dec, "password", colon + 1);
    if (!out || !(*ret_json = json_dumps(out, JSON_COMPACT)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

int berth__registry_options(const char *domain, const char *auth_json, const char *platform,
                            json_t *driver_cfg, char **ret_options, berth_err_t *err)
{
    _cleanup_json_ json_t *opts = json_object();
    _cleanup_free_ char *stored = NULL;
    int r;

    if (!opts)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (!auth_json) {
        if ((r = berth__credentials_lookup(domain, &stored, err)) < 0)
            return r;
        auth_json = stored;
    }
    if (auth_json) {
        json_error_t je;
        json_t *a = json_loads(auth_json, 0, &je);
        if (!json_is_object(a)) {
            json_decref(a);
            return berth_err_set(err, -EINVAL, "registry credentials are not a JSON object");
        }
        json_object_set_new(opts, "auth", a);
    }
    if (platform) {
        char os[32] = "", arch[32] = "", var[32] = "";
        if (sscanf(platform, "%31[^/]/%31[^/]/%31s", os, arch, var) < 2)
            return berth_err_set(err, -EINVAL, "invalid platform \"%s\"", platform);
        json_object_set_new(opts, "platform",
                            json_pack("{ssssss}", "os", os, "architecture", arch, "variant", var));
    }
    json_object_set_new(opts, "user_agent", json_string("berth"));
    if (json_is_array(json_object_get(driver_cfg, "insecure_registries")))
        json_object_set(opts, "insecure_registries",
                        json_object_get(driver_cfg, "insecure_registries"));
    if (json_is_string(json_object_get(driver_cfg, "ca_file")))
        json_object_set(opts, "ca_file", json_object_get(driver_cfg, "ca_file"));
    *ret_options = json_dumps(opts, JSON_COMPACT);
    return *ret_options ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}
