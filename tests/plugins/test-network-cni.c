/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cni network driver against Debian's real CNI plugins, with network
 * namespaces, bridges and addresses this test creates itself (names carry
 * the test's pid, all removed again). Traffic stays between those
 * namespaces and the host's loopback. Needs root, the plugins, ip(8),
 * iptables-save and busybox; skips (77) otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <berth/sdk.h>

const berth_plugin_desc_t *berth_plugin_entry(void);

#define FMT(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static char base[PATH_MAX], state_dir[PATH_MAX], runstate_dir[PATH_MAX];
static char host_config[PATH_MAX + 64];
static const char *cni_dir;
static char probe_file[PATH_MAX]; /* <cni_dir>/bridge */
static int pid_tag;
static unsigned counter;
static int no_runstate; /* the host gives the driver no runstate dir */

/* ---- a minimal host ---- */

static void h_log(berth_host_t *h, uint32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void *h_alloc(berth_host_t *h, size_t n)
{
    return malloc(n);
}

static void *h_realloc(berth_host_t *h, void *p, size_t n)
{
    return realloc(p, n);
}

static void h_free(berth_host_t *h, void *p)
{
    free(p);
}

static const char *h_path(berth_host_t *h, uint32_t which)
{
    switch (which) {
    case BERTH_PATH_STATE:
        return state_dir;
    case BERTH_PATH_RUNSTATE:
        return no_runstate ? NULL : runstate_dir;
    case BERTH_PATH_ROOT:
    case BERTH_PATH_RUNROOT:
        return base;
    default:
        return NULL;
    }
}

static const char *h_config(berth_host_t *h)
{
    return host_config;
}

static const berth_host_api_t host_api = {
    .struct_size = sizeof(berth_host_api_t),
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .log = h_log,
    .alloc = h_alloc,
    .realloc = h_realloc,
    .free = h_free,
    .path = h_path,
    .config = h_config,
};

struct drv {
    const berth_network_ops_t *ops;
    void *priv;
};

/* A driver instance with @p cni_path and @p timeout as its config section. */
static struct drv drv_open(const char *cni_path, int timeout)
{
    const berth_plugin_desc_t *desc = berth_plugin_entry();
    struct drv d = { .ops = desc->ops };
    berth_err_t err = { 0 };

    FMT(host_config, "{\"cni_path\":\"%s\",\"timeout\":%d}", cni_path, timeout);
    assert_int_equal(desc->init(&host_api, NULL, &d.priv, &err), 0);
    return d;
}

static void drv_close(struct drv *d)
{
    berth_plugin_entry()->fini(d->priv);
}

/* ---- helpers ---- */

static int sh(const char *fmt, ...) BERTH_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;
    va_start(ap, fmt);
    st = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(st < (int)sizeof(cmd));
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A 64-hex id unique to this run: prefix letter, the pid, a counter. */
static void make_id(char id[65], char kind)
{
    snprintf(id, 65, "%c%07x%04x%052x", kind, pid_tag & 0xfffffff, ++counter & 0xffff, 0);
}

struct netns {
    char name[64];
    char path[128];
};

static void netns_add(struct netns *ns)
{
    FMT(ns->name, "bct-%d-%u", pid_tag, ++counter);
    FMT(ns->path, "/run/netns/%s", ns->name);
    assert_int_equal(sh("ip netns add %s", ns->name), 0);
}

static void netns_del(struct netns *ns)
{
    if (ns->name[0])
        sh("ip netns del %s 2>/dev/null", ns->name);
    ns->name[0] = '\0';
}

struct net {
    char id[65];
    char name[64];
    char bridge[16];
    char subnet_prefix[32]; /* "10.213.7." */
    char config[512];
    berth_network_spec_t spec;
};

/* Subnets from 10.213.0.0/16, per pid, so parallel runs on one host don't meet. */
static void net_init(struct net *n, const char *extra)
{
    unsigned third = ((unsigned)pid_tag * 7 + counter * 13) % 250 + 1;
    make_id(n->id, 'e');
    FMT(n->name, "bct%d-%u", pid_tag, counter);
    FMT(n->bridge, "br-%.12s", n->id);
    FMT(n->subnet_prefix, "10.213.%u.", third);
    FMT(n->config, "{\"subnet\":\"%s0/24\"%s%s}", n->subnet_prefix, extra ? "," : "",
        extra ? extra : "");
    n->spec = (berth_network_spec_t){
        .struct_size = sizeof(n->spec),
        .id = n->id,
        .name = n->name,
        .config_json = n->config,
    };
}

static int net_create(struct drv *d, struct net *n, berth_err_t *err)
{
    berth_blob_t *state = NULL;
    int r = d->ops->network_create(d->priv, &n->spec, 0, &state, err);
    if (r == 0) {
        json_t *o;
        assert_non_null(state);
        assert_int_equal(strlen(state->data), state->len);
        o = json_loads(state->data, 0, NULL);
        assert_true(json_is_object(o));
        assert_string_equal(json_string_value(json_object_get(o, "bridge")), n->bridge);
        json_decref(o);
        berth_blob_release(state);
    }
    return r;
}

struct ep {
    char cid[65];
    berth_net_attach_t attach;
    berth_endpoint_spec_t spec;
    char *result;
    char ip[32]; /* without the prefix length */
};

static void ep_init(struct ep *e, struct net *n, struct netns *ns, const char *request)
{
    memset(e, 0, sizeof(*e));
    make_id(e->cid, 'c');
    e->attach.struct_size = sizeof(e->attach);
    e->attach.type = BERTH_NET_ATTACH_NETNS;
    FMT(e->attach.path, "%s", ns->path);
    e->spec = (berth_endpoint_spec_t){
        .struct_size = sizeof(e->spec),
        .network = &n->spec,
        .container_id = e->cid,
        .ifname = "eth0",
        .attach = &e->attach,
        .request_json = request ? request : "{}",
    };
}

static int ep_attach(struct drv *d, struct ep *e, berth_err_t *err)
{
    berth_blob_t *res = NULL;
    int r = d->ops->endpoint_attach(d->priv, &e->spec, 0, &res, err);
    json_t *o, *ip;
    const char *addr;

    if (r < 0) {
        assert_null(res);
        return r;
    }
    assert_non_null(res);
    e->result = strdup(res->data);
    berth_blob_release(res);
    o = json_loads(e->result, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "cniVersion")), "1.0.0");
    ip = json_array_get(json_object_get(o, "ips"), 0);
    addr = json_string_value(json_object_get(ip, "address"));
    assert_non_null(addr);
    FMT(e->ip, "%.*s", (int)strcspn(addr, "/"), addr);
    json_decref(o);
    return 0;
}

static void ep_detach(struct drv *d, struct ep *e)
{
    berth_err_t err = { 0 };
    int r = d->ops->endpoint_detach(d->priv, &e->spec, e->result, 0, &err);
    if (r < 0)
        print_error("detach: %s\n", err.msg);
    assert_int_equal(r, 0);
}

static void ep_free(struct ep *e)
{
    free(e->result);
    e->result = NULL;
}

