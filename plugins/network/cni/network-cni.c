/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cni: bridge networks built from standard CNI plugins (bridge, host-local,
 * portmap, optionally firewall), run as separate binaries with the CNI 1.0
 * protocol; the sandbox's lo is brought up in-process. The driver keeps no state in memory: each network is a
 * conflist file in the driver's state dir, each endpoint is the CNI result
 * the core stores, so any process of the engine can attach and detach.
 *
 * State dir (BERTH_PATH_STATE) layout:
 *   <id>.conflist     the network's conflist, written atomically
 *   ipam/<id>/<name>/ host-local's lease files and lock, one per address
 * Runstate dir (BERTH_PATH_RUNSTATE, a tmpfs: gone at reboot with the rules):
 *   masq/<id>         the boot id under which the network's masquerade rule was made
 *   ipv4-tools/       PATH for portmap's CHECK (ipv4_tools_path)
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/sdk.h>

#include "network-cni-conf.h"
#include "network-cni-exec.h"
#include "network-cni-masq.h"

#define DEFAULT_CNI_PATH "/usr/lib/cni"
#define DEFAULT_TIMEOUT  30u

struct cni_drv {
    const berth_host_api_t *host;
    berth_host_t *ctx;
    char *state_dir;
    char *runstate_dir; /* NULL when the host has none */
    char *masq_dir;     /* <runstate>/masq, the masquerade stamps; NULL without a runstate dir */
    char *cni_path;
    unsigned timeout_s;
    char boot_id[64]; /* this boot's id, "" when unknown (then stamps never count) */
};

/* A blob whose memory comes from the host's allocator, released through it. */
struct cni_blob {
    berth_blob_t b;
    const berth_host_api_t *host;
    berth_host_t *ctx;
};

static void cni_blob_release(berth_blob_t *b)
{
    struct cni_blob *cb = (struct cni_blob *)b;
    cb->host->free(cb->ctx, b->data);
    cb->host->free(cb->ctx, cb);
}

static int blob_new(struct cni_drv *d, const char *text, berth_blob_t **ret, berth_err_t *err)
{
    size_t len = strlen(text);
    struct cni_blob *cb = d->host->alloc(d->ctx, sizeof(*cb));
    if (!cb)
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    memset(cb, 0, sizeof(*cb));
    cb->b.data = d->host->alloc(d->ctx, len + 1);
    if (!cb->b.data) {
        d->host->free(d->ctx, cb);
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    }
    memcpy(cb->b.data, text, len + 1);
    cb->b.struct_size = sizeof(cb->b);
    cb->b.len = len;
    cb->b.release = cni_blob_release;
    cb->host = d->host;
    cb->ctx = d->ctx;
    *ret = &cb->b;
    return 0;
}

static void cni_fini(void *priv);

/* The kernel's id of this boot into @p dst ("" when it cannot be read). */
static void read_boot_id(char *dst, size_t size)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    dst[0] = '\0';
    if (!f)
        return;
    if (!fgets(dst, (int)size, f))
        dst[0] = '\0';
    dst[strcspn(dst, "\n")] = '\0';
    fclose(f);
}

static int cni_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                    berth_err_t *err)
{
    const char *state = host->path(ctx, BERTH_PATH_STATE);
    const char *cfg_text = host->config ? host->config(ctx) : NULL;
    json_t *cfg = cfg_text ? json_loads(cfg_text, 0, NULL) : NULL;
    const char *path = json_string_value(json_object_get(cfg, "cni_path"));
    json_int_t timeout = json_integer_value(json_object_get(cfg, "timeout"));
    struct cni_drv *d;

    if (!state) {
        json_decref(cfg);
        return berth_err_set(err, -EINVAL, "cni: the host gives no state directory");
    }
    d = calloc(1, sizeof(*d));
    if (!d || !(d->state_dir = strdup(state)) ||
        !(d->cni_path = strdup(path && *path ? path : DEFAULT_CNI_PATH))) {
        if (d)
            free(d->state_dir);
        free(d);
        json_decref(cfg);
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    }
    if (host->path(ctx, BERTH_PATH_RUNSTATE) &&
        (!(d->runstate_dir = strdup(host->path(ctx, BERTH_PATH_RUNSTATE))) ||
         asprintf(&d->masq_dir, "%s/masq", d->runstate_dir) < 0)) {
        d->masq_dir = NULL;
        cni_fini(d);
        json_decref(cfg);
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    }
    read_boot_id(d->boot_id, sizeof(d->boot_id));
    d->host = host;
    d->ctx = ctx;
    d->timeout_s = timeout > 0 && timeout < 3600 ? (unsigned)timeout : DEFAULT_TIMEOUT;
    json_decref(cfg);
    *ret_priv = d;
    return 0;
}

static void cni_fini(void *priv)
{
    struct cni_drv *d = priv;
    if (!d)
        return;
    free(d->state_dir);
    free(d->runstate_dir);
    free(d->masq_dir);
    free(d->cni_path);
    free(d);
}

