/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image commands' shared helpers (core/cli/cli-image.c, cli-progress.c):
 * docker's sizes, ages, table layout and name display, the progress
 * renderer on a pipe and on a real pseudo-terminal, and the spool
 * directory, removed by a signal too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

static void size_is(int64_t bytes, int precision, const char *want)
{
    char buf[32];
    cli_human_size(bytes, precision, buf, sizeof(buf));
    if (strcmp(buf, want) != 0)
        fail_msg("%lld with %d digits: \"%s\", want \"%s\"", (long long)bytes, precision, buf,
                 want);
}

static void test_cli_image_human_size(void **state)
{
    size_is(0, 3, "0B");
    size_is(-1, 3, "0B");
    size_is(999, 3, "999B");
    size_is(1000, 3, "1kB");
    size_is(1536, 3, "1.54kB");
    size_is(4261234, 3, "4.26MB");
    size_is(4261234, 4, "4.261MB");
    size_is(1234567890, 3, "1.23GB");
    size_is(1000000000000ll, 4, "1TB");
    /* Go's %g does the same, so docker shows this too. */
    size_is(999999, 3, "1e+03kB");
}

static void test_cli_image_created_since(void **state)
{
    char buf[64];
    cli_created_since(0, 1000000, buf, sizeof(buf));
    assert_string_equal(buf, "N/A");
    cli_created_since(1700000000 - 3, 1700000000, buf, sizeof(buf));
    assert_string_equal(buf, "3 seconds ago");
    cli_created_since(1700000000 - 15 * 86400, 1700000000, buf, sizeof(buf));
    assert_string_equal(buf, "2 weeks ago");
    /* A clock behind the image's date is not a negative age. */
    cli_created_since(1700000010, 1700000000, buf, sizeof(buf));
    assert_string_equal(buf, "Less than a second ago");
}

/* The text @fn writes to a FILE, NUL-terminated; free it. */
static char *capture_table(const struct cli_table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    cli_table_print(t, f);
    fclose(f);
    return buf;
}

