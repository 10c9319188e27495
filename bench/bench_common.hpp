// bench/bench_common.hpp — what the Google Benchmark programs of bench/ share:
// the clock, whole reads and writes for the raw-C references, and a main()
// that interleaves the repetitions of every benchmark at random.
#pragma once

#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
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

/// The sizes of a scaling series, from `--scale=N1,N2,...`, which is taken
/// out of argv (argc shrinks).  Empty without the flag.  With it, a program
/// registers and runs only its `BM_Scale_<series>_<side>/<n>` benchmarks
/// (bench/summarize_scale.py reads them): one value per size n, the seconds
/// one batch of n takes.
inline std::vector<std::int64_t> take_scale(int& argc, char** argv) {
  std::vector<std::int64_t> sizes;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!a.starts_with("--scale=")) {
      argv[kept++] = argv[i];
      continue;
    }
    for (std::string_view rest = a.substr(8); !rest.empty();) {
      std::size_t comma = std::min(rest.find(','), rest.size());
      long long n = std::atoll(std::string(rest.substr(0, comma)).c_str());
      if (n <= 0) {
        std::fprintf(stderr, "%s: --scale takes positive integers separated by commas\n", argv[0]);
        std::exit(2);
      }
      sizes.push_back(n);
      rest.remove_prefix(std::min(comma + 1, rest.size()));
    }
  }
  argc = kept;
  argv[kept] = nullptr;
  return sizes;
}

/// Register one scaling benchmark per size: each iteration is one batch of
/// n, timed by hand; `budget / n` iterations (at least 1) per repetition, so
/// that small sizes are measured over more than one batch; 3 repetitions.
inline void register_scale(const char* name, void (*fn)(benchmark::State&), const std::vector<std::int64_t>& sizes,
                           std::int64_t budget) {
  for (std::int64_t n : sizes) {
    benchmark::RegisterBenchmark(name, fn)
        ->Arg(n)
        ->Iterations(std::max<std::int64_t>(1, budget / n))
        ->Repetitions(3)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

/// main()'s end for every program here: the repetitions of all registered
/// benchmarks interleaved at random, so that the library and the raw calls
/// see the same noise on a shared machine.  `scale`: only the BM_Scale_*
/// benchmarks run (those registered statically are filtered out).
inline int run_interleaved(int argc, char** argv, bool scale = false) {
  std::vector<char*> args(argv, argv + argc);
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  static char only_scale[] = "--benchmark_filter=^BM_Scale_";
  args.push_back(interleave);
  if (scale) args.push_back(only_scale);
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
