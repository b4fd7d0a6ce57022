/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-testkit: conformance tests for a driver module, for driver authors
 * and for berth's own drivers.
 *
 *   berth-testkit [--rootfs DIR] MODULE.so
 *
 * The module is loaded by berth's real loader (so every load-time check
 * applies) into a scratch root, and then the suite for its kind runs
 * against the ops table: the behaviour every driver of that kind must show
 * whatever it does inside (error codes for absent and duplicate objects,
 * handles freed, streams that end, results that parse). Drivers that need
 * a real root filesystem (isolation) get --rootfs.
 *
 * Output is cmocka's; the exit status is the number of failed tests.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <berth/sdk.h>

#include "plugins.h"
#include "util.h"

struct kit {
    berth_registry_t *reg;
    berth_driver_t *drv;
    char scratch[PATH_MAX];
    const char *rootfs;
    int rootfs_given; /* --rootfs: the driver runs real processes from it */
};

static struct kit kit;

#define OPS(type) ((const type *)kit.drv->ops)
/* snprintf into a fixed buffer, failing the test instead of truncating. */
#define PJOIN(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* ---- every kind ---- */

static void test_kit_descriptor_is_sane(void **state)
{
    const berth_plugin_desc_t *d = kit.drv->desc;
    assert_int_equal(d->abi_major, BERTH_ABI_MAJOR);
    assert_true(d->abi_minor <= BERTH_ABI_MINOR);
    assert_true(berth__driver_name_valid(d->name));
    assert_non_null(d->version);
    assert_true(strlen(d->version) > 0);
    assert_non_null(d->license);
    /* The entry returns the same static descriptor every time. */
    assert_ptr_equal(berth__registry_driver(kit.reg, 0)->desc, d);
}

/* probe: 0 or BERTH_DECLINED, and never claims capabilities the driver doesn't declare. */
static void test_kit_probe_is_consistent(void **state)
{
    int (*probe)(void *, uint32_t, uint64_t *, berth_err_t *) = NULL;
    const berth_ops_header_t *h = kit.drv->ops;
    uint64_t caps = 0;
    berth_err_t err = { 0 };
    int r;

    /* probe is the first slot of every kind's table. */
    if (h->struct_size >= 8 + sizeof(void *))
        memcpy(&probe, (const char *)h + 8, sizeof(probe));
    if (!probe)
        skip();
    r = probe(kit.drv->priv, 0, &caps, &err);
    if (r == BERTH_DECLINED) {
        assert_true(strlen(err.msg) > 0); /* a declining driver says why */
        return;
    }
    assert_int_equal(r, 0);
    assert_int_equal(caps & ~kit.drv->desc->capabilities, 0);
}

/* ---- storage ---- */

static void test_kit_storage_snapshot_lifecycle(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    berth_mount_list_t *m = NULL;
    berth_snapshot_info_t info = { .struct_size = sizeof(info) };
    berth_err_t err = { 0 };
    void *p = kit.drv->priv;

    assert_int_equal(ops->prepare(p, "kit-base-active", NULL, NULL, 0, &m, &err), 0);
    assert_non_null(m);
    assert_true(m->n_mounts >= 1);
    for (uint32_t i = 0; i < m->n_mounts; i++) {
        assert_non_null(m->mounts[i].type);
        assert_non_null(m->mounts[i].source);
        assert_non_null(m->mounts[i].target);
    }
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->stat(p, "kit-base-active", 0, &info, &err), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_ACTIVE);

    assert_int_equal(ops->commit(p, "sha256:kit-base", "kit-base-active", 0, &err), 0);
    assert_int_equal(ops->stat(p, "sha256:kit-base", 0, &info, &err), 0);
    assert_int_equal(info.kind, BERTH_SNAPSHOT_KIND_COMMITTED);
    assert_int_equal(ops->stat(p, "kit-base-active", 0, &info, &err), -ENOENT);

    assert_int_equal(ops->prepare(p, "kit-ctr", "sha256:kit-base", NULL, 0, &m, &err), 0);
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->mounts(p, "kit-ctr", 0, &m, &err), 0);
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->stat(p, "kit-ctr", 0, &info, &err), 0);
    assert_string_equal(info.parent, "sha256:kit-base");

    /* A parent with children can't go; children first. */
    assert_int_equal(ops->remove(p, "sha256:kit-base", 0, &err), -EBUSY);
    assert_int_equal(ops->remove(p, "kit-ctr", 0, &err), 0);
    assert_int_equal(ops->remove(p, "sha256:kit-base", 0, &err), 0);
    assert_int_equal(ops->remove(p, "sha256:kit-base", 0, &err), -ENOENT);
}

