#!/usr/bin/env bash
# @file tests/scripts/test_install.sh @brief ctest ember.scripts.install: installs the build into a temporary prefix, checks the installed headers stand alone, builds examples/out_of_tree against the package (find_package) and runs it: CPU-only (links libember alone) and with the emulated CUDA backend; loss finite and decreasing.
#
# Usage: test_install.sh BUILD_DIR CMAKE CXX_COMPILER [CMAKE_GENERATOR] (tests/CMakeLists.txt passes the build's).
# Installing only copies what the build made (it rebuilds nothing and writes nothing in BUILD_DIR but
# install_manifest.txt), so it runs next to the other tests; the temporary folder is removed on exit.
set -euo pipefail
build=$1
cmake=$2
cxx=$3
generator=${4:-}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fails=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; fails=$((fails + 1)); fi
}
run_logged() {  # run_logged LOG COMMAND...: runs it quietly; on failure prints the log and stops the test
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $*"
    sed 's/^/  | /' "$log" | tail -40
    exit 1
  fi
}

# 1. Install. Every target must have been built (cmake --build BUILD): install copies, it does not build.
run_logged "$tmp/install.log" "$cmake" --install "$build" --prefix "$prefix"
cfgdir=$prefix/lib/cmake/Ember
check "EmberConfig.cmake and EmberConfigVersion.cmake in lib/cmake/Ember" \
  test -f "$cfgdir/EmberConfig.cmake" -a -f "$cfgdir/EmberConfigVersion.cmake"
check "libember.so in lib" test -f "$prefix/lib/libember.so"
check "core/tensor.h, nn/nn.h and optim/optim.h under include/ember" \
  test -f "$prefix/include/ember/core/tensor.h" -a -f "$prefix/include/ember/nn/nn.h" -a -f "$prefix/include/ember/optim/optim.h"
check "no CUDA backend internals among the headers" test ! -e "$prefix/include/ember/kernels/cuda"

# 2. The installed headers stand alone: each quoted #include names an installed header, and one file
# including all of them compiles against include/ember only.
missing=$(cd "$prefix/include/ember" && grep -ho '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*"' -r . |
          sed 's/.*"\(.*\)"/\1/' | sort -u | while read -r h; do [ -f "$h" ] || echo "$h"; done)
check "every header an installed header includes is installed${missing:+ (missing: $missing)}" test -z "$missing"
(cd "$prefix/include/ember" && find . -name '*.h' | sort | sed 's|^\./\(.*\)|#include "\1"|') >"$tmp/all_headers.cpp"
check "the $(wc -l <"$tmp/all_headers.cpp") installed headers compile from include/ember alone" \
  "$cxx" -std=c++20 -fopenmp -fsyntax-only -I "$prefix/include/ember" "$tmp/all_headers.cpp"

# 3. The example's copy of README.md's C++ block is the README's text.
awk '/^```cpp$/ {on = 1; next} on && /^```$/ {exit} on' "$src/README.md" >"$tmp/readme_block"
awk '/^\/\/ README.md example begins$/ {on = 1; next} /^\/\/ README.md example ends$/ {on = 0} on' \
  "$src/examples/out_of_tree/readme_model.cpp" >"$tmp/example_block"
check "README.md's C++ block is non-empty" test -s "$tmp/readme_block"
check "examples/out_of_tree/readme_model.cpp holds README.md's C++ block verbatim" \
  diff "$tmp/readme_block" "$tmp/example_block"

# 4. Configure and build the out-of-tree example against the package: CPU only, and with each CUDA
# backend that was installed (the emulated one runs here; the real one runs where a GPU is).
backends=
for b in cuda_emulated cuda; do
  if [ -f "$cfgdir/Ember_${b}Targets.cmake" ]; then backends=${backends:+$backends;}$b; fi
done
run_logged "$tmp/configure.log" "$cmake" -S "$src/examples/out_of_tree" -B "$tmp/build" ${generator:+-G "$generator"} \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" -DREADME_MODEL_BACKENDS="$backends"
run_logged "$tmp/build.log" "$cmake" --build "$tmp/build" -j 2

