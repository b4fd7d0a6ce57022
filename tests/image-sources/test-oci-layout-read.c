/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oci-layout reading: the demo layout as a directory, as skopeo's
 * oci-archive (plain and gzip), a nested index and a layout with two images.
 * Every fetch is checked byte for byte against its descriptor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image-test.h"

static struct itest t;

static int setup(void **state)
{
    itest_setup(&t, "oci-layout");
    return 0;
}

static int teardown(void **state)
{
    itest_teardown(&t);
    return 0;
}

/* What every form of the demo image must answer; list() gives @listed. */
static void check_demo(void *s, const char *listed)
{
    static const char *const refs[] = {
        NULL, "latest", "demo", "demo:latest", "docker.io/library/demo:latest",
    };
    berth_descriptor_t target, d;
    char config[80], layer[80], ref[200];
    berth_stream_t *st = NULL;
    berth_err_t err = { 0 };
    char buf[64];

    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        itest_verify_image(&t, s, refs[i], &target, config, layer);
        assert_string_equal(target.digest, t.demo_manifest);
        assert_string_equal(target.media_type, "application/vnd.oci.image.manifest.v1+json");
        assert_string_equal(config, t.demo_config);
        assert_string_equal(layer, t.demo_layer);
    }
    /* By digest, bare and with a name. */
    itest_verify_image(&t, s, t.demo_manifest, &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);
    snprintf(ref, sizeof(ref), "demo@%s", t.demo_manifest);
    itest_verify_image(&t, s, ref, &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);

    assert_int_equal(itest_list(&t, s, listed, &target), 1);

    itest_resolve_fails(&t, s, "busybox:v9", -ENOENT, "busybox:v9");
    itest_resolve_fails(&t, s, "demo:v2", -ENOENT, "demo:v2");
    itest_resolve_fails(&t, s,
                        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                        -ENOENT, "no image");

    /* Resuming: fetch from an offset yields the rest. */
    d = target;
    assert_int_equal(t.ops->fetch(t.priv, s, &d, 100, 0, &st, &err), 0);
    assert_int_equal(st->size, d.size - 100);
    assert_true(st->read(st, buf, sizeof(buf), &err) > 0);
    st->close(st);
    assert_int_equal(t.ops->fetch(t.priv, s, &d, d.size + 1, 0, &st, &err), -EINVAL);

    /* Absent and malformed digests. */
    snprintf(d.digest, sizeof(d.digest), "sha256:%064d", 1);
    assert_int_equal(t.ops->fetch(t.priv, s, &d, 0, 0, &st, &err), -ENOENT);
    assert_non_null(strstr(err.msg, d.digest));
    snprintf(d.digest, sizeof(d.digest), "sha256:../../etc/passwd");
    assert_int_equal(t.ops->fetch(t.priv, s, &d, 0, 0, &st, &err), -EINVAL);
}

static void test_oci_layout_read_directory(void **state)
{
    void *s;

    assert_int_equal(t.ops->match(t.priv, t.demo, 0), 0);
    assert_int_equal(t.ops->match(t.priv, t.scratch, 0), BERTH_DECLINED);
    assert_int_equal(t.ops->match(t.priv, "registry.example:5000/app", 0), BERTH_DECLINED);
    s = itest_open(&t, t.demo, 0);
    check_demo(s, "docker.io/library/demo:latest");
    t.ops->close(t.priv, s);
}

static void test_oci_layout_read_oci_archive(void **state)
{
    char tar[PATH_MAX], gz[PATH_MAX], dtar[PATH_MAX], e25[PATH_MAX];
    void *s;

    itest_path(&t, "demo-oci.tar", tar, sizeof(tar));
    assert_int_equal(itest_sh("skopeo --insecure-policy copy -q oci:'%s':latest "
                              "oci-archive:'%s':latest",
                              t.demo, tar),
                     0);
    assert_int_equal(t.ops->match(t.priv, tar, 0), 0);
    /* skopeo names the image by its tag only ("latest"), so "demo:latest" is found by tag. */
    s = itest_open(&t, tar, 0);
    check_demo(s, "latest");
    t.ops->close(t.priv, s);

    /* gzip-compressed outer tar: decompressed to an unlinked temporary file. */
    itest_path(&t, "demo-oci.tar.gz", gz, sizeof(gz));
    itest_fixture("gzip '%s' '%s'", tar, gz);
    assert_int_equal(t.ops->match(t.priv, gz, 0), 0);
    s = itest_open(&t, gz, 0);
    check_demo(s, "latest");
    t.ops->close(t.priv, s);

    /* docker save tars are docker-archive's: legacy (no layout) and Engine 25 (manifest.json). */
    itest_path(&t, "demo-docker.tar", dtar, sizeof(dtar));
    assert_int_equal(itest_sh("skopeo --insecure-policy copy -q oci:'%s':latest "
                              "docker-archive:'%s':demo:latest",
                              t.demo, dtar),
                     0);
    assert_int_equal(t.ops->match(t.priv, dtar, 0), BERTH_DECLINED);
    itest_path(&t, "demo-e25.tar", e25, sizeof(e25));
    itest_fixture("engine25 '%s' '%s'", t.demo, e25);
    assert_int_equal(t.ops->match(t.priv, e25, 0), BERTH_DECLINED);
}

/* index.json -> an unnamed index -> the named manifest. */
static void test_oci_layout_nested_index(void **state)
{
    char dir[PATH_MAX];
    berth_descriptor_t target;
    void *s;

    itest_path(&t, "nested", dir, sizeof(dir));
    itest_fixture("nested '%s' '%s'", t.demo, dir);
    s = itest_open(&t, dir, 0);
    itest_verify_image(&t, s, "demo:latest", &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);
    itest_verify_image(&t, s, NULL, &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);
    itest_verify_image(&t, s, "latest", &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);
    assert_int_equal(itest_list(&t, s, "docker.io/library/demo:latest", &target), 1);
    itest_resolve_fails(&t, s, "other:1.0", -ENOENT, "other:1.0");
    t.ops->close(t.priv, s);
}

static void test_oci_layout_two_images(void **state)
{
    char dir[PATH_MAX], other[80];
    berth_descriptor_t target;
    void *s;

    itest_path(&t, "two", dir, sizeof(dir));
    itest_fixture("twotags '%s' '%s'", t.demo, dir);
    s = itest_open(&t, dir, 0);
    itest_resolve_fails(&t, s, NULL, -EINVAL, "2 images");
    itest_verify_image(&t, s, "demo:latest", &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);
    itest_verify_image(&t, s, "other:1.0", &target, NULL, NULL);
    assert_string_not_equal(target.digest, t.demo_manifest);
    strcpy(other, target.digest);
    itest_verify_image(&t, s, "1.0", &target, NULL, NULL);
    assert_string_equal(target.digest, other);
    itest_verify_image(&t, s, "docker.io/library/other:1.0", &target, NULL, NULL);
    assert_string_equal(target.digest, other);
    assert_int_equal(itest_list(&t, s, "docker.io/library/other:1.0", &target), 2);
    itest_resolve_fails(&t, s, "other:latest", -ENOENT, NULL);
    t.ops->close(t.priv, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oci_layout_read_directory),
        cmocka_unit_test(test_oci_layout_read_oci_archive),
        cmocka_unit_test(test_oci_layout_nested_index),
        cmocka_unit_test(test_oci_layout_two_images),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
