// multiprocessing/heap.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/heap.py (the POSIX branch): an
// allocator that hands out blocks of memory which every process forked
// afterwards shares.  sharedctypes puts Value and Array there.
//
// The arena layout
// ----------------
// An *Arena* is one shared mapping: a file made in /dev/shm (a RAM-backed
// tmpfs) with mkstemp, unlinked at once so that no name is left to leak, grown
// to the arena's size and mmap'ed MAP_SHARED.  A fork copies the mapping's
// page tables, not its pages, so parent and child read and write the same
// bytes.  The fd is kept open so that a process started later (spawn) could
// be handed it and map it too.
//
// The *Heap* carves arenas into *blocks*, each the triple (arena, start, stop)
// of byte offsets, every start a multiple of 8 (Heap::_alignment):
//
//     arena 0 (4096 bytes)                      arena 1 (8192 bytes)
//     +--------+----------+----------------+    +------------------------+
//     | in use |   free   |     in use     |    |          free          |
//     +--------+----------+----------------+    +------------------------+
//     0        16         48             4096   0                     8192
//
// Every byte of every arena lies in exactly one block, in use or free:
//   - _allocated_blocks[arena] holds the (start, stop) of the blocks in use;
//   - a free block is listed three times: in _len_to_seq[length] (so malloc
//     finds the smallest free block that is large enough, through the sorted
//     _lengths), and in _start_to_block / _stop_to_block (so free() finds the
//     free neighbours of a block and merges them with it into one).
// malloc(n) rounds n up to 8, takes the smallest free block of at least that
// length (or a new arena, twice as large as the previous one up to 4 MiB),
// and gives the rest back as a new free block.  free() merges the block with
// the free blocks on either side; when a whole arena is free again and it is
// larger than _DISCARD_FREE_SPACE_LARGER_THAN (4 MiB), the arena is unmapped.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "multiprocessing/os.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::heap {

/// Python: heap.Arena (POSIX): a shared memory area backed by an unlinked
/// temporary file.  Move-only; the destructor unmaps it and closes the fd.
class Arena {
 public:
  /// Python: Arena(size): a new zero-filled area of `size` bytes.  The file is
  /// made in /dev/shm when it has room for `size` bytes, else in
  /// util::get_temp_dir().  Its space is reserved at once (posix_fallocate),
  /// so a full /dev/shm is an OSError here rather than a SIGBUS at first touch.
  /// \throws OSError (ENOSPC, EMFILE, ...); nothing is left open then.
  explicit Arena(std::size_t size);
  /// Python: Arena(size, fd), as rebuild_arena() makes it in a spawned child:
  /// map an existing arena's file, handed over as `fd`.
  /// \throws OSError if mmap fails.
  Arena(std::size_t size, os::Fd fd);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  /// Python: self.size, in bytes (a multiple of the page size).
  std::size_t size() const { return size_; }
  /// Python: self.fd: the open file behind the mapping.
  int fd() const { return fd_.get(); }
  /// Python: self.buffer: the first byte of the mapping.
  std::byte* buffer() const { return buffer_; }

  /// Python: Arena._dir_candidates: ["/dev/shm"] on Linux.
  static const std::vector<std::string>& _dir_candidates();
  /// Python: Arena._choose_dir(size): the first candidate with `size` bytes
  /// free, else util::get_temp_dir().
  static std::string _choose_dir(std::size_t size);

 private:
  std::size_t size_;
  os::Fd fd_;
  std::byte* buffer_ = nullptr;
};

/// Python: the tuple (arena, start, stop) that Heap.malloc returns: the bytes
/// [start, stop) of `arena`.  The shared_ptr keeps the arena mapped while the
/// block is in use, even if the heap forgets the arena (after a fork).
struct Block {
  std::shared_ptr<Arena> arena;
  std::size_t start = 0;
  std::size_t stop = 0;
  /// Python: block == other (the same arena, start and stop).
  bool operator==(const Block& other) const = default;
};

/// Python: heap.Heap: allocates blocks out of arenas; see "The arena layout"
/// at the top of this header.  Thread-safe.  After a fork, the child's first
/// malloc() finds that the pid changed and starts from an empty heap (the
/// parent's free space is the parent's to give out), as heap.py does.
///
/// The data members keep their Python names and are public, as Python's
/// attributes are, for test_heap; read them only while holding _lock().
class Heap {
 public:
  /// Python: Heap._alignment: every block starts at a multiple of 8.
  static constexpr std::size_t _alignment = 8;
  /// Python: Heap._DOUBLE_ARENA_SIZE_UNTIL: arenas double in size until 4 MiB.
  static constexpr std::size_t _DOUBLE_ARENA_SIZE_UNTIL = 4 * 1024 * 1024;

  /// Python: Heap(size=mmap.PAGESIZE): the first arena's size (0: the page size).
  explicit Heap(std::size_t size = 0);

  /// Python: Heap.malloc(size): a block of `size` bytes rounded up to the
  /// alignment (a 0-byte request gets 8).  Its bytes are not cleared.
  /// \throws ValueError "Size -1 out of range" for a negative size;
  ///   OverflowError "Size ... too large" from PTRDIFF_MAX on; OSError when a
  ///   new arena cannot be made.
  Block malloc(std::ptrdiff_t size);

