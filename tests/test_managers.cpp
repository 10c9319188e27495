// tests/test_managers.cpp — ports CPython's _TestContainers, _TestNamespace,
// _TestMyManager, _TestRemoteManager, _TestManagerRestart, TestInitializers
// (the manager parts of _test_multiprocessing.py), plus the manager's wire forms and its faults,
// under every start method.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "support.hpp"

namespace mp_test {

namespace managers = mp::managers;
using managers::AcquirerProxy;
using managers::ArrayProxy;
using managers::BarrierProxy;
using managers::ConditionProxy;
using managers::DictProxy;
using managers::EventProxy;
using managers::ListProxy;
using managers::NamespaceProxy;
using managers::ValueProxy;
using mp::Object;

namespace manager_tests {

/// Python: _TestMyManager's FooBar: f() returns 'f()', g() raises ValueError,
/// _h() is private (not exposed by default).
std::shared_ptr<managers::Referent> make_foobar(const mp::Args&, const managers::Kwds&) {
  auto foo = std::make_shared<managers::MethodsReferent>("FooBar");
  foo->def("f", [](const mp::Args&, const managers::Kwds&) { return Object("f()"); });
  foo->def("g", [](const mp::Args&, const managers::Kwds&) -> Object { throw mp::ValueError("g()"); });
  foo->def("_h", [](const mp::Args&, const managers::Kwds&) { return Object("_h()"); });
  return foo;
}

}  // namespace manager_tests

/// Python: class MyManager(BaseManager): pass; MyManager.register('Foo',
/// callable=FooBar); register('Bar', callable=FooBar, exposed=('f', '_h')).
class MyManager : public managers::BaseManager {
 public:
  explicit MyManager(mp::BaseContext* ctx = nullptr)
      : BaseManager(_registry(), std::nullopt, std::nullopt, "pickle", ctx, 1.0) {}
  static managers::Registry& _registry() {
    static managers::Registry registry("MyManager", &BaseManager::_registry());
    return registry;
  }
};

namespace {
// Registered while statics are initialized: a spawned server has them too.
const bool my_manager_registered = [] {
  MyManager::_registry().register_typeid("Foo", &manager_tests::make_foobar);
  MyManager::_registry().register_typeid("Bar", &manager_tests::make_foobar, std::nullopt,
                                         std::vector<std::string>{"f", "_h"});
  return true;
}();
}  // namespace

/// Python: _TestRemoteManager's QueueManager: get_queue returns the one
/// queue the server holds.
class QueueManager : public managers::BaseManager {
 public:
  QueueManager(std::optional<mp::connection::Address> address, mp::Bytes authkey)
      : BaseManager(_registry(), std::move(address), std::move(authkey), "pickle", nullptr, 1.0) {}
  static managers::Registry& _registry() {
    static managers::Registry registry("QueueManager", &BaseManager::_registry());
    return registry;
  }
};

/// Python: QueueManager2, which registers 'get_queue' without a callable:
/// a client of the same server.
class QueueManager2 : public managers::BaseManager {
 public:
  QueueManager2(std::optional<mp::connection::Address> address, mp::Bytes authkey)
      : BaseManager(_registry(), std::move(address), std::move(authkey), "pickle", nullptr, 1.0) {}
  static managers::Registry& _registry() {
    static managers::Registry registry("QueueManager2", &BaseManager::_registry());
    return registry;
  }
};

namespace manager_tests {

/// Python: _queue = pyqueue.Queue(); def get_queue(): return _queue.  The
/// queue lives in the server process (made there on first use).
std::shared_ptr<managers::Referent> get_queue(const mp::Args&, const managers::Kwds&) {
  static std::shared_ptr<managers::Referent> queue = mp::managers::SyncManager::_registry().get("Queue").callable({}, {});
  return queue;
}

}  // namespace manager_tests

namespace {
const bool queue_managers_registered = [] {
  QueueManager::_registry().register_typeid("get_queue", &manager_tests::get_queue);
  QueueManager2::_registry().register_typeid("get_queue");
  return true;
}();

// Python: FooProxy = MakeProxyType('FooProxy', ('f',)); MyManager.register('Baz', FooBar, proxytype=FooProxy).
const std::string foo_proxy_type = managers::MakeProxyType("FooProxy", {"f"});
const bool foo_proxy_registered =
    MyManager::_registry().register_typeid("Baz", &manager_tests::make_foobar, foo_proxy_type);
}  // namespace

namespace manager_tests {

/// A child that fills a shared dict and appends to a shared list.
void fill(DictProxy d, ListProxy l, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    d.setitem(i, i * i);
    l.append(i);
  }
}

/// The nested-dict pitfall (seed lesson): d['test'][idx] = idx changes a copy.
void pitfall(DictProxy d, std::int64_t idx) {
  Object::Dict inner = d.getitem("test").as<Object::Dict>();
  inner.emplace_back(idx, idx);  // a local copy: the manager's dict never sees it
}

/// The fix: read, modify, write back under a manager Lock.
void pitfall_fixed(DictProxy d, AcquirerProxy lock, std::int64_t idx) {
  std::lock_guard guard(lock);
  Object::Dict inner = d.getitem("test").as<Object::Dict>();
  inner.emplace_back(idx, idx);
  d.setitem("test", inner);
}

/// A forked child's one call through a proxy it inherited.
void set_one(DictProxy d, std::int64_t i) { d.setitem(i, i); }

/// Python: _TestNamespace / TestSyncManagerTypes._test_namespace: the child
/// sets attributes the parent reads.
void set_namespace(NamespaceProxy ns) {
  ns.setattr("x", std::int64_t{1});
  ns.setattr("y", "two");
}

/// TestSyncManagerTypes._test_value / _test_event: a child sets both.
void set_value_and_event(ValueProxy v, EventProxy e) {
  v.set(std::int64_t{42});
  e.set();
}

/// A client that dies without its decrefs (os._exit skips the finalizers).
void die_holding(DictProxy d) {
  d.setitem("child", "was here");
  mp::os::_exit(0);
}

/// TestSyncManagerTypes._test_queue: a child puts what the parent gets.
void put_items(managers::AutoProxy q) {
  q.call("put", {std::int64_t{1}});
  q.call("put", {"two"});
}

/// Python: _TestManagerRestart's server side: get_server().serve_forever() in
/// a process of its own, until a client sends 'shutdown'.
void serve_at(std::string host, std::int64_t port, mp::Bytes authkey) {
  managers::SyncManager manager(mp::connection::InetAddress{host, static_cast<int>(port)}, authkey);
  manager.get_server().serve_forever();
}

/// Python: TestSyncManagerTypes._test_condition: acquire, release.  Then
/// (beyond CPython) wake the parent, which waits on the condition.
void use_condition(ConditionProxy c) {
  c.acquire();
  c.release();
  c.acquire();
  c.notify();
  c.release();
}

/// Python: TestSyncManagerTypes._test_barrier: parties == 5, reset().
void use_barrier(BarrierProxy b) {
  if (b.parties() != 5) mp::os::_exit(3);
  b.reset();
}

/// The other party of a Barrier(2).
void wait_barrier(BarrierProxy b) { b.wait(60.0); }

/// Python: TestSyncManagerTypes._test_array: obj[0] == 0, obj[1] == 1,
/// len(obj) == 2, list(obj) == [0, 1].  Then (beyond CPython) obj[1] = 10.
void use_array(ArrayProxy a) {
  if (a.getitem(0) != Object(std::int64_t{0})) mp::os::_exit(3);
  if (a.getitem(1) != Object(std::int64_t{1})) mp::os::_exit(4);
  if (a.len() != 2) mp::os::_exit(5);
  if (a.tolist() != Object::List{std::int64_t{0}, std::int64_t{1}}) mp::os::_exit(6);
  a.setitem(1, std::int64_t{10});
}

/// Python: TestSyncManagerTypes._test_pool: `with obj: pass`, whose
/// __exit__ is terminate().
void use_pool(managers::PoolProxy pool) { pool.terminate(); }

/// The functions a manager's Pool runs (they cross by name).
std::int64_t square(std::int64_t x) { return x * x; }
std::int64_t multiply(std::int64_t a, std::int64_t b) { return a * b; }
std::int64_t fail_on_three(std::int64_t x) {
  if (x == 3) throw mp::ValueError("three is refused");
  return x;
}

/// Python: _TestRemoteManager._putter: a second client of the remote
/// manager puts the values on its queue.
void putter(std::string host, std::int64_t port, mp::Bytes authkey, Object values) {
  QueueManager2 manager(mp::connection::InetAddress{host, static_cast<int>(port)}, authkey);
  manager.connect();
  managers::AutoProxy queue(manager.proxy("get_queue"));
  queue.call("put", {values});
}

/// Python: TestInitializers' initializer(ns): ns.test += 1, in the new
/// manager's server process before it serves.
void initializer(NamespaceProxy ns) { ns.setattr("test", ns.getattr("test").as<std::int64_t>() + 1); }

/// A child calls a MakeProxyType proxy it was given.
void call_foo_proxy(managers::AutoProxy baz) {
  if (baz.proxytype() != "FooProxy" || baz.call("f") != Object("f()")) mp::os::_exit(3);
}

}  // namespace manager_tests

