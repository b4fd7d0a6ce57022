/* SPDX-License-Identifier: Apache-2.0 */
/* Networks and endpoints in the store, and attaching containers to them (networks.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/isolation.h>
#include <berth/network.h>

#include "networks.h"
#include "util.h"

int berth__network_is_pseudo(const char *name)
{
    return name && (strcmp(name, "host") == 0 || strcmp(name, "none") == 0);
}

/* ---- records ---- */

struct find_name {
    const char *name;
    json_t *found;
};

static int find_name_cb(const char *key, json_t *doc, void *userdata)
{
    struct find_name *f = userdata;
    (void)key;
    if (strcmp(json_string_value(json_object_get(doc, "name")) ?: "", f->name) == 0) {
        f->found = json_incref(doc);
        return 1;
    }
    return 0;
}

int berth__network_get_in(berth_txn_t *txn, const char *ref, json_t **ret_doc, berth_err_t *err)
{
    struct find_name f = { .name = ref };
    _cleanup_strv_ char **keys = NULL;
    size_t len = ref ? strlen(ref) : 0;
    int r;

    if (!ref || !*ref)
        return berth_err_set(err, -EINVAL, "no network given");
    /* Names first, as Docker resolves them: a name may look like an id prefix. */
    if ((r = berth__store_walk(txn, BERTH_DB_NETWORKS, NULL, find_name_cb, &f, err)) < 0)
        return r;
    if (f.found) {
        *ret_doc = f.found;
        return 0;
    }
    if (len <= 64 && strspn(ref, "0123456789abcdef") == len) {
        if ((r = berth__store_keys(txn, BERTH_DB_NETWORKS, ref, 2, &keys, err)) < 0)
            return r;
        if (berth__strv_len(keys) > 1)
            return berth_err_set(err, -EINVAL, "network %s is ambiguous (%zu matches found)", ref,
                                 berth__strv_len(keys));
        if (berth__strv_len(keys) == 1)
            return berth__store_get(txn, BERTH_DB_NETWORKS, keys[0], ret_doc, err);
    }
    return berth_err_set(err, -ENOENT, "network %s not found", ref);
}

static int collect_cb(const char *key, json_t *doc, void *userdata)
{
    (void)key;
    return json_array_append(userdata, doc) < 0 ? -ENOMEM : 0;
}

static int by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name")) ?: "";
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name")) ?: "";
    return strcmp(x, y);
}

int berth__network_list_in(berth_txn_t *txn, json_t **ret_array, berth_err_t *err)
{
    _cleanup_json_ json_t *arr = json_array();
    json_t **items;
    size_t n;
    int r;

    if (!arr)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_walk(txn, BERTH_DB_NETWORKS, NULL, collect_cb, arr, err)) < 0)
        return r == -ENOMEM ? berth_err_set(err, r, "out of memory") : r;
    /* Sorted through a plain array: jansson has no sort. */
    n = json_array_size(arr);
    items = calloc(n + 1, sizeof(*items));
    if (!items)
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort(items, n, sizeof(*items), by_name);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    free(items);
    *ret_array = TAKE_PTR(arr);
    return 0;
}

