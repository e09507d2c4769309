#!/usr/bin/env bash
# Fails when a source file includes a header from a layer above its own, or from a sibling folder of the
# same layer, or when a header above ops/ or an example includes kernels/ (docs/architecture.md, "Layers").
# Usage: check_layers.sh [ROOT] (default: the repository).
# Only quoted includes ("core/tensor.h") count; system headers (<...>) are not Ember's.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# The layer of a path: "rank folder". Folders of one rank are siblings and must not include each other.
# Inside kernels/, the device-generic tables sit below the emulator (the fake CUDA runtime), which sits
# below the two backends, which sit below the library wrappers.
layer() {
  case "$1" in
    core/*) echo "0 core" ;;
    kernels/cuda/lib/*) echo "1.3 kernels/cuda/lib" ;;
    kernels/cuda/emulator/*) echo "1.1 kernels/cuda/emulator" ;;
    kernels/cuda/*) echo "1.2 kernels/cuda" ;;
    kernels/cpu/*) echo "1.2 kernels/cpu" ;;
    kernels/*) echo "1.0 kernels" ;;
    ops/*) echo "2 ops" ;;
    data/*) echo "3 data" ;;
    nn/*) echo "3 nn" ;;
    optim/*) echo "4 optim" ;;
    distributed/*) echo "5 distributed" ;;
    examples/*) echo "6 examples" ;;
    *) echo "" ;;
  esac
}

violations=0
while IFS= read -r file; do
  read -r src_rank src_folder <<<"$(layer "$file")"
  while IFS= read -r inc; do
    target=$(layer "$inc")
    [[ -z $target ]] && continue  # not one of Ember's layers (a generated or third-party header)
    read -r inc_rank inc_folder <<<"$target"
    [[ $inc_folder == "$src_folder" ]] && continue
    # kernels/ is how ops are computed, not part of the user-facing API: headers above ops/ do not show
    # it, and the examples (the code users copy) use only the public API.
    if [[ ($file == *.h || $src_folder == examples) && ${src_rank%%.*} -gt 2 && $inc_rank == 1* ]]; then
      echo "$file includes \"$inc\": public headers above ops/ and examples/ must not use kernels/"
      violations=$((violations + 1))
      continue
    fi
    if awk -v a="$inc_rank" -v b="$src_rank" 'BEGIN { exit !(a >= b) }'; then
      echo "$file includes \"$inc\": $inc_folder (layer $inc_rank) is not below $src_folder (layer $src_rank)"
      violations=$((violations + 1))
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
done < <(find core kernels ops data nn optim distributed examples -type f \
           \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null | sort)

if ((violations > 0)); then
  echo "check_layers: $violations upward or sideways include(s); the layers are drawn in docs/architecture.md" >&2
  exit 1
fi
echo "check_layers: every include points down"
