// multiprocessing/resource_tracker.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/resource_tracker.py; see
// resource_tracker.hpp for the protocol and for why the tracker is forked.
//
// The file has two halves.  ResourceTracker is the client side, run by the
// program (any thread, any forked child): ordinary C++.  tracker_main() is the
// tracker process itself, Python's main(fd): it runs in a child forked from a
// possibly multi-threaded parent, so it keeps to system calls and the
// async-signal-safe string functions (memcpy, memcmp, strlen), and formats its
// messages into fixed buffers.
#include "multiprocessing/resource_tracker.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::resource_tracker {

namespace {

/// Python: `if len(msg) > 512: raise ValueError('msg too long')`.  POSIX
/// guarantees PIPE_BUF >= 512, so a line this long is written atomically.
constexpr std::size_t MAX_MESSAGE = 512;

// ================================================================ the tracker
// Everything from here to the client half runs in the forked tracker only.

/// Python: `_CLEANUP_FUNCS`, in its order (a dict keeps insertion order, and the
/// shutdown warnings come out in that order).
enum ResourceType { NOOP = 0, SEMAPHORE_TYPE = 1, SHARED_MEMORY = 2, N_TYPES = 3 };
constexpr const char* TYPE_NAMES[N_TYPES] = {"noop", "semaphore", "shared_memory"};

/// A line of output assembled in a fixed buffer, then written with one
/// write(2): no malloc, no stdio (their locks may be held by a thread that
/// does not exist in this child).  Too long a text is cut, never overflowed.
class Message {
 public:
  Message& add(const char* text) { return add(text, std::strlen(text)); }
  Message& add(const char* text, std::size_t n) {
    for (std::size_t i = 0; i < n && len_ < sizeof buffer_; ++i) buffer_[len_++] = text[i];
    return *this;
  }
  Message& add_int(long value) {
    char digits[24];
    int n = 0;
    unsigned long magnitude = value < 0 ? 0UL - static_cast<unsigned long>(value) : value;
    do {
      digits[n++] = static_cast<char>('0' + magnitude % 10);
      magnitude /= 10;
    } while (magnitude != 0);
    if (value < 0) add("-");
    while (n > 0) add(&digits[--n], 1);
    return *this;
  }
  /// Write the line to stderr.  Errors are ignored: there is nobody to tell.
  void emit() {
    add("\n");
    std::size_t done = 0;
    while (done < len_) {
      ssize_t n = ::write(STDERR_FILENO, buffer_ + done, len_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  char buffer_[2 * MAX_MESSAGE + 256];
  std::size_t len_ = 0;
};

/// Python's warnings.warn(text) from the tracker, as the port prints warnings
/// (see os::fork): "multiprocessing: UserWarning: <text>".
Message warning() {
  Message m;
  m.add("multiprocessing: UserWarning: ");
  return m;
}

/// Python: sys.excepthook(*sys.exc_info()) for a bad line: the tracker reports
/// it on stderr and goes on reading.
void report_error(const char* type, const char* text, const char* detail = nullptr,
                  std::size_t detail_len = 0) {
  Message m;
  m.add("resource_tracker: ").add(type).add(": ").add(text);
  if (detail != nullptr) m.add(detail, detail_len);
  m.emit();
}

/// The errno text for a warning.  strerrordesc_np returns a constant string,
/// with no locale lookup and no buffer (unlike strerror).
const char* describe(int err) {
  const char* text = ::strerrordesc_np(err);
  return text != nullptr ? text : "Unknown error";
}

}  // namespace

// ------------------------------------------------ the tracker's protocol

/// One registered name.
struct _TrackerProtocol::Entry {
  int type;
  std::size_t len;
  char name[MAX_MESSAGE + 1];  // NUL-terminated for shm_unlink/sem_unlink
};

_TrackerProtocol::~_TrackerProtocol() {
  // The table's pages go back to the kernel (the tracker itself never gets
  // here: it leaves with _exit).
  if (entries_ != nullptr) ::munmap(entries_, capacity_ * sizeof(Entry));
}

void _TrackerProtocol::feed(const char* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    char c = data[i];
    if (c == '\n') {
      if (overlong_) report_error("ValueError", "line too long");
      else _handle_line(line_, line_len_);
      line_len_ = 0;
      overlong_ = false;
    } else if (line_len_ < MAX_MESSAGE) {
      line_[line_len_++] = c;
    } else {
      overlong_ = true;
    }
  }
}

std::size_t _TrackerProtocol::count(std::string_view rtype) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < count_; ++i) n += rtype == TYPE_NAMES[entries_[i].type];
  return n;
}