char *berth__network_driver_json(json_t *net)
{
    _cleanup_json_ json_t *j =
        json_pack("{s:s, s:s, s:b, s:O, s:O, s:O}", "subnet",
                  json_string_value(json_object_get(net, "subnet")) ?: "", "gateway",
                  json_string_value(json_object_get(net, "gateway")) ?: "", "internal",
                  json_is_true(json_object_get(net, "internal")), "options",
                  json_object_get(net, "options") ?: json_null(), "labels",
                  json_object_get(net, "labels") ?: json_null(), "driver_state",
                  json_object_get(net, "driver_state") ?: json_null());
    return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

/* ---- endpoints ---- */

int berth__endpoints_in(berth_txn_t *txn, const char *cid, json_t **ret_array, berth_err_t *err)
{
    _cleanup_json_ json_t *arr = json_array();
    char prefix[80];
    int r;

    if (!arr)
        return berth_err_set(err, -ENOMEM, "out of memory");
    snprintf(prefix, sizeof(prefix), "%s/", cid ? cid : "");
    if ((r = berth__store_walk(txn, BERTH_DB_ENDPOINTS, cid ? prefix : NULL, collect_cb, arr,
                               err)) < 0)
        return r == -ENOMEM ? berth_err_set(err, r, "out of memory") : r;
    *ret_array = TAKE_PTR(arr);
    return 0;
}

static int endpoint_key(char *buf, size_t len, const char *cid, const char *netid)
{
    return snprintf(buf, len, "%s/%s", cid ? cid : "", netid ? netid : "") >= (int)len ? -1 : 0;
}

int berth__endpoint_put_in(berth_txn_t *txn, json_t *ep, berth_err_t *err)
{
    char key[160];

    if (endpoint_key(key, sizeof(key), json_string_value(json_object_get(ep, "container")),
                     json_string_value(json_object_get(ep, "network"))) < 0)
        return berth_err_set(err, -EINVAL, "bad endpoint record");
    return berth__store_put(txn, BERTH_DB_ENDPOINTS, key, ep, 0, err);
}

int berth__endpoint_del_in(berth_txn_t *txn, const char *cid, const char *netid, berth_err_t *err)
{
    char key[160];
    int r;

    if (endpoint_key(key, sizeof(key), cid, netid) < 0)
        return berth_err_set(err, -EINVAL, "bad endpoint key");
    r = berth__store_del(txn, BERTH_DB_ENDPOINTS, key, err);
    return r == -ENOENT ? 0 : r;
}

static berth_driver_t *net_driver(berth_registry_t *reg, char *const *plugin_dirs, const char *name,
                                  berth_err_t *err)
{
    berth_driver_t *d = NULL;

    if (!name || !berth__driver_name_valid(name)) {
        berth_err_set(err, -EINVAL, "bad network driver name \"%s\"", name ? name : "");
        return NULL;
    }
    if (reg && !(d = berth__registry_find(reg, BERTH_KIND_NETWORK, name)))
        d = berth__registry_load_named(reg, plugin_dirs, BERTH_KIND_NETWORK, name);
    if (reg && !d && berth__registry_load_dirs(reg, plugin_dirs, NULL) == 0)
        d = berth__registry_find(reg, BERTH_KIND_NETWORK, name);
    if (!d)
        berth_err_set(err, -ENOENT, "network driver \"%s\" is not available", name);
    return d;
}

/* The two specs a driver call takes, over records that outlive the call. */
struct net_call {
    berth_network_spec_t net;
    berth_endpoint_spec_t ep;
    char *net_json, *req_json;
};

static int net_call_init(struct net_call *c, json_t *net, const char *cid, const char *ifname,
                         json_t *request, const berth_net_attach_t *attach, berth_err_t *err)
{
    memset(c, 0, sizeof(*c));
    c->net.struct_size = sizeof(c->net);
    c->net.id = json_string_value(json_object_get(net, "id"));
    c->net.name = json_string_value(json_object_get(net, "name"));
    c->net_json = berth__network_driver_json(net);
    c->req_json = request ? json_dumps(request, JSON_COMPACT) : strdup("{}");
    c->net.config_json = c->net_json;
    c->ep.struct_size = sizeof(c->ep);
    c->ep.network = &c->net;
    c->ep.container_id = cid;
    c->ep.ifname = ifname ? ifname : "eth0";
    c->ep.attach = attach;
    c->ep.request_json = c->req_json;
    if (!c->net_json || !c->req_json || !c->net.id || !c->net.name) {
        free(c->net_json);
        free(c->req_json);
        return berth_err_set(err, -ENOMEM, "out of memory (or a bad network record)");
    }
    return 0;
}

static void net_call_free(struct net_call *c)
{
    free(c->net_json);
    free(c->req_json);
}

int berth__endpoint_detach(berth_registry_t *reg, char *const *plugin_dirs, json_t *net, json_t *ep,
                           berth_err_t *err)
{
    const char *cid = json_string_value(json_object_get(ep, "container"));
    _cleanup_free_ char *result = NULL;
    const berth_network_ops_t *ops;
    berth_net_attach_t none = { .struct_size = sizeof(none), .type = BERTH_NET_ATTACH_NONE };
    struct net_call call;
    berth_driver_t *d;
    int r;

    if (!net)
        return 0;
    if (!(d = net_driver(reg, plugin_dirs, json_string_value(json_object_get(net, "driver")), err)))
        return -ENOENT;
    ops = d->ops;
    if (json_object_get(ep, "result"))
        result = json_dumps(json_object_get(ep, "result"), JSON_COMPACT);
    /* Whatever netns the sandbox had is gone or going: the driver must cope without it. */
    if (json_string_value(json_object_get(ep, "netns")) &&
        strlen(json_string_value(json_object_get(ep, "netns"))) < sizeof(none.path) &&
        access(json_string_value(json_object_get(ep, "netns")), F_OK) == 0) {
        none.type = BERTH_NET_ATTACH_NETNS;
        strcpy(none.path, json_string_value(json_object_get(ep, "netns")));
    }
    if ((r = net_call_init(&call, net, cid, json_string_value(json_object_get(ep, "ifname")),
                           json_object_get(ep, "request"), &none, err)) < 0)
        return r;
    r = ops->endpoint_detach(d->priv, &call.ep, result, 0, err);
    net_call_free(&call);
    return r;
}

int berth__endpoints_release(berth_store_t *store, berth_registry_t *reg, char *const *plugin_dirs,
                             const char *cid, berth_err_t *err)
{
    _cleanup_json_ json_t *eps = NULL;
    json_t *ep;
    size_t i;
    int r, first = 0;

    {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0 ||
            (r = berth__endpoints_in(txn, cid, &eps, err)) < 0)
            return r;
    }
    json_array_foreach (eps, i, ep) {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        _cleanup_json_ json_t *net = NULL;
        berth_err_t e2 = { 0 };
        const char *netid = json_string_value(json_object_get(ep, "network"));

        if ((r = berth__store_txn_begin(store, 0, &txn, &e2)) == 0) {
            r = berth__store_get(txn, BERTH_DB_NETWORKS, netid ? netid : "", &net, &e2);
            berth__store_txn_abort(TAKE_PTR(txn));
        }
        if (r == 0 || r == -ENOENT)
            r = berth__endpoint_detach(reg, plugin_dirs, net, ep, &e2);
        if (r == 0 && (r = berth__store_txn_begin(store, 1, &txn, &e2)) == 0 &&
            (r = berth__endpoint_del_in(txn, cid, netid, &e2)) == 0)
            r = berth__store_txn_commit(TAKE_PTR(txn), &e2);
        if (r < 0 && !first) {
            first = r;
            berth_err_set(err, r, "releasing the endpoint on network %s: %s",
                          json_string_value(json_object_get(ep, "network_name")) ?: "?", e2.msg);
        }
    }
    return first;
}

