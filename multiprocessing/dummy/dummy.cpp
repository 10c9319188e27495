// multiprocessing/dummy/dummy.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/dummy/__init__.py (and the parts of
// Lib/threading.py it stands on); see dummy.hpp.
#include "multiprocessing/dummy/dummy.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <new>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/synchronize.hpp"
#include "multiprocessing/util.hpp"
#include "multiprocessing/os.hpp"

namespace multiprocessing::dummy {

namespace {

/// threading.py's module state, as far as the dummy API needs it.
struct ThreadingState {
  std::mutex lock;
  std::atomic<int> counter{1};               // Python: _counter, for "Thread-N"
  std::vector<Process*> running;             // Python: _active, started and not ended
  std::vector<std::pair<Process*, Process*>> children;  // (parent, child): _children
};

MP_FORKED_CHILD_CODE ThreadingState& state() {
  static ThreadingState* s = [] {
    auto* created = new ThreadingState;  // outlives static destruction
    // fork() holds the lock (each section under it only changes a list), so
    // the child reads `running` whole (Python: threading._after_fork, under
    // the GIL).  Child handlers run in registration order: the lock is free
    // again when _after_fork_in_child runs.
    util::_hold_across_fork(created->lock);
    // pthread_atfork: the threads of the parent are gone in the child.
    ::pthread_atfork(nullptr, nullptr, Process::_after_fork_in_child);
    return created;
  }();
  return *s;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool state_made_at_start = (state(), true);

thread_local Process* t_current = nullptr;

/// Whether main_thread() has made its Process: a forked child of a program
/// that never asked for it has none to renew (see _after_fork_in_child).
std::atomic<bool> main_thread_made{false};

Process& main_thread() {
  static Process* main = [] {
    auto* made = new Process(Process::NotStarted{}, "MainThread");
    main_thread_made.store(true, std::memory_order_release);
    return made;
  }();
  return *main;
}

pid_t gettid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

}  // namespace

Process::Process(NotStarted, std::string name) : name_(std::move(name)) {
  started_ = true;
  native_id_ = os::getpid();
}

Process::Process(ProcessOptions options)
    : target_(std::move(options.target)), args_(std::move(options.args)) {
  name_ = options.name ? *options.name : "Thread-" + std::to_string(state().counter++);
  // Python: daemon defaults to the creating thread's flag.
  daemon_ = options.daemon.value_or(current_process().daemon());
  parent_ = &current_process();
  target_.check_arguments(args_);
}

Process::~Process() {
  if (thread_.joinable()) thread_.join();
  std::lock_guard guard(state().lock);
  auto& children = state().children;
  children.erase(std::remove_if(children.begin(), children.end(),
                                [this](const auto& pc) { return pc.first == this || pc.second == this; }),
                 children.end());
}

void Process::run() {
  if (target_) target_(args_);
}

void Process::start() {
  if (parent_ != &current_process()) {
    throw RuntimeError("Parent is " + parent_->name() + " but current_process is " +
                       current_process().name());
  }
  {
    std::lock_guard guard(mutex_);
    if (started_) throw RuntimeError("threads can only be started once");
    started_ = true;
  }
  {
    std::lock_guard guard(state().lock);
    state().children.emplace_back(parent_, this);
    state().running.push_back(this);
  }
  // A child process must wait for this thread before it exits (threading._shutdown).
  _process_state().threading_shutdown = &_shutdown;
  thread_ = std::thread([this] { bootstrap_thread(); });
}

void Process::bootstrap_thread() {
  // Python: Thread._bootstrap_inner.
  t_current = this;
  {
    std::lock_guard guard(mutex_);
    native_id_ = gettid();
  }
  try {
    run();
  } catch (const std::exception& e) {
    // Python: "Exception in thread Thread-1:" and the traceback.
    std::fprintf(stderr, "Exception in thread %s:\n%s: %s\n", name_.c_str(),
                 exception_type_name(e).c_str(), e.what());
  } catch (const SystemExit&) {
    // Python's threads end quietly on SystemExit.
  }
  // Finished first, then out of `running`: a fork() after the second step
  // finds mutex_ free (a fork before it re-creates mutex_ in the child, see
  // _after_fork_in_child), so a child never inherits it held by this thread.
  {
    std::lock_guard guard(mutex_);
    finished_ = true;
    finished_cv_.notify_all();
  }
  std::lock_guard guard(state().lock);
  auto& running = state().running;
  running.erase(std::remove(running.begin(), running.end(), this), running.end());
}

void Process::join(std::optional<double> timeout) {
  std::unique_lock lock(mutex_);
  if (!started_) throw RuntimeError("cannot join thread before it is started");
  if (this == t_current) throw RuntimeError("cannot join current thread");
  if (timeout) {
    auto limit = std::chrono::duration<double>(std::max(0.0, *timeout));
    if (!finished_cv_.wait_for(lock, limit, [this] { return finished_; })) return;
  } else {
    finished_cv_.wait(lock, [this] { return finished_; });
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
    std::thread finished = std::move(thread_);
    lock.unlock();
    finished.join();  // the thread has finished: this returns at once
  }
}

bool Process::is_alive() const {
  if (this == &main_thread()) return true;
  std::lock_guard guard(mutex_);
  return started_ && !finished_;
}

std::string Process::name() const {
  std::lock_guard guard(mutex_);
  return name_;
}

void Process::set_name(std::string name) {
  std::lock_guard guard(mutex_);
  name_ = std::move(name);
}

bool Process::daemon() const {
  std::lock_guard guard(mutex_);
  return daemon_;
}

void Process::set_daemon(bool daemonic) {
  std::lock_guard guard(mutex_);
  if (started_) throw RuntimeError("cannot set daemon status of active thread");
  daemon_ = daemonic;
}

std::optional<pid_t> Process::ident() const {
  std::lock_guard guard(mutex_);
  return native_id_;
}

std::optional<int> Process::exitcode() const {
  std::lock_guard guard(mutex_);
  if (started_ && finished_) return 0;
  return std::nullopt;
}

Process& current_process() { return t_current != nullptr ? *t_current : main_thread(); }

std::vector<Process*> active_children() {
  Process* me = &current_process();
  std::vector<Process*> mine;
  {
    std::lock_guard guard(state().lock);
    for (auto [parent, child] : state().children) {
      if (parent == me) mine.push_back(child);
    }
  }
  std::vector<Process*> alive;
  for (Process* child : mine) {
    if (child->is_alive()) alive.push_back(child);
  }
  return alive;
}

MP_FORKED_CHILD_CODE void Process::_after_fork_in_child() {
  // The lock was held across fork() (see state()), so both lists are whole.
  ThreadingState& s = state();
  // A program that has not used this module has nothing here to renew, and
  // the child returns without a write or a call: each page of code or data
  // a forked child touches first costs it a page fault.
  if (!main_thread_made.load(std::memory_order_acquire) && s.children.empty() && s.running.empty()) return;
  Process* me = &current_process();
  // Any thread of the parent may have held the mutex of a Process it could
  // reach (its own, one it was joining or asking is_alive()), or waited on
  // its condition variable, and no such thread exists here.  This thread
  // holds none (it is in fork()): every Process the child can reach gets a
  // new mutex and condition variable (left untouched when already pristine).
  auto reinit = [](Process* p) {
    util::_abandon_at_fork(p->mutex_);
    util::_abandon_at_fork(p->finished_cv_);
  };
  reinit(&main_thread());
  for (auto [parent, child] : s.children) {
    reinit(parent);
    reinit(child);
  }
  for (Process* p : s.running) {
    reinit(p);
    if (p == me) continue;
    // The thread is gone in this process: drop the std::thread without
    // joining (there is nothing to join here).
    util::_abandon_at_fork(p->thread_);
    p->finished_ = true;
  }
  std::erase_if(s.running, [me](Process* p) { return p != me; });
}

void _shutdown() {
  for (;;) {
    Process* next = nullptr;
    {
      std::lock_guard guard(state().lock);
      auto& running = state().running;
      auto it = std::find_if(running.begin(), running.end(),
                             [](Process* p) { return p != &current_process() && !p->daemon(); });
      if (it != running.end()) next = *it;
    }
    if (next == nullptr) return;
    next->join();
  }
}

// ------------------------------------------------------------------ Lock, RLock

bool Lock::acquire(bool block, double timeout) {
  std::unique_lock lock(mutex_);
  if (!block) {
    if (timeout != -1) throw ValueError("can't specify a timeout for a non-blocking call");
    if (locked_) return false;
    locked_ = true;
    return true;
  }
  if (timeout < 0) {
    cv_.wait(lock, [this] { return !locked_; });
  } else if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout), [this] { return !locked_; })) {
    return false;
  }
  locked_ = true;
  return true;
}

