/* SPDX-License-Identifier: Apache-2.0 */
/* The KVM probe and its cache (hyperv-probe.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent-proto.h"
#include "hyperv-probe.h"
#include "hyperv-vm.h"

/* "PATH SIZE MTIME_NS" of @path, or NULL when it can't be read. */
static json_t *identity(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return NULL;
    return json_sprintf("%s %lld %lld", path, (long long)st.st_size,
                        (long long)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec);
}

/* The last non-empty line of the console log, for the reason. */
static void last_line(const char *log, char *buf, size_t len)
{
    char tail[2048], *p, *end;
    ssize_t n = -1;
    int fd = open(log, O_RDONLY | O_CLOEXEC);

    buf[0] = '\0';
    if (fd >= 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        off_t from = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
        n = pread(fd, tail, sizeof(tail) - 1, from);
        close(fd);
    }
    if (n <= 0)
        return;
    tail[n] = '\0';
    for (end = tail + n; end > tail && (end[-1] == '\n' || end[-1] == '\r'); end--)
        ;
    *end = '\0';
    p = strrchr(tail, '\n');
    p = p ? p + 1 : tail;
    /* Cut to fit (a reason is one short line). */
    if (strlen(p) >= len)
        p[len - 1] = '\0';
    memcpy(buf, p, strlen(p) + 1);
}

/* Boot under KVM and wait for the agent's hello: 1, or 0 with @why. */
static int boot_under_kvm(const char *qemu, const char *kernel, const char *initrd, const char *log,
                          int timeout_ms, char *why, size_t why_len)
{
    hv_vm_spec_t spec = { .qemu = qemu,
                          .kernel = kernel,
                          .initrd = initrd,
                          .accel = "kvm",
                          .vcpus = 1,
                          .mem_mib = 128,
                          .console_log = log };
    agent_writer_t w;
    agent_reader_t rd;
    hv_vm_t vm;
    berth_err_t err = { 0 };
    struct timespec start, now;
    json_t *hello;
    int ok = 0;

    if (hv_vm_start(&spec, &vm, &err) < 0) {
        snprintf(why, why_len, "qemu did not start: %.160s", err.msg);
        return 0;
    }
    agent_writer_init(&w);
    agent_reader_init(&rd, AGENT_CONTROL_MAX);
    hello = json_pack("{s:i, s:s, s:[i], s:[]}", "id", 0, "op", "hello", "versions",
                      AGENT_PROTO_VERSION_MAX, "caps");
    if (!hello || agent_json_put(&w, hello) < 0 || agent_writer_flush(&w, vm.control_fd) < 0)
        snprintf(why, why_len, "could not send hello to the guest");
    json_decref(hello);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!ok && !why[0]) {
        struct pollfd p[2] = { { .fd = vm.control_fd, .events = POLLIN },
                               { .fd = vm.pidfd, .events = POLLIN } };
        long left;
        const uint8_t *payload;
        uint32_t plen;

        if (agent_writer_pending(&w))
            agent_writer_flush(&w, vm.control_fd);
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = timeout_ms -
               ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0 || poll(p, 2, (int)left) == 0) {
            snprintf(why, why_len, "no answer from the guest within %d ms under KVM", timeout_ms);
            break;
        }
        if (p[0].revents) {
            long n = agent_reader_fill(&rd, vm.control_fd);
            while (n > 0 && agent_reader_next(&rd, &payload, &plen) > 0) {
                json_t *msg = NULL;
                char jwhy[128];
                if (agent_json_decode(payload, plen, &msg, jwhy, sizeof(jwhy)) == 0 &&
                    json_integer_value(json_object_get(msg, "id")) == 0)
                    ok = json_is_true(json_object_get(msg, "ok"));
                json_decref(msg);
            }
            if (n <= 0 && !ok) {
                /* The port closed: qemu is going; its reason is in the log. */
                poll(&p[1], 1, 2000);
                p[1].revents = POLLIN;
            }
        }
        if (!ok && p[1].revents) {
            char line[200];
            hv_vm_stop(&vm, 1000);
            last_line(log, line, sizeof(line));
            snprintf(why, why_len, "qemu exited under KVM%s%s", line[0] ? ": " : "", line);
        }
    }
    hv_vm_stop(&vm, 0);
    agent_writer_clear(&w);
    agent_reader_clear(&rd);
    return ok;
}

int hv_probe_accel(const char *qemu, const char *kernel, const char *initrd, int timeout_ms,
                   const char *cache_path, hv_accel_probe_t *ret, berth_err_t *err)
{
    char qbuf[4096], log[4096], tmp[4096];
    json_t *key, *cached, *out;
    int fd;

    memset(ret, 0, sizeof(*ret));
    if (!qemu) {
        if (!hv_find_program("qemu-system-x86_64", NULL, qbuf, sizeof(qbuf)))
            return berth_err_set(err, -ENOENT, "hyperv: qemu-system-x86_64 not found on $PATH");
        qemu = qbuf;
    }
    key = json_pack("{s:i, s:o*, s:o*, s:o*}", "v", 1, "qemu", identity(qemu), "kernel",
                    identity(kernel), "initrd", identity(initrd));
    if (!key)
        return berth_err_set(err, -ENOMEM, "hyperv: out of memory");
    if (json_object_size(key) != 4) {
        json_decref(key);
        return berth_err_set(err, -ENOENT, "hyperv: probe: %s, %s or %s is missing", qemu, kernel,
                             initrd);
    }
    cached = json_load_file(cache_path, 0, NULL);
    if (cached && json_equal(json_object_get(cached, "key"), key) &&
        json_is_boolean(json_object_get(cached, "kvm"))) {
        ret->kvm = json_is_true(json_object_get(cached, "kvm"));
        ret->cached = 1;
        snprintf(ret->reason, sizeof(ret->reason), "%s",
                 json_string_value(json_object_get(cached, "reason")) ?: "");
        json_decref(cached);
        json_decref(key);
        return 0;
    }
    json_decref(cached);

    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(ret->reason, sizeof(ret->reason), "no usable /dev/kvm: %s", strerror(errno));
    } else {
        close(fd);
        /* Per process: two first VMs of one root may probe at the same time. */
        if (snprintf(log, sizeof(log), "%s.%d.console", cache_path, (int)getpid()) >=
            (int)sizeof(log)) {
            json_decref(key);
            return berth_err_set(err, -ENAMETOOLONG, "hyperv: probe: path too long");
        }
        ret->kvm =
            boot_under_kvm(qemu, kernel, initrd, log, timeout_ms, ret->reason, sizeof(ret->reason));
        unlink(log);
    }
    /* The answer, for next time: whole or absent (written aside, then renamed). */
    out = json_pack("{s:o, s:b, s:s}", "key", key, "kvm", ret->kvm, "reason", ret->reason);
    if (out &&
        snprintf(tmp, sizeof(tmp), "%s.%d.tmp", cache_path, (int)getpid()) < (int)sizeof(tmp) &&
        json_dump_file(out, tmp, JSON_COMPACT) == 0 && rename(tmp, cache_path) < 0)
        unlink(tmp);
    json_decref(out);
    return 0;
}
