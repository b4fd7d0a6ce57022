/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry driver's parsers, linked from its static implementation:
 * locations and Docker Hub normalisation, resolve references, loopback and
 * insecure-registry matching, WWW-Authenticate challenges, token replies,
 * registry error bodies, Basic credentials and the token cache.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry-auth.h"
#include "registry-ref.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static reg_location_t parse_ok(const char *s)
{
    reg_location_t loc;
    berth_err_t err = { 0 };
    int r = image_registry_parse_location(s, &loc, &err);
    if (r != 0)
        fail_msg("parse %s: %d %s", s, r, err.msg);
    return loc;
}

static void test_parse_location_docker_hub(void **state)
{
    reg_location_t l = parse_ok("busybox");
    assert_string_equal(l.domain, "docker.io");
    assert_string_equal(l.api_host, "registry-1.docker.io");
    assert_string_equal(l.repo, "library/busybox");
    assert_string_equal(l.written, "busybox");
    assert_string_equal(l.tag, "");
    assert_false(l.explicit_domain);

    l = parse_ok("busybox:1.36");
    assert_string_equal(l.repo, "library/busybox");
    assert_string_equal(l.tag, "1.36");
    l = parse_ok("team/app");
    assert_string_equal(l.repo, "team/app");
    l = parse_ok("docker.io/busybox");
    assert_string_equal(l.repo, "library/busybox");
    assert_true(l.explicit_domain);
    l = parse_ok("index.docker.io/library/busybox@sha256:" D64);
    assert_string_equal(l.domain, "docker.io");
    assert_string_equal(l.api_host, "registry-1.docker.io");
    assert_string_equal(l.digest, "sha256:" D64);
}

static void test_parse_location_other_registries(void **state)
{
    reg_location_t l = parse_ok("localhost/app");
    assert_string_equal(l.domain, "localhost");
    assert_string_equal(l.api_host, "localhost");
    assert_string_equal(l.host, "localhost");
    assert_string_equal(l.repo, "app");

    l = parse_ok("localhost:5000/a/b-c/d__e.f:v2");
    assert_string_equal(l.domain, "localhost:5000");
    assert_string_equal(l.host, "localhost");
    assert_string_equal(l.repo, "a/b-c/d__e.f");
    assert_string_equal(l.tag, "v2");

    l = parse_ok("127.0.0.1:5000/test/img@sha256:" D64);
    assert_string_equal(l.host, "127.0.0.1");
    assert_string_equal(l.repo, "test/img");
    assert_string_equal(l.digest, "sha256:" D64);

    l = parse_ok("[::1]:5000/x");
    assert_string_equal(l.host, "::1");
    assert_string_equal(l.api_host, "[::1]:5000");

    l = parse_ok("Reg.Example.com/x/y");
    assert_string_equal(l.domain, "Reg.Example.com");
    assert_string_equal(l.repo, "x/y");
}

static void test_parse_location_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "Upper",
        "a//b",
        "-a",
        "a:",
        "a/",
        "a@sha256:abc",
        "a@sha512:" D64,
        "reg.io:123456/x",
        "reg.io:/x",
        "[::1/x",
        "[zz]:5000/x",
        "-reg.io/x",
        "a b",
        "a/b:tag:more",
        "a___b",
        "a.-b",
        /* 129-character tag */
        "a:ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
        "tttttttttttttttttttttttttttttttttttttttttttt",
    };
    char longname[400];
    reg_location_t l;
    berth_err_t err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (image_registry_parse_location(bad[i], &l, &err) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(strlen(err.msg) > 0);
    }
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    longname[100] = '/';
    assert_int_equal(image_registry_parse_location(longname, &l, &err), -EINVAL);
    /* 128 characters is the most a tag may have. */
    assert_int_equal(
        image_registry_parse_location(
            "a:tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
            "tttttttttttttttttttttttttttttttttttttttttttttttttttttttt",
            &l, &err),
        0);
}

