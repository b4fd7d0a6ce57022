/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the image sources that read files (oci-layout,
 * docker-archive): digests and media types, byte streams, read access to a
 * layout directory or a tar file, the OCI index.json walk, reference
 * matching, and the staging area and tar writer behind their write sessions.
 *
 * Built as a static library linked into each driver module; nothing here is
 * exported from a module. Conventions are the SDK's: functions return 0 or a
 * negative errno with a one-line reason in the optional last `err`; out
 * parameters are named ret_* and written only on success.
 *
 * Trust: everything read from a location (tar member names, JSON text,
 * digests, paths in manifest.json) is attacker-controlled. Digests are
 * validated before they become paths, member names and paths from JSON are
 * confined to the location (no "..", no absolute paths, links resolved inside
 * the archive only), and JSON documents are read with a size limit.
 */
#ifndef BERTH_IMAGE_COMMON_H
#define BERTH_IMAGE_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/sdk.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void image_freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(image_freep)

static inline void image_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define _cleanup_close_ _cleanup_(image_closep)

static inline void image_json_decrefp(json_t **j)
{
    json_decref(*j);
}
#define _cleanup_json_ _cleanup_(image_json_decrefp)

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _p_ = (p);                                                                   \
        (p) = NULL;                                                                                \
        _p_;                                                                                       \
    })

/* Largest JSON document (index.json, manifest.json, a manifest) read for resolving. */
#define IMAGE_JSON_MAX (16u << 20)
/* Deepest chain of indexes followed from index.json. */
#define IMAGE_INDEX_DEPTH_MAX 8

/* Media types (image-spec media-types.md and the Docker equivalents). */
#define IMAGE_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define IMAGE_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define IMAGE_MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define IMAGE_MT_OCI_LAYER       "application/vnd.oci.image.layer.v1.tar"
#define IMAGE_MT_OCI_LAYER_GZIP  "application/vnd.oci.image.layer.v1.tar+gzip"
#define IMAGE_MT_OCI_LAYER_ZSTD  "application/vnd.oci.image.layer.v1.tar+zstd"
#define IMAGE_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMAGE_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define IMAGE_MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"
#define IMAGE_MT_DOCKER_LAYER    "application/vnd.docker.image.rootfs.diff.tar"
#define IMAGE_MT_DOCKER_LAYER_GZ "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* Annotations naming an image in an index (image-spec annotations.md; containerd, moby). */
#define IMAGE_ANNOT_REF_NAME   "org.opencontainers.image.ref.name"
#define IMAGE_ANNOT_IMAGE_NAME "io.containerd.image.name"

#define IMAGE_OCI_LAYOUT_TEXT "{\"imageLayoutVersion\":\"1.0.0\"}"

/* ---- digests, media types, hashing (image-blob.c) ---- */

/*
 * Check @digest is "sha256:" + 64 or "sha512:" + 128 lowercase hex digits,
 * the only forms that ever become a path. 0, or -EINVAL with the reason.
 */
int image_digest_check(const char *digest, berth_err_t *err);
/* "blobs/<alg>/<hex>" for a digest that passes image_digest_check(). */
int image_digest_path(const char *digest, char *buf, size_t len, berth_err_t *err);

/* 1 when @mt is an OCI index or a Docker manifest list. */
int image_mt_is_index(const char *mt);
/* 1 when @mt is an OCI or Docker schema 2 image manifest. */
int image_mt_is_manifest(const char *mt);

/* Incremental sha256, finished as "sha256:<hex>". */
typedef struct image_hash image_hash_t;
int image_hash_new(image_hash_t **ret, berth_err_t *err);
int image_hash_update(image_hash_t *h, const void *buf, size_t len);
/* Write the digest into @out (at least 72 bytes) and free @h. */
void image_hash_finish(image_hash_t *h, char *out);
void image_hash_free(image_hash_t *h);
int image_hash_buf(const void *buf, size_t len, char *out, berth_err_t *err);
/*
 * Hash @len bytes of @fd from @off (pread; the file offset is untouched) and
 * copy its first bytes into @head (up to @head_len, the rest zeroed), so a
 * caller can sniff compression. -EIO when the file is shorter.
 */
int image_hash_range(int fd, uint64_t off, uint64_t len, char *ret_digest, uint8_t *head,
                     size_t head_len, berth_err_t *err);