long _TrackerProtocol::_find(int type, const char* name, std::size_t len) const {
  for (std::size_t i = 0; i < count_; ++i) {
    const Entry& e = entries_[i];
    if (e.type == type && e.len == len && std::memcmp(e.name, name, len) == 0) return static_cast<long>(i);
  }
  return -1;
}

bool _TrackerProtocol::_add(int type, const char* name, std::size_t len) {
  if (_find(type, name, len) >= 0) return true;
  if (count_ == capacity_ && !_grow()) return false;
  Entry& e = entries_[count_++];
  e.type = type;
  e.len = len;
  std::memcpy(e.name, name, len);
  e.name[len] = '\0';
  return true;
}

bool _TrackerProtocol::_remove(int type, const char* name, std::size_t len) {
  long i = _find(type, name, len);
  if (i < 0) return false;
  // Order does not matter (a set): move the last entry into the hole.
  entries_[i] = entries_[--count_];
  return true;
}

bool _TrackerProtocol::_grow() {
  std::size_t capacity = capacity_ == 0 ? 64 : 2 * capacity_;
  // Anonymous private pages: zeroed, not shared with anyone, freed at exit.
  void* p = ::mmap(nullptr, capacity * sizeof(Entry), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  Entry* entries = static_cast<Entry*>(p);
  if (count_ > 0) std::memcpy(entries, entries_, count_ * sizeof(Entry));
  // The old, smaller table is no longer needed.
  if (entries_ != nullptr) ::munmap(entries_, capacity_ * sizeof(Entry));
  entries_ = entries;
  capacity_ = capacity;
  return true;
}

void _TrackerProtocol::_handle_line(const char* line, std::size_t len) {
  // Python: line.strip().decode('ascii').split(':'), unpacked into three.
  while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r')) --len;
  while (len > 0 && (line[0] == ' ' || line[0] == '\t')) ++line, --len;
  std::size_t colons[3];
  int n_colons = 0;
  for (std::size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c >= 0x80) {
      report_error("UnicodeDecodeError", "'ascii' codec can't decode a byte of the line");
      return;
    }
    if (c == ':') {
      if (n_colons < 3) colons[n_colons] = i;
      ++n_colons;
    }
  }
  if (n_colons != 2) {
    Message m;
    m.add("resource_tracker: ValueError: ");
    if (n_colons < 2) m.add("not enough values to unpack (expected 3, got ").add_int(n_colons + 1).add(")");
    else m.add("too many values to unpack (expected 3)");
    m.emit();
    return;
  }
  const char* cmd = line;
  std::size_t cmd_len = colons[0];
  const char* name = line + colons[0] + 1;
  std::size_t name_len = colons[1] - colons[0] - 1;
  const char* rtype = line + colons[1] + 1;
  std::size_t rtype_len = len - colons[1] - 1;

  int type = -1;
  for (int t = 0; t < N_TYPES; ++t) {
    if (std::strlen(TYPE_NAMES[t]) == rtype_len && std::memcmp(TYPE_NAMES[t], rtype, rtype_len) == 0) type = t;
  }
  if (type < 0) {
    Message m;
    m.add("resource_tracker: ValueError: Cannot register ").add(name, name_len);
    m.add(" for automatic cleanup: unknown resource type ").add(rtype, rtype_len).emit();
    return;
  }
  // Python's shm_unlink refuses a name with a NUL ("embedded null
  // character"); here it would silently unlink a shorter name.
  if (std::memchr(name, '\0', name_len) != nullptr) {
    report_error("ValueError", "embedded null character");
    return;
  }
  auto is = [&](const char* word) { return std::strlen(word) == cmd_len && std::memcmp(word, cmd, cmd_len) == 0; };
  if (is("REGISTER")) {
    if (!_add(type, name, name_len)) report_error("MemoryError", "cannot register ", name, name_len);
  } else if (is("UNREGISTER")) {
    // Python's set.remove raises KeyError for a name never registered.  The
    // port registers only what it creates (see shared_memory.cpp), so a
    // process that unlinks a segment some other program created sends an
    // UNREGISTER for a name this tracker never saw: that is not an error.
    _remove(type, name, name_len);
  } else if (is("PROBE")) {
    // Nothing to do: the write itself told the client the tracker is alive.
  } else {
    Message m;
    m.add("resource_tracker: RuntimeError: unrecognized command '").add(cmd, cmd_len).add("'").emit();
  }
}