static void target(const char *location, const char *ref, int want_rc, const char *want_tag,
                   const char *want_digest)
{
    reg_location_t l = parse_ok(location);
    char tag[REG_TAG_MAX + 1] = "x", digest[REG_DIGEST_LEN + 1] = "x";
    berth_err_t err = { 0 };
    int r = image_registry_parse_target(&l, ref, tag, digest, &err);

    if (r != want_rc)
        fail_msg("%s + %s: %d (%s), want %d", location, ref ? ref : "NULL", r, err.msg, want_rc);
    if (r == 0) {
        assert_string_equal(tag, want_tag);
        assert_string_equal(digest, want_digest);
    } else {
        assert_true(strlen(err.msg) > 0);
    }
}

static void test_parse_target(void **state)
{
    target("127.0.0.1:5000/test/img", NULL, 0, "latest", "");
    target("127.0.0.1:5000/test/img:v1", NULL, 0, "v1", "");
    target("127.0.0.1:5000/test/img@sha256:" D64, NULL, 0, "", "sha256:" D64);
    target("127.0.0.1:5000/test/img", "v2", 0, "v2", "");
    target("127.0.0.1:5000/test/img", "sha256:" D64, 0, "", "sha256:" D64);
    target("127.0.0.1:5000/test/img", "@sha256:" D64, 0, "", "sha256:" D64);
    target("127.0.0.1:5000/test/img", "test/img:v3", 0, "v3", "");
    target("127.0.0.1:5000/test/img", "test/img", 0, "latest", "");
    target("127.0.0.1:5000/test/img", "127.0.0.1:5000/test/img@sha256:" D64, 0, "", "sha256:" D64);
    target("busybox", "busybox:1.36", 0, "1.36", "");
    target("busybox", "library/busybox:1.36", 0, "1.36", "");
    target("busybox", "docker.io/library/busybox:1.36", 0, "1.36", "");
    /* Another repository, or another registry, is not in the session. */
    target("127.0.0.1:5000/test/img", "other/img:v1", -ENOENT, "", "");
    target("127.0.0.1:5000/test/img", "127.0.0.1:5001/test/img:v1", -ENOENT, "", "");
    target("busybox", "alpine:3", -ENOENT, "", "");
    target("127.0.0.1:5000/test/img", "bad tag!", -EINVAL, "", "");
    target("127.0.0.1:5000/test/img", "sha256:xyz", -EINVAL, "", "");
    target("127.0.0.1:5000/test/img", "@v1", -EINVAL, "", "");
}

static void test_loopback_and_insecure_hosts(void **state)
{
    const char *const entries[] = { "myreg:5000", "other.example", "[::1]" };
    reg_location_t l;

    assert_true(image_registry_host_is_loopback("localhost"));
    assert_true(image_registry_host_is_loopback("LOCALHOST"));
    assert_true(image_registry_host_is_loopback("127.0.0.1"));
    assert_true(image_registry_host_is_loopback("127.255.1.2"));
    assert_true(image_registry_host_is_loopback("::1"));
    assert_true(image_registry_host_is_loopback("0:0:0:0:0:0:0:1"));
    assert_false(image_registry_host_is_loopback("128.0.0.1"));
    assert_false(image_registry_host_is_loopback("10.0.0.1"));
    assert_false(image_registry_host_is_loopback("localhost.example.com"));
    assert_false(image_registry_host_is_loopback("::2"));

    l = parse_ok("myreg:5000/a");
    assert_true(image_registry_host_listed(&l, entries, 3));
    l = parse_ok("myreg:5001/a");
    assert_false(image_registry_host_listed(&l, entries, 3));
    l = parse_ok("other.example:443/a");
    assert_true(image_registry_host_listed(&l, entries, 3));
    l = parse_ok("OTHER.example/a");
    assert_true(image_registry_host_listed(&l, entries, 3));
    l = parse_ok("[::1]:5000/a");
    assert_true(image_registry_host_listed(&l, entries, 3));
    l = parse_ok("third.example/a");
    assert_false(image_registry_host_listed(&l, entries, 3));
}

