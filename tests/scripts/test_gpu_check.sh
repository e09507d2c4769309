#!/usr/bin/env bash
# @file tests/scripts/test_gpu_check.sh @brief ctest ember.scripts.gpu_check: scripts/gpu_check.sh's arguments and --help, a dry run with a fake nvidia-smi (2 GPUs) that skips the build, and a whole run over fake programs (stage statuses, summary.md); takes seconds.
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
# A CUDA toolkit without cuDNN and NCCL, which the Python wheels' folders provide (nvidia.cudnn, nvidia.nccl).
mkdir -p "$tmp/cuda/bin" "$tmp/cuda/include" "$tmp/py/nvidia/cudnn" "$tmp/py/nvidia/nccl"
printf '#!/bin/sh\necho "Cuda compilation tools, release 13.0, V13.0.88"\n' >"$tmp/cuda/bin/nvcc"
chmod +x "$tmp/cuda/bin/nvcc"
touch "$tmp/py/nvidia/cudnn/__init__.py" "$tmp/py/nvidia/nccl/__init__.py"
out=$tmp/out-dry
rc=0
PATH=$tmp/bin:$tmp/cuda/bin:$PATH PYTHONPATH=$tmp/py bash "$SCRIPT" --dry-run --skip deps,configure,build --build "$tmp/build" --tar "$tmp/check.tar.gz" \
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
for lib in cudnn nccl; do  # (unless the system has the library outside the toolkit)
  if ! ls /usr/lib/*/lib$lib.so* /usr/local/lib/lib$lib.so* >/dev/null 2>&1; then
    check "$lib from the wheel's folder" grep -qF "| $lib | $tmp/py/nvidia/$lib |" "$out/summary.md"
  fi
done
check "gpu-tests command" grep -q 'tests/ember_gpu_tests --durations no' "$out/logs/gpu-tests.log"
check "train command" grep -q 'ember-train --model cnn --device cuda' "$out/logs/train-cnn.log"
check "bench_train on the GPU" grep -q 'bench_train.py --device cuda' "$out/logs/bench-train.log"
check "racecheck on a test subset" grep -q 'compute-sanitizer --tool racecheck .*\\\[cuda\\\]' "$out/logs/racecheck.log"
check "2 GPUs: the NCCL test under ctest" grep -q '^\$ ctest .*nccl_multi' "$out/logs/nccl-multi.log"
check "--tar packs the folder" sh -c 'tar -tzf "$1" out-dry/summary.md >/dev/null' _ "$tmp/check.tar.gz"

# A whole run over fakes (cmake, the built programs, compute-sanitizer, python3 for bench_train.py and
# torch): the stages' statuses — a sanitizer that stops before the tests is "tool unavailable", one that
# finds errors fails the run — and the key numbers in summary.md.
REAL_PY=$(command -v python3)
fb=$tmp/fake-build
mkdir -p "$fb/tests" "$tmp/fakebin"
cp "$tmp/bin/nvidia-smi" "$tmp/fakebin/"
cat >"$tmp/fakebin/cmake" <<'FAKE'
#!/bin/sh
case "$1" in --version) echo "cmake version 0.0-fake" ;; --build) echo "[1/1] fake build" ;; *) echo "-- Ember: OpenBLAS /fake/libopenblas.so" ;; esac
FAKE
cat >"$tmp/fakebin/compute-sanitizer" <<'FAKE'
#!/bin/sh
case "$2" in
  memcheck) echo "All tests passed (12 assertions in 3 test cases)"; echo "========= ERROR SUMMARY: 0 errors" ;;
  racecheck) echo "========= Error: Device not supported"; exit 1 ;;
  synccheck) echo "test cases: 3 | 2 passed | 1 failed"; echo "========= ERROR SUMMARY: 1 error"; exit 99 ;;
esac
FAKE
cat >"$tmp/fakebin/python3" <<FAKE
#!/bin/sh
case "\$*" in
  *bench_train.py*) while [ \$# -gt 0 ]; do
                      [ "\$1" = --markdown ] && printf '| model | Ember / PyTorch |\n|---|---|\n| cnn-bn | 3.21x |\n' >"\$2"
                      [ "\$1" = --json ] && echo '{}' >"\$2"; shift; done ;;
  *torch.__version__*) echo "2.11.0+fake cuda 13.0 devices 2" ;;
  *device_count*) echo 2 ;;
  *"import nvidia"*) exit 1 ;;
  *) exec "$REAL_PY" "\$@" ;;
esac
FAKE
cat >"$fb/tests/ember_gpu_tests" <<'FAKE'
#!/bin/sh
echo "All tests passed (1234 assertions in 56 test cases)"
FAKE
cat >"$fb/ember-train" <<'FAKE'
#!/bin/sh
while [ $# -gt 0 ]; do
  [ "$1" = --summary ] && echo '{"samples_per_s": 12345.6, "test_accuracy": 0.8512, "final_loss": 0.41, "optimizer_steps": 300, "wall_s": 3.25}' >"$2"
  shift
done
FAKE
cat >"$fb/ember-bench-gpu" <<'FAKE'
#!/bin/sh
for a; do case "$a" in --table=*) printf '| benchmark | rate |\n|---|---:|\n| peak/copy | 3900 GB/s |\n| accumulate/fused/16777216 | 3500 GB/s |\n| accumulate/cublas_axpy/16777216 | 3000 GB/s |\n' >"${a#--table=}" ;; esac; done
FAKE
chmod +x "$tmp/fakebin/"* "$fb/ember-train" "$fb/ember-bench-gpu" "$fb/tests/ember_gpu_tests"
out=$tmp/out-fake
rc=0
PATH=$tmp/fakebin:$PATH bash "$SCRIPT" --skip deps --build "$fb" "$out" >"$tmp/fake.log" 2>&1 || rc=$?
check "a run with a failing stage exits 1" test "$rc" -eq 1 || sed 's/^/  | /' "$tmp/fake.log"
for s in configure build gpu-tests train-cnn train-mlp bench-gpu bench-train memcheck; do
  check "fake run: $s ok" grep -qE "^\| $s \| ok \|" "$out/summary.md"
done
check "fake run: racecheck tool unavailable" grep -qE '^\| racecheck \| tool unavailable \| [0-9]+ \| exit 1: .*Device not supported' "$out/summary.md"
check "fake run: synccheck failed with its errors" grep -qE '^\| synccheck \| failed \|.*ERROR SUMMARY: 1 error' "$out/summary.md"
check "fake run: nccl-multi skipped (not built)" grep -qE '^\| nccl-multi \| skipped \|' "$out/summary.md"
check "fake run: test count in the note" grep -qE '^\| gpu-tests \| ok \|.*56 test cases' "$out/summary.md"
check "fake run: training numbers" grep -qF '| cnn (micro 32 x accum 4) | 12346 | 0.8512 | 0.4100 | 300 | 3.2 |' "$out/summary.md"
check "fake run: Ember vs PyTorch table" grep -qF '| cnn-bn | 3.21x |' "$out/summary.md"
check "fake run: the fused rows of the GPU benchmark" grep -qF '| accumulate/fused/16777216 |' "$out/summary.md"
check "fake run: not the baseline rows" sh -c '! grep -qF cublas_axpy "$1"' _ "$out/summary.md"
check "fake run: FAILED line names the stage" grep -q 'FAILED: synccheck' "$tmp/fake.log"

# Without a GPU and without --dry-run: an error, no stage runs.
printf '#!/bin/sh\nexit 9\n' >"$tmp/bin/nvidia-smi"
expect_rc 1 'no GPU found' --skip deps,configure,build --build "$tmp/build" "$tmp/o2"

if [ "$fails" -ne 0 ]; then
  echo "test_gpu_check: $fails check(s) failed"
  exit 1
fi
echo "test_gpu_check: all checks passed"
