#!/bin/bash
# compare_opentracker.sh - opentracker and `shoal tracker` under the same announce load, in one
# sitting, one after the other (never at the same time): the shared reference script
# opentracker_load.sh, then tracker_load.sh with keep-alive (as HTTP/1.1 clients and wrk do),
# then tracker_load.sh with `Connection: close` on every request (one TCP connection per
# announce, which is what opentracker does since it closes after every reply).
#
# Usage (from the repository root, on an otherwise idle machine; about 3 x (DURATION_S + 5) s):
#   cargo build --release --bin shoal
#   crates/tracker/bench/compare_opentracker.sh [DURATION_S=10] [CONNS=64] [WRK_THREADS=2] [NUM_HASHES=10000] [PIN=0]
#   env OT_SCRIPT (default: ../shared/bench/opentracker_load.sh beside the repository),
#       SHOAL (default: target/release/shoal)
# opentracker_load.sh does not report memory, so this script reads its opentracker's peak RSS
# (VmHWM) from /proc while it runs. It prints every run's own output, then one line per shoal
# mode with the ratios (shoal / opentracker; for p99 and memory, lower is better):
# compare keepalive=1|0 shoal_rps=.. ot_rps=.. rps_ratio=.. shoal_p99_ms=.. ot_p99_ms=..
#   p99_ratio=.. shoal_peak_rss_mib=.. ot_peak_rss_mib=.. shoal_status=.. ot_status=..
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
OT_SCRIPT=${OT_SCRIPT:-$REPO/../shared/bench/opentracker_load.sh}
export SHOAL=${SHOAL:-$REPO/target/release/shoal}
ARGS=("${1:-10}" "${2:-64}" "${3:-2}" "${4:-10000}" "${5:-0}")
[ -x "$OT_SCRIPT" ] || { echo "compare status=FAIL reason=no_opentracker_script ($OT_SCRIPT)"; exit 1; }

TMP=$(mktemp -d /tmp/shoal_compare.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# opentracker, with its peak RSS sampled from /proc while its script runs.
"$OT_SCRIPT" "${ARGS[@]}" >"$TMP/ot.out" 2>&1 &
RUNNER=$!
OTPID=""; OT_HWM_KIB=0
while kill -0 "$RUNNER" 2>/dev/null; do
  [ -n "$OTPID" ] || OTPID=$(sed -n 's/^opentracker pid \([0-9]*\) .*/\1/p' "$TMP/ot.out")
  if [ -n "$OTPID" ]; then
    v=$(awk '/^VmHWM:/{print $2}' "/proc/$OTPID/status" 2>/dev/null)
    [ -n "$v" ] && OT_HWM_KIB=$v
  fi
  sleep 0.2
done
wait "$RUNNER"
cat "$TMP/ot.out"
OT_LINE=$(grep '^opentracker_load ' "$TMP/ot.out" | tail -1)
echo

for keepalive in 1 0; do
  KEEPALIVE=$keepalive "$HERE/tracker_load.sh" "${ARGS[@]}" 2>&1 | tee "$TMP/shoal$keepalive.out"
  echo
done

python3 - "$OT_LINE" "$OT_HWM_KIB" "$(grep '^shoal_tracker_load ' "$TMP/shoal1.out" | tail -1)" \
  "$(grep '^shoal_tracker_load ' "$TMP/shoal0.out" | tail -1)" <<'EOF'
import sys
def fields(line):
    return dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
ot = fields(sys.argv[1]); ot_rss = int(sys.argv[2]) / 1024
for line in sys.argv[3:]:
    s = fields(line)
    if "rps" not in s or "rps" not in ot:
        print("compare status=FAIL reason=missing_result shoal=%r ot=%r" % (line, sys.argv[1]))
        continue
    ratio = lambda a, b: float(a) / float(b) if float(b) else float("nan")
    print("compare keepalive=%s shoal_rps=%s ot_rps=%s rps_ratio=%.2f shoal_p99_ms=%s ot_p99_ms=%s "
          "p99_ratio=%.2f shoal_peak_rss_mib=%s ot_peak_rss_mib=%.1f shoal_status=%s ot_status=%s" % (
        s.get("keepalive"), s["rps"], ot["rps"], ratio(s["rps"], ot["rps"]), s["p99_ms"], ot["p99_ms"],
        ratio(s["p99_ms"], ot["p99_ms"]), s.get("peak_rss_mib"), ot_rss, s.get("status"), ot.get("status")))
EOF