int berth__port_key_parse(const char *key, unsigned *ret_port, const char **ret_proto)
{
    char *end;
    unsigned long p;

    if (!key || !*key || *key < '0' || *key > '9')
        return -EINVAL;
    errno = 0;
    p = strtoul(key, &end, 10);
    if (errno || p == 0 || p > 65535)
        return -EINVAL;
    if (*end == '\0')
        *ret_proto = "tcp";
    else if (strcmp(end, "/tcp") == 0 || strcmp(end, "/udp") == 0 || strcmp(end, "/sctp") == 0)
        *ret_proto = end + 1;
    else
        return -EINVAL;
    *ret_port = (unsigned)p;
    return 0;
}

/* ---- the monitor's side ---- */

struct reserved_port {
    int fd;
    char host_ip[INET_ADDRSTRLEN];
    unsigned host_port, container_port;
    char proto[8];
};

struct attached {
    json_t *net; /* the network record */
    json_t *ep;  /* the endpoint record, once attached */
};

struct berth_netsetup {
    berth_registry_t *reg;
    char *const *plugin_dirs;
    char *cid;
    struct reserved_port *ports;
    size_t n_ports;
    struct attached *eps;
    size_t n_eps;
    char hosts[PATH_MAX];
    char *cname;
    berth_net_attach_t attach; /* where the sandbox is, for endpoints added later */
    int has_attach;
};

static int reserve_port(struct reserved_port *p, berth_err_t *err)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->host_port) };
    socklen_t len = sizeof(sa);
    int udp = strcmp(p->proto, "udp") == 0;

    if (strcmp(p->proto, "sctp") == 0)
        return berth_err_set(err, -ENOTSUP, "publishing sctp ports is not supported");
    if (inet_pton(AF_INET, p->host_ip, &sa.sin_addr) != 1)
        return berth_err_set(err, -EINVAL, "invalid host address \"%s\" for port %u/%s", p->host_ip,
                             p->container_port, p->proto);
    /*
     * Held, not listened on: traffic to the port is DNATed to the container
     * before any socket sees it, and a bound socket without SO_REUSEADDR is
     * enough to make every other bind of the port fail while we run.
     */
    p->fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return berth_err_set(err, -errno, "socket: %s", strerror(errno));
    if (bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(p->fd);
        p->fd = -1;
        if (e == EADDRINUSE)
            return berth_err_set(err, -EADDRINUSE,
                                 "Bind for %s:%u failed: port is already allocated", p->host_ip,
                                 p->host_port);
        return berth_err_set(err, -e, "binding %s:%u/%s: %s", p->host_ip, p->host_port, p->proto,
                             strerror(e));
    }
    if (getsockname(p->fd, (struct sockaddr *)&sa, &len) == 0)
        p->host_port = ntohs(sa.sin_port);
    return 0;
}

static int add_port(berth_netsetup_t *ns, const char *ip, const char *hport, unsigned cport,
                    const char *proto, berth_err_t *err)
{
    struct reserved_port *grown, *p;
    unsigned long hp = 0;
    char *end;

    if (hport && *hport) {
        errno = 0;
        hp = strtoul(hport, &end, 10);
        if (errno || *end || hp > 65535)
            return berth_err_set(err, -EINVAL, "invalid host port \"%s\"", hport);
    }
    if (!(grown = realloc(ns->ports, (ns->n_ports + 1) * sizeof(*grown))))
        return berth_err_set(err, -ENOMEM, "out of memory");
    ns->ports = grown;
    p = &ns->ports[ns->n_ports];
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    snprintf(p->host_ip, sizeof(p->host_ip), "%s", ip && *ip ? ip : "0.0.0.0");
    p->host_port = (unsigned)hp;
    p->container_port = cport;
    snprintf(p->proto, sizeof(p->proto), "%s", proto);
    ns->n_ports++;
    return reserve_port(p, err);
}

