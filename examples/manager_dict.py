# examples/manager_dict.py: seed 003, a manager dict filled by
# Pool(4).apply_async workers; the nested-dict pitfall; its two fixes.
# The argument is the start method (fork by default).
import multiprocessing
import sys


def fill(idx, test_dict):
    test_dict[idx] = idx


def pitfall(idx, test_dict):
    test_dict['test'][idx] = idx        # changes a copy


def write_back(idx, test_dict):
    row = test_dict['test']
    row[idx] = idx
    test_dict['test'] = row


def write_back_locked(idx, test_dict, lock):
    lock.acquire()
    write_back(idx, test_dict)
    lock.release()


def run_pool(func, args):
    pool = multiprocessing.Pool(4)
    for i in range(100):
        pool.apply_async(func, args=args(i))
    pool.close()
    pool.join()


if __name__ == '__main__':
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])
    manager = multiprocessing.Manager()
    temp_dict = manager.dict()
    run_pool(fill, lambda i: (i, temp_dict))
    print('1. len(temp_dict) =', len(temp_dict))
    temp_dict.clear()
    temp_dict['test'] = {}
    run_pool(pitfall, lambda i: (i, temp_dict))
    print('2.', temp_dict)
    run_pool(write_back, lambda i: (i, temp_dict))
    print("3. len(temp_dict['test']) =", len(temp_dict['test']),
          '(at most 100: writes can be lost)')
    temp_dict['test'] = {}
    lock = manager.Lock()
    run_pool(write_back_locked, lambda i: (i, temp_dict, lock))
    print("4. len(temp_dict['test']) =", len(temp_dict['test']))
