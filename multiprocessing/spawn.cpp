// multiprocessing/spawn.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/spawn.py; see spawn.hpp.
#include "multiprocessing/spawn.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/forkserver.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/resource_tracker.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::spawn {

namespace {

/// The names functions and Process classes are registered under.  A
/// function-local static, so that registrations made by static initializers
/// in any translation unit find it constructed.
struct Registry {
  std::mutex lock;
  std::map<std::string, Target> targets;             // name -> target (the child's lookup)
  std::map<const void*, std::string> target_names;   // address -> name (the parent's)
  std::map<std::string, ProcessFactory> process_types;
};

Registry& registry() {
  static Registry* r = [] {
    auto* created = new Registry;  // never destroyed: a fork at exit may still take its lock
    // A forked child looks names up here (to start a spawned child, to
    // unpickle a task) while another thread of the parent may have been
    // registering one at the instant of fork(): fork() holds the lock, whose
    // sections only read or change the maps.
    util::_hold_across_fork(created->lock);
    return created;
  }();
  return *r;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool registry_made_at_start = (registry(), true);

/// The module's globals (Python: _python_exe, and process's _inheriting flag).
struct SpawnState {
  std::mutex lock;
  std::optional<std::string> executable;  // set_executable(); else /proc/self/exe
  std::optional<std::vector<std::string>> argv;  // /proc/self/cmdline, read once
  bool bootstrapped = false;              // spawn_main ran in this process
};

SpawnState& state() {
  static SpawnState* s = [] {
    auto* created = new SpawnState;  // never destroyed, as the registry
    // The child keeps these (the executable, the command line): fork() holds
    // the lock, whose sections read /proc at most and take no other lock.
    util::_hold_across_fork(created->lock);
    return created;
  }();
  return *s;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool state_made_at_start = (state(), true);

/// "Tasks::UpperCaser" -> "UpperCaser": the name class_name_of() gives.
std::string unqualified(const std::string& name) {
  auto colons = name.rfind("::");
  return colons == std::string::npos ? name : name.substr(colons + 2);
}

std::optional<long> parse_kwd(const std::string& value) {
  if (value == "None") return std::nullopt;
  char* end = nullptr;
  long n = std::strtol(value.c_str(), &end, 10);
  if (end == value.c_str() || *end != '\0') {
    throw ValueError("invalid literal for int() with base 10: " + str_repr(value));
  }
  return n;
}

/// Python: freeze_support's loop over sys.argv[2:]: "name=value" pairs, the
/// value an int or None.  \throws ValueError for an argument without '='.
std::map<std::string, std::optional<long>> parse_kwds(const std::vector<std::string>& argv) {
  std::map<std::string, std::optional<long>> kwds;
  for (std::size_t i = 2; i < argv.size(); ++i) {
    auto eq = argv[i].find('=');
    if (eq == std::string::npos) throw ValueError("not enough values to unpack (expected 2, got 1)");
    kwds[argv[i].substr(0, eq)] = parse_kwd(argv[i].substr(eq + 1));
  }
  return kwds;
}

}  // namespace

// ------------------------------------------------------------------ command line

bool is_forking(const std::vector<std::string>& argv) {
  return argv.size() >= 2 && argv[1] == "--multiprocessing-fork";
}

std::vector<std::string> _argv() {
  SpawnState& s = state();
  std::lock_guard guard(s.lock);
  if (!s.argv) {
    // /proc/self/cmdline: the arguments, each ended by a NUL byte.  (C++ has
    // no sys.argv; reading it here lets freeze_support() take no arguments,
    // as Python's does.)
    std::vector<std::string> argv;
    int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      std::string data;
      char buffer[4096];
      for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) data.append(buffer, n);
      ::close(fd);
      for (std::size_t start = 0; start < data.size();) {
        std::size_t end = data.find('\0', start);
        if (end == std::string::npos) end = data.size();
        argv.push_back(data.substr(start, end - start));
        start = end + 1;
      }
    }
    s.argv = std::move(argv);
  }
  return *s.argv;
}

