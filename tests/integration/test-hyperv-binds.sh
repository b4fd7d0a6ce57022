#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Bind mounts and volumes in a hyperv container: each source is bound under
# the sandbox's state dir, which qemu shares into the guest by virtio-9p;
# the agent binds the entries where the spec says. Writes reach the host,
# :ro is read-only (on the host side too), single files and named volumes
# work, the shim's /etc/hostname and /etc/hosts are the container's, a
# socket is refused with a clear message, and nothing stays mounted while
# the sources keep their contents.
# Usage: test-hyperv-binds.sh BERTH KERNEL KERNEL_RELEASE_FILE INITRD
. "$(dirname "$0")/hyperv-lib.sh"

expect_exit 0 "the demo image is there" b pull demo
mkdir -p "$T/vol"
echo from-the-host >"$T/vol/in"
echo a-single-file >"$T/file"

expect_exit 0 "-v DIR:/data" hv -v "$T/vol:/data" demo sh -c 'cat /data/in; echo from-the-guest >/data/out'
expect_grep "^from-the-host$" "$T/out" "the guest reads the host's file"
[ "$(cat "$T/vol/out" 2>/dev/null)" = from-the-guest ] && ok "the host sees the guest's write" ||
    not_ok "the guest's write is not on the host"
nothing_left "after -v DIR"
[ -f "$T/vol/in" ] && ok "the source keeps its files" || not_ok "the source lost its files"

expect_exit 1 "writing to -v DIR:/data:ro fails" hv -v "$T/vol:/data:ro" demo sh -c 'echo x >/data/new'
expect_grep "Read-only file system" "$T/err" "with a read-only file system"
[ ! -e "$T/vol/new" ] && ok "nothing was written on the host" || not_ok "a :ro mount was written"
nothing_left "after :ro"

expect_exit 0 "-v FILE:/etc/motd:ro" hv -v "$T/file:/etc/motd:ro" demo cat /etc/motd
expect_grep "^a-single-file$" "$T/out" "a single file is bound"

expect_exit 0 "--hostname" hv --hostname vm-host demo sh -c 'hostname; cat /etc/hostname; cat /etc/hosts'
[ "$(grep -c '^vm-host$' "$T/out")" -eq 2 ] && ok "the hostname and /etc/hostname are the container's" ||
    not_ok "hostname and /etc/hostname: $(head -2 "$T/out" | tr '\n' ' ')"
expect_grep "vm-host" "$T/out" "/etc/hosts names it"

expect_exit 0 "a named volume" b volume create hvvol
expect_exit 0 "written in one VM" hv -v hvvol:/v demo sh -c 'echo kept >/v/f'
expect_exit 0 "read in the next" hv -v hvvol:/v demo cat /v/f
expect_grep "^kept$" "$T/out" "the volume keeps what the first VM wrote"
expect_exit 0 "volume rm" b volume rm hvvol
nothing_left "after the volume"

# A unix socket can't be shared over 9p: refused, and nothing is left.
if python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$T/sock" 2>/dev/null; then
    expect_exit 125 "a socket is refused" hv -v "$T/sock:/s" demo true
    expect_grep "only directories and regular files" "$T/err" "the refusal says why"
    nothing_left "after the socket"
else
    echo "# python3 can't make a unix socket: the socket check is skipped"
fi
finish
