// Uses the installed umbrella header: start a child, join it, check its exit code.
#include <multiprocessing.hpp>

#include <cstdio>

int main() {
  multiprocessing::Process p({.target = [] { throw multiprocessing::SystemExit(7); }});
  p.start();
  p.join();
  std::printf("consumer: child exitcode %d\n", *p.exitcode());
  return *p.exitcode() == 7 ? 0 : 1;
}
