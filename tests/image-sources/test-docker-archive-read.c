/* SPDX-License-Identifier: Apache-2.0 */
/*
 * docker-archive reading: skopeo's legacy docker-archive (manifest
 * synthesised from hashed members), a hand-made Engine >= 25 tar (plain and
 * gzip: the saved manifest is found in blobs/), a tar holding only an OCI
 * layout (loader order: index.json after manifest.json) and the refused
 * pre-1.10 form. Every fetch is checked byte for byte against its descriptor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image-test.h"

static struct itest t;

static int setup(void **state)
{
    itest_setup(&t, "docker-archive");
    return 0;
}

static int teardown(void **state)
{
    itest_teardown(&t);
    return 0;
}

/* Resolve the spellings docker users write; all give @manifest (NULL: whatever comes first). */
static void check_names(void *s, berth_descriptor_t *ret_target, const char *want_layer,
                        const char *want_layer_type)
{
    static const char *const refs[] = {
        NULL, "demo", "demo:latest", "docker.io/library/demo:latest", "@0",
    };
    berth_descriptor_t target, first = { 0 }, d;
    char config[80], layer[80], ref[200];
    berth_stream_t *st = NULL;
    berth_err_t err = { 0 };
    size_t len;
    char *text;

    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        itest_verify_image(&t, s, refs[i], &target, config, layer);
        if (i == 0)
            first = target;
        assert_string_equal(target.digest, first.digest);
        assert_string_equal(config, t.demo_config);
        assert_string_equal(layer, want_layer);
    }
    /* The image id (config digest) and the manifest digest select it too. */
    itest_verify_image(&t, s, t.demo_config, &target, NULL, NULL);
    assert_string_equal(target.digest, first.digest);
    itest_verify_image(&t, s, first.digest, &target, NULL, NULL);
    assert_string_equal(target.digest, first.digest);
    snprintf(ref, sizeof(ref), "demo@%s", first.digest);
    itest_verify_image(&t, s, ref, &target, NULL, NULL);

    /* The layer's media type follows what the member holds. */
    text = itest_fetch_verified(&t, s, &first, &len);
    assert_non_null(strstr(text, want_layer_type));
    free(text);

    assert_int_equal(itest_list(&t, s, "docker.io/library/demo:latest", &first), 1);
    itest_resolve_fails(&t, s, "busybox:latest", -ENOENT, "busybox:latest");
    itest_resolve_fails(&t, s, "@1", -ENOENT, "@1");
    itest_resolve_fails(&t, s,
                        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                        -ENOENT, NULL);

    d = first;
    snprintf(d.digest, sizeof(d.digest), "sha256:%064d", 7);
    assert_int_equal(t.ops->fetch(t.priv, s, &d, 0, 0, &st, &err), -ENOENT);
    assert_non_null(strstr(err.msg, d.digest));
    snprintf(d.digest, sizeof(d.digest), "sha256:/etc/passwd");
    assert_int_equal(t.ops->fetch(t.priv, s, &d, 0, 0, &st, &err), -EINVAL);
    /* Offsets work on the synthesised manifest as on members. */
    assert_int_equal(t.ops->fetch(t.priv, s, &first, 10, 0, &st, &err), 0);
    assert_int_equal(st->size, first.size - 10);
    st->close(st);
    *ret_target = first;
}

static void test_docker_archive_read_skopeo_legacy(void **state)
{
    char tar[PATH_MAX];
    berth_descriptor_t target;
    void *s;

    itest_path(&t, "demo-docker.tar", tar, sizeof(tar));
    assert_int_equal(itest_sh("skopeo --insecure-policy copy -q oci:'%s':latest "
                              "docker-archive:'%s':demo:latest",
                              t.demo, tar),
                     0);
    assert_int_equal(t.ops->match(t.priv, tar, 0), 0);
    assert_int_equal(t.ops->match(t.priv, t.demo, 0), BERTH_DECLINED);
    s = itest_open(&t, tar, 0);
    /* skopeo stores the layer uncompressed: the synthesised manifest names it by its diff id. */
    check_names(s, &target, t.demo_diff_id, "application/vnd.docker.image.rootfs.diff.tar\"");
    assert_string_equal(target.media_type, "application/vnd.docker.distribution.manifest.v2+json");
    t.ops->close(t.priv, s);
}

