// tests/test_heap.cpp — ports CPython's _TestHeap (test_heap, test_free_from_gc)
// and checks what heap.py promises besides: arenas shared with children (in
// memory under fork, by fd under spawn and forkserver), the forked child's
// fresh heap, the pid check of free(), nothing left in /dev/shm.  Every suite
// runs under each start method; the two tests about a forked child's copy of
// the parent's heap are fork-only.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <thread>
#include <tuple>

#include "support.hpp"

namespace heap_tests {

namespace mp = multiprocessing;
namespace heap = mp::heap;

/// A child's write into a block of the parent's heap: the BufferWrapper
/// crosses as Python pickles it (the arena by fd), or in memory under fork.
void write_42_into_block(mp::Object wrapper) {
  std::shared_ptr<heap::BufferWrapper> block = heap::BufferWrapper::_rebuild(wrapper);
  block->create_memoryview()[0] = std::byte{42};
}

/// Make an arena under a file size limit (in a child, so that the limit
/// stays there) and report what failed, and how many fds were left open.
void make_arena_over_limit(mp::connection::Connection& report) {
  ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  struct rlimit limit = {4096, 4096};
  ::setrlimit(RLIMIT_FSIZE, &limit);
  int fds_before = 0, fds_after = 0;
  for (int i = 0; i < 1024; ++i) fds_before += ::fcntl(i, F_GETFD) != -1;
  std::string what = "no error";
  try {
    heap::Arena arena(1 << 20);
  } catch (const mp::OSError& e) {
    what = e.call() + " " + std::to_string(e.errno_value() == EFBIG);
  }
  for (int i = 0; i < 1024; ++i) fds_after += ::fcntl(i, F_GETFD) != -1;
  report.send(what + " " + std::to_string(fds_after - fds_before));
}

}  // namespace heap_tests

MP_REGISTER_TARGET(heap_tests::write_42_into_block);
MP_REGISTER_TARGET(heap_tests::make_arena_over_limit);

namespace mp_test {
namespace {

namespace heap = mp::heap;
using namespace heap_tests;  // the targets

class TestHeap : public WithStartMethod {
 protected:
  PristineHeap heap_;
};
// The tests that start no process run once, in the default context.
class TestHeapOnce : public ::testing::Test {
 protected:
  PristineHeap heap_;
};

/// _TestHeap.test_heap: many blocks of random sizes made and freed; the blocks
/// tile every arena exactly (in use or free, adjacent, no overlap); freeing
/// all of them merges all the free space and gives every arena back.
TEST_F(TestHeapOnce, test_heap) {
  const int iterations = 5000;
  const std::size_t maxblocks = 50;
  std::vector<std::unique_ptr<heap::BufferWrapper>> blocks;
  heap::Heap& h = heap_.get();
  h._DISCARD_FREE_SPACE_LARGER_THAN = 0;

  std::mt19937 random(12345);
  std::lognormal_distribution<double> lognormvariate(0.0, 1.0);
  for (int i = 0; i < iterations; ++i) {
    auto size = static_cast<std::ptrdiff_t>(lognormvariate(random) * 1000);
    blocks.push_back(std::make_unique<heap::BufferWrapper>(size));
    if (blocks.size() > maxblocks) {
      std::size_t j = std::uniform_int_distribution<std::size_t>(0, maxblocks - 1)(random);
      blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(j));
    }
  }

  {
    std::lock_guard guard(h._lock());
    auto arena_index = [&](const heap::Arena* arena) {
      auto it = std::find_if(h._arenas.begin(), h._arenas.end(),
                             [&](const auto& a) { return a.get() == arena; });
      EXPECT_NE(it, h._arenas.end());
      return it - h._arenas.begin();
    };
    std::vector<std::tuple<std::ptrdiff_t, std::size_t, std::size_t, bool>> all;
    std::size_t free = 0, occupied = 0, total = 0;
    for (const auto& [length, seq] : h._len_to_seq) {
      for (const heap::Block& b : seq) {  // every free block
        all.emplace_back(arena_index(b.arena.get()), b.start, b.stop, true);
        free += b.stop - b.start;
      }
    }
    for (const auto& [arena, in_use] : h._allocated_blocks) {
      for (auto [start, stop] : in_use) {  // every block in use
        all.emplace_back(arena_index(arena), start, stop, false);
        occupied += stop - start;
      }
    }
    for (const auto& arena : h._arenas) total += arena->size();
    EXPECT_EQ(free + occupied, total);

    std::sort(all.begin(), all.end());
    for (std::size_t i = 0; i + 1 < all.size(); ++i) {
      auto [arena, start, stop, is_free] = all[i];
      auto [narena, nstart, nstop, nis_free] = all[i + 1];
      if (arena != narena) {
        // Two different arenas: the last block ends the one, the next starts the other.
        EXPECT_EQ(stop, h._arenas[static_cast<std::size_t>(arena)]->size());
        EXPECT_EQ(nstart, 0u);
      } else {
        // Same arena: two adjacent blocks.
        EXPECT_EQ(stop, nstart);
      }
      EXPECT_EQ(start % heap::Heap::_alignment, 0u);
    }
  }

