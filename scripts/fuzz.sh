#!/usr/bin/env bash
# @file scripts/fuzz.sh @brief Builds the libFuzzer targets (CMake preset "fuzz", clang, build-fuzz/) and fuzzes each for a given time, or runs their short ctest check (--test).
# Usage:
#   scripts/fuzz.sh [SECONDS]   fuzz each target SECONDS (default 60) from fuzz/corpus/<target>, then merge
#                               the inputs that add coverage into fuzz/corpus/<target> (commit them)
#   scripts/fuzz.sh --test      replay the kept corpus and fuzz each target 5 s (make test; nothing is
#                               written to the repository)
#   FUZZ_TARGETS="fuzz_cli fuzz_idx" scripts/fuzz.sh 600   only these targets, in this order
# A crash, a leak, a timeout (> 10 s per input) or an input using more than 2 GB fails the run; the
# input is saved as build-fuzz/fuzz/artifacts/<target>/crash-* (or leak-, timeout-, oom-).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
read -ra TARGETS <<<"${FUZZ_TARGETS:-fuzz_safetensors fuzz_idx fuzz_cli}"
start=$(date +%s)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target ember_fuzz -j "$JOBS"
built=$(date +%s)
if [ "${1:-}" = "--test" ]; then
  ctest --test-dir build-fuzz --output-on-failure -j "$JOBS" -R '^fuzz\.'
  echo "fuzz: build $(( built - start )) s, tests $(( $(date +%s) - built )) s"
  exit 0
fi
seconds=${1:-60}
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for t in "${TARGETS[@]}"; do
  corpus=fuzz/corpus/$t scratch=build-fuzz/fuzz/scratch/$t artifacts=build-fuzz/fuzz/artifacts/$t
  rm -rf "$scratch" && mkdir -p "$scratch" "$artifacts"
  dict=(); [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  echo "fuzz: $t for $seconds s"
  if ! build-fuzz/fuzz/$t "$scratch" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
       -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$artifacts/" \
       >"build-fuzz/fuzz/$t.log" 2>&1; then
    echo "fuzz: $t FAILED (see build-fuzz/fuzz/$t.log and $artifacts/)"; tail -40 "build-fuzz/fuzz/$t.log"; status=1
    continue
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' "build-fuzz/fuzz/$t.log" || true
  before=$(ls "$corpus" | wc -l)
  build-fuzz/fuzz/$t -merge=1 "$corpus" "$scratch" >"build-fuzz/fuzz/$t.merge.log" 2>&1
  echo "fuzz: $t: corpus $before -> $(ls "$corpus" | wc -l) inputs"
done
echo "fuzz: wall $(( $(date +%s) - start )) s"
exit $status
