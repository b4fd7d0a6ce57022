/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent protocol's building blocks (plugins/isolation/hyperv/agent-proto.h):
 * framing round trips over real fds, partial and merged reads, the length
 * limit, control JSON, stdio frames, credits and version negotiation.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent-proto.h"

static void test_agent_proto_round_trip_over_socket(void **state)
{
    agent_writer_t w;
    agent_reader_t r;
    const uint8_t *p;
    uint32_t len;
    int sv[2];
    char big[100000];

    memset(big, 'x', sizeof(big));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    agent_writer_init(&w);
    agent_reader_init(&r, AGENT_CONTROL_MAX);
    assert_int_equal(agent_writer_put(&w, "hello", 5, AGENT_CONTROL_MAX), 0);
    assert_int_equal(agent_writer_put(&w, "", 0, AGENT_CONTROL_MAX), 0);
    assert_int_equal(agent_writer_put(&w, big, sizeof(big), AGENT_CONTROL_MAX), 0);
    assert_int_equal(agent_writer_pending(&w), 4 + 5 + 4 + 4 + sizeof(big));
    assert_int_equal(agent_writer_flush(&w, sv[0]), 0);
    assert_int_equal(agent_writer_pending(&w), 0);
    close(sv[0]);

    int got = 0;
    for (;;) {
        int n = agent_reader_next(&r, &p, &len);
        assert_true(n >= 0);
        if (n == 1) {
            if (got == 0)
                assert_memory_equal(p, "hello", (len == 5 ? 5 : (fail(), 0)));
            else if (got == 1)
                assert_int_equal(len, 0);
            else {
                assert_int_equal(len, sizeof(big));
                assert_memory_equal(p, big, sizeof(big));
            }
            got++;
            continue;
        }
        if (agent_reader_fill(&r, sv[1]) <= 0)
            break;
    }
    assert_int_equal(got, 3);
    close(sv[1]);
    agent_reader_clear(&r);
    agent_writer_clear(&w);
}

/* Frames fed one byte at a time, then all of them in one go. */
static void test_agent_proto_split_and_merged_reads(void **state)
{
    agent_writer_t w;
    agent_reader_t r;
    const uint8_t *p;
    uint32_t len;
    char msg[3][16] = { "one", "second", "3rd frame" };

    agent_writer_init(&w);
    for (int i = 0; i < 3; i++)
        assert_int_equal(agent_writer_put(&w, msg[i], strlen(msg[i]), 64), 0);

    agent_reader_init(&r, 64);
    int got = 0;
    for (size_t i = 0; i < w.len; i++) {
        assert_int_equal(agent_reader_feed(&r, w.buf + i, 1), 0);
        while (agent_reader_next(&r, &p, &len) == 1) {
            assert_int_equal(len, strlen(msg[got]));
            assert_memory_equal(p, msg[got], len);
            got++;
        }
    }
    assert_int_equal(got, 3);
    agent_reader_clear(&r);

    agent_reader_init(&r, 64);
    assert_int_equal(agent_reader_feed(&r, w.buf, w.len), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(agent_reader_next(&r, &p, &len), 1);
        assert_memory_equal(p, msg[i], len);
    }
    assert_int_equal(agent_reader_next(&r, &p, &len), 0);
    agent_reader_clear(&r);
    agent_writer_clear(&w);
}

static void test_agent_proto_oversized_length_refused(void **state)
{
    agent_reader_t r;
    agent_writer_t w;
    const uint8_t *p;
    uint32_t len;
    /* 4 GiB - 1 announced: refused from the header alone, nothing allocated for it. */
    const uint8_t hdr[4] = { 0xff, 0xff, 0xff, 0xff };
    char buf[AGENT_STDIO_MAX + 1];

    agent_reader_init(&r, AGENT_CONTROL_MAX);
    assert_int_equal(agent_reader_feed(&r, hdr, 3), 0);
    assert_int_equal(agent_reader_next(&r, &p, &len), 0);
    assert_int_equal(agent_reader_feed(&r, hdr + 3, 1), 0);
    assert_int_equal(agent_reader_next(&r, &p, &len), -EMSGSIZE);
    assert_true(r.cap < 1024 * 1024);
    agent_reader_clear(&r);

    /* The exact limit passes, one more byte doesn't; the writer refuses to build either. */
    agent_writer_init(&w);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(agent_writer_put(&w, buf, AGENT_STDIO_MAX + 1, AGENT_STDIO_MAX), -EMSGSIZE);
    assert_int_equal(agent_writer_pending(&w), 0);
    assert_int_equal(agent_writer_put(&w, buf, AGENT_STDIO_MAX, AGENT_STDIO_MAX), 0);
    agent_reader_init(&r, AGENT_STDIO_MAX - 1);
    assert_int_equal(agent_reader_feed(&r, w.buf, w.len), 0);
    assert_int_equal(agent_reader_next(&r, &p, &len), -EMSGSIZE);
    agent_reader_clear(&r);
    agent_reader_init(&r, AGENT_STDIO_MAX);
    assert_int_equal(agent_reader_feed(&r, w.buf, w.len), 0);
    assert_int_equal(agent_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, AGENT_STDIO_MAX);
    agent_reader_clear(&r);
    agent_writer_clear(&w);
}

