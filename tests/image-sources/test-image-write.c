/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing: the demo image goes through put_blob/put_ref/commit into an OCI
 * layout directory, an oci-archive tar and a docker-archive, then skopeo
 * reads each result (inspect and copy) and must see the same image; the
 * drivers read it back too. A session closed without commit leaves nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image-test.h"

static struct itest lay, arc;

static int setup(void **state)
{
    itest_setup(&lay, "oci-layout");
    itest_setup(&arc, "docker-archive");
    return 0;
}

static int teardown(void **state)
{
    itest_teardown(&lay);
    itest_teardown(&arc);
    return 0;
}

static json_t *skopeo_json(const char *args_fmt, const char *arg)
{
    char args[PATH_MAX * 2];
    json_error_t jerr;
    json_t *j;
    char *out;

    snprintf(args, sizeof(args), args_fmt, arg);
    out = itest_sh_output("skopeo --insecure-policy %s", args);
    if (!out)
        fail_msg("skopeo %s failed", args);
    j = json_loads(out, 0, &jerr);
    if (!j)
        fail_msg("skopeo %s: %s: %s", args, jerr.text, out);
    free(out);
    return j;
}

/* Entries of @dir whose name starts with @prefix (leftover staging files). */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void commit_ok(struct itest *t, void *s)
{
    berth_err_t err = { 0 };
    int r = t->ops->commit(t->priv, s, 0, &err);
    if (r != 0)
        fail_msg("commit: %d %s", r, err.msg);
    /* A session commits once. */
    assert_int_equal(t->ops->commit(t->priv, s, 0, &err), -EINVAL);
}

