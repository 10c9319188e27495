#!/usr/bin/env bash
# bench/run.sh — operation 1, process_start_join: this library, raw
# fork()/waitpid() and CPython 3.11, side by side in one run.
#
#   bench/run.sh [--rounds N] [--keep DIR]
#
# Builds the release preset's bench_process if needed, then alternates the C++
# program (library and raw fork, repetitions interleaved at random) and the
# CPython script, N rounds (default 7; the order C++/Python flips every round),
# because one run on a shared 2-core machine can be off by 2x.  Prints the
# medians over the rounds and the ratios (bench/summarize.py).  --keep DIR
# keeps every round's JSON there.  Takes about 20 s.
set -euo pipefail

rounds=7
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --rounds=*) rounds="${1#*=}"; shift ;;
    --keep) keep="$2"; shift 2 ;;
    --keep=*) keep="${1#*=}"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
bin="build/release/bench/bench_process"

# ---------------------------------------------------------------- build
build_log="$(mktemp)"
if ! { [[ -f build/release/CMakeCache.txt ]] || cmake --preset release; } >"$build_log" 2>&1 ||
   ! cmake --build --preset release --target bench_process -j 2 >>"$build_log" 2>&1; then
  cat "$build_log" >&2
  rm -f "$build_log"
  echo "run.sh: building bench_process failed" >&2
  exit 1
fi
rm -f "$build_log"

# ---------------------------------------------------------------- measure
if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  out="$keep"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

# Only the fork benchmarks: the spawn and forkserver ones are bench/run_spawn.sh's.
run_cpp() {
  "$bin" --benchmark_filter='^BM_(ProcessStartJoin|RawForkWaitpid)' --benchmark_format=json \
    >"$out/cpp-$1.json" 2>/dev/null
}
run_py() { "$python" bench/cpython_process.py >"$out/py-$1.json"; }

echo "$(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -srm)  $(nproc) CPUs  $("$python" -V 2>&1)" >&2
for ((k = 1; k <= rounds; k++)); do
  printf 'round %d/%d\r' "$k" "$rounds" >&2
  if ((k % 2)); then run_cpp "$k"; run_py "$k"; else run_py "$k"; run_cpp "$k"; fi
done
printf '%-20s\r' '' >&2

"$python" bench/summarize.py "$out"
