#!/usr/bin/env bash
# @file scripts/sanitize.sh @brief Builds the whole test suite with AddressSanitizer + UndefinedBehaviorSanitizer (CMake preset "asan", build-asan/) and runs it with ctest; part of make test.
# Usage: scripts/sanitize.sh [extra ctest arguments]. The sanitizer options, the LeakSanitizer
# suppressions and what the sanitized run leaves out are in CMakePresets.json (test preset "asan");
# docs/reliability.md explains each.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
start=$(date +%s)
flags=()
[ "${CI:-}" = "true" ] && flags+=(-DEMBER_WERROR=ON)
cmake --preset asan "${flags[@]}" >/dev/null
cmake --build --preset asan -j "$JOBS"
built=$(date +%s)
ctest --preset asan -j "$JOBS" "$@"
echo "sanitize: build $(( built - start )) s, tests $(( $(date +%s) - built )) s"
