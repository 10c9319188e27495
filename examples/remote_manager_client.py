# The Python docs' "Using a remote manager", the clients, with the options of
# remote_manager_client.cpp: --address HOST:PORT|PATH --authkey KEY [--get].
import sys
from multiprocessing import AuthenticationError
from multiprocessing.managers import BaseManager

get = '--get' in sys.argv
argv = [a for a in sys.argv[1:] if a != '--get']
args = dict(zip(argv[0::2], argv[1::2]))
host, sep, port = args.get('--address', 'localhost:50000').rpartition(':')
address = (host, int(port)) if sep and port.isdigit() else args['--address']
class QueueManager(BaseManager): pass
QueueManager.register('get_queue')
m = QueueManager(address=address,
                 authkey=args.get('--authkey', 'abracadabra').encode())
try:
    m.connect()
except AuthenticationError as e:
    print('AuthenticationError:', e, file=sys.stderr)
    sys.exit(1)
queue = m.get_queue()
if get:
    print(queue.get(timeout=20))
else:
    queue.put('hello')
