// multiprocessing/sharedctypes.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/sharedctypes.py: C values and
// arrays allocated from the shared heap (heap.hpp), so that processes forked
// afterwards read and write the same memory, and the Synchronized wrappers
// that pair such an object with a lock.
//
// Python -> C++, at a glance (the header's contract; see also docs/mainpage.md):
//
//     Python                                    C++
//     v = Value('i', 0)                         auto v = mp::Value<'i'>(0);     // or mp::Value<int>(0)
//     v.value          / v.value = 5            v.value()  / v.set_value(5)
//     v.value += 1     (NOT atomic)             v.set_value(v.value() + 1)      // NOT atomic either
//     with v.get_lock(): v.value += 1           { std::lock_guard g(v.get_lock()); v.set_value(v.value() + 1); }
//     Value('i', 0, lock=False)                 mp::Value<'i'>(0, mp::no_lock)  // a raw CValue<int>
//     Value('i', 0, lock=my_lock)               mp::Value<'i'>(0, my_lock)
//     RawValue('d', 1.5)                        mp::RawValue<'d'>(1.5)
//     a = Array('i', [1, 2, 3]); Array('i', 10) auto a = mp::Array<'i'>({1, 2, 3}); mp::Array<'i'>(10)
//     len(a), a[0], a[-1], a[0] = 5             a.len(), a[0], a[-1], a[0] = 5
//     a[2:7]        / a[:]                      a.slice(2, 7)  / a.slice()       // a std::vector
//     a[4:8] = [1, 2, 3, 4]                     a.set_slice(4, 8, {1, 2, 3, 4})
//     s = Array('c', 20); s.value = b'hi'       auto s = mp::Array<'c'>(20); s.set_value("hi")
//     repr(v)                                   v.repr()  // "<Synchronized wrapper for c_int(0)>"
//
// A property is a getter plus a set_ setter, as everywhere in this port.  The
// objects are handles, like Python references: a copy (a lambda capturing one
// by value) is the same shared memory and the same lock.
//
// Python decides at run time what Value(..., lock=...) returns and raises
// AttributeError for a `lock` without acquire(); here the return type is known
// at compile time (Synchronized<T>, or CValue<T> with no_lock), and a `lock`
// that is not a synchronize::SemLock (Lock, RLock, Semaphore...) does not compile.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "multiprocessing/heap.hpp"
#include "multiprocessing/synchronize.hpp"

namespace multiprocessing {
class BaseContext;
}

