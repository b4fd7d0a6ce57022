#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Block root filesystems in a real qemu microvm (TCG): the launcher's
virtio-blk disk (hyperv-vm-argv --block, hv_vm_spec_t.block_path) with the
agent's `{"type":"block"}` rootfs (docs/agent-protocol.md). An ext4 image
made with `mkfs.ext4 -d` from the busybox rootfs: a container reads a file
of the image and writes one, and the write is in the image after the VM is
gone (debugfs reads it back). An erofs image (when mkfs.erofs is there):
the container reads it, and a write fails, since erofs is read-only. The
launcher's 9p path is test-hyperv-agent-vm.py's; bench/hyperv-rootfs-bench.sh
compares the two. Skips (77) with the reason when something is missing.

usage: test-hyperv-rootfs-block.py VM_ARGV KERNEL INITRD MAKE_ROOTFS_SH
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location('agent_vm',
                                               os.path.join(HERE, 'test-hyperv-agent-vm.py'))
agent_vm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agent_vm)


def boot_and_run(vm_argv, kernel, initrd, image, fstype, console, args):
    """One VM on @image; one container running @args: (wait reply, stdout, stderr)."""
    a = agent_vm.VMAgent(vm_argv, kernel, initrd, None, console, block=image)
    try:
        hello = a.reply(a.send('hello', versions=[1], caps=[]), timeout=agent_vm.BOOT_TIMEOUT)
        if not hello.get('ok'):
            raise AssertionError('hello: %s' % hello)
        a.ok('create', container='c1', config=agent_vm.spec(args),
             rootfs={'type': 'block', 'device': '/dev/vda', 'fstype': fstype},
             stdio={'stdout': 11, 'stderr': 12})
        a.ok('start', container='c1')
        w = a.ok('wait', container='c1')
        a.ok('delete', container='c1')
        a.ok('shutdown')
        code = a.proc.wait(timeout=60)
        if code != 0:
            raise AssertionError('qemu exited %s after shutdown' % code)
        return w, a.text(11), a.text(12)
    except Exception:
        with open(console, errors='replace') as f:
            print('--- console ---\n' + f.read()[-3000:])
        raise
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()
        a.stderr.close()
        a.ctl.close()
        a.io.close()


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    vm_argv, kernel, initrd, make_rootfs = sys.argv[1:]
    missing = []
    if not shutil.which('qemu-system-x86_64'):
        missing.append('qemu-system-x86_64 (apt-get install qemu-system-x86)')
    if not kernel or not os.path.isfile(kernel):
        missing.append('the hyperv guest kernel (meson option hyperv_guest_kernel)')
    if not initrd or not os.path.isfile(initrd):
        missing.append('the agent initramfs (needs a static berth-agent)')
    for tool in ('mkfs.ext4', 'debugfs'):
        if not shutil.which(tool):
            missing.append(tool + ' (e2fsprogs)')
    if os.geteuid() != 0:
        missing.append('root (the agent runs containers in the guest)')
    if missing:
        print('skipped: missing ' + '; '.join(missing))
        return 77
    base = tempfile.mkdtemp(prefix='hyperv-block-test.', dir=os.getcwd())
    rootfs = os.path.join(base, 'rootfs')
    r = subprocess.run(['sh', make_rootfs, rootfs], capture_output=True, text=True)
    if r.returncode != 0:
        print('skipped: no busybox rootfs: ' + r.stderr.strip())
        shutil.rmtree(base, ignore_errors=True)
        return 77
    with open(os.path.join(rootfs, 'etc', 'from-the-image'), 'w') as f:
        f.write('made on the host\n')
    console = os.path.join(base, 'console.log')
    failed = 0

    def check(name, cond, detail=''):
        nonlocal failed
        print(('ok     ' if cond else 'FAILED ') + name + ('' if cond else ': ' + detail))
        if not cond:
            failed += 1

    try:
        img = os.path.join(base, 'root.ext4')
        subprocess.run(['mkfs.ext4', '-q', '-F', '-d', rootfs, img, '32M'], check=True,
                       capture_output=True)
        w, out, err = boot_and_run(vm_argv, kernel, initrd, img, 'ext4', console,
                                   ['sh', '-c', 'cat /etc/from-the-image; grep " / " /proc/mounts;'
                                    ' echo written in the guest > /root/new && busybox sync'])
        lines = out.splitlines()
        check('a container on an ext4 image reads its files',
              w.get('exit_code') == 0 and lines[:1] == ['made on the host'], '%s %r %r'
              % (w, out, err))
        check('its root is the virtio-blk disk', len(lines) > 1 and 'ext4' in lines[1], out)
        r = subprocess.run(['debugfs', '-R', 'cat /root/new', img], capture_output=True,
                           text=True)
        check('its write is in the image after the VM is gone',
              r.stdout == 'written in the guest\n', repr(r.stdout) + r.stderr)

        if not shutil.which('mkfs.erofs'):
            print('skipped the erofs part: no mkfs.erofs (apt-get install erofs-utils)')
        else:
            img = os.path.join(base, 'root.erofs')
            subprocess.run(['mkfs.erofs', '--quiet', img, rootfs], check=True,
                           capture_output=True)
            w, out, err = boot_and_run(vm_argv, kernel, initrd, img, 'erofs', console,
                                       ['sh', '-c', 'cat /etc/from-the-image; '
                                        'echo x > /root/new; echo write: $?'])
            check('a container on an erofs image reads its files',
                  out.splitlines()[:1] == ['made on the host'], '%r %r' % (out, err))
            check('and can not write it (read-only)',
                  'write: 1' in out and 'Read-only file system' in err, '%r %r' % (out, err))
    except Exception:
        failed += 1
        traceback.print_exc()
    shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
