#!/usr/bin/env bash
# Times `shoal create` against mktorrent and libtorrent's create_torrent on the same 1 GiB file
# held in the page cache, with the same piece length (1 MiB) for all three, and checks that the
# three .torrent files have the same info-hash.
#
#   scripts/bench-create.sh              # 5 timed runs of each tool
#   RUNS=10 scripts/bench-create.sh      # more runs
#
# Environment:
#   RUNS      timed runs per tool (default 5); the median wall time is reported
#   WARMUP    untimed runs per tool before those (default 1)
#   SIZE_MIB  size of the test file in MiB (default 1024; smaller only for a quick check)
#   THREADS   hashing threads for shoal and mktorrent (default: nproc)
#
# Needs: cargo, mktorrent, /usr/bin/python3 with libtorrent 2.x (python3-libtorrent), and
# optionally hyperfine (plain `date` timing otherwise) and transmission-show.
# The last line is machine-readable:
#   bench-create shoal_gbps=... mktorrent_gbps=... libtorrent_gbps=... status=OK|FAIL
#
# Run it on an otherwise idle machine: a concurrent build on a 2-core box easily doubles one
# tool's times and not another's (the min/max columns show when that happened).
#
# Notes on fairness:
# - libtorrent is driven from Python, so its time includes starting Python and importing
#   libtorrent (printed separately below). Its set_piece_hashes() from Python uses libtorrent's
#   default settings, i.e. its own choice of hashing threads, which the binding cannot change.
# - libtorrent 2.x makes hybrid v1+v2 torrents by default (a different info-hash, and SHA-256
#   hashing on top of SHA-1); the v1_only flag keeps the comparison like for like.
# - mktorrent runs with -d (no creation date); shoal leaves it out by default. Neither affects
#   the info-hash.
set -euo pipefail

RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
SIZE_MIB="${SIZE_MIB:-1024}"
THREADS="${THREADS:-$(nproc)}"
PIECE_LENGTH=1048576 # 2^20, mktorrent -l 20
PIECE_LOG2=20
PYTHON=/usr/bin/python3

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
    echo "bench-create: $*" >&2
    echo "bench-create shoal_gbps=0 mktorrent_gbps=0 libtorrent_gbps=0 status=FAIL"
    exit 1
}

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer, not '$WARMUP'"
[[ "$SIZE_MIB" =~ ^[1-9][0-9]*$ ]] || die "SIZE_MIB must be a positive integer, not '$SIZE_MIB'"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, not '$THREADS'"
command -v mktorrent >/dev/null || die "mktorrent is not installed (apt-get install mktorrent)"
"$PYTHON" -c 'import libtorrent' 2>/dev/null ||
    die "$PYTHON cannot import libtorrent (apt-get install python3-libtorrent)"

echo "== building shoal (release)"
(cd "$ROOT" && cargo build --release --bin shoal)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
SHOAL="$TARGET_DIR/release/shoal"
[[ -x "$SHOAL" ]] || die "no shoal binary at $SHOAL"

SIZE_BYTES=$((SIZE_MIB * 1024 * 1024))
avail_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
if ((avail_kib * 1024 < SIZE_BYTES * 2)); then
    echo "warning: only $((avail_kib / 1024)) MiB of memory available; the ${SIZE_MIB} MiB" \
        "file may not stay in the page cache, and disk reads would be timed" >&2
fi

WORK="$(mktemp -d /tmp/bench-create.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
DATA="$WORK/content/bench-${SIZE_MIB}MiB.bin"
OUT="$WORK/out"
mkdir -p "$WORK/content" "$OUT"

echo "== writing ${SIZE_MIB} MiB of random data to $DATA"
head -c "$SIZE_BYTES" /dev/urandom >"$DATA"
# Write it back now: otherwise the kernel flushes 1 GiB of dirty pages during the first timed
# runs, which then steal CPU and I/O from whichever tool happens to go first.
sync "$DATA"
echo "== reading it once to warm the page cache"
cat "$DATA" >/dev/null

cat >"$WORK/lt_create.py" <<'EOF'
import os
import sys

import libtorrent as lt

path, piece_length, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fs = lt.file_storage()
lt.add_files(fs, path)
# v1_only: libtorrent 2.x would otherwise make a hybrid v1+v2 torrent.
ct = lt.create_torrent(fs, piece_length, lt.create_torrent.v1_only)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
with open(out, "wb") as f:
    f.write(lt.bencode(ct.generate()))
EOF

q() { printf '%q' "$1"; }
TOOLS=(shoal mktorrent libtorrent)
declare -A CMD=(
    [shoal]="$(q "$SHOAL") create $(q "$DATA") -o $(q "$OUT/shoal.torrent") --piece-length $PIECE_LENGTH"
    [mktorrent]="mktorrent -l $PIECE_LOG2 -t $THREADS -d -o $(q "$OUT/mktorrent.torrent") $(q "$DATA")"
    [libtorrent]="$PYTHON $(q "$WORK/lt_create.py") $(q "$DATA") $PIECE_LENGTH $(q "$OUT/libtorrent.torrent")"
)
declare -A MEDIAN MIN MAX

