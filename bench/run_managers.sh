#!/usr/bin/env bash
# bench/run_managers.sh — proxy calls on a SyncManager from a child process:
# d[k] = v, d[k], a Lock's acquire + release, list.append (bench-operations.md,
# operation 8), for this library, a raw framed request/reply over a unix socket
# and CPython 3.11, in one run: bench_managers and bench/cpython_managers.py
# alternated for N rounds (default 3; bench/alternate.sh), then the medians
# (bench/summarize_managers.py).  --keep DIR keeps the JSON there.
#   bench/run_managers.sh [--rounds N] [--keep DIR]
#
# The whole run is pinned to one vCPU (taskset -c 0): a round trip between two
# processes costs twice as much or half as much depending on whether the
# kernel puts them on one vCPU or on two, and it chooses anew for every
# batch, so unpinned runs disagree by up to 2.4x on the same line, raw lines
# included (bench/README.md).  MP_BENCH_NO_PIN=1 runs unpinned.
set -euo pipefail
if [ -z "${MP_BENCH_NO_PIN:-}" ] && [ -z "${MP_BENCH_PINNED:-}" ] && command -v taskset >/dev/null; then
  MP_BENCH_PINNED=1 exec taskset -c 0 "$0" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/alternate.sh"
alternate bench_managers bench/cpython_managers.py bench/summarize_managers.py "$@"
