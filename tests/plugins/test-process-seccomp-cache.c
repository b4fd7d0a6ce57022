/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process driver's cache of compiled seccomp filters: a second compile
 * of the same profile comes from the cache with the same program, a
 * different profile never does, and a cache file that doesn't match its
 * profile text byte for byte is ignored and rewritten.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "process-internal.h"

static char dir[256];

static int count_files(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return 0;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".bpf") != NULL && !strstr(de->d_name, ".tmp");
    closedir(d);
    return n;
}

static json_t *profile(const char *denied)
{
    return json_pack("{s:s, s:[{s:[s], s:s}]}", "defaultAction", "SCMP_ACT_ALLOW", "syscalls",
                     "names", denied, "action", "SCMP_ACT_ERRNO");
}

static void test_seccomp_cache_hits_and_misses(void **state)
{
    struct sock_fprog a = { 0 }, b = { 0 }, c = { 0 };
    json_t *p1 = profile("mkdir"), *p2 = profile("rmdir");
    char cmd[512];

    process_seccomp_set_cache_dir(dir);
    assert_int_equal(process_seccomp_compile(p1, &a, NULL), 0);
    assert_int_equal(count_files(), 1);
    assert_int_equal(process_seccomp_compile(p1, &b, NULL), 0);
    assert_int_equal(count_files(), 1);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.filter, b.filter, a.len * sizeof(struct sock_filter));
    assert_int_equal(process_seccomp_compile(p2, &c, NULL), 0);
    assert_int_equal(count_files(), 2);
    assert_true(c.len != a.len || memcmp(c.filter, a.filter, a.len * sizeof(struct sock_filter)));
    free(b.filter);
    b.filter = NULL;

    /* Damage every cache file: the compile must ignore them and still give the same program. */
    assert_true(snprintf(cmd, sizeof(cmd), "for f in '%s'/*.bpf; do printf garbage > \"$f\"; done",
                         dir) < (int)sizeof(cmd));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(process_seccomp_compile(p1, &b, NULL), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.filter, b.filter, a.len * sizeof(struct sock_filter));

    /* Caching off: still compiles. */
    process_seccomp_set_cache_dir(NULL);
    free(c.filter);
    assert_int_equal(process_seccomp_compile(p2, &c, NULL), 0);
    free(a.filter);
    free(b.filter);
    free(c.filter);
    json_decref(p1);
    json_decref(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seccomp_cache_hits_and_misses),
    };
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char cmd[300];
    int r;

    snprintf(dir, sizeof(dir), "%s/berth-sccache-XXXXXX", base);
    if (!mkdtemp(dir))
        return 1;
    r = cmocka_run_group_tests_name("seccomp-cache", tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        r = 1;
    return r;
}
