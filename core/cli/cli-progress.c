/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pull and load progress as the docker CLI renders its JSON-message stream
 * (see cli.h). On a terminal every layer keeps one line, redrawn in place
 * with cursor movements; a line without a layer id ends that group, so
 * the next layers start below it. Off a terminal only status changes are
 * printed, and not the per-byte ones, so logs stay short.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Redraw a layer's byte counts at most this often (a status change always redraws). */
#define REDRAW_NS (100 * 1000000ll)
/* A rate needs this much history before it means anything. */
#define RATE_MIN_NS (500 * 1000000ll)

struct progress_line {
    char id[16];
    char status[64];
    int64_t status_ns; /* when the status began, and the bytes then: the rate's base */
    int64_t status_bytes;
    int64_t drawn_ns;
};

struct cli_progress {
    FILE *out;
    int tty;
    /*
     * On a terminal: the layers on screen, top to bottom, the cursor on the
     * line below the last. Otherwise: every layer's last status printed.
     */
    struct progress_line *lines;
    size_t n, cap;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

struct cli_progress *cli_progress_new(FILE *out)
{
    struct cli_progress *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->out = out;
    p->tty = isatty(fileno(out));
    return p;
}

void cli_progress_free(struct cli_progress *p)
{
    if (!p)
        return;
    fflush(p->out);
    free(p->lines);
    free(p);
}

/* The statuses whose events count bytes: docker shows them only on a terminal. */
static int counts_bytes(const char *status)
{
    return strcmp(status, "Downloading") == 0 || strcmp(status, "Extracting") == 0 ||
           strcmp(status, "Loading layer") == 0;
}

static struct progress_line *find_line(struct cli_progress *p, const char *id, size_t *ret_idx)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->lines[i].id, id) == 0) {
            *ret_idx = i;
            return &p->lines[i];
        }
    }
    return NULL;
}

static struct progress_line *add_line(struct cli_progress *p, const char *id, size_t *ret_idx)
{
    struct progress_line *l;

    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        struct progress_line *lines = realloc(p->lines, cap * sizeof(*lines));
        if (!lines)
            return NULL;
        p->lines = lines;
        p->cap = cap;
    }
    l = &p->lines[p->n];
    memset(l, 0, sizeof(*l));
    snprintf(l->id, sizeof(l->id), "%s", id);
    *ret_idx = p->n++;
    return l;
}

static int terminal_columns(FILE *out)
{
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* "3.1MB/s": a rate needs no more than two or three digits, and never an exponent. */
static void rate_text(double bps, char *buf, size_t len)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
    size_t i = 0;

    /* 999.96kB rounds to 1000: show it as 1.0MB instead. */
    while (bps >= 999.95 && i + 1 < sizeof(units) / sizeof(units[0])) {
        bps /= 1000.0;
        i++;
    }
    snprintf(buf, len, bps < 9.995 ? "%.1f%s/s" : "%.0f%s/s", bps, units[i]);
}

/* "<id>: Downloading [=====>     ]  1.2MB/4.5MB  3.1MB/s", cut to the terminal's width. */
static void render(const struct progress_line *l, const berth_progress_t *ev, int64_t now, int cols,
                   char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%s: %s", l->id, l->status);

    if (n < len && counts_bytes(l->status) && ev->current >= 0) {
        char cur[32], total[32], rate[32] = "";
        int barw = cols > 110 ? 50 : cols > 80 ? 25 : 0;

        cli_human_size(ev->current, 4, cur, sizeof(cur));
        if (ev->total > 0 && barw > 0) {
            int64_t filled = ev->current >= ev->total ? barw : ev->current * barw / ev->total;
            n += (size_t)snprintf(buf + n, len - n, " [%.*s>%*s]", (int)filled,
                                  "=================================================="
                                  "==================================================",
                                  (int)(barw - filled), "");
        }
        if (n < len && ev->total > 0 && ev->current <= ev->total) {
            cli_human_size(ev->total, 4, total, sizeof(total));
            n += (size_t)snprintf(buf + n, len - n, " %8s/%s", cur, total);
        } else if (n < len) {
            n += (size_t)snprintf(buf + n, len - n, " %8s", cur);
        }
        if (now - l->status_ns >= RATE_MIN_NS && ev->current > l->status_bytes &&
            (ev->total <= 0 || ev->current < ev->total)) {
            double secs = (double)(now - l->status_ns) / 1e9;
            rate_text((double)(ev->current - l->status_bytes) / secs, rate, sizeof(rate));
            if (n < len)
                snprintf(buf + n, len - n, "  %s", rate);
        }
    }
    /* A wrapped line would throw the cursor arithmetic off. */
    if (cols > 1 && strlen(buf) >= (size_t)cols)
        buf[cols - 1] = '\0';
}

