#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""hyperv root filesystem: virtio-9p share vs a block image (issue 7).

Run by bench/hyperv-rootfs-bench.sh, which checks what is needed; see
docs/benchmarks.md "hyperv root filesystem: 9p vs block" for the results.

The container's root is what the driver would have: an overlay on the host
(lower: a busybox rootfs plus test data, upper: an empty writable dir). Each
round boots one VM per variant, alternated (the first variant rotates):

  9p     the overlay's merged dir shared with virtio-9p (what the driver does)
  ext4   mkfs.ext4 -d of the merged dir, on virtio-blk (the launcher's -drive)
  erofs  mkfs.erofs of the merged dir, on virtio-blk (read-only: no write tests)

and in it: qemu start -> hello -> create+start a container -> its first
output, then one container per I/O test, timed on the host from `create` to
the `wait` reply (a `true` container gives the per-container overhead).
Each VM is fresh: the guest's caches are cold, the host's are warm.
At the end one more VM checks whether the guest's overlayfs takes a 9p
upper dir (the design docs/hyperv.md names as the next step needs one).

usage: hyperv-rootfs-bench.py VM_ARGV KERNEL INITRD MAKE_ROOTFS_SH RUNS
"""
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    'agent_vm', os.path.join(SRC, 'tests', 'integration', 'test-hyperv-agent-vm.py'))
agent_vm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agent_vm)

BIG_MIB = 64
SMALL_FILES = 2000
# Room in the ext4 image for the write tests (64 MiB + 2,000 files) beyond its content.
EXT4_HEADROOM_MIB = 128

BB = 'busybox'
TESTS = [
    # name, shell command in the container, writes?
    ('true (per-container overhead)', 'true', False),
    ('read 64 MiB (dd)', '%s dd if=/data/big of=/dev/null bs=1M 2>/dev/null' % BB, False),
    ('read 2,000 small files', '%s find /data/small -type f | %s xargs cat >/dev/null' % (BB, BB),
     False),
    ('write 64 MiB + sync', '%s dd if=/dev/zero of=/w/big bs=1M count=%d 2>/dev/null && %s sync'
     % (BB, BIG_MIB, BB), True),
    ('create 2,000 files + sync', 'mkdir /w/many && cd /w/many && i=0 && '
     'while [ $i -lt %d ]; do echo $i > f$i; i=$((i+1)); done && %s sync' % (SMALL_FILES, BB),
     True),
]


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def make_data(lower, make_rootfs):
    sh('sh', make_rootfs, lower)
    data = os.path.join(lower, 'data')
    os.makedirs(os.path.join(data, 'small'))
    with open('/dev/urandom', 'rb') as r, open(os.path.join(data, 'big'), 'wb') as w:
        for _ in range(BIG_MIB):
            w.write(r.read(1 << 20))
    for i in range(SMALL_FILES):
        # 100 B to 8 KiB: config files, scripts, small modules.
        with open(os.path.join(data, 'small', 'f%04d' % i), 'wb') as w:
            w.write(os.urandom(100 + (i * 37) % 8092))
    os.makedirs(os.path.join(lower, 'w'))
    os.chmod(os.path.join(lower, 'w'), 0o1777)


def du_mib(path):
    out = subprocess.run(['du', '-sm', path], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


class Round:
    """One VM of one variant over a fresh overlay; returns its timings."""

    def __init__(self, args, base, lower, n):
        self.vm_argv, self.kernel, self.initrd = args
        self.base, self.lower = base, lower
        self.dir = os.path.join(base, 'r%d' % n)
        os.makedirs(self.dir)
        self.merged = os.path.join(self.dir, 'merged')
        self.upper = os.path.join(self.dir, 'upper')
        for d in (self.merged, self.upper, os.path.join(self.dir, 'work')):
            os.makedirs(d)

    def mount(self):
        sh('mount', '-t', 'overlay', 'overlay', '-o', 'lowerdir=%s,upperdir=%s,workdir=%s'
           % (self.lower, self.upper, os.path.join(self.dir, 'work')), self.merged)

    def cleanup(self):
        subprocess.run(['umount', self.merged], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def image(self, variant):
        """Make the block image from the merged dir; its path and seconds taken."""
        img = os.path.join(self.dir, 'root.' + variant)
        t0 = time.monotonic()
        if variant == 'ext4':
            size = du_mib(self.merged) + EXT4_HEADROOM_MIB
            # Inode tables zeroed now, not by the guest's ext4lazyinit during the tests.
            sh('mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0',
               '-d', self.merged, img, '%dM' % size)
        else:
            sh('mkfs.erofs', '--quiet', img, self.merged)
        return img, time.monotonic() - t0

    def run(self, variant):
        res = {}
        t0 = time.monotonic()
        self.mount()
        res['overlay mount'] = time.monotonic() - t0
        img = None
        if variant != '9p':
            img, res['make image'] = self.image(variant)
            res['image MiB'] = os.stat(img).st_blocks * 512 / (1 << 20)
        console = os.path.join(self.dir, 'console.log')
        t0 = time.monotonic()
        a = agent_vm.VMAgent(self.vm_argv, self.kernel, self.initrd,
                             None if img else self.merged, console, block=img)
        rootfs = ({'type': 'block', 'device': '/dev/vda', 'fstype': variant} if img
                  else {'type': '9p', 'tag': 'rootfs'})
        try:
            hello = a.reply(a.send('hello', versions=[1], caps=[]), timeout=agent_vm.BOOT_TIMEOUT)
            if not hello.get('ok'):
                raise RuntimeError('hello: %s' % hello)
            res['qemu -> hello'] = time.monotonic() - t0
            sid = 10
            a.ok('create', container='first', config=agent_vm.spec(['echo', 'hi']), rootfs=rootfs,
                 stdio={'stdout': sid})
            a.ok('start', container='first')
            a.until(lambda: a.text(sid), 'the first output', timeout=60)
            res['qemu -> first output'] = time.monotonic() - t0
            a.ok('wait', container='first')
            a.ok('delete', container='first')
            for i, (name, cmd, writes) in enumerate(TESTS):
                if writes and variant == 'erofs':
                    continue
                sid = 20 + 10 * i
                t1 = time.monotonic()
                a.ok('create', container='t%d' % i, config=agent_vm.spec(['sh', '-c', cmd]),
                     rootfs=rootfs, stdio={'stdout': sid, 'stderr': sid + 1})
                a.ok('start', container='t%d' % i)
                w = a.ok('wait', container='t%d' % i)
                res[name] = time.monotonic() - t1
                if w.get('exit_code') != 0:
                    raise RuntimeError('%s: exit %s: %s' % (name, w.get('exit_code'),
                                                            a.text(sid + 1)))
                a.ok('delete', container='t%d' % i)
            a.ok('shutdown')
            a.proc.wait(timeout=60)
        except Exception:
            with open(console, errors='replace') as f:
                sys.stderr.write('--- %s console ---\n%s\n' % (variant, f.read()[-3000:]))
            raise
        finally:
            if a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait()
            a.stderr.close()
            a.ctl.close()
            a.io.close()
        if variant == '9p':
            # The container's writes are in the storage driver's upper dir, where they belong.
            landed = os.path.getsize(os.path.join(self.upper, 'w', 'big')) == BIG_MIB << 20
        else:
            landed = os.path.exists(os.path.join(self.upper, 'w', 'big'))
        res['writes in upper dir'] = landed
        return res


def overlay_on_9p(args, base, make_rootfs):
    """The later design's question: can the guest's overlayfs use a 9p dir as its upper?

    One VM on a 9p root; a container with CAP_SYS_ADMIN mounts an overlay with
    a lower and an upper dir both on the share, then reads, creates and deletes
    a lower file (a whiteout). Returns what it printed and the kernel's lines.
    """
    vm_argv, kernel, initrd = args
    root = os.path.join(base, 'ovl')
    sh('sh', make_rootfs, root)
    for d in ('lower', 'up', 'wk', 'merged'):
        os.makedirs(os.path.join(root, d))
    with open(os.path.join(root, 'lower', 'a'), 'w') as f:
        f.write('lower\n')
    a = agent_vm.VMAgent(vm_argv, kernel, initrd, root, os.path.join(base, 'ovl.log'))
    try:
        a.reply(a.send('hello', versions=[1], caps=[]), timeout=agent_vm.BOOT_TIMEOUT)
        s = agent_vm.spec(['sh', '-c', 'mount -t overlay overlay -o lowerdir=/lower,upperdir=/up,'
                           'workdir=/wk /merged && echo mount: ok; cat /merged/a >/dev/null && '
                           'echo read lower: ok; echo b >/merged/b && echo create: ok; '
                           'rm /merged/a && echo delete lower file: ok; '
                           'busybox dmesg | busybox grep overlayfs'])
        for k in ('bounding', 'effective', 'permitted'):
            s['process']['capabilities'][k].append('CAP_SYS_ADMIN')
        a.ok('create', container='ovl', config=s, rootfs={'type': '9p', 'tag': 'rootfs'},
             stdio={'stdout': 11, 'stderr': 12})
        a.ok('start', container='ovl')
        a.ok('wait', container='ovl')
        a.ok('shutdown')
        a.proc.wait(timeout=60)
        return a.text(11) + a.text(12)
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()
        a.stderr.close()
        a.ctl.close()
        a.io.close()


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    vm_argv, kernel, initrd, make_rootfs, runs = sys.argv[1:]
    runs = int(runs)
    base = tempfile.mkdtemp(prefix='hyperv-rootfs-bench.')
    os.chmod(base, 0o711)
    variants = ['9p', 'ext4', 'erofs']
    results = {v: [] for v in variants}
    try:
        lower = os.path.join(base, 'lower')
        make_data(lower, make_rootfs)
        print('rootfs: busybox + /data/big (%d MiB) + /data/small (%d files), %d MiB in all'
              % (BIG_MIB, SMALL_FILES, du_mib(lower)))
        n = 0
        for r in range(runs):
            order = variants[r % 3:] + variants[:r % 3]
            for v in order:
                rnd = Round((vm_argv, kernel, initrd), base, lower, n)
                n += 1
                try:
                    results[v].append(rnd.run(v))
                finally:
                    rnd.cleanup()
            print('round %d/%d done (%s)' % (r + 1, runs, ' '.join(order)), flush=True)
        ovl = overlay_on_9p((vm_argv, kernel, initrd), base, make_rootfs)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    keys = ['overlay mount', 'make image', 'qemu -> hello', 'qemu -> first output'] + \
        [t[0] for t in TESTS]
    print('\nTCG, %d VMs per variant, alternated; median (min-max) in seconds' % runs)
    print('%-32s' % '' + ''.join('%-22s' % v for v in variants))
    for k in keys:
        row = '%-32s' % k
        for v in variants:
            xs = [r[k] for r in results[v] if k in r]
            row += '%-22s' % ('%.3f (%.3f-%.3f)' % (statistics.median(xs), min(xs), max(xs))
                              if xs else 'n/a')
        print(row)
    row = '%-32s' % 'start incl. image'
    for v in variants:
        xs = [r['qemu -> first output'] + r.get('make image', 0.0) for r in results[v]]
        row += '%-22s' % ('%.3f' % statistics.median(xs))
    print(row)
    row = '%-32s' % 'image size (MiB)'
    for v in variants:
        xs = [r['image MiB'] for r in results[v] if 'image MiB' in r]
        row += '%-22s' % ('%.0f' % statistics.median(xs) if xs else 'n/a')
    print(row)
    row = '%-32s' % 'writes in the upper dir'
    for v in variants:
        row += '%-22s' % ('yes' if all(r['writes in upper dir'] for r in results[v]) else 'no')
    print(row)
    print('\nthe guest\'s overlayfs with lower and upper dirs on 9p:')
    sys.stdout.write(''.join('  ' + line + '\n' for line in ovl.splitlines()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