namespace multiprocessing::sharedctypes {

// ------------------------------------------------------------------ typecodes

/// Python: sharedctypes.typecode_to_type: the C type behind each typecode of
/// the `array` module.  An unknown typecode has no `type`, so using it does
/// not compile.
template <char Typecode>
struct typecode_to_type {};
/// \cond TYPECODE_TABLE
template <> struct typecode_to_type<'c'> { using type = char; };                // c_char
template <> struct typecode_to_type<'u'> { using type = wchar_t; };             // c_wchar
template <> struct typecode_to_type<'b'> { using type = signed char; };         // c_byte
template <> struct typecode_to_type<'B'> { using type = unsigned char; };       // c_ubyte
template <> struct typecode_to_type<'h'> { using type = short; };               // c_short
template <> struct typecode_to_type<'H'> { using type = unsigned short; };      // c_ushort
template <> struct typecode_to_type<'i'> { using type = int; };                 // c_int
template <> struct typecode_to_type<'I'> { using type = unsigned int; };        // c_uint
template <> struct typecode_to_type<'l'> { using type = long; };                // c_long
template <> struct typecode_to_type<'L'> { using type = unsigned long; };       // c_ulong
template <> struct typecode_to_type<'q'> { using type = long long; };           // c_longlong
template <> struct typecode_to_type<'Q'> { using type = unsigned long long; };  // c_ulonglong
template <> struct typecode_to_type<'f'> { using type = float; };               // c_float
template <> struct typecode_to_type<'d'> { using type = double; };              // c_double
/// \endcond

/// The C++ type of a typecode: `type_of<'i'>` is int.
template <char Typecode>
using type_of = typename typecode_to_type<Typecode>::type;

/// Python: the class name ctypes prints for a type: "c_int", "c_double", and
/// "c_long" for long long as on 64-bit Linux (where c_longlong is c_long); the
/// C++ type's name for anything else (a struct: Python's ctypes.Structure).
std::string _ctype_name(const std::type_info& type);

/// \cond INTERNAL
// The repr of one C value, as ctypes shows it inside c_int(...): 5, 3.25,
// b'x', 'x'.  One overload per type of the typecode table.
std::string _repr_of(char v);
std::string _repr_of(wchar_t v);
std::string _repr_of(signed char v);
std::string _repr_of(unsigned char v);
std::string _repr_of(short v);
std::string _repr_of(unsigned short v);
std::string _repr_of(int v);
std::string _repr_of(unsigned int v);
std::string _repr_of(long v);
std::string _repr_of(unsigned long v);
std::string _repr_of(long long v);
std::string _repr_of(unsigned long long v);
std::string _repr_of(float v);
std::string _repr_of(double v);
std::string _repr_of(bool v);
// Python slice semantics (PySlice_AdjustIndices): clamp start and stop to the
// length, count negative ones from the end.  \throws ValueError "slice step
// cannot be zero".
struct SliceIndices {
  std::ptrdiff_t start, stop, step, length;
};
SliceIndices _adjust_slice(std::size_t length, std::optional<std::ptrdiff_t> start,
                           std::optional<std::ptrdiff_t> stop, std::optional<std::ptrdiff_t> step);
// An index counted from the end when negative.  \throws IndexError "invalid index".
std::size_t _check_index(std::ptrdiff_t i, std::size_t length);
// \throws ValueError "Can only assign sequence of same size".
void _check_same_size(std::size_t expected, std::size_t got);
// \throws ValueError "Array length must be >= 0, not -1"; OverflowError when
// the array's bytes do not fit in a ptrdiff_t.
std::ptrdiff_t _array_bytes(std::ptrdiff_t length, std::size_t item_size);
// \throws ValueError "byte string too long".
void _check_fits(std::size_t capacity, std::size_t got);
/// \endcond

/// A raw object rebuilt around an existing heap block (in a child the
/// block's arena was handed over by fd).  Port only.
struct FromWrapper {
  std::shared_ptr<heap::BufferWrapper> wrapper;
};

/// Python: reduce_ctype(obj) -> (rebuild_ctype, (type, obj._wrapper, length)):
/// what a Process's args hold for a raw value or array.  In memory (fork)
/// the same block; pickled for a spawned child (only then: assert_spawning),
/// the block's arena by fd.  `type_name` is the ctypes name ("c_int").
Object _reduce_ctype(const std::shared_ptr<heap::BufferWrapper>& wrapper, const std::string& type_name,
                     std::optional<std::size_t> length);
/// Python: rebuild_ctype(type, wrapper, length): the block an object made by
/// _reduce_ctype stands for, checked to hold `bytes` bytes of `type_name`.
/// \throws TypeError if it was made for another type or length;
///   UnpicklingError for another kind of object.
std::shared_ptr<heap::BufferWrapper> _rebuild_ctype(const Object& obj, const std::string& type_name,
                                                   std::optional<std::size_t> length,
                                                   std::size_t bytes);
/// Python: SynchronizedBase.__reduce__ -> (synchronized, (obj, lock)).
Object _reduce_synchronized(Object obj, const synchronize::SemLock& lock);
/// The (obj, lock) of an object made by _reduce_synchronized.
std::pair<Object, Object> _synchronized_parts(const Object& obj);

// ------------------------------------------------------------------ raw objects

/// A C value of type T in the shared heap: Python's ctypes object (`c_int(0)`)
/// that sharedctypes.RawValue returns.  No lock: value() and set_value() are a
/// plain load and a plain store, so `v.set_value(v.value() + 1)` in two
/// processes at once can lose updates (the lesson of the counter examples).
/// A handle: copies share the memory, which goes back to the heap when the
/// last copy in the creating process is gone.  T is any trivially copyable
/// type (Python: a ctypes type) aligned to at most 8 bytes, the heap's alignment.
template <class T>
class CValue {
  static_assert(std::is_trivially_copyable_v<T>,
                "a shared value is copied byte by byte between processes");
  static_assert(alignof(T) <= heap::Heap::_alignment,
                "heap blocks are aligned to 8 bytes (Heap::_alignment), as in Python");

