# examples/add_sub_lock.py: seed 002's plock.py, two processes add and
# subtract 1 a thousand times under one Lock: the Value ends at 0.
# --sleep SECONDS is the pause inside the lock (0.001 by default).
import multiprocessing
import sys
import time

pause = float(sys.argv[2]) if sys.argv[1:2] == ['--sleep'] else 0.001
shared_variable = multiprocessing.Value('i', 0)
lock = multiprocessing.Lock()


def process_with_lock(op, name):
    for i in range(1000):
        lock.acquire()
        try:
            if op == "add":
                temp = shared_variable.value + 1
            elif op == "sub":
                temp = shared_variable.value - 1
            else:
                raise ValueError("")
            time.sleep(pause)
            shared_variable.value = temp
            if (i+1) % 200 == 0:
                print(name, i+1, shared_variable.value, flush=True)
        finally:
            lock.release()


p1 = multiprocessing.Process(target=process_with_lock,
                             args=("add", "process-1"))
p2 = multiprocessing.Process(target=process_with_lock,
                             args=("sub", "process-2"))
start_time = time.time()
p1.start()
p2.start()
p1.join()
p2.join()
end_time = time.time()
print("Final value of shared_variable:", shared_variable.value)
print(f"耗时: {end_time - start_time} 秒")