static void test_docker_archive_read_engine25(void **state)
{
    char tar[PATH_MAX], gz[PATH_MAX];
    berth_descriptor_t target;
    void *s;

    itest_path(&t, "demo-e25.tar", tar, sizeof(tar));
    itest_fixture("engine25 '%s' '%s'", t.demo, tar);
    assert_int_equal(t.ops->match(t.priv, tar, 0), 0);
    s = itest_open(&t, tar, 0);
    /* The manifest saved in blobs/ is used, so the digest is the original one. */
    check_names(s, &target, t.demo_layer, "tar+gzip");
    assert_string_equal(target.digest, t.demo_manifest);
    t.ops->close(t.priv, s);

    itest_path(&t, "demo-e25.tar.gz", gz, sizeof(gz));
    itest_fixture("gzip '%s' '%s'", tar, gz);
    assert_int_equal(t.ops->match(t.priv, gz, 0), 0);
    s = itest_open(&t, gz, 0);
    check_names(s, &target, t.demo_layer, "tar+gzip");
    assert_string_equal(target.digest, t.demo_manifest);
    t.ops->close(t.priv, s);
}

/* manifest.json naming links: followed inside the archive; no index.json, so synthesised. */
static void test_docker_archive_read_links(void **state)
{
    char tar[PATH_MAX];
    berth_descriptor_t target;
    void *s;

    itest_path(&t, "demo-linked.tar", tar, sizeof(tar));
    itest_fixture("linked '%s' '%s'", t.demo, tar);
    s = itest_open(&t, tar, 0);
    check_names(s, &target, t.demo_layer, "rootfs.diff.tar.gzip\"");
    assert_string_not_equal(target.digest, t.demo_manifest);
    t.ops->close(t.priv, s);
}

/* No manifest.json: the tar is read as an OCI layout (moby's loader order, then ours). */
static void test_docker_archive_read_layout_only(void **state)
{
    char tar[PATH_MAX];
    berth_descriptor_t target;
    void *s;

    itest_path(&t, "demo-oci.tar", tar, sizeof(tar));
    assert_int_equal(itest_sh("skopeo --insecure-policy copy -q oci:'%s':latest "
                              "oci-archive:'%s':latest",
                              t.demo, tar),
                     0);
    /* Not claimed when guessing (oci-layout's), but readable when asked for. */
    assert_int_equal(t.ops->match(t.priv, tar, 0), BERTH_DECLINED);
    s = itest_open(&t, tar, 0);
    itest_verify_image(&t, s, NULL, &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);
    itest_verify_image(&t, s, "latest", &target, NULL, NULL);
    assert_string_equal(target.digest, t.demo_manifest);
    t.ops->close(t.priv, s);
}

static void test_docker_archive_read_refuses_other_forms(void **state)
{
    char dir[PATH_MAX], tar[PATH_MAX], junk[PATH_MAX];

    /* Pre-1.10: repositories and <id>/json, no manifest.json. */
    itest_path(&t, "old", dir, sizeof(dir));
    itest_path(&t, "old.tar", tar, sizeof(tar));
    assert_int_equal(itest_sh("mkdir -p '%s/abc' && echo '{\"demo\":{\"latest\":\"abc\"}}' > "
                              "'%s/repositories' && echo '{}' > '%s/abc/json' && "
                              "tar -C '%s' -cf '%s' repositories abc",
                              dir, dir, dir, dir, tar),
                     0);
    assert_int_equal(t.ops->match(t.priv, tar, 0), 0);
    assert_non_null(strstr(itest_open_fails(&t, tar, -ENOTSUP), "pre-1.10"));

    /* Not a tar at all. */
    itest_path(&t, "junk.tar", junk, sizeof(junk));
    assert_int_equal(itest_sh("head -c 3000 /dev/zero | tr '\\0' x > '%s'", junk), 0);
    assert_int_equal(t.ops->match(t.priv, junk, 0), BERTH_DECLINED);
    assert_non_null(strstr(itest_open_fails(&t, junk, -EINVAL), "checksum"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docker_archive_read_skopeo_legacy),
        cmocka_unit_test(test_docker_archive_read_engine25),
        cmocka_unit_test(test_docker_archive_read_links),
        cmocka_unit_test(test_docker_archive_read_layout_only),
        cmocka_unit_test(test_docker_archive_read_refuses_other_forms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
