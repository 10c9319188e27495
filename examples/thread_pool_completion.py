# examples/thread_pool_completion.py: seed 002's ThreadPoolExecutor with
# as_completed: five tasks sleeping 7, 3, 4, 5, 1 units finish shortest
# first, in about 7 units.  --unit SECONDS (1 by default); --process runs
# them in a ProcessPoolExecutor instead.
import sys
import time
from concurrent.futures import (ProcessPoolExecutor, ThreadPoolExecutor,
                                as_completed)

args = sys.argv[1:]
unit = float(args[args.index('--unit') + 1]) if '--unit' in args else 1.0
Executor = ProcessPoolExecutor if '--process' in args else ThreadPoolExecutor


def foo(t, name, seconds_per_unit):
    time.sleep(t * seconds_per_unit)
    return t, name


def run_in_pool(func, params):
    with Executor(5) as pool:
        tasks = [pool.submit(func, **kwargs, seconds_per_unit=unit)
                 for kwargs in params]
        for obj in as_completed(tasks):
            yield obj.result()


if __name__ == '__main__':
    start_time = time.time()
    for result in run_in_pool(foo, [
            {"t": 7, "name": "thread_1"}, {"t": 3, "name": "thread_2"},
            {"t": 4, "name": "thread_3"}, {"t": 5, "name": "thread_4"},
            {"t": 1, "name": "thread_5"}]):
        print(result, flush=True)
    total = (time.time() - start_time) / unit
    print(f"total time: {total:.1f} units "
          "(the longest task, not the sum of 20)")
