#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# 20 `run --rm --isolation hyperv --network none demo true` cycles leave
# nothing behind: no qemu or berth-shim process of this root, no mount under
# it, no file under the runroot or container dir under the root that the
# first run did not leave already, no store record (events aside: they are
# the log of what happened), no cgroup named after any of the containers.
# Skips (77) when qemu, the guest kernel or the initramfs is missing, or
# without root.
# Usage: test-hyperv-cycles.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD [CYCLES]
. "$(dirname "$0")/hyperv-lib.sh"
CYCLES=${5:-20}

# Shims of this root (their command line names it).
shim_pids() {
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "berth-shim.*$T/" && echo "${p#/proc/}"
    done
}
# A shim finishes its cleanup just after the CLI has the exit status: give
# it up to 10 s (a leaked one stays for good).
settle() {
    i=0
    while [ -n "$(shim_pids)$(qemu_pids)" ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}
# What must be the same before and after, one line each (files are listed).
snapshot() {
    settle
    echo "qemu $(qemu_pids | wc -w)"
    echo "shims $(shim_pids | wc -w)"
    echo "mounts $(awk -v t="$T/" 'index($5, t) == 1' /proc/self/mountinfo | wc -l)"
    b info --format json | python3 -c 'import json, sys
r = json.load(sys.stdin)["store"]["records"]
print("records", sorted((k, v) for k, v in r.items() if k != "events"))'
    echo "container dirs $(ls "$T/root/containers" 2>/dev/null | wc -l)"
    (cd "$T/run" && find . | sort | sed 's/^/runroot /')
}

expect_exit 0 "the demo image is there" b pull demo
# One run first: what the first container creates lazily (the store, driver
# dirs, the KVM probe's answer) is there before counting.
expect_exit 0 "a first run" hv demo true
snapshot >"$T/before"
i=0 fails=0
start=$(date +%s)
while [ $i -lt "$CYCLES" ]; do
    hv demo true >"$T/cycle.out" 2>&1 || {
        fails=$((fails + 1))
        sed 's/^/    /' "$T/cycle.out" | head -5
    }
    i=$((i + 1))
done
echo "# $CYCLES runs in $(($(date +%s) - start)) s"
[ $fails -eq 0 ] && ok "$CYCLES run --rm cycles all succeeded" || not_ok "$fails of $CYCLES runs failed"
snapshot >"$T/after"
if diff "$T/before" "$T/after" >"$T/diff"; then
    ok "nothing left: processes, mounts, records, runroot files"
else
    not_ok "the cycles left something"
    sed 's/^/    /' "$T/diff" | head -30
fi

# The cgroups: none named after any container these runs created, in any hierarchy.
b events --since 1h --until 0s --filter type=container --filter event=create --format json |
    python3 -c 'import json, sys
for l in sys.stdin:
    e = json.loads(l)
    print(e.get("id") or e.get("Actor", {}).get("ID", ""))' | grep . >"$T/ids"
n=$(wc -l <"$T/ids")
[ "$n" -ge "$CYCLES" ] && ok "the event log names the $n containers" || not_ok "only $n create events"
find /sys/fs/cgroup -type d 2>/dev/null >"$T/cgroups"
left=$(grep -F -f "$T/ids" "$T/cgroups" | head -5)
[ -z "$left" ] && ok "no cgroup of any of them is left" || not_ok "cgroups left: $left"
nothing_left "after the cycles"
finish
