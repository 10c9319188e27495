// tests/test_resource_tracker.cpp — ports CPython's TestResourceTracker
// (Lib/test/_test_multiprocessing.py): the tracker unlinks what a killed
// process left registered, shrugs off SIGINT and SIGTERM, is relaunched after
// SIGKILL, is shared with forked children, and refuses too long a name.
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "support.hpp"

namespace mp_test {
namespace {

namespace rt = mp::resource_tracker;
namespace shm = mp::shared_memory;

/// Run only by TestResourceTracker.ResourceTracker, in a copy of the test
/// binary: create a shared memory block and a named semaphore that must
/// outlive the process (the spawn context keeps the name, as children would
/// open it by name), report both names, wait to be killed.
TEST(TestResourceTrackerHelper, DISABLED_CreateAndWait) {
  shm::SharedMemory sm(std::nullopt, true, 10);
  mp::synchronize::Lock lock(&mp::get_context("spawn"));
  std::printf("SHM=%s\nSEM=%s\n", sm.name().c_str(), lock.name().c_str());
  std::fflush(stdout);
  for (;;) ::pause();
}

/// TestResourceTracker.test_resource_tracker: a process killed with SIGKILL
/// while it holds a registered block and semaphore leaves neither behind
/// once its tracker (whose only writer it was) has seen EOF.
TEST(TestResourceTracker, ResourceTracker) {
  HelperProcess p("TestResourceTrackerHelper.DISABLED_CreateAndWait");
  std::string shm_name = p.read_value("SHM=");
  std::string sem_name = p.read_value("SEM=");  // "/mp-xxxxxxxx"
  std::string sem_file = "sem." + sem_name.substr(1);
  EXPECT_TRUE(shm_file_exists(shm_name));
  EXPECT_TRUE(shm_file_exists(sem_file));
  int status = p.kill_and_wait(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  bool eof = false;
  std::string err = p.read_stderr_until_eof(30.0, &eof);
  EXPECT_TRUE(eof) << "the helper's tracker did not exit within 30 s";
  EXPECT_TRUE(wait_until([&] { return !shm_file_exists(shm_name) && !shm_file_exists(sem_file); }))
      << shm_name << " or " << sem_file << " leaked";
  EXPECT_NE(err.find("resource_tracker: There appear to be 1 leaked semaphore objects to clean up at shutdown"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("resource_tracker: There appear to be 1 leaked shared_memory objects to clean up at shutdown"),
            std::string::npos)
      << err;
}

/// A shared memory file made without SharedMemory (so that no tracker knows it).
std::string make_untracked_block(const std::string& name) {
  int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  EXPECT_GE(fd, 0) << name;
  if (fd >= 0) ::close(fd);
  return name;
}

/// TestResourceTracker.test_resource_tracker, in process: a tracker of its
/// own, whose only writer is this object; stopping it (closing the write end)
/// makes it unlink what is still registered, warn, and exit — and a name that
/// was unregistered is left alone.  The warnings come in Python's order and
/// words, including the per-name one for a name that is already gone.
TEST(TestResourceTracker, CleansUpWhenWritersAreGone) {
  std::string leaked = make_untracked_block("test_rt_leaked" + std::to_string(::getpid()));
  std::string kept = make_untracked_block("test_rt_kept" + std::to_string(::getpid()));
  std::string sem = "/test_rt_sem" + std::to_string(::getpid());
  sem_t* s = ::sem_open(sem.c_str(), O_CREAT | O_EXCL, 0600, 1);
  ASSERT_NE(s, SEM_FAILED);
  ::sem_close(s);

  ::testing::internal::CaptureStderr();
  {
    rt::ResourceTracker tracker;
    tracker.register_("/" + leaked, "shared_memory");
    tracker.register_("/" + kept, "shared_memory");
    tracker.register_(sem, "semaphore");
    tracker.register_("/test_rt_never_existed", "shared_memory");
    tracker.unregister("/" + kept, "shared_memory");
    EXPECT_GT(tracker._pid(), 0);
    tracker._stop();  // waits for the tracker's exit
    EXPECT_EQ(tracker._pid(), -1);
    EXPECT_EQ(tracker._fd(), -1);
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(shm_file_exists(leaked));
  EXPECT_FALSE(shm_file_exists("sem." + sem.substr(1)));
  EXPECT_TRUE(shm_file_exists(kept));
  ::shm_unlink(("/" + kept).c_str());
  EXPECT_EQ(err,
            "multiprocessing: UserWarning: resource_tracker: There appear to be 1 leaked semaphore objects "
            "to clean up at shutdown\n"
            "multiprocessing: UserWarning: resource_tracker: There appear to be 2 leaked shared_memory objects "
            "to clean up at shutdown\n"
            "multiprocessing: UserWarning: resource_tracker: '/test_rt_never_existed': [Errno 2] No such file or "
            "directory: '/test_rt_never_existed'\n");
}

/// A bad line is reported and the tracker goes on: unknown resource type,
/// unknown command, wrong number of fields.
TEST(TestResourceTracker, BadLinesAreReported) {
  ::testing::internal::CaptureStderr();
  {
    rt::ResourceTracker tracker;
    tracker.register_("/x", "no_such_type");
    int fd = tracker.getfd();
    std::string lines = "FROB:/x:noop\nREGISTER:/x\n";
    ASSERT_EQ(::write(fd, lines.data(), lines.size()), static_cast<ssize_t>(lines.size()));
    tracker.register_("/still_reading", "noop");
    tracker._stop();
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err,
            "resource_tracker: ValueError: Cannot register /x for automatic cleanup: unknown resource type "
            "no_such_type\n"
            "resource_tracker: RuntimeError: unrecognized command 'FROB'\n"
            "resource_tracker: ValueError: not enough values to unpack (expected 3, got 2)\n"
            "multiprocessing: UserWarning: resource_tracker: There appear to be 1 leaked noop objects to clean up "
            "at shutdown\n");
}

/// The tracker's reading of its pipe, without a tracker process: the bytes
/// arrive in pieces that cut lines anywhere, as read() may return them; bad
/// lines are reported and skipped; a line past 512 bytes is refused whole.
/// (Not a CPython test: the protocol the fuzz target fuzz_resource_tracker feeds.)
TEST(TestResourceTracker, ProtocolReadsLinesInPieces) {
  ::testing::internal::CaptureStderr();
  std::size_t shm_count = 0, sem_count = 0, noop_count = 0;
  {
    rt::_TrackerProtocol protocol;
    std::string bytes =
        "REGISTER:/psm_a:shared_memory\nREGISTER:/sem_b:semaphore\nREGISTER:/psm_c:shared_memory\n"
        "UNREGISTER:/psm_a:shared_memory\nUNREGISTER:/never:semaphore\nPROBE:0:noop\n"
        "REGISTER:/" + std::string(600, 'n') + ":noop\n"
        "REGISTER:/x\nREGISTER:/x:nothing\nREGISTER:/\xc3\xa9:noop\n  REGISTER:/psm_d:shared_memory \r\n"
        "REGISTER:/partial:noop";
    for (std::size_t at = 0; at < bytes.size(); at += 7) protocol.feed(bytes.data() + at, std::min<std::size_t>(7, bytes.size() - at));
    shm_count = protocol.count("shared_memory");
    sem_count = protocol.count("semaphore");
    noop_count = protocol.count("noop");
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(shm_count, 2u);  // /psm_c and /psm_d (blanks and \r stripped, as Python's strip())
  EXPECT_EQ(sem_count, 1u);  // /sem_b
  EXPECT_EQ(noop_count, 0u);  // the overlong line, the bad ones, the partial last line: none
  EXPECT_EQ(err,
            "resource_tracker: ValueError: line too long\n"
            "resource_tracker: ValueError: not enough values to unpack (expected 3, got 2)\n"
            "resource_tracker: ValueError: Cannot register /x for automatic cleanup: unknown resource type "
            "nothing\n"
            "resource_tracker: UnicodeDecodeError: 'ascii' codec can't decode a byte of the line\n");
}

/// TestResourceTracker.check_resource_tracker_death for SIGINT and SIGTERM
/// (test_resource_tracker_sigint, _sigterm): the tracker ignores both.
TEST(TestResourceTracker, IgnoresSigintAndSigterm) {
  for (int sig : {SIGINT, SIGTERM}) {
    rt::ResourceTracker tracker;
    tracker.ensure_running();
    pid_t pid = tracker._pid();
    ASSERT_GT(pid, 0);
    ::kill(pid, sig);
    // An ignored signal is discarded when sent; one that kills would have
    // done so within this wait (no false failure is possible, only a late one).
    mp::os::sleep(0.2);
    EXPECT_EQ(mp::os::waitpid(pid, WNOHANG).first, 0) << "tracker died of signal " << sig;
    tracker.ensure_running();
    EXPECT_EQ(tracker._pid(), pid) << "relaunched after signal " << sig;
    tracker._stop();
  }
}

/// What this process's fd points to ("/dev/pts/0", "pipe:[123]").
std::string target_of_own_fd(int fd) {
  char buffer[256] = {};
  ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string("(none)");
}

/// The state letter in /proc/<pid>/stat ('S' sleeping, 'Z' zombie...), '?' if none.
char process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return '?';
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : '?';
}

/// TestResourceTracker.test_resource_tracker_sigkill: a tracker that died is
/// relaunched by the next call, with Python's warning.
TEST(TestResourceTracker, RelaunchedAfterSigkill) {
  rt::ResourceTracker tracker;
  tracker.ensure_running();
  pid_t pid = tracker._pid();
  ::kill(pid, SIGKILL);
  // kill() returns before the process is gone: wait (bounded) until it is a
  // zombie, as CPython's test sleeps before its next call.
  EXPECT_TRUE(wait_until([pid] { return process_state(pid) == 'Z'; }));
  ::testing::internal::CaptureStderr();
  tracker.register_("/test_rt_after_kill", "noop");
  tracker.unregister("/test_rt_after_kill", "noop");
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(tracker._pid(), pid);
  EXPECT_GT(tracker._pid(), 0);
  EXPECT_EQ(err,
            "multiprocessing: UserWarning: resource_tracker: process died unexpectedly, relaunching.  "
            "Some resources might leak.\n");
  tracker._stop();
}

/// TestResourceTracker.test_resource_tracker_reused: a forked child uses its
/// parent's tracker (same pipe), and does not start one of its own.
TEST(TestResourceTracker, ResourceTrackerReused) {
  rt::ensure_running();
  int fd = rt::getfd();
  Channel channel;
  mp::Process p({.target = [&channel, fd] {
    rt::ensure_running();
    bool reused = rt::getfd() == fd && rt::_resource_tracker()._pid() == -1;
    channel.send(reused ? "reused" : "not reused");
  }});
  p.start();
  EXPECT_EQ(channel.recv_line(), "reused");
  join_process(p);
  EXPECT_EQ(rt::getfd(), fd);
}

/// Python's main() closes stdin and stdout; the port's tracker also closes
/// every fd of its parent but stderr and the pipe's read end, so that it holds
/// no pipe or socket that someone waits to see closed.
TEST(TestResourceTracker, TrackerKeepsOnlyWhatItNeeds) {
  Channel unrelated;  // an open pipe in the parent when the tracker starts
  rt::ResourceTracker tracker;
  tracker.ensure_running();
  std::string dir = "/proc/" + std::to_string(tracker._pid()) + "/fd/";
  auto target = [&](int fd) {
    char buffer[256] = {};
    ssize_t n = ::readlink((dir + std::to_string(fd)).c_str(), buffer, sizeof buffer - 1);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string("(none)");
  };
  // What the tracker's fds 0..63 should be, and are.
  auto expected = "0 /dev/null\n1 /dev/null\n2 " + target_of_own_fd(2) + "\n3 pipe\n";
  auto actual = [&] {
    std::string state;
    for (int fd = 0; fd < 64; ++fd) {
      std::string t = target(fd);
      if (t == "(none)") continue;
      state += std::to_string(fd) + " " + (t.rfind("pipe:", 0) == 0 && fd == 3 ? "pipe" : t) + "\n";
    }
    return state;
  };
  // The tracker sets its fds up right after fork: wait (bounded) until it has.
  wait_until([&] { return actual() == expected; });
  EXPECT_EQ(actual(), expected);
  tracker._stop();
}

/// TestResourceTracker.test_too_long_name_resource
TEST(TestResourceTracker, TooLongNameResource) {
  std::string too_long_name_resource = "/" + std::string(512, 'a');
  try {
    rt::register_(too_long_name_resource, "shared_memory");
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "msg too long");
  }
}

/// CPython's SemLock under spawn registers its name and unregisters it when
/// it unlinks; under fork the name is unlinked at once and never registered.
TEST(TestResourceTracker, SemaphoreNamesUnderSpawnAreTracked) {
  std::string name;
  {
    mp::synchronize::Lock lock(&mp::get_context("spawn"));
    name = lock.name();
    EXPECT_TRUE(shm_file_exists("sem." + name.substr(1)));
  }
  EXPECT_FALSE(shm_file_exists("sem." + name.substr(1)));
  mp::synchronize::Lock forked(&mp::get_context("fork"));
  EXPECT_FALSE(shm_file_exists("sem." + forked.name().substr(1)));
}

}  // namespace
}  // namespace mp_test
