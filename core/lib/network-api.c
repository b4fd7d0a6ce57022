/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's network API (engine.h, "networks"), and what container
 * create and inspect need of networks (network-api.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/network.h>

#include "berth-build-config.h"

#include "containers.h"
#include "lifecycle.h"
#include "engine-internal.h"
#include "network-api.h"
#include "networks.h"
#include "shim-client.h"
#include "util.h"

/* ---- IPv4 subnets ---- */

struct subnet {
    uint32_t net; /* host order, host bits zero */
    unsigned prefix;
};

static uint32_t mask_of(unsigned prefix)
{
    return prefix ? 0xffffffffu << (32 - prefix) : 0;
}

static int parse_ip(const char *text, uint32_t *ret)
{
    struct in_addr a;
    if (!text || inet_pton(AF_INET, text, &a) != 1)
        return -EINVAL;
    *ret = ntohl(a.s_addr);
    return 0;
}

static int parse_subnet(const char *text, struct subnet *ret)
{
    char buf[32], *slash, *end;
    unsigned long p;
    uint32_t ip;

    if (!text || strlen(text) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, text);
    if (!(slash = strchr(buf, '/')))
        return -EINVAL;
    *slash++ = '\0';
    errno = 0;
    p = strtoul(slash, &end, 10);
    if (errno || *end || !*slash || p > 30 || p < 8 || parse_ip(buf, &ip) < 0)
        return -EINVAL;
    ret->prefix = (unsigned)p;
    ret->net = ip & mask_of(ret->prefix);
    return 0;
}

static void format_ip(uint32_t ip, char *buf, size_t len)
{
    struct in_addr a = { .s_addr = htonl(ip) };
    inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

static int overlaps(const struct subnet *a, const struct subnet *b)
{
    unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;
    return (a->net & mask_of(p)) == (b->net & mask_of(p));
}

/* Whether @s overlaps a stored network's subnet or a route of the host (/proc/net/route). */
static int subnet_taken(json_t *nets, const struct subnet *s)
{
    json_t *n;
    size_t i;
    FILE *f;
    char line[256];

    json_array_foreach (nets, i, n) {
        struct subnet o;
        if (parse_subnet(json_string_value(json_object_get(n, "subnet")), &o) == 0 &&
            overlaps(&o, s))
            return 1;
    }
    if (!(f = fopen("/proc/net/route", "re")))
        return 0;
    while (fgets(line, sizeof(line), f)) {
        char ifname[32];
        unsigned dst, gw, flags, mask;
        struct subnet o;
        if (sscanf(line, "%31s %x %x %x %*d %*d %*d %x", ifname, &dst, &gw, &flags, &mask) != 5 ||
            mask == 0)
            continue;
        /* The file is in network byte order, printed as a host-order integer. */
        o.net = ntohl(dst);
        o.prefix = (unsigned)__builtin_popcount(mask);
        if (overlaps(&o, s)) {
            fclose(f);
            return 1;
        }
    }
    fclose(f);
    return 0;
}

/*
 * The first free subnet of the address pools: networks.address_pools when
 * configured, else Docker's defaults (172.17-31.0.0/16, then
 * 192.168.0.0/16 in /20 steps). The default network starts at the first
 * subnet; user networks after it, so the default keeps its usual one.
 */
static int subnet_pick(const berth_config_t *cfg, json_t *nets, int for_default, struct subnet *ret)
{
    static const struct {
        const char *base;
        unsigned size;
    } docker[] = { { "172.17.0.0/16", 16 },
                   { "172.18.0.0/15", 16 },
                   { "172.20.0.0/14", 16 },
                   { "172.24.0.0/13", 16 },
                   { "192.168.0.0/16", 20 } };
    size_t n = cfg->address_pools ? json_array_size(cfg->address_pools) : BERTH_ARRAY_SIZE(docker);
    int first = 1;

    for (size_t i = 0; i < n; i++) {
        json_t *p = cfg->address_pools ? json_array_get(cfg->address_pools, i) : NULL;
        const char *base = p ? json_string_value(json_object_get(p, "base")) : docker[i].base;
        unsigned size =
            p ? (unsigned)json_integer_value(json_object_get(p, "size")) : docker[i].size;
        struct subnet pool;
        if (parse_subnet(base, &pool) < 0 || size < pool.prefix || size > 30)
            continue;
        for (uint64_t k = 0; k < (1ull << (size - pool.prefix)); k++) {
            struct subnet s = { .net = pool.net + (uint32_t)(k << (32 - size)), .prefix = size };
            /* The pools' first subnet is the default network's, as 172.17/16 is docker0's. */
            if (first && !for_default) {
                first = 0;
                continue;
            }
            first = 0;
            if (!subnet_taken(nets, &s)) {
                *ret = s;
                return 0;
            }
        }
    }
    return -ENOSPC;
}

/* A network event in @txn; @attrs is stolen. */
static int net_event_in(berth_txn_t *txn, const char *type, const char *action, const char *id,
                        json_t *attrs, berth_err_t *err)
{
    int r = berth__store_event_append(txn, type, action, id, attrs, NULL, err);
    json_decref(attrs);
    return r;
}

/* ---- records ---- */

static int network_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 128)
        return 0;
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
          (name[0] >= '0' && name[0] <= '9')))
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static int random_id(char out[65], berth_err_t *err)
{
    return berth__container_id_new(out, err);
}

/*
 * Make network @name real through its driver and store it, in @txn (a
 * write transaction, so the name and the subnet stay free meanwhile). The
 * caller commits, and calls network_delete if that fails.
 */
