/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content store: only verified bytes are published, a mismatch leaves
 * nothing, an interrupted ingest resumes, concurrent writers of one blob
 * end with one copy, and digests never become paths outside the store.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "content.h"
#include "digest.h"
#include "util.h"

struct fx {
    char dir[256];
    berth_content_t *cs;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    snprintf(f->dir, sizeof(f->dir), "%s/berth-content-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(berth__content_open(f->dir, &f->cs, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    berth__content_close(f->cs);
    assert_int_equal(berth__rm_rf(f->dir), 0);
    free(f);
    return 0;
}

static void digest_of(const void *p, size_t n, char out[72])
{
    berth_sha256_t c;
    assert_int_equal(berth__sha256_init(&c), 0);
    berth__sha256_update(&c, p, n);
    assert_int_equal(berth__sha256_final(&c, out), 0);
}

static int count_files(const char *dir)
{
    char cmd[600];
    FILE *p;
    int n = -1;
    snprintf(cmd, sizeof(cmd), "find '%s' -type f | wc -l", dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void test_content_publishes_verified_blob(void **state)
{
    struct fx *f = *state;
    const char data[] = "hello, blob";
    char dg[72], *buf = NULL;
    berth_content_writer_t *w = NULL;
    int64_t off = -1, size = 0;
    size_t len = 0;

    digest_of(data, sizeof(data) - 1, dg);
    assert_int_equal(berth__content_stat(f->cs, dg, NULL, NULL), -ENOENT);
    assert_int_equal(berth__content_writer_open(f->cs, dg, sizeof(data) - 1, &w, &off, NULL), 0);
    assert_int_equal(off, 0);
    assert_int_equal(berth__content_writer_write(w, data, 5, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, data + 5, sizeof(data) - 6, NULL), 0);
    assert_int_equal(berth__content_writer_commit(w, NULL), 0);
    berth__content_writer_close(w, 0);
    assert_int_equal(berth__content_stat(f->cs, dg, &size, NULL), 0);
    assert_int_equal(size, sizeof(data) - 1);
    assert_int_equal(berth__content_read_all(f->cs, dg, 100, &buf, &len, NULL), 0);
    assert_int_equal(len, sizeof(data) - 1);
    assert_string_equal(buf, data);
    free(buf);
    /* Too large for the caller's limit. */
    assert_int_equal(berth__content_read_all(f->cs, dg, 4, &buf, &len, NULL), -EFBIG);
    /* A second writer for a stored blob has nothing to do. */
    assert_int_equal(berth__content_writer_open(f->cs, dg, sizeof(data) - 1, &w, &off, NULL),
                     -EEXIST);
}

static void test_content_mismatch_leaves_nothing(void **state)
{
    struct fx *f = *state;
    const char data[] = "the real bytes";
    char dg[72], ingest[300];
    berth_content_writer_t *w = NULL;
    berth_err_t err = { 0 };
    int64_t off;

    digest_of(data, sizeof(data) - 1, dg);
    assert_int_equal(berth__content_writer_open(f->cs, dg, sizeof(data) - 1, &w, &off, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, "the fake bytes", 14, NULL), 0);
    assert_int_equal(berth__content_writer_commit(w, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "digest mismatch"));
    assert_non_null(strstr(err.msg, dg));
    berth__content_writer_close(w, 1);
    assert_int_equal(berth__content_stat(f->cs, dg, NULL, NULL), -ENOENT);
    snprintf(ingest, sizeof(ingest), "%s/content", f->dir);
    assert_int_equal(count_files(ingest), 0);

    /* More bytes than announced are refused while they arrive. */
    assert_int_equal(berth__content_writer_open(f->cs, dg, 4, &w, &off, NULL), 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(berth__content_writer_write(w, data, 5, &err), -EFBIG);
    berth__content_writer_close(w, 0);
    /* Fewer bytes than announced are a size mismatch. */
    assert_int_equal(berth__content_writer_open(f->cs, dg, 100, &w, &off, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, data, sizeof(data) - 1, NULL), 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(berth__content_writer_commit(w, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "size mismatch"));
    berth__content_writer_close(w, 0);
    assert_int_equal(count_files(ingest), 0);
}

static void test_content_resumes_partial(void **state)
{
    struct fx *f = *state;
    char data[100000], dg[72];
    berth_content_writer_t *w = NULL;
    int64_t off = -1;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + 3);
    digest_of(data, sizeof(data), dg);
    assert_int_equal(berth__content_writer_open(f->cs, dg, sizeof(data), &w, &off, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, data, 40000, NULL), 0);
    berth__content_writer_close(w, 1); /* interrupted */
    assert_int_equal(berth__content_writer_open(f->cs, dg, sizeof(data), &w, &off, NULL), 0);
    assert_int_equal(off, 40000);
    assert_int_equal(berth__content_writer_write(w, data + 40000, sizeof(data) - 40000, NULL), 0);
    assert_int_equal(berth__content_writer_commit(w, NULL), 0);
    berth__content_writer_close(w, 0);
    assert_int_equal(berth__content_stat(f->cs, dg, NULL, NULL), 0);
}

/* What an interrupted attempt left is read back for an unpacker that needs the blob from byte 0. */
static void test_content_reads_back_resumed_bytes(void **state)
{
    struct fx *f = *state;
    char data[100000], back[100000], dg[72];
    berth_content_writer_t *w = NULL;
    int64_t off = -1, n, got = 0;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 13 + 5);
    digest_of(data, sizeof(data), dg);
    assert_int_equal(berth__content_writer_open(f->cs, dg, sizeof(data), &w, &off, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, data, 60000, NULL), 0);
    berth__content_writer_close(w, 1); /* interrupted */
    assert_int_equal(berth__content_writer_open(f->cs, dg, sizeof(data), &w, &off, NULL), 0);
    assert_int_equal(off, 60000);
    while ((n = berth__content_writer_read_at(w, back + got, 7000, got, NULL)) > 0)
        got += n;
    assert_int_equal(n, 0);
    assert_int_equal(got, 60000);
    assert_memory_equal(back, data, 60000);
    /* Only what the writer holds: nothing past its offset. */
    assert_int_equal(berth__content_writer_read_at(w, back, sizeof(back), 60000, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, data + 60000, sizeof(data) - 60000, NULL), 0);
    assert_int_equal(berth__content_writer_read_at(w, back, 10, 99995, NULL), 5);
    assert_memory_equal(back, data + 99995, 5);
    assert_int_equal(berth__content_writer_commit(w, NULL), 0);
    berth__content_writer_close(w, 0);
}

static void test_content_concurrent_writers(void **state)
{
    struct fx *f = *state;
    char data[200000], dg[72], blobs[300];
    pid_t pids[3];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i % 251);
    digest_of(data, sizeof(data), dg);
    for (int k = 0; k < 3; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            berth_content_t *cs = NULL;
            berth_content_writer_t *w = NULL;
            int64_t off;
            int r;
            if (berth__content_open(f->dir, &cs, NULL) < 0)
                _exit(10);
            r = berth__content_writer_open(cs, dg, sizeof(data), &w, &off, NULL);
            if (r == -EEXIST)
                _exit(0);
            if (r < 0)
                _exit(11);
            for (size_t p = (size_t)off; p < sizeof(data); p += 1000)
                if (berth__content_writer_write(w, data + p, 1000, NULL) < 0)
                    _exit(12);
            r = berth__content_writer_commit(w, NULL);
            berth__content_writer_close(w, 0);
            _exit(r < 0 ? 13 : 0);
        }
    }
    for (int k = 0; k < 3; k++) {
        int st;
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    snprintf(blobs, sizeof(blobs), "%s/content/blobs", f->dir);
    assert_int_equal(count_files(blobs), 1);
}

static int walk_count(const char *digest, int64_t size, int64_t mtime_ns, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static void test_content_rejects_bad_digests_and_walks(void **state)
{
    struct fx *f = *state;
    const char *bad[] = {
        "sha256:../../../../etc/passwd", "sha256:ABC", "md5:00", "",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"
    };
    berth_content_writer_t *w = NULL;
    berth_stream_t *s = NULL;
    char dg[72];
    int64_t off;
    int n = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        berth_err_t err = { 0 };
        assert_int_equal(berth__content_writer_open(f->cs, bad[i], 1, &w, &off, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "invalid digest"));
        assert_int_equal(berth__content_reader(f->cs, bad[i], &s, NULL), -EINVAL);
        assert_int_equal(berth__content_remove(f->cs, bad[i], NULL), -EINVAL);
    }
    digest_of("x", 1, dg);
    assert_int_equal(berth__content_writer_open(f->cs, dg, 1, &w, &off, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, "x", 1, NULL), 0);
    assert_int_equal(berth__content_writer_commit(w, NULL), 0);
    berth__content_writer_close(w, 0);
    assert_int_equal(berth__content_walk(f->cs, walk_count, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(berth__content_reader(f->cs, dg, &s, NULL), 0);
    char c;
    assert_int_equal(s->read(s, &c, 1, NULL), 1);
    assert_int_equal(c, 'x');
    assert_int_equal(s->read(s, &c, 1, NULL), 0);
    s->close(s);
    assert_int_equal(berth__content_remove(f->cs, dg, NULL), 0);
    n = 0;
    assert_int_equal(berth__content_walk(f->cs, walk_count, &n, NULL), 0);
    assert_int_equal(n, 0);
}

static void test_content_ingest_prune(void **state)
{
    struct fx *f = *state;
    berth_content_writer_t *w = NULL;
    uint64_t count = 0, bytes = 0;
    char dg[72];
    int64_t off;

    digest_of("partial", 7, dg);
    assert_int_equal(berth__content_writer_open(f->cs, dg, 7, &w, &off, NULL), 0);
    assert_int_equal(berth__content_writer_write(w, "par", 3, NULL), 0);
    berth__content_writer_close(w, 1);
    /* Newer than the cut-off: kept. */
    assert_int_equal(berth__content_ingest_prune(f->cs, 0, &count, &bytes, NULL), 0);
    assert_int_equal(count, 0);
    assert_int_equal(berth__content_ingest_prune(f->cs, INT64_MAX, &count, &bytes, NULL), 0);
    assert_int_equal(count, 1);
    assert_int_equal(bytes, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_content_publishes_verified_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_mismatch_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_resumes_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_reads_back_resumed_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_rejects_bad_digests_and_walks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_content_ingest_prune, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
