#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# A hyperv container's create: its seccomp filter is compiled on the host
# and sent with create (docs/agent-protocol.md, "seccomp"), and it is the
# filter the profile says. The default profile denies syslog(2), which the
# guest kernel otherwise lets an unprivileged root read: `dmesg` fails with
# EPERM in a hyperv container, as in a process-isolated one, and works with
# seccomp=unconfined (so the failure is the filter's); exec'd processes get
# the same filter; the process has exactly one filter. BERTH_HYPERV_TRACE
# gets the guest's steps of create and start, the filter among them.
# Skips (77) when qemu, the guest kernel or the initramfs is missing, or
# without root.
# Usage: test-hyperv-create.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD
. "$(dirname "$0")/hyperv-lib.sh"

expect_exit 0 "the demo image is there" b pull demo
[ -n "${BERTH_SECCOMP_PROFILE:-}" ] && [ -f "$BERTH_SECCOMP_PROFILE" ] ||
    not_ok "BERTH_SECCOMP_PROFILE names no profile (the tests' env sets it)"

expect_exit 1 "dmesg fails in a process container (default profile)" \
    b run --rm --network none demo dmesg
expect_grep "Operation not permitted" "$T/err" "with EPERM"

trace="$T/trace"
expect_exit 1 "dmesg fails in a hyperv container (default profile)" \
    env BERTH_HYPERV_TRACE="$trace" "$BERTH" --config "$T/c.json" --root "$T/root" \
    --runroot "$T/run" run --rm --isolation hyperv --network none demo dmesg
expect_grep "klogctl: Operation not permitted" "$T/err" "with EPERM, as in a process container"
for step in hello agent-create:decoded agent-create:seccomp-from-host agent-create:cloned \
    agent-create:child-ready agent-create:reply created agent-start:exec started; do
    grep -q " $step\$" "$trace" && ok "the trace has $step" || not_ok "no $step in the trace"
done
# The guest's steps lie between hello and created on the host's clock.
awk '$2 == "hello" { h = $1 } $2 == "created" { c = $1 }
     $2 ~ /^agent-create:/ { n++; if ($1 < lo || lo == "") lo = $1; if ($1 > hi) hi = $1 }
     END { exit !(n > 0 && lo >= h && hi <= c) }' "$trace" &&
    ok "the guest's create steps lie between hello and created" ||
    not_ok "create steps outside hello..created: $(tr '\n' ' ' <"$trace")"
nothing_left "after dmesg"

rm -f "$trace"
expect_exit 0 "dmesg works in a hyperv container with seccomp=unconfined" \
    env BERTH_HYPERV_TRACE="$trace" "$BERTH" --config "$T/c.json" --root "$T/root" \
    --runroot "$T/run" run --rm --isolation hyperv --network none \
    --security-opt seccomp=unconfined demo dmesg
[ -s "$T/out" ] && ok "it printed the guest's kernel log" || not_ok "dmesg printed nothing"
grep -q "seccomp-from-host" "$trace" && not_ok "a filter was sent for an unconfined container" ||
    ok "no filter was sent"
nothing_left "after unconfined"

expect_exit 0 "one filter, in seccomp filter mode" hv demo grep '^Seccomp' /proc/self/status
expect_grep "^Seccomp:[[:space:]]*2$" "$T/out" "seccomp mode 2 (filter)"
expect_grep "^Seccomp_filters:[[:space:]]*1$" "$T/out" "exactly one filter"

expect_exit 0 "a running hyperv container" b run -d --name sc --isolation hyperv \
    --network none demo sleep 600
expect_exit 1 "dmesg fails in exec too" b exec sc dmesg
expect_grep "Operation not permitted" "$T/err" "with EPERM"
expect_exit 0 "rm -f" b rm -f sc
nothing_left "after exec"
finish