static int cni_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    struct cni_drv *d = priv;
    /* No "loopback": attach brings lo up itself (lo_up). */
    static const char *const needed[] = { "bridge", "host-local", "portmap" };

    if (geteuid() != 0) {
        berth_err_set(err, -EPERM, "cni: needs root (creates bridges, veths and iptables rules)");
        return BERTH_DECLINED;
    }
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        char *p = network_cni_find_plugin(d->cni_path, needed[i]);
        if (!p) {
            berth_err_set(err, -ENOENT,
                          "cni: plugin %s not found in %s (install containernetworking-plugins "
                          "or set the driver's \"cni_path\")",
                          needed[i], d->cni_path);
            return BERTH_DECLINED;
        }
        free(p);
    }
    if (ret_caps)
        *ret_caps = BERTH_NETWORK_CAP_NETNS | BERTH_NETWORK_CAP_PORTS;
    return 0;
}

/* ---- files ---- */

static char *conflist_path(struct cni_drv *d, const char *id)
{
    char *p;
    return asprintf(&p, "%s/%s.conflist", d->state_dir, id) < 0 ? NULL : p;
}

/* Write @p text to @p path so that readers see the old or the new file, never a part. */
static int write_atomic(const char *path, const char *text, berth_err_t *err)
{
    char *tmp;
    size_t len = strlen(text), off = 0;
    int fd, r = 0;

    if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = berth_err_set(err, -errno, "cni: create %s: %s", tmp, strerror(errno));
        free(tmp);
        return r;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = berth_err_set(err, -errno, "cni: write %s: %s", tmp, strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    if (r == 0 && fsync(fd) < 0)
        r = berth_err_set(err, -errno, "cni: fsync %s: %s", tmp, strerror(errno));
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = berth_err_set(err, -errno, "cni: rename to %s: %s", path, strerror(errno));
    if (r < 0)
        unlink(tmp);
    free(tmp);
    return r;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    /* Best effort: what cannot be removed is reported by the final rmdir. */
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static int remove_tree(const char *path, berth_err_t *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0
                               : berth_err_set(err, -errno, "cni: %s: %s", path, strerror(errno));
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (lstat(path, &st) == 0)
        return berth_err_set(err, -ENOTEMPTY, "cni: cannot remove %s", path);
    return 0;
}

/*
 * The network's conflist: the file network_create wrote, or, when it is gone
 * (state lost, network deleted under an endpoint), the same conflist rebuilt
 * from the network's settings so endpoints can still be detached.
 */
static int load_conflist(struct cni_drv *d, const berth_network_spec_t *net, json_t **ret,
                         berth_err_t *err)
{
    char bridge[NETWORK_CNI_IFNAME_MAX + 1];
    char *path;
    json_error_t jerr;
    json_t *list;

    if (!net || !network_cni_id_valid(net->id))
        return berth_err_set(err, -EINVAL, "cni: invalid network id");
    path = conflist_path(d, net->id);
    if (!path)
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    list = json_load_file(path, 0, &jerr);
    if (!list && access(path, F_OK) == 0) {
        int r = berth_err_set(err, -EINVAL, "cni: %s: %s", path, jerr.text);
        free(path);
        return r;
    }
    free(path);
    if (!list)
        return network_cni_conflist_build(net, d->state_dir, ret, bridge, err);
    if (!json_is_array(json_object_get(list, "plugins")) ||
        !json_is_string(json_object_get(list, "name"))) {
        json_decref(list);
        return berth_err_set(err, -EINVAL, "cni: network %s: conflist has no name or plugins",
                             net->id);
    }
    *ret = list;
    return 0;
}

/*
 * Whether the network of conflist @p list gets the driver's own masquerade
 * rule, and its parts (borrowed from @p list and @p net_id) in @p ret: a
 * bridge with a gateway whose plugin does no masquerade itself. Conflists
 * berth writes now have ipMasq false; those of networks made before have
 * ipMasq true, so the bridge plugin keeps making a chain per container for
 * them (and masq_cleanup removes it); internal networks have no gateway
 * and no masquerade at all.
 */
static int conflist_masq(json_t *list, const char *net_id, cni_masq_t *ret)
{
    json_t *br = json_array_get(json_object_get(list, "plugins"), 0), *range;
    const char *type = json_string_value(json_object_get(br, "type"));

    if (!type || strcmp(type, "bridge") != 0 || !json_is_true(json_object_get(br, "isGateway")) ||
        json_is_true(json_object_get(br, "ipMasq")))
        return 0;
    range = json_array_get(
        json_array_get(json_object_get(json_object_get(br, "ipam"), "ranges"), 0), 0);
    ret->net_id = net_id;
    ret->subnet = json_string_value(json_object_get(range, "subnet"));
    ret->bridge = json_string_value(json_object_get(br, "bridge"));
    return ret->subnet && ret->bridge;
}

/* ---- networks ---- */

static int cni_network_create(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                              berth_blob_t **ret_state, berth_err_t *err)
{
    struct cni_drv *d = priv;
    char bridge[NETWORK_CNI_IFNAME_MAX + 1], *path = NULL, *text = NULL, *ipam = NULL;
    json_t *list = NULL, *state = NULL;
    cni_masq_t m;
    int r, masq = 0;

    r = network_cni_conflist_build(spec, d->state_dir, &list, bridge, err);
    if (r < 0)
        return r;
    r = berth_err_set(err, -ENOMEM, "cni: out of memory");
    path = conflist_path(d, spec->id);
    if (!path || asprintf(&ipam, "%s/ipam", d->state_dir) < 0) {
        ipam = NULL;
        goto out;
    }
    /* Leases are per address, not secrets, but no business of other users either. */
    if (mkdir(ipam, 0700) < 0 && errno != EEXIST) {
        r = berth_err_set(err, -errno, "cni: mkdir %s: %s", ipam, strerror(errno));
        goto out;
    }
    text = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    r = write_atomic(path, text, err);
    if (r < 0)
        goto out;
    /*
     * The network's masquerade rule, checked and made even when a stamp
     * says it exists (network_create is rare; a network id is new).
     */
    masq = conflist_masq(list, spec->id, &m);
    if (masq &&
        (r = network_cni_masq_ensure(&m, d->masq_dir, d->boot_id, 1, d->timeout_s, err)) < 0) {
        unlink(path);
        goto out;
    }
    free(text);
    state = json_pack("{s:s, s:s}", "conflist", path, "bridge", bridge);
    text = state ? json_dumps(state, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    r = text ? blob_new(d, text, ret_state, err)
             : berth_err_set(err, -ENOMEM, "cni: out of memory");
    if (r < 0) {
        if (masq)
            network_cni_masq_remove(spec->id, d->masq_dir, d->timeout_s, NULL);
        unlink(path);
    }
out:
    free(text);
    free(path);
    free(ipam);
    json_decref(state);
    json_decref(list);
    return r;
}

/* Delete the link @p name over rtnetlink when it exists and is a bridge. */
static int bridge_delete(const char *name, berth_err_t *err)
{
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
    } req;
    struct {
        struct nlmsghdr nh;
        struct nlmsgerr e;
        char pad[256];
    } ack;
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    char sysfs[64];
    unsigned idx;
    ssize_t n;
    int fd, r = 0;

    idx = if_nametoindex(name);
    if (idx == 0)
        return 0;
    /* Never remove an interface the driver did not make a bridge of (a mistyped "eth0"). */
    snprintf(sysfs, sizeof(sysfs), "/sys/class/net/%s/bridge", name);
    if (access(sysfs, F_OK) < 0)
        return 0;
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return berth_err_set(err, -errno, "cni: netlink: %s", strerror(errno));
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = sizeof(req);
    req.nh.nlmsg_type = RTM_DELLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nh.nlmsg_seq = 1;
    req.ifi.ifi_family = AF_UNSPEC;
    req.ifi.ifi_index = (int)idx;
    if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = berth_err_set(err, -errno, "cni: delete bridge %s: %s", name, strerror(errno));
    } else {
        do
            n = recv(fd, &ack, sizeof(ack), 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            r = berth_err_set(err, -errno, "cni: delete bridge %s: %s", name, strerror(errno));
        else if ((size_t)n >= sizeof(struct nlmsghdr) + sizeof(struct nlmsgerr) &&
                 ack.nh.nlmsg_type == NLMSG_ERROR && ack.e.error != 0 && ack.e.error != -ENODEV)
            r = berth_err_set(err, ack.e.error, "cni: delete bridge %s: %s", name,
                              strerror(-ack.e.error));
    }
    close(fd);
    return r;
}

static int cni_network_delete(void *priv, const berth_network_spec_t *spec, uint32_t flags,
                              berth_err_t *err)
{
    struct cni_drv *d = priv;
    char *path = NULL, *ipam = NULL;
    const char *bridge;
    json_t *list = NULL, *cfg = NULL, *ds;
    cni_masq_t m;
    int r;

    if (!network_cni_id_valid(spec->id))
        return berth_err_set(err, -EINVAL, "cni: invalid network id");
    r = load_conflist(d, spec, &list, err);
    if (r < 0)
        return r;
    /* The bridge as the conflist names it; the stored driver state wins if they disagree. */
    bridge = json_string_value(
        json_object_get(json_array_get(json_object_get(list, "plugins"), 0), "bridge"));
    cfg = json_loads(spec->config_json ? spec->config_json : "{}", 0, NULL);
    ds = json_object_get(cfg, "driver_state");
    if (json_is_string(ds)) {
        json_t *parsed = json_loads(json_string_value(ds), 0, NULL);
        json_object_set_new(cfg, "driver_state", parsed ? parsed : json_null());
        ds = json_object_get(cfg, "driver_state");
    }
    if (json_is_string(json_object_get(ds, "bridge")))
        bridge = json_string_value(json_object_get(ds, "bridge"));

    r = berth_err_set(err, -ENOMEM, "cni: out of memory");
    path = conflist_path(d, spec->id);
    if (!path || asprintf(&ipam, "%s/ipam/%s", d->state_dir, spec->id) < 0) {
        ipam = NULL;
        goto out;
    }
    /* The masquerade rule first: while it stays, so does the network, to try again. */
    r = conflist_masq(list, spec->id, &m)
            ? network_cni_masq_remove(spec->id, d->masq_dir, d->timeout_s, err)
            : 0;
    if (r == 0 && bridge && *bridge)
        r = bridge_delete(bridge, err);
    if (r == 0)
        r = remove_tree(ipam, err);
    if (r == 0 && unlink(path) < 0 && errno != ENOENT)
        r = berth_err_set(err, -errno, "cni: remove %s: %s", path, strerror(errno));
out:
    free(path);
    free(ipam);
    json_decref(cfg);
    json_decref(list);
    return r;
}

/* ---- endpoints ---- */

/* The CNI capability arguments (runtimeConfig) the endpoint request asks for. */
static int runtime_config(const berth_endpoint_spec_t *ep, json_t **ret, berth_err_t *err)
{
    json_t *req, *rc, *pms, *pm, *ip, *mac;
    json_error_t jerr;
    size_t i;

    req = json_loads(ep->request_json && *ep->request_json ? ep->request_json : "{}", 0, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        return berth_err_set(err, -EINVAL, "cni: endpoint request is not a JSON object");
    }
    rc = json_object();
    pms = json_array();
    json_array_foreach (json_object_get(req, "port_mappings"), i, pm) {
        json_t *hp = json_object_get(pm, "host_port"), *cp = json_object_get(pm, "container_port");
        const char *proto = json_string_value(json_object_get(pm, "protocol"));
        const char *host_ip = json_string_value(json_object_get(pm, "host_ip"));
        long long h = json_is_string(hp) ? atoll(json_string_value(hp)) : json_integer_value(hp);
        long long c = json_is_string(cp) ? atoll(json_string_value(cp)) : json_integer_value(cp);
        json_t *m;

        if (h <= 0 || h > 65535 || c <= 0 || c > 65535 ||
            (proto && *proto && strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)) {
            json_decref(pms);
            json_decref(rc);
            json_decref(req);
            return berth_err_set(err, -EINVAL, "cni: invalid port mapping %zu", i);
        }
        /* The networks are IPv4 only: a mapping on an IPv6 host address has nothing to reach. */
        if (host_ip && strchr(host_ip, ':'))
            continue;
        m = json_pack("{s:I, s:I, s:s}", "hostPort", (json_int_t)h, "containerPort", (json_int_t)c,
                      "protocol", proto && *proto ? proto : "tcp");
        if (m && host_ip && *host_ip && strcmp(host_ip, "0.0.0.0") != 0)
            json_object_set_new(m, "hostIP", json_string(host_ip));
        json_array_append_new(pms, m);
    }
    if (json_array_size(pms) > 0)
        json_object_set(rc, "portMappings", pms);
    json_decref(pms);
    ip = json_object_get(req, "ip");
    if (json_is_string(ip) && *json_string_value(ip))
        json_object_set_new(rc, "ips", json_pack("[O]", ip));
    mac = json_object_get(req, "mac");
    if (json_is_string(mac) && *json_string_value(mac))
        json_object_set(rc, "mac", mac);
    json_decref(req);
    *ret = rc;
    return 0;
}

/*
 * One plugin's stdin: its conflist entry with the list's name and version,
 * the runtime arguments it declared capabilities for, and the previous
 * result. Returns a new string or NULL when out of memory.
 */
static char *plugin_stdin(json_t *list, json_t *plugin, json_t *rc, json_t *prev)
{
    json_t *conf = json_deep_copy(plugin), *caps, *out = NULL, *v;
    const char *key;
    char *text;

    if (!conf)
        return NULL;
    json_object_set(conf, "cniVersion", json_object_get(list, "cniVersion"));
    json_object_set(conf, "name", json_object_get(list, "name"));
    caps = json_object_get(plugin, "capabilities");
    json_object_foreach (rc, key, v) {
        if (!json_is_true(json_object_get(caps, key)))
            continue;
        if (!out)
            out = json_object();
        json_object_set(out, key, v);
    }
    if (out)
        json_object_set_new(conf, "runtimeConfig", out);
    if (prev)
        json_object_set(conf, "prevResult", prev);
    text = json_dumps(conf, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(conf);
    return text;
}

/*
 * A PATH holding only iptables, for portmap's CHECK. Portmap 1.1.1 checks its
 * DNAT chain with ip6tables too whenever ip6tables exists, and fails for
 * IPv4-only endpoints because the chain only exists for IPv4 (fixed in later
 * releases). Without ip6tables on its PATH it checks IPv4 only, which is all
 * these networks have. Returns a new string, or NULL to use the normal PATH.
 */
static char *ipv4_tools_path(struct cni_drv *d)
{
    const char *sys = getenv("PATH");
    char *dir = NULL, *link = NULL, *tmp = NULL, *real;

    if (!d->runstate_dir)
        return NULL;
    real = network_cni_find_plugin(sys && *sys ? sys : "/usr/sbin:/usr/bin:/sbin:/bin", "iptables");
    if (!real)
        return NULL;
    if (asprintf(&dir, "%s/ipv4-tools", d->runstate_dir) < 0) {
        dir = NULL;
        goto fail;
    }
    if (asprintf(&link, "%s/iptables", dir) < 0) {
        link = NULL;
        goto fail;
    }
    if (access(link, X_OK) != 0) {
        /* Several processes may get here at once: each links privately, then renames. */
        if ((mkdir(dir, 0755) < 0 && errno != EEXIST) ||
            asprintf(&tmp, "%s.%d-%lx", link, (int)getpid(), (unsigned long)random()) < 0) {
            tmp = NULL;
            goto fail;
        }
        if (symlink(real, tmp) < 0 || rename(tmp, link) < 0) {
            unlink(tmp);
            goto fail;
        }
    }
    free(real);
    free(link);
    free(tmp);
    return dir;
fail:
    free(real);
    free(dir);
    free(link);
    free(tmp);
    return NULL;
}

static int result_has_ipv6(json_t *result)
{
    size_t i;
    json_t *ip;
    json_array_foreach (json_object_get(result, "ips"), i, ip) {
        const char *a = json_string_value(json_object_get(ip, "address"));
        if (a && strchr(a, ':'))
            return 1;
    }
    return 0;
}

/*
 * Whether @p plugin has nothing to do for this endpoint: portmap without
 * port mappings. Its ADD would only pass prevResult through and its DEL
 * would look for chains that were never made, at the cost of one plugin
 * start (and iptables runs on DEL) each. @p rc NULL means the request is
 * unknown, so nothing is skipped.
 */
static int plugin_skipped(json_t *plugin, json_t *rc)
{
    const char *type = json_string_value(json_object_get(plugin, "type"));
    return rc && type && strcmp(type, "portmap") == 0 && !json_object_get(rc, "portMappings");
}

/* Delete the link with index @p idx over rtnetlink in the calling thread's netns. */
static int link_delete_index(unsigned idx)
{
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
    } req;
    struct {
        struct nlmsghdr nh;
        struct nlmsgerr e;
        char pad[256];
    } ack;
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    ssize_t n;
    int fd, r = 0;

    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = sizeof(req);
    req.nh.nlmsg_type = RTM_DELLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nh.nlmsg_seq = 1;
    req.ifi.ifi_family = AF_UNSPEC;
    req.ifi.ifi_index = (int)idx;
    if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
    } else {
        do
            n = recv(fd, &ack, sizeof(ack), 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            r = -errno;
        else if ((size_t)n >= sizeof(struct nlmsghdr) + sizeof(struct nlmsgerr) &&
                 ack.nh.nlmsg_type == NLMSG_ERROR && ack.e.error != -ENODEV)
            r = ack.e.error;
    }
    close(fd);
    return r;
}

/* What netns_job does inside a sandbox's netns. */
enum { NETNS_LO_UP, NETNS_DEL_LINK };

struct netns_job {
    int nsfd;
    int op;             /* NETNS_* */
    const char *ifname; /* NETNS_DEL_LINK: the link to delete */
    int step;           /* -1: done; else the index of what failed in netns_job_steps */
    int error;          /* its errno */
};

static const char *const netns_job_steps[] = { "setns", "socket", "lo lookup", "lo up",
                                               "delete link" };

/*
 * On a thread of its own, since setns() moves only the calling thread: join
 * the sandbox's netns and do the job there. Sockets are made after the
 * setns, because a socket acts on the namespace it was created in. The
 * thread then ends, so no thread of the daemon stays in the sandbox.
 */
static void *netns_thread(void *arg)
{
    struct netns_job *j = arg;
    struct ifreq ifr = { 0 };
    unsigned idx;
    int s;

    if (setns(j->nsfd, CLONE_NEWNET) < 0) {
        j->step = 0;
        j->error = errno;
        return NULL;
    }
    if (j->op == NETNS_DEL_LINK) {
        /* if_nametoindex's socket is the thread's too; a link already gone is no error. */
        idx = if_nametoindex(j->ifname);
        if (idx > 0 && (s = link_delete_index(idx)) < 0) {
            j->step = 4;
            j->error = -s;
        }
        return NULL;
    }
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        j->step = 1;
        j->error = errno;
        return NULL;
    }
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        j->step = 2;
        j->error = errno;
    } else if (!(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
            j->step = 3;
            j->error = errno;
        }
    }
    close(s);
    return NULL;
}

