// tests/test_synchronize.cpp — ports CPython's _TestLock, _TestSemaphore,
// _TestCondition, _TestEvent and _TestBarrier, across processes (and threads, as CPython mixes
// them), and the lesson they exist for: a shared counter under a Lock.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <regex>
#include <thread>

#include "support.hpp"

namespace mp_test {

namespace sync = mp::synchronize;
using mp::connection::Connection;

/// The children's targets: plain functions registered by name, so that they
/// reach children started by spawn and forkserver as well as forked ones.
namespace sync_tests {

/// Release a lock the parent holds (checklist 23).
void release_lock(sync::Lock lock) { lock.release(); }

/// Try to release an RLock the parent holds; report the count and the error.
void try_release_rlock(sync::RLock lock, Connection& c) {
  std::string what = "released";
  try {
    lock.release();
  } catch (const mp::AssertionError& e) {
    what = e.what();
  }
  c.send(std::to_string(lock._count()) + " " + what);
}

/// The counter lesson: n increments of a shared int, each under the lock.
void add_under_lock(mp::sharedctypes::CValue<int> value, sync::Lock lock, int n) {
  for (int i = 0; i < n; ++i) {
    std::lock_guard guard(lock);
    value.set_value(value.value() + 1);  // read-modify-write, safe only under the lock
  }
}

/// Release a semaphore after a while.
void release_later(sync::Semaphore sem) {
  mp::os::sleep(0.05);
  sem.release();
}

/// Python: _TestCondition.f.
void sleeper(sync::Condition cond, sync::Semaphore sleeping, sync::Semaphore woken,
             std::optional<double> timeout) {
  cond.acquire();
  sleeping.release();
  cond.wait(timeout);
  woken.release();
  cond.release();
}

/// Python: _TestCondition._test_waitfor_f: wait until the shared state is 4.
void wait_for_four(sync::Condition cond, mp::sharedctypes::CValue<int> state, Connection& c) {
  std::lock_guard guard(cond);
  bool result = cond.wait_for([&state] { return state.value() == 4; });
  c.send(std::string(result ? "True" : "False") + " " + std::to_string(state.value()));
}

/// Python: _TestCondition._test_wait_result: notify, then after a second send
/// SIGINT to the test's process.
void wait_result(sync::Condition c, std::int64_t pid) {
  {
    std::lock_guard guard(c);
    c.notify();
  }
  mp::os::sleep(1);
  mp::os::kill(static_cast<pid_t>(pid), SIGINT);
}

/// Set an event after a while.
void set_later(sync::Event event) {
  mp::os::sleep(0.1);
  event.set();
}

}  // namespace sync_tests

MP_REGISTER_TARGET(sync_tests::release_lock);
MP_REGISTER_TARGET(sync_tests::try_release_rlock);
MP_REGISTER_TARGET(sync_tests::add_under_lock);
MP_REGISTER_TARGET(sync_tests::release_later);
MP_REGISTER_TARGET(sync_tests::sleeper);
MP_REGISTER_TARGET(sync_tests::wait_for_four);
MP_REGISTER_TARGET(sync_tests::set_later);
MP_REGISTER_TARGET(sync_tests::wait_result);

namespace {

using sync_tests::sleeper;

class TestLock : public WithStartMethod {};
class TestSemaphore : public WithStartMethod {};
class TestCondition : public WithStartMethod {};
class TestEvent : public WithStartMethod {};

/// _TestLock.test_lock
TEST(TestLockOnce, Lock) {
  auto lock = mp::Lock();
  EXPECT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  lock.release();
  try {
    lock.release();
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "semaphore or lock released too many times");
  }
}

/// _TestLock.test_rlock
TEST(TestLockOnce, RLock) {
  auto lock = mp::RLock();
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  EXPECT_EQ(lock.repr(), "<RLock(MainProcess, 3)>");
  lock.release();
  lock.release();
  lock.release();
  EXPECT_EQ(lock.repr(), "<RLock(None, 0)>");
  try {
    lock.release();
    ADD_FAILURE() << "no AssertionError";
  } catch (const mp::AssertionError& e) {
    EXPECT_STREQ(e.what(), "attempt to release recursive lock not owned by thread");
  }
}

/// _TestLock.test_lock_context
TEST(TestLockOnce, LockContext) {
  auto lock = mp::Lock();
  { std::lock_guard guard(lock); EXPECT_FALSE(lock.acquire(false)); }
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

/// Checklist 23: a Lock held by one process may be released by another; the
/// repr names the owner.
TEST_P(TestLock, ReleasedByAnotherProcess) {
  auto lock = mp::Lock();
  EXPECT_EQ(lock.repr(), "<Lock(owner=None)>");
  lock.acquire();
  EXPECT_EQ(lock.repr(), "<Lock(owner=MainProcess)>");
  mp::Process p({.target = sync_tests::release_lock, .args = {lock}});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(lock.acquire(false));  // free again
  lock.release();
}

/// An RLock held by the parent cannot be released by a child, and the child
/// does not inherit the ownership (SemLock._after_fork).
TEST_P(TestLock, RLockOwnershipNotInherited) {
  auto lock = mp::RLock();
  lock.acquire();
  auto [r, w] = mp::Pipe(false);
  mp::Process p({.target = sync_tests::try_release_rlock, .args = {lock, w}});
  p.start();
  w.close();
  EXPECT_EQ(r.recv(), mp::Object("0 attempt to release recursive lock not owned by thread"));
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  lock.release();
}

/// The seeds' counter lesson: two processes raise one shared int under a
/// Lock; no update is lost.  (The int is a RawValue: a MAP_SHARED anonymous
/// page would not reach a spawned child.)
TEST_P(TestLock, SharedCounterUnderLock) {
  PristineHeap heap;
  auto value = mp::RawValue<'i'>(0);
  auto lock = mp::Lock();
  const int n = 20000;
  mp::Process a({.target = sync_tests::add_under_lock, .args = {value, lock, n}});
  mp::Process b({.target = sync_tests::add_under_lock, .args = {value, lock, n}});
  a.start();
  b.start();
  join_process(a);
  join_process(b);
  EXPECT_EQ(a.exitcode(), 0);
  EXPECT_EQ(b.exitcode(), 0);
  EXPECT_EQ(value.value(), 2 * n);
}

/// _TestSemaphore.test_semaphore
TEST(TestSemaphoreOnce, Semaphore) {
  auto sem = mp::Semaphore(2);
  check_semaphore(sem, [&] { return sem.get_value(); });
  sem.release();
  EXPECT_EQ(sem.get_value(), 3);
  sem.release();
  EXPECT_EQ(sem.get_value(), 4);
  EXPECT_EQ(sem.repr(), "<Semaphore(value=4)>");
}

/// _TestSemaphore.test_bounded_semaphore (and the over-release CPython skips on macOS)
TEST(TestSemaphoreOnce, BoundedSemaphore) {
  auto sem = mp::BoundedSemaphore(2);
  check_semaphore(sem, [&] { return sem.get_value(); });
  EXPECT_THROW(sem.release(), mp::ValueError);
  EXPECT_EQ(sem.get_value(), 2);
  EXPECT_EQ(sem.repr(), "<BoundedSemaphore(value=2, maxvalue=2)>");
}

/// _TestSemaphore.test_timeout
TEST(TestSemaphoreOnce, Timeout) {
  auto sem = mp::Semaphore(0);
  double t0 = mp::os::monotonic();
  EXPECT_FALSE(sem.acquire(false));
  EXPECT_FALSE(sem.acquire(false, std::nullopt));
  EXPECT_FALSE(sem.acquire(false, IGNORED_TIMEOUT));  // non-blocking: the timeout is ignored
  EXPECT_LT(mp::os::monotonic() - t0, IGNORED_TIMEOUT / 3);
  t0 = mp::os::monotonic();
  EXPECT_FALSE(sem.acquire(true, 0.1));
  double elapsed = mp::os::monotonic() - t0;
  EXPECT_GE(elapsed, 0.1);
  EXPECT_LT(elapsed, 10.0);
  t0 = mp::os::monotonic();
  EXPECT_FALSE(sem.acquire(true, -1.0));  // a negative timeout polls
  EXPECT_LT(mp::os::monotonic() - t0, 5.0);
}

/// A semaphore released in a child wakes the parent blocked on it.
TEST_P(TestSemaphore, AcrossProcesses) {
  auto sem = mp::Semaphore(0);
  mp::Process p({.target = sync_tests::release_later, .args = {sem}});
  p.start();
  EXPECT_TRUE(sem.acquire(true, 30.0));
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------- Condition

void check_invariant(const sync::Condition& cond) {
  // Only true when nobody sleeps.
  EXPECT_EQ(cond._sleeping_count().get_value() - cond._woken_count().get_value(), 0);
  EXPECT_EQ(cond._wait_semaphore().get_value(), 0);
}

/// Poll `func` until it returns `value` (Python: assertReachesEventually).
void reaches_eventually(const std::function<int()>& func, int value) {
  for (int i = 0; i < 300 && func() != value; ++i) mp::os::sleep(0.01);
  mp::os::sleep(0.05);
  EXPECT_EQ(func(), value);
}

/// _TestCondition.test_notify: one process and one thread sleep; each
/// notify() wakes exactly one.
TEST_P(TestCondition, Notify) {
  auto cond = mp::Condition();
  auto sleeping = mp::Semaphore(0);
  auto woken = mp::Semaphore(0);
  mp::Process p({.target = sleeper,
                 .args = {cond, sleeping, woken, std::optional<double>()},
                 .daemon = true});
  p.start();
  mp::dummy::Process t({.target = [=] { sleeper(cond, sleeping, woken, std::nullopt); }});
  t.start();
  ASSERT_TRUE(sleeping.acquire(true, 60.0));  // wait for both to start sleeping
  ASSERT_TRUE(sleeping.acquire(true, 60.0));
  mp::os::sleep(0.1);
  EXPECT_EQ(woken.get_value(), 0);  // nobody has woken up

  cond.acquire();
  cond.notify();
  cond.release();
  reaches_eventually([&] { return woken.get_value(); }, 1);

  cond.acquire();
  cond.notify();
  cond.release();
  reaches_eventually([&] { return woken.get_value(); }, 2);

  check_invariant(cond);
  join_process(p);
  t.join();
}

/// Python's shared step of test_notify_all and test_notify_n: start three
/// processes and three threads that wait on `cond` with no timeout, and wait
/// until all six sleep.
struct Sleepers {
  std::vector<std::unique_ptr<mp::Process>> procs;
  std::vector<std::unique_ptr<mp::dummy::Process>> threads;

  void start(sync::Condition& cond, sync::Semaphore& sleeping, sync::Semaphore& woken) {
    for (int i = 0; i < 3; ++i) {
      procs.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{
          .target = sleeper, .args = {cond, sleeping, woken, std::optional<double>()}, .daemon = true}));
      procs.back()->start();
      threads.push_back(std::make_unique<mp::dummy::Process>(
          mp::ProcessOptions{.target = [=] { sleeper(cond, sleeping, woken, std::nullopt); }}));
      threads.back()->start();
    }
    // wait for them to all sleep
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(sleeping.acquire(true, 60.0));
  }
  void join() {
    for (auto& p : procs) join_process(*p);
    for (auto& t : threads) t->join();
  }
};

/// _TestCondition.test_notify_all: three sleepers with a zero timeout wake by
/// themselves and are accounted for; then notify_all() wakes three processes
/// and three threads.
TEST_P(TestCondition, NotifyAll) {
  auto cond = mp::Condition();
  auto sleeping = mp::Semaphore(0);
  auto woken = mp::Semaphore(0);
  std::vector<std::unique_ptr<mp::Process>> timed_out;
  // Three that time out at once.
  for (int i = 0; i < 3; ++i) {
    timed_out.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{
        .target = sleeper, .args = {cond, sleeping, woken, std::optional<double>(0.0)}, .daemon = true}));
    timed_out.back()->start();
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sleeping.acquire(true, 60.0));
  reaches_eventually([&] { return woken.get_value(); }, 3);
  check_invariant(cond);
  for (int i = 0; i < 3; ++i) woken.acquire();
  for (auto& p : timed_out) join_process(*p);

  Sleepers sleepers;
  sleepers.start(cond, sleeping, woken);
  // check no process/thread has woken up
  mp::os::sleep(0.1);
  EXPECT_EQ(woken.get_value(), 0);

  cond.acquire();
  cond.notify_all();  // wake them all up
  cond.release();
  reaches_eventually([&] { return woken.get_value(); }, 6);
  check_invariant(cond);
  sleepers.join();
}

