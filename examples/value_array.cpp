// examples/value_array.cpp — "Sharing state between processes: shared memory",
// the Python docs' Value/Array example (multiprocessing.rst), and seed lesson
// 004's version of it ("1) 共享内存").  The parent makes a Value('d') and an
// Array('i', range(10)) in shared memory; a child changes them; the parent,
// after join(), sees the child's changes.
//
// Python docs original:
//   def f(n, a):
//       n.value = 3.1415927
//       for i in range(len(a)):
//           a[i] = -a[i]
//   num = Value('d', 0.0)
//   arr = Array('i', range(10))
//   p = Process(target=f, args=(num, arr)); p.start(); p.join()
//   print(num.value)      # 3.1415927
//   print(arr[:])         # [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
//
// Seed 004 (Python 2 there):
//   def f(n, a):
//       n.value = 3.14
//       a[0] = 5
//   ... the same num and arr ...
//   print num.value       # 3.14
//   print arr[:]          # [5, 1, 2, 3, 4, 5, 6, 7, 8, 9]
#include <charconv>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

/// Python's print(float): the shortest text that reads back as the same double.
std::string float_str(double v) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  std::string text(buffer, end);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

/// Python's print(list_of_ints): "[0, -1, -2]".
std::string list_str(const std::vector<int>& items) {
  std::string text = "[";
  for (std::size_t i = 0; i < items.size(); ++i) text += (i ? ", " : "") + std::to_string(items[i]);
  return text + "]";
}

std::vector<int> range(int n) {
  std::vector<int> items(static_cast<std::size_t>(n));
  std::iota(items.begin(), items.end(), 0);
  return items;
}

void docs_f(mp::sharedctypes::Synchronized<double> n, mp::sharedctypes::SynchronizedArray<int> a) {
  n.set_value(3.1415927);
  for (std::size_t i = 0; i < a.len(); ++i) {
    auto k = static_cast<std::ptrdiff_t>(i);
    a[k] = -a[k];
  }
}

void seed_f(mp::sharedctypes::Synchronized<double> n, mp::sharedctypes::SynchronizedArray<int> a) {
  n.set_value(3.14);
  a[0] = 5;
}

}  // namespace

int main() {
  {  // The Python docs
    auto num = mp::Value<'d'>(0.0);
    auto arr = mp::Array<'i'>(range(10));
    mp::Process p({.target = [=] { docs_f(num, arr); }});
    p.start();
    p.join();
    std::printf("%s\n%s\n", float_str(num.value()).c_str(), list_str(arr.slice()).c_str());
  }
  {  // Seed 004
    auto num = mp::Value<'d'>(0.0);
    auto arr = mp::Array<'i'>(range(10));
    mp::Process p({.target = [=] { seed_f(num, arr); }});
    p.start();
    p.join();
    std::printf("%s\n%s\n", float_str(num.value()).c_str(), list_str(arr.slice()).c_str());
  }
  return 0;
}
