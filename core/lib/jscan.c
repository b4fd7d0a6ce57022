/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The strict in-place JSON scanner (contract in jscan.h). Every read is
 * bounded by s->end: the only way past a byte is a check against it, and an
 * input cut anywhere fails with "unexpected end of input". The rules follow
 * jansson 2.14's lexer and parser (load.c, utf.c) so that the two agree on
 * every input: see the tests, which compare them byte for byte.
 */
#include <errno.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "jscan.h"

/* Bytes that stand for themselves inside a string: printable ASCII but '"' and '\\'. */
static const uint8_t plain[256] = {
    [0x20 ... 0x21] = 1, /* '"' is 0x22 */
    [0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
    [0x5d ... 0x7f] = 1,
};

/*
 * 2^1024 - 2^970 in decimal: the smallest number strtod rounds to infinity
 * (halfway between DBL_MAX and 2^1024, and ties go to the even 2^1024).
 * jansson refuses a real number that overflows ("real number overflow").
 */
static const char overflow_digits[] =
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017"
    "977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273"
    "854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704"
    "342711559699508093042880177904174497792";

/* How much of an input berth__jscan_init() prefetches: a typical record. */
#define PREFETCH_MAX 4096

static int fail(berth_jscan_t *s, const unsigned char *at, const char *why)
{
    if (!s->error) {
        s->error = why;
        s->error_pos = (size_t)(at - s->start);
    }
    return -EBADMSG;
}

static int fail_eof(berth_jscan_t *s)
{
    return fail(s, s->end, "unexpected end of input");
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void push(berth_jscan_t *s, int is_object)
{
    uint32_t d = s->depth++;

    if (is_object)
        s->kind[d >> 3] |= (uint8_t)(1u << (d & 7));
    else
        s->kind[d >> 3] &= (uint8_t) ~(1u << (d & 7));
}

static int top_is_object(const berth_jscan_t *s)
{
    uint32_t d = s->depth - 1;

    return s->depth > 0 && (s->kind[d >> 3] >> (d & 7) & 1);
}

/*
 * Where a value starts (whitespace skipped), or an error: the end of input,
 * or one nesting level too many. jansson counts every value, a scalar too:
 * a value inside N open containers is at depth N + 1.
 */
static int value_start(berth_jscan_t *s, const unsigned char **ret_p)
{
    const unsigned char *p;

    if (s->error)
        return -EBADMSG;
    p = skip_ws(s->p, s->end);
    if (p >= s->end)
        return fail_eof(s);
    if (s->depth >= BERTH_JSCAN_MAX_DEPTH)
        return fail(s, p, "maximum nesting depth reached");
    *ret_p = p;
    return 0;
}

/*
 * Past the run of plain bytes at @p (stops at '"', '\\', a control byte, a
 * byte >= 0x80, or @end). Strings are most of a record's bytes, so look at
 * eight at a time: for each byte, the high bit of @m is set when it is one
 * of those, exact for the lowest such byte (a borrow only runs upwards from
 * a byte that is flagged itself).
 */
static inline __attribute__((always_inline)) const unsigned char *
plain_run(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    /* Sixteen at a time where there is SSE2 (all of x86-64): a signed
     * "< 0x20" also catches the bytes >= 0x80. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmplt_epi8(v, space)));

        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

    while (end - p >= 8) {
        uint64_t v, q, b, m;

        memcpy(&v, p, 8);
        q = v ^ (ones * '"');
        b = v ^ (ones * '\\');
        m = (((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v) & highs;
        if (m)
            return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < end && plain[*p])
        p++;
    return p;
}

/* The four hex digits after "\u" at @p (which points at the 'u'). */
static int hex4(berth_jscan_t *s, const unsigned char *p, uint32_t *ret)
{
    uint32_t v = 0;

    for (int i = 1; i <= 4; i++) {
        int h;

        if (p + i >= s->end)
            return fail_eof(s);
        h = hex_value(p[i]);
        if (h < 0)
            return fail(s, p - 1, "invalid \\u escape");
        v = v << 4 | (uint32_t)h;
    }
    *ret = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at @p (first byte >= 0x80), or an error. */
static int utf8_seq(berth_jscan_t *s, const unsigned char *p, size_t *ret_len)
{
    unsigned char c = p[0];
    size_t n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    uint32_t cp;

    if (c < 0xc2 || c > 0xf4)
        return fail(s, p, "invalid UTF-8");
    if ((size_t)(s->end - p) < n) {
        /* a bad continuation byte before the end is still the better message */
        for (const unsigned char *q = p + 1; q < s->end; q++)
            if ((*q & 0xc0) != 0x80)
                return fail(s, p, "invalid UTF-8");
        return fail_eof(s);
    }
    cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return fail(s, p, "invalid UTF-8");
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return fail(s, p, "invalid UTF-8");
    *ret_len = n;
    return 0;
}

static size_t utf8_put(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The escape at @p (the backslash): its decoded bytes and where it ends. */
static int escape(berth_jscan_t *s, const unsigned char *p, unsigned char out[4], size_t *ret_len,
                  const unsigned char **ret_next)
{
    uint32_t cp, lo;
    int rc;

    if (p + 1 >= s->end)
        return fail_eof(s);
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        out[0] = p[1];
        break;
    case 'b':
        out[0] = '\b';
        break;
    case 'f':
        out[0] = '\f';
        break;
    case 'n':
        out[0] = '\n';
        break;
    case 'r':
        out[0] = '\r';
        break;
    case 't':
        out[0] = '\t';
        break;
    case 'u':
        rc = hex4(s, p + 1, &cp);
        if (rc < 0)
            return rc;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return fail(s, p, "invalid \\u escape: lone low surrogate");
        if (cp >= 0xd800 && cp <= 0xdbff) {
            /* A high surrogate must be followed by an escaped low one. */
            for (int i = 6; i <= 7; i++) {
                if (p + i >= s->end)
                    return fail_eof(s);
                if (p[i] != (i == 6 ? '\\' : 'u'))
                    return fail(s, p, "invalid \\u escape: lone high surrogate");
            }
            rc = hex4(s, p + 7, &lo);
            if (rc < 0)
                return rc;
            if (lo < 0xdc00 || lo > 0xdfff)
                return fail(s, p, "invalid \\u escape: lone high surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            *ret_next = p + 12;
        } else {
            if (cp == 0)
                return fail(s, p, "\\u0000 is not allowed");
            *ret_next = p + 6;
        }
        *ret_len = utf8_put(cp, out);
        return 0;
    default:
        return fail(s, p, "invalid escape");
    }
    *ret_len = 1;
    *ret_next = p + 2;
    return 0;
}

/* Past the escape or UTF-8 sequence at *pp, checked. */
static __attribute__((noinline)) int skip_special(berth_jscan_t *s, const unsigned char **pp)
{
    const unsigned char *p = *pp, *next;
    unsigned char buf[4];
    size_t n;
    int rc;

    if (*p == '\\') {
        rc = escape(s, p, buf, &n, &next);
        if (rc < 0)
            return rc;
        *pp = next;
        return 0;
    }
    rc = utf8_seq(s, p, &n);
    if (rc < 0)
        return rc;
    *pp = p + n;
    return 0;
}

/*
 * The string at s->p (its opening quote), decoded into @out as jscan.h's
 * berth__jscan_string() describes. Runs of plain bytes are copied at once.
 */
static int scan_string(berth_jscan_t *s, char *out, size_t cap, size_t *ret_len)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    size_t total = 0, kept = 0, room = out && cap ? cap - 1 : 0;
    int cut = room == 0;
    int rc;

    for (;;) {
        const unsigned char *run = p, *next;
        unsigned char buf[4];
        size_t n;

        p = plain_run(p, end);
        n = (size_t)(p - run);
        if (n) {
            /* ASCII: any byte boundary is a character boundary */
            if (!cut) {
                size_t w = n <= room - kept ? n : room - kept;

                memcpy(out + kept, run, w);
                kept += w;
                cut = w < n;
            }
            total += n;
        }
        if (p >= end)
            return fail_eof(s);
        if (*p == '"')
            break;
        if (*p == '\\') {
            rc = escape(s, p, buf, &n, &next);
            if (rc < 0)
                return rc;
            run = buf;
        } else if (*p < 0x20) {
            return fail(s, p, "control character in string");
        } else {
            rc = utf8_seq(s, p, &n);
            if (rc < 0)
                return rc;
            run = p;
            next = p + n;
        }
        /* A character is copied whole or not at all, and nothing after a cut. */
        if (!cut) {
            if (n <= room - kept) {
                memcpy(out + kept, run, n);
                kept += n;
            } else {
                cut = 1;
            }
        }
        total += n;
        p = next;
    }
    if (out && cap)
        out[kept] = '\0';
    s->p = p + 1;
    if (ret_len)
        *ret_len = total;
    return 0;
}

/*
 * The string at *pp checked and passed, nothing decoded: skip()'s share of
 * the work, which is most of a record, so it stays lean (escapes and
 * non-ASCII bytes, rare in records, go through the out-of-line checks).
 */
static inline __attribute__((always_inline)) int skip_string(berth_jscan_t *s,
                                                             const unsigned char **pp)
{
    const unsigned char *p = *pp + 1, *end = s->end;

    for (;;) {
        p = plain_run(p, end);
        if (p >= end)
            return fail_eof(s);
        if (*p == '"')
            break;
        if (*p < 0x20 && *p != '\\')
            return fail(s, p, "control character in string");
        if (skip_special(s, &p) < 0)
            return -EBADMSG;
    }
    *pp = p + 1;
    return 0;
}

/*
 * Whether a real number overflows a double. @ib..@ie are its integer digits,
 * @fb..@fe its fraction digits, @exp its exponent (saturated far beyond any
 * input length, so the comparison below keeps its sign).
 */
static int real_overflows(const unsigned char *ib, const unsigned char *ie, const unsigned char *fb,
                          const unsigned char *fe, int64_t exp)
{
    const unsigned char *q = ib;
    int64_t e10;
    size_t i = 0;

    while (q < ie && *q == '0')
        q++;
    if (q < ie) {
        e10 = (int64_t)(ie - q - 1) + exp;
    } else {
        q = fb;
        while (q < fe && *q == '0')
            q++;
        if (q == fe)
            return 0; /* zero */
        e10 = exp - (int64_t)(q - fb + 1);
    }
    if (e10 != 308)
        return e10 > 308;
    /* d.ddd x 10^308: compare the significant digits with the threshold's */
    {
        const unsigned char *span[2][2] = { { q, q < ie ? ie : fe }, { q < ie ? fb : fe, fe } };

        for (int k = 0; k < 2; k++) {
            for (const unsigned char *d = span[k][0]; d < span[k][1]; d++, i++) {
                /* equal to all of the threshold, more digits follow: not below it */
                if (i == sizeof(overflow_digits) - 1)
                    return 1;
                if (*d != (unsigned char)overflow_digits[i])
                    return *d > (unsigned char)overflow_digits[i];
            }
        }
    }
    /* a prefix of the threshold: at it only when nothing of the threshold is left */
    return i == sizeof(overflow_digits) - 1;
}

/*
 * The number at *pp; *pp moves past it. *ret_int tells an integer (no
 * fraction, no exponent) from a real, *ret_val gets an integer's value.
 */
static int scan_number(berth_jscan_t *s, const unsigned char **pp, int *ret_int, int64_t *ret_val)
{
    const unsigned char *p = *pp, *end = s->end, *tok = p, *ib, *ie, *fb = NULL, *fe = NULL;
    uint64_t v = 0, limit;
    int64_t exp = 0;
    int neg = 0, real = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (p >= end)
        return fail_eof(s);
    if (!is_digit(*p))
        return fail(s, tok, "invalid number");
    ib = p;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(s, tok, "invalid number: leading zero");
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    ie = p;
    if (p < end && *p == '.') {
        p++;
        if (p >= end)
            return fail_eof(s);
        if (!is_digit(*p))
            return fail(s, tok, "invalid number");
        fb = p;
        while (p < end && is_digit(*p))
            p++;
        fe = p;
        real = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;

        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end)
            return fail_eof(s);
        if (!is_digit(*p))
            return fail(s, tok, "invalid number");
        for (; p < end && is_digit(*p); p++)
            if (exp < (int64_t)1 << 58)
                exp = exp * 10 + (*p - '0');
        if (eneg)
            exp = -exp;
        real = 1;
    }
    if (real) {
        if (!fb)
            fb = fe = ie;
        if (real_overflows(ib, ie, fb, fe, exp))
            return fail(s, tok, "real number overflow");
    } else if (!ret_val && ie - ib <= 18) {
        /* skipped, and too short to leave int64_t: no need for its value */
    } else {
        for (const unsigned char *q = ib; q < ie; q++) {
            if (v > (limit - (uint64_t)(*q - '0')) / 10)
                return fail(s, tok, "integer out of range");
            v = v * 10 + (uint64_t)(*q - '0');
        }
        if (ret_val)
            *ret_val = neg ? (int64_t)(0 - v) : (int64_t)v;
    }
    *ret_int = !real;
    *pp = p;
    return 0;
}

static int scan_literal(berth_jscan_t *s, const unsigned char **pp)
{
    const unsigned char *p = *pp;
    const char *word = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
    size_t n = *p == 'f' ? 5 : 4, have = (size_t)(s->end - p);

    if (have >= n && memcmp(p, word, n) == 0) {
        *pp = p + n;
        return 0;
    }
    if (have < n && memcmp(p, word, have) == 0)
        return fail_eof(s);
    return fail(s, p, "invalid literal");
}

void berth__jscan_init(berth_jscan_t *s, const void *data, size_t len)
{
    /*
     * Every byte will be read, and a stored record is usually cold (one of
     * thousands in a listing): ask for its first cache lines all at once
     * rather than miss on them one after another.
     */
    for (size_t off = 0; off < len && off < PREFETCH_MAX; off += 64)
        __builtin_prefetch((const char *)data + off);
    s->start = s->p = data;
    s->end = s->start + len;
    s->depth = 0;
    s->fresh = 0;
    s->error = NULL;
    s->error_pos = 0;
}

int berth__jscan_type(berth_jscan_t *s)
{
    const unsigned char *p;
    int rc = value_start(s, &p);

    if (rc < 0)
        return rc;
    switch (*p) {
    case '{':
        return BERTH_JSCAN_OBJECT;
    case '[':
        return BERTH_JSCAN_ARRAY;
    case '"':
        return BERTH_JSCAN_STRING;
    case 't':
        return BERTH_JSCAN_TRUE;
    case 'f':
        return BERTH_JSCAN_FALSE;
    case 'n':
        return BERTH_JSCAN_NULL;
    default:
        if (*p == '-' || is_digit(*p))
            return BERTH_JSCAN_NUMBER;
        return fail(s, p, "expected a value");
    }
}

/* An object member's key and its ':' at *pp, checked; *pp moves to the value. */
static inline __attribute__((always_inline)) int skip_key(berth_jscan_t *s,
                                                          const unsigned char **pp)
{
    const unsigned char *p = *pp, *end = s->end;
    int rc;

    if (p >= end)
        return fail_eof(s);
    if (*p != '"')
        return fail(s, p, "expected a string key");
    rc = skip_string(s, &p);
    if (rc < 0)
        return rc;
    p = skip_ws(p, end);
    if (p >= end)
        return fail_eof(s);
    if (*p != ':')
        return fail(s, p, "expected ':'");
    *pp = skip_ws(p + 1, end);
    return 0;
}

/*
 * Most of the scanner's time goes here: keep the nesting state in locals
 * (depth, whether the innermost container is an object) and touch the bit
 * stack only when a container opens or closes.
 */
int berth__jscan_skip(berth_jscan_t *s, const char **ret_data, size_t *ret_len)
{
    const unsigned char *p, *begin, *end = s->end;
    uint32_t base = s->depth, depth = base;
    int rc, is_int, obj = top_is_object(s);

    rc = value_start(s, &p);
    if (rc < 0)
        return rc;
    begin = p;
    for (;;) {
        /* at a value */
        if (p >= end)
            return fail_eof(s);
        if (depth >= BERTH_JSCAN_MAX_DEPTH)
            return fail(s, p, "maximum nesting depth reached");
        switch (*p) {
        case '{':
        case '[':
            obj = *p == '{';
            s->depth = depth;
            push(s, obj);
            depth++;
            p = skip_ws(p + 1, end);
            if (p < end && *p == (obj ? '}' : ']')) {
                p++;
                depth--;
                break;
            }
            if (obj && (rc = skip_key(s, &p)) < 0)
                return rc;
            continue;
        case '"':
            rc = skip_string(s, &p);
            if (rc < 0)
                return rc;
            break;
        case 't':
        case 'f':
        case 'n':
            rc = scan_literal(s, &p);
            if (rc < 0)
                return rc;
            break;
        default: {
            /* the usual number, a short integer, inline; anything else in full */
            const unsigned char *q = p + (*p == '-'), *d = q;

            if (q < end && is_digit(*q)) {
                if (*q == '0')
                    q++; /* a digit after it is refused below, in full */
                else
                    while (q < end && is_digit(*q))
                        q++;
                if (q < end && q - d <= 18 && !is_digit(*q) && *q != '.' && *q != 'e' &&
                    *q != 'E') {
                    p = q;
                    break;
                }
            }
            if (*p != '-' && !is_digit(*p))
                return fail(s, p, "expected a value");
            rc = scan_number(s, &p, &is_int, NULL);
            if (rc < 0)
                return rc;
        }
        }
        /* after a value: close what ends here, then on to the next value */
        for (;;) {
            if (depth == base)
                goto done;
            obj = (s->kind[(depth - 1) >> 3] >> ((depth - 1) & 7)) & 1;
            p = skip_ws(p, end);
            if (p >= end)
                return fail_eof(s);
            if (*p == ',') {
                p = skip_ws(p + 1, end);
                if (obj && (rc = skip_key(s, &p)) < 0)
                    return rc;
                break;
            }
            if (*p != (obj ? '}' : ']'))
                return fail(s, p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            p++;
            depth--;
        }
    }
done:
    s->depth = depth;
    s->p = p;
    if (ret_data)
        *ret_data = (const char *)begin;
    if (ret_len)
        *ret_len = (size_t)(p - begin);
    return 0;
}

int berth__jscan_string(berth_jscan_t *s, char *buf, size_t cap, size_t *ret_len)
{
    const unsigned char *p;
    int rc = value_start(s, &p);

    if (rc < 0)
        return rc;
    if (*p != '"')
        return fail(s, p, "expected a string");
    s->p = p;
    return scan_string(s, buf, cap, ret_len);
}

int berth__jscan_int64(berth_jscan_t *s, int64_t *ret)
{
    const unsigned char *p, *tok;
    int64_t v = 0;
    int rc, is_int;

    rc = value_start(s, &p);
    if (rc < 0)
        return rc;
    tok = p;
    if (*p != '-' && !is_digit(*p))
        return fail(s, p, "expected an integer");
    rc = scan_number(s, &p, &is_int, &v);
    if (rc < 0)
        return rc;
    if (!is_int)
        return fail(s, tok, "expected an integer");
    s->p = p;
    if (ret)
        *ret = v;
    return 0;
}

int berth__jscan_number(berth_jscan_t *s, int64_t *ret)
{
    const unsigned char *p;
    int64_t v = 0;
    int rc, is_int;

    rc = value_start(s, &p);
    if (rc < 0)
        return rc;
    if (*p != '-' && !is_digit(*p))
        return fail(s, p, "expected a number");
    rc = scan_number(s, &p, &is_int, &v);
    if (rc < 0)
        return rc;
    s->p = p;
    if (is_int && ret)
        *ret = v;
    return is_int;
}

static int container_begin(berth_jscan_t *s, int is_object)
{
    const unsigned char *p;
    int rc = value_start(s, &p);

    if (rc < 0)
        return rc;
    if (*p != (is_object ? '{' : '['))
        return fail(s, p, is_object ? "expected an object" : "expected an array");
    push(s, is_object);
    s->p = p + 1;
    s->fresh = 1;
    return 0;
}

int berth__jscan_object_begin(berth_jscan_t *s)
{
    return container_begin(s, 1);
}

int berth__jscan_array_begin(berth_jscan_t *s)
{
    return container_begin(s, 0);
}

/* Common start of _object_next and _array_next: at ',' or the closing bracket. */
static inline __attribute__((always_inline)) int next_common(berth_jscan_t *s, int is_object,
                                                             const unsigned char **ret_p)
{
    const unsigned char *p;
    char close = is_object ? '}' : ']';

    if (s->error)
        return -EBADMSG;
    p = skip_ws(s->p, s->end);
    if (s->depth == 0 || top_is_object(s) != is_object)
        return fail(s, p, is_object ? "not inside an object" : "not inside an array");
    if (p >= s->end)
        return fail_eof(s);
    if (*p == close) {
        s->depth--;
        s->p = p + 1;
        s->fresh = 0;
        return 0;
    }
    if (!s->fresh) {
        if (*p != ',')
            return fail(s, p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        p = skip_ws(p + 1, s->end);
    }
    s->fresh = 0;
    *ret_p = p;
    return 1;
}

int berth__jscan_object_next(berth_jscan_t *s, char *key, size_t cap, size_t *ret_len)
{
    const unsigned char *p;
    int rc = next_common(s, 1, &p);

    if (rc <= 0)
        return rc;
    if (p >= s->end)
        return fail_eof(s);
    if (*p != '"')
        return fail(s, p, "expected a string key");
    s->p = p;
    rc = scan_string(s, key, cap, ret_len);
    if (rc < 0)
        return rc;
    p = skip_ws(s->p, s->end);
    if (p >= s->end)
        return fail_eof(s);
    if (*p != ':')
        return fail(s, p, "expected ':'");
    s->p = p + 1;
    return 1;
}

int berth__jscan_object_find(berth_jscan_t *s, const char *const *keys, size_t n)
{
    for (;;) {
        const unsigned char *p, *k, *kend;
        char buf[64];
        size_t klen;
        int rc = next_common(s, 1, &p);

        if (rc <= 0)
            return rc;
        if (p >= s->end)
            return fail_eof(s);
        if (*p != '"')
            return fail(s, p, "expected a string key");
        k = p + 1;
        kend = plain_run(k, s->end);
        if (kend < s->end && *kend == '"') {
            /* the usual key: nothing to decode, compare in place */
            klen = (size_t)(kend - k);
            s->p = kend + 1;
        } else {
            s->p = p;
            rc = scan_string(s, buf, sizeof(buf), &klen);
            if (rc < 0)
                return rc;
            /* a key cut short is longer than any wanted key */
            k = klen < sizeof(buf) ? (const unsigned char *)buf : NULL;
        }
        p = skip_ws(s->p, s->end);
        if (p >= s->end)
            return fail_eof(s);
        if (*p != ':')
            return fail(s, p, "expected ':'");
        s->p = p + 1;
        /* first bytes first; a key holds no NUL, so strncmp stops inside @keys[i] */
        for (size_t i = 0; k && i < n; i++)
            if ((unsigned char)keys[i][0] == (klen ? k[0] : 0) &&
                (klen == 0 || strncmp(keys[i], (const char *)k, klen) == 0) &&
                keys[i][klen] == '\0')
                return (int)i + 1;
        rc = berth__jscan_skip(s, NULL, NULL);
        if (rc < 0)
            return rc;
    }
}

int berth__jscan_string_value(berth_jscan_t *s, char *buf, size_t cap, size_t *ret_len)
{
    const unsigned char *p;
    int rc = value_start(s, &p);

    if (rc < 0)
        return rc;
    if (*p == '"') {
        s->p = p;
        rc = scan_string(s, buf, cap, ret_len);
        return rc < 0 ? rc : 1;
    }
    if (buf && cap)
        buf[0] = '\0';
    if (ret_len)
        *ret_len = 0;
    return berth__jscan_skip(s, NULL, NULL);
}

int berth__jscan_integer_value(berth_jscan_t *s, int64_t *ret)
{
    const unsigned char *p;
    int64_t v = 0;
    int rc, is_int;

    rc = value_start(s, &p);
    if (rc < 0)
        return rc;
    *ret = 0;
    if (*p != '-' && !is_digit(*p))
        return berth__jscan_skip(s, NULL, NULL);
    rc = scan_number(s, &p, &is_int, &v);
    if (rc < 0)
        return rc;
    s->p = p;
    if (is_int)
        *ret = v;
    return is_int;
}

int berth__jscan_array_next(berth_jscan_t *s)
{
    const unsigned char *p;
    int rc = next_common(s, 0, &p);

    if (rc <= 0)
        return rc;
    s->p = p;
    return 1;
}

int berth__jscan_end(berth_jscan_t *s)
{
    const unsigned char *p;

    if (s->error)
        return -EBADMSG;
    p = skip_ws(s->p, s->end);
    if (s->depth)
        return fail(s, p, "unfinished value");
    if (p != s->end)
        return fail(s, p, "trailing data after the value");
    return 0;
}

const char *berth__jscan_error(const berth_jscan_t *s, size_t *ret_pos)
{
    if (s->error && ret_pos)
        *ret_pos = s->error_pos;
    return s->error;
}

int berth__jscan_validate(const void *data, size_t len, const char **ret_error, size_t *ret_pos)
{
    berth_jscan_t s;
    int rc;

    berth__jscan_init(&s, data, len);
    rc = berth__jscan_type(&s);
    if (rc >= 0 && rc != BERTH_JSCAN_OBJECT && rc != BERTH_JSCAN_ARRAY)
        rc = fail(&s, skip_ws(s.p, s.end), "expected an object or an array");
    if (rc >= 0)
        rc = berth__jscan_skip(&s, NULL, NULL);
    if (rc >= 0)
        rc = berth__jscan_end(&s);
    if (rc < 0) {
        if (ret_error)
            *ret_error = s.error;
        if (ret_pos)
            *ret_pos = s.error_pos;
        return rc;
    }
    return 0;
}
