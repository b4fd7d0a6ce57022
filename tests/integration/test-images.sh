#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Images end to end, with real peers: a Debian docker-registry on loopback
# (once without auth, once with htpasswd), images pushed by skopeo and pulled
# by berth with digests compared, whiteouts on both storage drivers, archives
# from skopeo loaded by berth and berth's archives read by skopeo and podman,
# a corpus of hostile layers, an interrupted pull, and the collector.
#
#   test-images.sh BERTH MAKE_OCI_IMAGE [BERTHD]
. "$(dirname "$0")/lib.sh"
BERTH=$1
MKIMG=$2
BERTHD=${3:-}
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: real containers need root"
    exit 77
fi
for tool in docker-registry skopeo python3 htpasswd; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (.ci/install-deps)"; exit 77; }
done
[ -x /bin/busybox ] || { echo "SKIP: /bin/busybox missing (busybox-static)"; exit 77; }
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
export DOCKER_CONFIG="$T/docker-config"

# Two engines on the same machine: one per storage driver.
for d in overlay vfs; do
    printf '{"defaults": {"storage": "%s"}}\n' $d >"$T/$d.json"
done
b() { "$BERTH" --config "$T/overlay.json" --root "$T/root" --runroot "$T/run" "$@"; }
bv() { "$BERTH" --config "$T/vfs.json" --root "$T/root-vfs" --runroot "$T/run-vfs" "$@"; }

