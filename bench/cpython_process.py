"""bench/cpython_process.py -- operation 1, process_start_join, on CPython.

The CPython side of bench/bench_process.cpp (see bench/README.md):

  process_start_join/fork   ctx = multiprocessing.get_context('fork')
                            p = ctx.Process(target=noop); p.start(); p.join()
                            exit code checked                       (40 ops/rep)
  process_start_join/spawn  the same with get_context('spawn')      (10 ops/rep)
  process_start_join/forkserver
                            the same with get_context('forkserver') (25 ops/rep);
                            the warm-up starts the fork server
  raw_os_fork               os.fork() / child os._exit(0) / os.waitpid()
                            the interpreter's own fork cost         (60 ops/rep)

--measure picks which (default: fork,raw_os_fork, what bench/run.sh needs;
bench/run_spawn.sh asks for spawn,forkserver).

--scale N1,N2,... measures the scaling series instead (bench/scale.py), with
the fork context: StartJoinSeq/<n> (n Processes, each started and joined
before the next) and StartJoinAll/<n> (n started, then n joined).

Method (shared/reference/bench-operations.md, "Common method"): one untimed
warm-up round, then `reps` timed repetitions of `n` ops, each timed with
time.perf_counter() (CLOCK_MONOTONIC); per repetition elapsed / n; the value
is the median over the repetitions.  The operations alternate repetition by
repetition.  Prints one JSON object on stdout, times in microseconds/op.

The top level imports nothing on purpose: under the spawn and forkserver
start methods every child re-imports the main module (as __mp_main__), so
what the module does at import is part of each child's start.
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


def start_join_all(ctx, n):
    children = [ctx.Process(target=noop) for _ in range(n)]
    for p in children:
        p.start()
    for p in children:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f'child exit code {p.exitcode!r}, expected 0')


def main():
    import argparse
    import json
    import multiprocessing
    import platform
    import statistics
    import sys

    import scale

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--measure', default='fork,raw_os_fork',
                        help='comma-separated: fork, spawn, forkserver, raw_os_fork')
    parser.add_argument('--n-fork', type=int, default=40, help='fork Process start+join per rep')
    parser.add_argument('--n-spawn', type=int, default=10, help='spawn Process start+join per rep')
    parser.add_argument('--n-forkserver', type=int, default=25,
                        help='forkserver Process start+join per rep')
    parser.add_argument('--n-raw', type=int, default=60, help='os.fork/waitpid per rep')
    parser.add_argument('--warmup', type=int, default=5, help='untimed ops of each kind')
    parser.add_argument('--scale', type=scale.sizes,
                        help='the scaling series for these numbers of children')
    args = parser.parse_args()

    if args.scale:
        ctx = multiprocessing.get_context('fork')
        results = scale.measure('StartJoinSeq', lambda n: process_start_join(ctx, n) * n, args.scale, 100)
        results.update(scale.measure('StartJoinAll', lambda n: start_join_all(ctx, n), args.scale, 100))
        scale.dump(results)
        return

    # name -> (one repetition of n ops, returning s/op; n)
    measures = {}
    for m in args.measure.split(','):
        if m in ('fork', 'spawn', 'forkserver'):
            ctx = multiprocessing.get_context(m)
            measures[f'process_start_join/{m}'] = (
                lambda n, ctx=ctx: process_start_join(ctx, n), getattr(args, f'n_{m}'))
        elif m == 'raw_os_fork':
            measures['raw_os_fork'] = (raw_os_fork, args.n_raw)
        else:
            parser.error(f'unknown measurement {m!r}')

    for one_rep, _ in measures.values():
        one_rep(args.warmup)  # forkserver: also starts the server

    reps = {name: [] for name in measures}
    for _ in range(args.reps):
        for name, (one_rep, n) in measures.items():
            reps[name].append(one_rep(n) * 1e6)

    ops = {name: n for name, (_, n) in measures.items()}
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
