/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/types.h
 * @brief Basic types shared by every berth driver kind: errors, handles,
 *        strings with an explicit owner, byte streams and mount descriptors.
 *
 * ABI rules that hold for every header under berth/:
 *  - Structs crossing the plugin boundary use fixed-width integers and
 *    pointers only; no `bool`, no `enum`, no `long`. In-memory object sizes
 *    are `size_t`; on-disk and wire sizes are `uint64_t`.
 *  - Every struct whose layout may grow starts with `uint32_t struct_size`,
 *    set by the side that allocates it. The reader only touches members that
 *    lie inside `struct_size` (see BERTH_HAS_MEMBER()).
 *  - Functions return `int`: 0 on success, a negative errno value on failure,
 *    and, where documented, the positive BERTH_DECLINED when a driver does not
 *    handle the request. Details of a failure go into the optional last
 *    parameter `berth_err_t *err` (NULL is allowed everywhere).
 *  - Memory is freed by the side that allocated it. Objects a driver hands to
 *    the core carry their own release function; pointers a caller passes in
 *    are borrowed for the duration of the call unless a comment says
 *    otherwise.
 */
#ifndef BERTH_TYPES_H
#define BERTH_TYPES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Positive return: "not mine / not usable here", never an error. */
#define BERTH_DECLINED 1

/** Size of the message buffer in berth_err_t, including the NUL. */
#define BERTH_ERR_MSG_MAX 512

/**
 * Error detail, owned by the caller (usually on its stack).
 * Written only on failure; `code` is the same negative errno the function
 * returns and `msg` is one line of text without a trailing newline, meant to
 * be shown to a user as is ("overlay: mount /x: Invalid argument").
 */
typedef struct berth_err {
    int32_t code;
    char msg[BERTH_ERR_MSG_MAX];
} berth_err_t;

#if defined(__GNUC__) || defined(__clang__)
#define BERTH_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define BERTH_PRINTF(fmt_idx, arg_idx)
#endif

/**
 * Fill @p err (may be NULL) and return @p code, so a failure is one
 * `return berth_err_set(err, -EINVAL, "bad %s", what);`.
 * @param code a negative errno value.
 * Inline so that drivers, which never link the core, have it too.
 */
static inline int berth_err_setv(berth_err_t *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        /*
         * Messages quote what users and images send ("unknown capability
         * \"%s\""): a control character there would break the one line
         * into several, or forge log lines, so it is shown as '?'.
         */
        for (char *p = err->msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return code;
}

static inline BERTH_PRINTF(3, 4) int berth_err_set(berth_err_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = berth_err_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

/**
 * Prefix an already filled error with context: "what: old message".
 * Does nothing when @p err is NULL. Returns err->code (or @p code when err is NULL).
 */
static inline int berth_err_prefix(berth_err_t *err, int code, const char *what)
{
    char tmp[BERTH_ERR_MSG_MAX];
    if (!err)
        return code;
    memcpy(tmp, err->msg, sizeof(tmp));
    /* Truncation is acceptable: the message stays one bounded line. */
    if (snprintf(err->msg, sizeof(err->msg), "%s: %s", what, tmp) < 0)
        err->msg[0] = '\0';
    return err->code;
}

/**
 * An OS handle: a file descriptor on POSIX, a HANDLE value on Windows.
 * -1 means "none".
 */
typedef int64_t berth_handle_t;
#define BERTH_HANDLE_NONE ((berth_handle_t)-1)

/** True when member @p m of the struct behind pointer @p p lies inside its struct_size. */
#define BERTH_HAS_MEMBER(p, type, m)                                                               \
    ((p) != NULL && (p)->struct_size >= offsetof(type, m) + sizeof(((type *)0)->m))

/**
 * A heap string or buffer handed from one side to the other, with the function
 * that releases it. The receiver owns it and calls `release(blob)` exactly once
 * (it may be NULL when the data is static). Used for JSON documents drivers
 * return (CNI results, driver state, capability lists).
 */
typedef struct berth_blob {
    uint32_t struct_size;
    uint32_t reserved;
    char *data;                               /**< NUL-terminated for text; owned by the blob. */
    size_t len;                               /**< bytes in data, excluding the NUL. */
    void (*release)(struct berth_blob *blob); /**< frees data and the blob itself. */
} berth_blob_t;

/** Release a blob received from the other side; NULL is allowed. */
static inline void berth_blob_release(berth_blob_t *blob)
{
    if (blob && blob->release)
        blob->release(blob);
}

/**
 * A readable byte stream (a blob being fetched, a layer diff).
 * Created by the producer; the consumer calls `read` until it returns 0
 * (end) or a negative errno, then `close` exactly once, which frees the stream.
 */
typedef struct berth_stream {
    uint32_t struct_size;
    uint32_t reserved;
    /** Bytes the stream yields when known (for a fetch at an offset: the bytes after it), else -1. */
    int64_t size;
    /**
     * Read up to @p len bytes into @p buf.
     * @return bytes read (> 0), 0 at the end, or a negative errno (details in @p err).
     */
    int64_t (*read)(struct berth_stream *s, void *buf, size_t len, berth_err_t *err);
    /** Release the stream and everything it holds; @p s is invalid afterwards. */
    void (*close)(struct berth_stream *s);
    /** Producer's private state; the consumer never touches it. */
    void *priv;
} berth_stream_t;

/**
 * One mount, in the form a storage driver describes a root filesystem and an
 * isolation driver consumes it (a host mount, a 9p share, a block image).
 * All strings are owned by the berth_mount_list_t that holds the mount.
 */
typedef struct berth_mount {
    uint32_t struct_size;
    uint32_t flags;     /**< BERTH_MOUNT_F_* */
    const char *type;   /**< "overlay", "bind", "tmpfs", "erofs", ... */
    const char *source; /**< device, directory or "none" */
    /** Where inside the rootfs, "" or "/" for the rootfs itself. Never resolved on the host. */
    const char *target;
    const char *const *options; /**< mount options ("lowerdir=...", "ro"); n_options entries */
    uint32_t n_options;
    uint32_t reserved;
} berth_mount_t;

#define BERTH_MOUNT_F_READONLY 0x1u /**< mount read-only */

/**
 * A list of mounts returned by a driver; the receiver calls
 * berth_mount_list_free() (which calls `release`) exactly once.
 */
typedef struct berth_mount_list {
    uint32_t struct_size;
    uint32_t n_mounts;
    berth_mount_t *mounts;
    void (*release)(struct berth_mount_list *list);
    void *priv; /**< producer's private state */
} berth_mount_list_t;

static inline void berth_mount_list_free(berth_mount_list_t *list)
{
    if (list && list->release)
        list->release(list);
}

/** Severity for host logging (same numbers as syslog). */
#define BERTH_LOG_ERR     3u
#define BERTH_LOG_WARNING 4u
#define BERTH_LOG_NOTICE  5u
#define BERTH_LOG_INFO    6u
#define BERTH_LOG_DEBUG   7u

#ifdef __cplusplus
}
#endif

#endif /* BERTH_TYPES_H */