regs=""
cleanup() {
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    for c in $(bv ps -aq 2>/dev/null); do bv rm -f "$c" >/dev/null 2>&1; done
    for p in $regs; do kill "$p" 2>/dev/null; done
    lib_cleanup
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_registry NAME [htpasswd-file]: sets $port; the registry's data is $T/NAME.
start_registry() {
    port=$(free_port)
    mkdir -p "$T/$1"
    {
        echo "version: 0.1"
        echo "log: {level: error}"
        echo "storage: {filesystem: {rootdirectory: $T/$1}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$port}"
        [ -n "${2:-}" ] && echo "auth: {htpasswd: {realm: berth-test, path: $2}}"
    } >"$T/$1.yml"
    docker-registry serve "$T/$1.yml" >"$T/$1.log" 2>&1 &
    regs="$regs $!"
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
        sleep 0.1
    done
    echo "registry $1 did not start:"; cat "$T/$1.log"; exit 1
}

# tree_hash DIR: names, types, modes, sizes and contents of everything below DIR.
tree_hash() { (cd "$1" && find . -printf '%p %y %m %s %l\n' | sort && find . -type f -exec md5sum {} + | sort) | md5sum; }

python3 "$MKIMG" "$T/multi" multi || { echo "could not build the test image"; exit 1; }
python3 "$MKIMG" "$T/index" index || exit 1
python3 "$MKIMG" "$T/multi-gzip" multi-gzip || exit 1
python3 "$MKIMG" "$T/big" big || exit 1
python3 "$MKIMG" "$T/rootattr" rootattr || exit 1

# --- registry: push with skopeo, pull with berth ----------------------------
start_registry reg
REG=127.0.0.1:$port
skopeo copy -q --dest-tls-verify=false oci:"$T/multi":latest docker://$REG/test/multi:1 || not_ok "skopeo push"
skopeo copy -q --all --dest-tls-verify=false oci:"$T/index":latest docker://$REG/test/index:1 || not_ok "skopeo push index"
skopeo copy -q --dest-tls-verify=false oci:"$T/big":latest docker://$REG/test/big:1 || not_ok "skopeo push big"
skopeo copy -q --dest-tls-verify=false oci:"$T/rootattr":latest docker://$REG/test/rootattr:1 || not_ok "skopeo push rootattr"

expect_exit 0 "pull a 4-layer image from the local registry" b pull $REG/test/multi:1
want=$(skopeo inspect --tls-verify=false docker://$REG/test/multi:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
b image inspect $REG/test/multi:1 >"$T/inspect.json"
expect_grep "$REG/test/multi@$want" "$T/inspect.json" "RepoDigests has the registry's manifest digest"
cfg=$(skopeo inspect --tls-verify=false --raw docker://$REG/test/multi:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])')
expect_grep "\"Id\": \"$cfg\"" "$T/inspect.json" "image id is the config digest"
expect_exit 0 "pull again: nothing to download" b pull $REG/test/multi:1
expect_grep "Already exists" "$T/out" "layers already present are reused"

# The merged tree after whiteouts and opaque dirs, on both storage drivers.
check_tree() { # $1: label, rest: berth function
    label=$1; shift
    expect_exit 0 "$label: run from the pulled image" "$@" run --rm $REG/test/multi:1 sh -c 'cd /data && find . | sort && cat replaced && stat -c "%u:%g %a" owned && echo FROM_IMAGE=$FROM_IMAGE'
    expected='.
./dir
./dir/new-after
./dir/new-before
./keep
./link
./owned
./replaced
./top
now a file
1234:5678 4750
FROM_IMAGE=1'
    [ "$(cat "$T/out")" = "$expected" ] && ok "$label: whiteouts, opaque dir, replaced dir, owners and env are right" || {
        not_ok "$label: merged tree"; sed 's/^/    /' "$T/out"; }
}
check_tree overlay b
expect_exit 0 "vfs: pull" bv pull $REG/test/multi:1
check_tree vfs bv

# Layers unpack in parallel and move onto their parent once it is committed:
# the root's owner and mode set by a middle layer survive the layer above it.
for eng in b bv; do
    expect_exit 0 "$eng: pull an image whose middle layer sets the root's owner and mode" $eng pull $REG/test/rootattr:1
    expect_exit 0 "$eng: run it" $eng run --rm $REG/test/rootattr:1 sh -c 'stat -c "%u:%g %a" / && cat /a /b'
    [ "$(cat "$T/out")" = "$(printf '1234:5678 751\na\nb')" ] && ok "$eng: the root keeps the middle layer's owner and mode" ||
        not_ok "$eng: root and files: $(cat "$T/out" | tr '\n' ' ')"
done

# An index: the host's platform by default, another on request.
expect_exit 0 "pull a multi-platform index" b pull $REG/test/index:1
b image inspect $REG/test/index:1 >"$T/out"
expect_grep '"Architecture": "amd64"' "$T/out" "the host's platform was picked"
expect_exit 0 "pull --platform linux/arm64" b pull --platform linux/arm64 $REG/test/index:1
b image inspect $REG/test/index:1 >"$T/out"
expect_grep '"Architecture": "arm64"' "$T/out" "--platform picks the arm64 manifest"

# --- an interrupted pull completes on the next one --------------------------
"$BERTH" --config "$T/overlay.json" --root "$T/root" --runroot "$T/run" pull $REG/test/big:1 >/dev/null 2>&1 &
pp=$!
# Kill it as soon as the big layer has started to arrive (polled often: loopback is fast).
for _ in $(seq 500); do
    [ -n "$(find "$T/root/content/ingest" -name '*.partial' -size +64k 2>/dev/null)" ] && break
    sleep 0.01
done
kill -9 $pp 2>/dev/null; wait $pp 2>/dev/null
expect_exit 1 "no image after the interrupted pull" b image inspect $REG/test/big:1
expect_exit 0 "the next pull completes it" b pull $REG/test/big:1
# The killed pull was unpacking while it downloaded: its snapshot is gone too.
! ls "$T/root/drivers/storage/overlay/snapshots" | grep -q '^import-' && ok "the killed pull's snapshot was reclaimed" ||
    not_ok "import snapshots left: $(ls "$T/root/drivers/storage/overlay/snapshots" | grep '^import-' | tr '\n' ' ')"
expect_exit 0 "and the layer is whole" b run --rm $REG/test/big:1 sh -c 'md5sum /big.bin | cut -c1-32'
want=$(python3 - "$T/big" <<'EOF'
import hashlib, sys
h = hashlib.sha256(b"seed").digest(); m = hashlib.md5()
for _ in range((48 << 20) // 32):
    h = hashlib.sha256(h).digest(); m.update(h)
print(m.hexdigest())
EOF
)
[ "$(cat "$T/out")" = "$want" ] && ok "the file unpacked from the resumed blob is intact" || not_ok "big.bin md5 $(cat "$T/out") != $want"

# --- a blob whose bytes don't match its digest --------------------------------
cp -r "$T/multi" "$T/tampered"
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"][7:])); print(m["layers"][1]["digest"][7:])' "$T/tampered")
printf 'x' | dd of="$T/tampered/blobs/sha256/$layer" bs=1 seek=100 conv=notrunc 2>/dev/null
# skopeo verifies what it pushes, so berth loads the tampered layout directly.
tar -C "$T/tampered" -cf "$T/tampered.tar" .
bt() { "$BERTH" --config "$T/overlay.json" --root "$T/root-t" --runroot "$T/run-t" "$@"; }
expect_exit 1 "load of a layout with a corrupted blob fails" bt load -i "$T/tampered.tar"
expect_grep "digest mismatch" "$T/err" "the error says the digest does not match"
[ -z "$(bt images -q)" ] && ok "no image recorded from corrupted content" || not_ok "an image was recorded"
[ -z "$(ls "$T/root-t/content/blobs/sha256" | grep "$layer")" ] && ok "the corrupted blob was not stored" || not_ok "corrupted blob stored"
# It was being unpacked as it was read: nothing of that is left either.
# (Layers cancelled after it may keep their partial bytes for a resume.)
[ -z "$(ls "$T/root-t/content/ingest" | grep "$layer")" ] && ok "no ingest bytes of the corrupted blob" || not_ok "ingest holds the corrupted blob: $(ls "$T/root-t/content/ingest")"
! ls "$T/root-t/drivers/storage/overlay/snapshots" | grep -q '^import-' && ok "no snapshot of the corrupted layer" || not_ok "a snapshot of the corrupted layer is left"

# --- authentication -----------------------------------------------------------
htpasswd -Bbn alice s3cret >"$T/htpasswd" 2>/dev/null
start_registry authreg "$T/htpasswd"
AREG=127.0.0.1:$port
skopeo copy -q --dest-tls-verify=false --dest-creds alice:s3cret oci:"$T/multi":latest docker://$AREG/team/app:1 || not_ok "push to the auth registry"
expect_exit 1 "pull without credentials is refused" b pull $AREG/team/app:1
expect_grep "nauthorized\|uthentication" "$T/err" "the refusal says why"
expect_exit 1 "login with a wrong password" b login -u alice -p wrong $AREG
[ ! -e "$DOCKER_CONFIG/config.json" ] || ! grep -q "$AREG" "$DOCKER_CONFIG/config.json" && ok "a failed login stores nothing" || not_ok "failed login stored credentials"
expect_exit 0 "login" b login -u alice -p s3cret $AREG
expect_grep "$AREG" "$DOCKER_CONFIG/config.json" "credentials stored in config.json"
expect_exit 0 "pull with stored credentials" b pull $AREG/team/app:1
expect_exit 0 "logout" b logout $AREG
expect_exit 1 "pull after logout is refused again" b pull $AREG/team/app:1
# berthd: docker pull hands the client's credentials over in X-Registry-Auth; berthd
# passes them to its pull helper on stdin (the daemon itself is logged out here).
if [ -n "$BERTHD" ] && command -v docker >/dev/null; then
    "$BERTHD" -H "unix://$T/d.sock" --config "$T/overlay.json" --root "$T/root" --runroot "$T/run" 2>"$T/dlog" &
    regs="$regs $!"
    for _ in $(seq 50); do [ -S "$T/d.sock" ] && break; sleep 0.1; done
    mkdir -p "$T/dc-none" "$T/dc-alice"
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$AREG" "$(printf alice:s3cret | base64)" >"$T/dc-alice/config.json"
    b rmi $AREG/team/app:1 >/dev/null 2>&1
    expect_exit 1 "docker pull through berthd without credentials" env DOCKER_CONFIG="$T/dc-none" docker -H "unix://$T/d.sock" pull $AREG/team/app:1
    expect_grep "nauthorized\|uthentication" "$T/err" "the refusal reaches the docker client"
    expect_exit 0 "docker pull through berthd with the client's credentials" env DOCKER_CONFIG="$T/dc-alice" docker -H "unix://$T/d.sock" pull $AREG/team/app:1
    expect_exit 0 "the image is there" b image inspect $AREG/team/app:1
else
    echo "# SKIP docker pull with X-Registry-Auth: no berthd or no docker CLI"
fi

# --- archives: skopeo's into berth, berth's into skopeo and podman ------------
skopeo copy -q oci:"$T/multi-gzip":latest docker-archive:"$T/skopeo-docker.tar":skopeo/multi:1 || not_ok "skopeo writes a docker-archive"
expect_exit 0 "load a docker-archive written by skopeo" bv load -i "$T/skopeo-docker.tar"
expect_grep "skopeo/multi:1" "$T/out" "it is named as in the archive"
skopeo copy -q oci:"$T/multi":latest oci-archive:"$T/skopeo-oci.tar":latest || not_ok "skopeo writes an oci-archive"
expect_exit 0 "load an oci-archive written by skopeo" bv load -i "$T/skopeo-oci.tar"
expect_exit 0 "save to a docker archive" b save -o "$T/berth.tar" $REG/test/multi:1
expect_exit 0 "skopeo reads berth's archive" skopeo inspect docker-archive:"$T/berth.tar"
skopeo inspect --config docker-archive:"$T/berth.tar" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rootfs"]["diff_ids"][-1])' >"$T/d1"
b image inspect $REG/test/multi:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["RootFS"]["Layers"][-1])' >"$T/d2"
cmp -s "$T/d1" "$T/d2" && ok "skopeo sees the same DiffIDs" || not_ok "DiffIDs differ"
if command -v podman >/dev/null; then
    podman rmi -f $REG/test/multi:1 >/dev/null 2>&1
    expect_exit 0 "podman loads berth's archive" podman load -i "$T/berth.tar"
    # and what podman writes, berth reads
    # docker archives can't hold zstd layers: podman writes one of the gzip-only image
    podman load -q -i "$T/skopeo-docker.tar" >/dev/null 2>&1
    expect_exit 0 "podman save --format docker-archive" podman save --format docker-archive -o "$T/podman-docker.tar" docker.io/skopeo/multi:1
    expect_exit 0 "load podman's docker-archive" bt load -i "$T/podman-docker.tar"
    expect_grep "skopeo/multi:1" "$T/out" "podman's archive keeps the name"
    podman rmi -f docker.io/skopeo/multi:1 >/dev/null 2>&1
    expect_exit 0 "podman save --format oci-archive" podman save --format oci-archive -o "$T/podman-oci.tar" $REG/test/multi:1
    expect_exit 0 "load podman's oci-archive" bt load -i "$T/podman-oci.tar"
    expect_exit 0 "run from the image podman wrote" bt run --rm $REG/test/multi:1 cat /data/top
    expect_grep "^top$" "$T/out" "its layers unpacked whole"
    podman rmi -f $REG/test/multi:1 >/dev/null 2>&1
else
    echo "# SKIP podman load: podman is not installed"
fi
expect_exit 0 "save --format oci-archive" b save --format oci-archive -o "$T/berth-oci.tar" $REG/test/multi:1
expect_exit 0 "skopeo reads berth's oci-archive" skopeo inspect oci-archive:"$T/berth-oci.tar"
expect_exit 0 "load berth's own archive into another root" bv load -i "$T/berth.tar"
bv image inspect $REG/test/multi:1 >"$T/out"
expect_grep "\"Id\": \"$cfg\"" "$T/out" "the round trip keeps the image id"

# --- hostile layers -----------------------------------------------------------
mkdir -p "$T/canary"
echo secret >"$T/canary/secret"
ln -s secret "$T/canary/link"
before=$(tree_hash "$T/canary")
host_before=$(ls -A / /etc | md5sum)
for kind in dotdot absolute symlink-root symlink-up hardlink-out symlink-loop blockdev chardev oversize truncated-gzip bad-diffid; do
    python3 "$MKIMG" "$T/h-$kind" hostile-$kind --tag $kind >/dev/null || { not_ok "build hostile-$kind"; continue; }
    tar -C "$T/h-$kind" -cf "$T/h-$kind.tar" .
    for eng in b bv; do
        expect_exit 1 "$eng: hostile layer '$kind' is refused" $eng load -i "$T/h-$kind.tar"
        case $kind in
        truncated-gzip) expect_grep "runcated\|nexpected end\|gzip" "$T/err" "$eng: $kind: says the stream is cut" ;;
        bad-diffid) expect_grep "DiffID" "$T/err" "$eng: $kind: names the DiffID" ;;
        oversize) expect_grep "big" "$T/err" "$eng: $kind: names the entry" ;;
        dotdot|absolute) expect_grep "canary" "$T/err" "$eng: $kind: names the entry" ;;
        symlink-root) expect_grep "through-root" "$T/err" "$eng: $kind: names the entry" ;;
        symlink-up) expect_grep "through-up" "$T/err" "$eng: $kind: names the entry" ;;
        hardlink-out) expect_grep "stolen" "$T/err" "$eng: $kind: names the entry" ;;
        symlink-loop) expect_grep "loop1" "$T/err" "$eng: $kind: names the entry" ;;
        blockdev) expect_grep "disk" "$T/err" "$eng: $kind: names the entry" ;;
        chardev) expect_grep "mem" "$T/err" "$eng: $kind: names the entry" ;;
        esac
    done
