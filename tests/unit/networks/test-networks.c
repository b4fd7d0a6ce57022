/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's networks (engine.h, networks.h) over the fake network
 * driver, which touches no host state: names and ids, subnets picked from
 * the pools and never overlapping, the pre-defined networks, containers'
 * networks resolved at create (addresses checked, nothing left on a
 * refusal), removal refused while a container refers to a network, prune,
 * connect and disconnect of stopped containers, filters, and endpoint
 * records released through the driver when their monitor is gone.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <berth/engine.h>

#include "engine-internal.h"
#include "networks.h"
#include "store.h"
#include "util.h"

struct fx {
    char dir[256];
    char rootfs[300];
    berth_engine_t *e;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char root[300], run[300], cfg[300];
    berth_engine_opts_t opts = { .struct_size = sizeof(opts) };
    FILE *c;

    snprintf(f->dir, sizeof(f->dir), "%s/berth-net-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(root, sizeof(root), "%s/root", f->dir);
    snprintf(run, sizeof(run), "%s/run", f->dir);
    snprintf(f->rootfs, sizeof(f->rootfs), "%s/rootfs", f->dir);
    snprintf(cfg, sizeof(cfg), "%s/c.json", f->dir);
    assert_int_equal(mkdir(f->rootfs, 0755), 0);
    c = fopen(cfg, "w");
    assert_non_null(c);
    /* The built plugins come from BERTH_PLUGIN_PATH (meson's test env). */
    /* A pool of its own, so that what other networks this host has doesn't matter. */
    fputs("{\"defaults\": {\"network\": \"fake\", \"isolation\": \"fake\"}, "
          "\"networks\": {\"address_pools\": [{\"base\": \"100.120.0.0/22\", \"size\": 24}]}}",
          c);
    fclose(c);
    opts.config_path = cfg;
    opts.root = root;
    opts.runroot = run;
    assert_int_equal(berth_engine_open(&opts, &f->e, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    berth_engine_close(f->e);
    assert_int_equal(berth__rm_rf(f->dir), 0);
    free(f);
    return 0;
}

static json_t *create_net(struct fx *f, const char *name, const char *subnet, int want)
{
    berth_err_t err = { 0 };
    json_t *body = json_pack("{s:s}", "Name", name), *ret = NULL, *insp = NULL;
    int r;

    if (subnet)
        json_object_set_new(body, "IPAM", json_pack("{s:[{s:s}]}", "Config", "Subnet", subnet));
    r = berth_network_create(f->e, body, &ret, &err);
    json_decref(body);
    if (r != want)
        fail_msg("create %s: %d (%s), want %d", name, r, err.msg, want);
    if (r < 0)
        return NULL;
    json_decref(ret);
    assert_int_equal(berth_network_inspect(f->e, name, &insp, &err), 0);
    return insp;
}

static const char *subnet_of(json_t *api)
{
    return json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(api, "IPAM"), "Config"), 0), "Subnet"));
}

