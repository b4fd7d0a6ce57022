/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI spec generation from container records: Docker's defaults and how
 * each create option lands in the spec, and the unit parsers behind the
 * resource flags.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocispec.h"
#include "util.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *build(const char *config_json, const char *hc_json, const berth_oci_opts_t *opts,
                     int want, berth_err_t *err)
{
    json_error_t jerr;
    json_t *rec =
        json_pack("{s:s, s:o, s:o}", "id", ID, "config", json_loads(config_json, 0, &jerr),
                  "host_config", json_loads(hc_json, 0, &jerr));
    json_t *spec = NULL;
    int r;
    assert_non_null(rec);
    r = berth__oci_spec_build(rec, opts, &spec, err);
    json_decref(rec);
    if (r != want)
        fail_msg("build returned %d, want %d (%s)", r, want, err ? err->msg : "");
    return spec;
}

static int has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

static json_t *find_mount(json_t *spec, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach (json_object_get(spec, "mounts"), i, m) {
        if (strcmp(json_string_value(json_object_get(m, "destination")), dest) == 0)
            return m;
    }
    return NULL;
}

static void test_ocispec_docker_defaults(void **state)
{
    json_t *spec = build("{\"Cmd\": [\"sh\", \"-c\", \"true\"]}", "{}", NULL, 0, NULL);
    json_t *proc = json_object_get(spec, "process");
    json_t *caps = json_object_get(json_object_get(proc, "capabilities"), "bounding");
    json_t *linux_ = json_object_get(spec, "linux");
    const char *ns_types[] = { "pid", "ipc", "uts", "mount", "cgroup", "network" };

    assert_string_equal(json_string_value(json_object_get(spec, "hostname")), "0123456789ab");
    assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/");
    assert_int_equal(json_array_size(json_object_get(proc, "args")), 3);
    assert_true(has_string(json_object_get(proc, "env"),
                           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_true(has_string(json_object_get(proc, "env"), "HOSTNAME=0123456789ab"));
    assert_int_equal(json_array_size(caps), 14);
    assert_true(has_string(caps, "CAP_NET_BIND_SERVICE"));
    assert_false(has_string(caps, "CAP_SYS_ADMIN"));
    assert_false(json_is_true(json_object_get(proc, "noNewPrivileges")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")), 0);
    assert_non_null(find_mount(spec, "/proc"));
    assert_non_null(find_mount(spec, "/dev/pts"));
    assert_true(has_string(json_object_get(find_mount(spec, "/sys"), "options"), "ro"));
    assert_true(has_string(json_object_get(linux_, "maskedPaths"), "/proc/kcore"));
    assert_true(has_string(json_object_get(linux_, "readonlyPaths"), "/proc/sysrq-trigger"));
    assert_string_equal(json_string_value(json_object_get(linux_, "cgroupsPath")), "berth/" ID);
    for (size_t i = 0; i < 6; i++) {
        size_t j;
        json_t *n;
        int found = 0;
        json_array_foreach (json_object_get(linux_, "namespaces"), j, n) {
            found |= strcmp(json_string_value(json_object_get(n, "type")), ns_types[i]) == 0;
        }
        if (!found)
            fail_msg("namespace %s missing", ns_types[i]);
    }
    assert_null(json_object_get(linux_, "seccomp"));
    json_decref(spec);
}

static void test_ocispec_options_land_in_spec(void **state)
{
    json_t *profile = json_pack("{s:s}", "defaultAction", "SCMP_ACT_ERRNO");
    berth_oci_opts_t opts = { .rootfs_path = "/r",
                              .netns_path = "/run/netns/x",
                              .seccomp = profile };
    json_t *spec = build("{\"Entrypoint\": [\"/bin/app\"], \"Cmd\": [\"--serve\"], \"Env\": "
                         "[\"A=1\", \"UNSET\", \"PATH=/x\"], \"WorkingDir\": \"/srv\", \"User\": "
                         "\"1000:1001\", \"Hostname\": \"box\", \"Tty\": true}",
                         "{\"Memory\": 67108864, \"NanoCpus\": 1500000000, \"CpuShares\": 512, "
                         "\"PidsLimit\": 20, \"ReadonlyRootfs\": true, \"CapAdd\": "
                         "[\"net_admin\"], \"CapDrop\": [\"CAP_CHOWN\"], \"SecurityOpt\": "
                         "[\"no-new-privileges\"], \"Binds\": [\"/srv/data:/data:ro\"], "
                         "\"Tmpfs\": {\"/run\": \"size=64m\"}, \"Ulimits\": [{\"Name\": "
                         "\"nofile\", \"Soft\": 1024, \"Hard\": 2048}]}",
                         &opts, 0, NULL);
    json_t *proc = json_object_get(spec, "process");
    json_t *caps = json_object_get(json_object_get(proc, "capabilities"), "effective");
    json_t *res = json_object_get(json_object_get(spec, "linux"), "resources");
    json_t *m;

    assert_string_equal(json_string_value(json_array_get(json_object_get(proc, "args"), 0)),
                        "/bin/app");
    assert_string_equal(json_string_value(json_array_get(json_object_get(proc, "args"), 1)),
                        "--serve");
    assert_true(has_string(json_object_get(proc, "env"), "A=1"));
    assert_true(has_string(json_object_get(proc, "env"), "TERM=xterm"));
    assert_true(has_string(json_object_get(proc, "env"), "PATH=/x"));
    assert_false(has_string(json_object_get(proc, "env"), "UNSET"));
    assert_false(has_string(json_object_get(proc, "env"),
                            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/srv");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")),
                     1000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "gid")),
                     1001);
    assert_true(json_is_true(json_object_get(proc, "terminal")));
    assert_string_equal(json_string_value(json_object_get(spec, "hostname")), "box");
    assert_true(has_string(caps, "CAP_NET_ADMIN"));
    assert_false(has_string(caps, "CAP_CHOWN"));
    assert_true(json_is_true(json_object_get(proc, "noNewPrivileges")));
    assert_true(json_is_true(json_object_get(json_object_get(spec, "root"), "readonly")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(spec, "root"), "path")),
                        "/r");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "memory"), "limit")),
                     67108864);
    /* Docker: MemorySwap unset means swap equal to memory, i.e. twice the limit in total. */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "memory"), "swap")),
                     2 * 67108864);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "quota")),
                     150000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "period")),
                     100000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "shares")),
                     512);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "pids"), "limit")),
                     20);
    m = find_mount(spec, "/data");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "source")), "/srv/data");
    assert_true(has_string(json_object_get(m, "options"), "ro"));
    assert_true(has_string(json_object_get(m, "options"), "rbind"));
    m = find_mount(spec, "/run");
    assert_non_null(m);
    assert_true(has_string(json_object_get(m, "options"), "size=64m"));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(proc, "rlimits"), 0), "type")),
                        "RLIMIT_NOFILE");
    assert_non_null(json_object_get(json_object_get(spec, "linux"), "seccomp"));
    json_decref(spec);

    /* seccomp=unconfined drops the profile. */
    spec = build("{\"Cmd\": [\"true\"]}", "{\"SecurityOpt\": [\"seccomp=unconfined\"]}", &opts, 0,
                 NULL);
    assert_null(json_object_get(json_object_get(spec, "linux"), "seccomp"));
    json_decref(spec);
    json_decref(profile);
}