static void event_plain(struct cli_progress *p, const berth_progress_t *ev)
{
    struct progress_line *l;
    size_t idx;

    l = find_line(p, ev->id, &idx);
    if (l && strcmp(l->status, ev->status) == 0)
        return;
    if (!l)
        l = add_line(p, ev->id, &idx);
    if (l)
        snprintf(l->status, sizeof(l->status), "%s", ev->status);
    if (counts_bytes(ev->status))
        return;
    fprintf(p->out, "%s: %s\n", ev->id, ev->status);
    fflush(p->out);
}

static void event_tty(struct cli_progress *p, const berth_progress_t *ev)
{
    int64_t now = mono_ns();
    struct progress_line *l;
    char text[512];
    size_t idx, up;
    int fresh = 0, changed;

    l = find_line(p, ev->id, &idx);
    if (!l) {
        l = add_line(p, ev->id, &idx);
        if (!l) {
            /* Out of memory: print it plainly and start a new group below it. */
            fprintf(p->out, "%s: %s\n", ev->id, ev->status);
            p->n = 0;
            return;
        }
        /* A new layer gets a new line at the bottom. */
        fputc('\n', p->out);
        fresh = 1;
    }
    changed = strcmp(l->status, ev->status) != 0;
    if (changed) {
        snprintf(l->status, sizeof(l->status), "%s", ev->status);
        l->status_ns = now;
        l->status_bytes = ev->current > 0 ? ev->current : 0;
    }
    if (!fresh && !changed && now - l->drawn_ns < REDRAW_NS &&
        !(ev->total > 0 && ev->current >= ev->total))
        return;
    l->drawn_ns = now;
    render(l, ev, now, terminal_columns(p->out), text, sizeof(text));
    up = p->n - idx;
    /* Up to the layer's line, clear it, write, and back down below the last line. */
    fprintf(p->out, "\x1b[%zuA\x1b[2K\r%s\r\x1b[%zuB", up, text, up);
    fflush(p->out);
}

void cli_progress_event(void *userdata, const berth_progress_t *ev)
{
    struct cli_progress *p = userdata;

    if (!ev->status)
        return;
    if (!ev->id || !*ev->id) {
        fprintf(p->out, "%s\n", ev->status);
        fflush(p->out);
        /* As docker: the layers above are done with; new ones start below this line. */
        if (p->tty)
            p->n = 0;
        return;
    }
    if (p->tty)
        event_tty(p, ev);
    else
        event_plain(p, ev);
}

int cli_pull(berth_engine_t *e, const char *name, const char *platform, const char *auth_json,
             FILE *out, uint32_t flags, char ret_id[72])
{
    berth_image_opts_t opts = { .platform = platform, .auth_json = auth_json };
    struct cli_progress *p = NULL;
    berth_err_t err = { 0 };
    char id[72];
    int tagged = 1, r;

    if ((flags & CLI_PULL_F_DEFAULT_TAG) && cli_image_names(name, NULL, 0, NULL, 0, &tagged) == 0 &&
        !tagged) {
        fprintf(out, "Using default tag: latest\n");
        fflush(out);
    }
    if (!(flags & CLI_PULL_F_QUIET)) {
        p = cli_progress_new(out);
        if (!p) {
            cli_error("pull %s: out of memory", name);
            return -ENOMEM;
        }
        opts.progress = cli_progress_event;
        opts.progress_userdata = p;
    }
    r = berth_image_pull(e, name, &opts, id, &err);
    cli_progress_free(p);
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return r;
    }
    if (ret_id)
        memcpy(ret_id, id, sizeof(id));
    return 0;
}
