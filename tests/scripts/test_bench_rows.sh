#!/usr/bin/env bash
# @file tests/scripts/test_bench_rows.sh @brief ember-bench's FMA peaks and its per-layer rows (gemm/ and layer/: every GEMM/conv layer of the MLP-BN and CNN-BN, three passes each) run and reach the summary table with a rate and a percentage of the FMA peak; about 1 iteration each (seconds).
# Usage: test_bench_rows.sh BUILD/ember-bench
set -euo pipefail
bench=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One thread: the rows' code paths are the same, and a loaded 2-core machine makes OpenMP barriers slow.
OMP_NUM_THREADS=1 "$bench" --benchmark_filter='^(peak/fma|gemm/(mlp|cnn)|layer/)' --benchmark_min_time=0.001 \
  --table="$tmp/table.md" >"$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt"; echo "FAIL: ember-bench exited with $?"; exit 1; }

fail=0
expect() {  # expect REGEX: one table row matches (skipped and failed rows are not in the table)
  grep -qE "$1" "$tmp/table.md" || { echo "FAIL: no table row matches: $1"; fail=1; }
}
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { grep -qw "$1" <<<"$flags"; }
if has avx2 && has fma; then
  isa="AVX2 FMA"
  has avx512f && isa="AVX-512 FMA"
  expect "^\| peak/fma \| .* GFLOP/s \| - \| $isa, 1 thread \|$"
  expect "^\| peak/fma_avx2 \| .* GFLOP/s \| - \| AVX2 FMA, 1 thread \|$"
  pct='[0-9.]+%'
else
  pct='-'  # no FMA peak: the rows still run, without a percentage
fi
for layer in mlp_fc1 mlp_fc2 mlp_fc3 cnn_conv1 cnn_conv2 cnn_fc; do
  for pass in forward backward_input backward_weight; do
    for kind in gemm layer; do
      expect "^\| $kind/${layer}_$pass \| .* GFLOP/s \| $pct \| peak/fma \|$"
    done
  done
done
rows=$(grep -cE '^\| (gemm|layer)/' "$tmp/table.md")
[[ $rows == 36 ]] || { echo "FAIL: $rows gemm/layer rows, expected 36"; fail=1; }
((fail == 0)) || { cat "$tmp/table.md"; exit 1; }
echo "test_bench_rows: ok ($rows layer rows, peak: ${isa:-none})"
