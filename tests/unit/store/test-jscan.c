/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The strict JSON scanner (jscan.h) and the container summaries built on it.
 *
 * The scanner must accept exactly what jansson accepts, so most tests ask
 * both and compare: hand-written valid and malformed documents, every prefix
 * of every valid one, random mutations, nesting at jansson's depth limit.
 * The scanner always reads an exact-size heap copy, so that a read past the
 * end is an AddressSanitizer error in the ASan build. Summaries from the
 * scanner must equal summaries from jansson over generated records, and
 * through the store.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "containers.h"
#include "jscan.h"
#include "store-test.h"
#include "store.h"
#include "util.h"

#define assert_ok(call, err)                                                                       \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s = %d (%s)", #call, rc_, (err).msg);                                       \
    } while (0)

/* An exact-size heap copy of @len bytes: nothing readable after it. */
static char *exact_copy(const char *data, size_t len)
{
    char *copy = malloc(len ? len : 1);

    assert_non_null(copy);
    memcpy(copy, data, len);
    return copy;
}

static int jansson_ok(const char *data, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(data, len, 0, &e);

    json_decref(j);
    return j != NULL;
}

static int jscan_ok(const char *data, size_t len)
{
    char *copy = exact_copy(data, len);
    const char *why = NULL;
    size_t pos = (size_t)-1;
    int rc = berth__jscan_validate(copy, len, &why, &pos);

    if (rc < 0) {
        assert_int_equal(rc, -EBADMSG);
        assert_non_null(why);
        assert_true(pos <= len);
    } else {
        assert_int_equal(rc, 0);
    }
    free(copy);
    return rc == 0;
}

/* Scanner and jansson agree on @len bytes of @data; returns the verdict. */
static int agree(const char *data, size_t len)
{
    int j = jansson_ok(data, len), s = jscan_ok(data, len);

    if (j != s)
        fail_msg("jansson says %s, the scanner %s, on %zu bytes: %.*s", j ? "valid" : "invalid",
                 s ? "valid" : "invalid", len, (int)(len > 200 ? 200 : len), data);
    return s;
}

static const char *const valid_docs[] = {
    "{}",
    "[]",
    " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n",
    "{\"\":1}",
    "{\"a\":[1,2,{\"b\":null}],\"c\":{\"d\":{\"e\":[[[]],[{}]]}}}",
    "{\"z\":1,\"a\":2,\"m\":{\"y\":[],\"b\":{}},\"k\":\"v\"}",
    "{\"s\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}",
    "{\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00 \xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\\u001f\x7f\"}",
    "{\"U\":\"\\u00E9\\uFFFF\\uDBFF\\uDFFF\xef\xbf\xbf\xf4\x8f\xbf\xbf\xc2\x80\"}",
    "[0,-0,1,-1,12345678901234,9223372036854775807,-9223372036854775808]",
    "[1.5,-0.25,1e10,1E+2,1e-7,2.5E-3,0.0,-0e0,1.7976931348623157e308,1e-400,0e999,0.0e400]",
    "[17976931348623157081452742373170435679807056752584499659891747680315726078002853876058"
    "955863276687817154045895351438246423432132688946418276846754670353751698604991057655128"
    "207624549009038932894407586850845513394230458323690322294816580855933212334827479782620"
    "4144723168738177180919299881250404026184124858368.0]",
    "[0.000000000000000000000000000000000000000000000000000000000000000000000000000000001e380]",
    /* one below the smallest number that rounds to infinity */
    "[17976931348623158079372897140530341507993413271003782693617377898044496829276475094664"
    "90179775872070963302864166928879109465555478519404026306574886715058206819089020007083"
    "83676273854845817711531764475730270069855571366959622842914819860834936475292719074168"
    "444365510704342711559699508093042880177904174497791.0]",
    "[true,false,null,[true],{\"t\":false}]",
    "{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
    "\"name\":\"web\",\"created_ns\":1732752000123456789,\"isolation\":\"process\","
    "\"rootfs\":\"/srv/r\",\"config\":{\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],\"Entrypoint\":"
    "[\"/docker-entrypoint.sh\"],\"Env\":[\"A=1\"],\"Labels\":{\"x\":\"y\"},\"Tty\":false},"
    "\"host_config\":{\"Binds\":null,\"Memory\":0},\"state\":{\"Status\":\"running\",\"Pid\":4242,"
    "\"ShimPid\":4241,\"ExitCode\":0,\"OOMKilled\":false,\"Error\":\"\",\"StartedAt\":"
    "1732752001000000000,\"FinishedAt\":0}}",
};

static void test_jscan_valid(void **state)
{
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(valid_docs); i++)
        if (!agree(valid_docs[i], strlen(valid_docs[i])))
            fail_msg("valid document %zu refused: %s", i, valid_docs[i]);
}

struct bad {
    const char *text;
    size_t len; /* 0: strlen */
};

