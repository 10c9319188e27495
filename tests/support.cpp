// tests/support.cpp — see support.hpp.
#include "support.hpp"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <thread>

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

int fork_while_threads_churn(int threads, const std::function<void()>& churn,
                             const std::function<void()>& child, int children, double budget) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> churners;
  for (int t = 0; t < threads; ++t) {
    churners.emplace_back([&stop, &churn] {
      while (!stop.load(std::memory_order_relaxed)) churn();
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(budget);
  int forked = 0;
  while (forked < children && (forked < 10 || std::chrono::steady_clock::now() < deadline)) {
    auto p = mp::get_context("fork").Process({.target = [&child] { child(); }});
    p->start();
    ++forked;
    join_process(*p, 10.0);
    if (p->exitcode() != 0) {
      ADD_FAILURE() << "forked child " << forked << " ended with exitcode "
                    << p->exitcode().value_or(-999);
      break;
    }
  }
  stop = true;
  for (auto& th : churners) th.join();
  return forked;
}

ScriptResult run_program(const std::vector<std::string>& argv, double timeout) {
  auto [out_r, out_w] = mp::os::pipe();
  auto [err_r, err_w] = mp::os::pipe();
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = mp::os::fork();
  if (pid == 0) {
    // dup2 onto 1 and 2: the copies are inheritable, the originals are
    // close-on-exec and vanish with the exec.
    ::dup2(out_w.get(), STDOUT_FILENO);
    ::dup2(err_w.get(), STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  out_w.close();
  err_w.close();
  ScriptResult result;
  const double deadline = mp::os::monotonic() + timeout;
  bool killed = false;
  std::vector<pollfd> fds = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[] = {&result.out, &result.err};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    double left = deadline - mp::os::monotonic();
    if (left <= 0 && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (::poll(fds.data(), fds.size(), left > 0 ? static_cast<int>(left * 1000) + 1 : 1000) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      std::string chunk = mp::os::read(fds[i].fd, 65536);
      if (chunk.empty()) {
        fds[i].fd = -1;  // EOF; the Fd closes it at the end
      } else {
        *sinks[i] += chunk;
      }
    }
    if (killed && mp::os::monotonic() > deadline + 30) break;  // a grandchild keeps the pipes
  }
  auto [_, status] = mp::os::waitpid(pid, 0);
  result.rc = mp::os::waitstatus_to_exitcode(status);
  return result;
}

HelperProcess::HelperProcess(const std::string& test) {
  auto [out_r, out_w] = mp::os::pipe();
  auto [err_r, err_w] = mp::os::pipe();
  std::string filter = "--gtest_filter=" + test;
  pid_ = mp::os::fork();
  if (pid_ == 0) {
    // dup2 onto 1 and 2: the copies are inheritable, the originals are
    // close-on-exec and vanish with the exec.
    ::dup2(out_w.get(), STDOUT_FILENO);
    ::dup2(err_w.get(), STDERR_FILENO);
    ::execl("/proc/self/exe", "test_multiprocessing", "--gtest_also_run_disabled_tests",
            filter.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  out_ = std::move(out_r);
  err_ = std::move(err_r);
}

HelperProcess::~HelperProcess() {
  if (pid_ > 0) kill_and_wait(SIGKILL);
}

std::string HelperProcess::read_value(const std::string& prefix) {
  for (;;) {
    auto newline = out_pending_.find('\n');
    while (newline != std::string::npos) {
      std::string line = out_pending_.substr(0, newline);
      out_pending_.erase(0, newline + 1);
      if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
      newline = out_pending_.find('\n');
    }
    std::string chunk = mp::os::read(out_.get(), 4096);
    if (chunk.empty()) throw mp::EOFError("helper's stdout ended before " + prefix);
    out_pending_ += chunk;
  }
}

std::string HelperProcess::read_stderr_until_eof(double timeout, bool* eof) {
  std::string text;
  double deadline = mp::os::monotonic() + timeout;
  *eof = false;
  for (;;) {
    double left = deadline - mp::os::monotonic();
    if (left <= 0) return text;
    pollfd p{err_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    std::string chunk = mp::os::read(err_.get(), 4096);
    if (chunk.empty()) {
      *eof = true;
      return text;
    }
    text += chunk;
  }
}

int HelperProcess::kill_and_wait(int sig) {
  if (pid_ <= 0) return 0;
  ::kill(pid_, sig);
  int status = mp::os::waitpid(pid_, 0).second;
  pid_ = -1;
  return status;
}

bool fail_syscall(long nr, std::optional<unsigned> arg1, int err) {
  constexpr unsigned kAllow = SECCOMP_RET_ALLOW;
  const unsigned fail = SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA);
  std::vector<sock_filter> program{
      // Another architecture's system call numbers mean other calls: allow them.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, kAllow),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
  };
  if (arg1) {
    program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 3));
    program.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[1])));  // low half
    program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, *arg1, 0, 1));
  } else {
    program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1));
  }
  program.push_back(BPF_STMT(BPF_RET | BPF_K, fail));
  program.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
  sock_fprog prog{static_cast<unsigned short>(program.size()), program.data()};
  // no_new_privs: what lets a process without CAP_SYS_ADMIN install a filter.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

bool wait_until(const std::function<bool()>& done, double timeout) {
  double deadline = mp::os::monotonic() + timeout;
  for (;;) {
    if (done()) return true;
    if (mp::os::monotonic() > deadline) return done();
    mp::os::sleep(0.01);
  }
}

bool shm_file_exists(const std::string& name) { return ::access(("/dev/shm/" + name).c_str(), F_OK) == 0; }

std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i < hex.size(); ++i) {
    if (hex[i] == ' ') continue;
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    ++i;
  }
  return out;
}

std::vector<std::string> start_methods() { return {"fork", "spawn", "forkserver"}; }

std::vector<std::string> recv_strings(mp::connection::Connection& conn) {
  std::vector<std::string> out;
  for (;;) {
    try {
      out.push_back(conn.recv().as<std::string>());
    } catch (const mp::EOFError&) {
      return out;
    }
  }
}

std::vector<std::string> read_text_lines(mp::connection::Connection& conn) {
  std::string text;
  for (std::string chunk; !(chunk = mp::os::read(conn.fileno(), 4096)).empty();) text += chunk;
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace mp_test
