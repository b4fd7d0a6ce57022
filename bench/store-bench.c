/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metadata store benchmark (docs/benchmarks.md, "Metadata store").
 *
 *   store-bench [--dir DIR] [--count N] [--runs R] [--keep]
 *
 * Per run, in a fresh store: N container creates through the real path
 * (berth__container_create: one durable write transaction with the record,
 * its name and its event), each timed; then "list all" (read transaction and
 * parse of every document into a JSON array) and "list summaries" (read
 * transaction, every record checked and the ps columns taken out by the
 * scanner, jscan.h) timed several times each. Beside it,
 * in the same directory and run, the floor any durable commit pays here: a
 * 4 KiB pwrite plus fdatasync over already allocated blocks. Where list time
 * goes is split into LMDB iteration alone, jansson parsing alone and the
 * summary scan alone.
 *
 * Not a test: it prints figures and never judges them.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "containers.h"
#include "store.h"
#include "util.h"

#define LIST_REPEAT 10
/* One floor sample (of each kind in turn) every FLOOR_EVERY creates. */
#define FLOOR_EVERY 5

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Percentile @p (0-100) of @n sorted samples. */
static int64_t pct(const int64_t *sorted, size_t n, double p)
{
    size_t i = (size_t)((p / 100.0) * (double)(n - 1) + 0.5);

    return sorted[i < n ? i : n - 1];
}

static int64_t median(int64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_i64);
    return pct(v, n, 50);
}

