// tests/test_pool.cpp — ports CPython's _TestPool, _TestPoolWorkerErrors and
// _TestPoolWorkerLifetime under every start method, plus the killed-worker
// behaviour the port adds; _TestPool runs with threads too (dummy.Pool, a
// ThreadPool), as CPython's WithThreadsTestPool does, and with a manager's Pool
// (a PoolProxy), as CPython's WithManagerTestPool does: the tests that both run
// are templates over the kind of pool (LocalPools, ManagerPools).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "support.hpp"
#include "with_manager.hpp"

namespace mp_test {

// AddressSanitizer's runtime opens fds of its own (to report, to symbolize):
// a test that leaves a process almost none cannot run under it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

using mp::Object;
using mp::pool::Pool;
using mp::pool::ThreadPool;

namespace pool_tests {

/// Python: sqr(x, wait=0.0).
std::int64_t sqr(std::int64_t x) { return x * x; }
std::int64_t sqr_wait(std::int64_t x, double wait) {
  mp::os::sleep(wait);
  return x * x;
}
/// Python: mul(x, y).
std::int64_t mul(std::int64_t x, std::int64_t y) { return x * y; }
short negate_short(short x) { return static_cast<short>(-x); }
/// x + 1, after a pause for x == 0: the map's first chunk comes back last.
std::int64_t slow_first(std::int64_t x) {
  if (x == 0) mp::os::sleep(0.3);
  return x + 1;
}
/// Python: raise_large_valuerror / raising(): a task that raises.
std::int64_t raising(std::int64_t x) { throw mp::ValueError("bad value " + std::to_string(x)); }
/// Python: int('a') in test_map_async_callbacks.
std::int64_t to_int(std::string s) {
  try {
    return std::stoll(s);
  } catch (const std::exception&) {
    throw mp::ValueError("invalid literal for int() with base 10: '" + s + "'");
  }
}
/// Python: os.getpid, for the worker lifetime tests.
std::int64_t getpid_task(std::int64_t) { return mp::os::getpid(); }
/// A task that kills its own worker (SIGKILL), to test what the pool does.
std::int64_t kill_self(std::int64_t) {
  ::kill(mp::os::getpid(), SIGKILL);
  mp::os::sleep(10);
  return 0;
}
/// Returns a value that cannot be pickled (a Lock outside spawning).
mp::synchronize::Lock unpicklable_result(std::int64_t) { return mp::synchronize::Lock(); }
/// Throws a C++ exception that has no Python twin.
std::int64_t out_of_range(std::int64_t x) { throw std::out_of_range("index " + std::to_string(x)); }
/// Python: TestInitializers: the initializer sets a shared value.
void set_value(mp::sharedctypes::Synchronized<int> value) { value.set_value(1); }
/// Python: _TestPoolWorkerLifetime.test_worker_finalization_via_atexit_handler:
/// a finalizer registered in the worker runs when the worker exits.
void register_exit_message(mp::connection::Connection& c) {
  auto fd = std::make_shared<mp::os::Fd>(::dup(c.fileno()));
  mp::util::Finalize::without_object([fd] { mp::connection::Connection(std::move(*fd)).send("worker finalized"); },
                                     10, "say goodbye");
}
/// A result of `n` bytes, to fill the result pipe.
std::string big_result(std::int64_t n) { return std::string(static_cast<std::size_t>(n), 'r'); }
/// Makes an empty file at `path`: a side effect the parent can see.
void touch(std::string path) {
  // Create (or truncate) the file; only its existence matters.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);  // close the descriptor open() gave us
}
/// TestStdinBadfiledescriptor._test_pool_in_process: a Pool made in a child.
void pool_in_child(mp::connection::Connection& c) {
  mp::pool::Pool pool(2);
  c.send(pool.map(sqr, std::vector<int>{1, 2, 3}));
  pool.close();
  pool.join();
}
/// TestPoolNotLeakOnFailure: with few fds left, a Pool(20) fails part way;
/// report the error and whether any worker was left behind.
void pool_out_of_fds(mp::connection::Connection& c) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  int highest = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) highest = fd;
  }
  limit.rlim_cur = static_cast<rlim_t>(highest + 16);  // room for a few workers, not 20
  ::setrlimit(RLIMIT_NOFILE, &limit);
  std::string what = "no error";
  try {
    mp::pool::Pool pool(20);
  } catch (const mp::OSError& e) {
    what = e.python_name();
  }
  c.send(what + ", children left: " + std::to_string(mp::active_children().size()));
}

}  // namespace pool_tests

MP_REGISTER_TARGET(pool_tests::sqr);
MP_REGISTER_TARGET(pool_tests::sqr_wait);
MP_REGISTER_TARGET(pool_tests::mul);
MP_REGISTER_TARGET(pool_tests::negate_short);
MP_REGISTER_TARGET(pool_tests::slow_first);
MP_REGISTER_TARGET(pool_tests::raising);
MP_REGISTER_TARGET(pool_tests::to_int);
MP_REGISTER_TARGET(pool_tests::getpid_task);
MP_REGISTER_TARGET(pool_tests::kill_self);
MP_REGISTER_TARGET(pool_tests::unpicklable_result);
MP_REGISTER_TARGET(pool_tests::out_of_range);
MP_REGISTER_TARGET(pool_tests::set_value);
MP_REGISTER_TARGET(pool_tests::register_exit_message);
MP_REGISTER_TARGET(pool_tests::pool_in_child);
MP_REGISTER_TARGET(pool_tests::pool_out_of_fds);
MP_REGISTER_TARGET(pool_tests::big_result);
MP_REGISTER_TARGET(pool_tests::touch);

