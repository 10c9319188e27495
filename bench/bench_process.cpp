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
// The other two start methods (bench/run_spawn.sh):
//   BM_SpawnStartJoin         auto p = get_context("spawn").Process({.target = noop});
//                               p->start(); p->join();   exit code checked.  The
//                               child is this program run again (posix_spawn),
//                               which freeze_support() turns into the child.
//   BM_SpawnStartJoin_SmallExe  the same, with bench_spawn_child as the spawn
//                               executable (spawn::set_executable): a program
//                               whose main() is freeze_support() alone, which
//                               does not load Google Benchmark
//   BM_ForkserverStartJoin    the same with get_context("forkserver"); the
//                               warm-up starts the fork server.
//   BM_RawPosixSpawnTrue      the C reference "posix_spawn_true":
//                               posix_spawn("/bin/true") + waitpid
//   BM_RawPosixSpawnSelf      posix_spawn of this very program with
//                               --exit-at-once (main() returns 0 right after
//                               freeze_support()) + waitpid: exec and dynamic
//                               loading of this binary, the floor under
//                               BM_SpawnStartJoin
//   BM_RawPosixSpawnSmallExe  posix_spawn of bench_spawn_child, no arguments
//                               (freeze_support() returns, main() returns 0)
//   BM_RawPosixSpawnEmptyMain posix_spawn of bench_empty_main (a C++ program
//                               whose main() returns 0) + waitpid
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
// With --scale=N1,N2,... only the scaling series run (bench/report.sh), one
// batch of n children per iteration, seconds per batch:
//   BM_Scale_StartJoinSeq_Lib/<n>   n library Processes (fork), each started and
//                                   joined before the next
//   BM_Scale_StartJoinSeq_Raw/<n>   n raw fork/_exit/waitpid, one after another
//   BM_Scale_StartJoinAll_Lib/<n>   n library Processes all started, then all joined
//   BM_Scale_StartJoinAll_Raw/<n>   n raw forks, then n waitpids
//
// Own flags (taken out before Google Benchmark sees the rest):
//   --ops=N      timed ops per repetition        (default 300, the reference's)
//   --reps=N     repetitions                     (default 5)
//   --warmup=N   untimed ops before each rep     (default 10)
//   --spawn-ops=N  timed ops per repetition for the BM_*Spawn* benchmarks
//                (default 40: a spawn costs milliseconds)
//   --count=KIND:N  (alone) no benchmark: N ops of KIND, then the minor page
//                faults and context switches per op, from getrusage(), for
//                this process and its reaped children (see count_ops below)
// Everything else goes to Google Benchmark, e.g. --benchmark_format=json.
#include <spawn.h>
#include <sys/resource.h>
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

#include "bench_common.hpp"

extern char** environ;

