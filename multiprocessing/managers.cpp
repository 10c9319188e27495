// multiprocessing/managers.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/managers.py.  See managers.hpp for
// the shape of the module and the object model of the server.
#include "multiprocessing/managers.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <thread>

#include "multiprocessing/context.hpp"
#include "multiprocessing/dummy/dummy.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/pool.hpp"
#include "multiprocessing/resource_tracker.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::managers {

namespace {

// A constant, not a std::string: MakeProxyType() may run while another file's
// statics are initialized, before this file's.
constexpr char kModule[] = "multiprocessing.managers";

std::string hex_id(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lx", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(p)));
  return buf;
}

std::string py_repr(const std::string& s) { return Object(s).repr(); }

const Object::Tuple& as_tuple(const Object& o, std::size_t n, const char* what) {
  const auto* t = std::get_if<Object::Tuple>(&o.variant());
  if (t == nullptr || t->items.size() != n) {
    throw ValueError(std::string("not enough values to unpack (expected ") + std::to_string(n) + ") in " +
                     what + ": " + o.repr());
  }
  return *t;
}

/// Python's `args` of a call: a tuple or list on the wire (its items, not a copy).
const Args& args_of(const Object& o) {
  if (const auto* t = std::get_if<Object::Tuple>(&o.variant())) return t->items;
  if (const auto* l = std::get_if<Object::List>(&o.variant())) return *l;
  o.type_mismatch("tuple");
}

/// Python's `kwds` of a call: a dict, or None for none (not a copy).
/// A str of a request, read in place.  \throws TypeError for another type.
const std::string& str_of(const Object& o) {
  if (const auto* text = std::get_if<std::string>(&o.variant())) return *text;
  o.type_mismatch("str");
}

const Kwds& kwds_of(const Object& o) {
  static const Kwds kNone;
  if (o.is_none()) return kNone;
  if (const auto* d = std::get_if<Object::Dict>(&o.variant())) return *d;
  o.type_mismatch("dict");
}

/// A reply (kind, result), its tuple built in place.
Object reply_of(const std::string& kind, Object result) {
  Object::Tuple reply;
  reply.items.reserve(2);
  reply.items.emplace_back(kind);
  reply.items.push_back(std::move(result));
  return Object(std::move(reply));
}

bool is_number(const Object& o) {
  const auto& v = o.variant();
  return std::holds_alternative<bool>(v) || std::holds_alternative<std::int64_t>(v) ||
         std::holds_alternative<double>(v);
}

double number_of(const Object& o) {
  const auto& v = o.variant();
  if (const bool* b = std::get_if<bool>(&v)) return *b ? 1 : 0;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}

/// Python's ==: 1 == 1.0 == True, unlike Object's ==.
bool py_eq(const Object& a, const Object& b) {
  // Two ints, the commonest keys of a managed dict, compared as ints: exact
  // beyond 2**53 (as Python's are), and without the conversions below.
  const auto* x = std::get_if<std::int64_t>(&a.variant());
  const auto* y = std::get_if<std::int64_t>(&b.variant());
  if (x != nullptr && y != nullptr) return *x == *y;
  if (is_number(a) && is_number(b)) return number_of(a) == number_of(b);
  return a == b;
}

/// A number's hash, from its value as a double.
std::size_t hash_number(double d) {
  if (d == 0) d = 0.0;  // -0.0 == 0.0
  std::uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  // splitmix64's finalizer spreads the double's bits over the low ones the
  // index's table uses (1.0, 2.0, 3.0 differ in high bits only).
  bits ^= bits >> 30;
  bits *= 0xbf58476d1ce4e5b9ULL;
  bits ^= bits >> 27;
  bits *= 0x94d049bb133111ebULL;
  bits ^= bits >> 31;
  return static_cast<std::size_t>(bits);
}

/// A hash consistent with py_eq: two keys py_eq calls equal hash alike.
/// A number hashes as its value converted to double (so 1, 1.0 and True
/// agree; 2**53 and 2**53 + 1 share a hash and py_eq tells them apart), a
/// str or bytes by its octets, a tuple by its items; any other key by its
/// type alone, left to py_eq.
std::size_t py_hash(const Object& o) {
  const auto& v = o.variant();
  if (const auto* i = std::get_if<std::int64_t>(&v)) return hash_number(static_cast<double>(*i));
  if (is_number(o)) return hash_number(number_of(o));
  if (const auto* s = std::get_if<std::string>(&v)) return std::hash<std::string>{}(*s);
  if (const auto* b = std::get_if<Bytes>(&v)) return std::hash<std::string>{}(b->data) ^ 0x9e3779b9U;
  if (const auto* t = std::get_if<Object::Tuple>(&v)) {
    std::size_t h = 0x345678U;
    for (const auto& item : t->items) h = (h ^ py_hash(item)) * 1000003U;
    return h;
  }
  return v.index();
}

/// Python's <, for list.sort(): numbers with numbers, str with str, bytes
/// with bytes, sequences item by item.  \throws TypeError for other pairs.
bool py_lt(const Object& a, const Object& b) {
  if (is_number(a) && is_number(b)) return number_of(a) < number_of(b);
  if (a.variant().index() == b.variant().index()) {
    if (const auto* s = std::get_if<std::string>(&a.variant())) return *s < std::get<std::string>(b.variant());
    if (const auto* s = std::get_if<Bytes>(&a.variant())) return s->data < std::get<Bytes>(b.variant()).data;
    const std::vector<Object>* x = nullptr;
    const std::vector<Object>* y = nullptr;
    if (const auto* l = std::get_if<Object::List>(&a.variant())) {
      x = l;
      y = &std::get<Object::List>(b.variant());
    } else if (const auto* t = std::get_if<Object::Tuple>(&a.variant())) {
      x = &t->items;
      y = &std::get<Object::Tuple>(b.variant()).items;
    }
    if (x != nullptr) {
      for (std::size_t i = 0; i < x->size() && i < y->size(); ++i) {
        if (!py_eq((*x)[i], (*y)[i])) return py_lt((*x)[i], (*y)[i]);
      }
      return x->size() < y->size();
    }
  }
  throw TypeError("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

/// A KeyError that carries its key, so that '\#ERROR' holds KeyError(key) as
/// Python's does (KeyError(5), not KeyError('5')).
class KeyErrorWithKey : public KeyError {
 public:
  explicit KeyErrorWithKey(Object key)
      : KeyError(std::holds_alternative<std::string>(key.variant()) ? std::get<std::string>(key.variant())
                                                                     : key.repr()),
        key_(std::move(key)) {}
  const Object& key() const { return key_; }

 private:
  Object key_;
};

/// Python: pickling an exception raised by a referent's method.
Object reduce_error(const std::exception& e) {
  if (const auto* k = dynamic_cast<const KeyErrorWithKey*>(&e)) {
    return Object::Reduced{{"builtins", "KeyError"}, {k->key()}};
  }
  return reduction::_reduce_exception(e);
}

void check_count(const std::string& name, const Args& args, std::size_t lo, std::size_t hi) {
  if (args.size() < lo || args.size() > hi) {
    throw TypeError(name + " expected " + (lo == hi ? std::to_string(lo) : "at most " + std::to_string(hi)) +
                    " argument" + (hi == 1 ? "" : "s") + ", got " + std::to_string(args.size()));
  }
}

std::string join_repr(const std::vector<std::string>& names) {
  std::string out = "(";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += py_repr(names[i]);
  }
  if (names.size() == 1) out += ",";
  return out + ")";
}

Object names_tuple(const std::vector<std::string>& names) {
  Object::Tuple t;
  for (const auto& n : names) t.items.emplace_back(n);
  return t;
}

std::vector<std::string> names_of(const Object& o) {
  std::vector<std::string> out;
  for (const auto& item : args_of(o)) out.push_back(item.as<std::string>());
  return out;
}

/// Normalize a Python index against `size`.  \throws IndexError(message).
std::size_t normalize_index(std::int64_t index, std::size_t size, const char* message) {
  std::int64_t n = static_cast<std::int64_t>(size);
  if (index < 0) index += n;
  if (index < 0 || index >= n) throw IndexError(message);
  return static_cast<std::size_t>(index);
}

/// Python's list(iterable) for what a container method accepts: a list, a
/// tuple, a set, a str (its characters), a dict (its keys).
Object::List items_of(const Object& o) {
  const auto& v = o.variant();
  if (const auto* l = std::get_if<Object::List>(&v)) return *l;
  if (const auto* t = std::get_if<Object::Tuple>(&v)) return t->items;
  if (const auto* s = std::get_if<Object::Set>(&v)) return s->items();
  if (const auto* s = std::get_if<Object::FrozenSet>(&v)) return s->items();
  if (const auto* d = std::get_if<Object::Dict>(&v)) {
    Object::List keys;
    for (const auto& [k, val] : *d) keys.push_back(k);
    return keys;
  }
  if (const auto* s = std::get_if<std::string>(&v)) {
    Object::List chars;
    for (char c : *s) chars.emplace_back(std::string(1, c));
    return chars;
  }
  throw TypeError("'" + o.type_name() + "' object is not iterable");
}

/// Python's binding of a call's arguments to parameters that may come by
/// position or by keyword (`def apply(func, args=(), kwds={})`): one Object
/// per name, None where the call gave none.  \throws TypeError for too many
/// arguments, an unknown keyword, one given twice, or fewer than `required`.
std::vector<Object> bind_params(const std::string& name, const Args& a, const Kwds& k,
                                const std::vector<std::string>& params, std::size_t required) {
  check_count(name, a, 0, params.size());
  std::vector<Object> bound(a.begin(), a.end());
  std::vector<bool> given(params.size(), false);
  for (std::size_t i = 0; i < a.size(); ++i) given[i] = true;
  bound.resize(params.size());
  for (const auto& [key, value] : k) {
    auto it = std::find(params.begin(), params.end(), key.as<std::string>());
    if (it == params.end()) {
      throw TypeError(name + "() got an unexpected keyword argument " + key.repr());
    }
    const std::size_t i = static_cast<std::size_t>(it - params.begin());
    if (given[i]) throw TypeError(name + "() got multiple values for argument " + key.repr());
    bound[i] = value;
    given[i] = true;
  }
  for (std::size_t i = 0; i < required; ++i) {
    if (!given[i]) throw TypeError(name + "() missing required argument: " + py_repr(params[i]));
  }
  return bound;
}

/// Python: listener_client[serializer]: only 'pickle' here (the xmlrpclib
/// serializer is not ported).  \throws ValueError for another.
void check_serializer(const std::string& serializer) {
  if (serializer != "pickle") {
    throw ValueError("serializer " + py_repr(serializer) + " is not supported by this port (only 'pickle')");
  }
}

}  // namespace

// ------------------------------------------------------------------ exceptions, protocol

RemoteError::RemoteError(const std::string& traceback)
    : Exception("\n" + std::string(75, '-') + "\n" + traceback + std::string(75, '-')), traceback_(traceback) {}

std::string format_exc(const std::exception& e, const std::string& where) {
  return "Traceback (most recent call last):\n  File \"<manager server>\", in " + where + "\n" +
         exception_type_name(e) + ": " + e.what() + "\n";
}

void raise_converted_error(const std::string& kind, const Object& result) {
  if (kind == "#ERROR") reduction::_raise_exception(result);
  if (kind == "#TRACEBACK" || kind == "#UNSERIALIZABLE") {
    const auto* text = std::get_if<std::string>(&result.variant());
    if (text == nullptr) {
      throw TypeError("Result " + result.repr() + " (kind '" + kind + "') type is " + result.type_name() +
                      ", not str");
    }
    if (kind == "#UNSERIALIZABLE") throw RemoteError("Unserializable message: " + *text + "\n");
    throw RemoteError(*text);
  }
  throw ValueError("Unrecognized message type " + py_repr(kind));
}

Object dispatch(connection::Connection& c, const Object& id, const std::string& methodname, const Args& args,
                const Kwds& kwds) {
  if (util::trace_enabled()) util::_trace("manager request: " + methodname);
  c.send(Object::Tuple{{id, methodname, Object::Tuple{args}, kwds}});
  Object received = c.recv();
  const Object::Tuple& reply = as_tuple(received, 2, "a manager's reply");
  std::string kind = reply.items[0].as<std::string>();
  if (util::trace_enabled()) util::_trace("manager reply: " + kind + " to " + methodname);
  if (kind == "#RETURN") return reply.items[1];
  raise_converted_error(kind, reply.items[1]);
}

// ------------------------------------------------------------------ Token, addresses

std::string Token::repr() const {
  return "Token(typeid=" + py_repr(typeid_) + ", address=" + connection::address_repr(address) +
         ", id=" + py_repr(id) + ")";
}

Object address_to_object(const Address& address) {
  if (const auto* path = std::get_if<std::string>(&address)) return *path;
  const auto& [host, port] = std::get<connection::InetAddress>(address);
  return Object::Tuple{{host, std::int64_t{port}}};
}

Address address_from_object(const Object& obj) {
  if (const auto* path = std::get_if<std::string>(&obj.variant())) return *path;
  const Object::List* items = nullptr;
  Object::List list;
  if (const auto* t = std::get_if<Object::Tuple>(&obj.variant())) {
    items = &t->items;
  } else if (const auto* l = std::get_if<Object::List>(&obj.variant())) {
    items = l;  // the xmlrpclib serializer turns tuples into lists
  }
  if (items == nullptr || items->size() != 2) throw TypeError("not an address: " + obj.repr());
  return connection::InetAddress{(*items)[0].as<std::string>(), (*items)[1].as<int>()};
}

}  // namespace multiprocessing::managers

namespace multiprocessing {

Object Convert<managers::Token>::to_object(const managers::Token& t) {
  return Object::Reduced{{"multiprocessing.managers", "Token"},
                         {},
                         /*newobj=*/true,
                         {Object::Tuple{{t.typeid_, managers::address_to_object(t.address), t.id}}}};
}

managers::Token Convert<managers::Token>::from_object(const Object& o) {
  const Object::Reduced* r = o.reduced();
  if (r == nullptr || r->callable != Object::Global{"multiprocessing.managers", "Token"} || r->state.size() != 1) {
    throw TypeError("expected a pickled Token, got " + o.repr());
  }
  // Python: Token.__setstate__((typeid, address, id)).
  const auto* t = std::get_if<Object::Tuple>(&r->state[0].variant());
  if (t == nullptr || t->items.size() != 3) throw TypeError("bad Token state: " + r->state[0].repr());
  return managers::Token{t->items[0].as<std::string>(), managers::address_from_object(t->items[1]),
                         t->items[2].as<std::string>()};
}

}  // namespace multiprocessing

namespace multiprocessing::managers {

// ------------------------------------------------------------------ referents

Object Referent::getvalue() const {
  throw PicklingError("cannot pickle '" + type_name() + "' object");
}

MethodsReferent& MethodsReferent::def(const std::string& name, Method method) {
  methods_[name] = std::move(method);
  return *this;
}

Object MethodsReferent::call(const std::string& methodname, const Args& args, const Kwds& kwds) {
  auto it = methods_.find(methodname);
  if (it == methods_.end()) {
    throw AttributeError("'" + type_name_ + "' object has no attribute " + py_repr(methodname));
  }
  return it->second(args, kwds);
}

std::vector<std::string> MethodsReferent::public_methods() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : methods_) {
    if (!name.empty() && name[0] != '_' && name[0] != '#') out.push_back(name);
  }
  return out;
}

std::string MethodsReferent::repr() const { return "<" + type_name_ + " object at 0x" + hex_id(this) + ">"; }

namespace {
struct ReferentBox {
  std::shared_ptr<Referent> referent;
};
}  // namespace

Object wrap_referent(std::shared_ptr<Referent> referent) {
  Object::Reduced r{{kModule, "_Referent"}, {}};
  std::string type = referent->type_name();
  r.local = std::make_shared<ReferentBox>(ReferentBox{std::move(referent)});
  r.reduce = [type]() -> Object { throw PicklingError("cannot pickle " + py_repr(type) + " object"); };
  return r;
}

std::shared_ptr<Referent> unwrap_referent(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  if (r == nullptr || r->callable != Object::Global{kModule, "_Referent"} || !r->local) return nullptr;
  return static_cast<const ReferentBox*>(r->local.get())->referent;
}

namespace referents {

/// Python: an iterator object in the server (the Iterator typeid): a dict's
/// __iter__ gives one over a snapshot of its keys.
class IteratorReferent : public MethodsReferent {
 public:
  explicit IteratorReferent(Object::List items) : MethodsReferent("dict_keyiterator"), items_(std::move(items)) {
    def("__next__", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      if (next_ >= items_.size()) throw StopIteration("");
      return items_[next_++];
    });
    def("close", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      next_ = items_.size();
      return Object();
    });
  }

 private:
  std::mutex mutex_;
  Object::List items_;
  std::size_t next_ = 0;
};