 public:
  /// Python: RawValue(typecode_or_type, *args): zeroed memory, then `init`.
  explicit CValue(const T& init = T{})
      : wrapper_(std::make_shared<heap::BufferWrapper>(sizeof(T))) {
    void* memory = wrapper_->create_memoryview();
    std::memset(memory, 0, sizeof(T));  // Python: ctypes.memset(addressof(obj), 0, sizeof(obj))
    address_ = ::new (memory) T(init);
  }

  /// Rebuilt around a block that already holds the value (a child's args).
  explicit CValue(FromWrapper from)
      : wrapper_(std::move(from.wrapper)),
        address_(static_cast<T*>(static_cast<void*>(wrapper_->create_memoryview()))) {}

  // [counter-cvalue]
  /// Python: obj.value (read).
  T value() const { return *address_; }
  /// Python: obj.value = v.
  void set_value(const T& v) const { *address_ = v; }
  // [counter-cvalue]
  /// Python: the fields of a ctypes.Structure (`foo.x`): `foo->x`.  The shared
  /// memory itself, unlocked.
  T* operator->() const { return address_; }
  /// The shared memory itself, unlocked.
  T& operator*() const { return *address_; }

  /// Python: repr(obj): "c_int(5)", "c_double(0.5)", "c_char(b'x')"; a struct
  /// shows as "<Foo object at 0x...>".
  std::string repr() const {
    if constexpr (std::is_arithmetic_v<T>) {
      return _ctype_name(typeid(T)) + "(" + _repr_of(*address_) + ")";
    } else {
      return "<" + _ctype_name(typeid(T)) + " object at " + id_repr(address_) + ">";
    }
  }

  /// Python: ctypes.addressof(obj).
  T* _address() const { return address_; }
  /// Python: obj._wrapper (the heap block).
  const std::shared_ptr<heap::BufferWrapper>& _wrapper() const { return wrapper_; }

 private:
  std::shared_ptr<heap::BufferWrapper> wrapper_;
  T* address_ = nullptr;
};

/// An array of `len()` C values of type T in the shared heap: Python's ctypes
/// array (`c_int_Array_10`) that sharedctypes.RawArray returns.  No lock.  A
/// handle, like CValue.
template <class T>
class CArray {
  static_assert(std::is_trivially_copyable_v<T>,
                "shared items are copied byte by byte between processes");
  static_assert(alignof(T) <= heap::Heap::_alignment,
                "heap blocks are aligned to 8 bytes (Heap::_alignment), as in Python");

 public:
  /// Python: RawArray(typecode, size): `size` zeroed items.
  /// \throws ValueError "Array length must be >= 0, not -1".
  explicit CArray(std::ptrdiff_t size) : CArray(size, nullptr) {}
  /// Python: RawArray(typecode, initializer): a copy of `initializer`.
  explicit CArray(const std::vector<T>& initializer)
      : CArray(static_cast<std::ptrdiff_t>(initializer.size()), initializer.data()) {}

  /// Rebuilt around a block that already holds the items (a child's args).
  explicit CArray(FromWrapper from)
      : wrapper_(std::move(from.wrapper)),
        length_(wrapper_->size() / sizeof(T)),
        data_(static_cast<T*>(static_cast<void*>(wrapper_->create_memoryview()))) {}

  /// Python: len(arr).
  std::size_t len() const { return length_; }
  /// Same as len(), for C++ algorithms.
  std::size_t size() const { return length_; }
  /// Python: arr[i] (read or assign); negative i counts from the end.
  /// \throws IndexError "invalid index".
  T& operator[](std::ptrdiff_t i) const { return data_[_check_index(i, length_)]; }
  /// Python: arr[start:stop:step] as a new list.  arr[:] is slice().
  std::vector<T> slice(std::optional<std::ptrdiff_t> start = std::nullopt,
                       std::optional<std::ptrdiff_t> stop = std::nullopt,
                       std::optional<std::ptrdiff_t> step = std::nullopt) const {
    SliceIndices s = _adjust_slice(length_, start, stop, step);
    std::vector<T> result;
    result.reserve(static_cast<std::size_t>(s.length));
    for (std::ptrdiff_t k = 0, i = s.start; k < s.length; ++k, i += s.step) result.push_back(data_[i]);
    return result;
  }
  /// Python: arr[start:stop] = values.
  /// \throws ValueError "Can only assign sequence of same size".
  void set_slice(std::optional<std::ptrdiff_t> start, std::optional<std::ptrdiff_t> stop,
                 const std::vector<T>& values) const {
    set_slice(start, stop, std::nullopt, values);
  }
  /// Python: arr[start:stop:step] = values.
  /// \throws ValueError "Can only assign sequence of same size".
  void set_slice(std::optional<std::ptrdiff_t> start, std::optional<std::ptrdiff_t> stop,
                 std::optional<std::ptrdiff_t> step, const std::vector<T>& values) const {
    SliceIndices s = _adjust_slice(length_, start, stop, step);
    _check_same_size(static_cast<std::size_t>(s.length), values.size());
    for (std::ptrdiff_t k = 0, i = s.start; k < s.length; ++k, i += s.step) data_[i] = values[k];
  }
  /// Iteration, as `for x in arr` (the shared memory itself).
  T* begin() const { return data_; }
  T* end() const { return data_ + length_; }

