"""bench/cpython_pool.py -- operation 9 (pool_map_overhead) on CPython 3.11, fork.

The CPython side of bench/bench_pool.cpp, op for op, with ctx.Pool(2) made and
warmed (one map of 1000) untimed:
  map_default      pool.map(ident, range(100_000))           (chunksize 12 500)
  map_chunk1000    pool.map(ident, range(100_000), 1000)
  apply_async_rtt  pool.apply_async(ident, (i,)).get(), one at a time
  imap_unordered   for r in pool.imap_unordered(ident, range(10_000))
Each: 7 repetitions; value = the median, in µs per op (a map, a call, a whole
imap).  Prints JSON.

--scale N1,N2,... measures the scaling series instead (bench/scale.py):
Map/<n>, pool.map(ident, range(n)) with the default chunksize.
"""
import argparse
import json
import multiprocessing as mp
import statistics
import time

import scale

REPS = 7


def ident(x):
    return x


def per_op(op, n):
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(n):
            op()
        times.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', type=scale.sizes, help='the scaling series for these numbers of items')
    args = parser.parse_args()
    ctx = mp.get_context('fork')
    with ctx.Pool(2) as pool:
        pool.map(ident, range(1000))
        if args.scale:
            scale.dump(scale.measure('Map', lambda n: pool.map(ident, range(n)), args.scale, 10000))
            return
        items = range(100_000)
        counter = iter(range(10**9))
        out = {
            'map_default': per_op(lambda: pool.map(ident, items), 5),
            'map_chunk1000': per_op(lambda: pool.map(ident, items, 1000), 5),
            'apply_async_rtt': per_op(lambda: pool.apply_async(ident, (next(counter),)).get(), 1000),
            'imap_unordered': per_op(lambda: sum(pool.imap_unordered(ident, range(10_000))), 3),
        }
    print(json.dumps(out))


if __name__ == '__main__':
    main()
