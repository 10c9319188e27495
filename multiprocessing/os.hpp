// multiprocessing/os.hpp
// A thin layer over the system calls the package makes, shaped like CPython's `os`
// module (Modules/posixmodule.c) so that `os.pipe()`, `os.fork()`, `os.waitpid()`
// in Lib/multiprocessing/*.py read the same here: one wrapper per call, EINTR
// retried where Python retries it (PEP 475), errors thrown as OSError with the
// call's name and errno.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

namespace multiprocessing::os {

/// An owned file descriptor: move-only, closed by its destructor.
/// The port keeps no raw int fd beyond the scope that made it (STYLE.md, 5).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Give up ownership; the caller must close the returned fd.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Close now (idempotent).  \throws OSError if close() reports an error.
  void close();

 private:
  int fd_ = -1;
};

/// Python: os.pipe().  Both ends are close-on-exec (PEP 446: non-inheritable).
/// Returns {read_end, write_end}.  \throws OSError.
std::pair<Fd, Fd> pipe();

/// Python: os.fork().  Like CPython 3.12+, warns on stderr (once) when the
/// process already runs other threads, because a lock another thread holds at
/// this instant stays locked forever in the child.  \throws OSError.
pid_t fork();

/// Python: os.getpid().  Asks the kernel once per process and then returns
/// the kept answer (util::_this_pid), which a fork handler clears in every
/// child made through glibc's fork().
pid_t getpid() noexcept;
/// Python: os.getppid().  A system call each time (a parent may die and the
/// process be re-parented).
pid_t getppid() noexcept;
pid_t getppid() noexcept;

/// Python: os.waitpid(pid, options) -> (pid, status); EINTR is retried.
/// \throws ChildProcessError (ECHILD) when there is no such child.
std::pair<pid_t, int> waitpid(pid_t pid, int options);

/// Python: os.waitstatus_to_exitcode(status): the exit code, or -signum if a
/// signal killed the process.
int waitstatus_to_exitcode(int status);

/// Python: os.kill(pid, sig).  \throws ProcessLookupError (ESRCH) or OSError.
void kill(pid_t pid, int sig);

/// Python: os.close(fd).  \throws OSError (EBADF...).
void close(int fd);

/// Python: os.read(fd, n): at most n bytes, "" at EOF; EINTR retried.
std::string read(int fd, std::size_t n);

/// Python: os.write(fd, data): the number of bytes written; EINTR retried.
std::size_t write(int fd, std::string_view data);

/// Python: os._exit(code): leave at once, without running atexit handlers or
/// flushing stdio buffers (the parent owns those; see popen_fork.cpp).
[[noreturn]] void _exit(int code) noexcept;

/// Python: os.urandom(n), from getrandom(2) as CPython's does.  \throws OSError.
std::string urandom(std::size_t n);

/// Python: os.cpu_count(): online processors, or 0 if it cannot be told.
int cpu_count() noexcept;

/// Python: os.getcwd().  \throws OSError.
std::string getcwd();

/// Seconds from a monotonic clock (Python: time.monotonic()).
double monotonic() noexcept;

/// Python: time.sleep(seconds); EINTR resumes with the remaining time.
void sleep(double seconds);

}  // namespace multiprocessing::os
