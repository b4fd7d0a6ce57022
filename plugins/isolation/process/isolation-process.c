/* SPDX-License-Identifier: Apache-2.0 */
/*
 * process: containers as Linux processes in their own namespaces, with
 * cgroups, capabilities and seccomp: an executor of OCI runtime specs behind
 * berth's isolation ABI.
 *
 * The caller (berth-shim, berth-testkit) is the parent of every process the
 * driver starts: the init is cloned straight from it into new namespaces and
 * waits on a sync socket before execve; exec'd processes are cloned with
 * CLONE_PARENT by a short-lived helper that joined the container. So the
 * caller can waitpid() them, and no host binary is ever re-executed inside a
 * container. See process-init.c for what runs in the child and README.md for
 * the behaviour and its limits.
 *
 * A sandbox owns the network namespace, bind-mounted at <state_dir>/netns so
 * network drivers can attach to it; containers in it join it. Each container
 * persists a small state file (state.json) and a copy of its spec
 * (config.json) in its state_dir, so container_open can reopen it from
 * another process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>
#include <linux/sched.h>

#include <berth/sdk.h>

#include "process-cgroup.h"
#include "process-internal.h"

#define STATE_FILE  "state.json"
#define CONFIG_FILE "config.json"

struct process_sandbox {
    char *state_dir;
    char *hostname;       /* the sandbox's "hostname", the default for its containers */
    char netns[PATH_MAX]; /* "" when the sandbox uses the host's network */
};

struct process_ctr;

struct process_handle {
    struct process_ctr *ctr;
    pid_t pid;
    int pidfd;
    int sync_fd; /* init before start: the socket the child waits on */
    int is_init;
    int can_wait; /* we are its parent */
    int exited;
    int tty_master; /* borrowed: the caller owns it; kept for resize */
    berth_exit_status_t status;
};

struct process_ctr {
    char *id;
    char *state_dir;
    char rootfs_dir[PATH_MAX];
    int have_cfg;
    struct process_cfg cfg;
    pcg_t *cg;
    char cgroup_name[256];
    char netns[PATH_MAX];
    int started;
    struct process_handle init;
};

/* ---- small helpers ---- */

void (*process_trace_hook)(const char *step);

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int path_join(char *buf, size_t size, const char *dir, const char *name, berth_err_t *err)
{
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
        return berth_err_set(err, -ENAMETOOLONG, "process: path too long under %s", dir);
    return 0;
}

/* Field 22 of /proc/<pid>/stat: tells a pid apart from a later reuse of it. */
static uint64_t pid_start_time(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long start = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return 0;
    /* After ")": state is field 3; skip to field 22. */
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
               "%*d %llu",
               &start) != 1)
        return 0;
    return start;
}

/*
 * Replace @path atomically (a reader sees the old text or the new, never a
 * mix). No fsync: state dirs live under the runroot, which does not outlast
 * a reboot, and a crash short of one leaves the page cache with the file.
 */
static int write_text_file(const char *path, const char *text, berth_err_t *err)
{
    char tmp[PATH_MAX];
    size_t len = strlen(text);
    int fd;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return berth_err_set(err, -ENAMETOOLONG, "process: path too long: %s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return berth_err_set(err, -errno, "process: create %s: %s", tmp, strerror(errno));
    if (write(fd, text, len) != (ssize_t)len) {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(tmp);
        return berth_err_set(err, -e, "process: write %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return berth_err_set(err, -e, "process: rename %s: %s", tmp, strerror(e));
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---- descriptor-level ops ---- */

static int process_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    static const char *const ns[] = { "pid", "mnt", "uts", "ipc", "net", "cgroup" };
    char path[64];
    uint64_t caps = BERTH_ISOLATION_CAP_EXEC | BERTH_ISOLATION_CAP_TTY | BERTH_ISOLATION_CAP_PAUSE |
                    BERTH_ISOLATION_CAP_STATS | BERTH_ISOLATION_CAP_USERNS |
                    BERTH_ISOLATION_CAP_NET_NETNS | BERTH_ISOLATION_CAP_LINUX;

    if (geteuid() != 0)
        return berth_err_set(err, BERTH_DECLINED, "process: needs root (euid is %u)",
                             (unsigned)geteuid());
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
        if (access(path, F_OK) < 0)
            return berth_err_set(err, BERTH_DECLINED, "process: the kernel has no %s namespaces",
                                 ns[i]);
    }
    if (access("/proc/self/ns/user", F_OK) < 0)
        caps &= ~BERTH_ISOLATION_CAP_USERNS;
    *ret_caps = caps;
    return 0;
}

/* ---- sandboxes ---- */

static void process_sandbox_release(void *priv, void *sandbox);

struct netns_job {
    const char *path;
    int lo_up;
    int step;  /* what failed, an index into make_netns's names; -1: nothing */
    int error; /* its errno */
};

/*
 * On a thread of its own: a new netns, lo up for "none", pinned by a bind
 * mount. A network namespace belongs to a thread, so unsharing it on a
 * thread that then ends leaves the process's own alone; a thread costs
 * far less than the fork a helper process would.
 */
static void *netns_thread(void *arg)
{
    struct netns_job *j = arg;

    if (unshare(CLONE_NEWNET) < 0) {
        j->step = 0;
        j->error = errno;
        return NULL;
    }
    if (j->lo_up) {
        struct ifreq ifr = { 0 };
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        strcpy(ifr.ifr_name, "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
            j->step = 1;
            j->error = errno;
            if (s >= 0)
                close(s);
            return NULL;
        }
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
            j->step = 2;
            j->error = errno;
            close(s);
            return NULL;
        }
        close(s);
    }
    if (mount("/proc/thread-self/ns/net", j->path, NULL, MS_BIND, NULL) < 0) {
        j->step = 3;
        j->error = errno;
    }
    return NULL;
}

static int make_netns(const char *path, int lo_up, berth_err_t *err)
{
    static const char *const step[] = { "unshare", "lo lookup", "lo up", "bind mount" };
    struct netns_job job = { .path = path, .lo_up = lo_up, .step = -1 };
    pthread_t t;
    int fd, r;

    fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0)
        return berth_err_set(err, -errno, "process: create %s: %s", path, strerror(errno));
    close(fd);
    if ((r = pthread_create(&t, NULL, netns_thread, &job)) != 0) {
        unlink(path);
        return berth_err_set(err, -r, "process: network namespace: thread: %s", strerror(r));
    }
    pthread_join(t, NULL);
    if (job.step >= 0) {
        unlink(path);
        return berth_err_set(err, -job.error, "process: network namespace: %s failed: %s",
                             step[job.step], strerror(job.error));
    }
    return 0;
}

