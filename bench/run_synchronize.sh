#!/usr/bin/env bash
# bench/run_synchronize.sh — an uncontended Lock and a counter two
# processes raise under a lock, for this library, raw semaphores and CPython 3.11, in
# one run.  Builds the release preset's bench_synchronize if needed, alternates
# it with bench/cpython_synchronize.py for N rounds (default 3, the order flips
# every round), prints the medians (bench/summarize_synchronize.py).  --keep DIR
# keeps every round's JSON there.
#   bench/run_synchronize.sh [--rounds N] [--keep DIR]
set -euo pipefail
rounds=3
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "run_synchronize.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
bin="${BENCH_SYNCHRONIZE:-build/release/bench/bench_synchronize}"
if [[ -z "${BENCH_SYNCHRONIZE:-}" ]]; then
  { [[ -f build/release/CMakeCache.txt ]] || cmake --preset release; } >/dev/null
  cmake --build --preset release --target bench_synchronize -j 2 >/dev/null
fi
if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  out="$keep"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
echo "$(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -srm)  $(nproc) CPUs  $("$python" -V 2>&1)" >&2
for ((k = 1; k <= rounds; k++)); do
  printf 'round %d/%d\r' "$k" "$rounds" >&2
  run_cpp() { "$bin" --benchmark_format=json >"$out/cpp-$k.json" 2>/dev/null; }
  run_py() { "$python" bench/cpython_synchronize.py >"$out/py-$k.json"; }
  if ((k % 2)); then run_cpp; run_py; else run_py; run_cpp; fi
done
"$python" bench/summarize_synchronize.py "$out"
