# examples/value_scheduler.py: seed 002's cookbook example 1, a scheduler
# thread raising each worker process's Value('i', 1) every five ticks while
# the workers print it every tick.  --tick SECONDS (the seed's 1 s) and
# --rounds N bound the seed's endless loops; the scheduler starts half a tick
# after the workers, so that no print falls on the same instant as an update.
import sys
import time
from multiprocessing import Process, Value
from threading import Thread

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
tick = float(args.get('--tick', 1.0))
rounds = int(args.get('--rounds', 2))


class MyWorker(Process):
    def __init__(self, a):
        super().__init__(daemon=True)
        self.a = a

    def run(self):
        while True:
            time.sleep(tick)
            print(f"from worker:  {self.a.value}", flush=True)


class Scheduler:
    def __init__(self, num_workers=1):
        self.num_workers = num_workers
        self.workers = []

    def update_worker(self):
        for round in range(rounds):
            time.sleep(5 * tick)
            for worker in self.workers:
                worker.a.value += 1
                print("from scheduler:", worker.a.value, flush=True)

    def start(self):
        for i in range(self.num_workers):
            a = Value('i', 1)
            self.workers.append(MyWorker(a))
        for worker in self.workers:
            worker.start()
        time.sleep(tick / 2)
        self.thread = Thread(target=self.update_worker)
        self.thread.start()


if __name__ == "__main__":
    s = Scheduler(num_workers=2)
    s.start()
    s.thread.join()
    time.sleep(2 * tick)