/* PortBindings, and with PublishAllPorts every other exposed port on an ephemeral one. */
static int reserve_ports(berth_netsetup_t *ns, json_t *record, berth_err_t *err)
{
    json_t *hc = json_object_get(record, "host_config");
    json_t *bindings = json_object_get(hc, "PortBindings"), *v, *b;
    const char *key, *proto;
    unsigned port;
    size_t i;
    int r;

    json_object_foreach (bindings, key, v) {
        if (berth__port_key_parse(key, &port, &proto) < 0)
            return berth_err_set(err, -EINVAL, "invalid port \"%s\"", key);
        if (!json_is_array(v) || json_array_size(v) == 0) {
            if ((r = add_port(ns, NULL, NULL, port, proto, err)) < 0)
                return r;
            continue;
        }
        json_array_foreach (v, i, b) {
            if ((r = add_port(ns, json_string_value(json_object_get(b, "HostIp")),
                              json_string_value(json_object_get(b, "HostPort")), port, proto,
                              err)) < 0)
                return r;
        }
    }
    if (!json_is_true(json_object_get(hc, "PublishAllPorts")))
        return 0;
    json_object_foreach (json_object_get(json_object_get(record, "config"), "ExposedPorts"), key,
                         v) {
        if (json_object_get(bindings, key))
            continue;
        if (berth__port_key_parse(key, &port, &proto) < 0)
            return berth_err_set(err, -EINVAL, "invalid exposed port \"%s\"", key);
        if ((r = add_port(ns, NULL, NULL, port, proto, err)) < 0)
            return r;
    }
    return 0;
}

static json_t *port_mappings(const berth_netsetup_t *ns)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < ns->n_ports; i++) {
        const struct reserved_port *p = &ns->ports[i];
        json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:s}", "host_ip", p->host_ip,
                                             "host_port", (int)p->host_port, "container_port",
                                             (int)p->container_port, "protocol", p->proto));
    }
    return arr;
}

/* The address (CIDR), gateway and MAC of the sandbox's interface in a CNI result. */
static void result_summary(json_t *result, json_t *ep)
{
    json_t *ips = json_object_get(result, "ips"), *ifs = json_object_get(result, "interfaces");
    json_t *ip;
    size_t i;

    json_array_foreach (ips, i, ip) {
        const char *addr = json_string_value(json_object_get(ip, "address"));
        json_t *idx = json_object_get(ip, "interface");
        if (!addr || strchr(addr, ':'))
            continue;
        json_object_set_new(ep, "address", json_string(addr));
        if (json_string_value(json_object_get(ip, "gateway")))
            json_object_set(ep, "gateway", json_object_get(ip, "gateway"));
        if (json_is_integer(idx)) {
            json_t *iface = json_array_get(ifs, (size_t)json_integer_value(idx));
            if (json_string_value(json_object_get(iface, "mac")))
                json_object_set(ep, "mac", json_object_get(iface, "mac"));
        }
        break;
    }
}

static int write_text(const char *path, const char *text, berth_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text), off = 0;

    if (fd < 0)
        return berth_err_set(err, -errno, "open %s: %s", path, strerror(errno));
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return berth_err_set(err, -e, "write %s: %s", path, strerror(e));
        }
        off += (size_t)n;
    }
    close(fd);
    return 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t cap = 0;

    if (!f)
        return NULL;
    if (getdelim(&buf, &cap, '\0', f) < 0) {
        free(buf);
        buf = strdup("");
    }
    fclose(f);
    return buf;
}

#define PEERS_MARK "# berth: containers on the same networks\n"

/* The peers part of a hosts file: every other endpoint on @cid's user networks. */
static char *peers_text(json_t *all, const char *cid)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    json_t *mine, *other;
    size_t i, k;

    if (!f)
        return NULL;
    fputs(PEERS_MARK, f);
    json_array_foreach (all, i, mine) {
        const char *netid = json_string_value(json_object_get(mine, "network"));
        if (strcmp(json_string_value(json_object_get(mine, "container")) ?: "", cid) != 0 ||
            strcmp(json_string_value(json_object_get(mine, "network_name")) ?: "",
                   BERTH_NETWORK_DEFAULT) == 0)
            continue;
        json_array_foreach (all, k, other) {
            const char *addr = json_string_value(json_object_get(other, "address"));
            const char *peer = json_string_value(json_object_get(other, "container")) ?: "";
            char ip[64];
            json_t *a;
            size_t m;
            if (strcmp(peer, cid) == 0 || !addr ||
                strcmp(json_string_value(json_object_get(other, "network")) ?: "", netid ?: "") !=
                    0)
                continue;
            snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(addr, "/"), addr);
            fprintf(f, "%s\t%s %.12s", ip, json_string_value(json_object_get(other, "name")) ?: "",
                    peer);
            json_array_foreach (json_object_get(other, "aliases"), m, a)
                fprintf(f, " %s", json_string_value(a) ?: "");
            fputc('\n', f);
        }
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/*
 * Rewrite the peers part of the hosts file at @path in place: it is
 * bind-mounted into a running container, so the inode must stay. flock
 * serialises monitors updating the same file.
 */