static int process_sandbox_create(void *priv, const berth_sandbox_spec_t *spec, uint32_t flags,
                                  void **ret_sandbox, berth_err_t *err)
{
    struct process_sandbox *sb;
    const char *net = "none";
    json_t *cfg = NULL;
    int r;

    if (flags)
        return berth_err_set(err, -EINVAL, "process: sandbox_create: unknown flags 0x%x", flags);
    if (!spec || !spec->state_dir || !spec->id)
        return berth_err_set(err, -EINVAL, "process: sandbox spec needs id and state_dir");
    if (spec->config_json) {
        json_error_t jerr;
        cfg = json_loads(spec->config_json, 0, &jerr);
        if (!cfg)
            return berth_err_set(err, -EINVAL, "process: sandbox config: %s", jerr.text);
        if (json_is_string(json_object_get(cfg, "network")))
            net = json_string_value(json_object_get(cfg, "network"));
    }
    if (strcmp(net, "none") != 0 && strcmp(net, "host") != 0 && strcmp(net, "netns") != 0) {
        r = berth_err_set(err, -EINVAL, "process: unknown sandbox network \"%s\"", net);
        json_decref(cfg);
        return r;
    }
    sb = calloc(1, sizeof(*sb));
    if (!sb || !(sb->state_dir = strdup(spec->state_dir))) {
        free(sb);
        json_decref(cfg);
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    }
    if (json_is_string(json_object_get(cfg, "hostname")) &&
        !(sb->hostname = strdup(json_string_value(json_object_get(cfg, "hostname"))))) {
        process_sandbox_release(priv, sb);
        json_decref(cfg);
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    }
    if (strcmp(net, "host") != 0) {
        r = path_join(sb->netns, sizeof(sb->netns), spec->state_dir, "netns", err);
        if (r == 0)
            r = make_netns(sb->netns, strcmp(net, "none") == 0, err);
        if (r < 0) {
            process_sandbox_release(priv, sb);
            json_decref(cfg);
            return r;
        }
    }
    json_decref(cfg);
    *ret_sandbox = sb;
    return 0;
}

static int process_sandbox_open(void *priv, const berth_sandbox_spec_t *spec, uint32_t flags,
                                void **ret_sandbox, berth_err_t *err)
{
    struct process_sandbox *sb;
    struct statfs sfs;
    char path[PATH_MAX];
    int r;

    if (!spec || !spec->state_dir)
        return berth_err_set(err, -EINVAL, "process: sandbox spec needs a state_dir");
    r = path_join(path, sizeof(path), spec->state_dir, "netns", err);
    if (r < 0)
        return r;
    sb = calloc(1, sizeof(*sb));
    if (!sb || !(sb->state_dir = strdup(spec->state_dir))) {
        free(sb);
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    }
    /* A netns file that is still a mounted namespace: otherwise the host's network. */
    if (statfs(path, &sfs) == 0 && sfs.f_type == NSFS_MAGIC)
        memcpy(sb->netns, path, sizeof(path));
    *ret_sandbox = sb;
    return 0;
}

static int process_sandbox_network(void *priv, void *sandbox, uint32_t flags,
                                   berth_net_attach_t *ret_attach, berth_err_t *err)
{
    struct process_sandbox *sb = sandbox;

    ret_attach->netns[0] = '\0';
    if (!sb->netns[0]) {
        ret_attach->type = BERTH_NET_ATTACH_NONE;
        ret_attach->path[0] = '\0';
        return 0;
    }
    if (strlen(sb->netns) >= sizeof(ret_attach->path))
        return berth_err_set(err, -ENAMETOOLONG, "process: netns path too long: %s", sb->netns);
    ret_attach->type = BERTH_NET_ATTACH_NETNS;
    strcpy(ret_attach->path, sb->netns);
    return 0;
}

static void process_sandbox_release(void *priv, void *sandbox)
{
    struct process_sandbox *sb = sandbox;
    if (!sb)
        return;
    free(sb->state_dir);
    free(sb->hostname);
    free(sb);
}

