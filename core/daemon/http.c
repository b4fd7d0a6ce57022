/* SPDX-License-Identifier: Apache-2.0 */
/* berthd's HTTP/1.1 server (http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <berth/engine.h>

#include "berth-build-config.h"

#include "http.h"

struct bd_server {
    uv_loop_t *loop;
    bd_handler_fn fn;
    void *userdata;
    struct listener *listeners;
    bd_conn_t *conns;
    SSL_CTX *tls; /* bd_server_set_tls; what every TCP listener serves */
    char spool_dir[4096];
    int (*spool_want)(const char *method, const char *path);
};

/* A libuv stream of either kind: unix sockets and TCP share every stream call. */
union stream {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
};

struct listener {
    union stream h;
    bd_server_t *s;
    struct listener *next;
    int tcp;
    char path[108]; /* a unix socket's, removed at close */
};

/* A growable byte buffer. */
struct buf {
    char *data;
    size_t len, cap;
};

struct bd_conn {
    union stream h;
    /*
     * No socket (bd_server_feed): what would be sent goes to sink, and the
     * feeder, not a close callback, drops the server's reference.
     */
    int detached;
    void (*sink)(void *ud, const char *data, size_t n);
    void *sink_ud;
    /*
     * TLS (a TCP listener): ciphertext goes through memory BIOs, so the
     * plaintext side is the same code as for a unix socket.
     */
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    char peer[64];    /* for the one line a failed handshake costs */
    int read_stopped;
    bd_server_t *s;
    bd_conn_t *next, **prevp;
    http_parser parser;
    struct buf url, body, hdr_name, hdr_value;
    /* header i's name and value as offsets into hdrs (NUL-separated) */
    struct buf hdrs;
    size_t name_off[BD_HEADERS_MAX], value_off[BD_HEADERS_MAX];
    size_t n_headers;
    int spool_fd;          /* the body goes to this file (bd_server_set_spool) */
    char spool_path[4200]; /* "" when no spool file is the connection's */
    int in_value;          /* the last header callback was for a value */
    int answered;          /* the current request has its reply */
    int closing;           /* no more requests: close once the writes are done */
    int fail_status;       /* the parser callbacks hit a limit: answer this and close */
    const char *fail_msg;
    int keep_alive;
    int refs;      /* the server's (until the handle is closed) and bd_defer's */
    int deferred;  /* a handler keeps the request open (bd_defer) */
    int streaming; /* a chunked reply is under way */
    int gone;      /* the handle is closed: answers are dropped */
    void (*on_gone)(void *);
    void *on_gone_ud;
    /* Hijacked (bd_hijack): raw bytes both ways, no more HTTP. */
    int hijacked;
    void (*on_data)(void *ud, const char *buf, size_t n);
    void (*on_eof)(void *ud);
    int close_after_writes;
};

static int buf_add(struct buf *b, const char *p, size_t n, size_t max)
{
    if (b->len + n + 1 > max)
        return -E2BIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(d = realloc(b->data, cap)))
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){ 0 };
}

/* ---- replies ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

struct write_req {
    uv_write_t req;
    char *data;
};

static void conn_close(bd_conn_t *c);
static void conn_unref(bd_conn_t *c);

/* Bytes queued to the socket and not yet sent (ciphertext, with TLS). */
static size_t conn_queued(bd_conn_t *c)
{
    return c->detached ? 0 : uv_stream_get_write_queue_size(&c->h.stream);
}

/* No more input: a closing connection reads no further requests. */
static void conn_read_stop(bd_conn_t *c)
{
    c->read_stopped = 1;
    if (!c->detached && !c->gone)
        uv_read_stop(&c->h.stream);
}

/* A write finished (@status < 0: it failed). */
static void after_write(bd_conn_t *c, int status)
{
    /* Close after the last reply of a connection that asked for it, or broke. */
    if (status < 0 || ((c->closing || c->close_after_writes) && !c->deferred && !c->streaming &&
                       conn_queued(c) == 0))
        conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    bd_conn_t *c = req->handle->data;

    free(w->data);
    free(w);
    after_write(c, status);
}

