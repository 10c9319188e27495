// tests/test_dummy_pool.cpp — CPython's WithThreadsTestPool: the cases of
// _TestPool and _TestPoolWorkerErrors that apply to threads, run on
// dummy.Pool (a pool::ThreadPool) with the same task functions as
// test_pool.cpp.  A ThreadPool pickles nothing, so a lambda is a task like
// any other, and an exception reaches get() as it was thrown, without a
// remote traceback (Python: ThreadPool's _wrap_exception is False).
#include <atomic>
#include <set>

#include "support.hpp"

namespace mp_test {

using mp::Object;

// The task functions and helpers of test_pool.cpp.
namespace pool_tests {
std::int64_t sqr(std::int64_t x);
std::int64_t sqr_wait(std::int64_t x, double wait);
std::int64_t mul(std::int64_t x, std::int64_t y);
std::int64_t raising(std::int64_t x);
std::int64_t to_int(std::string s);
}  // namespace pool_tests
Object::List squares(std::int64_t n);
Object::List range(std::int64_t n);

namespace {

namespace dummy = mp::dummy;

/// _TestPool.test_apply ('threads').
TEST(TestDummyPool, Apply) {
  auto pool = dummy::Pool(4);
  EXPECT_EQ(pool.apply(pool_tests::sqr, {5}), Object(25));
  EXPECT_EQ(pool.apply(pool_tests::mul, {3, 4}), Object(12));
}

/// _TestPool.test_map ('threads').
TEST(TestDummyPool, Map) {
  auto pool = dummy::Pool(4);
  EXPECT_EQ(pool.map(pool_tests::sqr, range(10)), squares(10));
  EXPECT_EQ(pool.map(pool_tests::sqr, range(100), 20), squares(100));
  EXPECT_EQ(pool.map(pool_tests::sqr, std::vector<int>{1, 2, 3}), (Object::List{1, 4, 9}));
}

/// _TestPool.test_starmap and test_starmap_async ('threads').
TEST(TestDummyPool, Starmap) {
  auto pool = dummy::Pool(4);
  Object::List tuples, expected;
  for (std::int64_t i = 0; i < 100; ++i) {
    tuples.emplace_back(Object::Tuple{{i, 99 - i}});
    expected.emplace_back(i * (99 - i));
  }
  EXPECT_EQ(pool.starmap(pool_tests::mul, tuples), expected);
  EXPECT_EQ(pool.starmap(pool_tests::mul, tuples, 20), expected);
  EXPECT_EQ(pool.starmap_async(pool_tests::mul, tuples).get(60.0), Object(expected));
}

/// _TestPool.test_map_async and test_map_async_callbacks ('threads').
TEST(TestDummyPool, MapAsyncCallbacks) {
  auto pool = dummy::Pool(4);
  EXPECT_EQ(pool.map_async(pool_tests::sqr, range(10)).get(60.0), Object(squares(10)));
  std::vector<std::string> calls;
  auto on_result = [&](const Object& r) { calls.push_back("result " + r.repr()); };
  auto on_error = [&](const std::exception& e) {
    EXPECT_NE(dynamic_cast<const mp::ValueError*>(&e), nullptr);
    calls.push_back(std::string("error ") + e.what());
  };
  pool.map_async(pool_tests::to_int, Object::List{"1"}, std::nullopt, on_result, on_error).wait();
  pool.map_async(pool_tests::to_int, Object::List{"a"}, std::nullopt, on_result, on_error).wait();
  EXPECT_EQ(calls, (std::vector<std::string>{"result [1]", "error invalid literal for int() with base 10: 'a'"}));
}

/// _TestPool.test_map_unplicklable ('threads'): nothing is pickled, so a
/// capturing lambda runs, where a process Pool refuses it.
TEST(TestDummyPool, LambdaTasks) {
  auto pool = dummy::Pool(2);
  std::int64_t offset = 100;
  auto add = [offset](const mp::Args& a) { return a[0].as<std::int64_t>() + offset; };
  Object::List expected;
  for (std::int64_t i = 0; i < 10; ++i) expected.emplace_back(i + offset);
  EXPECT_EQ(pool.map(add, range(10)), expected);
}

/// _TestPool.test_map_chunksize ('threads'): an empty list with a chunksize
/// is ready at once.
TEST(TestDummyPool, MapChunksize) {
  auto pool = dummy::Pool(2);
  EXPECT_EQ(pool.map_async(pool_tests::sqr, Object::List{}, 1).get(60.0), Object(Object::List{}));
}

/// _TestPool.test_async and test_async_timeout ('threads').
TEST(TestDummyPool, AsyncTimeout) {
  auto pool = dummy::Pool(3);
  auto res = pool.apply_async(pool_tests::sqr_wait, {6, 1.0});
  EXPECT_THROW(res.get(0.01), mp::TimeoutError);
  EXPECT_FALSE(res.ready());
  EXPECT_THROW(res.successful(), mp::ValueError);
  EXPECT_EQ(res.get(60.0), Object(36));
  EXPECT_TRUE(res.ready());
  EXPECT_TRUE(res.successful());
}

/// _TestPool.test_imap ('threads').
TEST(TestDummyPool, Imap) {
  auto pool = dummy::Pool(4);
  Object::List got;
  for (const Object& r : pool.imap(pool_tests::sqr, range(10))) got.push_back(r);
  EXPECT_EQ(got, squares(10));
  auto it = pool.imap(pool_tests::sqr, range(1000), 100);
  for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(it.next(60.0), Object(i * i));
  EXPECT_EQ(it.next(60.0), std::nullopt);
}

/// _TestPool.test_imap_unordered ('threads').
TEST(TestDummyPool, ImapUnordered) {
  auto pool = dummy::Pool(4);
  std::multiset<std::int64_t> expected;
  for (std::int64_t i = 0; i < 100; ++i) expected.insert(i * i);
  for (int chunksize : {1, 7}) {
    std::multiset<std::int64_t> got;
    for (const Object& r : pool.imap_unordered(pool_tests::sqr, range(100), chunksize)) {
      got.insert(r.as<std::int64_t>());
    }
    EXPECT_EQ(got, expected) << "chunksize " << chunksize;
  }
}

/// _TestPool.test_make_pool ('threads').
TEST(TestDummyPool, MakePool) {
  EXPECT_THROW(dummy::Pool(-1), mp::ValueError);
  EXPECT_THROW(dummy::Pool(0), mp::ValueError);
  auto p = dummy::Pool(3);
  EXPECT_EQ(p._pool_size(), 3u);
  EXPECT_TRUE(p._worker_pids().empty());  // threads have no pid
  p.close();
  p.join();
}

/// _TestPool.test_terminate ('threads'): terminate() with a long queue of
/// tasks (chunksize=1, as CPython's test) returns without running them all,
/// and join() does not hang.  A thread cannot be killed: each worker ends
/// the task it is running (a whole chunk, with a larger chunksize) first.
TEST(TestDummyPool, Terminate) {
  auto p = dummy::Pool(4);
  Object::List args;
  for (int i = 0; i < 10000; ++i) args.emplace_back(Object::Tuple{{1, 0.01}});
  auto result = p.starmap_async(pool_tests::sqr_wait, args, 1);
  double start = mp::os::monotonic();
  p.terminate();
  p.join();
  EXPECT_LT(mp::os::monotonic() - start, 20.0);  // all 10000 x 10 ms / 4 threads: 25 s
  EXPECT_EQ(p._state(), "TERMINATE");
  EXPECT_FALSE(result.ready());
}

/// _TestPool.test_empty_iterable ('threads').
TEST(TestDummyPool, EmptyIterable) {
  auto p = dummy::Pool(1);
  EXPECT_EQ(p.map(pool_tests::sqr, Object::List{}), Object::List{});
  EXPECT_EQ(p.starmap(pool_tests::mul, Object::List{}), Object::List{});
  EXPECT_EQ(p.map_async(pool_tests::sqr, Object::List{}).get(60.0), Object(Object::List{}));
  Object::List none;
  for (const Object& r : p.imap(pool_tests::sqr, Object::List{})) none.push_back(r);
  for (const Object& r : p.imap_unordered(pool_tests::sqr, Object::List{})) none.push_back(r);
  EXPECT_TRUE(none.empty());
  p.close();
  p.join();
}

/// _TestPool.test_context ('threads'): a closed pool refuses work.
TEST(TestDummyPool, Context) {
  auto p = dummy::Pool(2);
  EXPECT_EQ(p.map(pool_tests::sqr, range(5)), squares(5));
  p.close();
  try {
    p.apply(pool_tests::sqr, {1});
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "Pool not running");
  }
  p.join();
  EXPECT_EQ(p._state(), "CLOSE");
}

/// _TestPool.test_traceback ('threads'): the task's exception reaches get()
/// with its type and message, and no remote traceback (not wrapped).
TEST(TestDummyPool, Traceback) {
  auto p = dummy::Pool(1);
  try {
    p.apply(pool_tests::raising, {7});
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "bad value 7");
    EXPECT_EQ(e.remote_traceback(), "");
  }
  // _TestPool.test_map_no_failfast's core: one failing chunk fails the map.
  EXPECT_THROW(p.map(pool_tests::raising, range(3)), mp::ValueError);
  EXPECT_EQ(p.apply(pool_tests::sqr, {3}), Object(9));
}

