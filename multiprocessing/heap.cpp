// multiprocessing/heap.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/heap.py (the POSIX branch); see
// heap.hpp, whose top comment draws the arena layout.
#include "multiprocessing/heap.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::heap {

namespace {

std::size_t page_size() {
  // Python: mmap.PAGESIZE.
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

// ------------------------------------------------------------------ Arena

const std::vector<std::string>& Arena::_dir_candidates() {
  // Python: ['/dev/shm'] on Linux: a tmpfs, so the arena's pages live in RAM
  // and are never written back to a disk.
  static const std::vector<std::string> candidates = {"/dev/shm"};
  return candidates;
}

std::string Arena::_choose_dir(std::size_t size) {
  for (const std::string& d : _dir_candidates()) {
    struct statvfs st {};
    // statvfs: is there room for the whole arena?  A tmpfs is sized at mount
    // time (half the RAM by default; often 64 MiB in a container).
    if (::statvfs(d.c_str(), &st) != 0) raise_os_error("statvfs", errno);
    if (static_cast<unsigned long long>(st.f_bavail) * st.f_frsize >= size) return d;
  }
  return util::get_temp_dir();
}

// [counter-arena]
Arena::Arena(std::size_t size) : size_(size) {
  // Python: tempfile.mkstemp(prefix='pym-%d-' % os.getpid(), dir=...).
  std::string name = _choose_dir(size) + "/pym-" + std::to_string(os::getpid()) + "-XXXXXX";
  // mkostemp with O_CLOEXEC: the fd must not leak into a program that a child
  // exec()s; a forked child inherits it all the same, and so its mapping.
  int raw_fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (raw_fd < 0) raise_os_error("mkstemp", errno);
  fd_ = os::Fd(raw_fd);
  // unlink at once: the open fd and the mapping keep the file alive, and no
  // name is left in /dev/shm even if every process is killed.
  if (::unlink(name.c_str()) != 0) raise_os_error("unlink", errno);
  // ftruncate gives the file its size (Python: os.ftruncate(fd, size)) ...
  if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) raise_os_error("ftruncate", errno);
  // ... but on tmpfs that only makes a sparse file: a page is found only when
  // first touched, and if /dev/shm is full by then the process gets SIGBUS.
  // posix_fallocate reserves every page now, so "full" is an OSError(ENOSPC)
  // here, where the caller can handle it.  (It returns the error, not errno.)
  if (int err = ::posix_fallocate(fd_.get(), 0, static_cast<off_t>(size)); err != 0) {
    raise_os_error("posix_fallocate", err);
  }
  // MAP_SHARED: writes go to the file's pages, which every process that maps
  // the file (or inherits this mapping through fork) sees.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) raise_os_error("mmap", errno);
  buffer_ = static_cast<std::byte*>(p);
}
// [counter-arena]

Arena::Arena(std::size_t size, os::Fd fd) : size_(size), fd_(std::move(fd)) {
  // Python: the rebuild_arena() path: the file exists already; map it.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) raise_os_error("mmap", errno);
  buffer_ = static_cast<std::byte*>(p);
}

Arena::~Arena() {
  // munmap removes this process's view only; other processes keep theirs, and
  // the file's pages are freed when the last mapping and fd are gone.
  if (buffer_ != nullptr) ::munmap(buffer_, size_);
  // fd_ closes itself (Python: util.Finalize(self, os.close, (self.fd,))).
}

// ------------------------------------------------------------------ Heap

Heap::Heap(std::size_t size) : lock_(std::make_unique<std::mutex>()) {
  _lastpid = os::getpid();
  _size = size != 0 ? size : page_size();
}

void Heap::_reinitialize() {
  // Python: self.__init__() when malloc() runs in a new process.  The child
  // forgets the parent's arenas: their free space is the parent's to hand out,
  // and two processes carving blocks out of one free block would overlap.
  // Another thread of the parent may have held either mutex, or been half-way
  // through changing a map, at the instant of fork(): so every member is
  // built anew over the old one, which is never read nor destroyed (what it
  // owned is leaked in the child).  Arenas holding blocks the child uses stay
  // mapped through those blocks' shared_ptrs.
  Heap fresh;
  _lastpid = fresh._lastpid;
  _size = fresh._size;
  util::_abandon_at_fork(_lengths);
  util::_abandon_at_fork(_len_to_seq);
  util::_abandon_at_fork(_start_to_block);
  util::_abandon_at_fork(_stop_to_block);
  util::_abandon_at_fork(_allocated_blocks);
  util::_abandon_at_fork(_arenas);
  util::_abandon_at_fork(_pending_free_blocks);
  _n_mallocs = 0;
  _n_frees = 0;
  util::_abandon_at_fork(lock_);  // the old mutex stays where it was, never destroyed
  lock_ = std::make_unique<std::mutex>();
  util::_abandon_at_fork(pending_lock_);
}

std::size_t Heap::_roundup(std::size_t n, std::size_t alignment) {
  // alignment must be a power of 2
  std::size_t mask = alignment - 1;
  return (n + mask) & ~mask;
}

Block Heap::_new_arena(std::size_t size) {
  // Create a new arena with at least `size` bytes.
  std::size_t length = _roundup(std::max(_size, size), page_size());
  // Larger and larger arenas, for efficiency, until a large-ish size (roughly
  // an L3 cache).
  if (_size < _DOUBLE_ARENA_SIZE_UNTIL) _size *= 2;
  if (util::Logger* logger = util::get_logger_if_any(); logger && logger->isEnabledFor(util::INFO)) {
    util::info("allocating a new mmap of length " + std::to_string(length));
  }
  auto arena = std::make_shared<Arena>(length);
  _arenas.push_back(arena);
  return Block{arena, 0, length};
}

void Heap::_remove_length(std::size_t length) {
  // Python: self._lengths.remove(length) (the list is sorted: binary search).
  auto it = std::lower_bound(_lengths.begin(), _lengths.end(), length);
  if (it != _lengths.end() && *it == length) _lengths.erase(it);
}

void Heap::_discard_arena(const Arena& arena) {
  // Possibly drop the given (wholly free) arena.  Reusing an arena is faster
  // than making a new one, so only large ones are given back.
  std::size_t length = arena.size();
  if (length < _DISCARD_FREE_SPACE_LARGER_THAN) return;
  auto blocks = _allocated_blocks.find(&arena);
  if (blocks != _allocated_blocks.end()) {
    if (!blocks->second.empty()) throw AssertionError("discarding an arena with blocks in use");
    _allocated_blocks.erase(blocks);
  }
  _start_to_block.erase({&arena, 0});
  _stop_to_block.erase({&arena, length});
  auto& seq = _len_to_seq[length];
  seq.erase(std::find_if(seq.begin(), seq.end(), [&](const Block& b) {
    return b.arena.get() == &arena && b.start == 0 && b.stop == length;
  }));
  if (seq.empty()) {
    _len_to_seq.erase(length);
    _remove_length(length);
  }
  // Last: this may destroy the arena (munmap, close) when no block holds it.
  _arenas.erase(std::find_if(_arenas.begin(), _arenas.end(),
                             [&](const std::shared_ptr<Arena>& a) { return a.get() == &arena; }));
}

Block Heap::_malloc(std::size_t size) {
  // A large enough block, perhaps much larger: the smallest free length >= size
  // (Python: bisect.bisect_left(self._lengths, size)).
  auto i = std::lower_bound(_lengths.begin(), _lengths.end(), size);
  if (i == _lengths.end()) return _new_arena(size);
  std::size_t length = *i;
  auto& seq = _len_to_seq[length];
  Block block = seq.back();
  seq.pop_back();
  if (seq.empty()) {
    _len_to_seq.erase(length);
    _lengths.erase(i);
  }
  _start_to_block.erase({block.arena.get(), block.start});
  _stop_to_block.erase({block.arena.get(), block.stop});
  return block;
}

void Heap::_add_free_block(Block block) {
  // Make the block available, merged with the free blocks on either side.
  const Arena* arena = block.arena.get();
  if (auto prev = _stop_to_block.find({arena, block.start}); prev != _stop_to_block.end()) {
    block.start = _absorb(Block(prev->second)).first;
  }
  if (auto next = _start_to_block.find({arena, block.stop}); next != _start_to_block.end()) {
    block.stop = _absorb(Block(next->second)).second;
  }
  std::size_t length = block.stop - block.start;
  auto [seq, inserted] = _len_to_seq.try_emplace(length);
  seq->second.push_back(block);
  if (inserted) {
    // Python: bisect.insort(self._lengths, length).
    _lengths.insert(std::upper_bound(_lengths.begin(), _lengths.end(), length), length);
  }
  _start_to_block[{arena, block.start}] = block;
  _stop_to_block[{arena, block.stop}] = block;
}

std::pair<std::size_t, std::size_t> Heap::_absorb(const Block& block) {
  // Take this free block off every list, so that a neighbour can swallow it.
  _start_to_block.erase({block.arena.get(), block.start});
  _stop_to_block.erase({block.arena.get(), block.stop});
  std::size_t length = block.stop - block.start;
  auto& seq = _len_to_seq[length];
  seq.erase(std::find(seq.begin(), seq.end(), block));
  if (seq.empty()) {
    _len_to_seq.erase(length);
    _remove_length(length);
  }
  return {block.start, block.stop};
}

void Heap::_remove_allocated_block(const Block& block) {
  auto& blocks = _allocated_blocks[block.arena.get()];
  blocks.erase({block.start, block.stop});
  if (blocks.empty()) {
    // The arena is wholly free: perhaps give it back.
    _discard_arena(*block.arena);
  }
}

void Heap::_free_pending_blocks() {
  // Free every block of the pending list; called with _lock() held.
  for (;;) {
    Block block;
    {
      std::lock_guard guard(pending_lock_);
      if (_pending_free_blocks.empty()) break;
      block = std::move(_pending_free_blocks.back());
      _pending_free_blocks.pop_back();
    }
    _add_free_block(block);
    _remove_allocated_block(block);
  }
}

void Heap::free(const Block& block) {
  // Python frees from a weakref callback, which the garbage collector may run
  // while this very thread holds _lock inside malloc(): a blocking acquire
  // would deadlock (CPython issue #12352).  So: try the lock; if it is busy, leave the
  // block on the pending list for the next malloc() or free().
  if (os::getpid() != _lastpid) {
    throw ValueError("My pid (" + std::to_string(os::getpid()) + ") is not last pid " +
                     std::to_string(_lastpid));
  }
  std::unique_lock guard(*lock_, std::try_to_lock);
  if (!guard.owns_lock()) {
    std::lock_guard pending(pending_lock_);
    _pending_free_blocks.push_back(block);
    return;
  }
  _n_frees += 1;
  _free_pending_blocks();
  _add_free_block(block);
  _remove_allocated_block(block);
}

Block Heap::malloc(std::ptrdiff_t size) {
  // A block of the right size (rounded up).
  if (size < 0) throw ValueError("Size " + std::to_string(size) + " out of range");
  if (size >= PTRDIFF_MAX) throw OverflowError("Size " + std::to_string(size) + " too large");
  if (os::getpid() != _lastpid) _reinitialize();  // the first malloc after a fork
  std::lock_guard guard(*lock_);
  _n_mallocs += 1;
  // Blocks left pending by free() become available now.
  _free_pending_blocks();
  std::size_t rounded = _roundup(std::max<std::size_t>(static_cast<std::size_t>(size), 1), _alignment);
  Block block = _malloc(rounded);
  std::size_t real_stop = block.start + rounded;
  if (real_stop < block.stop) {
    // The block is larger than asked for: the rest is free again.
    _add_free_block(Block{block.arena, real_stop, block.stop});
  }
  block.stop = real_stop;
  _allocated_blocks[block.arena.get()].insert({block.start, real_stop});
  return block;
}

// ------------------------------------------------------------------ BufferWrapper

std::shared_ptr<Heap>& BufferWrapper::_heap() {
  // Python: BufferWrapper._heap = Heap(), made once, when the class is defined.
  static std::shared_ptr<Heap> heap = std::make_shared<Heap>();
  return heap;
}

BufferWrapper::BufferWrapper(std::ptrdiff_t size) : heap_(_heap()) {
  if (size < 0) throw ValueError("Size " + std::to_string(size) + " out of range");
  if (size >= PTRDIFF_MAX) throw OverflowError("Size " + std::to_string(size) + " too large");
  block_ = heap_->malloc(size);
  size_ = static_cast<std::size_t>(size);
  // Give the block back when this wrapper dies, but only in this process: a
  // forked child's copy of the finalizer is inert (the block is the parent's).
  finalizer_ = util::Finalize([heap = heap_, block = block_] { heap->free(block); }, std::nullopt,
                              "Heap.free");
}

// ------------------------------------------------------------------ pickling

namespace {
// The unpickler may name these (ForkingPickler's allow-list).
const bool heap_globals_registered = [] {
  reduction::ForkingPickler::register_global("multiprocessing.heap", "rebuild_arena");
  reduction::ForkingPickler::register_global("multiprocessing.heap", "BufferWrapper");
  return true;
}();
}  // namespace

Object _reduce_arena(const std::shared_ptr<Arena>& arena) {
  auto size = static_cast<std::int64_t>(arena->size());
  Object::Reduced r{{"multiprocessing.heap", "rebuild_arena"}, {size, Object()}};
  r.local = arena;
  r.reduce = [arena, size] {
    return Object(Object::Reduced{{"multiprocessing.heap", "rebuild_arena"},
                                  {size, reduction::DupFd(arena->fd())}});
  };
  return r;
}

std::shared_ptr<Arena> _rebuild_arena(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  if (r == nullptr || r->callable.qualname != "rebuild_arena" || r->args.size() != 2) {
    throw UnpicklingError("expected a pickled Arena, got " + obj.repr());
  }
  if (r->local) return std::static_pointer_cast<Arena>(std::const_pointer_cast<void>(r->local));
  auto size = static_cast<std::size_t>(r->args[0].as<std::int64_t>());
  return std::make_shared<Arena>(size, os::Fd(reduction::_detach_dup_fd(r->args[1])));
}

Object BufferWrapper::_reduce() const {
  Object::Tuple block{{_reduce_arena(block_.arena), static_cast<std::int64_t>(block_.start),
                       static_cast<std::int64_t>(block_.stop)}};
  Object::Tuple state{{Object(block), static_cast<std::int64_t>(size_)}};
  return Object::Reduced{{"multiprocessing.heap", "BufferWrapper"}, {}, true, {Object(state)}};
}

std::shared_ptr<BufferWrapper> BufferWrapper::_rebuild(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  const Object::Tuple* state = nullptr;
  if (r != nullptr && r->callable.qualname == "BufferWrapper" && r->state.size() == 1) {
    state = std::get_if<Object::Tuple>(&r->state[0].variant());
  }
  const Object::Tuple* block = nullptr;
  if (state != nullptr && state->items.size() == 2) {
    block = std::get_if<Object::Tuple>(&state->items[0].variant());
  }
  if (block == nullptr || block->items.size() != 3) {
    throw UnpicklingError("expected a pickled BufferWrapper, got " + obj.repr());
  }
  Block b{_rebuild_arena(block->items[0]), static_cast<std::size_t>(block->items[1].as<std::int64_t>()),
          static_cast<std::size_t>(block->items[2].as<std::int64_t>())};
  auto size = static_cast<std::size_t>(state->items[1].as<std::int64_t>());
  if (b.stop > b.arena->size() || b.start + size > b.stop) {
    throw UnpicklingError("a pickled BufferWrapper reaches past its arena");
  }
  return std::shared_ptr<BufferWrapper>(new BufferWrapper(std::move(b), size));
}

BufferWrapper::BufferWrapper(Block block, std::size_t size)
    : block_(std::move(block)), size_(size) {}

}  // namespace multiprocessing::heap