  /// Python: a c_char array's `.value`: the bytes up to the first NUL.
  std::string value() const requires std::is_same_v<T, char> {
    return std::string(data_, ::strnlen(data_, length_));
  }
  /// Python: `.value = b'...'`: the bytes, then a NUL if there is room.
  /// \throws ValueError "byte string too long".
  void set_value(std::string_view bytes) const requires std::is_same_v<T, char> {
    _check_fits(length_, bytes.size());
    std::memcpy(data_, bytes.data(), bytes.size());
    if (bytes.size() < length_) data_[bytes.size()] = '\0';
  }
  /// Python: a c_char array's `.raw`: every byte.
  std::string raw() const requires std::is_same_v<T, char> { return std::string(data_, length_); }
  /// Python: `.raw = b'...'`.  \throws ValueError "byte string too long".
  void set_raw(std::string_view bytes) const requires std::is_same_v<T, char> {
    _check_fits(length_, bytes.size());
    std::memcpy(data_, bytes.data(), bytes.size());
  }

  /// Python: repr(arr): "<multiprocessing.sharedctypes.c_int_Array_10 object at 0x...>".
  std::string repr() const {
    return "<multiprocessing.sharedctypes." + _ctype_name(typeid(T)) + "_Array_" +
           std::to_string(length_) + " object at " + id_repr(data_) + ">";
  }

  /// Python: ctypes.addressof(arr).
  T* _address() const { return data_; }
  /// Python: arr._wrapper (the heap block).
  const std::shared_ptr<heap::BufferWrapper>& _wrapper() const { return wrapper_; }

 private:
  CArray(std::ptrdiff_t size, const T* initializer)
      : wrapper_(std::make_shared<heap::BufferWrapper>(_array_bytes(size, sizeof(T)))),
        length_(wrapper_->size() / sizeof(T)) {  // == size, now known to be >= 0
    void* memory = wrapper_->create_memoryview();
    std::memset(memory, 0, wrapper_->size());  // CPython issue #11675: arrays start zeroed
    data_ = static_cast<T*>(memory);
    for (std::size_t i = 0; i < length_; ++i) {
      ::new (static_cast<void*>(data_ + i)) T(initializer != nullptr ? initializer[i] : T{});
    }
  }

  std::shared_ptr<heap::BufferWrapper> wrapper_;
  std::size_t length_ = 0;
  T* data_ = nullptr;
};

// ------------------------------------------------------------------ wrappers

/// Python: sharedctypes.SynchronizedBase: a raw object (`Obj`, a CValue or a
/// CArray) and the lock that guards it.  BasicLockable, so `with obj:` is
/// `std::lock_guard guard(obj);`.
template <class Obj>
class SynchronizedBase {
 public:
  // [counter-synchronized-base]
  /// Python: SynchronizedBase(obj, lock=None, ctx=None): a new RLock of `ctx`
  /// (the default context when null) unless a lock is given.
  explicit SynchronizedBase(Obj obj, std::optional<synchronize::SemLock> lock = std::nullopt,
                            BaseContext* ctx = nullptr)
      : obj_(std::move(obj)), lock_(lock ? std::move(*lock) : synchronize::RLock(ctx)) {}
  // [counter-synchronized-base]

  /// Python: acquire(block=True, timeout=None) / release(): the lock's.
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt) const {
    return lock_.acquire(block, timeout);
  }
  /// Python: release().
  void release() const { lock_.release(); }
  // [counter-with-obj]
  /// `with obj:` (__enter__ / __exit__), for std::lock_guard.
  void lock() const { lock_.acquire(); }
  /// `with obj:` (__exit__).
  void unlock() const { lock_.release(); }
  // [counter-with-obj]

