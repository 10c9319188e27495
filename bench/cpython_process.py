"""bench/cpython_process.py -- operation 1, process_start_join, on CPython.

The CPython side of bench/bench_process.cpp (see bench/README.md):

  process_start_join/fork   ctx = multiprocessing.get_context('fork')
                            p = ctx.Process(target=noop); p.start(); p.join()
                            exit code checked                       (40 ops/rep)
  raw_os_fork               os.fork() / child os._exit(0) / os.waitpid()
                            the interpreter's own fork cost         (60 ops/rep)

Method (shared/reference/bench-operations.md, "Common method"): one untimed
warm-up round, then `reps` timed repetitions of `n` ops, each timed with
time.perf_counter() (CLOCK_MONOTONIC); per repetition elapsed / n; the value
is the median over the repetitions.  The two operations alternate repetition
by repetition.  Prints one JSON object on stdout, times in microseconds/op.

The top level imports nothing on purpose: under the spawn and forkserver
start methods a child re-imports the main module (only fork is measured here,
but the script is kept ready for them, as the reference's is).
"""


def noop():
    pass


def process_start_join(ctx, n):
    import time
    t0 = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f'child exit code {p.exitcode!r}, expected 0')
    return (time.perf_counter() - t0) / n


def raw_os_fork(n):
    import os
    import time
    t0 = time.perf_counter()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f'child status {status!r}, expected exit code 0')
    return (time.perf_counter() - t0) / n


def main():
    import argparse
    import json
    import multiprocessing
    import platform
    import statistics
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--n-fork', type=int, default=40, help='Process start+join per rep')
    parser.add_argument('--n-raw', type=int, default=60, help='os.fork/waitpid per rep')
    parser.add_argument('--warmup', type=int, default=5, help='untimed ops of each kind')
    args = parser.parse_args()

    ctx = multiprocessing.get_context('fork')
    process_start_join(ctx, args.warmup)
    raw_os_fork(args.warmup)

    reps = {'process_start_join/fork': [], 'raw_os_fork': []}
    for _ in range(args.reps):
        reps['process_start_join/fork'].append(process_start_join(ctx, args.n_fork) * 1e6)
        reps['raw_os_fork'].append(raw_os_fork(args.n_raw) * 1e6)

    ops = {'process_start_join/fork': args.n_fork, 'raw_os_fork': args.n_raw}
    json.dump({
        'python': sys.version.split()[0],
        'implementation': platform.python_implementation(),
        'unit': 'us_per_op',
        'results': {
            name: {'value': statistics.median(values), 'reps': values, 'n': ops[name]}
            for name, values in reps.items()
        },
    }, sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
