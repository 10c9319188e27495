// multiprocessing/forkserver.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/forkserver.py: a server process,
// started once, that forks a child each time a parent asks for one.
//
// Why: fork() from a big, multi-threaded parent copies its page tables and
// whatever locks its other threads held; spawn is safe but starts the program
// from scratch each time.  The fork server is started (by spawn) while the
// parent is still simple, and from then on forks children from its own small,
// single-threaded state.
//
// The conversation, as CPython has it:
//   parent --connect--> server's unix socket (in the private temp dir, 0600)
//   parent --sendfds--> [child_r, child_w, alive_w, tracker fd, *fds]
//   server: fork(); the child reads the pickles from child_r (spawn::_main)
//   server --child_w--> the child's pid (8 bytes), later its exit code (8 bytes)
// The parent's Popen reads both from the other end of that pipe, which is
// therefore its sentinel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace multiprocessing::forkserver {

/// Python: MAXFDS_TO_SEND.
inline constexpr std::size_t MAXFDS_TO_SEND = 256;

/// Python: forkserver.ForkServer.  One per process (`_forkserver()`).
class ForkServer {
 public:
  /// Python: ensure_running(): start the server unless it runs.  A child
  /// started by the server uses the same server (it inherits the alive fd
  /// and the address).
  /// \throws OSError if the socket, pipe or posix_spawn fails.
  void ensure_running();

  /// Python: connect_to_new_process(fds): ask the server for a child that
  /// inherits `fds`.  Returns (status_r, data_w): read the child's pid and
  /// then its exit code from status_r; write its pickles to data_w.
  /// \throws ValueError "too many fds".
  std::pair<int, int> connect_to_new_process(const std::vector<int>& fds);

  /// Python: get_inherited_fds(): in a child started by the server, the fds
  /// its parent passed (Popen.duplicate_for_child); nullopt elsewhere.
  const std::optional<std::vector<int>>& get_inherited_fds() const { return inherited_fds_; }

  /// Python: set_forkserver_preload(module_names).  Python imports these
  /// modules in the server so that children start with them loaded.  A C++
  /// server is this program, already loaded: the names are kept, and the
  /// call is otherwise without effect.
  void set_forkserver_preload(std::vector<std::string> module_names);

  /// Python: _stop(): remove the socket file, close the alive fd (the server
  /// exits when it sees EOF), wait for it.  The handle is reset (no pid, no
  /// address, socket file removed) even when the wait fails.  A server that
  /// sees EOF while its socket file is still there (its parent was killed)
  /// removes the file, and the parent's temp directory if that is empty.
  /// \throws ChildProcessError if the server was already reaped elsewhere.
  void _stop();

  /// The server's pid if this process started it (Python: _forkserver_pid).
  std::optional<pid_t> _pid() const;
  /// The server's socket path while it runs (Python: _forkserver_address).
  std::optional<std::string> _address() const;
  /// The write end of the server's alive pipe held here, or -1.
  int _alive_fd() const;

  // Set in a child the server forked (Python's _serve_one assigns them).
  void _set_inherited(int alive_fd, std::string address, std::vector<int> inherited);

  /// In a forked child: a new, unlocked lock_.  A thread of the parent may
  /// have held it at the fork (ensure_running() holds it while it starts the
  /// server), and it would never be released here.  The child keeps using the
  /// parent's server, as in Python.
  void _at_fork_reinit();

 private:
  void _stop_unlocked();

  mutable std::mutex lock_;
  std::optional<std::string> address_;   // Python: _forkserver_address
  int alive_fd_ = -1;                    // Python: _forkserver_alive_fd
  std::optional<pid_t> pid_;             // Python: _forkserver_pid
  std::optional<std::vector<int>> inherited_fds_;  // Python: _inherited_fds
  std::vector<std::string> preload_modules_{"__main__"};
};

/// Python: forkserver._forkserver, the module's one server handle (never destroyed).
ForkServer& _forkserver();

/// Python: the module functions bound to `_forkserver`.
void ensure_running();
std::pair<int, int> connect_to_new_process(const std::vector<int>& fds);
const std::optional<std::vector<int>>& get_inherited_fds();
void set_forkserver_preload(std::vector<std::string> module_names);

/// Python: forkserver.main(listener_fd, alive_r, preload, ...): the server's
/// loop.  Run by freeze_support() in the program started with
/// "--multiprocessing-forkserver"; does not return.  It exits 0 when every
/// holder of the alive pipe is gone; on an error it cannot serve past (accept
/// failing with anything but ECONNABORTED, e.g. EMFILE), it writes
/// "forkserver: OSError: [Errno 24] ..." to stderr and exits 1, as Python's
/// server ends with the exception.  `bind_now_added`: ensure_running set
/// LD_BIND_NOW for this server's start ("bind_now=1" on its command line);
/// the server removes it from its environment before it serves.
[[noreturn]] void main(int listener_fd, int alive_r, bool bind_now_added = false);

/// Whether argv asks for the fork server ("--multiprocessing-forkserver").
bool is_forkserver(const std::vector<std::string>& argv);

/// Python: read_signed(fd) / write_signed(fd, n): 8-byte native-endian
/// integers (struct 'q') on the status pipe.
/// \throws EOFError "unexpected EOF" if the pipe ends first.
std::int64_t read_signed(int fd);
void write_signed(int fd, std::int64_t n);

}  // namespace multiprocessing::forkserver