static int network_make_in(berth_engine_t *e, berth_txn_t *txn, const char *name,
                           const char *driver, const char *subnet_text, const char *gateway_text,
                           int internal, json_t *options, json_t *labels, int for_default,
                           json_t **ret_doc, berth_err_t *err)
{
    const berth_config_t *cfg = berth__engine_config(e);
    _cleanup_json_ json_t *nets = NULL, *doc = NULL;
    _cleanup_free_ char *cfg_text = NULL;
    const berth_network_ops_t *ops;
    berth_blob_t *state = NULL;
    char id[65], subnet[40], gateway[20];
    struct subnet s;
    uint32_t gw;
    berth_driver_t *d;
    json_t *existing = NULL;
    int r;

    if (!network_name_valid(name))
        return berth_err_set(err, -EINVAL,
                             "invalid network name \"%s\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                             "allowed",
                             name ? name : "");
    if (berth__network_is_pseudo(name) || berth__network_get_in(txn, name, &existing, NULL) == 0) {
        json_decref(existing);
        return berth_err_set(err, -EEXIST, "network with name %s already exists", name);
    }
    if (!driver || !*driver || !strcmp(driver, "bridge"))
        driver = cfg->default_network;
    d = berth__engine_driver(e, BERTH_KIND_NETWORK, driver);
    if (!d)
        return berth_err_set(err, -ENOENT, "network driver \"%s\" is not available", driver);
    {
        berth_err_t perr = { 0 };
        if (berth__driver_probe(d, NULL, &perr) != 0)
            return berth_err_set(err, -ENOTSUP, "network driver \"%s\" can't work here: %s", driver,
                                 perr.msg);
    }
    ops = d->ops;
    if ((r = berth__network_list_in(txn, &nets, err)) < 0)
        return r;
    if (subnet_text && *subnet_text) {
        if (strchr(subnet_text, ':'))
            return berth_err_set(err, -EINVAL, "IPv6 networks are not supported");
        if (parse_subnet(subnet_text, &s) < 0)
            return berth_err_set(err, -EINVAL, "invalid subnet \"%s\": want A.B.C.D/N, N in 8..30",
                                 subnet_text);
        if (subnet_taken(nets, &s))
            return berth_err_set(err, -EINVAL,
                                 "subnet %s overlaps another network or a route of the host",
                                 subnet_text);
    } else if (gateway_text && *gateway_text) {
        return berth_err_set(err, -EINVAL, "a gateway needs a subnet (--subnet)");
    } else if (subnet_pick(cfg, nets, for_default, &s) < 0) {
        return berth_err_set(err, -ENOSPC, "no free subnet left in the default address pools");
    }
    if (gateway_text && *gateway_text) {
        if (parse_ip(gateway_text, &gw) < 0 || (gw & mask_of(s.prefix)) != s.net || gw == s.net ||
            gw == (s.net | ~mask_of(s.prefix)))
            return berth_err_set(err, -EINVAL, "invalid gateway \"%s\" for subnet %s", gateway_text,
                                 subnet_text);
    } else {
        gw = s.net + 1;
    }
    format_ip(s.net, subnet, sizeof(subnet));
    snprintf(subnet + strlen(subnet), sizeof(subnet) - strlen(subnet), "/%u", s.prefix);
    format_ip(gw, gateway, sizeof(gateway));
    if ((r = random_id(id, err)) < 0)
        return r;
    doc = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:o, s:o}", "id", id, "name", name,
                    "driver", driver, "created_ns", (json_int_t)berth__now_ns(), "subnet", subnet,
                    "gateway", gateway, "internal", internal, "options",
                    json_is_object(options) ? json_deep_copy(options) : json_object(), "labels",
                    json_is_object(labels) ? json_deep_copy(labels) : json_object());
    if (!doc || !(cfg_text = berth__network_driver_json(doc)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    {
        berth_network_spec_t spec = {
            .struct_size = sizeof(spec), .id = id, .name = name, .config_json = cfg_text
        };
        if ((r = ops->network_create(d->priv, &spec, 0, &state, err)) < 0)
            return r;
        if (state && state->data) {
            json_t *st = json_loadb(state->data, state->len, 0, NULL);
            if (st)
                json_object_set_new(doc, "driver_state", st);
        }
        berth_blob_release(state);
        if ((r = berth__store_put(txn, BERTH_DB_NETWORKS, id, doc, BERTH_PUT_NOOVERWRITE, err)) <
                0 ||
            (r = net_event_in(txn, "network", "create", id,
                              json_pack("{s:s, s:s}", "name", name, "type", driver), err)) < 0) {
            _cleanup_free_ char *t = berth__network_driver_json(doc);
            spec.config_json = t ? t : cfg_text;
            ops->network_delete(d->priv, &spec, 0, NULL);
            return r;
        }
    }
    *ret_doc = TAKE_PTR(doc);
    return 0;
}

static void network_unmake(berth_engine_t *e, json_t *doc)
{
    berth_driver_t *d = berth__engine_driver(e, BERTH_KIND_NETWORK,
                                             json_string_value(json_object_get(doc, "driver")));
    _cleanup_free_ char *t = berth__network_driver_json(doc);
    berth_network_spec_t spec = { .struct_size = sizeof(spec),
                                  .id = json_string_value(json_object_get(doc, "id")),
                                  .name = json_string_value(json_object_get(doc, "name")),
                                  .config_json = t };
    if (d && t)
        ((const berth_network_ops_t *)d->ops)->network_delete(d->priv, &spec, 0, NULL);
}

/* Store @doc's network for good, or take its host state back. */
static int network_commit(berth_engine_t *e, berth_txn_t *txn, json_t *doc, berth_err_t *err)
{
    int r = berth__store_txn_commit(txn, err);
    if (r < 0)
        network_unmake(e, doc);
    return r;
}

int berth__network_default(berth_engine_t *e, json_t **ret_doc, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *doc = NULL, *opts = NULL;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0)
        return r;
    if (berth__network_get_in(txn, BERTH_NETWORK_DEFAULT, ret_doc, NULL) == 0)
        return 0;
    berth__store_txn_abort(TAKE_PTR(txn));
    /* First use: made under the write lock, so two processes racing make it once. */
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    if (berth__network_get_in(txn, BERTH_NETWORK_DEFAULT, ret_doc, NULL) == 0)
        return 0;
    /*
     * berth0, as docker0, for the host's berth; another root (tests, a
     * second engine) gets a bridge of its own, named after the network.
     */
    if (!(opts = strcmp(berth__engine_config(e)->root, BERTH_DEFAULT_ROOT) == 0
                     ? json_pack("{s:s}", "bridge", "berth0")
                     : json_object()))
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = network_make_in(e, txn, BERTH_NETWORK_DEFAULT, NULL, NULL, NULL, 0, opts, NULL, 1,
                             &doc, err)) < 0)
        return berth_err_prefix(err, r, "setting up the default network");
    if ((r = network_commit(e, TAKE_PTR(txn), doc, err)) < 0)
        return r;
    *ret_doc = TAKE_PTR(doc);
    return 0;
}

