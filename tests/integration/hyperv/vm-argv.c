/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Print the qemu command line the hyperv driver's launcher builds
 * (hv_vm_argv(), plugins/isolation/hyperv/hyperv-vm.h), one argument per
 * line, for tests that run the VM themselves: they get the driver's exact
 * command line with the control port's socket at fd 3 and the stdio
 * port's at fd 4. --block IMAGE gives a raw image as the virtio-blk disk
 * (hv_vm_spec_t.block_path) instead of a 9p share.
 *
 *   hyperv-vm-argv [--block IMAGE] KERNEL INITRD MEM_MIB [SHARE_DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperv-vm.h"

int main(int argc, char **argv)
{
    hv_vm_spec_t spec = { .accel = "tcg", .vcpus = 1 };
    berth_err_t err = { 0 };
    char **v = NULL;

    if (argc > 2 && strcmp(argv[1], "--block") == 0) {
        spec.block_path = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (argc < 4 || argc > 5) {
        fprintf(stderr,
                "usage: hyperv-vm-argv [--block IMAGE] KERNEL INITRD MEM_MIB [SHARE_DIR]\n");
        return 2;
    }
    spec.kernel = argv[1];
    spec.initrd = argv[2];
    spec.mem_mib = (unsigned)strtoul(argv[3], NULL, 10);
    spec.share_dir = argc == 5 ? argv[4] : NULL;
    if (hv_vm_argv(&spec, 3, 4, &v, &err) < 0) {
        fprintf(stderr, "hyperv-vm-argv: %s\n", err.msg);
        return 1;
    }
    for (char **p = v; *p; p++) {
        /* One per line: none of them may hold a newline (paths from the test). */
        if (strchr(*p, '\n')) {
            fprintf(stderr, "hyperv-vm-argv: a newline in an argument\n");
            return 1;
        }
        puts(*p);
    }
    hv_vm_argv_free(v);
    return 0;
}
