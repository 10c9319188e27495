// tests/test_process.cpp — ports CPython's _TestProcess and _TestSubclassingProcess
// (Lib/test/_test_multiprocessing.py), run once per start method as CPython's
// mixins run them: WithProcesses/TestProcess.<Case>/{fork,spawn,forkserver}.
// Under spawn and forkserver a child is this binary run again: targets are
// plain functions registered by name (MP_REGISTER_TARGET) and children report
// back through Pipes passed as arguments.
#include <fcntl.h>
#include <signal.h>
#include <stdio_ext.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "support.hpp"

namespace mp_test {
namespace {

using mp::Object;
using mp::connection::Connection;

class TestProcess : public WithStartMethod {
 protected:
  bool forking() const { return GetParam() == "fork"; }
};
class TestSubclassingProcess : public WithStartMethod {};

bool contains(const std::vector<mp::BaseProcess*>& list, const mp::BaseProcess* p) {
  return std::find(list.begin(), list.end(), p) != list.end();
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// The children's targets: registered by name ("test_process::noop") so that a
// spawned child finds them.
namespace test_process {
void sleep_some() { mp::os::sleep(100); }
void sleep_for(double seconds) { mp::os::sleep(seconds); }
void noop() {}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::sleep_some);
MP_REGISTER_TARGET(test_process::sleep_for);
MP_REGISTER_TARGET(test_process::noop);
using test_process::noop;
using test_process::sleep_for;
using test_process::sleep_some;

/// _TestProcess.test_current
TEST(TestProcessOnce, Current) {
  mp::BaseProcess& current = mp::current_process();
  EXPECT_TRUE(current.is_alive());
  EXPECT_FALSE(current.daemon());
  EXPECT_EQ(current.authkey().size(), 32u);
  EXPECT_EQ(current.ident(), getpid());
  EXPECT_EQ(current.exitcode(), std::nullopt);
  EXPECT_EQ(current.name(), "MainProcess");
  EXPECT_EQ(mp::parent_process(), nullptr);
}

/// Python: AuthenticationString.__reduce__ (process.py): outside spawning the
/// authkey refuses to be pickled, so it cannot be sent over a connection by
/// accident; as bytes it sends.  (That it does cross to a spawned child is
/// TestProcess.Process: the child reports the parent's key.)
TEST(TestAuthenticationString, RefusesToBePickledOutsideSpawning) {
  auto [a, b] = mp::Pipe();
  const mp::AuthenticationString& key = mp::current_process().authkey();
  try {
    a.send(key);
    ADD_FAILURE() << "the authkey was sent";
  } catch (const mp::TypeError& e) {
    EXPECT_STREQ(e.what(), "Pickling an AuthenticationString object is disallowed for security reasons");
  }
  EXPECT_FALSE(b.poll(0));  // nothing reached the peer
  EXPECT_THROW(mp::reduction::dumps(Object(Object::List{key})), mp::TypeError);
  a.send(mp::Bytes(key));
  EXPECT_EQ(b.recv().as<mp::Bytes>(), mp::Bytes(key));
}

/// terminate() and kill() before start(): Python's `self._popen.terminate()`
/// meets None and raises AttributeError; the port raises the same.
TEST(TestProcessUnstarted, TerminateAndKillRaiseAttributeError) {
  mp::Process p({.target = noop});
  try {
    p.terminate();
    ADD_FAILURE() << "no AttributeError";
  } catch (const mp::AttributeError& e) {
    EXPECT_STREQ(e.what(), "'NoneType' object has no attribute 'terminate'");
  }
  try {
    p.kill();
    ADD_FAILURE() << "no AttributeError";
  } catch (const mp::AttributeError& e) {
    EXPECT_STREQ(e.what(), "'NoneType' object has no attribute 'kill'");
  }
}

/// _TestProcess.test_daemon_argument
TEST(TestProcessOnce, DaemonArgument) {
  mp::Process proc0({.target = noop});
  EXPECT_EQ(proc0.daemon(), mp::current_process().daemon());
  mp::Process proc1({.target = noop, .daemon = true});
  EXPECT_TRUE(proc1.daemon());
  mp::Process proc2({.target = noop, .daemon = false});
  EXPECT_FALSE(proc2.daemon());
}

namespace test_process {
void report_child(Connection& conn, std::int64_t a, std::int64_t b) {
  conn.recv();  // wait until the test has checked the live state
  mp::BaseProcess& current = mp::current_process();
  conn.send(Object(mp::Object::Tuple{{a, b}}).repr());
  conn.send(current.name());
  conn.send(hex(current.authkey().data));
  conn.send(std::to_string(*current.pid()));
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::report_child);

/// _TestProcess.test_process: the whole life cycle seen from the parent.
TEST_P(TestProcess, Process) {
  auto [conn, child_conn] = mp::Pipe();
  mp::Process p({.target = test_process::report_child,
                 .args = {child_conn, 1, 2},
                 .name = "SomeProcess"});
  p.set_daemon(true);
  mp::BaseProcess& current = mp::current_process();

  EXPECT_EQ(p.authkey(), current.authkey());
  EXPECT_FALSE(p.is_alive());
  EXPECT_TRUE(p.daemon());
  EXPECT_FALSE(contains(mp::active_children(), &p));
  EXPECT_EQ(p.exitcode(), std::nullopt);

  p.start();
  child_conn.close();

  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_TRUE(p.is_alive());
  EXPECT_TRUE(contains(mp::active_children(), &p));

  conn.send("go");
  EXPECT_EQ(recv_strings(conn),
            (std::vector<std::string>{"(1, 2)", "SomeProcess", hex(current.authkey().data),
                                      std::to_string(*p.pid())}));

  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(contains(mp::active_children(), &p));
}

namespace test_process {
void send_arg(Connection& conn, Object arg) { conn.send(arg); }
}  // namespace test_process
MP_REGISTER_TARGET(test_process::send_arg);

/// _TestProcess.test_args_argument: every kind of argument arrives as given.
TEST_P(TestProcess, ArgsArgument) {
  const std::vector<Object> cases = {Object(1), Object("str"), Object(Object::List{1}),
                                     Object(Object::Tuple{{1}})};
  for (const Object& arg : cases) {
    auto [reader, writer] = mp::Pipe(false);
    mp::Process p({.target = test_process::send_arg, .args = {writer, arg}, .daemon = true});
    p.start();
    writer.close();
    EXPECT_EQ(reader.recv().repr(), arg.repr());
    join_process(p);
  }
}

namespace test_process {
void send_parent(Connection& conn) {
  mp::BaseProcess* parent = mp::parent_process();
  conn.send(std::to_string(*parent->pid()));
  conn.send(parent->name());
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::send_parent);

/// _TestProcess.test_parent_process_attributes
TEST_P(TestProcess, ParentProcessAttributes) {
  EXPECT_EQ(mp::parent_process(), nullptr);
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_process::send_parent, .args = {writer}});
  p.start();
  writer.close();
  p.join();
  EXPECT_EQ(recv_strings(reader),
            (std::vector<std::string>{std::to_string(getpid()), mp::current_process().name()}));
}

namespace test_process {
void report_parent_status(Connection& conn) {
  mp::BaseProcess* parent = mp::parent_process();
  conn.send(parent->is_alive() ? "alive" : "not alive");
  parent->join(60.0);
  conn.send(parent->is_alive() ? "alive" : "not alive");
}

void create_grandchild(Connection& conn) {
  mp::Process p({.target = report_parent_status, .args = {conn}});
  p.start();
  mp::os::sleep(300);
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::report_parent_status);
MP_REGISTER_TARGET(test_process::create_grandchild);

/// _TestProcess.test_parent_process: a grandchild sees its parent die.
TEST_P(TestProcess, ParentProcess) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_process::create_grandchild, .args = {writer}});
  p.start();
  writer.close();
  EXPECT_EQ(reader.recv().as<std::string>(), "alive");
  p.terminate();
  p.join();
  // Then EOF: the grandchild has exited too.
  EXPECT_EQ(recv_strings(reader), std::vector<std::string>{"not alive"});
}

namespace test_process {
void send_native_id(Connection& conn) { conn.send(std::to_string(::syscall(SYS_gettid))); }
}  // namespace test_process
MP_REGISTER_TARGET(test_process::send_native_id);

/// _TestProcess.test_process_mainthread_native_id
TEST_P(TestProcess, ProcessMainthreadNativeId) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_process::send_native_id, .args = {writer}});
  p.start();
  writer.close();
  std::string child_id = reader.recv().as<std::string>();
  p.join();
  EXPECT_NE(child_id, std::to_string(::syscall(SYS_gettid)));
}

