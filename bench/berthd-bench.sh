#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# berthd benchmark (issue 5), with the same docker CLI throughout:
# - `docker run --rm --network none demo true` against berthd and against
#   `podman system service`, alternated in one run: median, p90, ratio;
# - berthd's RSS and PSS fresh, idle after the runs, and with 100 running
#   `sleep` containers (with the monitors' PSS beside it);
# - restart to serving: berthd SIGKILLed with the 100 running, started again,
#   the time until it answers the `docker ps` call (median of 5);
# - `docker ps` and `docker ps -a` latency (median of 20) with an empty store
#   and with 1,000 containers (made with `berth create` on the same root).
# See docs/benchmarks.md ("berthd (issue 5)").
#
#   bench/berthd-bench.sh [BUILD_DIR] [--rounds N] [--warmup N] [--dir DIR] [--keep]
#
# BUILD_DIR defaults to build; --rounds (default 30, or $ROUNDS) is the
# number of alternated run pairs. Needs root and the docker CLI; installs
# podman and runc with apt-get if they are missing.
# Writes /etc/containers/containers.conf (default_ulimits = [], runtime =
# "runc": what podman needs on these machines) only if that file does not
# exist, and says so. podman runs on a private root in the work directory
# (default: a new berthd-bench-XXXXXX under /var/tmp, on the disk berth's
# and podman's default stores use), removed at the end with everything in
# it, unless --keep.
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
rounds=${ROUNDS:-30} warmup=3 dir='' keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }
command -v docker >/dev/null || { echo "$0: needs the docker CLI" >&2; exit 1; }
missing=
command -v podman >/dev/null || missing="$missing podman"
command -v runc >/dev/null || missing="$missing runc"
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
if [ ! -e /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'EOF'
# Written by berth's bench/berthd-bench.sh. This host's RLIMIT_NOFILE hard limit
# is below podman's default ulimit, and crun refuses its hybrid cgroups.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
    echo "wrote /etc/containers/containers.conf (it did not exist)"
fi
ninja -C "$build" core/cli/berth core/daemon/berthd core/shim/berth-shim plugins/isolation-process.so \
    plugins/storage-overlay.so >/dev/null

if [ -z "$dir" ]; then
    dir=$(mktemp -d /var/tmp/berthd-bench-XXXXXX)
else
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
fi
export BERTH_PLUGIN_PATH="$build/plugins"
export BERTH_SHIM_PATH="$build/core/shim/berth-shim"
export BERTH_SECCOMP_PROFILE="$src/config/seccomp-default.json"
export BERTH_CLI_PATH="$build/core/cli/berth"
echo '{"plugin_dirs": []}' >"$dir/berth.json"
berth="$build/core/cli/berth --config $dir/berth.json --root $dir/berth-root --runroot $dir/berth-run"
berthd="$build/core/daemon/berthd --config $dir/berth.json --root $dir/berth-root --runroot $dir/berth-run -H unix://$dir/berthd.sock"
podman="podman --root $dir/podman-root --runroot $dir/podman-run"
: >"$dir/pids"

cleanup() {
    set +e
    for p in $(cat "$dir/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    $berth ps -aq --no-trunc 2>/dev/null | xargs -r -n 100 $berth rm -f >/dev/null 2>&1
    $podman rm -af -t 0 >/dev/null 2>&1
    if [ "$keep" = 0 ]; then
        $podman system reset -f >/dev/null 2>&1
        # podman leaves its storage mounted on its private root.
        grep -o " $dir/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n 1 umount -l
        rm -rf "$dir"
    else
        echo "kept $dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The demo image, in berth's store and (from berth save's docker-archive) in podman's.
image_dir="$build/config/demo/demo"
$berth load -i "$image_dir" >/dev/null
$berth save -o "$dir/demo.tar" demo
$podman load -q -i "$dir/demo.tar" >/dev/null

echo "machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "work dir: $dir ($(df -T "$dir" | awk 'NR == 2 { print $2 " on " $1 }'))"
buildtype=$(python3 -c 'import json, sys
print([o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"][0])' \
    "$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo '?')
echo "berth: $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?'), buildtype=$buildtype"
echo "docker CLI: $(docker version --format '{{.Client.Version}}' 2>/dev/null); podman: $(podman --version); runc: $(runc --version 2>/dev/null | head -1)"
echo

python3 - "$dir" "$rounds" "$warmup" "$berthd" "$podman" "$berth" <<'EOF'
import os, signal, socket, statistics, subprocess, sys, time

d, rounds, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
berthd_argv, podman_argv, berth_argv = sys.argv[4].split(), sys.argv[5].split(), sys.argv[6].split()
bsock, psock = f"{d}/berthd.sock", f"{d}/podman.sock"
pids = open(f"{d}/pids", "a")
dlog = open(f"{d}/berthd.log", "a")

def spawn(argv, log):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    pids.write(f"{p.pid}\n"); pids.flush()
    return p

def api_ok(sock, path):
    """One GET on the API socket; True on a 200."""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(sock)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(64)
        s.close()
        return head.startswith(b"HTTP/1.1 200")
    except OSError:
        return False

def api_get_ms(sock, path):
    """Wall ms of one whole GET (to the end of the body; the server closes), without the CLI."""
    t0 = time.perf_counter_ns()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    while s.recv(1 << 16):
        pass
    s.close()
    return (time.perf_counter_ns() - t0) / 1e6

def wait_api(sock, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if api_ok(sock, "/_ping"):
            return
        time.sleep(0.01)
    sys.exit(f"nothing answers on {sock}")

def docker(sock, *args, check=True):
    argv = ["docker", "-H", f"unix://{sock}", *args]
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    t = (time.perf_counter_ns() - t0) / 1e6
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return t, p.stdout

def p90(xs):
    s = sorted(xs)
    return s[max(0, -(-9 * len(s) // 10) - 1)]  # nearest rank

def line(name, t):
    print(f"  {name:<44} {statistics.median(t):8.1f} {p90(t):8.1f} {min(t):8.1f} {max(t):8.1f}")

def memory(pid):
    """RSS (status) and PSS (smaps_rollup) of one process, KiB."""
    rss = pss = 0
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            rss = int(l.split()[1])
    for l in open(f"/proc/{pid}/smaps_rollup"):
        if l.startswith("Pss:"):
            pss = int(l.split()[1])
    return rss, pss

def shims_pss():
    """Number and total PSS (KiB) of the monitors of this benchmark's root."""
    shim = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
            ppid = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if cmd[0].endswith(b"berth-shim") and f"{d}/berth-root".encode() in cmd:
            shim[p] = ppid
    # A container's init is a fork of its monitor until it execs: count the monitors only.
    mons = [p for p, pp in shim.items() if pp not in shim]
    return len(mons), sum(memory(p)[1] for p in mons)

def mem_line(what, pid):
    rss, pss = memory(pid)
    print(f"  berthd {what:<40} RSS {rss / 1024:6.1f} MiB, PSS {pss / 1024:6.1f} MiB")

# ---- daemons ----
podman = spawn(podman_argv + ["system", "service", "-t", "0", f"unix://{psock}"], open(f"{d}/podman.log", "a"))
berthd = spawn(berthd_argv, dlog)
wait_api(psock)
wait_api(bsock)
print("berthd and podman system service up")
print("memory:")
docker(bsock, "ps")
mem_line("fresh (after one ps)", berthd.pid)

# ---- run --rm, alternated ----
run = ["run", "--rm", "--network", "none", "demo", "true"]
for _ in range(warmup):
    docker(bsock, *run)
    docker(psock, *run)
times = {"berthd": [], "podman": []}
for i in range(rounds):
    order = ["berthd", "podman"] if i % 2 == 0 else ["podman", "berthd"]
    for k in order:
        times[k].append(docker(bsock if k == "berthd" else psock, *run)[0])
mem_line("idle, after the runs", berthd.pid)
print()
print(f"docker run --rm --network none demo true: {rounds} rounds, {warmup} warm-up runs each, wall ms")
print(f"  {'against':<44} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
line("berthd", times["berthd"])
line("podman system service", times["podman"])
mb, mp = statistics.median(times["berthd"]), statistics.median(times["podman"])
paired = statistics.median(b / p for b, p in zip(times["berthd"], times["podman"]))
print(f"  berthd / podman: {mb / mp:.2f} (medians), {paired:.2f} (median of per-round ratios)")
print(f"  target: berthd median <= 1/3 x podman median = {mp / 3:.1f} ms: "
      f"{'met' if mb <= mp / 3 else 'NOT met'} ({mb:.1f} ms)")
for k in ("berthd", "podman"):
    print(f"  every round, {k}: " + " ".join(f"{t:.0f}" for t in times[k]))

# ---- docker ps, empty store ----
print()
print("docker ps latency, wall ms (median of 20, after 3 warm-up calls)")
print(f"  {'':<44} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
def ps_latency(label, *args):
    for _ in range(3):
        docker(bsock, "ps", *args)
    line(label, [docker(bsock, "ps", *args)[0] for _ in range(20)])
    # The same call without the CLI (whose own start is most of the above).
    path = "/v1.50/containers/json" + ("?all=1" if args else "")
    line("  its GET alone, without the CLI", [api_get_ms(bsock, path) for _ in range(20)])
ps_latency("docker ps, no containers")
ps_latency("docker ps -a, no containers", "-a")

# ---- 100 running containers: memory, then restart to serving ----
ids = [docker(bsock, "run", "-d", "--network", "none", "demo", "sleep", "100000")[1].strip()
       for _ in range(100)]
time.sleep(1)
print()
print("memory with 100 running `sleep` containers:")
mem_line("", berthd.pid)
n, total = shims_pss()
print(f"  monitors: {n}, PSS {total / 1024:.1f} MiB in all, {total / max(n, 1):.0f} KiB each")

print()
print("restart to serving: SIGKILL berthd with 100 running, start it again; ms from the start")
restart_api, restart_cli = [], []
for i in range(5):
    berthd.send_signal(signal.SIGKILL)
    berthd.wait()
    t0 = time.perf_counter_ns()
    berthd = spawn(berthd_argv, dlog)
    # The same call docker ps makes, polled every 2 ms.
    while not api_ok(bsock, "/v1.50/containers/json"):
        if time.perf_counter_ns() - t0 > 30e9:
            sys.exit("berthd did not come back in 30 s")
        time.sleep(0.002)
    restart_api.append((time.perf_counter_ns() - t0) / 1e6)
    t, out = docker(bsock, "ps", "-q")
    restart_cli.append(restart_api[-1] + t)
    if len(out.split()) != 100:
        sys.exit(f"after restart {i + 1}, docker ps shows {len(out.split())} containers, not 100")
print(f"  {'':<44} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
line("until GET /containers/json answers", restart_api)
line("until a docker ps then completes (100 rows)", restart_cli)
m = statistics.median(restart_cli)
print(f"  target: <= 2 s: {'met' if m <= 2000 else 'NOT met'} ({m:.0f} ms)")
time.sleep(1)
mem_line("after the restarts, 100 reattached", berthd.pid)

# ---- 1,000 containers ----
subprocess.run(berth_argv + ["rm", "-f", *ids], check=True, capture_output=True)
t0 = time.perf_counter()
made = 0
while made < 1000:
    n = min(50, 1000 - made)
    procs = [subprocess.Popen(berth_argv + ["create", "--network", "none", "demo", "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(n)]
    for p in procs:
        if p.wait() != 0:
            sys.exit("berth create: " + p.stderr.read().decode().strip())
    made += n
count = len(docker(bsock, "ps", "-aq")[1].split())
print()
print(f"docker ps latency with {count} containers (created, not running; "
      f"made with berth create in {time.perf_counter() - t0:.0f} s), wall ms")
print(f"  {'':<44} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
ps_latency("docker ps (lists none of them)")
ps_latency("docker ps -a (lists all 1,000)", "-a")
ps_latency("docker ps -a -q (all 1,000, ids only)", "-a", "-q")

# ---- the CLI's own share: the same response bytes from a server that only replays them ----
import http.server, json, socketserver, threading
body = b""
s = socket.socket(socket.AF_UNIX)
s.connect(bsock)
s.sendall(b"GET /v1.50/containers/json?all=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
while chunk := s.recv(1 << 16):
    body += chunk
s.close()
head, body = body.split(b"\r\n\r\n", 1)
class Replay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self, data, ctype):
        self.send_response(200)
        self.send_header("Api-Version", "1.50")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
    def do_HEAD(self):
        self.reply(b"OK", "text/plain")
    def do_GET(self):
        if "/containers/json" in self.path:
            self.reply(replayed, "application/json")
        else:
            self.reply(b"OK", "text/plain")
class UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("replay", 0)
# berthd answers with Content-Length or chunks; take the JSON itself either way.
replayed = body
if b"chunked" in head.lower():
    parts, rest = [], body
    while rest:
        size, rest = rest.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0:
            break
        parts.append(rest[:n]); rest = rest[n + 2:]
    replayed = b"".join(parts)
if len(json.loads(replayed)) != count:
    sys.exit(f"the replayed listing does not hold {count} containers")
rsock = f"{d}/replay.sock"
replay = UnixHTTP(rsock, Replay)
threading.Thread(target=replay.serve_forever, daemon=True).start()
print()
print(f"the docker CLI alone: the same {len(replayed) // 1024} KiB response replayed by a server that "
      "computes nothing, wall ms")
print(f"  {'':<44} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
def replay_latency(label, *args):
    for _ in range(3):
        docker(rsock, "ps", *args)
    line(label, [docker(rsock, "ps", *args)[0] for _ in range(20)])
replay_latency("docker ps -a (1,000 rows), replayed", "-a")
replay_latency("docker ps -a -q, replayed", "-a", "-q")
line("  the replayed GET alone", [api_get_ms(rsock, "/v1.50/containers/json?all=1") for _ in range(20)])
replay.shutdown()
EOF
