#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# berthd through the real docker CLI and through raw sockets: version, info,
# ps and images showing what the berth CLI made in the same root; Docker's
# API version rules; JSON errors; and bad input (garbage, oversized headers
# and bodies, a client vanishing mid-request) answered without taking the
# daemon down.
# Usage: test-berthd.sh BERTH BERTHD
. "$(dirname "$0")/lib.sh"
BERTH=$1
BERTHD=$2
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
echo '{"plugin_dirs": []}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
S=$T/d.sock
cleanup() {
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    lib_cleanup
}
trap cleanup EXIT

expect_exit 0 "berthd --help" "$BERTHD" --help
expect_grep "Docker Engine API" "$T/out" "help says what it serves"
expect_exit 1 "a TCP address without TLS is refused" "$BERTHD" -H tcp://0.0.0.0:2375 \
    --config "$T/c.json" --root "$T/root" --runroot "$T/run"
expect_grep "mutual TLS" "$T/err" "the refusal says why"
expect_exit 2 "an unknown option is refused" "$BERTHD" --frobnicate

"$BERTHD" -H "unix://$S" --config "$T/c.json" --root "$T/root" --runroot "$T/run" 2>"$T/dlog" &
dpid=$!
for _ in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
[ -S "$S" ] && ok "berthd listens on its socket" || not_ok "no socket at $S: $(cat "$T/dlog")"
[ "$(stat -c %a "$S")" = 660 ] && ok "the socket is mode 0660" || not_ok "socket mode $(stat -c %a "$S")"

# Raw HTTP: status, headers and bodies as the docker client needs them.
cat >"$T/raw.py" <<'PY'
import socket, sys
def req(raw, path=sys.argv[1]):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(5)
    s.sendall(raw)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
            if b"\r\n\r\n" in out:
                head, body = out.split(b"\r\n\r\n", 1)
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:") and len(body) >= int(line.split(b":")[1]):
                        return out
    except socket.timeout:
        pass
    return out
