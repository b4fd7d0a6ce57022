#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Build the hyperv guest kernel (docs/hyperv-guest.md) and install it into OUTDIR:
#
#   build-kernel.sh [-s SOURCE.tar.xz] [-f FRAGMENT] [-j JOBS] OUTDIR
#   build-kernel.sh [-f FRAGMENT] -c DOTCONFIG
#
# OUTDIR receives vmlinux (booted through its PVH entry), bzImage,
# kernel.config (the final .config) and kernel.release (`uname -r` in the
# guest). The kernel is `make tinyconfig` of Debian's linux-source-6.1
# tarball with FRAGMENT merged over it; every fragment line must survive
# `make olddefconfig`, else the build fails naming the lines that did not.
# -c runs only that check, of FRAGMENT against an existing .config.
#
# Builds are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/berth/guest-kernel/HASH/,
# HASH covering the fragment, this script, the source's version and the
# compiler, so fresh clones and second build dirs reuse a kernel built once.
# BERTH_KERNEL_NO_CACHE=1 ignores (and replaces) a cached build;
# BERTH_KERNEL_JOBS sets make's -j when -j is not given (default: nproc).
#
# Exit status: 0 on success, 1 on a failed build, 2 on bad usage or
# missing input.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
script="$here/$(basename "$0")"
src=/usr/src/linux-source-6.1.tar.xz
frag="$here/../../../../config/hyperv/guest-kernel.config"
jobs=${BERTH_KERNEL_JOBS:-$(nproc 2>/dev/null || echo 1)}

usage() {
    echo "usage: build-kernel.sh [-s SOURCE.tar.xz] [-f FRAGMENT] [-j JOBS] OUTDIR" >&2
    echo "       build-kernel.sh [-f FRAGMENT] -c DOTCONFIG" >&2
    exit 2
}
check_only=
while getopts s:f:j:c:h opt; do
    case $opt in
    c) check_only=$OPTARG ;;
    s) src=$OPTARG ;;
    f) frag=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))

msg() { echo "build-kernel: $*" >&2; }
die() {
    msg "$*"
    exit 1
}

# Every line of fragment $1 must be in .config $2: an option whose
# dependencies are unmet is dropped by olddefconfig without an error.
# Lists the lost ones and fails.
check_config() {
    # One lost line per line: string values may hold spaces.
    lost=
    while IFS= read -r line; do
        case $line in
        CONFIG_*=*) grep -qxF "$line" "$2" || lost="$lost$line
