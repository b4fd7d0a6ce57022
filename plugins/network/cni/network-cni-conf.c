/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conflist generation (network-cni-conf.h). The shape follows what the
 * bridge, host-local, portmap and firewall plugins of
 * containernetworking-plugins read; only IPv4 is handled.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network-cni-conf.h"

int network_cni_id_valid(const char *id)
{
    /* CNI's container id rule, and safe as a path component. */
    if (!id || !*id || strlen(id) > 128 ||
        !((id[0] >= '0' && id[0] <= '9') || (id[0] >= 'a' && id[0] <= 'z') ||
          (id[0] >= 'A' && id[0] <= 'Z')))
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == '.' || *p == '-'))
            return 0;
    return 1;
}

static int ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NETWORK_CNI_IFNAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p == '/' || *p == ':' || *p == 0x7f)
            return 0;
    return 1;
}

/* "a.b.c.d/n" into host-order address and prefix length. */
static int parse_cidr(const char *s, uint32_t *ret_addr, unsigned *ret_len)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    struct in_addr a;
    char *end;
    long len;

    if (!slash || (size_t)(slash - s) >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -EINVAL;
    errno = 0;
    len = strtol(slash + 1, &end, 10);
    if (errno || end == slash + 1 || *end || len < 0 || len > 32)
        return -EINVAL;
    *ret_addr = ntohl(a.s_addr);
    *ret_len = (unsigned)len;
    return 0;
}

static void fmt_ip(uint32_t host_order, char dst[INET_ADDRSTRLEN])
{
    struct in_addr a = { .s_addr = htonl(host_order) };
    inet_ntop(AF_INET, &a, dst, INET_ADDRSTRLEN);
}

