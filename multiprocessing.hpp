// multiprocessing.hpp — the umbrella header: what `import multiprocessing` gives.
// Mirrors CPython 3.11 Lib/multiprocessing/__init__.py, which copies the public
// names of the default context into the package namespace.  Library code
// includes the module headers it uses; this header is for users.
#pragma once

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/dummy/dummy.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/forkserver.hpp"
#include "multiprocessing/heap.hpp"
#include "multiprocessing/managers.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/popen_fork.hpp"
#include "multiprocessing/popen_forkserver.hpp"
#include "multiprocessing/popen_spawn_posix.hpp"
#include "multiprocessing/pool.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/queues.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/resource_sharer.hpp"
#include "multiprocessing/resource_tracker.hpp"
#include "multiprocessing/shared_memory.hpp"
#include "multiprocessing/sharedctypes.hpp"
#include "multiprocessing/synchronize.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing {
/// Python: multiprocessing.SUBDEBUG / SUBWARNING (module constants).
inline constexpr int SUBDEBUG = util::SUBDEBUG;
inline constexpr int SUBWARNING = util::SUBWARNING;
}  // namespace multiprocessing
