// tests/test_spawn.cpp — the 'spawn' start method (spawn.py, popen_spawn_posix.py):
// a child that is this program run again, the Process object crossing as
// pickles, targets crossing by registered name, and the errors a parent gets
// when something cannot cross.  The memory lesson: a global changed before
// start() is seen under fork and not under spawn.  Ports CPython's
// TestNoForkBomb and TestNamedResource, which run programs of their own.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "support.hpp"

namespace mp_test {

/// A target registered again and again while children fork (ForkWhileThreadsRegisterTargets).
void fork_safety_target() {}

/// What the children of these tests write their findings into.
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

/// A global the parent changes before start(): the memory lesson.
int g_lesson_value = 0;

void report_global(std::string path) { write_file(path, std::to_string(g_lesson_value)); }
MP_REGISTER_TARGET(report_global);

/// Reports what the child knows about itself and its parent.
void report_identity(std::string path, std::int64_t number, std::string text, double x) {
  mp::BaseProcess& me = mp::current_process();
  mp::BaseProcess* parent = mp::parent_process();
  std::ostringstream out;
  out << me.name() << "\n"
      << (parent ? std::to_string(*parent->pid()) : "none") << "\n"
      << mp::Object(mp::Bytes(me.authkey())).repr() << "\n"
      << number << " " << text << " " << x << "\n"
      << *mp::get_start_method() << "\n"
      << me.daemon() << "\n"
      << (parent && parent->is_alive()) << "\n";
  write_file(path, out.str());
}
MP_REGISTER_TARGET(report_identity);

void exit_with(std::int64_t code) { throw mp::SystemExit(static_cast<int>(code)); }
MP_REGISTER_TARGET(exit_with);

void raise_value_error() { throw mp::ValueError("bad value in the child"); }
MP_REGISTER_TARGET(raise_value_error);

void sleep_long() { mp::os::sleep(60); }
MP_REGISTER_TARGET(sleep_long);

void not_registered() {}

/// Whether the child talks to its parent's resource tracker (it must not
/// start one of its own).
void report_tracker(std::string path) {
  auto& tracker = mp::resource_tracker::_resource_tracker();
  bool inherited = tracker._fd() >= 0;
  tracker.ensure_running();  // a probe: the parent's tracker answers
  write_file(path, std::to_string(inherited) + " " + std::to_string(tracker._pid()));
}
MP_REGISTER_TARGET(report_tracker);

/// Echo one message back: a Connection crossing as an argument.
void echo_once(mp::connection::Connection& c) { c.send(c.recv()); }
MP_REGISTER_TARGET(echo_once);

/// Take the lock, say so, hold it until told, release it.
void hold_lock(mp::synchronize::Lock lock, mp::connection::Connection& c) {
  lock.acquire();
  c.send("held");
  c.recv();
  lock.release();
  c.send("released");
}
MP_REGISTER_TARGET(hold_lock);

/// Wait for the event, then report; raise the semaphore on the way.
void wait_event(mp::synchronize::Event event, mp::synchronize::Semaphore started,
                mp::connection::Connection& c) {
  started.release();
  c.send(event.wait(30.0));
}
MP_REGISTER_TARGET(wait_event);

/// Wait on the condition until notified.
void wait_condition(mp::synchronize::Condition cond, mp::connection::Connection& c) {
  cond.acquire();
  c.send("waiting");
  bool notified = cond.wait(30.0);
  cond.release();
  c.send(notified);
}
MP_REGISTER_TARGET(wait_condition);

/// The seed's counter lesson, locked form: twenty increments under the
/// value's own lock (get_lock()).
void add_twenty(mp::sharedctypes::Synchronized<int> counter) {
  for (int i = 0; i < 20; ++i) {
    std::lock_guard guard(counter.get_lock());
    counter.get_obj().set_value(counter.get_obj().value() + 1);
  }
}
MP_REGISTER_TARGET(add_twenty);

/// The Python docs' Value/Array example: num.value = 3.1415927, a[i] = -a[i].
void docs_value_array(mp::sharedctypes::Synchronized<double> num,
                      mp::sharedctypes::SynchronizedArray<int> arr) {
  num.set_value(3.1415927);
  for (std::size_t i = 0; i < arr.len(); ++i) arr[static_cast<std::ptrdiff_t>(i)] = -arr[static_cast<std::ptrdiff_t>(i)];
}
MP_REGISTER_TARGET(docs_value_array);

/// A raw value guarded by a separate lock.
void add_raw(mp::sharedctypes::CValue<long> value, mp::synchronize::Lock lock) {
  for (int i = 0; i < 20; ++i) {
    std::lock_guard guard(lock);
    value.set_value(value.value() + 1);
  }
}
MP_REGISTER_TARGET(add_raw);

/// _TestPicklingConnections.child_access: connections arrive over a
/// connection, in a process that is already running (resource_sharer).
void child_access(mp::connection::Connection& conn) {
  auto w = conn.recv().as<mp::connection::Connection>();
  w.send("all is well");
  w.close();
  auto r = conn.recv().as<mp::connection::Connection>();
  std::string msg = r.recv().as<std::string>();
  conn.send(msg + msg);
  conn.close();
}
MP_REGISTER_TARGET(child_access);

/// _TestSharedMemory's child: write through a block and a list it attached to.
void touch_shared_memory(mp::shared_memory::SharedMemory& shm, mp::shared_memory::ShareableList& sl) {
  std::memcpy(shm.buf().data(), "howdy", 5);
  sl.set(0, "changed");
  sl.set(1, std::int64_t{-1});
}
MP_REGISTER_TARGET(touch_shared_memory);

namespace {

/// Library objects as Process args, under every start method: in memory
/// under fork; under spawn and forkserver pickled, semaphores by name and
/// connections by fd.
class TestObjectsCross : public ::testing::TestWithParam<std::string> {
 protected:
  mp::BaseContext& ctx = mp::get_context(GetParam());
};

/// A file name in the test's temporary directory, removed at the end.
class TempFile {
 public:
  TempFile() {
    char name[] = "/tmp/mp-spawn-test-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    path_ = name;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// The tests run once under spawn and once under forkserver: both start the
/// child without a copy of the parent's memory and send it the Process object.
class TestSpawn : public ::testing::TestWithParam<std::string> {
 protected:
  mp::BaseContext& ctx = mp::get_context(GetParam());
};

/// The child rebuilds the Process object: name, args of several types, the
/// parent's pid as parent_process(), the authkey, the start method.
TEST_P(TestSpawn, ChildGetsTheProcessObject) {
  TempFile out;
  auto p = ctx.Process({.target = report_identity,
                        .args = {out.path(), std::int64_t{1729}, "text", 2.5},
                        .name = "spawned-one"});
  p->start();
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
  std::istringstream lines(read_file(out.path()));
  std::string name, ppid, authkey, args, method, daemon, parent_alive;
  std::getline(lines, name);
  std::getline(lines, ppid);
  std::getline(lines, authkey);
  std::getline(lines, args);
  std::getline(lines, method);
  std::getline(lines, daemon);
  std::getline(lines, parent_alive);
  EXPECT_EQ(name, "spawned-one");
  EXPECT_EQ(ppid, std::to_string(::getpid()));
  EXPECT_EQ(authkey, mp::Object(mp::Bytes(mp::current_process().authkey())).repr());
  EXPECT_EQ(args, "1729 text 2.5");
  EXPECT_EQ(method, GetParam());
  EXPECT_EQ(daemon, "0");
  EXPECT_EQ(parent_alive, "1");  // the parent sentinel is not at EOF while we run
}

/// The memory lesson: fork copies the parent's memory, so
/// the child sees the global as it was at start(); spawn runs the program
/// afresh, so the child sees the global's initial value; so does a child of
/// the fork server, a copy of a process that ran only freeze_support().
TEST_P(TestSpawn, GlobalSeenUnderForkNotUnderSpawn) {
  g_lesson_value = 42;
  TempFile fork_out, spawn_out;
  auto f = mp::get_context("fork").Process({.target = report_global, .args = {fork_out.path()}});
  f->start();
  join_process(*f);
  auto s = ctx.Process({.target = report_global, .args = {spawn_out.path()}});
  s->start();
  join_process(*s);
  g_lesson_value = 0;
  EXPECT_EQ(read_file(fork_out.path()), "42");
  EXPECT_EQ(read_file(spawn_out.path()), "0");
}

/// Exit codes cross as under fork: SystemExit(n), an uncaught exception.
TEST_P(TestSpawn, ExitCodes) {
  auto a = ctx.Process({.target = exit_with, .args = {std::int64_t{7}}});
  a->start();
  join_process(*a);
  EXPECT_EQ(a->exitcode(), 7);
  auto b = ctx.Process({.target = raise_value_error});
  b->start();
  join_process(*b);
  EXPECT_EQ(b->exitcode(), 1);
}

/// terminate() and the sentinel work on a spawned child.
TEST_P(TestSpawn, TerminateAndSentinel) {
  auto p = ctx.Process({.target = sleep_long});
  p->start();
  EXPECT_TRUE(p->is_alive());
  EXPECT_TRUE(mp::connection::wait({p->sentinel()}, 0.0).empty());
  p->terminate();
  join_process(*p);
  EXPECT_EQ(p->exitcode(), -SIGTERM);
}

/// A lambda cannot be found by name: start() refuses it in the parent, with
/// a message that says what to do, and nothing is started or left open.
TEST_P(TestSpawn, LambdaTargetRefused) {
  auto p = ctx.Process({.target = [] {}});
  try {
    p->start();
    FAIL() << "start() accepted a lambda under spawn";
  } catch (const mp::PicklingError& e) {
    EXPECT_NE(std::string(e.what()).find("MP_REGISTER_TARGET"), std::string::npos) << e.what();
  }
  auto q = ctx.Process({.target = not_registered});
  EXPECT_THROW(q->start(), mp::PicklingError);
  EXPECT_TRUE(mp::active_children().empty());
}

/// An argument that cannot be pickled (nested deeper than pickle allows):
/// PicklingError in the parent at start(), nothing started or left open.
TEST_P(TestSpawn, UnpicklableArgument) {
  mp::Object deep = mp::Object::List{};
  for (int i = 0; i < mp::reduction::kMaxDepth + 10; ++i) {
    mp::Object::List outer;
    outer.push_back(std::move(deep));  // moved, not copied: building it stays linear
    deep = mp::Object(std::move(outer));
  }
  auto p = ctx.Process({.target = report_global, .args = {deep}});
  EXPECT_THROW(p->start(), mp::PicklingError);
  EXPECT_FALSE(p->is_alive());
  EXPECT_TRUE(mp::active_children().empty());
}

/// A child that cannot be executed: OSError in the parent, nothing left.
/// (Under forkserver, it is the server that cannot be started.)
TEST_P(TestSpawn, CannotExec) {
  mp::forkserver::_forkserver()._stop();
  mp::spawn::set_executable("/nonexistent/program");
  auto p = ctx.Process({.target = exit_with, .args = {std::int64_t{0}}});
  EXPECT_THROW(p->start(), mp::OSError);
  mp::spawn::set_executable(std::nullopt);
  EXPECT_EQ(mp::spawn::get_executable().rfind('/', 0), 0u);
}

/// Python: spawn_main sets resource_tracker._fd = tracker_fd: the child
/// reports to the parent's tracker, through the fd it inherited.
TEST_P(TestSpawn, ChildUsesTheParentsTracker) {
  TempFile out;
  auto p = ctx.Process({.target = report_tracker, .args = {out.path()}});
  p->start();
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
  EXPECT_EQ(read_file(out.path()), "1 -1");  // inherited; no tracker of its own
}

/// The state letter of a process in /proc ('Z' for a zombie), '?' if gone.
char proc_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return '?';
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

/// A fork server that died: the Popen of a child it started reads no exit
/// code (255, as Python's), and the next start() launches a new server.
TEST_P(TestSpawn, ForkServerDied) {
  if (GetParam() != "forkserver") GTEST_SKIP() << "forkserver only";
  auto p = ctx.Process({.target = sleep_long});
  p->start();
  std::optional<pid_t> server = mp::forkserver::_forkserver()._pid();
  ASSERT_TRUE(server);
  ::kill(*server, SIGKILL);
  for (int i = 0; i < 3000 && proc_state(*server) != 'Z'; ++i) mp::os::sleep(0.01);
  p->kill();  // the orphan is not our child; only its pid is known
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 255);
  auto q = ctx.Process({.target = exit_with, .args = {std::int64_t{3}}});
  q->start();
  join_process(*q);
  EXPECT_EQ(q->exitcode(), 3);
  EXPECT_NE(mp::forkserver::_forkserver()._pid(), server);
}

/// Registration errors.
TEST_P(TestSpawn, Registration) {
  EXPECT_TRUE(mp::spawn::register_target("report_global", report_global));  // again: fine
  EXPECT_THROW(mp::spawn::register_target("report_global", exit_with), mp::ValueError);
  EXPECT_THROW(mp::spawn::register_target("lambda", mp::Target([] {})), mp::ValueError);
  EXPECT_EQ(mp::spawn::_target_name(exit_with), std::optional<std::string>("exit_with"));
  EXPECT_EQ(mp::spawn::_target_name(not_registered), std::nullopt);
  EXPECT_TRUE(mp::spawn::is_forking({"prog", "--multiprocessing-fork", "pipe_handle=3"}));
  EXPECT_FALSE(mp::spawn::is_forking({"prog"}));
  auto cmd = mp::spawn::get_command_line({{"pipe_handle", "3"}});
  ASSERT_EQ(cmd.size(), 3u);
  EXPECT_EQ(cmd[1], "--multiprocessing-fork");
  EXPECT_EQ(cmd[2], "pipe_handle=3");
}

/// _TestConnection-style echo through a Connection given as an argument.
TEST_P(TestObjectsCross, Connection) {
  auto [a, b] = ctx.Pipe();
  auto p = ctx.Process({.target = echo_once, .args = {b}});
  p->start();
  b.close();  // the child has its own
  a.send(mp::Object::List{1, "two", 3.0});
  EXPECT_EQ(a.recv(), mp::Object(mp::Object::List{1, "two", 3.0}));
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
}

/// The child holds the parent's lock: the parent cannot take it until the
/// child lets go.
TEST_P(TestObjectsCross, Lock) {
  auto lock = ctx.Lock();
  auto [a, b] = ctx.Pipe();
  auto p = ctx.Process({.target = hold_lock, .args = {lock, b}});
  p->start();
  EXPECT_EQ(a.recv(), mp::Object("held"));
  EXPECT_FALSE(lock.acquire(false));
  a.send("let go");
  EXPECT_EQ(a.recv(), mp::Object("released"));
  EXPECT_TRUE(lock.acquire(true, 30.0));
  lock.release();
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
}

/// An Event and a Semaphore crossing together.
TEST_P(TestObjectsCross, Event) {
  auto event = ctx.Event();
  auto started = ctx.Semaphore(0);
  auto [a, b] = ctx.Pipe();
  auto p = ctx.Process({.target = wait_event, .args = {event, started, b}});
  p->start();
  ASSERT_TRUE(started.acquire(true, 30.0));
  event.set();
  EXPECT_EQ(a.recv(), mp::Object(true));
  join_process(*p);
}

/// A Condition crossing: notify() from the parent wakes the child.
TEST_P(TestObjectsCross, Condition) {
  auto cond = ctx.Condition();
  auto [a, b] = ctx.Pipe();
  auto p = ctx.Process({.target = wait_condition, .args = {cond, b}});
  p->start();
  EXPECT_EQ(a.recv(), mp::Object("waiting"));
  cond.acquire();  // the child is inside wait() once it has released the lock
  cond.notify();
  cond.release();
  EXPECT_EQ(a.recv(), mp::Object(true));
  join_process(*p);
}

/// Python's errors: a semaphore of a fork context cannot reach a spawned
/// child (its name is gone); a lock cannot be sent over a pipe.
TEST_P(TestObjectsCross, Refusals) {
  auto [a, b] = ctx.Pipe();
  EXPECT_THROW(a.send(ctx.Lock()), mp::RuntimeError);
  if (GetParam() == "fork") return;
  auto fork_lock = mp::get_context("fork").Lock();
  auto p = ctx.Process({.target = hold_lock, .args = {fork_lock, b}});
  try {
    p->start();
    FAIL() << "a fork context's lock was pickled for a spawned child";
  } catch (const mp::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("fork context"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(mp::active_children().empty());
}

/// The counter lesson with ten processes under every start method: the
/// Value's block crosses by its arena's fd, its lock by name; exactly 200.
TEST_P(TestObjectsCross, ValueCounter) {
  PristineHeap heap;
  auto counter = ctx.Value<'i'>(0);
  std::vector<std::unique_ptr<mp::BaseProcess>> procs;
  for (int i = 0; i < 10; ++i) {
    procs.push_back(ctx.Process({.target = add_twenty, .args = {counter}}));
    procs.back()->start();
  }
  for (auto& p : procs) {
    join_process(*p);
    EXPECT_EQ(p->exitcode(), 0);
  }
  EXPECT_EQ(counter.value(), 200);
}

/// The Python docs' example: Value('d', 0.0) and Array('i', range(10)).
TEST_P(TestObjectsCross, ValueAndArray) {
  PristineHeap heap;
  auto num = ctx.Value<'d'>(0.0);
  auto arr = ctx.Array<'i'>(std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto p = ctx.Process({.target = docs_value_array, .args = {num, arr}});
  p->start();
  join_process(*p);
  EXPECT_EQ(num.value(), 3.1415927);
  EXPECT_EQ(arr.slice(), (std::vector<int>{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}));
}

/// RawValue plus a Lock, the seed's third form.
TEST_P(TestObjectsCross, RawValueWithLock) {
  PristineHeap heap;
  auto value = ctx.RawValue<'l'>(0);
  auto lock = ctx.Lock();
  std::vector<std::unique_ptr<mp::BaseProcess>> procs;
  for (int i = 0; i < 5; ++i) {
    procs.push_back(ctx.Process({.target = add_raw, .args = {value, lock}}));
    procs.back()->start();
  }
  for (auto& p : procs) join_process(*p);
  EXPECT_EQ(value.value(), 100);
}

/// _TestPicklingConnections.test_access: a Connection sent over a Pipe to a
/// running child; the fd is lent by this process's resource sharer thread.
TEST_P(TestObjectsCross, PicklingConnections) {
  {
    auto [conn, child_conn] = ctx.Pipe();
    auto p = ctx.Process({.target = child_access, .args = {child_conn}, .daemon = true});
    p->start();
    child_conn.close();

    auto [r, w] = ctx.Pipe(/*duplex=*/false);
    conn.send(w);
    w.close();
    EXPECT_EQ(r.recv(), mp::Object("all is well"));
    r.close();

    auto [r2, w2] = ctx.Pipe(false);
    conn.send(r2);
    r2.close();
    w2.send("foobar");
    w2.close();
    EXPECT_EQ(conn.recv(), mp::Object("foobarfoobar"));
    join_process(*p);
    EXPECT_EQ(p->exitcode(), 0);
  }
  // Python's tearDownClass: resource_sharer.stop(timeout=...).
  mp::resource_sharer::stop(30.0);
}

/// SharedMemory and ShareableList cross by name (Python's __reduce__): the
/// child attaches, writes, and the parent sees it.
TEST_P(TestObjectsCross, SharedMemory) {
  mp::shared_memory::SharedMemory shm(std::nullopt, true, 64);
  mp::shared_memory::ShareableList sl(std::vector<mp::Object>{"original", std::int64_t{7}});
  auto p = ctx.Process({.target = touch_shared_memory, .args = {shm, sl}});
  p->start();
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(shm.buf().data()), 5), "howdy");
  EXPECT_EQ(sl[0], mp::Object("changed"));
  EXPECT_EQ(sl[1], mp::Object(std::int64_t{-1}));
  shm.close();
  shm.unlink();
  sl.shm().close();
  sl.shm().unlink();
}

// ---------------------------------------------------------------- programs run again

/// CPython's unittest.TestCase classes that each start-method module runs again.
class TestNoForkBomb : public WithStartMethod {};

/// TestNoForkBomb.test_noforkbomb: a program whose main() does not call
/// freeze_support() (mp_fork_bomb.cpp, Python's mp_fork_bomb.py) starts a
/// child.  Under spawn and forkserver the child, this program run again,
/// fails with RuntimeError instead of starting children of its own; under
/// fork, the child prints 123.
TEST_P(TestNoForkBomb, Noforkbomb) {
  const std::string sm = GetParam();
  ScriptResult r = run_program({MP_FORK_BOMB_PATH, sm});
  if (sm != "fork") {
    EXPECT_NE(r.rc, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("RuntimeError"), std::string::npos) << r.err;
  } else {
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.out, "123\n");
    EXPECT_EQ(r.err, "");
  }
}

/// TestNamedResource.test_global_named_resource_spawn (gh-90549): a program
/// with a spawn-context Semaphore in a global starts a spawned child
/// (mp_global_named_resource.cpp).  The child makes that global again, while
/// its static initialisers run; nothing is leaked, so the resource tracker
/// has no warning to print: stderr is empty.  (CPython runs it only in its
/// spawn suite; it sets its start method itself.)
TEST(TestNamedResource, GlobalNamedResourceSpawn) {
  ScriptResult r = run_program({MP_GLOBAL_NAMED_RESOURCE_PATH});
  EXPECT_EQ(r.rc, 0);
  // on error, err = 'UserWarning: resource_tracker: There appear to be 1
  // leaked semaphore objects to clean up at shutdown'
  EXPECT_EQ(r.err, "");
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestNoForkBomb, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(Methods, TestObjectsCross, ::testing::Values("fork", "spawn", "forkserver"),
                         method_name);

INSTANTIATE_TEST_SUITE_P(Methods, TestSpawn, ::testing::Values("spawn", "forkserver"), method_name);

/// fork() while other threads register targets by name: some forks land
/// while a thread of the parent holds the registry's lock.  Each forked
/// child still finds a target by name, and its name by the target, and
/// ends: fork() holds that lock (and the allow-list's, which register_target
/// takes after it, never inside it).  Fork only: about fork's copy.
TEST(TestSpawnFork, ForkWhileThreadsRegisterTargets) {
  mp::spawn::register_target("fork_safety_target", fork_safety_target);
  int forked = fork_while_threads_churn(
      2, [] { mp::spawn::register_target("fork_safety_target", fork_safety_target); },
      [] {
        mp::Target found = mp::spawn::_find_target("fork_safety_target");
        if (mp::spawn::_target_name(found) != "fork_safety_target") throw mp::AssertionError("name lost");
      });
  EXPECT_GE(forked, 10);
}

}  // namespace
}  // namespace mp_test