  // Free every block, in random order.
  std::shuffle(blocks.begin(), blocks.end(), random);
  while (!blocks.empty()) blocks.pop_back();

  EXPECT_EQ(h._n_frees, h._n_mallocs);
  EXPECT_EQ(h._pending_free_blocks.size(), 0u);
  EXPECT_EQ(h._arenas.size(), 0u);
  EXPECT_EQ(h._allocated_blocks.size(), 0u);
  EXPECT_EQ(h._len_to_seq.size(), 0u);
  EXPECT_EQ(h._lengths.size(), 0u);
}

/// _TestHeap.test_free_from_gc, in C++ terms: Python's garbage collector may
/// free a block while the same thread is inside malloc() (CPython issue #12352).  No GC
/// here, but another thread freeing while this one allocates is the same race
/// on the heap's lock: neither may deadlock, and the pending frees are all
/// done by the end.
TEST_F(TestHeapOnce, test_free_from_gc) {
  heap::Heap& h = heap_.get();
  std::vector<std::unique_ptr<heap::BufferWrapper>> made(5000);
  std::thread freer;
  {
    std::atomic<std::size_t> ready{0};
    freer = std::thread([&] {
      for (std::size_t i = 0; i < made.size(); ++i) {
        while (ready.load() <= i) std::this_thread::yield();
        made[i].reset();  // frees, perhaps while the main thread holds the lock
      }
    });
    for (std::size_t i = 0; i < made.size(); ++i) {
      made[i] = std::make_unique<heap::BufferWrapper>(1);
      ready.store(i + 1);
    }
    freer.join();
  }
  // One more malloc/free pair flushes whatever is still pending.
  { heap::BufferWrapper last(1); }
  std::lock_guard guard(h._lock());
  EXPECT_EQ(h._pending_free_blocks.size(), 0u);
  for (const auto& [arena, in_use] : h._allocated_blocks) EXPECT_TRUE(in_use.empty());
  // (_n_frees counts only the frees that found the lock free, as in Python.)
}

/// malloc rounds up to the alignment, and refuses what Python refuses.
TEST_F(TestHeapOnce, MallocSizes) {
  heap::Heap& h = heap_.get();
  heap::Block a = h.malloc(0);
  EXPECT_EQ(a.stop - a.start, 8u);  // Python: max(size, 1) rounded up to 8
  heap::Block b = h.malloc(13);
  EXPECT_EQ(b.stop - b.start, 16u);
  EXPECT_EQ(b.start % 8, 0u);
  try {
    h.malloc(-1);
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "Size -1 out of range");
  }
  EXPECT_THROW(h.malloc(PTRDIFF_MAX), mp::OverflowError);
  EXPECT_THROW(heap::BufferWrapper(-5), mp::ValueError);
  h.free(a);
  h.free(b);
}

