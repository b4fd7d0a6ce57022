/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile and broken inputs for both file sources: digests and paths that
 * try to leave the location, links out of a tar or a layout, tar members
 * named "..", a truncated tar, malformed JSON. Each must fail with one clear
 * line, and nothing may appear anywhere: $TMPDIR (where gzip input is
 * decompressed) and the fixture directory stay as they were.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image-test.h"

static struct itest lay, arc;
static char tmpdir[PATH_MAX];

static int setup(void **state)
{
    itest_setup(&lay, "oci-layout");
    itest_setup(&arc, "docker-archive");
    /* The drivers' temporary files go here; it must stay empty. */
    itest_path(&lay, "tmp", tmpdir, sizeof(tmpdir));
    assert_int_equal(itest_sh("mkdir '%s'", tmpdir), 0);
    setenv("TMPDIR", tmpdir, 1);
    return 0;
}

static int teardown(void **state)
{
    itest_teardown(&lay);
    itest_teardown(&arc);
    return 0;
}

/* Listing of the fixture dir and of $TMPDIR, to show the drivers wrote nothing. */
static char *snapshot(void)
{
    char *s = itest_sh_output("cd '%s' && find . | sort && ls -A '%s'", lay.scratch, tmpdir);
    assert_non_null(s);
    return s;
}

static void make(const char *kind, char *path, size_t len)
{
    itest_path(&lay, kind, path, len);
    itest_fixture("hostile %s '%s' '%s'", kind, lay.demo, path);
}

/* open() of @kind with driver @t fails with @code and a message holding @needle. */
static void open_fails(struct itest *t, const char *kind, int code, const char *needle)
{
    char path[PATH_MAX];
    char *before, *after;
    const char *msg;

    make(kind, path, sizeof(path));
    before = snapshot();
    msg = itest_open_fails(t, path, code);
    if (!strstr(msg, needle))
        fail_msg("%s: message \"%s\" lacks \"%s\"", kind, msg, needle);
    after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_hostile_layout_digest_escapes(void **state)
{
    open_fails(&lay, "index-digest-dotdot", -EINVAL, "invalid digest");
}

static void test_hostile_layout_malformed_index(void **state)
{
    open_fails(&lay, "index-malformed", -EINVAL, "malformed JSON");
}

/* A blob that is a symlink out of the layout is not followed. */
static void test_hostile_layout_blob_symlink(void **state)
{
    char path[PATH_MAX];
    berth_descriptor_t d = { .struct_size = sizeof(d) };
    berth_stream_t *st = NULL;
    berth_err_t err = { 0 };
    void *s;

    make("blob-symlink-out", path, sizeof(path));
    s = itest_open(&lay, path, 0);
    assert_int_equal(lay.ops->resolve(lay.priv, s, "demo:latest", 0, &d, &err), 0);
    assert_int_equal(lay.ops->fetch(lay.priv, s, &d, 0, 0, &st, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "outside the layout"));
    print_message("  fetch -> %s\n", err.msg);
    lay.ops->close(lay.priv, s);
}

static void test_hostile_archive_layers_dotdot(void **state)
{
    open_fails(&arc, "layers-dotdot", -EINVAL, "leaves its root");
}

static void test_hostile_archive_layers_absolute(void **state)
{
    open_fails(&arc, "layers-absolute", -EINVAL, "absolute");
}

/* A Config member that is a symlink climbing out of the archive. */
static void test_hostile_archive_config_symlink(void **state)
{
    char path[PATH_MAX];
    void *s;

    make("config-symlink-out", path, sizeof(path));
    s = itest_open(&arc, path, 0);
    itest_resolve_fails(&arc, s, "demo:latest", -EINVAL, "outside the archive");
    itest_resolve_fails(&arc, s, NULL, -EINVAL, "outside the archive");
    arc.ops->close(arc.priv, s);
}

static void test_hostile_archive_member_dotdot(void **state)
{
    char path[PATH_MAX];

    open_fails(&arc, "member-dotdot", -EINVAL, "tar member");
    /* The same tar is refused by oci-layout too (match() may stop before the bad member). */
    itest_path(&lay, "member-dotdot", path, sizeof(path));
    assert_non_null(strstr(itest_open_fails(&lay, path, -EINVAL), "tar member"));
}

static void test_hostile_archive_truncated(void **state)
{
    char path[PATH_MAX], gz[PATH_MAX];
    char *before, *after;

    open_fails(&arc, "truncated", -EINVAL, "truncated");
    /* Truncated inside a gzip stream: the temporary file is gone afterwards. */
    itest_path(&lay, "truncated", path, sizeof(path));
    itest_path(&lay, "truncated.gz", gz, sizeof(gz));
    itest_fixture("gzip '%s' '%s'", path, gz);
    assert_int_equal(itest_sh("truncate -s -20000 '%s'", gz), 0);
    before = snapshot();
    itest_open_fails(&arc, gz, -EINVAL);
    after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_hostile_archive_malformed_manifest(void **state)
{
    open_fails(&arc, "manifest-malformed", -EINVAL, "malformed JSON");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_layout_digest_escapes),
        cmocka_unit_test(test_hostile_layout_malformed_index),
        cmocka_unit_test(test_hostile_layout_blob_symlink),
        cmocka_unit_test(test_hostile_archive_layers_dotdot),
        cmocka_unit_test(test_hostile_archive_layers_absolute),
        cmocka_unit_test(test_hostile_archive_config_symlink),
        cmocka_unit_test(test_hostile_archive_member_dotdot),
        cmocka_unit_test(test_hostile_archive_truncated),
        cmocka_unit_test(test_hostile_archive_malformed_manifest),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
