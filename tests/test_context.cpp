// tests/test_context.cpp — ports CPython's TestStartMethod (context.py).
// Each test goes through every start method itself, as CPython's do.
#include <set>

#include "support.hpp"

namespace mp_test {

using mp::connection::Connection;
namespace sync = mp::synchronize;

// The children's targets, registered by name for spawn and forkserver.
namespace context_tests {

/// Python: TestStartMethod._check_context.
void send_start_method(Connection& conn) { conn.send(mp::get_start_method().value_or("None")); }

/// Python: close_queue(queue), with a Lock where CPython has a Queue (whose
/// lock is what the test is about): use it once.
void use_lock(sync::Lock lock) {
  lock.acquire();
  lock.release();
}

/// Python: TestStartMethod._put_one_in_queue.
void put_one(sync::Semaphore sem, Connection& conn) {
  sem.release();
  conn.send("1");
}

/// Python: TestStartMethod._put_two_and_nest_once: hand the SemLock received
/// on to a grandchild (gh-108520).
void put_two_and_nest_once(sync::Semaphore sem, Connection& conn) {
  sem.release();
  conn.send("2");
  mp::Process process({.target = put_one, .args = {sem, conn}});
  process.start();
  process.join();
}

}  // namespace context_tests
MP_REGISTER_TARGET(context_tests::send_start_method);
MP_REGISTER_TARGET(context_tests::use_lock);
MP_REGISTER_TARGET(context_tests::put_one);
MP_REGISTER_TARGET(context_tests::put_two_and_nest_once);

namespace {

/// Python: TestStartMethod.check_context: a child of `ctx` reports its start method.
void check_context(mp::BaseContext& ctx) {
  auto [r, w] = ctx.Pipe(false);
  auto p = ctx.Process({.target = context_tests::send_start_method, .args = {w}});
  p->start();
  w.close();
  std::string child_method = r.recv().as<std::string>();
  r.close();
  join_process(*p);
  EXPECT_EQ(child_method, ctx.get_start_method());
}

class TestStartMethod : public ::testing::Test {
 protected:
  void TearDown() override { mp::set_start_method(std::nullopt, true); }
};

/// TestStartMethod.test_context
TEST_F(TestStartMethod, Context) {
  for (std::string method : {"fork", "spawn", "forkserver"}) {
    mp::BaseContext& ctx = mp::get_context(method);
    EXPECT_EQ(ctx.get_start_method(), method);
    EXPECT_EQ(&ctx.get_context(), &ctx);
    EXPECT_THROW(ctx.set_start_method("spawn"), mp::ValueError);
    EXPECT_THROW(ctx.set_start_method(std::nullopt), mp::ValueError);
    check_context(ctx);
  }
}

/// TestStartMethod.test_set_get: for each method, set_start_method(method,
/// force=True) makes the default context that method's (its class and its
/// Process class), and a child started through it runs under that method.
TEST_F(TestStartMethod, SetGet) {
  mp::forkserver::set_forkserver_preload({"__main__"});  // Python: PRELOAD
  for (std::string method : {"fork", "spawn", "forkserver"}) {
    mp::set_start_method(method, true);
    EXPECT_EQ(mp::get_start_method(), method);
    mp::BaseContext& ctx = mp::get_context();
    EXPECT_EQ(ctx.get_start_method(), method);
    auto p = ctx.Process();
    if (method == "fork") {
      EXPECT_NE(dynamic_cast<mp::ForkContext*>(&ctx), nullptr);
      EXPECT_NE(dynamic_cast<mp::ForkProcess*>(p.get()), nullptr);
    } else if (method == "spawn") {
      EXPECT_NE(dynamic_cast<mp::SpawnContext*>(&ctx), nullptr);
      EXPECT_NE(dynamic_cast<mp::SpawnProcess*>(p.get()), nullptr);
    } else {
      EXPECT_NE(dynamic_cast<mp::ForkServerContext*>(&ctx), nullptr);
      EXPECT_NE(dynamic_cast<mp::ForkServerProcess*>(p.get()), nullptr);
    }
    check_context(mp::_default_context());
  }
}

/// TestStartMethod.test_get_all
TEST_F(TestStartMethod, GetAll) {
  EXPECT_EQ(mp::get_all_start_methods(), (std::vector<std::string>{"fork", "spawn", "forkserver"}));
}

/// TestStartMethod.test_mixed_startmethod: a Lock of the fork context cannot
/// go to a spawn or forkserver child (RuntimeError "A SemLock created in a
/// fork context..."), and nothing is started; the locks of the spawn and
/// forkserver contexts go to children of every method.  (CPython passes a
/// Queue, whose lock is what matters; this library has no queues.)
TEST_F(TestStartMethod, MixedStartmethod) {
  for (std::string process_method : {"spawn", "forkserver"}) {
    sync::Lock lock = mp::get_context("fork").Lock();
    auto p = mp::get_context(process_method).Process({.target = context_tests::use_lock, .args = {lock}});
    try {
      p->start();
      ADD_FAILURE() << "no RuntimeError under " << process_method;
    } catch (const mp::RuntimeError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("A SemLock created in a fork", 0), 0u) << e.what();
    }
    EXPECT_TRUE(mp::active_children().empty());
  }
  for (std::string lock_method : {"spawn", "forkserver"}) {
    for (const std::string& process_method : mp::get_all_start_methods()) {
      sync::Lock lock = mp::get_context(lock_method).Lock();
      auto p = mp::get_context(process_method).Process({.target = context_tests::use_lock, .args = {lock}});
      p->start();
      join_process(*p);
      EXPECT_EQ(p->exitcode(), 0) << lock_method << " lock, " << process_method << " process";
    }
  }
}

/// TestStartMethod.test_nested_startmethod (gh-108520): a child passes the
/// Semaphore it received on to a grandchild.  Both report; the order of
/// their reports is not synchronised (gh-109706), so they are compared as a set.
TEST_F(TestStartMethod, NestedStartmethod) {
  for (std::string method : {"fork", "spawn", "forkserver"}) {
    mp::set_start_method(method, true);
    sync::Semaphore sem = mp::Semaphore(0);
    auto [r, w] = mp::Pipe(false);
    mp::Process process({.target = context_tests::put_two_and_nest_once, .args = {sem, w}});
    process.start();
    w.close();
    std::vector<std::string> reports = recv_strings(r);
    std::set<std::string> results(reports.begin(), reports.end());
    join_process(process);
    EXPECT_EQ(process.exitcode(), 0) << method;
    EXPECT_EQ(results, (std::set<std::string>{"2", "1"})) << method;
    EXPECT_EQ(sem.get_value(), 2) << method;
  }
}

/// get_context('bad') -> ValueError("cannot find context for 'bad'").
TEST_F(TestStartMethod, UnknownMethod) {
  try {
    mp::get_context("bad");
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "cannot find context for 'bad'");
  }
  // Python formats it with %r: a name holding a quote is shown as repr shows it.
  try {
    mp::get_context("it's");
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "cannot find context for \"it's\"");
  }
}

