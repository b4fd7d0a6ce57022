/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict, allocation-free JSON scanner: reads one JSON text in place, once,
 * front to back, and hands the caller only what it asks for. Listings use it
 * to take a few members out of every stored record without building a
 * jansson tree per record (containers.h, summaries).
 *
 * Strict means it accepts exactly what jansson's json_loadb(..., 0, ...)
 * accepts (RFC 8259 plus jansson's limits), so a record that the store's
 * jansson path would refuse is refused here too:
 *  - the grammar of RFC 8259: no comments, no trailing commas, no single
 *    quotes, no leading zeros, no "1." or ".5", whitespace is space, tab, LF
 *    and CR only, and nothing but whitespace after the top-level value;
 *  - strings are valid UTF-8 (no overlong forms, no surrogates, nothing past
 *    U+10FFFF), hold no raw control character (< 0x20), only the escapes
 *    \" \\ \/ \b \f \n \r \t \uXXXX, surrogate escapes only in valid pairs,
 *    and no \u0000 (jansson refuses it without JSON_ALLOW_NUL);
 *  - integers (no fraction, no exponent) fit int64_t; other numbers must not
 *    overflow a double (underflow is fine), as jansson's strtoll/strtod;
 *  - at most BERTH_JSCAN_MAX_DEPTH nested values, counted like jansson
 *    (a scalar inside N arrays is at depth N + 1).
 * Duplicate object keys are not refused (jansson keeps the last one: callers
 * that care let a later member replace an earlier one).
 *
 * It never reads outside [data, data + len), whatever the bytes: the text
 * needs no NUL and may be cut anywhere. The first error sticks: every later
 * call fails with the same -EBADMSG, and berth__jscan_error() tells why and
 * at which byte.
 *
 * Use: berth__jscan_init(), then read one value: berth__jscan_type() peeks at
 * what comes next, the readers (_string, _int64, _skip, ...) consume one
 * value each. An object is read as
 *
 *     rc = berth__jscan_object_begin(s);
 *     while ((rc = berth__jscan_object_next(s, key, sizeof(key), &klen)) > 0)
 *         ... read or skip exactly one value ...
 *
 * (arrays alike, with _array_begin/_array_next; berth__jscan_object_find()
 * to pick a few members by key); berth__jscan_end() then checks that nothing
 * but whitespace follows. A caller that reads no value after a key gets a
 * syntax error on the next _next call, never a wrong parse. Every function
 * fails with -EBADMSG (and only that: the scanner allocates nothing); what
 * it returns on success is said with each.
 */
#ifndef BERTH_JSCAN_H
#define BERTH_JSCAN_H

#include <stddef.h>
#include <stdint.h>

/* jansson's JSON_PARSER_MAX_DEPTH. */
#define BERTH_JSCAN_MAX_DEPTH 2048

typedef enum berth_jscan_type {
    BERTH_JSCAN_OBJECT = 1,
    BERTH_JSCAN_ARRAY,
    BERTH_JSCAN_STRING,
    BERTH_JSCAN_NUMBER,
    BERTH_JSCAN_TRUE,
    BERTH_JSCAN_FALSE,
    BERTH_JSCAN_NULL,
} berth_jscan_type_t;

/* Scanner state; on the caller's stack, no cleanup. Members are private. */
typedef struct berth_jscan {
    const unsigned char *start, *p, *end;
    uint32_t depth;    /* objects and arrays open */
    int fresh;         /* just after '{' or '[': no comma expected */
    const char *error; /* first error (static text), NULL while fine */
    size_t error_pos;  /* its byte offset */
    /* One bit per open container, 1 = object: tells '}' from ']' when skipping. */
    uint8_t kind[BERTH_JSCAN_MAX_DEPTH / 8];
} berth_jscan_t;

/* Start scanning @len bytes at @data (borrowed: they must outlive the scan). */
void berth__jscan_init(berth_jscan_t *s, const void *data, size_t len);

/*
 * The type of the next value (after whitespace), without consuming it; a
 * number's type is only checked by reading it. -EBADMSG when no value can
 * start there (also at the end of the input).
 */
int berth__jscan_type(berth_jscan_t *s);

/* Consume and check one value of any type. Its bytes (without the whitespace
 * around it) go to *ret_data / *ret_len when these are not NULL, for a later
 * scan of their own with berth__jscan_init(). */
int berth__jscan_skip(berth_jscan_t *s, const char **ret_data, size_t *ret_len);

/*
 * Consume a string and decode it into @buf (@cap bytes, may be 0 with @buf
 * NULL: check only). The copy is NUL-terminated and cut, if needed, at the
 * last whole UTF-8 character that fits in @cap - 1 bytes; the whole string
 * is checked either way. *ret_len (may be NULL) gets the decoded length of
 * the whole string: the copy was cut when *ret_len >= @cap. Another type is
 * an error ("expected a string").
 */
int berth__jscan_string(berth_jscan_t *s, char *buf, size_t cap, size_t *ret_len);

/* Consume an integer into *ret (may be NULL). A number with a fraction or
 * an exponent, or any other type, is an error ("expected an integer"). */
int berth__jscan_int64(berth_jscan_t *s, int64_t *ret);

/*
 * Consume a number of any kind: 1 for an integer, its value in *ret (may be
 * NULL); 0 for a number with a fraction or an exponent (not decoded, *ret
 * untouched). Another type is an error ("expected a number").
 */
int berth__jscan_number(berth_jscan_t *s, int64_t *ret);

/* '{' or '[': opens the container. Another type is an error. */
int berth__jscan_object_begin(berth_jscan_t *s);
int berth__jscan_array_begin(berth_jscan_t *s);

/*
 * The next member's key, decoded into @key like berth__jscan_string() (a key
 * cut short is never equal to a shorter wanted key, so compare only when
 * *ret_len < @cap), after which the caller reads its value: 1. At the
 * closing '}': 0, the object is consumed.
 */
int berth__jscan_object_next(berth_jscan_t *s, char *key, size_t cap, size_t *ret_len);
/* 1 when another element follows (read it next); 0 at ']' (consumed). */
int berth__jscan_array_next(berth_jscan_t *s);

/*
 * Members of the open object until one whose key is among @keys[0..@n)
 * (each shorter than 64 bytes; compared after decoding escapes): returns its
 * index + 1, and the caller reads its value next. Other members are skipped
 * (checked like everything else). 0 at the closing '}' (consumed). The way
 * to pick a few members out of a big object: one call for all it skips.
 */
int berth__jscan_object_find(berth_jscan_t *s, const char *const *keys, size_t n);

/*
 * Lenient readers, like jansson's json_string_value() / json_integer_value():
 * consume a value of any type; 1 when it is a string (decoded as by
 * berth__jscan_string()) / an integer (in *ret), 0 when it is anything else
 * (@buf gets "" / *ret gets 0).
 */
int berth__jscan_string_value(berth_jscan_t *s, char *buf, size_t cap, size_t *ret_len);
int berth__jscan_integer_value(berth_jscan_t *s, int64_t *ret);

/* After the top-level value: only whitespace may remain. */
int berth__jscan_end(berth_jscan_t *s);

/* Why the scan failed and at which byte; NULL while it has not. */
const char *berth__jscan_error(const berth_jscan_t *s, size_t *ret_pos);

/* Check that @data is one JSON object or array, as json_loadb(data, len, 0) does. */
int berth__jscan_validate(const void *data, size_t len, const char **ret_error, size_t *ret_pos);

#endif /* BERTH_JSCAN_H */
