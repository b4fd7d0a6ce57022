#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The hyperv isolation driver's pause/unpause, stats and reaping through
# the real CLI (TCG). Pause stops the VM's vCPUs (QMP): a container
# printing the time every second makes no progress while paused and goes
# on after unpause; ps and inspect say Paused; exec is refused, a signal is
# held until the unpause, stop and rm -f of a paused container work.
# stats reads the container's cgroup in the guest: memory in use above 0
# and below the VM's size, at least one pid. A container whose berth-shim
# was SIGKILLed is reaped by rm -f: its qemu, rootfs mount and state go.
# After each, nothing is left (no qemu of this root, no mount, no state).
# Skips (77) when qemu, the guest kernel or the initramfs is missing, or
# without root.
# Usage: test-hyperv-lifecycle.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD
. "$(dirname "$0")/hyperv-lib.sh"

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; its status.
wait_for() {
    n=$(($1 * 5))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.2
        n=$((n - 1))
    done
    return 1
}
# ticks: how many times the container pz has printed the time so far.
ticks() { b logs pz 2>/dev/null | grep -c '^[0-9][0-9]*$'; }
ticks_above() { [ "$(ticks)" -gt "$1" ]; }
# json_num KEY FILE: the first integer value of "KEY" in a JSON file.
json_num() { grep -o "\"$1\": *-\{0,1\}[0-9]*" "$2" | head -1 | sed 's/.*: *//'; }

expect_exit 0 "the demo image is there" b pull demo

# A container that prints the time every second, says when USR1 reaches it, exits 42 on TERM.
expect_exit 0 "run -d a clock" b run -d --isolation hyperv --network none --name pz demo \
    sh -c 'trap "echo got-usr1" USR1; trap "echo got-term; exit 42" TERM; while :; do date +%s; sleep 1; done'
wait_for 60 ticks_above 1 && ok "it ticks" || not_ok "no output from the clock: $(b logs pz 2>&1 | head -5)"

# stats of the running container: the guest's cgroup, within the VM's size.
expect_exit 0 "stats --no-stream" b stats --no-stream pz
expect_grep "pz" "$T/out" "stats names the container"
expect_exit 0 "stats --no-stream --format json" b stats --no-stream --format json pz
cp "$T/out" "$T/stats.json"
usage=$(json_num usage "$T/stats.json")
limit=$(json_num limit "$T/stats.json")
pids=$(json_num current "$T/stats.json")
vcpus=$(json_num vcpus "$T/stats.json")
[ "${usage:-0}" -gt 0 ] && ok "memory in use: $usage bytes" || not_ok "memory usage '$usage'"
[ "${usage:-0}" -lt $((256 * 1024 * 1024)) ] && ok "less than the VM's 256 MiB" ||
    not_ok "memory usage $usage is not below the VM's size"
[ "${limit:-0}" -eq $((256 * 1024 * 1024)) ] && ok "no limit: the VM's memory is the limit" ||
    not_ok "memory limit '$limit', want the VM's 256 MiB"
[ "${pids:-0}" -ge 1 ] && ok "pids: $pids" || not_ok "pids '$pids'"
[ "${vcpus:-0}" -eq 1 ] && ok "the VM's one vCPU is reported" || not_ok "vcpus '$vcpus'"

expect_exit 0 "pause" b pause pz
expect_exit 0 "ps" b ps
expect_grep "(Paused)" "$T/out" "ps says Paused"
expect_exit 0 "inspect" b inspect pz
expect_grep '"Status": "paused"' "$T/out" "inspect says paused"
expect_grep '"Paused": true' "$T/out" "inspect's Paused is true"
# What the guest wrote before its vCPUs stopped may still be on its way: count after a moment.
sleep 1
before=$(ticks)
sleep 4
after=$(ticks)
[ "$after" -eq "$before" ] && ok "no progress while paused ($before ticks, 4 s later $after)" ||
    not_ok "the clock went on while paused: $before ticks, 4 s later $after"
