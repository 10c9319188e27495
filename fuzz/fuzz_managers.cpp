// fuzz/fuzz_managers.cpp
// libFuzzer target: a manager server's handling of requests
// (multiprocessing/managers.cpp, Server::serve_client and Server::_dispatch)
// with arbitrary bytes as what a client sends.  One Server, made once, with
// SyncManager's registry (its "dict" typeid and the "Iterator" that a dict's
// __iter__ returns), serves every input in this process: no server process
// is started.  Per input:
//  - a fresh dict is created on the server (Server::create, as a client's
//    manager.dict() does) and the input's 12 bytes "dict0ident00", wherever
//    they appear, become that dict's ident (12 hex digits on x86-64), so the
//    seeds' requests (fuzz/corpus/managers/) reach the dict's methods;
//  - the input is written into the far end of a socketpair, whose writing
//    side is then shut down, and serve_client runs on the near end until it
//    returns (EOF, a broken stream); a thread drains the replies;
//  - a request carrying a proxy connects to the proxy's manager, as in
//    Python: over AF_UNIX only (see connect() below);
//  - then the dict, and whatever the requests made (iterators), are
//    released with decref, and the server must hold no object.
// What it checks: serve_client returns (a bad request fails that call with
// a '#TRACEBACK' or '#ERROR' reply, a broken stream ends that connection
// only); nothing escapes it, crashes or hangs; the heap used at once stays
// within 1 MiB + 1024 bytes per input byte; no object outlives its input.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "fuzz/support.hpp"
#include "multiprocessing/connection.hpp"
#include "multiprocessing/managers.hpp"

namespace mp = multiprocessing;
namespace connection = multiprocessing::connection;
namespace managers = multiprocessing::managers;

/// The target stays off the network.  A request may carry a proxy whose
/// token names any address, and unpickling it connects there, as Python's
/// RebuildProxy does; an AF_INET address that routes nowhere would hold the
/// input until the connection's 20 s deadline (CONNECTION_TIMEOUT), past
/// libFuzzer's -timeout.  This definition of connect(2), which the library's
/// calls reach instead of the C library's, refuses AF_INET and AF_INET6 at
/// once (ENETUNREACH) and makes the system call for AF_UNIX.
extern "C" int connect(int fd, const struct sockaddr* address, socklen_t length) {
  if (address != nullptr && (address->sa_family == AF_INET || address->sa_family == AF_INET6)) {
    errno = ENETUNREACH;
    return -1;
  }
  // The system call itself, as the C library's connect makes it.
  return static_cast<int>(::syscall(SYS_connect, fd, address, length));
}

namespace {

/// The ident the seeds name; replaced by the real dict's ident.
constexpr std::string_view kPlaceholder = "dict0ident00";

managers::Server& server() {
  // An abstract AF_UNIX name: no socket file to leave behind.  Nothing
  // connects to it; serve_client is called directly.
  static managers::Server instance(managers::SyncManager::_registry(),
                                   connection::Address{std::string("\0mp-fuzz-managers-", 19) + std::to_string(::getpid())},
                                   mp::Bytes("fuzz authkey"));
  return instance;
}

/// decref every object the server still holds, as many times as its refcount
/// (what the proxies of a client that went away would have done).
void release_all(connection::Connection& c) {
  static const std::regex line("^  ([0-9a-f]+):       refcount=([0-9]+)$");
  std::istringstream info(server().debug_info(c));
  std::string text;
  while (std::getline(info, text)) {
    std::smatch m;
    if (!std::regex_match(text, m, line)) continue;
    for (long n = std::stol(m[2].str()); n > 0; --n) server().decref(c, m[1].str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  server();
  fuzz::HeapPeak::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::HeapPeak::start();
  {
    auto [near, far] = connection::Pipe(true);
    mp::Object created = server().create(near, "dict", {}, {});
    std::string ident = std::get<mp::Object::Tuple>(created.variant()).items[0].as<std::string>();  // (ident, exposed)

    std::string input(reinterpret_cast<const char*>(data), size);
    if (ident.size() == kPlaceholder.size()) {
      for (std::size_t at = input.find(kPlaceholder); at != std::string::npos; at = input.find(kPlaceholder, at)) {
        input.replace(at, kPlaceholder.size(), ident);
      }
    }
    fuzz::send_all_then_eof(far.fileno(), input);  // the client's requests, then EOF
    // The replies: read and dropped, so that serve_client never blocks on a
    // full socket.  Ends at EOF, once the near end is closed below.
    std::thread drain([fd = far.fileno()] {
      char sink[65536];
      while (::read(fd, sink, sizeof sink) > 0) {
      }
    });
    server().serve_client(near);
    release_all(near);
    std::int64_t left = server().number_of_objects(near);
    near.close();
    drain.join();
    if (left != 0) {
      std::fprintf(stderr, "fuzz_managers: the server still holds %lld objects\n", static_cast<long long>(left));
      std::abort();
    }
  }
  fuzz::HeapPeak::check("fuzz_managers", size, 1 << 20, 1024);
  return 0;
}
