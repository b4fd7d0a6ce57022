#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The hyperv driver's accelerator and guest kernel in `berth info`: with
# hyperv.accel auto (the default) the KVM probe runs once, its answer is
# cached under the driver's state dir and shown with its reason; the VMs
# then run on the accelerator info names; a forced accelerator says who
# forced it, and a bad one is refused. The guest kernel is shown with its
# path and release, and whether VMs start from snapshots (how many kept). Skips (77) when qemu, the guest kernel or the
# initramfs is missing, or without root.
# Usage: test-hyperv-info.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD
. "$(dirname "$0")/hyperv-lib.sh"
unset BERTH_HYPERV_ACCEL
cache=$T/root/drivers/isolation/hyperv/kvm-probe.json
# detail KEY: the hyperv driver's KEY from `berth info --format json`.
detail() {
    b info --format json | python3 -c 'import json, sys
print(json.load(sys.stdin)["drivers"]["isolation"]["details"]["hyperv"].get(sys.argv[1], ""))' "$1"
}

expect_exit 0 "berth info" b info
expect_grep "^    hyperv accelerator: \(tcg\|kvm\)$" "$T/out" "info names the accelerator in use"
expect_grep "^    hyperv accelerator_why: auto: " "$T/out" "and why: auto, the probe's answer"
expect_grep "^    hyperv kernel: $KERNEL$" "$T/out" "info names the guest kernel's path"
expect_grep "^    hyperv kernel_release: $guest_release$" "$T/out" "and its release"
expect_grep "^    hyperv kernel_source: berth's guest kernel$" "$T/out" "and that it is berth's own"
expect_grep "^    hyperv initrd: $INITRD$" "$T/out" "and the initramfs"
[ -f "$cache" ] && ok "the probe's answer is cached under the driver's state dir" ||
    not_ok "no $cache"

# The cached answer is what info shows. On these machines KVM can't boot the
# guest (docs/hyperv.md): the answer is TCG with the probe's reason.
kvm=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["kvm"])' "$cache" 2>/dev/null)
reason=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["reason"])' "$cache" 2>/dev/null)
accel=$(detail accelerator)
why=$(detail accelerator_why)
if [ "$kvm" = False ]; then
    [ "$accel" = tcg ] && ok "KVM does not boot the guest here: tcg" || not_ok "accelerator $accel, probe said no"
    [ -n "$reason" ] && ok "the probe says why ($reason)" || not_ok "the probe gave no reason"
    case $why in *"KVM probe: $reason"*) ok "info shows the probe's reason" ;;
    *) not_ok "info's reason '$why' is not the probe's '$reason'" ;; esac
elif [ "$kvm" = True ]; then
    [ "$accel" = kvm ] && ok "KVM boots the guest: kvm" || not_ok "accelerator $accel, probe said KVM boots"
else
    not_ok "the cache has no answer: $(cat "$cache" 2>/dev/null)"
fi
case $why in *"(cached)") ok "the second look reads the cache" ;;
*) not_ok "the second look probed again: '$why'" ;; esac

# A VM runs on the accelerator info named.
expect_exit 0 "the demo image is there" b pull demo
expect_exit 0 "a detached hyperv container" b run -d --isolation hyperv --network none --name acc demo sleep 600
q=$(qemu_pids)
if [ -n "$q" ]; then
    # shellcheck disable=SC2086
    tr '\0' ' ' </proc/$q/cmdline | grep -q -- "-accel $accel " &&
        ok "its qemu runs with -accel $accel" || not_ok "qemu: $(tr '\0' ' ' </proc/$q/cmdline)"
else
    not_ok "no qemu for the running container"
fi
expect_exit 0 "rm -f" b rm -f acc
nothing_left "after the container"

# Snapshots: that VM, the first of its shape, was saved under TCG.
snaps=$(detail snapshots)
if [ "$accel" = tcg ]; then
    case $snaps in "on under TCG for VMs without NIC or disk: 1 kept (at most 8)") ok "info counts the snapshot kept" ;;
    *) not_ok "info says snapshots: '$snaps'" ;; esac
else
    case $snaps in "on under TCG"*) ok "info says when snapshots are used ($snaps)" ;;
    *) not_ok "info says snapshots: '$snaps'" ;; esac
fi
echo '{"drivers": {"hyperv": {"snapshots": false}}}' >"$T/nosnap.json"
expect_exit 0 "info with snapshots off" "$BERTH" --config "$T/nosnap.json" --root "$T/root" --runroot "$T/run" info
expect_grep "^    hyperv snapshots: off (hyperv.snapshots)$" "$T/out" "info says they are off"

# Forced: the setting and who set it, no probe.
expect_exit 0 "info with BERTH_HYPERV_ACCEL=tcg" env BERTH_HYPERV_ACCEL=tcg "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" info
expect_grep "^    hyperv accelerator: tcg$" "$T/out" "the forced accelerator is in use"
expect_grep "^    hyperv accelerator_why: set by BERTH_HYPERV_ACCEL$" "$T/out" "info says who forced it"
echo '{"drivers": {"hyperv": {"accel": "tcg"}}}' >"$T/tcg.json"
expect_exit 0 "info with hyperv.accel tcg" "$BERTH" --config "$T/tcg.json" --root "$T/root" --runroot "$T/run" info
expect_grep "^    hyperv accelerator_why: set by hyperv.accel$" "$T/out" "the config's setting is named"
echo '{"drivers": {"hyperv": {"accel": "warp"}}}' >"$T/bad.json"
expect_exit 125 "a bad hyperv.accel is refused" "$BERTH" --config "$T/bad.json" --root "$T/root" --runroot "$T/run" run --rm --isolation hyperv --network none demo true
expect_grep "want kvm, tcg or auto" "$T/err" "the refusal says what is allowed"
nothing_left "after the refusal"
finish
