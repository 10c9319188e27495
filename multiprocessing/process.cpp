// multiprocessing/process.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/process.py; see process.hpp.
#include "multiprocessing/process.hpp"

#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <typeinfo>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/popen_fork.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing {

namespace {

/// Python: the class name, type(self).__name__, without namespaces or
/// template arguments: "Process", "ForkProcess", "UpperCaser".
std::string class_name_of(const BaseProcess& p) {
  // The last answer is kept (per thread): the demangler runs deep in the
  // stack, and a program starting many processes of one class would pay for
  // it on each, page faults included on the stack pages that the last fork()
  // made copy-on-write.
  thread_local const std::type_info* last_type = nullptr;
  thread_local std::string last_name;
  if (last_type == &typeid(p)) return last_name;
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(typeid(p).name(), nullptr, nullptr, &status), std::free);
  std::string name = (status == 0 && demangled) ? demangled.get() : typeid(p).name();
  if (auto angle = name.find('<'); angle != std::string::npos) name.resize(angle);
  if (auto colons = name.rfind("::"); colons != std::string::npos) name.erase(0, colons + 2);
  last_type = &typeid(p);
  last_name = name;
  return name;
}

void discard_child(BaseProcess* p) {
  auto& children = _process_state().children;
  children.erase(std::remove(children.begin(), children.end(), p), children.end());
}

// Python: class _MainProcess(BaseProcess): the process that was not started by
// this package.  Its authkey (32 random bytes) is inherited by every descendant.
class MainProcess final : public BaseProcess {
 public:
  MainProcess() : BaseProcess(NotAChild{}) {
    name_ = "MainProcess";
    _config.authkey = AuthenticationString(os::urandom(32));
    _config.semprefix = "/mp";
  }
  void close() override {}  // Python: a no-op

 protected:
  std::string _type_name() const override { return "_MainProcess"; }
};

// Python: class _ParentProcess(BaseProcess): the child's view of its parent.
// Alive until the sentinel (the child's end of a pipe whose other end only the
// parent holds) reaches EOF.
class ParentProcess final : public BaseProcess {
 public:
  ParentProcess(std::string name, std::optional<pid_t> pid, std::optional<int> sentinel)
      : BaseProcess(NotAChild{}), pid_(pid) {
    name_ = std::move(name);
    sentinel_ = sentinel;
  }
  bool is_alive() override {
    if (!sentinel_) return true;  // no way to tell
    return connection::wait({*sentinel_}, 0.0).empty();
  }
  std::optional<pid_t> ident() const override { return pid_; }
  std::string _type_name() const override { return "_ParentProcess"; }
  void join(std::optional<double> timeout) override {
    if (sentinel_) connection::wait({*sentinel_}, timeout);
  }

 private:
  std::optional<pid_t> pid_;
};

}  // namespace

// ------------------------------------------------------------------ module state

namespace {
MP_FORKED_CHILD_CODE void _process_state_after_fork_in_child() {
  ProcessModuleState& state = _process_state();
  const bool whole = util::_forked_from_one_thread();
  util::_at_fork_reinit(state.lock);
  if (!whole || !state.children.empty()) util::_abandon_at_fork(state.children);
  if (!whole || !state.orphans.empty()) util::_abandon_at_fork(state.orphans);
}
}  // namespace

MP_FORKED_CHILD_CODE ProcessModuleState& _process_state() {
  // Never destroyed: the atexit handler (_exit_function) reads it after
  // main() returns, while other static objects are being torn down.
  static ProcessModuleState* s = [] {
    auto* created = new ProcessModuleState;
    created->current_process = new MainProcess;  // _current_process = _MainProcess()
    created->main_process = created->current_process;
    // pthread_atfork: the child of every fork() starts with its own empty
    // lists (Python: _bootstrap sets _children = set()).  Another thread of
    // the parent may have held the lock, or been half-way through changing a
    // list (a start(), a join(), a Process destroyed), at the instant of
    // fork(): so the lock and both lists are built anew without reading the
    // old ones.  The parent's Popens of its orphans are leaked in the child
    // (they are the parent's to reap).
    // From a program without threads the lists are whole, and empty ones
    // are left unwritten (a write would cost the child a page fault).
    ::pthread_atfork(nullptr, nullptr, _process_state_after_fork_in_child);
    return created;
  }();
  return *s;
}

BaseProcess& current_process() { return *_process_state().current_process; }

