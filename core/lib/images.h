/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image metadata in the store (docs/store-format.md):
 *
 *  - `images`  key: the image id, i.e. the config blob's digest
 *              ("sha256:<hex>"); value: the image document below.
 *  - `tags`    key: a full reference ("docker.io/library/busybox:latest");
 *              value {"v":1,"id":<image id>}. A tag names one image; tagging
 *              another image with it moves it.
 *  - `layers`  key: a ChainID; value {"v":1,"chain_id","diff_id","parent"
 *              (ChainID or ""),"size" (unpacked bytes),"driver" (storage)}:
 *              the unpacked snapshots the storage driver holds.
 *
 * An image document:
 *   "v": 1, "id", "target" (descriptor of what was resolved: index or
 *   manifest), "manifest" and "config" (descriptors: "mediaType", "digest",
 *   "size"), "layers" (descriptors plus "diff_id" and "chain_id", base
 *   first), "os", "architecture", "variant", "created" (the config's RFC 3339
 *   text), "size" (unpacked bytes of all layers), "repo_tags" (full
 *   references), "repo_digests" ("repo@sha256:..."), "storage" (driver that
 *   holds the layers), "loaded_ns".
 *
 * Image references resolve like Docker's: a full id ("sha256:<hex>" or the
 * bare hex), then a name (normalised, default tag "latest"; "repo@digest"
 * matches repo_digests), then a unique id prefix of at least one hex digit.
 * None: -ENOENT "no such image: X"; several: -EINVAL "... is ambiguous".
 *
 * Every _in function works inside the caller's transaction; documents
 * returned through ret_* are new references.
 */
#ifndef BERTH_IMAGES_H
#define BERTH_IMAGES_H

#include <jansson.h>

#include <berth/types.h>

#include "store.h"

#define BERTH_IMAGE_RECORD_V 1

/* The image @ref names, in *ret_doc. */
int berth__image_get_in(berth_txn_t *txn, const char *ref, json_t **ret_doc, berth_err_t *err);
/* The image with id @id exactly (no name resolution). */
int berth__image_get_id_in(berth_txn_t *txn, const char *id, json_t **ret_doc, berth_err_t *err);

/*
 * Store @doc (its "id" is the key), creating or replacing it, and point each
 * of its repo_tags at it (a tag that named another image is taken from that
 * image's repo_tags). Appends event image/@action.
 */
int berth__image_put_in(berth_txn_t *txn, json_t *doc, const char *action, berth_err_t *err);

/* Point tag @full_ref (normalised, with a tag) at image @id; event image/tag. */
int berth__image_tag_in(berth_txn_t *txn, const char *id, const char *full_ref, berth_err_t *err);
/* Remove tag @full_ref (from `tags` and its image's repo_tags); event image/untag. */
int berth__image_untag_in(berth_txn_t *txn, const char *full_ref, berth_err_t *err);
/* Delete the image record @id and its tags; event image/delete. */
int berth__image_delete_in(berth_txn_t *txn, const char *id, berth_err_t *err);

/* Every image document, in a new array. */
int berth__image_list_in(berth_txn_t *txn, json_t **ret_array, berth_err_t *err);

/* Layer records. */
int berth__layer_record_get_in(berth_txn_t *txn, const char *chain_id, json_t **ret_doc,
                               berth_err_t *err);
int berth__layer_record_put_in(berth_txn_t *txn, json_t *doc, berth_err_t *err);
int berth__layer_record_del_in(berth_txn_t *txn, const char *chain_id, berth_err_t *err);

/* Ids of the containers whose "image_id" is @id, in a new array (maybe empty). */
int berth__image_users_in(berth_txn_t *txn, const char *id, json_t **ret_ids, berth_err_t *err);

#endif /* BERTH_IMAGES_H */
