/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd's HTTP/1.1 server: unix-socket and TCP listeners on a libuv loop,
 * requests parsed with http-parser, one handler call per complete request,
 * replies with a Content-Length, connections kept alive as HTTP/1.1 wants.
 * TCP is served only with mutual TLS (OpenSSL over memory BIOs: a TLS
 * connection runs the same HTTP code as a unix one, hijacked streams
 * included); a failed handshake costs its connection and one line on stderr.
 *
 * Contract for handlers: each call must answer exactly once (bd_respond*)
 * before it returns; the request and its strings live only until then. A
 * malformed request (bad syntax, a header or URL over the limits, a body
 * over BD_BODY_MAX) is answered by the server itself with a 4xx JSON error
 * and the connection closed; a client that goes away mid-request only
 * costs its own connection. A request asking to switch protocols
 * (Connection: Upgrade) that the handler does not take over with bd_hijack
 * is the connection's last: its reply says Connection: close.
 */
#ifndef BERTH_DAEMON_HTTP_H
#define BERTH_DAEMON_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include <berth/types.h>

#define BD_URL_MAX     8192
#define BD_HEADERS_MAX 100
#define BD_BODY_MAX    (32u << 20) /* a container create is a few KiB */

typedef struct bd_conn bd_conn_t;
typedef struct bd_server bd_server_t;

typedef struct bd_request {
    const char *method; /* "GET", "HEAD", "POST", ... */
    const char *path;   /* decoded of nothing: as sent, without the query */
    const char *query;  /* after '?', or "" */
    const char *body;   /* NUL-terminated copy, body_len bytes */
    size_t body_len;
    /*
     * A spooled body (bd_server_set_spool): the file holding it, which is
     * the handler's to remove; body is then empty. NULL otherwise.
     */
    const char *body_path;
    size_t n_headers;
    const char *header_names[BD_HEADERS_MAX]; /* as sent */
    const char *header_values[BD_HEADERS_MAX];
} bd_request_t;

typedef void (*bd_handler_fn)(bd_conn_t *c, const bd_request_t *req, void *userdata);

/* A server on @loop calling @fn for every request on any of its listeners. */
int bd_server_new(uv_loop_t *loop, bd_handler_fn fn, void *userdata, bd_server_t **ret,
                  berth_err_t *err);
/*
 * Listen on unix socket @path (an old socket file there is replaced), mode
 * @mode, group @gid unless (gid_t)-1.
 */
int bd_server_listen_unix(bd_server_t *s, const char *path, unsigned mode, gid_t gid,
                          berth_err_t *err);
/*
 * Mutual TLS for the server's TCP listeners: its certificate chain @cert
 * and private key @key (PEM), and the CA (PEM) that every client's
 * certificate must chain to; a client without one is refused in the
 * handshake. TLS 1.2 at least. Fails with a one-line message naming the
 * file for a file that is missing, not PEM, or a key that is not the
 * certificate's.
 */
int bd_server_set_tls(bd_server_t *s, const char *ca, const char *cert, const char *key,
                      berth_err_t *err);
/*
 * Listen on TCP @hostport ("HOST:PORT", "[V6ADDR]:PORT", ":PORT" for every
 * address, or "HOST" for port 2376) with the TLS of bd_server_set_tls,
 * which must have been set: there is no plain TCP.
 */
int bd_server_listen_tcp(bd_server_t *s, const char *hostport, berth_err_t *err);
/*
 * Bodies that go to a file rather than memory (docker load's archives can
 * be gigabytes): @want(method, path) is asked once a request's headers are
 * in; for a yes the body is written to a new file in @dir as it arrives,
 * with no limit but the disk's (BD_BODY_MAX is for bodies in memory), and
 * the request carries the file in body_path. A request that fails or is
 * abandoned before its handler runs has its file removed by the server.
 */
void bd_server_set_spool(bd_server_t *s, const char *dir,
                         int (*want)(const char *method, const char *path));
