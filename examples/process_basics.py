# examples/process_basics.py: Process(target=f).start() and join(), narrated
# by log_to_stderr(SUBDEBUG), with the process's repr() at each stage.
import multiprocessing as mp
import os
import time


def f(name, go):
    go.wait()   # until the parent has printed "after start:"
    print(f"hello {name}, from {mp.current_process().name} "
          f"(pid {os.getpid()}, parent {mp.parent_process().pid})", flush=True)


if __name__ == '__main__':
    mp.log_to_stderr(mp.SUBDEBUG)
    go = mp.Event()
    p = mp.Process(target=f, args=('bob', go))
    print('before start:', p, flush=True)
    p.start()
    print('after start: ', p, flush=True)
    go.set()
    p.join()
    print('after join:  ', p, flush=True)
    sleeper = mp.Process(target=time.sleep, args=(60,), daemon=True)
    sleeper.start()
    sleeper.terminate()
    sleeper.join()
    print('terminated:  ', sleeper, flush=True)
