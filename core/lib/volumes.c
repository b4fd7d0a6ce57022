/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Volume records and directories, mount specifications and copy-up
 * (contract and crash rules in volumes.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "containers.h"
#include "volumes.h"
#include "util.h"

static int name_char(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return !first && (c == '_' || c == '.' || c == '-');
}

int berth__volume_name_is_valid(const char *name)
{
    size_t i;

    if (!name || !name[0] || !name[1])
        return 0;
    for (i = 0; name[i]; i++)
        if (i >= BERTH_VOLUME_NAME_MAX || !name_char(name[i], i == 0))
            return 0;
    return 1;
}

static int bad_name(const char *name, berth_err_t *err)
{
    return berth_err_set(err, -EINVAL,
                         "invalid volume name \"%s\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, "
                         "at least two characters",
                         name);
}

static int random_hex(char *buf, size_t nbytes, berth_err_t *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t got = 0;

    if (nbytes > sizeof(raw))
        nbytes = sizeof(raw);
    while (got < nbytes) {
        ssize_t n = getrandom(raw + got, nbytes - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_err_set(err, -errno, "getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    for (size_t i = 0; i < nbytes; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 0xf];
    }
    buf[2 * nbytes] = '\0';
    return 0;
}

static int vol_path(char *buf, size_t len, const char *root, const char *name, const char *tail,
                    berth_err_t *err)
{
    if (snprintf(buf, len, "%s/volumes/%s%s", root, name, tail) >= (int)len)
        return berth_err_set(err, -ENAMETOOLONG, "volume path too long");
    return 0;
}

/* Everything at @dir goes, by way of a .trash name so that the name is free at once. */
static void discard_dir(const char *root, const char *dir)
{
    char trash[PATH_MAX], rnd[17];

    if (random_hex(rnd, 8, NULL) == 0 &&
        snprintf(trash, sizeof(trash), "%s/volumes/.trash-%s", root, rnd) < (int)sizeof(trash) &&
        rename(dir, trash) == 0)
        berth__rm_rf(trash);
    else
        berth__rm_rf(dir);
}

static int volume_create_in(berth_txn_t *txn, const char *root, const char *name, json_t *labels,
                            int anonymous, json_t **ret_doc, int *ret_created, berth_err_t *err)
{
    _cleanup_json_ json_t *doc = NULL, *attrs = json_pack("{s:s}", "driver", "local");
    char dir[PATH_MAX], data[PATH_MAX];
    int r;

    r = berth__store_get(txn, BERTH_DB_VOLUMES, name, &doc, err);
    if (r == 0) {
        if (ret_created)
            *ret_created = 0;
        if (ret_doc)
            *ret_doc = TAKE_PTR(doc);
        return 0;
    }
    if (r != -ENOENT)
        return r;
    if ((r = vol_path(dir, sizeof(dir), root, name, "", err)) < 0 ||
        (r = vol_path(data, sizeof(data), root, name, "/_data", err)) < 0)
        return r;
    /* A directory without a record is a crash's leftover (volumes.h): its data was let go. */
    if (access(dir, F_OK) == 0)
        discard_dir(root, dir);
    if ((r = berth__mkdir_p(dir, 0701, err)) < 0)
        return r;
    if (mkdir(data, 0755) < 0 && errno != EEXIST)
        return berth_err_set(err, -errno, "mkdir %s: %s", data, strerror(errno));
    doc = json_pack(
        "{s:i, s:s, s:s, s:s, s:I, s:o, s:{}, s:b}", "v", BERTH_VOLUME_RECORD_V, "name", name,
        "driver", "local", "mountpoint", data, "created_ns", (json_int_t)berth__now_ns(), "labels",
        labels ? json_deep_copy(labels) : json_object(), "options", "anonymous", anonymous);
    if (!doc || !attrs)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_put(txn, BERTH_DB_VOLUMES, name, doc, BERTH_PUT_NOOVERWRITE, err)) < 0 ||
        (r = berth__store_event_append(txn, "volume", "create", name, attrs, NULL, err)) < 0)
        return r;
    if (ret_created)
        *ret_created = 1;
    if (ret_doc)
        *ret_doc = TAKE_PTR(doc);
    return 0;
}

int berth__volume_create(berth_store_t *store, const char *root, const char *name, json_t *labels,
                         int anonymous, json_t **ret_doc, int *ret_created, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *doc = NULL;
    char gen[65], dir[PATH_MAX];
    const char *k;
    json_t *v;
    int r, created = 0;

    if (name && !berth__volume_name_is_valid(name))
        return bad_name(name, err);
    if (labels && !json_is_object(labels))
        return berth_err_set(err, -EINVAL, "volume labels must be an object");
    json_object_foreach (labels, k, v)
        if (!json_is_string(v))
            return berth_err_set(err, -EINVAL, "volume label \"%s\" must be a string", k);
    if (!name) {
        if ((r = random_hex(gen, 32, err)) < 0)
            return r;
        name = gen;
    }
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    /* The directory is made while the writer lock is held: prune never sees it half made. */
    if ((r = volume_create_in(txn, root, name, labels, anonymous, &doc, &created, err)) < 0)
        goto undo;
    if ((r = berth__store_txn_commit(TAKE_PTR(txn), err)) < 0)
        goto undo;
    if (ret_created)
        *ret_created = created;
    if (ret_doc)
        *ret_doc = TAKE_PTR(doc);
    return 0;
undo:
    /* Only a directory this call made; an existing volume's stays. */
    if (created && vol_path(dir, sizeof(dir), root, name, "", NULL) == 0)
        berth__rm_rf(dir);
    return r;
}

int berth__volume_get(berth_store_t *store, const char *name, json_t **ret_doc, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int r;

    if (!name || !*name || strchr(name, '/'))
        return berth_err_set(err, -ENOENT, "no such volume: %s", name ? name : "");
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0)
        return r;
    r = berth__store_get(txn, BERTH_DB_VOLUMES, name, ret_doc, err);
    if (r == -ENOENT)
        return berth_err_set(err, r, "no such volume: %s", name);
    return r;
}