static reg_challenge_t chal_ok(const char *v)
{
    reg_challenge_t c;
    berth_err_t err = { 0 };
    int r = image_registry_parse_challenge(v, &c, &err);
    if (r != 0)
        fail_msg("challenge %s: %d %s", v, r, err.msg);
    return c;
}

static void test_challenge_parsing(void **state)
{
    reg_challenge_t c;
    berth_err_t err;
    char longrealm[1200];

    c = chal_ok("Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
                "scope=\"repository:a/b:pull\"");
    assert_int_equal(c.scheme, REG_AUTH_BEARER);
    assert_string_equal(c.realm, "https://auth.example/token");
    assert_string_equal(c.service, "registry.example");
    assert_string_equal(c.scope, "repository:a/b:pull");

    /* Several challenges, a comma inside quotes; Bearer wins wherever it is. */
    c = chal_ok("Basic realm=\"x, y\", Bearer realm=\"r\",service=\"s\"");
    assert_int_equal(c.scheme, REG_AUTH_BEARER);
    assert_string_equal(c.realm, "r");
    assert_string_equal(c.service, "s");

    /* Case-insensitive names, unquoted values, spaces around '='. */
    c = chal_ok("bearer REALM = https://r.example/t , SERVICE=s");
    assert_int_equal(c.scheme, REG_AUTH_BEARER);
    assert_string_equal(c.realm, "https://r.example/t");
    assert_string_equal(c.service, "s");

    /* Escapes inside a quoted string. */
    c = chal_ok("Bearer realm=\"a\\\"b\\\\c\"");
    assert_string_equal(c.realm, "a\"b\\c");

    c = chal_ok("Bearer realm=\"https://x/token?a=1,b=2\",scope=\"repository:x:pull,push\"");
    assert_string_equal(c.realm, "https://x/token?a=1,b=2");
    assert_string_equal(c.scope, "repository:x:pull,push");

    c = chal_ok("Basic realm=\"registry\"");
    assert_int_equal(c.scheme, REG_AUTH_BASIC);
    assert_string_equal(c.realm, "registry");
    c = chal_ok("Basic");
    assert_int_equal(c.scheme, REG_AUTH_BASIC);

    /* token68 forms are skipped. */
    c = chal_ok("Negotiate abc==, Bearer realm=\"r\"");
    assert_int_equal(c.scheme, REG_AUTH_BEARER);
    /* A Bearer without a realm is unusable: Basic it is. */
    c = chal_ok("Bearer service=\"s\", Basic realm=\"b\"");
    assert_int_equal(c.scheme, REG_AUTH_BASIC);

    c = chal_ok("Bearer realm=\"r\",error=\"insufficient_scope\",scope=\"repository:x:push\"");
    assert_string_equal(c.error, "insufficient_scope");

    memset(&err, 0, sizeof(err));
    assert_int_equal(image_registry_parse_challenge("Negotiate abc==", &c, &err), -ENOTSUP);
    assert_non_null(strstr(err.msg, "Negotiate"));
    assert_int_equal(image_registry_parse_challenge("", &c, &err), -ENOTSUP);
    assert_int_equal(image_registry_parse_challenge("Bearer realm=\"open", &c, &err), -EINVAL);
    assert_int_equal(image_registry_parse_challenge("=x", &c, &err), -EINVAL);
    assert_int_equal(image_registry_parse_challenge("Bearer realm=\"r\" junk", &c, &err), -EINVAL);
    assert_int_equal(image_registry_parse_challenge("Bearer (realm)", &c, &err), -EINVAL);
    memset(longrealm, 0, sizeof(longrealm));
    strcpy(longrealm, "Bearer realm=\"");
    memset(longrealm + strlen(longrealm), 'r', 1100);
    strcat(longrealm, "\"");
    assert_int_equal(image_registry_parse_challenge(longrealm, &c, &err), -EINVAL);
}

