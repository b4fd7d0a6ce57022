/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake: a network driver for the core's tests that touches no host state. It
 * hands out addresses from the documentation range 192.0.2.0/24 in attach
 * order and returns them as a CNI 1.0 result, so the core's persistence of
 * results and the detach path can be tested unprivileged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/sdk.h>

struct fake {
    uint32_t next_host;
};

static int fake_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                     berth_err_t *err)
{
    struct fake *f = calloc(1, sizeof(*f));
    if (!f)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    f->next_host = 2;
    *ret_priv = f;
    return 0;
}

static void fake_fini(void *priv)
{
    free(priv);
}

static int fake_network_create(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                               berth_blob_t **ret_state, berth_err_t *err)
{
    *ret_state = NULL;
    return 0;
}

static int fake_network_delete(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                               berth_err_t *err)
{
    return 0;
}

static void blob_release(berth_blob_t *b)
{
    free(b->data);
    free(b);
}

static int fake_endpoint_attach(void *priv, const berth_endpoint_spec_t *spec, uint32_t flags,
                                berth_blob_t **ret_result, berth_err_t *err)
{
    struct fake *f = priv;
    berth_blob_t *b;
    int n;

    if (f->next_host > 254)
        return berth_err_set(err, -ENOSPC, "fake: address range exhausted");
    b = calloc(1, sizeof(*b));
    if (!b)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    n = asprintf(&b->data,
                 "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"%s\"}],"
                 "\"ips\":[{\"address\":\"192.0.2.%u/24\",\"interface\":0}]}",
                 spec->ifname ? spec->ifname : "eth0", f->next_host);
    if (n < 0) {
        free(b);
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    }
    f->next_host++;
    b->struct_size = sizeof(*b);
    b->len = (size_t)n;
    b->release = blob_release;
    *ret_result = b;
    return 0;
}

static int fake_endpoint_detach(void *priv, const berth_endpoint_spec_t *spec,
                                const char *result_json, uint32_t flags, berth_err_t *err)
{
    return 0;
}

static const berth_network_ops_t fake_ops = {
    BERTH_OPS_INIT(berth_network_ops_t),     .network_create = fake_network_create,
    .network_delete = fake_network_delete,   .endpoint_attach = fake_endpoint_attach,
    .endpoint_detach = fake_endpoint_detach,
};

static const berth_plugin_desc_t fake_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_NETWORK,
    .name = "fake",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "network driver for tests; touches no host state",
    .capabilities = BERTH_NETWORK_CAP_NETNS,
    .init = fake_init,
    .fini = fake_fini,
    .ops = &fake_ops,
};

BERTH_PLUGIN_DEFINE(fake_desc)
