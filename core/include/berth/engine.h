/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/engine.h
 * @brief libberth: the berth engine, for the CLI, the daemon and appliances
 *        that embed berth without a daemon.
 *
 * An engine is one open root: its configuration, its metadata store (LMDB
 * under <root>/store) and the driver plugins it loaded. Several processes may
 * open the same root at once (the CLI beside a daemon); one process should
 * open a given root once (a second open returns -EBUSY).
 *
 * Conventions (as in the SDK): functions return 0 or a negative errno, with
 * a one-line reason in the optional `berth_err_t *err`; `ret_*` out-params
 * are set only on success; JSON results are new jansson references the
 * caller releases with json_decref(). The engine is not thread-safe: use one
 * engine per thread, or serialise calls.
 */
#ifndef BERTH_ENGINE_H
#define BERTH_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define BERTH_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define BERTH_API __attribute__((visibility("default")))
#else
#define BERTH_API
#endif

typedef struct berth_engine berth_engine_t;

/** Receives the engine's and its drivers' log lines (no trailing newline). */
typedef void (*berth_log_fn)(void *userdata, uint32_t level, const char *source, const char *msg);

/** Flags for berth_engine_opts_t.flags. */
#define BERTH_ENGINE_F_NO_STORE   0x1u /**< don't open the store (version, plugin listing) */
#define BERTH_ENGINE_F_NO_PLUGINS 0x2u /**< don't load plugins */
#define BERTH_ENGINE_F_IGNORE_ENV 0x4u /**< ignore BERTH_* environment variables */

/** How to open an engine. Zero-initialise, set struct_size, fill what you need. */
typedef struct berth_engine_opts {
    uint32_t struct_size; /**< sizeof(berth_engine_opts_t) */
    uint32_t flags;       /**< BERTH_ENGINE_F_* */
    /** Config file; NULL: $BERTH_CONFIG, else <sysconfdir>/berth/berth.json if present. */
    const char *config_path;
    /** Root dir; NULL: $BERTH_ROOT, else the config's "root" (default /var/lib/berth). */
    const char *root;
    /** Runtime dir; NULL: $BERTH_RUNROOT, else the config's "runroot" (default /run/berth). */
    const char *runroot;
    /** Extra plugin dirs, colon-separated, searched after the config's; NULL: $BERTH_PLUGIN_PATH. */
    const char *plugin_path;
    /** Log sink; NULL drops log lines. Called on the thread that caused the line. */
    berth_log_fn log;
    void *log_userdata;
} berth_engine_opts_t;

/** libberth's version string ("0.1.0"); static. */
BERTH_API const char *berth_version(void);
/** The driver ABI this libberth implements. */
BERTH_API void berth_abi_version(uint32_t *ret_major, uint32_t *ret_minor);

/**
 * Open an engine: read and validate the config, create the root and runroot
 * (mode 0700) when missing, open the store (running schema migrations) and
 * load plugins. A module that fails to load is recorded as refused with its
 * reason (see berth_engine_plugins()) and does not fail the open.
 * @return 0, or -errno: a bad config (-EINVAL), an unusable root (-EACCES,
 *         -ENOTDIR), a store that can't open (-EPROTO for a newer schema).
 */
BERTH_API int berth_engine_open(const berth_engine_opts_t *opts, berth_engine_t **ret_engine,
                                berth_err_t *err);

/** Close: finalise drivers in reverse load order, close the store. NULL allowed. */
BERTH_API void berth_engine_close(berth_engine_t *engine);

/** The root and runroot in use; owned by the engine. */
BERTH_API const char *berth_engine_root(const berth_engine_t *engine);
BERTH_API const char *berth_engine_runroot(const berth_engine_t *engine);

/**
 * The configuration in effect, as the berth.json document that would give
 * it: every key with its effective value (defaults, file, environment and
 * options applied; "api.listeners" always present, "api.tls" only when
 * set). A new reference; NULL when out of memory. berthd reads its
 * listeners and TLS files here.
 */
BERTH_API json_t *berth_engine_config(const berth_engine_t *engine);

/**
 * Loaded drivers and refused modules:
 * {"search_path": [dir...],
 *  "drivers": [{"kind","name","version","license","description","abi":"1.0",
 *               "capabilities":[name...],"path"}],
 *  "refused": [{"path","reason"}]}
 */
BERTH_API int berth_engine_plugins(berth_engine_t *engine, json_t **ret_json, berth_err_t *err);

/**
 * What `berth info` shows: version, ABI, config file, root, runroot, store
 * (path, schema, record counts per database), drivers by kind with the
 * configured defaults, and detected host features (cgroup mode, overlayfs,
 * user namespaces, KVM).
 */
BERTH_API int berth_engine_info(berth_engine_t *engine, json_t **ret_json, berth_err_t *err);

