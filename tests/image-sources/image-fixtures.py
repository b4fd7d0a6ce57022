#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Make image-source test inputs from an OCI layout (the demo image).

  image-fixtures.py engine25 LAYOUT OUT.tar     docker save tar as Engine >= 25 writes it
  image-fixtures.py linked LAYOUT OUT.tar       manifest.json naming a symlink and a hard link
  image-fixtures.py gzip IN OUT                 gzip-compress a file
  image-fixtures.py nested LAYOUT OUTDIR        index.json -> unnamed index -> named manifest
  image-fixtures.py twotags LAYOUT OUTDIR       two images: demo:latest and other:1.0
  image-fixtures.py hostile KIND LAYOUT OUT     a broken or malicious input (see HOSTILE)

Everything is built with the standard library only, deterministically.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def load_layout(layout):
    with open(os.path.join(layout, "index.json"), "rb") as f:
        index = json.load(f)
    desc = index["manifests"][0]
    blobs = {}
    bdir = os.path.join(layout, "blobs", "sha256")
    for name in sorted(os.listdir(bdir)):
        with open(os.path.join(bdir, name), "rb") as f:
            blobs[name] = f.read()
    manifest = json.loads(blobs[desc["digest"][7:]])
    return index, desc, manifest, blobs


def add(tf, name, data=None, kind=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    ti.linkname = link
    ti.size = len(data) if data is not None else 0
    tf.addfile(ti, io.BytesIO(data) if data is not None else None)


def engine25_members(layout, manifest_json=None):
    index, desc, manifest, blobs = load_layout(layout)
    members = [("blobs/", None), ("blobs/sha256/", None)]
    members += [("blobs/sha256/" + h, blobs[h]) for h in sorted(blobs)]
    entry = {
        "Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
        "RepoTags": ["demo:latest"],
        "Layers": ["blobs/sha256/" + l["digest"][7:] for l in manifest["layers"]],
    }
    members += [
        ("index.json", dumps(index)),
        ("manifest.json", dumps(manifest_json if manifest_json is not None else [entry])),
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        ("repositories", dumps({"demo": {"latest": manifest["layers"][-1]["digest"][7:]}})),
    ]
    return members


def linked(layout, out):
    """No index.json; Layers is a symlink, Config a hard link, to the blobs."""
    _, _, manifest, blobs = load_layout(layout)
    cfg = "blobs/sha256/" + manifest["config"]["digest"][7:]
    layer = "blobs/sha256/" + manifest["layers"][0]["digest"][7:]
    entry = {"Config": "./img/config.json", "RepoTags": ["demo:latest"],
             "Layers": ["img/sub/layer.tar"]}
    members = [m for m in engine25_members(layout, [entry]) if m[0] != "index.json"]
    members += [("img/", None), ("img/sub/", None),
                ("img/sub/layer.tar", (tarfile.SYMTYPE, "../../" + layer)),
                ("img/config.json", (tarfile.LNKTYPE, cfg))]
    write_tar(out, members)


def write_tar(out, members):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            if isinstance(data, tuple):  # (kind, link)
                add(tf, name, None, data[0], data[1])
            elif data is None:
                add(tf, name, None, tarfile.DIRTYPE)
            else:
                add(tf, name, data)


def copy_layout(layout, outdir):
    shutil.copytree(layout, outdir)


def put_blob(outdir, data):
    with open(os.path.join(outdir, "blobs", "sha256", sha(data)[7:]), "wb") as f:
        f.write(data)
    return sha(data), len(data)


def write_index(outdir, manifests):
    with open(os.path.join(outdir, "index.json"), "wb") as f:
        f.write(dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}))


def nested(layout, outdir):
    copy_layout(layout, outdir)
    index, _, _, _ = load_layout(layout)
    inner = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": index["manifests"]})
    d, n = put_blob(outdir, inner)
    write_index(outdir, [{"mediaType": "application/vnd.oci.image.index.v1+json",
                          "digest": d, "size": n}])


