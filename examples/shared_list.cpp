// examples/shared_list.cpp — seed lesson 000: "threads share memory, processes copy it".
//
// The same program run twice: three workers append their number to one list
// three times.  As threads (multiprocessing::dummy) they all append to the one
// list.  As processes, each child appends to its own copy of the list, made by
// fork(), and the parent's list stays empty.
//
// Python original:
//   def func(nums, i, lock):
//       ...print(f"Process -{i} : ", id(nums)) ... nums.append(i) ...
//   nums = []; [Process(target=func, args=(nums, i, lock)).start() for i in range(3)]
//   print("Main Process :", nums)          # -> Main Process : []
//
// Usage: shared_list [--delay SECONDS]   (the Python lesson sleeps 1 s per step)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

double g_delay = 1.0;

/// print() and flush: each line leaves in one write, so lines from several
/// processes interleave whole, as in the lesson's output.
void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

/// Python: id(nums), the object's address.  Under fork a child prints the same
/// number as the parent: the same *virtual* address, but in its own copy of
/// the memory.  That is the lesson.
std::string id(const std::vector<int>& nums) {
  return std::to_string(reinterpret_cast<std::uintptr_t>(&nums));
}

std::string repr(const std::vector<int>& nums) { return mp::Object(nums).repr(); }

/// The worker, written once for both runs: `lock` guards the console and the
/// list, like the lesson's threading.Lock.  `started` lets no worker append
/// before all three have printed their address, so that the output has the
/// lesson's shape however slowly a loaded machine starts the last worker.
template <class Lock, class Barrier>
void func(std::vector<int>& nums, int i, const char* kind, Lock& lock, Barrier& started) {
  lock.acquire();
  say(std::string(kind) + " -" + std::to_string(i) + " :  " + id(nums));
  lock.release();
  started.wait();
  for (int x = 0; x < 3; ++x) {
    mp::os::sleep(g_delay);
    lock.acquire();
    nums.push_back(i);
    say(std::string(kind) + " -" + std::to_string(i) + " :  " + repr(nums));
    lock.release();
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int a = 1; a + 1 < argc; ++a) {
    if (std::strcmp(argv[a], "--delay") == 0) g_delay = std::atof(argv[a + 1]);
  }
  // Stagger the workers' starts a little, as the lesson's output shows them in order.
  {
    say("-- with threads --");  // multiprocessing::dummy
    mp::dummy::Lock lock;
    mp::dummy::Barrier started(3);
    std::vector<int> nums;
    say("Main Thread : " + id(nums));
    std::vector<std::unique_ptr<mp::dummy::Process>> t_list;
    for (int i = 0; i < 3; ++i) {
      t_list.push_back(std::make_unique<mp::dummy::Process>(mp::ProcessOptions{
          .target = [&nums, i, &lock, &started] { func(nums, i, "Thread", lock, started); }}));
      t_list.back()->start();
      mp::os::sleep(g_delay / 20);
    }
    for (auto& t : t_list) t->join();
    say("Main Thread : " + repr(nums));
  }
  {
    say("-- with processes --");  // multiprocessing::Process, fork
    // Python: lock = multiprocessing.Lock(): one lock for the console, shared
    // by the children (the list is each child's own).
    auto lock = mp::Lock();
    auto started = mp::Barrier(3);  // in shared memory: the children's copies share its count
    std::vector<int> nums;  // a plain vector
    say("Main Process : " + id(nums));
    std::vector<std::unique_ptr<mp::Process>> p_list;
    for (int i = 0; i < 3; ++i) {
      p_list.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{
          .target = [&nums, i, &lock, &started] { func(nums, i, "Process", lock, started); }}));
      p_list.back()->start();
      mp::os::sleep(g_delay / 20);
    }
    for (auto& p : p_list) p->join();
    say("Main Process : " + repr(nums));
  }
  return 0;
}
