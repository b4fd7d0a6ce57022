#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Faults under the hyperv isolation driver, through the real CLI (TCG):
# qemu killed with SIGKILL, a real guest kernel panic, and an agent that
# never answers (qemu frozen with SIGSTOP, so the guest and its agent stop).
# Each ends the container as killed (137) with an error naming the cause in
# its state (State.Error) and as one "berth: ..." line in its log or on the
# stderr of `berth run`; afterwards no qemu, shim, mount, state or open fd
# of the container remains.
# The driver's config sets what the faults need, as a user would:
# "agent_timeout_ms" short, and "kernel_args" with sysctl.vm.panic_on_oom=2
# so that an out-of-memory guest panics (2: a cgroup's OOM too, so a
# container with a small limit panics its guest within seconds; filling the
# whole guest without a limit takes minutes under TCG). Skips (77) when
# qemu, the guest kernel or the initramfs is missing, or without root.
# Usage: test-hyperv-faults.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD
. "$(dirname "$0")/hyperv-lib.sh"

TIMEOUT_MS=3000
cat >"$T/c.json" <<EOF
{"drivers": {"hyperv": {"agent_timeout_ms": $TIMEOUT_MS, "kernel_args": "sysctl.vm.panic_on_oom=2"}}}
EOF

# shim_pids: the berth-shim processes of this root.
shim_pids() {
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "berth-shim.*$T/" && echo "${p#/proc/}"
    done
}

