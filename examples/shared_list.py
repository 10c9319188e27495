# examples/shared_list.py: seed 000, three workers append to one list: as
# threads they share it; as processes each appends to its own copy.
# --delay SECONDS replaces the seed's 1 s sleep.
import sys
import time
import multiprocessing
import threading

delay = float(sys.argv[2]) if sys.argv[1:2] == ['--delay'] else 1.0


def func(nums, i, lock, kind):
    lock.acquire()
    print(f"{kind} -{i} :  {id(nums)}", flush=True)
    lock.release()
    for x in range(3):
        time.sleep(delay)
        lock.acquire()
        nums.append(i)
        print(f"{kind} -{i} :  {nums}", flush=True)
        lock.release()


if __name__ == '__main__':
    print('-- with threads --', flush=True)
    lock = threading.Lock()
    nums = []
    print("Main Thread :", id(nums), flush=True)
    t_list = []
    for i in range(3):
        t = threading.Thread(target=func, args=(nums, i, lock, 'Thread'))
        t_list.append(t)
        t.start()
        time.sleep(delay / 20)
    for t in t_list:
        t.join()
    print("Main Thread :", nums, flush=True)
    print('-- with processes --', flush=True)
    lock = multiprocessing.Lock()
    nums = []
    print("Main Process :", id(nums), flush=True)
    p_list = []
    for i in range(3):
        p = multiprocessing.Process(target=func,
                                    args=(nums, i, lock, 'Process'))
        p_list.append(p)
        p.start()
        time.sleep(delay / 20)
    for p in p_list:
        p.join()
    print("Main Process :", nums, flush=True)
