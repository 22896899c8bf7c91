#!/usr/bin/env bash
# Time-bounded fuzzing of shoal-metainfo's decoders (crates/metainfo/fuzz, see its README).
#
#   FUZZ_SECONDS        seconds per target (default 30)
#   FUZZ_TARGETS        space-separated targets (default: bencode_decode torrent_parse)
#   FUZZ_INSTALL_LIMIT  seconds allowed for `cargo install cargo-fuzz` (default 900)
#   FUZZ_BUILD_LIMIT    seconds allowed for building the targets (default 900)
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer, -Cpasses=sancov...); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them.
#
# Outcomes:
# - a target finds a crash, panic, leak or hang: exit 1, the reproducing input is left in
#   crates/metainfo/fuzz/artifacts/<target>/;
# - the fuzz targets do not compile even without the fuzzing flags (the code is broken): exit 1;
# - this machine cannot fuzz (cargo-fuzz cannot be installed, the toolchain cannot build with
#   sanitizers, or a sanitized binary cannot start): say why and exit 0. The property tests in
#   crates/metainfo/tests/properties.rs, which `cargo test` runs, carry that role then.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root="$(pwd)"

seconds="${FUZZ_SECONDS:-30}"
targets="${FUZZ_TARGETS:-bencode_decode torrent_parse}"
install_limit="${FUZZ_INSTALL_LIMIT:-900}"
build_limit="${FUZZ_BUILD_LIMIT:-900}"
# A run ends by itself after $seconds (libFuzzer's -max_total_time); this much more means hung.
run_limit=$((seconds + 120))
# libtorrent's .torrent test corpus, beside the repo, seeds both targets (read, never written).
seeds="$repo_root/../shared/testdata/libtorrent-torrents"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

skip() {
  echo "fuzz: SKIPPED: $*" >&2
  echo "fuzz: the property tests (crates/metainfo/tests/properties.rs) cover the decoders instead" >&2
  exit 0
}

if ! command -v timeout >/dev/null 2>&1; then
  skip "no 'timeout' command (coreutils) to bound the fuzz run"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (at most ${install_limit}s)"
  if ! timeout --kill-after=10 "$install_limit" cargo install cargo-fuzz --locked >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    skip "cargo-fuzz could not be installed (see above)"
  fi
fi

export RUSTC_BOOTSTRAP=1
cd crates/metainfo/fuzz

# A misspelt FUZZ_TARGETS must not pass for a toolchain that cannot fuzz.
known="$(cargo fuzz list 2>/dev/null || true)"
if [ -z "$known" ]; then
  skip "'cargo fuzz list' lists no targets: cargo-fuzz does not work here"
fi
for target in $targets; do
  if ! grep -qx "$target" <<<"$known"; then
    echo "fuzz: no fuzz target '$target'; the targets are:" $known >&2
    exit 1
  fi
done

# Build every target first, so a toolchain that cannot fuzz is told apart from a crash.
for target in $targets; do
  echo "fuzz: building $target (at most ${build_limit}s)"
  if ! timeout --kill-after=10 "$build_limit" cargo fuzz build -a "$target" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    # Broken code must fail CI: check the same targets without any fuzzing flags.
    if ! (unset RUSTC_BOOTSTRAP && timeout --kill-after=10 "$build_limit" \
      cargo check --bins --quiet) >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "fuzz: the fuzz targets do not compile" >&2
      exit 1
    fi
    skip "cargo fuzz cannot build $target with this toolchain's sanitizer flags (see above)"
  fi
done

# Count the artifacts (crash-*, leak-*, timeout-*, oom-*) libFuzzer has saved for a target.
artifacts() {
  if [ -d "artifacts/$1" ]; then find "artifacts/$1" -type f | wc -l; else echo 0; fi
}

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
  before="$(artifacts "$target")"
  echo "fuzz: $target for ${seconds}s"
  # -a: debug assertions and overflow checks on. The first corpus directory receives new
  # inputs; the seed directory is only read. -timeout turns a slow input into a failure.
  status=0
  timeout --kill-after=10 "$run_limit" cargo fuzz run -a "$target" "$corpus" "${extra[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  if [ "$status" = 0 ]; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -n 5 "$log"
    continue
  fi
  tail -n 80 "$log"
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "fuzz: $target did not stop within ${run_limit}s: a hang" >&2
  elif [ "$(artifacts "$target")" = "$before" ] && ! grep -qE '^(INFO|#[0-9]+)' "$log" &&
    [ "${#failed[@]}" = 0 ]; then
    # No input was saved and libFuzzer never started: the binary cannot run on this machine.
    skip "the $target fuzzer could not start on this machine (exit $status, see above)"
  fi
  failed+=("$target")
  echo "fuzz: $target FAILED; reproducing input in crates/metainfo/fuzz/artifacts/$target/" >&2
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crashes in: $targets"
