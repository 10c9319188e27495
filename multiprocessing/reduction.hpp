// multiprocessing/reduction.hpp
// Mirrors the value side of CPython 3.11 Lib/multiprocessing/reduction.py: what a
// value is when it crosses a process boundary.  Python needs nothing here (every
// value is an object); C++ needs a dynamic value type, `Object`, for what arrives
// when the type is not known in advance (a process's `args`, a manager's dict),
// and one customization point, `Convert<T>`, that maps C++ types onto it.
//
// The pickle protocol itself (ForkingPickler, dumps/loads) is built on this type in
// reduction/pickle.hpp.  Under the `fork` start method nothing is pickled:
// the child reads the Objects from its copy of the parent's memory.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <span>
#include <vector>

#include "multiprocessing/exceptions.hpp"

namespace multiprocessing {

/// Python's None.
struct None {
  friend bool operator==(None, None) { return true; }
};

/// Python's bytes: raw octets, kept apart from str (text) as Python keeps them.
struct Bytes {
  std::string data;
  Bytes() = default;
  explicit Bytes(std::string octets) : data(std::move(octets)) {}
  std::size_t size() const noexcept { return data.size(); }
  friend bool operator==(const Bytes&, const Bytes&) = default;
};

/// Python's bytearray: mutable octets in Python, a plain value here.
struct Bytearray {
  std::string data;
  Bytearray() = default;
  explicit Bytearray(std::string octets) : data(std::move(octets)) {}
  std::size_t size() const noexcept { return data.size(); }
  friend bool operator==(const Bytearray&, const Bytearray&) = default;
};

class Object;
template <class T>
struct Convert;

/// A value kept on the heap so that a large, rarely used alternative does not make
/// every Object large (Object stays the size of a std::string plus a tag).  Copying
/// a Box copies the value; == compares values.
template <class T>
class Box {
 public:
  Box(T value) : p_(std::make_unique<T>(std::move(value))) {}  // NOLINT: a value converts
  Box(const Box& other) : p_(std::make_unique<T>(*other)) {}
  Box(Box&&) noexcept = default;
  Box& operator=(const Box& other) { p_ = std::make_unique<T>(*other); return *this; }
  Box& operator=(Box&&) noexcept = default;
  const T& operator*() const { return *p_; }
  T& operator*() { return *p_; }
  const T* operator->() const { return p_.get(); }
  T* operator->() { return p_.get(); }
  friend bool operator==(const Box& a, const Box& b) { return *a == *b; }

 private:
  std::unique_ptr<T> p_;  // never null, except in a moved-from Box
};

/// A dynamic Python value: None, bool, int, float, str, bytes, bytearray, list, tuple,
/// dict, set, frozenset, or a pickled global (a class or function named by module
/// and qualname) and an object rebuilt from one (Reduced).
/// Values, not references: copying an Object copies its contents.
class Object {
 public:
  using List = std::vector<Object>;
  /// A tuple: a list that prints and pickles as a tuple.
  struct Tuple {
    std::vector<Object> items;
    friend bool operator==(const Tuple&, const Tuple&) = default;
  };
  /// A dict in insertion order, as Python's dict keeps it.
  using Dict = std::vector<std::pair<Object, Object>>;

  /// Python's set: unique items.  Python orders a set by hash; this one keeps its
  /// items sorted by Object::compare, so iteration, repr() and pickles are
  /// deterministic (for small non-negative ints the two orders agree).
  class Set {
   public:
    Set() = default;
    /// Sorts the items and drops duplicates, as `set(items)` does.
    explicit Set(std::vector<Object> items);
    Set(std::initializer_list<Object> items);
    /// Python: set.add.  \return true if the item was not there yet.
    bool insert(Object item);
    /// Python: `item in s`.
    bool contains(const Object& item) const;
    /// The items, in Object::compare order.
    const std::vector<Object>& items() const noexcept { return items_; }
    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }
    friend bool operator==(const Set&, const Set&) = default;

   private:
    std::vector<Object> items_;  // sorted by Object::compare, no two equal
  };
  /// Python's frozenset: a Set that prints and pickles as a frozenset.
  class FrozenSet : public Set {
   public:
    using Set::Set;
    FrozenSet() = default;
    explicit FrozenSet(Set s) : Set(std::move(s)) {}
    friend bool operator==(const FrozenSet&, const FrozenSet&) = default;
  };

