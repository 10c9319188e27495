// bench/bench_queues.cpp — small ints through a queue from one
// process to another (shared/reference/bench-operations.md, operation 5,
// queue_throughput), this library against the raw calls a queue stands on.
//
//   BM_Lib_Queue          a forked producer waits for 'go' on a pipe, then
//                         q.put(i) for i in range(50 000) and q.put(None); the
//                         parent starts the clock, sends 'go' and q.get()s until
//                         None (Queue: the producer's feeder thread writes)
//   BM_Lib_SimpleQueue    the same over SimpleQueue (put writes in the caller)
//   BM_Raw_PipeFramed     C: a forked writer sends 200 000 framed messages of
//                         16 bytes (the size of a pickled int) on a pipe, one
//                         write() each; the reader read()s 4 bytes, then 16
//   BM_Raw_PipeFramedLocked   the same with a process-shared semaphore held
//                         around each write and another around each read, as
//                         SimpleQueue's _wlock and _rlock
//
// With --scale=N1,N2,... only the scaling series run (bench/report.sh): one
// round of n items per iteration, seconds per round:
//   BM_Scale_Queue_Lib/<n>   BM_Lib_Queue's round with n items
//   BM_Scale_Queue_Raw/<n>   BM_Raw_PipeFramedLocked's round with n items
//
// One repetition = one round, timed by hand with CLOCK_MONOTONIC (manual time:
// the real_time reported is seconds per round); a warm-up round first, untimed.
// bench/summarize_queues.py turns rounds into items/s.  The four are
// interleaved at random so that they see the same noise; bench/cpython_queues.py
// measures CPython the same way and bench/run_queues.sh alternates the two.
#include <fcntl.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <multiprocessing.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

constexpr std::int64_t kLibItems = 50'000;   // per round, as CPython's op 5
constexpr std::int64_t kRawItems = 200'000;  // per round, for the C references
constexpr std::size_t kPayload = 16;         // len(pickle.dumps(i)) + 1 for 256 <= i < 65536

using bench::now;
using bench::read_all;
using bench::write_all;

// ------------------------------------------------------------------ the library

/// One round: fork a producer that waits for 'go', then puts 0..n-1 and None;
/// time from 'go' to the None got.
template <class Q>
double lib_round(mp::BaseContext& ctx, Q& q, std::int64_t items = kLibItems) {
  auto [go_r, go_w] = ctx.Pipe(/*duplex=*/false);
  auto producer = ctx.Process({.target = [&q, &go_r = go_r, items] {
    go_r.recv_bytes();  // wait for the parent's clock to start
    for (std::int64_t i = 0; i < items; ++i) q.put(i);
    q.put(mp::None{});
  }});
  producer->start();
  go_r.close();
  double t0 = now();
  go_w.send_bytes("g");
  std::int64_t got = 0;
  while (!q.get().is_none()) ++got;
  double elapsed = now() - t0;
  producer->join();
  if (got != items || producer->exitcode() != 0) {
    std::fprintf(stderr, "bench_queues: got %lld items, producer exit code %d\n",
                 static_cast<long long>(got), producer->exitcode().value_or(-1));
    std::exit(2);
  }
  return elapsed;
}

template <class Q>
void run_lib(benchmark::State& state, Q q, mp::BaseContext& ctx) {
  lib_round(ctx, q);  // warm-up
  for (auto _ : state) state.SetIterationTime(lib_round(ctx, q));
  state.counters["items"] = static_cast<double>(kLibItems);
}

void BM_Lib_Queue(benchmark::State& state) {
  auto& ctx = mp::get_context("fork");  // op 5 forks its producer
  run_lib(state, ctx.Queue(), ctx);
}

void BM_Lib_SimpleQueue(benchmark::State& state) {
  auto& ctx = mp::get_context("fork");
  run_lib(state, ctx.SimpleQueue(), ctx);
}

// ------------------------------------------------------------------ raw C

void sem_acquire(sem_t* s) {
  while (::sem_wait(s) != 0 && errno == EINTR) {
  }
}

/// The two locks of pipe_framed_locked, in a MAP_SHARED page both processes
/// see (sem_init with pshared=1: the futex lives in that page).
struct SharedLocks {
  sem_t wlock;
  sem_t rlock;
};