static void token_ok(const char *body, const char *want, int64_t want_exp)
{
    char *tok = NULL;
    int64_t exp = 0;
    berth_err_t err = { 0 };
    int r = image_registry_parse_token_reply(body, strlen(body), &tok, &exp, &err);
    if (r != 0)
        fail_msg("token reply %s: %d %s", body, r, err.msg);
    assert_string_equal(tok, want);
    assert_int_equal(exp, want_exp);
    free(tok);
}

static void test_token_reply(void **state)
{
    static const char *const bad[] = {
        "{}", "not json", "[]", "{\"token\":\"a b\"}", "{\"token\":\"a\\nb\"}", "{\"token\":7}",
    };
    berth_err_t err;
    char *tok = NULL;
    int64_t exp;

    token_ok("{\"token\":\"abc\",\"expires_in\":300}", "abc", 300);
    token_ok("{\"access_token\":\"xyz\"}", "xyz", 60);
    token_ok("{\"token\":\"\",\"access_token\":\"q\",\"expires_in\":-5}", "q", 60);
    token_ok("{\"token\":\"t\",\"expires_in\":99999999}", "t", 86400);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (image_registry_parse_token_reply(bad[i], strlen(bad[i]), &tok, &exp, &err) != -EPROTO)
            fail_msg("accepted token reply %s", bad[i]);
        assert_null(tok);
        assert_true(strlen(err.msg) > 0);
    }
}

static void test_error_bodies(void **state)
{
    char msg[64], code[32];
    const char *b;

    b = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}";
    image_registry_error_message(b, strlen(b), msg, sizeof(msg), code, sizeof(code));
    assert_string_equal(msg, "manifest unknown");
    assert_string_equal(code, "MANIFEST_UNKNOWN");
    b = "{\"errors\":[{\"code\":\"DENIED\"}]}";
    image_registry_error_message(b, strlen(b), msg, sizeof(msg), code, sizeof(code));
    assert_string_equal(msg, "DENIED");
    b = "{\"details\":\"incorrect username or password\"}";
    image_registry_error_message(b, strlen(b), msg, sizeof(msg), code, sizeof(code));
    assert_string_equal(msg, "incorrect username or password");
    assert_string_equal(code, "");
    b = "{\"message\":\"two\\nlines\\u001b[31m\"}";
    image_registry_error_message(b, strlen(b), msg, sizeof(msg), NULL, 0);
    assert_string_equal(msg, "two lines [31m");
    b = "<html>502</html>";
    image_registry_error_message(b, strlen(b), msg, sizeof(msg), code, sizeof(code));
    assert_string_equal(msg, "");
    b = "{\"message\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}";
    image_registry_error_message(b, strlen(b), msg, sizeof(msg), NULL, 0);
    assert_int_equal(strlen(msg), sizeof(msg) - 1);
}

static void basic_is(const char *user, const char *pass, const char *want)
{
    char *h = image_registry_basic_header(user, pass);
    assert_non_null(h);
    assert_string_equal(h, want);
    image_registry_wipe_free(h);
}

