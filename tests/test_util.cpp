// tests/test_util.cpp — ports CPython's _TestFinalize, _TestLogging and
// TestForkAwareThreadLock, and the util behaviours the process tests rely on
// (after-fork hooks, narration by log_to_stderr).
// Run under every start method; the children's targets are registered by name
// and report back through Pipes.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <random>
#include <thread>

#include "support.hpp"

namespace mp_test {
namespace {

namespace util = mp::util;
using mp::connection::Connection;

class TestFinalize : public WithStartMethod {};
class TestLogging : public WithStartMethod {};
class TestUtil : public WithStartMethod {};
class TestForkAwareThreadLock : public WithStartMethod {};

// The children's targets, registered by name for spawn and forkserver.
namespace test_util {

void finalize_child(Connection& conn) {
  Connection* out = &conn;  // lives until _exit below
  auto send = [out](const char* what) { return [out, what] { out->send(what); }; };
  {
    util::Finalize a(send("a"));  // the object dies at the end of this scope
  }
  util::Finalize close_b(send("b"));
  close_b();  // triggers callback for b
  close_b();  // does nothing because callback has already been called

  util::Finalize c(send("c"));  // no exit priority: never runs at exit
  util::Finalize d10(send("d10"), 1);
  util::Finalize d01(send("d01"), 0);
  util::Finalize d02(send("d02"), 0);
  util::Finalize d03(send("d03"), 0);
  util::Finalize::without_object(send("e"), -10);
  util::Finalize::without_object(send("STOP"), -100);

  // Call multiprocessing's cleanup function, then exit without running the
  // destructors of the locals above (Python: without garbage collecting them).
  util::_exit_function();
  mp::os::_exit(0);
}

void noop() {}

void send_level(Connection& conn) { conn.send(std::int64_t{mp::get_logger().getEffectiveLevel()}); }

/// With `conn` as stderr, log to stderr and start a child.
void narrate_a_start(Connection& conn) {
  ::dup2(conn.fileno(), 2);
  mp::log_to_stderr(util::SUBDEBUG);
  mp::Process p({.target = noop});
  p.start();
  p.join();
}

void read_stdin(Connection& conn) {
  char buffer[16];
  ssize_t n = ::read(0, buffer, sizeof buffer);
  conn.send(std::to_string(n));
}

void send_finalizer_count(Connection& conn) { conn.send(std::to_string(util::_finalizer_count())); }

}  // namespace test_util
MP_REGISTER_TARGET(test_util::finalize_child);
MP_REGISTER_TARGET(test_util::send_finalizer_count);
MP_REGISTER_TARGET(test_util::noop);
MP_REGISTER_TARGET(test_util::send_level);
MP_REGISTER_TARGET(test_util::narrate_a_start);
MP_REGISTER_TARGET(test_util::read_stdin);

/// _TestFinalize.test_finalize
TEST_P(TestFinalize, Finalize) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_util::finalize_child, .args = {writer}, .daemon = true});
  p.start();
  writer.close();
  p.join();
  std::vector<std::string> result;
  for (const std::string& line : recv_strings(reader)) {
    if (line == "STOP") break;
    result.push_back(line);
  }
  EXPECT_EQ(result, (std::vector<std::string>{"a", "b", "d10", "d03", "d02", "d01", "e"}));
}

/// _TestFinalize.test_thread_safety (bpo-24484): _run_finalizers() while
/// another thread keeps creating and destroying finalizers.
TEST(TestFinalizeOnce, ThreadSafety) {
  std::size_t before = util::_finalizer_count();
  std::atomic<bool> finish{false};
  std::atomic<int> calls{0};
  std::thread runner([&] {
    while (!finish) util::_run_finalizers(1000);  // only the test's priorities (1000+)
  });
  std::thread maker([&] {
    std::mt19937 random(42);
    std::vector<util::Finalize> live;
    while (!finish) {
      live.emplace_back([&calls] { ++calls; }, 1000 + static_cast<int>(random() % 100));
      if (live.size() > 50) live.erase(live.begin(), live.begin() + 25);
    }
  });
  mp::os::sleep(0.5);
  finish = true;
  runner.join();
  maker.join();
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(util::_finalizer_count(), before);
}

/// Finalize.__repr__, cancel() and still_active().
TEST(TestFinalizeOnce, ReprAndCancel) {
  int ran = 0;
  util::Finalize f([&ran] { ++ran; }, 5, "close_things");
  EXPECT_TRUE(f.still_active());
  EXPECT_EQ(f.repr(), "<Finalize object, callback=close_things, exitpriority=5>");
  f.cancel();
  EXPECT_FALSE(f.still_active());
  EXPECT_EQ(f.repr(), "<Finalize object, dead>");
  f();
  EXPECT_EQ(ran, 0);
}

