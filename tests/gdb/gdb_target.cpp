// tests/gdb/gdb_target.cpp — the program that tests/gdb/gdb_follow_fork.sh runs
// under gdb, to prove what docs/debugging.md tells a reader to do: start one
// child with the 'fork' method, stop in BaseProcess::_bootstrap inside that
// child, and let both processes finish.  `gdb_target spawn` and `gdb_target
// forkserver` start the child with those methods instead
// (tests/gdb/wait_for_debugger.sh uses all three).
//
// Exit status: 0 when the child's exitcode is 0, else 1.
#include <cstdio>
#include <optional>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

namespace {

// The child's work.  A named function (not a lambda), so that a reader can
// also try `break child_work` from the debugging page.
void child_work(int value) {
  std::printf("gdb_target: child %d got %d\n", static_cast<int>(mp::os::getpid()), value);
}
MP_REGISTER_TARGET(child_work);  // found by name in a spawned child

}  // namespace

int main(int argc, char** argv) {
  mp::freeze_support();  // in a spawned child: run the target and exit here
  auto& ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  auto process = ctx.Process({.target = child_work, .args = {42}});
  mp::BaseProcess& p = *process;
  p.start();  // Python: p.start(): Popen._launch forks; the child runs _bootstrap
  p.join();
  std::optional<int> code = p.exitcode();
  std::printf("gdb_target: child exitcode %s\n", code ? std::to_string(*code).c_str() : "None");
  return code == 0 ? 0 : 1;
}
