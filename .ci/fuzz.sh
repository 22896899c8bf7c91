#!/usr/bin/env bash
# Time-bounded fuzzing of shoal-metainfo's decoders (crates/metainfo/fuzz, see its README).
#
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_TARGETS  space-separated targets (default: bencode_decode torrent_parse)
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer, -Cpasses=sancov...); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them. Fails if any target finds a crash, panic, leak or
# hang; the reproducing input is left in crates/metainfo/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root="$(pwd)"

seconds="${FUZZ_SECONDS:-30}"
targets="${FUZZ_TARGETS:-bencode_decode torrent_parse}"
# libtorrent's .torrent test corpus, beside the repo, seeds both targets (read, never written).
seeds="$repo_root/../shared/testdata/libtorrent-torrents"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cd crates/metainfo/fuzz

failed=()
for target in $targets; do
  corpus="corpus/$target"
  mkdir -p "$corpus"
  extra=()
  if [ -d "$seeds" ]; then
    extra=("$seeds")
  else
    echo "fuzz: $seeds not found; fuzzing $target without the seed corpus" >&2
  fi
  log="$(mktemp)"
  echo "fuzz: $target for ${seconds}s"
  # -a: debug assertions and overflow checks on. The first corpus directory receives new
  # inputs; the seed directory is only read. -timeout turns a hang into a failure.
  if cargo fuzz run -a "$target" "$corpus" "${extra[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -n 5 "$log"
  else
    tail -n 80 "$log"
    failed+=("$target")
    echo "fuzz: $target FAILED; reproducing input in crates/metainfo/fuzz/artifacts/$target/" >&2
  fi
  rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crashes in: $targets"
