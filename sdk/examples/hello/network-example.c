/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal third-party berth driver: a network driver named "example" that
 * attaches sandboxes to nothing and says so. It shows the whole contract a
 * driver has to meet: one exported entry returning a static descriptor,
 * an ops table that starts with its size, private state created in init and
 * released in fini, and the host API for logging and configuration.
 *
 * It builds from the installed SDK only (see Makefile); nothing here links
 * against berth.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <berth/sdk.h>

struct example {
    const berth_host_api_t *host;
    berth_host_t *ctx;
    unsigned attached;
};

static int example_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                        berth_err_t *err)
{
    struct example *ex;

    /* A core older than the headers we were built with has a shorter host table. */
    if (!BERTH_HAS_MEMBER(host, berth_host_api_t, config))
        return berth_err_set(err, -ENOTSUP, "example: host API too old");
    ex = calloc(1, sizeof(*ex));
    if (!ex)
        return berth_err_set(err, -ENOMEM, "example: out of memory");
    ex->host = host;
    ex->ctx = ctx;
    host->log(ctx, BERTH_LOG_DEBUG, "example driver ready, config %s", host->config(ctx));
    *ret_priv = ex;
    return 0;
}

static void example_fini(void *priv)
{
    free(priv);
}

static int example_network_create(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                                  berth_blob_t **ret_state, berth_err_t *err)
{
    *ret_state = NULL; /* no host state to remember */
    return 0;
}

static int example_network_delete(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                                  berth_err_t *err)
{
    return 0;
}

static void blob_release(berth_blob_t *blob)
{
    free(blob->data);
    free(blob);
}

static int example_endpoint_attach(void *priv, const berth_endpoint_spec_t *spec, uint32_t flags,
                                   berth_blob_t **ret_result, berth_err_t *err)
{
    static const char result[] = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[],\"ips\":[]}";
    struct example *ex = priv;
    berth_blob_t *blob = calloc(1, sizeof(*blob));

    if (!blob || !(blob->data = malloc(sizeof(result)))) {
        free(blob);
        return berth_err_set(err, -ENOMEM, "example: out of memory");
    }
    memcpy(blob->data, result, sizeof(result));
    /* The blob carries its own release function: the core frees it with our allocator. */
    blob->struct_size = sizeof(*blob);
    blob->len = sizeof(result) - 1;
    blob->release = blob_release;
    ex->attached++;
    *ret_result = blob;
    return 0;
}

static int example_endpoint_detach(void *priv, const berth_endpoint_spec_t *spec,
                                   const char *result_json, uint32_t flags, berth_err_t *err)
{
    struct example *ex = priv;
    if (ex->attached > 0)
        ex->attached--;
    return 0;
}

static const berth_network_ops_t example_ops = {
    BERTH_OPS_INIT(berth_network_ops_t),        .network_create = example_network_create,
    .network_delete = example_network_delete,   .endpoint_attach = example_endpoint_attach,
    .endpoint_detach = example_endpoint_detach,
};

static const berth_plugin_desc_t example_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_NETWORK,
    .name = "example",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "SDK example: a network driver that attaches nothing",
    .capabilities = BERTH_NETWORK_CAP_NETNS,
    .init = example_init,
    .fini = example_fini,
    .ops = &example_ops,
};

BERTH_PLUGIN_DEFINE(example_desc)
