// multiprocessing/dummy/dummy.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/dummy/__init__.py: the same API as the
// package, backed by threads.  It exists so that one program can be run with
// threads and then with processes, and show what changes: threads share the
// process's memory, processes each get a copy.
//
// Python's dummy takes most of its names from the standard library, and so
// does this file, which holds their C++ twins:
//   Process, current_process, active_children   threading.Thread and friends
//   Lock, RLock, Semaphore, BoundedSemaphore,
//   Condition, Event, Barrier                   threading's (Barrier runs the
//                                               algorithm synchronize::Barrier
//                                               also runs: BarrierBase)
//   Queue, JoinableQueue                        queue.Queue (the same class)
//   Pipe                                        dummy/connection.py's (connection.hpp)
//   Pool                                        pool.ThreadPool
//   Namespace, Value, Array, Manager            dummy's own small classes
// Every object here is for the threads of one process: nothing is pickled.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "multiprocessing/dummy/connection.hpp"
#include "multiprocessing/pool.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/sharedctypes.hpp"
#include "multiprocessing/synchronize.hpp"

namespace multiprocessing::dummy {

/// Python: dummy.DummyProcess (a threading.Thread with the Process API).
/// Same construction as multiprocessing::Process:
///   dummy::Process t({.target = f, .args = {1}});
/// A Process is joined by its destructor if it still runs (C++ cannot abandon
/// a thread that uses the object, as Python abandons a daemon thread).
class Process {
 public:
  explicit Process(ProcessOptions options = {});
  virtual ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Python: Thread.run(): call target(*args).
  virtual void run();
  /// Python: DummyProcess.start().
  /// \throws RuntimeError "threads can only be started once", or
  ///   "Parent is ... but current_process is ..." when started by another thread.
  void start();
  /// Python: Thread.join(timeout=None).
  /// \throws RuntimeError "cannot join thread before it is started".
  void join(std::optional<double> timeout = std::nullopt);
  /// Python: Thread.is_alive().
  bool is_alive() const;

  /// Python: name ("Thread-N" unless given), daemon, ident / native_id.
  std::string name() const;
  void set_name(std::string name);
  bool daemon() const;
  void set_daemon(bool daemonic);
  std::optional<pid_t> ident() const;
  /// Python: DummyProcess.exitcode: None until started and finished, then 0.
  std::optional<int> exitcode() const;

  /// For the thread that is not a dummy::Process (the main thread).
  struct NotStarted {};
  Process(NotStarted, std::string name);

  /// Python: threading._after_fork(), run in a forked child: only the thread
  /// that called fork() exists there, so every other running thread's object
  /// is marked stopped (joining it returns at once) and forgotten.
  static void _after_fork_in_child();

 private:
  void bootstrap_thread();

  Target target_;
  Args args_;
  std::string name_;
  bool daemon_ = false;
  Process* parent_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable finished_cv_;
  bool started_ = false;
  bool finished_ = false;
  std::optional<pid_t> native_id_;
  std::thread thread_;
};

/// Python: dummy.current_process = threading.current_thread.
Process& current_process();
/// Python: dummy.active_children(): the calling thread's started, live children.
std::vector<Process*> active_children();
/// Python: dummy.freeze_support(): nothing to do.
inline void freeze_support() {}

/// Python: threading._shutdown(): wait for every non-daemon dummy::Process.
/// A child process runs it at the end of _bootstrap, so that it exits only
/// after its non-daemon threads have finished, as a Python child does.
void _shutdown();

/// Python: dummy.Lock = threading.Lock.  Any thread may release it.
class Lock {
 public:
  /// Python: acquire(blocking=True, timeout=-1): true if acquired.
  bool acquire(bool block = true, double timeout = -1);
  /// \throws RuntimeError "release unlocked lock".
  void release();
  bool locked() const;
  // BasicLockable, so std::lock_guard and std::unique_lock work (Python: `with lock:`).
  void lock() { acquire(); }
  void unlock() { release(); }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool locked_ = false;
};

/// Python: dummy.RLock = threading.RLock: re-entrant, released by its owner only.
class RLock {
 public:
  bool acquire(bool block = true, double timeout = -1);
  /// \throws RuntimeError "cannot release un-acquired lock".
  void release();
  void lock() { acquire(); }
  void unlock() { release(); }

