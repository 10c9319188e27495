// fuzz/support.hpp
// What the fuzz targets share: the heap bound they check (HeapPeak), and the
// peer that writes an input into a socket and then says no more (send_all_then_eof).
//
// The heap a fuzz target's one input may use, measured: every target states
// a bound in bytes per input byte (fuzz/README.md) and checks it with this.
// libFuzzer's own -malloc_limit_mb catches one huge allocation; this catches
// many small ones that add up (a GET copying a container over and over).
//
// It counts through the sanitizer allocator's hooks, which see every malloc
// and free of every thread: `live` is the bytes allocated and not yet freed
// since the hooks were installed, `peak` its highest value since the last
// start().  Targets are built with ASan (the fuzz preset), which provides them.
#pragma once

#include <sanitizer/allocator_interface.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fuzz {

class HeapPeak {
 public:
  /// Install the hooks (once, from LLVMFuzzerInitialize, before any thread).
  static void install() {
    __sanitizer_install_malloc_and_free_hooks(&on_malloc, &on_free);
  }
  /// Start measuring one input: the peak restarts from what is live now.
  static void start() {
    baseline_ = live_.load();
    peak_.store(baseline_);
  }
  /// The most bytes live at once since start(), beyond what was live then.
  static long used() { return peak_.load() - baseline_; }
  /// Abort (libFuzzer saves the input as a crash) if the input of `size`
  /// bytes used more than `fixed + per_byte * size` bytes of heap at once.
  static void check(const char* target, std::size_t size, long fixed, long per_byte) {
    long bound = fixed + per_byte * static_cast<long>(size);
    if (used() > bound) {
      std::fprintf(stderr, "%s: an input of %zu bytes used %ld bytes of heap at once, over its bound %ld + %ld * %zu = %ld\n",
                   target, size, used(), fixed, per_byte, size, bound);
      std::abort();
    }
  }

 private:
  static void on_malloc(const volatile void*, std::size_t size) {
    long now = live_.fetch_add(static_cast<long>(size)) + static_cast<long>(size);
    long peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }
  static void on_free(const volatile void* ptr) {
    // Called before the block is released, so its size can still be asked.
    if (ptr != nullptr) live_.fetch_sub(static_cast<long>(__sanitizer_get_allocated_size(ptr)));
  }
  static inline std::atomic<long> live_{0};
  static inline std::atomic<long> peak_{0};
  static inline long baseline_ = 0;
};

/// Be the peer: write all of `bytes` into the socket `fd`, then shut its
/// writing side down, so that the other end reads the bytes and then EOF,
/// and no read of it ever blocks.  The inputs are at most 16 KiB
/// (-max_len), under a socketpair's buffer, so the write does not block.
inline void send_all_then_eof(int fd, std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      std::perror("fuzz: write to the socketpair");  // the harness failed, not the library
      std::abort();
    }
    done += static_cast<std::size_t>(n);
  }
  // SHUT_WR: the other end reads EOF past the input; this end stays readable.
  ::shutdown(fd, SHUT_WR);
}

}  // namespace fuzz
