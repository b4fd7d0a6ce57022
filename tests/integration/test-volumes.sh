#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Volumes with real containers: through the berth CLI (named volumes that
# outlive their container, read-only mounts, anonymous volumes from -v /path
# and from an image's VOLUME entries with the image's files copied up,
# run --rm and rm -v removing anonymous volumes but not named ones, in-use
# refusals, prune, bad names and path tricks refused without a trace), then
# through the docker CLI against a berthd of our own on the same root.
# Usage: test-volumes.sh BERTH BERTHD MAKE_OCI_IMAGE
. "$(dirname "$0")/lib.sh"
BERTH=$1
BERTHD=$2
MKIMG=$3
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
[ -n "${LSAN_OPTIONS:-}" ] && export LSAN_OPTIONS="$LSAN_OPTIONS:print_suppressions=0"
echo '{}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
S=$T/d.sock
cleanup() {
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    lib_cleanup
}
trap cleanup EXIT

# expect_one_line DESC: the failure said one line, starting "berth: ".
expect_one_line() {
    expect_lines 1 "$T/err" "$1: one line on stderr"
    expect_grep "^berth: " "$T/err" "$1: says who speaks"
}
# volumes: the names `volume ls -q` lists, in $T/vols.
volumes() { b volume ls -q >"$T/vols"; }
# store_state: what the store holds (volumes and containers), for "nothing changed" checks.
store_state() { { b volume ls -q; b ps -aq; ls "$T/root/volumes" 2>/dev/null; } | sort; }

# --- help and usage ------------------------------------------------------------
for cmd in "volume" "volume create" "volume ls" "volume inspect" "volume rm" "volume prune"; do
    # shellcheck disable=SC2086
    expect_exit 0 "berth $cmd --help" b $cmd --help
    expect_grep "Usage: berth volume" "$T/out" "$cmd: usage on stdout"
done
expect_exit 2 "volume without a command" b volume
expect_exit 2 "volume frob" b volume frob
expect_exit 2 "volume rm without a name" b volume rm
expect_exit 2 "volume ls with an operand" b volume ls extra
expect_exit 0 "run --help mentions volumes" b run --help
expect_grep "named volume" "$T/out" "run --help: -v takes a volume"
expect_grep "\-\-mount" "$T/out" "run --help: --mount"

# --- bad names and path tricks: one line, nothing made ------------------------
# (run says 125 for what it could not create, as docker run does)
# The demo image first (run pulls it from the images shipped with berth).
expect_exit 0 "a first container (brings the demo image)" b run --rm demo true
before=$(store_state)
for bad in "../x" "a/b" "a" ".hidden" "x y" "/abs"; do
    expect_exit 1 "volume create '$bad' is refused" b volume create "$bad"
    expect_one_line "volume create '$bad'"
done
expect_grep "invalid volume name" "$T/err" "the refusal names the rule"
expect_exit 125 "run -v ../x:/data is refused" b run --rm -v ../x:/data demo true
expect_one_line "run -v ../x:/data"
expect_exit 125 "run -v a/b:/data is refused" b run --rm -v a/b:/data demo true
expect_exit 125 "run -v name:relative is refused" b run --rm -v vol1:data demo true
expect_exit 125 "run -v name:/a/../b is refused" b run --rm -v vol1:/a/../b demo true
expect_exit 125 "a mount point given twice is refused" b run --rm -v v1x:/d -v v2x:/d demo true
expect_grep "Duplicate mount point" "$T/err" "duplicate: Docker's message"
expect_exit 125 "--mount with an unknown type is refused" b run --rm --mount type=nfs,target=/x demo true
expect_exit 125 "--mount type=bind of a missing source is refused" b run --rm --mount type=bind,source="$T/nowhere",target=/x demo true
expect_grep "bind source path does not exist" "$T/err" "missing bind source: Docker's message"
expect_exit 125 "--mount with an unknown field is refused" b run --rm --mount type=volume,bogus=1,target=/x demo true
[ "$(store_state)" = "$before" ] && ok "refused requests left no volume, container or directory" ||
    not_ok "refusals changed the store: $(store_state)"
