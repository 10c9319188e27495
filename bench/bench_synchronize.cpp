// bench/bench_synchronize.cpp — bench-operations.md ops 6
// and 7: locks across processes, this library against the raw calls.
//
//   BM_Lib_Lock             acquire() + release() of a synchronize::Lock that
//                           nobody else touches; one op = one pair
//   BM_Lib_RLock            the same with an RLock
//   BM_Lib_LockGuard        std::lock_guard on a Lock (Python: `with lock: pass`)
//   BM_Raw_SemWaitPost      sem_wait + sem_post on an unnamed process-shared
//                           semaphore (sem_init(pshared=1) in a MAP_SHARED page)
//   BM_Raw_SemlockMirror    what CPython's SemLock does for a Lock on Linux: a
//                           named semaphore, sem_trywait, sem_getvalue + sem_post
//
//   BM_*_Counter            two forked processes each do kIncrements locked
//                           increments of one int in a MAP_SHARED page; each
//                           worker waits on an Event, then writes its own
//                           start and end time into the page, and the time
//                           of an op is max(end) - min(start) (process start
//                           and exit are not timed).  Lib_Lock:
//                           a Lock; Lib_RLock: an RLock (what Value's
//                           get_lock() gives); Raw_Sem: sem_wait/sem_post;
//                           Raw_Mutex: a process-shared pthread mutex.  The
//                           final count must be exact, or the op fails.
//                           Raw_Sem's semaphore shares the counter's cache
//                           line; Raw_Sem_Apart keeps it in a page of its own,
//                           as every SemLock is (sem_open maps one per
//                           semaphore), so the counter and the lock word are
//                           two cache lines in two pages, the layout a user of
//                           Lock or Value has.
//   BM_Lib_Value_Counter    op 7 as CPython's script does it: a fresh
//                           `auto v = mp::Value<'i'>(0)` per op (the int in the
//                           shared heap, its default lock an RLock), and each
//                           worker does
//                             { std::lock_guard g(v.get_lock());
//                               v.get_obj().set_value(v.get_obj().value() + 1); }
//                           (Python: `with lock: v.value += 1`, whose v.value
//                           read and write each re-enter the RLock; here
//                           get_obj() reads and writes the int directly, under
//                           the one acquisition).
//
// `bench_synchronize --pairs=KIND:N` runs N pairs (or one counter op) with no
// benchmark library, for instruction counts (callgrind) and system call
// counts (strace) per pair; see count_pairs below.
//
// Times are manual (CLOCK_MONOTONIC), in ms per op (an uncontended op is kPairs
// pairs; the counter's `incr_per_s` gives its rate).  The value
// is the median over repetitions, interleaved at random.
// bench/cpython_synchronize.py measures CPython the same way;
// bench/run_synchronize.sh runs both and prints the table.
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <multiprocessing.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

constexpr int kPairs = 100000;          // uncontended pairs per timed op
constexpr int kIncrements = 1000000;    // per process, contended counter

using bench::now;

/// One page shared by the parent and its forked children: the counter, the
/// workers' start/end times, and room for a raw semaphore or mutex.
struct SharedPage {
  int value;
  double start[2];
  double end[2];
  sem_t sem;
  pthread_mutex_t mutex;
  /// The raw semaphore of BM_Raw_Sem_Apart_Counter: in the counter's page, as
  /// bench-operations.md's reference has it, but on a 128-byte block of its own
  /// (a cache line and the neighbour the prefetcher pairs with it), as a SemLock's
  /// semaphore is never on the counter's line.
  alignas(128) sem_t apart_sem;
};