/* Close the listeners and every connection; the loop then ends. */
void bd_server_close(bd_server_t *s);

/* The value of header @name (case-insensitive), or NULL. */
const char *bd_header(const bd_request_t *req, const char *name);
/*
 * Query parameter @name, percent-decoded into @buf (NUL-terminated);
 * returns 1 when present, 0 when absent, -1 when it does not fit @len.
 */
int bd_query(const bd_request_t *req, const char *name, char *buf, size_t len);

/*
 * Answer: status, Content-Type (NULL: none) and body. Every reply also
 * carries the headers the docker client reads on any answer (Api-Version,
 * Ostype, Server, Docker-Experimental). @extra_headers, may be NULL, is
 * more header lines, each ending in "\r\n".
 */
void bd_respond(bd_conn_t *c, int status, const char *content_type, const char *extra_headers,
                const void *body, size_t len);
/* JSON body (@j stolen; NULL means an out-of-memory 500). */
void bd_respond_json(bd_conn_t *c, int status, json_t *j);
/* {"message": "..."} with Content-Type exactly application/json, as docker expects. */
BERTH_PRINTF(3, 4) void bd_respond_error(bd_conn_t *c, int status, const char *fmt, ...);

/*
 * Keep the request open past the handler's return (a wait, a stop): the
 * server neither answers it nor accepts another request on the connection
 * until bd_respond* or bd_stream_end is called through the returned
 * reference, which the caller drops with bd_conn_unref() when done. If the
 * client goes away meanwhile, the callback set with bd_on_gone() runs (on
 * the loop thread) and later answers are no-ops.
 */
bd_conn_t *bd_defer(bd_conn_t *c);
/* The loop the connection runs on, for a deferred request's own handles. */
uv_loop_t *bd_conn_loop(bd_conn_t *c);
void bd_conn_unref(bd_conn_t *c);
int bd_conn_gone(const bd_conn_t *c);
void bd_on_gone(bd_conn_t *c, void (*fn)(void *), void *userdata);

/*
 * A chunked reply: the head at once (the docker client returns from a
 * call as soon as it has the headers, then reads the body), then chunks,
 * then the end.
 */
void bd_stream_begin(bd_conn_t *c, int status, const char *content_type);
void bd_stream_write(bd_conn_t *c, const void *data, size_t len);
void bd_stream_end(bd_conn_t *c);

/*
 * Take the connection over for a raw two-way stream (attach, exec start):
 * the head is written at once, "101 UPGRADED" for @status 101 (the client
 * sent Upgrade: tcp), else "200 OK", with @content_type; after it nothing
 * is HTTP. Bytes from the client go to @on_data, its half-close to
 * @on_eof, its disappearance to @on_gone (which must drop the returned
 * reference with bd_conn_unref). bd_raw_write sends, bd_raw_close ends the
 * stream once what was written is sent; the reference is then still the
 * caller's to drop.
 */
bd_conn_t *bd_hijack(bd_conn_t *c, int status, const char *content_type,
                     void (*on_data)(void *ud, const char *buf, size_t n), void (*on_eof)(void *ud),
                     void (*on_gone)(void *ud), void *userdata);
void bd_raw_write(bd_conn_t *c, const void *data, size_t len);
void bd_raw_close(bd_conn_t *c);

/*
 * Run @len bytes through a new connection of @s that has no socket, as if a
 * client had sent them in reads of @chunk bytes (0: all in one) and then
 * closed: the parser, limits, handler calls and error replies of a real
 * connection, without I/O. Everything the connection would send goes to
 * @sink (may be NULL) as it is written. For tests and fuzzing: @s may have
 * a NULL loop, and the handler must not keep the request open past the
 * connection's end (a hijacked or deferred one is told by its on_gone).
 */
void bd_server_feed(bd_server_t *s, const void *data, size_t len, size_t chunk,
                    void (*sink)(void *ud, const char *data, size_t n), void *ud);

#endif /* BERTH_DAEMON_HTTP_H */