expect_exit 1 "inspect of a missing volume" b volume inspect nope
expect_one_line "volume inspect nope"
expect_grep "no such volume" "$T/err" "missing volume: says so"
expect_exit 1 "rm of a missing volume" b volume rm nope

# --- named volumes: data outlives the container, seen by the next one ---------
expect_exit 0 "volume create with a label" b volume create --label team=blue data1
expect_grep "^data1$" "$T/out" "create prints the name"
expect_exit 0 "volume create again is no error" b volume create data1
expect_exit 0 "volume inspect" b volume inspect data1
expect_grep '"Driver": "local"' "$T/out" "inspect: local driver"
expect_grep '"team": "blue"' "$T/out" "inspect: the label"
expect_grep "volumes/data1/_data" "$T/out" "inspect: the mountpoint under the root"
expect_exit 0 "write into a named volume" b run --rm -v data1:/data demo sh -c 'echo kept > /data/f'
expect_exit 0 "the next container reads it" b run --rm -v data1:/data demo cat /data/f
expect_grep "^kept$" "$T/out" "named volume data survived its container"
expect_exit 0 "run -v NAME makes a missing volume" b run --rm -v made1:/m demo sh -c 'echo x > /m/x'
volumes
expect_grep "^made1$" "$T/vols" "a named volume made on demand outlives run --rm"
expect_exit 0 "--mount type=volume reads the same data" b run --rm --mount type=volume,source=data1,target=/d,readonly demo cat /d/f
expect_grep "^kept$" "$T/out" "--mount: the same volume"

# --- read-only ---------------------------------------------------------------
expect_exit 1 "a :ro volume refuses writes" b run --rm -v data1:/data:ro demo sh -c 'echo no > /data/g'
expect_grep "Read-only file system" "$T/err" "ro: the kernel says read-only"
[ ! -e "$T/root/volumes/data1/_data/g" ] && ok "ro: nothing was written" || not_ok "ro volume was written"
mkdir -p "$T/hostdir" && echo from-host >"$T/hostdir/h"
expect_exit 0 "--mount type=bind of a host directory" b run --rm --mount type=bind,source="$T/hostdir",target=/h demo cat /h/h
expect_grep "^from-host$" "$T/out" "--mount type=bind: the host's file"
expect_exit 1 "--mount readonly refuses writes" b run --rm --mount type=volume,source=data1,target=/d,readonly demo touch /d/h

# --- in use: refused while any container uses it, even a stopped one ---------
cid=$(b create --name holder -v data1:/data -v /anon demo true)
expect_exit 0 "a created container with volumes" b start -a holder
expect_exit 1 "rm of a volume a stopped container uses" b volume rm data1
expect_one_line "volume rm in use"
expect_grep "volume is in use - \[\"$cid\"\]" "$T/err" "in use: Docker's message with the container id"
[ -e "$T/root/volumes/data1/_data/f" ] && ok "in use: the data stays" || not_ok "in-use volume lost its data"
expect_exit 0 "inspect shows the mounts" b inspect holder
expect_grep '"Type": "volume"' "$T/out" "inspect Mounts: Type"
expect_grep '"Name": "data1"' "$T/out" "inspect Mounts: Name"
expect_grep '"Destination": "/anon"' "$T/out" "inspect Mounts: the anonymous one"
anon=$(b inspect holder | sed -n 's/.*"Name": "\([0-9a-f]\{64\}\)".*/\1/p' | head -1)
[ -n "$anon" ] && ok "the anonymous volume has a 64-hex name" || not_ok "no anonymous volume in inspect"
expect_exit 0 "volume ls --filter dangling=false" b volume ls -q --filter dangling=false
expect_grep "^data1$" "$T/out" "dangling=false lists the used volume"
expect_exit 0 "volume ls --filter dangling=true" b volume ls -q --filter dangling=true
if grep -q "^data1$" "$T/out"; then not_ok "dangling=true lists a used volume"; else ok "dangling=true leaves used volumes out"; fi
expect_exit 0 "volume ls --filter label=team=blue" b volume ls -q --filter label=team=blue
expect_lines 1 "$T/out" "label filter: one volume"
expect_exit 1 "an unknown filter is refused" b volume ls --filter colour=red

