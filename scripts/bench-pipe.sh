#!/usr/bin/env bash
# The ceiling of shoal's transport: one libp2p stream over TCP + Noise + Yamux between two
# processes on loopback, with the node's settings and one network thread each, carrying SIZE_MIB
# that nobody frames, hashes or stores (crates/node/examples/pipe_ceiling.rs). Prints each run
# and the median: MB/s, and CPU seconds per GB on each side -- the same figures as
# scripts/bench-transfer.sh, so the two side by side show what the stream stack costs and what
# shoal's piece exchange, SHA-1 and disk writes add to it.
#
#   scripts/bench-pipe.sh [SIZE_MIB] [RUNS]        (default 1024 and 5)
#
# Run it on an otherwise idle machine, in the same sitting as bench-transfer.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-1024}
runs=${2:-5}
cargo build --release --quiet --example pipe_ceiling -p shoal-node
bin=$PWD/target/release/examples/pipe_ceiling
. scripts/bench-lib.sh
bench_start pipe
bench_serve server "$bin" serve

bytes=$((size_mib << 20))
results=()
for run in $(seq 1 "$runs"); do
  serve_before=$(cpu_of "$server_pid")
  /usr/bin/time -f "%U %S" -o "$work/fetch.time" "$bin" fetch "$addr" "$bytes" > "$work/fetch.out"
  serve_after=$(cpu_of "$server_pid")
  line=$(awk -v b="$bytes" -v s0="$serve_before" -v s1="$serve_after" '
    NR == FNR { secs = $4; next }
    { fetch = $1 + $2 }
    END {
      gb = b / 1e9
      printf "%.3f %.1f %.2f %.2f", secs, b / secs / 1e6, fetch / gb, (s1 - s0) / gb
    }' "$work/fetch.out" "$work/fetch.time")
  echo "$line" | awk -v r="$run" '{ printf "run %s: %s s  %s MB/s  fetch %s CPU-s/GB  serve %s CPU-s/GB\n", r, $1, $2, $3, $4 }'
  results+=("$line")
done

median=$(median_line "$runs" "${results[@]}")
read -r secs mbps fetch_cpu serve_cpu <<< "$median"
echo "shoal-pipe size_mib=$size_mib runs=$runs median_s=$secs median_MBps=$mbps fetch_cpu_s_per_GB=$fetch_cpu serve_cpu_s_per_GB=$serve_cpu status=OK"