/// _TestCondition.test_timeout
TEST(TestConditionOnce, Timeout) {
  auto cond = mp::Condition();
  cond.acquire();
  double t0 = mp::os::monotonic();
  EXPECT_FALSE(cond.wait(0.1));
  double elapsed = mp::os::monotonic() - t0;
  EXPECT_GE(elapsed, 0.1);
  EXPECT_LT(elapsed, 10.0);
  cond.release();
  try {
    cond.wait(0.0);
    ADD_FAILURE() << "no AssertionError";
  } catch (const mp::AssertionError& e) {
    EXPECT_STREQ(e.what(), "must acquire() condition before using wait()");
  }
  EXPECT_THROW(cond.notify(), mp::AssertionError);
}

/// _TestCondition.test_waitfor: a child waits for a shared state set by the parent.
TEST_P(TestCondition, WaitFor) {
  PristineHeap heap;
  auto state = mp::RawValue<'i'>(0);
  auto cond = mp::Condition();
  auto [r, w] = mp::Pipe(false);
  mp::Process p({.target = sync_tests::wait_for_four, .args = {cond, state, w}, .daemon = true});
  p.start();
  w.close();
  for (int i = 0; i < 4; ++i) {
    mp::os::sleep(0.01);
    std::lock_guard guard(cond);
    state.set_value(state.value() + 1);
    cond.notify();
  }
  EXPECT_EQ(r.recv(), mp::Object("True 4"));
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
}

