#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The image commands as a user meets them: help on each, usage errors
# (exit 2), one-line failures (exit 1) that leave the store, the spool and
# the credentials file as they were; then, when the demo image loads, the
# whole round: load, images, tag, rmi, inspect, history, save and load into
# another root, run (pulling from the bundled images when missing), the
# refusal to remove an image in use, prune and system df.
# Usage: test-images-cli.sh BERTH_BINARY   (BERTH_DEMO_IMAGE: the demo OCI layout)
. "$(dirname "$0")/lib.sh"
BERTH=$1
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG BERTH_IMAGES_DIR
# Under ASan, LeakSanitizer would add its table of used suppressions to every stderr.
[ -n "${LSAN_OPTIONS:-}" ] && export LSAN_OPTIONS="$LSAN_OPTIONS:print_suppressions=0"
export DOCKER_CONFIG="$T/docker-config"
# An empty config: no system-wide file, drivers from BERTH_PLUGIN_PATH.
echo '{}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
b2() { "$BERTH" --config "$T/c.json" --root "$T/root2" --runroot "$T/run2" "$@"; }
cleanup() {
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    lib_cleanup
}
trap cleanup EXIT

# expect_one_line DESC: the failure said one line, starting "berth: ".
expect_one_line() {
    expect_lines 1 "$T/err" "$1: one line on stderr"
    expect_grep "^berth: " "$T/err" "$1: says who speaks"
}

# nothing_spooled: no spool directory was left under the root.
nothing_spooled() {
    [ -z "$(ls -A "$T/root/tmp" 2>/dev/null)" ] && ok "$1: no spool left" || not_ok "$1: spool left: $(ls "$T/root/tmp")"
}

# --- help: every command and subcommand, exit 0, on stdout --------------------
for cmd in pull load save images rmi tag history login logout \
    "image ls" "image inspect" "image prune" "image rm" "image tag" "image history" \
    "image pull" "image load" "image save" "system df"; do
    expect_exit 0 "berth $cmd --help" b $cmd --help
    expect_grep "^Usage: berth $cmd " "$T/out" "$cmd --help prints its usage"
done
for group in image system; do
    expect_exit 0 "berth $group --help" b $group --help
    expect_grep "^Usage: berth $group COMMAND" "$T/out" "$group --help prints its usage"
done
expect_grep "^  df " "$T/out" "system --help lists df"
expect_exit 0 "berth --help" b --help
for cmd in pull load save images rmi tag history login logout image system; do
    expect_grep "^  $cmd " "$T/out" "berth --help lists $cmd"
done
expect_exit 0 "run --help" b run --help
expect_grep "berth run \[OPTIONS\] IMAGE \[COMMAND\]" "$T/out" "run takes an IMAGE"
expect_grep "\-\-pull POLICY" "$T/out" "run has --pull"
expect_exit 0 "inspect --help" b inspect --help
expect_grep "\-\-type" "$T/out" "inspect has --type"

# --- usage errors: exit 2, one line, nothing done -------------------------------
usage_error() { # DESC CMD...
    desc=$1
    shift
    expect_exit 2 "usage: $desc" b "$@"
    expect_one_line "usage: $desc"
}
usage_error "pull without a name" pull
usage_error "pull with two names" pull a b
usage_error "pull with a bad option" pull --bogus busybox
usage_error "load with an operand" load extra
usage_error "load -i without a file" load -i
usage_error "save without an image" save -o "$T/x.tar"
usage_error "save with an unknown format" save --format tarball -o "$T/x.tar" x
usage_error "images with two patterns" images a b
usage_error "images with a broken template" images --format '{{yaml'
usage_error "rmi without an image" rmi
usage_error "tag with one name" tag a
usage_error "tag with three names" tag a b c
usage_error "history without an image" history
usage_error "history with two images" history a b
usage_error "login with two servers" login a b
usage_error "login with -p and --password-stdin" login -u u -p x --password-stdin
usage_error "login --password-stdin without -u" login --password-stdin
usage_error "logout with two servers" logout a b
usage_error "image without a subcommand" image
usage_error "image with an unknown subcommand" image frob
usage_error "system with an unknown subcommand" system frob
usage_error "image prune with an operand" image prune extra
usage_error "image inspect without an image" image inspect
usage_error "image inspect with a broken template" image inspect -f '{{.Id' x
usage_error "system df with an operand" system df extra
usage_error "inspect --type volume" inspect --type volume x
usage_error "create without an image" create
usage_error "create --pull sometimes" create --pull sometimes x
expect_exit 125 "run --pull sometimes: docker's 125" b run --pull sometimes x
expect_grep "\-\-pull" "$T/err" "the bad --pull value is named"
[ ! -e "$T/x.tar" ] && ok "usage errors wrote nothing" || not_ok "a usage error wrote $T/x.tar"

