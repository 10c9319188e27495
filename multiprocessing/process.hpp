// multiprocessing/process.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/process.py: BaseProcess (the Process
// API), current_process(), parent_process(), active_children(), the module's
// _children set and _process_counter, and _bootstrap, the function a child runs
// from its first instruction to its exit code.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/reduction.hpp"

namespace multiprocessing {

namespace popen_fork {
class Popen;
}

/// A Python callable as the package passes it around: what a process runs
/// (Process's `target`) and what a Pool calls (the `func` of apply, map...).
/// Made from
///  - a plain function `R f(A...)`: called with the arguments converted to
///    A...; its result converted to an Object (None for void).  The form that
///    can cross to another process by name (MP_REGISTER_TARGET);
///  - any callable with no parameters (a lambda that captures what it needs:
///    under fork the child sees its own copy of whatever it captured);
///  - any callable taking `const Args&` (all the arguments, as Objects),
///    returning void or something an Object can be made from.
class Target {
 public:
  /// No target: run() does nothing (Python: target=None).
  Target() = default;

  template <class R, class... A>
  Target(R (*fn)(A...))  // NOLINT(google-explicit-constructor): reads like `target=f`
      : address_(reinterpret_cast<const void*>(fn)), arity_(static_cast<int>(sizeof...(A))) {
    invoke_ = [fn](const Args& args) { return call_converted(fn, args, std::index_sequence_for<A...>{}); };
    if constexpr (sizeof...(A) == 1 && IntResult<R>() && (IntLike<std::decay_t<A>> && ...)) {
      call_ints_ = &call_ints_loop<R, std::decay_t<A>...>;
    }
  }

  template <class F>
    requires(!std::is_pointer_v<std::decay_t<F>> && !std::is_same_v<std::decay_t<F>, Target> &&
             (std::is_invocable_v<std::decay_t<F>&> ||
              std::is_invocable_v<std::decay_t<F>&, const Args&>))
  Target(F&& callable) {  // NOLINT(google-explicit-constructor)
    if constexpr (std::is_invocable_v<std::decay_t<F>&>) {
      arity_ = 0;
      invoke_ = [f = std::forward<F>(callable)](const Args&) mutable { return as_result(f); };
    } else {
      arity_ = -1;  // takes all arguments as they are
      invoke_ = [f = std::forward<F>(callable)](const Args& args) mutable { return as_result(f, args); };
    }
  }

  explicit operator bool() const noexcept { return static_cast<bool>(invoke_); }
  /// Call the target with `args`; its result (None for a void function).
  /// \throws TypeError if there are too many or too few arguments, or one
  ///   has the wrong type for the function's parameter; whatever the function
  ///   throws.
  Object operator()(const Args& args) const {
    check_arguments(args);
    return invoke_(args);
  }
  /// How many arguments the target takes, or -1 when it takes any number.
  int arity() const noexcept { return arity_; }
  /// Python would only fail in the child, calling target(*args); say it when
  /// the process is made.  \throws TypeError when `args` has the wrong length.
  void check_arguments(const Args& args) const;
  /// A Pool's fast path for a map over ints: when the target is a plain
  /// function of one integer parameter that returns an integer (of at most 63
  /// bits), set out[k] = f(in[k]) for each k and return true (`out` may be
  /// `in`: each input is read before its result is written).  Returns false,
  /// having called nothing, for any other target or when an input does not fit
  /// the parameter's type: operator() then calls it and says what is wrong.
  bool call_ints(const std::int64_t* in, std::int64_t* out, std::size_t n) const {
    return call_ints_ != nullptr && call_ints_(address_, in, out, n);
  }
  /// The address of a plain function target, else nullptr.  Start methods that
  /// cannot copy memory (spawn) use it to find the function's registered name.
  const void* function_address() const noexcept { return address_; }

 private:
  // Call f(args...) and make an Object of what it returns (None for void).
  template <class F, class... P>
  static Object as_result(F& f, P&&... params) {
    using R = std::invoke_result_t<F&, P...>;
    if constexpr (std::is_constructible_v<Object, R>) {
      return Object(f(std::forward<P>(params)...));
    } else {
      f(std::forward<P>(params)...);  // void, or a result no Object can hold
      return Object();
    }
  }

