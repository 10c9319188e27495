// tests/test_managers_faults.cpp — a manager under faults, beyond CPython's
// own tests: a client killed while it holds references, a server killed under
// its clients, hostile bytes on a raw authenticated connection, and a managed
// object's method that raises.  Each runs under every start method (the
// manager's server, and the clients where there are any, are processes of it).
#include <sys/socket.h>

#include <csignal>
#include <stdexcept>
#include <thread>

#include "support.hpp"

namespace mp_test {

namespace managers = mp::managers;
using managers::AcquirerProxy;
using managers::DictProxy;
using managers::EventProxy;
using managers::ListProxy;
using mp::Object;

namespace manager_fault_tests {

/// A shared object whose methods raise what their name says, for the test
/// that an exception reaches the caller with its type and message.
std::shared_ptr<managers::Referent> make_thrower(const mp::Args&, const managers::Kwds&) {
  auto t = std::make_shared<managers::MethodsReferent>("Thrower");
  t->def("value_error", [](const mp::Args&, const managers::Kwds&) -> Object { throw mp::ValueError("bad value 7"); });
  t->def("index_error", [](const mp::Args&, const managers::Kwds&) -> Object { throw mp::IndexError("no such index"); });
  t->def("zero_division", [](const mp::Args&, const managers::Kwds&) -> Object {
    throw mp::ZeroDivisionError("division by zero");
  });
  t->def("runtime_error", [](const mp::Args&, const managers::Kwds&) -> Object {
    throw mp::RuntimeError("a runtime error");
  });
  t->def("cpp_error", [](const mp::Args&, const managers::Kwds&) -> Object {
    throw std::runtime_error("a C++ exception Python has no name for");
  });
  t->def("echo", [](const mp::Args& a, const managers::Kwds&) { return a.empty() ? Object() : a[0]; });
  return t;
}

}  // namespace manager_fault_tests

/// A manager with one typeid, "Thrower" (registered while statics are
/// initialized, so that spawn and forkserver servers have it).
class FaultManager : public managers::BaseManager {
 public:
  FaultManager() : BaseManager(_registry(), std::nullopt, std::nullopt, "pickle", nullptr, 1.0) {}
  static managers::Registry& _registry() {
    static managers::Registry registry("FaultManager", &BaseManager::_registry());
    return registry;
  }
};

namespace {
const bool fault_manager_registered =
    FaultManager::_registry().register_typeid("Thrower", &manager_fault_tests::make_thrower);
}  // namespace

namespace manager_fault_tests {

/// A client that takes references, holds the manager Lock, says it is
/// ready, then blocks in a call until it is killed.
void hold_and_block(DictProxy d, AcquirerProxy lock, EventProxy ready, EventProxy never) {
  d.setitem("child", "was here");
  lock.acquire();
  ready.set();
  never.wait();
  mp::os::_exit(5);  // never reached: `never` is never set
}

/// A client blocked in a call when the server dies: exit 0 if that call
/// fails with EOFError or ConnectionError (as in Python), 3 for another error.
void blocked_when_server_dies(EventProxy ready, EventProxy never) {
  ready.set();
  try {
    never.wait();
  } catch (const mp::EOFError&) {
    mp::os::_exit(0);
  } catch (const mp::ConnectionError&) {
    mp::os::_exit(0);
  } catch (...) {
    mp::os::_exit(3);
  }
  mp::os::_exit(4);
}

/// A client that calls the raising methods: exit 0 when each exception came
/// back with its type and message, else the number of the first that did not.
void call_thrower(managers::AutoProxy t) {
  try {
    t.call("value_error");
    mp::os::_exit(1);
  } catch (const mp::ValueError& e) {
    if (std::string(e.what()) != "bad value 7") mp::os::_exit(2);
  }
  try {
    t.call("zero_division");
    mp::os::_exit(3);
  } catch (const mp::ZeroDivisionError& e) {
    if (std::string(e.what()) != "division by zero") mp::os::_exit(4);
  }
  mp::os::_exit(0);
}

/// A raw method connection: authenticated, then 'accept_connection', as a
/// proxy's own connection is made.
mp::connection::Connection method_connection(const managers::BaseManager& manager) {
  auto conn = mp::connection::Client(*manager.address(), std::nullopt, manager._authkey());
  managers::dispatch(conn, Object(), "accept_connection", {"faults"});
  return conn;
}

/// Whether the server closed `conn`: an EOFError (or a reset) comes within
/// 10 s; the replies sent before it are skipped.
bool server_closes(mp::connection::Connection& conn) {
  double deadline = mp::os::monotonic() + 10.0;
  while (mp::os::monotonic() < deadline) {
    if (!conn.poll(deadline - mp::os::monotonic())) return false;
    try {
      conn.recv_bytes();
    } catch (const mp::EOFError&) {
      return true;
    } catch (const mp::ConnectionResetError&) {
      return true;
    }
  }
  return false;
}

}  // namespace manager_fault_tests

MP_REGISTER_TARGET(manager_fault_tests::hold_and_block);
MP_REGISTER_TARGET(manager_fault_tests::blocked_when_server_dies);
MP_REGISTER_TARGET(manager_fault_tests::call_thrower);

class TestManagerClientDeath : public WithStartMethod {};
class TestManagerServerDeath : public WithStartMethod {};
class TestManagerBadInput : public WithStartMethod {};
class TestManagerRemoteErrors : public WithStartMethod {};

namespace {
/// How many objects debug_info() lists with refcount `n`.
int with_refcount(const std::string& info, int n) {
  const std::string needle = "refcount=" + std::to_string(n) + "\n";
  int count = 0;
  for (auto pos = info.find(needle); pos != std::string::npos; pos = info.find(needle, pos + 1)) ++count;
  return count;
}
}  // namespace

/// A client killed (SIGKILL) while it holds references and the manager Lock,
/// blocked in a call.  The behaviour is CPython's: the server cannot tell
/// whose references are whose (increfs come on one-shot connections), so the
/// dead client's references stay until the manager shuts down, and so does
/// its hold on the Lock; the server goes on serving the others, and shuts
/// down cleanly with a server thread still blocked for the dead client.
TEST_P(TestManagerClientDeath, KilledClientKeepsItsReferences) {
  auto manager = mp::Manager();
  {
    DictProxy d = manager.dict();
    AcquirerProxy lock = manager.Lock();
    EventProxy ready = manager.Event();
    EventProxy never = manager.Event();
    EXPECT_EQ(with_refcount(manager._debug_info(), 1), 4);
    auto p = mp::Process({.target = &manager_fault_tests::hold_and_block, .args = {d, lock, ready, never}});
    p.start();
    ASSERT_TRUE(ready.wait(60.0));
    EXPECT_EQ(with_refcount(manager._debug_info(), 2), 4) << manager._debug_info();  // ours and the child's
    ::kill(*p.pid(), SIGKILL);  // no decref, no goodbye: the child's socket just closes
    join_process(p);
    EXPECT_EQ(p.exitcode(), -SIGKILL);
    EXPECT_EQ(d.getitem("child"), Object("was here"));  // the server serves on
    EXPECT_FALSE(lock.acquire(false));                  // still held by the dead client
  }
  // Our references are gone; the dead client's stay.
  EXPECT_EQ(manager._number_of_objects(), 4);
  EXPECT_EQ(with_refcount(manager._debug_info(), 1), 4) << manager._debug_info();
  DictProxy other = manager.dict(Object::Dict{{"k", std::int64_t{1}}});
  EXPECT_EQ(other.getitem("k"), Object(std::int64_t{1}));
  manager.shutdown();
  EXPECT_EQ(manager._process()->exitcode(), 0);
}

/// The manager's process killed (SIGKILL) under its clients: every proxy
/// call fails promptly with EOFError or ConnectionError (as in Python), a
/// call already blocked in the server (here a thread's, and a child
/// process's) fails too, control requests are refused, and shutdown() returns.
TEST_P(TestManagerServerDeath, EveryCallFailsPromptly) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict(Object::Dict{{"a", std::int64_t{1}}});
  ListProxy l = manager.list();
  AcquirerProxy lock = manager.Lock();
  EventProxy ready = manager.Event();
  EventProxy never = manager.Event();
  managers::AutoProxy q = manager.Queue();
  l.append(std::int64_t{1});
  auto p = mp::Process({.target = &manager_fault_tests::blocked_when_server_dies, .args = {ready, never}});
  p.start();
  ASSERT_TRUE(ready.wait(60.0));
  std::string thread_error;
  std::thread blocked([&] {
    try {
      q.call("get");  // blocks in the server: the queue stays empty
      thread_error = "no error";
    } catch (const mp::EOFError&) {
      thread_error = "EOFError";
    } catch (const mp::ConnectionError&) {
      thread_error = "ConnectionError";
    } catch (const std::exception& e) {
      thread_error = mp::exception_type_name(e);
    }
  });
  // The thread's request is in the server once the server holds a connection
  // for it: give it a moment (the test holds either way: a call made after
  // the kill fails as well).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  double start = mp::os::monotonic();
  ::kill(*manager._process()->pid(), SIGKILL);
  blocked.join();
  join_process(p);
  EXPECT_TRUE(thread_error == "EOFError" || thread_error == "ConnectionError") << thread_error;
  EXPECT_EQ(p.exitcode(), 0);  // the child's blocked wait() failed as it should
  std::vector<std::function<void()>> calls = {
      [&] { d.getitem("a"); },         [&] { d.setitem("b", std::int64_t{2}); },
      [&] { l.append(std::int64_t{2}); }, [&] { lock.acquire(); },
      [&] { ready.is_set(); },        [&] { d.getitem("a"); },  // twice: the reconnect is refused too
  };
  for (std::size_t i = 0; i < calls.size(); ++i) {
    try {
      calls[i]();
      ADD_FAILURE() << "call " << i << " did not fail";
    } catch (const mp::EOFError&) {
    } catch (const mp::ConnectionError&) {
    }
  }
  EXPECT_THROW(manager.dict(), mp::ConnectionError);                // create: refused
  EXPECT_THROW(manager._number_of_objects(), mp::ConnectionError);  // any control request
  manager.shutdown();  // the process is gone: reaped, no wait for an answer
  EXPECT_EQ(manager._process()->exitcode(), -SIGKILL);
  EXPECT_LT(mp::os::monotonic() - start, 10.0);  // generous: on an idle machine it is milliseconds
}

