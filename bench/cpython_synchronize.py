"""bench/cpython_synchronize.py -- the lock benchmarks on CPython 3.11 (fork start method).

The CPython side of bench/bench_synchronize.cpp (bench-operations.md ops 6, 7):
  Lock, RLock      acquire() + release() with the bound methods hoisted, nobody
                   else touching the lock; 300 000 pairs per repetition
  with_Lock        `with lock: pass`
  counter          v = Value('i', 0); two forked workers wait on an Event, then
                   each does `with lock: v.value += 1` 100 000 times (lock =
                   v.get_lock(), an RLock) and stamps its own start and end
                   into an Array('d', 4, lock=False); elapsed = max(end) -
                   min(start); the final value must be exact
7 repetitions after a warm-up; value = median.  Prints JSON: ns per pair for
the locks, increments per second for the counter.
"""
import json
import multiprocessing as mp
import statistics
import time

REPS = 7
PAIRS = 300_000
INCREMENTS = 100_000


def pairs(acq, rel):
    for _ in range(1000):
        acq(); rel()
    results = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(PAIRS):
            acq(); rel()
        results.append((time.perf_counter() - t0) / PAIRS * 1e9)
    return statistics.median(results)


def with_pairs(lock):
    results = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(PAIRS):
            with lock:
                pass
        results.append((time.perf_counter() - t0) / PAIRS * 1e9)
    return statistics.median(results)


def worker(v, stamps, k, go):
    go.wait()
    lock = v.get_lock()
    stamps[k] = time.perf_counter()
    for _ in range(INCREMENTS):
        with lock:
            v.value += 1
    stamps[2 + k] = time.perf_counter()


def counter_round(ctx):
    v = ctx.Value('i', 0)
    stamps = ctx.Array('d', 4, lock=False)
    go = ctx.Event()
    ps = [ctx.Process(target=worker, args=(v, stamps, k, go)) for k in range(2)]
    for p in ps:
        p.start()
    go.set()
    for p in ps:
        p.join()
    assert v.value == 2 * INCREMENTS, v.value
    return max(stamps[2], stamps[3]) - min(stamps[0], stamps[1])


def main():
    ctx = mp.get_context('fork')
    out = {}
    lock = ctx.Lock()
    out['Lock'] = pairs(lock.acquire, lock.release)
    rlock = ctx.RLock()
    out['RLock'] = pairs(rlock.acquire, rlock.release)
    out['with_Lock'] = with_pairs(ctx.Lock())
    counter_round(ctx)  # warm-up
    elapsed = statistics.median(counter_round(ctx) for _ in range(REPS))
    out['counter_incr_per_s'] = 2 * INCREMENTS / elapsed
    print(json.dumps(out))


if __name__ == '__main__':
    main()
