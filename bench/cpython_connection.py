"""bench/cpython_connection.py -- the connection benchmarks on CPython 3.11 (fork start method).

The CPython side of bench/bench_connection.cpp, op for op:
  roundtrip64      Pipe(); a forked child echoes; send_bytes(64 B) + recv_bytes()
  oneway/<size>    `batch` send_bytes of <size> bytes, the child recv_bytes each,
                   then a 1-byte ack (64 B: 2000, 4 KiB: 500, 1 MiB: 20 per op)
  dict_roundtrip   send({'a': 1, 'b': [1, 2, 3], 'c': 'xyz'}) + recv() of the echo
Each: warm-up, then 5 repetitions of n ops timed with time.perf_counter();
value = median over repetitions of elapsed / n, in µs per op.  Prints JSON.

--scale N1,N2,... measures the scaling series instead (bench/scale.py):
RoundTrip/<n>, one send_bytes of n bytes + recv_bytes of the echo.
"""
import argparse
import json
import multiprocessing as mp
import statistics
import time

import scale

REPS = 5


def echo_bytes(c, other):
    other.close()
    try:
        while True:
            c.send_bytes(c.recv_bytes())
    except EOFError:
        pass


def echo_values(c, other):
    other.close()
    try:
        while True:
            c.send(c.recv())
    except EOFError:
        pass


def sink(c, other, batch):
    other.close()
    try:
        while True:
            for _ in range(batch):
                c.recv_bytes()
            c.send_bytes(b'k')
    except EOFError:
        pass


def measure(op, n, warmup):
    for _ in range(warmup):
        op()
    results = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(n):
            op()
        results.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(results)


def with_child(target, *extra):
    ctx = mp.get_context('fork')
    a, b = ctx.Pipe()
    p = ctx.Process(target=target, args=(b, a) + extra)
    p.start()
    b.close()
    return a, p


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', type=scale.sizes, help='the scaling series for these message sizes')
    args = parser.parse_args()
    if args.scale:
        a, p = with_child(echo_bytes)
        results = {}
        for size in args.scale:
            m = b'x' * size

            def rt(_):
                a.send_bytes(m)
                a.recv_bytes()
            # 64 MiB of messages per repetition, 3 to 1000 round trips: as bench_connection.
            results.update(scale.measure('RoundTrip', rt, [size], min(1000, max(3, (64 << 20) // size)) * size))
        a.close()
        p.join()
        scale.dump(results)
        return
    out = {}
    a, p = with_child(echo_bytes)
    msg = b'x' * 64

    def rt():
        a.send_bytes(msg)
        a.recv_bytes()
    out['roundtrip64'] = measure(rt, 3000, 100)
    a.close(); p.join()

    d = {'a': 1, 'b': [1, 2, 3], 'c': 'xyz'}
    a, p = with_child(echo_values)

    def drt():
        a.send(d)
        a.recv()
    out['dict_roundtrip'] = measure(drt, 3000, 100)
    a.close(); p.join()

    for size, batch in ((64, 2000), (4096, 500), (1 << 20, 20)):
        a, p = with_child(sink, batch)
        m = b'x' * size

        def one_batch():
            for _ in range(batch):
                a.send_bytes(m)
            a.recv_bytes()
        out[f'oneway/{size}'] = measure(one_batch, 10, 1)
        a.close(); p.join()
    print(json.dumps(out))


if __name__ == '__main__':
    main()
