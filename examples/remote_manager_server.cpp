// examples/remote_manager_server.cpp — the Python docs' "Using a remote
// manager", the server: one queue, shared through a manager reached over the
// network, served until the process is terminated.
//
// Python original (remote_manager_server.py):
//   from multiprocessing.managers import BaseManager
//   from queue import Queue
//   queue = Queue()
//   class QueueManager(BaseManager): pass
//   QueueManager.register('get_queue', callable=lambda: queue)
//   m = QueueManager(address=('', 50000), authkey=b'abracadabra')
//   s = m.get_server()
//   s.serve_forever()
//
// Usage: remote_manager_server [--address HOST:PORT | --address PATH] [--authkey KEY]
// Either side can be swapped for the Python original; the wire is CPython's.
#include "manager_options.hpp"
#include "multiprocessing.hpp"
#include "queue_manager.hpp"

namespace mp = multiprocessing;
namespace managers = multiprocessing::managers;

namespace {
/// Python: callable=lambda: queue: every get_queue() is the one queue.  It is
/// the queue.Queue the SyncManager's Queue typeid makes.
std::shared_ptr<managers::Referent> get_queue(const mp::Args&, const managers::Kwds&) {
  static const std::shared_ptr<managers::Referent> queue =
      managers::SyncManager::_registry().get("Queue").callable({}, {});
  return queue;
}
const bool registered = QueueManager::_registry().register_typeid("get_queue", &get_queue);
}  // namespace

int main(int argc, char** argv) {
  mp::freeze_support();
  ManagerOptions options = parse_manager_options(argc, argv);
  QueueManager m(options.address, options.authkey);
  mp::managers::Server s = m.get_server();
  s.serve_forever();
}