namespace {

int g_ops = 300;
int g_reps = 5;
int g_warmup = 10;
int g_spawn_ops = 40;

double monotonic_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void noop() {}
// Under spawn and forkserver the target crosses to the child by name.
MP_REGISTER_TARGET(noop);

// ------------------------------------------------------------------ the ops
// Each returns true when the child ran and exited with status 0.

bool library_op() {
  multiprocessing::Process p({.target = noop});
  p.start();
  p.join();
  std::optional<int> code = p.exitcode();
  return code.has_value() && *code == 0;
}

bool start_join_with(const char* method) {
  std::unique_ptr<multiprocessing::BaseProcess> p =
      multiprocessing::get_context(method).Process({.target = noop});
  p->start();
  p->join();
  std::optional<int> code = p->exitcode();
  return code.has_value() && *code == 0;
}

bool spawn_op() { return start_join_with("spawn"); }

/// A program built next to this one (bench_empty_main, bench_spawn_child).
std::string sibling_exe(const char* name) {
  std::string self = multiprocessing::spawn::get_executable();
  return self.substr(0, self.rfind('/') + 1) + name;
}

bool spawn_small_exe_op() {
  static const std::string small = sibling_exe("bench_spawn_child");
  multiprocessing::spawn::set_executable(small);
  bool ok = start_join_with("spawn");
  multiprocessing::spawn::set_executable(std::nullopt);  // back to this program
  return ok;
}

bool forkserver_op() { return start_join_with("forkserver"); }

bool wait_for_exit_0(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  return r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// posix_spawn(path, argv) with this process's environment, then waitpid.
bool raw_posix_spawn(const std::string& path, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return false;
  return wait_for_exit_0(pid);
}

bool raw_posix_spawn_true_op() { return raw_posix_spawn("/bin/true", {"true"}); }

/// This program, as /proc/self/exe names it (what spawn runs too).
const std::string& self_exe() {
  static const std::string exe = multiprocessing::spawn::get_executable();
  return exe;
}

bool raw_posix_spawn_self_op() { return raw_posix_spawn(self_exe(), {self_exe(), "--exit-at-once"}); }

bool raw_posix_spawn_small_exe_op() {
  static const std::string small = sibling_exe("bench_spawn_child");
  return raw_posix_spawn(small, {small});
}

bool raw_posix_spawn_empty_main_op() {
  static const std::string empty = sibling_exe("bench_empty_main");
  return raw_posix_spawn(empty, {empty});
}

bool raw_fork_op() {
  // _Fork, not fork: fork() would also run the pthread_atfork handlers that
  // the library, linked into this program, registers while it starts, and
  // the raw limit is what a C program without them pays.
  pid_t pid = ::_Fork();
  if (pid < 0) return false;
  if (pid == 0) ::_exit(0);  // the child does nothing at all
  return wait_for_exit_0(pid);
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

void BM_SpawnStartJoin(benchmark::State& state) { run_op<spawn_op>(state); }

void BM_SpawnStartJoin_SmallExe(benchmark::State& state) { run_op<spawn_small_exe_op>(state); }

void BM_ForkserverStartJoin(benchmark::State& state) { run_op<forkserver_op>(state); }

void BM_RawPosixSpawnTrue(benchmark::State& state) { run_op<raw_posix_spawn_true_op>(state); }

void BM_RawPosixSpawnSelf(benchmark::State& state) { run_op<raw_posix_spawn_self_op>(state); }

void BM_RawPosixSpawnSmallExe(benchmark::State& state) {
  run_op<raw_posix_spawn_small_exe_op>(state);
}

void BM_RawPosixSpawnEmptyMain(benchmark::State& state) {
  run_op<raw_posix_spawn_empty_main_op>(state);
}

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

// ------------------------------------------------------------------ scaling

bool library_all_op(std::int64_t n) {
  auto& ctx = multiprocessing::get_context("fork");
  std::vector<std::unique_ptr<multiprocessing::BaseProcess>> children;
  children.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    children.push_back(ctx.Process({.target = noop}));
    children.back()->start();
  }
  bool ok = true;
  for (auto& p : children) {
    p->join();
    ok = ok && p->exitcode() == 0;
  }
  return ok;
}

bool raw_all_op(std::int64_t n) {
  std::vector<pid_t> pids;
  pids.reserve(static_cast<std::size_t>(n));
  bool ok = true;
  for (std::int64_t i = 0; i < n && ok; ++i) {
    pid_t pid = ::fork();  // the children of one batch, all alive at once
    if (pid == 0) ::_exit(0);
    if (pid < 0) ok = false;
    else pids.push_back(pid);
  }
  for (pid_t pid : pids) ok = wait_for_exit_0(pid) && ok;
  return ok;
}

template <bool (*Op)()>
bool sequential_op(std::int64_t n) {
  bool ok = true;
  for (std::int64_t i = 0; i < n && ok; ++i) ok = Op();
  return ok;
}

/// One batch of n children per iteration; a warm-up batch of one first.
template <bool (*Batch)(std::int64_t)>
void run_batch(benchmark::State& state) {
  std::int64_t n = state.range(0);
  if (!Batch(1)) {
    state.SkipWithError("child did not exit with code 0 (warm-up)");
    return;
  }
  for (auto _ : state) {
    double t0 = monotonic_seconds();
    bool ok = Batch(n);
    double t1 = monotonic_seconds();
    if (!ok) {
      state.SkipWithError("a child did not exit with code 0");
      break;
    }
    state.SetIterationTime(t1 - t0);
  }
}

void BM_Scale_StartJoinSeq_Lib(benchmark::State& state) { run_batch<sequential_op<library_op>>(state); }
void BM_Scale_StartJoinSeq_Raw(benchmark::State& state) { run_batch<sequential_op<raw_fork_op>>(state); }
void BM_Scale_StartJoinAll_Lib(benchmark::State& state) { run_batch<library_all_op>(state); }
void BM_Scale_StartJoinAll_Raw(benchmark::State& state) { run_batch<raw_all_op>(state); }

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

/// `--count=KIND:N`: N ops of KIND after 3 untimed ones, no benchmark
/// library in the loop, then one line of counters per op from getrusage():
/// minor page faults and context switches of this process (self) and of the
/// children it reaped (children).  For counters that a loaded machine does not
/// change; `strace -f -c` over a run with N and one with 0 gives the system
/// calls per op.  KIND: lib_fork, raw_fork, forkserver, spawn_small,
/// raw_posix_spawn_empty.  (Under forkserver the children are the server's
/// to reap: a second line gives the faults of the server and of the children
/// it reaped, from its /proc/<pid>/stat.)
/// The minor page faults of process `pid` and of the children it reaped
/// (fields 10 and 12 of /proc/<pid>/stat): what a forkserver op costs in the
/// server, whose children this process cannot reap.  {-1, -1} if unreadable.
std::pair<long, long> faults_of(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return {-1, -1};
  char line[1024] = {};
  std::size_t got = std::fread(line, 1, sizeof line - 1, f);
  std::fclose(f);
  line[got] = '\0';
  // Fields after the command name (in parentheses, which may hold spaces):
  // state(3) ppid pgrp session tty_nr tpgid flags minflt(10) cminflt(11) majflt cmajflt.
  const char* p = std::strrchr(line, ')');
  long minflt = -1, cminflt = -1;
  if (p == nullptr || std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %ld %ld", &minflt, &cminflt) != 2) return {-1, -1};
  return {minflt, cminflt};
}

int count_ops(std::string_view spec) {
  auto colon = spec.find(':');
  std::string_view kind = spec.substr(0, colon);
  long n = colon == std::string_view::npos ? 0 : std::atol(std::string(spec.substr(colon + 1)).c_str());
  bool (*op)() = nullptr;
  if (kind == "lib_fork") op = library_op;
  else if (kind == "raw_fork") op = raw_fork_op;
  else if (kind == "forkserver") op = forkserver_op;
  else if (kind == "spawn_small") op = spawn_small_exe_op;
  else if (kind == "raw_posix_spawn_empty") op = raw_posix_spawn_empty_main_op;
  if (op == nullptr || n < 0) {
    std::fprintf(stderr, "--count=KIND:N with KIND one of lib_fork, raw_fork, forkserver, "
                         "spawn_small, raw_posix_spawn_empty\n");
    return 2;
  }
  for (int i = 0; i < 3; ++i) {
    if (!op()) return 1;
  }
  rusage self0{}, child0{}, self1{}, child1{};
  std::optional<pid_t> server;
  if (op == forkserver_op) server = multiprocessing::forkserver::_forkserver()._pid();
  std::pair<long, long> server0 = server ? faults_of(*server) : std::pair<long, long>{-1, -1};
  ::getrusage(RUSAGE_SELF, &self0);  // the counters before the measured ops
  ::getrusage(RUSAGE_CHILDREN, &child0);
  for (long i = 0; i < n; ++i) {
    if (!op()) return 1;
  }
  ::getrusage(RUSAGE_SELF, &self1);  // and after
  ::getrusage(RUSAGE_CHILDREN, &child1);
  std::pair<long, long> server1 = server ? faults_of(*server) : std::pair<long, long>{-1, -1};
  double per = n > 0 ? 1.0 / static_cast<double>(n) : 0.0;
  std::printf("%.*s: %ld ops; per op: minor faults self %.1f children %.1f; "
              "voluntary context switches self %.1f children %.1f; involuntary self %.1f children %.1f\n",
              static_cast<int>(kind.size()), kind.data(), n,
              static_cast<double>(self1.ru_minflt - self0.ru_minflt) * per,
              static_cast<double>(child1.ru_minflt - child0.ru_minflt) * per,
              static_cast<double>(self1.ru_nvcsw - self0.ru_nvcsw) * per,
              static_cast<double>(child1.ru_nvcsw - child0.ru_nvcsw) * per,
              static_cast<double>(self1.ru_nivcsw - self0.ru_nivcsw) * per,
              static_cast<double>(child1.ru_nivcsw - child0.ru_nivcsw) * per);
  if (server && server0.first >= 0 && server1.first >= 0) {
    std::printf("forkserver: per op: minor faults of the server %.1f, of its children %.1f\n",
                static_cast<double>(server1.first - server0.first) * per,
                static_cast<double>(server1.second - server0.second) * per);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // First thing: in a child started by spawn or forkserver (this program run
  // again with --multiprocessing-fork), run the Process object and exit,
  // instead of running the benchmarks again.  Also runs the fork server.
  multiprocessing::freeze_support();
  // BM_RawPosixSpawnSelf's child: everything up to here, then exit.
  if (argc == 2 && std::string_view(argv[1]) == "--exit-at-once") return 0;
  if (argc == 2 && std::string_view(argv[1]).starts_with("--count=")) {
    return count_ops(std::string_view(argv[1]).substr(8));
  }

  // Our own flags out, Google Benchmark's in.
  std::vector<std::int64_t> scale = bench::take_scale(argc, argv);
  std::vector<char*> rest{argv[0]};
  bool interleave_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (take_int_flag(a, "--ops=", g_ops) || take_int_flag(a, "--reps=", g_reps) ||
        take_int_flag(a, "--warmup=", g_warmup) || take_int_flag(a, "--spawn-ops=", g_spawn_ops)) {
      continue;
    }
    if (a.starts_with("--benchmark_enable_random_interleaving")) interleave_given = true;
    rest.push_back(argv[i]);
  }
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  if (!interleave_given) rest.push_back(interleave);
  int rest_argc = static_cast<int>(rest.size());
  rest.push_back(nullptr);

  struct Bench {
    const char* name;
    void (*fn)(benchmark::State&);
    int ops;
  };
  if (!scale.empty()) {
    // 100 children per repetition at least: a batch of one is too short to time alone.
    bench::register_scale("BM_Scale_StartJoinSeq_Lib", BM_Scale_StartJoinSeq_Lib, scale, 100);
    bench::register_scale("BM_Scale_StartJoinSeq_Raw", BM_Scale_StartJoinSeq_Raw, scale, 100);
    bench::register_scale("BM_Scale_StartJoinAll_Lib", BM_Scale_StartJoinAll_Lib, scale, 100);
    bench::register_scale("BM_Scale_StartJoinAll_Raw", BM_Scale_StartJoinAll_Raw, scale, 100);
  }
  for (auto [name, fn, ops] : scale.empty() ? std::vector<Bench>{Bench{"BM_ProcessStartJoin", &BM_ProcessStartJoin, g_ops},
                               Bench{"BM_RawForkWaitpid", &BM_RawForkWaitpid, g_ops},
                               Bench{"BM_RawForkWaitpid_RSS8M", &BM_RawForkWaitpid_RSS8M, g_ops},
                               Bench{"BM_SpawnStartJoin", &BM_SpawnStartJoin, g_spawn_ops},
                               Bench{"BM_SpawnStartJoin_SmallExe", &BM_SpawnStartJoin_SmallExe, g_spawn_ops},
                               Bench{"BM_ForkserverStartJoin", &BM_ForkserverStartJoin, g_ops},
                               Bench{"BM_RawPosixSpawnTrue", &BM_RawPosixSpawnTrue, g_ops},
                               Bench{"BM_RawPosixSpawnSelf", &BM_RawPosixSpawnSelf, g_spawn_ops},
                               Bench{"BM_RawPosixSpawnSmallExe", &BM_RawPosixSpawnSmallExe, g_spawn_ops},
                               Bench{"BM_RawPosixSpawnEmptyMain", &BM_RawPosixSpawnEmptyMain, g_ops}}
                                            : std::vector<Bench>{}) {
    benchmark::RegisterBenchmark(name, fn)
        ->Iterations(ops)
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
