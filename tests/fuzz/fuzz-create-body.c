/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: a Docker create body (POST /containers/create) into a
 * container record and its OCI spec (core/lib/container-body.c, ocispec.c),
 * the translation berth_container_create runs, without the engine: no
 * store, driver, mount or file. Invalid input must come back as -errno with
 * a one-line message; valid input as a record the spec builder takes again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container-body.h"
#include "ocispec.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz-create-body: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void check_error(int r, const berth_err_t *err)
{
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "refused: %s\n", err->msg);
    if (r >= 0)
        die("a failure that returned", NULL);
    if (err->code != r || !err->msg[0])
        die("an error without its message", err->msg);
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            die("an error message that is not one line of text", err->msg);
}

/* An image config as images carry it, for the merge: entrypoint, env, labels, user. */
static const char image_config[] =
    "{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"Env\":[\"PATH=/usr/bin:/bin\","
    "\"A=image\",\"NOEQ\"],\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\",\"StopSignal\":"
    "\"SIGQUIT\",\"Labels\":{\"from\":\"image\"},\"ExposedPorts\":{\"80/tcp\":{}},\"Volumes\":"
    "{\"/data\":{}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body, *config = NULL, *doc = NULL, *spec = NULL, *img = NULL, *storage = NULL;
    const char *isolation, *rootfs, *image;
    berth_err_t err = { 0 };
    json_error_t je;
    int r;

    body = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!body)
        return 0;
    r = berth__create_body_parse(body, "process", &config, &isolation, &rootfs, &image, &err);
    if (r < 0) {
        check_error(r, &err);
        goto out;
    }
    if (!config || !json_is_object(config) || !isolation || (!rootfs && !image))
        die("a parsed body without its parts", NULL);
    if (!rootfs) {
        /* As an image-backed create: the image's config under the container's, a snapshot. */
        if (!(img = json_loads(image_config, 0, NULL)) ||
            !(storage = json_pack("{s:s, s:s, s:[]}", "driver", "vfs", "key", ID, "mounts")))
            die("out of memory", NULL);
        berth__create_merge_image_config(config, img);
        /* And the body itself as an image config: its members, of whatever type, fill gaps. */
        berth__create_merge_image_config(config, body);
    }
    r = berth__create_record_build(ID, "fuzz", isolation, config,
                                   json_object_get(body, "HostConfig"), rootfs, storage,
                                   storage ? "sha256:" ID : NULL, NULL, &doc, &err);
    if (r < 0) {
        check_error(r, &err);
        goto out;
    }
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "accepted: %.200s\n", isolation);
    /* A record that was accepted builds its spec again, as start will. */
    r = berth__oci_spec_build(doc, NULL, &spec, &err);
    if (r < 0)
        die("an accepted record whose spec fails at start", err.msg);
    if (!json_is_object(json_object_get(spec, "process")))
        die("a spec without a process", NULL);

out:
    json_decref(spec);
    json_decref(doc);
    json_decref(storage);
    json_decref(img);
    json_decref(config);
    json_decref(body);
    return 0;
}