static int network_resolve(berth_engine_t *e, const char *ref, json_t **ret_doc, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    berth_store_t *store = berth__engine_store(e);
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (ref && !strcmp(ref, BERTH_NETWORK_DEFAULT))
        return berth__network_default(e, ret_doc, err);
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0)
        return r;
    return berth__network_get_in(txn, ref, ret_doc, err);
}

/* ---- containers ---- */

static int ip_in(json_t *net, const char *ip, berth_err_t *err)
{
    struct subnet s;
    uint32_t a, gw = 0;

    if (parse_ip(ip, &a) < 0)
        return berth_err_set(err, -EINVAL, "invalid IPv4 address \"%s\"", ip);
    if (parse_subnet(json_string_value(json_object_get(net, "subnet")), &s) < 0)
        return berth_err_set(err, -EINVAL, "network %s has no valid subnet",
                             json_string_value(json_object_get(net, "name")));
    parse_ip(json_string_value(json_object_get(net, "gateway")), &gw);
    if ((a & mask_of(s.prefix)) != s.net || a == s.net || a == (s.net | ~mask_of(s.prefix)) ||
        a == gw)
        return berth_err_set(err, -EINVAL, "address %s is not usable on network %s (%s)", ip,
                             json_string_value(json_object_get(net, "name")),
                             json_string_value(json_object_get(net, "subnet")));
    return 0;
}

static int want_entry(json_t *net, json_t *epcfg, json_t **ret, berth_err_t *err)
{
    const char *ip =
        json_string_value(json_object_get(json_object_get(epcfg, "IPAMConfig"), "IPv4Address"));
    json_t *aliases = json_object_get(epcfg, "Aliases"), *a;
    json_t *w;
    size_t i;
    int r;

    if (ip && *ip && (r = ip_in(net, ip, err)) < 0)
        return r;
    json_array_foreach (aliases, i, a)
        if (!network_name_valid(json_string_value(a)))
            return berth_err_set(err, -EINVAL, "invalid network alias \"%s\"",
                                 json_string_value(a) ?: "");
    w = json_pack("{s:O, s:O, s:o}", "id", json_object_get(net, "id"), "name",
                  json_object_get(net, "name"), "aliases",
                  json_is_array(aliases) ? json_deep_copy(aliases) : json_array());
    if (!w)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (ip && *ip)
        json_object_set_new(w, "ip", json_string(ip));
    *ret = w;
    return 0;
}

static int check_ports(json_t *hc, json_t *config, berth_err_t *err)
{
    const char *key, *proto;
    unsigned port;
    json_t *v, *b;
    size_t i;

    json_object_foreach (json_object_get(config, "ExposedPorts"), key, v)
        if (berth__port_key_parse(key, &port, &proto) < 0)
            return berth_err_set(err, -EINVAL, "invalid exposed port \"%s\"", key);
    json_object_foreach (json_object_get(hc, "PortBindings"), key, v) {
        if (berth__port_key_parse(key, &port, &proto) < 0)
            return berth_err_set(err, -EINVAL, "invalid port \"%s\"", key);
        json_array_foreach (v, i, b) {
            const char *ip = json_string_value(json_object_get(b, "HostIp"));
            const char *hp = json_string_value(json_object_get(b, "HostPort"));
            uint32_t a;
            char *end;
            if (ip && *ip && parse_ip(ip, &a) < 0)
                return berth_err_set(err, -EINVAL, "invalid host address \"%s\" for port %s", ip,
                                     key);
            if (hp && *hp) {
                unsigned long n;
                errno = 0;
                n = strtoul(hp, &end, 10);
                if (errno || *end || n > 65535)
                    return berth_err_set(err, -EINVAL, "invalid host port \"%s\" for port %s", hp,
                                         key);
            }
        }
    }
    return 0;
}

