#!/usr/bin/env bash
# bench/run_connection.sh — connection latency, throughput and a
# dict round trip for this library, raw socketpair framing and CPython 3.11, in
# one run: bench_connection and bench/cpython_connection.py alternated for N
# rounds (default 3; bench/alternate.sh), then the medians
# (bench/summarize_connection.py).  --keep DIR keeps every round's JSON there.
#   bench/run_connection.sh [--rounds N] [--keep DIR]
#
# The whole run is pinned to one vCPU, as run_managers.sh is (pin_to_one_vcpu
# in bench/alternate.sh says why); MP_BENCH_NO_PIN=1 runs unpinned.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/alternate.sh"
pin_to_one_vcpu "$@"
alternate bench_connection bench/cpython_connection.py bench/summarize_connection.py "$@"