expect_exit 1 "exec into the paused container is refused" b exec pz true
expect_grep "paused" "$T/err" "the refusal says it is paused"
expect_exit 0 "stats while paused" b stats --no-stream --format json pz
[ "$(json_num usage "$T/out")" -gt 0 ] 2>/dev/null && ok "stats while paused: what was read at the pause" ||
    not_ok "stats while paused: $(cat "$T/out")"
# A signal to a paused container waits for the unpause, as with a frozen cgroup.
expect_exit 0 "kill -s USR1 the paused container" b kill -s USR1 pz
sleep 2
b logs pz >"$T/logs" 2>&1
grep -q got-usr1 "$T/logs" && not_ok "USR1 reached the paused container" ||
    ok "USR1 is held while paused"

expect_exit 0 "unpause" b unpause pz
wait_for 20 ticks_above "$after" && ok "the clock goes on after unpause" ||
    not_ok "no progress after unpause ($(ticks) ticks, $after before)"
wait_for 20 sh -c '"$0" --config "$1/c.json" --root "$1/root" --runroot "$1/run" logs pz 2>&1 | grep -q got-usr1' "$BERTH" "$T" &&
    ok "the held USR1 arrives after unpause" || not_ok "USR1 never arrived"
expect_exit 0 "ps" b ps
grep -q "(Paused)" "$T/out" && not_ok "ps still says Paused" || ok "ps no longer says Paused"
expect_exit 0 "pause and unpause again" sh -c '"$0" --config "$1/c.json" --root "$1/root" --runroot "$1/run" pause pz && "$0" --config "$1/c.json" --root "$1/root" --runroot "$1/run" unpause pz' "$BERTH" "$T"

# stop of a paused container: the stop signal, then the unpause (Docker's way), so its handler runs.
expect_exit 0 "pause for stop" b pause pz
start=$(date +%s)
expect_exit 0 "stop -t 30 the paused container" b stop -t 30 pz
took=$(($(date +%s) - start))
[ "$took" -lt 20 ] && ok "stop did not wait for the timeout (${took} s)" || not_ok "stop took ${took} s"
expect_exit 0 "wait" b wait pz
expect_grep "^42$" "$T/out" "its TERM handler ran (42, not SIGKILL's 137)"
b logs pz >"$T/logs" 2>&1
expect_grep "^got-term$" "$T/logs" "the handler's last words are in the logs"
expect_exit 0 "ps -a" b ps -a
expect_grep "Exited (42) \(Less than a\|[0-9]*\) second" "$T/out" "ps: exited seconds ago (the host's clock, not the guest's)"
expect_exit 0 "rm" b rm pz
nothing_left "after stop of a paused container"

# rm -f of a paused container.
expect_exit 0 "run -d another" b run -d --isolation hyperv --network none --name pf demo sleep 600
expect_exit 0 "pause it" b pause pf
expect_exit 0 "rm -f the paused container" b rm -f pf
nothing_left "after rm -f of a paused container"

# The monitor killed: its qemu dies with it (PR_SET_PDEATHSIG), and rm -f reaps the rest.
mkdir -p "$T/orph-vol"
expect_exit 0 "run -d an orphan-to-be, with a volume" b run -d --isolation hyperv --network none --name orph -v "$T/orph-vol:/v" demo sleep 600
id=$(b inspect orph | sed -n 's/^ *"Id": "\([0-9a-f]*\)".*/\1/p' | head -1)
shim=
for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "berth-shim.*--id $id.*--root $T/root" &&
        shim=${p#/proc/}
done
[ -n "$id" ] && [ -n "$shim" ] && ok "its berth-shim runs (pid $shim)" || not_ok "no berth-shim found for '$id'"
[ -n "$(qemu_pids)" ] && ok "its qemu runs" || not_ok "no qemu for the container"
grep -qF " $T/run/containers/$id/sandbox/rootfs " /proc/self/mounts && ok "its rootfs is mounted" ||
    not_ok "no rootfs mount for the container"
grep -qF " $T/run/containers/$id/sandbox/binds/" /proc/self/mounts && ok "its volume is bound for the VM" ||
    not_ok "no bind under the sandbox's binds dir"
[ -n "$shim" ] && kill -KILL "$shim"
expect_exit 0 "rm -f the orphaned container" b rm -f orph
nothing_left "after the orphan's rm -f"
finish
