#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Real containers through the berth CLI with the process isolation driver
# and berth-shim: exit codes, streams, the lifecycle commands and their
# refusals, limits, and containers outliving a killed CLI.
# Usage: test-run.sh BERTH_BINARY MAKE_ROOTFS_SCRIPT   (as root)
. "$(dirname "$0")/lib.sh"
BERTH=$1
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: real containers need root"
    exit 77
fi
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
sh "$2" "$T/rootfs" >/dev/null || { echo "could not build the busybox rootfs"; exit 1; }
echo '{"plugin_dirs": []}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
R="--rootfs $T/rootfs"
cleanup() { for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done; lib_cleanup; }
trap cleanup EXIT

# The init is in the container's cgroup in every hierarchy berth manages
# (each v1 controller and the v2 tree; named ones like systemd's are
# systemd's): it joins v1 itself and clone3 places it in v2, so a hierarchy
# it failed to join would show the CLI's or the monitor's cgroup.
in_own_cgroups() { # PID ID LABEL
    n=0 bad=
    while IFS=: read -r _ ctrl path; do
        case $ctrl in name=*) continue ;; esac
        n=$((n + 1))
        case $path in */berth/$2) ;; *) bad="$bad ${ctrl:-v2}=$path" ;; esac
    done <"/proc/$1/cgroup"
    [ "$n" -gt 0 ] && [ -z "$bad" ] && ok "$3: init in berth/<id> in all $n hierarchies" ||
        not_ok "$3: init outside its cgroups:$bad"
}

# start -a of an exited container runs it again, attached
expect_exit 4 "run, exit 4" b run --name again $R sh -c 'echo hi; exit 4'
expect_exit 4 "start -a of the exited container" b start -a again
expect_grep "^hi$" "$T/out" "start -a shows its output"
b rm again >/dev/null

# exit codes and streams
expect_exit 3 "run exits with the container's code" b run --rm $R sh -c 'echo out; echo err >&2; exit 3'
expect_grep "^out$" "$T/out" "stdout reaches stdout"
expect_grep "^err$" "$T/err" "stderr reaches stderr"
expect_exit 127 "missing command exits 127" b run --rm $R nosuchcmd
expect_grep 'executable file not found' "$T/err" "missing command named"
expect_exit 126 "non-executable command exits 126" b run --rm $R /etc/passwd
expect_exit 125 "a berth error exits 125" b run --rm --isolation warp $R true
[ "$(b ps -aq | wc -l)" -eq 0 ] && ok "--rm left no containers, also after failures" || not_ok "--rm left $(b ps -aq | wc -l)"

# what the container sees
expect_exit 0 "PID 1 inside" b run --rm $R sh -c 'echo $$'
expect_grep "^1$" "$T/out" "the command is PID 1"
expect_exit 0 "own hostname" b run --rm -h boxy $R hostname
expect_grep "^boxy$" "$T/out" "hostname set"
expect_exit 0 "only fds 0-2" b run --rm $R sh -c 'ls /proc/self/fd'
[ "$(tr '\n' ' ' <"$T/out")" = "0 1 2 3 " ] && ok "only 0 1 2 (and ls's own) are open" || not_ok "fds: $(tr '\n' ' ' <"$T/out")"
# The monitor ignores SIGPIPE; the program must not inherit that (nor any mask).
expect_exit 0 "signal state" b run --rm $R grep -E '^Sig(Ign|Blk):' /proc/self/status
expect_grep "^SigIgn:.0000000000000000$" "$T/out" "no signal ignored at the start"
expect_grep "^SigBlk:.0000000000000000$" "$T/out" "no signal blocked at the start"
expect_exit 0 "user switching" b run --rm -u 1000:1000 $R id -u
expect_grep "^1000$" "$T/out" "runs as uid 1000"
expect_exit 0 "env and workdir" b run --rm -e FOO=bar -w /tmp $R sh -c 'echo $FOO; pwd'
expect_grep "^bar$" "$T/out" "env set"
expect_grep "^/tmp$" "$T/out" "workdir set"
expect_exit 0 "stdin with -i" sh -c "echo piped | '$BERTH' --config '$T/c.json' --root '$T/root' --runroot '$T/run' run -i --rm $R cat"
expect_grep "^piped$" "$T/out" "stdin reaches the container"