static int lease_exists(struct net *n, const char *ip)
{
    char p[PATH_MAX + 128];
    FMT(p, "%s/ipam/%s/%s/%s", state_dir, n->id, n->name, ip);
    return access(p, F_OK) == 0;
}

/* Lease files host-local holds for the network, whatever the address. */
static int lease_count(struct net *n)
{
    return sh("n=$(ls '%s/ipam/%s/%s' 2>/dev/null | grep -c '^[0-9]'); exit $n", state_dir, n->id,
              n->name);
}

static int iptables_mentions(const char *what)
{
    return sh("iptables-save | grep -q '%s'", what) == 0;
}

/* nat POSTROUTING rules carrying network @p n's masquerade comment. */
static int masq_rules(struct net *n)
{
    return sh("n=$(iptables -w -t nat -S POSTROUTING | grep -c -F -- '--comment \"berth:%s\"'); "
              "exit $n",
              n->id);
}

/* Whether the rule is exactly the one the driver promises: subnet, not to its own bridge. */
static int masq_rule_exact(struct net *n)
{
    return sh("iptables -w -t nat -C POSTROUTING -s %s0/24 ! -o %s -m comment --comment "
              "berth:%s -j MASQUERADE 2>/dev/null",
              n->subnet_prefix, n->bridge, n->id) == 0;
}

/* Delete the network's rule behind the driver's back, as an iptables flush or a reboot would. */
static void masq_rule_drop(struct net *n)
{
    assert_int_equal(sh("iptables -w -t nat -D POSTROUTING -s %s0/24 ! -o %s -m comment "
                        "--comment berth:%s -j MASQUERADE",
                        n->subnet_prefix, n->bridge, n->id),
                     0);
    assert_int_equal(masq_rules(n), 0);
}

/* The driver's stamp of the network's rule: <runstate>/masq/<id>. */
static void masq_stamp_path(struct net *n, char *dst, size_t size)
{
    assert_true(snprintf(dst, size, "%s/masq/%s", runstate_dir, n->id) < (int)size);
}

/* Whether a nat POSTROUTING rule names the container: the bridge plugin's per-container masquerade. */
static int container_masq(struct ep *e)
{
    return sh("iptables -w -t nat -S POSTROUTING | grep -q -F '%s'", e->cid) == 0;
}

static int ports_on_bridge(struct net *n)
{
    return sh("n=$(ip -o link show master %s 2>/dev/null | wc -l); exit $n", n->bridge);
}

static int bridge_exists(struct net *n)
{
    return sh("ip link show %s >/dev/null 2>&1", n->bridge) == 0;
}

static int ping(struct netns *from, const char *ip)
{
    return sh("ip netns exec %s busybox ping -c 1 -W 2 %s >/dev/null 2>&1", from->name, ip) == 0;
}

static void assert_clean(struct net *n, struct ep *e)
{
    assert_false(iptables_mentions(e->cid));
    if (e->ip[0])
        assert_false(lease_exists(n, e->ip));
    assert_int_equal(lease_count(n), 0);
    assert_int_equal(ports_on_bridge(n), 0);
}

/* ---- tests ---- */

static void test_network_cni_bridge_two_netns(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    struct netns a, b, c;
    struct ep ea, eb, ec;
    berth_err_t err = { 0 };
    char gw[32], fixed[32], req[128];
    char conflist[PATH_MAX + 80];

    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    FMT(conflist, "%s/%s.conflist", state_dir, n.id);
    assert_int_equal(access(conflist, F_OK), 0);
    /* The network's one masquerade rule comes with the network. */
    assert_int_equal(masq_rules(&n), 1);
    assert_true(masq_rule_exact(&n));
    netns_add(&a);
    netns_add(&b);
    netns_add(&c);
    ep_init(&ea, &n, &a, NULL);
    ep_init(&eb, &n, &b, NULL);
    FMT(fixed, "%s50", n.subnet_prefix);
    FMT(req, "{\"ip\":\"%s\",\"aliases\":[\"web\"]}", fixed);
    ep_init(&ec, &n, &c, req);

    assert_int_equal(ep_attach(&d, &ea, &err), 0);
    assert_int_equal(ep_attach(&d, &eb, &err), 0);
    if (ep_attach(&d, &ec, &err) < 0)
        fail_msg("attach with a static ip: %s", err.msg);
    /* Addresses come from the subnet, the static one is honoured, leases are on disk. */
    assert_int_equal(strncmp(ea.ip, n.subnet_prefix, strlen(n.subnet_prefix)), 0);
    assert_int_equal(strncmp(eb.ip, n.subnet_prefix, strlen(n.subnet_prefix)), 0);
    assert_string_not_equal(ea.ip, eb.ip);
    assert_string_equal(ec.ip, fixed);
    assert_true(lease_exists(&n, ea.ip));
    assert_true(lease_exists(&n, ec.ip));
    assert_int_equal(ports_on_bridge(&n), 3);
    /* lo is up, eth0 has the address, the default route goes to the gateway. */
    assert_int_equal(sh("ip netns exec %s ip -o link show lo | grep -q UP", a.name), 0);
    FMT(gw, "%s1", n.subnet_prefix);
    assert_int_equal(sh("ip netns exec %s ip route | grep -q 'default via %s'", a.name, gw), 0);
    assert_true(ping(&a, eb.ip));
    assert_true(ping(&b, ea.ip));
    assert_true(ping(&c, ea.ip));
    assert_true(ping(&a, gw));
    /* CHECK agrees with what ADD set up. */
    if (d.ops->endpoint_check(d.priv, &ea.spec, ea.result, 0, &err) != 0)
        fail_msg("check: %s", err.msg);
    /* Still the network's one rule, and none per container (no chain, nothing tagged with it). */
    assert_int_equal(masq_rules(&n), 1);
    assert_false(container_masq(&ea));
    assert_false(iptables_mentions(ea.cid));

    ep_detach(&d, &ea);
    assert_false(lease_exists(&n, ea.ip));
    assert_false(iptables_mentions(ea.cid));
    assert_int_equal(ports_on_bridge(&n), 2);
    /* Detaching twice, and without the result, is fine. */
    ep_detach(&d, &ea);
    assert_int_equal(d.ops->endpoint_detach(d.priv, &ea.spec, NULL, 0, &err), 0);
    /* CHECK of a detached endpoint fails. */
    assert_int_not_equal(d.ops->endpoint_check(d.priv, &ea.spec, ea.result, 0, &err), 0);
    ep_detach(&d, &eb);
    ep_detach(&d, &ec);
    assert_clean(&n, &ea);
    assert_clean(&n, &eb);
    assert_clean(&n, &ec);
    assert_true(bridge_exists(&n));
    /* The rule is the network's: it stays without endpoints. */
    assert_int_equal(masq_rules(&n), 1);

    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    assert_false(bridge_exists(&n));
    assert_int_not_equal(access(conflist, F_OK), 0);
    assert_int_equal(masq_rules(&n), 0);
    /* Absent state is not an error. */
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    netns_del(&a);
    netns_del(&b);
    netns_del(&c);
    ep_free(&ea);
    ep_free(&eb);
    ep_free(&ec);
    drv_close(&d);
}

