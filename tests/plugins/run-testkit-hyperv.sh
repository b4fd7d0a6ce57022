#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# run-testkit-hyperv.sh MAKE_ROOTFS TESTKIT MODULE KERNEL INITRD: berth-testkit
# against the hyperv isolation driver with a real busybox rootfs, booting the
# build's guest kernel and initramfs (needs root and qemu; skips without).
set -eu
make_rootfs=$1 testkit=$2 module=$3 kernel=$4 initrd=$5
missing=
[ "$(id -u)" = 0 ] || missing="$missing root;"
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86_64;"
[ -n "$kernel" ] && [ -f "$kernel" ] || missing="$missing the guest kernel;"
[ -n "$initrd" ] && [ -f "$initrd" ] || missing="$missing the agent initramfs;"
if [ -n "$missing" ]; then
    echo "skipped: missing$missing"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-testkit-hyperv-XXXXXX")
trap 'rm -rf "$dir"' EXIT
sh "$make_rootfs" "$dir/rootfs"
BERTH_HYPERV_KERNEL=$kernel BERTH_HYPERV_INITRD=$initrd "$testkit" --rootfs "$dir/rootfs" "$module"