def twotags(layout, outdir):
    copy_layout(layout, outdir)
    index, desc, manifest, blobs = load_layout(layout)
    config = json.loads(blobs[manifest["config"]["digest"][7:]])
    config["config"]["Cmd"] = ["ls", "/"]
    cdata = dumps(config)
    cd, cn = put_blob(outdir, cdata)
    m2 = dict(manifest)
    m2["config"] = dict(manifest["config"], digest=cd, size=cn)
    md, mn = put_blob(outdir, dumps(m2))
    second = {"mediaType": desc["mediaType"], "digest": md, "size": mn,
              "annotations": {"io.containerd.image.name": "docker.io/library/other:1.0",
                              "org.opencontainers.image.ref.name": "1.0"}}
    write_index(outdir, [desc, second])


HOSTILE = {
    # OCI layouts (directories)
    "index-digest-dotdot": "index.json descriptor digest sha256:../../etc/passwd",
    "index-malformed": "index.json is not JSON",
    "blob-symlink-out": "blobs/sha256/<manifest> is a symlink to /etc/passwd",
    # docker save tars
    "layers-dotdot": "manifest.json Layers ../../etc/passwd",
    "layers-absolute": "manifest.json Layers /etc/passwd",
    "config-symlink-out": "Config is a tar symlink to ../../../etc/passwd",
    "member-dotdot": "a tar member named ../evil",
    "truncated": "an Engine 25 tar cut in the middle of the layer",
    "manifest-malformed": "manifest.json is not JSON",
}


def hostile(kind, layout, out):
    if kind == "index-digest-dotdot":
        copy_layout(layout, out)
        write_index(out, [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": "sha256:../../etc/passwd", "size": 10,
                           "annotations": {"org.opencontainers.image.ref.name": "latest"}}])
    elif kind == "index-malformed":
        copy_layout(layout, out)
        with open(os.path.join(out, "index.json"), "wb") as f:
            f.write(b'{"schemaVersion":2,"manifests":[{"digest":')
    elif kind == "blob-symlink-out":
        copy_layout(layout, out)
        _, desc, _, _ = load_layout(layout)
        p = os.path.join(out, "blobs", "sha256", desc["digest"][7:])
        os.unlink(p)
        os.symlink("/etc/passwd", p)
    elif kind in ("layers-dotdot", "layers-absolute"):
        _, _, manifest, _ = load_layout(layout)
        bad = "../../etc/passwd" if kind == "layers-dotdot" else "/etc/passwd"
        entry = {"Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
                 "RepoTags": ["demo:latest"], "Layers": [bad]}
        write_tar(out, [m for m in engine25_members(layout, [entry]) if m[0] != "index.json"])
    elif kind == "config-symlink-out":
        entry = {"Config": "cfg/config.json", "RepoTags": ["demo:latest"], "Layers": []}
        write_tar(out, [("cfg/", None),
                        ("cfg/config.json", (tarfile.SYMTYPE, "../../../etc/passwd")),
                        ("manifest.json", dumps([entry]))])
    elif kind == "member-dotdot":
        write_tar(out, engine25_members(layout) + [("../evil", b"x")])
    elif kind == "truncated":
        tmp = out + ".full"
        members = engine25_members(layout)
        write_tar(tmp, members)
        with open(tmp, "rb") as f:
            data = f.read()
        os.unlink(tmp)
        _, _, manifest, blobs = load_layout(layout)
        layer = blobs[manifest["layers"][0]["digest"][7:]]
        cut = data.index(layer[:4096]) + len(layer) // 2
        with open(out, "wb") as f:
            f.write(data[:cut])
    elif kind == "manifest-malformed":
        members = [m if m[0] != "manifest.json" else ("manifest.json", b"[{\"Config\":")
                   for m in engine25_members(layout)]
        write_tar(out, members)
    else:
        raise SystemExit(f"unknown hostile kind {kind}")


def main(argv):
    if len(argv) == 4 and argv[1] == "engine25":
        write_tar(argv[3], engine25_members(argv[2]))
    elif len(argv) == 4 and argv[1] == "linked":
        linked(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "gzip":
        with open(argv[2], "rb") as f, gzip.GzipFile(argv[3], "wb", mtime=0) as g:
            shutil.copyfileobj(f, g)
    elif len(argv) == 4 and argv[1] == "nested":
        nested(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "twotags":
        twotags(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "hostile":
        hostile(argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
