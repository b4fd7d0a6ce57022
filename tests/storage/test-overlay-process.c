/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The overlay storage driver and the process isolation driver together, for
 * real: a busybox image as overlay layers (tests/fixtures/make-busybox-rootfs.sh
 * unpacked into the first layer's diff dir), a container on its rootfs, and
 * what the container sees and writes. Both drivers are loaded with berth's
 * loader (the engine does not run images through storage yet, so this is
 * the drivers' own path, not the CLI's).
 *
 * The image has 132 layers: more lower dirs than mount(2)'s one page of
 * options can name, so the process driver must mount with the new mount
 * API. With fsopen() failing ENOSYS (a seccomp filter, as on a kernel
 * without the new API), a small image still mounts through mount(2) and the
 * big one fails with a message that says why.
 *
 *   test-overlay-process OVERLAY.so PROCESS.so   (root; MAKE_ROOTFS=script)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <seccomp.h>

#include <berth/sdk.h>

#include "plugins.h"

#define PJOIN(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

#define N_LAYERS 132
#define SMALL    5 /* the layer a small image ends at */

static char scratch[PATH_MAX];
static berth_registry_t *reg;
static berth_driver_t *ovl, *proc;
static int counter;

#define SOPS ((const berth_storage_ops_t *)ovl->ops)
#define IOPS ((const berth_isolation_ops_t *)proc->ops)

static void layer_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "sha256:overlay-process-%03d", i);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;
    PJOIN(path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* The image: busybox, then /etc/motd and a whiteout for /bin/false, then a file per layer. */
static void build_image(void)
{
    const char *make_rootfs = getenv("MAKE_ROOTFS");
    char parent[64] = "", name[64], cmd[2 * PATH_MAX], path[PATH_MAX], text[32];
    berth_err_t err = { 0 };

    assert_non_null(make_rootfs);
    for (int i = 1; i <= N_LAYERS; i++) {
        berth_mount_list_t *m = NULL;
        const char *diff;
        if (SOPS->prepare(ovl->priv, "overlay-process-active", parent[0] ? parent : NULL, NULL, 0,
                          &m, &err) != 0)
            fail_msg("prepare layer %d: %s", i, err.msg);
        berth_mount_list_free(m);
        diff = SOPS->diff_dir(ovl->priv, "overlay-process-active");
        assert_non_null(diff);
        if (i == 1) {
            PJOIN(cmd, "sh '%s' '%s' >/dev/null", make_rootfs, diff);
            assert_int_equal(system(cmd), 0);
        } else if (i == 2) {
            PJOIN(path, "%s/etc", diff);
            assert_int_equal(mkdir(path, 0755), 0);
            write_file(diff, "etc/motd", "from layer 2\n");
            PJOIN(path, "%s/bin", diff);
            assert_int_equal(mkdir(path, 0755), 0);
            PJOIN(path, "%s/bin/false", diff);
            assert_int_equal(mknod(path, S_IFCHR | 0, makedev(0, 0)), 0);
        } else {
            PJOIN(path, "%s/layers", diff);
            assert_int_equal(mkdir(path, 0755), 0);
            PJOIN(path, "layers/%03d", i);
            snprintf(text, sizeof(text), "%d\n", i);
            write_file(diff, path, text);
        }
        layer_name(name, sizeof(name), i);
        if (SOPS->commit(ovl->priv, name, "overlay-process-active", 0, &err) != 0)
            fail_msg("commit layer %d: %s", i, err.msg);
        snprintf(parent, sizeof(parent), "%s", name);
    }
}

static int group_setup(void **state)
{
    build_image();
    return 0;
}

static int group_teardown(void **state)
{
    char name[64], cmd[PATH_MAX + 16];
    for (int i = N_LAYERS; i >= 1 && reg; i--) {
        layer_name(name, sizeof(name), i);
        SOPS->remove(ovl->priv, name, 0, NULL);
    }
    berth__registry_free(reg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    return system(cmd) == 0 ? 0 : -1;
}

/*
 * Run `sh -c @script` in a container on a fresh snapshot @key of layer
 * @top, collecting stdout into @out. Returns 0 with the exit code in
 * *ret_code, or the failing op's code with its message in @err.
 */
static int run_on(const char *key, int top, const char *script, char *out, size_t outlen,
                  int *ret_code, berth_err_t *err)
{
    char id[65], sdir[PATH_MAX], cdir[PATH_MAX], spec[4096], parent[64];
    berth_sandbox_spec_t ss = { .struct_size = sizeof(ss),
                                .config_json = "{\"network\":\"none\"}" };
    berth_container_spec_t cs = { .struct_size = sizeof(cs) };
    berth_stdio_t stdio = { .struct_size = sizeof(stdio), .in = -1, .err = -1, .tty_master = -1 };
    berth_exit_status_t st = { .struct_size = sizeof(st) };
    berth_mount_list_t *rootfs = NULL;
    void *sb = NULL, *ctr = NULL;
    size_t got = 0;
    ssize_t n;
    int p[2], r;

    layer_name(parent, sizeof(parent), top);
    if ((r = SOPS->prepare(ovl->priv, key, parent, NULL, 0, &rootfs, err)) != 0)
        return r;
    snprintf(id, sizeof(id), "%056x%08x", (unsigned)getpid(), (unsigned)++counter);
    PJOIN(sdir, "%s/s%d", scratch, counter);
    PJOIN(cdir, "%s/c%d", scratch, counter);
    assert_int_equal(mkdir(sdir, 0711), 0);
    assert_int_equal(mkdir(cdir, 0711), 0);
    PJOIN(spec,
          "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"/bin/sh\",\"-c\",\"%s\"],"
          "\"cwd\":\"/\",\"env\":[\"PATH=/bin\"]},"
          "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"}],"
          "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}]}}",
          script);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    stdio.out = p[1];
    ss.id = id;
    ss.state_dir = sdir;
    cs.id = id;
    cs.state_dir = cdir;
    cs.oci_spec_json = spec;
    cs.rootfs = rootfs;
    cs.stdio = &stdio;
    assert_int_equal(IOPS->sandbox_create(proc->priv, &ss, 0, &sb, err), 0);
    r = IOPS->container_create(proc->priv, sb, &cs, 0, &ctr, err);
    close(p[1]);
    if (r == 0)
        r = IOPS->container_start(proc->priv, ctr, 0, err);
    if (r == 0) {
        while (got + 1 < outlen && (n = read(p[0], out + got, outlen - 1 - got)) > 0)
            got += (size_t)n;
        out[got] = '\0';
        r = IOPS->process_wait(proc->priv, IOPS->container_init_process(proc->priv, ctr), 0, &st,
                               err);
        *ret_code = st.exit_code;
    }
    close(p[0]);
    if (ctr)
        IOPS->container_delete(proc->priv, ctr, BERTH_DELETE_FORCE, NULL);
    IOPS->sandbox_destroy(proc->priv, sb, 0, NULL);
    berth_mount_list_free(rootfs);
    return r;
}