  /// Python: RLock._is_owned(): held by the calling thread (Condition asks).
  bool _is_owned();
  /// Python: RLock._release_save(): release it completely, however deep,
  /// and return the depth, for Condition.wait.
  /// \throws RuntimeError "cannot release un-acquired lock".
  int _release_save();
  /// Python: RLock._acquire_restore(state): acquire it back at that depth.
  void _acquire_restore(int count);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread::id owner_;
  int count_ = 0;
};


/// Python: dummy.Condition = threading.Condition(lock=None): wait until
/// notified, with the lock released meanwhile.  As in Python, each waiting
/// thread sleeps on a Lock of its own (a "waiter", held once before it
/// waits); notify() releases the first waiters.  The waiter list is guarded
/// by the condition's own lock, which every caller of wait() and notify()
/// holds.  Not copyable.
class Condition {
 public:
  /// Python: Condition(): a new RLock of its own.
  Condition();
  /// Python: Condition(lock): the given Lock, which must outlive the condition.
  explicit Condition(Lock& lock);
  /// Python: Condition(rlock): the given RLock, which must outlive the condition.
  explicit Condition(RLock& lock);
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// Python: acquire(blocking=True, timeout=-1) and release(): the lock's.
  bool acquire(bool block = true, double timeout = -1);
  void release();
  void lock() { acquire(); }
  void unlock() { release(); }

  /// Python: wait(timeout=None): release the lock (an RLock however deep it
  /// is held), sleep until notified or `timeout` seconds have passed, take
  /// the lock back.  Returns false on timeout.
  /// \throws RuntimeError "cannot wait on un-acquired lock".
  bool wait(std::optional<double> timeout = std::nullopt);
  /// Python: wait_for(predicate, timeout=None): wait until predicate() is
  /// true, or the time is up; the predicate's last result.
  bool wait_for(const std::function<bool()>& predicate, std::optional<double> timeout = std::nullopt);
  /// Python: notify(n=1): wake up to n waiting threads.
  /// \throws RuntimeError "cannot notify on un-acquired lock".
  void notify(std::size_t n = 1);
  /// Python: notify_all().
  void notify_all();

 private:
  /// Python: _is_owned, _release_save, _acquire_restore: the RLock's own,
  /// or for a Lock the generic versions Condition defines.
  bool _is_owned();
  int _release_save();
  void _acquire_restore(int saved);

  std::unique_ptr<RLock> own_rlock_;  // Python: the RLock made when no lock is given
  Lock* lock_ = nullptr;              // Python: self._lock, when a Lock
  RLock* rlock_ = nullptr;            // Python: self._lock, when an RLock
  std::deque<std::shared_ptr<Lock>> waiters_;  // Python: self._waiters
};

/// Python: dummy.Semaphore = threading.Semaphore(value=1): a counter that
/// acquire() decrements, waiting while it is zero, and release() increments.
/// Built as Python builds it, on a Condition(Lock()).  Not copyable.
class Semaphore {
 public:
  /// \throws ValueError "semaphore initial value must be >= 0".
  explicit Semaphore(int value = 1);
  virtual ~Semaphore() = default;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Python: acquire(blocking=True, timeout=None): true if acquired.
  /// \throws ValueError "can't specify timeout for non-blocking acquire".
  bool acquire(bool blocking = true, std::optional<double> timeout = std::nullopt);
  /// Python: release(n=1): add n, wake up to n waiters.
  /// \throws ValueError "n must be one or more".
  virtual void release(int n = 1);
  void lock() { acquire(); }
  void unlock() { release(); }

  /// Python: _value (the counter now).
  int _value();
  /// Python: "<threading.Semaphore at 0x...: value=1>".
  virtual std::string repr();

 protected:
  /// Add n and wake up to n waiters; the caller holds cond_.
  void _release_locked(int n);

  Lock lock_;
  Condition cond_{lock_};  // Python: self._cond = Condition(Lock())
  int value_;              // Python: self._value, guarded by cond_
};

/// Python: dummy.BoundedSemaphore = threading.BoundedSemaphore(value=1): a
/// Semaphore that refuses to count above its initial value.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(int value = 1);
  /// Python: release(n=1).
  /// \throws ValueError "Semaphore released too many times" (and "n must be
  ///   one or more").
  void release(int n = 1) override;
  /// Python: "<threading.BoundedSemaphore at 0x...: value=1/1>".
  std::string repr() override;

 private:
  int initial_value_;  // Python: self._initial_value
};

/// Python: dummy.Event = threading.Event: a flag threads wait for.  Not copyable.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Python: is_set(), set() (wakes every waiter), clear().
  bool is_set();
  void set();
  void clear();
  /// Python: wait(timeout=None): true once the flag is set, false if
  /// `timeout` seconds pass first.
  bool wait(std::optional<double> timeout = std::nullopt);
  /// Python: "<threading.Event at 0x...: set>" (or "unset").
  std::string repr();

 private:
  Lock lock_;
  Condition cond_{lock_};  // Python: self._cond = Condition(Lock())
  bool flag_ = false;      // Python: self._flag, guarded by cond_
};