/* Compression recognised from a blob's first bytes. */
#define IMAGE_COMP_NONE 0
#define IMAGE_COMP_GZIP 1
#define IMAGE_COMP_ZSTD 2
#define IMAGE_COMP_XZ   3
#define IMAGE_COMP_BZIP 4
int image_sniff_compression(const uint8_t *head, size_t len);

/* ---- streams (image-blob.c) ---- */

/*
 * A stream of @len bytes of @fd from @off, read with pread on a dup of @fd
 * (so it outlives the session that made it and streams are independent of
 * each other: they may be read from different threads).
 */
int image_stream_from_fd(int fd, uint64_t off, uint64_t len, berth_stream_t **ret_stream,
                         berth_err_t *err);
/* A stream over a copy of @data. */
int image_stream_from_mem(const void *data, size_t len, berth_stream_t **ret_stream,
                          berth_err_t *err);

/* ---- tar reading (image-tar.c) ---- */

/* Member kinds in an index. */
#define IMAGE_TAR_FILE    'f'
#define IMAGE_TAR_DIR     'd'
#define IMAGE_TAR_SYMLINK 'l'
#define IMAGE_TAR_LINK    'h'
#define IMAGE_TAR_OTHER   'o'

/*
 * Called for each member of a tar while it is walked; @name is normalised
 * (no "./", no empty or "." components). Return 0 to go on, a positive value
 * to stop the walk early (the walk then returns 0), or a negative errno.
 */
typedef int (*image_tar_visit_fn)(void *userdata, const char *name, int kind, berth_err_t *err);

/*
 * Walk the member headers of the tar at @path (plain or gzip-compressed)
 * without keeping anything: what match() uses. Returns 0, or a negative
 * errno when @path is not a readable tar (-EINVAL for a bad header).
 */
int image_tar_walk_path(const char *path, image_tar_visit_fn fn, void *userdata, berth_err_t *err);

/*
 * The table of contents of an uncompressed tar: each member's normalised
 * name, kind, link target and the offset and size of its data, which is
 * contiguous in the file, so it can be read with pread().
 */
typedef struct image_tar image_tar_t;
/* Index the tar on @fd (borrowed; it must stay open while the index is used). */
int image_tar_index(int fd, image_tar_t **ret_tar, berth_err_t *err);
void image_tar_free(image_tar_t *tar);
/*
 * Find regular file @name, following symbolic and hard links inside the
 * archive (at most 16). -ENOENT when absent, -EINVAL for a name or link that
 * leaves the archive, -ELOOP for too many links.
 */
int image_tar_find(const image_tar_t *tar, const char *name, uint64_t *ret_off, uint64_t *ret_size,
                   berth_err_t *err);
/*
 * Normalise a relative path from an archive or a JSON document: drop "./"
 * and empty components; -EINVAL for "..", absolute paths and empty names.
 */
int image_path_normalize(const char *in, char *buf, size_t len, berth_err_t *err);

/* ---- locations: a layout directory or a tar file (image-loc.c) ---- */

typedef struct image_loc image_loc_t;

/*
 * Open @path: a directory, or a tar file that is indexed once (member name ->
 * data offset and size). A gzip-compressed tar is decompressed first into an
 * unlinked temporary file under $TMPDIR (/tmp when unset), which goes away
 * when the location is freed; zstd, xz and bzip2 are refused with a reason.
 * Member names with ".." components or absolute names refuse the whole tar.
 */
int image_loc_open(const char *path, image_loc_t **ret_loc, berth_err_t *err);
void image_loc_free(image_loc_t *loc);
/* 1 for a tar file, 0 for a directory. */
int image_loc_is_tar(const image_loc_t *loc);
/* The path it was opened with; valid until image_loc_free(). */
const char *image_loc_path(const image_loc_t *loc);
/*
 * 1 when @name is a regular file (after following links inside the location),
 * 0 otherwise.
 */
int image_loc_exists(image_loc_t *loc, const char *name);
/*
 * Find regular file @name (a relative path; ".." and absolute paths are
 * -EINVAL): *ret_fd is a new descriptor the caller closes, the data is
 * *ret_size bytes at *ret_off. -ENOENT when absent.
 */