MP_REGISTER_TARGET(manager_tests::putter);
MP_REGISTER_TARGET(manager_tests::initializer);
MP_REGISTER_TARGET(manager_tests::call_foo_proxy);
MP_REGISTER_TARGET(manager_tests::use_pool);
MP_REGISTER_TARGET(manager_tests::square);
MP_REGISTER_TARGET(manager_tests::multiply);
MP_REGISTER_TARGET(manager_tests::fail_on_three);
MP_REGISTER_TARGET(manager_tests::use_condition);
MP_REGISTER_TARGET(manager_tests::use_barrier);
MP_REGISTER_TARGET(manager_tests::wait_barrier);
MP_REGISTER_TARGET(manager_tests::use_array);
MP_REGISTER_TARGET(manager_tests::serve_at);
MP_REGISTER_TARGET(manager_tests::put_items);
MP_REGISTER_TARGET(manager_tests::die_holding);
MP_REGISTER_TARGET(manager_tests::fill);
MP_REGISTER_TARGET(manager_tests::pitfall);
MP_REGISTER_TARGET(manager_tests::pitfall_fixed);
MP_REGISTER_TARGET(manager_tests::set_namespace);
MP_REGISTER_TARGET(manager_tests::set_value_and_event);

class TestContainers : public WithStartMethod {};
class TestNamespace : public WithStartMethod {};
class TestMyManager : public WithStartMethod {};
class TestManagerRestart : public WithStartMethod {};
class TestManagerFaults : public WithStartMethod {};
class TestSyncManagerTypes : public WithStartMethod {};
class TestRemoteManager : public WithStartMethod {};
class TestInitializers : public WithStartMethod {};

Object::List ints(std::initializer_list<std::int64_t> values) {
  Object::List out;
  for (auto v : values) out.emplace_back(v);
  return out;
}

