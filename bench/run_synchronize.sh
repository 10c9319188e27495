#!/usr/bin/env bash
# bench/run_synchronize.sh — an uncontended Lock and a counter two
# processes raise under a lock, for this library, raw semaphores and CPython 3.11, in
# one run: bench_synchronize and bench/cpython_synchronize.py alternated for N
# rounds (default 3; bench/alternate.sh), then the medians
# (bench/summarize_synchronize.py).  --keep DIR keeps every round's JSON there.
#   bench/run_synchronize.sh [--rounds N] [--keep DIR]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/alternate.sh"
alternate bench_synchronize bench/cpython_synchronize.py bench/summarize_synchronize.py "$@"
