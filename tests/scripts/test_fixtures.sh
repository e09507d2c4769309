#!/usr/bin/env bash
# @file tests/scripts/test_fixtures.sh @brief scripts/make_reference.py --check and scripts/make_gpt_fixture.py --check reproduce the committed PyTorch fixtures, and fails on a perturbed copy; skipped (77) where /usr/bin/python3 cannot import torch.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
if ! "$py" -c "import torch" >/dev/null 2>&1; then
  echo "SKIP: $py cannot import torch (python3-torch; make fixtures installs it)"
  exit 77
fi
gen="$repo/scripts/make_reference.py"
"$py" "$gen" --check
"$py" "$repo/scripts/make_gpt_fixture.py" --check  # the GPT fixtures (tests/fixtures/gpt)

# The check can fail: a copy with one reference weight moved by 1e-9 (above the 1e-12 bound) is rejected.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$repo"/tests/fixtures/accumulation/*.safetensors "$tmp"/
"$py" - "$repo/scripts" "$tmp/ragged.safetensors" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import make_reference as m
tensors, meta = m.read_safetensors(sys.argv[2])
tensors["final.0.bias"][0] += 1e-9
m.write_safetensors(sys.argv[2], list(tensors.items()), meta)
PY
if out=$("$py" "$gen" --check --out "$tmp" 2>&1); then
  echo "FAIL: --check accepted a perturbed fixture: $out"; exit 1
fi
grep -q "ragged.safetensors: final.0.bias differs" <<<"$out" || { echo "FAIL: the message does not name the tensor: $out"; exit 1; }
echo "ok: fixtures reproduced; a perturbed copy is rejected"