void _TrackerProtocol::cleanup() const {
  for (int type = 0; type < N_TYPES; ++type) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < count_; ++i) n += entries_[i].type == type;
    if (n > 0) {
      warning().add("resource_tracker: There appear to be ").add_int(static_cast<long>(n))
          .add(" leaked ").add(TYPE_NAMES[type]).add(" objects to clean up at shutdown").emit();
    }
    for (std::size_t i = 0; i < count_; ++i) {
      const Entry& e = entries_[i];
      if (e.type != type) continue;
      // For some reason the process which created and registered this
      // resource has failed to unregister it.  Presumably it has died.  We
      // therefore unlink it.  (glibc's shm_unlink and sem_unlink build the
      // /dev/shm path on the stack and call unlink(2): no lock, no malloc.)
      int rc = 0;
      if (type == SHARED_MEMORY) rc = ::shm_unlink(e.name);
      else if (type == SEMAPHORE_TYPE) rc = ::sem_unlink(e.name);
      if (rc != 0) {
        int err = errno;
        // Python: warnings.warn('resource_tracker: %r: %s' % (name, e)).
        warning().add("resource_tracker: '").add(e.name).add("': [Errno ").add_int(err).add("] ")
            .add(describe(err)).add(": '").add(e.name).add("'").emit();
      }
    }
  }
}

namespace {

/// Close every fd from `first` up.  close_range(2) does it in one call; on a
/// kernel without it (before 5.9), close them one by one up to the limit.
void close_fds_from(int first) {
  if (::syscall(SYS_close_range, first, ~0U, 0) == 0) return;
  rlimit limit{};
  long top = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                 ? static_cast<long>(limit.rlim_cur) : 65536;
  for (long fd = first; fd < top; ++fd) ::close(static_cast<int>(fd));
}

/// Python: resource_tracker.main(fd).  Runs in the forked tracker; never
/// returns.  `read_end` is the pipe's read end; `write_end` the child's copy
/// of the write end, which it must close, or it would never see EOF.
[[noreturn]] void tracker_main(int read_end, int write_end) {
  // Name it for ps and gdb: "resource_tracker" rather than the program's name.
  ::prctl(PR_SET_NAME, "resource_tracker", 0, 0, 0);

  // The parent's signal handlers are its code, not ours: back to the
  // defaults, as the exec of a fresh interpreter gives CPython's tracker.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
      continue;
    }
    ::sigaction(sig, &dfl, nullptr);
  }
  // Python: protect the process from ^C and "killall python" etc: ignore
  // SIGINT and SIGTERM.  SIGPIPE too (Python ignores it at startup): a
  // closed stderr must not kill the tracker before it has cleaned up.
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ign, nullptr);
  ::sigaction(SIGTERM, &ign, nullptr);
  ::sigaction(SIGPIPE, &ign, nullptr);
  // The parent blocked SIGINT/SIGTERM around fork (bpo-33613: a signal
  // arriving before the handlers above were set would have killed us); now
  // that they are ignored, unblock everything.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  ::close(write_end);
  // Keep only what the tracker needs: the read end (moved to fd 3) and
  // stderr.  Python closes sys.stdin and sys.stdout; here 0 and 1 become
  // /dev/null, so that the tracker does not hold the program's stdout pipe
  // (a test runner reading it would wait for the tracker too), and every
  // other fd the parent had open (pipes of other children, sockets) is
  // closed, so that nobody waits for an EOF the tracker would delay.
  int moved = read_end < 3 ? ::fcntl(read_end, F_DUPFD, 3) : read_end;
  // dup2: the new fd is not close-on-exec; no matter, no exec.  Checked: a
  // tracker reading some other fd 3 would never see its EOF.
  if (moved < 0 || (moved != 3 && ::dup2(moved, 3) < 0)) {
    report_error("OSError", "cannot move the tracker's pipe to fd 3");
    ::_exit(1);
  }
  read_end = 3;
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    if (null_fd != STDIN_FILENO) ::dup2(null_fd, STDIN_FILENO);
    if (null_fd != STDOUT_FILENO) ::dup2(null_fd, STDOUT_FILENO);
  }
  close_fds_from(4);

  // Python: `for line in f:` — read until every writer has closed its end.
  _TrackerProtocol protocol;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(read_end, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: all processes have terminated
    protocol.feed(chunk, static_cast<std::size_t>(n));
  }
  protocol.cleanup();
  // _exit: the parent's atexit handlers and static destructors are its own.
  ::_exit(0);
}