static int process_sandbox_destroy(void *priv, void *sandbox, uint32_t flags, berth_err_t *err)
{
    struct process_sandbox *sb = sandbox;
    int r = 0;

    if (sb->netns[0]) {
        if (umount2(sb->netns, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            r = berth_err_set(err, -errno, "process: unmount %s: %s", sb->netns, strerror(errno));
        if (unlink(sb->netns) < 0 && errno != ENOENT && r == 0)
            r = berth_err_set(err, -errno, "process: remove %s: %s", sb->netns, strerror(errno));
    }
    process_sandbox_release(priv, sb);
    return r;
}

/* ---- processes ---- */

static void fill_status(struct process_handle *h, int status)
{
    memset(&h->status, 0, sizeof(h->status));
    h->status.struct_size = sizeof(h->status);
    if (WIFSIGNALED(status)) {
        h->status.signal = WTERMSIG(status);
        h->status.exit_code = 128 + WTERMSIG(status);
    } else {
        h->status.exit_code = WEXITSTATUS(status);
    }
    h->status.finished_ns = now_ns();
    /*
     * OOMKilled as Docker reports it: for the container (its init), any OOM
     * kill in its cgroup, even of a child the init outlived; for an exec'd
     * process, only its own death by the OOM killer's SIGKILL.
     */
    if ((h->is_init || h->status.signal == SIGKILL) && h->ctr && h->ctr->cg) {
        int oom = 0;
        if (pcg_oom_killed(h->ctr->cg, &oom, NULL) == 0 && oom)
            h->status.flags |= BERTH_EXIT_F_OOM_KILLED;
    }
    h->exited = 1;
    close_fd(&h->sync_fd);
}

/* Reap @h: 0 when it ended (status filled), -EAGAIN when it runs and @nohang. */
static int reap(struct process_handle *h, int nohang, berth_err_t *err)
{
    int status;
    pid_t r;

    if (h->exited)
        return 0;
    do
        r = waitpid(h->pid, &status, (nohang ? WNOHANG : 0) | __WALL);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return -EAGAIN;
    if (r < 0)
        return berth_err_set(err, -errno, "process: waitpid %d: %s", (int)h->pid, strerror(errno));
    fill_status(h, status);
    return 0;
}

static int pidfd_alive(int pidfd)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    return poll(&p, 1, 0) == 0;
}

static int process_process_wait(void *priv, void *process, uint32_t flags,
                                berth_exit_status_t *ret_exit, berth_err_t *err)
{
    struct process_handle *h = process;
    int r;

    if (flags & ~BERTH_WAIT_NOHANG)
        return berth_err_set(err, -EINVAL, "process: wait: unknown flags 0x%x", flags);
    if (!h->exited && !h->can_wait) {
        /* Reopened from state: only the parent can collect an exit status. */
        if ((flags & BERTH_WAIT_NOHANG) && h->pidfd >= 0 && pidfd_alive(h->pidfd))
            return -EAGAIN;
        return berth_err_set(err, -ECHILD,
                             "process: pid %d is not a child of this process: its exit status "
                             "goes to the process that created it",
                             (int)h->pid);
    }
    r = reap(h, flags & BERTH_WAIT_NOHANG, err);
    if (r < 0)
        return r;
    memcpy(ret_exit, &h->status,
           ret_exit->struct_size && ret_exit->struct_size < sizeof(h->status)
               ? ret_exit->struct_size
               : sizeof(h->status));
    return 0;
}

static int process_process_wait_handle(void *priv, void *process, berth_handle_t *ret_handle,
                                       berth_err_t *err)
{
    struct process_handle *h = process;
    if (h->pidfd < 0)
        return berth_err_set(err, -ESRCH, "process: pid %d has no pidfd", (int)h->pid);
    *ret_handle = h->pidfd;
    return 0;
}

static int process_process_signal(void *priv, void *process, int32_t sig, uint32_t flags,
                                  berth_err_t *err)
{
    struct process_handle *h = process;

    if (flags)
        return berth_err_set(err, -EINVAL, "process: signal: unknown flags 0x%x", flags);
    if (h->exited)
        return berth_err_set(err, -ESRCH, "process: pid %d has exited", (int)h->pid);
    /* A pidfd can't hit a recycled pid; kill() is the fallback on old kernels. */
    if (h->pidfd >= 0) {
        if (pidfd_send_signal(h->pidfd, sig, NULL, 0) == 0)
            return 0;
        if (errno != ENOSYS)
            return berth_err_set(err, -errno, "process: signal %d to pid %d: %s", sig, (int)h->pid,
                                 strerror(errno));
    }
    if (kill(h->pid, sig) < 0)
        return berth_err_set(err, -errno, "process: signal %d to pid %d: %s", sig, (int)h->pid,
                             strerror(errno));
    return 0;
}

static int process_process_resize(void *priv, void *process, uint16_t cols, uint16_t rows,
                                  uint32_t flags, berth_err_t *err)
{
    struct process_handle *h = process;
    struct winsize ws = { .ws_col = cols, .ws_row = rows };

    if (h->tty_master < 0)
        return berth_err_set(err, -ENOTTY, "process: pid %d has no terminal", (int)h->pid);
    if (ioctl(h->tty_master, TIOCSWINSZ, &ws) < 0)
        return berth_err_set(err, -errno, "process: resize: %s", strerror(errno));
    return 0;
}

static void handle_clear(struct process_handle *h)
{
    close_fd(&h->pidfd);
    close_fd(&h->sync_fd);
}

static void process_process_release(void *priv, void *process)
{
    struct process_handle *h = process;
    if (!h || h->is_init)
        return;
    /* Collect it if it already ended, so no zombie stays behind. */
    if (h->can_wait && !h->exited)
        reap(h, 1, NULL);
    handle_clear(h);
    free(h);
}

/*
 * Wait for the child's READY or ERROR after a GO. Returns 0 (READY, *ret_fd
 * gets a passed terminal), 1 on EOF (the child exec'd), or the child's error.
 */
static int await_child(int sync_fd, int *ret_fd, berth_err_t *err)
{
    struct process_msg m;
    int r = process_msg_recv(sync_fd, &m, ret_fd);

    /*
     * A child that failed before it read our go closes its end with the go
     * unread, and the kernel then reports ECONNRESET to us once, ahead of
     * the error message the child queued before it exited: read again for
     * that message.
     */
    if (r == -ECONNRESET)
        r = process_msg_recv(sync_fd, &m, ret_fd);
    if (r == 0)
        return 1;
    if (r < 0)
        return berth_err_set(err, r, "process: reading from the child: %s", strerror(-r));
    if (m.type == PROCESS_MSG_ERROR) {
        m.text[sizeof(m.text) - 1] = '\0';
        if (ret_fd && *ret_fd >= 0)
            close_fd(ret_fd);
        return berth_err_set(err, m.code < 0 ? m.code : -EIO, "%s", m.text);
    }
    return 0;
}

static int send_go(int sync_fd, berth_err_t *err)
{
    struct process_msg m = { .type = PROCESS_MSG_GO };
    if (process_msg_send(sync_fd, &m, -1) < 0)
        return berth_err_set(err, -EIO, "process: the child went away before it was released");
    return 0;
}

static void stdio_args(struct process_child_args *a, berth_stdio_t *stdio)
{
    a->stdio[0] = a->stdio[1] = a->stdio[2] = -1;
    if (!stdio)
        return;
    a->tty = (stdio->flags & BERTH_STDIO_F_TTY) != 0;
    a->cols = stdio->tty_cols;
    a->rows = stdio->tty_rows;
    if (a->tty)
        return;
    a->stdio[0] = (int)stdio->in;
    a->stdio[1] = (int)stdio->out;
    a->stdio[2] = (int)stdio->err;
}

static int write_idmap(pid_t pid, const char *file, const char *map, berth_err_t *err)
{
    char path[64];
    size_t len = strlen(map);
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, map, len) != (ssize_t)len) {
        int e = errno ? errno : EIO;
        if (fd >= 0)
            close(fd);
        return berth_err_set(err, -e, "process: write %s: %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

static int process_process_exec(void *priv, void *container, const berth_process_spec_t *spec,
                                uint32_t flags, void **ret_process, berth_err_t *err)
{
    struct process_ctr *c = container;
    struct process_child_args a = { 0 };
    struct process_handle *h = NULL;
    struct process_proc proc;
    struct process_msg m;
    json_error_t jerr;
    json_t *obj;
    int sv[2] = { -1, -1 }, tty = -1, status, r;
    pid_t helper;

    if (flags)
        return berth_err_set(err, -EINVAL, "process: exec: unknown flags 0x%x", flags);
    if (!spec || !spec->process_json)
        return berth_err_set(err, -EINVAL, "process: exec needs a process object");
    if (!c->started || c->init.exited || (c->init.pidfd >= 0 && !pidfd_alive(c->init.pidfd)))
        return berth_err_set(err, -ESRCH, "process: the container is not running");
    obj = json_loads(spec->process_json, 0, &jerr);
    if (!obj)
        return berth_err_set(err, -EINVAL, "process: exec process: %s", jerr.text);
    r = process_proc_parse(obj, &proc, err);
    json_decref(obj);
    if (r < 0)
        return r;
    h = calloc(1, sizeof(*h));
    if (!h) {
        r = berth_err_set(err, -ENOMEM, "process: out of memory");
        goto out;
    }
    h->ctr = c;
    h->pidfd = h->sync_fd = h->tty_master = -1;
    h->can_wait = 1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        r = berth_err_set(err, -errno, "process: socketpair: %s", strerror(errno));
        goto out;
    }
    a.cfg = &c->cfg;
    a.proc = &proc;
    a.sync_fd = sv[1];
    a.netns_fd = -1;
    a.is_exec = 1;
    a.enter_fd = c->init.pidfd;
    a.enter_userns = c->cfg.userns;
    stdio_args(&a, spec->stdio);
    helper = fork();
    if (helper < 0) {
        r = berth_err_set(err, -errno, "process: fork: %s", strerror(errno));
        goto out;
    }
    if (helper == 0) {
        close(sv[0]);
        process_child_exec_helper(&a);
    }
    close_fd(&sv[1]);
    r = process_msg_recv(sv[0], &m, NULL);
    while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
        ;
    if (r <= 0 || m.type != PROCESS_MSG_PID) {
        if (r > 0 && m.type == PROCESS_MSG_ERROR)
            r = berth_err_set(err, m.code < 0 ? m.code : -EIO, "%s", m.text);
        else
            r = berth_err_set(err, -EIO, "process: exec helper failed");
        goto out;
    }
    h->pid = m.code;
    h->pidfd = pidfd_open(h->pid, 0);
    if (h->pidfd < 0) {
        r = berth_err_set(err, -errno, "process: pidfd_open %d: %s", (int)h->pid, strerror(errno));
        goto kill;
    }
    if (c->cg && (r = pcg_enter(c->cg, h->pid, err)) < 0)
        goto kill;
    if ((r = send_go(sv[0], err)) < 0 || (r = await_child(sv[0], &tty, err)) < 0)
        goto kill;
    if (r == 1) {
        r = berth_err_set(err, -EIO, "process: exec'd process ended during setup");
        goto kill;
    }
    if ((r = send_go(sv[0], err)) < 0)
        goto kill;
    r = await_child(sv[0], NULL, err);
    if (r < 0)
        goto kill;
    h->tty_master = tty;
    if (spec->stdio && tty >= 0)
        spec->stdio->tty_master = tty;
    tty = -1;
    *ret_process = h;
    h = NULL;
    r = 0;
    goto out;
kill:
    if (h->pidfd >= 0)
        pidfd_send_signal(h->pidfd, SIGKILL, NULL, 0);
    else
        kill(h->pid, SIGKILL);
    reap(h, 0, NULL);
out:
    close_fd(&tty);
    close_fd(&sv[0]);
    close_fd(&sv[1]);
    if (h)
        handle_clear(h);
    free(h);
    process_proc_clear(&proc);
    return r;
}

/* ---- containers ---- */

static void ctr_free(struct process_ctr *c)
{
    if (!c)
        return;
    handle_clear(&c->init);
    if (c->have_cfg)
        process_cfg_clear(&c->cfg);
    pcg_free(c->cg);
    free(c->id);
    free(c->state_dir);
    free(c);
}

static int save_state(struct process_ctr *c, const char *spec_json, berth_err_t *err)
{
    char path[PATH_MAX];
    json_t *st;
    char *text;
    int r;

    st = json_pack("{s:i, s:I, s:s, s:s, s:s}", "pid", (int)c->init.pid, "start_time",
                   (json_int_t)pid_start_time(c->init.pid), "cgroup", c->cgroup_name, "netns",
                   c->netns, "rootfs", c->rootfs_dir);
    text = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    if (!text)
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    r = path_join(path, sizeof(path), c->state_dir, STATE_FILE, err);
    if (r == 0)
        r = write_text_file(path, text, err);
    free(text);
    if (r == 0 && spec_json) {
        r = path_join(path, sizeof(path), c->state_dir, CONFIG_FILE, err);
        if (r == 0)
            r = write_text_file(path, spec_json, err);
    }
    return r;
}

/* Pick the cgroup name: linux.cgroupsPath when it is a plain path, else berth/<id>. */
static void cgroup_name(struct process_ctr *c)
{
    const char *p = c->cfg.cgroups_path;
    while (p && *p == '/')
        p++;
    if (p && *p && !strchr(p, ':') && strlen(p) < sizeof(c->cgroup_name))
        snprintf(c->cgroup_name, sizeof(c->cgroup_name), "%s", p);
    else
        snprintf(c->cgroup_name, sizeof(c->cgroup_name), "berth/%s", c->id);
}

static int process_container_create(void *priv, void *sandbox, const berth_container_spec_t *spec,
                                    uint32_t flags, void **ret_container, berth_err_t *err)
{
    struct process_sandbox *sb = sandbox;
    struct process_child_args a = { 0 };
    struct process_ctr *c;
    struct clone_args ca = { 0 };
    int sv[2] = { -1, -1 }, netfd = -1, pidfd = -1, tty = -1, r, new_net = 0, self_net = -1;
    int cgfd = -1, in_v2 = 0;
    const char *netns = NULL;
    long pid;

    if (flags)
        return berth_err_set(err, -EINVAL, "process: container_create: unknown flags 0x%x", flags);
    if (!spec || !spec->id || !spec->state_dir)
        return berth_err_set(err, -EINVAL, "process: container spec needs id and state_dir");
    c = calloc(1, sizeof(*c));
    if (!c)
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    c->init.pidfd = c->init.sync_fd = c->init.tty_master = -1;
    c->init.is_init = 1;
    c->init.can_wait = 1;
    c->init.ctr = c;
    c->id = strdup(spec->id);
    c->state_dir = strdup(spec->state_dir);
    if (!c->id || !c->state_dir) {
        r = berth_err_set(err, -ENOMEM, "process: out of memory");
        goto fail;
    }
    r = process_cfg_parse(spec->oci_spec_json, &c->cfg, err);
    if (r < 0)
        goto fail;
    c->have_cfg = 1;
    PROCESS_TRACE("parsed");
    if (!c->cfg.hostname && sb && sb->hostname && !(c->cfg.hostname = strdup(sb->hostname))) {
        r = berth_err_set(err, -ENOMEM, "process: out of memory");
        goto fail;
    }
    r = path_join(c->rootfs_dir, sizeof(c->rootfs_dir), spec->state_dir, "rootfs", err);
    if (r < 0)
        goto fail;
    if (mkdir(c->rootfs_dir, 0700) < 0 && errno != EEXIST) {
        r = berth_err_set(err, -errno, "process: mkdir %s: %s", c->rootfs_dir, strerror(errno));
        goto fail;
    }
    /*
     * In a user namespace the child mounts the rootfs as the container's
     * root, which is an unprivileged uid on the host: it must own the
     * directories it mounts onto (their ancestors only need search rights).
     */
    if (c->cfg.userns) {
        unsigned long in_u, out_u, n_u, in_g, out_g, n_g;
        const char *gmap = c->cfg.gid_map ? c->cfg.gid_map : c->cfg.uid_map;
        if (sscanf(c->cfg.uid_map, "%lu %lu %lu", &in_u, &out_u, &n_u) == 3 && in_u == 0 &&
            sscanf(gmap, "%lu %lu %lu", &in_g, &out_g, &n_g) == 3 && in_g == 0 &&
            (chown(spec->state_dir, (uid_t)out_u, (gid_t)out_g) < 0 ||
             chown(c->rootfs_dir, (uid_t)out_u, (gid_t)out_g) < 0)) {
            r = berth_err_set(err, -errno, "process: chown %s for the user namespace: %s",
                              spec->state_dir, strerror(errno));
            goto fail;
        }
    }
    /*
     * Network: a path in the spec wins; otherwise the container joins its
     * sandbox's namespace; a spec asking for a netns in a host-network
     * sandbox gets a private one.
     */
    if (c->cfg.net_path)
        netns = c->cfg.net_path;
    else if (sb && sb->netns[0])
        netns = sb->netns;
    else if (c->cfg.net_listed)
        new_net = 1;
    if (netns) {
        netfd = open(netns, O_RDONLY | O_CLOEXEC);
        if (netfd < 0) {
            r = berth_err_set(err, -errno, "process: open netns %s: %s", netns, strerror(errno));
            goto fail_dir;
        }
        snprintf(c->netns, sizeof(c->netns), "%s", netns);
    }
    cgroup_name(c);
    r = pcg_create(c->cgroup_name, c->cfg.resources, &c->cg, err);
    if (r < 0)
        goto fail_dir;
    PROCESS_TRACE("cgroup");
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        r = berth_err_set(err, -errno, "process: socketpair: %s", strerror(errno));
        goto fail_cg;
    }
    a.cfg = &c->cfg;
    a.proc = &c->cfg.proc;
    a.rootfs_dir = c->rootfs_dir;
    a.rootfs = spec->rootfs;
    a.sync_fd = sv[1];
    a.netns_fd = netfd;
    a.enter_fd = -1;
    a.no_openat2 = getenv("BERTH_PROCESS_NO_OPENAT2") != NULL;
    stdio_args(&a, spec->stdio);

    ca.flags = CLONE_PIDFD | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
               (c->cfg.userns ? CLONE_NEWUSER : 0) | (new_net ? CLONE_NEWNET : 0);
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    a.joined_netns = netfd >= 0;
    /*
     * Put the child in its cgroups without the kernel's global threadgroup
     * lock, whose first writer after a quiet spell waits for an RCU grace
     * period (4-15 ms, most of a start): clone3 places it in the v2 cgroup,
     * and it joins the v1 ones itself (pcg_enter_self_v1). In a user
     * namespace it has no rights over the host's cgroup files: we move it.
     */
    if (!c->cfg.userns) {
        a.join_v1 = c->cg;
        if ((cgfd = pcg_v2_fd(c->cg)) >= 0) {
            ca.flags |= CLONE_INTO_CGROUP;
            ca.cgroup = (uint64_t)cgfd;
        }
    }
    if (c->cfg.userns && netfd >= 0) {
        /*
         * A child in a new user namespace has no rights over a netns the
         * host's namespace owns: join it on this thread around the clone
         * instead, so the child starts inside it, and come back.
         */
        self_net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self_net < 0 || setns(netfd, CLONE_NEWNET) < 0) {
            r = berth_err_set(err, -errno, "process: joining %s: %s", netns, strerror(errno));
            close_fd(&self_net);
            goto fail_cg;
        }
        a.netns_fd = -1;
    }
    /* Fork-like (no new stack): the child runs process_child_init and never returns. */
    pid = syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid < 0 && (ca.flags & CLONE_INTO_CGROUP)) {
        /*
         * A kernel before 5.7 or a v2 cgroup that refuses (EBUSY, EOPNOTSUPP):
         * clone plainly; moving it there below reports what is really wrong.
         */
        ca.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
        ca.cgroup = 0;
        pid = syscall(SYS_clone3, &ca, sizeof(ca));
    }
    in_v2 = (ca.flags & CLONE_INTO_CGROUP) != 0;
    close_fd(&cgfd);
    if (pid != 0 && self_net >= 0) {
        /* Failing to return would leave this thread in the container's network. */
        if (setns(self_net, CLONE_NEWNET) < 0)
            abort();
        close_fd(&self_net);
    }
    if (pid < 0) {
        r = berth_err_set(err, -errno, "process: clone: %s", strerror(errno));
        goto fail_cg;
    }
    if (pid == 0) {
        close(sv[0]);
        process_child_init(&a);
    }
    PROCESS_TRACE("cloned");
    close_fd(&sv[1]);
    close_fd(&netfd);
    c->init.pid = (pid_t)pid;
    c->init.pidfd = pidfd;
    c->init.sync_fd = sv[0];
    sv[0] = -1;
    if (c->cfg.userns) {
        if ((r = write_idmap(c->init.pid, "uid_map", c->cfg.uid_map, err)) < 0 ||
            (r = write_idmap(c->init.pid, "gid_map",
                             c->cfg.gid_map ? c->cfg.gid_map : c->cfg.uid_map, err)) < 0)
            goto fail_child;
    }
    if (a.join_v1)
        r = in_v2 ? 0 : pcg_enter_v2(c->cg, c->init.pid, err);
    else
        r = pcg_enter(c->cg, c->init.pid, err);
    if (r < 0 || (r = send_go(c->init.sync_fd, err)) < 0) {
        /* The child may have failed its mounts meanwhile: its reason beats ours. */
        berth_err_t cerr = { 0 };
        if (await_child(c->init.sync_fd, NULL, &cerr) < 0 && err)
            *err = cerr;
        goto fail_child;
    }
    r = await_child(c->init.sync_fd, &tty, err);
    if (r == 1)
        r = berth_err_set(err, -EIO, "process: the container's init ended during setup");
    if (r < 0)
        goto fail_child;
    PROCESS_TRACE("child-ready");
    r = save_state(c, spec->oci_spec_json, err);
    if (r < 0)
        goto fail_child;
    PROCESS_TRACE("saved");
    if (tty >= 0) {
        c->init.tty_master = tty;
        if (spec->stdio)
            spec->stdio->tty_master = tty;
    }
    *ret_container = c;
    return 0;

