#!/usr/bin/env bash
# bench/run_queues.sh — issue 9 item 8: small ints per second through Queue and
# SimpleQueue from a forked producer (bench-operations.md, operation 5), for this
# library, raw framed pipes (with and without process-shared locks) and CPython
# 3.11, in one run.  Builds the release preset's bench_queues if needed,
# alternates it with bench/cpython_queues.py for N rounds (default 3, the order
# flips every round), prints the medians (bench/summarize_queues.py).
#   bench/run_queues.sh [--rounds N]
set -euo pipefail
rounds=3
[[ "${1:-}" == --rounds ]] && rounds=$2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
bin="${BENCH_QUEUES:-build/release/bench/bench_queues}"
if [[ -z "${BENCH_QUEUES:-}" ]]; then
  { [[ -f build/release/CMakeCache.txt ]] || cmake --preset release; } >/dev/null
  cmake --build --preset release --target bench_queues -j 2 >/dev/null
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "$(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -srm)  $(nproc) CPUs  $("$python" -V 2>&1)" >&2
for ((k = 1; k <= rounds; k++)); do
  printf 'round %d/%d\r' "$k" "$rounds" >&2
  run_cpp() { "$bin" --benchmark_format=json >"$out/cpp-$k.json" 2>/dev/null; }
  run_py() { "$python" bench/cpython_queues.py >"$out/py-$k.json"; }
  if ((k % 2)); then run_cpp; run_py; else run_py; run_cpp; fi
done
"$python" bench/summarize_queues.py "$out"
