/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Networks and endpoints in the store, and the host side of attaching a
 * container to them: shared by the engine (create, remove, the cleanup of
 * a container whose monitor is gone) and berth-shim (attach at start,
 * detach at exit).
 *
 * A network record (BERTH_DB_NETWORKS, keyed by id): {"id", "name",
 * "driver", "created_ns", "subnet", "gateway", "internal", "options",
 * "labels", "driver_state"}. "host" and "none" are not stored: they have
 * no driver and nothing to attach.
 *
 * An endpoint record (BERTH_DB_ENDPOINTS, keyed "<container id>/<network
 * id>"), written by the monitor once the driver attached the container and
 * deleted once it detached it: {"container", "name" (the container's),
 * "network", "network_name", "driver", "ifname", "result" (the driver's CNI
 * result), "address" (CIDR), "gateway", "mac", "aliases", "ports"
 * ([{"host_ip", "host_port", "container_port", "protocol"}]), "hosts" (the
 * container's /etc/hosts on the host, which peers on user networks
 * rewrite)}. An endpoint record outliving its monitor is what lets the
 * engine release addresses and port rules later.
 */
#ifndef BERTH_NETWORKS_H
#define BERTH_NETWORKS_H

#include <jansson.h>

#include <berth/types.h>

#include "plugins.h"
#include "store.h"

#define BERTH_NETWORK_DEFAULT "bridge"

/* 1 for "host" and "none", the networks without a driver. */
int berth__network_is_pseudo(const char *name);

/* The record of network @ref (name, id or unique id prefix); -ENOENT "network X not found". */
int berth__network_get_in(berth_txn_t *txn, const char *ref, json_t **ret_doc, berth_err_t *err);
/* Every stored network record, in name order. */
int berth__network_list_in(berth_txn_t *txn, json_t **ret_array, berth_err_t *err);

/*
 * The settings a driver gets as berth_network_spec_t.config_json: "subnet",
 * "gateway", "internal", "options", "labels", "driver_state". Malloc'd.
 */
char *berth__network_driver_json(json_t *net);

/* Every endpoint record (of container @cid only, unless NULL). */
int berth__endpoints_in(berth_txn_t *txn, const char *cid, json_t **ret_array, berth_err_t *err);
int berth__endpoint_put_in(berth_txn_t *txn, json_t *ep, berth_err_t *err);
int berth__endpoint_del_in(berth_txn_t *txn, const char *cid, const char *netid, berth_err_t *err);

/*
 * Detach endpoint @ep (a record as above) of network @net through @reg's
 * driver, loading it from @plugin_dirs when needed. A network that is gone
 * leaves nothing to detach from (0).
 */
int berth__endpoint_detach(berth_registry_t *reg, char *const *plugin_dirs, json_t *net, json_t *ep,
                           berth_err_t *err);

/*
 * Detach and forget every endpoint the store still has for container @cid
 * (its monitor is gone, or it is about to start again). Best effort over
 * all of them; the first error is returned.
 */
int berth__endpoints_release(berth_store_t *store, berth_registry_t *reg, char *const *plugin_dirs,
                             const char *cid, berth_err_t *err);

/*
 * CHECK every endpoint whose sandbox still exists through its driver (a
 * restarted daemon verifies what running containers were given). @report
 * (may be NULL) hears of each failing one. Returns how many failed, or a
 * negative errno when the store could not be read.
 */
typedef void (*berth_endpoint_report_fn)(void *userdata, const char *cid, const char *network,
                                         const char *msg);
int berth__endpoints_check(berth_store_t *store, berth_registry_t *reg, char *const *plugin_dirs,
                           berth_endpoint_report_fn report, void *userdata, berth_err_t *err);

/* ---- the monitor's side ---- */

typedef struct berth_netsetup berth_netsetup_t;

/*
 * Everything container @record needs from its networks before it runs, in
 * directory @etc_dir (made): the host ports it publishes, reserved (bound
 * sockets held until teardown); each network's endpoint, attached through
 * its driver to the sandbox at @attach (NULL for "host" and "none") and
 * recorded in the store; and the files bind-mounted over /etc/hosts,
 * /etc/hostname and /etc/resolv.conf. Peers on the same user networks get
 * the container's name in their /etc/hosts. Undone entirely on failure,
 * with the reason in @err ("port 8080 is already allocated", the driver's).
 */
int berth__netsetup(berth_store_t *store, berth_registry_t *reg, char *const *plugin_dirs,
                    json_t *record, const berth_net_attach_t *attach, const char *hostname,
                    const char *etc_dir, berth_netsetup_t **ret, berth_err_t *err);
/*
 * Detach every endpoint, forget their records, update the peers' hosts
 * files, release the reserved ports; frees @ns (NULL allowed).
 */
void berth__netsetup_teardown(berth_netsetup_t *ns, berth_store_t *store);

/*
 * Attach running container @ns to one more network @net (a record) as
 * "networks" entry @want says, recording the endpoint and telling peers
 * (docker network connect). -EEXIST when it is on it already.
 */
int berth__netsetup_connect(berth_netsetup_t *ns, berth_store_t *store, json_t *net, json_t *want,
                            berth_err_t *err);
/* Detach running container @ns from network @netid and forget its endpoint there. */
int berth__netsetup_disconnect(berth_netsetup_t *ns, berth_store_t *store, const char *netid,
                               berth_err_t *err);

/* Parse "80", "80/tcp", "53/udp" (ExposedPorts and PortBindings keys). */
int berth__port_key_parse(const char *key, unsigned *ret_port, const char **ret_proto);

#endif /* BERTH_NETWORKS_H */