/// CPython's ProcessesMixin and ThreadsMixin for the shared _TestPool
/// bodies: self.Pool(processes) is a Pool, or for threads dummy.Pool's
/// ThreadPool.
struct LocalPools {
  static constexpr bool manager = false;
  bool threads = false;
  mp::pool::Pool Pool(int processes) const {
    return threads ? mp::pool::Pool(mp::dummy::Pool(processes)) : mp::pool::Pool(processes);
  }
};

/// CPython's ManagerMixin for them: self.Pool(processes) is the test's
/// manager's Pool, a PoolProxy.
struct ManagerPools {
  static constexpr bool manager = true;
  mp::managers::SyncManager* m = nullptr;
  mp::managers::PoolProxy Pool(int processes) const { return m->Pool(processes); }
};

/// Python: list(it) of an imap iterator: a local pool's, or a proxy's.
template <class It>
Object::List rest(It&& it) {
  Object::List out;
  for (const Object& r : it) out.push_back(r);
  return out;
}
Object::List rest(mp::managers::IteratorProxy&& it) { return it.rest(); }

/// CPython runs _TestPool with each processes mixin and with ThreadsMixin
/// (WithThreadsTestPool): the parameter is a start method, or "threads".
class TestPool : public WithStartMethod {
 protected:
  void SetUp() override {
    self.threads = threads();
    if (!threads()) WithStartMethod::SetUp();
  }
  bool threads() const { return GetParam() == "threads"; }
  /// Python: self.Pool(processes): a Pool, or for threads dummy.Pool's ThreadPool.
  Pool make_pool(int processes) const { return self.Pool(processes); }
  LocalPools self;
};

/// _TestPool with a manager's Pool (CPython's WithManagerTestPool).
class TestPoolManager : public WithManager {
 protected:
  void SetUp() override {
    WithManager::SetUp();
    self.m = &manager();
  }
  ManagerPools self;
};

Object::List squares(std::int64_t n) {
  Object::List out;
  for (std::int64_t i = 0; i < n; ++i) out.emplace_back(i * i);
  return out;
}
Object::List range(std::int64_t n) {
  Object::List out;
  for (std::int64_t i = 0; i < n; ++i) out.emplace_back(i);
  return out;
}

/// _TestPool.test_apply
template <class T>
void test_apply(const T& self) {
  auto pool = self.Pool(4);
  EXPECT_EQ(pool.apply(pool_tests::sqr, {5}), Object(25));
  EXPECT_EQ(pool.apply(pool_tests::mul, {3, 4}), Object(12));
}

/// _TestPool.test_map
template <class T>
void test_map(const T& self) {
  auto pool = self.Pool(4);
  EXPECT_EQ(pool.map(pool_tests::sqr, range(10)), squares(10));
  EXPECT_EQ(pool.map(pool_tests::sqr, range(100), 20), squares(100));
  if constexpr (!T::manager) {  // a typed vector: the local Pool's map only
    EXPECT_EQ(pool.map(pool_tests::sqr, std::vector<int>{1, 2, 3}), (Object::List{1, 4, 9}));
  }
}

/// Port only: a process pool maps a plain int function over ints the quick
/// way (each chunk read into a vector, the function called in a loop, see the
/// pool walkthrough); the results are those of the general path for every
/// chunk size around the pickle's batches (1 to 3 items cross as short tuples,
/// not as runs), for negative and 32-bit ints and ints too large for 32 bits,
/// and the errors too: an int that does not fit the function's parameter, an
/// exception from the function, a chunk that is not all ints.
TEST_P(TestPool, MapIntsQuickPath) {
  Pool pool = make_pool(2);
  Object::List items;
  for (std::int64_t i = 0; i < 2500; ++i) items.emplace_back((i % 3 == 0 ? -1 : 1) * i * 40000);
  Object::List expected;
  for (const Object& x : items) expected.emplace_back(x.as<std::int64_t>() * x.as<std::int64_t>());
  for (int chunksize : {1, 2, 3, 4, 999, 1000, 1001, 2500}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunksize));
    Object::List small(items.begin(), items.begin() + 30);
    EXPECT_EQ(pool.map(pool_tests::sqr, small, chunksize), Object::List(expected.begin(), expected.begin() + 30));
    EXPECT_EQ(pool.map(pool_tests::negate_short, range(300), chunksize),
              pool.starmap(pool_tests::mul, [] {
                Object::List pairs;
                for (std::int64_t i = 0; i < 300; ++i) pairs.emplace_back(Object::Tuple{{i, -1}});
                return pairs;
              }(), chunksize));
  }
  EXPECT_EQ(pool.map(pool_tests::sqr, Object::List(items.begin(), items.begin() + 1000)),
            Object::List(expected.begin(), expected.begin() + 1000));
  // map_async, with its callback, and imap in chunks.
  Object::List got;
  auto async = pool.map_async(pool_tests::sqr, range(100), 7, [&got](const Object& r) { got = r.as<Object::List>(); });
  EXPECT_EQ(async.get(60.0), Object(squares(100)));
  EXPECT_EQ(got, squares(100));
  Object::List imapped;
  for (const Object& r : pool.imap(pool_tests::sqr, range(50), 8)) imapped.push_back(r);
  EXPECT_EQ(imapped, squares(50));
  // 40000 does not fit a short: the general path's ValueError.
  EXPECT_THROW(pool.map(pool_tests::negate_short, Object::List{1, 2, 3, 4, 40000}, 5), mp::ValueError);
  EXPECT_THROW(pool.map(pool_tests::raising, range(100), 10), mp::ValueError);
  Object::List mixed = range(10);
  mixed[5] = Object("five");
  EXPECT_THROW(pool.map(pool_tests::sqr, mixed, 10), mp::TypeError);
  EXPECT_EQ(pool.map(pool_tests::to_int, Object::List{"1", "22", "333", "4", "5"}, 5), (Object::List{1, 22, 333, 4, 5}));
}