/* ---- containers ---- */

/**
 * Create a container (state "created"; nothing runs yet).
 * @param name  unique name ([a-zA-Z0-9][a-zA-Z0-9_.-]*), NULL for a generated one.
 * @param body  a Docker Engine API create body (borrowed): Cmd, Entrypoint, Env,
 *              WorkingDir, User, Hostname, Tty, OpenStdin, StdinOnce, Labels,
 *              StopSignal, StopTimeout, and HostConfig (Memory, MemorySwap, NanoCpus,
 *              CpuShares, PidsLimit, Binds, Tmpfs, ReadonlyRootfs, CapAdd, CapDrop,
 *              SecurityOpt, Ulimits, AutoRemove, Isolation, NetworkMode), plus berth's
 *              "Rootfs": an absolute directory to run from instead of an image.
 * @param[out] ret_id  the new 64-hex id and a NUL.
 * @return 0; -EINVAL for invalid options (the message names the option),
 *         -EEXIST for a name in use, -ENOENT for a missing rootfs.
 */
BERTH_API int berth_container_create(berth_engine_t *engine, const char *name, json_t *body,
                                     char ret_id[65], berth_err_t *err);

/**
 * docker run's create and the first half of its start in one call: create
 * the container as berth_container_create() does and start its monitor
 * waiting, as berth_container_start() with BERTH_START_WAIT does. Faster
 * than the two calls: the monitor sets the container up from the record
 * while the record is written to disk, and runs nothing until the record
 * is durable (it undoes everything when the write fails). Then attach if
 * wanted, and berth_container_start(engine, id, 0) lets it run.
 *
 * @return as berth_container_create(); or, once the container exists (its
 *         id is then in @p ret_id), as berth_container_start() when the
 *         monitor could not set it up (the record says why).
 */
BERTH_API int berth_container_create_run(berth_engine_t *engine, const char *name, json_t *body,
                                         char ret_id[65], berth_err_t *err);

/** Flags for berth_container_list(). */
#define BERTH_LIST_ALL 0x1u /**< include created and exited containers, not just running ones */
/**
 * Also Docker's list members that need more than the summary: "Image" (as
 * given at create), "ImageID", "Labels", "Mounts" (as in inspect),
 * "HostConfig": {"NetworkMode"}, "Ports" ([{"IP", "PrivatePort",
 * "PublicPort", "Type"}] per published binding, [{"PrivatePort", "Type"}]
 * per port exposed only) and "NetworkSettings": {"Networks"} (as in inspect).
 * Read in the listing's one transaction, without parsing whole records.
 */
#define BERTH_LIST_DETAIL 0x2u

/**
 * Containers as an array of summaries, newest first: {"Id", "Names": ["/name"],
 * "Command", "Created" (seconds), "State", "Status" (human text), "Isolation",
 * "Pid"}, plus what BERTH_LIST_DETAIL adds when asked.
 */
BERTH_API int berth_container_list(berth_engine_t *engine, uint32_t flags, json_t **ret_json,
                                   berth_err_t *err);

/**
 * The container @p ref (id, unique id prefix or name) in the shape of Docker's
 * inspect: Id, Created, Path, Args, State{Status, Running, Paused, OOMKilled,
 * Dead, Pid, ExitCode, Error, StartedAt, FinishedAt}, Name, Config, HostConfig,
 * plus "Isolation" and "Rootfs".
 */
BERTH_API int berth_container_inspect(berth_engine_t *engine, const char *ref, json_t **ret_json,
                                      berth_err_t *err);

/**
 * Remove the container snapshots no record names: a create makes the
 * snapshot before it commits the record, so a process killed in between
 * leaves one. Creates in flight are waited for (they hold a lock the sweep
 * takes exclusively), so only such leftovers go. berthd calls it when it
 * starts. @p ret_removed (optional) gets how many went.
 */
BERTH_API int berth_container_storage_sweep(berth_engine_t *engine, unsigned *ret_removed,
                                            berth_err_t *err);

/** Flags for berth_container_remove(). */
#define BERTH_REMOVE_FORCE   0x1u /**< kill a running container first */
#define BERTH_REMOVE_VOLUMES 0x2u /**< also remove its anonymous volumes (docker rm -v) */

/**
 * Remove a container and its logs. A running or paused one needs
 * BERTH_REMOVE_FORCE (-EBUSY otherwise, with Docker's message). With
 * BERTH_REMOVE_VOLUMES, the anonymous volumes it used go too, unless another
 * container uses them; named volumes always stay.
 */
BERTH_API int berth_container_remove(berth_engine_t *engine, const char *ref, uint32_t flags,
                                     berth_err_t *err);

/** Flags for berth_container_logs(). */
#define BERTH_LOGS_FOLLOW 0x1u /**< keep reading until the container stops */

