// bench/spawn_child.cpp — the smallest program a spawned child can be: main()
// calls freeze_support() and nothing else, and `noop` is registered under the
// name bench_process gives its own.  bench_process's BM_SpawnStartJoin_SmallExe
// makes it the spawn executable (spawn::set_executable, Python's
// multiprocessing.set_executable), so that its children do not load Google
// Benchmark; BM_RawPosixSpawnSmallExe runs it with no arguments, when
// freeze_support() returns at once: its exec and loading alone.
#include <multiprocessing.hpp>

namespace {

void noop() {}
MP_REGISTER_TARGET(noop);

}  // namespace

int main() {
  multiprocessing::freeze_support();
  return 0;
}
