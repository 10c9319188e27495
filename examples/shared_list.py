# examples/shared_list.py: seed 000, three workers append to one list: as
# threads they share it; as processes each appends to its own copy.
# --delay SECONDS replaces the seed's 1 s sleep.
import sys
import time
from multiprocessing import Process
from threading import Lock, Thread

delay = float(sys.argv[2]) if sys.argv[1:2] == ['--delay'] else 1.0


def func(nums, i, lock, kind):
    if lock: lock.acquire()
    print(f"{kind} -{i} :  {id(nums)}", flush=True)
    if lock: lock.release()
    for x in range(3):
        time.sleep(delay)
        if lock: lock.acquire()
        nums.append(i)
        print(f"{kind} -{i} :  {nums}", flush=True)
        if lock: lock.release()


if __name__ == '__main__':
    print('-- with threads --', flush=True)
    lock = Lock()
    nums = []
    print("Main Thread :", id(nums), flush=True)
    t_list = []
    for i in range(3):
        t = Thread(target=func, args=(nums, i, lock, 'Thread'))
        t_list.append(t)
        t.start()
        time.sleep(delay / 20)
    for t in t_list:
        t.join()
    print("Main Thread :", nums, flush=True)
    print('-- with processes --', flush=True)
    nums = []
    print("Main Process :", id(nums), flush=True)
    p_list = []
    for i in range(3):
        p = Process(target=func, args=(nums, i, None, 'Process'))
        p_list.append(p)
        p.start()
        time.sleep(delay / 20)
    for p in p_list:
        p.join()
    print("Main Process :", nums, flush=True)
