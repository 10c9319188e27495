// bench/bench_connection.cpp — multiprocessing.connection
// between two processes, this library against the raw calls it stands on.
//
//   BM_Lib_RoundTrip64      Pipe(); a forked child echoes; one op = send_bytes of
//                           64 bytes + recv_bytes of the echo
//   BM_Raw_RoundTrip64      the same over socketpair() with the framing written
//                           by hand: write(header + payload), read 4, read n
//   BM_Lib_OneWay/<size>    one op = `batch` messages of <size> bytes sent with
//                           send_bytes and received by the child with recv_bytes,
//                           then a 1-byte ack (64 B, 4 KiB, 1 MiB)
//   BM_Raw_OneWay/<size>    the same with raw framed write/read
//   BM_Lib_DictRoundTrip    send({'a': 1, 'b': [1, 2, 3], 'c': 'xyz'}) and recv()
//                           of the echo; the child echoes with recv() + send()
//
// With --scale=N1,N2,... only the scaling series run (bench/report.sh): one
// round trip of n bytes per iteration, seconds per round trip:
//   BM_Scale_RoundTrip_Lib/<n>   BM_Lib_RoundTrip64 with n-byte messages
//   BM_Scale_RoundTrip_Raw/<n>   BM_Raw_RoundTrip64 with n-byte messages
//
// Times are manual (CLOCK_MONOTONIC around each op), µs per op; the value is
// the median over repetitions, interleaved at random with the raw ones so that
// both see the same noise.  bench/cpython_connection.py measures CPython the
// same way; bench/run_connection.sh runs both and prints the table.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include <multiprocessing.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;
namespace conn = multiprocessing::connection;

namespace {

using bench::now;
using bench::read_all;
using bench::write_all;

std::size_t batch_for(std::size_t size) {
  return size <= 64 ? 2000 : size <= 4096 ? 500 : 20;
}

// ------------------------------------------------------------------ raw framing

/// The lower bound: the 4-byte header and the payload in one write (the same
/// policy as Connection up to 16384 bytes), two writes above.
void raw_send(int fd, std::string_view payload, std::string& scratch) {
  std::uint32_t n = static_cast<std::uint32_t>(payload.size());
  char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                    static_cast<char>(n >> 8), static_cast<char>(n)};
  if (payload.size() <= 16384) {
    scratch.assign(header, 4);
    scratch.append(payload);
    write_all(fd, scratch.data(), scratch.size());
  } else {
    write_all(fd, header, 4);
    write_all(fd, payload.data(), payload.size());
  }
}

/// Read one frame into `buf` (reused: no allocation once it is large enough).
void raw_recv(int fd, std::string& buf) {
  unsigned char h[4];
  if (!read_all(fd, reinterpret_cast<char*>(h), 4)) ::_exit(4);
  std::size_t n = (std::size_t{h[0]} << 24) | (std::size_t{h[1]} << 16) |
                  (std::size_t{h[2]} << 8) | h[3];
  buf.resize(n);
  if (!read_all(fd, buf.data(), n)) ::_exit(4);
}

/// A raw child on one end of a socketpair; reaped by the destructor.
struct RawChild {
  pid_t pid = -1;
  int fd = -1;
  template <class F>
  explicit RawChild(F body) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    pid = ::fork();
    if (pid == 0) {
      ::close(sv[0]);
      body(sv[1]);
      ::_exit(0);
    }
    ::close(sv[1]);
    fd = sv[0];
  }
  ~RawChild() {
    ::close(fd);  // the child sees EOF and leaves
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
};

// ------------------------------------------------------------------ round trip 64 B

/// Round trips of `size`-byte messages to a forked echo child; `warmup` untimed first.
void lib_round_trips(benchmark::State& state, std::size_t size, int warmup) {
  auto [c, child_conn] = conn::Pipe();
  mp::Process p({.target = [&c = c, &child_conn = child_conn] {
    c.close();  // the parent's end: kept open here, the child would never see EOF
    try {
      for (;;) child_conn.send_bytes(child_conn.recv_bytes());
    } catch (const mp::EOFError&) {
    }
  }});
  p.start();
  child_conn.close();
  std::string msg(size, 'x');
  for (int i = 0; i < warmup; ++i) {
    c.send_bytes(msg);
    c.recv_bytes();
  }
  for (auto _ : state) {
    double t0 = now();
    c.send_bytes(msg);
    std::string back = c.recv_bytes();
    state.SetIterationTime(now() - t0);
    benchmark::DoNotOptimize(back);
  }
  c.close();
  p.join();
}

void BM_Lib_RoundTrip64(benchmark::State& state) { lib_round_trips(state, 64, 100); }

/// The raw twin of lib_round_trips.
void raw_round_trips(benchmark::State& state, std::size_t size, int warmup) {
  RawChild child([](int fd) {
    std::string buf, scratch;
    unsigned char h;
    while (::recv(fd, &h, 1, MSG_PEEK) == 1) {
      raw_recv(fd, buf);
      raw_send(fd, buf, scratch);
    }
  });
  std::string msg(size, 'x'), buf, scratch;
  for (int i = 0; i < warmup; ++i) {
    raw_send(child.fd, msg, scratch);
    raw_recv(child.fd, buf);
  }
  for (auto _ : state) {
    double t0 = now();
    raw_send(child.fd, msg, scratch);
    raw_recv(child.fd, buf);
    state.SetIterationTime(now() - t0);
  }
}

void BM_Raw_RoundTrip64(benchmark::State& state) { raw_round_trips(state, 64, 100); }

