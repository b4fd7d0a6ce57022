/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth_utf8_valid and berth_utf8_fix (berth/engine.h): what counts as
 * well-formed UTF-8 (RFC 3629: overlong forms, surrogates and code points
 * past U+10FFFF are not) and the in-place repair that keeps error messages
 * JSON text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <berth/engine.h>

static void test_valid(void **state)
{
    static const char *const good[] = {
        "",
        "plain ascii /bin/sh -c 'echo hi'",
        "caf\xc3\xa9",            /* U+00E9 */
        "\xe2\x82\xac",           /* U+20AC */
        "\xed\x9f\xbf",           /* U+D7FF, just below the surrogates */
        "\xef\xbf\xbd",           /* U+FFFD */
        "\xf0\x9f\x90\xb3 whale", /* U+1F433 */
        "\xf4\x8f\xbf\xbf",       /* U+10FFFF, the last code point */
    };
    static const char *const bad[] = {
        "\xff",
        "/bin/\xfex",
        "\x80",             /* a continuation byte alone */
        "\xc3",             /* cut before its continuation */
        "caf\xc3",          /* cut at the end */
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong '/' in three bytes */
        "\xed\xa0\x80",     /* U+D800, a surrogate */
        "\xf0\x80\x80\xaf", /* overlong in four bytes */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80",
        "\xe2\x82",     /* a three-byte sequence cut short */
        "\xe2\x28\xa1", /* a bad second byte */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!berth_utf8_valid(good[i]))
            fail_msg("good[%zu] refused", i);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (berth_utf8_valid(bad[i]))
            fail_msg("bad[%zu] accepted", i);
}

static void fix_is(const char *in, const char *want, size_t want_n)
{
    char buf[64];
    size_t n;

    snprintf(buf, sizeof(buf), "%s", in);
    n = berth_utf8_fix(buf);
    if (strcmp(buf, want) != 0 || n != want_n)
        fail_msg("fix of \"%s\": \"%s\" (%zu), want \"%s\" (%zu)", in, buf, n, want, want_n);
    assert_true(berth_utf8_valid(buf));
}

static void test_fix(void **state)
{
    (void)state;
    fix_is("nothing to do \xc3\xa9", "nothing to do \xc3\xa9", 0);
    fix_is("exec /bin/\xff\xfex: not found", "exec /bin/??x: not found", 2);
    /* Cut mid-character (a message truncated to its buffer): only the stub goes. */
    fix_is("entry caf\xc3", "entry caf?", 1);
    fix_is("\xe2\x82 then \xe2\x82\xac", "?? then \xe2\x82\xac", 2);
    /* An overlong '/' must not survive as anything a path could use. */
    fix_is("..\xc0\xaf..", "..??..", 2);
    fix_is("\xed\xa0\x80", "???", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_fix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
