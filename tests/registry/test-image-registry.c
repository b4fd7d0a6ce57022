/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry image source, loaded by berth's loader, against real
 * registries on loopback started by test-registry.sh, which passes their
 * addresses in REG_* variables:
 *   REG_OPEN, REG_AUTH (htpasswd user/pass), REG_KILL (restartable),
 *   REG_TLS + REG_TLS_CA (may be empty), REG_FRONT + REG_FRONT_STORAGE
 *   (token-front.py), REG_CLOSED (nothing listens), REG_CTL (kill/start
 *   command), REG_IMAGE_JSON and REG_BIG_JSON (what was pushed), REG_MODULE.
 * Every digest is checked by hashing the bytes here, not by trusting the
 * driver.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include <berth/sdk.h>

#include "plugins.h"

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_LAYER           "application/vnd.oci.image.layer.v1.tar"

#define PJOIN(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static berth_registry_t *reg;
static const berth_image_ops_t *ops;
static void *drv;
static json_t *image; /* make-image.py's summary */
static json_t *big;   /* {"digest", "size"} of the 64 MiB blob */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

/* ---- helpers ---- */

static int open_at(const char *addr, const char *repo, const char *options, void **ret,
                   berth_err_t *err)
{
    char location[512];
    berth_image_location_t loc = { .struct_size = sizeof(loc), .location = location };

    PJOIN(location, "%s%s%s", addr, repo[0] ? "/" : "", repo);
    loc.options_json = options;
    memset(err, 0, sizeof(*err));
    return ops->open(drv, &loc, 0, ret, err);
}

static void *must_open(const char *addr, const char *options)
{
    berth_err_t err;
    void *s = NULL;
    int r = open_at(addr, "test/img", options, &s, &err);
    if (r != 0)
        fail_msg("open %s: %d %s", addr, r, err.msg);
    return s;
}

static void hex_digest(const unsigned char *md, char out[72])
{
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static void sha256_of(const void *data, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n;
    assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
    hex_digest(md, out);
}

/* Read a stream to its end into a malloc'd buffer; returns the read result (0 or -errno). */
static int64_t read_all(berth_stream_t *s, char **ret, size_t *ret_len, berth_err_t *err)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int64_t n;

    assert_non_null(buf);
    for (;;) {
        if (cap - len < 8192) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        n = s->read(s, buf + len, cap - len, err);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    *ret = buf;
    *ret_len = len;
    return n;
}

/* Fetch @desc from @offset; the bytes must be complete. */
static char *fetch_bytes(void *session, const berth_descriptor_t *desc, int64_t offset,
                         size_t *ret_len)
{
    berth_stream_t *s = NULL;
    berth_err_t err = { 0 };
    char *buf;
    int r = ops->fetch(drv, session, desc, offset, 0, &s, &err);

    if (r != 0)
        fail_msg("fetch %s at %lld: %d %s", desc->digest, (long long)offset, r, err.msg);
    if (read_all(s, &buf, ret_len, &err) != 0)
        fail_msg("read %s: %s", desc->digest, err.msg);
    s->close(s);
    return buf;
}

/* Fetch @desc and check its bytes hash to its digest and size; returns them. */
static char *fetch_verified(void *session, const berth_descriptor_t *desc, size_t *ret_len)
{
    char digest[72];
    size_t len;
    char *buf = fetch_bytes(session, desc, 0, &len);

    sha256_of(buf, len, digest);
    assert_string_equal(digest, desc->digest);
    assert_int_equal((int64_t)len, desc->size);
    if (ret_len)
        *ret_len = len;
    return buf;
}

static void desc_from_json(json_t *j, berth_descriptor_t *d)
{
    memset(d, 0, sizeof(*d));
    d->struct_size = sizeof(*d);
    assert_true(json_is_object(j));
    snprintf(d->media_type, sizeof(d->media_type), "%s",
             json_string_value(json_object_get(j, "mediaType")));
    snprintf(d->digest, sizeof(d->digest), "%s", json_string_value(json_object_get(j, "digest")));
    d->size = json_integer_value(json_object_get(j, "size"));
}

static void resolve_ok(void *session, const char *ref, berth_descriptor_t *d)
{
    berth_err_t err = { 0 };
    int r;

    memset(d, 0, sizeof(*d));
    d->struct_size = sizeof(*d);
    r = ops->resolve(drv, session, ref, 0, d, &err);
    if (r != 0)
        fail_msg("resolve %s: %d %s", ref ? ref : "(null)", r, err.msg);
}

/* Resolve "v1" and return its manifest's layer descriptors (3) and config. */
static void v1_parts(void *session, berth_descriptor_t *config, berth_descriptor_t layers[3])
{
    berth_descriptor_t m;
    json_t *root, *ls;
    size_t len;
    char *body;

    resolve_ok(session, "v1", &m);
    body = fetch_verified(session, &m, &len);
    root = json_loadb(body, len, 0, NULL);
    assert_non_null(root);
    desc_from_json(json_object_get(root, "config"), config);
    ls = json_object_get(root, "layers");
    assert_int_equal(json_array_size(ls), 3);
    for (size_t i = 0; i < 3; i++)
        desc_from_json(json_array_get(ls, i), &layers[i]);
    json_decref(root);
    free(body);
}

static json_t *http_json(const char *method, const char *url)
{
    CURL *c = curl_easy_init();
    char *data = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&data, &len);
    json_t *j;

    assert_non_null(c);
    assert_non_null(f);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    fclose(f);
    j = json_loadb(data, len, 0, NULL);
    assert_non_null(j);
    free(data);
    return j;
}

