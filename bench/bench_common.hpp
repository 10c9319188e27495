// bench/bench_common.hpp — what the Google Benchmark programs of bench/ share:
// the clock, whole reads and writes for the raw-C references, and a main()
// that interleaves the repetitions of every benchmark at random.
#pragma once

#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <ctime>
#include <vector>

namespace bench {

/// CLOCK_MONOTONIC in seconds: the clock of time.perf_counter(), so that
/// times taken in different processes (and in CPython) compare.
inline double now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// write() until all `n` bytes are out (a pipe or socket may take fewer);
/// on an error, say so and _exit(3): the raw references have no one to tell.
inline void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::perror("write");
      ::_exit(3);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

/// read() until exactly `n` bytes came.  \return false at EOF or on an error.
inline bool read_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

/// main()'s end for every program here: the repetitions of all registered
/// benchmarks interleaved at random, so that the library and the raw calls
/// see the same noise on a shared machine.
inline int run_interleaved(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  args.push_back(interleave);
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
