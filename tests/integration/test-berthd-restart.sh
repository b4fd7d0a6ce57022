#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# berthd's supervision and restarts, through the real docker CLI: restart
# policies (on-failure:N, always, unless-stopped, no) with RestartCount and
# stops by hand; docker restart; health checks (--health-*, timeouts, the
# probe log, ps); containers the berth CLI started; the
# policies' rules when berthd itself starts; and live restore: SIGKILL
# berthd with 100 containers running, start it again, and it serves and
# reattaches (ps, logs -f, wait, stop, attach) while the containers never
# noticed.
# Usage: test-berthd-restart.sh BERTH BERTHD
. "$(dirname "$0")/lib.sh"
BERTH=$1
BERTHD=$2
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
if [ "$(id -u)" -ne 0 ]; then
    echo "# SKIP: real containers need root"
    exit 77
fi
if [ -z "${BERTH_DEMO_IMAGE:-}" ] || [ ! -d "$BERTH_DEMO_IMAGE" ]; then
    echo "# SKIP: BERTH_DEMO_IMAGE is not set (the bundled demo image is built with the project)"
    exit 77
fi
if ! command -v docker >/dev/null 2>&1; then
    echo "# SKIP: no docker CLI on this machine"
    exit 77
fi
echo '{"plugin_dirs": []}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
S=$T/d.sock
d() { docker -H "unix://$S" "$@"; }
start_berthd() {
    "$BERTHD" -H "unix://$S" --config "$T/c.json" --root "$T/root" --runroot "$T/run" 2>>"$T/dlog" &
    dpid=$!
    for _ in $(seq 100); do d version >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}
