// multiprocessing/resource_tracker.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/resource_tracker.py: a server process
// that remembers the names of shared memory segments and named semaphores that
// the program created, and unlinks those still registered once every process of
// the program has gone.  Without it, a program killed with SIGKILL would leave
// its segments in /dev/shm (RAM) until the next reboot.
//
// How it works, as in Python: the first register() starts the tracker with a
// pipe.  The program keeps the write end (and every forked child inherits a
// copy); the tracker reads lines from the read end:
//
//     REGISTER:/psm_0123abcd:shared_memory\n
//     UNREGISTER:/psm_0123abcd:shared_memory\n
//     PROBE:0:noop\n
//
// Each line is one write() of at most 512 bytes, so that lines from different
// processes never interleave (POSIX: writes up to PIPE_BUF bytes to a pipe are
// atomic).  When the last write end closes — every process died or exited —
// read() returns EOF, and the tracker unlinks what is still registered,
// warning on stderr as Python's does.
//
// The one difference from CPython, and why: CPython starts the tracker by
// exec'ing a fresh interpreter.  This port forks, and the forked tracker runs
// only code that is safe right after a fork in a multi-threaded program:
// system calls (read, write, unlink through shm_unlink/sem_unlink, mmap for
// its table of names, sigaction, close) and messages formatted into a stack
// buffer.  No malloc, no stdio, no C++ exceptions, no locks: another thread of
// the parent may have held any of those at the instant of the fork, and in the
// child it would stay held forever.  Exec'ing a helper would need a program to
// exec; forking needs none and keeps the whole tracker in this one file.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>

#include "multiprocessing/os.hpp"

namespace multiprocessing::resource_tracker {

/// Python: resource_tracker.ResourceTracker.  One per process (see
/// `_resource_tracker()`); a forked child inherits its parent's write end and so
/// talks to the same tracker, as a forked Python child does.
class ResourceTracker {
 public:
  ResourceTracker() = default;
  ResourceTracker(const ResourceTracker&) = delete;
  ResourceTracker& operator=(const ResourceTracker&) = delete;
  /// `_stop()`: a tracker object of its own (tests make some) does not leave
  /// its process behind as a zombie.  The module's tracker is never destroyed.
  ~ResourceTracker();

  /// Python: ensure_running(): start the tracker if it is not running.  If it
  /// was started and has died since (reaped by waitpid, or a probe write finds
  /// the pipe closed), warn "resource_tracker: process died unexpectedly,
  /// relaunching.  Some resources might leak." and start a new one.
  /// \throws OSError if pipe() or fork() fails.
  void ensure_running();

  /// Python: getfd(): the write end of the tracker's pipe (starting it first).
  int getfd();

  /// Python: register(name, rtype).  `rtype` is "shared_memory", "semaphore"
  /// or "noop"; `name` is the name as passed to shm_open/sem_open ("/psm_...").
  /// (`register` is a C++ keyword, hence the underscore.)
  /// \throws ValueError "msg too long" if the line exceeds 512 bytes.
  void register_(const std::string& name, const std::string& rtype);

  /// Python: unregister(name, rtype): the resource was unlinked, forget it.
  void unregister(const std::string& name, const std::string& rtype);

  /// Python 3.12: `_stop()`: close the write end and wait for the tracker to
  /// exit.  It exits at once only if no other process (a forked child still
  /// running) holds a copy of the write end.  Only the process that started
  /// the tracker waits for it; in any other it just closes its copy.
  void _stop();

  /// The tracker's pid if this process started it and it runs, else -1
  /// (Python: `_pid`).  For the test binary's leak check, which must tell the
  /// tracker apart from a leaked child.
  pid_t _pid() const;
  /// The write end held by this process, or -1 (Python: `_fd`).
  int _fd() const;
  /// Python: `_resource_tracker._fd = tracker_fd` in spawn_main: a spawned
  /// child talks to its parent's tracker through the fd it inherited.
  void _set_fd(int fd);
  /// Re-create the lock in a forked child, where another thread of the parent
  /// may have held it at the fork (Python: `_at_fork_reinit` of its locks).
  void _at_fork_reinit();

