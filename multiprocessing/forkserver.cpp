// multiprocessing/forkserver.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/forkserver.py; see forkserver.hpp.
#include "multiprocessing/forkserver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/resource_tracker.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::forkserver {

namespace {

constexpr const char* kMarker = "--multiprocessing-forkserver";

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw OSError("AF_UNIX path too long");
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// [forkserver-serve-one]
/// Python: _serve_one(child_r, fds, unused_fds, handlers): in the child the
/// server just forked.  Returns the exit code.
int serve_one(int child_r, std::span<const int> fds, const std::string& address) {
  // fds = [alive fd, resource tracker fd, *the fds the parent passed].
  _forkserver()._set_inherited(fds[0], address, std::vector<int>(fds.begin() + 2, fds.end()));
  resource_tracker::_resource_tracker()._set_fd(fds[1]);
  // The child's parent sentinel: EOF on child_r when the parent is gone.
  int parent_sentinel = ::fcntl(child_r, F_DUPFD_CLOEXEC, 0);
  return spawn::_main(child_r, parent_sentinel >= 0 ? std::optional<int>(parent_sentinel)
                                                     : std::nullopt);
}
// [forkserver-serve-one]

}  // namespace

// ------------------------------------------------------------------ the parent's side

ForkServer& _forkserver() {
  static ForkServer* server = [] {
    auto* created = new ForkServer();  // never destroyed, like Python's module global
    // pthread_atfork: the lock cannot be held across fork() (ensure_running()
    // starts a process under it), so the child re-creates it.
    ::pthread_atfork(nullptr, nullptr, [] { _forkserver()._at_fork_reinit(); });
    return created;
  }();
  return *server;
}

void ForkServer::_at_fork_reinit() { util::_at_fork_reinit(lock_); }

void ForkServer::set_forkserver_preload(std::vector<std::string> module_names) {
  std::lock_guard guard(lock_);
  preload_modules_ = std::move(module_names);
}

void ForkServer::_set_inherited(int alive_fd, std::string address, std::vector<int> inherited) {
  std::lock_guard guard(lock_);
  alive_fd_ = alive_fd;
  address_ = std::move(address);
  inherited_fds_ = std::move(inherited);
}

std::optional<pid_t> ForkServer::_pid() const {
  std::lock_guard guard(lock_);
  return pid_;
}

std::optional<std::string> ForkServer::_address() const {
  std::lock_guard guard(lock_);
  return address_;
}

int ForkServer::_alive_fd() const {
  std::lock_guard guard(lock_);
  return alive_fd_;
}

void ForkServer::_stop() {
  std::lock_guard guard(lock_);
  _stop_unlocked();
}

void ForkServer::_stop_unlocked() {
  if (!pid_) return;
  pid_t pid = *pid_;
  std::optional<std::string> address = std::move(address_);
  // Forgotten before the wait, not after as in Python: if waitpid throws (the
  // server was reaped by someone else's waitpid(-1): ChildProcessError), this
  // handle must not keep pointing at a dead server and a stale socket file.
  pid_.reset();
  address_.reset();
  // The socket file is removed before the alive fd is closed: a server that
  // sees EOF while its socket file is still there knows that its parent died
  // without stopping it, and removes the file itself (serve()).
  if (address && !address->empty() && (*address)[0] != '\0') ::unlink(address->c_str());
  // Closing the alive fd is the server's signal to exit (it sees EOF).
  ::close(alive_fd_);
  alive_fd_ = -1;
  os::waitpid(pid, 0);
}

