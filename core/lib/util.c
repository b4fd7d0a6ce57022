/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

char **berth__strv_new(void)
{
    return calloc(1, sizeof(char *));
}

size_t berth__strv_len(char *const *strv)
{
    size_t n = 0;
    while (strv && strv[n])
        n++;
    return n;
}

int berth__strv_push(char ***strv, const char *s)
{
    size_t n = berth__strv_len(*strv);
    char *copy = strdup(s);
    char **grown;

    if (!copy)
        return -ENOMEM;
    grown = realloc(*strv, (n + 2) * sizeof(char *));
    if (!grown) {
        free(copy);
        return -ENOMEM;
    }
    grown[n] = copy;
    grown[n + 1] = NULL;
    *strv = grown;
    return 0;
}

int berth__strv_contains(char *const *strv, const char *s)
{
    for (size_t i = 0; strv && strv[i]; i++)
        if (strcmp(strv[i], s) == 0)
            return 1;
    return 0;
}

void berth__strv_free(char **strv)
{
    for (size_t i = 0; strv && strv[i]; i++)
        free(strv[i]);
    free(strv);
}

int berth__mkdir_p(const char *path, unsigned mode, berth_err_t *err)
{
    _cleanup_free_ char *buf = strdup(path);
    struct stat st;

    if (!buf)
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* Walk the components left to right so each parent exists before its child. */
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return berth_err_set(err, -errno, "create directory %s: %s", buf, strerror(errno));
        *p = saved;
        if (saved == '\0')
            break;
    }
    if (stat(path, &st) < 0)
        return berth_err_set(err, -errno, "stat %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return berth_err_set(err, -ENOTDIR, "%s exists and is not a directory", path);
    return 0;
}

int64_t berth__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t berth__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    /* Depth-first: children are gone before their directory. */
    if (remove(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int berth__rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void berth__format_time(int64_t ns, char *buf, size_t len)
{
    time_t sec = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    struct tm tm;
    char digits[16];
    size_t n;

    gmtime_r(&sec, &tm);
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    /* Go's RFC3339Nano drops trailing zeros of the fraction, and the dot with them. */
    snprintf(digits, sizeof(digits), "%09ld", frac);
    for (int i = 8; i >= 0 && digits[i] == '0'; i--)
        digits[i] = '\0';
    snprintf(buf + n, len - n, "%s%sZ", digits[0] ? "." : "", digits);
}
