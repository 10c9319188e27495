// multiprocessing/popen_forkserver.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/popen_forkserver.py: Popen for the
// 'forkserver' start method.
//
// The child is forked by the fork server (forkserver.hpp), not by this
// process, so this process cannot waitpid() it.  The server writes the
// child's pid and, when it ends, its exit code into a pipe whose read end is
// this Popen's sentinel; poll() reads the exit code from there.
#pragma once

#include <vector>

#include "multiprocessing/popen_fork.hpp"

namespace multiprocessing::popen_forkserver {

/// Python: popen_forkserver.Popen.
class Popen : public popen_fork::Popen {
 public:
  /// Python: method = 'forkserver'.
  static constexpr const char* method = "forkserver";

  /// \throws PicklingError if the process object cannot cross by name;
  ///   OSError if the server cannot be started or reached.
  explicit Popen(BaseProcess& process_obj);

  /// Python: duplicate_for_child(fd): the fd is sent to the server with the
  /// request; the child finds it at this index of get_inherited_fds().
  int duplicate_for_child(int fd) override;
  /// Python: Popen.DupFd = _DupFd: an index into forkserver.get_inherited_fds() in the child.
  Object DupFd(int handle) const override;

  /// Python: poll(flag=os.WNOHANG): the exit code the server wrote on the
  /// sentinel, or nullopt if it has not come yet (flag WNOHANG); with flag 0,
  /// wait for it.  255 if the server died first.
  std::optional<int> poll(int flag = WNOHANG_FLAG) override;

 protected:
  void _launch(BaseProcess& process_obj) override;

  std::vector<int> _fds;  ///< Python: self._fds
};

}  // namespace multiprocessing::popen_forkserver