void Lock::release() {
  std::lock_guard lock(mutex_);
  if (!locked_) throw RuntimeError("release unlocked lock");
  locked_ = false;
  cv_.notify_one();
}

bool Lock::locked() const {
  std::lock_guard lock(mutex_);
  return locked_;
}

bool RLock::acquire(bool block, double timeout) {
  std::unique_lock lock(mutex_);
  auto me = std::this_thread::get_id();
  if (count_ > 0 && owner_ == me) {
    ++count_;
    return true;
  }
  auto free = [this] { return count_ == 0; };
  if (!block) {
    if (!free()) return false;
  } else if (timeout < 0) {
    cv_.wait(lock, free);
  } else if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout), free)) {
    return false;
  }
  owner_ = me;
  count_ = 1;
  return true;
}

void RLock::release() {
  std::lock_guard lock(mutex_);
  if (count_ == 0 || owner_ != std::this_thread::get_id()) {
    throw RuntimeError("cannot release un-acquired lock");
  }
  if (--count_ == 0) {
    owner_ = std::thread::id();
    cv_.notify_one();
  }
}

bool RLock::_is_owned() {
  std::lock_guard lock(mutex_);
  return count_ > 0 && owner_ == std::this_thread::get_id();
}

int RLock::_release_save() {
  std::lock_guard lock(mutex_);
  if (count_ == 0 || owner_ != std::this_thread::get_id()) {
    throw RuntimeError("cannot release un-acquired lock");
  }
  int count = count_;
  count_ = 0;
  owner_ = std::thread::id();
  cv_.notify_one();
  return count;
}