static json_int_t front_stat(const char *key)
{
    char url[256];
    json_t *j;
    json_int_t v;

    PJOIN(url, "http://%s/_test/stats", env("REG_FRONT"));
    j = http_json("GET", url);
    v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

static void ctl(const char *what)
{
    char cmd[PATH_MAX * 2];
    PJOIN(cmd, "%s %s", env("REG_CTL"), what);
    assert_int_equal(system(cmd), 0);
}

/* ---- match and options ---- */

static void test_registry_match_references_not_paths(void **state)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[PATH_MAX], cwd[PATH_MAX];
    FILE *f;

    assert_int_equal(ops->match(drv, "127.0.0.1:5000/test/img", 0), 0);
    assert_int_equal(ops->match(drv, "busybox", 0), 0);
    assert_int_equal(ops->match(drv, "ghcr.io/org/app:1.0", 0), 0);
    assert_int_equal(ops->match(drv,
                                "localhost/app@sha256:"
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                0),
                     0);
    assert_int_equal(ops->match(drv, "/srv/layout", 0), BERTH_DECLINED);
    assert_int_equal(ops->match(drv, "./layout", 0), BERTH_DECLINED);
    assert_int_equal(ops->match(drv, "Upper/Case", 0), BERTH_DECLINED);
    assert_int_equal(ops->match(drv, "", 0), BERTH_DECLINED);
    /* An existing relative path is a file, not a registry reference. */
    PJOIN(dir, "%s/berth-reg-match-XXXXXX", base);
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    f = fopen("image.tar", "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ops->match(drv, "image.tar", 0), BERTH_DECLINED);
    assert_int_equal(unlink("image.tar"), 0);
    assert_int_equal(ops->match(drv, "image.tar", 0), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_registry_open_refuses_bad_options(void **state)
{
    berth_image_location_t loc = { .struct_size = sizeof(loc) };
    berth_err_t err;
    void *s = NULL;
    char location[256];

    assert_int_equal(open_at(env("REG_OPEN"), "test/img", "{not json", &s, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "options"));
    assert_int_equal(
        open_at(env("REG_OPEN"), "test/img", "{\"auth\":{\"username\":\"u\"}}", &s, &err), -EINVAL);
    assert_int_equal(open_at(env("REG_OPEN"), "test/img", "{\"insecure\":\"yes\"}", &s, &err),
                     -EINVAL);
    assert_int_equal(open_at(env("REG_OPEN"), "test/img",
                             "{\"ca_file\":\"/nonexistent/berth-ca.pem\"}", &s, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "ca_file"));
    assert_int_equal(open_at(env("REG_OPEN"), "Test/Img", "{}", &s, &err), -EINVAL);
    assert_int_equal(
        open_at(env("REG_OPEN"), "test/img", "{\"user_agent\":\"a\\r\\nX-Evil: 1\"}", &s, &err),
        -EINVAL);
    /* No pushing. */
    PJOIN(location, "%s/test/img", env("REG_OPEN"));
    loc.location = location;
    loc.options_json = "{}";
    assert_int_equal(ops->open(drv, &loc, BERTH_IMAGE_OPEN_WRITE, &s, &err), -ENOTSUP);
    assert_null(s);
}

/* ---- anonymous pulls ---- */

static void test_registry_resolve_media_types_and_digests(void **state)
{
    void *s = must_open(env("REG_OPEN"), "{}");
    berth_descriptor_t d, v1, multi;
    char ref[256];

    desc_from_json(json_object_get(image, "v1"), &v1);
    desc_from_json(json_object_get(image, "multi"), &multi);

    resolve_ok(s, "v1", &d);
    assert_string_equal(d.media_type, MT_OCI_MANIFEST);
    assert_string_equal(d.digest, v1.digest);
    assert_int_equal(d.size, v1.size);

    resolve_ok(s, "multi", &d);
    assert_string_equal(d.media_type, MT_OCI_INDEX);
    assert_string_equal(d.digest, multi.digest);
    assert_int_equal(d.size, multi.size);

    resolve_ok(s, "docker", &d);
    assert_string_equal(d.media_type, MT_DOCKER_MANIFEST);
    free(fetch_verified(s, &d, NULL));
    resolve_ok(s, "dlist", &d);
    assert_string_equal(d.media_type, MT_DOCKER_LIST);
    free(fetch_verified(s, &d, NULL));

    /* The same manifest by digest, in every spelling accepted. */
    resolve_ok(s, v1.digest, &d);
    assert_string_equal(d.digest, v1.digest);
    PJOIN(ref, "@%s", v1.digest);
    resolve_ok(s, ref, &d);
    assert_string_equal(d.digest, v1.digest);
    resolve_ok(s, "test/img:v1", &d);
    assert_string_equal(d.digest, v1.digest);
    PJOIN(ref, "%s/test/img@%s", env("REG_OPEN"), v1.digest);
    resolve_ok(s, ref, &d);
    assert_string_equal(d.media_type, MT_OCI_MANIFEST);
    assert_string_equal(d.digest, v1.digest);
    ops->close(drv, s);

    /* The location's own tag is what NULL resolves to; "latest" otherwise. */
    {
        berth_err_t err;
        char addr[256];
        void *s2 = NULL;
        PJOIN(addr, "%s", env("REG_OPEN"));
        assert_int_equal(open_at(addr, "test/img:multi", "{}", &s2, &err), 0);
        resolve_ok(s2, NULL, &d);
        assert_string_equal(d.digest, multi.digest);
        memset(&err, 0, sizeof(err));
        assert_int_equal(ops->resolve(drv, s2, "other/repo:v1", 0, &d, &err), -ENOENT);
        ops->close(drv, s2);
    }
}

static void test_registry_localhost_falls_back_to_http(void **state)
{
    const char *open = env("REG_OPEN");
    char addr[128];
    berth_descriptor_t d;
    void *s;

    /* "localhost:PORT" is loopback too: HTTPS fails, plain HTTP is allowed. */
    PJOIN(addr, "localhost%s", strchr(open, ':'));
    s = must_open(addr, "{}");
    resolve_ok(s, "v1", &d);
    assert_string_equal(d.media_type, MT_OCI_MANIFEST);
    ops->close(drv, s);
}

static void test_registry_fetch_manifest_config_layers(void **state)
{
    void *s = must_open(env("REG_OPEN"), "{}");
    berth_descriptor_t config, layers[3], want;
    json_t *wl = json_object_get(image, "v1_layers");

    v1_parts(s, &config, layers);
    desc_from_json(json_object_get(image, "v1_config"), &want);
    assert_string_equal(config.digest, want.digest);
    free(fetch_verified(s, &config, NULL));
    for (size_t i = 0; i < 3; i++) {
        desc_from_json(json_array_get(wl, i), &want);
        assert_string_equal(layers[i].digest, want.digest);
        assert_string_equal(layers[i].media_type, want.media_type);
        free(fetch_verified(s, &layers[i], NULL));
    }
    ops->close(drv, s);
}

static void test_registry_index_then_platform_manifest(void **state)
{
    void *s = must_open(env("REG_OPEN"), "{}");
    berth_descriptor_t idx, arm, want;
    json_t *root, *ms, *m, *layers;
    size_t len, i;
    char *body;
    int found = 0;

    resolve_ok(s, "multi", &idx);
    body = fetch_verified(s, &idx, &len);
    root = json_loadb(body, len, 0, NULL);
    assert_non_null(root);
    ms = json_object_get(root, "manifests");
    assert_int_equal(json_array_size(ms), 2);
    json_array_foreach (ms, i, m) {
        json_t *p = json_object_get(m, "platform");
        if (strcmp(json_string_value(json_object_get(p, "architecture")), "arm64") == 0) {
            desc_from_json(m, &arm);
            found = 1;
        }
    }
    assert_true(found);
    json_decref(root);
    free(body);
    desc_from_json(json_object_get(image, "arm64"), &want);
    assert_string_equal(arm.digest, want.digest);
    /* Not resolved before: fetched by digest from /manifests/. */
    body = fetch_verified(s, &arm, &len);
    root = json_loadb(body, len, 0, NULL);
    layers = json_object_get(root, "layers");
    assert_int_equal(json_array_size(layers), 2);
    json_array_foreach (layers, i, m) {
        berth_descriptor_t l;
        desc_from_json(m, &l);
        free(fetch_verified(s, &l, NULL));
    }
    json_decref(root);
    free(body);
    ops->close(drv, s);
}

static void test_registry_fetch_at_offset(void **state)
{
    void *s = must_open(env("REG_OPEN"), "{}");
    berth_descriptor_t config, layers[3], m;
    berth_stream_t *st = NULL;
    berth_err_t err = { 0 };
    size_t full_len, tail_len;
    char *full, *tail;
    const int64_t off = 1000003;

    v1_parts(s, &config, layers);
    full = fetch_verified(s, &layers[2], &full_len);
    assert_true((int64_t)full_len > off);
    tail = fetch_bytes(s, &layers[2], off, &tail_len);
    assert_int_equal(tail_len, full_len - (size_t)off);
    assert_memory_equal(tail, full + off, tail_len);
    free(tail);
    /* Offset at the very end: an empty stream. */
    tail = fetch_bytes(s, &layers[2], layers[2].size, &tail_len);
    assert_int_equal(tail_len, 0);
    free(tail);
    free(full);
    /* A manifest at an offset (from the cached body). */
    resolve_ok(s, "v1", &m);
    full = fetch_bytes(s, &m, 0, &full_len);
    tail = fetch_bytes(s, &m, 100, &tail_len);
    assert_int_equal(tail_len, full_len - 100);
    assert_memory_equal(tail, full + 100, tail_len);
    free(tail);
    free(full);
    /* Past the end is the caller's mistake. */
    assert_int_equal(ops->fetch(drv, s, &layers[2], layers[2].size + 1, 0, &st, &err), -EINVAL);
    assert_null(st);
    ops->close(drv, s);
}

static void test_registry_absent_things_are_enoent(void **state)
{
    void *s = must_open(env("REG_OPEN"), "{}");
    berth_descriptor_t d = { .struct_size = sizeof(d) };
    berth_stream_t *st = NULL;
    berth_err_t err = { 0 };
    char want[256];

    assert_int_equal(ops->resolve(drv, s, "nope", 0, &d, &err), -ENOENT);
    PJOIN(want, "registry %s: test/img:nope: not found", env("REG_OPEN"));
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, -ENOENT);
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(drv, s,
                                  "sha256:0000000000000000000000000000000000000000000000"
                                  "000000000000000000",
                                  0, &d, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "not found"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(drv, s, "bad tag!", 0, &d, &err), -EINVAL);

    snprintf(d.media_type, sizeof(d.media_type), "%s", MT_LAYER);
    snprintf(d.digest, sizeof(d.digest),
             "sha256:1111111111111111111111111111111111111111111111111111111111111111");
    d.size = 10;
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->fetch(drv, s, &d, 0, 0, &st, &err), -ENOENT);
    assert_null(st);
    assert_non_null(strstr(err.msg, "not found"));
    /* A digest that is not one never reaches a URL. */
    snprintf(d.digest, sizeof(d.digest), "sha256:../../v2/_catalog");
    assert_int_equal(ops->fetch(drv, s, &d, 0, 0, &st, &err), -EINVAL);
    ops->close(drv, s);

    /* A repository that does not exist. */
    memset(&err, 0, sizeof(err));
    assert_int_equal(open_at(env("REG_OPEN"), "test/absent", "{}", &s, &err), 0);
    assert_int_equal(ops->resolve(drv, s, NULL, 0, &d, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "test/absent:latest: not found"));
    ops->close(drv, s);
}

struct reader {
    berth_stream_t *st;
    char digest[72];
    size_t len;
    int64_t result;
    int reads;
};

static void *read_thread(void *arg)
{
    struct reader *rd = arg;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n;
    char buf[4096];
    berth_err_t err = { 0 };
    int64_t got;

    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((got = rd->st->read(rd->st, buf, sizeof(buf), &err)) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)got);
        rd->len += (size_t)got;
        rd->reads++;
    }
    rd->result = got;
    EVP_DigestFinal_ex(ctx, md, &n);
    EVP_MD_CTX_free(ctx);
    hex_digest(md, rd->digest);
    return NULL;
}

