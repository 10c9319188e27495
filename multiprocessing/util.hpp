// multiprocessing/util.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/util.py: the package's logger and its
// SUBDEBUG/SUBWARNING levels, Finalize (cleanup with exit priorities), the
// after-fork registry, _exit_function (what a process does on its way out), and
// small fd/stdio helpers; and two aids for learners that Python's util has no
// twin of: trace mode (trace(), trace_enabled(), _trace()) and the
// wait-for-debugger stop (_wait_for_debugger()).
#pragma once

#include <pthread.h>
#include <sys/single_threaded.h>
#include <sys/types.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

/// Marks a function that a course assignment replaces (assignments/README.md).
/// The library's definition is weak: when a student's file defines the same
/// function and is linked into the program (cmake -DMP_ASSIGNMENT=NAME),
/// the linker takes the student's, and the library's own tests grade it.
#define MP_ASSIGNABLE __attribute__((weak))

/// Marks a function that every child started by fork() runs (the fork
/// handlers, _bootstrap and what it calls).  A forked child shares the
/// parent's code but not its page-table entries for it: each 64 KiB of code
/// it runs first costs it a page fault.  These functions go into one section,
/// which the linker's default script places in one run with the other
/// `.text.hot.*` input sections, so the child maps a page or two of code for
/// all of them instead of one window per source file.
#define MP_FORKED_CHILD_CODE __attribute__((section(".text.hot.mp_forked_child")))

namespace multiprocessing::util {

// ------------------------------------------------------------------ logging

/// Logging levels, Python's `logging` values plus the package's two extras.
inline constexpr int NOTSET = 0;
inline constexpr int SUBDEBUG = 5;    ///< Python: util.SUBDEBUG
inline constexpr int DEBUG = 10;
inline constexpr int INFO = 20;
inline constexpr int SUBWARNING = 25; ///< Python: util.SUBWARNING
inline constexpr int WARNING = 30;
inline constexpr int ERROR = 40;
inline constexpr int CRITICAL = 50;

inline constexpr const char* LOGGER_NAME = "multiprocessing";
inline constexpr const char* DEFAULT_LOGGING_FORMAT = "[%(levelname)s/%(processName)s] %(message)s";

/// The package's logger: a level and, after log_to_stderr(), a stderr handler
/// formatting lines as DEFAULT_LOGGING_FORMAT does.  Python: logging.Logger
/// named "multiprocessing" with propagate=0.
class Logger {
 public:
  /// Python: Logger.setLevel.
  void setLevel(int level);
  /// The level set on this logger (NOTSET unless set).
  int level() const;
  /// Python: Logger.getEffectiveLevel: this logger's level, or the root
  /// logger's WARNING when it is NOTSET.
  int getEffectiveLevel() const;
  /// Python: Logger.isEnabledFor.
  bool isEnabledFor(int level) const;
  /// Emit `message` at `level`: "[INFO/Process-1] message" through the stderr
  /// handler; with no handler, only WARNING and above, bare, as Python's
  /// logging.lastResort does.
  void log(int level, std::string_view message);
  /// Add the stderr handler (once).  Python: part of log_to_stderr().
  void add_stderr_handler();
  bool has_stderr_handler() const;
  /// Re-create the mutex in a forked child (Python: Handler._at_fork_reinit).
  void _at_fork_reinit();