static void check_skopeo_oci(struct itest *t, const char *transport, const char *loc)
{
    char ref[PATH_MAX + 64], copy[PATH_MAX];
    json_t *j;

    snprintf(ref, sizeof(ref), "%s:%s:latest", transport, loc);
    j = skopeo_json("inspect %s", ref);
    assert_string_equal(json_string_value(json_object_get(j, "Digest")), t->demo_manifest);
    assert_int_equal(json_array_size(json_object_get(j, "Layers")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Layers"), 0)),
                        t->demo_layer);
    json_decref(j);
    itest_path(t, "skopeo-copy", copy, sizeof(copy));
    assert_int_equal(
        itest_sh("rm -rf '%s' && skopeo --insecure-policy copy -q %s oci:'%s':x", copy, ref, copy),
        0);
    j = skopeo_json("inspect oci:%s:x", copy);
    assert_string_equal(json_string_value(json_object_get(j, "Digest")), t->demo_manifest);
    json_decref(j);
}

static void test_image_write_oci_directory(void **state)
{
    char out[PATH_MAX];
    berth_descriptor_t target;
    void *s;

    itest_path(&lay, "out-layout", out, sizeof(out));
    s = itest_open(&lay, out, BERTH_IMAGE_OPEN_WRITE);
    itest_copy_demo(&lay, s, "docker.io/library/demo:latest");
    /* Nothing is visible before commit. */
    assert_false(exists(out));
    commit_ok(&lay, s);
    lay.ops->close(lay.priv, s);
    assert_int_equal(count_prefixed(lay.scratch, ".out-layout.berth-"), 0);
    check_skopeo_oci(&lay, "oci", out);

    s = itest_open(&lay, out, 0);
    itest_verify_image(&lay, s, "demo:latest", &target, NULL, NULL);
    assert_string_equal(target.digest, lay.demo_manifest);
    assert_int_equal(itest_list(&lay, s, "docker.io/library/demo:latest", &target), 1);
    lay.ops->close(lay.priv, s);

    /* Into the existing layout: a second tag for the same image; the first one stays. */
    assert_int_equal(lay.ops->match(lay.priv, out, BERTH_IMAGE_OPEN_WRITE), 0);
    s = itest_open(&lay, out, BERTH_IMAGE_OPEN_WRITE);
    itest_copy_demo(&lay, s, "docker.io/library/demo:v2");
    commit_ok(&lay, s);
    lay.ops->close(lay.priv, s);
    s = itest_open(&lay, out, 0);
    itest_verify_image(&lay, s, "demo:v2", &target, NULL, NULL);
    assert_string_equal(target.digest, lay.demo_manifest);
    itest_verify_image(&lay, s, "demo:latest", &target, NULL, NULL);
    /* Two names, one image. */
    itest_verify_image(&lay, s, NULL, &target, NULL, NULL);
    assert_int_equal(itest_list(&lay, s, "docker.io/library/demo:v2", &target), 2);
    lay.ops->close(lay.priv, s);
}

static void test_image_write_oci_archive(void **state)
{
    char out[PATH_MAX];
    berth_descriptor_t target;
    void *s;

    itest_path(&lay, "out-oci.tar", out, sizeof(out));
    /* A ".tar" is docker-archive's when guessing; oci-layout writes it when asked. */
    assert_int_equal(lay.ops->match(lay.priv, out, BERTH_IMAGE_OPEN_WRITE), BERTH_DECLINED);
    s = itest_open(&lay, out, BERTH_IMAGE_OPEN_WRITE);
    itest_copy_demo(&lay, s, "docker.io/library/demo:latest");
    assert_false(exists(out));
    commit_ok(&lay, s);
    lay.ops->close(lay.priv, s);
    assert_int_equal(count_prefixed(lay.scratch, ".out-oci.tar.berth-"), 0);
    assert_int_equal(count_prefixed(lay.scratch, "out-oci.tar.berth-"), 0);
    check_skopeo_oci(&lay, "oci-archive", out);

    assert_int_equal(lay.ops->match(lay.priv, out, 0), 0);
    s = itest_open(&lay, out, 0);
    itest_verify_image(&lay, s, "docker.io/library/demo:latest", &target, NULL, NULL);
    assert_string_equal(target.digest, lay.demo_manifest);
    lay.ops->close(lay.priv, s);
}

static void test_image_write_docker_archive(void **state)
{
    char out[PATH_MAX], copy[PATH_MAX], dir[PATH_MAX], p[PATH_MAX + 32];
    berth_descriptor_t target;
    json_t *j, *m;
    void *s;

    itest_path(&arc, "saved.tar", out, sizeof(out));
    assert_int_equal(arc.ops->match(arc.priv, out, BERTH_IMAGE_OPEN_WRITE), 0);
    assert_int_equal(arc.ops->match(arc.priv, arc.scratch, BERTH_IMAGE_OPEN_WRITE), BERTH_DECLINED);
    s = itest_open(&arc, out, BERTH_IMAGE_OPEN_WRITE);
    itest_copy_demo(&arc, s, "docker.io/library/demo:latest");
    assert_false(exists(out));
    commit_ok(&arc, s);
    arc.ops->close(arc.priv, s);
    assert_int_equal(count_prefixed(arc.scratch, ".saved.tar.berth-"), 0);

    /* skopeo makes its own manifest from manifest.json: compare config and diff ids. */
    j = skopeo_json("inspect --raw docker-archive:%s", out);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "config"), "digest")),
                        arc.demo_config);
    json_decref(j);
    j = skopeo_json("inspect docker-archive:%s", out);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Layers"), 0)),
                        arc.demo_diff_id);
    json_decref(j);
    itest_path(&arc, "from-archive", copy, sizeof(copy));
    assert_int_equal(
        itest_sh("skopeo --insecure-policy copy -q docker-archive:'%s' oci:'%s':x", out, copy), 0);
    j = skopeo_json("inspect --config oci:%s:x", copy);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(j, "rootfs"), "diff_ids"), 0)),
                        arc.demo_diff_id);
    json_decref(j);

    /* The legacy table of contents as moby writes it. */
    itest_path(&arc, "saved-x", dir, sizeof(dir));
    assert_int_equal(itest_sh("mkdir '%s' && tar -C '%s' -xf '%s'", dir, dir, out), 0);
    snprintf(p, sizeof(p), "%s/manifest.json", dir);
    j = json_load_file(p, 0, NULL);
    assert_non_null(j);
    m = json_array_get(j, 0);
    snprintf(p, sizeof(p), "blobs/sha256/%s", arc.demo_config + 7);
    assert_string_equal(json_string_value(json_object_get(m, "Config")), p);
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "RepoTags"), 0)),
                        "demo:latest");
    snprintf(p, sizeof(p), "blobs/sha256/%s", arc.demo_layer + 7);
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "Layers"), 0)), p);
    json_decref(j);
    snprintf(p, sizeof(p), "%s/repositories", dir);
    j = json_load_file(p, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "demo"), "latest")),
                        arc.demo_layer + 7);
    json_decref(j);
    snprintf(p, sizeof(p), "%s/oci-layout", dir);
    assert_true(exists(p));

    /* Read back: the saved manifest, by every name. */
    assert_int_equal(arc.ops->match(arc.priv, out, 0), 0);
    assert_int_equal(lay.ops->match(lay.priv, out, 0), BERTH_DECLINED);
    s = itest_open(&arc, out, 0);
    itest_verify_image(&arc, s, "demo:latest", &target, NULL, NULL);
    assert_string_equal(target.digest, arc.demo_manifest);
    assert_int_equal(itest_list(&arc, s, "docker.io/library/demo:latest", &target), 1);
    arc.ops->close(arc.priv, s);
}

