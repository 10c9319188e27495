// bench/bench_pool.cpp — Pool against a raw pool with the same architecture
// (bench-operations.md, operation 9, pool_map_overhead).
//
//   BM_Lib_Map/<chunksize>     Pool(2) (fork), pool.map(ident, range(100000)),
//                              chunksize 0 = the default (12 500: 8 tasks) or
//                              1000 (100 tasks); µs per map
//   BM_Lib_ApplyAsyncRtt       pool.apply_async(ident, (i,)).get(), one at a
//                              time; µs per call
//   BM_Lib_ImapUnordered       for r in pool.imap_unordered(ident, range(10000));
//                              µs per 10 000 items
//   BM_Raw_Map/<chunksize>     the raw limit: 2 forked workers reading one task
//                              pipe under a process-shared semaphore, writing
//                              one result pipe under another; framed messages of
//                              {start, count, count x int64}; a feeder thread
//                              in the parent writes the tasks while the main
//                              thread collects the results
//   BM_Raw_ApplyRtt            one 1-item task written, its result read
//
// With --scale=N1,N2,... only the scaling series run (bench/report.sh): one
// map of n items per iteration, default chunksize, seconds per map:
//   BM_Scale_Map_Lib/<n>   pool.map(ident, range(n))
//   BM_Scale_Map_Raw/<n>   the raw pool's map of n items, chunks as Pool's
//                          default cuts them (n / (4 x 2 workers), rounded up)
//
// With --count=KIND:N (alone) no benchmark runs: N maps of 100 000 ints
// after 3 untimed ones, then per map the CPU time, the times a thread was
// put on a CPU and the minor page faults of the parent (all its threads) and
// of the two workers, from /proc (counts that a loaded machine changes
// little, unlike the wall clock).  KIND: lib_map_default, lib_map_1000,
// raw_map_default, raw_map_1000.
//
// With --placement=split the parent's threads run on CPU 0 and both pools'
// workers on CPU 1, so that every wake-up of a round trip crosses CPUs (the
// scheduler otherwise decides, and may keep a caller and its worker on one
// CPU or not; bench/README.md, "apply_async's spread").
//
// Times are manual (CLOCK_MONOTONIC around each op); the value is the median
// over repetitions.  bench/cpython_pool.py measures CPython the same way;
// bench/run_pool.sh runs both, alternating, and prints the table.
#include <dirent.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

constexpr std::int64_t kMapItems = 100000;
constexpr std::int64_t kImapItems = 10000;

using bench::now;

bool split_placement = false;  // --placement=split

// Under --placement=split, move a pool's worker processes to CPU 1.
void place_workers(const std::vector<pid_t>& pids) {
  if (!split_placement) return;
  cpu_set_t cpu1;
  CPU_ZERO(&cpu1);
  CPU_SET(1, &cpu1);
  // Pin the worker to CPU 1 (the parent's threads stay on CPU 0).
  for (pid_t pid : pids) ::sched_setaffinity(pid, sizeof cpu1, &cpu1);
}

std::int64_t ident(std::int64_t x) { return x; }

mp::Object::List range(std::int64_t n) {
  mp::Object::List out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out.emplace_back(i);
  return out;
}

// One pool for all the library's benchmarks: made and warmed once (a map of
// 1000), untimed, as the operation's definition asks.
mp::pool::Pool& the_pool() {
  static mp::pool::Pool* pool = [] {
    auto* p = new mp::pool::Pool(mp::get_context("fork").Pool(2));
    std::vector<pid_t> pids;
    for (mp::BaseProcess* w : mp::active_children()) pids.push_back(*w->pid());
    place_workers(pids);
    p->map(ident, range(1000));
    return p;
  }();
  return *pool;
}

