"""bench/cpython_queues.py -- queue throughput on CPython 3.11 (fork start method).

The CPython side of bench/bench_queues.cpp (bench-operations.md, operation 5,
queue_throughput), variant for variant:
  Queue        a forked producer waits for 'go' on a pipe, then q.put(i) for i in
               range(50 000) and q.put(None); the parent starts the clock, sends
               'go' and q.get()s until None
  SimpleQueue  the same over SimpleQueue
One warm-up round, then 5 rounds, each timed with time.perf_counter(); value =
median over rounds of the seconds per round.  Prints JSON.

--scale N1,N2,... measures the scaling series instead (bench/scale.py):
Queue/<n>, one Queue round of n items.
"""
import argparse
import json
import multiprocessing as mp
import statistics
import time

import scale

N = 50_000
REPS = 5


def producer(q, go, n):
    go.recv_bytes()
    for i in range(n):
        q.put(i)
    q.put(None)


def one_round(ctx, q, n=N):
    go_r, go_w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=producer, args=(q, go_r, n))
    p.start()
    go_r.close()
    t0 = time.perf_counter()
    go_w.send_bytes(b'g')
    got = 0
    get = q.get
    while get() is not None:
        got += 1
    elapsed = time.perf_counter() - t0
    p.join()
    go_w.close()
    assert got == n and p.exitcode == 0, (got, p.exitcode)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', type=scale.sizes, help='the scaling series for these numbers of items')
    args = parser.parse_args()
    ctx = mp.get_context('fork')
    if args.scale:
        q = ctx.Queue()
        # A round times itself from 'go' on, as BM_Scale_Queue_Lib's does.
        scale.dump(scale.measure('Queue', lambda n: one_round(ctx, q, n), args.scale, 100,
                                 own_time=True))
        return
    out = {}
    for name, make in (('Queue', ctx.Queue), ('SimpleQueue', ctx.SimpleQueue)):
        q = make()
        one_round(ctx, q)  # warm-up
        out[name] = statistics.median(one_round(ctx, q) for _ in range(REPS))
    out['items'] = N
    print(json.dumps(out))


if __name__ == '__main__':
    main()
