/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small evaluator for docker-style --format templates (cli-template.h).
 * The template is parsed into a tree of nodes once, then executed over the
 * JSON; values are jansson references, every one made during execution
 * kept in a pool that the end of the render releases.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-template.h"

/* ---- the tree ---- */

enum node_kind {
    N_TEXT,  /* literal text */
    N_PRINT, /* {{pipeline}} */
    N_IF,    /* {{if p}} body [{{else}} alt] {{end}}; else-if is an N_IF as alt */
    N_RANGE, /* {{range [$k, $v :=] p}} body [{{else}} alt] {{end}} */
    N_WITH,  /* {{with p}} body [{{else}} alt] {{end}} */
    N_LIST,  /* a sequence */
};

enum expr_kind {
    E_DOT,    /* . with fields */
    E_VAR,    /* $ or $name, with fields */
    E_STRING, /* "..." */
    E_NUMBER,
    E_BOOL,
    E_PAREN, /* (pipeline) with fields */
    E_CALL,  /* function args... */
};

struct expr {
    enum expr_kind kind;
    char *name;    /* E_VAR's name ("" for $), E_CALL's function, E_STRING's text */
    double num;    /* E_NUMBER, E_BOOL */
    char **fields; /* .A.B after the operand */
    size_t n_fields;
    struct expr **args; /* E_CALL's arguments, E_PAREN's pipeline (commands) */
    size_t n_args;
};

struct node {
    enum node_kind kind;
    char *text;         /* N_TEXT */
    struct expr **pipe; /* the pipeline: commands, each an E_CALL or an operand */
    size_t n_pipe;
    char *key_var, *val_var; /* N_RANGE's $k, $v; N_WITH/N_IF: unused */
    struct node *body, *alt;
    struct node **kids; /* N_LIST */
    size_t n_kids;
};

struct parser {
    const char *p;
    char *err;
    size_t errlen;
    int failed;
};

/* "template: " and the message, once: the first failure is the one reported. */
static void say(char *err, size_t errlen, int *failed, const char *fmt, va_list ap)
{
    int n;

    if (*failed)
        return;
    *failed = 1;
    n = snprintf(err, errlen, "template: ");
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

static void perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(struct parser *ps, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(ps->err, ps->errlen, &ps->failed, fmt, ap);
    va_end(ap);
}

static void expr_free(struct expr *e)
{
    if (!e)
        return;
    free(e->name);
    for (size_t i = 0; i < e->n_fields; i++)
        free(e->fields[i]);
    free(e->fields);
    for (size_t i = 0; i < e->n_args; i++)
        expr_free(e->args[i]);
    free(e->args);
    free(e);
}

static void node_free(struct node *n)
{
    if (!n)
        return;
    free(n->text);
    for (size_t i = 0; i < n->n_pipe; i++)
        expr_free(n->pipe[i]);
    free(n->pipe);
    free(n->key_var);
    free(n->val_var);
    node_free(n->body);
    node_free(n->alt);
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n);
}

static int push(void *arrp, size_t *n, void *item)
{
    void ***arr = arrp;
    void **grown = realloc(*arr, (*n + 1) * sizeof(void *));
    if (!grown)
        return -1;
    grown[(*n)++] = item;
    *arr = grown;
    return 0;
}

/* ---- lexing inside an action: the text between {{ and }} ---- */

struct action {
    const char *s, *end; /* what is left of the action */
};

