#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Container start benchmark: `berth run --rm` of `true` in a busybox rootfs,
# against `runc run` of an equivalent bundle and `podman run --rm --network
# none` of the same rootfs imported as an image, alternated in one run.
# Prints median, p90 and the ratios to the peers (see docs/benchmarks.md).
#
#   bench/run-bench.sh [BUILD_DIR] [--rounds N] [--warmup N] [--dir DIR]
#                      [--no-breakdown] [--keep]
#
# BUILD_DIR defaults to build. Needs root. Installs runc and podman with
# apt-get if they are missing, and writes /etc/containers/containers.conf
# (default_ulimits = [], runtime = "runc") only if that file does not exist.
# Everything else lives in a work directory (default: a new
# run-bench-XXXXXX under /var/tmp, on the disk berth's and podman's default
# stores use), removed at the end with every container it made, unless --keep.
#
# --no-breakdown skips the second phase: berth with and without its seccomp
# filter beside runc with and without berth's seccomp profile, alternated,
# and the timeline of one berth run --rm from kernel tracepoints (if perf exists).
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
rounds=30 warmup=3 dir='' keep=0 breakdown=1
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-breakdown) breakdown=0; shift ;;
    -h|--help) sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
image=localhost/berth-bench-busybox
label='berth-bench=run-bench'