/// The arena is an unlinked file in /dev/shm, its fd kept open, its pages
/// reserved (posix_fallocate), mapped MAP_SHARED: a child's writes are the
/// parent's reads, a forked child's through the mapping it inherited, a
/// spawned one's through the arena's fd it was sent.
TEST_P(TestHeap, ArenaIsSharedWithChildren) {
  heap::BufferWrapper wrapper(64);
  const heap::Arena& arena = *wrapper.block().arena;
  struct stat st {};
  ASSERT_EQ(::fstat(arena.fd(), &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);  // unlinked: no name left to leak
  EXPECT_EQ(static_cast<std::size_t>(st.st_size), arena.size());
  EXPECT_GE(static_cast<std::size_t>(st.st_blocks) * 512, arena.size());  // reserved, not sparse
  std::byte* memory = wrapper.create_memoryview();
  memory[0] = std::byte{1};
  mp::Process p({.target = write_42_into_block, .args = {wrapper._reduce()}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(memory[0], std::byte{42});
}

/// After a fork the child's first malloc starts a fresh heap (Python:
/// `if os.getpid() != self._lastpid: self.__init__()`), so the child never
/// hands out free space of the parent's arenas, which the parent may hand out
/// too.
TEST_P(TestHeap, ChildStartsFreshHeap) {
  if (GetParam() != "fork") GTEST_SKIP() << "fork only: about a forked child's copy of the parent's heap";
  heap::Heap& h = heap_.get();
  heap::BufferWrapper parents(16);  // the first arena has plenty of free space left
  std::size_t parent_arenas = h._arenas.size();
  Channel ch;
  int fd = ch.write_fd();
  heap::Block block = parents.block();
  mp::Process p({.target = [&h, fd, block] {
    heap::BufferWrapper childs(16);
    bool different_arena = childs.block().arena != block.arena;
    Channel::write_all(fd, std::to_string(different_arena) + " " + std::to_string(h._arenas.size()) +
                               " " + std::to_string(h._lastpid == ::getpid()) + "\n");
  }});
  p.start();
  ch.close_writer();
  join_process(p);
  EXPECT_EQ(ch.lines(), std::vector<std::string>{"1 1 1"});
  EXPECT_EQ(h._arenas.size(), parent_arenas);  // the parent's heap is unchanged
  EXPECT_EQ(h._lastpid, ::getpid());
}

/// free() in a process other than the heap's (a child that did not malloc):
/// Python's ValueError "My pid (N) is not last pid M".
TEST_P(TestHeap, FreeInChildIsRefused) {
  if (GetParam() != "fork") GTEST_SKIP() << "fork only: about a forked child's copy of the parent's heap";
  heap::Heap& h = heap_.get();
  heap::Block block = h.malloc(8);
  Channel ch;
  int fd = ch.write_fd();
  mp::Process p({.target = [&h, fd, block] {
    std::string what = "freed";
    try {
      h.free(block);
    } catch (const mp::ValueError& e) {
      what = e.what();
    }
    Channel::write_all(fd, what + "\n");
  }});
  p.start();
  ch.close_writer();
  join_process(p);
  auto lines = ch.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("My pid (", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(") is not last pid " + std::to_string(::getpid())), std::string::npos)
      << lines[0];
  h.free(block);
}

/// An arena that cannot be made is an OSError at once, with nothing left
/// open and nothing left in /dev/shm.  (A full /dev/shm cannot be arranged in a
/// test; a file size limit makes ftruncate/posix_fallocate fail the same way,
/// in a child so that the limit stays there.)
TEST_P(TestHeap, ArenaCreationFailsCleanly) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = make_arena_over_limit, .args = {writer}});
  p.start();
  writer.close();
  std::string line = reader.recv().as<std::string>();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(line == "ftruncate 1 0" || line == "posix_fallocate 1 0") << line;
}

/// Arenas double in size up to 4 MiB; a request larger than the next arena
/// gets an arena of its own, rounded up to the page size.
TEST_F(TestHeapOnce, ArenaSizes) {
  heap::Heap& h = heap_.get();
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  heap::Block a = h.malloc(static_cast<std::ptrdiff_t>(page));  // fills the first arena
  heap::Block b = h.malloc(8);                                  // needs a second one, twice as big
  heap::Block c = h.malloc(static_cast<std::ptrdiff_t>(10 * page + 1));
  EXPECT_EQ(a.arena->size(), page);
  EXPECT_EQ(b.arena->size(), 2 * page);
  EXPECT_EQ(c.arena->size(), 11 * page);
  h.free(a);
  h.free(b);
  h.free(c);
}

/// fork() while other threads take blocks from the heap and give them back:
/// some forks land while a thread of the parent holds the heap's lock, or
/// its pending list's, or is half-way through changing its maps.  Each
/// forked child still allocates and ends: its first malloc() builds a fresh
/// heap over the parent's without reading it.  Fork only: about fork's copy.
class TestHeapFork : public ::testing::Test {
 public:
  // The arenas the churning threads need are made before the test, and kept
  // for the process's life as the heap keeps small arenas: the leak check
  // then does not see their fds appear during the test.
  static void SetUpTestSuite() {
    std::vector<std::unique_ptr<mp::heap::BufferWrapper>> blocks;
    for (int i = 0; i < 8; ++i) blocks.push_back(std::make_unique<mp::heap::BufferWrapper>(512));
  }
};

TEST_F(TestHeapFork, ForkWhileThreadsAllocate) {
  int forked = fork_while_threads_churn(
      2,
      [] {
        mp::heap::BufferWrapper a(64);
        mp::heap::BufferWrapper b(512);
      },
      [] {
        mp::heap::BufferWrapper mine(64);
        *mine.create_memoryview() = std::byte{7};
        if (*mine.create_memoryview() != std::byte{7}) throw mp::AssertionError("block not writable");
      });
  EXPECT_GE(forked, 10);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestHeap, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace mp_test
