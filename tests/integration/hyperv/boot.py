# SPDX-License-Identifier: Apache-2.0
"""Boot the hyperv guest kernel in a qemu microvm and watch it (test and bench helper).

boot() runs qemu the way the hyperv driver will (microvm, direct kernel boot,
serial console on stdio, -no-reboot so a guest reboot ends qemu), optionally
with one virtio-serial port whose host end is a unix socket served here. It
returns what the guest printed, with times from qemu's start, and what it said
on the port. boot-init.c is the guest side.

As a command it prints that result as JSON (bench/vm-boot-floor.sh):
  boot.py --qemu Q --kernel K --initrd I [--accel tcg|kvm] [--smp N]
          [--port NAME] [--timeout S]
"""
import argparse
import json
import os
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# acpi=off: the guest kernel has no ACPI, and only without it does qemu put
# the virtio-mmio devices on the kernel command line (virtio_mmio.device=...),
# where VIRTIO_MMIO_CMDLINE_DEVICES finds them; with ACPI on they stay unseen.
MICROVM = "microvm,x-option-roms=off,isa-serial=on,rtc=on,acpi=off"
APPEND = "console=ttyS0 quiet panic=-1 reboot=t"
MARK = "berth-boot: "


def boot(qemu, kernel, initrd, accel="tcg", smp=1, mem=128, port=None, timeout=60.0):
    tmp = tempfile.mkdtemp(prefix="berth-boot-")
    res = {"lines": [], "first_init_line": None, "exit": None, "timed_out": False,
           "port_lines": [], "nonce": None, "stderr": "", "seconds": None}
    listener = conn = None
    proc = None
    try:
        append = APPEND
        cmd = [qemu, "-M", MICROVM, "-accel", accel, "-m", str(mem), "-smp", str(smp),
               "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
               "-no-reboot", "-kernel", kernel, "-initrd", initrd]
        if port:
            # The test is the server: qemu connects at start, before the guest
            # can write, so nothing the guest says is dropped.
            path = os.path.join(tmp, "port.sock")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(1)
            cmd += ["-device", "virtio-serial-device",
                    "-chardev", "socket,id=port0,path=" + path,
                    "-device", "virtserialport,chardev=port0,name=" + port]
            append += " berth_port=" + port
        cmd += ["-append", append]

        sel = selectors.DefaultSelector()
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        if listener:
            sel.register(listener, selectors.EVENT_READ, "listen")
        outbuf, portbuf, errbuf = b"", b"", b""
        open_streams = 2
        while open_streams:
            left = start + timeout - time.monotonic()
            if left <= 0:
                res["timed_out"] = True
                break
            for key, _ in sel.select(left):
                what = key.data
                if what == "listen":
                    conn, _ = listener.accept()
                    sel.unregister(listener)
                    sel.register(conn, selectors.EVENT_READ, "port")
                    continue
                if what == "port":
                    data = conn.recv(4096)
                    if not data:
                        sel.unregister(conn)
                        continue
                    portbuf += data
                    while b"\n" in portbuf:
                        line, portbuf = portbuf.split(b"\n", 1)
                        text = line.decode(errors="replace")
                        res["port_lines"].append(text)
                        if text.startswith("hello "):
                            res["nonce"] = "ping-" + secrets.token_hex(8)
                            conn.sendall((res["nonce"] + "\n").encode())
                    continue
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                if what == "err":
                    errbuf += data
                    continue
                outbuf += data
                now = time.monotonic() - start
                while b"\n" in outbuf:
                    line, outbuf = outbuf.split(b"\n", 1)
                    text = line.decode(errors="replace").rstrip("\r")
                    res["lines"].append((round(now, 4), text))
                    if res["first_init_line"] is None and text.startswith(MARK):
                        res["first_init_line"] = round(now, 4)
        if res["timed_out"]:
            proc.kill()
        res["exit"] = proc.wait()
        res["seconds"] = round(time.monotonic() - start, 4)
        res["stderr"] = errbuf.decode(errors="replace")
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        for s in (conn, listener):
            if s:
                s.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def init_lines(res):
    """The guest init's console lines, without the marker prefix."""
    return [t[len(MARK):] for _, t in res["lines"] if t.startswith(MARK)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--port")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    res = boot(a.qemu, a.kernel, a.initrd, a.accel, a.smp, port=a.port, timeout=a.timeout)
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