# --- an empty store ---------------------------------------------------------------
expect_exit 0 "images on an empty store" b images
[ "$(cat "$T/out")" = "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE" ] && ok "images: only docker's header" || not_ok "images: '$(cat "$T/out")'"
expect_exit 0 "image ls on an empty store" b image ls
expect_lines 1 "$T/out" "image ls: only the header"
expect_exit 0 "images -q on an empty store" b images -q
expect_lines 0 "$T/out" "images -q: nothing"
expect_exit 0 "images --format json" b images --format json
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == []' "$T/out" && ok "images json: []" || not_ok "images json"
expect_exit 1 "rmi nosuch" b rmi nosuch
expect_one_line "rmi nosuch"
grep -qi "no such image" "$T/err" && ok "rmi says No such image" || not_ok "rmi: $(cat "$T/err")"
expect_exit 1 "rmi of two missing images" b rmi nosuch1 nosuch2
expect_lines 2 "$T/err" "rmi goes on after a failure: one line each"
expect_exit 1 "tag nosuch x" b tag nosuch x
expect_one_line "tag nosuch"
grep -qi "no such image" "$T/err" && ok "tag names the missing image" || not_ok "tag: $(cat "$T/err")"
expect_exit 1 "tag to an invalid name" b tag nosuch 'Bad Name'
expect_one_line "tag to an invalid name"
expect_exit 1 "history nosuch" b history nosuch
expect_one_line "history nosuch"
expect_exit 1 "image inspect nosuch" b image inspect nosuch
expect_one_line "image inspect nosuch"
[ "$(tr -d ' \n' <"$T/out")" = "[]" ] && ok "image inspect still prints an empty array" || not_ok "image inspect stdout: $(cat "$T/out")"
expect_exit 1 "inspect nosuch: neither container nor image" b inspect nosuch
expect_grep "no such container: nosuch (nor image)" "$T/err" "inspect says it found neither"
expect_exit 1 "inspect --type image nosuch" b inspect --type image nosuch
grep -qi "no such image" "$T/err" && ok "inspect --type image looks only at images" || not_ok "inspect --type image: $(cat "$T/err")"
expect_exit 1 "inspect --type container nosuch" b inspect --type container nosuch
grep -qi "container" "$T/err" && ok "inspect --type container looks only at containers" || not_ok "inspect --type container: $(cat "$T/err")"
expect_exit 0 "system df" b system df
expect_grep "^TYPE  *TOTAL  *ACTIVE  *SIZE  *RECLAIMABLE$" "$T/out" "system df: docker's header"
expect_grep "^Images  *0  *0  *0B  *0B$" "$T/out" "system df: no images"
expect_grep "^Local Volumes  *0" "$T/out" "system df: volumes row"
expect_grep "^Build Cache  *0" "$T/out" "system df: build cache row"
expect_exit 0 "system df -v" b system df -v
expect_grep "^Images space usage:" "$T/out" "system df -v: images section"
expect_exit 0 "system df --format json" b system df --format json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["Images"] == [] and "LayersSize" in d' "$T/out" && ok "system df json" || not_ok "system df json"
expect_exit 0 "image prune -f on an empty store" b image prune -f
expect_grep "^Total reclaimed space: 0B$" "$T/out" "prune reports what it reclaimed"
# (Answers come from files: a pipe would run the check in a subshell and lose its count.)
echo n >"$T/no"
echo y >"$T/yes"
echo secret >"$T/password"
expect_exit 0 "image prune, answered no" b image prune <"$T/no"
expect_grep "WARNING! This will remove all dangling images." "$T/out" "prune asks first"
expect_grep "Are you sure you want to continue? \[y/N\]" "$T/out" "prune asks docker's question"
! grep -q "Total reclaimed" "$T/out" && ok "prune did nothing after no" || not_ok "prune ran after no"
expect_exit 0 "image prune -a, answered yes" b image prune -a <"$T/yes"
expect_grep "without at least one container" "$T/out" "prune -a warns about all unused images"
expect_grep "^Total reclaimed space:" "$T/out" "prune ran after yes"
expect_exit 125 "run --pull never of a missing image" b run --pull never nosuch true
! grep -q "Unable to find image" "$T/err" && ok "--pull never does not pull" || not_ok "--pull never pulled"
expect_grep "nosuch" "$T/err" "the missing image is named"
expect_exit 125 "run of a missing image that can't be pulled" b run localhost:1/nosuch true
expect_grep "^Unable to find image 'localhost:1/nosuch:latest' locally$" "$T/err" "run says it pulls, as docker"
tail -1 "$T/err" | grep -q "^berth: " && ok "then says why the pull failed" || not_ok "pull failure: $(tail -1 "$T/err")"
[ -z "$(b ps -aq)" ] && ok "no container was created" || not_ok "containers: $(b ps -aq)"