 private:
  void _ensure_running_locked();  // ensure_running, with lock_ held
  void _launch();                  // the second half of ensure_running: pipe, fork
  bool _check_alive();             // Python: _check_alive (a PROBE write)
  void _send(const char* cmd, const std::string& name, const std::string& rtype);

  // Python's is an RLock, for a finalizer re-entering during a call
  // (gh-109629); nothing here calls back into the tracker, so a mutex.
  // Re-created in a forked child (see _resource_tracker()).
  mutable std::mutex lock_;
  os::Fd fd_;                // Python: self._fd
  pid_t pid_ = -1;           // Python: self._pid
  pid_t launcher_ = -1;      // the process that forked the tracker (may waitpid it)
};

/// Internal: the tracker process's side of the protocol.  Python: main()'s
/// `cache` and the body of its `for line in f:` loop, plus its `finally:`.
/// The tracker feeds it each chunk it reads from the pipe; the fuzz target
/// fuzz/fuzz_resource_tracker.cpp feeds it arbitrary bytes.  Everything it
/// does is safe in a child forked from a multi-threaded program: no malloc,
/// no exceptions, no locks (its table lives in pages from mmap).
///
/// Memory: one 536-byte entry per distinct registered (name, rtype) in a
/// table that starts at 64 entries and doubles, so at most 34 KiB or 67
/// bytes per byte fed, whichever is more (a REGISTER line of a new name is
/// at least 16 bytes: `REGISTER:x:noop` and its newline), plus a 513-byte
/// line buffer.  Each line costs one scan of the table.
class _TrackerProtocol {
 public:
  _TrackerProtocol() = default;
  _TrackerProtocol(const _TrackerProtocol&) = delete;
  _TrackerProtocol& operator=(const _TrackerProtocol&) = delete;
  ~_TrackerProtocol();

  /// Take the next bytes read from the pipe.  Each complete line
  /// `CMD:name:rtype` (and its newline) is handled as Python's main() handles it: REGISTER
  /// adds the name, UNREGISTER forgets it (a name never registered is no
  /// error), PROBE does nothing.  A bad line (not three fields, an unknown
  /// command or rtype, a byte above 0x7f, a NUL in the name, more than 512
  /// bytes) is reported on stderr as "resource_tracker: ValueError: ..." and
  /// skipped, as Python's excepthook reports it and reads on.  A partial
  /// last line waits for the next call.
  void feed(const char* data, std::size_t n);
  /// The names of `rtype` ("shared_memory", "semaphore", "noop") registered
  /// and not unregistered.
  std::size_t count(std::string_view rtype) const;
  /// Python: main()'s `finally:`: every writer is gone, unlink each name
  /// still registered (shm_unlink, sem_unlink) with a warning on stderr.
  void cleanup() const;

 private:
  struct Entry;
  void _handle_line(const char* line, std::size_t len);
  long _find(int type, const char* name, std::size_t len) const;
  bool _add(int type, const char* name, std::size_t len);  // false: out of memory
  bool _remove(int type, const char* name, std::size_t len);
  bool _grow();

  Entry* entries_ = nullptr;  // the registered names, count_ of capacity_
  std::size_t count_ = 0;
  std::size_t capacity_ = 0;
  char line_[513];            // the line read so far (MAX_MESSAGE bytes at most)
  std::size_t line_len_ = 0;
  bool overlong_ = false;     // the line has passed 512 bytes: report it at its end
};

/// Python: `resource_tracker._resource_tracker`, the module's one tracker.  Never
/// destroyed: the tracker outlives the program's static objects (as Python's
/// outlives the interpreter), and exits when the last write end closes.
ResourceTracker& _resource_tracker();

/// Python: resource_tracker.ensure_running / getfd / register / unregister:
/// the module functions, bound to `_resource_tracker()`.
void ensure_running();
int getfd();
void register_(const std::string& name, const std::string& rtype);
void unregister(const std::string& name, const std::string& rtype);

}  // namespace multiprocessing::resource_tracker