static void skip_space(struct action *a)
{
    while (a->s < a->end && isspace((unsigned char)*a->s))
        a->s++;
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* The next word if it is @w (a keyword or function name), consumed. */
static int take_word(struct action *a, const char *w)
{
    size_t n = strlen(w);
    skip_space(a);
    if ((size_t)(a->end - a->s) >= n && !strncmp(a->s, w, n) &&
        (a->s + n == a->end || !ident_char(a->s[n]))) {
        a->s += n;
        return 1;
    }
    return 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* .A.B after an operand (or alone: "." is a field chain of none). */
static int parse_fields(struct parser *ps, struct action *a, struct expr *e)
{
    while (a->s < a->end && *a->s == '.' && a->s + 1 < a->end && ident_char(a->s[1])) {
        const char *f = ++a->s;
        while (a->s < a->end && ident_char(*a->s))
            a->s++;
        if (push(&e->fields, &e->n_fields, dup_n(f, (size_t)(a->s - f))) < 0 ||
            !e->fields[e->n_fields - 1]) {
            perr(ps, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int parse_pipeline(struct parser *ps, struct action *a, struct expr ***ret, size_t *ret_n,
                          int in_paren);

static const char *const funcs[] = {
    "json", "index", "len", "upper", "lower", "join", "split", "print", "println", "printf",
    "eq",   "ne",    "lt",  "le",    "gt",    "ge",   "not",   "and",   "or",      NULL,
};

static int is_func(const char *s, size_t n)
{
    for (size_t i = 0; funcs[i]; i++)
        if (strlen(funcs[i]) == n && !strncmp(funcs[i], s, n))
            return 1;
    return 0;
}

/* One operand; NULL at the end of a command (| or ) or the end). */
static struct expr *parse_operand(struct parser *ps, struct action *a)
{
    struct expr *e;
    const char *s;

    skip_space(a);
    if (a->s >= a->end || *a->s == '|' || *a->s == ')')
        return NULL;
    if (!(e = calloc(1, sizeof(*e)))) {
        perr(ps, "out of memory");
        return NULL;
    }
    s = a->s;
    if (*s == '.') {
        e->kind = E_DOT;
        if (s + 1 < a->end && ident_char(s[1])) {
            if (parse_fields(ps, a, e) < 0)
                goto fail;
        } else {
            a->s++;
        }
    } else if (*s == '$') {
        e->kind = E_VAR;
        a->s++;
        while (a->s < a->end && ident_char(*a->s))
            a->s++;
        if (!(e->name = dup_n(s + 1, (size_t)(a->s - s - 1))) || parse_fields(ps, a, e) < 0)
            goto fail;
    } else if (*s == '"') {
        char *out = malloc((size_t)(a->end - s) + 1), *o = out;
        e->kind = E_STRING;
        if (!out)
            goto fail;
        for (a->s++; a->s < a->end && *a->s != '"'; a->s++) {
            if (*a->s == '\\' && a->s + 1 < a->end) {
                a->s++;
                *o++ = *a->s == 'n' ? '\n' : *a->s == 't' ? '\t' : *a->s;
            } else {
                *o++ = *a->s;
            }
        }
        *o = '\0';
        e->name = out;
        if (a->s >= a->end) {
            perr(ps, "unterminated string");
            goto fail;
        }
        a->s++;
    } else if (*s == '-' || isdigit((unsigned char)*s)) {
        char *end;
        e->kind = E_NUMBER;
        e->num = strtod(s, &end);
        if (end == s || end > a->end) {
            perr(ps, "bad number");
            goto fail;
        }
        a->s = end;
    } else if (*s == '(') {
        e->kind = E_PAREN;
        a->s++;
        if (parse_pipeline(ps, a, &e->args, &e->n_args, 1) < 0)
            goto fail;
        skip_space(a);
        if (a->s >= a->end || *a->s != ')') {
            perr(ps, "unclosed (");
            goto fail;
        }
        a->s++;
        if (parse_fields(ps, a, e) < 0)
            goto fail;
    } else if (ident_char(*s)) {
        while (a->s < a->end && ident_char(*a->s))
            a->s++;
        if ((size_t)(a->s - s) == 4 && !strncmp(s, "true", 4)) {
            e->kind = E_BOOL, e->num = 1;
        } else if ((size_t)(a->s - s) == 5 && !strncmp(s, "false", 5)) {
            e->kind = E_BOOL, e->num = 0;
        } else if (is_func(s, (size_t)(a->s - s))) {
            e->kind = E_CALL;
            if (!(e->name = dup_n(s, (size_t)(a->s - s))))
                goto fail;
        } else {
            perr(ps, "function \"%.*s\" not defined", (int)(a->s - s), s);
            goto fail;
        }
    } else {
        perr(ps, "unexpected \"%c\" in operand", *s);
        goto fail;
    }
    return e;

fail:
    if (!ps->failed)
        perr(ps, "out of memory");
    expr_free(e);
    return NULL;
}

/*
 * COMMAND ('|' COMMAND)*: each command an operand, or a function with its
 * arguments (an E_CALL holding them).
 */
static int parse_pipeline(struct parser *ps, struct action *a, struct expr ***ret, size_t *ret_n,
                          int in_paren)
{
    for (;;) {
        struct expr *first = parse_operand(ps, a), *arg;
        if (ps->failed)
            return -1;
        if (!first) {
            perr(ps, "missing value for command");
            return -1;
        }
        if (first->kind == E_CALL) {
            while ((arg = parse_operand(ps, a)))
                if (push(&first->args, &first->n_args, arg) < 0) {
                    expr_free(arg);
                    expr_free(first);
                    perr(ps, "out of memory");
                    return -1;
                }
        } else if ((arg = parse_operand(ps, a))) {
            expr_free(arg);
            expr_free(first);
            perr(ps, "can't give an argument to a non-function");
            return -1;
        }
        if (ps->failed || push(ret, ret_n, first) < 0) {
            expr_free(first);
            perr(ps, "out of memory");
            return -1;
        }
        skip_space(a);
        if (a->s < a->end && *a->s == '|') {
            a->s++;
            continue;
        }
        if (a->s < a->end && (*a->s != ')' || !in_paren)) {
            perr(ps, "unexpected \"%c\" in command", *a->s);
            return -1;
        }
        return 0;
    }
}

/* ---- the template's structure ---- */

enum stop { STOP_EOF, STOP_END, STOP_ELSE, STOP_ELSE_IF };

static struct node *new_node(struct parser *ps, enum node_kind kind)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n)
        perr(ps, "out of memory");
    else
        n->kind = kind;
    return n;
}

static struct node *parse_list(struct parser *ps, enum stop *stopped, struct action *stop_action);

/* {{if/range/with ...}}: the pipeline in @a, then body, else, end. */
static struct node *parse_block(struct parser *ps, enum node_kind kind, struct action *a)
{
    struct node *n = new_node(ps, kind);
    struct action rest;
    enum stop st;

    if (!n)
        return NULL;
    skip_space(a);
    if (kind == N_RANGE && a->s < a->end && *a->s == '$') {
        /* $v := p, or $k, $v := p */
        const char *v = a->s, *assign = strstr(a->s, ":=");
        if (assign && assign < a->end) {
            const char *comma = memchr(v, ',', (size_t)(assign - v));
            const char *e1 = comma ? comma : assign;
            while (e1 > v && isspace((unsigned char)e1[-1]))
                e1--;
            if (comma) {
                const char *v2 = comma + 1, *e2 = assign;
                while (*v2 == ' ')
                    v2++;
                while (e2 > v2 && isspace((unsigned char)e2[-1]))
                    e2--;
                n->key_var = dup_n(v + 1, (size_t)(e1 - v - 1));
                n->val_var = *v2 == '$' ? dup_n(v2 + 1, (size_t)(e2 - v2 - 1)) : NULL;
                if (!n->val_var) {
                    perr(ps, "range: want $key, $value :=");
                    goto fail;
                }
            } else {
                n->val_var = dup_n(v + 1, (size_t)(e1 - v - 1));
            }
            a->s = assign + 2;
        }
    }
    if (parse_pipeline(ps, a, &n->pipe, &n->n_pipe, 0) < 0)
        goto fail;
    if (!(n->body = parse_list(ps, &st, &rest)))
        goto fail;
    if (st == STOP_ELSE_IF) {
        /* else if p: an if of its own as the alternative, ending at our end. */
        if (!(n->alt = parse_block(ps, N_IF, &rest)))
            goto fail;
        return n;
    }
    if (st == STOP_ELSE) {
        if (!(n->alt = parse_list(ps, &st, &rest)))
            goto fail;
        if (st != STOP_END) {
            perr(ps, "expected {{end}} after {{else}}");
            goto fail;
        }
    } else if (st != STOP_END) {
        perr(ps, "unexpected EOF: a block without {{end}}");
        goto fail;
    }
    return n;

fail:
    node_free(n);
    return NULL;
}

/*
 * Text and actions up to the end, an {{end}} or an {{else}} (*stopped
 * says which; for else-if, @stop_action has what follows "else if").
 */
static struct node *parse_list(struct parser *ps, enum stop *stopped, struct action *stop_action)
{
    struct node *list = new_node(ps, N_LIST), *n = NULL;

    if (!list)
        return NULL;
    *stopped = STOP_EOF;
    while (*ps->p) {
        const char *open = strstr(ps->p, "{{"), *close, *text_end;
        struct action a;
        int trim_left, trim_right;

        text_end = open ? open : ps->p + strlen(ps->p);
        trim_left = open && open[2] == '-' &&
                    (open[3] == ' ' || open[3] == '\t' || open[3] == '\n' || open[3] == '\r');
        if (trim_left)
            while (text_end > ps->p && isspace((unsigned char)text_end[-1]))
                text_end--;
        if (text_end > ps->p) {
            if (!(n = new_node(ps, N_TEXT)) ||
                !(n->text = dup_n(ps->p, (size_t)(text_end - ps->p))) ||
                push(&list->kids, &list->n_kids, n) < 0) {
                perr(ps, "out of memory");
                goto fail;
            }
            n = NULL;
        }
        if (!open) {
            ps->p += strlen(ps->p);
            break;
        }
        a.s = open + 2 + (trim_left ? 1 : 0);
        if (!strncmp(a.s, "/*", 2)) {
            close = strstr(a.s + 2, "*/");
            if (!close || !(close = strstr(close, "}}"))) {
                perr(ps, "unclosed comment");
                goto fail;
            }
        } else if (!(close = strstr(a.s, "}}"))) {
            perr(ps, "unclosed action");
            goto fail;
        }
        trim_right = close - a.s >= 2 && close[-1] == '-' && isspace((unsigned char)close[-2]);
        a.end = close - (trim_right ? 1 : 0);
        ps->p = close + 2;
        if (trim_right)
            while (*ps->p && isspace((unsigned char)*ps->p))
                ps->p++;
        skip_space(&a);
        if (!strncmp(a.s, "/*", 2))
            continue;
        if (a.s == a.end) {
            perr(ps, "missing value for command");
            goto fail;
        }
        if (take_word(&a, "end")) {
            *stopped = STOP_END;
            return list;
        }
        if (take_word(&a, "else")) {
            if (take_word(&a, "if")) {
                *stopped = STOP_ELSE_IF;
                *stop_action = a;
            } else {
                *stopped = STOP_ELSE;
            }
            return list;
        }
        if (take_word(&a, "if"))
            n = parse_block(ps, N_IF, &a);
        else if (take_word(&a, "range"))
            n = parse_block(ps, N_RANGE, &a);
        else if (take_word(&a, "with"))
            n = parse_block(ps, N_WITH, &a);
        else if ((n = new_node(ps, N_PRINT)) && parse_pipeline(ps, &a, &n->pipe, &n->n_pipe, 0) < 0)
            goto fail;
        if (!n || push(&list->kids, &list->n_kids, n) < 0) {
            perr(ps, "out of memory");
            goto fail;
        }
        n = NULL;
    }
    return list;

fail:
    node_free(n);
    node_free(list);
    return NULL;
}

static struct node *parse(const char *tmpl, char *err, size_t errlen)
{
    struct parser ps = { .p = tmpl, .err = err, .errlen = errlen };
    struct action rest;
    enum stop st;
    struct node *root = parse_list(&ps, &st, &rest);

    if (root && st != STOP_EOF) {
        perr(&ps, "unexpected {{%s}}", st == STOP_END ? "end" : "else");
        node_free(root);
        return NULL;
    }
    return root;
}

/* ---- execution ---- */

struct var {
    const char *name;
    json_t *value;
};

struct exec {
    FILE *out;
    json_t *pool; /* every value made while running, released at the end */
    struct var vars[32];
    size_t n_vars;
    char *err;
    size_t errlen;
    int failed;
};

static void xerr(struct exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xerr(struct exec *x, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(x->err, x->errlen, &x->failed, fmt, ap);
    va_end(ap);
}

/* A value made here: kept in the pool, so the caller borrows it. */
static json_t *made(struct exec *x, json_t *v)
{
    if (!v) {
        xerr(x, "out of memory");
        return NULL;
    }
    json_array_append_new(x->pool, v);
    return v;
}

/* A field that is not there: distinct from JSON's null (which prints <nil>). */
static json_t no_value_sentinel;
#define NO_VALUE (&no_value_sentinel)

static json_t *field_of(struct exec *x, json_t *v, char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v == NO_VALUE || json_is_null(v))
            return NO_VALUE;
        if (!json_is_object(v)) {
            xerr(x, "can't evaluate field %s in a %s", fields[i],
                 json_is_array(v) ? "list" : "value that is not an object");
            return NULL;
        }
        v = json_object_get(v, fields[i]);
        if (!v)
            return NO_VALUE;
    }
    return v;
}

static int truth(json_t *v)
{
    if (!v || v == NO_VALUE)
        return 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_TRUE:
        return 1;
    default:
        return 0;
    }
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Go's %v of the value the docker CLI decodes from the JSON. */
static void print_value(FILE *f, json_t *v)
{
    if (v == NO_VALUE) {
        fputs("<no value>", f);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        fwrite(json_string_value(v), 1, json_string_length(v), f);
        break;
    case JSON_INTEGER:
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e15)
            fprintf(f, "%.0f", d);
        else
            fprintf(f, "%g", d);
        break;
    }
    case JSON_TRUE:
        fputs("true", f);
        break;
    case JSON_FALSE:
        fputs("false", f);
        break;
    case JSON_NULL:
        fputs("<nil>", f);
        break;
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        fputc('[', f);
        json_array_foreach (v, i, e) {
            if (i)
                fputc(' ', f);
            print_value(f, e);
        }
        fputc(']', f);
        break;
    }
    case JSON_OBJECT: {
        /* Go prints a map's keys sorted. */
        size_t n = json_object_size(v), k = 0;
        const char **keys = calloc(n ? n : 1, sizeof(*keys));
        const char *key;
        json_t *e;
        if (!keys)
            break;
        json_object_foreach (v, key, e)
            keys[k++] = key;
        qsort(keys, n, sizeof(*keys), cmp_keys);
        fputs("map[", f);
        for (k = 0; k < n; k++) {
            fprintf(f, "%s%s:", k ? " " : "", keys[k]);
            print_value(f, json_object_get(v, keys[k]));
        }
        fputc(']', f);
        free(keys);
        break;
    }
    }
}