void ForkServer::ensure_running() {
  std::lock_guard guard(lock_);
  resource_tracker::ensure_running();
  if (pid_) {
    // Started before: is it still running?
    pid_t pid = -1;
    try {
      pid = os::waitpid(*pid_, WNOHANG).first;
    } catch (const ChildProcessError&) {
      // Reaped by someone else: it is gone all the same.
    }
    if (pid == 0) return;
    // It died: forget it and start another.  Its socket file goes too (Python
    // leaves it in the temp dir until exit).
    ::close(alive_fd_);
    if (address_ && !address_->empty() && (*address_)[0] != '\0') ::unlink(address_->c_str());
    address_.reset();
    alive_fd_ = -1;
    pid_.reset();
  }
  // [forkserver-ensure-running]
  // The server's listening socket, in the private temp directory, readable
  // and writable by this user only (Python: os.chmod(address, 0o600)).
  std::string address = std::get<std::string>(connection::arbitrary_address("AF_UNIX"));
  os::Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) raise_os_error("socket", errno);
  sockaddr_un addr = unix_address(address);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    raise_os_error("bind", errno);
  }
  // Checked: a socket that other users could connect to would hand them a
  // child of ours on request (the parent's authkey is not asked for here).
  if (::chmod(address.c_str(), 0600) < 0) {
    int err = errno;
    ::unlink(address.c_str());
    raise_os_error("chmod", err);
  }
  if (::listen(listener.get(), SOMAXCONN) < 0) {
    int err = errno;
    ::unlink(address.c_str());
    raise_os_error("listen", err);
  }
  // The alive pipe: the server exits when it reads EOF on alive_r, i.e. when
  // every holder of alive_w (this process and the children it passes it to)
  // has gone.
  auto [alive_r, alive_w] = os::pipe();
  std::vector<std::string> cmd{spawn::get_executable(), kMarker, "listener_fd=3", "alive_r=4"};
  // [forkserver-bind-now]
  // The server runs with LD_BIND_NOW=1: the dynamic loader resolves every
  // function the program imports once, when the server starts, instead of at
  // its first call.  Its children inherit the resolved table.  Otherwise each
  // child would resolve, on its own, each function that the server never
  // called and it does (the whole spawn::_main path): about 6 000
  // instructions and 14 page faults per child, the loader's code and data and
  // the table's pages.  "bind_now=1" tells the server to take the variable
  // out of its environment again, so that its children do not pass it on to
  // the programs they start; a variable the user set is left alone.
  std::vector<std::string> extra_env;
  if (::getenv("LD_BIND_NOW") == nullptr) {
    extra_env.push_back("LD_BIND_NOW=1");
    cmd.push_back("bind_now=1");
  }
  // [forkserver-bind-now]
  pid_t pid = 0;
  try {
    pid = util::spawnv_passfds(cmd[0], cmd, {listener.get(), alive_r.get()}, extra_env);
  } catch (...) {
    ::unlink(address.c_str());
    throw;
  }
  address_ = address;
  alive_fd_ = alive_w.release();
  pid_ = pid;
  // [forkserver-ensure-running]
}

// [forkserver-connect]
std::pair<int, int> ForkServer::connect_to_new_process(const std::vector<int>& fds) {
  ensure_running();
  if (fds.size() + 4 >= MAXFDS_TO_SEND) throw ValueError("too many fds");
  std::string address;
  int alive_fd;
  {
    std::lock_guard guard(lock_);
    address = *address_;
    alive_fd = alive_fd_;
  }
  os::Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client) raise_os_error("socket", errno);
  sockaddr_un addr = unix_address(address);
  int rc;
  do {
    rc = ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) raise_os_error("connect", errno);
  auto [parent_r, child_w] = os::pipe();
  auto [child_r, parent_w] = os::pipe();
  std::vector<int> allfds{child_r.get(), child_w.get(), alive_fd, resource_tracker::getfd()};
  allfds.insert(allfds.end(), fds.begin(), fds.end());
  reduction::sendfds(client.get(), allfds);
  // child_r and child_w close here: the server's child has its own copies.
  return {parent_r.release(), parent_w.release()};
}
// [forkserver-connect]

// ------------------------------------------------------------------ the server

bool is_forkserver(const std::vector<std::string>& argv) {
  return argv.size() >= 2 && argv[1] == kMarker;
}

