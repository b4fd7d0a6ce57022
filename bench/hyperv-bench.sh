#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# hyperv isolation benchmarks (issue 7; results in docs/benchmarks.md):
#
# (a) start: time from starting `berth run --rm --isolation hyperv --network
#     none demo echo hi` to the first byte of "hi" on its stdout, and to its
#     exit, beside two floors booted in the same loop, alternated run by run:
#       agent floor: qemu on the driver's own command line (hyperv-vm-argv:
#         same kernel, same agent initramfs, 9p share, 256 MiB) until the
#         agent answers hello, its first output;
#       kernel floor: vm-boot-floor.sh's method (tests/integration/hyperv/
#         boot.py): the same kernel with the boot test's static init, until
#         the init's first console line.
#     The berth runs are traced (BERTH_HYPERV_TRACE: the driver's steps
#     with wall-clock times) to split the time: CLI and shim start, rootfs,
#     qemu + kernel + agent to hello, create and start (with the agent's own
#     steps in the guest), first output, and the teardown after the exit.
# (b) memory: PSS (/proc/PID/smaps_rollup) of qemu + berth-shim per idle
#     `run -d --isolation hyperv --network none demo sleep 600`, beside
#     berth-shim + the container's processes per process-isolated one.
#
#     With snapshots (the driver's default under TCG, docs/hyperv.md) the
#     untimed run before them boots and saves the VM, and the N timed runs
#     are restored from the snapshot. --no-snapshots sets the driver's
#     "snapshots": false: every run boots, as the floors do.
#
#   bench/hyperv-bench.sh [BUILD_DIR] [--runs N] [--containers M] [--no-start] [--no-memory]
#                         [--no-snapshots]
#
# As root, with the guest kernel and the agent initramfs built (a build
# without sanitizers). Medians; timings never gate tests.
set -eu

build=build
case ${1:-} in -*|'') ;; *) build=$1; shift ;; esac
runs=10 containers=5 do_start=1 do_mem=1 snapshots=true
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --containers) containers=$2; shift 2 ;;
    --no-start) do_start=0; shift ;;
    --no-memory) do_mem=0; shift ;;
    --no-snapshots) snapshots=false; shift ;;
    -h|--help) sed -n '3,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
hv="$build/plugins/isolation/hyperv"
for f in "$hv/guest/vmlinux" "$hv/guest/kernel.release" "$hv/initrd.cpio" \
    "$hv/guest/berth-mkinitramfs" "$build/tests/integration/hyperv-boot-init" \
    "$build/tests/integration/hyperv-vm-argv" "$build/core/cli/berth"; do
    [ -f "$f" ] || { echo "$0: $f missing: build first (docs/hyperv-guest.md)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "$0: qemu-system-x86_64 missing" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "$0: containers need root" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-hvbench-XXXXXX")
