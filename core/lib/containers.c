/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container records (contract in containers.h). The names database is an
 * index of the containers database: every write here changes both in the
 * same transaction, so no reader ever sees one without the other.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "containers.h"
#include "jscan.h"
#include "util.h"

static int is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int berth__container_id_is_valid(const char *id)
{
    return id && strlen(id) == BERTH_CONTAINER_ID_LEN && is_lower_hex(id, BERTH_CONTAINER_ID_LEN);
}

static int name_char(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return !first && (c == '_' || c == '.' || c == '-');
}

int berth__container_name_is_valid(const char *name)
{
    size_t i;

    if (!name || !*name)
        return 0;
    for (i = 0; name[i]; i++)
        if (i >= BERTH_CONTAINER_NAME_MAX || !name_char(name[i], i == 0))
            return 0;
    return 1;
}

int berth__container_id_new(char ret_id[BERTH_CONTAINER_ID_LEN + 1], berth_err_t *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[BERTH_CONTAINER_ID_LEN / 2];
    char id[BERTH_CONTAINER_ID_LEN + 1];

    for (;;) {
        size_t got = 0;
        int digits = 1;

        while (got < sizeof(raw)) {
            ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return berth_err_set(err, -errno, "getrandom: %s", strerror(errno));
            got += (size_t)n;
        }
        for (size_t i = 0; i < sizeof(raw); i++) {
            id[2 * i] = hex[raw[i] >> 4];
            id[2 * i + 1] = hex[raw[i] & 0xf];
        }
        id[BERTH_CONTAINER_ID_LEN] = '\0';
        /*
         * Like Docker, never hand out an id whose short form is all digits:
         * tools (and the CLI) would take it for a number, e.g. a PID.
         */
        for (int i = 0; i < BERTH_CONTAINER_SHORT_ID_LEN; i++)
            digits &= id[i] >= '0' && id[i] <= '9';
        if (!digits)
            break;
    }
    memcpy(ret_id, id, sizeof(id));
    return 0;
}

/*
 * A shallow copy of object @obj, or NULL. Not json_copy(): jansson's object
 * copy ignores allocation failures and returns an object with members missing.
 */