static void test_ocispec_user_names_and_caps_all(void **state)
{
    json_t *spec = build("{\"Cmd\": [\"id\"], \"User\": \"app:staff\"}",
                         "{\"CapDrop\": [\"ALL\"], \"CapAdd\": [\"KILL\"]}", NULL, 0, NULL);
    json_t *proc = json_object_get(spec, "process");
    json_t *caps = json_object_get(json_object_get(proc, "capabilities"), "bounding");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(proc, "user"), "username")), "app:staff");
    assert_int_equal(json_array_size(caps), 1);
    assert_true(has_string(caps, "CAP_KILL"));
    json_decref(spec);

    spec = build("{\"Cmd\": [\"id\"]}", "{\"CapAdd\": [\"ALL\"]}", NULL, 0, NULL);
    caps = json_object_get(json_object_get(json_object_get(spec, "process"), "capabilities"),
                           "bounding");
    assert_true(has_string(caps, "CAP_SYS_ADMIN"));
    assert_int_equal(json_array_size(caps), 41);
    json_decref(spec);
}

static void test_ocispec_userns_maps(void **state)
{
    json_t *spec =
        build("{\"Cmd\": [\"id\"]}", "{\"UsernsMode\": \"0:100000:65536\"}", NULL, 0, NULL);
    json_t *linux_ = json_object_get(spec, "linux");
    json_t *m = json_array_get(json_object_get(linux_, "uidMappings"), 0);
    size_t i;
    json_t *n;
    int user = 0;

    assert_int_equal(json_integer_value(json_object_get(m, "containerID")), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "hostID")), 100000);
    assert_int_equal(json_integer_value(json_object_get(m, "size")), 65536);
    assert_int_equal(json_array_size(json_object_get(linux_, "gidMappings")), 1);
    json_array_foreach (json_object_get(linux_, "namespaces"), i, n) {
        user |= strcmp(json_string_value(json_object_get(n, "type")), "user") == 0;
    }
    assert_true(user);
    json_decref(spec);
}

