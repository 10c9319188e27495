// tests/support.cpp — see support.hpp.
#include "support.hpp"

#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace mp_test {

void Channel::write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("Channel write failed");
    done += static_cast<std::size_t>(n);
  }
}

std::string Channel::recv_line() {
  for (;;) {
    auto newline = pending_.find('\n');
    if (newline != std::string::npos) {
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      return line;
    }
    std::string chunk = mp::os::read(r_.get(), 4096);
    if (chunk.empty()) throw mp::EOFError("channel closed before a full line");
    pending_ += chunk;
  }
}

std::vector<std::string> Channel::lines() {
  std::vector<std::string> result;
  for (;;) {
    try {
      result.push_back(recv_line());
    } catch (const mp::EOFError&) {
      return result;
    }
  }
}

void join_process(mp::BaseProcess& p, double timeout) {
  p.join(timeout);
  if (p.is_alive()) {
    p.kill();
    p.join();
    ADD_FAILURE() << "process " << p.name() << " did not end within " << timeout << " s";
  }
}

std::vector<std::string> start_methods() { return {"fork"}; }

}  // namespace mp_test