/// What the dict and list referents share: their items under one mutex
/// (Python's GIL: one method at a time), printed and copied as a value.
template <class Items>
class ContainerReferent : public MethodsReferent {
 public:
  /// `wrappers`: the methods that are slot wrappers in Python (their errors
  /// say "wrapper __len__()"); `keyword_methods`: the only ones that take
  /// keyword arguments.
  ContainerReferent(std::string type_name, Items items, std::vector<std::string> wrappers,
                    std::vector<std::string> keyword_methods)
      : MethodsReferent(std::move(type_name)), items_(std::move(items)), wrappers_(std::move(wrappers)),
        keyword_methods_(std::move(keyword_methods)) {
    def("__len__", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return Object(static_cast<std::int64_t>(items_.size()));
    });
  }
  /// Python: getattr(obj, methodname)(*args, **kwds) on a builtin dict or
  /// list: keyword arguments to a method that takes none are a TypeError
  /// before anything else is checked, as CPython's server reports it.
  Object call(const std::string& methodname, const Args& args, const Kwds& kwds) override {
    if (!kwds.empty() && !contains(keyword_methods_, methodname) && has_method(methodname)) {
      std::string callee = contains(wrappers_, methodname) ? "wrapper " + methodname : type_name() + "." + methodname;
      throw TypeError(callee + "() takes no keyword arguments");
    }
    return MethodsReferent::call(methodname, args, kwds);
  }
  std::string repr() const override {
    std::lock_guard guard(mutex_);
    settle();
    return Object(items_).repr();
  }
  Object getvalue() const override {
    std::lock_guard guard(mutex_);
    settle();
    return items_;
  }

 protected:
  /// Brings items_ to the plain value it stands for, before it is read
  /// whole (the dict drops the places of its deleted items here); called
  /// with mutex_ held.
  virtual void settle() const {}
  mutable std::mutex mutex_;
  /// Mutable for settle(), which changes how the value is stored, not the value.
  mutable Items items_;

 private:
  static bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  }
  std::vector<std::string> wrappers_;
  std::vector<std::string> keyword_methods_;
};

/// Python: builtins.dict in the server (the dict typeid).
class DictReferent : public ContainerReferent<Object::Dict> {
 public:
  DictReferent()
      : ContainerReferent("dict", {}, {"__delitem__", "__iter__", "__len__", "__setitem__"}, {"update"}) {
    def("__getitem__", [this](const Args& a, const Kwds&) {
      check_count("__getitem__", a, 1, 1);
      std::lock_guard guard(mutex_);
      return at(a[0]);
    });
    def("__setitem__", [this](const Args& a, const Kwds&) {
      check_count("__setitem__", a, 2, 2);
      std::lock_guard guard(mutex_);
      set(a[0], a[1]);
      return Object();
    });
    def("__delitem__", [this](const Args& a, const Kwds&) {
      check_count("__delitem__", a, 1, 1);
      std::lock_guard guard(mutex_);
      erase(position(a[0]));
      return Object();
    });
    def("__len__", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return Object(static_cast<std::int64_t>(items_.size() - removed_count_));
    });
    def("__contains__", [this](const Args& a, const Kwds&) {
      check_count("__contains__", a, 1, 1);
      std::lock_guard guard(mutex_);
      return Object(find(a[0]) != nullptr);
    });
    def("__iter__", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      settle();
      Object::List keys;
      for (const auto& [k, v] : items_) keys.push_back(k);
      return wrap_referent(std::make_shared<IteratorReferent>(std::move(keys)));
    });
    def("get", [this](const Args& a, const Kwds&) {
      check_count("get", a, 1, 2);
      std::lock_guard guard(mutex_);
      const Object* v = find(a[0]);
      return v ? *v : (a.size() > 1 ? a[1] : Object());
    });
    def("keys", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      settle();
      Object::List out;
      for (const auto& [k, v] : items_) out.push_back(k);
      return Object(std::move(out));
    });
    def("values", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      settle();
      Object::List out;
      for (const auto& [k, v] : items_) out.push_back(v);
      return Object(std::move(out));
    });
    def("items", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      settle();
      Object::List out;
      for (const auto& [k, v] : items_) out.emplace_back(Object::Tuple{{k, v}});
      return Object(std::move(out));
    });
    def("update", [this](const Args& a, const Kwds& k) {
      check_count("update", a, 0, 1);
      std::lock_guard guard(mutex_);
      if (!a.empty()) update(a[0]);
      for (const auto& [key, value] : k) set(key, value);
      return Object();
    });
    def("pop", [this](const Args& a, const Kwds&) {
      check_count("pop", a, 1, 2);
      std::lock_guard guard(mutex_);
      std::size_t i = lookup(a[0], py_hash(a[0]));
      if (i == kMissing) {
        if (a.size() > 1) return a[1];
        throw KeyErrorWithKey(a[0]);
      }
      Object v = std::move(items_[i].second);
      erase(i);
      return v;
    });
    def("popitem", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      drop_removed_tail();
      if (items_.empty()) throw KeyError("popitem(): dictionary is empty");
      auto [k, v] = std::move(items_.back());
      unindex(items_.size() - 1);
      items_.pop_back();
      hashes_.pop_back();
      removed_.pop_back();
      return Object(Object::Tuple{{std::move(k), std::move(v)}});
    });
    def("setdefault", [this](const Args& a, const Kwds&) {
      check_count("setdefault", a, 1, 2);
      std::lock_guard guard(mutex_);
      std::size_t h = py_hash(a[0]);
      if (std::size_t i = lookup(a[0], h); i != kMissing) return items_[i].second;
      Object d = a.size() > 1 ? a[1] : Object();
      append(a[0], d, h);
      return d;
    });
    def("clear", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      items_.clear();
      hashes_.clear();
      removed_.clear();
      removed_count_ = 0;
      slots_.clear();
      used_slots_ = 0;
      return Object();
    });
    def("copy", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      settle();
      return Object(items_);
    });
  }
  /// Python: dict(mapping_or_pairs, **kwds).
  void init(const Args& args, const Kwds& kwds) {
    check_count("dict", args, 0, 1);
    if (!args.empty()) update(args[0]);
    for (const auto& [key, value] : kwds) set(key, value);
  }
 private:
  static constexpr std::size_t kMissing = static_cast<std::size_t>(-1);
  static constexpr std::uint32_t kFree = static_cast<std::uint32_t>(-1);
  /// A slot whose item was removed: a lookup goes on past it.
  static constexpr std::uint32_t kRemoved = static_cast<std::uint32_t>(-2);

  /// items_'s position of the key py_eq calls equal to `key` (its hash
  /// `h`), or kMissing.
  std::size_t lookup(const Object& key, std::size_t h) const {
    if (slots_.empty()) return kMissing;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t s = h & mask;; s = (s + 1) & mask) {
      std::uint32_t i = slots_[s];
      if (i == kFree) return kMissing;
      if (i != kRemoved && hashes_[i] == h && py_eq(items_[i].first, key)) return i;
    }
  }
  const Object* find(const Object& key) const {
    std::size_t i = lookup(key, py_hash(key));
    return i == kMissing ? nullptr : &items_[i].second;
  }
  std::size_t position(const Object& key) const {
    std::size_t i = lookup(key, py_hash(key));
    if (i == kMissing) throw KeyErrorWithKey(key);
    return i;
  }
  Object at(const Object& key) const {
    if (const Object* v = find(key)) return *v;
    throw KeyErrorWithKey(key);
  }
  void set(const Object& key, const Object& value) {
    std::size_t h = py_hash(key);
    if (std::size_t i = lookup(key, h); i != kMissing) {
      items_[i].second = value;
      return;
    }
    append(key, value, h);
  }
  /// A new key at the end (Python's insertion order), entered in the index.
  void append(const Object& key, const Object& value, std::size_t h) {
    items_.emplace_back(key, value);
    hashes_.push_back(h);
    removed_.push_back(false);
    if (2 * (used_slots_ + 1) > slots_.size()) {
      reindex();
    } else {
      place(items_.size() - 1);
    }
  }
  /// Removes items_[i] as Python's dict does, in constant time: its key and
  /// value are released and its place stays behind, marked removed (so the
  /// later items keep their positions and the index stays right); the places
  /// are dropped together once they outnumber the items left, or before the
  /// items are read whole (settle): amortised constant time per removal.
  void erase(std::size_t i) {
    unindex(i);
    items_[i] = {Object(), Object()};
    removed_[i] = true;
    ++removed_count_;
    if (2 * removed_count_ > items_.size()) settle();
  }
  /// items_[i]'s slot in the index marked kRemoved.
  void unindex(std::size_t i) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t s = hashes_[i] & mask;
    while (slots_[s] != i) s = (s + 1) & mask;
    slots_[s] = kRemoved;
  }
  /// The removed places at the end dropped (popitem takes the last item left).
  void drop_removed_tail() {
    while (!items_.empty() && removed_.back()) {
      items_.pop_back();
      hashes_.pop_back();
      removed_.pop_back();
      --removed_count_;
    }
  }
  /// The removed places dropped, the items left in their order, the index rebuilt.
  void settle() const override {
    if (removed_count_ == 0) return;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < items_.size(); ++i) {
      if (removed_[i]) continue;
      if (kept != i) {
        items_[kept] = std::move(items_[i]);
        hashes_[kept] = hashes_[i];
      }
      ++kept;
    }
    items_.resize(kept);
    hashes_.resize(kept);
    removed_.assign(kept, false);
    removed_count_ = 0;
    reindex();
  }
  /// The index rebuilt for items_'s items (not the removed places): a
  /// power-of-two table at most half full.
  void reindex() const {
    std::size_t size = 8;
    while (size < 2 * (items_.size() - removed_count_)) size *= 2;
    slots_.assign(size, kFree);
    used_slots_ = 0;
    for (std::size_t i = 0; i < items_.size(); ++i) {
      if (!removed_[i]) place(i);
    }
  }
  void place(std::size_t i) const {
    const std::size_t mask = slots_.size() - 1;
    std::size_t s = hashes_[i] & mask;
    while (slots_[s] != kFree) s = (s + 1) & mask;
    slots_[s] = static_cast<std::uint32_t>(i);
    ++used_slots_;
  }
  void update(const Object& other) {
    if (const auto* d = std::get_if<Object::Dict>(&other.variant())) {
      for (const auto& [k, v] : *d) set(k, v);
      return;
    }
    for (const auto& pair : items_of(other)) {
      Object::List kv = items_of(pair);
      if (kv.size() != 2) {
        throw ValueError("dictionary update sequence element has length " + std::to_string(kv.size()) +
                         "; 2 is required");
      }
      set(kv[0], kv[1]);
    }
  }

  /// The hash index of items_'s keys: hashes_[i] is py_hash(items_[i].first);
  /// slots_ holds positions in items_ (open addressing, kFree for none,
  /// kRemoved for a removed item's).  removed_[i]: items_[i] is a removed
  /// item's place (removed_count_ of them).  Mutable for settle().
  mutable std::vector<std::size_t> hashes_;
  mutable std::vector<std::uint32_t> slots_;
  mutable std::vector<bool> removed_;
  mutable std::size_t removed_count_ = 0;
  /// Slots not kFree (items' and kRemoved): kept at most half the table, so
  /// that every probe meets a kFree slot.
  mutable std::size_t used_slots_ = 0;
};

/// Python: builtins.list in the server (the list typeid).
class ListReferent : public ContainerReferent<Object::List> {
 public:
  explicit ListReferent(Object::List items)
      : ContainerReferent("list", std::move(items),
                          {"__add__", "__contains__", "__delitem__", "__imul__", "__len__", "__mul__", "__rmul__",
                           "__setitem__"},
                          {"sort"}) {
    def("__getitem__", [this](const Args& a, const Kwds&) {
      check_count("__getitem__", a, 1, 1);
      std::lock_guard guard(mutex_);
      if (const Object::Reduced* r = a[0].reduced(); r && r->callable == Object::Global{"builtins", "slice"}) {
        return Object(slice(*r));
      }
      return items_[normalize_index(a[0].as<std::int64_t>(), items_.size(), "list index out of range")];
    });
    def("__setitem__", [this](const Args& a, const Kwds&) {
      check_count("__setitem__", a, 2, 2);
      std::lock_guard guard(mutex_);
      items_[normalize_index(a[0].as<std::int64_t>(), items_.size(), "list assignment index out of range")] = a[1];
      return Object();
    });
    def("__delitem__", [this](const Args& a, const Kwds&) {
      check_count("__delitem__", a, 1, 1);
      std::lock_guard guard(mutex_);
      std::size_t i = normalize_index(a[0].as<std::int64_t>(), items_.size(), "list assignment index out of range");
      items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
      return Object();
    });
    def("__contains__", [this](const Args& a, const Kwds&) {
      check_count("__contains__", a, 1, 1);
      std::lock_guard guard(mutex_);
      return Object(index_of(a[0]).has_value());
    });
    def("__add__", [this](const Args& a, const Kwds&) {
      check_count("__add__", a, 1, 1);
      std::lock_guard guard(mutex_);
      Object::List out = items_;
      const auto* other = std::get_if<Object::List>(&a[0].variant());
      if (other == nullptr) {
        throw TypeError("can only concatenate list (not \"" + a[0].type_name() + "\") to list");
      }
      out.insert(out.end(), other->begin(), other->end());
      return Object(std::move(out));
    });
    auto mul = [this](const Args& a, const Kwds&) {
      check_count("__mul__", a, 1, 1);
      std::lock_guard guard(mutex_);
      return Object(repeated(a[0].as<std::int64_t>()));
    };
    def("__mul__", mul);
    def("__rmul__", mul);
    def("__imul__", [this](const Args& a, const Kwds&) {
      check_count("__imul__", a, 1, 1);
      std::lock_guard guard(mutex_);
      items_ = repeated(a[0].as<std::int64_t>());
      return Object(items_);  // Python's list.__imul__ returns the list itself
    });
    def("__reversed__", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return wrap_referent(std::make_shared<IteratorReferent>(Object::List(items_.rbegin(), items_.rend())));
    });
    def("append", [this](const Args& a, const Kwds&) {
      check_count("append", a, 1, 1);
      std::lock_guard guard(mutex_);
      items_.push_back(a[0]);
      return Object();
    });
    def("extend", [this](const Args& a, const Kwds&) {
      check_count("extend", a, 1, 1);
      Object::List more = items_of(a[0]);
      std::lock_guard guard(mutex_);
      items_.insert(items_.end(), more.begin(), more.end());
      return Object();
    });
    def("index", [this](const Args& a, const Kwds&) {
      check_count("index", a, 1, 1);
      std::lock_guard guard(mutex_);
      auto i = index_of(a[0]);
      if (!i) throw ValueError(a[0].repr() + " is not in list");
      return Object(static_cast<std::int64_t>(*i));
    });
    def("count", [this](const Args& a, const Kwds&) {
      check_count("count", a, 1, 1);
      std::lock_guard guard(mutex_);
      std::int64_t n = 0;
      for (const auto& item : items_) n += py_eq(item, a[0]) ? 1 : 0;
      return Object(n);
    });
    def("insert", [this](const Args& a, const Kwds&) {
      check_count("insert", a, 2, 2);
      std::lock_guard guard(mutex_);
      auto size = static_cast<std::int64_t>(items_.size());
      std::int64_t i = a[0].as<std::int64_t>();
      if (i < 0) i = std::max<std::int64_t>(0, i + size);
      i = std::min(i, size);
      items_.insert(items_.begin() + i, a[1]);
      return Object();
    });
    def("remove", [this](const Args& a, const Kwds&) {
      check_count("remove", a, 1, 1);
      std::lock_guard guard(mutex_);
      auto i = index_of(a[0]);
      if (!i) throw ValueError("list.remove(x): x not in list");
      items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(*i));
      return Object();
    });
    def("pop", [this](const Args& a, const Kwds&) {
      check_count("pop", a, 0, 1);
      std::lock_guard guard(mutex_);
      if (items_.empty()) throw IndexError("pop from empty list");
      std::size_t i = normalize_index(a.empty() ? -1 : a[0].as<std::int64_t>(), items_.size(), "pop index out of range");
      Object v = items_[i];
      items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
      return v;
    });
    def("reverse", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      std::reverse(items_.begin(), items_.end());
      return Object();
    });
    def("sort", [this](const Args& a, const Kwds& k) {
      check_count("sort", a, 0, 0);
      bool reverse = false;
      for (const auto& [key, value] : k) {
        if (key == Object("reverse")) {
          reverse = value.as<bool>();
        } else if (key == Object("key") && value.is_none()) {
        } else {
          throw TypeError(key.repr() + " is an invalid keyword argument for sort() (a key function cannot "
                          "reach a C++ manager)");
        }
      }
      std::lock_guard guard(mutex_);
      Object::List sorted = items_;  // sorted aside: a TypeError leaves the list as it was
      std::stable_sort(sorted.begin(), sorted.end(),
                       [reverse](const Object& x, const Object& y) { return reverse ? py_lt(y, x) : py_lt(x, y); });
      items_ = std::move(sorted);
      return Object();
    });
  }
 private:
  std::optional<std::size_t> index_of(const Object& value) const {
    for (std::size_t i = 0; i < items_.size(); ++i) {
      if (py_eq(items_[i], value)) return i;
    }
    return std::nullopt;
  }
  Object::List repeated(std::int64_t n) const {
    Object::List out;
    for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), items_.begin(), items_.end());
    return out;
  }
  /// Python: list[slice(start, stop, step)].
  Object::List slice(const Object::Reduced& s) const {
    auto size = static_cast<std::int64_t>(items_.size());
    auto arg = [&s](std::size_t i) -> std::optional<std::int64_t> {
      if (i >= s.args.size() || s.args[i].is_none()) return std::nullopt;
      return s.args[i].as<std::int64_t>();
    };
    std::int64_t step = arg(2).value_or(1);
    if (step == 0) throw ValueError("slice step cannot be zero");
    auto clamp = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
      if (!v) return dflt;
      std::int64_t x = *v < 0 ? *v + size : *v;
      return step > 0 ? std::clamp<std::int64_t>(x, 0, size) : std::clamp<std::int64_t>(x, -1, size - 1);
    };
    std::int64_t start = clamp(arg(0), step > 0 ? 0 : size - 1);
    std::int64_t stop = clamp(arg(1), step > 0 ? size : -1);
    Object::List out;
    for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(items_[static_cast<std::size_t>(i)]);
    return out;
  }

};