  /// A global named by the pickle (GLOBAL / STACK_GLOBAL): a class or function that
  /// the receiving side looks up by name.  Python: what Pickler.save_global writes.
  struct Global {
    std::string module;    ///< e.g. "multiprocessing.managers"
    std::string qualname;  ///< e.g. "Token"
    friend bool operator==(const Global&, const Global&) = default;
  };
  /// An object that the pickle rebuilds by calling a global: Python's
  /// `obj.__reduce__()` result `(callable, args[, state])`, kept as data.
  /// `newobj` false: `callable(*args)` (opcode REDUCE, e.g. RebuildProxy);
  /// true: `callable.__new__(callable, *args)` (NEWOBJ, how copyreg.__reduce_ex__
  /// writes an instance such as a manager Token).  `state`, when present, is what
  /// BUILD passes to `__setstate__` (or merges into `__dict__`).
  struct Reduced {
    Global callable = {};
    std::vector<Object> args = {};
    bool newobj = false;
    /// Empty: no BUILD.  One item: the state.  (A vector because Object is not
    /// complete here; std::optional would need it to be.)
    std::vector<Object> state = {};
    /// Port only, never pickled and not compared: what the object is in this
    /// process (a semaphore's handle, an open fd).  A forked child receives
    /// its Process's args in memory, not pickled, and rebuilds the object from
    /// this, as Python's forked child simply has the same objects.
    std::shared_ptr<const void> local = {};
    /// Port only, not compared: Python's `__reduce__` run at pickling time.
    /// When set, the pickler writes what it returns instead of this object:
    /// how a lock checks that it is being pickled for a child being spawned
    /// (context.assert_spawning), and how an fd becomes the number the child
    /// will find it under (reduction.DupFd).
    std::function<Object()> reduce = {};
    friend bool operator==(const Reduced& a, const Reduced& b) {
      return a.callable == b.callable && a.args == b.args && a.newobj == b.newobj &&
             a.state == b.state;
    }
  };

  /// The alternatives.  A Global or a Reduced is boxed (see Box); reach it with
  /// global() / reduced().
  using Variant = std::variant<None, bool, std::int64_t, double, std::string, Bytes, List,
                               Tuple, Dict, Bytearray, Set, FrozenSet, Box<Global>, Box<Reduced>>;

  Object() = default;                       ///< None
  Object(None) {}
  Object(bool b) : value_(b) {}
  Object(std::int64_t i) : value_(i) {}
  Object(double d) : value_(d) {}
  Object(std::string s) : value_(std::move(s)) {}
  Object(const char* s) : value_(std::string(s)) {}
  Object(Bytes b) : value_(std::move(b)) {}
  Object(List l) : value_(std::move(l)) {}
  Object(Tuple t) : value_(std::move(t)) {}
  Object(Dict d) : value_(std::move(d)) {}
  Object(Bytearray b) : value_(std::move(b)) {}
  Object(Set s) : value_(std::in_place_type<Set>, std::move(s)) {}
  Object(FrozenSet s) : value_(std::in_place_type<FrozenSet>, std::move(s)) {}
  Object(Global g) : value_(std::in_place_type<Box<Global>>, std::move(g)) {}
  Object(Reduced r) : value_(std::in_place_type<Box<Reduced>>, std::move(r)) {}
  /// Any type with a Convert<T> specialisation (ints, vectors, maps, user types...).
  template <class T>
    requires requires(const T& t) { Convert<std::decay_t<T>>::to_object(t); }
  Object(const T& value) : Object(Convert<std::decay_t<T>>::to_object(value)) {}

  bool is_none() const noexcept { return std::holds_alternative<None>(value_); }
  /// The Global held, or nullptr.
  const Global* global() const noexcept {
    const auto* box = std::get_if<Box<Global>>(&value_);
    return box ? &**box : nullptr;
  }
  /// The Reduced held, or nullptr.
  const Reduced* reduced() const noexcept {
    const auto* box = std::get_if<Box<Reduced>>(&value_);
    return box ? &**box : nullptr;
  }
  /// Python's type name: "NoneType", "bool", "int", "float", "str", "bytes",
  /// "list", "tuple", "dict", "bytearray", "set", "frozenset"; "type" for a Global;
  /// for a Reduced, the callable's qualname ("Token"), as type(obj).__name__ is
  /// for an instance of a class.
  std::string type_name() const;
  /// Python's repr(): `[0, 1, 2]`, `'abc'`, `b'x'`, `{'a': 1}`, `(1,)`,
  /// `bytearray(b'x')`, `{1, 2}`, `set()`, `frozenset({1})`; a Global prints as
  /// `<class 'module.qualname'>`, a Reduced as the call that rebuilds it,
  /// `module.qualname(args...)`, with `.__new__`/`.__setstate__(state)` when used.
  std::string repr() const;

