# examples/global_counter.py: seed 004, a global raised by 5 threads (it
# reaches 5) and by 5 processes (each raises its own copy: 0 in the parent).
import multiprocessing
import os
import threading

count_thread = 0
count_process = 0


def worker1(sign, lock):
    global count_thread
    lock.acquire()
    count_thread += 1
    print(f"{sign} {os.getpid()}", flush=True)
    lock.release()


def worker2(sign, lock):
    global count_process
    lock.acquire()
    count_process += 1
    print(f"{sign} {os.getpid()}", flush=True)
    lock.release()


if __name__ == '__main__':
    print('Main:', os.getpid(), flush=True)
    record = []
    lock = threading.Lock()
    for i in range(5):
        thread = threading.Thread(target=worker1, args=('thread', lock))
        thread.start()
        record.append(thread)
    for thread in record:
        thread.join()
    record = []
    lock = multiprocessing.Lock()
    for i in range(5):
        process = multiprocessing.Process(target=worker2,
                                          args=('process', lock))
        process.start()
        record.append(process)
    for process in record:
        process.join()
    print(count_thread)
    print(count_process)
