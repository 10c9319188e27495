// multiprocessing/synchronize.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/synchronize.py and the C type it stands
// on, _multiprocessing.SemLock (Modules/_multiprocessing/semaphore.c): locks,
// semaphores, conditions and events that work across processes, all built on one
// POSIX named semaphore each.
//
// The objects are handles, like Python references: copying a Lock gives another
// handle to the same semaphore, so a lambda may capture it by value.  A forked
// child inherits the semaphore's mapping and uses the same kernel object.
#pragma once

#include <limits.h>
#include <pthread.h>
#include <semaphore.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "multiprocessing/reduction.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing {
class BaseContext;
}

namespace multiprocessing::synchronize {

/// Python: synchronize.RECURSIVE_MUTEX, SEMAPHORE (the `kind` of a SemLock).
inline constexpr int RECURSIVE_MUTEX = 0;
inline constexpr int SEMAPHORE = 1;
// Python: synchronize.SEM_VALUE_MAX is the system's SEM_VALUE_MAX, the macro
// from <limits.h> (2147483647 on Linux), used here as it is.

/// Python: synchronize.SemLock together with _multiprocessing.SemLock.
/// A named POSIX semaphore (sem_open) with Python's bookkeeping: which thread
/// holds it and how many times (for RLock), and the maximum value a release
/// may not exceed (for Lock and BoundedSemaphore).
class SemLock {
 public:
  /// Python: SemLock(kind, value, maxvalue, ctx=...).  Under the fork start
  /// method the name is unlinked at once (nothing can leak); otherwise it is
  /// unlinked when the last handle in the creating process goes, or at exit,
  /// and it is registered with the resource tracker meanwhile, which unlinks
  /// it if the creating process dies without doing so.
  /// \throws OSError if sem_open fails; ValueError for a value above maxvalue.
  SemLock(int kind, unsigned value, unsigned maxvalue, BaseContext* ctx = nullptr);

  /// Python: acquire(block=True, timeout=None): true if acquired.  A
  /// non-blocking call ignores the timeout, as Python's does.  (Defined
  /// below the class, inline: see SemLock::Impl.)
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt);
  /// Python: release().
  /// \throws AssertionError "attempt to release recursive lock not owned by thread" (RLock);
  ///   ValueError "semaphore or lock released too many times" (Lock, BoundedSemaphore).
  void release();
  /// `with lock:` — BasicLockable, for std::lock_guard / std::unique_lock.
  void lock() { acquire(); }
  void unlock() { release(); }

  /// Python: _semlock._count(): how many times this process holds it.
  int _count() const;
  /// Python: _semlock._is_mine(): held by the calling thread.
  bool _is_mine() const;
  /// Python: _semlock._get_value(): the semaphore's value (sem_getvalue).
  int _get_value() const;
  /// Python: _semlock._is_zero().
  bool _is_zero() const;
  /// Python: _semlock._after_fork(): the child holds nothing (count = 0).
  void _after_fork();
  /// Python: _semlock.name ("/mp-xxxxxxxx"), kind, maxvalue.
  const std::string& name() const;
  int kind() const;
  unsigned maxvalue() const;

  struct Impl;
  /// acquire() and release() when their short path does not apply: every
  /// other case (a busy semaphore, a deadline, EINTR, an RLock held here,
  /// errors).  `tried_errno`: the errno of the short path's failed
  /// sem_trywait, 0 if it made none.  Port only.
  static bool _acquire_slow(Impl& self, bool block, std::optional<double> timeout, int tried_errno);
  static void _release_slow(Impl& self);
  /// Trace mode's line for an acquire or a release.  Port only.
  static void _trace_op(const Impl& self, const char* what);

  /// The semaphore behind a handle, for a handle of another class (a Lock's
  /// state given to a Lock in a child).  Port only.
  struct Rebuilt {
    std::shared_ptr<Impl> impl;
  };
  explicit SemLock(Rebuilt rebuilt) : impl_(std::move(rebuilt.impl)) {}

  /// Python: SemLock.__getstate__ / pickling: the object a Process's args
  /// hold for this semaphore.  In memory (fork) it is this same semaphore;
  /// pickled for a spawned child it is (None, kind, maxvalue, name), and
  /// only while a child is being started (context.assert_spawning).
  /// `qualname` is the Python class: "Lock", "RLock", "Semaphore"...
  Object _reduce(const char* qualname) const;
  /// The same, with the class told by kind and maxvalue: "RLock", "Lock"
  /// (maxvalue 1) or "Semaphore" (for a handle held as a plain SemLock).
  Object _reduce() const;
  /// Python: SemLock.__setstate__ / _multiprocessing.SemLock._rebuild: the
  /// semaphore an object made by _reduce stands for; in a spawned child,
  /// opened by name (sem_open without O_CREAT).
  /// \throws UnpicklingError for another kind of object; OSError if the
  ///   name cannot be opened (its creator is gone).
  static Rebuilt _rebuild(const Object& obj);

