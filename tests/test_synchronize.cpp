// tests/test_synchronize.cpp — ports CPython's _TestLock, _TestSemaphore,
// _TestCondition, _TestEvent and _TestBarrier, across processes (and threads, as CPython mixes
// them), and the lesson they exist for: a shared counter under a Lock.  CPython runs
// each of these classes twice: with the objects of the context (ProcessesMixin) and
// with proxies of a running SyncManager (ManagerMixin).  So does this file: a test
// body is a template over ProcessTypes or ManagerTypes (below), run by a
// WithProcesses suite and by a WithManager suite (TestLockManager...).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <regex>
#include <thread>

#include "support.hpp"
#include "with_manager.hpp"

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

}  // namespace sync_tests

MP_REGISTER_TARGET(sync_tests::release_lock);
MP_REGISTER_TARGET(sync_tests::try_release_rlock);
MP_REGISTER_TARGET(sync_tests::add_under_lock);
MP_REGISTER_TARGET(sync_tests::release_later);

namespace sync_tests {

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

using mp::managers::AcquirerProxy;
using mp::managers::BarrierProxy;
using mp::managers::ConditionProxy;
using mp::managers::EventProxy;
using mp::managers::ListProxy;
using mp::managers::ValueProxy;

/// CPython's ProcessesMixin, for the test bodies shared with the manager
/// variants: self.Lock(), self.Condition()... make the objects of the default
/// context, and *Type names what they make (a child's target takes those).
struct ProcessTypes {
  static constexpr bool manager = false;
  using LockType = sync::Lock;
  using RLockType = sync::RLock;
  using SemaphoreType = sync::Semaphore;
  using ConditionType = sync::Condition;
  using EventType = sync::Event;
  using BarrierType = sync::Barrier;
  using ListType = sync_tests::DummyList;
  using IntType = mp::sharedctypes::CValue<int>;

  sync::Lock Lock() { return mp::Lock(); }
  sync::RLock RLock() { return mp::RLock(); }
  sync::Semaphore Semaphore(int value) { return mp::Semaphore(static_cast<unsigned>(value)); }
  sync::BoundedSemaphore BoundedSemaphore(int value) { return mp::BoundedSemaphore(static_cast<unsigned>(value)); }
  sync::Condition Condition() { return mp::Condition(); }
  sync::Event Event() { return mp::Event(); }
  sync::Barrier Barrier(int parties, std::optional<double> timeout = std::nullopt) {
    return mp::Barrier(parties, {}, timeout);
  }
  /// Python: _TestBarrier.DummyList(): a _DummyList.
  sync_tests::DummyList DummyList() { return {}; }
  /// Python: self.Value('i', v).  A RawValue: the tests that use it guard it
  /// with a Condition, and the heap's arena is shared with spawned children.
  IntType Value(int v) { return mp::RawValue<'i'>(v); }
};

/// CPython's ManagerMixin for the same bodies: the objects are proxies made by
/// the test's SyncManager (WithManager, support.hpp).
struct ManagerTypes {
  static constexpr bool manager = true;
  using LockType = AcquirerProxy;
  using RLockType = AcquirerProxy;
  using SemaphoreType = AcquirerProxy;
  using ConditionType = ConditionProxy;
  using EventType = EventProxy;
  using BarrierType = BarrierProxy;
  using ListType = ListProxy;
  using IntType = ValueProxy;

