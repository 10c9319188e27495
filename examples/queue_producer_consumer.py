# examples/queue_producer_consumer.py: a producer and a consumer over a
# Queue, then two workers over a JoinableQueue.  The argument is the start
# method (fork by default).
import multiprocessing as mp
import sys


def producer(q):
    for i in range(5):
        q.put(i)
    q.put(None)


def worker(tasks, results):
    while True:
        n = tasks.get()
        if n is None:
            break
        results.put(n * n)
        tasks.task_done()
    tasks.task_done()


if __name__ == '__main__':
    ctx = mp.get_context(sys.argv[1] if len(sys.argv) > 1 else 'fork')
    print('Queue: a producer process puts 0..4, then None')
    q = ctx.Queue()
    p = ctx.Process(target=producer, args=(q,))
    p.start()
    while (item := q.get()) is not None:
        print('consumer got', item)
    print('consumer got None: the producer is done')
    p.join()
    print('producer exited with code', p.exitcode)
    print('\nJoinableQueue: 2 worker processes square 6 tasks, '
          'the parent waits in join()')
    tasks, results = ctx.JoinableQueue(), ctx.Queue()
    workers = [ctx.Process(target=worker, args=(tasks, results))
               for i in range(2)]
    for w in workers:
        w.start()
    for n in range(6):
        tasks.put(n)
    tasks.join()
    print('join() returned: every task is done')
    print('sorted results:', sorted(results.get() for n in range(6)))
    for w in workers:
        tasks.put(None)
    tasks.join()
    for w in workers:
        w.join()
    ok = sum(w.exitcode == 0 for w in workers)
    print(f'workers stopped by None: {ok} of {len(workers)} exited with code 0')
