// multiprocessing/context.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/context.py: the contexts that choose
// a start method (BaseContext, DefaultContext, ForkContext, SpawnContext,
// ForkServerContext), the Process classes bound to each (Process, ForkProcess,
// SpawnProcess, ForkServerProcess), and the package-level functions that
// forward to the default context (get_context, set_start_method, ...).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/managers.hpp"
#include "multiprocessing/pool.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/queues.hpp"
#include "multiprocessing/sharedctypes.hpp"
#include "multiprocessing/synchronize.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing {

namespace popen_fork {
class Popen;
}

/// Python: context.BaseContext: the API every context offers.  The factory
/// methods of later modules (Pipe, Lock, Queue, Value, Manager, Pool...) are
/// added here as those modules arrive.
class BaseContext {
 public:
  virtual ~BaseContext() = default;

  /// Python: current_process() / parent_process() / active_children().
  static BaseProcess& current_process() { return multiprocessing::current_process(); }
  static BaseProcess* parent_process() { return multiprocessing::parent_process(); }
  static std::vector<BaseProcess*> active_children() { return multiprocessing::active_children(); }

  /// Python: cpu_count().  \throws NotImplementedError "cannot determine number of cpus".
  int cpu_count() const;

  /// Python: ctx.Process(target=..., ...): a process of this context's kind.
  virtual std::unique_ptr<BaseProcess> Process(ProcessOptions options = {});

  /// Python: Pipe(duplex=True): a connected pair of Connections (see
  /// connection::Pipe).  Duplex: both ends read and write (a socketpair);
  /// otherwise the first end only reads and the second only writes (an os pipe).
  std::pair<connection::Connection, connection::Connection> Pipe(bool duplex = true) {
    return connection::Pipe(duplex);
  }

  /// Python: Lock(), RLock(), Condition(lock=None), Semaphore(value=1),
  /// BoundedSemaphore(value=1), Event(): synchronize objects made for this
  /// context's start method.
  synchronize::Lock Lock() { return synchronize::Lock(&get_context()); }
  synchronize::RLock RLock() { return synchronize::RLock(&get_context()); }
  synchronize::Condition Condition(std::optional<synchronize::SemLock> lock = std::nullopt) {
    return synchronize::Condition(std::move(lock), &get_context());
  }
  synchronize::Semaphore Semaphore(unsigned value = 1) {
    return synchronize::Semaphore(value, &get_context());
  }
  synchronize::BoundedSemaphore BoundedSemaphore(unsigned value = 1) {
    return synchronize::BoundedSemaphore(value, &get_context());
  }
  synchronize::Event Event() { return synchronize::Event(&get_context()); }
  /// Python: Barrier(parties, action=None, timeout=None).
  synchronize::Barrier Barrier(int parties, std::function<void()> action = {},
                               std::optional<double> timeout = std::nullopt) {
    return synchronize::Barrier(parties, std::move(action), timeout, &get_context());
  }

  /// Python: Queue(maxsize=0), JoinableQueue(maxsize=0), SimpleQueue(): queues
  /// whose locks and semaphores are made for this context's start method.
  queues::Queue Queue(int maxsize = 0) { return queues::Queue(maxsize, &get_context()); }
  queues::JoinableQueue JoinableQueue(int maxsize = 0) {
    return queues::JoinableQueue(maxsize, &get_context());
  }
  queues::SimpleQueue SimpleQueue() { return queues::SimpleQueue(&get_context()); }

  /// Python: Manager(): a SyncManager of this context, started (its server
  /// runs in a child process of this context's start method).
  managers::SyncManager Manager() {
    managers::SyncManager m(std::nullopt, std::nullopt, "pickle", &get_context());
    m.start();
    return m;
  }

  /// Python: Pool(processes=None, initializer=None, initargs=(),
  /// maxtasksperchild=None): a pool whose workers this context starts.
  pool::Pool Pool(std::optional<int> processes = std::nullopt, Target initializer = {},
                  Args initargs = {}, std::optional<int> maxtasksperchild = std::nullopt) {
    return pool::Pool(processes, std::move(initializer), std::move(initargs), maxtasksperchild,
                      &get_context());
  }