static void test_ocispec_rejects_bad_input(void **state)
{
    berth_err_t err = { 0 };
    build("{\"Cmd\": [\"x\"]}", "{\"UsernsMode\": \"0:100000\"}", NULL, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "invalid --userns"));
    build("{\"Cmd\": [\"x\"]}", "{\"UsernsMode\": \"0:1:0\"}", NULL, -EINVAL, &err);
    build("{}", "{}", NULL, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "no command"));
    build("{\"Cmd\": [\"x\"]}", "{\"CapAdd\": [\"CAP_FLY\"]}", NULL, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "unknown capability: \"CAP_FLY\""));
    build("{\"Cmd\": [\"x\"]}", "{\"Binds\": [\"relative:/x\"]}", NULL, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "source must be an absolute path"));
    build("{\"Cmd\": [\"x\"]}", "{\"Binds\": [\"/a:/x/../../etc\"]}", NULL, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "without '..'"));
    build("{\"Cmd\": [\"x\"]}", "{\"Binds\": [\"/a:/x:rx\"]}", NULL, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "unknown mode"));
    build("{\"Cmd\": [\"x\"]}", "{\"Binds\": [\"/a\"]}", NULL, -EINVAL, &err);
    build("{\"Cmd\": [\"x\"], \"WorkingDir\": \"rel\"}", "{}", NULL, -EINVAL, &err);
    assert_non_null(strstr(err.msg, "not an absolute path"));
    build("{\"Cmd\": [\"x\"], \"User\": \":5\"}", "{}", NULL, -EINVAL, &err);
    build("{\"Cmd\": [1]}", "{}", NULL, -EINVAL, &err);
    build("{\"Cmd\": [\"x\"]}", "{\"Tmpfs\": {\"rel\": \"\"}}", NULL, -EINVAL, &err);
}

static void test_ocispec_parse_units(void **state)
{
    int64_t v;
    assert_int_equal(berth__parse_bytes("512m", &v, NULL), 0);
    assert_int_equal(v, 512ll << 20);
    assert_int_equal(berth__parse_bytes("1G", &v, NULL), 0);
    assert_int_equal(v, 1ll << 30);
    assert_int_equal(berth__parse_bytes("2.5gib", &v, NULL), 0);
    assert_int_equal(v, (int64_t)(2.5 * (1ll << 30)));
    assert_int_equal(berth__parse_bytes("64kb", &v, NULL), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(berth__parse_bytes("100", &v, NULL), 0);
    assert_int_equal(v, 100);
    assert_int_equal(berth__parse_bytes("100b", &v, NULL), 0);
    assert_int_equal(v, 100);
    assert_int_equal(berth__parse_bytes("12x", &v, NULL), -EINVAL);
    assert_int_equal(berth__parse_bytes("-1m", &v, NULL), -EINVAL);
    assert_int_equal(berth__parse_bytes("m", &v, NULL), -EINVAL);
    assert_int_equal(berth__parse_bytes("1mm", &v, NULL), -EINVAL);
    assert_int_equal(berth__parse_bytes("", &v, NULL), -EINVAL);

    assert_int_equal(berth__parse_cpus("1.5", &v, NULL), 0);
    assert_int_equal(v, 1500000000);
    assert_int_equal(berth__parse_cpus("0.01", &v, NULL), 0);
    assert_int_equal(v, 10000000);
    assert_int_equal(berth__parse_cpus("0", &v, NULL), -EINVAL);
    assert_int_equal(berth__parse_cpus("two", &v, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocispec_docker_defaults),
        cmocka_unit_test(test_ocispec_options_land_in_spec),
        cmocka_unit_test(test_ocispec_user_names_and_caps_all),
        cmocka_unit_test(test_ocispec_userns_maps),
        cmocka_unit_test(test_ocispec_rejects_bad_input),
        cmocka_unit_test(test_ocispec_parse_units),
    };
    return cmocka_run_group_tests_name("ocispec", tests, NULL, NULL);
}
