// tests/test_context.cpp — ports CPython's TestStartMethod (context.py).
#include "support.hpp"

namespace mp_test {

/// TestStartMethod._check_context: the child reports its start method.
void send_start_method(mp::connection::Connection& conn) {
  conn.send(mp::get_start_method().value_or("None"));
}
MP_REGISTER_TARGET(send_start_method);

namespace {

/// TestStartMethod.check_context: a child of `ctx` runs under ctx's method.
void check_context(mp::BaseContext& ctx) {
  auto [r, w] = ctx.Pipe(false);
  auto p = ctx.Process({.target = send_start_method, .args = {w}});
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

/// TestStartMethod.test_set_get
TEST_F(TestStartMethod, SetGet) {
  mp::set_start_method("fork", true);
  EXPECT_EQ(mp::get_start_method(), "fork");
  mp::BaseContext& ctx = mp::get_context();
  EXPECT_EQ(ctx.get_start_method(), "fork");
  EXPECT_NE(dynamic_cast<mp::ForkContext*>(&ctx), nullptr);
  auto p = ctx.Process();
  EXPECT_NE(dynamic_cast<mp::ForkProcess*>(p.get()), nullptr);
  check_context(mp::_default_context());
}

/// TestStartMethod.test_get_all
TEST_F(TestStartMethod, GetAll) {
  EXPECT_EQ(mp::get_all_start_methods(), (std::vector<std::string>{"fork", "spawn", "forkserver"}));
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