/* Start @p job (its op and ifname set) on a thread in the netns at @p netns. */
static int in_netns_start(const char *netns, struct netns_job *job, pthread_t *ret_thread,
                          berth_err_t *err)
{
    int r;

    job->step = -1;
    job->nsfd = open(netns, O_RDONLY | O_CLOEXEC);
    if (job->nsfd < 0)
        return berth_err_set(err, -errno, "cni: netns %s: %s", netns, strerror(errno));
    r = pthread_create(ret_thread, NULL, netns_thread, job);
    if (r != 0) {
        close(job->nsfd);
        return berth_err_set(err, -r, "cni: netns %s: thread: %s", netns, strerror(r));
    }
    return 0;
}

/* Wait for a job in_netns_start() started; returns how it went. */
static int in_netns_finish(const char *netns, struct netns_job *job, pthread_t thread,
                           berth_err_t *err)
{
    pthread_join(thread, NULL);
    close(job->nsfd);
    if (job->step >= 0)
        return berth_err_set(err, -job->error, "cni: netns %s: %s failed: %s", netns,
                             netns_job_steps[job->step], strerror(job->error));
    return 0;
}

/* Run @p job (its op and ifname set) in the netns at @p netns and wait for it. */
static int in_netns(const char *netns, struct netns_job *job, berth_err_t *err)
{
    pthread_t t;
    int r = in_netns_start(netns, job, &t, err);
    return r < 0 ? r : in_netns_finish(netns, job, t, err);
}

