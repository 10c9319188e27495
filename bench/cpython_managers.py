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
"""
import json
import multiprocessing as mp
import statistics
import time

OPS = 3000
KEYS = 64
REPS = 5


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


def main():
    ctx = mp.get_context('fork')
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
