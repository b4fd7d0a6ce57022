#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The registry image source against real registries on loopback.
#
#   test-registry.sh TEST_PROGRAM MODULE TESTKIT PYTHON
#
# Starts Debian's docker-registry several times on free ports of 127.0.0.1,
# each with its own config and storage in a scratch dir:
#   open  no auth; holds test/img:v1 (OCI manifest, 3 layers), :multi (OCI
#         index, amd64 + arm64), :docker and :dlist (the same converted to
#         Docker schema 2 and a Docker manifest list) and a 64 MiB blob
#   auth  htpasswd auth (user/pass); holds test/img:v1
#   kill  another registry on the open one's storage, killed and restarted
#         by the C test (through "test-registry.sh ctl DIR kill|start kill")
#   tls   the open one's storage over HTTPS with a certificate from a test CA
# and token-front.py: Bearer token auth in front of "open", with blob
# redirects to another origin. Images come from make-image.py and are pushed
# with skopeo. Then TEST_PROGRAM (test-image-registry) runs with their
# addresses in REG_* variables, and berth-testkit runs against MODULE
# opened at the open registry. Everything started is killed on exit.
set -u

here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = ctl ]; then
    # ctl DIR kill|start NAME: used by the C test while it runs.
    W=$2 action=$3 name=$4
    case $action in
    kill)
        pid=$(cat "$W/$name.pid")
        kill -KILL "$pid" 2>/dev/null
        # Not our child: poll until it is gone.
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        ! kill -0 "$pid" 2>/dev/null
        exit $?
        ;;
    start)
        docker-registry serve "$W/$name.yml" >>"$W/$name.log" 2>&1 &
        echo $! >"$W/$name.pid"
        exec "$(cat "$W/python")" "$here/wait-http.py" "http://$(cat "$W/$name.addr")/v2/"
        ;;
    esac
    echo "ctl: unknown action $action" >&2
    exit 2
fi

if [ $# -ne 4 ]; then
    echo "usage: $0 TEST_PROGRAM MODULE TESTKIT PYTHON" >&2
    exit 2
fi
prog=$1 module=$2 testkit=$3 python=$4

for tool in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "SKIP: ${tool%%:*} is not installed (Debian package ${tool#*:})" >&2
        exit 77
    fi
done

W=$(mktemp -d "${TMPDIR:-/tmp}/berth-registry-XXXXXX") || exit 1
cleanup() {
    for f in "$W"/*.pid; do
        [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
    done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
echo "$python" >"$W/python"

die() {
    echo "test-registry: $*" >&2
    for log in "$W"/*.log; do
        [ -s "$log" ] && { echo "--- $log" >&2; tail -20 "$log" >&2; }
    done
    exit 1
}

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_registry NAME STORAGE_DIR [EXTRA_YAML]: a registry on a free port, ready.
start_registry() {
    name=$1 root=$2 extra=${3:-}
    port=$(free_port) || die "no free port"
    cat >"$W/$name.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $root
  delete:
    enabled: false
http:
  addr: 127.0.0.1:$port
$extra
EOF
    echo "127.0.0.1:$port" >"$W/$name.addr"
    docker-registry serve "$W/$name.yml" >"$W/$name.log" 2>&1 &
    echo $! >"$W/$name.pid"
}

wait_ready() {
    "$python" "$here/wait-http.py" "$1" || die "$2 did not come up"
}

mkdir -p "$W/store" "$W/store-auth"
cat >"$W/policy.json" <<'EOF'
{"default": [{"type": "insecureAcceptAnything"}]}
EOF
htpasswd -Bbn user pass >"$W/htpasswd" || die "htpasswd failed"

start_registry open "$W/store"
start_registry auth "$W/store-auth" "auth:
  htpasswd:
    realm: berth-test
    path: $W/htpasswd"
wait_ready "http://$(cat "$W/open.addr")/v2/" "registry 'open'"
wait_ready "http://$(cat "$W/auth.addr")/v2/" "registry 'auth'"
open=$(cat "$W/open.addr") auth=$(cat "$W/auth.addr")

"$python" "$here/make-image.py" layout "$W/layout" >"$W/image.json" || die "make-image.py failed"
push() { # push SRC_TAG DEST_REF [skopeo copy options]
    src=$1 dest=$2
    shift 2
    skopeo --policy "$W/policy.json" copy --quiet --dest-tls-verify=false "$@" \
        "oci:$W/layout:$src" "docker://$dest" >"$W/skopeo.log" 2>&1 ||
        die "skopeo copy $src -> $dest failed: $(cat "$W/skopeo.log")"
}
push v1 "$open/test/img:v1" --preserve-digests
push multi "$open/test/img:multi" --all --preserve-digests
push v1 "$open/test/img:docker" --format v2s2
push multi "$open/test/img:dlist" --all --format v2s2
push v1 "$auth/test/img:v1" --preserve-digests --dest-creds user:pass
"$python" "$here/make-image.py" push-blob "http://$open" test/img 67108864 7 >"$W/big.json" ||
    die "uploading the big blob failed"

start_registry kill "$W/store"
wait_ready "http://$(cat "$W/kill.addr")/v2/" "registry 'kill'"

# TLS: a test CA and a certificate for 127.0.0.1 (skipped without openssl).
tls=""
if command -v openssl >/dev/null 2>&1; then
    (
        cd "$W" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout ca.key -out ca.pem -days 2 -subj /CN=berth-test-ca &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout server.key -out server.csr -subj /CN=127.0.0.1 &&
            printf 'subjectAltName=IP:127.0.0.1\n' >san.cnf &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -out server.pem -days 2 -extfile san.cnf
    ) >"$W/openssl.log" 2>&1 || die "making the test certificates failed: $(cat "$W/openssl.log")"
    start_registry tls "$W/store" "  tls:
    certificate: $W/server.pem
    key: $W/server.key"
    "$python" "$here/wait-http.py" "https://$(cat "$W/tls.addr")/v2/" "$W/ca.pem" ||
        die "registry 'tls' did not come up"
    tls=$(cat "$W/tls.addr")
else
    echo "note: openssl is not installed: the TLS tests skip" >&2
fi

"$python" "$here/token-front.py" "http://$open" user pass idtoken-secret 2 "$W/front.ports" \
    >"$W/front.log" 2>&1 &
echo $! >"$W/front.pid"
i=0
while [ ! -s "$W/front.ports" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$W/front.ports" ] || die "token-front.py did not start"
front=127.0.0.1:$(cut -d' ' -f1 "$W/front.ports")
front_storage=127.0.0.1:$(cut -d' ' -f2 "$W/front.ports")

rc=0
REG_OPEN=$open REG_AUTH=$auth REG_KILL=$(cat "$W/kill.addr") REG_TLS=$tls REG_TLS_CA=$W/ca.pem \
    REG_FRONT=$front REG_FRONT_STORAGE=$front_storage REG_CLOSED=127.0.0.1:$(free_port) \
    REG_CTL="sh $here/test-registry.sh ctl $W" \
    REG_IMAGE_JSON=$W/image.json REG_BIG_JSON=$W/big.json REG_MODULE=$module \
    "$prog" || rc=1

BERTH_TESTKIT_IMAGE_LOCATION=$open/test/img:v1 "$testkit" "$module" || rc=1
exit $rc
