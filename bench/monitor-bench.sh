#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Monitor memory benchmark: PSS and RSS of berth-shim, the per-container
# monitor, with N idle containers (`sleep 1000` in a busybox rootfs), beside
# podman's conmon for N idle podman containers of the same rootfs, in the same
# run (see docs/benchmarks.md).
#
#   bench/monitor-bench.sh [BUILD_DIR] [--count N] [--settle SECS] [--dir DIR] [--keep]
#
# BUILD_DIR defaults to build; N defaults to 100. Needs root. Installs runc
# and podman with apt-get if missing and writes /etc/containers/containers.conf
# only if absent (as bench/run-bench.sh does). The two sets run one after the
# other, never together, so neither monitor's PSS is lowered by pages the other
# shares (libc). Everything it made is removed at the end unless --keep.
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
count=100 settle=3 dir='' keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --count) count=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
image=localhost/berth-bench-busybox
label='berth-bench=monitor-bench'

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
# Written by berth's bench/monitor-bench.sh. This host's RLIMIT_NOFILE hard
# limit is below podman's default ulimit, and crun refuses its hybrid cgroups.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
    echo "wrote /etc/containers/containers.conf"
fi

ninja -C "$build" core/cli/berth core/shim/berth-shim plugins/isolation-process.so >/dev/null

if [ -z "$dir" ]; then
    dir=$(mktemp -d /var/tmp/monitor-bench-XXXXXX)
else
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
fi
export BERTH_PLUGIN_PATH="$build/plugins"
export BERTH_SHIM_PATH="$build/core/shim/berth-shim"
export BERTH_SECCOMP_PROFILE="$src/config/seccomp-default.json"
berth="$build/core/cli/berth --root $dir/berth-root --runroot $dir/berth-run --config $dir/berth.json"

berth_clean() {
    ids=$($berth ps -a -q --no-trunc 2>/dev/null) || return 0
    [ -z "$ids" ] || $berth rm -f $ids >/dev/null 2>&1 || true
}
podman_clean() {
    podman ps -a -q --filter "label=$label" 2>/dev/null | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
}
cleanup() {
    set +e
    berth_clean
    podman_clean
    if [ "$keep" = 0 ]; then
        podman rmi -f "$image" >/dev/null 2>&1
        rm -rf "$dir"
    else
        echo "kept $dir and $image"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sh "$src/tests/fixtures/make-busybox-rootfs.sh" "$dir/rootfs"
echo '{"plugin_dirs": []}' >"$dir/berth.json"
podman image exists "$image" 2>/dev/null || tar -C "$dir/rootfs" -c . | podman import -q - "$image" >/dev/null

buildtype=$(python3 -c 'import json, sys
print([o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"][0])' \
    "$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo '?')
echo "machine: $(nproc) cores, $(uname -sr), $(free -g | awk '/^Mem/ { print $2 " GiB" }')"
echo "berth: $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?'), buildtype=$buildtype"
echo "podman: $(podman --version), $(conmon --version 2>/dev/null | head -1), runc: $(runc --version | head -1)"
echo "containers per set: $count; memory read $settle s after the last start"
echo

# smaps_rollup of the PIDs on stdin -> one "pid rss pss pss_anon pss_file" line each
rollup() {
    while read -r pid; do
        awk -v pid="$pid" '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Pss_Anon:/ { a = $2 }
            /^Pss_File:/ { f = $2 } END { print pid, r, p, a, f }' "/proc/$pid/smaps_rollup"
    done
}

# --- berth ---------------------------------------------------------------------
i=0
t0=$(date +%s%N)
while [ $i -lt "$count" ]; do
    $berth run -d --name "mon-$i" --rootfs "$dir/rootfs" sleep 1000 >/dev/null
    i=$((i + 1))
done
t1=$(date +%s%N)
sleep "$settle"
# shellcheck disable=SC2046 # ids: one word each
$berth inspect $($berth ps -q --no-trunc) |
    python3 -c 'import json, sys; [print(c["State"]["ShimPid"]) for c in json.load(sys.stdin)]' \
    >"$dir/berth.pids"
echo "berth: $(wc -l <"$dir/berth.pids") running, started in $(((t1 - t0) / 1000000)) ms;" \
    "berth-shim processes of this run (pgrep -f): $(pgrep -f "berth-shim .*--root $dir/" | wc -l)"
rollup <"$dir/berth.pids" >"$dir/berth.mem"
berth_clean

# --- podman --------------------------------------------------------------------
i=0
t0=$(date +%s%N)
while [ $i -lt "$count" ]; do
    podman run -d --network none --label "$label" --name "berth-bench-mon-$i" "$image" sleep 1000 >/dev/null
    i=$((i + 1))
done
t1=$(date +%s%N)
sleep "$settle"
podman ps -q --filter "label=$label" | xargs podman inspect --format '{{.State.ConmonPid}}' >"$dir/podman.pids"
echo "podman: $(wc -l <"$dir/podman.pids") running, started in $(((t1 - t0) / 1000000)) ms;" \
    "conmon processes (pgrep -x, all): $(pgrep -x conmon | wc -l)"
rollup <"$dir/podman.pids" >"$dir/podman.mem"
podman_clean

echo
python3 - "$dir/berth.mem" "$dir/podman.mem" <<'EOF'
import statistics, sys

def load(path):
    rows = [list(map(int, l.split())) for l in open(path) if l.strip()]
    return {k: [r[i] for r in rows] for i, k in enumerate(("pid", "rss", "pss", "pss_anon", "pss_file"))}

b, p = load(sys.argv[1]), load(sys.argv[2])
print(f"per monitor, KiB (/proc/PID/smaps_rollup)  {'median':>8} {'mean':>8} {'min':>6} {'max':>6} {'sum of all':>11}")
for name, d in (("berth-shim", b), ("conmon", p)):
    print(f"{name} ({len(d['pid'])})")
    for k in ("pss", "rss", "pss_anon", "pss_file"):
        x = d[k]
        print(f"  {k:<40} {statistics.median(x):8.0f} {statistics.mean(x):8.0f} {min(x):6d} {max(x):6d} {sum(x):11d}")
mb, mp = statistics.median(b["pss"]), statistics.median(p["pss"])
print(f"PSS berth-shim / conmon: {mb / mp:.2f} (medians); RSS: "
      f"{statistics.median(b['rss']) / statistics.median(p['rss']):.2f}")
print(f"target: berth-shim PSS <= 350 KiB: {'met' if mb <= 350 else 'NOT met'} ({mb:.0f} KiB median)")
EOF
