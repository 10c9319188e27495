// multiprocessing/context.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/context.py; see context.hpp.
#include "multiprocessing/context.hpp"

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/popen_fork.hpp"
#include "multiprocessing/popen_forkserver.hpp"
#include "multiprocessing/popen_spawn_posix.hpp"
#include "multiprocessing/spawn.hpp"

namespace multiprocessing {

// ------------------------------------------------------------------ BaseContext

int BaseContext::cpu_count() const {
  int n = os::cpu_count();
  if (n < 1) throw NotImplementedError("cannot determine number of cpus");
  return n;
}

std::unique_ptr<BaseProcess> BaseContext::Process(ProcessOptions options) {
  return std::make_unique<multiprocessing::Process>(std::move(options));
}

BaseContext& BaseContext::get_context(std::optional<std::string> method) {
  if (!method) return *this;
  BaseContext* ctx = _concrete_context(*method);
  // Python: 'cannot find context for %r' % method.
  if (ctx == nullptr) throw ValueError("cannot find context for " + str_repr(*method));
  ctx->_check_available();
  return *ctx;
}

std::optional<std::string> BaseContext::get_start_method(bool) { return _name(); }

void BaseContext::set_start_method(std::optional<std::string>, bool) {
  throw ValueError("cannot set start method of concrete context");
}

std::vector<std::string> BaseContext::get_all_start_methods() const {
  // Python on Linux: ['fork', 'spawn'] plus 'forkserver' where fds can be sent
  // over unix sockets (reduction.HAVE_SEND_HANDLE), which Linux always has.
  return {"fork", "spawn", "forkserver"};
}

std::unique_ptr<popen_fork::Popen> BaseContext::_make_popen(BaseProcess& process_obj) {
  return std::make_unique<popen_fork::Popen>(process_obj);
}

void BaseContext::freeze_support() { spawn::freeze_support(); }

// ------------------------------------------------------------------ spawning popen

namespace {
thread_local popen_fork::Popen* spawning_popen = nullptr;  // Python: _tls.spawning_popen
}

popen_fork::Popen* get_spawning_popen() { return spawning_popen; }

void set_spawning_popen(popen_fork::Popen* popen) { spawning_popen = popen; }

void assert_spawning(const std::string& type_name) {
  if (get_spawning_popen() == nullptr) {
    throw RuntimeError(type_name + " objects should only be shared between processes through "
                       "inheritance");
  }
}

// ------------------------------------------------------------------ Process classes

std::unique_ptr<popen_fork::Popen> Process::_make_popen() {
  return _default_context().get_context()._make_popen(*this);
}

MP_FORKED_CHILD_CODE void Process::_after_fork() {
  // The default context's Process decides; for fork and forkserver that is
  // BaseProcess::_after_fork, for spawn nothing.
  // Compared as a string_view, which compares the sizes first: a child of
  // fork then calls no memcmp (a page of libc's code it would fault in).
  const std::string method = _default_context().get_context()._name();
  if (std::string_view(method) == "spawn") return;
  BaseProcess::_after_fork();
}

// [walkthrough-forkprocess]
std::unique_ptr<popen_fork::Popen> ForkProcess::_make_popen() {
  return std::make_unique<popen_fork::Popen>(*this);  // Python: from .popen_fork import Popen
}
// [walkthrough-forkprocess]

// [start-methods-make-popen]
std::unique_ptr<popen_fork::Popen> SpawnProcess::_make_popen() {
  return std::make_unique<popen_spawn_posix::Popen>(*this);  // Python: from .popen_spawn_posix import Popen
}

std::unique_ptr<popen_fork::Popen> ForkServerProcess::_make_popen() {
  return std::make_unique<popen_forkserver::Popen>(*this);  // Python: from .popen_forkserver import Popen
}
// [start-methods-make-popen]

// ------------------------------------------------------------------ concrete contexts

std::unique_ptr<BaseProcess> ForkContext::Process(ProcessOptions options) {
  return std::make_unique<ForkProcess>(std::move(options));
}

// Out of line, in the code every forked child runs: Process::_after_fork
// asks it there.  (So is ForkServerContext's, below.)
MP_FORKED_CHILD_CODE std::string ForkContext::_name() const { return "fork"; }

std::unique_ptr<popen_fork::Popen> ForkContext::_make_popen(BaseProcess& process_obj) {
  return std::make_unique<popen_fork::Popen>(process_obj);
}

std::unique_ptr<BaseProcess> SpawnContext::Process(ProcessOptions options) {
  return std::make_unique<SpawnProcess>(std::move(options));
}

std::unique_ptr<popen_fork::Popen> SpawnContext::_make_popen(BaseProcess& process_obj) {
  return std::make_unique<popen_spawn_posix::Popen>(process_obj);
}

std::unique_ptr<BaseProcess> ForkServerContext::Process(ProcessOptions options) {
  return std::make_unique<ForkServerProcess>(std::move(options));
}

MP_FORKED_CHILD_CODE std::string ForkServerContext::_name() const { return "forkserver"; }

std::unique_ptr<popen_fork::Popen> ForkServerContext::_make_popen(BaseProcess& process_obj) {
  return std::make_unique<popen_forkserver::Popen>(process_obj);
}

// ------------------------------------------------------------------ DefaultContext

std::unique_ptr<BaseProcess> DefaultContext::Process(ProcessOptions options) {
  return std::make_unique<multiprocessing::Process>(std::move(options));
}

MP_FORKED_CHILD_CODE BaseContext& DefaultContext::get_context(std::optional<std::string> method) {
  if (!method) {
    if (actual_context_ == nullptr) actual_context_ = default_context_;
    return *actual_context_;
  }
  return BaseContext::get_context(method);
}

void DefaultContext::set_start_method(std::optional<std::string> method, bool force) {
  if (actual_context_ != nullptr && !force) throw RuntimeError("context has already been set");
  if (!method && force) {
    actual_context_ = nullptr;
    return;
  }
  actual_context_ = &get_context(method);
}

std::optional<std::string> DefaultContext::get_start_method(bool allow_none) {
  if (actual_context_ == nullptr) {
    if (allow_none) return std::nullopt;
    actual_context_ = default_context_;
  }
  return actual_context_->_name();
}

std::unique_ptr<popen_fork::Popen> DefaultContext::_make_popen(BaseProcess& process_obj) {
  return get_context()._make_popen(process_obj);
}

// ------------------------------------------------------------------ module level

BaseContext* _concrete_context(const std::string& method) {
  // Python: _concrete_contexts = {'fork': ForkContext(), 'spawn': ..., 'forkserver': ...}
  static ForkContext fork;
  static SpawnContext spawn;
  static ForkServerContext forkserver;
  if (method == "fork") return &fork;
  if (method == "spawn") return &spawn;
  if (method == "forkserver") return &forkserver;
  return nullptr;
}

MP_FORKED_CHILD_CODE DefaultContext& _default_context() {
  // Python: _default_context = DefaultContext(_concrete_contexts['fork']) on Linux.
  static DefaultContext context(*_concrete_context("fork"));
  return context;
}

void _force_start_method(const std::string& method) {
  _default_context()._set_actual_context(_concrete_context(method));
}

BaseContext& get_context(std::optional<std::string> method) {
  return _default_context().get_context(std::move(method));
}
void set_start_method(std::optional<std::string> method, bool force) {
  _default_context().set_start_method(std::move(method), force);
}
std::optional<std::string> get_start_method(bool allow_none) {
  return _default_context().get_start_method(allow_none);
}
std::vector<std::string> get_all_start_methods() {
  return _default_context().get_all_start_methods();
}
int cpu_count() { return _default_context().cpu_count(); }
void freeze_support() { _default_context().freeze_support(); }
util::Logger& get_logger() { return util::get_logger(); }
util::Logger& log_to_stderr(std::optional<int> level) { return util::log_to_stderr(level); }
std::pair<connection::Connection, connection::Connection> Pipe(bool duplex) {
  return _default_context().Pipe(duplex);
}
synchronize::Lock Lock() { return _default_context().Lock(); }
synchronize::RLock RLock() { return _default_context().RLock(); }
synchronize::Condition Condition(std::optional<synchronize::SemLock> lock) {
  return _default_context().Condition(std::move(lock));
}
synchronize::Semaphore Semaphore(unsigned value) { return _default_context().Semaphore(value); }
synchronize::BoundedSemaphore BoundedSemaphore(unsigned value) {
  return _default_context().BoundedSemaphore(value);
}
synchronize::Event Event() { return _default_context().Event(); }
queues::Queue Queue(int maxsize) { return _default_context().Queue(maxsize); }
queues::JoinableQueue JoinableQueue(int maxsize) { return _default_context().JoinableQueue(maxsize); }
queues::SimpleQueue SimpleQueue() { return _default_context().SimpleQueue(); }
managers::SyncManager Manager() { return _default_context().Manager(); }
pool::Pool Pool(std::optional<int> processes, Target initializer, Args initargs,
                std::optional<int> maxtasksperchild) {
  return _default_context().Pool(processes, std::move(initializer), std::move(initargs), maxtasksperchild);
}
synchronize::Barrier Barrier(int parties, std::function<void()> action,
                             std::optional<double> timeout) {
  return _default_context().Barrier(parties, std::move(action), timeout);
}

}  // namespace multiprocessing
