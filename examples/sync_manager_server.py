# examples/sync_manager_server.py: a SyncManager served over the network,
# with the options of sync_manager_server.cpp: --address HOST:PORT|PATH
# --authkey KEY.
from multiprocessing.managers import SyncManager

from manager_options import parse_manager_options

address, authkey, _ = parse_manager_options(default_host='')
m = SyncManager(address=address, authkey=authkey)
s = m.get_server()
s.serve_forever()