int kill_process(void (mp::BaseProcess::*meth)()) {
  mp::Process p({.target = sleep_some, .daemon = true});
  p.start();
  EXPECT_TRUE(p.is_alive());
  EXPECT_TRUE(contains(mp::active_children(), &p));
  EXPECT_EQ(p.exitcode(), std::nullopt);

  // join(0) and join(-1) return at once, the child still running.
  double t0 = mp::os::monotonic();
  p.join(0);
  EXPECT_LT(mp::os::monotonic() - t0, 5.0);
  EXPECT_TRUE(p.is_alive());
  t0 = mp::os::monotonic();
  p.join(-1);
  EXPECT_LT(mp::os::monotonic() - t0, 5.0);
  EXPECT_TRUE(p.is_alive());

  (p.*meth)();
  join_process(p);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(contains(mp::active_children(), &p));
  p.join();  // a second join is harmless
  return *p.exitcode();
}

/// _TestProcess.test_terminate
TEST_P(TestProcess, Terminate) {
  EXPECT_EQ(kill_process(&mp::BaseProcess::terminate), -SIGTERM);
}

/// _TestProcess.test_kill
TEST_P(TestProcess, Kill) { EXPECT_EQ(kill_process(&mp::BaseProcess::kill), -SIGKILL); }

/// _TestProcess.test_cpu_count
TEST(TestProcessOnce, CpuCount) {
  int cpus = mp::cpu_count();
  EXPECT_GE(cpus, 1);
}

