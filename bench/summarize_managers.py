"""bench/summarize_managers.py DIR -- the table bench/run_managers.sh prints.

DIR holds cpp-<k>.json (bench_managers --benchmark_format=json) and py-<k>.json
(cpython_managers.py) per round k; each cell is the median over the rounds of
that round's value (itself a median over repetitions).  The goals are
bench/goals.tsv's (the lock op is two round trips on both sides).
"""
import sys

from rounds import cpp_medians, load_rounds, median, print_goals

OPS = 3000
NAMES = ('set', 'get', 'lock', 'append')
LABELS = {'set': 'd[k] = v', 'get': 'd[k]', 'lock': 'lk.acquire(); lk.release()', 'append': 'l.append(i)'}


def cpp_values(doc):
    """ops/s of each benchmark, keyed 'lib/set', 'raw/get'..."""
    out = {}
    for name, b in cpp_medians(doc).items():
        assert b['time_unit'] == 'ms', b['time_unit']
        side, arg = name.split('/')  # 'BM_Lib', 'op:0'
        op = NAMES[int(arg.split(':')[1])]
        out[f"{side[3:].lower()}/{op}"] = OPS / (b['real_time'] / 1e3)
    return out


def main(directory):
    rounds = load_rounds(directory, cpp_values)

    def med(src, name):
        return median(rounds, src, name)

    print(f'SyncManager proxy calls from a forked child (median of {len(rounds)} rounds, k ops/s)')
    print()
    print('| operation | library | raw framed unix socket | CPython 3.11 | library÷raw | library÷CPython |')
    print('|---|---:|---:|---:|---:|---:|')
    for op in NAMES:
        lib, raw, cpy = med(0, f'lib/{op}'), med(0, f'raw/{op}'), med(1, op)
        print(f'| `{LABELS[op]}` | {lib / 1e3:.1f} | {raw / 1e3:.1f} | {cpy / 1e3:.1f} | {lib / raw:.2f} | {lib / cpy:.1f}× |')
    print()
    print_goals('managers', directory, cpp_values)  # the goals of bench/goals.tsv


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
