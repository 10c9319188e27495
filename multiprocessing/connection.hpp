// multiprocessing/connection.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/connection.py.
// So far: wait(), which popen_fork uses to wait on a process sentinel.  The
// Connection class, Pipe, Listener and Client come with issue 3 on this file.
#pragma once

#include <optional>
#include <vector>

namespace multiprocessing::connection {

/// Python: connection.wait(object_list, timeout=None) (POSIX branch).
/// Wait until at least one fd in `object_list` is ready to read (data, EOF or
/// hang-up: a process sentinel is "ready" when the child has exited), or until
/// `timeout` seconds pass.  No timeout waits forever; a timeout <= 0 only polls.
/// Returns the ready fds, in the order given; empty on timeout.  A signal that
/// interrupts the wait does not shorten it (PEP 475).
/// \throws OSError if poll() fails, ValueError for a negative fd.
std::vector<int> wait(const std::vector<int>& object_list,
                      std::optional<double> timeout = std::nullopt);

}  // namespace multiprocessing::connection
