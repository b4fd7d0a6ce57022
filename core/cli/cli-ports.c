/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The networking values `create` and `run` take (-p, --expose, --add-host,
 * --ip, --dns) turned into the Docker create body's fields, and the lines
 * `berth port` prints. The syntax is docker's, so a command line moves from
 * one CLI to the other unchanged; what a value means (is the port free, is
 * the address in the network's subnet) is the engine's to judge.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int fail(char *errbuf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && len) {
        va_start(ap, fmt);
        vsnprintf(errbuf, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A decimal port in [@min, 65535] from @s .. @end (exclusive); -1 when it is not one. */
static long port_number(const char *s, const char *end, long min)
{
    long v = 0;

    if (s == end || end - s > 5)
        return -1;
    for (const char *p = s; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v >= min && v <= 65535 ? v : -1;
}

/* "N" or "N-M" (N <= M) between @s and @end into *lo, *hi; -1 when malformed. */
static int port_range(const char *s, const char *end, long min, long *lo, long *hi)
{
    const char *dash = memchr(s, '-', (size_t)(end - s));

    if (!dash) {
        *lo = *hi = port_number(s, end, min);
        return *lo < 0 ? -1 : 0;
    }
    *lo = port_number(s, dash, min);
    *hi = port_number(dash + 1, end, min);
    return *lo < 0 || *hi < 0 || *lo > *hi ? -1 : 0;
}

/* "tcp", "udp" or "sctp" (any case) into @buf in lower case; -1 for anything else. */
static int protocol(const char *text, char buf[8])
{
    size_t n = strlen(text);

    if (n == 0 || n >= 8)
        return -1;
    for (size_t i = 0; i <= n; i++)
        buf[i] = (char)tolower((unsigned char)text[i]);
    return strcmp(buf, "tcp") && strcmp(buf, "udp") && strcmp(buf, "sctp") ? -1 : 0;
}

static int add_exposed(json_t *exposed, long port, const char *proto)
{
    char key[32];

    snprintf(key, sizeof(key), "%ld/%s", port, proto);
    return json_object_get(exposed, key) ? 0 : json_object_set_new(exposed, key, json_object());
}

static int add_binding(json_t *bindings, long port, const char *proto, const char *ip,
                       const char *host_port)
{
    char key[32];
    json_t *arr, *b;

    snprintf(key, sizeof(key), "%ld/%s", port, proto);
    arr = json_object_get(bindings, key);
    if (!json_is_array(arr)) {
        arr = json_array();
        if (!arr || json_object_set_new(bindings, key, arr) < 0)
            return -1;
    }
    b = json_pack("{s:s, s:s}", "HostIp", ip, "HostPort", host_port);
    return b ? json_array_append_new(arr, b) : -1;
}

int cli_parse_publish(const char *text, json_t *bindings, json_t *exposed, char *errbuf, size_t len)
{
    char spec[256], ip[INET6_ADDRSTRLEN + 1] = "", proto[8] = "tcp", host[48] = "";
    char *slash, *rest, *ctr, *colon;
    const char *host_end;
    long clo, chi, hlo = 0, hhi = 0;
    unsigned char addr[16];

    if (strlen(text) >= sizeof(spec))
        return fail(errbuf, len, "invalid port publication: too long (%zu characters)",
                    strlen(text));
    snprintf(spec, sizeof(spec), "%s", text);
    if ((slash = strrchr(spec, '/'))) {
        *slash = '\0';
        if (protocol(slash + 1, proto) < 0)
            return fail(errbuf, len,
                        "invalid port publication '%s': unknown protocol '%s' (tcp, udp or sctp)",
                        text, slash + 1);
    }
    rest = spec;
    /* An IPv6 address is bracketed: "[::1]:8080:80", so its colons don't split fields. */
    if (rest[0] == '[') {
        char *close = strchr(rest, ']');
        if (!close || close[1] != ':' || (size_t)(close - rest - 1) >= sizeof(ip))
            return fail(errbuf, len, "invalid port publication '%s': bad [IPv6] address", text);
        memcpy(ip, rest + 1, (size_t)(close - rest - 1));
        ip[close - rest - 1] = '\0';
        if (inet_pton(AF_INET6, ip, addr) != 1)
            return fail(errbuf, len, "invalid port publication '%s': '%s' is not an IPv6 address",
                        text, ip);
        rest = close + 2;
        if (!strchr(rest, ':'))
            return fail(errbuf, len,
                        "invalid port publication '%s': want [IP]:HOSTPORT:CONTAINERPORT", text);
    } else {
        size_t colons = 0;
        for (const char *p = rest; *p; p++)
            colons += *p == ':';
        if (colons > 2)
            return fail(errbuf, len,
                        "invalid port publication '%s': put an IPv6 address in brackets, as in "
                        "[::1]:8080:80",
                        text);
        if (colons == 2) {
            colon = strchr(rest, ':');
            *colon = '\0';
            if ((size_t)(colon - rest) >= sizeof(ip))
                return fail(errbuf, len, "invalid port publication '%s': bad IP address", text);
            memcpy(ip, rest, (size_t)(colon - rest) + 1);
            /* An empty IP is docker's "all addresses", like "-p :8080:80". */
            if (ip[0] && inet_pton(AF_INET, ip, addr) != 1)
                return fail(errbuf, len,
                            "invalid port publication '%s': '%s' is not an IPv4 address", text, ip);
            rest = colon + 1;
        }
    }
    /* rest is now "[HOSTPORT:]CTRPORT". */
    colon = strchr(rest, ':');
    ctr = colon ? colon + 1 : rest;
    host_end = colon ? colon : rest;
    if (!*ctr)
        return fail(errbuf, len, "invalid port publication '%s': no container port", text);
    if (port_range(ctr, ctr + strlen(ctr), 1, &clo, &chi) < 0)
        return fail(errbuf, len,
                    "invalid port publication '%s': bad container port '%s' (1-65535 or a range "
                    "such as 80-81)",
                    text, ctr);
    if (colon && host_end > rest) {
        if (port_range(rest, host_end, 0, &hlo, &hhi) < 0)
            return fail(errbuf, len,
                        "invalid port publication '%s': bad host port '%.*s' (0-65535 or a range "
                        "such as 8000-8001)",
                        text, (int)(host_end - rest), rest);
        /* A host range for one container port is a choice of ports the engine picks from. */
        if (chi > clo && hhi - hlo != chi - clo)
            return fail(errbuf, len,
                        "invalid port publication '%s': the host and container port ranges "
                        "differ in size",
                        text);
    }
    for (long p = clo; p <= chi; p++) {
        if (colon && host_end > rest) {
            if (chi > clo)
                snprintf(host, sizeof(host), "%ld", hlo + (p - clo));
            else if (hhi > hlo)
                snprintf(host, sizeof(host), "%ld-%ld", hlo, hhi);
            else
                snprintf(host, sizeof(host), "%ld", hlo);
        }
        if (add_binding(bindings, p, proto, ip, host) < 0 || add_exposed(exposed, p, proto) < 0)
            return fail(errbuf, len, "out of memory");
    }
    return 0;
}

int cli_parse_expose(const char *text, json_t *exposed, char *errbuf, size_t len)
{
    const char *slash = strrchr(text, '/');
    char proto[8] = "tcp";
    long lo, hi;

    if (slash && protocol(slash + 1, proto) < 0)
        return fail(errbuf, len, "invalid --expose '%s': unknown protocol '%s' (tcp, udp or sctp)",
                    text, slash + 1);
    if (port_range(text, slash ? slash : text + strlen(text), 1, &lo, &hi) < 0)
        return fail(errbuf, len, "invalid --expose '%s': want PORT[-PORT][/PROTO]", text);
    for (long p = lo; p <= hi; p++)
        if (add_exposed(exposed, p, proto) < 0)
            return fail(errbuf, len, "out of memory");
    return 0;
}

/* A host name as /etc/hosts takes one: letters, digits, '-', '.', '_', not starting with '-'. */
static int host_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-._", s[i]))
            return 0;
    return 1;
}

int cli_parse_add_host(const char *text, char *out, size_t out_len, char *errbuf, size_t len)
{
    /* "name:ip" as docker always took it; "name=ip" as it also does since 25.0. */
    const char *sep = strpbrk(text, ":=");
    const char *ip;
    char bare[INET6_ADDRSTRLEN + 1];
    unsigned char addr[16];
    size_t n;

    if (!sep || !host_name_ok(text, (size_t)(sep - text)))
        return fail(errbuf, len, "invalid --add-host '%s': want HOST:IP", text);
    ip = sep + 1;
    n = strlen(ip);
    /* "[::1]" as well as "::1". */
    if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
        ip++;
        n -= 2;
    }
    if (n >= sizeof(bare))
        return fail(errbuf, len, "invalid --add-host '%s': '%s' is not an IP address", text,
                    sep + 1);
    memcpy(bare, ip, n);
    bare[n] = '\0';
    if (strcmp(bare, "host-gateway") != 0 && inet_pton(AF_INET, bare, addr) != 1 &&
        inet_pton(AF_INET6, bare, addr) != 1)
        return fail(errbuf, len, "invalid --add-host '%s': '%s' is not an IP address", text,
                    sep + 1);
    /* HostConfig.ExtraHosts entries are "name:ip": the daemon splits at the first colon. */
    if ((size_t)snprintf(out, out_len, "%.*s:%s", (int)(sep - text), text, bare) >= out_len)
        return fail(errbuf, len, "invalid --add-host '%s': too long", text);
    return 0;
}

int cli_check_ip(const char *opt, const char *text, int family, char *errbuf, size_t len)
{
    unsigned char addr[16];

    if (inet_pton(family, text, addr) != 1)
        return fail(errbuf, len, "invalid %s '%s': not an IPv%d address", opt, text,
                    family == AF_INET6 ? 6 : 4);
    return 0;
}

/* Ports sorted as `docker port` lists them: by number, then protocol. */
static int port_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    long nx = strtol(x, NULL, 10), ny = strtol(y, NULL, 10);

    if (nx != ny)
        return nx < ny ? -1 : 1;
    return strcmp(x, y);
}

int cli_port_print(json_t *ports, const char *want, FILE *out, char *errbuf, size_t len)
{
    char key[32], proto[8];
    const char **keys = NULL, *k;
    size_t n = 0, i;
    int lines = 0;
    json_t *v;

    if (want) {
        /* "80" means "80/tcp", as in docker. */
        const char *slash = strchr(want, '/');
        long p = port_number(want, slash ? slash : want + strlen(want), 1);
        if (p < 0 || (slash && protocol(slash + 1, proto) < 0))
            return fail(errbuf, len, "invalid port '%s': want PORT[/PROTO]", want);
        snprintf(key, sizeof(key), "%ld/%s", p, slash ? proto : "tcp");
    }
    if (json_object_size(ports) > 0 && !(keys = calloc(json_object_size(ports), sizeof(*keys))))
        return fail(errbuf, len, "out of memory");
    json_object_foreach (ports, k, v)
        if (!want || strcmp(k, key) == 0)
            keys[n++] = k;
    /* qsort wants an array even for nothing (UBSan holds it to that). */
    if (n > 1)
        qsort(keys, n, sizeof(*keys), port_cmp);
    for (i = 0; i < n; i++) {
        json_t *b;
        size_t j;
        json_array_foreach (json_object_get(ports, keys[i]), j, b) {
            const char *ip = json_string_value(json_object_get(b, "HostIp"));
            const char *hp = json_string_value(json_object_get(b, "HostPort"));
            int v6;
            if (!hp || !*hp)
                continue;
            if (!ip || !*ip)
                ip = "0.0.0.0";
            v6 = strchr(ip, ':') != NULL;
            if (!want)
                fprintf(out, "%s -> ", keys[i]);
            fprintf(out, "%s%s%s:%s\n", v6 ? "[" : "", ip, v6 ? "]" : "", hp);
            lines++;
        }
    }
    free(keys);
    if (want && lines == 0)
        return fail(errbuf, len, "no public port '%s' published", key);
    return lines;
}

/* One entry of a listing's Ports, flattened for sorting and grouping. */
struct port_row {
    char ip[64];
    char type[8];
    long priv, pub; /* pub 0: exposed, not published */
};

static int port_row_cmp(const void *a, const void *b)
{
    const struct port_row *x = a, *y = b;
    int c;

    /* Published ones first, by address, protocol, port; then the exposed ones by port. */
    if ((x->pub > 0) != (y->pub > 0))
        return x->pub > 0 ? -1 : 1;
    if (x->pub == 0 && x->priv != y->priv)
        return x->priv < y->priv ? -1 : 1;
    if ((c = strcmp(x->ip, y->ip)) != 0 || (c = strcmp(x->type, y->type)) != 0)
        return c;
    if (x->priv != y->priv)
        return x->priv < y->priv ? -1 : 1;
    return x->pub < y->pub ? -1 : x->pub > y->pub;
}

/* printf into @buf at *@off, which stays within the buffer (the text is cut when full). */
static void append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*off >= len - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    *off = n < 0 || (size_t)n >= len - *off ? len - 1 : *off + (size_t)n;
}