/// Hostile bytes on raw authenticated connections: each fails that call or
/// that connection only, and the server goes on serving the others.
///  - a request that is not a pickle, or the wrong shape: a '#TRACEBACK'
///    reply, and the same connection serves the next request (as in Python);
///  - an unknown method name on a live object: a '#TRACEBACK' naming what is
///    exposed, the connection still serves;
///  - a truncated message, or a length that is no length (a negative "!i"):
///    the stream's framing is lost, and the server closes that connection
///    (Python answers a '#TRACEBACK' and goes on reading a stream it lost
///    its place in);
///  - garbage instead of the handshake's answer: that connection is refused.
TEST_P(TestManagerBadInput, FailsThatConnectionOnly) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict(Object::Dict{{"a", std::int64_t{1}}});
  const std::string id = d._token().id;

  auto conn = manager_fault_tests::method_connection(manager);
  conn.send_bytes("\x80\x04 not a pickle at all");
  auto reply = conn.recv().as<std::tuple<std::string, std::string>>();
  EXPECT_EQ(std::get<0>(reply), "#TRACEBACK");
  conn.send(Object(std::int64_t{5}));  // a pickle, but not a request 4-tuple
  reply = conn.recv().as<std::tuple<std::string, std::string>>();
  EXPECT_EQ(std::get<0>(reply), "#TRACEBACK");
  conn.send(Object::Tuple{{id, "no_such_method", Object::Tuple{}, Object::Dict{}}});
  reply = conn.recv().as<std::tuple<std::string, std::string>>();
  EXPECT_EQ(std::get<0>(reply), "#TRACEBACK");
  EXPECT_NE(std::get<1>(reply).find("AttributeError: method 'no_such_method' of 'dict' object is not in exposed="),
            std::string::npos)
      << std::get<1>(reply);
  // The same connection still serves a good request.
  EXPECT_EQ(managers::dispatch(conn, Object(id), "__len__"), Object(std::int64_t{1}));
  // Through a proxy, the unknown name is a RemoteError and the proxy goes on.
  EXPECT_THROW(d._callmethod("no_such_method"), managers::RemoteError);
  EXPECT_EQ(d.getitem("a"), Object(std::int64_t{1}));

  // A truncated message: the header announces 100 bytes, 10 come, then our
  // side stops writing.  The server closes the connection.
  auto truncated = manager_fault_tests::method_connection(manager);
  std::string partial = mp::connection::_frame_header(100) + "0123456789";
  ASSERT_EQ(::send(truncated.fileno(), partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  ::shutdown(truncated.fileno(), SHUT_WR);  // EOF in mid-message for the server
  EXPECT_TRUE(manager_fault_tests::server_closes(truncated));

  // A length of 2 GiB - 1 announced, a few bytes sent: the server does not
  // allocate the announced size up front, and closes at the early EOF.
  auto huge = manager_fault_tests::method_connection(manager);
  std::string big = mp::connection::_frame_header(0x7fffffff) + "abc";
  ASSERT_EQ(::send(huge.fileno(), big.data(), big.size(), MSG_NOSIGNAL), static_cast<ssize_t>(big.size()));
  ::shutdown(huge.fileno(), SHUT_WR);
  EXPECT_TRUE(manager_fault_tests::server_closes(huge));

  // A negative length that is not -1: not a frame.  The server closes the
  // connection at once, though our side stays open.
  auto negative = manager_fault_tests::method_connection(manager);
  std::string bad = std::string("\x80\x00\x00\x05", 4) + "hello";
  ASSERT_EQ(::send(negative.fileno(), bad.data(), bad.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bad.size()));
  EXPECT_TRUE(manager_fault_tests::server_closes(negative));

  // Garbage instead of the handshake: no client authkey here, so we read the
  // server's challenge ourselves and answer it with junk.
  auto unauthenticated = mp::connection::Client(*manager.address(), std::nullopt, std::nullopt);
  std::string challenge = unauthenticated.recv_bytes();
  EXPECT_EQ(challenge.rfind("#CHALLENGE#", 0), 0u);
  unauthenticated.send_bytes("junk, not a digest");
  EXPECT_EQ(unauthenticated.recv_bytes(), "#FAILURE#");
  EXPECT_TRUE(manager_fault_tests::server_closes(unauthenticated));

  // The server goes on serving everyone else.
  d.setitem("still", "served");
  EXPECT_EQ(d.getitem("still"), Object("served"));
  DictProxy fresh = manager.dict();
  EXPECT_EQ(fresh.len(), 0);
  EXPECT_EQ(manager._number_of_objects(), 2);
}

/// A request that carries a proxy whose manager cannot be reached (its
/// address names no socket): rebuilding the proxy while the request is
/// unpickled raises FileNotFoundError, which fails that request only, with a
/// '#TRACEBACK', and the connection serves on.  (Found by fuzz/fuzz_managers:
/// the server took that OSError for a failure of the stream itself and
/// closed the connection.)
TEST_P(TestManagerBadInput, UnreachableProxyFailsThatCallOnly) {
  auto manager = mp::Manager();
  DictProxy d = manager.dict();
  const std::string id = d._token().id;
  auto conn = manager_fault_tests::method_connection(manager);
  managers::Token nowhere{"dict", mp::connection::Address{std::string("/nonexistent/mp-no-manager")}, "abc"};
  Object proxy = Object::Reduced{{"multiprocessing.managers", "RebuildProxy"},
                                 {Object::Global{"multiprocessing.managers", "DictProxy"}, Object(nowhere),
                                  "pickle", Object::Dict{}}};
  conn.send(Object::Tuple{{id, "__setitem__", Object::Tuple{{"k", proxy}}, Object::Dict{}}});
  auto reply = conn.recv().as<std::tuple<std::string, std::string>>();
  EXPECT_EQ(std::get<0>(reply), "#TRACEBACK");
  EXPECT_NE(std::get<1>(reply).find("FileNotFoundError"), std::string::npos) << std::get<1>(reply);
  // The same connection serves the next request; the dict is unchanged.
  EXPECT_EQ(managers::dispatch(conn, Object(id), "__len__"), Object(std::int64_t{0}));
  EXPECT_EQ(d.len(), 0);
}

/// An exception raised in a managed object's method reaches the caller with
/// its type and message ('#ERROR'), in this process and in a child; a C++
/// exception that Python has no name for arrives with its C++ type's name.
TEST_P(TestManagerRemoteErrors, TypeAndMessage) {
  FaultManager manager;
  manager.start();
  managers::AutoProxy t = manager.proxy("Thrower");
  expect_raises<mp::ValueError>([&] { t.call("value_error"); }, "bad value 7");
  expect_raises<mp::IndexError>([&] { t.call("index_error"); }, "no such index");
  expect_raises<mp::ZeroDivisionError>([&] { t.call("zero_division"); }, "division by zero");
  expect_raises<mp::RuntimeError>([&] { t.call("runtime_error"); }, "a runtime error");
  try {
    t.call("cpp_error");
    ADD_FAILURE() << "no exception";
  } catch (const mp::Exception& e) {
    EXPECT_EQ(mp::exception_type_name(e), "std::runtime_error");
    EXPECT_STREQ(e.what(), "a C++ exception Python has no name for");
  }
  EXPECT_EQ(t.call("echo", {"after the errors"}), Object("after the errors"));
  auto p = mp::Process({.target = &manager_fault_tests::call_thrower, .args = {t}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  manager.shutdown();
  EXPECT_EQ(manager._process()->exitcode(), 0);
}

INSTANTIATE_TEST_SUITE_P(WithManager, TestManagerClientDeath, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestManagerServerDeath, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestManagerBadInput, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithManager, TestManagerRemoteErrors, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace mp_test