/**
 * Receives one log entry: @p stream 1 (stdout) or 2 (stderr), the time the
 * monitor read it, and the text (a line with its newline, or a chunk of a
 * longer line). Return non-zero to stop reading; that value is returned.
 */
typedef int (*berth_log_line_fn)(void *userdata, int stream, int64_t time_ns, const char *data,
                                 size_t len);

/**
 * The container's output, oldest first, from its json-file logs (rotated
 * files included). @p tail: only the last N entries, or -1 for all. With
 * BERTH_LOGS_FOLLOW, waits for more until the container is no longer running.
 */
BERTH_API int berth_container_logs(berth_engine_t *engine, const char *ref, uint32_t flags,
                                   int64_t tail, berth_log_line_fn fn, void *userdata,
                                   berth_err_t *err);

/**
 * A reader of a container's logs for callers that must not block (an
 * event loop): _open positions it so that the first _read gives the last
 * @p tail entries (-1: all, rotated files included); each _read then gives
 * every complete entry written since the previous one, never waiting, and
 * follows the monitor's rotations. Returns 0, the callback's non-zero
 * value, or a negative errno. _dir is the directory the log files live in,
 * for a caller that watches it (inotify) to know when to read again; the
 * caller learns of the container's exit itself (berth_container_wait_begin).
 */
typedef struct berth_log_reader berth_log_reader_t;
BERTH_API int berth_log_reader_open(berth_engine_t *engine, const char *ref, int64_t tail,
                                    berth_log_reader_t **ret_reader, berth_err_t *err);
BERTH_API int berth_log_reader_read(berth_log_reader_t *reader, berth_log_line_fn fn,
                                    void *userdata, berth_err_t *err);
BERTH_API const char *berth_log_reader_dir(const berth_log_reader_t *reader);
BERTH_API void berth_log_reader_close(berth_log_reader_t *reader);

/** Flags for berth_container_start(). */
#define BERTH_START_WAIT 0x1u /**< start the monitor, but run nothing until a second start */
/**
 * a start by the container's restart policy (berthd's supervisor): counts in
 * RestartCount. Any other start is a start by hand: it resets RestartCount
 * and forgets a stop by hand. berth_container_stop() and a
 * berth_container_kill() with SIGKILL or the stop signal record a stop by
 * hand, which no policy restarts.
 */
#define BERTH_START_POLICY 0x2u

/**
 * Start a created or exited container: its monitor (berth-shim) is started
 * detached and the call returns once the container's process runs (or
 * failed: -ENOENT when the executable does not exist, -EACCES when it can't
 * be executed, with the message; the record then says why). With
 * BERTH_START_WAIT the monitor sets everything up but waits, so a caller can
 * attach first; a second berth_container_start() then lets it run.
 */
BERTH_API int berth_container_start(berth_engine_t *engine, const char *ref, uint32_t flags,
                                    berth_err_t *err);
/**
 * Record a running container's health (berthd's health checks): @p health
 * is Docker's State.Health, {"Status": "starting"|"healthy"|"unhealthy",
 * "FailingStreak": N, "Log": [{"Start", "End", "ExitCode", "Output"}...]}.
 * Inspect shows it and the ps Status text says it; a change of Status
 * appends the event "health_status: <status>".
 */
BERTH_API int berth_container_set_health(berth_engine_t *engine, const char *ref, json_t *health,
                                         berth_err_t *err);
/**
 * Send signal @p sig (1-64) to the container's process. A paused container
 * is unpaused right after SIGKILL or its stop signal, as Docker does, so
 * that the signal can act; other signals wait for the unpause.
 */
BERTH_API int berth_container_kill(berth_engine_t *engine, const char *ref, int sig,
                                   berth_err_t *err);
/**
 * Stop: the container's stop signal (default SIGTERM), then SIGKILL after
 * @p timeout_s seconds (-1: the container's StopTimeout, default 10). Returns
 * once it has exited; a container that is not running is not an error. A
 * paused container gets its stop signal and is unpaused to act on it.
 */
BERTH_API int berth_container_stop(berth_engine_t *engine, const char *ref, int timeout_s,
                                   berth_err_t *err);
/**
 * Record the "stop" event of a stop the caller drove itself (the stop
 * signal, a wait, SIGKILL past the timeout: an event loop can't call
 * berth_container_stop, which blocks), once the container has exited; the
 * monitor records kill and die. -ENOENT when the container is gone.
 */
BERTH_API int berth_container_record_stop(berth_engine_t *engine, const char *ref,
                                          berth_err_t *err);
/**
 * Wait until the container exits (at most @p timeout_ms, -1 forever:
 * -ETIMEDOUT after that) and give its exit code.
 */