 protected:
  std::shared_ptr<Impl> impl_;
};

/// The state of one SemLock: Python's _multiprocessing.SemLock object
/// (handle, kind, maxvalue, name, count, last_tid) plus the cleanup that
/// synchronize.SemLock.__init__ arranges.  Defined here, in the header, so
/// that the short paths of acquire() and release() below compile into the
/// caller: an uncontended acquire + release is two atomic operations in the
/// semaphore, and a function call and its argument passing each way cost
/// about as much again on a machine where those are fast.
struct SemLock::Impl {
  sem_t* handle = SEM_FAILED;  // semaphore.c: handle
  int kind = SEMAPHORE;        // kind
  unsigned maxvalue = 1;       // maxvalue
  std::string name;            // name
  bool name_unlinked = false;  // made in a fork context: the name is gone already
  // count: acquisitions by this process (RLock: by its owner); last_tid: the
  // thread that acquired it last.  Python's C code updates them under the GIL;
  // here threads run truly at once, so they are atomics (see add_count).
  std::atomic<int> count{0};
  std::atomic<pthread_t> last_tid{};
  util::AfterForkRegistration after_fork;  // Python: util.register_after_fork(self, _after_fork)
  util::Finalize cleanup;                  // Python: Finalize(self, SemLock._cleanup, exitpriority=0)

  ~Impl();
  bool is_mine() const {
    return count.load(std::memory_order_relaxed) > 0 &&
           ::pthread_equal(last_tid.load(std::memory_order_relaxed), ::pthread_self());
  }

  /// Change `count`.  With maxvalue 1 (Lock, RLock) only the holder changes
  /// it, and the semaphore orders one holder after the next, so a plain
  /// load and store suffice; a semaphore with several holders needs fetch_add.
  void add_count(int delta) {
    if (maxvalue == 1) {
      count.store(count.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    } else {
      count.fetch_add(delta, std::memory_order_relaxed);
    }
  }
  /// After a successful wait: Python's ++count and last_tid = this thread.
  void took() {
    add_count(1);
    last_tid.store(::pthread_self(), std::memory_order_relaxed);
  }
};

// [counter-acquire]
inline bool SemLock::acquire(bool block, std::optional<double> timeout) {
  Impl& self = *impl_;
  // The common case, kept short (_acquire_slow has the rest): a free
  // semaphore, taken with sem_trywait, one atomic compare-and-swap in user
  // space.  (sem_trywait, not sem_wait: glibc's sem_wait is also a thread
  // cancellation point and checks for a pending cancellation first, which
  // costs more than the try itself.)  Not for an RLock that this process
  // holds already: that may be a recursive acquire.
  int tried_errno = 0;
  if (self.kind != RECURSIVE_MUTEX || self.count.load(std::memory_order_relaxed) == 0) {
    if (::sem_trywait(self.handle) == 0) [[likely]] {
      self.took();  // Python: ++self->count; self->last_tid = PyThread_get_thread_ident()
      if (util::trace_enabled()) [[unlikely]] _trace_op(self, "acquire");
      return true;
    }
    tried_errno = errno;
  }
  // Busy (then wait, or not), interrupted, or an RLock held here.
  return _acquire_slow(self, block, timeout, tried_errno);
}
// [counter-acquire]

// [counter-release]
inline void SemLock::release() {
  Impl& self = *impl_;
  // The common case, kept short (_release_slow has the rest and raises): a
  // Lock or semaphore below its maximum (semaphore.c reads the value first
  // and refuses to post at maxvalue: "released too many times"), or the
  // owner's last release of an RLock.
  bool may_post;
  if (self.kind != RECURSIVE_MUTEX) {
    int sval = 0;
    may_post = ::sem_getvalue(self.handle, &sval) == 0 &&
               (sval < 0 || static_cast<unsigned>(sval) < self.maxvalue);
  } else {
    may_post = self.count.load(std::memory_order_relaxed) == 1 && self.is_mine();
  }
  if (may_post) [[likely]] {
    self.add_count(-1);  // before sem_post: see _release_slow
    if (::sem_post(self.handle) == 0) [[likely]] {
      if (util::trace_enabled()) [[unlikely]] _trace_op(self, "release");
      return;
    }
    self.add_count(1);  // not posted: _release_slow tries again and raises
  }
  _release_slow(self);
}
// [counter-release]

/// Python: synchronize.Semaphore(value=1): released without bound.
class Semaphore : public SemLock {
 public:
  explicit Semaphore(unsigned value = 1, BaseContext* ctx = nullptr);
  explicit Semaphore(Rebuilt rebuilt) : SemLock(std::move(rebuilt)) {}
  /// Python: get_value().
  int get_value() const { return _get_value(); }
  /// Python: "<Semaphore(value=1)>".
  std::string repr() const;