/// _TestPoolWorkerErrors.test_async_error_callback ('threads').
TEST(TestDummyPool, AsyncErrorCallback) {
  auto p = dummy::Pool(2);
  std::string seen;
  auto res = p.apply_async(pool_tests::raising, {1}, {}, [&](const std::exception& e) { seen = e.what(); });
  res.wait(60.0);
  EXPECT_TRUE(res.ready());
  EXPECT_EQ(seen, "bad value 1");
  EXPECT_FALSE(res.successful());
}

/// The workers are threads of this process: they see its memory, and the
/// initializer runs once in each.
TEST(TestDummyPool, WorkersShareMemory) {
  std::atomic<int> initialized{0};
  std::atomic<std::int64_t> total{0};
  auto p = dummy::Pool(3, [&](const mp::Args&) { initialized += 1; });
  p.map([&](const mp::Args& a) { total += a[0].as<std::int64_t>(); return Object(); }, range(101));
  EXPECT_EQ(total, 5050);
  p.close();
  p.join();
  EXPECT_EQ(initialized, 3);
}

/// The repr, as Python's ThreadPool's.
TEST(TestDummyPool, Repr) {
  auto p = dummy::Pool(2);
  EXPECT_EQ(p.repr(), "<multiprocessing.pool.ThreadPool state=RUN pool_size=2>");
  p.close();
  EXPECT_EQ(p.repr(), "<multiprocessing.pool.ThreadPool state=CLOSE pool_size=2>");
  p.join();
}

}  // namespace
}  // namespace mp_test