berth() { "$build/core/cli/berth" --config "$tmp/c.json" --root "$tmp/root" --runroot "$tmp/run" "$@"; }
cleanup() {
    berth ps -aq 2>/dev/null | xargs -r "$build/core/cli/berth" --config "$tmp/c.json" \
        --root "$tmp/root" --runroot "$tmp/run" rm -f >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
echo "{\"drivers\": {\"hyperv\": {\"snapshots\": $snapshots}}}" >"$tmp/c.json"
mkdir "$tmp/share"
export BERTH_PLUGIN_PATH="$build/plugins" BERTH_SHIM_PATH="$build/core/shim/berth-shim" \
    BERTH_IMAGES_DIR="$build/config/demo" BERTH_HYPERV_KERNEL="$hv/guest/vmlinux" \
    BERTH_HYPERV_INITRD="$hv/initrd.cpio" \
    BERTH_SECCOMP_PROFILE="$src/config/seccomp-default.json"
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
"$hv/guest/berth-mkinitramfs" -z -o "$tmp/boot-initrd.img" file /init \
    "$build/tests/integration/hyperv-boot-init" 0755 dir /proc 0555 dir /sys 0555 \
    nod /dev/console 0600 c 5 1
berth pull demo >/dev/null
# One run first: the KVM probe's answer, the store and the snapshot exist before timing.
berth run --rm --isolation hyperv --network none demo true

echo "guest kernel $(cat "$hv/guest/kernel.release"), qemu $(qemu-system-x86_64 --version | head -n 1 | sed 's/.*version //')"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "accelerator: $(berth info --format json | python3 -c 'import json, sys
h = json.load(sys.stdin)["drivers"]["isolation"]["details"]["hyperv"]
print(h["accelerator"], "(" + h["accelerator_why"] + ")")')"

[ "$do_start" -eq 1 ] && python3 - "$src/tests/integration/hyperv" "$build" "$tmp" "$runs" <<'PY'
import json, os, re, selectors, socket, statistics, struct, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import boot
build, tmp, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
hv = os.path.join(build, "plugins/isolation/hyperv")
kernel, initrd = os.path.join(hv, "guest/vmlinux"), os.path.join(hv, "initrd.cpio")
berth = [os.path.join(build, "core/cli/berth"), "--config", tmp + "/c.json",
         "--root", tmp + "/root", "--runroot", tmp + "/run"]
trace = os.path.join(tmp, "trace")

def frame(obj):
    b = json.dumps(obj).encode()
    return struct.pack(">I", len(b)) + b

def agent_floor(profile=False):
    """
    qemu on the driver's command line to the agent's hello reply (seconds).
    profile: the kernel talks on the console with timestamps (not quiet),
    and the result is a split instead: (qemu until the kernel's clock
    starts, kernel to "Run /init", /init to hello), from the host's time of
    arrival of the "Run /init" line and the guest's timestamp on it.
    """
    argv = subprocess.run([os.path.join(build, "tests/integration/hyperv-vm-argv"), kernel,
                           initrd, "256", tmp + "/share"], check=True, capture_output=True,
                          text=True).stdout.splitlines()
    if profile:
        argv = [a.replace("quiet", "printk.time=1") if a.startswith("console=") else a
                for a in argv]
    run_init = None
    ctl, ctl_peer = socket.socketpair()
    io, io_peer = socket.socketpair()
    def fds():
        os.dup2(ctl_peer.fileno(), 3)
        os.dup2(io_peer.fileno(), 4)
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE if profile else subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=fds, close_fds=False)
    ctl_peer.close(); io_peer.close()
    ctl.sendall(frame({"id": 1, "op": "hello", "versions": [1], "caps": []}))
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    if profile:
        sel.register(p.stdout, selectors.EVENT_READ, "console")
    buf, cbuf = b"", b""
    t = None
    while t is None:
        ready = sel.select(60)
        if not ready:
            break
        if any(k.data == "console" for k, _ in ready):
            d = os.read(p.stdout.fileno(), 65536)
            now = time.monotonic() - start
            if not d:
                sel.unregister(p.stdout)
            cbuf += d
            while b"\n" in cbuf:
                line, cbuf = cbuf.split(b"\n", 1)
                m = re.match(rb"\[\s*([0-9.]+)\] Run /init", line)
                if m and run_init is None:
                    run_init = (now, float(m.group(1)))
        if not any(k.data == "ctl" for k, _ in ready):
            continue
        d = ctl.recv(65536)
        if not d:
            break
        buf += d
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
            ln = struct.unpack(">I", buf[:4])[0]
            msg, buf = json.loads(buf[4:4 + ln]), buf[4 + ln:]
            if msg.get("id") == 1 and msg.get("ok"):
                t = time.monotonic() - start
    ctl.sendall(frame({"id": 2, "op": "shutdown"}))
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()
    ctl.close(); io.close()
    if p.stdout:
        p.stdout.close()
    if t is None:
        sys.exit("the agent floor VM did not say hello")
    if profile:
        if run_init is None:
            sys.exit("the profiled VM printed no \"Run /init\" line")
        return (run_init[0] - run_init[1], run_init[1], t - run_init[0])
    return t

def kernel_floor():
    r = boot.boot("qemu-system-x86_64", kernel, tmp + "/boot-initrd.img", timeout=60)
    if r["first_init_line"] is None or r["exit"] != 0:
        sys.exit("the kernel floor VM did not boot: %s" % r["stderr"][-300:])
    return r["first_init_line"]