# Median, min and max of numbers on stdin, one per line.
stats() { sort -g | awk '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.6f %.6f %.6f\n", m, v[1], v[NR] }'; }

if command -v hyperfine >/dev/null; then
    echo "== timing with hyperfine: $RUNS runs (+$WARMUP warm-up) of each, $THREADS threads"
    args=()
    for tool in "${TOOLS[@]}"; do
        # Each tool refuses to overwrite its output, so remove it before every run.
        args+=(--command-name "$tool" --prepare "rm -f $(q "$OUT/$tool.torrent")")
    done
    hyperfine --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/hyperfine.json" \
        "${args[@]}" "${CMD[shoal]}" "${CMD[mktorrent]}" "${CMD[libtorrent]}"
    for tool in "${TOOLS[@]}"; do
        read -r "MEDIAN[$tool]" "MIN[$tool]" "MAX[$tool]" < <(
            "$PYTHON" -c 'import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    if r["command"] == sys.argv[2]:
        print("\n".join(str(t) for t in r["times"]))' "$WORK/hyperfine.json" "$tool" | stats
        )
    done
else
    echo "== timing with date (hyperfine not installed): $RUNS runs (+$WARMUP warm-up) of each"
    for tool in "${TOOLS[@]}"; do
        : >"$WORK/$tool.times"
        for ((i = 0; i < WARMUP + RUNS; i++)); do
            rm -f "$OUT/$tool.torrent"
            start=$(date +%s.%N)
            bash -c "${CMD[$tool]}" >/dev/null 2>&1 || die "$tool failed: ${CMD[$tool]}"
            end=$(date +%s.%N)
            if ((i >= WARMUP)); then
                awk -v a="$start" -v b="$end" 'BEGIN {printf "%.6f\n", b - a}' >>"$WORK/$tool.times"
            fi
        done
        read -r "MEDIAN[$tool]" "MIN[$tool]" "MAX[$tool]" < <(stats <"$WORK/$tool.times")
    done
fi

for tool in "${TOOLS[@]}"; do
    [[ -s "$OUT/$tool.torrent" ]] || die "$tool left no torrent at $OUT/$tool.torrent"
done

# Python start-up and `import libtorrent`: part of libtorrent's wall time above.
py_start=$(date +%s.%N)
"$PYTHON" -c 'import libtorrent'
py_end=$(date +%s.%N)
py_overhead=$(awk -v a="$py_start" -v b="$py_end" 'BEGIN {printf "%.3f", b - a}')

echo
echo "== ${SIZE_MIB} MiB ($(awk -v b="$SIZE_BYTES" 'BEGIN {printf "%.3f", b / 1e9}') GB) in the" \
    "page cache, piece length $PIECE_LENGTH, $RUNS runs, $(nproc) cores"
printf '%-11s %10s %10s %10s %8s %15s\n' tool "median s" "min s" "max s" "GB/s" "shoal speedup"
declare -A GBPS
for tool in "${TOOLS[@]}"; do
    GBPS[$tool]=$(awk -v b="$SIZE_BYTES" -v t="${MEDIAN[$tool]}" 'BEGIN {printf "%.3f", b / 1e9 / t}')
    ratio=$(awk -v s="${MEDIAN[shoal]}" -v t="${MEDIAN[$tool]}" 'BEGIN {printf "%.2fx", t / s}')
    printf '%-11s %10.3f %10.3f %10.3f %8s %15s\n' "$tool" "${MEDIAN[$tool]}" "${MIN[$tool]}" \
        "${MAX[$tool]}" "${GBPS[$tool]}" "$ratio"
done
echo "(shoal speedup = tool's median / shoal's median; libtorrent includes ~${py_overhead} s of" \
    "Python start-up and import)"

echo
echo "== info-hashes"
declare -A HASH
HASH[shoal]=$("$SHOAL" show --json "$OUT/shoal.torrent" |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["info_hash"])')
if command -v transmission-show >/dev/null; then
    HASH[mktorrent]=$(transmission-show "$OUT/mktorrent.torrent" |
        awk '$1 == "Hash:" || $1 == "Hash" {print $NF; exit}')
else
    HASH[mktorrent]=$("$PYTHON" -c 'import sys, libtorrent as lt
print(lt.torrent_info(sys.argv[1]).info_hash())' "$OUT/mktorrent.torrent")
fi
HASH[libtorrent]=$("$PYTHON" -c 'import sys, libtorrent as lt
print(lt.torrent_info(sys.argv[1]).info_hash())' "$OUT/libtorrent.torrent")

status=OK
for tool in "${TOOLS[@]}"; do
    printf '%-11s %s\n' "$tool" "${HASH[$tool]:-<none>}"
    if [[ -z "${HASH[$tool]:-}" || "${HASH[$tool],,}" != "${HASH[shoal],,}" ]]; then
        status=FAIL
    fi
done
if [[ $status == OK ]]; then
    echo "info-hash ${HASH[shoal],,}: all three agree"
else
    echo "FAIL: the info-hashes differ"
fi

echo "bench-create shoal_gbps=${GBPS[shoal]} mktorrent_gbps=${GBPS[mktorrent]}" \
    "libtorrent_gbps=${GBPS[libtorrent]} status=$status"
[[ $status == OK ]]
