#!/usr/bin/env bash
# bench/run_connection.sh — connection latency, throughput and a
# dict round trip for this library, raw socketpair framing and CPython 3.11, in
# one run.  Builds the release preset's bench_connection if needed, alternates
# it with bench/cpython_connection.py for N rounds (default 3, the order flips
# every round), prints the medians (bench/summarize_connection.py).
#   bench/run_connection.sh [--rounds N]
set -euo pipefail
rounds=3
[[ "${1:-}" == --rounds ]] && rounds=$2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
bin="${BENCH_CONNECTION:-build/release/bench/bench_connection}"
if [[ -z "${BENCH_CONNECTION:-}" ]]; then
  { [[ -f build/release/CMakeCache.txt ]] || cmake --preset release; } >/dev/null
  cmake --build --preset release --target bench_connection -j 2 >/dev/null
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "$(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -srm)  $(nproc) CPUs  $("$python" -V 2>&1)" >&2
for ((k = 1; k <= rounds; k++)); do
  printf 'round %d/%d\r' "$k" "$rounds" >&2
  run_cpp() { "$bin" --benchmark_format=json >"$out/cpp-$k.json" 2>/dev/null; }
  run_py() { "$python" bench/cpython_connection.py >"$out/py-$k.json"; }
  if ((k % 2)); then run_cpp; run_py; else run_py; run_cpp; fi
done
"$python" bench/summarize_connection.py "$out"