/// Port only: a map's result list is built chunk by chunk as the chunks come
/// in, each once every chunk before it is in; when the first chunk comes back
/// last (its first item takes a while), and when some chunks take the quick
/// way for ints and others not (one holds an int beyond 32 bits), the list is
/// still in the order of the items, and the callback gets it whole.
TEST_P(TestPool, MapChunksArriveOutOfOrder) {
  Pool pool = make_pool(2);
  Object::List items = range(1000);
  items[555] = Object(std::int64_t{1} << 40);
  Object::List expected;
  for (const Object& x : items) expected.emplace_back(x.as<std::int64_t>() + 1);
  EXPECT_EQ(pool.map(pool_tests::slow_first, items, 10), expected);
  Object::List got;
  auto async = pool.map_async(pool_tests::slow_first, items, 100, [&got](const Object& r) { got = r.as<Object::List>(); });
  EXPECT_EQ(async.get(60.0), Object(expected));
  EXPECT_EQ(got, expected);
}

/// Port only: the pool reads every message into one buffer per reader
/// (each worker's tasks, the parent's results), whose room is kept between
/// messages up to 1 MiB: results of 3 MiB and 2 MiB and tasks of 0.5 and
/// 1.4 MiB between small ones and maps of ints, each after a larger or a
/// smaller message, all arrive whole.
TEST_P(TestPool, MessagesOfEverySizeThroughOneBuffer) {
  Pool pool = make_pool(2);
  Object::List items = range(3000);
  const std::int64_t big = std::int64_t{3} << 20;
  EXPECT_EQ(pool.apply(pool_tests::big_result, {big}), Object(std::string(static_cast<std::size_t>(big), 'r')));
  EXPECT_EQ(pool.apply(pool_tests::big_result, {10}), Object(std::string(10, 'r')));
  EXPECT_EQ(pool.map(pool_tests::sqr, items, 100), squares(3000));
  EXPECT_EQ(pool.apply(pool_tests::big_result, {big - (std::int64_t{1} << 20)}),
            Object(std::string(static_cast<std::size_t>(big - (std::int64_t{1} << 20)), 'r')));
  EXPECT_EQ(pool.map(pool_tests::sqr, items), squares(3000));
  // Tasks of about 0.5 MiB and 1.4 MiB: 7 and 20 strings of 70 000 digits.
  Object::List digits(40, Object(std::string(70000, '0') + "7"));
  EXPECT_EQ(pool.map(pool_tests::to_int, digits, 7), Object::List(40, Object(7)));
  EXPECT_EQ(pool.map(pool_tests::to_int, digits, 20), Object::List(40, Object(7)));
  EXPECT_EQ(pool.map(pool_tests::sqr, items, 1000), squares(3000));
}

/// _TestPool.test_starmap and test_starmap_async
template <class T>
void test_starmap(const T& self) {
  auto pool = self.Pool(4);
  Object::List tuples, expected;
  for (std::int64_t i = 0; i < 100; ++i) {
    tuples.emplace_back(Object::Tuple{{i, 99 - i}});
    expected.emplace_back(i * (99 - i));
  }
  EXPECT_EQ(pool.starmap(pool_tests::mul, tuples), expected);
  EXPECT_EQ(pool.starmap(pool_tests::mul, tuples, 20), expected);
  EXPECT_EQ(pool.starmap_async(pool_tests::mul, tuples).get(), Object(expected));
}

/// _TestPool.test_map_async
template <class T>
void test_map_async(const T& self) {
  auto pool = self.Pool(4);
  EXPECT_EQ(pool.map_async(pool_tests::sqr, range(10)).get(), Object(squares(10)));
}

TEST_P(TestPool, Apply) { test_apply(self); }
TEST_P(TestPoolManager, Apply) { test_apply(self); }
TEST_P(TestPool, Map) { test_map(self); }
TEST_P(TestPoolManager, Map) { test_map(self); }
TEST_P(TestPool, Starmap) { test_starmap(self); }
TEST_P(TestPoolManager, Starmap) { test_starmap(self); }
TEST_P(TestPoolManager, MapAsync) { test_map_async(self); }

