/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Volumes (volumes.h): the name rule, mount specifications, copy-up merged
 * from layers and confined to them, and the records: idempotent create,
 * in-use refusal, removal of a container's anonymous volumes, and the
 * events each mutation appends in its own transaction. Real LMDB and real
 * directories (whiteouts and trusted.* xattrs need root, as berth does).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "containers.h"
#include "lifecycle.h"
#include "ocispec.h"
#include "store.h"
#include "util.h"
#include "volumes.h"

struct fx {
    char dir[256];
    char root[300];
    berth_store_t *store;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char sd[320];

    snprintf(f->dir, sizeof(f->dir), "%s/berth-vol-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
    snprintf(sd, sizeof(sd), "%s/store", f->root);
    assert_int_equal(berth__mkdir_p(f->root, 0700, NULL), 0);
    assert_int_equal(berth__store_open(sd, NULL, &f->store, NULL), 0);
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

static void path_of(char *buf, size_t len, const struct fx *f, const char *rel)
{
    snprintf(buf, len, "%s/%s", f->dir, rel);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- names ---- */

static void test_volumes_name_rule(void **state)
{
    char longname[300];
    (void)state;
    assert_true(berth__volume_name_is_valid("data"));
    assert_true(berth__volume_name_is_valid("a1"));
    assert_true(berth__volume_name_is_valid("my_vol.v-2"));
    assert_true(berth__volume_name_is_valid("0abc"));
    assert_false(berth__volume_name_is_valid(NULL));
    assert_false(berth__volume_name_is_valid(""));
    assert_false(berth__volume_name_is_valid("a")); /* two characters at least */
    assert_false(berth__volume_name_is_valid("."));
    assert_false(berth__volume_name_is_valid(".."));
    assert_false(berth__volume_name_is_valid("../x"));
    assert_false(berth__volume_name_is_valid("a/b"));
    assert_false(berth__volume_name_is_valid(".hidden"));
    assert_false(berth__volume_name_is_valid("_x"));
    assert_false(berth__volume_name_is_valid("-x"));
    assert_false(berth__volume_name_is_valid("a b"));
    assert_false(berth__volume_name_is_valid("a:b"));
    memset(longname, 'a', 255);
    longname[255] = '\0';
    assert_true(berth__volume_name_is_valid(longname));
    longname[255] = 'a';
    longname[256] = '\0';
    assert_false(berth__volume_name_is_valid(longname));
}

/* ---- mount specifications ---- */

static void expect_bind(const char *spec, const char *type, const char *name, const char *dest,
                        int rw)
{
    json_t *m = NULL;
    berth_err_t err = { 0 };
    int r = berth__mount_parse_bind(spec, &m, &err);
    if (r != 0)
        fail_msg("%s: %d %s", spec, r, err.msg);
    assert_string_equal(json_string_value(json_object_get(m, "Type")), type);
    if (name)
        assert_string_equal(json_string_value(json_object_get(m, "Name")), name);
    assert_string_equal(json_string_value(json_object_get(m, "Destination")), dest);
    assert_int_equal(json_is_true(json_object_get(m, "RW")), rw);
    json_decref(m);
}

static void expect_bind_bad(const char *spec)
{
    json_t *m = NULL;
    berth_err_t err = { 0 };
    if (berth__mount_parse_bind(spec, &m, &err) != -EINVAL)
        fail_msg("%s was accepted", spec);
    assert_null(m);
    assert_non_null(strstr(err.msg, "invalid"));
}

static void test_volumes_parse_bind(void **state)
{
    (void)state;
    expect_bind("data:/data", "volume", "data", "/data", 1);
    expect_bind("data:/data:ro", "volume", "data", "/data", 0);
    expect_bind("data:/data:rw", "volume", "data", "/data", 1);
    expect_bind("/host/dir:/in", "bind", NULL, "/in", 1);
    expect_bind("/host/dir:/in:ro", "bind", NULL, "/in", 0);
    expect_bind_bad("data");
    expect_bind_bad(":/data");
    expect_bind_bad("data:relative");
    expect_bind_bad("data:/a/../b");
    expect_bind_bad("data:/data:rx");
    expect_bind_bad("../x:/data");
    expect_bind_bad("a/b:/data");
    expect_bind_bad("x:/data");
}

static void test_volumes_parse_api(void **state)
{
    json_t *m = NULL, *o;
    berth_err_t err = { 0 };
    (void)state;

    o = json_pack("{s:s, s:s, s:s, s:b, s:{s:b}}", "Type", "volume", "Source", "cache", "Target",
                  "/c", "ReadOnly", 1, "VolumeOptions", "NoCopy", 1);
    assert_int_equal(berth__mount_parse_api(o, &m, &err), 0);
    assert_string_equal(json_string_value(json_object_get(m, "Name")), "cache");
    assert_true(json_is_false(json_object_get(m, "RW")));
    assert_true(json_is_true(json_object_get(m, "_nocopy")));
    json_decref(m);
    json_decref(o);
    /* No source: anonymous. */
    o = json_pack("{s:s, s:s}", "Type", "volume", "Target", "/anon");
    assert_int_equal(berth__mount_parse_api(o, &m, &err), 0);
    assert_true(json_object_get(m, "Name") == NULL || json_is_null(json_object_get(m, "Name")));
    json_decref(m);
    json_decref(o);
    o = json_pack("{s:s, s:s, s:s}", "Type", "bind", "Source", "rel", "Target", "/x");
    assert_int_equal(berth__mount_parse_api(o, &m, &err), -EINVAL);
    json_decref(o);
    o = json_pack("{s:s, s:s, s:s}", "Type", "volume", "Source", "../up", "Target", "/x");
    assert_int_equal(berth__mount_parse_api(o, &m, &err), -EINVAL);
    json_decref(o);
    o = json_pack("{s:s, s:s}", "Type", "tmpfs", "Target", "/x");
    assert_int_equal(berth__mount_parse_api(o, &m, &err), -EINVAL);
    json_decref(o);
    o = json_pack("{s:s, s:s}", "Type", "volume", "Target", "x");
    assert_int_equal(berth__mount_parse_api(o, &m, &err), -EINVAL);
    json_decref(o);
}

/* The record's mounts become bind mounts of their sources, read-only where RW is false. */
static void test_volumes_spec_binds(void **state)
{
    json_t *rec, *spec = NULL, *m, *found = NULL;
    berth_err_t err = { 0 };
    size_t i;
    (void)state;

    rec = json_pack("{s:s, s:{s:[s]}, s:{s:[s]}, s:[{s:s, s:s, s:s, s:s, s:b}]}", "id",
                    "3f2a0000000000000000000000000000000000000000000000000000000000aa", "config",
                    "Cmd", "true", "host_config", "Binds", "vol:/v:ro", "mounts", "Type", "volume",
                    "Name", "vol", "Source", "/r/volumes/vol/_data", "Destination", "/v", "RW", 0);
    assert_int_equal(berth__oci_spec_build(rec, NULL, &spec, &err), 0);
    json_array_foreach (json_object_get(spec, "mounts"), i, m) {
        if (!strcmp(json_string_value(json_object_get(m, "destination")), "/v"))
            found = m;
    }
    assert_non_null(found);
    assert_string_equal(json_string_value(json_object_get(found, "source")),
                        "/r/volumes/vol/_data");
    assert_string_equal(json_string_value(json_array_get(json_object_get(found, "options"), 2)),
                        "ro");
    json_decref(spec);
    /* A mount without an absolute source is a damaged record. */
    json_object_set_new(json_array_get(json_object_get(rec, "mounts"), 0), "Source",
                        json_string("vol"));
    assert_int_equal(berth__oci_spec_build(rec, NULL, &spec, &err), -EINVAL);
    json_decref(rec);
}

/* ---- copy-up ---- */

static void mk(const struct fx *f, const char *rel)
{
    char p[512];
    path_of(p, sizeof(p), f, rel);
    assert_int_equal(berth__mkdir_p(p, 0755, NULL), 0);
}

static void put(const struct fx *f, const char *rel, const char *text)
{
    char p[512];
    path_of(p, sizeof(p), f, rel);
    write_file(p, text);
}

static void read_into(const struct fx *f, const char *rel, char *buf, size_t len)
{
    char p[512];
    FILE *fp;
    size_t n;
    path_of(p, sizeof(p), f, rel);
    fp = fopen(p, "r");
    if (!fp)
        fail_msg("%s missing", rel);
    n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

static void test_volumes_copy_up_merged(void **state)
{
    struct fx *f = *state;
    char low[512], up[512], dst[512], p[512], buf[64];
    const char *layers[2];
    struct stat st;

    /* lower: /data/{keep,gone,dir/old}, owned and moded; upper: whiteout, opaque dir, new file */
    mk(f, "low/data/dir");
    put(f, "low/data/keep", "keep\n");
    put(f, "low/data/gone", "gone\n");
    put(f, "low/data/dir/old", "old\n");
    path_of(p, sizeof(p), f, "low/data/keep");
    assert_int_equal(chown(p, 1234, 5678), 0);
    assert_int_equal(chmod(p, 0640), 0);
    path_of(p, sizeof(p), f, "low/data");
    assert_int_equal(chown(p, 2000, 2000), 0);
    assert_int_equal(chmod(p, 0700), 0);
    mk(f, "up/data/dir");
    /* The topmost layer's directory is the one the container sees. */
    path_of(p, sizeof(p), f, "up/data");
    assert_int_equal(chown(p, 1000, 1000), 0);
    assert_int_equal(chmod(p, 0750), 0);
    assert_int_equal(setxattr(p, "user.berth", "x", 1, 0), 0);
    put(f, "up/data/dir/new", "new\n");
    put(f, "up/data/top", "top\n");
    path_of(p, sizeof(p), f, "up/data/gone");
    assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(0, 0)), 0);
    path_of(p, sizeof(p), f, "up/data/dir");
    assert_int_equal(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
    path_of(p, sizeof(p), f, "up/data/ln");
    assert_int_equal(symlink("/etc", p), 0);
    mk(f, "vol");

    path_of(up, sizeof(up), f, "up");
    path_of(low, sizeof(low), f, "low");
    path_of(dst, sizeof(dst), f, "vol");
    layers[0] = up;
    layers[1] = low;
    assert_int_equal(berth__volume_copy_up(layers, 2, "/data", dst, NULL), 0);

    read_into(f, "vol/keep", buf, sizeof(buf));
    assert_string_equal(buf, "keep\n");
    read_into(f, "vol/top", buf, sizeof(buf));
    assert_string_equal(buf, "top\n");
    read_into(f, "vol/dir/new", buf, sizeof(buf));
    assert_string_equal(buf, "new\n");
    path_of(p, sizeof(p), f, "vol/gone");
    assert_false(exists(p)); /* whited out above */
    path_of(p, sizeof(p), f, "vol/dir/old");
    assert_false(exists(p)); /* the upper dir is opaque */
    path_of(p, sizeof(p), f, "vol/keep");
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_equal(st.st_mode & 07777, 0640);
    /* The volume's root takes the path's owner, mode and xattrs. */
    assert_int_equal(lstat(dst, &st), 0);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(getxattr(dst, "user.berth", buf, sizeof(buf)), 1);
    /* Overlay's own xattrs stay behind. */
    path_of(p, sizeof(p), f, "vol/dir");
    assert_true(getxattr(p, "trusted.overlay.opaque", buf, sizeof(buf)) < 0);
    /* A link is copied as a link, never followed. */
    path_of(p, sizeof(p), f, "vol/ln");
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    path_of(p, sizeof(p), f, "vol/ln/passwd");
    assert_int_equal(readlink(p, buf, sizeof(buf)), -1);
}

static void test_volumes_copy_up_confined(void **state)
{
    struct fx *f = *state;
    char lay[512], dst[512], p[512], out[512];
    const char *layers[1];

    /* Outside the layer: a directory the image must not reach. */
    mk(f, "outside");
    put(f, "outside/secret", "secret\n");
    mk(f, "lay/real");
    path_of(out, sizeof(out), f, "outside");
    /* /data is a link out of the root filesystem; /real/up climbs with "..". */
    path_of(p, sizeof(p), f, "lay/data");
    assert_int_equal(symlink(out, p), 0);
    path_of(p, sizeof(p), f, "lay/real/up");
    assert_int_equal(symlink("../../outside", p), 0);
    mk(f, "vol");
    path_of(lay, sizeof(lay), f, "lay");
    path_of(dst, sizeof(dst), f, "vol");
    layers[0] = lay;

    assert_int_equal(berth__volume_copy_up(layers, 1, "/data", dst, NULL), 0);
    path_of(p, sizeof(p), f, "vol/secret");
    assert_false(exists(p));
    assert_int_equal(berth__volume_copy_up(layers, 1, "/real/up", dst, NULL), 0);
    assert_false(exists(p));
    /* A missing path or a file: nothing to copy, no error. */
    assert_int_equal(berth__volume_copy_up(layers, 1, "/nowhere", dst, NULL), 0);
    put(f, "lay/file", "f\n");
    assert_int_equal(berth__volume_copy_up(layers, 1, "/file", dst, NULL), 0);
    path_of(p, sizeof(p), f, "vol");
    {
        int n = 0;
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", p);
        n = system(cmd);
        assert_int_equal(n, 0);
    }
    /* A path with ".." is refused outright. */
    assert_int_equal(berth__volume_copy_up(layers, 1, "/real/../..", dst, NULL), -EINVAL);
    /* The destination itself may not be a link. */
    path_of(p, sizeof(p), f, "vol-link");
    assert_int_equal(symlink(out, p), 0);
    mk(f, "lay/d");
    put(f, "lay/d/x", "x\n");
    assert_true(berth__volume_copy_up(layers, 1, "/d", p, NULL) < 0);
    path_of(p, sizeof(p), f, "outside/x");
    assert_false(exists(p));
}

static void test_volumes_rootfs_layers(void **state)
{
    char **v = NULL;
    json_t *rec;
    (void)state;

    rec = json_pack("{s:{s:[{s:s, s:s, s:[s, s, s]}]}}", "storage", "mounts", "type", "overlay",
                    "source", "overlay", "options", "lowerdir=/s/l/A:/s/l/B", "upperdir=/s/up",
                    "workdir=/s/w");
    assert_int_equal(berth__rootfs_layers(rec, &v, NULL), 0);
    assert_int_equal(berth__strv_len(v), 3);
    assert_string_equal(v[0], "/s/up");
    assert_string_equal(v[1], "/s/l/A");
    assert_string_equal(v[2], "/s/l/B");
    berth__strv_free(v);
    json_decref(rec);
    rec = json_pack("{s:s}", "rootfs", "/some/dir");
    assert_int_equal(berth__rootfs_layers(rec, &v, NULL), 0);
    assert_int_equal(berth__strv_len(v), 1);
    assert_string_equal(v[0], "/some/dir");
    berth__strv_free(v);
    json_decref(rec);
}

/* ---- records ---- */

struct evcount {
    const char *action;
    int n;
};

static int count_event(const char *key, json_t *doc, void *ud)
{
    struct evcount *c = ud;
    (void)key;
    if (strcmp(json_string_value(json_object_get(doc, "type")), "volume") == 0 &&
        strcmp(json_string_value(json_object_get(doc, "action")), c->action) == 0)
        c->n++;
    return 0;
}

static int events(struct fx *f, const char *action)
{
    berth_txn_t *txn = NULL;
    struct evcount c = { action, 0 };
    assert_int_equal(berth__store_txn_begin(f->store, 0, &txn, NULL), 0);
    assert_int_equal(berth__store_event_walk(txn, 0, count_event, &c, NULL), 0);
    berth__store_txn_abort(txn);
    return c.n;
}

static void test_volumes_create_remove(void **state)
{
    struct fx *f = *state;
    json_t *doc = NULL, *labels = json_pack("{s:s}", "k", "v");
    berth_err_t err = { 0 };
    char data[400], p[512];
    int created = -1;

    assert_int_equal(berth__volume_create(f->store, f->root, "v1", labels, 0, &doc, &created, &err),
                     0);
    assert_int_equal(created, 1);
    snprintf(data, sizeof(data), "%s/volumes/v1/_data", f->root);
    assert_string_equal(json_string_value(json_object_get(doc, "mountpoint")), data);
    assert_true(exists(data));
    json_decref(doc);
    /* Again: the same volume, untouched. */
    snprintf(p, sizeof(p), "%s/keep", data);
    write_file(p, "x\n");
    assert_int_equal(berth__volume_create(f->store, f->root, "v1", NULL, 0, &doc, &created, &err),
                     0);
    assert_int_equal(created, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "labels"), "k")),
                        "v");
    assert_true(exists(p));
    json_decref(doc);
    json_decref(labels);
    assert_int_equal(events(f, "create"), 1);
    /* Bad names and labels leave nothing. */
    assert_int_equal(berth__volume_create(f->store, f->root, "../x", NULL, 0, NULL, NULL, &err),
                     -EINVAL);
    assert_int_equal(berth__volume_create(f->store, f->root, "a/b", NULL, 0, NULL, NULL, &err),
                     -EINVAL);
    labels = json_pack("{s:i}", "k", 1);
    assert_int_equal(berth__volume_create(f->store, f->root, "v2", labels, 0, NULL, NULL, &err),
                     -EINVAL);
    json_decref(labels);
    snprintf(p, sizeof(p), "%s/volumes/v2", f->root);
    assert_false(exists(p));
    assert_int_equal(events(f, "create"), 1);

