#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# berthd on TCP with mutual TLS, through the real docker CLI: certificates
# made with the openssl CLI, then version, run (attached, -i, -d), logs,
# exec and rm over TLS; clients without a certificate of the CA, and plain
# HTTP, refused while the daemon keeps serving; missing or mismatched
# certificate files refused at start.
# Usage: test-berthd-tls.sh BERTH BERTHD
. "$(dirname "$0")/lib.sh"
BERTH=$1
BERTHD=$2
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH
echo '{"plugin_dirs": []}' >"$T/c.json"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
S=$T/d.sock
K=$T/pki
cleanup() {
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    for c in $(b ps -aq 2>/dev/null); do b rm -f "$c" >/dev/null 2>&1; done
    lib_cleanup
}
trap cleanup EXIT

if ! command -v openssl >/dev/null 2>&1; then
    echo "# SKIP: no openssl CLI to make certificates with"
    finish
fi

# A CA, a server certificate for 127.0.0.1 and localhost, a client certificate;
# and a second CA with a client of its own, which the server must not trust.
mkdir -p "$K"
(
    cd "$K" || exit 1
    ca() {
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
            -keyout "$1-key.pem" -out "$1.pem"
    }
    # leaf NAME CA EXTFILE: a key and a certificate signed by CA
    leaf() {
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1-key.pem" -out "$1.csr" &&
            openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial \
                -days 2 -extfile "$3" -out "$1.pem"
    }
    printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n' >srv.ext
    printf 'extendedKeyUsage = clientAuth\n' >cli.ext
    ca ca && leaf server ca srv.ext && leaf client ca cli.ext &&
        ca otherca && leaf stranger otherca cli.ext
) >"$T/openssl.log" 2>&1 && ok "certificates made with openssl" ||
    { not_ok "openssl: $(tail -3 "$T/openssl.log")"; finish; }

# A free port: bind to 0 and let the kernel choose.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=tcp://127.0.0.1:$PORT
TLSOPTS="--tlscacert $K/ca.pem --tlscert $K/server.pem --tlskey $K/server-key.pem"
D="--config $T/c.json --root $T/root --runroot $T/run"

# Refusals at start: one line, exit 1, nothing listening.
expect_exit 1 "tcp:// without certificates is refused" "$BERTHD" -H "$ADDR" $D
expect_grep "mutual TLS: --tlscacert is missing" "$T/err" "the refusal names the missing option"
expect_lines 1 "$T/err" "in one line"
expect_exit 1 "tcp:// on loopback without a key is refused too" "$BERTHD" -H "$ADDR" $D \
    --tlsverify --tlscacert "$K/ca.pem" --tlscert "$K/server.pem"
expect_grep "--tlskey is missing" "$T/err" "naming --tlskey"
expect_exit 1 "a key that is not the certificate's is refused" "$BERTHD" -H "$ADDR" $D \
    --tlscacert "$K/ca.pem" --tlscert "$K/server.pem" --tlskey "$K/client-key.pem"
expect_grep "does not belong to the certificate" "$T/err" "saying the key does not match"
expect_lines 1 "$T/err" "in one line"
expect_exit 1 "a missing certificate file is refused" "$BERTHD" -H "$ADDR" $D \
    --tlscacert "$K/ca.pem" --tlscert "$K/nosuch.pem" --tlskey "$K/server-key.pem"
expect_grep "nosuch.pem: No such file" "$T/err" "naming the file"
expect_exit 1 "a key file that is not PEM is refused" "$BERTHD" -H "$ADDR" $D \
    --tlscacert "$K/ca.pem" --tlscert "$K/server.pem" --tlskey "$K/srv.ext"
expect_grep "TLS key .*srv.ext: .*PEM private key is needed" "$T/err" "naming the key file"
expect_lines 1 "$T/err" "in one line"
expect_exit 1 "a certificate file that is not PEM is refused" "$BERTHD" -H "$ADDR" $D \
    --tlscacert "$K/ca.pem" --tlscert "$K/server-key.pem" --tlskey "$K/server-key.pem"
expect_grep "TLS certificate .*server-key.pem: .*PEM certificate is needed" "$T/err" \
    "naming the certificate file"
expect_exit 1 "a CA file that is not PEM is refused" "$BERTHD" -H "$ADDR" $D \
    --tlscacert "$K/srv.ext" --tlscert "$K/server.pem" --tlskey "$K/server-key.pem"
expect_grep "TLS CA certificate" "$T/err" "naming the CA file"
expect_lines 1 "$T/err" "in one line"

