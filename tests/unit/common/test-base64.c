/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core/common/base64.h: RFC 4648's test vectors both ways, every length
 * 0-300 round-trips, canonical text only in strict mode, and what lenient
 * mode (docker's config.json) takes and still refuses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"

static const char *const vectors[][2] = {
    { "", "" },
    { "f", "Zg==" },
    { "fo", "Zm8=" },
    { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" },
    { "fooba", "Zm9vYmE=" },
    { "foobar", "Zm9vYmFy" },
};

static void test_base64_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        size_t n = strlen(vectors[i][0]), len;
        char *text = berth__base64_encode(vectors[i][0], n), buf[16];
        uint8_t *out;

        assert_non_null(text);
        assert_string_equal(text, vectors[i][1]);
        free(text);
        assert_int_equal(berth__base64_encoded_len(n), strlen(vectors[i][1]));
        assert_int_equal(berth__base64_encode_to(vectors[i][0], n, buf), strlen(vectors[i][1]));
        assert_string_equal(buf, vectors[i][1]);
        for (int mode = BERTH__BASE64_STRICT; mode <= BERTH__BASE64_LENIENT; mode++) {
            assert_int_equal(berth__base64_decode(vectors[i][1], mode, &out, &len), 0);
            assert_int_equal(len, n);
            assert_memory_equal(out, vectors[i][0], n);
            assert_int_equal(out[n], 0); /* usable as a string */
            free(out);
        }
    }
}

static void test_base64_round_trip_every_length(void **state)
{
    uint8_t bin[300], *out;
    size_t len;
    char *text;
    (void)state;

    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(bin); n++) {
        text = berth__base64_encode(bin, n);
        assert_non_null(text);
        assert_int_equal(strlen(text), (n + 2) / 3 * 4);
        assert_int_equal(berth__base64_decode(text, BERTH__BASE64_STRICT, &out, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, bin, n);
        free(out);
        free(text);
    }
}

static void test_base64_strict_refuses_non_canonical(void **state)
{
    /* short, unpadded, too much padding, nonzero unused bits, "=" inside, two texts, other alphabets */
    static const char *const bad[] = { "Zg=",  "Zg",       "Z===",   "Zh==", "Zm9=", "Zm=v",
                                       "=Zm9", "Zg==Zg==", "Zm9v\n", "Zm-v", "Zm_v", "Zm 9v" };
    uint8_t *out = NULL;
    size_t len;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(berth__base64_decode(bad[i], BERTH__BASE64_STRICT, &out, &len), -EINVAL);
        assert_null(out);
    }
    assert_int_equal(berth__base64_decode(NULL, BERTH__BASE64_STRICT, &out, &len), -EINVAL);
}

static void test_base64_lenient_takes_unpadded_and_refuses_garbage(void **state)
{
    static const char *const bad[] = { "Zm9v\n", "Zm-v", "Zm_v", "Zm 9v", "\xc3\xa9" };
    uint8_t *out = NULL;
    size_t len;
    (void)state;

    /* "user:pass" without its padding, and with text after the padding ignored */
    assert_int_equal(berth__base64_decode("dXNlcjpwYXNz", BERTH__BASE64_LENIENT, &out, &len), 0);
    assert_int_equal(len, 9);
    assert_string_equal((char *)out, "user:pass");
    free(out);
    assert_int_equal(berth__base64_decode("Zm9vYg", BERTH__BASE64_LENIENT, &out, NULL), 0);
    assert_string_equal((char *)out, "foob");
    free(out);
    assert_int_equal(berth__base64_decode("Zg==junk", BERTH__BASE64_LENIENT, &out, &len), 0);
    assert_int_equal(len, 1);
    assert_string_equal((char *)out, "f");
    free(out);
    out = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(berth__base64_decode(bad[i], BERTH__BASE64_LENIENT, &out, &len), -EINVAL);
        assert_null(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64_round_trip_every_length),
        cmocka_unit_test(test_base64_strict_refuses_non_canonical),
        cmocka_unit_test(test_base64_lenient_takes_unpadded_and_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