static void test_network_cni_internal(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    struct netns a, b;
    struct ep ea, eb;
    berth_err_t err = { 0 };
    char host_addr[64] = "";
    FILE *p;

    net_init(&n, "\"internal\":true,\"options\":{\"mtu\":1400}");
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    netns_add(&b);
    ep_init(&ea, &n, &a, NULL);
    ep_init(&eb, &n, &b, NULL);
    if (ep_attach(&d, &ea, &err) < 0)
        fail_msg("attach: %s", err.msg);
    assert_int_equal(ep_attach(&d, &eb, &err), 0);
    /* Containers on the network still reach each other. */
    assert_true(ping(&a, eb.ip));
    assert_int_equal(sh("ip netns exec %s ip link show eth0 | grep -q 'mtu 1400'", a.name), 0);
    /* No default route, and the bridge has no address: the host is unreachable. */
    assert_int_not_equal(sh("ip netns exec %s ip route | grep -q default", a.name), 0);
    assert_int_not_equal(sh("ip -4 addr show %s | grep -q inet", n.bridge), 0);
    assert_int_not_equal(sh("ip netns exec %s ip route get 192.0.2.1 >/dev/null 2>&1", a.name), 0);
    /* One of the host's own addresses outside the bridge, when it has one. */
    p = popen("ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1", "r");
    if (p) {
        if (fgets(host_addr, sizeof(host_addr), p))
            host_addr[strcspn(host_addr, "\n")] = '\0';
        pclose(p);
    }
    if (host_addr[0] && strncmp(host_addr, n.subnet_prefix, strlen(n.subnet_prefix)) != 0)
        assert_int_not_equal(
            sh("ip netns exec %s ip route get %s >/dev/null 2>&1", a.name, host_addr), 0);
    /* No masquerade for internal networks: neither the network's rule nor a container's. */
    assert_false(iptables_mentions(ea.cid));
    assert_int_equal(masq_rules(&n), 0);
    assert_false(iptables_mentions(n.id));
    ep_detach(&d, &ea);
    ep_detach(&d, &eb);
    assert_clean(&n, &ea);
    assert_clean(&n, &eb);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    assert_false(bridge_exists(&n));
    netns_del(&a);
    netns_del(&b);
    ep_free(&ea);
    ep_free(&eb);
    drv_close(&d);
}

/* A free TCP port on 127.0.0.1 (bound once, released). */
static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/*
 * A listener on @p port inside @p ns that answers one connection with a
 * line; returns its pid once it listens.
 */
static pid_t serve_in_netns(struct netns *ns, int port)
{
    int sync[2];
    pid_t pid;
    char c;

    assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        int nsfd = open(ns->path, O_RDONLY | O_CLOEXEC), fd, conn, one = 1;
        if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
            _exit(1);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
            _exit(2);
        if (write(sync[1], "r", 1) != 1)
            _exit(3);
        alarm(20);
        conn = accept(fd, NULL, NULL);
        if (conn < 0 || write(conn, "hello from the netns\n", 21) != 21)
            _exit(4);
        close(conn);
        _exit(0);
    }
    close(sync[1]);
    assert_int_equal(read(sync[0], &c, 1), 1);
    close(sync[0]);
    return pid;
}

static int connect_read(const char *ip, int port, char *buf, size_t size)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct timeval tv = { .tv_sec = 5 };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ssize_t n;

    inet_pton(AF_INET, ip, &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -errno;
    }
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return (int)n;
}

static void test_network_cni_port_mapping(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    struct netns a;
    struct ep ea;
    berth_err_t err = { 0 };
    char req[256], buf[64];
    int host_port = free_port(), st;
    pid_t srv;

    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    FMT(req,
        "{\"port_mappings\":[{\"host_ip\":\"127.0.0.1\",\"host_port\":%d,"
        "\"container_port\":8080,\"protocol\":\"tcp\"}]}",
        host_port);
    ep_init(&ea, &n, &a, req);
    if (ep_attach(&d, &ea, &err) < 0)
        fail_msg("attach: %s", err.msg);
    assert_true(iptables_mentions(ea.cid));
    srv = serve_in_netns(&a, 8080);
    memset(buf, 0, sizeof(buf));
    if (connect_read("127.0.0.1", host_port, buf, sizeof(buf)) <= 0) {
        kill(srv, SIGKILL);
        waitpid(srv, NULL, 0);
        fail_msg("127.0.0.1:%d does not reach the netns", host_port);
    }
    assert_string_equal(buf, "hello from the netns\n");
    assert_int_equal(waitpid(srv, &st, 0), srv);
    assert_int_equal(st, 0);
    if (d.ops->endpoint_check(d.priv, &ea.spec, ea.result, 0, &err) != 0)
        fail_msg("check: %s", err.msg);

    ep_detach(&d, &ea);
    assert_clean(&n, &ea);
    /* The DNAT is gone: the port is closed again. */
    assert_true(connect_read("127.0.0.1", host_port, buf, sizeof(buf)) < 0);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    netns_del(&a);
    ep_free(&ea);
    drv_close(&d);
}

/* How often the logging portmap wrapper of a plugin dir ran @p command for @p e. */
static int portmap_runs(const char *log, const char *command, struct ep *e)
{
    return sh("n=$(cat '%s' 2>/dev/null | grep -c '^%s %s$'); exit $n", log, command, e->cid);
}

/*
 * Without the loopback plugin, lo is up all the same; portmap runs only for
 * endpoints with port mappings, and its DEL only for those too (or when the
 * request is unknown).
 */
