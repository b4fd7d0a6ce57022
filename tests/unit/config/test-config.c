/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for core/lib/config.c: defaults, the shipped config, golden bad
 * files (tests/fixtures/config/bad/<name>.json with the exact expected
 * message in <name>.err), and precedence between file, environment and
 * overrides.
 *
 * Arguments (from meson): the configured config/berth.json in the build
 * dir, and the fixtures directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "berth-build-config.h"
#include "config.h"
#include "util.h"

static const char *shipped_config;
static const char *fixtures_dir;
static char tmpdir[] = "/tmp/berth-test-config-XXXXXX";

/* The bad fixtures each test covers; test_config_every_bad_fixture_is_covered keeps these lists
 * and the directory in step. */
static const char *const bad_json[] = {
    "json-truncated",       "json-trailing-comma", "json-wrong-literal",    "json-duplicate-key",
    "json-top-level-array", "json-empty",          "json-trailing-garbage", NULL,
};
static const char *const bad_unknown[] = {
    "unknown-top", "unknown-nested", "unknown-deep", "unknown-dotted", NULL,
};
static const char *const bad_types[] = {
    "type-root-integer",
    "type-runroot-null",
    "type-plugin-dirs-string",
    "type-plugin-dirs-item",
    "type-defaults-array",
    "type-storage-boolean",
    "type-log-level-enum",
    "type-log-format-number",
    "type-listeners-string",
    "type-listeners-scheme",
    "type-drivers-array",
    "type-drivers-member",
    NULL,
};
static const char *const bad_values[] = {
    "path-relative-root", "path-relative-plugin-dir", "path-relative-tls", "empty-isolation",
    "empty-runroot",      "tls-missing-for-tcp",      "tls-incomplete",    NULL,
};

static char *read_text(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;

    if (!f)
        fail_msg("open %s: %s", path, strerror(errno));
    buf = malloc(1 << 16);
    assert_non_null(buf);
    len = fread(buf, 1, (1 << 16) - 1, f);
    buf[len] = '\0';
    fclose(f);
    if (ret_len)
        *ret_len = len;
    return buf;
}

static char *fixture(const char *sub, const char *name, const char *ext)
{
    char *p;
    assert_true(asprintf(&p, "%s/%s/%s%s", fixtures_dir, sub, name, ext) > 0);
    return p;
}

/* Write @text to <tmpdir>/<name> and return the path (caller frees). */
static char *write_tmp(const char *name, const char *text)
{
    char *p;
    FILE *f;

    assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
    f = fopen(p, "we");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return p;
}

static void unset_berth_env(void)
{
    unsetenv("BERTH_CONFIG");
    unsetenv("BERTH_ROOT");
    unsetenv("BERTH_RUNROOT");
    unsetenv("BERTH_PLUGIN_PATH");
}

/* Each test starts with no BERTH_* variables, whatever meson's test env set. */
static int setup(void **state)
{
    unset_berth_env();
    return 0;
}

static void assert_strv(char *const *got, const char *const *want)
{
    size_t i = 0;
    for (; want[i]; i++) {
        assert_non_null(got[i]);
        assert_string_equal(got[i], want[i]);
    }
    assert_null(got[i]);
}

static void check_defaults(const berth_config_t *cfg)
{
    assert_string_equal(cfg->root, BERTH_DEFAULT_ROOT);
    assert_string_equal(cfg->runroot, BERTH_DEFAULT_RUNROOT);
    assert_strv(cfg->plugin_dirs, (const char *[]){ BERTH_PLUGINSDIR, NULL });
    assert_string_equal(cfg->default_isolation, "process");
    assert_string_equal(cfg->default_storage, "overlay");
    assert_string_equal(cfg->default_network, "cni");
    assert_int_equal(cfg->log_level, BERTH_LOG_INFO);
    assert_string_equal(cfg->log_format, "text");
    assert_strv(cfg->api_listeners,
                (const char *[]){ "unix://" BERTH_DEFAULT_RUNROOT "/berth.sock", NULL });
    assert_null(cfg->tls_ca);
    assert_null(cfg->tls_cert);
    assert_null(cfg->tls_key);
    assert_true(json_is_object(cfg->drivers));
    assert_int_equal(json_object_size(cfg->drivers), 0);
}