  // A parameter of type `const Object&` gets the argument itself, not a
  // copy (a Pool's mapstar receives a whole chunk that way); any other
  // parameter gets the argument converted to its type.
  template <class A>
  using Converted = std::conditional_t<std::is_same_v<A, const Object&>, const Object&, std::decay_t<A>>;
  template <class A>
  static Converted<A> convert_argument(const Object& arg) {
    if constexpr (std::is_same_v<A, const Object&>) {
      return arg;
    } else {
      return from_object<std::decay_t<A>>(arg);
    }
  }

  template <class R, class... A, std::size_t... I>
  static Object call_converted(R (*fn)(A...), const Args& args, std::index_sequence<I...>) {
    [[maybe_unused]] std::tuple<Converted<A>...> converted(convert_argument<A>(args[I])...);
    if constexpr (std::is_constructible_v<Object, R>) {
      return Object(fn(std::get<I>(converted)...));
    } else {
      fn(std::get<I>(converted)...);  // void, or a result no Object can hold
      return Object();
    }
  }

  template <class T>
  static constexpr bool IntLike = std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                  !std::is_same_v<T, char> && !std::is_same_v<T, wchar_t> &&
                                  !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> &&
                                  !std::is_same_v<T, char32_t>;
  // A result call_ints can hold: an IntLike of at most 63 bits of magnitude.
  template <class R>
  static constexpr bool IntResult() {
    if constexpr (IntLike<R>) {
      return std::is_signed_v<R> || sizeof(R) < sizeof(std::int64_t);
    } else {
      return false;
    }
  }
  // call_ints for a function R fn(P): the inputs checked first (as the
  // argument conversion would), then one direct call per item.
  template <class R, class P>
  static bool call_ints_loop(const void* address, const std::int64_t* in, std::int64_t* out, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) {
      if (!std::in_range<P>(in[k])) return false;
    }
    auto fn = reinterpret_cast<R (*)(P)>(address);
    for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<std::int64_t>(fn(static_cast<P>(in[k])));
    return true;
  }

  std::function<Object(const Args&)> invoke_;
  bool (*call_ints_)(const void*, const std::int64_t*, std::int64_t*, std::size_t) = nullptr;
  const void* address_ = nullptr;
  int arity_ = 0;
};

/// A Target as a value that crosses to another process (a Pool's initializer,
/// the function of a Pool task): a registered function is the global that
/// names it, as Python pickles a function by name; any other callable is kept
/// in memory (a forked child gets it with its copy of the parent) and refused
/// with a PicklingError when it would have to be pickled.  (Defined in spawn.cpp,
/// beside the registry.)
template <>
struct Convert<Target> {
  static Object to_object(const Target& target);
  static Target from_object(const Object& obj);
};

/// Python's keyword arguments to Process(...): the same form serves every
/// factory (`ctx.Process`, later `Pool`'s workers).
///   multiprocessing::Process p({.target = f, .args = {nums, 1}, .name = "worker", .daemon = true});
/// Python's `kwargs` has no C++ counterpart (C++ functions have no keyword
/// parameters); `group` must be None in Python and is left out.
/// (Every member has a default initializer, so that `{.target = f}` compiles
/// without -Wmissing-field-initializers warnings under -Wextra.)
struct ProcessOptions {
  Target target = {};                              ///< Python: target
  Args args = {};                                  ///< Python: args
  std::optional<std::string> name = std::nullopt;  ///< Python: name (default "Process-N")
  std::optional<bool> daemon = std::nullopt;       ///< Python: daemon (default: the creator's)
};

/// Python: process.AuthenticationString, bytes that refuse to be pickled except
/// while a spawn or forkserver Popen pickles its child's process object and
/// preparation data: `conn.send(current_process().authkey())` throws TypeError
/// "Pickling an AuthenticationString object is disallowed for security reasons".
/// Spelling it `Bytes(key)` is the port's `bytes(key)`: that sends, as in Python.
struct AuthenticationString : Bytes {
  using Bytes::Bytes;
};

/// Python: AuthenticationString.__reduce__: while spawning (get_spawning_popen()
/// set), `multiprocessing.process.AuthenticationString(b'...')`, as CPython
/// writes it; the unpickler rebuilds that as the Bytes.
template <>
struct Convert<AuthenticationString> {
  /// \throws TypeError outside spawning, with Python's text.
  static Object to_object(const AuthenticationString& key);
  static AuthenticationString from_object(const Object& o);
};