int berth__container_networks_plan(berth_engine_t *e, json_t *body, json_t *doc, berth_err_t *err)
{
    json_t *hc = json_object_get(doc, "host_config");
    json_t *eps = json_object_get(json_object_get(body, "NetworkingConfig"), "EndpointsConfig");
    _cleanup_json_ json_t *nets = json_array(), *primary = NULL;
    const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
    const char *key;
    json_t *epcfg, *w = NULL;
    int r;

    if (!nets)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = check_ports(hc, json_object_get(doc, "config"), err)) < 0)
        return r;
    /* An engine without plugins (tests, tools) has no network to default to. */
    if (!mode || !*mode || !strcmp(mode, "default"))
        mode = berth__engine_loaded(e) ? BERTH_NETWORK_DEFAULT : "none";
    if (!strncmp(mode, "container:", 10))
        return berth_err_set(err, -EINVAL,
                             "network mode \"%s\": sharing another container's network is not "
                             "supported",
                             mode);
    if (berth__network_is_pseudo(mode)) {
        json_object_foreach (eps, key, epcfg)
            if (strcmp(key, mode) != 0)
                return berth_err_set(err, -EINVAL,
                                     "container cannot be connected to network %s with network "
                                     "mode %s",
                                     key, mode);
        /* Published ports mean nothing there; Docker ignores them too. */
        json_object_set_new(hc, "NetworkMode", json_string(mode));
        return 0;
    }
    if ((r = network_resolve(e, mode, &primary, err)) < 0)
        return r;
    /* Docker clients name the primary's endpoint as they named the mode ("default" too). */
    epcfg = json_object_get(eps, mode);
    if (!epcfg)
        epcfg = json_object_get(eps, json_string_value(json_object_get(primary, "name")));
    if (!epcfg)
        epcfg = json_object_get(eps, "default");
    if ((r = want_entry(primary, epcfg, &w, err)) < 0)
        return r;
    json_array_append_new(nets, w);
    /* More networks at create (API 1.44+): every other EndpointsConfig entry. */
    json_object_foreach (eps, key, epcfg) {
        _cleanup_json_ json_t *net = NULL;
        json_t *x;
        size_t i;
        int dup = 0;
        if (!strcmp(key, "default") || !strcmp(key, mode))
            continue;
        if (berth__network_is_pseudo(key))
            return berth_err_set(
                err, -EINVAL, "container cannot be connected to network %s and to %s", key, mode);
        if ((r = network_resolve(e, key, &net, err)) < 0)
            return r;
        json_array_foreach (nets, i, x)
            dup |= json_equal(json_object_get(x, "id"), json_object_get(net, "id"));
        if (dup)
            continue;
        if ((r = want_entry(net, epcfg, &w, err)) < 0)
            return r;
        json_array_append_new(nets, w);
    }
    /*
     * The primary network by its name, as Docker records it; last, since
     * @mode points into the value this replaces (and frees).
     */
    if (json_object_set(hc, "NetworkMode", json_object_get(primary, "name")) < 0 ||
        json_object_set(doc, "networks", nets) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

json_t *berth__container_network_settings(berth_engine_t *e, json_t *doc)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;

    if (store && berth__store_txn_begin(store, 0, &txn, NULL) < 0)
        txn = NULL;
    return berth__container_network_settings_in(txn, doc);
}

json_t *berth__container_network_settings_in(berth_txn_t *txn, json_t *doc)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    _cleanup_json_ json_t *eps = NULL;
    json_t *out, *ports, *networks, *w, *ep, *v;
    const char *key;
    size_t i, k;

    out = json_pack("{s:s, s:s, s:b, s:s, s:o, s:s, s:i, s:s, s:s, s:o}", "Bridge", "", "SandboxID",
                    "", "HairpinMode", 0, "SandboxKey", "", "Ports", json_object(), "IPAddress", "",
                    "IPPrefixLen", 0, "Gateway", "", "MacAddress", "", "Networks", json_object());
    if (!out)
        return NULL;
    ports = json_object_get(out, "Ports");
    networks = json_object_get(out, "Networks");
    if (txn && id)
        berth__endpoints_in(txn, id, &eps, NULL);
    json_object_foreach (json_object_get(json_object_get(doc, "config"), "ExposedPorts"), key, v)
        json_object_set_new(ports, key, json_null());
    json_array_foreach (json_object_get(doc, "networks"), i, w) {
        json_t *found = NULL, *n;
        const char *addr;
        char ip[64] = "";
        int plen = 0;
        json_array_foreach (eps, k, ep)
            if (json_equal(json_object_get(ep, "network"), json_object_get(w, "id")))
                found = ep;
        addr = json_string_value(json_object_get(found, "address"));
        if (addr) {
            snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(addr, "/"), addr);
            plen = strchr(addr, '/') ? atoi(strchr(addr, '/') + 1) : 0;
        }
        n = json_pack(
            "{s:o, s:n, s:O, s:O, s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:s, s:n, s:n}", "IPAMConfig",
            json_object_get(w, "ip") ? json_pack("{s:O}", "IPv4Address", json_object_get(w, "ip"))
                                     : json_null(),
            "Links", "Aliases", json_object_get(w, "aliases"), "NetworkID",
            json_object_get(w, "id"), "EndpointID",
            found ? json_string_value(json_object_get(found, "network")) : "", "Gateway",
            json_string_value(json_object_get(found, "gateway")) ?: "", "IPAddress", ip,
            "IPPrefixLen", plen, "IPv6Gateway", "", "GlobalIPv6Address", "", "GlobalIPv6PrefixLen",
            0, "MacAddress", json_string_value(json_object_get(found, "mac")) ?: "", "DriverOpts",
            "DNSNames");
        if (!n)
            continue;
        /* Docker's EndpointID is its own; ours names the endpoint record. */
        if (found)
            json_object_set_new(
                n, "EndpointID",
                json_sprintf("%.32s%.32s", id, json_string_value(json_object_get(w, "id"))));
        /* The top-level address fields are the default network's only, as in Docker. */
        if (found &&
            !strcmp(json_string_value(json_object_get(w, "name")) ?: "", BERTH_NETWORK_DEFAULT)) {
            json_object_set_new(out, "IPAddress", json_string(ip));
            json_object_set_new(out, "IPPrefixLen", json_integer(plen));
            json_object_set(out, "Gateway", json_object_get(n, "Gateway"));
            json_object_set(out, "MacAddress", json_object_get(n, "MacAddress"));
        }
        if (found && json_string_value(json_object_get(found, "netns")))
            json_object_set(out, "SandboxKey", json_object_get(found, "netns"));
        json_object_set_new(networks, json_string_value(json_object_get(w, "name")) ?: "?", n);
        /* Published ports, as the endpoint that published them recorded. */
        json_array_foreach (json_object_get(found, "ports"), k, v) {
            char pk[32], hp[8];
            json_t *list;
            snprintf(pk, sizeof(pk), "%d/%s",
                     (int)json_integer_value(json_object_get(v, "container_port")),
                     json_string_value(json_object_get(v, "protocol")) ?: "tcp");
            snprintf(hp, sizeof(hp), "%d",
                     (int)json_integer_value(json_object_get(v, "host_port")));
            list = json_object_get(ports, pk);
            if (!json_is_array(list)) {
                list = json_array();
                json_object_set_new(ports, pk, list);
            }
            json_array_append_new(list, json_pack("{s:O, s:s}", "HostIp",
                                                  json_object_get(v, "host_ip"), "HostPort", hp));
        }
    }
    /* host and none: the mode's name, with nothing in it, as Docker shows it. */
    {
        const char *mode =
            json_string_value(json_object_get(json_object_get(doc, "host_config"), "NetworkMode"));
        if (berth__network_is_pseudo(mode))
            json_object_set_new(networks, mode,
                                json_pack("{s:n, s:n, s:n, s:s, s:s, s:s, s:s, s:i, s:s}",
                                          "IPAMConfig", "Links", "Aliases", "NetworkID", "",
                                          "EndpointID", "", "Gateway", "", "IPAddress", "",
                                          "IPPrefixLen", 0, "MacAddress", ""));
    }
    return out;
}

