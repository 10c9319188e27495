// tests/test_os.cpp — the os layer raises what Python's os raises.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.hpp"

namespace mp_test {
namespace {

namespace os = mp::os;

/// The seed's lesson: waitpid(-1, WNOHANG) with no child -> ChildProcessError.
/// Asked in a fresh forked child, which has no children whatever this test
/// process has started before (a resource tracker, a fork server).
TEST(TestOs, WaitpidWithoutChildren) {
  pid_t pid = os::fork();
  if (pid == 0) {
    int code = 1;
    try {
      os::waitpid(-1, WNOHANG);
      code = 2;  // no exception
    } catch (const mp::ChildProcessError& e) {
      bool text_ok = std::string(e.what()).rfind("[Errno 10] No child processes", 0) == 0;
      code = e.errno_value() == ECHILD && text_ok ? 0 : 3;
    } catch (...) {
      code = 4;  // another exception
    }
    os::_exit(code);
  }
  EXPECT_EQ(os::waitstatus_to_exitcode(os::waitpid(pid, 0).second), 0)
      << "2: no exception, 3: wrong errno or text, 4: not a ChildProcessError";
}

/// os::getpid() keeps the pid it asked the kernel for: it must still be right
/// in a child made by the library's fork, by a plain ::fork() of the program's
/// own (glibc's fork handlers clear the kept value), and in that child's child.
TEST(TestOs, GetpidIsRightAfterEveryFork) {
  ASSERT_EQ(os::getpid(), ::getpid());
  pid_t pid = os::fork();
  if (pid == 0) {
    int code = os::getpid() == ::getpid() ? 0 : 2;
    if (code == 0) {
      pid_t grandchild = ::fork();  // the program's own fork, not the library's
      if (grandchild == 0) ::_exit(os::getpid() == ::getpid() && os::getpid() != 0 ? 0 : 1);
      int status = 0;
      code = grandchild > 0 && ::waitpid(grandchild, &status, 0) == grandchild &&
                     WIFEXITED(status) && WEXITSTATUS(status) == 0
                 ? 0
                 : 3;
    }
    os::_exit(code);
  }
  EXPECT_EQ(os::waitstatus_to_exitcode(os::waitpid(pid, 0).second), 0)
      << "2: the child saw another pid, 3: the grandchild did";
  EXPECT_EQ(os::getpid(), ::getpid());  // the parent's own is unchanged
}

/// Python: PyErr_SetFromErrno picks the OSError subclass of PEP 3151 from the
/// errno (Objects/exceptions.c, errnomap); raise_os_error is the port's.
TEST(TestOs, RaiseOsErrorPicksPythonsSubclass) {
  const std::pair<int, const char*> table[] = {
      {EAGAIN, "BlockingIOError"},          {EWOULDBLOCK, "BlockingIOError"},
      {EALREADY, "BlockingIOError"},        {EINPROGRESS, "BlockingIOError"},
      {ECHILD, "ChildProcessError"},        {EPIPE, "BrokenPipeError"},
      {ESHUTDOWN, "BrokenPipeError"},       {ECONNABORTED, "ConnectionAbortedError"},
      {ECONNREFUSED, "ConnectionRefusedError"}, {ECONNRESET, "ConnectionResetError"},
      {EEXIST, "FileExistsError"},          {ENOENT, "FileNotFoundError"},
      {EISDIR, "IsADirectoryError"},        {ENOTDIR, "NotADirectoryError"},
      {EINTR, "InterruptedError"},          {EACCES, "PermissionError"},
      {EPERM, "PermissionError"},           {ESRCH, "ProcessLookupError"},
      {ETIMEDOUT, "TimeoutError"},          {EBADF, "OSError"},
      {ENOMEM, "OSError"},                  {EMFILE, "OSError"},
  };
  for (auto [err, name] : table) {
    try {
      mp::raise_os_error("call", err);
    } catch (const mp::OSError& e) {
      EXPECT_STREQ(e.python_name(), name) << "errno " << err;
      EXPECT_EQ(e.errno_value(), err);
      EXPECT_EQ(e.call(), "call");
    }
  }
  // The ConnectionError family shares its base, as in Python.
  EXPECT_THROW(mp::raise_os_error("send", EPIPE), mp::ConnectionError);
  EXPECT_THROW(mp::raise_os_error("recv", ECONNRESET), mp::ConnectionError);
  // multiprocessing.TimeoutError is not the builtin one.
  try {
    mp::raise_os_error("connect", ETIMEDOUT);
  } catch (const mp::TimeoutError&) {
    ADD_FAILURE() << "ETIMEDOUT raised multiprocessing.TimeoutError";
  } catch (const mp::BuiltinTimeoutError&) {
  }
}

/// Places that used to throw a plain OSError raise the subclass Python raises:
/// spawn.prepare's os.chdir (FileNotFoundError), util.spawnv_passfds of a
/// missing program (FileNotFoundError, as _posixsubprocess raises it).
TEST(TestOs, CallersRaiseTheSubclass) {
  std::string cwd = os::getcwd();
  EXPECT_THROW(mp::spawn::prepare(mp::Object::Dict{{"dir", "/nonexistent/mp-test-dir"}}),
               mp::FileNotFoundError);
  EXPECT_EQ(os::getcwd(), cwd);
  EXPECT_THROW(mp::util::spawnv_passfds("/nonexistent/mp-test-program", {"x"}, {}),
               mp::FileNotFoundError);
}

TEST(TestOs, KillMissingProcess) {
  pid_t pid = os::fork();
  if (pid == 0) os::_exit(0);
  os::waitpid(pid, 0);
  EXPECT_THROW(os::kill(pid, 0), mp::ProcessLookupError);
}

TEST(TestOs, PipeIsCloseOnExec) {
  auto [r, w] = os::pipe();
  EXPECT_TRUE(::fcntl(r.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(w.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_EQ(os::write(w.get(), "abc"), 3u);
  w.close();
  EXPECT_EQ(os::read(r.get(), 10), "abc");
  EXPECT_EQ(os::read(r.get(), 10), "");
}

TEST(TestOs, WaitstatusToExitcode) {
  pid_t pid = os::fork();
  if (pid == 0) os::_exit(7);
  EXPECT_EQ(os::waitstatus_to_exitcode(os::waitpid(pid, 0).second), 7);
  pid = os::fork();
  if (pid == 0) {
    ::pause();
    os::_exit(0);
  }
  os::kill(pid, SIGKILL);
  EXPECT_EQ(os::waitstatus_to_exitcode(os::waitpid(pid, 0).second), -SIGKILL);
}

TEST(TestOs, Urandom) {
  EXPECT_EQ(os::urandom(32).size(), 32u);
  EXPECT_NE(os::urandom(32), os::urandom(32));
}

}  // namespace
}  // namespace mp_test
