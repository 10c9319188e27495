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
#include <cstring>
#include <string>

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
  std::string address = "localhost:50000";
  std::string authkey = "abracadabra";
  bool get = false;
  for (int a = 1; a < argc; ++a) {
    if (std::strcmp(argv[a], "--get") == 0) get = true;
    if (a + 1 < argc && std::strcmp(argv[a], "--address") == 0) address = argv[a + 1];
    if (a + 1 < argc && std::strcmp(argv[a], "--authkey") == 0) authkey = argv[a + 1];
  }
  try {
    QueueManager m(mp::connection::parse_address(address), mp::Bytes(authkey));
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
