// tests/test_dummy.cpp — the thread-backed twin (CPython's 'threads' test type):
// the same Process interface, with shared memory.
#include <atomic>
#include <functional>
#include <set>
#include <type_traits>

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


// ---------------------------------------------------------------- helpers

/// Python: TimingWrapper: how long one call took, in seconds.
double elapsed(const std::function<void()>& call) {
  double start = mp::os::monotonic();
  call();
  return mp::os::monotonic() - start;
}

/// Python's TIMEOUT1..3 and the generous slack of a loaded 2-core machine.
constexpr double TIMEOUT1 = 0.1, TIMEOUT2 = 0.1, TIMEOUT3 = 0.1;
constexpr double SLACK = 5.0;
/// Python: assertTimingAlmostEqual(elapsed, t), with room for a loaded machine.
#define EXPECT_TIMING(seconds, expected)       \
  do {                                         \
    double s_ = (seconds);                     \
    EXPECT_GE(s_, (expected) - 0.01);          \
    EXPECT_LT(s_, (expected) + SLACK);         \
  } while (0)

/// Python: Bunch(self, f, args, n - 1) plus f in the calling thread, as
/// _TestBarrier.run_threads does: `n` threads run `f` at once.
void run_threads(int n, const std::function<void()>& f) {
  std::vector<std::unique_ptr<dummy::Process>> threads;
  for (int i = 0; i < n - 1; ++i) {
    threads.push_back(std::make_unique<dummy::Process>(mp::ProcessOptions{.target = f}));
    threads.back()->start();
  }
  f();
  for (auto& t : threads) t->join();
}

// ---------------------------------------------------------------- Lock, RLock

/// _TestLock.test_lock and test_lock_context ('threads').
TEST(TestDummyLock, Lock) {
  dummy::Lock lock;
  EXPECT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  lock.release();
  expect_raises<mp::RuntimeError>([&] { lock.release(); }, "release unlocked lock");
  { std::lock_guard guard(lock); }  // `with self.Lock(): pass`
  EXPECT_FALSE(lock.locked());
}

/// _TestLock.test_rlock ('threads').
TEST(TestDummyLock, RLock) {
  dummy::RLock lock;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(lock.acquire());
  for (int i = 0; i < 3; ++i) lock.release();
  expect_raises<mp::RuntimeError>([&] { lock.release(); }, "cannot release un-acquired lock");
}

// ---------------------------------------------------------------- Semaphore

/// _TestSemaphore.test_semaphore ('threads').
TEST(TestDummySemaphore, Semaphore) {
  dummy::Semaphore sem(2);
  check_semaphore(sem, [&] { return sem._value(); });
  sem.release();
  EXPECT_EQ(sem._value(), 3);
  sem.release(2);  // threading's release(n)
  EXPECT_EQ(sem._value(), 5);
  EXPECT_THROW(sem.release(0), mp::ValueError);
  EXPECT_THROW(dummy::Semaphore(-1), mp::ValueError);
  EXPECT_NE(sem.repr().find(": value=5>"), std::string::npos) << sem.repr();
  EXPECT_EQ(sem.repr().rfind("<threading.Semaphore at 0x", 0), 0u) << sem.repr();
}

/// _TestSemaphore.test_bounded_semaphore ('threads'), with the check that
/// CPython leaves commented out for OS X: threading's BoundedSemaphore
/// refuses a release above the initial value.
TEST(TestDummySemaphore, BoundedSemaphore) {
  dummy::BoundedSemaphore sem(2);
  check_semaphore(sem, [&] { return sem._value(); });
  expect_raises<mp::ValueError>([&] { sem.release(); }, "Semaphore released too many times");
  EXPECT_EQ(sem._value(), 2);
  EXPECT_NE(sem.repr().find(": value=2/2>"), std::string::npos) << sem.repr();
}

/// _TestSemaphore.test_timeout (CPython runs it for processes only; threading's
/// Semaphore keeps the same timings, and refuses a timeout without blocking).
TEST(TestDummySemaphore, Timeout) {
  dummy::Semaphore sem(0);
  EXPECT_TIMING(elapsed([&] { EXPECT_FALSE(sem.acquire(false)); }), 0.0);
  expect_raises<mp::ValueError>([&] { sem.acquire(false, TIMEOUT1); }, "can't specify timeout for non-blocking acquire");
  EXPECT_TIMING(elapsed([&] { EXPECT_FALSE(sem.acquire(true, TIMEOUT2)); }), TIMEOUT2);
  EXPECT_TIMING(elapsed([&] { EXPECT_FALSE(sem.acquire(true, TIMEOUT3)); }), TIMEOUT3);
}

