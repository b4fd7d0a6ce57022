#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Build and run the metadata store benchmark, printing the machine facts that
# docs/benchmarks.md quotes beside the figures.
#
#   bench/store-bench.sh [BUILD_DIR] [store-bench options...]
#
# BUILD_DIR defaults to build. The stores are created under the current
# directory (the filesystem being measured) unless --dir is given.
set -eu

build=${1:-build}
[ $# -gt 0 ] && shift

ninja -C "$build" bench/store-bench >/dev/null

echo "machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "filesystem of $(pwd): $(df -T . | awk 'NR == 2 { print $2 " on " $1 }')"
echo "command: $build/bench/store-bench $*"
echo
exec "$build/bench/store-bench" "$@"