static void test_kit_storage_errors(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    berth_mount_list_t *m = NULL;
    berth_err_t err = { 0 };
    void *p = kit.drv->priv;

    assert_int_equal(ops->prepare(p, "kit-orphan", "sha256:kit-absent", NULL, 0, &m, &err),
                     -ENOENT);
    assert_null(m);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(ops->prepare(p, "kit-dup", NULL, NULL, 0, &m, &err), 0);
    berth_mount_list_free(m);
    m = NULL;
    assert_int_equal(ops->prepare(p, "kit-dup", NULL, NULL, 0, &m, &err), -EEXIST);
    assert_null(m);
    assert_int_equal(ops->commit(p, "sha256:kit-x", "kit-absent", 0, &err), -ENOENT);
    assert_int_equal(ops->mounts(p, "kit-absent", 0, &m, &err), -ENOENT);
    assert_int_equal(ops->remove(p, "kit-dup", 0, &err), 0);
}

static int count_snap(const char *name, const berth_snapshot_info_t *info, void *ud)
{
    if (strncmp(name, "kit-walk-", 9) == 0)
        (*(int *)ud)++;
    return 0;
}

static int stop_walk(const char *name, const berth_snapshot_info_t *info, void *ud)
{
    return 42;
}

static void test_kit_storage_walk(void **state)
{
    const berth_storage_ops_t *ops = OPS(berth_storage_ops_t);
    berth_err_t err = { 0 };
    void *p = kit.drv->priv;
    int n = 0;

    for (int i = 0; i < 3; i++) {
        char key[32];
        berth_mount_list_t *m = NULL;
        snprintf(key, sizeof(key), "kit-walk-%d", i);
        assert_int_equal(ops->prepare(p, key, NULL, NULL, 0, &m, &err), 0);
        berth_mount_list_free(m);
    }
    assert_int_equal(ops->walk(p, 0, count_snap, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ops->walk(p, 0, stop_walk, NULL, &err), 42);
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof(key), "kit-walk-%d", i);
        assert_int_equal(ops->remove(p, key, 0, &err), 0);
    }
}

/* ---- network ---- */

static void test_kit_network_attach_detach(void **state)
{
    const berth_network_ops_t *ops = OPS(berth_network_ops_t);
    berth_network_spec_t net = {
        .struct_size = sizeof(net),
        .id = "0000000000000000000000000000000000000000000000000000000000000001",
        .name = "kit",
        .config_json = "{}",
    };
    berth_net_attach_t attach = { .struct_size = sizeof(attach), .type = BERTH_NET_ATTACH_NONE };
    berth_endpoint_spec_t ep = {
        .struct_size = sizeof(ep),
        .network = &net,
        .container_id = net.id,
        .ifname = "eth0",
        .attach = &attach,
        .request_json = "{}",
    };
    berth_blob_t *state_blob = NULL, *result = NULL;
    berth_err_t err = { 0 };
    json_error_t jerr;
    json_t *parsed;

    assert_int_equal(ops->network_create(kit.drv->priv, &net, 0, &state_blob, &err), 0);
    if (state_blob) {
        parsed = json_loads(state_blob->data, 0, &jerr);
        assert_non_null(parsed);
        json_decref(parsed);
        berth_blob_release(state_blob);
    }
    assert_int_equal(ops->endpoint_attach(kit.drv->priv, &ep, 0, &result, &err), 0);
    assert_non_null(result);
    /* Results are CNI-format JSON the core stores and hands back. */
    parsed = json_loads(result->data, 0, &jerr);
    assert_non_null(parsed);
    assert_true(json_is_string(json_object_get(parsed, "cniVersion")));
    json_decref(parsed);
    assert_int_equal(strlen(result->data), result->len);
    assert_int_equal(ops->endpoint_detach(kit.drv->priv, &ep, result->data, 0, &err), 0);
    /* Detach must also work when the result was lost. */
    assert_int_equal(ops->endpoint_detach(kit.drv->priv, &ep, NULL, 0, &err), 0);
    berth_blob_release(result);
    assert_int_equal(ops->network_delete(kit.drv->priv, &net, 0, &err), 0);
    /* Deleting what is already gone is not an error. */
    assert_int_equal(ops->network_delete(kit.drv->priv, &net, 0, &err), 0);
}

