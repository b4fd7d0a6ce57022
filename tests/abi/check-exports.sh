#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Exported-symbol checks (jansson's check-exports idea):
#  - every plugin module exports berth_plugin_entry and nothing else;
#  - libberth exports exactly the functions listed in its version script.
# Usage: check-exports.sh LIBBERTH.so LIBBERTH.sym MODULE.so...
set -eu
lib=$1
sym=$2
shift 2
status=0

defined() {
    # Dynamic symbols the object defines (T/D/B/R...), names only, without version tags.
    nm -D --defined-only "$1" | awk '{print $3}' | sed 's/@.*//' | grep -v '^$' | sort -u
}

for m in "$@"; do
    got=$(defined "$m")
    if [ "$got" != "berth_plugin_entry" ]; then
        echo "FAIL: $m exports:" $got "(want only berth_plugin_entry)"
        status=1
    else
        echo "ok: $m exports only berth_plugin_entry"
    fi
done

want=$(sed -n 's/^[[:space:]]*\(berth_[a-z0-9_]*\);.*/\1/p' "$sym" | sort -u)
got=$(defined "$lib" | grep -v '^BERTH_' || true)
if [ "$got" != "$want" ]; then
    echo "FAIL: $lib exports differ from $sym"
    echo "--- want"; echo "$want"; echo "--- got"; echo "$got"
    status=1
else
    echo "ok: $lib exports exactly its $(echo "$want" | wc -l) public functions"
fi
exit $status