/// A finalizer inherited through fork does not run in the child.
TEST_P(TestFinalize, OnlyRunsInCreatingProcess) {
  if (GetParam() != "fork") GTEST_SKIP() << "fork only: the child calls its fork-made copy of the parent's finalizer";
  Channel ch;
  int fd = ch.write_fd();
  auto f = std::make_unique<util::Finalize>([fd] { Channel::write_all(fd, "ran\n"); }, 0);
  util::Finalize* inherited = f.get();
  mp::Process p({.target = [inherited] { (*inherited)(); }});  // the child's copy
  p.start();
  p.join();
  f->cancel();
  ch.close_writer();
  EXPECT_TRUE(ch.lines().empty());
}

/// The same under every start method: a finalizer of the parent's, with an
/// exit priority, does not run when a child exits (under fork the child's
/// copy of the registry is cleared; a spawned child never had it).
TEST_P(TestFinalize, ParentFinalizerNotRunAtChildExit) {
  auto [reader, writer] = mp::Pipe(false);
  Connection* w = &writer;
  util::Finalize f([w] { w->send("ran"); }, 0);
  mp::Process p({.target = test_util::noop});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  f.cancel();
  writer.close();
  EXPECT_TRUE(recv_strings(reader).empty());
}

/// The same with one finalizer held by its handle and one that no handle
/// holds (Python: Finalize(None, ...)): neither runs in the child, and under
/// fork the child's registry is empty when its target runs (the held ones,
/// with the Popen's own, are forgotten whole; the other is erased).
TEST_P(TestFinalize, ChildForgetsHeldAndUnheldFinalizers) {
  auto [reader, writer] = mp::Pipe(false);
  Connection* w = &writer;
  util::Finalize held([w] { w->send("held ran"); }, 0);
  util::Finalize unheld = util::Finalize::without_object([w] { w->send("unheld ran"); }, 0);
  mp::Process p({.target = test_util::send_finalizer_count, .args = {writer}});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  held.cancel();
  unheld.cancel();
  writer.close();
  std::vector<std::string> got = recv_strings(reader);
  ASSERT_EQ(got.size(), 1u);  // the count only: no finalizer of the parent's ran
  if (GetParam() == "fork") {
    EXPECT_EQ(got[0], "0");
  }
}

/// _TestLogging.test_enable_logging
TEST(TestLoggingOnce, EnableLogging) {
  util::Logger& logger = mp::get_logger();
  int old = logger.level();
  logger.setLevel(util::SUBWARNING);
  EXPECT_FALSE(logger.isEnabledFor(util::DEBUG));
  EXPECT_FALSE(logger.isEnabledFor(util::INFO));
  EXPECT_TRUE(logger.isEnabledFor(util::WARNING));
  logger.setLevel(old);
}

/// _TestLogging.test_level: the child inherits the logger's level.
TEST_P(TestLogging, Level) {
  const int LEVEL1 = 32;
  util::Logger& logger = mp::get_logger();
  int old = logger.level();
  logger.setLevel(LEVEL1);
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_util::send_level, .args = {writer}});
  p.start();
  writer.close();
  EXPECT_EQ(reader.recv().as<std::int64_t>(), LEVEL1);
  p.join();
  logger.setLevel(old);
  EXPECT_EQ(util::level_name(util::SUBDEBUG), "SUBDEBUG");
  EXPECT_EQ(util::level_name(util::SUBWARNING), "SUBWARNING");
  EXPECT_EQ(util::level_name(7), "Level 7");
}

/// log_to_stderr(SUBDEBUG) narrates a start and an exit the way Python does.
TEST_P(TestLogging, NarratesStartAsPython) {
  auto [reader, writer] = mp::Pipe(false);
  // In a child, so that this binary's own logger is left untouched.
  mp::Process outer({.target = test_util::narrate_a_start, .args = {writer}});
  outer.start();
  writer.close();
  outer.join();
  std::string n = outer.name();
  std::vector<std::string> lines = read_text_lines(reader);
  auto has = [&lines](const std::string& text) {
    return std::find(lines.begin(), lines.end(), text) != lines.end();
  };
  EXPECT_TRUE(has("[INFO/" + n + ":1] child process calling self.run()"));
  EXPECT_TRUE(has("[INFO/" + n + ":1] process shutting down"));
  EXPECT_TRUE(has("[DEBUG/" + n + ":1] running all \"atexit\" finalizers with priority >= 0"));
  EXPECT_TRUE(has("[DEBUG/" + n + ":1] running the remaining \"atexit\" finalizers"));
  EXPECT_TRUE(has("[INFO/" + n + ":1] process exiting with exitcode 0"));
  EXPECT_TRUE(has("[INFO/" + n + "] process shutting down"));
  EXPECT_EQ(outer.exitcode(), 0);
}

