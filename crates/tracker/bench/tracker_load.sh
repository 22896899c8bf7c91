#!/bin/bash
# tracker_load.sh - announce throughput of `shoal tracker` under wrk, the same load as
# /work/shared/bench/opentracker_load.sh (64 connections, random 20-byte peer ids and ports,
# info-hashes drawn from NUM_HASHES random ones, compact=1, numwant=50, event=started), so the
# two can be run one after the other and compared as a ratio.
#
# Usage: tracker_load.sh [DURATION_S=10] [CONNS=64] [WRK_THREADS=2] [NUM_HASHES=10000]
#   env SHOAL=path/to/shoal (default: target/release/shoal; build it with
#   `cargo build --release --bin shoal`). Needs wrk, curl, python3.
# Last line: shoal_tracker_load rps=.. p50_ms=.. p99_ms=.. cpu_pct=.. us_per_req=.. status=OK|FAIL
set -u
DUR=${1:-10}
CONNS=${2:-64}
THREADS=${3:-2}
NHASH=${4:-10000}
SHOAL=${SHOAL:-target/release/shoal}
for b in "$SHOAL" wrk curl python3; do
  command -v "$b" >/dev/null 2>&1 || { echo "shoal_tracker_load status=FAIL reason=missing_$(basename "$b")"; exit 1; }
done
TMP=$(mktemp -d /tmp/shoal_tracker_load.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -INT "$PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 - "$NHASH" "$TMP/hashes.txt" <<'EOF'
import os, sys
with open(sys.argv[2], "w") as f:
    for _ in range(int(sys.argv[1])):
        f.write("".join("%%%02X" % b for b in os.urandom(20)) + "\n")
EOF

"$SHOAL" tracker --listen 127.0.0.1:0 >"$TMP/out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 1 50); do grep -q '^tracker ' "$TMP/out" && break; sleep 0.1; done
URL=$(awk '/^tracker /{print $2}' "$TMP/out")
[ -n "$URL" ] || { cat "$TMP/err" >&2; echo "shoal_tracker_load status=FAIL reason=not_ready"; exit 1; }
BASE=${URL%/announce}

cat >"$TMP/announce.lua" <<EOF
local hex = {}
for i = 0, 255 do hex[i] = string.format("%%%02X", i) end
local hashes = {}
local counter = 0
function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
  for line in io.lines("$TMP/hashes.txt") do hashes[#hashes + 1] = line end
end
local function rand20()
  local t = {}
  for i = 1, 20 do t[i] = hex[math.random(0, 255)] end
  return table.concat(t)
end
function request()
  local ih = hashes[math.random(#hashes)]
  local left = (math.random(4) == 1) and 0 or math.random(1, 1073741824)
  local path = "/announce?info_hash=" .. ih .. "&peer_id=" .. rand20() ..
               "&port=" .. math.random(1024, 65535) .. "&uploaded=0&downloaded=0&left=" .. left ..
               "&compact=1&numwant=50&event=started"
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  io.write(string.format("WRKRESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
EOF

cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
C0=$(cpu)
timeout $((DUR + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 5s --latency \
  -s "$TMP/announce.lua" "$BASE/" >"$TMP/wrk.out" 2>&1
RC=$?
C1=$(cpu)
grep -v '^WRKRESULT' "$TMP/wrk.out"
LINE=$(grep '^WRKRESULT' "$TMP/wrk.out")
[ $RC -eq 0 ] && [ -n "$LINE" ] || { echo "shoal_tracker_load status=FAIL reason=wrk_rc_$RC"; exit 1; }
STATS=$(curl -s --max-time 2 "$BASE/stats")
echo "tracker state after run: $STATS"
python3 - "$LINE" "$C0" "$C1" "$(getconf CLK_TCK)" "$STATS" <<'EOF'
import json, sys
kv = dict(x.split("=") for x in sys.argv[1].split()[1:])
req = int(kv["requests"]); dur = int(kv["duration_us"]) / 1e6
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / float(sys.argv[4])
stats = json.loads(sys.argv[5])
status = "OK" if stats.get("failures", 1) == 0 and int(kv["errors"]) == 0 else "FAIL"
print("shoal_tracker_load rps=%.0f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%s failures=%s cpu_pct=%.0f us_per_req=%.1f status=%s" % (
    req / dur, int(kv["p50_us"]) / 1e3, int(kv["p99_us"]) / 1e3, req, kv["errors"],
    stats.get("failures"), 100 * cpu / dur, 1e6 * cpu / max(req, 1), status))
EOF