/// _TestProcess.test_active_children
TEST_P(TestProcess, ActiveChildren) {
  mp::Process p({.target = sleep_for, .args = {0.1}});
  EXPECT_FALSE(contains(mp::active_children(), &p));
  p.set_daemon(true);
  p.start();
  EXPECT_TRUE(contains(mp::active_children(), &p));
  p.join();
  EXPECT_FALSE(contains(mp::active_children(), &p));
}

namespace test_process {
void recurse(Connection& conn, std::vector<int> id) {
  conn.send(Object(id).repr());
  if (id.size() < 2) {
    for (int i = 0; i < 2; ++i) {
      std::vector<int> next = id;
      next.push_back(i);
      mp::Process p({.target = recurse, .args = {conn, next}});
      p.start();
      p.join();
    }
  }
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::recurse);

/// _TestProcess.test_recursion: children start children, in order.
TEST_P(TestProcess, Recursion) {
  auto [reader, writer] = mp::Pipe(false);
  test_process::recurse(writer, {});
  writer.close();
  std::vector<std::string> expected = {"[]", "[0]", "[0, 0]", "[0, 1]", "[1]", "[1, 0]", "[1, 1]"};
  EXPECT_EQ(recv_strings(reader), expected);
}

namespace test_process {
void wait_for_go(Connection& conn) { conn.recv(); }
}  // namespace test_process
MP_REGISTER_TARGET(test_process::wait_for_go);

/// _TestProcess.test_sentinel
TEST_P(TestProcess, Sentinel) {
  auto [go, child_go] = mp::Pipe();
  mp::Process p({.target = test_process::wait_for_go, .args = {child_go}});
  EXPECT_THROW(p.sentinel(), mp::ValueError);
  p.start();
  int sentinel = p.sentinel();
  EXPECT_TRUE(mp::connection::wait({sentinel}, 0.0).empty());
  go.send("go");
  p.join();
  EXPECT_EQ(mp::connection::wait({sentinel}, 1.0), std::vector<int>{sentinel});
}

/// _TestProcess.test_close
TEST_P(TestProcess, Close) {
  auto [go, child_go] = mp::Pipe();
  auto p = std::make_unique<mp::Process>(
      mp::ProcessOptions{.target = test_process::wait_for_go, .args = {child_go}, .daemon = true});
  p->start();
  EXPECT_TRUE(p->is_alive());
  // The child is still alive: it cannot be closed.
  try {
    p->close();
    ADD_FAILURE() << "close() of a running process did not throw";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(),
                 "Cannot close a process while it is still running. You should first call "
                 "join() or terminate().");
  }
  go.send("go");
  p->join();
  EXPECT_FALSE(p->is_alive());
  EXPECT_EQ(p->exitcode(), 0);
  p->close();
  EXPECT_THROW(p->is_alive(), mp::ValueError);
  EXPECT_THROW(p->join(), mp::ValueError);
  EXPECT_THROW(p->terminate(), mp::ValueError);
  EXPECT_THROW(p->exitcode(), mp::ValueError);
  EXPECT_THROW(p->pid(), mp::ValueError);
  EXPECT_THROW(p->sentinel(), mp::ValueError);
  EXPECT_EQ(p->name().rfind("Process-", 0), 0u);  // name stays readable
  p->close();                                      // twice is fine
  EXPECT_NE(p->repr().find(" closed daemon>"), std::string::npos);
  p.reset();  // and the object can go
}

/// _TestProcess.test_many_processes
TEST_P(TestProcess, ManyProcesses) {
  const int N = 100;
  std::vector<std::unique_ptr<mp::Process>> procs;
  for (int i = 0; i < N; ++i) {
    procs.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{.target = sleep_for, .args = {0.01}}));
  }
  for (auto& p : procs) p->start();
  for (auto& p : procs) join_process(*p);
  for (auto& p : procs) EXPECT_EQ(p->exitcode(), 0);

  procs.clear();
  for (int i = 0; i < N; ++i) {
    procs.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{.target = sleep_some}));
  }
  for (auto& p : procs) p->start();
  mp::os::sleep(0.001);  // let the children start...
  for (auto& p : procs) p->terminate();
  for (auto& p : procs) join_process(*p);
  for (auto& p : procs) EXPECT_EQ(p->exitcode(), -SIGTERM);
}

/// _TestProcess.test_lose_target_ref: start() drops the parent's reference
/// to the target and its arguments (bpo-30775).  The target here is a lambda
/// that owns the object: fork only (a lambda cannot cross to a spawned child);
/// LoseArgsRef below checks the same drop under every method.
TEST_P(TestProcess, LoseTargetRef) {
  if (!forking()) GTEST_SKIP() << "fork only: the target is a lambda owning the object";
  Channel ch;
  int fd = ch.write_fd();
  auto c = std::make_shared<int>(5);
  std::weak_ptr<int> wr = c;
  mp::Process p({.target = [c, fd] { Channel::write_all(fd, std::to_string(*c) + "\n"); }});
  c.reset();
  EXPECT_FALSE(wr.expired());  // the Process holds it until start()
  p.start();
  EXPECT_TRUE(wr.expired());
  ch.close_writer();
  p.join();
  EXPECT_EQ(ch.recv_line(), "5");
}

