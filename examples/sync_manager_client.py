# examples/sync_manager_client.py: a client of sync_manager_server, with
# the options of sync_manager_client.cpp: --address HOST:PORT|PATH
# --authkey KEY.  A dict, a list and a Lock in the server, filled and read.
from multiprocessing.managers import SyncManager

from manager_options import connect, parse_manager_options

address, authkey, _ = parse_manager_options(default_host='localhost')
m = SyncManager(address=address, authkey=authkey)
connect(m)
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
