# tests/interop/peer.py — the Python side of the interop test (interop_connection.cpp).
#
#   python3 peer.py listener unix|inet KEY 3.11|3.12   prints "ADDRESS <addr>", accepts one
#   python3 peer.py client   ADDRESS   KEY 3.11|3.12   connects to ADDRESS
#
# KEY "-" means no authkey.  3.12 swaps in the 3.12 handshake (handshake312.py).
# After the handshake the Python side drives: each payload of PAYLOADS goes out
# with send_bytes and must come back unchanged; then b'done' -> b'bye'.
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
