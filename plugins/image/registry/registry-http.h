/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry driver's HTTP transfers, over libcurl's multi interface.
 *
 * A client holds what one session's transfers share: a CURLSH (DNS cache
 * and TLS sessions, locked for use from several threads) and a small pool
 * of idle multi+easy pairs, whose multi handles keep connections alive
 * between transfers. A transfer takes a pair from the pool and gives it
 * back when freed; pairs are never used by two transfers at once, so
 * transfers of one client may run on different threads concurrently.
 *
 * A transfer is driven only from inside its calls (wait_headers, finish,
 * read): nothing runs in the background. Redirects are not followed here
 * (the caller decides which credentials may follow them), and bodies are
 * passed on as stored (no Content-Encoding decoding).
 *
 * Bodies: responses with a 2xx status are either collected whole, up to a
 * limit (REG_XFER_BUFFER), or streamed through a fixed buffer
 * (REG_XFER_STREAM): when it is full the transfer pauses until read()
 * drains it, so memory stays bounded however large the blob. Bodies of
 * other statuses are always collected, up to REG_ERRBODY_MAX (the rest is
 * dropped), for their error message.
 *
 * Timeouts: connecting (name lookup included) may take REG_CONNECT_TIMEOUT_S;
 * a transfer that receives nothing for REG_STALL_TIMEOUT_S while it is
 * being waited for fails with -ETIMEDOUT. Time the caller spends away from
 * a paused stream does not count.
 */
#ifndef IMAGE_REGISTRY_HTTP_H
#define IMAGE_REGISTRY_HTTP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include <berth/types.h>

#define REG_CONNECT_TIMEOUT_S 30
#define REG_STALL_TIMEOUT_S   60
#define REG_HEADERS_MAX       (64 * 1024) /* all header lines of one response */
#define REG_WWW_AUTH_MAX      (8 * 1024)  /* WWW-Authenticate values, joined */
#define REG_ERRBODY_MAX       (64 * 1024)
#define REG_STREAM_BUF        (1024 * 1024)
#define REG_RECV_BUF          (256 * 1024) /* curl's receive buffer for streamed bodies */
#define REG_POOL_MAX          8

typedef struct reg_conn reg_conn_t;

typedef struct reg_client {
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    reg_conn_t *pool[REG_POOL_MAX];
    size_t n_pool;
    char *user_agent; /* owned */
    char *ca_file;    /* owned, NULL for the system's CA bundle */
    int verify_tls;   /* 0: accept any certificate ("insecure") */
} reg_client_t;

/*
 * Set up @c (caller-allocated). @user_agent and @ca_file (may be NULL) are
 * copied. Returns 0 or a negative errno with the reason in @err; on failure
 * nothing needs releasing.
 */
int image_registry_client_init(reg_client_t *c, const char *user_agent, const char *ca_file,
                               int verify_tls, berth_err_t *err);

/* Free the pool and the share. No transfer of @c may still exist. */
void image_registry_client_release(reg_client_t *c);

/* The final response's status and the headers the driver uses. */
typedef struct reg_response {
    long status;            /* 0 until the status line arrived */
    char content_type[256]; /* "" when absent or too long */
    char digest[80];        /* Docker-Content-Digest as sent, "" when absent or too long */
    char content_range[96]; /* "" when absent */
    int64_t content_length; /* -1 when absent */
    char *www_authenticate; /* every WWW-Authenticate value joined with ", "; NULL when none */
} reg_response_t;

#define REG_XFER_BUFFER 0
#define REG_XFER_STREAM 1

typedef struct reg_xfer reg_xfer_t;

/*
 * Start a request for @url: GET, or POST of @post_form (an
 * application/x-www-form-urlencoded body) when it is not NULL. @headers
 * (may be NULL) is taken over in every case: freed, wiped, by the transfer.
 * @mode is REG_XFER_BUFFER (2xx bodies up to @body_limit bytes) or
 * REG_XFER_STREAM (@body_limit unused).
 * Returns 0 with *ret_x set, or a negative errno with the reason in @err.
 */
int image_registry_xfer_start(reg_client_t *c, const char *url, const char *post_form,
                              struct curl_slist *headers, int mode, size_t body_limit,
                              reg_xfer_t **ret_x, berth_err_t *err);

/*
 * Drive the transfer until the final response's headers are in. Returns 0
 * (see image_registry_xfer_response()), or a negative errno for a transfer
 * that failed before that (-ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT,
 * -EPROTO for TLS, -ECONNRESET, ...) with curl's message in @err.
 */
int image_registry_xfer_wait_headers(reg_xfer_t *x, berth_err_t *err);

/* The response; valid until the transfer is freed. */
const reg_response_t *image_registry_xfer_response(const reg_xfer_t *x);

/*
 * Drive the transfer to its end, collecting the body (not for the 2xx body
 * of a REG_XFER_STREAM transfer: -EINVAL; read that). Returns 0, -EFBIG
 * when a 2xx body passed the limit of a REG_XFER_BUFFER transfer, or a
 * negative errno for a failed transfer (message in @err). A body of a non-2xx
 * response cut at REG_ERRBODY_MAX is not a failure.
 */
int image_registry_xfer_finish(reg_xfer_t *x, berth_err_t *err);

/* The collected body (not NUL-terminated) and its length; valid until freed. */
const char *image_registry_xfer_body(const reg_xfer_t *x, size_t *ret_len);

/*
 * Take the collected body: a malloc'd buffer with a NUL after its @ret_len
 * bytes, owned by the caller; the transfer no longer holds it. NULL when
 * out of memory.
 */
char *image_registry_xfer_take_body(reg_xfer_t *x, size_t *ret_len);

/*
 * The absolute URL a 3xx response points to, borrowed until the transfer
 * is freed; NULL when there is none.
 */
const char *image_registry_xfer_redirect_url(reg_xfer_t *x);

/*
 * Read the next bytes of a REG_XFER_STREAM transfer whose headers are in.
 * Returns the number of bytes (> 0), 0 at the end of a complete body, or a
 * negative errno (a connection cut before the end is -ECONNRESET) with
 * curl's message in @err. Blocks until data arrives.
 */
int64_t image_registry_xfer_read(reg_xfer_t *x, void *buf, size_t len, berth_err_t *err);

/* End the transfer (aborting it if it runs) and return its handles to the pool. NULL allowed. */
void image_registry_xfer_free(reg_xfer_t *x);

/*
 * Whether the server at @url ("https://host:port/...") completes a TLS
 * handshake, checked without verifying its certificate and without sending
 * a request. 0 when it does, -EPROTO or -ECONNRESET (reason in @err) when
 * the handshake fails, another negative errno when the server can't be
 * reached. A cheap first answer to "does this registry speak plain HTTP":
 * a verified HTTPS request reads the whole CA bundle first (about 20 ms),
 * only to fail against a plain-HTTP server.
 */
int image_registry_tls_probe(reg_client_t *c, const char *url, berth_err_t *err);

/* 1 when @a and @b have the same scheme, host and port. */
int image_registry_same_origin(const char *a, const char *b);

#endif /* IMAGE_REGISTRY_HTTP_H */
