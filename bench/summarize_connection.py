"""bench/summarize_connection.py DIR -- the table bench/run_connection.sh prints.

DIR holds cpp-<k>.json (bench_connection --benchmark_format=json) and
py-<k>.json (cpython_connection.py) per round k; each cell is the median over
the rounds of that round's value (itself a median over repetitions).
"""
import sys

from rounds import cpp_medians, load_rounds, median, print_goals

BATCH = {64: 2000, 4096: 500, 1 << 20: 20}


def cpp_values(doc):
    return {name: b['real_time'] for name, b in cpp_medians(doc).items()}


def main(directory):
    rounds = load_rounds(directory, cpp_values)

    def med(src, name):
        return median(rounds, src, name)

    print(f'connection between two processes (median of {len(rounds)} rounds)')
    print()
    print('| operation | library | raw socketpair | CPython | library÷raw | CPython÷library |')
    print('|---|---:|---:|---:|---:|---:|')
    lib, raw, cpy = med(0, 'BM_Lib_RoundTrip64'), med(0, 'BM_Raw_RoundTrip64'), med(1, 'roundtrip64')
    print(f'| round trip 64 B (µs) | {lib:.1f} | {raw:.1f} | {cpy:.1f} | {lib / raw:.2f}× | {cpy / lib:.2f}× |')
    for size, batch in BATCH.items():
        def mbps(us):
            return size * batch / us  # bytes per µs = MB/s
        lib = mbps(med(0, f'BM_Lib_OneWay/{size}'))
        raw = mbps(med(0, f'BM_Raw_OneWay/{size}'))
        cpy = mbps(med(1, f'oneway/{size}'))
        print(f'| one way {size} B (MB/s) | {lib:.0f} | {raw:.0f} | {cpy:.0f} | '
              f'{lib / raw:.2f}× | {lib / cpy:.2f}× faster |')
    dlib, dcpy = med(0, 'BM_Lib_DictRoundTrip'), med(1, 'dict_roundtrip')
    raw64 = med(0, 'BM_Raw_RoundTrip64')
    print(f'| dict round trip (µs) | {dlib:.1f} | ({raw64:.1f}: raw 64 B) | {dcpy:.1f} | '
          f'{dlib / raw64:.2f}× | {dcpy / dlib:.2f}× |')
    print()
    print_goals('connection', directory, cpp_values)  # the goals of bench/goals.tsv


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