static void test_config_defaults_without_file(void **state)
{
    berth_config_overrides_t ov = { .ignore_env = 1, .no_default_file = 1 };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_null(cfg->path);
    check_defaults(cfg);
    berth__config_free(cfg);

    /* An empty object is the same as no file. */
    assert_int_equal(berth__config_parse("{}", 2, "berth.json", &cfg, &err), 0);
    assert_string_equal(cfg->path, "berth.json");
    check_defaults(cfg);
    berth__config_free(cfg);
}

static void test_config_shipped_file_parses(void **state)
{
    berth_config_overrides_t ov = { .config_path = shipped_config, .ignore_env = 1 };
    _cleanup_json_ json_t *file = NULL, *out = NULL;
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };
    json_error_t jerr;

    if (berth__config_load(&ov, &cfg, &err) < 0)
        fail_msg("%s", err.msg);
    /* The shipped file spells out the built-in defaults: loading it changes nothing. */
    check_defaults(cfg);
    assert_non_null(cfg->path);
    assert_true(cfg->path[0] == '/');

    /* Every key in the file arrives in the config as written. */
    file = json_load_file(shipped_config, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(file);
    out = berth__config_to_json(cfg);
    assert_non_null(out);
    assert_true(json_object_size(file) > 0);
    for (void *it = json_object_iter(file); it; it = json_object_iter_next(file, it)) {
        const char *key = json_object_iter_key(it);

        if (!json_equal(json_object_iter_value(it), json_object_get(out, key)))
            fail_msg("shipped key '%s' differs from the loaded config", key);
    }
    /* No placeholder left unsubstituted. */
    assert_null(
        strchr(json_string_value(json_array_get(json_object_get(file, "plugin_dirs"), 0)), '@'));
    berth__config_free(cfg);
}

static void test_config_full_file_every_key(void **state)
{
    _cleanup_free_ char *path = fixture("good", "full", ".json");
    _cleanup_free_ char *text = read_text(path, NULL);
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };
    json_t *ov;

    if (berth__config_parse(text, strlen(text), "full.json", &cfg, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg->root, "/srv/berth/root");
    assert_string_equal(cfg->runroot, "/run/berth-test");
    /* Paths are normalised: the trailing slash goes. */
    assert_strv(cfg->plugin_dirs,
                (const char *[]){ "/usr/lib/berth/plugins", "/opt/berth/plugins", NULL });
    assert_string_equal(cfg->default_isolation, "hyperv");
    assert_string_equal(cfg->default_storage, "vfs");
    assert_string_equal(cfg->default_network, "none");
    assert_int_equal(cfg->log_level, BERTH_LOG_DEBUG);
    assert_string_equal(cfg->log_format, "json");
    assert_strv(cfg->api_listeners,
                (const char *[]){ "unix:///run/berth-test/api.sock", "tcp://127.0.0.1:2376",
                                  "tcp://[::1]:2376", NULL });
    assert_string_equal(cfg->tls_ca, "/etc/berth/tls/ca.pem");
    assert_string_equal(cfg->tls_cert, "/etc/berth/tls/server.pem");
    assert_string_equal(cfg->tls_key, "/etc/berth/tls/server-key.pem");
    assert_int_equal(json_object_size(cfg->drivers), 2);
    ov = json_object_get(cfg->drivers, "overlay");
    assert_string_equal(json_string_value(json_array_get(json_object_get(ov, "options"), 0)),
                        "metacopy=on");
    assert_true(json_is_object(json_object_get(cfg->drivers, "hyperv")));
    berth__config_free(cfg);
}