static void test_registry_three_streams_on_three_threads(void **state)
{
    void *s = must_open(env("REG_OPEN"), "{}");
    berth_descriptor_t config, layers[3];
    struct reader rd[3] = { { 0 } };
    pthread_t t[3];
    berth_err_t err = { 0 };

    v1_parts(s, &config, layers);
    /* All three open before any is read: they are in flight together. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops->fetch(drv, s, &layers[i], 0, 0, &rd[i].st, &err), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, read_thread, &rd[i]), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(rd[i].result, 0);
        assert_string_equal(rd[i].digest, layers[i].digest);
        assert_int_equal((int64_t)rd[i].len, layers[i].size);
        rd[i].st->close(rd[i].st);
    }
    /* Many small reads each (for the big layer), with all three transfers open at once. */
    assert_true(rd[2].reads > 100);
    ops->close(drv, s);
}

/* ---- Basic auth (the registry's htpasswd) ---- */

static void test_registry_basic_auth_right_credentials(void **state)
{
    void *s =
        must_open(env("REG_AUTH"), "{\"auth\":{\"username\":\"user\",\"password\":\"pass\"}}");
    berth_descriptor_t config, layers[3];

    v1_parts(s, &config, layers);
    free(fetch_verified(s, &config, NULL));
    free(fetch_verified(s, &layers[0], NULL));
    ops->close(drv, s);
}

