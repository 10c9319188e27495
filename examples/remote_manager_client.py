# The Python docs' "Using a remote manager", the clients, with the options of
# remote_manager_client.cpp: --address HOST:PORT|PATH --authkey KEY [--get].
from multiprocessing.managers import BaseManager

from manager_options import connect, parse_manager_options

address, authkey, flags = parse_manager_options(default_host='localhost')
class QueueManager(BaseManager): pass
QueueManager.register('get_queue')
m = QueueManager(address=address, authkey=authkey)
connect(m)
queue = m.get_queue()
if '--get' in flags:
    print(queue.get(timeout=20))
else:
    queue.put('hello')
