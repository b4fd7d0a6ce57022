#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Container records through the CLI, with the in-memory fake isolation
# driver: create validates everything before writing, names are unique,
# references resolve like Docker's, ps/inspect show Docker's shapes, rm
# obeys the state machine, and a refused command changes nothing.
# Usage: test-containers.sh BERTH_BINARY   (BERTH_PLUGIN_PATH points at built plugins)
. "$(dirname "$0")/lib.sh"
BERTH=$1
unset BERTH_ROOT BERTH_RUNROOT BERTH_CONFIG
echo '{"plugin_dirs": []}' >"$T/c.json"
mkdir -p "$T/rootfs"
b() { "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" "$@"; }
count() { b ps -aq | wc -l; }

expect_exit 0 "create" b create --isolation fake --rootfs "$T/rootfs" --name web -e A=1 -m 64m --cpus 1.5 sh -c 'echo hi'
id=$(cat "$T/out")
[ ${#id} -eq 64 ] && ok "create prints a 64-hex id" || not_ok "id '$id'"
expect_exit 0 "create with a generated name" b create --isolation fake --rootfs "$T/rootfs" true
[ "$(count)" -eq 2 ] && ok "two containers" || not_ok "count $(count)"

# More unnamed containers than adjective_noun pairs (576): the generated names grow a number.
i=0
: >"$T/many"
while [ $i -lt 600 ]; do
    b create --isolation fake --rootfs "$T/rootfs" true >>"$T/many" 2>"$T/err" || break
    i=$((i + 1))
done
[ $i -eq 600 ] && ok "600 creates with generated names" || not_ok "create $((i + 1)) with a generated name failed: $(cat "$T/err")"
b ps -a | tail -n +2 | awk '{ print $NF }' | sort | uniq -d >"$T/out"
expect_lines 0 "$T/out" "the generated names are unique"
xargs -r -n 100 "$BERTH" --config "$T/c.json" --root "$T/root" --runroot "$T/run" rm -f <"$T/many" >/dev/null
# refused creates: one line, exit 1, nothing written
expect_exit 1 "duplicate name" b create --isolation fake --rootfs "$T/rootfs" --name web true
expect_grep "name \"web\" is already in use by container ${id%${id#????????????}}" "$T/err" "duplicate name message"
expect_exit 1 "unknown isolation" b create --isolation warp --rootfs "$T/rootfs" true
expect_grep 'invalid isolation "warp".*available: fake' "$T/err" "unknown isolation names the loaded ones"
expect_exit 1 "unknown capability" b create --isolation fake --rootfs "$T/rootfs" --cap-add FLY true
expect_grep 'unknown capability: "FLY"' "$T/err" "bad capability named"
# A source without a leading '/' names a volume (as in Docker); this one is neither.
expect_exit 1 "bad bind" b create --isolation fake --rootfs "$T/rootfs" -v ../rel:/x true
expect_grep "neither an absolute path nor a valid volume name" "$T/err" "bad bind named"
expect_exit 1 "no command" b create --isolation fake --rootfs "$T/rootfs"
expect_grep "no command" "$T/err" "missing command named"
expect_exit 1 "bad name" b create --isolation fake --rootfs "$T/rootfs" --name 'a/b' true
expect_exit 2 "bad memory" b create --isolation fake --rootfs "$T/rootfs" -m 12x true
expect_grep "invalid size" "$T/err" "bad size named"
expect_exit 2 "missing rootfs" b create --isolation fake --rootfs "$T/nope" true
[ "$(count)" -eq 2 ] && ok "refused creates wrote nothing" || not_ok "count $(count) after refusals"

# ps and inspect
expect_exit 0 "ps -a" b ps -a
expect_grep "web" "$T/out" "ps -a lists by name"
expect_grep "Created" "$T/out" "ps -a shows Created"
expect_exit 0 "ps (running only)" b ps
expect_lines 1 "$T/out" "ps without -a shows only the header"
expect_exit 0 "inspect by name" b inspect web
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["Name"] == "/web" and d["Path"] == "sh" and d["Args"] == ["-c", "echo hi"], d
assert d["State"]["Status"] == "created" and d["State"]["Running"] is False
assert d["HostConfig"]["Memory"] == 64 << 20 and d["HostConfig"]["NanoCpus"] == 1500000000
assert d["Config"]["Env"] == ["A=1"] and d["Isolation"] == "fake"
' "$T/out" && ok "inspect has Docker's shape and the options" || not_ok "inspect shape"
expect_exit 0 "inspect by id prefix" b inspect "$(echo "$id" | cut -c1-5)"
expect_exit 1 "inspect missing" b inspect web nosuch
expect_grep "no such container: nosuch" "$T/err" "missing container named"
expect_grep '"/web"' "$T/out" "found ones still printed"

# rm
expect_exit 0 "rm by name" b rm web
expect_exit 1 "rm again" b rm web
[ "$(count)" -eq 1 ] && ok "one left" || not_ok "count $(count)"
expect_exit 0 "rm the rest" b rm "$(b ps -aq)"
[ "$(count)" -eq 0 ] && ok "none left" || not_ok "count $(count)"
finish
