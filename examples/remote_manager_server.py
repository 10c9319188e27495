# The Python docs' "Using a remote manager", the server, with the options of
# remote_manager_server.cpp: --address HOST:PORT|PATH --authkey KEY.
import sys
from multiprocessing.managers import BaseManager
from queue import Queue

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
host, sep, port = args.get('--address', ':50000').rpartition(':')
address = (host, int(port)) if sep and port.isdigit() else args['--address']
queue = Queue()
class QueueManager(BaseManager): pass
QueueManager.register('get_queue', callable=lambda: queue)
m = QueueManager(address=address,
                 authkey=args.get('--authkey', 'abracadabra').encode())
s = m.get_server()
s.serve_forever()