 private:
  mutable std::mutex mutex_;
  int level_ = NOTSET;
  bool stderr_handler_ = false;
};

/// The name Python's logging prints for a level: "SUBDEBUG", "INFO", "Level 7".
std::string level_name(int level);

/// Python: util.sub_debug / debug / info / sub_warning.  They do nothing until
/// get_logger() has created the logger, exactly as in Python.  (A string_view,
/// so that a literal message costs no allocation when nothing is logged.)
void sub_debug(std::string_view message);
void debug(std::string_view message);
void info(std::string_view message);
void sub_warning(std::string_view message);

/// Python: util._logger: the logger if get_logger() has made it, else nullptr.
/// Lets a caller skip composing a message nobody will read.
Logger* get_logger_if_any();

/// Python: util.get_logger(): create (once) and return the package's logger.
Logger& get_logger();

/// Python: util.log_to_stderr(level=None): add a stderr handler, set the level
/// if given, return the logger.  Children started afterwards inherit both.
Logger& log_to_stderr(std::optional<int> level = std::nullopt);

// ------------------------------------------------------------------ trace mode

namespace detail {
/// Whether trace mode is on in this process.  Set once at startup from the
/// environment variable MULTIPROCESSING_TRACE, afterwards only by trace().
/// A forked child starts with its parent's value.
extern std::atomic<bool> trace_on;
}  // namespace detail

/// Whether trace mode is on.  One relaxed load of a global and a branch: what a
/// traced site costs when tracing is off.  No Python twin.
inline bool trace_enabled() noexcept { return detail::trace_on.load(std::memory_order_relaxed); }

/// Turn trace mode on or off in this process (and in the children it forks
/// afterwards; a spawned child or the forkserver reads MULTIPROCESSING_TRACE
/// from its environment instead).  With trace mode on, the library writes one
/// line to stderr for each step it takes: the context and Popen chosen, each
/// pipe and its fds, fork or posix_spawn and the child's pid, _bootstrap, run,
/// the exit code, each finalizer run, each Connection send and receive with its
/// byte count, each SemLock acquire and release, each queue feeder write, each
/// pool task dispatched and returned, each manager request and reply.
/// Each line is "[<pid>] <what happened>".  No Python twin.
void trace(bool on);

/// Write "[<pid>] <message>" and a newline to stderr in one write(2), so that
/// lines of several processes and threads never interleave mid-line.  Callers
/// test trace_enabled() first, so that the message is not even composed when
/// trace mode is off:  `if (util::trace_enabled()) util::_trace("...");`
void _trace(std::string_view message) noexcept;

/// When the environment variable MULTIPROCESSING_WAIT_FOR_DEBUGGER was set (and
/// not "0" or empty) when the program started (it is read once then, as
/// MULTIPROCESSING_TRACE is; a spawned child and the forkserver read it from
/// their own environment), write "[<pid>] <name> waiting for a debugger: ..." to
/// stderr and stop this process with raise(SIGSTOP) until it receives SIGCONT
/// (`kill -CONT <pid>`) or a debugger that attached with `gdb -p <pid>`
/// continues it (after `handle SIGSTOP nostop noprint nopass`, or with a
/// second `continue`: gdb first reports the SIGSTOP).  A new child calls it in _bootstrap, before run(), under every
/// start method.  No Python twin.
void _wait_for_debugger(std::string_view process_name);

// ------------------------------------------------------------------ pid

/// This process's pid, as os::getpid() returns it (call that one): the
/// kernel is asked once per process, and the answer kept in util's module
/// state.  The child of every fork() made through glibc (this library's, the
/// program's own) forgets it in a fork handler and asks again on first use.
/// A process made by a raw clone(2) system call would keep its parent's pid
/// here.  No Python twin (Python's os.getpid() is a system call each time).
pid_t _this_pid() noexcept;

// ------------------------------------------------------------------ Finalize

namespace detail {
struct FinalizerEntry;
}

/// Python: util.Finalize.  Runs a callback once: when the owning object dies
/// (here: when this handle is destroyed, as Python's weakref callback fires), when
/// called explicitly, or at exit by _run_finalizers() if it has an exit priority.
/// It runs only in the process that created it: after a fork the child's copy
/// is inert.  Higher exit priorities run first; equal ones in reverse creation
/// order; a finalizer without an exit priority never runs at exit.
class Finalize {
 public:
  using Callback = std::function<void()>;

