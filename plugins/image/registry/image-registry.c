/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry: an image source that pulls from OCI distribution (v2)
 * registries over HTTP(S) with libcurl.
 *
 * A session is one repository on one registry ("127.0.0.1:5000/test/img",
 * "busybox"; registry-ref.h has the grammar). open() pings /v2/ and, when
 * credentials were given, logs in at once, so wrong credentials fail there
 * (`berth login` relies on it). resolve() GETs the manifest by tag or
 * digest, checks its digest and keeps the body for the fetch that usually
 * follows; fetch() streams blobs with bounded memory (registry-http.h), and
 * resumes at an offset with a Range request.
 *
 * Authentication (distribution token spec): a 401 names a Basic or Bearer
 * challenge; Basic sends the credentials, Bearer gets a token from the
 * realm (with the credentials as Basic, or an identity token as an OAuth2
 * refresh token) per scope, cached until it expires and dropped when the
 * registry refuses it. Credentials and tokens only ever go to the
 * registry's origin and the realm it names: a redirect elsewhere (blob
 * storage) is followed without them. They are never logged nor put in
 * error messages, and are wiped from memory when freed.
 *
 * Transport: HTTPS, verified against the system's CAs or "ca_file". Plain
 * HTTP only for loopback hosts and insecure registries ("insecure": true,
 * or the host in "insecure_registries"), and only after an HTTPS handshake
 * failed, as moby does (checked there first without verification and
 * without a request, see ping()). Insecure registries also skip
 * certificate checks.
 *
 * Threads: open/close/resolve/fetch are serialised by the core; streams of
 * a session may be read at the same time on other threads (each owns its
 * transfer; the shared pool, DNS cache and token cache are locked). A
 * session stays allocated until its last stream is closed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include <berth/sdk.h>

#include "registry-auth.h"
#include "registry-http.h"
#include "registry-ref.h"

#define DRIVER_VERSION "1.0.0"
#define DEFAULT_UA     "berth-registry/" DRIVER_VERSION
#define MANIFEST_MAX   (4 * 1024 * 1024)
#define TOKEN_BODY_MAX (1024 * 1024)
#define MAX_REDIRECTS  10
#define CACHE_MAX      8
#define CACHE_BYTES    (8 * 1024 * 1024)
#define UA_MAX         256

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

static const char accept_manifests[] =
    "Accept: " MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST;

/* Media types fetched from /manifests/ rather than /blobs/. */
static const char *const manifest_types[] = {
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.oci.artifact.manifest.v1+json",
};

struct cached {
    struct cached *next;
    char digest[REG_DIGEST_LEN + 1];
    char media_type[128];
    char *body;
    size_t len;
};

struct session {
    int refs; /* the session and each open stream; atomic */
    int client_ready;
    reg_location_t loc;
    reg_client_t client;
    char base[REG_NAME_MAX + 16]; /* "https://host:port", chosen by the ping */
    char default_scope[REG_NAME_MAX + 32];
    char *username; /* credentials, wiped when freed */
    char *password;
    char *identitytoken;
    /* Guards chal, have_chal and tokens. */
    pthread_mutex_t auth_lock;
    reg_challenge_t chal;
    int have_chal;
    reg_token_cache_t tokens;
    /* Manifests already downloaded, newest first; used by serialised calls only. */
    struct cached *cache;
};

/* ---- session lifetime ---- */

static void session_unref(struct session *s)
{
    struct cached *c;

    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    while ((c = s->cache)) {
        s->cache = c->next;
        free(c->body);
        free(c);
    }
    image_registry_token_clear(&s->tokens);
    pthread_mutex_destroy(&s->auth_lock);
    if (s->client_ready)
        image_registry_client_release(&s->client);
    image_registry_wipe_free(s->username);
    image_registry_wipe_free(s->password);
    image_registry_wipe_free(s->identitytoken);
    free(s);
}