// ================================================================ the client

/// Write one protocol line without dying of SIGPIPE when the tracker has gone.
/// Python ignores SIGPIPE for the whole process; a C++ library must not change
/// the program's disposition, so SIGPIPE is blocked in this thread for the
/// write, and a SIGPIPE the write raised is taken off the pending set before
/// unblocking.  \return the bytes written, or -1 with errno set.
ssize_t write_without_sigpipe(int fd, const char* data, std::size_t len) {
  sigset_t pipe_set, old_mask, pending;
  ::sigemptyset(&pipe_set);
  ::sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  ::sigpending(&pending);
  bool was_pending = ::sigismember(&pending, SIGPIPE);
  ssize_t n;
  do {
    n = ::write(fd, data, len);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    // The SIGPIPE this write raised is pending for this thread: consume it.
    timespec zero{};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = err;
  return n;
}

}  // namespace

void ResourceTracker::_launch() {
  // Python: r, w = os.pipe().  Both ends close-on-exec: a program this
  // process execs later must not keep the tracker alive.
  auto [r, w] = os::pipe();
  // bpo-33613: block SIGINT and SIGTERM across the fork, so that the child
  // cannot die of one before it has set them to "ignore".
  sigset_t ignored, old_mask;
  ::sigemptyset(&ignored);
  ::sigaddset(&ignored, SIGINT);
  ::sigaddset(&ignored, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &ignored, &old_mask);
  // ::fork rather than os::fork: os::fork warns when other threads run, and
  // that warning is about children that go on running the program's code.
  // The tracker runs only fork-safe code (see the header), so it is not needed.
  pid_t pid = ::fork();
  if (pid == 0) tracker_main(r.get(), w.get());
  int err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (pid < 0) raise_os_error("fork", err);
  if (util::trace_enabled()) util::_trace("resource_tracker fork: child pid " + std::to_string(pid));
  // The tracker has its copy of the read end; ours closes with `r`.
  fd_ = std::move(w);
  pid_ = pid;
  launcher_ = os::getpid();
}

bool ResourceTracker::_check_alive() {
  // Python: "Check that the pipe has not been closed by sending a probe."
  // A tracker that exited closed the read end: the write fails with EPIPE.
  static const char probe[] = "PROBE:0:noop\n";
  return write_without_sigpipe(fd_.get(), probe, sizeof probe - 1) >= 0;
}

void ResourceTracker::_ensure_running_locked() {
  if (!fd_) {
    // A spawned child still running its static initialisers: its parent's
    // tracker is already there for it (see spawn::_inherited_tracker_fd).
    if (std::optional<int> inherited = spawn::_inherited_tracker_fd()) {
      ::fcntl(*inherited, F_SETFD, FD_CLOEXEC);
      fd_ = os::Fd(*inherited);
      pid_ = -1;  // not our child: only probe writes tell whether it lives
      launcher_ = -1;
    }
  }
  if (fd_) {
    // Python: "resource tracker was launched before, is it still running?"
    bool reaped = false;
    if (launcher_ == os::getpid()) {
      // Our own child: waitpid tells for sure, and reaps it if it died.
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      reaped = r == pid_;
      // Python probes with a write even then; waitpid already said it runs,
      // and a probe would wake the tracker at every process start.
      if (r == 0) return;
    }
    if (!reaped && _check_alive()) return;  // => still alive
    // => dead, launch it again
    fd_ = os::Fd();
    if (launcher_ == os::getpid() && !reaped) {
      // Clean-up to avoid a zombie.  In a forked child the tracker is not our
      // child (Python: "_pid can be None if this process is a child"), so
      // only the launcher waits.
      try {
        os::waitpid(pid_, 0);
      } catch (const ChildProcessError&) {
        // The resource_tracker has already been reaped.
      }
    }
    pid_ = -1;
    launcher_ = -1;
    std::fprintf(stderr,
                 "multiprocessing: UserWarning: resource_tracker: process died unexpectedly, "
                 "relaunching.  Some resources might leak.\n");
  }
  _launch();
}

