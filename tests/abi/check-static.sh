#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# berth-agent is the guest's PID 1: built static, the initramfs needs no
# shared libraries and no dynamic loader. Fails when FILE has a program
# interpreter or DT_NEEDED entries.
# Usage: check-static.sh FILE
set -eu
f=$1
interp=$(LC_ALL=C readelf -l "$f" | grep -c 'Requesting program interpreter' || true)
needed=$(LC_ALL=C readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if [ "$interp" != 0 ] || [ -n "$needed" ]; then
    echo "FAIL: $f is not static (interpreter: $interp, needs:" $needed ")"
    exit 1
fi
echo "ok: $f is static"