/// Python: managers.Value(typecode, value, lock=True) in the server.
class ValueReferent : public MethodsReferent {
 public:
  ValueReferent(std::string typecode, Object value)
      : MethodsReferent("Value"), typecode_(std::move(typecode)), value_(std::move(value)) {
    def("get", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return value_;
    });
    def("set", [this](const Args& a, const Kwds&) {
      check_count("set", a, 1, 1);
      std::lock_guard guard(mutex_);
      value_ = a[0];
      return Object();
    });
  }
  std::string repr() const override {
    std::lock_guard guard(mutex_);
    return "Value(" + py_repr(typecode_) + ", " + value_.repr() + ")";
  }

 private:
  mutable std::mutex mutex_;
  std::string typecode_;
  Object value_;
};

/// Python: managers.Namespace(**kwds) in the server.
class NamespaceReferent : public MethodsReferent {
 public:
  explicit NamespaceReferent(Kwds attrs) : MethodsReferent("Namespace"), attrs_(std::move(attrs)) {
    def("__getattribute__", [this](const Args& a, const Kwds&) {
      check_count("__getattribute__", a, 1, 1);
      std::lock_guard guard(mutex_);
      for (const auto& [k, v] : attrs_) {
        if (k == a[0]) return v;
      }
      throw AttributeError("'Namespace' object has no attribute " + a[0].repr());
    });
    def("__setattr__", [this](const Args& a, const Kwds&) {
      check_count("__setattr__", a, 2, 2);
      std::lock_guard guard(mutex_);
      for (auto& [k, v] : attrs_) {
        if (k == a[0]) {
          v = a[1];
          return Object();
        }
      }
      attrs_.emplace_back(a[0], a[1]);
      return Object();
    });
    def("__delattr__", [this](const Args& a, const Kwds&) {
      check_count("__delattr__", a, 1, 1);
      std::lock_guard guard(mutex_);
      for (auto it = attrs_.begin(); it != attrs_.end(); ++it) {
        if (it->first == a[0]) {
          attrs_.erase(it);
          return Object();
        }
      }
      throw AttributeError("'Namespace' object has no attribute " + a[0].repr());
    });
  }
  std::string repr() const override {
    std::lock_guard guard(mutex_);
    return namespace_repr(attrs_);
  }

 private:
  mutable std::mutex mutex_;
  Kwds attrs_;
};

/// Python: threading.Lock / threading.RLock in the server.  The owner of an
/// RLock is the server thread that serves the caller's connection, as in
/// Python (one per client thread).
class LockReferent : public MethodsReferent {
 public:
  explicit LockReferent(bool recursive) : MethodsReferent(recursive ? "RLock" : "lock"), recursive_(recursive) {
    def("acquire", [this](const Args& a, const Kwds& k) {
      check_count("acquire", a, 0, 2);
      bool blocking = a.empty() ? true : a[0].as<bool>();
      std::optional<double> timeout;
      if (a.size() > 1 && !a[1].is_none() && a[1].as<double>() >= 0) timeout = a[1].as<double>();
      for (const auto& [key, value] : k) {
        if (key == Object("blocking")) blocking = value.as<bool>();
        if (key == Object("timeout") && !value.is_none() && value.as<double>() >= 0) timeout = value.as<double>();
      }
      return Object(acquire(blocking, timeout));
    });
    def("release", [this](const Args&, const Kwds&) {
      release();
      return Object();
    });
  }
  bool acquire(bool blocking, std::optional<double> timeout) {
    std::unique_lock guard(mutex_);
    auto me = std::this_thread::get_id();
    if (recursive_ && count_ > 0 && owner_ == me) {
      ++count_;
      return true;
    }
    auto free = [this] { return count_ == 0; };
    if (!blocking) {
      if (!free()) return false;
    } else if (timeout) {
      if (!cond_.wait_for(guard, std::chrono::duration<double>(*timeout), free)) return false;
    } else {
      cond_.wait(guard, free);
    }
    count_ = 1;
    owner_ = me;
    return true;
  }
  void release() {
    std::lock_guard guard(mutex_);
    if (recursive_) {
      if (count_ == 0 || owner_ != std::this_thread::get_id()) throw RuntimeError("cannot release un-acquired lock");
    } else if (count_ == 0) {
      throw RuntimeError("release unlocked lock");
    }
    if (--count_ == 0) cond_.notify_one();
  }
  std::string repr() const override {
    std::lock_guard guard(mutex_);
    if (recursive_) {
      return std::string("<") + (count_ ? "locked" : "unlocked") + " _thread.RLock object owner=0 count=" +
             std::to_string(count_) + " at 0x" + hex_id(this) + ">";
    }
    return std::string("<") + (count_ ? "locked" : "unlocked") + " _thread.lock object at 0x" + hex_id(this) + ">";
  }

 private:
  bool recursive_;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  int count_ = 0;
  std::thread::id owner_;
};

/// Python: threading.Semaphore / threading.BoundedSemaphore in the server.
class SemaphoreReferent : public MethodsReferent {
 public:
  SemaphoreReferent(std::int64_t value, bool bounded)
      : MethodsReferent(bounded ? "BoundedSemaphore" : "Semaphore"), value_(value), initial_(value), bounded_(bounded) {
    if (value < 0) throw ValueError("semaphore initial value must be >= 0");
    def("acquire", [this](const Args& a, const Kwds&) {
      check_count("acquire", a, 0, 2);
      bool blocking = a.empty() ? true : a[0].as<bool>();
      std::unique_lock guard(mutex_);
      auto ready = [this] { return value_ > 0; };
      if (!blocking) {
        if (!ready()) return Object(false);
      } else if (a.size() > 1 && !a[1].is_none()) {
        if (!cond_.wait_for(guard, std::chrono::duration<double>(std::max(0.0, a[1].as<double>())), ready)) {
          return Object(false);
        }
      } else {
        cond_.wait(guard, ready);
      }
      --value_;
      return Object(true);
    });
    def("release", [this](const Args& a, const Kwds&) {
      check_count("release", a, 0, 1);
      std::int64_t n = a.empty() ? 1 : a[0].as<std::int64_t>();
      if (n < 1) throw ValueError("n must be one or more");
      std::lock_guard guard(mutex_);
      if (bounded_ && value_ + n > initial_) throw ValueError("Semaphore released too many times");
      value_ += n;
      cond_.notify_all();
      return Object();
    });
  }
  std::string repr() const override {
    std::lock_guard guard(mutex_);
    return "<threading." + type_name() + " at 0x" + hex_id(this) + ": value=" + std::to_string(value_) + ">";
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::int64_t value_;
  std::int64_t initial_;
  bool bounded_;
};

/// Python: queue.Queue(maxsize=0) in the server (the Queue and JoinableQueue
/// typeids): put/get with block and timeout, task_done/join.
class QueueReferent : public MethodsReferent {
 public:
  explicit QueueReferent(std::int64_t maxsize) : MethodsReferent("Queue"), maxsize_(maxsize) {
    def("put", [this](const Args& a, const Kwds& k) {
      check_count("put", a, 1, 3);
      auto [block, timeout] = block_and_timeout(a, k);
      put(a[0], block, timeout);
      return Object();
    });
    def("put_nowait", [this](const Args& a, const Kwds&) {
      check_count("put_nowait", a, 1, 1);
      put(a[0], false, std::nullopt);
      return Object();
    });
    def("get", [this](const Args& a, const Kwds& k) {
      check_count("get", a, 0, 2);
      Args shifted{Object()};  // block_and_timeout reads a[1], a[2] as put's
      shifted.insert(shifted.end(), a.begin(), a.end());
      auto [block, timeout] = block_and_timeout(shifted, k);
      return get(block, timeout);
    });
    def("get_nowait", [this](const Args&, const Kwds&) { return get(false, std::nullopt); });
    def("qsize", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return Object(static_cast<std::int64_t>(items_.size()));
    });
    def("empty", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return Object(items_.empty());
    });
    def("full", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return Object(maxsize_ > 0 && static_cast<std::int64_t>(items_.size()) >= maxsize_);
    });
    def("task_done", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      if (unfinished_ <= 0) throw ValueError("task_done() called too many times");
      if (--unfinished_ == 0) changed_.notify_all();
      return Object();
    });
    def("join", [this](const Args&, const Kwds&) {
      std::unique_lock guard(mutex_);
      changed_.wait(guard, [this] { return unfinished_ == 0; });
      return Object();
    });
  }
  std::string repr() const override { return "<queue.Queue object at 0x" + hex_id(this) + ">"; }

 private:
  static std::pair<bool, std::optional<double>> block_and_timeout(const Args& a, const Kwds& k) {
    bool block = a.size() > 1 ? a[1].as<bool>() : true;
    std::optional<double> timeout;
    if (a.size() > 2 && !a[2].is_none()) timeout = a[2].as<double>();
    for (const auto& [key, value] : k) {
      if (key == Object("block")) block = value.as<bool>();
      if (key == Object("timeout") && !value.is_none()) timeout = value.as<double>();
    }
    if (timeout && *timeout < 0) throw ValueError("'timeout' must be a non-negative number");
    return {block, timeout};
  }
  void put(const Object& item, bool block, std::optional<double> timeout) {
    std::unique_lock guard(mutex_);
    auto room = [this] { return maxsize_ <= 0 || static_cast<std::int64_t>(items_.size()) < maxsize_; };
    if (!block || (timeout && *timeout == 0)) {
      if (!room()) throw queues::Full("");
    } else if (timeout) {
      if (!changed_.wait_for(guard, std::chrono::duration<double>(*timeout), room)) throw queues::Full("");
    } else {
      changed_.wait(guard, room);
    }
    items_.push_back(item);
    ++unfinished_;
    changed_.notify_all();
  }
  Object get(bool block, std::optional<double> timeout) {
    std::unique_lock guard(mutex_);
    auto some = [this] { return !items_.empty(); };
    if (!block || (timeout && *timeout == 0)) {
      if (!some()) throw queues::Empty("");
    } else if (timeout) {
      if (!changed_.wait_for(guard, std::chrono::duration<double>(*timeout), some)) throw queues::Empty("");
    } else {
      changed_.wait(guard, some);
    }
    Object item = std::move(items_.front());
    items_.pop_front();
    changed_.notify_all();
    return item;
  }

  std::mutex mutex_;
  std::condition_variable changed_;  // Python's not_empty, not_full and all_tasks_done in one
  std::deque<Object> items_;
  std::int64_t maxsize_;
  std::int64_t unfinished_ = 0;
};

/// Python: threading.Event in the server.
class EventReferent : public MethodsReferent {
 public:
  EventReferent() : MethodsReferent("Event") {
    def("is_set", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return Object(flag_);
    });
    def("set", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      flag_ = true;
      cond_.notify_all();
      return Object();
    });
    def("clear", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      flag_ = false;
      return Object();
    });
    def("wait", [this](const Args& a, const Kwds&) {
      check_count("wait", a, 0, 1);
      std::unique_lock guard(mutex_);
      if (a.empty() || a[0].is_none()) {
        cond_.wait(guard, [this] { return flag_; });
        return Object(true);
      }
      return Object(cond_.wait_for(guard, std::chrono::duration<double>(std::max(0.0, a[0].as<double>())),
                                   [this] { return flag_; }));
    });
  }
  std::string repr() const override {
    std::lock_guard guard(mutex_);
    return std::string("<threading.Event at 0x") + hex_id(this) + ": " + (flag_ ? "set" : "unset") + ">";
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  bool flag_ = false;
};

/// Python: threading.Condition() in the server (the Condition typeid): a
/// dummy::Condition over an RLock of its own.  As for an RLock, the owner is
/// the server thread that serves the caller's connection (one per client
/// thread), so acquire, wait and release from one client thread agree.
class ConditionReferent : public MethodsReferent {
 public:
  ConditionReferent() : MethodsReferent("Condition") {
    def("acquire", [this](const Args& a, const Kwds&) {
      check_count("acquire", a, 0, 2);
      bool blocking = a.empty() ? true : a[0].as<bool>();
      double timeout = (a.size() > 1 && !a[1].is_none()) ? a[1].as<double>() : -1;
      return Object(cond_.acquire(blocking, timeout));
    });
    def("release", [this](const Args&, const Kwds&) {
      cond_.release();
      return Object();
    });
    def("wait", [this](const Args& a, const Kwds&) {
      check_count("wait", a, 0, 1);
      std::optional<double> timeout;
      if (!a.empty() && !a[0].is_none()) timeout = std::max(0.0, a[0].as<double>());
      return Object(cond_.wait(timeout));
    });
    def("notify", [this](const Args& a, const Kwds&) {
      check_count("notify", a, 0, 1);
      std::int64_t n = a.empty() ? 1 : a[0].as<std::int64_t>();
      cond_.notify(static_cast<std::size_t>(std::max<std::int64_t>(0, n)));
      return Object();
    });
    def("notify_all", [this](const Args&, const Kwds&) {
      cond_.notify_all();
      return Object();
    });
  }
  std::string repr() const override { return "<Condition(<_thread.RLock object at 0x" + hex_id(this) + ">, 0)>"; }

 private:
  dummy::Condition cond_;
};

/// Python: threading.Barrier(parties, action=None, timeout=None) in the server
/// (the Barrier typeid): a dummy::Barrier.  parties, n_waiting and broken are
/// read through '__getattribute__', as BarrierProxy's properties do.
class BarrierReferent : public MethodsReferent {
 public:
  BarrierReferent(int parties, std::optional<double> timeout) : MethodsReferent("Barrier"), barrier_(parties, {}, timeout) {
    def("wait", [this](const Args& a, const Kwds&) {
      check_count("wait", a, 0, 1);
      std::optional<double> timeout;
      if (!a.empty() && !a[0].is_none()) timeout = a[0].as<double>();
      return Object(static_cast<std::int64_t>(barrier_.wait(timeout)));
    });
    def("abort", [this](const Args&, const Kwds&) {
      barrier_.abort();
      return Object();
    });
    def("reset", [this](const Args&, const Kwds&) {
      barrier_.reset();
      return Object();
    });
    def("__getattribute__", [this](const Args& a, const Kwds&) {
      check_count("__getattribute__", a, 1, 1);
      const std::string name = a[0].as<std::string>();
      if (name == "parties") return Object(static_cast<std::int64_t>(barrier_.parties()));
      if (name == "n_waiting") return Object(static_cast<std::int64_t>(barrier_.n_waiting()));
      if (name == "broken") return Object(barrier_.broken());
      throw AttributeError("'Barrier' object has no attribute " + py_repr(name));
    });
  }
  std::string repr() const override { return barrier_.repr(); }

 private:
  dummy::Barrier barrier_;
};

/// Python: managers.Array(typecode, sequence, lock=True), which is
/// array.array(typecode, sequence), in the server (the Array typeid).  The
/// items are kept as Objects of the typecode's kind: an int for the integer
/// codes (a float is refused, as array.array refuses it), a float for 'f'
/// and 'd', a one-character str for 'u'.
class ArrayReferent : public MethodsReferent {
 public:
  ArrayReferent(std::string typecode, const Object::List& sequence)
      : MethodsReferent("array"), typecode_(std::move(typecode)) {
    if (typecode_.size() != 1 || std::string("bBuhHiIlLqQfd").find(typecode_[0]) == std::string::npos) {
      throw ValueError("bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
    }
    for (const Object& item : sequence) items_.push_back(coerce(item));
    def("__len__", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      return Object(static_cast<std::int64_t>(items_.size()));
    });
    def("__getitem__", [this](const Args& a, const Kwds&) {
      check_count("__getitem__", a, 1, 1);
      std::lock_guard guard(mutex_);
      return items_[normalize_index(a[0].as<std::int64_t>(), items_.size(), "array index out of range")];
    });
    def("__setitem__", [this](const Args& a, const Kwds&) {
      check_count("__setitem__", a, 2, 2);
      Object value = coerce(a[1]);
      std::lock_guard guard(mutex_);
      items_[normalize_index(a[0].as<std::int64_t>(), items_.size(), "array assignment index out of range")] = value;
      return Object();
    });
  }
  std::string repr() const override {
    std::lock_guard guard(mutex_);
    std::string text = "array(" + py_repr(typecode_);
    if (!items_.empty()) {
      text += ", [";
      for (std::size_t i = 0; i < items_.size(); ++i) text += (i ? ", " : "") + items_[i].repr();
      text += "]";
    }
    return text + ")";
  }

 private:
  Object coerce(const Object& item) const {
    const char code = typecode_[0];
    if (code == 'f' || code == 'd') return Object(item.as<double>());
    if (code == 'u') {
      auto text = item.as<std::string>();
      if (text.empty()) throw TypeError("array item must be unicode character");
      return Object(text);
    }
    if (std::get_if<double>(&item.variant()) != nullptr) throw TypeError("'float' object cannot be interpreted as an integer");
    return Object(item.as<std::int64_t>());
  }

  mutable std::mutex mutex_;
  std::string typecode_;
  Object::List items_;
};

