#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# build-kernel.sh's check that every line of the guest kernel's config
# fragment survived `make olddefconfig` (build-kernel.sh -c), on made-up
# .config files, and on the built kernel's own kernel.config when there is one.
# Usage: test-kernel-config-check.sh BUILD-KERNEL.SH FRAGMENT [KERNEL.CONFIG]
. "$(dirname "$0")/../../integration/lib.sh"
script=$1 frag=$2 built=${3:-}

cat >"$T/frag" <<'FRAG'
# a comment, ignored
CONFIG_64BIT=y
CONFIG_LOCALVERSION="-berth guest"
CONFIG_NR_CPUS=8
# CONFIG_MODULES is not set
FRAG
good() {
    printf '%s\n' 'CONFIG_64BIT=y' 'CONFIG_LOCALVERSION="-berth guest"' 'CONFIG_NR_CPUS=8' \
        '# CONFIG_MODULES is not set' 'CONFIG_EXTRA=y'
}
good >"$T/ok.config"
expect_exit 0 "a .config holding every fragment line passes" sh "$script" -f "$T/frag" -c "$T/ok.config"

# "is not set" also holds when the symbol is absent altogether.
good | grep -v MODULES >"$T/absent.config"
expect_exit 0 "an absent symbol counts as not set" sh "$script" -f "$T/frag" -c "$T/absent.config"

good | sed 's/^CONFIG_64BIT=y$/# CONFIG_64BIT is not set/' >"$T/lost.config"
expect_exit 1 "a dropped bool fails" sh "$script" -f "$T/frag" -c "$T/lost.config"
expect_grep "CONFIG_64BIT=y (now: # CONFIG_64BIT is not set)" "$T/err" "it is named with what became of it"

good | sed 's/^CONFIG_LOCALVERSION=.*/CONFIG_LOCALVERSION=""/; s/^CONFIG_NR_CPUS=8/CONFIG_NR_CPUS=64/' \
    | sed '/CONFIG_64BIT/d' >"$T/values.config"
expect_exit 1 "changed values and a vanished symbol fail" sh "$script" -f "$T/frag" -c "$T/values.config"
expect_grep 'CONFIG_LOCALVERSION="-berth guest" (now: CONFIG_LOCALVERSION="")' "$T/err" "a changed string (with a space) is named"
expect_grep "CONFIG_NR_CPUS=8 (now: CONFIG_NR_CPUS=64)" "$T/err" "a changed number is named"
expect_grep "CONFIG_64BIT=y (now: absent)" "$T/err" "a vanished symbol is named"
[ "$(grep -c '^build-kernel:   ' "$T/err")" -eq 3 ] && ok "exactly the three lost lines are listed" ||
    not_ok "lost lines: $(cat "$T/err")"

good | sed 's/^# CONFIG_MODULES is not set/CONFIG_MODULES=y/' >"$T/on.config"
expect_exit 1 "an option the fragment turns off, on in .config, fails" sh "$script" -f "$T/frag" -c "$T/on.config"
expect_grep "CONFIG_MODULES=n (now: CONFIG_MODULES=y)" "$T/err" "it is named"

expect_exit 2 "an unreadable .config is a usage error" sh "$script" -f "$T/frag" -c "$T/nonexistent"

# The real fragment against the kernel the build made from it.
if [ -n "$built" ] && [ -f "$built" ]; then
    expect_exit 0 "the built kernel's .config holds the whole fragment" sh "$script" -f "$frag" -c "$built"
else
    echo "# the guest kernel was not built: its .config is not checked"
fi
finish
