#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""wait-http.py URL [CA_FILE]: wait (up to 30 s) until URL answers with any HTTP status."""
import ssl
import sys
import time
import urllib.error
import urllib.request

url = sys.argv[1]
ctx = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(url, timeout=2, context=ctx).close()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # 401 and friends: the server is up
    except (OSError, ValueError) as e:
        if time.monotonic() > deadline:
            sys.exit("wait-http: %s: %s" % (url, e))
        time.sleep(0.1)
