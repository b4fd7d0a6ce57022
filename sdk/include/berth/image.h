/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/image.h
 * @brief Image sources: resolve a reference and stream manifests, configs
 *        and blobs from where images are kept (an OCI layout, a docker
 *        save archive, a registry).
 *
 * The core owns everything after the bytes arrive: digest verification while
 * streaming, the content store, image metadata and layer unpacking. A source
 * therefore only has to find content by descriptor and stream it; it never
 * needs to trust or parse what it streams, except to resolve references.
 *
 * A *session* is one opened location ("docker://host/repo", a layout
 * directory, an archive file); it lives from open to close and may cache
 * tokens or an archive's table of contents.
 */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include <berth/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_IMAGE_CAP_PULL   (1ull << 0) /**< can read images */
#define BERTH_IMAGE_CAP_PUSH   (1ull << 1) /**< can write images (save, push) */
#define BERTH_IMAGE_CAP_LIST   (1ull << 2) /**< can enumerate the references it holds */
#define BERTH_IMAGE_CAP_REMOTE (1ull << 3) /**< talks to the network (credentials apply) */
/**
 * ABI 1.1: streams of one session may be read concurrently from different
 * threads (while open/resolve/fetch calls stay serialised), so the core
 * downloads layers in parallel.
 */
#define BERTH_IMAGE_CAP_PARALLEL_STREAMS (1ull << 4)

/** An OCI content descriptor. Caller-allocated; strings NUL-terminated. */
typedef struct berth_descriptor {
    uint32_t struct_size;
    uint32_t reserved;
    char media_type[128];
    char digest[80]; /**< "sha256:<64 hex>" */
    int64_t size;    /**< bytes; -1 when the source does not know */
} berth_descriptor_t;

/** Flags for open. */
#define BERTH_IMAGE_OPEN_WRITE 0x1u /**< a write session (ABI 1.1, BERTH_IMAGE_CAP_PUSH) */

/** Where to open a session; borrowed for the call. */
typedef struct berth_image_location {
    uint32_t struct_size;
    uint32_t flags;
    /** The location without its transport prefix ("/srv/layout", "registry.local:5000/app"). */
    const char *location;
    /**
     * Options as a JSON object text: "platform" ({"os","architecture","variant"}),
     * "auth" ({"username","password"} or {"identitytoken"}), "insecure" (true
     * for plain HTTP), "user_agent". Unknown keys are ignored.
     */
    const char *options_json;
} berth_image_location_t;

/** Callback for list: one reference and its descriptor; non-zero stops the walk. */
typedef int (*berth_image_list_fn)(const char *reference, const berth_descriptor_t *desc,
                                   void *userdata);

typedef struct berth_image_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* ABI 1.0 */

    /** Whether the driver can work here (optional). */
    int (*probe)(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err);
    /**
     * Whether this source handles @p location (a path or address without a
     * transport prefix): 0 yes, BERTH_DECLINED no (required). Used to pick a
     * source when the user gave no transport.
     */
    int (*match)(void *priv, const char *location, uint32_t flags);
    /** Open a session (required). */
    int (*open)(void *priv, const berth_image_location_t *loc, uint32_t flags, void **ret_session,
                berth_err_t *err);
    /** Close a session and free it (required). */
    void (*close)(void *priv, void *session);
    /**
     * Resolve @p reference ("repo:tag", "repo@sha256:...", a bare tag or
     * digest for sources whose location names the repository, or NULL for the
     * session's only image) to the descriptor of its manifest or index
     * (required). -ENOENT when the source has no such image.
     */
    int (*resolve)(void *priv, void *session, const char *reference, uint32_t flags,
                   berth_descriptor_t *ret_desc, berth_err_t *err);
    /**
     * Stream the content @p desc names (a manifest, index, config or layer
     * blob) (required). The stream yields the stored bytes unverified; the
     * core checks size and digest. *ret_stream is owned by the caller.
     * @param offset resume from this byte (0 for all); -ESPIPE when the source can't.
     */
    int (*fetch)(void *priv, void *session, const berth_descriptor_t *desc, int64_t offset,
                 uint32_t flags, berth_stream_t **ret_stream, berth_err_t *err);
    /** Enumerate the references a session holds (optional, BERTH_IMAGE_CAP_LIST). */
    int (*list)(void *priv, void *session, uint32_t flags, berth_image_list_fn fn, void *userdata,
                berth_err_t *err);

    /*
     * ABI 1.1: writing (`berth save`, push). A write session is opened with
     * BERTH_IMAGE_OPEN_WRITE; the location is created, and nothing written is
     * visible there until commit succeeds (close without commit discards it).
     * Content arrives children first: layers and config, then their manifest,
     * then any index, so a driver that writes a table of contents (manifest.json)
     * may parse the manifests it was given.
     */

    /**
     * Store one blob (optional, BERTH_IMAGE_CAP_PUSH). @p content yields
     * exactly desc->size bytes the core has verified against desc->digest;
     * the driver reads it to the end but does not close it. Putting the same
     * digest twice is not an error.
     */
    int (*put_blob)(void *priv, void *session, const berth_descriptor_t *desc,
                    berth_stream_t *content, uint32_t flags, berth_err_t *err);
    /**
     * Name a manifest or index already put (optional, BERTH_IMAGE_CAP_PUSH).
     * @p reference is a full normalised name ("docker.io/library/busybox:1.36"),
     * or NULL to list the manifest without a name. May be called several
     * times for one manifest.
     */
    int (*put_ref)(void *priv, void *session, const char *reference, const berth_descriptor_t *desc,
                   uint32_t flags, berth_err_t *err);
    /** Make what the session wrote visible at its location (optional, BERTH_IMAGE_CAP_PUSH). */
    int (*commit)(void *priv, void *session, uint32_t flags, berth_err_t *err);
} berth_image_ops_t;

#define BERTH_IMAGE_OPS_SIZE_1_0 (offsetof(berth_image_ops_t, list) + sizeof(void (*)(void)))
#define BERTH_IMAGE_OPS_SIZE_1_1 (offsetof(berth_image_ops_t, commit) + sizeof(void (*)(void)))

#ifdef __cplusplus
}
#endif

#endif /* BERTH_IMAGE_H */
