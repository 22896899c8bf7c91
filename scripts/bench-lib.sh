# Shared by bench-transfer.sh and bench-pipe.sh (sourced, not run): a scratch directory, one
# background server process, CPU and RSS readings, and the median run.
#
#   bench_start NAME              makes $work (/tmp/shoal-bench-NAME.*), removed on exit with
#                                 the server started by bench_serve
#   bench_serve WHAT CMD...       starts CMD in the background (stdout and stderr in $work),
#                                 waits for its `listen ADDR` line and sets $server_pid, $addr
#   cpu_of PID / rss_kib PID      utime + stime in seconds / resident memory in KiB
#   median_line RUNS LINE...      the line whose first field (seconds) is the median

server_pid=""
bench_cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}

bench_start() {
  work=$(mktemp -d "/tmp/shoal-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
}

bench_serve() {
  local what=$1
  shift
  "$@" > "$work/server.out" 2> "$work/server.err" &
  server_pid=$!
  for _ in $(seq 1 100); do
    grep -q '^listen ' "$work/server.out" 2>/dev/null && break
    sleep 0.1
  done
  addr=$(awk '/^listen /{ print $2; exit }' "$work/server.out")
  [ -n "$addr" ] || { echo "the $what did not start"; cat "$work/server.err"; exit 1; }
}

ticks=$(getconf CLK_TCK)
cpu_of() { awk -v t="$ticks" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

median_line() {
  local runs=$1
  shift
  printf '%s\n' "$@" | sort -n -k1 | awk -v n="$runs" 'NR == int((n + 1) / 2)'
}
