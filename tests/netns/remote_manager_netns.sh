#!/usr/bin/env bash
# tests/netns/remote_manager_netns.sh NETNS_MANAGER — a manager served in one
# network namespace and used from another, joined by a veth pair: two
# "machines" with nothing routed outside (each namespace has its loopback and
# its end of the pair, no default route).  The client checks that a wrong
# authkey is refused and a dict round trip (tests/netns/netns_manager.cpp).
#
# Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2, and a kernel that
# lets this process make namespaces and veth devices; when any of that is
# missing it says why and exits 77, which ctest reports as skipped.
set -u
program=$1
skip() { echo "SKIPPED: $*"; exit 77; }

[[ $(id -u) == 0 ]] || skip "not root: making network namespaces needs CAP_SYS_ADMIN"
command -v ip >/dev/null || skip "no 'ip' command (iproute2)"

srv=mp-srv-$$ cli=mp-cli-$$ spid=""
cleanup() {
  if [[ -n $spid ]]; then kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; fi
  # Deleting a namespace destroys the veth end in it, and the pair with it.
  ip netns del "$srv" 2>/dev/null
  ip netns del "$cli" 2>/dev/null
}
trap cleanup EXIT

err=$(ip netns add "$srv" 2>&1) || skip "ip netns add failed: $err"
err=$(ip netns add "$cli" 2>&1) || skip "ip netns add failed: $err"
# The pair is made inside the server's namespace with its peer put straight
# into the client's: the host's namespace never holds either end.
err=$(ip -n "$srv" link add vs type veth peer name vc netns "$cli" 2>&1) ||
  skip "cannot make a veth pair: $err"
err=$( { ip -n "$srv" addr add 10.253.0.1/30 dev vs &&
         ip -n "$cli" addr add 10.253.0.2/30 dev vc &&
         ip -n "$srv" link set lo up && ip -n "$srv" link set vs up &&
         ip -n "$cli" link set lo up && ip -n "$cli" link set vc up; } 2>&1) ||
  skip "cannot configure the veth pair: $err"
err=$(ip netns exec "$cli" true 2>&1) || skip "ip netns exec failed: $err"

# Nothing routed outside: no default route in either namespace.
for ns in "$srv" "$cli"; do
  if ip -n "$ns" route show | grep -q '^default'; then
    echo "FAILED: namespace $ns has a default route"
    exit 1
  fi
done

ip netns exec "$srv" timeout 60 "$program" serve 10.253.0.1:50000 "netns key" &
spid=$!
ip netns exec "$cli" timeout 60 "$program" client 10.253.0.1:50000 "netns key"
rc=$?
if [[ $rc != 0 ]]; then
  echo "FAILED: the client exited $rc"
  exit 1
fi
wait "$spid"
src=$?
spid=""
if [[ $src != 0 ]]; then
  echo "FAILED: the server exited $src"
  exit 1
fi
echo "server in $srv at 10.253.0.1:50000, client in $cli: passed"
