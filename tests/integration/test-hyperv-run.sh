#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The hyperv isolation driver through the real CLI: `berth run --rm
# --isolation hyperv` boots a qemu microvm per container (TCG). The
# container sees the guest kernel (its release is the build's, not the
# host's), exit codes and stdin go through the agent protocol, the host's
# network is refused (networks: test-hyperv-net.sh), and after each run no qemu of this root
# remains, nothing is mounted under the runroot and the containers' state
# dirs are gone. Also exec, stop, and qemu dying under a running
# container; VMs restored from the snapshot of the first one (unique random
# state and the host's clock in each), a damaged snapshot, snapshots off. Skips (77) when qemu, the guest kernel or the initramfs is
# missing, or without root.
# Usage: test-hyperv-run.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD [ISA_V3]
# ISA_V3: a static program built for x86-64-v3 (hyperv/isa-v3.c).
. "$(dirname "$0")/hyperv-lib.sh"
ISA_V3=${5:-}

# The demo image first (pulled from the images shipped with berth), so that
# the timed runs below are only the VM.
expect_exit 0 "the demo image is there" b pull demo
expect_exit 0 "uname -r in a hyperv container" hv demo uname -r
out=$(cat "$T/out")
[ "$out" = "$guest_release" ] && ok "it prints the guest kernel's release ($out)" ||
    not_ok "uname -r printed '$out', the guest kernel is '$guest_release'"
[ "$out" != "$(uname -r)" ] && ok "which is not the host's" || not_ok "the host's kernel ran it"
nothing_left "after uname"

# Snapshots: that first VM of its shape was saved just after its agent's
# hello, and the next ones of the shape are restored from it instead of
# booting, each given the host's entropy and clock first (without that they
# would all draw the same random numbers and keep the snapshot's time).
snap=$(find "$T/root" -name '*.vmstate' | head -n 1)
[ -n "$snap" ] && [ -s "$snap" ] && ok "the first VM was saved ($(basename "$snap"))" ||
    not_ok "no snapshot after the first VM"
export BERTH_HYPERV_TRACE="$T/trace"
for i in 1 2; do
    rm -f "$T/trace"
    before=$(date +%s)
    expect_exit 0 "restored VM $i" hv demo sh -c \
        'cat /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1; date +%s'
    after=$(date +%s)
    cp "$T/out" "$T/restored$i"
    grep -q " restored$" "$T/trace" 2>/dev/null && ok "VM $i was restored, not booted" ||
        not_ok "VM $i was not restored: $(cut -d' ' -f2 "$T/trace" 2>/dev/null | tr '\n' ' ')"
    guest=$(sed -n 3p "$T/out")
    [ -n "$guest" ] && [ "$guest" -ge $((before - 2)) ] && [ "$guest" -le $((after + 2)) ] &&
        ok "its clock is the host's ($guest in $before..$after)" ||
        not_ok "its clock says '$guest', the host's was $before..$after"
done
unset BERTH_HYPERV_TRACE
[ -s "$T/restored1" ] && [ "$(sed -n 1p "$T/restored1")" != "$(sed -n 1p "$T/restored2")" ] &&
    ok "two VMs restored from one snapshot draw different UUIDs" ||
    not_ok "both drew $(sed -n 1p "$T/restored1")"
[ -s "$T/restored1" ] && [ "$(sed -n 2p "$T/restored1")" != "$(sed -n 2p "$T/restored2")" ] &&
    ok "and different bytes from /dev/urandom" || not_ok "both read $(sed -n 2p "$T/restored1")"
nothing_left "after the restored VMs"

# A damaged snapshot: the VM boots instead, and its save replaces the file.
# Beside it, nine older snapshots of other shapes (stand-ins: only their
# names and times count) and two temporary files: after a save eight
# snapshots are kept, the most recently used, and a temporary file older
# than a save can take goes.
head -c 4096 "$snap" >"$T/damaged" && cat "$T/damaged" >"$snap"
snapdir=$(dirname "$snap")
for i in 0 1 2 3 4 5 6 7 8; do
    echo stand-in >"$snapdir/old$i.vmstate"
    touch -d "2020-01-0$((i + 1)) 00:00" "$snapdir/old$i.vmstate"
done
echo partial >"$snapdir/old.vmstate.1.tmp"
touch -d "2020-01-01 00:00" "$snapdir/old.vmstate.1.tmp"
echo partial >"$snapdir/new.vmstate.2.tmp"
expect_exit 0 "a run over a damaged snapshot" hv demo echo booted
expect_grep "^booted$" "$T/out" "the container ran"
[ "$(stat -c %s "$snap" 2>/dev/null || echo 0)" -gt 4096 ] && ok "a new snapshot replaced the damaged one" ||
    not_ok "the snapshot is $(stat -c %s "$snap" 2>/dev/null || echo missing)"
