# bench/alternate.sh — sourced by run_connection.sh, run_synchronize.sh,
# run_queues.sh, run_pool.sh, run_managers.sh and report.sh: one C++ benchmark
# program and its CPython twin, alternated.
#
#   alternate TARGET PY_SCRIPT SUMMARIZER [--rounds N] [--keep DIR]
#             [--scale LIST [--py-scale LIST]]
#
# Builds the release preset's TARGET if needed (or runs $BENCH_<NAME>, e.g.
# BENCH_QUEUES for bench_queues, when set), then runs it and PY_SCRIPT one after
# the other for N rounds (default 3), swapping which goes first every round,
# because one run on a shared 2-core machine can be off by up to 2x.  Round k
# writes cpp-k.json and py-k.json; SUMMARIZER turns the directory into the
# table.  --keep DIR keeps the JSON there.  --scale LIST (sizes separated by
# commas) runs the scaling series instead: the program with --scale=LIST, the
# script with --scale LIST (or the --py-scale LIST, when CPython stops at
# smaller sizes), and bench/summarize_scale.py instead of SUMMARIZER.
# pin_to_one_vcpu "$@": run the calling script again under `taskset -c 0`
# (once: MP_BENCH_PINNED marks the pinned run).  For the benchmarks that time
# round trips between two processes: such a round trip costs twice as much or
# half as much depending on whether the kernel puts the two on one vCPU or on
# two, and it chooses anew for every batch, so unpinned runs disagree by up to
# 2.4x on the same line, raw lines included (bench/README.md, Managers and
# Connection).  MP_BENCH_NO_PIN=1 runs unpinned.
pin_to_one_vcpu() {
  if [[ -z "${MP_BENCH_NO_PIN:-}" && -z "${MP_BENCH_PINNED:-}" ]] && command -v taskset >/dev/null; then
    MP_BENCH_PINNED=1 exec taskset -c 0 "$0" "$@"
  fi
}

alternate() {
  local target=$1 script=$2 summarize=$3
  shift 3
  local rounds=3 keep="" scale="" py_scale=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --rounds) rounds="$2"; shift 2 ;;
      --keep) keep="$2"; shift 2 ;;
      --scale) scale="$2"; shift 2 ;;
      --py-scale) py_scale="$2"; shift 2 ;;
      *) echo "$(basename "$0"): unknown argument '$1'" >&2; exit 2 ;;
    esac
  done
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cd "$root"
  local python="${PYTHON:-python3}"
  local override="BENCH_${target#bench_}"
  override="${override^^}"
  local bin="${!override:-build/release/bench/$target}"
  if [[ -z "${!override:-}" ]]; then
    { [[ -f build/release/CMakeCache.txt ]] || cmake --preset release; } >/dev/null
    cmake --build --preset release --target "$target" -j 2 >/dev/null
  fi
  local cpp_args=() py_args=()
  if [[ -n "$scale" ]]; then
    cpp_args=("--scale=$scale")
    py_args=(--scale "${py_scale:-$scale}")
    summarize=bench/summarize_scale.py
  fi
  local out
  if [[ -n "$keep" ]]; then
    mkdir -p "$keep"
    out="$keep"
  else
    out="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $out is local
    trap "rm -rf '$out'" EXIT
  fi
  echo "$(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -srm)  $(nproc) CPUs  $("$python" -V 2>&1)" >&2
  local k
  for ((k = 1; k <= rounds; k++)); do
    printf 'round %d/%d\r' "$k" "$rounds" >&2
    if ((k % 2)); then
      "$bin" "${cpp_args[@]}" --benchmark_format=json >"$out/cpp-$k.json" 2>/dev/null
      "$python" "$script" "${py_args[@]}" >"$out/py-$k.json"
    else
      "$python" "$script" "${py_args[@]}" >"$out/py-$k.json"
      "$bin" "${cpp_args[@]}" --benchmark_format=json >"$out/cpp-$k.json" 2>/dev/null
    fi
  done
  "$python" "$summarize" "$out"
}