static int die(const char *what, const berth_err_t *err)
{
    fprintf(stderr, "store-bench: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

/*
 * A container record as the API layer writes it (core/lib/container-api.c:
 * "isolation", "rootfs", "config", "host_config", "state") padded with more of
 * what Docker keeps per container (a subset of `docker inspect`), about
 * 1.5 KiB of compact JSON. Per container: id, name, hostname, host port and
 * the state (a third each created, running, exited).
 */
static const char container_template[] =
    "{\"isolation\":\"process\",\"rootfs\":\"/var/lib/berth/rootfs/nginx\","
    "\"Path\":\"/docker-entrypoint.sh\",\"Args\":[\"nginx\",\"-g\",\"daemon off;\"],"
    "\"state\":{\"Status\":\"created\",\"Pid\":0,\"ShimPid\":0,\"ExitCode\":0,"
    "\"OOMKilled\":false,\"Error\":\"\",\"StartedAt\":0,\"FinishedAt\":0},"
    "\"Image\":\"sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6\","
    "\"Driver\":\"overlay\",\"Platform\":\"linux\",\"RestartCount\":0,"
    "\"host_config\":{\"Binds\":null,\"NetworkMode\":\"bridge\",\"PortBindings\":{\"80/tcp\":"
    "[{\"HostIp\":\"\",\"HostPort\":\"8080\"}]},\"RestartPolicy\":{\"Name\":\"no\","
    "\"MaximumRetryCount\":0},\"AutoRemove\":false,\"Privileged\":false,\"Memory\":0,"
    "\"NanoCpus\":0,\"CpuShares\":0,\"PidsLimit\":null,\"LogConfig\":{\"Type\":\"json-file\","
    "\"Config\":{}},\"Isolation\":\"default\",\"CapAdd\":null},"
    "\"config\":{\"Hostname\":\"\",\"User\":\"\",\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:"
    "/usr/sbin:/usr/bin:/sbin:/bin\",\"NGINX_VERSION=1.25.3\",\"PKG_RELEASE=1~bookworm\"],"
    "\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],\"Image\":\"nginx:latest\",\"WorkingDir\":\"\","
    "\"Entrypoint\":[\"/docker-entrypoint.sh\"],\"Labels\":{\"maintainer\":\"NGINX Docker "
    "Maintainers <docker-maint@nginx.com>\",\"com.example.stack\":\"web\"},"
    "\"StopSignal\":\"SIGQUIT\",\"ExposedPorts\":{\"80/tcp\":{}},\"Tty\":false,"
    "\"OpenStdin\":false,\"AttachStdout\":true},"
    "\"Mounts\":[],\"NetworkSettings\":{\"Networks\":{\"bridge\":{\"NetworkID\":"
    "\"2f6ba4b5a4a0a1b8d1c7c0f3e6d2b9a7e8f1c3d5b7a9e0f2c4d6b8a0e1f3c5d7\","
    "\"MacAddress\":\"02:42:ac:11:00:02\",\"Gateway\":\"172.17.0.1\",\"IPAddress\":\"\"}}}}";

static json_t *make_container(const char *id, const char *name, unsigned i)
{
    json_t *doc = json_loads(container_template, 0, NULL);
    int64_t now = berth__now_ns();
    json_t *bind, *state;
    char hostname[13], port[8];

    if (!doc)
        die("container template", NULL);
    snprintf(hostname, sizeof(hostname), "%.12s", id);
    snprintf(port, sizeof(port), "%u", 10000 + i % 50000);
    bind = json_array_get(
        json_object_get(json_object_get(json_object_get(doc, "host_config"), "PortBindings"),
                        "80/tcp"),
        0);
    state = json_object_get(doc, "state");
    if (json_object_set_new(doc, "id", json_string(id)) < 0 ||
        json_object_set_new(doc, "name", json_string(name)) < 0 ||
        json_object_set_new(json_object_get(doc, "config"), "Hostname", json_string(hostname)) <
            0 ||
        json_object_set_new(bind, "HostPort", json_string(port)) < 0)
        die("container template", NULL);
    if (i % 3 && (json_object_set_new(state, "Pid", json_integer(1000 + i)) < 0 ||
                  json_object_set_new(state, "StartedAt", json_integer(now - 3600000000000)) < 0))
        die("container template", NULL);
    if (i % 3 == 1 && json_object_set_new(state, "Status", json_string("running")) < 0)
        die("container template", NULL);
    if (i % 3 == 2 && (json_object_set_new(state, "Status", json_string("exited")) < 0 ||
                       json_object_set_new(state, "ExitCode", json_integer(i % 256)) < 0 ||
                       json_object_set_new(state, "FinishedAt", json_integer(now)) < 0))
        die("container template", NULL);
    return doc;
}

/*
 * The durable-write floor, sampled between creates so that it sees the same
 * disk and host noise: a 4 KiB pwrite + fdatasync over allocated blocks (what
 * an LMDB commit's data flush costs at best), the same growing the file
 * (what it costs when the commit extends the file), and a 4 KiB O_DSYNC
 * pwrite (LMDB's meta page write).
 */
enum { FLOOR_ALLOC, FLOOR_GROW, FLOOR_DSYNC, FLOOR__N };

struct floor {
    int fd[FLOOR__N];
    off_t grow_off;
    int64_t *t[FLOOR__N];
    size_t n[FLOOR__N];
};

static void floor_open(struct floor *f, const char *dir, size_t max)
{
    static const char *const names[FLOOR__N] = { "floor-alloc", "floor-grow", "floor-dsync" };
    char path[4200], buf[4096];

    memset(buf, 'f', sizeof(buf));
    for (int k = 0; k < FLOOR__N; k++) {
        snprintf(path, sizeof(path), "%s/%s.dat", dir, names[k]);
        f->fd[k] = open(
            path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | (k == FLOOR_DSYNC ? O_DSYNC : 0), 0600);
        if (f->fd[k] < 0)
            die(path, NULL);
        unlink(path);
        /* the overwrite cases start from an allocated, durable block */
        if (k != FLOOR_GROW &&
            (pwrite(f->fd[k], buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || fsync(f->fd[k])))
            die("floor pwrite", NULL);
        f->t[k] = calloc(max, sizeof(int64_t));
        f->n[k] = 0;
        if (!f->t[k])
            die("calloc", NULL);
    }
    f->grow_off = 0;
}

static void floor_sample(struct floor *f, int k)
{
    char buf[4096];
    off_t off = 0;
    int64_t t0;

    memset(buf, (int)f->n[k], sizeof(buf));
    if (k == FLOOR_GROW) {
        off = f->grow_off;
        f->grow_off += (off_t)sizeof(buf);
    }
    t0 = berth__mono_ns();
    if (pwrite(f->fd[k], buf, sizeof(buf), off) != (ssize_t)sizeof(buf))
        die("floor pwrite", NULL);
    if (k != FLOOR_DSYNC && fdatasync(f->fd[k]) < 0)
        die("floor fdatasync", NULL);
    f->t[k][f->n[k]++] = berth__mono_ns() - t0;
}

static void floor_close(struct floor *f)
{
    for (int k = 0; k < FLOOR__N; k++) {
        close(f->fd[k]);
        free(f->t[k]);
    }
}

/*
 * Where list time goes, on the raw environment of the last run: the same
 * cursor walk over the containers database with nothing else (LMDB's share),
 * then with each value parsed and freed at once (jansson's share without the
 * cost of keeping 10,000 trees alive, which the real list pays), then with
 * each value scanned into one summary on the stack (the scanner's share).
 */
enum { WALK_ONLY, WALK_JANSSON, WALK_SCAN, WALK__N };

static void list_breakdown(const char *dir, double ret_ms[WALK__N])
{
    MDB_env *env;
    int64_t t[WALK__N][LIST_REPEAT];

    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
        mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600))
        die("raw mdb_env_open", NULL);
    for (int parse = 0; parse < WALK__N; parse++) {
        for (int r = 0; r < LIST_REPEAT; r++) {
            volatile size_t bytes = 0;
            int64_t t0 = berth__mono_ns();
            MDB_txn *txn;
            MDB_dbi dbi;
            MDB_cursor *cur;
            MDB_val k, v;

            if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) ||
                mdb_dbi_open(txn, "containers", 0, &dbi) || mdb_cursor_open(txn, dbi, &cur))
                die("raw walk", NULL);
            while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
                /* touch the value so that both walks read the same pages */
                bytes += v.mv_size + (unsigned char)((const char *)v.mv_data)[v.mv_size - 1];
                if (parse == WALK_JANSSON)
                    json_decref(json_loadb(v.mv_data, v.mv_size, 0, NULL));
                if (parse == WALK_SCAN) {
                    berth_container_summary_t sum;

                    if (berth__container_summary_parse(v.mv_data, v.mv_size, &sum, NULL) < 0)
                        die("raw walk: summary", NULL);
                    bytes += (size_t)sum.pid;
                }
            }
            mdb_cursor_close(cur);
            mdb_txn_abort(txn);
            t[parse][r] = berth__mono_ns() - t0;
        }
    }
    mdb_env_close(env);
    for (int k = 0; k < WALK__N; k++)
        ret_ms[k] = (double)median(t[k], LIST_REPEAT) / 1e6;
}

