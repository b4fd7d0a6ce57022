#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Boot the built hyperv guest kernel under TCG with a test /init (hyperv/boot-init.c).

  test-hyperv-boot.py MKINITRAMFS INIT VMLINUX

VMLINUX is empty when the build skipped the guest kernel. Checks: the init
runs and prints the marker, the release is the built kernel's (kernel.release
beside VMLINUX) and not the host's, qemu exits by itself when the guest
reboots, a line goes guest -> host and back over a virtio-serial port, and
the bzImage boots too, with 2 vCPUs online. Skips (77) without qemu or kernel.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hyperv"))
import boot  # noqa: E402

passed = failed = 0


def check(cond, what, res=None):
    global passed, failed
    if cond:
        passed += 1
        print("ok:", what)
    else:
        failed += 1
        print("FAIL:", what)
        if res is not None:
            print("  console:", [t for _, t in res["lines"]][-30:])
            print("  port:", res["port_lines"], "exit:", res["exit"],
                  "timed out:", res["timed_out"])
            print("  qemu stderr:", res["stderr"][-2000:])


def main():
    if len(sys.argv) != 4:
        print("usage: test-hyperv-boot.py MKINITRAMFS INIT VMLINUX", file=sys.stderr)
        return 2
    mkinitramfs, init, vmlinux = sys.argv[1:]
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        print("SKIP: qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
        return 77
    if not vmlinux or not os.path.isfile(vmlinux):
        print("SKIP: the hyperv guest kernel was not built (needs linux-source-6.1, "
              "bison, flex, bc, libelf-dev; meson -Dhyperv_guest_kernel=enabled says what is missing)")
        return 77
    kdir = os.path.dirname(vmlinux)
    with open(os.path.join(kdir, "kernel.release")) as f:
        release = f.read().strip()

    tmp = tempfile.mkdtemp(prefix="berth-hvboot-")
    try:
        initrd = os.path.join(tmp, "initrd.img")
        subprocess.run([mkinitramfs, "-z", "-o", initrd,
                        "file", "/init", init, "0755",
                        "dir", "/proc", "0555", "dir", "/sys", "0555",
                        "nod", "/dev/console", "0600", "c", "5", "1"], check=True)

        # 1. vmlinux through its PVH entry, with the virtio-serial port.
        res = boot.boot(qemu, vmlinux, initrd, port="berth.test", timeout=120)
        lines = boot.init_lines(res)
        check("done" in lines, "vmlinux: init ran and printed its marker", res)
        check("release " + release in lines,
              "vmlinux: the guest's release is the built kernel's (%s)" % release, res)
        check(release != os.uname().release and "release " + os.uname().release not in lines,
              "vmlinux: the guest's release is not the host's (%s)" % os.uname().release, res)
        check(not res["timed_out"] and res["exit"] == 0,
              "vmlinux: qemu exited by itself (status 0) when the guest rebooted", res)
        check("hello " + release in res["port_lines"],
              "virtio-serial: the guest's line reached the host socket", res)
        check(res["nonce"] is not None and "echo " + res["nonce"] in res["port_lines"]
              and "port ok" in lines,
              "virtio-serial: the host's line reached the guest and came back", res)
        print("vmlinux: first init line after %.2f s, qemu gone after %.2f s"
              % (res["first_init_line"] or -1, res["seconds"] or -1))

        # 2. bzImage (the decompressor path), with 2 vCPUs.
        res = boot.boot(qemu, os.path.join(kdir, "bzImage"), initrd, smp=2, timeout=120)
        lines = boot.init_lines(res)
        check("done" in lines and "release " + release in lines,
              "bzImage: init ran on the built kernel", res)
        check("cpus 2" in lines, "bzImage: -smp 2 gives the guest 2 CPUs online", res)
        check(not res["timed_out"] and res["exit"] == 0, "bzImage: qemu exited by itself", res)
        print("bzImage: first init line after %.2f s" % (res["first_init_line"] or -1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