/// One raw round: a forked writer sends n framed 16-byte items then a 1-byte
/// end frame; the reader reads header + payload until the end frame.
double raw_round(SharedLocks* locks, std::int64_t items = kRawItems) {
  // O_CLOEXEC: the library's benchmarks, interleaved with these, start
  // children too; none of them should hold a stray end of this pipe.
  int data[2], go[2];
  if (::pipe2(data, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) std::abort();
  pid_t pid = ::fork();
  if (pid == 0) {
    // The writer: close the ends it does not use, so that the reader's EOF
    // would come when it exits; _exit, not exit: no atexit handler of the
    // parent (Google Benchmark's) runs twice.
    ::close(data[0]);
    ::close(go[1]);
    char g;
    if (!read_all(go[0], &g, 1)) ::_exit(4);
    char frame[4 + kPayload] = {0, 0, 0, static_cast<char>(kPayload)};
    for (std::int64_t i = 0; i < items; ++i) {
      frame[4] = static_cast<char>(i);  // the bytes vary, as the pickled ints do
      if (locks != nullptr) sem_acquire(&locks->wlock);
      write_all(data[1], frame, sizeof frame);
      if (locks != nullptr) ::sem_post(&locks->wlock);
    }
    const char end[5] = {0, 0, 0, 1, 'N'};
    write_all(data[1], end, sizeof end);
    ::_exit(0);
  }
  ::close(data[1]);
  ::close(go[0]);
  double t0 = now();
  write_all(go[1], "g", 1);
  std::int64_t got = 0;
  char header[4], payload[kPayload];
  while (true) {
    if (locks != nullptr) sem_acquire(&locks->rlock);
    if (!read_all(data[0], header, 4)) std::abort();
    std::size_t n = static_cast<unsigned char>(header[3]);
    if (!read_all(data[0], payload, n)) std::abort();
    if (locks != nullptr) ::sem_post(&locks->rlock);
    if (n != kPayload) break;
    benchmark::DoNotOptimize(payload);
    ++got;
  }
  double elapsed = now() - t0;
  ::close(data[0]);
  ::close(go[1]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got != items || status != 0) std::abort();
  return elapsed;
}

void run_raw(benchmark::State& state, SharedLocks* locks) {
  raw_round(locks);  // warm-up
  for (auto _ : state) state.SetIterationTime(raw_round(locks));
  state.counters["items"] = static_cast<double>(kRawItems);
}

void BM_Raw_PipeFramed(benchmark::State& state) { run_raw(state, nullptr); }

/// `body(locks)` with the two locks of pipe_framed_locked made for it.
template <class F>
void with_shared_locks(F body) {
  // MAP_SHARED: the forked writer must see the same semaphores.
  void* page = ::mmap(nullptr, sizeof(SharedLocks), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) std::abort();
  auto* locks = static_cast<SharedLocks*>(page);
  ::sem_init(&locks->wlock, /*pshared=*/1, 1);
  ::sem_init(&locks->rlock, /*pshared=*/1, 1);
  body(locks);
  ::sem_destroy(&locks->wlock);
  ::sem_destroy(&locks->rlock);
  ::munmap(page, sizeof(SharedLocks));  // the writers have exited: nobody maps it but us
}

void BM_Raw_PipeFramedLocked(benchmark::State& state) {
  with_shared_locks([&state](SharedLocks* locks) { run_raw(state, locks); });
}

// ------------------------------------------------------------------ scaling

void BM_Scale_Queue_Lib(benchmark::State& state) {
  auto& ctx = mp::get_context("fork");
  auto q = ctx.Queue();
  lib_round(ctx, q, 1);  // warm-up
  for (auto _ : state) state.SetIterationTime(lib_round(ctx, q, state.range(0)));
}

void BM_Scale_Queue_Raw(benchmark::State& state) {
  with_shared_locks([&state](SharedLocks* locks) {
    raw_round(locks, 1);  // warm-up
    for (auto _ : state) state.SetIterationTime(raw_round(locks, state.range(0)));
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> scale = bench::take_scale(argc, argv);
  if (!scale.empty()) {
    // A round forks its producer: 100 rounds of one item, one round of 100 or more.
    bench::register_scale("BM_Scale_Queue_Lib", BM_Scale_Queue_Lib, scale, 100);
    bench::register_scale("BM_Scale_Queue_Raw", BM_Scale_Queue_Raw, scale, 100);
    return bench::run_interleaved(argc, argv, /*scale=*/true);
  }
  struct Entry {
    const char* name;
    void (*fn)(benchmark::State&);
  };
  for (Entry e : {Entry{"BM_Lib_Queue", BM_Lib_Queue}, Entry{"BM_Lib_SimpleQueue", BM_Lib_SimpleQueue},
                  Entry{"BM_Raw_PipeFramed", BM_Raw_PipeFramed},
                  Entry{"BM_Raw_PipeFramedLocked", BM_Raw_PipeFramedLocked}}) {
    benchmark::RegisterBenchmark(e.name, e.fn)->Iterations(1)->Repetitions(5)->UseManualTime()->Unit(
        benchmark::kMillisecond);
  }
  return bench::run_interleaved(argc, argv);
}