/// _TestPool.test_map_async and test_map_async_callbacks (the manager's
/// PoolProxy takes no callbacks: they could not cross to the server)
TEST_P(TestPool, MapAsyncCallbacks) {
  test_map_async(self);
  Pool pool = make_pool(4);
  std::vector<std::string> calls;
  pool.map_async(pool_tests::to_int, Object::List{"1"},
                 std::nullopt, [&](const Object& r) { calls.push_back("result " + r.repr()); },
                 [&](const std::exception& e) { calls.push_back(std::string("error ") + e.what()); })
      .wait();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], "result [1]");
  pool.map_async(pool_tests::to_int, Object::List{"a"}, std::nullopt,
                 [&](const Object& r) { calls.push_back("result " + r.repr()); },
                 [&](const std::exception& e) {
                   EXPECT_NE(dynamic_cast<const mp::ValueError*>(&e), nullptr);
                   calls.push_back(std::string("error ") + e.what());
                 })
      .wait();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1], "error invalid literal for int() with base 10: 'a'");
}

/// _TestPool.test_map_unplicklable: a task that cannot be pickled fails its
/// result, it does not hang.  (A lambda cannot cross by name: to a worker,
/// or for the manager's pool to the server.)
template <class T>
void test_map_unpicklable(const T& self) {
  auto pool = self.Pool(2);
  auto lambda = [](const mp::Args& a) { return a[0]; };
  EXPECT_THROW(pool.map(lambda, range(10)), mp::PicklingError);
  EXPECT_THROW(pool.apply(lambda, {1}), mp::PicklingError);
  EXPECT_EQ(pool.apply(pool_tests::sqr, {3}), Object(9));  // the pool still works
}

/// _TestPool.test_map_chunksize: an empty list with a chunksize is ready at once.
template <class T>
void test_map_chunksize(const T& self) {
  auto pool = self.Pool(2);
  EXPECT_EQ(pool.map_async(pool_tests::sqr, Object::List{}, 1).get(60.0), Object(Object::List{}));
}

/// _TestPool.test_async_timeout
template <class T>
void test_async_timeout(const T& self) {
  auto pool = self.Pool(3);
  auto res = pool.apply_async(pool_tests::sqr_wait, {6, 1.0});
  EXPECT_THROW(res.get(0.01), mp::TimeoutError);
  EXPECT_FALSE(res.ready());
  EXPECT_THROW(res.successful(), mp::ValueError);
  EXPECT_EQ(res.get(60.0), Object(36));
  EXPECT_TRUE(res.successful());
}

/// _TestPool.test_imap
template <class T>
void test_imap(const T& self) {
  auto pool = self.Pool(4);
  EXPECT_EQ(rest(pool.imap(pool_tests::sqr, range(10))), squares(10));
  auto it = pool.imap(pool_tests::sqr, range(10));
  for (std::int64_t i = 0; i < 10; ++i) ASSERT_EQ(it.next(), Object(i * i));
  EXPECT_EQ(it.next(), std::nullopt);
  auto it2 = pool.imap(pool_tests::sqr, range(1000), 100);
  for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(it2.next(), Object(i * i));
  EXPECT_EQ(it2.next(), std::nullopt);
}

/// _TestPool.test_imap_unordered
template <class T>
void test_imap_unordered(const T& self) {
  auto pool = self.Pool(4);
  std::multiset<std::int64_t> got, expected;
  for (const Object& r : rest(pool.imap_unordered(pool_tests::sqr, range(100)))) got.insert(r.template as<std::int64_t>());
  for (std::int64_t i = 0; i < 100; ++i) expected.insert(i * i);
  EXPECT_EQ(got, expected);
  got.clear();
  for (const Object& r : rest(pool.imap_unordered(pool_tests::sqr, range(100), 7))) got.insert(r.template as<std::int64_t>());
  EXPECT_EQ(got, expected);
}

/// _TestPool.test_map_unplicklable
TEST_P(TestPool, MapUnpicklable) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  test_map_unpicklable(self);
}
TEST_P(TestPoolManager, MapUnpicklable) { test_map_unpicklable(self); }
/// _TestPool.test_map_chunksize
TEST_P(TestPool, MapChunksize) { test_map_chunksize(self); }
TEST_P(TestPoolManager, MapChunksize) { test_map_chunksize(self); }
/// _TestPool.test_async and test_async_timeout
TEST_P(TestPool, AsyncTimeout) { test_async_timeout(self); }
TEST_P(TestPoolManager, AsyncTimeout) { test_async_timeout(self); }
/// _TestPool.test_imap
TEST_P(TestPool, Imap) { test_imap(self); }
TEST_P(TestPoolManager, Imap) { test_imap(self); }
/// _TestPool.test_imap_unordered
TEST_P(TestPool, ImapUnordered) { test_imap_unordered(self); }
TEST_P(TestPoolManager, ImapUnordered) { test_imap_unordered(self); }

/// _TestPool.test_make_pool, for the manager: the server's ValueError comes
/// back as a RemoteError, as in Python.
TEST_P(TestPoolManager, MakePool) {
  EXPECT_THROW(self.Pool(-1), mp::managers::RemoteError);
  EXPECT_THROW(self.Pool(0), mp::managers::RemoteError);
}

/// _TestPool.test_make_pool
TEST_P(TestPool, MakePool) {
  EXPECT_THROW(make_pool(-1), mp::ValueError);
  EXPECT_THROW(make_pool(0), mp::ValueError);
  if (!threads()) {  // ThreadPool has no maxtasksperchild
    EXPECT_THROW(Pool(1, {}, {}, 0), mp::ValueError);
  }
  Pool p = make_pool(2);
  EXPECT_EQ(p._pool_size(), 2u);
  p.close();
  p.join();
}

