"""bench/summarize_synchronize.py DIR -- the table bench/run_synchronize.sh prints.

DIR holds cpp-<k>.json (bench_synchronize --benchmark_format=json) and
py-<k>.json (cpython_synchronize.py) per round k; each cell is the median over
the rounds of that round's value (itself a median over repetitions).
"""
import statistics
import sys

from rounds import cpp_medians, load_rounds, median, print_goals

PAIRS = 100_000          # bench_synchronize.cpp: kPairs, pairs per timed op
INCREMENTS = 1_000_000   # bench_synchronize.cpp: kIncrements, per process


def cpp_values(doc):
    """ns per pair for the uncontended ops, increments/s for the counters."""
    out = {}
    for name, b in cpp_medians(doc).items():
        assert b['time_unit'] == 'ms', b['time_unit']
        seconds = b['real_time'] / 1e3
        out[name] = 2 * INCREMENTS / seconds if name.endswith('_Counter') else seconds / PAIRS * 1e9
    return out


def main(directory):
    rounds = load_rounds(directory, cpp_values)

    def med(src, name):
        return median(rounds, src, name)

    print(f'locks across processes (median of {len(rounds)} rounds); every ratio is one of '
          f'time per op, for the counters of time per increment')
    print()
    print('| operation | library | raw | CPython | library÷raw | CPython÷library |')
    print('|---|---:|---:|---:|---:|---:|')
    raw = med(0, 'BM_Raw_SemWaitPost')
    mirror = med(0, 'BM_Raw_SemlockMirror')
    for lib_name, py_name, label in (('BM_Lib_Lock', 'Lock', 'Lock acquire+release (ns)'),
                                     ('BM_Lib_RLock', 'RLock', 'RLock acquire+release (ns)'),
                                     ('BM_Lib_LockGuard', 'with_Lock', 'lock_guard / `with lock:` (ns)')):
        lib, cpy = med(0, lib_name), med(1, py_name)
        print(f'| {label} | {lib:.1f} | {raw:.1f} | {cpy:.1f} | {lib / raw:.2f}× | {cpy / lib:.1f}× |')
    print(f'| (raw: SemLock mirror, named sem + getvalue) | | {mirror:.1f} | | | |')
    rawc = med(0, 'BM_Raw_Sem_Apart_Counter')
    rawc_line = med(0, 'BM_Raw_Sem_Counter')
    mutex = med(0, 'BM_Raw_Mutex_Counter')
    cpyc = med(1, 'counter_incr_per_s')
    for lib_name, label in (('BM_Lib_Lock_Counter', 'counter, Lock (M incr/s)'),
                            ('BM_Lib_RLock_Counter', 'counter, RLock (M incr/s)'),
                            ('BM_Lib_Value_Counter', 'counter, Value(\'i\') + get_lock() (M incr/s)')):
        lib = med(0, lib_name)
        # Ratios of time per increment, like the latency rows: raw rate ÷ library rate.
        print(f'| {label} | {lib / 1e6:.2f} | {rawc / 1e6:.2f} | {cpyc / 1e6:.2f} | '
              f'{rawc / lib:.2f}× | {lib / cpyc:.0f}× |')
    print(f'| (raw: the semaphore in the counter\'s cache line) | | {rawc_line / 1e6:.2f} | | | |')
    print(f'| (raw: pshared pthread mutex counter) | | {mutex / 1e6:.2f} | | | |')
    print()
    print('  spread over the rounds (each round: the median of its repetitions)')
    for src, name, unit, scale in (
            (0, 'BM_Lib_Lock', 'ns', 1), (0, 'BM_Lib_RLock', 'ns', 1), (0, 'BM_Lib_LockGuard', 'ns', 1),
            (0, 'BM_Raw_SemWaitPost', 'ns', 1), (0, 'BM_Raw_SemlockMirror', 'ns', 1),
            (1, 'Lock', 'ns', 1), (1, 'RLock', 'ns', 1), (1, 'with_Lock', 'ns', 1),
            (0, 'BM_Lib_Lock_Counter', 'M/s', 1e6), (0, 'BM_Lib_RLock_Counter', 'M/s', 1e6),
            (0, 'BM_Lib_Value_Counter', 'M/s', 1e6), (0, 'BM_Raw_Sem_Counter', 'M/s', 1e6),
            (0, 'BM_Raw_Sem_Apart_Counter', 'M/s', 1e6), (0, 'BM_Raw_Mutex_Counter', 'M/s', 1e6), (1, 'counter_incr_per_s', 'M/s', 1e6)):
        s = [r[src][name] / scale for r in rounds]
        label = ('CPython ' if src else '') + name
        print(f'  {label:<28} median {statistics.median(s):8.2f} {unit:<3}  '
              f'rounds: min {min(s):8.2f}  max {max(s):8.2f}')
    by_round = [r[0]['BM_Lib_Lock'] / r[0]['BM_Raw_SemWaitPost'] for r in rounds]
    print(f"  {'Lock÷raw by round':<28} median {statistics.median(by_round):8.2f}      "
          f'rounds: min {min(by_round):8.2f}  max {max(by_round):8.2f}')
    by_round = [r[0]['BM_Raw_Sem_Apart_Counter'] / r[0]['BM_Lib_Lock_Counter'] for r in rounds]
    print(f"  {'raw÷Lock counter by round':<28} median {statistics.median(by_round):8.2f}      "
          f'rounds: min {min(by_round):8.2f}  max {max(by_round):8.2f}')
    print()
    print_goals('synchronize', directory, cpp_values)  # the goals of bench/goals.tsv


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
