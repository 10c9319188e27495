#!/usr/bin/env bash
# bench/run_managers.sh — proxy calls on a SyncManager from a child process:
# d[k] = v, d[k], a Lock's acquire + release, list.append (bench-operations.md,
# operation 8), for this library, a raw framed request/reply over a unix socket
# and CPython 3.11, in one run: bench_managers and bench/cpython_managers.py
# alternated for N rounds (default 3; bench/alternate.sh), then the medians
# (bench/summarize_managers.py).  --keep DIR keeps the JSON there.
#   bench/run_managers.sh [--rounds N] [--keep DIR]
#
# The whole run is pinned to one vCPU (pin_to_one_vcpu in bench/alternate.sh
# says why); MP_BENCH_NO_PIN=1 runs unpinned.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/alternate.sh"
pin_to_one_vcpu "$@"
alternate bench_managers bench/cpython_managers.py bench/summarize_managers.py "$@"
