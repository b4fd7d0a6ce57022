#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# libberth, the CLI and the monitor must not link the libraries that only
# image operations use (core/lib/lazylib.h): libarchive and libcrypto are
# opened on first use, because mapping them (and libarchive's libxml2, ICU
# and libstdc++) at start cost every command about 1.9 ms. And the monitor,
# one per container, needs nothing but libc (and the driver it loads).
# Usage: check-needed.sh LIBBERTH.so BERTH BERTH-SHIM
set -eu
status=0

needed() {
    # The DT_NEEDED entries of an ELF object, one per line.
    LC_ALL=C readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

for f in "$@"; do
    bad=$(needed "$f" | grep -E '^lib(archive|crypto|ssl|curl|xml2|icu|isal)' || true)
    if [ -n "$bad" ]; then
        echo "FAIL: $f links" $bad
        status=1
    else
        echo "ok: $f links none of libarchive, libcrypto, libcurl, libisal"
    fi
done
shim=$3
# (A sanitizer build adds its runtimes: those don't count.)
extra=$(needed "$shim" | grep -vE '^(libc\.so|ld-linux|libdl\.so|libpthread\.so|libm\.so|lib(a|ub|t|l)san\.so)' || true)
if [ -n "$extra" ] && [ "${BERTH_SHIM_STATIC:-1}" = 1 ]; then
    echo "FAIL: berth-shim links" $extra "(want libc only)"
    status=1
fi
exit $status
