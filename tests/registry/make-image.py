#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Deterministic test images for the registry driver's tests.

  make-image.py layout DIR     write an OCI image layout to DIR and print a JSON
                               summary of what it holds (digests, sizes, media types)
  make-image.py push-blob URL REPO SIZE SEED
                               upload SIZE pseudo-random bytes (from SEED) as one blob
                               to the registry at URL (monolithic POST+PUT, streamed),
                               print {"digest", "size"}

The layout holds two tags:
  "v1"     an OCI manifest with three layers (two gzip tars, one plain tar
           with a few MiB of pseudo-random data, so streams take many reads)
  "multi"  an OCI index: linux/amd64 -> the "v1" manifest, linux/arm64 -> a
           manifest with two small dummy layers
Everything is built with the standard library only, with fixed mtimes,
owners and gzip headers, so every run produces the same bytes.
"""
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import sys
import tarfile
import urllib.parse

MTIME = 1700000000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_tar(entries):
    """entries: (name, kind, data_or_target, mode); kind is 'dir', 'file', 'symlink', 'link'."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=6) as f:
        f.write(data)
    return out.getvalue()


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def blob(self, data, media_type):
        digest = sha256(data)
        path = os.path.join(self.root, "blobs", "sha256", digest[7:])
        with open(path, "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def json_blob(self, obj, media_type):
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
        return self.blob(text.encode(), media_type)


def image(layout, arch, layers, config_type, manifest_type, layer_types):
    """layers: list of (uncompressed tar, compress?)."""
    descs, diff_ids = [], []
    for (tar, compress), ltype in zip(layers, layer_types):
        diff_ids.append(sha256(tar))
        descs.append(layout.blob(gz(tar) if compress else tar, ltype))
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/tool"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "make-image.py"}
                    for _ in layers],
    }
    cdesc = layout.json_blob(config, config_type)
    manifest = {"schemaVersion": 2, "mediaType": manifest_type, "config": cdesc, "layers": descs}
    return layout.json_blob(manifest, manifest_type), cdesc, descs


def cmd_layout(root):
    layout = Layout(root)
    rnd = random.Random(20231114)
    l1 = make_tar([
        ("bin", "dir", None, 0o755),
        ("bin/tool", "file", b"#!/bin/sh\necho tool\n", 0o755),
        ("etc", "dir", None, 0o755),
        ("etc/hello.txt", "file", b"hello from layer 1\n", 0o644),
        ("etc/os-release", "file", b"NAME=berth-test\nID=berth-test\n", 0o644),
    ])
    l2 = make_tar([
        ("etc", "dir", None, 0o755),
        ("etc/.wh.hello.txt", "file", b"", 0o644),
        ("etc/motd", "file", b"layer 2 says hi\n", 0o644),
        ("etc/motd-link", "symlink", "motd", 0o777),
        ("etc/motd-hard", "link", "etc/motd", 0o644),
    ])
    l3 = make_tar([
        ("data", "dir", None, 0o755),
        ("data/random.bin", "file", rnd.randbytes(3 * 1024 * 1024 + 12345), 0o644),
    ])
    v1, v1_config, v1_layers = image(layout, "amd64", [(l1, True), (l2, True), (l3, False)],
                                     OCI_CONFIG, OCI_MANIFEST,
                                     [OCI_LAYER_GZ, OCI_LAYER_GZ, OCI_LAYER])
    arm = [make_tar([("dummy", "file", b"arm64 dummy layer %d\n" % i, 0o644)]) for i in (1, 2)]
    arm64, _, _ = image(layout, "arm64", [(t, True) for t in arm], OCI_CONFIG, OCI_MANIFEST,
                        [OCI_LAYER_GZ, OCI_LAYER_GZ])
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            dict(v1, platform={"architecture": "amd64", "os": "linux"}),
            dict(arm64, platform={"architecture": "arm64", "os": "linux", "variant": "v8"}),
        ],
    }
    multi = layout.json_blob(index, OCI_INDEX)

    def tagged(desc, tag):
        return dict(desc, annotations={"org.opencontainers.image.ref.name": tag})

    top = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [tagged(v1, "v1"), tagged(multi, "multi")]}
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(top, f, sort_keys=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    json.dump({"v1": v1, "v1_config": v1_config, "v1_layers": v1_layers, "multi": multi,
               "arm64": arm64}, sys.stdout, sort_keys=True)
    print()


def cmd_push_blob(url, repo, size, seed):
    """Stream a pseudo-random blob in 1 MiB pieces: the digest is computed in a first pass."""
    size, seed = int(size), int(seed)

    def pieces():
        rnd = random.Random(seed)
        left = size
        while left:
            n = min(left, 1 << 20)
            left -= n
            yield rnd.randbytes(n)

    h = hashlib.sha256()
    for p in pieces():
        h.update(p)
    digest = "sha256:" + h.hexdigest()
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"",
                 headers={"Content-Length": "0"})
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        sys.exit("push-blob: POST uploads: HTTP %d" % r.status)
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    query = (loc.query + "&" if loc.query else "") + "digest=" + urllib.parse.quote(digest)
    conn.putrequest("PUT", loc.path + "?" + query)
    conn.putheader("Content-Length", str(size))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    for p in pieces():
        conn.send(p)
    r = conn.getresponse()
    r.read()
    if r.status != 201:
        sys.exit("push-blob: PUT upload: HTTP %d" % r.status)
    json.dump({"digest": digest, "size": size}, sys.stdout)
    print()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "layout":
        cmd_layout(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "push-blob":
        cmd_push_blob(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