"$BERTHD" -H "$ADDR" -H "unix://$S" $D --tlsverify $TLSOPTS 2>"$T/dlog" &
dpid=$!
for _ in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
grep -q "listening on $ADDR" "$T/dlog" && ok "berthd listens on $ADDR" ||
    { not_ok "berthd did not start: $(cat "$T/dlog")"; finish; }

if ! command -v docker >/dev/null 2>&1; then
    echo "# SKIP docker CLI checks: no docker client installed"
    finish
fi
d() {
    docker --tlsverify --tlscacert "$K/ca.pem" --tlscert "$K/client.pem" \
        --tlskey "$K/client-key.pem" -H "$ADDR" "$@"
}
alive() {
    kill -0 "$dpid" 2>/dev/null && docker -H "unix://$S" version >/dev/null 2>&1 &&
        ok "$1" || not_ok "$1: $(tail -3 "$T/dlog")"
}

expect_exit 0 "docker version over mutual TLS" d version
expect_grep "berth" "$T/out" "the server is berth"
expect_exit 0 "docker version through the name localhost" docker --tlsverify \
    --tlscacert "$K/ca.pem" --tlscert "$K/client.pem" --tlskey "$K/client-key.pem" \
    -H "tcp://localhost:$PORT" version

# Clients the server must refuse, and the daemon serving on afterwards.
expect_exit 1 "a client without a certificate is refused" docker --tlsverify \
    --tlscacert "$K/ca.pem" -H "$ADDR" version --format '{{.Server.Version}}'
grep -q "TLS handshake with 127.0.0.1:[0-9]* failed" "$T/dlog" &&
    ok "berthd logs the refused handshake" || not_ok "no handshake line in: $(tail -3 "$T/dlog")"
alive "berthd serves after a client without a certificate"
expect_exit 1 "a client certificate from another CA is refused" docker --tlsverify \
    --tlscacert "$K/ca.pem" --tlscert "$K/stranger.pem" --tlskey "$K/stranger-key.pem" \
    -H "$ADDR" version --format '{{.Server.Version}}'
alive "berthd serves after a stranger's certificate"
# The docker client keeps a certificate the server's CA list does not name to
# itself; Python's sends it anyway, so the server's verification is what refuses.
python3 - "$PORT" "$K" >"$T/out" 2>"$T/err" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[2] + "/ca.pem")
ctx.load_cert_chain(sys.argv[2] + "/stranger.pem", sys.argv[2] + "/stranger-key.pem")
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            print("answered" if t.recv(65536).startswith(b"HTTP/") else "refused")
except (ssl.SSLError, OSError) as e:
    print("refused", e)
PY
expect_grep "^refused" "$T/out" "a certificate from another CA, sent anyway, is refused"
grep -q "failed: certificate verify failed" "$T/dlog" && ok "berthd logs the failed verification" ||
    not_ok "no verification failure in: $(tail -3 "$T/dlog")"
python3 - "$PORT" >"$T/out" 2>"$T/err" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except (socket.timeout, ConnectionResetError):
    pass
sys.stdout.write("closed, got %d bytes, http=%s\n" % (len(out), out.startswith(b"HTTP/")))
PY
expect_grep "http=False" "$T/out" "plain HTTP to the TLS port gets no HTTP answer"
alive "berthd serves after plain HTTP on its TLS port"
python3 -W ignore - "$PORT" "$K" >"$T/out" 2>"$T/err" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[2] + "/ca.pem")
ctx.load_cert_chain(sys.argv[2] + "/client.pem", sys.argv[2] + "/client-key.pem")
# Without security level 0 the client would refuse TLS 1.1 itself, proving nothing.
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.maximum_version = ssl.TLSVersion.TLSv1_1
ctx.minimum_version = ssl.TLSVersion.TLSv1
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            print("accepted", t.version())
except (ssl.SSLError, OSError) as e:
    print("refused", e)
PY
expect_grep "^refused.*PROTOCOL_VERSION" "$T/out" "TLS 1.1 is refused by the server"
grep -q "failed: unsupported protocol" "$T/dlog" && ok "berthd logs the old protocol" ||
    not_ok "no unsupported protocol line in: $(tail -3 "$T/dlog")"
python3 - "$PORT" "$K" >"$T/out" 2>"$T/err" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[2] + "/ca.pem")
ctx.load_cert_chain(sys.argv[2] + "/client.pem", sys.argv[2] + "/client-key.pem")
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        t.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        out = b""
        while out.count(b"HTTP/1.1 200") < 2:
            d = t.recv(65536)
            if not d:
                break
            out += d
        print(t.version(), out.count(b"HTTP/1.1 200"))
PY
expect_grep "^TLSv1.2 2$" "$T/out" "TLS 1.2 serves two pipelined requests"