/// _TestCondition.test_waitfor_timeout
TEST(TestConditionOnce, WaitForTimeout) {
  auto cond = mp::Condition();
  std::lock_guard guard(cond);
  double t0 = mp::os::monotonic();
  EXPECT_FALSE(cond.wait_for([] { return false; }, 0.1));
  EXPECT_GE(mp::os::monotonic() - t0, 0.1);
  EXPECT_TRUE(cond.wait_for([] { return true; }, 0.1));
}

/// _TestCondition.test_notify_n: three processes and three threads wait;
/// notify(2) wakes two, notify(4) the other four, and notify(3) with nobody
/// left waiting does nothing.
TEST_P(TestCondition, NotifyN) {
  auto cond = mp::Condition();
  auto sleeping = mp::Semaphore(0);
  auto woken = mp::Semaphore(0);
  Sleepers sleepers;
  sleepers.start(cond, sleeping, woken);
  // check no process/thread has woken up
  mp::os::sleep(0.1);
  EXPECT_EQ(woken.get_value(), 0);

  cond.acquire();
  cond.notify(2);  // wake some of them up
  cond.release();
  reaches_eventually([&] { return woken.get_value(); }, 2);

  cond.acquire();
  cond.notify(4);  // wake the rest of them
  cond.release();
  reaches_eventually([&] { return woken.get_value(); }, 6);

  cond.acquire();
  cond.notify(3);  // doesn't do anything more
  cond.release();
  EXPECT_EQ(woken.get_value(), 6);

  check_invariant(cond);
  sleepers.join();
}