# --- terminals: load and save refuse them -------------------------------------
if command -v script >/dev/null; then
    script -qec "$BERTH --config $T/c.json --root $T/root --runroot $T/run save nosuch" /dev/null </dev/null >"$T/out" 2>&1
    [ $? -eq 1 ] && ok "save to a terminal: exit 1" || not_ok "save to a terminal: exit $?"
    expect_grep "cowardly refusing to save to a terminal. Use the -o flag or redirect" "$T/out" "save to a terminal is refused"
    script -qec "$BERTH --config $T/c.json --root $T/root --runroot $T/run load" /dev/null </dev/null >"$T/out" 2>&1
    [ $? -eq 1 ] && ok "load from a terminal: exit 1" || not_ok "load from a terminal: exit $?"
    expect_grep "requested load from stdin, but stdin is empty" "$T/out" "load from a terminal is refused"
else
    echo "# SKIP terminal checks: script (util-linux) is not installed"
fi

# --- save -o: the path is checked before anything is written ------------------
expect_exit 1 "save -o into a missing directory" b save -o "$T/no/such/dir/x.tar" nosuch
expect_one_line "save -o into a missing directory"
expect_grep "does not exist" "$T/err" "save names the missing directory"
mkdir "$T/adir"
expect_exit 1 "save -o onto a directory" b save -o "$T/adir" nosuch
expect_grep "not a regular file" "$T/err" "save refuses to replace a directory"
expect_exit 1 "save of a missing image" b save -o "$T/x.tar" nosuch
expect_one_line "save of a missing image"
[ ! -e "$T/x.tar" ] && ok "a failed save leaves no file" || not_ok "failed save wrote $T/x.tar"
expect_exit 1 "save of a missing image to stdout" sh -c "'$BERTH' --config '$T/c.json' --root '$T/root' --runroot '$T/run' save nosuch >'$T/stdout.tar'"
[ ! -s "$T/stdout.tar" ] && ok "a failed save writes nothing to stdout" || not_ok "failed save wrote to stdout"
nothing_spooled "failed save to stdout"

# --- load: what is not an archive is refused, the store unchanged --------------
echo "not an archive" >"$T/junk.tar"
expect_exit 1 "load of a non-archive" b load -i "$T/junk.tar"
expect_one_line "load of a non-archive"
expect_grep "junk.tar" "$T/err" "load names the file"
expect_exit 1 "load of a non-archive from stdin" sh -c "'$BERTH' --config '$T/c.json' --root '$T/root' --runroot '$T/run' load <'$T/junk.tar'"
expect_one_line "load from stdin"
expect_grep "stdin" "$T/err" "load calls the spooled input stdin"
nothing_spooled "failed load from stdin"
expect_exit 1 "load of a missing file" b load -i "$T/absent.tar"
expect_one_line "load of a missing file"
expect_exit 1 "load -q of an empty stdin" sh -c "'$BERTH' --config '$T/c.json' --root '$T/root' --runroot '$T/run' load -q </dev/null"
nothing_spooled "load of an empty stdin"
[ -z "$(b images -q)" ] && ok "no image recorded by failed loads" || not_ok "images: $(b images -q)"

# --- login/logout: a registry that is not there --------------------------------
mkdir -p "$DOCKER_CONFIG"
printf '{"auths": {"other.example:5000": {"auth": "dTpw"}}}\n' >"$DOCKER_CONFIG/config.json"
before=$(md5sum <"$DOCKER_CONFIG/config.json")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_exit 1 "login to a port nothing listens on" b login -u alice --password-stdin "127.0.0.1:$port" <"$T/password"
expect_one_line "login refused"
[ "$(md5sum <"$DOCKER_CONFIG/config.json")" = "$before" ] && ok "a failed login leaves config.json as it was" || not_ok "config.json changed"
expect_exit 1 "login without a terminal to ask on" b login "127.0.0.1:$port" </dev/null
expect_grep "not a terminal" "$T/err" "login says why it can't ask"
expect_exit 0 "logout where not logged in" b logout "127.0.0.1:$port"
expect_grep "^Not logged in to 127.0.0.1:$port$" "$T/out" "logout says so, as docker"
expect_exit 0 "logout of a stored server" b logout http://other.example:5000/v2/
expect_grep "^Removing login credentials for other.example:5000$" "$T/out" "logout names the server"
! grep -q "other.example" "$DOCKER_CONFIG/config.json" && ok "the credentials are gone" || not_ok "credentials still stored"

