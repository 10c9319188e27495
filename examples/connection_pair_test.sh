#!/usr/bin/env bash
# examples/connection_pair_test.sh LISTENER CLIENT — run a listener and a client
# of the docs' example over a unix socket in a private directory and print the
# client's output.  LISTENER/CLIENT are programs, or "py:<script>" for the
# Python originals.  Everything is bounded in time; the directory is removed.
set -euo pipefail
listener=$1 client=$2
dir=$(mktemp -d)
trap 'kill $lpid 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$(dirname "$0")/pair_test_lib.sh"
run "$listener" --address "$dir/sock" --authkey "pair test" > "$dir/listener.out" &
lpid=$!
for _ in $(seq 200); do [ -S "$dir/sock" ] && break; sleep 0.05; done
run "$client" --address "$dir/sock" --authkey "pair test"
wait $lpid
cat "$dir/listener.out"
