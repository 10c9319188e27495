# examples/sync_primitives.py: Lock and RLock, an Event waking two processes
# (seed 002's threading.Event example, with processes), a Condition.
# --pause SECONDS is how long the parent waits before it signals (0.5).
import sys
import time
from multiprocessing import Condition, Event, Lock, Process, RLock, Value

pause = float(sys.argv[2]) if sys.argv[1:2] == ['--pause'] else 0.5


def task(event, id):
    print(f'Process {id} started. Waiting for the signal....', flush=True)
    event.wait()
    print(f'Received signal. The process {id} was completed.', flush=True)


def consumer(cond, box):
    with cond:
        cond.wait_for(lambda: box.value != 0)
        print(f'consumer: box.value = {box.value}', flush=True)


if __name__ == '__main__':
    print('-- Lock and RLock --')
    lock, rlock = Lock(), RLock()
    first = lock.acquire()
    print(f'Lock:  acquire() -> {first}; again, not blocking -> '
          f'{lock.acquire(False)}')
    first = rlock.acquire()
    print(f'RLock: acquire() -> {first}; again, not blocking -> '
          f'{rlock.acquire(False)}')
    print('-- Event --', flush=True)
    event = Event()
    tasks = [Process(target=task, args=(event, id)) for id in (1, 2)]
    for p in tasks:
        p.start()
    print('Blocking the main process for a moment...', flush=True)
    time.sleep(pause)
    event.set()
    for p in tasks:
        p.join()
    print('-- Condition --', flush=True)
    cond, box = Condition(), Value('i', 0)
    c = Process(target=consumer, args=(cond, box))
    c.start()
    time.sleep(pause)
    with cond:
        box.value = 42
        cond.notify_all()
        print('producer: box.value = 42, notified', flush=True)
    c.join()