BERTH_API int berth_container_wait(berth_engine_t *engine, const char *ref, int64_t timeout_ms,
                                   int *ret_exit_code, berth_err_t *err);
/**
 * berth_container_wait for event loops, in two calls that never block for
 * long. _wait_begin asks the container's monitor to answer once the
 * container has exited and returns 0 with the connection in @p ret_fd (to
 * poll for reading), or 1 when there is nothing to wait for (not running,
 * or no monitor): @p ret_exit_code then holds the recorded exit code and
 * @p ret_fd is -1. _wait_end reads the answer once @p fd is readable, closes
 * it and gives the exit code (from the record when the monitor went away
 * first, as a --rm container's does).
 */
BERTH_API int berth_container_wait_begin(berth_engine_t *engine, const char *ref, int *ret_fd,
                                         int *ret_exit_code, berth_err_t *err);
BERTH_API int berth_container_wait_end(berth_engine_t *engine, const char *ref, int fd,
                                       int *ret_exit_code, berth_err_t *err);
BERTH_API int berth_container_pause(berth_engine_t *engine, const char *ref, berth_err_t *err);
BERTH_API int berth_container_unpause(berth_engine_t *engine, const char *ref, berth_err_t *err);

/** Flags for berth_container_attach(). */
#define BERTH_ATTACH_STDIN 0x1u /**< also write to the container's stdin */
/** the container's monitor was started with BERTH_START_WAIT: attach before the start, whatever
 * the record's state (docker run, docker start -a) */
#define BERTH_ATTACH_WAITING 0x2u
/**
 * Connect to a container's streams. *ret_fd (the caller closes it) yields
 * frames (berth_stream_read(): stream 1 stdout, 2 stderr, 3 the exit as JSON
 * {"exit_code":N}); what the caller writes to it goes to the container's
 * stdin (with BERTH_ATTACH_STDIN), shutdown(SHUT_WR) closes that stdin.
 * *ret_tty tells whether the container has a terminal (then only stream 1).
 */
BERTH_API int berth_container_attach(berth_engine_t *engine, const char *ref, uint32_t flags,
                                     int *ret_fd, int *ret_tty, berth_err_t *err);
/** Resize the terminal of the container (@p exec_id NULL) or of an exec. */
BERTH_API int berth_container_resize(berth_engine_t *engine, const char *ref, const char *exec_id,
                                     uint16_t cols, uint16_t rows, berth_err_t *err);
/**
 * Run another process in a running container. @p opts: {"Cmd": [...], "Env":
 * [...], "User", "WorkingDir", "Tty", "AttachStdin", "Detach"}, and "ID":
 * the exec's id (64 lowercase hex) when the caller has one already (a
 * daemon that handed it out at exec create), else one is made. Unless
 * Detach, *ret_fd is a stream as for attach, ending with the exit frame.
 * Events exec_create, exec_start and exec_die carry the id as "execID".
 */
BERTH_API int berth_container_exec(berth_engine_t *engine, const char *ref, json_t *opts,
                                   char ret_exec_id[65], int *ret_fd, berth_err_t *err);
/**
 * Read one frame from an attach or exec stream: 1 with *ret_stream,
 * *ret_buf (malloc'ed, NUL-terminated; free it) and *ret_len; 0 at the end.
 */
BERTH_API int berth_stream_read(int fd, int *ret_stream, char **ret_buf, size_t *ret_len,
                                berth_err_t *err);
/**
 * Resource usage of a running container: the driver's figures
 * ({"memory": {"usage", "limit"}, "cpu": {"usage_ns"}, "pids": {"current",
 * "limit"}} as available) plus "id", "name" and "read_ns".
 */
BERTH_API int berth_container_stats(berth_engine_t *engine, const char *ref, json_t **ret_json,
                                    berth_err_t *err);
/** The container's processes, as Docker's API gives them: {"Titles": [...], "Processes": [[...]]}. */
BERTH_API int berth_container_top(berth_engine_t *engine, const char *ref, json_t **ret_json,
                                  berth_err_t *err);
/** A signal by name ("TERM", "SIGKILL") or number; -1 when unknown. */
BERTH_API int berth_parse_signal(const char *name);

/* ---- images ---- */

/**
 * Progress of a pull, load or save, one event per change, in the shape of
 * the Docker API's progress messages: @p id is a layer's short digest
 * (12 hex) or NULL for a line about the whole image; @p status is
 * "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum",
 * "Download complete", "Extracting", "Pull complete", "Already exists",
 * "Loading layer" and "Load complete" (for loads), or a free text line ("Digest: sha256:...",
 * "Status: Downloaded newer image for busybox:latest"). @p current and
 * @p total are bytes (-1 when unknown). Called on the calling thread or on a
 * download thread, never concurrently.
 */
