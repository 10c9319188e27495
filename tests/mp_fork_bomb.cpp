// tests/mp_fork_bomb.cpp — CPython's Lib/test/mp_fork_bomb.py in C++: a program
// whose main() forgot to call multiprocessing::freeze_support().  Under spawn
// and forkserver a child is this program run again, so without a guard each
// child would start a child of its own: a fork bomb.  The library refuses
// instead (spawn.cpp, Python's _check_not_importing_main): the child fails with
// a RuntimeError.  Under fork there is no second run of main(), and "123" is
// printed.  TestNoForkBomb.Noforkbomb (test_spawn.cpp) runs it.
// Usage: mp_fork_bomb [start-method]   (default: spawn, as the Python script's)
#include <cstdio>
#include <string>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace mp_fork_bomb {
void foo() { std::printf("123\n"); }
}  // namespace mp_fork_bomb
MP_REGISTER_TARGET(mp_fork_bomb::foo);

int main(int argc, char** argv) {
  // No freeze_support() here: that is the point.  (Python's child sees the
  // parent's sys.argv; a C++ child sees its own command line, which starts
  // with --multiprocessing-fork: only a start method is taken from it.)
  std::string method = "spawn";
  if (argc > 1 && std::string(argv[1]).rfind("--", 0) != 0) method = argv[1];
  try {
    mp::set_start_method(method);
    mp::Process p({.target = mp_fork_bomb::foo});
    p.start();
    p.join();
    return *p.exitcode();
  } catch (const mp::Exception& e) {
    // The last line of Python's traceback.  (Under forkserver it is the fork
    // server that runs main() again and fails; the parent then reads EOF
    // from it, as Python's does.)
    std::fprintf(stderr, "%s: %s\n", e.python_name(), e.what());
    return 1;
  }
}
