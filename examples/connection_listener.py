# examples/connection_listener.py — the Python docs' Listener, with the same
# options as connection_listener.cpp, so that either side can be swapped.
import argparse
from array import array
from multiprocessing.connection import Listener


def parse_address(text):
    host, sep, port = text.rpartition(':')
    if sep and '/' not in text and port.isdigit():
        return (host, int(port))
    return text


parser = argparse.ArgumentParser()
parser.add_argument('--address', default='localhost:6000')
parser.add_argument('--authkey', default='secret password')
args = parser.parse_args()

with Listener(parse_address(args.address), authkey=args.authkey.encode()) as listener:
    with listener.accept() as conn:
        print('connection accepted from', listener.last_accepted)
        conn.send([2.25, None, 'junk'])
        conn.send_bytes(b'hello')
        conn.send_bytes(array('i', [42, 1729]))
