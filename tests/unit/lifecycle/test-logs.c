/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading json-file logs through berth_container_logs: order across
 * rotated files, --tail across the rotation boundary, stream routing,
 * timestamps, torn lines, and a container without logs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <berth/engine.h>

#include "util.h"

struct fx {
    char dir[256];
    berth_engine_t *e;
    char id[65];
    char logdir[512];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char root[300], run[300], rootfs[300], cfg[300];
    berth_engine_opts_t opts = { .struct_size = sizeof(opts) };
    json_t *body;
    FILE *c;

    snprintf(f->dir, sizeof(f->dir), "%s/berth-logs-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(root, sizeof(root), "%s/root", f->dir);
    snprintf(run, sizeof(run), "%s/run", f->dir);
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", f->dir);
    snprintf(cfg, sizeof(cfg), "%s/c.json", f->dir);
    assert_int_equal(mkdir(rootfs, 0755), 0);
    c = fopen(cfg, "w");
    fputs("{\"plugin_dirs\": []}", c);
    fclose(c);
    opts.flags = BERTH_ENGINE_F_NO_PLUGINS | BERTH_ENGINE_F_IGNORE_ENV;
    opts.config_path = cfg;
    opts.root = root;
    opts.runroot = run;
    assert_int_equal(berth_engine_open(&opts, &f->e, NULL), 0);
    body = json_pack("{s:[s], s:s, s:{s:s}}", "Cmd", "true", "Rootfs", rootfs, "HostConfig",
                     "Isolation", "anything");
    assert_int_equal(berth_container_create(f->e, "logged", body, f->id, NULL), 0);
    json_decref(body);
    snprintf(f->logdir, sizeof(f->logdir), "%s/containers/%s", root, f->id);
    assert_int_equal(berth__mkdir_p(f->logdir, 0700, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    berth_engine_close(f->e);
    assert_int_equal(berth__rm_rf(f->dir), 0);
    free(f);
    return 0;
}

/* Write (@mode "w") or append ("a") @text to the log file with @suffix. */
static void put_log(struct fx *f, const char *suffix, const char *mode, const char *text)
{
    char path[700];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/%s-json.log%s", f->logdir, f->id, suffix);
    fp = fopen(path, mode);
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void write_log(struct fx *f, const char *suffix, const char *text)
{
    put_log(f, suffix, "w", text);
}

struct got {
    char text[4096];
    int stderr_lines;
    int64_t first_time;
};

static int collect(void *ud, int stream, int64_t time_ns, const char *data, size_t len)
{
    struct got *g = ud;
    strncat(g->text, data, len);
    g->stderr_lines += stream == 2;
    if (!g->first_time)
        g->first_time = time_ns;
    return 0;
}

#define LINE(text, stream, sec)                                                                    \
    "{\"log\":\"" text "\\n\",\"stream\":\"" stream "\",\"time\":\"2026-11-28T00:00:" sec          \
    ".123456789Z\"}\n"

static void test_logs_order_tail_and_streams(void **state)
{
    struct fx *f = *state;
    struct got g = { 0 };
    berth_err_t err = { 0 };

    write_log(f, ".2", LINE("one", "stdout", "01") LINE("two", "stderr", "02"));
    write_log(f, ".1", LINE("three", "stdout", "03"));
    /* The live file ends with a torn line the writer has not finished. */
    write_log(f, "", LINE("four", "stdout", "04") "{\"log\":\"fi");

    assert_int_equal(berth_container_logs(f->e, "logged", 0, -1, collect, &g, &err), 0);
    assert_string_equal(g.text, "one\ntwo\nthree\nfour\n");
    assert_int_equal(g.stderr_lines, 1);
    /* 2026-11-28T00:00:01.123456789Z */
    assert_int_equal(g.first_time, 1795824001123456789LL);

    memset(&g, 0, sizeof(g));
    assert_int_equal(berth_container_logs(f->e, f->id, 0, 2, collect, &g, &err), 0);
    assert_string_equal(g.text, "three\nfour\n");
    memset(&g, 0, sizeof(g));
    assert_int_equal(berth_container_logs(f->e, f->id, 0, 0, collect, &g, &err), 0);
    assert_string_equal(g.text, "");
    memset(&g, 0, sizeof(g));
    assert_int_equal(berth_container_logs(f->e, f->id, 0, 100, collect, &g, &err), 0);
    assert_string_equal(g.text, "one\ntwo\nthree\nfour\n");
}

static void test_logs_missing_and_unknown(void **state)
{
    struct fx *f = *state;
    struct got g = { 0 };
    berth_err_t err = { 0 };

    /* No log file yet: nothing, no error. */
    assert_int_equal(berth_container_logs(f->e, "logged", 0, -1, collect, &g, &err), 0);
    assert_string_equal(g.text, "");
    /* Follow on a container that is not running returns at the end. */
    assert_int_equal(berth_container_logs(f->e, "logged", BERTH_LOGS_FOLLOW, -1, collect, &g, &err),
                     0);
    assert_int_equal(berth_container_logs(f->e, "nosuch", 0, -1, collect, &g, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "no such container"));
}

static void append_log(struct fx *f, const char *suffix, const char *text)
{
    put_log(f, suffix, "a", text);
}

/*
 * The non-blocking reader a follower uses: each read gives what is new,
 * a torn line once it is complete, and nothing is lost when the monitor
 * rotates between two reads (lines written to the old file just before the
 * rename come before the new file's).
 */
static void test_reader_follows_rotation(void **state)
{
    struct fx *f = *state;
    berth_log_reader_t *rd = NULL;
    struct got g = { 0 };
    berth_err_t err = { 0 };
    char live[700], rotated[700];

    write_log(f, ".1", LINE("zero", "stdout", "00"));
    write_log(f, "", LINE("one", "stdout", "01") "{\"log\":\"tw");
    assert_int_equal(berth_log_reader_open(f->e, "logged", 1, &rd, &err), 0);
    assert_non_null(strstr(berth_log_reader_dir(rd), f->id));
    assert_int_equal(berth_log_reader_read(rd, collect, &g, &err), 0);
    assert_string_equal(g.text, "one\n");
    /* Nothing new: nothing. */
    assert_int_equal(berth_log_reader_read(rd, collect, &g, &err), 0);
    assert_string_equal(g.text, "one\n");
    /* The torn line is finished, one more is written, then the file rotates. */
    append_log(f, "", "o\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-28T00:00:02Z\"}\n");
    append_log(f, "", LINE("three", "stdout", "03"));
    snprintf(live, sizeof(live), "%s/%s-json.log", f->logdir, f->id);
    snprintf(rotated, sizeof(rotated), "%s/%s-json.log.1", f->logdir, f->id);
    assert_int_equal(rename(live, rotated), 0);
    write_log(f, "", LINE("four", "stdout", "04"));
    assert_int_equal(berth_log_reader_read(rd, collect, &g, &err), 0);
    assert_string_equal(g.text, "one\ntwo\nthree\nfour\n");
    assert_int_equal(g.stderr_lines, 1);
    /* And the new live file is followed from there on. */
    append_log(f, "", LINE("five", "stdout", "05"));
    assert_int_equal(berth_log_reader_read(rd, collect, &g, &err), 0);
    assert_string_equal(g.text, "one\ntwo\nthree\nfour\nfive\n");
    berth_log_reader_close(rd);
    assert_int_equal(berth_log_reader_open(f->e, "nosuch", -1, &rd, &err), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_logs_order_tail_and_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_missing_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_follows_rotation, setup, teardown),
    };
    return cmocka_run_group_tests_name("logs", tests, NULL, NULL);
}
