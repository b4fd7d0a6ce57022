/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP transfers for the registry driver over curl's multi interface (see registry-http.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry-auth.h"
#include "registry-http.h"

struct reg_conn {
    CURLM *multi;
    CURL *easy;
};

struct reg_xfer {
    reg_client_t *c;
    reg_conn_t *conn;
    struct curl_slist *headers;
    int mode;
    size_t body_limit;
    char errbuf[CURL_ERROR_SIZE];
    reg_response_t resp;
    int hdr_done;     /* the final response's header block ended */
    size_t hdr_bytes; /* header bytes of all responses so far */
    int hdr_overflow; /* we stopped the transfer: headers too large */
    char *buf;        /* body bytes [start, len) */
    size_t start, len, cap;
    int overflow;    /* we stopped the transfer: 2xx body over its limit */
    int errbody_cut; /* we stopped the transfer: enough of an error body */
    int paused;      /* the write callback paused the transfer */
    int added;       /* easy is in the multi */
    int done;
    CURLcode result;
    int64_t last_progress; /* monotonic ms of the last bytes received */
};

/* ---- client ---- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userptr)
{
    reg_client_t *c = userptr;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userptr)
{
    reg_client_t *c = userptr;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&c->share_locks[data]);
}

int image_registry_client_init(reg_client_t *c, const char *user_agent, const char *ca_file,
                               int verify_tls, berth_err_t *err)
{
    memset(c, 0, sizeof(*c));
    c->user_agent = strdup(user_agent);
    c->ca_file = ca_file ? strdup(ca_file) : NULL;
    c->verify_tls = verify_tls;
    c->share = curl_share_init();
    if (!c->user_agent || (ca_file && !c->ca_file) || !c->share) {
        curl_share_cleanup(c->share);
        free(c->user_agent);
        free(c->ca_file);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    pthread_mutex_init(&c->pool_lock, NULL);
    /*
     * DNS answers and TLS sessions are shared between the session's
     * transfers; connections are not (each pooled multi keeps its own), as
     * curl does not support one connection cache across threads.
     */
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return 0;
}

static void conn_free(reg_conn_t *conn)
{
    if (!conn)
        return;
    curl_easy_cleanup(conn->easy);
    curl_multi_cleanup(conn->multi);
    free(conn);
}

void image_registry_client_release(reg_client_t *c)
{
    for (size_t i = 0; i < c->n_pool; i++)
        conn_free(c->pool[i]);
    c->n_pool = 0;
    curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_locks[i]);
    pthread_mutex_destroy(&c->pool_lock);
    free(c->user_agent);
    free(c->ca_file);
}

static reg_conn_t *conn_get(reg_client_t *c)
{
    reg_conn_t *conn = NULL;

    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool)
        conn = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->pool_lock);
    if (conn)
        return conn;
    conn = calloc(1, sizeof(*conn));
    if (!conn)
        return NULL;
    conn->multi = curl_multi_init();
    conn->easy = curl_easy_init();
    if (!conn->multi || !conn->easy) {
        conn_free(conn);
        return NULL;
    }
    /* A pair serves one transfer at a time: one connection is all it needs. */
    curl_multi_setopt(conn->multi, CURLMOPT_MAXCONNECTS, 1L);
    return conn;
}

static void conn_put(reg_client_t *c, reg_conn_t *conn)
{
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool < REG_POOL_MAX) {
        c->pool[c->n_pool++] = conn;
        conn = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    conn_free(conn);
}

/* ---- callbacks ---- */

