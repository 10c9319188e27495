// multiprocessing/shared_memory.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/shared_memory.py (the POSIX branch)
// and the C functions it calls, _posixshmem.shm_open / shm_unlink
// (Modules/_multiprocessing/posixshmem.c): named blocks of memory that any
// process can attach to by name, and ShareableList, a fixed-length list laid
// out in one such block.
//
// A block is a file in /dev/shm (shm_open), sized with ftruncate and mapped
// with mmap(MAP_SHARED): every process that maps it sees the same bytes.  The
// name outlives every process until someone calls unlink(); the resource
// tracker (resource_tracker.hpp) unlinks it if its creator dies first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "multiprocessing/reduction.hpp"
#include "multiprocessing/reduction/pickle.hpp"

namespace multiprocessing::shared_memory {

/// Python: shared_memory._make_filename(): a fresh block name, "/psm_" and 8
/// random hex digits (with the leading '/').  SharedMemory(create=true) without
/// a name calls it until shm_open finds the name free.  A replaceable function
/// object, as Python's module attribute is: CPython's
/// test_shared_memory_recreate patches it to return names it chose.
extern std::function<std::string()> _make_filename;

/// Python: shared_memory.SharedMemory(name=None, create=False, size=0).
/// Creates a new shared memory block or attaches to an existing one.
/// Move-only: it owns a mapping and an fd (Python's object is shared by
/// reference instead; pass a reference or the name).
class SharedMemory {
 public:
  /// Python: `SharedMemory.__init__`.
  /// \param name    without the leading '/', as Python shows it; std::nullopt
  ///                with create=true picks a fresh random "psm_xxxxxxxx".
  /// \param create  make a new block (O_CREAT | O_EXCL) instead of attaching.
  /// \param size    the size of a new block; ignored when attaching (the
  ///                block's own size is used).
  /// \throws ValueError "'size' must be a positive integer" (size < 0),
  ///   "'size' must be a positive number different from zero" (create, size 0),
  ///   "'name' can only be None if create=True";
  ///   FileNotFoundError attaching to a name that does not exist;
  ///   FileExistsError creating a name that exists;
  ///   OSError with errno ENOSPC when /dev/shm cannot hold `size` bytes (the
  ///   port reserves the pages at creation; Python would die of SIGBUS at the
  ///   first touch of a page that cannot be had).  Nothing is left behind then.
  explicit SharedMemory(std::optional<std::string> name = std::nullopt, bool create = false,
                        std::int64_t size = 0);
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  /// Python: `__del__`: close() (not unlink()).
  ~SharedMemory();

  /// Python: buf: the block's bytes, writable, shared with every process that
  /// maps it.  Empty after close().
  std::span<unsigned char> buf() const noexcept { return {data_, data_ ? size_ : 0}; }
  /// Python: name: "psm_0123abcd" (no leading '/').
  std::string name() const;
  /// Python: size: the block's size in bytes.
  std::size_t size() const noexcept { return size_; }
  /// Python: `__repr__`: "SharedMemory('psm_0123abcd', size=512)".
  std::string repr() const;

  /// Python: close(): unmap and close the fd, in this process only; the block
  /// lives on.  Idempotent.
  void close();
  /// Python: unlink(): remove the name, so that the block is freed once every
  /// process has closed it, and tell the resource tracker it is gone.  Call it
  /// once, from one process.  \throws FileNotFoundError if already unlinked.
  void unlink();

 private:
  std::string name_;            // Python: _name, with the leading '/'
  int fd_ = -1;                 // Python: _fd
  unsigned char* data_ = nullptr;  // Python: _mmap / _buf
  std::size_t size_ = 0;        // Python: _size
};

/// Python: shared_memory.ShareableList: a list of fixed length in one shared
/// memory block, holding int, float, bool, str, bytes and None, in CPython's
/// exact layout, so that a Python process can attach to it by name and read
/// and write the same items (and the reverse):
///
///     8 bytes            the number of items N (int64, native byte order)
///     (N + 1) * 8 bytes  each item's offset into the data area, then the end
///     K bytes            the data area: 8 bytes per int/float/bool/None,
///                        a multiple of 8 per str/bytes
///     N * 8 bytes        each item's struct format ("q", "d", "8s", ...)
///     N bytes            each item's back-transform code (0 value, 1 str,
///                        2 bytes, 3 None)
///
/// Items are reduction::Object values (std::int64_t, double, bool,
/// std::string for str, Bytes, None).  A str or bytes slot keeps the size it
/// was made with: a longer value later is a ValueError.
class ShareableList {
 public:
  /// Python: ShareableList(sequence): a new block holding `sequence`, under
  /// `name` if given (else a random one).
  /// \throws TypeError for an item of another type (Python: KeyError);
  ///   what SharedMemory's constructor throws.
  explicit ShareableList(const std::vector<Object>& sequence,
                         std::optional<std::string> name = std::nullopt);
  /// Python: ShareableList(): an empty list in a new block.
  ShareableList() : ShareableList(std::vector<Object>{}) {}
  /// Python: ShareableList(name=name): attach to an existing list.
  /// \throws FileNotFoundError if there is no such block.
  static ShareableList attach(const std::string& name);