typedef struct berth_progress {
    const char *id;
    const char *status;
    int64_t current;
    int64_t total;
} berth_progress_t;
typedef void (*berth_progress_fn)(void *userdata, const berth_progress_t *ev);

/** Options for pull, load and save; NULL means defaults. */
typedef struct berth_image_opts {
    /** "os/arch[/variant]" to pick from an index; NULL: the host's platform. */
    const char *platform;
    /**
     * Registry credentials as JSON ({"username","password"} or
     * {"identitytoken"}), NULL to use the credentials file (berth_registry_login()).
     */
    const char *auth_json;
    berth_progress_fn progress;
    void *progress_userdata;
} berth_image_opts_t;

/**
 * Pull @p name ("busybox", "localhost:5000/app:1", "app@sha256:...") from its
 * registry: resolve, pick the platform, download missing blobs (verified,
 * resumable), unpack missing layers, record the image and tag it.
 * @param[out] ret_id the image id ("sha256:<hex>") and a NUL; may be NULL.
 * @return 0; -EINVAL bad name; -ENOENT not in the registry; -EACCES refused
 *         credentials; network errors as negative errno. An interrupted pull
 *         leaves no image; the next one reuses what was downloaded.
 */
BERTH_API int berth_image_pull(berth_engine_t *engine, const char *name,
                               const berth_image_opts_t *opts, char ret_id[72], berth_err_t *err);
/**
 * Load every image of an archive (`docker save` tar, OCI layout directory or
 * tar) at @p path. *ret_json: array of {"id","name"} (name null for an
 * untagged image).
 */
BERTH_API int berth_image_load(berth_engine_t *engine, const char *path,
                               const berth_image_opts_t *opts, json_t **ret_json, berth_err_t *err);
/**
 * Write images @p refs (@p n of them; names keep their tags, ids are saved
 * untagged) to @p path as @p format "docker-archive" (default when NULL) or
 * "oci-archive" (an OCI layout tar) or "oci-dir" (an OCI layout directory).
 * Nothing appears at @p path unless everything was written.
 */
BERTH_API int berth_image_save(berth_engine_t *engine, const char *const *refs, size_t n,
                               const char *path, const char *format, const berth_image_opts_t *opts,
                               berth_err_t *err);
/**
 * Images as the Docker API's GET /images/json lists them: Id, RepoTags,
 * RepoDigests, Created (seconds), Size, Labels, Containers.
 */
BERTH_API int berth_image_list(berth_engine_t *engine, uint32_t flags, json_t **ret_json,
                               berth_err_t *err);
/** GET /images/{name}/json: Id, RepoTags, RepoDigests, Created, Os, Architecture, Config, RootFS, Size, ... */
BERTH_API int berth_image_inspect(berth_engine_t *engine, const char *ref, json_t **ret_json,
                                  berth_err_t *err);
/** GET /images/{name}/history: [{Id, Created, CreatedBy, Tags, Size, Comment}], newest first. */
BERTH_API int berth_image_history(berth_engine_t *engine, const char *ref, json_t **ret_json,
                                  berth_err_t *err);
/** Tag image @p ref as @p target ("repo[:tag]"). */
BERTH_API int berth_image_tag(berth_engine_t *engine, const char *ref, const char *target,
                              berth_err_t *err);
/** Flags for berth_image_remove(). */
#define BERTH_IMAGE_RM_FORCE 0x1u
/**
 * Docker's `rmi`: untag @p ref, and delete the image (and its layers and blobs
 * no other image uses) when no tag is left. *ret_json (may be NULL):
 * [{"Untagged": name} | {"Deleted": id}]. -EBUSY ("conflict: ...") when a
 * container uses it or an id names an image with several tags, unless FORCE.
 */
BERTH_API int berth_image_remove(berth_engine_t *engine, const char *ref, uint32_t flags,
                                 json_t **ret_json, berth_err_t *err);
/** Flags for berth_image_prune(). */
#define BERTH_IMAGE_PRUNE_ALL 0x1u /**< every image no container uses, not only dangling ones */
/** Remove unused images and unreferenced blobs. *ret_json: {"ImagesDeleted": [...], "SpaceReclaimed"}. */
BERTH_API int berth_image_prune(berth_engine_t *engine, uint32_t flags, json_t **ret_json,
                                berth_err_t *err);
/**
 * Disk usage as GET /system/df reports it: LayersSize, Images, Containers,
 * Volumes (each volume as berth_volume_inspect() gives it, plus
 * "UsageData": {"Size", "RefCount"}), BuildCache.
 */
BERTH_API int berth_system_df(berth_engine_t *engine, json_t **ret_json, berth_err_t *err);

/* ---- volumes ---- */