/*
 * Not timed: the summaries must be what jansson makes of the same records,
 * or the figure would compare unequal work.
 */
static void summaries_check(berth_store_t *store, unsigned count)
{
    berth_container_summary_t *items = NULL, want;
    berth_err_t err = { 0 };
    json_t *arr = NULL;
    size_t n = 0;

    if (berth__container_summaries(store, &items, &n, &err) < 0 ||
        berth__container_list(store, &arr, &err) < 0)
        die("summaries check", &err);
    if (n != count || json_array_size(arr) != count)
        die("summaries check: wrong count", NULL);
    for (size_t i = 0; i < n; i++) {
        const berth_container_summary_t *got = &items[i];

        if (berth__container_summary_from_doc(json_array_get(arr, i), &want, &err) < 0)
            die("summaries check: jansson", &err);
        if (strcmp(got->id, want.id) || strcmp(got->name, want.name) ||
            strcmp(got->state, want.state) || strcmp(got->isolation, want.isolation) ||
            strcmp(got->command, want.command) ||
            got->command_truncated != want.command_truncated ||
            got->created_ns != want.created_ns || got->started_ns != want.started_ns ||
            got->finished_ns != want.finished_ns || got->exit_code != want.exit_code ||
            got->pid != want.pid)
            die("summaries check: scanner and jansson disagree", NULL);
    }
    berth__container_summaries_free(items);
    json_decref(arr);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: store-bench [--dir DIR] [--count N] [--runs R] [--keep]\n"
               "  --dir DIR   where to create stores (default: a new store-bench-XXXXXX here)\n"
               "  --count N   containers per run (default 10000)\n"
               "  --runs R    runs, each in a fresh store (default 3)\n"
               "  --keep      leave the stores behind\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },  { "count", required_argument, NULL, 'n' },
        { "runs", required_argument, NULL, 'r' }, { "keep", no_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
    };
    char tmpl[] = "store-bench-XXXXXX", path[4200];
    const char *dir = NULL;
    unsigned count = 10000, runs = 3;
    int keep = 0, made_dir = 0, c;
    int64_t *creates, *lists, *sums;
    size_t nc = 0, nl = 0, ns = 0;
    double walk_ms[WALK__N] = { 0 }, fl[FLOOR__N];
    struct floor floor;
    size_t doc_bytes;

    while ((c = getopt_long(argc, argv, "d:n:r:kh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'n':
            count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            runs = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            keep = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (count == 0 || runs == 0) {
        usage(stderr);
        return 2;
    }
    if (!dir) {
        dir = mkdtemp(tmpl);
        if (!dir)
            die("mkdtemp", NULL);
        made_dir = 1;
    }
    creates = calloc((size_t)count * runs, sizeof(*creates));
    lists = calloc((size_t)LIST_REPEAT * runs, sizeof(*lists));
    sums = calloc((size_t)LIST_REPEAT * runs, sizeof(*sums));
    if (!creates || !lists || !sums)
        die("calloc", NULL);
    floor_open(&floor, dir, (size_t)count * runs / FLOOR_EVERY + FLOOR__N);

    {
        json_t *probe = make_container(
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "probe", 0);
        char *s = json_dumps(probe, JSON_COMPACT);

        doc_bytes = strlen(s);
        free(s);
        json_decref(probe);
    }
    printf("store-bench: %u containers x %u runs in %s (document ~%zu bytes)\n", count, runs, dir,
           doc_bytes);

    for (unsigned r = 0; r < runs; r++) {
        berth_store_t *store;
        berth_err_t err = { 0 };
        int64_t run_start = nc, t0;
        uint64_t n;

        snprintf(path, sizeof(path), "%s/run-%u", dir, r);
        if (berth__store_open(path, NULL, &store, &err) < 0)
            die("open", &err);
        for (unsigned i = 0; i < count; i++) {
            char id[BERTH_CONTAINER_ID_LEN + 1], name[32];
            json_t *doc;

            if (berth__container_id_new(id, &err) < 0)
                die("id", &err);
            snprintf(name, sizeof(name), "bench-%u", i);
            doc = make_container(id, name, i);
            t0 = berth__mono_ns();
            if (berth__container_create(store, doc, NULL, NULL, &err) < 0)
                die("create", &err);
            creates[nc++] = berth__mono_ns() - t0;
            json_decref(doc);
            if (i % FLOOR_EVERY == 0)
                floor_sample(&floor, (int)(i / FLOOR_EVERY % FLOOR__N));
        }
        for (int l = 0; l < LIST_REPEAT; l++) {
            json_t *arr = NULL;

            t0 = berth__mono_ns();
            if (berth__container_list(store, &arr, &err) < 0)
                die("list", &err);
            lists[nl++] = berth__mono_ns() - t0;
            if (json_array_size(arr) != count)
                die("list: wrong count", NULL);
            json_decref(arr);
        }
        /* Same store, same pages in cache: the peer of the list above. */
        for (int l = 0; l < LIST_REPEAT; l++) {
            berth_container_summary_t *items = NULL;
            size_t got = 0;

            t0 = berth__mono_ns();
            if (berth__container_summaries(store, &items, &got, &err) < 0)
                die("summaries", &err);
            sums[ns++] = berth__mono_ns() - t0;
            if (got != count)
                die("summaries: wrong count", NULL);
            berth__container_summaries_free(items);
        }
        summaries_check(store, count);
        if (berth__container_count(store, &n, &err) < 0 || n != count)
            die("count", &err);
        {
            int64_t *rc = creates + run_start;
            size_t m = nc - (size_t)run_start;

            qsort(rc, m, sizeof(*rc), cmp_i64);
            printf("run %u: create median %.0f us, p90 %.0f, p99 %.0f; list median %.2f ms; "
                   "summaries median %.2f ms\n",
                   r, (double)pct(rc, m, 50) / 1e3, (double)pct(rc, m, 90) / 1e3,
                   (double)pct(rc, m, 99) / 1e3,
                   (double)median(lists + nl - LIST_REPEAT, LIST_REPEAT) / 1e6,
                   (double)median(sums + ns - LIST_REPEAT, LIST_REPEAT) / 1e6);
        }
        berth__store_close(store);
        if (r == runs - 1)
            list_breakdown(path, walk_ms);
        if (!keep)
            nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }

    for (int k = 0; k < FLOOR__N; k++)
        fl[k] = (double)median(floor.t[k], floor.n[k]) / 1e3;
    floor_close(&floor);

    qsort(creates, nc, sizeof(*creates), cmp_i64);
    {
        double cmed = (double)pct(creates, nc, 50) / 1e3;
        double lmed = (double)median(lists, nl) / 1e6;
        double smed = (double)median(sums, ns) / 1e6;

        printf("\n");
        printf("create (durable, record + name + event), all runs:\n");
        printf("  median %.0f us   p90 %.0f us   p99 %.0f us   (target <= 200 us)\n", cmed,
               (double)pct(creates, nc, 90) / 1e3, (double)pct(creates, nc, 99) / 1e3);
        printf("list all %u (read txn + parse into an array):\n", count);
        printf("  median %.2f ms (%.1f us per document)   (target <= 20 ms)\n", lmed,
               lmed * 1e3 / count);
        printf("list summaries %u (read txn + scan of every record, ps columns):\n", count);
        printf("  median %.2f ms (%.2f us per document)   (target <= 20 ms)\n", smed,
               smed * 1e3 / count);
        printf("  last run: LMDB cursor walk alone %.2f ms; walk + parse + free each %.2f ms; "
               "walk + scan each %.2f ms\n",
               walk_ms[WALK_ONLY], walk_ms[WALK_JANSSON], walk_ms[WALK_SCAN]);
        printf("floor, same filesystem, sampled between the creates (medians):\n");
        printf("  4 KiB pwrite + fdatasync, allocated blocks   %.0f us\n", fl[FLOOR_ALLOC]);
        printf("  4 KiB pwrite + fdatasync, growing the file   %.0f us\n", fl[FLOOR_GROW]);
        printf("  4 KiB pwrite with O_DSYNC, allocated blocks  %.0f us\n", fl[FLOOR_DSYNC]);
        printf("  LMDB commit best case (fdatasync + O_DSYNC)  %.0f us\n",
               fl[FLOOR_ALLOC] + fl[FLOOR_DSYNC]);
        printf("create median / fdatasync floor = %.2f; / (fdatasync + O_DSYNC) = %.2f\n",
               cmed / fl[FLOOR_ALLOC], cmed / (fl[FLOOR_ALLOC] + fl[FLOOR_DSYNC]));
    }
    free(creates);
    free(lists);
    free(sums);
    if (made_dir && !keep)
        rmdir(dir);
    return 0;
}