int image_loc_open_member(image_loc_t *loc, const char *name, int *ret_fd, uint64_t *ret_off,
                          uint64_t *ret_size, berth_err_t *err);
/* Read member @name whole (at most @max bytes, else -EFBIG) into a NUL-terminated new buffer. */
int image_loc_read(image_loc_t *loc, const char *name, size_t max, char **ret_buf, size_t *ret_len,
                   berth_err_t *err);
/* Parse member @name as JSON (at most IMAGE_JSON_MAX bytes): a new reference. */
int image_loc_read_json(image_loc_t *loc, const char *name, json_t **ret_json, berth_err_t *err);
/* Stream member @name from byte @offset (-EINVAL past its end). */
int image_loc_stream(image_loc_t *loc, const char *name, int64_t offset,
                     berth_stream_t **ret_stream, berth_err_t *err);
/*
 * Stream blob @desc ("blobs/<alg>/<hex>") from @offset. The digest is checked
 * before it is used in a path; a blob whose size disagrees with a known
 * desc->size is -EIO.
 */
int image_loc_fetch_blob(image_loc_t *loc, const berth_descriptor_t *desc, int64_t offset,
                         berth_stream_t **ret_stream, berth_err_t *err);
/* Read blob @desc whole, checking its size and digest: for documents parsed to resolve. */
int image_loc_read_blob(image_loc_t *loc, const berth_descriptor_t *desc, char **ret_buf,
                        size_t *ret_len, berth_err_t *err);

/* ---- JSON descriptors (image-oci.c) ---- */

/*
 * Fill @ret from a descriptor object: mediaType (a string), digest (checked
 * with image_digest_check()), size (an integer >= 0). -EINVAL naming the bad field.
 */
int image_desc_from_json(const json_t *obj, berth_descriptor_t *ret, berth_err_t *err);
/* {"mediaType","digest","size"}: a new reference, NULL when out of memory. */
json_t *image_desc_to_json(const berth_descriptor_t *desc);

/* ---- references (image-ref.c) ---- */

#define IMAGE_REF_MAX 512

/*
 * The full form of @ref the way the docker CLI normalises it:
 * "busybox" -> "docker.io/library/busybox:latest", "team/app:1" ->
 * "docker.io/team/app:1", "localhost:5000/app" -> "localhost:5000/app:latest";
 * a digest ("@sha256:...") is kept and no default tag is added then.
 * -EINVAL when @ref is not a name (empty, bad characters, a bare digest).
 */
int image_ref_normalize(const char *ref, char *buf, size_t len);
/* The familiar form of a full name: "docker.io/library/busybox:latest" -> "busybox:latest". */
int image_ref_familiar(const char *full, char *buf, size_t len);
/* The tag of a full name into @buf ("" when it has none). */
int image_ref_tag(const char *full, char *buf, size_t len);
/* The repository of a full name ("docker.io/library/busybox"), in familiar form when @familiar. */
int image_ref_repo(const char *full, int familiar, char *buf, size_t len);
/*
 * The digest a reference selects, or NULL: "sha256:<hex>" and
 * "name@sha256:<hex>" select by digest.
 */
const char *image_ref_digest(const char *ref);
/*
 * Whether user reference @ref names the image called @name (an annotation or
 * a RepoTag): the same string, or the same normalised full name.
 */
int image_ref_equal(const char *ref, const char *name);

/* ---- the OCI index.json walk (image-oci.c) ---- */

typedef struct image_oci_entry {
    berth_descriptor_t desc;
    char *ref_name;   /* org.opencontainers.image.ref.name, or NULL */
    char *image_name; /* io.containerd.image.name, or NULL */
    /* 1 when this entry is an image of its own for list() and resolve(NULL). */
    int image;
} image_oci_entry_t;

typedef struct image_oci_index {
    image_oci_entry_t *entries; /* every descriptor reached from index.json, parents first */
    size_t n;
} image_oci_index_t;

/*
 * Read index.json and the indexes it nests (depth IMAGE_INDEX_DEPTH_MAX).
 * An index entry without a name whose nested index names images stands for
 * those images; otherwise each top-level entry is one image. A nested index
 * missing from blobs/ is allowed (image-layout.md lets blobs be absent) and
 * counts as an image of its own.
 */
