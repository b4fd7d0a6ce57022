/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Networks for hyperv sandboxes, as Kata's "tcfilter" model does them
 * (docs/hyperv.md, "Networks"): the sandbox owns a network namespace on the
 * host, which the network drivers fill exactly as for process isolation
 * (CNI leaves eth0 there with its address, routes and MAC). Before qemu
 * starts, a tap device is made in that namespace and tc redirects every
 * frame arriving on eth0 to the tap and every frame arriving on the tap
 * (what the guest sends) out of eth0. qemu gets the tap as an open fd; the
 * guest's virtio-net interface takes eth0's MAC and addresses, so to the
 * rest of the network the guest *is* eth0.
 *
 * Nothing here is thread-safe, and every call may run a short-lived thread
 * (a network namespace is entered per thread, so the caller's stays as is).
 */
#ifndef BERTH_HYPERV_NET_H
#define BERTH_HYPERV_NET_H

#include <jansson.h>

#include <berth/types.h>

/* The tap's name inside the sandbox's namespace (one per namespace: no clash). */
#define HV_NET_TAP "tap0"

/*
 * Create a new, empty network namespace pinned by a bind mount on @path (a
 * new file: -EEXIST when it exists). Its lo stays down: the guest has its
 * own. Nothing is left on failure.
 */
int hv_net_netns_create(const char *path, berth_err_t *err);

/* Unmount and remove @path; absent is not an error. */
int hv_net_netns_remove(const char *path, berth_err_t *err);

/*
 * The tc binary (iproute2): @configured when set and executable, else the
 * first found in the sbin dirs or $PATH; NULL when none. The result is
 * @configured or static storage (valid until the next call).
 */
const char *hv_net_find_tc(const char *configured);

/* What hv_net_attach() made: the tap and what the guest needs to take eth0's place. */
typedef struct hv_net {
    int tap_fd;   /* the tap, opened in the namespace (close-on-exec); -1: no interface */
    char mac[18]; /* eth0's MAC, "xx:xx:xx:xx:xx:xx" */
    /*
     * The agent's "network" member of create (new reference, NULL without an
     * interface): {"interfaces":[{"name","mac","mtu","addresses":["A/P"]}],
     * "routes":[{"dst":"A/P","gateway":"G"}]}, IPv4 only.
     */
    json_t *config;
} hv_net_t;

/* An hv_net_t holding nothing. */
void hv_net_init(hv_net_t *net);
/* Close the tap fd and drop the config; @net holds nothing afterwards. */
void hv_net_clear(hv_net_t *net);

/*
 * In the namespace at @netns: read @ifname's MAC, MTU, IPv4 addresses and
 * routes; create the tap (up, same MTU); add ingress qdiscs on both and u32
 * filters with mirred egress redirects each way, with the tc binary @tc.
 * Returns 0 with *ret filled; when @ifname does not exist (no network was
 * attached) 0 with ret->tap_fd -1. On failure -errno and nothing is held
 * (the tap, not being persistent, goes with its fd; the filters go with it).
 */
int hv_net_attach(const char *netns, const char *ifname, const char *tc, hv_net_t *ret,
                  berth_err_t *err);

#endif /* BERTH_HYPERV_NET_H */
