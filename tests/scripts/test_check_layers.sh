#!/usr/bin/env bash
# scripts/check_layers.sh: passes on the repository, and fails (naming the file and the include) on a
# tree where a lower layer includes a higher one, and where two sibling folders include each other.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
check="$repo/scripts/check_layers.sh"
bash "$check" "$repo"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plant() {  # plant FILE INCLUDE: a tree whose only source FILE includes INCLUDE
  rm -rf "$tmp/tree" && mkdir -p "$tmp/tree/$(dirname "$1")"
  printf '#pragma once\n#include "%s"\n#include <vector>\n' "$2" >"$tmp/tree/$1"
}
expect_fail() {  # expect_fail FILE INCLUDE
  plant "$1" "$2"
  if out=$(bash "$check" "$tmp/tree" 2>&1); then
    echo "FAIL: $1 including $2 passed the check"; exit 1
  fi
  grep -qF "$1 includes \"$2\"" <<<"$out" || { echo "FAIL: the message does not name $1 and $2: $out"; exit 1; }
}
expect_pass() {
  plant "$1" "$2"
  bash "$check" "$tmp/tree" >/dev/null || { echo "FAIL: $1 including $2 was refused"; exit 1; }
}
expect_fail core/tensor.h kernels/dispatch.h          # up one layer
expect_fail kernels/cuda/lib/nccl.h distributed/x.h   # up several
expect_fail nn/module.h data/dataloader.h             # sideways between siblings
expect_fail kernels/elementwise.h kernels/cuda/x.h    # a device-generic table seeing a backend
expect_fail kernels/cpu/a.cpp kernels/cuda/b.h        # one backend seeing the other
expect_fail optim/optimizer.h kernels/optimizer.h      # a public header showing kernels/
expect_pass optim/sgd.cpp kernels/optimizer.h
expect_fail examples/x/main.cpp kernels/transfer.h    # an example reaching past the public API
expect_pass optim/sgd.cpp nn/module.h
expect_pass kernels/cuda/conv.cu kernels/cuda/emulator/launch.h
expect_pass examples/x/main.cpp distributed/data_parallel.h
echo "test_check_layers: ok"
