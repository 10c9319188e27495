// examples/manager_list.cpp — seed lesson 000's last program: the list that
// three processes could not share (shared_list) is shared once it lives in a
// manager.  Manager().list() starts a server process that holds the one list;
// each child gets a ListProxy, and each append() is a request to that server,
// so every process appends to the same list and the parent sees all nine items.
//
// Python original (examples/manager_list.py runs it):
//   def func(nums, i, lock):
//       lock.acquire(); print(f"Process -{i} : ", id(nums)); lock.release()
//       for x in range(3):
//           time.sleep(1)
//           lock.acquire(); nums.append(i); print(f"Process -{i} : ", nums)
//           lock.release()
//   lock = Lock()
//   nums = Manager().list([])
//   print("Main Process :", id(nums))
//   ... three Process(target=func, args=(nums, i, lock)), start, join ...
//   print("Main Process :", nums)
//
// Usage: manager_list [--delay SECONDS]   (the lesson sleeps 1 s per step)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;
using mp::managers::ListProxy;

namespace {

/// print() and flush: each line leaves in one write.
void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

/// Python: id(nums).  Each process has its own proxy object, so the numbers
/// differ (the lesson's output shows that too); the list behind them is one.
std::string id(const ListProxy& nums) {
  return std::to_string(reinterpret_cast<std::uintptr_t>(&nums));
}

void func(ListProxy nums, std::int64_t i, mp::synchronize::Lock lock, double delay) {
  const std::string who = "Process -" + std::to_string(i) + " :  ";
  lock.acquire();
  say(who + id(nums));
  lock.release();
  for (int x = 0; x < 3; ++x) {
    mp::os::sleep(delay);
    lock.acquire();
    nums.append(i);         // a request to the manager's server
    say(who + nums.str());  // and another: print() asks the server for str(list)
    lock.release();
  }
}

}  // namespace

int main(int argc, char** argv) {
  double delay = 1.0;
  for (int a = 1; a + 1 < argc; ++a) {
    if (std::strcmp(argv[a], "--delay") == 0) delay = std::atof(argv[a + 1]);
  }
  auto lock = mp::Lock();
  auto manager = mp::Manager();
  ListProxy nums = manager.list(mp::Object::List{});
  say("Main Process : " + id(nums));
  std::vector<std::unique_ptr<mp::Process>> p_list;
  for (std::int64_t i = 0; i < 3; ++i) {
    p_list.push_back(std::make_unique<mp::Process>(
        mp::ProcessOptions{.target = [nums, i, lock, delay] { func(nums, i, lock, delay); }}));
    p_list.back()->start();
    // Start the three a little apart, so that their turns come in order.
    mp::os::sleep(delay / 5);
  }
  for (auto& p : p_list) p->join();
  say("Main Process : " + nums.str());
  return 0;
}
