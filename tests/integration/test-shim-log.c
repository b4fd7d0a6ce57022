/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-shim's json-file log writer: Docker's line format, line splitting
 * and partial lines, UTF-8 repair, and size-capped rotation that never keeps
 * more than max-file files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "shim-log.h"
#include "util.h"

struct fx {
    char dir[256];
    char path[300];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s/berth-log-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/c-json.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    assert_int_equal(berth__rm_rf(f->dir), 0);
    free(f);
    return 0;
}

/* Every line of @path parsed; new array. */
static json_t *read_lines(const char *path)
{
    json_t *arr = json_array();
    char line[70000];
    FILE *fp = fopen(path, "re");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_non_null(json_object_get(j, "time"));
        json_array_append_new(arr, j);
    }
    fclose(fp);
    return arr;
}

static const char *entry_log(json_t *arr, size_t i)
{
    return json_string_value(json_object_get(json_array_get(arr, i), "log"));
}

static void test_log_format_and_partials(void **state)
{
    struct fx *f = *state;
    berth_log_t log;
    json_t *lines;
    int64_t t = 1764290363123456000LL;
    char *big;

    assert_int_equal(berth__log_open(&log, f->path, 0, 1, NULL), 0);
    assert_int_equal(berth__log_write(&log, 1, "hello\nwor", 9, t, NULL), 0);
    assert_int_equal(berth__log_write(&log, 2, "err\"x\n", 6, t, NULL), 0);
    assert_int_equal(berth__log_write(&log, 1, "ld\n", 3, t, NULL), 0);
    assert_int_equal(berth__log_write(&log, 1, "tail", 4, t, NULL), 0);
    assert_int_equal(berth__log_write(&log, 2, "bad\xff\xc3\xa9\n", 7, t, NULL), 0);
    assert_int_equal(berth__log_flush(&log, 1, t, NULL), 0);
    /* A line without newline is cut at 16 KiB. */
    big = malloc(BERTH_LOG_PARTIAL_MAX + 10);
    memset(big, 'a', BERTH_LOG_PARTIAL_MAX + 10);
    assert_int_equal(berth__log_write(&log, 1, big, BERTH_LOG_PARTIAL_MAX + 10, t, NULL), 0);
    assert_int_equal(berth__log_flush(&log, 1, t, NULL), 0);
    free(big);
    berth__log_close(&log);

    lines = read_lines(f->path);
    assert_int_equal(json_array_size(lines), 7);
    assert_string_equal(entry_log(lines, 0), "hello\n");
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "stream")),
                        "stdout");
    assert_string_equal(entry_log(lines, 1), "err\"x\n");
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 1), "stream")),
                        "stderr");
    assert_string_equal(entry_log(lines, 2), "world\n");
    assert_string_equal(entry_log(lines, 3), "bad\xef\xbf\xbd\xc3\xa9\n");
    assert_string_equal(entry_log(lines, 4), "tail");
    assert_int_equal(strlen(entry_log(lines, 5)), BERTH_LOG_PARTIAL_MAX);
    assert_int_equal(strlen(entry_log(lines, 6)), 10);
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "time")),
                        "2025-11-28T00:39:23.123456Z");
    json_decref(lines);
}

static void test_log_time_format(void **state)
{
    char buf[64];
    berth__format_time(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    berth__format_time(1500000000, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:01.5Z");
    berth__format_time(1000000001, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:01.000000001Z");
}

static int exists(const char *base, const char *suffix)
{
    char p[400];
    struct stat st;
    snprintf(p, sizeof(p), "%s%s", base, suffix);
    return stat(p, &st) == 0;
}

static void test_log_rotation(void **state)
{
    struct fx *f = *state;
    berth_log_t log;
    char line[64];
    struct stat st;

    assert_int_equal(berth__log_open(&log, f->path, 300, 3, NULL), 0);
    for (int i = 0; i < 40; i++) {
        int n = snprintf(line, sizeof(line), "line %d\n", i);
        assert_int_equal(berth__log_write(&log, 1, line, (size_t)n, 1, NULL), 0);
        assert_false(exists(f->path, ".3"));
    }
    berth__log_close(&log);
    assert_true(exists(f->path, ""));
    assert_true(exists(f->path, ".1"));
    assert_true(exists(f->path, ".2"));
    assert_false(exists(f->path, ".3"));
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(st.st_size <= 300);
    /* The newest line is in the current file, the one before the rotation in .1. */
    {
        json_t *cur = read_lines(f->path);
        const char *last = entry_log(cur, json_array_size(cur) - 1);
        assert_string_equal(last, "line 39\n");
        json_decref(cur);
    }

    /* max-file 1: the file starts over, no numbered files. */
    assert_int_equal(berth__rm_rf(f->dir), 0);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(berth__log_open(&log, f->path, 200, 1, NULL), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(berth__log_write(&log, 2, "0123456789\n", 11, 1, NULL), 0);
    berth__log_close(&log);
    assert_false(exists(f->path, ".1"));
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(st.st_size <= 200);
}

static void test_log_opts(void **state)
{
    uint64_t size = 0;
    unsigned files = 0;
    json_t *c;
    berth_err_t err = { 0 };

    assert_int_equal(berth__log_parse_opts(NULL, &size, &files, NULL), 0);
    assert_int_equal(size, BERTH_LOG_DEFAULT_MAXSIZE);
    assert_int_equal(files, BERTH_LOG_DEFAULT_MAXFILE);
    c = json_pack("{s:s, s:s}", "max-size", "1k", "max-file", "5");
    assert_int_equal(berth__log_parse_opts(c, &size, &files, NULL), 0);
    assert_int_equal(size, 1024);
    assert_int_equal(files, 5);
    json_decref(c);
    c = json_pack("{s:s}", "max-file", "0");
    assert_int_equal(berth__log_parse_opts(c, &size, &files, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "max-file"));
    json_decref(c);
    c = json_pack("{s:s}", "max-size", "lots");
    assert_int_equal(berth__log_parse_opts(c, &size, &files, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "max-size"));
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_format_and_partials, setup, teardown),
        cmocka_unit_test(test_log_time_format),
        cmocka_unit_test_setup_teardown(test_log_rotation, setup, teardown),
        cmocka_unit_test(test_log_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
