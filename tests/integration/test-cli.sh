#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The berth CLI as a user meets it: help on every command, info and plugins
# in both formats, one-line errors with non-zero exits, bad configs that
# start nothing, and separate roots that never share state.
# Usage: test-cli.sh BERTH_BINARY   (BERTH_PLUGIN_PATH points at built plugins)
. "$(dirname "$0")/lib.sh"
BERTH=$1
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
cat >"$T/empty.json" <<JSON
{"plugin_dirs": []}
JSON
b() { "$BERTH" --config "$T/empty.json" "$@"; }

# --help everywhere, exit 0, to stdout
expect_exit 0 "berth --help" b --help
expect_grep "Usage: berth" "$T/out" "--help prints usage"
for cmd in version info plugins; do
    expect_exit 0 "berth $cmd --help" b $cmd --help
    expect_grep "Usage: berth $cmd" "$T/out" "$cmd --help prints its usage"
done

# version
expect_exit 0 "berth version" b version
expect_grep "driver ABI 1.2" "$T/out" "version names the ABI"
expect_exit 0 "berth version --format json" b version --format json
expect_grep '"abi": "1.2"' "$T/out" "version json"

# info on a fresh root creates the store and reports it
expect_exit 0 "berth info" b --root "$T/r1" --runroot "$T/run1" info
expect_grep "Store: *$T/r1/store (schema 1)" "$T/out" "info shows the store path and schema"
expect_grep "Cgroups:" "$T/out" "info shows the cgroup mode"
expect_grep "isolation *fake" "$T/out" "info lists the loaded isolation driver"
cat >"$T/warp.json" <<JSON
{"plugin_dirs": [], "defaults": {"isolation": "warp"}}
JSON
expect_exit 0 "berth info, default driver missing" "$BERTH" --config "$T/warp.json" --root "$T/r1" --runroot "$T/run1" info
expect_grep "default warp (not loaded)" "$T/out" "info says the default isolation driver is missing"
[ -f "$T/r1/store/data.mdb" ] && ok "store file created under --root" || not_ok "no store under --root"
expect_exit 0 "berth info --format json" b --root "$T/r1" --runroot "$T/run1" info --format json
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["store"]["records"]["containers"]==0; assert d["host"]["cgroup_mode"] in ("v1","v2","hybrid","none")' "$T/out"; then
    ok "info json parses and has store and host sections"
else not_ok "info json"; fi

# BERTH_ROOT selects the root too; --root wins over it
BERTH_ROOT="$T/r2" expect_exit 0 "BERTH_ROOT" b --runroot "$T/run2" info
[ -d "$T/r2/store" ] && ok "BERTH_ROOT used" || not_ok "BERTH_ROOT ignored"
BERTH_ROOT="$T/r2" expect_exit 0 "--root over BERTH_ROOT" b --root "$T/r3" --runroot "$T/run3" info
[ -d "$T/r3/store" ] && ok "--root wins over BERTH_ROOT" || not_ok "--root lost to BERTH_ROOT"

# plugins
expect_exit 0 "berth plugins" b plugins
expect_grep "^isolation *fake" "$T/out" "plugins lists the fake isolation driver"
expect_exit 0 "berth plugins --format json" b plugins --format json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k={(x["kind"],x["name"]) for x in d["drivers"]}; assert ("storage","fake") in k and ("image","fake") in k, k; assert d["refused"]==[]' "$T/out" \
    && ok "plugins json lists drivers" || not_ok "plugins json"
# a refused module shows with its reason, and the command still succeeds
mkdir -p "$T/junk" && echo "not a module" >"$T/junk/junk.so"
BERTH_PLUGIN_PATH="$BERTH_PLUGIN_PATH:$T/junk" expect_exit 0 "plugins with a refused module" b plugins
expect_grep "junk.so: not a loadable module" "$T/out" "refused module listed with its reason"
expect_grep "^isolation *fake" "$T/out" "other drivers still load"

# errors: one line on stderr, non-zero exit
expect_exit 2 "unknown command" b frobnicate
expect_lines 1 "$T/err" "unknown command: one line"
expect_grep "unknown command 'frobnicate'" "$T/err" "unknown command named"
expect_exit 2 "unknown option" b info --bogus
expect_lines 1 "$T/err" "unknown option: one line"
expect_exit 2 "unknown format" b plugins --format yaml
expect_grep "unknown format 'yaml'" "$T/err" "bad format named"
expect_exit 2 "missing option value" b info --format
expect_lines 1 "$T/err" "missing value: one line"
expect_exit 2 "stray argument" b version extra
expect_exit 2 "no command" b

# bad configs: one line naming the problem; nothing is created
printf '{\n  "root": "/x",\n  "log": {"level": "info",}\n}\n' >"$T/bad.json"
expect_exit 1 "malformed config" "$BERTH" --config "$T/bad.json" --root "$T/nope" info
expect_lines 1 "$T/err" "malformed config: one line"
expect_grep "bad.json:3:" "$T/err" "malformed config: file and line"
echo '{"root": "/x", "colour": "blue"}' >"$T/unknown.json"
expect_exit 1 "unknown config key" "$BERTH" --config "$T/unknown.json" --root "$T/nope" info
expect_grep "unknown key 'colour'" "$T/err" "unknown key named"
echo '{"root": 42}' >"$T/type.json"
expect_exit 1 "wrong type" "$BERTH" --config "$T/type.json" --root "$T/nope" info
expect_grep "'root' must be a string" "$T/err" "wrong type named"
expect_exit 1 "missing config file" "$BERTH" --config "$T/absent.json" --root "$T/nope" info
expect_grep "absent.json" "$T/err" "missing config named"
BERTH_CONFIG="$T/bad.json" expect_exit 1 "BERTH_CONFIG read" "$BERTH" --root "$T/nope" info
[ ! -e "$T/nope" ] && ok "a bad config creates no root" || not_ok "bad config created $T/nope"

# an unusable root: clear error, non-zero
echo file >"$T/afile"
expect_exit 1 "root is a file" b --root "$T/afile" --runroot "$T/run4" info
expect_lines 1 "$T/err" "unusable root: one line"
expect_grep "afile" "$T/err" "unusable root named"

finish