/// A released semaphore wakes a thread that waits on it.
TEST(TestDummySemaphore, WakesWaiter) {
  dummy::Semaphore sem(0);
  std::atomic<bool> got{false};
  dummy::Process t({.target = [&] { got = sem.acquire(true, 60.0); }});
  t.start();
  mp::os::sleep(0.05);
  EXPECT_FALSE(got);
  sem.release();
  t.join();
  EXPECT_TRUE(got);
}

// ---------------------------------------------------------------- Condition

/// _TestCondition's cases with threads: a condition, the `sleeping` and
/// `woken` semaphores, and the threads that run _TestCondition.f.
class TestDummyCondition : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& t : threads) t->join();
  }

  /// Start `n` threads running _TestCondition.f (sleep on the condition,
  /// then say so) and wait until all of them sleep.
  void start_sleepers(int n, std::optional<double> timeout = std::nullopt) {
    for (int i = 0; i < n; ++i) {
      threads.push_back(std::make_unique<dummy::Process>(mp::ProcessOptions{.target = [this, timeout] {
        cond.acquire();
        sleeping.release();
        cond.wait(timeout);
        woken.release();
        cond.release();
      }}));
      threads.back()->start();
    }
    for (int i = 0; i < n; ++i) sleeping.acquire();
  }
  /// Python: `cond.acquire(); cond.notify(n); cond.release()`.
  void notify(std::size_t n) {
    std::lock_guard guard(cond);
    cond.notify(n);
  }
  /// Python (test_waitfor): `for i in range(n): time.sleep(0.01); with cond:
  /// state.value += 1; cond.notify()`.
  void increment_state(int n) {
    for (int i = 0; i < n; ++i) {
      mp::os::sleep(0.01);
      std::lock_guard guard(cond);
      state.set_value(state.value().as<std::int64_t>() + 1);
      cond.notify();
    }
  }
  /// Python: assertReachesEventually(lambda: get_value(woken), value).
  void expect_woken(int value) {
    EXPECT_TRUE(wait_until([&] { return woken._value() == value; }, 60.0)) << woken._value();
    mp::os::sleep(0.05);
    EXPECT_EQ(woken._value(), value);
  }

  dummy::Condition cond;
  dummy::Semaphore sleeping{0}, woken{0};
  dummy::Value state{"i", 0};  // Python: test_waitfor's state = self.Value('i', ...)
  std::vector<std::unique_ptr<dummy::Process>> threads;
};

/// _TestCondition.test_notify ('threads').
TEST_F(TestDummyCondition, Notify) {
  start_sleepers(2);
  mp::os::sleep(0.1);
  EXPECT_EQ(woken._value(), 0);  // nobody has woken up
  notify(1);
  expect_woken(1);
  notify(1);
  expect_woken(2);
}

/// _TestCondition.test_notify_all ('threads'): waiters that time out, then
/// waiters that notify_all() wakes.
TEST_F(TestDummyCondition, NotifyAll) {
  start_sleepers(6, TIMEOUT1);
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(woken.acquire(true, 60.0));  // all timed out
  EXPECT_EQ(woken._value(), 0);

  start_sleepers(6);
  mp::os::sleep(0.1);
  EXPECT_EQ(woken._value(), 0);
  {
    std::lock_guard guard(cond);
    cond.notify_all();
  }
  expect_woken(6);
}

/// _TestCondition.test_notify_n ('threads').
TEST_F(TestDummyCondition, NotifyN) {
  start_sleepers(6);
  mp::os::sleep(0.1);
  EXPECT_EQ(woken._value(), 0);
  notify(2);
  expect_woken(2);
  notify(4);
  expect_woken(6);
  notify(3);  // nobody left: does nothing
  EXPECT_EQ(woken._value(), 6);
}

/// _TestCondition.test_timeout ('threads').
TEST_F(TestDummyCondition, Timeout) {
  cond.acquire();
  bool res = true;
  EXPECT_TIMING(elapsed([&] { res = cond.wait(TIMEOUT1); }), TIMEOUT1);
  cond.release();
  EXPECT_FALSE(res);
}

