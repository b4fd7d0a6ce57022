# SPDX-License-Identifier: Apache-2.0
# Helpers for the shell integration tests: checks that count and explain
# failures, and a private scratch dir removed on exit.
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/berth-it-XXXXXX")
# The scratch dir goes, and with it the host state of the networks its roots
# made (the default bridge network can't be removed with `network rm`): each
# network's bridge, named in the cni driver's conflist, and its masquerade
# rule, tagged "berth:<network id>" (the conflist's name).
lib_cleanup() {
    for f in "$T"/*/drivers/network/cni/*.conflist "$T"/*/*/drivers/network/cni/*.conflist; do
        [ -f "$f" ] || continue
        br=$(grep -o '"bridge" *: *"[^"]*"' "$f" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
        [ -n "$br" ] && [ -d "/sys/class/net/$br/bridge" ] && ip link del "$br" 2>/dev/null
        id=$(basename "$f" .conflist)
        command -v iptables >/dev/null 2>&1 &&
            iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -F -- "\"berth:$id\"" |
            sed 's/^-A //' | while read -r r; do eval "iptables -w -t nat -D $r"; done
    done
    rm -rf "$T"
}
trap lib_cleanup EXIT
# A test killed at its timeout still cleans up: the EXIT trap runs on these exits.
trap 'exit 143' TERM
trap 'exit 130' INT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }

# expect_exit CODE DESC CMD...: run CMD, keep stdout/stderr in $T/out, $T/err.
expect_exit() {
    want=$1 desc=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -eq "$want" ]; then ok "$desc (exit $got)"; else
        not_ok "$desc: exit $got, want $want"
        sed 's/^/    stdout: /' "$T/out" | head -20
        sed 's/^/    stderr: /' "$T/err" | head -20
    fi
}

# expect_grep PATTERN FILE DESC
expect_grep() {
    if grep -q -- "$1" "$2"; then ok "$3"; else
        not_ok "$3: '$1' not in $(basename "$2")"
        sed 's/^/    /' "$2" | head -20
    fi
}

# expect_lines N FILE DESC: the file has exactly N lines.
expect_lines() {
    n=$(wc -l <"$2")
    if [ "$n" -eq "$1" ]; then ok "$3"; else
        not_ok "$3: $n lines, want $1"
        sed 's/^/    /' "$2" | head -20
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}
