// tests/test_popen_fork.cpp — popen_fork.Popen on its own: the pipes and
// sentinel contract, poll/wait, signals, close.  Run under every start method:
// the spawn and forkserver Popens subclass popen_fork's and keep the same
// contract, so each case drives the Popen of the method under test.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "support.hpp"

namespace mp_test {
namespace {

using mp::connection::Connection;

class TestPopenFork : public WithStartMethod {
 protected:
  /// A process of the method under test (ForkProcess, SpawnProcess, ForkServerProcess).
  std::unique_ptr<mp::BaseProcess> make_process(mp::ProcessOptions options) {
    return mp::get_context(GetParam()).Process(std::move(options));
  }
  /// The Popen of the method under test, launching `process`'s child (what
  /// start() would do with the process's _Popen).
  std::unique_ptr<mp::popen_fork::Popen> make_popen(mp::BaseProcess& process) {
    if (GetParam() == "spawn") return std::make_unique<mp::popen_spawn_posix::Popen>(process);
    if (GetParam() == "forkserver") return std::make_unique<mp::popen_forkserver::Popen>(process);
    return std::make_unique<mp::popen_fork::Popen>(process);
  }
};

// The children's targets, registered by name for spawn and forkserver.
namespace test_popen_fork {
void wait_for_go(Connection& conn) { conn.recv(); }
void exit_3() { throw mp::SystemExit(3); }
void noop() {}
void sleep_half_a_second() { mp::os::sleep(0.5); }

void report_when_parent_gone(Connection& conn) {
  mp::parent_process()->join(60.0);  // returns when the middle process dies
  conn.send(mp::parent_process()->is_alive() ? "alive" : "gone");
}

void start_grandchild_and_die(Connection& conn) {
  auto* grandchild = new mp::Process({.target = report_when_parent_gone, .args = {conn}});
  grandchild->start();
  ::kill(::getpid(), SIGKILL);  // die without joining it
}

/// With `conn` as stderr, start two children (one of which is started while
/// another thread runs, when `with_thread`).
void start_children_to_stderr(Connection& conn, bool with_thread) {
  ::dup2(conn.fileno(), 2);
  std::optional<mp::dummy::Process> sleeper;
  if (with_thread) {
    sleeper.emplace(mp::ProcessOptions{.target = sleep_half_a_second});
    sleeper->start();
  }
  for (int i = 0; i < 2; ++i) {  // two starts, at most one warning
    mp::Process inner({.target = noop});
    inner.start();
    inner.join();
  }
  if (sleeper) sleeper->join();
}
}  // namespace test_popen_fork
MP_REGISTER_TARGET(test_popen_fork::wait_for_go);
MP_REGISTER_TARGET(test_popen_fork::exit_3);
MP_REGISTER_TARGET(test_popen_fork::noop);
MP_REGISTER_TARGET(test_popen_fork::sleep_half_a_second);
MP_REGISTER_TARGET(test_popen_fork::report_when_parent_gone);
MP_REGISTER_TARGET(test_popen_fork::start_grandchild_and_die);
MP_REGISTER_TARGET(test_popen_fork::start_children_to_stderr);

/// The sentinel reaches EOF exactly when the child exits; wait(timeout) waits
/// on it and returns nullopt while the child runs.
TEST_P(TestPopenFork, SentinelAndWait) {
  auto [go, child_go] = mp::Pipe();
  auto process = make_process({.target = test_popen_fork::wait_for_go, .args = {child_go}});
  auto popen = make_popen(*process);
  EXPECT_GT(popen->pid, 0);
  EXPECT_EQ(popen->poll(), std::nullopt);
  EXPECT_EQ(popen->wait(0.05), std::nullopt);
  EXPECT_TRUE(mp::connection::wait({popen->sentinel()}, 0.0).empty());
  go.send("go");
  EXPECT_EQ(popen->wait(60.0), 0);
  EXPECT_EQ(popen->returncode, 0);
  EXPECT_EQ(popen->poll(), 0);  // already reaped: the stored code
}

/// terminate() after the child was reaped does not signal a recycled pid.
TEST_P(TestPopenFork, SignalsAfterExitAreIgnored) {
  auto process = make_process({.target = test_popen_fork::exit_3});
  auto popen = make_popen(*process);
  EXPECT_EQ(popen->wait(), 3);
  popen->terminate();  // returncode is known: nothing is sent
  popen->kill();
  EXPECT_EQ(popen->returncode, 3);
}

/// close() runs the finalizer: the parent's pipe ends are closed.
TEST_P(TestPopenFork, CloseClosesFds) {
  auto process = make_process({.target = test_popen_fork::noop});
  auto popen = make_popen(*process);
  int sentinel = popen->sentinel();
  EXPECT_EQ(popen->wait(), 0);
  EXPECT_NE(::fcntl(sentinel, F_GETFD), -1);
  popen->close();
  EXPECT_EQ(::fcntl(sentinel, F_GETFD), -1);
  popen->close();  // idempotent
}

/// The child's own parent_sentinel: EOF when the parent goes away.
TEST_P(TestPopenFork, ParentSentinelSeesParentExit) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process middle({.target = test_popen_fork::start_grandchild_and_die, .args = {writer}});
  middle.start();
  writer.close();
  middle.join();
  EXPECT_EQ(middle.exitcode(), -SIGKILL);
  std::vector<std::string> got;
  for (;;) {
    try {
      got.push_back(reader.recv().as<std::string>());
    } catch (const mp::EOFError&) {
      break;
    }
  }
  EXPECT_EQ(got, std::vector<std::string>{"gone"});
}

/// Forking while other threads run prints CPython 3.12's DeprecationWarning,
/// once per process.  Run in a child, whose warned-once flag is still clear.
/// Python warns in os.fork() only: spawn starts a child with posix_spawn and
/// forkserver has its single-threaded server fork, so neither warns.
TEST_P(TestPopenFork, WarnsWhenForkingWithThreads) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process outer({.target = test_popen_fork::start_children_to_stderr, .args = {writer, true}});
  outer.start();
  writer.close();
  outer.join();
  EXPECT_EQ(outer.exitcode(), 0);
  std::vector<std::string> expected;
  if (GetParam() == "fork") {
    expected.push_back("multiprocessing: DeprecationWarning: This process (pid=" +
                       std::to_string(*outer.pid()) +
                       ") is multi-threaded, use of fork() may lead to deadlocks in the child.");
  }
  EXPECT_EQ(read_text_lines(reader), expected);
}

/// No warning when the process has one thread.
TEST_P(TestPopenFork, NoWarningWhenSingleThreaded) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process outer({.target = test_popen_fork::start_children_to_stderr, .args = {writer, false}});
  outer.start();
  writer.close();
  outer.join();
  EXPECT_EQ(outer.exitcode(), 0);
  EXPECT_TRUE(read_text_lines(reader).empty());
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestPopenFork, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace
}  // namespace mp_test
