// tests/exit_helper.cpp — a program that returns from main() while a daemonic
// and a non-daemonic child still run.  test_process.cpp's ExitFunctionAtParentExit
// runs it and checks what util._exit_function (registered with atexit) did:
// the daemon terminated, the other joined, both narrated at INFO level.
#include <cstdio>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

int main() {
  mp::log_to_stderr(mp::util::INFO);
  static mp::Process daemon({.target = [] { mp::os::sleep(100); }, .daemon = true});
  static mp::Process other({.target = [] {
    mp::os::sleep(0.2);
    std::fprintf(stderr, "non-daemon child done\n");
  }});
  daemon.start();
  other.start();
  std::fprintf(stderr, "daemon pid %d\n", static_cast<int>(*daemon.pid()));
  return 0;  // no join: _exit_function must do it
}
