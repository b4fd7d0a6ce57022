/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials in a docker-style credentials file, shared with the
 * docker CLI: $DOCKER_CONFIG/config.json, default ~/.docker/config.json,
 * member "auths": {"<server>": {"auth": base64("user:password")}}. Docker
 * Hub's key is "https://index.docker.io/v1/". The file is rewritten
 * atomically with mode 0600 and its other members are kept.
 */
#ifndef BERTH_CREDENTIALS_H
#define BERTH_CREDENTIALS_H

#include <jansson.h>

#include <berth/types.h>

/* Store @username/@password for registry @server ("localhost:5000", "docker.io"). */
int berth__credentials_store(const char *server, const char *username, const char *password,
                             berth_err_t *err);
/* Forget @server's credentials; -ENOENT "not logged in to X" when there were none. */
int berth__credentials_erase(const char *server, berth_err_t *err);
/*
 * The credentials for @server as the JSON text {"username","password"} in
 * *ret_json (malloc'd), or NULL when there are none. Errors only for a
 * credentials file that exists and can't be read or parsed.
 */
int berth__credentials_lookup(const char *server, char **ret_json, berth_err_t *err);

/*
 * The options_json for the registry image driver: "auth" (@auth_json when
 * given, else the stored credentials for @domain), "platform" when given,
 * and "insecure_registries" and "ca_file" from the config's
 * "drivers": {"registry": {...}} section @driver_cfg (borrowed, may be NULL).
 * *ret_options is malloc'd.
 */
int berth__registry_options(const char *domain, const char *auth_json, const char *platform,
                            json_t *driver_cfg, char **ret_options, berth_err_t *err);

#endif /* BERTH_CREDENTIALS_H */
