// examples/value_scheduler.cpp — seed lesson 002, "例 1: 进程间共享数据": worker
// processes print their Value every second, and a scheduler thread in the
// parent raises each worker's Value every five seconds.  The workers see the
// new values because a Value lives in shared memory.  (The seed's commented-out
// first attempt kept a plain int in each worker, `self.a += 1`: the scheduler
// then raised the parent's copy, and the workers kept printing 1.)
//
// Python original (it runs forever; this port stops after --rounds rounds):
//   class MyWorker(Process):
//       def __init__(self, a):
//           super().__init__(daemon=True)
//           self.a = a
//       def run(self):
//           while True:
//               time.sleep(1)
//               print("from worker: ", self.a.value)
//   class Scheduler:
//       def __init__(self, num_workers=1): ...
//       def update_worker(self):
//           while True:
//               time.sleep(5)
//               for worker in self.workers:
//                   worker.a.value += 1
//                   print("from scheduler:", worker.a.value)
//       def start(self):
//           for i in range(self.num_workers):
//               a = Value('i', 1)
//               self.workers.append(MyWorker(a))
//           for worker in self.workers: worker.start()
//           Thread(target=self.update_worker).start()
//   s = Scheduler(num_workers=2); s.start()
//
// Usage: value_scheduler [--tick SECONDS] [--rounds N]
//   tick: the workers' period (1 s in the seed; the scheduler's is 5 ticks);
//   rounds: how many times the scheduler raises the values (2 by default).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

double tick = 1.0;
int rounds = 2;

/// Python: class MyWorker(Process), a daemon that prints its Value forever.
class MyWorker : public mp::Process {
 public:
  explicit MyWorker(mp::sharedctypes::Synchronized<int> a) : a(std::move(a)) { set_daemon(true); }

  void run() override {
    for (;;) {
      mp::os::sleep(tick);
      std::printf("from worker:  %d\n", a.value());  // print("from worker: ", ...): two spaces
      std::fflush(stdout);
    }
  }

  mp::sharedctypes::Synchronized<int> a;  // Python: self.a
};

/// Python: class Scheduler.
class Scheduler {
 public:
  explicit Scheduler(int num_workers = 1) : num_workers_(num_workers) {}

  /// Python: update_worker, run by a thread (rounds times here, not forever).
  void update_worker() {
    for (int round = 0; round < rounds; ++round) {
      mp::os::sleep(5 * tick);
      for (auto& worker : workers_) {
        // Python: worker.a.value += 1 (one scheduler thread: no race to lose)
        worker->a.set_value(worker->a.value() + 1);
        std::printf("from scheduler: %d\n", worker->a.value());
        std::fflush(stdout);
      }
    }
  }

  void start() {
    for (int i = 0; i < num_workers_; ++i) {
      auto a = mp::Value<'i'>(1);  // i 表示整数 (i: an integer)
      workers_.push_back(std::make_unique<MyWorker>(a));
    }
    for (auto& worker : workers_) worker->start();
    // Half a tick after the workers (the seed starts both at once): then no
    // worker's print falls on the instant of an update, and the lines come in
    // the same order every run.
    mp::os::sleep(tick / 2);
    // Python: Thread(target=self.update_worker).start()
    thread_ = std::make_unique<mp::dummy::Process>(
        mp::ProcessOptions{.target = [this] { update_worker(); }});
    thread_->start();
  }

  /// Not in the seed (which never ends): wait for the scheduler's last round.
  void join() { thread_->join(); }

 private:
  int num_workers_;
  std::vector<std::unique_ptr<MyWorker>> workers_;
  std::unique_ptr<mp::dummy::Process> thread_;
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--tick") == 0) tick = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  Scheduler s(2);
  s.start();
  s.join();
  // Let the workers print the last values, then leave: the daemonic workers
  // are terminated at exit, as Python's are.
  mp::os::sleep(2 * tick);
  return 0;
}