static void test_create_pick_and_refuse(void **state)
{
    struct fx *f = *state;
    berth_err_t err = { 0 };
    json_t *a, *b, *c, *insp = NULL, *body;

    a = create_net(f, "front", NULL, 0);
    b = create_net(f, "back", NULL, 0);
    /* The pool's first subnet is the default network's; user networks take the next ones. */
    assert_string_equal(subnet_of(a), "100.120.1.0/24");
    assert_string_equal(subnet_of(b), "100.120.2.0/24");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(a, "IPAM"), "Config"), 0), "Gateway")),
        "100.120.1.1");
    assert_string_equal(json_string_value(json_object_get(a, "Driver")), "fake");
    c = create_net(f, "given", "10.99.0.0/24", 0);
    assert_string_equal(subnet_of(c), "10.99.0.0/24");

    /* Refusals name what is wrong and store nothing. */
    /* The /22 holds four /24s: the default network's, front's, back's and one more. */
    json_decref(create_net(f, "third", NULL, 0));
    create_net(f, "fourth", NULL, -ENOSPC);
    create_net(f, "front", NULL, -EEXIST);
    create_net(f, "bridge", NULL, -EEXIST);
    create_net(f, "host", NULL, -EEXIST);
    create_net(f, "-bad", NULL, -EINVAL);
    create_net(f, "overlap", "10.99.0.128/25", -EINVAL);
    create_net(f, "badnet", "10.1.2.3", -EINVAL);
    create_net(f, "v6", "fd00::/64", -EINVAL);
    body = json_pack("{s:s, s:{s:[{s:s, s:s}]}}", "Name", "gw", "IPAM", "Config", "Subnet",
                     "10.50.0.0/24", "Gateway", "10.51.0.1");
    assert_int_equal(berth_network_create(f->e, body, &insp, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "gateway"));
    json_decref(body);
    assert_int_equal(berth_network_inspect(f->e, "overlap", &insp, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "network overlap not found"));

    /* By id and by unique id prefix. */
    assert_int_equal(
        berth_network_inspect(f->e, json_string_value(json_object_get(a, "Id")), &insp, &err), 0);
    json_decref(insp);
    {
        char prefix[13];
        snprintf(prefix, sizeof(prefix), "%.12s", json_string_value(json_object_get(b, "Id")));
        assert_int_equal(berth_network_inspect(f->e, prefix, &insp, &err), 0);
        assert_string_equal(json_string_value(json_object_get(insp, "Name")), "back");
        json_decref(insp);
    }
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_list_and_filters(void **state)
{
    struct fx *f = *state;
    berth_err_t err = { 0 };
    json_t *list = NULL, *filt;

    json_decref(create_net(f, "mine", NULL, 0));
    assert_int_equal(berth_network_list(f->e, NULL, &list, &err), 0);
    /* bridge (made on first use), mine, then the two without a driver. */
    assert_int_equal(json_array_size(list), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "Name")),
                        "bridge");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "Driver")),
                        "fake");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 3), "Driver")),
                        "null");
    json_decref(list);

    filt = json_pack("{s:{s:b}}", "type", "custom", 1);
    assert_int_equal(berth_network_list(f->e, filt, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "Name")),
                        "mine");
    json_decref(list);
    json_decref(filt);
    filt = json_pack("{s:[s]}", "name", "ridg");
    assert_int_equal(berth_network_list(f->e, filt, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    json_decref(filt);
    filt = json_pack("{s:[s]}", "colour", "red");
    assert_int_equal(berth_network_list(f->e, filt, &list, &err), -EINVAL);
    json_decref(filt);
}

static int create_ctr(struct fx *f, const char *name, const char *net, const char *ip,
                      berth_err_t *err)
{
    char id[65];
    json_t *body = json_pack("{s:[s], s:s, s:{s:s}}", "Cmd", "true", "Rootfs", f->rootfs,
                             "HostConfig", "NetworkMode", net);
    int r;

    if (ip)
        json_object_set_new(body, "NetworkingConfig",
                            json_pack("{s:{s:{s:{s:s}}}}", "EndpointsConfig", net, "IPAMConfig",
                                      "IPv4Address", ip));
    r = berth_container_create(f->e, name, body, id, err);
    json_decref(body);
    return r;
}

static void test_containers_refer(void **state)
{
    struct fx *f = *state;
    berth_err_t err = { 0 };
    json_t *insp = NULL, *ns, *list = NULL;

    json_decref(create_net(f, "app", "10.70.0.0/24", 0));
    /* An address outside the subnet, the gateway, an unknown network: refused, nothing made. */
    assert_int_equal(create_ctr(f, "c0", "app", "10.71.0.5", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "10.71.0.5"));
    assert_int_equal(create_ctr(f, "c0", "app", "10.70.0.1", &err), -EINVAL);
    assert_int_equal(create_ctr(f, "c0", "nosuch", NULL, &err), -ENOENT);
    assert_int_equal(create_ctr(f, "c0", "container:x", NULL, &err), -EINVAL);
    assert_int_equal(berth_container_list(f->e, BERTH_LIST_ALL, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    assert_int_equal(create_ctr(f, "c1", "app", "10.70.0.9", &err), 0);
    assert_int_equal(berth_container_inspect(f->e, "c1", &insp, &err), 0);
    ns = json_object_get(json_object_get(insp, "NetworkSettings"), "Networks");
    assert_non_null(json_object_get(ns, "app"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(ns, "app"), "IPAMConfig"),
                                          "IPv4Address")),
        "10.70.0.9");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(insp, "HostConfig"), "NetworkMode")),
        "app");
    json_decref(insp);

    /* In use by a created container: not removed, not pruned. */
    assert_int_equal(berth_network_remove(f->e, "app", &err), -EBUSY);
    assert_non_null(strstr(err.msg, "active endpoints"));
    assert_int_equal(berth_network_prune(f->e, NULL, &list, &err), 0);
    assert_int_equal(json_array_size(json_object_get(list, "NetworksDeleted")), 0);
    json_decref(list);
    assert_int_equal(berth_network_remove(f->e, "bridge", &err), -EPERM);
    assert_int_equal(berth_network_remove(f->e, "none", &err), -EPERM);

    assert_int_equal(berth_container_remove(f->e, "c1", 0, &err), 0);
    assert_int_equal(berth_network_remove(f->e, "app", &err), 0);
    assert_int_equal(berth_network_remove(f->e, "app", &err), -ENOENT);
}

