// tests/test_dummy.cpp — the thread-backed twin (CPython's 'threads' test type):
// the same Process interface, with shared memory.
#include <atomic>

#include "support.hpp"

namespace mp_test {
namespace {

namespace dummy = mp::dummy;

/// The seeds' lesson, thread half: 5 threads raise one global counter to 5.
TEST(TestDummy, ThreadsShareMemory) {
  int counter = 0;
  dummy::Lock lock;
  std::vector<std::unique_ptr<dummy::Process>> threads;
  for (int i = 0; i < 5; ++i) {
    threads.push_back(std::make_unique<dummy::Process>(mp::ProcessOptions{.target = [&] {
      std::lock_guard guard(lock);
      ++counter;
    }}));
  }
  for (auto& t : threads) t->start();
  for (auto& t : threads) t->join();
  EXPECT_EQ(counter, 5);
}

/// _TestProcess.test_process, 'threads' type: name, exitcode, active_children.
TEST(TestDummy, Process) {
  std::atomic<bool> go{false};
  std::string seen_name;
  dummy::Process p({.target = [&] {
                      while (!go) mp::os::sleep(0.001);
                      seen_name = dummy::current_process().name();
                    },
                    .name = "SomeThread"});
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  p.start();
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  auto children = dummy::active_children();
  EXPECT_NE(std::find(children.begin(), children.end(), &p), children.end());
  go = true;
  p.join();
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(seen_name, "SomeThread");
  EXPECT_EQ(dummy::current_process().name(), "MainThread");
  EXPECT_THROW(p.start(), mp::RuntimeError);
}

/// join(timeout) returns with the thread still running.
TEST(TestDummy, JoinTimeout) {
  std::atomic<bool> stop{false};
  dummy::Process p({.target = [&] { while (!stop) mp::os::sleep(0.001); }});
  EXPECT_THROW(p.join(), mp::RuntimeError);  // not started
  p.start();
  p.join(0.05);
  EXPECT_TRUE(p.is_alive());
  stop = true;
  p.join();
  EXPECT_FALSE(p.is_alive());
}

/// threading.Lock and RLock semantics.
TEST(TestDummy, LockAndRLock) {
  dummy::Lock lock;
  EXPECT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(true, 0.05));
  lock.release();
  EXPECT_THROW(lock.release(), mp::RuntimeError);

  dummy::RLock rlock;
  EXPECT_TRUE(rlock.acquire());
  EXPECT_TRUE(rlock.acquire());
  rlock.release();
  rlock.release();
  EXPECT_THROW(rlock.release(), mp::RuntimeError);
}

}  // namespace
}  // namespace mp_test
