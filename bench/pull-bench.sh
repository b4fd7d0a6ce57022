#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Pull benchmark: the same multi-layer image from a local docker-registry on
# loopback, pulled by `berth pull`, `skopeo copy` (to an OCI layout) and
# `podman pull`, alternated in one run; every round starts from an empty
# store on each side. Prints medians and ratios (see docs/benchmarks.md).
#
#   bench/pull-bench.sh [BUILD_DIR] [--rounds N] [--layers N] [--layer-mib N]
#                       [--compare OTHER_BUILD_DIR] [--no-podman] [--floor]
#
# --compare times a second berth build in the same alternation (a change's
# before and after in one run); --no-podman leaves podman out. --floor adds
# the same berth under eatmydata (every flush a no-op: what berth would take
# if it never waited for the disk; measurement only) and the disk's rate for
# 150 MiB written with fdatasync, before and after the rounds.
# BUILD_DIR defaults to build. Needs root, docker-registry, skopeo and podman
# (installed with apt-get when missing). The image is built here: a busybox
# base plus N layers of M MiB each, half compressible text, half random.
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
rounds=7 layers=6 mib=16 other= podman=1 floor=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --layer-mib) mib=$2; shift 2 ;;
    --compare) other=$(cd "$2" && pwd); shift 2 ;;
    --no-podman) podman=0; shift ;;
    --floor) floor=1; shift ;;
    -h|--help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)

missing=
for t in docker-registry skopeo podman; do command -v $t >/dev/null || missing="$missing $t"; done
[ $floor = 0 ] || command -v eatmydata >/dev/null || missing="$missing eatmydata"
if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

dir=$(mktemp -d /var/tmp/pull-bench-XXXXXX)
reg_pid=
cleanup() {
    set +e
    [ -n "$reg_pid" ] && kill $reg_pid
    podman rmi -f "$image" >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$dir/reg.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/registry}}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve "$dir/reg.yml" >"$dir/reg.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
image=127.0.0.1:$port/bench/layers:1

# The image: busybox plus layers of mixed content.
python3 - "$dir/layout" "$layers" "$mib" <<'EOF'
import gzip, hashlib, io, json, os, random, sys, tarfile
out, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out + "/blobs/sha256")
def blob(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d
def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode in files:
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    return raw, gz
rng = random.Random(42)
layers = [layer([("bin/busybox", open("/bin/busybox", "rb").read(), 0o755)])]
words = b" ".join(b"word%d" % rng.randrange(100000) for _ in range(200000))
for i in range(n):
    size = mib << 20
    files, left, k = [], size, 0
    while left > 0:
        chunk = min(left, 256 << 10)
        data = rng.randbytes(chunk) if k % 2 else (words * (chunk // len(words) + 1))[:chunk]
        files.append((f"l{i}/f{k}", data, 0o644)); left -= chunk; k += 1
    layers.append(layer(files))
descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(gz), "size": len(gz)} for raw, gz in layers]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest() for raw, gz in layers]}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
                  "layers": descs}).encode()
md = blob(man)
json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(man),
           "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, open(out + "/index.json", "w"))
EOF
skopeo copy -q --dest-tls-verify=false oci:"$dir/layout":1 docker://$image

export BERTH_PLUGIN_PATH="$build/plugins"
export BERTH_SHIM_PATH="$build/core/shim/berth-shim"
echo "machine: $(nproc) cores, $(uname -sr)"
echo "image: busybox + $layers layers of $mib MiB (gzip), $(du -sh "$dir/registry" | cut -f1) in the registry"
echo "berth: $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?'); $(skopeo --version); $(podman --version)"

