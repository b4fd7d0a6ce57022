/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the distribution-kernel fallback (hyperv-kernel.h), on a
 * made-up /boot and /lib/modules: the newest kernel with modules is picked
 * by version order; its initramfs is the agent's archive, padded, followed
 * by a newc archive of the wanted modules with their dependencies before
 * them (and nothing else), and the load list in that order; it is reused
 * while fresh and made again once modules.dep is newer.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hyperv-kernel.h"

static char root[] = "/tmp/berth-hvkernel-XXXXXX";
static char boot[PATH_MAX], mods[PATH_MAX];

static void put(const char *rel, const char *text)
{
    char path[PATH_MAX], dir[PATH_MAX], *slash;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    snprintf(dir, sizeof(dir), "%s", path);
    for (slash = strchr(dir + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(dir, 0755);
        *slash = '/';
    }
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

#define REL "6.1.0-10-amd64"
#define MD  "lib/modules/" REL "/"

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(root))
        return -1;
    snprintf(boot, sizeof(boot), "%s/boot", root);
    snprintf(mods, sizeof(mods), "%s/lib/modules", root);
    /* 6.1.0-10 sorts after 6.1.0-9 by version, not by bytes; 6.2 has no modules. */
    put("boot/vmlinuz-6.1.0-9-amd64", "old");
    put("boot/vmlinuz-" REL, "new");
    put("boot/vmlinuz-6.2.0-1-amd64", "no modules");
    put("boot/config-" REL, "not a kernel");
    put("lib/modules/6.1.0-9-amd64/modules.dep", "");
    put(MD "modules.dep", "kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko "
                          "kernel/drivers/virtio/virtio_ring.ko\n"
                          "kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko\n"
                          "kernel/drivers/virtio/virtio.ko:\n"
                          "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko\n"
                          "kernel/net/9p/9pnet.ko:\n"
                          "kernel/fs/unrelated.ko: kernel/drivers/virtio/virtio.ko\n");
    put(MD "kernel/drivers/virtio/virtio_mmio.ko", "MMIO");
    put(MD "kernel/drivers/virtio/virtio_ring.ko", "RING");
    put(MD "kernel/drivers/virtio/virtio.ko", "VIRTIO");
    put(MD "kernel/fs/9p/9p.ko", "9P");
    put(MD "kernel/net/9p/9pnet.ko", "9PNET");
    put(MD "kernel/fs/unrelated.ko", "UNRELATED");
    put("agent.cpio", "AGENT-ARCHIVE");
    put("cache/.keep", "");
    return 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_find_newest(void **state)
{
    hv_kernel_t k;
    berth_err_t err = { 0 };
    (void)state;

    assert_int_equal(hv_kernel_find_distro(boot, mods, &k, &err), 0);
    assert_string_equal(k.release, REL);
    assert_non_null(strstr(k.path, "/boot/vmlinuz-" REL));
}

static void test_find_none(void **state)
{
    hv_kernel_t k;
    berth_err_t err = { 0 };
    char empty[PATH_MAX];
    (void)state;

    snprintf(empty, sizeof(empty), "%s/cache", root);
    assert_int_equal(hv_kernel_find_distro(empty, mods, &k, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "linux-image-amd64"));
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static uint32_t hex8(const unsigned char *p)
{
    char s[9];
    memcpy(s, p, 8);
    s[8] = '\0';
    return (uint32_t)strtoul(s, NULL, 16);
}

/* The names of the regular files in the newc archive at @buf (in order), and the list's text. */
static void files_of(const unsigned char *buf, size_t len, char names[][128], size_t *n, char *list,
                     size_t list_size)
{
    size_t off = 0;
    *n = 0;
    list[0] = '\0';
    while (off + 110 <= len) {
        uint32_t mode = hex8(buf + off + 14), size = hex8(buf + off + 54);
        uint32_t namesize = hex8(buf + off + 94);
        const char *name = (const char *)buf + off + 110;
        size_t data = (off + 110 + namesize + 3) & ~(size_t)3;
        assert_memory_equal(buf + off, "070701", 6);
        if (strcmp(name, "TRAILER!!!") == 0)
            return;
        if ((mode & 0170000) == 0100000) {
            if (strcmp(name, "etc/berth-modules") == 0) {
                assert_true(size < list_size);
                memcpy(list, buf + data, size);
                list[size] = '\0';
            } else {
                snprintf(names[(*n)++], 128, "%s", name);
            }
        }
        off = (data + size + 3) & ~(size_t)3;
    }
    fail_msg("no trailer");
}

static size_t index_of(char names[][128], size_t n, const char *suffix)
{
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(names[i]), b = strlen(suffix);
        if (a >= b && strcmp(names[i] + a - b, suffix) == 0)
            return i;
    }
    fail_msg("%s is not in the archive", suffix);
    return 0;
}

static void test_initrd(void **state)
{
    hv_kernel_t k;
    berth_err_t err = { 0 };
    char agent[PATH_MAX], cache[PATH_MAX], out[PATH_MAX], names[16][128], list[4096], dep[PATH_MAX];
    unsigned char *buf;
    size_t len, n;
    struct stat a, b;
    (void)state;

    snprintf(agent, sizeof(agent), "%s/agent.cpio", root);
    snprintf(cache, sizeof(cache), "%s/cache", root);
    assert_int_equal(hv_kernel_find_distro(boot, mods, &k, &err), 0);
    assert_int_equal(hv_kernel_distro_initrd(&k, mods, agent, cache, out, sizeof(out), &err), 0);
    assert_non_null(strstr(out, "/cache/initrd-" REL ".cpio"));

    buf = slurp(out, &len);
    /* The agent's archive as it was, then zeros to 512, then the modules' archive. */
    assert_memory_equal(buf, "AGENT-ARCHIVE", 13);
    for (size_t i = 13; i < 512; i++)
        assert_int_equal(buf[i], 0);
    files_of(buf + 512, len - 512, names, &n, list, sizeof(list));
    assert_int_equal(n, 5); /* virtio, virtio_ring, virtio_mmio, 9pnet, 9p: not unrelated */
    assert_true(index_of(names, n, "/virtio.ko") < index_of(names, n, "/virtio_ring.ko"));
    assert_true(index_of(names, n, "/virtio_ring.ko") < index_of(names, n, "/virtio_mmio.ko"));
    assert_true(index_of(names, n, "/9pnet.ko") < index_of(names, n, "/9p.ko"));
    /* The list names the same files, as guest paths, in the same order. */
    {
        char want[4096] = "";
        for (size_t i = 0; i < n; i++) {
            strcat(want, "/");
            strcat(want, names[i]);
            strcat(want, "\n");
        }
        assert_string_equal(list, want);
        assert_non_null(strstr(list, "/lib/modules/" REL "/kernel/fs/9p/9p.ko\n"));
    }
    free(buf);

    /* Fresh: reused as it is. */
    assert_int_equal(stat(out, &a), 0);
    assert_int_equal(hv_kernel_distro_initrd(&k, mods, agent, cache, out, sizeof(out), &err), 0);
    assert_int_equal(stat(out, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    /* modules.dep newer (a kernel update): made again. */
    snprintf(dep, sizeof(dep), "%s/" MD "modules.dep", root);
    {
        struct timespec later[2] = { { b.st_mtim.tv_sec + 10, 0 }, { b.st_mtim.tv_sec + 10, 0 } };
        assert_int_equal(utimensat(AT_FDCWD, dep, later, 0), 0);
    }
    assert_int_equal(hv_kernel_distro_initrd(&k, mods, agent, cache, out, sizeof(out), &err), 0);
    assert_int_equal(stat(out, &a), 0);
    assert_int_not_equal(a.st_ino, b.st_ino);
}

static void test_tsc(void **state)
{
    (void)state;
#if defined(__x86_64__)
    /* Any x86-64 TSC runs between 100 MHz and 10 GHz. */
    unsigned long khz = hv_host_tsc_khz();
    assert_true(khz > 100000 && khz < 10000000);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_newest),
        cmocka_unit_test(test_find_none),
        cmocka_unit_test(test_initrd),
        cmocka_unit_test(test_tsc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