/// DefaultContext fixes its method on first use; changing it then needs force.
TEST_F(TestStartMethod, DefaultContextFixedOnFirstUse) {
  mp::set_start_method(std::nullopt, true);
  EXPECT_EQ(mp::get_start_method(true), std::nullopt);
  EXPECT_EQ(mp::_default_context()._actual_context(), nullptr);  // allow_none does not fix it
  mp::get_context();                                              // this does
  EXPECT_EQ(mp::get_start_method(true), "fork");
  try {
    mp::set_start_method("spawn");
    ADD_FAILURE() << "no RuntimeError";
  } catch (const mp::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "context has already been set");
  }
  mp::set_start_method("spawn", true);
  EXPECT_EQ(mp::get_start_method(), "spawn");
  mp::set_start_method(std::nullopt, true);
  EXPECT_EQ(mp::get_start_method(true), std::nullopt);
}

/// Process names follow the class: ForkProcess-N, SpawnProcess-N ...
TEST_F(TestStartMethod, ProcessClassNames) {
  EXPECT_EQ(mp::get_context("fork").Process()->name().rfind("ForkProcess-", 0), 0u);
  EXPECT_EQ(mp::get_context("spawn").Process()->name().rfind("SpawnProcess-", 0), 0u);
  EXPECT_EQ(mp::get_context("forkserver").Process()->name().rfind("ForkServerProcess-", 0), 0u);
  EXPECT_EQ(mp::Process().name().rfind("Process-", 0), 0u);
}

/// multiprocessing.Pipe and ctx.Pipe: the package-level factory and the
/// context method give connection.Pipe's pairs.
TEST_F(TestStartMethod, PipeFactories) {
  auto [a, b] = mp::Pipe();
  a.send(std::int64_t{1729});
  EXPECT_EQ(b.recv(), mp::Object(std::int64_t{1729}));
  b.send("back");
  EXPECT_EQ(a.recv(), mp::Object("back"));
  auto [r, w] = mp::get_context("fork").Pipe(/*duplex=*/false);
  EXPECT_TRUE(r.readable());
  EXPECT_FALSE(r.writable());
  EXPECT_TRUE(w.writable());
  EXPECT_FALSE(w.readable());
  w.send_bytes("one way");
  EXPECT_EQ(r.recv_bytes(), "one way");
}

}  // namespace
}  // namespace mp_test
