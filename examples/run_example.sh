#!/bin/sh
# run_example.sh COMMAND [ARGS...] — how ctest runs an example.  A test that
# matches its output with PASS_REGULAR_EXPRESSION ignores the exit status, so
# an example that printed the right lines and then crashed would pass.  This
# wrapper passes the output through unchanged and, when the example exits
# with a status other than 0 (or is killed by a signal: 128 + its number),
# ends it with a line that the test's FAIL_REGULAR_EXPRESSION matches
# (mp_example_test in CMakeLists.txt sets both).
"$@"
status=$?
if [ "$status" -ne 0 ]; then
  echo "run_example: exit status $status from $1"
fi
exit "$status"
