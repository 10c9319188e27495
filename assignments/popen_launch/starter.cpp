// assignments/popen_launch/starter.cpp — your Popen::_launch (see README.md here).
//
// Build with this file in place of the library's function, then grade:
//   cmake --preset debug -DMP_ASSIGNMENT=popen_launch
//   cmake --build --preset debug -j2
//   ctest --preset debug -L assignment_popen_launch --output-on-failure
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/popen_fork.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::popen_fork {

// Python (popen_fork.py):
//     def _launch(self, process_obj):
//         code = 1
//         parent_r, child_w = os.pipe()
//         child_r, parent_w = os.pipe()
//         self.pid = os.fork()
//         if self.pid == 0:
//             try:
//                 os.close(parent_r); os.close(parent_w)
//                 code = process_obj._bootstrap(parent_sentinel=child_r)
//             finally:
//                 os._exit(code)
//         else:
//             os.close(child_w); os.close(child_r)
//             self.finalizer = util.Finalize(self, util.close_fds, (parent_r, parent_w))
//             self.sentinel = parent_r
//
// What this class gives you: `pid` (set it), `sentinel_` (set it to the fd
// that reads EOF when the child ends), `finalizer` (a util::Finalize that
// closes the parent's two fds).  os::pipe() returns two owning fds,
// os::fork() and os::_exit() are the system calls.
void Popen::_launch(BaseProcess& process_obj) {
  (void)process_obj;
  throw NotImplementedError(
      "assignment popen_launch: Popen::_launch is still the starter's. Write it: two pipes, "
      "fork, the child runs _bootstrap(child_r) and _exit(code), the parent closes the child's "
      "ends and keeps parent_r as the sentinel (assignments/popen_launch/README.md)");
}

}  // namespace multiprocessing::popen_fork