/// _TestCondition.test_waitfor ('threads'): a Value shared by the threads.
TEST_F(TestDummyCondition, WaitFor) {
  state.set_value(-1);
  std::atomic<bool> ok{false};
  dummy::Process p({.target = [&] {
    std::lock_guard guard(cond);
    state.set_value(0);
    cond.notify();
    ok = cond.wait_for([&] { return state.value() == mp::Object(4); }) && state.value() == mp::Object(4);
  }});
  p.start();
  {
    std::lock_guard guard(cond);
    EXPECT_TRUE(cond.wait_for([&] { return state.value() == mp::Object(0); }));
    EXPECT_EQ(state.value(), mp::Object(0));
  }
  increment_state(4);
  p.join();
  EXPECT_TRUE(ok);
}

/// _TestCondition.test_waitfor_timeout ('threads').
TEST_F(TestDummyCondition, WaitForTimeout) {
  dummy::Semaphore& sem = sleeping;
  std::atomic<bool> success{false};
  dummy::Process p({.target = [&] {
    sem.release();
    std::lock_guard guard(cond);
    constexpr double expected = 0.100;
    double dt = mp::os::monotonic();
    bool result = cond.wait_for([&] { return state.value() == mp::Object(4); }, expected);
    dt = mp::os::monotonic() - dt;
    if (!result && expected - 0.01 <= dt) success = true;
  }});
  p.start();
  EXPECT_TRUE(sem.acquire(true, 60.0));
  increment_state(3);  // only 3 increments: state == 4 is never reached
  p.join();
  EXPECT_TRUE(success);
}

/// _TestCondition.test_wait_result ('threads'): wait() says whether it was notified.
TEST_F(TestDummyCondition, WaitResult) {
  std::lock_guard guard(cond);
  EXPECT_FALSE(cond.wait(0));
  EXPECT_FALSE(cond.wait(0.1));
  dummy::Process p({.target = [&] {
    std::lock_guard inner(cond);
    cond.notify();
  }});
  p.start();
  EXPECT_TRUE(cond.wait(60));
  p.join();
}

/// threading.Condition's errors, and a Condition over a plain Lock or an
/// RLock held twice (wait() releases it completely and restores the depth).
TEST_F(TestDummyCondition, LocksAndErrors) {
  expect_raises<mp::RuntimeError>([&] { cond.wait(0.01); }, "cannot wait on un-acquired lock");
  expect_raises<mp::RuntimeError>([&] { cond.notify(); }, "cannot notify on un-acquired lock");

  dummy::RLock rlock;
  dummy::Condition on_rlock(rlock);
  rlock.acquire();
  rlock.acquire();
  std::atomic<bool> other_got_it{false};
  dummy::Process t({.target = [&] {
    std::lock_guard guard(on_rlock);  // possible only while wait() has released both levels
    other_got_it = true;
    on_rlock.notify();
  }});
  t.start();
  EXPECT_TRUE(on_rlock.wait(60.0));
  EXPECT_TRUE(other_got_it);
  rlock.release();
  rlock.release();  // the depth was restored: two releases
  EXPECT_THROW(rlock.release(), mp::RuntimeError);
  t.join();

  dummy::Lock lock;
  dummy::Condition on_lock(lock);
  std::lock_guard guard(on_lock);
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(on_lock.wait(0.01));
  EXPECT_TRUE(lock.locked());
}

// ---------------------------------------------------------------- Event

/// _TestEvent.test_event ('threads').
TEST(TestDummyEvent, Event) {
  dummy::Event event;
  EXPECT_FALSE(event.is_set());
  EXPECT_TIMING(elapsed([&] { EXPECT_FALSE(event.wait(0.0)); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_FALSE(event.wait(TIMEOUT1)); }), TIMEOUT1);
  event.set();
  EXPECT_TRUE(event.is_set());
  EXPECT_TIMING(elapsed([&] { EXPECT_TRUE(event.wait()); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_TRUE(event.wait(TIMEOUT1)); }), 0.0);
  event.clear();
  EXPECT_FALSE(event.is_set());
  dummy::Process p({.target = [&] {
    mp::os::sleep(TIMEOUT2);
    event.set();
  }});
  p.start();
  EXPECT_TRUE(event.wait());
  p.join();
}