static const char *const script = "cat /etc/motd /layers/003; "
                                  "[ -e /layers/%03d ] && cat /layers/%03d; "
                                  "[ -e /bin/false ] && echo false-present || echo false-hidden; "
                                  "echo written > /written; /bin/busybox true && echo busybox-ran";

static void check_container(int top, const char *key)
{
    char text[1024], out[1024], expect[256], path[PATH_MAX];
    berth_err_t err = { 0 };
    const char *diff;
    int code = -1, r;

    PJOIN(text, script, top, top);
    r = run_on(key, top, text, out, sizeof(out), &code, &err);
    if (r != 0)
        fail_msg("container on %d layers: %d (%s)", top, r, err.msg);
    PJOIN(expect, "from layer 2\n3\n%d\nfalse-hidden\nbusybox-ran\n", top);
    assert_string_equal(out, expect);
    assert_int_equal(code, 0);
    /* The container's write went to its own upper dir, not into a layer. */
    diff = SOPS->diff_dir(ovl->priv, key);
    assert_non_null(diff);
    PJOIN(path, "%s/written", diff);
    assert_int_equal(access(path, F_OK), 0);
    PJOIN(path,
          "%s/root/drivers/storage/overlay/snapshots/sha256+overlay-process-%03d/diff/written",
          scratch, top);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(SOPS->remove(ovl->priv, key, 0, &err), 0);
}

