#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# hyperv guest boot floor (issue 7): time from starting qemu to the guest
# init's first console line, for the built guest kernel's vmlinux (PVH entry)
# and bzImage, under TCG, over N boots each (alternated); median, min and max.
# Then one KVM probe with a short timeout: does KVM boot this guest here?
# The guest is the boot test's static init (tests/integration/hyperv) packed
# by berth-mkinitramfs; qemu as in tests/integration/hyperv/boot.py
# (microvm, -m 128, 1 vCPU, no virtio devices). See docs/benchmarks.md.
#
#   bench/vm-boot-floor.sh [BUILD_DIR] [--boots N] [--kvm-timeout S]
#
# BUILD_DIR (default build) must have built the guest kernel
# (meson -Dhyperv_guest_kernel=enabled) and the test init (meson compile).
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
boots=10 kvm_timeout=15
while [ $# -gt 0 ]; do
    case $1 in
    --boots) boots=$2; shift 2 ;;
    --kvm-timeout) kvm_timeout=$2; shift 2 ;;
    -h|--help) sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
kdir="$build/plugins/isolation/hyperv/guest"
init="$build/tests/integration/hyperv-boot-init"
for f in "$kdir/vmlinux" "$kdir/bzImage" "$kdir/berth-mkinitramfs" "$init"; do
    [ -f "$f" ] || { echo "$0: $f missing: build first (docs/hyperv-guest.md)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "$0: qemu-system-x86_64 missing" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kdir/berth-mkinitramfs" -z -o "$tmp/initrd.img" file /init "$init" 0755 \
    dir /proc 0555 dir /sys 0555 nod /dev/console 0600 c 5 1

echo "guest kernel $(cat "$kdir/kernel.release"), qemu $(qemu-system-x86_64 --version | head -n 1 | sed 's/.*version //')"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$src/tests/integration/hyperv" "$kdir" "$tmp/initrd.img" "$boots" "$kvm_timeout" <<'PY'
import os, statistics, sys
sys.path.insert(0, sys.argv[1])
import boot
kdir, initrd, n, kvm_timeout = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
kernels = {"vmlinux (PVH)": os.path.join(kdir, "vmlinux"),
           "bzImage": os.path.join(kdir, "bzImage")}
times = {k: [] for k in kernels}
for _ in range(n):
    for name, path in kernels.items():
        r = boot.boot("qemu-system-x86_64", path, initrd, timeout=60)
        if r["first_init_line"] is None or r["exit"] != 0:
            sys.exit("%s did not boot: exit %s, stderr %s" % (name, r["exit"], r["stderr"][-500:]))
        times[name].append(r["first_init_line"])
print("TCG, %d boots each: time from qemu start to the init's first line" % n)
print("%-16s %8s %8s %8s" % ("kernel", "median", "min", "max"))
for name, t in times.items():
    print("%-16s %7.3fs %7.3fs %7.3fs" % (name, statistics.median(t), min(t), max(t)))
if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    print("KVM probe: no usable /dev/kvm")
else:
    r = boot.boot("qemu-system-x86_64", kernels["vmlinux (PVH)"], initrd, accel="kvm",
                  timeout=kvm_timeout)
    if r["first_init_line"] is not None and r["exit"] == 0:
        print("KVM probe: boots, first init line after %.3fs" % r["first_init_line"])
    else:
        why = "timed out after %gs" % kvm_timeout if r["timed_out"] else "exit %s" % r["exit"]
        # qemu's CPUID warnings come first; an error line says more.
        err = [l for l in r["stderr"].splitlines() if "warning" not in l]
        print("KVM probe: does not boot (%s, %d console lines%s)"
              % (why, len(r["lines"]), "; qemu: " + err[0] if err else ""))
PY