/* "A" or "A-B". */
static void append_range(char *buf, size_t len, size_t *off, long lo, long hi)
{
    if (lo == hi)
        append(buf, len, off, "%ld", lo);
    else
        append(buf, len, off, "%ld-%ld", lo, hi);
}

int cli_ports_column(json_t *ports, char *buf, size_t len)
{
    struct port_row *rows;
    size_t n = 0, off = 0, i, j;
    json_t *p;

    if (len == 0)
        return -1;
    buf[0] = '\0';
    if (json_array_size(ports) == 0)
        return 0;
    if (!(rows = calloc(json_array_size(ports), sizeof(*rows))))
        return -1;
    json_array_foreach (ports, i, p) {
        const char *ip = json_string_value(json_object_get(p, "IP"));
        const char *type = json_string_value(json_object_get(p, "Type"));
        struct port_row *r = &rows[n];

        r->priv = (long)json_integer_value(json_object_get(p, "PrivatePort"));
        r->pub = (long)json_integer_value(json_object_get(p, "PublicPort"));
        if (r->priv <= 0)
            continue;
        snprintf(r->ip, sizeof(r->ip), "%s", r->pub > 0 && ip ? ip : "");
        snprintf(r->type, sizeof(r->type), "%s", type && *type ? type : "tcp");
        n++;
    }
    if (n > 1)
        qsort(rows, n, sizeof(*rows), port_row_cmp);
    /* Runs of consecutive ports (both sides one up, same address and protocol) as ranges. */
    for (i = 0; i < n; i = j) {
        const struct port_row *r = &rows[i];
        int v6 = strchr(r->ip, ':') != NULL;

        for (j = i + 1; j < n && !strcmp(rows[j].ip, r->ip) && !strcmp(rows[j].type, r->type) &&
                        rows[j].priv == rows[j - 1].priv + 1 &&
                        (r->pub > 0 ? rows[j].pub == rows[j - 1].pub + 1 : rows[j].pub == 0);
             j++)
            ;
        if (i > 0)
            append(buf, len, &off, ", ");
        if (r->pub > 0) {
            append(buf, len, &off, "%s%s%s:", v6 ? "[" : "", r->ip, v6 ? "]" : "");
            append_range(buf, len, &off, r->pub, rows[j - 1].pub);
            append(buf, len, &off, "->");
        }
        append_range(buf, len, &off, r->priv, rows[j - 1].priv);
        append(buf, len, &off, "/%s", r->type);
    }
    free(rows);
    return 0;
}