static void test_network_cni_lo_and_portmap_only_when_needed(void **state)
{
    struct drv d;
    struct net n;
    struct netns a, b;
    struct ep ea, eb;
    berth_err_t err = { 0 };
    char dir[PATH_MAX], log[PATH_MAX + 16], req[256], buf[64];
    static const char *const keep[] = { "bridge", "host-local" };
    int host_port = free_port();
    uint64_t caps = 0;

    /* bridge and host-local as they are, portmap behind a wrapper that logs, no loopback. */
    FMT(dir, "%s/noloop-cni", base);
    FMT(log, "%s/portmap.log", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(sh("ln -s '%s/%s' '%s/%s'", cni_dir, keep[i], dir, keep[i]), 0);
    assert_int_equal(sh("printf '#!/bin/sh\\necho $CNI_COMMAND $CNI_CONTAINERID >> "
                        "%s\\nexec %s/portmap\\n' > '%s/portmap' && chmod 755 '%s/portmap'",
                        log, cni_dir, dir, dir),
                     0);
    d = drv_open(dir, 30);
    assert_int_equal(d.ops->probe(d.priv, 0, &caps, &err), 0);
    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    netns_add(&b);
    /* A fresh netns has lo down: attach is what brings it up. */
    assert_int_not_equal(sh("ip netns exec %s ip -o link show lo | grep -q ',UP'", a.name), 0);

    ep_init(&ea, &n, &a, NULL);
    if (ep_attach(&d, &ea, &err) < 0)
        fail_msg("attach without the loopback plugin: %s", err.msg);
    assert_int_equal(sh("ip netns exec %s ip -o link show lo | grep -q ',UP'", a.name), 0);
    assert_int_equal(
        sh("ip netns exec %s busybox ping -c 1 -W 2 127.0.0.1 >/dev/null 2>&1", a.name), 0);
    /* No ports: portmap never ran, and no DNAT chain names the container. */
    assert_int_equal(portmap_runs(log, "ADD", &ea), 0);
    assert_int_equal(sh("iptables-save -t nat | grep -q 'CNI-DN-.*%s'", ea.cid), 1);
    if (d.ops->endpoint_check(d.priv, &ea.spec, ea.result, 0, &err) != 0)
        fail_msg("check: %s", err.msg);
    assert_int_equal(portmap_runs(log, "CHECK", &ea), 0);
    /* No masquerade of its own either: the network's rule covers it. */
    assert_false(container_masq(&ea));
    assert_int_equal(masq_rules(&n), 1);
    /* Detach with the netns there: the interface goes. */
    ep_detach(&d, &ea);
    assert_int_equal(portmap_runs(log, "DEL", &ea), 0);
    assert_clean(&n, &ea);
    assert_int_equal(sh("ip netns exec %s ip link show eth0 >/dev/null 2>&1", a.name), 1);
    /* A request that is not known: everything's DEL runs, portmap's included. */
    ea.spec.request_json = NULL;
    ep_detach(&d, &ea);
    assert_int_equal(portmap_runs(log, "DEL", &ea), 1);
    assert_clean(&n, &ea);

    /* With a mapping, portmap runs for ADD, CHECK and DEL, and the port works. */
    FMT(req,
        "{\"port_mappings\":[{\"host_ip\":\"127.0.0.1\",\"host_port\":%d,"
        "\"container_port\":8080,\"protocol\":\"tcp\"}]}",
        host_port);
    ep_init(&eb, &n, &b, req);
    if (ep_attach(&d, &eb, &err) < 0)
        fail_msg("attach with a port: %s", err.msg);
    assert_int_equal(portmap_runs(log, "ADD", &eb), 1);
    assert_int_equal(sh("ip netns exec %s ip -o link show lo | grep -q ',UP'", b.name), 0);
    {
        pid_t srv = serve_in_netns(&b, 8080);
        int st;
        memset(buf, 0, sizeof(buf));
        if (connect_read("127.0.0.1", host_port, buf, sizeof(buf)) <= 0) {
            kill(srv, SIGKILL);
            waitpid(srv, NULL, 0);
            fail_msg("127.0.0.1:%d does not reach the netns", host_port);
        }
        assert_int_equal(waitpid(srv, &st, 0), srv);
    }
    if (d.ops->endpoint_check(d.priv, &eb.spec, eb.result, 0, &err) != 0)
        fail_msg("check: %s", err.msg);
    assert_int_equal(portmap_runs(log, "CHECK", &eb), 1);
    ep_detach(&d, &eb);
    assert_int_equal(portmap_runs(log, "DEL", &eb), 1);
    assert_clean(&n, &eb);
    assert_true(connect_read("127.0.0.1", host_port, buf, sizeof(buf)) < 0);

    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    assert_false(bridge_exists(&n));
    netns_del(&a);
    netns_del(&b);
    ep_free(&ea);
    ep_free(&eb);
    drv_close(&d);
}

static void test_network_cni_detach_after_netns_gone(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    struct netns a;
    struct ep ea;
    berth_err_t err = { 0 };
    char req[256];

    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    FMT(req,
        "{\"port_mappings\":[{\"host_ip\":\"\",\"host_port\":%d,"
        "\"container_port\":80,\"protocol\":\"tcp\"}]}",
        free_port());
    ep_init(&ea, &n, &a, req);
    assert_int_equal(ep_attach(&d, &ea, &err), 0);
    assert_true(lease_exists(&n, ea.ip));
    assert_true(iptables_mentions(ea.cid));
    /* The sandbox goes away first, as when a container dies and its netns is unmounted. */
    netns_del(&a);
    ep_detach(&d, &ea);
    assert_clean(&n, &ea);
    ep_detach(&d, &ea);
    ep_free(&ea);

    /* A pin file whose namespace mount is gone (a crash between umount and unlink). */
    netns_add(&a);
    ep_init(&ea, &n, &a, req);
    assert_int_equal(ep_attach(&d, &ea, &err), 0);
    assert_int_equal(sh("ip netns del %s && touch %s", a.name, a.path), 0);
    ep_detach(&d, &ea);
    assert_clean(&n, &ea);
    unlink(a.path);
    a.name[0] = '\0';

    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    assert_false(bridge_exists(&n));
    ep_free(&ea);

    /* The network deleted under a live endpoint: detach still cleans up, and leaves no dir. */
    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    ep_init(&ea, &n, &a, req);
    assert_int_equal(ep_attach(&d, &ea, &err), 0);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    ep_detach(&d, &ea);
    assert_false(iptables_mentions(ea.cid));
    assert_int_not_equal(sh("test -e '%s/ipam/%s'", state_dir, n.id), 0);
    netns_del(&a);
    ep_free(&ea);
    drv_close(&d);
}

static void test_network_cni_rollback_missing_plugin(void **state)
{
    struct drv d;
    struct net n;
    struct netns a;
    struct ep ea;
    berth_err_t err = { 0 };
    char dir[PATH_MAX], req[256];
    static const char *const keep[] = { "bridge", "host-local", "loopback", "portmap" };

    /* A plugin dir with everything but the firewall plugin the conflist asks for last. */
    FMT(dir, "%s/partial-cni", base);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sh("ln -s '%s/%s' '%s/%s'", cni_dir, keep[i], dir, keep[i]), 0);
    d = drv_open(dir, 30);
    net_init(&n, "\"options\":{\"firewall\":true}");
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    FMT(req,
        "{\"port_mappings\":[{\"host_ip\":\"127.0.0.1\",\"host_port\":%d,"
        "\"container_port\":80,\"protocol\":\"tcp\"}]}",
        free_port());
    ep_init(&ea, &n, &a, req);
    assert_int_equal(ep_attach(&d, &ea, &err), -ENOENT);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "firewall"));
    assert_null(strchr(err.msg, '\n'));
    /* bridge and portmap had run: all of it is undone. */
    assert_clean(&n, &ea);
    assert_false(bridge_exists(&n));
    assert_int_equal(sh("ip netns exec %s ip link show eth0 >/dev/null 2>&1", a.name), 1);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    netns_del(&a);
    ep_free(&ea);
    drv_close(&d);
}