void set_executable(std::optional<std::string> exe) {
  std::lock_guard guard(state().lock);
  state().executable = std::move(exe);
}

std::string get_executable() {
  std::lock_guard guard(state().lock);
  if (!state().executable) {
    // The program that is running: the child runs the same one again.
    char path[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n < 0) raise_os_error("readlink", errno);
    state().executable = std::string(path, static_cast<std::size_t>(n));
  }
  return *state().executable;
}

std::vector<std::string> get_command_line(
    const std::vector<std::pair<std::string, std::string>>& kwds) {
  // Python's frozen form: [sys.executable, '--multiprocessing-fork', 'k=v'...].
  std::vector<std::string> cmd{get_executable(), "--multiprocessing-fork"};
  for (const auto& [name, value] : kwds) cmd.push_back(name + "=" + value);
  return cmd;
}

std::optional<int> _inherited_tracker_fd() {
  std::vector<std::string> argv = _argv();
  {
    std::lock_guard guard(state().lock);
    if (state().bootstrapped) return std::nullopt;
  }
  if (!is_forking(argv)) return std::nullopt;
  try {
    std::optional<long> tracker_fd = parse_kwds(argv)["tracker_fd"];
    if (tracker_fd) return static_cast<int>(*tracker_fd);
  } catch (const ValueError&) {
    // A malformed command line: freeze_support() will say so.
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ the child's side

// [spawn-freeze-support]
void freeze_support() {
  std::vector<std::string> argv = _argv();
  if (forkserver::is_forkserver(argv)) {
    // The fork server: Python runs it with `python -c "from
    // multiprocessing.forkserver import main; main(listener_fd, alive_r, ...)"`.
    auto kwds = parse_kwds(argv);
    std::optional<long> listener_fd = kwds["listener_fd"], alive_r = kwds["alive_r"], bind_now = kwds["bind_now"];
    if (!listener_fd || !alive_r) throw TypeError("forkserver main() needs listener_fd and alive_r");
    forkserver::main(static_cast<int>(*listener_fd), static_cast<int>(*alive_r), bind_now.value_or(0) != 0);
  }
  if (!is_forking(argv)) return;
  auto kwds = parse_kwds(argv);
  for (const auto& [name, value] : kwds) {
    if (name != "pipe_handle" && name != "parent_pid" && name != "tracker_fd") {
      throw TypeError("spawn_main() got an unexpected keyword argument '" + name + "'");
    }
  }
  std::optional<long> pipe_handle = kwds["pipe_handle"], parent_pid = kwds["parent_pid"],
                      tracker_fd = kwds["tracker_fd"];
  if (!pipe_handle) throw TypeError("spawn_main() missing 1 required positional argument: 'pipe_handle'");
  spawn_main(static_cast<int>(*pipe_handle),
             parent_pid ? std::optional<pid_t>(static_cast<pid_t>(*parent_pid)) : std::nullopt,
             tracker_fd ? std::optional<int>(static_cast<int>(*tracker_fd)) : std::nullopt);
}
// [spawn-freeze-support]

// [spawn-main]
void spawn_main(int pipe_handle, std::optional<pid_t>, std::optional<int> tracker_fd) {
  if (!is_forking(_argv())) throw AssertionError("Not forking");
  if (tracker_fd) {
    // Inherited without FD_CLOEXEC; this process's own children get it
    // explicitly (spawn) or by fork, so a program it execs need not.
    // Checked: failing means the fd was not inherited at all.
    if (::fcntl(*tracker_fd, F_SETFD, FD_CLOEXEC) < 0) raise_os_error("fcntl", errno);
    resource_tracker::_resource_tracker()._set_fd(*tracker_fd);
  }
  {
    std::lock_guard guard(state().lock);
    state().bootstrapped = true;
  }
  int fd = pipe_handle;
  // The parent's sentinel is the same pipe: it reaches EOF when the parent's
  // write end closes, i.e. when the parent is gone (Python: os.dup).
  int parent_sentinel = ::fcntl(pipe_handle, F_DUPFD_CLOEXEC, 0);
  int exitcode = _main(fd, parent_sentinel >= 0 ? std::optional<int>(parent_sentinel) : std::nullopt);
  // Python: sys.exit(exitcode): exit handlers run, streams are flushed.
  std::exit(exitcode);
}

int _main(int fd, std::optional<int> parent_sentinel) {
  // Python reads the two pickles from a file over the pipe, then closes it.
  // Here they come as one framed message (see popen_spawn_posix.cpp).
  std::string data;
  {
    connection::Connection from_parent(os::Fd(fd), /*readable=*/true, /*writable=*/false);
    data = from_parent.recv_bytes();
  }
  std::string_view stream(data);
  Object preparation_data = reduction::load(stream);
  prepare(preparation_data);
  Object process_state = reduction::load(stream);
  const auto* dict = std::get_if<Object::Dict>(&process_state.variant());
  std::string type = "Process";
  if (dict != nullptr) {
    for (const auto& [k, v] : *dict) {
      if (k == Object("type")) type = v.as<std::string>();
    }
  }
  // The process object lives until the program ends: current_process()
  // refers to it, and exit handlers may still ask for it.
  BaseProcess* self = _make_process(type).release();
  self->_setstate(process_state);
  return self->_bootstrap(parent_sentinel);
}
// [spawn-main]

Object get_preparation_data(const std::string& name) {
  // Python: _check_not_importing_main().
  bool bootstrapped;
  {
    std::lock_guard guard(state().lock);
    bootstrapped = state().bootstrapped;
  }
  if (!bootstrapped && is_forking(_argv())) {
    throw RuntimeError(
        "An attempt has been made to start a new process before the current process has "
        "finished its bootstrapping phase.  This probably means that main() does not call "
        "multiprocessing::freeze_support() first thing: a process started with the spawn or "
        "forkserver method runs this program again, and freeze_support() is what hands it "
        "the process object instead of running main() again.");
  }
  Object::Dict d;
  util::Logger* logger = util::get_logger_if_any();
  d.emplace_back("log_to_stderr", logger != nullptr && logger->has_stderr_handler());
  d.emplace_back("authkey", current_process().authkey());  // crosses: we are spawning
  if (logger != nullptr) d.emplace_back("log_level", std::int64_t{logger->getEffectiveLevel()});
  Object::List argv;
  for (const std::string& arg : _argv()) argv.emplace_back(arg);
  d.emplace_back("name", name);
  d.emplace_back("sys_argv", argv);
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) != nullptr) d.emplace_back("dir", std::string(cwd));
  d.emplace_back("start_method", *multiprocessing::get_start_method());
  return d;
}