static void test_default_and_pseudo(void **state)
{
    struct fx *f = *state;
    berth_err_t err = { 0 };
    json_t *insp = NULL;
    char id[65];
    json_t *body = json_pack("{s:[s], s:s}", "Cmd", "true", "Rootfs", f->rootfs);

    /* No NetworkMode: the default network, as in Docker. */
    assert_int_equal(berth_container_create(f->e, "d", body, id, &err), 0);
    json_decref(body);
    assert_int_equal(berth_container_inspect(f->e, "d", &insp, &err), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(insp, "HostConfig"), "NetworkMode")),
        "bridge");
    json_decref(insp);
    assert_int_equal(create_ctr(f, "h", "host", NULL, &err), 0);
    assert_int_equal(berth_container_inspect(f->e, "h", &insp, &err), 0);
    assert_non_null(json_object_get(
        json_object_get(json_object_get(insp, "NetworkSettings"), "Networks"), "host"));
    json_decref(insp);
    /* host can't be mixed with another network. */
    body = json_pack("{s:[s], s:s, s:{s:s}, s:{s:{s:{}}}}", "Cmd", "true", "Rootfs", f->rootfs,
                     "HostConfig", "NetworkMode", "host", "NetworkingConfig", "EndpointsConfig",
                     "bridge");
    assert_int_equal(berth_container_create(f->e, "h2", body, id, &err), -EINVAL);
    json_decref(body);
}

static void test_connect_disconnect_prune(void **state)
{
    struct fx *f = *state;
    berth_err_t err = { 0 };
    json_t *insp = NULL, *ret = NULL, *ep;

    json_decref(create_net(f, "one", NULL, 0));
    json_decref(create_net(f, "two", NULL, 0));
    json_decref(create_net(f, "spare", NULL, 0));
    assert_int_equal(create_ctr(f, "c", "one", NULL, &err), 0);
    ep = json_pack("{s:[s]}", "Aliases", "db");
    assert_int_equal(berth_network_connect(f->e, "two", "c", ep, &err), 0);
    assert_int_equal(berth_network_connect(f->e, "two", "c", ep, &err), -EEXIST);
    assert_int_equal(berth_network_connect(f->e, "host", "c", ep, &err), -EINVAL);
    json_decref(ep);
    assert_int_equal(berth_container_inspect(f->e, "c", &insp, &err), 0);
    assert_int_equal(
        json_object_size(json_object_get(json_object_get(insp, "NetworkSettings"), "Networks")), 2);
    json_decref(insp);

    /* prune: only the network nobody refers to goes. */
    assert_int_equal(berth_network_prune(f->e, NULL, &ret, &err), 0);
    assert_int_equal(json_array_size(json_object_get(ret, "NetworksDeleted")), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(ret, "NetworksDeleted"), 0)), "spare");
    json_decref(ret);

    assert_int_equal(berth_network_disconnect(f->e, "one", "c", 0, &err), 0);
    assert_int_equal(berth_network_disconnect(f->e, "one", "c", 0, &err), -ENOENT);
    assert_int_equal(berth_container_inspect(f->e, "c", &insp, &err), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(insp, "HostConfig"), "NetworkMode")),
        "two");
    json_decref(insp);
    assert_int_equal(berth_network_remove(f->e, "one", &err), 0);
    assert_int_equal(berth_network_remove(f->e, "two", &err), -EBUSY);
}

