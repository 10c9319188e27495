"""bench/cpython_managers.py -- operation 8 (manager_dict_ops) on CPython 3.11, fork.

The CPython side of bench/bench_managers.cpp, op for op: m = ctx.Manager(),
d = m.dict(), lk = m.Lock(), l = m.list(), made untimed; a forked client child
warms up (64 keys, 200 gets and lock pairs), then times, per repetition,
3000 ops of each kind:
  set     d[i % 64] = i
  get     d[i % 64]
  lock    lk.acquire(); lk.release()
  append  l.append(i)
5 repetitions; value = the median, in ops/s.  Prints JSON.

--scale K1,K2,... measures the scaling series instead (bench/scale.py):
Clients/<k>, k forked clients at once doing SCALE_OPS `d[i % 64] = i` each
after a warm-up, started together; a batch's time runs from the first
client's start to the last one's end, as in bench_managers.cpp.
"""
import argparse
import json
import multiprocessing as mp
import statistics
import time

import scale

OPS = 3000
KEYS = 64
REPS = 5
SCALE_OPS = 1000


def timed(op, n):
    t0 = time.perf_counter()
    op(n)
    return time.perf_counter() - t0


def client(d, lk, l, conn):
    def set_(n):
        for i in range(n):
            d[i % KEYS] = i

    def get(n):
        for i in range(n):
            d[i % KEYS]

    def lock(n):
        acq, rel = lk.acquire, lk.release
        for _ in range(n):
            acq()
            rel()

    def append(n):
        for i in range(n):
            l.append(i)

    for k in range(KEYS):
        d[k] = k
    get(200)
    lock(200)
    ops = {'set': set_, 'get': get, 'lock': lock, 'append': append}
    out = {}
    for name, op in ops.items():
        out[name] = statistics.median(OPS / timed(op, OPS) for _ in range(REPS))
    conn.send(out)


def scale_client(d, ready, go, times):
    def sets(n):
        for i in range(n):
            d[i % KEYS] = i
    sets(64)
    ready.put(None)
    go.wait()
    t0 = time.perf_counter()
    sets(SCALE_OPS)
    times.put((t0, time.perf_counter()))


def scale_batch(ctx, d, k):
    ready, times, go = ctx.SimpleQueue(), ctx.SimpleQueue(), ctx.Event()
    clients = [ctx.Process(target=scale_client, args=(d, ready, go, times)) for _ in range(k)]
    for p in clients:
        p.start()
    for _ in range(k):
        ready.get()
    go.set()
    spans = [times.get() for _ in range(k)]
    for p in clients:
        p.join()
    return max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', type=scale.sizes, help='the scaling series for these numbers of clients')
    args = parser.parse_args()
    ctx = mp.get_context('fork')
    if args.scale:
        with ctx.Manager() as m:
            d = m.dict()
            scale.dump(scale.measure('Clients', lambda k: scale_batch(ctx, d, k), args.scale, 16,
                                     own_time=True))
        return
    with ctx.Manager() as m:
        d, lk, l = m.dict(), m.Lock(), m.list()
        ours, theirs = ctx.Pipe()
        p = ctx.Process(target=client, args=(d, lk, l, theirs))
        p.start()
        out = ours.recv()
        p.join()
    print(json.dumps(out))


if __name__ == '__main__':
    main()