/// Maps of range(n) on the pool, timed one by one.
void lib_maps(benchmark::State& state, std::int64_t n, std::optional<int> chunksize) {
  auto& pool = the_pool();
  mp::Object::List items = range(n);
  for (auto _ : state) {
    double t0 = now();
    mp::Object::List out = pool.map(ident, items, chunksize);
    double t1 = now();
    if (out.size() != static_cast<std::size_t>(n) || out.back() != mp::Object(n - 1)) {
      state.SkipWithError("wrong results");
      break;
    }
    state.SetIterationTime(t1 - t0);
  }
}

void BM_Lib_Map(benchmark::State& state) {
  std::optional<int> chunksize;
  if (state.range(0) > 0) chunksize = static_cast<int>(state.range(0));
  lib_maps(state, kMapItems, chunksize);
}

void BM_Lib_ApplyAsyncRtt(benchmark::State& state) {
  auto& pool = the_pool();
  std::int64_t i = 0;
  for (auto _ : state) {
    double t0 = now();
    mp::Object r = pool.apply_async(ident, {i}).get();
    double t1 = now();
    if (r != mp::Object(i)) {
      state.SkipWithError("wrong result");
      break;
    }
    ++i;
    state.SetIterationTime(t1 - t0);
  }
}

void BM_Lib_ImapUnordered(benchmark::State& state) {
  auto& pool = the_pool();
  mp::Object::List items = range(kImapItems);
  for (auto _ : state) {
    double t0 = now();
    std::int64_t sum = 0;
    for (const mp::Object& r : pool.imap_unordered(ident, items)) sum += r.as<std::int64_t>();
    double t1 = now();
    if (sum != kImapItems * (kImapItems - 1) / 2) {
      state.SkipWithError("wrong results");
      break;
    }
    state.SetIterationTime(t1 - t0);
  }
}

// ------------------------------------------------------------------ the raw pool

// A message: a 4-byte length, then {start, count, count x int64}.
void send_message(int fd, std::int64_t start, const std::int64_t* items, std::int64_t count,
                  std::vector<char>& scratch) {
  std::uint32_t len = static_cast<std::uint32_t>(16 + count * 8);
  scratch.resize(4 + len);
  std::memcpy(scratch.data(), &len, 4);
  std::memcpy(scratch.data() + 4, &start, 8);
  std::memcpy(scratch.data() + 12, &count, 8);
  if (count > 0) std::memcpy(scratch.data() + 20, items, static_cast<std::size_t>(count) * 8);
  bench::write_all(fd, scratch.data(), scratch.size());
}

bool recv_message(int fd, std::int64_t& start, std::vector<std::int64_t>& items) {
  std::uint32_t len;
  if (!bench::read_all(fd, reinterpret_cast<char*>(&len), 4)) return false;
  std::vector<char> body(len);
  if (!bench::read_all(fd, body.data(), len)) return false;
  std::int64_t count;
  std::memcpy(&start, body.data(), 8);
  std::memcpy(&count, body.data() + 8, 8);
  items.resize(static_cast<std::size_t>(count));
  if (count > 0) std::memcpy(items.data(), body.data() + 16, static_cast<std::size_t>(count) * 8);
  return true;
}

struct RawPool {
  int task_r = -1, task_w = -1, result_r = -1, result_w = -1;
  sem_t* locks = nullptr;  // [0] task pipe read lock, [1] result pipe write lock
  std::vector<pid_t> workers;

