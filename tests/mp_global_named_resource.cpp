// tests/mp_global_named_resource.cpp — the script of CPython's
// TestNamedResource.test_global_named_resource_spawn (gh-90549) in C++: a
// spawn-context Semaphore in a global, and a spawned child.  A spawned C++
// child runs every static initialiser of the program again, so the child
// makes a named semaphore of its own too; neither may be left behind for the
// resource tracker to warn about ("There appear to be 1 leaked semaphore
// objects to clean up at shutdown").  TestNamedResource.GlobalNamedResourceSpawn
// (test_spawn.cpp) runs it and expects an empty stderr.
#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace mp_global_named_resource {
mp::synchronize::Semaphore global_resource(1, &mp::get_context("spawn"));
void submain() {}
}  // namespace mp_global_named_resource
MP_REGISTER_TARGET(mp_global_named_resource::submain);

int main() {
  mp::freeze_support();
  auto p = mp::get_context("spawn").Process({.target = mp_global_named_resource::submain});
  p->start();
  p->join();
  return *p->exitcode();
}