# MiB/s of 150 MiB of random bytes copied to a new file and flushed.
disk_rate() {
    head -c $((150 << 20)) /dev/urandom >"$dir/rate-src"
    sync
    t0=$(date +%s%N)
    dd if="$dir/rate-src" of="$dir/rate-dst" bs=1M conv=fdatasync status=none
    t1=$(date +%s%N)
    echo "disk ($1): 150 MiB written and flushed at $((150 * 1000000000 / (t1 - t0))) MiB/s"
    rm -f "$dir/rate-src" "$dir/rate-dst"
}
[ $floor = 0 ] || disk_rate before

python3 - "$dir" "$rounds" "$image" "$build" "$other" "$podman" "$reg_pid" "$floor" <<'EOF'
import os, resource, shutil, statistics, subprocess, sys, time
d, rounds, image, build, other, with_podman = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6] == "1"
reg_pid = sys.argv[7]
floor = sys.argv[8] == "1"
berth = build + "/core/cli/berth"
def env_of(b):
    return dict(os.environ, BERTH_PLUGIN_PATH=b + "/plugins", BERTH_SHIM_PATH=b + "/core/shim/berth-shim")
envs = {}
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
def registry_cpu():
    """The registry's user + system seconds so far (its work serving a pull)."""
    with open(f"/proc/{reg_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
def run(k, cmd):
    """(wall ms, the command's own CPU ms, the registry's CPU ms) of one pull."""
    c0, r0, t = children_cpu(), registry_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=envs.get(k))
    t1 = time.perf_counter()
    return (t1 - t) * 1000, (children_cpu() - c0) * 1000, (registry_cpu() - r0) * 1000
def reset():
    shutil.rmtree(f"{d}/berth-root", ignore_errors=True)
    shutil.rmtree(f"{d}/skopeo-out", ignore_errors=True)
    if with_podman:
        subprocess.run(["podman", "rmi", "-f", image], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
cmds = {
    "berth pull": [berth, "--root", f"{d}/berth-root", "--runroot", f"{d}/berth-run", "pull", "-q", image],
    "skopeo copy": ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{image}", f"oci:{d}/skopeo-out:1"],
    "podman pull": ["podman", "pull", "-q", "--tls-verify=false", image],
}
envs["berth pull"] = env_of(build)
if other:
    cmds["berth (compare)"] = [other + "/core/cli/berth"] + cmds["berth pull"][1:]
    envs["berth (compare)"] = env_of(other)
    print(f"compare: {other}")
if floor:
    cmds["berth, no flush"] = ["eatmydata"] + cmds["berth pull"]
    envs["berth, no flush"] = env_of(build)
if not with_podman:
    del cmds["podman pull"]
times = {k: [] for k in cmds}
cpu = {k: [] for k in cmds}
regcpu = {k: [] for k in cmds}
for r in range(rounds):
    for k, c in cmds.items():
        reset()
        subprocess.run(["sync"])
        w, c_ms, r_ms = run(k, c)
        times[k].append(w)
        cpu[k].append(c_ms)
        regcpu[k].append(r_ms)
reset()
print(f"\npull of the image, {rounds} rounds, empty store each time, wall ms; CPU ms (user +")
print("system) of the command and of the registry serving it, medians")
print(f"  {'command':<16} {'median':>9} {'min':>9} {'max':>9} {'CPU':>9} {'registry':>9}")
med = {k: statistics.median(v) for k, v in times.items()}
for k, v in times.items():
    print(f"  {k:<16} {med[k]:9.0f} {min(v):9.0f} {max(v):9.0f} "
          f"{statistics.median(cpu[k]):9.0f} {statistics.median(regcpu[k]):9.0f}")
peers = [p for p in ("skopeo copy", "podman pull", "berth (compare)", "berth, no flush") if p in med]
for peer in peers:
    print(f"  berth / {peer}: {med['berth pull'] / med[peer]:.2f}")
if with_podman:
    print("  target: faster than both: " + ("met" if all(med["berth pull"] < med[p] for p in ("skopeo copy", "podman pull")) else "NOT met"))
EOF
[ $floor = 0 ] || disk_rate after
