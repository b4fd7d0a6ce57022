/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loader tests against real shared objects: every refusal reason (one broken
 * fixture module each), the process still working afterwards, the host API a
 * driver sees, every in-tree plugin loading, and the same through the
 * public engine API.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <berth/engine.h>
#include <berth/sdk.h>

#include "engine-internal.h"
#include "plugins.h"
#include "util.h"

/* snprintf into a fixed buffer, failing the test instead of truncating. */
#define PJOIN(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static const char *fixture_dir;
static const char *built_dir;

struct tmp {
    char dir[PATH_MAX];
};

static void rm_rf(const char *path)
{
    char cmd[PATH_MAX + 16];
    PJOIN(cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(t->dir, sizeof(t->dir), "%s/berth-loader-XXXXXX", base);
    assert_non_null(mkdtemp(t->dir));
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    rm_rf(t->dir);
    free(t);
    return 0;
}

/* Put fixture module @name into @dir as @as: a symlink, or a copy (a distinct file). */
static void add_fixture(const char *dir, const char *name, const char *as, int copy)
{
    char src[PATH_MAX], dst[PATH_MAX], cmd[3 * PATH_MAX];
    PJOIN(src, "%s/fixture-%s.so", fixture_dir, name);
    PJOIN(dst, "%s/%s", dir, as);
    if (copy) {
        PJOIN(cmd, "cp '%s' '%s'", src, dst);
        assert_int_equal(system(cmd), 0);
    } else {
        assert_int_equal(symlink(src, dst), 0);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *reason_for(berth_registry_t *reg, const char *basename)
{
    for (size_t i = 0; i < berth__registry_refused_count(reg); i++) {
        const berth_refusal_t *r = berth__registry_refused(reg, i);
        const char *slash = strrchr(r->path, '/');
        if (strcmp(slash ? slash + 1 : r->path, basename) == 0)
            return r->reason;
    }
    return NULL;
}

static void assert_reason(berth_registry_t *reg, const char *file, const char *needle)
{
    const char *reason = reason_for(reg, file);
    if (!reason)
        fail_msg("%s was not refused", file);
    if (!strstr(reason, needle))
        fail_msg("%s refused with '%s', expected it to mention '%s'", file, reason, needle);
    /* Reasons are one line each: they are printed as such. */
    assert_null(strchr(reason, '\n'));
}

static void test_loader_refuses_each_bad_module_and_carries_on(void **state)
{
    struct tmp *t = *state;
    berth_registry_t *reg = NULL;
    char *dirs[] = { t->dir, NULL };
    char path[PATH_MAX];
    berth_plugin_env_t env = { .root = t->dir, .runroot = t->dir };

    add_fixture(t->dir, "abi-major", "abi-major.so", 0);
    add_fixture(t->dir, "abi-minor", "abi-minor.so", 0);
    add_fixture(t->dir, "kind", "kind.so", 0);
    add_fixture(t->dir, "name", "name.so", 0);
    add_fixture(t->dir, "no-entry", "no-entry.so", 0);
    add_fixture(t->dir, "null-desc", "null-desc.so", 0);
    add_fixture(t->dir, "init-fail", "init-fail.so", 0);
    add_fixture(t->dir, "small-ops", "small-ops.so", 0);
    add_fixture(t->dir, "missing-op", "missing-op.so", 0);
    add_fixture(t->dir, "good", "a-good.so", 0);
    add_fixture(t->dir, "good", "z-duplicate.so", 1);
    PJOIN(path, "%s/garbage.so", t->dir);
    write_file(path, "this is not an ELF object\n");
    /* Files without the module extension are not modules at all. */
    PJOIN(path, "%s/README.txt", t->dir);
    write_file(path, "ignored\n");

    assert_int_equal(berth__registry_new(&env, &reg, NULL), 0);
    assert_int_equal(berth__registry_load_dirs(reg, dirs, NULL), 0);

    char want[128];
    snprintf(want, sizeof(want), "built for driver ABI 2.%u; this berth implements ABI 1.%u",
             BERTH_ABI_MINOR, BERTH_ABI_MINOR);
    assert_reason(reg, "abi-major.so", want);
    snprintf(want, sizeof(want), "newer driver ABI 1.%u", BERTH_ABI_MINOR + 1);
    assert_reason(reg, "abi-minor.so", want);
    assert_reason(reg, "kind.so", "unknown driver kind 99");
    assert_reason(reg, "name.so", "invalid driver name");
    assert_reason(reg, "no-entry.so", "no berth_plugin_entry symbol");
    assert_reason(reg, "null-desc.so", "returned no descriptor");
    assert_reason(reg, "init-fail.so", "init failed: fixture: simulated init failure");
    assert_reason(reg, "small-ops.so", "ops struct_size 8 is smaller");
    assert_reason(reg, "missing-op.so", "lacks required op 'sandbox_create'");
    assert_reason(reg, "garbage.so", "not a loadable module");
    assert_reason(reg, "z-duplicate.so", "duplicate isolation driver 'fixture'");
    assert_int_equal(berth__registry_refused_count(reg), 11);
    assert_null(reason_for(reg, "README.txt"));

    /* The one good module loaded and works after all those refusals. */
    assert_int_equal(berth__registry_count(reg), 1);
    {
        berth_driver_t *drv = berth__registry_find(reg, BERTH_KIND_ISOLATION, "fixture");
        const berth_isolation_ops_t *ops;
        berth_sandbox_spec_t spec = { .struct_size = sizeof(spec) };
        void *sb = NULL;
        assert_non_null(drv);
        ops = drv->ops;
        assert_true(BERTH_OPS_HAS(ops, berth_isolation_ops_t, sandbox_create));
        assert_false(BERTH_OPS_HAS(ops, berth_isolation_ops_t, process_exec));
        assert_int_equal(ops->sandbox_create(drv->priv, &spec, 0, &sb, NULL), 0);
        assert_int_equal(ops->sandbox_destroy(drv->priv, sb, 0, NULL), 0);
    }
    berth__registry_free(reg);
}

static void test_loader_load_file_returns_reason(void **state)
{
    struct tmp *t = *state;
    berth_registry_t *reg = NULL;
    berth_err_t err = { 0 };
    char path[PATH_MAX];

    assert_int_equal(berth__registry_new(NULL, &reg, NULL), 0);
    PJOIN(path, "%s/fixture-abi-major.so", fixture_dir);
    assert_int_equal(berth__registry_load_file(reg, path, &err), -EPROTO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "driver ABI 2."));

    PJOIN(path, "%s/does-not-exist.so", t->dir);
    memset(&err, 0, sizeof(err));
    assert_int_equal(berth__registry_load_file(reg, path, &err), -ENOEXEC);
    assert_non_null(strstr(err.msg, "not a loadable module"));

    PJOIN(path, "%s/fixture-init-fail.so", fixture_dir);
    assert_int_equal(berth__registry_load_file(reg, path, &err), -EIO);

    PJOIN(path, "%s/fixture-good.so", fixture_dir);
    assert_int_equal(berth__registry_load_file(reg, path, &err), 0);
    assert_int_equal(berth__registry_load_file(reg, path, &err), -EEXIST);
    assert_int_equal(berth__registry_count(reg), 1);
    assert_int_equal(berth__registry_refused_count(reg), 4);
    berth__registry_free(reg);
}

struct sink {
    int lines;
    char last_source[64];
    char last_msg[1024];
    int events;
    char event_attrs[1024];
};

static void sink_log(void *ud, uint32_t level, const char *source, const char *msg)
{
    struct sink *s = ud;
    s->lines++;
    snprintf(s->last_source, sizeof(s->last_source), "%s", source);
    snprintf(s->last_msg, sizeof(s->last_msg), "%s", msg);
}

static int sink_event(void *ud, const char *type, const char *action, const char *id,
                      const char *attrs, berth_err_t *err)
{
    struct sink *s = ud;
    s->events++;
    snprintf(s->event_attrs, sizeof(s->event_attrs), "%s/%s/%s %s", type, action, id,
             attrs ? attrs : "");
    return 0;
}

static void test_loader_host_api_reaches_driver(void **state)
{
    struct tmp *t = *state;
    berth_registry_t *reg = NULL;
    struct sink s = { 0 };
    json_t *drivers = json_pack("{s:{s:s}}", "hostapi", "greeting", "hi");
    char path[PATH_MAX];
    struct stat st;
    berth_plugin_env_t env = {
        .root = t->dir,
        .runroot = t->dir,
        .drivers_config = drivers,
        .log = sink_log,
        .log_userdata = &s,
        .emit_event = sink_event,
        .event_userdata = &s,
    };

    assert_int_equal(berth__registry_new(&env, &reg, NULL), 0);
    PJOIN(path, "%s/fixture-hostapi.so", fixture_dir);
    assert_int_equal(berth__registry_load_file(reg, path, NULL), 0);

    assert_int_equal(s.lines, 1);
    assert_string_equal(s.last_source, "isolation/hostapi");
    assert_non_null(strstr(s.last_msg, "hello from init"));
    /* A newline in a driver's message can't forge a second line. */
    assert_null(strstr(s.last_msg, "forged"));
    assert_int_equal(s.events, 1);
    assert_non_null(strstr(s.event_attrs, "plugin/init/hostapi"));
    assert_non_null(strstr(s.event_attrs, "\"greeting\":\"hi\""));
    PJOIN(path, "%s/drivers/isolation/hostapi", t->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    berth__registry_free(reg);
    json_decref(drivers);
}

/* Number of module files in @dir. */
static size_t count_modules(const char *dir)
{
    char cmd[PATH_MAX + 64];
    FILE *p;
    int files = 0;

    PJOIN(cmd, "ls '%s' | grep -c '\\.so$'", dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &files), 1);
    pclose(p);
    return (size_t)files;
}

static void test_loader_every_built_plugin_loads(void **state)
{
    berth_registry_t *reg = NULL;
    struct tmp *t = *state;
    berth_plugin_env_t env = { .root = t->dir, .runroot = t->dir };
    char *dirs[] = { (char *)built_dir, NULL };
    size_t files = count_modules(built_dir);

    assert_true(files >= 4);

    assert_int_equal(berth__registry_new(&env, &reg, NULL), 0);
    assert_int_equal(berth__registry_load_dirs(reg, dirs, NULL), 0);
    for (size_t i = 0; i < berth__registry_refused_count(reg); i++)
        print_error("refused %s: %s\n", berth__registry_refused(reg, i)->path,
                    berth__registry_refused(reg, i)->reason);
    assert_int_equal(berth__registry_refused_count(reg), 0);
    assert_int_equal(berth__registry_count(reg), (size_t)files);
    assert_non_null(berth__registry_find(reg, BERTH_KIND_ISOLATION, "fake"));
    assert_non_null(berth__registry_find(reg, BERTH_KIND_STORAGE, "fake"));
    assert_non_null(berth__registry_find(reg, BERTH_KIND_NETWORK, "fake"));
    assert_non_null(berth__registry_find(reg, BERTH_KIND_IMAGE, "fake"));
#ifdef __linux__
    assert_non_null(berth__registry_find(reg, BERTH_KIND_ISOLATION, "process"));
#endif
    berth__registry_free(reg);
}

/*
 * Drivers load on first use: by their conventional file name, one module
 * only, and a later full scan neither loads it twice nor calls it a
 * duplicate. A module named otherwise is found by the engine's fallback scan.
 */
static void test_loader_loads_named_module_only(void **state)
{
    berth_registry_t *reg = NULL;
    struct tmp *t = *state;
    berth_plugin_env_t env = { .root = t->dir, .runroot = t->dir };
    char *dirs[] = { (char *)built_dir, NULL };
    char cfg[PATH_MAX], plugdir[PATH_MAX];
    berth_engine_opts_t opts = { .struct_size = sizeof(opts) };
    berth_engine_t *e = NULL;
    berth_err_t err = { 0 };
    berth_driver_t *d;

    assert_int_equal(berth__registry_new(&env, &reg, NULL), 0);
    d = berth__registry_load_named(reg, dirs, BERTH_KIND_STORAGE, "fake");
    assert_non_null(d);
    assert_int_equal(berth__registry_count(reg), 1);
    /* Asked again: the same driver, nothing more loaded. */
    assert_ptr_equal(berth__registry_load_named(reg, dirs, BERTH_KIND_STORAGE, "fake"), d);
    assert_null(berth__registry_load_named(reg, dirs, BERTH_KIND_STORAGE, "nosuch"));
    assert_null(berth__registry_load_named(reg, dirs, BERTH_KIND_STORAGE, "../x"));
    assert_int_equal(berth__registry_count(reg), 1);
    assert_int_equal(berth__registry_refused_count(reg), 0);
    assert_int_equal(berth__registry_load_dirs(reg, dirs, NULL), 0);
    assert_int_equal(berth__registry_refused_count(reg), 0);
    assert_int_equal(berth__registry_count(reg), count_modules(built_dir));
    berth__registry_free(reg);

    /* Through the engine: nothing loads at open; an oddly named module is still found. */
    PJOIN(cfg, "%s/berth.json", t->dir);
    PJOIN(plugdir, "%s/plugins", t->dir);
    assert_int_equal(mkdir(plugdir, 0700), 0);
    add_fixture(plugdir, "hostapi", "not-by-its-name.so", 0);
    write_file(cfg, "{\"plugin_dirs\": []}");
    opts.flags = BERTH_ENGINE_F_IGNORE_ENV | BERTH_ENGINE_F_NO_STORE;
    opts.config_path = cfg;
    opts.root = t->dir;
    opts.runroot = t->dir;
    opts.plugin_path = plugdir;
    assert_int_equal(berth_engine_open(&opts, &e, &err), 0);
    assert_int_equal(berth__registry_count(berth__engine_loaded(e)), 0);
    assert_non_null(berth__engine_driver(e, BERTH_KIND_ISOLATION, "hostapi"));
    assert_null(berth__engine_driver(e, BERTH_KIND_ISOLATION, "nosuch"));
    assert_int_equal(berth__registry_count(berth__engine_loaded(e)), 1);
    berth_engine_close(e);
}

static void test_loader_through_engine_api(void **state)
{
    struct tmp *t = *state;
    char cfg[PATH_MAX], root[PATH_MAX], run[PATH_MAX], plugdir[PATH_MAX], path_list[2 * PATH_MAX];
    berth_engine_t *e = NULL;
    berth_err_t err = { 0 };
    json_t *plugins = NULL, *info = NULL, *events;
    berth_engine_opts_t opts = { .struct_size = sizeof(opts) };

    PJOIN(cfg, "%s/berth.json", t->dir);
    PJOIN(root, "%s/root", t->dir);
    PJOIN(run, "%s/run", t->dir);
    PJOIN(plugdir, "%s/plugins", t->dir);
    assert_int_equal(mkdir(plugdir, 0700), 0);
    add_fixture(plugdir, "hostapi", "hostapi.so", 0);
    add_fixture(plugdir, "abi-major", "abi-major.so", 0);
    write_file(cfg, "{\"plugin_dirs\": [], \"drivers\": {\"hostapi\": {\"greeting\": \"hi\"}}}");
    /* The built drivers and the fixtures, as BERTH_PLUGIN_PATH would list them. */
    PJOIN(path_list, "%s:%s", built_dir, plugdir);

    opts.flags = BERTH_ENGINE_F_IGNORE_ENV;
    opts.config_path = cfg;
    opts.root = root;
    opts.runroot = run;
    opts.plugin_path = path_list;
    assert_int_equal(berth_engine_open(&opts, &e, &err), 0);
    assert_int_equal(berth_engine_plugins(e, &plugins, &err), 0);
    assert_int_equal(json_array_size(json_object_get(plugins, "refused")), 1);
    /* Every built driver plus the hostapi fixture. */
    assert_int_equal(json_array_size(json_object_get(plugins, "drivers")),
                     count_modules(built_dir) + 1);
    assert_int_equal(berth_engine_info(e, &info, &err), 0);
    /* The hostapi driver's init event went into the store in its own transaction. */
    events = json_object_get(json_object_get(json_object_get(info, "store"), "records"), "events");
    assert_int_equal(json_integer_value(events), 1);
    json_decref(plugins);
    json_decref(info);
    berth_engine_close(e);

    /* A second open of the same root finds the event still there. */
    assert_int_equal(berth_engine_open(&opts, &e, &err), 0);
    assert_int_equal(berth_engine_info(e, &info, &err), 0);
    events = json_object_get(json_object_get(json_object_get(info, "store"), "records"), "events");
    assert_int_equal(json_integer_value(events), 2);
    json_decref(info);
    berth_engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loader_refuses_each_bad_module_and_carries_on,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_loader_load_file_returns_reason, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_loader_host_api_reaches_driver, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_loader_every_built_plugin_loads, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_loader_loads_named_module_only, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_loader_through_engine_api, tmp_setup, tmp_teardown),
    };
    fixture_dir = getenv("FIXTURE_PLUGIN_DIR");
    built_dir = getenv("BUILT_PLUGIN_DIR");
    if (!fixture_dir || !built_dir) {
        fprintf(stderr, "FIXTURE_PLUGIN_DIR and BUILT_PLUGIN_DIR must be set (meson test does)\n");
        return 1;
    }
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