  /// Python: ctx.Value(typecode_or_type, *args, lock=True): a shared value
  /// whose default lock is an RLock of this context.  Takes what
  /// sharedctypes::Value takes after its first argument:
  /// `ctx.Value<'i'>(0)`, `ctx.Value<int>(0, lock)`, `ctx.Value<'d'>(0.5, no_lock)`.
  template <class T, class... Args>
  auto Value(Args&&... args) {
    if constexpr (sizeof...(Args) == 0) return sharedctypes::Value<T>(T{}, &get_context());
    else return sharedctypes::Value<T>(std::forward<Args>(args)..., &get_context());
  }
  /// Python: ctx.Value('i', ...): the typecode spelling, `ctx.Value<'i'>(0)`.
  template <char Typecode, class... Args>
  auto Value(Args&&... args) {
    return Value<sharedctypes::type_of<Typecode>>(std::forward<Args>(args)...);
  }
  /// Python: ctx.Array(typecode_or_type, size_or_initializer, *, lock=True):
  /// `ctx.Array<'i'>(10)`, `ctx.Array<'i'>({1, 2, 3}, lock)`.
  template <class T, class... Args>
  auto Array(Args&&... args) {
    return sharedctypes::Array<T>(std::forward<Args>(args)..., &get_context());
  }
  /// Python: ctx.Array('i', ...): the typecode spelling.
  template <char Typecode, class... Args>
  auto Array(Args&&... args) {
    return Array<sharedctypes::type_of<Typecode>>(std::forward<Args>(args)...);
  }
  /// Python: ctx.RawValue(typecode_or_type, *args): no lock, so no context needed.
  template <class T, class... Args>
  auto RawValue(Args&&... args) {
    return sharedctypes::RawValue<T>(std::forward<Args>(args)...);
  }
  /// Python: ctx.RawValue('i', ...).
  template <char Typecode, class... Args>
  auto RawValue(Args&&... args) {
    return sharedctypes::RawValue<Typecode>(std::forward<Args>(args)...);
  }
  /// Python: ctx.RawArray(typecode_or_type, size_or_initializer).
  template <class T, class... Args>
  auto RawArray(Args&&... args) {
    return sharedctypes::RawArray<T>(std::forward<Args>(args)...);
  }
  /// Python: ctx.RawArray('i', ...).
  template <char Typecode, class... Args>
  auto RawArray(Args&&... args) {
    return sharedctypes::RawArray<Typecode>(std::forward<Args>(args)...);
  }

  /// Python: get_context(method=None): nullopt -> this context; else the named
  /// one.  \throws ValueError "cannot find context for 'bad'".
  virtual BaseContext& get_context(std::optional<std::string> method = std::nullopt);
  /// Python: get_start_method(allow_none=False) (a concrete context: its name).
  virtual std::optional<std::string> get_start_method(bool allow_none = false);
  /// Python: set_start_method(method, force=False).
  /// \throws ValueError "cannot set start method of concrete context".
  virtual void set_start_method(std::optional<std::string> method, bool force = false);
  /// Python: get_all_start_methods(): {"fork", "spawn", "forkserver"} on Linux.
  std::vector<std::string> get_all_start_methods() const;

  /// Python: freeze_support(): in a process started by the spawn or
  /// forkserver method (this program run again with "--multiprocessing-fork"),
  /// run the Process object the parent sends and exit; otherwise return.
  /// Call it first thing in main(), as Python asks of frozen executables,
  /// which is what a C++ program is (see spawn.hpp).
  void freeze_support();
  /// Python: get_logger() / log_to_stderr(level=None).
  util::Logger& get_logger() { return util::get_logger(); }
  util::Logger& log_to_stderr(std::optional<int> level = std::nullopt) {
    return util::log_to_stderr(level);
  }

  /// Python: _name ('fork', 'spawn', 'forkserver'; empty for DefaultContext).
  virtual std::string _name() const = 0;
  /// Python: `Process._Popen` of this context's Process class.
  virtual std::unique_ptr<popen_fork::Popen> _make_popen(BaseProcess& process_obj);
  /// Python: _check_available(): \throws ValueError when the method cannot run here.
  virtual void _check_available() {}
};

/// Python: context.Process: starts with whatever the default context is when
/// start() is called.  This is `multiprocessing.Process`.
class Process : public BaseProcess {
 public:
  explicit Process(ProcessOptions options = {}) : BaseProcess(std::move(options)) {}

 protected:
  /// Python: _default_context.get_context().Process._Popen(process_obj).
  std::unique_ptr<popen_fork::Popen> _make_popen() override;
  /// Python: _default_context.get_context().Process._after_fork().
  void _after_fork() override;
};

/// Python: context.ForkProcess: always the 'fork' start method.
class ForkProcess : public BaseProcess {
 public:
  explicit ForkProcess(ProcessOptions options = {}) : BaseProcess(std::move(options)) {}

 protected:
  std::unique_ptr<popen_fork::Popen> _make_popen() override;
  std::optional<std::string> _start_method() const override { return "fork"; }
};

/// Python: context.SpawnProcess: the 'spawn' start method (popen_spawn_posix).
class SpawnProcess : public BaseProcess {
 public:
  explicit SpawnProcess(ProcessOptions options = {}) : BaseProcess(std::move(options)) {}

 protected:
  std::unique_ptr<popen_fork::Popen> _make_popen() override;
  std::optional<std::string> _start_method() const override { return "spawn"; }
  void _after_fork() override {}  // Python: a no-op, nothing was inherited
};

/// Python: context.ForkServerProcess: the 'forkserver' start method (popen_forkserver).
class ForkServerProcess : public BaseProcess {
 public:
  explicit ForkServerProcess(ProcessOptions options = {}) : BaseProcess(std::move(options)) {}

 protected:
  std::unique_ptr<popen_fork::Popen> _make_popen() override;
  std::optional<std::string> _start_method() const override { return "forkserver"; }
};