/// test_lose_target_ref's point under every start method: start() drops the
/// target's arguments in the parent, and the child still gets them.
TEST_P(TestProcess, LoseArgsRef) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_process::send_arg, .args = {writer, 5}});
  writer.close();  // the args keep their own duplicate until start()
  EXPECT_EQ(p._args().size(), 2u);
  p.start();
  EXPECT_TRUE(p._args().empty());
  EXPECT_EQ(reader.recv().repr(), "5");
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

/// _TestProcess.test_wait_for_threads: a child exits only after its
/// non-daemon threads end; daemon threads do not hold it.
namespace test_process {
void start_threads(Connection& arg) {
  // Leaked on purpose: a thread object must outlive the target's scope, as
  // Python's Thread objects do; the process exit ends them.  So is the
  // connection the threads write to.
  auto* conn = new Connection(std::move(arg));
  auto* t1 = new mp::dummy::Process({.target = [conn] { mp::os::sleep(0.5); conn->send("set"); }});
  auto* t2 = new mp::dummy::Process(
      {.target = [conn] { mp::os::sleep(20); conn->send("cleared"); }, .daemon = true});
  t1->start();
  t2->start();
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::start_threads);

TEST_P(TestProcess, WaitForThreads) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process proc({.target = test_process::start_threads, .args = {writer}});
  double t0 = mp::os::monotonic();
  proc.start();
  writer.close();
  proc.join();
  EXPECT_LT(mp::os::monotonic() - t0, 15.0);
  EXPECT_EQ(proc.exitcode(), 0);
  EXPECT_EQ(recv_strings(reader), std::vector<std::string>{"set"});
}

/// A stream of this process redirected to /dev/full, with text pending in the
/// stdio buffer, so that every flush fails (ENOSPC).
class BrokenStream {
 public:
  BrokenStream(int fd, FILE* stream) : fd_(fd), stream_(stream), saved_(::dup(fd)) {
    std::fflush(stream_);
    int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    ::dup2(full, fd_);
    ::close(full);
    std::fputs("pending text that cannot be flushed", stream_);
  }
  ~BrokenStream() {
    __fpurge(stream_);
    std::clearerr(stream_);
    ::dup2(saved_, fd_);
    ::close(saved_);
  }

 private:
  int fd_;
  FILE* stream_;
  int saved_;
};

namespace test_process {
void send_set(Connection& conn) { conn.send("set"); }

void break_stream_then_send(Connection& conn, int fd, std::string how) {
  std::fputs("pending", fd == 1 ? stdout : stderr);
  if (how == "close") {
    ::close(fd);
  } else {
    int full = ::open("/dev/full", O_WRONLY);
    ::dup2(full, fd);
  }
  conn.send("set");
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::send_set);
MP_REGISTER_TARGET(test_process::break_stream_then_send);

/// _TestProcess.test_error_on_stdio_flush_1: broken streams in the parent.
TEST_P(TestProcess, ErrorOnStdioFlush1) {
  for (auto [fd, stream] : {std::pair{1, stdout}, std::pair{2, stderr}}) {
    auto [reader, writer] = mp::Pipe(false);
    {
      BrokenStream broken(fd, stream);
      mp::Process proc({.target = test_process::send_set, .args = {writer}});
      proc.start();
      proc.join();
      EXPECT_EQ(proc.exitcode(), 0);
    }
    writer.close();
    EXPECT_EQ(recv_strings(reader), std::vector<std::string>{"set"});
  }
}

/// _TestProcess.test_error_on_stdio_flush_2: the child breaks its own streams.
TEST_P(TestProcess, ErrorOnStdioFlush2) {
  for (int fd : {1, 2}) {
    for (const char* action : {"close", "remove"}) {
      auto [reader, writer] = mp::Pipe(false);
      mp::Process proc({.target = test_process::break_stream_then_send, .args = {writer, fd, action}});
      proc.start();
      proc.join();
      EXPECT_EQ(proc.exitcode(), 0) << "fd " << fd << " " << action;
      writer.close();
      EXPECT_EQ(recv_strings(reader), std::vector<std::string>{"set"});
    }
  }
}

std::atomic<bool> g_got_signal{false};

namespace test_process {
void signal_after(std::int64_t pid, double delay) {
  mp::os::sleep(delay);
  ::kill(static_cast<pid_t>(pid), SIGUSR1);
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::signal_after);

/// _TestPollEintr.test_poll_eintr: join() is not cut short by a signal.
TEST_P(TestProcess, PollEintr) {
  g_got_signal = false;
  struct sigaction action {}, old {};
  action.sa_handler = [](int) { g_got_signal = true; };
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the wait really sees EINTR
  sigaction(SIGUSR1, &action, &old);
  pid_t me = getpid();
  mp::Process killer({.target = test_process::signal_after, .args = {me, 0.1}});
  killer.start();
  mp::Process p({.target = sleep_for, .args = {0.5}});
  p.start();
  p.join();
  killer.join();
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_TRUE(g_got_signal);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(killer.exitcode(), 0);
}

// ---------------------------------------------------------------- errors, repr, names

/// Checklist 6: start() twice is an AssertionError; before start nothing is known.
TEST_P(TestProcess, StartTwice) {
  mp::Process p({.target = noop});
  EXPECT_EQ(p.pid(), std::nullopt);
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_FALSE(p.is_alive());
  try {
    p.join();
    ADD_FAILURE() << "join() before start() did not throw";
  } catch (const mp::AssertionError& e) {
    EXPECT_STREQ(e.what(), "can only join a started process");
  }
  p.start();
  try {
    p.start();
    ADD_FAILURE() << "second start() did not throw";
  } catch (const mp::AssertionError& e) {
    EXPECT_STREQ(e.what(), "cannot start a process twice");
  }
  p.join();
  EXPECT_THROW(p.set_daemon(true), mp::AssertionError);
}

/// Checklist 9: a daemonic process may not have children.
namespace test_process {
void try_to_start_child(Connection& conn) {
  mp::Process grandchild({.target = noop});
  try {
    grandchild.start();
    conn.send("started");
  } catch (const mp::AssertionError& e) {
    conn.send(e.what());
  }
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::try_to_start_child);

TEST_P(TestProcess, DaemonCannotHaveChildren) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_process::try_to_start_child, .args = {writer}, .daemon = true});
  p.start();
  writer.close();
  p.join();
  EXPECT_EQ(recv_strings(reader),
            std::vector<std::string>{"daemonic processes are not allowed to have children"});
}