namespace {

/// main()'s body; what it throws ends the server (see main).
[[noreturn]] void serve(int listener_fd, int alive_r, bool bind_now_added) {
  // Set by ensure_running for the loader alone (see there): gone before any
  // child is forked.
  if (bind_now_added) ::unsetenv("LD_BIND_NOW");
  util::_close_stdin();
  // The fds arrive without FD_CLOEXEC (they were passed through exec); set it
  // so that no child the server forks and execs would hold them.  A failure
  // means the fd was not passed at all.
  if (::fcntl(listener_fd, F_SETFD, FD_CLOEXEC) < 0) raise_os_error("fcntl", errno);
  if (::fcntl(alive_r, F_SETFD, FD_CLOEXEC) < 0) raise_os_error("fcntl", errno);
  // [forkserver-fd-limit]
  // The server serves every descendant of the process that started it, and
  // each request needs fds of the server's own: the accepted connection, the
  // fds it carries, and one status pipe per child still running.  So it does
  // not keep the soft RLIMIT_NOFILE of the moment it was started (a program
  // that lowered its limit for a while would leave a server that runs out
  // later, and every start then sees the connection end without a pid): it
  // raises the soft limit to the hard one.  getrlimit, then setrlimit only if
  // there is anything to raise; if the kernel refuses (a hard limit of
  // "unlimited" is above fs.nr_open), the server keeps the limit it had.
  rlimit started_with{};
  bool limit_raised = false;
  if (::getrlimit(RLIMIT_NOFILE, &started_with) == 0 && started_with.rlim_cur < started_with.rlim_max) {
    rlimit raised = started_with;
    raised.rlim_cur = raised.rlim_max;
    limit_raised = ::setrlimit(RLIMIT_NOFILE, &raised) == 0;
  }
  // [forkserver-fd-limit]
  // [forkserver-signals]
  // SIGCHLD must wake the poll() loop (Python: signal.set_wakeup_fd(sig_w)
  // and a SIGCHLD handler).  Here the signal is blocked and read from a
  // signalfd: the same wake-up, with no handler run on the server's stack.
  // That matters for speed: after each fork() every page the server writes
  // costs it a copy-on-write fault, and a handler's signal frame (about
  // 3 KB, the FPU state included) and the EINTR it leaves in errno are two
  // more pages.  SIGCHLD's action is set to the default, not left as the
  // parent may have had it: an ignored SIGCHLD would reap the children
  // before the server could read their status.
  sigset_t chld_set;
  ::sigemptyset(&chld_set);
  ::sigaddset(&chld_set, SIGCHLD);
  sigset_t old_mask;
  ::pthread_sigmask(SIG_BLOCK, &chld_set, &old_mask);
  int sig_r = ::signalfd(-1, &chld_set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sig_r < 0) raise_os_error("signalfd", errno);
  struct sigaction by_default{}, ignore{}, old_chld{}, old_int{}, old_pipe{};
  by_default.sa_handler = SIG_DFL;
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGCHLD, &by_default, &old_chld);
  ::sigaction(SIGINT, &ignore, &old_int);   // Ctrl-C is for the parent to handle
  ::sigaction(SIGPIPE, &ignore, &old_pipe);  // a parent gone away is EPIPE, not death
  // [forkserver-signals]
  std::string address;
  {
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(listener_fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      address = addr.sun_path;
    }
  }
  // Python: pid_to_fd, the status pipe of every child still running.  A
  // vector whose room is made before each fork() (so that recording a child
  // after fork() allocates nothing), searched by pid: there are few entries.
  std::vector<std::pair<pid_t, int>> pid_to_fd;
  pid_to_fd.reserve(64);
  // One request's fds: [child_r, child_w, alive fd, tracker fd, *the rest].
  // On the stack, like everything else the loop writes (see above).
  int received[MAXFDS_TO_SEND + 1];
  for (;;) {
    pollfd fds[3] = {{listener_fd, POLLIN, 0}, {alive_r, POLLIN, 0}, {sig_r, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      raise_os_error("poll", errno);
    }
    // [forkserver-reap]
    if (fds[1].revents != 0) {
      // EOF on alive_r: nobody can ask for a child any more.  (Python:
      // assert os.read(alive_r, 1) == b'', then SystemExit.)
      // If the socket file is still there, the parent that started this
      // server never ran its _stop() (which unlinks the file before closing
      // its alive fd): it was killed, or ended with _exit.  Nobody else will
      // remove the file and the parent's temp directory; the server does
      // (CPython's leaves both).
      util::_remove_stale_socket(address);
      std::exit(0);
    }
    if (fds[2].revents != 0) {
      // One read takes what is pending (SIGCHLDs that came together are one;
      // Python reads its wake-up pipe once too).  Anything left over would
      // only wake poll() once more.
      signalfd_siginfo drain[4];
      [[maybe_unused]] ssize_t drained = ::read(sig_r, drain, sizeof drain);
      // Every child of the server is in pid_to_fd, so once it is empty there
      // is nobody left to reap: no last waitpid to hear "none".
      while (!pid_to_fd.empty()) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        auto it = std::find_if(pid_to_fd.begin(), pid_to_fd.end(), [pid](const auto& e) { return e.first == pid; });
        if (it == pid_to_fd.end()) {
          std::fprintf(stderr, "forkserver: waitpid returned unexpected pid %d\n", static_cast<int>(pid));
          continue;
        }
        try {
          write_signed(it->second, os::waitstatus_to_exitcode(status));
        } catch (const OSError&) {
          // The parent is gone (BrokenPipeError): nobody to tell.
        }
        ::close(it->second);
        *it = pid_to_fd.back();  // the order does not matter
        pid_to_fd.pop_back();
      }
    }
    // [forkserver-reap]
    // [forkserver-fork]
    if (fds[0].revents != 0) {
      int s = ::accept4(listener_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (s < 0) {
        // Python re-raises every OSError here but ECONNABORTED (a client that
        // gave up between poll and accept; EINTR is retried by Python's
        // socket.accept).  Retrying the rest would spin the CPU for ever:
        // with EMFILE the listener stays readable and accept keeps failing.
        if (errno == ECONNABORTED || errno == EINTR) continue;
        raise_os_error("accept4", errno);
      }
      std::size_t n_received = 0;
      try {
        n_received = reduction::recvfds(s, std::span<int>(received));
      } catch (const EOFError&) {
        // The client closed the connection without asking for anything: it
        // gave up before sending its fds (its pipe() failed at its fd limit,
        // say).  Nothing to report, as for a connection aborted before accept.
      } catch (const std::exception& e) {
        // Python would let this end the server; one bad request should not.
        std::fprintf(stderr, "forkserver: bad request: %s: %s\n", exception_type_name(e).c_str(), e.what());
      }
      ::close(s);
      std::span<const int> all(received, n_received);
      if (n_received < 4 || n_received > MAXFDS_TO_SEND) {
        for (int fd : all) ::close(fd);
        continue;
      }
      int child_r = received[0];
      int child_w = received[1];
      std::span<const int> rest = all.subspan(2);
      if (pid_to_fd.size() == pid_to_fd.capacity()) pid_to_fd.reserve(2 * pid_to_fd.capacity());
      pid_t pid = ::fork();
      if (pid == 0) {
        int code = 1;
        try {
          // Python: close listener, selector, alive_r, child_w, sig_r, sig_w
          // and the other children's status fds; restore the signal handlers.
          ::close(listener_fd);
          ::close(alive_r);
          ::close(child_w);
          ::close(sig_r);
          for (const auto& [other, fd] : pid_to_fd) ::close(fd);
          ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
          ::sigaction(SIGCHLD, &old_chld, nullptr);
          ::sigaction(SIGINT, &old_int, nullptr);
          ::sigaction(SIGPIPE, &old_pipe, nullptr);
          // The child gets the fd limit the server was started with, as it
          // would from a server that had kept it (CPython's children do).
          if (limit_raised) ::setrlimit(RLIMIT_NOFILE, &started_with);
          code = serve_one(child_r, rest, address);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "forkserver child: %s\n", e.what());
          std::fflush(stderr);
        }
        // serve_one's bootstrap has flushed the standard streams (when they
        // held anything: a flush takes each stream's lock, a page fault in a
        // forked child).
        os::_exit(code);
      }
      if (pid > 0 && util::trace_enabled()) util::_trace("forkserver fork: child pid " + std::to_string(pid));
      if (pid < 0) {
        // fork failed: closing child_w tells the parent (EOF before a pid).
        for (int fd : all) ::close(fd);
        continue;
      }
      try {
        write_signed(child_w, pid);
      } catch (const OSError&) {
        // The parent is gone.
      }
      pid_to_fd.emplace_back(pid, child_w);  // room made before fork()
      ::close(child_r);
      for (int fd : rest) ::close(fd);
    }
    // [forkserver-fork]
  }
}

}  // namespace