/* ---- the public API ---- */

static json_t *network_to_api(json_t *doc, json_t *eps)
{
    char created[48];
    json_t *out, *containers = json_object(), *ep;
    size_t i;

    berth_format_time(json_integer_value(json_object_get(doc, "created_ns")), created,
                      sizeof(created));
    json_array_foreach (eps, i, ep) {
        const char *cid = json_string_value(json_object_get(ep, "container"));
        if (!cid || !json_equal(json_object_get(ep, "network"), json_object_get(doc, "id")))
            continue;
        json_object_set_new(
            containers, cid,
            json_pack("{s:O, s:s, s:s, s:s, s:s}", "Name", json_object_get(ep, "name"),
                      "EndpointID", cid, "MacAddress",
                      json_string_value(json_object_get(ep, "mac")) ?: "", "IPv4Address",
                      json_string_value(json_object_get(ep, "address")) ?: "", "IPv6Address", ""));
    }
    out = json_pack("{s:O, s:O, s:s, s:s, s:O, s:b, s:{s:s, s:{}, s:[{s:O, s:O}]}, s:b, s:b, "
                    "s:b, s:{s:s}, s:b, s:o, s:O, s:O}",
                    "Name", json_object_get(doc, "name"), "Id", json_object_get(doc, "id"),
                    "Created", created, "Scope", "local", "Driver", json_object_get(doc, "driver"),
                    "EnableIPv6", 0, "IPAM", "Driver", "default", "Options", "Config", "Subnet",
                    json_object_get(doc, "subnet"), "Gateway", json_object_get(doc, "gateway"),
                    "Internal", json_is_true(json_object_get(doc, "internal")), "Attachable", 0,
                    "Ingress", 0, "ConfigFrom", "Network", "", "ConfigOnly", 0, "Containers",
                    containers, "Options", json_object_get(doc, "options") ?: json_object(),
                    "Labels", json_object_get(doc, "labels") ?: json_object());
    return out;
}

/* "host" and "none" as Docker lists them; their ids are fixed, derived from the name. */
static json_t *pseudo_to_api(const char *name)
{
    char id[65];
    /* A stable id per name: the name's bytes, hex-encoded and padded. */
    size_t n = 0;
    for (const char *p = name; *p && n < 64; p++)
        n += (size_t)snprintf(id + n, sizeof(id) - n, "%02x", (unsigned char)*p);
    while (n < 64)
        id[n++] = '0';
    id[64] = '\0';
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:s, s:{}, s:[]}, s:b, s:b, s:b, s:{s:s}, "
                     "s:b, s:{}, s:{}, s:{}}",
                     "Name", name, "Id", id, "Created", "0001-01-01T00:00:00Z", "Scope", "local",
                     "Driver", !strcmp(name, "none") ? "null" : "host", "EnableIPv6", 0, "IPAM",
                     "Driver", "default", "Options", "Config", "Internal", 0, "Attachable", 0,
                     "Ingress", 0, "ConfigFrom", "Network", "", "ConfigOnly", 0, "Containers",
                     "Options", "Labels");
}

BERTH_API int berth_network_create(berth_engine_t *e, json_t *body, json_t **ret_json,
                                   berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *doc = NULL;
    json_t *ipam = json_array_get(json_object_get(json_object_get(body, "IPAM"), "Config"), 0);
    const char *name = json_string_value(json_object_get(body, "Name"));
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (!json_is_object(body))
        return berth_err_set(err, -EINVAL, "network create: the body must be a JSON object");
    if (json_is_true(json_object_get(body, "EnableIPv6")))
        return berth_err_set(err, -EINVAL, "IPv6 networks are not supported");
    if (json_array_size(json_object_get(json_object_get(body, "IPAM"), "Config")) > 1)
        return berth_err_set(err, -EINVAL, "only one IPAM config (one subnet) per network");
    if (name && !strcmp(name, BERTH_NETWORK_DEFAULT))
        return berth_err_set(err, -EEXIST, "network with name %s already exists", name);
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    if ((r = network_make_in(e, txn, name, json_string_value(json_object_get(body, "Driver")),
                             json_string_value(json_object_get(ipam, "Subnet")),
                             json_string_value(json_object_get(ipam, "Gateway")),
                             json_is_true(json_object_get(body, "Internal")),
                             json_object_get(body, "Options"), json_object_get(body, "Labels"), 0,
                             &doc, err)) < 0)
        return r;
    if ((r = network_commit(e, TAKE_PTR(txn), doc, err)) < 0)
        return r;
    *ret_json = json_pack("{s:O, s:s}", "Id", json_object_get(doc, "id"), "Warning", "");
    return *ret_json ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}