static void test_endpoints_released(void **state)
{
    struct fx *f = *state;
    berth_store_t *store = berth__engine_store(f->e);
    berth_err_t err = { 0 };
    berth_txn_t *txn = NULL;
    json_t *net = NULL, *ep, *eps = NULL;
    const char *cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    json_decref(create_net(f, "lost", NULL, 0));
    assert_int_equal(berth__store_txn_begin(store, 0, &txn, &err), 0);
    assert_int_equal(berth__network_get_in(txn, "lost", &net, &err), 0);
    berth__store_txn_abort(txn);
    /* What a monitor leaves when it is SIGKILLed after attaching. */
    ep = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s, s:{}}", "container", cid, "name", "x", "network",
                   json_object_get(net, "id"), "network_name", "lost", "driver", "fake", "ifname",
                   "eth0", "result");
    assert_int_equal(berth__store_txn_begin(store, 1, &txn, &err), 0);
    assert_int_equal(berth__endpoint_put_in(txn, ep, &err), 0);
    assert_int_equal(berth__store_txn_commit(txn, &err), 0);
    assert_int_equal(berth__endpoints_release(store, berth__engine_loaded(f->e),
                                              berth__engine_config(f->e)->plugin_dirs, cid, &err),
                     0);
    assert_int_equal(berth__store_txn_begin(store, 0, &txn, &err), 0);
    assert_int_equal(berth__endpoints_in(txn, cid, &eps, &err), 0);
    berth__store_txn_abort(txn);
    assert_int_equal(json_array_size(eps), 0);
    json_decref(eps);
    json_decref(ep);
    json_decref(net);
}

/* The member @key of each row equals @want's. */
static void assert_member_equal(json_t *row, const char *key, json_t *want)
{
    json_t *got = json_object_get(row, key);

    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);
        fail_msg("%s: got %s, want %s", key, g ? g : "(none)", w ? w : "(none)");
    }
}

/*
 * BERTH_LIST_DETAIL reads a few members of each record without parsing it
 * whole: what it gives must be what inspect says, for a container with
 * labels, a bind mount, exposed and published ports and a live endpoint,
 * and for one with none of these.
 */