  /// A total order over all Objects, for sets and dict-key lookups: first by kind
  /// (the variant index), then by value; doubles by IEEE total order.  Not Python's
  /// `<`, which refuses to compare unlike types.  \return <0, 0 or >0.
  static int compare(const Object& a, const Object& b);

  /// Read as a C++ type.  \throws TypeError naming both types when they differ.
  template <class T>
  T as() const { return Convert<T>::from_object(*this); }

  /// The alternative held, for code that switches on it.
  const Variant& variant() const noexcept { return value_; }
  Variant& variant() noexcept { return value_; }

  /// Python's ==, except that 1 == 1.0 is false here (the types differ).
  friend bool operator==(const Object&, const Object&) = default;

  /// \throws TypeError: "expected int, got str".
  [[noreturn]] void type_mismatch(const char* expected) const;

 private:
  Variant value_;
};

/// The customization point: specialise Convert<T> with
///   static Object to_object(const T&);
///   static T from_object(const Object&);
/// for a type of your own (a struct usually becomes a Tuple or a Dict).
/// Specialisations below cover bool, integers, floating point, std::string,
/// Bytes, Bytearray, std::vector, std::map, std::set, std::tuple, std::pair and
/// std::optional.  A type that should pickle as an instance of a Python class
/// returns an Object::Reduced (see reduction/pickle.hpp, ForkingPickler).
template <class T>
struct Convert;

template <>
struct Convert<Object> {
  static Object to_object(const Object& o) { return o; }
  static Object from_object(const Object& o) { return o; }
};

template <>
struct Convert<bool> {
  static Object to_object(bool b) { return Object(b); }
  static bool from_object(const Object& o);
};

template <>
struct Convert<std::int64_t> {
  static Object to_object(std::int64_t v) { return Object(v); }
  static std::int64_t from_object(const Object& o);
};

template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, std::int64_t>)
struct Convert<T> {
  static Object to_object(T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (v > static_cast<T>(INT64_MAX)) throw ValueError("int too large for this port's 64-bit int");
    }
    return Object(static_cast<std::int64_t>(v));
  }
  static T from_object(const Object& o) {
    std::int64_t v = Convert<std::int64_t>::from_object(o);
    if (std::in_range<T>(v)) return static_cast<T>(v);
    throw ValueError("int " + std::to_string(v) + " does not fit the C++ type asked for");
  }
};

template <class T>
  requires std::is_floating_point_v<T>
struct Convert<T> {
  static Object to_object(T v) { return Object(static_cast<double>(v)); }
  static T from_object(const Object& o) {
    if (const double* d = std::get_if<double>(&o.variant())) return static_cast<T>(*d);
    // An int is accepted where a float is expected, as in Python arithmetic.
    if (const std::int64_t* i = std::get_if<std::int64_t>(&o.variant())) return static_cast<T>(*i);
    o.type_mismatch("float");
  }
};

template <>
struct Convert<std::string> {
  static Object to_object(const std::string& s) { return Object(s); }
  static std::string from_object(const Object& o);
};

template <>
struct Convert<Bytes> {
  static Object to_object(const Bytes& b) { return Object(b); }
  static Bytes from_object(const Object& o);
};

template <>
struct Convert<Bytearray> {
  static Object to_object(const Bytearray& b) { return Object(b); }
  static Bytearray from_object(const Object& o);
};

template <>
struct Convert<None> {
  static Object to_object(None) { return Object(); }
  static None from_object(const Object& o);
};

template <class T>
struct Convert<std::vector<T>> {
  static Object to_object(const std::vector<T>& v) {
    Object::List list;
    list.reserve(v.size());
    for (const auto& item : v) list.push_back(Convert<T>::to_object(item));
    return Object(std::move(list));
  }
  static std::vector<T> from_object(const Object& o) {
    const Object::List* list = std::get_if<Object::List>(&o.variant());
    const Object::Tuple* tuple = std::get_if<Object::Tuple>(&o.variant());
    if (list == nullptr && tuple == nullptr) o.type_mismatch("list");
    const auto& items = list ? *list : tuple->items;
    std::vector<T> out;
    out.reserve(items.size());
    for (const auto& item : items) out.push_back(Convert<T>::from_object(item));
    return out;
  }
};

