// multiprocessing/os.cpp
// Thin wrappers shaped like CPython's `os` module (Modules/posixmodule.c); see os.hpp.
#include "multiprocessing/os.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::os {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  // A destructor cannot report close() errors; Python's os.close would raise.
  if (fd_ >= 0) ::close(fd_);
}

MP_FORKED_CHILD_CODE void Fd::close() {
  if (fd_ < 0) return;
  multiprocessing::os::close(release());
}

std::pair<Fd, Fd> pipe() {
  int fds[2];
  // pipe2 with O_CLOEXEC in one call: a fork+exec in another thread between
  // pipe() and fcntl() would otherwise leak both ends into that program (PEP 446).
  if (::pipe2(fds, O_CLOEXEC) != 0) raise_os_error("pipe2", errno);
  if (util::trace_enabled()) util::_trace("pipe: read_end " + std::to_string(fds[0]) + ", write_end " + std::to_string(fds[1]));
  return {Fd(fds[0]), Fd(fds[1])};
}

namespace {

// Built with ThreadSanitizer?  (g++ says so with __SANITIZE_THREAD__, clang
// with __has_feature.)
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif
#else
constexpr bool kThreadSanitizer = false;
#endif

// Does thread `tid` of this process block every signal that can be blocked?
// ThreadSanitizer's runtime runs one background thread of its own (started
// at the program's first pthread_create, and again in every child after a
// fork), and starts it with all signals blocked; a thread of the program
// rarely does that.  Its mask is the SigBlk line of the thread's status file.
bool blocks_every_signal(const char* tid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
  // open/read rather than stdio: this runs right before a fork, and the
  // file is small enough for one read.
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // the thread has just ended
  char text[4096];
  ssize_t got = ::read(fd, text, sizeof text - 1);
  ::close(fd);  // read-only /proc file: nothing for close() to report
  if (got <= 0) return false;
  text[got] = '\0';
  const char* line = std::strstr(text, "\nSigBlk:");
  if (line == nullptr) return false;
  unsigned long long blocked = std::strtoull(line + 8, nullptr, 16);
  // The kernel never blocks SIGKILL and SIGSTOP; glibc's sigprocmask leaves
  // out the two signals it keeps for itself (32 and 33), a raw one does not.
  auto bit = [](int signo) { return 1ULL << (signo - 1); };
  unsigned long long never = bit(SIGKILL) | bit(SIGSTOP) | bit(32) | bit(33);
  return (blocked | never) == ~0ULL;
}

// Is ThreadSanitizer's own background thread running in this process?  (At
// most one thread that blocks every signal, found in /proc/self/task.)
bool sanitizer_thread_running() noexcept {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return false;
  bool seen = false;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    if (blocks_every_signal(entry->d_name)) {
      seen = true;
      break;
    }
  }
  ::closedir(dir);
  return seen;
}

// How many threads this process runs: the num_threads field (the 20th) of
// /proc/self/stat, which CPython 3.12 reads for the same warning.  One open,
// one read, one close, against five calls to list /proc/self/task (openat,
// fstat, two getdents64, close), on every fork.  1 if it cannot be read.
int count_threads() noexcept {
  // O_CLOEXEC: a fork+exec in another thread must not inherit it.
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);  // one read: procfs gives the whole line at once
  ::close(fd);
  if (n <= 0) return 1;
  buf[n] = '\0';
  // The command name (field 2) is in parentheses and may hold spaces and
  // ')': count fields from the last ')', which ends it.  After it come
  // field 3 (state) ... field 20 (num_threads).
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 1;
  for (int field = 2; field < 20 && p != nullptr; ++field) p = std::strchr(p + 1, ' ');
  if (p == nullptr) return 1;
  int threads = std::atoi(p + 1);
  // Under ThreadSanitizer its own background thread is left out, so that a
  // program that starts no thread is single-threaded there as it is in the
  // normal build.  (Only that build pays for the listing.)
  if (kThreadSanitizer && threads > 1 && sanitizer_thread_running()) --threads;
  return threads > 0 ? threads : 1;
}

std::atomic<bool> g_warned_fork_with_threads{false};

}  // namespace