  /// Python: get_obj(): the raw object, unlocked.
  Obj& get_obj() { return obj_; }
  /// Python: get_obj().
  const Obj& get_obj() const { return obj_; }
  // [counter-get-lock]
  /// Python: get_lock(): the lock itself (a handle), so that
  /// `std::lock_guard guard(v.get_lock());` works.
  synchronize::SemLock& get_lock() const { return lock_; }
  // [counter-get-lock]

 protected:
  Obj obj_;
  mutable synchronize::SemLock lock_;
};

/// Python: sharedctypes.Synchronized: what Value() returns.  value() and
/// set_value() each take the lock; a read-modify-write needs the lock held
/// around both (get_lock()), exactly as in Python.
template <class T>
class Synchronized : public SynchronizedBase<CValue<T>> {
 public:
  using SynchronizedBase<CValue<T>>::SynchronizedBase;

  // [counter-synchronized]
  /// Python: obj.value (read under the lock).
  T value() const {
    std::lock_guard guard(*this);
    return this->obj_.value();
  }
  /// Python: obj.value = v (written under the lock).
  void set_value(const T& v) const {
    std::lock_guard guard(*this);
    this->obj_.set_value(v);
  }
  // [counter-synchronized]
  /// Python: "<Synchronized wrapper for c_int(0)>".
  std::string repr() const { return "<Synchronized wrapper for " + this->obj_.repr() + ">"; }
};

/// Python: sharedctypes.SynchronizedArray (and SynchronizedString for 'c'
/// arrays, whose value()/raw() it offers too): what Array() returns.  Each
/// indexing, slice or assignment takes the lock once.
template <class T>
class SynchronizedArray : public SynchronizedBase<CArray<T>> {
 public:
  using SynchronizedBase<CArray<T>>::SynchronizedBase;

  /// What `arr[i]` gives: reading it is __getitem__ under the lock, assigning
  /// to it __setitem__ under the lock.  `arr[i] += v` is both, one after the
  /// other, as in Python: not atomic.
  class Item {
   public:
    /// Python: arr[i] (read).
    operator T() const {
      std::lock_guard guard(*array_);
      return array_->obj_[index_];
    }
    /// Python: arr[i] = v.
    const Item& operator=(const T& v) const {
      std::lock_guard guard(*array_);
      array_->obj_[index_] = v;
      return *this;
    }
    /// Python: arr[i] = arr[j] (the value, not the reference).
    const Item& operator=(const Item& other) const { return *this = static_cast<T>(other); }
    /// Python: arr[i] += v, -= v, *= v.
    const Item& operator+=(const T& v) const { return *this = static_cast<T>(static_cast<T>(*this) + v); }
    /// Python: arr[i] -= v.
    const Item& operator-=(const T& v) const { return *this = static_cast<T>(static_cast<T>(*this) - v); }
    /// Python: arr[i] *= v.
    const Item& operator*=(const T& v) const { return *this = static_cast<T>(static_cast<T>(*this) * v); }

   private:
    friend class SynchronizedArray;
    Item(const SynchronizedArray* array, std::ptrdiff_t index) : array_(array), index_(index) {}
    const SynchronizedArray* array_;
    std::ptrdiff_t index_;
  };

  /// Python: len(arr) (no lock: the length never changes).
  std::size_t len() const { return this->obj_.len(); }
  /// Same as len().
  std::size_t size() const { return this->obj_.len(); }
  /// Python: arr[i], to read or to assign.  \throws IndexError "invalid index".
  Item operator[](std::ptrdiff_t i) const {
    _check_index(i, len());  // fail here, as Python does, not at the first use
    return Item(this, i);
  }
  /// Python: arr[start:stop:step] under the lock.
  std::vector<T> slice(std::optional<std::ptrdiff_t> start = std::nullopt,
                       std::optional<std::ptrdiff_t> stop = std::nullopt,
                       std::optional<std::ptrdiff_t> step = std::nullopt) const {
    std::lock_guard guard(*this);
    return this->obj_.slice(start, stop, step);
  }
  /// Python: arr[start:stop] = values, under the lock.
  /// \throws ValueError "Can only assign sequence of same size".
  void set_slice(std::optional<std::ptrdiff_t> start, std::optional<std::ptrdiff_t> stop,
                 const std::vector<T>& values) const {
    std::lock_guard guard(*this);
    this->obj_.set_slice(start, stop, values);
  }
  /// Python: arr[start:stop:step] = values, under the lock.
  /// \throws ValueError "Can only assign sequence of same size".
  void set_slice(std::optional<std::ptrdiff_t> start, std::optional<std::ptrdiff_t> stop,
                 std::optional<std::ptrdiff_t> step, const std::vector<T>& values) const {
    std::lock_guard guard(*this);
    this->obj_.set_slice(start, stop, step, values);
  }