static void test_registry_basic_auth_wrong_credentials_fail_at_open(void **state)
{
    berth_err_t err;
    char want[256];
    void *s = NULL;

    assert_int_equal(open_at(env("REG_AUTH"), "test/img",
                             "{\"auth\":{\"username\":\"user\",\"password\":\"s3cr3t-wrong\"}}", &s,
                             &err),
                     -EACCES);
    assert_null(s);
    PJOIN(want, "registry %s: unauthorized: ", env("REG_AUTH"));
    assert_true(strncmp(err.msg, want, strlen(want)) == 0);
    assert_null(strstr(err.msg, "s3cr3t-wrong"));
}

static void test_registry_basic_auth_without_credentials_fails_at_resolve(void **state)
{
    void *s = must_open(env("REG_AUTH"), "{}");
    berth_descriptor_t d = { .struct_size = sizeof(d) };
    berth_err_t err = { 0 };
    char want[256];

    assert_int_equal(ops->resolve(drv, s, "v1", 0, &d, &err), -EACCES);
    PJOIN(want, "registry %s: unauthorized: ", env("REG_AUTH"));
    assert_true(strncmp(err.msg, want, strlen(want)) == 0);
    ops->close(drv, s);
}

/* ---- Bearer tokens (token-front.py) ---- */

