#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The hyperv driver's fallback kernel: with kernel "distro" (what it uses
# when berth's own guest kernel is not installed) a container boots on the
# distribution's newest kernel (linux-image-amd64), whose virtio, 9p and
# overlay drivers are modules: the driver appends them to the agent's
# initramfs (cached in its state dir), boots with ACPI, and the agent loads
# them. The container sees that kernel's release; its root (9p), a bind
# mount (9p) and its ports (virtio-console) work; the initramfs is made
# once. Skips (77) without a distribution kernel and its modules.
# Usage: test-hyperv-distro.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD
. "$(dirname "$0")/hyperv-lib.sh"

release=
for k in /boot/vmlinuz-*; do
    r=${k#/boot/vmlinuz-}
    [ -f "/lib/modules/$r/modules.dep" ] || continue
    if [ -z "$release" ] || [ "$(printf '%s\n%s\n' "$release" "$r" | sort -V | tail -1)" = "$r" ]; then
        release=$r
    fi
done
if [ -z "$release" ]; then
    echo "skipped: no distribution kernel with its modules in /boot and /lib/modules (apt-get install linux-image-amd64)"
    exit 77
fi
export BERTH_HYPERV_KERNEL=distro

expect_exit 0 "berth info" b info
expect_grep "^    hyperv kernel: /boot/vmlinuz-$release\$" "$T/out" "info names the distribution's kernel"
expect_grep "^    hyperv kernel_source: the distribution's" "$T/out" "and says it is the fallback"
expect_grep "^    hyperv kernel_release: $release\$" "$T/out" "and its release"
expect_grep "^    hyperv accelerator: tcg\$" "$T/out" "TCG: the KVM probe needs berth's kernel"
expect_exit 0 "the demo image is there" b pull demo
mkdir -p "$T/vol"
echo through-9p >"$T/vol/in"
expect_exit 0 "a container on the distribution kernel" hv -v "$T/vol:/data" demo sh -c 'uname -r; cat /data/in'
expect_grep "^$release\$" "$T/out" "it runs on $release, the newest distribution kernel"
expect_grep "^through-9p$" "$T/out" "a bind mount reaches it"
initrd="$T/root/drivers/isolation/hyperv/initrd-$release.cpio"
[ -s "$initrd" ] && ok "its initramfs is cached in the driver's state dir" || not_ok "no $initrd"
before=$(stat -c %Y.%i "$initrd" 2>/dev/null)
nothing_left "after the first run"

expect_exit 7 "the exit code comes back" hv demo sh -c 'exit 7'
[ "$(stat -c %Y.%i "$initrd" 2>/dev/null)" = "$before" ] && ok "the cached initramfs is reused" ||
    not_ok "the initramfs was made again"
nothing_left "after the second run"
finish