BaseProcess* parent_process() { return _process_state().parent_process; }

std::vector<BaseProcess*> active_children() {
  _cleanup();
  std::lock_guard guard(_process_state().lock);
  return _process_state().children;
}

void _cleanup() {
  // Python: check for processes which have finished.
  auto& state = _process_state();
  std::lock_guard guard(state.lock);
  std::erase_if(state.children, [](BaseProcess* p) {
    popen_fork::Popen* popen = p->_popen_object();
    return popen != nullptr && popen->poll().has_value();
  });
  std::erase_if(state.orphans, [](ProcessModuleState::Orphan& o) { return o.popen->poll().has_value(); });
}

void _reap_orphans_at_exit() {
  auto& state = _process_state();
  std::vector<ProcessModuleState::Orphan> orphans;
  {
    std::lock_guard guard(state.lock);
    orphans.swap(state.orphans);
  }
  for (auto& o : orphans) {
    if (o.daemon) {
      util::info("calling terminate() for daemon " + o.name);
      o.popen->terminate();
    }
  }
  for (auto& o : orphans) {
    util::info("calling join() for process " + o.name);
    o.popen->wait();
  }
}

const std::map<int, std::string>& _exitcode_to_name() {
  // Python builds it from the `signal` module: every SIG* name without '_',
  // later aliases winning (so -6 is -SIGABRT, -29 -SIGPOLL, -17 -SIGCHLD).
  static const std::map<int, std::string> table = [] {
    std::map<int, std::string> t;
    const std::pair<int, const char*> signals[] = {
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},     {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},   {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
        {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},   {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"},   {SIGTERM, "SIGTERM"}, {SIGSTKFLT, "SIGSTKFLT"},
        {SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"},   {SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"},
        {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},   {SIGURG, "SIGURG"},   {SIGXCPU, "SIGXCPU"},
        {SIGXFSZ, "SIGXFSZ"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
        {SIGPOLL, "SIGPOLL"}, {SIGPWR, "SIGPWR"},     {SIGSYS, "SIGSYS"},   {SIGRTMIN, "SIGRTMIN"},
        {SIGRTMAX, "SIGRTMAX"}};
    for (auto [number, name] : signals) t[-number] = std::string("-") + name;
    return t;
  }();
  return table;
}

// ------------------------------------------------------------------ Target

void Target::check_arguments(const Args& args) const {
  if (!invoke_ || arity_ < 0 || static_cast<std::size_t>(arity_) == args.size()) return;
  throw TypeError("target takes " + std::to_string(arity_) + " positional argument(s) but " +
                  std::to_string(args.size()) + " were given");
}

// ------------------------------------------------------------------ BaseProcess

MP_FORKED_CHILD_CODE BaseProcess::BaseProcess(NotAChild) {}

BaseProcess::BaseProcess(ProcessOptions options)
    : target_(std::move(options.target)), args_(std::move(options.args)) {
  auto& state = _process_state();
  BaseProcess& creator = *state.current_process;
  {
    std::lock_guard guard(state.lock);
    // Python: self._identity = _current_process._identity + (count,)
    identity_ = creator.identity_;
    identity_.push_back(state.process_counter++);
  }
  _config = creator._config;              // Python: _current_process._config.copy()
  parent_pid_ = os::getpid();             // Python: self._parent_pid = os.getpid()
  parent_name_ = creator.name();          // Python: self._parent_name
  if (options.name) name_ = std::move(options.name);
  if (options.daemon) _config.daemon = *options.daemon;
  target_.check_arguments(args_);
}

BaseProcess::~BaseProcess() {
  if (!popen_ || parent_pid_ != os::getpid()) return;
  auto& state = _process_state();
  std::lock_guard guard(state.lock);
  discard_child(this);
  // The child may still run: keep its Popen so that it is reaped, not left a
  // zombie (in Python the _children set would keep this object alive instead).
  if (!popen_->poll().has_value()) state.orphans.push_back({std::move(popen_), daemon(), name()});
}

std::string BaseProcess::_type_name() const { return class_name_of(*this); }

void BaseProcess::_check_closed() const {
  if (closed_) throw ValueError("process object is closed");
}

void BaseProcess::run() {
  // Python: if self._target: self._target(*self._args, **self._kwargs)
  if (target_) target_(args_);
}

// [walkthrough-start]
void BaseProcess::start() {
  _check_closed();
  if (popen_) throw AssertionError("cannot start a process twice");
  if (parent_pid_ != os::getpid()) {
    throw AssertionError("can only start a process object created by current process");
  }
  if (current_process()._config.daemon.value_or(false)) {
    throw AssertionError("daemonic processes are not allowed to have children");
  }
  _cleanup();
  util::_register_exit_function();
  (void)name();  // fix the default name now: the child reads it from its copy
  if (util::trace_enabled()) util::_trace("start: " + name() + ", context " + _start_method().value_or(_default_context().get_context()._name()));
  popen_ = _make_popen();            // Python: self._popen = self._Popen(self)
  sentinel_ = popen_->sentinel();
  // Avoid a refcycle if the target function holds an indirect reference to
  // the process object (see bpo-30775): drop target and args in the parent.
  target_ = Target();
  args_.clear();
  std::lock_guard guard(_process_state().lock);
  _process_state().children.push_back(this);  // Python: _children.add(self)
}
// [walkthrough-start]

std::unique_ptr<popen_fork::Popen> BaseProcess::_make_popen() {
  // BaseProcess has no start method of its own (Python raises
  // NotImplementedError from BaseProcess._Popen): use the default context's.
  return _default_context().get_context()._make_popen(*this);
}

void BaseProcess::terminate() {
  _check_closed();
  // Python calls self._popen.terminate() with _popen None: AttributeError.
  if (!popen_) throw AttributeError("'NoneType' object has no attribute 'terminate'");
  popen_->terminate();
}

void BaseProcess::kill() {
  _check_closed();
  // Python calls self._popen.kill() with _popen None: AttributeError.
  if (!popen_) throw AttributeError("'NoneType' object has no attribute 'kill'");
  popen_->kill();
}

void BaseProcess::join(std::optional<double> timeout) {
  _check_closed();
  if (parent_pid_ != os::getpid()) throw AssertionError("can only join a child process");
  if (!popen_) throw AssertionError("can only join a started process");
  std::optional<int> res = popen_->wait(timeout);
  if (res) {
    std::lock_guard guard(_process_state().lock);
    discard_child(this);
  }
}

bool BaseProcess::is_alive() {
  _check_closed();
  if (this == &current_process()) return true;
  if (parent_pid_ != os::getpid()) throw AssertionError("can only test a child process");
  if (!popen_) return false;
  if (!popen_->poll()) return true;
  std::lock_guard guard(_process_state().lock);
  discard_child(this);
  return false;
}

void BaseProcess::close() {
  if (popen_) {
    if (!popen_->poll()) {
      throw ValueError(
          "Cannot close a process while it is still running. You should first call join() or "
          "terminate().");
    }
    popen_->close();
    popen_.reset();
    sentinel_.reset();
    std::lock_guard guard(_process_state().lock);
    discard_child(this);
  }
  closed_ = true;
}

std::string BaseProcess::name() const {
  if (name_) return *name_;
  if (default_name_.empty()) {
    // Python: type(self).__name__ + '-' + ':'.join(str(i) for i in self._identity)
    std::string name = _type_name() + "-";
    for (std::size_t i = 0; i < identity_.size(); ++i) {
      name += (i ? ":" : "") + std::to_string(identity_[i]);
    }
    default_name_ = name;
  }
  return default_name_;
}

void BaseProcess::set_name(std::string name) { name_ = std::move(name); }

bool BaseProcess::daemon() const { return _config.daemon.value_or(false); }

void BaseProcess::set_daemon(bool daemonic) {
  if (popen_) throw AssertionError("process has already started");
  _config.daemon = daemonic;
}

namespace {
// The unpickler may name it (ForkingPickler's allow-list); a spawned child reads
// its authkey back as the plain bytes (Python: AuthenticationString(bytes)).
const bool process_globals_registered = [] {
  reduction::ForkingPickler::register_global(
      "multiprocessing.process", "AuthenticationString",
      [](Object reduced) -> Object { return reduced.reduced()->args.at(0).as<Bytes>(); });
  return true;
}();
}  // namespace

Object Convert<AuthenticationString>::to_object(const AuthenticationString& key) {
  // Python: the key crosses only to a child this process is spawning, never over
  // an arbitrary connection where any peer could read it.
  if (get_spawning_popen() == nullptr) {
    throw TypeError("Pickling an AuthenticationString object is disallowed for security reasons");
  }
  return Object::Reduced{{"multiprocessing.process", "AuthenticationString"}, {Bytes(key)}};
}

AuthenticationString Convert<AuthenticationString>::from_object(const Object& o) {
  return AuthenticationString(o.as<Bytes>().data);
}

const AuthenticationString& BaseProcess::authkey() const { return _config.authkey; }

void BaseProcess::set_authkey(Bytes authkey) {
  _config.authkey = AuthenticationString(std::move(authkey.data));
}

std::optional<int> BaseProcess::exitcode() {
  _check_closed();
  if (!popen_) return std::nullopt;
  return popen_->poll();
}

std::optional<pid_t> BaseProcess::ident() const {
  _check_closed();
  if (this == &current_process()) return os::getpid();
  if (!popen_) return std::nullopt;
  return popen_->pid;
}

int BaseProcess::sentinel() const {
  _check_closed();
  if (!sentinel_) throw ValueError("process not started");
  return *sentinel_;
}

std::string BaseProcess::repr() {
  std::optional<int> exitcode;
  std::string status;
  if (this == &current_process()) {
    status = "started";
  } else if (closed_) {
    status = "closed";
  } else if (parent_pid_ != os::getpid()) {
    status = "unknown";
  } else if (!popen_) {
    status = "initial";
  } else {
    exitcode = popen_->poll();
    status = exitcode ? "stopped" : "started";
  }
  std::string info = "<" + _type_name() + " name=" + str_repr(name());
  if (popen_) info += " pid=" + std::to_string(popen_->pid);
  info += " parent=" + (parent_pid_ ? std::to_string(*parent_pid_) : std::string("None"));
  info += " " + status;
  if (exitcode) {
    auto named = _exitcode_to_name().find(*exitcode);
    info += " exitcode=" + (named != _exitcode_to_name().end() ? named->second
                                                                : std::to_string(*exitcode));
  }
  if (daemon()) info += " daemon";
  return info + ">";
}

// [walkthrough-bootstrap]
MP_FORKED_CHILD_CODE int BaseProcess::_bootstrap(std::optional<int> parent_sentinel) {
  auto& state = _process_state();
  int exitcode = 1;
  try {
    if (auto method = _start_method()) _force_start_method(*method);
    // This copy of the module state is the parent's: make it the child's own.
    // (Each store dirties a copy-on-write page, so only what changes is written.)
    if (state.process_counter != 1) state.process_counter = 1;  // _process_counter = itertools.count(1)
    // _children = set(): the fork handler (_process_state) emptied it and the orphans.
    util::_close_stdin();
    state.current_process = this;
    // Built in static storage, not on the heap: a fresh child that never calls
    // malloc never touches malloc's code and data pages (each first touch
    // after fork() is a page fault).  A plain zero-filled array, never
    // destroyed, rather than a function-local static object: that would
    // also take a guard and register its destructor with atexit, two more
    // pieces of code and data for every child to fault in.  (_bootstrap runs
    // once in a process.)
    alignas(ParentProcess) static unsigned char parent_storage[sizeof(ParentProcess)];
    state.parent_process = new (parent_storage) ParentProcess(parent_name_, parent_pid_, parent_sentinel);
    _after_fork();
    if (util::trace_enabled()) util::_trace("_bootstrap: " + name() + ", parent pid " + std::to_string(parent_pid_.value_or(0)));
    util::_wait_for_debugger(name());
    util::info("child process calling self.run()");
    if (util::trace_enabled()) util::_trace("run: " + name());
    try {
      run();
      exitcode = 0;
    } catch (...) {
      util::_exit_function();  // Python: finally: util._exit_function()
      throw;
    }
    util::_exit_function();
  } catch (const SystemExit& e) {
    // Python: SystemExit(None) -> 0; SystemExit(int) -> int; else print it, 1.
    if (e.code_is_none()) {
      exitcode = 0;
    } else if (e.code_is_int()) {
      exitcode = e.int_code();
    } else {
      std::fprintf(stderr, "%s\n", e.message().c_str());
      exitcode = 1;
    }
  } catch (const std::exception& e) {
    // Python: sys.stderr.write('Process %s:\n' % self.name); traceback.print_exc()
    // C++ keeps no traceback: print the exception's type and message, which is
    // the last line of Python's traceback.
    exitcode = 1;
    std::fprintf(stderr, "Process %s:\n%s: %s\n", name().c_str(), exception_type_name(e).c_str(),
                 e.what());
  } catch (...) {
    exitcode = 1;
    std::fprintf(stderr, "Process %s:\nunknown exception (not derived from std::exception)\n",
                 name().c_str());
  }
  // Python: finally: threading._shutdown() waits for non-daemon threads.
  if (state.threading_shutdown != nullptr) state.threading_shutdown();
  if (util::get_logger_if_any() != nullptr) {
    util::info("process exiting with exitcode " + std::to_string(exitcode));
  }
  util::_flush_std_streams();
  if (util::trace_enabled()) util::_trace("exit: " + name() + ", exitcode " + std::to_string(exitcode));
  return exitcode;
}
// [walkthrough-bootstrap]

// ------------------------------------------------------------------ pickling

namespace {
template <class T>
const T& state_as(const Object& value, const char* what) {
  if (const T* p = std::get_if<T>(&value.variant())) return *p;
  throw UnpicklingError(std::string("the process object's ") + what + " has the wrong type (" +
                        value.type_name() + ")");
}

const Object& state_item(const Object::Dict& dict, const char* key) {
  for (const auto& [k, v] : dict) {
    if (k == Object(key)) return v;
  }
  throw UnpicklingError(std::string("the process object's state has no '") + key + "'");
}
}  // namespace

Object BaseProcess::_getstate() const {
  // Python pickles the object's class by name and its __dict__; a function
  // target by its module and qualified name.  Here both need a registration.
  std::string type = class_name_of(*this);
  if (!spawn::_is_known_process_type(type)) {
    throw PicklingError("Can't pickle <class '" + type + "'>: a Process subclass crosses to a "
                        "spawned child by name; register it with MP_REGISTER_PROCESS(" + type + ")");
  }
  Object target;  // None: no target
  if (target_) {
    std::optional<std::string> target_name = spawn::_target_name(target_);
    if (!target_name) {
      throw PicklingError(
          "Can't pickle the target of " + name() +
          ": under the spawn and forkserver start methods a target crosses to the child by "
          "name, so it must be a plain function registered with MP_REGISTER_TARGET(function) "
          "(a lambda or other callable object cannot be found by name)");
    }
    target = *target_name;
  }
  Object::List identity;
  for (int i : identity_) identity.emplace_back(std::int64_t{i});
  return Object::Dict{
      {"type", type},
      {"target", target},
      {"args", Object::Tuple{args_}},
      {"name", name()},
      {"daemon", _config.daemon ? Object(*_config.daemon) : Object()},
      {"authkey", _config.authkey},
      {"semprefix", _config.semprefix},
      {"identity", identity},
      {"parent_pid", parent_pid_ ? Object(std::int64_t{*parent_pid_}) : Object()},
      {"parent_name", parent_name_},
  };
}

void BaseProcess::_setstate(const Object& state) {
  const auto& dict = state_as<Object::Dict>(state, "state");
  const Object& target = state_item(dict, "target");
  target_ = target.is_none() ? Target() : spawn::_find_target(target.as<std::string>());
  args_ = state_as<Object::Tuple>(state_item(dict, "args"), "args").items;
  name_ = state_item(dict, "name").as<std::string>();
  const Object& daemon = state_item(dict, "daemon");
  _config.daemon = daemon.is_none() ? std::nullopt : std::optional<bool>(daemon.as<bool>());
  _config.authkey = state_item(dict, "authkey").as<AuthenticationString>();
  _config.semprefix = state_item(dict, "semprefix").as<std::string>();
  identity_.clear();
  for (const Object& i : state_as<Object::List>(state_item(dict, "identity"), "identity")) {
    identity_.push_back(static_cast<int>(i.as<std::int64_t>()));
  }
  const Object& ppid = state_item(dict, "parent_pid");
  parent_pid_ = ppid.is_none() ? std::nullopt : std::optional<pid_t>(static_cast<pid_t>(ppid.as<std::int64_t>()));
  parent_name_ = state_item(dict, "parent_name").as<std::string>();
}

MP_FORKED_CHILD_CODE std::optional<std::string> BaseProcess::_start_method() const { return std::nullopt; }

MP_FORKED_CHILD_CODE void BaseProcess::_after_fork() {
  // Python: util._finalizer_registry.clear(); util._run_after_forkers()
  util::_clear_finalizer_registry();
  util::_run_after_forkers();
}

}  // namespace multiprocessing
