"""bench/summarize.py -- the table that bench/run.sh prints.

Usage: python3 bench/summarize.py DIR
DIR holds, per round k, cpp-<k>.json (bench_process --benchmark_format=json)
and py-<k>.json (cpython_process.py).  Each file gives one value per
measurement for its round (the median over that run's repetitions); the table
gives, per measurement, the median over the rounds, and the ratios of those
medians.  The spread line shows the lowest and highest round, and the ratio
library/raw computed round by round (the two ran interleaved in the same
process, so that ratio is the least noisy number here).
"""
import json
import pathlib
import statistics
import sys

from rounds import print_goals

# column name -> (source, name in that source's JSON)
COLUMNS = {
    'library': ('cpp', 'BM_ProcessStartJoin'),
    'raw fork': ('cpp', 'BM_RawForkWaitpid'),
    'CPython fork Process': ('py', 'process_start_join/fork'),
    'CPython os.fork': ('py', 'raw_os_fork'),
}
EXTRA = {'raw fork, 8 MiB dirty': ('cpp', 'BM_RawForkWaitpid_RSS8M')}


def cpp_values(doc):
    """run_name -> median µs/op, from Google Benchmark's JSON."""
    out = {}
    for b in doc['benchmarks']:
        if b.get('run_type') == 'aggregate' and b.get('aggregate_name') == 'median':
            if b.get('error_occurred'):
                raise SystemExit(f"{b['name']}: {b.get('error_message')}")
            assert b['time_unit'] == 'us', b['time_unit']
            out[b['run_name'].split('/')[0]] = b['real_time']
    return out


def py_values(doc):
    return {name: r['value'] for name, r in doc['results'].items()}


def main(directory):
    d = pathlib.Path(directory)
    rounds = []
    for cpp in sorted(d.glob('cpp-*.json'), key=lambda p: int(p.stem.split('-')[1])):
        py = d / cpp.name.replace('cpp-', 'py-')
        rounds.append({'cpp': cpp_values(json.loads(cpp.read_text())),
                       'py': py_values(json.loads(py.read_text()))})
    if not rounds:
        raise SystemExit(f'no results in {d}')

    def series(col):
        src, name = {**COLUMNS, **EXTRA}[col]
        return [r[src][name] for r in rounds]

    med = {col: statistics.median(series(col)) for col in {**COLUMNS, **EXTRA}}
    lib, raw, cpy = med['library'], med['raw fork'], med['CPython fork Process']
    per_round = [a / b for a, b in zip(series('library'), series('raw fork'))]

    print(f'process_start_join: start + join of a do-nothing child, µs per op '
          f'(median of {len(rounds)} rounds; each round = median of its repetitions)')
    print()
    print('| operation | library | raw fork | CPython fork Process | CPython os.fork '
          '| library÷raw | CPython÷raw | CPython÷library |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    print(f"| process_start_join | {lib:.0f} | {raw:.0f} | {cpy:.0f} | "
          f"{med['CPython os.fork']:.0f} | {lib / raw:.2f}× | {cpy / raw:.1f}× | {cpy / lib:.1f}× |")
    print()
    for col in {**COLUMNS, **EXTRA}:
        s = series(col)
        print(f'  {col:<24} median {med[col]:8.1f}   rounds: min {min(s):8.1f}  max {max(s):8.1f}')
    print(f"  {'library÷raw by round':<24} median {statistics.median(per_round):8.2f}   "
          f"rounds: min {min(per_round):8.2f}  max {max(per_round):8.2f}")
    print(f"  raw fork with 8 MiB of dirty heap (reference 'fork_exit_waitpid_rss8M'): "
          f"{med['raw fork, 8 MiB dirty']:.0f} µs, {med['raw fork, 8 MiB dirty'] / raw:.2f}× raw")
    print_goals('process', directory, cpp_values, py_values)  # the goals of bench/goals.tsv


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
