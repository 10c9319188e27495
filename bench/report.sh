#!/usr/bin/env bash
# bench/report.sh — the whole benchmark report in one run (./dev bench): every
# benchmark of bench/ for this library, CPython 3.11's multiprocessing and the
# raw system calls, then the scaling series, then the table and the plots.
#
#   bench/report.sh [--quick] [--rounds N] [--out DIR] [--no-readme] [--no-scale]
#
# Runs, one after the other, each with its own script (which alternates the
# C++ program and the CPython script round by round): run.sh (fork start +
# join, 7 rounds), run_spawn.sh (5), run_connection.sh, run_synchronize.sh,
# run_queues.sh, run_pool.sh, run_managers.sh (3 each); then the scaling
# series with --scale (3 rounds each): children started and joined (1 to
# 1,000, one after another and all at once), Queue items (1 to 1,000,000),
# message sizes (64 B to 64 MiB), Pool.map items (10 to 10,000,000; CPython
# up to 1,000,000) and manager clients (1 to 16).  Every round's JSON and
# each script's own table go to DIR/raw/ (default bench/results/<UTC date>/),
# and bench/report.py writes DIR/report.md, report.json, rounds.csv,
# scale.csv and plots/*.svg (gnuplot), and puts the report into
# bench/README.md (not with --quick, --out or --no-readme).
#
# --quick: 1 round of everything and smaller series, into
# bench/results/<date>-quick/: a check of the whole pipeline, a few minutes.
# --rounds N: N rounds of everything.  A step that fails is reported, its
# directory renamed raw/<name>.failed, and the others still run; the exit
# status is then 1.  --no-scale: the table only, without the scaling series
# (on a machine where fork is dear they take longer than the rest).
set -euo pipefail

quick=0 rounds="" out="" readme=1 scale=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --rounds) rounds="$2"; shift 2 ;;
    --out) out="$2"; readme=0; shift 2 ;;
    --no-readme) readme=0; shift ;;
    --no-scale) scale=0; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "report.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
command -v gnuplot >/dev/null || { echo "report.sh: gnuplot is missing (./dev deps installs gnuplot-nox)" >&2; exit 1; }

if ((quick)); then
  readme=0
  out="${out:-bench/results/$(date -u +%Y-%m-%d)-quick}"
  r_fork=${rounds:-1} r_spawn=${rounds:-1} r_rest=${rounds:-1} r_scale=${rounds:-1}
  s_children=1,10,100 s_items=1,100,10000 s_sizes=64,16384,4194304 s_map=10,1000,100000 s_map_py=10,1000,100000
  s_clients=1,4
else
  out="${out:-bench/results/$(date -u +%Y-%m-%d)}"
  r_fork=${rounds:-7} r_spawn=${rounds:-5} r_rest=${rounds:-3} r_scale=${rounds:-3}
  s_children=1,10,100,1000 s_items=1,10,100,1000,10000,100000,1000000
  s_sizes=64,1024,16384,262144,4194304,67108864
  s_map=10,100,1000,10000,100000,1000000,10000000 s_map_py=10,100,1000,10000,100000,1000000
  s_clients=1,2,4,8,16
fi
rm -rf "$out/raw" "$out/plots"
mkdir -p "$out/raw"

# 1,000 children alive at once: the library's parent keeps two pipe ends per
# child, so lift the soft fd limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Build every benchmark program once, up front (the scripts then find them built).
{ [[ -f build/release/CMakeCache.txt ]] || cmake --preset release >/dev/null; }
cmake --build --preset release -j "$(nproc)" --target bench_process bench_connection bench_synchronize \
  bench_queues bench_pool bench_managers >/dev/null

start=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The code measured: the commit, and whether the tree differs from it (the
# results of earlier runs aside).
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- . ':!bench/results' 2>/dev/null || commit+=" (with changes)"
failed=() steps=()
# step NAME COMMAND...: run it, keep its rounds in raw/NAME and its table in raw/NAME.txt.
step() {
  local name=$1 t0=$SECONDS
  shift
  echo "== $name: $*" >&2
  if "$@" --keep "$out/raw/$name" >"$out/raw/$name.txt"; then
    cat "$out/raw/$name.txt"
  else
    echo "report.sh: $name failed" >&2
    failed+=("$name")
    rm -rf "$out/raw/$name.failed"
    mv "$out/raw/$name" "$out/raw/$name.failed" 2>/dev/null || true
  fi
  steps+=("\"$name\": $((SECONDS - t0))")
}
# The process series has no run script of its own: alternate it directly, in
# a shell of its own so that set -e stops it at a failure (step's `if` would
# turn that off in a function).
alternate_process() {
  bash -c 'set -euo pipefail; source bench/alternate.sh
           alternate bench_process bench/cpython_process.py bench/summarize_scale.py "$@"' alternate_process "$@"
}

step process bench/run.sh --rounds "$r_fork"
step spawn bench/run_spawn.sh --rounds "$r_spawn"
step connection bench/run_connection.sh --rounds "$r_rest"
step synchronize bench/run_synchronize.sh --rounds "$r_rest"
step queues bench/run_queues.sh --rounds "$r_rest"
step pool bench/run_pool.sh --rounds "$r_rest"
step managers bench/run_managers.sh --rounds "$r_rest"
if ((scale)); then
  step scale-process alternate_process --rounds "$r_scale" --scale "$s_children"
  step scale-queues bench/run_queues.sh --rounds "$r_scale" --scale "$s_items"
  step scale-connection bench/run_connection.sh --rounds "$r_scale" --scale "$s_sizes"
  step scale-pool bench/run_pool.sh --rounds "$r_scale" --scale "$s_map" --py-scale "$s_map_py"
  step scale-managers bench/run_managers.sh --rounds "$r_scale" --scale "$s_clients"
fi

args=("$0")
((quick)) && args+=(--quick)
((scale)) || args+=(--no-scale)
[[ -n "$rounds" ]] && args+=(--rounds "$rounds")
cat >"$out/meta.json" <<JSON
{"date": "$start", "command": "${args[*]}", "rounds": "fork $r_fork, spawn $r_spawn, the others $r_rest$( ((scale)) && echo ", scaling $r_scale")",
 "machine": "$(uname -srm), $(nproc) CPUs, $("$python" -V 2>&1), load average $load_before at the start",
 "load": ${load_before%% *}, "cpus": $(nproc),
 "commit": "$commit",
 "seconds": {$(IFS=,; echo "${steps[*]}")}, "failed": "${failed[*]}"}
JSON

report_args=("$out")
((readme)) && report_args+=(--readme bench/README.md)
"$python" bench/report.py "${report_args[@]}"
echo "report.sh: $out/report.md$( ((readme)) && echo ' and bench/README.md')" >&2
if ((${#failed[@]})); then
  echo "report.sh: failed: ${failed[*]}" >&2
  exit 1
fi
