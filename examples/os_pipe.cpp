// examples/os_pipe.cpp — seed lesson 002, os.pipe: three ways to talk through a
// pipe made before fork().  A forked child inherits both ends; each side closes
// the end it does not use (closing it in one process does not close it in the
// other).  multiprocessing.Process itself stands on two such pipes.
//
//   1. parent and child:  the child writes, the parent reads.
//   2. two siblings:      one child writes, the other reads; the parent closes both.
//      (The seed's version swaps the ends by mistake; this one does it right.)
//   3. one pipe per child, for three children.
#include <cstdio>
#include <string>
#include <vector>

#include "multiprocessing/os.hpp"

namespace os = multiprocessing::os;

namespace {

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);  // flush before fork, or the child inherits the buffer
}

std::string ends(const os::Fd& r, const os::Fd& w) {
  return "read_end: " + std::to_string(r.get()) + ", write_end: " + std::to_string(w.get());
}

void parent_and_child() {
  say("== 1. parent and child ==");
  auto [read_end, write_end] = os::pipe();
  pid_t pid = os::fork();
  if (pid == 0) {  // the child
    say("Child End, " + ends(read_end, write_end));
    read_end.close();  // the child only writes
    os::write(write_end.get(), "Hello, pipe!");
    write_end.close();
    os::_exit(0);
  }
  say("Parent End, " + ends(read_end, write_end));
  write_end.close();  // the parent only reads; and now EOF can come
  std::string data_received = os::read(read_end.get(), 1024);
  say("Received: " + data_received);
  os::waitpid(pid, 0);
}

void two_siblings() {
  say("== 2. two siblings ==");
  auto [read_end, write_end] = os::pipe();
  pid_t writer = os::fork();
  if (writer == 0) {
    read_end.close();
    os::write(write_end.get(), "Hello from child!");
    write_end.close();
    os::_exit(0);
  }
  pid_t reader = os::fork();
  if (reader == 0) {
    write_end.close();  // else this reader would never see EOF
    std::string data_received = os::read(read_end.get(), 1024);
    say("Received: " + data_received);
    os::_exit(0);
  }
  // The parent uses neither end.
  read_end.close();
  write_end.close();
  os::waitpid(writer, 0);
  os::waitpid(reader, 0);
}

void one_pipe_per_child() {
  say("== 3. one pipe per child ==");
  std::vector<os::Fd> kept;
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    auto [read_end, write_end] = os::pipe();
    pid_t pid = os::fork();
    if (pid == 0) {
      say("Child End, " + ends(read_end, write_end));
      read_end.close();
      os::write(write_end.get(), "Hello, pipe write_end: " + std::to_string(write_end.get()) + "!");
      write_end.close();
      os::_exit(0);
    }
    say("Parent End, " + ends(read_end, write_end));
    std::string data_received = os::read(read_end.get(), 1024);
    say("Received: " + data_received);
    // As in the seed, the parent keeps both ends open until the end, so the
    // next pipe gets the next fd numbers (5, 6 and then 7, 8).
    kept.push_back(std::move(read_end));
    kept.push_back(std::move(write_end));
    pids.push_back(pid);
  }
  for (pid_t pid : pids) os::waitpid(pid, 0);
  kept.clear();  // for end in ends: os.close(end)
}

}  // namespace

int main() {
  parent_and_child();
  two_siblings();
  one_pipe_per_child();
  return 0;
}
