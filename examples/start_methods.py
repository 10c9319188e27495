# examples/start_methods.py: the Python docs' "Contexts and start methods"
# example under each start method; the child reports a global that the
# parent changed before starting it (a fork child sees the change).
import multiprocessing as mp

counter = 0


def foo(q):
    q.put(f'hello, counter = {counter}')


if __name__ == '__main__':
    counter = 1
    for method in ('fork', 'spawn', 'forkserver'):
        ctx = mp.get_context(method)
        q = ctx.Queue()
        p = ctx.Process(target=foo, args=(q,))
        p.start()
        print(f'{method:10}:', q.get(), flush=True)
        p.join()