void ResourceTracker::ensure_running() {
  std::lock_guard<std::mutex> guard(lock_);
  _ensure_running_locked();
}

void ResourceTracker::_set_fd(int fd) {
  std::lock_guard<std::mutex> guard(lock_);
  // The same fd when a static initialiser already adopted it (above).
  if (fd_.get() != fd) fd_ = os::Fd(fd);
  pid_ = -1;       // not our child: only probe writes tell whether it lives
  launcher_ = -1;
}

int ResourceTracker::getfd() {
  std::lock_guard<std::mutex> guard(lock_);
  _ensure_running_locked();
  return fd_.get();
}

void ResourceTracker::_send(const char* cmd, const std::string& name, const std::string& rtype) {
  std::string msg = std::string(cmd) + ":" + name + ":" + rtype + "\n";
  std::lock_guard<std::mutex> guard(lock_);
  _ensure_running_locked();
  if (msg.size() > MAX_MESSAGE) {
    // POSIX guarantees that writes to a pipe of less than PIPE_BUF bytes
    // are atomic, and that PIPE_BUF >= 512.
    throw ValueError("msg too long");
  }
  ssize_t nbytes = write_without_sigpipe(fd_.get(), msg.data(), msg.size());
  if (nbytes < 0) raise_os_error("write", errno);
  if (static_cast<std::size_t>(nbytes) != msg.size()) {
    throw AssertionError("nbytes " + std::to_string(nbytes) + " but len(msg) " + std::to_string(msg.size()));
  }
}

void ResourceTracker::register_(const std::string& name, const std::string& rtype) {
  _send("REGISTER", name, rtype);
}

void ResourceTracker::unregister(const std::string& name, const std::string& rtype) {
  _send("UNREGISTER", name, rtype);
}

void ResourceTracker::_stop() {
  std::lock_guard<std::mutex> guard(lock_);
  if (!fd_) return;  // not running
  // Closing the "alive" file descriptor stops main() (once no other process
  // holds a copy of it).
  fd_ = os::Fd();
  if (launcher_ == os::getpid()) {
    try {
      os::waitpid(pid_, 0);
    } catch (const ChildProcessError&) {
    }
  }
  pid_ = -1;
  launcher_ = -1;
}

void ResourceTracker::_at_fork_reinit() { util::_at_fork_reinit(lock_); }

ResourceTracker::~ResourceTracker() {
  try {
    _stop();
  } catch (const std::exception&) {
    // A destructor cannot throw; the fd is closed by now in any case.
  }
}

pid_t ResourceTracker::_pid() const {
  std::lock_guard<std::mutex> guard(lock_);
  return fd_ && launcher_ == os::getpid() ? pid_ : -1;
}

int ResourceTracker::_fd() const {
  std::lock_guard<std::mutex> guard(lock_);
  return fd_.get();
}

ResourceTracker& _resource_tracker() {
  // Never destroyed (see the header): a static object would be destroyed
  // while other static destructors (a SemLock's finalizer) may still unregister.
  static ResourceTracker* tracker = [] {
    auto* created = new ResourceTracker;
    // A fork while another thread holds lock_ would leave it held forever in
    // the child; the child re-creates it (as util.cpp does for its locks).
    // fork() cannot hold it instead: _ensure_running_locked() starts the
    // tracker process under it.  The rest is an fd and two pids, each one
    // store: the child shares the parent's tracker (as in Python), or finds
    // none and starts its own.
    ::pthread_atfork(nullptr, nullptr, [] { _resource_tracker()._at_fork_reinit(); });
    return created;
  }();
  return *tracker;
}

void ensure_running() { _resource_tracker().ensure_running(); }
int getfd() { return _resource_tracker().getfd(); }
void register_(const std::string& name, const std::string& rtype) { _resource_tracker().register_(name, rtype); }
void unregister(const std::string& name, const std::string& rtype) { _resource_tracker().unregister(name, rtype); }

}  // namespace multiprocessing::resource_tracker
