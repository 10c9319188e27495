// multiprocessing/popen_fork.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/popen_fork.py: Popen for the 'fork'
// start method, and the base class of the spawn and forkserver Popens.
//
// The contract every Popen keeps: after construction the child runs, `pid` is
// its pid, and sentinel() is an fd that reaches EOF when the child exits
// (because the child holds the only write end of that pipe).
#pragma once

#include <sys/types.h>

#include <mutex>
#include <optional>
#include <string_view>

#include "multiprocessing/reduction.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing {
class BaseProcess;
}

namespace multiprocessing::popen_fork {

/// Python: popen_fork.Popen.
class Popen {
 public:
  /// Python: method = 'fork'.
  static constexpr const char* method = "fork";

  /// Python: Popen.__init__: flush stdio (so buffered text is not written
  /// twice, once by each process), then _launch(process_obj).
  /// \throws OSError if pipe() or fork() fails; nothing is left open then.
  explicit Popen(BaseProcess& process_obj);
  virtual ~Popen();
  Popen(const Popen&) = delete;
  Popen& operator=(const Popen&) = delete;

  /// Python: poll(flag=os.WNOHANG): the return code if the child has ended
  /// (reaping it), else nullopt.  With flag 0 it blocks until the child ends.
  virtual std::optional<int> poll(int flag = WNOHANG_FLAG);
  /// Python: wait(timeout=None): wait on the sentinel (not by sleeping) at
  /// most `timeout` seconds; the return code, or nullopt if still running.
  std::optional<int> wait(std::optional<double> timeout = std::nullopt);
  /// Python: terminate(): SIGTERM, unless the child has already been reaped.
  void terminate();
  /// Python: kill(): SIGKILL.
  void kill();
  /// Python: close(): run the finalizer that closes the parent's pipe ends.
  void close();
  /// Python: sentinel: the parent's read end of the child's lifeline pipe.
  int sentinel() const { return sentinel_; }
  /// Python: duplicate_for_child(fd): under fork the child inherits every fd
  /// already, so the same number serves.
  virtual int duplicate_for_child(int fd) { return fd; }
  /// Python: the `DupFd` class attribute of the spawn and forkserver Popens:
  /// what stands for an fd inside the pickle, given what duplicate_for_child()
  /// returned.  popen_fork has none (nothing is pickled under fork).
  /// \throws NotImplementedError here.
  virtual Object DupFd(int handle) const;

  pid_t pid = 0;                   ///< Python: self.pid
  std::optional<int> returncode;   ///< Python: self.returncode

  /// WNOHANG, spelled here so this header needs no <sys/wait.h>.
  static constexpr int WNOHANG_FLAG = 1;

 protected:
  /// For subclasses (spawn, forkserver): construct without launching, then
  /// call their own _launch (a constructor cannot dispatch a virtual call).
  struct DeferLaunch {};
  explicit Popen(DeferLaunch) {}

  /// Python: _launch(process_obj): two pipes, fork, and in the child
  /// _bootstrap(parent_sentinel=child_r) then os._exit(code).
  virtual void _launch(BaseProcess& process_obj);
  /// Python: _send_signal(sig).
  void _send_signal(int sig);
  /// Write the pickled process to a starting child through the pipe `fd`
  /// (spawn and forkserver).  Python writes with a plain blocking write: a
  /// child that died before reading would raise BrokenPipeError there or, with
  /// more than a pipe's worth of data, block it forever.  Here SIGPIPE is held
  /// back while writing (a C++ program does not ignore it, as Python does),
  /// and, when `sentinel` is not -1, the writing stops if the child exits.
  /// `fd` must be a new pipe that nothing has been written to yet.
  /// \throws OSError if fcntl, write (other than EPIPE) or poll fails.
  static void _write_to_child(int fd, int sentinel, std::string_view data);

  util::Finalize finalizer;  ///< Python: self.finalizer (closes parent_r, parent_w)
  int sentinel_ = -1;
  std::mutex reap_mutex_;  ///< held while poll() reaps the child and stores returncode
};

}  // namespace multiprocessing::popen_fork