static const struct bad bad_docs[] = {
    { .text = "" },
    { .text = " \n" },
    { .text = "1" },
    { .text = "\"s\"" },
    { .text = "null" },
    { .text = "{" },
    { .text = "}" },
    { .text = "{]" },
    { .text = "[}" },
    { .text = "[[]" },
    { .text = "{\"a\"}" },
    { .text = "{\"a\":}" },
    { .text = "{\"a\":1,}" },
    { .text = "{\"a\":1\"b\":2}" },
    { .text = "[1,]" },
    { .text = "[,1]" },
    { .text = "[1 2]" },
    { .text = "{,}" },
    { .text = "{\"a\" 1}" },
    { .text = "{'a':1}" },
    { .text = "{a:1}" },
    { .text = "{1:1}" },
    { .text = "{\"a\"::1}" },
    { .text = "[01]" },
    { .text = "[-01]" },
    { .text = "[1.]" },
    { .text = "[.5]" },
    { .text = "[1e]" },
    { .text = "[1e+]" },
    { .text = "[-]" },
    { .text = "[+1]" },
    { .text = "[--1]" },
    { .text = "[0x10]" },
    { .text = "[NaN]" },
    { .text = "[Infinity]" },
    { .text = "[-Infinity]" },
    { .text = "[tru]" },
    { .text = "[truex]" },
    { .text = "[nul]" },
    { .text = "[True]" },
    { .text = "[nulll]" },
    { .text = "[\"a\x01\"]" },
    { .text = "[\"a\nb\"]" },
    { .text = "[\"a\tb\"]" },
    { .text = "[\"a\\qb\"]" },
    { .text = "[\"a\\x41\"]" },
    { .text = "[\"a\\'\"]" },
    { .text = "[\"\\u12\"]" },
    { .text = "[\"\\u12G4\"]" },
    { .text = "[\"\\u0000\"]" },
    { .text = "{\"\\u0000\":1}" },
    { .text = "[\"\\ud800\"]" },
    { .text = "[\"\\ud800\\u0041\"]" },
    { .text = "[\"\\ud800\\ud800\"]" },
    { .text = "[\"\\udc00\"]" },
    { .text = "[\"\\udc00\\ud800\"]" },
    { .text = "[\"\\ud800x\"]" },
    { .text = "[\"\\ud800\\n\"]" },
    { .text = "[\"\xff\"]" },
    { .text = "[\"\xfe\"]" },
    { .text = "[\"\x80\"]" },
    { .text = "[\"\xc0\xaf\"]" },
    { .text = "[\"\xc1\xbf\"]" },
    { .text = "[\"\xe0\x80\xaf\"]" },
    { .text = "[\"\xf0\x80\x80\xaf\"]" },
    { .text = "[\"\xed\xa0\x80\"]" },
    { .text = "[\"\xf4\x90\x80\x80\"]" },
    { .text = "[\"\xf5\x80\x80\x80\"]" },
    { .text = "[\"\xe2\x82\"]" },
    { .text = "[\"\xe2\x82x\"]" },
    { .text = "[\"\xc3\"]" },
    { .text = "[\xc3\xa9]" },
    { .text = "\xef\xbb\xbf{}" },
    { .text = "{} {}" },
    { .text = "{}x" },
    { .text = "[1] 2" },
    { .text = "{}\0", .len = 3 },
    { .text = "[\"a\0b\"]", .len = 7 },
    { .text = "[\0]", .len = 3 },
    { .text = "[\"abc" },
    { .text = "[\"abc\\" },
    { .text = "[\"abc\\\"]" },
    { .text = "[9223372036854775808]" },
    { .text = "[-9223372036854775809]" },
    { .text = "[99999999999999999999]" },
    { .text = "[1e309]" },
    { .text = "[-1e400]" },
    { .text = "[1.7976931348623159e308]" },
    { .text =
          "[17976931348623158079372897140530341507993413271003782693617377898044496829276475094664"
          "901797758720709633028641669288791094655554785194040263065748867150582068190890200070838"
          "367627385484581771153176447573027006985557136695962284291481986083493647529271907416844"
          "4365510704342711559699508093042880177904174497792.0]" },
    { .text = "[0.1e310]" },
    { .text = "[1e99999999999999999999999]" },
    { .text = "/* c */{}" },
    { .text = "{}//" },
    { .text = "[1,2,3" },
    { .text = "{\"a\":{\"b\":[1,{\"c\":" },
};

static void test_jscan_malformed(void **state)
{
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(bad_docs); i++) {
        const struct bad *b = &bad_docs[i];

        if (agree(b->text, b->len ? b->len : strlen(b->text)))
            fail_msg("malformed document %zu accepted: %s", i, b->text);
    }
}

