/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: bytes from a host (or a compromised guest) through the agent
 * protocol's reader, each frame decoded both as a control message (with
 * version negotiation and the caps lookup) and as a stdio frame, as both
 * sides of the protocol do. The input is read twice, in pieces whose size
 * comes from the input itself and in one piece: both must give the same
 * frames, within the limit, and stop at the same oversized length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a read of the input produced: frame count, a checksum over them, how it ended. */
struct outcome {
    size_t frames;
    uint64_t sum;
    int refused;
};

static void handle(const uint8_t *p, uint32_t len, agent_writer_t *w)
{
    agent_stdio_frame_t f;
    json_t *o = NULL;
    uint32_t v;
    if (agent_json_decode(p, len, &o, NULL, 0) == 0) {
        agent_negotiate(o, 1, 3, &v);
        agent_has_cap(o, "exec");
        /* Replies built from what came in must frame again. */
        agent_reply_err(w, json_integer_value(json_object_get(o, "id")), 22,
                        json_string_value(json_object_get(o, "op")));
        json_decref(o);
    }
    if (agent_stdio_decode(p, len, &f) == 0) {
        if (f.type == AGENT_STDIO_DATA && f.len > AGENT_STDIO_DATA_MAX)
            abort();
        if (f.type == AGENT_STDIO_DATA)
            agent_stdio_put_data(w, f.stream, f.data, f.len);
    }
}

static struct outcome run(const uint8_t *data, size_t size, size_t step, uint32_t max, int decode)
{
    struct outcome out = { 0 };
    agent_reader_t r;
    agent_writer_t w;
    size_t off = 0;
    agent_reader_init(&r, max);
    agent_writer_init(&w);
    while (off < size && !out.refused) {
        size_t n = size - off < step ? size - off : step;
        const uint8_t *p;
        uint32_t len;
        int ret;
        if (agent_reader_feed(&r, data + off, n) < 0)
            abort();
        off += n;
        while ((ret = agent_reader_next(&r, &p, &len)) == 1) {
            if (len > max)
                abort();
            out.frames++;
            out.sum = out.sum * 1099511628211ull + len;
            for (uint32_t i = 0; i < len; i++)
                out.sum = (out.sum ^ p[i]) * 1099511628211ull;
            if (decode)
                handle(p, len, &w);
        }
        out.refused = ret < 0; /* a length over the limit: the connection would be dropped */
    }
    agent_reader_clear(&r);
    agent_writer_clear(&w);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome a, b;
    size_t step;
    uint32_t max;
    if (size < 1)
        return 0;
    /* The first byte picks the read size (1..256) and the port's limit. */
    step = (size_t)data[0] + 1;
    max = (data[0] & 1) ? AGENT_STDIO_MAX : 4096;
    a = run(data + 1, size - 1, step, max, 1);
    b = run(data + 1, size - 1, size, max, 0);
    if (a.frames != b.frames || a.sum != b.sum || a.refused != b.refused)
        abort();
    return 0;
}
