// multiprocessing/popen_fork.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/popen_fork.py; see popen_fork.hpp.
#include "multiprocessing/popen_fork.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/process.hpp"

namespace multiprocessing::popen_fork {

static_assert(Popen::WNOHANG_FLAG == WNOHANG, "WNOHANG_FLAG must equal <sys/wait.h>'s WNOHANG");

Popen::Popen(BaseProcess& process_obj) {
  if (util::trace_enabled()) util::_trace("Popen: popen_fork.Popen");
  util::_flush_std_streams();
  Popen::_launch(process_obj);
}

Popen::~Popen() = default;  // `finalizer` closes the pipe ends if close() did not

// [walkthrough-wait]
std::optional<int> Popen::poll(int flag) {
  if (flag == 0 && !returncode && !__libc_single_threaded) {
    // A blocking wait first waits for the exit without reaping (waitid with
    // WNOWAIT leaves the zombie), outside the lock below: another thread's
    // poll() is not held up meanwhile.  ECHILD here means another thread
    // reaped it; the lock below then finds the returncode it stored.  (A
    // program that has never started a thread, glibc's
    // __libc_single_threaded, has no other thread to hold up: it reaps in
    // one blocking waitpid.)
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    flag = WNOHANG_FLAG;
  }
  // Reaping and storing the returncode happen together under reap_mutex_:
  // two threads polling one child (join() in one, active_children() in
  // another) would otherwise race, and the one whose waitpid() fails with
  // ECHILD would take a child that has exited for a live one.  (CPython has
  // that race; the GIL only narrows it.)
  std::lock_guard guard(reap_mutex_);
  if (!returncode) {
    std::pair<pid_t, int> result;
    try {
      result = os::waitpid(pid, flag);
    } catch (const OSError&) {
      // Child process not yet created (or already reaped by someone else).
      return std::nullopt;
    }
    if (result.first == pid) returncode = os::waitstatus_to_exitcode(result.second);
    if (returncode && util::trace_enabled()) util::_trace("waitpid: child pid " + std::to_string(pid) + ", exitcode " + std::to_string(*returncode));
  }
  return returncode;
}

std::optional<int> Popen::wait(std::optional<double> timeout) {
  if (!returncode) {
    if (timeout) {
      if (connection::wait({sentinel_}, *timeout).empty()) return std::nullopt;
    }
    // This shouldn't block if wait() returned successfully: the sentinel is
    // at EOF, so the child has exited (only the waitpid is left to do).
    return poll(timeout && *timeout == 0.0 ? WNOHANG : 0);
  }
  return returncode;
}
// [walkthrough-wait]

void Popen::_send_signal(int sig) {
  if (returncode) return;  // reaped: the pid may belong to another process now
  try {
    os::kill(pid, sig);
  } catch (const ProcessLookupError&) {
    // The child has exited but is not reaped yet: nothing to signal.
  } catch (const OSError&) {
    if (!wait(0.1)) throw;
  }
}

void Popen::terminate() { _send_signal(SIGTERM); }

void Popen::kill() { _send_signal(SIGKILL); }

// [walkthrough-launch]
// MP_ASSIGNABLE: the assignment "popen_launch" replaces this function.
MP_FORKED_CHILD_CODE MP_ASSIGNABLE void Popen::_launch(BaseProcess& process_obj) {
  int code = 1;
  // Two pipes.  parent_r/child_w is the child's lifeline: only the child holds
  // child_w, so parent_r (the sentinel) reads EOF exactly when the child has
  // exited.  child_r/parent_w is the reverse: the child's parent_sentinel
  // reads EOF when the parent closes parent_w or dies.
  auto [parent_r, child_w] = os::pipe();
  auto [child_r, parent_w] = os::pipe();
  // The finalizer that closes the parent's ends is registered before fork(),
  // where Python registers it after: fork() write-protects the parent's
  // pages, and the first write to one of them while the child lives copies
  // it.  Registering writes malloc's pages and util's registry; here those
  // writes come before fork(), not while the child runs.  The child forgets
  // the entry with the rest of the registry (_bootstrap -> _after_fork).  If
  // fork() fails, the finalizer closes both ends as this Popen is destroyed.
  const int parent_r_fd = parent_r.get();
  const int parent_w_fd = parent_w.get();
  sentinel_ = parent_r_fd;
  finalizer = util::Finalize(
      [parent_r = parent_r.release(), parent_w = parent_w.release()] {
        util::close_fds({parent_r, parent_w});
      },
      std::nullopt, "close_fds");
  // Python: self.pid = os.fork().  The member is written in the parent only:
  // the child has no use for it, and its first write to this heap page would
  // be one more page copied after fork().
  pid_t forked = os::fork();
  if (forked == 0) {
    // The child: a copy of the parent's memory, one thread (this one).
    try {
      os::close(parent_r_fd);
      os::close(parent_w_fd);
      code = process_obj._bootstrap(child_r.get());
    } catch (...) {
      // Anything escaping _bootstrap must still end in _exit below: a child
      // that returned into the parent's code would run it twice.
    }
    os::_exit(code);
  }
  // The parent: close the child's ends, so that EOF on parent_r means "the
  // child is gone" and EOF on child_r means "the parent is gone".
  pid = forked;
  child_w.close();
  child_r.close();
}
// [walkthrough-launch]

void Popen::close() { finalizer(); }

Object Popen::DupFd(int) const {
  throw NotImplementedError("popen_fork.Popen has no DupFd: under fork nothing is pickled");
}

/// Write `data` to the child through `fd`, unless the child ends first.
/// Python writes with a plain blocking write; a child that died before reading
/// would then raise BrokenPipeError (Python ignores SIGPIPE) or, with more than
/// a pipe's worth of data, block forever.  Here: a non-blocking fd, and poll()
/// on the child's sentinel too; SIGPIPE is held back while writing.
void Popen::_write_to_child(int fd, int sentinel, std::string_view data) {
  // Non-blocking first, checked: a blocking write could hang on a child that
  // never reads.  (Before SIGPIPE is blocked, so that a failure leaves the
  // signal mask as it was.)  Not for PIPE_BUF bytes or fewer: an empty pipe
  // takes that much at once (it has at least one page even when the user's
  // pipe-buffer quota is spent), so the write cannot block, and the two
  // fcntl calls would be the only ones of the start besides the write.
  if (data.size() > PIPE_BUF) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) raise_os_error("fcntl", errno);
  }
  sigset_t sigpipe, old_mask;
  ::sigemptyset(&sigpipe);
  ::sigaddset(&sigpipe, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &sigpipe, &old_mask);
  bool broken = false;
  const char* failed_call = nullptr;  // a call that failed otherwise: raised once the mask is back
  int failed_errno = 0;
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE) {
      broken = true;  // the child is gone; its exit code will tell why
      break;
    }
    if (errno != EAGAIN) {
      failed_call = "write";
      failed_errno = errno;
      break;
    }
    // The pipe is full: wait until the child reads, or ends.
    pollfd fds[2] = {{fd, POLLOUT, 0}, {sentinel, POLLIN, 0}};
    if (::poll(fds, sentinel >= 0 ? 2 : 1, -1) < 0 && errno != EINTR) {
      failed_call = "poll";
      failed_errno = errno;
      break;
    }
    if (sentinel >= 0 && fds[1].revents != 0) break;  // EOF on the sentinel: the child has exited
  }
  if (broken) {
    // Take the SIGPIPE that write() raised for this thread before unblocking it.
    timespec zero{};
    ::sigtimedwait(&sigpipe, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  // Python's write raises; a child left with half its pickles must not look started.
  if (failed_call != nullptr) raise_os_error(failed_call, failed_errno);
}


}  // namespace multiprocessing::popen_fork
