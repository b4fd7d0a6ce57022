/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Docker create body (POST /containers/create, berth_container_create)
 * turned into a container record: the part that needs no engine. The body's
 * shape is checked, what the record keeps is copied, an image's config is
 * merged under it with Docker's rules, and the record is built with its OCI
 * spec as the last check, so that what start would refuse is refused at
 * create. Nothing here touches the store, a driver, a mount or a file, so
 * the translation is tested and fuzzed on its own (tests/fuzz); the engine's
 * half (isolation driver, rootfs on disk, image snapshot) is in
 * container-api.c.
 */
#ifndef BERTH_CONTAINER_BODY_H
#define BERTH_CONTAINER_BODY_H

#include <jansson.h>

#include <berth/types.h>

/*
 * Check @body (borrowed) and take what the record keeps: *ret_config is a
 * new object with the body's Config members (Cmd, Env, ...); *ret_isolation
 * is HostConfig.Isolation, or @default_isolation for none, "" or "default";
 * *ret_rootfs is berth's "Rootfs" (an absolute path, not checked on disk),
 * else NULL and *ret_image the image named. The strings are borrowed from
 * @body or @default_isolation. -EINVAL with a one-line message for a body
 * that is not an object, a HostConfig that is not one, a restart policy
 * Docker would refuse (or one with AutoRemove), a relative rootfs, or
 * neither rootfs nor image; -ENOMEM.
 */
int berth__create_body_parse(json_t *body, const char *default_isolation, json_t **ret_config,
                             const char **ret_isolation, const char **ret_rootfs,
                             const char **ret_image, berth_err_t *err);

/*
 * Docker's rules for a container's @config over its image's @img (the image
 * config's "config"): the image's entrypoint and command unless the
 * container gives an entrypoint, its working dir, user and stop signal
 * where the container's are empty, its environment with the container's
 * variables replacing those of the same name, its labels under the
 * container's. @img may be NULL or anything: what is not of the right
 * type is ignored.
 */
void berth__create_merge_image_config(json_t *config, json_t *img);

/*
 * The container record: "id", "name", "isolation", "config" (@config,
 * borrowed), "host_config" (a copy of @host_config, may be NULL; Docker's
 * NetworkMode "default" dropped for the engine's default), a "created"
 * state, "rootfs" or "storage" (borrowed) with "image_id", and the planned
 * "mounts" (borrowed, may be NULL; volume-api.h). The OCI spec
 * is built from it to refuse now what start would refuse (-EINVAL, naming
 * the option). *ret_doc is a new reference.
 */
int berth__create_record_build(const char *id, const char *name, const char *isolation,
                               json_t *config, json_t *host_config, const char *rootfs,
                               json_t *storage, const char *image_id, json_t *mounts,
                               json_t **ret_doc, berth_err_t *err);

#endif /* BERTH_CONTAINER_BODY_H */