/* A non-blocking socket that takes less than the queue: partial writes, EAGAIN, then EOF. */
static void test_agent_proto_nonblocking_partial_io(void **state)
{
    enum { N = 40, SZ = 60000 };
    agent_writer_t w;
    agent_reader_t r;
    const uint8_t *p;
    uint32_t len;
    int sv[2], got = 0, sndbuf = 4096;
    static uint8_t frame[SZ];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    agent_writer_init(&w);
    agent_reader_init(&r, AGENT_STDIO_MAX);
    assert_int_equal(agent_reader_fill(&r, sv[1]), -EAGAIN);
    for (int i = 0; i < N; i++) {
        memset(frame, 'a' + i % 26, sizeof(frame));
        assert_int_equal(agent_writer_put(&w, frame, sizeof(frame), AGENT_STDIO_MAX), 0);
    }
    int stalls = 0;
    while (got < N) {
        assert_int_equal(agent_writer_flush(&w, sv[0]), 0);
        if (agent_writer_pending(&w))
            stalls++;
        long n;
        while ((n = agent_reader_fill(&r, sv[1])) > 0)
            while (agent_reader_next(&r, &p, &len) == 1) {
                assert_int_equal(len, SZ);
                assert_int_equal(p[0], 'a' + got % 26);
                assert_int_equal(p[SZ - 1], 'a' + got % 26);
                got++;
            }
        assert_int_equal(n, -EAGAIN);
    }
    /* The socket really took less than the queue at times: the partial path ran. */
    assert_true(stalls > 0);
    assert_int_equal(agent_writer_pending(&w), 0);
    close(sv[0]);
    assert_int_equal(agent_reader_fill(&r, sv[1]), 0);
    /* Writing to a peer that went away is -EPIPE (with SIGPIPE ignored, as the agent does). */
    assert_int_equal(agent_writer_put(&w, "x", 1, 16), 0);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(agent_writer_flush(&w, sv[1]), -EPIPE);
    close(sv[1]);
    agent_reader_clear(&r);
    agent_writer_clear(&w);
}

static void test_agent_proto_json(void **state)
{
    static const char *const bad[] = { "{", "[1]", "\"s\"", "", "{\"a\":1,\"a\":2}", "{} {}" };
    char why[256];
    json_t *o = NULL;
    agent_writer_t w;
    agent_reader_t r;
    const uint8_t *p;
    uint32_t len;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(agent_json_decode((const uint8_t *)bad[i], (uint32_t)strlen(bad[i]), &o,
                                           why, sizeof(why)),
                         -EBADMSG);
        assert_true(why[0] != '\0');
    }
    assert_int_equal(agent_json_decode((const uint8_t *)"{\"id\":3}", 8, &o, NULL, 0), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 3);
    json_decref(o);

    agent_writer_init(&w);
    assert_int_equal(agent_reply_ok(&w, 5, json_pack("{s:i}", "pid", 42)), 0);
    assert_int_equal(agent_reply_err(&w, 6, ENOENT, "no such container: x"), 0);
    agent_reader_init(&r, AGENT_CONTROL_MAX);
    assert_int_equal(agent_reader_feed(&r, w.buf, w.len), 0);
    assert_int_equal(agent_reader_next(&r, &p, &len), 1);
    assert_int_equal(agent_json_decode(p, len, &o, NULL, 0), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 5);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), 42);
    json_decref(o);
    assert_int_equal(agent_reader_next(&r, &p, &len), 1);
    assert_int_equal(agent_json_decode(p, len, &o, NULL, 0), 0);
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "errno")), ENOENT);
    assert_string_equal(json_string_value(json_object_get(o, "error")), "no such container: x");
    json_decref(o);
    agent_reader_clear(&r);
    agent_writer_clear(&w);
}