  /// Python: Heap.free(block): give a block back.  If another thread holds the
  /// heap's lock at that moment, the block waits in _pending_free_blocks and is
  /// freed by the next malloc() or free() (CPython issue #12352).
  /// \throws ValueError "My pid (N) is not last pid M" in a process that did
  ///   not allocate it (a forked child).
  void free(const Block& block);

  /// Python: Heap._roundup(n, alignment): n rounded up to a power of two.
  static std::size_t _roundup(std::size_t n, std::size_t alignment);

  /// Python: Heap._lock (a threading.Lock).
  std::mutex& _lock() { return *lock_; }

  /// Python: the key (arena, offset) of _start_to_block and _stop_to_block.
  using Offset = std::pair<const Arena*, std::size_t>;

  /// Python: Heap._DISCARD_FREE_SPACE_LARGER_THAN: a wholly free arena larger
  /// than this is unmapped (4 MiB; test_heap sets it to 0).
  std::size_t _DISCARD_FREE_SPACE_LARGER_THAN = 4 * 1024 * 1024;
  /// Python: _lastpid: the process this heap's arenas were made in.
  pid_t _lastpid = 0;
  /// Python: _size: the size of the next arena.
  std::size_t _size = 0;
  /// Python: _lengths: the lengths of the free blocks, sorted, no repeats.
  std::vector<std::size_t> _lengths;
  /// Python: _len_to_seq: length -> the free blocks of that length.
  std::map<std::size_t, std::vector<Block>> _len_to_seq;
  /// Python: _start_to_block / _stop_to_block: a free block by its first /
  /// one-past-last offset.
  std::map<Offset, Block> _start_to_block;
  std::map<Offset, Block> _stop_to_block;
  /// Python: _allocated_blocks: arena -> the (start, stop) of its blocks in use.
  std::map<const Arena*, std::set<std::pair<std::size_t, std::size_t>>> _allocated_blocks;
  /// Python: _arenas, in creation order.
  std::vector<std::shared_ptr<Arena>> _arenas;
  /// Python: _pending_free_blocks (guarded by its own small mutex here, where
  /// Python relies on the GIL to make list.append atomic).
  std::vector<Block> _pending_free_blocks;
  /// Python: _n_mallocs / _n_frees (statistics).
  std::size_t _n_mallocs = 0;
  std::size_t _n_frees = 0;

 private:
  void _reinitialize();  // Python: self.__init__() after a fork
  Block _new_arena(std::size_t size);
  void _discard_arena(const Arena& arena);
  Block _malloc(std::size_t size);
  void _add_free_block(Block block);
  std::pair<std::size_t, std::size_t> _absorb(const Block& block);
  void _remove_allocated_block(const Block& block);
  void _free_pending_blocks();
  void _remove_length(std::size_t length);

  std::unique_ptr<std::mutex> lock_;
  std::mutex pending_lock_;
};

/// Python: heap.BufferWrapper: one block of the shared heap, given back to the
/// heap when this object dies in the process that made it (a util::Finalize,
/// inert in forked children, as Python's is).  Move-only; sharedctypes holds
/// it through a shared_ptr so that copies of a Value share one block.
class BufferWrapper {
 public:
  /// Python: BufferWrapper(size): `size` bytes from _heap().
  /// \throws ValueError, OverflowError, OSError as Heap::malloc does.
  explicit BufferWrapper(std::ptrdiff_t size);
  BufferWrapper(const BufferWrapper&) = delete;
  BufferWrapper& operator=(const BufferWrapper&) = delete;

  /// Python: create_memoryview(): the first byte of the block; size() bytes
  /// from there are this wrapper's.
  std::byte* create_memoryview() const { return block_.arena->buffer() + block_.start; }
  /// Python: the size in self._state.
  std::size_t size() const { return size_; }
  /// Python: the block in self._state.
  const Block& block() const { return block_; }

  /// Python: pickling a BufferWrapper for a spawned child: its _state,
  /// ((arena, start, stop), size), the arena by size and fd (reduce_arena).
  Object _reduce() const;
  /// Python: unpickling one in the child: the same bytes of the same file,
  /// mapped again (rebuild_arena).  The rebuilt wrapper frees nothing: the
  /// block belongs to the parent's heap.
  /// \throws UnpicklingError for another kind of object; OSError from mmap.
  static std::shared_ptr<BufferWrapper> _rebuild(const Object& obj);

  /// Python: BufferWrapper._heap, the class-wide heap.  Tests swap in a fresh
  /// one, as _TestHeap.setUp does; a wrapper frees its block into the heap it
  /// came from.
  static std::shared_ptr<Heap>& _heap();

 private:
  BufferWrapper(Block block, std::size_t size);  // rebuilt in a child

  std::shared_ptr<Heap> heap_;
  Block block_;
  std::size_t size_;
  util::Finalize finalizer_;  // Python: util.Finalize(self, _heap.free, args=(block,))
};

/// Python: heap.reduce_arena(a) -> (rebuild_arena, (a.size, DupFd(a.fd))):
/// an arena crosses to a spawned child as its size and its open file.  In
/// memory (fork) the same arena.
Object _reduce_arena(const std::shared_ptr<Arena>& arena);
/// Python: heap.rebuild_arena(size, dupfd): Arena(size, dupfd.detach()).
std::shared_ptr<Arena> _rebuild_arena(const Object& obj);

}  // namespace multiprocessing::heap