/// Python: BaseProcess._config, inherited by every descendant.
struct ProcessConfig {
  AuthenticationString authkey;           ///< 'authkey': 32 random bytes in the main process
  std::string semprefix = "/mp";          ///< 'semprefix': prefix of named semaphores
  std::optional<bool> daemon;             ///< 'daemon', when set
  std::optional<std::string> tempdir;     ///< 'tempdir', when made (util.get_temp_dir)
};

/// Python: process.BaseProcess, the Process API.  Use it through Process (the
/// default context's) or a context's Process: ForkProcess, SpawnProcess...
/// Subclass it and override run() to give a process its own code, as in Python.
///
/// A BaseProcess is neither copyable nor movable: the module's _children list
/// refers to it, as Python's _children set does.  Destroying one whose child is
/// still running is safe: the child is reaped later (at the next start(),
/// active_children() or at exit), never left a zombie.
class BaseProcess {
 public:
  explicit BaseProcess(ProcessOptions options = {});
  virtual ~BaseProcess();
  BaseProcess(const BaseProcess&) = delete;
  BaseProcess& operator=(const BaseProcess&) = delete;

  /// Python: run(): calls target(*args).  Override in a subclass.
  virtual void run();

  /// Python: start(): start the child; returns once it is forked.
  /// \throws AssertionError "cannot start a process twice",
  ///   "can only start a process object created by current process",
  ///   "daemonic processes are not allowed to have children";
  ///   ValueError "process object is closed"; OSError if pipe/fork fails.
  void start();

  /// Python: terminate(): SIGTERM.  exitcode becomes -SIGTERM.
  /// \throws AttributeError "'NoneType' object has no attribute 'terminate'" before
  ///   start(), the class and text Python's `self._popen.terminate()` raises then;
  ///   ValueError if the process is closed.
  void terminate();
  /// Python: kill(): SIGKILL.  exitcode becomes -SIGKILL.
  /// \throws AttributeError "'NoneType' object has no attribute 'kill'" before
  ///   start(), as Python; ValueError if the process is closed.
  void kill();

  /// Python: join(timeout=None): wait for the child to end, at most `timeout`
  /// seconds; returns either way (check exitcode or is_alive()).
  /// \throws AssertionError "can only join a child process" / "can only join a
  ///   started process"; ValueError if closed.
  virtual void join(std::optional<double> timeout = std::nullopt);

  /// Python: is_alive().  A finished child is dropped from active_children().
  virtual bool is_alive();

  /// Python: close(): release the Popen and its fds.  Idempotent.
  /// \throws ValueError "Cannot close a process while it is still running. ..."
  virtual void close();

  /// Python: name (property).  Default "<Class>-N[:M...]" from _identity.
  std::string name() const;
  void set_name(std::string name);
  /// Python: daemon (property); settable only before start().
  bool daemon() const;
  void set_daemon(bool daemonic);
  /// Python: authkey (property), inherited from the creating process.
  const AuthenticationString& authkey() const;
  void set_authkey(Bytes authkey);
  /// Python: exitcode: None before start and while running; then the exit
  /// code, or -N if signal N ended the child.
  std::optional<int> exitcode();
  /// Python: ident / pid: None before start.
  virtual std::optional<pid_t> ident() const;
  std::optional<pid_t> pid() const { return ident(); }
  /// Python: sentinel: an fd that becomes readable (EOF) when the child ends.
  /// \throws ValueError "process not started".
  int sentinel() const;

  /// Python: __repr__: "<Process name='Process-1' pid=123 parent=122 started daemon>".
  std::string repr();

  // ---- machinery (Python's underscored names), public for the walkthrough and tests

  /// Python: _bootstrap(parent_sentinel): what the child runs, from fork to the
  /// exit code.  Resets the module state inherited from the parent, runs the
  /// after-fork hooks, calls run(), then _exit_function(); converts SystemExit
  /// and uncaught exceptions into the exit code.  Returns the exit code.
  int _bootstrap(std::optional<int> parent_sentinel = std::nullopt);

  /// Python: self._popen (nullptr before start and after close).
  popen_fork::Popen* _popen_object() const { return popen_.get(); }
  /// Python: self._identity: (1,) for Process-1, (1, 2) for Process-1:2.
  const std::vector<int>& _identity() const { return identity_; }
  /// Python: self._parent_pid.
  std::optional<pid_t> _parent_pid() const { return parent_pid_; }
  /// Python: self._args: what run() passes to the target.  A subclass that
  /// overrides run() reads its data here: under spawn and forkserver only what
  /// _getstate() keeps crosses to the child, not the subclass's own members.
  /// Empty in the parent once start() has dropped it.
  const Args& _args() const { return args_; }
  /// Python: self._config.
  ProcessConfig _config;