static int is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static void trim_copy(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    /* A value that does not fit is treated as absent, never used truncated. */
    if (n >= cap) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void reset_response(reg_xfer_t *x)
{
    free(x->resp.www_authenticate);
    memset(&x->resp, 0, sizeof(x->resp));
    x->resp.content_length = -1;
    x->hdr_done = 0;
}

static size_t on_header(char *p, size_t size, size_t nitems, void *userdata)
{
    reg_xfer_t *x = userdata;
    size_t n = size * nitems, nlen;
    const char *colon, *v;

    x->last_progress = image_registry_now_ms();
    x->hdr_bytes += n;
    if (x->hdr_bytes > REG_HEADERS_MAX) {
        x->hdr_overflow = 1;
        return 0;
    }
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx, or the first): "HTTP/1.1 200 OK", "HTTP/2 200". */
        size_t i = 5;
        long st = 0;
        reset_response(x);
        while (i < n && p[i] != ' ')
            i++;
        while (i < n && p[i] == ' ')
            i++;
        for (int d = 0; d < 3 && i < n && p[i] >= '0' && p[i] <= '9'; d++, i++)
            st = st * 10 + (p[i] - '0');
        x->resp.status = st;
        return n;
    }
    if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) {
        if (x->resp.status >= 200)
            x->hdr_done = 1;
        return n;
    }
    colon = memchr(p, ':', n);
    if (!colon)
        return n;
    nlen = (size_t)(colon - p);
    v = colon + 1;
    while (v < p + n && (*v == ' ' || *v == '\t'))
        v++;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(p, name, nlen) == 0)
    if (IS("content-type")) {
        trim_copy(x->resp.content_type, sizeof(x->resp.content_type), v, (size_t)(p + n - v));
    } else if (IS("docker-content-digest")) {
        trim_copy(x->resp.digest, sizeof(x->resp.digest), v, (size_t)(p + n - v));
    } else if (IS("content-range")) {
        trim_copy(x->resp.content_range, sizeof(x->resp.content_range), v, (size_t)(p + n - v));
    } else if (IS("content-length")) {
        char num[32];
        char *end;
        long long cl;
        trim_copy(num, sizeof(num), v, (size_t)(p + n - v));
        errno = 0;
        cl = strtoll(num, &end, 10);
        x->resp.content_length = (num[0] && !*end && errno == 0 && cl >= 0) ? cl : -1;
    } else if (IS("www-authenticate")) {
        char val[REG_WWW_AUTH_MAX];
        size_t old = x->resp.www_authenticate ? strlen(x->resp.www_authenticate) : 0;
        char *joined;
        if ((size_t)(p + n - v) >= sizeof(val)) {
            x->hdr_overflow = 1;
            return 0;
        }
        trim_copy(val, sizeof(val), v, (size_t)(p + n - v));
        if (!val[0])
            return n;
        /* Challenges beyond the cap are not worth a failure: the first ones are kept. */
        if (old + strlen(val) + 3 > REG_WWW_AUTH_MAX)
            return n;
        joined = realloc(x->resp.www_authenticate, old + strlen(val) + 3);
        if (!joined)
            return 0;
        snprintf(joined + old, strlen(val) + 3, "%s%s", old ? ", " : "", val);
        x->resp.www_authenticate = joined;
    }
#undef IS
    return n;
}

static int grow(reg_xfer_t *x, size_t need, size_t limit)
{
    size_t cap = x->cap ? x->cap : 16384;
    char *nb;

    while (cap < need)
        cap *= 2;
    if (cap > limit)
        cap = limit < need ? need : limit;
    nb = realloc(x->buf, cap);
    if (!nb)
        return -ENOMEM;
    x->buf = nb;
    x->cap = cap;
    return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata)
{
    reg_xfer_t *x = userdata;
    size_t n = size * nmemb;

    x->last_progress = image_registry_now_ms();
    if (x->mode == REG_XFER_STREAM && is_2xx(x->resp.status)) {
        if (x->len + n > x->cap && x->start > 0) {
            memmove(x->buf, x->buf + x->start, x->len - x->start);
            x->len -= x->start;
            x->start = 0;
        }
        if (x->len + n > x->cap) {
            /* Full: curl keeps this chunk and hands it over again after unpausing. */
            if (x->len > 0) {
                x->paused = 1;
                return CURL_WRITEFUNC_PAUSE;
            }
            if (grow(x, n, n) < 0)
                return 0;
        }
        memcpy(x->buf + x->len, p, n);
        x->len += n;
        return n;
    }
    if (is_2xx(x->resp.status)) {
        if (x->len + n > x->body_limit) {
            x->overflow = 1;
            return 0;
        }
        if (x->len + n > x->cap && grow(x, x->len + n, x->body_limit) < 0)
            return 0;
    } else {
        /* An error or redirect body: its start carries the message. */
        if (x->len + n > REG_ERRBODY_MAX) {
            n = REG_ERRBODY_MAX - x->len;
            x->errbody_cut = 1;
        }
        if (x->len + n > x->cap && grow(x, x->len + n, REG_ERRBODY_MAX) < 0)
            return 0;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    return x->errbody_cut ? 0 : n;
}

/* ---- transfers ---- */

int image_registry_xfer_start(reg_client_t *c, const char *url, const char *post_form,
                              struct curl_slist *headers, int mode, size_t body_limit,
                              reg_xfer_t **ret_x, berth_err_t *err)
{
    reg_xfer_t *x = calloc(1, sizeof(*x));
    CURL *e;
    CURLMcode mc;

    if (!x || !(x->conn = conn_get(c))) {
        free(x);
        for (struct curl_slist *h = headers; h; h = h->next)
            explicit_bzero(h->data, strlen(h->data));
        curl_slist_free_all(headers);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    x->c = c;
    x->headers = headers;
    x->mode = mode;
    x->body_limit = body_limit;
    x->resp.content_length = -1;
    x->last_progress = image_registry_now_ms();
    if (mode == REG_XFER_STREAM && grow(x, REG_STREAM_BUF, REG_STREAM_BUF) < 0) {
        image_registry_xfer_free(x);
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    e = x->conn->easy;
    /* reset keeps the easy handle's caches; every option is set again below. */
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)REG_CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /*
     * Blobs: curl's default 16 KiB receive buffer costs a recv, a poll and a
     * callback per 16 KiB; larger reads halve the time spent in them.
     */
    if (mode == REG_XFER_STREAM)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)REG_RECV_BUF);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (post_form)
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, post_form);
    else
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    mc = curl_multi_add_handle(x->conn->multi, e);
    if (mc != CURLM_OK) {
        image_registry_xfer_free(x);
        return berth_err_set(err, -EIO, "curl: %s", curl_multi_strerror(mc));
    }
    x->added = 1;
    *ret_x = x;
    return 0;
}

