#!/usr/bin/env bash
# bench/run_spawn.sh — operation 1 under the other start
# methods: start + join of a do-nothing child under spawn and forkserver, for
# this library and CPython 3.11, beside posix_spawn("/bin/true") and a raw
# fork(), side by side in one run.
#
#   bench/run_spawn.sh [--rounds N] [--keep DIR]
#
# Builds the release preset's bench_process (and the two small programs it
# spawns) if needed, then alternates the C++ program (its spawn, forkserver
# and raw benchmarks, repetitions interleaved at random) and
# bench/cpython_process.py (spawn and forkserver), N rounds (default 5; the
# order flips every round).  Prints the medians over the rounds, the ratios
# and the goals (bench/summarize_spawn.py).  --keep DIR keeps every round's
# JSON there.  Takes about 1 minute.
set -euo pipefail

rounds=5
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --rounds=*) rounds="${1#*=}"; shift ;;
    --keep) keep="$2"; shift 2 ;;
    --keep=*) keep="${1#*=}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_spawn.sh: unknown argument '$1'" >&2; exit 2 ;;
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
  echo "run_spawn.sh: building bench_process failed" >&2
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

# Raw fork for the forkserver goal, not its 8 MiB variant ("/" ends the name).
run_cpp() {
  "$bin" --benchmark_filter='^BM_(SpawnStartJoin|ForkserverStartJoin|RawPosixSpawn|RawForkWaitpid/)' \
    --benchmark_format=json >"$out/cpp-$1.json" 2>/dev/null
}
run_py() {
  "$python" bench/cpython_process.py --measure spawn,forkserver --warmup 2 >"$out/py-$1.json"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -srm)  $(nproc) CPUs  $("$python" -V 2>&1)" >&2
for ((k = 1; k <= rounds; k++)); do
  printf 'round %d/%d\r' "$k" "$rounds" >&2
  if ((k % 2)); then run_cpp "$k"; run_py "$k"; else run_py "$k"; run_cpp "$k"; fi
done
printf '%-20s\r' '' >&2

"$python" bench/summarize_spawn.py "$out"
