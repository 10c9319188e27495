// examples/pool_apply_async.cpp — seed 003's first program: Pool(4) runs
// test(idx, d) for 100 indices with apply_async.  Python:
//   def test(idx, test_dict):
//       test_dict[idx] = idx
//   pool = multiprocessing.Pool(4)
//   for i in range(100):
//       pool.apply_async(test, args=(i, temp_dict))
//   pool.close()
//   pool.join()
//   print(temp_dict)
// The seed passes a manager's dict.  Given a plain dict instead, each task
// fills its own copy in a worker process, and the parent's dict stays {}: the
// lesson of the copied memory again.  What a task returns does come back: a
// callback, run in the parent's result handler thread, puts one result per
// index into the parent's dict.
//
// Run it as `pool_apply_async [fork|spawn|forkserver]` (fork by default).
#include <multiprocessing.hpp>

#include <cstdio>
#include <map>
#include <mutex>
#include <string>

namespace mp = multiprocessing;

/// Python: test(idx, test_dict): fills the worker's copy of the dict.
std::map<std::int64_t, std::int64_t> test(std::int64_t idx, std::map<std::int64_t, std::int64_t> test_dict) {
  test_dict[idx] = idx;
  return test_dict;  // what the worker's copy holds now: one item
}
MP_REGISTER_TARGET(test);

std::string repr(const std::map<std::int64_t, std::int64_t>& d, std::size_t show) {
  std::string out = "{";
  std::size_t n = 0;
  for (const auto& [k, v] : d) {
    if (n == show) {
      out += ", ...";
      break;
    }
    out += (n++ ? ", " : "") + std::to_string(k) + ": " + std::to_string(v);
  }
  return out + "}";
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto& ctx = mp::get_context(argc > 1 ? argv[1] : "fork");

  std::map<std::int64_t, std::int64_t> temp_dict;     // the parent's dict
  std::map<std::int64_t, std::int64_t> results;       // filled by the callback
  std::mutex results_lock;  // the callback runs in the result handler thread
  auto pool = ctx.Pool(4);
  for (std::int64_t i = 0; i < 100; ++i) {
    pool.apply_async(test, {i, temp_dict}, [&](const mp::Object& worker_copy) {
      std::lock_guard guard(results_lock);
      for (const auto& [k, v] : worker_copy.as<std::map<std::int64_t, std::int64_t>>()) results[k] = v;
    });
  }
  pool.close();
  pool.join();
  std::printf("temp_dict after the pool: %s\n", repr(temp_dict, 10).c_str());
  std::printf("results by callback: %zu entries, %s\n", results.size(), repr(results, 5).c_str());
  bool each = true;
  for (std::int64_t i = 0; i < 100; ++i) each = each && results.count(i) && results[i] == i;
  std::printf("one result per index, results[i] == i: %s\n", each ? "True" : "False");
  return each && temp_dict.empty() ? 0 : 1;
}
