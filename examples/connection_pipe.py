# examples/connection_pipe.py: os_pipe's three conversations with Pipe()
# and Process: messages instead of raw bytes, the fds kept by the library.
# (fork: the targets are closures, which only fork can start.)
from multiprocessing import Pipe, Process, set_start_method


def say(line):
    print(line, flush=True)


def parent_and_child():
    say('== 1. parent and child ==')
    reader, writer = Pipe(duplex=False)
    p = Process(target=lambda: writer.send_bytes(b'Hello, pipe!'))
    p.start()
    writer.close()
    say('Received: ' + reader.recv_bytes().decode())
    p.join()


def two_siblings():
    say('== 2. two siblings ==')
    reader, writer = Pipe(False)
    sender = Process(target=lambda: writer.send_bytes(b'Hello from child!'))
    receiver = Process(
        target=lambda: say('Received: ' + reader.recv_bytes().decode()))
    sender.start()
    receiver.start()
    reader.close()
    writer.close()
    sender.join()
    receiver.join()


def one_pipe_per_child():
    say('== 3. one pipe per child ==')
    children = []
    for i in range(3):
        reader, writer = Pipe(False)
        p = Process(target=lambda: writer.send_bytes(
            f'Hello, pipe write_end: {writer.fileno()}!'.encode()))
        p.start()
        writer.close()
        say('Received: ' + reader.recv_bytes().decode())
        reader.close()   # as the C++ reader's scope ends: fd 3 is free again
        children.append(p)
    for p in children:
        p.join()


if __name__ == '__main__':
    set_start_method('fork')
    parent_and_child()
    two_siblings()
    one_pipe_per_child()
