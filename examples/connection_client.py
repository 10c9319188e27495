# examples/connection_client.py — the Python docs' Client, with the same options
# as connection_client.cpp, so that either side can be swapped.
import argparse
from array import array
from multiprocessing.connection import Client


def parse_address(text):
    host, sep, port = text.rpartition(':')
    if sep and '/' not in text and port.isdigit():
        return (host, int(port))
    return text


parser = argparse.ArgumentParser()
parser.add_argument('--address', default='localhost:6000')
parser.add_argument('--authkey', default='secret password')
args = parser.parse_args()

with Client(parse_address(args.address), authkey=args.authkey.encode()) as conn:
    print(conn.recv())                  # => [2.25, None, 'junk']
    print(conn.recv_bytes())            # => b'hello'
    arr = array('i', [0, 0, 0, 0, 0])
    print(conn.recv_bytes_into(arr))    # => 8
    print(arr)                          # => array('i', [42, 1729, 0, 0, 0])
