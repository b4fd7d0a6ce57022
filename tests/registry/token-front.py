#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small Bearer-token front for a real docker-registry, for the registry driver's tests.

  token-front.py UPSTREAM_URL USER PASSWORD IDENTITY_TOKEN EXPIRES_IN PORT_FILE

Listens on two free ports of 127.0.0.1 and writes "MAIN STORAGE\\n" to PORT_FILE.

MAIN:
  GET  /token?service=test&scope=...  with Basic USER:PASSWORD: {"token", "expires_in"}
  POST /token  grant_type=refresh_token&refresh_token=IDENTITY_TOKEN: {"access_token", ...}
       (anything else: 401 with a registry-style error body)
  /v2/...  needs "Authorization: Bearer <token>" with a token issued here and not
       expired (tokens live EXPIRES_IN seconds); otherwise 401 with a Basic and a
       Bearer challenge in two WWW-Authenticate headers (the Basic realm holds a
       comma). Blob GETs are answered 307 to STORAGE; the rest is proxied to
       UPSTREAM, so the bytes come from the real registry.
  /v2/test/img/manifests/{huge,huge-unsized,bigheader,lying,generic-type}: made-up
       replies (a 5 MiB manifest with and without a length, 70 KB of headers, a wrong
       Docker-Content-Digest, a generic Content-Type) for the driver to refuse or cope with.
  GET  /_test/stats   counters as JSON; POST /_test/revoke forgets every token;
  POST /_test/expires?seconds=N  changes the life of tokens issued from now on.
STORAGE (another origin, like blob storage behind a CDN):
  GET /_storage/<repo>/blobs/<digest>  proxied to UPSTREAM's blob; refused (400,
       counted as "leaked_auth") when the request carries an Authorization header.