fail_child:
    close_fd(&tty);
    pidfd_send_signal(c->init.pidfd, SIGKILL, NULL, 0);
    reap(&c->init, 0, NULL);
fail_cg:
    close_fd(&sv[0]);
    close_fd(&sv[1]);
    pcg_destroy(c->cg, NULL);
    c->cg = NULL;
fail_dir:
    close_fd(&netfd);
    rmdir(c->rootfs_dir);
fail:
    ctr_free(c);
    return r;
}

static int process_container_open(void *priv, void *sandbox, const berth_container_spec_t *spec,
                                  uint32_t flags, void **ret_container, berth_err_t *err)
{
    struct process_ctr *c;
    char path[PATH_MAX];
    json_error_t jerr;
    json_t *st = NULL;
    const char *cg, *spec_text = spec ? spec->oci_spec_json : NULL;
    char *saved = NULL;
    uint64_t start;
    int r;

    if (!spec || !spec->state_dir || !spec->id)
        return berth_err_set(err, -EINVAL, "process: container spec needs id and state_dir");
    c = calloc(1, sizeof(*c));
    if (!c)
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    c->init.pidfd = c->init.sync_fd = c->init.tty_master = -1;
    c->init.is_init = 1;
    c->init.ctr = c;
    c->started = 1;
    c->id = strdup(spec->id);
    c->state_dir = strdup(spec->state_dir);
    if (!c->id || !c->state_dir) {
        r = berth_err_set(err, -ENOMEM, "process: out of memory");
        goto fail;
    }
    if ((r = path_join(path, sizeof(path), spec->state_dir, STATE_FILE, err)) < 0)
        goto fail;
    st = json_load_file(path, 0, &jerr);
    if (!st) {
        r = berth_err_set(err, -ENOENT, "process: no container state in %s: %s", spec->state_dir,
                          jerr.text);
        goto fail;
    }
    c->init.pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    start = (uint64_t)json_integer_value(json_object_get(st, "start_time"));
    cg = json_string_value(json_object_get(st, "cgroup"));
    snprintf(c->cgroup_name, sizeof(c->cgroup_name), "%s", cg ? cg : "");
    snprintf(c->netns, sizeof(c->netns), "%s",
             json_string_value(json_object_get(st, "netns")) ?: "");
    snprintf(c->rootfs_dir, sizeof(c->rootfs_dir), "%s",
             json_string_value(json_object_get(st, "rootfs")) ?: "");
    if (!spec_text) {
        /* The copy saved at create gives exec the container's seccomp and userns settings. */
        if ((r = path_join(path, sizeof(path), spec->state_dir, CONFIG_FILE, err)) < 0)
            goto fail;
        json_t *cfg = json_load_file(path, 0, &jerr);
        if (cfg) {
            saved = json_dumps(cfg, JSON_COMPACT);
            json_decref(cfg);
        }
        spec_text = saved;
    }
    if (spec_text && process_cfg_parse(spec_text, &c->cfg, NULL) == 0)
        c->have_cfg = 1;
    c->init.pidfd = c->init.pid > 0 ? pidfd_open(c->init.pid, 0) : -1;
    /* A pid that ended, or now belongs to another process, is an exited init. */
    if (c->init.pidfd < 0 || pid_start_time(c->init.pid) != start) {
        close_fd(&c->init.pidfd);
        c->init.exited = 1;
        c->init.status.struct_size = sizeof(c->init.status);
        c->init.status.exit_code = 255;
    }
    if (c->cgroup_name[0] && pcg_open(c->cgroup_name, &c->cg, NULL) < 0)
        c->cg = NULL;
    json_decref(st);
    free(saved);
    *ret_container = c;
    return 0;
fail:
    json_decref(st);
    free(saved);
    ctr_free(c);
    return r;
}