void RLock::_acquire_restore(int count) {
  acquire();
  std::lock_guard lock(mutex_);
  count_ = count;
}

namespace {
// Python's default repr, "<module.Class at 0x7f...: ...>".
std::string at_address(const char* qualname, const void* self, const std::string& what) {
  char address[32];
  std::snprintf(address, sizeof address, "%p", self);
  return std::string("<threading.") + qualname + " at " + address + ": " + what + ">";
}
}  // namespace

// ------------------------------------------------------------------ Condition

Condition::Condition() : own_rlock_(std::make_unique<RLock>()), rlock_(own_rlock_.get()) {}
Condition::Condition(Lock& lock) : lock_(&lock) {}
Condition::Condition(RLock& lock) : rlock_(&lock) {}

bool Condition::acquire(bool block, double timeout) {
  return lock_ != nullptr ? lock_->acquire(block, timeout) : rlock_->acquire(block, timeout);
}

void Condition::release() {
  if (lock_ != nullptr) return lock_->release();
  rlock_->release();
}

bool Condition::_is_owned() {
  if (rlock_ != nullptr) return rlock_->_is_owned();
  // Python's generic _is_owned: a Lock that can be taken was not held.  (It
  // cannot tell which thread holds it, as Python's cannot.)
  if (lock_->acquire(false)) {
    lock_->release();
    return false;
  }
  return true;
}

int Condition::_release_save() {
  if (rlock_ != nullptr) return rlock_->_release_save();
  lock_->release();  // no state to save
  return 0;
}

void Condition::_acquire_restore(int saved) {
  if (rlock_ != nullptr) return rlock_->_acquire_restore(saved);
  lock_->acquire();  // ignore the saved state
}

bool Condition::wait(std::optional<double> timeout) {
  if (!_is_owned()) throw RuntimeError("cannot wait on un-acquired lock");
  // A lock of this thread's own, held once, that notify() releases: the
  // second acquire below sleeps until then.
  auto waiter = std::make_shared<Lock>();
  waiter->acquire();
  waiters_.push_back(waiter);
  int saved_state = _release_save();
  bool gotit = false;
  struct Restore {  // Python: the `finally:` of wait()
    Condition& self;
    const std::shared_ptr<Lock>& waiter;
    const bool& gotit;
    int saved_state;
    ~Restore() {
      self._acquire_restore(saved_state);
      if (!gotit) std::erase(self.waiters_, waiter);  // timed out: nobody will release it
    }
  } restore{*this, waiter, gotit, saved_state};
  if (!timeout) {
    waiter->acquire();
    gotit = true;
  } else if (*timeout > 0) {
    gotit = waiter->acquire(true, *timeout);
  } else {
    gotit = waiter->acquire(false);
  }
  return gotit;
}

