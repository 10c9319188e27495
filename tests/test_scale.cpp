// tests/test_scale.cpp — load and scale: messages of every size around each
// boundary of the framing and of the kernel's buffers, many children started
// and reaped, and (under the ctest label `large`, or with MP_LARGE_TESTS=1) a
// message past the 2 GiB switch of the frame header.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace mp_test {

namespace scale_tests {

/// Exit at once.
void exit_at_once() {}

}  // namespace scale_tests

MP_REGISTER_TARGET(scale_tests::exit_at_once);

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
