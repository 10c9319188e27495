// tests/exit_helper.cpp — a program that returns from main() while a daemonic
// and a non-daemonic child still run.  test_process.cpp's ExitFunctionAtParentExit
// runs it and checks what util._exit_function (registered with atexit) did:
// the daemon terminated, the other joined, both narrated at INFO level.
// Usage: exit_helper [start-method]: the children are started with that
// method (default: the platform's), so the test runs it under each of them.
#include <cstdio>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace exit_helper {
void sleep_long() { mp::os::sleep(100); }
void sleep_then_say_done() {
  mp::os::sleep(0.2);
  std::fprintf(stderr, "non-daemon child done\n");
}
}  // namespace exit_helper
MP_REGISTER_TARGET(exit_helper::sleep_long);
MP_REGISTER_TARGET(exit_helper::sleep_then_say_done);

int main(int argc, char** argv) {
  mp::freeze_support();  // a spawned child runs its target here and exits
  if (argc > 1) mp::set_start_method(std::string(argv[1]));
  mp::log_to_stderr(mp::util::INFO);
  static mp::Process daemon({.target = exit_helper::sleep_long, .daemon = true});
  static mp::Process other({.target = exit_helper::sleep_then_say_done});
  daemon.start();
  other.start();
  std::fprintf(stderr, "daemon pid %d\n", static_cast<int>(*daemon.pid()));
  return 0;  // no join: _exit_function must do it
}
