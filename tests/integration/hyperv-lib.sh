# SPDX-License-Identifier: Apache-2.0
#
# Shared by the hyperv CLI tests (test-hyperv-*.sh), sourced after their
# usage comment with the arguments every one of them takes:
#   BERTH KERNEL KERNEL_RELEASE_FILE INITRD
# It skips (77) when qemu, the guest kernel, the initramfs or root is
# missing, and defines b (berth on a private root), hv (run --rm
# --isolation hyperv --network none), qemu_pids and nothing_left.
. "$(dirname "$0")/lib.sh"
BERTH=$1
KERNEL=$2
RELEASE_FILE=$3
INITRD=$4
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
missing=
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86_64;"
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || missing="$missing the guest kernel (meson option hyperv_guest_kernel);"
[ -n "$INITRD" ] && [ -f "$INITRD" ] || missing="$missing the agent initramfs (needs a static berth-agent);"
[ "$(id -u)" -eq 0 ] || missing="$missing root;"
if [ -n "$missing" ]; then
    echo "skipped: missing$missing"
    exit 77
fi
export BERTH_HYPERV_KERNEL="$KERNEL" BERTH_HYPERV_INITRD="$INITRD"
guest_release=$(cat "$RELEASE_FILE")
echo '{}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
hv() { b run --rm --isolation hyperv --network none "$@"; }

# qemu_pids: the qemu processes whose command line names this root (ours only).
qemu_pids() {
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "qemu-system.*$T/" && echo "${p#/proc/}"
    done
}

# nothing_left DESC: no qemu whose command line names this root, no mount
# under it, no container left in the store or under the runroot.
nothing_left() {
    n=$(qemu_pids | wc -w)
    [ "$n" -eq 0 ] && ok "$1: no qemu left" || not_ok "$1: $n qemu processes left"
    if grep -qF " $T/" /proc/self/mounts; then
        not_ok "$1: mounts left"
        grep -F " $T/" /proc/self/mounts | sed 's/^/    /'
    else
        ok "$1: no mount left"
    fi
    left=$(find "$T/run/containers" -mindepth 1 2>/dev/null | head -5)
    [ -z "$left" ] && ok "$1: no container state left" || not_ok "$1: left: $left"
    [ -z "$(b ps -aq)" ] && ok "$1: no container record left" || not_ok "$1: records left"
}

