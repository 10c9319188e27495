// multiprocessing/spawn.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/spawn.py: what a process started
// with the 'spawn' (or 'forkserver') start method runs before the target, and
// what its parent sends it.
//
// Python starts a fresh interpreter, which imports the main module again and
// unpickles the Process object; functions cross as "module.qualname" and are
// imported by name.  A C++ program has no interpreter: a spawned child is the
// same executable, run again from its first instruction, exactly the way
// CPython starts a *frozen* executable.  So:
//  - main() must call multiprocessing::freeze_support() first thing; in a
//    child (its command line holds "--multiprocessing-fork") that call never
//    returns: it reads the Process object from its parent, runs it and exits.
//    In any other process it returns at once.
//  - a target crosses by name, so it must be registered under one (the C++
//    counterpart of being importable from a module):
//        void worker(std::string name) { ... }
//        MP_REGISTER_TARGET(worker);
//    A lambda or other callable cannot cross: start() refuses it with a
//    PicklingError in the parent.
//  - a Process subclass crosses by name too: MP_REGISTER_PROCESS(UpperCaser)
//    (default-constructed in the child, then given the parent's name, args,
//    authkey...).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "multiprocessing/process.hpp"
#include "multiprocessing/reduction.hpp"

namespace multiprocessing::spawn {

/// Python: spawn.is_forking(argv): argv[1] is "--multiprocessing-fork".
bool is_forking(const std::vector<std::string>& argv);

/// This program's command line, from /proc/self/cmdline (Python: sys.argv).
std::vector<std::string> _argv();

/// The tracker fd this process was given on its command line
/// ("tracker_fd=N") if it is a spawned child that has not reached
/// spawn_main() yet; else nullopt.  No Python twin: Python's spawn_main sets
/// the tracker's fd before the main module runs, but in C++ the static
/// initialisers run before main() reaches freeze_support().  One that makes a
/// named semaphore (a global of the spawn context, gh-90549) must report to the
/// parent's tracker all the same, not to a tracker of its own that would find
/// the semaphore "leaked" when the child exits: the resource tracker asks here.
std::optional<int> _inherited_tracker_fd();

/// Python: spawn.freeze_support(): in a spawned child, run the Process object
/// the parent sends and exit with its exit code; elsewhere, return.  Call it
/// first thing in main().  (Also multiprocessing::freeze_support().)
void freeze_support();

/// Python: spawn.set_executable(exe) / get_executable(): the program a spawned
/// child runs.  Default (and after set_executable(std::nullopt)): this
/// program, as /proc/self/exe names it.
void set_executable(std::optional<std::string> exe);
std::string get_executable();

/// Python: spawn.get_command_line(**kwds), the frozen form:
/// [exe, "--multiprocessing-fork", "pipe_handle=5", ...] from name=value pairs.
std::vector<std::string> get_command_line(
    const std::vector<std::pair<std::string, std::string>>& kwds);

/// Python: spawn.spawn_main(pipe_handle, parent_pid=None, tracker_fd=None):
/// the child's side, called by freeze_support().  Does not return.
[[noreturn]] void spawn_main(int pipe_handle, std::optional<pid_t> parent_pid = std::nullopt,
                             std::optional<int> tracker_fd = std::nullopt);

/// Python: spawn._main(fd, parent_sentinel): read the preparation data and the
/// process object from `fd` (to its end), prepare(), then _bootstrap().
/// Returns the exit code.
int _main(int fd, std::optional<int> parent_sentinel);

/// Python: spawn.get_preparation_data(name): what the child needs before it
/// can rebuild the process object: its name, the authkey, the logging set-up,
/// the working directory, the start method, argv.
/// \throws RuntimeError (Python's _check_not_importing_main) when called in a
///   spawned child that has not finished bootstrapping, i.e. main() forgot to
///   call freeze_support() and is starting processes again.
Object get_preparation_data(const std::string& name);

/// Python: spawn.prepare(data): apply the preparation data in the child.
void prepare(const Object& data);

// ------------------------------------------------------------------ by name

/// Register a plain function as a target that can cross to spawned children
/// under `name` (Python: a function importable as module.qualname).  Returns
/// true, so that it can initialize a static (see MP_REGISTER_TARGET).
/// \throws ValueError if `name` is taken by another function, or `target` is
///   not a plain function.
bool register_target(const std::string& name, Target target);

/// The registered name of a target, or nullopt (a lambda, an unregistered function).
std::optional<std::string> _target_name(const Target& target);

/// The target registered under `name`.  \throws PicklingError if there is none.
Target _find_target(const std::string& name);
/// The same for the global a pickle names it by.
Target _find_target(const Object::Global& global);

/// The global that names a registered target inside a pickle, as Python
/// pickles a function by module and qualified name: "worker" is
/// `__main__.worker`, "multiprocessing.pool.mapstar" is
/// `multiprocessing.pool.mapstar`.
Object::Global _global_of(const std::string& name);

/// A factory for a registered Process subclass.
using ProcessFactory = std::function<std::unique_ptr<BaseProcess>()>;

/// Register a Process subclass under its class name, so that it can be
/// rebuilt in a spawned child (see MP_REGISTER_PROCESS).  Returns true.
bool register_process_type(const std::string& name, ProcessFactory factory);

/// Rebuild a process object in the child: the class registered (or built in)
/// under `type_name`.  \throws PicklingError for an unknown class.
std::unique_ptr<BaseProcess> _make_process(const std::string& type_name);
/// Whether a class can be rebuilt by name in a child.
bool _is_known_process_type(const std::string& type_name);

}  // namespace multiprocessing::spawn

#define MP_SPAWN_CONCAT_INNER(a, b) a##b
#define MP_SPAWN_CONCAT(a, b) MP_SPAWN_CONCAT_INNER(a, b)

/// Register a function as a target a spawned child can find by name:
/// `MP_REGISTER_TARGET(worker);` at namespace scope, after the function.  The
/// name is the function's as written ("worker", "Tasks::run").
#define MP_REGISTER_TARGET(function)                                          \
  [[maybe_unused]] static const bool MP_SPAWN_CONCAT(mp_registered_target_, __COUNTER__) = \
      ::multiprocessing::spawn::register_target(#function, ::multiprocessing::Target(&function))

/// Register a default-constructible Process subclass so that a spawned child
/// can rebuild it: `MP_REGISTER_PROCESS(UpperCaser);` at namespace scope.
#define MP_REGISTER_PROCESS(Class)                                            \
  [[maybe_unused]] static const bool MP_SPAWN_CONCAT(mp_registered_process_, __COUNTER__) = \
      ::multiprocessing::spawn::register_process_type(                        \
          #Class, [] { return std::unique_ptr<::multiprocessing::BaseProcess>(new Class()); })
