/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container logs in Docker's json-file format: one JSON object per line,
 *   {"log":"<text incl. \n>","stream":"stdout"|"stderr","time":"<RFC3339Nano UTC>"}
 * with size-capped rotation (<path>, <path>.1, ... <path>.<max_files-1>), so
 * `docker logs` tooling reads berth's files unchanged.
 *
 * Output is split on newlines; a partial line is kept per stream until its
 * newline arrives, it reaches BERTH_LOG_PARTIAL_MAX bytes, or the stream ends
 * (berth__log_flush). Bytes that are not valid UTF-8 become U+FFFD, as
 * Docker's encoder does.
 */
#ifndef BERTH_SHIM_LOG_H
#define BERTH_SHIM_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

#define BERTH_LOG_PARTIAL_MAX     (16 * 1024)
#define BERTH_LOG_DEFAULT_MAXSIZE (10 * 1024 * 1024)
#define BERTH_LOG_DEFAULT_MAXFILE 3

typedef struct berth_log {
    int fd;
    char *path;
    uint64_t size;      /* bytes in the current file */
    uint64_t max_size;  /* rotate before a line would pass it; 0: never */
    unsigned max_files; /* files kept, the current one included (>= 1) */
    /* Pending partial line per stream (0 stdout, 1 stderr); allocated on first use. */
    char *part[2];
    size_t part_len[2];
} berth_log_t;

/*
 * Docker's log-opts from HostConfig.LogConfig.Config (may be NULL):
 * "max-size" ("10m", "512k", "1g"; "-1": unlimited) and "max-file" (>= 1).
 * Defaults: BERTH_LOG_DEFAULT_MAXSIZE, BERTH_LOG_DEFAULT_MAXFILE.
 */
int berth__log_parse_opts(json_t *config, uint64_t *ret_max_size, unsigned *ret_max_files,
                          berth_err_t *err);

/* Open (append, create 0640) @path. */
int berth__log_open(berth_log_t *log, const char *path, uint64_t max_size, unsigned max_files,
                    berth_err_t *err);

/* Append output of stream @stream (1 stdout, 2 stderr) read at @now_ns. */
int berth__log_write(berth_log_t *log, int stream, const char *data, size_t len, int64_t now_ns,
                     berth_err_t *err);

/* Write out the pending partial line of @stream (the stream ended). */
int berth__log_flush(berth_log_t *log, int stream, int64_t now_ns, berth_err_t *err);

/* Flush nothing, close the file, free buffers. Safe on a zeroed or closed log. */
void berth__log_close(berth_log_t *log);

#endif /* BERTH_SHIM_LOG_H */