def berth_run():
    """Seconds to the first byte of "hi" and to the exit, and the driver's steps."""
    if os.path.exists(trace):
        os.unlink(trace)
    env = dict(os.environ, BERTH_HYPERV_TRACE=trace)
    t0 = time.time_ns()
    start = time.monotonic()
    p = subprocess.Popen(berth + ["run", "--rm", "--isolation", "hyperv", "--network", "none",
                                  "demo", "echo", "hi"], stdout=subprocess.PIPE, env=env)
    first = p.stdout.read(1)
    t_hi = time.monotonic() - start
    t_hi_ns = time.time_ns()
    rest = p.stdout.read()
    rc = p.wait()
    t_exit = time.monotonic() - start
    if rc != 0 or first + rest != b"hi\n":
        sys.exit("berth run failed: exit %d, output %r" % (rc, first + rest))
    steps = {}
    for line in open(trace):
        ns, what = line.split()
        steps.setdefault(what, (int(ns) - t0) / 1e9)
    steps["cli-output"] = (t_hi_ns - t0) / 1e9
    return t_hi, t_exit, steps

res = {"agent": [], "kernel": [], "hi": [], "exit": []}
steps = []
for i in range(n):
    # Alternated, so that a change in the host's load hits all three alike.
    res["hi"].append(0); res["exit"].append(0)
    res["hi"][-1], res["exit"][-1], s = berth_run()
    steps.append(s)
    res["agent"].append(agent_floor())
    res["kernel"].append(kernel_floor())
med = {k: statistics.median(v) for k, v in res.items()}
print("\n(a) start, TCG, %d runs each, alternated (seconds)" % n)
print("%-52s %7s %7s %7s" % ("", "median", "min", "max"))
for k, label in (("hi", "berth run --rm ... echo hi: first byte of \"hi\""),
                 ("exit", "berth run --rm ... echo hi: exit"),
                 ("agent", "agent floor: qemu + kernel + agent to hello"),
                 ("kernel", "kernel floor: qemu + kernel to the init's 1st line")):
    print("%-52s %7.3f %7.3f %7.3f" % (label, med[k], min(res[k]), max(res[k])))
print("ratio first byte / agent floor: %.2fx (target <= 1.2x); first byte %s 1.5 s target"
      % (med["hi"] / med["agent"], "within the" if med["hi"] <= 1.5 else "over the"))
print("the runs: %s" % ("restored from a snapshot" if all("restored" in s for s in steps)
                        else "booted" if not any("restored" in s for s in steps)
                        else "%d of %d restored" % (sum("restored" in s for s in steps), n)))


# The breakdown: the median time at which each step happened, from the CLI's start.
order = ["sandbox-create", "container-create", "rootfs-mounted", "binds-shared",
         "seccomp-compiled", "qemu-start", "qemu-started",
         "restored", "hello", "reseeded", "created", "start", "started", "first-output", "cli-output", "exited",
         "container-delete", "sandbox-destroy", "shutdown-answered", "qemu-gone"]
# The guest's steps of create and start (agent-create:STEP, agent-start:STEP: the
# agent's trace, placed on the host's clock by the driver), in the order they came.
def guest_steps(op, before):
    names = {k for s in steps for k in s if k.startswith("agent-%s:" % op)}
    names = sorted(names, key=lambda k: statistics.median([s[k] for s in steps if k in s]))
    i = order.index(before)
    order[i:i] = names
guest_steps("create", "created")
guest_steps("start", "started")
at = {k: statistics.median([s[k] for s in steps if k in s]) for k in order
      if any(k in s for s in steps)}