static void test_container_on_small_image(void **state)
{
    check_container(SMALL, "overlay-process-small");
}

static void test_container_on_132_layers(void **state)
{
    check_container(N_LAYERS, "overlay-process-big");
}

/* In a child whose fsopen() fails ENOSYS: what a kernel without the new mount API does. */
static int without_new_mount_api(void)
{
    char out[1024], text[1024];
    berth_err_t err = { 0 };
    scmp_filter_ctx ctx;
    int code = -1, r;

    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx || seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(fsopen), 0) < 0 ||
        seccomp_load(ctx) < 0) {
        fprintf(stderr, "seccomp filter failed\n");
        return 1;
    }
    seccomp_release(ctx);
    snprintf(text, sizeof(text), script, SMALL, SMALL);
    r = run_on("overlay-process-legacy", SMALL, text, out, sizeof(out), &code, &err);
    if (r != 0 || code != 0 || !strstr(out, "false-hidden")) {
        fprintf(stderr, "small image through mount(2): %d (%s), exit %d, out \"%s\"\n", r, err.msg,
                code, out);
        return 1;
    }
    SOPS->remove(ovl->priv, "overlay-process-legacy", 0, NULL);
    memset(&err, 0, sizeof(err));
    r = run_on("overlay-process-legacy", N_LAYERS, "true", out, sizeof(out), &code, &err);
    SOPS->remove(ovl->priv, "overlay-process-legacy", 0, NULL);
    snprintf(text, sizeof(text), "%d layers do not fit the mount options of this kernel", N_LAYERS);
    if (r == 0 || !strstr(err.msg, text)) {
        fprintf(stderr, "big image without the new API: %d (%s)\n", r, err.msg);
        return 1;
    }
    printf("without fsopen: %s\n", err.msg);
    fflush(stdout);
    return 0;
}

static void test_fallback_without_new_mount_api(void **state)
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(without_new_mount_api());
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Load both drivers into a scratch root; 77 (skip) when overlay can't work here. */
static int load(const char *overlay_so, const char *process_so)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    static char root[PATH_MAX];
    berth_plugin_env_t env = { 0 };
    berth_err_t err = { 0 };
    uint64_t caps;

    snprintf(scratch, sizeof(scratch), "%s/berth-ovl-proc-XXXXXX", base);
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "mkdtemp %s: %s\n", scratch, strerror(errno));
        return 1;
    }
    if ((size_t)snprintf(root, sizeof(root) - 8, "%s", scratch) >= sizeof(root) - 8)
        return 1;
    strcat(root, "/root");
    env.root = root;
    env.runroot = root;
    if (berth__registry_new(&env, &reg, &err) < 0 ||
        berth__registry_load_file(reg, overlay_so, &err) < 0 ||
        berth__registry_load_file(reg, process_so, &err) < 0) {
        fprintf(stderr, "loading the drivers: %s\n", err.msg);
        return 1;
    }
    ovl = berth__registry_find(reg, BERTH_KIND_STORAGE, "overlay");
    proc = berth__registry_find(reg, BERTH_KIND_ISOLATION, "process");
    if (!ovl || !proc) {
        fprintf(stderr, "the overlay or process driver did not load\n");
        return 1;
    }
    if (SOPS->probe(ovl->priv, 0, &caps, &err) != 0) {
        printf("skipped: %s\n", err.msg);
        return 77;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_on_small_image),
        cmocka_unit_test(test_container_on_132_layers),
        cmocka_unit_test(test_fallback_without_new_mount_api),
    };
    int r;

    if (argc != 3) {
        fprintf(stderr, "usage: %s OVERLAY.so PROCESS.so\n", argv[0]);
        return 2;
    }
    if (geteuid() != 0) {
        printf("skipped: mounting overlays and running containers need root\n");
        return 77;
    }
    r = load(argv[1], argv[2]);
    if (r == 0)
        return cmocka_run_group_tests_name("overlay-process", tests, group_setup, group_teardown);
    group_teardown(NULL);
    return r;
}