static int process_container_start(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct process_ctr *c = container;
    int r;

    if (flags)
        return berth_err_set(err, -EINVAL, "process: start: unknown flags 0x%x", flags);
    if (c->started || c->init.sync_fd < 0)
        return berth_err_set(err, -EINVAL, "process: the container was already started");
    c->started = 1;
    r = send_go(c->init.sync_fd, err);
    if (r == 0)
        r = await_child(c->init.sync_fd, NULL, err);
    close_fd(&c->init.sync_fd);
    PROCESS_TRACE("exec");
    if (r < 0) {
        /* The init reported why it could not exec and exits: collect it now. */
        reap(&c->init, 0, NULL);
        return r;
    }
    return 0;
}

static int process_container_pause(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct process_ctr *c = container;
    if (!c->cg)
        return berth_err_set(err, -ENOTSUP, "process: the container has no cgroup");
    return pcg_freeze(c->cg, err);
}

static int process_container_resume(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct process_ctr *c = container;
    if (!c->cg)
        return berth_err_set(err, -ENOTSUP, "process: the container has no cgroup");
    return pcg_thaw(c->cg, err);
}

static void blob_release(berth_blob_t *b)
{
    if (!b)
        return;
    free(b->data);
    free(b);
}

static int process_container_stats(void *priv, void *container, uint32_t flags,
                                   berth_blob_t **ret_stats, berth_err_t *err)
{
    struct process_ctr *c = container;
    berth_blob_t *b;
    json_t *st = NULL;
    int r;

    if (!c->cg)
        return berth_err_set(err, -ENOTSUP, "process: the container has no cgroup");
    r = pcg_stats(c->cg, &st, err);
    if (r < 0)
        return r;
    b = calloc(1, sizeof(*b));
    if (b)
        b->data = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    if (!b || !b->data) {
        free(b);
        return berth_err_set(err, -ENOMEM, "process: out of memory");
    }
    b->struct_size = sizeof(*b);
    b->len = strlen(b->data);
    b->release = blob_release;
    *ret_stats = b;
    return 0;
}

