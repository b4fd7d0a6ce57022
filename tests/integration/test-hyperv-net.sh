#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# hyperv containers on CNI networks (TCG): the VM's virtio-net interface
# takes the place of the eth0 CNI made in the sandbox's netns, joined to it
# by a tap and tc redirects there. On a user network the guest has the
# address CNI gave (fib_trie, ip addr) and its default route; it pings and
# wgets a process-isolated container on the same network by address, and
# that container pings it back; the netns holds the tap and the redirect
# filters while it runs. A port published on 127.0.0.1 from busybox httpd
# in a hyperv container on the default bridge network is fetched with curl
# from the host. After rm: no qemu, mount, netns (by inode), veth on our
# bridges, or DNAT rule is left. --network host is refused; a tc that fails
# fails the run with its command named, and leaves nothing either.
# Usage: test-hyperv-net.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD
. "$(dirname "$0")/hyperv-lib.sh"
CNI_DIR=/usr/lib/cni
for p in bridge host-local portmap loopback; do
    if [ ! -x "$CNI_DIR/$p" ]; then
        echo "skipped: $CNI_DIR/$p is missing (Debian: containernetworking-plugins)"
        exit 77
    fi
done
for tool in iptables-save ip tc nsenter curl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skipped: $tool is missing"
        exit 77
    fi
done
cleanup() {
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    for n in $(b network ls -q 2>/dev/null); do b network rm "$n" >/dev/null 2>&1; done
    lib_cleanup
}
trap cleanup EXIT

# Private subnets picked from this process's id, clear of the host's own 10.x routes.
o2=$((($$ % 200) + 20))
while ip -4 route show | grep -q "^10\.$o2\."; do o2=$(((o2 - 19) % 200 + 20)); done
echo "{\"networks\": {\"address_pools\": [{\"base\": \"10.$o2.96.0/20\", \"size\": 24}]}}" >"$T/c.json"
SUB=10.$o2.77

# json EXPR: evaluate a Python expression over the JSON on stdin (bound to d).
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
ip_of() { b inspect "$1" | json "d[0]['NetworkSettings']['Networks']['$2']['IPAddress']"; }
id_of() { b inspect "$1" | json "d[0]['Id']"; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# fetch PORT WANT: curl the page until it has WANT (the guest's httpd takes a moment).
fetch() {
    for _ in $(seq 100); do
        curl -s --max-time 2 "http://127.0.0.1:$1/" >"$T/page" 2>/dev/null && grep -q "$2" "$T/page" && return 0
        sleep 0.2
    done
    return 1
}
# Veths on our networks' bridges (named in the cni driver's conflists).
veths() {
    for f in "$T/root/drivers/network/cni"/*.conflist; do
        [ -e "$f" ] || continue
        br=$(json "[p['bridge'] for p in d['plugins'] if p.get('type') == 'bridge'][0]" <"$f")
        ip -o link show master "$br" 2>/dev/null
    done | grep -c veth
}
# netns_alive INODE: some process or mount still holds the network namespace INODE.
netns_alive() {
    for l in /proc/[0-9]*/ns/net /proc/[0-9]*/task/[0-9]*/ns/net; do
        [ "$(readlink "$l" 2>/dev/null)" = "net:[$1]" ] && return 0
    done
    grep -q "net:\[$1\]" /proc/self/mountinfo
}
# dnat PORT: the nat rules naming host port PORT.
dnat() { iptables-save -t nat | grep -- "--dport $1\b" || true; }

expect_exit 0 "the demo image is there" b pull demo
expect_exit 125 "--network host is refused" b run --rm --isolation hyperv --network host demo true
expect_grep "not possible for a VM" "$T/err" "the refusal says why"
nothing_left "after the refusal"

# --- a user network: a VM and a process container on it ---------------------------
expect_exit 0 "network create" b network create --subnet "$SUB.0/24" --gateway "$SUB.1" hvnet
veths0=$(veths)
# A failing redirect fails the run before qemu starts, and undoes the network setup.
export BERTH_HYPERV_TC=/bin/false
expect_exit 125 "a tc that fails fails the run" b run --rm --isolation hyperv --network hvnet demo true
unset BERTH_HYPERV_TC
expect_grep "tc qdisc add dev eth0 ingress" "$T/err" "the error names the tc command"
[ "$(veths)" -eq "$veths0" ] && ok "no veth left after the failure" || not_ok "$(veths) veths, want $veths0"
nothing_left "after the failed redirect"
expect_exit 0 "a process container serving /etc on hvnet" \
    b run -d --name web --network hvnet demo httpd -f -p 80 -h /etc
webip=$(ip_of web hvnet)
expect_exit 0 "a hyperv container on hvnet" \
    b run -d --isolation hyperv --network hvnet --name vm demo sleep 600
vmip=$(ip_of vm hvnet)
case $vmip in "$SUB".*) ok "the VM got an address on hvnet ($vmip)" ;; *) not_ok "VM address '$vmip'" ;; esac
ns=$T/run/containers/$(id_of vm)/sandbox/netns
ino=$(stat -L -c %i "$ns" 2>/dev/null)
[ -n "$ino" ] && ok "its sandbox has a netns" || not_ok "no netns at $ns"
expect_exit 0 "the netns has the tap" nsenter --net="$ns" ip -o link show tap0
expect_exit 0 "tc filters on eth0" nsenter --net="$ns" tc filter show dev eth0 ingress
expect_grep "Redirect to device tap0" "$T/out" "eth0's ingress goes to the tap"
expect_exit 0 "tc filters on the tap" nsenter --net="$ns" tc filter show dev tap0 ingress
expect_grep "Redirect to device eth0" "$T/out" "the tap's ingress goes out of eth0"

