# examples/counter_lesson.py: seed 001, Value('i', 0) raised by 10 processes
# x 20: lost updates without a lock, then three fixes that always give 200.
# --runs N runs each form N times (the seed's 10 by default).
import sys
import time
from multiprocessing import Lock, Process, RawValue, Value

runs = int(sys.argv[2]) if sys.argv[1:2] == ['--runs'] else 10


def count(v):
    for i in range(20):
        time.sleep(0.01)
        v.value += 1


def count_wide(v):
    for i in range(20):
        time.sleep(0.01)
        temp = v.value + 1
        time.sleep(0.0005)
        v.value = temp


def count_locked(x, lock):
    for i in range(20):
        time.sleep(0.01)
        with lock:
            x.value += 1


def count_get_lock(x):
    for i in range(20):
        time.sleep(0.01)
        with x.get_lock():
            x.value += 1


def main(target, counter, *extra):
    processes = [Process(target=target, args=(counter,) + extra)
                 for i in range(10)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    print(counter.value, flush=True)


if __name__ == '__main__':
    forms = [
        ("Value('i', 0), no lock", count, lambda: (Value('i', 0),)),
        ("Value('i', 0), no lock, 0.5 ms between read and write",
         count_wide, lambda: (Value('i', 0),)),
        ("Value('i', 0) with a Lock", count_locked,
         lambda: (Value('i', 0), Lock())),
        ("Value('i', 0) with get_lock()", count_get_lock,
         lambda: (Value('i', 0),)),
        ("RawValue('i', 0) with a Lock", count_locked,
         lambda: (RawValue('i', 0), Lock())),
    ]
    for title, target, make in forms:
        print(f'{title}:', flush=True)
        for i in range(runs):
            main(target, *make())
