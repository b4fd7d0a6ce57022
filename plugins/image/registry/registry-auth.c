/* SPDX-License-Identifier: Apache-2.0 */
/* Challenge and token-reply parsing, Basic credentials, token cache (see registry-auth.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "base64.h"
#include "registry-auth.h"

#define TOKEN_MAX (16 * 1024)

/* RFC 9110 tchar. */
static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Copy [s, s+n) into dst (cap bytes with NUL); -EINVAL when it does not fit. */
static int put(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -EINVAL;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

struct parsed {
    reg_challenge_t c;
    int has_realm;
};

int image_registry_parse_challenge(const char *value, reg_challenge_t *ret_chal, berth_err_t *err)
{
    /* The candidates: the first Bearer with a realm, the first Basic. */
    struct parsed bearer = { 0 }, basic = { 0 }, cur = { 0 };
    int have_bearer = 0, have_basic = 0, in_challenge = 0;
    char seen[128] = "";
    char val[1024];
    const char *p = value ? value : "";

    for (;;) {
        const char *tok;
        size_t tlen;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        tok = p;
        while (is_tchar(*p))
            p++;
        tlen = (size_t)(p - tok);
        if (tlen == 0)
            return berth_err_set(err, -EINVAL, "malformed WWW-Authenticate: unexpected '%c'", *p);
        p = skip_ows(p);
        if (*p == '=' && in_challenge) {
            /* An auth-param of the current challenge, or the tail of a token68. */
            const char *v;
            size_t vlen = 0;
            p = skip_ows(p + 1);
            if (*p == '=' || *p == ',' || *p == '\0') {
                while (*p == '=')
                    p++;
                continue;
            }
            if (*p == '"') {
                /* quoted-string: backslash quotes the next character. */
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1])
                        p++;
                    if (vlen + 1 >= sizeof(val))
                        return berth_err_set(err, -EINVAL,
                                             "malformed WWW-Authenticate: parameter too long");
                    val[vlen++] = *p++;
                }
                if (*p != '"')
                    return berth_err_set(err, -EINVAL,
                                         "malformed WWW-Authenticate: unterminated quoted string");
                p++;
            } else {
                /* token; lenient about '/' and ':' that some servers leave unquoted. */
                v = p;
                while (is_tchar(*p) || *p == '/' || *p == ':' || *p == '@' || *p == '?' ||
                       *p == '=')
                    p++;
                vlen = (size_t)(p - v);
                if (vlen >= sizeof(val))
                    return berth_err_set(err, -EINVAL,
                                         "malformed WWW-Authenticate: parameter too long");
                memcpy(val, v, vlen);
            }
            val[vlen] = '\0';
            p = skip_ows(p);
            if (*p && *p != ',')
                return berth_err_set(err, -EINVAL,
                                     "malformed WWW-Authenticate: junk after a parameter");
            if (tlen == 5 && strncasecmp(tok, "realm", 5) == 0) {
                if (put(cur.c.realm, sizeof(cur.c.realm), val, vlen) < 0)
                    return berth_err_set(err, -EINVAL, "WWW-Authenticate: realm too long");
                cur.has_realm = 1;
            } else if (tlen == 7 && strncasecmp(tok, "service", 7) == 0) {
                if (put(cur.c.service, sizeof(cur.c.service), val, vlen) < 0)
                    return berth_err_set(err, -EINVAL, "WWW-Authenticate: service too long");
            } else if (tlen == 5 && strncasecmp(tok, "scope", 5) == 0) {
                if (put(cur.c.scope, sizeof(cur.c.scope), val, vlen) < 0)
                    return berth_err_set(err, -EINVAL, "WWW-Authenticate: scope too long");
            } else if (tlen == 5 && strncasecmp(tok, "error", 5) == 0) {
                /* Informational: truncation is harmless. */
                size_t m = vlen < sizeof(cur.c.error) - 1 ? vlen : sizeof(cur.c.error) - 1;
                memcpy(cur.c.error, val, m);
                cur.c.error[m] = '\0';
            }
            continue;
        }
        if (*p == '=')
            return berth_err_set(err, -EINVAL,
                                 "malformed WWW-Authenticate: parameter before a "
                                 "scheme");
        /* A new challenge: settle the previous one. */
        if (in_challenge) {
            if (cur.c.scheme == REG_AUTH_BEARER && cur.has_realm && !have_bearer) {
                bearer = cur;
                have_bearer = 1;
            } else if (cur.c.scheme == REG_AUTH_BASIC && !have_basic) {
                basic = cur;
                have_basic = 1;
            }
        }
        memset(&cur, 0, sizeof(cur));
        in_challenge = 1;
        if (tlen == 6 && strncasecmp(tok, "bearer", 6) == 0)
            cur.c.scheme = REG_AUTH_BEARER;
        else if (tlen == 5 && strncasecmp(tok, "basic", 5) == 0)
            cur.c.scheme = REG_AUTH_BASIC;
        else
            cur.c.scheme = REG_AUTH_NONE;
        if (strlen(seen) + tlen + 3 < sizeof(seen))
            snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%.*s",
                     seen[0] ? ", " : "", (int)tlen, tok);
    }
    if (in_challenge) {
        if (cur.c.scheme == REG_AUTH_BEARER && cur.has_realm && !have_bearer) {
            bearer = cur;
            have_bearer = 1;
        } else if (cur.c.scheme == REG_AUTH_BASIC && !have_basic) {
            basic = cur;
            have_basic = 1;
        }
    }
    if (have_bearer) {
        *ret_chal = bearer.c;
        return 0;
    }
    if (have_basic) {
        *ret_chal = basic.c;
        return 0;
    }
    if (!seen[0])
        return berth_err_set(err, -ENOTSUP, "no authentication challenge");
    return berth_err_set(err, -ENOTSUP, "unsupported authentication (%s)", seen);
}

