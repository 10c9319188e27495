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

ThreadingState& state() {
  static ThreadingState* s = [] {
    auto* created = new ThreadingState;  // outlives static destruction
    ::pthread_atfork(nullptr, nullptr, [] { Process::_after_fork_in_child(); });
    return created;
  }();
  return *s;
}

thread_local Process* t_current = nullptr;

Process& main_thread() {
  static Process* main = new Process(Process::NotStarted{}, "MainThread");
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
  {
    std::lock_guard guard(state().lock);
    auto& running = state().running;
    running.erase(std::remove(running.begin(), running.end(), this), running.end());
  }
  std::lock_guard guard(mutex_);
  finished_ = true;
  finished_cv_.notify_all();
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

void Process::_after_fork_in_child() {
  ThreadingState& s = state();
  new (&s.lock) std::mutex;  // another thread may have held it at fork()
  Process* me = &current_process();
  for (Process* p : s.running) {
    if (p == me) continue;
    // The thread is gone in this process; its lock and condition variable may
    // have been held by it.  Re-create them, and drop the std::thread without
    // joining (there is nothing to join here).
    new (&p->mutex_) std::mutex;
    new (&p->finished_cv_) std::condition_variable;
    new (&p->thread_) std::thread;
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

}  // namespace multiprocessing::dummy
