// tests/interop/interop_managers.cpp — this library and CPython as each other's
// manager server and client, for the 3.11 handshake (the
// machine's python3) and the 3.12 one (tests/interop/handshake312.py), or
// for the handshakes named after the peer script ("native": a real 3.12 or
// 3.13 speaking its own):
//   C++ SyncManager server  <- Python SyncManager client (managers_peer.py client)
//   Python SyncManager server (get_server().serve_forever()) <- C++ client
// Both use dict, list, Value, Namespace, Lock, RLock, Event, Queue proxies, a nested
// proxy, an Iterator, a registered callable (get_greeter, registered on both
// sides' InteropManager), and remote exceptions; a wrong authkey is an
// AuthenticationError for the client while the server goes on serving.
//
//   interop_managers PYTHON3 MANAGERS_PEER_PY [HANDSHAKE...]
// Exit 0: all sessions passed; 1: a failure (printed); 77: no python3 (skipped).
#include <iostream>
#include <string>
#include <vector>

#include "multiprocessing/context.hpp"
#include "multiprocessing/managers.hpp"
#include "python_peer.hpp"

namespace mp = multiprocessing;
namespace managers = multiprocessing::managers;
using mp::Object;

namespace {

int failures = 0;

/// Python: class Greeter: def greet(self, name): return 'hello ' + name
/// (managers_peer.py's twin).
std::shared_ptr<managers::Referent> make_greeter(const mp::Args&, const managers::Kwds&) {
  auto greeter = std::make_shared<managers::MethodsReferent>("Greeter");
  greeter->def("greet", [](const mp::Args& a, const managers::Kwds&) {
    return Object("hello " + a.at(0).as<std::string>());
  });
  return greeter;
}

/// Python: class InteropManager(SyncManager): pass;
/// InteropManager.register('get_greeter', callable=Greeter).
class InteropManager : public managers::SyncManager {
 public:
  InteropManager(std::optional<mp::connection::Address> address, mp::Bytes authkey)
      : SyncManager(_registry(), std::move(address), std::move(authkey), "pickle", nullptr, 1.0) {}
  static managers::Registry& _registry() {
    static managers::Registry registry("InteropManager", &SyncManager::_registry());
    return registry;
  }
};
const bool greeter_registered = InteropManager::_registry().register_typeid("get_greeter", &make_greeter);

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "FAILED: " << what << "\n";
    ++failures;
  }
}

/// C++ server, Python client.
void python_client(const std::string& python3, const std::string& peer, const std::string& version) {
  mp::Bytes key("interop-key");
  InteropManager manager(std::nullopt, key);
  manager.start();
  std::string address = std::get<std::string>(*manager.address());
  managers::DictProxy ours = manager.dict();
  {
    interop::Python python = interop::spawn({python3, peer, "client", address, key.data, version}, true, true);
    std::string id = interop::read_value(python, "DICT");
    managers::DictProxy theirs(managers::BaseProxy(managers::Token{"dict", address, id}, "DictProxy", key));
    check(theirs.getitem("from") == Object("python"), version + ": the dict the Python client made");
    check(python.finish() == 0, version + ": python client exit status");
  }
  {
    interop::Python python = interop::spawn({python3, peer, "client", address, "wrong", version}, false);
    check(python.finish() == 3, version + ": a wrong key is an AuthenticationError for the Python client");
  }
  ours.setitem("still", "served");
  check(ours.getitem("still") == Object("served"), version + ": the server goes on serving");
  manager.shutdown();
  check(manager._process()->exitcode() == 0, version + ": the C++ server's exit code");
}