bool Condition::wait_for(const std::function<bool()>& predicate, std::optional<double> timeout) {
  return synchronize::_wait_for([this](std::optional<double> t) { wait(t); }, predicate, timeout);
}

void Condition::notify(std::size_t n) {
  if (!_is_owned()) throw RuntimeError("cannot notify on un-acquired lock");
  while (!waiters_.empty() && n > 0) {
    std::shared_ptr<Lock> waiter = waiters_.front();
    waiters_.pop_front();
    waiter->release();  // that waiter's wait() returns true
    --n;
  }
}

void Condition::notify_all() { notify(waiters_.size()); }

// ------------------------------------------------------------------ Semaphore, BoundedSemaphore

Semaphore::Semaphore(int value) : value_(value) {
  if (value < 0) throw ValueError("semaphore initial value must be >= 0");
}

bool Semaphore::acquire(bool blocking, std::optional<double> timeout) {
  if (!blocking && timeout) throw ValueError("can't specify timeout for non-blocking acquire");
  std::lock_guard guard(cond_);
  if (!blocking) {
    if (value_ == 0) return false;
  } else if (!cond_.wait_for([this] { return value_ > 0; }, timeout)) {
    return false;  // Python's loop, which counts the time left as wait_for does
  }
  --value_;
  return true;
}

void Semaphore::release(int n) {
  if (n < 1) throw ValueError("n must be one or more");
  std::lock_guard guard(cond_);
  _release_locked(n);
}

void Semaphore::_release_locked(int n) {
  value_ += n;
  for (int i = 0; i < n; ++i) cond_.notify();
}

int Semaphore::_value() {
  std::lock_guard guard(cond_);
  return value_;
}

std::string Semaphore::repr() { return at_address("Semaphore", this, "value=" + std::to_string(_value())); }

BoundedSemaphore::BoundedSemaphore(int value) : Semaphore(value), initial_value_(value) {}

void BoundedSemaphore::release(int n) {
  if (n < 1) throw ValueError("n must be one or more");
  std::lock_guard guard(cond_);
  if (value_ + n > initial_value_) throw ValueError("Semaphore released too many times");
  _release_locked(n);
}

std::string BoundedSemaphore::repr() {
  return at_address("BoundedSemaphore", this,
                    "value=" + std::to_string(_value()) + "/" + std::to_string(initial_value_));
}

// ------------------------------------------------------------------ Event

bool Event::is_set() {
  std::lock_guard guard(cond_);
  return flag_;
}

void Event::set() {
  std::lock_guard guard(cond_);
  flag_ = true;
  cond_.notify_all();
}

void Event::clear() {
  std::lock_guard guard(cond_);
  flag_ = false;
}

bool Event::wait(std::optional<double> timeout) {
  std::lock_guard guard(cond_);
  bool signaled = flag_;
  if (!signaled) signaled = cond_.wait(timeout);
  return signaled;
}

std::string Event::repr() { return at_address("Event", this, is_set() ? "set" : "unset"); }

// ------------------------------------------------------------------ Barrier

Barrier::Barrier(int parties, std::function<void()> action, std::optional<double> timeout)
    : BarrierBase(parties, std::move(action), timeout) {}

std::string Barrier::repr() const {
  if (broken()) return at_address("Barrier", this, "broken");
  return at_address("Barrier", this,
                    "waiters=" + std::to_string(n_waiting()) + "/" + std::to_string(parties()));
}

// ------------------------------------------------------------------ Queue

// Python: queue.Queue's attributes.
struct Queue::State {
  int maxsize = 0;
  mutable Lock mutex;                    // Python: self.mutex
  mutable Condition not_empty{mutex};    // Python: self.not_empty
  mutable Condition not_full{mutex};     // Python: self.not_full
  mutable Condition all_tasks_done{mutex};  // Python: self.all_tasks_done
  std::size_t unfinished_tasks = 0;      // Python: self.unfinished_tasks
  std::deque<Object> queue;              // Python: self.queue (_init, _put, _get, _qsize)
};

Queue::Queue(int maxsize) : state_(std::make_shared<State>()) { state_->maxsize = maxsize; }