static const char front_creds[] = "{\"auth\":{\"username\":\"user\",\"password\":\"pass\"}}";

static void test_registry_bearer_token_and_redirect(void **state)
{
    json_int_t issued = front_stat("tokens_issued"), redirects = front_stat("redirects");
    json_int_t storage = front_stat("storage_gets");
    berth_descriptor_t config, layers[3], want;
    char url[256];
    json_t *j;
    void *s;

    /* open logs in: one scope-less token. */
    s = must_open(env("REG_FRONT"), front_creds);
    assert_int_equal(front_stat("tokens_issued"), issued + 1);
    PJOIN(url, "http://%s/_test/stats", env("REG_FRONT"));
    j = http_json("GET", url);
    assert_string_equal(json_string_value(json_object_get(j, "last_scope")), "");
    json_decref(j);

    v1_parts(s, &config, layers);
    /* Pulling needs the repository's scope: a second token, then reused. */
    assert_int_equal(front_stat("tokens_issued"), issued + 2);
    j = http_json("GET", url);
    assert_string_equal(json_string_value(json_object_get(j, "last_scope")),
                        "repository:test/img:pull");
    json_decref(j);
    desc_from_json(json_object_get(image, "v1"), &want);

    /* Blobs are redirected to another origin, which must not see the token. */
    free(fetch_verified(s, &config, NULL));
    for (int i = 0; i < 3; i++)
        free(fetch_verified(s, &layers[i], NULL));
    assert_int_equal(front_stat("redirects"), redirects + 4);
    assert_int_equal(front_stat("storage_gets"), storage + 4);
    assert_int_equal(front_stat("leaked_auth"), 0);
    assert_int_equal(front_stat("tokens_issued"), issued + 2);
    ops->close(drv, s);
}

