# examples/value_array.py: the Python docs' Value/Array example, then seed
# 004's: a child changes a Value('d') and an Array('i') in shared memory.
from multiprocessing import Array, Process, Value


def docs_f(n, a):
    n.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]


def seed_f(n, a):
    n.value = 3.14
    a[0] = 5


if __name__ == '__main__':
    for f in (docs_f, seed_f):
        num = Value('d', 0.0)
        arr = Array('i', range(10))
        p = Process(target=f, args=(num, arr))
        p.start()
        p.join()
        print(num.value)
        print(arr[:])
