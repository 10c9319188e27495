// examples/global_counter.cpp — seed lesson 004: a global counter raised by five
// threads and by five processes.  Threads share the global (5); each process
// raises its own copy and the parent's stays 0.  Threads also share the pid;
// each process has its own.
//
// Python original (Python 2 in the seed, printed here in Python 3's form):
//   count_thread = 0; count_process = 0
//   def worker1(sign, lock): global count_thread; ...count_thread += 1; print(sign, os.getpid())
//   def worker2(sign, lock): global count_process; ...count_process += 1; print(sign, os.getpid())
//   ... 5 threads with worker1, 5 processes with worker2, then
//   print(count_thread)    # 5
//   print(count_process)   # 0
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

int count_thread = 0;
int count_process = 0;

void worker1(std::string sign, mp::dummy::Lock* lock) {
  lock->acquire();
  count_thread += 1;
  std::printf("%s %d\n", sign.c_str(), static_cast<int>(::getpid()));
  std::fflush(stdout);
  lock->release();
}

void worker2(std::string sign, mp::synchronize::Lock lock) {
  lock.acquire();
  count_process += 1;  // this process's own copy of the global
  std::printf("%s %d\n", sign.c_str(), static_cast<int>(::getpid()));
  std::fflush(stdout);
  lock.release();
}

}  // namespace

int main() {
  std::printf("Main: %d\n", static_cast<int>(::getpid()));

  // Multi-thread
  std::vector<std::unique_ptr<mp::dummy::Process>> record;
  mp::dummy::Lock lock;
  for (int i = 0; i < 5; ++i) {
    record.push_back(std::make_unique<mp::dummy::Process>(
        mp::ProcessOptions{.target = [&lock] { worker1("thread", &lock); }}));
    record.back()->start();
  }
  for (auto& thread : record) thread->join();

  // Multi-process
  std::vector<std::unique_ptr<mp::Process>> processes;
  auto process_lock = mp::Lock();  // Python: lock = multiprocessing.Lock()
  for (int i = 0; i < 5; ++i) {
    processes.push_back(std::make_unique<mp::Process>(
        mp::ProcessOptions{.target = [process_lock] { worker2("process", process_lock); }}));
    processes.back()->start();
  }
  for (auto& process : processes) process->join();

  std::printf("%d\n%d\n", count_thread, count_process);
  return 0;
}