/* to_json writes what parse reads: a config survives the round trip unchanged. */
static void test_config_to_json_round_trips(void **state)
{
    static const char *const names[] = { "full", "empty", "partial" };

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(names); i++) {
        _cleanup_free_ char *path = fixture("good", names[i], ".json");
        _cleanup_free_ char *text = read_text(path, NULL);
        _cleanup_free_ char *dumped = NULL;
        _cleanup_json_ json_t *a = NULL, *b = NULL;
        berth_config_t *c1 = NULL, *c2 = NULL;
        berth_err_t err = { 0 };

        if (berth__config_parse(text, strlen(text), names[i], &c1, &err) < 0)
            fail_msg("%s", err.msg);
        a = berth__config_to_json(c1);
        assert_non_null(a);
        dumped = json_dumps(a, JSON_COMPACT);
        assert_non_null(dumped);
        if (berth__config_parse(dumped, strlen(dumped), "dumped", &c2, &err) < 0)
            fail_msg("%s: %s", names[i], err.msg);
        b = berth__config_to_json(c2);
        assert_true(json_equal(a, b));
        /* No api.tls section unless TLS is configured. */
        assert_int_equal(json_object_get(json_object_get(a, "api"), "tls") != NULL,
                         c1->tls_ca != NULL);
        berth__config_free(c1);
        berth__config_free(c2);
    }
}

static void test_config_partial_file_keeps_defaults(void **state)
{
    _cleanup_free_ char *path = fixture("good", "partial", ".json");
    _cleanup_free_ char *text = read_text(path, NULL);
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_int_equal(berth__config_parse(text, strlen(text), "partial.json", &cfg, &err), 0);
    assert_string_equal(cfg->runroot, "/run/berth-partial");
    assert_int_equal(cfg->log_level, BERTH_LOG_WARNING);
    assert_string_equal(cfg->log_format, "text");
    assert_string_equal(cfg->root, BERTH_DEFAULT_ROOT);
    /* No listeners in the file: the default one follows the file's runroot. */
    assert_strv(cfg->api_listeners,
                (const char *[]){ "unix:///run/berth-partial/berth.sock", NULL });
    berth__config_free(cfg);
}

/* Parse bad/<name>.json as "berth.json" and compare with bad/<name>.err, exactly. */
static void check_bad_fixture(const char *name)
{
    _cleanup_free_ char *jpath = fixture("bad", name, ".json");
    _cleanup_free_ char *epath = fixture("bad", name, ".err");
    _cleanup_free_ char *text = NULL, *want = NULL;
    static berth_config_t untouched;
    berth_config_t *cfg = &untouched; /* ret_cfg is written only on success */
    berth_err_t err = { 0 };
    size_t len;
    int r;

    text = read_text(jpath, &len);
    want = read_text(epath, NULL);
    want[strcspn(want, "\n")] = '\0';
    r = berth__config_parse(text, len, "berth.json", &cfg, &err);
    if (r != -EINVAL)
        fail_msg("%s: expected -EINVAL, got %d", name, r);
    assert_ptr_equal(cfg, &untouched);
    assert_int_equal(err.code, -EINVAL);
    if (strcmp(err.msg, want) != 0)
        fail_msg("%s:\n  got:  %s\n  want: %s", name, err.msg, want);
}

static void check_bad_list(const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        check_bad_fixture(names[i]);
}

static void test_config_malformed_json_has_line_and_column(void **state)
{
    check_bad_list(bad_json);
}

static void test_config_unknown_keys_are_named(void **state)
{
    check_bad_list(bad_unknown);
}

static void test_config_wrong_types_are_named(void **state)
{
    check_bad_list(bad_types);
}

static void test_config_bad_values_are_named(void **state)
{
    check_bad_list(bad_values);
}

static int listed(const char *const *names, const char *name)
{
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static void test_config_every_bad_fixture_is_covered(void **state)
{
    _cleanup_free_ char *dir = fixture("bad", "", "");
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d))) {
        char name[256];
        size_t len = strlen(de->d_name);

        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(len - 5), de->d_name);
        if (!listed(bad_json, name) && !listed(bad_unknown, name) && !listed(bad_types, name) &&
            !listed(bad_values, name))
            fail_msg("fixture bad/%s.json is not checked by any test", name);
        n++;
    }
    closedir(d);
    assert_true(n > 0);
}