int network_cni_conflist_build(const berth_network_spec_t *spec, const char *state_dir,
                               json_t **ret_conflist, char ret_bridge[NETWORK_CNI_IFNAME_MAX + 1],
                               berth_err_t *err)
{
    json_t *cfg = NULL, *opts, *v, *bridge = NULL, *plugins = NULL, *list = NULL;
    char net_s[INET_ADDRSTRLEN], gw_s[INET_ADDRSTRLEN], subnet_s[INET_ADDRSTRLEN + 4];
    char bridge_name[NETWORK_CNI_IFNAME_MAX + 1], cni_name[160], *data_dir = NULL;
    uint32_t addr, mask, gw;
    unsigned plen;
    int internal, firewall = 0, r = -EINVAL;
    json_error_t jerr;
    const char *s;

    if (!network_cni_id_valid(spec->id))
        return berth_err_set(err, -EINVAL, "cni: invalid network id");
    cfg = json_loads(spec->config_json ? spec->config_json : "{}", 0, &jerr);
    if (!json_is_object(cfg)) {
        berth_err_set(err, -EINVAL, "cni: network %s: config is not a JSON object", spec->id);
        goto out;
    }
    opts = json_object_get(cfg, "options");
    if (opts && !json_is_object(opts) && !json_is_null(opts)) {
        berth_err_set(err, -EINVAL, "cni: network %s: \"options\" is not an object", spec->id);
        goto out;
    }

    s = json_string_value(json_object_get(cfg, "subnet"));
    if (!s || parse_cidr(s, &addr, &plen) < 0 || plen > 30 || plen < 8) {
        berth_err_set(err, -EINVAL,
                      "cni: network %s: invalid IPv4 subnet \"%s\" (want a.b.c.d/8..30)", spec->id,
                      s ? s : "");
        goto out;
    }
    mask = plen ? 0xffffffffu << (32 - plen) : 0;
    addr &= mask;
    fmt_ip(addr, net_s);
    snprintf(subnet_s, sizeof(subnet_s), "%s/%u", net_s, plen);

    s = json_string_value(json_object_get(cfg, "gateway"));
    if (s && *s) {
        struct in_addr a;
        if (inet_pton(AF_INET, s, &a) != 1) {
            berth_err_set(err, -EINVAL, "cni: network %s: invalid gateway \"%s\"", spec->id, s);
            goto out;
        }
        gw = ntohl(a.s_addr);
        if ((gw & mask) != addr || gw == addr || gw == (addr | ~mask)) {
            berth_err_set(err, -EINVAL, "cni: network %s: gateway %s is not a host of %s", spec->id,
                          s, subnet_s);
            goto out;
        }
    } else {
        /* The subnet's first host, as docker and podman do. */
        gw = addr + 1;
    }
    fmt_ip(gw, gw_s);

    internal = json_is_true(json_object_get(cfg, "internal"));
    /* Docker's option names are accepted too, so `docker network create -o` works as is. */
    s = json_string_value(json_object_get(opts, "bridge"));
    if (!s || !*s)
        s = json_string_value(json_object_get(opts, "com.docker.network.bridge.name"));
    if (s && *s) {
        if (!ifname_valid(s)) {
            berth_err_set(err, -EINVAL, "cni: network %s: invalid bridge name \"%s\" (1..%d chars)",
                          spec->id, s, NETWORK_CNI_IFNAME_MAX);
            goto out;
        }
        snprintf(bridge_name, sizeof(bridge_name), "%s", s);
    } else {
        snprintf(bridge_name, sizeof(bridge_name), "br-%.12s", spec->id);
    }
    v = json_object_get(opts, "firewall");
    firewall = json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);

    /*
     * The CNI network name appears in iptables comments and in the
     * host-local directory; a user name outside CNI's character set is
     * replaced by one derived from the id.
     */
    if (spec->name && network_cni_id_valid(spec->name) && strlen(spec->name) < sizeof(cni_name))
        snprintf(cni_name, sizeof(cni_name), "%s", spec->name);
    else
        snprintf(cni_name, sizeof(cni_name), "berth-%.12s", spec->id);

    if (asprintf(&data_dir, "%s/ipam/%s", state_dir, spec->id) < 0) {
        data_dir = NULL;
        r = berth_err_set(err, -ENOMEM, "cni: out of memory");
        goto out;
    }

    r = -ENOMEM;
    /*
     * An internal network's bridge has no address (isGateway false) and its
     * containers get no default route and no masquerade: they reach each
     * other on the bridge and nothing else, the host included. No network
     * has the bridge plugin's masquerade (ipMasq, a chain per container
     * made and removed with nine and two iptables runs): the driver makes
     * one rule per network instead (network-cni-masq.h).
     */
    bridge =
        json_pack("{s:s, s:s, s:b, s:b, s:b, s:{s:b, s:b}, s:{s:s, s:[[{s:s, s:s}]], s:s}}", "type",
                  "bridge", "bridge", bridge_name, "isGateway", !internal, "ipMasq", 0,
                  "hairpinMode", 1, "capabilities", "ips", 1, "mac", 1, "ipam", "type",
                  "host-local", "ranges", "subnet", subnet_s, "gateway", gw_s, "dataDir", data_dir);
    if (!bridge)
        goto nomem;
    if (!internal && json_object_set_new(json_object_get(bridge, "ipam"), "routes",
                                         json_pack("[{s:s}]", "dst", "0.0.0.0/0")) < 0)
        goto nomem;
    v = json_object_get(opts, "mtu");
    if (!v)
        v = json_object_get(opts, "com.docker.network.driver.mtu");
    if (v) {
        long long mtu = json_is_integer(v)  ? json_integer_value(v)
                        : json_is_string(v) ? strtoll(json_string_value(v), NULL, 10)
                                            : -1;
        if (mtu < 68 || mtu > 65535) {
            r = berth_err_set(err, -EINVAL, "cni: network %s: invalid mtu", spec->id);
            goto out;
        }
        if (json_object_set_new(bridge, "mtu", json_integer(mtu)) < 0)
            goto nomem;
    }
    plugins = json_array();
    if (!plugins || json_array_append(plugins, bridge) < 0)
        goto nomem;
    /* Published ports make no sense where the host cannot route to the containers. */
    if (!internal &&
        json_array_append_new(plugins, json_pack("{s:s, s:{s:b}, s:b}", "type", "portmap",
                                                 "capabilities", "portMappings", 1, "snat", 1)) < 0)
        goto nomem;
    if (firewall && json_array_append_new(plugins, json_pack("{s:s, s:s}", "type", "firewall",
                                                             "backend", "iptables")) < 0)
        goto nomem;
    list = json_pack("{s:s, s:s, s:O}", "cniVersion", NETWORK_CNI_VERSION, "name", cni_name,
                     "plugins", plugins);
    if (!list)
        goto nomem;
    memcpy(ret_bridge, bridge_name, sizeof(bridge_name));
    *ret_conflist = list;
    list = NULL;
    r = 0;
    goto out;
nomem:
    r = berth_err_set(err, -ENOMEM, "cni: out of memory");
out:
    json_decref(list);
    json_decref(plugins);
    json_decref(bridge);
    json_decref(cfg);
    free(data_dir);
    return r;
}
