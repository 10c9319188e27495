// examples/add_sub_lock.cpp — seed lesson 002 ("multiprocessing Lock", plock.py):
// one process adds 1 a thousand times, another subtracts 1 a thousand times,
// each step a read, a sleep and a write of a shared Value('i', 0), all under
// one Lock.  However the two interleave, the final value is 0.
//
// Python original:
//   shared_variable = multiprocessing.Value('i', 0)
//   lock = multiprocessing.Lock()
//   def process_with_lock(op, name):
//       for i in range(1000):
//           lock.acquire()
//           try:
//               if op == "add":   temp = shared_variable.value + 1
//               elif op == "sub": temp = shared_variable.value - 1
//               else: raise ValueError("")
//               time.sleep(0.001)
//               shared_variable.value = temp
//               if (i+1) % 200 == 0: print(name, i+1, shared_variable.value)
//           finally:
//               lock.release()
//   p1 = Process(target=process_with_lock, args=("add", "process-1"))
//   p2 = Process(target=process_with_lock, args=("sub", "process-2"))
//   ... start, join ...
//   print("Final value of shared_variable:", shared_variable.value)
//   print(f"耗时: {end_time - start_time} 秒")
//
// Usage: add_sub_lock [--sleep SECONDS]   (the pause inside the lock; 0.001 by default)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

int main(int argc, char** argv) {
  double pause = 0.001;
  if (argc == 3 && std::strcmp(argv[1], "--sleep") == 0) pause = std::atof(argv[2]);

  auto shared_variable = mp::Value<'i'>(0);
  auto lock = mp::Lock();

  auto process_with_lock = [=](const std::string& op, const std::string& name) mutable {
    for (int i = 0; i < 1000; ++i) {
      lock.acquire();
      try {
        int temp = 0;
        if (op == "add") temp = shared_variable.value() + 1;
        else if (op == "sub") temp = shared_variable.value() - 1;
        else throw mp::ValueError("");
        mp::os::sleep(pause);
        shared_variable.set_value(temp);
        if ((i + 1) % 200 == 0) {
          std::printf("%s %d %d\n", name.c_str(), i + 1, shared_variable.value());
          std::fflush(stdout);  // python -u: unbuffered, as the seed runs it
        }
      } catch (...) {
        lock.release();  // Python: finally: lock.release()
        throw;
      }
      lock.release();
    }
  };

  mp::Process p1({.target = [&] { process_with_lock("add", "process-1"); }});
  mp::Process p2({.target = [&] { process_with_lock("sub", "process-2"); }});

  double start_time = mp::os::monotonic();
  p1.start();
  p2.start();
  p1.join();
  p2.join();
  double end_time = mp::os::monotonic();

  std::printf("Final value of shared_variable: %d\n", shared_variable.value());
  std::printf("耗时: %g 秒\n", end_time - start_time);
  return 0;
}