  /// An empty handle (guards nothing).
  Finalize() noexcept = default;
  /// Python: Finalize(obj, callback, exitpriority=...), obj being whatever owns
  /// this handle.  `description` is shown by repr() and the sub_debug log.
  explicit Finalize(Callback callback, std::optional<int> exitpriority = std::nullopt,
                    std::string description = "callback");
  /// Python: Finalize(None, callback, exitpriority=N): no owning object, so it
  /// runs only at exit (or when called); destroying the returned handle does
  /// not run it.
  static Finalize without_object(Callback callback, int exitpriority,
                                 std::string description = "callback");

  Finalize(Finalize&& other) noexcept;
  /// Moving over an active handle first runs it, as its object is gone.
  Finalize& operator=(Finalize&& other) noexcept;
  Finalize(const Finalize&) = delete;
  Finalize& operator=(const Finalize&) = delete;
  /// The owning object died: run the callback if still registered.
  ~Finalize();

  /// Python: Finalize.__call__: run the callback unless it already ran or was
  /// cancelled (then do nothing).  Exceptions from the callback propagate.
  void operator()();
  /// Python: Finalize.cancel.
  void cancel();
  /// Python: Finalize.still_active.
  bool still_active() const;
  /// Python: Finalize.__repr__: "<Finalize object, callback=close_fds, exitpriority=None>".
  std::string repr() const;

 private:
  std::shared_ptr<detail::FinalizerEntry> entry_;
};

/// Python: util._run_finalizers(minpriority=None): run every registered
/// finalizer whose exit priority is set and >= minpriority, highest first; with
/// no minpriority, clear the registry afterwards.  Errors are printed, not thrown.
void _run_finalizers(std::optional<int> minpriority = std::nullopt);

/// Python: util._finalizer_registry.clear() (done by a child after fork, so the
/// parent's finalizers never run there).  Drops the entries that another
/// process registered (copied by fork); keeps the ones this process made
/// before its _bootstrap, as a forkserver child does while unpickling its
/// Process object (a manager proxy's decref).
void _clear_finalizer_registry();

/// How many finalizers are registered (for tests; Python: len(_finalizer_registry)).
std::size_t _finalizer_count();

/// Python: util.is_exiting().
bool is_exiting();

/// Python: util._exit_function(): once per process: run finalizers with
/// priority >= 0, terminate daemonic children, join all children, run the rest.
/// The main process runs it at exit (std::atexit); every child at the end of
/// _bootstrap.
void _exit_function();

/// Register _exit_function with std::atexit (once).  Python does this on import
/// of util; the port does it when the first process is created, after the module
/// states exist, so that they are destroyed after it runs.
void _register_exit_function();

// ------------------------------------------------------------------ after fork

/// Keeps an after-fork callback registered while it lives (Python keeps it while
/// the object lives: a WeakValueDictionary entry).
class AfterForkRegistration {
 public:
  AfterForkRegistration() = default;
  explicit AfterForkRegistration(long key) : key_(key) {}
  AfterForkRegistration(AfterForkRegistration&& other) noexcept;
  AfterForkRegistration& operator=(AfterForkRegistration&& other) noexcept;
  AfterForkRegistration(const AfterForkRegistration&) = delete;
  AfterForkRegistration& operator=(const AfterForkRegistration&) = delete;
  ~AfterForkRegistration();

