"""bench/summarize_spawn.py -- the table that bench/run_spawn.sh prints.

Usage: python3 bench/summarize_spawn.py DIR
DIR holds, per round k, cpp-<k>.json (bench_process --benchmark_format=json)
and py-<k>.json (cpython_process.py --measure spawn,forkserver).  Each file
gives one value per measurement for its round (the median over that run's
repetitions); each cell is the median over the rounds, and the ratios are
ratios of those medians.  The "by round" lines give library÷reference
computed within each round (the two ran interleaved in one process, so
that is the least noisy ratio here).
"""
import json
import pathlib
import statistics
import sys

from rounds import print_goals
from summarize import cpp_values, py_values

# name in this table -> (source, name in that source's JSON)
SERIES = {
    'library spawn': ('cpp', 'BM_SpawnStartJoin'),
    'library forkserver': ('cpp', 'BM_ForkserverStartJoin'),
    'posix_spawn /bin/true': ('cpp', 'BM_RawPosixSpawnTrue'),
    'raw fork': ('cpp', 'BM_RawForkWaitpid'),
    'CPython spawn': ('py', 'process_start_join/spawn'),
    'CPython forkserver': ('py', 'process_start_join/forkserver'),
    # what the spawn time is made of
    'library spawn, small child program': ('cpp', 'BM_SpawnStartJoin_SmallExe'),
    'posix_spawn bench_process, exits at once': ('cpp', 'BM_RawPosixSpawnSelf'),
    'posix_spawn bench_spawn_child, exits at once': ('cpp', 'BM_RawPosixSpawnSmallExe'),
    'posix_spawn empty C++ main': ('cpp', 'BM_RawPosixSpawnEmptyMain'),
}

# (row, library series, reference series, CPython series); the goals are
# bench/goals.tsv's, printed under the table.
# Two spawn rows: the child is a program run again, so its own start counts.
# "spawn, small child" spawns bench_spawn_child (main() = freeze_support(),
# C++ runtime linked statically): a lean program, as /bin/true is.  "spawn,
# bench_process" spawns the benchmark program itself, which loads Google
# Benchmark and libstdc++ as shared libraries (Debian ships no static
# libbenchmark): its exec alone is the row "posix_spawn bench_process, exits
# at once".
ROWS = (
    ('spawn, small child', 'library spawn, small child program', 'posix_spawn /bin/true', 'CPython spawn'),
    ('spawn, bench_process', 'library spawn', 'posix_spawn /bin/true', 'CPython spawn'),
    ('forkserver', 'library forkserver', 'raw fork', 'CPython forkserver'),
)


def main(directory):
    d = pathlib.Path(directory)
    rounds = []
    for cpp in sorted(d.glob('cpp-*.json'), key=lambda p: int(p.stem.split('-')[1])):
        py = d / cpp.name.replace('cpp-', 'py-')
        rounds.append({'cpp': cpp_values(json.loads(cpp.read_text())),
                       'py': py_values(json.loads(py.read_text()))})
    if not rounds:
        raise SystemExit(f'no results in {d}')

    def series(name):
        src, key = SERIES[name]
        return [r[src][key] for r in rounds]

    med = {name: statistics.median(series(name)) for name in SERIES}

    print(f'process_start_join under spawn and forkserver: start + join of a do-nothing '
          f'child, µs per op (median of {len(rounds)} rounds; each round = median of its '
          f'repetitions)')
    print()
    print('| start method | library | reference | CPython | library÷reference | CPython÷library |')
    print('|---|---:|---:|---:|---:|---:|')
    for row, lib, ref, cpy in ROWS:
        ratio = med[lib] / med[ref]
        print(f'| {row} | {med[lib]:.0f} | {med[ref]:.0f} ({ref}) | {med[cpy]:.0f} | '
              f'{ratio:.2f}× | {med[cpy] / med[lib]:.1f}× |')
    print()
    for name in SERIES:
        s = series(name)
        print(f'  {name:<46} median {med[name]:8.1f}   rounds: min {min(s):8.1f}  max {max(s):8.1f}')
    for row, lib, ref, _ in ROWS:
        per_round = [a / b for a, b in zip(series(lib), series(ref))]
        print(f"  {row + ': library÷reference by round':<46} median "
              f"{statistics.median(per_round):8.2f}   rounds: min {min(per_round):8.2f}  "
              f"max {max(per_round):8.2f}")
    print_goals('spawn', directory, cpp_values, py_values)  # the goals of bench/goals.tsv


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