cleanup() {
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    b ps -aq 2>/dev/null | xargs -r -n 50 "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" rm -f >/dev/null 2>&1
    lib_cleanup
}
trap cleanup EXIT
# inspect_is NAME FORMAT WANT TRIES: poll (0.1 s apart) until docker inspect -f FORMAT gives WANT.
inspect_is() {
    n=${4:-100}
    while [ "$n" -gt 0 ]; do
        [ "$(d inspect -f "$2" "$1" 2>/dev/null)" = "$3" ] && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

b load -i "$BERTH_DEMO_IMAGE" >/dev/null 2>&1
start_berthd && ok "berthd serves" || not_ok "berthd did not start: $(cat "$T/dlog")"

# on-failure:2: two restarts, then it stays exited; each run wrote its line.
expect_exit 0 "run -d --restart on-failure:2" d run -d --name of --restart on-failure:2 demo sh -c 'echo ran; exit 3'
inspect_is of '{{.RestartCount}} {{.State.Status}}' '2 exited' && ok "on-failure:2 restarted twice, then gave up" ||
    not_ok "on-failure:2: $(d inspect -f '{{.RestartCount}} {{.State.Status}}' of)"
sleep 1
expect_exit 0 "inspect after a while" d inspect -f '{{.RestartCount}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}' of
expect_grep "^2 3 on-failure:2$" "$T/out" "no third restart; the exit code and the policy are shown"
d logs of >"$T/logs" 2>&1
expect_lines 3 "$T/logs" "three runs, three lines in the logs"
# on-failure does not restart a success.
d run -d --name ok0 --restart on-failure demo true >/dev/null
inspect_is ok0 '{{.State.Status}}' exited && sleep 1
expect_exit 0 "inspect of a successful on-failure container" d inspect -f '{{.RestartCount}}' ok0
expect_grep "^0$" "$T/out" "exit 0 is not a failure: no restart"

# always: restarted after a success too; a stop by hand sticks; a start by hand resets the count.
expect_exit 0 "run -d --restart always" d run -d --name al --restart always demo sh -c 'sleep 0.3'
inspect_is al '{{ge .RestartCount 2}}' true && ok "always restarts a container that ended well" ||
    not_ok "always: RestartCount $(d inspect -f '{{.RestartCount}}' al)"
expect_exit 0 "docker stop of an always container" d stop -t 1 al
sleep 1.5
expect_exit 0 "inspect after the stop" d inspect -f '{{.State.Status}} {{.State.ManualStop}}' al
expect_grep "^exited true$" "$T/out" "a stop by hand is not undone by the policy"
expect_exit 0 "docker start by hand" d start al
expect_exit 0 "inspect after the start" d inspect -f '{{.RestartCount}} {{.State.ManualStop}}' al
expect_grep "^0 false$" "$T/out" "a start by hand resets RestartCount and the stop by hand"
expect_exit 0 "docker kill of an always container" d kill al
sleep 1.5
expect_exit 0 "inspect after the kill" d inspect -f '{{.State.Status}}' al
expect_grep "^exited$" "$T/out" "a kill by hand is a stop by hand too"

# no: nothing happens.
d run -d --name nop demo true >/dev/null
inspect_is nop '{{.State.Status}}' exited
sleep 1
expect_exit 0 "inspect of a no-policy container" d inspect -f '{{.RestartCount}} {{.State.Status}}' nop
expect_grep "^0 exited$" "$T/out" "no policy, no restart"

# Bad policies are refused with one line, and nothing is created.
expect_exit 125 "an unknown policy" d run -d --name badp --restart sometimes demo true
expect_grep "invalid restart policy" "$T/err" "the refusal names the policy"
expect_exit 1 "nothing was created" d inspect badp
expect_exit 125 "a retry count without on-failure" d run -d --name badp --restart always:3 demo true
expect_grep "on-failure" "$T/err" "says it is for on-failure"
expect_exit 125 "berth run --rm --restart always is refused" b run --rm --restart always demo true
expect_grep "both --restart and --rm" "$T/err" "says why"

# A container the berth CLI starts is supervised too (berthd finds it on its rescan).
b create --name fromcli --restart always demo sh -c 'sleep 0.3' >/dev/null
expect_exit 0 "berth start of an always container while berthd runs" b start fromcli
inspect_is fromcli '{{ge .RestartCount 1}}' true && ok "berthd restarts what the berth CLI started" ||
    not_ok "fromcli: RestartCount $(d inspect -f '{{.RestartCount}}' fromcli)"
b stop -t 1 fromcli >/dev/null
sleep 1.5
expect_exit 0 "inspect after berth stop" d inspect -f '{{.State.Status}}' fromcli
expect_grep "^exited$" "$T/out" "berth stop is a stop by hand for berthd too"

# docker restart: a running container gets a new process; an exited one starts.
d run -d --name rs demo sleep 100 >/dev/null
before=$(d inspect -f '{{.State.Pid}}' rs)
expect_exit 0 "docker restart of a running container" d restart -t 1 rs
after=$(d inspect -f '{{.State.Pid}} {{.State.Status}}' rs)
[ "${after% *}" != "$before" ] && [ "${after#* }" = running ] && ok "restart gave it a new process" ||
    not_ok "restart: pid $before -> $after"
d stop -t 0 rs >/dev/null
expect_exit 0 "docker restart of a stopped container" d restart rs
expect_exit 0 "inspect after restarting a stopped one" d inspect -f '{{.State.Status}}' rs
expect_grep "^running$" "$T/out" "it runs"
expect_exit 1 "docker restart of nothing" d restart no-such-container
expect_grep "No such container" "$T/err" "says no such container"
d rm -f rs al of ok0 nop fromcli >/dev/null 2>&1

# berthd's own start: containers that exited while no berthd ran.
d run -d --name us --restart unless-stopped demo sh -c 'while [ ! -e /tmp/stop ]; do sleep 0.05; done; exit 1' >/dev/null
d run -d --name us-stopped --restart unless-stopped demo sleep 100 >/dev/null
d run -d --name al-stopped --restart always demo sleep 100 >/dev/null
d stop -t 0 us-stopped al-stopped >/dev/null
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
b exec us touch /tmp/stop
for _ in $(seq 50); do b inspect us 2>/dev/null | grep -q '"Status": "exited"' && break; sleep 0.1; done
b inspect us 2>/dev/null | grep -q '"Status": "exited"' && ok "the container exited while berthd was down" ||
    not_ok "us did not exit: $(b inspect us 2>&1 | grep Status)"
start_berthd && ok "berthd starts again after SIGKILL" || not_ok "berthd did not restart: $(tail -5 "$T/dlog")"
# (/tmp/stop stays in its writable layer, so each restart ends at once: count them.)
inspect_is us '{{ge .RestartCount 1}}' true && ok "unless-stopped: restarted when berthd starts" ||
    not_ok "us: $(d inspect -f '{{.State.Status}} {{.RestartCount}}' us)"
inspect_is al-stopped '{{.State.Status}}' running && ok "always: restarted when berthd starts, even after a stop by hand" ||
    not_ok "al-stopped: $(d inspect -f '{{.State.Status}}' al-stopped)"
expect_exit 0 "inspect of the unless-stopped one stopped by hand" d inspect -f '{{.State.Status}}' us-stopped
expect_grep "^exited$" "$T/out" "unless-stopped after a stop by hand stays stopped"
d rm -f us us-stopped al-stopped >/dev/null

# Health checks: run by berthd while the container runs; inspect and ps show them.
expect_exit 0 "run -d with --health-*" d run -d --name hc --health-cmd 'test -e /tmp/ok && echo fine' --health-interval 200ms --health-retries 2 demo sleep 100
expect_exit 0 "ps right after" d ps --format '{{.Names}} {{.Status}}'
expect_grep "^hc Up .*(health: starting)$" "$T/out" "health: starting at first"
inspect_is hc '{{.State.Health.Status}}' unhealthy && ok "two failures in a row: unhealthy" ||
    not_ok "hc: $(d inspect -f '{{json .State.Health}}' hc)"
expect_exit 0 "ps of an unhealthy container" d ps --format '{{.Names}} {{.Status}}'
expect_grep "^hc Up .*(unhealthy)$" "$T/out" "ps says unhealthy"
d exec hc touch /tmp/ok
inspect_is hc '{{.State.Health.Status}} {{.State.Health.FailingStreak}}' 'healthy 0' && ok "one success: healthy again" ||
    not_ok "hc: $(d inspect -f '{{json .State.Health}}' hc)"
inspect_is hc '{{len .State.Health.Log}}' 5 && sleep 0.5
expect_exit 0 "inspect the health log" d inspect -f '{{len .State.Health.Log}} {{(index .State.Health.Log 4).ExitCode}} {{(index .State.Health.Log 4).Output}}' hc
expect_grep "^5 0 fine$" "$T/out" "the last five probes are kept, with their output"
b ps >"$T/bps" 2>&1
expect_grep "(healthy)" "$T/bps" "berth ps shows the health too"
d rm -f hc >/dev/null
d run -d --name slow --health-cmd 'sleep 5' --health-interval 100ms --health-timeout 300ms --health-retries 1 demo sleep 100 >/dev/null
inspect_is slow '{{.State.Health.Status}}' unhealthy && ok "a probe past its timeout is a failure" ||
    not_ok "slow: $(d inspect -f '{{json .State.Health}}' slow)"
expect_exit 0 "inspect the timed-out probe" d inspect -f '{{(index .State.Health.Log 0).Output}}' slow
expect_grep "exceeded timeout" "$T/out" "its log says why"
d rm -f slow >/dev/null
expect_exit 0 "berth run -d --health-cmd" b run -d --name bhc --health-cmd true --health-interval 200ms demo sleep 100
inspect_is bhc '{{.State.Health.Status}}' healthy && ok "berthd checks what the berth CLI started" ||
    not_ok "bhc: $(d inspect -f '{{json .State.Health}}' bhc)"
expect_exit 0 "docker run --no-healthcheck" d run -d --name nohc --no-healthcheck demo sleep 100
sleep 0.5
expect_exit 0 "inspect without a check" d inspect -f '{{.State.Health}}' nohc
expect_grep "^<nil>$" "$T/out" "no health without a check"
expect_exit 125 "a bad --health-interval" b run -d --health-interval soon demo true
expect_grep "invalid --health-interval value" "$T/err" "the refusal names the option"
d rm -f bhc nohc >/dev/null

# Live restore: 100 running containers; berthd SIGKILLed and started again.
i=0
while [ $i -lt 100 ]; do
    b run -d --name "lr$i" demo sh -c 'while :; do echo tick; sleep 0.2; done' >/dev/null 2>>"$T/lr.err" || break
    i=$((i + 1))
done
[ $i -eq 100 ] && ok "100 containers running" || not_ok "only $i containers started: $(tail -3 "$T/lr.err")"
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
sleep 0.3
b ps -q >"$T/ps"
expect_lines 100 "$T/ps" "all 100 still run with berthd gone"
start_berthd && ok "berthd serves again" || not_ok "berthd did not come back"
expect_exit 0 "docker ps after the restart" d ps -q
expect_lines 100 "$T/out" "docker ps shows the 100"
d logs -f lr7 >"$T/follow" 2>&1 &
fpid=$!
sleep 0.6
kill -0 $fpid 2>/dev/null && ok "logs -f follows a container that outlived berthd" || not_ok "logs -f ended: $(cat "$T/follow")"
d wait lr7 >"$T/wait" 2>&1 &
wpid=$!
sleep 0.2
expect_exit 0 "docker stop of a restored container" d stop -t 1 lr7
wait $wpid && ok "docker wait of a restored container returns" || not_ok "wait failed: $(cat "$T/wait")"
expect_grep "^137$\|^143$" "$T/wait" "with its exit code"
for _ in $(seq 30); do kill -0 $fpid 2>/dev/null || break; sleep 0.1; done
wait $fpid && ok "logs -f ends with the container" || not_ok "logs -f did not end"
expect_grep "tick" "$T/follow" "and showed its output"
echo hello-attach | timeout 10 docker -H "unix://$S" attach lr8 >"$T/att" 2>&1 &
apid=$!
sleep 0.5
kill -0 $apid 2>/dev/null && ok "docker attach to a restored container holds" || not_ok "attach ended: $(cat "$T/att")"
d kill lr8 >/dev/null
wait $apid 2>/dev/null
expect_grep "tick" "$T/att" "attach relayed its output"
b ps -aq | xargs -r -n 50 "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" rm -f >/dev/null 2>"$T/rm.err"
expect_exit 0 "ps after removing them" d ps -aq
expect_lines 0 "$T/out" "nothing left"
[ -s "$T/rm.err" ] && sed 's/^/    rm: /' "$T/rm.err" | head -5
kill -0 "$dpid" 2>/dev/null && ok "berthd still serves at the end" || not_ok "berthd died: $(tail -5 "$T/dlog")"
finish