/* ---- image ---- */

static void test_kit_image_resolve_and_fetch(void **state)
{
    const berth_image_ops_t *ops = OPS(berth_image_ops_t);
    const char *loc_env = getenv("BERTH_TESTKIT_IMAGE_LOCATION");
    berth_image_location_t loc = {
        .struct_size = sizeof(loc),
        .location = loc_env ? loc_env : "fake",
        .options_json = "{}",
    };
    berth_descriptor_t desc = { .struct_size = sizeof(desc) };
    berth_stream_t *s = NULL;
    berth_err_t err = { 0 };
    void *session = NULL;
    char buf[4096];
    int64_t total = 0, n;

    assert_int_equal(ops->match(kit.drv->priv, loc.location, 0), 0);
    assert_int_equal(ops->open(kit.drv->priv, &loc, 0, &session, &err), 0);
    assert_int_equal(ops->resolve(kit.drv->priv, session, NULL, 0, &desc, &err), 0);
    assert_true(strlen(desc.media_type) > 0);
    assert_true(strncmp(desc.digest, "sha256:", 7) == 0);
    assert_int_equal(ops->fetch(kit.drv->priv, session, &desc, 0, 0, &s, &err), 0);
    while ((n = s->read(s, buf, sizeof(buf), &err)) > 0)
        total += n;
    assert_int_equal(n, 0);
    if (desc.size >= 0)
        assert_int_equal(total, desc.size);
    s->close(s);
    /* A reference the source does not hold is -ENOENT, with a reason. */
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(kit.drv->priv, session, "kit/absent:none", 0, &desc, &err),
                     -ENOENT);
    assert_true(strlen(err.msg) > 0);
    ops->close(kit.drv->priv, session);
}

/* ---- isolation ---- */

static void make_id(char id[65], int n)
{
    snprintf(id, 65, "%064x", n);
}

static void test_kit_isolation_sandbox(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    char id[65], dir[PATH_MAX];
    berth_sandbox_spec_t spec = { .struct_size = sizeof(spec), .config_json = "{}" };
    berth_net_attach_t attach = { .struct_size = sizeof(attach) };
    berth_err_t err = { 0 };
    void *sb = NULL;

    make_id(id, 1);
    PJOIN(dir, "%s/sandbox-1", kit.scratch);
    assert_int_equal(berth__mkdir_p(dir, 0700, NULL), 0);
    spec.id = id;
    spec.state_dir = dir;
    assert_int_equal(ops->sandbox_create(kit.drv->priv, &spec, 0, &sb, &err), 0);
    assert_non_null(sb);
    assert_int_equal(ops->sandbox_network(kit.drv->priv, sb, 0, &attach, &err), 0);
    assert_true(attach.type <= BERTH_NET_ATTACH_TAP);
    if (attach.type != BERTH_NET_ATTACH_NONE)
        assert_true(strlen(attach.path) > 0);
    assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, 0, &err), 0);
}

