/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading container logs (berth_container_logs). The monitor writes them in
 * Docker's json-file format under <root>/containers/<id>/: <id>-json.log,
 * rotated to <id>-json.log.1, .2, ... (oldest last). Reading needs no
 * monitor: logs of exited containers stay readable until the container is
 * removed, and a follower survives the monitor's rotation by noticing the
 * file's inode change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <berth/engine.h>

#include "containers.h"
#include "engine-internal.h"
#include "lifecycle.h"
#include "util.h"

/* The most rotated files a reader looks for; the monitor keeps fewer. */
#define MAX_ROTATED 16

/* RFC 3339 UTC with optional fraction ("2026-11-28T00:38:03.634379753Z") to ns. */
static int64_t parse_time(const char *s)
{
    struct tm tm = { 0 };
    const char *p;
    int64_t frac = 0, scale = 1000000000;

    if (!s)
        return 0;
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    return (int64_t)timegm(&tm) * 1000000000 + frac;
}

struct reader {
    berth_log_line_fn fn;
    void *userdata;
};

/* One json-file line to the callback; malformed lines (a torn write) are skipped. */
static int emit(struct reader *rd, const char *line)
{
    json_error_t jerr;
    _cleanup_json_ json_t *o = json_loads(line, 0, &jerr);
    const char *text, *stream;

    if (!o)
        return 0;
    text = json_string_value(json_object_get(o, "log"));
    stream = json_string_value(json_object_get(o, "stream"));
    if (!text || !stream)
        return 0;
    return rd->fn(rd->userdata, strcmp(stream, "stderr") == 0 ? 2 : 1,
                  parse_time(json_string_value(json_object_get(o, "time"))), text,
                  json_string_length(json_object_get(o, "log")));
}

/* Count complete lines in a file. */
static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/*
 * Emit the complete lines of @f from *pos on, skipping the first *skip
 * (decremented as they pass). Leaves *pos after the last complete line read:
 * a trailing partial line (the writer is mid-line) is read again next time.
 */
static int emit_stream(struct reader *rd, FILE *f, off_t *pos, long *skip)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = 0;

    clearerr(f);
    if (fseeko(f, *pos, SEEK_SET) < 0)
        return -errno;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break;
        *pos += n;
        if (*skip > 0) {
            (*skip)--;
            continue;
        }
        if ((r = emit(rd, line)) != 0)
            break;
    }
    free(line);
    return r;
}

/*
 * A reader holds the live file open rather than its name: when the monitor
 * rotates (renames <id>-json.log to .1 and starts a new file), the reader
 * drains the renamed file through its descriptor before moving to the new
 * one, so nothing written around the rotation is lost. (Two rotations
 * between two reads would skip the middle file; a reader that keeps up, as
 * a follower does, never sees that.)
 */
struct berth_log_reader {
    char dir[4096];
    char live[4200];
    int n_rotated; /* rotated files still to read, oldest (highest number) first */
    long skip;     /* entries still to pass over for a tail */
    FILE *f;       /* the live file as it was when opened */
    ino_t ino;
    off_t pos;
};

BERTH_API int berth_log_reader_open(berth_engine_t *e, const char *ref, int64_t tail,
                                    berth_log_reader_t **ret, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *doc = NULL;
    berth_log_reader_t *rd;
    char path[4300];
    const char *id;
    long total = 0;
    int r;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__container_get(store, ref, &doc, err)) < 0)
        return r;
    if (!(rd = calloc(1, sizeof(*rd))))
        return berth_err_set(err, -ENOMEM, "out of memory");
    id = json_string_value(json_object_get(doc, "id"));
    snprintf(rd->dir, sizeof(rd->dir), "%s/containers/%s", berth__engine_config(e)->root, id);
    snprintf(rd->live, sizeof(rd->live), "%s/%s-json.log", rd->dir, id);
    for (int i = 1; i <= MAX_ROTATED; i++) {
        snprintf(path, sizeof(path), "%s.%d", rd->live, i);
        if (access(path, F_OK) != 0)
            break;
        rd->n_rotated = i;
    }
    /* Open the live file before counting, so the count and the reads see one file. */
    if ((rd->f = fopen(rd->live, "re")) != NULL) {
        struct stat st;
        if (fstat(fileno(rd->f), &st) == 0)
            rd->ino = st.st_ino;
    }
    if (tail >= 0) {
        for (int i = rd->n_rotated; i >= 1; i--) {
            snprintf(path, sizeof(path), "%s.%d", rd->live, i);
            total += count_lines(path);
        }
        total += count_lines(rd->live);
        rd->skip = total > tail ? (long)(total - tail) : 0;
    }
    *ret = rd;
    return 0;
}

