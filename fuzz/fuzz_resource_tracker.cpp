// fuzz/fuzz_resource_tracker.cpp
// libFuzzer target: the resource tracker's line protocol
// (multiprocessing/resource_tracker.cpp, _TrackerProtocol, which the tracker
// process feeds with what it reads from its pipe), with arbitrary bytes as
// what the program's processes write.  The input is fed in pieces, cut where
// its bytes say, as read() may return it.  cleanup() is never called here:
// it would unlink whatever names the input registered from /dev/shm.
// What it checks, per input: nothing crashes; bad lines are reported on
// stderr and skipped; the names registered, of all types, are no more than
// the input's lines that could have registered one (a REGISTER line is at
// least 15 bytes, "REGISTER::noop\n"); the protocol allocates nothing with
// malloc (its table lives in pages from mmap: at most 536 bytes per
// registered name, doubled: about 72 bytes per input byte).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz/support.hpp"
#include "multiprocessing/resource_tracker.hpp"

namespace resource_tracker = multiprocessing::resource_tracker;

namespace {
int saved_stderr = -1;  // the real stderr, put back after each input
int dev_null = -1;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The protocol reports each bad line on fd 2; for fuzzing, those reports
  // go to /dev/null (millions of them), and the real stderr comes back for
  // this target's own verdict.
  saved_stderr = ::dup(STDERR_FILENO);
  dev_null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  fuzz::HeapPeak::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::HeapPeak::start();
  std::size_t registered = 0;
  {
    resource_tracker::_TrackerProtocol protocol;
    ::dup2(dev_null, STDERR_FILENO);  // the reports of bad lines: discarded
    // Pieces of 1 to 256 bytes, the length taken from the byte that starts
    // each piece (so a line may arrive split across reads, as from a pipe).
    std::size_t at = 0;
    while (at < size) {
      std::size_t piece = std::min<std::size_t>(size - at, 1 + data[at]);
      protocol.feed(reinterpret_cast<const char*>(data + at), piece);
      at += piece;
    }
    registered = protocol.count("shared_memory") + protocol.count("semaphore") + protocol.count("noop");
    ::dup2(saved_stderr, STDERR_FILENO);  // the real stderr again
  }
  if (registered > size / 15) {
    std::fprintf(stderr, "fuzz_resource_tracker: %zu names registered from %zu bytes\n", registered, size);
    std::abort();
  }
  fuzz::HeapPeak::check("fuzz_resource_tracker", size, 0, 0);
  return 0;
}
