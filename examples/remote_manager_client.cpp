// examples/remote_manager_client.cpp — the Python docs' "Using a remote
// manager", the clients: one puts 'hello' on the server's queue, another
// (--get) takes it and prints it.
//
// Python original (remote_manager_client.py):
//   from multiprocessing.managers import BaseManager
//   class QueueManager(BaseManager): pass
//   QueueManager.register('get_queue')
//   m = QueueManager(address=('foo.bar.org', 50000), authkey=b'abracadabra')
//   m.connect()
//   queue = m.get_queue()
//   queue.put('hello')                     # the other client: print(queue.get())
//
// Usage: remote_manager_client [--address HOST:PORT | --address PATH] [--authkey KEY] [--get]
// A wrong authkey is an AuthenticationError here (exit 1); the server serves on.
#include <cstdio>

#include "manager_options.hpp"
#include "multiprocessing.hpp"
#include "queue_manager.hpp"

namespace mp = multiprocessing;
namespace managers = multiprocessing::managers;

namespace {
// Python: QueueManager.register('get_queue'): no callable on the client side.
const bool registered = QueueManager::_registry().register_typeid("get_queue");
}  // namespace

int main(int argc, char** argv) {
  mp::freeze_support();
  ManagerOptions options = parse_manager_options(argc, argv);
  bool get = options.flags.count("--get") > 0;
  try {
    QueueManager m(options.address, options.authkey);
    m.connect();
    managers::AutoProxy queue = m.proxy("get_queue");
    if (get) {
      std::printf("%s\n", queue.call("get", {true, 20.0}).as<std::string>().c_str());
    } else {
      queue.call("put", {"hello"});
    }
  } catch (const mp::AuthenticationError& e) {
    std::fprintf(stderr, "AuthenticationError: %s\n", e.what());
    return 1;
  }
  return 0;
}
