// tests/support.hpp — helpers shared by the test files, in the spirit of
// CPython's test.support: a byte channel from a child to the test, a join with
// a time limit, the start-method parameter of the suites, and a pristine
// shared heap for tests that make Values.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "multiprocessing.hpp"

namespace mp_test {

namespace mp = multiprocessing;

/// A one-way byte channel made of an os pipe, for reporting from a child
/// before `connection` exists.  The child writes lines; the test reads them.
class Channel {
 public:
  Channel() {
    auto [r, w] = mp::os::pipe();
    r_ = std::move(r);
    w_ = std::move(w);
  }
  int write_fd() const { return w_.get(); }
  int read_fd() const { return r_.get(); }
  /// In a child: send one line.
  void send(const std::string& line) const { write_all(w_.get(), line + "\n"); }
  /// In the test, after the child started: close our write end so that EOF
  /// comes when every child has exited.
  void close_writer() { w_.close(); }
  /// Read lines until EOF (every writer closed).
  std::vector<std::string> lines();
  /// Read one line (blocks).
  std::string recv_line();
  static void write_all(int fd, const std::string& data);

 private:
  mp::os::Fd r_, w_;
  std::string pending_;
};

/// A copy of this test binary (/proc/self/exe) that runs one DISABLED_ helper
/// test: a fresh process with its own module state, its own resource tracker
/// above all, as CPython's tests run `sys.executable -c cmd` for that.  Its
/// stdout and stderr are pipes to the test.  The destructor kills and reaps it
/// if the test has not.
class HelperProcess {
 public:
  /// \param test  the full name, "Suite.DISABLED_Name".
  explicit HelperProcess(const std::string& test);
  ~HelperProcess();
  HelperProcess(const HelperProcess&) = delete;
  HelperProcess& operator=(const HelperProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// Read stdout up to a line that starts with `prefix`; return the rest of
  /// that line.  \throws EOFError if stdout ends first.
  std::string read_value(const std::string& prefix);
  /// Read stderr until EOF, which comes once every process that holds it has
  /// gone: the helper and the children it started (its tracker).  Gives up
  /// after `timeout` seconds; `*eof` tells which happened.
  std::string read_stderr_until_eof(double timeout, bool* eof);
  /// os.kill(pid, sig), then waitpid: the wait status.
  int kill_and_wait(int sig);

 private:
  pid_t pid_ = -1;
  mp::os::Fd out_, err_;
  std::string out_pending_;
};

/// What a program run to its end did (Python: script_helper's result).
struct ScriptResult {
  int rc = -1;       ///< its exit code (negative: the signal that killed it)
  std::string out;   ///< all it wrote on stdout
  std::string err;   ///< all it and its children wrote on stderr, to EOF
};

/// Python: test.support.script_helper.run_python_until_end, for a C++ program:
/// run `argv` (argv[0] is the path) with stdout and stderr as pipes, read both
/// until every process holding them has closed them (the program and, say, a
/// resource tracker it started), then reap it.  After `timeout` seconds the
/// program is killed (rc -SIGKILL).
ScriptResult run_program(const std::vector<std::string>& argv, double timeout = 120.0);
/// From now on, this process's calls of system call `nr` fail with errno `err`
/// (a seccomp filter: kept until exit and inherited by its children).  For
/// DISABLED_ helpers run in a HelperProcess only: it reaches error paths that a
/// test cannot provoke otherwise (a dup that fails after a connect succeeded).
/// `arg1`, when given, limits it to the calls whose second argument is that
/// value (fcntl's command).  \return false if the kernel refuses the filter.
bool fail_syscall(long nr, std::optional<unsigned> arg1, int err);

/// Poll `done` every 10 ms until it returns true or `timeout` seconds pass.
/// \return its last result.
bool wait_until(const std::function<bool()>& done, double timeout = 30.0);

/// Built with ThreadSanitizer (the tsan preset)?  A test that TSan's runtime
/// cannot run skips there and says why.
#if defined(__SANITIZE_THREAD__)
constexpr bool kUnderThreadSanitizer = true;
#else
constexpr bool kUnderThreadSanitizer = false;
#endif

/// Timing checks on a loaded 2-core machine (CPython checks timings only
/// with CHECK_TIMINGS set): a call that must wait is checked from below
/// only, and a call that must return at once is given a timeout this long
/// and checked against a third of it, so "it returned at once" and "it
/// waited the whole timeout" are told apart without a tight upper bound.
constexpr double IGNORED_TIMEOUT = 30.0;

/// Python: `with self.assertRaisesRegex(E, '^message$'): call()`: `call`
/// throws an E whose what() is exactly `message`.
template <class E>
void expect_raises(const std::function<void()>& call, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "no " << message;
  } catch (const E& e) {
    EXPECT_EQ(e.what(), message);
  }
}

/// Python: _TestSemaphore._test_semaphore: a semaphore of value 2 acquired
/// down to zero and released back, its value read by `get_value` (Python's
/// get_value(sem) helper) after each step.  For the process semaphores
/// (test_synchronize) and the thread ones (test_dummy).
template <class Semaphore>
void check_semaphore(Semaphore& sem, const std::function<int()>& get_value) {
  EXPECT_EQ(get_value(), 2);
  EXPECT_TRUE(sem.acquire());
  EXPECT_EQ(get_value(), 1);
  EXPECT_TRUE(sem.acquire());
  EXPECT_EQ(get_value(), 0);
  EXPECT_FALSE(sem.acquire(false));
  EXPECT_EQ(get_value(), 0);
  sem.release();
  EXPECT_EQ(get_value(), 1);
  sem.release();
  EXPECT_EQ(get_value(), 2);
}

/// Whether /dev/shm/<name> exists.
bool shm_file_exists(const std::string& name);

/// "ab 01 ..." (spaces ignored) to the bytes it spells: how the tests write
/// the byte strings that the docs pages show.
std::string unhex(std::string_view hex);

/// Every string a child sends on `conn` until EOF (every writer closed).
std::vector<std::string> recv_strings(mp::connection::Connection& conn);

/// Every line written on `conn`'s fd as plain text (not as messages) until
/// EOF: what children that made the pipe their stderr wrote.
std::vector<std::string> read_text_lines(mp::connection::Connection& conn);

/// Python test.support's join_process: join with a generous limit (60 s); a
/// test that hits it fails instead of hanging, and the child is killed.
void join_process(mp::BaseProcess& p, double timeout = 60.0);

/// fork() children one at a time from this thread while `threads` other
/// threads run `churn` over and over, so that some forks land while one of
/// them is inside the library (holding a lock, half-way through changing a
/// table).  Each child runs `child` and must exit 0; one that does not end
/// within 10 s is killed, fails the test and stops the loop.  At most
/// `children` children, and no more once `budget` seconds have passed (after
/// the first 10): a bound on the test's time, not a check of it.
/// \return how many children were forked.
int fork_while_threads_churn(int threads, const std::function<void()>& churn,
                             const std::function<void()>& child, int children = 200,
                             double budget = 1.5);

/// Start methods the suites run under (CPython runs its mixins once per
/// method): fork, spawn and forkserver.
std::vector<std::string> start_methods();

/// Name generator for INSTANTIATE_TEST_SUITE_P: ".../fork".
inline std::string method_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

/// Python: _TestHeap.setUp / tearDown: a pristine shared heap
/// (heap::BufferWrapper::_heap()) while this object lives, the old one back
/// afterwards.  Dropping the test's heap unmaps its arenas and closes their
/// fds, so a test that makes Values and Arrays leaves no fd behind (the heap of
/// a process otherwise keeps its small arenas until exit, as Python's does).
/// Make it a member of the fixture, so it outlives the test's objects.
class PristineHeap {
 public:
  PristineHeap()
      : old_(std::exchange(mp::heap::BufferWrapper::_heap(), std::make_shared<mp::heap::Heap>())) {}
  ~PristineHeap() { mp::heap::BufferWrapper::_heap() = old_; }
  PristineHeap(const PristineHeap&) = delete;
  PristineHeap& operator=(const PristineHeap&) = delete;
  /// The test's heap.
  mp::heap::Heap& get() { return *mp::heap::BufferWrapper::_heap(); }

 private:
  std::shared_ptr<mp::heap::Heap> old_;
};

/// Base fixture for suites parametrised by start method: fixes the default
/// context's method for the test (Python: set_start_method(m, force=True)).
class WithStartMethod : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { mp::set_start_method(GetParam(), /*force=*/true); }
  void TearDown() override { mp::set_start_method(std::nullopt, /*force=*/true); }
};

}  // namespace mp_test