" ;;
        "# CONFIG_"*" is not set")
            sym=${line#"# "}
            sym=${sym%" is not set"}
            if grep -q "^$sym=" "$2"; then lost="$lost$sym=n
"; fi
            ;;
        esac
    done <"$1"
    [ -z "$lost" ] && return 0
    msg "these fragment options did not survive make olddefconfig:"
    printf '%s' "$lost" | while IFS= read -r l; do
        msg "  $l (now: $(grep -E "^(# )?${l%%=*}[= ]" "$2" || echo absent))"
    done
    return 1
}

if [ -n "$check_only" ]; then
    [ $# -eq 0 ] || usage
    [ -r "$frag" ] && [ -r "$check_only" ] || {
        msg "cannot read $frag or $check_only"
        exit 2
    }
    check_config "$frag" "$check_only"
    exit
fi
[ $# -eq 1 ] || usage
out=$1

[ -r "$src" ] || {
    msg "no kernel source tarball at $src (apt-get install linux-source-6.1)"
    exit 2
}
[ -r "$frag" ] || {
    msg "no config fragment at $frag"
    exit 2
}

# The source's version: Debian's package version when dpkg owns the tarball
# (cheap), else the tarball's digest.
src_version() {
    if pkg=$(dpkg-query -S "$src" 2>/dev/null | cut -d: -f1) && [ -n "$pkg" ]; then
        printf '%s %s\n' "$pkg" "$(dpkg-query -W -f='${Version}' "$pkg")"
    else
        sha256sum "$src" | cut -d' ' -f1
    fi
}
# Whatever changes the kernel's bytes goes into the hash; the kernel's
# Makefile picks gcc itself, so its version is part of the input too.
hash=$({
    echo "fragment"
    cat "$frag"
    echo "script"
    cat "$script"
    echo "source $(src_version)"
    echo "cc $(gcc --version 2>/dev/null | head -n 1)"
} | sha256sum | cut -c1-16)

cache_root=${XDG_CACHE_HOME:-${HOME:?}/.cache}/berth/guest-kernel
entry="$cache_root/$hash"
files="vmlinux bzImage kernel.config kernel.release"

cached() {
    for f in $files; do
        [ -s "$entry/$f" ] || return 1
    done
}

build() {
    work=$(mktemp -d "$cache_root/work.XXXXXX")
    # A failed build leaves nothing behind but its log's tail on stderr.
    trap 'rm -rf "$work"' EXIT
    trap 'exit 1' INT TERM HUP
    log="$work/build.log"
    msg "building guest kernel $hash from $src (a few minutes; log tail on failure)"
    tar -xJf "$src" -C "$work"
    top=
    for d in "$work"/*/; do
        [ -f "$d/Makefile" ] && top=${d%/}
    done
    [ -n "$top" ] || die "no kernel tree in $src"
    # Timestamps, user and host name otherwise end up in the image.
    export KBUILD_BUILD_USER=berth KBUILD_BUILD_HOST=berth
    export KBUILD_BUILD_TIMESTAMP="1970-01-01 00:00:00 UTC"
    # The kernel's Makefile reads these from the environment; a caller's
    # values (meson sets none, a user might) would change the result without
    # changing the hash (LOCALVERSION, for one, changes `uname -r`).
    unset ARCH CROSS_COMPILE KCONFIG_CONFIG O KBUILD_OUTPUT LOCALVERSION \
        KCFLAGS KCPPFLAGS KAFLAGS KRUSTFLAGS KBUILD_EXTMOD || true
    kmake() {
        make -C "$top" "$@" >>"$log" 2>&1 || {
            tail -n 40 "$log" >&2
            die "make $* failed"
        }
    }
    kmake tinyconfig
    (cd "$top" && ./scripts/kconfig/merge_config.sh -m .config "$frag") >>"$log" 2>&1 ||
        die "merge_config.sh failed"
    kmake olddefconfig

    check_config "$frag" "$top/.config" || exit 1

    kmake -j"$jobs" vmlinux bzImage
    release=$(make -s -C "$top" kernelrelease) || die "make kernelrelease failed"

    mkdir -p "$work/out"
    cp "$top/vmlinux" "$top/arch/x86/boot/bzImage" "$work/out/"
    cp "$top/.config" "$work/out/kernel.config"
    echo "$release" >"$work/out/kernel.release"
    {
        echo "source $(src_version)"
        echo "cc $(gcc --version | head -n 1)"
    } >"$work/out/inputs"
    # Publish whole or not at all: a rename within the cache directory.
    rm -rf "$entry"
    mv "$work/out" "$entry"
    msg "guest kernel $release cached in $entry"
}

mkdir -p "$cache_root"
if [ "${BERTH_KERNEL_NO_CACHE:-0}" = 1 ] || ! cached; then
    # One builder at a time: a second build dir (or CI's ASan build) waits
    # for the first instead of building the same kernel again.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$cache_root/.lock"
        flock 9
    fi
    if [ "${BERTH_KERNEL_NO_CACHE:-0}" = 1 ] || ! cached; then
        build
    fi
fi

# Copy into OUTDIR only what differs, so an unchanged kernel keeps its
# mtime and nothing downstream rebuilds.
mkdir -p "$out"
for f in $files; do
    if ! cmp -s "$entry/$f" "$out/$f"; then
        cp "$entry/$f" "$out/$f.tmp"
        mv "$out/$f.tmp" "$out/$f"
    fi
done
