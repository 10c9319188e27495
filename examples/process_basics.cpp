// examples/process_basics.cpp — `p = Process(target=f); p.start(); p.join()`,
// narrated.  log_to_stderr(SUBDEBUG) makes the library tell each step the way
// Python's multiprocessing tells it, and repr() shows the process's state
// before, during and after its life.  docs/walkthrough_start.md follows the
// same path through the code.
#include <unistd.h>

#include <cstdio>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

void f(std::string name, mp::synchronize::Event go) {
  go.wait();  // until the parent has printed "after start:"
  std::printf("hello %s, from %s (pid %d, parent %d)\n", name.c_str(),
              mp::current_process().name().c_str(), static_cast<int>(::getpid()),
              static_cast<int>(*mp::parent_process()->pid()));
}

int main() {
  // Line-buffered stdout, so that our lines and the log's (on stderr) come out
  // in the order they were written even when both go to one pipe.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  mp::log_to_stderr(mp::SUBDEBUG);
  // The child waits for `go` before it prints, so that the parent's "after
  // start" line (the child still running) comes first in every run.
  auto go = mp::Event();
  mp::Process p({.target = [go] { f("bob", go); }});
  std::printf("before start: %s\n", p.repr().c_str());
  p.start();
  std::printf("after start:  %s\n", p.repr().c_str());
  go.set();
  p.join();
  std::printf("after join:   %s\n", p.repr().c_str());

  mp::Process sleeper({.target = [] { mp::os::sleep(60); }, .daemon = true});
  sleeper.start();
  sleeper.terminate();
  sleeper.join();
  std::printf("terminated:   %s\n", sleeper.repr().c_str());
  return 0;
}
