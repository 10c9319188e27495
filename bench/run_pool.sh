#!/usr/bin/env bash
# bench/run_pool.sh — Pool.map over 100 000 ints (default chunksize and 1000),
# apply_async round trips and imap_unordered over 10 000 items
# (bench-operations.md, operation 9), for this library, a raw pool of the same
# architecture and CPython 3.11, in one run: bench_pool and
# bench/cpython_pool.py alternated for N rounds (default 3; bench/alternate.sh),
# then the medians (bench/summarize_pool.py).  --keep DIR keeps the JSON there.
#   bench/run_pool.sh [--rounds N] [--keep DIR]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/alternate.sh"
alternate bench_pool bench/cpython_pool.py bench/summarize_pool.py "$@"
