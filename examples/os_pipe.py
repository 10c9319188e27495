# examples/os_pipe.py: seed 002's three os.pipe programs: a parent and a
# child, two siblings, one pipe per child.
import os


def parent_and_child():
    print('== 1. parent and child ==', flush=True)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        print(f"Child End, read_end: {read_end}, write_end: {write_end}",
              flush=True)
        os.close(read_end)
        os.write(write_end, b"Hello, pipe!")
        os.close(write_end)
        os._exit(0)
    print(f"Parent End, read_end: {read_end}, write_end: {write_end}",
          flush=True)
    os.close(write_end)
    data_received = os.read(read_end, 1024)
    os.close(read_end)
    print("Received:", data_received.decode(), flush=True)
    os.waitpid(pid, 0)


def two_siblings():
    print('== 2. two siblings ==', flush=True)
    read_end, write_end = os.pipe()
    writer = os.fork()
    if writer == 0:
        os.close(read_end)
        os.write(write_end, b"Hello from child!")
        os.close(write_end)
        os._exit(0)
    reader = os.fork()
    if reader == 0:
        os.close(write_end)
        data_received = os.read(read_end, 1024)
        print("Received:", data_received.decode(), flush=True)
        os._exit(0)
    os.close(read_end)
    os.close(write_end)
    os.waitpid(writer, 0)
    os.waitpid(reader, 0)


def one_pipe_per_child():
    print('== 3. one pipe per child ==', flush=True)
    ends, pids = [], []
    for i in range(3):
        read_end, write_end = os.pipe()
        ends += [read_end, write_end]
        pid = os.fork()
        if pid == 0:
            print(f"Child End, read_end: {read_end}, write_end: {write_end}",
                  flush=True)
            os.close(read_end)
            os.write(write_end, f"Hello, pipe write_end: {write_end}!".encode())
            os.close(write_end)
            os._exit(0)
        print(f"Parent End, read_end: {read_end}, write_end: {write_end}",
              flush=True)
        data_received = os.read(read_end, 1024)
        print("Received:", data_received.decode(), flush=True)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    for end in ends:
        os.close(end)


parent_and_child()
two_siblings()
one_pipe_per_child()
