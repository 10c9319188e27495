# The Python docs' "Using a remote manager", the server, with the options of
# remote_manager_server.cpp: --address HOST:PORT|PATH --authkey KEY.
from multiprocessing.managers import BaseManager
from queue import Queue

from manager_options import parse_manager_options

address, authkey, _ = parse_manager_options(default_host='')
queue = Queue()
class QueueManager(BaseManager): pass
QueueManager.register('get_queue', callable=lambda: queue)
m = QueueManager(address=address, authkey=authkey)
s = m.get_server()
s.serve_forever()