static int list_visit(const char *key, json_t *doc, void *userdata)
{
    (void)key;
    return json_array_append(userdata, doc) < 0 ? -ENOMEM : 0;
}

int berth__volume_list(berth_store_t *store, json_t **ret_array, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *arr = json_array();
    int r;

    if (!arr)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_txn_begin(store, 0, &txn, err)) < 0)
        return r;
    if ((r = berth__store_walk(txn, BERTH_DB_VOLUMES, NULL, list_visit, arr, err)) < 0)
        return r;
    *ret_array = TAKE_PTR(arr);
    return 0;
}

struct users_ctx {
    const char *name; /* NULL: count every volume */
    json_t *out;      /* ids (array) or counts (object) */
};

static int users_visit(const char *key, json_t *doc, void *userdata)
{
    struct users_ctx *u = userdata;
    json_t *m;
    size_t i;

    json_array_foreach (json_object_get(doc, "mounts"), i, m) {
        const char *n = json_string_value(json_object_get(m, "Name"));
        const char *type = json_string_value(json_object_get(m, "Type"));
        if (!n || !type || strcmp(type, "volume") != 0)
            continue;
        if (u->name && strcmp(n, u->name) == 0) {
            json_array_append_new(u->out, json_string(key));
            break;
        }
        if (!u->name)
            json_object_set_new(u->out, n,
                                json_integer(json_integer_value(json_object_get(u->out, n)) + 1));
    }
    return 0;
}

