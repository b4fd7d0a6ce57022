/* SPDX-License-Identifier: Apache-2.0 */
/* Image reference parsing and normalisation, against the docker CLI's rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "reference.h"

static void full_of(const char *in, const char *want)
{
    berth_ref_t r;
    char buf[600];
    berth_err_t err = { 0 };

    if (berth__ref_parse(in, &r, &err) != 0)
        fail_msg("%s: %s", in, err.msg);
    berth__ref_default_tag(&r);
    assert_int_equal(berth__ref_full(&r, buf, sizeof(buf)), 0);
    if (strcmp(buf, want) != 0)
        fail_msg("%s -> %s, want %s", in, buf, want);
}

static void test_ref_normalises_like_docker(void **state)
{
    full_of("busybox", "docker.io/library/busybox:latest");
    full_of("busybox:1.36", "docker.io/library/busybox:1.36");
    full_of("library/busybox", "docker.io/library/busybox:latest");
    full_of("team/app:v1", "docker.io/team/app:v1");
    full_of("docker.io/busybox", "docker.io/library/busybox:latest");
    full_of("localhost/app", "localhost/app:latest");
    full_of("localhost:5000/team/app:1.0-rc_2", "localhost:5000/team/app:1.0-rc_2");
    full_of("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest");
    full_of("registry.example.com/a/b/c", "registry.example.com/a/b/c:latest");
    full_of("a.b-c__d--e", "docker.io/library/a.b-c__d--e:latest");
    /* A digest: no default tag is added. */
    full_of("busybox@sha256:"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker.io/library/busybox@sha256:"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

static void bad(const char *in, const char *msg_part)
{
    berth_ref_t r;
    berth_err_t err = { 0 };

    assert_int_equal(berth__ref_parse(in, &r, &err), -EINVAL);
    if (!strstr(err.msg, msg_part))
        fail_msg("%s: message \"%s\" lacks \"%s\"", in, err.msg, msg_part);
}

static void test_ref_rejects_what_docker_rejects(void **state)
{
    bad("", "empty");
    bad("BusyBox", "must be lowercase");
    bad("busybox:", "bad tag");
    bad("busybox:-x", "bad tag");
    bad("busybox@sha256:abc", "digest");
    bad("busybox@md5:0123456789abcdef0123456789abcdef", "digest");
    bad("a//b", "invalid reference format");
    bad("a/b_", "invalid reference format");
    bad("a___b", "invalid reference format");
    bad("-a", "invalid reference format");
    bad("host:port/app", "bad registry host");
    bad("../etc/passwd", "invalid reference format");
    char long_tag[200];
    memset(long_tag, 'a', sizeof(long_tag));
    memcpy(long_tag, "x:", 2);
    long_tag[199] = '\0';
    bad(long_tag, "bad tag");
}

static void fam(const char *in, const char *want)
{
    char buf[600];
    assert_int_equal(berth__ref_familiar(in, buf, sizeof(buf)), 0);
    if (strcmp(buf, want) != 0)
        fail_msg("%s -> %s, want %s", in, buf, want);
}

static void test_ref_familiar_form(void **state)
{
    fam("docker.io/library/busybox:latest", "busybox:latest");
    fam("docker.io/team/app:v1", "team/app:v1");
    fam("localhost:5000/app:1", "localhost:5000/app:1");
    fam("docker.io/library/busybox", "busybox");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_normalises_like_docker),
        cmocka_unit_test(test_ref_rejects_what_docker_rejects),
        cmocka_unit_test(test_ref_familiar_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