template <class K, class V>
struct Convert<std::map<K, V>> {
  static Object to_object(const std::map<K, V>& m) {
    Object::Dict dict;
    for (const auto& [k, v] : m) dict.emplace_back(Convert<K>::to_object(k), Convert<V>::to_object(v));
    return Object(std::move(dict));
  }
  static std::map<K, V> from_object(const Object& o) {
    const Object::Dict* dict = std::get_if<Object::Dict>(&o.variant());
    if (dict == nullptr) o.type_mismatch("dict");
    std::map<K, V> out;
    for (const auto& [k, v] : *dict) out[Convert<K>::from_object(k)] = Convert<V>::from_object(v);
    return out;
  }
};

/// std::set<T> is Python's set; reading accepts a set or a frozenset.
template <class T>
struct Convert<std::set<T>> {
  static Object to_object(const std::set<T>& s) {
    std::vector<Object> items;
    items.reserve(s.size());
    for (const auto& item : s) items.push_back(Convert<T>::to_object(item));
    return Object(Object::Set(std::move(items)));
  }
  static std::set<T> from_object(const Object& o) {
    const Object::Set* set = std::get_if<Object::Set>(&o.variant());
    if (set == nullptr) set = std::get_if<Object::FrozenSet>(&o.variant());
    if (set == nullptr) o.type_mismatch("set");
    std::set<T> out;
    for (const auto& item : set->items()) out.insert(Convert<T>::from_object(item));
    return out;
  }
};

template <class... T>
struct Convert<std::tuple<T...>> {
  static Object to_object(const std::tuple<T...>& t) {
    return std::apply([](const auto&... items) {
      return Object(Object::Tuple{{Convert<std::decay_t<decltype(items)>>::to_object(items)...}});
    }, t);
  }
  static std::tuple<T...> from_object(const Object& o) {
    const Object::Tuple* tuple = std::get_if<Object::Tuple>(&o.variant());
    if (tuple == nullptr) o.type_mismatch("tuple");
    if (tuple->items.size() != sizeof...(T)) {
      throw ValueError("expected a tuple of " + std::to_string(sizeof...(T)) + " items, got " +
                       std::to_string(tuple->items.size()));
    }
    return unpack(*tuple, std::index_sequence_for<T...>{});
  }

 private:
  template <std::size_t... I>
  static std::tuple<T...> unpack(const Object::Tuple& t, std::index_sequence<I...>) {
    return std::tuple<T...>(Convert<T>::from_object(t.items[I])...);
  }
};

template <class A, class B>
struct Convert<std::pair<A, B>> {
  static Object to_object(const std::pair<A, B>& p) {
    return Convert<std::tuple<A, B>>::to_object(std::tuple<A, B>(p.first, p.second));
  }
  static std::pair<A, B> from_object(const Object& o) {
    auto [a, b] = Convert<std::tuple<A, B>>::from_object(o);
    return {std::move(a), std::move(b)};
  }
};

template <class T>
struct Convert<std::optional<T>> {
  static Object to_object(const std::optional<T>& v) {
    return v ? Convert<T>::to_object(*v) : Object();
  }
  static std::optional<T> from_object(const Object& o) {
    if (o.is_none()) return std::nullopt;
    return Convert<T>::from_object(o);
  }
};

/// Object::Dict itself (a vector of pairs, which the vector form above would
/// read as a list of 2-tuples): `obj.as<Object::Dict>()` reads a dict.
template <>
struct Convert<Object::Dict> {
  static Object to_object(const Object::Dict& d) { return Object(d); }
  static Object::Dict from_object(const Object& o) {
    if (const auto* d = std::get_if<Object::Dict>(&o.variant())) return *d;
    o.type_mismatch("dict");
  }
};

/// Read an Object as T (free-function spelling of Object::as<T>()).
template <class T>
T from_object(const Object& o) { return Convert<T>::from_object(o); }

// ------------------------------------------------------------------ repr of atoms
// The one place where Python's repr() of a float, a bytes and a str is written;
// Object::repr, sharedctypes' c_double(...)/c_char(...) and the connection's error
// texts all print through these.

/// Python: float.__repr__ (`repr(0.0001)` is `'0.0001'`, `repr(1e16)` is `'1e+16'`):
/// the shortest digits that read back as the same double, in fixed notation when the
/// decimal exponent is in [-4, 16) (with ".0" if nothing follows the point), else as
/// `d.ddde+XX` with at least two exponent digits; "inf", "-inf", "nan".
std::string float_repr(double d);

/// Python: bytes.__repr__: `b'...'`, in double quotes when the octets hold a single
/// quote and no double quote; backslash, tab, newline, carriage return and the quote
/// are escaped with a backslash, other octets outside printable ASCII as `\xNN`.
std::string bytes_repr(std::string_view octets);

