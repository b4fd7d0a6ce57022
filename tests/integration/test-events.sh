#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The event log end to end: a berthd on a private socket and root, the real
# docker CLI following `docker events` while the berth CLI and the docker CLI
# (through berthd) change containers and images; each event must arrive, in
# order, with Docker's Type, Action, Actor.ID and attributes. Then past
# windows (--since/--until) through both CLIs, filters, a client vanishing
# mid-stream, bad input, and the retention bound.
# Usage: test-events.sh BERTH BERTHD
. "$(dirname "$0")/lib.sh"
BERTH=$1
BERTHD=$2
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
echo '{"plugin_dirs": [], "events": {"max": 300}}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
S=$T/d.sock
d() { docker -H "unix://$S" "$@"; }
# The same with a deadline, for the commands that must end by themselves.
bt() { timeout 20 "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
dt() { timeout 20 docker -H "unix://$S" "$@"; }
cleanup() {
    for p in ${fpid:-} ${f2pid:-}; do kill "$p" 2>/dev/null; done
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    lib_cleanup
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" -ne 0 ] || ! command -v docker >/dev/null 2>&1 || [ ! -d "${BERTH_DEMO_IMAGE:-}" ]; then
    echo "# SKIP: needs root, the docker CLI and BERTH_DEMO_IMAGE"
    finish
fi
b load -i "$BERTH_DEMO_IMAGE" >/dev/null 2>&1 || not_ok "cannot load the demo image"

"$BERTHD" -H "unix://$S" --config "$T/c.json" --root "$T/root" --runroot "$T/run" 2>"$T/dlog" &
dpid=$!
for _ in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
[ -S "$S" ] && ok "berthd listens" || not_ok "no socket: $(cat "$T/dlog")"

# check.py FILE [checks...]: the events in FILE (one JSON object a line), checked against
# "Type Action name-or-id [key=value...]" lines on stdin, which must appear in this order.
cat >"$T/check.py" <<'PY'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = [l.split() for l in sys.stdin if l.strip()]
i = 0
for w in want:
    typ, action, who = w[0], w[1].replace("+", " "), w[2]
    attrs = dict(kv.split("=", 1) for kv in w[3:])
    while i < len(evs):
        e = evs[i]; i += 1
        a = e["Actor"]["Attributes"]
        if (e["Type"] == typ and e["Action"] == action and who in (e["Actor"]["ID"], a.get("name"))
                and all(a.get(k) == v for k, v in attrs.items())):
            break
    else:
        print("missing (or out of order): %s" % " ".join(w))
        for e in evs:
            print("   have: %s %s %s %s" % (e["Type"], e["Action"], e["Actor"]["ID"][:12], e["Actor"]["Attributes"]))
        sys.exit(1)
PY
# wait_for FILE PATTERN: until the followed stream shows it (at most 10 s).
wait_for() {
    for _ in $(seq 100); do grep -q -- "$2" "$1" && return 0; sleep 0.1; done
    return 1
}
# The live stream, following from now on.
docker -H "unix://$S" events --format '{{json .}}' >"$T/live" 2>"$T/live.err" &
fpid=$!
sleep 0.5
T0=$(date +%s.%N)

# Events caused by the berth CLI (no daemon involved) ...
cid=$(b create --name made-by-berth demo sh -c 'exit 3')
b start made-by-berth >/dev/null
b wait made-by-berth >/dev/null
b rm made-by-berth >/dev/null
# ... and by the docker CLI through berthd.
d run --rm --name dock-rm demo true >/dev/null 2>&1
pid_c=$(d run -d --name dock-p --label tier=front demo sleep 100)
d pause dock-p >/dev/null
d unpause dock-p >/dev/null
d exec dock-p sh -c 'exit 5' >/dev/null 2>&1
d kill dock-p >/dev/null
d wait dock-p >/dev/null
d rm dock-p >/dev/null
d tag demo demo:ev >/dev/null
d rmi demo:ev >/dev/null
sleep 0.3
T1=$(date +%s.%N)
wait_for "$T/live" '"untag"' && ok "the followed stream got through to the last event" || not_ok "stream stalled: $(tail -3 "$T/live")"
python3 "$T/check.py" "$T/live" >"$T/out" 2>&1 <<EOF
container create $cid image=demo name=made-by-berth
container start $cid
container die $cid exitCode=3
container destroy $cid
container create dock-rm
container attach dock-rm
container start dock-rm
container die dock-rm exitCode=0
container destroy dock-rm
container create $pid_c name=dock-p tier=front
container start dock-p
container pause dock-p tier=front
container unpause dock-p
container exec_create:+sh+-c+exit+5 dock-p
container exec_start:+sh+-c+exit+5 dock-p
container exec_die dock-p exitCode=5
container kill dock-p signal=9
container die dock-p exitCode=137
container destroy dock-p
image tag demo:ev
image untag demo:ev
EOF
[ $? -eq 0 ] && ok "docker events saw the berth CLI's and berthd's events, in order, as Docker shapes them" || { not_ok "live events"; sed 's/^/    /' "$T/out" | head -40; }
python3 - "$T/live" <<'PY' && ok "status, id, from, scope and times are filled as moby does" || not_ok "deprecated members"
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    assert e["scope"] == "local" and e["time"] == e["timeNano"] // 10**9, e
    if e["Type"] == "container":
        assert e["status"] == e["Action"] and e["id"] == e["Actor"]["ID"] and e["from"] == "demo", e
PY
execid=$(python3 -c "
import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e['Action'].startswith('exec_create'): print(e['Actor']['Attributes']['execID'])" "$T/live")
[ ${#execid} -eq 64 ] && grep -q "\"exec_die\".*\"execID\":\"$execid\"" "$T/live" && ok "exec events name one exec id" || not_ok "exec ids: '$execid'"
kill "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
fpid=

# The past: exactly the window, and the command ends by itself.
python3 - "$T/live" "$T0" "$T1" >"$T/window.want" <<'PY'
import json, sys
lo, hi = (int(x.split(".")[0]) * 10**9 + int((x.split(".") + ["0"])[1].ljust(9, "0")[:9]) for x in sys.argv[2:4])
for l in open(sys.argv[1]):
    e = json.loads(l)
    if lo <= e["timeNano"] <= hi:
        print(e["timeNano"], e["Action"], e["Actor"]["ID"])
PY
dt events --since "$T0" --until "$T1" --format '{{json .}}' >"$T/win" 2>"$T/err"
[ $? -eq 0 ] && ok "docker events --since --until exits by itself" || not_ok "docker events --until: $(cat "$T/err")"
python3 -c "
import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l); print(e['timeNano'], e['Action'], e['Actor']['ID'])" "$T/win" >"$T/window.got"
if [ -s "$T/window.want" ] && cmp -s "$T/window.want" "$T/window.got"; then ok "docker events --since --until gives exactly the past window ($(wc -l <"$T/win") events)"; else
    not_ok "the window differs from what was followed"; diff "$T/window.want" "$T/window.got" | head -10
fi
bt events --since "$T0" --until "$T1" --format json >"$T/bwin" 2>"$T/err"
[ $? -eq 0 ] && ok "berth events --since --until exits by itself" || not_ok "berth events --until: $(cat "$T/err")"
# The same events with the same members (docker re-encodes them in its own member order).
python3 - "$T/win" "$T/bwin" <<'PY' && ok "berth events gives the same window, the same messages" || not_ok "berth and docker windows differ"
import json, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
sys.exit(0 if a and a == b else 1)
PY
bt events --since "$T0" --until "$T1" >"$T/btext" 2>&1
expect_grep "^20[0-9-]*T[0-9:]*\.[0-9]\{9\}Z container die $cid (execDuration=[0-9]*, exitCode=3, image=demo, name=made-by-berth)$" "$T/btext" "berth events prints docker's line format"
dt events --since "$T0" --until "$T1" >"$T/dtext" 2>&1
grep "container die $cid" "$T/dtext" | cut -d' ' -f2- >"$T/a"
grep "container die $cid" "$T/btext" | cut -d' ' -f2- >"$T/b"
[ -s "$T/a" ] && cmp -s "$T/a" "$T/b" && ok "and docker events prints the same line" || not_ok "lines differ: $(cat "$T/a") / $(cat "$T/b")"

# Filters.
dt events --since "$T0" --until "$T1" --filter event=die --format '{{.Action}}' >"$T/out" 2>&1
[ "$(sort -u "$T/out")" = die ] && [ "$(wc -l <"$T/out")" -eq 3 ] && ok "--filter event=die: the three dies" || not_ok "event=die: $(cat "$T/out")"
dt events --since "$T0" --until "$T1" --filter container=dock-p --format '{{.Actor.Attributes.name}}' >"$T/out" 2>&1
[ "$(sort -u "$T/out")" = dock-p ] && [ "$(wc -l <"$T/out")" -ge 10 ] && ok "--filter container=NAME: only that container's" || not_ok "container=: $(cat "$T/out")"
dt events --since "$T0" --until "$T1" --filter type=image --format '{{.Type}} {{.Action}}' >"$T/out" 2>&1
[ "$(tr '\n' ' ' <"$T/out")" = "image tag image untag " ] && ok "--filter type=image: tag and untag" || not_ok "type=image: $(cat "$T/out")"
dt events --since "$T0" --until "$T1" --filter label=tier=front --filter event=pause --format '{{.Action}}' >"$T/out" 2>&1
[ "$(cat "$T/out")" = pause ] && ok "label and event filters together" || not_ok "label+event: $(cat "$T/out")"
bt events --since "$T0" --until "$T1" --filter type=container --filter event=exec_start >"$T/out" 2>&1
expect_lines 1 "$T/out" "berth events: event=exec_start matches 'exec_start: <command>'"

# Without --until the berth CLI follows, sees what berthd does, and exits 0 on SIGINT.
"$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" events --format json >"$T/bfollow" 2>"$T/berr" &
f2pid=$!
sleep 0.5
d create --name late demo true >/dev/null
wait_for "$T/bfollow" '"late"' && ok "berth events follows what berthd commits" || not_ok "berth events saw nothing: $(cat "$T/berr")"
kill -INT "$f2pid"
for _ in $(seq 50); do kill -0 "$f2pid" 2>/dev/null || break; sleep 0.1; done
kill -9 "$f2pid" 2>/dev/null
wait "$f2pid"
rc=$?
f2pid=
[ "$rc" -eq 0 ] && ok "berth events exits 0 on SIGINT" || not_ok "berth events exit $rc"
grep -q '"create"' "$T/bfollow" && ! grep -q '"untag"' "$T/bfollow" && ok "without --since it shows only new events" || not_ok "follow showed the past"

# Many clients share one watch of the store, and it goes with the last of them.
watches() { cat /proc/"$dpid"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:'; }
w0=$(watches)
for i in 1 2 3; do docker -H "unix://$S" events >/dev/null 2>&1 & eval "cpid$i=\$!"; done
sleep 1
w3=$(watches)
kill "$cpid1" "$cpid2" "$cpid3"
wait "$cpid1" "$cpid2" "$cpid3" 2>/dev/null
sleep 0.5
wend=$(watches)
[ "$w0" -eq 0 ] && [ "$w3" -eq 1 ] && [ "$wend" -eq 0 ] && ok "three clients, one inotify watch; none once they left" || not_ok "inotify watches: $w0 before, $w3 with three clients, $wend after"

# Clients going away cost nothing: kill one mid-stream, drop a raw one, berthd serves on.
docker -H "unix://$S" events >/dev/null 2>&1 &
kpid=$!
sleep 0.4
kill -9 "$kpid"
wait "$kpid" 2>/dev/null
python3 - "$S" <<'PY'
import socket, sys
for _ in range(5):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall(b"GET /v1.50/events HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(100)
    s.close()
PY
d rm late >/dev/null
expect_exit 0 "docker version after clients vanished mid-stream" d version
kill -0 "$dpid" 2>/dev/null && ok "berthd still runs" || not_ok "berthd died: $(tail -5 "$T/dlog")"
dt events --since "$T1" --until "$(date +%s.%N)" --filter event=destroy --format '{{.Actor.Attributes.name}}' >"$T/out"
expect_grep "^late$" "$T/out" "the event after the vanished clients was recorded and served"

# The rest of the actions: oom before die, and an image saved, deleted and loaded again.
T2=$(date +%s.%N)
b run -d --name st1 demo sleep 100 >/dev/null
b stop -t 1 st1 >/dev/null
d run -d --name st2 demo sleep 100 >/dev/null
d stop -t 1 st2 >/dev/null
b rm st1 st2 >/dev/null
b run --rm --name hog -m 16m demo sh -c 'dd if=/dev/zero of=/dev/null bs=64M count=1' >/dev/null 2>&1
hog=$?
d save -o "$T/demo.tar" demo >/dev/null 2>&1
d rmi demo >/dev/null 2>&1
b load -i "$T/demo.tar" >/dev/null 2>&1
bt events --since "$T2" --until 0s --format json >"$T/more" 2>&1
# A stop, by the berth CLI or by berthd: the stop signal, SIGKILL past the timeout, die, stop.
python3 "$T/check.py" "$T/more" >"$T/out" 2>&1 <<EOF
container kill st1 signal=15
container kill st1 signal=9
container die st1 exitCode=137
container stop st1
container kill st2 signal=15
container kill st2 signal=9
container die st2 exitCode=137
container stop st2
EOF
[ $? -eq 0 ] && ok "berth stop and docker stop: kill, kill, die, stop" || { not_ok "stop events"; sed 's/^/    /' "$T/out" | head -20; }
if [ "$hog" -eq 137 ]; then
    python3 "$T/check.py" "$T/more" >"$T/out" 2>&1 <<EOF
container oom hog
container die hog exitCode=137
container destroy hog
EOF
    [ $? -eq 0 ] && ok "an OOM kill: oom, then die with 137" || { not_ok "oom events"; sed 's/^/    /' "$T/out" | head -20; }
else
    echo "# SKIP oom: the memory limit did not kill (exit $hog)"
fi
imgid=$(python3 -c "
import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e['Action'] == 'save': print(e['Actor']['ID'])" "$T/more")
python3 "$T/check.py" "$T/more" >"$T/out" 2>&1 <<EOF
image save $imgid name=demo
image untag $imgid name=demo:latest
image delete $imgid
image load $imgid name=demo:latest
EOF
[ $? -eq 0 ] && ok "image save, then untag and delete, then load" || { not_ok "image events"; sed 's/^/    /' "$T/out" | head -20; }

# Bad input: 400 with a message, nothing recorded.
n_before=$(bt events --since 1 --until 0s --format json | wc -l)
cat >"$T/bad.py" <<'PY'
import socket, sys
for q in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
    s.sendall(b"GET /v1.50/events?" + q.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    out = b""
    while b"\r\n\r\n" not in out or not out.rstrip().endswith(b"}"):
        d = s.recv(4096)
        if not d: break
        out += d
    print(out.split(b"\r\n")[0].decode(), out.split(b"\r\n\r\n", 1)[1].decode())
PY
python3 "$T/bad.py" "$S" "since=yesterday" "filters=%7Bbad" "filters=%7B%22colour%22%3A%5B%22red%22%5D%7D" "since=200&until=100" >"$T/out" 2>&1
[ "$(grep -c '^HTTP/1.1 400 ' "$T/out")" -eq 4 ] && ok "bad since, filters JSON, filter key, since after until: 400" || not_ok "bad input: $(cat "$T/out")"
expect_grep "invalid filter 'colour'" "$T/out" "an unknown filter is named"
expect_exit 2 "berth events --since garbage" b events --since yesterday
expect_grep "failed to parse value as time or duration" "$T/err" "says what it could not parse"
expect_lines 1 "$T/err" "in one line"
expect_exit 2 "berth events --filter without =" b events --filter die
expect_exit 2 "berth events --since after --until" b events --since 200 --until 100
n_after=$(bt events --since 1 --until 0s --format json | wc -l)
[ "$n_before" -eq "$n_after" ] && ok "refused requests recorded nothing" || not_ok "events $n_before -> $n_after"

# Retention: the store keeps the newest events.max (300 here) however many come.
i=0
while [ $i -lt 160 ]; do b tag demo "demo:r$i" >/dev/null && b rmi "demo:r$i" >/dev/null; i=$((i + 1)); done
n=$(bt events --since 1 --until 0s --format json | wc -l)
[ "$n" -eq 300 ] && ok "after $((n_after + 320)) events the log holds the newest 300" || not_ok "the log holds $n events"
dt events --since 1 --until "$(date +%s.%N)" --format '{{.Action}}' >"$T/out"
[ "$(wc -l <"$T/out")" -eq 300 ] && [ "$(tail -1 "$T/out")" = untag ] && ok "docker events sees the same bounded log, newest last" || not_ok "docker sees $(wc -l <"$T/out")"
kill -0 "$dpid" 2>/dev/null && ok "berthd still serves at the end" || not_ok "berthd died"
finish
