/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by libberth's modules: scope cleanup (systemd's
 * _cleanup_ idiom), string vectors and directory creation. Internal: nothing
 * here is exported from libberth.
 */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/types.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Hand a pointer out of a _cleanup_ scope: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _p_ = (p);                                                                   \
        (p) = NULL;                                                                                \
        _p_;                                                                                       \
    })

static inline void berth__freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(berth__freep)

static inline void berth__closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define _cleanup_close_ _cleanup_(berth__closep)

static inline void berth__json_decrefp(json_t **j)
{
    json_decref(*j);
}
#define _cleanup_json_ _cleanup_(berth__json_decrefp)

#define BERTH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* NULL-terminated string vectors. */
char **berth__strv_new(void);
/* Append a copy of @s; returns 0 or -ENOMEM (the vector is unchanged then). */
int berth__strv_push(char ***strv, const char *s);
size_t berth__strv_len(char *const *strv);
int berth__strv_contains(char *const *strv, const char *s);
void berth__strv_free(char **strv);
static inline void berth__strv_freep(char ***strv)
{
    berth__strv_free(*strv);
}
#define _cleanup_strv_ _cleanup_(berth__strv_freep)

/* mkdir -p with @mode for every created component; 0 or -errno (err says which path). */
int berth__mkdir_p(const char *path, unsigned mode, berth_err_t *err);

/*
 * Remove @path and everything below it without following symlinks (rm -rf).
 * A missing @path is success. Returns 0 or the first -errno met.
 */
int berth__rm_rf(const char *path);

/*
 * @ns since the epoch as Docker writes times (Go's RFC3339Nano, UTC):
 * "2026-11-28T00:38:03.6343797Z", trailing zeros of the fraction dropped.
 */
void berth__format_time(int64_t ns, char *buf, size_t len);

/* Wall clock in ns since the epoch. */
int64_t berth__now_ns(void);
/* Monotonic clock in ns. */
int64_t berth__mono_ns(void);

#endif /* BERTH_UTIL_H */
