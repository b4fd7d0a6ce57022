#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Layer unpacking benchmark: berth's unpacker against GNU tar on the same
# bytes (docs/benchmarks.md, "Layer unpacking").
#
#   bench/layer-bench.sh [BUILD_DIR] [RUNS]
#
# BUILD_DIR defaults to build, RUNS to 5. Builds (once, cached in the work
# directory) a layer of about 240 MB uncompressed from a fixed seed: 30000
# small files (text, random and half-compressible bytes, in nested
# directories, with symlinks) and 12 large files. It is compressed to
# .tar.gz (gzip -6) and .tar.zst (zstd -3). Then, RUNS times and alternating,
# each tool extracts into a fresh directory of the work directory, which is
# removed (and synced) afterwards:
#   berth gzip, tar -xzf, berth zstd, tar --zstd -xf
# and the medians and ratios (berth time / tar time; below 1 is faster) are
# printed. Before timing, the berth and tar trees are compared (diff -r,
# owners, modes, times) and the DiffIDs checked against sha256sum of the
# decompressed stream.
#
# The work directory is $LAYER_BENCH_DIR, or a new one under $TMPDIR (or
# /tmp): it decides the filesystem being measured. Set LAYER_BENCH_KEEP=1 to
# keep it (and the generated layers) for another run. Needs root (tar
# restores owners as root; berth always does).
set -eu

build=${1:-build}
runs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)

ninja -C "$build" bench/layer-bench >/dev/null
bench="$build/bench/layer-bench"

if [ -n "${LAYER_BENCH_DIR:-}" ]; then
    work=$LAYER_BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/berth-layer-bench.XXXXXX")
fi
cleanup() {
    rm -rf "$work/x"
    [ "${LAYER_BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "machine: $(nproc) cores, $(uname -sr), $cpu"
echo "filesystem of $work: $(df -T "$work" | awk 'NR == 2 { print $2 " on " $1 }')"
echo "tools: $(tar --version | head -1), $(gzip --version | head -1), $(zstd --version)"

if [ ! -s "$work/layer.tar.gz" ] || [ ! -s "$work/layer.tar.zst" ]; then
    echo "generating the layer in $work ..."
    rm -rf "$work/src"
    python3 - "$work/src" <<'EOF'
import os, random, sys

root = sys.argv[1]
rng = random.Random(20260515)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 10)))
         for _ in range(5000)]

def text(n):
    out, size = [], 0
    while size < n:
        line = ' '.join(rng.choices(words, k=12)) + '\n'
        out.append(line)
        size += len(line)
    return ''.join(out).encode()[:n]

def half(n):
    # Bytes from a 16-symbol alphabet: compresses about 2:1, like binaries.
    alphabet = bytes(rng.sample(range(256), 16))
    return bytes(alphabet[b & 15] for b in rng.randbytes(n))

def content(n):
    kind = rng.random()
    if kind < 0.5:
        return text(n)
    if kind < 0.75:
        return half(n)
    return rng.randbytes(n)

os.makedirs(root)
for i in range(30000):
    d = os.path.join(root, 'usr', 'd%02d' % (i % 40), 's%02d' % (i % 13))
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, 'f%05d' % i)
    with open(p, 'wb') as f:
        f.write(content(rng.randint(200, 6000)))
    os.chmod(p, 0o755 if i % 7 == 0 else 0o644)
    if i % 50 == 0:
        os.symlink('f%05d' % i, p + '.link')
big = os.path.join(root, 'opt', 'big')
os.makedirs(big)
for i in range(12):
    with open(os.path.join(big, 'blob%02d' % i), 'wb') as f:
        for _ in range(12):
            f.write(content(1 << 20))
EOF
    # Deterministic tar: sorted names, fixed owner and times.
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 \
        -C "$work/src" -cf "$work/layer.tar" .
    gzip -6 -n -c "$work/layer.tar" >"$work/layer.tar.gz.tmp"
    mv "$work/layer.tar.gz.tmp" "$work/layer.tar.gz"
    zstd -q -3 -f -o "$work/layer.tar.zst.tmp" "$work/layer.tar"
    mv "$work/layer.tar.zst.tmp" "$work/layer.tar.zst"
    rm -rf "$work/src" "$work/layer.tar"