 protected:
  Semaphore(int kind, unsigned value, unsigned maxvalue, BaseContext* ctx)
      : SemLock(kind, value, maxvalue, ctx) {}
};

/// Python: synchronize.BoundedSemaphore(value=1): releasing above the
/// initial value is a ValueError.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(unsigned value = 1, BaseContext* ctx = nullptr);
  explicit BoundedSemaphore(Rebuilt rebuilt) : Semaphore(std::move(rebuilt)) {}
  /// Python: "<BoundedSemaphore(value=1, maxvalue=1)>".
  std::string repr() const;
};

/// Python: synchronize.Lock: a binary semaphore.  Unlike RLock, any thread
/// or process may release it.
class Lock : public SemLock {
 public:
  explicit Lock(BaseContext* ctx = nullptr);
  explicit Lock(Rebuilt rebuilt) : SemLock(std::move(rebuilt)) {}
  /// Python: "<Lock(owner=MainProcess)>", owner=None when free,
  /// SomeOtherThread / SomeOtherProcess when held elsewhere.
  std::string repr() const;
};

/// Python: synchronize.RLock: re-entrant; only the owning thread may release.
class RLock : public SemLock {
 public:
  explicit RLock(BaseContext* ctx = nullptr);
  explicit RLock(Rebuilt rebuilt) : SemLock(std::move(rebuilt)) {}
  /// Python: "<RLock(MainProcess, 2)>", "<RLock(None, 0)>" when free.
  std::string repr() const;
};

/// Python: the loop of Condition.wait_for, which threading.Condition,
/// synchronize.Condition and managers' ConditionProxy each spell out: call
/// `wait(time left)` (nullopt: no limit) until `predicate()` is true or
/// `timeout` seconds have passed.  Returns the predicate's last result.  The
/// one loop of the port's three conditions (this one, dummy's, the proxy).
bool _wait_for(const std::function<void(std::optional<double>)>& wait,
               const std::function<bool()>& predicate, std::optional<double> timeout);

/// Python: synchronize.Condition(lock=None): wait/notify across processes,
/// built from the lock and three counting semaphores (sleeping, woken, wait).
class Condition {
 public:
  /// Python: Condition(lock=None): an RLock when no lock is given.
  explicit Condition(std::optional<SemLock> lock = std::nullopt, BaseContext* ctx = nullptr);

  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt) {
    return lock_.acquire(block, timeout);
  }
  void release() { lock_.release(); }
  void lock() { lock_.acquire(); }
  void unlock() { lock_.release(); }

  /// Python: wait(timeout=None): release the lock, sleep until notified or
  /// timed out, re-acquire.  Returns false on timeout.
  /// \throws AssertionError "must acquire() condition before using wait()".
  bool wait(std::optional<double> timeout = std::nullopt);
  /// Python: notify(n=1): wake up to n sleepers.  \throws AssertionError "lock is not owned".
  void notify(long n = 1);
  /// Python: notify_all().
  void notify_all();
  /// Python: wait_for(predicate, timeout=None): the predicate's last result.
  bool wait_for(const std::function<bool()>& predicate, std::optional<double> timeout = std::nullopt);
  /// Python: "<Condition(<RLock(None, 0)>, 0)>" (the number of sleepers).
  std::string repr() const;

  /// Python: Condition.__getstate__ (lock and the three semaphores), only
  /// while spawning; and __setstate__.
  Object _reduce() const;
  static Condition _rebuild(const Object& obj);

  /// Python: _sleeping_count, _woken_count, _wait_semaphore (for tests).
  const Semaphore& _sleeping_count() const { return sleeping_count_; }
  const Semaphore& _woken_count() const { return woken_count_; }
  const Semaphore& _wait_semaphore() const { return wait_semaphore_; }

 private:
  Condition(SemLock lock, Semaphore sleeping, Semaphore woken, Semaphore wait)
      : lock_(std::move(lock)),
        sleeping_count_(std::move(sleeping)),
        woken_count_(std::move(woken)),
        wait_semaphore_(std::move(wait)) {}

  SemLock lock_;
  Semaphore sleeping_count_;
  Semaphore woken_count_;
  Semaphore wait_semaphore_;
};

