/* SPDX-License-Identifier: Apache-2.0 */
/* Networks for hyperv sandboxes: the namespace, the tap, the tc redirects (hyperv-net.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "hyperv-net.h"
#include "hyperv-vm.h"

extern char **environ;

/* ---- the namespace ---- */

struct netns_job {
    const char *path;
    int error; /* errno of the step that failed, 0 when none did */
    const char *step;
};

/*
 * On a thread of its own: a network namespace belongs to a thread, so
 * unsharing it on one that then ends leaves the process's own alone (the
 * process driver makes its sandboxes' namespaces the same way).
 */
static void *netns_thread(void *arg)
{
    struct netns_job *j = arg;

    if (unshare(CLONE_NEWNET) < 0) {
        j->step = "unshare";
        j->error = errno;
    } else if (mount("/proc/thread-self/ns/net", j->path, NULL, MS_BIND, NULL) < 0) {
        j->step = "bind mount";
        j->error = errno;
    }
    return NULL;
}

int hv_net_netns_create(const char *path, berth_err_t *err)
{
    struct netns_job job = { .path = path };
    pthread_t t;
    int fd, r;

    if ((fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0)
        return berth_err_set(err, -errno, "hyperv: create %s: %s", path, strerror(errno));
    close(fd);
    if ((r = pthread_create(&t, NULL, netns_thread, &job)) != 0) {
        unlink(path);
        return berth_err_set(err, -r, "hyperv: network namespace: thread: %s", strerror(r));
    }
    pthread_join(t, NULL);
    if (job.error) {
        unlink(path);
        return berth_err_set(err, -job.error, "hyperv: network namespace: %s: %s", job.step,
                             strerror(job.error));
    }
    return 0;
}

int hv_net_netns_remove(const char *path, berth_err_t *err)
{
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return berth_err_set(err, -errno, "hyperv: unmount %s: %s", path, strerror(errno));
    if (unlink(path) < 0 && errno != ENOENT)
        return berth_err_set(err, -errno, "hyperv: remove %s: %s", path, strerror(errno));
    return 0;
}

const char *hv_net_find_tc(const char *configured)
{
    static char found[PATH_MAX];

    if (configured && *configured)
        return access(configured, X_OK) == 0 ? configured : NULL;
    /* berth-shim may run with a $PATH without the sbin dirs, where Debian puts tc. */
    return hv_find_program("tc", "/usr/sbin:/sbin:/usr/bin:/bin", found, sizeof(found)) ? found
                                                                                        : NULL;
}

/* ---- the tap and the redirects ---- */

void hv_net_init(hv_net_t *net)
{
    memset(net, 0, sizeof(*net));
    net->tap_fd = -1;
}

void hv_net_clear(hv_net_t *net)
{
    if (net->tap_fd >= 0)
        close(net->tap_fd);
    json_decref(net->config);
    hv_net_init(net);
}

struct attach_job {
    const char *netns, *ifname, *tc;
    hv_net_t *out;
    int r;
    char why[BERTH_ERR_MSG_MAX];
};

static int job_fail(struct attach_job *j, int e, const char *fmt, const char *a, const char *b)
{
    char what[BERTH_ERR_MSG_MAX / 2];
    snprintf(what, sizeof(what), fmt, a, b);
    snprintf(j->why, sizeof(j->why), "hyperv: network: %s: %s", what, strerror(e));
    j->r = -e;
    return -e;
}

/*
 * Run tc with @args (NULL-terminated, without argv[0]) in this thread's
 * namespace: a spawned child takes the namespaces of the thread that
 * spawns it. Its output becomes the error message.
 */
#define TC_ARGS_MAX 24
static int run_tc(struct attach_job *j, const char *const *args)
{
    const char *argv[TC_ARGS_MAX + 2] = { j->tc };
    char out[256] = "", cmd[160] = "";
    posix_spawn_file_actions_t fa;
    int pfd[2], st = 0, r;
    size_t n, got = 0;
    ssize_t k;
    pid_t pid;

    for (n = 0; args[n] && n < TC_ARGS_MAX; n++) {
        argv[n + 1] = args[n];
        if (n < 5)
            snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", args[n]);
    }
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return job_fail(j, errno, "pipe%s%s", "", "");
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    r = posix_spawn(&pid, j->tc, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (r != 0) {
        close(pfd[0]);
        return job_fail(j, r, "run %s%s", j->tc, "");
    }
    while ((k = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0 || (k < 0 && errno == EINTR))
        got += k > 0 ? (size_t)k : 0;
    out[got] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        out[strcspn(out, "\n")] = '\0';
        snprintf(j->why, sizeof(j->why), "hyperv: network: tc%s ... failed: %s", cmd,
                 out[0] ? out : "(no message)");
        j->r = -EIO;
        return -EIO;
    }
    return 0;
}

/*
 * Every frame arriving on @from leaves through @to, unchanged (Kata's
 * "tcfilter" model). u32 matching everything rather than matchall:
 * cls_matchall is not in every kernel.
 */
static int redirect(struct attach_job *j, const char *from, const char *to)
{
    const char *qdisc[] = { "qdisc", "add", "dev", from, "ingress", NULL };
    const char *filter[] = { "filter", "add",    "dev",      from,  "parent", "ffff:", "protocol",
                             "all",    "u32",    "match",    "u32", "0",      "0",     "action",
                             "mirred", "egress", "redirect", "dev", to,       NULL };
    int r = run_tc(j, qdisc);
    return r < 0 ? r : run_tc(j, filter);
}

static unsigned prefix_len(struct in_addr mask)
{
    return (unsigned)__builtin_popcount(ntohl(mask.s_addr));
}

/* @ifname's IPv4 addresses as "A/P" (labelled aliases "eth0:1" included). */
static int read_addresses(struct attach_job *j, json_t *addrs)
{
    struct ifaddrs *ifa, *i;
    size_t n = strlen(j->ifname);

    /* getifaddrs() asks over a netlink socket, made in this thread's namespace. */
    if (getifaddrs(&ifa) < 0)
        return job_fail(j, errno, "getifaddrs%s%s", "", "");
    for (i = ifa; i; i = i->ifa_next) {
        char a[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN + 4];
        struct sockaddr_in *sa = (struct sockaddr_in *)i->ifa_addr;
        if (!sa || sa->sin_family != AF_INET || !i->ifa_netmask ||
            strncmp(i->ifa_name, j->ifname, n) != 0 ||
            (i->ifa_name[n] != '\0' && i->ifa_name[n] != ':'))
            continue;
        inet_ntop(AF_INET, &sa->sin_addr, a, sizeof(a));
        snprintf(cidr, sizeof(cidr), "%s/%u", a,
                 prefix_len(((struct sockaddr_in *)i->ifa_netmask)->sin_addr));
        json_array_append_new(addrs, json_string(cidr));
    }
    freeifaddrs(ifa);
    return 0;
}

/*
 * @ifname's IPv4 routes through a gateway, from this thread's /proc view
 * (the connected ones come with the addresses in the guest).
 */
static int read_routes(struct attach_job *j, json_t *routes)
{
    FILE *f = fopen("/proc/thread-self/net/route", "re");
    char line[256], dev[IFNAMSIZ + 1];
    unsigned dst, gw, flags, mask;

    if (!f)
        return job_fail(j, errno, "/proc/thread-self/net/route%s%s", "", "");
    /* Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses: network-order hex. */
    while (fgets(line, sizeof(line), f)) {
        char d[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN + 4];
        struct in_addr da, ga, ma;
        if (sscanf(line, "%16s %x %x %x %*d %*d %*d %x", dev, &dst, &gw, &flags, &mask) != 5 ||
            strcmp(dev, j->ifname) != 0 || !(flags & RTF_UP) || !(flags & RTF_GATEWAY))
            continue;
        da.s_addr = dst;
        ga.s_addr = gw;
        ma.s_addr = mask;
        inet_ntop(AF_INET, &da, d, sizeof(d));
        inet_ntop(AF_INET, &ga, g, sizeof(g));
        snprintf(cidr, sizeof(cidr), "%s/%u", d, prefix_len(ma));
        json_array_append_new(routes, json_pack("{s:s, s:s}", "dst", cidr, "gateway", g));
    }
    fclose(f);
    return 0;
}

/* In the namespace: read @ifname, make the tap, redirect both ways. */
static void *attach_thread(void *arg)
{
    struct attach_job *j = arg;
    struct ifreq ifr = { 0 };
    json_t *addrs = NULL, *routes = NULL;
    unsigned char *hw;
    int nsfd, s = -1, tap = -1, mtu;

    if ((nsfd = open(j->netns, O_RDONLY | O_CLOEXEC)) < 0) {
        job_fail(j, errno, "open %s%s", j->netns, "");
        return NULL;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
        job_fail(j, errno, "setns %s%s", j->netns, "");
        close(nsfd);
        return NULL;
    }
    close(nsfd);
    if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
        job_fail(j, errno, "socket%s%s", "", "");
        return NULL;
    }
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", j->ifname);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
        /* No interface: the sandbox was attached to nothing; the VM gets no NIC. */
        if (errno != ENODEV)
            job_fail(j, errno, "%s%s", j->ifname, "");
        goto out;
    }
    hw = (unsigned char *)ifr.ifr_hwaddr.sa_data;
    snprintf(j->out->mac, sizeof(j->out->mac), "%02x:%02x:%02x:%02x:%02x:%02x", hw[0], hw[1], hw[2],
             hw[3], hw[4], hw[5]);
    if (ioctl(s, SIOCGIFMTU, &ifr) < 0) {
        job_fail(j, errno, "%s: MTU%s", j->ifname, "");
        goto out;
    }
    mtu = ifr.ifr_mtu;
    addrs = json_array();
    routes = json_array();
    if (!addrs || !routes) {
        job_fail(j, ENOMEM, "config%s%s", "", "");
        goto out;
    }
    if (read_addresses(j, addrs) < 0 || read_routes(j, routes) < 0)
        goto out;

    /* The tap: made by TUNSETIFF in the namespace /dev/net/tun was opened in, this one. */
    if ((tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) < 0) {
        job_fail(j, errno, "/dev/net/tun%s%s", "", "");
        goto out;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", HV_NET_TAP);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(tap, TUNSETIFF, &ifr) < 0) {
        job_fail(j, errno, "create %s%s", HV_NET_TAP, "");
        goto out;
    }
    ifr.ifr_mtu = mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
        job_fail(j, errno, "%s: MTU%s", HV_NET_TAP, "");
        goto out;
    }
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
        (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
        job_fail(j, errno, "%s up%s", HV_NET_TAP, "");
        goto out;
    }
    if (redirect(j, j->ifname, HV_NET_TAP) < 0 || redirect(j, HV_NET_TAP, j->ifname) < 0)
        goto out;
    j->out->config =
        json_pack("{s:[{s:s, s:s, s:i, s:O}], s:O}", "interfaces", "name", j->ifname, "mac",
                  j->out->mac, "mtu", mtu, "addresses", addrs, "routes", routes);
    if (!j->out->config) {
        job_fail(j, ENOMEM, "config%s%s", "", "");
        goto out;
    }
    j->out->tap_fd = tap;
    tap = -1;
out:
    /* A tap that isn't persistent goes with its last fd, and its filters with it. */
    if (tap >= 0)
        close(tap);
    if (s >= 0)
        close(s);
    json_decref(addrs);
    json_decref(routes);
    return NULL;
}

int hv_net_attach(const char *netns, const char *ifname, const char *tc, hv_net_t *ret,
                  berth_err_t *err)
{
    struct attach_job job = { .netns = netns, .ifname = ifname, .tc = tc };
    hv_net_t out;
    pthread_t t;
    int r;

    hv_net_init(&out);
    job.out = &out;
    if (!tc)
        return berth_err_set(err, -ENOENT,
                             "hyperv: networks need tc (iproute2), found nowhere: install iproute2 "
                             "or set the driver's \"tc\"");
    /* On a thread: setns() would otherwise move the caller's thread into the namespace. */
    if ((r = pthread_create(&t, NULL, attach_thread, &job)) != 0)
        return berth_err_set(err, -r, "hyperv: network: thread: %s", strerror(r));
    pthread_join(t, NULL);
    if (job.r < 0) {
        hv_net_clear(&out);
        return berth_err_set(err, job.r, "%s", job.why);
    }
    *ret = out;
    return 0;
}
