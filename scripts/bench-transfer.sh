#!/usr/bin/env bash
# 1 seeder -> 1 leecher over loopback: two `shoal` processes, SIZE_MIB of random data in the
# page cache, 1 MiB pieces. Runs RUNS transfers against one seeder (each into an empty
# directory) and prints, per run and as the median: MB/s (complete = every piece verified and
# written), CPU seconds per GB on each side, and the seeder's RSS.
#
#   scripts/bench-transfer.sh [SIZE_MIB] [RUNS]        (default 1024 and 3)
#
# SHOAL_BIN=path/to/shoal compares another build (e.g. an older commit's) on the same data.
#
# Before each run the script writes and deletes a scratch file of SIZE_MIB, so that the
# leecher's page cache lands in memory the VM's host has backed: this VM hands freed guest
# memory back to its host (virtio-balloon free page reporting), and writing 1 GiB into such
# memory costs 2.4 s of system time against 0.2 s for memory freed a moment ago (dd, measured
# back to back) -- a hypervisor cost that swamps the transfer's. WARM=0 skips the step.
#
# Run it on an otherwise idle machine; it builds shoal in release mode first. The last line is
# `shoal-transfer key=value ... status=OK|FAIL`, like ../shared/bench/lt_pair.py's.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-1024}
runs=${2:-3}
if [ -n "${SHOAL_BIN:-}" ]; then
  shoal=$SHOAL_BIN
else
  cargo build --release --quiet --bin shoal
  shoal=$PWD/target/release/shoal
fi
. scripts/bench-lib.sh
bench_start transfer

head -c $((size_mib << 20)) /dev/urandom > "$work/big.bin"
"$shoal" create "$work/big.bin" -o "$work/big.torrent" --piece-length 1048576 > /dev/null
cat "$work/big.bin" > /dev/null # into the page cache

bench_serve seeder "$shoal" seed "$work/big.bin" --torrent "$work/big.torrent" \
  --listen /ip4/127.0.0.1/tcp/0 --no-dht
seeder_pid=$server_pid
echo "seeder $addr, idle RSS $(rss_kib "$seeder_pid") KiB"

bytes=$((size_mib << 20))
results=()
for run in $(seq 1 "$runs"); do
  rm -rf "$work/dl"
  if [ "${WARM:-1}" != 0 ]; then
    dd if=/dev/zero of="$work/warm" bs=1M count="$size_mib" status=none
    rm -f "$work/warm"
  fi
  seed_cpu_before=$(cpu_of "$seeder_pid")
  start=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$work/leech.time" \
    "$shoal" get "$work/big.torrent" -o "$work/dl" --peer "$addr" \
      --listen /ip4/127.0.0.1/tcp/0 --no-dht --exit-when-done > "$work/leech.out" 2> "$work/leech.err"
  end=$(date +%s.%N)
  seed_cpu_after=$(cpu_of "$seeder_pid")
  cmp -s "$work/big.bin" "$work/dl/big.bin" || { echo "run $run: content differs"; exit 1; }
  line=$(awk -v b="$bytes" -v s="$start" -v e="$end" -v s0="$seed_cpu_before" -v s1="$seed_cpu_after" \
    -v rss="$(rss_kib "$seeder_pid")" '
    { leech = $1 + $2 }
    END {
      secs = e - s; gb = b / 1e9
      printf "%.3f %.1f %.2f %.2f %d", secs, b / secs / 1e6, leech / gb, (s1 - s0) / gb, rss
    }' "$work/leech.time")
  echo "run $run: $line" | awk '{ printf "run %s %s s  %s MB/s  leecher %s CPU-s/GB  seeder %s CPU-s/GB  seeder RSS %s KiB\n", $2, $3, $4, $5, $6, $7 }'
  results+=("$line")
done

median=$(median_line "$runs" "${results[@]}")
read -r secs mbps leech_cpu seed_cpu rss <<< "$median"
echo "shoal-transfer size_mib=$size_mib runs=$runs median_s=$secs median_MBps=$mbps leecher_cpu_s_per_GB=$leech_cpu seeder_cpu_s_per_GB=$seed_cpu seeder_rss_kib=$rss status=OK"
