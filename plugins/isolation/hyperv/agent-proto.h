/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file agent-proto.h
 * @brief The berth-agent wire protocol: framing, control JSON, stdio frames,
 *        version negotiation and per-stream credits (docs/agent-protocol.md).
 *
 * Both ports (control and stdio) carry frames: a u32 big-endian length of
 * the payload, then the payload. A length above the port's limit is a
 * protocol error that drops the connection; it is never allocated.
 *
 * This code is shared by the agent (in the guest) and the host side (the
 * hyperv driver, berth-shim), so it knows nothing about either: no I/O
 * policy beyond read()/write() on a file descriptor the caller owns, no
 * logging, no globals. All functions return 0 (or a count) on success and a
 * negative errno on failure; out-parameters are set only on success.
 */
#ifndef BERTH_AGENT_PROTO_H
#define BERTH_AGENT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/** Protocol versions this build speaks, lowest first. */
#define AGENT_PROTO_VERSION_MIN 1u
#define AGENT_PROTO_VERSION_MAX 1u

/** Payload limits per port. */
#define AGENT_CONTROL_MAX    (4u * 1024 * 1024)
#define AGENT_STDIO_HEADER   5u /* u32 stream id + u8 type */
#define AGENT_STDIO_DATA_MAX (64u * 1024)
#define AGENT_STDIO_MAX      (AGENT_STDIO_HEADER + AGENT_STDIO_DATA_MAX)
/** Initial credit of every stream, each way (bytes the sender may send unacknowledged). */
#define AGENT_STDIO_WINDOW (64u * 1024)

/** Stdio frame types (values are wire format: never renumbered). */
#define AGENT_STDIO_DATA   0u
#define AGENT_STDIO_EOF    1u
#define AGENT_STDIO_CREDIT 2u

/* ---- framing ---- */

/**
 * Incremental frame reader. Copes with partial reads and several frames per
 * read. Initialise with agent_reader_init(), release with agent_reader_clear().
 */
typedef struct agent_reader {
    uint8_t *buf; /* owned */
    size_t cap;   /* allocated bytes */
    size_t len;   /* valid bytes in buf */
    size_t off;   /* start of the first unconsumed byte */
    uint32_t max; /* largest payload accepted */
} agent_reader_t;

void agent_reader_init(agent_reader_t *r, uint32_t max_payload);
void agent_reader_clear(agent_reader_t *r);

/**
 * Append @p len bytes received from the peer (tests and callers that read
 * themselves). Returns 0 or -ENOMEM.
 */
int agent_reader_feed(agent_reader_t *r, const void *data, size_t len);

/**
 * read() once from @p fd into the reader. Returns the bytes read (> 0), 0 at
 * end of file, -EAGAIN when nothing is there (non-blocking fd), or -errno.
 */
long agent_reader_fill(agent_reader_t *r, int fd);

/**
 * Take the next complete frame. Returns 1 with *ret_payload (borrowed: valid
 * until the next call on @p r) and *ret_len set, 0 when more bytes are
 * needed, -EMSGSIZE when the announced length exceeds the limit (the reader
 * is then unusable: drop the connection).
 */
int agent_reader_next(agent_reader_t *r, const uint8_t **ret_payload, uint32_t *ret_len);

/**
 * Outgoing byte queue for a (possibly non-blocking) fd. Frames are queued
 * whole; agent_writer_flush() writes what the fd takes.
 */
typedef struct agent_writer {
    uint8_t *buf; /* owned */
    size_t cap, len, off;
} agent_writer_t;

void agent_writer_init(agent_writer_t *w);
void agent_writer_clear(agent_writer_t *w);
/** Queue one frame (header + payload). -EMSGSIZE above @p max, -ENOMEM. */
int agent_writer_put(agent_writer_t *w, const void *payload, size_t len, uint32_t max);
/** Bytes still queued. */
size_t agent_writer_pending(const agent_writer_t *w);
/**
 * Write queued bytes to @p fd until it would block or the queue is empty.
 * Returns 0 (check pending), or -errno (-EPIPE: the peer went away).
 */