expect_exit 0 "--network none: only lo" b run --rm --network none $R ls /sys/class/net
[ "$(cat "$T/out")" = "lo" ] && ok "only lo with --network none" || not_ok "interfaces: $(cat "$T/out")"
expect_exit 0 "--network host" b run --rm --network host $R ls /sys/class/net
[ "$(wc -l <"$T/out")" -eq "$(ls /sys/class/net | wc -l)" ] && ok "--network host sees the host's interfaces" || not_ok "host net"

# mounts and the root filesystem
mkdir -p "$T/share" && echo from-host >"$T/share/file"
expect_exit 0 "bind mount -v" b run --rm -v "$T/share:/data" $R sh -c 'cat /data/file; echo from-ctr > /data/back'
expect_grep "^from-host$" "$T/out" "the container reads the bind mount"
[ "$(cat "$T/share/back" 2>/dev/null)" = "from-ctr" ] && ok "the host sees the container's write" || not_ok "no write-back"
expect_exit 1 "read-only bind mount -v :ro" b run --rm -v "$T/share:/data:ro" $R sh -c 'echo x > /data/nope'
[ ! -e "$T/share/nope" ] && ok ":ro kept the host dir unchanged" || not_ok ":ro allowed a write"
expect_exit 1 "--read-only rootfs" b run --rm --read-only $R touch /newfile
[ ! -e "$T/rootfs/newfile" ] && ok "--read-only kept the rootfs unchanged" || not_ok "--read-only allowed a write"
expect_exit 0 "--tmpfs" b run --rm --read-only --tmpfs /scratch:size=1m $R sh -c 'echo ok > /scratch/f && cat /scratch/f && grep " /scratch " /proc/mounts'
expect_grep "tmpfs" "$T/out" "the tmpfs is mounted"
mkdir -p "$T/rootfs/mnt" && ln -sfn / "$T/rootfs/mnt/escape"
expect_exit 0 "a rootfs symlink to / as a -v target" b run --rm -v "$T/share:/mnt/escape/berth-escape-$$" $R true
[ ! -e "/berth-escape-$$" ] && ok "the mount landed inside the rootfs, not on the host's /" || { not_ok "mount escaped to /berth-escape-$$"; umount "/berth-escape-$$"; rmdir "/berth-escape-$$"; }
rm -f "$T/rootfs/mnt/escape"; rmdir "$T/rootfs/berth-escape-$$" 2>/dev/null
# Limits land in the container's cgroup, read from the host (v1 or v2 layout).
expect_exit 0 "--cpus, --pids-limit, -m, --cpu-shares" b run -d --name lim --cpus 0.5 --pids-limit 33 -m 48m --cpu-shares 512 $R sleep 100
cid=$(b inspect lim | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')
cat /sys/fs/cgroup/cpu/berth/$cid/cpu.cfs_quota_us /sys/fs/cgroup/cpu,cpuacct/berth/$cid/cpu.cfs_quota_us \
    /sys/fs/cgroup/berth/$cid/cpu.max /sys/fs/cgroup/pids/berth/$cid/pids.max /sys/fs/cgroup/berth/$cid/pids.max \
    /sys/fs/cgroup/memory/berth/$cid/memory.limit_in_bytes /sys/fs/cgroup/berth/$cid/memory.max \
    /sys/fs/cgroup/cpu/berth/$cid/cpu.shares /sys/fs/cgroup/cpu,cpuacct/berth/$cid/cpu.shares \
    /sys/fs/cgroup/berth/$cid/cpu.weight >"$T/limits" 2>/dev/null
expect_grep "^50000" "$T/limits" "--cpus 0.5 is a 50000/100000 us quota"
expect_grep "^33$" "$T/limits" "--pids-limit in pids.max"
expect_grep "^50331648$" "$T/limits" "-m 48m in the memory limit"
# cpu.shares on v1; on v2 the weight converted from 512 shares
grep -qx "512" "$T/limits" || grep -qx "20" "$T/limits" && ok "--cpu-shares 512 applied" || not_ok "--cpu-shares not applied: $(tr '\n' ' ' <"$T/limits")"
b rm -f lim >/dev/null

# a background container through its lifecycle
expect_exit 0 "run -d" b run -d --name bg $R sh -c 'trap "echo got-term; exit 42" TERM; echo started; while true; do sleep 1; done'
# A name taken: run's monitor, already setting the container up while the
# record was being written, undoes everything (no bundle, cgroup, process).
before_dirs=$(ls "$T/run/containers" | sort | tr '\n' ' ')
before_cg=$(find /sys/fs/cgroup -maxdepth 3 -path '*/berth/*' -type d 2>/dev/null | wc -l)
before_shims=$(pgrep -c -f "berth-shim.*--root $T/root" || true)
expect_exit 125 "run with a name in use" b run --name bg $R true
expect_grep 'already in use' "$T/err" "the refusal says the name is in use"
expect_exit 125 "run -d with a name in use" b run -d --name bg $R true
sleep 0.2
[ "$(ls "$T/run/containers" | sort | tr '\n' ' ')" = "$before_dirs" ] && ok "no bundle left by the refused runs" || not_ok "bundles: $(ls "$T/run/containers")"
[ "$(find /sys/fs/cgroup -maxdepth 3 -path '*/berth/*' -type d 2>/dev/null | wc -l)" = "$before_cg" ] && ok "no cgroup left by the refused runs" || not_ok "cgroups left"
[ "$(pgrep -c -f "berth-shim.*--root $T/root" || true)" = "$before_shims" ] && ok "no monitor left by the refused runs" || not_ok "monitors: $(pgrep -a -f "berth-shim.*--root $T/root")"
# A monitor that starts late finds the engine's answer (committed or not)
# already queued behind the record: both cases still work.
real_shim=${BERTH_SHIM_PATH:-}
if [ -n "$real_shim" ] && [ -x "$real_shim" ]; then
    printf '#!/bin/sh\nsleep 0.3\nexec "%s" "$@"\n' "$real_shim" >"$T/slow-shim"
    chmod +x "$T/slow-shim"
    BERTH_SHIM_PATH="$T/slow-shim" expect_exit 0 "run with a slow monitor" b run --rm $R echo slow-ok
    expect_grep "^slow-ok$" "$T/out" "its output arrives"
    BERTH_SHIM_PATH="$T/slow-shim" expect_exit 125 "a refused run with a slow monitor" b run --name bg $R true
    sleep 0.5
    [ "$(ls "$T/run/containers" | sort | tr '\n' ' ')" = "$before_dirs" ] && ok "the slow monitor left no bundle" || not_ok "bundles: $(ls "$T/run/containers")"
else
    echo "# SKIP slow-monitor checks: BERTH_SHIM_PATH is not set"
fi
expect_exit 0 "ps" b ps
expect_grep "bg" "$T/out" "ps shows the running container"
expect_exit 1 "start a running container" b start bg
expect_grep "is already running" "$T/err" "start refusal names the state"
expect_exit 1 "rm a running container" b rm bg
expect_grep "stop the container before removing or force remove" "$T/err" "rm refusal"
expect_exit 5 "exec exit code" b exec bg sh -c 'echo in-exec; exit 5'
expect_grep "^in-exec$" "$T/out" "exec output"
expect_exit 127 "exec of a missing command" b exec bg nosuchcmd
expect_exit 0 "top" b top bg
expect_grep "while true" "$T/out" "top lists the container's shell"
expect_exit 0 "stats --no-stream" b stats --no-stream --format json bg
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert s["name"] == "bg" and s["pids"]["current"] >= 1 and s["memory"]["usage"] > 0, s
' "$T/out" && ok "stats has memory and pids" || not_ok "stats json"
# ps --format: docker's templates over ps's fields, plain and as a table.
expect_exit 0 "ps --format TEMPLATE" b ps --format '{{.Names}}|{{.State}}|{{.Command}}'
expect_grep '^bg|running|"sh -c trap' "$T/out" "ps --format renders each container"
expect_exit 0 "ps --format 'table ...'" b ps --format 'table {{.Names}}\t{{.State}}'
expect_grep '^NAMES  *STATE$' "$T/out" "a table template has docker's header"
expect_grep '^bg  *running$' "$T/out" "and aligned columns"
# inspect -f: docker's templates over what inspect shows.
expect_exit 0 "inspect -f" b inspect -f '{{.State.Status}} {{.Name}} {{json .Config.Cmd}} {{if .State.Running}}up{{end}}' bg
expect_grep '^running /bg \["sh","-c",".*"\] up$' "$T/out" "inspect -f renders the template"
expect_exit 0 "inspect -f with range and index" b inspect -f '{{range $i, $a := .Config.Cmd}}{{if eq $i 1}}{{$a}}{{end}}{{end}}|{{index .Config.Cmd 0}}' bg
expect_grep '^-c|sh$' "$T/out" "range with variables and index"
expect_exit 2 "inspect -f with a broken template" b inspect -f '{{.State.Pid' bg
expect_grep "template: unclosed action" "$T/err" "the refusal says what is wrong"
expect_exit 0 "network inspect -f" b network inspect -f '{{.Name}}:{{.Driver}}' none host
expect_grep '^none:null$' "$T/out" "network inspect -f, first"
expect_grep '^host:host$' "$T/out" "network inspect -f, second"
expect_exit 0 "pause" b pause bg
expect_exit 0 "inspect paused" b inspect bg
expect_grep '"Paused": true' "$T/out" "inspect says paused"
expect_exit 1 "exec into a paused container" b exec bg true
expect_grep "unpause the container before exec" "$T/err" "exec refusal"
expect_exit 0 "unpause" b unpause bg
expect_exit 0 "pause again" b pause bg
# stop of a paused container: its stop signal, then the unpause (Docker's way): the trap runs.
expect_exit 0 "stop the paused container (the trap exits 42)" b stop bg
expect_exit 0 "wait" b wait bg
expect_grep "^42$" "$T/out" "wait prints the exit code"
expect_exit 0 "logs" b logs bg
expect_grep "^started$" "$T/out" "logs have the output"
expect_grep "^got-term$" "$T/out" "logs have the last words"
expect_exit 1 "exec into a stopped container" b exec bg true
expect_exit 0 "rm" b rm bg

# Arguments that are not UTF-8 can't travel as JSON: refused with a reason, not dropped.
expect_exit 125 "run with a command that is not UTF-8" b run --rm $R "$(printf '/bin/\377x')"
expect_grep "argument .* is not valid UTF-8" "$T/err" "says which argument"
expect_exit 125 "run -w that is not UTF-8" b run --rm -w "$(printf '/\377')" $R true
expect_grep "not valid UTF-8" "$T/err" "-w refused, not dropped"
printf 'A=1\nB=\377\n' >"$T/bad.env"
expect_exit 125 "run --env-file with a line that is not UTF-8" b run --rm --env-file "$T/bad.env" $R true
expect_grep "bad.env:2: not valid UTF-8" "$T/err" "names the file and line"
expect_exit 2 "exec with an argument that is not UTF-8" b exec no-such "$(printf '\377')"
expect_grep "not valid UTF-8" "$T/err" "exec says so"

# stop escalates to SIGKILL for a process that ignores SIGTERM (PID 1 without a handler)
expect_exit 0 "run -d sleeper" b run -d --name sleeper $R sleep 1000
expect_exit 0 "stop -t 1" b stop -t 1 sleeper
expect_exit 0 "wait sleeper" b wait sleeper
expect_grep "^137$" "$T/out" "killed after the timeout: 137"
expect_exit 0 "rm -f of a stopped container" b rm -f sleeper

# rm -f of a running one, kill -s
expect_exit 0 "run -d victim" b run -d --name victim $R sleep 1000
expect_exit 0 "rm -f running" b rm -f victim
[ "$(b ps -aq | wc -l)" -eq 0 ] && ok "rm -f removed it" || not_ok "still there"
expect_exit 0 "run -d trapper" b run -d --name trapper $R sh -c 'trap "exit 7" USR1; while true; do sleep 1; done'
expect_exit 0 "kill -s USR1" b kill -s USR1 trapper
expect_exit 0 "wait trapper" b wait trapper
expect_grep "^7$" "$T/out" "the signal reached the trap"
b rm trapper >/dev/null

# limits
expect_exit 137 "memory limit: OOM-killed" b run --name oom -m 32m --memory-swap 32m $R sh -c 'x=a; while true; do x=$x$x; done'
expect_exit 0 "inspect oom" b inspect oom
expect_grep '"OOMKilled": true' "$T/out" "OOMKilled recorded"
b rm oom >/dev/null
# As Docker: a child killed by the OOM killer marks the container OOMKilled, even when its init
# goes on and exits 0 (the child volunteers with oom_score_adj, so the killer picks it, not the
# shell); and a container with no OOM kill is not marked.
expect_exit 0 "memory limit: a child OOM-killed, the shell exits 0" b run --name oomchild -m 32m --memory-swap 32m $R sh -c '(echo 1000 >/proc/self/oom_score_adj; exec sh -c "head -c 200m /dev/zero | tail"); echo tail-$?'
expect_grep "^tail-137$" "$T/out" "the child was killed"
expect_exit 0 "inspect oomchild" b inspect oomchild
expect_grep '"OOMKilled": true' "$T/out" "OOMKilled recorded for a child's OOM kill"
b rm oomchild >/dev/null
expect_exit 0 "a container within its limit" b run --name nooom -m 32m $R true
expect_exit 0 "inspect nooom" b inspect nooom
expect_grep '"OOMKilled": false' "$T/out" "no OOM kill, OOMKilled false"
b rm nooom >/dev/null
# A fork bomb as PID 1 hits pids.max: its forks fail ("can't fork"), the shell
# gives up, the container ends, and the host starts the next container at once.
expect_exit 2 "pids limit contains a fork bomb" b run --rm --pids-limit 20 $R sh -c 'while true; do sleep 100 & done'
expect_grep "can't fork" "$T/err" "the bomb's forks failed at the limit"
expect_exit 0 "the host still runs containers" b run --rm $R true
expect_exit 1 "mount needs CAP_SYS_ADMIN" b run --rm $R mount -t tmpfs none /mnt

# seccomp: a profile that denies mkdir; the default profile allows it
cat >"$T/nomkdir.json" <<JSON
{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
JSON
expect_exit 1 "seccomp profile denies mkdir" b run --rm --security-opt "seccomp=$T/nomkdir.json" $R mkdir /tmp/x
expect_exit 0 "default profile allows mkdir" b run --rm $R mkdir /tmp/x
expect_exit 0 "seccomp state recorded" b run -d --name sc $R sleep 100
expect_exit 0 "inspect sc" b inspect sc
b rm -f sc >/dev/null

# user namespaces: root inside is an unprivileged uid on the host
# (the mapped root must be able to reach the rootfs: the scratch dir is 0700 by default)
chmod 711 "$T"
cp -a "$T/rootfs" "$T/usrootfs" && chown -R 100000:100000 "$T/usrootfs"
expect_exit 0 "--userns" b run --rm --userns 0:100000:65536 --rootfs "$T/usrootfs" sh -c 'id -u; cat /proc/self/uid_map; touch /tmp/made-inside'
expect_grep "^0$" "$T/out" "root inside the user namespace"
expect_grep "0 *100000 *65536" "$T/out" "the uid map is the one asked for"
[ "$(stat -c %u "$T/usrootfs/tmp/made-inside" 2>/dev/null)" = 100000 ] && ok "its files belong to uid 100000 on the host" || not_ok "owner $(stat -c %u "$T/usrootfs/tmp/made-inside" 2>/dev/null)"
uid=$(b run -d --userns 0:100000:65536 --rootfs "$T/usrootfs" sleep 30)
upid=$(b inspect "$uid" | sed -n 's/.*"Pid": \([0-9]*\).*/\1/p' | head -1)
in_own_cgroups "$upid" "$uid" "in a user namespace (moved by its monitor)"
b rm -f "$uid" >/dev/null
expect_exit 125 "bad --userns" b run --rm --userns 0:100000 $R true
expect_grep "invalid --userns" "$T/err" "bad map named"

# signals the attached CLI receives reach the container (no terminal: docker's sig-proxy)
"$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" run --rm $R sh -c 'trap "echo got-term; exit 9" TERM; echo ready; while true; do sleep 0.1; done' >"$T/sigout" 2>&1 &
cli=$!
i=0; while ! grep -q ready "$T/sigout" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $cli
wait $cli
code=$?
[ $code -eq 9 ] && ok "SIGTERM to the CLI was forwarded (exit 9)" || not_ok "forwarded signal: exit $code"
grep -q got-term "$T/sigout" && ok "the container's trap ran" || not_ok "no trap output"

# the container outlives a SIGKILLed CLI
"$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" run --name survivor $R sh -c 'i=0; while [ $i -lt 30 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done' >/dev/null 2>&1 &
cli=$!
sleep 0.5
kill -9 $cli
wait $cli 2>/dev/null
expect_exit 0 "ps after the CLI died" b ps
expect_grep "survivor" "$T/out" "still running after its CLI was SIGKILLed"
expect_exit 0 "wait survivor" b wait survivor
expect_grep "^0$" "$T/out" "it finished normally"
expect_exit 0 "logs survivor" b logs survivor
[ "$(grep -c '^tick' "$T/out")" -eq 30 ] && ok "logs are complete" || not_ok "logs have $(grep -c '^tick' "$T/out") ticks"
b rm survivor >/dev/null

# --memory and --memory-swap reach the container's memory cgroup (v1 names)
id=$(b run -d -m 64m --memory-swap 96m $R sleep 30)
pid=$(b inspect "$id" | sed -n 's/.*"Pid": \([0-9]*\).*/\1/p' | head -1)
mcg=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
if [ -n "$mcg" ] && [ -e "/sys/fs/cgroup/memory$mcg/memory.memsw.limit_in_bytes" ]; then
    [ "$(cat "/sys/fs/cgroup/memory$mcg/memory.limit_in_bytes")" = 67108864 ] && ok "--memory 64m set" || not_ok "memory.limit_in_bytes"
    [ "$(cat "/sys/fs/cgroup/memory$mcg/memory.memsw.limit_in_bytes")" = 100663296 ] && ok "--memory-swap 96m set" || not_ok "memory.memsw.limit_in_bytes"
else
    echo "# SKIP memory-swap check: no v1 memory controller with swap accounting here"
fi
# The init is in its cgroups in every hierarchy (see in_own_cgroups above).
in_own_cgroups "$pid" "$id" "without a user namespace"
expect_exit 125 "--memory-swap below --memory is refused" b run --rm -m 64m --memory-swap 32m $R true

expect_grep "swap" "$T/err" "the refusal names the swap limit"
b rm -f "$id" >/dev/null

# rm -f of a container whose monitor was SIGKILLed: the container goes too
id=$(b run -d $R sleep 1000)
shim=$(b inspect "$id" | sed -n 's/.*"ShimPid": \([0-9]*\).*/\1/p' | head -1)
pid=$(b inspect "$id" | sed -n 's/.*"Pid": \([0-9]*\).*/\1/p' | head -1)
kill -9 "$shim"
sleep 0.2
[ -d "/proc/$pid" ] && ok "the container outlives its SIGKILLed monitor" || not_ok "container died with its monitor"
expect_exit 0 "rm -f without a monitor" b rm -f "$id"
gone=1
for _ in 1 2 3 4 5 6 7 8 9 10; do
    if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then gone=0; sleep 0.1; else gone=1; break; fi
done
[ $gone = 1 ] && ok "rm -f killed the orphaned container" || not_ok "the orphaned container still runs"
[ ! -d "$T/run/containers/$id" ] && ok "its runtime dir is gone" || not_ok "runtime dir left"
[ -z "$(b ps -aq)" ] && ok "no record left" || not_ok "record left"
finish
