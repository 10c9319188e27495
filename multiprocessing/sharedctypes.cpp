// multiprocessing/sharedctypes.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/sharedctypes.py; see sharedctypes.hpp.
// The templates live in the header; here are the parts that do not depend on
// the item type: ctypes' names and reprs, and Python's index and slice rules.
#include "multiprocessing/sharedctypes.hpp"

#include <cxxabi.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "multiprocessing/context.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/reduction/pickle.hpp"

namespace multiprocessing::sharedctypes {

std::string _ctype_name(const std::type_info& type) {
  // Python: type(obj).__name__ for the types of typecode_to_type.  On 64-bit
  // Linux ctypes makes c_longlong the same class as c_long, and prints it so.
  if (type == typeid(char)) return "c_char";
  if (type == typeid(wchar_t)) return "c_wchar";
  if (type == typeid(signed char)) return "c_byte";
  if (type == typeid(unsigned char)) return "c_ubyte";
  if (type == typeid(short)) return "c_short";
  if (type == typeid(unsigned short)) return "c_ushort";
  if (type == typeid(int)) return "c_int";
  if (type == typeid(unsigned int)) return "c_uint";
  if (type == typeid(long) || (type == typeid(long long) && sizeof(long) == sizeof(long long))) {
    return "c_long";
  }
  if (type == typeid(unsigned long) ||
      (type == typeid(unsigned long long) && sizeof(long) == sizeof(long long))) {
    return "c_ulong";
  }
  if (type == typeid(long long)) return "c_longlong";
  if (type == typeid(unsigned long long)) return "c_ulonglong";
  if (type == typeid(float)) return "c_float";
  if (type == typeid(double)) return "c_double";
  if (type == typeid(bool)) return "c_bool";
  // Anything else (a struct): its C++ name, demangled.
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type.name();
  std::free(demangled);
  return name;
}

namespace {

template <class Integer>
std::string integer_repr(Integer v) {
  return std::to_string(v);
}

}  // namespace

std::string _repr_of(char v) { return bytes_repr(std::string_view(&v, 1)); }
std::string _repr_of(wchar_t v) {
  // Python: repr of a 1-character str, the character held as UTF-8.
  std::string text;
  append_utf8(text, static_cast<std::uint32_t>(v));
  return str_repr(text);
}
std::string _repr_of(signed char v) { return integer_repr(static_cast<int>(v)); }
std::string _repr_of(unsigned char v) { return integer_repr(static_cast<unsigned>(v)); }
std::string _repr_of(short v) { return integer_repr(static_cast<int>(v)); }
std::string _repr_of(unsigned short v) { return integer_repr(static_cast<unsigned>(v)); }
std::string _repr_of(int v) { return integer_repr(v); }
std::string _repr_of(unsigned int v) { return integer_repr(v); }
std::string _repr_of(long v) { return integer_repr(v); }
std::string _repr_of(unsigned long v) { return integer_repr(v); }
std::string _repr_of(long long v) { return integer_repr(v); }
std::string _repr_of(unsigned long long v) { return integer_repr(v); }
// ctypes shows a c_float through the double it converts to: c_float(3.140000104904175).
std::string _repr_of(float v) { return float_repr(static_cast<double>(v)); }
std::string _repr_of(double v) { return float_repr(v); }
std::string _repr_of(bool v) { return v ? "True" : "False"; }

SliceIndices _adjust_slice(std::size_t length, std::optional<std::ptrdiff_t> start,
                           std::optional<std::ptrdiff_t> stop, std::optional<std::ptrdiff_t> step) {
  // Python: PySlice_Unpack + PySlice_AdjustIndices (Objects/sliceobject.c).
  auto n = static_cast<std::ptrdiff_t>(length);
  std::ptrdiff_t st = step.value_or(1);
  if (st == 0) throw ValueError("slice step cannot be zero");
  std::ptrdiff_t lo, hi;
  if (st > 0) {
    lo = start.value_or(0);
    hi = stop.value_or(n);
  } else {
    lo = start.value_or(n - 1);
    hi = stop.value_or(-n - 1);  // "before the first item", once adjusted below
  }
  auto adjust = [&](std::ptrdiff_t i) {
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  lo = adjust(lo);
  hi = adjust(hi);
  std::ptrdiff_t count = 0;
  if (st < 0) {
    if (hi < lo) count = (lo - hi - 1) / (-st) + 1;
  } else if (lo < hi) {
    count = (hi - lo - 1) / st + 1;
  }
  return {lo, hi, st, count};
}

std::size_t _check_index(std::ptrdiff_t i, std::size_t length) {
  // Python (ctypes Array_item): a negative index counts from the end.
  auto n = static_cast<std::ptrdiff_t>(length);
  if (i < 0) i += n;
  if (i < 0 || i >= n) throw IndexError("invalid index");
  return static_cast<std::size_t>(i);
}

void _check_same_size(std::size_t expected, std::size_t got) {
  if (expected != got) throw ValueError("Can only assign sequence of same size");
}

std::ptrdiff_t _array_bytes(std::ptrdiff_t length, std::size_t item_size) {
  // Python: `type_ * length` (ctypes refuses a negative length or one whose
  // bytes overflow).
  if (length < 0) throw ValueError("Array length must be >= 0, not " + std::to_string(length));
  if (item_size != 0 && static_cast<std::size_t>(length) > static_cast<std::size_t>(PTRDIFF_MAX) / item_size) {
    throw OverflowError("array too large");
  }
  return static_cast<std::ptrdiff_t>(static_cast<std::size_t>(length) * item_size);
}

void _check_fits(std::size_t capacity, std::size_t got) {
  if (got > capacity) throw ValueError("byte string too long");
}

// ------------------------------------------------------------------ pickling

namespace {
// The unpickler may name these (ForkingPickler's allow-list).
const bool sharedctypes_globals_registered = [] {
  reduction::ForkingPickler::register_global("multiprocessing.sharedctypes", "rebuild_ctype");
  reduction::ForkingPickler::register_global("multiprocessing.sharedctypes", "synchronized");
  return true;
}();
}  // namespace

Object _reduce_ctype(const std::shared_ptr<heap::BufferWrapper>& wrapper, const std::string& type_name,
                     std::optional<std::size_t> length) {
  Object len = length ? Object(static_cast<std::int64_t>(*length)) : Object();
  Object::Reduced plain{{"multiprocessing.sharedctypes", "rebuild_ctype"},
                        {type_name, wrapper->_reduce(), len}};
  Object::Reduced r = plain;
  r.local = wrapper;  // under fork: this very block
  r.reduce = [plain = Object(std::move(plain)), type_name] {
    assert_spawning(type_name);  // Python: reduce_ctype's assert_spawning(obj)
    return plain;
  };
  return r;
}

std::shared_ptr<heap::BufferWrapper> _rebuild_ctype(const Object& obj, const std::string& type_name,
                                                   std::optional<std::size_t> length,
                                                   std::size_t bytes) {
  const Object::Reduced* r = obj.reduced();
  if (r == nullptr || r->callable.qualname != "rebuild_ctype" || r->args.size() != 3) {
    throw UnpicklingError("expected a pickled shared ctypes object, got " + obj.repr());
  }
  if (r->args[0] != Object(type_name)) {
    throw TypeError("expected a shared " + type_name + ", got one of " + r->args[0].repr());
  }
  if (length && r->args[2] != Object(static_cast<std::int64_t>(*length))) {
    throw TypeError("expected a shared array of length " + std::to_string(*length));
  }
  std::shared_ptr<heap::BufferWrapper> wrapper =
      r->local ? std::static_pointer_cast<heap::BufferWrapper>(std::const_pointer_cast<void>(r->local))
               : heap::BufferWrapper::_rebuild(r->args[1]);
  if (wrapper->size() < bytes) throw TypeError("the shared block is smaller than a " + type_name);
  return wrapper;
}

Object _reduce_synchronized(Object obj, const synchronize::SemLock& lock) {
  Object::Reduced plain{{"multiprocessing.sharedctypes", "synchronized"}, {std::move(obj), lock._reduce()}};
  Object::Reduced r = plain;
  r.reduce = [plain = Object(std::move(plain))] {
    assert_spawning("Synchronized");  // Python: SynchronizedBase.__reduce__
    return plain;
  };
  return r;
}

std::pair<Object, Object> _synchronized_parts(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  if (r == nullptr || r->callable.qualname != "synchronized" || r->args.size() != 2) {
    throw UnpicklingError("expected a pickled synchronized object, got " + obj.repr());
  }
  return {r->args[0], r->args[1]};
}

}  // namespace multiprocessing::sharedctypes
