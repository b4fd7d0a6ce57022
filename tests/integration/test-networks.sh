#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Networks with real containers on CNI bridge networks, through the berth
# CLI on a private root: network create/ls/inspect/rm/prune and their
# refusals; two containers on a user network reaching each other by
# address and by name; an --internal network that cannot reach the host's
# address on another interface (a veth into a netns this test makes);
# --network none with only lo; busybox httpd published on 127.0.0.1 and
# fetched with curl, the port and its DNAT rules gone after rm; a port
# conflict refused cleanly; ephemeral ports from -p PORT and -P shown by
# `berth port`; /etc/hostname, /etc/hosts and /etc/resolv.conf with
# --hostname, --add-host, --dns; peers named in /etc/hosts as they come and
# go; connect and disconnect of a running container; and run/rm cycles on
# the bridge network leaking no veth,
# netns file, IPAM lease or iptables rule.
# Usage: test-networks.sh BERTH   (as root; BERTH_NET_CYCLES sets the cycles, default 200)
. "$(dirname "$0")/lib.sh"
BERTH=$1
CYCLES=${BERTH_NET_CYCLES:-200}
CNI_DIR=/usr/lib/cni
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: networks need root"
    exit 77
fi
for p in bridge host-local portmap loopback; do
    if [ ! -x "$CNI_DIR/$p" ]; then
        echo "SKIP: $CNI_DIR/$p is missing (Debian: containernetworking-plugins)"
        exit 77
    fi
done
for tool in iptables iptables-save ip curl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is missing"
        exit 77
    fi
done
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
[ -n "${LSAN_OPTIONS:-}" ] && export LSAN_OPTIONS="$LSAN_OPTIONS:print_suppressions=0"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
# A veth pair and a netns of our own, named after this process so parallel runs don't meet.
VETH=bnt$$
NS=berth-nettest-$$
cleanup() {
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    for n in $(b network ls -q 2>/dev/null); do b network rm "$n" >/dev/null 2>&1; done
    ip link del "$VETH" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    lib_cleanup
}
trap cleanup EXIT

# Private subnets picked from this process's id, so two runs on one host don't collide.
o2=$((($$ % 200) + 20))
# ...and clear of the host's own 10.x networks (podman's 10.88.0.0/16, for one).
while ip -4 route show | grep -q "^10\.$o2\."; do o2=$(((o2 - 19) % 200 + 20)); done
# The root's own address pool (the default bridge takes its first /24): the
# host's 172.17-31 and 192.168 pools may be used up by other networks.
echo "{\"networks\": {\"address_pools\": [{\"base\": \"10.$o2.96.0/20\", \"size\": 24}]}}" >"$T/c.json"
SUB=10.$o2.77
OTHER=10.$o2.78
HOSTADDR=10.$o2.79.1