int image_registry_parse_token_reply(const char *body, size_t len, char **ret_token,
                                     int64_t *ret_expires_in, berth_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr), *t, *e;
    const char *tok;
    int64_t expires = 60;
    char *copy;

    if (!root || !json_is_object(root)) {
        json_decref(root);
        return berth_err_set(err, -EPROTO, "token server reply is not a JSON object");
    }
    t = json_object_get(root, "token");
    if (!json_is_string(t) || json_string_length(t) == 0)
        t = json_object_get(root, "access_token");
    if (!json_is_string(t) || json_string_length(t) == 0) {
        json_decref(root);
        return berth_err_set(err, -EPROTO, "token server reply has no token");
    }
    tok = json_string_value(t);
    if (json_string_length(t) > TOKEN_MAX) {
        json_decref(root);
        return berth_err_set(err, -EPROTO, "token longer than %d bytes", TOKEN_MAX);
    }
    /* It goes into a header line: printable ASCII only. */
    for (const char *q = tok; *q; q++) {
        if (*q < 0x21 || *q > 0x7e) {
            json_decref(root);
            return berth_err_set(err, -EPROTO, "token has characters a header can't carry");
        }
    }
    e = json_object_get(root, "expires_in");
    if (json_is_integer(e) && json_integer_value(e) > 0)
        expires = json_integer_value(e);
    /* A day is plenty; it keeps the arithmetic far from overflow. */
    if (expires > 86400)
        expires = 86400;
    copy = strdup(tok);
    json_decref(root);
    if (!copy)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_token = copy;
    *ret_expires_in = expires;
    return 0;
}