/*
 * Bring up lo in the netns at @p netns, what the loopback plugin's ADD does,
 * without starting a process for it (a Go binary: 10-20 ms). Nothing is
 * undone on detach: lo goes with the namespace.
 */
static int lo_up(const char *netns, berth_err_t *err)
{
    struct netns_job job = { .op = NETNS_LO_UP };
    return in_netns(netns, &job, err);
}

static int run_plugin(struct cni_drv *d, const berth_endpoint_spec_t *ep, const char *command,
                      const char *netns, json_t *list, json_t *plugin, json_t *rc, json_t *prev,
                      json_t **ret_result, berth_err_t *err)
{
    const char *type = json_string_value(json_object_get(plugin, "type"));
    char *in, *out = NULL;
    cni_invocation_t inv = {
        .cni_path = d->cni_path,
        .type = type ? type : "",
        .command = command,
        .container_id = ep->container_id,
        .netns = netns,
        .ifname = ep->ifname && *ep->ifname ? ep->ifname : "eth0",
        .timeout_s = d->timeout_s,
    };
    char *path_env = NULL;
    json_error_t jerr;
    int r;

    in = plugin_stdin(list, plugin, rc, prev);
    if (!in)
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    inv.config = in;
    if (strcmp(command, "CHECK") == 0 && strcmp(inv.type, "portmap") == 0 && !result_has_ipv6(prev))
        inv.path_env = path_env = ipv4_tools_path(d);
    r = network_cni_exec(&inv, ret_result ? &out : NULL, err);
    free(path_env);
    free(in);
    if (r < 0 || !ret_result)
        return r;
    *ret_result = json_loads(out, 0, &jerr);
    if (!json_is_object(*ret_result)) {
        json_decref(*ret_result);
        *ret_result = NULL;
        r = berth_err_set(err, -EIO, "cni: plugin %s %s: result is not a JSON object: %s", inv.type,
                          command, jerr.text);
    }
    free(out);
    return r;
}

