// multiprocessing/connection.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/connection.py; see connection.hpp.
#include "multiprocessing/connection.hpp"

#include <poll.h>

#include <cerrno>
#include <cmath>
#include <string>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"

namespace multiprocessing::connection {

std::vector<int> wait(const std::vector<int>& object_list, std::optional<double> timeout) {
  // Python registers every object with a selectors.PollSelector; poll(2) is
  // what that does underneath.
  std::vector<pollfd> fds;
  fds.reserve(object_list.size());
  for (int fd : object_list) {
    if (fd < 0) throw ValueError("invalid file descriptor: " + std::to_string(fd));
    fds.push_back(pollfd{fd, POLLIN, 0});
  }
  std::optional<double> deadline;
  if (timeout) deadline = os::monotonic() + *timeout;

  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      double remaining = *deadline - os::monotonic();
      // Round up, so that a wait never ends before its timeout has passed.
      timeout_ms = remaining <= 0 ? 0 : static_cast<int>(std::ceil(remaining * 1000.0));
    }
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0) {
      // PEP 475: interrupted by a signal: wait on with the time that is left.
      if (errno == EINTR) continue;
      raise_os_error("poll", errno);
    }
    std::vector<int> ready;
    for (const pollfd& p : fds) {
      // POLLHUP: the writing end is closed (a sentinel whose child exited);
      // POLLNVAL would mean an fd that was never open: report it ready, as a
      // read on it fails at once, rather than hang.
      if (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) ready.push_back(p.fd);
    }
    if (!ready.empty() || n == 0) {
      if (ready.empty() && deadline && os::monotonic() < *deadline) continue;
      return ready;
    }
  }
}

}  // namespace multiprocessing::connection
