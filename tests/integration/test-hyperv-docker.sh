#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The hyperv isolation driver through the real docker CLI against berthd on
# a private socket: `docker run --rm --isolation hyperv` prints the guest
# kernel's release, stdin goes through, exit codes come back; a detached
# container with docker exec, logs, inspect, stop (SIGKILL after the
# timeout: 137) and rm; and afterwards no qemu of this root, no mount, no
# container state or record. Skips (77) when qemu, the guest kernel, the
# initramfs, root or the docker CLI is missing.
# Usage: test-hyperv-docker.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD BERTHD
. "$(dirname "$0")/hyperv-lib.sh"
BERTHD=$5
if ! command -v docker >/dev/null 2>&1; then
    echo "skipped: missing the docker CLI"
    exit 77
fi
S=$T/d.sock
d() { docker -H "unix://$S" "$@"; }
# hd ARGS: docker run with the VM driver and no network.
hd() { d run --isolation hyperv --network none "$@"; }
# docker run --rm returns once the record is gone, which berth-shim removes
# while it tears the VM down (the two overlap: init_exited in berth-shim.c): give
# the VM up to 10 s to end before counting (a leaked qemu stays for good).
settled_nothing_left() {
    i=0
    while [ -n "$(qemu_pids)" ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    nothing_left "$1"
}
cleanup() {
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    lib_cleanup
}
trap cleanup EXIT

expect_exit 0 "the demo image is there" b pull demo
"$BERTHD" -H "unix://$S" --config "$T/c.json" --root "$T/root" --runroot "$T/run" 2>"$T/dlog" &
dpid=$!
for _ in $(seq 100); do d version >/dev/null 2>&1 && break; sleep 0.05; done
d version >/dev/null 2>&1 && ok "berthd serves" || not_ok "berthd did not start: $(cat "$T/dlog")"

expect_exit 0 "docker run --rm --isolation hyperv uname -r" hd --rm demo uname -r
[ "$(cat "$T/out")" = "$guest_release" ] && ok "it prints the guest kernel's release ($guest_release)" ||
    not_ok "uname -r printed '$(cat "$T/out")', the guest kernel is '$guest_release'"
settled_nothing_left "after docker run --rm"

expect_exit 3 "docker run's exit code comes back" hd --rm demo sh -c 'exit 3'
printf 'through berthd and the VM\n' >"$T/in"
expect_exit 0 "docker run -i cat" sh -c 'docker -H "unix://$0" run --rm -i --isolation hyperv --network none demo cat <"$1"' "$S" "$T/in"
cmp -s "$T/in" "$T/out" && ok "stdin reaches the container and comes back" ||
    not_ok "cat gave '$(cat "$T/out")'"
settled_nothing_left "after docker run -i"
expect_exit 4 "docker run -t" hd --rm -t demo sh -c 'tty; exit 4'
expect_grep "^/dev/pts/" "$T/out" "docker run -t: the process has a terminal in the guest"

expect_exit 0 "docker run -d --isolation hyperv" hd -d --name hv demo sh -c 'echo started-in-vm; exec sleep 600'
expect_exit 0 "docker inspect" d inspect -f '{{.HostConfig.Isolation}} {{.State.Running}}' hv
expect_grep "^hyperv true$" "$T/out" "it runs, isolated by hyperv"
expect_exit 0 "docker exec uname -r" d exec hv uname -r
expect_grep "^$guest_release$" "$T/out" "docker exec runs in the guest"
expect_exit 5 "docker exec's exit code comes back" d exec hv sh -c 'exit 5'
expect_exit 0 "docker exec -i cat" sh -c 'docker -H "unix://$0" exec -i hv cat <"$1"' "$S" "$T/in"
cmp -s "$T/in" "$T/out" && ok "docker exec's stdin comes back" || not_ok "exec cat gave '$(cat "$T/out")'"
expect_exit 0 "docker exec -t" d exec -t hv sh -c 'tty; exit 0'
expect_grep "^/dev/pts/" "$T/out" "docker exec -t has a terminal in the guest"
expect_exit 0 "docker logs" d logs hv
expect_grep "^started-in-vm$" "$T/out" "docker logs has the container's output"
expect_exit 0 "docker stop -t 1" d stop -t 1 hv
expect_exit 0 "docker inspect after stop" d inspect -f '{{.State.Status}} {{.State.ExitCode}}' hv
expect_grep "^exited 137$" "$T/out" "stopped: killed after the timeout (137)"
expect_exit 0 "docker logs after stop" d logs hv
expect_grep "^started-in-vm$" "$T/out" "the logs outlive the VM"
expect_exit 0 "docker rm" d rm hv
nothing_left "after docker rm"

# docker rm -f of a running one ends its VM too.
expect_exit 0 "another docker run -d" hd -d --name hv2 demo sleep 600
expect_exit 0 "docker rm -f" d rm -f hv2
nothing_left "after docker rm -f"
finish