/// Python: synchronize.Event: a flag that processes can wait for.
class Event {
 public:
  explicit Event(BaseContext* ctx = nullptr);
  /// Python: is_set(), set(), clear().
  bool is_set();
  void set();
  void clear();
  /// Python: wait(timeout=None): true if the flag is set.
  bool wait(std::optional<double> timeout = std::nullopt);
  /// Python: Event.__repr__ (3.11): "<Event at 0x7f... set>" / "<Event at 0x7f... unset>".
  std::string repr();

  /// Python: Event.__getstate__ (the condition and the flag) / __setstate__.
  Object _reduce() const;
  static Event _rebuild(const Object& obj);

 private:
  Event(Condition cond, Semaphore flag) : cond_(std::move(cond)), flag_(std::move(flag)) {}

  Condition cond_;
  Semaphore flag_;
};

}  // namespace multiprocessing::synchronize

namespace multiprocessing::heap {
class BufferWrapper;
}  // namespace multiprocessing::heap

namespace multiprocessing::synchronize {

/// Python: threading.Barrier, the algorithm both of the port's Barriers run:
/// synchronize::Barrier (which in Python subclasses threading.Barrier,
/// moving the two counters into shared memory and using a Condition made of
/// semaphores) and dummy::Barrier (threading.Barrier itself, for threads).
/// What differs between them, the condition and where the two counters live,
/// is what the class that uses it supplies through the hooks below.
///
/// The barrier cycles through four states: filling (0: parties arrive and
/// wait), draining (1: the last one arrived, everyone is leaving),
/// resetting (-1: reset() was called while parties waited; they leave with
/// BrokenBarrierError) and broken (-2: abort(), a timeout or a failed
/// action; every wait raises until reset()).
class BarrierBase {
 public:
  virtual ~BarrierBase() = default;

  /// Python: wait(timeout=None): block until `parties` processes (or threads)
  /// have called wait(); returns a different index in [0, parties) to each.
  /// The party that arrives last runs `action` before anyone is released.
  /// \throws BrokenBarrierError if the barrier is or becomes broken or reset
  ///   while waiting, or the timeout expires (which breaks it for all).
  int wait(std::optional<double> timeout = std::nullopt);
  /// Python: reset(): back to filling; parties waiting now get BrokenBarrierError.
  void reset();
  /// Python: abort(): break the barrier; every present and future wait()
  /// raises BrokenBarrierError until reset().
  void abort();

  /// Python: parties, n_waiting, broken (properties).
  int parties() const { return parties_; }
  int n_waiting() const;
  bool broken() const;
 protected:
  /// Python: Barrier.__init__(parties, action=None, timeout=None); `timeout`
  /// is the default for wait().
  /// \throws ValueError "parties must be >= 1" (CPython 3.11 would accept 0
  ///   and then hang in wait(); later versions refuse it as this port does).
  BarrierBase(int parties, std::function<void()> action, std::optional<double> timeout);
  BarrierBase(const BarrierBase&) = default;
  BarrierBase& operator=(const BarrierBase&) = default;

  // The user's condition (Python: self._cond) and counters (the _state and
  // _count attributes, or properties over shared memory).  The counters are
  // reached through std::atomic_ref: n_waiting() and broken() read them
  // without the condition's lock, as Python's properties do, and in C++ a
  // plain read beside a write under the lock is a data race.  Every access
  // is atomic, so those reads see a value some wait() or reset() stored; the
  // lock still orders all the writes.
  virtual void _cond_acquire() const = 0;
  virtual void _cond_release() const = 0;
  virtual bool _cond_wait_for(const std::function<bool()>& predicate, std::optional<double> timeout) const = 0;
  virtual void _cond_notify_all() const = 0;
  virtual std::atomic_ref<int> _state() const = 0;
  virtual std::atomic_ref<int> _count() const = 0;

  int parties_;
  std::function<void()> action_;
  std::optional<double> timeout_;