/* Every prefix of every valid document: a cut anywhere fails, inside the buffer. */
static void test_jscan_prefixes(void **state)
{
    for (size_t i = 0; i < BERTH_ARRAY_SIZE(valid_docs); i++) {
        size_t n = strlen(valid_docs[i]);

        for (size_t k = 0; k < n; k++)
            agree(valid_docs[i], k);
    }
}

/* Random byte changes: the scanner and jansson still agree on every one. */
static void test_jscan_mutations(void **state)
{
    static const char pool[] = "{}[]:,\"\\ 0123456789eE.+-tfnrlsu\x01\x1f\x7f\x80\xbf\xc3\xe2"
                               "\xed\xf0\xf4\xff"
                               "aA";
    unsigned seed = 12345;
    char buf[2048];

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(valid_docs); i++) {
        size_t n0 = strlen(valid_docs[i]);

        for (int m = 0; m < 3000; m++) {
            size_t n = n0;
            int edits = 1 + rand_r(&seed) % 3;

            memcpy(buf, valid_docs[i], n);
            for (int e = 0; e < edits && n > 0; e++) {
                size_t at = (size_t)rand_r(&seed) % n;
                char c = pool[rand_r(&seed) % (int)(sizeof(pool) - 1)];

                switch (rand_r(&seed) % 3) {
                case 0:
                    buf[at] = c;
                    break;
                case 1:
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                    break;
                default:
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
            }
            agree(buf, n);
        }
    }
}