/* Which containers, in any state, name network @id in their record. */
static int network_users_in(berth_txn_t *txn, const char *id, json_t **ret_names, berth_err_t *err)
{
    _cleanup_json_ json_t *list = NULL, *names = json_array();
    json_t *doc, *w;
    size_t i, k;
    int r;

    if (!names)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__container_list_in(txn, &list, err)) < 0)
        return r;
    json_array_foreach (list, i, doc)
        json_array_foreach (json_object_get(doc, "networks"), k, w)
            if (!strcmp(json_string_value(json_object_get(w, "id")) ?: "", id))
                json_array_append(names, json_object_get(doc, "name"));
    *ret_names = TAKE_PTR(names);
    return 0;
}

static int filter_match(json_t *filters, json_t *api, int users, berth_err_t *err)
{
    const char *key;
    json_t *vals, *v;
    size_t i;

    json_object_foreach (filters, key, vals) {
        int any = 0;
        if (strcmp(key, "name") && strcmp(key, "id") && strcmp(key, "driver") &&
            strcmp(key, "label") && strcmp(key, "type") && strcmp(key, "dangling") &&
            strcmp(key, "scope"))
            return berth_err_set(err, -EINVAL, "invalid filter '%s'", key);
        json_array_foreach (vals, i, v) {
            const char *s = json_string_value(v) ?: "";
            const char *name = json_string_value(json_object_get(api, "Name")) ?: "";
            if (!strcmp(key, "name"))
                any |= strstr(name, s) != NULL;
            else if (!strcmp(key, "id"))
                any |= !strncmp(json_string_value(json_object_get(api, "Id")) ?: "", s, strlen(s));
            else if (!strcmp(key, "driver"))
                any |= !strcmp(json_string_value(json_object_get(api, "Driver")) ?: "", s);
            else if (!strcmp(key, "scope"))
                any |= !strcmp(s, "local");
            else if (!strcmp(key, "type"))
                any |= !strcmp(s, berth__network_is_pseudo(name) ||
                                          !strcmp(name, BERTH_NETWORK_DEFAULT)
                                      ? "builtin"
                                      : "custom");
            else if (!strcmp(key, "dangling"))
                any |= (!strcmp(s, "true") || !strcmp(s, "1")) == !users;
            else {
                const char *eq = strchr(s, '=');
                json_t *labels = json_object_get(api, "Labels");
                if (!eq)
                    any |= json_object_get(labels, s) != NULL;
                else {
                    char k2[256];
                    snprintf(k2, sizeof(k2), "%.*s", (int)(eq - s), s);
                    any |= !strcmp(json_string_value(json_object_get(labels, k2)) ?: "\1", eq + 1);
                }
            }
        }
        if (!any)
            return 0;
    }
    return 1;
}

/* Docker's {"key": {"value": true}} or {"key": ["value"]} as {"key": ["value"]}. */
static json_t *filters_norm(json_t *filters)
{
    json_t *out = json_object(), *v, *x;
    const char *key, *k2;
    size_t i;

    json_object_foreach (filters, key, v) {
        json_t *arr = json_array();
        if (json_is_array(v))
            json_array_foreach (v, i, x)
                json_array_append(arr, x);
        else
            json_object_foreach (v, k2, x)
                json_array_append_new(arr, json_string(k2));
        json_object_set_new(out, key, arr);
    }
    return out;
}

