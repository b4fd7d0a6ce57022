/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Importing an image from an opened image-source session into the engine:
 * the one path behind pull and load.
 *
 *   resolve -> [index: pick the platform] -> manifest -> config -> layer
 *   blobs (in parallel when the source allows) -> unpack each missing layer
 *   into a storage snapshot named by its ChainID -> one write transaction
 *   recording the image and its tags.
 *
 * Every blob goes through the content store, which verifies it; a layer's
 * DiffID is checked against the config while it is unpacked. A failed or
 * interrupted import records no image: blobs already verified stay for the
 * next attempt (an interrupted blob resumes from its partial bytes), unpacked
 * layers stay as snapshots with their layer records, and the collector
 * (image prune) removes what no image ends up using.
 */
#ifndef BERTH_IMAGE_IMPORT_H
#define BERTH_IMAGE_IMPORT_H

#include <berth/engine.h>
#include <berth/sdk.h>

#include "content.h"
#include "plugins.h"

typedef struct berth_import_req {
    berth_driver_t *source;         /* an image-source driver */
    void *session;                  /* an open session of it */
    const char *src_ref;            /* what to resolve in the session (NULL: its only image) */
    char *const *tags;              /* full references to tag the image with; NULL or empty: none */
    const char *repo;               /* "domain/path" for RepoDigests, or NULL */
    const char *action;             /* event action: "pull", "load" */
    const berth_image_opts_t *opts; /* may be NULL */
    int *ret_downloaded;            /* may be NULL; set to 1 when a layer had to be fetched */
} berth_import_req_t;

/* Import; ret_id (may be NULL) gets the image id. */
int berth__image_import(berth_engine_t *e, const berth_import_req_t *req, char ret_id[72],
                        berth_err_t *err);

/*
 * The storage driver images and containers use: the configured default,
 * probed; when the default is "overlay" and overlayfs can't work here, "vfs".
 */
int berth__engine_storage(berth_engine_t *e, berth_driver_t **ret_drv, berth_err_t *err);

/* The engine's content store (opened on first use, owned by the engine). */
int berth__engine_content(berth_engine_t *e, berth_content_t **ret_cs, berth_err_t *err);

/* The host's platform as index entries name it: "linux", "amd64", "" (variant). */
void berth__host_platform(const char **ret_os, const char **ret_arch, const char **ret_variant);

#endif /* BERTH_IMAGE_IMPORT_H */