/*
 * Remove the bridge plugin's masquerade rules for one container, on a
 * network made by berth before the per-network rule (its conflist has
 * ipMasq true). The plugin's DEL finds them through the container's
 * interface addresses, so when the sandbox's netns is already gone they
 * would stay forever: they are found here by the comment the plugin tags
 * them with (name: "<net>" id: "<cid>").
 */
static void masq_cleanup(struct cni_drv *d, const char *net_name, const char *container_id)
{
    char *comment;

    if (asprintf(&comment, "name: \"%s\" id: \"%s\"", net_name, container_id) < 0)
        return;
    network_cni_nat_remove(comment, container_id, d->timeout_s, NULL);
    free(comment);
}

static int endpoint_prepare(struct cni_drv *d, const berth_endpoint_spec_t *ep, json_t **ret_list,
                            json_t **ret_rc, berth_err_t *err)
{
    int r;
    if (!network_cni_id_valid(ep->container_id))
        return berth_err_set(err, -EINVAL, "cni: invalid container id");
    if (ep->ifname && *ep->ifname &&
        (strlen(ep->ifname) > NETWORK_CNI_IFNAME_MAX || strchr(ep->ifname, '/')))
        return berth_err_set(err, -EINVAL, "cni: invalid interface name \"%s\"", ep->ifname);
    r = load_conflist(d, ep->network, ret_list, err);
    if (r < 0)
        return r;
    r = runtime_config(ep, ret_rc, err);
    if (r < 0) {
        json_decref(*ret_list);
        *ret_list = NULL;
    }
    return r;
}

