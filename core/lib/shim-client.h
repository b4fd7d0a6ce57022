/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's side of berth-shim, the per-container monitor
 * (docs/shim-protocol.md): starting a shim detached, connecting to its
 * control socket, one request/response exchange, and the 8-byte-header
 * frames of the attach/exec stream mode (Docker's stdcopy layout).
 *
 * All functions return 0 (or what is documented) or a negative errno with a
 * one-line reason in @err; ret_* out-parameters are set only on success.
 */
#ifndef BERTH_SHIM_CLIENT_H
#define BERTH_SHIM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/engine.h>

/* Flags for berth__shim_spawn(). */
#define BERTH_SHIM_WAIT_START 0x1u /* create only; the shim starts on the "start" request */

/* The longest request or response line, newline included. */
#define BERTH_SHIM_LINE_MAX (64 * 1024)

/* Stream numbers in frame headers. */
#define BERTH_FRAME_STDOUT 1
#define BERTH_FRAME_STDERR 2
#define BERTH_FRAME_EXIT   3
/* The longest frame payload berth__frame_read() accepts. */
#define BERTH_FRAME_MAX (1024 * 1024)

/*
 * How long berth__shim_spawn() waits for the readiness line: longer than
 * the slowest isolation driver's container_create (hyperv boots a VM there
 * and waits up to 60 s for its agent on a loaded host). Giving up earlier
 * would report a failure for a container the shim then goes on to create.
 */
#define BERTH_SHIM_READY_TIMEOUT_MS 90000

/*
 * The shim executable: $BERTH_SHIM_PATH when set and not empty, else
 * BERTH_LIBEXECDIR "/berth-shim". Static or environment storage; not owned.
 */
const char *berth__shim_path(void);

/*
 * The control socket of container @id: <runroot>/containers/<id>/shim.sock,
 * in @buf. -ENAMETOOLONG when it does not fit @len.
 */
int berth__shim_socket_path(berth_engine_t *e, const char *id, char *buf, size_t len,
                            berth_err_t *err);

struct sockaddr_un;
/*
 * Fill @sa for unix socket @path. A path too long for sun_path (a deep
 * runroot) goes through its directory: *ret_dirfd is then an O_PATH fd of
 * it and the address "/proc/self/fd/N/<name>"; close it after bind or
 * connect (it is -1 otherwise).
 */
int berth__unix_sockaddr(const char *path, struct sockaddr_un *sa, int *ret_dirfd,
                         berth_err_t *err);

/*
 * Start the monitor for container @id (a record in @e's store), detached:
 * the shim runs in its own session, is not a child of the caller and
 * survives it. Waits (up to BERTH_SHIM_READY_TIMEOUT_MS) for its readiness
 * line and returns it in *ret_ready (new reference, may be NULL):
 *   {"ok":true, "pid":N, "shim_pid":N, "status":"running"|"created"}
 * When the shim reports an error ({"error":..., "exit_code":125|126|127}),
 * the message goes to @err and the return is -ENOENT for exit code 127 (no
 * such executable), -EACCES for 126, else the shim's "code" or -EIO. The
 * shim has then recorded the failure in the container's record.
 * Never keep a store transaction open across this call. Safe in a
 * multi-threaded caller (only async-signal-safe calls between fork and exec).
 */
int berth__shim_spawn(berth_engine_t *e, const char *id, uint32_t flags, json_t **ret_ready,
                      berth_err_t *err);

/*
 * berth__shim_spawn in two halves, so that the caller can write a new
 * container's record while its monitor sets it up (docker run's create and
 * start overlap; berth_container_create_run). With @record (a container
 * record as it is about to be committed; needs BERTH_SHIM_WAIT_START) the
 * shim gets it on fd 4 instead of reading the store, sets the container up
 * and then waits to be told whether the record was committed:
 * berth__shim_pending_finish(@committed 1) says so and reads the readiness
 * line as berth__shim_spawn does; @committed 0 makes the shim undo all it
 * made and exit without touching the store (the return is then 0 whatever
 * the shim said). Without @record the halves are berth__shim_spawn.
 * finish must be called exactly once after a successful spawn_pending.
 */
typedef struct berth_shim_pending {
    int ready_fd;  /* the readiness pipe */
    int record_fd; /* our end of the record socket, or -1 */
} berth_shim_pending_t;
int berth__shim_spawn_pending(berth_engine_t *e, const char *id, uint32_t flags, json_t *record,
                              berth_shim_pending_t *ret, berth_err_t *err);
int berth__shim_pending_finish(berth_shim_pending_t *p, int committed, json_t **ret_ready,
                               berth_err_t *err);

/*
 * Connect to the shim of container @id. *ret_fd is a blocking, close-on-exec
 * SOCK_STREAM socket the caller closes. -ENOENT/-ECONNREFUSED when no shim
 * serves it (the container is not running, or its shim died).
 */
int berth__shim_connect(berth_engine_t *e, const char *id, int *ret_fd, berth_err_t *err);

/*
 * Send @req (borrowed) as one line and read one line back into *ret_resp
 * (new reference, may be NULL). Reads byte by byte so that no byte after
 * the response (stream mode) is consumed. A response {"error":M,"code":C}
 * fails with C (or -EIO) and message M. -EPIPE/-ECONNRESET when the shim
 * went away, -EPROTO for a response that is not a JSON object.
 */
int berth__shim_request(int fd, json_t *req, json_t **ret_resp, berth_err_t *err);
/* The two halves of berth__shim_request, for callers that wait for the answer elsewhere. */
int berth__shim_send(int fd, json_t *req, berth_err_t *err);
int berth__shim_receive(int fd, json_t **ret_resp, berth_err_t *err);

/* Write one frame: header (stream, 0, 0, 0, big-endian length) and @len bytes of @buf. */
int berth__frame_write(int fd, uint8_t stream, const void *buf, size_t len, berth_err_t *err);

/*
 * Read one frame. Returns 1 with *ret_stream, *ret_buf (malloc'ed, NUL
 * appended, caller frees) and *ret_len set; 0 at a clean end of stream
 * (EOF before a header); -EPROTO for a truncated frame or one over
 * BERTH_FRAME_MAX; another -errno from read.
 */
int berth__frame_read(int fd, uint8_t *ret_stream, char **ret_buf, size_t *ret_len,
                      berth_err_t *err);

/*
 * Wait (at most 5 s) for the monitor named in record @doc's ShimPid to be
 * gone: after a container's exit is recorded, its monitor still tears down
 * (networks, mounts, cgroups), and a start or a removal must not overlap that.
 */
void berth__await_monitor(json_t *doc);

#endif /* BERTH_SHIM_CLIENT_H */
