// examples/sync_manager_client.cpp — a client of sync_manager_server (or of
// the Python original): it connects, makes a dict, a list and a Lock in the
// server, fills the dict and the list while holding the Lock, and prints what
// the server holds.  Each call is a request to the server and its reply.
//
// Python original (examples/sync_manager_client.py):
//   m = SyncManager(address=('localhost', 50000), authkey=b'abracadabra')
//   m.connect()
//   d, l, lock = m.dict(), m.list(), m.Lock()
//   with lock:
//       d['hello'] = 'world'
//       d['n'] = 1
//       l.append('a')
//       l.extend([1, 2])
//       print('second acquire, not blocking:', lock.acquire(False))
//   print(d)
//   print(l)
//   print('acquire after release:', lock.acquire(timeout=5))
//   lock.release()
//
// Usage: sync_manager_client [--address HOST:PORT | --address PATH] [--authkey KEY]
// A wrong authkey is an AuthenticationError here (exit 1); the server serves on.
#include <cstdint>
#include <cstdio>
#include <mutex>

#include "manager_options.hpp"
#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {
const char* py_bool(bool b) { return b ? "True" : "False"; }
}  // namespace

int main(int argc, char** argv) {
  mp::freeze_support();
  ManagerOptions options = parse_manager_options(argc, argv);
  try {
    mp::managers::SyncManager m(options.address, options.authkey);
    m.connect();
    mp::managers::DictProxy d = m.dict();
    mp::managers::ListProxy l = m.list();
    mp::managers::AcquirerProxy lock = m.Lock();
    {
      std::lock_guard<mp::managers::AcquirerProxy> with(lock);  // Python: with lock:
      d.setitem("hello", "world");
      d.setitem("n", std::int64_t{1});
      l.append("a");
      l.extend(mp::Object::List{std::int64_t{1}, std::int64_t{2}});
      // The server's Lock is a threading.Lock: not reentrant, so a second
      // acquire without blocking fails while this client holds it.
      std::printf("second acquire, not blocking: %s\n", py_bool(lock.acquire(false)));
    }
    std::printf("%s\n%s\n", d.str().c_str(), l.str().c_str());
    std::printf("acquire after release: %s\n", py_bool(lock.acquire(true, 5.0)));
    lock.release();
  } catch (const mp::AuthenticationError& e) {
    std::fprintf(stderr, "AuthenticationError: %s\n", e.what());
    return 1;
  }
  return 0;
}