  RawPool() {
    int t[2], r[2];
    if (::pipe(t) != 0 || ::pipe(r) != 0) std::abort();
    task_r = t[0], task_w = t[1], result_r = r[0], result_w = r[1];
    void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    locks = static_cast<sem_t*>(page);
    ::sem_init(&locks[0], 1, 1);
    ::sem_init(&locks[1], 1, 1);
    for (int k = 0; k < 2; ++k) {
      pid_t pid = ::fork();
      if (pid == 0) worker();
      workers.push_back(pid);
    }
    place_workers(workers);
  }
  [[noreturn]] void worker() {
    // Only the parent keeps the task pipe's write end (and reads results):
    // when it exits without the destructor (the pool is never deleted), the
    // workers read EOF and exit instead of outliving the benchmark.
    ::close(task_w);
    ::close(result_r);
    std::int64_t start;
    std::vector<std::int64_t> items;
    std::vector<char> scratch;
    while (true) {
      ::sem_wait(&locks[0]);
      bool ok = recv_message(task_r, start, items);
      ::sem_post(&locks[0]);
      if (!ok || start < 0) ::_exit(0);
      for (auto& x : items) x = x;  // ident
      ::sem_wait(&locks[1]);
      send_message(result_w, start, items.data(), static_cast<std::int64_t>(items.size()), scratch);
      ::sem_post(&locks[1]);
    }
  }
  ~RawPool() {
    std::vector<char> scratch;
    for (std::size_t k = 0; k < workers.size(); ++k) send_message(task_w, -1, nullptr, 0, scratch);
    for (pid_t pid : workers) ::waitpid(pid, nullptr, 0);
    for (int fd : {task_r, task_w, result_r, result_w}) ::close(fd);
    ::munmap(locks, 4096);
  }
  // One map: a feeder thread writes the chunks, this thread collects.  When
  // all the tasks fit in the task pipe's buffer (64 KiB), writing them cannot
  // block: this thread writes them first, and no thread is started.
  void map(const std::vector<std::int64_t>& in, std::vector<std::int64_t>& out, std::int64_t chunk) {
    std::int64_t n = static_cast<std::int64_t>(in.size());
    auto feed = [&] {
      std::vector<char> scratch;
      for (std::int64_t s = 0; s < n; s += chunk) send_message(task_w, s, in.data() + s, std::min(chunk, n - s), scratch);
    };
    std::thread feeder;
    if (n * 8 + (n / chunk + 1) * 20 < 65536) {
      feed();
    } else {
      feeder = std::thread(feed);
    }
    std::int64_t got = 0, start;
    std::vector<std::int64_t> items;
    while (got < n) {
      recv_message(result_r, start, items);
      std::memcpy(out.data() + start, items.data(), items.size() * 8);
      got += static_cast<std::int64_t>(items.size());
    }
    if (feeder.joinable()) feeder.join();
  }
};

RawPool& the_raw_pool() {
  static RawPool* pool = new RawPool();
  return *pool;
}

/// Maps of n items on the raw pool in chunks of `chunk`, timed one by one.
void raw_maps(benchmark::State& state, std::int64_t n, std::int64_t chunk) {
  auto& pool = the_raw_pool();
  std::vector<std::int64_t> in(static_cast<std::size_t>(n)), out(in.size());
  for (std::int64_t i = 0; i < n; ++i) in[static_cast<std::size_t>(i)] = i;
  for (auto _ : state) {
    double t0 = now();
    pool.map(in, out, chunk);
    double t1 = now();
    if (out.back() != n - 1) {
      state.SkipWithError("wrong results");
      break;
    }
    state.SetIterationTime(t1 - t0);
  }
}

void BM_Raw_Map(benchmark::State& state) {
  raw_maps(state, kMapItems, state.range(0) > 0 ? state.range(0) : 12500);
}

// ------------------------------------------------------------------ scaling

void BM_Scale_Map_Lib(benchmark::State& state) { lib_maps(state, state.range(0), std::nullopt); }

// Pool's default chunksize: 4 chunks per worker, 2 workers.
void BM_Scale_Map_Raw(benchmark::State& state) { raw_maps(state, state.range(0), (state.range(0) + 7) / 8); }

void BM_Raw_ApplyRtt(benchmark::State& state) {
  auto& pool = the_raw_pool();
  std::vector<char> scratch;
  std::vector<std::int64_t> items;
  std::int64_t i = 0, start;
  for (auto _ : state) {
    double t0 = now();
    send_message(pool.task_w, 0, &i, 1, scratch);
    recv_message(pool.result_r, start, items);
    double t1 = now();
    if (items.size() != 1 || items[0] != i) {
      state.SkipWithError("wrong result");
      break;
    }
    ++i;
    state.SetIterationTime(t1 - t0);
  }
}