/* After the live file is drained: did the monitor start a new one? Switch to it. */
static int follow_rotation(berth_log_reader_t *rd)
{
    struct stat st;
    FILE *f;

    if (stat(rd->live, &st) < 0 || (rd->f && st.st_ino == rd->ino))
        return 0;
    if (!(f = fopen(rd->live, "re")))
        return 0; /* between the rename and the new file: next time */
    if (rd->f)
        fclose(rd->f);
    rd->f = f;
    rd->ino = st.st_ino;
    rd->pos = 0;
    return 1;
}

BERTH_API int berth_log_reader_read(berth_log_reader_t *rd, berth_log_line_fn fn, void *userdata,
                                    berth_err_t *err)
{
    struct reader out = { fn, userdata };
    char path[4300];
    int r;

    /* What was rotated away before the reader opened, oldest first. */
    while (rd->n_rotated > 0) {
        FILE *f;
        off_t pos = 0;
        snprintf(path, sizeof(path), "%s.%d", rd->live, rd->n_rotated);
        rd->n_rotated--;
        if (!(f = fopen(path, "re"))) {
            if (errno == ENOENT)
                continue;
            return berth_err_set(err, -errno, "read %s: %s", path, strerror(errno));
        }
        r = emit_stream(&out, f, &pos, &rd->skip);
        fclose(f);
        if (r != 0)
            return r < 0 ? berth_err_set(err, r, "read %s: %s", path, strerror(-r)) : r;
    }
    do {
        if (rd->f && (r = emit_stream(&out, rd->f, &rd->pos, &rd->skip)) != 0)
            return r < 0 ? berth_err_set(err, r, "read %s: %s", rd->live, strerror(-r)) : r;
    } while (follow_rotation(rd));
    return 0;
}

BERTH_API const char *berth_log_reader_dir(const berth_log_reader_t *rd)
{
    return rd->dir;
}

BERTH_API void berth_log_reader_close(berth_log_reader_t *rd)
{
    if (!rd)
        return;
    if (rd->f)
        fclose(rd->f);
    free(rd);
}

static int still_running(berth_engine_t *e, const char *ref)
{
    _cleanup_json_ json_t *doc = NULL;
    if (berth__container_get(berth__engine_store(e), ref, &doc, NULL) < 0)
        return 0;
    /* A created container has not written yet and may never start: don't wait for it. */
    return (berth__record_state(doc) & (BERTH_ST_RUNNING | BERTH_ST_PAUSED)) != 0;
}

BERTH_API int berth_container_logs(berth_engine_t *e, const char *ref, uint32_t flags, int64_t tail,
                                   berth_log_line_fn fn, void *userdata, berth_err_t *err)
{
    berth_log_reader_t *rd = NULL;
    int r;

    if ((r = berth_log_reader_open(e, ref, tail, &rd, err)) < 0)
        return r;
    for (;;) {
        /* Look before reading, so the last read comes after the exit. */
        int alive = (flags & BERTH_LOGS_FOLLOW) && still_running(e, ref);
        struct timespec ts = { 0, 100 * 1000000 };

        if ((r = berth_log_reader_read(rd, fn, userdata, err)) != 0 || !alive)
            break;
        nanosleep(&ts, NULL);
    }
    berth_log_reader_close(rd);
    return r;
}