  /// Python: what pickling the process object keeps when spawn sends it to the
  /// child (its __dict__, the _popen aside): the class and the target by name,
  /// the args, the name, daemon flag, authkey, _identity and the parent's pid
  /// and name, as a dict.
  /// \throws PicklingError naming the target or class that cannot cross by
  ///   name (a lambda, an unregistered function or Process subclass).
  Object _getstate() const;
  /// Python: unpickling it in the child: restore what _getstate() kept.
  void _setstate(const Object& state);

 protected:
  /// For _MainProcess and _ParentProcess, which are not created by a parent.
  struct NotAChild {};
  explicit BaseProcess(NotAChild);

  /// Python: the `_Popen` staticmethod of the process's class: make the Popen
  /// that starts this process with the class's start method.
  virtual std::unique_ptr<popen_fork::Popen> _make_popen();
  /// Python: the `_after_fork` staticmethod: clear the parent's finalizers and
  /// run the after-fork hooks (SpawnProcess makes it a no-op).
  virtual void _after_fork();
  /// Python: the `_start_method` class attribute (None for context.Process).
  virtual std::optional<std::string> _start_method() const;
  /// Python: _check_closed(): \throws ValueError "process object is closed".
  void _check_closed() const;
  /// Python: type(self).__name__, as repr() and default names show it.  The C++
  /// class name without namespaces, unless overridden (_MainProcess, whose
  /// Python name C++ reserves).
  virtual std::string _type_name() const;

  std::optional<std::string> name_;  // Python: _name (computed on first use when not given)
  std::optional<pid_t> parent_pid_;  // Python: _parent_pid
  std::string parent_name_;          // Python: _parent_name
  std::optional<int> sentinel_;      // Python: _sentinel
  bool closed_ = false;              // Python: _closed

 private:
  Target target_;                           // Python: _target (dropped by start)
  Args args_;                               // Python: _args (dropped by start)
  std::vector<int> identity_;               // Python: _identity
  std::unique_ptr<popen_fork::Popen> popen_;  // Python: _popen
  mutable std::string default_name_;
};

/// Python: process.current_process().
BaseProcess& current_process();
/// Python: process.parent_process(): nullptr in the main process.
BaseProcess* parent_process();
/// Python: process.active_children(): started children not yet known to have
/// ended (joining or polling one removes it).  Finished children are reaped here.
std::vector<BaseProcess*> active_children();

/// Python: process._cleanup(): forget children that have ended.
void _cleanup();

/// Python: process._exitcode_to_name: {-15: "-SIGTERM", ...}, for repr().
const std::map<int, std::string>& _exitcode_to_name();

/// The state process.py keeps in module globals.  A child resets it in
/// _bootstrap: current_process becomes the child's Process object,
/// parent_process a _ParentProcess and the counter restarts at 1.  The
/// children and orphans lists (the parent's, not the child's) and the lock
/// are new and empty in the child of every fork() (a fork handler, which
/// never reads the parent's: another thread may have been changing them).
struct ProcessModuleState {
  std::mutex lock;                                   // stands for the GIL
  BaseProcess* current_process = nullptr;            // _current_process
  /// Port only: the _MainProcess object made first.  A spawned child makes
  /// its own Process current; this keeps the first one reachable (Python's
  /// garbage collector would free it; here it lives until exit).
  BaseProcess* main_process = nullptr;
  BaseProcess* parent_process = nullptr;             // _parent_process (a _ParentProcess)
  int process_counter = 1;                           // _process_counter: next number
  std::vector<BaseProcess*> children;                // _children, in start order
  /// Port only: Popens of children whose Process object was destroyed while
  /// they still ran; reaped by _cleanup() and at exit.
  struct Orphan {
    std::unique_ptr<popen_fork::Popen> popen;
    bool daemon = false;
    std::string name;
  };
  std::vector<Orphan> orphans;
  /// Port only: waits for the process's non-daemon threads (Python:
  /// threading._shutdown), installed by multiprocessing::dummy.
  void (*threading_shutdown)() = nullptr;
};
ProcessModuleState& _process_state();

/// At exit: terminate daemonic orphans, wait for all orphans (util._exit_function).
void _reap_orphans_at_exit();

}  // namespace multiprocessing
