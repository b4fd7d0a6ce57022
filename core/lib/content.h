/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content store: blobs (manifests, indexes, configs, layer tars) kept
 * once each under <root>/content, addressed by their sha256 digest.
 *
 *   <root>/content/blobs/sha256/<hex>       verified, read-only (0444) blobs
 *   <root>/content/ingest/<hex>.partial     bytes of a blob still arriving
 *   <root>/content/gc.lock                  flock: shared while an import
 *                                           holds blobs no image names yet,
 *                                           exclusive while garbage collecting
 *
 * A blob enters only through a writer, which hashes the bytes as they arrive
 * and publishes them (fdatasync, rename, fsync of the directory) only when
 * the size and digest match what was expected; a mismatch removes the bytes.
 * An interrupted ingest leaves its .partial file, and the next writer for the
 * same digest resumes after its bytes (re-hashing them first), so an
 * interrupted pull continues where it stopped. Two processes ingesting the
 * same digest serialise on an flock of the partial file.
 *
 * Which blobs are in use is the image metadata's business (images.h);
 * berth__content_walk() lets the collector find the rest.
 *
 * Digests are "sha256:" + 64 lowercase hex (berth__digest_valid() in
 * digest.h); anything else is -EINVAL before a path is built from it. All functions return 0 or a negative errno with a
 * one-line reason in @err (NULL allowed).
 */
#ifndef BERTH_CONTENT_H
#define BERTH_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include <berth/types.h>

typedef struct berth_content berth_content_t;
typedef struct berth_content_writer berth_content_writer_t;

/* Open (creating the directories) the content store under @root. */
int berth__content_open(const char *root, berth_content_t **ret_cs, berth_err_t *err);
void berth__content_close(berth_content_t *cs);
/* The store's directory (<root>/content). */
const char *berth__content_dir(const berth_content_t *cs);

/* Size of a stored blob; -ENOENT when absent. @ret_size may be NULL. */
int berth__content_stat(berth_content_t *cs, const char *digest, int64_t *ret_size,
                        berth_err_t *err);
/* Path of a stored blob (it may not exist). */
int berth__content_path(berth_content_t *cs, const char *digest, char *buf, size_t len,
                        berth_err_t *err);
/* A stream over a stored blob; *ret_stream is owned by the caller (close it). */
int berth__content_reader(berth_content_t *cs, const char *digest, berth_stream_t **ret_stream,
                          berth_err_t *err);
/*
 * The whole blob in a NUL-terminated malloc'd buffer, for manifests and
 * configs: -EFBIG when it is larger than @max bytes.
 */
int berth__content_read_all(berth_content_t *cs, const char *digest, size_t max, char **ret_buf,
                            size_t *ret_len, berth_err_t *err);
/* Remove a stored blob; absent is success. */
int berth__content_remove(berth_content_t *cs, const char *digest, berth_err_t *err);

/* Walk callback: non-zero stops the walk (and is returned). */
typedef int (*berth_content_walk_fn)(const char *digest, int64_t size, int64_t mtime_ns,
                                     void *userdata);
/* Every stored blob, in no particular order. */
int berth__content_walk(berth_content_t *cs, berth_content_walk_fn fn, void *userdata,
                        berth_err_t *err);
/* Remove ingest leftovers older than @older_than_ns (wall clock); ret_count may be NULL. */
int berth__content_ingest_prune(berth_content_t *cs, int64_t older_than_ns, uint64_t *ret_count,
                                uint64_t *ret_bytes, berth_err_t *err);

/*
 * Start (or resume) ingesting blob @digest of @size bytes (-1: unknown).
 * -EEXIST when the blob is already stored (nothing to do). Otherwise
 * *ret_offset is the number of bytes a previous attempt left (already
 * hashed): write from there.
 */
int berth__content_writer_open(berth_content_t *cs, const char *digest, int64_t size,
                               berth_content_writer_t **ret_w, int64_t *ret_offset,
                               berth_err_t *err);
/* Append bytes. -EFBIG when they go past the expected size. */
int berth__content_writer_write(berth_content_writer_t *w, const void *buf, size_t len,
                                berth_err_t *err);
/* Bytes written so far (including the resumed ones). */
int64_t berth__content_writer_offset(const berth_content_writer_t *w);
/*
 * Read back up to @len bytes the writer holds, from @offset (below the
 * offset): how an import that unpacks while it downloads replays what an
 * earlier attempt left. Returns the bytes read, 0 at the end, or a negative
 * errno. The bytes are not verified until commit.
 */
int64_t berth__content_writer_read_at(berth_content_writer_t *w, void *buf, size_t len,
                                      int64_t offset, berth_err_t *err);
/*
 * Verify size and digest and publish the blob. On a mismatch the partial
 * bytes are removed and -EBADMSG says "expected X, got Y". The writer stays
 * to be closed.
 */
int berth__content_writer_commit(berth_content_writer_t *w, berth_err_t *err);
/*
 * Release the writer. Uncommitted bytes are kept for a later resume when
 * @keep_partial, else removed. NULL is allowed.
 */
void berth__content_writer_close(berth_content_writer_t *w, int keep_partial);

/*
 * Copy @src into the store as @digest/@size (both checked). Resumes a partial
 * ingest only when @src can't be restarted, i.e. never: the caller that can
 * resume (a source with offsets) drives the writer itself.
 */
int berth__content_ingest(berth_content_t *cs, const char *digest, int64_t size,
                          berth_stream_t *src, berth_err_t *err);

/* The gc lock: shared by imports, exclusive by the collector (blocking). */
int berth__content_lock(berth_content_t *cs, int exclusive, int *ret_fd, berth_err_t *err);
void berth__content_unlock(int fd);

#endif /* BERTH_CONTENT_H */