    /* Anonymous: a random 64-hex name. */
    assert_int_equal(berth__volume_create(f->store, f->root, NULL, NULL, 1, &doc, NULL, &err), 0);
    assert_true(berth__container_id_is_valid(json_string_value(json_object_get(doc, "name"))));
    assert_true(json_is_true(json_object_get(doc, "anonymous")));
    json_decref(doc);

    /* Sizes count the files below, nested ones too. */
    snprintf(p, sizeof(p), "%s/sub", data);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub/y", data);
    write_file(p, "yyy\n");
    assert_int_equal(berth__dir_size(data), 6);
    {
        uint64_t size = 0;
        assert_int_equal(berth__volume_remove(f->store, f->root, "v1", 0, &size, &err), 0);
        assert_int_equal(size, 6);
    }
    assert_false(exists(data));
    assert_int_equal(events(f, "destroy"), 1);
    assert_int_equal(berth__volume_remove(f->store, f->root, "v1", 0, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "no such volume"));
    assert_int_equal(berth__volume_get(f->store, "v1", &doc, &err), -ENOENT);
}

static void test_volumes_in_use(void **state)
{
    struct fx *f = *state;
    berth_err_t err = { 0 };
    json_t *ctr, *doc = NULL, *removed = json_array();
    char id[65], anon[65], p[512];
    berth_txn_t *txn = NULL;

    assert_int_equal(berth__volume_create(f->store, f->root, "named", NULL, 0, NULL, NULL, &err),
                     0);
    assert_int_equal(berth__volume_create(f->store, f->root, NULL, NULL, 1, &doc, NULL, &err), 0);
    snprintf(anon, sizeof(anon), "%s", json_string_value(json_object_get(doc, "name")));
    json_decref(doc);
    assert_int_equal(berth__container_id_new(id, NULL), 0);
    ctr = json_pack("{s:s, s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:b}]}", "id", id,
                    "name", "user", "state", "Status", "created", "mounts", "Type", "volume",
                    "Name", "named", "Destination", "/n", "RW", 1, "Type", "volume", "Name", anon,
                    "Destination", "/a", "RW", 0);
    assert_int_equal(berth__container_create(f->store, ctr, NULL, NULL, NULL), 0);

    /* In use, even by a container that never ran. */
    assert_int_equal(berth__volume_remove(f->store, f->root, "named", 0, NULL, &err), -EBUSY);
    assert_non_null(strstr(err.msg, "volume is in use"));
    assert_non_null(strstr(err.msg, id));

    /* Starting and ending it: "mount" and "unmount" per volume, in the transitions. */
    assert_int_equal(berth__lc_transition(f->store, id, BERTH_OP_START, BERTH_ST_RUNNING, NULL,
                                          "start", NULL, NULL, &err),
                     0);
    assert_int_equal(events(f, "mount"), 2);
    assert_int_equal(berth__lc_transition(f->store, id, BERTH_OP_EXIT, BERTH_ST_EXITED, NULL, "die",
                                          NULL, NULL, &err),
                     0);
    assert_int_equal(events(f, "unmount"), 2);

    /* Removing the container with its anonymous volumes: the named one stays. */
    assert_int_equal(berth__store_txn_begin(f->store, 1, &txn, NULL), 0);
    assert_int_equal(berth__container_delete_in(txn, id, NULL, NULL, NULL), 0);
    assert_int_equal(berth__volume_remove_anonymous_in(txn, ctr, removed, &err), 0);
    assert_int_equal(berth__store_txn_commit(txn, NULL), 0);
    assert_int_equal(json_array_size(removed), 1);
    assert_string_equal(json_string_value(json_array_get(removed, 0)), anon);
    berth__volume_discard(f->root, anon);
    snprintf(p, sizeof(p), "%s/volumes/%s", f->root, anon);
    assert_false(exists(p));
    assert_int_equal(berth__volume_get(f->store, anon, &doc, NULL), -ENOENT);
    assert_int_equal(berth__volume_get(f->store, "named", &doc, NULL), 0);
    json_decref(doc);
    /* Unused now. */
    assert_int_equal(berth__volume_remove(f->store, f->root, "named", 0, NULL, &err), 0);
    json_decref(ctr);
    json_decref(removed);
}

