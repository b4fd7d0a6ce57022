/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "image-test.h"

static void sha256_hex(const void *buf, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    assert_int_equal(EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL), 1);
    strcpy(out, "sha256:");
    for (unsigned int i = 0; i < n; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static json_t *load_file_json(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j)
        fail_msg("%s: %s", path, jerr.text);
    return j;
}

void itest_setup(struct itest *t, const char *name)
{
    const char *dir = getenv("BERTH_PLUGIN_PATH");
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char module[PATH_MAX], p[PATH_MAX];
    berth_plugin_env_t env = { 0 };
    berth_err_t err = { 0 };
    berth_driver_t *drv;
    json_t *index, *m, *cfg;
    struct stat sb;

    memset(t, 0, sizeof(*t));
    t->demo = getenv("DEMO_IMAGE");
    if (!t->demo || stat(t->demo, &sb) < 0) {
        print_message("skip: DEMO_IMAGE is not built (needs busybox-static)\n");
        exit(77);
    }
    if (itest_sh("command -v skopeo >/dev/null") != 0) {
        print_message("skip: skopeo is not installed\n");
        exit(77);
    }
    assert_non_null(dir);
    snprintf(t->scratch, sizeof(t->scratch), "%s/berth-image-test-XXXXXX", base);
    assert_non_null(mkdtemp(t->scratch));
    env.root = t->scratch;
    env.runroot = t->scratch;
    assert_int_equal(berth__registry_new(&env, &t->reg, &err), 0);
    snprintf(module, sizeof(module), "%s/image-%s.so", dir, name);
    if (berth__registry_load_file(t->reg, module, &err) < 0)
        fail_msg("load %s: %s", module, err.msg);
    drv = berth__registry_driver(t->reg, 0);
    t->ops = drv->ops;
    t->priv = drv->priv;

    /* The demo image's digests, read straight from its files. */
    snprintf(p, sizeof(p), "%s/index.json", t->demo);
    index = load_file_json(p);
    snprintf(t->demo_manifest, sizeof(t->demo_manifest), "%s",
             json_string_value(json_object_get(
                 json_array_get(json_object_get(index, "manifests"), 0), "digest")));
    json_decref(index);
    snprintf(p, sizeof(p), "%s/blobs/sha256/%s", t->demo, t->demo_manifest + 7);
    m = load_file_json(p);
    snprintf(t->demo_config, sizeof(t->demo_config), "%s",
             json_string_value(json_object_get(json_object_get(m, "config"), "digest")));
    snprintf(t->demo_layer, sizeof(t->demo_layer), "%s",
             json_string_value(
                 json_object_get(json_array_get(json_object_get(m, "layers"), 0), "digest")));
    json_decref(m);
    snprintf(p, sizeof(p), "%s/blobs/sha256/%s", t->demo, t->demo_config + 7);
    cfg = load_file_json(p);
    snprintf(t->demo_diff_id, sizeof(t->demo_diff_id), "%s",
             json_string_value(
                 json_array_get(json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), 0)));
    json_decref(cfg);
}

void itest_teardown(struct itest *t)
{
    berth__registry_free(t->reg);
    if (t->scratch[0])
        assert_int_equal(itest_sh("rm -rf '%s'", t->scratch), 0);
}