/*
 * Volumes are directories under <root>/volumes/<name>/_data ("local" driver)
 * that containers mount: named ones (HostConfig.Binds "name:/path[:ro]",
 * HostConfig.Mounts of Type "volume"; made on first use) and anonymous ones
 * (Config.Volumes, the image's VOLUME entries; a random 64-hex name and the
 * label "com.docker.volume.anonymous"). A fresh volume mounted where the
 * image has files gets a copy of them first. A volume is in use while any
 * container, whatever its state, mounts it.
 *
 * A volume is described as Docker's API does it: {"Name", "Driver": "local",
 * "Mountpoint", "CreatedAt", "Labels", "Options", "Scope": "local"}.
 */

/**
 * Create a volume from a Docker create body {"Name", "Driver", "DriverOpts",
 * "Labels"} (@p body borrowed; NULL or no Name: a generated 64-hex name).
 * An existing name is returned as it is, as Docker does. -EINVAL for a bad
 * name ([a-zA-Z0-9][a-zA-Z0-9_.-]+), a driver other than "local" or
 * driver options (the local driver takes none here).
 */
BERTH_API int berth_volume_create(berth_engine_t *engine, json_t *body, json_t **ret_json,
                                  berth_err_t *err);
/**
 * Volumes as an array, in name order, that pass @p filters (NULL: all):
 * Docker's filter object, each key with its values as {"value": true} or
 * ["value"]: "name" (substring), "label" ("key" or "key=value"), "driver",
 * "dangling" ("true": no container uses it; "false": some container does).
 * -EINVAL for another key.
 */
BERTH_API int berth_volume_list(berth_engine_t *engine, json_t *filters, json_t **ret_json,
                                berth_err_t *err);
/** The volume @p name; -ENOENT ("no such volume: X") when there is none. */
BERTH_API int berth_volume_inspect(berth_engine_t *engine, const char *name, json_t **ret_json,
                                   berth_err_t *err);
/** Flags for berth_volume_remove(). */
#define BERTH_VOLUME_RM_FORCE 0x1u /**< remove even while containers use it */
/**
 * Remove volume @p name and its data. -ENOENT when there is none; -EBUSY
 * ("remove X: volume is in use - [ids]") while a container uses it.
 */
BERTH_API int berth_volume_remove(berth_engine_t *engine, const char *name, uint32_t flags,
                                  berth_err_t *err);
/**
 * Remove the volumes no container uses: only anonymous ones, unless
 * @p filters (Docker's filter object, may be NULL) has "all" true (API 1.42
 * semantics); "label" and "label!" narrow it. *ret_json: {"VolumesDeleted":
 * [names], "SpaceReclaimed": bytes}. Leftover directories of interrupted
 * creates and removals are swept too.
 */
BERTH_API int berth_volume_prune(berth_engine_t *engine, json_t *filters, json_t **ret_json,
                                 berth_err_t *err);

/* ---- networks ---- */

/*
 * A network is a record in the store made real on the host by a network
 * driver (plugins/network/, "cni" by default: defaults.network). Three
 * always exist, as in Docker: "bridge" (the default network of containers
 * created with NetworkMode "bridge" or "default"; made on first use),
 * "host" (the host's network namespace) and "none" (loopback only); the
 * last two have no driver and no endpoints. User networks get a subnet
 * from the pool 172.18.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/20 steps,
 * unless given one; subnets of networks never overlap.
 *
 * A network is described as Docker's API does it: {"Name", "Id", "Created",
 * "Scope": "local", "Driver", "EnableIPv6": false, "IPAM": {"Driver":
 * "default", "Options": {}, "Config": [{"Subnet", "Gateway"}]}, "Internal",
 * "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""},
 * "ConfigOnly": false, "Containers": {id: {"Name", "EndpointID",
 * "MacAddress", "IPv4Address" (CIDR), "IPv6Address"}}, "Options", "Labels"}.
 * "Containers" lists the endpoints attached now (running containers).
 *
 * Containers join networks by HostConfig.NetworkMode (a network's name or
 * id, "bridge", "host", "none") and NetworkingConfig.EndpointsConfig
 * ({name: {"IPAMConfig": {"IPv4Address"}, "Aliases": [...]}}); their
 * endpoints are attached when they start and detached when they stop.
 * HostConfig.PortBindings ({"80/tcp": [{"HostIp", "HostPort"}]}, HostPort
 * "" or "0" for an ephemeral port) and PublishAllPorts (every ExposedPorts
 * entry on an ephemeral port) publish ports; berth reserves each host port
 * for as long as the container runs and refuses one in use.
 */

/**
 * Create a network from a Docker create body {"Name", "Driver" (default:
 * defaults.network; "bridge" means it too), "Internal", "IPAM": {"Config":
 * [{"Subnet", "Gateway", "IPRange"}]}, "Options", "Labels", "CheckDuplicate"}
 * (borrowed). *ret_json: {"Id", "Warning": ""}. -EEXIST ("network with name
 * X already exists") for a name in use; -EINVAL for a bad name, subnet or
 * gateway, a subnet overlapping another network's, IPv6; -ENOENT for a
 * driver that is not loaded; the driver's error when it cannot set the
 * network up (nothing is left behind then).
 */