BERTH_API int berth_network_list(berth_engine_t *e, json_t *filters, json_t **ret_json,
                                 berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *docs = NULL, *eps = NULL, *out = json_array(), *f = NULL,
                          *all = json_array(), *bridge = NULL;
    json_t *doc;
    size_t i;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (!out || !all || !(f = filters_norm(filters)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* The default network is listed as Docker lists it, made on first use; without a working
     * driver, the list goes on without it. */
    berth__network_default(e, &bridge, NULL);
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0 ||
        (r = berth__network_list_in(txn, &docs, err)) < 0 ||
        (r = berth__endpoints_in(txn, NULL, &eps, err)) < 0)
        return r;
    json_array_foreach (docs, i, doc) {
        _cleanup_json_ json_t *users = NULL;
        if ((r = network_users_in(txn, json_string_value(json_object_get(doc, "id")), &users,
                                  err)) < 0)
            return r;
        json_t *api = network_to_api(doc, eps);
        json_object_set_new(api, "_users", json_integer((json_int_t)json_array_size(users)));
        json_array_append_new(all, api);
    }
    json_array_append_new(all, pseudo_to_api("host"));
    json_array_append_new(all, pseudo_to_api("none"));
    json_array_foreach (all, i, doc) {
        int users = (int)json_integer_value(json_object_get(doc, "_users"));
        json_object_del(doc, "_users");
        if ((r = filter_match(f, doc, users, err)) < 0)
            return r;
        if (r)
            json_array_append(out, doc);
    }
    *ret_json = TAKE_PTR(out);
    return 0;
}

BERTH_API int berth_network_inspect(berth_engine_t *e, const char *ref, json_t **ret_json,
                                    berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *doc = NULL, *eps = NULL;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (berth__network_is_pseudo(ref)) {
        *ret_json = pseudo_to_api(ref);
        return 0;
    }
    if ((r = network_resolve(e, ref, &doc, err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0 ||
        (r = berth__endpoints_in(txn, NULL, &eps, err)) < 0)
        return r;
    *ret_json = network_to_api(doc, eps);
    return *ret_json ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}

static int network_remove_doc(berth_engine_t *e, json_t *doc, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *users = NULL, *fresh = NULL;
    const char *id = json_string_value(json_object_get(doc, "id"));
    berth_driver_t *d;
    int r;

    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    if ((r = berth__store_get(txn, BERTH_DB_NETWORKS, id, &fresh, err)) < 0)
        return r;
    if ((r = network_users_in(txn, id, &users, err)) < 0)
        return r;
    if (json_array_size(users)) {
        _cleanup_free_ char *names = json_dumps(users, JSON_COMPACT);
        return berth_err_set(err, -EBUSY,
                             "error while removing network: network %s id %s has active "
                             "endpoints (%s)",
                             json_string_value(json_object_get(doc, "name")), id,
                             names ? names : "");
    }
    /* Host state first, under the write lock: nobody attaches meanwhile. */
    d = berth__engine_driver(e, BERTH_KIND_NETWORK,
                             json_string_value(json_object_get(fresh, "driver")));
    if (d) {
        _cleanup_free_ char *t = berth__network_driver_json(fresh);
        berth_network_spec_t spec = { .struct_size = sizeof(spec),
                                      .id = id,
                                      .name = json_string_value(json_object_get(fresh, "name")),
                                      .config_json = t };
        if (!t)
            return berth_err_set(err, -ENOMEM, "out of memory");
        if ((r = ((const berth_network_ops_t *)d->ops)->network_delete(d->priv, &spec, 0, err)) < 0)
            return r;
    }
    if ((r = berth__store_del(txn, BERTH_DB_NETWORKS, id, err)) < 0 ||
        (r = net_event_in(txn, "network", "destroy", id,
                          json_pack("{s:O, s:O}", "name", json_object_get(fresh, "name"), "type",
                                    json_object_get(fresh, "driver")),
                          err)) < 0)
        return r;
    return berth__store_txn_commit(TAKE_PTR(txn), err);
}

BERTH_API int berth_network_remove(berth_engine_t *e, const char *ref, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL;
    berth_store_t *store = berth__engine_store(e);
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (berth__network_is_pseudo(ref) || (ref && !strcmp(ref, BERTH_NETWORK_DEFAULT)))
        return berth_err_set(err, -EPERM, "%s is a pre-defined network and cannot be removed", ref);
    {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0 ||
            (r = berth__network_get_in(txn, ref, &doc, err)) < 0)
            return r;
    }
    if (!strcmp(json_string_value(json_object_get(doc, "name")) ?: "", BERTH_NETWORK_DEFAULT))
        return berth_err_set(err, -EPERM, "%s is a pre-defined network and cannot be removed", ref);
    return network_remove_doc(e, doc, err);
}

BERTH_API int berth_network_prune(berth_engine_t *e, json_t *filters, json_t **ret_json,
                                  berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *docs = NULL, *deleted = json_array(), *f = NULL, *orphans = json_array();
    json_t *doc;
    size_t i;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (!deleted || !orphans || !(f = filters_norm(filters)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        _cleanup_json_ json_t *eps = NULL;
        json_t *ep;
        if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0 ||
            (r = berth__network_list_in(txn, &docs, err)) < 0 ||
            (r = berth__endpoints_in(txn, NULL, &eps, err)) < 0)
            return r;
        /* Endpoints whose container is gone (a monitor killed mid-teardown): released below. */
        json_array_foreach (eps, i, ep) {
            json_t *cid = json_object_get(ep, "container");
            _cleanup_json_ json_t *c = NULL;
            if (berth__store_get(txn, BERTH_DB_CONTAINERS, json_string_value(cid) ?: "", &c,
                                 NULL) == -ENOENT)
                json_array_append(orphans, cid);
        }
    }
    json_array_foreach (orphans, i, doc)
        berth__endpoints_release(store, berth__engine_loaded(e),
                                 berth__engine_config(e)->plugin_dirs, json_string_value(doc),
                                 NULL);
    json_array_foreach (docs, i, doc) {
        const char *name = json_string_value(json_object_get(doc, "name")) ?: "";
        json_t *labels = json_object_get(doc, "labels"), *vals, *v;
        const char *key;
        size_t k;
        int keep = !strcmp(name, BERTH_NETWORK_DEFAULT);
        json_object_foreach (f, key, vals) {
            int neg = !strcmp(key, "label!");
            if (strcmp(key, "label") && !neg)
                return berth_err_set(err, -EINVAL, "invalid filter '%s'", key);
            json_array_foreach (vals, k, v) {
                const char *s = json_string_value(v) ?: "", *eq = strchr(s, '=');
                char lk[256];
                int has;
                snprintf(lk, sizeof(lk), "%.*s", eq ? (int)(eq - s) : (int)strlen(s), s);
                has = eq ? !strcmp(json_string_value(json_object_get(labels, lk)) ?: "\1", eq + 1)
                         : json_object_get(labels, lk) != NULL;
                keep |= neg ? has : !has;
            }
        }
        if (keep)
            continue;
        /* In use: not pruned, and not an error. */
        if (network_remove_doc(e, doc, NULL) == 0)
            json_array_append_new(deleted, json_string(name));
    }
    *ret_json = json_pack("{s:O}", "NetworksDeleted", deleted);
    return *ret_json ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}

/* Ask the monitor of running container @id to attach to or detach from @net. */
static int shim_net(berth_engine_t *e, const char *id, const char *op, json_t *net, json_t *want,
                    berth_err_t *err)
{
    _cleanup_json_ json_t *req =
        json_pack("{s:s, s:O, s:O*}", "op", op, "network", net, "want", want);
    json_t *resp = NULL;
    int fd = -1, r;

    if (!req)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__shim_connect(e, id, &fd, err)) < 0)
        return r;
    r = berth__shim_request(fd, req, &resp, err);
    close(fd);
    json_decref(resp);
    return r;
}

/* The container record @ref in a new write transaction; *ret_txn and *ret_doc owned by the caller. */
static int record_begin(berth_store_t *store, const char *ref, berth_txn_t **ret_txn,
                        json_t **ret_doc, berth_err_t *err)
{
    int r = berth__store_txn_begin(store, 1, ret_txn, err);
    if (r == 0 && (r = berth__container_get_in(*ret_txn, ref, ret_doc, err)) < 0) {
        berth__store_txn_abort(*ret_txn);
        *ret_txn = NULL;
    }
    return r;
}

static int running(json_t *doc)
{
    uint32_t st = berth__record_state(doc);
    return st == BERTH_ST_RUNNING || st == BERTH_ST_PAUSED;
}

