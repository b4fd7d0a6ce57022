#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# An interactive shell in a container, driven through a real pseudo-terminal
# as a person at a terminal would: type commands and read their output,
# resize the window, detach with ctrl-p ctrl-q, attach again, and exit.
# Usage: test-tty.py BERTH_BINARY MAKE_ROOTFS_SCRIPT   (as root)
import fcntl, os, pty, select, shutil, signal, struct, subprocess, sys, tempfile, termios, time

if os.geteuid() != 0:
    print("SKIP: real containers need root")
    sys.exit(77)

berth, make_rootfs = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="berth-tty-")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - " + what)


def base():
    return [berth, "--config", tmp + "/c.json", "--root", tmp + "/root", "--runroot", tmp + "/run"]


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def spawn(args, rows, cols):
    """Run args on a fresh pty (as its controlling terminal); returns (pid, master fd)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(args[0], args)
    set_size(fd, rows, cols)
    return pid, fd


def read_until(fd, needle, timeout=10.0):
    out = b""
    end = time.time() + timeout
    while needle.encode() not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def wait_exit(pid, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return None


try:
    with open(tmp + "/c.json", "w") as f:
        f.write('{"plugin_dirs": []}')
    subprocess.run(["sh", make_rootfs, tmp + "/rootfs"], check=True, stdout=subprocess.DEVNULL)

    # No network: the default bridge would outlive the scratch dir this test removes.
    pid, fd = spawn(base() + ["run", "-it", "--network", "none", "--name", "tt", "--rootfs",
                             tmp + "/rootfs", "sh"], 40, 100)
    os.write(fd, b"echo hel''lo-tty\n")
    out = read_until(fd, "hello-tty\r\n")
    check("hello-tty\r\n" in out, "a typed command runs and its output comes back through the pty")
    os.write(fd, b"tty; stty size\n")
    out = read_until(fd, "40 100")
    check("/dev/pts/0" in out, "the shell has a terminal inside the container")
    check("40 100" in out, "the container's terminal starts at the caller's size")
    set_size(fd, 30, 90)
    os.kill(pid, signal.SIGWINCH)
    time.sleep(0.3)
    os.write(fd, b"stty size\n")
    out = read_until(fd, "30 90")
    check("30 90" in out, "resizing the caller's window resizes the container's terminal")
    os.write(fd, b"\x10\x11")  # ctrl-p ctrl-q
    code = wait_exit(pid)
    check(code == 0, "ctrl-p ctrl-q detaches with status 0 (got %r)" % code)
    os.close(fd)
    ps = subprocess.run(base() + ["ps"], capture_output=True, text=True)
    check("tt" in ps.stdout, "the container keeps running after the detach")

    pid, fd = spawn(base() + ["attach", "tt"], 24, 80)
    time.sleep(0.3)
    os.write(fd, b"echo back-''again\n")
    out = read_until(fd, "back-again\r\n")
    check("back-again\r\n" in out, "attach reconnects the terminal")
    os.write(fd, b"exit 4\n")
    code = wait_exit(pid)
    check(code == 4, "exiting the shell ends attach with its status (got %r)" % code)
    os.close(fd)
    w = subprocess.run(base() + ["wait", "tt"], capture_output=True, text=True, timeout=20)
    check(w.stdout.strip() == "4", "the store has the exit code")
finally:
    subprocess.run(base() + ["rm", "-f", "tt"], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