/// register_after_fork: the hook runs in each forked child, in order, and
/// stops when its registration is dropped.  The registry is this process's
/// memory: a spawned child (or one forked by the fork server, a fresh
/// program) has not got the hooks, as in Python.
TEST_P(TestUtil, RegisterAfterFork) {
  auto [reader, writer] = mp::Pipe(false);
  Connection* w = &writer;
  {
    auto first = util::register_after_fork([w] { w->send("first"); });
    auto second = util::register_after_fork([w] { w->send("second"); });
    mp::Process p({.target = test_util::noop});
    p.start();
    p.join();
  }
  mp::Process q({.target = test_util::noop});
  q.start();
  q.join();
  writer.close();
  std::vector<std::string> expected;
  if (GetParam() == "fork") expected = {"first", "second"};
  EXPECT_EQ(recv_strings(reader), expected);
}

/// _close_stdin: the child's stdin reads EOF from /dev/null.
TEST_P(TestUtil, ChildStdinIsDevNull) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_util::read_stdin, .args = {writer}});
  p.start();
  writer.close();
  p.join();
  EXPECT_EQ(recv_strings(reader), std::vector<std::string>{"0"});
}

/// _at_fork_reinit (the port's twin of Lock._at_fork_reinit, run by the fork
/// handlers) gives back an unlocked mutex both when it was held, as by a
/// thread that a forked child does not have, and when it was free (then it
/// leaves the mutex as it is).
TEST(TestUtilOnce, AtForkReinitUnlocks) {
  std::mutex held;
  held.lock();  // the thread that held it "is gone"
  util::_at_fork_reinit(held);
  ASSERT_TRUE(held.try_lock());
  held.unlock();
  std::mutex used;
  used.lock();
  used.unlock();
  util::_at_fork_reinit(used);
  ASSERT_TRUE(used.try_lock());
  used.unlock();
}

