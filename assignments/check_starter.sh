#!/usr/bin/env bash
# assignments/check_starter.sh BINARY FILTER MESSAGE
# The grader must fail the unmodified starter, and say what is missing: runs
# BINARY (the suite linked with a starter.cpp) on the grader's tests and passes
# only if they fail and the output names the missing piece (MESSAGE).
set -u
binary=$1 filter=$2 message=$3
# --gtest_fail_fast: the first failure is enough.  timeout: a starter can
# leave a test waiting forever (a child of the condition grader dies in the
# starter's wait(), and the parent waits for it to sleep); that is a failure
# too (exit 124), and the starter's message is printed by then.
output=$(timeout 30 "$binary" --gtest_filter="$filter" --gtest_fail_fast 2>&1)
status=$?
if [ "$status" -eq 0 ]; then
  echo "check_starter: the grader passed the unmodified starter ($filter)"
  exit 1
fi
if ! grep -qF -- "$message" <<<"$output"; then
  echo "$output" | tail -40
  echo "check_starter: the grader failed (exit $status) without saying \"$message\""
  exit 1
fi
echo "check_starter: the grader fails the starter (exit $status), saying:"
grep -F -- "$message" <<<"$output" | head -3