 private:
  long key_ = -1;
};

/// Python: util.register_after_fork(obj, func): `func` runs in every child
/// started afterwards, in registration order, during _bootstrap.
[[nodiscard]] AfterForkRegistration register_after_fork(std::function<void()> func);

/// Python: util._run_after_forkers(); exceptions are logged with info().
void _run_after_forkers();

/// How many after-fork callbacks are registered (Python: len(_afterfork_registry)).
std::size_t _afterfork_count();

/// In a forked child, make `lock` a new, unlocked mutex: another thread of the
/// parent may have held it at the instant of fork(), and that thread does not
/// exist here to unlock it.  Python: Lock._at_fork_reinit(), which the locks
/// standing for the GIL get from os.register_at_fork.  A mutex that is already
/// unlocked with no waiter is left as it is (see _abandon_at_fork).
void _at_fork_reinit(std::mutex& lock) noexcept;

/// Build a new, empty `T` over `object` in a forked child, without trusting
/// the old one: another thread of the parent may have been half-way through
/// changing it (or held it, for a mutex) at the instant of fork(), and that
/// thread does not exist in the child.  The old one is never destroyed,
/// unlocked nor followed: whatever it owned is leaked in the child.  An
/// object with the same bytes as a new one is left untouched (it is one):
/// writing it anyway would cost the child a copy of its page.  For module
/// state that the child empties anyway, and for a mutex (Python:
/// Lock._at_fork_reinit()).
template <class T>
void _abandon_at_fork(T& object) noexcept {
  const T fresh{};
  // memcmp, not ==: the old object's pointers may be half-written.
  if (std::memcmp(static_cast<const void*>(&object), static_cast<const void*>(&fresh), sizeof(T)) != 0) {
    new (&object) T;
  }
}

/// Make fork() hold `lock`: the thread that forks takes it before the copy
/// (pthread_atfork's prepare), and the parent and the child each release it
/// after.  So the child never sees the data it guards half-changed, and keeps
/// that data.  Only for a mutex whose sections are short, never block and
/// take no other lock (then the order in which fork() takes the mutexes
/// cannot deadlock), and never held by a thread that forks.  Python needs
/// none of this: the GIL is held across os.fork().  util keeps the mutexes in
/// one table and its own three fork handlers walk it, so a forked child runs
/// one handler's code, not one per module (each page of code a child runs
/// first costs it a page fault).  A program that has never started a thread
/// has no other thread that could hold one: then fork() takes none (see
/// _forked_from_one_thread).  The state that owns the mutex is made while the
/// program starts (a namespace-scope `made_at_start` beside it), not on first
/// use: a child forked while another thread is constructing a function-local
/// static finds that static's guard taken for ever, and its first use there
/// hangs.
void _hold_across_fork(std::mutex& lock) noexcept;

/// In the parent and the child of the fork() under way (or of the last one):
/// whether the program had never started a thread when it forked (glibc's
/// __libc_single_threaded).  Then no other thread can have been half-way
/// through changing any state, and a fork handler may read the state to see
/// whether it needs a change at all.
bool _forked_from_one_thread() noexcept;

/// Python: util.ForkAwareThreadLock: a lock between the threads of one process
/// that a child started by fork gets back unlocked, even when another thread of
/// the parent held it at the instant of fork() (that thread does not exist in
/// the child, so it could never release it).  Python re-creates the lock in
/// the child from the after-fork registry; so does this class.  Each object
/// adds exactly one entry to that registry and removes it when destroyed, so
/// the registry does not grow from one generation of processes to the next
/// (CPython issue 17555, TestForkAwareThreadLock).  Neither copyable nor movable: the
/// registry entry refers to this object.  BasicLockable and Lockable, so
/// `std::lock_guard guard(lock);` is Python's `with lock:`.
class ForkAwareThreadLock {
 public:
  ForkAwareThreadLock();
  ForkAwareThreadLock(const ForkAwareThreadLock&) = delete;
  ForkAwareThreadLock& operator=(const ForkAwareThreadLock&) = delete;

  /// Python: acquire(blocking=True): true once held; false only when
  /// `blocking` is false and another thread holds it.
  bool acquire(bool blocking = true);
  /// Python: release().
  void release();
  void lock() { acquire(); }                       ///< std::lock_guard's spelling of acquire()
  bool try_lock() { return acquire(false); }       ///< std::unique_lock's spelling
  void unlock() { release(); }                     ///< std::lock_guard's spelling of release()
  /// Python: _at_fork_reinit(): a new, unlocked lock (run in a forked child).
  void _at_fork_reinit();