/* @v printed (print_value) as a new string value. */
static json_t *as_string(struct exec *x, json_t *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t *s;

    if (!f) {
        xerr(x, "out of memory");
        return NULL;
    }
    print_value(f, v);
    fclose(f);
    s = made(x, json_stringn_nocheck(buf ? buf : "", len));
    free(buf);
    return s;
}

static int is_number(json_t *v)
{
    return v && v != NO_VALUE && json_is_number(v);
}

/* <0, 0, >0 for numbers or strings; *ok 0 when they can't be compared. */
static int compare(json_t *a, json_t *b, int *ok)
{
    *ok = 1;
    if (is_number(a) && is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (a != NO_VALUE && b != NO_VALUE && json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    if (a != NO_VALUE && b != NO_VALUE && json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) - json_is_true(b);
    if ((a == NO_VALUE || json_is_null(a)) && (b == NO_VALUE || json_is_null(b)))
        return 0;
    *ok = 0;
    return 1;
}

static json_t *eval_pipe(struct exec *x, struct expr **pipe, size_t n, json_t *dot);
static json_t *eval_operand(struct exec *x, struct expr *e, json_t *dot);

/* printf's verbs that docker's formats use: %s %v %d %q %%. */
static json_t *fn_printf(struct exec *x, json_t **v, size_t n)
{
    char *buf = NULL;
    size_t len = 0, next = 1;
    FILE *f;
    json_t *s;

    if (n < 1 || v[0] == NO_VALUE || !json_is_string(v[0])) {
        xerr(x, "printf wants a format string");
        return NULL;
    }
    if (!(f = open_memstream(&buf, &len))) {
        xerr(x, "out of memory");
        return NULL;
    }
    for (const char *p = json_string_value(v[0]); *p; p++) {
        if (*p != '%' || !p[1]) {
            fputc(*p, f);
            continue;
        }
        p++;
        if (*p == '%') {
            fputc('%', f);
        } else if (next >= n) {
            fprintf(f, "%%!%c(MISSING)", *p);
        } else if (*p == 'q' && v[next] != NO_VALUE && json_is_string(v[next])) {
            char *q = json_dumps(v[next++], JSON_ENCODE_ANY);
            fputs(q ? q : "\"\"", f);
            free(q);
        } else if (*p == 'd' && !is_number(v[next])) {
            fputs("%!d(", f);
            print_value(f, v[next++]);
            fputc(')', f);
        } else if (*p == 's' || *p == 'v' || *p == 'd' || *p == 'q') {
            print_value(f, v[next++]);
        } else {
            fprintf(f, "%%!%c(unsupported)", *p);
        }
    }
    fclose(f);
    s = made(x, json_stringn_nocheck(buf ? buf : "", len));
    free(buf);
    return s;
}

static json_t *call(struct exec *x, struct expr *e, json_t *dot, json_t *piped)
{
    json_t *v[16];
    size_t n = 0;
    const char *f = e->name;

    if (e->n_args + (piped ? 1 : 0) > 16) {
        xerr(x, "%s: too many arguments", f);
        return NULL;
    }
    for (size_t i = 0; i < e->n_args; i++)
        if (!(v[n++] = eval_operand(x, e->args[i], dot)))
            return NULL;
    if (piped)
        v[n++] = piped;

    if (!strcmp(f, "json")) {
        char *text;
        json_t *s;
        if (n != 1) {
            xerr(x, "json wants one argument");
            return NULL;
        }
        text = v[0] == NO_VALUE ? strdup("null") : json_dumps(v[0], JSON_COMPACT | JSON_ENCODE_ANY);
        s = text ? made(x, json_string_nocheck(text)) : NULL;
        if (!text)
            xerr(x, "out of memory");
        free(text);
        return s;
    }
    if (!strcmp(f, "index")) {
        json_t *c;
        if (n < 2) {
            xerr(x, "index wants a collection and at least one key");
            return NULL;
        }
        c = v[0];
        for (size_t i = 1; i < n; i++) {
            if (c == NO_VALUE || json_is_null(c))
                return NO_VALUE;
            if (json_is_object(c)) {
                if (v[i] == NO_VALUE || !json_is_string(v[i])) {
                    xerr(x, "index of an object wants a string key");
                    return NULL;
                }
                c = json_object_get(c, json_string_value(v[i]));
                if (!c)
                    return NO_VALUE;
            } else if (json_is_array(c)) {
                json_int_t k;
                if (!is_number(v[i])) {
                    xerr(x, "index of a list wants a number");
                    return NULL;
                }
                k = (json_int_t)json_number_value(v[i]);
                if (k < 0 || (size_t)k >= json_array_size(c)) {
                    xerr(x, "index out of range: %" JSON_INTEGER_FORMAT, k);
                    return NULL;
                }
                c = json_array_get(c, (size_t)k);
            } else {
                xerr(x, "can't index a value that is not a list or an object");
                return NULL;
            }
        }
        return c;
    }
    if (!strcmp(f, "len")) {
        json_int_t len;
        if (n != 1 || v[0] == NO_VALUE) {
            xerr(x, "len of nothing");
            return NULL;
        }
        if (json_is_string(v[0]))
            len = (json_int_t)json_string_length(v[0]);
        else if (json_is_array(v[0]))
            len = (json_int_t)json_array_size(v[0]);
        else if (json_is_object(v[0]))
            len = (json_int_t)json_object_size(v[0]);
        else {
            xerr(x, "len of a value that is not a string, a list or an object");
            return NULL;
        }
        return made(x, json_integer(len));
    }
    if (!strcmp(f, "upper") || !strcmp(f, "lower")) {
        json_t *s;
        char *t;
        if (n != 1 || !(s = as_string(x, v[0])))
            return n != 1 ? (xerr(x, "%s wants one argument", f), NULL) : NULL;
        t = (char *)json_string_value(s);
        for (; *t; t++)
            *t = (char)(f[0] == 'u' ? toupper((unsigned char)*t) : tolower((unsigned char)*t));
        return s;
    }
    if (!strcmp(f, "join")) {
        char *buf = NULL;
        size_t len = 0, i;
        json_t *e2, *s;
        FILE *o;
        if (n != 2 || v[0] == NO_VALUE || !json_is_array(v[0]) || v[1] == NO_VALUE ||
            !json_is_string(v[1])) {
            xerr(x, "join wants a list and a separator");
            return NULL;
        }
        if (!(o = open_memstream(&buf, &len))) {
            xerr(x, "out of memory");
            return NULL;
        }
        json_array_foreach (v[0], i, e2) {
            if (i)
                fputs(json_string_value(v[1]), o);
            print_value(o, e2);
        }
        fclose(o);
        s = made(x, json_stringn_nocheck(buf ? buf : "", len));
        free(buf);
        return s;
    }
    if (!strcmp(f, "split")) {
        json_t *arr, *s;
        const char *p, *sep, *hit;
        size_t sl;
        if (n != 2 || !(s = as_string(x, v[0])) || v[1] == NO_VALUE || !json_is_string(v[1])) {
            xerr(x, "split wants a string and a separator");
            return NULL;
        }
        if (!(arr = made(x, json_array())))
            return NULL;
        p = json_string_value(s), sep = json_string_value(v[1]), sl = strlen(sep);
        while (sl && (hit = strstr(p, sep))) {
            json_array_append_new(arr, json_stringn_nocheck(p, (size_t)(hit - p)));
            p = hit + sl;
        }
        json_array_append_new(arr, json_string_nocheck(p));
        return arr;
    }
    if (!strcmp(f, "print") || !strcmp(f, "println")) {
        char *buf = NULL;
        size_t len = 0;
        json_t *s;
        FILE *o = open_memstream(&buf, &len);
        if (!o) {
            xerr(x, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            /* Sprint puts a space between operands when neither is a string; Sprintln always. */
            int str = v[i] != NO_VALUE && json_is_string(v[i]);
            int prev = i && v[i - 1] != NO_VALUE && json_is_string(v[i - 1]);
            if (i && (f[5] == 'l' || (!str && !prev)))
                fputc(' ', o);
            print_value(o, v[i]);
        }
        if (f[5] == 'l')
            fputc('\n', o);
        fclose(o);
        s = made(x, json_stringn_nocheck(buf ? buf : "", len));
        free(buf);
        return s;
    }
    if (!strcmp(f, "printf"))
        return fn_printf(x, v, n);
    if (!strcmp(f, "not")) {
        if (n != 1) {
            xerr(x, "not wants one argument");
            return NULL;
        }
        return made(x, json_boolean(!truth(v[0])));
    }
    if (!strcmp(f, "and") || !strcmp(f, "or")) {
        if (n < 1) {
            xerr(x, "%s wants arguments", f);
            return NULL;
        }
        for (size_t i = 0; i + 1 < n; i++)
            if (truth(v[i]) == (f[0] == 'o'))
                return v[i];
        return v[n - 1];
    }
    if (!strcmp(f, "eq")) {
        int ok;
        if (n < 2) {
            xerr(x, "eq wants two arguments or more");
            return NULL;
        }
        for (size_t i = 1; i < n; i++)
            if (compare(v[0], v[i], &ok) == 0 && ok)
                return made(x, json_true());
        return made(x, json_false());
    }
    {
        /* ne lt le gt ge */
        int ok, c;
        if (n != 2) {
            xerr(x, "%s wants two arguments", f);
            return NULL;
        }
        c = compare(v[0], v[1], &ok);
        if (!ok && strcmp(f, "ne") != 0) {
            xerr(x, "%s: incompatible values", f);
            return NULL;
        }
        if (!strcmp(f, "ne"))
            return made(x, json_boolean(!ok || c != 0));
        if (!strcmp(f, "lt"))
            return made(x, json_boolean(c < 0));
        if (!strcmp(f, "le"))
            return made(x, json_boolean(c <= 0));
        if (!strcmp(f, "gt"))
            return made(x, json_boolean(c > 0));
        return made(x, json_boolean(c >= 0));
    }
}

static json_t *var_get(struct exec *x, const char *name)
{
    for (size_t i = x->n_vars; i-- > 0;)
        if (!strcmp(x->vars[i].name, name))
            return x->vars[i].value;
    return NULL;
}

static json_t *eval_operand(struct exec *x, struct expr *e, json_t *dot)
{
    json_t *v;

    switch (e->kind) {
    case E_DOT:
        return field_of(x, dot, e->fields, e->n_fields);
    case E_VAR:
        if (!(v = var_get(x, e->name))) {
            xerr(x, "undefined variable \"$%s\"", e->name);
            return NULL;
        }
        return field_of(x, v, e->fields, e->n_fields);
    case E_STRING:
        return made(x, json_string_nocheck(e->name));
    case E_NUMBER:
        return made(x, e->num == floor(e->num) && fabs(e->num) < 9e15
                           ? json_integer((json_int_t)e->num)
                           : json_real(e->num));
    case E_BOOL:
        return made(x, json_boolean(e->num != 0));
    case E_PAREN:
        if (!(v = eval_pipe(x, e->args, e->n_args, dot)))
            return NULL;
        return field_of(x, v, e->fields, e->n_fields);
    case E_CALL:
        return call(x, e, dot, NULL);
    }
    return NULL;
}

static json_t *eval_pipe(struct exec *x, struct expr **pipe, size_t n, json_t *dot)
{
    json_t *v = NULL;

    for (size_t i = 0; i < n; i++) {
        if (i && pipe[i]->kind != E_CALL) {
            xerr(x, "can't pipe a value into something that is not a function");
            return NULL;
        }
        v = pipe[i]->kind == E_CALL ? call(x, pipe[i], dot, i ? v : NULL)
                                    : eval_operand(x, pipe[i], dot);
        if (!v)
            return NULL;
    }
    return v;
}

static int run(struct exec *x, struct node *n, json_t *dot);

static int push_var(struct exec *x, const char *name, json_t *value)
{
    if (x->n_vars >= sizeof(x->vars) / sizeof(x->vars[0])) {
        xerr(x, "too many variables");
        return -1;
    }
    x->vars[x->n_vars].name = name;
    x->vars[x->n_vars++].value = value;
    return 0;
}

static int run_range(struct exec *x, struct node *n, json_t *v)
{
    size_t base = x->n_vars, i, k = 0;
    json_t *e;

    if (!truth(v))
        return n->alt ? run(x, n->alt, v) : 0;
    if (json_is_array(v)) {
        json_array_foreach (v, i, e) {
            x->n_vars = base;
            if ((n->key_var && push_var(x, n->key_var, made(x, json_integer((json_int_t)i))) < 0) ||
                (n->val_var && push_var(x, n->val_var, e) < 0) || run(x, n->body, e) < 0)
                return -1;
        }
    } else if (json_is_object(v)) {
        /* In key order, as Go ranges over a map. */
        size_t cnt = json_object_size(v);
        const char **keys = calloc(cnt, sizeof(*keys));
        const char *key;
        if (!keys) {
            xerr(x, "out of memory");
            return -1;
        }
        json_object_foreach (v, key, e)
            keys[k++] = key;
        qsort(keys, cnt, sizeof(*keys), cmp_keys);
        for (k = 0; k < cnt; k++) {
            e = json_object_get(v, keys[k]);
            x->n_vars = base;
            if ((n->key_var &&
                 push_var(x, n->key_var, made(x, json_string_nocheck(keys[k]))) < 0) ||
                (n->val_var && push_var(x, n->val_var, e) < 0) || run(x, n->body, e) < 0) {
                free(keys);
                return -1;
            }
        }
        free(keys);
    } else {
        xerr(x, "range can't iterate over a value that is not a list or an object");
        return -1;
    }
    x->n_vars = base;
    return 0;
}

static int run(struct exec *x, struct node *n, json_t *dot)
{
    json_t *v;

    switch (n->kind) {
    case N_TEXT:
        fputs(n->text, x->out);
        return 0;
    case N_LIST:
        for (size_t i = 0; i < n->n_kids; i++)
            if (run(x, n->kids[i], dot) < 0)
                return -1;
        return 0;
    case N_PRINT:
        if (!(v = eval_pipe(x, n->pipe, n->n_pipe, dot)))
            return -1;
        print_value(x->out, v);
        return 0;
    case N_IF:
    case N_WITH:
        if (!(v = eval_pipe(x, n->pipe, n->n_pipe, dot)))
            return -1;
        if (truth(v))
            return run(x, n->body, n->kind == N_WITH ? v : dot);
        return n->alt ? run(x, n->alt, dot) : 0;
    case N_RANGE:
        if (!(v = eval_pipe(x, n->pipe, n->n_pipe, dot)))
            return -1;
        return run_range(x, n, v);
    }
    return 0;
}

int cli_template_check(const char *tmpl, char *err, size_t errlen)
{
    struct node *root = parse(tmpl, err, errlen);
    node_free(root);
    return root ? 0 : -1;
}

char *cli_template_render(const char *tmpl, json_t *data, char *err, size_t errlen)
{
    struct exec x = { .err = err, .errlen = errlen };
    struct node *root = parse(tmpl, err, errlen);
    char *buf = NULL;
    size_t len = 0;
    int r;

    if (!root)
        return NULL;
    x.pool = json_array();
    x.out = open_memstream(&buf, &len);
    if (!x.pool || !x.out) {
        snprintf(err, errlen, "template: out of memory");
        r = -1;
    } else {
        push_var(&x, "", data);
        r = run(&x, root, data);
    }
    if (x.out)
        fclose(x.out);
    json_decref(x.pool);
    node_free(root);
    if (r < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
