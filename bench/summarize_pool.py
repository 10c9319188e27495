"""bench/summarize_pool.py DIR -- the table bench/run_pool.sh prints.

DIR holds cpp-<k>.json (bench_pool --benchmark_format=json) and py-<k>.json
(cpython_pool.py) per round k; each cell is the median over the rounds of that
round's value (itself a median over repetitions).
"""
import sys

from rounds import cpp_medians, load_rounds, median, print_goals

MAP_ITEMS = 100_000
IMAP_ITEMS = 10_000


def cpp_values(doc):
    """µs per op for each benchmark."""
    out = {}
    for name, b in cpp_medians(doc).items():
        assert b['time_unit'] == 'us', b['time_unit']
        out[name] = b['real_time']
    return out


def main(directory):
    rounds = load_rounds(directory, cpp_values)

    def med(src, name):
        return median(rounds, src, name)

    print(f'Pool(2), fork (median of {len(rounds)} rounds)')
    print()
    print('| operation | library | raw pool | CPython 3.11 | library÷CPython | raw÷library |')
    print('|---|---:|---:|---:|---:|---:|')
    for label, lib_name, raw_name, py_name in (('map, default chunksize', 'BM_Lib_Map/0', 'BM_Raw_Map/0', 'map_default'),
                                               ('map, chunksize 1000', 'BM_Lib_Map/1000', 'BM_Raw_Map/1000', 'map_chunk1000')):
        lib = MAP_ITEMS / med(0, lib_name)  # items per µs = M items/s
        raw = MAP_ITEMS / med(0, raw_name)
        cpy = MAP_ITEMS / med(1, py_name)
        print(f'| {label} (M items/s) | {lib:.1f} | {raw:.1f} | {cpy:.2f} | {lib / cpy:.1f}× faster | {raw / lib:.1f}× |')
    lib, raw, cpy = med(0, 'BM_Lib_ApplyAsyncRtt'), med(0, 'BM_Raw_ApplyRtt'), med(1, 'apply_async_rtt')
    print(f'| apply_async(...).get() (µs) | {lib:.1f} | {raw:.1f} | {cpy:.1f} | {cpy / lib:.1f}× faster | {lib / raw:.2f}× slower |')
    lib, cpy = med(0, 'BM_Lib_ImapUnordered'), med(1, 'imap_unordered')
    print(f'| imap_unordered, 10 000 items (k items/s) | {IMAP_ITEMS / lib * 1e3:.0f} | | {IMAP_ITEMS / cpy * 1e3:.0f} | {cpy / lib:.1f}× faster | |')
    print()
    print_goals('pool', directory, cpp_values)  # the goals of bench/goals.tsv


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