/// _TestEvent.test_repr ('threads'): threading.Event's repr.
TEST(TestDummyEvent, Repr) {
  dummy::Event event;
  EXPECT_EQ(event.repr().rfind("<threading.Event at 0x", 0), 0u) << event.repr();
  EXPECT_NE(event.repr().find(": unset>"), std::string::npos) << event.repr();
  event.set();
  EXPECT_NE(event.repr().find(": set>"), std::string::npos) << event.repr();
}

// ---------------------------------------------------------------- Barrier

/// Python: _TestBarrier.N and defaultTimeout.
constexpr int N = 5;
constexpr double kDefaultTimeout = 30.0;

/// _TestBarrier's setUp/tearDown: a barrier of N with the default timeout,
/// aborted at the end so that no thread can stay stuck in it.
class TestDummyBarrier : public ::testing::Test {
 protected:
  void TearDown() override { barrier.abort(); }
  /// _TestBarrier._test_abort_f's first part: the middle party aborts the
  /// barrier instead of passing it a second time; the others count a
  /// BrokenBarrierError (results2) or, wrongly, a pass (results1).
  void abort_party(std::atomic<int>& results1, std::atomic<int>& results2) {
    try {
      int i = barrier.wait();
      if (i == N / 2) throw mp::RuntimeError("");
      barrier.wait();
      results1 += 1;
    } catch (const mp::BrokenBarrierError&) {
      results2 += 1;
    } catch (const mp::RuntimeError&) {
      barrier.abort();
    }
  }
  dummy::Barrier barrier{N, {}, kDefaultTimeout};
};

/// _TestBarrier.multipass: n rounds in lockstep.
void multipass(dummy::Barrier& barrier, std::atomic<int>& results0, std::atomic<int>& results1, int n) {
  int m = barrier.parties();
  for (int i = 0; i < n; ++i) {
    results0 += 1;
    EXPECT_EQ(results1.load(), i * m);
    barrier.wait();
    results1 += 1;
    EXPECT_EQ(results0.load(), (i + 1) * m);
    barrier.wait();
  }
  EXPECT_EQ(barrier.n_waiting(), 0);
  EXPECT_FALSE(barrier.broken());
}

/// _TestBarrier.test_barrier ('threads').
TEST_F(TestDummyBarrier, Barrier) {
  std::atomic<int> r0{0}, r1{0};
  run_threads(N, [&] { multipass(barrier, r0, r1, 1); });
}

/// _TestBarrier.test_barrier_10 ('threads').
TEST_F(TestDummyBarrier, Barrier10) {
  std::atomic<int> r0{0}, r1{0};
  run_threads(N, [&] { multipass(barrier, r0, r1, 10); });
}

/// _TestBarrier.test_wait_return ('threads'): exactly one party gets index 0.
TEST_F(TestDummyBarrier, WaitReturn) {
  dummy::Queue queue;
  run_threads(N, [&] { queue.put(std::int64_t{barrier.wait()}); });
  std::multiset<std::int64_t> results;
  for (int i = 0; i < N; ++i) results.insert(queue.get().as<std::int64_t>());
  EXPECT_EQ(results.count(0), 1u);
  EXPECT_EQ(results, (std::multiset<std::int64_t>{0, 1, 2, 3, 4}));
}

/// _TestBarrier.test_action ('threads'): the action runs once, before anyone passes.
TEST_F(TestDummyBarrier, Action) {
  std::atomic<int> results{0};
  dummy::Barrier with_action(N, [&] { results += 1; });
  std::atomic<int> wrong{0};
  run_threads(N, [&] {
    with_action.wait();
    if (results != 1) wrong += 1;
  });
  EXPECT_EQ(results, 1);
  EXPECT_EQ(wrong, 0);
}

/// _TestBarrier.test_abort ('threads').
TEST_F(TestDummyBarrier, Abort) {
  std::atomic<int> results1{0}, results2{0};
  run_threads(N, [&] {
    abort_party(results1, results2);
  });
  EXPECT_EQ(results1, 0);
  EXPECT_EQ(results2, N - 1);
  EXPECT_TRUE(barrier.broken());
  EXPECT_NE(barrier.repr().find(": broken>"), std::string::npos) << barrier.repr();
}