# --- rm -v: anonymous volumes go, named ones stay ------------------------------
expect_exit 0 "rm -v" b rm -v holder
volumes
if grep -q "^$anon$" "$T/vols"; then not_ok "rm -v left the anonymous volume"; else ok "rm -v removed the anonymous volume"; fi
[ ! -e "$T/root/volumes/$anon" ] && ok "rm -v: its directory is gone" || not_ok "rm -v left $T/root/volumes/$anon"
expect_grep "^data1$" "$T/vols" "rm -v kept the named volume"
b create --name keeper -v /anon2 demo true >/dev/null
anon2=$(b inspect keeper | sed -n 's/.*"Name": "\([0-9a-f]\{64\}\)".*/\1/p' | head -1)
expect_exit 0 "rm without -v" b rm keeper
volumes
expect_grep "^$anon2$" "$T/vols" "rm without -v keeps the anonymous volume"

# --- run --rm: anonymous volumes go with the container -------------------------
expect_exit 0 "run --rm with -v /path and a named volume" b run --rm -v /scratch -v data1:/data demo sh -c 'echo t > /scratch/t'
volumes
[ "$(grep -c . "$T/vols")" -eq 3 ] && ok "run --rm left only the named volumes and the older anonymous one" ||
    not_ok "volumes after run --rm: $(cat "$T/vols")"

# --- prune -------------------------------------------------------------------
b create --name user2 -v made1:/m demo true >/dev/null
expect_exit 0 "volume prune (anonymous only)" b volume prune -f
expect_grep "^$anon2$" "$T/out" "prune removed the unused anonymous volume"
expect_grep "Total reclaimed space" "$T/out" "prune reports the space"
volumes
expect_grep "^data1$" "$T/vols" "prune without -a keeps named volumes"
echo n | b volume prune -a >"$T/out" 2>&1
expect_grep "Are you sure" "$T/out" "prune -a asks first"
volumes
expect_grep "^data1$" "$T/vols" "answering no removes nothing"
expect_exit 0 "volume prune -a" b volume prune -a -f
expect_grep "^data1$" "$T/out" "prune -a removed the unused named volume"
volumes
expect_grep "^made1$" "$T/vols" "prune -a keeps a volume a container uses"
if grep -q "^data1$" "$T/vols"; then not_ok "prune -a left data1"; else ok "data1 is gone"; fi
expect_exit 0 "volume rm -f of a volume in use" b volume rm -f made1
expect_exit 0 "rm user2" b rm user2
expect_exit 0 "system df" b system df
expect_grep "^Local Volumes" "$T/out" "system df: volumes row"

