#!/usr/bin/env bash
# bench/run_queues.sh — Small ints per second through Queue and
# SimpleQueue from a forked producer (bench-operations.md, operation 5), for this
# library, raw framed pipes (with and without process-shared locks) and CPython
# 3.11, in one run: bench_queues and bench/cpython_queues.py alternated for N
# rounds (default 3; bench/alternate.sh), then the medians
# (bench/summarize_queues.py).  --keep DIR keeps every round's JSON there.
#   bench/run_queues.sh [--rounds N] [--keep DIR]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/alternate.sh"
alternate bench_queues bench/cpython_queues.py bench/summarize_queues.py "$@"