SharedPage* map_page() {
  // MAP_SHARED | MAP_ANONYMOUS: memory that a fork() shares instead of copying.
  void* p = ::mmap(nullptr, sizeof(SharedPage), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  return new (p) SharedPage{};
}

// ------------------------------------------------------------------ uncontended

template <typename Lockable>
void pairs_of(benchmark::State& state, Lockable& lock) {
  for (int i = 0; i < 1000; ++i) {  // warm-up
    lock.acquire();
    lock.release();
  }
  for (auto _ : state) {
    double t0 = now();
    for (int i = 0; i < kPairs; ++i) {
      lock.acquire();
      lock.release();
    }
    state.SetIterationTime(now() - t0);
  }
}

void BM_Lib_Lock(benchmark::State& state) {
  mp::synchronize::Lock lock = mp::Lock();
  pairs_of(state, lock);
}

void BM_Lib_RLock(benchmark::State& state) {
  mp::synchronize::RLock lock = mp::RLock();
  pairs_of(state, lock);
}

void BM_Lib_LockGuard(benchmark::State& state) {
  mp::synchronize::Lock lock = mp::Lock();
  for (auto _ : state) {
    double t0 = now();
    for (int i = 0; i < kPairs; ++i) {
      std::lock_guard<mp::synchronize::Lock> guard(lock);
      benchmark::ClobberMemory();
    }
    state.SetIterationTime(now() - t0);
  }
}

void BM_Raw_SemWaitPost(benchmark::State& state) {
  SharedPage* page = map_page();
  ::sem_init(&page->sem, /*pshared=*/1, 1);
  for (auto _ : state) {
    double t0 = now();
    for (int i = 0; i < kPairs; ++i) {
      ::sem_wait(&page->sem);
      ::sem_post(&page->sem);
    }
    state.SetIterationTime(now() - t0);
  }
  ::sem_destroy(&page->sem);
  ::munmap(page, sizeof(SharedPage));
}

void BM_Raw_SemlockMirror(benchmark::State& state) {
  std::string name = "/mp-bench-" + std::to_string(::getpid());
  sem_t* sem = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, 1);
  ::sem_unlink(name.c_str());
  for (auto _ : state) {
    double t0 = now();
    for (int i = 0; i < kPairs; ++i) {
      if (::sem_trywait(sem) != 0) ::sem_wait(sem);
      int value = 0;
      ::sem_getvalue(sem, &value);  // semaphore.c checks maxvalue before posting
      if (value < 1) ::sem_post(sem);
    }
    state.SetIterationTime(now() - t0);
  }
  ::sem_close(sem);
}

// ------------------------------------------------------------------ contended counter

/// One op with raw fork(): two workers, each running `work(page)` between its
/// own start and end stamps, released together by a pipe; returns
/// max(end) - min(start).
template <typename Work>
double counter_round_raw(SharedPage* page, Work work) {
  page->value = 0;
  int go[2];
  if (::pipe(go) != 0) std::exit(1);
  pid_t pids[2];
  for (int w = 0; w < 2; ++w) {
    pids[w] = ::fork();
    if (pids[w] == 0) {
      char c;
      ::close(go[1]);
      if (::read(go[0], &c, 1) != 1) ::_exit(2);  // wait for "go"
      page->start[w] = now();
      work(page);
      page->end[w] = now();
      ::_exit(0);
    }
  }
  ::close(go[0]);
  if (::write(go[1], "gg", 2) != 2) std::exit(1);
  ::close(go[1]);
  for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
  return std::max(page->end[0], page->end[1]) - std::min(page->start[0], page->start[1]);
}

template <typename Lockable>
double counter_round_lib(SharedPage* page, Lockable& lock, long increments = kIncrements) {
  page->value = 0;
  // An Event, as in CPython's script.  (Not one pipe that both workers read:
  // two readers of one pipe can split a framed message between them, and
  // then one of them waits forever for a length it read from the other's.)
  mp::synchronize::Event go = mp::Event();
  std::vector<std::unique_ptr<mp::Process>> workers;
  for (int k = 0; k < 2; ++k) {
    workers.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{.target = [page, &lock, &go, k, increments] {
      go.wait();
      page->start[k] = now();
      for (long i = 0; i < increments; ++i) {
        lock.acquire();
        page->value += 1;
        lock.release();
      }
      page->end[k] = now();
    }}));
    workers.back()->start();
  }
  go.set();
  for (auto& p : workers) p->join();
  return std::max(page->end[0], page->end[1]) - std::min(page->start[0], page->start[1]);
}

/// One op of BM_Lib_Value_Counter: the counter is a sharedctypes Value, not
/// the page's int; the page keeps only the time stamps, and gets the final
/// count so that counter() can check it like the others'.
double counter_round_value(SharedPage* page) {
  auto v = mp::Value<'i'>(0);
  mp::synchronize::Event go = mp::Event();
  std::vector<std::unique_ptr<mp::Process>> workers;
  for (int k = 0; k < 2; ++k) {
    workers.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{.target = [page, v, &go, k] {
      go.wait();
      page->start[k] = now();
      for (int i = 0; i < kIncrements; ++i) {
        std::lock_guard g(v.get_lock());
        v.get_obj().set_value(v.get_obj().value() + 1);
      }
      page->end[k] = now();
    }}));
    workers.back()->start();
  }
  go.set();
  for (auto& p : workers) p->join();
  page->value = v.get_obj().value();
  return std::max(page->end[0], page->end[1]) - std::min(page->start[0], page->start[1]);
}