// ------------------------------------------------------------------ counting mode

/// What /proc says of a process so far: CPU time (ns) and the times its
/// threads were put on a CPU (fields 1 and 3 of each thread's schedstat,
/// summed over /proc/<pid>/task), and its minor page faults (field 10 of stat).
struct ProcCounts {
  double cpu_ns = 0, slices = 0, faults = 0;
  std::map<std::string, std::pair<double, double>> threads;  // tid -> (cpu_ns, slices)
};

ProcCounts proc_counts(pid_t pid) {
  ProcCounts c;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  // /proc/<pid>/task holds one entry per thread: the parent's handler
  // threads are counted one by one (the process's own schedstat is its main
  // thread's alone).
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      // The thread's schedstat: ns on a CPU, ns waiting for one, times put on one.
      std::FILE* f = std::fopen((dir + "/" + e->d_name + "/schedstat").c_str(), "r");
      if (f == nullptr) continue;  // a thread that ended meanwhile
      unsigned long long run = 0, wait = 0, slices = 0;
      if (std::fscanf(f, "%llu %llu %llu", &run, &wait, &slices) == 3) {
        c.cpu_ns += static_cast<double>(run);
        c.slices += static_cast<double>(slices);
        c.threads[e->d_name] = {static_cast<double>(run), static_cast<double>(slices)};
      }
      std::fclose(f);
    }
    ::closedir(d);
  }
  // The process's stat: its minor faults, all threads together.
  if (std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r")) {
    char line[1024] = {};
    std::size_t got = std::fread(line, 1, sizeof line - 1, f);
    std::fclose(f);
    line[got] = '\0';
    long minflt = 0;
    // After the command name (in parentheses): state ppid pgrp session tty_nr tpgid flags minflt.
    if (const char* p = std::strrchr(line, ')'); p != nullptr &&
        std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %ld", &minflt) == 1) {
      c.faults = static_cast<double>(minflt);
    }
  }
  return c;
}

