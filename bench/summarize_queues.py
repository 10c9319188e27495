"""bench/summarize_queues.py DIR -- the table bench/run_queues.sh prints.

DIR holds cpp-<k>.json (bench_queues --benchmark_format=json) and py-<k>.json
(cpython_queues.py) per round k; each cell is the median over the rounds of
that round's value (itself a median over repetitions), in items per second.
"""
import sys

from rounds import cpp_medians, load_rounds, median, print_goals


def cpp_values(doc):
    """items/s per benchmark: the `items` counter over the median seconds per round."""
    out = {}
    for name, b in cpp_medians(doc).items():
        assert b['time_unit'] == 'ms', b['time_unit']
        out[name] = b['items'] / (b['real_time'] / 1e3)
    return out


def py_values(doc):
    return {name: doc['items'] / doc[name] for name in ('Queue', 'SimpleQueue')}


def main(directory):
    rounds = load_rounds(directory, cpp_values, py_values)

    def med(src, name):
        return median(rounds, src, name)

    framed = med(0, 'BM_Raw_PipeFramed')
    locked = med(0, 'BM_Raw_PipeFramedLocked')
    print(f'small ints from a forked producer to the parent, items/s (median of {len(rounds)} rounds)')
    print()
    print('| variant | library | CPython 3.11 | library÷CPython | library÷pipe_framed_locked | library÷pipe_framed |')
    print('|---|---:|---:|---:|---:|---:|')
    for variant in ('Queue', 'SimpleQueue'):
        lib, cpy = med(0, f'BM_Lib_{variant}'), med(1, variant)
        print(f'| {variant} | {lib / 1e6:.2f} M | {cpy / 1e6:.3f} M | {lib / cpy:.1f}× | '
              f'{lib / locked:.2f} | {lib / framed:.2f} |')
    print(f'| C pipe_framed_locked | {locked / 1e6:.2f} M | | | 1.00 | {locked / framed:.2f} |')
    print(f'| C pipe_framed | {framed / 1e6:.2f} M | | | | 1.00 |')
    print()
    print_goals('queues', directory, cpp_values, py_values)  # the goals of bench/goals.tsv


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
