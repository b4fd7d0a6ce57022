/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake: an in-memory isolation driver. Sandboxes and containers are plain
 * structs; "processes" never run, they only move through the states a real
 * driver reports (created, running, paused, exited), so the core's lifecycle
 * code can be tested without privileges. A signal ends the init process
 * with 128 + signal, as a shell would report it.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <berth/sdk.h>

enum { FAKE_CREATED, FAKE_RUNNING, FAKE_PAUSED, FAKE_EXITED };

struct fake_proc {
    int state;
    berth_exit_status_t exit;
    int is_init;
};

struct fake_ctr {
    struct fake_proc init;
};

struct fake_sandbox {
    char id[65];
};

struct fake {
    const berth_host_api_t *host;
    berth_host_t *ctx;
};

static int fake_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                     berth_err_t *err)
{
    struct fake *f = calloc(1, sizeof(*f));
    if (!f)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    f->host = host;
    f->ctx = ctx;
    *ret_priv = f;
    return 0;
}

static void fake_fini(void *priv)
{
    free(priv);
}

static int fake_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    *ret_caps = BERTH_ISOLATION_CAP_PAUSE | BERTH_ISOLATION_CAP_LINUX;
    return 0;
}

static int fake_sandbox_create(void *priv, const berth_sandbox_spec_t *spec, uint32_t flags,
                               void **ret_sandbox, berth_err_t *err)
{
    struct fake_sandbox *sb;
    if (!spec || !spec->id || strlen(spec->id) != 64)
        return berth_err_set(err, -EINVAL, "fake: sandbox id must be 64 hex characters");
    sb = calloc(1, sizeof(*sb));
    if (!sb)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    memcpy(sb->id, spec->id, 65);
    *ret_sandbox = sb;
    return 0;
}

static int fake_sandbox_network(void *priv, void *sandbox, uint32_t flags,
                                berth_net_attach_t *ret_attach, berth_err_t *err)
{
    ret_attach->type = BERTH_NET_ATTACH_NONE;
    ret_attach->path[0] = '\0';
    ret_attach->netns[0] = '\0';
    return 0;
}

static int fake_sandbox_destroy(void *priv, void *sandbox, uint32_t flags, berth_err_t *err)
{
    free(sandbox);
    return 0;
}

static void fake_sandbox_release(void *priv, void *sandbox)
{
    free(sandbox);
}

static int fake_container_create(void *priv, void *sandbox, const berth_container_spec_t *spec,
                                 uint32_t flags, void **ret_container, berth_err_t *err)
{
    struct fake_ctr *c = calloc(1, sizeof(*c));
    if (!c)
        return berth_err_set(err, -ENOMEM, "fake: out of memory");
    c->init.state = FAKE_CREATED;
    c->init.is_init = 1;
    *ret_container = c;
    return 0;
}

static int fake_container_start(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct fake_ctr *c = container;
    if (c->init.state != FAKE_CREATED)
        return berth_err_set(err, -EINVAL, "fake: container is not in the created state");
    c->init.state = FAKE_RUNNING;
    return 0;
}

static int fake_container_pause(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct fake_ctr *c = container;
    if (c->init.state != FAKE_RUNNING)
        return berth_err_set(err, -EINVAL, "fake: container is not running");
    c->init.state = FAKE_PAUSED;
    return 0;
}

static int fake_container_resume(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct fake_ctr *c = container;
    if (c->init.state != FAKE_PAUSED)
        return berth_err_set(err, -EINVAL, "fake: container is not paused");
    c->init.state = FAKE_RUNNING;
    return 0;
}

static int fake_container_delete(void *priv, void *container, uint32_t flags, berth_err_t *err)
{
    struct fake_ctr *c = container;
    if (c->init.state == FAKE_RUNNING && !(flags & BERTH_DELETE_FORCE)) {
        return berth_err_set(err, -EBUSY, "fake: container is running");
    }
    free(c);
    return 0;
}

static void fake_container_release(void *priv, void *container)
{
    free(container);
}

static void *fake_container_init_process(void *priv, void *container)
{
    return &((struct fake_ctr *)container)->init;
}

static int fake_process_signal(void *priv, void *process, int32_t sig, uint32_t flags,
                               berth_err_t *err)
{
    struct fake_proc *p = process;
    struct timespec ts;
    if (p->state != FAKE_RUNNING && p->state != FAKE_PAUSED)
        return berth_err_set(err, -ESRCH, "fake: process is not running");
    if (sig == 0)
        return 0;
    /* A paused process only dies of SIGKILL, as a frozen cgroup behaves. */
    if (p->state == FAKE_PAUSED && sig != SIGKILL)
        return 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->state = FAKE_EXITED;
    p->exit.struct_size = sizeof(p->exit);
    p->exit.signal = sig;
    p->exit.exit_code = 128 + sig;
    p->exit.finished_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
}

static int fake_process_wait(void *priv, void *process, uint32_t flags,
                             berth_exit_status_t *ret_exit, berth_err_t *err)
{
    struct fake_proc *p = process;
    if (p->state != FAKE_EXITED) {
        /* Nothing would ever wake a blocking wait here: refuse rather than hang. */
        return berth_err_set(err, -EAGAIN, "fake: process still running");
    }
    /* Only what the caller's struct has room for: an older core's is shorter. */
    memcpy(ret_exit, &p->exit,
           ret_exit->struct_size && ret_exit->struct_size < sizeof(p->exit) ? ret_exit->struct_size
                                                                            : sizeof(p->exit));
    return 0;
}

static const berth_isolation_ops_t fake_ops = {
    BERTH_OPS_INIT(berth_isolation_ops_t),
    .probe = fake_probe,
    .sandbox_create = fake_sandbox_create,
    .sandbox_network = fake_sandbox_network,
    .sandbox_destroy = fake_sandbox_destroy,
    .sandbox_release = fake_sandbox_release,
    .container_create = fake_container_create,
    .container_start = fake_container_start,
    .container_pause = fake_container_pause,
    .container_resume = fake_container_resume,
    .container_delete = fake_container_delete,
    .container_release = fake_container_release,
    .container_init_process = fake_container_init_process,
    .process_signal = fake_process_signal,
    .process_wait = fake_process_wait,
};

static const berth_plugin_desc_t fake_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_ISOLATION,
    .name = "fake",
    .version = "1.0.0",
    .license = "Apache-2.0",
    .description = "in-memory isolation driver for tests",
    .capabilities = BERTH_ISOLATION_CAP_PAUSE | BERTH_ISOLATION_CAP_LINUX,
    .init = fake_init,
    .fini = fake_fini,
    .ops = &fake_ops,
};

BERTH_PLUGIN_DEFINE(fake_desc)
