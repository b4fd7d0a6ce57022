#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# hyperv root filesystem: a virtio-9p share vs a block image (ext4, erofs) on
# virtio-blk, in the same run, alternated, under TCG (issue 7): start time
# (making the image included) and file I/O inside a container. The VM is the
# hyperv launcher's own command line (hyperv-vm-argv), the guest the build's
# kernel and agent initramfs; the client is tests/integration/
# test-hyperv-agent-vm.py's. See bench/hyperv-rootfs-bench.py for what is
# timed and docs/benchmarks.md for results. As root (overlay mount, 9p
# passthrough); needs mkfs.ext4 and mkfs.erofs (erofs-utils).
#
#   bench/hyperv-rootfs-bench.sh [BUILD_DIR] [--runs N]
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
runs=5
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
kdir="$build/plugins/isolation/hyperv/guest"
initrd="$build/plugins/isolation/hyperv/initrd.cpio"
argv="$build/tests/integration/hyperv-vm-argv"
for f in "$kdir/vmlinux" "$initrd" "$argv"; do
    [ -f "$f" ] || { echo "$0: $f missing: build first (docs/hyperv-guest.md)" >&2; exit 1; }
done
for c in qemu-system-x86_64 mkfs.ext4 mkfs.erofs; do
    command -v $c >/dev/null || { echo "$0: $c missing" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }

echo "guest kernel $(cat "$kdir/kernel.release"), qemu $(qemu-system-x86_64 --version | head -n 1 | sed 's/.*version //')"
echo "mkfs.ext4 $(mkfs.ext4 -V 2>&1 | head -n 1 | cut -d' ' -f2), erofs-utils $(dpkg-query -W -f '${Version}' erofs-utils 2>/dev/null || echo '?')"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
exec python3 "$src/bench/hyperv-rootfs-bench.py" "$(realpath "$argv")" "$(realpath "$kdir/vmlinux")" \
    "$(realpath "$initrd")" "$src/tests/fixtures/make-busybox-rootfs.sh" "$runs"