/// _TestCondition.test_wait_result: wait(0) and wait(0.1) time out (false); a
/// notify from a child makes wait() true.  Then the child sends SIGINT to this
/// process while it waits.  Python's default SIGINT handler raises
/// KeyboardInterrupt out of wait(); a C++ signal handler cannot throw, so with
/// a handler installed the wait resumes after it (PEP 475) and keeps its
/// deadline: the signal arrived, the handler ran, and wait() timed out.
TEST_P(TestCondition, WaitResult) {
  static volatile std::sig_atomic_t interrupts = 0;
  interrupts = 0;
  struct sigaction action{}, old{};
  action.sa_handler = [](int) { interrupts = interrupts + 1; };
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(::sigaction(SIGINT, &action, &old), 0);

  auto c = mp::Condition();
  {
    std::lock_guard guard(c);
    EXPECT_FALSE(c.wait(0));
    EXPECT_FALSE(c.wait(0.1));

    mp::Process p({.target = sync_tests::wait_result, .args = {c, std::int64_t{::getpid()}}});
    p.start();
    EXPECT_TRUE(c.wait(60));

    double t0 = mp::os::monotonic();
    EXPECT_FALSE(c.wait(3));  // SIGINT comes about a second in
    EXPECT_GE(mp::os::monotonic() - t0, 3.0 - 0.05);
    join_process(p);
  }
  EXPECT_EQ(interrupts, 1);
  ::sigaction(SIGINT, &old, nullptr);
}

// ---------------------------------------------------------------- Event

/// _TestEvent.test_repr (3.11): "<Event at 0x... unset>", then set, then unset.
TEST(TestEventOnce, Repr) {
  auto event = mp::Event();
  EXPECT_TRUE(std::regex_match(event.repr(), std::regex("<Event at 0x[0-9a-f]+ unset>"))) << event.repr();
  event.set();
  EXPECT_TRUE(std::regex_match(event.repr(), std::regex("<Event at 0x[0-9a-f]+ set>"))) << event.repr();
  event.clear();
  EXPECT_TRUE(std::regex_match(event.repr(), std::regex("<Event at 0x[0-9a-f]+ unset>"))) << event.repr();
}

