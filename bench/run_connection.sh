#!/usr/bin/env bash
# bench/run_connection.sh — connection latency, throughput and a
# dict round trip for this library, raw socketpair framing and CPython 3.11, in
# one run: bench_connection and bench/cpython_connection.py alternated for N
# rounds (default 3; bench/alternate.sh), then the medians
# (bench/summarize_connection.py).  --keep DIR keeps every round's JSON there.
#   bench/run_connection.sh [--rounds N] [--keep DIR]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/alternate.sh"
alternate bench_connection bench/cpython_connection.py bench/summarize_connection.py "$@"