static int vsh(char **out, const char *fmt, va_list ap)
{
    char cmd[8192];
    int st;

    assert_true(vsnprintf(cmd, sizeof(cmd), fmt, ap) < (int)sizeof(cmd));
    if (!out) {
        st = system(cmd);
        return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    }
    FILE *f = popen(cmd, "r");
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    assert_non_null(f);
    assert_non_null(buf);
    for (size_t n; (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    st = pclose(f);
    *out = buf;
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int itest_sh(const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vsh(NULL, fmt, ap);
    va_end(ap);
    return r;
}

char *itest_sh_output(const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vsh(&out, fmt, ap);
    va_end(ap);
    if (r != 0) {
        print_message("command failed (%d), output: %s\n", r, out);
        free(out);
        return NULL;
    }
    return out;
}

const char *itest_path(struct itest *t, const char *name, char *buf, size_t len)
{
    assert_true((size_t)snprintf(buf, len, "%s/%s", t->scratch, name) < len);
    return buf;
}

void itest_fixture(const char *args_fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, args_fmt);
    assert_true(vsnprintf(args, sizeof(args), args_fmt, ap) < (int)sizeof(args));
    va_end(ap);
    assert_int_equal(itest_sh("'%s' '%s' %s", getenv("PYTHON") ? getenv("PYTHON") : "python3",
                              getenv("IMAGE_FIXTURES"), args),
                     0);
}

void *itest_open(struct itest *t, const char *location, uint32_t flags)
{
    berth_image_location_t loc = {
        .struct_size = sizeof(loc),
        .location = location,
        .options_json = "{}",
    };
    berth_err_t err = { 0 };
    void *s = NULL;
    int r = t->ops->open(t->priv, &loc, flags, &s, &err);
    if (r != 0)
        fail_msg("open %s: %d %s", location, r, err.msg);
    assert_non_null(s);
    return s;
}

const char *itest_open_fails(struct itest *t, const char *location, int code)
{
    static berth_err_t err;
    berth_image_location_t loc = {
        .struct_size = sizeof(loc),
        .location = location,
        .options_json = "{}",
    };
    void *s = NULL;
    int r;

    memset(&err, 0, sizeof(err));
    r = t->ops->open(t->priv, &loc, 0, &s, &err);
    if (r != code)
        fail_msg("open %s: want %d, got %d (%s)", location, code, r, err.msg);
    assert_true(strlen(err.msg) > 0);
    assert_null(strchr(err.msg, '\n'));
    print_message("  open %s -> %s\n", strrchr(location, '/') + 1, err.msg);
    return err.msg;
}

char *itest_fetch_verified(struct itest *t, void *session, const berth_descriptor_t *desc,
                           size_t *ret_len)
{
    berth_stream_t *s = NULL;
    berth_err_t err = { 0 };
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1), got[80];
    int64_t n;
    int r;

    assert_non_null(buf);
    r = t->ops->fetch(t->priv, session, desc, 0, 0, &s, &err);
    if (r != 0)
        fail_msg("fetch %s: %d %s", desc->digest, r, err.msg);
    for (;;) {
        if (cap - len < 65536) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        n = s->read(s, buf + len, cap - len, &err);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    assert_int_equal(n, 0);
    if (s->size >= 0)
        assert_int_equal(s->size, (int64_t)len);
    s->close(s);
    buf[len] = '\0';
    assert_int_equal(desc->size, (int64_t)len);
    sha256_hex(buf, len, got);
    assert_string_equal(got, desc->digest);
    if (!ret_len) {
        free(buf);
        return NULL;
    }
    *ret_len = len;
    return buf;
}

static void json_desc(json_t *obj, berth_descriptor_t *d)
{
    memset(d, 0, sizeof(*d));
    d->struct_size = sizeof(*d);
    assert_non_null(json_string_value(json_object_get(obj, "mediaType")));
    assert_non_null(json_string_value(json_object_get(obj, "digest")));
    snprintf(d->media_type, sizeof(d->media_type), "%s",
             json_string_value(json_object_get(obj, "mediaType")));
    snprintf(d->digest, sizeof(d->digest), "%s", json_string_value(json_object_get(obj, "digest")));
    d->size = json_integer_value(json_object_get(obj, "size"));
}

void itest_verify_image(struct itest *t, void *session, const char *ref,
                        berth_descriptor_t *ret_target, char *ret_config, char *ret_layer)
{
    berth_descriptor_t desc = { .struct_size = sizeof(desc) }, d;
    berth_err_t err = { 0 };
    json_t *doc, *l;
    size_t len, i;
    char *text;
    int r;

    r = t->ops->resolve(t->priv, session, ref, 0, &desc, &err);
    if (r != 0)
        fail_msg("resolve %s: %d %s", ref ? ref : "(null)", r, err.msg);
    if (ret_target)
        *ret_target = desc;
    text = itest_fetch_verified(t, session, &desc, &len);
    doc = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(doc);
    if (json_object_get(doc, "manifests")) {
        json_desc(json_array_get(json_object_get(doc, "manifests"), 0), &d);
        json_decref(doc);
        text = itest_fetch_verified(t, session, &d, &len);
        doc = json_loadb(text, len, 0, NULL);
        free(text);
        assert_non_null(doc);
    }
    json_desc(json_object_get(doc, "config"), &d);
    itest_fetch_verified(t, session, &d, NULL);
    if (ret_config)
        strcpy(ret_config, d.digest);
    json_array_foreach (json_object_get(doc, "layers"), i, l) {
        json_desc(l, &d);
        itest_fetch_verified(t, session, &d, NULL);
        if (i == 0 && ret_layer)
            strcpy(ret_layer, d.digest);
    }
    assert_true(json_array_size(json_object_get(doc, "layers")) > 0);
    json_decref(doc);
}

void itest_resolve_fails(struct itest *t, void *session, const char *ref, int code,
                         const char *needle)
{
    berth_descriptor_t desc = { .struct_size = sizeof(desc) };
    berth_err_t err = { 0 };
    int r = t->ops->resolve(t->priv, session, ref, 0, &desc, &err);

    if (r != code)
        fail_msg("resolve %s: want %d, got %d (%s)", ref ? ref : "(null)", code, r, err.msg);
    assert_true(strlen(err.msg) > 0);
    if (needle && !strstr(err.msg, needle))
        fail_msg("resolve %s: message \"%s\" lacks \"%s\"", ref ? ref : "(null)", err.msg, needle);
}

struct list_ctx {
    size_t n;
    const char *name;
    const berth_descriptor_t *want;
    int found;
};

static int list_cb(const char *reference, const berth_descriptor_t *desc, void *ud)
{
    struct list_ctx *c = ud;
    assert_non_null(reference);
    assert_true(strncmp(desc->digest, "sha256:", 7) == 0);
    c->n++;
    if (c->name && strcmp(reference, c->name) == 0) {
        c->found = 1;
        if (c->want)
            assert_string_equal(desc->digest, c->want->digest);
    }
    return 0;
}

size_t itest_list(struct itest *t, void *session, const char *name, const berth_descriptor_t *want)
{
    struct list_ctx c = { .name = name, .want = want };
    berth_err_t err = { 0 };
    assert_int_equal(t->ops->list(t->priv, session, 0, list_cb, &c, &err), 0);
    if (name && !c.found)
        fail_msg("list does not give %s", name);
    return c.n;
}

/* Put one blob of the demo image, fetched from a read session of the demo layout. */
static void copy_blob(const struct itest *rt, void *rs, const struct itest *wt, void *ws,
                      const berth_descriptor_t *d)
{
    berth_stream_t *s = NULL;
    berth_err_t err = { 0 };
    int r;

    assert_int_equal(rt->ops->fetch(rt->priv, rs, d, 0, 0, &s, &err), 0);
    r = wt->ops->put_blob(wt->priv, ws, d, s, 0, &err);
    if (r != 0)
        fail_msg("put_blob %s: %d %s", d->digest, r, err.msg);
    s->close(s);
}

void itest_copy_demo(struct itest *t, void *wsession, const char *ref)
{
    struct itest rt = *t;
    berth_descriptor_t m = { .struct_size = sizeof(m) }, d;
    berth_image_location_t loc = {
        .struct_size = sizeof(loc),
        .location = t->demo,
        .options_json = "{}",
    };
    const berth_image_ops_t *lops;
    berth_registry_t *reg = NULL;
    berth_plugin_env_t env = { 0 };
    berth_err_t err = { 0 };
    char module[PATH_MAX];
    void *rs = NULL;
    json_t *doc, *l;
    size_t len, i;
    char *text;
    int r;

    /* The demo is read with oci-layout whatever driver is under test. */
    env.root = t->scratch;
    env.runroot = t->scratch;
    assert_int_equal(berth__registry_new(&env, &reg, &err), 0);
    snprintf(module, sizeof(module), "%s/image-oci-layout.so", getenv("BERTH_PLUGIN_PATH"));
    if (berth__registry_find(t->reg, BERTH_KIND_IMAGE, "oci-layout")) {
        berth__registry_free(reg);
        reg = NULL;
    } else if (berth__registry_load_file(reg, module, &err) < 0) {
        fail_msg("load %s: %s", module, err.msg);
    }
    rt.ops = reg ? berth__registry_driver(reg, 0)->ops : t->ops;
    rt.priv = reg ? berth__registry_driver(reg, 0)->priv : t->priv;
    lops = rt.ops;
    assert_int_equal(lops->open(rt.priv, &loc, 0, &rs, &err), 0);
    assert_int_equal(lops->resolve(rt.priv, rs, NULL, 0, &m, &err), 0);
    text = itest_fetch_verified(&rt, rs, &m, &len);
    doc = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(doc);
    /* Children first, as the core sends them: layers, config, then the manifest. */
    json_array_foreach (json_object_get(doc, "layers"), i, l) {
        json_desc(l, &d);
        copy_blob(&rt, rs, t, wsession, &d);
    }
    json_desc(json_object_get(doc, "config"), &d);
    copy_blob(&rt, rs, t, wsession, &d);
    copy_blob(&rt, rs, t, wsession, &m);
    json_decref(doc);
    r = t->ops->put_ref(t->priv, wsession, ref, &m, 0, &err);
    if (r != 0)
        fail_msg("put_ref %s: %d %s", ref ? ref : "(null)", r, err.msg);
    lops->close(rt.priv, rs);
    berth__registry_free(reg);
}