int image_oci_index_load(image_loc_t *loc, image_oci_index_t **ret_index, berth_err_t *err);
void image_oci_index_free(image_oci_index_t *idx);
/*
 * Resolve @ref as image-layout readers do (see the drivers' README): NULL ->
 * the only image (-EINVAL when there are several); "sha256:..." or
 * "name@sha256:..." -> the entry with that digest; otherwise the entry whose
 * io.containerd.image.name or org.opencontainers.image.ref.name names @ref
 * (a bare tag like "latest" matches ref names too). -ENOENT naming @where when
 * nothing matches, -EINVAL when different images match.
 */
int image_oci_resolve(const image_oci_index_t *idx, const char *where, const char *ref,
                      berth_descriptor_t *ret_desc, berth_err_t *err);
/* Call @fn for each named image: the image name when present, else the ref name. */
int image_oci_list(const image_oci_index_t *idx, berth_image_list_fn fn, void *userdata);

/* ---- writing (image-write.c) ---- */

/*
 * Make a fresh staging directory next to @target (".<base>.berth-XXXXXX" in
 * its directory), so a final rename() stays on one filesystem.
 */
int image_stage_dir_new(const char *target, char *ret_dir, size_t len, berth_err_t *err);
/* Remove a tree this session created (a staging dir); errors are ignored. */
void image_rmtree(const char *dir);

/*
 * Blob store of a write session rooted at @root (a layout directory: blobs go
 * to <root>/blobs/<alg>/<hex>). Remembers which files and directories it
 * created, so discard() undoes exactly that.
 */
typedef struct image_stage image_stage_t;
int image_stage_new(const char *root, image_stage_t **ret_stage, berth_err_t *err);
/* discard unless image_stage_keep() was called, and free. NULL allowed. */
void image_stage_free(image_stage_t *st);
/* Keep what was written (after a successful commit). */
void image_stage_keep(image_stage_t *st);
const char *image_stage_root(const image_stage_t *st);
/*
 * Store blob @desc from @content (exactly desc->size bytes, else -EIO): written
 * to a temporary name, synced, then renamed. A blob already present is read
 * to the end and kept as it is.
 */
int image_stage_put(image_stage_t *st, const berth_descriptor_t *desc, berth_stream_t *content,
                    berth_err_t *err);
/* 1 when blob @digest is in the store. */
int image_stage_has(image_stage_t *st, const char *digest);
/* Read blob @digest (at most IMAGE_JSON_MAX bytes) to parse it. */
int image_stage_read(image_stage_t *st, const char *digest, char **ret_buf, size_t *ret_len,
                     berth_err_t *err);
/* Write @len bytes as <dir>/<name> through a synced temporary file and rename(). */
int image_write_file(const char *dir, const char *name, const void *data, size_t len,
                     berth_err_t *err);
/* json_dumps(@doc) written with image_write_file(), with a trailing newline. */
int image_write_json(const char *dir, const char *name, const json_t *doc, berth_err_t *err);

/* One member of a tar to write: a directory, a file copied from @src_path, or @data. */
typedef struct image_tar_item {
    char name[200];
    int is_dir;
    const char *src_path; /* borrowed; NULL when @data is used */
    const char *data;     /* borrowed */
    size_t len;
} image_tar_item_t;

/* A growing list of tar members; copies of source paths are owned by the list. */
typedef struct image_tar_list {
    image_tar_item_t *items;
    size_t n;
    char **owned;
    size_t n_owned;
} image_tar_list_t;
/* Add a member: a directory (@src_path and @data NULL), a copy of file @src_path, or @data. */
int image_tar_list_add(image_tar_list_t *list, const char *name, int is_dir, const char *src_path,
                       const char *data, size_t len, berth_err_t *err);
/* Add "blobs/", "blobs/<alg>/" and every blob in @st, sorted by name. */
int image_tar_list_add_blobs(image_tar_list_t *list, image_stage_t *st, berth_err_t *err);
void image_tar_list_release(image_tar_list_t *list);

/*
 * Write the members in order as an uncompressed tar (pax restricted, mtime 0,
 * owner 0:0, so equal content gives equal bytes) into a temporary file next
 * to @out_path, sync it and rename it over @out_path.
 */
int image_tar_write(const char *out_path, const image_tar_item_t *items, size_t n,
                    berth_err_t *err);

#endif /* BERTH_IMAGE_COMMON_H */
