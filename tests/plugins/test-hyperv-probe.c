/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hyperv KVM probe (plugins/isolation/hyperv/hyperv-probe.h) with the
 * real qemu, guest kernel and agent initramfs: it gives an answer (on these
 * machines KVM cannot boot the guest, and the reason says what happened),
 * the answer is cached and read back, a changed input probes again, and
 * missing inputs are refused. Skips when qemu, the kernel or the initramfs
 * is missing.
 *
 *   test-hyperv-probe KERNEL INITRD
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "hyperv-probe.h"

static const char *kernel, *initrd;

static int have_inputs(void)
{
    return kernel && *kernel && access(kernel, R_OK) == 0 && initrd && *initrd &&
           access(initrd, R_OK) == 0 &&
           (access("/usr/bin/qemu-system-x86_64", X_OK) == 0 ||
            access("/usr/local/bin/qemu-system-x86_64", X_OK) == 0);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static void test_probe_and_cache(void **state)
{
    char dir[] = "/tmp/berth-hvprobe-XXXXXX", cache[256], rd[256];
    hv_accel_probe_t p1, p2, p3, p4;
    berth_err_t err = { 0 };
    json_t *doc;
    (void)state;

    if (!have_inputs())
        skip();
    assert_non_null(mkdtemp(dir));
    snprintf(cache, sizeof(cache), "%s/accel.json", dir);
    snprintf(rd, sizeof(rd), "%s/initrd.cpio", dir);
    copy_file(initrd, rd);

    assert_int_equal(hv_probe_accel(NULL, kernel, rd, 3000, cache, &p1, &err), 0);
    assert_int_equal(p1.cached, 0);
    /* Either answer is fine here; a "no" must say why. */
    if (!p1.kvm)
        assert_true(strlen(p1.reason) > 0);
    print_message("probe: kvm=%d reason=%s\n", p1.kvm, p1.reason);
    assert_int_equal(access(cache, R_OK), 0);

    /* The same inputs: the cached answer, without booting. */
    assert_int_equal(hv_probe_accel(NULL, kernel, rd, 3000, cache, &p2, &err), 0);
    assert_int_equal(p2.cached, 1);
    assert_int_equal(p2.kvm, p1.kvm);
    assert_string_equal(p2.reason, p1.reason);

    /* It is the file that answers: a marker put there comes back. */
    doc = json_load_file(cache, 0, NULL);
    assert_non_null(doc);
    json_object_set_new(doc, "reason", json_string("marker"));
    assert_int_equal(json_dump_file(doc, cache, 0), 0);
    json_decref(doc);
    assert_int_equal(hv_probe_accel(NULL, kernel, rd, 3000, cache, &p3, &err), 0);
    assert_int_equal(p3.cached, 1);
    assert_string_equal(p3.reason, "marker");

    /* A new initramfs (another size): probed again. */
    {
        int fd = open(rd, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "\0\0\0\0", 4), 4);
        close(fd);
    }
    assert_int_equal(hv_probe_accel(NULL, kernel, rd, 3000, cache, &p4, &err), 0);
    assert_int_equal(p4.cached, 0);
    assert_int_equal(p4.kvm, p1.kvm);
    assert_string_not_equal(p4.reason, "marker");

    unlink(cache);
    unlink(rd);
    assert_int_equal(rmdir(dir), 0); /* nothing else left (the console log goes) */
}

static void test_probe_refuses(void **state)
{
    hv_accel_probe_t p;
    berth_err_t err = { 0 };
    (void)state;

    assert_int_equal(hv_probe_accel("/bin/true", "/nonexistent/vmlinux", "/nonexistent/initrd",
                                    1000, "/tmp/never-written.json", &p, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/vmlinux"));
    assert_int_equal(access("/tmp/never-written.json", F_OK), -1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_and_cache),
        cmocka_unit_test(test_probe_refuses),
    };

    kernel = argc > 1 ? argv[1] : NULL;
    initrd = argc > 2 ? argv[2] : NULL;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
