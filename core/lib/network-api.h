/* SPDX-License-Identifier: Apache-2.0 */
/* What container create and inspect need of networks (network-api.c). */
#ifndef BERTH_NETWORK_API_H
#define BERTH_NETWORK_API_H

#include <jansson.h>

#include <berth/engine.h>

#include "store.h"

/* The default network's record, made through the default driver on first use. */
int berth__network_default(berth_engine_t *e, json_t **ret_doc, berth_err_t *err);

/*
 * Resolve the networks of a container being created from @body into record
 * @doc: HostConfig.NetworkMode ("default" and absent: the default network)
 * set to the network's name, and "networks": [{"id", "name", "ip",
 * "aliases"}], primary first. Checks addresses, aliases and published ports.
 */
int berth__container_networks_plan(berth_engine_t *e, json_t *body, json_t *doc, berth_err_t *err);

/*
 * Docker's NetworkSettings for container record @doc (its endpoints while it
 * runs). It reads the record's id, config.ExposedPorts, networks and
 * host_config.NetworkMode only. _in reads the endpoints in the caller's
 * transaction (NULL: none are read).
 */
json_t *berth__container_network_settings(berth_engine_t *e, json_t *doc);
json_t *berth__container_network_settings_in(berth_txn_t *txn, json_t *doc);

#endif /* BERTH_NETWORK_API_H */