fi
echo "layer: $(gzip -dc "$work/layer.tar.gz" | wc -c) bytes uncompressed," \
    "$(stat -c %s "$work/layer.tar.gz") gzip, $(stat -c %s "$work/layer.tar.zst") zstd," \
    "$(gzip -dc "$work/layer.tar.gz" | tar -tf - | wc -l) entries"

x="$work/x"
rm -rf "$x"
mkdir -p "$x"

die() {
    echo "layer-bench: $*" >&2
    exit 1
}
unpack() { # tool-independent decompression, for the reference DiffID
    if [ "$1" = gz ]; then gzip -dc "$work/layer.tar.gz"; else zstd -dc "$work/layer.tar.zst"; fi
}
tar_x() { # GNU tar, extracting .$1 into $2
    if [ "$1" = gz ]; then
        tar -xzf "$work/layer.tar.gz" -C "$2"
    else
        tar --zstd -xf "$work/layer.tar.zst" -C "$2"
    fi
}
meta() { (cd "$1" && find . -printf '%p %m %U %G %T@ %l\n' | sort); }

# Correctness first: same tree as tar, DiffID = sha256 of the decompressed stream.
for c in gz zst; do
    out=$("$bench" "$work/layer.tar.$c" "$x/berth")
    want=sha256:$(unpack $c | sha256sum | cut -d' ' -f1)
    [ "${out%% *}" = "$want" ] || die "DiffID mismatch for .$c: ${out%% *} != $want"
    mkdir "$x/tar"
    tar_x $c "$x/tar"
    diff -r --no-dereference "$x/berth" "$x/tar" >/dev/null || die "trees differ (.$c)"
    meta "$x/berth" >"$x/meta.berth"
    meta "$x/tar" >"$x/meta.tar"
    cmp -s "$x/meta.berth" "$x/meta.tar" || die "metadata differs (.$c)"
    rm -rf "$x/berth" "$x/tar" "$x/meta.berth" "$x/meta.tar"
done
echo "check: berth and tar trees identical (content, modes, owners, times); DiffIDs match sha256sum"

ns() { date +%s%N; }
# One timed extraction: name, then the command; appends seconds to $x/t.<name>.
timed() {
    name=$1
    shift
    sync
    t0=$(ns)
    "$@" >/dev/null
    t1=$(ns)
    echo "$t0 $t1" | awk '{ printf "%.3f\n", ($2 - $1) / 1e9 }' >>"$x/t.$name"
    rm -rf "$x/out"
    sync
}
tar_gz() { mkdir "$x/out" && tar_x gz "$x/out"; }
tar_zst() { mkdir "$x/out" && tar_x zst "$x/out"; }

echo "runs: $runs (alternating berth-gz, tar-gz, berth-zst, tar-zst)"
i=0
while [ $i -lt "$runs" ]; do
    timed berth-gz "$bench" "$work/layer.tar.gz" "$x/out"
    timed tar-gz tar_gz
    timed berth-zst "$bench" "$work/layer.tar.zst" "$x/out"
    timed tar-zst tar_zst
    i=$((i + 1))
done

median() {
    sort -n "$x/t.$1" |
        awk '{ v[NR] = $1 }
             END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
printf '%-10s %-28s %s\n' tool "seconds (all runs)" median
for n in berth-gz tar-gz berth-zst tar-zst; do
    printf '%-10s %-28s %s\n' "$n" "$(tr '\n' ' ' <"$x/t.$n")" "$(median $n)"
done
echo
for c in gz zst; do
    b=$(median berth-$c)
    t=$(median tar-$c)
    ratio=$(echo "$b $t" | awk '{ printf "%.2f", $1 / $2 }')
    speed=$(echo "$b $t" | awk '{ printf "%.2f", $2 / $1 }')
    echo "$c: berth/tar = $ratio (berth ${b}s, tar ${t}s; throughput relative to tar ${speed}x)"
done