  /// Python: SynchronizedString.value (a 'c' array), under the lock.
  std::string value() const requires std::is_same_v<T, char> {
    std::lock_guard guard(*this);
    return this->obj_.value();
  }
  /// Python: SynchronizedString.value = b'...'.  \throws ValueError "byte string too long".
  void set_value(std::string_view bytes) const requires std::is_same_v<T, char> {
    std::lock_guard guard(*this);
    this->obj_.set_value(bytes);
  }
  /// Python: SynchronizedString.raw.
  std::string raw() const requires std::is_same_v<T, char> {
    std::lock_guard guard(*this);
    return this->obj_.raw();
  }
  /// Python: SynchronizedString.raw = b'...'.  \throws ValueError "byte string too long".
  void set_raw(std::string_view bytes) const requires std::is_same_v<T, char> {
    std::lock_guard guard(*this);
    this->obj_.set_raw(bytes);
  }

  /// Python: "<SynchronizedArray wrapper for <multiprocessing.sharedctypes.c_int_Array_3
  /// object at 0x...>>" ("SynchronizedString" for a 'c' array).
  std::string repr() const {
    const char* name = std::is_same_v<T, char> ? "SynchronizedString" : "SynchronizedArray";
    return std::string("<") + name + " wrapper for " + this->obj_.repr() + ">";
  }
};

/// Python: sharedctypes.SynchronizedString: a SynchronizedArray of 'c'.
using SynchronizedString = SynchronizedArray<char>;

/// The `lock=False` of Value() and Array(): `Value<'i'>(0, no_lock)` returns
/// the raw CValue, with no lock and no get_lock().
struct NoLock {
  /// Only `no_lock` is meant to exist.
  explicit constexpr NoLock() = default;
};
/// Python: lock=False.
inline constexpr NoLock no_lock{};

// ------------------------------------------------------------------ factories

/// Python: RawValue(typecode_or_type, *args): a CValue with no lock.
template <class T>
CValue<T> RawValue(const T& init = T{}) {
  return CValue<T>(init);
}
/// Python: RawValue('i', 5): `RawValue<'i'>(5)`.
template <char Typecode>
CValue<type_of<Typecode>> RawValue(const type_of<Typecode>& init = {}) {
  return CValue<type_of<Typecode>>(init);
}

/// Python: RawArray(typecode_or_type, size): `size` zeroed items, no lock.
template <class T>
CArray<T> RawArray(std::ptrdiff_t size) {
  return CArray<T>(size);
}
/// Python: RawArray(typecode_or_type, initializer): a copy of the items, no lock.
template <class T>
CArray<T> RawArray(const std::vector<T>& initializer) {
  return CArray<T>(initializer);
}
/// Python: RawArray('i', 10).
template <char Typecode>
CArray<type_of<Typecode>> RawArray(std::ptrdiff_t size) {
  return CArray<type_of<Typecode>>(size);
}
/// Python: RawArray('i', [1, 2, 3]).
template <char Typecode>
CArray<type_of<Typecode>> RawArray(const std::vector<type_of<Typecode>>& initializer) {
  return CArray<type_of<Typecode>>(initializer);
}

