#!/usr/bin/env bash
# @file tests/scripts/test_torch2_venv.sh @brief ctest ember.scripts.torch2_venv: scripts/torch2_venv.sh over a fake base python whose venvs have a fake pip (no network, no download): creation, install, the ready marker only after torch imports, the fast path, repair, and its errors (no python3-venv, pip failure without network, a folder that is not a venv); takes about a second.
set -euo pipefail
SCRIPT=$(cd "$(dirname "$0")/../.." && pwd)/scripts/torch2_venv.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; fails=$((fails + 1)); fi
}
# run RC ARGS...: torch2_venv.sh ARGS must exit RC; its output is in $tmp/out
run() {
  local want=$1 rc=0
  shift
  BASE_PYTHON=$tmp/python3 bash "$SCRIPT" "$@" >"$tmp/out" 2>&1 || rc=$?
  check "torch2_venv.sh $* exits $want" test "$rc" -eq "$want" || sed 's/^/  | /' "$tmp/out"
}
printed() { grep -qE -- "$1" "$tmp/out"; }
calls() { grep -c -- "$1" "$tmp/calls" 2>/dev/null || true; }

# The fake base python: `-m venv [--clear] DIR` makes DIR/pyvenv.cfg and DIR/bin/python (FAKE_VENV=fail:
# Debian's venv without python3-venv: pyvenv.cfg and a python without pip, and the ensurepip error); `-c` with urlopen is the network probe (FAKE_NET=down
# fails it). The venv's python: `-m pip --version`, `-m pip install` (FAKE_PIP=fail fails it, else it
# "installs" torch), and the import check, which works once torch is installed. Every call is logged.
cat >"$tmp/python3" <<'FAKE'
#!/usr/bin/env bash
echo "base $*" >>"$FAKE_LOG"
case "$*" in
  "-m venv"*)
    dir=${*: -1}
    if [ "${FAKE_VENV:-ok}" = fail ]; then  # as Debian's venv without python3-venv: a python but no pip
      mkdir -p "$dir/bin"
      echo "home = /usr/bin" >"$dir/pyvenv.cfg"
      printf '#!/bin/sh\nexit 1\n' >"$dir/bin/python"
      chmod +x "$dir/bin/python"
      echo "The virtual environment was not created successfully because ensurepip is not available." >&2
      exit 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir/bin"
    echo "home = /usr/bin" >"$dir/pyvenv.cfg"
    cat >"$dir/bin/python" <<'VPY'
#!/usr/bin/env bash
venv=$(cd "$(dirname "$0")/.." && pwd)
echo "venv $*" >>"$FAKE_LOG"
case "$*" in
  "-m pip --version") echo "pip 23.0 (fake)" ;;
  "-m pip install"*)
    if [ "${FAKE_PIP:-ok}" = fail ]; then echo "ERROR: Could not find a version that satisfies the requirement torch" >&2; exit 1; fi
    touch "$venv/torch-installed" ;;
  "-c import torch"*) [ -f "$venv/torch-installed" ] && echo "2.99.0+fake" || exit 1 ;;
  *) exit 3 ;;
esac
VPY
    chmod +x "$dir/bin/python" ;;
  *urlopen*) [ "${FAKE_NET:-up}" = up ] ;;
  *) exit 3 ;;
esac
FAKE
chmod +x "$tmp/python3"
export FAKE_LOG=$tmp/calls
V=$tmp/cache/ember/venv-torch2

run 2
check "no VENV: usage" printed 'Usage: scripts/torch2_venv.sh VENV'
run 0 --help
check "--help says what it installs" printed 'pip install torch numpy'
check "--help stops at the code" sh -c '! grep -q "set -euo" "$1"' _ "$tmp/out"

# Without python3-venv: a clear error, nothing marked ready.
FAKE_VENV=fail run 1 "$V"
check "no python3-venv: names the package" printed 'needs the python3-venv package'
check "no python3-venv: no marker" test ! -e "$V/.ember-torch2-ready"

# pip fails without network: a clear error, no marker; the venv stays for the next run.
: >"$tmp/calls"
FAKE_PIP=fail FAKE_NET=down run 1 "$V"
check "pip failure offline: says no network" printed 'no network'
check "pip failure offline: says not marked ready" printed 'not marked ready'
check "pip failure offline: no marker" test ! -e "$V/.ember-torch2-ready"
check "the half-made venv from before was made again" test "$(calls 'base -m venv --clear')" -eq 1
FAKE_PIP=fail FAKE_NET=up run 1 "$V"
check "pip failure online: points at pip's messages" printed "see pip's messages"
FAKE_PIP=fail FAKE_NET=up run 1 "$V" --index-url https://mirror.invalid/simple
check "the probe tries the index of the pip arguments" grep -q 'base -c .*urlopen.* https://mirror.invalid/simple' "$tmp/calls"

# A working run: installs, then marks the venv ready with the version.
: >"$tmp/calls"
run 0 "$V" --index-url https://example.invalid/cpu
check "prints what it installs" printed 'installing torch numpy'
check "pip got the extra arguments" grep -q 'venv -m pip install torch numpy --index-url https://example.invalid/cpu' "$tmp/calls"
check "no new venv: the one there has pip" test "$(calls 'base -m venv')" -eq 0
check "marker written after the import works" grep -qx '2.99.0+fake' "$V/.ember-torch2-ready"
check "says ready" printed "ready: $V/bin/python \\(torch 2.99.0\\+fake\\)"

# Ready: no pip, no venv.
: >"$tmp/calls"
run 0 "$V"
check "fast path: says ready" printed 'is ready \(torch 2.99.0\+fake\)'
check "fast path: no pip install" test "$(calls 'pip install')" -eq 0

# A marker whose torch no longer imports: removed, torch installed again, marked again.
rm "$V/torch-installed"
run 0 "$V"
check "broken torch: repaired" printed 'repairing'
check "broken torch: installed again" test -f "$V/torch-installed"
check "broken torch: marked again" test -f "$V/.ember-torch2-ready"

# A folder that is not a venv is not touched.
mkdir -p "$tmp/other"
touch "$tmp/other/keep"
run 1 "$tmp/other"
check "not a venv: error" printed 'is not a venv'
check "not a venv: left alone" test -f "$tmp/other/keep"

if [ "$fails" -ne 0 ]; then
  echo "test_torch2_venv: $fails check(s) failed"
  exit 1
fi
echo "test_torch2_venv: all checks passed"
