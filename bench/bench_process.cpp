// bench/bench_process.cpp — operation 1 of the benchmark definitions,
// "process_start_join": create, start and join a child that does nothing.
//
//   BM_ProcessStartJoin       this library, the fork start method (the default):
//                               multiprocessing::Process p({.target = noop});
//                               p.start(); p.join();   exit code checked
//   BM_RawForkWaitpid         the C reference "fork_exit_waitpid": fork(),
//                               child _exit(0), parent waitpid()
//   BM_RawForkWaitpid_RSS8M   the same after dirtying 8 MiB of heap (the
//                               reference's "rss8M" variant, ~ a Python parent)
//
// Method (shared/reference/bench-operations.md, "Common method"): each
// repetition first runs a few untimed warm-up ops, then `n` timed ops; every
// op is timed with clock_gettime(CLOCK_MONOTONIC) and handed to Google
// Benchmark as manual time, so a repetition reports elapsed / n, in µs per op.
// The value is the median over the repetitions (Google Benchmark's "_median"
// aggregate).  Repetitions of the benchmarks are interleaved at random
// (--benchmark_enable_random_interleaving, on by default here) so that the
// library and the raw calls see the same noise of this shared machine.
//
// Own flags (taken out before Google Benchmark sees the rest):
//   --ops=N      timed ops per repetition        (default 300, the reference's)
//   --reps=N     repetitions                     (default 5)
//   --warmup=N   untimed ops before each rep     (default 10)
// Everything else goes to Google Benchmark, e.g. --benchmark_format=json.
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <multiprocessing.hpp>

namespace {

int g_ops = 300;
int g_reps = 5;
int g_warmup = 10;

double monotonic_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void noop() {}

// ------------------------------------------------------------------ the ops
// Each returns true when the child ran and exited with status 0.

bool library_op() {
  multiprocessing::Process p({.target = noop});
  p.start();
  p.join();
  std::optional<int> code = p.exitcode();
  return code.has_value() && *code == 0;
}

bool raw_fork_op() {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) ::_exit(0);  // the child does nothing at all
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  return r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// ------------------------------------------------------------------ the loop

template <bool (*Op)()>
void run_op(benchmark::State& state) {
  for (int i = 0; i < g_warmup; ++i) {
    if (!Op()) {
      state.SkipWithError("child did not exit with code 0 (warm-up)");
      return;
    }
  }
  for (auto _ : state) {
    double t0 = monotonic_seconds();
    bool ok = Op();
    double t1 = monotonic_seconds();
    if (!ok) {
      state.SkipWithError("child did not exit with code 0");
      break;
    }
    state.SetIterationTime(t1 - t0);
  }
}

void BM_ProcessStartJoin(benchmark::State& state) { run_op<library_op>(state); }

void BM_RawForkWaitpid(benchmark::State& state) { run_op<raw_fork_op>(state); }

void BM_RawForkWaitpid_RSS8M(benchmark::State& state) {
  // 8 MiB of dirty private anonymous memory, alive for the whole repetition:
  // every fork copies the page tables that map it (about what a Python parent
  // carries).  mmap, not malloc: glibc would keep a freed 8 MiB block in the
  // heap (its mmap threshold adapts upward), and the other benchmarks' later
  // repetitions would fork with it too.
  constexpr std::size_t size = std::size_t{8} << 20;
  void* ballast = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ballast == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  std::memset(ballast, 0x5a, size);
  benchmark::DoNotOptimize(ballast);
  run_op<raw_fork_op>(state);
  ::munmap(ballast, size);
}

bool take_int_flag(std::string_view arg, std::string_view name, int& out) {
  if (!arg.starts_with(name)) return false;
  out = std::atoi(std::string(arg.substr(name.size())).c_str());
  if (out <= 0) {
    std::fprintf(stderr, "bench_process: %.*s needs a positive integer\n",
                 static_cast<int>(name.size() - 1), name.data());
    std::exit(2);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flags out, Google Benchmark's in.
  std::vector<char*> rest{argv[0]};
  bool interleave_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (take_int_flag(a, "--ops=", g_ops) || take_int_flag(a, "--reps=", g_reps) ||
        take_int_flag(a, "--warmup=", g_warmup)) {
      continue;
    }
    if (a.starts_with("--benchmark_enable_random_interleaving")) interleave_given = true;
    rest.push_back(argv[i]);
  }
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  if (!interleave_given) rest.push_back(interleave);
  int rest_argc = static_cast<int>(rest.size());
  rest.push_back(nullptr);

  for (auto [name, fn] : {std::pair{"BM_ProcessStartJoin", &BM_ProcessStartJoin},
                          std::pair{"BM_RawForkWaitpid", &BM_RawForkWaitpid},
                          std::pair{"BM_RawForkWaitpid_RSS8M", &BM_RawForkWaitpid_RSS8M}}) {
    benchmark::RegisterBenchmark(name, fn)
        ->Iterations(g_ops)
        ->Repetitions(g_reps)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }

  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
