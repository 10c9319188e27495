# examples/sync_manager_server.py: a SyncManager served over the network,
# with the options of sync_manager_server.cpp: --address HOST:PORT|PATH
# --authkey KEY.
import sys
from multiprocessing.managers import SyncManager

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
host, sep, port = args.get('--address', ':50000').rpartition(':')
address = (host, int(port)) if sep and port.isdigit() else args['--address']
m = SyncManager(address=address,
                authkey=args.get('--authkey', 'abracadabra').encode())
s = m.get_server()
s.serve_forever()