static void test_network_cni_rollback_bad_ip(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    struct netns a;
    struct ep ea, ok;
    berth_err_t err = { 0 };

    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    /* An address outside the subnet: host-local refuses it inside the bridge plugin. */
    ep_init(&ea, &n, &a, "{\"ip\":\"192.0.2.77\"}");
    assert_int_equal(ep_attach(&d, &ea, &err), -EIO);
    assert_non_null(strstr(err.msg, "bridge"));
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "192.0.2.77"));
    assert_clean(&n, &ea);
    /* It was the network's first endpoint: the bridge it created is gone again. */
    assert_false(bridge_exists(&n));
    assert_int_equal(sh("ip netns exec %s ip link show eth0 >/dev/null 2>&1", a.name), 1);
    /* The namespace is usable again afterwards. */
    ep_init(&ok, &n, &a, NULL);
    if (ep_attach(&d, &ok, &err) < 0)
        fail_msg("attach after a rollback: %s", err.msg);
    ep_detach(&d, &ok);
    assert_clean(&n, &ok);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    netns_del(&a);
    ep_free(&ok);
    drv_close(&d);
}

static void test_network_cni_plugin_timeout(void **state)
{
    struct drv d;
    struct net n;
    struct netns a;
    struct ep ea;
    berth_err_t err = { 0 };
    char dir[PATH_MAX];
    time_t t0;

    /* A "bridge" that hangs: the driver kills it at the timeout and says so. */
    FMT(dir, "%s/slow-cni", base);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(sh("ln -s '%s/loopback' '%s/loopback' && printf '#!/bin/sh\\nsleep 60\\n' "
                        "> '%s/bridge' && chmod 755 '%s/bridge'",
                        cni_dir, dir, dir, dir),
                     0);
    d = drv_open(dir, 1);
    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    netns_add(&a);
    ep_init(&ea, &n, &a, NULL);
    t0 = time(NULL);
    assert_int_equal(ep_attach(&d, &ea, &err), -ETIMEDOUT);
    assert_true(time(NULL) - t0 < 10);
    assert_non_null(strstr(err.msg, "bridge"));
    assert_non_null(strstr(err.msg, "timed out"));
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    netns_del(&a);
    drv_close(&d);
}

static void test_network_cni_config_errors(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    berth_err_t err = { 0 };
    uint64_t caps = 0;
    static const char *const bad[] = {
        "\"subnet\":\"10.1.2.0\"",           "\"subnet\":\"10.1.2.0/33\"",
        "\"gateway\":\"10.9.9.1\"",          "\"options\":{\"bridge\":\"a-name-far-too-long\"}",
        "\"options\":{\"bridge\":\"../x\"}",
    };

    if (geteuid() == 0 && access(probe_file, X_OK) == 0) {
        assert_int_equal(d.ops->probe(d.priv, 0, &caps, &err), 0);
        assert_int_equal(caps, BERTH_NETWORK_CAP_NETNS | BERTH_NETWORK_CAP_PORTS);
    } else {
        assert_int_equal(d.ops->probe(d.priv, 0, &caps, &err), BERTH_DECLINED);
        assert_true(err.msg[0] != '\0');
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        berth_blob_t *st = NULL;
        net_init(&n, NULL);
        /* The later "subnet" key overrides the valid one net_init wrote. */
        FMT(n.config, "{\"subnet\":\"%s0/24\",%s}", n.subnet_prefix, bad[i]);
        memset(&err, 0, sizeof(err));
        assert_int_equal(d.ops->network_create(d.priv, &n.spec, 0, &st, &err), -EINVAL);
        assert_null(st);
        assert_true(err.msg[0] != '\0');
    }
    drv_close(&d);

    /* Without the plugins, probe declines and says what is missing. */
    d = drv_open("/nonexistent-cni-dir", 30);
    memset(&err, 0, sizeof(err));
    assert_int_equal(d.ops->probe(d.priv, 0, &caps, &err), BERTH_DECLINED);
    assert_non_null(strstr(err.msg, "bridge"));
    drv_close(&d);
}

static json_t *load_conflist_file(struct net *n)
{
    char path[PATH_MAX + 80];
    json_t *list;
    FMT(path, "%s/%s.conflist", state_dir, n->id);
    list = json_load_file(path, 0, NULL);
    assert_non_null(list);
    assert_string_equal(json_string_value(json_object_get(list, "cniVersion")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(list, "name")), n->name);
    return list;
}

static const char *plugin_type(json_t *list, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(list, "plugins"), i), "type"));
}

/* What network_create writes, checked without running anything (no root needed). */
static void test_network_cni_conflist_shape(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    berth_err_t err = { 0 };
    json_t *list, *br, *ipam, *range;
    char want[PATH_MAX + 200], path[PATH_MAX + 80];

    /*
     * Default: bridge (gateway, hairpin; no masquerade of the plugin's own,
     * the driver makes one rule per network) with host-local in the state
     * dir, portmap.
     */
    net_init(&n, NULL);
    FMT(n.config, "{\"subnet\":\"%s77/24\"}", n.subnet_prefix);
    assert_int_equal(net_create(&d, &n, &err), 0);
    list = load_conflist_file(&n);
    assert_int_equal(json_array_size(json_object_get(list, "plugins")), 2);
    br = json_array_get(json_object_get(list, "plugins"), 0);
    assert_string_equal(plugin_type(list, 0), "bridge");
    assert_string_equal(json_string_value(json_object_get(br, "bridge")), n.bridge);
    assert_true(json_is_true(json_object_get(br, "isGateway")));
    assert_true(json_is_false(json_object_get(br, "ipMasq")));
    assert_true(json_is_true(json_object_get(br, "hairpinMode")));
    ipam = json_object_get(br, "ipam");
    assert_string_equal(json_string_value(json_object_get(ipam, "type")), "host-local");
    FMT(want, "%s/ipam/%s", state_dir, n.id);
    assert_string_equal(json_string_value(json_object_get(ipam, "dataDir")), want);
    range = json_array_get(json_array_get(json_object_get(ipam, "ranges"), 0), 0);
    /* Host bits of the subnet are cleared; the gateway defaults to the first host. */
    FMT(want, "%s0/24", n.subnet_prefix);
    assert_string_equal(json_string_value(json_object_get(range, "subnet")), want);
    FMT(want, "%s1", n.subnet_prefix);
    assert_string_equal(json_string_value(json_object_get(range, "gateway")), want);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(ipam, "routes"), 0), "dst")),
                        "0.0.0.0/0");
    assert_string_equal(plugin_type(list, 1), "portmap");
    assert_true(json_is_true(json_object_get(
        json_object_get(json_array_get(json_object_get(list, "plugins"), 1), "capabilities"),
        "portMappings")));
    json_decref(list);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    FMT(path, "%s/%s.conflist", state_dir, n.id);
    assert_int_not_equal(access(path, F_OK), 0);

    /* Internal: no gateway on the bridge, no masquerade, no route out, no portmap. */
    net_init(&n, "\"internal\":true,\"gateway\":\"10.213.0.0\"");
    FMT(n.config, "{\"subnet\":\"%s0/24\",\"internal\":true,\"gateway\":\"%s9\"}", n.subnet_prefix,
        n.subnet_prefix);
    assert_int_equal(net_create(&d, &n, &err), 0);
    list = load_conflist_file(&n);
    assert_int_equal(json_array_size(json_object_get(list, "plugins")), 1);
    br = json_array_get(json_object_get(list, "plugins"), 0);
    assert_true(json_is_false(json_object_get(br, "isGateway")));
    assert_true(json_is_false(json_object_get(br, "ipMasq")));
    assert_null(json_object_get(json_object_get(br, "ipam"), "routes"));
    range = json_array_get(
        json_array_get(json_object_get(json_object_get(br, "ipam"), "ranges"), 0), 0);
    FMT(want, "%s9", n.subnet_prefix);
    assert_string_equal(json_string_value(json_object_get(range, "gateway")), want);
    json_decref(list);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);

    /* Options: bridge name, mtu, firewall last. */
    net_init(&n, "\"options\":{\"bridge\":\"bct-br0\",\"mtu\":\"1450\",\"firewall\":true}");
    FMT(n.bridge, "bct-br0");
    assert_int_equal(net_create(&d, &n, &err), 0);
    list = load_conflist_file(&n);
    br = json_array_get(json_object_get(list, "plugins"), 0);
    assert_string_equal(json_string_value(json_object_get(br, "bridge")), "bct-br0");
    assert_int_equal(json_integer_value(json_object_get(br, "mtu")), 1450);
    assert_int_equal(json_array_size(json_object_get(list, "plugins")), 3);
    assert_string_equal(plugin_type(list, 2), "firewall");
    json_decref(list);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);

    /* The same options under Docker's names (docker network create -o ...). */
    net_init(&n, "\"options\":{\"com.docker.network.bridge.name\":\"bct-br1\","
                 "\"com.docker.network.driver.mtu\":\"1400\"}");
    FMT(n.bridge, "bct-br1");
    assert_int_equal(net_create(&d, &n, &err), 0);
    list = load_conflist_file(&n);
    br = json_array_get(json_object_get(list, "plugins"), 0);
    assert_string_equal(json_string_value(json_object_get(br, "bridge")), "bct-br1");
    assert_int_equal(json_integer_value(json_object_get(br, "mtu")), 1400);
    json_decref(list);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    drv_close(&d);
}