static void test_basic_header(void **state)
{
    basic_is("Aladdin", "open sesame", "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    basic_is("a", "", "Authorization: Basic YTo=");
    basic_is("ab", "c", "Authorization: Basic YWI6Yw==");
    basic_is("ab", "cd", "Authorization: Basic YWI6Y2Q=");
    basic_is("user", "p:w\xc3\xa9", "Authorization: Basic dXNlcjpwOnfDqQ==");
}

static void test_token_cache(void **state)
{
    reg_token_cache_t c = { 0 };
    char scope[32];

    assert_int_equal(image_registry_token_put(&c, "repository:a:pull", "t1", 10, 0), 0);
    assert_string_equal(image_registry_token_get(&c, "repository:a:pull", 5000), "t1");
    assert_null(image_registry_token_get(&c, "repository:b:pull", 5000));
    /* A tenth of the life before the end it counts as expired. */
    assert_string_equal(image_registry_token_get(&c, "repository:a:pull", 8999), "t1");
    assert_null(image_registry_token_get(&c, "repository:a:pull", 9000));
    assert_int_equal(c.n, 0);

    /* A 2 s token is good for 1.8 s; the margin is at most 5 s. */
    assert_int_equal(image_registry_token_put(&c, "", "short", 2, 1000), 0);
    assert_non_null(image_registry_token_get(&c, "", 2799));
    assert_null(image_registry_token_get(&c, "", 2800));
    assert_int_equal(image_registry_token_put(&c, "", "long", 3600, 0), 0);
    assert_non_null(image_registry_token_get(&c, "", 3595000 - 1));
    assert_null(image_registry_token_get(&c, "", 3595000));

    /* Replacing, dropping, and a full cache losing the entry closest to expiry. */
    assert_int_equal(image_registry_token_put(&c, "s", "old", 100, 0), 0);
    assert_int_equal(image_registry_token_put(&c, "s", "new", 100, 0), 0);
    assert_string_equal(image_registry_token_get(&c, "s", 0), "new");
    image_registry_token_drop(&c, "s");
    assert_null(image_registry_token_get(&c, "s", 0));
    image_registry_token_clear(&c);
    for (int i = 0; i < REG_TOKEN_CACHE_MAX; i++) {
        snprintf(scope, sizeof(scope), "scope-%d", i);
        assert_int_equal(image_registry_token_put(&c, scope, "t", 100 + i, 0), 0);
    }
    assert_int_equal(c.n, REG_TOKEN_CACHE_MAX);
    assert_int_equal(image_registry_token_put(&c, "extra", "t", 1000, 0), 0);
    assert_int_equal(c.n, REG_TOKEN_CACHE_MAX);
    assert_null(image_registry_token_get(&c, "scope-0", 0));
    assert_non_null(image_registry_token_get(&c, "scope-1", 0));
    assert_non_null(image_registry_token_get(&c, "extra", 0));
    image_registry_token_clear(&c);
    assert_int_equal(c.n, 0);
}

static void test_digest_and_tag_validity(void **state)
{
    assert_true(image_registry_digest_valid("sha256:" D64));
    assert_false(image_registry_digest_valid("sha256:" D64 "0"));
    assert_false(image_registry_digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789ab"
                                             "cdef0123456789abcdef"));
    assert_false(image_registry_digest_valid("sha256:../../../../../../../../../../../../../../../"
                                             "../../etc/passwd"));
    assert_false(image_registry_digest_valid("sha512:" D64));
    assert_false(image_registry_digest_valid(NULL));
    assert_true(image_registry_tag_valid("latest"));
    assert_true(image_registry_tag_valid("_x.Y-1"));
    assert_false(image_registry_tag_valid(".x"));
    assert_false(image_registry_tag_valid("-x"));
    assert_false(image_registry_tag_valid("a/b"));
    assert_false(image_registry_tag_valid(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_location_docker_hub),
        cmocka_unit_test(test_parse_location_other_registries),
        cmocka_unit_test(test_parse_location_rejects),
        cmocka_unit_test(test_parse_target),
        cmocka_unit_test(test_loopback_and_insecure_hosts),
        cmocka_unit_test(test_challenge_parsing),
        cmocka_unit_test(test_token_reply),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_basic_header),
        cmocka_unit_test(test_token_cache),
        cmocka_unit_test(test_digest_and_tag_validity),
    };
    return cmocka_run_group_tests_name("registry-parse", tests, NULL, NULL);
}
