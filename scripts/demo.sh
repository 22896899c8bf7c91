#!/usr/bin/env bash
# A small swarm on 127.0.0.1: one `shoal seed` and N `shoal get` processes fetch a random file,
# every copy is compared with the original, and the times are printed.
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

echo "== making ${SIZE_MIB} MiB of random content in $WORK"
mkdir -p "$WORK/seed"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/seed/content.bin"
"$SHOAL" create "$WORK/seed/content.bin" -o "$WORK/content.torrent" >/dev/null

echo "== starting the seeder"
"$SHOAL" seed "$WORK/seed/content.bin" --torrent "$WORK/content.torrent" --listen "$LOOPBACK" \
  >"$WORK/seed.out" 2>"$WORK/seed.err" &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q '^magnet ' "$WORK/seed.out" 2>/dev/null && break
  sleep 0.1
done
SEEDER="$(grep -m1 '^listen ' "$WORK/seed.out" | cut -d' ' -f2)"
[ -n "$SEEDER" ] || { echo "the seeder did not start:"; cat "$WORK/seed.err"; exit 1; }
echo "   $SEEDER"

echo "== $LEECHERS leechers fetch it (each also given the leechers started before it)"
START=$(date +%s.%N)
PEERS=(--peer "$SEEDER")
GETS=()
for i in $(seq "$LEECHERS"); do
  "$SHOAL" get "$WORK/content.torrent" -o "$WORK/leech$i" "${PEERS[@]}" --listen "$LOOPBACK" \
    --exit-when-done >"$WORK/leech$i.out" 2>"$WORK/leech$i.err" &
  GETS+=($!)
  PIDS+=($!)
  for _ in $(seq 50); do
    grep -q '^listen ' "$WORK/leech$i.out" 2>/dev/null && break
    sleep 0.1
  done
  PEERS+=(--peer "$(grep -m1 '^listen ' "$WORK/leech$i.out" | cut -d' ' -f2)")
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
