/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapdir: the on-disk snapshot store shared by the vfs and overlay storage
 * drivers (both keep whole snapshots as directories; they differ in what is
 * inside one and in how it is mounted).
 *
 * Layout under the driver's state dir (BERTH_PATH_STATE):
 *
 *   lock                 flock()ed: shared by readers, exclusive by writers,
 *                        so that two berth processes (CLI and daemon) can
 *                        share the store
 *   snapshots/<enc>/     one directory per snapshot; <enc> is the snapshot
 *                        name with ':' written as '+' (see
 *                        storage_snapdir_encode())
 *   snapshots/<enc>/meta the snapshot's facts (kind, parent, creation time,
 *                        cached usage, a driver's ids), a small text file
 *                        ending in an "end" line, so a torn one is told
 *                        from a whole one
 *   tmp/                 work in progress: snapshots being created
 *                        ("new-*"), removed ("rm-*") or committed
 *                        ("commit-*" intent files). Everything here is
 *                        garbage or unfinished business after a crash and is
 *                        resolved by storage_snapdir_recover().
 *
 * Crash safety: a snapshot appears by one rename(2) from tmp/ into
 * snapshots/ after its meta file is written and fsync()ed; it disappears by
 * one rename into tmp/. A commit (rename snapshots/<key> to
 * snapshots/<name> plus a new meta) is announced by an intent file in tmp/
 * first, so recovery can finish or undo it.
 *
 * All functions return 0 or a negative errno with a one-line reason in
 * @err (prefixed with the driver name). None of them takes the lock: the
 * driver brackets each op with storage_snapdir_lock()/_unlock().
 */
#ifndef BERTH_STORAGE_SNAPDIR_H
#define BERTH_STORAGE_SNAPDIR_H

#include <stdint.h>
#include <sys/types.h>

#include <berth/sdk.h>

/** Longest snapshot name (and encoded directory name), excluding the NUL. */
#define SNAPDIR_NAME_MAX 255
/** Room for a driver's chain of ancestor ids (overlay: 500 ids of 8 chars and ':'). */
#define SNAPDIR_CHAIN_MAX 4608

/** Facts kept in snapshots/<enc>/meta. */
struct snapdir_meta {
    char name[SNAPDIR_NAME_MAX + 1];   /* the snapshot's name (checked against the dir) */
    char parent[SNAPDIR_NAME_MAX + 1]; /* "" for a base snapshot */
    uint32_t kind;                     /* BERTH_SNAPSHOT_KIND_* */
    uint32_t flags;                    /* BERTH_SNAPSHOT_READONLY from prepare */
    int64_t created_ns;
    char link[16]; /* a driver's short id for the snapshot (overlay's l/ link), "" for none */
    /* The ancestors' ids, top first, ':'-separated (overlay's lowerdir), "" for none. */
    char chain[SNAPDIR_CHAIN_MAX];
    int has_usage; /* size_bytes/inodes are valid (set at commit: committed trees don't change) */
    uint64_t size_bytes, inodes;
};

struct snapdir;

/*
 * Called for a directory under tmp/ before recovery deletes it, and by
 * storage_snapdir_remove() before deleting a removed snapshot: the driver
 * drops what lives outside the snapshot dir (overlay's l/ link).
 * @dirfd is the snapshot dir (borrowed). Errors are ignored: the dir goes.
 */
typedef void (*snapdir_discard_fn)(struct snapdir *sd, int dirfd, void *ud);
/*
 * Called after snapshot @enc was renamed by a commit (also when recovery
 * finishes one): the driver repoints what refers to the old location.
 */
typedef int (*snapdir_renamed_fn)(struct snapdir *sd, const char *enc, int dirfd, void *ud,
                                  berth_err_t *err);

/* A cached path handed out by diff_dir(), valid until commit/remove of its key. */
struct snapdir_path {
    struct snapdir_path *next;
    char *key;
    char *path;
};

struct snapdir {
    const char *drv; /* driver name for messages ("vfs"), static */
    char *root;      /* the state dir, absolute; owned */
    int rootfd;      /* the state dir */
    int snapfd;      /* snapshots/ */
    int tmpfd;       /* tmp/ */
    int lockfd;      /* lock */
    int lock_depth;  /* nesting of storage_snapdir_lock() within this process */
    snapdir_discard_fn discard;
    snapdir_renamed_fn renamed;
    void *ud;
    struct snapdir_path *paths;
};

/*
 * Open (creating when needed) the store in @root for driver @drv.
 * @discard/@renamed may be NULL; @ud is passed to them. On failure @sd is
 * left closed (storage_snapdir_close() is still allowed).
 */