int agent_writer_flush(agent_writer_t *w, int fd);

/* ---- control messages ---- */

/**
 * Parse a control payload: one JSON object. Returns 0 with *ret_obj (a new
 * reference), or -EBADMSG with a one-line reason in @p why (may be NULL,
 * @p why_size bytes).
 */
int agent_json_decode(const uint8_t *payload, uint32_t len, json_t **ret_obj, char *why,
                      size_t why_size);
/** Queue @p obj (borrowed) as one control frame. */
int agent_json_put(agent_writer_t *w, json_t *obj);
/** Queue a success reply {"id":id,"ok":true,...extra}; @p extra (stolen) may be NULL. */
int agent_reply_ok(agent_writer_t *w, json_int_t id, json_t *extra);
/** Queue {"id":id,"ok":false,"errno":E,"error":msg}; @p error_no is a positive errno. */
int agent_reply_err(agent_writer_t *w, json_int_t id, int error_no, const char *msg);

/* ---- stdio frames ---- */

typedef struct agent_stdio_frame {
    uint32_t stream;
    uint32_t type;       /* AGENT_STDIO_* */
    uint32_t credit;     /* CREDIT: bytes granted */
    const uint8_t *data; /* DATA: borrowed from the payload */
    uint32_t len;
} agent_stdio_frame_t;

/**
 * Decode a stdio payload. -EBADMSG for a short payload, an unknown type, a
 * CREDIT without its count or with trailing bytes, an EOF with data.
 */
int agent_stdio_decode(const uint8_t *payload, uint32_t len, agent_stdio_frame_t *ret);
/** Queue a DATA (len ≤ AGENT_STDIO_DATA_MAX), EOF or CREDIT frame. */
int agent_stdio_put_data(agent_writer_t *w, uint32_t stream, const void *data, size_t len);
int agent_stdio_put_eof(agent_writer_t *w, uint32_t stream);
int agent_stdio_put_credit(agent_writer_t *w, uint32_t stream, uint32_t bytes);

/* ---- credits ---- */

/**
 * What a sender may still send on one stream. Starts at AGENT_STDIO_WINDOW;
 * the receiver grants more as it consumes. The sum may never exceed
 * AGENT_STDIO_WINDOW: a grant beyond that is a protocol error (a peer that
 * grants what it never received has lost count).
 */
typedef struct agent_credit {
    uint32_t avail;
} agent_credit_t;

void agent_credit_init(agent_credit_t *c);
/** How many of @p want bytes may go now (≤ want, ≤ avail); doesn't consume. */
uint32_t agent_credit_allow(const agent_credit_t *c, uint32_t want);
/** Consume @p n sent bytes: -EPROTO when more than available. */
int agent_credit_take(agent_credit_t *c, uint32_t n);
/** Add a grant: -EPROTO when avail would exceed the window. */
int agent_credit_grant(agent_credit_t *c, uint32_t n);

/* ---- negotiation ---- */

/**
 * Pick the highest version in the peer's "versions" array (from a hello
 * request, borrowed) that lies in [@p min, @p max]. Returns 0 with
 * *ret_version, -EPROTONOSUPPORT when there is none, -EBADMSG when
 * "versions" is missing or not an array of positive integers.
 */
int agent_negotiate(json_t *hello, uint32_t min, uint32_t max, uint32_t *ret_version);

/** True when the string array "caps" of @p obj (borrowed) contains @p cap. */
int agent_has_cap(json_t *obj, const char *cap);

/*
 * Binary members of control requests (create's "seccomp", reseed's
 * "entropy") are canonical padded base64: core/common/base64.h, decoded with
 * BERTH__BASE64_STRICT.
 */

/* reseed's "entropy": how many bytes the agent takes (docs/agent-protocol.md). */
#define AGENT_RESEED_MIN 32
#define AGENT_RESEED_MAX 512

#endif /* BERTH_AGENT_PROTO_H */