static int process_container_delete(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct process_ctr *c = container;
    char path[PATH_MAX];
    int r = 0, running;

    if (flags & ~BERTH_DELETE_FORCE) {
        ctr_free(c);
        return berth_err_set(err, -EINVAL, "process: delete: unknown flags 0x%x", flags);
    }
    running = c->started && !c->init.exited &&
              (c->init.can_wait ? reap(&c->init, 1, NULL) == -EAGAIN
                                : c->init.pidfd >= 0 && pidfd_alive(c->init.pidfd));
    if (running && !(flags & BERTH_DELETE_FORCE)) {
        r = berth_err_set(err, -EBUSY, "process: the container is running");
        ctr_free(c);
        return r;
    }
    /* Not started: closing the sync socket makes the waiting init exit by itself. */
    close_fd(&c->init.sync_fd);
    if (!c->init.exited) {
        if (c->cg)
            pcg_kill_all(c->cg, SIGKILL, NULL);
        if (c->init.pidfd >= 0)
            pidfd_send_signal(c->init.pidfd, SIGKILL, NULL, 0);
        if (c->init.can_wait)
            reap(&c->init, 0, NULL);
    }
    if (c->cg) {
        r = pcg_destroy(c->cg, err);
        c->cg = NULL;
    }
    /* The rootfs was mounted in the container's mount namespace only: it went with it. */
    if (c->rootfs_dir[0] && rmdir(c->rootfs_dir) < 0 && errno != ENOENT && r == 0)
        r = berth_err_set(err, -errno, "process: remove %s: %s", c->rootfs_dir, strerror(errno));
    if (path_join(path, sizeof(path), c->state_dir, STATE_FILE, NULL) == 0)
        unlink(path);
    if (path_join(path, sizeof(path), c->state_dir, CONFIG_FILE, NULL) == 0)
        unlink(path);
    ctr_free(c);
    return r;
}

