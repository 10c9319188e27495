// tests/test_process.cpp — ports CPython's _TestProcess and _TestSubclassingProcess
// (Lib/test/_test_multiprocessing.py), run once per start method as CPython's
// mixins run them: WithProcesses/TestProcess.<Case>/fork.
#include <fcntl.h>
#include <signal.h>
#include <stdio_ext.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "support.hpp"

namespace mp_test {
namespace {

using mp::Object;

class TestProcess : public WithStartMethod {};
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

void sleep_some() { mp::os::sleep(100); }
void sleep_for(double seconds) { mp::os::sleep(seconds); }
void noop() {}

/// _TestProcess.test_current
TEST_P(TestProcess, Current) {
  mp::BaseProcess& current = mp::current_process();
  EXPECT_TRUE(current.is_alive());
  EXPECT_FALSE(current.daemon());
  EXPECT_EQ(current.authkey().size(), 32u);
  EXPECT_EQ(current.ident(), getpid());
  EXPECT_EQ(current.exitcode(), std::nullopt);
  EXPECT_EQ(current.name(), "MainProcess");
  EXPECT_EQ(mp::parent_process(), nullptr);
}

/// _TestProcess.test_daemon_argument
TEST_P(TestProcess, DaemonArgument) {
  mp::Process proc0({.target = noop});
  EXPECT_EQ(proc0.daemon(), mp::current_process().daemon());
  mp::Process proc1({.target = noop, .daemon = true});
  EXPECT_TRUE(proc1.daemon());
  mp::Process proc2({.target = noop, .daemon = false});
  EXPECT_FALSE(proc2.daemon());
}

void report_child(int go_fd, int report_fd, std::int64_t a, std::int64_t b) {
  mp::os::read(go_fd, 1);  // wait until the test has checked the live state
  mp::BaseProcess& current = mp::current_process();
  std::ostringstream out;
  out << Object(mp::Object::Tuple{{a, b}}).repr() << "\n"
      << current.name() << "\n"
      << hex(current.authkey().data) << "\n"
      << *current.pid() << "\n";
  Channel::write_all(report_fd, out.str());
}

/// _TestProcess.test_process: the whole life cycle seen from the parent.
TEST_P(TestProcess, Process) {
  Channel go, report;
  mp::Process p({.target = report_child,
                 .args = {go.read_fd(), report.write_fd(), 1, 2},
                 .name = "SomeProcess"});
  p.set_daemon(true);
  mp::BaseProcess& current = mp::current_process();

  EXPECT_EQ(p.authkey(), current.authkey());
  EXPECT_FALSE(p.is_alive());
  EXPECT_TRUE(p.daemon());
  EXPECT_FALSE(contains(mp::active_children(), &p));
  EXPECT_EQ(p.exitcode(), std::nullopt);

  p.start();
  report.close_writer();

  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_TRUE(p.is_alive());
  EXPECT_TRUE(contains(mp::active_children(), &p));

  go.send("go");
  EXPECT_EQ(report.recv_line(), "(1, 2)");
  EXPECT_EQ(report.recv_line(), "SomeProcess");
  EXPECT_EQ(report.recv_line(), hex(current.authkey().data));
  EXPECT_EQ(report.recv_line(), std::to_string(*p.pid()));

  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(contains(mp::active_children(), &p));
}

void send_arg(int fd, Object arg) { Channel::write_all(fd, arg.repr() + "\n"); }

/// _TestProcess.test_args_argument: every kind of argument arrives as given.
TEST_P(TestProcess, ArgsArgument) {
  const std::vector<Object> cases = {Object(1), Object("str"), Object(Object::List{1}),
                                     Object(Object::Tuple{{1}})};
  for (const Object& arg : cases) {
    Channel ch;
    mp::Process p({.target = send_arg, .args = {ch.write_fd(), arg}, .daemon = true});
    p.start();
    ch.close_writer();
    EXPECT_EQ(ch.recv_line(), arg.repr());
    join_process(p);
  }
}

void send_parent(int fd) {
  mp::BaseProcess* parent = mp::parent_process();
  Channel::write_all(fd, std::to_string(*parent->pid()) + "\n" + parent->name() + "\n");
}

/// _TestProcess.test_parent_process_attributes
TEST_P(TestProcess, ParentProcessAttributes) {
  EXPECT_EQ(mp::parent_process(), nullptr);
  Channel ch;
  mp::Process p({.target = send_parent, .args = {ch.write_fd()}});
  p.start();
  ch.close_writer();
  p.join();
  EXPECT_EQ(ch.recv_line(), std::to_string(getpid()));
  EXPECT_EQ(ch.recv_line(), mp::current_process().name());
}

void report_parent_status(int fd) {
  mp::BaseProcess* parent = mp::parent_process();
  Channel::write_all(fd, parent->is_alive() ? "alive\n" : "not alive\n");
  parent->join(60.0);
  Channel::write_all(fd, parent->is_alive() ? "alive\n" : "not alive\n");
}

void create_grandchild(int fd) {
  mp::Process p({.target = report_parent_status, .args = {fd}});
  p.start();
  mp::os::sleep(300);
}

/// _TestProcess.test_parent_process: a grandchild sees its parent die.
TEST_P(TestProcess, ParentProcess) {
  Channel ch;
  mp::Process p({.target = create_grandchild, .args = {ch.write_fd()}});
  p.start();
  ch.close_writer();
  EXPECT_EQ(ch.recv_line(), "alive");
  p.terminate();
  p.join();
  EXPECT_EQ(ch.recv_line(), "not alive");
  EXPECT_TRUE(ch.lines().empty());  // EOF: the grandchild has exited too
}

void send_native_id(int fd) {
  Channel::write_all(fd, std::to_string(::syscall(SYS_gettid)) + "\n");
}

/// _TestProcess.test_process_mainthread_native_id
TEST_P(TestProcess, ProcessMainthreadNativeId) {
  Channel ch;
  mp::Process p({.target = send_native_id, .args = {ch.write_fd()}});
  p.start();
  ch.close_writer();
  std::string child_id = ch.recv_line();
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
TEST_P(TestProcess, CpuCount) {
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

void recurse(int fd, std::vector<int> id) {
  Channel::write_all(fd, Object(id).repr() + "\n");
  if (id.size() < 2) {
    for (int i = 0; i < 2; ++i) {
      std::vector<int> next = id;
      next.push_back(i);
      mp::Process p({.target = recurse, .args = {fd, next}});
      p.start();
      p.join();
    }
  }
}

/// _TestProcess.test_recursion: children start children, in order.
TEST_P(TestProcess, Recursion) {
  Channel ch;
  recurse(ch.write_fd(), {});
  ch.close_writer();
  std::vector<std::string> expected = {"[]", "[0]", "[0, 0]", "[0, 1]", "[1]", "[1, 0]", "[1, 1]"};
  EXPECT_EQ(ch.lines(), expected);
}

/// _TestProcess.test_sentinel
TEST_P(TestProcess, Sentinel) {
  Channel go;
  int go_fd = go.read_fd();
  mp::Process p({.target = [go_fd] { mp::os::read(go_fd, 1); }});
  EXPECT_THROW(p.sentinel(), mp::ValueError);
  p.start();
  int sentinel = p.sentinel();
  EXPECT_TRUE(mp::connection::wait({sentinel}, 0.0).empty());
  go.send("x");
  p.join();
  EXPECT_EQ(mp::connection::wait({sentinel}, 1.0), std::vector<int>{sentinel});
}

/// _TestProcess.test_close
TEST_P(TestProcess, Close) {
  Channel go;
  int go_fd = go.read_fd();
  auto p = std::make_unique<mp::Process>(
      mp::ProcessOptions{.target = [go_fd] { mp::os::read(go_fd, 1); }, .daemon = true});
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
  go.send("x");
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
/// to the target and its arguments (bpo-30775).
TEST_P(TestProcess, LoseTargetRef) {
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

/// _TestProcess.test_wait_for_threads: a child exits only after its
/// non-daemon threads end; daemon threads do not hold it.
TEST_P(TestProcess, WaitForThreads) {
  Channel ch;
  int fd = ch.write_fd();
  mp::Process proc({.target = [fd] {
    // Leaked on purpose: a thread object must outlive the target's scope, as
    // Python's Thread objects do; the process exit ends them.
    auto* t1 = new mp::dummy::Process(
        {.target = [fd] { mp::os::sleep(0.5); Channel::write_all(fd, "set\n"); }});
    auto* t2 = new mp::dummy::Process(
        {.target = [fd] { mp::os::sleep(20); Channel::write_all(fd, "cleared\n"); }, .daemon = true});
    t1->start();
    t2->start();
  }});
  double t0 = mp::os::monotonic();
  proc.start();
  ch.close_writer();
  proc.join();
  EXPECT_LT(mp::os::monotonic() - t0, 15.0);
  EXPECT_EQ(proc.exitcode(), 0);
  EXPECT_EQ(ch.lines(), std::vector<std::string>{"set"});
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

/// _TestProcess.test_error_on_stdio_flush_1: broken streams in the parent.
TEST_P(TestProcess, ErrorOnStdioFlush1) {
  for (auto [fd, stream] : {std::pair{1, stdout}, std::pair{2, stderr}}) {
    Channel ch;
    int w = ch.write_fd();
    {
      BrokenStream broken(fd, stream);
      mp::Process proc({.target = [w] { Channel::write_all(w, "set\n"); }});
      proc.start();
      proc.join();
      EXPECT_EQ(proc.exitcode(), 0);
    }
    ch.close_writer();
    EXPECT_EQ(ch.lines(), std::vector<std::string>{"set"});
  }
}

/// _TestProcess.test_error_on_stdio_flush_2: the child breaks its own streams.
TEST_P(TestProcess, ErrorOnStdioFlush2) {
  for (int fd : {1, 2}) {
    for (const char* action : {"close", "remove"}) {
      Channel ch;
      int w = ch.write_fd();
      std::string how = action;
      mp::Process proc({.target = [w, fd, how] {
        std::fputs("pending", fd == 1 ? stdout : stderr);
        if (how == "close") {
          ::close(fd);
        } else {
          int full = ::open("/dev/full", O_WRONLY);
          ::dup2(full, fd);
        }
        Channel::write_all(w, "set\n");
      }});
      proc.start();
      proc.join();
      EXPECT_EQ(proc.exitcode(), 0) << "fd " << fd << " " << action;
      ch.close_writer();
      EXPECT_EQ(ch.lines(), std::vector<std::string>{"set"});
    }
  }
}

std::atomic<bool> g_got_signal{false};

/// _TestPollEintr.test_poll_eintr: join() is not cut short by a signal.
TEST_P(TestProcess, PollEintr) {
  g_got_signal = false;
  struct sigaction action {}, old {};
  action.sa_handler = [](int) { g_got_signal = true; };
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the wait really sees EINTR
  sigaction(SIGUSR1, &action, &old);
  pid_t me = getpid();
  mp::Process killer({.target = [me] { mp::os::sleep(0.1); ::kill(me, SIGUSR1); }});
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
TEST_P(TestProcess, DaemonCannotHaveChildren) {
  Channel ch;
  int fd = ch.write_fd();
  mp::Process p({.target = [fd] {
                   mp::Process grandchild({.target = noop});
                   try {
                     grandchild.start();
                     Channel::write_all(fd, "started\n");
                   } catch (const mp::AssertionError& e) {
                     Channel::write_all(fd, std::string(e.what()) + "\n");
                   }
                 },
                 .daemon = true});
  p.start();
  ch.close_writer();
  p.join();
  EXPECT_EQ(ch.lines(), std::vector<std::string>{"daemonic processes are not allowed to have children"});
}

/// A Process object made by the parent cannot be started or joined by a child.
TEST_P(TestProcess, StartFromAnotherProcess) {
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
TEST_P(TestProcess, Names) {
  Channel ch;
  int fd = ch.write_fd();
  mp::Process p({.target = [fd] {
    mp::Process inner({.target = noop});
    Channel::write_all(fd, mp::current_process().name() + " " + inner.name() + "\n");
  }});
  const std::string name = p.name();
  ASSERT_EQ(name.rfind("Process-", 0), 0u);
  p.start();
  ch.close_writer();
  p.join();
  EXPECT_EQ(ch.lines(), std::vector<std::string>{name + " " + name + ":1"});
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
TEST_P(TestProcess, WrongArgumentCount) {
  try {
    mp::Process p({.target = sleep_for, .args = {1.0, 2.0}});
    ADD_FAILURE() << "no TypeError";
  } catch (const mp::TypeError& e) {
    EXPECT_STREQ(e.what(), "target takes 1 positional argument(s) but 2 were given");
  }
}

/// A wrongly typed argument fails in the child like a Python TypeError:
/// exit code 1 and the error on stderr.
TEST_P(TestProcess, WrongArgumentType) {
  mp::Process p({.target = sleep_for, .args = {"not a number"}});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
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

void start_two_and_return(int fd) {
  auto* daemon = new mp::Process({.target = sleep_some, .daemon = true});
  auto* other = new mp::Process(
      {.target = [fd] { mp::os::sleep(0.3); Channel::write_all(fd, "joined\n"); }});
  daemon->start();
  other->start();
  Channel::write_all(fd, std::to_string(*daemon->pid()) + "\n");
}

/// Checklist 10: when a process exits, its daemonic children are terminated
/// and the others joined (util._exit_function at the end of _bootstrap).
TEST_P(TestProcess, DaemonChildrenTerminatedAtExit) {
  Channel ch;
  mp::Process p({.target = start_two_and_return, .args = {ch.write_fd()}});
  double t0 = mp::os::monotonic();
  p.start();
  ch.close_writer();
  join_process(p);
  EXPECT_LT(mp::os::monotonic() - t0, 30.0);
  EXPECT_EQ(p.exitcode(), 0);
  auto lines = ch.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "joined");  // the non-daemon grandchild ran to its end
  pid_t daemon_pid = std::stoi(lines[0]);
  // The daemon was terminated and reaped by its parent: the pid is gone.
  EXPECT_EQ(::kill(daemon_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

/// The main process's side of checklist 10: a program that returns from
/// main() with a daemon and a non-daemon child running (runs exit_helper).
TEST_P(TestProcess, ExitFunctionAtParentExit) {
  auto [r, w] = mp::os::pipe();
  pid_t pid = mp::os::fork();
  if (pid == 0) {
    ::dup2(w.get(), 2);
    ::execl(MP_EXIT_HELPER_PATH, MP_EXIT_HELPER_PATH, static_cast<char*>(nullptr));
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
/// requests over two pipes.
class UpperCaser : public mp::Process {
 public:
  void run() override {
    for (;;) {
      std::string line = to_child_.recv_line();
      if (line == "STOP") break;
      for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      to_parent_.send(line);
    }
  }
  std::string submit(const std::string& s) {
    to_child_.send(s);
    return to_parent_.recv_line();
  }
  void stop() { to_child_.send("STOP"); }

 private:
  Channel to_child_, to_parent_;
};

/// _TestSubclassingProcess.test_subclassing
TEST_P(TestSubclassingProcess, Subclassing) {
  UpperCaser uppercaser;
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
/// exception reaches stderr before the child exits (issue #13812).
TEST_P(TestSubclassingProcess, StderrFlush) {
  std::string testfn = make_temp_path();
  mp::Process proc({.target = [testfn] {
    redirect_stderr_to(testfn);
    throw std::runtime_error("division by zero # MARKER");
  }});
  proc.start();
  proc.join();
  std::string err = read_file(testfn);
  ::unlink(testfn.c_str());
  EXPECT_EQ(proc.exitcode(), 1);
  EXPECT_NE(err.find("Process " + proc.name() + ":\n"), std::string::npos) << err;
  EXPECT_NE(err.find("std::runtime_error: division by zero # MARKER"), std::string::npos) << err;
}

/// _TestSubclassingProcess.test_sys_exit (Issue 13854): SystemExit's code.
TEST_P(TestSubclassingProcess, SysExit) {
  std::string testfn = make_temp_path();
  for (std::string reason : {"[1, 2, 3]", "ignore this"}) {
    mp::Process p({.target = [testfn, reason] {
                     redirect_stderr_to(testfn);
                     throw mp::SystemExit(reason);
                   },
                   .daemon = true});
    p.start();
    join_process(p);
    EXPECT_EQ(p.exitcode(), 1);
    std::string content = read_file(testfn);
    EXPECT_EQ(content, reason + "\n");
    ::unlink(testfn.c_str());
  }
  struct Case {
    std::function<void()> raise;
    int expected;
  };
  std::vector<Case> cases = {
      {[] { throw mp::SystemExit(true); }, 1},  {[] { throw mp::SystemExit(false); }, 0},
      {[] { throw mp::SystemExit(8); }, 8},     {[] { throw mp::SystemExit(); }, 0},
      {[] { throw mp::SystemExit(256); }, 0},  // the OS keeps the low 8 bits
      {[] { throw mp::SystemExit(-1); }, 255},
  };
  for (const auto& c : cases) {
    mp::Process p({.target = c.raise, .daemon = true});
    p.start();
    join_process(p);
    EXPECT_EQ(p.exitcode(), c.expected);
  }
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestProcess, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestSubclassingProcess, ::testing::ValuesIn(start_methods()),
                         method_name);

}  // namespace
}  // namespace mp_test