static void hosts_refresh(const char *path, json_t *all, const char *cid)
{
    _cleanup_free_ char *old = NULL, *peers = NULL, *text = NULL;
    char *mark;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX) == 0 && (old = read_text(path)) && (peers = peers_text(all, cid))) {
        if ((mark = strstr(old, PEERS_MARK)))
            *mark = '\0';
        if (asprintf(&text, "%s%s", old, peers) >= 0 && ftruncate(fd, 0) == 0 &&
            pwrite(fd, text, strlen(text), 0) < 0)
            fprintf(stderr, "berth: updating %s: %s\n", path, strerror(errno));
    }
    close(fd);
}

/* Every container sharing a user network with @cid (and @cid itself) gets its hosts file redone. */
static void peers_refresh(berth_store_t *store, const char *cid, json_t *mine)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *all = NULL;
    json_t *ep, *m;
    size_t i, k;

    if (berth__store_txn_begin(store, 0, &txn, NULL) < 0 ||
        berth__endpoints_in(txn, NULL, &all, NULL) < 0)
        return;
    berth__store_txn_abort(TAKE_PTR(txn));
    json_array_foreach (all, i, ep) {
        const char *other = json_string_value(json_object_get(ep, "container")) ?: "";
        const char *hosts = json_string_value(json_object_get(ep, "hosts"));
        int shares = strcmp(other, cid) == 0;
        json_array_foreach (mine, k, m)
            shares |= strcmp(json_string_value(json_object_get(m, "network")) ?: "",
                             json_string_value(json_object_get(ep, "network")) ?: "") == 0 &&
                      strcmp(json_string_value(json_object_get(m, "network_name")) ?: "",
                             BERTH_NETWORK_DEFAULT) != 0;
        if (shares && hosts)
            hosts_refresh(hosts, all, other);
    }
}