# --- an image's VOLUME entries: anonymous volumes with the image's files -------
if [ -x /bin/busybox ] && python3 "$MKIMG" "$T/vimg" volume --tag vtest:1 >/dev/null 2>"$T/err"; then
    expect_exit 0 "load the volume image" b load -i "$T/vimg"
    expect_exit 0 "run the volume image" b run --name vc vtest:1 sh -c 'cat /data/hello.txt /data/top.txt; stat -c "%u:%g %a" /data /data/hello.txt; readlink /data/escape; ls /data/sub; ls -A /empty | wc -l; test ! -e /data/gone.txt'
    expect_grep "^hello from the image$" "$T/out" "copy-up: the image's file is in the volume"
    expect_grep "^top layer$" "$T/out" "copy-up: the upper layer's file too"
    expect_grep "^1000:1000 750$" "$T/out" "copy-up: the directory's owner and mode"
    expect_grep "^1234:5678 640$" "$T/out" "copy-up: the file's owner and mode"
    expect_grep "^/etc$" "$T/out" "copy-up: a link stays a link"
    expect_grep "^deep.txt$" "$T/out" "copy-up: subdirectories"
    expect_grep "^0$" "$T/out" "copy-up: an empty VOLUME stays empty"
    vanon=$(b inspect vc | sed -n 's/.*"Name": "\([0-9a-f]\{64\}\)".*/\1/p' | head -1)
    [ -f "$T/root/volumes/$vanon/_data/hello.txt" ] || [ -f "$(b volume inspect "$vanon" | sed -n 's/.*"Mountpoint": "\(.*\)".*/\1/p')/hello.txt" ] &&
        ok "the file is in the volume on the host" || not_ok "no hello.txt in the volume"
    [ ! -e "$T/root/volumes/$vanon/_data/passwd" ] && ok "copy-up did not follow the link to /etc" || not_ok "copy-up followed a link"
    expect_exit 0 "a named volume over a VOLUME path gets the copy too" b run --rm -v fromimg:/data vtest:1 cat /data/hello.txt
    expect_grep "^hello from the image$" "$T/out" "named volume: copied up when fresh"
    expect_exit 0 "a non-empty volume is not copied into" b run --rm -v data2:/data demo sh -c 'echo mine > /data/mine'
    expect_exit 0 "run the image over it" b run --rm -v data2:/data vtest:1 ls /data
    if grep -q hello.txt "$T/out"; then not_ok "copy-up into a used volume"; else ok "a used volume keeps only its own files"; fi
    expect_exit 0 "volume-nocopy" b run --rm --mount type=volume,source=nocp,target=/data,volume-nocopy vtest:1 ls -A /data
    [ ! -s "$T/out" ] && ok "volume-nocopy: nothing copied" || not_ok "volume-nocopy copied: $(cat "$T/out")"
    expect_exit 0 "run --rm of the image" b run --rm vtest:1 true
    b rm -v vc >/dev/null
    volumes
    if grep -q '^[0-9a-f]\{64\}$' "$T/vols"; then not_ok "anonymous volumes left: $(cat "$T/vols")"; else ok "no anonymous volume left"; fi
    b volume rm fromimg data2 nocp >/dev/null
else
    echo "# skipping the image VOLUME checks: no /bin/busybox to build the image ($(cat "$T/err"))"
fi

# --- the docker CLI through berthd ---------------------------------------------
DOCKER=$(command -v docker)
if [ -z "$DOCKER" ]; then
    echo "# no docker CLI: skipping the berthd checks"
    finish
fi
"$BERTHD" -H "unix://$S" --config "$T/c.json" --root "$T/root" --runroot "$T/run" 2>"$T/dlog" &
dpid=$!
for _ in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
[ -S "$S" ] && ok "berthd listens" || not_ok "no socket: $(cat "$T/dlog")"
d() { DOCKER_HOST="unix://$S" DOCKER_CONFIG="$T/dcfg" "$DOCKER" "$@"; }

