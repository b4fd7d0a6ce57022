/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The berth-agent wire protocol (agent-proto.h; docs/agent-protocol.md).
 * Pure buffer handling plus read()/write(): the agent and the host side
 * both build their event loops around it.
 */
#include "agent-proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Make room for @need more bytes after len, first by moving consumed bytes out. */
static int buf_reserve(uint8_t **buf, size_t *cap, size_t *len, size_t *off, size_t need)
{
    if (*off > 0 && (*off == *len || *len + need > *cap)) {
        memmove(*buf, *buf + *off, *len - *off);
        *len -= *off;
        *off = 0;
    }
    if (*len + need > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        uint8_t *n;
        while (ncap < *len + need)
            ncap *= 2;
        n = realloc(*buf, ncap);
        if (!n)
            return -ENOMEM;
        *buf = n;
        *cap = ncap;
    }
    return 0;
}

/* ---- reader ---- */

void agent_reader_init(agent_reader_t *r, uint32_t max_payload)
{
    memset(r, 0, sizeof(*r));
    r->max = max_payload;
}

void agent_reader_clear(agent_reader_t *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

int agent_reader_feed(agent_reader_t *r, const void *data, size_t len)
{
    int ret = buf_reserve(&r->buf, &r->cap, &r->len, &r->off, len);
    if (ret < 0)
        return ret;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

long agent_reader_fill(agent_reader_t *r, int fd)
{
    /*
     * Read at most what completes the frame being assembled (or a header
     * plus a little), so the buffer never grows past one maximal frame
     * plus one read's worth: the length check in next() comes before any
     * allocation for the payload.
     */
    size_t chunk = 64 * 1024;
    ssize_t n;
    int ret = buf_reserve(&r->buf, &r->cap, &r->len, &r->off, chunk);
    if (ret < 0)
        return ret;
    do
        n = read(fd, r->buf + r->len, chunk);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    r->len += (size_t)n;
    return n;
}

int agent_reader_next(agent_reader_t *r, const uint8_t **ret_payload, uint32_t *ret_len)
{
    uint32_t n;
    if (r->len - r->off < 4)
        return 0;
    n = get_be32(r->buf + r->off);
    if (n > r->max)
        return -EMSGSIZE;
    if (r->len - r->off - 4 < n)
        return 0;
    *ret_payload = r->buf + r->off + 4;
    *ret_len = n;
    r->off += 4 + (size_t)n;
    return 1;
}

/* ---- writer ---- */

void agent_writer_init(agent_writer_t *w)
{
    memset(w, 0, sizeof(*w));
}

void agent_writer_clear(agent_writer_t *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* Queue a frame assembled from two parts (a header and a body), without a copy in between. */
static int writer_put2(agent_writer_t *w, const void *a, size_t alen, const void *b, size_t blen,
                       uint32_t max)
{
    size_t total = alen + blen;
    int ret;
    if (total > max)
        return -EMSGSIZE;
    ret = buf_reserve(&w->buf, &w->cap, &w->len, &w->off, 4 + total);
    if (ret < 0)
        return ret;
    put_be32(w->buf + w->len, (uint32_t)total);
    if (alen)
        memcpy(w->buf + w->len + 4, a, alen);
    if (blen)
        memcpy(w->buf + w->len + 4 + alen, b, blen);
    w->len += 4 + total;
    return 0;
}

int agent_writer_put(agent_writer_t *w, const void *payload, size_t len, uint32_t max)
{
    return writer_put2(w, payload, len, NULL, 0, max);
}

size_t agent_writer_pending(const agent_writer_t *w)
{
    return w->len - w->off;
}

int agent_writer_flush(agent_writer_t *w, int fd)
{
    while (w->off < w->len) {
        ssize_t n = write(fd, w->buf + w->off, w->len - w->off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        w->off += (size_t)n;
    }
    w->off = w->len = 0;
    return 0;
}

/* ---- control ---- */

int agent_json_decode(const uint8_t *payload, uint32_t len, json_t **ret_obj, char *why,
                      size_t why_size)
{
    json_error_t jerr;
    json_t *o = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        if (why)
            snprintf(why, why_size, "malformed JSON at %d: %s", jerr.position, jerr.text);
        return -EBADMSG;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        if (why)
            snprintf(why, why_size, "a control message must be a JSON object");
        return -EBADMSG;
    }
    *ret_obj = o;
    return 0;
}

int agent_json_put(agent_writer_t *w, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    int ret;
    if (!text)
        return -ENOMEM;
    ret = agent_writer_put(w, text, strlen(text), AGENT_CONTROL_MAX);
    free(text);
    return ret;
}

int agent_reply_ok(agent_writer_t *w, json_int_t id, json_t *extra)
{
    json_t *o = extra ? extra : json_object();
    int ret;
    if (!o)
        return -ENOMEM;
    if (json_object_set_new(o, "id", json_integer(id)) < 0 ||
        json_object_set_new(o, "ok", json_true()) < 0)
        ret = -ENOMEM;
    else
        ret = agent_json_put(w, o);
    json_decref(o);
    return ret;
}

int agent_reply_err(agent_writer_t *w, json_int_t id, int error_no, const char *msg)
{
    json_t *o = json_pack("{s:I, s:b, s:i, s:s}", "id", id, "ok", 0, "errno", error_no, "error",
                          msg ? msg : strerror(error_no));
    int ret;
    if (!o)
        return -ENOMEM;
    ret = agent_json_put(w, o);
    json_decref(o);
    return ret;
}

/* ---- stdio ---- */

int agent_stdio_decode(const uint8_t *payload, uint32_t len, agent_stdio_frame_t *ret)
{
    agent_stdio_frame_t f = { 0 };
    if (len < AGENT_STDIO_HEADER)
        return -EBADMSG;
    f.stream = get_be32(payload);
    f.type = payload[4];
    f.data = payload + AGENT_STDIO_HEADER;
    f.len = len - AGENT_STDIO_HEADER;
    switch (f.type) {
    case AGENT_STDIO_DATA:
        if (f.len > AGENT_STDIO_DATA_MAX)
            return -EBADMSG;
        break;
    case AGENT_STDIO_EOF:
        if (f.len != 0)
            return -EBADMSG;
        f.data = NULL;
        break;
    case AGENT_STDIO_CREDIT:
        if (f.len != 4)
            return -EBADMSG;
        f.credit = get_be32(f.data);
        f.data = NULL;
        f.len = 0;
        break;
    default:
        return -EBADMSG;
    }
    *ret = f;
    return 0;
}

static int stdio_put(agent_writer_t *w, uint32_t stream, uint8_t type, const void *data, size_t len)
{
    uint8_t h[AGENT_STDIO_HEADER];
    put_be32(h, stream);
    h[4] = type;
    return writer_put2(w, h, sizeof(h), data, len, AGENT_STDIO_MAX);
}

int agent_stdio_put_data(agent_writer_t *w, uint32_t stream, const void *data, size_t len)
{
    if (len > AGENT_STDIO_DATA_MAX)
        return -EMSGSIZE;
    return stdio_put(w, stream, AGENT_STDIO_DATA, data, len);
}

int agent_stdio_put_eof(agent_writer_t *w, uint32_t stream)
{
    return stdio_put(w, stream, AGENT_STDIO_EOF, NULL, 0);
}

int agent_stdio_put_credit(agent_writer_t *w, uint32_t stream, uint32_t bytes)
{
    uint8_t b[4];
    put_be32(b, bytes);
    return stdio_put(w, stream, AGENT_STDIO_CREDIT, b, sizeof(b));
}

/* ---- credits ---- */

void agent_credit_init(agent_credit_t *c)
{
    c->avail = AGENT_STDIO_WINDOW;
}

uint32_t agent_credit_allow(const agent_credit_t *c, uint32_t want)
{
    return want < c->avail ? want : c->avail;
}

int agent_credit_take(agent_credit_t *c, uint32_t n)
{
    if (n > c->avail)
        return -EPROTO;
    c->avail -= n;
    return 0;
}

int agent_credit_grant(agent_credit_t *c, uint32_t n)
{
    if (n > AGENT_STDIO_WINDOW - c->avail)
        return -EPROTO;
    c->avail += n;
    return 0;
}

/* ---- negotiation ---- */

int agent_negotiate(json_t *hello, uint32_t min, uint32_t max, uint32_t *ret_version)
{
    json_t *vs = json_object_get(hello, "versions"), *v;
    json_int_t best = 0;
    size_t i;
    if (!json_is_array(vs))
        return -EBADMSG;
    json_array_foreach (vs, i, v) {
        json_int_t n;
        if (!json_is_integer(v) || (n = json_integer_value(v)) <= 0)
            return -EBADMSG;
        if (n >= min && n <= max && n > best)
            best = n;
    }
    if (!best)
        return -EPROTONOSUPPORT;
    *ret_version = (uint32_t)best;
    return 0;
}

int agent_has_cap(json_t *obj, const char *cap)
{
    json_t *caps = json_object_get(obj, "caps"), *c;
    size_t i;
    json_array_foreach (caps, i, c)
        if (json_is_string(c) && strcmp(json_string_value(c), cap) == 0)
            return 1;
    return 0;
}
