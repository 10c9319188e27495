// examples/start_methods.cpp — the three start methods, side by side: the
// Python docs' "Contexts and start methods" example (a child puts 'hello' on
// a Queue) run under fork, spawn and forkserver, with one more line that
// shows how the child was made.  The parent sets a global before starting the
// child: a fork child is a copy of the parent and sees the new value; a spawn
// child is a new run of the program, and a forkserver child is forked from a
// server that is itself such a new run, so both see the value the program
// starts with.
//
// Python original (examples/start_methods.py):
//   counter = 0
//   def foo(q):
//       q.put(f'hello, counter = {counter}')
//   if __name__ == '__main__':
//       counter = 1
//       for method in ('fork', 'spawn', 'forkserver'):
//           ctx = mp.get_context(method)
//           q = ctx.Queue()
//           p = ctx.Process(target=foo, args=(q,))
//           p.start()
//           print(f'{method:10}:', q.get())
//           p.join()
//
// Usage: start_methods
#include <cstdio>
#include <string>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace lesson {

int counter = 0;

/// Under spawn and forkserver the target crosses by name, so it is a plain
/// registered function (a capturing lambda would be refused at start()).
void foo(mp::queues::Queue q) { q.put("hello, counter = " + std::to_string(counter)); }

}  // namespace lesson

MP_REGISTER_TARGET(lesson::foo);

int main() {
  mp::freeze_support();  // in a spawned child: run the target and exit here
  lesson::counter = 1;
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    auto& ctx = mp::get_context(method);
    auto q = ctx.Queue();
    auto p = ctx.Process({.target = &lesson::foo, .args = {q}});
    p->start();
    std::printf("%-10s: %s\n", method, q.get().as<std::string>().c_str());
    std::fflush(stdout);
    p->join();
  }
  return 0;
}
