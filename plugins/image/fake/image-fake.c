/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake: an image source for the core's tests. Every session holds one
 * image, "fake:latest", whose manifest is a fixed OCI manifest text; fetch
 * streams it in small chunks, so the core's streaming and digest checks are
 * exercised. Blobs it does not hold are -ENOENT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <berth/sdk.h>

static const char manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
    "\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\","
    "\"size\":2},\"layers\":[]}";

/* Not the manifest's real digest: the core computes that; tests compare. */
#define FAKE_MANIFEST_DIGEST "sha256:fake"

struct stream {
    berth_stream_t s;
    size_t off;
};

static int64_t stream_read(berth_stream_t *s, void *buf, size_t len, berth_err_t *err)
{
    struct stream *st = (struct stream *)s;
    size_t left = sizeof(manifest) - 1 - st->off;
    /* Small chunks so consumers see several reads. */
    if (len > 16)
        len = 16;
    if (len > left)
        len = left;
    memcpy(buf, manifest + st->off, len);
    st->off += len;
    return (int64_t)len;
}

static void stream_close(berth_stream_t *s)
{
    free(s);
}

static int fake_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                     berth_err_t *err)
{
    *ret_priv = NULL;
    return 0;
}

static int fake_match(void *priv, const char *location, uint32_t flags)
{
    return strncmp(location, "fake", 4) == 0 ? 0 : BERTH_DECLINED;
}

static int fake_open(void *priv, const berth_image_location_t *loc, uint32_t flags,
                     void **ret_session, berth_err_t *err)
{
    /* Sessions carry no state; any non-NULL token will do. */
    *ret_session = (void *)manifest;
    return 0;
}

static void fake_close(void *priv, void *session)
{
}

static int fake_resolve(void *priv, void *session, const char *reference, uint32_t flags,
                        berth_descriptor_t *ret_desc, berth_err_t *err)
{
    if (reference && strcmp(reference, "fake:latest") != 0)
        return berth_err_set(err, -ENOENT, "fake: no image %s", reference);
    snprintf(ret_desc->media_type, sizeof(ret_desc->media_type), "%s",
             "application/vnd.oci.image.manifest.v1+json");
    snprintf(ret_desc->digest, sizeof(ret_desc->digest), "%s", FAKE_MANIFEST_DIGEST);
    ret_desc->size = (int64_t)sizeof(manifest) - 1;
    return 0;
}

static int fake_fetch(void *priv, void *session, const berth_descriptor_t *desc, int64_t offset,
                      uint32_t flags, berth_stream_t **ret_stream, berth_err_t *err)
{
    struct stream *st;
    if (strcmp(desc->digest, FAKE_MANIFEST_DIGEST) != 0)
        return berth_err_set(err, -ENOENT, "fake: no blob %s", desc->digest);
    if (offset < 0 || offset > (int64_t)sizeof(manifest) - 1)
        return berth_err_set(err, -EINVAL, "fake: offset %lld out of range", (long long)offset);
    st = calloc(1, sizeof(*st));
    if (!st)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    st->s.struct_size = sizeof(st->s);
    st->s.size = (int64_t)sizeof(manifest) - 1;
    st->s.read = stream_read;
    st->s.close = stream_close;
    st->off = (size_t)offset;
    *ret_stream = &st->s;
    return 0;
}

static const berth_image_ops_t fake_ops = {
    BERTH_OPS_INIT(berth_image_ops_t), .match = fake_match, .open = fake_open, .close = fake_close,
    .resolve = fake_resolve,           .fetch = fake_fetch,
};

static const berth_plugin_desc_t fake_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_IMAGE,
    .name = "fake",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "image source for tests: one built-in manifest",
    .capabilities = BERTH_IMAGE_CAP_PULL,
    .init = fake_init,
    .ops = &fake_ops,
};

BERTH_PLUGIN_DEFINE(fake_desc)
