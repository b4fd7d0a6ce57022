/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The conflist the cni driver writes for a berth network, built from the
 * network's settings (berth_network_spec_t.config_json).
 */
#ifndef NETWORK_CNI_CONF_H
#define NETWORK_CNI_CONF_H

#include <jansson.h>

#include <berth/sdk.h>

/** The CNI spec version berth speaks: Debian 12's plugins (1.1.1) stop at 1.0.0. */
#define NETWORK_CNI_VERSION "1.0.0"

/** Linux interface names: IFNAMSIZ - 1. */
#define NETWORK_CNI_IFNAME_MAX 15

/**
 * Build the conflist for @p spec: bridge (ipMasq false: the driver makes the
 * masquerade rule itself; with host-local IPAM whose lease
 * files live under @p state_dir/ipam/<id>), portmap unless the network is
 * internal, firewall when options.firewall is true.
 * @param[out] ret_conflist a new reference, set only on success.
 * @param[out] ret_bridge the Linux bridge's name, set only on success.
 * @return 0, or -EINVAL with the reason in @p err (bad subnet, gateway, bridge name, id).
 */
int network_cni_conflist_build(const berth_network_spec_t *spec, const char *state_dir,
                               json_t **ret_conflist, char ret_bridge[NETWORK_CNI_IFNAME_MAX + 1],
                               berth_err_t *err);

/** True when @p id is a network or container id the driver uses in file names and CNI. */
int network_cni_id_valid(const char *id);

#endif /* NETWORK_CNI_CONF_H */