"""
import base64
import http.client
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse

UPSTREAM, USER, PASSWORD, IDTOKEN, EXPIRES, PORT_FILE = sys.argv[1:7]
config = {"expires": int(EXPIRES)}
up = urllib.parse.urlsplit(UPSTREAM)
lock = threading.Lock()
tokens = {}  # token -> expiry (time.monotonic())
stats = {"tokens_issued": 0, "token_refused": 0, "bearer_rejected": 0, "unauthenticated": 0,
         "redirects": 0, "storage_gets": 0, "leaked_auth": 0, "last_scope": None,
         "refresh_grants": 0}
ports = {}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SPECIAL = "/v2/test/img/manifests/"
SPECIAL_TAGS = ("huge", "huge-unsized", "bigheader", "lying", "generic-type")


def count(key, value=None):
    with lock:
        if value is None:
            stats[key] += 1
        else:
            stats[key] = value


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, obj, headers=()):
        self.reply(status, json.dumps(obj).encode(),
                   [("Content-Type", "application/json")] + list(headers))

    def unauthorized(self, message):
        realm = "http://127.0.0.1:%d/token" % ports["main"]
        self.reply_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": message}]}, [
            ("WWW-Authenticate", 'Basic realm="front, with a comma"'),
            ("WWW-Authenticate",
             'Bearer realm="%s",service="test",scope="repository:test/img:pull"' % realm),
        ])

    def proxy(self, path):
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: self.headers[k] for k in ("Accept", "Range") if self.headers[k]}
        conn.request(self.command, path, headers=headers)
        r = conn.getresponse()
        self.send_response(r.status)
        for k in ("Content-Type", "Content-Length", "Content-Range", "Docker-Content-Digest",
                  "Docker-Distribution-Api-Version"):
            if r.getheader(k):
                self.send_header(k, r.getheader(k))
        if not r.getheader("Content-Length"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            while True:
                chunk = r.read(65536)
                if not chunk:
                    break
                self.wfile.write(chunk)
        conn.close()

    def basic_ok(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == USER and pw == PASSWORD

    def issue(self):
        tok = secrets.token_hex(16)
        with lock:
            tokens[tok] = time.monotonic() + config["expires"]
            stats["tokens_issued"] += 1
        return tok

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if self.server.role == "storage":
            return self.storage_get(u)
        if u.path == "/token":
            q = urllib.parse.parse_qs(u.query)
            if q.get("service") != ["test"]:
                return self.reply_json(400, {"details": "unknown service"})
            if not self.basic_ok():
                count("token_refused")
                return self.reply_json(401, {"details": "incorrect username or password"})
            count("last_scope", q.get("scope", [""])[0])
            return self.reply_json(200, {"token": self.issue(),
                                         "expires_in": config["expires"]})
        if u.path == "/_test/stats":
            with lock:
                return self.reply_json(200, dict(stats))
        if not u.path.startswith("/v2/"):
            return self.reply(404)
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            count("unauthenticated")
            return self.unauthorized("authentication required")
        with lock:
            expiry = tokens.get(auth[7:])
            valid = expiry is not None and time.monotonic() < expiry
        if not valid:
            count("bearer_rejected")
            return self.unauthorized("token expired or unknown")
        if u.path.startswith(SPECIAL) and u.path[len(SPECIAL):] in SPECIAL_TAGS:
            return self.special(u.path[len(SPECIAL):])
        parts = u.path.split("/")
        if self.command == "GET" and len(parts) >= 5 and parts[-2] == "blobs":
            count("redirects")
            repo = "/".join(parts[2:-2])
            loc = "http://127.0.0.1:%d/_storage/%s/blobs/%s" % (ports["storage"], repo, parts[-1])
            return self.reply(307, b"", [("Location", loc)])
        self.proxy(self.path)

    do_HEAD = do_GET

    def special(self, tag):
        """Replies a real registry would not give, to see the driver refuse them."""
        if tag in ("huge", "huge-unsized"):
            head = b'{"schemaVersion":2,"mediaType":"%s","annotations":{"pad":"' % (
                OCI_MANIFEST.encode())
            body = head + b"x" * (5 << 20) + b'"}}'
            if tag == "huge":
                return self.reply(200, body, [("Content-Type", OCI_MANIFEST)])
            # No length: the body ends when the connection does.
            self.send_response(200)
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(body)
            return
        if tag == "bigheader":
            return self.reply(200, b"{}", [("Content-Type", OCI_MANIFEST),
                                           ("X-Padding", "p" * 70000)])
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        conn.request("GET", "/v2/test/img/manifests/v1", headers={"Accept": OCI_MANIFEST})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        if tag == "lying":
            return self.reply(200, body, [("Content-Type", OCI_MANIFEST),
                                          ("Docker-Content-Digest", "sha256:" + "0" * 64)])
        # generic-type: a Content-Type that says nothing, no digest header.
        return self.reply(200, body, [("Content-Type", "application/json; charset=utf-8")])

    def storage_get(self, u):
        count("storage_gets")
        if "Authorization" in self.headers:
            count("leaked_auth")
            return self.reply_json(400, {"details": "credentials sent to blob storage"})
        if not u.path.startswith("/_storage/"):
            return self.reply(404)
        self.proxy("/v2/" + u.path[len("/_storage/"):])

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        if self.server.role == "main" and u.path == "/_test/revoke":
            with lock:
                tokens.clear()
            return self.reply_json(200, {})
        if self.server.role == "main" and u.path == "/_test/expires":
            with lock:
                config["expires"] = int(urllib.parse.parse_qs(u.query)["seconds"][0])
            return self.reply_json(200, {})
        if self.server.role == "main" and u.path == "/token":
            form = urllib.parse.parse_qs(body)
            if (form.get("grant_type") == ["refresh_token"] and
                    form.get("refresh_token") == [IDTOKEN] and form.get("service") == ["test"]):
                count("refresh_grants")
                count("last_scope", form.get("scope", [""])[0])
                return self.reply_json(200, {"access_token": self.issue(),
                                             "expires_in": config["expires"]})
            count("token_refused")
            return self.reply_json(401, {"errors": [{"code": "UNAUTHORIZED",
                                                     "message": "invalid identity token"}]})
        self.reply(404)


def serve(role):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.role = role
    ports[role] = srv.server_address[1]
    return srv


def main():
    main_srv, storage_srv = serve("main"), serve("storage")
    threading.Thread(target=storage_srv.serve_forever, daemon=True).start()
    tmp = PORT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (ports["main"], ports["storage"]))
    os.rename(tmp, PORT_FILE)
    main_srv.serve_forever()


if __name__ == "__main__":
    main()