expect_one_line() {
    expect_lines 1 "$T/err" "$1: one line on stderr"
    expect_grep "^berth: " "$T/err" "$1: says who speaks"
}
# json EXPR: evaluate a Python expression over the JSON on stdin (bound to d).
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
# ip_of CONTAINER NETWORK: the container's address on that network.
ip_of() { b inspect "$1" | json "d[0]['NetworkSettings']['Networks']['$2']['IPAddress']"; }
# A TCP port nobody listens on now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# port_free PORT: nothing holds 127.0.0.1:PORT (we can bind it).
port_free() {
    python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
# fetch PORT WANT: curl the page until it has WANT (a server takes a moment to listen).
fetch() {
    for _ in $(seq 50); do
        curl -s --max-time 2 "http://127.0.0.1:$1/" >"$T/page" 2>/dev/null && grep -q "$2" "$T/page" && return 0
        sleep 0.1
    done
    return 1
}
# The host state networking leaves: veths, netns files, IPAM leases, iptables rules.
# Veths are counted on our networks' bridges (named in the cni driver's
# conflists), where a leaked one stays plugged in: every veth on the host
# would count other processes' containers too.
our_bridges() {
    for f in "$T/root/drivers/network/cni"/*.conflist; do
        [ -e "$f" ] && json "[p['bridge'] for p in d['plugins'] if p.get('type') == 'bridge'][0]" <"$f"
    done
}
veth_names() {
    for br in $(our_bridges); do ip -o link show master "$br" 2>/dev/null; done |
        sed -n 's/^[0-9]*: \(veth[^:@]*\).*/\1/p' | sort
}
veths() { veth_names | wc -l; }
# Pinned network namespaces: berth pins them under its runroot (SandboxKey);
# /run/netns is shared with every other process on the host, so not counted.
netns_list() { find "$T/run" -name netns 2>/dev/null; }
netns_files() { netns_list | wc -l; }
# host-local keeps one file per address handed out, named after it.
leases() { find "$T/root/drivers/network" -type f -name '[0-9]*.[0-9]*.[0-9]*.[0-9]*' 2>/dev/null | wc -l; }
# Our iptables rules: those naming an address in one of our root's subnets,
# and every rule of or jumping to a chain such a rule names (CNI-*): other
# processes on the host change their own rules meanwhile.
cat >"$T/rules.py" <<'PY'
import ipaddress, re, subprocess, sys
nets = [ipaddress.ip_network(s) for s in sys.argv[1:]]
out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
lines = [l for l in out.splitlines() if l and not l.startswith("#")]
def in_ours(line):
    for m in re.finditer(r"\b\d+\.\d+\.\d+\.\d+(/\d+)?\b", line):
        try:
            a = ipaddress.ip_network(m.group(0), strict=False)
        except ValueError:
            continue
        if any(a.version == n.version and a.subnet_of(n) for n in nets):
            return True
    return False
chains = set()
for l in lines:
    if in_ours(l):
        chains.update(re.findall(r"\bCNI-[A-Za-z0-9_-]+", l))
chain_re = re.compile(r"\b(" + "|".join(map(re.escape, sorted(chains))) + r")\b") if chains else None
for l in sorted(lines):
    if in_ours(l) or (chain_re and chain_re.search(l)):
        print(l)
PY
# masq_rules ID: the nat rules tagged with network ID's masquerade comment.
masq_rules() { iptables-save -t nat | grep -F -- "--comment \"berth:$1\"" || true; }
subnets() {
    for n in $(b network ls -q --no-trunc 2>/dev/null); do
        b network inspect "$n" | json "' '.join(c['Subnet'] for c in d[0]['IPAM']['Config'] or [])"
    done
}
# shellcheck disable=SC2046
rules() { python3 "$T/rules.py" $(subnets); }

# --- help and usage ------------------------------------------------------------
for cmd in "network" "network ls" "network create" "network rm" "network inspect" \
    "network connect" "network disconnect" "network prune" "port"; do
    # shellcheck disable=SC2086
    expect_exit 0 "berth $cmd --help" b $cmd --help
    expect_grep "Usage: berth" "$T/out" "$cmd: usage on stdout"
done
expect_exit 2 "network without a command" b network
expect_exit 2 "network frob" b network frob
expect_exit 2 "network create without a name" b network create
expect_exit 2 "network rm without a name" b network rm
expect_exit 2 "network connect with one operand" b network connect onlyone
expect_exit 2 "--gateway without --subnet" b network create --gateway 10.1.1.1 nogw
expect_grep "corresponding subnet" "$T/err" "says a gateway needs its subnet"
expect_exit 125 "run -p with a bad port" b run --rm -p 99999:80 demo true
expect_one_line "run -p 99999:80"
expect_exit 125 "run --ip without a user network" b run --rm --ip 10.1.1.5 demo true
expect_one_line "run --ip alone"

b plugins >"$T/plugins" 2>&1
if ! grep -q "^network  *cni " "$T/plugins"; then
    not_ok "the cni network driver is not loaded: $(grep '^network' "$T/plugins" | tr '\n' ' ')"
    finish
fi
ok "the cni network driver is loaded"
# The demo image, and the default bridge network made on first use.
expect_exit 0 "a first container on the bridge network" b run --rm --network bridge demo true

# --- create, ls, inspect ---------------------------------------------------------
expect_exit 0 "network create with a subnet, gateway and label" \
    b network create --subnet "$SUB.0/24" --gateway "$SUB.1" --label team=blue neta
neta=$(cat "$T/out")
[ ${#neta} -eq 64 ] && ok "create prints the full id" || not_ok "create printed '$neta'"
expect_exit 0 "network ls" b network ls
head -1 "$T/out" | grep -q "^NETWORK ID  *NAME  *DRIVER  *SCOPE$" && ok "ls: docker's columns" ||
    not_ok "ls header: $(head -1 "$T/out")"
expect_grep "^$(echo "$neta" | cut -c1-12)  *neta  *cni  *local$" "$T/out" "ls: the network, 12-digit id, cni, local"
expect_grep "  bridge  " "$T/out" "ls: the bridge network"
expect_grep "  host  " "$T/out" "ls: host"
expect_grep "  none  " "$T/out" "ls: none"
expect_exit 0 "network ls -q --no-trunc" b network ls -q --no-trunc
expect_grep "^$neta$" "$T/out" "ls -q --no-trunc: the full id"
expect_exit 0 "network ls --filter name=neta" b network ls -q --filter name=neta
expect_lines 1 "$T/out" "name filter: one network"
expect_exit 0 "network ls --filter label=team=blue" b network ls -q --filter label=team=blue
expect_lines 1 "$T/out" "label filter: one network"
expect_exit 1 "an unknown filter is refused" b network ls --filter colour=red
expect_one_line "ls --filter colour=red"
expect_exit 0 "network inspect" b network inspect neta
expect_grep "\"Subnet\": \"$SUB.0/24\"" "$T/out" "inspect: the subnet"
expect_grep "\"Gateway\": \"$SUB.1\"" "$T/out" "inspect: the gateway"
expect_grep '"team": "blue"' "$T/out" "inspect: the label"
expect_grep '"Driver": "cni"' "$T/out" "inspect: the driver"
expect_exit 0 "inspect by id prefix" b network inspect "$(echo "$neta" | cut -c1-12)"
expect_grep '"Name": "neta"' "$T/out" "inspect by prefix finds it"
expect_exit 1 "inspect of a missing network" b network inspect nonet
expect_one_line "inspect nonet"

# --- refusals leave nothing --------------------------------------------------------
nets_before=$(b network ls -q --no-trunc | sort)
# The driver's files (one conflist per network), and addresses from the
# refused subnets on any interface (other processes add and drop interfaces
# meanwhile, so the host's interfaces are not counted).
state_before=$(find "$T/root/drivers/network/cni" 2>/dev/null | sort)
expect_exit 1 "a duplicate name" b network create neta
expect_one_line "duplicate name"
expect_grep "already exists" "$T/err" "duplicate: Docker's message"
for bad in "10.1.2.0/40" "nonsense" "300.1.2.0/24"; do
    expect_exit 1 "bad subnet '$bad'" b network create --subnet "$bad" badnet
    expect_one_line "subnet $bad"
done
expect_exit 1 "an overlapping subnet" b network create --subnet "$SUB.128/25" overlap
expect_one_line "overlapping subnet"
expect_grep "overlap" "$T/err" "overlap: says so"
expect_exit 1 "a gateway outside the subnet" b network create --subnet "$OTHER.0/24" --gateway 10.9.9.9 gwout
expect_one_line "gateway outside"
for pre in bridge host none; do
    expect_exit 1 "rm $pre is refused" b network rm "$pre"
    expect_one_line "rm $pre"
    expect_grep "pre-defined network" "$T/err" "rm $pre: Docker's message"
done
[ "$(b network ls -q --no-trunc | sort)" = "$nets_before" ] && ok "refusals made no network" ||
    not_ok "refusals changed the networks: $(b network ls)"
if ip -o addr | grep -q -e " $OTHER\." -e " $SUB\.1[2-9][0-9]/" -e " 10\.9\.9\.9/"; then
    not_ok "refusals left an address: $(ip -o addr | grep -e " $OTHER\." -e " 10\.9\.9\.9/")"
else
    ok "refusals put no address on any interface"
fi
[ "$(find "$T/root/drivers/network/cni" 2>/dev/null | sort)" = "$state_before" ] &&
    ok "refusals left no driver state" || not_ok "refusals changed the driver's files"

# --- in use: refused while a container refers to it, even one never started ----------
b create --name holder --network neta demo true >/dev/null
expect_exit 1 "rm of a network a container refers to" b network rm neta
expect_one_line "rm in use"
expect_grep "active endpoints" "$T/err" "in use: Docker's message"
b rm holder >/dev/null

# --- two containers on a user network --------------------------------------------
expect_exit 0 "run -d on the user network" b run -d --name c1 --network neta demo sleep 300
expect_exit 0 "run -d with --ip and --network-alias" \
    b run -d --name c2 --network neta --ip "$SUB.50" --network-alias webalias demo sleep 300
ip1=$(ip_of c1 neta)
ip2=$(ip_of c2 neta)
case "$ip1" in "$SUB".*) ok "c1 has an address in the subnet ($ip1)" ;; *) not_ok "c1's address: '$ip1'" ;; esac
[ "$ip2" = "$SUB.50" ] && ok "--ip gave c2 its address" || not_ok "c2's address: '$ip2', want $SUB.50"
expect_exit 0 "c2 pings c1 by address" b exec c2 ping -c1 -W2 "$ip1"
expect_exit 0 "c1 pings c2 by address" b exec c1 ping -c1 -W2 "$SUB.50"
expect_exit 0 "c1 pings c2 by name" b exec c1 ping -c1 -W2 c2
expect_exit 0 "c2 pings c1 by name" b exec c2 ping -c1 -W2 c1
expect_exit 0 "c1 pings c2 by its alias" b exec c1 ping -c1 -W2 webalias
expect_exit 0 "network inspect lists the attached containers" b network inspect neta
expect_grep '"Name": "c1"' "$T/out" "inspect Containers: c1"
expect_grep "\"IPv4Address\": \"$SUB.50/24\"" "$T/out" "inspect Containers: c2's address"
expect_exit 125 "run with an address already taken" b run --rm --network neta --ip "$SUB.50" demo true
expect_grep "$SUB.50" "$T/err" "the refusal names the address"
expect_exit 0 "connect c1 to the default bridge too" b network connect bridge c1
expect_exit 0 "inspect c1 after connect" b inspect c1
b inspect c1 | json "sorted(d[0]['NetworkSettings']['Networks'])" >"$T/nets"
expect_grep "'bridge'" "$T/nets" "c1 is on bridge now"
expect_exit 0 "c1 has two interfaces besides lo" b exec c1 ip -o -4 addr show
[ "$(grep -vc ' lo ' "$T/out")" -eq 2 ] && ok "two addresses in c1" || not_ok "c1's addresses: $(cat "$T/out")"
expect_exit 1 "connect twice is refused" b network connect bridge c1
expect_one_line "connect twice"
expect_exit 0 "disconnect c1 from bridge" b network disconnect bridge c1
b inspect c1 | json "sorted(d[0]['NetworkSettings']['Networks'])" >"$T/nets"
if grep -q "'bridge'" "$T/nets"; then not_ok "c1 still on bridge: $(cat "$T/nets")"; else ok "disconnect removed bridge"; fi
expect_exit 0 "c1 has one interface besides lo" b exec c1 ip -o -4 addr show
[ "$(grep -vc ' lo ' "$T/out")" -eq 1 ] && ok "one address in c1" || not_ok "c1's addresses: $(cat "$T/out")"
b rm -f c1 c2 >/dev/null

# --- --internal: no way out to the host's other addresses -----------------------------
# The host's address on another interface: the host end of a veth pair whose
# other end is in a network namespace this test makes (dummy interfaces need
# a module that is not always there).
if ip netns add "$NS" && ip link add "$VETH" type veth peer name "${VETH}p" &&
    ip link set "${VETH}p" netns "$NS" && ip addr add "$HOSTADDR/30" dev "$VETH" &&
    ip link set "$VETH" up && ip -n "$NS" link set "${VETH}p" up; then
    expect_exit 0 "network create --internal" b network create --internal --subnet "$OTHER.0/24" netint
    netint=$(cat "$T/out")
    [ -z "$(masq_rules "$netint")" ] && ok "an internal network has no masquerade rule" ||
        not_ok "internal network's rules: $(masq_rules "$netint")"
    expect_exit 0 "inspect shows Internal" b network inspect netint
    expect_grep '"Internal": true' "$T/out" "Internal: true"
    # The control: from a normal user network the same address answers.
    expect_exit 0 "a normal network reaches the host's address on the veth" \
        b run --rm --network neta demo ping -c1 -W2 "$HOSTADDR"
    expect_exit 1 "an internal network does not" \
        b run --rm --network netint demo ping -c1 -W2 "$HOSTADDR"
    b run -d --name i1 --network netint demo sleep 300 >/dev/null
    b run -d --name i2 --network netint demo sleep 300 >/dev/null
    expect_exit 0 "containers on an internal network reach each other" b exec i2 ping -c1 -W2 i1
    b rm -f i1 i2 >/dev/null
else
    not_ok "could not make the veth pair $VETH and namespace $NS"
fi
ip link del "$VETH" 2>/dev/null
ip netns del "$NS" 2>/dev/null

# --- none: only lo --------------------------------------------------------------
expect_exit 0 "--network none" b run --rm --network none demo ip -o link
expect_lines 1 "$T/out" "none: one interface"
expect_grep ": lo:" "$T/out" "none: it is lo"

# --- a published web server -------------------------------------------------------
PORT=$(free_port)
page="hello from berth $$"
expect_exit 0 "busybox httpd with -p 127.0.0.1:$PORT:80" \
    b run -d --name web --network bridge -p "127.0.0.1:$PORT:80" demo sh -c "mkdir -p /www && echo '$page' >/www/index.html && exec httpd -f -p 80 -h /www"
web=$(cat "$T/out")
fetch "$PORT" "$page" && ok "curl gets the page from the container" ||
    not_ok "curl 127.0.0.1:$PORT: $(cat "$T/page" 2>/dev/null)"
expect_exit 0 "berth ps" b ps
expect_grep " 127.0.0.1:$PORT->80/tcp  *web$" "$T/out" "ps: the PORTS column"
expect_exit 0 "berth port web" b port web
expect_grep "^80/tcp -> 127.0.0.1:$PORT$" "$T/out" "port: the binding"
expect_exit 0 "berth port web 80" b port web 80
expect_grep "^127.0.0.1:$PORT$" "$T/out" "port 80: the address"
expect_exit 1 "berth port web 81" b port web 81
expect_one_line "port 81"
expect_exit 0 "inspect web" b inspect web
expect_grep "\"HostPort\": \"$PORT\"" "$T/out" "inspect: NetworkSettings.Ports"
# A second container asking for the same port: refused, and nothing of it stays.
v0=$(veths)
veth_names >"$T/veths0"
n0=$(netns_files)
l0=$(leases)
rules >"$T/rules0"
[ "$v0" -ge 1 ] && ok "web's veth is on our bridge ($v0)" || not_ok "no veth seen on our bridges: $(our_bridges)"
grep -q "dport $PORT\b\|dports $PORT\b" "$T/rules0" && ok "web's DNAT rule is among our rules" ||
    not_ok "no rule for port $PORT among ours: $(head -5 "$T/rules0")"
expect_exit 125 "a second container on the same host port is refused" \
    b run -d --name web2 --network bridge -p "127.0.0.1:$PORT:80" demo sleep 300
expect_grep "$PORT" "$T/err" "the refusal names the port"
expect_grep "allocated\|in use" "$T/err" "the refusal says it is taken"
state=$(b inspect web2 2>/dev/null | json "d[0]['State']['Status']" 2>/dev/null)
[ "$state" != running ] && ok "web2 is not running (${state:-gone})" || not_ok "web2 runs"
[ "$(veths)" -eq "$v0" ] && ok "the refusal left no veth" ||
    not_ok "veths: $v0 before, $(veths) after: new $(veth_names | comm -13 "$T/veths0" - | tr '\n' ' ')"
[ "$(netns_files)" -eq "$n0" ] && ok "the refusal left no netns" || not_ok "netns: $n0 before, $(netns_files) after"
[ "$(leases)" -eq "$l0" ] && ok "the refusal left no lease" || not_ok "leases: $l0 before, $(leases) after"
rules >"$T/rules1"
cmp -s "$T/rules0" "$T/rules1" && ok "the refusal left no iptables rule" ||
    not_ok "iptables changed: $(diff "$T/rules0" "$T/rules1" | grep '^[<>]' | head -5)"
fetch "$PORT" "$page" && ok "the first container still serves" || not_ok "the first container's port broke"
b rm -f web2 >/dev/null 2>&1
expect_exit 0 "rm -f web" b rm -f web
port_free "$PORT" && ok "after rm the port is free" || not_ok "127.0.0.1:$PORT still bound"
ss -ltn 2>/dev/null | grep -q "127.0.0.1:$PORT " && not_ok "ss still lists :$PORT" || ok "ss lists no listener on :$PORT"
iptables-save -t nat >"$T/nat"
if grep -q -e "$web" -e "$(echo "$web" | cut -c1-12)" -e "dport $PORT\b" -e ":$PORT\b" "$T/nat"; then
    not_ok "DNAT rules remain: $(grep -e "$web" -e "$PORT" "$T/nat" | head -3)"
else
    ok "no DNAT rule for the container or its port remains"
fi

# --- ephemeral ports --------------------------------------------------------------
expect_exit 0 "-p 127.0.0.1::80 (ephemeral)" \
    b run -d --name eph --network bridge -p 127.0.0.1::80 demo sh -c "mkdir -p /www && echo eph-$$ >/www/index.html && exec httpd -f -p 80 -h /www"
expect_exit 0 "berth port eph 80" b port eph 80
ephport=$(sed -n 's/^127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/out")
[ -n "$ephport" ] && [ "$ephport" -gt 0 ] && ok "an ephemeral port was chosen ($ephport)" || not_ok "port eph 80: $(cat "$T/out")"
[ -n "$ephport" ] && fetch "$ephport" "eph-$$" && ok "the ephemeral port serves the page" || not_ok "curl on the ephemeral port"
expect_exit 0 "-p 80" b run -d --name eph2 --network bridge -p 80 demo sleep 300
expect_exit 0 "berth port eph2" b port eph2
expect_grep "^80/tcp -> 0.0.0.0:[1-9][0-9]*$" "$T/out" "-p 80: an ephemeral port on every address"
expect_exit 0 "-P with --expose" b run -d --name eph3 --network bridge --expose 8081 --expose 53/udp -P demo sleep 300
expect_exit 0 "berth port eph3" b port eph3
expect_grep "^8081/tcp -> 0.0.0.0:[1-9][0-9]*$" "$T/out" "-P: the exposed tcp port"
expect_grep "^53/udp -> 0.0.0.0:[1-9][0-9]*$" "$T/out" "-P: the exposed udp port"
b rm -f eph eph2 eph3 >/dev/null

# --- prune ------------------------------------------------------------------------
# Subnets given: the default pools may be used up by other networks on a busy host.
expect_exit 0 "network create netp1" b network create --subnet "10.$o2.80.0/24" --label keep=no netp1
expect_exit 0 "network create netp2" b network create --subnet "10.$o2.81.0/24" --label keep=yes netp2
expect_exit 0 "a container referring to netp2" b create --name user1 --network netp2 demo true
expect_exit 0 "network prune --filter label=keep=no" b network prune -f --filter label=keep=no
expect_grep "^Deleted Networks:$" "$T/out" "prune: docker's heading"
expect_grep "^netp1$" "$T/out" "prune: the unused labelled network"
expect_exit 0 "network prune" b network prune -f
b network ls >"$T/nets"
expect_grep "  netp2  " "$T/nets" "prune keeps a network a container refers to"
if grep -q "  netint  \|  netp1  " "$T/nets"; then not_ok "prune left unused networks"; else ok "prune removed the unused ones"; fi
expect_grep "  bridge  " "$T/nets" "prune keeps bridge"
b rm user1 >/dev/null

# --- run/rm cycles on the bridge network leak nothing -------------------------------
# A monitor finishes its cleanup just after the CLI has the exit status.
settle() {
    for _ in $(seq 100); do pgrep -f "berth-shim.*$T" >/dev/null || break; sleep 0.1; done
}
# --- /etc/hostname, /etc/hosts and /etc/resolv.conf ---------------------------
expect_exit 0 "run with --hostname, --add-host, --dns, --dns-search" b run --rm --network none \
    --hostname myhost --add-host db.local:10.1.2.3 --dns 10.9.9.9 --dns-search example.test \
    demo sh -c 'cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf; hostname'
expect_grep "^myhost$" "$T/out" "/etc/hostname and hostname say --hostname"
expect_grep "^10.1.2.3	db.local$" "$T/out" "--add-host is in /etc/hosts"
expect_grep "^127.0.0.1	localhost$" "$T/out" "/etc/hosts names localhost"
expect_grep "^nameserver 10.9.9.9$" "$T/out" "--dns is the nameserver"
expect_grep "^search example.test$" "$T/out" "--dns-search is the search list"
expect_exit 0 "the container's own address is in its /etc/hosts" b run --rm --hostname me demo \
    sh -c 'grep -w me /etc/hosts; ip -4 -o addr show eth0'
a=$(awk '/inet / {print $4}' "$T/out" | cut -d/ -f1)
[ -n "$a" ] && grep -q "^$a	me" "$T/out" && ok "hosts maps the hostname to eth0's address ($a)" ||
    not_ok "hosts: $(tr '\n' ' ' <"$T/out")"
expect_exit 125 "--add-host without an address" b run --rm --network none --add-host nonsense demo true

# --- peers by name, updated as they come and go; connect and disconnect live --
expect_exit 0 "network create names" b network create names
names=$(cat "$T/out")
expect_exit 0 "network create extra" b network create extra
extra=$(cat "$T/out")
# One masquerade rule per network, made with it: its subnet, not to its own bridge.
names_sub=$(b network inspect names | json "d[0]['IPAM']['Config'][0]['Subnet']")
masq_rules "$names" >"$T/masq"
expect_lines 1 "$T/masq" "network create made one masquerade rule for names"
expect_grep "-A POSTROUTING -s $names_sub ! -o br-$(echo "$names" | cut -c1-12) .*-j MASQUERADE" \
    "$T/masq" "the rule: the network's subnet, not to its own bridge"
expect_exit 0 "run -d n1" b run -d --name n1 --network names demo sleep 300
n1=$(cat "$T/out")
# No per-container masquerade (the bridge plugin's chain, tagged with the container id).
iptables-save -t nat | grep -F "$n1" >"$T/ctr"
expect_lines 0 "$T/ctr" "no masquerade rule or chain for the container"
masq_rules "$names" >"$T/masq"
expect_lines 1 "$T/masq" "still one rule for names with a container on it"
expect_exit 0 "run -d n2 with an alias" b run -d --name n2 --network names --network-alias db demo sleep 300
expect_exit 0 "n1 learned of n2 after it started" b exec n1 grep -w n2 /etc/hosts
expect_exit 0 "n1 reaches n2 by its alias" b exec n1 ping -c1 -W2 db
expect_exit 0 "rm -f n2" b rm -f n2
expect_exit 1 "n1 forgot n2 when it went" b exec n1 grep -w n2 /etc/hosts
expect_exit 0 "network connect extra n1 (running)" b network connect extra n1
expect_exit 0 "n1 has a second interface" b exec n1 ip -4 -o addr show eth1
expect_exit 0 "inspect n1" b inspect n1
[ "$(json "len(d[0]['NetworkSettings']['Networks'])" <"$T/out")" = 2 ] &&
    ok "inspect shows both networks" || not_ok "networks: $(json "list(d[0]['NetworkSettings']['Networks'])" <"$T/out")"
expect_exit 1 "network connect twice" b network connect extra n1
expect_exit 0 "network disconnect extra n1 (running)" b network disconnect extra n1
expect_exit 1 "eth1 is gone" b exec n1 ip -4 -o addr show eth1
expect_exit 1 "rm of a network a container is on" b network rm names
expect_exit 0 "rm -f n1" b rm -f n1
expect_exit 0 "network rm names extra" b network rm names extra
[ -z "$(masq_rules "$names")$(masq_rules "$extra")" ] && ok "network rm removed their masquerade rules" ||
    not_ok "rules left after network rm: $(masq_rules "$names") $(masq_rules "$extra")"

settle
v0=$(veths)
veth_names >"$T/veths0"
n0=$(netns_files)
l0=$(leases)
rules >"$T/rules0"
i=0
fails=0
start=$(date +%s)
while [ $i -lt "$CYCLES" ]; do
    b run --rm --network bridge demo true >/dev/null 2>"$T/cerr" || {
        fails=$((fails + 1))
        [ $fails -eq 1 ] && sed 's/^/    first failure: /' "$T/cerr"
    }
    i=$((i + 1))
done
echo "# $CYCLES cycles in $(($(date +%s) - start)) s"
settle
[ $fails -eq 0 ] && ok "$CYCLES run --rm cycles on bridge all succeeded" || not_ok "$fails of $CYCLES cycles failed"
[ "$(veths)" -eq "$v0" ] && ok "no leaked veth ($v0)" ||
    not_ok "veths: $v0 before, $(veths) after: new $(veth_names | comm -13 "$T/veths0" - | tr '\n' ' ')"
[ "$(netns_files)" -eq "$n0" ] && ok "no leaked netns file ($n0)" || not_ok "netns files: $n0 before, $(netns_files) after: $(netns_list | tr '\n' ' ')"
[ "$(leases)" -eq "$l0" ] && ok "no leaked IPAM lease ($l0)" || not_ok "leases: $l0 before, $(leases) after"
rules >"$T/rules1"
cmp -s "$T/rules0" "$T/rules1" && ok "no leaked iptables rule ($(wc -l <"$T/rules0") lines)" ||
    not_ok "iptables: $(wc -l <"$T/rules0") lines before, $(wc -l <"$T/rules1") after: $(diff "$T/rules0" "$T/rules1" | grep '^[<>]' | head -5)"
# What is left of the bridge network after the cycles is its one masquerade rule, no chain.
bridge=$(b network inspect bridge | json "d[0]['Id']")
grep -F "berth:$bridge" "$T/rules1" >"$T/masq"
expect_lines 1 "$T/masq" "the bridge network has its one masquerade rule after the cycles"
grep -e 'CNI-' -e 'id: "' "$T/rules1" >"$T/chains"
expect_lines 0 "$T/chains" "no per-container masquerade rule or chain after the cycles"
# Removed with the networks: none of the user networks this test removed left its rule.
left=
for id in "$neta" "${netint:-}" "$names" "$extra"; do
    [ -n "$id" ] && left="$left$(masq_rules "$id")"
done
[ -z "$left" ] && ok "the removed networks left no masquerade rule" || not_ok "rules left: $left"
finish