/* Several processes attach to one network at once, as several shims do. */
static void test_network_cni_concurrent_attach(void **state)
{
    enum { N = 4 };
    struct drv d = drv_open(cni_dir, 60);
    struct net n;
    struct netns ns[N];
    struct ep ep[N];
    int fds[N];
    pid_t pids[N];
    berth_err_t err = { 0 };

    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    for (int i = 0; i < N; i++) {
        int p[2];
        netns_add(&ns[i]);
        ep_init(&ep[i], &n, &ns[i], NULL);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            berth_blob_t *res = NULL;
            berth_err_t e = { 0 };
            if (d.ops->endpoint_attach(d.priv, &ep[i].spec, 0, &res, &e) < 0) {
                dprintf(p[1], "ERR %s", e.msg);
                _exit(1);
            }
            if (write(p[1], res->data, res->len) != (ssize_t)res->len)
                _exit(2);
            _exit(0);
        }
        close(p[1]);
        fds[i] = p[0];
    }
    for (int i = 0; i < N; i++) {
        char buf[8192];
        size_t len = 0;
        ssize_t k;
        int st;
        while ((k = read(fds[i], buf + len, sizeof(buf) - 1 - len)) > 0)
            len += (size_t)k;
        buf[len] = '\0';
        close(fds[i]);
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        if (st != 0)
            fail_msg("attach %d: %s", i, buf);
        json_t *o = json_loads(buf, 0, NULL);
        const char *a = json_string_value(
            json_object_get(json_array_get(json_object_get(o, "ips"), 0), "address"));
        assert_non_null(a);
        FMT(ep[i].ip, "%.*s", (int)strcspn(a, "/"), a);
        ep[i].result = strdup(buf);
        json_decref(o);
    }
    /* host-local's lock kept the addresses apart. */
    for (int i = 0; i < N; i++) {
        assert_true(lease_exists(&n, ep[i].ip));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ep[i].ip, ep[j].ip);
    }
    assert_int_equal(ports_on_bridge(&n), N);
    assert_true(ping(&ns[0], ep[N - 1].ip));
    for (int i = 0; i < N; i++) {
        ep_detach(&d, &ep[i]);
        assert_false(iptables_mentions(ep[i].cid));
        assert_false(lease_exists(&n, ep[i].ip));
        netns_del(&ns[i]);
        ep_free(&ep[i]);
    }
    assert_int_equal(lease_count(&n), 0);
    assert_int_equal(ports_on_bridge(&n), 0);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    assert_false(bridge_exists(&n));
    drv_close(&d);
}

/* Whether @p path holds this boot's id, as the driver's stamps do. */
static int holds_boot_id(const char *path)
{
    return sh("cmp -s '%s' /proc/sys/kernel/random/boot_id || "
              "[ \"$(cat '%s')\" = \"$(cat /proc/sys/kernel/random/boot_id)\" ]",
              path, path) == 0;
}

/*
 * One masquerade rule per network, made by the driver: it comes with
 * network_create, survives its endpoints, goes with network_delete, is made
 * again by attach when the stamp says it was not made since this boot and
 * by CHECK whenever it is missing, and it does masquerade.
 */
