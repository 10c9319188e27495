// examples/manager_value_array.cpp — seed lesson 004's "2) Manager": a Value('d'),
// an Array('i', range(10)) and a list, all held by a manager's server process.
// A child changes all three through its proxies; the parent, after join(),
// asks the server and sees the changes.  Unlike value_array (shared memory),
// every access here is a request over a socket to the server.
//
// Python original (Python 2 in the seed; examples/manager_value_array.py):
//   def f(x, arr, l):
//       x.value = 3.14
//       arr[0] = 5
//       l.append('Hello')
//   server = multiprocessing.Manager()
//   x = server.Value('d', 0.0)
//   arr = server.Array('i', range(10))
//   l = server.list()
//   proc = multiprocessing.Process(target=f, args=(x, arr, l))
//   proc.start(); proc.join()
//   print(x.value)     # 3.14
//   print(arr)         # array('i', [5, 1, 2, 3, 4, 5, 6, 7, 8, 9])
//   print(l)           # ['Hello']
//
// Usage: manager_value_array [fork|spawn|forkserver]
#include <cstdint>
#include <cstdio>
#include <string>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;
using mp::managers::ArrayProxy;
using mp::managers::ListProxy;
using mp::managers::ValueProxy;

namespace lesson {

void f(ValueProxy x, ArrayProxy arr, ListProxy l) {
  x.set_value(3.14);
  arr.setitem(0, 5);
  l.append("Hello");
}

}  // namespace lesson

MP_REGISTER_TARGET(lesson::f);

int main(int argc, char** argv) {
  mp::freeze_support();
  if (argc > 1) mp::set_start_method(std::string(argv[1]));
  auto server = mp::Manager();
  ValueProxy x = server.Value("d", 0.0);
  mp::Object::List range;
  for (std::int64_t i = 0; i < 10; ++i) range.emplace_back(i);
  ArrayProxy arr = server.Array("i", range);
  ListProxy l = server.list();
  mp::Process proc({.target = &lesson::f, .args = {x, arr, l}});
  proc.start();
  proc.join();
  std::printf("%s\n", x.value().repr().c_str());  // print(x.value): a float prints its repr
  std::printf("%s\n", arr.str().c_str());        // print(arr): str() asked of the server
  std::printf("%s\n", l.str().c_str());
  return *proc.exitcode();
}
