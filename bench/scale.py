"""bench/scale.py -- the scaling series' CPython side, shared by the cpython_*.py scripts.

With --scale N1,N2,... a cpython_*.py script measures one batch of n per
size n instead of its usual operations, as the C++ programs' BM_Scale_*
benchmarks do (bench_common.hpp, register_scale): per size, `budget // n`
batches (at least 1) per repetition, 3 repetitions, the value the median over
the repetitions of the seconds per batch.  The output is one JSON object,
{"scale": {"<series>/<n>": seconds}}, that bench/summarize_scale.py reads.
"""
import json
import statistics
import sys
import time

REPS = 3


def sizes(text):
    """'1,10,100' -> [1, 10, 100] (argparse type for --scale)."""
    out = [int(x) for x in text.split(',') if x]
    if not out or min(out) <= 0:
        raise ValueError('--scale takes positive integers separated by commas')
    return out


def measure(series, batch, ns, budget, own_time=False):
    """{'<series>/<n>': median seconds per batch} for each n; batch(n) runs one
    batch (own_time: and returns the seconds it timed itself)."""
    out = {}
    for n in ns:
        batch(1)  # warm-up
        count = max(1, budget // n)
        per_rep = []
        for _ in range(REPS):
            total = 0.0
            for _ in range(count):
                t0 = time.perf_counter()
                own = batch(n)
                total += own if own_time else time.perf_counter() - t0
            per_rep.append(total / count)
        out[f'{series}/{n}'] = statistics.median(per_rep)
    return out


def dump(results):
    json.dump({'scale': results}, sys.stdout, indent=1)
    sys.stdout.write('\n')
