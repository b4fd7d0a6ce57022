#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""berth-agent as PID 1 of a real qemu microvm (TCG), with the guest kernel
the build made, on the command line the hyperv driver's launcher builds
(hyperv-vm-argv prints it) and the agent initramfs the build packed. Over
the two virtio-serial ports it checks: hello names the guest kernel, not the
host's; a container on the 9p-shared busybox root prints the guest kernel's
release, sees none of the host's processes or mounts, and its exit code
comes back; stdin reaches it; shutdown ends qemu by itself and nothing of
the VM is left. Skips (77) with the reason when something is missing.

usage: test-hyperv-agent-vm.py VM_ARGV KERNEL KERNEL_RELEASE INITRD MAKE_ROOTFS_SH
"""
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location('agent_test', os.path.join(HERE, 'test-agent.py'))
agent_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agent_test)

BOOT_TIMEOUT = 90.0  # TCG on two shared cores


class VMAgent(agent_test.Agent):
    """The test-agent.py client, with qemu instead of a host-mode agent behind the sockets."""

    def __init__(self, vm_argv, kernel, initrd, share, console, block=None):
        """The root is @share (9p) or, with @block, that raw image on virtio-blk."""
        # pylint: disable=super-init-not-called
        cmd = [vm_argv] + (['--block', block] if block else []) + [kernel, initrd, '256']
        argv = subprocess.run(cmd + ([share] if share else []), check=True,
                              capture_output=True, text=True).stdout.splitlines()
        self.ctl, ctl_peer = socket.socketpair()
        self.io, io_peer = socket.socketpair()
        self.console = console
        self.stderr = open(console, 'w+b')

        def fds():
            # The launcher's places: the control port's socket at 3, stdio's at 4.
            os.dup2(ctl_peer.fileno(), 3)
            os.dup2(io_peer.fileno(), 4)

        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr, preexec_fn=fds, close_fds=False)
        ctl_peer.close()
        io_peer.close()
        self.next_id = 1
        self.replies = {}
        self.out = {}
        self.eof = set()
        self.granted = {}
        self.in_credit = {}
        self.auto_credit = True
        self.no_credit = set()
        self.bufs = {self.ctl: b'', self.io: b''}
        self.closed = set()
        import selectors
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.ctl, selectors.EVENT_READ)
        self.sel.register(self.io, selectors.EVENT_READ)


def spec(args):
    s = agent_test.spec(args)
    s['hostname'] = 'vmtest'
    return s


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    vm_argv, kernel, release_file, initrd, make_rootfs = sys.argv[1:]
    missing = []
    if not shutil.which('qemu-system-x86_64'):
        missing.append('qemu-system-x86_64 (apt-get install qemu-system-x86)')
    if not kernel or not os.path.isfile(kernel):
        missing.append('the hyperv guest kernel (meson option hyperv_guest_kernel)')
    if not initrd or not os.path.isfile(initrd):
        missing.append('the agent initramfs (needs a static berth-agent)')
    if os.geteuid() != 0:
        missing.append('root (the agent runs containers in the guest; 9p passthrough)')
    if missing:
        print('skipped: missing ' + '; '.join(missing))
        return 77
    guest_release = open(release_file).read().strip()
    base = tempfile.mkdtemp(prefix='hyperv-vm-test.', dir=os.getcwd())
    os.chmod(base, 0o711)
    rootfs = os.path.join(base, 'rootfs')
    r = subprocess.run(['sh', make_rootfs, rootfs], capture_output=True, text=True)
    if r.returncode != 0:
        print('skipped: no busybox rootfs: ' + r.stderr.strip())
        shutil.rmtree(base, ignore_errors=True)
        return 77
    console = os.path.join(base, 'console.log')
    failed = 0
    a = None

    def check(name, cond, detail=''):
        nonlocal failed
        print(('ok     ' if cond else 'FAILED ') + name + ('' if cond else ': ' + detail))
        if not cond:
            failed += 1

    def run(cid, args, stdin=None, sid=10):
        a.ok('create', container=cid, config=spec(args), rootfs={'type': '9p', 'tag': 'rootfs'},
             stdio={'tty': False, 'stdin': sid if stdin is not None else None,
                    'stdout': sid + 1, 'stderr': sid + 2})
        a.ok('start', container=cid)
        if stdin is not None:
            a.write_stdin(sid, stdin)
            a.close_stdin(sid)
        w = a.ok('wait', container=cid)
        a.ok('delete', container=cid)
        return w, a.text(sid + 1), a.text(sid + 2)

    try:
        t0 = time.monotonic()
        a = VMAgent(vm_argv, kernel, initrd, rootfs, console)
        rid = a.send('hello', versions=[1], caps=[])
        hello = a.reply(rid, timeout=BOOT_TIMEOUT)
        boot = time.monotonic() - t0
        check('hello from the guest (%.1f s after qemu started)' % boot,
              hello.get('ok') and hello.get('pid1') is True, str(hello))
        check('the agent runs on the guest kernel', hello.get('kernel') == guest_release,
              '%s, built %s' % (hello.get('kernel'), guest_release))
        check('which is not the host kernel', hello.get('kernel') != os.uname().release)

        w, out, err = run('c1', ['busybox', 'uname', '-r'])
        check('a container prints the guest kernel release',
              w.get('exit_code') == 0 and out.strip() == guest_release, '%s %r %r' % (w, out, err))
        w, out, _ = run('c2', ['sh', '-c', 'ps -o pid,comm | wc -l; cat /proc/mounts'], sid=20)
        lines = out.splitlines()
        check('only its own processes are visible', lines and lines[0].strip() in ('2', '3', '4'),
              out)
        check("the host's mounts are not visible", base not in out and '/work' not in out, out)
        w, _, _ = run('c3', ['sh', '-c', 'exit 7'], sid=30)
        check('exit code 7 comes back', w.get('exit_code') == 7, str(w))
        w, out, _ = run('c4', ['cat'], stdin=b'through the VM\n', sid=40)
        check('stdin reaches the container and back', out == 'through the VM\n', repr(out))

        # A clean boot says nothing on the console: the kernel is quiet, and
        # the agent logs only failures (it once asked for cgroup controllers
        # the guest kernel lacks, on every boot).
        a.stderr.flush()
        with open(console, 'rb') as f:
            said = [ln for ln in f.read().decode(errors='replace').splitlines()
                    if ln.startswith('berth-agent')]
        check('the agent logged nothing on a clean boot', not said, '\n'.join(said))

        a.ok('shutdown')
        try:
            code = a.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        check('shutdown ends qemu by itself', code == 0, 'exit %s' % code)
        a.until(lambda: a.ctl in a.closed, 'the control port to close', timeout=10)
        check('the control port closes with it', a.ctl in a.closed)
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        if a is not None:
            if a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait()
            if failed:
                a.stderr.seek(0)
                print('--- console ---\n' + a.stderr.read().decode(errors='replace')[-4000:])
            a.stderr.close()
            a.ctl.close()
            a.io.close()
    shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