 private:
  std::mutex lock_;
  AfterForkRegistration after_fork_;  // Python: register_after_fork(self, ...)
};

/// Python: util.ForkAwareLocal, a threading.local whose contents a child
/// started by fork finds empty: each thread sees its own `T`, made (value
/// initialised) on first use; after fork, the child's registry callback drops
/// every thread's value, as Python clears the object's __dict__.  What Python
/// keeps as attributes (a manager proxy's `connection`), `T` holds as members.
/// A thread's value lives until clear(), the next fork, or this object's end.
template <class T>
class ForkAwareLocal {
 public:
  ForkAwareLocal() : after_fork_(register_after_fork([this] { clear(); })) {}
  ForkAwareLocal(const ForkAwareLocal&) = delete;
  ForkAwareLocal& operator=(const ForkAwareLocal&) = delete;

  /// This thread's value (Python: attribute access on the local object).
  T& get() {
    std::lock_guard guard(lock_);
    std::unique_ptr<T>& value = values_[std::this_thread::get_id()];
    if (!value) value = std::make_unique<T>();
    return *value;
  }
  /// Whether this thread has a value (Python: `self.__dict__` is not empty).
  bool has_value() const {
    std::lock_guard guard(lock_);
    return values_.count(std::this_thread::get_id()) != 0;
  }
  /// Drop every thread's value (Python: `obj.__dict__.clear()`).
  void clear() {
    std::lock_guard guard(lock_);
    values_.clear();
  }

 private:
  mutable std::mutex lock_;
  std::map<std::thread::id, std::unique_ptr<T>> values_;
  AfterForkRegistration after_fork_;
};

// ------------------------------------------------------------------ temp dir

/// Python: util.get_temp_dir(): a private directory (mode 0700, "pymp-XXXXXXXX"
/// under $TMPDIR or /tmp) made once per process tree and kept in
/// current_process()._config.tempdir, so that forked children share it.  The
/// process that made it removes it, with what is inside, at exit (a
/// Finalize::without_object with exit priority -100, after every other).
/// Unix socket files of Listeners live there.  \throws OSError from mkdtemp.
std::string get_temp_dir();

/// What a process killed while a Unix Listener of it was open leaves behind:
/// the socket file at `path`, and the "pymp-" directory of get_temp_dir()
/// that holds it, which only that process's exit would have removed.  Called
/// by whoever outlives it and knows the path (a manager's parent, a fork
/// server whose parent died): unlinks the file if it is a socket, then removes
/// its directory if that is a "pymp-" one, now empty, and not this process's
/// own temp directory.  Errors are ignored.
void _remove_stale_socket(const std::string& path);

// ------------------------------------------------------------------ fds and stdio

/// Python: util.close_fds(*fds).
void close_fds(std::initializer_list<int> fds);

/// Python: util.spawnv_passfds(path, args, passfds): start the program `path`
/// with `args` (args[0] included) in a new process that inherits only stdin,
/// stdout, stderr and `passfds`, and return its pid.  Here the inherited fds
/// are renumbered 3, 4, 5... in the child, in the order given (Python keeps
/// their numbers); every other fd is closed in the child.  posix_spawn, which
/// does not copy the parent's page tables as fork() does.  The program gets
/// this process's environment, with each "NAME=value" of `extra_env` added
/// (or replacing the variable of that name).
/// \throws OSError("posix_spawn", errno) if the program cannot be started
///   (glibc reports a failed exec here, not in the child: FileNotFoundError for
///   a missing program); OSError("posix_spawn_file_actions", EBADF) if an fd
///   would have to be renumbered at or above RLIMIT_NOFILE.
pid_t spawnv_passfds(const std::string& path, const std::vector<std::string>& args,
                     const std::vector<int>& passfds, const std::vector<std::string>& extra_env = {});

/// Python: util._close_stdin(): the child's stdin becomes /dev/null, so that
/// parent and children do not compete for the terminal's input.
void _close_stdin();

/// Python: util._flush_std_streams(): flush stdout and stderr (C stdio and
/// iostreams), ignoring errors (a closed or broken stream is no reason to fail).
void _flush_std_streams();

}  // namespace multiprocessing::util