/* Through the loader, the message names the file by the path it was given. */
static void test_config_load_names_the_file(void **state)
{
    _cleanup_free_ char *path = fixture("bad", "json-duplicate-key", ".json");
    _cleanup_free_ char *want = NULL;
    berth_config_overrides_t ov = { .config_path = path, .ignore_env = 1 };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_int_equal(berth__config_load(&ov, &cfg, &err), -EINVAL);
    assert_null(cfg);
    assert_true(
        asprintf(&want, "%s:4:8: invalid JSON: duplicate object key near '\"root\"'", path) > 0);
    assert_string_equal(err.msg, want);
}

static void test_config_explicit_missing_file(void **state)
{
    berth_config_overrides_t ov = { .config_path = "/nonexistent/berth.json", .ignore_env = 1 };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_int_equal(berth__config_load(&ov, &cfg, &err), -ENOENT);
    assert_null(cfg);
    assert_string_equal(err.msg, "config file /nonexistent/berth.json: No such file or directory");

    /* Named by $BERTH_CONFIG it must exist too. */
    setenv("BERTH_CONFIG", "/nonexistent/env.json", 1);
    ov = (berth_config_overrides_t){ .no_default_file = 1 };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), -ENOENT);
    assert_string_equal(err.msg, "config file /nonexistent/env.json: No such file or directory");

    /* A directory is not a config file. */
    ov = (berth_config_overrides_t){ .config_path = tmpdir, .ignore_env = 1 };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), -EISDIR);
    assert_null(cfg);
}

static void test_config_precedence_file_env_overrides(void **state)
{
    _cleanup_free_ char *path =
        write_tmp("prec.json", "{\"root\": \"/file/root\", \"runroot\": \"/file/run\"}");
    berth_config_overrides_t ov = { .config_path = path };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    /* file */
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->path, path);
    assert_string_equal(cfg->root, "/file/root");
    assert_string_equal(cfg->runroot, "/file/run");
    berth__config_free(cfg);

    /* env over file */
    setenv("BERTH_ROOT", "/env/root", 1);
    setenv("BERTH_RUNROOT", "/env/run", 1);
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, "/env/root");
    assert_string_equal(cfg->runroot, "/env/run");
    berth__config_free(cfg);

    /* overrides over env */
    ov.root = "/ov/root";
    ov.runroot = "/ov/run";
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, "/ov/root");
    assert_string_equal(cfg->runroot, "/ov/run");
    berth__config_free(cfg);

    /* ignore_env: the file wins over the (ignored) environment again */
    ov = (berth_config_overrides_t){ .config_path = path, .ignore_env = 1 };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, "/file/root");
    assert_string_equal(cfg->runroot, "/file/run");
    berth__config_free(cfg);

    /* An empty variable counts as unset. */
    setenv("BERTH_ROOT", "", 1);
    ov = (berth_config_overrides_t){ .config_path = path };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, "/file/root");
    berth__config_free(cfg);
}

static void test_config_env_names_the_file(void **state)
{
    _cleanup_free_ char *path = write_tmp("env.json", "{\"root\": \"/from/env/file\"}");
    berth_config_overrides_t ov = { .no_default_file = 1 };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    setenv("BERTH_CONFIG", path, 1);
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, "/from/env/file");
    berth__config_free(cfg);

    /* --config beats $BERTH_CONFIG ... */
    ov.config_path = shipped_config;
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, BERTH_DEFAULT_ROOT);
    berth__config_free(cfg);

    /* ... and ignore_env ignores $BERTH_CONFIG as well. */
    ov = (berth_config_overrides_t){ .ignore_env = 1, .no_default_file = 1 };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_null(cfg->path);
    assert_string_equal(cfg->root, BERTH_DEFAULT_ROOT);
    berth__config_free(cfg);
}

