#!/usr/bin/env bash
# @file tests/scripts/test_gpu_check.sh @brief ctest ember.scripts.gpu_check: scripts/gpu_check.sh's arguments, --help, and a dry run with a fake nvidia-smi (2 GPUs) that skips the slow stages; takes seconds.
set -euo pipefail
SCRIPT=$(cd "$(dirname "$0")/../.." && pwd)/scripts/gpu_check.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; fails=$((fails + 1)); fi
}
# expect_rc RC PATTERN ARGS...: gpu_check.sh ARGS exits RC and prints PATTERN (grep -E)
expect_rc() {
  local want=$1 pattern=$2 rc=0
  shift 2
  bash "$SCRIPT" "$@" >"$tmp/out" 2>&1 || rc=$?
  check "gpu_check.sh $* exits $want" test "$rc" -eq "$want"
  check "gpu_check.sh $* prints /$pattern/" grep -qE -- "$pattern" "$tmp/out"
}

expect_rc 0 'Usage: scripts/gpu_check.sh \[OPTIONS\] OUTDIR' --help
expect_rc 2 'missing OUTDIR' --dry-run
expect_rc 2 'unknown option --bogus' --bogus "$tmp/o"
expect_rc 2 "unknown stage 'nope'" --skip nope "$tmp/o"
expect_rc 2 'needs a CUDA architecture' --arch sm90 "$tmp/o"
expect_rc 2 'one OUTDIR only' "$tmp/a" "$tmp/b"

# A fake nvidia-smi: two H200s of compute capability 9.0.
mkdir -p "$tmp/bin"
cat >"$tmp/bin/nvidia-smi" <<'SMI'
#!/bin/sh
case "$*" in
  -L) printf 'GPU 0: NVIDIA H200 (UUID: GPU-0)\nGPU 1: NVIDIA H200 (UUID: GPU-1)\n' ;;
  *compute_cap*memory*) printf '0, NVIDIA H200, 580.00, 9.0, 143771 MiB\n1, NVIDIA H200, 580.00, 9.0, 143771 MiB\n' ;;
  *compute_cap*) printf '9.0\n9.0\n' ;;
  *name*) printf 'NVIDIA H200\nNVIDIA H200\n' ;;
  *) printf '| NVIDIA-SMI 580.00    Driver Version: 580.00    CUDA Version: 13.0 |\n' ;;
esac
SMI
chmod +x "$tmp/bin/nvidia-smi"
out=$tmp/out-dry
rc=0
PATH=$tmp/bin:$PATH bash "$SCRIPT" --dry-run --skip deps,configure,build --build "$tmp/build" --tar "$tmp/check.tar.gz" \
  "$out" >"$tmp/dry.log" 2>&1 || rc=$?
check "dry run exits 0" test "$rc" -eq 0 || sed 's/^/  | /' "$tmp/dry.log"
check "architecture 90 from nvidia-smi" grep -q 'CUDA architecture 90' "$tmp/dry.log"
check "summary names the GPUs" grep -q '| gpus | 0, NVIDIA H200, 580.00, 9.0' "$out/summary.md"
check "summary has the CUDA version" grep -q '| cuda driver | 13.0 |' "$out/summary.md"
for s in deps configure build; do
  check "stage $s skipped" grep -qE "^\| $s \| skipped \|" "$out/summary.md"
done
for s in gpu-tests train-cnn train-mlp bench-gpu bench-train nccl-multi memcheck racecheck synccheck; do
  check "stage $s listed as dry-run" grep -qE "^\| $s \| dry-run \|" "$out/summary.md"
done
check "gpu-tests command" grep -q 'tests/ember_gpu_tests --durations no' "$out/logs/gpu-tests.log"
check "train command" grep -q 'ember-train --model cnn --device cuda' "$out/logs/train-cnn.log"
check "bench_train on the GPU" grep -q 'bench_train.py --device cuda' "$out/logs/bench-train.log"
check "racecheck on a test subset" grep -q 'compute-sanitizer --tool racecheck .*\\\[cuda\\\]' "$out/logs/racecheck.log"
check "2 GPUs: the NCCL test under ctest" grep -q '^\$ ctest .*nccl_multi' "$out/logs/nccl-multi.log"
check "--tar packs the folder" sh -c 'tar -tzf "$1" out-dry/summary.md >/dev/null' _ "$tmp/check.tar.gz"

# Without a GPU and without --dry-run: an error, no stage runs.
printf '#!/bin/sh\nexit 9\n' >"$tmp/bin/nvidia-smi"
expect_rc 1 'no GPU found' --skip deps,configure,build --build "$tmp/build" "$tmp/o2"

if [ "$fails" -ne 0 ]; then
  echo "test_gpu_check: $fails check(s) failed"
  exit 1
fi
echo "test_gpu_check: all checks passed"
