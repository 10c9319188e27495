# examples/manager_list.py: seed 000's last program, the list shared through
# Manager().list(): all three processes append to the one list in the
# manager's server.  --delay SECONDS replaces the seed's 1 s sleep.
import sys
import time
from multiprocessing import Lock, Manager, Process

delay = float(sys.argv[2]) if sys.argv[1:2] == ['--delay'] else 1.0


def func(nums, i, lock):
    lock.acquire()
    print(f"Process -{i} :  {id(nums)}", flush=True)
    lock.release()
    for x in range(3):
        time.sleep(delay)
        lock.acquire()
        nums.append(i)
        print(f"Process -{i} :  {nums}", flush=True)
        lock.release()


if __name__ == '__main__':
    lock = Lock()
    nums = Manager().list([])
    print("Main Process :", id(nums), flush=True)
    p_list = []
    for i in range(3):
        p = Process(target=func, args=(nums, i, lock))
        p_list.append(p)
        p.start()
        time.sleep(delay / 5)
    for p in p_list:
        p.join()
    print("Main Process :", nums, flush=True)
