// examples/counter_lesson.cpp — seed lesson 001 ("利用Value在不同进程中同步变量"):
// a counter Value('i', 0) raised by 10 processes, 20 times each, should end at
// 200.  Without a lock it usually does not: `v.value += 1` reads the value
// (taking and dropping the Value's lock), then writes it back (taking the lock
// again), and another process can read the same old value in between, so one
// of the two increments is lost.  (Compiled C++ leaves a much narrower window
// than CPython's interpreter: see main_without_lock_wide_window.)  The seed's three fixes all reach 200: a Lock
// held around the increment, the Value's own get_lock(), and a RawValue (no
// lock of its own) with a Lock.
//
// Python original (the seed runs each main() 10 times):
//   def count(v):
//       for i in range(20):
//           time.sleep(0.01)
//           v.value += 1
//   def main():
//       value = Value('i', 0)
//       processes = [Process(target=count, args=(value,)) for i in range(10)]
//       for p in processes: p.start()
//       for p in processes: p.join()
//       print(value.value)
//   # fix 1: def count(x, lock): ... with lock: x.value += 1       (lock = Lock())
//   # fix 2: ... with counter.get_lock(): x.value += 1
//   # fix 3: multiprocessing.RawValue('i', 0) guarded by a Lock
//
// Usage: counter_lesson [--runs N]   (N runs of each form; the seed's 10 by default)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

const int kProcesses = 10;
const int kIncrements = 20;

// [counter-run-processes]
/// Python: processes = [Process(target=count, ...) for i in range(10)]; start all; join all.
void run_processes(const std::function<void()>& count) {
  std::vector<std::unique_ptr<mp::Process>> processes;
  for (int i = 0; i < kProcesses; ++i) {
    processes.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{.target = count}));
  }
  for (auto& p : processes) p->start();
  for (auto& p : processes) p->join();
}
// [counter-run-processes]

// [counter-without-lock]
/// The lesson as the seed first writes it: no lock around the increment.
int main_without_lock() {
  auto value = mp::Value<'i'>(0);
  run_processes([value] {
    for (int i = 0; i < kIncrements; ++i) {
      mp::os::sleep(0.01);
      value.set_value(value.value() + 1);  // v.value += 1: a read, then a write
    }
  });
  return value.value();
}
// [counter-without-lock]

// [counter-wide-window]
/// The same race, made wide.  In CPython, `v.value += 1` runs many bytecodes
/// between the read and the write; compiled C++ runs a few instructions, so
/// the window in which another process can slip in is ~100 times narrower and
/// the lost updates are rare (often none in ten runs).  A pause between the
/// read and the write (as seed 002's plock.py has: temp = v + 1; sleep; v = temp)
/// shows what the window does when it is as wide as the interpreter makes it.
int main_without_lock_wide_window() {
  auto value = mp::Value<'i'>(0);
  run_processes([value] {
    for (int i = 0; i < kIncrements; ++i) {
      mp::os::sleep(0.01);
      int temp = value.value() + 1;
      mp::os::sleep(0.0005);
      value.set_value(temp);
    }
  });
  return value.value();
}
// [counter-wide-window]

// [counter-with-lock]
/// Fix 1: `with lock: x.value += 1`, with lock = Lock().
int main_with_lock() {
  auto counter = mp::Value<'i'>(0);
  auto lock = mp::Lock();
  run_processes([counter, lock]() mutable {
    for (int i = 0; i < kIncrements; ++i) {
      mp::os::sleep(0.01);
      std::lock_guard guard(lock);
      counter.set_value(counter.value() + 1);
    }
  });
  return counter.value();
}
// [counter-with-lock]

// [counter-with-get-lock]
/// Fix 2: the Value's own lock, `with counter.get_lock(): x.value += 1`.
int main_with_get_lock() {
  auto counter = mp::Value<'i'>(0);
  run_processes([counter] {
    for (int i = 0; i < kIncrements; ++i) {
      mp::os::sleep(0.01);
      std::lock_guard guard(counter.get_lock());
      counter.set_value(counter.value() + 1);
    }
  });
  return counter.value();
}
// [counter-with-get-lock]

// [counter-raw-value]
/// Fix 3: RawValue('i', 0) (no lock of its own) with a Lock.
int main_raw_value_and_lock() {
  auto counter = mp::RawValue<'i'>(0);
  auto lock = mp::Lock();
  run_processes([counter, lock]() mutable {
    for (int i = 0; i < kIncrements; ++i) {
      mp::os::sleep(0.01);
      std::lock_guard guard(lock);
      counter.set_value(counter.value() + 1);
    }
  });
  return counter.value();
}
// [counter-raw-value]

}  // namespace

int main(int argc, char** argv) {
  int runs = 10;
  if (argc == 3 && std::strcmp(argv[1], "--runs") == 0) runs = std::atoi(argv[2]);

  struct Form {
    const char* title;
    int (*main)();
  };
  const Form forms[] = {
      {"Value('i', 0), no lock", main_without_lock},
      {"Value('i', 0), no lock, 0.5 ms between read and write", main_without_lock_wide_window},
      {"Value('i', 0) with a Lock", main_with_lock},
      {"Value('i', 0) with get_lock()", main_with_get_lock},
      {"RawValue('i', 0) with a Lock", main_raw_value_and_lock},
  };
  for (const Form& form : forms) {
    std::printf("%s:\n", form.title);
    for (int i = 0; i < runs; ++i) std::printf("%d\n", form.main());
    std::fflush(stdout);
  }
  return 0;
}