/// Python server, C++ client.
void python_server(const std::string& python3, const std::string& peer, const std::string& version) {
  mp::Bytes key("interop-key");
  interop::Python python = interop::spawn({python3, peer, "server", key.data, version}, true);
  std::string address = interop::read_address(python);
  {
    managers::SyncManager wrong(address, mp::Bytes("wrong"));
    bool refused = false;
    try {
      wrong.connect();
    } catch (const mp::AuthenticationError&) {
      refused = true;
    }
    check(refused, version + ": a wrong key is an AuthenticationError for the C++ client");
  }
  InteropManager client(address, key);
  client.connect();
  {
    // A registered callable of the Python server.
    managers::AutoProxy greeter = client.proxy("get_greeter");
    check(greeter._exposed() == std::vector<std::string>{"greet"}, version + ": the greeter's exposed methods");
    check(greeter.call("greet", {"c++"}) == Object("hello c++"), version + ": greeter.greet('c++')");
    managers::DictProxy d = client.dict(Object::Dict{{"a", std::int64_t{1}}});
    d.setitem(std::int64_t{2}, Object::List{2.5, "x", mp::Bytes("y"), Object()});
    check(d.getitem("a") == Object(std::int64_t{1}), version + ": d['a']");
    check(d.len() == 2, version + ": len(d)");
    check(d.keys() == Object::List{"a", std::int64_t{2}}, version + ": d.keys() is a list");
    check(d.contains(std::int64_t{2}), version + ": 2 in d");
    try {
      d.getitem("missing");
      check(false, version + ": KeyError");
    } catch (const mp::KeyError& e) {
      check(std::string(e.what()) == "missing", version + ": KeyError('missing')");
    }
    d.setitem("test", Object::Dict{});
    Object::Dict inner = d.getitem("test").as<Object::Dict>();
    inner.emplace_back("x", std::int64_t{1});  // the pitfall: a copy
    check(d.getitem("test") == Object(Object::Dict{}), version + ": nested-dict pitfall");

    managers::ListProxy l = client.list(Object::List{std::int64_t{3}, std::int64_t{1}});
    l.append(std::int64_t{2});
    l.iadd(Object::List{std::int64_t{0}});
    l.sort();
    check(l._getvalue() == Object(Object::List{std::int64_t{0}, std::int64_t{1}, std::int64_t{2}, std::int64_t{3}}),
          version + ": list");
    d.setitem("l", l);
    d.getitem("l").as<managers::ListProxy>().append(std::int64_t{42});
    check(l.getitem(-1) == Object(std::int64_t{42}), version + ": a nested proxy shares its referent");

    managers::AutoProxy it = d._callmethod("__iter__").as<managers::AutoProxy>();
    Object::List keys;
    try {
      for (;;) keys.push_back(it._callmethod("__next__"));
    } catch (const mp::StopIteration&) {
    }
    check(keys == d.keys(), version + ": iter(d) through an Iterator proxy");

    managers::ValueProxy v = client.Value("i", std::int64_t{5});
    v.set(std::int64_t{7});
    check(v.value() == Object(std::int64_t{7}), version + ": Value");
    managers::NamespaceProxy ns = client.Namespace({{"name", "Bob"}});
    ns.setattr("job", "Builder");
    check(ns.getattr("job") == Object("Builder"), version + ": Namespace");
    check(ns.str() == "Namespace(job='Builder', name='Bob')", version + ": str(Namespace) " + ns.str());
    managers::AcquirerProxy lock = client.Lock();
    check(lock.acquire() && !lock.acquire(false), version + ": Lock");
    lock.release();
    try {
      lock.release();
      check(false, version + ": over-release");
    } catch (const mp::RuntimeError& e) {
      check(std::string(e.what()) == "release unlocked lock", version + ": over-release text");
    }
    managers::AcquirerProxy rlock = client.RLock();
    check(rlock.acquire() && rlock.acquire(), version + ": RLock");
    rlock.release();
    rlock.release();
    managers::EventProxy ev = client.Event();
    ev.set();
    check(ev.wait(1.0), version + ": Event");
    managers::AutoProxy q = client.Queue();
    q.call("put", {"job"});
    check(q.call("get") == Object("job"), version + ": Queue");
    try {
      q.call("get_nowait");
      check(false, version + ": queue.Empty");
    } catch (const mp::queues::Empty&) {
    }
    check(client._number_of_objects() >= 8, version + ": number_of_objects");
  }
  // Python: manager.shutdown() of a connect()ed manager is a no-op; stop the
  // server with the control request itself.
  auto conn = mp::connection::Client(address, std::nullopt, key);
  managers::dispatch(conn, Object(), "shutdown");
  check(python.finish() == 0, version + ": python server exit status");
}

}  // namespace

int main(int argc, char** argv) {
  mp::freeze_support();
  if (argc < 3 || std::string(argv[1]).empty() || ::access(argv[1], X_OK) != 0) {
    std::cerr << "no python3: skipped\n";
    return 77;
  }
  std::string python3 = argv[1], peer = argv[2];
  for (const std::string& version : interop::handshakes(argc, argv)) {
    try {
      python_client(python3, peer, version);
    } catch (const std::exception& e) {
      check(false, version + ": C++ server, Python client: " + mp::exception_type_name(e) + ": " + e.what());
    }
    try {
      python_server(python3, peer, version);
    } catch (const std::exception& e) {
      check(false, version + ": Python server, C++ client: " + mp::exception_type_name(e) + ": " + e.what());
    }
  }
  if (failures == 0) std::cout << "interop_managers: all sessions passed\n";
  return failures == 0 ? 0 : 1;
}