/// Python: Value(typecode_or_type, *args, lock=True, ctx=None): the value
/// with a new RLock of `ctx` (the default context when null).
template <class T>
Synchronized<T> Value(const T& init = T{}, BaseContext* ctx = nullptr) {
  return Synchronized<T>(CValue<T>(init), std::nullopt, ctx);
}
/// Python: Value(..., lock=lock): guarded by the given Lock, RLock, Semaphore...
template <class T>
Synchronized<T> Value(const T& init, synchronize::SemLock lock, BaseContext* = nullptr) {
  return Synchronized<T>(CValue<T>(init), std::move(lock));
}
/// Python: Value(..., lock=False): the raw CValue.
template <class T>
CValue<T> Value(const T& init, NoLock, BaseContext* = nullptr) {
  return CValue<T>(init);
}
/// Python: Value('i', 0): `Value<'i'>(0)`.
template <char Typecode>
Synchronized<type_of<Typecode>> Value(const type_of<Typecode>& init = {}, BaseContext* ctx = nullptr) {
  return Value<type_of<Typecode>>(init, ctx);
}
/// Python: Value('i', 0, lock=lock).
template <char Typecode>
Synchronized<type_of<Typecode>> Value(const type_of<Typecode>& init, synchronize::SemLock lock,
                                      BaseContext* = nullptr) {
  return Value<type_of<Typecode>>(init, std::move(lock));
}
/// Python: Value('i', 0, lock=False).
template <char Typecode>
CValue<type_of<Typecode>> Value(const type_of<Typecode>& init, NoLock, BaseContext* = nullptr) {
  return CValue<type_of<Typecode>>(init);
}

/// Python: Array(typecode_or_type, size, lock=True, ctx=None).
template <class T>
SynchronizedArray<T> Array(std::ptrdiff_t size, BaseContext* ctx = nullptr) {
  return SynchronizedArray<T>(CArray<T>(size), std::nullopt, ctx);
}
/// Python: Array(typecode_or_type, initializer, lock=True, ctx=None).
template <class T>
SynchronizedArray<T> Array(const std::vector<T>& initializer, BaseContext* ctx = nullptr) {
  return SynchronizedArray<T>(CArray<T>(initializer), std::nullopt, ctx);
}
/// Python: Array(..., size, lock=lock).
template <class T>
SynchronizedArray<T> Array(std::ptrdiff_t size, synchronize::SemLock lock, BaseContext* = nullptr) {
  return SynchronizedArray<T>(CArray<T>(size), std::move(lock));
}
/// Python: Array(..., initializer, lock=lock).
template <class T>
SynchronizedArray<T> Array(const std::vector<T>& initializer, synchronize::SemLock lock,
                           BaseContext* = nullptr) {
  return SynchronizedArray<T>(CArray<T>(initializer), std::move(lock));
}
/// Python: Array(..., size, lock=False): the raw CArray.
template <class T>
CArray<T> Array(std::ptrdiff_t size, NoLock, BaseContext* = nullptr) {
  return CArray<T>(size);
}
/// Python: Array(..., initializer, lock=False): the raw CArray.
template <class T>
CArray<T> Array(const std::vector<T>& initializer, NoLock, BaseContext* = nullptr) {
  return CArray<T>(initializer);
}
/// Python: Array('i', 10).
template <char Typecode>
SynchronizedArray<type_of<Typecode>> Array(std::ptrdiff_t size, BaseContext* ctx = nullptr) {
  return Array<type_of<Typecode>>(size, ctx);
}
/// Python: Array('i', [1, 2, 3]).
template <char Typecode>
SynchronizedArray<type_of<Typecode>> Array(const std::vector<type_of<Typecode>>& initializer,
                                           BaseContext* ctx = nullptr) {
  return Array<type_of<Typecode>>(initializer, ctx);
}
/// Python: Array('i', 10, lock=lock).
template <char Typecode>
SynchronizedArray<type_of<Typecode>> Array(std::ptrdiff_t size, synchronize::SemLock lock,
                                           BaseContext* = nullptr) {
  return Array<type_of<Typecode>>(size, std::move(lock));
}
/// Python: Array('i', [1, 2, 3], lock=lock).
template <char Typecode>
SynchronizedArray<type_of<Typecode>> Array(const std::vector<type_of<Typecode>>& initializer,
                                           synchronize::SemLock lock, BaseContext* = nullptr) {
  return Array<type_of<Typecode>>(initializer, std::move(lock));
}
/// Python: Array('i', 10, lock=False).
template <char Typecode>
CArray<type_of<Typecode>> Array(std::ptrdiff_t size, NoLock, BaseContext* = nullptr) {
  return CArray<type_of<Typecode>>(size);
}
/// Python: Array('i', [1, 2, 3], lock=False).
template <char Typecode>
CArray<type_of<Typecode>> Array(const std::vector<type_of<Typecode>>& initializer, NoLock,
                                BaseContext* = nullptr) {
  return CArray<type_of<Typecode>>(initializer);
}