# --- what must be installed -------------------------------------------------
missing=
command -v runc >/dev/null || missing="$missing runc"
command -v podman >/dev/null || missing="$missing podman"
[ -x /bin/busybox ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if [ ! -e /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'EOF'
# Written by berth's bench/run-bench.sh. This host's RLIMIT_NOFILE hard limit
# is below podman's default ulimit, and crun refuses its hybrid cgroups.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
    echo "wrote /etc/containers/containers.conf"
fi

ninja -C "$build" core/cli/berth core/shim/berth-shim plugins/isolation-process.so >/dev/null

# --- work directory and cleanup -----------------------------------------------
if [ -z "$dir" ]; then
    dir=$(mktemp -d /var/tmp/run-bench-XXXXXX)
else
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
fi
export BERTH_PLUGIN_PATH="$build/plugins"
export BERTH_SHIM_PATH="$build/core/shim/berth-shim"
export BERTH_SECCOMP_PROFILE="$src/config/seccomp-default.json"
berth="$build/core/cli/berth --root $dir/berth-root --runroot $dir/berth-run --config $dir/berth.json"

cleanup() {
    set +e
    for id in $($berth ps -a -q --no-trunc 2>/dev/null); do $berth rm -f "$id" >/dev/null 2>&1; done
    for id in $(runc --root "$dir/runc-state" list -q 2>/dev/null); do
        runc --root "$dir/runc-state" delete -f "$id" >/dev/null 2>&1
    done
    podman ps -a -q --filter "label=$label" 2>/dev/null | xargs -r podman rm -f -t 0 >/dev/null 2>&1
    if [ "$keep" = 0 ]; then
        podman rmi -f "$image" >/dev/null 2>&1
        rm -rf "$dir"
    else
        echo "kept $dir and $image"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- rootfs, berth config, runc bundles, podman image -------------------------
sh "$src/tests/fixtures/make-busybox-rootfs.sh" "$dir/rootfs"
echo '{"plugin_dirs": []}' >"$dir/berth.json"
for b in runc runc-seccomp; do
    mkdir -p "$dir/$b"
    (cd "$dir/$b" && rm -f config.json && runc spec)
done
python3 - "$dir" "$BERTH_SECCOMP_PROFILE" <<'EOF'
import json, sys
d, profile = sys.argv[1], sys.argv[2]
for bundle, seccomp in (("runc", None), ("runc-seccomp", profile)):
    path = f"{d}/{bundle}/config.json"
    c = json.load(open(path))
    # berth's container: same rootfs, read-write, `true`, no terminal, and the
    # namespaces berth makes (runc spec's pid, network, ipc, uts, mount, plus cgroup).
    c["root"] = {"path": f"{d}/rootfs", "readonly": False}
    c["process"]["args"] = ["true"]
    c["process"]["terminal"] = False
    c["hostname"] = "berth-bench"
    ns = c["linux"]["namespaces"]
    if not any(n["type"] == "cgroup" for n in ns):
        ns.append({"type": "cgroup"})
    if seccomp:
        c["linux"]["seccomp"] = json.load(open(seccomp))
    json.dump(c, open(path, "w"), indent=1)
EOF
tar -C "$dir/rootfs" -c . | podman import -q - "$image" >/dev/null

echo "machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "work dir: $dir ($(df -T "$dir" | awk 'NR == 2 { print $2 " on " $1 }'))"
buildtype=$(python3 -c 'import json, sys
print([o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"][0])' \
    "$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo '?')
echo "berth: $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?'), buildtype=$buildtype"
echo "runc: $(runc --version | head -1); podman: $(podman --version); cgroups: $(podman info --format '{{.Host.CgroupsVersion}}' 2>/dev/null)"
echo

# --- timing (python: perf_counter around each whole command) -----------------
python3 - "$dir" "$rounds" "$warmup" "$breakdown" "$image" "$label" $berth <<'EOF'
import os, shutil, statistics, subprocess, sys, time

d, rounds, warmup, breakdown, image, label = sys.argv[1:7]
rounds, warmup, breakdown = int(rounds), int(warmup), int(breakdown)
berth = sys.argv[7:]
rootfs = f"{d}/rootfs"
runc = ["runc", "--root", f"{d}/runc-state"]
seq = [0]

def cmd(kind):
    seq[0] += 1
    if kind == "berth":
        return berth + ["run", "--rm", "--network", "none", "--rootfs", rootfs, "true"]
    if kind == "berth, seccomp=unconfined":
        return berth + ["run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined",
                        "--rootfs", rootfs, "true"]
    if kind == "runc":
        return runc + ["run", "--bundle", f"{d}/runc", f"berth-bench-{seq[0]}"]
    if kind == "runc + berth's seccomp":
        return runc + ["run", "--bundle", f"{d}/runc-seccomp", f"berth-bench-{seq[0]}"]
    if kind == "podman":
        return ["podman", "run", "--rm", "--network", "none", "--label", label, image, "true"]
    raise ValueError(kind)

def run(kind):
    argv = cmd(kind)
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    t = (time.perf_counter_ns() - t0) / 1e6
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.decode().strip()}")
    return t

def p90(xs):
    s = sorted(xs)
    return s[max(0, -(-9 * len(s) // 10) - 1)]  # nearest rank

def phase(kinds, title):
    for k in kinds:
        for _ in range(warmup):
            run(k)
    times = {k: [] for k in kinds}
    for i in range(rounds):
        # Each round runs every command once; the first one rotates, so none
        # always follows the same neighbour (podman leaves cleanup behind).
        for j in range(len(kinds)):
            k = kinds[(i + j) % len(kinds)]
            times[k].append(run(k))
    print(f"{title}: {rounds} rounds, {warmup} warm-up runs each, wall ms per command")
    print(f"  {'command':<28} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
    for k in kinds:
        t = times[k]
        print(f"  {k:<28} {statistics.median(t):8.1f} {p90(t):8.1f} {min(t):8.1f} {max(t):8.1f}")
    return times

def ratio(times, a, b):
    ma, mb = statistics.median(times[a]), statistics.median(times[b])
    paired = statistics.median(x / y for x, y in zip(times[a], times[b]))
    print(f"  {a} / {b}: {ma / mb:.2f} (medians), {paired:.2f} (median of per-round ratios)")

t = phase(["berth", "runc", "podman"], "start of `true`, --rm")
ratio(t, "berth", "runc")
ratio(t, "berth", "podman")
target = 0.5 * statistics.median(t["runc"])
mb = statistics.median(t["berth"])
print(f"  target: berth median <= 0.5 x runc median = {target:.1f} ms: "
      f"{'met' if mb <= target else 'NOT met'} ({mb:.1f} ms)")

if breakdown:
    print()
    t = phase(["berth", "berth, seccomp=unconfined", "runc", "runc + berth's seccomp"],
              "breakdown: seccomp filter on each side")
    ratio(t, "berth", "berth, seccomp=unconfined")
    ratio(t, "runc + berth's seccomp", "runc")
    ratio(t, "berth", "runc + berth's seccomp")
    if shutil.which("perf"):
        # Kernel tracepoints, not ptrace: the run stays within a few per cent
        # of its untraced time (strace -f doubles it and moves the phases).
        data = f"{d}/perf.data"
        events = ["sched:sched_process_fork", "sched:sched_process_exec",
                  "sched:sched_process_exit"] + [f"syscalls:sys_enter_{c}" for c in (
                  "fdatasync", "clone3", "unshare", "pivot_root", "seccomp", "bind", "connect")]
        p = subprocess.run(["perf", "record", "-q", "-o", data, "-e", ",".join(events), "--"]
                           + cmd("berth"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            sys.exit("perf record: " + p.stderr.decode().strip())
        out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,time,event,trace"],
                             capture_output=True, text=True, check=True).stdout
        ev = []
        for line in out.splitlines():
            f = line.split()
            # comm pid time: event: trace...
            i = next(k for k, x in enumerate(f) if x.endswith(":") and x[:-1].replace(".", "").isdigit())
            ev.append((f[i - 1], float(f[i][:-1]) * 1e3, f[i + 1].rstrip(":"), " ".join(f[i + 2:])))
        t0 = ev[0][1]
        ev = [(pid, ms - t0, e, tr) for pid, ms, e, tr in ev]
        cli = ev[0][0]
        marks = []
        def mark(label, pred, after=0.0):
            for pid, ms, e, tr in ev:
                if ms >= after and pred(pid, e, tr):
                    marks.append((ms, label))
                    return ms
            return after
        # Each mark is the first matching event (after another mark where that matters): the CLI
        # spawns the monitor before its commit, so the two overlap and their order varies.
        mark("CLI exec", lambda p, e, t: e.endswith("process_exec"))
        mark("CLI: posix_spawn of the monitor", lambda p, e, t: p == cli and e.endswith("process_fork"))
        mark("CLI: record committed (fdatasync; the monitor works meanwhile)", lambda p, e, t: p == cli and e.endswith("fdatasync"))
        mark("shim exec", lambda p, e, t: e.endswith("process_exec") and "berth-shim" in t)
        mark("shim: detached (its own fork)", lambda p, e, t: e.endswith("process_fork") and "comm=berth-shim" in t)
        m = mark("shim: network namespace made (thread)", lambda p, e, t: e.endswith("unshare") and "0x40000000" in t)
        m = mark("shim: cgroups made, init cloned into them (clone3)", lambda p, e, t: p != cli and e.endswith("clone3"), m)
        mark("init: own v1 cgroups joined, mounts made, pivot_root", lambda p, e, t: e.endswith("pivot_root"))
        m = mark("shim: socket bound (ready)", lambda p, e, t: e.endswith("bind"))
        mark("CLI: attached (connect)", lambda p, e, t: p == cli and e.endswith("connect"), m)
        mark("init: seccomp filter loaded", lambda p, e, t: e.endswith("sys_enter_seccomp"))
        m = mark("init: exec true", lambda p, e, t: e.endswith("process_exec") and "/bin/true" in t)
        r = mark("shim: running recorded (fdatasync)", lambda p, e, t: p != cli and e.endswith("fdatasync"), m)
        m = mark("container exited", lambda p, e, t: e.endswith("process_exit") and "comm=true" in t)
        m = mark("shim: torn down, exit and removal recorded (fdatasync)", lambda p, e, t: p != cli and e.endswith("fdatasync"), max(m, r + 1e-6))
        mark("CLI exit", lambda p, e, t: p == cli and e.endswith("process_exit"), m)
        n = sum(1 for e in ev if e[2].endswith("fdatasync"))
        print(f"\none berth run --rm under perf tracepoints (ms since exec; {n} fdatasync calls):")
        prev = 0.0
        for ms, label in sorted(marks):
            print(f"  {ms:7.1f}  (+{ms - prev:5.1f})  {label}")
            prev = ms
EOF
