// multiprocessing/dummy/dummy.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/dummy/__init__.py: the same API as the
// package, backed by threads.  It exists so that one program can be run with
// threads and then with processes, and show what changes: threads share the
// process's memory, processes each get a copy.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "multiprocessing/process.hpp"

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

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread::id owner_;
  int count_ = 0;
};

}  // namespace multiprocessing::dummy