# In the guest (exec runs in the VM): the address, on eth0, and the default route.
expect_exit 0 "fib_trie in the guest" b exec vm cat /proc/net/fib_trie
expect_grep "|-- $vmip\$" "$T/out" "the guest's fib_trie has the address"
expect_exit 0 "ip addr in the guest" b exec vm ip -4 addr show eth0
expect_grep "inet $vmip/24" "$T/out" "eth0 has it with its prefix"
expect_exit 0 "uname -r in the guest" b exec vm uname -r
[ "$(cat "$T/out")" = "$guest_release" ] && ok "exec runs in the guest" ||
    not_ok "exec ran on kernel $(cat "$T/out")"
expect_exit 0 "routes in the guest" b exec vm ip -4 route
expect_grep "^default via $SUB.1 dev eth0" "$T/out" "the default route goes to the gateway"
expect_exit 0 "eth0's MAC in the guest" b exec vm cat /sys/class/net/eth0/address
gmac=$(cat "$T/out")
# (not from /sys: the host's sysfs shows the host's interfaces whatever the netns)
hmac=$(nsenter --net="$ns" ip -o link show eth0 | sed -n 's|.*link/ether \([0-9a-f:]*\).*|\1|p')
[ -n "$gmac" ] && [ "$gmac" = "$hmac" ] && ok "the guest has the host eth0's MAC ($gmac)" ||
    not_ok "guest MAC '$gmac', the netns's eth0 '$hmac'"

expect_exit 0 "the VM pings the process container" b exec vm ping -c 2 -W 5 "$webip"
b exec web cat /etc/hostname >"$T/webname" 2>&1
expect_exit 0 "the VM wgets from the process container" b exec vm wget -q -O - "http://$webip/hostname"
cmp -s "$T/out" "$T/webname" && ok "and gets its page" ||
    not_ok "wget gave '$(cat "$T/out")', want '$(cat "$T/webname")'"
expect_exit 0 "the process container pings the VM" b exec web ping -c 2 -W 5 "$vmip"

expect_exit 0 "rm -f the VM" b rm -f vm
[ -n "$ino" ] && ! netns_alive "$ino" && ok "its netns is gone (and the tap and veth end in it)" ||
    not_ok "netns $ino still held"
[ ! -e "$ns" ] && ok "its netns file is gone" || not_ok "$ns left"
n=$(qemu_pids | wc -w)
[ "$n" -eq 0 ] && ok "no qemu left" || not_ok "$n qemu left"
expect_exit 0 "rm -f the process container" b rm -f web
[ "$(veths)" -eq "$veths0" ] && ok "no veth left on hvnet's bridge" || not_ok "$(veths) veths, want $veths0"
expect_exit 0 "network rm" b network rm hvnet
nothing_left "after the user network"

# --- the default bridge network and a published port ------------------------------
port=$(free_port)
expect_exit 0 "busybox httpd in a VM, published on 127.0.0.1:$port" \
    b run -d --isolation hyperv -p "127.0.0.1:$port:80" --name pub demo \
    sh -c 'mkdir -p /www && echo served-from-the-vm >/www/index.html && exec httpd -f -p 80 -h /www'
fetch "$port" served-from-the-vm && ok "curl on the host gets the VM's page" ||
    not_ok "no page on 127.0.0.1:$port: $(cat "$T/page" 2>/dev/null)"
[ -n "$(dnat "$port")" ] && ok "a DNAT rule for the port while it runs" || not_ok "no DNAT rule seen"
pns=$T/run/containers/$(id_of pub)/sandbox/netns
pino=$(stat -L -c %i "$pns" 2>/dev/null)
expect_exit 0 "rm -f it" b rm -f pub
[ -z "$(dnat "$port")" ] && ok "no DNAT rule left for the port" ||
    not_ok "rules left: $(dnat "$port")"
[ -n "$pino" ] && ! netns_alive "$pino" && ok "its netns is gone" || not_ok "netns $pino still held"
nothing_left "after the published port"

expect_exit 0 "run --rm on the default bridge network" \
    b run --rm --isolation hyperv demo sh -c 'ip -4 addr show eth0; ip -4 route'
expect_grep "inet 10\.$o2\.[0-9]*\.[0-9]*/24" "$T/out" "the guest has an address from the bridge's pool"
expect_grep "^default via" "$T/out" "and a default route"
nothing_left "after run --rm on the bridge"

# Its monitor killed: rm -f reaps the VM's netns too (sandbox_open finds it by its file).
port=$(free_port)
expect_exit 0 "a VM on the bridge with a published port, to be orphaned" \
    b run -d --isolation hyperv -p "127.0.0.1:$port:80" --name orph demo sleep 600
oid=$(id_of orph)
ons=$T/run/containers/$oid/sandbox/netns
oino=$(stat -L -c %i "$ons" 2>/dev/null)
shim=
for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "berth-shim.*--id $oid.*--root $T/root" &&
        shim=${p#/proc/}
done
[ -n "$shim" ] && [ -n "$oino" ] && ok "its shim runs and its netns exists" || not_ok "shim '$shim' netns '$oino'"
[ -n "$shim" ] && kill -KILL "$shim"
expect_exit 0 "rm -f the orphan" b rm -f orph
[ -n "$oino" ] && ! netns_alive "$oino" && ok "the orphan's netns is gone" || not_ok "netns $oino still held"
[ -z "$(dnat "$port")" ] && ok "no DNAT rule left for the orphan's port" || not_ok "rules left: $(dnat "$port")"
nothing_left "after the orphan"
finish
