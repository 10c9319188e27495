// examples/os_waitpid.cpp — seed lesson 002, os.waitpid: reaping children with
// waitpid(-1, WNOHANG).  (0, 0) means "children exist, none has ended yet";
// once both have ended, each call reaps one; then ChildProcessError.
//
// Python original:
//   for i in range(2):
//       if os.fork() == 0: time.sleep(0.2); os._exit(0)
//   print(os.waitpid(-1, os.WNOHANG))  # (0, 0)
//   time.sleep(0.1)
//   print(os.waitpid(-1, os.WNOHANG))  # (0, 0)
//   time.sleep(1)
//   print(os.waitpid(-1, os.WNOHANG))  # (7746, 0)
//   print(os.waitpid(-1, os.WNOHANG))  # (7747, 0)
//   try: print(os.waitpid(-1, os.WNOHANG))
//   except OSError as err: print(err)  # [Errno 10] No child processes
#include <sys/wait.h>

#include <cstdio>
#include <cstring>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"

namespace os = multiprocessing::os;

static void print_waitpid() {
  auto [pid, status] = os::waitpid(-1, WNOHANG);
  std::printf("(%d, %d)\n", static_cast<int>(pid), status);
  std::fflush(stdout);
}

int main() {
  for (int i = 0; i < 2; ++i) {
    std::fflush(stdout);  // nothing buffered may be copied into the child
    if (os::fork() == 0) {  // the child
      os::sleep(0.2);
      os::_exit(0);
    }
  }
  print_waitpid();  // (0, 0)
  os::sleep(0.1);
  print_waitpid();  // (0, 0)
  os::sleep(1);
  print_waitpid();  // (pid, 0)
  print_waitpid();  // (pid, 0)
  try {
    print_waitpid();
  } catch (const multiprocessing::ChildProcessError& err) {
    // Python's str(err): "[Errno 10] No child processes" (what() also names the call)
    std::printf("[Errno %d] %s\n", err.errno_value(), std::strerror(err.errno_value()));
  }
  return 0;
}