/// A Process object made by the parent cannot be started or joined by a child.
TEST_P(TestProcess, StartFromAnotherProcess) {
  if (!forking()) GTEST_SKIP() << "fork only: the child uses the parent's Process object in memory";
  Channel ch;
  int fd = ch.write_fd();
  mp::Process made_by_parent({.target = noop});
  mp::Process p({.target = [fd, &made_by_parent] {
    try {
      made_by_parent.start();
    } catch (const mp::AssertionError& e) {
      Channel::write_all(fd, std::string(e.what()) + "\n");
    }
  }});
  p.start();
  ch.close_writer();
  p.join();
  EXPECT_EQ(ch.lines(),
            std::vector<std::string>{"can only start a process object created by current process"});
}

/// Checklist 8: default names Process-N, and Process-N:M for a child's child.
namespace test_process {
void send_names(Connection& conn) {
  mp::Process inner({.target = noop});
  conn.send(mp::current_process().name() + " " + inner.name());
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::send_names);

TEST_P(TestProcess, Names) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_process::send_names, .args = {writer}});
  const std::string name = p.name();
  ASSERT_EQ(name.rfind("Process-", 0), 0u);
  p.start();
  writer.close();
  p.join();
  EXPECT_EQ(recv_strings(reader), std::vector<std::string>{name + " " + name + ":1"});
  auto ctx_process = mp::get_context("fork").Process({.target = noop});
  EXPECT_EQ(ctx_process->name().rfind("ForkProcess-", 0), 0u);
}

/// Python's __repr__ in each state.
TEST_P(TestProcess, Repr) {
  mp::Process p({.target = sleep_some, .name = "Worker", .daemon = true});
  std::string parent = std::to_string(getpid());
  EXPECT_EQ(p.repr(), "<Process name='Worker' parent=" + parent + " initial daemon>");
  p.start();
  std::string pid = std::to_string(*p.pid());
  EXPECT_EQ(p.repr(), "<Process name='Worker' pid=" + pid + " parent=" + parent + " started daemon>");
  p.terminate();
  p.join();
  EXPECT_EQ(p.repr(), "<Process name='Worker' pid=" + pid + " parent=" + parent +
                          " stopped exitcode=-SIGTERM daemon>");
  p.close();
  EXPECT_EQ(p.repr(), "<Process name='Worker' parent=" + parent + " closed daemon>");
  EXPECT_EQ(mp::current_process().repr(), "<_MainProcess name='MainProcess' parent=None started>");
}

/// A wrong argument count is refused when the Process is made (Python would
/// only fail in the child, with the same TypeError).
TEST(TestProcessOnce, WrongArgumentCount) {
  try {
    mp::Process p({.target = sleep_for, .args = {1.0, 2.0}});
    ADD_FAILURE() << "no TypeError";
  } catch (const mp::TypeError& e) {
    EXPECT_STREQ(e.what(), "target takes 1 positional argument(s) but 2 were given");
  }
}