/// _TestPool.test_terminate: terminate() with a long queue of long tasks;
/// join() then returns (the manager's pool: terminate() and join() as calls
/// to the server, which then refuses work).
template <class T>
void test_terminate(const T& self) {
  auto p = self.Pool(4);
  auto result = p.map_async(pool_tests::sqr_wait, [] {
    Object::List args;
    for (int i = 0; i < 10000; ++i) args.emplace_back(Object::Tuple{{1, 0.01}});
    return args;
  }());
  (void)result;
  p.terminate();
  p.join();  // no hang
  if constexpr (T::manager) {
    EXPECT_THROW(p.apply(pool_tests::sqr, {2}), mp::ValueError);  // "Pool not running"
  } else {
    EXPECT_EQ(p._state(), "TERMINATE");
  }
}

/// _TestPool.test_empty_iterable
template <class T>
void test_empty_iterable(const T& self) {
  auto p = self.Pool(1);
  EXPECT_EQ(p.map(pool_tests::sqr, Object::List{}), Object::List{});
  EXPECT_EQ(p.starmap(pool_tests::mul, Object::List{}), Object::List{});
  EXPECT_EQ(p.map_async(pool_tests::sqr, Object::List{}).get(), Object(Object::List{}));
  EXPECT_TRUE(rest(p.imap(pool_tests::sqr, Object::List{})).empty());
  EXPECT_TRUE(rest(p.imap_unordered(pool_tests::sqr, Object::List{})).empty());
  p.close();
  p.join();
}

/// _TestPool.test_terminate
TEST_P(TestPool, Terminate) { test_terminate(self); }
TEST_P(TestPoolManager, Terminate) { test_terminate(self); }
/// _TestPool.test_empty_iterable
TEST_P(TestPool, EmptyIterable) { test_empty_iterable(self); }
TEST_P(TestPoolManager, EmptyIterable) { test_empty_iterable(self); }

/// _TestPool.test_context: a closed pool refuses work.
TEST_P(TestPool, Context) {
  Pool p = make_pool(2);
  EXPECT_EQ(p.map(pool_tests::sqr, range(5)), squares(5));
  p.close();
  try {
    p.apply(pool_tests::sqr, {1});
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "Pool not running");
  }
  p.join();
}

/// _TestPool.test_traceback: the task's exception reaches get() with its type,
/// its message and the remote traceback as the cause (with threads: the
/// exception as thrown, no remote traceback).
TEST_P(TestPool, Traceback) {
  Pool p = make_pool(1);
  try {
    p.apply(pool_tests::raising, {7});
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "bad value 7");
    if (threads()) {
      EXPECT_EQ(e.remote_traceback(), "");  // a ThreadPool does not wrap exceptions
    } else {
      EXPECT_NE(e.remote_traceback().find("Traceback (most recent call last)"), std::string::npos);
      EXPECT_NE(e.remote_traceback().find("ValueError: bad value 7"), std::string::npos);
    }
  }
  // _TestPool.test_map_no_failfast's core: one failing chunk fails the map.
  EXPECT_THROW(p.map(pool_tests::raising, range(3)), mp::ValueError);
}

/// _TestPoolWorkerErrors.test_async_error_callback
TEST_P(TestPool, AsyncErrorCallback) {
  Pool p = make_pool(2);
  std::string seen;
  auto res = p.apply_async(pool_tests::raising, {1}, {}, [&](const std::exception& e) { seen = e.what(); });
  res.wait();
  EXPECT_EQ(seen, "bad value 1");
  EXPECT_FALSE(res.successful());
}

/// _TestPoolWorkerErrors.test_unpickleable_result: MaybeEncodingError.
TEST_P(TestPool, UnpickleableResult) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  Pool p = make_pool(2);
  // Python: 20 rounds, so that a worker lost to an encoding error would show.
  for (int iteration = 0; iteration < 20; ++iteration) {
    try {
      p.apply(pool_tests::unpicklable_result, {1});
      ADD_FAILURE() << "no MaybeEncodingError";
    } catch (const mp::pool::MaybeEncodingError& e) {
      EXPECT_NE(std::string(e.what()).find("Error sending result: '"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("Reason: 'RuntimeError("), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(p.apply(pool_tests::sqr, {2}), Object(4));
  // Python: close() and join(), so that each worker ends its loop and runs
  // its finalizers: the Lock a worker made is unlinked by the worker itself.
  // (terminate() could kill a forkserver worker between sending the error
  // and dropping the Lock, leaving the name to the resource tracker.)
  p.close();
  p.join();
}

/// _TestPoolWorkerLifetime.test_pool_worker_lifetime: workers retire after
/// maxtasksperchild tasks and are replaced.
TEST_P(TestPool, WorkerLifetime) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  Pool p(3, {}, {}, 10);
  EXPECT_EQ(p._pool_size(), 3u);
  auto before = p._worker_pids();
  std::vector<mp::pool::ApplyResult> results;
  for (std::int64_t i = 0; i < 100; ++i) results.push_back(p.apply_async(pool_tests::sqr, {i}));
  for (std::int64_t i = 0; i < 100; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(60.0), Object(i * i));
  // Refill the pool: the pids change as workers retire.
  EXPECT_TRUE(wait_until([&] {
    auto now = p._worker_pids();
    return now.size() == 3 && now != before;
  }));
  p.close();
  p.join();
}

/// Beyond CPython: a worker killed while it runs a task fails that task with
/// WorkerLostError naming the worker and its exit code; the pool replaces it
/// and serves the other tasks.
TEST_P(TestPool, KilledWorkerFailsItsTask) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  Pool p = make_pool(2);
  auto doomed = p.apply_async(pool_tests::kill_self, {0});
  try {
    doomed.get(60.0);
    ADD_FAILURE() << "no WorkerLostError";
  } catch (const mp::pool::WorkerLostError& e) {
    EXPECT_NE(std::string(e.what()).find("exitcode -9 (SIGKILL)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("PoolWorker"), std::string::npos) << e.what();
  }
  EXPECT_EQ(p.map(pool_tests::sqr, range(20)), squares(20));
  EXPECT_TRUE(wait_until([&] { return p._worker_pids().size() == 2; }));
  // A map with a chunk whose worker dies fails that map only.
  EXPECT_THROW(p.map(pool_tests::kill_self, range(1)), mp::pool::WorkerLostError);
  EXPECT_EQ(p.apply(pool_tests::sqr, {9}), Object(81));
  p.close();
  p.join();
}

/// The destructor terminates, as leaving `with Pool() as p:` does.
TEST_P(TestPool, DestructorTerminates) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  std::vector<pid_t> pids;
  {
    Pool p(2);
    pids = p._worker_pids();
    p.apply_async(pool_tests::sqr_wait, {1, 30.0});
  }
  for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0), 0);  // reaped, gone
}

