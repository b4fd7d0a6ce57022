/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image, tag and layer records: Docker's lookup order, tags that move
 * between images, untag and delete, each with its event.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "images.h"
#include "store.h"
#include "util.h"

#define ID_A "sha256:aaaa000000000000000000000000000000000000000000000000000000000001"
#define ID_B "sha256:bbbb000000000000000000000000000000000000000000000000000000000002"

struct fx {
    char dir[256];
    berth_store_t *store;
};

static int put(berth_store_t *st, const char *id, const char *tag)
{
    berth_txn_t *txn = NULL;
    json_t *doc = json_pack("{ss}", "id", id);
    int r;

    if (tag)
        json_object_set_new(doc, "repo_tags", json_pack("[s]", tag));
    assert_int_equal(berth__store_txn_begin(st, 1, &txn, NULL), 0);
    r = berth__image_put_in(txn, doc, "pull", NULL);
    json_decref(doc);
    if (r < 0) {
        berth__store_txn_abort(txn);
        return r;
    }
    return berth__store_txn_commit(txn, NULL);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    snprintf(f->dir, sizeof(f->dir), "%s/berth-images-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(berth__store_open(f->dir, NULL, &f->store, NULL), 0);
    assert_int_equal(put(f->store, ID_A, "docker.io/library/busybox:latest"), 0);
    assert_int_equal(put(f->store, ID_B, "localhost:5000/app:1"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    berth__store_close(f->store);
    assert_int_equal(berth__rm_rf(f->dir), 0);
    free(f);
    return 0;
}

static const char *resolve(struct fx *f, const char *ref, int *ret_rc, char *msg, size_t len)
{
    static char id[80];
    berth_txn_t *txn = NULL;
    berth_err_t err = { 0 };
    json_t *doc = NULL;

    assert_int_equal(berth__store_txn_begin(f->store, 0, &txn, NULL), 0);
    *ret_rc = berth__image_get_in(txn, ref, &doc, &err);
    berth__store_txn_abort(txn);
    if (msg)
        snprintf(msg, len, "%s", err.msg);
    if (*ret_rc < 0)
        return NULL;
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    return id;
}

static void test_images_lookup_order(void **state)
{
    struct fx *f = *state;
    char msg[512];
    int rc;

    assert_string_equal(resolve(f, ID_A, &rc, NULL, 0), ID_A);
    assert_string_equal(resolve(f, ID_A + 7, &rc, NULL, 0), ID_A);
    assert_string_equal(resolve(f, "busybox", &rc, NULL, 0), ID_A);
    assert_string_equal(resolve(f, "busybox:latest", &rc, NULL, 0), ID_A);
    assert_string_equal(resolve(f, "docker.io/library/busybox", &rc, NULL, 0), ID_A);
    assert_string_equal(resolve(f, "localhost:5000/app:1", &rc, NULL, 0), ID_B);
    assert_string_equal(resolve(f, "bbbb", &rc, NULL, 0), ID_B);
    assert_string_equal(resolve(f, "sha256:aaaa", &rc, NULL, 0), ID_A);
    assert_null(resolve(f, "busybox:1.0", &rc, msg, sizeof(msg)));
    assert_int_equal(rc, -ENOENT);
    assert_string_equal(msg, "no such image: busybox:1.0");
    assert_null(resolve(f, "localhost:5000/app", &rc, msg, sizeof(msg)));
    assert_int_equal(rc, -ENOENT);
}

static void test_images_tag_moves_and_untag(void **state)
{
    struct fx *f = *state;
    berth_txn_t *txn = NULL;
    json_t *doc = NULL;
    int rc;

    /* busybox:latest moves from A to B. */
    assert_int_equal(berth__store_txn_begin(f->store, 1, &txn, NULL), 0);
    assert_int_equal(berth__image_tag_in(txn, ID_B, "docker.io/library/busybox:latest", NULL), 0);
    assert_int_equal(berth__store_txn_commit(txn, NULL), 0);
    assert_string_equal(resolve(f, "busybox", &rc, NULL, 0), ID_B);
    assert_int_equal(berth__store_txn_begin(f->store, 0, &txn, NULL), 0);
    assert_int_equal(berth__image_get_id_in(txn, ID_A, &doc, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "repo_tags")), 0);
    json_decref(doc);
    assert_int_equal(berth__image_get_id_in(txn, ID_B, &doc, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "repo_tags")), 2);
    json_decref(doc);
    berth__store_txn_abort(txn);

    assert_int_equal(berth__store_txn_begin(f->store, 1, &txn, NULL), 0);
    assert_int_equal(berth__image_untag_in(txn, "docker.io/library/busybox:latest", NULL), 0);
    assert_int_equal(berth__image_untag_in(txn, "docker.io/library/busybox:latest", NULL), -ENOENT);
    assert_int_equal(berth__store_txn_commit(txn, NULL), 0);
    assert_null(resolve(f, "busybox", &rc, NULL, 0));
    assert_string_equal(resolve(f, "localhost:5000/app:1", &rc, NULL, 0), ID_B);
}

static void test_images_delete_and_users(void **state)
{
    struct fx *f = *state;
    berth_txn_t *txn = NULL;
    json_t *users = NULL, *c;
    uint64_t n = 0;
    int rc;

    c = json_pack("{sssssss{ss}}", "id",
                  "0000000000000000000000000000000000000000000000000000000000000001", "name", "web",
                  "image_id", ID_A, "state", "Status", "created");
    assert_int_equal(berth__store_txn_begin(f->store, 1, &txn, NULL), 0);
    assert_int_equal(
        berth__store_put(txn, BERTH_DB_CONTAINERS,
                         "0000000000000000000000000000000000000000000000000000000000000001", c, 0,
                         NULL),
        0);
    json_decref(c);
    assert_int_equal(berth__image_users_in(txn, ID_A, &users, NULL), 0);
    assert_int_equal(json_array_size(users), 1);
    json_decref(users);
    assert_int_equal(berth__image_users_in(txn, ID_B, &users, NULL), 0);
    assert_int_equal(json_array_size(users), 0);
    json_decref(users);
    assert_int_equal(berth__image_delete_in(txn, ID_B, NULL), 0);
    assert_int_equal(berth__image_delete_in(txn, ID_B, NULL), -ENOENT);
    assert_int_equal(berth__store_count(txn, BERTH_DB_TAGS, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(berth__store_txn_commit(txn, NULL), 0);
    assert_null(resolve(f, "localhost:5000/app:1", &rc, NULL, 0));
}

static void test_images_invalid_record(void **state)
{
    struct fx *f = *state;
    assert_int_equal(put(f->store, "sha256:short", NULL), -EINVAL);
    assert_int_equal(put(f->store, "../../x", NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_images_lookup_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_tag_moves_and_untag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_delete_and_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_invalid_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