static void test_cli_image_table_layout(void **state)
{
    static const char *const head[] = { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE" };
    static const char *const row1[] = { "busybox", "latest", "0123456789ab", "2 weeks ago",
                                        "4.26MB" };
    static const char *const row2[] = { "localhost:5000/team/app", "v1.0", "ba9876543210", "N/A",
                                        "1.2GB" };
    struct cli_table t;
    char *out;

    cli_table_init(&t, 5);
    out = capture_table(&t);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(cli_table_add(&t, head), 0);
    out = capture_table(&t);
    /* Docker's empty `images`: every column at least 10 wide, the last not padded. */
    assert_string_equal(out, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
    free(out);
    assert_int_equal(cli_table_add(&t, row1), 0);
    assert_int_equal(cli_table_add(&t, row2), 0);
    out = capture_table(&t);
    assert_string_equal(out,
                        "REPOSITORY                TAG       IMAGE ID       CREATED       SIZE\n"
                        "busybox                   latest    0123456789ab   2 weeks ago   4.26MB\n"
                        "localhost:5000/team/app   v1.0      ba9876543210   N/A           1.2GB\n");
    free(out);
    cli_table_release(&t);

    /* Widths count characters: "…" is three bytes and one column. */
    {
        static const char *const a[] = { "abcdefghij…", "x" };
        static const char *const b[] = { "abcdefghijkl", "y" };
        cli_table_init(&t, 2);
        assert_int_equal(cli_table_add(&t, a), 0);
        assert_int_equal(cli_table_add(&t, b), 0);
        out = capture_table(&t);
        assert_string_equal(out, "abcdefghij…    x\nabcdefghijkl   y\n");
        free(out);
        cli_table_release(&t);
    }
}

static void test_cli_image_ellipsis(void **state)
{
    char buf[64];
    assert_string_equal(cli_ellipsis("abcdef", 6, buf, sizeof(buf)), "abcdef");
    assert_string_equal(cli_ellipsis("abcdefg", 6, buf, sizeof(buf)), "abcde…");
    assert_string_equal(cli_ellipsis("ééééééé", 4, buf, sizeof(buf)), "ééé…");
}

static void names_are(const char *in, const char *full, const char *familiar, int tagged)
{
    char f[600], fam[600];
    int t = -1;

    assert_int_equal(cli_image_names(in, f, sizeof(f), fam, sizeof(fam), &t), 0);
    if (strcmp(f, full) != 0 || strcmp(fam, familiar) != 0 || t != tagged)
        fail_msg("%s: \"%s\" \"%s\" %d, want \"%s\" \"%s\" %d", in, f, fam, t, full, familiar,
                 tagged);
}

static void test_cli_image_names(void **state)
{
    char small[8];

    names_are("busybox", "docker.io/library/busybox:latest", "busybox:latest", 0);
    names_are("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", 1);
    names_are("team/app", "docker.io/team/app:latest", "team/app:latest", 0);
    names_are("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", 0);
    names_are("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1", 1);
    names_are("localhost/app", "localhost/app:latest", "localhost/app:latest", 0);
    names_are("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest", 0);
    names_are("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c", 1);
    names_are("app@sha256:0123", "docker.io/library/app@sha256:0123", "app@sha256:0123", 1);
    names_are("app:1@sha256:0123", "docker.io/library/app:1@sha256:0123", "app:1@sha256:0123", 1);
    assert_int_equal(cli_image_names("busybox", small, sizeof(small), NULL, 0, NULL), -1);
}

static void test_cli_image_split_repo_tag(void **state)
{
    char repo[64];
    const char *tag;

    cli_split_repo_tag("localhost:5000/app:1", repo, sizeof(repo), &tag);
    assert_string_equal(repo, "localhost:5000/app");
    assert_string_equal(tag, "1");
    cli_split_repo_tag("localhost:5000/app", repo, sizeof(repo), &tag);
    assert_string_equal(repo, "localhost:5000/app");
    assert_string_equal(tag, "");
    cli_split_repo_tag("busybox:latest", repo, sizeof(repo), &tag);
    assert_string_equal(repo, "busybox");
    assert_string_equal(tag, "latest");
}

static void send(struct cli_progress *p, const char *id, const char *status, int64_t cur,
                 int64_t total)
{
    berth_progress_t ev = { id, status, cur, total };
    cli_progress_event(p, &ev);
}

/* A pull's events as the engine sends them: two layers, one downloaded in steps. */
static void pull_events(struct cli_progress *p)
{
    send(p, NULL, "latest: Pulling from busybox", -1, -1);
    send(p, "aaaaaaaaaaaa", "Pulling fs layer", -1, -1);
    send(p, "bbbbbbbbbbbb", "Already exists", -1, -1);
    for (int64_t b = 0; b <= 4000000; b += 1000000)
        send(p, "aaaaaaaaaaaa", "Downloading", b, 4000000);
    send(p, "aaaaaaaaaaaa", "Verifying Checksum", 4000000, 4000000);
    send(p, "aaaaaaaaaaaa", "Download complete", 4000000, 4000000);
    send(p, "aaaaaaaaaaaa", "Extracting", 0, 4000000);
    send(p, "aaaaaaaaaaaa", "Extracting", 4000000, 4000000);
    send(p, "aaaaaaaaaaaa", "Pull complete", 4000000, 4000000);
    send(p, NULL, "Status: Downloaded newer image for busybox:latest", -1, -1);
}

static void test_cli_progress_plain(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct cli_progress *p;

    assert_non_null(f);
    p = cli_progress_new(f);
    assert_non_null(p);
    pull_events(p);
    cli_progress_free(p);
    fclose(f);
    /* One line per status change; byte counts and their statuses only go to a terminal. */
    assert_string_equal(buf, "latest: Pulling from busybox\n"
                             "aaaaaaaaaaaa: Pulling fs layer\n"
                             "bbbbbbbbbbbb: Already exists\n"
                             "aaaaaaaaaaaa: Verifying Checksum\n"
                             "aaaaaaaaaaaa: Download complete\n"
                             "aaaaaaaaaaaa: Pull complete\n"
                             "Status: Downloaded newer image for busybox:latest\n");
    free(buf);
}

/* Everything readable from @fd now (non-blocking), NUL-terminated; free it. */
static char *drain(int fd)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    ssize_t n;

    assert_non_null(buf);
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    return buf;
}

static void test_cli_progress_terminal(void **state)
{
    struct winsize ws = { .ws_row = 40, .ws_col = 120 };
    struct termios tio;
    int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
    struct cli_progress *p;
    char *out, *a, *b;
    FILE *f;

    if (master < 0) {
        skip();
        return;
    }
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    /* Raw output: see the bytes as written, no "\n" to "\r\n". */
    assert_int_equal(tcgetattr(slave, &tio), 0);
    cfmakeraw(&tio);
    assert_int_equal(tcsetattr(slave, TCSANOW, &tio), 0);
    assert_int_equal(ioctl(slave, TIOCSWINSZ, &ws), 0);
    f = fdopen(slave, "w");
    assert_non_null(f);
    p = cli_progress_new(f);
    pull_events(p);
    cli_progress_free(p);
    fclose(f);
    fcntl(master, F_SETFL, O_NONBLOCK);
    out = drain(master);
    close(master);

    /* Layer a is the second line below the header: drawn from two lines down. */
    assert_non_null(strstr(out, "latest: Pulling from busybox\n"));
    assert_non_null(strstr(out, "\n\x1b[1A\x1b[2K\raaaaaaaaaaaa: Pulling fs layer\r\x1b[1B"));
    assert_non_null(strstr(out, "\n\x1b[1A\x1b[2K\rbbbbbbbbbbbb: Already exists\r\x1b[1B"));
    /* Layer a's line is redrawn in place, two lines up, with a bar and the byte counts. */
    a = strstr(out, "\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading [");
    assert_non_null(a);
    assert_non_null(strstr(a, "]      4MB/4MB\r\x1b[2B"));
    b = strstr(out, "\x1b[2A\x1b[2K\raaaaaaaaaaaa: Pull complete\r\x1b[2B");
    assert_non_null(b);
    assert_true(b > a);
    assert_non_null(strstr(b, "Status: Downloaded newer image for busybox:latest\n"));
    free(out);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (!d)
        return -1;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static berth_engine_t *open_engine(char *root, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    berth_engine_opts_t opts = { .struct_size = sizeof(opts),
                                 .flags = BERTH_ENGINE_F_NO_PLUGINS | BERTH_ENGINE_F_IGNORE_ENV };
    char runroot[PATH_MAX + 8];
    berth_engine_t *e = NULL;

    snprintf(root, len, "%s/berth-cli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(root));
    snprintf(runroot, sizeof(runroot), "%s/run", root);
    opts.root = root;
    opts.runroot = runroot;
    assert_int_equal(berth_engine_open(&opts, &e, NULL), 0);
    return e;
}

static void remove_tree(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_cli_spool(void **state)
{
    char root[PATH_MAX], dir[PATH_MAX], file[PATH_MAX + 8], parent[PATH_MAX + 8];
    berth_engine_t *e = open_engine(root, sizeof(root));
    int fd, status, in = -1, pipefd[2];
    pid_t pid;

    /* Under <root>/tmp, removed with what is in it. */
    assert_int_equal(cli_spool_create(e, "load", dir, sizeof(dir)), 0);
    snprintf(parent, sizeof(parent), "%s/tmp/", root);
    assert_memory_equal(dir, parent, strlen(parent));
    snprintf(file, sizeof(file), "%s/a.tar", dir);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    cli_spool_remove();
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(count_entries(parent), 0);

    /* A signal removes it too, and the process still dies of the signal. */
    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char d[PATH_MAX], fpath[PATH_MAX + 16];
        if (cli_spool_create(e, "save", d, sizeof(d)) < 0)
            _exit(3);
        snprintf(fpath, sizeof(fpath), "%s/image.tar", d);
        close(open(fpath, O_WRONLY | O_CREAT, 0600));
        if (write(pipefd[1], "x", 1) != 1)
            _exit(4);
        pause();
        _exit(5);
    }
    close(pipefd[1]);
    assert_int_equal(read(pipefd[0], &(char){ 0 }, 1), 1);
    close(pipefd[0]);
    assert_int_equal(count_entries(parent), 1);
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
    assert_int_equal(count_entries(parent), 0);

    /* cli_copy_fd moves everything, and says which side failed. */
    {
        int p1[2], p2[2];
        char buf[16] = "";
        assert_int_equal(pipe(p1), 0);
        assert_int_equal(pipe(p2), 0);
        assert_int_equal(write(p1[1], "hello", 5), 5);
        close(p1[1]);
        assert_int_equal(cli_copy_fd(p1[0], p2[1], &in), 0);
        close(p2[1]);
        assert_int_equal(read(p2[0], buf, sizeof(buf)), 5);
        assert_string_equal(buf, "hello");
        close(p2[0]);
        close(p1[0]);
        assert_int_equal(cli_copy_fd(p1[0], STDOUT_FILENO, &in), -EBADF);
        assert_int_equal(in, 1);
    }
    berth_engine_close(e);
    remove_tree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_image_human_size),
        cmocka_unit_test(test_cli_image_created_since),
        cmocka_unit_test(test_cli_image_table_layout),
        cmocka_unit_test(test_cli_image_ellipsis),
        cmocka_unit_test(test_cli_image_names),
        cmocka_unit_test(test_cli_image_split_repo_tag),
        cmocka_unit_test(test_cli_progress_plain),
        cmocka_unit_test(test_cli_progress_terminal),
        cmocka_unit_test(test_cli_spool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