/// The repr, as Python's.
TEST_P(TestPool, Repr) {
  Pool p = make_pool(2);
  std::string cls = threads() ? "ThreadPool" : "Pool";
  EXPECT_EQ(p.repr(), "<multiprocessing.pool." + cls + " state=RUN pool_size=2>");
  p.close();
  EXPECT_EQ(p.repr(), "<multiprocessing.pool." + cls + " state=CLOSE pool_size=2>");
  p.join();
}

/// _TestPool.test_async: the result comes after the task's time.
template <class T>
void test_async(const T& self) {
  auto pool = self.Pool(2);
  auto t0 = std::chrono::steady_clock::now();
  auto res = pool.apply_async(pool_tests::sqr_wait, {7, 0.1});
  EXPECT_EQ(res.get(), Object(49));
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.09);
}
TEST_P(TestPool, Async) { test_async(self); }
TEST_P(TestPoolManager, Async) { test_async(self); }

/// _TestPool.test_wrapped_exception: an exception with no Python twin keeps
/// its C++ class name (RemoteException) and its message, through a manager's
/// pool too.
template <class T>
void test_wrapped_exception(const T& self) {
  auto p = self.Pool(1);
  try {
    p.apply(pool_tests::out_of_range, {3});
    ADD_FAILURE() << "no exception";
  } catch (const mp::RemoteException& e) {
    EXPECT_STREQ(e.python_name(), "std::out_of_range");
    EXPECT_STREQ(e.what(), "index 3");
  } catch (const mp::Exception& e) {
    ADD_FAILURE() << e.python_name() << ": " << e.what();
  }
}
TEST_P(TestPool, WrappedException) { test_wrapped_exception(self); }
TEST_P(TestPoolManager, WrappedException) { test_wrapped_exception(self); }

/// _TestPool.test_map_no_failfast: a failing task does not stop the map's
/// other tasks, and close() + join() then return (Issue #23992).
template <class T>
void test_map_no_failfast(const T& self) {
  auto p = self.Pool(2);
  Object::List items;
  for (int i = 0; i < 20; ++i) items.emplace_back(Object::Tuple{{i, 0.01}});
  auto ok = p.starmap_async(pool_tests::sqr_wait, items, 1);
  EXPECT_THROW(p.map(pool_tests::raising, range(4), 1), mp::ValueError);
  EXPECT_EQ(ok.get(60.0).template as<Object::List>().size(), 20u);
  p.close();
  p.join();
}
TEST_P(TestPool, MapNoFailfast) { test_map_no_failfast(self); }
TEST_P(TestPoolManager, MapNoFailfast) { test_map_no_failfast(self); }

/// _TestPoolWorkerLifetime.test_pool_worker_lifetime_early_close: workers of
/// maxtasksperchild=1 still finish what was queued before close().
TEST_P(TestPool, WorkerLifetimeEarlyClose) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  Pool p(1, {}, {}, 1);
  std::vector<mp::pool::ApplyResult> results;
  for (std::int64_t i = 0; i < 6; ++i) results.push_back(p.apply_async(pool_tests::sqr_wait, {i, 0.01}));
  p.close();
  p.join();
  for (std::int64_t i = 0; i < 6; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), Object(i * i));
}

/// _TestPoolWorkerLifetime.test_pool_maxtasksperchild_invalid
TEST_P(TestPool, PoolMaxtasksperchildInvalid) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  for (int bad : {0, -1}) {
    try {
      Pool p(3, {}, {}, bad);
      ADD_FAILURE() << "no ValueError for " << bad;
    } catch (const mp::ValueError& e) {
      EXPECT_STREQ(e.what(), "maxtasksperchild must be a positive int or None");
    }
  }
}