/// _TestBarrier.test_reset ('threads'): reset() frees the waiting threads.
TEST_F(TestDummyBarrier, Reset) {
  std::atomic<int> results1{0}, results2{0}, results3{0};
  run_threads(N, [&] {
    int i = barrier.wait();
    if (i == N / 2) {
      while (barrier.n_waiting() < N - 1) mp::os::sleep(0.001);
      barrier.reset();
    } else {
      try {
        barrier.wait();
        results1 += 1;
      } catch (const mp::BrokenBarrierError&) {
        results2 += 1;
      }
    }
    barrier.wait();  // pass the barrier again
    results3 += 1;
  });
  EXPECT_EQ(results1, 0);
  EXPECT_EQ(results2, N - 1);
  EXPECT_EQ(results3, N);
}

/// _TestBarrier.test_abort_and_reset ('threads').
TEST_F(TestDummyBarrier, AbortAndReset) {
  std::atomic<int> results1{0}, results2{0}, results3{0};
  dummy::Barrier barrier2(N);
  run_threads(N, [&] {
    abort_party(results1, results2);
    if (barrier2.wait() == N / 2) barrier.reset();
    barrier2.wait();
    barrier.wait();
    results3 += 1;
  });
  EXPECT_EQ(results1, 0);
  EXPECT_EQ(results2, N - 1);
  EXPECT_EQ(results3, N);
}

/// _TestBarrier.test_timeout ('threads'): one party is late; wait(0.5) breaks it for all.
TEST_F(TestDummyBarrier, Timeout) {
  std::atomic<int> results{0};
  run_threads(N, [&] {
    int i = barrier.wait();
    if (i == N / 2) mp::os::sleep(1.0);
    try {
      barrier.wait(0.5);
    } catch (const mp::BrokenBarrierError&) {
      results += 1;
    }
  });
  EXPECT_EQ(results, barrier.parties());
}

/// _TestBarrier.test_default_timeout ('threads').
TEST_F(TestDummyBarrier, DefaultTimeout) {
  dummy::Barrier short_barrier(N, {}, 0.5);
  std::atomic<int> results{0};
  run_threads(N, [&] {
    int i = short_barrier.wait(kDefaultTimeout);
    if (i == N / 2) mp::os::sleep(1.0);
    try {
      short_barrier.wait();
    } catch (const mp::BrokenBarrierError&) {
      results += 1;
    }
  });
  EXPECT_EQ(results, short_barrier.parties());
}

/// _TestBarrier.test_single_thread ('threads').
TEST_F(TestDummyBarrier, SingleThread) {
  dummy::Barrier b(1);
  b.wait();
  b.wait();
  EXPECT_THROW(dummy::Barrier(0), mp::ValueError);
  EXPECT_NE(b.repr().find(": waiters=0/1>"), std::string::npos) << b.repr();
}

/// _TestBarrier.test_thousand ('threads'): 1000 rounds, reported on a Pipe.
TEST_F(TestDummyBarrier, Thousand) {
  constexpr int passes = 1000;
  dummy::Lock lock;
  auto [conn, child_conn] = dummy::Pipe(false);
  std::vector<std::unique_ptr<dummy::Process>> threads;
  for (int j = 0; j < N; ++j) {
    threads.push_back(std::make_unique<dummy::Process>(mp::ProcessOptions{.target = [&, c = child_conn] {
      auto out = c;
      for (std::int64_t i = 0; i < passes; ++i) {
        barrier.wait();
        std::lock_guard guard(lock);
        out.send(i);
      }
    }}));
    threads.back()->start();
  }
  for (std::int64_t i = 0; i < passes; ++i) {
    for (int j = 0; j < N; ++j) ASSERT_EQ(conn.recv(), mp::Object(i));
  }
  for (auto& t : threads) t->join();
}

// ---------------------------------------------------------------- Queue