/* Queue @n bytes to the socket as they are (taken over: freed once written, or now on failure). */
static void socket_write(bd_conn_t *c, char *data, size_t n)
{
    struct write_req *w;
    uv_buf_t b;

    if (c->gone || !(w = calloc(1, sizeof(*w)))) {
        free(data);
        return;
    }
    w->data = data;
    b = uv_buf_init(data, (unsigned)n);
    if (uv_write(&w->req, &c->h.stream, &b, 1, on_written) < 0) {
        free(data);
        free(w);
        c->closing = 1;
        conn_close(c);
    }
}

/* Send what OpenSSL has written into the connection's outgoing BIO. */
static void tls_flush(bd_conn_t *c)
{
    size_t pending;

    while (!c->gone && (pending = BIO_ctrl_pending(c->wbio)) > 0) {
        char *data = malloc(pending);
        int n;
        if (!data) {
            c->closing = 1;
            conn_close(c);
            return;
        }
        n = BIO_read(c->wbio, data, (int)(pending > INT_MAX ? INT_MAX : pending));
        if (n <= 0) {
            free(data);
            return;
        }
        socket_write(c, data, (size_t)n);
    }
}

/* Queue @n bytes of the HTTP stream (taken over: freed once written, or now on failure). */
static void conn_write(bd_conn_t *c, char *data, size_t n)
{
    if (c->gone) {
        free(data);
        return;
    }
    if (c->detached) {
        if (c->sink)
            c->sink(c->sink_ud, data, n);
        free(data);
        after_write(c, 0);
        return;
    }
    if (c->ssl) {
        size_t written = 0;
        int ok;
        /* A memory BIO takes everything: the write is whole, or the connection is broken. */
        ERR_clear_error();
        ok = n == 0 || SSL_write_ex(c->ssl, data, n, &written);
        free(data);
        if (!ok) {
            ERR_clear_error();
            c->closing = 1;
            conn_close(c);
            return;
        }
        tls_flush(c);
        return;
    }
    socket_write(c, data, n);
}

/* The status line and the headers every reply carries, then @content_type and @extra. */
static int format_head(bd_conn_t *c, char *head, size_t size, int status, const char *content_type,
                       const char *extra)
{
    return snprintf(head, size,
                    "HTTP/1.1 %d %s\r\n"
                    "Api-Version: 1.50\r\n"
                    "Docker-Experimental: false\r\n"
                    "Ostype: linux\r\n"
                    "Server: berth/%s (linux)\r\n"
                    "%s%s%s"
                    "%s"
                    "%s",
                    status, reason(status), BERTH_VERSION, content_type ? "Content-Type: " : "",
                    content_type ? content_type : "", content_type ? "\r\n" : "",
                    c->closing ? "Connection: close\r\n" : "", extra ? extra : "");
}