static json_t *object_copy(json_t *obj)
{
    json_t *copy = json_object();

    if (copy && json_object_update(copy, obj) < 0) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

/* The string member @key of @doc, or NULL. */
static const char *str_member(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/*
 * Check @doc and build the document to store: a shallow copy with the bare
 * name, "v" and "created_ns". The caller's object is left alone.
 */
static int doc_prepare(json_t *doc, json_t **ret_doc, berth_err_t *err)
{
    _cleanup_json_ json_t *copy = NULL;
    const char *id, *name;
    json_t *v, *created;

    if (!json_is_object(doc))
        return berth_err_set(err, -EINVAL, "container document is not a JSON object");
    id = str_member(doc, "id");
    if (!berth__container_id_is_valid(id))
        return berth_err_set(err, -EINVAL, "invalid container id \"%s\": want 64 lowercase hex",
                             id ? id : "(none)");
    name = str_member(doc, "name");
    if (name && name[0] == '/')
        name++;
    if (!berth__container_name_is_valid(name))
        return berth_err_set(err, -EINVAL,
                             "invalid container name \"%s\", only [a-zA-Z0-9][a-zA-Z0-9_.-]* "
                             "up to %d characters are allowed",
                             name ? name : "(none)", BERTH_CONTAINER_NAME_MAX);
    v = json_object_get(doc, "v");
    if (v && (!json_is_integer(v) || json_integer_value(v) != BERTH_CONTAINER_RECORD_V))
        return berth_err_set(err, -EINVAL, "container %.12s: record format \"v\" must be %d", id,
                             BERTH_CONTAINER_RECORD_V);
    created = json_object_get(doc, "created_ns");
    if (created && !json_is_integer(created))
        return berth_err_set(err, -EINVAL, "container %.12s: \"created_ns\" is not an integer", id);

    copy = object_copy(doc);
    if (!copy)
        return berth_err_set(err, -ENOMEM, "out of memory");
    if ((!v && json_object_set_new(copy, "v", json_integer(BERTH_CONTAINER_RECORD_V)) < 0) ||
        json_object_set_new(copy, "name", json_string(name)) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_doc = TAKE_PTR(copy);
    return 0;
}

/* The id the names database holds for @name: 0, -ENOENT, or another error. */
static int name_owner(berth_txn_t *txn, const char *name, char ret_id[BERTH_CONTAINER_ID_LEN + 1],
                      berth_err_t *err)
{
    _cleanup_json_ json_t *entry = NULL;
    berth_err_t lerr;
    const char *id;
    int rc;

    rc = berth__store_get(txn, BERTH_DB_NAMES, name, &entry, &lerr);
    if (rc == -ENOENT)
        return rc;
    if (rc < 0) {
        if (err)
            *err = lerr;
        return rc;
    }
    id = str_member(entry, "id");
    if (!berth__container_id_is_valid(id))
        return berth_err_set(err, -EBADMSG, "store %s: names/%s: no valid \"id\"",
                             berth__store_dir(berth__store_txn_store(txn)), name);
    memcpy(ret_id, id, BERTH_CONTAINER_ID_LEN + 1);
    return 0;
}

static int name_taken(const char *name, const char *owner, berth_err_t *err)
{
    return berth_err_set(err, -EEXIST, "name \"%s\" is already in use by container %.12s", name,
                         owner);
}

static int name_put(berth_txn_t *txn, const char *name, const char *id, berth_err_t *err)
{
    _cleanup_json_ json_t *entry = json_pack("{s:i, s:s}", "v", 1, "id", id);

    if (!entry)
        return berth_err_set(err, -ENOMEM, "out of memory");
    return berth__store_put(txn, BERTH_DB_NAMES, name, entry, BERTH_PUT_NOOVERWRITE, err);
}

int berth__container_event_attrs(json_t *doc, json_t *extra, json_t **ret_attrs, berth_err_t *err)
{
    json_t *config = json_object_get(doc, "config"), *labels = json_object_get(config, "Labels");
    const char *image = str_member(config, "Image");
    const char *name = str_member(doc, "name");
    _cleanup_json_ json_t *a = json_object();
    const char *k;
    json_t *v;

    if (extra && !json_is_object(extra))
        return berth_err_set(err, -EINVAL, "event attributes must be an object");
    if (!a)
        return berth_err_set(err, -ENOMEM, "out of memory");
    /* Docker's order of precedence: labels, then image and name, then the event's own. */
    json_object_foreach (labels, k, v) {
        if (json_is_string(v) && json_object_set(a, k, v) < 0)
            return berth_err_set(err, -ENOMEM, "out of memory");
    }
    if ((image && json_object_set_new(a, "image", json_string(image)) < 0) ||
        json_object_set_new(a, "name", json_string(name ? name : "")) < 0 ||
        (extra && json_object_update(a, extra) < 0))
        return berth_err_set(err, -ENOMEM, "out of memory");
    *ret_attrs = TAKE_PTR(a);
    return 0;
}

int berth__container_event_in(berth_txn_t *txn, json_t *doc, const char *action, json_t *extra,
                              berth_err_t *err)
{
    _cleanup_json_ json_t *a = NULL;
    const char *id = str_member(doc, "id");
    int r;

    if (!berth__container_id_is_valid(id))
        return berth_err_set(err, -EINVAL, "container event without a valid id");
    if ((r = berth__container_event_attrs(doc, extra, &a, err)) < 0)
        return r;
    return berth__store_event_append(txn, "container", action, id, a, NULL, err);
}

int berth__container_events(berth_store_t *store, const char *ref, json_t *fallback, size_t n,
                            const char *const *actions, json_t *const *extras, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *doc = NULL;
    int r;

    if ((r = berth__store_txn_begin(store, 1, &txn, err)) < 0)
        return r;
    r = berth__container_get_in(txn, ref, &doc, err);
    if (r == -ENOENT && fallback)
        doc = json_incref(fallback);
    else if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        if ((r = berth__container_event_in(txn, doc, actions[i], extras ? extras[i] : NULL, err)) <
            0)
            return r;
    return berth__store_txn_commit(TAKE_PTR(txn), err);
}

int berth__container_event(berth_store_t *store, const char *ref, json_t *fallback,
                           const char *action, json_t *extra, berth_err_t *err)
{
    return berth__container_events(store, ref, fallback, 1, &action, &extra, err);
}

/* The event of a record change: the record's attributes, @attrs, and @extra_key when given. */
static int event_append(berth_txn_t *txn, const char *action, json_t *doc, json_t *attrs,
                        const char *extra_key, const char *extra, berth_err_t *err)
{
    _cleanup_json_ json_t *a = attrs ? object_copy(attrs) : json_object();

    if (!json_is_object(a) ||
        (extra_key && json_object_set_new(a, extra_key, json_string(extra)) < 0))
        return berth_err_set(err, attrs && !json_is_object(attrs) ? -EINVAL : -ENOMEM,
                             "container %.12s: cannot build event attributes",
                             str_member(doc, "id"));
    return berth__container_event_in(txn, doc, action, a, err);
}

int berth__container_create_in(berth_txn_t *txn, json_t *doc, json_t *attrs, json_t **ret_doc,
                               berth_err_t *err)
{
    _cleanup_json_ json_t *rec = NULL;
    char owner[BERTH_CONTAINER_ID_LEN + 1];
    const char *id, *name;
    int rc;

    rc = doc_prepare(doc, &rec, err);
    if (rc < 0)
        return rc;
    id = str_member(rec, "id");
    name = str_member(rec, "name");
    if (!json_object_get(rec, "created_ns") &&
        json_object_set_new(rec, "created_ns", json_integer(berth__now_ns())) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");

    /* Checks first, so a refused create has written nothing. */
    rc = name_owner(txn, name, owner, err);
    if (rc == 0)
        return name_taken(name, owner, err);
    if (rc != -ENOENT)
        return rc;
    rc = berth__store_put(txn, BERTH_DB_CONTAINERS, id, rec, BERTH_PUT_NOOVERWRITE, err);
    if (rc == -EEXIST)
        return berth_err_set(err, rc, "container id %.12s already exists", id);
    if (rc < 0)
        return rc;
    rc = name_put(txn, name, id, err);
    if (rc < 0)
        return rc;
    rc = event_append(txn, "create", rec, attrs, NULL, NULL, err);
    if (rc < 0)
        return rc;
    if (ret_doc)
        *ret_doc = TAKE_PTR(rec);
    return 0;
}

int berth__container_resolve_in(berth_txn_t *txn, const char *ref,
                                char ret_id[BERTH_CONTAINER_ID_LEN + 1], berth_err_t *err)
{
    _cleanup_strv_ char **keys = NULL;
    const char *name;
    size_t len;
    int rc;

    if (!ref || !*ref)
        return berth_err_set(err, -EINVAL, "empty container reference");
    len = strlen(ref);
    /* Docker's order: full id, exact name, then id prefix. */
    if (berth__container_id_is_valid(ref)) {
        /* Keys only: no need to parse a document to know it exists. */
        _cleanup_strv_ char **exact = NULL;

        rc = berth__store_keys(txn, BERTH_DB_CONTAINERS, ref, 1, &exact, err);
        if (rc < 0)
            return rc;
        if (exact[0] && strcmp(exact[0], ref) == 0) {
            memcpy(ret_id, ref, BERTH_CONTAINER_ID_LEN + 1);
            return 0;
        }
    }
    name = ref[0] == '/' ? ref + 1 : ref;
    if (berth__container_name_is_valid(name)) {
        rc = name_owner(txn, name, ret_id, err);
        if (rc != -ENOENT)
            return rc;
    }
    if (len < BERTH_CONTAINER_ID_LEN && is_lower_hex(ref, len)) {
        /* Two keys are enough to tell unique from ambiguous. */
        rc = berth__store_keys(txn, BERTH_DB_CONTAINERS, ref, 2, &keys, err);
        if (rc < 0)
            return rc;
        if (berth__strv_len(keys) > 1)
            return berth_err_set(err, -EINVAL,
                                 "container reference \"%s\" is ambiguous: several ids start "
                                 "with it",
                                 ref);
        if (berth__strv_len(keys) == 1 && berth__container_id_is_valid(keys[0])) {
            memcpy(ret_id, keys[0], BERTH_CONTAINER_ID_LEN + 1);
            return 0;
        }
    }
    return berth_err_set(err, -ENOENT, "no such container: %s", ref);
}

int berth__container_get_in(berth_txn_t *txn, const char *ref, json_t **ret_doc, berth_err_t *err)
{
    char id[BERTH_CONTAINER_ID_LEN + 1];
    int rc;

    rc = berth__container_resolve_in(txn, ref, id, err);
    if (rc < 0)
        return rc;
    rc = berth__store_get(txn, BERTH_DB_CONTAINERS, id, ret_doc, err);
    /* A name whose container is gone: the index is broken, not the reference. */
    if (rc == -ENOENT)
        return berth_err_set(err, -EUCLEAN,
                             "store %s: names entry for \"%s\" points to missing "
                             "container %.12s",
                             berth__store_dir(berth__store_txn_store(txn)), ref, id);
    return rc;
}

int berth__container_update_in(berth_txn_t *txn, json_t *doc, const char *action, json_t *attrs,
                               json_t **ret_doc, berth_err_t *err)
{
    _cleanup_json_ json_t *rec = NULL, *old = NULL;
    char owner[BERTH_CONTAINER_ID_LEN + 1];
    const char *id, *name, *old_name;
    char slash_old[BERTH_CONTAINER_NAME_MAX + 2] = "";
    json_t *created;
    int renamed, rc;

    rc = doc_prepare(doc, &rec, err);
    if (rc < 0)
        return rc;
    id = str_member(rec, "id");
    name = str_member(rec, "name");
    rc = berth__store_get(txn, BERTH_DB_CONTAINERS, id, &old, err);
    if (rc == -ENOENT)
        return berth_err_set(err, rc, "no such container: %s", id);
    if (rc < 0)
        return rc;
    old_name = str_member(old, "name");
    created = json_object_get(old, "created_ns");
    if (!json_object_get(rec, "created_ns") && created &&
        json_object_set(rec, "created_ns", created) < 0)
        return berth_err_set(err, -ENOMEM, "out of memory");

    renamed = !old_name || strcmp(old_name, name) != 0;
    if (renamed) {
        int owned;

        rc = name_owner(txn, name, owner, err);
        if (rc == 0 && strcmp(owner, id) != 0)
            return name_taken(name, owner, err);
        if (rc < 0 && rc != -ENOENT)
            return rc;
        owned = rc == 0;
        if (old_name) {
            rc = berth__store_del(txn, BERTH_DB_NAMES, old_name, err);
            if (rc < 0 && rc != -ENOENT)
                return rc;
        }
        if (!owned) {
            rc = name_put(txn, name, id, err);
            if (rc < 0)
                return rc;
        }
    }
    rc = berth__store_put(txn, BERTH_DB_CONTAINERS, id, rec, 0, err);
    if (rc < 0)
        return rc;
    if (!action)
        action = renamed ? "rename" : "update";
    if (renamed && old_name)
        snprintf(slash_old, sizeof(slash_old), "/%s", old_name);
    /* Docker's oldName keeps the leading slash of its names. */
    rc = event_append(txn, action, rec, attrs, renamed && old_name ? "oldName" : NULL, slash_old,
                      err);
    if (rc < 0)
        return rc;
    if (ret_doc)
        *ret_doc = TAKE_PTR(rec);
    return 0;
}

int berth__container_delete_in(berth_txn_t *txn, const char *ref, json_t *attrs, json_t **ret_doc,
                               berth_err_t *err)
{
    _cleanup_json_ json_t *old = NULL;
    char id[BERTH_CONTAINER_ID_LEN + 1];
    const char *name;
    int rc;

    rc = berth__container_resolve_in(txn, ref, id, err);
    if (rc < 0)
        return rc;
    rc = berth__store_get(txn, BERTH_DB_CONTAINERS, id, &old, err);
    if (rc < 0)
        return rc;
    name = str_member(old, "name");
    if (name) {
        /* Only drop the name if it is still this container's. */
        char owner[BERTH_CONTAINER_ID_LEN + 1];

        rc = name_owner(txn, name, owner, err);
        if (rc == 0 && strcmp(owner, id) == 0)
            rc = berth__store_del(txn, BERTH_DB_NAMES, name, err);
        if (rc < 0 && rc != -ENOENT)
            return rc;
    }
    rc = berth__store_del(txn, BERTH_DB_CONTAINERS, id, err);
    if (rc < 0)
        return rc;
    rc = event_append(txn, "destroy", old, attrs, NULL, NULL, err);
    if (rc < 0)
        return rc;
    if (ret_doc)
        *ret_doc = TAKE_PTR(old);
    return 0;
}

static int list_add(const char *key, json_t *doc, void *userdata)
{
    return json_array_append(userdata, doc) < 0 ? -ENOMEM : 0;
}

int berth__container_list_in(berth_txn_t *txn, json_t **ret_array, berth_err_t *err)
{
    _cleanup_json_ json_t *arr = json_array();
    int rc;

    if (!arr)
        return berth_err_set(err, -ENOMEM, "out of memory");
    rc = berth__store_walk(txn, BERTH_DB_CONTAINERS, NULL, list_add, arr, err);
    if (rc == -ENOMEM)
        return berth_err_set(err, rc, "out of memory");
    if (rc < 0)
        return rc;
    *ret_array = TAKE_PTR(arr);
    return 0;
}

/* ---- summaries ---- */

/*
 * Both readers below (bytes with the scanner, a document with jansson) build
 * summaries with these helpers, so they cut strings at the same place.
 */

/* Length of the longest prefix of @s (@n bytes) made of whole UTF-8 characters, at most @room. */
static size_t utf8_fit(const char *s, size_t n, size_t room)
{
    if (n <= room)
        return n;
    while (room > 0 && ((unsigned char)s[room] & 0xc0) == 0x80)
        room--;
    return room;
}

static void copy_bounded(char *dst, size_t cap, const char *src)
{
    size_t n = src ? utf8_fit(src, strlen(src), cap - 1) : 0;

    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* The command line being joined: Entrypoint, then Cmd, one space between arguments. */
struct cmdline {
    berth_container_summary_t *sum;
    size_t len;
    size_t args;
};

/* Room left in the command for the next argument (the separator taken), 0 once cut. */
static size_t cmd_sep(struct cmdline *c)
{
    char *buf = c->sum->command;

    if (c->sum->command_truncated)
        return 0;
    if (c->args++) {
        if (c->len + 1 > sizeof(c->sum->command) - 1) {
            c->sum->command_truncated = 1;
            return 0;
        }
        buf[c->len++] = ' ';
        buf[c->len] = '\0';
    }
    return sizeof(c->sum->command) - 1 - c->len;
}

static void cmd_append(struct cmdline *c, const char *arg)
{
    size_t room = cmd_sep(c), n = strlen(arg), k;

    if (c->sum->command_truncated)
        return;
    k = utf8_fit(arg, n, room);
    memcpy(c->sum->command + c->len, arg, k);
    c->len += k;
    c->sum->command[c->len] = '\0';
    c->sum->command_truncated = k < n;
}

static void summary_reset(berth_container_summary_t *sum)
{
    sum->id[0] = sum->name[0] = sum->state[0] = sum->isolation[0] = sum->command[0] = '\0';
    sum->command_truncated = 0;
    sum->created_ns = sum->started_ns = sum->finished_ns = sum->exit_code = sum->pid = 0;
    sum->raw = NULL;
    sum->raw_len = 0;
}

static int summary_finish(int v_ok, int id_ok, int name_ok, berth_err_t *err)
{
    if (!v_ok)
        return berth_err_set(err, -EBADMSG, "not a JSON object with an integer \"v\"");
    if (!id_ok)
        return berth_err_set(err, -EBADMSG, "no valid \"id\"");
    if (!name_ok)
        return berth_err_set(err, -EBADMSG, "no valid \"name\"");
    return 0;
}

int berth__container_summary_from_doc(json_t *doc, berth_container_summary_t *ret_summary,
                                      berth_err_t *err)
{
    static const char *const args_keys[] = { "Entrypoint", "Cmd" };
    berth_container_summary_t sum;
    struct cmdline cmd = { &sum, 0, 0 };
    const char *id = str_member(doc, "id"), *name = str_member(doc, "name");
    json_t *state = json_object_get(doc, "state"), *config = json_object_get(doc, "config");
    int rc;

    rc =
        summary_finish(json_is_object(doc) && json_is_integer(json_object_get(doc, "v")),
                       berth__container_id_is_valid(id), berth__container_name_is_valid(name), err);
    if (rc < 0)
        return rc;
    summary_reset(&sum);
    memcpy(sum.id, id, sizeof(sum.id));
    copy_bounded(sum.name, sizeof(sum.name), name);
    copy_bounded(sum.state, sizeof(sum.state), str_member(state, "Status"));
    copy_bounded(sum.isolation, sizeof(sum.isolation), str_member(doc, "isolation"));
    for (size_t k = 0; k < BERTH_ARRAY_SIZE(args_keys); k++) {
        json_t *args = json_object_get(config, args_keys[k]), *v;
        size_t i;

        json_array_foreach (args, i, v) {
            cmd_append(&cmd, json_is_string(v) ? json_string_value(v) : "");
        }
    }
    sum.created_ns = json_integer_value(json_object_get(doc, "created_ns"));
    sum.started_ns = json_integer_value(json_object_get(state, "StartedAt"));
    sum.finished_ns = json_integer_value(json_object_get(state, "FinishedAt"));
    sum.exit_code = json_integer_value(json_object_get(state, "ExitCode"));
    sum.pid = json_integer_value(json_object_get(state, "Pid"));
    copy_bounded(sum.health, sizeof(sum.health),
                 str_member(json_object_get(state, "Health"), "Status"));
    *ret_summary = sum;
    return 0;
}

/*
 * is_lower_hex() for a 64-digit id without a branch per digit: digits and
 * letters alternate at random in an id, which is_lower_hex()'s branches
 * mispredict (a tenth of a listing's time went there).
 */
static int id_hex_ok(const char *id)
{
    static const uint8_t lower_hex[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    };
    unsigned ok = 1;

    for (int i = 0; i < BERTH_CONTAINER_ID_LEN; i++)
        ok &= lower_hex[(unsigned char)id[i]];
    return (int)ok;
}

/* Members the scanner picks out; the indexes below are their positions + 1. */
static const char *const record_keys[] = { "v",         "id",    "name",  "created_ns",
                                           "isolation", "state", "config" };
enum { R_V = 1, R_ID, R_NAME, R_CREATED, R_ISOLATION, R_STATE, R_CONFIG };
static const char *const state_keys[] = { "Status",    "Pid",        "ExitCode",
                                          "StartedAt", "FinishedAt", "Health" };
enum { S_STATUS = 1, S_PID, S_EXIT_CODE, S_STARTED, S_FINISHED, S_HEALTH };
static const char *const health_keys[] = { "Status" };

/* state.Health.Status (berthd's health checks) into sum->health. */
static int scan_health(berth_jscan_t *s, berth_container_summary_t *sum)
{
    int rc;

    sum->health[0] = '\0';
    if (berth__jscan_type(s) != BERTH_JSCAN_OBJECT)
        return berth__jscan_skip(s, NULL, NULL);
    rc = berth__jscan_object_begin(s);
    while (rc >= 0 && (rc = berth__jscan_object_find(s, health_keys, 1)) > 0) {
        if (berth__jscan_type(s) == BERTH_JSCAN_STRING)
            rc = berth__jscan_string_value(s, sum->health, sizeof(sum->health), NULL);
        else
            rc = berth__jscan_skip(s, NULL, NULL);
    }
    return rc;
}
static const char *const config_keys[] = { "Entrypoint", "Cmd" };

/* The Entrypoint and Cmd arrays' bytes, joined once the whole record is checked. */
struct scanned_args {
    const char *data[2];
    size_t len[2];
};

static int scan_state(berth_jscan_t *s, berth_container_summary_t *sum)
{
    int rc;

    /* A later "state" replaces an earlier one, as in jansson. */
    sum->state[0] = '\0';
    sum->started_ns = sum->finished_ns = sum->exit_code = sum->pid = 0;
    sum->health[0] = '\0';
    if (berth__jscan_type(s) != BERTH_JSCAN_OBJECT)
        return berth__jscan_skip(s, NULL, NULL);
    rc = berth__jscan_object_begin(s);
    while (rc >= 0 &&
           (rc = berth__jscan_object_find(s, state_keys, BERTH_ARRAY_SIZE(state_keys))) > 0) {
        switch (rc) {
        case S_STATUS:
            rc = berth__jscan_string_value(s, sum->state, sizeof(sum->state), NULL);
            break;
        case S_PID:
            rc = berth__jscan_integer_value(s, &sum->pid);
            break;
        case S_EXIT_CODE:
            rc = berth__jscan_integer_value(s, &sum->exit_code);
            break;
        case S_STARTED:
            rc = berth__jscan_integer_value(s, &sum->started_ns);
            break;
        case S_HEALTH:
            rc = scan_health(s, sum);
            break;
        default:
            rc = berth__jscan_integer_value(s, &sum->finished_ns);
        }
    }
    return rc;
}

static int scan_config(berth_jscan_t *s, struct scanned_args *args)
{
    int rc;

    args->data[0] = args->data[1] = NULL;
    if (berth__jscan_type(s) != BERTH_JSCAN_OBJECT)
        return berth__jscan_skip(s, NULL, NULL);
    rc = berth__jscan_object_begin(s);
    while (rc >= 0 &&
           (rc = berth__jscan_object_find(s, config_keys, BERTH_ARRAY_SIZE(config_keys))) > 0) {
        int k = rc - 1;

        /* Only an array adds arguments (what ps and the spec builder read). */
        args->data[k] = NULL;
        if (berth__jscan_type(s) == BERTH_JSCAN_ARRAY)
            rc = berth__jscan_skip(s, &args->data[k], &args->len[k]);
        else
            rc = berth__jscan_skip(s, NULL, NULL);
    }
    return rc;
}

/* Join the (already checked) Entrypoint and Cmd arrays into sum->command. */
static void scan_command(const struct scanned_args *args, berth_container_summary_t *sum)
{
    struct cmdline cmd = { sum, 0, 0 };

    for (int k = 0; k < 2; k++) {
        berth_jscan_t s;
        int rc;

        if (!args->data[k])
            continue;
        berth__jscan_init(&s, args->data[k], args->len[k]);
        rc = berth__jscan_array_begin(&s);
        while (rc >= 0 && (rc = berth__jscan_array_next(&s)) > 0) {
            size_t room = cmd_sep(&cmd), n;

            if (sum->command_truncated) {
                rc = berth__jscan_skip(&s, NULL, NULL);
                continue;
            }
            /* not a string: "" (the separator is there already) */
            rc = berth__jscan_string_value(&s, sum->command + cmd.len, room + 1, &n);
            cmd.len += strlen(sum->command + cmd.len);
            sum->command_truncated = n > room;
        }
    }
}

int berth__container_summary_parse(const void *data, size_t len, berth_container_summary_t *sum,
                                   berth_err_t *err)
{
    struct scanned_args args = { { NULL, NULL }, { 0, 0 } };
    int v_ok = 0, id_ok = 0, name_ok = 0, top, rc;
    berth_jscan_t s;
    size_t n;
    int64_t v;

    summary_reset(sum);
    berth__jscan_init(&s, data, len);
    rc = top = berth__jscan_type(&s);
    if (top == BERTH_JSCAN_OBJECT)
        rc = berth__jscan_object_begin(&s);
    else if (top == BERTH_JSCAN_ARRAY)
        rc = berth__jscan_skip(&s, NULL, NULL);
    /* A later duplicate member replaces an earlier one, as in jansson. */
    while (top == BERTH_JSCAN_OBJECT && rc >= 0 &&
           (rc = berth__jscan_object_find(&s, record_keys, BERTH_ARRAY_SIZE(record_keys))) > 0) {
        switch (rc) {
        case R_V:
            rc = berth__jscan_integer_value(&s, &v);
            v_ok = rc == 1;
            break;
        case R_ID:
            rc = berth__jscan_string_value(&s, sum->id, sizeof(sum->id), &n);
            id_ok = rc == 1 && n == BERTH_CONTAINER_ID_LEN && id_hex_ok(sum->id);
            break;
        case R_NAME:
            rc = berth__jscan_string_value(&s, sum->name, sizeof(sum->name), &n);
            name_ok = rc == 1 && n < sizeof(sum->name) && berth__container_name_is_valid(sum->name);
            break;
        case R_CREATED:
            rc = berth__jscan_integer_value(&s, &sum->created_ns);
            break;
        case R_ISOLATION:
            rc = berth__jscan_string_value(&s, sum->isolation, sizeof(sum->isolation), NULL);
            break;
        case R_STATE:
            rc = scan_state(&s, sum);
            break;
        default:
            rc = scan_config(&s, &args);
        }
    }
    if (rc >= 0)
        rc = berth__jscan_end(&s);
    if (rc < 0 || (top != BERTH_JSCAN_OBJECT && top != BERTH_JSCAN_ARRAY)) {
        const char *why = berth__jscan_error(&s, &n);

        return berth_err_set(err, -EBADMSG, "invalid JSON at byte %zu: %s", why ? n : 0,
                             why ? why : "expected an object or an array");
    }
    rc = summary_finish(top == BERTH_JSCAN_OBJECT && v_ok, id_ok, name_ok, err);
    if (rc < 0)
        return rc;
    scan_command(&args, sum);
    return 0;
}

/* Keep the bytes of the value that comes next (the last one wins, as in jansson). */
static int span_of(berth_jscan_t *s, const char **ret_data, size_t *ret_len)
{
    return berth__jscan_skip(s, ret_data, ret_len);
}

static const char *const detail_record_keys[] = { "config", "image_id", "mounts", "networks",
                                                  "host_config" };
static const char *const detail_config_keys[] = { "Image", "Labels", "ExposedPorts" };
static const char *const detail_hc_keys[] = { "NetworkMode" };

int berth__container_detail_scan(const void *data, size_t len, berth_container_detail_t *d,
                                 berth_err_t *err)
{
    berth_jscan_t s;
    size_t pos;
    int rc;

    memset(d, 0, sizeof(*d));
    berth__jscan_init(&s, data, len);
    rc = berth__jscan_object_begin(&s);
    while (rc >= 0 && (rc = berth__jscan_object_find(&s, detail_record_keys,
                                                     BERTH_ARRAY_SIZE(detail_record_keys))) > 0) {
        int which = rc;

        if (which == 2 || which == 3 || which == 4) {
            if (which == 2)
                rc = span_of(&s, &d->image_id.data, &d->image_id.len);
            else if (which == 3)
                rc = span_of(&s, &d->mounts.data, &d->mounts.len);
            else
                rc = span_of(&s, &d->networks.data, &d->networks.len);
            continue;
        }
        /* config or host_config: a later one replaces every member of an earlier one. */
        if (which == 1)
            d->image.data = d->labels.data = d->exposed_ports.data = NULL;
        else
            d->network_mode.data = NULL;
        if (berth__jscan_type(&s) != BERTH_JSCAN_OBJECT) {
            rc = berth__jscan_skip(&s, NULL, NULL);
            continue;
        }
        rc = berth__jscan_object_begin(&s);
        if (which == 1) {
            while (rc >= 0 &&
                   (rc = berth__jscan_object_find(&s, detail_config_keys,
                                                  BERTH_ARRAY_SIZE(detail_config_keys))) > 0)
                rc = rc == 1   ? span_of(&s, &d->image.data, &d->image.len)
                     : rc == 2 ? span_of(&s, &d->labels.data, &d->labels.len)
                               : span_of(&s, &d->exposed_ports.data, &d->exposed_ports.len);
        } else {
            while (rc >= 0 && (rc = berth__jscan_object_find(&s, detail_hc_keys, 1)) > 0)
                rc = span_of(&s, &d->network_mode.data, &d->network_mode.len);
        }
    }
    if (rc >= 0)
        rc = berth__jscan_end(&s);
    if (rc < 0) {
        const char *why = berth__jscan_error(&s, &pos);
        return berth_err_set(err, -EBADMSG, "invalid JSON at byte %zu: %s", why ? pos : 0,
                             why ? why : "expected an object");
    }
    return 0;
}

struct summaries_ctx {
    berth_container_summary_t *items;
    size_t n, cap;
    const char *dir;
    berth_err_t *err;
};

static int summary_add(const char *key, const void *data, size_t len, void *userdata)
{
    struct summaries_ctx *c = userdata;
    berth_err_t lerr;
    int rc;

    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        berth_container_summary_t *items = reallocarray(c->items, cap, sizeof(*items));

        if (!items)
            return berth_err_set(c->err, -ENOMEM, "out of memory");
        c->items = items;
        c->cap = cap;
    }
    rc = berth__container_summary_parse(data, len, &c->items[c->n], &lerr);
    if (rc < 0)
        return berth_err_set(c->err, rc, "store %s: containers/%s: %s", c->dir, key, lerr.msg);
    c->items[c->n].raw = data;
    c->items[c->n].raw_len = len;
    c->n++;
    return 0;
}

int berth__container_summaries_in(berth_txn_t *txn, berth_container_summary_t **ret_items,
                                  size_t *ret_n, berth_err_t *err)
{
    struct summaries_ctx c = { .dir = berth__store_dir(berth__store_txn_store(txn)), .err = err };
    uint64_t count;
    int rc;

    /* Sized once from the count: no copying while 10,000 items are read. */
    rc = berth__store_count(txn, BERTH_DB_CONTAINERS, &count, err);
    if (rc < 0)
        return rc;
    if (count) {
        c.items = reallocarray(NULL, (size_t)count, sizeof(*c.items));
        if (!c.items)
            return berth_err_set(err, -ENOMEM, "out of memory");
        c.cap = (size_t)count;
    }
    rc = berth__store_walk_raw(txn, BERTH_DB_CONTAINERS, NULL, summary_add, &c, err);
    if (rc < 0) {
        free(c.items);
        return rc;
    }
    if (c.n == 0) {
        free(c.items);
        c.items = NULL;
    }
    *ret_items = c.items;
    *ret_n = c.n;
    return 0;
}

void berth__container_summaries_free(berth_container_summary_t *items)
{
    free(items);
}

/* ---- one transaction each ---- */

int berth__container_create(berth_store_t *store, json_t *doc, json_t *attrs, json_t **ret_doc,
                            berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *rec = NULL;
    int rc;

    rc = berth__store_txn_begin(store, 1, &txn, err);
    if (rc < 0)
        return rc;
    rc = berth__container_create_in(txn, doc, attrs, &rec, err);
    if (rc < 0)
        return rc;
    rc = berth__store_txn_commit(TAKE_PTR(txn), err);
    if (rc < 0)
        return rc;
    if (ret_doc)
        *ret_doc = TAKE_PTR(rec);
    return 0;
}

int berth__container_get(berth_store_t *store, const char *ref, json_t **ret_doc, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int rc;

    rc = berth__store_txn_begin(store, 0, &txn, err);
    if (rc < 0)
        return rc;
    return berth__container_get_in(txn, ref, ret_doc, err);
}

int berth__container_update(berth_store_t *store, json_t *doc, const char *action, json_t *attrs,
                            json_t **ret_doc, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *rec = NULL;
    int rc;

    rc = berth__store_txn_begin(store, 1, &txn, err);
    if (rc < 0)
        return rc;
    rc = berth__container_update_in(txn, doc, action, attrs, &rec, err);
    if (rc < 0)
        return rc;
    rc = berth__store_txn_commit(TAKE_PTR(txn), err);
    if (rc < 0)
        return rc;
    if (ret_doc)
        *ret_doc = TAKE_PTR(rec);
    return 0;
}

int berth__container_delete(berth_store_t *store, const char *ref, json_t *attrs, json_t **ret_doc,
                            berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    _cleanup_json_ json_t *old = NULL;
    int rc;

    rc = berth__store_txn_begin(store, 1, &txn, err);
    if (rc < 0)
        return rc;
    rc = berth__container_delete_in(txn, ref, attrs, &old, err);
    if (rc < 0)
        return rc;
    rc = berth__store_txn_commit(TAKE_PTR(txn), err);
    if (rc < 0)
        return rc;
    if (ret_doc)
        *ret_doc = TAKE_PTR(old);
    return 0;
}

int berth__container_list(berth_store_t *store, json_t **ret_array, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int rc;

    rc = berth__store_txn_begin(store, 0, &txn, err);
    if (rc < 0)
        return rc;
    return berth__container_list_in(txn, ret_array, err);
}

int berth__container_summaries(berth_store_t *store, berth_container_summary_t **ret_items,
                               size_t *ret_n, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int rc;

    rc = berth__store_txn_begin(store, 0, &txn, err);
    if (rc < 0)
        return rc;
    return berth__container_summaries_in(txn, ret_items, ret_n, err);
}

int berth__container_count(berth_store_t *store, uint64_t *ret_count, berth_err_t *err)
{
    _cleanup_txn_ berth_txn_t *txn = NULL;
    int rc;

    rc = berth__store_txn_begin(store, 0, &txn, err);
    if (rc < 0)
        return rc;
    return berth__store_count(txn, BERTH_DB_CONTAINERS, ret_count, err);
}