/// _TestContainers.test_list.
TEST_P(TestContainers, List) {
  auto manager = mp::Manager();
  ListProxy a = manager.list(ints({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(a._getvalue(), Object(ints({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})));
  EXPECT_EQ(a.len(), 10);
  ListProxy b = manager.list();
  EXPECT_EQ(b._getvalue(), Object(Object::List{}));
  b.extend(ints({0, 1, 2, 3, 4}));
  EXPECT_EQ(b._getvalue(), Object(ints({0, 1, 2, 3, 4})));
  EXPECT_EQ(b.getitem(2), Object(std::int64_t{2}));
  b.setitem(2, std::int64_t{100});
  EXPECT_EQ(b.getitem(2), Object(std::int64_t{100}));
  b.delitem(2);
  EXPECT_EQ(b._getvalue(), Object(ints({0, 1, 3, 4})));
  b.imul(2);
  EXPECT_EQ(b._getvalue(), Object(ints({0, 1, 3, 4, 0, 1, 3, 4})));
  EXPECT_EQ(b.add(ints({5, 6})), ints({0, 1, 3, 4, 0, 1, 3, 4, 5, 6}));
  EXPECT_EQ(b._getvalue(), Object(ints({0, 1, 3, 4, 0, 1, 3, 4})));  // + made a new list
  b.iadd(ints({7}));
  EXPECT_EQ(b.count(std::int64_t{4}), 2);
  EXPECT_EQ(b.index(std::int64_t{7}), 8);
  EXPECT_TRUE(b.contains(std::int64_t{3}));
  b.insert(0, std::int64_t{-1});
  b.remove(std::int64_t{7});
  EXPECT_EQ(b.pop(), Object(std::int64_t{4}));
  b.sort();
  EXPECT_EQ(b._getvalue(), Object(ints({-1, 0, 0, 1, 1, 3, 3, 4})));
  b.sort(/*reverse=*/true);
  b.reverse();
  EXPECT_EQ(b._getvalue(), Object(ints({-1, 0, 0, 1, 1, 3, 3, 4})));
  EXPECT_EQ(b.str(), "[-1, 0, 0, 1, 1, 3, 3, 4]");
  EXPECT_EQ(a.mul(0), Object::List{});
}

/// _TestContainers.test_list_iter: iter(list_proxy) walks it with
/// __getitem__, so it ends exhausted, and sees a change made after iter().
TEST_P(TestContainers, ListIter) {
  auto manager = mp::Manager();
  ListProxy a = manager.list(ints({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  managers::SequenceIterator it = a.iter();
  EXPECT_EQ(it.rest(), ints({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(it.rest(), Object::List{});  // exhausted
  // list modified during iteration
  it = a.iter();
  a.setitem(0, std::int64_t{100});
  EXPECT_EQ(it.next(), Object(std::int64_t{100}));
}

/// _TestContainers.test_nested_queue: a Queue proxy stored in a managed list
/// and in a managed dict comes back as a proxy of the same queue.
TEST_P(TestContainers, NestedQueue) {
  auto manager = mp::Manager();
  ListProxy a = manager.list();  // Test queue inside list
  a.append(manager.Queue());
  a.getitem(0).as<managers::AutoProxy>().call("put", {std::int64_t{123}});
  EXPECT_EQ(a.getitem(0).as<managers::AutoProxy>().call("get"), Object(std::int64_t{123}));
  DictProxy b = manager.dict();  // Test queue inside dict
  b.setitem(std::int64_t{0}, manager.Queue());
  b.getitem(std::int64_t{0}).as<managers::AutoProxy>().call("put", {std::int64_t{456}});
  EXPECT_EQ(b.getitem(std::int64_t{0}).as<managers::AutoProxy>().call("get"), Object(std::int64_t{456}));
}

/// _TestContainers.test_list_proxy_in_list / test_dict_proxy_nested: a proxy
/// stored in a managed container stays a proxy, sharing its referent.
TEST_P(TestContainers, NestedProxies) {
  auto manager = mp::Manager();
  ListProxy inner = manager.list(ints({1}));
  ListProxy outer = manager.list();
  outer.append(inner);
  inner.append(std::int64_t{2});
  ListProxy again = outer.getitem(0).as<ListProxy>();
  EXPECT_EQ(again._getvalue(), Object(ints({1, 2})));
  again.append(std::int64_t{3});
  EXPECT_EQ(inner._getvalue(), Object(ints({1, 2, 3})));

  DictProxy pets = manager.dict(Object::Dict{{"ferrets", std::int64_t{2}}, {"hamsters", std::int64_t{4}}});
  DictProxy supplies = manager.dict(Object::Dict{{"water", std::int64_t{10}}, {"feed", std::int64_t{3}}});
  DictProxy d = manager.dict(Object::Dict{{"pets", pets}, {"supplies", supplies}});
  d.getitem("supplies").as<DictProxy>().setitem("water", std::int64_t{7});
  EXPECT_EQ(supplies.getitem("water"), Object(std::int64_t{7}));
  EXPECT_EQ(d.getitem("pets").as<DictProxy>().getitem("hamsters"), Object(std::int64_t{4}));
}

/// _TestContainers.test_dict.
TEST_P(TestContainers, Dict) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  Object::Dict expected;
  for (std::int64_t i = 5; i < 16; ++i) {
    d.setitem(i, std::string(1, static_cast<char>('A' + i)));
    expected.emplace_back(i, std::string(1, static_cast<char>('A' + i)));
  }
  EXPECT_EQ(d.copy(), expected);
  EXPECT_EQ(d._getvalue(), Object(expected));
  Object::List keys, values, items;
  for (const auto& [k, v] : expected) {
    keys.push_back(k);
    values.push_back(v);
    items.emplace_back(Object::Tuple{{k, v}});
  }
  EXPECT_EQ(d.keys(), keys);
  EXPECT_EQ(d.values(), values);
  EXPECT_EQ(d.items(), items);
  EXPECT_EQ(d.len(), 11);
  EXPECT_TRUE(d.contains(std::int64_t{5}));
  EXPECT_EQ(d.get(std::int64_t{99}, "no"), Object("no"));
  EXPECT_EQ(d.pop(std::int64_t{5}), Object("F"));
  EXPECT_EQ(d.setdefault(std::int64_t{5}, "x"), Object("x"));
  d.update(Object::Dict{{"a", std::int64_t{1}}}, {{"b", std::int64_t{2}}});
  EXPECT_EQ(d.getitem("b"), Object(std::int64_t{2}));
  d.delitem("a");
  EXPECT_FALSE(d.contains("a"));
  d.clear();
  EXPECT_EQ(d.len(), 0);
  // An exception raised by the referent's method reaches the caller: type and message.
  try {
    d.getitem("missing");
    FAIL() << "no KeyError";
  } catch (const mp::KeyError& e) {
    EXPECT_STREQ(e.what(), "missing");
  }
  EXPECT_THROW(d.popitem(), mp::KeyError);
}

/// _TestContainers: a dict's __iter__ comes back as an Iterator proxy ('#PROXY').
TEST_P(TestContainers, DictIterator) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict(Object::Dict{{"a", std::int64_t{1}}, {"b", std::int64_t{2}}});
  managers::AutoProxy it = d._callmethod("__iter__").as<managers::AutoProxy>();
  EXPECT_EQ(it._token().typeid_, "Iterator");
  EXPECT_EQ(it.proxytype(), "IteratorProxy");
  EXPECT_EQ(it._callmethod("__next__"), Object("a"));
  EXPECT_EQ(it._callmethod("__next__"), Object("b"));
  EXPECT_THROW(it._callmethod("__next__"), mp::StopIteration);
}

/// CPython's server calls getattr(obj, name)(*args, **kwds): keyword
/// arguments to a builtin dict's or list's method that takes none are a
/// TypeError (CPython's text, wrapper or method), raised before the count of
/// the positional ones is checked, and nothing changes; update() and sort()
/// take theirs.
TEST_P(TestContainers, KeywordArgumentsRefused) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  managers::ListProxy l = manager.list(Object::List{std::int64_t{2}, std::int64_t{1}});
  auto type_error = [](const std::function<void()>& call) -> std::string {
    try {
      call();
    } catch (const mp::TypeError& e) {
      return e.what();
    }
    return "no TypeError";
  };
  const managers::Kwds x{{"x", std::int64_t{3}}};
  EXPECT_EQ(type_error([&] { d._callmethod("__setitem__", {std::int64_t{1}, std::int64_t{2}}, x); }),
            "wrapper __setitem__() takes no keyword arguments");
  EXPECT_EQ(type_error([&] { d._callmethod("__setitem__", {std::int64_t{1}}, x); }),
            "wrapper __setitem__() takes no keyword arguments");
  EXPECT_EQ(type_error([&] { d._callmethod("__getitem__", {std::int64_t{1}}, x); }),
            "dict.__getitem__() takes no keyword arguments");
  EXPECT_EQ(type_error([&] { d._callmethod("__contains__", {std::int64_t{1}}, x); }),
            "dict.__contains__() takes no keyword arguments");
  EXPECT_EQ(type_error([&] { d._callmethod("get", {std::int64_t{1}}, x); }), "dict.get() takes no keyword arguments");
  EXPECT_EQ(type_error([&] { l._callmethod("append", {std::int64_t{3}}, x); }),
            "list.append() takes no keyword arguments");
  EXPECT_EQ(type_error([&] { l._callmethod("__contains__", {std::int64_t{1}}, x); }),
            "wrapper __contains__() takes no keyword arguments");
  EXPECT_EQ(d.len(), 0);
  EXPECT_EQ(l.len(), 2);
  d.update(Object::Dict{}, {{"a", std::int64_t{1}}});
  EXPECT_EQ(d.getitem("a"), Object(std::int64_t{1}));
  l._callmethod("sort", {}, {{"reverse", true}});
  EXPECT_EQ(l._getvalue(), Object(Object::List{std::int64_t{2}, std::int64_t{1}}));
}

/// A managed dict's keys compare as Python's do: ints exactly (2**53 and
/// 2**53 + 1 are two keys, though one double), and 1 == 1.0 == True.
TEST_P(TestContainers, DictKeysCompareAsPython) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  const std::int64_t big = std::int64_t{1} << 53;
  d.setitem(big, "a");
  d.setitem(big + 1, "b");
  EXPECT_EQ(d.len(), 2);
  EXPECT_EQ(d.getitem(big + 1), Object("b"));
  d.setitem(std::int64_t{1}, "int");
  d.setitem(1.0, "float");
  d.setitem(true, "bool");
  EXPECT_EQ(d.len(), 3);
  EXPECT_EQ(d.getitem(std::int64_t{1}), Object("bool"));
}

/// A managed dict finds its keys by hash and keeps Python's insertion order
/// through growth, deletions, pop, popitem and setdefault; str, bytes, tuple
/// and float keys are found as well as ints.
TEST_P(TestContainers, DictFindsKeysInInsertionOrder) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  Object::List expected;
  for (std::int64_t i = 0; i < 100; ++i) {
    d.setitem(i * 7, i);
    expected.emplace_back(i * 7);
  }
  d.setitem("s", std::int64_t{1});
  d.setitem(mp::Bytes("s"), std::int64_t{2});
  d.setitem(Object::Tuple{{std::int64_t{1}, "x"}}, std::int64_t{3});
  d.setitem(2.5, std::int64_t{4});
  d.delitem(std::int64_t{0});
  EXPECT_EQ(d.pop(std::int64_t{7}), Object(std::int64_t{1}));
  EXPECT_EQ(d.popitem(), Object(Object::Tuple{{2.5, std::int64_t{4}}}));
  d.setitem(std::int64_t{0}, "again");  // a deleted key comes back at the end
  EXPECT_EQ(d.setdefault(std::int64_t{14}, "unused"), Object(std::int64_t{2}));
  EXPECT_EQ(d.setdefault(std::int64_t{-1}, "new"), Object("new"));
  expected.erase(expected.begin(), expected.begin() + 2);
  expected.emplace_back("s");
  expected.emplace_back(mp::Bytes("s"));
  expected.emplace_back(Object::Tuple{{std::int64_t{1}, "x"}});
  expected.emplace_back(std::int64_t{0});
  expected.emplace_back(std::int64_t{-1});
  EXPECT_EQ(d.keys(), expected);
  for (std::int64_t i = 2; i < 100; ++i) EXPECT_EQ(d.getitem(i * 7), Object(i));
  EXPECT_EQ(d.getitem(98.0), Object(std::int64_t{14}));  // 98.0 == 98
  EXPECT_EQ(d.getitem("s"), Object(std::int64_t{1}));
  EXPECT_EQ(d.getitem(mp::Bytes("s")), Object(std::int64_t{2}));
  EXPECT_EQ(d.getitem(Object::Tuple{{std::int64_t{1}, "x"}}), Object(std::int64_t{3}));
  EXPECT_FALSE(d.contains(std::int64_t{7}));
  EXPECT_FALSE(d.contains(2.5));
  EXPECT_EQ(d.len(), 103);
  d.clear();
  EXPECT_FALSE(d.contains(std::int64_t{14}));
  d.setitem(std::int64_t{14}, "after clear");
  EXPECT_EQ(d.getitem(std::int64_t{14}), Object("after clear"));
}

/// Removals leave places behind until they are dropped together: whatever
/// mix of removals, reads and insertions, the dict shows Python's value,
/// order and length (every other key of 300 removed, then most of the rest,
/// popitem skipping removed places at the end, keys re-added at the end).
TEST_P(TestContainers, DictKeepsOrderThroughManyRemovals) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  Object::List expected;
  for (std::int64_t i = 0; i < 300; ++i) d.setitem(i, i * i);
  for (std::int64_t i = 0; i < 300; i += 2) d.delitem(i);  // half removed: places kept, or dropped at once
  for (std::int64_t i = 1; i < 300; i += 2) expected.emplace_back(i);
  EXPECT_EQ(d.len(), 150);
  EXPECT_EQ(d.keys(), expected);
  EXPECT_EQ(d.getitem(std::int64_t{299}), Object(std::int64_t{299 * 299}));
  EXPECT_FALSE(d.contains(std::int64_t{298}));
  // Remove from the end, then popitem: the removed places at the end are
  // skipped, the last key left comes out.
  d.delitem(std::int64_t{299});
  EXPECT_EQ(d.pop(std::int64_t{297}), Object(std::int64_t{297 * 297}));
  EXPECT_EQ(d.popitem(), Object(Object::Tuple{{std::int64_t{295}, std::int64_t{295 * 295}}}));
  expected.resize(expected.size() - 3);
  // A removed key comes back at the end; a kept key's value changes in place.
  d.setitem(std::int64_t{0}, "zero");
  d.setitem(std::int64_t{1}, "one");
  expected.emplace_back(std::int64_t{0});
  EXPECT_EQ(d.keys(), expected);
  EXPECT_EQ(d.len(), static_cast<std::int64_t>(expected.size()));
  // Insertions and removals interleaved, many more than the dict ever holds.
  for (std::int64_t i = 1000; i < 3000; ++i) {
    d.setitem(i, i);
    d.delitem(i);
  }
  EXPECT_EQ(d.keys(), expected);
  Object::Dict copy = d.copy();
  ASSERT_EQ(copy.size(), expected.size());
  EXPECT_EQ(copy.front().second, Object("one"));
  EXPECT_EQ(copy.back().second, Object("zero"));
  while (d.len() > 0) d.popitem();
  EXPECT_EQ(d._getvalue(), Object(Object::Dict{}));
  EXPECT_THROW(d.popitem(), mp::KeyError);
}

/// The seed lessons: children fill a shared dict and list; the nested-dict
/// pitfall leaves {'test': {}}, and its fix with a manager Lock does not.
TEST_P(TestContainers, ChildrenAndPitfall) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  ListProxy l = manager.list();
  {
    auto p = mp::Process({.target = &manager_tests::fill, .args = {d, l, std::int64_t{5}}});
    p.start();
    join_process(p);
    EXPECT_EQ(p.exitcode(), 0);
  }
  EXPECT_EQ(d.len(), 5);
  EXPECT_EQ(d.getitem(std::int64_t{4}), Object(std::int64_t{16}));
  EXPECT_EQ(l._getvalue(), Object(ints({0, 1, 2, 3, 4})));

  DictProxy nested = manager.dict(Object::Dict{{"test", Object::Dict{}}});
  std::vector<std::unique_ptr<mp::Process>> ps;
  for (std::int64_t i = 0; i < 3; ++i) {
    ps.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{.target = &manager_tests::pitfall, .args = {nested, i}}));
    ps.back()->start();
  }
  for (auto& p : ps) join_process(*p);
  EXPECT_EQ(nested.str(), "{'test': {}}");

  AcquirerProxy lock = manager.Lock();
  ps.clear();
  for (std::int64_t i = 0; i < 3; ++i) {
    ps.push_back(std::make_unique<mp::Process>(
        mp::ProcessOptions{.target = &manager_tests::pitfall_fixed, .args = {nested, lock, i}}));
    ps.back()->start();
  }
  for (auto& p : ps) join_process(*p);
  EXPECT_EQ(nested.getitem("test").as<Object::Dict>().size(), 3u);
}