if [ -n "${BERTH_DEMO_IMAGE:-}" ] && [ -d "$BERTH_DEMO_IMAGE" ]; then
    b load -i "$BERTH_DEMO_IMAGE" >/dev/null 2>&1 || b pull demo >/dev/null 2>&1
    expect_exit 3 "docker run --rm over TLS exits with the container's code" \
        d run --rm demo sh -c 'echo out; echo err >&2; exit 3'
    expect_grep "^out$" "$T/out" "run's stdout came over TLS"
    expect_grep "^err$" "$T/err" "and its stderr"
    printf 'piped-in\nsecond line\n' >"$T/in"
    d run --rm -i demo cat <"$T/in" >"$T/out" 2>"$T/err" && ok "docker run -i over TLS" ||
        not_ok "docker run -i: $(cat "$T/err")"
    expect_grep "^second line$" "$T/out" "stdin went in and came back over TLS"
    # docker run -it: a shell on a real pseudo-terminal, typed at, over TLS.
    python3 - "$K" "$ADDR" >"$T/out" 2>"$T/err" <<'PY'
import os, pty, select, sys, time
k, addr = sys.argv[1], sys.argv[2]
args = ["docker", "--tlsverify", "--tlscacert", k + "/ca.pem", "--tlscert", k + "/client.pem",
        "--tlskey", k + "/client-key.pem", "-H", addr, "run", "--rm", "-it", "demo", "sh"]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(args[0], args)
def read_until(needle, timeout=15.0):
    out, end = b"", time.time() + timeout
    while needle not in out and time.time() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out
time.sleep(1)
os.write(fd, b"echo tty-$((40 + 2)); tty\r")
got = read_until(b"/dev/pts")
os.write(fd, b"exit 9\r")
read_until(b"never", 5)
_, status = os.waitpid(pid, 0)
print("answer" if b"tty-42" in got else "no answer", "exit", os.waitstatus_to_exitcode(status))
sys.stderr.write(got.decode(errors="replace"))
PY
    expect_grep "^answer exit 9$" "$T/out" "docker run -it over TLS: typed, answered, exit code 9"
    expect_exit 0 "docker run -d over TLS" d run -d --name tlsweb demo sh -c 'echo started; sleep 100'
    for _ in $(seq 20); do d logs tlsweb 2>/dev/null | grep -q started && break; sleep 0.1; done
    expect_exit 0 "docker logs over TLS" d logs tlsweb
    expect_grep "^started$" "$T/out" "the log came over TLS"
    expect_exit 4 "docker exec over TLS exits with the process's code" \
        d exec tlsweb sh -c 'echo in-exec; exit 4'
    expect_grep "^in-exec$" "$T/out" "exec's output"
    echo exec-in >"$T/in"
    d exec -i tlsweb cat <"$T/in" >"$T/out" 2>"$T/err" && ok "docker exec -i over TLS" ||
        not_ok "exec -i: $(cat "$T/err")"
    expect_grep "^exec-in$" "$T/out" "exec -i: stdin reached the process"
    expect_exit 0 "docker rm -f over TLS" d rm -f tlsweb
    expect_exit 0 "docker ps -a over TLS" d ps -a --format '{{.Names}}'
    grep -q tlsweb "$T/out" && not_ok "tlsweb still listed" || ok "the container is gone"
else
    echo "# SKIP container checks: no demo image (BERTH_DEMO_IMAGE)"
fi
alive "berthd still serves at the end"
kill "$dpid" && wait "$dpid"
st=$?
dpid=
[ "$st" -eq 0 ] && ok "berthd stops on SIGTERM with exit 0" || not_ok "berthd exit $st"

# The same from berth.json: api.listeners and api.tls, no options.
cat >"$T/tls.json" <<JSON
{"plugin_dirs": [], "api": {"listeners": ["$ADDR"],
 "tls": {"ca": "$K/ca.pem", "cert": "$K/server.pem", "key": "$K/server-key.pem"}}}
JSON
"$BERTHD" --config "$T/tls.json" --root "$T/root" --runroot "$T/run" 2>"$T/dlog2" &
dpid=$!
for _ in $(seq 50); do grep -q "listening on $ADDR" "$T/dlog2" && break; sleep 0.1; done
expect_exit 0 "docker version against berthd configured by berth.json" d version
expect_exit 1 "and without a client certificate, refused" docker --tlsverify \
    --tlscacert "$K/ca.pem" -H "$ADDR" version --format '{{.Server.Version}}'
kill "$dpid" && wait "$dpid"
dpid=
sed 's/^/# /' "$T/dlog"
finish
