#!/usr/bin/env bash
# A trackerless swarm on 127.0.0.1: a `shoal node` bootstrap node, one `shoal seed` and N
# `shoal get` processes that know only a bare magnet link (no peers, no trackers) and the
# bootstrap address. They find the seeder through the DHT, each other through the DHT and PEX,
# fetch the metadata from peers, and download; every copy is compared with the original.
#
#   scripts/demo.sh [LEECHERS] [SIZE_MIB]      (defaults: 4 leechers, 64 MiB)
#
# Everything lives in a temporary directory that is removed at the end; every process this
# script starts is killed on exit, also on Ctrl-C. No network beyond loopback is used.
set -euo pipefail

LEECHERS="${1:-4}"
SIZE_MIB="${2:-64}"
LOOPBACK=/ip4/127.0.0.1/tcp/0
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin shoal
SHOAL="$(pwd)/target/release/shoal"

WORK="$(mktemp -d /tmp/shoal-demo.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Waits until FILE has a line starting with PREFIX; prints its second field.
wait_line() {
  for _ in $(seq 100); do
    grep -q "^$2 " "$1" 2>/dev/null && break
    sleep 0.1
  done
  grep -m1 "^$2 " "$1" | cut -d' ' -f2
}

echo "== making ${SIZE_MIB} MiB of random content in $WORK"
mkdir -p "$WORK/seed"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/seed/content.bin"

echo "== starting a bootstrap node"
"$SHOAL" node --listen "$LOOPBACK" --data-dir "$WORK/boot" >"$WORK/boot.out" 2>"$WORK/boot.err" &
PIDS+=($!)
BOOT="$(wait_line "$WORK/boot.out" listen)"
[ -n "$BOOT" ] || { echo "the bootstrap node did not start:"; cat "$WORK/boot.err"; exit 1; }
echo "   $BOOT"

echo "== starting the seeder"
"$SHOAL" seed "$WORK/seed/content.bin" --listen "$LOOPBACK" --bootstrap "$BOOT" \
  >"$WORK/seed.out" 2>"$WORK/seed.err" &
PIDS+=($!)
MAGNET="$(wait_line "$WORK/seed.out" magnet)"
[ -n "$MAGNET" ] || { echo "the seeder did not start:"; cat "$WORK/seed.err"; exit 1; }
# Keep only the info-hash: the leechers must find everything else themselves.
BARE="$(echo "$MAGNET" | sed -E 's/^(magnet:\?xt=urn:btih:[0-9a-fA-F]+).*/\1/')"
echo "   $BARE"

echo "== $LEECHERS leechers fetch it from the bare magnet link and the bootstrap address"
START=$(date +%s.%N)
GETS=()
for i in $(seq "$LEECHERS"); do
  "$SHOAL" get "$BARE" -o "$WORK/leech$i" --bootstrap "$BOOT" --listen "$LOOPBACK" \
    --exit-when-done >"$WORK/leech$i.out" 2>"$WORK/leech$i.err" &
  GETS+=($!)
  PIDS+=($!)
done

failed=0
for i in $(seq "$LEECHERS"); do
  if ! timeout 300 tail --pid="${GETS[$((i - 1))]}" -f /dev/null; then
    echo "leecher $i did not finish in 5 minutes"; failed=1; continue
  fi
  end=$(date +%s.%N)
  if cmp -s "$WORK/seed/content.bin" "$WORK/leech$i/content.bin"; then
    summary="$(grep '^complete ' "$WORK/leech$i.out" || true)"
    elapsed=$(awk -v a="$START" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    echo "   leecher $i: content identical, done after ${elapsed} s (${summary})"
  else
    echo "   leecher $i: CONTENT DIFFERS"; failed=1
  fi
done
[ "$failed" = 0 ] && echo "== every leecher has the file" || { echo "== FAILED"; exit 1; }