/// Python: dummy.Barrier = threading.Barrier(parties, action=None,
/// timeout=None): wait(), reset(), abort(), parties(), n_waiting() and
/// broken() are synchronize::BarrierBase's (threading.Barrier's algorithm),
/// run here over a thread Condition(Lock()) and two plain counters.
/// BrokenBarrierError is exceptions.hpp's.  Not copyable.
class Barrier : public synchronize::BarrierBase {
 public:
  /// \throws ValueError "parties must be >= 1".
  explicit Barrier(int parties, std::function<void()> action = {},
                   std::optional<double> timeout = std::nullopt);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;
  /// Python: "<threading.Barrier at 0x...: waiters=0/3>", or "...: broken>".
  std::string repr() const;

 private:
  void _cond_acquire() const override { cond_.acquire(); }
  void _cond_release() const override { cond_.release(); }
  bool _cond_wait_for(const std::function<bool()>& predicate, std::optional<double> timeout) const override {
    return cond_.wait_for(predicate, timeout);
  }
  void _cond_notify_all() const override { cond_.notify_all(); }
  std::atomic_ref<int> _state() const override { return std::atomic_ref<int>(state_); }
  std::atomic_ref<int> _count() const override { return std::atomic_ref<int>(count_); }

  mutable Lock lock_;
  mutable Condition cond_{lock_};  // Python: self._cond = Condition(Lock())
  mutable int state_ = 0;          // Python: self._state (0 filling, 1 draining, -1 resetting, -2 broken)
  mutable int count_ = 0;          // Python: self._count
};

/// Python: dummy.Queue = queue.Queue(maxsize=0): a FIFO of Objects for
/// threads, with a count of unfinished tasks.  One Lock (`mutex`) guards the
/// items; three Conditions on it are what threads wait on: not_empty (get),
/// not_full (put), all_tasks_done (join).  A handle, like Python's
/// references: copies refer to the same queue, so a lambda may capture it
/// by value.  Full and Empty are queues::Full and queues::Empty
/// (exceptions.hpp), as Python's multiprocessing re-exports queue's.
class Queue {
 public:
  /// Python: Queue(maxsize=0): maxsize <= 0 means no bound.
  explicit Queue(int maxsize = 0);

  /// Python: put(item, block=True, timeout=None): append `item`, waiting
  /// while the queue is full (at most `timeout` seconds); one more
  /// unfinished task.
  /// \throws queues::Full if still full after the timeout, or at once when
  ///   block is false; ValueError "'timeout' must be a non-negative number".
  void put(const Object& item, bool block = true, std::optional<double> timeout = std::nullopt);
  /// Python: get(block=True, timeout=None): take the oldest item, waiting
  /// while there is none (at most `timeout` seconds).
  /// \throws queues::Empty if still empty after the timeout, or at once when
  ///   block is false; ValueError "'timeout' must be a non-negative number".
  Object get(bool block = true, std::optional<double> timeout = std::nullopt);
  /// Python: put_nowait(item) = put(item, False); get_nowait() = get(False).
  void put_nowait(const Object& item) { put(item, false); }
  Object get_nowait() { return get(false); }

  /// Python: task_done(): one item taken by get() is processed; join()
  /// returns when every item put has been marked so.
  /// \throws ValueError "task_done() called too many times".
  void task_done();
  /// Python: join(): wait until every item put is marked done.
  void join();

  /// Python: qsize(), empty(), full() (exact at the moment they look, as in
  /// Python; the next moment another thread may change them).
  int qsize() const;
  bool empty() const;
  bool full() const;
  /// Python: maxsize.
  int maxsize() const;
  /// Python: not_empty, the Condition get() waits on (dummy.connection's
  /// poll() waits on it too).
  Condition& not_empty() const;
  /// Python: mutex, the Lock the three Conditions share.
  Lock& mutex() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// Python: dummy.JoinableQueue = Queue (queue.Queue already counts tasks).
using JoinableQueue = Queue;

/// Python: dummy.Pipe = dummy.connection.Pipe.
using connection::Pipe;

/// Python: dummy.Pool(processes=None, initializer=None, initargs=()): a
/// pool.ThreadPool, whose workers are dummy::Process threads.
pool::ThreadPool Pool(std::optional<int> processes = std::nullopt, Target initializer = {},
                      Args initargs = {});

/// Python: dummy.Namespace(**kwds): an object whose attributes are set and
/// read by name; here the attributes are a map of name -> Object.  Its
/// operations are guarded by a mutex, as Python's attribute access is by the
/// GIL.  (managers.Namespace is the same class in Python.)  Not copyable.
class Namespace {
 public:
  /// Python: Namespace(a=1, b='x') is Namespace({{"a", 1}, {"b", "x"}}).
  Namespace() = default;
  explicit Namespace(std::map<std::string, Object> kwds);
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;