/// Python: copy(obj): a new shared value holding a copy of `obj`'s bytes.
template <class T>
CValue<T> copy(const CValue<T>& obj) {
  return CValue<T>(*obj);
}
/// Python: copy(obj) of a plain ctypes object (not shared): `copy(Foo{2, 5.0})`.
template <class T>
CValue<T> copy(const T& obj) {
  return CValue<T>(obj);
}
/// Python: copy(arr): a new shared array with the same items.
template <class T>
CArray<T> copy(const CArray<T>& obj) {
  return CArray<T>(std::vector<T>(obj.begin(), obj.end()));
}

/// Python: synchronized(obj, lock=None, ctx=None): wrap a raw value.  (Python
/// asserts that obj is not already synchronized; here that does not compile.)
template <class T>
Synchronized<T> synchronized(CValue<T> obj, std::optional<synchronize::SemLock> lock = std::nullopt,
                             BaseContext* ctx = nullptr) {
  return Synchronized<T>(std::move(obj), std::move(lock), ctx);
}
/// Python: synchronized(arr, lock=None, ctx=None): wrap a raw array.
template <class T>
SynchronizedArray<T> synchronized(CArray<T> obj,
                                  std::optional<synchronize::SemLock> lock = std::nullopt,
                                  BaseContext* ctx = nullptr) {
  return SynchronizedArray<T>(std::move(obj), std::move(lock), ctx);
}

}  // namespace multiprocessing::sharedctypes

namespace multiprocessing {

/// The sharedctypes objects as Process args (reduction.hpp's customization
/// point), as CPython's reduce_ctype and SynchronizedBase.__reduce__ make
/// them cross: under fork the child gets the same shared block (and lock);
/// under spawn and forkserver the block's arena crosses by fd and the lock by
/// name.  A value made under the fork context has a lock that cannot reach a
/// spawned child (RuntimeError at start()): make it with that context's
/// ctx.Value().
template <class T>
struct Convert<sharedctypes::CValue<T>> {
  static Object to_object(const sharedctypes::CValue<T>& v) {
    return sharedctypes::_reduce_ctype(v._wrapper(), sharedctypes::_ctype_name(typeid(T)), std::nullopt);
  }
  static sharedctypes::CValue<T> from_object(const Object& o) {
    return sharedctypes::CValue<T>(sharedctypes::FromWrapper{
        sharedctypes::_rebuild_ctype(o, sharedctypes::_ctype_name(typeid(T)), std::nullopt, sizeof(T))});
  }
};

template <class T>
struct Convert<sharedctypes::CArray<T>> {
  static Object to_object(const sharedctypes::CArray<T>& a) {
    return sharedctypes::_reduce_ctype(a._wrapper(), sharedctypes::_ctype_name(typeid(T)), a.len());
  }
  static sharedctypes::CArray<T> from_object(const Object& o) {
    return sharedctypes::CArray<T>(
        sharedctypes::FromWrapper{sharedctypes::_rebuild_ctype(o, sharedctypes::_ctype_name(typeid(T)), std::nullopt, 0)});
  }
};

template <class T>
struct Convert<sharedctypes::Synchronized<T>> {
  static Object to_object(const sharedctypes::Synchronized<T>& v) {
    return sharedctypes::_reduce_synchronized(Object(v.get_obj()), v.get_lock());
  }
  static sharedctypes::Synchronized<T> from_object(const Object& o) {
    auto [obj, lock] = sharedctypes::_synchronized_parts(o);
    return sharedctypes::Synchronized<T>(obj.as<sharedctypes::CValue<T>>(),
                                         synchronize::SemLock(synchronize::SemLock::_rebuild(lock)));
  }
};

template <class T>
struct Convert<sharedctypes::SynchronizedArray<T>> {
  static Object to_object(const sharedctypes::SynchronizedArray<T>& a) {
    return sharedctypes::_reduce_synchronized(Object(a.get_obj()), a.get_lock());
  }
  static sharedctypes::SynchronizedArray<T> from_object(const Object& o) {
    auto [obj, lock] = sharedctypes::_synchronized_parts(o);
    return sharedctypes::SynchronizedArray<T>(obj.as<sharedctypes::CArray<T>>(),
                                              synchronize::SemLock(synchronize::SemLock::_rebuild(lock)));
  }
};

}  // namespace multiprocessing