# The CPU-only program needs libember and no CUDA backend library.
needed_of() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
needed=$(needed_of "$tmp/build/readme_model")
check "readme_model (Ember::ember) needs libember.so [$needed]" grep -qw 'libember\.so' <<<"$needed"
check "readme_model needs no CUDA backend [$needed]" test -z "$(grep -o 'libember_cuda[a-z_]*\.so' <<<"$needed")"

# expect_training NAME COMMAND...: prints 'device D' and 'epoch E loss L' for E = 0..4; every loss finite and
# lower than the one before, and the last under half of the first. 12 SGD steps on 60 fixed samples: the MLP
# starts near ln(10) = 2.3 and fits them (tests/docs/readme_example_test.inc asserts the same halving).
expect_training() {
  local name=$1 rc=0
  shift
  "$@" >"$tmp/$name.out" 2>&1 || rc=$?
  check "$name exits 0" test "$rc" -eq 0 || sed 's/^/  | /' "$tmp/$name.out"
  check "$name prints 5 epochs' losses" test "$(grep -c '^epoch [0-9] loss ' "$tmp/$name.out")" -eq 5
  check "$name: losses finite, decreasing, last < half the first ($(awk '/^epoch/ {printf "%s ", $4}' "$tmp/$name.out"))" \
    awk '/^epoch/ { if ($4 !~ /^[0-9]+\.[0-9]+$/) bad = 1; if (n && $4 >= last) bad = 1; if (!n) first = $4; last = $4; n++ }
         END { exit (bad || n != 5 || last >= 0.5 * first) }' "$tmp/$name.out"
}
expect_training readme_model "$tmp/build/readme_model"
check "readme_model ran on the CPU" grep -qx 'device cpu' "$tmp/readme_model.out"
if [[ ";$backends;" == *";cuda_emulated;"* ]]; then
  needed=$(needed_of "$tmp/build/readme_model_cuda_emulated")
  check "readme_model_cuda_emulated keeps libember_cuda_emu.so (--no-as-needed) [$needed]" grep -qw 'libember_cuda_emu\.so' <<<"$needed"
  expect_training readme_model_cuda_emulated "$tmp/build/readme_model_cuda_emulated" cuda
  check "readme_model_cuda_emulated ran on cuda:0" grep -qx 'device cuda:0' "$tmp/readme_model_cuda_emulated.out"
  # Same seed, same data and weights (drawn on the CPU, then moved): the untrained model's loss is the
  # CPU's up to f32 sums taken in another order (GEMM tiles), far below 1e-4 relative.
  check "readme_model_cuda_emulated's epoch 0 loss is the CPU's (1e-4 relative)" \
    awk 'FNR == 1 {f++} /^epoch 0 loss/ {v[f] = $4} END {d = v[1] - v[2]; exit !(f == 2 && d * d <= (1e-4 * v[1]) ^ 2)}' \
    "$tmp/readme_model.out" "$tmp/readme_model_cuda_emulated.out"
fi
if [[ ";$backends;" == *";cuda;"* ]]; then
  needed=$(needed_of "$tmp/build/readme_model_cuda")
  check "readme_model_cuda keeps libember_cuda.so (--no-as-needed) [$needed]" grep -qw 'libember_cuda\.so' <<<"$needed"
  if nvidia-smi -L >/dev/null 2>&1; then
    expect_training readme_model_cuda "$tmp/build/readme_model_cuda" cuda
  else
    echo "skipped: running readme_model_cuda (no GPU)"
  fi
fi

# 5. The installed ember-train finds its libraries (RPATH $ORIGIN/../lib) from another folder.
if [ -f "$build/ember-train" ]; then
  rc=0
  (cd "$tmp" && "$prefix/bin/ember-train" --help) >"$tmp/train_help.out" 2>&1 || rc=$?
  check "installed bin/ember-train --help exits 0" test "$rc" -eq 0 || sed 's/^/  | /' "$tmp/train_help.out"
  check "installed bin/ember-train --help prints its usage" grep -q '^Usage: ember-train' "$tmp/train_help.out"
fi

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all install checks passed"
