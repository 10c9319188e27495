# examples/sync_manager_client.py: a client of sync_manager_server, with
# the options of sync_manager_client.cpp: --address HOST:PORT|PATH
# --authkey KEY.  A dict, a list and a Lock in the server, filled and read.
import sys
from multiprocessing import AuthenticationError
from multiprocessing.managers import SyncManager

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
host, sep, port = args.get('--address', 'localhost:50000').rpartition(':')
address = (host, int(port)) if sep and port.isdigit() else args['--address']
m = SyncManager(address=address,
                authkey=args.get('--authkey', 'abracadabra').encode())
try:
    m.connect()
except AuthenticationError as e:
    print('AuthenticationError:', e, file=sys.stderr)
    sys.exit(1)
d, l, lock = m.dict(), m.list(), m.Lock()
with lock:
    d['hello'] = 'world'
    d['n'] = 1
    l.append('a')
    l.extend([1, 2])
    print('second acquire, not blocking:', lock.acquire(False))
print(d)
print(l)
print('acquire after release:', lock.acquire(timeout=5))
lock.release()
