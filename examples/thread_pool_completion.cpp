// examples/thread_pool_completion.cpp — seed 002's thread-pool lesson: five
// tasks that sleep 7, 3, 4, 5 and 1 units, run at once, their results printed
// as they complete.  Python (seed 002, with concurrent.futures):
//   def foo(t, name):
//       time.sleep(t)
//       return t, name
//   with ThreadPoolExecutor() as pool:
//       tasks = [pool.submit(foo, **kw) for kw in params]
//       for obj in as_completed(tasks):
//           print(obj.result())
//   print(f"total time: {end_time - start_time}s")
// prints (1, 'thread_5'), (3, 'thread_2'), (4, 'thread_3'), (5, 'thread_4'),
// (7, 'thread_1'), total time about 7 s: the longest task, not the sum.
// multiprocessing's ThreadPool does the same with imap_unordered, which yields
// results in the order they are ready; `--process` runs the same with a
// process Pool.  `--unit S` sets the unit (1 s by default; the test uses 0.1).
#include <multiprocessing.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <tuple>

namespace mp = multiprocessing;

double unit = 1.0;

/// Python: foo(t, name): sleep t units, return (t, name).
mp::Object foo(std::int64_t t, std::string name, double seconds_per_unit) {
  mp::os::sleep(static_cast<double>(t) * seconds_per_unit);
  return mp::Object::Tuple{{t, name}};
}
MP_REGISTER_TARGET(foo);

int main(int argc, char** argv) {
  mp::freeze_support();
  bool processes = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--unit") == 0 && i + 1 < argc) unit = std::stod(argv[++i]);
    if (std::strcmp(argv[i], "--process") == 0) processes = true;
  }
  mp::Object::List params;
  const std::pair<std::int64_t, const char*> tasks[] = {
      {7, "thread_1"}, {3, "thread_2"}, {4, "thread_3"}, {5, "thread_4"}, {1, "thread_5"}};
  for (const auto& [t, name] : tasks) params.emplace_back(mp::Object::Tuple{{t, name, unit}});

  auto start = std::chrono::steady_clock::now();
  auto print_results = [&](mp::pool::Pool& pool) {
    // imap_unordered over foo(*args): starmap has no unordered form, so each
    // item is the argument tuple, unpacked by a small adapter (a lambda: a
    // ThreadPool calls it in this process, nothing is pickled).
    auto call_foo = [](const mp::Args& item) {
      auto [t, name, seconds] = item.at(0).as<std::tuple<std::int64_t, std::string, double>>();
      return foo(t, name, seconds);
    };
    for (const mp::Object& result : pool.imap_unordered(call_foo, params)) {
      std::printf("%s\n", result.repr().c_str());
      std::fflush(stdout);
    }
  };
  if (processes) {
    // A process pool needs a function it can name: the adapter above is a
    // lambda, so the processes get foo itself, one apply_async per task, and
    // a callback prints each result as it comes back.
    auto pool = mp::get_context("fork").Pool(5);
    std::mutex out;
    for (const mp::Object& args : params) {
      pool.apply_async(foo, std::get<mp::Object::Tuple>(args.variant()).items, [&](const mp::Object& r) {
        std::lock_guard guard(out);
        std::printf("%s\n", r.repr().c_str());
        std::fflush(stdout);
      });
    }
    pool.close();
    pool.join();
  } else {
    mp::pool::ThreadPool pool(5);
    print_results(pool);
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("total time: %.1f units (the longest task, not the sum of 20)\n", total / unit);
  return 0;
}