print("\nwhere the time goes (median time of each step after the CLI started; s)")
prev = 0.0
labels = {
    "sandbox-create": "CLI + store + shim start + driver load",
    "container-create": "shim: storage, bundle, up to container_create",
    "rootfs-mounted": "overlay rootfs mounted for the 9p share",
    "binds-shared": "bind mount sources (/etc/hosts...) bound for the binds share",
    "seccomp-compiled": "the seccomp profile compiled on the host (cached)",
    "qemu-start": "driver before spawning qemu (KVM probe answer, argv)",
    "qemu-started": "qemu spawned (fork/exec)",
    "restored": "qemu loaded the snapshot (restored runs only)",
    "hello": "qemu start + kernel boot + agent init to hello (restored: agent's answer)",
    "reseeded": "the host's entropy and clock in the guest",
    "created": "agent: create (9p mount, namespaces, cgroup; its steps above)",
    "start": "shim between create and start",
    "started": "agent: start (its steps above)",
    "first-output": "process runs, first output reaches the driver",
    "cli-output": "driver -> shim -> CLI -> stdout",
    "exited": "exit reported by the agent",
    "container-delete": "shim: to container delete",
    "sandbox-destroy": "container delete in the guest + umount",
    "shutdown-answered": "agent shutdown answered",
    "qemu-gone": "qemu exits",
}
for k in order:
    if k not in at:
        continue
    print("  %-26s %6.3f  +%6.3f  %s" % (k, at[k], at[k] - prev,
                                         labels.get(k, "in the guest (docs/agent-protocol.md, trace)")))
    prev = at[k]
print("  %-26s %6.3f  +%6.3f  %s" % ("cli-exit", med["exit"], med["exit"] - prev,
                                     "shim/CLI wrap-up after qemu is gone"))
if not any("restored" in s for s in steps):
    print("  kernel floor (qemu + kernel to /init): %.3f of the %.3f between qemu-started and hello"
          % (med["kernel"], at.get("hello", 0) - at.get("qemu-started", 0)))
# The boot itself, split with the kernel's own timestamps (separate boots:
# a talking console is slower, so these are not the floor).
prof = [agent_floor(profile=True) for _ in range(max(3, n // 3))]
q, k, a = (statistics.median(x[i] for x in prof) for i in range(3))
print("  the boot, split (%d boots with a timestamped console): qemu until the kernel's"
      " clock %.3f, kernel to /init %.3f, agent /init to hello %.3f" % (len(prof), q, k, a))
PY

[ "$do_mem" -eq 1 ] && python3 - "$build" "$tmp" "$containers" <<'PY'
import os, statistics, subprocess, sys, time
build, tmp, m = sys.argv[1], sys.argv[2], int(sys.argv[3])
berth = [os.path.join(build, "core/cli/berth"), "--config", tmp + "/c.json",
         "--root", tmp + "/root", "--runroot", tmp + "/run"]

def pss_kb(pid):
    try:
        for line in open("/proc/%d/smaps_rollup" % pid):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def procs():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")
                ppid = int(open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            out[int(d)] = (cmd, ppid)
    return out

def descendants(pid, ps):
    kids = [p for p, (_, pp) in ps.items() if pp == pid]
    return kids + [d for k in kids for d in descendants(k, ps)]

def measure(isolation):
    ids = []
    for _ in range(m):
        args = ["run", "-d", "--network", "none"]
        if isolation == "hyperv":
            args += ["--isolation", "hyperv"]
        ids.append(subprocess.run(berth + args + ["demo", "sleep", "600"], check=True,
                                  capture_output=True, text=True).stdout.strip())
    time.sleep(5)  # idle: the guests have settled
    ps = procs()
    per = []
    for cid in ids:
        shim = [p for p, (c, _) in ps.items() if c and c[0].endswith(b"berth-shim")
                and cid.encode() in c]
        if len(shim) != 1:
            sys.exit("no single shim for %s" % cid)
        tree = [shim[0]] + descendants(shim[0], ps)
        per.append(sum(pss_kb(p) for p in tree) / 1024.0)
    subprocess.run(berth + ["rm", "-f"] + ids, check=True, capture_output=True)
    return per

hvm = measure("hyperv")
proc = measure("process")
print("\n(b) memory: PSS per idle container (sleep 600), %d containers each, MiB" % m)
print("%-44s %7s %7s %7s" % ("", "median", "min", "max"))
print("%-44s %7.1f %7.1f %7.1f" % ("hyperv: berth-shim + qemu (256 MiB guest)",
                                   statistics.median(hvm), min(hvm), max(hvm)))
print("%-44s %7.1f %7.1f %7.1f" % ("process: berth-shim + the container's processes",
                                   statistics.median(proc), min(proc), max(proc)))
PY
exit 0