namespace {
// Python: put's and get's `timeout < 0` check, for a blocking call.
void check_timeout(std::optional<double> timeout) {
  if (timeout && *timeout < 0) throw ValueError("'timeout' must be a non-negative number");
}
}  // namespace

void Queue::put(const Object& item, bool block, std::optional<double> timeout) {
  State& s = *state_;
  std::lock_guard guard(s.not_full);
  if (s.maxsize > 0) {
    auto has_room = [&s] { return static_cast<int>(s.queue.size()) < s.maxsize; };
    if (!block) {
      if (!has_room()) throw queues::Full();
    } else {
      check_timeout(timeout);
      if (!s.not_full.wait_for(has_room, timeout)) throw queues::Full();
    }
  }
  s.queue.push_back(item);
  s.unfinished_tasks += 1;
  s.not_empty.notify();
}

Object Queue::get(bool block, std::optional<double> timeout) {
  State& s = *state_;
  std::lock_guard guard(s.not_empty);
  auto has_item = [&s] { return !s.queue.empty(); };
  if (!block) {
    if (!has_item()) throw queues::Empty();
  } else {
    check_timeout(timeout);
    if (!s.not_empty.wait_for(has_item, timeout)) throw queues::Empty();
  }
  Object item = std::move(s.queue.front());
  s.queue.pop_front();
  s.not_full.notify();
  return item;
}

void Queue::task_done() {
  State& s = *state_;
  std::lock_guard guard(s.all_tasks_done);
  if (s.unfinished_tasks == 0) throw ValueError("task_done() called too many times");
  if (--s.unfinished_tasks == 0) s.all_tasks_done.notify_all();
}

void Queue::join() {
  State& s = *state_;
  std::lock_guard guard(s.all_tasks_done);
  s.all_tasks_done.wait_for([&s] { return s.unfinished_tasks == 0; });
}

int Queue::qsize() const {
  std::lock_guard guard(state_->mutex);
  return static_cast<int>(state_->queue.size());
}

bool Queue::empty() const { return qsize() == 0; }

bool Queue::full() const {
  int size = qsize();
  return 0 < state_->maxsize && state_->maxsize <= size;
}

int Queue::maxsize() const { return state_->maxsize; }
Condition& Queue::not_empty() const { return state_->not_empty; }
Lock& Queue::mutex() const { return state_->mutex; }

// ------------------------------------------------------------------ Pool

pool::ThreadPool Pool(std::optional<int> processes, Target initializer, Args initargs) {
  return pool::ThreadPool(processes, std::move(initializer), std::move(initargs));
}

// ------------------------------------------------------------------ Namespace, Value

Namespace::Namespace(std::map<std::string, Object> kwds) : dict_(std::move(kwds)) {}

Object Namespace::get(const std::string& name) const {
  std::lock_guard guard(mutex_);
  auto it = dict_.find(name);
  if (it == dict_.end()) throw AttributeError("'Namespace' object has no attribute '" + name + "'");
  return it->second;
}

void Namespace::set(const std::string& name, const Object& value) {
  std::lock_guard guard(mutex_);
  dict_[name] = value;
}

void Namespace::del(const std::string& name) {
  std::lock_guard guard(mutex_);
  if (dict_.erase(name) == 0) throw AttributeError("'Namespace' object has no attribute '" + name + "'");
}

bool Namespace::has(const std::string& name) const {
  std::lock_guard guard(mutex_);
  return dict_.count(name) != 0;
}

std::map<std::string, Object> Namespace::__dict__() const {
  std::lock_guard guard(mutex_);
  return dict_;
}

std::string Namespace::repr() const {
  std::string items;
  for (const auto& [name, value] : __dict__()) {  // a std::map: sorted already
    if (name.starts_with('_')) continue;
    if (!items.empty()) items += ", ";
    items += name + "=" + value.repr();
  }
  return "Namespace(" + items + ")";
}

Value::Value(std::string typecode, Object value, bool /*lock*/)
    : typecode_(std::move(typecode)), value_(std::move(value)) {}

Object Value::value() const {
  std::lock_guard guard(mutex_);
  return value_;
}

void Value::set_value(const Object& value) {
  std::lock_guard guard(mutex_);
  value_ = value;
}

std::string Value::repr() const { return "<Value(" + Object(typecode_).repr() + ", " + value().repr() + ")>"; }

}  // namespace multiprocessing::dummy