static int write_etc(berth_netsetup_t *ns, json_t *record, const char *mode, const char *hostname,
                     const char *etc_dir, berth_err_t *err)
{
    json_t *hc = json_object_get(record, "host_config"), *v;
    const char *domain =
        json_string_value(json_object_get(json_object_get(record, "config"), "Domainname"));
    _cleanup_free_ char *hosts = NULL, *resolv = NULL, *host_resolv = NULL;
    char path[PATH_MAX];
    size_t hlen = 0, rlen = 0, i;
    FILE *f;
    int r;

    if ((r = berth__mkdir_p(etc_dir, 0755, err)) < 0)
        return r;
    snprintf(path, sizeof(path), "%s/hostname", etc_dir);
    {
        char line[300];
        snprintf(line, sizeof(line), "%s\n", hostname);
        if ((r = write_text(path, line, err)) < 0)
            return r;
    }

    /* /etc/hosts: the host's own for host networking, otherwise Docker's shape. */
    if (!(f = open_memstream(&hosts, &hlen)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (strcmp(mode, "host") == 0) {
        _cleanup_free_ char *h = read_text("/etc/hosts");
        fputs(h ? h : "127.0.0.1\tlocalhost\n", f);
    } else {
        fputs("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
              "ff02::2\tip6-allrouters\n",
              f);
        for (i = 0; i < ns->n_eps; i++) {
            const char *addr = json_string_value(json_object_get(ns->eps[i].ep, "address"));
            if (addr) {
                fprintf(f, "%.*s\t%s%s%s%s\n", (int)strcspn(addr, "/"), addr, hostname,
                        domain && *domain ? " " : "", domain && *domain ? hostname : "",
                        domain && *domain ? "." : "");
                if (domain && *domain)
                    fprintf(f, "# domain %s\n", domain);
                break;
            }
        }
    }
    /* --add-host NAME:IP ("NAME=IP" in newer clients) */
    json_array_foreach (json_object_get(hc, "ExtraHosts"), i, v) {
        const char *e = json_string_value(v);
        size_t n = e ? strcspn(e, ":=") : 0;
        if (!e || !e[n] || n == 0 || !e[n + 1]) {
            fclose(f);
            return berth_err_set(err, -EINVAL, "invalid extra host \"%s\": want NAME:IP",
                                 e ? e : "");
        }
        fprintf(f, "%s\t%.*s\n", e + n + 1, (int)n, e);
    }
    if (fclose(f) != 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    snprintf(ns->hosts, sizeof(ns->hosts), "%s/hosts", etc_dir);
    if ((r = write_text(ns->hosts, hosts, err)) < 0)
        return r;

    /*
     * /etc/resolv.conf: --dns and friends, otherwise the host's without
     * loopback resolvers (unreachable from another netns), Docker's public
     * fallback when none is left.
     */
    if (!(f = open_memstream(&resolv, &rlen)))
        return berth_err_set(err, -ENOMEM, "out of memory");
    host_resolv = read_text("/etc/resolv.conf");
    {
        int servers = 0, search = 0, options = 0;
        json_array_foreach (json_object_get(hc, "Dns"), i, v)
            fprintf(f, "nameserver %s\n", json_string_value(v) ?: ""), servers++;
        if (json_array_size(json_object_get(hc, "DnsSearch"))) {
            fputs("search", f);
            json_array_foreach (json_object_get(hc, "DnsSearch"), i, v)
                fprintf(f, " %s", json_string_value(v) ?: "");
            fputc('\n', f);
            search = 1;
        }
        if (json_array_size(json_object_get(hc, "DnsOptions"))) {
            fputs("options", f);
            json_array_foreach (json_object_get(hc, "DnsOptions"), i, v)
                fprintf(f, " %s", json_string_value(v) ?: "");
            fputc('\n', f);
            options = 1;
        }
        for (char *line = host_resolv, *next; line && *line; line = next) {
            next = line + strcspn(line, "\n");
            if (*next)
                *next++ = '\0';
            if (!strncmp(line, "nameserver", 10)) {
                const char *a = line + 10 + strspn(line + 10, " \t");
                int local = !strncmp(a, "127.", 4) || !strcmp(a, "::1");
                if (servers < 0 || (!servers && !local && strcmp(mode, "host") != 0) ||
                    (!servers && strcmp(mode, "host") == 0)) {
                    fprintf(f, "%s\n", line);
                    servers = -1;
                }
            } else if ((!strncmp(line, "search", 6) && !search) ||
                       (!strncmp(line, "options", 7) && !options)) {
                fprintf(f, "%s\n", line);
            }
        }
        if (servers == 0)
            fputs("nameserver 8.8.8.8\nnameserver 8.8.4.4\n", f);
    }
    if (fclose(f) != 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    snprintf(path, sizeof(path), "%s/resolv.conf", etc_dir);
    return write_text(path, resolv, err);
}

static int attach_one(berth_netsetup_t *ns, json_t *net, json_t *want, const char *cname,
                      const berth_net_attach_t *attach, int primary, const char *hosts_path,
                      berth_err_t *err)
{
    _cleanup_json_ json_t *request = json_object(), *result = NULL;
    const berth_network_ops_t *ops;
    berth_blob_t *blob = NULL;
    struct net_call call;
    struct attached *a;
    berth_driver_t *d;
    char ifname[16];
    json_error_t jerr;
    int r;

    if (!(d = net_driver(ns->reg, ns->plugin_dirs,
                         json_string_value(json_object_get(net, "driver")), err)))
        return -ENOENT;
    ops = d->ops;
    if (!request)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (json_string_value(json_object_get(want, "ip")))
        json_object_set(request, "ip", json_object_get(want, "ip"));
    json_object_set_new(request, "aliases",
                        json_is_array(json_object_get(want, "aliases"))
                            ? json_deep_copy(json_object_get(want, "aliases"))
                            : json_array());
    /* Ports are published through the first network, as Docker's port mapper does. */
    if (primary && ns->n_ports)
        json_object_set_new(request, "port_mappings", port_mappings(ns));
    snprintf(ifname, sizeof(ifname), "eth%zu", ns->n_eps);
    if ((r = net_call_init(&call, net, ns->cid, ifname, request, attach, err)) < 0)
        return r;
    r = ops->endpoint_attach(d->priv, &call.ep, 0, &blob, err);
    net_call_free(&call);
    if (r < 0) {
        char what[300];
        snprintf(what, sizeof(what), "network %s",
                 json_string_value(json_object_get(net, "name")) ?: "");
        return berth_err_prefix(err, r, what);
    }
    result = blob && blob->data ? json_loadb(blob->data, blob->len, 0, &jerr) : json_object();
    berth_blob_release(blob);
    if (!result)
        result = json_object();

    a = realloc(ns->eps, (ns->n_eps + 1) * sizeof(*a));
    if (!a) {
        berth_err_set(err, -ENOMEM, "out of memory");
        goto undo;
    }
    ns->eps = a;
    a = &ns->eps[ns->n_eps];
    a->net = json_incref(net);
    a->ep = json_pack("{s:s, s:s, s:O, s:O, s:O, s:s, s:O, s:O, s:O, s:s, s:s}", "container",
                      ns->cid, "name", cname, "network", json_object_get(net, "id"), "network_name",
                      json_object_get(net, "name"), "driver", json_object_get(net, "driver"),
                      "ifname", ifname, "result", result, "request", request, "aliases",
                      json_object_get(request, "aliases"), "hosts", hosts_path, "netns",
                      attach ? attach->path : "");
    if (!a->ep) {
        json_decref(a->net);
        berth_err_set(err, -ENOMEM, "out of memory");
        goto undo;
    }
    json_object_set_new(a->ep, "ports", primary ? port_mappings(ns) : json_array());
    result_summary(result, a->ep);
    ns->n_eps++;
    return 0;

undo : {
    json_t *tmp =
        json_pack("{s:O, s:s, s:s, s:O, s:s}", "result", result, "container", ns->cid, "ifname",
                  ifname, "request", request, "netns", attach ? attach->path : "");
    berth__endpoint_detach(ns->reg, ns->plugin_dirs, net, tmp, NULL);
    json_decref(tmp);
    return -ENOMEM;
}
}

static void netsetup_free(berth_netsetup_t *ns)
{
    for (size_t i = 0; i < ns->n_ports; i++)
        if (ns->ports[i].fd >= 0)
            close(ns->ports[i].fd);
    for (size_t i = 0; i < ns->n_eps; i++) {
        json_decref(ns->eps[i].net);
        json_decref(ns->eps[i].ep);
    }
    free(ns->ports);
    free(ns->eps);
    free(ns->cid);
    free(ns->cname);
    free(ns);
}

void berth__netsetup_teardown(berth_netsetup_t *ns, berth_store_t *store)
{
    _cleanup_json_ json_t *mine = json_array();
    berth_err_t err = { 0 };

    if (!ns)
        return;
    /* Detach in reverse; the records go after, so a failure leaves one for the engine to retry. */
    for (size_t i = ns->n_eps; i-- > 0;) {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        json_t *ep = ns->eps[i].ep;
        if (berth__endpoint_detach(ns->reg, ns->plugin_dirs, ns->eps[i].net, ep, &err) < 0) {
            fprintf(stderr, "berth: detaching from network %s: %s\n",
                    json_string_value(json_object_get(ep, "network_name")) ?: "", err.msg);
            continue;
        }
        if (mine)
            json_array_append(mine, ep);
        if (store && berth__store_txn_begin(store, 1, &txn, &err) == 0 &&
            berth__endpoint_del_in(txn, ns->cid, json_string_value(json_object_get(ep, "network")),
                                   &err) == 0)
            berth__store_txn_commit(TAKE_PTR(txn), &err);
    }
    if (store && mine && json_array_size(mine))
        peers_refresh(store, ns->cid, mine);
    netsetup_free(ns);
}

int berth__netsetup(berth_store_t *store, berth_registry_t *reg, char *const *plugin_dirs,
                    json_t *record, const berth_net_attach_t *attach, const char *hostname,
                    const char *etc_dir, berth_netsetup_t **ret, berth_err_t *err)
{
    const char *cid = json_string_value(json_object_get(record, "id"));
    const char *cname = json_string_value(json_object_get(record, "name")) ?: "";
    const char *mode =
        json_string_value(json_object_get(json_object_get(record, "host_config"), "NetworkMode"));
    json_t *nets = json_object_get(record, "networks"), *want;
    berth_netsetup_t *ns;
    char hosts_path[PATH_MAX];
    size_t i;
    int r;

    if (!cid)
        return berth_err_set(err, -EINVAL, "container record without an id");
    if (!mode || !*mode)
        mode = json_array_size(nets) ? BERTH_NETWORK_DEFAULT : "none";
    if (!(ns = calloc(1, sizeof(*ns))) || !(ns->cid = strdup(cid)) ||
        !(ns->cname = strdup(cname))) {
        if (ns)
            free(ns->cid);
        free(ns);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    ns->reg = reg;
    ns->plugin_dirs = plugin_dirs;
    snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", etc_dir);
    if (attach && attach->type == BERTH_NET_ATTACH_NETNS && !berth__network_is_pseudo(mode)) {
        ns->attach = *attach;
        ns->has_attach = 1;
    }

    if (!berth__network_is_pseudo(mode) && json_array_size(nets)) {
        if (!attach || attach->type != BERTH_NET_ATTACH_NETNS || !attach->path[0]) {
            r = berth_err_set(err, -ENOTSUP,
                              "the isolation driver gave no network namespace to attach to");
            goto fail;
        }
        if ((r = reserve_ports(ns, record, err)) < 0)
            goto fail;
        /* A previous run's endpoints, if its monitor died, go before new ones come. */
        if ((r = berth__endpoints_release(store, reg, plugin_dirs, cid, err)) < 0)
            goto fail;
        json_array_foreach (nets, i, want) {
            _cleanup_txn_ berth_txn_t *txn = NULL;
            _cleanup_json_ json_t *net = NULL;
            const char *netid = json_string_value(json_object_get(want, "id"));
            if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0)
                goto fail;
            r = berth__store_get(txn, BERTH_DB_NETWORKS, netid ? netid : "", &net, err);
            if (r == -ENOENT)
                r = berth_err_set(err, -ENOENT, "network %s not found",
                                  json_string_value(json_object_get(want, "name")) ?: "?");
            berth__store_txn_abort(TAKE_PTR(txn));
            if (r < 0 ||
                (r = attach_one(ns, net, want, cname, attach, i == 0, hosts_path, err)) < 0)
                goto fail;
        }
    }
    if ((r = write_etc(ns, record, mode, hostname, etc_dir, err)) < 0)
        goto fail;
    if (ns->n_eps) {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        _cleanup_json_ json_t *mine = json_array();
        if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
            goto fail;
        for (i = 0; i < ns->n_eps; i++) {
            if ((r = berth__endpoint_put_in(txn, ns->eps[i].ep, err)) < 0)
                goto fail;
            json_array_append(mine, ns->eps[i].ep);
        }
        if ((r = berth__store_txn_commit(TAKE_PTR(txn), err)) < 0)
            goto fail;
        peers_refresh(store, cid, mine);
    }
    *ret = ns;
    return 0;

fail:
    /* Nothing of ours is in the store yet: detach without touching it. */
    berth__netsetup_teardown(ns, NULL);
    return r;
}

int berth__netsetup_connect(berth_netsetup_t *ns, berth_store_t *store, json_t *net, json_t *want,
                            berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *mine = json_array();
    struct attached *a;
    int r;

    if (!ns || !ns->has_attach)
        return berth_err_set(err, -EINVAL,
                             "the container has no network namespace of its own to connect");
    for (size_t i = 0; i < ns->n_eps; i++)
        if (json_equal(json_object_get(ns->eps[i].ep, "network"), json_object_get(net, "id")))
            return berth_err_set(err, -EEXIST, "the container is already on network %s",
                                 json_string_value(json_object_get(net, "name")) ?: "");
    /* Ports were published through the first network; a later one publishes none. */
    if ((r = attach_one(ns, net, want, ns->cname, &ns->attach, ns->n_eps == 0, ns->hosts, err)) < 0)
        return r;
    a = &ns->eps[ns->n_eps - 1];
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0 ||
        (r = berth__endpoint_put_in(txn, a->ep, err)) < 0 ||
        (r = berth__store_txn_commit(TAKE_PTR(txn), err)) < 0) {
        berth__endpoint_detach(ns->reg, ns->plugin_dirs, a->net, a->ep, NULL);
        json_decref(a->net);
        json_decref(a->ep);
        ns->n_eps--;
        return r;
    }
    if (mine) {
        json_array_append(mine, a->ep);
        peers_refresh(store, ns->cid, mine);
    }
    return 0;
}

int berth__netsetup_disconnect(berth_netsetup_t *ns, berth_store_t *store, const char *netid,
                               berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *mine = json_array();
    size_t i;
    int r;

    for (i = 0; ns && i < ns->n_eps; i++)
        if (!strcmp(json_string_value(json_object_get(ns->eps[i].ep, "network")) ?: "", netid))
            break;
    if (!ns || i == ns->n_eps)
        return berth_err_set(err, -ENOENT, "the container is not attached to network %.12s", netid);
    if ((r = berth__endpoint_detach(ns->reg, ns->plugin_dirs, ns->eps[i].net, ns->eps[i].ep, err)) <
        0)
        return r;
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) == 0 &&
        (r = berth__endpoint_del_in(txn, ns->cid, netid, err)) == 0)
        r = berth__store_txn_commit(TAKE_PTR(txn), err);
    if (mine)
        json_array_append(mine, ns->eps[i].ep);
    json_decref(ns->eps[i].net);
    json_decref(ns->eps[i].ep);
    memmove(&ns->eps[i], &ns->eps[i + 1], (ns->n_eps - i - 1) * sizeof(*ns->eps));
    ns->n_eps--;
    if (mine)
        peers_refresh(store, ns->cid, mine);
    return r;
}

int berth__endpoints_check(berth_store_t *store, berth_registry_t *reg, char *const *plugin_dirs,
                           berth_endpoint_report_fn report, void *userdata, berth_err_t *err)
{
    _cleanup_json_ json_t *eps = NULL;
    json_t *ep;
    size_t i;
    int r, bad = 0;

    {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0 ||
            (r = berth__endpoints_in(txn, NULL, &eps, err)) < 0)
            return r;
    }
    json_array_foreach (eps, i, ep) {
        _cleanup_json_ json_t *net = NULL;
        _cleanup_free_ char *result = NULL;
        const char *netid = json_string_value(json_object_get(ep, "network")) ?: "";
        const char *netns = json_string_value(json_object_get(ep, "netns")) ?: "";
        berth_net_attach_t at = { .struct_size = sizeof(at), .type = BERTH_NET_ATTACH_NETNS };
        const berth_network_ops_t *ops;
        berth_err_t e2 = { 0 };
        struct net_call call;
        berth_driver_t *d;

        {
            _cleanup_txn_ berth_txn_t *txn = NULL;
            if (berth__store_txn_begin(store, 0, &txn, &e2) < 0 ||
                berth__store_get(txn, BERTH_DB_NETWORKS, netid, &net, &e2) < 0)
                continue;
        }
        if (!(d = net_driver(reg, plugin_dirs, json_string_value(json_object_get(net, "driver")),
                             &e2)))
            continue;
        ops = d->ops;
        /* Optional op; an endpoint whose sandbox is gone is the engine's to release, not check. */
        if (!BERTH_OPS_HAS(ops, berth_network_ops_t, endpoint_check) || !*netns ||
            strlen(netns) >= sizeof(at.path) || access(netns, F_OK) < 0)
            continue;
        strcpy(at.path, netns);
        result = json_dumps(json_object_get(ep, "result"), JSON_COMPACT);
        if (net_call_init(&call, net, json_string_value(json_object_get(ep, "container")),
                          json_string_value(json_object_get(ep, "ifname")),
                          json_object_get(ep, "request"), &at, &e2) < 0)
            continue;
        r = ops->endpoint_check(d->priv, &call.ep, result, 0, &e2);
        net_call_free(&call);
        if (r < 0) {
            bad++;
            if (report)
                report(userdata, json_string_value(json_object_get(ep, "container")) ?: "",
                       json_string_value(json_object_get(ep, "network_name")) ?: netid, e2.msg);
        }
    }
    return bad;
}