static void process_container_release(void *priv, void *container)
{
    ctr_free(container);
}

static void *process_container_init_process(void *priv, void *container)
{
    struct process_ctr *c = container;
    return &c->init;
}

static const berth_isolation_ops_t process_ops = {
    BERTH_OPS_INIT(berth_isolation_ops_t),
    .probe = process_probe,
    .sandbox_create = process_sandbox_create,
    .sandbox_open = process_sandbox_open,
    .sandbox_network = process_sandbox_network,
    .sandbox_destroy = process_sandbox_destroy,
    .sandbox_release = process_sandbox_release,
    .container_create = process_container_create,
    .container_open = process_container_open,
    .container_start = process_container_start,
    .container_pause = process_container_pause,
    .container_resume = process_container_resume,
    .container_stats = process_container_stats,
    .container_delete = process_container_delete,
    .container_release = process_container_release,
    .container_init_process = process_container_init_process,
    .process_exec = process_process_exec,
    .process_signal = process_process_signal,
    .process_wait = process_process_wait,
    .process_wait_handle = process_process_wait_handle,
    .process_resize = process_process_resize,
    .process_release = process_process_release,
};

static int process_plugin_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                               berth_err_t *err)
{
    const char *state = host->path(ctx, BERTH_PATH_STATE);
    char dir[4096];

    /* Compiled seccomp filters are kept under the driver's persistent dir. */
    if (state && snprintf(dir, sizeof(dir), "%s/seccomp", state) < (int)sizeof(dir))
        process_seccomp_set_cache_dir(dir);
    *ret_priv = NULL;
    return 0;
}

static void process_plugin_fini(void *priv)
{
    process_seccomp_set_cache_dir(NULL);
}

static const berth_plugin_desc_t process_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_ISOLATION,
    .name = "process",
    .version = "0.1.0",
    .license = "Apache-2.0",
    .description = "Linux namespaces, cgroups, capabilities and seccomp (an OCI runtime)",
    .capabilities = BERTH_ISOLATION_CAP_EXEC | BERTH_ISOLATION_CAP_TTY | BERTH_ISOLATION_CAP_PAUSE |
                    BERTH_ISOLATION_CAP_STATS | BERTH_ISOLATION_CAP_USERNS |
                    BERTH_ISOLATION_CAP_NET_NETNS | BERTH_ISOLATION_CAP_LINUX,
    .init = process_plugin_init,
    .fini = process_plugin_fini,
    .ops = &process_ops,
};

BERTH_PLUGIN_DEFINE(process_desc)