/// `--count=KIND:N`: N maps of KIND after 3 untimed ones, then one line per
/// process (the parent, each worker) with its counts per map.
int count_maps(std::string_view spec) {
  auto colon = spec.find(':');
  std::string_view kind = spec.substr(0, colon);
  long n = colon == std::string_view::npos ? 0 : std::atol(std::string(spec.substr(colon + 1)).c_str());
  bool lib = kind.starts_with("lib_"), raw = kind.starts_with("raw_");
  bool by_default = kind.ends_with("_map_default"), by_1000 = kind.ends_with("_map_1000");
  if (!(lib || raw) || !(by_default || by_1000) || n < 0) {
    std::fprintf(stderr, "--count=KIND:N with KIND one of lib_map_default, lib_map_1000, raw_map_default, raw_map_1000\n");
    return 2;
  }
  std::vector<pid_t> pids{::getpid()};
  std::function<void()> op;
  mp::Object::List items = range(kMapItems);
  std::vector<std::int64_t> in(static_cast<std::size_t>(kMapItems)), out(in.size());
  for (std::int64_t i = 0; i < kMapItems; ++i) in[static_cast<std::size_t>(i)] = i;
  if (lib) {
    auto& pool = the_pool();
    for (pid_t pid : pool._worker_pids()) pids.push_back(pid);
    std::optional<int> chunksize;
    if (by_1000) chunksize = 1000;
    // The result list is destroyed inside the op (the benchmark does that
    // outside its timed part): its CPU time counts in the parent's.
    op = [&pool, &items, chunksize] {
      mp::Object::List results = pool.map(ident, items, chunksize);
      if (results.size() != items.size()) std::abort();
    };
  } else {
    auto& pool = the_raw_pool();
    for (pid_t pid : pool.workers) pids.push_back(pid);
    std::int64_t chunk = by_1000 ? 1000 : 12500;
    op = [&pool, &in, &out, chunk] { pool.map(in, out, chunk); };
  }
  for (int i = 0; i < 3; ++i) op();
  std::vector<ProcCounts> before, after;
  for (pid_t pid : pids) before.push_back(proc_counts(pid));
  double t0 = now();
  for (long i = 0; i < n; ++i) op();
  double t1 = now();
  for (pid_t pid : pids) after.push_back(proc_counts(pid));
  double per = n > 0 ? 1.0 / static_cast<double>(n) : 0.0;
  std::printf("%.*s: %ld maps, %.1f us each by the wall clock (the machine's load changes it)\n",
              static_cast<int>(kind.size()), kind.data(), n, (t1 - t0) * 1e6 * per);
  double total = 0;
  for (std::size_t k = 0; k < pids.size(); ++k) {
    double cpu = (after[k].cpu_ns - before[k].cpu_ns) * per / 1000;
    total += cpu;
    std::printf("  %-8s per map: CPU %.1f us, put on a CPU %.1f times, minor faults %.1f\n",
                k == 0 ? "parent" : "worker", cpu, (after[k].slices - before[k].slices) * per,
                (after[k].faults - before[k].faults) * per);
    if (after[k].threads.size() < 2) continue;
    for (const auto& [tid, counts] : after[k].threads) {
      auto was = before[k].threads.find(tid);
      if (was == before[k].threads.end()) continue;
      std::printf("    thread %-6s CPU %.1f us, put on a CPU %.1f times\n", tid.c_str(),
                  (counts.first - was->second.first) * per / 1000, (counts.second - was->second.second) * per);
    }
  }
  std::printf("  all      per map: CPU %.1f us\n", total);
  return 0;
}

}  // namespace

MP_REGISTER_TARGET(ident);

BENCHMARK(BM_Lib_Map)->Arg(0)->Arg(1000)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(5)->Repetitions(7)->ReportAggregatesOnly(true);
BENCHMARK(BM_Raw_Map)->Arg(0)->Arg(1000)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(20)->Repetitions(7)->ReportAggregatesOnly(true);
BENCHMARK(BM_Lib_ApplyAsyncRtt)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(1000)->Repetitions(7)->ReportAggregatesOnly(true);
BENCHMARK(BM_Raw_ApplyRtt)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(5000)->Repetitions(7)->ReportAggregatesOnly(true);
BENCHMARK(BM_Lib_ImapUnordered)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(3)->Repetitions(7)->ReportAggregatesOnly(true);

int main(int argc, char** argv) {
  mp::freeze_support();
  if (argc == 2 && std::string_view(argv[1]).starts_with("--count=")) {
    return count_maps(std::string_view(argv[1]).substr(8));
  }
  std::vector<std::int64_t> scale = bench::take_scale(argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) != "--placement=split") continue;
    split_placement = true;
    std::copy(argv + i + 1, argv + argc + 1, argv + i);  // drop it, with the final null
    --argc;
    cpu_set_t cpu0;
    CPU_ZERO(&cpu0);
    CPU_SET(0, &cpu0);
    // Pin this thread to CPU 0: the pool's handler threads, started from
    // it, inherit that; the workers are moved to CPU 1 once forked.
    ::sched_setaffinity(0, sizeof cpu0, &cpu0);
    break;
  }
  // 10 000 items per repetition at least: a map of 10 is too short to time alone.
  bench::register_scale("BM_Scale_Map_Lib", BM_Scale_Map_Lib, scale, 10000);
  bench::register_scale("BM_Scale_Map_Raw", BM_Scale_Map_Raw, scale, 10000);
  return bench::run_interleaved(argc, argv, /*scale=*/!scale.empty());
}