/// _TestPoolWorkerLifetime.test_worker_finalization_via_atexit_handler_of_multiprocessing:
/// a worker runs its finalizers when it exits.
TEST_P(TestPool, WorkerFinalizationViaAtexitHandlerOfMultiprocessing) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  auto [r, w] = mp::Pipe(false);
  {
    Pool p(1, pool_tests::register_exit_message, {w});
    w.close();
    EXPECT_EQ(p.apply(pool_tests::sqr, {2}), Object(4));
    p.close();
    p.join();
  }
  ASSERT_TRUE(r.poll(60.0));
  EXPECT_EQ(r.recv(), Object("worker finalized"));
}

/// TestInitializers.test_pool_initializer: initializer(*initargs) runs in each worker.
TEST_P(TestPool, PoolInitializer) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  PristineHeap heap;
  auto value = mp::Value<int>(0);
  Pool p(1, pool_tests::set_value, {value});
  p.close();
  p.join();
  EXPECT_EQ(value.value(), 1);
}

/// TestStdinBadfiledescriptor.test_pool_in_process: a child process makes a Pool.
TEST_P(TestPool, PoolInProcess) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  auto [r, w] = mp::Pipe(false);
  auto child = mp::get_context().Process({.target = pool_tests::pool_in_child, .args = {w}});
  child->start();
  w.close();
  EXPECT_EQ(r.recv(), Object(Object::List{1, 4, 9}));
  join_process(*child);
  EXPECT_EQ(child->exitcode(), 0);
}

/// TestPoolNotLeakOnFailure.test_release_unused_processes: when starting a
/// worker fails, the workers already started are terminated and reaped.
TEST_P(TestPool, ReleaseUnusedProcesses) {
  if (threads()) GTEST_SKIP() << "test not appropriate for threads";  // Python: skipTest
  if (GetParam() == "fork") GTEST_SKIP() << "fork needs no fd per worker: run under spawn and forkserver";
  if (kUnderAddressSanitizer) GTEST_SKIP() << "the sanitizer's runtime needs fds of its own";
  auto [r, w] = mp::Pipe(false);
  auto child = mp::get_context().Process({.target = pool_tests::pool_out_of_fds, .args = {w}});
  child->start();
  w.close();
  std::string report = r.recv().as<std::string>();
  EXPECT_NE(report.find("children left: 0"), std::string::npos) << report;
  EXPECT_EQ(report.find("no error"), std::string::npos) << report;
  join_process(*child);
}

/// Port only: a caller waiting in get() reads the results itself when nobody
/// else does (see the pool walkthrough).  Many threads waiting at once, each
/// for its own results, with and without a timeout, all get theirs.
TEST_P(TestPool, ManyThreadsWaitOnDifferentResults) {
  Pool p = make_pool(2);
  constexpr int kThreads = 6, kCalls = 40;
  std::atomic<int> wrong{0}, timeouts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kCalls; ++k) {
        std::int64_t x = t * 1000 + k;
        auto r = p.apply_async(pool_tests::sqr, {x});
        try {
          // Odd threads give a (generous) timeout: their wait polls with it.
          Object got = t % 2 == 1 ? r.get(60.0) : r.get();
          if (got != Object(x * x)) ++wrong;
        } catch (const mp::TimeoutError&) {
          ++timeouts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(timeouts, 0);
  p.close();
  p.join();
}

/// Port only: while one caller reads the results (waiting for a slow task),
/// another's get(timeout) still times out on time, and then both get theirs.
TEST_P(TestPool, GetTimeoutWhileAnotherCallerReads) {
  Pool p = make_pool(2);
  auto slow = p.apply_async(pool_tests::sqr_wait, {3, 1.0});
  std::thread reader([&] { EXPECT_EQ(slow.get(60.0), Object(9)); });
  auto other = p.apply_async(pool_tests::sqr_wait, {4, 1.0});
  double t0 = mp::os::monotonic();
  EXPECT_THROW(other.get(0.05), mp::TimeoutError);
  EXPECT_LT(mp::os::monotonic() - t0, 0.9);  // before the task could end
  EXPECT_EQ(other.get(60.0), Object(16));
  reader.join();
  p.close();
  p.join();
}

/// Python runs callbacks in the result handler thread: still so when the
/// caller waiting in get() reads the results itself.
TEST_P(TestPool, CallbackRunsInResultHandlerThread) {
  Pool p = make_pool(2);
  std::mutex m;
  std::thread::id callback_thread, error_thread;
  auto r = p.apply_async(pool_tests::sqr, {5}, [&](const Object&) {
    std::lock_guard lock(m);
    callback_thread = std::this_thread::get_id();
  });
  auto e = p.apply_async(pool_tests::raising, {1}, {}, [&](const std::exception&) {
    std::lock_guard lock(m);
    error_thread = std::this_thread::get_id();
  });
  // A plain result waited for alongside: its caller may read the others'.
  EXPECT_EQ(p.apply_async(pool_tests::sqr, {6}).get(60.0), Object(36));
  EXPECT_EQ(r.get(60.0), Object(25));
  EXPECT_THROW(e.get(60.0), mp::ValueError);
  std::lock_guard lock(m);
  EXPECT_NE(callback_thread, std::thread::id());
  EXPECT_NE(callback_thread, std::this_thread::get_id());
  EXPECT_NE(error_thread, std::thread::id());
  EXPECT_NE(error_thread, std::this_thread::get_id());
  p.close();
  p.join();
}

/// Port only: a result that nobody waits for still arrives: ready() turns
/// true without get(), as in Python, where the result handler reads it.
TEST_P(TestPool, ResultReadyWithoutGet) {
  Pool p = make_pool(2);
  auto r = p.apply_async(pool_tests::sqr, {7});
  EXPECT_TRUE(wait_until([&] { return r.ready(); }));
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.get(), Object(49));
  p.close();
  p.join();
}

