/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/network.h
 * @brief Network drivers: networks, and endpoints that attach sandboxes to them.
 *
 * A network is a named configuration the core keeps in its store (subnet,
 * gateway, internal, driver options); the driver turns it into host state
 * (a bridge, a CNI conflist) on create and removes it on delete. An endpoint
 * attaches one sandbox, reached through a berth_net_attach_t (a netns path,
 * or a tap device for VM sandboxes), to one network. Results are JSON texts
 * in the CNI 1.0 result format ("interfaces", "ips", "routes", "dns"), so a
 * driver delegating to CNI passes them through, and the core persists them to
 * detach and check the endpoint later, also from another process.
 */
#ifndef BERTH_NETWORK_H
#define BERTH_NETWORK_H

#include <berth/isolation.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_NETWORK_CAP_NETNS     (1ull << 0) /**< attaches sandboxes given as a netns */
#define BERTH_NETWORK_CAP_TAP       (1ull << 1) /**< attaches sandboxes given as a tap device */
#define BERTH_NETWORK_CAP_PORTS     (1ull << 2) /**< publishes ports */
#define BERTH_NETWORK_CAP_DNS       (1ull << 3) /**< resolves container names */
#define BERTH_NETWORK_CAP_MULTIHOST (1ull << 4) /**< spans hosts */

/** One network; borrowed for the call. */
typedef struct berth_network_spec {
    uint32_t struct_size;
    uint32_t flags;
    const char *id;   /**< 64 hex chars */
    const char *name; /**< user-visible name */
    /**
     * The network's settings as a JSON object text: "subnet", "gateway",
     * "internal", "ipv6", "options" (driver-specific), "labels".
     */
    const char *config_json;
} berth_network_spec_t;

/** One endpoint; borrowed for the call. */
typedef struct berth_endpoint_spec {
    uint32_t struct_size;
    uint32_t flags;
    const berth_network_spec_t *network;
    const char *container_id;
    const char *ifname; /**< interface name inside the sandbox ("eth0") */
    const berth_net_attach_t *attach;
    /**
     * Per-endpoint requests as a JSON object text: "ip", "mac", "aliases",
     * "port_mappings" ([{"host_ip","host_port","container_port","protocol"}]
     * with host ports already allocated by the core), "dns".
     */
    const char *request_json;
} berth_endpoint_spec_t;

typedef struct berth_network_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* ABI 1.0 */

    /** Whether the driver can work here (optional). */
    int (*probe)(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err);
    /**
     * Set up host state for a network (required). May return the driver's
     * state for it as JSON in *ret_state (stored by the core and passed back
     * in config_json's "driver_state" later); *ret_state may stay NULL.
     */
    int (*network_create)(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                          berth_blob_t **ret_state, berth_err_t *err);
    /** Remove the network's host state (required). Absent state is not an error. */
    int (*network_delete)(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                          berth_err_t *err);
    /** Attach a sandbox; *ret_result is the CNI-format result, owned by the caller (required). */
    int (*endpoint_attach)(void *priv, const berth_endpoint_spec_t *spec, uint32_t flags,
                           berth_blob_t **ret_result, berth_err_t *err);
    /**
     * Detach a sandbox given the result attach returned (NULL when lost);
     * releases addresses and ports even when the sandbox is gone (required).
     */
    int (*endpoint_detach)(void *priv, const berth_endpoint_spec_t *spec, const char *result_json,
                           uint32_t flags, berth_err_t *err);
    /** Verify an attached endpoint still works as @p result_json says (optional). */
    int (*endpoint_check)(void *priv, const berth_endpoint_spec_t *spec, const char *result_json,
                          uint32_t flags, berth_err_t *err);
} berth_network_ops_t;

#define BERTH_NETWORK_OPS_SIZE_1_0                                                                 \
    (offsetof(berth_network_ops_t, endpoint_check) + sizeof(void (*)(void)))

#ifdef __cplusplus
}
#endif

#endif /* BERTH_NETWORK_H */
