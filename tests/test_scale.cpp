// tests/test_scale.cpp — load and scale: messages of every size around each
// boundary of the framing and of the kernel's buffers, many children started
// and reaped, and (under the ctest label `large`, or with MP_LARGE_TESTS=1) a
// message past the 2 GiB switch of the frame header; and a soak of queues, a
// pool and a manager used at once (MP_SOAK_SECONDS long).
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace mp_test {

namespace scale_tests {

/// Exit at once.
void exit_at_once() {}

/// The soak's producer: `threads` threads put the numbers first, first+1...
/// on `work` until `seconds` pass; each thread then records how many it put
/// and their sum in `totals` under "p<index>.<thread>".
void soak_producer(mp::queues::Queue work, mp::managers::DictProxy totals, std::int64_t index,
                   std::int64_t threads, double seconds) {
  double deadline = mp::os::monotonic() + seconds;
  std::vector<std::thread> pool;
  for (std::int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([=]() mutable {
      std::int64_t value = (index * threads + t) * 1'000'000'000;
      std::int64_t count = 0, sum = 0;
      while (mp::os::monotonic() < deadline) {
        work.put(mp::Object(value), true, 60.0);
        ++count;
        sum += value++;
      }
      totals.setitem("p" + std::to_string(index) + "." + std::to_string(t), mp::Object::List{count, sum});
    });
  }
  for (auto& th : pool) th.join();
}

/// The soak's consumer: get from `work` until None, and record how many
/// items came and their sum in `totals` under "c<index>".
void soak_consumer(mp::queues::Queue work, mp::managers::DictProxy totals, std::int64_t index) {
  std::int64_t count = 0, sum = 0;
  for (;;) {
    mp::Object item = work.get(true, 120.0);
    if (item.is_none()) break;
    ++count;
    sum += item.as<std::int64_t>();
  }
  totals.setitem("c" + std::to_string(index), mp::Object::List{count, sum});
}

/// A pool task.
std::int64_t square(std::int64_t x) { return x * x; }

}  // namespace scale_tests

MP_REGISTER_TARGET(scale_tests::exit_at_once);
MP_REGISTER_TARGET(scale_tests::soak_producer);
MP_REGISTER_TARGET(scale_tests::soak_consumer);
MP_REGISTER_TARGET(scale_tests::square);

namespace {

/// `size` bytes that differ from one offset to the next (a period of 251, a
/// prime, so that no power-of-two boundary lines up with it).
std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>(i % 251);
  return s;
}

/// Send `message` from a thread on one end, receive it on the other, and
/// check that it arrives whole and in order.
void round_trip(mp::connection::Connection& reader, mp::connection::Connection& writer,
                const std::string& message) {
  std::thread sender([&] { writer.send_bytes(message); });
  std::string got = reader.recv_bytes();
  sender.join();
  EXPECT_EQ(got.size(), message.size());
  EXPECT_TRUE(got == message) << "a message of " << message.size() << " bytes arrived changed";
}

/// Not in CPython: a message of each size at and around every boundary below
/// the 2 GiB header switch (the empty message, one byte, the byte and
/// 64 KiB boundaries, the pipe's buffer, the reader's first 1 MiB step, and
/// 16 MiB), through a pipe (Pipe(false)) and a socket pair (Pipe()), each
/// arriving whole; and then the next message, so that no size leaves the
/// stream out of step.
TEST(TestScale, MessageSizesAroundEveryBoundary) {
  auto [r, w] = mp::Pipe(false);
  // fcntl(F_GETPIPE_SZ): the kernel's buffer for this pipe (64 KiB unless changed).
  int pipe_size = ::fcntl(r.fileno(), F_GETPIPE_SZ);
  ASSERT_GT(pipe_size, 0);
  std::vector<std::size_t> sizes = {0, 1, 2, 3, 4, 5, 255, 256, 257, 4095, 4096, 4097,
                                    65535, 65536, 65537};
  for (std::size_t base : {static_cast<std::size_t>(pipe_size), std::size_t{1} << 20, std::size_t{16} << 20}) {
    for (std::size_t size : {base - 1, base, base + 1}) sizes.push_back(size);
  }
  auto [a, b] = mp::Pipe();
  for (std::size_t size : sizes) {
    std::string message = pattern(size);
    round_trip(r, w, message);
    round_trip(a, b, message);
  }
  round_trip(r, w, "after");
  round_trip(a, b, "after");
}

/// Not in CPython: 5,000 children (fork), started 50 at a time and joined,
/// each with exit code 0, and none left: active_children() is empty, and the
/// leak check finds no zombie and no fd.
TEST(TestScale, StartAndReap5000Children) {
  constexpr int kChildren = 5000;
  constexpr int kAtOnce = 50;
  auto& ctx = mp::get_context("fork");
  int reaped = 0;
  for (int started = 0; started < kChildren; started += kAtOnce) {
    std::vector<std::unique_ptr<mp::BaseProcess>> batch;
    for (int i = 0; i < kAtOnce; ++i) {
      batch.push_back(ctx.Process({.target = scale_tests::exit_at_once}));
      batch.back()->start();
    }
    for (auto& p : batch) {
      join_process(*p);
      if (p->exitcode() == 0) ++reaped;
    }
  }
  EXPECT_EQ(reaped, kChildren);
  EXPECT_TRUE(mp::active_children().empty());
}

/// Not in CPython: a soak.  For MP_SOAK_SECONDS (10 by default): three
/// producer processes of two threads each put numbers on a bounded Queue,
/// two consumer processes get them, a Pool of two maps in the parent, and
/// every process reports to one manager's dict.  At the end every item is
/// accounted for: as many got as put, with the same sum; every map's result
/// was right; every child exited 0; nothing is left behind.
TEST(TestScale, Soak) {
  double seconds = 10.0;
  if (const char* env = std::getenv("MP_SOAK_SECONDS")) seconds = std::atof(env);
  constexpr std::int64_t kProducers = 3, kThreads = 2, kConsumers = 2;
  auto& ctx = mp::get_context("fork");
  auto manager = mp::Manager();
  auto totals = manager.dict();
  auto work = mp::Queue(1000);
  std::vector<std::unique_ptr<mp::BaseProcess>> producers, consumers;
  for (std::int64_t i = 0; i < kConsumers; ++i) {
    consumers.push_back(ctx.Process({.target = scale_tests::soak_consumer, .args = {work, totals, i}}));
    consumers.back()->start();
  }
  for (std::int64_t i = 0; i < kProducers; ++i) {
    producers.push_back(ctx.Process({.target = scale_tests::soak_producer, .args = {work, totals, i, kThreads, seconds}}));
    producers.back()->start();
  }
  mp::pool::Pool pool(2);
  mp::Object::List inputs, squares;
  for (std::int64_t i = 0; i < 200; ++i) {
    inputs.emplace_back(i);
    squares.emplace_back(i * i);
  }
  double deadline = mp::os::monotonic() + seconds;
  int maps = 0, wrong = 0;
  while (mp::os::monotonic() < deadline) {
    if (pool.map(scale_tests::square, inputs) != squares) ++wrong;
    ++maps;
  }
  pool.close();
  pool.join();
  for (auto& p : producers) {
    join_process(*p, seconds + 120);
    EXPECT_EQ(p->exitcode(), 0);
  }
  for (std::int64_t i = 0; i < kConsumers; ++i) work.put(mp::Object());  // one None each
  for (auto& p : consumers) {
    join_process(*p, 120);
    EXPECT_EQ(p->exitcode(), 0);
  }
  std::int64_t put = 0, put_sum = 0, got = 0, got_sum = 0;
  for (std::int64_t i = 0; i < kProducers; ++i) {
    for (std::int64_t t = 0; t < kThreads; ++t) {
      auto pair = totals.getitem("p" + std::to_string(i) + "." + std::to_string(t)).as<mp::Object::List>();
      put += pair[0].as<std::int64_t>();
      put_sum += pair[1].as<std::int64_t>();
    }
  }
  for (std::int64_t i = 0; i < kConsumers; ++i) {
    auto pair = totals.getitem("c" + std::to_string(i)).as<mp::Object::List>();
    got += pair[0].as<std::int64_t>();
    got_sum += pair[1].as<std::int64_t>();
  }
  EXPECT_GT(put, 0);
  EXPECT_EQ(got, put);
  EXPECT_EQ(got_sum, put_sum);
  EXPECT_GT(maps, 0);
  EXPECT_EQ(wrong, 0);
  std::printf("soak: %.0f s, %lld items through the queue, %d pool maps\n", seconds,
              static_cast<long long>(put), maps);
  work.close();
  work.join_thread();
  manager.shutdown();
}

/// Not in CPython: one message of 2 GiB + 3 bytes through a pipe, so that its
/// header is the long one (-1, then an 8-byte length), arriving whole.  It
/// needs about 6 GiB of memory and some seconds: it runs only under the
/// ctest label `large` (ctest --preset large), which sets MP_LARGE_TESTS=1.
TEST(TestScaleLarge, MessagePastTwoGiB) {
  if (std::getenv("MP_LARGE_TESTS") == nullptr) GTEST_SKIP() << "set MP_LARGE_TESTS=1 (ctest --preset large)";
  constexpr std::size_t kSize = (std::size_t{2} << 30) + 3;
  std::string message(kSize, '\0');
  std::uint64_t sent_sum = 0;
  for (std::size_t i = 0; i < kSize; ++i) {
    message[i] = static_cast<char>((i * 7) % 253);
    sent_sum = sent_sum * 31 + static_cast<unsigned char>(message[i]);
  }
  auto [r, w] = mp::Pipe(false);
  std::thread sender([&] { w.send_bytes(message); });
  std::string got = r.recv_bytes();
  sender.join();
  message = std::string();  // give its memory back before the checksum
  ASSERT_EQ(got.size(), kSize);
  std::uint64_t got_sum = 0;
  for (unsigned char ch : got) got_sum = got_sum * 31 + ch;
  EXPECT_EQ(got_sum, sent_sum);
  EXPECT_EQ(mp::connection::_frame_header(kSize).size(), 12u);
}

}  // namespace
}  // namespace mp_test