int berth__volume_users_in(berth_txn_t *txn, const char *name, json_t **ret_ids, berth_err_t *err)
{
    struct users_ctx u = { name, json_array() };
    int r;

    if (!u.out)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_walk(txn, BERTH_DB_CONTAINERS, NULL, users_visit, &u, err)) < 0) {
        json_decref(u.out);
        return r;
    }
    *ret_ids = u.out;
    return 0;
}

int berth__volume_refcounts_in(berth_txn_t *txn, json_t **ret_counts, berth_err_t *err)
{
    struct users_ctx u = { NULL, json_object() };
    int r;

    if (!u.out)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((r = berth__store_walk(txn, BERTH_DB_CONTAINERS, NULL, users_visit, &u, err)) < 0) {
        json_decref(u.out);
        return r;
    }
    *ret_counts = u.out;
    return 0;
}

/* Bytes below the directory @fd (closed here), at most 256 levels deep. */
static uint64_t size_below(int fd, unsigned depth)
{
    DIR *d = fdopendir(fd);
    struct dirent *de;
    uint64_t total = 0;

    if (!d) {
        close(fd);
        return 0;
    }
    while ((de = readdir(d))) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = depth < 256 ? openat(dirfd(d), de->d_name,
                                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                                  : -1;
            if (sub >= 0)
                total += size_below(sub, depth + 1);
        } else {
            total += (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return total;
}

uint64_t berth__dir_size(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? 0 : size_below(fd, 0);
}

int berth__volume_remove(berth_store_t *store, const char *root, const char *name, uint32_t flags,
                         uint64_t *ret_size, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *doc = NULL, *users = NULL;
    _cleanup_json_ json_t *attrs = json_pack("{s:s}", "driver", "local");
    char dir[PATH_MAX];
    int r;

    if (!attrs)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (!name || !berth__volume_name_is_valid(name))
        return berth_err_set(err, -ENOENT, "no such volume: %s", name ? name : "");
    if ((r = vol_path(dir, sizeof(dir), root, name, "", err)) < 0)
        return r;
    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    r = berth__store_get(txn, BERTH_DB_VOLUMES, name, &doc, err);
    if (r == -ENOENT)
        return berth_err_set(err, r, "no such volume: %s", name);
    if (r < 0)
        return r;
    if ((flags & BERTH__VOLUME_RM_ANON_ONLY) && !json_is_true(json_object_get(doc, "anonymous")))
        return 1;
    if ((r = berth__volume_users_in(txn, name, &users, err)) < 0)
        return r;
    if (json_array_size(users) > 0 && !(flags & BERTH__VOLUME_RM_FORCE)) {
        _cleanup_free_ char *ids = json_dumps(users, JSON_COMPACT);
        return berth_err_set(err, -EBUSY, "remove %s: volume is in use - %s", name,
                             ids ? ids : "[]");
    }
    if ((r = berth__store_del(txn, BERTH_DB_VOLUMES, name, err)) < 0 ||
        (r = berth__store_event_append(txn, "volume", "destroy", name, attrs, NULL, err)) < 0)
        return r;
    if ((r = berth__store_txn_commit(TAKE_PTR(txn), err)) < 0)
        return r;
    /* The record is gone: the directory follows (a crash here leaves it to the next prune). */
    if (ret_size)
        *ret_size = berth__dir_size(dir);
    discard_dir(root, dir);
    return 0;
}

int berth__volume_remove_anonymous_of(berth_store_t *store, const char *root, json_t *record,
                                      berth_err_t *err)
{
    json_t *m;
    size_t i;
    int first = 0;

    json_array_foreach (json_object_get(record, "mounts"), i, m) {
        const char *n = json_string_value(json_object_get(m, "Name"));
        const char *type = json_string_value(json_object_get(m, "Type"));
        berth_err_t e = { 0 };
        int r;
        if (!n || !type || strcmp(type, "volume") != 0)
            continue;
        r = berth__volume_remove(store, root, n, BERTH__VOLUME_RM_ANON_ONLY, NULL, &e);
        /* Still used by another container, or already gone: nothing to do, as in Docker. */
        if (r < 0 && r != -EBUSY && r != -ENOENT && first == 0) {
            first = r;
            if (err)
                *err = e;
        }
    }
    return first;
}

int berth__volume_remove_anonymous_in(berth_txn_t *txn, json_t *record, json_t *removed,
                                      berth_err_t *err)
{
    json_t *m;
    size_t i;
    int r;

    json_array_foreach (json_object_get(record, "mounts"), i, m) {
        const char *n = json_string_value(json_object_get(m, "Name"));
        const char *type = json_string_value(json_object_get(m, "Type"));
        _cleanup_json_ json_t *doc = NULL, *users = NULL;
        _cleanup_json_ json_t *attrs = json_pack("{s:s}", "driver", "local");
        if (!n || !type || strcmp(type, "volume") != 0)
            continue;
        r = berth__store_get(txn, BERTH_DB_VOLUMES, n, &doc, err);
        if (r == -ENOENT)
            continue;
        if (r < 0)
            return r;
        if (!json_is_true(json_object_get(doc, "anonymous")))
            continue;
        if ((r = berth__volume_users_in(txn, n, &users, err)) < 0)
            return r;
        if (json_array_size(users) > 0)
            continue;
        if (!attrs)
            return berth_err_set(err, -ENOMEM, "out of memory");
        if ((r = berth__store_del(txn, BERTH_DB_VOLUMES, n, err)) < 0 ||
            (r = berth__store_event_append(txn, "volume", "destroy", n, attrs, NULL, err)) < 0)
            return r;
        if (json_array_append_new(removed, json_string(n)) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

int berth__volume_mount_events_in(berth_txn_t *txn, json_t *record, const char *action,
                                  berth_err_t *err)
{
    const char *id = json_string_value(json_object_get(record, "id"));
    json_t *m;
    size_t i;
    int r;

    json_array_foreach (json_object_get(record, "mounts"), i, m) {
        const char *n = json_string_value(json_object_get(m, "Name"));
        const char *type = json_string_value(json_object_get(m, "Type"));
        _cleanup_json_ json_t *attrs = NULL;
        if (!n || !type || strcmp(type, "volume") != 0)
            continue;
        attrs = json_pack("{s:s, s:O, s:s, s:s, s:s}", "container", id ? id : "", "destination",
                          json_object_get(m, "Destination"), "driver", "local", "propagation", "",
                          "read/write", json_is_false(json_object_get(m, "RW")) ? "false" : "true");
        if (!attrs)
            return berth_err_set(err, -ENOMEM, "out of memory");
        if ((r = berth__store_event_append(txn, "volume", action, n, attrs, NULL, err)) < 0)
            return r;
    }
    return 0;
}

void berth__volume_discard(const char *root, const char *name)
{
    char dir[PATH_MAX];

    if (berth__volume_name_is_valid(name) && vol_path(dir, sizeof(dir), root, name, "", NULL) == 0)
        discard_dir(root, dir);
}

int berth__volume_sweep_in(berth_txn_t *txn, const char *root, berth_err_t *err)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int r;

    if (snprintf(dir, sizeof(dir), "%s/volumes", root) >= (int)sizeof(dir))
        return berth_err_set(err, -ENAMETOOLONG, "volume path too long");
    if (!(d = opendir(dir)))
        return errno == ENOENT ? 0 : berth_err_set(err, -errno, "%s: %s", dir, strerror(errno));
    while ((de = readdir(d))) {
        _cleanup_json_ json_t *doc = NULL;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (strncmp(de->d_name, ".trash-", 7) != 0) {
            r = berth__store_get(txn, BERTH_DB_VOLUMES, de->d_name, &doc, NULL);
            if (r != -ENOENT)
                continue;
        }
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path))
            berth__rm_rf(path);
    }
    closedir(d);
    return 0;
}

/* ---- mount specifications ---- */

static int dest_is_valid(const char *d)
{
    if (!d || d[0] != '/')
        return 0;
    for (const char *p = d; (p = strstr(p, "..")); p += 2)
        if ((p == d || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return 0;
    return 1;
}

static json_t *mount_new(const char *type, const char *name, const char *source, const char *dest,
                         const char *mode, int rw)
{
    int vol = strcmp(type, "volume") == 0;
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:b, s:s}", "Type", type, "Name", name,
                     "Source", source ? source : "", "Destination", dest, "Driver",
                     vol ? "local" : "", "Mode", mode, "RW", rw, "Propagation",
                     vol ? "" : "rprivate");
}

int berth__mount_parse_bind(const char *spec, json_t **ret_mount, berth_err_t *err)
{
    _cleanup_free_ char *copy = spec ? strdup(spec) : NULL;
    char *src, *dst, *mode;
    json_t *m;
    int rw = 1;

    if (!copy)
        return berth_err_set(err, -EINVAL, "invalid mount: not a string");
    src = copy;
    dst = strchr(src, ':');
    if (!dst || dst == src)
        return berth_err_set(err, -EINVAL, "invalid mount '%s': want SRC:DST[:ro]", spec);
    *dst++ = '\0';
    mode = strchr(dst, ':');
    if (mode)
        *mode++ = '\0';
    if (!dest_is_valid(dst))
        return berth_err_set(err, -EINVAL,
                             "invalid mount '%s': the destination must be an absolute path "
                             "without '..'",
                             spec);
    if (mode && strcmp(mode, "ro") == 0)
        rw = 0;
    else if (mode && *mode && strcmp(mode, "rw") != 0)
        return berth_err_set(err, -EINVAL, "invalid mount '%s': unknown mode '%s'", spec, mode);
    if (src[0] != '/' && !berth__volume_name_is_valid(src))
        return berth_err_set(err, -EINVAL,
                             "invalid mount '%s': \"%s\" is neither an absolute path nor a valid "
                             "volume name",
                             spec, src);
    m = src[0] == '/' ? mount_new("bind", NULL, src, dst, mode ? mode : "", rw)
                      : mount_new("volume", src, NULL, dst, mode ? mode : "z", rw);
    if (!m)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_mount = m;
    return 0;
}

int berth__mount_parse_api(json_t *o, json_t **ret_mount, berth_err_t *err)
{
    const char *type = json_string_value(json_object_get(o, "Type"));
    const char *src = json_string_value(json_object_get(o, "Source"));
    const char *dst = json_string_value(json_object_get(o, "Target"));
    json_t *vo = json_object_get(o, "VolumeOptions"), *labels = json_object_get(vo, "Labels");
    int rw = !json_is_true(json_object_get(o, "ReadOnly"));
    json_t *m;

    if (!json_is_object(o) || !type)
        return berth_err_set(err, -EINVAL, "invalid mount: Type is required");
    if (!dest_is_valid(dst))
        return berth_err_set(err, -EINVAL,
                             "invalid mount config: Target \"%s\" must be an absolute path "
                             "without '..'",
                             dst ? dst : "");
    if (src && !*src)
        src = NULL;
    if (strcmp(type, "bind") == 0) {
        if (!src || src[0] != '/')
            return berth_err_set(err, -EINVAL,
                                 "invalid mount config for type \"bind\": the source must be an "
                                 "absolute path");
        m = mount_new("bind", NULL, src, dst, "", rw);
    } else if (strcmp(type, "volume") == 0) {
        if (src && !berth__volume_name_is_valid(src))
            return bad_name(src, err);
        if (labels && !json_is_object(labels))
            return berth_err_set(err, -EINVAL, "invalid mount config: labels must be an object");
        m = mount_new("volume", src, NULL, dst, "z", rw);
        if (m && json_is_true(json_object_get(vo, "NoCopy")))
            json_object_set_new(m, "_nocopy", json_true());
        if (m && labels)
            json_object_set(m, "_labels", labels);
    } else {
        return berth_err_set(err, -EINVAL,
                             "invalid mount config: mount type \"%s\" is not supported", type);
    }
    if (!m)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_mount = m;
    return 0;
}

/* ---- copy-up ---- */

#define OVL_XATTR_PREFIX "trusted.overlay."

static int is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static int is_opaque(int dirfd)
{
    char v[4];
    ssize_t n = fgetxattr(dirfd, OVL_XATTR_PREFIX "opaque", v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

/* Copy the xattrs of @src (an fd, or @dirfd/@name without following) to @dst the same way. */
static void copy_xattrs(int src, int dst)
{
    char names[4096], value[4096];
    ssize_t n = flistxattr(src, names, sizeof(names));

    for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
        const char *k = names + off;
        ssize_t vl;
        if (strncmp(k, OVL_XATTR_PREFIX, strlen(OVL_XATTR_PREFIX)) == 0)
            continue;
        vl = fgetxattr(src, k, value, sizeof(value));
        if (vl >= 0)
            fsetxattr(dst, k, value, (size_t)vl, 0);
    }
}

/* Owner, mode, times and xattrs of @st (and @srcfd) onto @fd. */
static int copy_meta(int fd, int srcfd, const struct stat *st, berth_err_t *err)
{
    struct timespec ts[2] = { st->st_atim, st->st_mtim };

    if (fchown(fd, st->st_uid, st->st_gid) < 0)
        return berth_err_set(err, -errno, "copy-up: chown: %s", strerror(errno));
    /* After chown, which clears set-id bits. */
    if (fchmod(fd, st->st_mode & 07777) < 0)
        return berth_err_set(err, -errno, "copy-up: chmod: %s", strerror(errno));
    if (srcfd >= 0)
        copy_xattrs(srcfd, fd);
    futimens(fd, ts);
    return 0;
}

static int copy_file(int sdir, int ddir, const char *name, const struct stat *st, berth_err_t *err)
{
    _cleanup_close_ int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int out = -1;
    char buf[65536];
    ssize_t n;

    if (in < 0)
        return berth_err_set(err, -errno, "copy-up: open %s: %s", name, strerror(errno));
    out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return berth_err_set(err, -errno, "copy-up: create %s: %s", name, strerror(errno));
    while ((n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_err_set(err, -errno, "copy-up: read %s: %s", name, strerror(errno));
        for (ssize_t w = 0, k; w < n; w += k)
            if ((k = write(out, buf + w, (size_t)(n - w))) < 0) {
                if (errno == EINTR) {
                    k = 0;
                    continue;
                }
                return berth_err_set(err, -errno, "copy-up: write %s: %s", name, strerror(errno));
            }
    }
    return copy_meta(out, in, st, err);
}

/* A set of names already merged in one directory. */
struct names {
    char **v;
    size_t n, cap;
};

static int names_has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return 1;
    return 0;
}

static int names_add(struct names *s, const char *name)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(name)))
        return -ENOMEM;
    s->n++;
    return 0;
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int copy_merged(int *dirs, size_t n, int dst, unsigned depth, berth_err_t *err);

/*
 * The directories that make up entry @name, a directory in dirs[j], merged
 * from dirs[j] down: opened into @out (count in *ret_n) until an opaque one,
 * a whiteout or a non-directory below ends the stack.
 */
static int subdirs(int *dirs, size_t n, size_t j, const char *name, int *out, size_t *ret_n)
{
    size_t m = 0;

    for (size_t k = j; k < n; k++) {
        struct stat st;
        int fd;
        if (fstatat(dirs[k], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* not in this layer */
        if (!S_ISDIR(st.st_mode))
            break; /* a whiteout or a file hides the rest */
        fd = openat(dirs[k], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            break;
        out[m++] = fd;
        if (is_opaque(fd))
            break;
    }
    *ret_n = m;
    return 0;
}

static int copy_entry(int *dirs, size_t n, size_t j, const char *name, int dst, unsigned depth,
                      berth_err_t *err)
{
    struct stat st;
    int r = 0;

    if (fstatat(dirs[j], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return berth_err_set(err, -errno, "copy-up: stat %s: %s", name, strerror(errno));
    if (is_whiteout(&st))
        return 0;
    if (S_ISREG(st.st_mode))
        return copy_file(dirs[j], dst, name, &st, err);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t len = readlinkat(dirs[j], name, target, sizeof(target) - 1);
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        if (len < 0)
            return berth_err_set(err, -errno, "copy-up: readlink %s: %s", name, strerror(errno));
        target[len] = '\0';
        /* The link is copied, never followed. */
        if (symlinkat(target, dst, name) < 0)
            return berth_err_set(err, -errno, "copy-up: symlink %s: %s", name, strerror(errno));
        fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
        utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        int sub[64];
        size_t m = 0;
        _cleanup_close_ int dfd = -1;
        if (mkdirat(dst, name, 0700) < 0)
            return berth_err_set(err, -errno, "copy-up: mkdir %s: %s", name, strerror(errno));
        dfd = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            return berth_err_set(err, -errno, "copy-up: open %s: %s", name, strerror(errno));
        subdirs(dirs, n < 64 ? n : 64, j, name, sub, &m);
        if (m == 0)
            return berth_err_set(err, -EIO, "copy-up: %s vanished", name);
        r = copy_merged(sub, m, dfd, depth + 1, err);
        if (r == 0)
            r = copy_meta(dfd, sub[0], &st, err);
        for (size_t k = 0; k < m; k++)
            close(sub[k]);
        return r;
    }
    /* Devices, fifos, sockets. */
    if (mknodat(dst, name, st.st_mode, st.st_rdev) < 0)
        return berth_err_set(err, -errno, "copy-up: mknod %s: %s", name, strerror(errno));
    fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
    fchmodat(dst, name, st.st_mode & 07777, 0);
    return 0;
}

static int copy_merged(int *dirs, size_t n, int dst, unsigned depth, berth_err_t *err)
{
    struct names seen = { 0 };
    int r = 0;

    if (depth > 256)
        return berth_err_set(err, -ELOOP, "copy-up: directories nested too deep");
    for (size_t j = 0; j < n && r == 0; j++) {
        int fd = dup(dirs[j]);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        if (!d) {
            if (fd >= 0)
                close(fd);
            r = berth_err_set(err, -errno, "copy-up: opendir: %s", strerror(errno));
            break;
        }
        while (r == 0 && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            /* The topmost layer that has a name decides what it is (a whiteout: nothing). */
            if (names_has(&seen, de->d_name))
                continue;
            if (names_add(&seen, de->d_name) < 0) {
                r = berth_err_set(err, -ENOMEM, "out of memory");
                break;
            }
            r = copy_entry(dirs, n, j, de->d_name, dst, depth, err);
        }
        closedir(d);
    }
    names_free(&seen);
    return r;
}

/*
 * Open @path (absolute) in layer @root, never following a link. Returns the
 * directory's fd, -ENOENT when the layer lacks it (*ret_stop set when a
 * whiteout, a file or an opaque directory on the way hides the lower
 * layers), -ELOOP when a component is a symbolic link.
 */
static int open_in_layer(const char *root, const char *path, int *ret_stop)
{
    _cleanup_free_ char *copy = strdup(path);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), next;
    char *save = NULL;

    *ret_stop = 0;
    if (!copy || fd < 0) {
        if (fd >= 0)
            close(fd);
        return -ENOENT;
    }
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        struct stat st;
        if (!strcmp(c, "."))
            continue;
        if (fstatat(fd, c, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            *ret_stop = is_opaque(fd);
            close(fd);
            return -ENOENT;
        }
        if (S_ISLNK(st.st_mode)) {
            close(fd);
            return -ELOOP;
        }
        if (!S_ISDIR(st.st_mode)) {
            *ret_stop = 1;
            close(fd);
            return -ENOENT;
        }
        next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (next < 0)
            return -ENOENT;
        fd = next;
    }
    return fd;
}

int berth__volume_copy_up(const char *const *layers, size_t n, const char *path, const char *dst,
                          berth_err_t *err)
{
    int dirs[64];
    size_t m = 0;
    struct stat st;
    _cleanup_close_ int dfd = -1;
    int r = 0;

    if (!dest_is_valid(path))
        return berth_err_set(err, -EINVAL, "copy-up: bad path \"%s\"", path ? path : "");
    for (size_t i = 0; i < n && m < BERTH_ARRAY_SIZE(dirs); i++) {
        int stop = 0, fd = open_in_layer(layers[i], path, &stop);
        if (fd == -ELOOP) {
            r = 0; /* a path through a link: not followed, nothing copied */
            goto out;
        }
        if (fd >= 0) {
            dirs[m++] = fd;
            if (is_opaque(fd))
                break;
        } else if (stop) {
            break;
        }
    }
    if (m == 0)
        return 0;
    dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        r = berth_err_set(err, -errno, "copy-up: %s: %s", dst, strerror(errno));
        goto out;
    }
    if (fstat(dirs[0], &st) < 0) {
        r = berth_err_set(err, -errno, "copy-up: %s: %s", path, strerror(errno));
        goto out;
    }
    if ((r = copy_merged(dirs, m, dfd, 0, err)) == 0)
        r = copy_meta(dfd, dirs[0], &st, err);
out:
    for (size_t i = 0; i < m; i++)
        close(dirs[i]);
    return r;
}

/* Overlay's escaping in mount options: '\' quotes the next character. */
static int push_unescaped(char ***strv, const char *s, size_t len)
{
    _cleanup_free_ char *buf = malloc(len + 1);
    size_t o = 0;

    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len)
            i++;
        buf[o++] = s[i];
    }
    buf[o] = '\0';
    return berth__strv_push(strv, buf);
}

int berth__rootfs_layers(json_t *record, char ***ret_layers, berth_err_t *err)
{
    _cleanup_strv_ char **v = berth__strv_new();
    const char *rootfs = json_string_value(json_object_get(record, "rootfs"));
    json_t *mounts = json_object_get(json_object_get(record, "storage"), "mounts"), *m, *o;
    size_t i, k;

    if (!v)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if (rootfs) {
        if (berth__strv_push(&v, rootfs) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        *ret_layers = TAKE_PTR(v);
        return 0;
    }
    json_array_foreach (mounts, i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *src = json_string_value(json_object_get(m, "source"));
        const char *lower = NULL, *upper = NULL;
        if (type && strcmp(type, "bind") == 0 && src) {
            if (berth__strv_push(&v, src) < 0)
                return berth_err_set(err, -ENOMEM, "out of memory");
            continue;
        }
        json_array_foreach (json_object_get(m, "options"), k, o) {
            const char *s = json_string_value(o);
            if (s && !strncmp(s, "lowerdir=", 9))
                lower = s + 9;
            else if (s && !strncmp(s, "upperdir=", 9))
                upper = s + 9;
        }
        if (upper && push_unescaped(&v, upper, strlen(upper)) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
        for (const char *p = lower; p && *p;) {
            const char *e = p;
            while (*e && *e != ':')
                e += (*e == '\\' && e[1]) ? 2 : 1;
            if (push_unescaped(&v, p, (size_t)(e - p)) < 0)
                return berth_err_set(err, -ENOMEM, "out of memory");
            p = *e ? e + 1 : e;
        }
    }
    *ret_layers = TAKE_PTR(v);
    return 0;
}