/// Python: pool.ApplyResult in the server (the AsyncResult typeid, made by
/// a Pool's apply_async, map_async, starmap_async): get, ready, successful, wait.
class AsyncResultReferent : public MethodsReferent {
 public:
  explicit AsyncResultReferent(pool::ApplyResult result) : MethodsReferent("ApplyResult"), result_(std::move(result)) {
    def("get", [this](const Args& a, const Kwds& k) { return result_.get(timeout_of(bind_params("get", a, k, {"timeout"}, 0)[0])); });
    def("wait", [this](const Args& a, const Kwds& k) {
      result_.wait(timeout_of(bind_params("wait", a, k, {"timeout"}, 0)[0]));
      return Object();
    });
    def("ready", [this](const Args&, const Kwds&) { return Object(result_.ready()); });
    def("successful", [this](const Args&, const Kwds&) { return Object(result_.successful()); });
  }
  std::string repr() const override { return result_.repr(); }

 private:
  static std::optional<double> timeout_of(const Object& o) {
    if (o.is_none()) return std::nullopt;
    return number_of(o);
  }
  pool::ApplyResult result_;
};

/// Python: pool.IMapIterator in the server (the Iterator typeid, made by a
/// Pool's imap and imap_unordered): __next__ gives the next result, as it comes.
class IMapIteratorReferent : public MethodsReferent {
 public:
  explicit IMapIteratorReferent(pool::IMapIterator it) : MethodsReferent("IMapIterator"), it_(std::move(it)) {
    def("__next__", [this](const Args&, const Kwds&) {
      std::lock_guard guard(mutex_);
      std::optional<Object> item = it_.next();
      if (!item) throw StopIteration("");
      return *item;
    });
  }
  std::string repr() const override { return "<multiprocessing.pool.IMapIterator object at 0x" + hex_id(this) + ">"; }

 private:
  std::mutex mutex_;  // one __next__ at a time (Python's GIL)
  pool::IMapIterator it_;
};

/// Python: pool.Pool(processes=None, initializer=None, initargs=(),
/// maxtasksperchild=None) in the server (the Pool typeid): its workers are
/// children of the server process.  Functions arrive as the globals that name
/// registered targets (MP_REGISTER_TARGET), as Python pickles a function by
/// name; a callback cannot cross, and is refused.
class PoolReferent : public MethodsReferent {
 public:
  PoolReferent(std::optional<int> processes, Target initializer, Args initargs, std::optional<int> maxtasksperchild)
      : MethodsReferent("Pool"),
        pool_(std::make_unique<pool::Pool>(processes, std::move(initializer), std::move(initargs), maxtasksperchild)) {
    def("apply", [this](const Args& a, const Kwds& k) {
      auto p = bind_params("apply", a, k, {"func", "args", "kwds"}, 1);
      check_no_kwds(p[2]);
      return pool_->apply(function_of(p[0]), p[1].is_none() ? Args{} : args_of(p[1]));
    });
    def("apply_async", [this](const Args& a, const Kwds& k) {
      auto p = bind_params("apply_async", a, k, {"func", "args", "kwds", "callback", "error_callback"}, 1);
      check_no_kwds(p[2]);
      check_no_callbacks(p[3], p[4]);
      return wrap_referent(std::make_shared<AsyncResultReferent>(
          pool_->apply_async(function_of(p[0]), p[1].is_none() ? Args{} : args_of(p[1]))));
    });
    def("map", [this](const Args& a, const Kwds& k) { return Object(map_("map", a, k, false).get()); });
    def("starmap", [this](const Args& a, const Kwds& k) { return Object(map_("starmap", a, k, true).get()); });
    def("map_async", [this](const Args& a, const Kwds& k) {
      return wrap_referent(std::make_shared<AsyncResultReferent>(map_async_("map_async", a, k, false)));
    });
    def("starmap_async", [this](const Args& a, const Kwds& k) {
      return wrap_referent(std::make_shared<AsyncResultReferent>(map_async_("starmap_async", a, k, true)));
    });
    def("imap", [this](const Args& a, const Kwds& k) { return imap_("imap", a, k, true); });
    def("imap_unordered", [this](const Args& a, const Kwds& k) { return imap_("imap_unordered", a, k, false); });
    def("close", [this](const Args&, const Kwds&) {
      pool_->close();
      return Object();
    });
    def("join", [this](const Args&, const Kwds&) {
      pool_->join();
      return Object();
    });
    def("terminate", [this](const Args&, const Kwds&) {
      pool_->terminate();
      return Object();
    });
  }
  std::string repr() const override { return pool_->repr(); }

 private:
  static Target function_of(const Object& func) { return from_object<Target>(func); }
  static void check_no_kwds(const Object& kwds) {
    if (!kwds_of(kwds).empty()) throw TypeError("a C++ function takes no keyword arguments");
  }
  static void check_no_callbacks(const Object& callback, const Object& error_callback) {
    if (!callback.is_none() || !error_callback.is_none()) {
      throw TypeError("a callback cannot cross to the manager: call get() on the AsyncResult instead");
    }
  }
  static std::optional<int> chunksize_of(const Object& o) {
    if (o.is_none()) return std::nullopt;
    return static_cast<int>(o.as<std::int64_t>());
  }
  pool::MapResult map_(const std::string& name, const Args& a, const Kwds& k, bool star) {
    auto p = bind_params(name, a, k, {"func", "iterable", "chunksize"}, 2);
    Target func = function_of(p[0]);
    return star ? pool_->starmap_async(func, items_of(p[1]), chunksize_of(p[2]))
                : pool_->map_async(func, items_of(p[1]), chunksize_of(p[2]));
  }
  pool::MapResult map_async_(const std::string& name, const Args& a, const Kwds& k, bool star) {
    auto p = bind_params(name, a, k, {"func", "iterable", "chunksize", "callback", "error_callback"}, 2);
    check_no_callbacks(p[3], p[4]);
    return map_(name, Args(p.begin(), p.begin() + 3), {}, star);
  }
  Object imap_(const std::string& name, const Args& a, const Kwds& k, bool ordered) {
    auto p = bind_params(name, a, k, {"func", "iterable", "chunksize"}, 2);
    Target func = function_of(p[0]);
    const int chunksize = p[2].is_none() ? 1 : static_cast<int>(p[2].as<std::int64_t>());
    return wrap_referent(std::make_shared<IMapIteratorReferent>(
        ordered ? pool_->imap(func, items_of(p[1]), chunksize) : pool_->imap_unordered(func, items_of(p[1]), chunksize)));
  }

  std::unique_ptr<pool::Pool> pool_;
};

}  // namespace referents

std::string namespace_repr(const Kwds& attrs) {
  // Python: Namespace.__repr__: the public attributes, sorted by name.
  std::vector<std::pair<std::string, std::string>> shown;
  for (const auto& [k, v] : attrs) {
    const auto* name = std::get_if<std::string>(&k.variant());
    if (name != nullptr && !name->empty() && (*name)[0] != '_') shown.emplace_back(*name, v.repr());
  }
  std::sort(shown.begin(), shown.end());
  std::string out = "Namespace(";
  for (std::size_t i = 0; i < shown.size(); ++i) {
    if (i) out += ", ";
    out += shown[i].first + "=" + shown[i].second;
  }
  return out + ")";
}

// ------------------------------------------------------------------ Registry