static void clean_copy(char *buf, size_t buflen, const char *s)
{
    size_t n = 0;

    for (; s && *s && n + 1 < buflen; s++)
        buf[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
    buf[n] = '\0';
}

void image_registry_error_message(const char *body, size_t len, char *buf, size_t buflen,
                                  char *code, size_t codelen)
{
    static const char *const keys[] = { "details", "error_description", "message", "error" };
    json_t *root, *errs, *first, *v;

    buf[0] = '\0';
    if (code && codelen)
        code[0] = '\0';
    if (!body || len == 0)
        return;
    root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    errs = json_object_get(root, "errors");
    first = json_is_array(errs) ? json_array_get(errs, 0) : NULL;
    if (json_is_object(first)) {
        v = json_object_get(first, "message");
        if (json_is_string(v))
            clean_copy(buf, buflen, json_string_value(v));
        v = json_object_get(first, "code");
        if (code && codelen && json_is_string(v))
            clean_copy(code, codelen, json_string_value(v));
        if (!buf[0] && code && code[0])
            clean_copy(buf, buflen, code);
    }
    for (size_t i = 0; !buf[0] && i < sizeof(keys) / sizeof(keys[0]); i++) {
        v = json_object_get(root, keys[i]);
        if (json_is_string(v))
            clean_copy(buf, buflen, json_string_value(v));
    }
    json_decref(root);
}

char *image_registry_basic_header(const char *user, const char *password)
{
    static const char prefix[] = "Authorization: Basic ";
    size_t ul = strlen(user), pl = strlen(password), n = ul + 1 + pl;
    char *plain = malloc(n + 1), *out;

    if (!plain)
        return NULL;
    memcpy(plain, user, ul);
    plain[ul] = ':';
    memcpy(plain + ul + 1, password, pl + 1);
    /* Encoded straight after the prefix: the credentials are copied once, and wiped. */
    out = malloc(sizeof(prefix) + berth__base64_encoded_len(n));
    if (!out) {
        image_registry_wipe_free(plain);
        return NULL;
    }
    memcpy(out, prefix, sizeof(prefix) - 1);
    berth__base64_encode_to(plain, n, out + sizeof(prefix) - 1);
    image_registry_wipe_free(plain);
    return out;
}

void image_registry_wipe_free(char *p)
{
    if (!p)
        return;
    explicit_bzero(p, strlen(p));
    free(p);
}

int64_t image_registry_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static reg_token_t *find(reg_token_cache_t *c, const char *scope)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->t[i].scope, scope) == 0)
            return &c->t[i];
    return NULL;
}

static void release(reg_token_t *t)
{
    free(t->scope);
    image_registry_wipe_free(t->token);
    t->scope = t->token = NULL;
}

static void remove_at(reg_token_cache_t *c, size_t i)
{
    release(&c->t[i]);
    c->t[i] = c->t[--c->n];
}

const char *image_registry_token_get(reg_token_cache_t *c, const char *scope, int64_t now_ms)
{
    reg_token_t *t = find(c, scope);

    if (!t)
        return NULL;
    if (now_ms >= t->expires_ms) {
        remove_at(c, (size_t)(t - c->t));
        return NULL;
    }
    return t->token;
}

int image_registry_token_put(reg_token_cache_t *c, const char *scope, const char *token,
                             int64_t expires_in, int64_t now_ms)
{
    int64_t life = expires_in * 1000, margin = life / 10 < 5000 ? life / 10 : 5000;
    reg_token_t fresh = { .scope = strdup(scope), .token = strdup(token) };
    reg_token_t *t;

    if (!fresh.scope || !fresh.token) {
        release(&fresh);
        return -ENOMEM;
    }
    fresh.expires_ms = now_ms + life - margin;
    t = find(c, scope);
    if (!t && c->n == REG_TOKEN_CACHE_MAX) {
        size_t soonest = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->t[i].expires_ms < c->t[soonest].expires_ms)
                soonest = i;
        t = &c->t[soonest];
    }
    if (t)
        release(t);
    else
        t = &c->t[c->n++];
    *t = fresh;
    return 0;
}

void image_registry_token_drop(reg_token_cache_t *c, const char *scope)
{
    reg_token_t *t = find(c, scope);
    if (t)
        remove_at(c, (size_t)(t - c->t));
}

void image_registry_token_clear(reg_token_cache_t *c)
{
    while (c->n)
        remove_at(c, c->n - 1);
}