/// Port only: results nobody collects do not fill the result pipe for good
/// (the workers would block writing them): 40 results of 64 KiB, two and a
/// half times the pool's result pipe (1 MiB), all become ready without a get().
TEST_P(TestPool, UncollectedResultsDoNotBlockWorkers) {
  Pool p = make_pool(2);
  std::vector<mp::pool::ApplyResult> results;
  for (int i = 0; i < 40; ++i) results.push_back(p.apply_async(pool_tests::big_result, {65536}));
  EXPECT_TRUE(wait_until([&] {
    return std::all_of(results.begin(), results.end(), [](const auto& r) { return r.ready(); });
  }));
  EXPECT_EQ(results.back().get(), Object(std::string(65536, 'r')));
  p.close();
  p.join();
}

/// Port only: a result that has arrived is ready() at once, and get(0)
/// returns it, though nobody waited in get() when the worker sent it (the
/// result handler reads such results only after a 10 ms tick).  One worker
/// runs sqr, then touch: once touch's file exists, the worker has sent sqr's
/// result already.  Twenty rounds, ready() asked first in the even ones and
/// get(0) in the odd ones; each must also succeed within 5 s in any case.
TEST_P(TestPool, ResultReadyAsSoonAsItArrives) {
  Pool p = make_pool(1);
  const std::string path = "/tmp/mp_test_pool_ready_" + std::to_string(mp::os::getpid());
  const int rounds = 20;
  int at_once = 0;
  for (int round = 0; round < rounds; ++round) {
    auto r = p.apply_async(pool_tests::sqr, {round});
    auto touched = p.apply_async(pool_tests::touch, {path});
    double deadline = mp::os::monotonic() + 5.0;
    // Look for the file every millisecond, for at most 5 s.
    while (::access(path.c_str(), F_OK) != 0 && mp::os::monotonic() < deadline) mp::os::sleep(0.001);
    ASSERT_EQ(::unlink(path.c_str()), 0) << "touch() did not run within 5 s";  // remove the file
    if (round % 2 == 0) {
      at_once += r.ready() ? 1 : 0;
    } else {
      try {
        EXPECT_EQ(r.get(0.0), Object(round * round));
        ++at_once;
      } catch (const mp::TimeoutError&) {
      }
    }
    EXPECT_TRUE(wait_until([&] { return r.ready(); }, 5.0));
    EXPECT_EQ(r.get(0.0), Object(round * round));
    EXPECT_TRUE(touched.get(5.0).is_none());
  }
  // A ThreadPool's result handler reads every result, as in CPython: it may
  // not have set the result yet when the file appears.  A process pool's
  // result is read by the ready()/get(0) call itself, so only a rare race
  // with the result handler's own look at the pipe may make a round late.
  if (!threads()) {
    EXPECT_GE(at_once, rounds * 3 / 4);
  }
  p.close();
  p.join();
}

/// Port only: terminate() while a caller waits in get() (and reads the
/// result pipe) returns at once; the caller's result stays unready, as in
/// Python, and its get(timeout) times out.
TEST_P(TestPool, TerminateWhileCallerWaits) {
  if (threads()) GTEST_SKIP() << "a thread cannot be terminated: terminate() waits for its task";
  Pool p = make_pool(2);
  auto r = p.apply_async(pool_tests::sqr_wait, {2, 30.0});
  std::atomic<bool> timed_out{false};
  std::thread waiter([&] {
    try {
      r.get(3.0);
    } catch (const mp::TimeoutError&) {
      timed_out = true;
    }
  });
  mp::os::sleep(0.2);  // the waiter is (most likely) reading by now
  double t0 = mp::os::monotonic();
  p.terminate();
  EXPECT_LT(mp::os::monotonic() - t0, 20.0);  // not the task's 30 s
  waiter.join();
  EXPECT_TRUE(timed_out);
  EXPECT_FALSE(r.ready());
  p.join();
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestPool, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithThreads, TestPool, ::testing::Values("threads"), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestPoolManager, ::testing::ValuesIn(start_methods()), method_name);

/// The same functions on ThreadPool (CPython's WithThreadsTestPool), and a
/// lambda, which a ThreadPool accepts.
TEST(TestThreadPool, Basics) {
  ThreadPool p(4);
  EXPECT_EQ(p.apply(pool_tests::sqr, {5}), Object(25));
  EXPECT_EQ(p.map(pool_tests::sqr, range(100), 7), squares(100));
  int offset = 10;
  EXPECT_EQ(p.apply([offset](const mp::Args& a) { return a[0].as<std::int64_t>() + offset; }, {1}), Object(11));
  EXPECT_THROW(p.apply(pool_tests::raising, {1}), mp::ValueError);
  EXPECT_EQ(p.repr(), "<multiprocessing.pool.ThreadPool state=RUN pool_size=4>");
  p.close();
  p.join();
}

}  // namespace mp_test