static int has_headers(const reg_xfer_t *x)
{
    return x->hdr_done;
}

static int has_data(const reg_xfer_t *x)
{
    return x->len > x->start;
}

static int never(const reg_xfer_t *x)
{
    return 0;
}

/* Drive the transfer until @ready says so or it ends. Failures end up in x->result. */
static void pump(reg_xfer_t *x, int (*ready)(const reg_xfer_t *))
{
    CURLM *m = x->conn->multi;

    x->last_progress = image_registry_now_ms();
    while (!x->done && !ready(x)) {
        CURLMsg *msg;
        CURLMcode mc;
        int running, left;

        if (x->paused && x->len == x->start) {
            x->paused = 0;
            /* May call on_write at once with what curl held back. */
            if (curl_easy_pause(x->conn->easy, CURLPAUSE_CONT) != CURLE_OK) {
                x->done = 1;
                x->result = CURLE_RECV_ERROR;
                snprintf(x->errbuf, sizeof(x->errbuf), "could not resume the transfer");
                return;
            }
            x->last_progress = image_registry_now_ms();
            continue;
        }
        mc = curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE) {
                x->done = 1;
                x->result = msg->data.result;
            }
        if (mc != CURLM_OK && !x->done) {
            x->done = 1;
            x->result = CURLE_OUT_OF_MEMORY;
            snprintf(x->errbuf, sizeof(x->errbuf), "curl: %s", curl_multi_strerror(mc));
        }
        if (x->done || ready(x) || x->paused)
            continue;
        if (image_registry_now_ms() - x->last_progress > REG_STALL_TIMEOUT_S * 1000) {
            x->done = 1;
            x->result = CURLE_OPERATION_TIMEDOUT;
            snprintf(x->errbuf, sizeof(x->errbuf), "no data received for %d s",
                     REG_STALL_TIMEOUT_S);
            return;
        }
        curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
}

/* The negative errno and message for a transfer that ended with a curl error. */
static int xfer_error(const reg_xfer_t *x, berth_err_t *err)
{
    const char *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);
    long os = 0;
    int code;

    if (x->hdr_overflow)
        return berth_err_set(err, -EMSGSIZE, "response headers larger than %d bytes",
                             REG_HEADERS_MAX);
    if (x->overflow)
        return berth_err_set(err, -EFBIG, "response larger than %zu bytes", x->body_limit);
    switch (x->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        code = -EHOSTUNREACH;
        break;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(x->conn->easy, CURLINFO_OS_ERRNO, &os);
        code = os == ETIMEDOUT                           ? -ETIMEDOUT
               : os == EHOSTUNREACH || os == ENETUNREACH ? -EHOSTUNREACH
                                                         : -ECONNREFUSED;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = -ETIMEDOUT;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_USE_SSL_FAILED:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        code = -EPROTO;
        break;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        code = -ECONNRESET;
        break;
    case CURLE_OUT_OF_MEMORY:
        code = -ENOMEM;
        break;
    case CURLE_URL_MALFORMAT:
        code = -EINVAL;
        break;
    default:
        code = -EIO;
        break;
    }
    return berth_err_set(err, code, "%s", msg);
}

