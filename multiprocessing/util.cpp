// multiprocessing/util.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/util.py; see util.hpp.
#include "multiprocessing/util.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio_ext.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <new>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/popen_fork.hpp"
#include "multiprocessing/process.hpp"

namespace multiprocessing::util {

namespace detail {
/// One registered finalizer.  Python: a Finalize object in _finalizer_registry.
struct FinalizerEntry {
  std::optional<int> exitpriority;  // Python: _key[0]
  long counter = 0;                 // Python: _key[1], next(_finalizer_counter)
  pid_t pid = 0;                    // Python: _pid, the creating process
  Finalize::Callback callback;
  std::string description;
  bool runs_when_handle_dies = true;  // false for Finalize(None, ...)
};
}  // namespace detail

namespace {

/// util.py's module globals.  A child after fork keeps the logger and level,
/// clears the finalizer registry (_bootstrap -> _after_fork), and keeps the
/// after-fork registry (that is what runs there).  The mutex stands for the
/// GIL.  fork() takes it around the copy (fork handlers, below), so that the
/// child never sees a registry another thread was half-way through changing.
/// `pid` is os::getpid()'s cache (see _this_pid below); it sits beside the
/// mutex, which the child handler unlocks when the parent had threads, so
/// clearing the cache there dirties no other page.
struct UtilState {
  std::mutex lock;
  std::atomic<pid_t> pid{0};  // this process's pid; 0: not asked yet in this process
  std::map<long, std::shared_ptr<detail::FinalizerEntry>> finalizer_registry;  // _finalizer_registry
  long finalizer_counter = 0;                                                  // _finalizer_counter
  std::map<long, std::function<void()>> afterfork_registry;                    // _afterfork_registry
  long afterfork_counter = 0;                                                  // _afterfork_counter
  Logger* logger = nullptr;                                                    // _logger
  bool exiting = false;                                                        // _exiting
  bool exit_function_registered = false;
};

UtilState& state();

// The mutexes fork() holds (_hold_across_fork), in the order they were
// registered.  Plain globals with constant initializers, so they are ready
// before any module's state is made during static initialization; a slot is
// written once, when its module's state is made.
constexpr std::size_t kMaxHeldAcrossFork = 16;
std::array<std::atomic<std::mutex*>, kMaxHeldAcrossFork> held_across_fork{};
std::atomic<std::size_t> held_across_fork_used{0};
// Written by the prepare handler, read by the other two.  Each is written only
// when it changes: a page written right before fork() is copy-on-write again
// after it, and the next write there costs the parent a fault.
// One struct, so that both lie on one page: a child reads both.
struct ThisFork {
  std::uint32_t held = 0;         // bit i: slot i was locked for this fork
  bool from_one_thread = true;    // no thread but the forking one existed
};
ThisFork this_fork;

void register_held_across_fork(std::mutex& lock) noexcept {
  std::size_t slot = held_across_fork_used.fetch_add(1, std::memory_order_relaxed);
  if (slot >= kMaxHeldAcrossFork) {
    std::fputs("multiprocessing: util::_hold_across_fork: table full (raise kMaxHeldAcrossFork)\n", stderr);
    std::abort();
  }
  held_across_fork[slot].store(&lock, std::memory_order_release);
}

MP_FORKED_CHILD_CODE void unlock_held_this_fork() noexcept {
  for (std::size_t i = 0; i < kMaxHeldAcrossFork; ++i) {
    if ((this_fork.held & (1u << i)) != 0) held_across_fork[i].load(std::memory_order_relaxed)->unlock();
  }
}

MP_FORKED_CHILD_CODE void after_fork_in_child() {
  unlock_held_this_fork();
  if (state().pid.load(std::memory_order_relaxed) != 0) state().pid.store(0, std::memory_order_relaxed);
  if (state().logger != nullptr) state().logger->_at_fork_reinit();
}

MP_FORKED_CHILD_CODE UtilState& state() {
  // Never destroyed: _exit_function (an atexit handler) and finalizers of
  // static objects may still need it while other statics are torn down.
  static UtilState* s = [] {
    auto* created = new UtilState;
    // Python holds the GIL across os.fork(), so no other thread is inside a
    // registry at that instant.  Here fork() holds the lock (every section
    // under it is short and takes no other lock).  The logger's mutex is
    // held while writing, which may block, so it is not taken around fork:
    // the child gets a new one instead (Python: Handler._at_fork_reinit).
    register_held_across_fork(created->lock);
    // pthread_atfork: the three handlers of every table entry, run in the
    // thread that calls fork(), around the copy; no failure to report but
    // ENOMEM, where fork() would fail too.  They are registered before any
    // other module's, so the child handler runs first there: it releases
    // the mutexes, and forgets the parent's pid so that os::getpid() asks the
    // kernel again in the child.
    ::pthread_atfork(
        [] {
          const bool one_thread = __libc_single_threaded;
          if (this_fork.from_one_thread != one_thread) this_fork.from_one_thread = one_thread;
          std::uint32_t held = 0;
          if (!one_thread) {
            for (std::size_t i = 0; i < kMaxHeldAcrossFork; ++i) {
              if (std::mutex* lock = held_across_fork[i].load(std::memory_order_acquire)) {
                lock->lock();  // NOLINT: released by the two handlers below
                held |= 1u << i;
              }
            }
          }
          if (this_fork.held != held) this_fork.held = held;
        },
        [] { unlock_held_this_fork(); }, after_fork_in_child);
    return created;
  }();
  return *s;
}

// Made while the program starts (static initialization), not on first use:
// glibc runs the child fork handlers in the order they were registered, and
// the one above, which clears the cached pid, must come before those that the
// other modules register when their state is first used (a handler that
// asked os::getpid() before it would get the parent's pid).
[[maybe_unused]] const bool state_made_at_start = (state(), true);

void run_entry(const std::shared_ptr<detail::FinalizerEntry>& entry) {
  // Python: Finalize.__call__: take the entry out of the registry; if it was
  // not there, it already ran or was cancelled.
  // The thread that takes it out also takes its callback, under the lock:
  // another thread may be running the same entry (_run_finalizers beside
  // the handle's destructor), and cancel() clears the callback under it too.
  bool registered = false;
  Finalize::Callback callback;
  {
    std::lock_guard guard(state().lock);
    auto it = state().finalizer_registry.find(entry->counter);
    if (it != state().finalizer_registry.end() && it->second == entry) {
      state().finalizer_registry.erase(it);
      registered = true;
      callback = std::move(entry->callback);
      entry->callback = nullptr;
    }
  }
  if (!registered) {
    sub_debug("finalizer no longer registered");
  } else if (entry->pid != os::getpid()) {
    sub_debug("finalizer ignored because different process");
  } else if (callback) {
    if (state().logger != nullptr) sub_debug("finalizer calling " + entry->description);
    if (trace_enabled()) _trace("finalizer: " + entry->description);
    callback();
  }
}

MP_FORKED_CHILD_CODE void log_at(int level, std::string_view message) {
  Logger* logger = state().logger;
  if (logger != nullptr && logger->isEnabledFor(level)) logger->log(level, message);
}

}  // namespace

// ------------------------------------------------------------------ logging

void Logger::setLevel(int level) {
  std::lock_guard guard(mutex_);
  level_ = level;
}

int Logger::level() const {
  std::lock_guard guard(mutex_);
  return level_;
}

int Logger::getEffectiveLevel() const {
  int level = this->level();
  return level != NOTSET ? level : WARNING;  // the root logger's default
}

bool Logger::isEnabledFor(int level) const { return level >= getEffectiveLevel(); }

void Logger::log(int level, std::string_view message) {
  if (!isEnabledFor(level)) return;
  std::string line;
  if (has_stderr_handler()) {
    // DEFAULT_LOGGING_FORMAT: [%(levelname)s/%(processName)s] %(message)s
    line = "[" + level_name(level) + "/" + current_process().name() + "] ";
    line.append(message);
    line += '\n';
  } else if (level >= WARNING) {
    line = std::string(message) + "\n";  // logging.lastResort prints the bare message
  } else {
    return;
  }
  // One fwrite on the unbuffered stderr: one write(2), so lines written by
  // several processes at once do not interleave mid-line.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void Logger::add_stderr_handler() {
  std::lock_guard guard(mutex_);
  stderr_handler_ = true;
}

bool Logger::has_stderr_handler() const {
  std::lock_guard guard(mutex_);
  return stderr_handler_;
}

void Logger::_at_fork_reinit() { util::_at_fork_reinit(mutex_); }

std::string level_name(int level) {
  switch (level) {
    case NOTSET: return "NOTSET";
    case SUBDEBUG: return "SUBDEBUG";
    case DEBUG: return "DEBUG";
    case INFO: return "INFO";
    case SUBWARNING: return "SUBWARNING";
    case WARNING: return "WARNING";
    case ERROR: return "ERROR";
    case CRITICAL: return "CRITICAL";
    default: return "Level " + std::to_string(level);
  }
}

// In the code every forked child runs (MP_FORKED_CHILD_CODE): _exit_function
// logs at each of these levels on the child's way out.
MP_FORKED_CHILD_CODE void sub_debug(std::string_view message) { log_at(SUBDEBUG, message); }
MP_FORKED_CHILD_CODE void debug(std::string_view message) { log_at(DEBUG, message); }
MP_FORKED_CHILD_CODE void info(std::string_view message) { log_at(INFO, message); }
void sub_warning(std::string_view message) { log_at(SUBWARNING, message); }

Logger* get_logger_if_any() { return state().logger; }

Logger& get_logger() {
  std::lock_guard guard(state().lock);
  if (state().logger == nullptr) {
    state().logger = new Logger;  // lives as long as the process, like Python's
  }
  return *state().logger;
}

Logger& log_to_stderr(std::optional<int> level) {
  Logger& logger = get_logger();
  logger.add_stderr_handler();
  if (level) logger.setLevel(*level);
  return logger;
}

// ------------------------------------------------------------------ trace mode

namespace {

/// Whether an environment variable asks for something: set, not empty, not "0".
bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

}  // namespace

// Read once, while the program starts (spawned children and the forkserver
// too, as they are new programs).
std::atomic<bool> detail::trace_on{env_flag("MULTIPROCESSING_TRACE")};

void trace(bool on) { detail::trace_on.store(on, std::memory_order_relaxed); }

void _trace(std::string_view message) noexcept {
  try {
    std::string line = "[" + std::to_string(os::getpid()) + "] ";
    line.append(message);
    line += '\n';
    // write(2) straight on fd 2, bypassing stdio: one system call per line, so
    // that lines from several processes and threads never mix, and nothing
    // waits in a buffer that a forked child would copy and write again.
    std::size_t done = 0;
    while (done < line.size()) {
      ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // stderr closed or full: a trace is not worth failing for
      done += static_cast<std::size_t>(n);
    }
  } catch (...) {
    // Out of memory while composing a trace line: drop the line.
  }
}

namespace {
// Read once, while the program starts, as MULTIPROCESSING_TRACE is: a child
// of fork then tests a flag in its copy, where getenv would walk the
// environment strings, pages that a fresh child has not touched yet (each a
// page fault).
const bool wait_for_debugger_on = env_flag("MULTIPROCESSING_WAIT_FOR_DEBUGGER");
}  // namespace

MP_FORKED_CHILD_CODE void _wait_for_debugger(std::string_view process_name) {
  if (!wait_for_debugger_on) return;
  std::string pid = std::to_string(os::getpid());
  std::string line = "[" + pid + "] ";
  line.append(process_name);
  line += " waiting for a debugger: gdb -p " + pid + ", or kill -CONT " + pid + "\n";
  _flush_std_streams();
  // One write(2) on fd 2, as _trace does: the line is out before the stop.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  // SIGSTOP cannot be caught or ignored: the process stops here for sure, and
  // both SIGCONT and a debugger's 'continue' (after gdb -p) resume it.
  ::raise(SIGSTOP);
}

// ------------------------------------------------------------------ gdb printers

namespace {

// The gdb pretty-printers (tools/gdb/multiprocessing_printers.py, included by
// the build as a string literal) in the .debug_gdb_scripts section of every
// program linked with the library.  gdb runs them when it loads the program,
// if its `auto-load safe-path` trusts the program's directory.  The format is
// gdb's: a byte 4 ("Python text follows"), the script's name on the first
// line, the script, and the literal's closing NUL.
[[gnu::used, gnu::section(".debug_gdb_scripts")]] const char gdb_printers_script[] =
    "\x04" "multiprocessing_printers.py\n"
#include "multiprocessing/gdb_printers.inc"
    ;

}  // namespace

// ------------------------------------------------------------------ pid

MP_FORKED_CHILD_CODE pid_t _this_pid() noexcept {
  UtilState& s = state();
  pid_t pid = s.pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = ::getpid();  // the first time in this process: ask the kernel
    s.pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

// ------------------------------------------------------------------ Finalize

Finalize::Finalize(Callback callback, std::optional<int> exitpriority, std::string description)
    : entry_(std::make_shared<detail::FinalizerEntry>()) {
  entry_->exitpriority = exitpriority;
  entry_->pid = os::getpid();
  entry_->callback = std::move(callback);
  entry_->description = std::move(description);
  std::lock_guard guard(state().lock);
  entry_->counter = state().finalizer_counter++;
  state().finalizer_registry[entry_->counter] = entry_;
}

Finalize Finalize::without_object(Callback callback, int exitpriority, std::string description) {
  Finalize f(std::move(callback), exitpriority, std::move(description));
  f.entry_->runs_when_handle_dies = false;
  return f;
}

Finalize::Finalize(Finalize&& other) noexcept : entry_(std::move(other.entry_)) {}

Finalize& Finalize::operator=(Finalize&& other) noexcept {
  if (this != &other) {
    if (entry_ && entry_->runs_when_handle_dies) {
      try {
        (*this)();
      } catch (...) {
      }
    }
    entry_ = std::move(other.entry_);
  }
  return *this;
}

Finalize::~Finalize() {
  if (!entry_ || !entry_->runs_when_handle_dies) return;
  try {
    run_entry(entry_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Exception ignored in finalizer %s: %s\n", entry_->description.c_str(),
                 e.what());
  } catch (...) {
  }
}

void Finalize::operator()() {
  if (entry_) run_entry(entry_);
}

void Finalize::cancel() {
  if (!entry_) return;
  std::lock_guard guard(state().lock);
  auto it = state().finalizer_registry.find(entry_->counter);
  if (it != state().finalizer_registry.end() && it->second == entry_) {
    state().finalizer_registry.erase(it);
    entry_->callback = nullptr;
  }
}

bool Finalize::still_active() const {
  if (!entry_) return false;
  std::lock_guard guard(state().lock);
  auto it = state().finalizer_registry.find(entry_->counter);
  return it != state().finalizer_registry.end() && it->second == entry_;
}

std::string Finalize::repr() const {
  if (!still_active()) return "<Finalize object, dead>";
  std::string priority =
      entry_->exitpriority ? std::to_string(*entry_->exitpriority) : std::string("None");
  return "<Finalize object, callback=" + entry_->description + ", exitpriority=" + priority + ">";
}

MP_FORKED_CHILD_CODE void _run_finalizers(std::optional<int> minpriority) {
  // Python: keys = [key for key in list(_finalizer_registry) if f(key)];
  // keys.sort(reverse=True).  The registry may change while callbacks run.
  std::vector<std::shared_ptr<detail::FinalizerEntry>> chosen;
  {
    std::lock_guard guard(state().lock);
    for (const auto& [counter, entry] : state().finalizer_registry) {
      if (entry->exitpriority && (!minpriority || *entry->exitpriority >= *minpriority)) {
        chosen.push_back(entry);
      }
    }
  }
  std::sort(chosen.begin(), chosen.end(), [](const auto& a, const auto& b) {
    if (*a->exitpriority != *b->exitpriority) return *a->exitpriority > *b->exitpriority;
    return a->counter > b->counter;  // equal priority: reverse order of creation
  });
  for (const auto& entry : chosen) {
    if (state().logger != nullptr) {
      sub_debug("calling <Finalize object, callback=" + entry->description + ">");
    }
    try {
      run_entry(entry);
    } catch (const std::exception& e) {
      // Python: traceback.print_exc(), then go on with the others.
      std::fprintf(stderr, "Error in finalizer %s: %s: %s\n", entry->description.c_str(),
                   exception_type_name(e).c_str(), e.what());
    } catch (...) {
      std::fprintf(stderr, "Error in finalizer %s\n", entry->description.c_str());
    }
  }
  if (!minpriority) {
    std::lock_guard guard(state().lock);
    // clear() walks the tree even when it is empty, in code a forked child
    // has not touched yet (the child's registry is empty by now).
    if (!state().finalizer_registry.empty()) state().finalizer_registry.clear();
  }
}

MP_FORKED_CHILD_CODE void _clear_finalizer_registry() {
  // Python clears the whole registry: in a child it only holds what the
  // parent registered before fork().  Here a forkserver child unpickles its
  // Process object before _bootstrap gets here, and a manager proxy among the
  // arguments registers its decref then (the port increfs in such a child,
  // see RebuildProxy in managers.cpp): that finalizer is this process's own
  // and stays.  So only the entries of other processes (same pid check as
  // Finalize's own) are dropped.
  std::lock_guard guard(state().lock);
  auto& registry = state().finalizer_registry;
  // Nothing registered: no need to ask which pid this is.
  if (registry.empty()) return;
  const pid_t self = os::getpid();  // which entries this process made itself
  auto made_here = [self](const auto& item) { return item.second->pid == self; };
  // A Finalize handle (in this copy of the parent's objects) owns the entry
  // too: erasing it from the registry would destroy nothing.
  auto held_by_handle = [](const auto& item) { return item.second->runs_when_handle_dies; };
  if (std::none_of(registry.begin(), registry.end(), made_here) &&
      std::all_of(registry.begin(), registry.end(), held_by_handle)) {
    // The usual child of fork: its registry holds the entries the parent
    // made, at least that of the Popen that forked it (popen_fork registers
    // it before fork()), each held by its handle.  The registry is forgotten
    // whole, its nodes left allocated: erasing would free each node and
    // release each entry, writes to malloc's pages and to the entries' own,
    // each a page that a fresh child copies.
    _abandon_at_fork(registry);
    return;
  }
  std::erase_if(registry, [&made_here](const auto& item) { return !made_here(item); });
}

std::size_t _finalizer_count() {
  std::lock_guard guard(state().lock);
  return state().finalizer_registry.size();
}

bool is_exiting() { return state().exiting; }

MP_FORKED_CHILD_CODE void _exit_function() {
  // Python: util._exit_function.  Runs once per process.
  if (state().exiting) return;
  state().exiting = true;

  info("process shutting down");
  debug("running all \"atexit\" finalizers with priority >= 0");
  _run_finalizers(0);

  // We check if the current process is None here because if it's None, any
  // call to ``active_children()`` will raise an AttributeError (Python's note;
  // here the current process always exists).
  //
  // Daemonic children are terminated first (they would otherwise outlive a
  // parent that is no longer able to reap them), then every child is joined.
  for (BaseProcess* p : active_children()) {
    if (p->daemon()) {
      info("calling terminate() for daemon " + p->name());
      p->_popen_object()->terminate();
    }
  }
  for (BaseProcess* p : active_children()) {
    info("calling join() for process " + p->name());
    p->join();
  }
  // Children whose Process object was destroyed before they ended (a case
  // Python cannot have: its _children set keeps the objects alive).
  _reap_orphans_at_exit();

  debug("running the remaining \"atexit\" finalizers");
  _run_finalizers();
}

void _register_exit_function() {
  std::lock_guard guard(state().lock);
  if (state().exit_function_registered) return;
  state().exit_function_registered = true;
  std::atexit([] { _exit_function(); });
}

// ------------------------------------------------------------------ after fork

AfterForkRegistration::AfterForkRegistration(AfterForkRegistration&& other) noexcept
    : key_(std::exchange(other.key_, -1)) {}

AfterForkRegistration& AfterForkRegistration::operator=(AfterForkRegistration&& other) noexcept {
  if (this != &other) {
    AfterForkRegistration old(std::move(*this));
    key_ = std::exchange(other.key_, -1);
  }
  return *this;
}

AfterForkRegistration::~AfterForkRegistration() {
  if (key_ < 0) return;
  std::lock_guard guard(state().lock);
  state().afterfork_registry.erase(key_);
}

AfterForkRegistration register_after_fork(std::function<void()> func) {
  std::lock_guard guard(state().lock);
  long key = state().afterfork_counter++;
  state().afterfork_registry[key] = std::move(func);
  return AfterForkRegistration(key);
}

MP_FORKED_CHILD_CODE void _run_after_forkers() {
  std::vector<std::function<void()>> items;
  {
    std::lock_guard guard(state().lock);
    for (const auto& [key, func] : state().afterfork_registry) items.push_back(func);
  }
  for (const auto& func : items) {
    try {
      func();
    } catch (const std::exception& e) {
      info(std::string("after forker raised exception ") + e.what());
    }
  }
}

MP_FORKED_CHILD_CODE void _at_fork_reinit(std::mutex& lock) noexcept { _abandon_at_fork(lock); }

void _hold_across_fork(std::mutex& lock) noexcept {
  (void)state();  // util's handlers first (see state())
  register_held_across_fork(lock);
}

MP_FORKED_CHILD_CODE bool _forked_from_one_thread() noexcept { return this_fork.from_one_thread; }

std::size_t _afterfork_count() {
  std::lock_guard guard(state().lock);
  return state().afterfork_registry.size();
}

ForkAwareThreadLock::ForkAwareThreadLock()
    : after_fork_(register_after_fork([this] { _at_fork_reinit(); })) {}

bool ForkAwareThreadLock::acquire(bool blocking) {
  if (!blocking) return lock_.try_lock();
  lock_.lock();
  return true;
}

void ForkAwareThreadLock::release() { lock_.unlock(); }

void ForkAwareThreadLock::_at_fork_reinit() {
  // The child is single-threaded now; the old mutex may be "held" by a thread
  // that only existed in the parent.  A new one in its place, as Python's
  // Lock._at_fork_reinit() does; the old one is abandoned, never unlocked.
  _abandon_at_fork(lock_);
}

// ------------------------------------------------------------------ temp dir

namespace {
// Python: util._remove_temp_dir(rmtree, tempdir): shutil.rmtree, errors ignored.
// The directory holds only files (Listeners' socket files), so one level is enough;
// a subdirectory someone else made is removed if empty and otherwise left.
void _remove_temp_dir(const std::string& tempdir) {
  if (DIR* dir = ::opendir(tempdir.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = tempdir + "/" + name;
      if (::unlink(path.c_str()) != 0) ::rmdir(path.c_str());
    }
    ::closedir(dir);
  }
  ::rmdir(tempdir.c_str());
  // Python: current_process()._config['tempdir'] = None, so that a later
  // get_temp_dir() (in a finalizer still to run) makes a new one.
  current_process()._config.tempdir.reset();
}
}  // namespace

std::string get_temp_dir() {
  std::optional<std::string>& tempdir = current_process()._config.tempdir;
  if (!tempdir) {
    // Python: tempfile.mkdtemp(prefix='pymp-'): mode 0700, so that no other
    // user can connect to (or replace) the socket files made in it.
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                        "/pymp-XXXXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) raise_os_error("mkdtemp", errno);
    info("created temp directory " + templ);
    // Python keeps the Finalize object nowhere either: Finalize(None, ...) lives
    // in the registry until exit.
    Finalize::without_object([templ] { _remove_temp_dir(templ); }, -100,
                             "_remove_temp_dir");
    tempdir = templ;
    // The removal runs from _exit_function: make sure it runs at this
    // process's exit even if no child was ever started.
    _register_exit_function();
  }
  return *tempdir;
}

void _remove_stale_socket(const std::string& path) {
  if (path.empty() || path[0] == '\0') return;  // abstract: no file
  struct stat st{};
  // lstat: the file itself, a socket, never what a link points to.
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  ::unlink(path.c_str());
  const std::string dir = path.substr(0, path.rfind('/'));
  const std::optional<std::string>& own = current_process()._config.tempdir;
  const bool temp_dir = dir.substr(dir.rfind('/') + 1).rfind("pymp-", 0) == 0;
  if (temp_dir && (!own || *own != dir)) ::rmdir(dir.c_str());  // fails while not empty
}

// ------------------------------------------------------------------ fds and stdio

void close_fds(std::initializer_list<int> fds) {
  for (int fd : fds) os::close(fd);
}

// [spawn-passfds]
pid_t spawnv_passfds(const std::string& path, const std::vector<std::string>& args,
                     const std::vector<int>& passfds, const std::vector<std::string>& extra_env) {
  // The child's file actions run in order, in the child, before exec:
  //  1. park each passed fd above every number involved (dup2 to `park`+i),
  //     so that step 2 cannot overwrite one not yet moved;
  //  2. dup2 each parked copy to 3+i (dup2 leaves the copy without
  //     FD_CLOEXEC, so it survives exec);
  //  3. close everything from 3+n up, parked copies included (Python:
  //     close_fds=True).
  int n = static_cast<int>(passfds.size());
  int park = 3 + n;
  for (int fd : passfds) park = std::max(park, fd + 1);
  posix_spawn_file_actions_t actions;
  int err = ::posix_spawn_file_actions_init(&actions);
  if (err != 0) raise_os_error("posix_spawn_file_actions_init", err);
  // Each step checked: glibc refuses a number at or above RLIMIT_NOFILE
  // (EBADF), and a step left out would start the child with the wrong fds.
  for (int i = 0; i < n && err == 0; ++i) err = ::posix_spawn_file_actions_adddup2(&actions, passfds[i], park + i);
  for (int i = 0; i < n && err == 0; ++i) err = ::posix_spawn_file_actions_adddup2(&actions, park + i, 3 + i);
  if (err == 0) err = ::posix_spawn_file_actions_addclosefrom_np(&actions, 3 + n);
  // EBADF there means a parking number at or above the limit: the child would
  // need more fds than RLIMIT_NOFILE allows, which is what EMFILE says.
  if (err == EBADF) err = EMFILE;
  if (err != 0) {
    ::posix_spawn_file_actions_destroy(&actions);
    raise_os_error("posix_spawn_file_actions", err);
  }
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The environment: this process's, less the names extra_env sets, plus extra_env.
  std::vector<char*> envp;
  if (!extra_env.empty()) {
    for (char** var = environ; *var != nullptr; ++var) {
      std::string_view entry(*var);
      bool replaced = false;
      for (const std::string& extra : extra_env) {
        std::string_view name = std::string_view(extra).substr(0, extra.find('=') + 1);  // "NAME="
        if (entry.starts_with(name)) replaced = true;
      }
      if (!replaced) envp.push_back(*var);
    }
    for (const std::string& extra : extra_env) envp.push_back(const_cast<char*>(extra.c_str()));
    envp.push_back(nullptr);
  }
  pid_t pid = 0;
  err = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), extra_env.empty() ? environ : envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  if (err != 0) raise_os_error("posix_spawn", err);
  if (trace_enabled()) _trace("posix_spawn: " + path.substr(path.rfind('/') + 1) + " -> child pid " + std::to_string(pid));
  return pid;
}
// [spawn-passfds]

namespace {
// libc's clearerr through a pointer bound when the program loads, as os.cpp
// calls _exit: no parent calls clearerr before its first child does, so
// through the PLT every forked child would look the name up itself (about
// fifteen page faults after fork()).
void (*volatile const libc_clearerr)(std::FILE*) = ::clearerr;
}  // namespace

MP_FORKED_CHILD_CODE void _close_stdin() {
  // Python closes sys.stdin and opens a new one on os.devnull.  Here: fd 0 is
  // closed and /dev/null opened in its place (the lowest free descriptor),
  // then the C stream drops what it had read ahead from the parent's input
  // (fflush on an input stream seeks back over its buffer, which on
  // /dev/null succeeds and empties it) and forgets EOF and errors.
  // Not freopen, which does the same: it runs through about ten pages of
  // libc code and data (mode parsing, the stream list) that a fresh child
  // has not touched, each a page fault after fork(); close, open and fflush
  // are already the parent's.
  ::close(STDIN_FILENO);
  int fd = ::open("/dev/null", O_RDONLY);  // not O_CLOEXEC: it is the new stdin
  if (fd < 0) return;                      // Python ignores OSError here
  if (fd != STDIN_FILENO) {
    // Not fd 0: only if another thread took it in between, which a child just
    // forked (one thread) cannot have; the forkserver also calls this.
    ::dup2(fd, STDIN_FILENO);
    ::close(fd);
  }
  // Only when the parent had read from stdin: otherwise there is no
  // read-ahead and no flag (the fields of glibc's FILE, read without its
  // lock: this process has one thread here), and fflush, which takes the
  // stream's lock, would write a page of libc's data (a copy after fork()).
  if (stdin->_IO_read_ptr != stdin->_IO_read_end || (stdin->_flags & (_IO_EOF_SEEN | _IO_ERR_SEEN)) != 0) {
    std::fflush(stdin);
    libc_clearerr(stdin);
  }
  if (!std::cin.good()) std::cin.clear();
}

namespace {
// The stream buffers of std::cout and std::cerr as the program started (a
// program may replace them with rdbuf(...), and then only their own sync()
// knows what they hold).  By default libstdc++'s stdio_sync_filebuf, which
// keeps no buffer of its own and writes through to stdout and stderr.
std::streambuf* const initial_cout_buffer = std::cout.rdbuf();
std::streambuf* const initial_cerr_buffer = std::cerr.rdbuf();

// Whether a stream buffer holds output in its put area (after
// sync_with_stdio(false) the standard streams buffer there).  pptr() and
// pbase() are protected: named through a class derived from std::streambuf.
struct PutArea : std::streambuf {
  static bool holds_output(std::streambuf* buffer) {
    return (buffer->*&PutArea::pptr)() != (buffer->*&PutArea::pbase)();
  }
};
}  // namespace

MP_FORKED_CHILD_CODE void _flush_std_streams() {
  // Python: flush sys.stdout and sys.stderr, ignoring AttributeError and
  // ValueError (a stream set to None or closed).
  // Nothing to flush when the C++ streams are still the program's own and
  // hold nothing, and neither C stream holds output (__fpending reads the
  // buffer's pointers and takes no lock).  The flushes would take each stream's lock, writing
  // libc's data, and run through code that a forked child has not touched
  // yet: in a child about six pages, each a page fault.
  if (std::cout.rdbuf() == initial_cout_buffer && std::cerr.rdbuf() == initial_cerr_buffer &&
      !PutArea::holds_output(initial_cout_buffer) && !PutArea::holds_output(initial_cerr_buffer) &&
      __fpending(stdout) == 0 && __fpending(stderr) == 0) {
    return;
  }
  try {
    std::cout.flush();
    std::cerr.flush();
  } catch (...) {
  }
  std::fflush(stdout);
  std::fflush(stderr);
}

}  // namespace multiprocessing::util