/// _TestEvent.test_event
TEST_P(TestEvent, Event) {
  auto event = mp::Event();
  EXPECT_FALSE(event.is_set());
  double t0 = mp::os::monotonic();
  EXPECT_FALSE(event.wait(0.0));
  EXPECT_FALSE(event.wait(0.1));
  EXPECT_GE(mp::os::monotonic() - t0, 0.1);

  event.set();
  EXPECT_TRUE(event.is_set());
  EXPECT_TRUE(event.wait());
  EXPECT_TRUE(event.wait(0.1));
  EXPECT_TRUE(event.is_set());
  event.clear();
  EXPECT_FALSE(event.is_set());

  // A child sets it after a while; wait() returns true.
  mp::Process p({.target = sync_tests::set_later, .args = {event}});
  p.start();
  EXPECT_TRUE(event.wait(60.0));  // bounded: a child that fails must not hang the test
  join_process(p);
  EXPECT_TRUE(event.is_set());
}

// ---------------------------------------------------------------- Barrier

}  // namespace

namespace sync_tests {

/// Python: the mixins' N, the parties of the barriers below.
constexpr int N = 5;
/// Python: _TestBarrier.defaultTimeout.
constexpr double kDefaultTimeout = 30.0;

/// Python: assert inside a child: a failure ends the child with exit code 1.
void check(bool condition, const char* what) {
  if (!condition) throw mp::AssertionError(what);
}

/// Python: _DummyList: only its length, which is all the barrier tests look
/// at: an int in the shared heap under a Lock (Python: a BufferWrapper and a
/// Lock), so that it reaches spawned children too (Convert<DummyList> below).
class DummyList {
 public:
  DummyList() : count_(mp::RawValue<'i'>(0)), lock_(mp::Lock()) {}
  DummyList(mp::sharedctypes::CValue<int> count, sync::Lock lock)
      : count_(std::move(count)), lock_(std::move(lock)) {}
  void append() {
    std::lock_guard guard(lock_);
    count_.set_value(count_.value() + 1);
  }
  int len() const {
    std::lock_guard guard(lock_);
    return count_.value();
  }
  /// Python: _DummyList.__getstate__: the wrapper and the lock.
  const mp::sharedctypes::CValue<int>& _count() const { return count_; }
  const sync::Lock& _lock() const { return lock_; }