/// _TestQueue.test_put ('threads').
TEST(TestDummyQueue, Put) {
  constexpr int MAXSIZE = 6;
  dummy::Queue queue(MAXSIZE);
  dummy::Event child_can_start, parent_can_continue;
  dummy::Process proc({.target = [&] {
    child_can_start.wait();
    for (int i = 0; i < 6; ++i) queue.get();
    parent_can_continue.set();
  }});
  proc.set_daemon(true);
  proc.start();

  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.full());
  queue.put(1);
  queue.put(2, true);
  queue.put(3, true, std::nullopt);
  queue.put(4, false);
  queue.put(5, false, std::nullopt);
  queue.put_nowait(6);
  EXPECT_FALSE(queue.empty());
  EXPECT_TRUE(queue.full());

  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.put(7, false), mp::queues::Full); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.put(7, false, std::nullopt), mp::queues::Full); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.put_nowait(7), mp::queues::Full); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.put(7, true, TIMEOUT1), mp::queues::Full); }), TIMEOUT1);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.put(7, false, TIMEOUT2), mp::queues::Full); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.put(7, true, TIMEOUT3), mp::queues::Full); }), TIMEOUT3);

  child_can_start.set();
  parent_can_continue.wait();
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.full());
  proc.join();
}

/// _TestQueue.test_get ('threads').
TEST(TestDummyQueue, Get) {
  dummy::Queue queue;
  dummy::Event child_can_start, parent_can_continue;
  dummy::Process proc({.target = [&] {
    child_can_start.wait();
    for (std::int64_t i = 2; i <= 5; ++i) queue.put(i);
    parent_can_continue.set();
  }});
  proc.set_daemon(true);
  proc.start();
  EXPECT_TRUE(queue.empty());
  child_can_start.set();
  parent_can_continue.wait();
  EXPECT_FALSE(queue.empty());
  EXPECT_EQ(queue.get(true, std::nullopt), mp::Object(2));
  EXPECT_EQ(queue.get(true), mp::Object(3));
  EXPECT_EQ(queue.get(true, 1.0), mp::Object(4));
  EXPECT_EQ(queue.get_nowait(), mp::Object(5));
  EXPECT_TRUE(queue.empty());

  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.get(false), mp::queues::Empty); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.get(false, std::nullopt), mp::queues::Empty); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.get_nowait(), mp::queues::Empty); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.get(true, TIMEOUT1), mp::queues::Empty); }), TIMEOUT1);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.get(false, TIMEOUT2), mp::queues::Empty); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_THROW(queue.get(true, TIMEOUT3), mp::queues::Empty); }), TIMEOUT3);
  proc.join();
}

/// _TestQueue.test_qsize ('threads').
TEST(TestDummyQueue, Qsize) {
  dummy::Queue q;
  EXPECT_EQ(q.qsize(), 0);
  q.put(1);
  EXPECT_EQ(q.qsize(), 1);
  q.put(5);
  EXPECT_EQ(q.qsize(), 2);
  q.get();
  EXPECT_EQ(q.qsize(), 1);
  q.get();
  EXPECT_EQ(q.qsize(), 0);
}

/// _TestQueue.test_task_done ('threads'): join() returns once every item is
/// marked done; JoinableQueue is Queue, as in dummy.
TEST(TestDummyQueue, TaskDone) {
  dummy::JoinableQueue queue;
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<dummy::Process>> workers;
  for (int i = 0; i < 4; ++i) {
    workers.push_back(std::make_unique<dummy::Process>(mp::ProcessOptions{.target = [queue, &done]() mutable {
      for (mp::Object obj = queue.get(); !obj.is_none(); obj = queue.get()) {
        mp::os::sleep(0.01);
        done += 1;
        queue.task_done();
      }
    }}));
    workers.back()->set_daemon(true);
    workers.back()->start();
  }
  for (std::int64_t i = 0; i < 10; ++i) queue.put(i);
  queue.join();
  EXPECT_EQ(done, 10);
  for (std::size_t i = 0; i < workers.size(); ++i) queue.put(mp::Object());
  for (auto& p : workers) p->join();
  // The None sentinels were never marked done: 4 tasks are still open.
  for (int i = 0; i < 4; ++i) queue.task_done();
  expect_raises<mp::ValueError>([&] { queue.task_done(); }, "task_done() called too many times");
}

/// _TestQueue.test_timeout ('threads'): get(True, 0.2) waits about 0.2 s.
TEST(TestDummyQueue, Timeout) {
  dummy::Queue q;
  double delta = elapsed([&] { EXPECT_THROW(q.get(true, 0.200), mp::queues::Empty); });
  EXPECT_GE(delta, 0.100);
  EXPECT_LT(delta, 0.200 + SLACK);
  expect_raises<mp::ValueError>([&] { q.get(true, -1.0); }, "'timeout' must be a non-negative number");
}

