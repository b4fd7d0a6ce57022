/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Docker json-file logs with rotation (shim-log.h). Lines are encoded by hand
 * rather than through jansson: container output is arbitrary bytes, and
 * jansson refuses invalid UTF-8 where Docker substitutes U+FFFD.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ocispec.h"
#include "shim-log.h"
#include "util.h"

int berth__log_parse_opts(json_t *config, uint64_t *ret_max_size, unsigned *ret_max_files,
                          berth_err_t *err)
{
    const char *size = json_string_value(json_object_get(config, "max-size"));
    const char *files = json_string_value(json_object_get(config, "max-file"));
    uint64_t max_size = BERTH_LOG_DEFAULT_MAXSIZE;
    unsigned max_files = BERTH_LOG_DEFAULT_MAXFILE;
    int r;

    if (size && strcmp(size, "-1") == 0) {
        max_size = 0;
    } else if (size) {
        int64_t b;
        if ((r = berth__parse_bytes(size, &b, err)) < 0)
            return berth_err_prefix(err, r, "log-opt max-size");
        if (b <= 0)
            return berth_err_set(err, -EINVAL, "log-opt max-size must be positive");
        max_size = (uint64_t)b;
    }
    if (files) {
        char *end;
        long n;
        errno = 0;
        n = strtol(files, &end, 10);
        if (errno || end == files || *end || n < 1 || n > 1000)
            return berth_err_set(err, -EINVAL, "log-opt max-file \"%s\" is not a number >= 1",
                                 files);
        max_files = (unsigned)n;
    }
    *ret_max_size = max_size;
    *ret_max_files = max_files;
    return 0;
}

int berth__log_open(berth_log_t *log, const char *path, uint64_t max_size, unsigned max_files,
                    berth_err_t *err)
{
    struct stat st;

    memset(log, 0, sizeof(*log));
    log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (log->fd < 0)
        return berth_err_set(err, -errno, "log %s: %s", path, strerror(errno));
    if (!(log->path = strdup(path))) {
        close(log->fd);
        log->fd = -1;
        return berth_err_set(err, -ENOMEM, "out of memory");
    }
    log->size = fstat(log->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    log->max_size = max_size;
    log->max_files = max_files ? max_files : 1;
    return 0;
}

void berth__log_close(berth_log_t *log)
{
    if (log->fd > 0)
        close(log->fd);
    log->fd = -1;
    free(log->path);
    log->path = NULL;
    for (int i = 0; i < 2; i++) {
        free(log->part[i]);
        log->part[i] = NULL;
        log->part_len[i] = 0;
    }
}

/* Length of the valid UTF-8 sequence at @s (up to @n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        if (s[0] == 0xE0)
            lo = 0xA0; /* overlong */
        if (s[0] == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        if (s[0] == 0xF0)
            lo = 0x90;
        if (s[0] == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static int rotate(berth_log_t *log, berth_err_t *err)
{
    char from[PATH_MAX], to[PATH_MAX];
    int fd;

    if (log->max_files > 1) {
        for (unsigned i = log->max_files - 1; i >= 1; i--) {
            if (i == 1)
                snprintf(from, sizeof(from), "%s", log->path);
            else
                snprintf(from, sizeof(from), "%s.%u", log->path, i - 1);
            snprintf(to, sizeof(to), "%s.%u", log->path, i);
            if (rename(from, to) < 0 && errno != ENOENT)
                return berth_err_set(err, -errno, "rotate %s: %s", from, strerror(errno));
        }
    }
    /* With max-file 1 the file is simply started over, as Docker does. */
    fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return berth_err_set(err, -errno, "log %s: %s", log->path, strerror(errno));
    close(log->fd);
    log->fd = fd;
    log->size = 0;
    return 0;
}

/* Encode and write one log entry holding @len bytes of @data. */
static int write_entry(berth_log_t *log, int stream, const char *data, size_t len, int64_t now_ns,
                       berth_err_t *err)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)data;
    _cleanup_free_ char *out = NULL;
    char ts[64];
    size_t n = 0, i = 0;
    int r;

    berth__format_time(now_ns, ts, sizeof(ts));
    /* Worst case every byte becomes "\ufffd". */
    out = malloc(len * 6 + 128);
    if (!out)
        return berth_err_set(err, -ENOMEM, "out of memory");
    n += (size_t)sprintf(out, "{\"log\":\"");
    while (i < len) {
        unsigned char c = s[i];
        size_t q;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
            i++;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            out[n++] = '\\';
            out[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)sprintf(out + n, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            i++;
        } else if ((q = utf8_seq(s + i, len - i)) > 0) {
            memcpy(out + n, s + i, q);
            n += q;
            i += q;
        } else {
            memcpy(out + n, "\\ufffd", 6);
            n += 6;
            i++;
        }
    }
    n += (size_t)sprintf(out + n, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
                         stream == 2 ? "stderr" : "stdout", ts);

    if (log->max_size && log->size > 0 && log->size + n > log->max_size &&
        (r = rotate(log, err)) < 0)
        return r;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(log->fd, out + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return berth_err_set(err, -errno, "log %s: %s", log->path, strerror(errno));
        off += (size_t)w;
    }
    log->size += n;
    return 0;
}

int berth__log_write(berth_log_t *log, int stream, const char *data, size_t len, int64_t now_ns,
                     berth_err_t *err)
{
    int k = stream == 2 ? 1 : 0;
    int r;

    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) + 1 : len;
        size_t room;

        if (log->part_len[k] == 0 && nl) {
            /* The common case: a whole line, straight from the read buffer. */
            size_t chunk = take;
            if (chunk > BERTH_LOG_PARTIAL_MAX)
                chunk = BERTH_LOG_PARTIAL_MAX;
            if ((r = write_entry(log, stream, data, chunk, now_ns, err)) < 0)
                return r;
            data += chunk;
            len -= chunk;
            continue;
        }
        if (!log->part[k] && !(log->part[k] = malloc(BERTH_LOG_PARTIAL_MAX)))
            return berth_err_set(err, -ENOMEM, "out of memory");
        room = BERTH_LOG_PARTIAL_MAX - log->part_len[k];
        if (take > room)
            take = room;
        memcpy(log->part[k] + log->part_len[k], data, take);
        log->part_len[k] += take;
        data += take;
        len -= take;
        if (log->part[k][log->part_len[k] - 1] == '\n' ||
            log->part_len[k] == BERTH_LOG_PARTIAL_MAX) {
            if ((r = berth__log_flush(log, stream, now_ns, err)) < 0)
                return r;
        }
    }
    return 0;
}

int berth__log_flush(berth_log_t *log, int stream, int64_t now_ns, berth_err_t *err)
{
    int k = stream == 2 ? 1 : 0;
    int r = 0;

    if (log->part_len[k])
        r = write_entry(log, stream, log->part[k], log->part_len[k], now_ns, err);
    log->part_len[k] = 0;
    /* An idle monitor keeps no 16 KiB buffers around. */
    free(log->part[k]);
    log->part[k] = NULL;
    return r;
}
