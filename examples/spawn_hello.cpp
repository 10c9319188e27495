// examples/spawn_hello.cpp — the README's spawn example, compiled and run as a
// test so that the README cannot show code that does not work.  Python's
// original, from the "Contexts and start methods" section of the docs:
//
//   def worker(name, lock, conn):
//       with lock:
//           conn.send('hello ' + name)
//
//   if __name__ == '__main__':
//       ctx = mp.get_context('spawn')
//       lock = ctx.Lock()
//       parent_end, child_end = ctx.Pipe()
//       p = ctx.Process(target=worker, args=('bob', lock, child_end))
//       p.start(); print(parent_end.recv()); p.join()
//
// Run it as `spawn_hello [spawn|forkserver|fork]` to compare the three methods.
#include <multiprocessing.hpp>

#include <cstdio>
#include <string>

namespace mp = multiprocessing;

void worker(std::string name, mp::synchronize::Lock lock, mp::connection::Connection& conn) {
  std::lock_guard guard(lock);
  conn.send("hello " + name);
}
MP_REGISTER_TARGET(worker);  // a target crosses to a spawned child by name

int main(int argc, char** argv) {
  mp::freeze_support();  // in a spawned child: run the target and exit here
  auto& ctx = mp::get_context(argc > 1 ? argv[1] : "spawn");
  auto lock = ctx.Lock();
  auto [parent_end, child_end] = ctx.Pipe();
  auto p = ctx.Process({.target = worker, .args = {"bob", lock, child_end}});
  p->start();
  std::printf("%s\n", parent_end.recv().as<std::string>().c_str());
  p->join();
  return *p->exitcode();
}