  /// Python: `__getitem__`: negative positions count from the end.
  /// \throws IndexError "index out of range".
  Object operator[](std::int64_t position) const;
  /// Python: `__setitem__`.
  /// \throws IndexError "assignment index out of range";
  ///   ValueError "bytes/str item exceeds available storage".
  void set(std::int64_t position, const Object& value);
  /// Python: `__len__` (read from the block).
  std::size_t size() const;
  /// Python: list(sl): every item.
  std::vector<Object> items() const;
  /// Python: count(value): how many items == value.
  std::size_t count(const Object& value) const;
  /// Python: index(value): the first position of value.
  /// \throws ValueError "'x' not in this container".
  std::size_t index(const Object& value) const;
  /// Python: format: every item's struct format, concatenated ("8s8sdq...").
  std::string format() const;
  /// Python: `__repr__`: "ShareableList([1, 'a'], name='psm_0123abcd')".
  std::string repr() const;
  /// Python: shm: the block.
  SharedMemory& shm() noexcept { return shm_; }
  const SharedMemory& shm() const noexcept { return shm_; }

  /// Python: `_get_packing_format(position)`.  \throws IndexError.
  std::string _get_packing_format(std::int64_t position) const;

 private:
  explicit ShareableList(SharedMemory shm);  // attach
  std::size_t _offset_data_start() const;
  std::size_t _offset_packing_formats() const;
  std::size_t _offset_back_transform_codes() const;

  SharedMemory shm_;
  std::size_t list_len_ = 0;                     // Python: _list_len
  std::vector<std::int64_t> allocated_offsets_;  // Python: _allocated_offsets
};

}  // namespace multiprocessing::shared_memory

namespace multiprocessing {

/// A SharedMemory as a Process arg (reduction.hpp's customization point):
/// Python's __reduce__ is (SharedMemory, (name, False, size)): the child
/// attaches to the block by name, under every start method.  Attaching does
/// not register the block with the resource tracker; its creator unlinks it.
template <>
struct Convert<shared_memory::SharedMemory> {
  static Object to_object(const shared_memory::SharedMemory& shm) {
    return Object::Reduced{{"multiprocessing.shared_memory", "SharedMemory"},
                           {shm.name(), false, static_cast<std::int64_t>(shm.size())}};
  }
  static shared_memory::SharedMemory from_object(const Object& obj) {
    const Object::Reduced* r = obj.reduced();
    if (r == nullptr || r->callable.qualname != "SharedMemory" || r->args.size() != 3) {
      throw UnpicklingError("expected a pickled SharedMemory, got " + obj.repr());
    }
    return shared_memory::SharedMemory(r->args[0].as<std::string>(), false, r->args[2].as<std::int64_t>());
  }
};

/// A ShareableList as a Process arg: Python's __reduce__ is
/// partial(ShareableList, name=name): the child attaches by name.
template <>
struct Convert<shared_memory::ShareableList> {
  static Object to_object(const shared_memory::ShareableList& sl) {
    return Object::Reduced{{"multiprocessing.shared_memory", "ShareableList"}, {sl.shm().name()}};
  }
  static shared_memory::ShareableList from_object(const Object& obj) {
    const Object::Reduced* r = obj.reduced();
    if (r == nullptr || r->callable.qualname != "ShareableList" || r->args.size() != 1) {
      throw UnpicklingError("expected a pickled ShareableList, got " + obj.repr());
    }
    return shared_memory::ShareableList::attach(r->args[0].as<std::string>());
  }
};

}  // namespace multiprocessing