namespace test_process {
/// Start a child whose argument has the wrong type, with `err` as the stderr
/// it inherits; exit with that child's exit code.
void start_badly_typed_child(Connection& err) {
  ::dup2(err.fileno(), STDERR_FILENO);  // a copy without FD_CLOEXEC: the child inherits it
  mp::Process p({.target = sleep_for, .args = {"not a number"}, .name = "Badly-typed"});
  p.start();
  p.join();
  throw mp::SystemExit(p.exitcode().value_or(-1));
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::start_badly_typed_child);

/// A wrongly typed argument fails in the child like a Python TypeError:
/// exit code 1 and the error on stderr, under the header _bootstrap prints.
TEST_P(TestProcess, WrongArgumentType) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process outer({.target = test_process::start_badly_typed_child, .args = {writer}});
  outer.start();
  writer.close();
  join_process(outer);
  EXPECT_EQ(outer.exitcode(), 1);  // the badly typed child's
  // Under forkserver too: the outer process starts a fork server of its own
  // (as Python's child does), which has the outer's stderr.
  EXPECT_EQ(read_text_lines(reader),
            (std::vector<std::string>{"Process Badly-typed:", "TypeError: expected float, got str"}));
}

/// A Process destroyed while its child runs: the child is reaped later, not
/// left a zombie (Python's _children set would keep the object alive).
TEST_P(TestProcess, DestroyedWhileRunning) {
  {
    mp::Process p({.target = sleep_for, .args = {0.2}});
    p.start();
  }
  EXPECT_EQ(mp::_process_state().orphans.size(), 1u);
  double deadline = mp::os::monotonic() + 30;
  while (!mp::_process_state().orphans.empty() && mp::os::monotonic() < deadline) {
    mp::active_children();  // _cleanup() reaps finished orphans
    mp::os::sleep(0.05);
  }
  EXPECT_TRUE(mp::_process_state().orphans.empty());
}