/*
 * DEL plugins [0, upto] in reverse; returns the first failure, after trying
 * every plugin. @p all: also the plugins ADD skipped (plugin_skipped), for
 * when the endpoint's request is not known.
 */
static int del_chain(struct cni_drv *d, const berth_endpoint_spec_t *ep, const char *netns,
                     json_t *list, json_t *rc, json_t *prev, size_t upto, int all, berth_err_t *err)
{
    json_t *plugins = json_object_get(list, "plugins");
    int first = 0;
    int masq = 0;

    for (size_t i = upto + 1; i-- > 0;) {
        json_t *plugin = json_array_get(plugins, i);
        berth_err_t e = { 0 };
        int r;
        if (!plugin || plugin_skipped(plugin, all ? NULL : rc))
            continue;
        if (json_is_true(json_object_get(plugin, "ipMasq")))
            masq = 1;
        r = run_plugin(d, ep, "DEL", netns, list, plugin, rc, prev, NULL, &e);
        if (r < 0 && first == 0) {
            first = r;
            if (err)
                *err = e;
        }
    }
    /*
     * With the netns there, the bridge plugin's own DEL removed its rules;
     * listing iptables costs a few ms, so only look when it could not.
     */
    if (masq && (!netns || !*netns || first < 0))
        masq_cleanup(d, json_string_value(json_object_get(list, "name")), ep->container_id);
    return first;
}