# all_gone DESC: nothing_left, and no shim of this root, no process holding
# a file under it open (the VM's console log, sockets, the share).
all_gone() {
    nothing_left "$1"
    n=$(shim_pids | wc -w)
    [ "$n" -eq 0 ] && ok "$1: no shim left" || not_ok "$1: $n shims left"
    fds=$(for f in /proc/[0-9]*/fd/*; do
        l=$(readlink "$f" 2>/dev/null) && case $l in "$T"/*) echo "$f -> $l" ;; esac
    done)
    [ -z "$fds" ] && ok "$1: no fd open under the root" || {
        not_ok "$1: fds left"
        echo "$fds" | head -5 | sed 's/^/    /'
    }
}

# state_error NAME: the container's State.Error, from inspect's JSON, into $T/out.
state_error() {
    b inspect "$1" >"$T/inspect" 2>"$T/err" &&
        grep -o '"Error": *"[^"]*"' "$T/inspect" | head -1 >"$T/out"
}

# wait_running: the qemu of this root's one running container, once it runs (up to 60 s).
wait_running() {
    i=0
    while [ $i -lt 300 ]; do
        q=$(qemu_pids)
        [ -n "$q" ] && [ -n "$(b ps -q)" ] && { echo "$q"; return 0; }
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

expect_exit 0 "the demo image is there" b pull demo

# (a) qemu killed under a running container.
expect_exit 0 "a detached sleep" b run -d --isolation hyperv --network none --name k9 demo sleep 600
q=$(qemu_pids)
[ -n "$q" ] && ok "its qemu runs" || not_ok "no qemu for the running container"
# An exec running in it learns the same.
b exec k9 sh -c 'echo started; sleep 600' >"$T/exec-out" 2>"$T/exec-err" &
ex=$!
i=0
while [ $i -lt 100 ] && ! grep -q started "$T/exec-out"; do sleep 0.2; i=$((i + 1)); done
# shellcheck disable=SC2086
[ -n "$q" ] && kill -KILL $q
wait $ex
rc=$?
[ $rc -eq 137 ] && ok "the exec ends as killed (137)" || not_ok "the exec exited $rc"
expect_grep "^berth: the VM of container .* ended: qemu was killed by signal 9" "$T/exec-err" \
    "the exec's stderr has the error line"
expect_exit 0 "wait" b wait k9
expect_grep "^137$" "$T/out" "qemu's death ends the container as killed (137)"
expect_exit 0 "inspect" state_error k9
expect_grep "the VM of container .* ended: qemu was killed by signal 9" "$T/out" \
    "State.Error says qemu was killed"
expect_exit 0 "logs" b logs k9
expect_grep "^berth: the VM of container .* ended: qemu was killed by signal 9" "$T/err" \
    "the container's log has the error line (stderr)"
expect_exit 0 "rm" b rm k9
all_gone "after qemu was killed"

# The same through an attached `run --rm`: the line on its stderr.
hv demo sleep 600 >"$T/run-out" 2>"$T/run-err" &
run=$!
q=$(wait_running) && ok "run --rm: the container runs" || not_ok "run --rm: no running container"
# shellcheck disable=SC2086
[ -n "$q" ] && kill -KILL $q
wait $run
rc=$?
[ $rc -eq 137 ] && ok "run --rm exits 137" || not_ok "run --rm exited $rc"
expect_grep "^berth: the VM of container .* ended: qemu was killed" "$T/run-err" \
    "run --rm prints the error on stderr"
all_gone "after run --rm lost its qemu"

# (b) A real guest kernel panic: the container runs out of memory (tail
# keeps a line without end in memory), and panic_on_oom (kernel_args)
# makes the guest kernel panic instead of killing it.
start=$(date +%s)
expect_exit 137 "a container that runs out of memory" \
    hv -m 32m demo sh -c 'head -c 100m /dev/zero | tail'
expect_grep "^berth: the VM of container .* ended: guest kernel panic (Out of memory: compulsory panic_on_oom is enabled)" \
    "$T/err" "the error says the guest kernel panicked, and why"
expect_grep "last console lines: .*Kernel panic" "$T/err" "and quotes the console's last lines"
[ "$(wc -l <"$T/err")" -le 3 ] && ok "the error is short" || not_ok "stderr: $(wc -l <"$T/err") lines"
echo "# panic run: $(($(date +%s) - start)) s"
all_gone "after the guest panicked"

# (c) An agent that never answers: qemu stopped (SIGSTOP) freezes the guest.
expect_exit 0 "a detached sleep" b run -d --isolation hyperv --network none --name hang demo sleep 600
q=$(qemu_pids)
[ -n "$q" ] && ok "its qemu runs" || not_ok "no qemu for the running container"
# shellcheck disable=SC2086
[ -n "$q" ] && kill -STOP $q
start=$(date +%s)
# Bounded: without a heartbeat this would wait for ever.
expect_exit 0 "wait" timeout 60 "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" wait hang
took=$(($(date +%s) - start))
expect_grep "^137$" "$T/out" "the silent agent ends the container as killed (137)"
# The ping interval (2 s) + the timeout, and some slack for a loaded host.
[ $took -le $((TIMEOUT_MS / 1000 + 2 + 8)) ] && ok "within the agent timeout ($took s)" ||
    not_ok "it took $took s with a ${TIMEOUT_MS} ms timeout"
expect_exit 0 "inspect" state_error hang
expect_grep "the VM of container .* ended: the agent did not answer a ping within $TIMEOUT_MS ms" \
    "$T/out" "State.Error names the agent not answering"
expect_exit 0 "logs" b logs hang
expect_grep "^berth: .*the agent did not answer" "$T/err" "the container's log has the error line"
# shellcheck disable=SC2086
if [ -n "$q" ] && kill -0 $q 2>/dev/null; then
    not_ok "qemu $q still exists"
    kill -KILL $q # not left stopped on the host
else
    ok "the stopped qemu was killed"
fi
expect_exit 0 "rm" b rm hang
all_gone "after the agent went silent"

# A healthy VM answers its pings: a container outliving several intervals and timeouts is fine.
expect_exit 0 "a container running 3 timeouts long" hv demo sleep $((3 * TIMEOUT_MS / 1000 + 2))
[ ! -s "$T/err" ] && ok "with no error" || not_ok "stderr: $(cat "$T/err")"
all_gone "after a healthy run"

# A bad timeout is refused, not replaced.
echo '{"drivers": {"hyperv": {"agent_timeout_ms": "soon"}}}' >"$T/c.json"
b run --rm --isolation hyperv --network none demo true >"$T/out" 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && ok "a bad agent_timeout_ms fails the run ($rc)" || not_ok "it ran"
expect_grep "agent_timeout_ms" "$T/err" "and says which setting"
finish