/// A producer and a consumer over a bounded queue: put() waits for room.
TEST(TestDummyQueue, BoundedProducerConsumer) {
  dummy::Queue q(2);
  dummy::Process producer({.target = [q]() mutable {
    for (std::int64_t i = 0; i < 100; ++i) q.put(i);
  }});
  producer.start();
  for (std::int64_t i = 0; i < 100; ++i) ASSERT_EQ(q.get(true, 60.0), mp::Object(i));
  producer.join();
  EXPECT_EQ(q.maxsize(), 2);
}

// ---------------------------------------------------------------- Pipe

/// _TestConnection.test_connection ('threads'), the parts that apply to
/// dummy.connection: send/recv, send_bytes/recv_bytes, poll with and
/// without a timeout, close.
TEST(TestDummyConnection, Connection) {
  auto pipe = dummy::Pipe();  // (not a structured binding: lambdas below capture conn)
  dummy::connection::Connection& conn = pipe.first;
  dummy::connection::Connection& child_conn = pipe.second;
  dummy::Process p({.target = [c = child_conn]() mutable {  // Python: _echo
    for (;;) {
      mp::Object msg = c.recv();
      if (msg.is_none()) break;
      c.send(msg);
    }
  }});
  p.set_daemon(true);
  p.start();

  mp::Object seq = mp::Object::List{1, 2.25, mp::Object()};
  conn.send(seq);
  EXPECT_EQ(conn.recv(), seq);
  conn.send_bytes("hello");
  EXPECT_EQ(conn.recv_bytes(), "hello");

  EXPECT_TIMING(elapsed([&] { EXPECT_FALSE(conn.poll()); }), 0.0);
  EXPECT_TIMING(elapsed([&] { EXPECT_FALSE(conn.poll(TIMEOUT1)); }), TIMEOUT1);
  conn.send(mp::Object("x"));
  EXPECT_TRUE(conn.poll(60.0));
  EXPECT_TRUE(conn.poll());
  EXPECT_EQ(conn.recv(), mp::Object("x"));

  conn.send(mp::Object());  // the echo ends
  p.join();
  conn.close();
  child_conn.close();
}

/// _TestConnection.test_duplex_false ('threads'): dummy's Pipe(False) is
/// still two-way, as in Python (dummy.connection ignores `duplex`).
TEST(TestDummyConnection, DuplexFalse) {
  auto [reader, writer] = dummy::Pipe(false);
  writer.send(1);
  EXPECT_EQ(reader.recv(), mp::Object(1));
  reader.send(2);
  EXPECT_EQ(writer.recv(), mp::Object(2));
}

// ---------------------------------------------------------------- Pool

/// dummy.Pool(processes, initializer, initargs) is a ThreadPool (_TestPool's
/// cases run on it in test_pool.cpp, as WithThreads/TestPool.*/threads).
TEST(TestDummyPool, PoolIsThreadPool) {
  std::atomic<int> initialized{0};
  auto pool = dummy::Pool(3, [&](const mp::Args& args) { initialized += static_cast<int>(args[0].as<std::int64_t>()); },
                          {2});
  EXPECT_EQ(pool.repr(), "<multiprocessing.pool.ThreadPool state=RUN pool_size=3>");
  EXPECT_EQ(pool.apply([](const mp::Args& a) { return a[0].as<std::int64_t>() * 2; }, {21}), mp::Object(42));
  pool.close();
  pool.join();
  EXPECT_EQ(initialized, 6);
}

/// dummy.Pool's tasks are not pickled: a capturing lambda is a task like any
/// other (where a process Pool refuses it: _TestPool.test_map_unplicklable).
TEST(TestDummyPool, LambdaTasks) {
  auto pool = dummy::Pool(2);
  std::int64_t offset = 100;
  auto add = [offset](const mp::Args& a) { return a[0].as<std::int64_t>() + offset; };
  mp::Object::List items, expected;
  for (std::int64_t i = 0; i < 10; ++i) {
    items.emplace_back(i);
    expected.emplace_back(i + offset);
  }
  EXPECT_EQ(pool.map(add, items), expected);
}

