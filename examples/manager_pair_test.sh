#!/usr/bin/env bash
# examples/manager_pair_test.sh SERVER CLIENT EXPECTED RUN... — a manager
# server on a unix socket in a private directory and its clients:
#   * a client with a wrong authkey must exit 1 with AuthenticationError on
#     stderr, and the server must go on serving;
#   * then one client per RUN (its extra arguments, - for none) with the right
#     key, one after the other; all they print, together, must be EXPECTED.
# SERVER/CLIENT are programs, or "py:<script>" for the Python originals.
# Exits 0 only if all of that held, and says what went wrong otherwise.
set -euo pipefail
server=$1 client=$2 expected=$3
shift 3
dir=$(mktemp -d)
spid=
trap 'if [ -n "$spid" ]; then kill $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
source "$(dirname "$0")/pair_test_lib.sh"
start_server "$server" "$dir/sock" --authkey "pair test"
status=0
if run "$client" --address "$dir/sock" --authkey "wrong" > /dev/null 2> "$dir/wrong.err"; then
  echo "FAIL: a client with a wrong authkey was accepted"; status=1
elif ! grep -q '^AuthenticationError' "$dir/wrong.err"; then
  echo "FAIL: a wrong authkey did not give AuthenticationError:"; cat "$dir/wrong.err"; status=1
else
  echo "wrong authkey: $(head -n1 "$dir/wrong.err")"
fi
out=
for extra in "$@"; do
  [ "$extra" = - ] && extra=
  # $extra unquoted: none adds no argument, "--get" adds one.
  # shellcheck disable=SC2086
  if ! this=$(run "$client" --address "$dir/sock" --authkey "pair test" $extra); then
    echo "FAIL: client ${extra:-(no extra arguments)} exited with an error"; status=1
  fi
  if [ -n "$this" ]; then out+=$this$'\n'; fi  # a client that prints nothing adds no line
done
if [ "$out" != "$expected"$'\n' ]; then
  printf 'FAIL: the clients printed:\n%s\nexpected:\n%s\n' "$out" "$expected"; status=1
else
  printf 'the clients printed, as expected:\n%s' "$out"
fi
kill -0 "$spid" 2>/dev/null || { echo "FAIL: the server is gone"; status=1; }
exit $status