expect_exit 0 "docker volume create" d volume create --label via=docker dv1
expect_grep "^dv1$" "$T/out" "docker volume create prints the name"
expect_exit 0 "docker volume ls" d volume ls
expect_grep "^local  *dv1$" "$T/out" "docker volume ls: driver and name"
expect_exit 0 "docker volume ls --filter label" d volume ls -q --filter label=via=docker
expect_grep "^dv1$" "$T/out" "docker volume ls: label filter"
expect_exit 0 "docker volume inspect" d volume inspect -f '{{.Driver}} {{.Labels.via}} {{.Scope}}' dv1
expect_grep "^local docker local$" "$T/out" "docker volume inspect: fields"
expect_exit 1 "docker volume inspect of a missing one" d volume inspect nope
expect_grep "no such volume" "$T/err" "docker: no such volume"
expect_exit 1 "docker volume create ../x" d volume create ../x
expect_exit 0 "docker run -v name:/data writes" d run --rm -v dv1:/data demo sh -c 'echo via-docker > /data/f'
expect_exit 0 "berth sees what docker wrote" b run --rm -v dv1:/data demo cat /data/f
expect_grep "^via-docker$" "$T/out" "one volume for both front ends"
expect_exit 0 "docker run --rm with an anonymous volume" d run --rm -v /anon demo sh -c 'echo x > /anon/x'
d volume ls -q >"$T/vols"
if grep -q '^[0-9a-f]\{64\}$' "$T/vols"; then not_ok "docker run --rm left an anonymous volume"; else ok "docker run --rm removed its anonymous volume"; fi
expect_exit 0 "docker create with volumes" d create --name dc -v /anon -v dv1:/data demo true
expect_exit 0 "docker inspect Mounts" d inspect -f '{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}' dc
expect_grep "volume /anon true;" "$T/out" "docker inspect: the anonymous mount"
expect_grep "volume /data true;" "$T/out" "docker inspect: the named mount"
expect_exit 1 "docker volume rm of a volume in use" d volume rm dv1
expect_grep "volume is in use" "$T/err" "docker: in use refused (409)"
expect_exit 0 "docker system df -v" d system df -v
expect_grep "^dv1  *1 " "$T/out" "docker system df -v: the volume with one link"
expect_exit 0 "docker rm -v" d rm -v dc
d volume ls -q >"$T/vols"
if grep -q '^[0-9a-f]\{64\}$' "$T/vols"; then not_ok "docker rm -v left the anonymous volume"; else ok "docker rm -v removed the anonymous volume"; fi
expect_grep "^dv1$" "$T/vols" "docker rm -v kept the named volume"
expect_exit 0 "docker volume prune (anonymous only)" d volume prune -f
d volume ls -q >"$T/vols"
expect_grep "^dv1$" "$T/vols" "docker volume prune keeps named volumes"
expect_exit 0 "docker volume prune -a" d volume prune -a -f
expect_grep "^dv1$" "$T/out" "docker volume prune -a removed dv1"
expect_grep "Total reclaimed space: 11B" "$T/out" "prune reports the bytes it freed"
d volume create dv2 >/dev/null
expect_exit 0 "docker volume rm" d volume rm dv2
expect_grep "^dv2$" "$T/out" "docker volume rm prints the name"
d volume ls -q >"$T/vols"
[ ! -s "$T/vols" ] && ok "no volume left" || not_ok "volumes left: $(cat "$T/vols")"
# Bad requests on the raw API: Docker's status codes, JSON messages, nothing made.
if command -v curl >/dev/null; then
    api() { curl -s -o "$T/out" -w '%{http_code}' --unix-socket "$S" "$@"; }
    [ "$(api -X POST http://d/volumes/create -d '{bad')" = 400 ] && ok "API: bad JSON is 400" || not_ok "API: bad JSON: $(cat "$T/out")"
    [ "$(api -X POST http://d/volumes/create -d '{"Name":"a/b"}')" = 400 ] && ok "API: a bad name is 400" || not_ok "API: bad name: $(cat "$T/out")"
    [ "$(api -X POST http://d/volumes/create -d '{"Name":"nf","Driver":"nfs"}')" = 400 ] && ok "API: another driver is 400" || not_ok "API: driver: $(cat "$T/out")"
    expect_grep '"message"' "$T/out" "API: errors are {\"message\"}"
    [ "$(api -X DELETE http://d/volumes/nothere)" = 404 ] && ok "API: removing a missing volume is 404" || not_ok "API: delete missing: $(cat "$T/out")"
    [ "$(api -X DELETE 'http://d/volumes/nothere?force=1')" = 204 ] && ok "API: with force it is no error" || not_ok "API: forced delete: $(cat "$T/out")"
    [ "$(api 'http://d/v1.50/volumes?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D')" = 400 ] && ok "API: an unknown filter is 400" || not_ok "API: filter: $(cat "$T/out")"
    [ "$(api -X POST http://d/volumes/create -d '{"Name":"rawv"}')" = 201 ] && ok "API: create is 201" || not_ok "API: create: $(cat "$T/out")"
    [ "$(api -X POST 'http://d/v1.50/volumes/prune?filters=%7B%22all%22%3A%7B%22true%22%3Atrue%7D%7D')" = 200 ] && ok "API: prune all=true" || not_ok "API: prune"
    expect_grep '"VolumesDeleted":\["rawv"\]' "$T/out" "API: prune names what it removed"
fi
d volume ls -q >"$T/vols"
[ ! -s "$T/vols" ] && ok "no volume left by the raw API checks" || not_ok "volumes left: $(cat "$T/vols")"
kill -0 "$dpid" 2>/dev/null && ok "berthd still runs" || not_ok "berthd died: $(cat "$T/dlog")"
finish