/// close_fds closes what it is given; an fd that is not open is Python's
/// OSError from os.close (EBADF).
TEST(TestUtilOnce, CloseFds) {
  auto [r, w] = mp::os::pipe();
  int read_fd = r.release(), write_fd = w.release();
  util::close_fds({read_fd, write_fd});
  EXPECT_EQ(::fcntl(read_fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(::fcntl(write_fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  try {
    util::close_fds({read_fd});
    ADD_FAILURE() << "closing a closed fd did not raise";
  } catch (const mp::OSError& e) {
    EXPECT_EQ(e.errno_value(), EBADF);
  }
}

/// spawnv_passfds checks each file action: an fd that would have to be parked
/// at or above RLIMIT_NOFILE is refused, as OSError EMFILE (glibc says EBADF:
/// the child would need more fds than the limit allows), instead of being
/// silently left out of the child.  Asked in a forked child, whose limit may be lowered.
TEST(TestSpawnvPassfds, RefusesWhatItCannotPass) {
  pid_t pid = mp::os::fork();
  if (pid == 0) {
    int code = 1;
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = 64;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0 && ::dup2(STDERR_FILENO, 63) == 63) {
      try {
        pid_t child = util::spawnv_passfds("/bin/true", {"true"}, {63});  // parked at 64: over the limit
        ::waitpid(child, nullptr, 0);
        code = 2;  // started without its fd
      } catch (const mp::OSError& e) {
        code = e.errno_value() == EMFILE ? 0 : 3;
      }
    }
    mp::os::_exit(code);
  }
  EXPECT_EQ(mp::os::waitstatus_to_exitcode(mp::os::waitpid(pid, 0).second), 0)
      << "1: setup failed, 2: the child was started, 3: another errno";
}

namespace test_util {
/// Python: TestForkAwareThreadLock.child: start processes n deep; the last
/// reports how many after-fork callbacks its process has registered.
void fork_aware_child(std::int64_t n, Connection& conn) {
  if (n > 1) {
    mp::Process p({.target = fork_aware_child, .args = {n - 1, conn}});
    p.start();
    conn.close();
    join_process(p);
  } else {
    conn.send(static_cast<std::int64_t>(util::_afterfork_count()));
  }
  conn.close();
}

/// A ForkAwareThreadLock held by another thread at fork(): the child takes it
/// at once; a ForkAwareLocal's value is gone there.
struct ForkAwareState {
  util::ForkAwareThreadLock lock;
  util::ForkAwareLocal<std::string> local;
};
ForkAwareState* fork_aware_state = nullptr;

void use_fork_aware_state(Connection& conn) {
  conn.send(fork_aware_state->lock.acquire(false) ? "acquired" : "held");
  conn.send(fork_aware_state->local.has_value() ? "local kept" : "local empty");
}
}  // namespace test_util
MP_REGISTER_TARGET(test_util::fork_aware_child);
MP_REGISTER_TARGET(test_util::use_fork_aware_state);

/// TestForkAwareThreadLock.test_lock (issue #17555): processes started five
/// generations deep do not pile up after-fork entries for one lock (the
/// registry would have grown about 2**n).
TEST_P(TestForkAwareThreadLock, Lock) {
  auto [r, w] = mp::Pipe(false);
  util::ForkAwareThreadLock l;
  const auto old_size = static_cast<std::int64_t>(util::_afterfork_count());
  mp::Process p({.target = test_util::fork_aware_child, .args = {5, w}});
  p.start();
  w.close();
  auto new_size = r.recv().as<std::int64_t>();
  join_process(p);
  EXPECT_LE(new_size, old_size);
}

/// ForkAwareThreadLock and ForkAwareLocal after fork: the lock the parent
/// holds while it forks is free in the child (the mutex the child copied is
/// still marked held, by a thread that the child will never run), and this
/// thread's local value is gone there.  (A spawned child builds neither.)
TEST_P(TestUtil, ForkAwareThreadLockAndLocal) {
  if (GetParam() != "fork") GTEST_SKIP() << "only a forked child inherits the parent's memory";
  test_util::ForkAwareState state;
  test_util::fork_aware_state = &state;
  state.local.get() = "parent's";
  EXPECT_TRUE(state.local.has_value());
  auto [r, w] = mp::Pipe(false);
  mp::Process p({.target = test_util::use_fork_aware_state, .args = {w}});
  {
    std::lock_guard guard(state.lock);
    p.start();
  }
  w.close();
  EXPECT_EQ(recv_strings(r), (std::vector<std::string>{"acquired", "local empty"}));
  join_process(p);
  EXPECT_TRUE(state.lock.try_lock());
  state.lock.release();
  EXPECT_EQ(state.local.get(), "parent's");
  test_util::fork_aware_state = nullptr;
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestFinalize, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestLogging, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestUtil, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestForkAwareThreadLock, ::testing::ValuesIn(start_methods()),
                         method_name);

/// Not in CPython: trace mode.  util::trace(true) makes os::pipe() write
/// "[<pid>] pipe: read_end R, write_end W" to stderr in one line;
/// util::trace(false) stops it.
TEST(TestTrace, SwitchedOnAndOffFromCode) {
  auto [err_r, err_w] = mp::os::pipe();
  int saved = ::dup(STDERR_FILENO);  // the test's own stderr, put back below
  ASSERT_GE(saved, 0);
  bool was_on = util::trace_enabled();
  ::dup2(err_w.get(), STDERR_FILENO);  // stderr into the pipe while tracing
  util::trace(true);
  auto [r, w] = mp::os::pipe();
  util::trace(false);
  auto [quiet_r, quiet_w] = mp::os::pipe();  // not traced
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  util::trace(was_on);
  err_w.close();
  std::string got = mp::os::read(err_r.get(), 4096);
  EXPECT_EQ(got, "[" + std::to_string(::getpid()) + "] pipe: read_end " + std::to_string(r.get()) +
                     ", write_end " + std::to_string(w.get()) + "\n");
  EXPECT_TRUE(quiet_r && quiet_w);
}

/// fork() while other threads make and drop queues, locks and finalizers
/// (each adds to and removes from util's registries): some forks land while
/// a thread of the parent holds the registries' lock or is changing one.
/// Each forked child makes its own, uses them and ends: fork() holds that
/// lock, so the child gets it free and the registries whole.  Fork only:
/// about fork's copy.
TEST(TestUtilFork, ForkWhileThreadsMakeQueuesLocksAndFinalizers) {
  int forked = fork_while_threads_churn(
      2,
      [] {
        auto q = mp::Queue();
        auto lock = mp::Lock();
        util::Finalize f([] {}, 5);
      },
      [] {
        auto q = mp::Queue();
        q.put(mp::Object(1));
        if (q.get() != mp::Object(1)) throw mp::AssertionError("the queue lost its item");
        auto lock = mp::Lock();
        if (!lock.acquire(false)) throw mp::AssertionError("a new lock was held");
        lock.release();
        int ran = 0;
        util::Finalize f([&ran] { ++ran; }, 5);
        f();
        if (ran != 1) throw mp::AssertionError("the finalizer did not run");
      },
      100);
  EXPECT_GE(forked, 10);
}

}  // namespace
}  // namespace mp_test
