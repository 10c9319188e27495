// tests/test_queues.cpp — ports CPython's _TestQueue, _TestSimpleQueue,
// TestSimpleQueue and the queue feeder tests, under every start method.
#include <atomic>
#include <set>

#include "support.hpp"

namespace mp_test {

using mp::connection::Connection;
using mp::queues::Empty;
using mp::queues::Full;

namespace queue_tests {

/// Python: _TestQueue._test_put: put what the parent waits for.
void put_range(mp::queues::Queue q, int n) {
  for (int i = 0; i < n; ++i) q.put(std::int64_t{i});
}

/// A child that puts one item and exits at once: the feeder must be flushed
/// at exit (Python: _exit_function joins the feeder thread).
void put_and_exit(mp::queues::Queue q, std::string item) { q.put(item); }

/// Python: _TestQueue._test_get: get what the parent puts, send it back.
void echo_from_queue(mp::queues::Queue q, Connection& c, int n) {
  for (int i = 0; i < n; ++i) c.send(q.get(true, 60.0));
}

/// Python: _TestQueue._test_task_done: take items until None, marking each done.
void joinable_worker(mp::queues::JoinableQueue q) {
  while (true) {
    mp::Object item = q.get();
    q.task_done();
    if (item.is_none()) break;
  }
}

/// Python: _TestSimpleQueue._test_empty: report what the parent put.
void simple_child(mp::queues::SimpleQueue q, mp::queues::SimpleQueue back) {
  back.put(q.get().as<std::int64_t>() * 2);
}

}  // namespace queue_tests

MP_REGISTER_TARGET(queue_tests::put_range);
MP_REGISTER_TARGET(queue_tests::put_and_exit);
MP_REGISTER_TARGET(queue_tests::echo_from_queue);
MP_REGISTER_TARGET(queue_tests::joinable_worker);
MP_REGISTER_TARGET(queue_tests::simple_child);

class TestQueue : public WithStartMethod {};
class TestSimpleQueue : public WithStartMethod {};

/// _TestQueue.test_put (the in-process part): maxsize, full, qsize, Full.
TEST_P(TestQueue, Put) {
  auto q = mp::Queue(6);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  q.put(std::int64_t{1});
  q.put(std::int64_t{2}, true);
  q.put(std::int64_t{3}, true, std::nullopt);
  q.put(std::int64_t{4}, false);
  q.put(std::int64_t{5}, false, std::nullopt);
  q.put_nowait(std::int64_t{6});
  EXPECT_EQ(q.qsize(), 6);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put(std::int64_t{7}, false), Full);
  EXPECT_THROW(q.put(std::int64_t{7}, true, 0.05), Full);
  EXPECT_THROW(q.put_nowait(std::int64_t{7}), Full);
  for (std::int64_t i = 1; i <= 6; ++i) EXPECT_EQ(q.get().as<std::int64_t>(), i);
  EXPECT_EQ(q.qsize(), 0);
  EXPECT_THROW(q.get(false), Empty);
  EXPECT_THROW(q.get(true, 0.05), Empty);
  q.close();
  q.join_thread();
}

/// _TestQueue.test_get: items put by a child, read by the parent in order.
TEST_P(TestQueue, Get) {
  auto q = mp::Queue();
  auto p = mp::get_context().Process({.target = queue_tests::put_range, .args = {q, 5}});
  p->start();
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(q.get(true, 60.0).as<std::int64_t>(), i);
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
  EXPECT_THROW(q.get_nowait(), Empty);
}

/// Items put by the parent reach a child; values of several types survive.
TEST_P(TestQueue, ParentToChild) {
  auto q = mp::Queue();
  auto [r, w] = mp::Pipe(false);
  auto p = mp::get_context().Process({.target = queue_tests::echo_from_queue, .args = {q, w, 3}});
  p->start();
  w.close();
  q.put("text");
  q.put(mp::Object::List{1, 2.5, mp::None{}});
  q.put(mp::Bytes("\x00\x01"));
  EXPECT_EQ(r.recv(), mp::Object("text"));
  EXPECT_EQ(r.recv(), mp::Object(mp::Object::List{1, 2.5, mp::None{}}));
  EXPECT_EQ(r.recv(), mp::Object(mp::Bytes("\x00\x01")));
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
}

/// A process that puts and exits at once still delivers: its feeder is
/// flushed at exit.
TEST_P(TestQueue, PutThenExitIsDelivered) {
  auto q = mp::Queue();
  auto p = mp::get_context().Process({.target = queue_tests::put_and_exit, .args = {q, "last words"}});
  p->start();
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
  EXPECT_EQ(q.get(true, 60.0), mp::Object("last words"));
}

/// _TestQueue.test_task_done and test_no_import_lock_contention's cousin:
/// join() returns once every item is marked done.
TEST_P(TestQueue, TaskDone) {
  auto q = mp::JoinableQueue();
  std::vector<std::unique_ptr<mp::BaseProcess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(mp::get_context().Process({.target = queue_tests::joinable_worker, .args = {q}}));
    workers.back()->start();
  }
  for (std::int64_t i = 0; i < 10; ++i) q.put(i);
  q.join();
  for (int i = 0; i < 2; ++i) q.put(mp::None{});
  for (auto& w : workers) join_process(*w);
  EXPECT_THROW(q.task_done(), mp::ValueError);
}

/// JoinableQueue: "task_done() called too many times".
TEST_P(TestQueue, TaskDoneTooManyTimes) {
  auto q = mp::JoinableQueue();
  q.put(std::int64_t{1});
  q.get();
  q.task_done();
  try {
    q.task_done();
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "task_done() called too many times");
  }
}

/// A closed queue refuses put and get with Python's message.
TEST_P(TestQueue, Closed) {
  auto q = mp::Queue();
  q.put(std::int64_t{1});
  q.close();
  try {
    q.put(std::int64_t{2});
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_EQ(std::string(e.what()), "Queue " + q.repr() + " is closed");
  }
  EXPECT_THROW(q.get(), mp::ValueError);
  q.join_thread();
}

/// A Queue cannot be pickled outside spawning (Python's message).
TEST_P(TestQueue, RefusedOutsideSpawning) {
  auto q = mp::Queue();
  auto [r, w] = mp::Pipe();
  try {
    w.send(q);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const mp::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "Queue objects should only be shared between processes through inheritance");
  }
}

/// _TestSimpleQueue.test_empty (and a round trip through a child).
TEST_P(TestSimpleQueue, Empty) {
  auto q = mp::SimpleQueue();
  auto back = mp::SimpleQueue();
  EXPECT_TRUE(q.empty());
  auto p = mp::get_context().Process({.target = queue_tests::simple_child, .args = {q, back}});
  p->start();
  q.put(std::int64_t{21});
  EXPECT_EQ(back.get().as<std::int64_t>(), 42);
  join_process(*p);
  EXPECT_TRUE(q.empty());
  q.put(std::int64_t{1});
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.get().as<std::int64_t>(), 1);
  q.close();
  back.close();
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestQueue, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestSimpleQueue, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace mp_test