static void test_volumes_crash_leftovers(void **state)
{
    struct fx *f = *state;
    berth_txn_t *txn = NULL;
    char p[512];

    /* A directory without a record (a create that never committed, a removal cut short). */
    snprintf(p, sizeof(p), "%s/volumes/ghost/_data", f->root);
    assert_int_equal(berth__mkdir_p(p, 0755, NULL), 0);
    snprintf(p, sizeof(p), "%s/volumes/ghost/_data/old", f->root);
    write_file(p, "stale\n");
    /* The next create of that name starts empty. */
    assert_int_equal(berth__volume_create(f->store, f->root, "ghost", NULL, 0, NULL, NULL, NULL),
                     0);
    assert_false(exists(p));
    /* Prune's sweep removes what no record names, and keeps what one does. */
    snprintf(p, sizeof(p), "%s/volumes/other/_data", f->root);
    assert_int_equal(berth__mkdir_p(p, 0755, NULL), 0);
    snprintf(p, sizeof(p), "%s/volumes/.trash-0123", f->root);
    assert_int_equal(berth__mkdir_p(p, 0755, NULL), 0);
    assert_int_equal(berth__store_txn_begin(f->store, 1, &txn, NULL), 0);
    assert_int_equal(berth__volume_sweep_in(txn, f->root, NULL), 0);
    berth__store_txn_abort(txn);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/volumes/other", f->root);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/volumes/ghost/_data", f->root);
    assert_true(exists(p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_volumes_name_rule),
        cmocka_unit_test(test_volumes_parse_bind),
        cmocka_unit_test(test_volumes_parse_api),
        cmocka_unit_test(test_volumes_rootfs_layers),
        cmocka_unit_test(test_volumes_spec_binds),
        cmocka_unit_test_setup_teardown(test_volumes_copy_up_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volumes_copy_up_confined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volumes_create_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volumes_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volumes_crash_leftovers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