/// Proxies in threads: each thread calls over a connection of its own (Python:
/// the `_tls` connection), so calls from several threads do not mix replies.
TEST_P(TestContainers, Threads) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  std::vector<std::thread> threads;
  for (std::int64_t t = 0; t < 4; ++t) {
    threads.emplace_back([d, t] {
      for (std::int64_t i = 0; i < 50; ++i) {
        d.setitem(t * 100 + i, i);
        EXPECT_EQ(d.getitem(t * 100 + i), Object(i));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(d.len(), 200);
}

/// _TestNamespace.test_namespace.
TEST_P(TestNamespace, Namespace) {
  auto manager = mp::Manager();
  NamespaceProxy n = manager.Namespace();
  n.setattr("name", "Bob");
  n.setattr("job", "Builder");
  n.setattr("_hidden", "hidden");
  EXPECT_EQ(n.getattr("name"), Object("Bob"));
  EXPECT_EQ(n.getattr("job"), Object("Builder"));
  EXPECT_EQ(n.getattr("_hidden"), Object("hidden"));
  EXPECT_EQ(n.str(), "Namespace(job='Builder', name='Bob')");
  n.delattr("job");
  EXPECT_EQ(n.str(), "Namespace(name='Bob')");
  EXPECT_THROW(n.getattr("job"), mp::AttributeError);
  NamespaceProxy m = manager.Namespace({{"a", std::int64_t{1}}});
  auto p = mp::Process({.target = &manager_tests::set_namespace, .args = {m}});
  p.start();
  join_process(p);
  EXPECT_EQ(m.getattr("x"), Object(std::int64_t{1}));
  EXPECT_EQ(m.getattr("y"), Object("two"));
  EXPECT_EQ(m.str(), "Namespace(a=1, x=1, y='two')");
}

/// _TestMyManager.test_mymanager (+ common): default exposed = public methods,
/// an explicit list may hold private ones; a remote ValueError is a ValueError;
/// a method not exposed is a RemoteError; shutdown leaves exitcode 0.
TEST_P(TestMyManager, MyManager) {
  MyManager manager;
  manager.start();
  managers::AutoProxy foo = manager.proxy("Foo");
  managers::AutoProxy bar = manager.proxy("Bar");
  EXPECT_EQ(foo._exposed(), (std::vector<std::string>{"f", "g"}));
  EXPECT_EQ(bar._exposed(), (std::vector<std::string>{"f", "_h"}));
  EXPECT_EQ(foo.call("f"), Object("f()"));
  try {
    foo.call("g");
    FAIL() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "g()");
  }
  EXPECT_THROW(foo.call("_h"), mp::AttributeError);  // not exposed: refused locally
  try {
    foo._callmethod("_h");
    FAIL() << "no RemoteError";
  } catch (const managers::RemoteError& e) {
    EXPECT_NE(e.traceback().find("AttributeError: method '_h' of 'FooBar' object is not in exposed=('f', 'g')"),
              std::string::npos)
        << e.traceback();
    EXPECT_NE(e.traceback().find("KeyError: '_h'"), std::string::npos) << e.traceback();
  }
  EXPECT_EQ(bar.call("_h"), Object("_h()"));
  EXPECT_EQ(manager._number_of_objects(), 2);
  EXPECT_EQ(manager._process()->name(), "MyManager-" + std::to_string(manager._process()->_identity().back()));
  manager.shutdown();
  EXPECT_EQ(manager._process()->exitcode(), 0);
  EXPECT_EQ(manager._state(), managers::BaseManager::State::SHUTDOWN);
  EXPECT_THROW(manager.start(), mp::ProcessError);  // "Manager has shut down"
}

/// What _TestMyManager.common checks of Foo and Bar.
void common(MyManager& manager) {
  managers::AutoProxy foo = manager.proxy("Foo");
  managers::AutoProxy bar = manager.proxy("Bar");
  EXPECT_EQ(foo._exposed(), (std::vector<std::string>{"f", "g"}));
  EXPECT_EQ(bar._exposed(), (std::vector<std::string>{"f", "_h"}));
  EXPECT_EQ(foo.call("f"), Object("f()"));
  EXPECT_THROW(foo.call("g"), mp::ValueError);
  EXPECT_EQ(foo._callmethod("f"), Object("f()"));
  EXPECT_THROW(foo._callmethod("_h"), managers::RemoteError);
  EXPECT_EQ(bar.call("f"), Object("f()"));
  EXPECT_EQ(bar.call("_h"), Object("_h()"));
  EXPECT_EQ(bar._callmethod("f"), Object("f()"));
  EXPECT_EQ(bar._callmethod("_h"), Object("_h()"));
}

/// _TestMyManager.test_mymanager_context: `with manager:` starts the
/// manager and shuts it down at the end of the block.
TEST_P(TestMyManager, MymanagerContext) {
  MyManager manager;
  {
    auto with = manager.enter();
    EXPECT_EQ(manager._state(), managers::BaseManager::State::STARTED);
    common(manager);
  }
  EXPECT_EQ(manager._state(), managers::BaseManager::State::SHUTDOWN);
  // bpo-30356: a slow server may be terminated after shutdown_timeout.
  EXPECT_TRUE(manager._process()->exitcode() == 0 || manager._process()->exitcode() == -SIGTERM)
      << manager._process()->exitcode().value_or(99);
  EXPECT_THROW(manager.enter(), mp::ProcessError);  // "Manager has shut down"
}

/// _TestMyManager.test_mymanager_context_prestarted: `with` on a started
/// manager uses it as it is, and shuts it down.
TEST_P(TestMyManager, MymanagerContextPrestarted) {
  MyManager manager;
  manager.start();
  {
    auto with = manager.enter();
    common(manager);
  }
  EXPECT_EQ(manager._process()->exitcode(), 0);
}

/// MakeProxyType: the Baz typeid's FooProxy exposes f only; its proxies
/// pickle under their type's name and reach a child under every start method.
TEST_P(TestMyManager, MakeProxyType) {
  EXPECT_EQ(managers::proxy_exposed("FooProxy"), std::vector<std::string>{"f"});
  EXPECT_EQ(managers::MakeProxyType("FooProxy", {"f"}), "FooProxy");  // the same again: harmless
  EXPECT_THROW(managers::MakeProxyType("FooProxy", {"f", "g"}), mp::ValueError);
  EXPECT_THROW(managers::MakeProxyType("DictProxy", {"f"}), mp::ValueError);
  MyManager manager;
  manager.start();
  managers::AutoProxy baz = manager.proxy("Baz");
  EXPECT_EQ(baz.proxytype(), "FooProxy");
  EXPECT_EQ(baz._exposed(), std::vector<std::string>{"f"});
  EXPECT_EQ(baz.call("f"), Object("f()"));
  try {
    baz.call("g");
    FAIL() << "no AttributeError";
  } catch (const mp::AttributeError& e) {
    EXPECT_STREQ(e.what(), "'FooProxy' object has no attribute 'g'");
  }
  EXPECT_THROW(baz._callmethod("g"), managers::RemoteError);  // the server refuses it too
  const Object pickled = baz._reduce();
  const Object::Reduced* reduced = pickled.reduced();
  ASSERT_NE(reduced, nullptr);
  const Object::Global* proxy_type = reduced->args.at(0).global();
  ASSERT_NE(proxy_type, nullptr);
  EXPECT_EQ(*proxy_type, (Object::Global{"multiprocessing.managers", "FooProxy"}));
  auto p = mp::Process({.target = &manager_tests::call_foo_proxy, .args = {baz}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
}

/// _TestRemoteManager.test_remote: a manager served over TCP; a child
/// process and this one reach its queue as clients of a class that only
/// names the typeid.  (Python's test uses the xmlrpclib serializer, which is
/// not ported: pickle here, so the tuple arrives as a tuple.)
TEST_P(TestRemoteManager, Remote) {
  mp::Bytes authkey(mp::os::urandom(32));
  QueueManager manager(mp::connection::InetAddress{"127.0.0.1", 0}, authkey);
  manager.start();
  const auto address = std::get<mp::connection::InetAddress>(*manager.address());
  Object values = Object::Tuple{{"hello world", Object(), true, 2.25, "hall\xc3\xa5 v\xc3\xa4rlden",
                                 "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd1\x96\xd1\x82 "
                                 "\xd1\x81\xd0\xb2\xd1\x96\xd1\x82",
                                 mp::Bytes(std::string("hall\xe5 v\xe4rlden"))}};
  auto p = mp::Process({.target = &manager_tests::putter,
                        .args = {address.first, std::int64_t{address.second}, authkey, values},
                        .daemon = true});
  p.start();
  QueueManager2 manager2(*manager.address(), authkey);
  manager2.connect();
  managers::AutoProxy queue(manager2.proxy("get_queue"));
  EXPECT_EQ(queue.call("get", {true, 60.0}), values);
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  // A value that cannot be pickled fails the call in this client.
  EXPECT_THROW(queue.call("put", {Object(mp::Target([] {}))}), mp::PicklingError);
  manager.shutdown();
}

/// TestInitializers.test_manager_initializer: start(initializer, initargs)
/// runs initializer(*initargs) in the server process before it serves.
/// (Python's start(1) TypeError is a compile error here: a Target is typed.)
TEST_P(TestInitializers, ManagerInitializer) {
  auto mgr = mp::Manager();
  NamespaceProxy ns = mgr.Namespace();
  ns.setattr("test", std::int64_t{0});
  managers::SyncManager m;
  m.start(&manager_tests::initializer, {ns});
  EXPECT_EQ(ns.getattr("test"), Object(std::int64_t{1}));
  m.shutdown();
  m.join();
}

/// _TestMyManager: proxies release their objects when their last copy dies.
TEST_P(TestMyManager, Refcounts) {
  auto manager = mp::Manager();
  {
    DictProxy d = manager.dict();
    DictProxy copy = d;
    ListProxy l = manager.list();
    EXPECT_EQ(manager._number_of_objects(), 2);
  }
  EXPECT_EQ(manager._number_of_objects(), 0);
  EXPECT_TRUE(manager._debug_info().empty());
}

/// Faults: a client that dies without decref.  As in CPython, its reference
/// stays until the manager shuts down (increfs come on one-shot connections,
/// so the server cannot tell whose they were); shutting down frees it all.
TEST_P(TestMyManager, ClientDiesWithoutDecref) {
  auto manager = mp::Manager();
  {
    DictProxy d = manager.dict();
    auto p = mp::Process({.target = &manager_tests::die_holding, .args = {d}});
    p.start();
    join_process(p);
    EXPECT_EQ(d.getitem("child"), Object("was here"));
  }
  EXPECT_EQ(manager._number_of_objects(), 1);  // the child's reference
  manager.shutdown();
  EXPECT_EQ(manager._process()->exitcode(), 0);
}

/// _TestManagerRestart.test_rapid_restart (in part): a manager at a TCP
/// address, a child that connect()s by address and authkey, a second manager on
/// the same address once the first is shut down.
TEST_P(TestManagerRestart, Restart) {
  int port;
  {
    mp::connection::Listener probe(mp::connection::InetAddress{"127.0.0.1", 0});
    port = std::get<mp::connection::InetAddress>(probe.address()).second;
  }
  mp::Bytes authkey("abc");
  for (int round = 0; round < 2; ++round) {
    managers::SyncManager manager(mp::connection::InetAddress{"127.0.0.1", port}, authkey);
    manager.start();
    DictProxy d = manager.dict();
    managers::SyncManager client(mp::connection::InetAddress{"127.0.0.1", port}, authkey);
    client.connect();
    DictProxy theirs = DictProxy(managers::BaseProxy(d._token(), "DictProxy", authkey));
    theirs.setitem("round", std::int64_t{round});
    EXPECT_EQ(d.getitem("round"), Object(std::int64_t{round}));
    managers::SyncManager wrong(mp::connection::InetAddress{"127.0.0.1", port}, mp::Bytes("wrong"));
    EXPECT_THROW(wrong.connect(), mp::AuthenticationError);
    EXPECT_EQ(d.len(), 1);  // the server goes on serving others
  }
}

/// _TestManagerRestart: a server run with get_server().serve_forever() in a
/// child, used by a connect()ed client, stopped by a 'shutdown' request: the
/// serving process exits 0.
TEST_P(TestManagerRestart, ServeForever) {
  int port;
  {
    mp::connection::Listener probe(mp::connection::InetAddress{"127.0.0.1", 0});
    port = std::get<mp::connection::InetAddress>(probe.address()).second;
  }
  mp::Bytes authkey("served");
  auto p = mp::Process({.target = &manager_tests::serve_at, .args = {"127.0.0.1", std::int64_t{port}, authkey}});
  p.start();
  managers::SyncManager client(mp::connection::InetAddress{"127.0.0.1", port}, authkey);
  EXPECT_TRUE(wait_until([&] {
    try {
      client.connect();
      return true;
    } catch (const mp::OSError&) {
      return false;  // not listening yet
    }
  }));
  {
    DictProxy d = client.dict(Object::Dict{{"k", "v"}});
    EXPECT_EQ(d.getitem("k"), Object("v"));
    EXPECT_EQ(client._number_of_objects(), 1);
  }
  EXPECT_EQ(client._number_of_objects(), 0);
  auto conn = mp::connection::Client(mp::connection::InetAddress{"127.0.0.1", port}, std::nullopt, authkey);
  managers::dispatch(conn, Object(), "shutdown");
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
}

/// Faults: a server that dies makes proxy calls fail promptly (EOFError or
/// OSError), not hang; garbage on a method connection fails that connection only.
TEST_P(TestManagerFaults, ServerDies) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  d.setitem("a", std::int64_t{1});
  ::kill(*manager._process()->pid(), SIGKILL);
  manager._process()->join(10.0);
  double start = mp::os::monotonic();
  try {
    d.getitem("a");
    FAIL() << "no error";
  } catch (const mp::EOFError&) {
  } catch (const mp::OSError&) {
  }
  EXPECT_THROW(d.getitem("a"), mp::OSError);  // reconnecting: refused
  EXPECT_LT(mp::os::monotonic() - start, 5.0);
  // The killed server could not remove its socket file and its temp
  // directory; shutdown() removes them once it has reaped the server (a
  // CPython manager leaves both).
  const std::string socket = std::get<std::string>(*manager.address());
  manager.shutdown();
  EXPECT_NE(::access(socket.c_str(), F_OK), 0) << socket;
}

TEST_P(TestManagerFaults, BadRequests) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  auto conn = mp::connection::Client(*manager.address(), std::nullopt, manager._authkey());
  managers::dispatch(conn, Object(), "accept_connection", {"test"});
  conn.send_bytes("garbage, not a pickle");
  auto reply = conn.recv().as<std::tuple<std::string, std::string>>();
  EXPECT_EQ(std::get<0>(reply), "#TRACEBACK");
  EXPECT_NE(std::get<1>(reply).find("UnpicklingError"), std::string::npos) << std::get<1>(reply);
  conn.send(Object::Tuple{{"no such id", "get", Object::Tuple{}, Object::Dict{}}});
  reply = conn.recv().as<std::tuple<std::string, std::string>>();
  EXPECT_EQ(std::get<0>(reply), "#TRACEBACK");
  auto bogus = mp::connection::Client(*manager.address(), std::nullopt, manager._authkey());
  try {
    managers::dispatch(bogus, Object(), "bogus");
    FAIL() << "no RemoteError";
  } catch (const managers::RemoteError& e) {
    EXPECT_NE(e.traceback().find("AssertionError: 'bogus' unrecognized"), std::string::npos) << e.traceback();
  }
  d.setitem("still", "served");
  EXPECT_EQ(d.getitem("still"), Object("served"));
}

/// TestSyncManagerTypes: Value, Event, Lock, RLock, driven from a child too.
TEST_P(TestSyncManagerTypes, ValueEventLocks) {
  auto manager = mp::Manager();
  ValueProxy v = manager.Value("i", std::int64_t{1});
  EventProxy e = manager.Event();
  EXPECT_EQ(v.value(), Object(std::int64_t{1}));
  EXPECT_FALSE(e.is_set());
  auto p = mp::Process({.target = &manager_tests::set_value_and_event, .args = {v, e}});
  p.start();
  EXPECT_TRUE(e.wait(60.0));
  join_process(p);
  EXPECT_EQ(v.get(), Object(std::int64_t{42}));
  EXPECT_EQ(v.str(), "Value('i', 42)");
  e.clear();
  EXPECT_FALSE(e.wait(0.05));

  AcquirerProxy lock = manager.Lock();
  EXPECT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(true, 0.05));
  lock.release();
  try {
    lock.release();
    FAIL() << "no RuntimeError";
  } catch (const mp::RuntimeError& err) {
    EXPECT_STREQ(err.what(), "release unlocked lock");
  }
  AcquirerProxy rlock = manager.RLock();
  EXPECT_TRUE(rlock.acquire());
  EXPECT_TRUE(rlock.acquire());
  rlock.release();
  rlock.release();
  try {
    rlock.release();
    FAIL() << "no RuntimeError";
  } catch (const mp::RuntimeError& err) {
    EXPECT_STREQ(err.what(), "cannot release un-acquired lock");
  }
}

/// TestSyncManagerTypes: Queue (a child puts), JoinableQueue, Semaphore,
/// BoundedSemaphore; queue.Empty and queue.Full come back as themselves.
TEST_P(TestSyncManagerTypes, QueueAndSemaphores) {
  auto manager = mp::Manager();
  managers::AutoProxy q = manager.Queue(2);
  EXPECT_EQ(q._exposed(), (std::vector<std::string>{"empty", "full", "get", "get_nowait", "join", "put",
                                                    "put_nowait", "qsize", "task_done"}));
  auto p = mp::Process({.target = &manager_tests::put_items, .args = {q}});
  p.start();
  EXPECT_EQ(q.call("get", {true, 60.0}), Object(std::int64_t{1}));
  EXPECT_EQ(q.call("get"), Object("two"));
  join_process(p);
  EXPECT_TRUE(q.call("empty").as<bool>());
  EXPECT_THROW(q.call("get_nowait"), mp::queues::Empty);
  EXPECT_THROW(q.call("get", {true, 0.05}), mp::queues::Empty);
  q.call("put", {"a"});
  q.call("put", {"b"});
  EXPECT_TRUE(q.call("full").as<bool>());
  EXPECT_THROW(q.call("put_nowait", {"c"}), mp::queues::Full);
  EXPECT_EQ(q.call("qsize"), Object(std::int64_t{2}));
  managers::AutoProxy jq = manager.JoinableQueue();
  jq.call("put", {"job"});
  jq.call("get");
  jq.call("task_done");
  jq.call("join");
  EXPECT_THROW(jq.call("task_done"), mp::ValueError);

  AcquirerProxy sem = manager.Semaphore(2);
  EXPECT_TRUE(sem.acquire());
  EXPECT_TRUE(sem.acquire());
  EXPECT_FALSE(sem.acquire(false));
  sem.release();
  sem.release();
  sem.release();  // a plain Semaphore may go above its start value
  AcquirerProxy bounded = manager.BoundedSemaphore(1);
  EXPECT_TRUE(bounded.acquire(true, 1.0));
  bounded.release();
  try {
    bounded.release();
    FAIL() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "Semaphore released too many times");
  }
}