static char *nested(const char *open, const char *inner, const char *close, size_t depth)
{
    size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
    char *s = malloc(depth * (lo + lc) + li + 1), *p = s;

    assert_non_null(s);
    for (size_t i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (size_t i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

/* jansson's limit, counted its way: a scalar inside N containers is at depth N + 1. */
static void test_jscan_depth(void **state)
{
    static const struct {
        size_t depth;
        const char *inner;
        int ok;
    } cases[] = {
        { 2047, "1", 1 }, { 2048, "", 1 }, { 2048, "1", 0 }, { 2049, "", 0 }, { 100000, "1", 0 },
    };

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(cases); i++) {
        char *arr = nested("[", cases[i].inner, "]", cases[i].depth);
        char *obj = nested("{\"k\":", cases[i].inner[0] ? cases[i].inner : "{}", "}",
                           cases[i].depth - (cases[i].inner[0] ? 0 : 1));

        assert_int_equal(agree(arr, strlen(arr)), cases[i].ok);
        assert_int_equal(agree(obj, strlen(obj)), cases[i].ok);
        free(arr);
        free(obj);
    }
}

/* Reading values: decoding, truncation, lenient and strict readers, sticky errors. */
static void test_jscan_read(void **state)
{
    static const char doc[] = "{\"s\":\"h\\u00e9llo \\ud83d\\ude00\",\"n\":-42,\"r\":1.5e3,"
                              "\"a\":[1,\"x\",null],\"o\":{\"k\":true},"
                              "\"big\":9223372036854775807,\"\\u0063md\":\"c\"}";
    static const char *const wanted[] = { "cmd", "big", "zzz" };
    char *copy = exact_copy(doc, sizeof(doc) - 1);
    char key[8], buf[32];
    berth_jscan_t s;
    size_t n, pos;
    int64_t v;

    berth__jscan_init(&s, copy, sizeof(doc) - 1);
    assert_int_equal(berth__jscan_type(&s), BERTH_JSCAN_OBJECT);
    assert_int_equal(berth__jscan_object_begin(&s), 0);
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), 1);
    assert_string_equal(key, "s");
    assert_int_equal(n, 1);
    assert_int_equal(berth__jscan_string(&s, buf, sizeof(buf), &n), 0);
    assert_string_equal(buf, "h\xc3\xa9llo \xf0\x9f\x98\x80");
    assert_int_equal(n, strlen("h\xc3\xa9llo \xf0\x9f\x98\x80"));
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), 1);
    assert_int_equal(berth__jscan_int64(&s, &v), 0);
    assert_int_equal(v, -42);
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), 1);
    assert_int_equal(berth__jscan_type(&s), BERTH_JSCAN_NUMBER);
    v = 7;
    assert_int_equal(berth__jscan_number(&s, &v), 0); /* a real: not decoded */
    assert_int_equal(v, 7);
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), 1);
    assert_string_equal(key, "a");
    assert_int_equal(berth__jscan_array_begin(&s), 0);
    assert_int_equal(berth__jscan_array_next(&s), 1);
    assert_int_equal(berth__jscan_integer_value(&s, &v), 1);
    assert_int_equal(v, 1);
    assert_int_equal(berth__jscan_array_next(&s), 1);
    assert_int_equal(berth__jscan_integer_value(&s, &v), 0); /* a string: 0, skipped */
    assert_int_equal(v, 0);
    assert_int_equal(berth__jscan_array_next(&s), 1);
    assert_int_equal(berth__jscan_string_value(&s, buf, sizeof(buf), &n), 0); /* null */
    assert_string_equal(buf, "");
    assert_int_equal(berth__jscan_array_next(&s), 0);
    /* the rest by key: "o" is skipped, escaped "\u0063md" is "cmd" */
    assert_int_equal(berth__jscan_object_find(&s, wanted, 3), 2);
    assert_int_equal(berth__jscan_int64(&s, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(berth__jscan_object_find(&s, wanted, 3), 1);
    assert_int_equal(berth__jscan_string(&s, buf, sizeof(buf), NULL), 0);
    assert_string_equal(buf, "c");
    assert_int_equal(berth__jscan_object_find(&s, wanted, 3), 0);
    assert_int_equal(berth__jscan_end(&s), 0);
    assert_null(berth__jscan_error(&s, NULL));

    /* Cut copies stop before a character that does not fit whole. */
    berth__jscan_init(&s, copy, sizeof(doc) - 1);
    assert_int_equal(berth__jscan_object_begin(&s), 0);
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), 1);
    assert_int_equal(berth__jscan_string(&s, buf, 3, &n), 0);
    assert_string_equal(buf, "h"); /* "h\xc3\xa9" needs 4 bytes */
    assert_int_equal(n, strlen("h\xc3\xa9llo \xf0\x9f\x98\x80"));

    /* Wrong types fail, and the first error sticks. */
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), 1);
    assert_int_equal(berth__jscan_string(&s, buf, sizeof(buf), NULL), -EBADMSG);
    assert_string_equal(berth__jscan_error(&s, &pos), "expected a string");
    assert_int_equal(pos, strstr(doc, "-42") - doc);
    assert_int_equal(berth__jscan_int64(&s, &v), -EBADMSG);
    assert_int_equal(berth__jscan_skip(&s, NULL, NULL), -EBADMSG);
    assert_int_equal(berth__jscan_end(&s), -EBADMSG);
    assert_string_equal(berth__jscan_error(&s, NULL), "expected a string");

    /* A real is not an integer; an array is not an object. */
    berth__jscan_init(&s, "[1.5]", 5);
    assert_int_equal(berth__jscan_object_begin(&s), -EBADMSG);
    assert_string_equal(berth__jscan_error(&s, NULL), "expected an object");
    berth__jscan_init(&s, "[1.5]", 5);
    assert_int_equal(berth__jscan_array_begin(&s), 0);
    assert_int_equal(berth__jscan_array_next(&s), 1);
    assert_int_equal(berth__jscan_int64(&s, &v), -EBADMSG);
    assert_string_equal(berth__jscan_error(&s, NULL), "expected an integer");

    /* A caller that reads no value after a key gets an error, not a wrong parse. */
    berth__jscan_init(&s, "{\"a\":\"b\",\"c\":1}", 15);
    assert_int_equal(berth__jscan_object_begin(&s), 0);
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), 1);
    assert_int_equal(berth__jscan_object_next(&s, key, sizeof(key), &n), -EBADMSG);

    /* A skipped value's bytes scan again on their own. */
    berth__jscan_init(&s, " [1, [2]] ", 10);
    {
        const char *span;
        berth_jscan_t sub;

        assert_int_equal(berth__jscan_skip(&s, &span, &n), 0);
        assert_int_equal(n, 8);
        assert_memory_equal(span, "[1, [2]]", 8);
        assert_int_equal(berth__jscan_end(&s), 0);
        berth__jscan_init(&sub, span, n);
        assert_int_equal(berth__jscan_skip(&sub, NULL, NULL), 0);
        assert_int_equal(berth__jscan_end(&sub), 0);
    }
    free(copy);
}

/* ---- summaries ---- */

static void assert_summary_equal(const berth_container_summary_t *a,
                                 const berth_container_summary_t *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->state, b->state);
    assert_string_equal(a->isolation, b->isolation);
    assert_string_equal(a->command, b->command);
    assert_int_equal(a->command_truncated, b->command_truncated);
    assert_true(a->created_ns == b->created_ns);
    assert_true(a->started_ns == b->started_ns);
    assert_true(a->finished_ns == b->finished_ns);
    assert_true(a->exit_code == b->exit_code);
    assert_true(a->pid == b->pid);
}

/* One detail member's bytes against jansson's value at @parent/@key (parent NULL: missing). */
static void assert_span_is(const char *data, size_t len, json_t *parent, const char *key,
                           const char *what)
{
    json_t *want = json_is_object(parent) ? json_object_get(parent, key) : NULL;
    json_t *got = data ? json_loadb(data, len, JSON_DECODE_ANY, NULL) : NULL;

    if (!(want ? got && json_equal(got, want) : !data))
        fail_msg("detail %s: scanner has %.*s", what, data ? (int)len : 6, data ? data : "(none)");
    json_decref(got);
}

