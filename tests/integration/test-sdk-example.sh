#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Install berth into a fresh prefix, build the SDK example driver from the
# installed headers and berth-sdk.pc only, install it into the plugins dir
# that berth-sdk.pc names, and check that the installed berth loads it.
# Usage: test-sdk-example.sh SOURCE_ROOT
. "$(dirname "$0")/lib.sh"
SRC=$1
P="$T/prefix"
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG BERTH_PLUGIN_PATH BERTH_SHIM_PATH BERTH_SECCOMP_PROFILE

if meson setup "$T/build" "$SRC" --prefix="$P" >"$T/setup.log" 2>&1 &&
    ninja -C "$T/build" >"$T/build.log" 2>&1 &&
    meson install -C "$T/build" >"$T/install.log" 2>&1; then
    ok "meson install into $P"
else
    not_ok "meson install failed"
    tail -30 "$T/setup.log" "$T/build.log" "$T/install.log"
    finish
fi

pcdir=$(dirname "$(find "$P" -name berth-sdk.pc | head -1)")
[ -f "$pcdir/berth-sdk.pc" ] && ok "berth-sdk.pc installed" || not_ok "no berth-sdk.pc"
for f in bin/berth etc/berth/berth.json include/berth/sdk.h include/berth/engine.h; do
    [ -e "$P/$f" ] && ok "installed $f" || not_ok "missing $f"
done
export PKG_CONFIG_PATH="$pcdir"
plugins=$(pkg-config --variable=pluginsdir berth-sdk)
case "$plugins" in "$P"/*) ok "pluginsdir is under the prefix" ;; *) not_ok "pluginsdir $plugins" ;; esac
[ "$(pkg-config --variable=abi_major berth-sdk)" = 1 ] && ok "abi_major=1" || not_ok "abi_major"
[ -n "$(pkg-config --variable=abi_minor berth-sdk)" ] && ok "abi_minor set" || not_ok "abi_minor"

# The example builds outside the source tree, from the installed SDK alone.
cp -r "$SRC/sdk/examples/hello" "$T/example"
expect_exit 0 "make example" make -C "$T/example"
expect_exit 0 "make install example" make -C "$T/example" install
[ -f "$plugins/network-example.so" ] && ok "example installed into pluginsdir" || not_ok "example not installed"
exports=$(nm -D --defined-only "$plugins/network-example.so" | awk '{print $3}')
[ "$exports" = "berth_plugin_entry" ] && ok "example exports only its entry" || not_ok "example exports: $exports"

# The installed berth finds it through the installed config's plugin_dirs.
expect_exit 0 "installed berth plugins" "$P/bin/berth" --root "$T/root" --runroot "$T/run" plugins --format json
if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ex = [x for x in d["drivers"] if x["kind"] == "network" and x["name"] == "example"]
assert ex and ex[0]["abi"] == "1.2" and ex[0]["version"] == "1.0.0", d
assert d["refused"] == [], d["refused"]
' "$T/out"; then ok "installed berth loads the example driver"; else not_ok "example not loaded"; cat "$T/out" "$T/err"; fi
expect_exit 0 "installed berth info" "$P/bin/berth" --root "$T/root" --runroot "$T/run" info
expect_grep "Config file: *$P/etc/berth/berth.json" "$T/out" "installed config is the default"
expect_grep "network .*example" "$T/out" "info lists the example driver"
# Embedding: a program built from libberth.pc alone runs a real container.
if [ "$(id -u)" -eq 0 ]; then
    cp -r "$SRC/sdk/examples/embed" "$T/embed"
    expect_exit 0 "make embed example" make -C "$T/embed"
    sh "$SRC/tests/fixtures/make-busybox-rootfs.sh" "$T/rootfs" >/dev/null
    expect_exit 3 "the embedding program runs a container and exits with its code" \
        "$T/embed/run-container" "$T/eroot" "$T/erun" "$T/rootfs" sh -c 'echo embedded; exit 3'
    expect_grep "^embedded$" "$T/out" "its output came back through the logs"
    expect_exit 0 "installed berth sees no leftover container" "$P/bin/berth" --root "$T/eroot" --runroot "$T/erun" ps -aq
    expect_lines 0 "$T/out" "the embedded run removed its container"
else
    echo "skip: the embedding example runs a container and needs root"
fi
finish