void main(int listener_fd, int alive_r, bool bind_now_added) {
  try {
    serve(listener_fd, alive_r, bind_now_added);
  } catch (const std::exception& e) {
    // Python: the exception ends `python -c "...forkserver.main(...)"` with its
    // traceback on stderr and exit status 1.  The parents see EOF on their
    // status pipes; the next ensure_running() starts another server.
    std::fprintf(stderr, "forkserver: %s: %s\n", exception_type_name(e).c_str(), e.what());
    std::fflush(stderr);
    std::exit(1);
  }
}

// ------------------------------------------------------------------ status pipe

std::int64_t read_signed(int fd) {
  char data[sizeof(std::int64_t)];
  std::size_t have = 0;
  while (have < sizeof data) {
    ssize_t n = ::read(fd, data + have, sizeof data - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) raise_os_error("read", errno);
    if (n == 0) throw EOFError("unexpected EOF");
    have += static_cast<std::size_t>(n);
  }
  std::int64_t value;
  std::memcpy(&value, data, sizeof value);  // struct 'q': native byte order
  return value;
}

void write_signed(int fd, std::int64_t n) {
  char data[sizeof n];
  std::memcpy(data, &n, sizeof n);
  std::size_t done = 0;
  while (done < sizeof data) {
    ssize_t w = ::write(fd, data + done, sizeof data - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) raise_os_error("write", errno);
    if (w == 0) throw RuntimeError("should not get here");
    done += static_cast<std::size_t>(w);
  }
}

// ------------------------------------------------------------------ module functions

void ensure_running() { _forkserver().ensure_running(); }
std::pair<int, int> connect_to_new_process(const std::vector<int>& fds) {
  return _forkserver().connect_to_new_process(fds);
}
const std::optional<std::vector<int>>& get_inherited_fds() { return _forkserver().get_inherited_fds(); }
void set_forkserver_preload(std::vector<std::string> module_names) {
  _forkserver().set_forkserver_preload(std::move(module_names));
}

}  // namespace multiprocessing::forkserver