 private:
  struct Held;  // holds the condition for a scope (Python: `with self._cond:`)
  // threading.Barrier's private steps, run with the condition held.
  void _enter();
  void _release();
  void _wait(std::optional<double> timeout);
  void _exit();
  void _break();
};

/// Python: synchronize.Barrier(parties, action=None, timeout=None), which is
/// threading.Barrier (BarrierBase) with its two counters moved into shared
/// memory and its Condition made of semaphores, so that processes can meet
/// at it.
class Barrier : public BarrierBase {
 public:
  /// Python: threading.Barrier.__repr__, which 3.11's synchronize.Barrier inherits:
  /// "<multiprocessing.synchronize.Barrier at 0x7f...: waiters=0/3>", or
  /// "<multiprocessing.synchronize.Barrier at 0x7f...: broken>".
  std::string repr() const;
  /// Python: Barrier(parties, action=None, timeout=None).  `action` runs in
  /// the party that arrives last, before anyone is released; `timeout` is
  /// the default for wait().
  /// \throws ValueError "parties must be >= 1".
  explicit Barrier(int parties, std::function<void()> action = {},
                   std::optional<double> timeout = std::nullopt, BaseContext* ctx = nullptr);

  /// Python: Barrier.__getstate__, (parties, action, timeout, cond, wrapper),
  /// and __setstate__.  Under fork the child's args hold this very barrier.
  /// Under spawn and forkserver the condition crosses by its semaphores'
  /// names, the two ints by their heap arena's fd (heap::BufferWrapper), and
  /// the action by the name it was registered under with MP_REGISTER_TARGET,
  /// as Python pickles a function by its qualified name.
  /// \throws PicklingError (when pickled for a spawned child) if the action
  ///   is a lambda or an unregistered function; RuntimeError as a SemLock's.
  Object _reduce() const;
  static Barrier _rebuild(const Object& obj);

 private:
  Barrier(int parties, std::function<void()> action, std::optional<double> timeout, Condition cond,
          std::shared_ptr<heap::BufferWrapper> wrapper);

  void _cond_acquire() const override { cond_.acquire(); }
  void _cond_release() const override { cond_.release(); }
  bool _cond_wait_for(const std::function<bool()>& predicate, std::optional<double> timeout) const override {
    return cond_.wait_for(predicate, timeout);
  }
  void _cond_notify_all() const override { cond_.notify_all(); }
  /// Python: the _state property: array[0] in shared memory.
  std::atomic_ref<int> _state() const override { return std::atomic_ref<int>(array_[0]); }
  /// Python: the _count property: array[1].
  std::atomic_ref<int> _count() const override { return std::atomic_ref<int>(array_[1]); }

  mutable Condition cond_;
  std::shared_ptr<heap::BufferWrapper> wrapper_;  ///< Python: self._wrapper: two ints in the shared heap
  int* array_ = nullptr;                          ///< Python: self._array, a view of them
};

}  // namespace multiprocessing::synchronize

namespace multiprocessing {

/// The synchronize objects as Process args (reduction.hpp's customization
/// point): under fork the child gets the same semaphores; under spawn and
/// forkserver they are pickled by name, as CPython pickles them.
template <>
struct Convert<synchronize::Lock> {
  static Object to_object(const synchronize::Lock& v) { return v._reduce("Lock"); }
  static synchronize::Lock from_object(const Object& o) { return synchronize::Lock(synchronize::SemLock::_rebuild(o)); }
};
template <>
struct Convert<synchronize::RLock> {
  static Object to_object(const synchronize::RLock& v) { return v._reduce("RLock"); }
  static synchronize::RLock from_object(const Object& o) { return synchronize::RLock(synchronize::SemLock::_rebuild(o)); }
};
template <>
struct Convert<synchronize::Semaphore> {
  static Object to_object(const synchronize::Semaphore& v) { return v._reduce("Semaphore"); }
  static synchronize::Semaphore from_object(const Object& o) {
    return synchronize::Semaphore(synchronize::SemLock::_rebuild(o));
  }
};
template <>
struct Convert<synchronize::BoundedSemaphore> {
  static Object to_object(const synchronize::BoundedSemaphore& v) { return v._reduce("BoundedSemaphore"); }
  static synchronize::BoundedSemaphore from_object(const Object& o) {
    return synchronize::BoundedSemaphore(synchronize::SemLock::_rebuild(o));
  }
};
template <>
struct Convert<synchronize::Condition> {
  static Object to_object(const synchronize::Condition& v) { return v._reduce(); }
  static synchronize::Condition from_object(const Object& o) { return synchronize::Condition::_rebuild(o); }
};
template <>
struct Convert<synchronize::Event> {
  static Object to_object(const synchronize::Event& v) { return v._reduce(); }
  static synchronize::Event from_object(const Object& o) { return synchronize::Event::_rebuild(o); }
};
template <>
struct Convert<synchronize::Barrier> {
  static Object to_object(const synchronize::Barrier& v) { return v._reduce(); }
  static synchronize::Barrier from_object(const Object& o) { return synchronize::Barrier::_rebuild(o); }
};

}  // namespace multiprocessing