  mp::managers::SyncManager* m;
  AcquirerProxy Lock() { return m->Lock(); }
  AcquirerProxy RLock() { return m->RLock(); }
  AcquirerProxy Semaphore(int value) { return m->Semaphore(value); }
  AcquirerProxy BoundedSemaphore(int value) { return m->BoundedSemaphore(value); }
  ConditionProxy Condition() { return m->Condition(); }
  EventProxy Event() { return m->Event(); }
  BarrierProxy Barrier(int parties, std::optional<double> timeout = std::nullopt) {
    return m->Barrier(parties, timeout);
  }
  /// Python: _TestBarrier.DummyList(): self.manager.list().
  ListProxy DummyList() { return m->list(); }
  ValueProxy Value(int v) { return m->Value("i", std::int64_t{v}); }
};

/// What the bodies do with those objects where the two kinds spell it apart.
/// Python: results.append(True) and len(results).
void append_true(sync_tests::DummyList& l) { l.append(); }
void append_true(const ListProxy& l) { l.append(true); }
std::int64_t len(const sync_tests::DummyList& l) { return l.len(); }
std::int64_t len(const ListProxy& l) { return l.len(); }
/// Python: state.value and state.value = v on an int Value.
std::int64_t get_int(const mp::sharedctypes::CValue<int>& v) { return v.value(); }
std::int64_t get_int(const ValueProxy& v) { return v.value().as<std::int64_t>(); }
void set_int(mp::sharedctypes::CValue<int>& v, std::int64_t x) { v.set_value(static_cast<int>(x)); }
void set_int(const ValueProxy& v, std::int64_t x) { v.set_value(x); }
/// Python: the tests' get_value(sem).  A process semaphore tells its value.
/// A proxy does not (CPython's helper raises NotImplementedError there and
/// the check is skipped); here the value is counted instead: take the
/// semaphore without blocking until it refuses, then give back what was
/// taken.  Meant for semaphores that only this process takes.
int get_value(const sync::Semaphore& sem) { return sem.get_value(); }
int get_value(const AcquirerProxy& sem) {
  int n = 0;
  while (sem.acquire(false)) ++n;
  for (int i = 0; i < n; ++i) sem.release();
  return n;
}

namespace sync_tests {

/// Python: _TestCondition.f.
template <class T>
void sleeper(typename T::ConditionType cond, typename T::SemaphoreType sleeping, typename T::SemaphoreType woken,
             std::optional<double> timeout) {
  cond.acquire();
  sleeping.release();
  cond.wait(timeout);
  woken.release();
  cond.release();
}

/// Python: _TestCondition._test_waitfor_f: wait until the shared state is 4.
template <class T>
void wait_for_four(typename T::ConditionType cond, typename T::IntType state, Connection& c) {
  std::lock_guard guard(cond);
  bool result = cond.wait_for([&state] { return get_int(state) == 4; });
  c.send(std::string(result ? "True" : "False") + " " + std::to_string(get_int(state)));
}

/// Python: _TestCondition._test_wait_result: notify, then after a second send
/// SIGINT to the test's process (pid 0: to nobody, as CPython passes None for
/// the manager).
template <class T>
void wait_result(typename T::ConditionType c, std::int64_t pid) {
  {
    std::lock_guard guard(c);
    c.notify();
  }
  if (pid == 0) return;
  mp::os::sleep(1);
  mp::os::kill(static_cast<pid_t>(pid), SIGINT);
}

/// Python: _TestEvent._test_event: set the event after a while.
template <class T>
void set_later(typename T::EventType event) {
  mp::os::sleep(0.1);
  event.set();
}

/// Python: the mixins' N, the parties of the barriers below.
constexpr int N = 5;
/// Python: _TestBarrier.defaultTimeout.
constexpr double kDefaultTimeout = 30.0;

/// Python: assert inside a child: a failure ends the child with exit code 1.
void check(bool condition, const char* what) {
  if (!condition) throw mp::AssertionError(what);
}

/// _TestBarrier.multipass: n rounds in lockstep.
template <class T>
void multipass(typename T::BarrierType barrier, typename T::ListType results0, typename T::ListType results1,
               int n) {
  std::int64_t m = barrier.parties();
  for (int i = 0; i < n; ++i) {
    append_true(results0);
    check(len(results1) == i * m, "len(results[1]) == i * m");
    barrier.wait();
    append_true(results1);
    check(len(results0) == (i + 1) * m, "len(results[0]) == (i + 1) * m");
    barrier.wait();
  }
  check(barrier.n_waiting() == 0, "barrier.n_waiting == 0");
  check(!barrier.broken(), "not barrier.broken");
}

/// _TestBarrier._test_wait_return_f: report the index wait() returned.
template <class T>
void wait_return_party(typename T::BarrierType barrier, typename T::LockType lock, Connection& w) {
  std::int64_t index = barrier.wait();
  std::lock_guard guard(lock);
  w.send(index);
}

/// Where this process's action appends (Python: AppendTrue(results), a
/// callable object that pickles its list).  An action here is a registered
/// void() function with no state of its own, so each party points this at
/// its copy of the list before waiting; whichever party runs the action
/// appends to the same shared int.
DummyList* g_action_results = nullptr;

/// Python: AppendTrue.__call__.
void append_true_action() { g_action_results->append(); }

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
template <class T>
void abort_party(typename T::BarrierType barrier, typename T::ListType results1, typename T::ListType results2) {
  try {
    std::int64_t i = barrier.wait();
    if (i == N / 2) throw mp::RuntimeError("");
    barrier.wait();
    append_true(results1);
  } catch (const mp::BrokenBarrierError&) {
    append_true(results2);
  } catch (const mp::RuntimeError&) {
    barrier.abort();
  }
}

/// _TestBarrier._test_reset_f.
template <class T>
void reset_party(typename T::BarrierType barrier, typename T::ListType results1, typename T::ListType results2,
                 typename T::ListType results3) {
  std::int64_t i = barrier.wait();
  if (i == N / 2) {
    // Wait until the others are all in the barrier.
    while (barrier.n_waiting() < N - 1) mp::os::sleep(0.001);
    barrier.reset();
  } else {
    try {
      barrier.wait();
      append_true(results1);
    } catch (const mp::BrokenBarrierError&) {
      append_true(results2);
    }
  }
  barrier.wait();  // and pass it again
  append_true(results3);
}

/// _TestBarrier._test_abort_and_reset_f.
template <class T>
void abort_and_reset_party(typename T::BarrierType barrier, typename T::BarrierType barrier2,
                           typename T::ListType results1, typename T::ListType results2,
                           typename T::ListType results3) {
  abort_party<T>(barrier, results1, results2);  // Python repeats _test_abort_f's body here
  // Everyone leaves the barrier before the reset, and nobody enters it
  // again before the reset.
  if (barrier2.wait() == N / 2) barrier.reset();
  barrier2.wait();
  barrier.wait();
  append_true(results3);
}

/// _TestBarrier._test_timeout_f: one party is late; wait(0.5) breaks it for all.
template <class T>
void timeout_party(typename T::BarrierType barrier, typename T::ListType results) {
  std::int64_t i = barrier.wait();
  if (i == N / 2) mp::os::sleep(1.0);  // one is late
  try {
    barrier.wait(0.5);
  } catch (const mp::BrokenBarrierError&) {
    append_true(results);
  }
}

/// _TestBarrier._test_default_timeout_f.
template <class T>
void default_timeout_party(typename T::BarrierType barrier, typename T::ListType results) {
  std::int64_t i = barrier.wait(kDefaultTimeout);
  if (i == N / 2) mp::os::sleep(1.0);  // later than the default timeout
  try {
    barrier.wait();
  } catch (const mp::BrokenBarrierError&) {
    append_true(results);
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

// Each template target is registered once per kind: its name carries the kind.
MP_REGISTER_TARGET(sync_tests::sleeper<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::sleeper<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::wait_for_four<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::wait_for_four<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::wait_result<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::wait_result<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::set_later<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::set_later<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::multipass<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::multipass<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::wait_return_party<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::wait_return_party<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::append_true_action);
MP_REGISTER_TARGET(sync_tests::action_party);
MP_REGISTER_TARGET(sync_tests::failing_action);
MP_REGISTER_TARGET(sync_tests::action_raises_party);
MP_REGISTER_TARGET(sync_tests::abort_party<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::abort_party<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::reset_party<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::reset_party<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::abort_and_reset_party<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::abort_and_reset_party<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::timeout_party<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::timeout_party<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::default_timeout_party<ProcessTypes>);
MP_REGISTER_TARGET(sync_tests::default_timeout_party<ManagerTypes>);
MP_REGISTER_TARGET(sync_tests::thousand_party);

namespace {

using sync_tests::DummyList;
using sync_tests::kDefaultTimeout;
using sync_tests::N;

class TestLock : public WithStartMethod {};
class TestSemaphore : public WithStartMethod {};
class TestCondition : public WithStartMethod {};
class TestEvent : public WithStartMethod {};

/// The manager variants (CPython's WithManagerTestLock...): `self` makes
/// proxies of the test's manager.
class WithManagerTypes : public WithManager {
 protected:
  void SetUp() override {
    WithManager::SetUp();
    self.m = &manager();
  }
  ManagerTypes self{};
};
class TestLockManager : public WithManagerTypes {};
class TestSemaphoreManager : public WithManagerTypes {};
class TestConditionManager : public WithManagerTypes {};
class TestEventManager : public WithManagerTypes {};

// ---------------------------------------------------------------- Lock

/// _TestLock.test_lock.  Releasing too often: the process Lock's ValueError,
/// the manager's threading.Lock's RuntimeError (Python's ThreadError).
template <class T>
void test_lock(T& self) {
  auto lock = self.Lock();
  EXPECT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  lock.release();
  if constexpr (T::manager) {
    expect_raises<mp::RuntimeError>([&] { lock.release(); }, "release unlocked lock");
  } else {
    expect_raises<mp::ValueError>([&] { lock.release(); }, "semaphore or lock released too many times");
  }
}

/// _TestLock.test_rlock.  Releasing once too often: AssertionError for the
/// process RLock, threading.RLock's RuntimeError for the manager's.
template <class T>
void test_rlock(T& self) {
  auto lock = self.RLock();
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  if constexpr (!T::manager) {
    EXPECT_EQ(lock.repr(), "<RLock(MainProcess, 3)>");
  }
  lock.release();
  lock.release();
  lock.release();
  if constexpr (T::manager) {
    expect_raises<mp::RuntimeError>([&] { lock.release(); }, "cannot release un-acquired lock");
  } else {
    EXPECT_EQ(lock.repr(), "<RLock(None, 0)>");
    expect_raises<mp::AssertionError>([&] { lock.release(); },
                                      "attempt to release recursive lock not owned by thread");
  }
}

/// _TestLock.test_lock_context
template <class T>
void test_lock_context(T& self) {
  auto lock = self.Lock();
  { std::lock_guard guard(lock); EXPECT_FALSE(lock.acquire(false)); }
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

/// _TestLock.test_lock
TEST(TestLockOnce, Lock) { ProcessTypes self; test_lock(self); }
TEST_P(TestLockManager, Lock) { test_lock(self); }
/// _TestLock.test_rlock
TEST(TestLockOnce, RLock) { ProcessTypes self; test_rlock(self); }
TEST_P(TestLockManager, RLock) { test_rlock(self); }
/// _TestLock.test_lock_context
TEST(TestLockOnce, LockContext) { ProcessTypes self; test_lock_context(self); }
TEST_P(TestLockManager, LockContext) { test_lock_context(self); }

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

/// _TestSemaphore.test_semaphore: a semaphore of 2 taken and given back,
/// then raised above its start value.
template <class T>
void test_semaphore(T& self) {
  auto sem = self.Semaphore(2);
  check_semaphore(sem, [&] { return get_value(sem); });
  sem.release();
  EXPECT_EQ(get_value(sem), 3);
  sem.release();
  EXPECT_EQ(get_value(sem), 4);
  if constexpr (!T::manager) {
    EXPECT_EQ(sem.repr(), "<Semaphore(value=4)>");
  }
}

/// _TestSemaphore.test_bounded_semaphore (and the over-release CPython skips
/// on macOS): ValueError from both kinds.
template <class T>
void test_bounded_semaphore(T& self) {
  auto sem = self.BoundedSemaphore(2);
  check_semaphore(sem, [&] { return get_value(sem); });
  EXPECT_THROW(sem.release(), mp::ValueError);
  EXPECT_EQ(get_value(sem), 2);
  if constexpr (!T::manager) {
    EXPECT_EQ(sem.repr(), "<BoundedSemaphore(value=2, maxvalue=2)>");
  }
}

/// _TestSemaphore.test_semaphore
TEST(TestSemaphoreOnce, Semaphore) { ProcessTypes self; test_semaphore(self); }
TEST_P(TestSemaphoreManager, Semaphore) { test_semaphore(self); }
/// _TestSemaphore.test_bounded_semaphore
TEST(TestSemaphoreOnce, BoundedSemaphore) { ProcessTypes self; test_bounded_semaphore(self); }
TEST_P(TestSemaphoreManager, BoundedSemaphore) { test_bounded_semaphore(self); }

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

/// Only true when nobody sleeps.  CPython checks it for the process
/// Condition only: a proxy shows no counters.
void check_invariant(const sync::Condition& cond) {
  EXPECT_EQ(cond._sleeping_count().get_value() - cond._woken_count().get_value(), 0);
  EXPECT_EQ(cond._wait_semaphore().get_value(), 0);
}
void check_invariant(const ConditionProxy&) {}

/// Poll `func` until it returns `value` (Python: assertReachesEventually).
void reaches_eventually(const std::function<int()>& func, int value) {
  for (int i = 0; i < 300 && func() != value; ++i) mp::os::sleep(0.01);
  mp::os::sleep(0.05);
  EXPECT_EQ(func(), value);
}

/// Python's shared step of test_notify_all and test_notify_n: start three
/// processes and three threads that wait on `cond` with no timeout, and wait
/// until all six sleep.
template <class T>
struct Sleepers {
  using Cond = typename T::ConditionType;
  using Sem = typename T::SemaphoreType;
  std::vector<std::unique_ptr<mp::Process>> procs;
  std::vector<std::unique_ptr<mp::dummy::Process>> threads;

  void start(Cond& cond, Sem& sleeping, Sem& woken) {
    for (int i = 0; i < 3; ++i) {
      procs.push_back(std::make_unique<mp::Process>(
          mp::ProcessOptions{.target = &sync_tests::sleeper<T>,
                             .args = {cond, sleeping, woken, std::optional<double>()},
                             .daemon = true}));
      procs.back()->start();
      threads.push_back(std::make_unique<mp::dummy::Process>(
          mp::ProcessOptions{.target = [=] { sync_tests::sleeper<T>(cond, sleeping, woken, std::nullopt); }}));
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

/// _TestCondition.test_notify: one process and one thread sleep; each
/// notify() wakes exactly one.
template <class T>
void test_notify(T& self) {
  auto cond = self.Condition();
  auto sleeping = self.Semaphore(0);
  auto woken = self.Semaphore(0);
  mp::Process p({.target = &sync_tests::sleeper<T>,
                 .args = {cond, sleeping, woken, std::optional<double>()},
                 .daemon = true});
  p.start();
  mp::dummy::Process t({.target = [=] { sync_tests::sleeper<T>(cond, sleeping, woken, std::nullopt); }});
  t.start();
  ASSERT_TRUE(sleeping.acquire(true, 60.0));  // wait for both to start sleeping
  ASSERT_TRUE(sleeping.acquire(true, 60.0));
  mp::os::sleep(0.1);
  EXPECT_EQ(get_value(woken), 0);  // nobody has woken up

  cond.acquire();
  cond.notify();
  cond.release();
  reaches_eventually([&] { return get_value(woken); }, 1);

  cond.acquire();
  cond.notify();
  cond.release();
  reaches_eventually([&] { return get_value(woken); }, 2);

  check_invariant(cond);
  join_process(p);
  t.join();
}

/// _TestCondition.test_notify_all: three sleepers with a zero timeout wake by
/// themselves and are accounted for; then notify_all() wakes three processes
/// and three threads.
template <class T>
void test_notify_all(T& self) {
  auto cond = self.Condition();
  auto sleeping = self.Semaphore(0);
  auto woken = self.Semaphore(0);
  std::vector<std::unique_ptr<mp::Process>> timed_out;
  // Three that time out at once.
  for (int i = 0; i < 3; ++i) {
    timed_out.push_back(std::make_unique<mp::Process>(
        mp::ProcessOptions{.target = &sync_tests::sleeper<T>,
                           .args = {cond, sleeping, woken, std::optional<double>(0.0)},
                           .daemon = true}));
    timed_out.back()->start();
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sleeping.acquire(true, 60.0));
  reaches_eventually([&] { return get_value(woken); }, 3);
  check_invariant(cond);
  for (int i = 0; i < 3; ++i) woken.acquire();
  for (auto& p : timed_out) join_process(*p);

  Sleepers<T> sleepers;
  sleepers.start(cond, sleeping, woken);
  // check no process/thread has woken up
  mp::os::sleep(0.1);
  EXPECT_EQ(get_value(woken), 0);

  cond.acquire();
  cond.notify_all();  // wake them all up
  cond.release();
  reaches_eventually([&] { return get_value(woken); }, 6);
  check_invariant(cond);
  sleepers.join();
}

/// _TestCondition.test_notify_n: three processes and three threads wait;
/// notify(2) wakes two, notify(4) the other four, and notify(3) with nobody
/// left waiting does nothing.
template <class T>
void test_notify_n(T& self) {
  auto cond = self.Condition();
  auto sleeping = self.Semaphore(0);
  auto woken = self.Semaphore(0);
  Sleepers<T> sleepers;
  sleepers.start(cond, sleeping, woken);
  // check no process/thread has woken up
  mp::os::sleep(0.1);
  EXPECT_EQ(get_value(woken), 0);

  cond.acquire();
  cond.notify(2);  // wake some of them up
  cond.release();
  reaches_eventually([&] { return get_value(woken); }, 2);

  cond.acquire();
  cond.notify(4);  // wake the rest of them
  cond.release();
  reaches_eventually([&] { return get_value(woken); }, 6);

  cond.acquire();
  cond.notify(3);  // doesn't do anything more
  cond.release();
  EXPECT_EQ(get_value(woken), 6);

  check_invariant(cond);
  sleepers.join();
}

/// _TestCondition.test_timeout, and wait()/notify() without the lock: the
/// process Condition's AssertionError, threading.Condition's RuntimeError.
template <class T>
void test_condition_timeout(T& self) {
  auto cond = self.Condition();
  cond.acquire();
  double t0 = mp::os::monotonic();
  EXPECT_FALSE(cond.wait(0.1));
  double elapsed = mp::os::monotonic() - t0;
  EXPECT_GE(elapsed, 0.1);
  EXPECT_LT(elapsed, 10.0);
  cond.release();
  if constexpr (T::manager) {
    expect_raises<mp::RuntimeError>([&] { cond.wait(0.0); }, "cannot wait on un-acquired lock");
    EXPECT_THROW(cond.notify(), mp::RuntimeError);
  } else {
    expect_raises<mp::AssertionError>([&] { cond.wait(0.0); }, "must acquire() condition before using wait()");
    EXPECT_THROW(cond.notify(), mp::AssertionError);
  }
}

/// _TestCondition.test_waitfor: a child waits for a shared state set by the parent.
template <class T>
void test_waitfor(T& self) {
  PristineHeap heap;
  auto state = self.Value(0);
  auto cond = self.Condition();
  auto [r, w] = mp::Pipe(false);
  mp::Process p({.target = &sync_tests::wait_for_four<T>, .args = {cond, state, w}, .daemon = true});
  p.start();
  w.close();
  for (int i = 0; i < 4; ++i) {
    mp::os::sleep(0.01);
    std::lock_guard guard(cond);
    set_int(state, get_int(state) + 1);
    cond.notify();
  }
  EXPECT_EQ(r.recv(), mp::Object("True 4"));
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
}

/// _TestCondition.test_waitfor_timeout
template <class T>
void test_waitfor_timeout(T& self) {
  auto cond = self.Condition();
  std::lock_guard guard(cond);
  double t0 = mp::os::monotonic();
  EXPECT_FALSE(cond.wait_for([] { return false; }, 0.1));
  EXPECT_GE(mp::os::monotonic() - t0, 0.1);
  EXPECT_TRUE(cond.wait_for([] { return true; }, 0.1));
}

/// _TestCondition.test_wait_result: wait(0) and wait(0.1) time out (false); a
/// notify from a child makes wait() true.  For processes the child then
/// sends SIGINT to this process while it waits (CPython does that for
/// ProcessesMixin only).  Python's default SIGINT handler raises
/// KeyboardInterrupt out of wait(); a C++ signal handler cannot throw, so with
/// a handler installed the wait resumes after it (PEP 475) and keeps its
/// deadline: the signal arrived, the handler ran, and wait() timed out.
template <class T>
void test_wait_result(T& self) {
  static volatile std::sig_atomic_t interrupts = 0;
  interrupts = 0;
  struct sigaction action{}, old{};
  action.sa_handler = [](int) { interrupts = interrupts + 1; };
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(::sigaction(SIGINT, &action, &old), 0);  // so that the child's SIGINT ends nothing
  const std::int64_t pid = T::manager ? 0 : ::getpid();

  auto c = self.Condition();
  {
    std::lock_guard guard(c);
    EXPECT_FALSE(c.wait(0));
    EXPECT_FALSE(c.wait(0.1));

    mp::Process p({.target = &sync_tests::wait_result<T>, .args = {c, pid}});
    p.start();
    EXPECT_TRUE(c.wait(60));

    if (pid != 0) {
      double t0 = mp::os::monotonic();
      EXPECT_FALSE(c.wait(3));  // SIGINT comes about a second in
      EXPECT_GE(mp::os::monotonic() - t0, 3.0 - 0.05);
    }
    join_process(p);
  }
  EXPECT_EQ(interrupts, pid != 0 ? 1 : 0);
  ::sigaction(SIGINT, &old, nullptr);  // the test binary's own handling back
}

/// _TestCondition.test_notify
TEST_P(TestCondition, Notify) { ProcessTypes self; test_notify(self); }
TEST_P(TestConditionManager, Notify) { test_notify(self); }
/// _TestCondition.test_notify_all
TEST_P(TestCondition, NotifyAll) { ProcessTypes self; test_notify_all(self); }
TEST_P(TestConditionManager, NotifyAll) { test_notify_all(self); }
/// _TestCondition.test_notify_n
TEST_P(TestCondition, NotifyN) { ProcessTypes self; test_notify_n(self); }
TEST_P(TestConditionManager, NotifyN) { test_notify_n(self); }
/// _TestCondition.test_timeout
TEST(TestConditionOnce, Timeout) { ProcessTypes self; test_condition_timeout(self); }
TEST_P(TestConditionManager, Timeout) { test_condition_timeout(self); }
/// _TestCondition.test_waitfor
TEST_P(TestCondition, WaitFor) { ProcessTypes self; test_waitfor(self); }
TEST_P(TestConditionManager, WaitFor) { test_waitfor(self); }
/// _TestCondition.test_waitfor_timeout
TEST(TestConditionOnce, WaitForTimeout) { ProcessTypes self; test_waitfor_timeout(self); }
TEST_P(TestConditionManager, WaitForTimeout) { test_waitfor_timeout(self); }
/// _TestCondition.test_wait_result
TEST_P(TestCondition, WaitResult) { ProcessTypes self; test_wait_result(self); }
TEST_P(TestConditionManager, WaitResult) { test_wait_result(self); }

// ---------------------------------------------------------------- Event

/// _TestEvent.test_repr (3.11), for processes: "<Event at 0x... unset>", then
/// set, then unset.
TEST(TestEventOnce, Repr) {
  auto event = mp::Event();
  EXPECT_TRUE(std::regex_match(event.repr(), std::regex("<Event at 0x[0-9a-f]+ unset>"))) << event.repr();
  event.set();
  EXPECT_TRUE(std::regex_match(event.repr(), std::regex("<Event at 0x[0-9a-f]+ set>"))) << event.repr();
  event.clear();
  EXPECT_TRUE(std::regex_match(event.repr(), std::regex("<Event at 0x[0-9a-f]+ unset>"))) << event.repr();
}

/// _TestEvent.test_repr, for the manager: the proxy's repr, set or not.
TEST_P(TestEventManager, Repr) {
  auto event = self.Event();
  const std::regex proxy_repr("<EventProxy object, typeid 'Event' at 0x[0-9a-f]+>");
  EXPECT_TRUE(std::regex_match(event.repr(), proxy_repr)) << event.repr();
  event.set();
  EXPECT_TRUE(std::regex_match(event.repr(), proxy_repr)) << event.repr();
}

/// _TestEvent.test_event
template <class T>
void test_event(T& self) {
  auto event = self.Event();
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
  mp::Process p({.target = &sync_tests::set_later<T>, .args = {event}});
  p.start();
  EXPECT_TRUE(event.wait(60.0));  // bounded: a child that fails must not hang the test
  join_process(p);
  EXPECT_TRUE(event.is_set());
}

TEST_P(TestEvent, Event) { ProcessTypes self; test_event(self); }
TEST_P(TestEventManager, Event) { test_event(self); }

// ---------------------------------------------------------------- Barrier

/// Python: run_threads(f, args): f runs in N - 1 processes and here.
void run_threads(mp::Target f, const mp::Args& args) {
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

/// Python: _TestBarrier.setUp / tearDown: self.barrier, a Barrier(N) of the
/// kind, with the default timeout; aborted after the test.
template <class T, class Base>
class BarrierSuite : public Base {
 protected:
  void SetUp() override {
    Base::SetUp();
    if constexpr (T::manager) self.m = &this->manager();
    barrier_.emplace(self.Barrier(N, kDefaultTimeout));
  }
  void TearDown() override {
    if (barrier_) barrier_->abort();
    barrier_.reset();
    Base::TearDown();
  }

  T self{};
  /// The barriers' two ints and the DummyLists' live in the shared heap: a
  /// pristine one per test, so that its arenas are gone when the test ends.
  PristineHeap heap_;
  std::optional<typename T::BarrierType> barrier_;
};

class TestBarrier : public BarrierSuite<ProcessTypes, WithStartMethod> {};
class TestBarrierManager : public BarrierSuite<ManagerTypes, WithManager> {};

/// _TestBarrier.test_barrier and test_barrier_10: `passes` rounds in lockstep.
template <class T>
void test_barrier(T& self, const typename T::BarrierType& barrier, int passes) {
  auto r0 = self.DummyList();
  auto r1 = self.DummyList();
  run_threads(&sync_tests::multipass<T>, {barrier, r0, r1, passes});
}

/// _TestBarrier.test_wait_return: exactly one party gets index 0.
template <class T>
void test_wait_return(T& self, const typename T::BarrierType& barrier) {
  auto [r, w] = mp::Pipe(false);
  auto lock = self.Lock();
  run_threads(&sync_tests::wait_return_party<T>, {barrier, lock, w});
  std::vector<std::int64_t> results;
  for (int i = 0; i < N; ++i) results.push_back(r.recv().as<std::int64_t>());
  EXPECT_EQ(std::count(results.begin(), results.end(), 0), 1);
  std::sort(results.begin(), results.end());
  EXPECT_EQ(results, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

/// _TestBarrier.test_abort
template <class T>
void test_abort(T& self, const typename T::BarrierType& barrier) {
  auto results1 = self.DummyList();
  auto results2 = self.DummyList();
  run_threads(&sync_tests::abort_party<T>, {barrier, results1, results2});
  EXPECT_EQ(len(results1), 0);
  EXPECT_EQ(len(results2), N - 1);
  EXPECT_TRUE(barrier.broken());
}

/// _TestBarrier.test_reset: reset() frees the waiting parties.
template <class T>
void test_reset(T& self, const typename T::BarrierType& barrier) {
  auto results1 = self.DummyList();
  auto results2 = self.DummyList();
  auto results3 = self.DummyList();
  run_threads(&sync_tests::reset_party<T>, {barrier, results1, results2, results3});
  EXPECT_EQ(len(results1), 0);
  EXPECT_EQ(len(results2), N - 1);
  EXPECT_EQ(len(results3), N);
}

/// _TestBarrier.test_abort_and_reset: a broken barrier can be reset.
template <class T>
void test_abort_and_reset(T& self, const typename T::BarrierType& barrier) {
  auto results1 = self.DummyList();
  auto results2 = self.DummyList();
  auto results3 = self.DummyList();
  auto barrier2 = self.Barrier(N, kDefaultTimeout);  // bounded: a failing child must not hang the test
  run_threads(&sync_tests::abort_and_reset_party<T>, {barrier, barrier2, results1, results2, results3});
  EXPECT_EQ(len(results1), 0);
  EXPECT_EQ(len(results2), N - 1);
  EXPECT_EQ(len(results3), N);
}

/// _TestBarrier.test_timeout: one party is late; wait(0.5) breaks it for all.
template <class T>
void test_barrier_timeout(T& self, const typename T::BarrierType& barrier) {
  auto results = self.DummyList();
  run_threads(&sync_tests::timeout_party<T>, {barrier, results});
  EXPECT_EQ(len(results), barrier.parties());
}

/// _TestBarrier.test_default_timeout
template <class T>
void test_default_timeout(T& self) {
  auto barrier = self.Barrier(N, 0.5);
  auto results = self.DummyList();
  run_threads(&sync_tests::default_timeout_party<T>, {barrier, results});
  EXPECT_EQ(len(results), barrier.parties());
}

/// _TestBarrier.test_single_thread, and the state a fresh barrier shows.
/// Barrier(0): the process Barrier's ValueError; the manager's comes back as
/// a RemoteError, as in Python (the server's error while creating, as text).
template <class T>
void test_single_thread(T& self) {
  auto b = self.Barrier(1);
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
  if constexpr (T::manager) {
    EXPECT_THROW(self.Barrier(0), mp::managers::RemoteError);
  } else {
    EXPECT_THROW(self.Barrier(0), mp::ValueError);
  }
}

/// _TestBarrier.test_barrier
TEST_P(TestBarrier, Barrier) { test_barrier(self, *barrier_, 1); }
TEST_P(TestBarrierManager, Barrier) { test_barrier(self, *barrier_, 1); }
/// _TestBarrier.test_barrier_10
TEST_P(TestBarrier, Barrier10) { test_barrier(self, *barrier_, 10); }
TEST_P(TestBarrierManager, Barrier10) { test_barrier(self, *barrier_, 10); }
/// _TestBarrier.test_wait_return
TEST_P(TestBarrier, WaitReturn) { test_wait_return(self, *barrier_); }
TEST_P(TestBarrierManager, WaitReturn) { test_wait_return(self, *barrier_); }
/// _TestBarrier.test_abort
TEST_P(TestBarrier, Abort) { test_abort(self, *barrier_); }
TEST_P(TestBarrierManager, Abort) { test_abort(self, *barrier_); }
/// _TestBarrier.test_reset
TEST_P(TestBarrier, Reset) { test_reset(self, *barrier_); }
TEST_P(TestBarrierManager, Reset) { test_reset(self, *barrier_); }
/// _TestBarrier.test_abort_and_reset
TEST_P(TestBarrier, AbortAndReset) { test_abort_and_reset(self, *barrier_); }
TEST_P(TestBarrierManager, AbortAndReset) { test_abort_and_reset(self, *barrier_); }
/// _TestBarrier.test_timeout
TEST_P(TestBarrier, Timeout) { test_barrier_timeout(self, *barrier_); }
TEST_P(TestBarrierManager, Timeout) { test_barrier_timeout(self, *barrier_); }
/// _TestBarrier.test_default_timeout
TEST_P(TestBarrier, DefaultTimeout) { test_default_timeout(self); }
TEST_P(TestBarrierManager, DefaultTimeout) { test_default_timeout(self); }
/// _TestBarrier.test_single_thread (the manager's runs per start method: its
/// server is started by one)
TEST_P(TestBarrierManager, SingleThread) { test_single_thread(self); }

/// _TestBarrier.test_action: the action runs once, before anyone passes.
/// (Processes only: a manager's Barrier takes no action, which could not
/// cross to the server.)
TEST_P(TestBarrier, Action) {
  DummyList results;
  sync::Barrier barrier = mp::Barrier(N, sync_tests::append_true_action);
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

// The Barrier tests that start no process run once, in the default context,
// on a heap of their own (a Barrier's state lives in the shared heap).
class TestBarrierOnce : public ::testing::Test {
 protected:
  PristineHeap heap_;
};

/// _TestBarrier.test_single_thread
TEST_F(TestBarrierOnce, SingleThread) { ProcessTypes self; test_single_thread(self); }

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
INSTANTIATE_TEST_SUITE_P(WithManager, TestBarrierManager, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestLockManager, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestSemaphoreManager, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestConditionManager, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestEventManager, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace
}  // namespace mp_test