static void test_kit_isolation_container_lifecycle(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    char id[65], sdir[PATH_MAX], cdir[PATH_MAX], spec_json[PATH_MAX + 256];
    berth_sandbox_spec_t sspec = { .struct_size = sizeof(sspec), .config_json = "{}" };
    berth_mount_t root = { .struct_size = sizeof(root), .type = "bind", .target = "" };
    berth_mount_list_t rootfs = { .struct_size = sizeof(rootfs), .n_mounts = 1, .mounts = &root };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio), .in = -1, .out = -1, .err = -1 };
    berth_container_spec_t cspec = { .struct_size = sizeof(cspec) };
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    void *sb = NULL, *ctr = NULL, *proc;

    make_id(id, 2);
    PJOIN(sdir, "%s/sandbox-2", kit.scratch);
    PJOIN(cdir, "%s/container-2", kit.scratch);
    assert_int_equal(berth__mkdir_p(sdir, 0700, NULL), 0);
    assert_int_equal(berth__mkdir_p(cdir, 0700, NULL), 0);
    root.source = kit.rootfs;
    /* A process that runs until signalled, as `sleep` in any rootfs would. */
    snprintf(spec_json, sizeof(spec_json),
             "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"/bin/sleep\",\"1000\"],"
             "\"cwd\":\"/\",\"env\":[\"PATH=/bin:/usr/bin\"]},\"root\":{\"path\":\"%s\"}}",
             kit.rootfs);
    sspec.id = id;
    sspec.state_dir = sdir;
    cspec.id = id;
    cspec.state_dir = cdir;
    cspec.oci_spec_json = spec_json;
    cspec.rootfs = &rootfs;
    cspec.stdio = &stdio;

    assert_int_equal(ops->sandbox_create(kit.drv->priv, &sspec, 0, &sb, &err), 0);
    assert_int_equal(ops->container_create(kit.drv->priv, sb, &cspec, 0, &ctr, &err), 0);
    assert_int_equal(ops->container_start(kit.drv->priv, ctr, 0, &err), 0);
    proc = ops->container_init_process(kit.drv->priv, ctr);
    assert_non_null(proc);
    assert_int_equal(ops->process_wait(kit.drv->priv, proc, BERTH_WAIT_NOHANG, &st, &err), -EAGAIN);
    if (BERTH_OPS_HAS(ops, berth_isolation_ops_t, container_pause) &&
        (kit.drv->caps & BERTH_ISOLATION_CAP_PAUSE)) {
        assert_int_equal(ops->container_pause(kit.drv->priv, ctr, 0, &err), 0);
        assert_int_equal(ops->container_resume(kit.drv->priv, ctr, 0, &err), 0);
    }
    assert_int_equal(ops->process_signal(kit.drv->priv, proc, SIGKILL, 0, &err), 0);
    /* The kill lands asynchronously in real drivers: a blocking wait collects it. */
    assert_int_equal(ops->process_wait(kit.drv->priv, proc, 0, &st, &err), 0);
    assert_int_equal(st.signal, SIGKILL);
    assert_int_equal(st.exit_code, 128 + SIGKILL);
    assert_int_equal(ops->container_delete(kit.drv->priv, ctr, 0, &err), 0);
    assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, 0, &err), 0);
}

/* ---- isolation, with a real rootfs: what a process sees and returns ---- */

/*
 * Create and start a container running @args (a JSON array text) with
 * stdout on a pipe; returns the read end in *ret_out and the handles.
 */
static void start_with_pipe(const char *args, int n, void **ret_sb, void **ret_ctr, int *ret_out)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    char id[65], sdir[PATH_MAX], cdir[PATH_MAX], spec_json[2 * PATH_MAX];
    berth_sandbox_spec_t sspec = { .struct_size = sizeof(sspec), .config_json = "{}" };
    static berth_mount_t root = { .struct_size = sizeof(root), .type = "bind", .target = "" };
    static const char *const rbind[] = { "rbind" };
    berth_mount_list_t rootfs = { .struct_size = sizeof(rootfs), .n_mounts = 1, .mounts = &root };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio), .in = -1, .err = -1 };
    berth_container_spec_t cspec = { .struct_size = sizeof(cspec) };
    berth_err_t err = { 0 };
    int p[2];

    make_id(id, n);
    PJOIN(sdir, "%s/sandbox-%d", kit.scratch, n);
    PJOIN(cdir, "%s/container-%d", kit.scratch, n);
    assert_int_equal(berth__mkdir_p(sdir, 0700, NULL), 0);
    assert_int_equal(berth__mkdir_p(cdir, 0700, NULL), 0);
    root.source = kit.rootfs;
    root.options = rbind;
    root.n_options = 1;
    PJOIN(spec_json,
          "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":%s,\"cwd\":\"/\","
          "\"env\":[\"PATH=/bin:/usr/bin\"]},\"root\":{\"path\":\"%s\"},"
          "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"}],"
          "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}]}}",
          args, kit.rootfs);
    assert_int_equal(pipe(p), 0);
    stdio.out = p[1];
    sspec.id = id;
    sspec.state_dir = sdir;
    cspec.id = id;
    cspec.state_dir = cdir;
    cspec.oci_spec_json = spec_json;
    cspec.rootfs = &rootfs;
    cspec.stdio = &stdio;
    assert_int_equal(ops->sandbox_create(kit.drv->priv, &sspec, 0, ret_sb, &err), 0);
    if (ops->container_create(kit.drv->priv, *ret_sb, &cspec, 0, ret_ctr, &err) != 0)
        fail_msg("container_create: %s", err.msg);
    /* The driver duplicated what it needed: our write end must not keep the pipe open. */
    close(p[1]);
    if (ops->container_start(kit.drv->priv, *ret_ctr, 0, &err) != 0)
        fail_msg("container_start: %s", err.msg);
    *ret_out = p[0];
}

