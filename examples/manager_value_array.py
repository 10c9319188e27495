# examples/manager_value_array.py: seed 004's "Manager" program: a Value,
# an Array and a list held by a manager, changed by a child through proxies.
# The argument is the start method (fork by default).
import multiprocessing
import sys


def f(x, arr, l):
    x.value = 3.14
    arr[0] = 5
    l.append('Hello')


if __name__ == '__main__':
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])
    server = multiprocessing.Manager()
    x = server.Value('d', 0.0)
    arr = server.Array('i', range(10))
    l = server.list()
    proc = multiprocessing.Process(target=f, args=(x, arr, l))
    proc.start()
    proc.join()
    print(x.value)
    print(arr)
    print(l)
