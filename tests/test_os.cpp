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
TEST(TestOs, WaitpidWithoutChildren) {
  try {
    os::waitpid(-1, WNOHANG);
    ADD_FAILURE() << "no ChildProcessError";
  } catch (const mp::ChildProcessError& e) {
    EXPECT_EQ(e.errno_value(), ECHILD);
    EXPECT_EQ(std::string(e.what()).rfind("[Errno 10] No child processes", 0), 0u);
  }
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
