#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Network start benchmark (issue 6): what a bridge-networked container adds
# over `--network none` to `run --rm IMAGE echo hi`, for berth (its default
# bridge network through the cni driver) and for podman (its default CNI
# bridge network), all four commands alternated in one run. Two measures per
# command: the start latency, from starting the command to the first byte of
# the container's output (network attach, then the start), and the whole
# run --rm (which also includes the detach after the exit). Prints median,
# p90 and the added milliseconds for both (see docs/benchmarks.md). In the
# same rounds, the floor of any attach through the standard bridge plugin:
# its ADD alone, run directly with berth's default network's configuration
# on a network namespace of the benchmark's own (then DEL, not timed).
#
#   bench/net-bench.sh [BUILD_DIR] [--rounds N] [--warmup N] [--keep]
#
# BUILD_DIR defaults to build. Needs root, the CNI plugins and podman;
# installs containernetworking-plugins, iptables and podman with apt-get if
# missing, and writes /etc/containers/containers.conf (default_ulimits = [],
# runtime = "runc") only if that file does not exist. berth's root lives in a
# new directory under /var/tmp, removed at the end with every container made.
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
rounds=30 warmup=3 keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
image=localhost/berth-net-bench
label='berth-bench=net-bench'

missing=
command -v podman >/dev/null || missing="$missing podman"
command -v runc >/dev/null || missing="$missing runc"
command -v iptables >/dev/null || missing="$missing iptables"
[ -x /usr/lib/cni/bridge ] || missing="$missing containernetworking-plugins"
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if [ ! -e /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'EOF'
# Written by berth's bench/net-bench.sh. This host's RLIMIT_NOFILE hard limit
# is below podman's default ulimit, and crun refuses its hybrid cgroups.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
    echo "wrote /etc/containers/containers.conf"
fi

# Everything a run needs, so a build dir with only these targets works too.
ninja -C "$build" core/cli/berth core/shim/berth-shim config/demo/demo plugins/isolation-process.so \
    plugins/network-cni.so plugins/storage-overlay.so plugins/storage-vfs.so \
    plugins/image-registry.so plugins/image-oci-layout.so plugins/image-docker-archive.so >/dev/null

dir=$(mktemp -d /var/tmp/net-bench-XXXXXX)
export BERTH_PLUGIN_PATH="$build/plugins"
export BERTH_SHIM_PATH="$build/core/shim/berth-shim"
export BERTH_SECCOMP_PROFILE="$src/config/seccomp-default.json"
export BERTH_IMAGES_DIR="$build/config/demo"
berth="$build/core/cli/berth --root $dir/root --runroot $dir/run"
floor_ns=berth-net-bench-$$

cleanup() {
    set +e
    for id in $($berth ps -a -q --no-trunc 2>/dev/null); do $berth rm -f "$id" >/dev/null 2>&1; done
    for n in $($berth network ls -q --filter type=custom 2>/dev/null); do
        $berth network rm "$n" >/dev/null 2>&1
    done
    # The default network can't be removed: its bridge (br-<id>) and its
    # masquerade rule (tagged berth:<id>) go by hand with this root.
    bid=$($berth network inspect bridge 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Id"])' 2>/dev/null)
    if [ -n "$bid" ]; then
        ip link del "br-$(echo "$bid" | cut -c1-12)" >/dev/null 2>&1
        iptables -w -t nat -S POSTROUTING | grep -F -- "\"berth:$bid\"" | sed 's/^-A //' |
            while read -r r; do eval "iptables -w -t nat -D $r"; done
    fi
    ip netns del "$floor_ns" >/dev/null 2>&1
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

# The same image for both: berth's bundled demo image, saved and loaded into podman.
$berth pull demo >/dev/null
$berth save -o "$dir/demo.tar" demo
podman load -q -i "$dir/demo.tar" >/dev/null
podman tag demo:latest "$image" >/dev/null 2>&1 || podman tag localhost/demo:latest "$image"

echo "machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "berth: $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?'); podman: $(podman --version), network backend $(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)"
echo

ip netns add "$floor_ns"
python3 - "$rounds" "$warmup" "$image" "$label" "$dir/root" "$floor_ns" $berth <<'EOF'
import glob, json, os, statistics, subprocess, sys, tempfile, time

rounds, warmup, image, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
root, floor_ns = sys.argv[5], sys.argv[6]
berth = sys.argv[7:]
cmds = {
    "berth --network none": berth + ["run", "--rm", "--network", "none", "demo", "echo", "hi"],
    "berth --network bridge": berth + ["run", "--rm", "--network", "bridge", "demo", "echo",
                                       "hi"],
    "podman --network none": ["podman", "run", "--rm", "--network", "none", "--label", label,
                              image, "echo", "hi"],
    "podman --network bridge": ["podman", "run", "--rm", "--network", "bridge", "--label",
                                label, image, "echo", "hi"],
}

def run(k):
    """(ms to the first byte of output, ms to the exit) of one run."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(cmds[k], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=err)
        first = os.read(p.stdout.fileno(), 1)
        t1 = time.perf_counter_ns()
        out = first + p.stdout.read()
        p.wait()
        t2 = time.perf_counter_ns()
        p.stdout.close()
        if p.returncode != 0 or out != b"hi\n":
            err.seek(0)
            sys.exit(f"{k}: exit {p.returncode}, output {out!r}: {err.read().decode().strip()}")
    return (t1 - t0) / 1e6, (t2 - t0) / 1e6

floor_conf = None
floor_n = 0

def plugin_floor():
    """ms of the bridge plugin's ADD alone, as berth's cni driver runs it (then DEL)."""
    global floor_conf, floor_n
    if floor_conf is None:
        # The default network's conflist, written by berth's first bridged run.
        lists = glob.glob(os.path.join(root, "drivers/network/cni/*.conflist"))
        if len(lists) != 1:
            sys.exit(f"plugin floor: want one conflist under {root}, found {len(lists)}")
        with open(lists[0]) as f:
            cl = json.load(f)
        conf = dict(cl["plugins"][0])
        if conf.get("type") != "bridge":
            sys.exit(f"plugin floor: the default network's first plugin is {conf.get('type')}")
        conf.update(cniVersion=cl["cniVersion"], name=cl["name"])
        floor_conf = json.dumps(conf).encode()
    floor_n += 1
    env = {"CNI_CONTAINERID": f"net-bench-floor-{floor_n}", "CNI_NETNS": f"/run/netns/{floor_ns}",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni", "PATH": os.environ["PATH"]}
    t0 = time.perf_counter_ns()
    p = subprocess.run(["/usr/lib/cni/bridge"], input=floor_conf, capture_output=True,
                       env=dict(env, CNI_COMMAND="ADD"))
    t1 = time.perf_counter_ns()
    d = subprocess.run(["/usr/lib/cni/bridge"], input=floor_conf, capture_output=True,
                       env=dict(env, CNI_COMMAND="DEL"))
    if p.returncode != 0 or d.returncode != 0:
        sys.exit(f"plugin floor: bridge ADD/DEL failed: {(p.stdout + d.stdout).decode()}")
    return (t1 - t0) / 1e6

def p90(xs):
    s = sorted(xs)
    return s[max(0, -(-9 * len(s) // 10) - 1)]

kinds = list(cmds)
for k in kinds:
    for _ in range(warmup):
        run(k)
for _ in range(warmup):
    plugin_floor()
first = {k: [] for k in kinds}
whole = {k: [] for k in kinds}
floor = []
for i in range(rounds):
    for j in range(len(kinds)):
        k = kinds[(i + j) % len(kinds)]
        f, w = run(k)
        first[k].append(f)
        whole[k].append(w)
    floor.append(plugin_floor())

def report(title, times):
    print(f"{title}: {rounds} rounds, {warmup} warm-up runs each, wall ms per command")
    print(f"  {'command':<26} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
    for k in kinds:
        t = times[k]
        print(f"  {k:<26} {statistics.median(t):8.1f} {p90(t):8.1f} {min(t):8.1f} {max(t):8.1f}")
    for who in ("berth", "podman"):
        a, b = times[f"{who} --network bridge"], times[f"{who} --network none"]
        added = statistics.median(x - y for x, y in zip(a, b))
        print(f"  {who}: bridge adds {statistics.median(a) - statistics.median(b):.1f} ms "
              f"(medians), {added:.1f} ms (median of per-round differences)")

report("start latency of `run --rm IMAGE echo hi`, to the first byte of its output", first)
print()
report("whole `run --rm IMAGE echo hi`, to its exit (start, run, detach, removal)", whole)
print()
print(f"the bridge plugin's ADD alone (CNI_COMMAND=ADD /usr/lib/cni/bridge with the default "
      f"network's configuration, its host-local IPAM included): median {statistics.median(floor):.1f}"
      f" ms, p90 {p90(floor):.1f}, min {min(floor):.1f}, max {max(floor):.1f} ({rounds} rounds)")
EOF
