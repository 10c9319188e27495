// examples/sync_manager_server.cpp — a SyncManager served over the network:
// every typeid Python's SyncManager registers (dict, list, Value, Array,
// Namespace, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event,
// Barrier, Queue, JoinableQueue), served until the process is terminated.
// Clients connect with SyncManager(address, authkey).connect(), from C++
// (sync_manager_client) or from Python (sync_manager_client.py); a client
// with the wrong authkey fails the challenge and the server serves on.
//
// Python original (examples/sync_manager_server.py):
//   from multiprocessing.managers import SyncManager
//   m = SyncManager(address=('', 50000), authkey=b'abracadabra')
//   s = m.get_server()
//   s.serve_forever()
//
// Usage: sync_manager_server [--address HOST:PORT | --address PATH] [--authkey KEY]
#include "manager_options.hpp"
#include "multiprocessing.hpp"

namespace mp = multiprocessing;

int main(int argc, char** argv) {
  mp::freeze_support();
  ManagerOptions options = parse_manager_options(argc, argv);
  mp::managers::SyncManager m(options.address, options.authkey);
  mp::managers::Server s = m.get_server();
  s.serve_forever();
}