BERTH_API int berth_network_create(berth_engine_t *engine, json_t *body, json_t **ret_json,
                                   berth_err_t *err);
/**
 * Networks as an array, in name order, that pass @p filters (NULL: all):
 * "name" (substring), "id" (prefix), "driver", "label" ("key" or
 * "key=value"), "type" ("builtin": bridge, host, none; "custom"),
 * "dangling" ("true": no container uses it). -EINVAL for another key.
 */
BERTH_API int berth_network_list(berth_engine_t *engine, json_t *filters, json_t **ret_json,
                                 berth_err_t *err);
/** The network @p ref (name, id or unique id prefix); -ENOENT ("network X not found"). */
BERTH_API int berth_network_inspect(berth_engine_t *engine, const char *ref, json_t **ret_json,
                                    berth_err_t *err);
/**
 * Remove network @p ref and its host state. -ENOENT when there is none;
 * -EPERM for bridge, host and none ("X is a pre-defined network and cannot
 * be removed"); -EBUSY while any container, running or not, refers to it
 * ("error while removing network: network X has active endpoints").
 */
BERTH_API int berth_network_remove(berth_engine_t *engine, const char *ref, berth_err_t *err);
/**
 * Remove the user networks no container refers to; "label"/"label!" in
 * @p filters (may be NULL) narrow it. *ret_json: {"NetworksDeleted": [names]}.
 */
BERTH_API int berth_network_prune(berth_engine_t *engine, json_t *filters, json_t **ret_json,
                                  berth_err_t *err);
/**
 * Connect container @p container to network @p net, with @p endpoint
 * (Docker's EndpointSettings: "IPAMConfig": {"IPv4Address"}, "Aliases";
 * may be NULL). A created or exited container joins it at its next start;
 * a running one is attached now. -EEXIST when already connected; -EINVAL
 * for host/none mixed with other networks.
 */
BERTH_API int berth_network_connect(berth_engine_t *engine, const char *net, const char *container,
                                    json_t *endpoint, berth_err_t *err);
/**
 * Disconnect container @p container from network @p net (detached now when
 * it runs). -ENOENT when it is not connected.
 */
BERTH_API int berth_network_disconnect(berth_engine_t *engine, const char *net,
                                       const char *container, int force, berth_err_t *err);

/**
 * Verify the endpoints of running containers with their drivers (CNI CHECK),
 * as a restarted daemon does: *ret_json gets an array of the failing ones,
 * {"Container", "Network", "Error"} (empty when all are as attached).
 */
BERTH_API int berth_network_check(berth_engine_t *engine, json_t **ret_json, berth_err_t *err);

/**
 * Check credentials against registry @p server ("localhost:5000"; NULL or
 * "docker.io" for Docker Hub) and store them in the credentials file
 * ($DOCKER_CONFIG/config.json, default ~/.docker/config.json, "auths"), as
 * `docker login` does. -EACCES when the registry refuses them.
 */
BERTH_API int berth_registry_login(berth_engine_t *engine, const char *server, const char *username,
                                   const char *password, berth_err_t *err);
/** Forget the stored credentials for @p server; -ENOENT when there were none. */
BERTH_API int berth_registry_logout(berth_engine_t *engine, const char *server, berth_err_t *err);

/* ---- events ---- */

/**
 * The event log. Every change the engine makes (by any process on the
 * root: the CLI, a daemon, the containers' monitors) appends an event in
 * the same store transaction, so the log is complete and in commit order.
 * The store keeps the newest "events.max" (config, default 10000).
 *
 * Events are read in Docker's message shape (GET /events): {"Type",
 * "Action", "Actor": {"ID", "Attributes"}, "scope": "local", "time",
 * "timeNano"}, and for containers and images the deprecated "status", "id"
 * and "from". Container events carry the container's labels, "image" and
 * "name"; "die" and "exec_die" add "exitCode", "kill" adds "signal".
 */

/** Docker's event filters (type, event, container, image, label, ...), compiled. */
typedef struct berth_event_filter berth_event_filter_t;

/**
 * A filter from Docker's `filters` query JSON: {"type": {"container": true},
 * "event": {"die": true}} or the older {"type": ["container"]}; NULL or ""
 * for an empty filter. -EINVAL for malformed JSON or a key Docker does not
 * accept for events ("invalid filter 'x'").
 */
BERTH_API int berth_event_filter_new(const char *filters_json, berth_event_filter_t **ret_filter,
                                     berth_err_t *err);