int storage_snapdir_open(struct snapdir *sd, const char *drv, const char *root,
                         snapdir_discard_fn discard, snapdir_renamed_fn renamed, void *ud,
                         berth_err_t *err);
/*
 * Take the exclusive lock and resolve what a crash left in tmp/ (half-made
 * and half-removed snapshots are deleted, half-done commits finished or
 * undone). Call once after open, when the driver's hooks can run.
 */
int storage_snapdir_recover(struct snapdir *sd, berth_err_t *err);
/* Release fds and memory of a store storage_snapdir_open() was called on. */
void storage_snapdir_close(struct snapdir *sd);

/* flock the store: @exclusive for mutations. Nested calls only count. */
int storage_snapdir_lock(struct snapdir *sd, int exclusive, berth_err_t *err);
void storage_snapdir_unlock(struct snapdir *sd);

/*
 * Check @name ([A-Za-z0-9:._-], 1..255 bytes, not "." or "..") and write its
 * directory name into @enc (':' becomes '+', which names can't contain, so
 * the mapping is one to one). -EINVAL with a reason when invalid.
 */
int storage_snapdir_encode(const struct snapdir *sd, const char *name,
                           char enc[SNAPDIR_NAME_MAX + 1], berth_err_t *err);
/* The reverse; -EINVAL for a directory name no snapshot name maps to. */
int storage_snapdir_decode(const char *enc, char name[SNAPDIR_NAME_MAX + 1]);

/*
 * Read snapshot @enc's meta. -ENOENT when there is no such snapshot, -EBADMSG
 * when its meta is damaged. @ret_dirfd (may be NULL) gets the snapshot dir
 * opened O_DIRECTORY, owned by the caller.
 */
int storage_snapdir_get(struct snapdir *sd, const char *enc, struct snapdir_meta *ret_meta,
                        int *ret_dirfd, berth_err_t *err);

/* Read and check the meta file @file in @dirfd: -ENOENT, -EBADMSG or 0. */
int storage_snapdir_read_meta_at(int dirfd, const char *file, struct snapdir_meta *ret_meta);

/* Write @m to @file in @dirfd: a temp file, fsync, rename. */
int storage_snapdir_write_meta(struct snapdir *sd, int dirfd, const char *file,
                               const struct snapdir_meta *m, berth_err_t *err);

/*
 * Write a small file @name in @dirfd with @data (temp file, rename). @sync
 * fsyncs before the rename.
 */
int storage_snapdir_write_file(struct snapdir *sd, int dirfd, const char *name, const char *data,
                               size_t len, int sync, berth_err_t *err);
/*
 * Read a small file into a malloc()ed NUL-terminated string (*ret_data, owned
 * by the caller). -ENOENT when absent.
 */
int storage_snapdir_read_file(int dirfd, const char *name, size_t max, char **ret_data,
                              size_t *ret_len);

/*
 * Start a new snapshot: an empty directory under tmp/, whose name goes into
 * @ret_tmpname and whose fd into *ret_dirfd (owned by the caller). The caller
 * fills it, writes meta, then publishes it or discards it.
 */
int storage_snapdir_begin(struct snapdir *sd, char ret_tmpname[32], int *ret_dirfd,
                          berth_err_t *err);
/* Rename tmp/<tmpname> to snapshots/<enc>; -EEXIST when that name is taken. */
int storage_snapdir_publish(struct snapdir *sd, const char *tmpname, const char *enc,
                            berth_err_t *err);
/* Delete tmp/<tmpname> (after a failed prepare); calls the discard hook first. */
void storage_snapdir_discard(struct snapdir *sd, const char *tmpname);

/*
 * Commit: snapshots/<key_enc> becomes snapshots/<name_enc> with meta @m
 * (kind committed). The caller checked both names. Durable on return.
 */
int storage_snapdir_commit(struct snapdir *sd, const char *key_enc, const char *name_enc,
                           const struct snapdir_meta *m, berth_err_t *err);

/* Remove snapshot @enc: gone at once (rename into tmp/), then deleted. */
int storage_snapdir_remove(struct snapdir *sd, const char *enc, berth_err_t *err);

/* Whether a snapshot has @name as its parent: 1 yes, 0 no, or a negative errno. */
int storage_snapdir_has_children(struct snapdir *sd, const char *name, berth_err_t *err);

/*
 * Call @fn for each snapshot (directory names that decode and have a readable
 * meta). The entries are read first and @fn runs without the directory open,
 * so @fn may call the driver again. @fn's non-zero return stops the walk and
 * is returned.
 */
typedef int (*snapdir_each_fn)(struct snapdir *sd, const char *enc, const struct snapdir_meta *m,
                               void *ud);
int storage_snapdir_each(struct snapdir *sd, snapdir_each_fn fn, void *ud, berth_err_t *err);

