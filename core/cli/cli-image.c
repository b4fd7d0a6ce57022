/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the image commands share: docker's human sizes and ages, its table
 * layout, image names as docker displays them, and the spool directory
 * behind `load` from stdin and `save` to stdout (see cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"

void cli_human_size(int64_t bytes, int precision, char *buf, size_t len)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB" };
    double v = bytes > 0 ? (double)bytes : 0.0;
    size_t i = 0;

    while (v >= 1000.0 && i + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        i++;
    }
    /* C's %g and Go's agree here, "1e+03kB" for 999999 bytes included. */
    snprintf(buf, len, "%.*g%s", precision, v, units[i]);
}

void cli_created_since(int64_t created, int64_t now, char *buf, size_t len)
{
    char d[64];

    if (created <= 0) {
        snprintf(buf, len, "N/A");
        return;
    }
    berth_human_duration((now > created ? now - created : 0) * 1000000000ll, d, sizeof(d));
    snprintf(buf, len, "%s ago", d);
}

/* Characters in UTF-8 @s: bytes that do not continue a sequence. */
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

void cli_table_init(struct cli_table *t, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
}

int cli_table_add(struct cli_table *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));
        if (!cells)
            return -1;
        t->cells = cells;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        char *v = strdup(row[c] ? row[c] : "");
        if (!v) {
            while (c-- > 0)
                free(t->cells[t->nrows * t->ncols + c]);
            return -1;
        }
        t->cells[t->nrows * t->ncols + c] = v;
    }
    t->nrows++;
    return 0;
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
    enum { MINWIDTH = 10, PADDING = 3 };
    size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof(*width));

    if (!width)
        return;
    for (size_t c = 0; c + 1 < t->ncols; c++) {
        width[c] = MINWIDTH;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = text_width(t->cells[r * t->ncols + c]) + PADDING;
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *v = t->cells[r * t->ncols + c];
            fputs(v, out);
            /* The last column is not padded: no trailing blanks, as tabwriter. */
            if (c + 1 < t->ncols)
                fprintf(out, "%*s", (int)(width[c] - text_width(v)), "");
        }
        fputc('\n', out);
    }
    free(width);
}