static void test_registry_bearer_token_refreshed_after_expiry(void **state)
{
    void *s = must_open(env("REG_FRONT"), front_creds);
    berth_descriptor_t config, layers[3];
    json_int_t issued, rejected;
    char url[256];

    v1_parts(s, &config, layers);
    issued = front_stat("tokens_issued");
    rejected = front_stat("bearer_rejected");
    /*
     * Tokens live 2 s: after 3 the driver must know its token is stale and
     * get another before asking (no refusal). That one lives an hour.
     */
    PJOIN(url, "http://%s/_test/expires?seconds=3600", env("REG_FRONT"));
    json_decref(http_json("POST", url));
    sleep(3);
    free(fetch_verified(s, &layers[0], NULL));
    assert_int_equal(front_stat("tokens_issued"), issued + 1);
    assert_int_equal(front_stat("bearer_rejected"), rejected);

    /* A token the server forgot before its time: refused, fetched again, retried. */
    PJOIN(url, "http://%s/_test/revoke", env("REG_FRONT"));
    json_decref(http_json("POST", url));
    free(fetch_verified(s, &layers[1], NULL));
    assert_int_equal(front_stat("bearer_rejected"), rejected + 1);
    assert_int_equal(front_stat("tokens_issued"), issued + 2);
    ops->close(drv, s);
    PJOIN(url, "http://%s/_test/expires?seconds=2", env("REG_FRONT"));
    json_decref(http_json("POST", url));
}

static void test_registry_bearer_wrong_or_no_credentials(void **state)
{
    berth_descriptor_t d = { .struct_size = sizeof(d) };
    berth_err_t err;
    char want[256];
    void *s = NULL;

    assert_int_equal(open_at(env("REG_FRONT"), "test/img",
                             "{\"auth\":{\"username\":\"user\",\"password\":\"pa55-wrong\"}}", &s,
                             &err),
                     -EACCES);
    PJOIN(want, "registry %s: unauthorized: incorrect username or password", env("REG_FRONT"));
    assert_string_equal(err.msg, want);
    assert_null(strstr(err.msg, "pa55-wrong"));

    s = must_open(env("REG_FRONT"), "{}");
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(drv, s, "v1", 0, &d, &err), -EACCES);
    assert_string_equal(err.msg, want);
    ops->close(drv, s);
}

static void test_registry_identity_token(void **state)
{
    json_int_t grants = front_stat("refresh_grants");
    berth_descriptor_t d;
    berth_err_t err;
    void *s = NULL;

    s = must_open(env("REG_FRONT"), "{\"auth\":{\"identitytoken\":\"idtoken-secret\"}}");
    resolve_ok(s, "v1", &d);
    free(fetch_verified(s, &d, NULL));
    assert_int_equal(front_stat("refresh_grants"), grants + 2);
    ops->close(drv, s);
    assert_int_equal(open_at(env("REG_FRONT"), "test/img",
                             "{\"auth\":{\"identitytoken\":\"not-it\"}}", &s, &err),
                     -EACCES);
    assert_non_null(strstr(err.msg, "invalid identity token"));
}