  /// Python: getattr(ns, name).
  /// \throws AttributeError "'Namespace' object has no attribute 'name'".
  Object get(const std::string& name) const;
  /// Python: setattr(ns, name, value).
  void set(const std::string& name, const Object& value);
  /// Python: delattr(ns, name).  \throws AttributeError as get().
  void del(const std::string& name);
  /// Python: hasattr(ns, name).
  bool has(const std::string& name) const;
  /// Python: vars(ns), a copy.
  std::map<std::string, Object> __dict__() const;
  /// Python: "Namespace(a=1, b='x')": the attributes not starting with '_',
  /// sorted by name, each as name=repr(value).
  std::string repr() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Object> dict_;  // Python: self.__dict__
};

/// Python: dummy.Value(typecode, value, lock=True): a plain holder of
/// `value` with the Value interface.  Unlike sharedctypes' Value nothing is
/// shared memory, the typecode is only recorded and `lock` is ignored, as in
/// Python; value()/set_value() are each atomic (Python: under the GIL), so
/// `v.set_value(v.value() + 1)` from two threads can still lose an update.
/// Not copyable.
class Value {
 public:
  Value(std::string typecode, Object value, bool lock = true);
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  /// Python: the value property.
  Object value() const;
  void set_value(const Object& value);
  /// Python: "<Value('i', 1)>".
  std::string repr() const;

 private:
  std::string typecode_;  // Python: self._typecode
  mutable std::mutex mutex_;
  Object value_;          // Python: self._value
};

/// Python: dummy.Array(typecode, sequence, lock=True) = array.array(typecode,
/// sequence): a plain array of the typecode's C type (a std::vector here),
/// `lock` ignored: `auto a = dummy::Array<'i'>({1, 2, 3});`.
template <char Typecode>
std::vector<sharedctypes::type_of<Typecode>> Array(std::vector<sharedctypes::type_of<Typecode>> sequence,
                                                   bool lock = true) {
  (void)lock;
  return sequence;
}

/// Python: dummy.shutdown(): nothing to do.
inline void shutdown() {}

/// Python: dummy.Manager() returns the dummy module itself, so that code
/// written for a SyncManager (`m = Manager(); q = m.Queue()`) runs with
/// threads.  Here the module is this object: its methods are dummy's
/// factories, and what they return are the thread objects above.
///   dummy::Manager m;  auto q = m.Queue();  auto ns = m.Namespace();
class Manager {
 public:
  dummy::Lock Lock() const { return dummy::Lock(); }
  dummy::RLock RLock() const { return dummy::RLock(); }
  dummy::Semaphore Semaphore(int value = 1) const { return dummy::Semaphore(value); }
  dummy::BoundedSemaphore BoundedSemaphore(int value = 1) const { return dummy::BoundedSemaphore(value); }
  dummy::Condition Condition() const { return dummy::Condition(); }
  dummy::Event Event() const { return dummy::Event(); }
  dummy::Barrier Barrier(int parties, std::function<void()> action = {},
                         std::optional<double> timeout = std::nullopt) const {
    return dummy::Barrier(parties, std::move(action), timeout);
  }
  dummy::Queue Queue(int maxsize = 0) const { return dummy::Queue(maxsize); }
  dummy::JoinableQueue JoinableQueue(int maxsize = 0) const { return dummy::JoinableQueue(maxsize); }
  dummy::Namespace Namespace(std::map<std::string, Object> kwds = {}) const {
    return dummy::Namespace(std::move(kwds));
  }
  dummy::Value Value(std::string typecode, Object value) const {
    return dummy::Value(std::move(typecode), std::move(value));
  }
  /// Python: dummy.dict = dict, dummy.list = list.
  Object::Dict dict() const { return {}; }
  Object::List list() const { return {}; }
  /// Python: dummy.Pipe, dummy.Pool.
  std::pair<connection::Connection, connection::Connection> Pipe(bool duplex = true) const {
    return dummy::Pipe(duplex);
  }
  pool::ThreadPool Pool(std::optional<int> processes = std::nullopt, Target initializer = {},
                        Args initargs = {}) const {
    return dummy::Pool(processes, std::move(initializer), std::move(initargs));
  }
  /// Python: dummy.shutdown().
  void shutdown() const { dummy::shutdown(); }
};

}  // namespace multiprocessing::dummy