done
[ "$(tree_hash "$T/canary")" = "$before" ] && ok "the canary tree is unchanged" || not_ok "the canary tree changed"
[ "$(ls -A / /etc | md5sum)" = "$host_before" ] && ok "nothing appeared in / or /etc" || not_ok "host root changed"
b images >"$T/out"
! grep -q "dotdot\|hostile" "$T/out" && ok "no hostile image was recorded" || not_ok "a hostile image was recorded"

# --- removal and the collector ------------------------------------------------
count_blobs() { ls "$1/content/blobs/sha256" | wc -l; }
expect_exit 0 "tag" b tag $REG/test/multi:1 mine:v1
expect_exit 0 "rmi of one of two tags only untags" b rmi mine:v1
expect_grep "Untagged: mine:v1" "$T/out" "says Untagged"
expect_exit 0 "the image is still there" b image inspect $REG/test/multi:1
id=$(b create $REG/test/multi:1 true)
expect_exit 1 "rmi of an image a container uses is refused" b rmi "$cfg"
expect_grep "conflict" "$T/err" "the refusal says conflict"
b rm "$id" >/dev/null
# system df sizes a stopped container's writable layer
b run --name writer $REG/test/multi:1 sh -c 'head -c 3000000 /dev/zero > /blob' >/dev/null 2>&1
expect_exit 0 "system df with a stopped container" b system df
awk '$1 == "Containers" {print $4}' "$T/out" | grep -q '^3\.0[0-9]*MB$' && ok "its writable layer counts (about 3MB)" || not_ok "containers size: $(grep Containers "$T/out")"
b rm writer >/dev/null
expect_exit 0 "image prune -a -f" b image prune -a -f
[ -z "$(b images -q)" ] && ok "no images left" || not_ok "images left: $(b images -q | tr '\n' ' ')"
[ "$(count_blobs "$T/root")" -eq 0 ] && ok "no orphaned blobs after prune" || not_ok "$(count_blobs "$T/root") blobs left"
[ -z "$(ls "$T/root/content/ingest")" ] && ok "no partial downloads left" || not_ok "ingest not empty"
expect_exit 0 "system df" b system df
finish
