#!/usr/bin/env bash
# examples/remote_manager_test.sh SERVER CLIENT — run the docs' remote manager:
# the server on a unix socket in a private directory, a client with a wrong
# authkey (refused), a client that puts 'hello', one that gets it and prints it.
# SERVER/CLIENT are programs, or "py:<script>" for the Python originals.
set -euo pipefail
server=$1 client=$2
dir=$(mktemp -d)
spid=
trap 'if [ -n "$spid" ]; then kill $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
source "$(dirname "$0")/pair_test_lib.sh"
start_server "$server" "$dir/sock" --authkey "remote test"
if run "$client" --address "$dir/sock" --authkey "wrong" 2>/dev/null; then echo "wrong key accepted"; fi
run "$client" --address "$dir/sock" --authkey "remote test"
run "$client" --address "$dir/sock" --authkey "remote test" --get