kept=$(cd "$snapdir" && ls *.vmstate | sort | tr '\n' ' ')
[ "$kept" = "$(basename "$snap") old2.vmstate old3.vmstate old4.vmstate old5.vmstate old6.vmstate old7.vmstate old8.vmstate " ] &&
    ok "the eight most recently used snapshots are kept" || not_ok "kept: $kept"
[ ! -e "$snapdir/old.vmstate.1.tmp" ] && [ -e "$snapdir/new.vmstate.2.tmp" ] &&
    ok "a stale temporary file went, a fresh one stayed" || not_ok "temporary files: $(ls "$snapdir")"
rm -f "$snapdir"/old*.vmstate "$snapdir/new.vmstate.2.tmp"
nothing_left "after the damaged snapshot"

# Off in the config: VMs boot, nothing is saved.
rm -f "$snap"
echo '{"drivers": {"hyperv": {"snapshots": false}}}' >"$T/c.json"
expect_exit 0 "a run with snapshots off" hv demo true
[ -z "$(find "$T/root" -name '*.vmstate')" ] && ok "no snapshot saved" || not_ok "a snapshot was saved"
echo '{"drivers": {"hyperv": {"snapshots": "yes"}}}' >"$T/c.json"
expect_exit 125 "snapshots must be a boolean" hv demo true
expect_grep "snapshots must be true or false" "$T/err" "the error says so"
echo '{}' >"$T/c.json"
nothing_left "after snapshots off"

# The guest's clock is the host's (qemu's RTC, read at boot), not 1970's, and
# its timers keep time on two vCPUs too (the PIT ticks for both under TCG).
before=$(date +%s)
expect_exit 0 "date and a timed sleep in the guest" hv --cpus 2 demo sh -c \
    'date +%s; read a b </proc/uptime; sleep 2; read c d </proc/uptime; echo "$a $c"'
after=$(date +%s)
guest=$(sed -n 1p "$T/out")
[ -n "$guest" ] && [ "$guest" -ge $((before - 2)) ] && [ "$guest" -le $((after + 2)) ] &&
    ok "the guest's date is the host's ($guest in $before..$after)" ||
    not_ok "the guest's date is '$guest', the host's was $before..$after"
slept=$(sed -n 2p "$T/out" | awk '{ printf "%d", ($2 - $1) * 1000 }')
[ -n "$slept" ] && [ "$slept" -ge 1900 ] && [ "$slept" -le 4000 ] &&
    ok "sleep 2 takes 2 s of the guest's uptime on two vCPUs (${slept} ms)" ||
    not_ok "sleep 2 took '${slept}' ms of the guest's uptime"
nothing_left "after date"

# Images built for x86-64-v2 and up (RHEL 9's family) run: the guest CPU
# under TCG has what qemu emulates (v3), not plain x86-64.
if [ -n "$ISA_V3" ] && [ -x "$ISA_V3" ]; then
    expect_exit 0 "a program built for x86-64-v3 in the guest" hv -v "$ISA_V3:/isa-v3:ro" demo /isa-v3
    expect_grep "^x86-64-v3 ok$" "$T/out" "its AVX2, FMA, BMI2, POPCNT and SSE4.2 instructions ran"
    nothing_left "after the x86-64-v3 program"
else
    echo "# no x86-64-v3 test program given: that check is skipped"
fi

expect_exit 3 "exit 3 comes back" hv demo sh -c 'exit 3'
nothing_left "after exit 3"

printf 'through the VM\n' >"$T/in"
expect_exit 0 "cat with stdin" sh -c '"$0" --config "$1/c.json" --root "$1/root" --runroot "$1/run" run --rm -i --isolation hyperv --network none demo cat <"$1/in"' "$BERTH" "$T"
cmp -s "$T/in" "$T/out" && ok "stdin reaches the container and comes back" ||
    not_ok "cat gave '$(cat "$T/out")'"
nothing_left "after cat"

# --network none: the VM has no NIC and the container shares the guest's
# only stack: its loopback, up, and no other device with an address.
expect_exit 0 "--network none" hv demo sh -c 'ls /sys/class/net; cat /sys/class/net/lo/flags; cat /proc/net/route'
expect_grep "^lo$" "$T/out" "the loopback is there"
grep -q "^0x[0-9a-f]*[13579bdf]$" "$T/out" && ok "and up" || not_ok "lo is down: $(cat "$T/out")"
grep -Eq "^(eth|ens|enp|tap|veth)" "$T/out" && not_ok "a network device: $(cat "$T/out")" ||
    ok "no network device besides it"
[ "$(grep -c . "$T/out" | tr -d ' ')" -ge 2 ] && ! grep -q "^eth" "$T/out" &&
    [ "$(sed -n '/^Iface/,$p' "$T/out" | wc -l)" -eq 1 ] && ok "and no routes" ||
    not_ok "routes: $(sed -n '/^Iface/,$p' "$T/out")"
nothing_left "after --network none"