static void test_config_plugin_path_appended(void **state)
{
    _cleanup_free_ char *path = write_tmp("plug.json", "{\"plugin_dirs\": [\"/a\", \"/b\"]}");
    _cleanup_free_ char *cwd = getcwd(NULL, 0);
    _cleanup_free_ char *rel = NULL;
    berth_config_overrides_t ov = { .config_path = path };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_non_null(cwd);
    assert_true(asprintf(&rel, "%s/rel/plugins", strcmp(cwd, "/") == 0 ? "" : cwd) > 0);

    /* After the config's dirs; empty parts and repeats skipped; relative made absolute. */
    setenv("BERTH_PLUGIN_PATH", "/c::/a:rel/plugins/:", 1);
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->plugin_dirs, (const char *[]){ "/a", "/b", "/c", rel, NULL });
    berth__config_free(cfg);

    /* The override's path replaces the variable's. */
    ov.plugin_path = "/d/";
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->plugin_dirs, (const char *[]){ "/a", "/b", "/d", NULL });
    berth__config_free(cfg);

    /* Ignored environment: only the file's. */
    ov = (berth_config_overrides_t){ .config_path = path, .ignore_env = 1 };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->plugin_dirs, (const char *[]){ "/a", "/b", NULL });
    berth__config_free(cfg);

    /* No file: after the built-in dir. */
    ov = (berth_config_overrides_t){ .no_default_file = 1, .plugin_path = "/e" };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->plugin_dirs, (const char *[]){ BERTH_PLUGINSDIR, "/e", NULL });
    berth__config_free(cfg);
}

static void test_config_relative_override_made_absolute(void **state)
{
    _cleanup_free_ char *cwd = getcwd(NULL, 0);
    _cleanup_free_ char *want_root = NULL, *want_run = NULL;
    berth_config_overrides_t ov = {
        .ignore_env = 1, .no_default_file = 1, .root = "x/../y/./z/", .runroot = "/a//b/../c/."
    };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_non_null(cwd);
    assert_true(asprintf(&want_root, "%s/y/z", strcmp(cwd, "/") == 0 ? "" : cwd) > 0);
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, want_root);
    assert_string_equal(cfg->runroot, "/a/c");
    berth__config_free(cfg);

    /* The same from the environment. */
    setenv("BERTH_RUNROOT", "run", 1);
    ov = (berth_config_overrides_t){ .no_default_file = 1, .runroot = NULL };
    assert_true(asprintf(&want_run, "%s/run", strcmp(cwd, "/") == 0 ? "" : cwd) > 0);
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->runroot, want_run);
    berth__config_free(cfg);

    /* ".." never climbs above "/". */
    ov = (berth_config_overrides_t){ .ignore_env = 1, .no_default_file = 1, .root = "/../.." };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_string_equal(cfg->root, "/");
    berth__config_free(cfg);

    /* An empty override is a mistake, not "unset". */
    cfg = NULL;
    ov = (berth_config_overrides_t){ .ignore_env = 1, .no_default_file = 1, .root = "" };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), -EINVAL);
    assert_null(cfg);
    assert_string_equal(err.msg, "root: empty path");
}

static void test_config_listener_derived_from_runroot(void **state)
{
    _cleanup_free_ char *explicit_file =
        write_tmp("listen.json", "{\"api\": {\"listeners\": [\"unix:///run/fixed/api.sock\"]}}");
    _cleanup_free_ char *runroot_file = write_tmp("rr.json", "{\"runroot\": \"/run/from-file\"}");
    berth_config_overrides_t ov = { .ignore_env = 1, .no_default_file = 1, .runroot = "/tmp/rr" };
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->api_listeners, (const char *[]){ "unix:///tmp/rr/berth.sock", NULL });
    berth__config_free(cfg);

    /* From the environment as well. */
    setenv("BERTH_RUNROOT", "/tmp/envrr", 1);
    ov = (berth_config_overrides_t){ .no_default_file = 1 };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->api_listeners, (const char *[]){ "unix:///tmp/envrr/berth.sock", NULL });
    berth__config_free(cfg);

    /* The file's runroot, overridden: the override's wins for the socket too. */
    ov = (berth_config_overrides_t){ .config_path = runroot_file, .runroot = "/tmp/ov" };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->api_listeners, (const char *[]){ "unix:///tmp/ov/berth.sock", NULL });
    berth__config_free(cfg);

    /* Listeners the file names are kept as they are. */
    ov = (berth_config_overrides_t){ .config_path = explicit_file, .runroot = "/tmp/rr" };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->api_listeners, (const char *[]){ "unix:///run/fixed/api.sock", NULL });
    berth__config_free(cfg);

    /* Runroot "/" gives no doubled slash. */
    ov = (berth_config_overrides_t){ .ignore_env = 1, .no_default_file = 1, .runroot = "/" };
    assert_int_equal(berth__config_load(&ov, &cfg, &err), 0);
    assert_strv(cfg->api_listeners, (const char *[]){ "unix:///berth.sock", NULL });
    berth__config_free(cfg);
}

