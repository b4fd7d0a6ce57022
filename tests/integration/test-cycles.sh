#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# 200 create/start/rm cycles through the CLI leave nothing behind: no
# mounts, cgroups, monitor or container processes, bundle directories,
# network namespaces or store records.
# Usage: test-cycles.sh BERTH_BINARY MAKE_ROOTFS_SCRIPT [CYCLES]   (as root)
. "$(dirname "$0")/lib.sh"
BERTH=$1
CYCLES=${3:-200}
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: real containers need root"
    exit 77
fi
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
sh "$2" "$T/rootfs" >/dev/null || exit 1
echo '{"plugin_dirs": []}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }

# A monitor finishes its cleanup just after its client has the exit status:
# give exiting ones up to 10 s (a leaked one stays for good).
settle() {
    i=0
    while pgrep -f "berth-shim.*$T" >/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

# Only what this test made counts (other processes on the machine mount and
# make cgroups too): mounts whose mount point is under $T, and cgroups named
# after the containers it created (in every hierarchy: hybrid hosts have several).
snapshot() {
    settle
    echo "mounts $(awk -v t="$T" 'index($5, t) == 1' /proc/self/mountinfo | wc -l)"
    n=0
    while read -r cid; do
        n=$((n + $(find /sys/fs/cgroup -maxdepth 3 -path "*/berth/$cid" -type d 2>/dev/null | wc -l)))
    done <"$T/ids"
    echo "cgroups $n"
    echo "shims $(pgrep -fc "berth-shim.*$T" || true)"
    echo "bundles $(ls "$T/run/containers" 2>/dev/null | wc -l)"
    echo "records $(b ps -aq | wc -l)"
    echo "logs $(ls "$T/root/containers" 2>/dev/null | wc -l)"
}

# One cycle first, so lazily created state (store, driver dirs) exists before counting.
b run --rm --rootfs "$T/rootfs" true >/dev/null 2>&1
: >"$T/ids"
snapshot >"$T/before"
i=0
fails=0
while [ $i -lt "$CYCLES" ]; do
    id=$(b create --rootfs "$T/rootfs" sh -c 'echo cycle') || fails=$((fails + 1))
    echo "$id" >>"$T/ids"
    b start -a "$id" >/dev/null 2>&1 || fails=$((fails + 1))
    b rm "$id" >/dev/null 2>&1 || fails=$((fails + 1))
    i=$((i + 1))
done
[ $fails -eq 0 ] && ok "$CYCLES create/start/rm cycles all succeeded" || not_ok "$fails steps failed"
snapshot >"$T/after"
while read -r what n; do
    m=$(awk -v w="$what" '$1 == w { print $2 }' "$T/after")
    [ "$n" = "$m" ] && ok "no leaked $what ($n before and after)" || not_ok "$what: $n before, $m after"
done <"$T/before"
finish