/// dummy.Pool's workers are threads of this process: they see its memory,
/// and the initializer runs once in each.
TEST(TestDummyPool, WorkersShareMemory) {
  std::atomic<int> initialized{0};
  std::atomic<std::int64_t> total{0};
  auto p = dummy::Pool(3, [&](const mp::Args&) { initialized += 1; });
  mp::Object::List items;
  for (std::int64_t i = 0; i <= 100; ++i) items.emplace_back(i);
  p.map([&](const mp::Args& a) { total += a[0].as<std::int64_t>(); return mp::Object(); }, items);
  EXPECT_EQ(total, 5050);
  p.close();
  p.join();
  EXPECT_EQ(initialized, 3);
}

// ---------------------------------------------------------------- Namespace, Value, Array, Manager

/// _TestNamespace's core on dummy.Namespace: attributes by name, the repr
/// (sorted, '_' names hidden), AttributeError for a missing one.
TEST(TestDummyNamespace, Namespace) {
  dummy::Namespace n({{"a", 1}, {"b", "x"}});
  EXPECT_EQ(n.repr(), "Namespace(a=1, b='x')");
  n.set("_hidden", 3);
  n.set("c", mp::Object::List{1, 2});
  EXPECT_EQ(n.repr(), "Namespace(a=1, b='x', c=[1, 2])");
  EXPECT_EQ(n.get("_hidden"), mp::Object(3));
  EXPECT_TRUE(n.has("c"));
  n.del("c");
  EXPECT_FALSE(n.has("c"));
  expect_raises<mp::AttributeError>([&] { n.get("z"); }, "'Namespace' object has no attribute 'z'");
  EXPECT_THROW(n.del("z"), mp::AttributeError);
  EXPECT_EQ(dummy::Namespace().repr(), "Namespace()");
  EXPECT_EQ(n.__dict__().size(), 3u);
}

/// dummy.Value and dummy.Array: plain holders shared by the threads.
TEST(TestDummyValue, ValueAndArray) {
  dummy::Value v("i", 1);
  EXPECT_EQ(v.repr(), "<Value('i', 1)>");
  v.set_value(5);
  EXPECT_EQ(v.value(), mp::Object(5));
  dummy::Lock lock;
  run_threads(4, [&] {
    for (int i = 0; i < 100; ++i) {
      std::lock_guard guard(lock);
      v.set_value(v.value().as<std::int64_t>() + 1);
    }
  });
  EXPECT_EQ(v.value(), mp::Object(405));

  auto a = dummy::Array<'i'>({1, 2, 3});
  static_assert(std::is_same_v<decltype(a), std::vector<int>>);
  EXPECT_EQ(a, (std::vector<int>{1, 2, 3}));
}

/// dummy.Manager() is the module: its factories give the thread objects.
TEST(TestDummyManager, FactoriesAreDummys) {
  dummy::Manager m;
  auto q = m.Queue();
  auto jq = m.JoinableQueue(1);
  static_assert(std::is_same_v<decltype(jq), dummy::Queue>);
  q.put("x");
  EXPECT_EQ(q.get(), mp::Object("x"));
  auto ns = m.Namespace({{"x", 1}});
  EXPECT_EQ(ns.repr(), "Namespace(x=1)");
  auto ev = m.Event();
  ev.set();
  EXPECT_TRUE(ev.wait(0));
  auto sem = m.BoundedSemaphore(1);
  EXPECT_THROW(sem.release(), mp::ValueError);
  auto lock = m.Lock();
  EXPECT_TRUE(lock.acquire());
  lock.release();
  auto cond = m.Condition();
  { std::lock_guard guard(cond); }
  auto barrier = m.Barrier(1);
  EXPECT_EQ(barrier.wait(), 0);
  auto value = m.Value("d", 1.5);
  EXPECT_EQ(value.value(), mp::Object(1.5));
  EXPECT_TRUE(m.dict().empty());
  EXPECT_TRUE(m.list().empty());
  auto [a, b] = m.Pipe();
  a.send(7);
  EXPECT_EQ(b.recv(), mp::Object(7));
  auto pool = m.Pool(1);
  EXPECT_EQ(pool.apply([](const mp::Args&) { return mp::Object(1); }), mp::Object(1));
  m.shutdown();
}

}  // namespace
}  // namespace mp_test