BERTH_API int berth_network_connect(berth_engine_t *e, const char *netref, const char *ref,
                                    json_t *endpoint, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *net = NULL, *doc = NULL, *w = NULL;
    _cleanup_txn_ berth_txn_t *txn = NULL;
    json_t *nets, *x, *hc;
    size_t i;
    int r, live = 0;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (berth__network_is_pseudo(netref))
        return berth_err_set(err, -EINVAL,
                             "container cannot be disconnected from host network or connected to "
                             "host network");
    if ((r = network_resolve(e, netref, &net, err)) < 0)
        return r;
    if ((r = record_begin(store, ref, &txn, &doc, err)) < 0)
        return r;
    hc = json_object_get(doc, "host_config");
    if (berth__network_is_pseudo(json_string_value(json_object_get(hc, "NetworkMode"))))
        return berth_err_set(err, -EINVAL,
                             "container sharing network namespace with host or none cannot be "
                             "connected to any other network");
    json_array_foreach (json_object_get(doc, "networks"), i, x)
        if (json_equal(json_object_get(x, "id"), json_object_get(net, "id")))
            return berth_err_set(err, -EEXIST, "endpoint with name %s already exists in network %s",
                                 json_string_value(json_object_get(doc, "name")),
                                 json_string_value(json_object_get(net, "name")));
    if ((r = want_entry(net, endpoint, &w, err)) < 0)
        return r;
    /*
     * A running container is attached first, by its monitor, which writes
     * the endpoint record itself: outside our write transaction. The record
     * follows once that worked.
     */
    if (running(doc)) {
        berth__store_txn_abort(TAKE_PTR(txn));
        if ((r = shim_net(e, json_string_value(json_object_get(doc, "id")), "net-connect", net, w,
                          err)) < 0)
            return r;
        live = 1;
        json_decref(TAKE_PTR(doc));
        if ((r = record_begin(store, ref, &txn, &doc, err)) < 0)
            goto undo;
        hc = json_object_get(doc, "host_config");
    }
    nets = json_object_get(doc, "networks");
    if (!json_is_array(nets)) {
        json_object_set_new(doc, "networks", json_array());
        nets = json_object_get(doc, "networks");
    }
    json_array_append(nets, w);
    if (json_array_size(nets) == 1)
        json_object_set(hc, "NetworkMode", json_object_get(net, "name"));
    if ((r = berth__container_update_in(txn, doc, "update", NULL, NULL, err)) < 0 ||
        (r = net_event_in(txn, "network", "connect", json_string_value(json_object_get(net, "id")),
                          json_pack("{s:O, s:O, s:O}", "container", json_object_get(doc, "id"),
                                    "name", json_object_get(net, "name"), "type",
                                    json_object_get(net, "driver")),
                          err)) < 0 ||
        (r = berth__store_txn_commit(TAKE_PTR(txn), err)) < 0)
        goto undo;
    return 0;
undo:
    if (live)
        shim_net(e, json_string_value(json_object_get(doc, "id")) ?: ref, "net-disconnect", net,
                 NULL, NULL);
    return r;
}

BERTH_API int berth_network_disconnect(berth_engine_t *e, const char *netref, const char *ref,
                                       int force, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *doc = NULL, *netid = NULL, *netname = NULL;
    _cleanup_txn_ berth_txn_t *txn = NULL;
    json_t *nets, *x, *hc;
    size_t i;
    int r, found = -1;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    for (int pass = 0; pass < 2; pass++) {
        if ((r = record_begin(store, ref, &txn, &doc, err)) < 0)
            return r;
        nets = json_object_get(doc, "networks");
        found = -1;
        json_array_foreach (nets, i, x) {
            const char *id = json_string_value(json_object_get(x, "id")) ?: "";
            if (!strcmp(json_string_value(json_object_get(x, "name")) ?: "", netref) ||
                (strlen(netref) >= 12 && !strncmp(id, netref, strlen(netref))))
                found = (int)i;
        }
        if (found < 0)
            return berth_err_set(err, -ENOENT, "container %s is not connected to network %s",
                                 json_string_value(json_object_get(doc, "name")), netref);
        if (pass == 1 || !running(doc))
            break;
        /* Running: its monitor detaches it first, outside our write transaction. */
        berth__store_txn_abort(TAKE_PTR(txn));
        {
            _cleanup_json_ json_t *net = json_pack(
                "{s:O}", "id", json_object_get(json_array_get(nets, (size_t)found), "id"));
            if ((r = shim_net(e, json_string_value(json_object_get(doc, "id")), "net-disconnect",
                              net, NULL, err)) < 0 &&
                !force)
                return r;
        }
        json_decref(TAKE_PTR(doc));
    }
    netid = json_incref(json_object_get(json_array_get(nets, (size_t)found), "id"));
    netname = json_incref(json_object_get(json_array_get(nets, (size_t)found), "name"));
    json_array_remove(nets, (size_t)found);
    hc = json_object_get(doc, "host_config");
    json_object_set_new(hc, "NetworkMode",
                        json_array_size(nets)
                            ? json_incref(json_object_get(json_array_get(nets, 0), "name"))
                            : json_string("none"));
    if ((r = berth__container_update_in(txn, doc, "update", NULL, NULL, err)) < 0 ||
        (r = net_event_in(
             txn, "network", "disconnect", json_string_value(netid),
             json_pack("{s:O, s:O}", "container", json_object_get(doc, "id"), "name", netname),
             err)) < 0)
        return r;
    return berth__store_txn_commit(TAKE_PTR(txn), err);
}

static void check_report(void *userdata, const char *cid, const char *network, const char *msg)
{
    json_array_append_new(
        userdata, json_pack("{s:s, s:s, s:s}", "Container", cid, "Network", network, "Error", msg));
}

BERTH_API int berth_network_check(berth_engine_t *e, json_t **ret_json, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *out = json_array();
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if (!out)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__endpoints_check(store, berth__engine_loaded(e),
                                    berth__engine_config(e)->plugin_dirs, check_report, out, err)) <
        0)
        return r;
    *ret_json = TAKE_PTR(out);
    return 0;
}