static void test_agent_proto_stdio_frames(void **state)
{
    agent_writer_t w;
    agent_reader_t r;
    agent_stdio_frame_t f;
    const uint8_t *p;
    uint32_t len;
    static char big[AGENT_STDIO_DATA_MAX + 1];

    agent_writer_init(&w);
    assert_int_equal(agent_stdio_put_data(&w, 0x01020304, "abc", 3), 0);
    assert_int_equal(agent_stdio_put_eof(&w, 7), 0);
    assert_int_equal(agent_stdio_put_credit(&w, 9, 0x10000), 0);
    assert_int_equal(agent_stdio_put_data(&w, 1, big, sizeof(big)), -EMSGSIZE);
    /* Wire format: length, stream id big-endian, type. */
    assert_memory_equal(w.buf,
                        "\0\0\0\x08\x01\x02\x03\x04\x00"
                        "abc",
                        12);
    agent_reader_init(&r, AGENT_STDIO_MAX);
    assert_int_equal(agent_reader_feed(&r, w.buf, w.len), 0);
    assert_int_equal(agent_reader_next(&r, &p, &len), 1);
    assert_int_equal(agent_stdio_decode(p, len, &f), 0);
    assert_int_equal(f.stream, 0x01020304);
    assert_int_equal(f.type, AGENT_STDIO_DATA);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "abc", 3);
    assert_int_equal(agent_reader_next(&r, &p, &len), 1);
    assert_int_equal(agent_stdio_decode(p, len, &f), 0);
    assert_int_equal(f.type, AGENT_STDIO_EOF);
    assert_int_equal(f.stream, 7);
    assert_int_equal(agent_reader_next(&r, &p, &len), 1);
    assert_int_equal(agent_stdio_decode(p, len, &f), 0);
    assert_int_equal(f.type, AGENT_STDIO_CREDIT);
    assert_int_equal(f.credit, 0x10000);
    agent_reader_clear(&r);
    agent_writer_clear(&w);

    /* Malformed: short, unknown type, EOF with data, CREDIT of the wrong size. */
    assert_int_equal(agent_stdio_decode((const uint8_t *)"\0\0\0\1", 4, &f), -EBADMSG);
    assert_int_equal(agent_stdio_decode((const uint8_t *)"\0\0\0\1\x03", 5, &f), -EBADMSG);
    assert_int_equal(agent_stdio_decode((const uint8_t *)"\0\0\0\1\x01x", 6, &f), -EBADMSG);
    assert_int_equal(agent_stdio_decode((const uint8_t *)"\0\0\0\1\x02\0\0\1", 8, &f), -EBADMSG);
    assert_int_equal(agent_stdio_decode((const uint8_t *)"\0\0\0\1\x02\0\0\0\1\0", 10, &f),
                     -EBADMSG);
}

static void test_agent_proto_credit_accounting(void **state)
{
    agent_credit_t c;
    agent_credit_init(&c);
    assert_int_equal(c.avail, AGENT_STDIO_WINDOW);
    assert_int_equal(agent_credit_allow(&c, 100), 100);
    assert_int_equal(agent_credit_allow(&c, AGENT_STDIO_WINDOW + 1), AGENT_STDIO_WINDOW);
    assert_int_equal(agent_credit_take(&c, AGENT_STDIO_WINDOW - 10), 0);
    assert_int_equal(agent_credit_allow(&c, 100), 10);
    assert_int_equal(agent_credit_take(&c, 11), -EPROTO);
    assert_int_equal(agent_credit_take(&c, 10), 0);
    assert_int_equal(agent_credit_allow(&c, 1), 0);
    /* Grants give back what was consumed, never more than the window. */
    assert_int_equal(agent_credit_grant(&c, 4096), 0);
    assert_int_equal(agent_credit_allow(&c, 100000), 4096);
    assert_int_equal(agent_credit_grant(&c, AGENT_STDIO_WINDOW), -EPROTO);
    assert_int_equal(c.avail, 4096);
    assert_int_equal(agent_credit_grant(&c, AGENT_STDIO_WINDOW - 4096), 0);
    assert_int_equal(agent_credit_grant(&c, 1), -EPROTO);
}

static void test_agent_proto_negotiation(void **state)
{
    uint32_t v = 0;
    json_t *h;

    h = json_pack("{s:[i,i,i]}", "versions", 1, 3, 2);
    assert_int_equal(agent_negotiate(h, 1, 2, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(agent_negotiate(h, 1, 5, &v), 0);
    assert_int_equal(v, 3);
    v = 0;
    assert_int_equal(agent_negotiate(h, 4, 5, &v), -EPROTONOSUPPORT);
    assert_int_equal(v, 0);
    json_decref(h);

    h = json_pack("{s:[]}", "versions");
    assert_int_equal(agent_negotiate(h, 1, 1, &v), -EPROTONOSUPPORT);
    json_decref(h);
    h = json_pack("{s:[s]}", "versions", "1");
    assert_int_equal(agent_negotiate(h, 1, 1, &v), -EBADMSG);
    json_decref(h);
    h = json_pack("{s:[i]}", "versions", 0);
    assert_int_equal(agent_negotiate(h, 1, 1, &v), -EBADMSG);
    json_decref(h);
    h = json_pack("{s:i}", "versions", 1);
    assert_int_equal(agent_negotiate(h, 1, 1, &v), -EBADMSG);
    json_decref(h);

    h = json_pack("{s:[s,i,s]}", "caps", "exec", 5, "tty");
    assert_true(agent_has_cap(h, "tty"));
    assert_false(agent_has_cap(h, "pause"));
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_proto_round_trip_over_socket),
        cmocka_unit_test(test_agent_proto_split_and_merged_reads),
        cmocka_unit_test(test_agent_proto_oversized_length_refused),
        cmocka_unit_test(test_agent_proto_nonblocking_partial_io),
        cmocka_unit_test(test_agent_proto_json),
        cmocka_unit_test(test_agent_proto_stdio_frames),
        cmocka_unit_test(test_agent_proto_credit_accounting),
        cmocka_unit_test(test_agent_proto_negotiation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