static void test_list_detail(void **state)
{
    struct fx *f = *state;
    berth_store_t *store = berth__engine_store(f->e);
    berth_err_t err = { 0 };
    berth_txn_t *txn = NULL;
    json_t *net = NULL, *body, *ep, *list = NULL, *row, *insp, *want;
    char id[65], id2[65], bind[400];
    size_t i;

    json_decref(create_net(f, "web", "10.72.0.0/24", 0));
    snprintf(bind, sizeof(bind), "%s:/data:ro", f->rootfs);
    body =
        json_pack("{s:[s], s:s, s:{s:s, s:s}, s:{s:{}, s:{}}, s:{s:s, s:[s], s:{s:[{s:s, "
                  "s:s}]}}}",
                  "Cmd", "true", "Rootfs", f->rootfs, "Labels", "tier", "web", "empty", "",
                  "ExposedPorts", "80/tcp", "53/udp", "HostConfig", "NetworkMode", "web", "Binds",
                  bind, "PortBindings", "80/tcp", "HostIp", "127.0.0.1", "HostPort", "8080");
    assert_int_equal(berth_container_create(f->e, "d1", body, id, &err), 0);
    json_decref(body);
    body = json_pack("{s:[s], s:s, s:{s:s}}", "Cmd", "true", "Rootfs", f->rootfs, "HostConfig",
                     "NetworkMode", "none");
    assert_int_equal(berth_container_create(f->e, "d2", body, id2, &err), 0);
    json_decref(body);

    /* d1's endpoint, as its monitor records it when the container starts. */
    assert_int_equal(berth__store_txn_begin(store, 0, &txn, &err), 0);
    assert_int_equal(berth__network_get_in(txn, "web", &net, &err), 0);
    berth__store_txn_abort(txn);
    ep = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s, s:{}, s:s, s:s, s:s, s:[{s:i, s:s, s:s, "
                   "s:i}]}",
                   "container", id, "name", "d1", "network", json_object_get(net, "id"),
                   "network_name", "web", "driver", "fake", "ifname", "eth0", "result", "address",
                   "10.72.0.5/24", "gateway", "10.72.0.1", "mac", "02:42:0a:48:00:05", "ports",
                   "container_port", 80, "protocol", "tcp", "host_ip", "127.0.0.1", "host_port",
                   8080);
    assert_int_equal(berth__store_txn_begin(store, 1, &txn, &err), 0);
    assert_int_equal(berth__endpoint_put_in(txn, ep, &err), 0);
    assert_int_equal(berth__store_txn_commit(txn, &err), 0);

    assert_int_equal(berth_container_list(f->e, BERTH_LIST_ALL, &list, &err), 0);
    assert_null(json_object_get(json_array_get(list, 0), "Labels"));
    json_decref(list);
    assert_int_equal(berth_container_list(f->e, BERTH_LIST_ALL | BERTH_LIST_DETAIL, &list, &err),
                     0);
    assert_int_equal(json_array_size(list), 2);
    json_array_foreach (list, i, row) {
        const char *rid = json_string_value(json_object_get(row, "Id"));
        json_t *cfg, *ns;

        assert_int_equal(berth_container_inspect(f->e, rid, &insp, &err), 0);
        cfg = json_object_get(insp, "Config");
        ns = json_object_get(insp, "NetworkSettings");
        want = json_object_get(cfg, "Image") ? json_incref(json_object_get(cfg, "Image"))
                                             : json_string("");
        assert_member_equal(row, "Image", want);
        json_decref(want);
        want = json_object_get(insp, "Image") ? json_incref(json_object_get(insp, "Image"))
                                              : json_string("");
        assert_member_equal(row, "ImageID", want);
        json_decref(want);
        want = json_object_get(cfg, "Labels") ? json_incref(json_object_get(cfg, "Labels"))
                                              : json_object();
        assert_member_equal(row, "Labels", want);
        json_decref(want);
        assert_member_equal(row, "Mounts", json_object_get(insp, "Mounts"));
        want = json_pack("{s:O}", "NetworkMode",
                         json_object_get(json_object_get(insp, "HostConfig"), "NetworkMode"));
        assert_member_equal(row, "HostConfig", want);
        json_decref(want);
        want = json_pack("{s:O}", "Networks", json_object_get(ns, "Networks"));
        assert_member_equal(row, "NetworkSettings", want);
        json_decref(want);
        if (!strcmp(rid, id)) {
            /* Published 80/tcp on 127.0.0.1:8080; 53/udp only exposed. */
            want =
                json_pack("[{s:i, s:s}, {s:s, s:i, s:i, s:s}]", "PrivatePort", 53, "Type", "udp",
                          "IP", "127.0.0.1", "PrivatePort", 80, "PublicPort", 8080, "Type", "tcp");
            assert_int_equal(json_array_size(json_object_get(row, "Mounts")), 1);
            assert_string_equal(
                json_string_value(json_object_get(
                    json_object_get(
                        json_object_get(json_object_get(row, "NetworkSettings"), "Networks"),
                        "web"),
                    "IPAddress")),
                "10.72.0.5");
        } else {
            want = json_array();
            assert_int_equal(json_array_size(json_object_get(row, "Mounts")), 0);
        }
        /* Docker's order of Ports is not defined: compare as sets. */
        assert_int_equal(json_array_size(json_object_get(row, "Ports")), json_array_size(want));
        for (size_t k = 0; k < json_array_size(want); k++) {
            int found = 0;
            for (size_t m = 0; m < json_array_size(want); m++)
                found |= json_equal(json_array_get(want, k),
                                    json_array_get(json_object_get(row, "Ports"), m));
            assert_true(found);
        }
        json_decref(want);
        json_decref(insp);
    }
    json_decref(list);
    json_decref(ep);
    json_decref(net);
}

static void test_port_keys(void **state)
{
    unsigned port;
    const char *proto;
    (void)state;
    assert_int_equal(berth__port_key_parse("80", &port, &proto), 0);
    assert_int_equal(port, 80);
    assert_string_equal(proto, "tcp");
    assert_int_equal(berth__port_key_parse("53/udp", &port, &proto), 0);
    assert_string_equal(proto, "udp");
    assert_int_equal(berth__port_key_parse("0/tcp", &port, &proto), -EINVAL);
    assert_int_equal(berth__port_key_parse("65536", &port, &proto), -EINVAL);
    assert_int_equal(berth__port_key_parse("80/icmp", &port, &proto), -EINVAL);
    assert_int_equal(berth__port_key_parse("/tcp", &port, &proto), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_pick_and_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_containers_refer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_and_pseudo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_disconnect_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_detail, setup, teardown),
        cmocka_unit_test(test_port_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
