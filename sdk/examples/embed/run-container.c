/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Embedding berth: run one container through libberth alone, as an
 * appliance would, without the berth CLI or a daemon.
 *
 *   run-container ROOT RUNROOT ROOTFS COMMAND [ARG...]
 *
 * Creates a container from the root filesystem directory ROOTFS, starts it,
 * waits for it, prints its output from the logs, removes it, and exits with
 * its exit code.
 */
#include <stdio.h>
#include <stdlib.h>

#include <berth/engine.h>

static int print_entry(void *userdata, int stream, int64_t time_ns, const char *data, size_t len)
{
    fwrite(data, 1, len, stream == 2 ? stderr : stdout);
    return 0;
}

int main(int argc, char **argv)
{
    berth_engine_opts_t opts = { .struct_size = sizeof(opts) };
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *body, *cmd;
    char id[65];
    int code = 125;

    if (argc < 5) {
        fprintf(stderr, "usage: %s ROOT RUNROOT ROOTFS COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    opts.root = argv[1];
    opts.runroot = argv[2];
    if (berth_engine_open(&opts, &engine, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 125;
    }
    /* The same JSON a Docker client sends to create a container. */
    cmd = json_array();
    for (int i = 4; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    body = json_pack("{s:o, s:s, s:{s:s}}", "Cmd", cmd, "Rootfs", argv[3], "HostConfig",
                     "NetworkMode", "none");
    if (berth_container_create(engine, NULL, body, id, &err) < 0 ||
        berth_container_start(engine, id, 0, &err) < 0 ||
        berth_container_wait(engine, id, -1, &code, &err) < 0 ||
        berth_container_logs(engine, id, 0, -1, print_entry, NULL, &err) < 0) {
        fprintf(stderr, "run-container: %s\n", err.msg);
        code = 125;
    }
    berth_container_remove(engine, id, BERTH_REMOVE_FORCE, NULL);
    json_decref(body);
    berth_engine_close(engine);
    return code;
}