# --- the whole round, on the demo image -----------------------------------------
demo_round() {
    expect_grep "^Loaded image: demo:latest$" "$T/out" "load names the image"
    expect_exit 0 "images" b images
    expect_grep "^demo  *latest  *[0-9a-f]\{12\}  " "$T/out" "images lists demo:latest"
    id=$(b image inspect demo:latest | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')
    short=$(echo "$id" | cut -c8-19)
    expect_grep "  $short  " "$T/out" "with its short id"
    expect_exit 0 "images demo (a filter)" b images demo
    expect_lines 2 "$T/out" "the filter keeps demo"
    expect_exit 0 "images other (a filter)" b images 'other*'
    expect_lines 1 "$T/out" "the filter drops the rest"
    expect_exit 0 "images --no-trunc" b images --no-trunc
    expect_grep "$id" "$T/out" "--no-trunc shows the full id"

    expect_exit 0 "tag" b tag demo:latest demo:v2
    b images >"$T/out"
    [ "$(grep -c "  $short  " "$T/out")" -eq 2 ] && ok "two rows, one image" || not_ok "rows: $(cat "$T/out")"
    expect_exit 0 "images --format TEMPLATE" b images --format '{{.Repository}}:{{.Tag}} {{.ID}}' demo
    expect_grep "^demo:v2 $short$" "$T/out" "a template row per tag"
    expect_lines 2 "$T/out" "and no header"
    expect_exit 0 "images --format 'table ...'" b images --format 'table {{.Tag}}\t{{.ID}}' demo
    expect_grep "^TAG  *IMAGE ID$" "$T/out" "a table template has docker's header"
    expect_grep "^latest  *$short$" "$T/out" "and aligned columns"
    expect_exit 2 "images --format with a broken template" b images --format '{{.Tag'
    expect_grep "template: unclosed action" "$T/err" "refused in one line"
    expect_exit 0 "rmi of one of two tags" b rmi demo:v2
    expect_grep "^Untagged: demo:v2$" "$T/out" "rmi untags"
    ! grep -q "^Deleted" "$T/out" && ok "and deletes nothing" || not_ok "rmi deleted the image"
    expect_exit 0 "the image is still there" b image inspect demo:latest

    expect_exit 0 "inspect falls back to images" b inspect demo:latest
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))[0]; assert d["Id"] == sys.argv[2] and isinstance(d["Config"], dict) and d["RootFS"]["Layers"]' "$T/out" "$id" \
        && ok "inspect shows the image's config and layers" || not_ok "inspect shape"
    expect_exit 0 "history" b history demo:latest
    expect_grep "^IMAGE  *CREATED  *CREATED BY  *SIZE  *COMMENT$" "$T/out" "history: docker's header"
    expect_grep "^$short  " "$T/out" "history: the newest step is the image"
    expect_exit 0 "history -q" b history -q demo:latest
    [ "$(head -1 "$T/out")" = "$short" ] && ok "history -q starts with the id" || not_ok "history -q: $(head -1 "$T/out")"

    expect_exit 0 "save -o" b save -o "$T/saved.tar" demo:latest
    tar -tf "$T/saved.tar" | grep -q "^\(\./\)\?manifest.json$" && ok "a docker archive" || not_ok "no manifest.json in the archive"
    expect_exit 0 "load into a second root" b2 load -i "$T/saved.tar"
    [ "$(b2 image inspect demo:latest | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')" = "$id" ] \
        && ok "the round trip keeps the image id" || not_ok "image id changed"
    expect_exit 0 "save to stdout" sh -c "'$BERTH' --config '$T/c.json' --root '$T/root' --runroot '$T/run' save demo:latest >'$T/stdout.tar'"
    nothing_spooled "save to stdout"
    expect_exit 0 "rmi in the second root" b2 rmi demo:latest
    expect_grep "^Deleted: $id$" "$T/out" "the last tag's removal deletes"
    expect_exit 0 "load from stdin" sh -c "'$BERTH' --config '$T/c.json' --root '$T/root2' --runroot '$T/run2' load <'$T/stdout.tar'"
    expect_grep "^Loaded image: demo:latest$" "$T/out" "stdin's archive loaded"
    [ -z "$(ls -A "$T/root2/tmp" 2>/dev/null)" ] && ok "load from stdin: no spool left" || not_ok "load spool left"
    expect_exit 0 "save --format oci-archive" b save --format oci-archive -o "$T/oci.tar" demo:latest
    tar -tf "$T/oci.tar" | grep -q "oci-layout$" && ok "an OCI layout tar" || not_ok "no oci-layout in the tar"

    if [ "$(id -u)" -eq 0 ]; then
        expect_exit 0 "run --rm demo:latest echo hi" b run --rm demo:latest echo hi
        [ "$(cat "$T/out")" = "hi" ] && ok "the container said hi" || not_ok "run printed '$(cat "$T/out")'"
        # (While demo:latest is the image's only tag: with two, rmi of one only untags.)
        cid=$(b create demo:latest true)
        expect_exit 1 "rmi of an image a container uses" b rmi demo:latest
        expect_grep "conflict" "$T/err" "the refusal says conflict"
        expect_one_line "rmi of an image in use"
        b rm "$cid" >/dev/null
        # A writable layer is not synced: one lost to a power failure gives a
        # clear error at start, and the container can still be removed.
        cid=$(b create demo:latest true)
        expect_exit 0 "inspect of a container from an image" b inspect "$cid"
        expect_grep '"Image": "sha256:' "$T/out" "inspect names the image by id"
        expect_grep '"Name": "overlay"\|"Name": "vfs"' "$T/out" "inspect has the GraphDriver"
        upper=$(sed -n 's/.*"UpperDir": "\([^"]*\)".*/\1/p' "$T/out" | head -1)
        if [ -n "$upper" ] && [ -d "$upper" ]; then
            rm -rf "$upper"
            expect_exit 125 "start of a container whose writable layer is gone" b start -a "$cid"
            expect_grep "writable layer .* is gone" "$T/err" "the error says the writable layer is gone"
            expect_one_line "start with a lost writable layer"
            expect_exit 0 "that container can be removed" b rm "$cid"
        else
            not_ok "no upperdir in the inspect output of $cid"
            b rm -f "$cid" >/dev/null
        fi
        # A missing image is pulled first: berth's bundled images stand in for a registry.
        mkdir -p "$T/bundled"
        cp -r "$BERTH_DEMO_IMAGE" "$T/bundled/bundled-demo"
        BERTH_IMAGES_DIR="$T/bundled" expect_exit 0 "run of a missing image pulls it" b run --rm bundled-demo echo pulled
        expect_grep "^Unable to find image 'bundled-demo:latest' locally$" "$T/err" "run says it pulls"
        [ "$(cat "$T/out")" = "pulled" ] && ok "then runs it" || not_ok "run printed '$(cat "$T/out")'"
        expect_exit 0 "the pulled image is there" b image inspect bundled-demo
    else
        echo "# SKIP run checks: real containers need root"
    fi

    expect_exit 0 "image prune -a -f" b image prune -a -f
    expect_grep "^Deleted Images:$" "$T/out" "prune lists what it deleted"
    expect_grep "^deleted: $id$" "$T/out" "the demo image among them"
    expect_grep "^Total reclaimed space: " "$T/out" "and the space reclaimed"
    [ -z "$(b images -q)" ] && ok "no images left" || not_ok "images left: $(b images -q | tr '\n' ' ')"
    expect_exit 0 "system df after prune" b system df
    expect_grep "^Images  *0  *0 " "$T/out" "system df reports zero images"
}

if [ -z "${BERTH_DEMO_IMAGE:-}" ] || [ ! -d "${BERTH_DEMO_IMAGE:-}" ]; then
    echo "# SKIP the demo round: BERTH_DEMO_IMAGE does not name the demo OCI layout"
elif ! b plugins | grep -q "^image  *oci-layout "; then
    echo "# SKIP the demo round: the oci-layout image driver is not built"
else
    tar -C "$BERTH_DEMO_IMAGE" -cf "$T/demo.tar" .
    b load -i "$T/demo.tar" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne 0 ] && grep -q "not built in this tree yet" "$T/err"; then
        echo "# SKIP the demo round: $(cat "$T/err")"
    elif [ $rc -ne 0 ]; then
        not_ok "load of the demo image: exit $rc"
        sed 's/^/    stderr: /' "$T/err"
    else
        ok "load of the demo image (exit 0)"
        demo_round
    fi
fi

finish
