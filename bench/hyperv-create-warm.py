#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How much of a hyperv container's create and start is the VM's first time
(docs/benchmarks.md, hyperv): one microvm on the driver's command line
(hyperv-vm-argv: the build's kernel and agent initramfs, 256 MiB, TCG where
KVM can't boot it), the busybox fixture as its 9p root, and the same
container (`echo hi`, no seccomp profile, no binds) created, started, waited
for and deleted N times in a row in it, each create and start traced by the
agent (docs/agent-protocol.md, "trace"). Every hyperv container gets a
fresh VM, so it always pays the first round; the later rounds show what the
same work costs once the guest has run it. As root; prints milliseconds.

usage: bench/hyperv-create-warm.py [BUILD_DIR] [--creates N]
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    args = sys.argv[1:]
    build, n = 'build', 4
    if args and not args[0].startswith('-'):
        build = args.pop(0)
    if args[:1] == ['--creates'] and len(args) == 2:
        n = int(args[1])
    elif args:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(build)
    hv = os.path.join(build, 'plugins/isolation/hyperv')
    kernel, initrd = os.path.join(hv, 'guest/vmlinux'), os.path.join(hv, 'initrd.cpio')
    argv_tool = os.path.join(build, 'tests/integration/hyperv-vm-argv')
    for f in (kernel, initrd, argv_tool):
        if not os.path.isfile(f):
            sys.exit('%s missing: build first (docs/hyperv-guest.md)' % f)
    if os.geteuid() != 0:
        sys.exit('containers need root')
    # The client of the VM tests: qemu behind the agent protocol's two sockets.
    sys.argv = [sys.argv[0]]
    spec = importlib.util.spec_from_file_location(
        'vm_test', os.path.join(SRC, 'tests/integration/test-hyperv-agent-vm.py'))
    vm_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vm_test)
    base = tempfile.mkdtemp(prefix='berth-hvwarm-')
    os.chmod(base, 0o711)
    a = None
    try:
        rootfs = os.path.join(base, 'rootfs')
        subprocess.run(['sh', os.path.join(SRC, 'tests/fixtures/make-busybox-rootfs.sh'), rootfs],
                       check=True)
        a = vm_test.VMAgent(argv_tool, kernel, initrd, rootfs, os.path.join(base, 'console.log'))
        a.ok('hello', versions=[1], caps=[])
        print('round  create  start+run  (create in the guest, ms per step)')
        for i in range(n):
            cid, sid = 'warm%d' % i, 10 + 10 * i
            t0 = time.monotonic()
            r = a.ok('create', container=cid, config=vm_test.spec(['echo', 'hi']),
                     rootfs={'type': '9p', 'tag': 'rootfs'},
                     stdio={'stdout': sid, 'stderr': sid + 1}, trace=True)
            t1 = time.monotonic()
            a.ok('start', container=cid)
            a.ok('wait', container=cid)
            t2 = time.monotonic()
            a.ok('delete', container=cid)
            prev, parts = 0, []
            for name, ns in r.get('trace', []):
                parts.append('%s %.0f' % (name, (ns - prev) / 1e6))
                prev = ns
            print('%5d  %6.0f  %9.0f  (%s)' % (i + 1, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                                            ', '.join(parts)))
        a.ok('shutdown')
    finally:
        if a:
            try:
                a.proc.wait(10)
            except subprocess.TimeoutExpired:
                a.proc.kill()
                a.proc.wait()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