/* 1 when the transfer ended with a failure of its own (not one we caused). */
static int failed(const reg_xfer_t *x)
{
    if (!x->done || x->result == CURLE_OK)
        return 0;
    /* Stopping an error body early is our choice, not a failure. */
    return !(x->errbody_cut && x->result == CURLE_WRITE_ERROR);
}

int image_registry_xfer_wait_headers(reg_xfer_t *x, berth_err_t *err)
{
    pump(x, has_headers);
    if (x->hdr_done)
        return 0;
    if (failed(x))
        return xfer_error(x, err);
    return berth_err_set(err, -EPROTO, "the server closed the connection without a response");
}

const reg_response_t *image_registry_xfer_response(const reg_xfer_t *x)
{
    return &x->resp;
}

int image_registry_xfer_finish(reg_xfer_t *x, berth_err_t *err)
{
    /* A paused stream would never end here: streams are drained with read. */
    if (x->mode == REG_XFER_STREAM && is_2xx(x->resp.status))
        return berth_err_set(err, -EINVAL, "finish called on a streamed body");
    pump(x, never);
    if (failed(x))
        return xfer_error(x, err);
    return 0;
}

const char *image_registry_xfer_body(const reg_xfer_t *x, size_t *ret_len)
{
    *ret_len = x->len - x->start;
    return x->buf ? x->buf + x->start : "";
}

char *image_registry_xfer_take_body(reg_xfer_t *x, size_t *ret_len)
{
    size_t n = x->len - x->start;
    char *b = malloc(n + 1);

    if (!b)
        return NULL;
    if (n)
        memcpy(b, x->buf + x->start, n);
    b[n] = '\0';
    free(x->buf);
    x->buf = NULL;
    x->start = x->len = x->cap = 0;
    *ret_len = n;
    return b;
}

const char *image_registry_xfer_redirect_url(reg_xfer_t *x)
{
    char *url = NULL;
    if (curl_easy_getinfo(x->conn->easy, CURLINFO_REDIRECT_URL, &url) != CURLE_OK)
        return NULL;
    return url;
}

int64_t image_registry_xfer_read(reg_xfer_t *x, void *buf, size_t len, berth_err_t *err)
{
    size_t n;

    if (len == 0)
        return 0;
    if (!has_data(x)) {
        x->start = x->len = 0;
        pump(x, has_data);
    }
    if (has_data(x)) {
        n = x->len - x->start;
        if (n > len)
            n = len;
        memcpy(buf, x->buf + x->start, n);
        x->start += n;
        return (int64_t)n;
    }
    if (failed(x))
        return xfer_error(x, err);
    return 0;
}

void image_registry_xfer_free(reg_xfer_t *x)
{
    if (!x)
        return;
    if (x->added)
        curl_multi_remove_handle(x->conn->multi, x->conn->easy);
    if (x->conn) {
        /* The easy handle must not point at freed headers or at x while pooled. */
        curl_easy_reset(x->conn->easy);
        conn_put(x->c, x->conn);
    }
    for (struct curl_slist *h = x->headers; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(x->headers);
    free(x->resp.www_authenticate);
    free(x->buf);
    free(x);
}

int image_registry_tls_probe(reg_client_t *c, const char *url, berth_err_t *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *e = curl_easy_init();
    CURLcode rc;

    if (!e)
        return berth_err_set(err, -ENOMEM, "out of memory");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)REG_CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    /* The handshake only: nothing is sent, so nothing needs the peer verified. */
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
        return berth_err_set(err, -EPROTO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        return berth_err_set(err, -ECONNRESET, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    default:
        return berth_err_set(err, -EIO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
}

/* scheme, host, port of @url (lowercase scheme and host); 0 or -1. */
static int origin_of(const char *url, char **scheme, char **host, char **port)
{
    CURLU *u = curl_url();
    int rc = -1;

    *scheme = *host = *port = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        rc = 0;
    curl_url_cleanup(u);
    return rc;
}

int image_registry_same_origin(const char *a, const char *b)
{
    char *s1 = NULL, *h1 = NULL, *p1 = NULL, *s2 = NULL, *h2 = NULL, *p2 = NULL;
    int same = origin_of(a, &s1, &h1, &p1) == 0 && origin_of(b, &s2, &h2, &p2) == 0 &&
               strcasecmp(s1, s2) == 0 && strcasecmp(h1, h2) == 0 && strcmp(p1, p2) == 0;

    curl_free(s1);
    curl_free(h1);
    curl_free(p1);
    curl_free(s2);
    curl_free(h2);
    curl_free(p2);
    return same;
}
