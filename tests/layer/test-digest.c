/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sha256 digests and ChainIDs (core/lib/digest.h) against known vectors.
 * The ChainID vectors were computed independently with Python's hashlib:
 *   d = ["sha256:" + sha256(x).hexdigest() for x in (b"layer one", b"layer two", b"layer three")]
 *   c = d[0]; for x in d[1:]: c = "sha256:" + sha256((c + " " + x).encode()).hexdigest()
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "digest.h"

#define EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC   "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static const char *const diff_ids[] = {
    "sha256:f191e625176e7514249870c60bc24622131b04927a418001d1969c9cecd260f1",
    "sha256:77c7ed05b2e49df2e55d70cb007508cc66b2f5419a940bfd6f8749ba7db77c45",
    "sha256:6483085b79dcef99d4d90b43a910666cdce078bf772da453728f8c385fbfdf2f",
};
#define CHAIN2 "sha256:d440fc2ac5bfa225471b58c5d6b4283504f5dfbcd6251023a635cdcd0c058e3e"
#define CHAIN3 "sha256:952689aceeac7e377b602804de533a4ad47ba634e3917ca7cb071e5ff2bff6cd"

static void test_digest_vectors(void **state)
{
    char out[BERTH_DIGEST_SIZE];

    assert_int_equal(berth__sha256_buf("", 0, out), 0);
    assert_string_equal(out, EMPTY);
    assert_int_equal(berth__sha256_buf("abc", 3, out), 0);
    assert_string_equal(out, ABC);
    assert_int_equal(strlen(out), BERTH_DIGEST_LEN);
}

/* Streaming in uneven pieces gives the one-shot digest. */
static void test_digest_streaming(void **state)
{
    size_t len = 3 * 1000 * 1000 + 17;
    unsigned char *data = malloc(len);
    char one[BERTH_DIGEST_SIZE], streamed[BERTH_DIGEST_SIZE];
    berth_sha256_t s;
    uint32_t x = 12345;

    assert_non_null(data);
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    assert_int_equal(berth__sha256_buf(data, len, one), 0);
    assert_int_equal(berth__sha256_init(&s), 0);
    for (size_t off = 0, step = 1; off < len; step = step * 3 + 1) {
        size_t n = step < len - off ? step : len - off;
        berth__sha256_update(&s, data + off, n);
        off += n;
    }
    berth__sha256_update(&s, data, 0);
    assert_int_equal(berth__sha256_final(&s, streamed), 0);
    assert_string_equal(one, streamed);
    free(data);
}

/* final releases; free after final, free twice and re-init are all fine (callers rely on it). */
static void test_digest_lifecycle(void **state)
{
    char out[BERTH_DIGEST_SIZE];
    berth_sha256_t s;

    assert_int_equal(berth__sha256_init(&s), 0);
    berth__sha256_update(&s, "ab", 2);
    assert_int_equal(berth__sha256_final(&s, out), 0);
    berth__sha256_free(&s);
    assert_int_equal(berth__sha256_init(&s), 0);
    berth__sha256_update(&s, "abc", 3);
    assert_int_equal(berth__sha256_final(&s, out), 0);
    assert_string_equal(out, ABC);
    /* A second final on a released context is an error with an empty result. */
    assert_int_equal(berth__sha256_final(&s, out), -EIO);
    assert_string_equal(out, "");
    assert_int_equal(berth__sha256_init(&s), 0);
    berth__sha256_free(&s);
    berth__sha256_free(&s);
    berth__sha256_free(NULL);
}

static void test_digest_valid(void **state)
{
    assert_true(berth__digest_valid(EMPTY));
    assert_true(berth__digest_valid(ABC));
    assert_false(berth__digest_valid(NULL));
    assert_false(berth__digest_valid(""));
    assert_false(berth__digest_valid("sha256:"));
    /* Upper-case hex, wrong algorithm, one digit short or long, trailing bytes. */
    assert_false(berth__digest_valid(
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
    assert_false(berth__digest_valid(
        "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(berth__digest_valid(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
    assert_false(berth__digest_valid(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555"));
    assert_false(berth__digest_valid(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 "));
    assert_false(berth__digest_valid(
        "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(
        berth__digest_valid("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

static void test_digest_hex(void **state)
{
    const char *hex = berth__digest_hex(ABC);

    assert_non_null(hex);
    assert_ptr_equal(hex, ABC + 7);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_null(berth__digest_hex("sha256:abc"));
    assert_null(berth__digest_hex(NULL));
}

static void test_digest_chain_id(void **state)
{
    char out[BERTH_DIGEST_SIZE], step[BERTH_DIGEST_SIZE];
    berth_err_t err = { 0 };

    /* ChainID(L0) = DiffID(L0). */
    assert_int_equal(berth__chain_id(diff_ids, 1, out, &err), 0);
    assert_string_equal(out, diff_ids[0]);
    assert_int_equal(berth__chain_id(diff_ids, 2, out, &err), 0);
    assert_string_equal(out, CHAIN2);
    assert_int_equal(berth__chain_id(diff_ids, 3, out, &err), 0);
    assert_string_equal(out, CHAIN3);

    /* Step by step, with the result written over the parent. */
    assert_int_equal(berth__chain_id_next(NULL, diff_ids[0], step, &err), 0);
    assert_int_equal(berth__chain_id_next(step, diff_ids[1], step, &err), 0);
    assert_string_equal(step, CHAIN2);
    assert_int_equal(berth__chain_id_next(step, diff_ids[2], step, &err), 0);
    assert_string_equal(step, CHAIN3);
}

static void test_digest_chain_id_invalid(void **state)
{
    const char *bad[] = { diff_ids[0], "sha256:nothex" };
    char out[BERTH_DIGEST_SIZE] = "untouched";
    berth_err_t err = { 0 };

    assert_int_equal(berth__chain_id(diff_ids, 0, out, &err), -EINVAL);
    assert_int_equal(berth__chain_id(bad, 2, out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "sha256:nothex"));
    assert_string_equal(out, "untouched");
    assert_int_equal(berth__chain_id_next("nope", diff_ids[1], out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    assert_string_equal(out, "untouched");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_digest_streaming),
        cmocka_unit_test(test_digest_lifecycle),
        cmocka_unit_test(test_digest_valid),
        cmocka_unit_test(test_digest_hex),
        cmocka_unit_test(test_digest_chain_id),
        cmocka_unit_test(test_digest_chain_id_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
