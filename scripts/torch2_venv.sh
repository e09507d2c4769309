#!/usr/bin/env bash
# @file scripts/torch2_venv.sh @brief Makes (once) a venv with PyPI's PyTorch 2.x (torch, numpy), the second PyTorch peer of make bench-train; marks it ready only after torch imports.
# Usage: scripts/torch2_venv.sh VENV [PIP_ARGS...]
#
# Idempotent: with VENV/.ember-torch2-ready present and `import torch, numpy` working it only says so.
# Otherwise it creates the venv (python3 -m venv: Debian's python3-venv package), runs
# `VENV/bin/python -m pip install torch numpy PIP_ARGS` when the import fails (PyPI's default wheels with
# their CUDA libraries are about 5 GB; e.g. `--index-url https://download.pytorch.org/whl/cpu` fetches
# the CPU-only build), and writes the marker (the torch version) only once the import works: an
# interrupted or failed run leaves no venv marked ready, and the next run repairs it.
# BASE_PYTHON (default /usr/bin/python3) is the interpreter the venv is made from.
set -euo pipefail

say() { echo "torch2_venv: $*"; }
die() {
  echo "torch2_venv: error: $*" >&2
  exit 1
}

case "${1:-}" in
  -h | --help)
    awk 'NR >= 3 && /^#/ { sub(/^# ?/, ""); print; next } NR >= 3 { exit }' "$0"
    exit 0
    ;;
  "" | -*)
    echo "Usage: scripts/torch2_venv.sh VENV [PIP_ARGS...]" >&2
    exit 2
    ;;
esac
VENV=$1
shift
BASE_PYTHON=${BASE_PYTHON:-/usr/bin/python3}
PY=$VENV/bin/python
MARKER=$VENV/.ember-torch2-ready

torch_version() { "$PY" -c 'import torch, numpy; print(torch.__version__)' 2>/dev/null; }

if [ -f "$MARKER" ]; then
  if [ -x "$PY" ] && v=$(torch_version); then
    say "$VENV is ready (torch $v)"
    exit 0
  fi
  say "$MARKER is there but torch does not import in $PY: repairing the venv"
  rm -f "$MARKER"
fi

# A usable venv has its python and pip; anything less (python3 -m venv without python3-venv leaves a venv
# without pip, an interrupted run may leave less) is made again.
if ! { [ -x "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1; }; then
  if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ]; then
    die "$VENV exists and is not a venv (no pyvenv.cfg): remove it or choose another folder (TORCH2_VENV=...)"
  fi
  say "creating the venv $VENV ($BASE_PYTHON -m venv)"
  mkdir -p "$(dirname "$VENV")"
  if ! "$BASE_PYTHON" -m venv --clear "$VENV"; then
    die "$BASE_PYTHON -m venv $VENV failed: on Debian it needs the python3-venv package (make bench-train installs it; or apt-get install python3-venv)"
  fi
  "$PY" -m pip --version >/dev/null 2>&1 || die "the new venv $VENV has no pip (Debian: install python3-venv, then rerun)"
fi

if v=$(torch_version); then
  say "torch $v already imports in $PY"
else
  say "installing torch numpy from PyPI into $VENV: $PY -m pip install torch numpy $* (the default wheels with their CUDA libraries are about 5 GB)"
  if ! "$PY" -m pip install torch numpy "$@"; then
    index=${PIP_INDEX_URL:-https://pypi.org/simple/}
    prev=""
    for arg in "$@"; do  # the index PIP_ARGS name, if any
      case "$prev:$arg" in --index-url:* | -i:*) index=$arg ;; *:--index-url=*) index=${arg#--index-url=} ;; esac
      prev=$arg
    done
    if ! "$BASE_PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' "$index" >/dev/null 2>&1; then
      die "pip install torch numpy failed: no network ($index is unreachable). $VENV is not marked ready; rerun when online, or skip this peer with TORCH2=0"
    fi
    die "pip install torch numpy failed (see pip's messages above; disk space? the index?). $VENV is not marked ready; rerun when fixed, or skip this peer with TORCH2=0"
  fi
  v=$(torch_version) || die "pip install succeeded but 'import torch, numpy' still fails in $PY; $VENV is not marked ready"
fi
echo "$v" >"$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
say "ready: $PY (torch $v)"
