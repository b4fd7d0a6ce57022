#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Build berth's demo image as an OCI image layout from a static busybox.

  make-demo-image.py --check BUSYBOX        exit 0 when BUSYBOX is a static ELF
  make-demo-image.py BUSYBOX OUTDIR         write the layout to OUTDIR
  make-demo-image.py --install SRC SUBDIR   copy SRC to $MESON_INSTALL_DESTDIR_PREFIX/SUBDIR

The image is "demo:latest" (index.json annotations
org.opencontainers.image.ref.name=latest and
io.containerd.image.name=docker.io/library/demo:latest): one gzip layer
with bin/busybox and a symlink per applet (from `busybox --list`),
etc/passwd and etc/group (root, nobody), root/ and tmp/ (mode 1777); the
config runs `sh` with a standard PATH.

The output is deterministic: entries sorted, owner 0:0, mtimes and the
config's dates from SOURCE_DATE_EPOCH (0 when unset), gzip header mtime 0
and no file name, JSON with sorted keys. The digests therefore change only
when busybox (or zlib's output) changes.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

REF_NAME = "latest"
IMAGE_NAME = "docker.io/library/demo:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"

# ELF e_machine -> OCI architecture (image-spec config.md uses GOARCH names).
ARCH = {3: "386", 40: "arm", 62: "amd64", 183: "arm64", 21: "ppc64le", 22: "s390x",
        243: "riscv64", 8: "mips64le", 258: "loong64"}


def elf_info(path):
    """(architecture, is_static) of an ELF executable."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if len(hdr) < 52 or hdr[:4] != b"\x7fELF":
            raise ValueError(f"{path} is not an ELF file")
        is64, little = hdr[4] == 2, hdr[5] == 1
        end = "<" if little else ">"
        machine = struct.unpack_from(end + "H", hdr, 18)[0]
        if is64:
            phoff, = struct.unpack_from(end + "Q", hdr, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", hdr, 54)
        else:
            phoff, = struct.unpack_from(end + "I", hdr, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", hdr, 42)
        static = True
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack(end + "I", f.read(4))
            if p_type == 3:  # PT_INTERP: needs a dynamic loader the image does not have
                static = False
    if machine not in ARCH:
        raise ValueError(f"{path}: unknown ELF machine {machine}")
    return ARCH[machine], static


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(busybox, epoch):
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    with open(busybox, "rb") as f:
        binary = f.read()
    entries = {}

    def add(name, kind, mode, data=b"", target=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime = kind, mode, epoch
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.linkname = target
        ti.size = len(data)
        entries[name] = (ti, data)

    add("bin", tarfile.DIRTYPE, 0o755)
    add("bin/busybox", tarfile.REGTYPE, 0o755, binary)
    for a in applets:
        if "/" not in a and a not in ("busybox", "", ".", ".."):
            add("bin/" + a, tarfile.SYMTYPE, 0o777, target="busybox")
    add("etc", tarfile.DIRTYPE, 0o755)
    add("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD.encode())
    add("etc/group", tarfile.REGTYPE, 0o644, GROUP.encode())
    add("root", tarfile.DIRTYPE, 0o700)
    add("tmp", tarfile.DIRTYPE, 0o1777)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(entries):
            ti, data = entries[name]
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def build(busybox, outdir):
    arch, static = elf_info(busybox)
    if not static:
        raise SystemExit(f"{busybox} is dynamically linked; the demo image needs busybox-static")
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

    diff = layer_tar(busybox, epoch)
    gz = io.BytesIO()
    # mtime=0 and no file name: the gzip header holds nothing that varies.
    with gzip.GzipFile(filename="", fileobj=gz, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(diff)
    layer = gz.getvalue()

    config = dumps({
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(diff)]},
        "history": [{"created": created, "created_by": "berth demo image: busybox-static"}],
    })
    manifest = dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(layer), "size": len(layer)}],
    })
    index = dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(manifest),
            "size": len(manifest),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": IMAGE_NAME,
                            "org.opencontainers.image.ref.name": REF_NAME},
        }],
    })

    # Build beside the output and rename, so an interrupted build leaves no half layout.
    parent = os.path.dirname(os.path.abspath(outdir))
    tmp = tempfile.mkdtemp(prefix=".demo-image-", dir=parent)
    try:
        blobs = os.path.join(tmp, "blobs", "sha256")
        os.makedirs(blobs)
        for data in (layer, config, manifest):
            with open(os.path.join(blobs, sha256(data)[7:]), "wb") as f:
                f.write(data)
        with open(os.path.join(tmp, "oci-layout"), "wb") as f:
            f.write(b'{"imageLayoutVersion":"1.0.0"}')
        with open(os.path.join(tmp, "index.json"), "wb") as f:
            f.write(index)
        for root, dirs, files in os.walk(tmp):
            os.chmod(root, 0o755)
            for n in files:
                os.chmod(os.path.join(root, n), 0o644)
        if os.path.isdir(outdir):
            shutil.rmtree(outdir)
        os.rename(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def install(src, subdir):
    prefix = os.environ.get("MESON_INSTALL_DESTDIR_PREFIX")
    if not prefix:
        raise SystemExit("--install runs from meson install (MESON_INSTALL_DESTDIR_PREFIX unset)")
    if os.path.isabs(subdir):
        # An absolute datadir is not under the prefix; DESTDIR still applies.
        destdir = os.environ.get("DESTDIR", "")
        dest = os.path.join(destdir, subdir.lstrip("/")) if destdir else subdir
    else:
        dest = os.path.join(prefix, subdir)
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    shutil.copytree(src, dest)


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        try:
            _, static = elf_info(argv[2])
        except (OSError, ValueError) as e:
            print(e)
            return 1
        if not static:
            print(f"{argv[2]} is dynamically linked (install busybox-static)")
            return 1
        return 0
    if len(argv) == 4 and argv[1] == "--install":
        install(argv[2], argv[3])
        return 0
    if len(argv) == 3:
        build(argv[1], argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
