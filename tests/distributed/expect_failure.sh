#!/bin/sh
# @file tests/distributed/expect_failure.sh @brief Runs a command that must fail: asserts a non-zero exit within MAX_SECONDS and that its output contains TEXT.
# usage: expect_failure.sh MAX_SECONDS TEXT command args...
max=$1; text=$2; shift 2
out=$(mktemp)
start=$(date +%s)
timeout -k 5 "$((max + 30))" "$@" >"$out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$out"
status=0
if [ "$rc" -eq 0 ]; then echo "expect_failure: the job exited 0 but should have failed"; status=1; fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "expect_failure: the job hung and was killed by timeout"; status=1; fi
if [ "$elapsed" -gt "$max" ]; then echo "expect_failure: took ${elapsed}s, more than ${max}s"; status=1; fi
if ! grep -qF -- "$text" "$out"; then echo "expect_failure: output lacks \"$text\""; status=1; fi
rm -f "$out"
[ "$status" -eq 0 ] && echo "expect_failure: ok (exit $rc after ${elapsed}s)"
exit "$status"