expect_exit 125 "the host's network is refused" b run --rm --isolation hyperv --network host demo true
expect_grep "not possible for a VM" "$T/err" "the refusal says why"
nothing_left "after the refusal"

# A terminal: the process has one in the guest, its size comes through, and its exit code.
expect_exit 4 "run -t" hv -t demo sh -c 'tty; stty size; exit 4'
expect_grep "^/dev/pts/" "$T/out" "the process has a terminal"
expect_grep "^24 80" "$T/out" "of the default size"
nothing_left "after run -t"
# Interactive, on a terminal of our own (script(1) gives the CLI one).
if command -v script >/dev/null 2>&1; then
    printf 'echo hi-from-$((6 * 7))\nexit 6\n' >"$T/tty-in"
    script -qec "$BERTH --config $T/c.json --root $T/root --runroot $T/run run -it --rm --isolation hyperv --network none demo sh" /dev/null <"$T/tty-in" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 6 ] && ok "run -it: the shell's exit code" || not_ok "run -it exited $rc"
    expect_grep "hi-from-42" "$T/out" "run -it: input reaches the shell, its output comes back"
    nothing_left "after run -it"
else
    echo "# script(1) missing: the interactive terminal check is skipped"
fi

# The VM's size follows the container's limits: memory = the limit + the guest's overhead.
mem_kb() { sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' "$T/out"; }
expect_exit 0 "MemTotal without a limit" hv demo grep MemTotal /proc/meminfo
[ "$(mem_kb)" -lt $((300 * 1024)) ] && ok "256 MiB by default ($(mem_kb) kB)" || not_ok "MemTotal $(cat "$T/out")"
expect_exit 0 "-m 512m --cpus 2" hv -m 512m --cpus 2 demo sh -c 'grep MemTotal /proc/meminfo; nproc; cat /sys/fs/cgroup/memory.max'
[ "$(mem_kb)" -gt $((512 * 1024)) ] && ok "the VM has more than the limit ($(mem_kb) kB)" || not_ok "MemTotal $(cat "$T/out")"
expect_grep "^2$" "$T/out" "two vCPUs for --cpus 2"
expect_grep "^536870912$" "$T/out" "the limit is on the container's cgroup in the guest"

# The limit is enforced in the guest: a shell past it is OOM-killed there (137, OOMKilled).
expect_exit 137 "-m 32m and a shell that outgrows it" b run --isolation hyperv --network none -m 32m --name hog demo sh -c 'x=a; while true; do x=$x$x; done'
expect_exit 0 "inspect it" b inspect hog
expect_grep '"OOMKilled": true' "$T/out" "the OOM kill is recorded (OOMKilled)"
expect_exit 0 "rm" b rm hog
nothing_left "after the memory hog"

# exec into a running container: output, exit code, stdin; many execs in a row.
expect_exit 0 "a detached sleep for exec" b run -d --isolation hyperv --network none --name ex demo sleep 600
expect_exit 0 "exec uname -r" b exec ex uname -r
expect_grep "^$guest_release$" "$T/out" "exec runs in the guest"
expect_exit 5 "exec's exit code comes back" b exec ex sh -c 'exit 5'
expect_exit 0 "exec -i cat" sh -c '"$0" --config "$1/c.json" --root "$1/root" --runroot "$1/run" exec -i ex cat <"$1/in"' "$BERTH" "$T"
cmp -s "$T/in" "$T/out" && ok "exec's stdin comes back" || not_ok "exec cat gave '$(cat "$T/out")'"
i=0
while [ $i -lt 10 ] && b exec ex true; do i=$((i + 1)); done
[ $i -eq 10 ] && ok "ten execs in a row" || not_ok "exec $((i + 1)) failed"
expect_exit 0 "rm -f" b rm -f ex
nothing_left "after exec"

# stop: SIGTERM does nothing to a sleep that is PID 1 of its namespace, so SIGKILL after 1 s.
expect_exit 0 "a detached sleep" b run -d --isolation hyperv --network none --name sl demo sleep 600
expect_exit 0 "stop -t 1" b stop -t 1 sl
expect_exit 0 "wait" b wait sl
expect_grep "^137$" "$T/out" "it was killed (137)"
expect_exit 0 "rm" b rm sl
nothing_left "after stop"

# The VM dying under a running container ends it as killed (137), and leaves nothing once removed.
expect_exit 0 "another detached sleep" b run -d --isolation hyperv --network none --name dies demo sleep 600
q=$(qemu_pids)
[ -n "$q" ] && ok "its qemu runs" || not_ok "no qemu for the running container"
# shellcheck disable=SC2086
[ -n "$q" ] && kill -KILL $q
expect_exit 0 "wait" b wait dies
expect_grep "^137$" "$T/out" "qemu's end ends the container as killed (137)"
expect_exit 0 "rm" b rm dies
nothing_left "after qemu died"
finish