void bd_respond(bd_conn_t *c, int status, const char *content_type, const char *extra_headers,
                const void *body, size_t len)
{
    int head_only = c->parser.method == HTTP_HEAD;
    char head[2048];
    char *out;
    int n;

    if (c->answered || c->gone)
        return;
    c->answered = 1;
    c->deferred = 0;
    if (!c->keep_alive)
        c->closing = 1;
    n = format_head(c, head, sizeof(head), status, content_type, extra_headers);
    if (n > 0 && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n\r\n", len);
    if (n <= 0 || (size_t)n >= sizeof(head) || !(out = malloc((size_t)n + (head_only ? 0 : len)))) {
        c->closing = 1;
        conn_close(c);
        return;
    }
    memcpy(out, head, (size_t)n);
    if (!head_only && len)
        memcpy(out + n, body, len);
    conn_write(c, out, (size_t)n + (head_only ? 0 : len));
}

void bd_stream_begin(bd_conn_t *c, int status, const char *content_type)
{
    char head[2048], *out;
    int n;

    if (c->answered || c->gone)
        return;
    c->answered = 1;
    c->streaming = 1;
    if (!c->keep_alive)
        c->closing = 1;
    n = format_head(c, head, sizeof(head), status, content_type,
                    "Transfer-Encoding: chunked\r\n\r\n");
    if (n <= 0 || (size_t)n >= sizeof(head) || !(out = malloc((size_t)n))) {
        c->closing = 1;
        conn_close(c);
        return;
    }
    memcpy(out, head, (size_t)n);
    conn_write(c, out, (size_t)n);
}

void bd_stream_write(bd_conn_t *c, const void *data, size_t len)
{
    char *out;
    int n;

    if (!c->streaming || c->gone || len == 0 || !(out = malloc(len + 32)))
        return;
    n = snprintf(out, 32, "%zx\r\n", len);
    memcpy(out + n, data, len);
    memcpy(out + n + len, "\r\n", 2);
    conn_write(c, out, (size_t)n + len + 2);
}

void bd_stream_end(bd_conn_t *c)
{
    char *out;

    if (!c->streaming)
        return;
    c->streaming = 0;
    c->deferred = 0;
    if (c->gone || !(out = strdup("0\r\n\r\n")))
        return;
    conn_write(c, out, 5);
}

bd_conn_t *bd_defer(bd_conn_t *c)
{
    c->deferred = 1;
    c->refs++;
    return c;
}

uv_loop_t *bd_conn_loop(bd_conn_t *c)
{
    return c->s->loop;
}

void bd_conn_unref(bd_conn_t *c)
{
    conn_unref(c);
}

int bd_conn_gone(const bd_conn_t *c)
{
    return c->gone;
}

void bd_on_gone(bd_conn_t *c, void (*fn)(void *), void *userdata)
{
    c->on_gone = fn;
    c->on_gone_ud = userdata;
}

bd_conn_t *bd_hijack(bd_conn_t *c, int status, const char *content_type,
                     void (*on_data)(void *ud, const char *buf, size_t n), void (*on_eof)(void *ud),
                     void (*on_gone)(void *ud), void *userdata)
{
    char head[512], *out;
    int n;

    c->answered = 1;
    c->hijacked = 1;
    c->deferred = 1;
    c->refs++;
    c->on_data = on_data;
    c->on_eof = on_eof;
    c->on_gone = on_gone;
    c->on_gone_ud = userdata;
    /* Written by hand, as Docker does: no length, no chunking, the connection is the stream. */
    n = status == 101 ? snprintf(head, sizeof(head),
                                 "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\n"
                                 "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
                                 content_type)
                      : snprintf(head, sizeof(head),
                                 "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                                 "Api-Version: 1.50\r\nOstype: linux\r\n\r\n",
                                 content_type);
    if (n > 0 && (size_t)n < sizeof(head) && (out = malloc((size_t)n))) {
        memcpy(out, head, (size_t)n);
        conn_write(c, out, (size_t)n);
    }
    return c;
}

void bd_raw_write(bd_conn_t *c, const void *data, size_t len)
{
    char *out;

    if (c->gone || len == 0 || !(out = malloc(len)))
        return;
    memcpy(out, data, len);
    conn_write(c, out, len);
}

void bd_raw_close(bd_conn_t *c)
{
    if (c->gone)
        return;
    c->deferred = 0;
    c->close_after_writes = 1;
    c->on_data = NULL;
    c->on_eof = NULL;
    if (conn_queued(c) == 0)
        conn_close(c);
}

void bd_respond_json(bd_conn_t *c, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    if (!text) {
        static const char oom[] = "{\"message\":\"out of memory\"}\n";
        bd_respond(c, 500, "application/json", NULL, oom, sizeof(oom) - 1);
        return;
    }
    {
        size_t len = strlen(text);
        char *withnl = realloc(text, len + 2);
        if (withnl) {
            text = withnl;
            text[len++] = '\n';
            text[len] = '\0';
        }
        bd_respond(c, status, "application/json", NULL, text, len);
    }
    free(text);
}

void bd_respond_error(bd_conn_t *c, int status, const char *fmt, ...)
{
    char msg[BERTH_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A file name from a hostile image, or a message cut mid-character: still JSON. */
    berth_utf8_fix(msg);
    bd_respond_json(c, status, json_pack("{s:s}", "message", msg));
}

/* ---- requests ---- */

const char *bd_header(const bd_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->header_names[i], name) == 0)
            return req->header_values[i];
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int bd_query(const bd_request_t *req, const char *name, char *buf, size_t len)
{
    size_t nlen = strlen(name);
    const char *p = req->query;

    while (p && *p) {
        const char *end = strchr(p, '&'), *eq;
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        eq = memchr(p, '=', plen);
        if ((eq ? (size_t)(eq - p) : plen) == nlen && strncmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : p + plen, *vend = p + plen;
            size_t o = 0;
            while (v < vend) {
                char ch = *v++;
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%' && vend - v >= 2 && hexval(v[0]) >= 0 && hexval(v[1]) >= 0) {
                    ch = (char)(hexval(v[0]) * 16 + hexval(v[1]));
                    v += 2;
                }
                if (o + 1 >= len)
                    return -1;
                buf[o++] = ch;
            }
            buf[o] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static void fail(bd_conn_t *c, int status, const char *msg)
{
    if (!c->fail_status) {
        c->fail_status = status;
        c->fail_msg = msg;
    }
}

/* Drop a spool file that no handler took (a failed or abandoned request). */
static void spool_drop(bd_conn_t *c)
{
    if (c->spool_fd >= 0)
        close(c->spool_fd);
    c->spool_fd = -1;
    if (c->spool_path[0])
        unlink(c->spool_path);
    c->spool_path[0] = '\0';
}

/* Whether this request's body goes to a file: asked once its headers are in. */
static int spool_begin(bd_conn_t *c, const http_parser *p)
{
    bd_server_t *s = c->s;
    char *q;
    int want;

    if (!s->spool_want || !c->url.data)
        return 0;
    q = strchr(c->url.data, '?');
    if (q)
        *q = '\0';
    want = s->spool_want(http_method_str((enum http_method)p->method), c->url.data);
    if (q)
        *q = '?';
    if (!want)
        return 0;
    snprintf(c->spool_path, sizeof(c->spool_path), "%s/body-XXXXXX", s->spool_dir);
    if ((c->spool_fd = mkostemp(c->spool_path, O_CLOEXEC)) < 0) {
        c->spool_path[0] = '\0';
        fail(c, 500, "cannot spool the request body");
        return -1;
    }
    return 1;
}

static int on_message_begin(http_parser *p)
{
    bd_conn_t *c = p->data;
    spool_drop(c);
    buf_reset(&c->url);
    buf_reset(&c->body);
    buf_reset(&c->hdrs);
    buf_reset(&c->hdr_name);
    buf_reset(&c->hdr_value);
    c->n_headers = 0;
    c->in_value = 0;
    c->answered = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    bd_conn_t *c = p->data;
    if (buf_add(&c->url, at, len, BD_URL_MAX) < 0) {
        fail(c, 400, "request URL too long");
        return -1;
    }
    return 0;
}

/* Store the header collected so far (name and value complete). */
static int header_done(bd_conn_t *c)
{
    if (!c->hdr_name.len)
        return 0;
    if (c->n_headers == BD_HEADERS_MAX) {
        fail(c, 431, "too many request headers");
        return -1;
    }
    c->name_off[c->n_headers] = c->hdrs.len;
    if (buf_add(&c->hdrs, c->hdr_name.data, c->hdr_name.len + 1, 1u << 20) < 0)
        return -1;
    c->value_off[c->n_headers] = c->hdrs.len;
    if (buf_add(&c->hdrs, c->hdr_value.data ? c->hdr_value.data : "", c->hdr_value.len + 1,
                1u << 20) < 0)
        return -1;
    c->n_headers++;
    buf_reset(&c->hdr_name);
    buf_reset(&c->hdr_value);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    bd_conn_t *c = p->data;
    if (c->in_value && header_done(c) < 0)
        return -1;
    c->in_value = 0;
    return buf_add(&c->hdr_name, at, len, 8192) < 0 ? (fail(c, 431, "request header too large"), -1)
                                                    : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    bd_conn_t *c = p->data;
    c->in_value = 1;
    /* An empty value still makes the buffer exist. */
    if (!c->hdr_value.data && buf_add(&c->hdr_value, "", 0, 65536) < 0)
        return -1;
    return buf_add(&c->hdr_value, at, len, 65536) < 0
               ? (fail(c, 431, "request header too large"), -1)
               : 0;
}

static int on_headers_complete(http_parser *p)
{
    bd_conn_t *c = p->data;
    if (c->in_value && header_done(c) < 0)
        return -1;
    c->in_value = 0;
    switch (spool_begin(c, p)) {
    case 1:
        return 0; /* a file takes it: no limit but the disk's */
    case -1:
        return -1;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > BD_BODY_MAX) {
        fail(c, 413, "request body too large");
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    bd_conn_t *c = p->data;
    if (c->spool_fd >= 0) {
        /* The page cache takes it at memory speed; the loop waits no longer than a memcpy. */
        while (len > 0) {
            ssize_t n = write(c->spool_fd, at, len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                fail(c, errno == ENOSPC ? 507 : 500, "cannot spool the request body");
                return -1;
            }
            at += n;
            len -= (size_t)n;
        }
        return 0;
    }
    if (buf_add(&c->body, at, len, BD_BODY_MAX) < 0) {
        fail(c, 413, "request body too large");
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    bd_conn_t *c = p->data;
    bd_request_t req = { 0 };
    char *q;

    if (!c->url.data || c->url.data[0] != '/') {
        fail(c, 400, "bad request target");
        return -1;
    }
    req.method = http_method_str((enum http_method)p->method);
    q = strchr(c->url.data, '?');
    if (q)
        *q++ = '\0';
    req.path = c->url.data;
    req.query = q ? q : "";
    req.body = c->body.data ? c->body.data : "";
    req.body_len = c->body.len;
    if (c->spool_fd >= 0) {
        /* The file is the handler's from here on. */
        close(c->spool_fd);
        c->spool_fd = -1;
        req.body_path = c->spool_path;
    }
    req.n_headers = c->n_headers;
    for (size_t i = 0; i < c->n_headers; i++) {
        req.header_names[i] = c->hdrs.data + c->name_off[i];
        req.header_values[i] = c->hdrs.data + c->value_off[i];
    }
    /*
     * A client that asked to switch protocols (Connection: Upgrade, or
     * CONNECT) sends what follows in the new protocol: unless the handler
     * takes the stream over (bd_hijack), the connection ends with the
     * reply, as nothing after it can be read as HTTP.
     */
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    c->s->fn(c, &req, c->s->userdata);
    c->spool_path[0] = '\0';
    if (!c->answered && !c->deferred)
        bd_respond_error(c, 500, "the request got no answer");
    /* A closing connection reads no more requests (pipelined ones are dropped). */
    return c->closing || c->hijacked ? -1 : 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connections ---- */

static void conn_unref(bd_conn_t *c)
{
    if (--c->refs > 0)
        return;
    spool_drop(c);
    buf_free(&c->url);
    buf_free(&c->body);
    buf_free(&c->hdrs);
    buf_free(&c->hdr_name);
    buf_free(&c->hdr_value);
    SSL_free(c->ssl);
    free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void conn_close(bd_conn_t *c)
{
    if (c->gone)
        return;
    if (c->ssl && SSL_is_init_finished(c->ssl) && conn_queued(c) == 0) {
        /* Tell a TLS peer the stream ends here, if the socket takes it at once (best effort). */
        char alert[256];
        int n;
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        if ((n = BIO_read(c->wbio, alert, sizeof(alert))) > 0) {
            uv_buf_t b = uv_buf_init(alert, (unsigned)n);
            uv_try_write(&c->h.stream, &b, 1);
        }
    }
    c->gone = 1;
    if (c->prevp) {
        *c->prevp = c->next;
        if (c->next)
            c->next->prevp = c->prevp;
        c->prevp = NULL;
    }
    /* A detached connection is freed by its feeder (bd_server_feed), after the last callback. */
    if (!c->detached)
        uv_close(&c->h.handle, on_conn_closed);
    /* Whoever holds the request open learns now (and must still drop its reference). */
    if (c->on_gone) {
        void (*fn)(void *) = c->on_gone;
        c->on_gone = NULL;
        fn(c->on_gone_ud);
    }
}

/*
 * The end of the client's bytes: @status is UV_EOF for an orderly end (a
 * half-close, which a hijacked stream passes on), else an error.
 */
static void conn_input_end(bd_conn_t *c, int status)
{
    if (c->gone)
        return;
    if (c->hijacked && status == UV_EOF) {
        /* A half-close: the client sent all its input and still reads ours. */
        conn_read_stop(c);
        if (c->on_eof)
            c->on_eof(c->on_gone_ud);
        return;
    }
    /* EOF or an error: the client is gone (or half-closed with nothing pending). */
    conn_close(c);
}

/* @n bytes of the client's HTTP stream (plaintext), as they arrived. */
static void conn_input(bd_conn_t *c, const char *data, size_t n)
{
    size_t used;

    if (c->gone || n == 0)
        return;
    if (c->hijacked) {
        if (c->on_data)
            c->on_data(c->on_gone_ud, data, n);
        return;
    }
    if (c->closing || c->read_stopped)
        return;
    if (c->deferred || c->streaming) {
        /* A request while the last one is still open: HTTP clients don't pipeline past one. */
        conn_close(c);
        return;
    }
    used = http_parser_execute(&c->parser, &settings, data, n);
    if (c->gone)
        return;
    if (c->hijacked) {
        /* Bytes after an upgrade request's head are already the stream's. */
        if (used < n && c->on_data)
            c->on_data(c->on_gone_ud, data + used, n - used);
        return;
    }
    if (c->closing) {
        conn_read_stop(c);
        if (conn_queued(c) == 0 && !c->answered && !c->deferred)
            conn_close(c);
        return;
    }
    if (c->parser.http_errno != HPE_OK || used != n) {
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        int status = c->fail_status ? c->fail_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
        const char *msg = c->fail_msg ? c->fail_msg : http_errno_description(e);
        conn_read_stop(c);
        c->keep_alive = 0;
        c->answered = 0;
        bd_respond_error(c, status, "malformed request: %s", msg);
    }
}

/* A TLS connection that failed: one line to stderr, the alert sent, the connection closed. */
static void tls_fail(bd_conn_t *c, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    fprintf(stderr, "berthd: TLS %s with %s failed: %s\n", what, c->peer,
            reason ? reason : "connection broken");
    ERR_clear_error();
    tls_flush(c);
    c->closing = 1;
    conn_read_stop(c);
    if (!c->gone && conn_queued(c) == 0)
        conn_close(c);
}

/* Ciphertext from the socket: the handshake first, then plaintext for conn_input. */
static void tls_input(bd_conn_t *c, const char *data, size_t n)
{
    char plain[16384];
    size_t got;
    int r;

    if (BIO_write(c->rbio, data, (int)n) != (int)n) {
        tls_fail(c, "read");
        return;
    }
    if (!SSL_is_init_finished(c->ssl)) {
        ERR_clear_error();
        r = SSL_do_handshake(c->ssl);
        if (r <= 0) {
            if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ) {
                tls_flush(c);
                return;
            }
            tls_fail(c, "handshake");
            return;
        }
        tls_flush(c);
    }
    while (!c->gone && !c->read_stopped) {
        ERR_clear_error();
        if (!SSL_read_ex(c->ssl, plain, sizeof(plain), &got)) {
            int e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_READ) {
                tls_flush(c);
                return;
            }
            if (e == SSL_ERROR_ZERO_RETURN) {
                /* close_notify: the client's orderly end of its half */
                ERR_clear_error();
                conn_input_end(c, UV_EOF);
                return;
            }
            tls_fail(c, "read");
            return;
        }
        conn_input(c, plain, got);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    bd_conn_t *c = st->data;

    if (n > 0 && c->ssl)
        tls_input(c, b->base, (size_t)n);
    else if (n > 0)
        conn_input(c, b->base, (size_t)n);
    else if (n < 0)
        conn_input_end(c, (int)n);
    free(b->base);
}

/* A new connection's state, not yet on a socket or in the server's list. */
static bd_conn_t *conn_new(bd_server_t *s)
{
    bd_conn_t *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->s = s;
    c->refs = 1;
    c->spool_fd = -1;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = 1;
    return c;
}

/* "ADDR:PORT" of a TCP peer, for log lines. */
static void peer_name(bd_conn_t *c)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&sa, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&sa, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        }
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    bd_conn_t *c;

    if (status < 0 || !(c = conn_new(l->s)))
        return;
    if (l->tcp) {
        uv_tcp_init(l->s->loop, &c->h.tcp);
        /* Interactive streams (docker run -it) want every keystroke sent at once. */
        uv_tcp_nodelay(&c->h.tcp, 1);
    } else {
        uv_pipe_init(l->s->loop, &c->h.pipe, 0);
    }
    c->h.handle.data = c;
    if (uv_accept(server, &c->h.stream) < 0) {
        c->gone = 1;
        uv_close(&c->h.handle, on_conn_closed);
        return;
    }
    if (l->tcp) {
        peer_name(c);
        if (!(c->ssl = SSL_new(l->s->tls)) || !(c->rbio = BIO_new(BIO_s_mem())) ||
            !(c->wbio = BIO_new(BIO_s_mem()))) {
            fprintf(stderr, "berthd: TLS with %s: out of memory\n", c->peer);
            BIO_free(c->rbio);
            ERR_clear_error();
            c->gone = 1;
            uv_close(&c->h.handle, on_conn_closed);
            return;
        }
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    c->next = l->s->conns;
    if (c->next)
        c->next->prevp = &c->next;
    c->prevp = &l->s->conns;
    l->s->conns = c;
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

static void on_listener_closed(uv_handle_t *h)
{
    free(h->data);
}

int bd_server_new(uv_loop_t *loop, bd_handler_fn fn, void *userdata, bd_server_t **ret,
                  berth_err_t *err)
{
    bd_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return berth_err_set(err, -ENOMEM, "out of memory");
    s->loop = loop;
    s->fn = fn;
    s->userdata = userdata;
    *ret = s;
    return 0;
}

int bd_server_listen_unix(bd_server_t *s, const char *path, unsigned mode, gid_t gid,
                          berth_err_t *err)
{
    struct listener *l;
    int r;

    if (strlen(path) >= sizeof(l->path))
        return berth_err_set(err, -ENAMETOOLONG, "socket path too long: %s", path);
    if (!(l = calloc(1, sizeof(*l))))
        return berth_err_set(err, -ENOMEM, "out of memory");
    snprintf(l->path, sizeof(l->path), "%s", path);
    l->s = s;
    uv_pipe_init(s->loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    /* A socket file left by a daemon that died: nobody can be listening on it. */
    unlink(path);
    if ((r = uv_pipe_bind(&l->h.pipe, path)) < 0 ||
        (r = uv_listen(&l->h.stream, 128, on_connection)) < 0) {
        uv_close(&l->h.handle, on_listener_closed);
        return berth_err_set(err, r, "listen on %s: %s", path, uv_strerror(r));
    }
    if (chmod(path, mode) < 0 || (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0)) {
        r = -errno;
        uv_close(&l->h.handle, on_listener_closed);
        unlink(path);
        return berth_err_set(err, r, "%s: %s", path, strerror(-r));
    }
    l->next = s->listeners;
    s->listeners = l;
    return 0;
}

/* OpenSSL's reason for the last failure, then its queue emptied. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r ? r : "unknown error";
}

/* The file must exist and be readable: OpenSSL's own messages for that are cryptic. */
static int check_readable(const char *what, const char *path, berth_err_t *err)
{
    FILE *f = fopen(path, "r");

    if (!f)
        return berth_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
    fclose(f);
    return 0;
}

int bd_server_set_tls(bd_server_t *s, const char *ca, const char *cert, const char *key,
                      berth_err_t *err)
{
    STACK_OF(X509_NAME) * names;
    SSL_CTX *ctx;
    int r;

    if ((r = check_readable("TLS CA certificate", ca, err)) < 0 ||
        (r = check_readable("TLS certificate", cert, err)) < 0 ||
        (r = check_readable("TLS key", key, err)) < 0)
        return r;
    ERR_clear_error();
    if (!(ctx = SSL_CTX_new(TLS_server_method())))
        return berth_err_set(err, -ENOMEM, "TLS: %s", ssl_reason());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        r = berth_err_set(err, -EINVAL, "TLS certificate %s: %s (a PEM certificate is needed)",
                          cert, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        r = berth_err_set(err, -EINVAL, "TLS key %s: %s (a PEM private key is needed)", key,
                          ssl_reason());
        goto fail;
    }
    /* OpenSSL takes a key that is not the certificate's: it fails this check instead. */
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        r = berth_err_set(err, -EINVAL, "TLS key %s does not belong to the certificate %s", key,
                          cert);
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        r = berth_err_set(err, -EINVAL, "TLS CA certificate %s: %s (a PEM certificate is needed)",
                          ca, ssl_reason());
        goto fail;
    }
    /* Mutual TLS: a client without a certificate from this CA is refused in the handshake. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if ((names = SSL_load_client_CA_file(ca)))
        SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
    SSL_CTX_free(s->tls);
    s->tls = ctx;
    return 0;

fail:
    SSL_CTX_free(ctx);
    return r;
}

int bd_server_listen_tcp(bd_server_t *s, const char *hostport, berth_err_t *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char host[256], port[16] = "2376";
    const char *colon, *h = hostport;
    size_t hlen;
    struct listener *l;
    int r;

    if (!s->tls)
        return berth_err_set(err, -EINVAL, "tcp://%s: TCP needs mutual TLS, and none is set up",
                             hostport);
    /* HOST:PORT, [V6ADDR]:PORT, :PORT (every address), HOST (port 2376, as dockerd's TLS port) */
    if (*h == '[') {
        const char *end = strchr(h, ']');
        if (!end || (end[1] && end[1] != ':'))
            return berth_err_set(err, -EINVAL, "tcp://%s: bad address", hostport);
        hlen = (size_t)(end - h - 1);
        h++;
        colon = end[1] ? end + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        hlen = colon ? (size_t)(colon - h) : strlen(h);
    }
    if (hlen >= sizeof(host))
        return berth_err_set(err, -EINVAL, "tcp://%s: bad address", hostport);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (colon) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || p == 0 || p > 65535)
            return berth_err_set(err, -EINVAL, "tcp://%s: bad port", hostport);
        snprintf(port, sizeof(port), "%lu", p);
    }
    if ((r = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0)
        return berth_err_set(err, -EINVAL, "tcp://%s: %s", hostport, gai_strerror(r));
    if (!(l = calloc(1, sizeof(*l)))) {
        freeaddrinfo(ai);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    l->s = s;
    l->tcp = 1;
    uv_tcp_init(s->loop, &l->h.tcp);
    l->h.handle.data = l;
    r = uv_tcp_bind(&l->h.tcp, ai->ai_addr, 0);
    freeaddrinfo(ai);
    if (r < 0 || (r = uv_listen(&l->h.stream, 128, on_connection)) < 0) {
        uv_close(&l->h.handle, on_listener_closed);
        return berth_err_set(err, r, "listen on tcp://%s: %s", hostport, uv_strerror(r));
    }
    l->next = s->listeners;
    s->listeners = l;
    return 0;
}

void bd_server_feed(bd_server_t *s, const void *data, size_t len, size_t chunk,
                    void (*sink)(void *ud, const char *data, size_t n), void *ud)
{
    bd_conn_t *c = conn_new(s);
    const char *p = data;

    if (!c)
        return;
    c->detached = 1;
    c->sink = sink;
    c->sink_ud = ud;
    if (!chunk)
        chunk = len ? len : 1;
    while (len > 0 && !c->gone) {
        size_t n = len < chunk ? len : chunk;
        conn_input(c, p, n);
        p += n;
        len -= n;
    }
    /* The client closes, and the connection is torn down as a socket's would be. */
    conn_input_end(c, UV_EOF);
    conn_close(c);
    conn_unref(c);
}

void bd_server_set_spool(bd_server_t *s, const char *dir,
                         int (*want)(const char *method, const char *path))
{
    snprintf(s->spool_dir, sizeof(s->spool_dir), "%s", dir);
    s->spool_want = want;
}

void bd_server_close(bd_server_t *s)
{
    while (s->listeners) {
        struct listener *l = s->listeners;
        s->listeners = l->next;
        if (!l->tcp)
            unlink(l->path);
        uv_close(&l->h.handle, on_listener_closed);
    }
    while (s->conns)
        conn_close(s->conns);
    SSL_CTX_free(s->tls);
    free(s);
}
