// examples/manager_dict.cpp — seed lesson 003: a dict shared through a
// Manager, filled by Pool(4).apply_async workers, and the nested-dict pitfall.
//
// Python original:
//   manager = multiprocessing.Manager(); temp_dict = manager.dict()
//   def test(idx, test_dict): test_dict[idx] = idx              # 1. fills the dict
//   temp_dict['test'] = {}
//   def test(idx, test_dict): test_dict['test'][idx] = idx      # 2. {'test': {}}
//   def test(idx, test_dict):                                   # 3. read, change,
//       row = test_dict['test']; row[idx] = idx; test_dict['test'] = row  # write back
//   def test(idx, test_dict, lock): lock.acquire() ... lock.release()     # 4. under a Lock
//
// Why 2 stays empty: test_dict['test'] is a round trip that returns a copy of
// the inner dict; changing the copy sends nothing back to the manager.  3 sends
// the row back, but two workers can read the same row and the later write
// loses the other's key; 4 makes the read-change-write one step with a
// manager Lock.
//
// Usage: manager_dict [fork|spawn|forkserver]
#include <cstdio>
#include <string>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;
using mp::managers::AcquirerProxy;
using mp::managers::DictProxy;

namespace lesson {

/// 1. test_dict[idx] = idx
void fill(std::int64_t idx, DictProxy test_dict) { test_dict.setitem(idx, idx); }

/// 2. test_dict['test'][idx] = idx: changes a copy.
void pitfall(std::int64_t idx, DictProxy test_dict) {
  mp::Object::Dict row = test_dict.getitem("test").as<mp::Object::Dict>();
  row.emplace_back(idx, idx);  // the copy; the manager's dict never sees it
}

/// 3. row = test_dict['test']; row[idx] = idx; test_dict['test'] = row
void write_back(std::int64_t idx, DictProxy test_dict) {
  mp::Object::Dict row = test_dict.getitem("test").as<mp::Object::Dict>();
  row.emplace_back(idx, idx);
  test_dict.setitem("test", row);
}

/// 4. the same under a manager Lock.
void write_back_locked(std::int64_t idx, DictProxy test_dict, AcquirerProxy lock) {
  lock.acquire();
  write_back(idx, test_dict);
  lock.release();
}

}  // namespace lesson

MP_REGISTER_TARGET(lesson::fill);
MP_REGISTER_TARGET(lesson::pitfall);
MP_REGISTER_TARGET(lesson::write_back);
MP_REGISTER_TARGET(lesson::write_back_locked);

namespace {

/// pool = Pool(4); 100 x apply_async(func, args); close(); join()
void run_pool(const mp::Target& func, const std::function<mp::Args(std::int64_t)>& args) {
  auto pool = mp::Pool(4);
  for (std::int64_t i = 0; i < 100; ++i) pool.apply_async(func, args(i));
  pool.close();
  pool.join();
}

}  // namespace

int main(int argc, char** argv) {
  mp::freeze_support();
  if (argc > 1) mp::set_start_method(std::string(argv[1]));
  auto manager = mp::Manager();
  DictProxy temp_dict = manager.dict();
  run_pool(&lesson::fill, [&](std::int64_t i) { return mp::Args{i, temp_dict}; });
  std::printf("1. len(temp_dict) = %lld\n", static_cast<long long>(temp_dict.len()));

  temp_dict.clear();
  temp_dict.setitem("test", mp::Object::Dict{});
  run_pool(&lesson::pitfall, [&](std::int64_t i) { return mp::Args{i, temp_dict}; });
  std::printf("2. %s\n", temp_dict.str().c_str());

  run_pool(&lesson::write_back, [&](std::int64_t i) { return mp::Args{i, temp_dict}; });
  std::printf("3. len(temp_dict['test']) = %zu (at most 100: writes can be lost)\n",
              temp_dict.getitem("test").as<mp::Object::Dict>().size());

  temp_dict.setitem("test", mp::Object::Dict{});
  AcquirerProxy lock = manager.Lock();
  run_pool(&lesson::write_back_locked, [&](std::int64_t i) { return mp::Args{i, temp_dict, lock}; });
  std::printf("4. len(temp_dict['test']) = %zu\n", temp_dict.getitem("test").as<mp::Object::Dict>().size());
  return 0;
}
