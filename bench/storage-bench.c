/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage driver benchmark (docs/benchmarks.md, "Container rootfs").
 *
 *   storage-bench [--dir DIR] [--count N] [--layers L] [--files F] [--no-mount] MODULE.so
 *
 * Loads a storage driver module with berth's loader into a fresh root under
 * DIR (default: the current directory, the filesystem being measured) and
 * builds an image of L committed layers with F small files each. Then, N
 * times, the life of a container's rootfs as the engine and the process
 * isolation driver go through it: prepare a snapshot on the top layer,
 * mounts(), mount what it returns (overlay the way process-init.c does,
 * through storage-overlay-mount.h; a bind for vfs), unmount, remove. Each
 * phase is timed; the figures are per container: median, p90 and mean.
 * --no-mount leaves mount and umount out: the driver's own cost alone.
 * Mounts happen in a private mount namespace of this process.
 *
 * Needs root. Not a test: it prints figures and never judges them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <berth/sdk.h>

#include "plugins.h"
#include "util.h"

#include "../plugins/storage/overlay/storage-overlay-mount.h"

enum { PH_PREPARE, PH_MOUNTS, PH_MOUNT, PH_UMOUNT, PH_REMOVE, PH_TOTAL, N_PH };
static const char *const phase_names[N_PH] = { "prepare", "mounts", "mount",
                                               "umount",  "remove", "total" };

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *sorted, size_t n, double p)
{
    size_t i = (size_t)((p / 100.0) * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static int die(const char *what, const berth_err_t *err)
{
    fprintf(stderr, "storage-bench: %s: %s\n", what, err ? err->msg : strerror(errno));
    return 1;
}

/* Mount the (single, rootfs) mount of @list on @dir as an isolation driver would. */
static int mount_rootfs(const berth_mount_list_t *list, const char *dir, char *why, size_t len)
{
    const berth_mount_t *m = &list->mounts[0];
    int ro = (m->flags & BERTH_MOUNT_F_READONLY) != 0;

    if (list->n_mounts != 1) {
        snprintf(why, len, "expected one mount, got %u", list->n_mounts);
        return -EINVAL;
    }
    if (strcmp(m->type, "overlay") == 0)
        return storage_overlay_mount(m, dir, why, len);
    if (strcmp(m->type, "bind") == 0) {
        if (mount(m->source, dir, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            (ro && mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)) {
            snprintf(why, len, "bind %s: %s", m->source, strerror(errno));
            return -errno;
        }
        return 0;
    }
    snprintf(why, len, "mount type %s is not handled here", m->type);
    return -ENOTSUP;
}

static int build_image(const berth_storage_ops_t *ops, void *priv, int layers, int files, char *top,
                       size_t toplen)
{
    char parent[64] = "", name[64];
    berth_err_t err = { 0 };

    for (int i = 1; i <= layers; i++) {
        berth_mount_list_t *m = NULL;
        const char *diff;
        if (ops->prepare(priv, "bench-layer", parent[0] ? parent : NULL, NULL, 0, &m, &err) < 0)
            return die("prepare a layer", &err);
        berth_mount_list_free(m);
        diff = ops->diff_dir(priv, "bench-layer");
        if (!diff)
            return die("diff_dir", NULL);
        for (int f = 0; f < files; f++) {
            char path[PATH_MAX];
            FILE *out;
            snprintf(path, sizeof(path), "%s/l%d-f%d", diff, i, f);
            if (!(out = fopen(path, "w")))
                return die(path, NULL);
            fprintf(out, "layer %d file %d\n", i, f);
            fclose(out);
        }
        snprintf(name, sizeof(name), "sha256:bench-%03d", i);
        if (ops->commit(priv, name, "bench-layer", 0, &err) < 0)
            return die("commit a layer", &err);
        snprintf(parent, sizeof(parent), "%s", name);
    }
    snprintf(top, toplen, "%s", parent);
    return 0;
}

static void usage(FILE *out)
{
    fputs("Usage: storage-bench [--dir DIR] [--count N] [--layers L] [--files F] [--no-mount] "
          "MODULE.so\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "count", required_argument, NULL, 'n' },
        { "layers", required_argument, NULL, 'l' },
        { "files", required_argument, NULL, 'f' },
        { "no-mount", no_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = ".";
    int count = 1000, layers = 5, files = 20, no_mount = 0, c, rc = 1;
    char scratch[PATH_MAX], root[PATH_MAX + 8], mnt[PATH_MAX + 8], top[64], cmd[PATH_MAX + 16];
    berth_plugin_env_t env = { 0 };
    berth_registry_t *reg = NULL;
    berth_err_t err = { 0 };
    berth_driver_t *drv;
    const berth_storage_ops_t *ops;
    int64_t *t[N_PH] = { NULL };

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 'l':
            layers = atoi(optarg);
            break;
        case 'f':
            files = atoi(optarg);
            break;
        case 'm':
            no_mount = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || count < 1 || layers < 1 || files < 0) {
        usage(stderr);
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "storage-bench: needs root (it mounts)\n");
        return 1;
    }
    /* Nothing this does is seen from the host's mount namespace. */
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return die("a private mount namespace", NULL);
    snprintf(scratch, sizeof(scratch), "%s/storage-bench-XXXXXX", dir);
    if (!mkdtemp(scratch))
        return die(scratch, NULL);
    snprintf(root, sizeof(root), "%s/root", scratch);
    snprintf(mnt, sizeof(mnt), "%s/rootfs", scratch);
    if (mkdir(mnt, 0755) < 0) {
        die(mnt, NULL);
        goto out;
    }
    env.root = root;
    env.runroot = root;
    if (berth__registry_new(&env, &reg, &err) < 0 ||
        berth__registry_load_file(reg, argv[optind], &err) < 0) {
        die("loading the driver", &err);
        goto out;
    }
    drv = berth__registry_driver(reg, 0);
    ops = drv->ops;
    if (drv->kind != BERTH_KIND_STORAGE) {
        fprintf(stderr, "storage-bench: %s is not a storage driver\n", argv[optind]);
        goto out;
    }
    if (ops->probe && ops->probe(drv->priv, 0, &(uint64_t){ 0 }, &err) != 0) {
        die("probe", &err);
        goto out;
    }
    if (build_image(ops, drv->priv, layers, files, top, sizeof(top)) != 0)
        goto out;
    for (int p = 0; p < N_PH; p++)
        if (!(t[p] = calloc((size_t)count, sizeof(int64_t)))) {
            die("out of memory", NULL);
            goto out;
        }

    for (int i = 0; i < count; i++) {
        char key[65], why[BERTH_ERR_MSG_MAX];
        berth_mount_list_t *m = NULL;
        int64_t a, b;

        /* A container id, as the engine names rootfs snapshots. */
        snprintf(key, sizeof(key), "%056x%08x", (unsigned)getpid(), (unsigned)i);
        a = now_ns();
        if (ops->prepare(drv->priv, key, top, NULL, 0, &m, &err) < 0) {
            die("prepare", &err);
            goto out;
        }
        b = now_ns();
        t[PH_PREPARE][i] = b - a;
        berth_mount_list_free(m);
        m = NULL;
        a = now_ns();
        if (ops->mounts(drv->priv, key, 0, &m, &err) < 0) {
            die("mounts", &err);
            goto out;
        }
        b = now_ns();
        t[PH_MOUNTS][i] = b - a;
        a = b;
        if (no_mount) {
            berth_mount_list_free(m);
            goto release;
        }
        if (mount_rootfs(m, mnt, why, sizeof(why)) < 0) {
            fprintf(stderr, "storage-bench: %s\n", why);
            berth_mount_list_free(m);
            goto out;
        }
        b = now_ns();
        berth_mount_list_free(m);
        t[PH_MOUNT][i] = b - a;
        a = now_ns();
        if (umount2(mnt, 0) < 0) {
            die("umount", NULL);
            goto out;
        }
        b = now_ns();
        t[PH_UMOUNT][i] = b - a;
    release:
        a = now_ns();
        if (ops->remove(drv->priv, key, 0, &err) < 0) {
            die("remove", &err);
            goto out;
        }
        b = now_ns();
        t[PH_REMOVE][i] = b - a;
        t[PH_TOTAL][i] =
            t[PH_PREPARE][i] + t[PH_MOUNTS][i] + t[PH_MOUNT][i] + t[PH_UMOUNT][i] + t[PH_REMOVE][i];
    }

    printf("driver %s, %d layers of %d files, %d containers%s\n", drv->desc->name, layers, files,
           count, no_mount ? ", without mounting" : "");
    printf("%-8s %10s %10s %10s  (microseconds per container)\n", "phase", "median", "p90", "mean");
    for (int p = 0; p < N_PH; p++) {
        double sum = 0;
        for (int i = 0; i < count; i++)
            sum += (double)t[p][i];
        qsort(t[p], (size_t)count, sizeof(int64_t), cmp_i64);
        printf("%-8s %10.1f %10.1f %10.1f\n", phase_names[p], pct(t[p], (size_t)count, 50) / 1e3,
               pct(t[p], (size_t)count, 90) / 1e3, sum / count / 1e3);
    }
    rc = 0;
out:
    if (reg) {
        char name[64];
        drv = berth__registry_driver(reg, 0);
        for (int i = layers; drv && i >= 1; i--) {
            snprintf(name, sizeof(name), "sha256:bench-%03d", i);
            ((const berth_storage_ops_t *)drv->ops)->remove(drv->priv, name, 0, NULL);
        }
    }
    berth__registry_free(reg);
    for (int p = 0; p < N_PH; p++)
        free(t[p]);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "storage-bench: could not remove %s\n", scratch);
    return rc;
}
