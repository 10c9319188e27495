// multiprocessing/popen_spawn_posix.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/popen_spawn_posix.py: Popen for the
// 'spawn' start method on POSIX.
//
// Where popen_fork copies the parent (fork), this Popen starts the program
// afresh (posix_spawn of the same executable) and sends it, over a pipe, what
// it needs to rebuild the Process object: two pickles (spawn.hpp).  The
// contract with BaseProcess is popen_fork's: pid, and a sentinel fd that
// reaches EOF when the child exits.
#pragma once

#include <vector>

#include "multiprocessing/popen_fork.hpp"

namespace multiprocessing::popen_spawn_posix {

/// Python: popen_spawn_posix.Popen.
class Popen : public popen_fork::Popen {
 public:
  /// Python: method = 'spawn'.
  static constexpr const char* method = "spawn";

  /// Python: Popen.__init__(process_obj): _fds = [], then launch.
  /// \throws PicklingError if the process object cannot cross by name (its
  ///   target is a lambda, say); OSError if the pipes or posix_spawn fail.
  ///   Nothing is left open or running then.
  explicit Popen(BaseProcess& process_obj);

  /// Python: duplicate_for_child(fd): the child inherits `fd`.  Returns the
  /// number the child will see it under: the inherited fds are given the
  /// numbers 3, 4, 5... in the child, in the order they were added (Python
  /// keeps the parent's numbers; renumbering lets everything else be closed
  /// with one closefrom).
  int duplicate_for_child(int fd) override;
  /// Python: Popen.DupFd = _DupFd: the fd number itself: the child inherits it under that number.
  Object DupFd(int handle) const override;

 protected:
  /// Python: _launch(process_obj).
  void _launch(BaseProcess& process_obj) override;

  std::vector<int> _fds;  ///< Python: self._fds, the parent's fds the child inherits
};

}  // namespace multiprocessing::popen_spawn_posix