/* ---- failures ---- */

static void test_registry_refuses_bad_manifests(void **state)
{
    void *s = must_open(env("REG_FRONT"), front_creds);
    berth_descriptor_t d = { .struct_size = sizeof(d) }, v1;
    berth_err_t err = { 0 };

    desc_from_json(json_object_get(image, "v1"), &v1);
    assert_int_equal(ops->resolve(drv, s, "huge", 0, &d, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "manifest larger than 4 MiB"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(drv, s, "huge-unsized", 0, &d, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "manifest larger than 4 MiB"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(drv, s, "lying", 0, &d, &err), -EIO);
    assert_non_null(strstr(err.msg, "does not match"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(ops->resolve(drv, s, "bigheader", 0, &d, &err), -EMSGSIZE);
    print_message("# %s\n", err.msg);
    /* No Content-Type worth the name and no digest header: the body tells both. */
    resolve_ok(s, "generic-type", &d);
    assert_string_equal(d.media_type, MT_OCI_MANIFEST);
    assert_string_equal(d.digest, v1.digest);
    assert_int_equal(d.size, v1.size);
    /* The session is still good. */
    resolve_ok(s, "v1", &d);
    assert_string_equal(d.digest, v1.digest);
    ops->close(drv, s);
}

static void test_registry_killed_mid_stream_then_resumed(void **state)
{
    void *s = must_open(env("REG_KILL"), "{}");
    berth_descriptor_t d = { .struct_size = sizeof(d) };
    berth_stream_t *st = NULL;
    berth_err_t err = { 0 };
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    char buf[65536], digest[72];
    int64_t total = 0, n;

    snprintf(d.media_type, sizeof(d.media_type), "%s", MT_LAYER);
    snprintf(d.digest, sizeof(d.digest), "%s", json_string_value(json_object_get(big, "digest")));
    d.size = json_integer_value(json_object_get(big, "size"));
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

    assert_int_equal(ops->fetch(drv, s, &d, 0, 0, &st, &err), 0);
    while (total < (1 << 20)) {
        n = st->read(st, buf, sizeof(buf), &err);
        assert_true(n > 0);
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += n;
    }
    ctl("kill kill");
    /* What the kernel had buffered still comes, then the cut. */
    while ((n = st->read(st, buf, sizeof(buf), &err)) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += n;
    }
    assert_true(n < 0);
    assert_int_equal(err.code, (int)n);
    assert_true(total < d.size);
    assert_true(strncmp(err.msg, "registry ", 9) == 0);
    assert_non_null(strstr(err.msg, d.digest));
    print_message("# cut after %lld bytes: %s\n", (long long)total, err.msg);
    st->close(st);

    /* The core would retry from where it got to. */
    ctl("start kill");
    st = NULL;
    assert_int_equal(ops->fetch(drv, s, &d, total, 0, &st, &err), 0);
    while ((n = st->read(st, buf, sizeof(buf), &err)) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += n;
    }
    assert_int_equal(n, 0);
    st->close(st);
    assert_int_equal(total, d.size);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    hex_digest(md, digest);
    assert_string_equal(digest, d.digest);
    ops->close(drv, s);
}

static void test_registry_connection_refused(void **state)
{
    berth_err_t err;
    char want[256];
    void *s = NULL;

    assert_int_equal(open_at(env("REG_CLOSED"), "test/img", "{}", &s, &err), -ECONNREFUSED);
    assert_null(s);
    PJOIN(want, "registry %s: ", env("REG_CLOSED"));
    assert_true(strncmp(err.msg, want, strlen(want)) == 0);
    print_message("# %s\n", err.msg);
}

static void test_registry_not_a_registry(void **state)
{
    berth_err_t err;
    void *s = NULL;

    /* The front's storage origin answers /v2/ with 404. */
    assert_int_equal(open_at(env("REG_FRONT_STORAGE"), "test/img", "{}", &s, &err),
                     -EPROTONOSUPPORT);
    assert_non_null(strstr(err.msg, "no registry API"));
}

static void test_registry_tls(void **state)
{
    berth_descriptor_t d;
    berth_err_t err;
    char opts[PATH_MAX + 32];
    void *s = NULL;

    if (!env("REG_TLS")[0])
        skip();
    PJOIN(opts, "{\"ca_file\":\"%s\"}", env("REG_TLS_CA"));
    s = must_open(env("REG_TLS"), opts);
    resolve_ok(s, "v1", &d);
    free(fetch_verified(s, &d, NULL));
    ops->close(drv, s);

    /* Without the CA the certificate is refused, and plain HTTP does not help. */
    assert_int_equal(open_at(env("REG_TLS"), "test/img", "{}", &s, &err), -EPROTO);
    assert_non_null(strstr(err.msg, "certificate"));
    print_message("# %s\n", err.msg);

    /* "insecure" skips the check; so does listing the host. */
    s = must_open(env("REG_TLS"), "{\"insecure\":true}");
    resolve_ok(s, "v1", &d);
    ops->close(drv, s);
    s = must_open(env("REG_TLS"), "{\"insecure_registries\":[\"127.0.0.1\"]}");
    resolve_ok(s, "v1", &d);
    ops->close(drv, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_match_references_not_paths),
        cmocka_unit_test(test_registry_open_refuses_bad_options),
        cmocka_unit_test(test_registry_resolve_media_types_and_digests),
        cmocka_unit_test(test_registry_localhost_falls_back_to_http),
        cmocka_unit_test(test_registry_fetch_manifest_config_layers),
        cmocka_unit_test(test_registry_index_then_platform_manifest),
        cmocka_unit_test(test_registry_fetch_at_offset),
        cmocka_unit_test(test_registry_absent_things_are_enoent),
        cmocka_unit_test(test_registry_three_streams_on_three_threads),
        cmocka_unit_test(test_registry_basic_auth_right_credentials),
        cmocka_unit_test(test_registry_basic_auth_wrong_credentials_fail_at_open),
        cmocka_unit_test(test_registry_basic_auth_without_credentials_fails_at_resolve),
        cmocka_unit_test(test_registry_bearer_token_and_redirect),
        cmocka_unit_test(test_registry_bearer_token_refreshed_after_expiry),
        cmocka_unit_test(test_registry_bearer_wrong_or_no_credentials),
        cmocka_unit_test(test_registry_identity_token),
        cmocka_unit_test(test_registry_refuses_bad_manifests),
        cmocka_unit_test(test_registry_killed_mid_stream_then_resumed),
        cmocka_unit_test(test_registry_connection_refused),
        cmocka_unit_test(test_registry_not_a_registry),
        cmocka_unit_test(test_registry_tls),
    };
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    berth_plugin_env_t penv = { 0 };
    berth_err_t err = { 0 };
    char scratch[PATH_MAX];
    berth_driver_t *d;
    json_error_t jerr;
    int failed;

    if (!getenv("REG_OPEN") || !getenv("REG_MODULE")) {
        fprintf(stderr, "SKIP: run through test-registry.sh, which starts the registries\n");
        return 77;
    }
    image = json_load_file(env("REG_IMAGE_JSON"), 0, &jerr);
    big = json_load_file(env("REG_BIG_JSON"), 0, &jerr);
    if (!image || !big) {
        fprintf(stderr, "test-image-registry: %s\n", jerr.text);
        return 1;
    }
    snprintf(scratch, sizeof(scratch), "%s/berth-reg-test-XXXXXX", base);
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    penv.root = scratch;
    penv.runroot = scratch;
    if (berth__registry_new(&penv, &reg, &err) < 0 ||
        berth__registry_load_file(reg, env("REG_MODULE"), &err) < 0) {
        fprintf(stderr, "test-image-registry: %s\n", err.msg);
        berth__registry_free(reg);
        rmdir(scratch);
        return 1;
    }
    d = berth__registry_find(reg, BERTH_KIND_IMAGE, "registry");
    if (!d) {
        fprintf(stderr, "test-image-registry: the module is not the registry driver\n");
        berth__registry_free(reg);
        rmdir(scratch);
        return 1;
    }
    ops = d->ops;
    drv = d->priv;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests_name("image-registry", tests, NULL, NULL);
    curl_global_cleanup();
    berth__registry_free(reg);
    json_decref(image);
    json_decref(big);
    /* The loader may have made per-driver dirs under the scratch root. */
    {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
        if (system(cmd) != 0)
            fprintf(stderr, "test-image-registry: could not remove %s\n", scratch);
    }
    return failed;
}