/*
 * du of the tree @name in @dirfd: bytes allocated (st_blocks * 512) and
 * inodes, each inode counted once however many links it has.
 */
int storage_snapdir_usage(struct snapdir *sd, int dirfd, const char *name, uint64_t *ret_bytes,
                          uint64_t *ret_inodes, berth_err_t *err);

/* rm -rf @name in @dirfd without following symlinks; a missing @name is fine. */
int storage_snapdir_rmtree(int dirfd, const char *name);

/*
 * The absolute path <root>/snapshots/<enc>/<sub>, cached for @key and
 * valid until storage_snapdir_forget(@key) or close. NULL on ENOMEM.
 */
const char *storage_snapdir_path(struct snapdir *sd, const char *key, const char *enc,
                                 const char *sub);
void storage_snapdir_forget(struct snapdir *sd, const char *key);

/* Fill @buf with @len random characters from [A-Z0-9]. */
int storage_snapdir_random_id(char *buf, size_t len);

/* Wall clock in ns since the epoch. */
int64_t storage_snapdir_now_ns(void);

/* ---- the storage ops both drivers share, on top of the above ---- */

/* A prepare in progress, between _begin and _end. */
struct snapdir_prep {
    char key_enc[SNAPDIR_NAME_MAX + 1];
    char tmpname[32];
    int dirfd;                       /* the new snapshot's dir, still under tmp/ */
    int parentfd;                    /* the parent's dir, or -1 for a base snapshot */
    struct snapdir_meta meta;        /* written by _end */
    struct snapdir_meta parent_meta; /* valid when parentfd >= 0 */
    int meta_written;                /* storage_snapdir_prepare_write_meta() ran */
};

/*
 * Start prepare(@key, @parent): check the names (-EINVAL), take the
 * exclusive lock, check that @key is free (-EEXIST) and @parent committed
 * (-ENOENT), refuse a size limit (-ENOTSUP: no quota support), create the
 * directory under tmp/ and keep @opts' labels in it. On success the lock is
 * held until storage_snapdir_prepare_end(); the driver fills prep->dirfd.
 */
int storage_snapdir_prepare_begin(struct snapdir *sd, const char *key, const char *parent,
                                  const berth_snapshot_opts_t *opts, uint32_t flags,
                                  struct snapdir_prep *prep, berth_err_t *err);
/*
 * Write prep->meta now (for drivers that must record something, like an id
 * linked from outside the dir, before creating it); _end then doesn't again.
 */
int storage_snapdir_prepare_write_meta(struct snapdir *sd, struct snapdir_prep *prep,
                                       berth_err_t *err);
/*
 * Finish a prepare: with @r == 0 write the meta (unless written) and publish the snapshot;
 * otherwise (or when that fails) delete what was made. Releases the lock
 * and the fds. Returns @r or the publishing error.
 */
int storage_snapdir_prepare_end(struct snapdir *sd, struct snapdir_prep *prep, int r,
                                berth_err_t *err);

/* Open active snapshot @key (-EINVAL, -ENOENT); the caller holds a lock. */
int storage_snapdir_get_active(struct snapdir *sd, const char *key,
                               char ret_enc[SNAPDIR_NAME_MAX + 1], struct snapdir_meta *ret_meta,
                               int *ret_dirfd, berth_err_t *err);

/* commit: the usage of @payload (the snapshot's tree) is recorded with it. */
int storage_snapdir_op_commit(struct snapdir *sd, const char *name, const char *key,
                              const char *payload, berth_err_t *err);
/* remove: -EBUSY while committed @name has children. */
int storage_snapdir_op_remove(struct snapdir *sd, const char *name, berth_err_t *err);
/* stat: usage of @payload, cached for committed snapshots. */
int storage_snapdir_op_stat(struct snapdir *sd, const char *name, const char *payload,
                            berth_snapshot_info_t *ret_info, berth_err_t *err);
/* walk: facts gathered under the lock, @fn called after it is released. */
int storage_snapdir_op_walk(struct snapdir *sd, const char *payload, berth_snapshot_walk_fn fn,
                            void *userdata, berth_err_t *err);
/* diff_dir: the path of active @key's @payload, or NULL. */
const char *storage_snapdir_op_diff_dir(struct snapdir *sd, const char *key, const char *payload);

/*
 * A mount list of one mount ({@type, @source, target "", @options}), all
 * strings copied into one allocation the list's release frees.
 */
int storage_snapdir_mount_list(const char *type, const char *source, uint32_t flags,
                               const char *const *options, uint32_t n_options,
                               berth_mount_list_t **ret_list);

#endif /* BERTH_STORAGE_SNAPDIR_H */