namespace test_process {
void sleep_then_say_joined(Connection& conn) {
  mp::os::sleep(0.3);
  conn.send("joined");
}

void start_two_and_return(Connection& conn) {
  // Left running on purpose when the target returns: the exit function must
  // deal with them.  Held by statics, so that they stay reachable.
  static auto* daemon = new mp::Process({.target = sleep_some, .daemon = true});
  static auto* other = new mp::Process({.target = sleep_then_say_joined, .args = {conn}});
  daemon->start();
  other->start();
  conn.send(std::to_string(*daemon->pid()));
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::sleep_then_say_joined);
MP_REGISTER_TARGET(test_process::start_two_and_return);

/// Checklist 10: when a process exits, its daemonic children are terminated
/// and the others joined (util._exit_function at the end of _bootstrap).
TEST_P(TestProcess, DaemonChildrenTerminatedAtExit) {
  auto [reader, writer] = mp::Pipe(false);
  mp::Process p({.target = test_process::start_two_and_return, .args = {writer}});
  double t0 = mp::os::monotonic();
  p.start();
  writer.close();
  join_process(p);
  EXPECT_LT(mp::os::monotonic() - t0, 30.0);
  EXPECT_EQ(p.exitcode(), 0);
  auto lines = recv_strings(reader);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "joined");  // the non-daemon grandchild ran to its end
  pid_t daemon_pid = std::stoi(lines[0]);
  // The daemon was terminated and reaped by its parent: the pid is gone.
  EXPECT_EQ(::kill(daemon_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

/// The main process's side of checklist 10: a program that returns from
/// main() with a daemon and a non-daemon child running (runs exit_helper,
/// which starts them with the method under test).
TEST_P(TestProcess, ExitFunctionAtParentExit) {
  auto [r, w] = mp::os::pipe();
  const std::string method = GetParam();
  pid_t pid = mp::os::fork();
  if (pid == 0) {
    ::dup2(w.get(), 2);
    ::execl(MP_EXIT_HELPER_PATH, MP_EXIT_HELPER_PATH, method.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  w.close();
  std::string output;
  for (std::string chunk; !(chunk = mp::os::read(r.get(), 4096)).empty();) output += chunk;
  auto [_, status] = mp::os::waitpid(pid, 0);
  EXPECT_EQ(mp::os::waitstatus_to_exitcode(status), 0) << output;
  EXPECT_NE(output.find("[INFO/MainProcess] process shutting down"), std::string::npos) << output;
  EXPECT_NE(output.find("[INFO/MainProcess] calling terminate() for daemon Process-1"),
            std::string::npos) << output;
  EXPECT_NE(output.find("[INFO/MainProcess] calling join() for process Process-2"),
            std::string::npos) << output;
  EXPECT_NE(output.find("non-daemon child done"), std::string::npos) << output;
  auto at = output.find("daemon pid ");
  ASSERT_NE(at, std::string::npos) << output;
  pid_t daemon_pid = std::stoi(output.substr(at + 11));
  EXPECT_EQ(::kill(daemon_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

// ---------------------------------------------------------------- _TestSubclassingProcess

/// CPython's _UpperCaser: a Process subclass with its own run(), serving
/// requests over a pipe.  Python keeps the child's end as an attribute, which
/// pickling carries to a spawned child; here only the Process's own state
/// crosses, so the child's end travels in the args and run() reads _args().
class UpperCaser : public mp::Process {
 public:
  UpperCaser() = default;  // how a spawned child rebuilds it
  explicit UpperCaser(std::pair<Connection, Connection> pipe)
      : mp::Process({.args = {pipe.second}}), parent_conn_(std::move(pipe.first)) {}

  void run() override {
    Connection conn = mp::from_object<Connection>(_args().at(0));
    for (;;) {
      std::string line = conn.recv().as<std::string>();
      if (line == "STOP") break;
      for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      conn.send(line);
    }
  }
  std::string submit(const std::string& s) {
    parent_conn_->send(s);
    return parent_conn_->recv().as<std::string>();
  }
  void stop() { parent_conn_->send("STOP"); }

 private:
  std::optional<Connection> parent_conn_;
};
MP_REGISTER_PROCESS(UpperCaser);

/// _TestSubclassingProcess.test_subclassing
TEST_P(TestSubclassingProcess, Subclassing) {
  UpperCaser uppercaser(mp::Pipe());
  uppercaser.set_daemon(true);
  uppercaser.start();
  EXPECT_EQ(uppercaser.submit("hello"), "HELLO");
  EXPECT_EQ(uppercaser.submit("world"), "WORLD");
  uppercaser.stop();
  uppercaser.join();
  EXPECT_EQ(uppercaser.exitcode(), 0);
  EXPECT_EQ(uppercaser.name().rfind("UpperCaser-", 0), 0u) << uppercaser.name();
}

std::string make_temp_path() {
  char path[] = "/tmp/mp_test_XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  ::unlink(path);
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void redirect_stderr_to(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ::dup2(fd, 2);
  ::close(fd);
}

/// _TestSubclassingProcess.test_stderr_flush: the error report of an uncaught
/// exception reaches stderr before the child exits (CPython issue #13812).
namespace test_process {
void raise_with_stderr_to(std::string path) {
  redirect_stderr_to(path);
  throw std::runtime_error("division by zero # MARKER");
}

void exit_with_reason(std::string path, std::string reason) {
  redirect_stderr_to(path);
  throw mp::SystemExit(reason);
}
void exit_true() { throw mp::SystemExit(true); }
void exit_false() { throw mp::SystemExit(false); }
void exit_8() { throw mp::SystemExit(8); }
void exit_none() { throw mp::SystemExit(); }
void exit_256() { throw mp::SystemExit(256); }
void exit_minus_1() { throw mp::SystemExit(-1); }
}  // namespace test_process
MP_REGISTER_TARGET(test_process::raise_with_stderr_to);
MP_REGISTER_TARGET(test_process::exit_with_reason);
MP_REGISTER_TARGET(test_process::exit_true);
MP_REGISTER_TARGET(test_process::exit_false);
MP_REGISTER_TARGET(test_process::exit_8);
MP_REGISTER_TARGET(test_process::exit_none);
MP_REGISTER_TARGET(test_process::exit_256);
MP_REGISTER_TARGET(test_process::exit_minus_1);

TEST_P(TestSubclassingProcess, StderrFlush) {
  std::string testfn = make_temp_path();
  mp::Process proc({.target = test_process::raise_with_stderr_to, .args = {testfn}});
  proc.start();
  proc.join();
  std::string err = read_file(testfn);
  ::unlink(testfn.c_str());
  EXPECT_EQ(proc.exitcode(), 1);
  EXPECT_NE(err.find("Process " + proc.name() + ":\n"), std::string::npos) << err;
  EXPECT_NE(err.find("std::runtime_error: division by zero # MARKER"), std::string::npos) << err;
}

/// _TestSubclassingProcess.test_sys_exit (CPython issue 13854): SystemExit's code.
TEST_P(TestSubclassingProcess, SysExit) {
  std::string testfn = make_temp_path();
  for (std::string reason : {"[1, 2, 3]", "ignore this"}) {
    mp::Process p({.target = test_process::exit_with_reason, .args = {testfn, reason}, .daemon = true});
    p.start();
    join_process(p);
    EXPECT_EQ(p.exitcode(), 1);
    std::string content = read_file(testfn);
    EXPECT_EQ(content, reason + "\n");
    ::unlink(testfn.c_str());
  }
  struct Case {
    void (*raise)();
    int expected;
  };
  std::vector<Case> cases = {
      {test_process::exit_true, 1}, {test_process::exit_false, 0},
      {test_process::exit_8, 8},    {test_process::exit_none, 0},
      {test_process::exit_256, 0},  // the OS keeps the low 8 bits
      {test_process::exit_minus_1, 255},
  };
  for (const auto& c : cases) {
    mp::Process p({.target = c.raise, .daemon = true});
    p.start();
    join_process(p);
    EXPECT_EQ(p.exitcode(), c.expected);
  }
}

namespace test_process {
/// Python: _TestProcess._test_child_fd_inflation: report this process's
/// number of open fds, then wait.
void child_fd_inflation(mp::synchronize::Event& evt, Connection& conn) {
  std::int64_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++count;
  }
  conn.send(count);
  evt.wait();
}

/// Python: _TestProcess._sleep_and_set_event.
void sleep_and_set_event(mp::synchronize::Event& evt, double delay) {
  mp::os::sleep(delay);
  evt.set();
}
}  // namespace test_process
MP_REGISTER_TARGET(test_process::child_fd_inflation);
MP_REGISTER_TARGET(test_process::sleep_and_set_event);

/// _TestProcess.test_set_executable: a child starts with the executable set
/// as an absolute path and as a path relative to the working directory.
/// (Python's three spellings, str, bytes and PathLike, are all one
/// std::string here.)  Under fork the setting is not used.
TEST_P(TestProcess, SetExecutable) {
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe");
  for (const std::filesystem::path& path : {exe, std::filesystem::relative(exe)}) {
    mp::spawn::set_executable(path.string());
    // A fork server already running keeps the program it was started with;
    // a new one starts from the path set.
    mp::forkserver::_forkserver()._stop();
    mp::Process p;
    p.start();
    join_process(p);
    EXPECT_EQ(p.exitcode(), 0) << path;
  }
  mp::spawn::set_executable(std::nullopt);
  mp::forkserver::_forkserver()._stop();
}

/// _TestProcess.test_child_fd_inflation: the number of fds of a spawn or
/// forkserver child does not grow with the number of running children.
/// (Python reports through a Queue; here all write on one pipe, each message
/// a single atomic write.)
TEST_P(TestProcess, ChildFdInflation) {
  if (forking()) GTEST_SKIP() << "the fork method by design inherits all fds from the parent";
  const int N = 5;
  mp::synchronize::Event evt;
  auto [reader, writer] = mp::Pipe(false);
  std::vector<std::unique_ptr<mp::Process>> procs;
  for (int i = 0; i < N; ++i) {
    procs.push_back(std::make_unique<mp::Process>(
        mp::ProcessOptions{.target = test_process::child_fd_inflation, .args = {evt, writer}}));
  }
  for (auto& p : procs) p->start();
  std::set<std::int64_t> fd_counts;
  std::string all;
  for (int i = 0; i < N; ++i) {
    std::int64_t count = reader.recv().as<std::int64_t>();
    fd_counts.insert(count);
    all += std::to_string(count) + " ";
  }
  evt.set();
  for (auto& p : procs) join_process(*p);
  EXPECT_EQ(fd_counts.size(), 1u) << all;
}

/// Python: _TestProcess.check_forkserver_death (bpo-31308): the fork server
/// gets `signum` while a child it started sleeps 0.5 s; a new child still
/// starts and runs (the server is restarted if it died), and the first one
/// ends with 0, or 255 when its exit status died with the server.
void check_forkserver_death(int signum) {
  mp::forkserver::ensure_running();
  const double delay = 0.5;
  mp::synchronize::Event evt;
  mp::Process proc({.target = test_process::sleep_and_set_event, .args = {evt, delay}});
  proc.start();
  std::optional<pid_t> pid = mp::forkserver::_forkserver()._pid();
  ASSERT_TRUE(pid);
  mp::os::kill(*pid, signum);
  // give time to the fork server to die and time to proc to complete
  mp::os::sleep(delay * 2.0);

  mp::synchronize::Event evt2;
  mp::Process proc2({.target = test_process::sleep_and_set_event, .args = {evt2, 0.0}});
  proc2.start();
  join_process(proc2);
  EXPECT_TRUE(evt2.is_set());
  EXPECT_EQ(proc2.exitcode(), 0);

  join_process(proc);
  EXPECT_TRUE(evt.is_set());
  EXPECT_TRUE(proc.exitcode() == 0 || proc.exitcode() == 255) << proc.exitcode().value_or(-1000);
}

/// _TestProcess.test_forkserver_sigint: a catchable signal.
TEST_P(TestProcess, ForkserverSigint) {
  if (GetParam() != "forkserver") GTEST_SKIP() << "forkserver only";
  check_forkserver_death(SIGINT);
}

/// _TestProcess.test_forkserver_sigkill: an uncatchable signal.
TEST_P(TestProcess, ForkserverSigkill) {
  if (GetParam() != "forkserver") GTEST_SKIP() << "forkserver only";
  check_forkserver_death(SIGKILL);
}

/// fork() while other threads start processes and drop them unjoined (their
/// Popens move to the orphans list, reaped later): some forks land while a
/// thread of the parent holds the module's lock or is changing the children
/// or orphans list.  Each forked child starts and joins a child of its own
/// and ends: the child of every fork() starts with new, empty lists, built
/// without reading the parent's.  Fork only: about fork's copy.
TEST(TestProcessFork, ForkWhileThreadsStartProcesses) {
  int forked = fork_while_threads_churn(
      2,
      [] {
        auto p = mp::get_context("fork").Process({.target = [] {}});
        p->start();
        (void)mp::active_children();
      },
      [] {
        if (!mp::active_children().empty()) throw mp::AssertionError("the parent's children listed");
        auto grandchild = mp::get_context("fork").Process({.target = [] {}});
        grandchild->start();
        grandchild->join();
        if (grandchild->exitcode() != 0) throw mp::AssertionError("grandchild failed");
      },
      100);
  EXPECT_GE(forked, 10);
  // The dropped children end at once; active_children() reaps them.
  EXPECT_TRUE(wait_until([] { return mp::active_children().empty() && mp::_process_state().orphans.empty(); }));
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestProcess, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestSubclassingProcess, ::testing::ValuesIn(start_methods()),
                         method_name);

}  // namespace
}  // namespace mp_test
