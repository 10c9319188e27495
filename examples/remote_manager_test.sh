#!/usr/bin/env bash
# examples/remote_manager_test.sh SERVER CLIENT — run the docs' remote manager:
# the server on a unix socket in a private directory, a client with a wrong
# authkey (refused), a client that puts 'hello', one that gets it and prints it.
# SERVER/CLIENT are programs, or "py:<script>" for the Python originals.
set -euo pipefail
server=$1 client=$2
dir=$(mktemp -d)
trap 'kill $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; rm -rf "$dir"' EXIT
run() { if [[ $1 == py:* ]]; then timeout 20 python3 "${1#py:}" "${@:2}"; else timeout 20 "$@"; fi; }
# Started directly (not through run()), so that $spid is `timeout`, which
# passes the trap's SIGTERM on to the server.
if [[ $server == py:* ]]; then cmd=(python3 "${server#py:}"); else cmd=("$server"); fi
timeout 20 "${cmd[@]}" --address "$dir/sock" --authkey "remote test" &
spid=$!
for _ in $(seq 200); do [ -S "$dir/sock" ] && break; sleep 0.05; done
if run "$client" --address "$dir/sock" --authkey "wrong" 2>/dev/null; then echo "wrong key accepted"; fi
run "$client" --address "$dir/sock" --authkey "remote test"
run "$client" --address "$dir/sock" --authkey "remote test" --get