static void session_ref(struct session *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

/* ---- small helpers ---- */

static int is_manifest_type(const char *mt)
{
    for (size_t i = 0; i < sizeof(manifest_types) / sizeof(manifest_types[0]); i++)
        if (strcmp(mt, manifest_types[i]) == 0)
            return 1;
    return 0;
}

static void sha256_digest(const void *data, size_t len, char out[REG_DIGEST_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* "type/subtype" of a Content-Type, without parameters or spaces; "" when unusable. */
static void media_type_of(const char *ct, char *out, size_t outlen)
{
    size_t n = strcspn(ct, ";");

    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    out[0] = '\0';
    if (n == 0 || n >= outlen)
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ct[i] <= 0x20 || (unsigned char)ct[i] >= 0x7f)
            return;
    memcpy(out, ct, n);
    out[n] = '\0';
}

/* Put "PREFIX: " (formatted) before the message already in @err; returns its code. */
static BERTH_PRINTF(3, 4) int err_wrap(berth_err_t *err, int code, const char *fmt, ...)
{
    char what[BERTH_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return berth_err_prefix(err, code, what);
}

static struct curl_slist *slist_add(struct curl_slist *l, const char *line, int *failed)
{
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n) {
        *failed = 1;
        return l;
    }
    return n;
}

static void slist_free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *h = l; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(l);
}

/* ---- authentication ---- */

/*
 * Get a token for @scope ("" for none) from @ch's realm and cache it.
 * Called with auth_lock held.
 */
static int fetch_token(struct session *s, const reg_challenge_t *ch, const char *scope,
                       berth_err_t *err)
{
    struct curl_slist *h = NULL;
    char *url = NULL, *form = NULL, *esc_service = NULL, *esc_scope = NULL, *esc_id = NULL;
    char *token = NULL, msg[256];
    reg_xfer_t *x = NULL;
    const reg_response_t *resp;
    const char *body;
    size_t blen;
    int64_t expires = 0;
    int oom = 0, r;

    if (strncasecmp(ch->realm, "https://", 8) != 0 && strncasecmp(ch->realm, "http://", 7) != 0)
        return berth_err_set(err, -EPROTO,
                             "registry %s: token realm \"%.200s\" is not an http(s) URL",
                             s->loc.domain, ch->realm);
    esc_service = curl_easy_escape(NULL, ch->service, 0);
    esc_scope = curl_easy_escape(NULL, scope, 0);
    if (!esc_service || !esc_scope) {
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (s->identitytoken) {
        /* OAuth2 refresh-token grant, as docker does with an identity token. */
        esc_id = curl_easy_escape(NULL, s->identitytoken, 0);
        if (!esc_id ||
            asprintf(&form,
                     "grant_type=refresh_token&client_id=berth&service=%s%s%s&refresh_token=%s",
                     esc_service, scope[0] ? "&scope=" : "", esc_scope, esc_id) < 0) {
            form = NULL;
            r = berth_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        url = strdup(ch->realm);
    } else {
        const char *sep = strchr(ch->realm, '?') ? "&" : "?";
        if (asprintf(&url, "%s%sservice=%s%s%s", ch->realm, sep, esc_service,
                     scope[0] ? "&scope=" : "", esc_scope) < 0)
            url = NULL;
        if (s->username) {
            char *line = image_registry_basic_header(s->username, s->password);
            if (!line)
                oom = 1;
            else
                h = slist_add(h, line, &oom);
            image_registry_wipe_free(line);
        }
    }
    h = slist_add(h, "Accept: application/json", &oom);
    if (!url || oom) {
        slist_free_wiped(h);
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    r = image_registry_xfer_start(&s->client, url, form, h, REG_XFER_BUFFER, TOKEN_BODY_MAX, &x,
                                  err);
    if (r == 0)
        r = image_registry_xfer_wait_headers(x, err);
    if (r == 0)
        r = image_registry_xfer_finish(x, err);
    if (r < 0) {
        err_wrap(err, r, "registry %s: token server", s->loc.domain);
        goto out;
    }
    resp = image_registry_xfer_response(x);
    body = image_registry_xfer_body(x, &blen);
    if (resp->status == 401 || resp->status == 403) {
        image_registry_error_message(body, blen, msg, sizeof(msg), NULL, 0);
        r = berth_err_set(err, -EACCES, "registry %s: unauthorized: %s", s->loc.domain,
                          msg[0] ? msg : "the token server refused the credentials");
        goto out;
    }
    if (resp->status != 200) {
        image_registry_error_message(body, blen, msg, sizeof(msg), NULL, 0);
        r = berth_err_set(err, -EIO, "registry %s: token server: HTTP %ld%s%s", s->loc.domain,
                          resp->status, msg[0] ? ": " : "", msg);
        goto out;
    }
    r = image_registry_parse_token_reply(body, blen, &token, &expires, err);
    if (r < 0) {
        err_wrap(err, r, "registry %s: token server", s->loc.domain);
        goto out;
    }
    r = image_registry_token_put(&s->tokens, scope, token, expires, image_registry_now_ms());
    if (r < 0)
        berth_err_set(err, r, "out of memory");
out:
    image_registry_xfer_free(x);
    image_registry_wipe_free(token);
    image_registry_wipe_free(form);
    if (esc_id) {
        /* curl's allocation: wiped here, freed by curl. */
        explicit_bzero(esc_id, strlen(esc_id));
        curl_free(esc_id);
    }
    curl_free(esc_service);
    curl_free(esc_scope);
    free(url);
    return r;
}

/*
 * Add the Authorization header the registry wants for @scope, fetching a
 * token first when needed. *ret_sent says whether one was added.
 */
static int add_auth(struct session *s, const char *scope, struct curl_slist **hdrs, int *ret_sent,
                    berth_err_t *err)
{
    char *line = NULL;
    int r = 0, oom = 0;

    *ret_sent = 0;
    pthread_mutex_lock(&s->auth_lock);
    if (s->have_chal && s->chal.scheme == REG_AUTH_BEARER) {
        const char *tok = image_registry_token_get(&s->tokens, scope, image_registry_now_ms());
        if (!tok) {
            r = fetch_token(s, &s->chal, scope, err);
            if (r == 0)
                tok = image_registry_token_get(&s->tokens, scope, image_registry_now_ms());
        }
        if (tok && asprintf(&line, "Authorization: Bearer %s", tok) < 0) {
            line = NULL;
            oom = 1;
        }
    } else if (s->have_chal && s->chal.scheme == REG_AUTH_BASIC && s->username) {
        line = image_registry_basic_header(s->username, s->password);
        oom = !line;
    }
    pthread_mutex_unlock(&s->auth_lock);
    if (r < 0)
        return r;
    if (line) {
        *hdrs = slist_add(*hdrs, line, &oom);
        *ret_sent = !oom;
    }
    image_registry_wipe_free(line);
    return oom ? berth_err_set(err, -ENOMEM, "out of memory") : 0;
}

/*
 * A request was answered 401: learn the challenge and get what it asks for.
 * @scope (in/out) becomes the scope to ask for next. 0 means "retry".
 */
static int handle_401(struct session *s, reg_xfer_t *x, int sent_auth, char *scope, size_t scopelen,
                      berth_err_t *err)
{
    const reg_response_t *resp = image_registry_xfer_response(x);
    reg_challenge_t ch;
    berth_err_t perr = { 0 };
    char msg[256] = "";
    const char *body;
    size_t blen;
    int r;

    if (image_registry_xfer_finish(x, NULL) == 0) {
        body = image_registry_xfer_body(x, &blen);
        image_registry_error_message(body, blen, msg, sizeof(msg), NULL, 0);
    }
    if (!resp->www_authenticate ||
        image_registry_parse_challenge(resp->www_authenticate, &ch, &perr) < 0)
        return berth_err_set(err, -EACCES, "registry %s: unauthorized: %s", s->loc.domain,
                             msg[0]        ? msg
                             : perr.msg[0] ? perr.msg
                                           : "no usable challenge");
    if (ch.scheme == REG_AUTH_BASIC && !s->username && s->identitytoken)
        return berth_err_set(err, -EACCES,
                             "registry %s: unauthorized: the registry wants a password, not an "
                             "identity token",
                             s->loc.domain);
    if (ch.scheme == REG_AUTH_BASIC && (sent_auth || !s->username))
        return berth_err_set(err, -EACCES, "registry %s: unauthorized: %s", s->loc.domain,
                             msg[0] ? msg : "authentication required");
    pthread_mutex_lock(&s->auth_lock);
    s->chal = ch;
    s->have_chal = 1;
    r = 0;
    if (ch.scheme == REG_AUTH_BEARER) {
        if (sent_auth)
            image_registry_token_drop(&s->tokens, scope);
        if (ch.scope[0])
            snprintf(scope, scopelen, "%s", ch.scope);
        if (sent_auth && strcmp(ch.error, "insufficient_scope") == 0)
            r = berth_err_set(err, -EACCES, "registry %s: denied: %s", s->loc.domain,
                              msg[0] ? msg : "insufficient scope");
        else
            r = fetch_token(s, &ch, scope, err);
    }
    pthread_mutex_unlock(&s->auth_lock);
    return r;
}

/* ---- requests ---- */

#define REQ_AUTH 0x1 /* answer challenges (everything but the first ping) */

/*
 * GET @path on the registry, with credentials when @flags has REQ_AUTH,
 * following redirects (credentials only to the registry's own origin).
 * On success *ret_x has the final response's headers; the caller checks
 * its status. @what names the object for error messages.
 */
static int session_get(struct session *s, const char *path, const char *accept, int64_t offset,
                       int mode, size_t limit, int flags, const char *what, reg_xfer_t **ret_x,
                       berth_err_t *err)
{
    char scope[sizeof(((reg_challenge_t *)0)->scope)];
    char *url = NULL;
    int hops = 0, retried = 0, r;

    snprintf(scope, sizeof(scope), "%s", s->default_scope);
    if (asprintf(&url, "%s%s", s->base, path) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    for (;;) {
        struct curl_slist *h = NULL;
        const reg_response_t *resp;
        reg_xfer_t *x = NULL;
        int on_registry = image_registry_same_origin(url, s->base), sent = 0, oom = 0;
        char range[64];

        if (accept)
            h = slist_add(h, accept, &oom);
        if (offset > 0) {
            snprintf(range, sizeof(range), "Range: bytes=%lld-", (long long)offset);
            h = slist_add(h, range, &oom);
        }
        if (oom) {
            slist_free_wiped(h);
            free(url);
            return berth_err_set(err, -ENOMEM, "out of memory");
        }
        if ((flags & REQ_AUTH) && on_registry) {
            r = add_auth(s, scope, &h, &sent, err);
            if (r < 0) {
                slist_free_wiped(h);
                free(url);
                return r;
            }
        }
        r = image_registry_xfer_start(&s->client, url, NULL, h, mode, limit, &x, err);
        if (r == 0)
            r = image_registry_xfer_wait_headers(x, err);
        if (r < 0) {
            image_registry_xfer_free(x);
            free(url);
            return err_wrap(err, r, "registry %s: %s", s->loc.domain, what);
        }
        resp = image_registry_xfer_response(x);
        if (resp->status == 401 && (flags & REQ_AUTH) && on_registry && !retried) {
            retried = 1;
            r = handle_401(s, x, sent, scope, sizeof(scope), err);
            image_registry_xfer_free(x);
            if (r < 0) {
                free(url);
                return r;
            }
            continue;
        }
        if (resp->status == 301 || resp->status == 302 || resp->status == 303 ||
            resp->status == 307 || resp->status == 308) {
            const char *to = image_registry_xfer_redirect_url(x);
            char *next = to ? strdup(to) : NULL;
            image_registry_xfer_free(x);
            free(url);
            if (!to)
                return berth_err_set(err, -EPROTO, "registry %s: %s: redirect without a Location",
                                     s->loc.domain, what);
            if (!next)
                return berth_err_set(err, -ENOMEM, "out of memory");
            if (++hops > MAX_REDIRECTS) {
                free(next);
                return berth_err_set(err, -ELOOP, "registry %s: %s: more than %d redirects",
                                     s->loc.domain, what, MAX_REDIRECTS);
            }
            url = next;
            continue;
        }
        free(url);
        *ret_x = x;
        return 0;
    }
}

/* The error for a response that is not the one wanted; consumes nothing but the body. */
static int status_error(struct session *s, reg_xfer_t *x, const char *what, berth_err_t *err)
{
    const reg_response_t *resp = image_registry_xfer_response(x);
    char msg[256] = "", code[64] = "";
    const char *body;
    size_t blen;

    if (image_registry_xfer_finish(x, NULL) == 0) {
        body = image_registry_xfer_body(x, &blen);
        image_registry_error_message(body, blen, msg, sizeof(msg), code, sizeof(code));
    }
    if (resp->status == 404 || strcmp(code, "MANIFEST_UNKNOWN") == 0 ||
        strcmp(code, "BLOB_UNKNOWN") == 0 || strcmp(code, "NAME_UNKNOWN") == 0)
        return berth_err_set(err, -ENOENT, "registry %s: %s: not found", s->loc.domain, what);
    if (resp->status == 401)
        return berth_err_set(err, -EACCES, "registry %s: unauthorized: %s", s->loc.domain,
                             msg[0] ? msg : "authentication required");
    if (resp->status == 403)
        return berth_err_set(err, -EACCES, "registry %s: %s: denied: %s", s->loc.domain, what,
                             msg[0] ? msg : "access denied");
    return berth_err_set(err, -EIO, "registry %s: %s: HTTP %ld%s%s", s->loc.domain, what,
                         resp->status, msg[0] ? ": " : "", msg);
}

/* GET /v2/ at @scheme://host; 0 with the response in *ret_x, or a transport error. */
static int ping_at(struct session *s, const char *scheme, reg_xfer_t **ret_x, berth_err_t *err)
{
    char what[sizeof(s->base) + 8];

    snprintf(s->base, sizeof(s->base), "%s://%s", scheme, s->loc.api_host);
    snprintf(what, sizeof(what), "%s/v2/", s->base);
    return session_get(s, "/v2/", NULL, 0, REG_XFER_BUFFER, REG_ERRBODY_MAX, 0, what, ret_x, err);
}

/* @msg without its "registry HOST: " prefix. */
static const char *unprefixed(const struct session *s, const char *msg)
{
    size_t n = strlen(s->loc.domain);

    if (strncmp(msg, "registry ", 9) == 0 && strncmp(msg + 9, s->loc.domain, n) == 0 &&
        strncmp(msg + 9 + n, ": ", 2) == 0)
        return msg + 11 + n;
    return msg;
}

/*
 * Find the registry's scheme and its challenge, and check credentials when
 * there are some.
 */
static int ping(struct session *s, int plain_ok, berth_err_t *err)
{
    const reg_response_t *resp;
    reg_xfer_t *x = NULL;
    berth_err_t herr = { 0 };
    reg_challenge_t ch;
    int r, creds = s->username || s->identitytoken;

    int probed = 0;

    if (plain_ok) {
        /*
         * Where plain HTTP may do, ask first whether the server speaks TLS at
         * all: a plain-HTTP registry (the usual loopback one) is then found
         * without the verified attempt's cost. A server that does speak TLS
         * still gets the verified request below.
         */
        char url[sizeof(s->base) + 16];
        snprintf(url, sizeof(url), "https://%s/v2/", s->loc.api_host);
        r = image_registry_tls_probe(&s->client, url, &herr);
        if (r == -EPROTO || r == -ECONNRESET) {
            snprintf(s->base, sizeof(s->base), "https://%s", s->loc.api_host);
            err_wrap(&herr, r, "registry %s: %s", s->loc.domain, url);
            probed = 1;
        }
    }
    if (!probed)
        r = ping_at(s, "https", &x, &herr);
    if (r < 0 && (!plain_ok || (r != -EPROTO && r != -ECONNRESET))) {
        if (err)
            *err = herr;
        return r;
    }
    if (r < 0) {
        /* The handshake failed (a plain-HTTP server answers it with junk): HTTP may do here. */
        berth_err_t perr = { 0 };
        int r2 = ping_at(s, "http", &x, &perr);
        if (r2 < 0)
            return berth_err_set(err, r, "%s; over plain HTTP: %s", herr.msg,
                                 unprefixed(s, perr.msg));
        resp = image_registry_xfer_response(x);
        if (resp->status == 400) {
            /* What HTTPS servers answer plain HTTP with: the handshake error is the real one. */
            long st = resp->status;
            image_registry_xfer_free(x);
            return berth_err_set(err, r, "%s; over plain HTTP: HTTP %ld", herr.msg, st);
        }
    }
    resp = image_registry_xfer_response(x);
    if (resp->status >= 200 && resp->status < 300) {
        image_registry_xfer_free(x);
        return 0;
    }
    if (resp->status == 404) {
        image_registry_xfer_free(x);
        return berth_err_set(err, -EPROTONOSUPPORT,
                             "registry %s: no registry API at %s/v2/ (HTTP 404)", s->loc.domain,
                             s->base);
    }
    if (resp->status != 401) {
        r = status_error(s, x, "/v2/", err);
        image_registry_xfer_free(x);
        return r;
    }
    r = resp->www_authenticate ? image_registry_parse_challenge(resp->www_authenticate, &ch, &herr)
                               : berth_err_set(&herr, -ENOTSUP, "no authentication challenge");
    image_registry_xfer_free(x);
    if (r < 0) {
        /* Nothing to answer yet; an anonymous pull may still work. */
        if (!creds)
            return 0;
        return berth_err_set(err, -EACCES, "registry %s: unauthorized: %s", s->loc.domain,
                             herr.msg);
    }
    pthread_mutex_lock(&s->auth_lock);
    s->chal = ch;
    s->have_chal = 1;
    r = 0;
    /* Log in now, so that wrong credentials fail here. */
    if (creds && ch.scheme == REG_AUTH_BEARER)
        r = fetch_token(s, &ch, "", err);
    pthread_mutex_unlock(&s->auth_lock);
    if (r < 0 || !creds || ch.scheme != REG_AUTH_BASIC)
        return r;
    if (!s->username)
        return berth_err_set(err, -EACCES,
                             "registry %s: unauthorized: the registry wants a password, not an "
                             "identity token",
                             s->loc.domain);
    r = session_get(s, "/v2/", NULL, 0, REG_XFER_BUFFER, REG_ERRBODY_MAX, REQ_AUTH, "login", &x,
                    err);
    if (r < 0)
        return r;
    resp = image_registry_xfer_response(x);
    r = resp->status >= 200 && resp->status < 300 ? 0 : status_error(s, x, "login", err);
    image_registry_xfer_free(x);
    return r;
}

/* ---- manifests ---- */

static struct cached *cache_find(struct session *s, const char *digest)
{
    for (struct cached *c = s->cache; c; c = c->next)
        if (strcmp(c->digest, digest) == 0)
            return c;
    return NULL;
}

static void cache_add(struct session *s, struct cached *c)
{
    struct cached **pp = &s->cache;
    size_t n = 0, bytes = 0;

    c->next = s->cache;
    s->cache = c;
    /*
     * Keep the newest few (always the one just added): resolve is followed
     * by a fetch of the same digest, and an index by its manifests.
     */
    while (*pp && (n == 0 || (n < CACHE_MAX && bytes + (*pp)->len <= CACHE_BYTES))) {
        bytes += (*pp)->len;
        n++;
        pp = &(*pp)->next;
    }
    while (*pp) {
        struct cached *old = *pp;
        *pp = old->next;
        free(old->body);
        free(old);
    }
}

/*
 * GET the manifest @ref (tag or digest) into the cache, checking its digest
 * against @want_digest (may be "") and Docker-Content-Digest. @shown names
 * it in messages ("test/img:v1").
 */
static int get_manifest(struct session *s, const char *ref, const char *want_digest,
                        const char *shown, struct cached **ret, berth_err_t *err)
{
    char path[2 * REG_NAME_MAX + 32];
    struct cached *c = NULL;
    const reg_response_t *resp;
    reg_xfer_t *x = NULL;
    int r;

    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", s->loc.repo, ref);
    r = session_get(s, path, accept_manifests, 0, REG_XFER_BUFFER, MANIFEST_MAX, REQ_AUTH, shown,
                    &x, err);
    if (r < 0)
        return r;
    resp = image_registry_xfer_response(x);
    if (resp->status != 200) {
        r = status_error(s, x, shown, err);
        goto out;
    }
    if (resp->content_length > MANIFEST_MAX) {
        r = berth_err_set(err, -EFBIG, "registry %s: %s: manifest larger than %d MiB",
                          s->loc.domain, shown, MANIFEST_MAX >> 20);
        goto out;
    }
    r = image_registry_xfer_finish(x, err);
    if (r == -EFBIG) {
        r = berth_err_set(err, -EFBIG, "registry %s: %s: manifest larger than %d MiB",
                          s->loc.domain, shown, MANIFEST_MAX >> 20);
        goto out;
    }
    if (r < 0) {
        err_wrap(err, r, "registry %s: %s", s->loc.domain, shown);
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c || !(c->body = image_registry_xfer_take_body(x, &c->len))) {
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    sha256_digest(c->body, c->len, c->digest);
    if (want_digest[0] && strcmp(want_digest, c->digest) != 0) {
        r = berth_err_set(err, -EIO, "registry %s: %s: the registry sent content with digest %s",
                          s->loc.domain, shown, c->digest);
        goto out;
    }
    if (image_registry_digest_valid(resp->digest) && strcmp(resp->digest, c->digest) != 0) {
        r = berth_err_set(err, -EIO,
                          "registry %s: %s: Docker-Content-Digest %s does not match the "
                          "manifest's %s",
                          s->loc.domain, shown, resp->digest, c->digest);
        goto out;
    }
    media_type_of(resp->content_type, c->media_type, sizeof(c->media_type));
    if (!c->media_type[0] || strcmp(c->media_type, "application/json") == 0 ||
        strcmp(c->media_type, "text/plain") == 0 ||
        strcmp(c->media_type, "application/octet-stream") == 0) {
        /* A generic or missing Content-Type: the manifest's own mediaType says it. */
        json_t *root = json_loadb(c->body, c->len, 0, NULL);
        json_t *mt = json_object_get(root, "mediaType");
        c->media_type[0] = '\0';
        if (json_is_string(mt))
            media_type_of(json_string_value(mt), c->media_type, sizeof(c->media_type));
        json_decref(root);
        if (!c->media_type[0]) {
            r = berth_err_set(err, -EPROTO, "registry %s: %s: the manifest's media type is unknown",
                              s->loc.domain, shown);
            goto out;
        }
    }
    cache_add(s, c);
    *ret = c;
    c = NULL;
out:
    if (c)
        free(c->body);
    free(c);
    image_registry_xfer_free(x);
    return r;
}

/* ---- streams ---- */

struct stream {
    berth_stream_t s;
    struct session *sess;
    reg_xfer_t *x; /* a blob being downloaded, or NULL */
    char *mem;     /* or bytes already here */
    size_t mem_len, mem_off;
    char what[128];
};

static int64_t stream_read(berth_stream_t *bs, void *buf, size_t len, berth_err_t *err)
{
    struct stream *st = (struct stream *)bs;
    int64_t n;

    if (!st->x) {
        size_t left = st->mem_len - st->mem_off;
        if (len > left)
            len = left;
        if (len)
            memcpy(buf, st->mem + st->mem_off, len);
        st->mem_off += len;
        return (int64_t)len;
    }
    n = image_registry_xfer_read(st->x, buf, len, err);
    if (n < 0)
        err_wrap(err, (int)n, "registry %s: %s", st->sess->loc.domain, st->what);
    return n;
}

static void stream_close(berth_stream_t *bs)
{
    struct stream *st = (struct stream *)bs;

    if (!st)
        return;
    image_registry_xfer_free(st->x);
    free(st->mem);
    session_unref(st->sess);
    free(st);
}

static struct stream *stream_new(struct session *s, const char *what, int64_t size)
{
    struct stream *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->s.struct_size = sizeof(st->s);
    st->s.size = size;
    st->s.read = stream_read;
    st->s.close = stream_close;
    st->sess = s;
    snprintf(st->what, sizeof(st->what), "%s", what);
    session_ref(s);
    return st;
}

/* ---- ops ---- */

static int registry_init(const berth_host_api_t *host, berth_host_t *ctx, void **ret_priv,
                         berth_err_t *err)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    if (!v || v->version_num < 0x075500)
        return berth_err_set(err, -ENOTSUP,
                             "registry: libcurl %s is too old (7.85 or later needed)",
                             v ? v->version : "?");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return berth_err_set(err, -EIO, "registry: curl_global_init failed");
    *ret_priv = NULL;
    return 0;
}

static void registry_fini(void *priv)
{
    curl_global_cleanup();
}

static int registry_match(void *priv, const char *location, uint32_t flags)
{
    reg_location_t loc;
    struct stat st;

    if (!location || !*location || location[0] == '/' || location[0] == '.')
        return BERTH_DECLINED;
    /* A file or directory of that name is some other source's business. */
    if (stat(location, &st) == 0)
        return BERTH_DECLINED;
    return image_registry_parse_location(location, &loc, NULL) == 0 ? 0 : BERTH_DECLINED;
}

static int dup_opt(json_t *o, const char *key, char **ret, berth_err_t *err)
{
    json_t *v = json_object_get(o, key);

    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return berth_err_set(err, -EINVAL, "registry: options: \"%s\" must be a string", key);
    *ret = strdup(json_string_value(v));
    return *ret ? 0 : berth_err_set(err, -ENOMEM, "out of memory");
}

/* Read the options into @s; the transport settings come back through the out-params. */
static int parse_options(struct session *s, const char *json, int *ret_insecure, char **ret_ua,
                         char **ret_ca, berth_err_t *err)
{
    json_error_t jerr;
    json_t *root = NULL, *auth, *v;
    const char **listed = NULL;
    char *ua = NULL, *ca = NULL;
    int insecure = 0, r = 0;

    *ret_ua = *ret_ca = NULL;
    if (json && *json) {
        root = json_loads(json, 0, &jerr);
        if (!json_is_object(root)) {
            json_decref(root);
            return berth_err_set(err, -EINVAL, "registry: options are not a JSON object: %s",
                                 root ? "not an object" : jerr.text);
        }
    } else {
        root = json_object();
        if (!root)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    auth = json_object_get(root, "auth");
    if (auth && !json_is_null(auth)) {
        if (!json_is_object(auth)) {
            r = berth_err_set(err, -EINVAL, "registry: options: \"auth\" must be an object");
            goto out;
        }
        if ((r = dup_opt(auth, "username", &s->username, err)) < 0 ||
            (r = dup_opt(auth, "password", &s->password, err)) < 0 ||
            (r = dup_opt(auth, "identitytoken", &s->identitytoken, err)) < 0)
            goto out;
        if (s->username && !s->username[0]) {
            image_registry_wipe_free(s->username);
            s->username = NULL;
        }
        if (s->identitytoken && !s->identitytoken[0]) {
            image_registry_wipe_free(s->identitytoken);
            s->identitytoken = NULL;
        }
        if (s->username && !s->password) {
            r = berth_err_set(err, -EINVAL,
                              "registry: options: \"auth\" has a username but no "
                              "password");
            goto out;
        }
        if (!s->username) {
            image_registry_wipe_free(s->password);
            s->password = NULL;
        }
    }
    v = json_object_get(root, "insecure");
    if (v && !json_is_boolean(v)) {
        r = berth_err_set(err, -EINVAL, "registry: options: \"insecure\" must be true or false");
        goto out;
    }
    insecure = json_is_true(v);
    v = json_object_get(root, "insecure_registries");
    if (v && !json_is_null(v)) {
        size_t i, n;
        json_t *e;
        if (!json_is_array(v)) {
            r = berth_err_set(err, -EINVAL,
                              "registry: options: \"insecure_registries\" must be an array");
            goto out;
        }
        n = json_array_size(v);
        listed = calloc(n + 1, sizeof(*listed));
        if (!listed) {
            r = berth_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        json_array_foreach (v, i, e) {
            if (!json_is_string(e)) {
                r = berth_err_set(err, -EINVAL,
                                  "registry: options: \"insecure_registries\" "
                                  "entries must be strings");
                goto out;
            }
            listed[i] = json_string_value(e);
        }
        if (image_registry_host_listed(&s->loc, listed, n))
            insecure = 1;
    }
    if ((r = dup_opt(root, "user_agent", &ua, err)) < 0 ||
        (r = dup_opt(root, "ca_file", &ca, err)) < 0)
        goto out;
    if (ua) {
        /* It goes into a header line. */
        for (const char *p = ua; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                r = -EINVAL;
        if (r < 0 || strlen(ua) > UA_MAX) {
            r = berth_err_set(err, -EINVAL,
                              "registry: options: \"user_agent\" must be one line of at most %d "
                              "bytes",
                              UA_MAX);
            goto out;
        }
    }
    if (ca && access(ca, R_OK) != 0) {
        int e = errno;
        r = berth_err_set(err, -e, "registry: ca_file %.300s: %s", ca, strerror(e));
        goto out;
    }
    *ret_insecure = insecure;
    *ret_ua = ua;
    *ret_ca = ca;
    ua = ca = NULL;
out:
    free(listed);
    free(ua);
    free(ca);
    json_decref(root);
    return r;
}

static int registry_open(void *priv, const berth_image_location_t *loc, uint32_t flags,
                         void **ret_session, berth_err_t *err)
{
    struct session *s;
    char *ua = NULL, *ca = NULL;
    int insecure = 0, plain_ok, r;

    if ((flags | loc->flags) & BERTH_IMAGE_OPEN_WRITE)
        return berth_err_set(err, -ENOTSUP, "registry: pushing is not supported");
    s = calloc(1, sizeof(*s));
    if (!s)
        return berth_err_set(err, -ENOMEM, "out of memory");
    s->refs = 1;
    pthread_mutex_init(&s->auth_lock, NULL);
    r = image_registry_parse_location(loc->location, &s->loc, err);
    if (r < 0)
        goto fail;
    snprintf(s->default_scope, sizeof(s->default_scope), "repository:%s:pull", s->loc.repo);
    r = parse_options(s, loc->options_json, &insecure, &ua, &ca, err);
    if (r == 0)
        r = image_registry_client_init(&s->client, ua ? ua : DEFAULT_UA, ca, !insecure, err);
    free(ua);
    free(ca);
    if (r < 0)
        goto fail;
    s->client_ready = 1;
    plain_ok = insecure || image_registry_host_is_loopback(s->loc.host);
    r = ping(s, plain_ok, err);
    if (r < 0)
        goto fail;
    *ret_session = s;
    return 0;
fail:
    session_unref(s);
    return r;
}

static void registry_close(void *priv, void *session)
{
    session_unref(session);
}

static int registry_resolve(void *priv, void *session, const char *reference, uint32_t flags,
                            berth_descriptor_t *ret_desc, berth_err_t *err)
{
    struct session *s = session;
    char tag[REG_TAG_MAX + 1], digest[REG_DIGEST_LEN + 1], shown[2 * REG_NAME_MAX];
    struct cached *c;
    int r;

    r = image_registry_parse_target(&s->loc, reference, tag, digest, err);
    if (r < 0)
        return r;
    snprintf(shown, sizeof(shown), "%s%s%s", s->loc.repo, tag[0] ? ":" : "@",
             tag[0] ? tag : digest);
    r = get_manifest(s, tag[0] ? tag : digest, digest, shown, &c, err);
    if (r < 0)
        return r;
    snprintf(ret_desc->media_type, sizeof(ret_desc->media_type), "%s", c->media_type);
    snprintf(ret_desc->digest, sizeof(ret_desc->digest), "%s", c->digest);
    ret_desc->size = (int64_t)c->len;
    return 0;
}

static int registry_fetch(void *priv, void *session, const berth_descriptor_t *desc, int64_t offset,
                          uint32_t flags, berth_stream_t **ret_stream, berth_err_t *err)
{
    struct session *s = session;
    char path[2 * REG_NAME_MAX + 32], what[128];
    const reg_response_t *resp;
    struct stream *st;
    reg_xfer_t *x = NULL;
    int r;

    if (!image_registry_digest_valid(desc->digest))
        return berth_err_set(err, -EINVAL, "registry %s: bad digest \"%.100s\"", s->loc.domain,
                             desc->digest);
    if (offset < 0 || (desc->size >= 0 && offset > desc->size))
        return berth_err_set(err, -EINVAL, "registry %s: offset %lld outside %s", s->loc.domain,
                             (long long)offset, desc->digest);
    if (is_manifest_type(desc->media_type)) {
        struct cached *c = cache_find(s, desc->digest);
        snprintf(what, sizeof(what), "%s", desc->digest);
        if (!c) {
            char shown[2 * REG_NAME_MAX];
            snprintf(shown, sizeof(shown), "%s@%s", s->loc.repo, desc->digest);
            r = get_manifest(s, desc->digest, desc->digest, shown, &c, err);
            if (r < 0)
                return r;
        }
        if ((size_t)offset > c->len)
            return berth_err_set(err, -EINVAL, "registry %s: offset %lld outside %s", s->loc.domain,
                                 (long long)offset, desc->digest);
        st = stream_new(s, what, (int64_t)c->len);
        if (!st || !(st->mem = malloc(c->len ? c->len : 1))) {
            stream_close(st ? &st->s : NULL);
            return berth_err_set(err, -ENOMEM, "out of memory");
        }
        memcpy(st->mem, c->body, c->len);
        st->mem_len = c->len;
        st->mem_off = (size_t)offset;
        *ret_stream = &st->s;
        return 0;
    }

    snprintf(what, sizeof(what), "blob %s", desc->digest);
    if (desc->size >= 0 && offset == desc->size) {
        /* Nothing left: a Range past the end would only earn a 416. */
        st = stream_new(s, what, 0);
        if (!st)
            return berth_err_set(err, -ENOMEM, "out of memory");
        *ret_stream = &st->s;
        return 0;
    }
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", s->loc.repo, desc->digest);
    r = session_get(s, path, NULL, offset, REG_XFER_STREAM, 0, REQ_AUTH, what, &x, err);
    if (r < 0)
        return r;
    resp = image_registry_xfer_response(x);
    if (resp->status == 200 && offset > 0) {
        r = berth_err_set(err, -ESPIPE, "registry %s: %s: the registry can't resume at byte %lld",
                          s->loc.domain, what, (long long)offset);
        goto fail;
    }
    if (resp->status == 206) {
        long long start = -1;
        if (sscanf(resp->content_range, "bytes %lld-", &start) != 1 || start != offset) {
            r = berth_err_set(err, -EIO,
                              "registry %s: %s: asked for bytes from %lld, got \"%.60s\"",
                              s->loc.domain, what, (long long)offset, resp->content_range);
            goto fail;
        }
    } else if (resp->status != 200) {
        r = status_error(s, x, what, err);
        goto fail;
    }
    /* The stream's size is what it yields: the bytes after the offset. */
    st = stream_new(s, what,
                    desc->size >= 0             ? desc->size - offset
                    : resp->content_length >= 0 ? resp->content_length
                                                : -1);
    if (!st) {
        r = berth_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    st->x = x;
    *ret_stream = &st->s;
    return 0;
fail:
    image_registry_xfer_free(x);
    return r;
}

static const berth_image_ops_t registry_ops = {
    BERTH_OPS_INIT(berth_image_ops_t), .match = registry_match,     .open = registry_open,
    .close = registry_close,           .resolve = registry_resolve, .fetch = registry_fetch,
};

static const berth_plugin_desc_t registry_desc = {
    .abi_major = BERTH_ABI_MAJOR,
    .abi_minor = BERTH_ABI_MINOR,
    .struct_size = sizeof(berth_plugin_desc_t),
    .kind = BERTH_KIND_IMAGE,
    .name = "registry",
    .version = DRIVER_VERSION,
    .license = "Apache-2.0",
    .description = "pulls images from OCI distribution (v2) registries over HTTP(S)",
    .capabilities =
        BERTH_IMAGE_CAP_PULL | BERTH_IMAGE_CAP_REMOTE | BERTH_IMAGE_CAP_PARALLEL_STREAMS,
    .init = registry_init,
    .fini = registry_fini,
    .ops = &registry_ops,
};

BERTH_PLUGIN_DEFINE(registry_desc)
