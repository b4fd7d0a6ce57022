/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: berthd's HTTP request layer (core/daemon/http.c) through
 * bd_server_feed, the code path of a real connection without the socket:
 * http-parser with berthd's callbacks and limits, error replies, keep-alive
 * and pipelining, chunked replies, deferred requests and the hijacked
 * streams of attach and exec.
 *
 * Every input is fed twice, in one read and in reads of a few bytes, and
 * the two runs must see the same requests and send the same replies: a
 * request must not depend on where the reads happened to split it. Only
 * the server's own error reply may differ: http-parser reports a field as
 * it ends or as a read ends, so with two faults in one request, either
 * may be found first (a 431 for too many headers or a 400 for a bad
 * character in the last). Both must then be a 4xx, after the same replies.
 */
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct run {
    char *out; /* what the connection sent */
    size_t out_len, out_cap;
    size_t requests, raw_in; /* handler calls, bytes on hijacked streams */
    uint64_t digest;         /* of the requests as the handler saw them */
    bd_conn_t *held;         /* a hijacked stream's reference */
    int in_handler;
    size_t server_reply; /* offset of the server's own (error) reply in out, or SIZE_MAX */
};

static void die(const char *what)
{
    fprintf(stderr, "fuzz-http: %s\n", what);
    abort();
}

/* FNV-1a over bytes; a stream's bytes are mixed without a separator, as they may come split. */
static void mix_bytes(struct run *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        r->digest = (r->digest ^ b[i]) * 1099511628211ull;
}

/* One field of a request, ended by a separator. */
static void mix(struct run *r, const void *p, size_t n)
{
    mix_bytes(r, p, n);
    r->digest = (r->digest ^ 0x100) * 1099511628211ull;
}

static void sink(void *ud, const char *data, size_t n)
{
    struct run *r = ud;

    if (!r->in_handler && !r->held && r->server_reply == SIZE_MAX)
        r->server_reply = r->out_len;
    if (r->out_len + n > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 4096;
        char *grown;
        while (cap < r->out_len + n)
            cap *= 2;
        if (!(grown = realloc(r->out, cap)))
            die("out of memory");
        r->out = grown;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, data, n);
    r->out_len += n;
}

static void on_raw_data(void *ud, const char *buf, size_t n)
{
    struct run *r = ud;
    r->raw_in += n;
    mix_bytes(r, buf, n);
}

static void on_raw_eof(void *ud)
{
    struct run *r = ud;
    if (r->held)
        bd_raw_close(r->held);
}

static void on_raw_gone(void *ud)
{
    struct run *r = ud;
    if (r->held)
        bd_conn_unref(r->held);
    r->held = NULL;
}

/* What api.c does with a request, in miniature: read it all, answer every way there is. */
static void handler(bd_conn_t *c, const bd_request_t *req, void *ud)
{
    struct run *r = ud;
    char q[64];
    json_t *j;

    r->requests++;
    r->in_handler = 1;
    if (!req->method || !req->path || req->path[0] != '/' || strlen(req->path) >= BD_URL_MAX ||
        !req->query || !req->body || req->body_len > BD_BODY_MAX || req->body[req->body_len] ||
        req->n_headers > BD_HEADERS_MAX)
        die("a request outside the contract of http.h");
    mix(r, req->method, strlen(req->method));
    mix(r, req->path, strlen(req->path));
    mix(r, req->query, strlen(req->query));
    mix(r, req->body, req->body_len);
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!req->header_names[i] || !req->header_values[i])
            die("a header without a name or value");
        mix(r, req->header_names[i], strlen(req->header_names[i]));
        mix(r, req->header_values[i], strlen(req->header_values[i]));
    }
    if (bd_query(req, "name", q, sizeof(q)) > 0)
        mix(r, q, strlen(q));
    bd_query(req, "t", q, 2);

    if (bd_header(req, "Upgrade") || strncmp(req->path, "/attach", 7) == 0) {
        if (r->held)
            die("a second hijack on one connection");
        r->held =
            bd_hijack(c, bd_header(req, "Upgrade") ? 101 : 200, "application/vnd.docker.raw-stream",
                      on_raw_data, on_raw_eof, on_raw_gone, r);
        bd_raw_write(r->held, "hello\n", 6);
    } else if (strncmp(req->path, "/stream", 7) == 0) {
        bd_stream_begin(c, 200, "application/json");
        bd_stream_write(c, req->body, req->body_len);
        bd_stream_write(c, "{}\n", 3);
        bd_stream_end(c);
    } else if (strncmp(req->path, "/defer", 6) == 0) {
        bd_conn_t *d = bd_defer(c);
        bd_respond(d, 204, NULL, NULL, NULL, 0);
        bd_conn_unref(d);
    } else if (strcmp(req->path, "/nosuch") == 0) {
        bd_respond_error(c, 404, "page not found");
    } else {
        j = json_pack("{s:s, s:s, s:I}", "method", req->method, "path", req->path, "len",
                      (json_int_t)req->body_len);
        bd_respond_json(c, 200, j);
    }
    r->in_handler = 0;
}

static void run(const uint8_t *data, size_t size, size_t chunk, struct run *r)
{
    bd_server_t *s;

    memset(r, 0, sizeof(*r));
    r->server_reply = SIZE_MAX;
    if (bd_server_new(NULL, handler, r, &s, NULL) < 0)
        die("bd_server_new");
    bd_server_feed(s, data, size, chunk, sink, r);
    if (r->held)
        die("a hijacked stream outlived its connection");
    bd_server_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, pieces;

    run(data, size, 0, &whole);
    run(data, size, 1 + size % 7, &pieces);
    if (whole.requests != pieces.requests || whole.digest != pieces.digest ||
        whole.raw_in != pieces.raw_in)
        die("the same bytes, read in other pieces, gave other requests");
    if (whole.server_reply != pieces.server_reply)
        die("the same bytes, read in other pieces, gave another error or none");
    if (whole.server_reply == SIZE_MAX) {
        if (whole.out_len != pieces.out_len ||
            (whole.out_len && memcmp(whole.out, pieces.out, whole.out_len) != 0))
            die("the same bytes, read in other pieces, gave other replies");
    } else {
        size_t at = whole.server_reply;
        if ((at && memcmp(whole.out, pieces.out, at) != 0) || whole.out_len < at + 10 ||
            pieces.out_len < at + 10 || memcmp(whole.out + at, "HTTP/1.1 4", 10) != 0 ||
            memcmp(pieces.out + at, "HTTP/1.1 4", 10) != 0)
            die("the same bytes, read in other pieces, gave other replies before the error");
    }
    free(whole.out);
    free(pieces.out);
    return 0;
}
