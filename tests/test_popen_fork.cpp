// tests/test_popen_fork.cpp — popen_fork.Popen on its own: the pipes and
// sentinel contract, poll/wait, signals, close.
#include <fcntl.h>
#include <signal.h>

#include "support.hpp"

namespace mp_test {
namespace {

class TestPopenFork : public WithStartMethod {};

/// The sentinel reaches EOF exactly when the child exits; wait(timeout) waits
/// on it and returns nullopt while the child runs.
TEST_P(TestPopenFork, SentinelAndWait) {
  Channel go;
  int go_fd = go.read_fd();
  mp::ForkProcess process({.target = [go_fd] { mp::os::read(go_fd, 1); }});
  mp::popen_fork::Popen popen(process);
  EXPECT_GT(popen.pid, 0);
  EXPECT_EQ(popen.poll(), std::nullopt);
  EXPECT_EQ(popen.wait(0.05), std::nullopt);
  EXPECT_TRUE(mp::connection::wait({popen.sentinel()}, 0.0).empty());
  go.send("x");
  EXPECT_EQ(popen.wait(60.0), 0);
  EXPECT_EQ(popen.returncode, 0);
  EXPECT_EQ(popen.poll(), 0);  // already reaped: the stored code
}

/// terminate() after the child was reaped does not signal a recycled pid.
TEST_P(TestPopenFork, SignalsAfterExitAreIgnored) {
  mp::ForkProcess process({.target = [] { throw mp::SystemExit(3); }});
  mp::popen_fork::Popen popen(process);
  EXPECT_EQ(popen.wait(), 3);
  popen.terminate();  // returncode is known: nothing is sent
  popen.kill();
  EXPECT_EQ(popen.returncode, 3);
}

/// close() runs the finalizer: both parent ends of the pipes are closed.
TEST_P(TestPopenFork, CloseClosesFds) {
  mp::ForkProcess process({.target = [] {}});
  mp::popen_fork::Popen popen(process);
  int sentinel = popen.sentinel();
  EXPECT_EQ(popen.wait(), 0);
  EXPECT_NE(::fcntl(sentinel, F_GETFD), -1);
  popen.close();
  EXPECT_EQ(::fcntl(sentinel, F_GETFD), -1);
  popen.close();  // idempotent
}

/// The child's own parent_sentinel: EOF when the parent goes away.
TEST_P(TestPopenFork, ParentSentinelSeesParentExit) {
  Channel ch;
  int fd = ch.write_fd();
  mp::Process middle({.target = [fd] {
    auto* grandchild = new mp::Process({.target = [fd] {
      mp::parent_process()->join(60.0);  // returns when the middle process dies
      Channel::write_all(fd, mp::parent_process()->is_alive() ? "alive\n" : "gone\n");
    }});
    grandchild->start();
    ::kill(::getpid(), SIGKILL);  // die without joining it
  }});
  middle.start();
  ch.close_writer();
  middle.join();
  EXPECT_EQ(middle.exitcode(), -SIGKILL);
  EXPECT_EQ(ch.lines(), std::vector<std::string>{"gone"});
}

/// Forking while other threads run prints CPython 3.12's DeprecationWarning,
/// once per process.  Run in a child, whose warned-once flag is still clear.
TEST_P(TestPopenFork, WarnsWhenForkingWithThreads) {
  Channel err;
  int fd = err.write_fd();
  mp::Process outer({.target = [fd] {
    ::dup2(fd, 2);
    mp::dummy::Process sleeper({.target = [] { mp::os::sleep(0.5); }});
    sleeper.start();
    for (int i = 0; i < 2; ++i) {  // two forks, one warning
      mp::Process inner({.target = [] {}});
      inner.start();
      inner.join();
    }
    sleeper.join();
  }});
  outer.start();
  err.close_writer();
  outer.join();
  EXPECT_EQ(outer.exitcode(), 0);
  std::string expected = "multiprocessing: DeprecationWarning: This process (pid=" +
                         std::to_string(*outer.pid()) +
                         ") is multi-threaded, use of fork() may lead to deadlocks in the child.";
  EXPECT_EQ(err.lines(), std::vector<std::string>{expected});
}

/// No warning when the process has one thread.
TEST_P(TestPopenFork, NoWarningWhenSingleThreaded) {
  Channel err;
  int fd = err.write_fd();
  mp::Process outer({.target = [fd] {
    ::dup2(fd, 2);
    mp::Process inner({.target = [] {}});
    inner.start();
    inner.join();
  }});
  outer.start();
  err.close_writer();
  outer.join();
  EXPECT_TRUE(err.lines().empty());
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestPopenFork, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace
}  // namespace mp_test