void cli_table_release(struct cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

const char *cli_ellipsis(const char *s, size_t max, char *buf, size_t len)
{
    size_t chars = 0;
    const char *p = s;

    if (text_width(s) <= max)
        return s;
    /* Keep max - 1 characters, then the ellipsis. */
    while (*p && chars < max - 1) {
        p++;
        while (((unsigned char)*p & 0xc0) == 0x80)
            p++;
        chars++;
    }
    snprintf(buf, len, "%.*s…", (int)(p - s), s);
    return buf;
}

int cli_image_names(const char *name, char *full, size_t full_len, char *familiar,
                    size_t familiar_len, int *ret_tagged)
{
    char domain[256], path[512], suffix[300];
    const char *at = strchr(name, '@'), *slash, *colon, *rest;
    size_t name_len = at ? (size_t)(at - name) : strlen(name);
    int tagged;

    /* A tag's colon comes after the last '/': "localhost:5000/app" has none. */
    slash = memrchr(name, '/', name_len);
    colon = memrchr(slash ? slash : name, ':', name_len - (size_t)(slash ? slash - name : 0));
    tagged = colon || at;
    if (snprintf(suffix, sizeof(suffix), "%.*s%s%s",
                 colon ? (int)(name_len - (size_t)(colon - name)) : 0, colon ? colon : "",
                 at ? at : "", tagged ? "" : ":latest") >= (int)sizeof(suffix))
        return -1;
    if (colon)
        name_len = (size_t)(colon - name);

    /* Docker's rule: the first component is a registry only if it looks like a host. */
    slash = memchr(name, '/', name_len);
    if (slash &&
        (memchr(name, '.', (size_t)(slash - name)) || memchr(name, ':', (size_t)(slash - name)) ||
         (slash - name == 9 && strncmp(name, "localhost", 9) == 0))) {
        if (snprintf(domain, sizeof(domain), "%.*s", (int)(slash - name), name) >=
            (int)sizeof(domain))
            return -1;
        rest = slash + 1;
    } else {
        snprintf(domain, sizeof(domain), "docker.io");
        rest = name;
    }
    if (strcmp(domain, "index.docker.io") == 0)
        snprintf(domain, sizeof(domain), "docker.io");
    {
        size_t rest_len = name_len - (size_t)(rest - name);
        int official = strcmp(domain, "docker.io") == 0 && !memchr(rest, '/', rest_len);
        if (snprintf(path, sizeof(path), "%s%.*s", official ? "library/" : "", (int)rest_len,
                     rest) >= (int)sizeof(path))
            return -1;
    }
    if (full && snprintf(full, full_len, "%s/%s%s", domain, path, suffix) >= (int)full_len)
        return -1;
    if (familiar) {
        const char *shown = path;
        int n;
        if (strcmp(domain, "docker.io") == 0) {
            if (strncmp(path, "library/", 8) == 0 && !strchr(path + 8, '/'))
                shown = path + 8;
            n = snprintf(familiar, familiar_len, "%s%s", shown, suffix);
        } else {
            n = snprintf(familiar, familiar_len, "%s/%s%s", domain, path, suffix);
        }
        if (n >= (int)familiar_len)
            return -1;
    }
    if (ret_tagged)
        *ret_tagged = tagged;
    return 0;
}

void cli_split_repo_tag(const char *ref, char *repo, size_t repo_len, const char **ret_tag)
{
    const char *slash = strrchr(ref, '/');
    const char *colon = strrchr(slash ? slash : ref, ':');

    snprintf(repo, repo_len, "%.*s", colon ? (int)(colon - ref) : (int)strlen(ref), ref);
    *ret_tag = colon ? colon + 1 : "";
}

/* ---- the spool directory ---- */

/* What the signal handler removes; set only while a spool exists. */
static char spool_path[PATH_MAX];
static int spool_fd = -1;
static volatile sig_atomic_t spool_active;
static const int spool_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
static struct sigaction spool_saved[4];

/* Remove the files in the spool and the spool itself; async-signal-safe. */
static void spool_clear(void)
{
    char buf[4096];
    long n;

    if (spool_fd < 0)
        return;
    /* Removing while listing may skip entries: list again until a pass removes nothing. */
    for (int pass = 0; pass < 16; pass++) {
        int removed = 0;
        lseek(spool_fd, 0, SEEK_SET);
        /* getdents64 rather than readdir: readdir may allocate, which a handler can't. */
        while ((n = syscall(SYS_getdents64, spool_fd, buf, sizeof(buf))) > 0) {
            for (long off = 0; off < n;) {
                /* struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name. */
                unsigned short reclen;
                const char *dname = buf + off + 19;
                memcpy(&reclen, buf + off + 16, sizeof(reclen));
                if (strcmp(dname, ".") != 0 && strcmp(dname, "..") != 0 &&
                    unlinkat(spool_fd, dname, 0) == 0)
                    removed++;
                off += reclen;
            }
        }
        if (!removed)
            break;
    }
    rmdir(spool_path);
}

static void spool_signal(int sig)
{
    if (spool_active)
        spool_clear();
    /* Die of the signal, as without the spool. */
    signal(sig, SIG_DFL);
    raise(sig);
}

static int make_spool(const char *parent, const char *what, char *ret_dir, size_t len)
{
    if (snprintf(ret_dir, len, "%s/%s-XXXXXX", parent, what) >= (int)len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(ret_dir) ? 0 : -1;
}

int cli_spool_create(berth_engine_t *e, const char *what, char *ret_dir, size_t len)
{
    const char *tmpdir = getenv("TMPDIR");
    char parent[PATH_MAX];
    struct sigaction sa;
    int r = -1;

    /* Under the root first: images go there, so that is where the room for them is. */
    if (snprintf(parent, sizeof(parent), "%s/tmp", berth_engine_root(e)) < (int)sizeof(parent) &&
        (mkdir(parent, 0700) == 0 || errno == EEXIST))
        r = make_spool(parent, what, ret_dir, len);
    if (r < 0)
        r = make_spool(tmpdir && *tmpdir ? tmpdir : "/tmp", what, ret_dir, len);
    if (r < 0 || strlen(ret_dir) >= sizeof(spool_path)) {
        cli_error("%s: can't make a spool directory: %s", what, strerror(errno));
        return -1;
    }
    memcpy(spool_path, ret_dir, strlen(ret_dir) + 1);
    spool_fd = open(spool_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool_fd < 0) {
        cli_error("%s: %s: %s", what, spool_path, strerror(errno));
        rmdir(spool_path);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = spool_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(spool_signals) / sizeof(spool_signals[0]); i++)
        sigaddset(&sa.sa_mask, spool_signals[i]);
    spool_active = 1;
    for (size_t i = 0; i < sizeof(spool_signals) / sizeof(spool_signals[0]); i++)
        sigaction(spool_signals[i], &sa, &spool_saved[i]);
    return 0;
}

void cli_spool_remove(void)
{
    if (!spool_active)
        return;
    for (size_t i = 0; i < sizeof(spool_signals) / sizeof(spool_signals[0]); i++)
        sigaction(spool_signals[i], &spool_saved[i], NULL);
    spool_clear();
    spool_active = 0;
    close(spool_fd);
    spool_fd = -1;
}

int cli_copy_fd(int in_fd, int out_fd, int *ret_in)
{
    char buf[65536];

    for (;;) {
        ssize_t n = read(in_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *ret_in = 1;
            return -errno;
        }
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out_fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                *ret_in = 0;
                return -errno;
            }
            off += w;
        }
    }
}