static void test_network_cni_masq_per_network(void **state)
{
    struct drv d = drv_open(cni_dir, 30), d2;
    struct net n;
    struct netns a, b, out;
    struct ep ea, eb, ec;
    berth_err_t err = { 0 };
    char stamp[PATH_MAX + 80], veth[16], peer[16], host_ip[32], out_ip[32];
    unsigned third;

    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    assert_int_equal(masq_rules(&n), 1);
    assert_true(masq_rule_exact(&n));
    masq_stamp_path(&n, stamp, sizeof(stamp));
    assert_true(holds_boot_id(stamp));
    /* network_create again (the core retrying): still one rule. */
    assert_int_equal(net_create(&d, &n, &err), 0);
    assert_int_equal(masq_rules(&n), 1);

    netns_add(&a);
    netns_add(&b);
    ep_init(&ea, &n, &a, NULL);
    if (ep_attach(&d, &ea, &err) < 0)
        fail_msg("attach: %s", err.msg);
    assert_int_equal(masq_rules(&n), 1);
    assert_false(container_masq(&ea));

    /*
     * It masquerades: a namespace outside, behind a veth from the host,
     * with no route back to the subnet, answers the container only when
     * the container's address was replaced by the host's.
     */
    netns_add(&out);
    third = ((unsigned)pid_tag * 11 + counter * 3) % 60 * 4;
    FMT(veth, "bco%d", pid_tag % 1000000);
    FMT(peer, "bcp%d", pid_tag % 1000000);
    FMT(host_ip, "10.214.%u.%u", ((unsigned)pid_tag % 250) + 1, third + 1);
    FMT(out_ip, "10.214.%u.%u", ((unsigned)pid_tag % 250) + 1, third + 2);
    assert_int_equal(sh("ip link add %s type veth peer name %s && ip link set %s netns %s && "
                        "ip addr add %s/30 dev %s && ip link set %s up && "
                        "ip -n %s addr add %s/30 dev %s && ip -n %s link set %s up",
                        veth, peer, peer, out.name, host_ip, veth, veth, out.name, out_ip, peer,
                        out.name, peer),
                     0);
    if (sh("iptables -w -S FORWARD | grep -q '^-P FORWARD DROP'") == 0) {
        print_message("the host drops forwarded packets: masquerade not checked with traffic\n");
    } else {
        assert_true(ping(&a, out_ip));
        /* The control: without the rule the reply has no way back. */
        masq_rule_drop(&n);
        sh("conntrack -D -s %s >/dev/null 2>&1", ea.ip);
        assert_false(ping(&a, out_ip));
        assert_int_equal(d.ops->endpoint_check(d.priv, &ea.spec, ea.result, 0, &err), 0);
        assert_true(ping(&a, out_ip));
    }
    sh("ip link del %s 2>/dev/null", veth);
    netns_del(&out);

    /*
     * Deleted behind the driver's back while the stamp says it exists:
     * attach does not look (that is what keeps iptables off every start),
     * CHECK does and makes it again.
     */
    masq_rule_drop(&n);
    ep_init(&eb, &n, &b, NULL);
    if (ep_attach(&d, &eb, &err) < 0)
        fail_msg("attach: %s", err.msg);
    assert_int_equal(masq_rules(&n), 0);
    if (d.ops->endpoint_check(d.priv, &eb.spec, eb.result, 0, &err) != 0)
        fail_msg("check: %s", err.msg);
    assert_int_equal(masq_rules(&n), 1);
    assert_true(masq_rule_exact(&n));
    /* CHECK of a rule that is there adds no second one. */
    assert_int_equal(d.ops->endpoint_check(d.priv, &eb.spec, eb.result, 0, &err), 0);
    assert_int_equal(masq_rules(&n), 1);
    ep_detach(&d, &eb);
    ep_free(&eb);

    /* After a reboot: no stamp (the runstate dir is a tmpfs), no rule. Attach makes both. */
    masq_rule_drop(&n);
    assert_int_equal(unlink(stamp), 0);
    ep_init(&eb, &n, &b, NULL);
    if (ep_attach(&d, &eb, &err) < 0)
        fail_msg("attach: %s", err.msg);
    assert_int_equal(masq_rules(&n), 1);
    assert_true(masq_rule_exact(&n));
    assert_true(holds_boot_id(stamp));
    ep_detach(&d, &eb);
    ep_free(&eb);

    /* A stamp from another boot counts as none. */
    masq_rule_drop(&n);
    assert_int_equal(sh("echo 00000000-0000-0000-0000-000000000000 > '%s'", stamp), 0);
    ep_init(&eb, &n, &b, NULL);
    if (ep_attach(&d, &eb, &err) < 0)
        fail_msg("attach: %s", err.msg);
    assert_int_equal(masq_rules(&n), 1);
    assert_true(holds_boot_id(stamp));
    ep_detach(&d, &eb);
    ep_free(&eb);

    /* Without a runstate dir there is no stamp: every attach makes sure, and adds no second rule. */
    no_runstate = 1;
    d2 = drv_open(cni_dir, 30);
    no_runstate = 0;
    masq_rule_drop(&n);
    ep_init(&eb, &n, &b, NULL);
    if (ep_attach(&d2, &eb, &err) < 0)
        fail_msg("attach without a runstate dir: %s", err.msg);
    assert_int_equal(masq_rules(&n), 1);
    ep_init(&ec, &n, &b, NULL);
    ec.spec.ifname = "eth1";
    if (ep_attach(&d2, &ec, &err) < 0)
        fail_msg("attach without a runstate dir: %s", err.msg);
    assert_int_equal(masq_rules(&n), 1);
    ep_detach(&d2, &ec);
    ep_detach(&d2, &eb);
    drv_close(&d2);

    ep_detach(&d, &ea);
    assert_clean(&n, &ea);
    assert_clean(&n, &eb);
    assert_clean(&n, &ec);
    assert_int_equal(masq_rules(&n), 1);
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    assert_int_equal(masq_rules(&n), 0);
    assert_int_not_equal(access(stamp, F_OK), 0);
    assert_false(bridge_exists(&n));
    /* Absent rule and stamp are no error. */
    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    netns_del(&a);
    netns_del(&b);
    ep_free(&ea);
    ep_free(&eb);
    ep_free(&ec);
    drv_close(&d);
}

/*
 * A network made by berth before the per-network rule: its conflist has
 * ipMasq true and it has no rule of its own. Its endpoints keep the bridge
 * plugin's chain per container, and lose it on detach, with the netns there
 * or gone, and with or without iptables-restore.
 */
static void test_network_cni_masq_old_conflist(void **state)
{
    struct drv d = drv_open(cni_dir, 30);
    struct net n;
    struct netns a;
    struct ep ea, e2;
    berth_err_t err = { 0 };
    char conflist[PATH_MAX + 80], stamp[PATH_MAX + 80], chain[64];
    json_t *list;
    FILE *p;

    net_init(&n, NULL);
    assert_int_equal(net_create(&d, &n, &err), 0);
    /* What the previous berth left: ipMasq true, and neither rule nor stamp. */
    masq_rule_drop(&n);
    masq_stamp_path(&n, stamp, sizeof(stamp));
    assert_int_equal(unlink(stamp), 0);
    FMT(conflist, "%s/%s.conflist", state_dir, n.id);
    list = json_load_file(conflist, 0, NULL);
    assert_non_null(list);
    assert_int_equal(json_object_set_new(json_array_get(json_object_get(list, "plugins"), 0),
                                         "ipMasq", json_true()),
                     0);
    assert_int_equal(json_dump_file(list, conflist, JSON_INDENT(2) | JSON_PRESERVE_ORDER), 0);
    json_decref(list);

    netns_add(&a);
    ep_init(&ea, &n, &a, NULL);
    if (ep_attach(&d, &ea, &err) < 0)
        fail_msg("attach on an old network: %s", err.msg);
    /* The bridge plugin's own rule and chain, and no rule of the driver's. */
    assert_true(container_masq(&ea));
    assert_int_equal(masq_rules(&n), 0);
    if (d.ops->endpoint_check(d.priv, &ea.spec, ea.result, 0, &err) != 0)
        fail_msg("check: %s", err.msg);
    assert_int_equal(masq_rules(&n), 0);
    {
        char cmd[256];
        FMT(cmd,
            "iptables -w -t nat -S POSTROUTING | grep -F '%s' | "
            "sed -n 's/.* -j \\(CNI-[^ ]*\\).*/\\1/p' | head -n1",
            ea.cid);
        p = popen(cmd, "r");
        assert_non_null(p);
        if (!fgets(chain, sizeof(chain), p))
            chain[0] = '\0';
        pclose(p);
        chain[strcspn(chain, "\n")] = '\0';
        assert_true(strncmp(chain, "CNI-", 4) == 0);
        assert_int_equal(sh("iptables -w -t nat -S %s >/dev/null 2>&1", chain), 0);
    }
    /* Detach with the netns there: the interface, the rule and the chain go. */
    ep_detach(&d, &ea);
    assert_clean(&n, &ea);
    assert_int_not_equal(sh("iptables -w -t nat -S %s >/dev/null 2>&1", chain), 0);
    assert_int_equal(sh("ip netns exec %s ip link show eth0 >/dev/null 2>&1", a.name), 1);
    ep_free(&ea);

    /*
     * Without iptables-restore on PATH, detach falls back to one iptables
     * run per rule and chain (PATH holds only iptables for the detach).
     */
    {
        char tools[PATH_MAX + 16], *old_path = strdup(getenv("PATH") ? getenv("PATH") : "");
        assert_non_null(old_path);
        FMT(tools, "%s/iptables-only", base);
        assert_int_equal(
            sh("mkdir '%s' && ln -s \"$(command -v iptables)\" '%s/iptables'", tools, tools), 0);
        ep_init(&e2, &n, &a, NULL);
        if (ep_attach(&d, &e2, &err) < 0)
            fail_msg("attach: %s", err.msg);
        assert_true(container_masq(&e2));
        setenv("PATH", tools, 1);
        ep_detach(&d, &e2);
        setenv("PATH", old_path, 1);
        free(old_path);
        assert_clean(&n, &e2);
        ep_free(&e2);
    }

    /* The netns gone before the detach: the chain is found by its comment. */
    ep_init(&ea, &n, &a, NULL);
    if (ep_attach(&d, &ea, &err) < 0)
        fail_msg("attach: %s", err.msg);
    assert_true(container_masq(&ea));
    netns_del(&a);
    ep_detach(&d, &ea);
    assert_clean(&n, &ea);
    assert_int_equal(masq_rules(&n), 0);

    assert_int_equal(d.ops->network_delete(d.priv, &n.spec, 0, &err), 0);
    assert_false(bridge_exists(&n));
    assert_int_equal(masq_rules(&n), 0);
    ep_free(&ea);
    drv_close(&d);
}