/// Python: context.ForkContext.
class ForkContext : public BaseContext {
 public:
  std::unique_ptr<BaseProcess> Process(ProcessOptions options = {}) override;
  std::string _name() const override;
  std::unique_ptr<popen_fork::Popen> _make_popen(BaseProcess& process_obj) override;
};

/// Python: context.SpawnContext: its processes run this program again
/// (popen_spawn_posix::Popen); the target crosses by registered name, the
/// arguments as pickles.
class SpawnContext : public BaseContext {
 public:
  std::unique_ptr<BaseProcess> Process(ProcessOptions options = {}) override;
  std::string _name() const override { return "spawn"; }
  std::unique_ptr<popen_fork::Popen> _make_popen(BaseProcess& process_obj) override;
};

/// Python: context.ForkServerContext: its processes are forked by the fork
/// server (popen_forkserver::Popen); what crosses, crosses as under spawn.
class ForkServerContext : public BaseContext {
 public:
  std::unique_ptr<BaseProcess> Process(ProcessOptions options = {}) override;
  std::string _name() const override;
  std::unique_ptr<popen_fork::Popen> _make_popen(BaseProcess& process_obj) override;
};

/// Python: context.DefaultContext: the context behind the package-level names.
/// Its start method is fixed the first time it is used (get_context(), or
/// starting a Process), after which set_start_method() needs force=true.
class DefaultContext : public BaseContext {
 public:
  explicit DefaultContext(BaseContext& default_context) : default_context_(&default_context) {}

  std::unique_ptr<BaseProcess> Process(ProcessOptions options = {}) override;
  /// Python: DefaultContext.get_context: fixes the actual context on first use.
  BaseContext& get_context(std::optional<std::string> method = std::nullopt) override;
  /// \throws RuntimeError "context has already been set" unless force.
  void set_start_method(std::optional<std::string> method, bool force = false) override;
  /// nullopt only with allow_none while no method is fixed.
  std::optional<std::string> get_start_method(bool allow_none = false) override;
  std::string _name() const override { return ""; }
  std::unique_ptr<popen_fork::Popen> _make_popen(BaseProcess& process_obj) override;

  /// Python: self._actual_context (nullptr until fixed).
  BaseContext* _actual_context() const { return actual_context_; }
  void _set_actual_context(BaseContext* context) { actual_context_ = context; }

 private:
  BaseContext* default_context_;
  BaseContext* actual_context_ = nullptr;
};

/// Python: context._concrete_contexts[method]; nullptr for an unknown name.
BaseContext* _concrete_context(const std::string& method);
/// Python: context._default_context (ForkContext on Linux).
DefaultContext& _default_context();
/// Python: context._force_start_method(method): a child fixes its parent's method.
void _force_start_method(const std::string& method);

/// Python: context.get_spawning_popen(): while a spawn or forkserver Popen
/// pickles the process object of the child it starts, that Popen (in the
/// thread doing it); nullptr at any other time.
popen_fork::Popen* get_spawning_popen();
/// Python: context.set_spawning_popen(popen).
void set_spawning_popen(popen_fork::Popen* popen);
/// Python: context.assert_spawning(obj): objects such as locks may be pickled
/// only to start a child.
/// \throws RuntimeError "Lock objects should only be shared between processes
///   through inheritance" (with the type's name) at any other time.
void assert_spawning(const std::string& type_name);

// Package-level names (Python: `from multiprocessing import get_context, ...`,
// bound to _default_context).
BaseContext& get_context(std::optional<std::string> method = std::nullopt);
void set_start_method(std::optional<std::string> method, bool force = false);
std::optional<std::string> get_start_method(bool allow_none = false);
std::vector<std::string> get_all_start_methods();
int cpu_count();
void freeze_support();
util::Logger& get_logger();
util::Logger& log_to_stderr(std::optional<int> level = std::nullopt);
std::pair<connection::Connection, connection::Connection> Pipe(bool duplex = true);
synchronize::Lock Lock();
synchronize::RLock RLock();
synchronize::Condition Condition(std::optional<synchronize::SemLock> lock = std::nullopt);
synchronize::Semaphore Semaphore(unsigned value = 1);
synchronize::BoundedSemaphore BoundedSemaphore(unsigned value = 1);
synchronize::Event Event();
synchronize::Barrier Barrier(int parties, std::function<void()> action = {},
                             std::optional<double> timeout = std::nullopt);
queues::Queue Queue(int maxsize = 0);
queues::JoinableQueue JoinableQueue(int maxsize = 0);
queues::SimpleQueue SimpleQueue();
managers::SyncManager Manager();
pool::Pool Pool(std::optional<int> processes = std::nullopt, Target initializer = {}, Args initargs = {},
                std::optional<int> maxtasksperchild = std::nullopt);
// Python: multiprocessing.Value, Array, RawValue, RawArray (the default
// context's): the sharedctypes factories, whose null ctx means that context.
using sharedctypes::Array;
using sharedctypes::no_lock;
using sharedctypes::RawArray;
using sharedctypes::RawValue;
using sharedctypes::Value;

}  // namespace multiprocessing