static void finish_container(void *sb, void *ctr)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    berth_err_t err = { 0 };
    assert_int_equal(ops->container_delete(kit.drv->priv, ctr, 0, &err), 0);
    assert_int_equal(ops->sandbox_destroy(kit.drv->priv, sb, 0, &err), 0);
}

static void test_kit_isolation_stdio_and_exit_code(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_err_t err = { 0 };
    void *sb = NULL, *ctr = NULL;
    char buf[256] = "";
    ssize_t n, got = 0;
    int out;

    if (!kit.rootfs_given) {
        print_message("skipped: needs --rootfs DIR (a driver that runs real processes)\n");
        skip();
    }
    start_with_pipe("[\"/bin/sh\",\"-c\",\"echo conformant; exit 3\"]", 3, &sb, &ctr, &out);
    while ((n = read(out, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += n;
    close(out);
    assert_string_equal(buf, "conformant\n");
    assert_int_equal(ops->process_wait(kit.drv->priv,
                                       ops->container_init_process(kit.drv->priv, ctr), 0, &st,
                                       &err),
                     0);
    assert_int_equal(st.exit_code, 3);
    assert_int_equal(st.signal, 0);
    finish_container(sb, ctr);
}

static void test_kit_isolation_exec(void **state)
{
    const berth_isolation_ops_t *ops = OPS(berth_isolation_ops_t);
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio), .in = -1, .err = -1 };
    berth_process_spec_t ps = { .struct_size = sizeof(ps) };
    berth_err_t err = { 0 };
    void *sb = NULL, *ctr = NULL, *proc = NULL;
    char buf[256] = "";
    ssize_t n, got = 0;
    int out, p[2];

    if (!kit.rootfs_given || !(kit.drv->caps & BERTH_ISOLATION_CAP_EXEC) ||
        !BERTH_OPS_HAS(ops, berth_isolation_ops_t, process_exec)) {
        print_message("skipped: needs --rootfs DIR and a driver with the exec capability\n");
        skip();
    }
    start_with_pipe("[\"/bin/sleep\",\"1000\"]", 4, &sb, &ctr, &out);
    close(out);
    assert_int_equal(pipe(p), 0);
    stdio.out = p[1];
    ps.id = "kit-exec";
    ps.process_json = "{\"args\":[\"/bin/sh\",\"-c\",\"echo from-exec; exit 4\"],\"cwd\":\"/\","
                      "\"env\":[\"PATH=/bin\"]}";
    ps.stdio = &stdio;
    if (ops->process_exec(kit.drv->priv, ctr, &ps, 0, &proc, &err) != 0)
        fail_msg("process_exec: %s", err.msg);
    close(p[1]);
    while ((n = read(p[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += n;
    close(p[0]);
    assert_string_equal(buf, "from-exec\n");
    assert_int_equal(ops->process_wait(kit.drv->priv, proc, 0, &st, &err), 0);
    assert_int_equal(st.exit_code, 4);
    if (BERTH_OPS_HAS(ops, berth_isolation_ops_t, process_release))
        ops->process_release(kit.drv->priv, proc);
    /* Deleting with FORCE ends what still runs (the sleep). */
    assert_int_equal(ops->process_signal(kit.drv->priv,
                                         ops->container_init_process(kit.drv->priv, ctr), SIGKILL,
                                         0, &err),
                     0);
    assert_int_equal(ops->process_wait(kit.drv->priv,
                                       ops->container_init_process(kit.drv->priv, ctr), 0, &st,
                                       &err),
                     0);
    finish_container(sb, ctr);
}

static int run_suites(void)
{
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_kit_descriptor_is_sane),
        cmocka_unit_test(test_kit_probe_is_consistent),
    };
    const struct CMUnitTest storage[] = {
        cmocka_unit_test(test_kit_storage_snapshot_lifecycle),
        cmocka_unit_test(test_kit_storage_errors),
        cmocka_unit_test(test_kit_storage_walk),
    };
    const struct CMUnitTest network[] = {
        cmocka_unit_test(test_kit_network_attach_detach),
    };
    const struct CMUnitTest image[] = {
        cmocka_unit_test(test_kit_image_resolve_and_fetch),
    };
    const struct CMUnitTest isolation[] = {
        cmocka_unit_test(test_kit_isolation_sandbox),
        cmocka_unit_test(test_kit_isolation_container_lifecycle),
        cmocka_unit_test(test_kit_isolation_stdio_and_exit_code),
        cmocka_unit_test(test_kit_isolation_exec),
    };
    int failed = cmocka_run_group_tests_name("common", common, NULL, NULL);

    switch (kit.drv->kind) {
    case BERTH_KIND_STORAGE:
        failed += cmocka_run_group_tests_name("storage", storage, NULL, NULL);
        break;
    case BERTH_KIND_NETWORK:
        failed += cmocka_run_group_tests_name("network", network, NULL, NULL);
        break;
    case BERTH_KIND_IMAGE:
        failed += cmocka_run_group_tests_name("image", image, NULL, NULL);
        break;
    case BERTH_KIND_ISOLATION:
        failed += cmocka_run_group_tests_name("isolation", isolation, NULL, NULL);
        break;
    }
    return failed;
}

static void usage(FILE *out)
{
    fputs("Usage: berth-testkit [--rootfs DIR] MODULE\n"
          "\n"
          "Load a berth driver module with berth's loader and run the conformance\n"
          "suite for its kind. Exit status: the number of failed tests (2 when the\n"
          "module does not load).\n"
          "\n"
          "  --rootfs DIR  root filesystem for isolation drivers' containers\n"
          "                (needs /bin/sleep); default: an empty scratch dir\n"
          "  -h, --help    show this help\n"
          "\n"
          "Image sources are opened at $BERTH_TESTKIT_IMAGE_LOCATION (default \"fake\").\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "rootfs", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    berth_plugin_env_t env = { 0 };
    berth_err_t err = { 0 };
    char cmd[PATH_MAX + 16];
    int c, failed;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            kit.rootfs = optarg;
            kit.rootfs_given = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    snprintf(kit.scratch, sizeof(kit.scratch), "%s/berth-testkit-XXXXXX", base);
    if (!mkdtemp(kit.scratch)) {
        fprintf(stderr, "berth-testkit: mkdtemp %s: %s\n", kit.scratch, strerror(errno));
        return 2;
    }
    if (!kit.rootfs)
        kit.rootfs = kit.scratch;
    env.root = kit.scratch;
    env.runroot = kit.scratch;
    if (berth__registry_new(&env, &kit.reg, &err) < 0 ||
        berth__registry_load_file(kit.reg, argv[optind], &err) < 0) {
        fprintf(stderr, "berth-testkit: %s\n", err.msg);
        berth__registry_free(kit.reg);
        return 2;
    }
    kit.drv = berth__registry_driver(kit.reg, 0);
    printf("berth-testkit: %s driver '%s' %s from %s\n", berth__kind_name(kit.drv->kind),
           kit.drv->desc->name, kit.drv->desc->version, argv[optind]);
    failed = run_suites();
    berth__registry_free(kit.reg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", kit.scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "berth-testkit: could not remove %s\n", kit.scratch);
    return failed;
}