/* Interfaces enslaved to bridge @p name, or -1 when there is no such bridge. */
static int bridge_ports(const char *name)
{
    char path[96];
    struct dirent *e;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof(path), "/sys/class/net/%s/brif", name);
    dir = opendir(path);
    if (!dir)
        return -1;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static int bridge_mac_is_zero(const char *name)
{
    char path[96], mac[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/sys/class/net/%s/address", name);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (!fgets(mac, sizeof(mac), f))
        mac[0] = '\0';
    fclose(f);
    return strncmp(mac, "00:00:00:00:00:00", 17) == 0;
}

/*
 * Undo a failed ADD: DEL for plugins [0, upto], and the bridge too when this
 * attach created it and nothing else joined it meanwhile. A bridge that lost
 * its only port before it got the gateway address is left with a zero MAC,
 * which the bridge plugin (1.1.1) then fails to set on the next ADD
 * ("could not set bridge's mac"): removing it restores the state before.
 */
static void rollback(struct cni_drv *d, const berth_endpoint_spec_t *ep, const char *netns,
                     json_t *list, json_t *rc, json_t *prev, size_t upto, const char *new_bridge)
{
    del_chain(d, ep, netns, list, rc, prev, upto, 0, NULL);
    if (new_bridge && bridge_ports(new_bridge) == 0)
        bridge_delete(new_bridge, NULL);
}

static int netns_of(const berth_endpoint_spec_t *ep, const char **ret, berth_err_t *err)
{
    const berth_net_attach_t *a = ep->attach;
    if (!a || a->type != BERTH_NET_ATTACH_NETNS || !a->path[0])
        return berth_err_set(err, -ENOTSUP, "cni: the sandbox must be attached as a netns path");
    *ret = a->path;
    return 0;
}

static int cni_endpoint_attach(void *priv, const berth_endpoint_spec_t *spec, uint32_t flags,
                               berth_blob_t **ret_result, berth_err_t *err)
{
    struct cni_drv *d = priv;
    json_t *list = NULL, *rc = NULL, *prev = NULL, *plugins, *plugin0;
    const char *netns = NULL, *bridge = NULL, *new_bridge;
    char *text = NULL;
    cni_masq_t m;
    size_t i;
    int r;

    if ((r = netns_of(spec, &netns, err)) < 0)
        return r;
    if ((r = endpoint_prepare(d, spec, &list, &rc, err)) < 0)
        return r;
    plugins = json_object_get(list, "plugins");
    if (json_array_size(plugins) == 0) {
        r = berth_err_set(err, -EINVAL, "cni: network %s: no plugins", spec->network->id);
        goto out;
    }

    /*
     * Whether the bridge exists before this attach, to remove it again on
     * failure; one left behind with no ports and a zero MAC (a crash between
     * the two) is removed now, as the bridge plugin could not use it.
     */
    plugin0 = json_array_get(plugins, 0);
    if (json_is_string(json_object_get(plugin0, "type")) &&
        strcmp(json_string_value(json_object_get(plugin0, "type")), "bridge") == 0)
        bridge = json_string_value(json_object_get(plugin0, "bridge"));
    if (bridge && bridge_ports(bridge) == 0 && bridge_mac_is_zero(bridge))
        bridge_delete(bridge, NULL);
    new_bridge = bridge && bridge_ports(bridge) < 0 ? bridge : NULL;

    /*
     * The network's masquerade rule, made at network_create, is gone after
     * a reboot while the network stays: made again here when the stamp
     * does not say it was made since this boot. Normally that is one read
     * of a tmpfs file, no iptables run.
     */
    if (conflist_masq(list, spec->network->id, &m) &&
        (r = network_cni_masq_ensure(&m, d->masq_dir, d->boot_id, 0, d->timeout_s, err)) < 0)
        goto out;
    /* The sandbox's lo first: it is no part of the network, so nothing of it is in the result. */
    if ((r = lo_up(netns, err)) < 0)
        goto out;

    for (i = 0; i < json_array_size(plugins); i++) {
        json_t *result = NULL;
        if (plugin_skipped(json_array_get(plugins, i), rc))
            continue;
        r = run_plugin(d, spec, "ADD", netns, list, json_array_get(plugins, i), rc, prev, &result,
                       err);
        if (r < 0) {
            /* Undo everything so far, the failed plugin included (it may have done half). */
            rollback(d, spec, netns, list, rc, prev, i, new_bridge);
            goto out;
        }
        json_decref(prev);
        prev = result;
    }
    text = json_dumps(prev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        rollback(d, spec, netns, list, rc, prev, json_array_size(plugins) - 1, new_bridge);
        r = berth_err_set(err, -ENOMEM, "cni: out of memory");
        goto out;
    }
    r = blob_new(d, text, ret_result, err);
    if (r < 0)
        rollback(d, spec, netns, list, rc, prev, json_array_size(plugins) - 1, new_bridge);
out:
    free(text);
    json_decref(prev);
    json_decref(rc);
    json_decref(list);
    return r;
}

/*
 * Whether @p path is a mounted network namespace. A sandbox's pin file can
 * outlive its bind mount (an empty file left after a crash); the bridge
 * plugin's DEL fails on such a file instead of skipping it, so it counts as
 * gone.
 */
static int is_netns(const char *path)
{
    struct statfs fs;
    return statfs(path, &fs) == 0 && fs.f_type == NSFS_MAGIC;
}

static int cni_endpoint_detach(void *priv, const berth_endpoint_spec_t *spec,
                               const char *result_json, uint32_t flags, berth_err_t *err)
{
    struct cni_drv *d = priv;
    json_t *list = NULL, *rc = NULL, *prev = NULL;
    const char *netns = "", *del_netns = "";
    struct netns_job job = { 0 };
    pthread_t link_thread;
    int r, link_deleting = 0;

    if ((r = endpoint_prepare(d, spec, &list, &rc, err)) < 0)
        return r;
    /*
     * A namespace that is gone is passed as "" (CNI: DEL tolerates missing
     * resources); the plugins then release addresses and port rules without
     * entering it.
     */
    if (spec->attach && spec->attach->type == BERTH_NET_ATTACH_NETNS && spec->attach->path[0] &&
        is_netns(spec->attach->path))
        netns = spec->attach->path;
    /*
     * With the netns there, the bridge plugin's DEL enters it to delete the
     * interface (and, on networks made before the per-network masquerade,
     * removes the container's chain with six iptables runs: 70-100 ms
     * measured). Instead the interface is deleted here, while DEL runs as
     * for a namespace that is gone (the bridge plugin then only releases the
     * address; masq_cleanup removes such a chain with one iptables-restore).
     * The deletion runs on its own thread meanwhile: the
     * kernel takes 10-30 ms to unregister a veth (RCU grace periods), and
     * none of the plugins' DEL needs the interface. If it cannot be deleted,
     * DEL runs again with the netns, as it would have without this.
     */
    if (*netns) {
        job.op = NETNS_DEL_LINK;
        job.ifname = spec->ifname && *spec->ifname ? spec->ifname : "eth0";
        if (in_netns_start(netns, &job, &link_thread, NULL) == 0)
            link_deleting = 1;
        else
            del_netns = netns;
    }
    /* A result that cannot be read is dropped: DEL without prevResult still releases. */
    if (result_json && *result_json) {
        prev = json_loads(result_json, 0, NULL);
        if (!json_is_object(prev)) {
            json_decref(prev);
            prev = NULL;
        }
    }
    /*
     * The core passes the request the endpoint was attached with, so the
     * plugins ADD skipped are skipped again; without one, all of them run.
     */
    if (json_array_size(json_object_get(list, "plugins")) > 0)
        r = del_chain(d, spec, del_netns, list, rc, prev,
                      json_array_size(json_object_get(list, "plugins")) - 1,
                      !spec->request_json || !*spec->request_json, err);
    if (link_deleting && in_netns_finish(netns, &job, link_thread, NULL) < 0 &&
        json_array_size(json_object_get(list, "plugins")) > 0)
        r = del_chain(d, spec, netns, list, rc, prev,
                      json_array_size(json_object_get(list, "plugins")) - 1,
                      !spec->request_json || !*spec->request_json, err);
    /*
     * The network was deleted before its endpoint: host-local's DEL has just
     * made its lease dir again, which nothing would ever remove.
     */
    {
        char *path = conflist_path(d, spec->network->id), *ipam = NULL;
        if (path && access(path, F_OK) < 0 && errno == ENOENT &&
            asprintf(&ipam, "%s/ipam/%s", d->state_dir, spec->network->id) >= 0) {
            remove_tree(ipam, NULL);
            free(ipam);
        }
        free(path);
    }
    json_decref(prev);
    json_decref(rc);
    json_decref(list);
    return r;
}

static int cni_endpoint_check(void *priv, const berth_endpoint_spec_t *spec,
                              const char *result_json, uint32_t flags, berth_err_t *err)
{
    struct cni_drv *d = priv;
    json_t *list = NULL, *rc = NULL, *prev = NULL, *plugins;
    const char *netns = NULL;
    struct stat st;
    cni_masq_t m;
    int r;

    if ((r = netns_of(spec, &netns, err)) < 0)
        return r;
    if (stat(netns, &st) < 0)
        return berth_err_set(err, -ENOENT, "cni: netns %s: %s", netns, strerror(errno));
    if (!result_json || !*result_json)
        return berth_err_set(err, -EINVAL, "cni: CHECK needs the endpoint's result");
    if ((r = endpoint_prepare(d, spec, &list, &rc, err)) < 0)
        return r;
    prev = json_loads(result_json, 0, NULL);
    if (!json_is_object(prev)) {
        r = berth_err_set(err, -EINVAL, "cni: the endpoint's result is not a JSON object");
        goto out;
    }
    /* The rule may have gone behind the driver's back (an iptables flush): checked and re-made. */
    if (conflist_masq(list, spec->network->id, &m) &&
        (r = network_cni_masq_ensure(&m, d->masq_dir, d->boot_id, 1, d->timeout_s, err)) < 0)
        goto out;
    if (json_is_true(json_object_get(list, "disableCheck")))
        goto out;
    plugins = json_object_get(list, "plugins");
    for (size_t i = 0; i < json_array_size(plugins) && r == 0; i++)
        if (!plugin_skipped(json_array_get(plugins, i), rc))
            r = run_plugin(d, spec, "CHECK", netns, list, json_array_get(plugins, i), rc, prev,
                           NULL, err);
out:
    json_decref(prev);
    json_decref(rc);
    json_decref(list);
    return r;
}

static const berth_network_ops_t cni_ops = {
    BERTH_OPS_INIT(berth_network_ops_t),    .probe = cni_probe,
    .network_create = cni_network_create,   .network_delete = cni_network_delete,
    .endpoint_attach = cni_endpoint_attach, .endpoint_detach = cni_endpoint_detach,
    .endpoint_check = cni_endpoint_check,
};

static const berth_plugin_desc_t cni_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_NETWORK,
    .name = "cni",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "bridge networks from standard CNI plugins (bridge, host-local, portmap)",
    .capabilities = BERTH_NETWORK_CAP_NETNS | BERTH_NETWORK_CAP_PORTS,
    .init = cni_init,
    .fini = cni_fini,
    .ops = &cni_ops,
};

BERTH_PLUGIN_DEFINE(cni_desc)