what = sys.argv[2]
if what == "ping":
    r = req(b"HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
elif what == "notfound":
    r = req(b"GET /v1.50/nosuch HTTP/1.1\r\nHost: x\r\n\r\n")
elif what == "toonew":
    r = req(b"GET /v1.99/version HTTP/1.1\r\nHost: x\r\n\r\n")
elif what == "garbage":
    r = req(b"\x00\x01 not http at all\r\n\r\n")
elif what == "badname":
    # A name that is not UTF-8 (percent-decoded): the refusal must still be JSON.
    r = req(b"POST /containers/create?name=a%ffb HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"Image\":\"demo\"}")
elif what == "bigheader":
    r = req(b"GET /version HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
elif what == "bigbody":
    r = req(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{")
elif what == "keepalive":
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(2)
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    r = b""
    try:
        while r.count(b"HTTP/1.1 200") < 2:
            d = s.recv(65536)
            if not d:
                break
            r += d
    except socket.timeout:
        pass
elif what == "vanish":
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"Ima")
    s.close()
    r = req(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
sys.stdout.buffer.write(r)
PY
raw() { python3 "$T/raw.py" "$S" "$1" >"$T/out" 2>"$T/err"; }
raw ping
expect_grep "^HTTP/1.1 200" "$T/out" "HEAD /_ping answers 200"
expect_grep "^Api-Version: 1.50" "$T/out" "the ping names the API version"
expect_grep "^Ostype: linux" "$T/out" "and the OS type"
raw notfound
expect_grep "^HTTP/1.1 404" "$T/out" "an unknown route is 404"
expect_grep "^Content-Type: application/json" "$T/out" "errors are JSON"
expect_grep '"message":"page not found"' "$T/out" "with a message"
raw toonew
expect_grep "^HTTP/1.1 400" "$T/out" "a version above 1.50 is 400"
expect_grep "too new" "$T/out" "saying it is too new"
raw garbage
expect_grep "^HTTP/1.1 400" "$T/out" "garbage gets 400"
raw badname
expect_grep "^HTTP/1.1 400" "$T/out" "a container name that is not UTF-8 gets 400"
expect_grep '"message":"invalid container name \\"a?b\\"' "$T/out" "with the name in the message, its bad byte as ?"
raw bigheader
expect_grep "^HTTP/1.1 431" "$T/out" "an oversized header gets 431"
raw bigbody
expect_grep "^HTTP/1.1 413" "$T/out" "an oversized body gets 413"
raw keepalive
[ "$(grep -o 'HTTP/1.1 200' "$T/out" | wc -l)" = 2 ] && ok "two requests on one connection, two answers" || not_ok "keep-alive: $(grep -c '^HTTP/1.1' "$T/out") answers"
raw vanish
expect_grep "^HTTP/1.1 200" "$T/out" "a client vanishing mid-body does not stop the daemon"
kill -0 "$dpid" 2>/dev/null && ok "berthd still runs after the bad input" || not_ok "berthd died: $(cat "$T/dlog")"

# The docker CLI, unmodified.
if ! command -v docker >/dev/null 2>&1; then
    echo "# SKIP docker CLI checks: no docker client installed"
    finish
fi
d() { docker -H "unix://$S" "$@"; }
expect_exit 0 "docker version" d version
expect_grep "Server: berth" "$T/out" "the server is berth"
expect_grep "API version: *1.50 (minimum version 1.24)" "$T/out" "API 1.50, minimum 1.24"
expect_exit 0 "docker info" d info
expect_grep "Server Version: " "$T/out" "info has the server version"
expect_grep "OSType: linux" "$T/out" "and the OS type"
[ ! -s "$T/err" ] && ok "docker info warns of nothing" || not_ok "info stderr: $(cat "$T/err")"
expect_exit 0 "docker ps -a on an empty store" d ps -a
expect_lines 1 "$T/out" "only the header"
# What the berth CLI makes shows up through the API (same engine, same store).
sh "$(dirname "$0")/../fixtures/make-busybox-rootfs.sh" "$T/rootfs" >/dev/null 2>&1 || true
if [ -d "$T/rootfs/bin" ]; then
    b create --name made-by-berth --rootfs "$T/rootfs" true >/dev/null
    expect_exit 0 "docker ps -a" d ps -a
    expect_grep "made-by-berth" "$T/out" "docker ps -a lists the container berth created"
    expect_grep "Created" "$T/out" "in its state"
    expect_exit 0 "docker ps (running only)" d ps
    expect_lines 1 "$T/out" "docker ps leaves out the one not running"
    expect_exit 0 "docker inspect" d inspect made-by-berth
    expect_grep '"Name": "/made-by-berth"' "$T/out" "inspect has the name"
    expect_grep '"NetworkSettings"' "$T/out" "and NetworkSettings"
    expect_exit 1 "docker inspect of nothing" d inspect no-such-thing
    expect_grep "No such object" "$T/err" "says no such object"
fi
if [ -n "${BERTH_DEMO_IMAGE:-}" ] && [ -d "$BERTH_DEMO_IMAGE" ]; then
    b load -i "$BERTH_DEMO_IMAGE" >/dev/null 2>&1 || b pull demo >/dev/null 2>&1
    expect_exit 0 "docker images" d images
    expect_grep "^demo  *latest" "$T/out" "docker images lists the image berth loaded"
    expect_exit 0 "docker image inspect" d image inspect demo:latest
    expect_grep '"Id": "sha256:' "$T/out" "the image's id"
    # A container's life through the API (real containers: root).
    if [ "$(id -u)" -eq 0 ]; then
        expect_exit 0 "docker run -d" d run -d --name web demo sleep 100
        cid=$(cat "$T/out")
        [ ${#cid} -eq 64 ] && ok "run -d prints the full id" || not_ok "run -d printed '$cid'"
        expect_exit 0 "docker ps" d ps
        expect_grep "Up .* *web$" "$T/out" "docker ps shows it up"
        b ps >"$T/bps" 2>&1
        expect_grep "web" "$T/bps" "the berth CLI sees it running too"
        # A stop waits without holding the daemon: PID 1 ignores SIGTERM, so the stop lasts its
        # whole timeout, and other requests are answered meanwhile (an order, not a timing: the
        # stop is still going when they return).
        d stop -t 4 web >"$T/stop.out" 2>&1 &
        spid=$!
        sleep 0.3
        expect_exit 0 "docker version while a stop waits" d version
        expect_exit 0 "docker ps while a stop waits" d ps
        kill -0 $spid 2>/dev/null && ok "the daemon answered while the stop was still waiting" || not_ok "the other requests waited for the stop"
        wait $spid && ok "docker stop -t 4 returns" || not_ok "docker stop failed: $(cat "$T/stop.out")"
        expect_exit 0 "docker ps -a" d ps -a
        expect_grep "Exited (137)" "$T/out" "stopped by SIGKILL after the timeout"
        expect_exit 0 "docker start" d start web
        expect_exit 0 "docker pause" d pause web
        expect_exit 0 "docker ps (paused)" d ps
        expect_grep "(Paused)" "$T/out" "ps shows it paused"
        expect_exit 0 "docker unpause" d unpause web
        expect_exit 0 "docker kill" d kill web
        expect_exit 0 "docker wait" d wait web
        expect_grep "^137$" "$T/out" "wait gives the exit code"
        expect_exit 1 "docker kill of a stopped container" d kill web
        expect_grep "is not running" "$T/err" "says it is not running"
        expect_exit 1 "docker rm of nothing" d rm no-such-container
        expect_grep "No such container" "$T/err" "says no such container"
        expect_exit 0 "docker rm" d rm web
        # docker stop of a paused container: the stop signal, then the unpause, so the handler runs.
        expect_exit 0 "docker run -d with a TERM handler" d run -d --name trapper demo sh -c 'trap "exit 42" TERM; echo ready; while :; do sleep 0.2; done'
        for _ in $(seq 50); do d logs trapper 2>/dev/null | grep -q ready && break; sleep 0.1; done
        expect_exit 0 "docker pause it" d pause trapper
        expect_exit 0 "docker stop -t 30 of the paused container" d stop -t 30 trapper
        expect_exit 0 "docker wait for it" d wait trapper
        expect_grep "^42$" "$T/out" "its TERM handler ran (exit 42, not SIGKILL's 137)"
        expect_exit 0 "docker rm it" d rm trapper
        expect_exit 0 "docker run -d of a failing command" d run -d --name seven demo sh -c 'sleep 0.3; exit 7'
        expect_exit 0 "docker wait for it" d wait seven
        expect_grep "^7$" "$T/out" "wait gives 7"
        expect_exit 0 "docker rm -f" d rm -f seven
        expect_exit 0 "docker run -d, sleep" d run -d --name busy demo sleep 100
        # exec: created, started through the upgrade, exit code read after the stream ends.
        expect_exit 6 "docker exec exits with the process's code" d exec busy sh -c 'echo in-exec; echo e >&2; exit 6'
        expect_grep "^in-exec$" "$T/out" "exec's stdout"
        expect_grep "^e$" "$T/err" "exec's stderr"
        echo piped-in >"$T/in"
        d exec -i busy cat <"$T/in" >"$T/out" 2>"$T/err" && ok "docker exec -i" || not_ok "exec -i: $(cat "$T/err")"
        expect_grep "^piped-in$" "$T/out" "exec -i: stdin reaches the process"
        expect_exit 0 "docker exec -d" d exec -d busy touch /tmp/marker
        for _ in 1 2 3 4 5 6 7 8 9 10; do d exec busy test -e /tmp/marker && break; sleep 0.1; done
        expect_exit 0 "the detached exec ran" d exec busy test -e /tmp/marker
        expect_exit 1 "docker exec into nothing" d exec no-such-container true
        expect_grep "No such container" "$T/err" "says no such container"
        expect_exit 1 "docker rm of a running container" d rm busy
        expect_grep "force" "$T/err" "the refusal mentions force"
        expect_exit 0 "docker top" d top busy
        expect_grep "sleep 100" "$T/out" "top lists the container's process"
        expect_exit 0 "docker stats --no-stream" d stats --no-stream --format '{{.Name}} {{.PIDs}} {{.MemUsage}}' busy
        expect_grep "^busy 1 [0-9.]*[KMG]i\?B / " "$T/out" "stats: the process count and the memory in use"
        d run -d --name capped --memory 64m demo sleep 100 >/dev/null
        expect_exit 0 "docker stats of a container with a memory limit" d stats --no-stream --format '{{.Name}} {{.MemUsage}}' capped
        expect_grep "^capped .* / 64MiB$" "$T/out" "stats shows the limit"
        d rm -f capped >/dev/null
        expect_exit 1 "docker stats of nothing" d stats --no-stream no-such-container
        expect_grep "No such container" "$T/err" "says no such container"
        # Exec records go with their container (and 5 minutes after they end).
        xid=$(curl -s --unix-socket "$S" -H 'Content-Type: application/json' -d '{"Cmd": ["true"]}' http://x/v1.50/containers/busy/exec | sed -n 's/.*"Id": *"\([0-9a-f]*\)".*/\1/p')
        [ -n "$xid" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" http://x/exec/$xid/json)" = 200 ] &&
            ok "an exec record is there while its container is" || not_ok "no exec record ($xid)"
        expect_exit 0 "docker rm -f of a running container" d rm -f busy
        d run -d --name busy2 demo sleep 100 >/dev/null
        d exec busy2 true
        [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$S" http://x/exec/$xid/json)" = 404 ] &&
            ok "the removed container's exec record is gone" || not_ok "exec $xid outlived its container"
        d rm -f busy2 >/dev/null
        expect_exit 125 "docker run of an image that isn't here" d run -d nosuchimage true
        expect_grep "Unable to find image" "$T/err" "the CLI tries to pull it (create said 404)"
        # An attach whose start never came (the client or berthd went away in between) leaves
        # a monitor waiting: start -a uses it, and rm takes it down with everything it set up.
        drop_attach() {
            curl -s -o /dev/null --max-time 1 --unix-socket "$S" -X POST -H 'Connection: Upgrade' \
                -H 'Upgrade: tcp' "http://x/v1.50/containers/$1/attach?stream=1&stdout=1&stderr=1"
        }
        monitors_of() { ps -eo args | grep "[b]erth-shim --id $1" | wc -l; }
        wid=$(d create --name waited demo echo after-a-dropped-attach)
        drop_attach "$wid"
        [ "$(monitors_of "$wid")" -gt 0 ] && ok "a dropped attach leaves a monitor waiting" ||
            not_ok "no monitor waits for $wid"
        expect_exit 0 "docker start -a after a dropped attach" d start -a waited
        expect_grep "^after-a-dropped-attach$" "$T/out" "the waiting monitor ran it, with its output"
        d rm waited >/dev/null
        wid=$(d create --name dropped demo true)
        drop_attach "$wid"
        expect_exit 0 "docker rm of a created container whose monitor waits" d rm dropped
        # (It answers once it has undone everything, then exits: give the exit a moment.)
        for _ in $(seq 50); do [ "$(monitors_of "$wid")" -eq 0 ] && break; sleep 0.1; done
        [ "$(monitors_of "$wid")" -eq 0 ] && ok "its monitor is gone" ||
            not_ok "rm left its monitor: $(ps -eo pid,args | grep "[b]erth-shim --id $wid")"
        grep -q "$wid" /proc/self/mountinfo && not_ok "rm left its mounts" || ok "and its mounts"
        [ ! -e "$T/run/containers/$wid" ] && ok "and its runtime dir" || not_ok "rm left $T/run/containers/$wid"
        ls -d /sys/fs/cgroup/*/berth/"$wid" /sys/fs/cgroup/berth/"$wid" >/dev/null 2>&1 &&
            not_ok "rm left its cgroups" || ok "and its cgroups"
        # Attached runs: streams through the hijacked connection, the exit code from wait.
        expect_exit 3 "docker run --rm exits with the container's code" d run --rm demo sh -c 'echo out; echo err >&2; exit 3'
        expect_grep "^out$" "$T/out" "stdout reaches stdout"
        expect_grep "^err$" "$T/err" "stderr reaches stderr"
        if grep -q err "$T/out"; then not_ok "stderr leaked into stdout"; else ok "stderr stays out of stdout"; fi
        echo piped-in >"$T/in"
        d run --rm -i demo cat <"$T/in" >"$T/out" 2>"$T/err" && ok "docker run -i" || not_ok "docker run -i: $(cat "$T/err")"
        expect_grep "^piped-in$" "$T/out" "stdin reaches the container and back"
        expect_exit 5 "docker run (not --rm)" d run --name lg demo sh -c 'echo one; echo two >&2; exit 5'
        expect_exit 0 "docker logs" d logs lg
        expect_grep "^one$" "$T/out" "logs: stdout"
        expect_grep "^two$" "$T/err" "logs: stderr, on stderr"
        expect_exit 0 "docker logs --tail 1" d logs --tail 1 lg
        [ ! -s "$T/out" ] && grep -q '^two$' "$T/err" && ok "--tail 1 gives the last line only" || not_ok "--tail 1: out '$(cat "$T/out")' err '$(cat "$T/err")'"
        expect_exit 0 "docker logs -t" d logs -t lg
        expect_grep "^20[0-9-]*T[0-9:.]*Z one$" "$T/out" "timestamps in front"
        expect_exit 5 "docker start -a of the exited container" d start -a lg
        expect_grep "^one$" "$T/out" "its output again"
        expect_exit 1 "docker exec into a stopped container" d exec lg true
        expect_grep "is not running" "$T/err" "says it is not running"
        expect_exit 0 "docker rm lg" d rm lg
        # ps filters and limits, as docker ps sends them.
        d run -d --name pfa -l tier=web demo sleep 100 >/dev/null
        d run --name pfb -l tier=db demo sh -c 'exit 4' >/dev/null 2>&1
        d create --name pfc demo true >/dev/null
        # (with name=^pf too: keys must all match, so other tests' containers stay out)
        psf() { d ps -a --filter "$1" --filter 'name=^pf' --format '{{.Names}}' | tr '\n' ' '; }
        [ "$(d ps -a --filter name=pfa --format '{{.Names}}')" = pfa ] && ok "ps --filter name" || not_ok "name=pfa"
        [ "$(d ps -a --filter 'name=^pf[ab]$' --format '{{.Names}}' | tr '\n' ' ')" = "pfb pfa " ] && ok "ps --filter name as a regular expression (values of one key: either)" || not_ok "name regex"
        [ "$(psf label=tier=db)" = "pfb " ] && ok "ps --filter label=KEY=VALUE" || not_ok "label: '$(psf label=tier=db)'"
        [ "$(psf label=tier)" = "pfb pfa " ] && ok "ps --filter label=KEY" || not_ok "label key: '$(psf label=tier)'"
        [ "$(psf exited=4)" = "pfb " ] && ok "ps --filter exited=CODE" || not_ok "exited: '$(psf exited=4)'"
        [ "$(psf since=pfa)" = "pfc pfb " ] && ok "ps --filter since" || not_ok "since: '$(psf since=pfa)'"
        [ "$(psf before=pfb)" = "pfa " ] && ok "ps --filter before" || not_ok "before: '$(psf before=pfb)'"
        [ "$(d ps --filter status=created --filter name=^pf --format '{{.Names}}')" = pfc ] && ok "a status filter looks past running ones without -a" || not_ok "status=created without -a"
        [ "$(d ps -l --format '{{.Names}}')" = pfc ] && ok "ps -l gives the newest" || not_ok "ps -l: $(d ps -l --format '{{.Names}}')"
        expect_exit 1 "an unknown filter" d ps --filter colour=blue
        expect_grep "invalid filter 'colour'" "$T/err" "is refused by name"
        d rm -f pfa pfb pfc >/dev/null
        # logs -f: what was there, then what comes, until the exit (the go-ahead file makes the
        # later lines come after the follower started, whatever the timing).
        expect_exit 0 "docker run -d, writing on a cue" d run -d --name fl demo sh -c 'echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after; echo after-err >&2; sleep 0.3; echo last'
        d logs -f fl >"$T/fl.out" 2>"$T/fl.err" &
        fpid=$!
        for _ in $(seq 50); do grep -q before "$T/fl.out" && break; sleep 0.1; done
        expect_grep "^before$" "$T/fl.out" "logs -f prints what was there at once"
        kill -0 $fpid 2>/dev/null && ok "logs -f stays while the container runs" || not_ok "logs -f ended early"
        d exec fl touch /tmp/go
        for _ in $(seq 100); do kill -0 $fpid 2>/dev/null || break; sleep 0.1; done
        wait $fpid && ok "logs -f ends when the container exits" || not_ok "logs -f failed or hung: $(cat "$T/fl.err")"
        expect_grep "^after$" "$T/fl.out" "logs -f gives lines written after it started"
        expect_grep "^last$" "$T/fl.out" "down to the last one before the exit"
        expect_grep "^after-err$" "$T/fl.err" "stderr stays stderr while following"
        expect_exit 0 "docker logs -f of an exited container" d logs -f --tail 1 fl
        expect_grep "^last$" "$T/out" "prints and returns"
        expect_exit 0 "docker logs --since in the future" d logs --since "$(($(date +%s) + 60))" fl
        [ ! -s "$T/out" ] && [ ! -s "$T/err" ] && ok "--since leaves out what came before" || not_ok "--since: '$(cat "$T/out")'"
        expect_exit 0 "docker logs --until in the past" d logs --until 2000-01-01T00:00:00Z fl
        [ ! -s "$T/out" ] && ok "--until leaves out what came after" || not_ok "--until: '$(cat "$T/out")'"
        d run -d --name fk demo sleep 100 >/dev/null
        d logs -f fk >/dev/null 2>&1 &
        fpid=$!
        sleep 0.3
        kill $fpid 2>/dev/null
        wait $fpid 2>/dev/null
        expect_exit 0 "the daemon serves after a follower went away" d ps
        d rm -f fl fk >/dev/null
        # Image transfers run in a berth helper process (docs/daemon.md).
        expect_exit 0 "docker save" d save -o "$T/demo.tar" demo:latest
        tar -tf "$T/demo.tar" | grep -q "manifest.json" && ok "save wrote a docker archive" || not_ok "no manifest.json in the saved tar"
        expect_exit 1 "docker save of nothing" d save -o "$T/none.tar" no-such-image
        expect_grep "no such image" "$T/err" "save names what is missing"
        expect_exit 0 "docker pull of the bundled demo image" d pull demo
        expect_grep "Status: .*demo:latest" "$T/out" "pull shows its progress messages"
        expect_exit 1 "docker pull of an image no registry here has" d pull localhost:1/nothing:here
        [ -s "$T/err" ] && ok "the pull failure says why" || not_ok "pull failed silently"
        expect_exit 0 "docker tag" d tag demo:latest demo:two
        expect_exit 0 "docker images after the tag" d images
        expect_grep "^demo  *two" "$T/out" "the new tag is listed"
        expect_exit 0 "docker rmi of one tag" d rmi demo:two
        expect_grep "Untagged: demo:two" "$T/out" "rmi untags"
        expect_exit 1 "docker rmi of nothing" d rmi no-such-image
        expect_grep "No such image" "$T/err" "says no such image"
        expect_exit 0 "docker system df" d system df
        expect_grep "^Images" "$T/out" "df has an Images line"
        d create --name leftover demo true >/dev/null
        expect_exit 0 "docker container prune" d container prune -f
        expect_grep "leftover\|[0-9a-f]\{64\}" "$T/out" "prune lists what it removed"
        expect_exit 1 "the pruned container is gone" d inspect leftover
        d create --name sp-left demo true >/dev/null
        expect_exit 0 "docker system prune" d system prune -f
        expect_grep "Total reclaimed space" "$T/out" "system prune reports what it reclaimed"
        expect_exit 1 "the stopped container went with it" d inspect sp-left
        expect_exit 0 "docker rmi demo before a load" d rmi demo:latest
        expect_exit 0 "docker load" d load -i "$T/demo.tar"
        expect_grep "Loaded image: demo:latest" "$T/out" "load says what it loaded"
        expect_exit 0 "docker images after the load" d images
        expect_grep "^demo  *latest" "$T/out" "the loaded image is there"
        # An archive over the 32 MiB a request body may hold in memory: spooled to a file as it comes.
        if python3 "$(dirname "$0")/../fixtures/make-oci-image.py" "$T/big" big >/dev/null 2>&1 &&
            tar -C "$T/big" -cf "$T/big.tar" .; then
            expect_exit 0 "docker load of a 50 MiB archive" d load -i "$T/big.tar"
            expect_grep "Loaded image ID: sha256:" "$T/out" "the big archive is loaded"
            ls "$T/run" | grep -q '^body-' && not_ok "a spool file stayed: $(ls "$T/run")" || ok "its spool file is gone"
            # A client that goes away mid-upload leaves no spool file behind.
            python3 - "$S" "$T/big.tar" <<'PY2'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
data = open(sys.argv[2], "rb").read()
s.sendall(b"POST /v1.50/images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: %d\r\n\r\n" % len(data))
s.sendall(data[: len(data) // 2])
s.close()
PY2
            sleep 0.3
            ls "$T/run" | grep -q '^body-' && not_ok "an abandoned upload left $(ls "$T/run" | grep body-)" || ok "an abandoned upload leaves no spool file"
        else
            echo "# SKIP big docker load: could not build the test image (python3, /bin/busybox)"
        fi
        expect_exit 0 "ps -a after all that" d ps -a
        expect_lines 1 "$T/out" "container prune removed the one berth created too (not running)"
    else
        echo "# SKIP container lifecycle through docker: real containers need root"
    fi
else
    echo "# SKIP docker images checks: BERTH_DEMO_IMAGE is not set"
fi
# Bad create bodies are 400, and the daemon goes on.
cat >"$T/bad.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
body = b'{"Image": "demo", "Cmd": ['
s.sendall(b"POST /v1.50/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
print(s.recv(4096).decode().split("\r\n")[0])
PY
python3 "$T/bad.py" "$S" >"$T/out" 2>&1
expect_grep "^HTTP/1.1 400" "$T/out" "a malformed create body is 400"
kill -0 "$dpid" 2>/dev/null && ok "berthd still serves at the end" || not_ok "berthd died: $(tail -5 "$T/dlog")"
finish