 private:
  mp::sharedctypes::CValue<int> count_;
  mutable sync::Lock lock_;
};

/// _TestBarrier.multipass: n rounds in lockstep.
void multipass(sync::Barrier barrier, DummyList results0, DummyList results1, int n) {
  int m = barrier.parties();
  for (int i = 0; i < n; ++i) {
    results0.append();
    check(results1.len() == i * m, "len(results[1]) == i * m");
    barrier.wait();
    results1.append();
    check(results0.len() == (i + 1) * m, "len(results[0]) == (i + 1) * m");
    barrier.wait();
  }
  check(barrier.n_waiting() == 0, "barrier.n_waiting == 0");
  check(!barrier.broken(), "not barrier.broken");
}

/// _TestBarrier._test_wait_return_f: report the index wait() returned.
void wait_return_party(sync::Barrier barrier, sync::Lock lock, Connection& w) {
  int index = barrier.wait();
  std::lock_guard guard(lock);
  w.send(std::int64_t{index});
}

/// Where this process's action appends (Python: AppendTrue(results), a
/// callable object that pickles its list).  An action here is a registered
/// void() function with no state of its own, so each party points this at
/// its copy of the list before waiting; whichever party runs the action
/// appends to the same shared int.
DummyList* g_action_results = nullptr;

/// Python: AppendTrue.__call__.
void append_true() { g_action_results->append(); }

/// _TestBarrier._test_action_f.
void action_party(sync::Barrier barrier, DummyList results) {
  g_action_results = &results;
  barrier.wait();
  check(results.len() == 1, "len(results) == 1");
  g_action_results = nullptr;
}

/// An action that fails.
void failing_action() { throw mp::RuntimeError("action failed"); }

/// A party of a barrier whose action fails: BrokenBarrierError, or the
/// action's own error for the party that ran it.
void action_raises_party(sync::Barrier barrier, DummyList broken) {
  try {
    barrier.wait();
  } catch (const mp::BrokenBarrierError&) {
    broken.append();
  } catch (const mp::RuntimeError&) {
  }
}

/// _TestBarrier._test_abort_f.
void abort_party(sync::Barrier barrier, DummyList results1, DummyList results2) {
  try {
    int i = barrier.wait();
    if (i == N / 2) throw mp::RuntimeError("");
    barrier.wait();
    results1.append();
  } catch (const mp::BrokenBarrierError&) {
    results2.append();
  } catch (const mp::RuntimeError&) {
    barrier.abort();
  }
}

/// _TestBarrier._test_reset_f.
void reset_party(sync::Barrier barrier, DummyList results1, DummyList results2, DummyList results3) {
  int i = barrier.wait();
  if (i == N / 2) {
    // Wait until the others are all in the barrier.
    while (barrier.n_waiting() < N - 1) mp::os::sleep(0.001);
    barrier.reset();
  } else {
    try {
      barrier.wait();
      results1.append();
    } catch (const mp::BrokenBarrierError&) {
      results2.append();
    }
  }
  barrier.wait();  // and pass it again
  results3.append();
}

/// _TestBarrier._test_abort_and_reset_f.
void abort_and_reset_party(sync::Barrier barrier, sync::Barrier barrier2, DummyList results1,
                           DummyList results2, DummyList results3) {
  try {
    int i = barrier.wait();
    if (i == N / 2) throw mp::RuntimeError("");
    barrier.wait();
    results1.append();
  } catch (const mp::BrokenBarrierError&) {
    results2.append();
  } catch (const mp::RuntimeError&) {
    barrier.abort();
  }
  // Everyone leaves the barrier before the reset, and nobody enters it
  // again before the reset.
  if (barrier2.wait() == N / 2) barrier.reset();
  barrier2.wait();
  barrier.wait();
  results3.append();
}

/// _TestBarrier._test_timeout_f: one party is late; wait(0.5) breaks it for all.
void timeout_party(sync::Barrier barrier, DummyList results) {
  int i = barrier.wait();
  if (i == N / 2) mp::os::sleep(1.0);  // one is late
  try {
    barrier.wait(0.5);
  } catch (const mp::BrokenBarrierError&) {
    results.append();
  }
}

/// _TestBarrier._test_default_timeout_f.
void default_timeout_party(sync::Barrier barrier, DummyList results) {
  int i = barrier.wait(kDefaultTimeout);
  if (i == N / 2) mp::os::sleep(1.0);  // later than the default timeout
  try {
    barrier.wait();
  } catch (const mp::BrokenBarrierError&) {
    results.append();
  }
}

/// _TestBarrier._test_thousand_f.
void thousand_party(sync::Barrier barrier, int passes, sync::Lock lock, Connection& conn) {
  for (int i = 0; i < passes; ++i) {
    barrier.wait();
    std::lock_guard guard(lock);
    conn.send(std::int64_t{i});
  }
}

}  // namespace sync_tests
}  // namespace mp_test

namespace multiprocessing {
/// The test's DummyList as a Process argument: its int and its lock.
template <>
struct Convert<mp_test::sync_tests::DummyList> {
  static Object to_object(const mp_test::sync_tests::DummyList& v) {
    return Object::Tuple{{Object(v._count()), Object(v._lock())}};
  }
  static mp_test::sync_tests::DummyList from_object(const Object& o) {
    const Object::Tuple* t = std::get_if<Object::Tuple>(&o.variant());
    if (t == nullptr || t->items.size() != 2) throw TypeError("expected a DummyList, got " + o.repr());
    return mp_test::sync_tests::DummyList(t->items[0].as<sharedctypes::CValue<int>>(),
                                          t->items[1].as<synchronize::Lock>());
  }
};
}  // namespace multiprocessing

namespace mp_test {

MP_REGISTER_TARGET(sync_tests::multipass);
MP_REGISTER_TARGET(sync_tests::wait_return_party);
MP_REGISTER_TARGET(sync_tests::append_true);
MP_REGISTER_TARGET(sync_tests::action_party);
MP_REGISTER_TARGET(sync_tests::failing_action);
MP_REGISTER_TARGET(sync_tests::action_raises_party);
MP_REGISTER_TARGET(sync_tests::abort_party);
MP_REGISTER_TARGET(sync_tests::reset_party);
MP_REGISTER_TARGET(sync_tests::abort_and_reset_party);
MP_REGISTER_TARGET(sync_tests::timeout_party);
MP_REGISTER_TARGET(sync_tests::default_timeout_party);
MP_REGISTER_TARGET(sync_tests::thousand_party);

namespace {

using sync_tests::DummyList;
using sync_tests::kDefaultTimeout;
using sync_tests::N;

class TestBarrier : public WithStartMethod {
 protected:
  void SetUp() override {
    WithStartMethod::SetUp();
    barrier_.emplace(mp::Barrier(N, {}, kDefaultTimeout));
  }
  void TearDown() override {
    barrier_->abort();
    barrier_.reset();
    WithStartMethod::TearDown();
  }