/* berth__container_detail_scan() against jansson on a record both accept. */
static void assert_detail_agrees(const char *data, size_t len, json_t *doc)
{
    berth_container_detail_t d;
    berth_err_t err = { 0 };
    json_t *cfg = json_object_get(doc, "config"), *hc = json_object_get(doc, "host_config");

    assert_int_equal(berth__container_detail_scan(data, len, &d, &err), 0);
    assert_span_is(d.image.data, d.image.len, cfg, "Image", "config.Image");
    assert_span_is(d.labels.data, d.labels.len, cfg, "Labels", "config.Labels");
    assert_span_is(d.exposed_ports.data, d.exposed_ports.len, cfg, "ExposedPorts",
                   "config.ExposedPorts");
    assert_span_is(d.image_id.data, d.image_id.len, doc, "image_id", "image_id");
    assert_span_is(d.mounts.data, d.mounts.len, doc, "mounts", "mounts");
    assert_span_is(d.networks.data, d.networks.len, doc, "networks", "networks");
    assert_span_is(d.network_mode.data, d.network_mode.len, hc, "NetworkMode",
                   "host_config.NetworkMode");
}

/* The scanner's summary of @len bytes against jansson's; returns the code. */
static int summaries_agree(const char *data, size_t len)
{
    char *copy = exact_copy(data, len);
    berth_container_summary_t got, want;
    berth_err_t e1 = { 0 }, e2 = { 0 };
    json_t *doc = json_loadb(data, len, 0, NULL);
    int r1, r2;

    r1 = berth__container_summary_parse(copy, len, &got, &e1);
    if (!doc) {
        /* what jansson cannot parse, the store's walk calls damage too */
        if (r1 != -EBADMSG)
            fail_msg("scanner: %d on what jansson refuses: %.*s", r1, (int)len, data);
        assert_non_null(strstr(e1.msg, "invalid JSON at byte"));
        free(copy);
        return r1;
    }
    r2 = berth__container_summary_from_doc(doc, &want, &e2);
    if (r1 != r2)
        fail_msg("scanner %d (%s), jansson %d (%s) on %.*s", r1, e1.msg, r2, e2.msg, (int)len,
                 data);
    if (r1 == 0) {
        assert_summary_equal(&got, &want);
        assert_detail_agrees(copy, len, doc);
    } else
        assert_string_equal(e1.msg, e2.msg);
    json_decref(doc);
    free(copy);
    return r1;
}

static void random_hex(char *out, size_t n, unsigned *seed)
{
    for (size_t i = 0; i < n; i++)
        out[i] = "0123456789abcdef"[rand_r(seed) % 16];
    out[n] = '\0';
}

/* A string of @n characters from a pool with escapes, multi-byte and 4-byte UTF-8. */
static json_t *random_text(size_t n, unsigned *seed)
{
    static const char *const bits[] = {
        "a",   "Z",  " ",  "-",        "\"",           "\\",
        "/",   "\n", "\t", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80",
        "\x7f"
    };
    char buf[2048] = "";
    size_t len = 0;

    for (size_t i = 0; i < n && len + 5 < sizeof(buf); i++) {
        const char *b = bits[rand_r(seed) % BERTH_ARRAY_SIZE(bits)];

        memcpy(buf + len, b, strlen(b));
        len += strlen(b);
    }
    return json_stringn(buf, len);
}

/* Something of another type than a record member should have. */
static json_t *random_odd(unsigned *seed)
{
    switch (rand_r(seed) % 6) {
    case 0:
        return json_null();
    case 1:
        return json_real(1.0);
    case 2:
        return json_string("12");
    case 3:
        return json_pack("[i]", 1);
    case 4:
        return json_true();
    default:
        return json_pack("{s:i}", "x", 1);
    }
}

static json_t *random_args(unsigned *seed)
{
    json_t *a = json_array();
    int n = rand_r(seed) % 8;

    if (rand_r(seed) % 8 == 0)
        n = 60; /* longer than the command column */
    for (int i = 0; i < n; i++)
        json_array_append_new(a, rand_r(seed) % 10 ? random_text((size_t)(rand_r(seed) % 12), seed)
                                                   : random_odd(seed));
    return a;
}