/// TestSyncManagerTypes.test_condition: a child acquires and releases the
/// Condition, then notifies the parent waiting on it.
TEST_P(TestSyncManagerTypes, Condition) {
  auto manager = mp::Manager();
  ConditionProxy c = manager.Condition();
  EXPECT_EQ(c._exposed(), (std::vector<std::string>{"acquire", "release", "wait", "notify", "notify_all"}));
  EXPECT_THROW(c.notify(), mp::RuntimeError);  // "cannot notify on un-acquired lock"
  EXPECT_THROW(c.wait(0.01), mp::RuntimeError);
  ASSERT_TRUE(c.acquire());
  EXPECT_FALSE(c.wait(0.05));
  auto p = mp::Process({.target = &manager_tests::use_condition, .args = {c}});
  p.start();
  EXPECT_TRUE(c.wait(60.0));  // the child can take the lock only while we wait
  c.release();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  c.acquire();
  int calls = 0;
  EXPECT_FALSE(c.wait_for([&calls] { return ++calls > 100; }, 0.05));
  c.notify_all();
  c.notify(2);
  c.release();
}

/// TestSyncManagerTypes.test_barrier: a child reads parties and resets; then
/// two parties pass a Barrier(2), and abort/reset break and mend it.
TEST_P(TestSyncManagerTypes, Barrier) {
  auto manager = mp::Manager();
  BarrierProxy b = manager.Barrier(5);
  auto p = mp::Process({.target = &manager_tests::use_barrier, .args = {b}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(b.parties(), 5);
  EXPECT_EQ(b.n_waiting(), 0);
  EXPECT_FALSE(b.broken());

  BarrierProxy two = manager.Barrier(2);
  auto q = mp::Process({.target = &manager_tests::wait_barrier, .args = {two}});
  q.start();
  std::int64_t index = two.wait(60.0);
  EXPECT_TRUE(index == 0 || index == 1);
  join_process(q);
  EXPECT_EQ(q.exitcode(), 0);
  two.abort();
  EXPECT_TRUE(two.broken());
  EXPECT_THROW(two.wait(1.0), mp::BrokenBarrierError);
  two.reset();
  EXPECT_FALSE(two.broken());
  EXPECT_THROW(b.wait(0.05), mp::BrokenBarrierError);  // the timeout breaks it
  EXPECT_THROW(manager.Barrier(0), managers::RemoteError);  // as in Python: the server's ValueError, as text
}

/// TestSyncManagerTypes.test_array: a child reads Array('i', [0, 1]) item by
/// item, as a list, and writes one item back.
TEST_P(TestSyncManagerTypes, Array) {
  auto manager = mp::Manager();
  ArrayProxy a = manager.Array("i", Object::List{std::int64_t{0}, std::int64_t{1}});
  EXPECT_EQ(a._exposed(), (std::vector<std::string>{"__len__", "__getitem__", "__setitem__"}));
  auto p = mp::Process({.target = &manager_tests::use_array, .args = {a}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(a.tolist(), (Object::List{std::int64_t{0}, std::int64_t{10}}));
  EXPECT_EQ(a.getitem(-1), Object(std::int64_t{10}));
  EXPECT_THROW(a.getitem(2), mp::IndexError);
  EXPECT_THROW(a.setitem(0, 1.5), mp::TypeError);
  EXPECT_EQ(a.str(), "array('i', [0, 10])");
  ArrayProxy d = manager.Array("d", Object::List{std::int64_t{1}, 2.5});
  EXPECT_EQ(d.getitem(0), Object(1.0));
  EXPECT_THROW(manager.Array("x", Object::List{}), managers::RemoteError);
}

/// TestSyncManagerTypes.test_pool: a child leaves `with pool_proxy:` (it
/// terminates the manager's pool).  Before that (beyond CPython's test), each
/// method PoolProxy exposes runs a registered function in the manager's
/// workers, and AsyncResult and imap come back as proxies.
TEST_P(TestSyncManagerTypes, Pool) {
  auto manager = mp::Manager();
  managers::PoolProxy pool = manager.Pool(4);
  EXPECT_EQ(pool.proxytype(), "PoolProxy");
  // Python's Server.create: exposed + list(method_to_typeid), so the names
  // that make proxies come twice.
  const std::vector<std::string> exposed = pool._exposed();
  ASSERT_EQ(exposed.size(), 16u);
  EXPECT_EQ(std::vector<std::string>(exposed.begin(), exposed.begin() + 11),
            (std::vector<std::string>{"apply", "apply_async", "close", "imap", "imap_unordered", "join", "map",
                                      "map_async", "starmap", "starmap_async", "terminate"}));
  EXPECT_EQ(pool.apply(&manager_tests::square, {std::int64_t{7}}), Object(std::int64_t{49}));
  EXPECT_EQ(pool.map(&manager_tests::square, ints({1, 2, 3}), 2), ints({1, 4, 9}));
  Object::List pairs{Object::Tuple{ints({2, 3})}, Object::Tuple{ints({4, 5})}};
  EXPECT_EQ(pool.starmap(&manager_tests::multiply, pairs), ints({6, 20}));

  managers::AsyncResultProxy r = pool.apply_async(&manager_tests::square, {std::int64_t{5}});
  EXPECT_EQ(r._token().typeid_, "AsyncResult");
  EXPECT_EQ(r.proxytype(), "AutoProxy");
  EXPECT_EQ(r.get(60.0), Object(std::int64_t{25}));
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(pool.map_async(&manager_tests::square, ints({4, 5})).get(60.0), Object(ints({16, 25})));
  EXPECT_EQ(pool.starmap_async(&manager_tests::multiply, pairs).get(60.0), Object(ints({6, 20})));

  managers::IteratorProxy it = pool.imap(&manager_tests::square, ints({1, 2, 3, 4}), 2);
  EXPECT_EQ(it._token().typeid_, "Iterator");
  EXPECT_EQ(it.next(), Object(std::int64_t{1}));
  EXPECT_EQ(it.rest(), ints({4, 9, 16}));
  EXPECT_EQ(it.next(), std::nullopt);
  Object::List unordered = pool.imap_unordered(&manager_tests::square, ints({1, 2, 3})).rest();
  std::sort(unordered.begin(), unordered.end(),
            [](const Object& a, const Object& b) { return a.as<std::int64_t>() < b.as<std::int64_t>(); });
  EXPECT_EQ(unordered, ints({1, 4, 9}));

  // A task's exception reaches the caller with its type and message.
  try {
    pool.apply(&manager_tests::fail_on_three, {std::int64_t{3}});
    ADD_FAILURE() << "no exception";
  } catch (const mp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("three is refused"), std::string::npos);
  }
  managers::AsyncResultProxy failed = pool.map_async(&manager_tests::fail_on_three, ints({1, 3}));
  EXPECT_THROW(failed.get(60.0), mp::ValueError);
  EXPECT_FALSE(failed.successful());
  // A function that cannot be found by name does not cross to the manager.
  EXPECT_THROW(pool.apply([] { return 1; }), mp::PicklingError);
  EXPECT_THROW(pool.join(), mp::ValueError);  // "Pool is still running"

  auto p = mp::Process({.target = &manager_tests::use_pool, .args = {pool}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  pool.join();  // terminated by the child: join returns
  EXPECT_THROW(pool.apply(&manager_tests::square, {std::int64_t{2}}), mp::ValueError);  // "Pool not running"
  EXPECT_THROW(manager.Pool(0), managers::RemoteError);
}

/// The processes below `root` now, from /proc/<pid>/stat's ppid field.
std::set<pid_t> descendants(pid_t root) {
  std::map<pid_t, pid_t> parent;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t close = stat.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    parent[std::stoi(name)] = ppid;
  }
  std::set<pid_t> below;
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [pid, ppid] : parent) {
      if ((ppid == root || below.count(ppid) != 0) && below.insert(pid).second) grew = true;
    }
  }
  return below;
}

/// Beyond CPython's tests: a manager shut down while its Pool is still
/// running takes the pool's workers with it.
TEST_P(TestSyncManagerTypes, PoolEndsWithServer) {
  auto manager = mp::Manager();
  const std::set<pid_t> before = descendants(::getpid());
  managers::PoolProxy pool = manager.Pool(2);
  EXPECT_EQ(pool.apply(&manager_tests::square, {std::int64_t{3}}), Object(std::int64_t{9}));
  std::vector<pid_t> workers;
  for (pid_t pid : descendants(::getpid())) {
    if (before.count(pid) == 0) workers.push_back(pid);
  }
  EXPECT_GE(workers.size(), 2u);  // the pool's workers (and perhaps the server's own fork server)
  manager.shutdown();
  EXPECT_EQ(manager._process()->exitcode(), 0);
  for (pid_t pid : workers) {
    // kill(pid, 0): does the process still exist?  (Zombies are reaped by
    // their parent, the fork server, or init.)
    EXPECT_TRUE(wait_until([pid] { return ::kill(pid, 0) != 0 && errno == ESRCH; })) << "worker " << pid;
  }
}

/// A manager with an authkey of its own: its proxies cross to children under
/// every start method with that key (Python sends it while spawning).
TEST_P(TestSyncManagerTypes, OwnAuthkeyChild) {
  managers::SyncManager manager(std::nullopt, mp::Bytes("a key of its own"));
  manager.start();
  DictProxy d = manager.dict();
  ListProxy l = manager.list();
  auto p = mp::Process({.target = &manager_tests::fill, .args = {d, l, std::int64_t{3}}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(l.len(), 3);
}

/// fork() while other threads make and drop proxies: they take the proxies'
/// table mutex many times a millisecond, so some forks land while a thread
/// of the parent holds it.  Each forked child still makes its own call and
/// ends: the child starts with a fresh mutex and an empty table (Python:
/// BaseProxy._after_fork), never a mutex held by a thread it does not have.
/// Only fork copies the parent's memory, hence not once per start method.
TEST(TestManagerFork, ForkWhileThreadsUseProxies) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  std::atomic<bool> stop{false};
  std::vector<std::thread> churners;
  for (int t = 0; t < 2; ++t) {
    churners.emplace_back([&manager, &stop] {
      while (!stop.load()) {
        ListProxy l = manager.list();  // made, called once, dropped: the table changes three times
        l.append(std::int64_t{1});
      }
    });
  }
  constexpr std::int64_t kChildren = 200;
  for (std::int64_t i = 0; i < kChildren; ++i) {
    auto p = mp::get_context("fork").Process({.target = &manager_tests::set_one, .args = {d, i}});
    p->start();
    join_process(*p, 20.0);
    EXPECT_EQ(p->exitcode(), 0) << "child " << i;
  }
  stop = true;
  for (auto& th : churners) th.join();
  EXPECT_EQ(d.len(), kChildren);
}

/// Reference §3.5: a Token and a DictProxy pickle as CPython's, byte for byte.
TEST(TestManagerWire, TokenAndProxyPickles) {
  managers::Token token{"dict", std::string("/tmp/pymp-abc/listener-xyz"), "7f0011223344"};
  std::string hex;
  for (unsigned char c : mp::reduction::dumps(Object(token), 4)) {
    static const char* digits = "0123456789abcdef";
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  EXPECT_EQ(hex,
            "8004955f000000000000008c186d756c746970726f63657373696e672e6d616e6167657273948c05546f6b656e"
            "9493942981948c0464696374948c1a2f746d702f70796d702d6162632f6c697374656e65722d78797a948c0c"
            "376630303131323233333434948794622e");
  EXPECT_EQ(mp::reduction::loads(mp::reduction::dumps(Object(token))).as<managers::Token>(), token);
  EXPECT_EQ(token.repr(), "Token(typeid='dict', address='/tmp/pymp-abc/listener-xyz', id='7f0011223344')");
  // The proxy's pickle: RebuildProxy(DictProxy, Token, 'pickle', {}) (148 bytes).
  Object proxy = Object::Reduced{{"multiprocessing.managers", "RebuildProxy"},
                                 {Object::Global{"multiprocessing.managers", "DictProxy"},
                                  Object(managers::Token{"dict", std::string("/tmp/mpx/mgr.sock"), "7f0011223344"}),
                                  "pickle", Object::Dict{}}};
  EXPECT_EQ(mp::reduction::dumps(proxy, 4).size(), 148u);
}

/// Reference §3.4: a method call and its replies, as CPython pickles them
/// (protocol 4): the request 4-tuple is 54 bytes, ('#RETURN', None) 25, and
/// ('#ERROR', KeyError('missing')) 61.
TEST(TestManagerWire, RequestAndReplySizes) {
  Object request = Object::Tuple{{"7f0011223344", "__setitem__", Object::Tuple{{"a", std::int64_t{1}}}, Object::Dict{}}};
  EXPECT_EQ(mp::reduction::dumps(request).size(), 54u);
  EXPECT_EQ(mp::reduction::dumps(Object::Tuple{{"#RETURN", Object()}}).size(), 25u);
  Object error = Object::Tuple{{"#ERROR", mp::reduction::_reduce_exception(mp::KeyError("missing"))}};
  EXPECT_EQ(mp::reduction::dumps(error).size(), 61u);
}

/// docs/walkthrough_manager.md: every byte string the page shows.  A real
/// DictProxy makes the call `d['a'] = 1` through BaseProxy::_callmethod; the
/// test plays the server's side of the socket (after the authkey handshake)
/// and compares what arrives, byte for byte, with the page; it answers with
/// the page's reply bytes, which the proxy must read back as success.
TEST(TestManagerWire, DocExample) {
  mp::Bytes authkey("secret");
  mp::connection::Listener listener(std::nullopt, "AF_UNIX", 1, authkey);
  managers::Token token{"dict", listener.address(), "7f0011223344"};
  std::thread client([&token, &authkey] {
    DictProxy d(token, "DictProxy", authkey, std::nullopt, /*incref=*/false);
    d.setitem("a", std::int64_t{1});  // d['a'] = 1
    EXPECT_EQ(d.getitem("a"), Object(std::int64_t{1}));  // d['a']
  });
  mp::connection::Connection c = listener.accept();  // the challenge, both ways
  // The thread's first call opens its connection: accept_connection.
  EXPECT_EQ(mp::os::read(c.fileno(), 200),
            unhex("00 00 00 36 80 04 95 2b 00 00 00 00 00 00 00 28 4e 8c 11 61 63 63 65 70 74 5f 63 6f"
                  "6e 6e 65 63 74 69 6f 6e 94 8c 0b 4d 61 69 6e 50 72 6f 63 65 73 73 94 85 94 7d 94 74"
                  "94 2e"));
  std::string return_none = unhex("00 00 00 19 80 04 95 0e 00 00 00 00 00 00 00 8c 07 23 52 45 54 55 52 4e 94"
                                  "4e 86 94 2e");
  mp::os::write(c.fileno(), return_none);
  // d['a'] = 1
  EXPECT_EQ(mp::os::read(c.fileno(), 200),
            unhex("00 00 00 36 80 04 95 2b 00 00 00 00 00 00 00 28 8c 0c 37 66 30 30 31 31 32 32 33 33"
                  "34 34 94 8c 0b 5f 5f 73 65 74 69 74 65 6d 5f 5f 94 8c 01 61 94 4b 01 86 94 7d 94 74"
                  "94 2e"));
  mp::os::write(c.fileno(), return_none);
  // d['a']
  EXPECT_EQ(mp::os::read(c.fileno(), 200),
            unhex("00 00 00 34 80 04 95 29 00 00 00 00 00 00 00 28 8c 0c 37 66 30 30 31 31 32 32 33 33"
                  "34 34 94 8c 0b 5f 5f 67 65 74 69 74 65 6d 5f 5f 94 8c 01 61 94 85 94 7d 94 74 94 2e"));
  mp::os::write(c.fileno(), unhex("00 00 00 1a 80 04 95 0f 00 00 00 00 00 00 00 8c 07 23 52 45 54 55 52 4e 94"
                                  "4b 01 86 94 2e"));
  client.join();
  // The proxy died with its thread and closed the connection: EOF here.
  EXPECT_THROW(c.recv_bytes(), mp::EOFError);
  // The request, as the page disassembles it (what pickletools.dis prints).
  Object request = Object::Tuple{{"7f0011223344", "__setitem__", Object::Tuple{{"a", std::int64_t{1}}}, Object::Dict{}}};
  EXPECT_EQ(mp::reduction::dis(mp::reduction::dumps(request)), R"(    0: \x80 PROTO      4
    2: \x95 FRAME      43
   11: (    MARK
   12: \x8c     SHORT_BINUNICODE '7f0011223344'
   26: \x94     MEMOIZE    (as 0)
   27: \x8c     SHORT_BINUNICODE '__setitem__'
   40: \x94     MEMOIZE    (as 1)
   41: \x8c     SHORT_BINUNICODE 'a'
   44: \x94     MEMOIZE    (as 2)
   45: K        BININT1    1
   47: \x86     TUPLE2
   48: \x94     MEMOIZE    (as 3)
   49: }        EMPTY_DICT
   50: \x94     MEMOIZE    (as 4)
   51: t        TUPLE      (MARK at 11)
   52: \x94 MEMOIZE    (as 5)
   53: .    STOP
highest protocol among opcodes = 4
)");
}

/// The error conversions of convert_to_error, with Python's texts.
TEST(TestManagerWire, ConvertToError) {
  try {
    managers::raise_converted_error("#UNSERIALIZABLE", "tb");
  } catch (const managers::RemoteError& e) {
    EXPECT_EQ(e.traceback(), "Unserializable message: tb\n");
    EXPECT_EQ(std::string(e.what()), "\n" + std::string(75, '-') + "\nUnserializable message: tb\n" + std::string(75, '-'));
  }
  EXPECT_THROW(managers::raise_converted_error("#TRACEBACK", std::int64_t{1}), mp::TypeError);
  EXPECT_THROW(managers::raise_converted_error("#WHAT", Object()), mp::ValueError);
  EXPECT_THROW(managers::raise_converted_error("#ERROR", Object::Reduced{{"builtins", "IndexError"}, {"x"}}),
               mp::IndexError);
}

INSTANTIATE_TEST_SUITE_P(WithManager, TestContainers, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestNamespace, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestMyManager, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestManagerRestart, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestManagerFaults, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestSyncManagerTypes, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestRemoteManager, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestInitializers, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace mp_test
