// examples/sync_primitives.cpp — the synchronize module's objects between
// processes: a Lock is not reentrant and an RLock is; an Event wakes every
// process waiting on it (seed 002's threading.Event example, with processes);
// a Condition lets a process sleep until another changes shared state and
// notifies it.  Each object is a POSIX semaphore (or several) that the
// children inherit.
//
// Python original (examples/sync_primitives.py):
//   lock, rlock = Lock(), RLock()
//   print('Lock:  acquire() ->', lock.acquire(),
//         '; again, not blocking ->', lock.acquire(False))
//   print('RLock: acquire() ->', rlock.acquire(),
//         '; again, not blocking ->', rlock.acquire(False))
//   def task(event, id):
//       print(f'Process {id} started. Waiting for the signal....')
//       event.wait()
//       print(f'Received signal. The process {id} was completed.')
//   event = Event(); two Process(target=task, args=(event, id)) started
//   print('Blocking the main process for a moment...'); sleep; event.set()
//   def consumer(cond, box):
//       with cond:
//           cond.wait_for(lambda: box.value != 0)
//           print(f'consumer: box.value = {box.value}')
//   with cond: box.value = 42; cond.notify_all(); print('producer: ...')
//
// Usage: sync_primitives [--pause SECONDS]   (how long the parent waits; 0.5)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);  // one write per line, and nothing left to copy into a child
}

const char* py_bool(bool b) { return b ? "True" : "False"; }

void task(mp::synchronize::Event event, int id) {
  say("Process " + std::to_string(id) + " started. Waiting for the signal....");
  event.wait();
  say("Received signal. The process " + std::to_string(id) + " was completed.");
}

void consumer(mp::synchronize::Condition cond, mp::sharedctypes::Synchronized<int> box) {
  std::lock_guard with(cond);  // Python: with cond:
  cond.wait_for([&] { return box.value() != 0; });
  say("consumer: box.value = " + std::to_string(box.value()));
}

}  // namespace

int main(int argc, char** argv) {
  double pause = 0.5;
  if (argc == 3 && std::strcmp(argv[1], "--pause") == 0) pause = std::atof(argv[2]);

  say("-- Lock and RLock --");
  auto lock = mp::Lock();
  auto rlock = mp::RLock();
  bool first = lock.acquire();
  say(std::string("Lock:  acquire() -> ") + py_bool(first) + "; again, not blocking -> " +
      py_bool(lock.acquire(false)));
  first = rlock.acquire();
  say(std::string("RLock: acquire() -> ") + py_bool(first) + "; again, not blocking -> " +
      py_bool(rlock.acquire(false)));
  lock.release();
  rlock.release();
  rlock.release();

  say("-- Event --");
  auto event = mp::Event();
  std::vector<std::unique_ptr<mp::Process>> tasks;
  for (int id = 1; id <= 2; ++id) {
    tasks.push_back(std::make_unique<mp::Process>(
        mp::ProcessOptions{.target = [event, id] { task(event, id); }}));
    tasks.back()->start();
  }
  say("Blocking the main process for a moment...");
  mp::os::sleep(pause);
  event.set();  // both waiters wake: an Event is a flag, not a queue of tokens
  for (auto& p : tasks) p->join();

  say("-- Condition --");
  auto cond = mp::Condition();
  auto box = mp::Value<'i'>(0);
  mp::Process c({.target = [cond, box] { consumer(cond, box); }});
  c.start();
  mp::os::sleep(pause);
  {
    std::lock_guard with(cond);
    box.set_value(42);
    cond.notify_all();
    // Still holding the lock: the consumer cannot print before this line.
    say("producer: box.value = 42, notified");
  }
  c.join();
  return 0;
}