void BM_Scale_RoundTrip_Lib(benchmark::State& state) {
  lib_round_trips(state, static_cast<std::size_t>(state.range(0)), 3);
}

void BM_Scale_RoundTrip_Raw(benchmark::State& state) {
  raw_round_trips(state, static_cast<std::size_t>(state.range(0)), 3);
}

// ------------------------------------------------------------------ one way

void BM_Lib_OneWay(benchmark::State& state) {
  std::size_t size = static_cast<std::size_t>(state.range(0));
  std::size_t batch = batch_for(size);
  auto [c, child_conn] = conn::Pipe();
  mp::Process p({.target = [&c = c, &child_conn = child_conn, batch] {
    c.close();  // see BM_Lib_RoundTrip64
    try {
      for (;;) {
        for (std::size_t i = 0; i < batch; ++i) benchmark::DoNotOptimize(child_conn.recv_bytes());
        child_conn.send_bytes("k");
      }
    } catch (const mp::EOFError&) {
    }
  }});
  p.start();
  child_conn.close();
  std::string msg(size, 'x');
  auto one_batch = [&c = c, &msg, batch] {
    for (std::size_t i = 0; i < batch; ++i) c.send_bytes(msg);
    c.recv_bytes();
  };
  one_batch();  // warm-up
  for (auto _ : state) {
    double t0 = now();
    one_batch();
    state.SetIterationTime(now() - t0);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * size));
  state.counters["batch"] = static_cast<double>(batch);
  c.close();
  p.join();
}

void BM_Raw_OneWay(benchmark::State& state) {
  std::size_t size = static_cast<std::size_t>(state.range(0));
  std::size_t batch = batch_for(size);
  RawChild child([batch](int fd) {
    std::string buf, scratch;
    unsigned char h;
    while (::recv(fd, &h, 1, MSG_PEEK) == 1) {
      for (std::size_t i = 0; i < batch; ++i) raw_recv(fd, buf);
      raw_send(fd, "k", scratch);
    }
  });
  std::string msg(size, 'x'), buf, scratch;
  auto one_batch = [&] {
    for (std::size_t i = 0; i < batch; ++i) raw_send(child.fd, msg, scratch);
    raw_recv(child.fd, buf);
  };
  one_batch();
  for (auto _ : state) {
    double t0 = now();
    one_batch();
    state.SetIterationTime(now() - t0);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * size));
  state.counters["batch"] = static_cast<double>(batch);
}

// ------------------------------------------------------------------ dict round trip

void BM_Lib_DictRoundTrip(benchmark::State& state) {
  auto [c, child_conn] = conn::Pipe();
  mp::Process p({.target = [&c = c, &child_conn = child_conn] {
    c.close();  // the parent's end: kept open here, the child would never see EOF
    try {
      for (;;) child_conn.send(child_conn.recv());
    } catch (const mp::EOFError&) {
    }
  }});
  p.start();
  child_conn.close();
  using O = mp::Object;
  O dict = O::Dict{{O("a"), O(std::int64_t{1})},
                   {O("b"), O::List{std::int64_t{1}, std::int64_t{2}, std::int64_t{3}}},
                   {O("c"), O("xyz")}};
  for (int i = 0; i < 100; ++i) {
    c.send(dict);
    c.recv();
  }
  for (auto _ : state) {
    double t0 = now();
    c.send(dict);
    O back = c.recv();
    state.SetIterationTime(now() - t0);
    if (!(back == dict)) state.SkipWithError("the dict came back different");
  }
  c.close();
  p.join();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> scale = bench::take_scale(argc, argv);
  if (!scale.empty()) {
    // 64 MiB of messages per repetition: 1 M round trips of 64 B would be
    // more than needed, so the count stops at 1000; 3 at least.
    for (std::int64_t size : scale) {
      std::int64_t iterations = std::clamp<std::int64_t>((std::int64_t{64} << 20) / size, 3, 1000);
      for (auto [name, fn] : {std::pair{"BM_Scale_RoundTrip_Lib", &BM_Scale_RoundTrip_Lib},
                              std::pair{"BM_Scale_RoundTrip_Raw", &BM_Scale_RoundTrip_Raw}}) {
        benchmark::RegisterBenchmark(name, fn)->Arg(size)->Iterations(iterations)->Repetitions(3)->UseManualTime()->Unit(
            benchmark::kMillisecond);
      }
    }
    return bench::run_interleaved(argc, argv, /*scale=*/true);
  }
  auto setup = [](benchmark::internal::Benchmark* b, int iterations) {
    b->Iterations(iterations)->Repetitions(5)->UseManualTime()->Unit(benchmark::kMicrosecond);
  };
  setup(benchmark::RegisterBenchmark("BM_Lib_RoundTrip64", BM_Lib_RoundTrip64), 3000);
  setup(benchmark::RegisterBenchmark("BM_Raw_RoundTrip64", BM_Raw_RoundTrip64), 3000);
  setup(benchmark::RegisterBenchmark("BM_Lib_DictRoundTrip", BM_Lib_DictRoundTrip), 3000);
  for (int size : {64, 4096, 1 << 20}) {
    setup(benchmark::RegisterBenchmark("BM_Lib_OneWay", BM_Lib_OneWay)->Arg(size), 10);
    setup(benchmark::RegisterBenchmark("BM_Raw_OneWay", BM_Raw_OneWay)->Arg(size), 10);
  }
  return bench::run_interleaved(argc, argv);
}
