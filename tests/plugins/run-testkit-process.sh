#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# run-testkit-process.sh MAKE_ROOTFS TESTKIT MODULE: berth-testkit against the
# process isolation driver with a real busybox rootfs (needs root).
set -eu
make_rootfs=$1 testkit=$2 module=$3
if [ "$(id -u)" != 0 ]; then
    echo "skipped: the process driver needs root"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-testkit-rootfs-XXXXXX")
trap 'rm -rf "$dir"' EXIT
sh "$make_rootfs" "$dir/rootfs"
"$testkit" --rootfs "$dir/rootfs" "$module"