template <typename Round>
void counter(benchmark::State& state, SharedPage* page, Round round) {
  round();  // warm-up
  for (auto _ : state) {
    double elapsed = round();
    state.SetIterationTime(elapsed);
    if (page->value != 2 * kIncrements) {
      state.SkipWithError("lost an update: the count is not 2 * kIncrements");
      break;
    }
  }
  state.counters["incr_per_s"] = benchmark::Counter(
      2.0 * kIncrements * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Lib_Lock_Counter(benchmark::State& state) {
  SharedPage* page = map_page();
  mp::synchronize::Lock lock = mp::Lock();
  counter(state, page, [&] { return counter_round_lib(page, lock); });
  ::munmap(page, sizeof(SharedPage));
}

void BM_Lib_RLock_Counter(benchmark::State& state) {
  SharedPage* page = map_page();
  mp::synchronize::RLock lock = mp::RLock();
  counter(state, page, [&] { return counter_round_lib(page, lock); });
  ::munmap(page, sizeof(SharedPage));
}

void BM_Lib_Value_Counter(benchmark::State& state) {
  SharedPage* page = map_page();
  counter(state, page, [&] { return counter_round_value(page); });
  ::munmap(page, sizeof(SharedPage));
}

void BM_Raw_Sem_Counter(benchmark::State& state) {
  SharedPage* page = map_page();
  ::sem_init(&page->sem, /*pshared=*/1, 1);
  counter(state, page, [&] {
    return counter_round_raw(page, [](SharedPage* p) {
      for (int i = 0; i < kIncrements; ++i) {
        ::sem_wait(&p->sem);
        p->value += 1;
        ::sem_post(&p->sem);
      }
    });
  });
  ::sem_destroy(&page->sem);
  ::munmap(page, sizeof(SharedPage));
}

/// The raw worker of BM_Raw_Sem_Apart_Counter and of `--pairs=counter_raw_apart`:
/// sem_wait + sem_post on a semaphore outside the counter's cache line.
void raw_apart_work(SharedPage* p, sem_t* sem, long increments) {
  for (long i = 0; i < increments; ++i) {
    ::sem_wait(sem);
    p->value += 1;
    ::sem_post(sem);
  }
}

void BM_Raw_Sem_Apart_Counter(benchmark::State& state) {
  SharedPage* page = map_page();
  // sem_init(pshared=1) in MAP_SHARED memory: the forked workers share it.
  ::sem_init(&page->apart_sem, /*pshared=*/1, 1);
  counter(state, page, [&] {
    return counter_round_raw(page, [sem = &page->apart_sem](SharedPage* p) { raw_apart_work(p, sem, kIncrements); });
  });
  ::sem_destroy(&page->apart_sem);
  ::munmap(page, sizeof(SharedPage));
}

void BM_Raw_Mutex_Counter(benchmark::State& state) {
  SharedPage* page = map_page();
  pthread_mutexattr_t attr;
  ::pthread_mutexattr_init(&attr);
  ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  ::pthread_mutex_init(&page->mutex, &attr);
  counter(state, page, [&] {
    return counter_round_raw(page, [](SharedPage* p) {
      for (int i = 0; i < kIncrements; ++i) {
        ::pthread_mutex_lock(&p->mutex);
        p->value += 1;
        ::pthread_mutex_unlock(&p->mutex);
      }
    });
  });
  ::pthread_mutex_destroy(&page->mutex);
  ::munmap(page, sizeof(SharedPage));
}

// ------------------------------------------------------------------ counting mode

/// `--pairs=KIND:N`: run N uncontended pairs of KIND and exit, with no
/// benchmark library in the loop, for counters that a loaded machine does
/// not change: instructions (`valgrind --tool=callgrind`) and system calls
/// (`strace -c`) per pair are the difference between a run with N and one
/// with N = 0, divided by N.  KIND: lib_lock, lib_rlock, lib_guard, raw
/// (sem_wait + sem_post), mirror (the SemLock mirror); counter_lib,
/// counter_raw, counter_raw_apart, counter_raw_named (the raw worker on a
/// named semaphore, which sem_open maps in a page of its own, as a SemLock's):
/// one contended counter op of N increments per worker.
int count_pairs(const std::string& spec) {
  auto colon = spec.find(':');
  std::string kind = spec.substr(0, colon);
  long n = colon == std::string::npos ? 0 : std::stol(spec.substr(colon + 1));
  if (kind == "lib_lock" || kind == "lib_rlock" || kind == "lib_guard") {
    mp::synchronize::SemLock lock = kind == "lib_rlock" ? mp::synchronize::SemLock(mp::RLock())
                                                        : mp::synchronize::SemLock(mp::Lock());
    if (kind == "lib_guard") {
      for (long i = 0; i < n; ++i) std::lock_guard<mp::synchronize::SemLock> guard(lock);
    } else {
      for (long i = 0; i < n; ++i) {
        lock.acquire();
        lock.release();
      }
    }
  } else if (kind == "raw") {
    SharedPage* page = map_page();
    ::sem_init(&page->sem, /*pshared=*/1, 1);
    for (long i = 0; i < n; ++i) {
      ::sem_wait(&page->sem);
      ::sem_post(&page->sem);
    }
    ::sem_destroy(&page->sem);
    ::munmap(page, sizeof(SharedPage));
  } else if (kind == "mirror") {
    std::string name = "/mp-bench-" + std::to_string(::getpid());
    sem_t* sem = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, 1);
    ::sem_unlink(name.c_str());
    for (long i = 0; i < n; ++i) {
      if (::sem_trywait(sem) != 0) ::sem_wait(sem);
      int value = 0;
      ::sem_getvalue(sem, &value);
      if (value < 1) ::sem_post(sem);
    }
    ::sem_close(sem);
  } else if (kind == "counter_lib" || kind == "counter_raw" || kind == "counter_raw_apart" ||
             kind == "counter_raw_named") {
    SharedPage* page = map_page();
    if (kind == "counter_raw_named") {
      std::string name = "/mp-bench-" + std::to_string(::getpid());
      // sem_open: a named semaphore in a mapping of its own, as SemLock makes;
      // unlinked at once, as in a fork context: the workers inherit the mapping.
      sem_t* sem = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, 1);
      ::sem_unlink(name.c_str());
      counter_round_raw(page, [n, sem](SharedPage* p) { raw_apart_work(p, sem, n); });
      ::sem_close(sem);
    } else if (kind == "counter_raw_apart") {
      ::sem_init(&page->apart_sem, /*pshared=*/1, 1);  // as in BM_Raw_Sem_Apart_Counter
      counter_round_raw(page, [n, sem = &page->apart_sem](SharedPage* p) { raw_apart_work(p, sem, n); });
      ::sem_destroy(&page->apart_sem);
    } else if (kind == "counter_raw") {
      ::sem_init(&page->sem, /*pshared=*/1, 1);
      counter_round_raw(page, [n](SharedPage* p) {
        for (long i = 0; i < n; ++i) {
          ::sem_wait(&p->sem);
          p->value += 1;
          ::sem_post(&p->sem);
        }
      });
      ::sem_destroy(&page->sem);
    } else {
      mp::synchronize::Lock lock = mp::Lock();
      counter_round_lib(page, lock, n);
    }
    bool exact = page->value == 2 * n;
    ::munmap(page, sizeof(SharedPage));
    if (!exact) {
      std::fprintf(stderr, "lost an update\n");
      return 1;
    }
  } else {
    std::fprintf(stderr, "--pairs=KIND:N with KIND one of lib_lock, lib_rlock, lib_guard, raw, "
                         "mirror, counter_lib, counter_raw, counter_raw_apart, counter_raw_named\n");
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]).rfind("--pairs=", 0) == 0) {
    return count_pairs(argv[1] + 8);
  }
  auto pairs = [](const char* name, void (*fn)(benchmark::State&)) {
    // One op = kPairs pairs; bench/summarize_synchronize.py divides.
    benchmark::RegisterBenchmark(name, fn)->Iterations(20)->Repetitions(7)->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  };
  pairs("BM_Lib_Lock", BM_Lib_Lock);
  pairs("BM_Lib_RLock", BM_Lib_RLock);
  pairs("BM_Lib_LockGuard", BM_Lib_LockGuard);
  pairs("BM_Raw_SemWaitPost", BM_Raw_SemWaitPost);
  pairs("BM_Raw_SemlockMirror", BM_Raw_SemlockMirror);
  auto counters = [](const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)->Iterations(1)->Repetitions(7)->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  };
  counters("BM_Lib_Lock_Counter", BM_Lib_Lock_Counter);
  counters("BM_Lib_RLock_Counter", BM_Lib_RLock_Counter);
  counters("BM_Lib_Value_Counter", BM_Lib_Value_Counter);
  counters("BM_Raw_Sem_Counter", BM_Raw_Sem_Counter);
  counters("BM_Raw_Sem_Apart_Counter", BM_Raw_Sem_Apart_Counter);
  counters("BM_Raw_Mutex_Counter", BM_Raw_Mutex_Counter);
  return bench::run_interleaved(argc, argv);
}
