#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Networks through the real docker CLI against a berthd of our own:
# docker network create/ls/inspect/connect/disconnect/rm/prune with
# Docker's status codes for refusals, docker run -d -p 127.0.0.1:PORT:80
# serving a page curl fetches, docker port and docker ps showing the
# binding, and the published port still working after berthd is killed
# with SIGKILL and started again.
# Usage: test-berthd-networks.sh BERTH BERTHD   (as root)
. "$(dirname "$0")/lib.sh"
BERTH=$1
BERTHD=$2
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
for tool in docker iptables curl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is missing"
        exit 77
    fi
done
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
[ -n "${LSAN_OPTIONS:-}" ] && export LSAN_OPTIONS="$LSAN_OPTIONS:print_suppressions=0"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
S=$T/d.sock
d() { DOCKER_HOST="unix://$S" DOCKER_CONFIG="$T/docker" docker "$@"; }
start_berthd() {
    "$BERTHD" -H "unix://$S" --config "$T/c.json" --root "$T/root" --runroot "$T/run" 2>>"$T/dlog" &
    dpid=$!
    for _ in $(seq 100); do
        d version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
cleanup() {
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    for n in $(b network ls -q 2>/dev/null); do b network rm "$n" >/dev/null 2>&1; done
    lib_cleanup
}
trap cleanup EXIT

o2=$((($$ % 200) + 20))
# ...and clear of the host's own 10.x networks (podman's 10.88.0.0/16, for one).
while ip -4 route show | grep -q "^10\.$o2\."; do o2=$(((o2 - 19) % 200 + 20)); done
# The root's own address pool (the default bridge takes its first /24): the
# host's 172.17-31 and 192.168 pools may be used up by other networks.
echo "{\"networks\": {\"address_pools\": [{\"base\": \"10.$o2.96.0/20\", \"size\": 24}]}}" >"$T/c.json"
SUB=10.$o2.87
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_free() {
    python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
fetch() {
    for _ in $(seq 50); do
        curl -s --max-time 2 "http://127.0.0.1:$1/" >"$T/page" 2>/dev/null && grep -q "$2" "$T/page" && return 0
        sleep 0.1
    done
    return 1
}

start_berthd && ok "berthd answers" || { not_ok "berthd did not start: $(cat "$T/dlog")"; finish; }
if b load -i "${BERTH_DEMO_IMAGE:-}" >"$T/out" 2>&1 || b pull demo >"$T/out" 2>&1; then
    ok "the demo image is there"
else
    not_ok "no demo image: $(cat "$T/out")"
fi

# --- docker network ... -------------------------------------------------------------
expect_exit 0 "docker network create" d network create --subnet "$SUB.0/24" --gateway "$SUB.1" --label tier=web dnet
dnet=$(cat "$T/out")
[ ${#dnet} -eq 64 ] && ok "create prints the full id" || not_ok "create printed '$dnet'"
expect_exit 0 "docker network ls" d network ls
expect_grep "^$(echo "$dnet" | cut -c1-12)  *dnet  *cni  *local$" "$T/out" "ls: the new network"
expect_grep "  host  " "$T/out" "ls: host"
expect_exit 0 "docker network ls --filter" d network ls -q --filter label=tier=web
expect_lines 1 "$T/out" "the label filter finds one"
expect_exit 0 "docker network inspect" d network inspect dnet
expect_grep "\"Subnet\": \"$SUB.0/24\"" "$T/out" "inspect: the subnet"
expect_exit 0 "docker network inspect -f" d network inspect -f '{{.Driver}} {{.Scope}} {{.Internal}}' dnet
expect_grep "^cni local false$" "$T/out" "inspect -f reads the fields"
expect_exit 0 "docker inspect finds a network too" d inspect dnet
expect_grep '"Name": "dnet"' "$T/out" "docker inspect: the network"
expect_exit 1 "a duplicate name" d network create dnet
expect_grep "already exists" "$T/err" "duplicate: Docker's message"
expect_exit 1 "an overlapping subnet" d network create --subnet "$SUB.0/25" dover
expect_exit 1 "rm bridge" d network rm bridge
expect_grep "pre-defined" "$T/err" "rm bridge: Docker's message"
expect_exit 1 "inspect of nothing" d network inspect nonet
expect_grep "not found" "$T/err" "inspect of nothing: not found"
# The status codes behind those messages.
code() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" "$@"; }
[ "$(code -X DELETE http://d/v1.50/networks/bridge)" = 403 ] && ok "DELETE of bridge is 403" || not_ok "DELETE bridge: $(code -X DELETE http://d/v1.50/networks/bridge)"
[ "$(code http://d/v1.50/networks/nonet)" = 404 ] && ok "GET of a missing network is 404" || not_ok "GET nonet: not 404"
[ "$(code -X POST -H 'Content-Type: application/json' -d '{"Name":"dnet"}' http://d/v1.50/networks/create)" = 409 ] &&
    ok "a duplicate create is 409" || not_ok "duplicate create: not 409"
[ "$(code -X POST -H 'Content-Type: application/json' -d '{"Name":"x","IPAM":{"Config":[{"Subnet":"nonsense"}]}}' http://d/v1.50/networks/create)" = 400 ] &&
    ok "a bad subnet is 400" || not_ok "bad subnet: not 400"
[ "$(code -X POST -d '{nope' http://d/v1.50/networks/create)" = 400 ] && ok "bad JSON is 400" || not_ok "bad JSON: not 400"

# --- a published web server ------------------------------------------------------
PORT=$(free_port)
page="served by berthd $$"
expect_exit 0 "docker run -d -p 127.0.0.1:$PORT:80" \
    d run -d --name dweb -l tier=web -p "127.0.0.1:$PORT:80" demo sh -c "mkdir -p /www && echo '$page' >/www/index.html && exec httpd -f -p 80 -h /www"
dweb=$(cat "$T/out")
fetch "$PORT" "$page" && ok "curl gets the page" || not_ok "curl 127.0.0.1:$PORT: $(cat "$T/page" 2>/dev/null)"
expect_exit 0 "docker port" d port dweb
expect_grep "^80/tcp -> 127.0.0.1:$PORT$" "$T/out" "docker port: the binding"
expect_exit 0 "docker port dweb 80" d port dweb 80
expect_grep "^127.0.0.1:$PORT$" "$T/out" "docker port 80: the address"
expect_exit 0 "docker ps" d ps
expect_grep "127.0.0.1:$PORT->80/tcp" "$T/out" "docker ps: the PORTS column"
# The list's other columns come from the engine's listing, not from an inspect per row.
expect_exit 0 "docker ps -a --format" d ps -a --filter name=^dweb$ --format '{{.Image}} {{.Networks}} {{.Label "tier"}} {{.Ports}}'
expect_grep "^demo bridge web 127.0.0.1:$PORT->80/tcp$" "$T/out" "docker ps: image, networks, label and ports of one row"
expect_exit 0 "docker inspect -f address" d inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' dweb
grep -q '^[0-9][0-9.]*$' "$T/out" && ok "inspect: the container's address" || not_ok "inspect address: $(cat "$T/out")"
expect_exit 125 "a second container on the same port" d run -d --name dweb2 -p "127.0.0.1:$PORT:80" demo sleep 300
expect_grep "$PORT" "$T/err" "the refusal names the port"
fetch "$PORT" "$page" && ok "the first container still serves" || not_ok "the refusal broke the first container's port"
d rm -f dweb2 >/dev/null 2>&1

# --- connect, disconnect ------------------------------------------------------------
expect_exit 0 "docker network connect" d network connect --ip "$SUB.9" dnet dweb
d inspect dweb | json "d[0]['NetworkSettings']['Networks']['dnet']['IPAddress']" >"$T/out" 2>&1
expect_grep "^$SUB.9$" "$T/out" "connect: the address asked for"
expect_exit 1 "connect twice" d network connect dnet dweb
[ "$(code -X POST -H 'Content-Type: application/json' -d '{"Container":"dweb"}' http://d/v1.50/networks/dnet/connect)" = 403 ] &&
    ok "connecting twice is 403" || not_ok "connect twice: not 403"
expect_exit 1 "rm of a network in use" d network rm dnet
expect_grep "active endpoints" "$T/err" "in use: Docker's message"
expect_exit 0 "docker network disconnect" d network disconnect dnet dweb
d inspect dweb | json "sorted(d[0]['NetworkSettings']['Networks'])" >"$T/out" 2>&1
if grep -q dnet "$T/out"; then not_ok "still on dnet: $(cat "$T/out")"; else ok "disconnect removed it"; fi

# --- berthd killed and started again: the port still serves ----------------------------
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
dpid=
fetch "$PORT" "$page" && ok "the port serves while berthd is down" || not_ok "the port died with berthd"
start_berthd && ok "berthd started again" || not_ok "berthd did not restart: $(tail -5 "$T/dlog")"
fetch "$PORT" "$page" && ok "curl after the restart" || not_ok "curl after the restart: $(cat "$T/page" 2>/dev/null)"
expect_exit 0 "docker port after the restart" d port dweb 80
expect_grep "^127.0.0.1:$PORT$" "$T/out" "the binding is still shown"

# --- removal ------------------------------------------------------------------------
expect_exit 0 "docker rm -f" d rm -f dweb
port_free "$PORT" && ok "after rm the port is free" || not_ok "127.0.0.1:$PORT still bound"
if iptables-save -t nat | grep -q -e "$dweb" -e ":$PORT\b" -e "dport $PORT\b"; then
    not_ok "DNAT rules remain for $PORT"
else
    ok "no DNAT rule remains"
fi
expect_exit 0 "docker network rm" d network rm dnet
expect_grep "^dnet$" "$T/out" "rm prints the name"
expect_exit 0 "docker network create dprune" d network create --subnet "10.$o2.88.0/24" dprune
expect_exit 0 "docker network prune -f" d network prune -f
expect_grep "dprune" "$T/out" "prune names what it removed"
expect_exit 0 "docker system prune -f (asks for networks too)" d system prune -f
kill -0 "$dpid" 2>/dev/null && ok "berthd still serves at the end" || not_ok "berthd died: $(tail -5 "$T/dlog")"
finish