/** Add one "key=value" (the CLI's --filter); -EINVAL as above or without '='. */
BERTH_API int berth_event_filter_add(berth_event_filter_t *filter, const char *key_value,
                                     berth_err_t *err);
/** NULL allowed. */
BERTH_API void berth_event_filter_free(berth_event_filter_t *filter);
/** 1 when Docker message @p msg (as berth_events_read gives them) passes @p filter (NULL: all). */
BERTH_API int berth_event_filter_match(const berth_event_filter_t *filter, json_t *msg);

/**
 * Events committed after sequence number @p after_seq (0: from the oldest
 * kept), oldest first, whose time is within [@p since_ns, @p until_ns]
 * (0: unbounded) and that pass @p filter (NULL: all), as a JSON array of
 * Docker messages in *ret_events. At most @p max events are examined (0:
 * all there are), so an event loop can bound one call's work; *ret_last_seq
 * gets the sequence number of the last one examined (@p after_seq when
 * none): pass it as @p after_seq next time. One read-only store
 * transaction: it never waits for a writer.
 */
BERTH_API int berth_events_read(berth_engine_t *engine, uint64_t after_seq, int64_t since_ns,
                                int64_t until_ns, const berth_event_filter_t *filter, size_t max,
                                json_t **ret_events, uint64_t *ret_last_seq, berth_err_t *err);
/** The newest event's sequence number (0: none yet): where a reader of new events only starts. */
BERTH_API int berth_events_last_seq(berth_engine_t *engine, uint64_t *ret_seq, berth_err_t *err);

/**
 * How a long-lived reader learns that events were committed, by any
 * process, without polling: the store's data file, which LMDB writes
 * (pwrite) on every commit and never otherwise while events are read. Watch
 * the path for modification (inotify IN_MODIFY, libuv's uv_fs_event), and
 * on each notification call berth_events_read() from the last sequence
 * number seen. A notification may come without a new event (any commit
 * writes the file) and several commits may give one: reading is what
 * counts. It may also come an instant before the commit is visible (LMDB
 * publishes a transaction to readers just after its last write), so read
 * once more a little later (berth's readers look again after 50 ms and 1 s).
 * The path is owned by the engine.
 */
BERTH_API const char *berth_events_watch_path(berth_engine_t *engine);
/**
 * The same as a file descriptor for poll(2): an inotify instance
 * (non-blocking, close-on-exec) watching that file; readable after a
 * commit. Call berth_events_watch_drain() before reading the events, then
 * poll again. The caller closes it.
 */
BERTH_API int berth_events_watch_open(berth_engine_t *engine, int *ret_fd, berth_err_t *err);
/** Consume the pending notifications of a berth_events_watch_open() descriptor. */
BERTH_API void berth_events_watch_drain(int fd);

/**
 * A time as `docker events --since/--until` accept it, in ns since the
 * epoch: a Go duration before @p now_ns ("10m", "1h30m", "1.5s"); Unix
 * seconds with optional fraction ("1700000000", "1700000000.5"); RFC 3339
 * ("2026-11-28T15:00:00Z", "...T15:00:00.123+01:00", without a zone in
 * local time) or a date ("2026-11-28", local midnight). -EINVAL otherwise
 * ("failed to parse value as time or duration: \"x\"").
 */
BERTH_API int berth_parse_time(const char *text, int64_t now_ns, int64_t *ret_ns, berth_err_t *err);

/* ---- option parsing shared by front ends ---- */

/**
 * Whether NUL-terminated @p text is well-formed UTF-8. The API speaks JSON,
 * whose strings can't hold anything else: a front end refuses such an
 * argument with a message rather than lose it.
 */
BERTH_API int berth_utf8_valid(const char *text);
/**
 * Replace, in place, every byte of @p text that is not part of a
 * well-formed UTF-8 sequence with '?' (an error message naming a file of a
 * hostile image, or one cut mid-character, as JSON text). Returns how many.
 */
BERTH_API size_t berth_utf8_fix(char *text);

/** "512m", "1g", "2.5GiB" as bytes (docker's --memory syntax). -EINVAL otherwise. */
BERTH_API int berth_parse_bytes(const char *text, int64_t *ret_bytes, berth_err_t *err);
/** @p ns since the epoch as Docker prints times (RFC 3339 with nanoseconds, UTC, Go style). */
BERTH_API void berth_format_time(int64_t ns, char *buf, size_t len);
/** Docker's human duration of @p ns ("Less than a second", "5 minutes", "About an hour"). */
BERTH_API void berth_human_duration(int64_t ns, char *buf, size_t len);
/** "1.5" CPUs as NanoCpus (1500000000). -EINVAL otherwise. */
BERTH_API int berth_parse_cpus(const char *text, int64_t *ret_nanocpus, berth_err_t *err);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_ENGINE_H */
