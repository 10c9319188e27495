// bench/fork_first_write.cpp — what the parent's first write to a page costs
// after fork(), while the child still lives and once it has been reaped.
//
//   taskset -c 1 build/release/bench/bench_fork_first_write
//
// fork() write-protects every private page of the parent.  The first write to
// one afterwards is a page fault.  While the child lives the page is shared
// with it, and the fault copies it into a new page; once the child has been
// reaped, the kernel hands the page back to the parent without a copy.  Each
// of 200 rounds forks a child that exits at once, writes one byte into each of
// 8 pages before waitpid() (pinned to one CPU, the child has not run yet: it
// lives) and into 8 other pages after it, and times both; the medians per page
// are printed.  bench/README.md ("Fork: page faults and system calls", fifth
// round) uses the two numbers to weigh the parent's faults.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

double now_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main() {
  constexpr int kPages = 16;
  constexpr int kRounds = 200;
  constexpr std::size_t kPage = 4096;
  // Private anonymous memory, every page dirtied once so that it is mapped.
  auto* mem = static_cast<char*>(::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) return 1;
  std::memset(mem, 1, kPages * kPage);
  std::vector<double> alive, reaped;
  for (int round = 0; round < kRounds; ++round) {
    pid_t pid = ::_Fork();  // _Fork: no pthread_atfork handlers, the bare system call
    if (pid < 0) return 1;
    if (pid == 0) ::_exit(0);
    double t0 = now_us();
    for (int k = 0; k < kPages / 2; ++k) mem[k * kPage] += 1;
    double t1 = now_us();
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return 1;
    double t2 = now_us();
    for (int k = kPages / 2; k < kPages; ++k) mem[k * kPage] += 1;
    double t3 = now_us();
    alive.push_back((t1 - t0) / (kPages / 2));
    reaped.push_back((t3 - t2) / (kPages / 2));
  }
  std::printf("first write to a page after fork(), per page (median of %d rounds): "
              "%.1f us while the child lives, %.1f us once it is reaped\n",
              kRounds, median(alive), median(reaped));
  return 0;
}
