# tests/interop/managers_peer.py — the Python side of interop_managers.cpp.
#
#   python3 managers_peer.py client ADDRESS KEY 3.11|3.12|native   a SyncManager client of
#       the C++ manager at ADDRESS: uses dict, list, Value, Namespace, Lock,
#       RLock, Event, Queue, BoundedSemaphore proxies, a nested proxy, an Iterator
#       and the registered callable get_greeter, checks what the C++ server answers, and leaves a dict {'from': 'python'} whose id it
#       prints as "DICT <id>" for the C++ side to check.
#   python3 managers_peer.py server KEY 3.11|3.12|native   an InteropManager server
#       (get_server().serve_forever()) at a fresh AF_UNIX address, printed as
#       "ADDRESS <addr>"; it serves until a client sends 'shutdown'.
#
# 3.12 swaps in the 3.12 handshake (handshake312.py); 3.11 and native leave the
# interpreter's own (native: a real 3.12 or 3.13).  ADDRESS is a path or
# HOST:PORT.  Exit status: 0 all well, 1 a check failed, 3 AuthenticationError.
import os
import queue
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import current_process  # noqa: E402
from multiprocessing.context import AuthenticationError  # noqa: E402
from multiprocessing.managers import SyncManager  # noqa: E402

import handshake312  # noqa: E402


class Greeter:
    """What the typeid get_greeter makes: the C++ side registers a twin."""
    def greet(self, name):
        return 'hello ' + name


class InteropManager(SyncManager):
    """A SyncManager with one registered callable, as interop_managers.cpp's."""


InteropManager.register('get_greeter', callable=Greeter)


def parse(address):
    host, sep, port = address.rpartition(':')
    if sep and port.isdigit():
        return (host, int(port))
    return address


def check(what, got, expected):
    if got != expected or type(got) is not type(expected):
        print(f'managers_peer.py: {what}: got {got!r}, expected {expected!r}', file=sys.stderr)
        sys.exit(1)


def client(address, key):
    m = InteropManager(address=address, authkey=key)
    m.connect()
    # A registered callable of the C++ server.
    greeter = m.get_greeter()
    check('greeter', greeter.greet('python'), 'hello python')
    check('greeter type', type(greeter).__name__, 'AutoProxy[get_greeter]')
    d = m.dict()
    d['a'] = 1
    d[2] = [1, 2.5, 'x', b'y', None, (1, 2)]
    check('d[a]', d['a'], 1)
    check('d[2]', d[2], [1, 2.5, 'x', b'y', None, (1, 2)])
    check('len(d)', len(d), 2)
    check('a in d', 'a' in d, True)
    check('d.get', d.get('zz', 'dflt'), 'dflt')
    check('keys', d.keys(), ['a', 2])
    check('items', d.items(), [('a', 1), (2, [1, 2.5, 'x', b'y', None, (1, 2)])])
    check('copy', d.copy(), {'a': 1, 2: [1, 2.5, 'x', b'y', None, (1, 2)]})
    check('iter', list(d), ['a', 2])
    try:
        d['missing']
        check('KeyError', None, 'KeyError')
    except KeyError as e:
        check('KeyError args', e.args, ('missing',))
    # The nested-dict pitfall: a plain inner dict is a copy.
    d['test'] = {}
    d['test']['x'] = 1
    check('pitfall', d['test'], {})

    lst = m.list([3, 1, 2])
    lst.append(0)
    lst += [9]
    lst *= 2
    check('list', lst[:], [3, 1, 2, 0, 9, 3, 1, 2, 0, 9])
    check('list slice', lst[1:4], [1, 2, 0])
    lst.sort()
    check('sorted', list(lst), [0, 0, 1, 1, 2, 2, 3, 3, 9, 9])
    check('len', len(lst), 10)
    check('index', lst.index(9), 8)
    try:
        lst[100]
        check('IndexError', None, 'IndexError')
    except IndexError as e:
        check('IndexError text', str(e), 'list index out of range')
    # A nested proxy: the list inside the dict stays a proxy.
    d['l'] = lst
    d['l'].append(42)
    check('nested', lst[-1], 42)

    v = m.Value('i', 5)
    check('value', v.value, 5)
    v.value = 7
    check('value set', v.get(), 7)
    ns = m.Namespace(name='Bob')
    ns.job = 'Builder'
    check('ns', (ns.name, ns.job), ('Bob', 'Builder'))
    check('ns str', str(ns), "Namespace(job='Builder', name='Bob')")
    try:
        ns.missing
        check('AttributeError', None, 'AttributeError')
    except AttributeError:
        pass
    lock = m.Lock()
    check('lock', lock.acquire(), True)
    check('lock again', lock.acquire(False), False)
    lock.release()
    try:
        lock.release()
        check('RuntimeError', None, 'RuntimeError')
    except RuntimeError as e:
        check('RuntimeError text', str(e), 'release unlocked lock')
    rlock = m.RLock()
    with rlock:
        with rlock:
            pass
    ev = m.Event()
    check('event', ev.is_set(), False)
    ev.set()
    check('event wait', ev.wait(1), True)

    q = m.Queue()
    q.put('job')
    check('queue', (q.qsize(), q.get()), (1, 'job'))
    try:
        q.get_nowait()
        check('queue.Empty', None, 'Empty')
    except queue.Empty:
        pass
    sem = m.BoundedSemaphore(1)
    with sem:
        check('semaphore', sem.acquire(False), False)

    keep = m.dict({'from': 'python'})
    print(f'DICT {keep._token.id}', flush=True)
    # Wait for the C++ side to check it, then let everything go.
    sys.stdin.readline()


def server(key):
    m = InteropManager(authkey=key)
    s = m.get_server()
    print(f'ADDRESS {s.address}', flush=True)
    s.serve_forever()


def main():
    role = sys.argv[1]
    if role == 'client':
        address, key, version = parse(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
    else:
        address, key, version = None, sys.argv[2].encode(), sys.argv[3]
    if version == '3.12':
        handshake312.install()
    # A proxy that arrives inside a reply (d['l'] below) is rebuilt with
    # current_process().authkey, not the manager's (CPython does not pass the
    # key along): make them the same, as a Python program must.
    current_process().authkey = key
    try:
        if role == 'client':
            client(address, key)
        else:
            server(key)
    except AuthenticationError as e:
        print(f'managers_peer.py: {e!r}', file=sys.stderr)
        sys.exit(3)


if __name__ == '__main__':
    main()