/* close() without commit: nothing at the location, nothing beside it. */
static void discard_at(struct itest *t, const char *name, const char *prefix)
{
    char out[PATH_MAX];
    void *s;

    itest_path(t, name, out, sizeof(out));
    s = itest_open(t, out, BERTH_IMAGE_OPEN_WRITE);
    itest_copy_demo(t, s, "docker.io/library/demo:latest");
    t->ops->close(t->priv, s);
    assert_false(exists(out));
    assert_int_equal(count_prefixed(t->scratch, prefix), 0);
}

static void test_image_write_discard(void **state)
{
    char out[PATH_MAX], idx[PATH_MAX + 16], blobs[PATH_MAX + 16];
    berth_descriptor_t d = { .struct_size = sizeof(d) };
    berth_stream_t *st = NULL;
    berth_err_t err = { 0 };
    char *before, *after;
    void *s;

    discard_at(&lay, "gone-layout", ".gone-layout.berth-");
    discard_at(&lay, "gone-oci.tar", ".gone-oci.tar.berth-");
    discard_at(&arc, "gone.tar", ".gone.tar.berth-");

    /* In place: the blobs this session added go, index.json stays as it was. */
    itest_path(&lay, "empty-layout", out, sizeof(out));
    assert_int_equal(itest_sh("mkdir '%s' && printf '{\"imageLayoutVersion\":\"1.0.0\"}' > "
                              "'%s/oci-layout' && printf '{\"schemaVersion\":2,\"manifests\":[]}' "
                              "> '%s/index.json'",
                              out, out, out),
                     0);
    before = itest_sh_output("cd '%s' && find . | sort && cat index.json", out);
    s = itest_open(&lay, out, BERTH_IMAGE_OPEN_WRITE);
    itest_copy_demo(&lay, s, "docker.io/library/demo:latest");
    snprintf(blobs, sizeof(blobs), "%s/blobs", out);
    assert_true(exists(blobs));
    lay.ops->close(lay.priv, s);
    after = itest_sh_output("cd '%s' && find . | sort && cat index.json", out);
    assert_non_null(before);
    assert_non_null(after);
    assert_string_equal(before, after);
    free(before);
    free(after);
    snprintf(idx, sizeof(idx), "%s/index.json", out);
    assert_true(exists(idx));

    /* Misuse: naming what was not put, reading a write session, writing a read one. */
    s = itest_open(&arc, out, 0 /* a layout dir is readable by docker-archive */);
    assert_int_equal(arc.ops->put_blob(arc.priv, s, &d, NULL, 0, &err), -EBADF);
    arc.ops->close(arc.priv, s);
    itest_path(&lay, "misuse", out, sizeof(out));
    s = itest_open(&lay, out, BERTH_IMAGE_OPEN_WRITE);
    strcpy(d.media_type, "application/vnd.oci.image.manifest.v1+json");
    strcpy(d.digest, lay.demo_manifest);
    d.size = 1;
    assert_int_equal(lay.ops->put_ref(lay.priv, s, "demo:latest", &d, 0, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "was not put"));
    assert_int_equal(lay.ops->resolve(lay.priv, s, NULL, 0, &d, &err), -EBADF);
    assert_int_equal(lay.ops->fetch(lay.priv, s, &d, 0, 0, &st, &err), -EBADF);
    lay.ops->close(lay.priv, s);
    assert_false(exists(out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_write_oci_directory),
        cmocka_unit_test(test_image_write_oci_archive),
        cmocka_unit_test(test_image_write_docker_archive),
        cmocka_unit_test(test_image_write_discard),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