/// Python: str.__repr__ of UTF-8 text, with the same quotes and escapes as
/// bytes_repr; ASCII controls, the Latin-1 controls (U+0080..U+00A0) and the soft
/// hyphen are written `\xNN`, other characters as they are (Python escapes the rest of
/// Unicode's non-printable characters too; the port does not carry Unicode's tables).
std::string str_repr(std::string_view text);

/// Python: hex(id(obj)), the "0x7f..." that default reprs show ("<Event at
/// 0x7f... set>"): here the object's address.
std::string id_repr(const void* address);

/// Append code point `cp` to `out` as UTF-8 (Python: chr(cp).encode()), for the
/// pickle's raw-unicode-escape and the repr of a ctypes c_wchar.
void append_utf8(std::string& out, std::uint32_t cp);

/// Python's `args` tuple of a call: the positional arguments, as dynamic values.
using Args = std::vector<Object>;

// ------------------------------------------------------------------ fds

namespace reduction {

/// Python: reduction.sendfds(sock, fds): send open fds over a unix socket
/// (SCM_RIGHTS): the receiver gets its own descriptors for the same open files.
/// One data byte goes with them, len(fds) % 256, which recvfds checks.
/// \throws OSError("sendmsg", errno).
void sendfds(int sock, const std::vector<int>& fds);

/// Python: reduction.recvfds(sock, size): receive up to `size` fds sent by
/// sendfds.  They arrive with FD_CLOEXEC set (MSG_CMSG_CLOEXEC).
/// \throws EOFError if the peer closed; RuntimeError "received N items of
///   ancdata" or "Invalid data received"; AssertionError if the count byte
///   disagrees ("Len is N but msg[0] is M"); OSError("recvmsg", errno).
std::vector<int> recvfds(int sock, std::size_t size);

/// recvfds into the caller's array: up to `out.size()` fds, returns how many
/// came.  Allocates nothing for up to kRecvfdsOnStack fds: the fork server
/// receives each request this way, because every heap page its loop writes
/// is, after each fork(), one more copy-on-write fault per child.
/// \throws as recvfds.
std::size_t recvfds(int sock, std::span<int> out);

/// How many fds recvfds(sock, span) receives with its control buffer on the
/// stack (the fork server's most, MAXFDS_TO_SEND + 1); more use the heap.
inline constexpr std::size_t kRecvfdsOnStack = 257;

/// Python: reduction.DupFd(fd): what stands for `fd` inside the pickle of a
/// child's process object: the spawning Popen's DupFd of
/// duplicate_for_child(fd) (see context.hpp, get_spawning_popen).
/// At any other time, resource_sharer::DupFd(fd): the fd is lent through
/// the resource sharer's thread.
Object DupFd(int fd);

/// Python: `DupFd(...).detach()` in the child: the fd itself, now owned by
/// the caller (close-on-exec).  Under spawn, the number the child inherited;
/// under forkserver, forkserver.get_inherited_fds()[index]; lent by a
/// resource sharer, fetched from it.
/// \throws UnpicklingError if `dup_fd` is not a DupFd this port wrote.
int _detach_dup_fd(const Object& dup_fd);

// ------------------------------------------------------------------ exceptions

/// Python: pickling an exception (BaseException.__reduce__): the class by
/// name and its args, `builtins.ValueError('boom')`, which CPython unpickles
/// to the same exception.  The port's classes map to their Python modules
/// (builtins, multiprocessing, queue, threading, pickle, multiprocessing.pool);
/// any other C++ exception becomes `builtins.Exception(message)` with the C++
/// class name kept as its attribute `cpp_type` (the pickle's BUILD state),
/// which _raise_exception reads back.
Object _reduce_exception(const std::exception& e);

/// Python: `raise exc` after unpickling it: throw the C++ twin of the
/// exception `exc` stands for (ValueError for builtins.ValueError...), with its
/// message, and `remote_traceback` as its remote_traceback() (Python sets it
/// as `__cause__`).  An exception class this program has no twin for is
/// thrown as RemoteException, which keeps the class's name.
/// \throws the exception; ValueError if `exc` is not a pickled exception.
[[noreturn]] void _raise_exception(const Object& exc, const std::string& remote_traceback = "");

/// Python: reduction.send_handle(conn, handle, destination_pid): one fd.
void send_handle(int sock, int handle);
/// Python: reduction.recv_handle(conn).
int recv_handle(int sock);

}  // namespace reduction

}  // namespace multiprocessing