namespace {
struct RegistryTable {
  std::mutex mutex;
  std::map<std::string, Registry*> by_name;
};
RegistryTable& registry_table() {
  static auto* table = [] {
    auto* created = new RegistryTable;  // never destroyed: registries may outlive statics
    // A forked child finds registries here while another thread of the
    // parent may have been adding one: fork() holds the mutex, whose
    // sections only change the map.
    util::_hold_across_fork(created->mutex);
    return created;
  }();
  return *table;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool registry_table_made_at_start = (registry_table(), true);
}  // namespace

Registry::Registry(std::string class_name, const Registry* base) : class_name_(std::move(class_name)) {
  if (base != nullptr) {
    std::lock_guard guard(base->mutex_);
    entries_ = base->entries_;  // Python: cls._registry = cls._registry.copy()
    server_extension_ = base->server_extension_;  // Python: a subclass inherits _Server
  }
  auto& table = registry_table();
  std::lock_guard guard(table.mutex);
  if (!table.by_name.emplace(class_name_, this).second) {
    throw ValueError("a manager registry named " + py_repr(class_name_) + " exists already");
  }
}

void Registry::set_server_extension(ServerExtensionFactory factory) {
  std::lock_guard guard(mutex_);
  server_extension_ = std::move(factory);
}

ServerExtensionFactory Registry::server_extension() const {
  std::lock_guard guard(mutex_);
  return server_extension_;
}

Registry::~Registry() {
  auto& table = registry_table();
  std::lock_guard guard(table.mutex);
  auto it = table.by_name.find(class_name_);
  if (it != table.by_name.end() && it->second == this) table.by_name.erase(it);
}

bool Registry::register_typeid(const std::string& typeid_, Callable callable, std::optional<std::string> proxytype,
                               std::optional<std::vector<std::string>> exposed,
                               std::optional<std::map<std::string, std::string>> method_to_typeid,
                               bool create_method) {
  TypeidEntry entry;
  entry.callable = std::move(callable);
  entry.proxytype = proxytype.value_or("AutoProxy");
  entry.exposed = exposed ? exposed : proxy_exposed(entry.proxytype);
  entry.method_to_typeid = method_to_typeid ? *method_to_typeid : proxy_method_to_typeid(entry.proxytype);
  entry.create_method = create_method;
  std::lock_guard guard(mutex_);
  entries_[typeid_] = std::move(entry);
  return true;
}

TypeidEntry Registry::get(const std::string& typeid_) const {
  std::lock_guard guard(mutex_);
  auto it = entries_.find(typeid_);
  if (it == entries_.end()) throw KeyError(py_repr(typeid_));
  return it->second;
}

bool Registry::contains(const std::string& typeid_) const {
  std::lock_guard guard(mutex_);
  return entries_.count(typeid_) != 0;
}

std::vector<std::string> Registry::typeids() const {
  std::lock_guard guard(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

Registry* Registry::find(const std::string& class_name) {
  auto& table = registry_table();
  std::lock_guard guard(table.mutex);
  auto it = table.by_name.find(class_name);
  return it == table.by_name.end() ? nullptr : it->second;
}

namespace {
/// The proxy types MakeProxyType() made: name -> exposed.
struct MadeProxyTypes {
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> exposed;
};
MadeProxyTypes& made_proxy_types() {
  static auto* table = [] {
    auto* created = new MadeProxyTypes;  // never destroyed: fork() may take its mutex at exit
    // As the registry table: fork() holds the mutex, whose sections only
    // read or change the map.
    util::_hold_across_fork(created->mutex);
    return created;
  }();
  return *table;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool made_proxy_types_made_at_start = (made_proxy_types(), true);

const std::map<std::string, std::vector<std::string>>& builtin_proxy_exposed() {
  static const std::map<std::string, std::vector<std::string>> exposed = {
      {"DictProxy",
       {"__contains__", "__delitem__", "__getitem__", "__iter__", "__len__", "__setitem__", "clear", "copy", "get",
        "items", "keys", "pop", "popitem", "setdefault", "update", "values"}},
      {"ListProxy",
       {"__add__", "__contains__", "__delitem__", "__getitem__", "__len__", "__mul__", "__reversed__", "__rmul__",
        "__setitem__", "append", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort",
        "__imul__"}},
      {"ValueProxy", {"get", "set"}},
      {"NamespaceProxy", {"__getattribute__", "__setattr__", "__delattr__"}},
      {"AcquirerProxy", {"acquire", "release"}},
      {"EventProxy", {"is_set", "set", "clear", "wait"}},
      {"ConditionProxy", {"acquire", "release", "wait", "notify", "notify_all"}},
      {"BarrierProxy", {"__getattribute__", "wait", "abort", "reset"}},
      {"ArrayProxy", {"__len__", "__getitem__", "__setitem__"}},
      {"IteratorProxy", {"__next__", "send", "throw", "close"}},
      {"PoolProxy",
       {"apply", "apply_async", "close", "imap", "imap_unordered", "join", "map", "map_async", "starmap",
        "starmap_async", "terminate"}},
  };
  return exposed;
}
}  // namespace

std::optional<std::vector<std::string>> proxy_exposed(const std::string& proxytype) {
  const auto& builtin = builtin_proxy_exposed();
  if (auto it = builtin.find(proxytype); it != builtin.end()) return it->second;
  MadeProxyTypes& made = made_proxy_types();
  std::lock_guard guard(made.mutex);
  if (auto it = made.exposed.find(proxytype); it != made.exposed.end()) return it->second;
  return std::nullopt;
}

std::string MakeProxyType(const std::string& name, const std::vector<std::string>& exposed) {
  if (builtin_proxy_exposed().count(name) != 0 || name == "AutoProxy" || name == "BaseProxy") {
    throw ValueError("MakeProxyType: " + py_repr(name) + " is a proxy type of multiprocessing.managers already");
  }
  MadeProxyTypes& made = made_proxy_types();
  {
    std::lock_guard guard(made.mutex);
    auto [it, inserted] = made.exposed.emplace(name, exposed);
    if (!inserted && it->second != exposed) {
      throw ValueError("MakeProxyType: " + py_repr(name) + " was made already, exposing " + join_repr(it->second));
    }
  }
  // Python: the class lives in multiprocessing.managers; a pickled proxy of
  // it names it there, and this process can now unpickle that name.
  reduction::ForkingPickler::register_global(kModule, name);
  return name;
}

std::map<std::string, std::string> proxy_method_to_typeid(const std::string& proxytype) {
  if (proxytype == "DictProxy") return {{"__iter__", "Iterator"}};
  if (proxytype == "PoolProxy") {
    return {{"apply_async", "AsyncResult"},
            {"map_async", "AsyncResult"},
            {"starmap_async", "AsyncResult"},
            {"imap", "Iterator"},
            {"imap_unordered", "Iterator"}};
  }
  return {};
}

// ------------------------------------------------------------------ Server

using Held = Server::Held;

struct Server::State {
  const Registry* registry = nullptr;
  Bytes authkey;
  std::optional<connection::Listener> listener;
  Address address;
  std::mutex mutex;  // Python: self.mutex: guards the three maps
  std::map<std::string, Held> id_to_obj;
  std::map<std::string, std::int64_t> id_to_refcount;
  std::map<std::string, Held> id_to_local_proxy_obj;
  std::mutex stop_mutex;
  std::condition_variable stop_cond;
  bool stop = false;  // Python: stop_event
  std::shared_ptr<ServerExtension> extension;  // a Server subclass's additions, or null
};

namespace {
/// Python: current_process()._manager_server: the server this process runs
/// (RebuildProxy asks it whether a proxy it unpickles is one of its own).
struct CurrentServer {
  std::mutex mutex;
  std::weak_ptr<Server::State> server;
};
CurrentServer& current_server_state() {
  static auto* current = [] {
    auto* created = new CurrentServer;  // never destroyed: the fork handler below uses it
    // pthread_atfork: a forked child is another process, which runs no server
    // (Python: its new current_process() has no _manager_server).  Another
    // thread may have held the mutex or been copying the pointer at the
    // instant of fork(): both are built anew, the old ones never read.
    ::pthread_atfork(nullptr, nullptr, [] {
      util::_abandon_at_fork(current_server_state().mutex);
      util::_abandon_at_fork(current_server_state().server);
    });
    return created;
  }();
  return *current;
}
std::weak_ptr<Server::State>& current_server() { return current_server_state().server; }
std::mutex& current_server_mutex() { return current_server_state().mutex; }
}  // namespace

const std::vector<std::string> Server::public_ = {"shutdown", "create", "accept_connection", "get_methods",
                                                  "debug_info", "number_of_objects", "dummy", "incref", "decref"};

Server::Server(const Registry& registry, std::optional<Address> address, Bytes authkey, const std::string& serializer) {
  check_serializer(serializer);
  // Python: Listener(address=address, backlog=16), without authkey: each
  // connection's own thread runs the challenge, so a slow client cannot hold
  // up the accept loop.
  state_ = std::make_shared<State>();
  state_->registry = &registry;
  state_->authkey = std::move(authkey);
  state_->listener.emplace(address, std::nullopt, 16, std::nullopt);
  state_->address = state_->listener->address();
  if (ServerExtensionFactory make_extension = registry.server_extension()) {
    state_->extension = make_extension(state_->address);
  }
}

const Address& Server::address() const { return state_->address; }

void Server::serve_forever() {
  {
    std::lock_guard guard(current_server_mutex());
    current_server() = state_;
  }
  // Python: the daemon `accepter` thread.  Detached: the process ends (with
  // _exit, in _bootstrap) while it still waits in accept().
  std::thread([self = *this]() mutable {
    while (true) {
      try {
        connection::Connection c = self.state_->listener->accept();
        // Python: one daemon thread per connection, running handle_request.
        std::thread([self, conn = std::move(c)]() mutable { self.handle_request(std::move(conn)); }).detach();
      } catch (const OSError&) {
        if (self.state_->listener->closed()) return;
      }
    }
  }).detach();
  std::unique_lock guard(state_->stop_mutex);
  state_->stop_cond.wait(guard, [this] { return state_->stop; });
  util::debug("manager received shutdown message");
  throw SystemExit(0);  // Python: sys.exit(0)
}

// [manager-handle-request]
void Server::handle_request(connection::Connection c) {
  Object msg;
  try {
    // Per-message time limit on the handshake: a client that connects and
    // says nothing does not keep this thread forever (Python waits forever).
    double deadline = os::monotonic() + connection::CONNECTION_TIMEOUT;
    connection::deliver_challenge(c, state_->authkey, "", deadline);
    connection::answer_challenge(c, state_->authkey, deadline);
    Object received = c.recv();
    const Object::Tuple& request = as_tuple(received, 4, "a manager request");
    std::string funcname = request.items[1].as<std::string>();
    if (util::trace_enabled()) util::_trace("manager server: request " + funcname);
    const std::shared_ptr<ServerExtension>& extension = state_->extension;
    std::vector<std::string> extended;
    if (extension) extended = extension->public_();
    const bool is_extended = std::find(extended.begin(), extended.end(), funcname) != extended.end();
    if (!is_extended && std::find(public_.begin(), public_.end(), funcname) == public_.end()) {
      throw AssertionError(py_repr(funcname) + " unrecognized");
    }
    Args args = args_of(request.items[2]);
    Kwds kwds = kwds_of(request.items[3]);
    Object result;
    if (is_extended) {
      if (!kwds.empty()) throw TypeError(funcname + "() takes no keyword arguments");
      result = extension->request(c, funcname, args);
    } else if (funcname == "create") {
      if (args.empty()) throw TypeError("create() missing 1 required positional argument: 'typeid'");
      result = create(c, args[0].as<std::string>(), Args(args.begin() + 1, args.end()), kwds);
    } else if (funcname == "incref" || funcname == "decref") {
      check_count(funcname, args, 1, 1);
      if (funcname == "incref") {
        incref(c, args[0].as<std::string>());
      } else {
        decref(c, args[0].as<std::string>());
      }
    } else if (funcname == "debug_info") {
      result = debug_info(c);
    } else if (funcname == "number_of_objects") {
      result = number_of_objects(c);
    } else if (funcname == "get_methods") {
      check_count(funcname, args, 1, 1);
      result = get_methods(c, args[0]);
    } else if (funcname == "accept_connection") {
      check_count(funcname, args, 1, 1);
      accept_connection(c, args[0].as<std::string>());
      return;  // Python: serve_client ends with sys.exit(0), swallowed here
    } else if (funcname == "shutdown") {
      shutdown(c);
    }
    msg = Object::Tuple{{"#RETURN", result}};
  } catch (const std::exception& e) {
    msg = Object::Tuple{{"#TRACEBACK", format_exc(e, "_handle_request")}};
  }
  try {
    if (util::trace_enabled()) util::_trace("manager server: reply " + std::get<Object::Tuple>(msg.variant()).items[0].as<std::string>());
    c.send(msg);
  } catch (const std::exception& e) {
    try {
      c.send(Object::Tuple{{"#TRACEBACK", format_exc(e, "_handle_request")}});
    } catch (const std::exception&) {
    }
    util::info(std::string("Failure to send message: ") + msg.repr());
  }
}
// [manager-handle-request]

// [manager-create]
Object Server::create(connection::Connection& c, const std::string& typeid_, const Args& args, const Kwds& kwds) {
  TypeidEntry entry = state_->registry->get(typeid_);
  std::shared_ptr<Referent> obj;
  if (!entry.callable) {
    if (!kwds.empty() || args.size() != 1) throw ValueError("Without callable, must have one non-keyword argument");
    obj = unwrap_referent(args[0]);
    if (!obj) throw TypeError("typeid " + py_repr(typeid_) + " has no callable and got a plain value");
  } else {
    obj = entry.callable(args, kwds);
  }
  std::vector<std::string> exposed = entry.exposed ? *entry.exposed : obj->public_methods();
  for (const auto& [method, t] : entry.method_to_typeid) exposed.push_back(method);  // Python: list + list
  std::string ident = hex_id(obj.get());
  util::debug(py_repr(typeid_) + " callable returned object with id " + ident);
  {
    std::lock_guard guard(state_->mutex);
    state_->id_to_obj[ident] =
        Held{obj, std::make_shared<const std::vector<std::string>>(exposed),
             std::make_shared<const std::map<std::string, std::string>>(entry.method_to_typeid)};
    if (state_->id_to_refcount.count(ident) == 0) state_->id_to_refcount[ident] = 0;
  }
  incref(c, ident);
  return Object::Tuple{{ident, names_tuple(exposed)}};
}
// [manager-create]

void Server::incref(connection::Connection&, const std::string& ident) {
  std::lock_guard guard(state_->mutex);
  auto it = state_->id_to_refcount.find(ident);
  if (it != state_->id_to_refcount.end()) {
    ++it->second;
    return;
  }
  // Python: a manager-owned proxy's referent comes back into tracking.
  auto local = state_->id_to_local_proxy_obj.find(ident);
  if (local == state_->id_to_local_proxy_obj.end()) throw KeyError(py_repr(ident));
  state_->id_to_refcount[ident] = 1;
  state_->id_to_obj[ident] = local->second;
}

void Server::decref(connection::Connection&, const std::string& ident) {
  std::shared_ptr<Referent> dying;  // destroyed outside the mutex, as Python does
  {
    std::lock_guard guard(state_->mutex);
    auto it = state_->id_to_refcount.find(ident);
    if (it == state_->id_to_refcount.end()) {
      if (state_->id_to_local_proxy_obj.count(ident)) return;
      throw KeyError(py_repr(ident));
    }
    if (it->second <= 0) {
      throw AssertionError("Id " + ident + " (" + state_->id_to_obj[ident].obj->repr() + ") has refcount " +
                           std::to_string(it->second) + ", not 1+");
    }
    if (--it->second == 0) {
      state_->id_to_refcount.erase(it);
      auto held = state_->id_to_obj.find(ident);
      if (held != state_->id_to_obj.end()) {
        dying = std::move(held->second.obj);
        state_->id_to_obj.erase(held);
      }
      util::debug("disposing of obj with id " + ident);
    }
  }
}

std::string Server::debug_info(connection::Connection&) {
  std::lock_guard guard(state_->mutex);
  std::string out;
  for (const auto& [ident, count] : state_->id_to_refcount) {
    if (!out.empty()) out += "\n";
    std::string shown = state_->id_to_obj.count(ident) ? state_->id_to_obj[ident].obj->str() : "None";
    out += "  " + ident + ":       refcount=" + std::to_string(count) + "\n    " + shown.substr(0, 75);
  }
  return out;
}

std::int64_t Server::number_of_objects(connection::Connection&) {
  std::lock_guard guard(state_->mutex);
  return static_cast<std::int64_t>(state_->id_to_refcount.size());
}

void Server::shutdown(connection::Connection& c) {
  util::debug("manager received shutdown message");
  if (state_->extension) state_->extension->shutdown(c);  // Python: a subclass's shutdown, first
  // Python sends this reply here and handle_request sends another: a
  // shutdown request gets two identical replies (the client reads one).
  c.send(Object::Tuple{{"#RETURN", Object()}});
  std::lock_guard guard(state_->stop_mutex);
  state_->stop = true;
  state_->stop_cond.notify_all();
}

Object Server::get_methods(connection::Connection&, const Object& token) {
  Token t = token.as<Token>();
  std::lock_guard guard(state_->mutex);
  auto it = state_->id_to_obj.find(t.id);
  if (it == state_->id_to_obj.end()) throw KeyError(py_repr(t.id));
  return names_tuple(*it->second.exposed);
}

void Server::accept_connection(connection::Connection& c, const std::string& name) {
  (void)name;  // Python: threading.current_thread().name = name (for its logs)
  c.send(Object::Tuple{{"#RETURN", Object()}});
  serve_client(c);
}

namespace {

/// Python: conn.send(msg) of serve_client: a reply (kind, small atom)
/// pickled by reduction::dump_call_reply, any other by dump() (the same
/// bytes either way).
void send_reply(connection::Connection& conn, const Object& msg) {
  conn._send_pickle([&msg](std::string& out) {
    if (!reduction::dump_call_reply(out, msg)) reduction::dump(msg, out);
  });
}

}  // namespace

// [manager-serve-client]
void Server::serve_client(connection::Connection& conn) {
  util::debug("starting server thread to service a client");
  // Each request is read into this one buffer, which keeps its room from
  // one request to the next (no allocation per request once warm).
  std::string message;
  constexpr std::size_t kKeptRequestRoom = 64 * 1024;
  Object request;  // the last request of the usual shape: the next is read into its tuple
  while (true) {
    Object msg;
    if (message.capacity() > kKeptRequestRoom) std::string().swap(message);  // one huge request is not kept
    try {
      conn.recv_bytes_reusing(message);
    } catch (const EOFError&) {
      util::debug("got EOF -- exiting thread serving a client");
      return;  // Python: sys.exit(0) of this thread
    } catch (const OSError& e) {
      // The stream itself failed: EOF in mid-message, a length that is no
      // length, a reset.  Its framing is lost, so no later message can be
      // found in it: end this connection (Python answers '#TRACEBACK' and
      // goes on reading the lost stream).
      util::debug(std::string("connection failed (") + e.what() + ") -- exiting thread serving a client");
      return;
    }
    // A request of the usual shape (small atoms only: see
    // reduction::load_call_request) is read into `request` without the
    // generic unpickler, into the tuple of the one before it; any other goes
    // through loads(), and is not kept after its reply (it may hold a proxy,
    // whose decref must not wait for the next request).
    bool usual = false;
    try {
      // Python: the recv() of serve_client's loop, after the bytes: the
      // unpickling, apart from the reading, so that what it raises fails
      // this request only, the OSError of a proxy in the request whose
      // manager cannot be reached included.
      usual = reduction::load_call_request(message, request);
      if (!usual) request = reduction::ForkingPickler::loads(message);
      msg = _dispatch(conn, request);
    } catch (const std::exception& e) {
      // A whole message that is no pickle, or that names a proxy that cannot
      // be rebuilt: its '#TRACEBACK', and the connection serves on.
      msg = Object::Tuple{{"#TRACEBACK", format_exc(e, "serve_client")}};
    }
    if (!usual) request = Object();
    try {
      try {
        send_reply(conn, msg);
      } catch (const PicklingError& e) {
        conn.send(Object::Tuple{{"#UNSERIALIZABLE", format_exc(e, "serve_client")}});
      }
    } catch (const std::exception& e) {
      util::info(std::string("exception in thread serving ") + e.what());
      conn.close();
      return;  // Python: sys.exit(1) of this thread
    }
  }
}

// MP_ASSIGNABLE: the assignment "serve_client" replaces this function.
MP_ASSIGNABLE Object Server::_dispatch(connection::Connection& conn, const Object& request) {
  Object msg;
  // ident and methodname are read in place, in the request (nullptr until read).
  const std::string* methodname = nullptr;
  const std::string* ident = nullptr;
  Held held;
  try {
    const Object::Tuple& t = as_tuple(request, 4, "a method call");
    ident = &str_of(t.items[0]);
    methodname = &str_of(t.items[1]);
    const Args& args = args_of(t.items[2]);
    const Kwds& kwds = kwds_of(t.items[3]);
    if (util::trace_enabled()) util::_trace("manager server: request " + *ident + "." + *methodname);
    held = _lookup(*ident);  // Python: a KeyError for an unknown ident becomes a '#TRACEBACK'
    bool exposed = std::find(held.exposed->begin(), held.exposed->end(), *methodname) != held.exposed->end();
    if (!exposed) {
      throw AttributeError("method " + py_repr(*methodname) + " of " + py_repr(held.obj->type_name()) +
                           " object is not in exposed=" + join_repr(*held.exposed));
    }
    try {
      Object res = held.obj->call(*methodname, args, kwds);
      auto typeid_it = held.method_to_typeid->find(*methodname);
      if (typeid_it != held.method_to_typeid->end()) {
        // Python: the result becomes a shared object of that typeid.
        msg = _proxy_reply(conn, typeid_it->second, res);
      } else {
        static const std::string kReturn = "#RETURN";
        msg = reply_of(kReturn, std::move(res));
      }
    } catch (const std::exception& e) {
      msg = Object::Tuple{{"#ERROR", _reduce_error(e)}};
    }
  } catch (const AttributeError& e) {
    // Python: fallback_mapping: __str__, __repr__, #GETVALUE work even when
    // not exposed.
    if (!methodname) {
      msg = Object::Tuple{{"#TRACEBACK", format_exc(e, "serve_client")}};
    } else if (*methodname == "__str__") {
      msg = Object::Tuple{{"#RETURN", held.obj->str()}};
    } else if (*methodname == "__repr__") {
      msg = Object::Tuple{{"#RETURN", held.obj->repr()}};
    } else if (*methodname == "#GETVALUE") {
      try {
        msg = Object::Tuple{{"#RETURN", held.obj->getvalue()}};
      } catch (const PicklingError& e2) {
        // Python fails to pickle the referent when it sends it.
        msg = Object::Tuple{{"#UNSERIALIZABLE", format_exc(e2, "serve_client")}};
      } catch (const std::exception& e2) {
        msg = Object::Tuple{{"#TRACEBACK", format_exc(e2, "serve_client")}};
      }
    } else {
      msg = Object::Tuple{{"#TRACEBACK", format_exc(e, "serve_client") +
                                             "\nDuring handling of the above exception, another exception "
                                             "occurred:\n\nTraceback (most recent call last):\n  File "
                                             "\"<manager server>\", in serve_client\nKeyError: " +
                                             py_repr(*methodname) + "\n"}};
    }
  } catch (const std::exception& e) {
    msg = Object::Tuple{{"#TRACEBACK", format_exc(e, "serve_client")}};
  }
  if (util::trace_enabled()) util::_trace("manager server: reply " + std::get<Object::Tuple>(msg.variant()).items[0].as<std::string>() + " to " + (ident ? *ident : "") + "." + (methodname ? *methodname : "?"));
  return msg;
}

Server::Held Server::_lookup(const std::string& ident) {
  std::lock_guard guard(state_->mutex);
  if (auto it = state_->id_to_obj.find(ident); it != state_->id_to_obj.end()) return it->second;
  if (auto local = state_->id_to_local_proxy_obj.find(ident); local != state_->id_to_local_proxy_obj.end()) {
    return local->second;
  }
  throw KeyError(py_repr(ident));
}

Object Server::_proxy_reply(connection::Connection& conn, const std::string& typeid_, const Object& result) {
  Object made = create(conn, typeid_, {result}, {});
  const Object::Tuple& created = as_tuple(made, 2, "create's result");
  Token token{typeid_, state_->address, created.items[0].as<std::string>()};
  return Object::Tuple{{"#PROXY", Object::Tuple{{created.items[1], Object(token)}}}};
}

Object Server::_reduce_error(const std::exception& e) { return reduce_error(e); }
// [manager-serve-client]

// ------------------------------------------------------------------ BaseProxy

namespace {

/// Python: BaseProxy._address_to_local[address]: this process's connections
/// to one manager, one per thread (Python: the ForkAwareLocal `_tls`), and how
/// many proxies of this process use that manager (Python: the idset).
struct AddressLocal {
  std::map<std::thread::id, std::shared_ptr<connection::Connection>> connections;
  std::size_t proxies = 0;
};

struct ProxyModuleState {
  std::mutex mutex;  // Python: BaseProxy._mutex
  std::map<std::string, AddressLocal> address_to_local;  // keyed by address_repr
  /// One more at every change of the table (made under the mutex): a thread's
  /// remembered connection (thread_connection) is used without the mutex
  /// only while this has not moved since.
  std::atomic<std::uint64_t> generation{0};
  /// The table, to change it.
  std::map<std::string, AddressLocal>& table_to_change() {
    generation.fetch_add(1, std::memory_order_release);
    return table();
  }
  /// The table of this process.
  std::map<std::string, AddressLocal>& table() { return address_to_local; }
  /// Run in the child of every fork() (a pthread_atfork handler): the
  /// parent's connections are forgotten there (Python: ForkAwareLocal is
  /// cleared, and _after_fork takes a fresh lock).  Another thread of the
  /// parent may have held the mutex, or been half-way through changing the
  /// table, at the instant of the fork; that thread does not exist in the
  /// child, so both are abandoned unread, never unlocked nor destroyed: a new
  /// mutex and an empty table are built over them.  The parent's sockets stay
  /// open in the child, unused (closing an fd the parent uses would be worse).
  MP_FORKED_CHILD_CODE void _after_fork_in_child() {
    util::_abandon_at_fork(mutex);
    // From a program without threads the table is whole: an empty one (no
    // proxy used yet) is left unwritten, which spares the child a page fault.
    if (!util::_forked_from_one_thread() || !address_to_local.empty()) util::_abandon_at_fork(address_to_local);
  }
};

ProxyModuleState& proxy_state();
MP_FORKED_CHILD_CODE void proxy_state_after_fork_in_child() { proxy_state()._after_fork_in_child(); }

MP_FORKED_CHILD_CODE ProxyModuleState& proxy_state() {
  static auto* state = [] {
    auto* created = new ProxyModuleState;  // never destroyed: finalizers use it at exit
    ::pthread_atfork(nullptr, nullptr, proxy_state_after_fork_in_child);
    return created;
  }();
  return *state;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool proxy_state_made_at_start = (proxy_state(), true);

/// Python: the name accept_connection gets ('MainProcess', or the process
/// and thread names); the server only logs it.
std::string connection_name() { return current_process().name(); }

/// Python: Client(address, authkey=authkey), as a manager's client opens it.
/// Over TCP, with TCP_NODELAY: the client's last handshake message (\#WELCOME\#)
/// and its first request leave back to back, and Nagle's algorithm would hold
/// the request until the server's delayed ACK of the first, 40 ms on Linux,
/// on every control request (CPython pays that delay).
connection::Connection client_connection(const Address& address, const Bytes& authkey) {
  connection::Connection conn = connection::Client(address, std::nullopt, authkey);
  if (std::holds_alternative<connection::InetAddress>(address)) {
    int one = 1;
    // setsockopt on our own connected socket: only EBADF/ENOPROTOOPT could fail,
    // and a slower connection is still a working one, so the result is not checked.
    (void)::setsockopt(conn.fileno(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return conn;
}

/// Python: BaseManager._Client(address, authkey=...) + dispatch of one
/// control request on a connection of its own.
Object control(const Address& address, const Bytes& authkey, const std::string& methodname, const Args& args = {},
               const Kwds& kwds = {}) {
  connection::Connection conn = client_connection(address, authkey);
  return dispatch(conn, Object(), methodname, args, kwds);
}

}  // namespace

struct BaseProxy::State {
  Token token;
  std::string proxytype;
  Bytes authkey;
  std::vector<std::string> exposed;
  const Registry* registry = nullptr;
  std::shared_ptr<std::atomic<int>> manager_state;  // nullptr: no manager in this process
  pid_t pid = 0;
  std::string address_key;
  util::Finalize close;  // Python: _close, the decref (exit priority 10)
};

namespace {

/// Python: BaseProxy._decref(token, authkey, state, tls, idset, _Client).
void proxy_decref(const Token& token, const Bytes& authkey, const std::shared_ptr<std::atomic<int>>& manager_state,
                  const std::string& address_key) {
  if (!manager_state || manager_state->load() == static_cast<int>(BaseManager::State::STARTED)) {
    try {
      util::debug("DECREF " + token.id);
      control(token.address, authkey, "decref", {token.id});
    } catch (const std::exception& e) {
      util::debug(std::string("... decref failed ") + e.what());
    }
  } else {
    util::debug("DECREF " + token.id + " -- manager already shutdown");
  }
  // Python: when this process holds no more proxies of that manager, close
  // this thread's connection (here: every thread's, none can be in a call).
  auto& ps = proxy_state();
  std::lock_guard guard(ps.mutex);
  auto& table = ps.table_to_change();
  auto it = table.find(address_key);
  if (it != table.end() && --it->second.proxies == 0) table.erase(it);
}

/// Python: BaseProxy._incref().
void proxy_incref(BaseProxy::State& s) {
  control(s.token.address, s.authkey, "incref", {s.token.id});
  util::debug("INCREF " + s.token.id);
  s.close = util::Finalize([token = s.token, authkey = s.authkey, ms = s.manager_state, key = s.address_key] {
    proxy_decref(token, authkey, ms, key);
  }, 10, "BaseProxy._decref");
}

std::shared_ptr<BaseProxy::State> make_proxy_state(Token token, std::string proxytype, std::optional<Bytes> authkey,
                                                   std::optional<std::vector<std::string>> exposed, bool incref,
                                                   const Registry* registry,
                                                   std::shared_ptr<std::atomic<int>> manager_state) {
  auto s = std::make_shared<BaseProxy::State>();
  s->token = std::move(token);
  s->proxytype = std::move(proxytype);
  // Python: authkey argument, else the manager's, else current_process().authkey.
  s->authkey = authkey ? *authkey : Bytes(current_process().authkey().data);
  if (exposed) {
    s->exposed = *exposed;
  } else if (auto e = proxy_exposed(s->proxytype)) {
    s->exposed = *e;
  }
  s->registry = registry;
  s->manager_state = std::move(manager_state);
  s->pid = os::getpid();
  s->address_key = connection::address_repr(s->token.address);
  {
    auto& ps = proxy_state();
    std::lock_guard guard(ps.mutex);
    ++ps.table_to_change()[s->address_key].proxies;
  }
  if (incref) {
    try {
      proxy_incref(*s);
    } catch (...) {
      auto& ps = proxy_state();
      std::lock_guard guard(ps.mutex);
      auto& table = ps.table_to_change();
      if (--table[s->address_key].proxies == 0) table.erase(s->address_key);
      throw;
    }
  } else {
    // Still give the count back when it dies.
    s->close = util::Finalize([key = s->address_key] {
      auto& ps = proxy_state();
      std::lock_guard guard(ps.mutex);
      auto& table = ps.table_to_change();
      auto it = table.find(key);
      if (it != table.end() && --it->second.proxies == 0) table.erase(it);
    });
  }
  return s;
}

/// The proxy whose _callmethod this thread is reading a reply for: a proxy
/// that arrives inside that reply, for the same manager, takes its authkey.
thread_local const BaseProxy::State* calling_proxy = nullptr;

/// The buffer this thread's last _callmethod read its reply into, kept for
/// its next one: a call then allocates nothing for its reply's bytes.  A call
/// takes it while it reads and unpickles its reply (one nested in that, in a
/// rebuild function, would start with an empty string) and gives it back
/// afterwards, unless it grew beyond kKeptReplyRoom.
thread_local std::string reply_room;
constexpr std::size_t kKeptReplyRoom = 64 * 1024;

/// reply_room, taken for one call and given back.
struct ReplyRoom {
  ReplyRoom() : bytes(std::exchange(reply_room, {})) {}
  ~ReplyRoom() {
    if (bytes.capacity() <= kKeptReplyRoom) reply_room = std::move(bytes);
  }
  ReplyRoom(const ReplyRoom&) = delete;
  ReplyRoom& operator=(const ReplyRoom&) = delete;
  std::string bytes;
};

/// The connection this thread found last, for which proxy state, in which
/// process, at which generation of the table: the next call through the same
/// proxy takes it again without the mutex and the two lookups.  Weak: the
/// table alone keeps a connection open (its fd closes when the table drops it).
struct RememberedConnection {
  const BaseProxy::State* state = nullptr;
  pid_t pid = 0;
  std::uint64_t generation = 0;
  std::weak_ptr<connection::Connection> conn;
};
thread_local RememberedConnection remembered_connection;

/// Python: conn.send((self._id, methodname, args, kwds)) of _callmethod: the
/// request pickled straight from its parts when they are of the usual shape
/// (reduction::dump_call_request), else made into a tuple, the args moved
/// in (`args` is left empty then), and pickled by dump() (the same bytes
/// either way).
void send_request(connection::Connection& conn, const std::string& ident, const std::string& methodname, Args& args,
                  const Kwds& kwds) {
  // The parts, for the pickler given to _send_pickle, which holds a
  // reference to them alone: small enough for std::function to keep without
  // allocating.
  struct Parts {
    const std::string& ident;
    const std::string& methodname;
    Args& args;
    const Kwds& kwds;
  } parts{ident, methodname, args, kwds};
  conn._send_pickle([&parts](std::string& out) {
    if (reduction::dump_call_request(out, parts.ident, parts.methodname, parts.args, parts.kwds)) return;
    Object::Tuple request;
    request.items.reserve(4);
    request.items.emplace_back(parts.ident);
    request.items.emplace_back(parts.methodname);
    request.items.emplace_back(Object::Tuple{std::move(parts.args)});
    request.items.emplace_back(parts.kwds);
    reduction::dump(Object(std::move(request)), out);
  });
}

/// This thread's connection to the proxy's manager (Python: _tls.connection,
/// made by _connect()).
// [manager-thread-connection]
std::shared_ptr<connection::Connection> thread_connection(const BaseProxy::State& s) {
  auto& ps = proxy_state();
  RememberedConnection& last = remembered_connection;
  if (last.state == &s && last.pid == os::getpid() &&
      last.generation == ps.generation.load(std::memory_order_acquire)) {
    if (auto conn = last.conn.lock()) return conn;
  }
  auto me = std::this_thread::get_id();
  {
    std::lock_guard guard(ps.mutex);
    auto& local = ps.table()[s.address_key];
    auto it = local.connections.find(me);
    if (it != local.connections.end()) {
      last = {&s, os::getpid(), ps.generation.load(std::memory_order_relaxed), it->second};
      return it->second;
    }
  }
  // Python: _connect(): Client(token.address, authkey), then accept_connection.
  util::debug("making connection to manager");
  auto conn = std::make_shared<connection::Connection>(client_connection(s.token.address, s.authkey));
  dispatch(*conn, Object(), "accept_connection", {connection_name()});
  std::lock_guard guard(ps.mutex);
  ps.table_to_change()[s.address_key].connections[me] = conn;
  return conn;
}
// [manager-thread-connection]

void drop_thread_connection(const BaseProxy::State& s) {
  auto& ps = proxy_state();
  std::lock_guard guard(ps.mutex);
  auto& table = ps.table_to_change();
  auto it = table.find(s.address_key);
  if (it != table.end()) it->second.connections.erase(std::this_thread::get_id());
}

}  // namespace

BaseProxy::BaseProxy(Token token, std::string proxytype, std::optional<Bytes> authkey,
                     std::optional<std::vector<std::string>> exposed, bool incref, const Registry* registry)
    : state_(make_proxy_state(std::move(token), std::move(proxytype), std::move(authkey), std::move(exposed), incref,
                              registry, nullptr)) {}

// [manager-callmethod]
Object BaseProxy::_callmethod(const std::string& methodname, const Args& args, const Kwds& kwds) const {
  return _callmethod(methodname, Args(args), kwds);
}

Object BaseProxy::_callmethod(const std::string& methodname, Args&& args, const Kwds& kwds) const {
  if (!state_) throw ValueError("the proxy is not bound to a shared object");
  std::shared_ptr<connection::Connection> conn = thread_connection(*state_);
  Object reply;
  try {
    if (util::trace_enabled()) util::_trace("manager request: " + state_->token.typeid_ + " " + state_->token.id + "." + methodname);
    send_request(*conn, state_->token.id, methodname, args, kwds);
    struct Calling {
      explicit Calling(const State* s) : previous(std::exchange(calling_proxy, s)) {}
      ~Calling() { calling_proxy = previous; }
      const State* previous;
    } calling(state_.get());
    ReplyRoom room;  // the reply's bytes, in this thread's reply_room
    conn->recv_bytes_reusing(room.bytes);
    // The usual reply, ('#RETURN', small atom), read without the generic
    // unpickler (reduction::load_call_reply); any other by loads().
    std::string_view kind;
    Object value;
    if (reduction::load_call_reply(room.bytes, kind, value) && kind == "#RETURN") {
      if (util::trace_enabled()) util::_trace("manager reply: #RETURN to " + state_->token.id + "." + methodname);
      return value;
    }
    reply = reduction::ForkingPickler::loads(room.bytes);
  } catch (const std::exception&) {
    // The connection is broken (the server died...): forget it, so that a
    // later call reconnects instead of reading a stale stream.
    drop_thread_connection(*state_);
    throw;
  }
  as_tuple(reply, 2, "a manager's reply");  // the shape checked; the result is moved out below
  Object::Tuple& t = std::get<Object::Tuple>(reply.variant());
  const auto* kind_str = std::get_if<std::string>(&t.items[0].variant());
  if (kind_str == nullptr) t.items[0].type_mismatch("str");
  const std::string& kind = *kind_str;
  if (util::trace_enabled()) util::_trace("manager reply: " + kind + " to " + state_->token.id + "." + methodname);
  if (kind == "#RETURN") return std::move(t.items[1]);
  if (kind == "#PROXY") {
    const Object::Tuple& p = as_tuple(t.items[1], 2, "a #PROXY reply");
    Token token = p.items[1].as<Token>();
    token.address = state_->token.address;  // Python: the client keeps its own view of the address
    std::string proxytype = "AutoProxy";
    if (state_->registry != nullptr && state_->registry->contains(token.typeid_)) {
      proxytype = state_->registry->get(token.typeid_).proxytype;
    } else if (token.typeid_ == "Iterator") {
      proxytype = "IteratorProxy";
    }
    BaseProxy proxy(make_proxy_state(token, proxytype, state_->authkey, names_of(p.items[0]), true,
                                     state_->registry, state_->manager_state));
    control(token.address, state_->authkey, "decref", {token.id});
    return proxy._reduce();
  }
  raise_converted_error(kind, t.items[1]);
}
// [manager-callmethod]

std::string BaseProxy::str() const {
  try {
    return _callmethod("__repr__").as<std::string>();
  } catch (const std::exception&) {
    std::string r = repr();
    return r.substr(0, r.size() - 1) + "; '__str__()' failed>";
  }
}

std::string BaseProxy::repr() const {
  if (!state_) return "<BaseProxy object, unbound>";
  std::string type = state_->proxytype == "AutoProxy" ? "AutoProxy[" + state_->token.typeid_ + "]" : state_->proxytype;
  return "<" + type + " object, typeid " + py_repr(state_->token.typeid_) + " at 0x" + hex_id(state_.get()) + ">";
}

const Token& BaseProxy::_token() const {
  if (!state_) throw ValueError("the proxy is not bound to a shared object");
  return state_->token;
}

const std::vector<std::string>& BaseProxy::_exposed() const {
  if (!state_) throw ValueError("the proxy is not bound to a shared object");
  return state_->exposed;
}

const std::string& BaseProxy::proxytype() const {
  if (!state_) throw ValueError("the proxy is not bound to a shared object");
  return state_->proxytype;
}

Object BaseProxy::_reduce() const {
  if (!state_) throw ValueError("the proxy is not bound to a shared object");
  auto make = [s = state_](bool spawning) {
    Kwds kwds;
    if (spawning) {
      // Python: kwds['authkey'] = self._authkey only while spawning a child.
      kwds.emplace_back("authkey", Object::Reduced{{"multiprocessing.process", "AuthenticationString"},
                                                   {s->authkey}});
    }
    if (s->proxytype == "AutoProxy") kwds.emplace_back("exposed", names_tuple(s->exposed));
    return Object::Reduced{{kModule, "RebuildProxy"},
                           {Object::Global{kModule, s->proxytype}, Object(s->token), "pickle", kwds}};
  };
  Object::Reduced r = make(false);
  r.local = state_;
  r.reduce = [make] { return Object(make(get_spawning_popen() != nullptr)); };
  return r;
}

BaseProxy BaseProxy::_rebuild(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  if (r == nullptr || r->callable != Object::Global{kModule, "RebuildProxy"} || r->args.size() != 4) {
    throw TypeError("expected a pickled proxy, got " + obj.repr());
  }
  if (r->local) {
    auto s = std::static_pointer_cast<State>(std::const_pointer_cast<void>(r->local));
    // The same process: the same proxy.  A forked child holds the parent's
    // memory: it makes a proxy of its own, with the parent proxy's key and its
    // own reference (Python: BaseProxy._after_fork increfs).
    if (s->pid == os::getpid()) return BaseProxy(s);
    return BaseProxy(make_proxy_state(s->token, s->proxytype, s->authkey, s->exposed, true, s->registry, nullptr));
  }
  const Object::Global* func = r->args[0].global();
  if (func == nullptr) throw TypeError("expected a proxy type, got " + r->args[0].repr());
  Token token = r->args[1].as<Token>();
  std::optional<Bytes> authkey;
  std::optional<std::vector<std::string>> exposed;
  for (const auto& [k, v] : kwds_of(r->args[3])) {
    if (k == Object("authkey")) {
      if (const auto* b = std::get_if<Bytes>(&v.variant())) authkey = *b;
      if (const auto* a = v.reduced(); a && !a->args.empty()) authkey = a->args[0].as<Bytes>();
    } else if (k == Object("exposed")) {
      exposed = names_of(v);
    }
  }
  // Python takes current_process().authkey here, which fails for a manager
  // with a key of its own (CPython issue 78740): a proxy that arrives in a
  // reply of the same manager takes the key of the proxy that called.
  if (!authkey && calling_proxy != nullptr && calling_proxy->token.address == token.address) {
    authkey = calling_proxy->authkey;
  }
  // Python: RebuildProxy: `incref = kwds.pop('incref', True) and not
  // current_process()._inheriting`.  The port increfs in a spawned child too:
  // the child's proxy then holds its own reference, released when it dies.
  return BaseProxy(make_proxy_state(token, func->qualname, authkey, exposed, true, nullptr, nullptr));
}

namespace {

/// Python: RebuildProxy as the unpickler calls it.  Inside a manager server
/// for its own address: remember the referent (id_to_local_proxy_obj) and keep
/// the value as data (Python: a manager-owned proxy, no incref).  Anywhere
/// else: a live proxy, with its reference, carried by the Object.
Object rebuild_proxy(Object reduced) {
  const Object::Reduced* r = reduced.reduced();
  if (r == nullptr || r->args.size() != 4) return reduced;
  Token token = r->args[1].as<Token>();
  std::shared_ptr<Server::State> server;
  {
    std::lock_guard guard(current_server_mutex());
    server = current_server().lock();
  }
  if (server) {
    if (server->address == token.address) {
      std::lock_guard guard(server->mutex);
      if (server->id_to_local_proxy_obj.count(token.id) == 0) {
        auto it = server->id_to_obj.find(token.id);
        if (it != server->id_to_obj.end()) server->id_to_local_proxy_obj[token.id] = it->second;
      }
      return reduced;
    }
  }
  return BaseProxy::_rebuild(reduced)._reduce();
}

const bool managers_globals_registered = [] {
  using reduction::ForkingPickler;
  ForkingPickler::register_global(kModule, "Token");
  ForkingPickler::register_global(kModule, "RebuildProxy", &rebuild_proxy);
  for (const char* proxy : {"AutoProxy", "BaseProxy", "DictProxy", "ListProxy", "ValueProxy", "NamespaceProxy",
                            "AcquirerProxy", "EventProxy", "IteratorProxy", "ConditionProxy", "BarrierProxy",
                            "ArrayProxy", "PoolProxy"}) {
    ForkingPickler::register_global(kModule, proxy);
  }
  ForkingPickler::register_global("builtins", "slice");
  ForkingPickler::register_global("_queue", "Empty");  // queue.Empty's real home in CPython
  // multiprocessing.process.AuthenticationString is registered by process.cpp,
  // which rebuilds it as the plain key (RebuildProxy takes either form).
  spawn::register_target("multiprocessing.managers.BaseManager._run_server", Target(&BaseManager::_run_server));
  return true;
}();

}  // namespace

Object AutoProxy::call(const std::string& name, const Args& args, const Kwds& kwds) const {
  const auto& exposed = _exposed();
  if (std::find(exposed.begin(), exposed.end(), name) == exposed.end()) {
    std::string type = proxytype() == "AutoProxy" ? "AutoProxy[" + _token().typeid_ + "]" : proxytype();
    throw AttributeError("'" + type + "' object has no attribute " + py_repr(name));
  }
  return _callmethod(name, args, kwds);
}

// ---- DictProxy
Object DictProxy::getitem(const Object& key) const { return _callmethod("__getitem__", {key}); }
void DictProxy::setitem(const Object& key, const Object& value) const { _callmethod("__setitem__", {key, value}); }
void DictProxy::delitem(const Object& key) const { _callmethod("__delitem__", {key}); }
std::int64_t DictProxy::len() const { return _callmethod("__len__").as<std::int64_t>(); }
bool DictProxy::contains(const Object& key) const { return _callmethod("__contains__", {key}).as<bool>(); }
Object DictProxy::get(const Object& key, const Object& default_) const { return _callmethod("get", {key, default_}); }
Object::List DictProxy::keys() const { return _callmethod("keys").as<Object::List>(); }
Object::List DictProxy::values() const { return _callmethod("values").as<Object::List>(); }
Object::List DictProxy::items() const { return _callmethod("items").as<Object::List>(); }
void DictProxy::update(const Object& other, const Kwds& kwds) const { _callmethod("update", {other}, kwds); }
Object DictProxy::pop(const Object& key) const { return _callmethod("pop", {key}); }
Object DictProxy::pop(const Object& key, const Object& default_) const { return _callmethod("pop", {key, default_}); }
Object DictProxy::popitem() const { return _callmethod("popitem"); }
Object DictProxy::setdefault(const Object& key, const Object& default_) const {
  return _callmethod("setdefault", {key, default_});
}
void DictProxy::clear() const { _callmethod("clear"); }
Object::Dict DictProxy::copy() const { return _callmethod("copy").as<Object::Dict>(); }

// ---- ListProxy
Object ListProxy::getitem(std::int64_t index) const { return _callmethod("__getitem__", {index}); }
void ListProxy::setitem(std::int64_t index, const Object& value) const { _callmethod("__setitem__", {index, value}); }
void ListProxy::delitem(std::int64_t index) const { _callmethod("__delitem__", {index}); }
std::int64_t ListProxy::len() const { return _callmethod("__len__").as<std::int64_t>(); }
bool ListProxy::contains(const Object& value) const { return _callmethod("__contains__", {value}).as<bool>(); }
void ListProxy::append(const Object& value) const { _callmethod("append", {value}); }
void ListProxy::extend(const Object& values) const { _callmethod("extend", {values}); }
std::int64_t ListProxy::index(const Object& value) const { return _callmethod("index", {value}).as<std::int64_t>(); }
std::int64_t ListProxy::count(const Object& value) const { return _callmethod("count", {value}).as<std::int64_t>(); }
void ListProxy::insert(std::int64_t index, const Object& value) const { _callmethod("insert", {index, value}); }
void ListProxy::remove(const Object& value) const { _callmethod("remove", {value}); }
Object ListProxy::pop(std::int64_t index) const { return _callmethod("pop", {index}); }
void ListProxy::reverse() const { _callmethod("reverse"); }
void ListProxy::sort(bool reverse) const { _callmethod("sort", {}, Kwds{{"reverse", reverse}}); }
ListProxy& ListProxy::iadd(const Object& values) {
  _callmethod("extend", {values});
  return *this;
}
ListProxy& ListProxy::imul(std::int64_t n) {
  _callmethod("__imul__", {n});
  return *this;
}
Object::List ListProxy::add(const Object& values) const { return _callmethod("__add__", {values}).as<Object::List>(); }
Object::List ListProxy::mul(std::int64_t n) const { return _callmethod("__mul__", {n}).as<Object::List>(); }

// ---- ValueProxy
Object ValueProxy::get() const { return _callmethod("get"); }
void ValueProxy::set(const Object& value) const { _callmethod("set", {value}); }

// ---- NamespaceProxy
Object NamespaceProxy::getattr(const std::string& name) const {
  if (!name.empty() && name[0] == '_') {
    if (local_) {
      for (const auto& [k, v] : *local_) {
        if (k == Object(name)) return v;
      }
    }
    throw AttributeError("'NamespaceProxy' object has no attribute " + py_repr(name));
  }
  return _callmethod("__getattribute__", {name});
}

void NamespaceProxy::setattr(const std::string& name, const Object& value) {
  if (!name.empty() && name[0] == '_') {
    if (!local_) local_ = std::make_shared<Kwds>();
    for (auto& [k, v] : *local_) {
      if (k == Object(name)) {
        v = value;
        return;
      }
    }
    local_->emplace_back(name, value);
    return;
  }
  _callmethod("__setattr__", {name, value});
}

void NamespaceProxy::delattr(const std::string& name) {
  if (!name.empty() && name[0] == '_') {
    if (local_) {
      for (auto it = local_->begin(); it != local_->end(); ++it) {
        if (it->first == Object(name)) {
          local_->erase(it);
          return;
        }
      }
    }
    throw AttributeError(name);
  }
  _callmethod("__delattr__", {name});
}

// ---- AcquirerProxy, EventProxy
bool AcquirerProxy::acquire(bool blocking, std::optional<double> timeout) const {
  Args args = timeout ? Args{blocking, *timeout} : Args{blocking};
  return _callmethod("acquire", std::move(args)).as<bool>();
}
void AcquirerProxy::release() const { _callmethod("release"); }

bool EventProxy::is_set() const { return _callmethod("is_set").as<bool>(); }
void EventProxy::set() const { _callmethod("set"); }
void EventProxy::clear() const { _callmethod("clear"); }
bool EventProxy::wait(std::optional<double> timeout) const {
  return _callmethod("wait", timeout ? Args{*timeout} : Args{}).as<bool>();
}

// ---- ConditionProxy, BarrierProxy, ArrayProxy
bool ConditionProxy::wait(std::optional<double> timeout) const {
  return _callmethod("wait", {timeout ? Object(*timeout) : Object()}).as<bool>();
}
void ConditionProxy::notify(std::int64_t n) const { _callmethod("notify", {n}); }
void ConditionProxy::notify_all() const { _callmethod("notify_all"); }
bool ConditionProxy::wait_for(const std::function<bool()>& predicate, std::optional<double> timeout) const {
  // Python: ConditionProxy.wait_for runs the loop here, calling wait remotely.
  return synchronize::_wait_for([this](std::optional<double> t) { wait(t); }, predicate, timeout);
}

std::int64_t BarrierProxy::wait(std::optional<double> timeout) const {
  return _callmethod("wait", {timeout ? Object(*timeout) : Object()}).as<std::int64_t>();
}
void BarrierProxy::abort() const { _callmethod("abort"); }
void BarrierProxy::reset() const { _callmethod("reset"); }
std::int64_t BarrierProxy::parties() const { return _callmethod("__getattribute__", {"parties"}).as<std::int64_t>(); }
std::int64_t BarrierProxy::n_waiting() const {
  return _callmethod("__getattribute__", {"n_waiting"}).as<std::int64_t>();
}
bool BarrierProxy::broken() const { return _callmethod("__getattribute__", {"broken"}).as<bool>(); }

std::int64_t ArrayProxy::len() const { return _callmethod("__len__").as<std::int64_t>(); }
Object ArrayProxy::getitem(std::int64_t index) const { return _callmethod("__getitem__", {index}); }
void ArrayProxy::setitem(std::int64_t index, const Object& value) const { _callmethod("__setitem__", {index, value}); }
Object::List ArrayProxy::tolist() const { return SequenceIterator(*this).rest(); }

// ---- SequenceIterator, IteratorProxy
std::optional<Object> SequenceIterator::next() {
  if (exhausted_) return std::nullopt;
  try {
    return proxy_._callmethod("__getitem__", {index_++});
  } catch (const IndexError&) {
    exhausted_ = true;  // Python: the iterator stays exhausted
    return std::nullopt;
  }
}
Object::List SequenceIterator::rest() {
  Object::List items;
  while (std::optional<Object> item = next()) items.push_back(std::move(*item));
  return items;
}

std::optional<Object> IteratorProxy::next() const {
  try {
    return _callmethod("__next__");
  } catch (const StopIteration&) {
    return std::nullopt;
  }
}
Object::List IteratorProxy::rest() const {
  Object::List items;
  while (std::optional<Object> item = next()) items.push_back(std::move(*item));
  return items;
}
void IteratorProxy::close() const { _callmethod("close"); }

// ---- AsyncResultProxy, PoolProxy
namespace {
Object timeout_arg(std::optional<double> timeout) { return timeout ? Object(*timeout) : Object(); }
Object optional_int_arg(std::optional<int> chunksize) {
  return chunksize ? Object(static_cast<std::int64_t>(*chunksize)) : Object();
}
}  // namespace

Object AsyncResultProxy::get(std::optional<double> timeout) const { return _callmethod("get", {timeout_arg(timeout)}); }
bool AsyncResultProxy::ready() const { return _callmethod("ready").as<bool>(); }
bool AsyncResultProxy::successful() const { return _callmethod("successful").as<bool>(); }
void AsyncResultProxy::wait(std::optional<double> timeout) const { _callmethod("wait", {timeout_arg(timeout)}); }

Object PoolProxy::apply(const Target& func, const Args& args) const {
  return _callmethod("apply", {Object(func), Object(Object::Tuple{args})});
}
AsyncResultProxy PoolProxy::apply_async(const Target& func, const Args& args) const {
  return AsyncResultProxy(
      _callmethod("apply_async", {Object(func), Object(Object::Tuple{args})}).as<BaseProxy>());
}
Object::List PoolProxy::map(const Target& func, const Object::List& iterable, std::optional<int> chunksize) const {
  return _callmethod("map", {Object(func), iterable, optional_int_arg(chunksize)}).as<Object::List>();
}
AsyncResultProxy PoolProxy::map_async(const Target& func, const Object::List& iterable,
                                      std::optional<int> chunksize) const {
  return AsyncResultProxy(
      _callmethod("map_async", {Object(func), iterable, optional_int_arg(chunksize)}).as<BaseProxy>());
}
Object::List PoolProxy::starmap(const Target& func, const Object::List& iterable, std::optional<int> chunksize) const {
  return _callmethod("starmap", {Object(func), iterable, optional_int_arg(chunksize)}).as<Object::List>();
}
AsyncResultProxy PoolProxy::starmap_async(const Target& func, const Object::List& iterable,
                                          std::optional<int> chunksize) const {
  return AsyncResultProxy(
      _callmethod("starmap_async", {Object(func), iterable, optional_int_arg(chunksize)}).as<BaseProxy>());
}
IteratorProxy PoolProxy::imap(const Target& func, const Object::List& iterable, int chunksize) const {
  return IteratorProxy(
      _callmethod("imap", {Object(func), iterable, std::int64_t{chunksize}}).as<BaseProxy>());
}
IteratorProxy PoolProxy::imap_unordered(const Target& func, const Object::List& iterable, int chunksize) const {
  return IteratorProxy(
      _callmethod("imap_unordered", {Object(func), iterable, std::int64_t{chunksize}}).as<BaseProxy>());
}
void PoolProxy::close() const { _callmethod("close"); }
void PoolProxy::join() const { _callmethod("join"); }
void PoolProxy::terminate() const { _callmethod("terminate"); }

// ------------------------------------------------------------------ BaseManager

struct BaseManager::Shared {
  Registry* registry = nullptr;
  std::optional<Address> address;
  Bytes authkey;
  std::string serializer;
  BaseContext* ctx = nullptr;
  double shutdown_timeout = 1.0;
  std::shared_ptr<std::atomic<int>> state = std::make_shared<std::atomic<int>>(0);  // Python: _state
  std::unique_ptr<BaseProcess> process;
  util::Finalize shutdown;  // declared last: runs (destroyed) before `process` goes
};

namespace {

/// Python: BaseManager._finalize_manager(process, address, authkey, state,
/// _Client, shutdown_timeout).
void finalize_manager(BaseProcess* process, const Address& address, const Bytes& authkey,
                      const std::shared_ptr<std::atomic<int>>& state, double shutdown_timeout) {
  if (process->is_alive()) {
    util::info("sending shutdown message to manager");
    try {
      control(address, authkey, "shutdown");
    } catch (const std::exception&) {
    }
    process->join(shutdown_timeout);
    if (process->is_alive()) {
      util::info("manager still alive");
      process->terminate();  // SIGTERM: the server does not answer
      process->join(shutdown_timeout);
      if (process->is_alive()) {
        util::info("manager still alive after terminate");
        process->kill();  // SIGKILL: nothing can ignore it
        process->join();
      }
    }
  } else {
    process->join();  // reap it
  }
  // A server that did not end cleanly (killed) could not remove its socket
  // file and temp directory (a CPython manager leaves both in /tmp).
  if (process->exitcode() != 0 && connection::address_type(address) == "AF_UNIX") {
    util::_remove_stale_socket(std::get<std::string>(address));
  }
  state->store(static_cast<int>(BaseManager::State::SHUTDOWN));
  // Python: del BaseProxy._address_to_local[address].
  auto& ps = proxy_state();
  std::lock_guard guard(ps.mutex);
  auto& table = ps.table_to_change();
  auto it = table.find(connection::address_repr(address));
  if (it != table.end()) it->second.connections.clear();
}

}  // namespace

BaseManager::BaseManager(std::optional<Address> address, std::optional<Bytes> authkey, const std::string& serializer,
                         BaseContext* ctx, double shutdown_timeout)
    : BaseManager(_registry(), std::move(address), std::move(authkey), serializer, ctx, shutdown_timeout) {}

BaseManager::BaseManager(Registry& registry, std::optional<Address> address, std::optional<Bytes> authkey,
                         const std::string& serializer, BaseContext* ctx, double shutdown_timeout)
    : shared_(std::make_shared<Shared>()) {
  check_serializer(serializer);
  shared_->registry = &registry;
  shared_->address = std::move(address);
  shared_->authkey = authkey ? *authkey : Bytes(current_process().authkey().data);
  shared_->serializer = serializer;
  shared_->ctx = ctx;
  shared_->shutdown_timeout = shutdown_timeout;
}

BaseManager::~BaseManager() = default;

Registry& BaseManager::_registry() {
  static Registry registry("BaseManager");
  return registry;
}

const Registry& BaseManager::registry() const { return *shared_->registry; }

// [manager-start]
void BaseManager::start(Target initializer, Args initargs) {
  Shared& self = *shared_;
  auto state = static_cast<State>(self.state->load());
  if (state != State::INITIAL) {
    if (state == State::STARTED) throw ProcessError("Already started server");
    throw ProcessError("Manager has shut down");
  }
  // Python: reader, writer = connection.Pipe(duplex=False): the server sends
  // its address back on it.
  auto [reader, writer] = connection::Pipe(/*duplex=*/false);
  BaseContext& ctx = self.ctx ? *self.ctx : get_context();
  // The registry crosses by name (see managers.hpp): the class and the
  // typeids the server must find there.
  Object::List typeids;
  for (const auto& t : self.registry->typeids()) typeids.emplace_back(t);
  Object registry = Object::Tuple{{self.registry->class_name(), typeids}};
  Object address = self.address ? address_to_object(*self.address) : Object();
  Object::List initargs_list(initargs.begin(), initargs.end());
  self.process = ctx.Process({.target = &BaseManager::_run_server,
                              .args = {registry, address, self.authkey, self.serializer, Object(writer),
                                       initializer ? Object(initializer) : Object(), initargs_list}});
  std::string ident;
  for (int i : self.process->_identity()) ident += (ident.empty() ? "" : ":") + std::to_string(i);
  self.process->set_name(self.registry->class_name() + "-" + ident);
  self.process->start();
  writer.close();
  try {
    self.address = address_from_object(reader.recv());
  } catch (...) {
    self.process->join(self.shutdown_timeout);
    if (self.process->is_alive()) {
      self.process->kill();
      self.process->join();
    }
    throw;
  }
  reader.close();
  self.state->store(static_cast<int>(State::STARTED));
  self.shutdown = util::Finalize(
      [process = self.process.get(), address = *self.address, authkey = self.authkey, st = self.state,
       timeout = self.shutdown_timeout] { finalize_manager(process, address, authkey, st, timeout); },
      0, "_finalize_manager");
}
// [manager-start]

// [manager-run-server]
void BaseManager::_run_server(const Object& registry, const Object& address, const Bytes& authkey,
                              const std::string& serializer, connection::Connection& writer,
                              const Object& initializer, const Object& initargs) {
  // bpo-36368: ignore SIGINT in the server, so that a Ctrl-C at the terminal
  // (sent to the whole process group) leaves it to the parent to shut it down.
  std::signal(SIGINT, SIG_IGN);
  const Object::Tuple& r = as_tuple(registry, 2, "a manager registry");
  std::string class_name = r.items[0].as<std::string>();
  Registry* found = Registry::find(class_name);
  if (found == nullptr) {
    throw ValueError("no manager class " + py_repr(class_name) + " in the server process: make its registry "
                     "while the program's statics are initialized, so that spawn and forkserver servers have it");
  }
  for (const auto& t : args_of(r.items[1])) {
    if (!found->contains(t.as<std::string>())) {
      throw ValueError("typeid " + t.repr() + " of " + py_repr(class_name) +
                       " is not registered in the server process: register typeids while the program's "
                       "statics are initialized, so that spawn and forkserver servers have them");
    }
  }
  if (!initializer.is_none()) initializer.as<Target>()(args_of(initargs));
  std::optional<Address> addr;
  if (!address.is_none()) addr = address_from_object(address);
  Server server(*found, addr, authkey, serializer);
  // Python: writer.send(server.address); writer.close().
  writer.send(address_to_object(server.address()));
  writer.close();
  util::info("manager serving at " + connection::address_repr(server.address()));
  server.serve_forever();
}
// [manager-run-server]

void BaseManager::connect() {
  connection::Connection conn = client_connection(*shared_->address, shared_->authkey);
  dispatch(conn, Object(), "dummy");
  shared_->state->store(static_cast<int>(State::STARTED));
}

Server BaseManager::get_server() {
  auto state = static_cast<State>(shared_->state->load());
  if (state != State::INITIAL) {
    if (state == State::STARTED) throw ProcessError("Already started server");
    throw ProcessError("Manager has shut down");
  }
  return Server(*shared_->registry, shared_->address, shared_->authkey, shared_->serializer);
}

void BaseManager::shutdown() { shared_->shutdown(); }

void BaseManager::join(std::optional<double> timeout) {
  if (shared_->process) shared_->process->join(timeout);
}

const std::optional<Address>& BaseManager::address() const { return shared_->address; }
BaseManager::Scope BaseManager::enter() {
  if (_state() == State::INITIAL) start();
  if (_state() == State::SHUTDOWN) throw ProcessError("Manager has shut down");
  return Scope(*this);
}

BaseManager::Scope::~Scope() {
  try {
    manager_->shutdown();  // Python: __exit__
  } catch (const std::exception& e) {
    util::info(std::string("leaving a manager's scope: ") + e.what());  // a destructor must not throw
  }
}

BaseManager::State BaseManager::_state() const { return static_cast<State>(shared_->state->load()); }
BaseProcess* BaseManager::_process() const { return shared_->process.get(); }
const Bytes& BaseManager::_authkey() const { return shared_->authkey; }

std::pair<Token, std::vector<std::string>> BaseManager::_create(const std::string& typeid_, const Args& args,
                                                                const Kwds& kwds) {
  if (_state() != State::STARTED) throw AssertionError("server not yet started");
  Args full{typeid_};
  full.insert(full.end(), args.begin(), args.end());
  Object reply = control(*shared_->address, shared_->authkey, "create", full, kwds);
  const Object::Tuple& r = as_tuple(reply, 2, "create's reply");
  return {Token{typeid_, *shared_->address, r.items[0].as<std::string>()}, names_of(r.items[1])};
}

// [manager-proxy]
BaseProxy BaseManager::proxy(const std::string& typeid_, const Args& args, const Kwds& kwds) {
  TypeidEntry entry = shared_->registry->get(typeid_);
  auto [token, exposed] = _create(typeid_, args, kwds);
  BaseProxy proxy(make_proxy_state(token, entry.proxytype, shared_->authkey, exposed, true, shared_->registry,
                                   shared_->state));
  // Python: the proxy holds its own reference now; drop create's.
  control(*shared_->address, shared_->authkey, "decref", {token.id});
  return proxy;
}
// [manager-proxy]

std::string BaseManager::_debug_info() {
  return control(*shared_->address, shared_->authkey, "debug_info").as<std::string>();
}

std::int64_t BaseManager::_number_of_objects() {
  return control(*shared_->address, shared_->authkey, "number_of_objects").as<std::int64_t>();
}

// ------------------------------------------------------------------ SyncManager

namespace {
std::shared_ptr<Referent> make_dict(const Args& args, const Kwds& kwds) {
  auto d = std::make_shared<referents::DictReferent>();
  d->init(args, kwds);
  return d;
}
std::shared_ptr<Referent> make_list(const Args& args, const Kwds&) {
  check_count("list", args, 0, 1);
  return std::make_shared<referents::ListReferent>(args.empty() ? Object::List{} : items_of(args[0]));
}
std::shared_ptr<Referent> make_value(const Args& args, const Kwds&) {
  check_count("Value", args, 2, 3);
  return std::make_shared<referents::ValueReferent>(args[0].as<std::string>(), args[1]);
}
template <bool Bounded>
std::shared_ptr<Referent> make_semaphore(const Args& args, const Kwds&) {
  check_count(Bounded ? "BoundedSemaphore" : "Semaphore", args, 0, 1);
  return std::make_shared<referents::SemaphoreReferent>(args.empty() ? 1 : args[0].as<std::int64_t>(), Bounded);
}
std::shared_ptr<Referent> make_queue(const Args& args, const Kwds&) {
  check_count("Queue", args, 0, 1);
  return std::make_shared<referents::QueueReferent>(args.empty() ? 0 : args[0].as<std::int64_t>());
}
std::shared_ptr<Referent> make_barrier(const Args& args, const Kwds&) {
  check_count("Barrier", args, 1, 3);  // (parties, action=None, timeout=None): no action crosses
  if (args.size() > 1 && !args[1].is_none()) throw TypeError("Barrier: an action cannot cross to the server");
  std::optional<double> timeout;
  if (args.size() > 2 && !args[2].is_none()) timeout = args[2].as<double>();
  return std::make_shared<referents::BarrierReferent>(static_cast<int>(args[0].as<std::int64_t>()), timeout);
}
std::shared_ptr<Referent> make_array(const Args& args, const Kwds&) {
  check_count("Array", args, 2, 3);
  return std::make_shared<referents::ArrayReferent>(args[0].as<std::string>(), items_of(args[1]));
}
std::shared_ptr<Referent> make_pool(const Args& args, const Kwds& kwds) {
  auto p = bind_params("Pool", args, kwds, {"processes", "initializer", "initargs", "maxtasksperchild", "context"}, 0);
  if (!p[4].is_none()) throw TypeError("Pool: a context cannot cross to the manager");
  std::optional<int> processes;
  if (!p[0].is_none()) processes = static_cast<int>(p[0].as<std::int64_t>());
  std::optional<int> maxtasksperchild;
  if (!p[3].is_none()) maxtasksperchild = static_cast<int>(p[3].as<std::int64_t>());
  return std::make_shared<referents::PoolReferent>(processes, from_object<Target>(p[1]),
                                                   p[2].is_none() ? Args{} : args_of(p[2]), maxtasksperchild);
}
std::shared_ptr<Referent> make_namespace(const Args& args, const Kwds& kwds) {
  check_count("Namespace", args, 0, 0);
  return std::make_shared<referents::NamespaceReferent>(kwds);
}
}  // namespace

Registry& SyncManager::_registry() {
  static Registry& registry = [] () -> Registry& {
    static Registry r("SyncManager", &BaseManager::_registry());
    r.register_typeid("Event", [](const Args&, const Kwds&) { return std::make_shared<referents::EventReferent>(); },
                      "EventProxy");
    r.register_typeid("Lock", [](const Args&, const Kwds&) { return std::make_shared<referents::LockReferent>(false); },
                      "AcquirerProxy");
    r.register_typeid("RLock", [](const Args&, const Kwds&) { return std::make_shared<referents::LockReferent>(true); },
                      "AcquirerProxy");
    r.register_typeid("Semaphore", &make_semaphore<false>, "AcquirerProxy");
    r.register_typeid("Condition",
                      [](const Args& a, const Kwds&) {
                        check_count("Condition", a, 0, 0);  // no lock crosses: an RLock of its own
                        return std::make_shared<referents::ConditionReferent>();
                      },
                      "ConditionProxy");
    r.register_typeid("Barrier", &make_barrier, "BarrierProxy");
    r.register_typeid("BoundedSemaphore", &make_semaphore<true>, "AcquirerProxy");
    r.register_typeid("Queue", &make_queue);
    r.register_typeid("JoinableQueue", &make_queue);
    r.register_typeid("list", &make_list, "ListProxy");
    r.register_typeid("dict", &make_dict, "DictProxy");
    r.register_typeid("Value", &make_value, "ValueProxy");
    r.register_typeid("Array", &make_array, "ArrayProxy");
    r.register_typeid("Namespace", &make_namespace, "NamespaceProxy");
    r.register_typeid("Pool", &make_pool, "PoolProxy");
    r.register_typeid("Iterator", {}, "IteratorProxy", std::nullopt, std::nullopt, /*create_method=*/false);
    r.register_typeid("AsyncResult", {}, std::nullopt, std::nullopt, std::nullopt, /*create_method=*/false);
    return r;
  }();
  return registry;
}

namespace {
// The built-in registries exist in every process of the program from its
// start, so that a spawned server finds them by name.
const bool builtin_registries_made = [] {
  BaseManager::_registry();
  SyncManager::_registry();
  return true;
}();
}  // namespace

SyncManager::SyncManager(std::optional<Address> address, std::optional<Bytes> authkey, const std::string& serializer,
                         BaseContext* ctx, double shutdown_timeout)
    : BaseManager(_registry(), std::move(address), std::move(authkey), serializer, ctx, shutdown_timeout) {}

SyncManager::SyncManager(Registry& registry, std::optional<Address> address, std::optional<Bytes> authkey,
                         const std::string& serializer, BaseContext* ctx, double shutdown_timeout)
    : BaseManager(registry, std::move(address), std::move(authkey), serializer, ctx, shutdown_timeout) {}

DictProxy SyncManager::dict(const Object& init, const Kwds& kwds) {
  const auto* d = std::get_if<Object::Dict>(&init.variant());
  return DictProxy(proxy("dict", (d != nullptr && d->empty()) ? Args{} : Args{init}, kwds));
}
ListProxy SyncManager::list(const Object& init) {
  const auto* l = std::get_if<Object::List>(&init.variant());
  return ListProxy(proxy("list", (l != nullptr && l->empty()) ? Args{} : Args{init}));
}
ValueProxy SyncManager::Value(const std::string& typecode, const Object& value, bool lock) {
  return ValueProxy(proxy("Value", lock ? Args{typecode, value} : Args{typecode, value, lock}));
}
NamespaceProxy SyncManager::Namespace(const Kwds& kwds) { return NamespaceProxy(proxy("Namespace", {}, kwds)); }
AcquirerProxy SyncManager::Lock() { return AcquirerProxy(proxy("Lock")); }
AcquirerProxy SyncManager::RLock() { return AcquirerProxy(proxy("RLock")); }
AcquirerProxy SyncManager::Semaphore(std::int64_t value) { return AcquirerProxy(proxy("Semaphore", {value})); }
AcquirerProxy SyncManager::BoundedSemaphore(std::int64_t value) {
  return AcquirerProxy(proxy("BoundedSemaphore", {value}));
}
AutoProxy SyncManager::Queue(std::int64_t maxsize) { return AutoProxy(proxy("Queue", {maxsize})); }
AutoProxy SyncManager::JoinableQueue(std::int64_t maxsize) { return AutoProxy(proxy("JoinableQueue", {maxsize})); }
PoolProxy SyncManager::Pool(std::optional<int> processes, const Target& initializer, const Args& initargs,
                            std::optional<int> maxtasksperchild) {
  return PoolProxy(proxy("Pool", {optional_int_arg(processes), Object(initializer), Object(Object::Tuple{initargs}),
                                  optional_int_arg(maxtasksperchild)}));
}
EventProxy SyncManager::Event() { return EventProxy(proxy("Event")); }
ConditionProxy SyncManager::Condition() { return ConditionProxy(proxy("Condition")); }
BarrierProxy SyncManager::Barrier(std::int64_t parties, std::optional<double> timeout) {
  return BarrierProxy(proxy("Barrier", timeout ? Args{parties, Object(), *timeout} : Args{parties}));
}
ArrayProxy SyncManager::Array(const std::string& typecode, const Object& sequence) {
  return ArrayProxy(proxy("Array", {typecode, sequence}));
}


// ------------------------------------------------------------------ SharedMemoryManager

SharedMemoryTracker::~SharedMemoryTracker() {
  try {
    unlink();
  } catch (const std::exception& e) {
    util::info(std::string("SharedMemoryTracker: ") + e.what());  // a destructor must not throw
  }
}

void SharedMemoryTracker::register_segment(const std::string& segment_name) {
  util::debug("Register segment " + py_repr(segment_name) + " in pid " + std::to_string(os::getpid()));
  std::lock_guard guard(mutex_);
  segment_names_.push_back(segment_name);
}

void SharedMemoryTracker::destroy_segment(const std::string& segment_name) {
  util::debug("Destroy segment " + py_repr(segment_name) + " in pid " + std::to_string(os::getpid()));
  {
    std::lock_guard guard(mutex_);
    auto it = std::find(segment_names_.begin(), segment_names_.end(), segment_name);
    if (it == segment_names_.end()) throw ValueError("list.remove(x): x not in list");
    segment_names_.erase(it);
  }
  // Python: SharedMemory(segment_name).close(); .unlink(): attach by name
  // (shm_open), then shm_unlink, which also tells the resource tracker the
  // block is gone (the client registered it when it created it).
  shared_memory::SharedMemory segment(segment_name);
  segment.close();
  segment.unlink();
}

void SharedMemoryTracker::unlink() {
  for (const std::string& segment_name : segment_names()) {
    try {
      destroy_segment(segment_name);
    } catch (const FileNotFoundError&) {
      util::debug("segment " + py_repr(segment_name) + " was unlinked already");
    }
  }
}

std::vector<std::string> SharedMemoryTracker::segment_names() const {
  std::lock_guard guard(mutex_);
  return segment_names_;
}

namespace {
std::string address_text(const Address& address) {
  // Python: f"shm_{address}": a path as it is, a (host, port) tuple as its repr.
  if (const auto* path = std::get_if<std::string>(&address)) return *path;
  return address_to_object(address).repr();
}
}  // namespace

// getpid: the server process's pid names its tracker, as in Python.
SharedMemoryServer::SharedMemoryServer(const Address& address)
    : tracker_("shm_" + address_text(address) + "_" + std::to_string(os::getpid())) {
  util::debug("SharedMemoryServer started by pid " + std::to_string(os::getpid()));
}

std::vector<std::string> SharedMemoryServer::public_() const {
  return {"track_segment", "release_segment", "list_segments"};
}

Object SharedMemoryServer::request(connection::Connection&, const std::string& funcname, const Args& args) {
  if (funcname == "list_segments") {
    check_count(funcname, args, 0, 0);
    Object::List names;
    for (const std::string& name : tracker_.segment_names()) names.emplace_back(name);
    return names;
  }
  check_count(funcname, args, 1, 1);
  if (funcname == "track_segment") {
    tracker_.register_segment(args[0].as<std::string>());
  } else {
    tracker_.destroy_segment(args[0].as<std::string>());
  }
  return Object();
}

void SharedMemoryServer::shutdown(connection::Connection&) { tracker_.unlink(); }

Registry& SharedMemoryManager::_registry() {
  static Registry& registry = []() -> Registry& {
    static Registry r("SharedMemoryManager", &BaseManager::_registry());
    r.set_server_extension([](const Address& address) { return std::make_shared<SharedMemoryServer>(address); });
    return r;
  }();
  return registry;
}

namespace {
// Made in every process of the program from its start, as SyncManager's: a
// spawned server finds it by name.
const bool shared_memory_registry_made = [] {
  SharedMemoryManager::_registry();
  return true;
}();

/// Python: self._Client(self._address, ...) of a manager never started nor
/// connected: address_type(None) fails.
const Address& started_address(const BaseManager& manager) {
  if (!manager.address()) throw ValueError("address type of None unrecognized");
  return *manager.address();
}

/// Python: dispatch(conn, None, 'track_segment', (name,)) on a connection of
/// its own; on failure the block is unlinked again (Python: sms.unlink(); raise).
void track_segment(const Address& address, const Bytes& authkey, shared_memory::SharedMemory& segment) {
  try {
    control(address, authkey, "track_segment", {segment.name()});
  } catch (...) {
    segment.unlink();
    throw;
  }
}
}  // namespace

SharedMemoryManager::SharedMemoryManager(std::optional<Address> address, std::optional<Bytes> authkey,
                                         const std::string& serializer, BaseContext* ctx, double shutdown_timeout)
    : BaseManager(_registry(), std::move(address), std::move(authkey), serializer, ctx, shutdown_timeout) {
  // Python: resource_tracker.ensure_running() first, so that a server
  // started now shares this process's tracker (bpo-36867).
  resource_tracker::ensure_running();
}

shared_memory::SharedMemory SharedMemoryManager::SharedMemory(std::int64_t size) {
  const Address& address = started_address(*this);  // before any block is made
  shared_memory::SharedMemory sms(std::nullopt, /*create=*/true, size);
  track_segment(address, _authkey(), sms);
  return sms;
}

shared_memory::ShareableList SharedMemoryManager::ShareableList(const std::vector<Object>& sequence) {
  const Address& address = started_address(*this);
  shared_memory::ShareableList sl(sequence);
  track_segment(address, _authkey(), sl.shm());
  return sl;
}

}  // namespace multiprocessing::managers
