// tests/interop/python_peer.hpp — a python3 child for the interop tests: started
// with posix_spawnp, its stdout (and, when asked, its stdin) a pipe to the test,
// waited for with a time limit and killed if the test gives up on it.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"

extern char** environ;

namespace interop {

namespace mp = multiprocessing;

constexpr double LIMIT = 20.0;  // seconds any single step may take

/// A python3 child; its stdout is a pipe when `capture`, its stdin when `feed`.
struct Python {
  pid_t pid = -1;
  mp::os::Fd out;
  mp::os::Fd in;
  std::string pending;  // read from `out`, not yet returned

  Python() = default;
  Python(Python&& other) noexcept
      : pid(std::exchange(other.pid, -1)), out(std::move(other.out)), in(std::move(other.in)),
        pending(std::move(other.pending)) {}

  /// Wait for its exit status, at most LIMIT seconds, then kill it.
  int finish() {
    in.close();  // EOF on its stdin: a peer that reads it goes on
    double deadline = mp::os::monotonic() + LIMIT;
    for (;;) {
      auto [got, status] = mp::os::waitpid(pid, WNOHANG);
      if (got == pid) {
        pid = -1;
        return mp::os::waitstatus_to_exitcode(status);
      }
      if (mp::os::monotonic() > deadline) ::kill(pid, SIGKILL);
      mp::os::sleep(0.01);
    }
  }
  ~Python() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

inline Python spawn(const std::vector<std::string>& args, bool capture, bool feed = false) {
  Python child;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  mp::os::Fd r, w, in_r, in_w;
  if (capture) {
    std::tie(r, w) = mp::os::pipe();
    // The pipe is close-on-exec; dup2 onto 1 makes a copy without the flag.
    posix_spawn_file_actions_adddup2(&actions, w.get(), 1);
  }
  if (feed) {
    std::tie(in_r, in_w) = mp::os::pipe();
    posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);  // the same, onto 0
  }
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int rc = ::posix_spawnp(&child.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw mp::OSError("posix_spawnp", rc);
  child.out = std::move(r);
  child.in = std::move(in_w);
  return child;
}

/// Read the child's stdout up to a line "<prefix> <value>"; return the value.
inline std::string read_value(Python& python, const std::string& prefix) {
  for (;;) {
    std::size_t nl = python.pending.find('\n');
    if (nl != std::string::npos) {
      std::string line = python.pending.substr(0, nl);
      python.pending.erase(0, nl + 1);
      if (line.rfind(prefix + " ", 0) != 0) throw mp::ValueError("unexpected line: " + line);
      return line.substr(prefix.size() + 1);
    }
    if (mp::connection::wait({python.out.get()}, LIMIT).empty()) {
      throw mp::TimeoutError("python printed no " + prefix + " line");
    }
    std::string chunk = mp::os::read(python.out.get(), 256);
    if (chunk.empty()) throw mp::EOFError("python exited before its " + prefix + " line");
    python.pending += chunk;
  }
}

/// Read the "ADDRESS <addr>" line a Python listener prints.
inline std::string read_address(Python& python) { return read_value(python, "ADDRESS"); }

/// The handshakes the peer is asked to speak, from the arguments after the
/// peer script: "3.11" (the interpreter's own, on a 3.11), "3.12" (3.12's,
/// put into a 3.11 by handshake312.py) or "native" (whatever the
/// interpreter speaks: a real 3.12 or 3.13).  None given: 3.11 and 3.12, for
/// the machine's python3, which is 3.11.
inline std::vector<std::string> handshakes(int argc, char** argv) {
  if (argc > 3) return std::vector<std::string>(argv + 3, argv + argc);
  return {"3.11", "3.12"};
}

}  // namespace interop
