#!/usr/bin/env bash
# examples/sync_manager_test.sh SERVER CLIENT — a SyncManager server on a unix
# socket in a private directory; a client with a wrong authkey must fail with
# AuthenticationError (exit 1); then, the server still serving, a client with
# the right key must print the expected lines, twice.  SERVER/CLIENT are
# programs, or "py:<script>" for the Python originals.  Exit 0 only if all of
# that held; what went wrong is printed.
set -euo pipefail
server=$1 client=$2
dir=$(mktemp -d)
spid=
trap 'if [ -n "$spid" ]; then kill $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
source "$(dirname "$0")/pair_test_lib.sh"
start_server "$server" "$dir/sock" --authkey "sync test"
expected="second acquire, not blocking: False
{'hello': 'world', 'n': 1}
['a', 1, 2]
acquire after release: True"
status=0
if run "$client" --address "$dir/sock" --authkey "wrong" > "$dir/wrong.out" 2> "$dir/wrong.err"; then
  echo "FAIL: a client with a wrong authkey was accepted"; status=1
elif ! grep -q '^AuthenticationError' "$dir/wrong.err"; then
  echo "FAIL: a wrong authkey did not give AuthenticationError:"; cat "$dir/wrong.err"; status=1
else
  echo "wrong authkey: $(head -n1 "$dir/wrong.err")"
fi
for attempt in 1 2; do
  out=$(run "$client" --address "$dir/sock" --authkey "sync test") || { echo "FAIL: client exited with $?"; status=1; }
  if [ "$out" != "$expected" ]; then
    printf 'FAIL: client %s printed:\n%s\nexpected:\n%s\n' "$attempt" "$out" "$expected"; status=1
  else
    echo "client $attempt:"; echo "$out"
  fi
done
kill -0 "$spid" 2>/dev/null || { echo "FAIL: the server is gone"; status=1; }
exit $status