void prepare(const Object& data) {
  const auto* dict = std::get_if<Object::Dict>(&data.variant());
  if (dict == nullptr) throw UnpicklingError("the preparation data is not a dict");
  for (const auto& [key, value] : *dict) {
    std::string k = key.as<std::string>();
    if (k == "name") {
      current_process().set_name(value.as<std::string>());
    } else if (k == "authkey") {
      current_process().set_authkey(value.as<Bytes>());
    } else if (k == "log_to_stderr") {
      if (value.as<bool>()) util::log_to_stderr();
    } else if (k == "log_level") {
      util::get_logger().setLevel(static_cast<int>(value.as<std::int64_t>()));
    } else if (k == "dir") {
      // Python: os.chdir(data['dir']): the child starts where the parent is.
      if (::chdir(value.as<std::string>().c_str()) != 0) raise_os_error("chdir", errno);
    } else if (k == "start_method") {
      multiprocessing::set_start_method(value.as<std::string>(), /*force=*/true);
    }
    // sys_argv: C++ has no sys.argv to replace; the child's own command line
    // is the spawn one, and the parent's is in the data for whoever wants it.
  }
}

// ------------------------------------------------------------------ registries

bool register_target(const std::string& name, Target target) {
  const void* address = target.function_address();
  if (address == nullptr) {
    throw ValueError("register_target('" + name + "'): only a plain function can be found by name");
  }
  Registry& r = registry();
  {
    std::lock_guard guard(r.lock);
    auto it = r.targets.find(name);
    if (it != r.targets.end() && it->second.function_address() != address) {
      throw ValueError("register_target('" + name + "'): the name is taken by another function");
    }
    r.targets[name] = std::move(target);
    r.target_names.emplace(address, name);
  }
  // A registered function may also be named inside a pickle (a Pool task
  // names its function), so loads() must accept it as a global.  Outside
  // this registry's lock: each lock fork() holds takes no other inside it.
  Object::Global global = _global_of(name);
  reduction::ForkingPickler::register_global(global.module, global.qualname);
  return true;
}

