#!/usr/bin/env bash
# @file scripts/gpu_check.sh @brief One command for a GPU machine: builds Ember for the GPU found and runs the GPU tests (also under compute-sanitizer), ember-bench-gpu, short ember-train runs, Ember vs PyTorch on the GPU and the multi-GPU NCCL test; writes logs, JSON, tables and summary.md to OUTDIR.
#
# Usage:
#   scripts/gpu_check.sh --prepare [DIR]      on a Debian 12 machine with apt (this project's): downloads the
#                                             build's packages and Fashion-MNIST into DIR (default .gpu-deps,
#                                             git-ignored; < 56 MiB) for a machine that has no apt or network
#   scripts/gpu_check.sh [OPTIONS] OUTDIR     on the GPU machine: everything, in under 8 minutes on one H100/H200
#   scripts/gpu_check.sh --dry-run [OPTIONS] OUTDIR
#                                             without a GPU: unpacks the deps, configures and builds with them
#                                             (nvcc, sm_90 by default) and prints the GPU stages' commands
# docs/benchmarks.md, "On a GPU machine", says how a session with a lent GPU calls it and what it writes.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ARCH_DIR=x86_64-linux-gnu

usage() {
  cat <<'EOF'
Usage: scripts/gpu_check.sh [OPTIONS] OUTDIR
       scripts/gpu_check.sh --prepare [DIR]

Builds Ember's real CUDA backend for this machine's GPU and runs, each stage with its own log in OUTDIR
and a time limit: the GPU test suite (ember_gpu_tests), subsets of it under compute-sanitizer (memcheck,
racecheck, synccheck), ember-bench-gpu, short ember-train --device cuda runs (cnn, mlp),
scripts/bench_train.py --device cuda (Ember vs PyTorch on the same GPU) and, with two or more GPUs, the
NCCL test under mpirun. Writes OUTDIR/summary.md (machine, each stage's status and time, key numbers).
Exit status: 0 when every stage that ran passed, 1 when one failed, 2 on a usage error.

Options:
  --prepare [DIR]   fetch the build dependencies (Debian packages: OpenBLAS for OpenMP, Catch2, Google
                    Benchmark, nlohmann-json, CLI11, zlib; and dataset-fashion-mnist) with apt-get download,
                    unpack them with dpkg -x into a private prefix and pack it as DIR/deps.tar.gz
                    (default DIR: .gpu-deps in the repository, which git ignores). Needs apt; no GPU.
  --deps DIR        the prepared folder (default: .gpu-deps in the repository)
  --build DIR       build folder (default: build-gpu in the repository)
  --dry-run         run no GPU stage: unpack the deps, configure and build, and print each GPU stage's command
  --skip LIST       comma-separated stages not to run: deps, configure, build, gpu-tests, train-cnn, train-mlp,
                    bench-gpu, bench-train, nccl-multi, memcheck, racecheck, synccheck
  --arch N          CUDA architecture (default: nvidia-smi's compute capability, e.g. 90; dry run: 90)
  --jobs N          build jobs (default: nproc)
  --budget S        seconds for the whole run (default 470, dry run 3600); a stage that would start with under
                    20 s left is skipped, and each stage's limit is cut to what is left
  --werror          build with -Werror (EMBER_WERROR=ON; off by default: the GPU machine's compiler may warn
                    where this project's does not)
  --tar FILE        at the end, also pack OUTDIR into FILE (.tar.gz): the device tool returns at most 8 files
  -h, --help        this text
EOF
}

die_usage() {
  echo "gpu_check: error: $*" >&2
  echo "Try 'scripts/gpu_check.sh --help'." >&2
  exit 2
}

# The Debian packages the build needs beyond a compiler, CMake, ninja and CUDA (scripts/install-deps.sh
# less what the GPU build leaves out: Boost.Context is the emulator's, Open MPI the multi-rank tests'),
# the runtime libraries of OpenBLAS that a CUDA image may lack, and the training data.
DEPS_PACKAGES=(libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0 catch2 libbenchmark1debian
               libbenchmark-dev nlohmann-json3-dev libcli11-dev zlib1g zlib1g-dev dataset-fashion-mnist)
DEPS_LIMIT_MIB=56  # the device tool carries 64 MiB in all, the repository's files included

# ---------------------------------------------------------------------------------------------- --prepare
prepare() {
  local dir=$1
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || { echo "gpu_check --prepare: needs apt-get and dpkg" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  PREPARE_WORK=$(mktemp -d)
  trap 'rm -rf "$PREPARE_WORK"' EXIT
  local work=$PREPARE_WORK
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
  else
    sudo apt-get update -qq
  fi
  echo "gpu_check --prepare: downloading ${DEPS_PACKAGES[*]}"
  # As root, apt-get fetches as the _apt user, who cannot write to the private temporary folder.
  (cd "$work" && apt-get -o APT::Sandbox::User=root download -qq "${DEPS_PACKAGES[@]}")
  mkdir -p "$work/root"
  local deb
  for deb in "$work"/*.deb; do
    dpkg -x "$deb" "$work/root"
  done
  local r=$work/root
  # Merged /usr: zlib1g ships /lib/<arch>/libz.so.1, and zlib1g-dev's libz.so points at it relatively.
  if [ -d "$r/lib" ]; then
    mkdir -p "$r/usr/lib"
    cp -a "$r/lib/." "$r/usr/lib/"
    rm -rf "${r:?}/lib"
  fi
  # What neither the build nor the runs read: documentation, OpenBLAS's static library (58 MB) and separate
  # BLAS/LAPACK libraries (Ember links libopenblas), pkg-config files, debugger scripts. (The other static
  # libraries stay: the packages' CMake files name them.)
  rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/lintian" "$r/usr/share/Catch2" "$r/usr/share/pkgconfig"
  find "$r/usr/lib/$ARCH_DIR/openblas-openmp" \( -name '*.a' -o -name 'libblas.so*' -o -name 'liblapack.so*' \) -delete
  find "$r" -name pkgconfig -prune -exec rm -rf {} +
  rm -rf "$r/usr/lib/$ARCH_DIR/openblas-openmp/cmake" "$r/usr/lib/$ARCH_DIR/cmake/openblas"
  local f
  for f in "usr/lib/$ARCH_DIR/openblas-openmp/libopenblas.so" "usr/include/$ARCH_DIR/openblas-openmp/cblas.h" \
           "usr/include/catch2/catch.hpp" "usr/lib/$ARCH_DIR/cmake/benchmark/benchmarkConfig.cmake" \
           "usr/include/nlohmann/json.hpp" "usr/include/CLI/CLI.hpp" "usr/include/zlib.h" "usr/lib/$ARCH_DIR/libz.so" \
           "usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"; do
    [ -e "$r/$f" ] || { echo "gpu_check --prepare: $f missing after unpacking" >&2; exit 1; }
  done
  {
    echo "# Made by scripts/gpu_check.sh --prepare on $(date -u +%Y-%m-%dT%H:%M:%SZ) ($(. /etc/os-release && echo "$PRETTY_NAME"))"
    for deb in "$work"/*.deb; do dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb"; done
  } >"$work/MANIFEST"
  cp "$work/MANIFEST" "$r/MANIFEST"
  tar -czf "$work/deps.tar.gz" -C "$r" .
  mv "$work/deps.tar.gz" "$dir/deps.tar.gz"
  mv "$work/MANIFEST" "$dir/MANIFEST"
  local mib=$(( ($(du -sk "$dir" | cut -f1) + 1023) / 1024 ))
  echo "gpu_check --prepare: $dir/deps.tar.gz, $mib MiB (limit $DEPS_LIMIT_MIB), unpacked $(( $(du -sk "$r" | cut -f1) / 1024 )) MiB"
  if [ "$mib" -gt "$DEPS_LIMIT_MIB" ]; then
    echo "gpu_check --prepare: $dir is $mib MiB, over $DEPS_LIMIT_MIB MiB" >&2
    exit 1
  fi
}

# ------------------------------------------------------------------------------------------------ options
DEPS_DIR=$REPO/.gpu-deps
BUILD=$REPO/build-gpu
DRY=0
SKIP=","
ARCH=""
JOBS=$(nproc)
BUDGET=""
WERROR=OFF
TAR=""
OUTDIR=""
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --prepare)
      shift
      [ $# -le 1 ] || die_usage "--prepare takes at most one folder"
      prepare "${1:-$REPO/.gpu-deps}"
      exit 0 ;;
    --deps) [ $# -ge 2 ] || die_usage "--deps needs a folder"; DEPS_DIR=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || die_usage "--build needs a folder"; BUILD=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --skip) [ $# -ge 2 ] || die_usage "--skip needs a list"; SKIP="$SKIP$2,"; shift 2 ;;
    --arch) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+[af]?$ ]] || die_usage "--arch needs a CUDA architecture such as 90"
            ARCH=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || die_usage "--jobs needs a positive number"; JOBS=$2; shift 2 ;;
    --budget) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || die_usage "--budget needs seconds"; BUDGET=$2; shift 2 ;;
    --werror) WERROR=ON; shift ;;
    --tar) [ $# -ge 2 ] || die_usage "--tar needs a file"; TAR=$2; shift 2 ;;
    -*) die_usage "unknown option $1" ;;
    *) [ -z "$OUTDIR" ] || die_usage "one OUTDIR only (got $OUTDIR and $1)"; OUTDIR=$1; shift ;;
  esac
done
[ -n "$OUTDIR" ] || die_usage "missing OUTDIR"
# A dry run builds on a machine without a GPU, often a small one: an hour unless told otherwise.
[ -n "$BUDGET" ] || { [ "$DRY" = 1 ] && BUDGET=3600 || BUDGET=470; }
BUILD_LIMIT=330
[ "$DRY" = 0 ] || BUILD_LIMIT=$BUDGET
STAGES="deps configure build gpu-tests train-cnn train-mlp bench-gpu bench-train nccl-multi memcheck racecheck synccheck"
for s in ${SKIP//,/ }; do
  [[ " $STAGES " == *" $s "* ]] || die_usage "--skip: unknown stage '$s' (stages: $STAGES)"
done

mkdir -p "$OUTDIR/logs"
OUTDIR=$(cd "$OUTDIR" && pwd)
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
DEPS_ROOT=$BUILD/deps  # the unpacked prefix (not in .gpu-deps, which travels packed)
DATA=$DEPS_ROOT/usr/share/datasets/fashion-mnist
STAGES_TSV=$OUTDIR/stages.tsv  # name, status, seconds, note
: >"$STAGES_TSV"
DEADLINE=$(( SECONDS + BUDGET ))
MIN_STAGE=20
FAILED=0

log() { echo "gpu_check: $*"; }

# record NAME STATUS SECONDS NOTE
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$STAGES_TSV"
  log "stage $1: $2${4:+ ($4)} [$3 s]"
  case $2 in failed*) FAILED=1 ;; esac
}

skipped() { [[ $SKIP == *",$1,"* ]]; }

quote() { printf '%q ' "$@"; }

# run_stage NAME LIMIT_S [--gpu] CMD...: runs CMD with a time limit (LIMIT_S, cut to what is left of the
# budget), output to OUTDIR/logs/NAME.log. Sets STAGE_RC (0 ok, 124 time limit, else the command's). A
# --gpu stage only prints its command in a dry run. Returns 1 when the stage did not run.
STAGE_RC=0
run_stage() {
  local name=$1 limit=$2 gpu=0
  shift 2
  if [ "${1:-}" = "--gpu" ]; then gpu=1; shift; fi
  local logf=$OUTDIR/logs/$name.log
  STAGE_RC=0
  if skipped "$name"; then record "$name" skipped 0 "--skip"; return 1; fi
  if [ "$gpu" = 1 ] && [ "$DRY" = 1 ]; then
    echo "\$ $(quote "$@")" >"$logf"
    log "dry run, would run: $(quote "$@")"
    record "$name" dry-run 0 "not run: no GPU (command in logs/$name.log)"
    return 1
  fi
  local left=$(( DEADLINE - SECONDS ))
  if [ "$left" -lt "$MIN_STAGE" ]; then record "$name" skipped 0 "out of time budget (--budget $BUDGET)"; return 1; fi
  [ "$limit" -le "$left" ] || limit=$left
  echo "\$ $(quote "$@")  # limit ${limit} s" >"$logf"
  log "stage $name (limit ${limit} s): $(quote "$@")"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >>"$logf" 2>&1 || STAGE_RC=$?
  [ "$STAGE_RC" -ne 137 ] || STAGE_RC=124
  STAGE_SECONDS=$(( SECONDS - start ))
  return 0
}

# finish_stage NAME [NOTE]: records the stage from STAGE_RC.
finish_stage() {
  local name=$1 note=${2:-}
  if [ "$STAGE_RC" -eq 0 ]; then
    record "$name" ok "$STAGE_SECONDS" "$note"
  elif [ "$STAGE_RC" -eq 124 ]; then
    record "$name" "failed" "$STAGE_SECONDS" "time limit reached${note:+; $note}"
  elif [ "$STAGE_RC" -eq 77 ]; then  # ember_gpu_tests' "skipped" status
    record "$name" "failed" "$STAGE_SECONDS" "exit 77: the program saw no CUDA device${note:+; $note}"
  else
    record "$name" "failed" "$STAGE_SECONDS" "exit $STAGE_RC, see logs/$name.log${note:+; $note}"
  fi
}

# -------------------------------------------------------------------------------------------- the machine
MACHINE=$OUTDIR/machine.txt
GPU_COUNT=0
GPU_NAME="none"
probe() {
  local smi=""
  command -v nvidia-smi >/dev/null && smi=nvidia-smi
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    [ -r /etc/os-release ] && echo "os: $(. /etc/os-release && echo "${PRETTY_NAME:-?}")"
    if [ -n "$smi" ]; then
      echo "gpus: $(timeout 30 nvidia-smi --query-gpu=index,name,driver_version,compute_cap,memory.total --format=csv,noheader 2>&1 | paste -sd';')"
      echo "cuda driver: $(timeout 30 nvidia-smi 2>/dev/null | grep -o 'CUDA Version: *[0-9.]*' | head -1 | sed 's/.*: *//')"
    else
      echo "gpus: none (no nvidia-smi)"
    fi
    echo "nvcc: $( { "${NVCC:-nvcc}" --version 2>/dev/null || echo none; } | grep -o 'release [0-9.]*, V[0-9.]*' | head -1)"
    echo "c++: $( { c++ --version 2>/dev/null || echo none; } | head -1)"
    echo "cmake: $( { cmake --version 2>/dev/null || echo none; } | head -1)"
    echo "ninja: $(ninja --version 2>/dev/null || echo none)"
    echo "compute-sanitizer: $(command -v compute-sanitizer || echo none)"
    echo "mpirun: $(command -v mpirun || echo none)"
    echo "python3: $(python3 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo none)"
    [ "$DRY" = 1 ] && echo "torch: not probed in a dry run" ||
    echo "torch: $(timeout 60 python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())' 2>/dev/null || echo none)"
    echo "cublas: $(ls "$CUDA_HOME_DIR"/lib*/libcublas.so* "$CUDA_HOME_DIR"/targets/*/lib/libcublas.so* 2>/dev/null | head -1)"
    echo "cudnn: ${CUDNN_ROOT:-in the toolkit or the system}"
    echo "nccl: ${NCCL_ROOT:-in the toolkit or the system}"
  } >"$MACHINE" 2>&1
  if [ -n "$smi" ]; then
    GPU_COUNT=$(timeout 30 nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
    GPU_NAME=$(timeout 30 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
    [ -n "$ARCH" ] || ARCH=$(timeout 30 nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ' || true)
  fi
  if [ "${GPU_COUNT:-0}" -eq 0 ] && [ "$DRY" = 0 ]; then
    GPU_COUNT=$(timeout 60 python3 -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
  fi
  [ -n "$ARCH" ] || ARCH=90
}

# nvcc, and cuDNN / NCCL where the toolkit lacks them: the nvidia-cudnn-cu13 / nvidia-nccl-cu13 wheels.
find_cuda() {
  NVCC=$(command -v nvcc || true)
  [ -n "$NVCC" ] || { [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc; } || true
  local cuda_home=""
  [ -z "$NVCC" ] || cuda_home=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
  CUDA_HOME_DIR=$cuda_home
  # Already in the toolkit or the system (the header and an unversioned or versioned library)? Else the
  # wheel's folder (nvidia/cudnn, nvidia/nccl: include/ and lib/), or nothing (CMake then says what is missing).
  wheel_root() {  # wheel_root HEADER LIBNAME PYTHON_MODULE
    local h=0 l=0 f
    for f in "$cuda_home/include/$1" "/usr/include/$1" "/usr/local/include/$1"; do [ -e "$f" ] && h=1; done
    for f in "$cuda_home"/lib*/"$2".so* /usr/lib/$ARCH_DIR/"$2".so* /usr/local/lib/"$2".so*; do [ -e "$f" ] && l=1; done
    [ "$h$l" = 11 ] || timeout 60 python3 -c "import $3; print(list($3.__path__)[0])" 2>/dev/null || true
  }
  CUDNN_ROOT=$(wheel_root cudnn.h libcudnn nvidia.cudnn)
  NCCL_ROOT=$(wheel_root nccl.h libnccl nvidia.nccl)
  for lib in "$CUDNN_ROOT" "$NCCL_ROOT"; do
    [ -z "$lib" ] || export LD_LIBRARY_PATH=$lib/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  done
}

# -------------------------------------------------------------------------------------------------- stages
find_cuda
probe
log "machine: $GPU_COUNT GPU(s) ($GPU_NAME), CUDA architecture $ARCH, $(nproc) cores; output in $OUTDIR"
[ "$DRY" = 1 ] && log "dry run: no GPU stage runs"
if [ "$DRY" = 0 ] && [ "$GPU_COUNT" -eq 0 ]; then
  echo "gpu_check: error: no GPU found (nvidia-smi -L, torch.cuda.device_count()); use --dry-run on a machine without one" >&2
  exit 1
fi

# The private prefix: libraries for the build and the runs, the dataset for the runs.
export LD_LIBRARY_PATH=$DEPS_ROOT/usr/lib/$ARCH_DIR:$DEPS_ROOT/usr/lib/$ARCH_DIR/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ! skipped deps; then
  if [ ! -f "$DEPS_DIR/deps.tar.gz" ]; then
    echo "missing $DEPS_DIR/deps.tar.gz: run scripts/gpu_check.sh --prepare on a machine with apt" >"$OUTDIR/logs/deps.log"
    record deps failed 0 "no $DEPS_DIR/deps.tar.gz: run scripts/gpu_check.sh --prepare first"
  elif [ -f "$DEPS_ROOT/.stamp" ] && [ "$DEPS_ROOT/.stamp" -nt "$DEPS_DIR/deps.tar.gz" ]; then
    echo "up to date: $DEPS_ROOT" >"$OUTDIR/logs/deps.log"
    record deps ok 0 "already unpacked in $DEPS_ROOT"
  else
    rm -rf "$DEPS_ROOT"
    mkdir -p "$DEPS_ROOT"
    if run_stage deps 120 tar -xzf "$DEPS_DIR/deps.tar.gz" -C "$DEPS_ROOT"; then
      [ "$STAGE_RC" -ne 0 ] || touch "$DEPS_ROOT/.stamp"
      finish_stage deps "$(head -1 "$DEPS_ROOT/MANIFEST" 2>/dev/null | sed 's/^# //')"
    fi
  fi
else
  record deps skipped 0 "--skip"
fi

CMAKE_ARGS=(-S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON -DEMBER_EMULATOR=OFF
            -DEMBER_SANITIZE= -DEMBER_FUZZ=OFF -DEMBER_WERROR="$WERROR" -DCMAKE_CUDA_ARCHITECTURES="$ARCH"
            -DCMAKE_PREFIX_PATH="$DEPS_ROOT/usr"
            -DEMBER_OPENBLAS_OPENMP_DIR="$DEPS_ROOT/usr/lib/$ARCH_DIR/openblas-openmp"
            -DEMBER_OPENBLAS_OPENMP_INCLUDE_DIR="$DEPS_ROOT/usr/include/$ARCH_DIR/openblas-openmp"
            "-DCMAKE_CXX_FLAGS=-isystem $DEPS_ROOT/usr/include" "-DCMAKE_CUDA_FLAGS=-isystem $DEPS_ROOT/usr/include"
            -DEMBER_CUDNN_ROOT="$CUDNN_ROOT" -DEMBER_NCCL_ROOT="$NCCL_ROOT")
[ -z "$NVCC" ] || CMAKE_ARGS+=(-DCMAKE_CUDA_COMPILER="$NVCC")
TARGETS=(ember_gpu_tests ember-train ember-bench-gpu)
BUILT=0
if run_stage configure 180 cmake "${CMAKE_ARGS[@]}"; then
  finish_stage configure "CUDA architecture $ARCH; $(grep -o 'Ember: OpenBLAS .*' "$OUTDIR/logs/configure.log" | head -1)"
  if [ "$STAGE_RC" -eq 0 ]; then
    # With 2+ GPUs, the multi-rank NCCL test's program, where CMake found MPI.
    if [ "$GPU_COUNT" -ge 2 ] && ninja -C "$BUILD" -t targets all 2>/dev/null | grep -q '^ember_nccl_multi_gpu:'; then
      TARGETS+=(ember_nccl_multi_gpu)
    fi
    if run_stage build "$BUILD_LIMIT" cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"; then
      finish_stage build "${TARGETS[*]}, $JOBS jobs"
      [ "$STAGE_RC" -ne 0 ] || BUILT=1
    fi
  else
    record build skipped 0 "configure failed"
  fi
else
  skipped build && record build skipped 0 "--skip" || record build skipped 0 "not configured"
fi
if [ "$BUILT" = 0 ] && [ "$DRY" = 0 ]; then
  log "nothing built: the GPU stages are skipped"
fi

# gpu_stage NAME LIMIT CMD...: a stage that runs a built program on the GPU.
gpu_stage() {
  local name=$1
  if [ "$BUILT" = 0 ] && [ "$DRY" = 0 ]; then
    skipped "$name" && record "$name" skipped 0 "--skip" || record "$name" skipped 0 "not built"
    return 1
  fi
  run_stage "$1" "$2" --gpu "${@:3}"
}

GPU_TESTS=$BUILD/tests/ember_gpu_tests
if gpu_stage gpu-tests 150 "$GPU_TESTS" --durations no; then
  finish_stage gpu-tests "$(grep -E '^(All tests passed|test cases:)' "$OUTDIR/logs/gpu-tests.log" | tail -1)"
fi

# Short runs of both models on the GPU: one epoch, stopped after 300 optimizer steps (micro 32 x accum 4).
TRAIN_ARGS=(--device cuda --micro-batch 32 --accum 4 --epochs 1 --steps 300 --data "$DATA" --no-progress --log-every 50)
for model in cnn mlp; do
  if gpu_stage "train-$model" 60 "$BUILD/ember-train" --model "$model" "${TRAIN_ARGS[@]}" \
       --summary "$OUTDIR/train_$model.json" --metrics "$OUTDIR/train_$model.csv"; then
    finish_stage "train-$model"
  fi
done

if gpu_stage bench-gpu 90 "$BUILD/ember-bench-gpu" --benchmark_min_time=0.05 --table="$OUTDIR/bench_gpu.md" \
     --benchmark_out="$OUTDIR/bench_gpu.json" --benchmark_out_format=json; then
  finish_stage bench-gpu
fi

if gpu_stage bench-train 120 python3 "$REPO/scripts/bench_train.py" --device cuda --ember "$BUILD/ember-train" \
     --data "$DATA" --rounds 2 --steps 100 --json "$OUTDIR/bench_train.json" --markdown "$OUTDIR/bench_train.md"; then
  finish_stage bench-train
fi

# Two or more GPUs: NCCL across ranks (ember.gpu.nccl_multi, one GPU per rank under mpirun).
if [ "$GPU_COUNT" -lt 2 ]; then
  record nccl-multi skipped 0 "$GPU_COUNT GPU(s): needs 2 or more"
elif ! command -v mpirun >/dev/null && [ "$DRY" = 0 ]; then
  record nccl-multi skipped 0 "no mpirun on this machine (ember.gpu.nccl_multi runs under Open MPI)"
elif [ "$DRY" = 0 ] && [ ! -x "$BUILD/tests/distributed/ember_nccl_multi_gpu" ]; then
  record nccl-multi skipped 0 "ember_nccl_multi_gpu not built (CMake found no MPI)"
elif gpu_stage nccl-multi 120 ctest --test-dir "$BUILD" -R '^ember\.gpu\.nccl_multi$' --output-on-failure; then
  finish_stage nccl-multi
fi

# compute-sanitizer over subsets of the GPU suite, no cuDNN (slow under the tools): memcheck over the
# elementwise, reduction, optimizer and loss kernels (24 test cases); racecheck and synccheck over the
# kernels with shared memory and barriers (reductions, softmax, loss, batch norm, the tiled SGEMM: 15).
# A tool that cannot run here (e.g. "Device not supported" under gVisor) is "tool unavailable", not a failure.
SANITIZER=$(command -v compute-sanitizer || true)
[ -n "$SANITIZER" ] || { [ -n "$NVCC" ] && [ -x "$(dirname "$NVCC")/compute-sanitizer" ] && SANITIZER=$(dirname "$NVCC")/compute-sanitizer; } || true
MEMCHECK_TESTS="[cuda][accumulate],[cuda][elementwise],[cuda][reduce],[cuda][optim],[optim][cuda],[cuda][loss]"
SHARED_TESTS="[cuda][reduce],[cuda][softmax],[cuda][loss],[cuda][bn],[nn][bn][cuda],*tiled SGEMM*"
for tool in memcheck racecheck synccheck; do
  tests=$SHARED_TESTS
  [ "$tool" != memcheck ] || tests=$MEMCHECK_TESTS
  if [ -z "$SANITIZER" ] && [ "$DRY" = 0 ]; then
    skipped "$tool" && record "$tool" skipped 0 "--skip" || record "$tool" "tool unavailable" 0 "compute-sanitizer not found"
    continue
  fi
  gpu_stage "$tool" 45 "${SANITIZER:-compute-sanitizer}" --tool "$tool" --error-exitcode 99 --print-limit 20 \
    "$GPU_TESTS" --durations no "$tests" || continue
  logf=$OUTDIR/logs/$tool.log
  tests_ran=$(grep -E '^(All tests passed|test cases:)' "$logf" | tail -1 || true)
  errors=$(grep -oE 'ERROR SUMMARY: [0-9]+ errors?' "$logf" | tail -1 || true)
  if [ "$STAGE_RC" -eq 0 ]; then
    record "$tool" ok "$STAGE_SECONDS" "$tests_ran; ${errors:-no error summary}"
  elif [ "$STAGE_RC" -eq 124 ]; then
    record "$tool" failed "$STAGE_SECONDS" "time limit reached${tests_ran:+; $tests_ran}"
  elif grep -q 'No test cases matched' "$logf"; then
    record "$tool" failed "$STAGE_SECONDS" "the test subset matched no test case"
  elif [ -z "$tests_ran" ]; then
    # The tool stopped before the tests reported (e.g. "Device not supported" under gVisor).
    record "$tool" "tool unavailable" "$STAGE_SECONDS" "exit $STAGE_RC: $(tail -n +2 "$logf" | grep -m1 -iE 'error|not supported' | cut -c1-120)"
  else
    record "$tool" failed "$STAGE_SECONDS" "exit $STAGE_RC; ${errors:-test failures}; $tests_ran"
  fi
done

# ----------------------------------------------------------------------------------------------- summary
json_get() {  # json_get FILE EXPR: a Python expression over `j`, the file's JSON; empty when unavailable
  [ -f "$1" ] || return 0
  python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null || true
}

{
  echo "# Ember GPU check"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $SECONDS s in all$([ "$DRY" = 1 ] && echo ", **dry run** (no GPU stage ran)"), \`scripts/gpu_check.sh\` at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (modified)')."
  echo
  echo "## Machine"
  echo
  echo "| | |"
  echo "|---|---|"
  while IFS= read -r line; do
    echo "| ${line%%: *} | ${line#*: } |"
  done <"$MACHINE"
  echo
  echo "## Stages"
  echo
  echo "| stage | status | seconds | note |"
  echo "|---|---|---:|---|"
  while IFS=$'\t' read -r name status secs note; do
    echo "| $name | $status | $secs | ${note//|/\\|} |"
  done <"$STAGES_TSV"
  echo
  echo "Logs: \`logs/STAGE.log\` (the first line of each is its command)."
  echo
  echo "## Key numbers"
  echo
  found=0
  for model in cnn mlp; do
    f=$OUTDIR/train_$model.json
    if [ -f "$f" ]; then
      [ "$found" = 1 ] || { echo "| ember-train --device cuda | samples/s | test accuracy | final loss | steps | wall s |"; echo "|---|---:|---:|---:|---:|---:|"; }
      found=1
      echo "| $model (micro 32 x accum 4) | $(json_get "$f" '"%.0f" % j["samples_per_s"]') | $(json_get "$f" '"%.4f" % j["test_accuracy"]') | $(json_get "$f" '"%.4f" % j["final_loss"]') | $(json_get "$f" 'j["optimizer_steps"]') | $(json_get "$f" '"%.1f" % j["wall_s"]') |"
    fi
  done
  [ "$found" = 0 ] || echo
  if [ -f "$OUTDIR/bench_train.md" ]; then
    echo "Ember vs PyTorch on the GPU (\`bench_train.md\`, \`bench_train.json\`):"
    echo
    cat "$OUTDIR/bench_train.md"
    echo
    found=1
  fi
  if [ -f "$OUTDIR/bench_gpu.md" ]; then
    echo "ember-bench-gpu (rows for the peak and Ember's kernels; all rows in \`bench_gpu.md\`):"
    echo
    head -2 "$OUTDIR/bench_gpu.md"
    grep -E '^\| (peak/|[^|]*/(fused|ember|multi_tensor|tiled)[/ ])' "$OUTDIR/bench_gpu.md" | head -16 || true
    echo
    found=1
  fi
  [ "$found" = 1 ] || echo "(none: no GPU stage produced numbers)"
} >"$OUTDIR/summary.md"

echo
cat "$OUTDIR/summary.md"
if [ -n "$TAR" ]; then
  tar -czf "$TAR" -C "$(dirname "$OUTDIR")" "$(basename "$OUTDIR")"
  log "packed $OUTDIR into $TAR"
fi
if [ "$FAILED" = 1 ]; then
  log "FAILED: $(awk -F'\t' '$2 ~ /^failed/ {printf "%s ", $1}' "$STAGES_TSV")(summary: $OUTDIR/summary.md)"
  exit 1
fi
log "done: $OUTDIR/summary.md"
