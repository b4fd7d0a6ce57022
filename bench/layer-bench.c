/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layer unpacker driver for bench/layer-bench.sh (docs/benchmarks.md,
 * "Layer unpacking").
 *
 *   layer-bench [--overlay] LAYER DIR
 *
 * Applies the layer blob in the file LAYER (gzip, zstd or plain tar) into
 * DIR, which must not exist yet (it is created), with the core's unpacker
 * (berth__layer_apply), and prints "<diff_id> <uncompressed bytes>
 * <seconds>" on stdout. The time covers the apply call only; the script
 * times the whole process as it does for tar.
 *
 * Not a test: it prints figures and never judges them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layer.h"

static int64_t file_read(berth_stream_t *s, void *buf, size_t len, berth_err_t *err)
{
    int fd = (int)(intptr_t)s->priv;

    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return berth_err_set(err, -errno, "read: %s", strerror(errno));
    }
}

static void file_close(berth_stream_t *s)
{
    close((int)(intptr_t)s->priv);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct berth__layer_result res;
    berth_err_t err = { 0 };
    berth_stream_t s = { 0 };
    uint32_t flags = 0;
    int argi = 1, fd, dirfd, r;
    double t0;

    if (argc > 1 && strcmp(argv[1], "--overlay") == 0) {
        flags |= BERTH__LAYER_WHITEOUT_OVERLAY;
        argi++;
    }
    if (argc - argi != 2) {
        fprintf(stderr, "usage: layer-bench [--overlay] LAYER DIR\n");
        return 2;
    }
    if ((fd = open(argv[argi], O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "layer-bench: %s: %s\n", argv[argi], strerror(errno));
        return 1;
    }
    if (mkdir(argv[argi + 1], 0755) < 0 ||
        (dirfd = open(argv[argi + 1], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "layer-bench: %s: %s\n", argv[argi + 1], strerror(errno));
        return 1;
    }
    s.struct_size = sizeof(s);
    s.size = -1;
    s.read = file_read;
    s.close = file_close;
    s.priv = (void *)(intptr_t)fd;

    t0 = now();
    r = berth__layer_apply(&s, dirfd, flags, &res, &err);
    if (r < 0) {
        fprintf(stderr, "layer-bench: %s\n", err.msg);
        return 1;
    }
    printf("%s %" PRIu64 " %.3f\n", res.diff_id, res.uncompressed_size, now() - t0);
    s.close(&s);
    close(dirfd);
    return 0;
}