Object::Global _global_of(const std::string& name) {
  // "multiprocessing.pool.mapstar" -> (multiprocessing.pool, mapstar); a name
  // without a dot is the program's own, as Python's functions of the main
  // script pickle as __main__.<name>.
  std::size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {"__main__", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

std::optional<std::string> _target_name(const Target& target) {
  const void* address = target.function_address();
  if (address == nullptr) return std::nullopt;
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  auto it = r.target_names.find(address);
  if (it == r.target_names.end()) return std::nullopt;
  return it->second;
}

Target _find_target(const std::string& name) {
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  auto it = r.targets.find(name);
  if (it == r.targets.end()) {
    throw UnpicklingError("Can't get attribute '" + name +
                          "': no target is registered under that name in this program");
  }
  return it->second;
}

Target _find_target(const Object::Global& global) {
  return _find_target(global.module == "__main__" ? global.qualname
                                                  : global.module + "." + global.qualname);
}

bool register_process_type(const std::string& name, ProcessFactory factory) {
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  r.process_types[unqualified(name)] = std::move(factory);
  return true;
}

bool _is_known_process_type(const std::string& type_name) {
  if (type_name == "Process" || type_name == "SpawnProcess" || type_name == "ForkServerProcess") {
    return true;
  }
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  return r.process_types.count(type_name) != 0;
}

std::unique_ptr<BaseProcess> _make_process(const std::string& type_name) {
  if (type_name == "Process") return std::make_unique<multiprocessing::Process>();
  if (type_name == "SpawnProcess") return std::make_unique<SpawnProcess>();
  if (type_name == "ForkServerProcess") return std::make_unique<ForkServerProcess>();
  ProcessFactory factory;
  {
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    auto it = r.process_types.find(type_name);
    if (it == r.process_types.end()) {
      throw UnpicklingError("Can't get attribute '" + type_name +
                            "': no Process class is registered under that name in this program");
    }
    factory = it->second;
  }
  return factory();
}

}  // namespace multiprocessing::spawn

namespace multiprocessing {

Object Convert<Target>::to_object(const Target& target) {
  if (!target) return Object();
  if (std::optional<std::string> name = spawn::_target_name(target)) {
    return Object(spawn::_global_of(*name));  // pickles as the function's name
  }
  // Not found by name: usable in memory (a forked child's args), refused when
  // pickled, as Python refuses to pickle a lambda.
  Object::Reduced r{{"__main__", "<lambda>"}, {}};
  r.local = std::make_shared<Target>(target);
  r.reduce = []() -> Object {
    throw PicklingError(
        "Can't pickle a callable that is not a registered plain function: it crosses to "
        "another process by name, so register it with MP_REGISTER_TARGET(function) (a "
        "lambda or other callable object cannot be found by name)");
  };
  return r;
}

Target Convert<Target>::from_object(const Object& obj) {
  if (obj.is_none()) return Target();
  if (const Object::Global* global = obj.global()) return spawn::_find_target(*global);
  if (const Object::Reduced* r = obj.reduced(); r != nullptr && r->local) {
    return *static_cast<const Target*>(r->local.get());
  }
  throw UnpicklingError("expected a function, got " + obj.repr());
}

}  // namespace multiprocessing
