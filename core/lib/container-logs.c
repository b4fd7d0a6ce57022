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
 * Emit the lines of @path, skipping the first @skip. Leaves *pos at the
 * offset after the last complete line read (a trailing partial line is left
 * for the next pass).
 */
static int emit_file(struct reader *rd, const char *path, long skip, off_t *pos)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = 0;

    if (!f)
        return errno == ENOENT ? 0 : -errno;
    if (pos && *pos > 0 && fseeko(f, *pos, SEEK_SET) < 0) {
        fclose(f);
        return -errno;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* partial: the writer is mid-line */
        if (pos)
            *pos += n;
        if (skip > 0) {
            skip--;
            continue;
        }
        if ((r = emit(rd, line)) != 0)
            break;
    }
    free(line);
    fclose(f);
    return r;
}

static int still_running(berth_engine_t *e, const char *id)
{
    _cleanup_json_ json_t *doc = NULL;
    if (berth__container_get(berth__engine_store(e), id, &doc, NULL) < 0)
        return 0;
    /* A created container has not written yet and may never start: don't wait for it. */
    return (berth__record_state(doc) & (BERTH_ST_RUNNING | BERTH_ST_PAUSED)) != 0;
}

BERTH_API int berth_container_logs(berth_engine_t *e, const char *ref, uint32_t flags, int64_t tail,
                                   berth_log_line_fn fn, void *userdata, berth_err_t *err)
{
    berth_store_t *store = berth__engine_store(e);
    _cleanup_json_ json_t *doc = NULL;
    struct reader rd = { fn, userdata };
    char dir[4096], path[4200], id[BERTH_CONTAINER_ID_LEN + 1];
    long total = 0, skip = 0;
    int newest_rotated = 0, r;
    off_t pos = 0;
    struct stat st;
    ino_t ino = 0;

    if (!store)
        return berth_err_set(err, -ENOTSUP, "the engine was opened without a store");
    if ((r = berth__container_get(store, ref, &doc, err)) < 0)
        return r;
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(doc, "id")));
    snprintf(dir, sizeof(dir), "%s/containers/%s", berth__engine_config(e)->root, id);

    /* Oldest first: the highest-numbered rotated file, down to the live one. */
    for (int i = 1; i <= MAX_ROTATED; i++) {
        snprintf(path, sizeof(path), "%s/%s-json.log.%d", dir, id, i);
        if (access(path, F_OK) != 0)
            break;
        newest_rotated = i;
    }
    if (tail >= 0) {
        for (int i = newest_rotated; i >= 0; i--) {
            if (i)
                snprintf(path, sizeof(path), "%s/%s-json.log.%d", dir, id, i);
            else
                snprintf(path, sizeof(path), "%s/%s-json.log", dir, id);
            total += count_lines(path);
        }
        skip = total > tail ? (long)(total - tail) : 0;
    }
    for (int i = newest_rotated; i >= 1; i--) {
        long lines;
        snprintf(path, sizeof(path), "%s/%s-json.log.%d", dir, id, i);
        lines = count_lines(path);
        if (skip >= lines) {
            skip -= lines;
            continue;
        }
        if ((r = emit_file(&rd, path, skip, NULL)) != 0)
            return r < 0 ? berth_err_set(err, r, "read %s: %s", path, strerror(-r)) : r;
        skip = 0;
    }
    snprintf(path, sizeof(path), "%s/%s-json.log", dir, id);
    if (stat(path, &st) == 0)
        ino = st.st_ino;
    if ((r = emit_file(&rd, path, skip, &pos)) != 0)
        return r < 0 ? berth_err_set(err, r, "read %s: %s", path, strerror(-r)) : r;
    if (!(flags & BERTH_LOGS_FOLLOW))
        return 0;

    /* Follow: poll for growth while the container can still write. */
    for (;;) {
        struct timespec ts = { 0, 100 * 1000000 };
        int alive = still_running(e, id);

        if (stat(path, &st) == 0 && st.st_ino != ino) {
            /* Rotated: finish nothing more from the old file's tail here
             * (it is now .1 and was read up to pos), start the new one. */
            ino = st.st_ino;
            pos = 0;
        }
        if ((r = emit_file(&rd, path, 0, &pos)) != 0)
            return r < 0 ? berth_err_set(err, r, "read %s: %s", path, strerror(-r)) : r;
        if (!alive)
            return 0;
        nanosleep(&ts, NULL);
    }
}