/* A record as the API layer writes it, with random gaps, odd types and long strings. */
static json_t *random_record(unsigned *seed)
{
    char id[65], name[32];
    json_t *doc, *st, *cfg;

    random_hex(id, 64, seed);
    snprintf(name, sizeof(name), "c%u", (unsigned)rand_r(seed));
    doc = json_pack("{s:i, s:s, s:s, s:I, s:s}", "v", 1, "id", id, "name", name, "created_ns",
                    (json_int_t)rand_r(seed) * 1000003, "rootfs", "/srv/rootfs");
    if (rand_r(seed) % 4)
        json_object_set_new(doc, "isolation",
                            rand_r(seed) % 5 ? random_text((size_t)(rand_r(seed) % 40), seed)
                                             : random_odd(seed));
    st = json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "Status",
                   (const char *[]){ "created", "running", "paused", "exited", "removing",
                                     "a-status-longer-than-sixteen" }[rand_r(seed) % 6],
                   "Pid", (json_int_t)(rand_r(seed) % 100000), "ExitCode",
                   (json_int_t)(rand_r(seed) % 256) - 1, "StartedAt",
                   (json_int_t)rand_r(seed) * 1000000007, "FinishedAt",
                   (json_int_t)rand_r(seed) * 999999937, "OOMKilled", 0);
    /* any state member may be missing or of another type */
    if (rand_r(seed) % 3 == 0) {
        static const char *const keys[] = { "Status", "Pid", "ExitCode", "StartedAt",
                                            "FinishedAt" };
        const char *k = keys[rand_r(seed) % 5];

        if (rand_r(seed) % 2)
            json_object_del(st, k);
        else
            json_object_set_new(st, k, random_odd(seed));
    }
    cfg = json_pack("{s:s, s:[s]}", "Image", "busybox", "Env", "A=1");
    if (rand_r(seed) % 5)
        json_object_set_new(cfg, "Cmd", rand_r(seed) % 8 ? random_args(seed) : random_odd(seed));
    if (rand_r(seed) % 2)
        json_object_set_new(cfg, "Entrypoint",
                            rand_r(seed) % 8 ? random_args(seed) : random_odd(seed));
    if (rand_r(seed) % 10 == 0) {
        json_decref(cfg);
        cfg = random_odd(seed);
    }
    if (rand_r(seed) % 10 == 0) {
        json_decref(st);
        st = random_odd(seed);
    }
    json_object_set_new(doc, "config", cfg);
    json_object_set_new(doc, "state", st);
    json_object_set_new(doc, "host_config", json_pack("{s:n, s:i}", "Binds", "Memory", 0));
    /* what the list's detail reads (containers.h), any of it missing or odd */
    if (json_is_object(cfg) && rand_r(seed) % 2)
        json_object_set_new(cfg, "Labels",
                            rand_r(seed) % 6
                                ? json_pack("{s:o, s:s}", "k",
                                            random_text((size_t)(rand_r(seed) % 20), seed), "tier",
                                            "web")
                                : random_odd(seed));
    if (json_is_object(cfg) && rand_r(seed) % 3 == 0)
        json_object_set_new(cfg, "ExposedPorts", json_pack("{s:{}, s:{}}", "80/tcp", "53/udp"));
    if (rand_r(seed) % 2)
        json_object_set_new(doc, "image_id",
                            rand_r(seed) % 6 ? random_text(71, seed) : random_odd(seed));
    if (rand_r(seed) % 3 == 0)
        json_object_set_new(doc, "mounts",
                            json_pack("[{s:s, s:o, s:s, s:b}]", "Type", "bind", "Source",
                                      random_text((size_t)(rand_r(seed) % 30), seed), "Destination",
                                      "/data", "RW", 1));
    if (rand_r(seed) % 3 == 0)
        json_object_set_new(
            doc, "networks",
            json_pack("[{s:s, s:s, s:n, s:[]}]", "id", id, "name", "bridge", "ip", "aliases"));
    if (rand_r(seed) % 2)
        json_object_set_new(json_object_get(doc, "host_config"), "NetworkMode",
                            rand_r(seed) % 6 ? json_string("bridge") : random_odd(seed));
    /* and sometimes a record the store would call damaged */
    switch (rand_r(seed) % 20) {
    case 0:
        json_object_del(doc, "v");
        break;
    case 1:
        json_object_set_new(doc, "v", json_real(1.0));
        break;
    case 2:
        json_object_set_new(doc, "id", json_string("not-an-id"));
        break;
    case 3:
        json_object_set_new(doc, "name", json_string("/bad/name"));
        break;
    case 4:
        json_object_del(doc, "name");
        break;
    }
    return doc;
}

static void test_summary_agrees_with_jansson(void **state)
{
    static const size_t flags[] = {
        JSON_COMPACT,
        JSON_INDENT(2) | JSON_SORT_KEYS,
        JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH,
        JSON_INDENT(1) | JSON_ENSURE_ASCII | JSON_SORT_KEYS,
    };
    unsigned seed = 4242;
    int ok = 0, cut = 0;

    for (int i = 0; i < 2000; i++) {
        json_t *doc = random_record(&seed);

        for (size_t f = 0; f < BERTH_ARRAY_SIZE(flags); f++) {
            char *text = json_dumps(doc, flags[f]);
            berth_container_summary_t sum;

            assert_non_null(text);
            if (summaries_agree(text, strlen(text)) == 0) {
                ok++;
                assert_int_equal(berth__container_summary_parse(text, strlen(text), &sum, NULL), 0);
                cut += sum.command_truncated;
            }
            free(text);
        }
        json_decref(doc);
    }
    /* the generator reaches both outcomes and cut commands */
    assert_true(ok > 4000);
    assert_true(cut > 100);
}