static void test_config_log_level_names(void **state)
{
    static const struct {
        const char *name;
        uint32_t level;
    } levels[] = { { "error", BERTH_LOG_ERR },
                   { "warning", BERTH_LOG_WARNING },
                   { "notice", BERTH_LOG_NOTICE },
                   { "info", BERTH_LOG_INFO },
                   { "debug", BERTH_LOG_DEBUG } };
    uint32_t level = 99;

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(levels); i++) {
        assert_int_equal(berth__log_level_parse(levels[i].name, &level), 0);
        assert_int_equal(level, levels[i].level);
        assert_string_equal(berth__log_level_name(levels[i].level), levels[i].name);
    }
    level = 99;
    assert_int_equal(berth__log_level_parse("loud", &level), -EINVAL);
    assert_int_equal(berth__log_level_parse("INFO", &level), -EINVAL);
    assert_int_equal(berth__log_level_parse(NULL, &level), -EINVAL);
    assert_int_equal(level, 99);
    /* Out-of-range levels clamp instead of returning NULL. */
    assert_string_equal(berth__log_level_name(0), "error");
    assert_string_equal(berth__log_level_name(42), "debug");
}

static void test_config_errors_are_one_line(void **state)
{
    /* Control characters in keys and values never reach the message as such. */
    static const char text[] = "{\"bad\\nkey\\u001b[31m\": 1}";
    berth_config_t *cfg = NULL;
    berth_err_t err = { 0 };

    assert_int_equal(berth__config_parse(text, strlen(text), "berth.json", &cfg, &err), -EINVAL);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\x1b'));
    assert_string_equal(err.msg, "berth.json: unknown key 'bad?key?[31m'");

    /* A NULL err is allowed. */
    assert_int_equal(berth__config_parse("[", 1, NULL, &cfg, NULL), -EINVAL);
    assert_null(cfg);
}

static int group_setup(void **state)
{
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    static const char *const files[] = { "prec.json", "env.json", "plug.json", "listen.json",
                                         "rr.json" };
    char p[512];

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(files); i++) {
        snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    return rmdir(tmpdir) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_config_defaults_without_file, setup),
        cmocka_unit_test_setup(test_config_shipped_file_parses, setup),
        cmocka_unit_test_setup(test_config_full_file_every_key, setup),
        cmocka_unit_test_setup(test_config_to_json_round_trips, setup),
        cmocka_unit_test_setup(test_config_partial_file_keeps_defaults, setup),
        cmocka_unit_test_setup(test_config_malformed_json_has_line_and_column, setup),
        cmocka_unit_test_setup(test_config_unknown_keys_are_named, setup),
        cmocka_unit_test_setup(test_config_wrong_types_are_named, setup),
        cmocka_unit_test_setup(test_config_bad_values_are_named, setup),
        cmocka_unit_test_setup(test_config_every_bad_fixture_is_covered, setup),
        cmocka_unit_test_setup(test_config_load_names_the_file, setup),
        cmocka_unit_test_setup(test_config_explicit_missing_file, setup),
        cmocka_unit_test_setup(test_config_precedence_file_env_overrides, setup),
        cmocka_unit_test_setup(test_config_env_names_the_file, setup),
        cmocka_unit_test_setup(test_config_plugin_path_appended, setup),
        cmocka_unit_test_setup(test_config_relative_override_made_absolute, setup),
        cmocka_unit_test_setup(test_config_listener_derived_from_runroot, setup),
        cmocka_unit_test_setup(test_config_log_level_names, setup),
        cmocka_unit_test_setup(test_config_errors_are_one_line, setup),
    };

    if (argc != 3) {
        fprintf(stderr, "usage: %s SHIPPED-BERTH-JSON FIXTURES-DIR\n", argv[0]);
        return 2;
    }
    shipped_config = argv[1];
    fixtures_dir = argv[2];
    return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
