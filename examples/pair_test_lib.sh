# examples/pair_test_lib.sh — sourced by the pair tests (connection_pair_test.sh,
# remote_manager_test.sh, sync_manager_test.sh): a program is a path, or
# "py:<script>" for a Python original; every run is bounded in time.

# run PROGRAM ARG...: run it in the foreground, for at most 20 s.
run() { if [[ $1 == py:* ]]; then timeout 20 python3 "${1#py:}" "${@:2}"; else timeout 20 "$@"; fi; }

# start_server PROGRAM SOCKET ARG...: start a server in the background on the
# unix socket SOCKET, set $spid to it (timeout, which passes SIGTERM on to the
# server), and wait up to 10 s for the socket to appear.
start_server() {
  local program=$1 sock=$2
  shift 2
  if [[ $program == py:* ]]; then
    timeout 20 python3 "${program#py:}" --address "$sock" "$@" &
  else
    timeout 20 "$program" --address "$sock" "$@" &
  fi
  spid=$!
  for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
  echo "no server socket at $sock" >&2
  return 1
}