/* Members jansson would replace (duplicates), and keys spelt with escapes. */
static void test_summary_duplicates_and_escapes(void **state)
{
    static const char *const docs[] = {
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"state\":{\"Pid\":5,\"Status\":\"exited\"},"
        "\"state\":{\"Status\":\"running\"}}",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"config\":{\"Cmd\":[\"x\"]},\"config\":3}",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"config\":{\"Cmd\":[\"x\"],\"Cmd\":null,"
        "\"Entrypoint\":[\"e\"]}}",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"name\":\"b\",\"isolation\":\"p\","
        "\"isolation\":7}",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"name\":5}",
        "{\"v\":2.0,\"id\":\"%s\",\"name\":\"a\",\"v\":3}",
        "{\"\\u0076\":1,\"\\u0069d\":\"%s\",\"n\\u0061me\":\"\\u0041b\",\"st\\u0061te\":"
        "{\"\\u0053tatus\":\"\\u0072unning\",\"Pid\":-1}}",
        "[\"%s\"]",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"created_ns\":-9223372036854775808}",
        /* the detail's members: duplicates, wrong types, a config that is not an object */
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"config\":{\"Image\":\"x\",\"Labels\":{\"k\":"
        "\"v\"},\"Image\":\"y\"},\"mounts\":[{\"Type\":\"bind\"}],\"mounts\":[],\"image_id\":7}",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"config\":{\"Image\":\"x\",\"ExposedPorts\":"
        "{\"80/tcp\":{}}},\"config\":[1],\"host_config\":{\"NetworkMode\":\"n\"},"
        "\"host_config\":{\"Binds\":null}}",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"config\":{\"Labels\":{\"k\":\"v\"}},\"config\":"
        "{\"Image\":\"z\"},\"host_config\":{\"NetworkMode\":\"n\"},\"host_config\":{}}",
        "{\"v\":1,\"id\":\"%s\",\"name\":\"a\",\"networks\":[{\"id\":\"\\u0041\",\"ip\":null}],"
        "\"host_config\":{\"NetworkMode\":\"a\",\"NetworkMode\":\"b\"},\"c\\u006enfig\":"
        "{\"Labels\":{}}}",
    };
    char buf[512];

    for (size_t i = 0; i < BERTH_ARRAY_SIZE(docs); i++) {
        snprintf(buf, sizeof(buf), docs[i],
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        summaries_agree(buf, strlen(buf));
    }
}

/* Every prefix of a record fails cleanly, and so do mutations. */
static void test_summary_prefixes(void **state)
{
    const char *rec = valid_docs[BERTH_ARRAY_SIZE(valid_docs) - 1];
    size_t n = strlen(rec);
    unsigned seed = 99;
    char buf[2048];

    assert_int_equal(summaries_agree(rec, n), 0);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(summaries_agree(rec, k), -EBADMSG);
    for (int m = 0; m < 5000; m++) {
        memcpy(buf, rec, n);
        buf[(size_t)rand_r(&seed) % n] = "{}[]:,\"\\0a1-. \x80"[rand_r(&seed) % 15];
        summaries_agree(buf, n);
    }
}

/* Through the store: records made by berth__container_create, listed in id order. */
struct fixture {
    struct test_dir dir;
    berth_store_t *store;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct test_dir *d;
    berth_err_t err = { 0 };

    if (!f || test_dir_setup((void **)&d) < 0)
        return -1;
    f->dir = *d;
    free(d);
    if (berth__store_open(f->dir.store, NULL, &f->store, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct test_dir *d = calloc(1, sizeof(*d));

    berth__store_close(f->store);
    *d = f->dir;
    free(f);
    return test_dir_teardown((void **)&d);
}

static void test_summaries_store(void **state)
{
    struct fixture *f = *state;
    berth_container_summary_t *items = NULL, want;
    berth_err_t err = { 0 };
    json_t *list = NULL;
    size_t n = 99;
    unsigned seed = 7;

    /* empty store: nothing, and no allocation */
    assert_ok(berth__container_summaries(f->store, &items, &n, &err), err);
    assert_null(items);
    assert_int_equal(n, 0);

    for (int i = 0; i < 40; i++) {
        json_t *doc = random_record(&seed);
        char name[32];

        /* what create refuses is not the point here */
        snprintf(name, sizeof(name), "box-%d", i);
        json_object_set_new(doc, "v", json_integer(1));
        json_object_set_new(doc, "name", json_string(name));
        {
            char id[65];

            assert_ok(berth__container_id_new(id, &err), err);
            json_object_set_new(doc, "id", json_string(id));
        }
        if (i == 0) {
            json_object_del(doc, "created_ns");
            json_object_set_new(
                doc, "config",
                json_pack("{s:[s], s:[s,s]}", "Entrypoint", "sh", "Cmd", "-c", "echo hi"));
            json_object_set_new(doc, "state",
                                json_pack("{s:s, s:i}", "Status", "running", "Pid", 4242));
            json_object_set_new(doc, "isolation", json_string("process"));
        }
        assert_ok(berth__container_create(f->store, doc, NULL, NULL, &err), err);
        json_decref(doc);
    }
    assert_ok(berth__container_summaries(f->store, &items, &n, &err), err);
    assert_ok(berth__container_list(f->store, &list, &err), err);
    assert_int_equal(n, 40);
    assert_int_equal(json_array_size(list), 40);
    for (size_t i = 0; i < n; i++) {
        assert_ok(berth__container_summary_from_doc(json_array_get(list, i), &want, &err), err);
        assert_summary_equal(&items[i], &want);
        if (i)
            assert_true(strcmp(items[i - 1].id, items[i].id) < 0);
        if (strcmp(items[i].name, "box-0") == 0) {
            assert_string_equal(items[i].command, "sh -c echo hi");
            assert_string_equal(items[i].state, "running");
            assert_string_equal(items[i].isolation, "process");
            assert_int_equal(items[i].pid, 4242);
            assert_true(items[i].created_ns > 0); /* added by create */
        }
    }
    berth__container_summaries_free(items);
    berth__container_summaries_free(NULL);
    json_decref(list);

    /* the _in variant sees its own transaction's records */
    {
        _cleanup_txn_ berth_txn_t *txn = NULL;
        json_t *doc;
        char id[65];

        assert_ok(berth__container_id_new(id, &err), err);
        doc = json_pack("{s:s, s:s}", "id", id, "name", "late");
        assert_ok(berth__store_txn_begin(f->store, 1, &txn, &err), err);
        assert_ok(berth__container_create_in(txn, doc, NULL, NULL, &err), err);
        assert_ok(berth__container_summaries_in(txn, &items, &n, &err), err);
        assert_int_equal(n, 41);
        berth__container_summaries_free(items);
        json_decref(doc);
    }
    /* aborted: gone again */
    assert_ok(berth__container_summaries(f->store, &items, &n, &err), err);
    assert_int_equal(n, 40);
    berth__container_summaries_free(items);
}

/* A damaged record fails the listing with -EBADMSG naming the store and the key. */
static void test_summaries_damaged(void **state)
{
    struct fixture *f = *state;
    static const char bad_id[] = "ffff456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    berth_container_summary_t *items = (void *)1;
    berth_err_t err = { 0 };
    size_t n = 99;
    json_t *doc;

    doc = json_pack("{s:s, s:s}", "id",
                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "name",
                    "fine");
    assert_ok(berth__container_create(f->store, doc, NULL, NULL, &err), err);
    json_decref(doc);
    berth__store_close(f->store);
    assert_int_equal(raw_put(f->dir.store, "containers", bad_id, "{\"v\":1,\"id\":\"x", 14), 0);
    assert_ok(berth__store_open(f->dir.store, NULL, &f->store, &err), err);

    assert_int_equal(berth__container_summaries(f->store, &items, &n, &err), -EBADMSG);
    assert_int_equal(err.code, -EBADMSG);
    assert_non_null(strstr(err.msg, "containers/ffff4567"));
    assert_non_null(strstr(err.msg, f->dir.store));
    assert_non_null(strstr(err.msg, "invalid JSON at byte 14"));
    assert_ptr_equal(items, (void *)1); /* ret_ untouched on failure */
    assert_int_equal(n, 99);

    /* valid JSON, but no name: damage too */
    berth__store_close(f->store);
    {
        static const char noname[] = "{\"v\":1,\"id\":\"ffff456789abcdef0123456789abcdef0123456789"
                                     "abcdef0123456789abcdef\"}";

        assert_int_equal(raw_put(f->dir.store, "containers", bad_id, noname, sizeof(noname) - 1),
                         0);
    }
    assert_ok(berth__store_open(f->dir.store, NULL, &f->store, &err), err);
    assert_int_equal(berth__container_summaries(f->store, &items, &n, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "containers/ffff4567"));
    assert_non_null(strstr(err.msg, "no valid \"name\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jscan_valid),
        cmocka_unit_test(test_jscan_malformed),
        cmocka_unit_test(test_jscan_prefixes),
        cmocka_unit_test(test_jscan_mutations),
        cmocka_unit_test(test_jscan_depth),
        cmocka_unit_test(test_jscan_read),
        cmocka_unit_test(test_summary_agrees_with_jansson),
        cmocka_unit_test(test_summary_duplicates_and_escapes),
        cmocka_unit_test(test_summary_prefixes),
        cmocka_unit_test_setup_teardown(test_summaries_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summaries_damaged, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
