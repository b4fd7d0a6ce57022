#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Storage driver benchmark: a container's rootfs life (prepare, mounts,
# mount, umount, remove) N times on the overlay driver over a 5-layer image,
# then on vfs over a small tree for comparison, each also without the mount
# and umount (the driver's own cost), printing the machine facts
# that docs/benchmarks.md quotes beside the figures.
#
#   bench/storage-bench.sh [BUILD_DIR] [--count N] [--dir DIR]
#
# BUILD_DIR defaults to build; N to 1000. The stores are created under DIR
# (default: the current directory, the filesystem being measured) and
# removed afterwards. Needs root.
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
count=1000 dir=.
while [ $# -gt 0 ]; do
    case $1 in
    --count) count=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "usage: $0 [BUILD_DIR] [--count N] [--dir DIR]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (it mounts)" >&2
    exit 1
fi

ninja -C "$build" bench/storage-bench plugins/storage-overlay.so plugins/storage-vfs.so >/dev/null

echo "machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "filesystem of $dir: $(df -T "$dir" | awk 'NR == 2 { print $2 " on " $1 }')"
echo

for run in "overlay --layers 5 --files 20" "overlay --layers 5 --files 20 --no-mount" \
    "vfs --layers 5 --files 20" "vfs --layers 5 --files 20 --no-mount"; do
    set -- $run
    driver=$1
    shift
    echo "command: $build/bench/storage-bench --dir $dir --count $count $* $build/plugins/storage-$driver.so"
    "$build/bench/storage-bench" --dir "$dir" --count "$count" "$@" "$build/plugins/storage-$driver.so"
    echo
done