  /// Python: run_threads(f, args): f runs in N - 1 processes and here.
  static void run_threads(mp::Target f, const mp::Args& args) {
    std::vector<std::unique_ptr<mp::Process>> procs;
    for (int i = 0; i < N - 1; ++i) {
      procs.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{.target = f, .args = args}));
      procs.back()->start();
    }
    f(args);
    for (auto& p : procs) {
      join_process(*p);
      EXPECT_EQ(p->exitcode(), 0);
    }
  }

  /// The barriers' two ints and the DummyLists' live in the shared heap: a
  /// pristine one per test, so that its arenas are gone when the test ends.
  PristineHeap heap_;
  std::optional<sync::Barrier> barrier_;
};

/// _TestBarrier.test_barrier
TEST_P(TestBarrier, Barrier) {
  DummyList r0, r1;
  run_threads(sync_tests::multipass, {*barrier_, r0, r1, 1});
}

/// _TestBarrier.test_barrier_10
TEST_P(TestBarrier, Barrier10) {
  DummyList r0, r1;
  run_threads(sync_tests::multipass, {*barrier_, r0, r1, 10});
}

/// _TestBarrier.test_wait_return: exactly one party gets index 0.
TEST_P(TestBarrier, WaitReturn) {
  auto [r, w] = mp::Pipe(false);
  sync::Lock lock = mp::Lock();
  run_threads(sync_tests::wait_return_party, {*barrier_, lock, w});
  std::vector<std::int64_t> results;
  for (int i = 0; i < N; ++i) results.push_back(r.recv().as<std::int64_t>());
  EXPECT_EQ(std::count(results.begin(), results.end(), 0), 1);
  std::sort(results.begin(), results.end());
  EXPECT_EQ(results, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

/// _TestBarrier.test_action: the action runs once, before anyone passes.
TEST_P(TestBarrier, Action) {
  DummyList results;
  sync::Barrier barrier = mp::Barrier(N, sync_tests::append_true);
  run_threads(sync_tests::action_party, {barrier, results});
  EXPECT_EQ(results.len(), 1);
}

/// A failing action breaks the barrier: its party gets the exception, the
/// others BrokenBarrierError (threading.Barrier's _release).
TEST_P(TestBarrier, ActionRaises) {
  DummyList broken;
  sync::Barrier barrier = mp::Barrier(N, sync_tests::failing_action, 30.0);
  run_threads(sync_tests::action_raises_party, {barrier, broken});
  EXPECT_EQ(broken.len(), N - 1);
  EXPECT_TRUE(barrier.broken());
}

/// A lambda action cannot reach a spawned child: start() refuses it with
/// PicklingError, as Python's pickle refuses a lambda.
TEST_P(TestBarrier, LambdaActionCannotCross) {
  if (GetParam() == "fork") GTEST_SKIP() << "under fork the child shares the action in memory";
  DummyList results;
  sync::Barrier barrier = mp::Barrier(N, [] {});
  mp::Process p({.target = sync_tests::action_party, .args = {barrier, results}});
  try {
    p.start();
    FAIL() << "a lambda action was pickled for a spawned child";
  } catch (const mp::PicklingError& e) {
    EXPECT_NE(std::string(e.what()).find("MP_REGISTER_TARGET"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(mp::active_children().empty());
}

/// _TestBarrier.test_abort
TEST_P(TestBarrier, Abort) {
  DummyList results1, results2;
  run_threads(sync_tests::abort_party, {*barrier_, results1, results2});
  EXPECT_EQ(results1.len(), 0);
  EXPECT_EQ(results2.len(), N - 1);
  EXPECT_TRUE(barrier_->broken());
}

/// _TestBarrier.test_reset: reset() frees the waiting parties.
TEST_P(TestBarrier, Reset) {
  DummyList results1, results2, results3;
  run_threads(sync_tests::reset_party, {*barrier_, results1, results2, results3});
  EXPECT_EQ(results1.len(), 0);
  EXPECT_EQ(results2.len(), N - 1);
  EXPECT_EQ(results3.len(), N);
}

/// _TestBarrier.test_abort_and_reset: a broken barrier can be reset.
TEST_P(TestBarrier, AbortAndReset) {
  DummyList results1, results2, results3;
  sync::Barrier barrier2 = mp::Barrier(N, {}, kDefaultTimeout);  // bounded: a failing child must not hang the test
  run_threads(sync_tests::abort_and_reset_party, {*barrier_, barrier2, results1, results2, results3});
  EXPECT_EQ(results1.len(), 0);
  EXPECT_EQ(results2.len(), N - 1);
  EXPECT_EQ(results3.len(), N);
}

/// _TestBarrier.test_timeout: one party is late; wait(0.5) breaks it for all.
TEST_P(TestBarrier, Timeout) {
  DummyList results;
  run_threads(sync_tests::timeout_party, {*barrier_, results});
  EXPECT_EQ(results.len(), barrier_->parties());
}

/// _TestBarrier.test_default_timeout
TEST_P(TestBarrier, DefaultTimeout) {
  sync::Barrier barrier = mp::Barrier(N, {}, 0.5);
  DummyList results;
  run_threads(sync_tests::default_timeout_party, {barrier, results});
  EXPECT_EQ(results.len(), barrier.parties());
}

// The Barrier tests that start no process run once, in the default context,
// on a heap of their own (a Barrier's state lives in the shared heap).
class TestBarrierOnce : public ::testing::Test {
 protected:
  PristineHeap heap_;
};

/// _TestBarrier.test_single_thread, and the state a fresh barrier shows.
TEST_F(TestBarrierOnce, SingleThread) {
  sync::Barrier b = mp::Barrier(1);
  EXPECT_EQ(b.wait(), 0);
  EXPECT_EQ(b.wait(), 0);
  EXPECT_EQ(b.parties(), 1);
  EXPECT_EQ(b.n_waiting(), 0);
  EXPECT_FALSE(b.broken());
  b.abort();
  EXPECT_TRUE(b.broken());
  EXPECT_THROW(b.wait(), mp::BrokenBarrierError);
  b.reset();
  EXPECT_EQ(b.wait(), 0);
  EXPECT_THROW(mp::Barrier(0), mp::ValueError);
}

/// threading.Barrier.__repr__, which 3.11's synchronize.Barrier inherits:
/// the parties waiting now, or "broken".
TEST_F(TestBarrierOnce, Repr) {
  sync::Barrier b = mp::Barrier(3);
  const std::string head = "<multiprocessing\\.synchronize\\.Barrier at 0x[0-9a-f]+: ";
  EXPECT_TRUE(std::regex_match(b.repr(), std::regex(head + "waiters=0/3>"))) << b.repr();
  std::thread party([&b] {
    try {
      b.wait();
    } catch (const mp::BrokenBarrierError&) {  // abort() below releases it
    }
  });
  double deadline = mp::os::monotonic() + 30;
  while (b.n_waiting() != 1 && mp::os::monotonic() < deadline) ::usleep(1000);
  EXPECT_TRUE(std::regex_match(b.repr(), std::regex(head + "waiters=1/3>"))) << b.repr();
  b.abort();
  party.join();
  EXPECT_TRUE(std::regex_match(b.repr(), std::regex(head + "broken>"))) << b.repr();
}

/// _TestBarrier.test_thousand: N processes pass 1000 times in lockstep.
TEST_P(TestBarrier, Thousand) {
  constexpr int passes = 1000;
  sync::Lock lock = mp::Lock();
  auto [conn, child_conn] = mp::Pipe(false);
  std::vector<std::unique_ptr<mp::Process>> procs;
  for (int j = 0; j < N; ++j) {
    procs.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{
        .target = sync_tests::thousand_party, .args = {*barrier_, passes, lock, child_conn}}));
    procs.back()->start();
  }
  child_conn.close();
  for (int i = 0; i < passes; ++i) {
    for (int j = 0; j < N; ++j) ASSERT_EQ(conn.recv(), mp::Object(std::int64_t{i}));
  }
  for (auto& p : procs) {
    join_process(*p);
    EXPECT_EQ(p->exitcode(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestBarrier, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestLock, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestSemaphore, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestCondition, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestEvent, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace
}  // namespace mp_test