static int have(const char *prog)
{
    return sh("command -v %s >/dev/null 2>&1", prog) == 0;
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_network_cni_conflist_shape),
        cmocka_unit_test(test_network_cni_config_errors),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_cni_bridge_two_netns),
        cmocka_unit_test(test_network_cni_internal),
        cmocka_unit_test(test_network_cni_port_mapping),
        cmocka_unit_test(test_network_cni_detach_after_netns_gone),
        cmocka_unit_test(test_network_cni_lo_and_portmap_only_when_needed),
        cmocka_unit_test(test_network_cni_rollback_missing_plugin),
        cmocka_unit_test(test_network_cni_rollback_bad_ip),
        cmocka_unit_test(test_network_cni_plugin_timeout),
        cmocka_unit_test(test_network_cni_concurrent_attach),
        cmocka_unit_test(test_network_cni_masq_per_network),
        cmocka_unit_test(test_network_cni_masq_old_conflist),
    };
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    const char *missing = NULL;
    int failed;

    cni_dir = getenv("BERTH_CNI_PATH") ? getenv("BERTH_CNI_PATH") : "/usr/lib/cni";
    snprintf(probe_file, sizeof(probe_file), "%s/bridge", cni_dir);
    pid_tag = (int)getpid();
    if (snprintf(base, sizeof(base), "%s/berth-cni-test-XXXXXX", tmp) >= (int)sizeof(base) ||
        !mkdtemp(base))
        return 1;
    if (snprintf(state_dir, sizeof(state_dir), "%s/state", base) >= (int)sizeof(state_dir) ||
        snprintf(runstate_dir, sizeof(runstate_dir), "%s/run", base) >= (int)sizeof(runstate_dir) ||
        mkdir(state_dir, 0700) < 0 || mkdir(runstate_dir, 0700) < 0)
        return 1;

    /*
     * Conflists and settings need neither root nor the plugins. Without
     * root, network_create's masquerade rule cannot be made: an iptables
     * that accepts everything stands in for it there (the rule itself is
     * the root group's business).
     */
    if (geteuid() != 0) {
        char fake[PATH_MAX + 32], *path, *old = strdup(getenv("PATH") ? getenv("PATH") : "");
        if (!old || snprintf(fake, sizeof(fake), "%s/no-root-tools", base) >= (int)sizeof(fake) ||
            sh("mkdir '%s' && printf '#!/bin/sh\\nexit 0\\n' > '%s/iptables' && "
               "chmod 755 '%s/iptables'",
               fake, fake, fake) != 0 ||
            asprintf(&path, "%s:%s", fake, old) < 0)
            return 1;
        setenv("PATH", path, 1);
        free(path);
        failed = cmocka_run_group_tests_name("network-cni-config", plain, NULL, NULL);
        setenv("PATH", old, 1);
        free(old);
    } else {
        failed = cmocka_run_group_tests_name("network-cni-config", plain, NULL, NULL);
    }

    if (geteuid() != 0)
        missing = "root (bridges, netns, iptables)";
    else if (access(probe_file, X_OK) != 0)
        missing = "the CNI plugins (containernetworking-plugins)";
    else if (!have("ip") || !have("iptables-save") || !have("busybox"))
        missing = "ip (iproute2), iptables-save and busybox";
    if (missing) {
        sh("rm -rf '%s'", base);
        if (failed)
            return 1;
        fprintf(stderr, "skip: the network tests need %s\n", missing);
        return 77;
    }
    failed += cmocka_run_group_tests_name("network-cni", tests, NULL, NULL);
    /* Whatever a failed test left: its namespaces and bridges, by this run's names. */
    sh("for n in $(ip netns list | awk '{print $1}' | grep '^bct-%d-'); do ip netns del $n; done",
       pid_tag);
    sh("for b in $(ip -o link show type bridge | awk -F': ' '{print $2}' | grep '^br-e%07x'); "
       "do ip link del $b; done",
       pid_tag & 0xfffffff);
    /*
     * And iptables rules of its containers (ids start with c + the pid), with
     * the per-container chains they jump to; -S output is quoted for the shell.
     */
    sh("iptables -w -t nat -S | grep -F 'id: \\\"c%07x' | while read -r r; do "
       "t=$(echo \"$r\" | sed -n 's/.* -j \\(CNI-[^ ]*\\).*/\\1/p'); "
       "eval iptables -w -t nat $(echo \"$r\" | sed 's/^-A/-D/') 2>/dev/null; "
       "if [ -n \"$t\" ]; then iptables -w -t nat -F $t; iptables -w -t nat -X $t; fi; "
       "done 2>/dev/null",
       pid_tag & 0xfffffff);
    /* And the masquerade rules of its networks (ids start with e + the pid). */
    sh("iptables -w -t nat -S POSTROUTING | grep -F '\"berth:e%07x' | sed 's/^-A/-D/' | "
       "while read -r r; do eval iptables -w -t nat $r; done 2>/dev/null",
       pid_tag & 0xfffffff);
    sh("rm -rf '%s'", base);
    return failed ? 1 : 0;
}