MP_FORKED_CHILD_CODE pid_t fork() {
  // CPython 3.12 (gh-100228) warns here: fork() copies only the calling thread,
  // so a mutex that another thread holds right now (malloc's, stdio's, a
  // logging handler's) is held forever in the child.  Warn once, as the
  // `warnings` module's default filter does for one code location.
  // (The flag is read first: once warned, no need to read /proc/self/stat.)
  // glibc's __libc_single_threaded stays true until the process first starts
  // a thread: while it is, there is one thread, and /proc need not be asked
  // (three system calls fewer on each fork of a program without threads).
  if (!g_warned_fork_with_threads.load(std::memory_order_relaxed) && !__libc_single_threaded &&
      count_threads() > 1 &&
      !g_warned_fork_with_threads.exchange(true)) {
    std::fprintf(stderr,
                 "multiprocessing: DeprecationWarning: This process (pid=%d) is "
                 "multi-threaded, use of fork() may lead to deadlocks in the child.\n",
                 static_cast<int>(getpid()));
  }
  pid_t pid = ::fork();
  if (pid < 0) raise_os_error("fork", errno);
  if (pid > 0 && util::trace_enabled()) util::_trace("fork: child pid " + std::to_string(pid));
  return pid;
}

MP_FORKED_CHILD_CODE pid_t getpid() noexcept {
  // Cached (util::_this_pid): start and join ask for it about seven times
  // per child (Process.__init__, the asserts, Finalize's creating pid and its
  // check), each a system call otherwise.
  return util::_this_pid();
}
pid_t getppid() noexcept { return ::getppid(); }

std::pair<pid_t, int> waitpid(pid_t pid, int options) {
  int status = 0;
  for (;;) {
    pid_t got = ::waitpid(pid, &status, options);
    if (got >= 0) return {got, status};
    // PEP 475: a signal handler that returns must not turn into an error.
    if (errno != EINTR) raise_os_error("waitpid", errno);
  }
}

int waitstatus_to_exitcode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  throw ValueError("invalid wait status: " + std::to_string(status));
}

void kill(pid_t pid, int sig) {
  if (::kill(pid, sig) != 0) raise_os_error("kill", errno);
}

MP_FORKED_CHILD_CODE void close(int fd) {
  // No EINTR retry: on Linux the fd is released even when close() is
  // interrupted, and a retry could close an fd another thread just opened.
  if (::close(fd) != 0 && errno != EINTR) raise_os_error("close", errno);
}

std::string read(int fd, std::size_t n) {
  std::string buffer(n, '\0');
  for (;;) {
    ssize_t got = ::read(fd, buffer.data(), n);
    if (got >= 0) {
      buffer.resize(static_cast<std::size_t>(got));
      return buffer;
    }
    if (errno != EINTR) raise_os_error("read", errno);
  }
}

std::size_t write(int fd, std::string_view data) {
  for (;;) {
    ssize_t put = ::write(fd, data.data(), data.size());
    if (put >= 0) return static_cast<std::size_t>(put);
    if (errno != EINTR) raise_os_error("write", errno);
  }
}

namespace {
// libc's _exit, reached through a pointer that the dynamic loader fills in
// when the program starts, not through the PLT.  A PLT entry is bound on the
// first call, and the first call of _exit is always in a child: that child
// would look the name up through every loaded library's symbol tables,
// touching about fifteen pages of the loader and of those tables that no
// process had touched since fork(), each a page fault.  Bound at load time,
// the lookup happens once for the program.  (volatile: so that the compiler
// does not turn the call back into a direct one through the PLT.)
void (*volatile const libc_exit)(int) = ::_exit;
}  // namespace

MP_FORKED_CHILD_CODE void _exit(int code) noexcept {
  // _exit, not exit: the child must not run the parent's atexit handlers
  // (they would join the parent's children) nor flush stdio buffers it
  // inherited half-full (the text would come out twice).
  libc_exit(code);
  __builtin_unreachable();  // _exit does not return
}

std::string urandom(std::size_t n) {
  std::string bytes(n, '\0');
  std::size_t filled = 0;
  while (filled < n) {
    // getrandom(2) as CPython's os.urandom: no fd to open, and it blocks only
    // until the kernel's pool is first initialised.
    ssize_t got = ::getrandom(bytes.data() + filled, n - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      raise_os_error("getrandom", errno);
    }
    filled += static_cast<std::size_t>(got);
  }
  return bytes;
}

int cpu_count() noexcept {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 0;
}

std::string getcwd() {
  char buffer[PATH_MAX];
  if (::getcwd(buffer, sizeof buffer) == nullptr) raise_os_error("getcwd", errno);
  return buffer;
}

double monotonic() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void sleep(double seconds) {
  if (seconds <= 0) return;
  timespec request{};
  request.tv_sec = static_cast<time_t>(seconds);
  request.tv_nsec = static_cast<long>((seconds - std::floor(seconds)) * 1e9);
  timespec remaining{};
  // nanosleep reports what was left when a signal interrupted it: sleep on.
  while (::nanosleep(&request, &remaining) != 0 && errno == EINTR) request = remaining;
}

}  // namespace multiprocessing::os
