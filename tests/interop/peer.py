# tests/interop/peer.py — the Python side of the interop test (interop_connection.cpp).
#
#   python3 peer.py listener unix|inet KEY 3.11|3.12|native   prints "ADDRESS <addr>", accepts one
#   python3 peer.py client   ADDRESS   KEY 3.11|3.12|native   connects to ADDRESS
#
# KEY "-" means no authkey.  3.12 swaps in the 3.12 handshake (handshake312.py);
# 3.11 and native leave the interpreter's own (native: a real 3.12 or 3.13).
# After the handshake the Python side drives: each of payloads() goes out with
# send_bytes, each of values() with send, and must come back unchanged (the
# C++ side echoes, a value through its own unpickler and pickler); a list holding
# one list twice, built in C++, must arrive equal; then the C++ side sends values it built
# (expected_from_cxx()); then b'done' -> b'bye'.
# Exit status: 0 all well, 1 a payload came back wrong, 3 AuthenticationError.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import connection  # noqa: E402
from multiprocessing.context import AuthenticationError  # noqa: E402

import handshake312  # noqa: E402


def payloads():
    # The C++ side makes the same list (interop_connection.cpp, payloads()).
    return [b'', b'x', bytes(range(256)), b'a' * 16384, b'b' * 16385,
            (bytes(range(251)) * 4200)[:1 << 20]]


def values():
    # Every type the library's pickle supports; sent with send(), echoed by the
    # C++ side with recv() + send(), compared with type and value.
    shared = [1, 2]
    return [None, True, False, 0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -2**31,
            2**63 - 1, -2**63, 0.0, -1.5, 2.25, 1e300, float('inf'),
            '', 'junk', 'h\xe9llo \u2603 \U0001f600', b'', b'hello', bytes(range(256)),
            bytearray(b'ba'), (), (1,), (1, 'a', None), [], [1, 2, 3], {},
            {'a': 1, 'b': [1, 2, 3], 'c': 'xyz'}, {1: 'one', (1, 2): [b'x']},
            set(), {1, 2, 3}, frozenset({'x', 'y'}), [shared, shared],
            [2.25, None, 'junk'], 'x' * 70000, list(range(2000))]


def expected_from_cxx():
    # What the C++ side builds itself and sends (interop_connection.cpp, cxx_values()).
    return [[2.25, None, 'junk'], {'a': 1, 'b': [1, 2, 3], 'c': 'xyz'},
            (1, -2**63, 'h\xe9'), {1, 2}, frozenset({3}), bytearray(b'\x00\xff'), b'hello']


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def parse_address(text):
    host, sep, port = text.rpartition(':')
    if sep and '/' not in text and port.isdigit():
        return (host, int(port))
    return text


def exchange(conn):
    for p in payloads():
        conn.send_bytes(p)
        if not conn.poll(20):
            print('peer.py: no echo within 20 s', file=sys.stderr)
            return 1
        back = conn.recv_bytes()
        if back != p:
            print(f'peer.py: echo of {len(p)} bytes came back as {len(back)} bytes',
                  file=sys.stderr)
            return 1
    for v in values():
        conn.send(v)
        if not conn.poll(20):
            print('peer.py: no echo within 20 s', file=sys.stderr)
            return 1
        back = conn.recv()
        if not same(back, v):
            print(f'peer.py: {v!r:.80} came back as {back!r:.80}', file=sys.stderr)
            return 1
    conn.send('end of values')
    echoed = conn.recv()
    # Equal, not identical: a C++ Object is a value, so the two inner lists are
    # two values and pickle as two (a Python reader sees equal lists).
    if echoed != [[1, 2], [1, 2]]:
        print(f'peer.py: expected [[1, 2], [1, 2]], got {echoed!r}', file=sys.stderr)
        return 1
    for v in expected_from_cxx():
        back = conn.recv()
        if not same(back, v):
            print(f'peer.py: from C++ expected {v!r}, got {back!r}', file=sys.stderr)
            return 1
    conn.send_bytes(b'done')
    if not conn.poll(20) or conn.recv_bytes() != b'bye':
        return 1
    return 0


def main():
    role, where, key, version = sys.argv[1:5]
    authkey = None if key == '-' else key.encode()
    if version == '3.12':
        handshake312.install()
    try:
        if role == 'listener':
            family = 'AF_INET' if where == 'inet' else 'AF_UNIX'
            address = ('127.0.0.1', 0) if family == 'AF_INET' else None
            with connection.Listener(address, family, authkey=authkey) as listener:
                a = listener.address
                text = f'{a[0]}:{a[1]}' if isinstance(a, tuple) else a
                print('ADDRESS', text, flush=True)
                with listener.accept() as conn:
                    status = exchange(conn)
        else:
            with connection.Client(parse_address(where), authkey=authkey) as conn:
                status = exchange(conn)
    except AuthenticationError as e:
        print(f'peer.py: AuthenticationError: {e}', file=sys.stderr)
        return 3
    print(f'peer.py: {role} {version} handshake saw {handshake312.last}', file=sys.stderr)
    return status


if __name__ == '__main__':
    sys.exit(main())
